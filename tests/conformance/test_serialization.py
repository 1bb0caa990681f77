"""Round trips: get_config/from_config, .keras files and SavedModel export."""

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import toolkit
from helpers import run_script

LAYERS = {
    "lstm": lambda: toolkit.LSTM(
        6,
        return_sequences=True,
        dropout=0.1,
        recurrent_dropout=0.2,
        unit_forget_bias=False,
        kernel_regularizer="l2",
        seed=3,
        bias_initializer=keras.initializers.Constant(0.1),
    ),
    "vanilla": lambda: toolkit.VanillaRNN(
        6,
        return_sequences=True,
        activation="relu",
        go_backwards=True,
        recurrent_constraint="non_neg",
    ),
    "deep": lambda: toolkit.DeepRNN.from_spec(
        [8, 8, 4],
        cell="lstm",
        dropout=0.2,
        residual=True,
        bidirectional=True,
        merge_mode="sum",
        return_sequences=True,
        seed=1,
        layer_kwargs={"recurrent_dropout": 0.1},
    ),
}


def make_model(name):
    inputs = keras.Input((None, 5))
    hidden = LAYERS[name]()(inputs)
    outputs = keras.layers.Dense(2)(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_get_config_from_config_round_trip(name):
    layer = LAYERS[name]()
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path, rng):
    model = make_model(name)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    expected = model(x)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored(x), expected)
    for got, want in zip(
        restored.get_weights(), model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_keras_file_loads_in_a_process_that_only_imports_toolkit(tmp_path):
    model = make_model("deep")
    x = np.linspace(-1, 1, 3 * 7 * 5, dtype="float32").reshape(3, 7, 5)
    np.save(tmp_path / "expected.npy", model(x))
    model.save(tmp_path / "model.keras")
    script = textwrap.dedent(
        f"""
        import numpy as np, keras, toolkit
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        x = np.linspace(-1, 1, 105, dtype="float32").reshape(3, 7, 5)
        expected = np.load({str(tmp_path / "expected.npy")!r})
        np.testing.assert_array_equal(model(x), expected)
        print("loaded")
        """
    )
    stdout = run_script(script)
    assert "loaded" in stdout


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_saved_model_export_serves_identical_outputs(name, tmp_path, rng):
    model = make_model(name)
    export_dir = str(tmp_path / "export")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    for batch, timesteps in ((3, 7), (11, 4)):
        x = rng.standard_normal((batch, timesteps, 5)).astype("float32")
        np.testing.assert_allclose(served.serve(x), model(x), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_saved_model_serves_in_a_process_without_toolkit(tmp_path):
    model = make_model("lstm")
    x = np.linspace(-1, 1, 2 * 5 * 5, dtype="float32").reshape(2, 5, 5)
    np.save(tmp_path / "expected.npy", model(x))
    model.export(str(tmp_path / "export"), verbose=False)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(tmp_path / "export")!r})
        x = np.linspace(-1, 1, 50, dtype="float32").reshape(2, 5, 5)
        expected = np.load({str(tmp_path / "expected.npy")!r})
        np.testing.assert_allclose(served.serve(x), expected, atol=1e-6)
        assert "toolkit" not in sys.modules
        print("served")
        """
    )
    stdout = run_script(script)
    assert "served" in stdout
