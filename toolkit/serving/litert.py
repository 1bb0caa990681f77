"""LiteRT (TensorFlow Lite) export of the models' numeric parts, for
mobile and embedded runtimes.

LiteRT's builtin ops take the toolkit's recurrent loop when every shape is
fixed, so each export here has a fixed-shape signature:

* `export_litert_classifier`: token ids `(batch_size, sequence_length)`
  int32 (0 is padding, masked) -> positive-class probabilities
  `(batch_size,)` float32. Tokenize on the device with the run's
  vocabulary.txt.
* `export_litert_char_lm_step`: one character id `(1, 1)` int32 and the
  recurrent states -> the next character's logits `(1, vocab_size)` and the
  new states; the caller loops it to read a prime and generate.

Two routes that look equivalent are not: a dynamic batch needs TensorFlow
(Flex) ops that the stock interpreter lacks, and converting a
`tf.function` that reaches Keras 3 variables without tracking them writes a
model that outputs NaN, silently. The exports here write the model through
`keras.export.ExportArchive` (which tracks every variable), convert with
builtin ops only, and then run the converted model in
`tf.lite.Interpreter` against Keras on probe inputs: a result that is not
finite or differs by more than `atol` is refused with `LiteRTExportError`
instead of being written.
"""

from __future__ import annotations

import pathlib
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from toolkit.stepping import StateRunner


class LiteRTExportError(RuntimeError):
    """The converted model cannot be produced, or does not compute what the
    Keras model computes."""


def _fixed(name: str, value) -> int:
    if value is None:
        raise LiteRTExportError(
            f"`{name}` must be a fixed size for LiteRT, got None: a dynamic "
            "shape needs TensorFlow (Flex) ops, which the stock LiteRT "
            "interpreter does not have. Export one model per size you need."
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LiteRTExportError(f"`{name}` must be an int >= 1, got {value!r}.")
    return value


def _interpreter(flatbuffer: bytes):
    with warnings.catch_warnings():  # tf.lite.Interpreter's move notice
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_content=flatbuffer)


def run_litert(flatbuffer: bytes, **inputs) -> dict[str, np.ndarray]:
    """Run the `serving_default` signature of a LiteRT model on numpy
    `inputs`; returns its outputs by name."""
    runner = _interpreter(flatbuffer).get_signature_runner("serving_default")
    return runner(**inputs)


def _convert(track, fn, input_signature) -> bytes:
    """`fn` (over the tracked Keras objects) as a LiteRT flatbuffer with
    builtin ops only."""
    archive = keras.export.ExportArchive()
    for item in track:
        archive.track(item)
    archive.add_endpoint(
        name="serving_default", fn=fn, input_signature=input_signature
    )
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as error:  # the converter's own error types
            first = (str(error).strip().splitlines() or [""])[0]
            raise LiteRTExportError(
                f"LiteRT could not convert the model with builtin ops "
                f"({type(error).__name__}: {first[:300]})."
            ) from error


def _check(flatbuffer, inputs, expected, atol, path) -> None:
    """Refuse a converted model whose outputs on `inputs` are not finite or
    not within `atol` of `expected` (both dicts by output name)."""
    got = run_litert(flatbuffer, **inputs)
    for name, reference in expected.items():
        value = np.asarray(got[name])
        if not np.all(np.isfinite(value)):
            raise LiteRTExportError(
                f"The converted model outputs non-finite values for "
                f"`{name}`; nothing was written to {path}."
            )
        error = float(np.max(np.abs(value - reference), initial=0.0))
        if error > atol:
            raise LiteRTExportError(
                f"The converted model differs from Keras by {error:.2e} in "
                f"`{name}` (allowed {atol:g}); nothing was written to {path}."
            )


