"""DeepRNN: shapes, residual connections, bidirectional layers, masking,
state, argument checks and training on a small synthetic task."""

import re

import keras
import numpy as np
import pytest

import toolkit
from reference import rnn_reference


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


def two_lstms(width=6, **kwargs):
    return [
        toolkit.LSTM(width, return_sequences=True, name="low"),
        toolkit.LSTM(width, return_sequences=True, name="high", **kwargs),
    ]


def test_composed_stack_equals_its_spec_form(rng):
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    composed = toolkit.DeepRNN(two_lstms(), residual=True)
    spec = toolkit.DeepRNN.from_spec(6, residual=True, return_sequences=True)
    composed(x)
    spec(x)
    spec.set_weights(composed.get_weights())
    np.testing.assert_allclose(composed(x), spec(x), atol=1e-6)
    assert composed.residual_connections == spec.residual_connections
    assert composed.rnn_layers[0].name == "low"


def test_stack_of_keras_builtin_layers_carries_their_states(rng):
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    stack = toolkit.DeepRNN(
        [
            keras.layers.LSTM(5, return_sequences=True),
            keras.layers.GRU(4, return_sequences=True),
            keras.layers.SimpleRNN(4, return_sequences=True),
        ],
        residual=True,
        return_state=True,
    )
    whole, *final = stack(x)
    assert stack.state_sizes == [[5, 5], [4], [4]]
    assert stack.residual_connections == (False, False, True)
    assert [[tuple(s.shape) for s in layer] for layer in final] == [
        [(2, 5), (2, 5)],
        [(2, 4)],
        [(2, 4)],
    ]
    first, *middle = stack(x[:, :2])
    second, *_ = stack(x[:, 2:], initial_state=middle)
    np.testing.assert_allclose(
        np.concatenate([first, second], 1), whole, atol=1e-5
    )


