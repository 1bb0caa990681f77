"""SavedModel export with serving signatures that take raw text.

The exported graph holds the text vectorization, so a server needs only
TensorFlow: `tf.saved_model.load(path).serve(tf.constant(["great film"]))`.
"""

from __future__ import annotations

import pathlib

import keras
import tensorflow as tf


def export_text_classifier(
    model: keras.Model,
    vectorizer: keras.layers.TextVectorization,
    path: str | pathlib.Path,
    max_length: int,
) -> pathlib.Path:
    """Write a SavedModel whose `serve` signature maps a batch of UTF-8
    strings `(batch,)` to positive-class probabilities `(batch,)` float32.

    Texts are tokenized as in training and cut to their first `max_length`
    tokens; one padding step is always appended, so empty strings (no
    tokens) score too (their probability is the model's prior).
    """
    path = pathlib.Path(path)

    def serve(texts):
        ids = vectorizer(texts)[:, :max_length]
        padding = tf.zeros([tf.shape(ids)[0], 1], ids.dtype)
        ids = tf.concat([ids, padding], axis=1)
        return tf.reshape(model(ids, training=False), [-1])

    if not vectorizer.built:
        vectorizer(tf.constant([""]))  # Builds it; adapt() does not.
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(vectorizer)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
    )
    archive.write_out(str(path), verbose=False)
    return path
