"""LiteRT (TensorFlow Lite) exports: the converted classifier and character
LM step match Keras in `tf.lite.Interpreter` within 1e-5, and the routes
that cannot work are refused with a clear error."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import toolkit
from export_fixtures import small_char_lm, small_classifier
from toolkit.serving import litert
from toolkit.stepping import StateRunner
from toolkit.text import models
from toolkit.text.encoder import EncoderSpec


@pytest.mark.parametrize("batch_size", [1, 3])
def test_classifier_matches_keras_in_the_interpreter(tmp_path, batch_size):
    model, vectorizer = small_classifier()
    path = litert.export_litert_classifier(
        model, tmp_path / "classifier.tflite", 16, batch_size=batch_size
    )
    texts = ["a great film superb acting", "dull awful waste", ""]
    ids = vectorizer(tf.constant(texts[:batch_size] * 3))[:batch_size, :16]
    ids = tf.pad(ids, [[0, 0], [0, 16 - ids.shape[1]]]).numpy()
    got = litert.run_litert(path.read_bytes(), ids=ids.astype(np.int32))
    expected = model(ids, training=False).numpy().reshape(-1)
    np.testing.assert_allclose(got["probability"], expected, atol=1e-5)


def test_char_lm_step_generates_what_keras_generates(tmp_path):
    model = small_char_lm()
    path = litert.export_litert_char_lm_step(model, tmp_path / "step.tflite")
    names = litert.char_lm_state_names(model)
    assert names == ["layer0_state0", "layer0_state1"]  # one LSTM: h, c
    runner = StateRunner.for_model(model)
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    keras_logits, _ = runner(np.array([ids]), runner.initial_state(1))
    states = {name: np.zeros((1, 8), np.float32) for name in names}
    flatbuffer = path.read_bytes()
    for t, next_id in enumerate(ids):
        out = litert.run_litert(
            flatbuffer, id=np.array([[next_id]], np.int32), **states
        )
        np.testing.assert_allclose(
            out["logits"][0], keras_logits[0, t], atol=1e-5
        )
        states = {name: out[name] for name in names}


def test_dynamic_shapes_are_refused_with_the_reason(tmp_path):
    model, _ = small_classifier()
    with pytest.raises(litert.LiteRTExportError, match="Flex"):
        litert.export_litert_classifier(
            model, tmp_path / "x.tflite", 16, batch_size=None
        )
    # A free length needs the fused kernel; the loop needs every shape.
    with pytest.raises(litert.LiteRTExportError, match="sequence_length"):
        litert.export_litert_classifier(
            model, tmp_path / "x.tflite", None, fuse_lstm=False
        )
    assert not (tmp_path / "x.tflite").exists()


def right_padded_ids(rng, batch, length, vocab_size, lengths):
    ids = rng.integers(1, vocab_size, (batch, length))
    return np.where(
        np.arange(length) < np.asarray(lengths)[:, None], ids, 0
    ).astype(np.int32)


@pytest.mark.parametrize("pooling", ["mean_max", "last_mean_max", "last"])
def test_bidirectional_lstm_classifier_becomes_the_fused_kernel(
    tmp_path, pooling, caplog
):
    """Each of the 4 LSTM layers (2 layers x 2 directions) is one
    UNIDIRECTIONAL_SEQUENCE_LSTM op, no loop is left, and the model
    matches Keras at 1e-5 on right-padded, masked batches."""
    encoder = EncoderSpec(300, 8, units=[12, 12], bidirectional=True)
    model = models.build_text_classifier(encoder, pooling=pooling, seed=1)
    model(np.ones((1, 3), np.int32))
    perturb = np.random.default_rng(0)
    model.set_weights(
        [
            w + 0.3 * perturb.standard_normal(w.shape)
            for w in model.get_weights()
        ]
    )
    path = litert.export_litert_classifier(
        model, tmp_path / "fused.tflite", 20, batch_size=3
    )
    flatbuffer = path.read_bytes()
    ops = litert.op_names(flatbuffer)
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 4
    assert "WHILE" not in ops
    assert "not converted to the fused LSTM kernel" not in caplog.text
    rng = np.random.default_rng(1)
    for lengths in ([20, 11, 1], [5, 20, 17]):
        ids = right_padded_ids(rng, 3, 20, 300, lengths)
        got = litert.run_litert(flatbuffer, ids=ids)["probability"]
        expected = model(ids, training=False).numpy().reshape(-1)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_free_length_model_runs_any_length(tmp_path):
    model, _ = small_classifier()
    path = litert.export_litert_classifier(
        model, tmp_path / "free.tflite", None
    )
    flatbuffer = path.read_bytes()
    assert (
        litert.op_names(flatbuffer).count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 4
    )
    rng = np.random.default_rng(2)
    vocab_size = model.get_layer("embedding").input_dim
    for length in (3, 41):
        ids = right_padded_ids(rng, 1, length, vocab_size, [length - 1])
        got = litert.run_litert(flatbuffer, ids=ids)["probability"]
        expected = model(ids, training=False).numpy().reshape(-1)
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (lambda: toolkit.VanillaRNN(6), "vanilla RNN"),
        (lambda: toolkit.LSTM(6, use_bias=False), "use_bias=False"),
        (lambda: toolkit.LayerNormLSTM(6), "has no LiteRT kernel"),
    ],
)
def test_a_layer_that_cannot_fuse_is_named_with_its_reason(
    tmp_path, caplog, layer, reason
):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 8, mask_zero=True, name="embedding")(inputs)
    x = layer()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, "sigmoid")(x))
    with caplog.at_level("WARNING"):
        path = litert.export_litert_classifier(model, tmp_path / "x.tflite", 9)
    assert "is not converted to the fused LSTM kernel" in caplog.text
    assert reason in caplog.text
    ops = litert.op_names(path.read_bytes())
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in ops and "WHILE" in ops


def test_quantized_exports_store_smaller_weights_and_stay_close(tmp_path):
    # Wide enough that the converter quantizes the kernels (it leaves
    # tensors of under 1,024 values in float32).
    encoder = EncoderSpec(300, 32, units=[32, 32], bidirectional=True)
    model = models.build_text_classifier(encoder, seed=1)
    sizes = {}
    for quantize in litert.QUANTIZATIONS:
        path = litert.export_litert_classifier(
            model, tmp_path / f"{quantize}.tflite", 16, quantize=quantize
        )
        sizes[quantize] = path.stat().st_size
        ops = litert.op_names(path.read_bytes())
        assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 4
    # The check inside the export held each within 5e-2 of Keras.
    assert sizes["dynamic"] < sizes["none"]
    assert sizes["float16"] < sizes["none"]
    with pytest.raises(litert.LiteRTExportError, match="quantize"):
        litert.export_litert_classifier(
            model, tmp_path / "x.tflite", 16, quantize="int4"
        )


@pytest.mark.slow
def test_a_converted_model_that_disagrees_with_keras_is_not_written(
    tmp_path, monkeypatch
):
    """The untracked-variable route outputs NaN; whatever the cause, a
    non-finite or different result is refused and nothing is written."""
    model, _ = small_classifier()
    real_run = litert.run_litert

    def nan_run(flatbuffer, **inputs):
        outputs = real_run(flatbuffer, **inputs)
        return {name: value * np.nan for name, value in outputs.items()}

    monkeypatch.setattr(litert, "run_litert", nan_run)
    with pytest.raises(litert.LiteRTExportError, match="non-finite"):
        litert.export_litert_classifier(model, tmp_path / "x.tflite", 8)
    assert not (tmp_path / "x.tflite").exists()
    monkeypatch.setattr(
        litert,
        "run_litert",
        lambda flatbuffer, **inputs: {
            name: value + 1e-3
            for name, value in real_run(flatbuffer, **inputs).items()
        },
    )
    with pytest.raises(litert.LiteRTExportError, match="differs from Keras"):
        litert.export_litert_classifier(model, tmp_path / "x.tflite", 8)


def test_a_reused_interpreter_must_reset_the_fused_lstm_state(tmp_path):
    """The fused kernel carries h and c from one invoke to the next; the
    runner resets them, so repeated calls give the first call's result."""
    model, _ = small_classifier()
    path = litert.export_litert_classifier(model, tmp_path / "m.tflite", None)
    ids = np.array([[5, 9, 3, 2, 7, 1]], np.int32)
    expected = model(ids, training=False).numpy().reshape(-1)
    runner = litert.LiteRTRunner(path.read_bytes())
    longer = np.array([[4, 4, 8, 1, 2, 3, 9, 9, 6]], np.int32)
    expected_longer = model(longer, training=False).numpy().reshape(-1)
    for _ in range(2):  # different lengths: the interpreter is resized
        np.testing.assert_allclose(
            runner(ids=ids)["probability"], expected, atol=1e-5
        )
        np.testing.assert_allclose(
            runner(ids=longer)["probability"], expected_longer, atol=1e-5
        )
    carried = runner.interpreter.get_signature_runner()
    first, second = (carried(ids=ids)["probability"] for _ in range(2))
    assert not np.allclose(first, second)  # without a reset, state carries


