"""LiteRT (TensorFlow Lite) export of the models' numeric parts, for
mobile and embedded runtimes.

Toolkit LSTM layers become LiteRT's fused `UNIDIRECTIONAL_SEQUENCE_LSTM`
kernel (`toolkit.litert_composite`); a layer that cannot is named in a
warning with the reason and converts as a loop of builtin ops, which needs
every shape fixed.

* `export_litert_classifier`: token ids `(batch_size, sequence_length)`
  int32 (0 is padding, on the right) -> positive-class probabilities
  `(batch_size,)` float32; with fused LSTMs the length may be left free.
  Tokenize on the device with the run's vocabulary.txt. Optionally
  quantized (`quantize="dynamic"` or `"float16"`).
* `export_litert_char_lm_step`: one character id `(1, 1)` int32 -> the
  next character's logits, with the recurrent states as explicit inputs
  and outputs (a loop) or kept inside the interpreter (`state="internal"`,
  fused); the caller loops it to read a prime and generate.
* `LiteRTRunner`: one interpreter reused for independent calls; the fused
  kernel carries its state from one call to the next unless reset.

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

import contextlib
import pathlib
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from toolkit.litert_composite import composite_lstm, warn_not_fused
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
    `inputs` in a new interpreter; returns its outputs by name."""
    runner = _interpreter(flatbuffer).get_signature_runner("serving_default")
    return runner(**inputs)


class LiteRTRunner:
    """One interpreter for many calls of a LiteRT model's `serving_default`
    signature, each call independent of the ones before.

    LiteRT's fused LSTM kernel keeps its h and c in variable tensors that
    persist from one `invoke` to the next (so that a stateful model can be
    stepped), and starts each call from where the last one ended. Every
    call here resets them afterwards (`reset_all_variables`), as an app
    that reuses an interpreter for independent texts must do too.

        runner = LiteRTRunner(path.read_bytes())
        runner(ids=ids)["probability"]
    """

    def __init__(self, flatbuffer: bytes):
        self.interpreter = _interpreter(flatbuffer)
        self._runner = self.interpreter.get_signature_runner()

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        outputs = self._runner(**inputs)
        # Zero the states for the next call (the first starts from zeros).
        self.interpreter.reset_all_variables()
        return outputs


QUANTIZATIONS = ("none", "dynamic", "float16")


def _convert(
    track, fn, input_signature, quantize: str = "none", fuse_lstm=True
) -> bytes:
    """`fn` (over the tracked Keras objects) as a LiteRT flatbuffer with
    builtin ops only. With `fuse_lstm`, toolkit LSTM layers are traced as
    the composite op that the converter fuses into its LSTM kernel
    (`toolkit.litert_composite`). `quantize`: `"none"`, `"dynamic"`
    (weights stored as int8, dynamic-range kernels) or `"float16"`
    (weights stored as float16)."""
    if quantize not in QUANTIZATIONS:
        raise LiteRTExportError(
            f"`quantize` must be one of {list(QUANTIZATIONS)}, got "
            f"{quantize!r}."
        )
    archive = keras.export.ExportArchive()
    for item in track:
        archive.track(item)
    fusing = composite_lstm() if fuse_lstm else contextlib.nullcontext()
    with fusing as report, tempfile.TemporaryDirectory() as folder:
        # The endpoint is traced here and when it is written out.
        archive.add_endpoint(
            name="serving_default", fn=fn, input_signature=input_signature
        )
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # the converter's own error types
            first = (str(error).strip().splitlines() or [""])[0]
            raise LiteRTExportError(
                f"LiteRT could not convert the model with builtin ops "
                f"({type(error).__name__}: {first[:300]})."
            ) from error
    if fuse_lstm:
        _report_fusion(flatbuffer, report)
    return flatbuffer


def _report_fusion(flatbuffer, report) -> None:
    """Warn, naming the layer and the reason, for each toolkit layer that
    did not become LiteRT's fused kernel."""
    for name, reason in sorted(report.not_fused.items()):
        warn_not_fused(name, reason)
    traced = len(report.composite)
    fused = op_names(flatbuffer).count("UNIDIRECTIONAL_SEQUENCE_LSTM")
    if fused < traced:
        warn_not_fused(
            f"{traced - fused} of {traced} LSTM layers",
            "the converter declined them: a graph that reads a layer's "
            "final cell state (a step model that hands its states on) "
            "keeps the loop",
        )


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


