"""Toolkit VanillaRNN / LSTM against the Keras built-ins and a numpy reference.

The toolkit layers run a hoisted input projection and a hand-written
backward pass, so both outputs and gradients are compared.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import toolkit
from reference import rnn_reference

PAIRS = {
    "lstm": (keras.layers.LSTM, toolkit.LSTM),
    "vanilla": (keras.layers.SimpleRNN, toolkit.VanillaRNN),
}
UNITS = 4
ATOL = 1e-5


def right_padded_mask(batch, timesteps, lengths):
    return np.arange(timesteps)[None, :] < np.asarray(lengths)[:, None]


def build_pair(cell, direction, x, **kwargs):
    """A built-in and a toolkit layer with identical weights.

    `direction` says which one is initialised and copied into the other.
    """
    builtin_class, toolkit_class = PAIRS[cell]
    builtin = builtin_class(UNITS, **kwargs)
    ours = toolkit_class(UNITS, **kwargs)
    builtin(x)
    ours(x)
    if direction == "builtin_to_toolkit":
        ours.set_weights(builtin.get_weights())
    else:
        builtin.set_weights(ours.get_weights())
    return builtin, ours


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def outputs_and_gradients(layer, x, call_kwargs):
    """Outputs of `layer(x)` and gradients of a fixed random projection of
    all outputs w.r.t. the inputs, the initial state and every weight."""
    x = tf.convert_to_tensor(x)
    initial_state = [
        tf.convert_to_tensor(s) for s in call_kwargs.get("initial_state", [])
    ]
    kwargs = dict(call_kwargs)
    if initial_state:
        kwargs["initial_state"] = initial_state
    with tf.GradientTape() as tape:
        tape.watch(x)
        tape.watch(initial_state)
        outputs = as_list(layer(x, **kwargs))
        weights_rng = np.random.default_rng(7)
        loss = sum(
            tf.reduce_sum(
                out * weights_rng.standard_normal(out.shape).astype("float32")
            )
            for out in outputs
        )
    sources = [x, *initial_state, *layer.trainable_weights]
    gradients = tape.gradient(loss, sources)
    return [o.numpy() for o in outputs], [g.numpy() for g in gradients]


CASES = {
    "default": ({}, {}),
    "return_sequences": ({"return_sequences": True}, {}),
    "return_state": ({"return_state": True, "return_sequences": True}, {}),
    "go_backwards": ({"go_backwards": True, "return_sequences": True}, {}),
    "unroll": ({"unroll": True, "return_sequences": True}, {}),
    "use_bias_false": ({"use_bias": False}, {}),
    "mask": ({"return_sequences": True, "return_state": True}, {"mask": 1}),
    "mask_go_backwards": (
        {"return_sequences": True, "go_backwards": True},
        {"mask": 1},
    ),
    "mask_zero_output": (
        {"return_sequences": True, "zero_output_for_mask": True},
        {"mask": 1},
    ),
    "initial_state": ({"return_sequences": True}, {"initial_state": 1}),
    "tanh_relu_activation": ({"activation": "relu"}, {}),
}


def make_call_kwargs(cell, spec, rng, batch, timesteps):
    call_kwargs = {}
    if "mask" in spec:
        call_kwargs["mask"] = right_padded_mask(
            batch, timesteps, [timesteps, 5, 1]
        )
    if "initial_state" in spec:
        count = 2 if cell == "lstm" else 1
        call_kwargs["initial_state"] = [
            rng.standard_normal((batch, UNITS)).astype("float32")
            for _ in range(count)
        ]
    return call_kwargs


@pytest.mark.parametrize(
    "direction", ["builtin_to_toolkit", "toolkit_to_builtin"]
)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cell", sorted(PAIRS))
@pytest.mark.parametrize(
    "training",
    # training=True computes the backward factors in the forward loop;
    # training=False runs a lean forward loop and recomputes them when a
    # gradient is asked for.
    [False, True],
    ids=["inference", "training"],
)
def test_matches_builtin_outputs_and_gradients(
    cell, case, direction, training, rng
):
    layer_kwargs, spec = CASES[case]
    batch, timesteps = 3, 9
    x = rng.standard_normal((batch, timesteps, 5)).astype("float32")
    builtin, ours = build_pair(cell, direction, x, **layer_kwargs)
    call_kwargs = make_call_kwargs(cell, spec, rng, batch, timesteps)
    call_kwargs["training"] = training

    expected_out, expected_grads = outputs_and_gradients(
        builtin, x, call_kwargs
    )
    got_out, got_grads = outputs_and_gradients(ours, x, call_kwargs)

    assert len(got_out) == len(expected_out)
    for got, expected in zip(got_out, expected_out, strict=True):
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    for got, expected in zip(got_grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=1e-5)


def test_lstm_unit_forget_bias_false_matches_builtin(rng):
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    builtin, ours = build_pair(
        "lstm",
        "builtin_to_toolkit",
        x,
        unit_forget_bias=False,
        bias_initializer="random_normal",
    )
    np.testing.assert_allclose(ours(x), builtin(x), atol=ATOL)
    forget_bias = ours.cell.bias.numpy()[UNITS : 2 * UNITS]
    assert not np.allclose(forget_bias, 1.0)


def test_unit_forget_bias_initialises_like_builtin():
    x = np.zeros((1, 2, 3), "float32")
    ours = toolkit.LSTM(UNITS)
    ours(x)
    bias = ours.cell.bias.numpy()
    np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], 1.0)
    np.testing.assert_array_equal(bias[:UNITS], 0.0)
    np.testing.assert_array_equal(bias[2 * UNITS :], 0.0)


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_stateful_two_calls_match_builtin_and_one_long_call(cell, rng):
    x = rng.standard_normal((2, 10, 3)).astype("float32")
    builtin_class, toolkit_class = PAIRS[cell]
    builtin = builtin_class(UNITS, stateful=True, return_sequences=True)
    ours = toolkit_class(UNITS, stateful=True, return_sequences=True)
    builtin(x[:, :5])
    ours(x[:, :5])
    ours.set_weights(builtin.get_weights())
    builtin.reset_state()
    ours.reset_state()

    first = ours(x[:, :5])
    second = ours(x[:, 5:])
    np.testing.assert_allclose(first, builtin(x[:, :5]), atol=ATOL)
    np.testing.assert_allclose(second, builtin(x[:, 5:]), atol=ATOL)

    whole = toolkit_class(UNITS, return_sequences=True)
    whole(x)
    whole.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        np.concatenate([first, second], axis=1), whole(x), atol=ATOL
    )

    ours.reset_state()
    np.testing.assert_allclose(ours(x[:, :5]), first, atol=ATOL)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_matches_numpy_reference(cell, go_backwards, rng):
    batch, timesteps = 3, 8
    x = rng.standard_normal((batch, timesteps, 5)).astype("float32")
    mask = right_padded_mask(batch, timesteps, [8, 4, 2])
    count = 2 if cell == "lstm" else 1
    initial_state = [
        rng.standard_normal((batch, UNITS)).astype("float32")
        for _ in range(count)
    ]
    extra = {"unit_forget_bias": False} if cell == "lstm" else {}
    layer = PAIRS[cell][1](
        UNITS,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        bias_initializer="random_normal",
        **extra,
    )
    outputs, *states = layer(x, initial_state=initial_state, mask=mask)
    kernel, recurrent_kernel, bias = layer.get_weights()
    expected, expected_states = rnn_reference(
        x,
        kernel,
        recurrent_kernel,
        bias,
        cell=cell,
        initial_state=initial_state,
        mask=mask,
        go_backwards=go_backwards,
    )
    np.testing.assert_allclose(outputs, expected, atol=ATOL)
    for got, want in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL)


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_fast_path_equals_per_step_cell(cell, rng):
    """The hoisted layer and keras.layers.RNN stepping the same cell."""
    x = rng.standard_normal((4, 12, 6)).astype("float32")
    mask = right_padded_mask(4, 12, [12, 7, 3, 1])
    layer = PAIRS[cell][1](UNITS, return_sequences=True)
    layer(x)
    cell_class = toolkit.LSTMCell if cell == "lstm" else toolkit.VanillaRNNCell
    per_step = keras.layers.RNN(cell_class(UNITS), return_sequences=True)
    per_step(x)
    per_step.set_weights(layer.get_weights())
    for kwargs in ({}, {"mask": mask}):
        np.testing.assert_allclose(
            layer(x, **kwargs), per_step(x, **kwargs), atol=1e-6, rtol=0
        )


@pytest.mark.parametrize("cell", sorted(PAIRS))
@pytest.mark.parametrize(
    "variant",
    [
        "plain",
        "plain_training",
        "last_output_training",
        "mask_backwards",
        "mask_backwards_training",
        "rec_dropout",
    ],
)
def test_gradients_match_central_finite_differences(cell, variant, rng):
    batch, timesteps, features, units = 2, 5, 2, 3
    x = rng.standard_normal((batch, timesteps, features))
    kwargs = {
        "return_sequences": not variant.startswith("last_output"),
        "dtype": "float64",
    }
    call_kwargs = {"training": variant.endswith("_training")}
    if variant.startswith("mask_backwards"):
        kwargs["go_backwards"] = True
        call_kwargs["mask"] = right_padded_mask(batch, timesteps, [5, 3])
    layer = PAIRS[cell][1](units, bias_initializer="random_normal", **kwargs)
    layer(x)
    if variant == "rec_dropout":
        # A fixed recurrent mask, as a dropout mask would be.
        rec_mask = tf.constant(
            rng.integers(0, 2, (batch, units)) * 2.0, tf.float64
        )
        layer.cell.new_dropout_mask = lambda like, rate: rec_mask
        layer.cell.recurrent_dropout = 0.5
        call_kwargs["training"] = True
    weights = np.random.default_rng(3).standard_normal(
        (batch, timesteps, units)
        if kwargs["return_sequences"]
        else (batch, units)
    )
    x_var = tf.Variable(x)
    h0 = tf.Variable(rng.standard_normal((batch, units)))
    states = [h0]
    if cell == "lstm":
        states.append(tf.Variable(rng.standard_normal((batch, units))))

    def loss():
        out = layer(x_var, initial_state=[s + 0 for s in states], **call_kwargs)
        return tf.reduce_sum(out * weights)

    variables = [x_var, *states, *layer.trainable_weights]
    with tf.GradientTape() as tape:
        value = loss()
    analytic = tape.gradient(value, variables)
    eps = 1e-6
    for variable, gradient in zip(variables, analytic, strict=True):
        flat = variable.numpy().ravel()
        numeric = np.zeros_like(flat)
        for index in range(flat.size):
            for sign in (1, -1):
                shifted = flat.copy()
                shifted[index] += sign * eps
                variable.assign(shifted.reshape(variable.shape))
                numeric[index] += sign * float(loss()) / (2 * eps)
            variable.assign(flat.reshape(variable.shape))
        np.testing.assert_allclose(
            np.asarray(gradient).ravel(), numeric, rtol=1e-6, atol=1e-8
        )


def test_cell_with_dropout_uses_one_mask_per_sequence():
    """A linear VanillaRNN whose output at every step is the input mask."""
    units = 64
    layer = toolkit.VanillaRNN(
        units,
        activation=None,
        use_bias=False,
        dropout=0.5,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        return_sequences=True,
        seed=11,
    )
    x = np.ones((3, 6, units), "float32")
    first = layer(x, training=True).numpy()
    for t in range(1, 6):
        np.testing.assert_array_equal(first[:, t], first[:, 0])
    assert set(np.unique(first)) == {0.0, 2.0}
    assert not np.array_equal(first[0, 0], first[1, 0])

    second = layer(x, training=True).numpy()
    assert not np.array_equal(first, second)

    np.testing.assert_array_equal(layer(x, training=False), 1.0)
    np.testing.assert_array_equal(layer(x), 1.0)


def test_recurrent_dropout_mask_is_shared_across_timesteps():
    """h_t = (h_{t-1} * m) I with h_1 = 1: every later step has m's zeros."""
    units = 64
    layer = toolkit.VanillaRNN(
        units,
        activation=None,
        use_bias=False,
        recurrent_dropout=0.5,
        kernel_initializer="identity",
        recurrent_initializer="identity",
        return_sequences=True,
        seed=5,
    )
    x = np.zeros((2, 5, units), "float32")
    x[:, 0] = 1.0
    out = layer(x, training=True).numpy()
    zeros = out[:, 1] == 0
    assert zeros.any() and not zeros.all()
    for t in range(2, 5):
        np.testing.assert_array_equal(out[:, t] == 0, zeros)
    np.testing.assert_array_equal(layer(x, training=False)[:, 1:], 1.0)


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_dropout_matches_reference_with_the_layers_masks(cell, rng):
    """Outputs in training equal the numpy reference run with the very masks
    the layer drew, applied at every timestep."""
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    layer = PAIRS[cell][1](
        UNITS,
        dropout=0.3,
        recurrent_dropout=0.4,
        return_sequences=True,
        seed=3,
    )
    layer(x)
    drawn = []
    original = layer.cell.new_dropout_mask

    def recording(like, rate):
        mask = original(like, rate)
        drawn.append(mask.numpy())
        return mask

    layer.cell.new_dropout_mask = recording
    out = layer(x, training=True).numpy()
    dp_mask, rec_dp_mask = drawn
    kernel, recurrent_kernel, bias = layer.get_weights()
    expected, _ = rnn_reference(
        x,
        kernel,
        recurrent_kernel,
        bias,
        cell=cell,
        dp_mask=dp_mask,
        rec_dp_mask=rec_dp_mask,
    )
    np.testing.assert_allclose(out, expected, atol=ATOL)
    assert (dp_mask == 0).any() and (rec_dp_mask == 0).any()


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_works_in_sequential_functional_subclassed_and_bidirectional(cell, rng):
    layer_class = PAIRS[cell][1]
    x = rng.standard_normal((2, 6, 3)).astype("float32")

    sequential = keras.Sequential(
        [keras.Input((None, 3)), layer_class(UNITS), keras.layers.Dense(1)]
    )
    assert sequential(x).shape == (2, 1)

    inputs = keras.Input((6, 3))
    outputs = layer_class(UNITS, return_sequences=True)(inputs)
    assert keras.Model(inputs, outputs)(x).shape == (2, 6, UNITS)

    class Tagger(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn = layer_class(UNITS, return_sequences=True)
            self.head = keras.layers.Dense(2)

        def call(self, inputs):
            return self.head(self.rnn(inputs))

    assert Tagger()(x).shape == (2, 6, 2)

    builtin_bi = keras.layers.Bidirectional(
        PAIRS[cell][0](UNITS, return_sequences=True)
    )
    ours_bi = keras.layers.Bidirectional(
        layer_class(UNITS, return_sequences=True)
    )
    mask = right_padded_mask(2, 6, [6, 3])
    builtin_bi(x, mask=mask)
    ours_bi(x, mask=mask)
    ours_bi.set_weights(builtin_bi.get_weights())
    np.testing.assert_allclose(
        ours_bi(x, mask=mask), builtin_bi(x, mask=mask), atol=ATOL
    )


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_embedding_mask_propagates(cell, rng):
    tokens = np.array([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]])
    embedding = keras.layers.Embedding(10, 3, mask_zero=True)
    builtin_class, toolkit_class = PAIRS[cell]
    inputs = keras.Input((None,), dtype="int32")
    embedded = embedding(inputs)
    builtin_model = keras.Model(inputs, builtin_class(UNITS)(embedded))
    ours_model = keras.Model(inputs, toolkit_class(UNITS)(embedded))
    ours_model.set_weights(builtin_model.get_weights())
    np.testing.assert_allclose(
        ours_model(tokens), builtin_model(tokens), atol=ATOL
    )
    # Padding changes nothing: the same tokens without the padding agree.
    np.testing.assert_allclose(
        ours_model(tokens)[1], ours_model(tokens[1:2, :2])[0], atol=ATOL
    )


