"""Character corpora, their vocabularies and language-model pipelines.

Two ways to batch a character stream for training:

* `tbptt_dataset`: for truncated backpropagation through time with stateful
  layers. The stream is cut into `batch_size` contiguous rows; batch k holds
  characters `[k*L, (k+1)*L)` of every row, so row b of batch k+1 continues
  row b of batch k and a stateful model carries its state correctly.
* `window_dataset`: shuffled, independent windows for stateless training.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from toolkit import _checks


@dataclasses.dataclass(frozen=True)
class CharVocabulary:
    """A fixed, ordered character set; id i is `chars[i]`."""

    chars: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise ValueError(
                "A character vocabulary needs distinct characters, got "
                f"{self.chars!r}."
            )
        object.__setattr__(
            self, "_index", {c: i for i, c in enumerate(self.chars)}
        )

    @classmethod
    def from_text(cls, text: str) -> CharVocabulary:
        """The sorted set of characters in `text`."""
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """`(len(text),)` int32 ids; unknown characters are an error that
        lists them."""
        try:
            return np.fromiter(
                (self._index[c] for c in text),
                dtype=np.int32,
                count=len(text),
            )
        except KeyError:
            unknown = sorted(set(text) - set(self.chars))
            raise ValueError(
                f"Text has {len(unknown)} character(s) outside the "
                f"{len(self)}-character vocabulary: {unknown[:20]!r}. Map "
                "or remove them first (for text8-style corpora, "
                "toolkit.data.normalize_text8 does)."
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"chars": list(self.chars)})

    @classmethod
    def from_json(cls, payload: str) -> CharVocabulary:
        return cls(tuple(json.loads(payload)["chars"]))


@dataclasses.dataclass
class CharCorpus:
    """Character-level splits with their vocabulary and provenance.

    Attributes:
        name: e.g. `"text8"`, `"tinyshakespeare"`.
        vocabulary: the `CharVocabulary` the ids refer to.
        splits: `{"train": ids, "validation": ids[, "test": ids]}`, each a
            `(n,)` int32 array.
        metadata: source path, split sizes and how they were made.
    """

    name: str
    vocabulary: CharVocabulary
    splits: dict[str, np.ndarray]
    metadata: dict


def split_by_fractions(
    ids: np.ndarray, fractions: dict[str, float]
) -> dict[str, np.ndarray]:
    """Consecutive splits of `ids` in the order and proportions given; each
    boundary is `int(fraction_so_far * n)`, as nanoGPT's
    `data[: int(n * 0.9)]`."""
    total = len(ids)
    bounds = np.cumsum([0] + [fractions[name] for name in fractions])
    # The small offset keeps float error in the cumulative sum (0.9 + 0.05
    # is 0.95 - 1e-16) from losing a character at the boundary.
    edges = [int(b * total + 1e-6) for b in bounds]
    edges[-1] = total
    return {
        name: ids[edges[i] : edges[i + 1]] for i, name in enumerate(fractions)
    }


def tbptt_arrays(
    ids: np.ndarray, batch_size: int, sequence_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """`(inputs, targets)`, each `(num_batches, batch_size, sequence_length)`:
    batch k, row b is characters `[k*L, (k+1)*L)` of stream b, and targets
    are the inputs shifted by one character. The tail that does not fill a
    whole batch is dropped."""
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    sequence_length = _checks.check_positive_int(
        "sequence_length", sequence_length
    )
    ids = np.asarray(ids)
    row_length = (len(ids) - 1) // batch_size
    num_batches = row_length // sequence_length
    if num_batches == 0:
        raise ValueError(
            f"A split of {len(ids):,} characters is too short for "
            f"batch_size={batch_size} x sequence_length={sequence_length} "
            "(it needs at least batch_size * sequence_length + 1)."
        )
    used = num_batches * sequence_length

    def rows(stream):
        grid = stream[: batch_size * row_length].reshape(batch_size, -1)
        grid = grid[:, :used].reshape(batch_size, num_batches, sequence_length)
        return grid.transpose(1, 0, 2)

    return rows(ids[:-1]), rows(ids[1:])


def tbptt_dataset(
    ids: np.ndarray,
    batch_size: int,
    sequence_length: int,
    offset: int = 0,
    first_batch: int = 0,
    num_batches: int | None = None,
) -> tf.data.Dataset:
    """Consecutive TBPTT batches of `(inputs, targets)`, each
    `(batch_size, sequence_length)` int32, in stream order (never shuffle
    it): the same batches as `tbptt_arrays(ids[offset:], ...)`.

    Args:
        ids: the split, `(n,)` int ids; held once in memory (batches are
            gathered from it, not copied out in advance).
        offset: skip this many characters first (a different offset each
            epoch varies where the windows fall).
        first_batch, num_batches: yield `num_batches` batches starting at
            batch `first_batch` and wrapping round at the end of the streams
            (default: all of them from the start), so epochs shorter than a
            whole pass can take turns through a large corpus.
    """
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    sequence_length = _checks.check_positive_int(
        "sequence_length", sequence_length
    )
    ids = np.asarray(ids, dtype=np.int32)[offset:]
    row_length = (len(ids) - 1) // batch_size
    total = row_length // sequence_length
    if total == 0:
        raise ValueError(
            f"A split of {len(ids):,} characters is too short for "
            f"batch_size={batch_size} x sequence_length={sequence_length} "
            "(it needs at least batch_size * sequence_length + 1)."
        )
    count = total if num_batches is None else num_batches
    count = _checks.check_positive_int("num_batches", count)
    stream = tf.constant(ids)
    # starts[b, t]: where row b's character t of batch 0 sits in `ids`.
    starts = tf.constant(
        np.arange(batch_size)[:, None] * row_length
        + np.arange(sequence_length)[None, :],
        dtype=tf.int64,
    )

    def batch(index):
        positions = starts + (index % total) * sequence_length
        return (
            tf.gather(stream, positions),
            tf.gather(stream, positions + 1),
        )

    return (
        tf.data.Dataset.range(first_batch, first_batch + count)
        .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def batches_per_pass(
    length: int, batch_size: int, sequence_length: int, streams: bool
) -> int:
    """Batches in one pass over a split of `length` ids: as carried streams
    (`tbptt_dataset`, at any `offset` below `sequence_length`) or as
    windows (`window_dataset`, whose last batch may be partial)."""
    B, T = batch_size, sequence_length
    if streams:
        return ((length - T) // B) // T
    return -(-((length - 1) // T) // B)


def window_dataset(
    ids: np.ndarray,
    batch_size: int,
    sequence_length: int,
    shuffle: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of non-overlapping windows `(inputs, targets)`, each
    `(batch_size, sequence_length)` int32, shuffled by `seed`.

    Every iteration of the dataset gives the same order, so a strategy
    that iterates it once to build the model and again to train trains on
    what one device would; pass another seed for another order (the
    character-LM recipe seeds each epoch)."""
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    sequence_length = _checks.check_positive_int(
        "sequence_length", sequence_length
    )
    ids = np.asarray(ids, dtype=np.int32)
    count = (len(ids) - 1) // sequence_length
    if count == 0:
        raise ValueError(
            f"A split of {len(ids):,} characters is too short for "
            f"sequence_length={sequence_length}."
        )
    inputs = ids[: count * sequence_length].reshape(count, sequence_length)
    targets = ids[1 : count * sequence_length + 1].reshape(
        count, sequence_length
    )
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(
            count, seed=seed, reshuffle_each_iteration=False
        )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def corpus_from_text(
    text: str,
    name: str,
    source: str,
    vocabulary: CharVocabulary | None,
    fractions: dict[str, float],
) -> CharCorpus:
    """Encode `text` and cut it into consecutive splits."""
    vocabulary = vocabulary or CharVocabulary.from_text(text)
    ids = vocabulary.encode(text)
    splits = split_by_fractions(ids, fractions)
    metadata = {
        "dataset": name,
        "source": source,
        "characters": len(ids),
        "vocabulary_size": len(vocabulary),
        "fractions": dict(fractions),
        "sizes": {k: int(len(v)) for k, v in splits.items()},
    }
    return CharCorpus(name, vocabulary, splits, metadata)
