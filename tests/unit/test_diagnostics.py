"""Gradient flow through time: measured norms against the analytic ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit import LSTM, DeepRNN, VanillaRNN, optimizers
from toolkit.lab import diagnostics, plots


def last_step_loss(direction):
    direction = tf.constant(direction, tf.float32)
    return lambda outputs: tf.reduce_sum(outputs[:, -1] * direction)


def test_linear_rnn_gradients_are_powers_of_the_transposed_kernel(rng):
    """h_t = x_t W_x + h_{t-1} W_h + b, L = <h_T, v>: so
    dL/dh_t = v (W_h^T)^(T-t) for every example."""
    layer = VanillaRNN(4, activation=None, return_sequences=True)
    x = rng.standard_normal((3, 12, 2)).astype("float32")
    layer(x)
    w_h = np.asarray(layer.cell.recurrent_kernel, np.float64)
    v = rng.standard_normal(4)
    result = diagnostics.gradient_norms_through_time(
        layer, x, last_step_loss(v)
    )
    expected = [
        np.sqrt(3) * np.linalg.norm(v @ np.linalg.matrix_power(w_h.T, 11 - t))
        for t in range(12)
    ]
    assert result["h"].shape == (1, 12) and result["c"] is None
    np.testing.assert_allclose(result["h"][0], expected, rtol=1e-5)


def test_vanilla_rnn_with_small_singular_value_vanishes(rng):
    layer = VanillaRNN(16, return_sequences=True)
    x = rng.standard_normal((4, 60, 3)).astype("float32")
    layer(x)
    diagnostics.scale_recurrent_kernel(layer, 0.5)
    norms = diagnostics.gradient_norms_through_time(
        layer, x, last_step_loss(np.ones(16))
    )["h"][0]
    assert norms[0] < 1e-6 * norms[-1]
    # Each step back multiplies by W_h^T and tanh' <= 1, so the norm at
    # least halves (until it underflows to zero in float32).
    assert np.all(norms[:-1] <= 0.5 * norms[1:] * (1 + 1e-5))


def forced_lstm(forget_bias, steps=50):
    """An LSTM with zero weights: the gates are sigmoid(bias); the input
    gate is shut and the forget gate open (or shut)."""
    layer = LSTM(6, return_sequences=True)
    x = np.ones((2, steps, 3), "float32")
    layer(x)
    units = 6
    bias = np.zeros(4 * units, "float32")
    bias[:units] = -20.0  # input gate shut
    bias[units : 2 * units] = forget_bias
    bias[2 * units : 3 * units] = 1.0  # candidate g = tanh(1)
    bias[3 * units :] = 20.0  # output gate open
    kernel, recurrent, _ = layer.cell.get_weights()
    layer.cell.set_weights([0 * kernel, 0 * recurrent, bias])
    return layer, x


def test_open_forget_gate_preserves_the_cell_state_gradient():
    layer, x = forced_lstm(forget_bias=20.0)
    result = diagnostics.gradient_norms_through_time(
        layer, x, last_step_loss(np.ones(6))
    )
    c = result["c"][0]
    assert c[-1] > 0
    np.testing.assert_allclose(c, c[-1], rtol=1e-6)
    # h_t feeds nothing but the loss at the last step (zero W_h).
    assert np.all(result["h"][0][:-1] == 0) and result["h"][0][-1] > 0


def test_shut_forget_gate_cuts_the_cell_state_gradient():
    layer, x = forced_lstm(forget_bias=-20.0)
    c = diagnostics.gradient_norms_through_time(
        layer, x, last_step_loss(np.ones(6))
    )["c"][0]
    assert c[-2] < 1e-8 * c[-1]


def test_deep_stack_reports_every_layer(rng):
    stack = DeepRNN.from_spec(
        [5, 5], cell="lstm", residual=True, return_sequences=True
    )
    x = rng.standard_normal((2, 7, 3)).astype("float32")
    stack(x)
    result = diagnostics.gradient_norms_through_time(
        stack, x, last_step_loss(np.ones(5))
    )
    assert result["h"].shape == (2, 7) and result["c"].shape == (2, 7)
    # The top layer's last state gets exactly the loss direction.
    np.testing.assert_allclose(result["h"][1, -1], np.sqrt(2 * 5), rtol=1e-6)
    expected_loss = float(np.sum(np.asarray(stack(x))[:, -1]))
    np.testing.assert_allclose(result["loss"], expected_loss, rtol=1e-5)


def test_singular_values_and_scaling(rng):
    rnn = VanillaRNN(8)
    rnn(np.zeros((1, 2, 3), "float32"))
    diagnostics.scale_recurrent_kernel(rnn, 1.1)
    np.testing.assert_allclose(
        diagnostics.recurrent_singular_values(rnn)[0]["W_h"], 1.1, rtol=1e-5
    )
    lstm = LSTM(4)
    lstm(np.zeros((1, 2, 3), "float32"))
    values = diagnostics.recurrent_singular_values(lstm)[0]
    kernel = np.asarray(lstm.cell.recurrent_kernel)
    forget = np.linalg.svd(kernel[:, 4:8], compute_uv=False)[0]
    np.testing.assert_allclose(values["f"], forget, rtol=1e-6)
    assert set(values) == {"W_h", "i", "f", "c", "o"}


def test_unsupported_layers_are_clear_errors():
    with pytest.raises(TypeError, match="toolkit VanillaRNN, LSTM or DeepRNN"):
        diagnostics.recurrent_singular_values(keras.layers.LSTM(3))
    both = DeepRNN.from_spec([3, 3], bidirectional=True, return_sequences=True)
    both(np.zeros((1, 4, 2), "float32"))
    with pytest.raises(ValueError, match="bidirectional"):
        diagnostics.gradient_norms_through_time(
            both, np.zeros((1, 4, 2)), tf.reduce_sum
        )
    with pytest.raises(ValueError, match="positive float"):
        diagnostics.scale_recurrent_kernel(VanillaRNN(2), 0.0)


def clip_model(clipnorm):
    inputs = keras.Input((6, 2))
    rnn = VanillaRNN(8, name="rnn")
    model = keras.Model(inputs, keras.layers.Dense(1)(rnn(inputs)))
    model.compile(
        optimizer=optimizers.make_optimizer(
            "sgd", 0.1, clipnorm, track_gradients=True
        ),
        loss="mse",
    )
    return model, rnn


@pytest.mark.parametrize("clipnorm", [1e-3, 1e3])
def test_logged_clip_flag_agrees_with_a_manual_norm_computation(
    rng, tmp_path, clipnorm
):
    model, rnn = clip_model(clipnorm)
    x = rng.standard_normal((16, 6, 2)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32") * 3
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    norms = np.array([float(tf.norm(g)) for g in grads])
    logger = diagnostics.GradientFlowLogger(
        tmp_path / "flow.csv",
        every=1,
        layer=rnn,
        probe=(x, lambda outputs: tf.reduce_sum(outputs)),
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[logger])
    (row,) = logger.rows
    assert row["clip_fired"] == float(np.any(norms > clipnorm))
    np.testing.assert_allclose(
        row["gradient_norm"], np.linalg.norm(norms), rtol=1e-5
    )
    assert row["clipped_fraction"] == row["clip_fired"]
    assert row["sv_layer0"] > 0 and row["first_last_ratio"] >= 0
    header = (tmp_path / "flow.csv").read_text().splitlines()[0]
    assert header.startswith("step,gradient_norm,clip_fired")


def test_gradient_stats_figure_reads_the_logged_rows(rng, tmp_path):
    model, rnn = clip_model(1e-3)
    x = rng.standard_normal((32, 6, 2)).astype("float32")
    y = np.ones((32, 1), "float32")
    logger = diagnostics.GradientFlowLogger(tmp_path / "f.csv", 1, rnn)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[logger])
    table = plots._read_csv(tmp_path / "f.csv")
    for key in logger.rows[0]:
        np.testing.assert_allclose(
            table[key], [row[key] for row in logger.rows], rtol=1e-6
        )
    figure = plots.gradient_stats_over_training(
        {"clipped": tmp_path / "f.csv"}, tmp_path / "stats.png"
    )
    assert figure.stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        plots.gradient_stats_over_training(
            {"x": tmp_path / "missing.csv"}, tmp_path / "other.png"
        )


def test_clipped_fraction_counts_steps_and_untracked_optimizers_are_refused(
    rng, tmp_path
):
    model, _ = clip_model(1e-3)
    x = rng.standard_normal((32, 6, 2)).astype("float32")
    y = np.ones((32, 1), "float32") * 5
    logger = diagnostics.GradientFlowLogger(tmp_path / "f.csv", every=2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[logger])
    assert [row["step"] for row in logger.rows] == [2, 4]
    assert logger.rows[-1]["clipped_fraction"] == 1.0
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="track_gradients=True"):
        plain.fit(
            np.zeros((4, 2)),
            np.zeros((4, 1)),
            verbose=0,
            callbacks=[diagnostics.GradientFlowLogger(tmp_path / "g.csv")],
        )
