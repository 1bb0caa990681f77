"""DeepRNN: shapes, residual connections, bidirectional layers, masking,
state, argument checks and training on a small synthetic task."""

import numpy as np
import pytest

import toolkit


def test_output_shapes(rng):
    x = rng.standard_normal((2, 7, 16)).astype("float32")
    assert toolkit.DeepRNN.from_spec([32, 32, 8])(x).shape == (2, 8)
    assert toolkit.DeepRNN.from_spec(8, num_layers=3, return_sequences=True)(
        x
    ).shape == (
        2,
        7,
        8,
    )
    assert toolkit.DeepRNN.from_spec(8, bidirectional=True)(x).shape == (2, 16)
    assert toolkit.DeepRNN.from_spec(
        8, bidirectional=True, merge_mode="sum", return_sequences=True
    )(x).shape == (2, 7, 8)
    stack = toolkit.DeepRNN.from_spec(8, num_layers=4, cell="vanilla")
    assert stack.compute_output_shape((None, 7, 16)) == (None, 8)
    assert len(stack.rnn_layers) == 4
    assert all(
        isinstance(layer, toolkit.VanillaRNN) for layer in stack.rnn_layers
    )


def test_stack_equals_composing_its_layers_by_hand(rng):
    x = rng.standard_normal((3, 6, 5)).astype("float32")
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], bool)
    stack = toolkit.DeepRNN.from_spec([4, 4, 3], residual=True)
    out = stack(x, mask=mask)
    first, second, third = stack.rnn_layers
    # The stack asks its layers for their states: output first.
    h1, *_ = first(x, mask=mask)
    h2 = second(h1, mask=mask)[0] + h1  # equal widths: residual
    expected, *_ = third(h2, mask=mask)  # top layer returns one vector
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert stack.residual_connections == (False, True, False)


@pytest.mark.parametrize(
    "units", [[8, 16, 32], [8, 8]], ids=["unequal", "top_returns_vector"]
)
def test_residual_without_a_place_for_it_is_an_error(units):
    with pytest.raises(ValueError, match="residual=True.*widths"):
        toolkit.DeepRNN.from_spec(units, residual=True)(np.zeros((1, 3, 4)))
    toolkit.DeepRNN.from_spec(
        units[:1] + units[:1], residual=True, return_sequences=True
    )(np.zeros((1, 3, 4)))


def test_dropout_between_layers_only_in_training(rng):
    x = rng.standard_normal((4, 5, 6)).astype("float32")
    stack = toolkit.DeepRNN.from_spec(16, num_layers=2, dropout=0.5, seed=2)
    inference = stack(x)
    np.testing.assert_array_equal(stack(x, training=False), inference)
    assert not np.allclose(stack(x, training=True), inference)
    assert len(stack.dropout_layers) == 1


def test_masked_padding_does_not_change_the_result(rng):
    x = rng.standard_normal((1, 4, 3)).astype("float32")
    padded = np.concatenate([x, np.zeros((1, 3, 3), "float32")], axis=1)
    mask = np.array([[1, 1, 1, 1, 0, 0, 0]], bool)
    stack = toolkit.DeepRNN.from_spec(5, num_layers=3, bidirectional=True)
    np.testing.assert_allclose(stack(padded, mask=mask), stack(x), atol=1e-6)


def test_stateful_stack_carries_and_resets_state(rng):
    x = rng.standard_normal((2, 8, 3)).astype("float32")
    stateful = toolkit.DeepRNN.from_spec(
        4, num_layers=2, stateful=True, return_sequences=True
    )
    stateless = toolkit.DeepRNN.from_spec(
        4, num_layers=2, return_sequences=True
    )
    stateful(x[:, :4])
    stateless(x)
    stateless.set_weights(stateful.get_weights())
    stateful.reset_state()
    halves = np.concatenate([stateful(x[:, :4]), stateful(x[:, 4:])], axis=1)
    np.testing.assert_allclose(halves, stateless(x), atol=1e-6)
    stateful.reset_state()
    np.testing.assert_allclose(
        stateful(x[:, :4]), stateless(x[:, :4]), atol=1e-6
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 0}, "`units`"),
        ({"units": []}, "`units`"),
        ({"units": [8, -1]}, "`units`.*-1"),
        ({"units": 8, "num_layers": 0}, "`num_layers`.*0"),
        ({"units": [8, 8], "num_layers": 3}, "`num_layers`.*3"),
        ({"units": 8, "cell": "gru"}, "`cell`.*'gru'"),
        ({"units": 8, "dropout": 1.0}, "`dropout`.*1.0"),
        ({"units": 8, "merge_mode": "max"}, "`merge_mode`.*'max'"),
        ({"units": 8, "layer_kwargs": {"units": 3}}, "layer_kwargs"),
        ({"units": 8, "layer_kwargs": {"dropout": 2.0}}, "`dropout`.*2.0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        toolkit.DeepRNN.from_spec(**kwargs)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match="rank 3"):
        toolkit.DeepRNN.from_spec(4)(np.zeros((2, 5), "float32"))
