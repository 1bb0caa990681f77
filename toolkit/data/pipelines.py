"""tf.data pipelines for text classification: raw strings or token ids.

Token ids come from a `keras.layers.TextVectorization` adapted on the
training texts only, so nothing about validation or test leaks into the
vocabulary.
"""

from __future__ import annotations

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


def token_dataset(
    split: TextSplit,
    vectorizer: keras.layers.TextVectorization,
    batch_size: int,
    max_length: int,
    shuffle: bool = False,
    seed: int | None = None,
    bucket_boundaries: Sequence[int] | None = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of `(token ids (batch, length) int64, label (batch,))`.

    Texts are tokenized once (in parallel) and cached; each keeps its own
    length, truncated to `max_length`. Batches are zero-padded to their
    longest member, or, with `bucket_boundaries` (e.g. `[64, 128, 256]`),
    built from texts of similar length so that little padding is computed.
    """
    batch_size = _checks.check_positive_int("batch_size", batch_size)
    max_length = _checks.check_positive_int("max_length", max_length)
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.array(split.texts, dtype=object), split.labels)
    )

    def tokenize(text, label):
        ids = vectorizer(text)[:max_length]
        # An empty review would give an empty sequence; keep one padding id
        # so every element has a timestep.
        ids = tf.cond(
            tf.size(ids) > 0, lambda: ids, lambda: tf.zeros([1], ids.dtype)
        )
        return ids, label

    dataset = dataset.map(tokenize, num_parallel_calls=AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(
            len(split), seed=seed, reshuffle_each_iteration=True
        )
    if bucket_boundaries:
        boundaries = sorted(int(b) for b in bucket_boundaries)
        dataset = dataset.bucket_by_sequence_length(
            lambda ids, label: tf.shape(ids)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
    else:
        dataset = dataset.padded_batch(batch_size)
    return dataset.prefetch(AUTOTUNE)
