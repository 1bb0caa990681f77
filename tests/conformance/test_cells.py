"""Cells on their own: one step against the Keras cells, the dropout-mask
protocol, and the UnitForgetBias initializer."""

import keras
import numpy as np
import pytest

import toolkit
from reference import rnn_reference

CELLS = {
    "lstm": (keras.layers.LSTMCell, toolkit.LSTMCell),
    "vanilla": (keras.layers.SimpleRNNCell, toolkit.VanillaRNNCell),
}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_one_step_matches_keras_cell_with_copied_weights(cell, rng):
    builtin_class, toolkit_class = CELLS[cell]
    builtin, ours = builtin_class(6), toolkit_class(6)
    x = rng.standard_normal((3, 4)).astype("float32")
    count = 2 if cell == "lstm" else 1
    states = [
        rng.standard_normal((3, 6)).astype("float32") for _ in range(count)
    ]
    builtin(x, states)
    ours(x, states)
    assert [w.name for w in ours.weights] == [w.name for w in builtin.weights]
    assert [w.shape for w in ours.weights] == [w.shape for w in builtin.weights]
    ours.set_weights(builtin.get_weights())
    got_h, got_states = ours(x, states)
    want_h, want_states = builtin(x, states)
    np.testing.assert_allclose(got_h, want_h, atol=1e-6)
    for got, want in zip(got_states, want_states, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)

    expected, expected_states = rnn_reference(
        x[:, None, :], *ours.get_weights(), cell=cell, initial_state=states
    )
    np.testing.assert_allclose(got_h, expected[:, 0], atol=1e-6)
    got_states = got_states if isinstance(got_states, list) else [got_states]
    assert len(got_states) == len(expected_states)
    for got, want in zip(got_states, expected_states, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_vanilla_cell_accepts_a_bare_state_tensor(rng):
    cell = toolkit.VanillaRNNCell(3)
    x = rng.standard_normal((2, 4)).astype("float32")
    h = rng.standard_normal((2, 3)).astype("float32")
    output, new_state = cell(x, h)
    np.testing.assert_allclose(output, new_state)


def test_lstm_cell_weight_shapes_and_gate_layout():
    cell = toolkit.LSTMCell(5)
    cell.build((None, 3))
    assert tuple(cell.kernel.shape) == (3, 20)
    assert tuple(cell.recurrent_kernel.shape) == (5, 20)
    assert tuple(cell.bias.shape) == (20,)
    assert cell.state_size == [5, 5]
    assert cell.output_size == 5


def test_lstm_gate_order_is_i_f_c_o(rng):
    """Saturate one gate block through the bias and check its effect."""
    cell = toolkit.LSTMCell(
        2, kernel_initializer="zeros", recurrent_initializer="zeros"
    )
    x = np.zeros((1, 3), "float32")
    c_prev = np.full((1, 2), 0.5, "float32")
    h_prev = np.zeros((1, 2), "float32")
    cell(x, [h_prev, c_prev])
    big = 50.0
    # i closed, f open, g anything, o open: c_t = c_{t-1}.
    cell.bias.assign(
        np.array([-big] * 2 + [big] * 2 + [0.3] * 2 + [big] * 2, "float32")
    )
    h, (_, c) = cell(x, [h_prev, c_prev])
    np.testing.assert_allclose(c, c_prev, atol=1e-6)
    np.testing.assert_allclose(h, np.tanh(c_prev), atol=1e-6)
    # i open, f closed, g = tanh(0.3): c_t = tanh(0.3).
    cell.bias.assign(
        np.array([big] * 2 + [-big] * 2 + [0.3] * 2 + [big] * 2, "float32")
    )
    _, (_, c) = cell(x, [h_prev, c_prev])
    np.testing.assert_allclose(c, np.tanh(0.3) * np.ones((1, 2)), atol=1e-6)


def test_cell_dropout_mask_is_cached_until_reset():
    cell = toolkit.VanillaRNNCell(
        32,
        dropout=0.5,
        activation=None,
        use_bias=False,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        seed=1,
    )
    x = np.ones((4, 32), "float32")
    h = np.zeros((4, 32), "float32")
    first, _ = cell(x, [h], training=True)
    again, _ = cell(x, [h], training=True)
    np.testing.assert_array_equal(first, again)
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
    fresh, _ = cell(x, [h], training=True)
    assert not np.array_equal(first, fresh)
    inference, _ = cell(x, [h], training=False)
    np.testing.assert_array_equal(inference, x)


def test_cell_get_initial_state_shapes():
    assert [s.shape for s in toolkit.LSTMCell(3).get_initial_state(2)] == [
        (2, 3),
        (2, 3),
    ]
    assert [
        s.shape for s in toolkit.VanillaRNNCell(3).get_initial_state(5)
    ] == [(5, 3)]


def test_unit_forget_bias_layout_and_wrapped_initializer():
    init = toolkit.UnitForgetBias()
    np.testing.assert_array_equal(init((8,)), [0, 0, 1, 1, 0, 0, 0, 0])
    wrapped = toolkit.UnitForgetBias(keras.initializers.Constant(0.25))
    np.testing.assert_array_equal(wrapped((4,)), [0.25, 1.0, 0.25, 0.25])


def test_unit_forget_bias_serializes():
    init = toolkit.UnitForgetBias(keras.initializers.Constant(-2.0))
    restored = keras.initializers.deserialize(
        keras.initializers.serialize(init)
    )
    assert isinstance(restored, toolkit.UnitForgetBias)
    np.testing.assert_array_equal(restored((4,)), [-2.0, 1.0, -2.0, -2.0])


@pytest.mark.parametrize("shape", [(6,), (8, 2), (0,)])
def test_unit_forget_bias_rejects_shapes_that_are_not_4_units(shape):
    with pytest.raises(ValueError, match="4 \\* units"):
        toolkit.UnitForgetBias()(shape)
