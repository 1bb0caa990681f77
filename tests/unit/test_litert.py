"""LiteRT (TensorFlow Lite) exports: the converted classifier and character
LM step match Keras in `tf.lite.Interpreter` within 1e-5, and the routes
that cannot work are refused with a clear error."""

import numpy as np
import pytest
import tensorflow as tf

from export_fixtures import small_char_lm, small_classifier
from toolkit.serving import litert
from toolkit.stepping import StateRunner


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
    with pytest.raises(litert.LiteRTExportError, match="sequence_length"):
        litert.export_litert_classifier(model, tmp_path / "x.tflite", None)
    assert not (tmp_path / "x.tflite").exists()


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
