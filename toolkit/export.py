"""SavedModel export with serving signatures that take raw text.

The exported graphs hold the text processing, so a server needs only
TensorFlow: `tf.saved_model.load(path).serve(tf.constant(["great film"]))`
for a classifier, `tf.saved_model.load(path).generate(...)` for a character
language model.
"""

from __future__ import annotations

import pathlib

import keras
import tensorflow as tf

from toolkit.data.char_lm import CharVocabulary
from toolkit.stepping import StateRunner


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


def export_char_lm(
    model: keras.Model,
    vocabulary: CharVocabulary,
    path: str | pathlib.Path,
) -> pathlib.Path:
    """Write a SavedModel of a character LM (from
    `toolkit.models.build_char_lm`) with two signatures that need only
    TensorFlow:

    * `generate(prime, length, temperature, seed)`: scalar UTF-8 string,
      int32, float32, int64 -> the `length` characters sampled after
      `prime` (a scalar string). Temperature 0 picks the most likely
      character at every step; the same seed gives the same text.
    * `next_char_probs(prime)`: scalar string -> `probabilities`
      `(vocab_size,)` float32 for the character after `prime`, and
      `characters` `(vocab_size,)`, the character each one is for.

    Both read the prime in one call of the model's
    `toolkit.stepping.StateRunner`, then generate one character per call
    with the states handed back in, and fail with an
    `InvalidArgumentError` that lists any characters of `prime` outside the
    vocabulary (or says that `prime` is empty).
    """
    path = pathlib.Path(path)
    runner = StateRunner.for_model(model)
    characters = tf.constant(list(vocabulary.chars))
    # Unknown characters map to 0, known ones to their id + 1.
    lookup = keras.layers.StringLookup(
        vocabulary=list(vocabulary.chars), num_oov_indices=1, mask_token=None
    )
    lookup(tf.constant(list(vocabulary.chars)))  # builds it for export

    def run(ids, states):
        """`ids` `(steps,)` from `states` -> last logits `(1, vocab)`."""
        logits, states = runner.call_tensors(tf.reshape(ids, [1, -1]), states)
        return logits[:, -1], states

    def read_prime(prime):
        pieces = tf.strings.unicode_split(prime, "UTF-8")
        ids = tf.cast(lookup(pieces), tf.int32) - 1
        unknown = tf.boolean_mask(pieces, ids < 0)
        checks = [
            tf.debugging.Assert(
                tf.size(ids) > 0,
                ["The priming text is empty; give at least one character."],
            ),
            tf.debugging.Assert(
                tf.size(unknown) == 0,
                [
                    "The priming text has characters outside the model's "
                    "vocabulary (see next_char_probs' `characters`):",
                    unknown,
                ],
                summarize=20,
            ),
        ]
        with tf.control_dependencies(checks):
            ids = tf.identity(ids)
        states = tf.nest.map_structure(tf.constant, runner.initial_state(1))
        return run(ids, states)

    def generate(prime, length, temperature, seed):
        checks = [
            tf.debugging.assert_non_negative(
                length, message="`length` must be 0 or more."
            ),
            tf.debugging.assert_non_negative(
                temperature, message="`temperature` must be 0 or more."
            ),
        ]
        with tf.control_dependencies(checks):
            logits, states = read_prime(prime)
        seed = tf.cast(seed, tf.int64)
        scale = tf.maximum(temperature, 1e-6)

        def body(i, logits, states, chosen):
            sampled = tf.random.stateless_categorical(
                logits / scale, 1, seed=tf.stack([seed, tf.cast(i, tf.int64)])
            )
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int64)
            next_id = tf.cast(
                tf.where(temperature > 0, sampled[0, 0], greedy[0]), tf.int32
            )
            logits, states = run(next_id, states)
            return i + 1, logits, states, chosen.write(i, next_id)

        chosen = tf.TensorArray(tf.int32, size=length)
        *_, chosen = tf.while_loop(
            lambda i, *_: i < length, body, (0, logits, states, chosen)
        )
        return tf.strings.reduce_join(tf.gather(characters, chosen.stack()))

    def next_char_probs(prime):
        logits, _ = read_prime(prime)
        return {
            "probabilities": tf.nn.softmax(logits[0]),
            "characters": characters,
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(runner.model)
    archive.track(lookup)
    archive.add_endpoint(
        name="generate",
        fn=generate,
        input_signature=[
            tf.TensorSpec([], tf.string, name="prime"),
            tf.TensorSpec([], tf.int32, name="length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ],
    )
    archive.add_endpoint(
        name="next_char_probs",
        fn=next_char_probs,
        input_signature=[tf.TensorSpec([], tf.string, name="prime")],
    )
    archive.write_out(str(path), verbose=False)
    return path