def test_lstm_weights_file_loads_into_the_builtin(tmp_path, rng):
    """Keras addresses layers in weights files by class name, so a
    `.weights.h5` file moves between `toolkit.LSTM` and `keras.layers.LSTM`
    (`VanillaRNN` weights move with get_weights / set_weights instead)."""
    x = rng.standard_normal((2, 6, 3)).astype("float32")
    builtin_class, toolkit_class = PAIRS["lstm"]

    def model(layer_class):
        inputs = keras.Input((6, 3))
        return keras.Model(inputs, layer_class(UNITS)(inputs))

    ours = model(toolkit_class)
    path = tmp_path / "ours.weights.h5"
    ours.save_weights(path)
    builtin = model(builtin_class)
    builtin.load_weights(path)
    np.testing.assert_allclose(builtin(x), ours(x), atol=ATOL)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"units": 0}, "units"),
        ({"units": -3}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": 4, "dropout": -0.1}, "dropout"),
        ({"units": 4, "dropout": 1.0}, "dropout"),
        ({"units": 4, "recurrent_dropout": 1.5}, "recurrent_dropout"),
        ({"units": 4, "activation": "no_such_activation"}, "activation"),
    ],
)
@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_invalid_arguments_name_the_argument_and_value(cell, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as error:
        PAIRS[cell][1](**kwargs)
    assert repr(kwargs[argument]) in str(error.value)


def test_lstm_invalid_recurrent_activation():
    with pytest.raises(ValueError, match="`recurrent_activation`.*'nope'"):
        toolkit.LSTM(4, recurrent_activation="nope")


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_wrong_input_rank_is_a_clear_error(cell):
    layer = PAIRS[cell][1](UNITS)
    with pytest.raises(ValueError, match=r"rank 3.*\(4, 7\)"):
        layer(np.zeros((4, 7), "float32"))
    layer(np.zeros((4, 7, 2), "float32"))
    with pytest.raises(ValueError, match=r"rank 3.*\(4, 7, 2, 1\)"):
        layer(np.zeros((4, 7, 2, 1), "float32"))


def test_layer_exposes_cell_settings_read_only():
    layer = toolkit.LSTM(5, dropout=0.25, unit_forget_bias=False)
    assert layer.units == 5
    assert layer.dropout == 0.25
    assert layer.unit_forget_bias is False
    with pytest.raises(AttributeError):
        layer.units = 3