def test_char_lm_step_with_internal_state_is_fused(tmp_path, caplog):
    """`state="internal"`: the LSTM is the fused kernel, its state lives in
    the interpreter, and stepping it generates Keras's logits; a reset
    starts a new text."""
    model = small_char_lm()
    path = litert.export_litert_char_lm_step(
        model, tmp_path / "step.tflite", state="internal"
    )
    flatbuffer = path.read_bytes()
    ops = litert.op_names(flatbuffer)
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 1 and "WHILE" not in ops
    runner = StateRunner.for_model(model)
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    keras_logits, _ = runner(np.array([ids]), runner.initial_state(1))
    interpreter = litert._interpreter(flatbuffer)
    step = interpreter.get_signature_runner()
    for _ in range(2):
        for t, next_id in enumerate(ids):
            logits = step(id=np.array([[next_id]], np.int32))["logits"]
            np.testing.assert_allclose(logits[0], keras_logits[0, t], atol=1e-5)
        interpreter.reset_all_variables()


def test_the_explicit_state_step_says_it_keeps_the_loop(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        path = litert.export_litert_char_lm_step(
            small_char_lm(), tmp_path / "step.tflite"
        )
    assert "converter declined" in caplog.text
    assert "WHILE" in litert.op_names(path.read_bytes())
