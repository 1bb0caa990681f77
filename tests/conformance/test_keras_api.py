"""The toolkit cells and layers used exactly as Keras's own.

Dropout masks inside a plain `keras.layers.RNN`, Keras's signatures in
Keras's positional order, every argument on its own docstring line, the
layer properties, and the errors for a wrong `initial_state` or token ids.
The same dropout check under JAX runs in `jax_backend_check.py`.
"""

import inspect
import re

import keras
import numpy as np
import pytest

import toolkit

CELLS = {
    "vanilla": (keras.layers.SimpleRNNCell, toolkit.VanillaRNNCell),
    "lstm": (keras.layers.LSTMCell, toolkit.LSTMCell),
}
LAYERS = {
    "vanilla": (keras.layers.SimpleRNN, toolkit.VanillaRNN),
    "lstm": (keras.layers.LSTM, toolkit.LSTM),
}


def passthrough_cell(cls, units, **kwargs):
    """A cell whose output is its input times the dropout mask: identity
    kernel, zero recurrence and bias, linear activations (the LSTM's gates
    are then 0.5 and h = 0.5 * 0.5 * x * mask)."""
    extra = {"recurrent_activation": None} if cls is toolkit.LSTMCell else {}
    return cls(
        units,
        activation=None,
        use_bias=False,
        kernel_initializer=keras.initializers.Identity(),
        recurrent_initializer="zeros",
        **extra,
        **kwargs,
    )


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_in_keras_rnn_draws_a_new_mask_every_call(name):
    cls = CELLS[name][1]
    if cls is toolkit.LSTMCell:
        # Gates of exactly 1: kernel blocks identity for i, f, g, o.
        cell = toolkit.LSTMCell(
            16,
            activation=None,
            recurrent_activation=None,
            use_bias=False,
            kernel_initializer=keras.initializers.Constant(0.0),
            recurrent_initializer="zeros",
            dropout=0.5,
            seed=3,
        )
    else:
        cell = passthrough_cell(cls, 16, dropout=0.5, seed=3)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    x = np.ones((4, 6, 16), "float32")
    rnn(x)
    if cls is toolkit.LSTMCell:
        # z = x W with W = [I I I I]: i = f = g = o = x * mask, c_0 = 0.
        eye = np.eye(16, dtype="float32")
        cell.kernel.assign(np.concatenate([eye] * 4, axis=1))
    calls = [np.asarray(rnn(x, training=True)) for _ in range(3)]
    masks = []
    for out in calls:
        # One mask per sequence: every timestep sees the same dropped units.
        first = out[:, 0] != 0
        for t in range(1, 6):
            np.testing.assert_array_equal(out[:, t] != 0, first)
        masks.append(first)
        assert 0 < first.mean() < 1
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[1], masks[2])
    # None at inference.
    inference = np.asarray(rnn(x, training=False))
    assert (inference != 0).all()


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_in_keras_rnn_matches_toolkit_layer_masks(name):
    """`keras.layers.RNN(toolkit cell)` and the toolkit layer draw the same
    masks from the same seed, so their training outputs agree."""
    cell_cls, layer_cls = CELLS[name][1], LAYERS[name][1]
    kwargs = {"dropout": 0.3, "recurrent_dropout": 0.4, "seed": 7}
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype("float32")
    wrapped = keras.layers.RNN(cell_cls(6, **kwargs), return_sequences=True)
    layer = layer_cls(6, return_sequences=True, **kwargs)
    wrapped(x)
    layer(x)
    layer.set_weights(wrapped.get_weights())
    for _ in range(2):
        np.testing.assert_allclose(
            layer(x, training=True), wrapped(x, training=True), atol=1e-6
        )


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_dropout_is_fresh_inside_fit(name):
    """With a learning rate of 0 the loss of one fixed batch changes from
    epoch to epoch only through new dropout masks."""
    cell = CELLS[name][1](8, dropout=0.5, recurrent_dropout=0.5, seed=1)
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.RNN(cell), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 3)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    history = model.fit(x, y, batch_size=16, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert len(set(np.round(losses, 7))) == 4, losses
    # Inference uses no dropout: the same every time (to graph round-off).
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), atol=1e-6)
    np.testing.assert_array_equal(model(x), model(x))