def _write(flatbuffer: bytes, path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path


def export_litert_classifier(
    model: keras.Model,
    path: str | pathlib.Path,
    sequence_length: int,
    batch_size: int = 1,
    atol: float = 1e-5,
    seed: int = 0,
) -> pathlib.Path:
    """Write `path` (.tflite): token ids `(batch_size, sequence_length)`
    int32 in (`ids`), probabilities `(batch_size,)` float32 out
    (`probability`). Pad shorter texts with 0 (masked, so padding does not
    change a score); cut longer ones to their first `sequence_length`
    tokens, as the recipe's `max_length` does.

    `model` is a classifier over token ids (`toolkit.text.models.
    build_text_classifier`). Before writing, the converted model is run on
    random ids with padding and must match Keras within `atol`.
    """
    batch_size = _fixed("batch_size", batch_size)
    sequence_length = _fixed("sequence_length", sequence_length)
    vocab_size = model.get_layer("embedding").input_dim

    def classify(ids):
        scores = model(tf.cast(ids, "int64"), training=False)
        return {"probability": tf.reshape(scores, [-1])}

    flatbuffer = _convert(
        [model],
        classify,
        [tf.TensorSpec([batch_size, sequence_length], tf.int32, name="ids")],
    )
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, (batch_size, sequence_length))
    lengths = rng.integers(1, sequence_length + 1, batch_size)
    ids = np.where(np.arange(sequence_length) < lengths[:, None], ids, 0)
    ids = ids.astype(np.int32)
    expected = {"probability": classify(tf.constant(ids))["probability"]}
    _check(flatbuffer, {"ids": ids}, expected, atol, path)
    return _write(flatbuffer, path)


def char_lm_state_names(model: keras.Model) -> list[str]:
    """The state inputs and outputs of `export_litert_char_lm_step`, in
    order: `layer{k}_state{j}` (an LSTM layer has h then c)."""
    runner = StateRunner.for_model(model)
    return [
        f"layer{k}_state{j}"
        for k, sizes in enumerate(runner.state_sizes)
        for j in range(len(sizes))
    ]


def export_litert_char_lm_step(
    model: keras.Model,
    path: str | pathlib.Path,
    atol: float = 1e-5,
    seed: int = 0,
) -> pathlib.Path:
    """Write `path` (.tflite): one step of a character LM
    (`toolkit.text.models.build_char_lm`).

    Inputs: `id` `(1, 1)` int32 and every state `(1, units)` float32 named
    as `char_lm_state_names` gives (zeros to start). Outputs: `logits`
    `(1, vocab_size)` and the new states under the same names. Feed the
    prime one character at a time, then sample from the logits and feed
    the choice back. Checked against Keras over a few steps before
    writing.
    """
    runner = StateRunner.for_model(model)
    names = char_lm_state_names(model)
    sizes = [size for layer in runner.state_sizes for size in layer]

    def step(id, *flat_states):
        logits, states = runner.call_tensors(id, runner.nest(list(flat_states)))
        outputs = {"logits": tf.reshape(logits, [1, -1])}
        outputs.update(zip(names, runner.flatten(states), strict=True))
        return outputs

    signature = [tf.TensorSpec([1, 1], tf.int32, name="id")] + [
        tf.TensorSpec([1, size], tf.float32, name=name)
        for name, size in zip(names, sizes, strict=True)
    ]
    flatbuffer = _convert([runner.model], step, signature)
    rng = np.random.default_rng(seed)
    vocab_size = model.get_layer("embedding").input_dim
    states = [np.zeros((1, size), np.float32) for size in sizes]
    for next_id in rng.integers(0, vocab_size, 4):
        inputs = {"id": np.array([[next_id]], np.int32)}
        inputs.update(zip(names, states, strict=True))
        expected = {
            key: np.asarray(value)
            for key, value in step(
                tf.constant(inputs["id"]), *map(tf.constant, states)
            ).items()
        }
        _check(flatbuffer, inputs, expected, atol, path)
        states = [expected[name] for name in names]
    return _write(flatbuffer, path)
