"""tf.data pipelines for text classification: raw strings or token ids.

Token ids come from a `keras.layers.TextVectorization` adapted on the
training texts only, so nothing about validation or test leaks into the
vocabulary.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from toolkit import _checks
from toolkit.data.imdb import TextSplit

AUTOTUNE = tf.data.AUTOTUNE


def text_dataset(
    split: TextSplit,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of `(text string (batch,), label (batch,))`.

    With `shuffle`, the order changes every epoch (seeded); `cache` keeps
    the elements in memory after the first pass.
    """
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.array(split.texts, dtype=object), split.labels)
    )
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(
            len(split), seed=seed, reshuffle_each_iteration=True
        )
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def make_vectorizer(
    train_texts: Sequence[str],
    vocab_size: int,
    max_length: int | None = None,
    batch_size: int = 512,
) -> keras.layers.TextVectorization:
    """A `TextVectorization` (lowercase, strip punctuation, split on
    whitespace) adapted on `train_texts`.

    Id 0 is padding and 1 out-of-vocabulary; `vocab_size` counts both. With
    `max_length`, every output is padded or truncated to that length;
    without it, outputs keep their own length (padded per batch).
    """
    vocab_size = _checks.check_positive_int("vocab_size", vocab_size)
    if max_length is not None:
        max_length = _checks.check_positive_int("max_length", max_length)
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocab_size,
        output_mode="int",
        output_sequence_length=max_length,
    )
    vectorizer.adapt(
        tf.data.Dataset.from_tensor_slices(
            np.array(list(train_texts), dtype=object)
        ).batch(batch_size)
    )
    return vectorizer


def write_vocabulary(path: str | pathlib.Path, vocabulary: Sequence[str]):
    """Write `vocabulary` (a vectorizer's `get_vocabulary()`) to `path` as
    UTF-8, one word per line, ids in line order (padding "" first). The
    file appears whole or not at all (written aside, then renamed)."""
    path = pathlib.Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(partial, "w", encoding="utf-8", newline="") as file:
        file.write("".join(f"{word}\n" for word in vocabulary))
    os.replace(partial, path)


def read_vocabulary(path: str | pathlib.Path) -> list[str]:
    """The vocabulary that `write_vocabulary` wrote. Lines end at "\n"
    only: IMDB words hold characters that `str.splitlines` also breaks at
    (U+0085, the Windows-1252 ellipsis, is one)."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except UnicodeDecodeError:
        text = ""  # not what write_vocabulary wrote either
    if not text.endswith("\n"):
        raise ValueError(
            f"{path} is not a complete vocabulary file (cut off, or not "
            "UTF-8); delete it, or the run folder that holds it."
        )
    return text[:-1].split("\n")


def tokenize(
    texts: Sequence[str],
    vectorizer: keras.layers.TextVectorization,
    max_length: int,
    batch_size: int = 1024,
) -> tf.RaggedTensor:
    """Token ids of every text, each cut to its first `max_length` tokens,
    as a `(len(texts), None)` int64 ragged tensor. A text with no tokens
    gets one padding id (0), so every row has a timestep."""
    max_length = _checks.check_positive_int("max_length", max_length)
    rows = []
    texts = list(texts)
    for start in range(0, len(texts), batch_size):
        ids = vectorizer(tf.constant(texts[start : start + batch_size]))
        ids = ids[:, :max_length]
        # Id 0 only pads, at the end of a row. The extra zero column lets an
        # empty row keep one padding step.
        lengths = tf.maximum(tf.math.count_nonzero(ids, axis=1), 1)
        ids = tf.concat([ids, tf.zeros_like(ids[:, :1])], axis=1)
        rows.append(tf.RaggedTensor.from_tensor(ids, lengths=lengths))
    return tf.concat(rows, axis=0)


def _dense_row(ids, label):
    # Slices of a ragged matrix arrive as 1-D ragged rows; batching wants
    # plain tensors.
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor()
    return ids, label


def token_dataset(
    tokens: tf.RaggedTensor,
    labels,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    bucket_boundaries: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Batches of `(token ids (batch, length) int64, label (batch,))` from
    `tokenize`'s output.

    Batches are zero-padded to their longest member, or, with
    `bucket_boundaries` (e.g. `[64, 128, 256]`), built from texts of similar
    length so that little padding is computed. With `shuffle`, the order is
    a function of `seed` alone: build one dataset per epoch with
    `seed + epoch` for an order that a resumed run reproduces.
    """
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    labels = np.asarray(labels)
    if tokens.shape[0] != len(labels):
        raise ValueError(
            f"Got {tokens.shape[0]} token rows but {len(labels)} labels."
        )
    dataset = tf.data.Dataset.from_tensor_slices((tokens, labels)).map(
        _dense_row, num_parallel_calls=AUTOTUNE
    )
    if shuffle:
        dataset = dataset.shuffle(
            len(labels), seed=seed, reshuffle_each_iteration=False
        )
    if bucket_boundaries:
        boundaries = sorted(int(b) for b in bucket_boundaries)
        dataset = dataset.bucket_by_sequence_length(
            lambda ids, label: tf.shape(ids)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
        # Every bucket ends with one partial batch at most, whatever the
        # order, so the number of batches is known; stating it gives Keras
        # a progress bar with a total.
        lengths = tokens.row_lengths().numpy()
        members = np.bincount(
            np.searchsorted(boundaries, lengths, side="right"),
            minlength=len(boundaries) + 1,
        )
        batches = int(np.sum(-(-members // batch_size)))
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(batches)
        )
    else:
        dataset = dataset.padded_batch(batch_size)
    return dataset.prefetch(AUTOTUNE)