@pytest.mark.parametrize("kind", ["cell", "layer"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_signature_is_keras_positional_order(kind, name):
    table = CELLS if kind == "cell" else LAYERS
    builtin, ours = table[name]
    expected = list(inspect.signature(builtin.__init__).parameters)
    got = list(inspect.signature(ours.__init__).parameters)
    assert got == expected
    # Same defaults, so positional and keyword calls mean the same thing.
    for param in inspect.signature(builtin.__init__).parameters.values():
        if param.default is not inspect.Parameter.empty:
            ours_default = (
                inspect.signature(ours.__init__).parameters[param.name].default
            )
            assert ours_default == param.default, param.name


def test_positional_arguments_mean_what_they_mean_in_keras():
    assert toolkit.VanillaRNNCell(5, "relu").activation is (
        keras.activations.relu
    )
    cell = toolkit.LSTMCell(5, "tanh", "sigmoid", False)
    assert cell.use_bias is False and cell.unit_forget_bias is True
    layer = toolkit.VanillaRNN(4, "relu", False)
    assert layer.activation is keras.activations.relu
    assert layer.use_bias is False


@pytest.mark.parametrize("implementation", [1, 2])
def test_lstm_accepts_implementation(implementation):
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype("float32")
    builtin = keras.layers.LSTM(5, implementation=implementation)
    ours = toolkit.LSTM(5, implementation=implementation)
    builtin(x)
    ours(x)
    ours.set_weights(builtin.get_weights())
    np.testing.assert_allclose(ours(x), builtin(x), atol=1e-6)
    assert ours.implementation == implementation
    cell = toolkit.LSTMCell(5, implementation=implementation)
    builtin_cell = keras.layers.LSTMCell(5, implementation=implementation)
    states = [np.ones((2, 5), "float32"), np.full((2, 5), 0.5, "float32")]
    builtin_cell(x[:, 0], states)
    cell(x[:, 0], states)
    cell.set_weights(builtin_cell.get_weights())
    assert cell.implementation == implementation
    for got, want in zip(
        cell(x[:, 0], states)[1], builtin_cell(x[:, 0], states)[1], strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="implementation.*1 or 2.*3"):
        toolkit.LSTM(5, implementation=3)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_builtin_argument_is_accepted(name):
    """The built-in's whole signature, each argument given explicitly."""
    builtin, ours = LAYERS[name]
    arguments = {
        p.name: p.default
        for p in inspect.signature(builtin.__init__).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    arguments.update(dropout=0.1, recurrent_dropout=0.1, seed=3)
    layer = ours(3, **arguments, zero_output_for_mask=True, name="full")
    assert layer.zero_output_for_mask is True
    assert layer(np.zeros((2, 4, 5), "float32")).shape == (2, 3)


@pytest.mark.parametrize(
    "cls",
    [
        toolkit.VanillaRNNCell,
        toolkit.LSTMCell,
        toolkit.VanillaRNN,
        toolkit.LSTM,
    ],
)
def test_every_argument_documented_on_its_own_line(cls):
    doc = inspect.getdoc(cls)
    for name in inspect.signature(cls.__init__).parameters:
        if name == "self":
            continue
        label = "**kwargs" if name == "kwargs" else name
        assert re.search(rf"^    {re.escape(label)}: \S", doc, re.MULTILINE), (
            f"{cls.__name__}: `{label}` has no line of its own"
        )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_properties_are_written_out(name):
    builtin, ours = LAYERS[name]
    layer = ours(4, dropout=0.2, seed=5)
    for attribute in inspect.signature(builtin.__init__).parameters:
        static = inspect.getattr_static(builtin, attribute, None)
        if not isinstance(static, property):
            continue
        ours_static = inspect.getattr_static(ours, attribute)
        assert isinstance(ours_static, property), attribute
        assert getattr(layer, attribute) == getattr(layer.cell, attribute)
    assert layer.units == 4 and layer.dropout == 0.2 and layer.seed == 5


@pytest.mark.parametrize(
    "states, problem",
    [
        (1, r"got 1 tensor\(s\)"),
        (3, r"got 3 tensor\(s\)"),
        ("wide", r"got shapes \[\[4, 8\], \[4, 9\]\]"),
        ("batch", r"got shapes \[\[3, 8\], \[3, 8\]\]"),
    ],
)
def test_wrong_initial_state_names_expected_shapes(states, problem):
    x = np.zeros((4, 5, 3), "float32")
    if states == "wide":
        initial = [np.zeros((4, 8)), np.zeros((4, 9))]
    elif states == "batch":
        initial = [np.zeros((3, 8)), np.zeros((3, 8))]
    else:
        initial = [np.zeros((4, 8))] * states
    expected = re.escape("[h: (4, 8), c: (4, 8)]")
    with pytest.raises(ValueError, match=rf"initial_state.*{expected}"):
        toolkit.LSTM(8)(x, initial_state=initial)
    with pytest.raises(ValueError, match=problem):
        toolkit.LSTM(8)(x, initial_state=initial)


def test_vanilla_initial_state_of_wrong_width():
    with pytest.raises(ValueError, match=re.escape("[h: (2, 6)]")):
        toolkit.VanillaRNN(6)(
            np.zeros((2, 3, 4), "float32"), initial_state=[np.zeros((2, 5))]
        )


@pytest.mark.parametrize("symbolic", [False, True])
def test_token_ids_point_to_embedding(symbolic):
    ids = (
        keras.Input((7,), dtype="int32")
        if symbolic
        else np.zeros((2, 7), "int32")
    )
    with pytest.raises(ValueError, match=r"keras\.layers\.Embedding"):
        toolkit.LSTM(4)(ids)
    with pytest.raises(ValueError, match="rank 3"):
        toolkit.VanillaRNN(4)(np.zeros((2, 7), "float32"))