def test_initial_state_changes_the_output_and_can_be_partial(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    stack = toolkit.DeepRNN(two_lstms(), return_state=True)
    zero, *_ = stack(x)
    states = stack.get_initial_state(2)
    np.testing.assert_allclose(stack(x, initial_state=states)[0], zero)
    states[1] = [np.ones((2, 6), "float32")] * 2
    moved, *_ = stack(x, initial_state=states)
    assert not np.allclose(moved, zero)
    # None: that layer starts from zeros.
    partial = [None, states[1]]
    np.testing.assert_allclose(
        stack(x, initial_state=partial)[0], moved, atol=1e-6
    )


def test_bidirectional_layer_states_are_forward_then_backward(rng):
    """Unequal widths (3 forward, 5 backward) so that swapped halves show:
    the states are the forward layer's [h, c], then the backward's, each
    equal to the numpy reference run over the sequence in its direction."""
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    bidirectional = keras.layers.Bidirectional(
        toolkit.LSTM(3, return_sequences=True),
        backward_layer=toolkit.LSTM(
            5, return_sequences=True, go_backwards=True
        ),
    )
    stack = toolkit.DeepRNN([bidirectional], return_state=True)
    output, states = stack(x)
    assert output.shape == (2, 4, 8) and len(states) == 4
    assert stack.state_sizes == [[3, 3, 5, 5]]
    forward = bidirectional.forward_layer.get_weights()
    backward = bidirectional.backward_layer.get_weights()
    want_forward = rnn_reference(x, *forward)[1]
    want_backward = rnn_reference(x, *backward, go_backwards=True)[1]
    for got, want in zip(states, [*want_forward, *want_backward], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_layer_after_unequal_bidirectional_halves_is_built_for_their_sum():
    stack = toolkit.DeepRNN(
        [
            keras.layers.Bidirectional(
                toolkit.LSTM(3, return_sequences=True),
                backward_layer=toolkit.LSTM(
                    5, return_sequences=True, go_backwards=True
                ),
            ),
            toolkit.LSTM(2),
        ]
    )
    stack.build((None, 4, 3))
    assert tuple(stack.layers[1].cell.kernel.shape) == (8, 8)
    assert stack(np.zeros((2, 4, 3), "float32")).shape == (2, 2)


@pytest.mark.parametrize(
    ("initial_state", "message"),
    [
        ([[np.zeros((2, 6))] * 2], r"one list of states per layer.*2 layers"),
        (
            [[np.zeros((2, 6))] * 2, [np.zeros((2, 5))] * 2],
            re.escape("[h: (2, 6), c: (2, 6)]"),
        ),
    ],
)
def test_wrong_initial_state_is_a_value_error(initial_state, message):
    stack = toolkit.DeepRNN(two_lstms())
    with pytest.raises(ValueError, match=message):
        stack(np.zeros((2, 4, 3), "float32"), initial_state=initial_state)


def test_functional_model_with_state_inputs_and_outputs(rng):
    inputs = keras.Input((None, 3))
    state_inputs = [[keras.Input((6,)), keras.Input((6,))] for _ in range(2)]
    stack = toolkit.DeepRNN(two_lstms(), return_state=True)
    output, *states = stack(inputs, initial_state=state_inputs)
    flat = [s for layer in state_inputs for s in layer]
    model = keras.Model(
        [inputs, *flat], [output, *[s for layer in states for s in layer]]
    )
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    zeros = [np.zeros((2, 6), "float32")] * 4
    got = model.predict_on_batch([x, *zeros])
    assert len(got) == 5 and got[0].shape == (2, 4, 6)
    np.testing.assert_allclose(got[0], stack(x)[0], atol=1e-6)


def test_reset_states_is_reset_state(rng):
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    stack = toolkit.DeepRNN.from_spec(4, stateful=True, return_sequences=True)
    first = np.asarray(stack(x))
    assert not np.allclose(stack(x), first)
    stack.reset_states()
    np.testing.assert_allclose(stack(x), first, atol=1e-6)


def test_summary_shows_the_inner_layers():
    inputs = keras.Input((None, 3))
    stack = toolkit.DeepRNN(two_lstms(), dropout=0.1, name="deep_rnn")
    model = keras.Model(inputs, stack(inputs))
    lines = []
    model.summary(expand_nested=True, print_fn=lines.append)
    text = "\n".join(lines)
    for name in ("deep_rnn", "low", "dropout_0", "high"):
        assert name in text
    lines = []
    model.summary(print_fn=lines.append)
    assert "low" not in "\n".join(lines)


def test_residual_plan_is_public_read_only_and_decided_at_init():
    stack = toolkit.DeepRNN(
        [
            toolkit.VanillaRNN(4, return_sequences=True),
            toolkit.VanillaRNN(4, return_sequences=True),
            toolkit.VanillaRNN(4),
        ],
        residual=True,
    )
    assert not stack.built
    assert stack.residual_connections == (False, True, False)
    with pytest.raises(AttributeError):
        stack.residual_connections = (True, True, True)


@pytest.mark.parametrize(
    ("layers", "error", "message"),
    [
        ([8, 8], TypeError, "from_spec"),
        ([keras.layers.Dense(3)], TypeError, "keras.layers.RNN"),
        ([], ValueError, "at least one layer"),
        (
            lambda: [toolkit.LSTM(3), toolkit.LSTM(3)],
            ValueError,
            "layer 0.*return_sequences=True",
        ),
        (
            lambda: [
                keras.layers.Bidirectional(
                    toolkit.LSTM(3, return_sequences=True), merge_mode=None
                )
            ],
            ValueError,
            "merge_mode=None",
        ),
        (
            lambda: [
                toolkit.LSTM(3, return_sequences=True, stateful=True),
                toolkit.LSTM(3),
            ],
            ValueError,
            "all be stateful",
        ),
    ],
)
def test_bad_layer_lists(layers, error, message):
    layers = layers() if callable(layers) else layers
    with pytest.raises(error, match=message):
        toolkit.DeepRNN(layers)


def test_composed_stack_round_trips_through_a_saved_model(tmp_path, rng):
    inputs = keras.Input((None, 3))
    stack = toolkit.DeepRNN(
        [
            toolkit.LSTM(4, return_sequences=True, recurrent_dropout=0.1),
            keras.layers.GRU(4, return_sequences=True),
        ],
        dropout=0.2,
        residual=True,
        seed=3,
        name="deep_rnn",
    )
    model = keras.Model(inputs, stack(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    restored = loaded.get_layer("deep_rnn")
    assert restored.residual_connections == (False, True)
    assert isinstance(restored.rnn_layers[1], keras.layers.GRU)
    assert restored.dropout == 0.2 and restored.seed == 3


def test_spec_config_of_earlier_versions_still_loads():
    old = {
        "name": "deep_rnn",
        "units": [4, 4],
        "cell": "vanilla",
        "dropout": 0.0,
        "residual": True,
        "bidirectional": False,
        "merge_mode": "concat",
        "return_sequences": True,
        "stateful": False,
        "seed": None,
        "layer_kwargs": {},
    }
    stack = toolkit.DeepRNN.from_config(old)
    assert stack.units == [4, 4] and stack.residual_connections == (
        False,
        True,
    )
    assert isinstance(stack.rnn_layers[0], toolkit.VanillaRNN)