def op_names(flatbuffer: bytes) -> list[str]:
    """The builtin op of each node of a LiteRT model, in execution order
    (`UNIDIRECTIONAL_SEQUENCE_LSTM` where an LSTM was fused, `WHILE` where
    a recurrent loop was converted as a loop)."""
    interpreter = _interpreter(flatbuffer)
    return [op["op_name"] for op in interpreter._get_ops_details()]


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
    atol: float | None = None,
    seed: int = 0,
    quantize: str = "none",
    fuse_lstm: bool = True,
    check_ids=(),
) -> pathlib.Path:
    """Write `path` (.tflite): token ids `(batch_size, sequence_length)`
    int32 in (`ids`), probabilities `(batch_size,)` float32 out
    (`probability`). Pad shorter texts with 0 (masked, so padding does not
    change a score); cut longer ones to their first `sequence_length`
    tokens, as the recipe's `max_length` does.

    `model` is a classifier over token ids (`toolkit.text.models.
    build_text_classifier`). Its toolkit LSTM layers become LiteRT's fused
    LSTM kernel (`fuse_lstm`; a layer that cannot is named in a warning and
    converts as a loop). `sequence_length=None` leaves the length free (the
    interpreter is resized per input), which only a fully fused model
    converts with builtin ops. `quantize`: `"none"`, `"dynamic"` (int8
    weights) or `"float16"`. Before writing, the converted model is run on
    random right-padded ids, and on each `(batch_size, length)` array of
    `check_ids` (real texts' ids), and must match Keras within `atol`
    (default 1e-5, and 5e-2 for a quantized model, whose weights are
    rounded).
    """
    batch_size = _fixed("batch_size", batch_size)
    if not (fuse_lstm and sequence_length is None):
        sequence_length = _fixed("sequence_length", sequence_length)
    if atol is None:
        atol = 1e-5 if quantize == "none" else 5e-2
    vocab_size = model.get_layer("embedding").input_dim

    def classify(ids):
        scores = model(tf.cast(ids, "int64"), training=False)
        return {"probability": tf.reshape(scores, [-1])}

    flatbuffer = _convert(
        [model],
        classify,
        [tf.TensorSpec([batch_size, sequence_length], tf.int32, name="ids")],
        quantize=quantize,
        fuse_lstm=fuse_lstm,
    )
    rng = np.random.default_rng(seed)
    probe_lengths = [sequence_length] if sequence_length else [7, 23]
    for probe_length in probe_lengths:
        ids = rng.integers(1, vocab_size, (batch_size, probe_length))
        lengths = rng.integers(1, probe_length + 1, batch_size)
        lengths[0] = max(1, probe_length - 2)  # padding in every probe
        ids = np.where(np.arange(probe_length) < lengths[:, None], ids, 0)
        ids = ids.astype(np.int32)
        expected = {"probability": classify(tf.constant(ids))["probability"]}
        _check(flatbuffer, {"ids": ids}, expected, atol, path)
    for ids in check_ids:
        ids = np.asarray(ids, np.int32)
        expected = {"probability": classify(tf.constant(ids))["probability"]}
        _check(flatbuffer, {"ids": ids}, expected, atol, path)
    return _write(flatbuffer, path)


def max_difference(flatbuffer: bytes, model: keras.Model, ids) -> float:
    """Largest difference between a classifier export's probabilities and
    the Keras model's on `ids`."""
    ids = np.asarray(ids, np.int32)
    got = run_litert(flatbuffer, ids=ids)["probability"]  # new interpreter
    expected = np.reshape(model(ids, training=False), [-1])
    return float(np.max(np.abs(got - expected)))


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
    state: str = "explicit",
) -> pathlib.Path:
    """Write `path` (.tflite): one step of a character LM
    (`toolkit.text.models.build_char_lm`).

    `state="explicit"`: inputs `id` `(1, 1)` int32 and every state
    `(1, units)` float32 named as `char_lm_state_names` gives (zeros to
    start); outputs `logits` `(1, vocab_size)` and the new states under the
    same names. The graph reads each LSTM's cell state, so the converter
    keeps the loop (builtin ops, not the fused kernel).

    `state="internal"`: input `id`, output `logits`; the LSTMs are LiteRT's
    fused kernel, whose h and c live in the interpreter's variable tensors
    and carry from one `invoke` to the next. Reuse one interpreter for a
    text and call `reset_all_variables()` to start another.

    Feed the prime one character at a time, then sample from the logits
    and feed the choice back. Checked against Keras over a few steps before
    writing.
    """
    if state not in ("explicit", "internal"):
        raise LiteRTExportError(
            f"`state` must be 'explicit' or 'internal', got {state!r}."
        )
    if state == "internal":
        return _export_internal_state_step(model, path, atol, seed)
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


def _export_internal_state_step(model, path, atol, seed) -> pathlib.Path:
    runner = StateRunner.for_model(model)

    def step(id):
        zeros = [
            [tf.zeros([1, size]) for size in sizes]
            for sizes in runner.state_sizes
        ]
        logits, _ = runner.call_tensors(id, zeros)
        return {"logits": tf.reshape(logits, [1, -1])}

    flatbuffer = _convert(
        [runner.model], step, [tf.TensorSpec([1, 1], tf.int32, name="id")]
    )
    vocab_size = model.get_layer("embedding").input_dim
    ids = np.random.default_rng(seed).integers(0, vocab_size, 6)
    expected, _ = runner(ids[None], runner.initial_state(1))
    interpreter = _interpreter(flatbuffer)
    step_runner = interpreter.get_signature_runner()
    for t, next_id in enumerate(ids):
        got = step_runner(id=np.array([[next_id]], np.int32))["logits"]
        error = float(np.max(np.abs(got[0] - expected[0, t])))
        if not np.isfinite(error) or error > atol:
            raise LiteRTExportError(
                f"The converted step differs from Keras by {error:.2e} at "
                f"step {t} (allowed {atol:g}); nothing was written to "
                f"{path}."
            )
    return _write(flatbuffer, path)
