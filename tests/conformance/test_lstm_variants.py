"""The LSTM variants (layer-normalised, peephole, projection) against a
float64 numpy reference written from the published equations, their fused
backward pass against autodiff of the Keras-ops step loop and finite
differences, and their Keras conformance (config, `.keras` files,
`keras.layers.RNN`, `Bidirectional`, SavedModel, mixed precision)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import toolkit
from reference import lstm_variant_reference
from toolkit import loop

UNITS = 6
PROJ = 4
VARIANTS = {
    "layernorm": (toolkit.LayerNormLSTM, toolkit.LayerNormLSTMCell, {}),
    "peephole": (toolkit.PeepholeLSTM, toolkit.PeepholeLSTMCell, {}),
    "projection": (
        toolkit.ProjectionLSTM,
        toolkit.ProjectionLSTMCell,
        {"proj_size": PROJ},
    ),
}
MASK = np.array([[1] * 7, [1] * 4 + [0] * 3, [0, 1, 1, 0, 1, 1, 0]], dtype=bool)


def make_layer(variant, dtype="float32", **kwargs):
    layer_class, _, extra = VARIANTS[variant]
    return layer_class(UNITS, dtype=dtype, **extra, **kwargs)


def perturb(layer, rng, scale=0.4):
    """Weights away from their initial values (gammas off 1, betas and
    peepholes off 0), so that every term of the equations matters."""
    layer.set_weights(
        [
            w + scale * rng.standard_normal(w.shape).astype(w.dtype)
            for w in layer.get_weights()
        ]
    )


def h_width(variant):
    return PROJ if variant == "projection" else UNITS


def initial_states(variant, rng, dtype="float32"):
    return [
        rng.standard_normal((3, h_width(variant))).astype(dtype),
        rng.standard_normal((3, UNITS)).astype(dtype),
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_the_numpy_reference(variant, masked, go_backwards):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    layer = make_layer(
        variant,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
    )
    layer.build(x.shape)
    perturb(layer, rng)
    states = initial_states(variant, rng)
    mask = MASK if masked else None
    outputs, h, c = layer(x, mask=mask, initial_state=states)
    expected, (h_ref, c_ref) = lstm_variant_reference(
        x,
        layer.get_weights(),
        variant,
        initial_state=states,
        mask=mask,
        go_backwards=go_backwards,
    )
    assert loop.loop_plan(layer) == ["fused"]
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(h, h_ref, atol=1e-5)
    np.testing.assert_allclose(c, c_ref, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cell_in_keras_rnn_matches_the_reference(variant):
    """The cell alone, stepped by `keras.layers.RNN` (its `call`)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    _, cell_class, extra = VARIANTS[variant]
    rnn = keras.layers.RNN(
        cell_class(UNITS, **extra), return_sequences=True, return_state=True
    )
    rnn.build(x.shape)
    perturb(rnn, rng)
    outputs, h, c = rnn(x, mask=MASK)
    expected, (h_ref, c_ref) = lstm_variant_reference(
        x, rnn.get_weights(), variant, mask=MASK
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(c, c_ref, atol=1e-5)


def gradients(layer, x, states, call_kwargs, weights):
    x = tf.convert_to_tensor(x)
    states = [tf.convert_to_tensor(s) for s in states]
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        outputs = layer(x, initial_state=states, **call_kwargs)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        loss = sum(
            tf.reduce_sum(tf.sin(out) * w)
            for out, w in zip(outputs, weights, strict=False)
        )
    sources = [x, *states, *layer.trainable_weights]
    return [g.numpy() for g in tape.gradient(loss, sources)]


GRADIENT_CASES = {
    "sequences": {"return_sequences": True, "return_state": True},
    "last": {},
    "backwards_masked": {
        "return_sequences": True,
        "go_backwards": True,
        "mask": True,
    },
    "masked_zero_output": {
        "return_sequences": True,
        "return_state": True,
        "zero_output_for_mask": True,
        "mask": True,
    },
    "last_masked": {"return_state": True, "mask": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("case", sorted(GRADIENT_CASES))
def test_fused_gradients_match_autodiff_of_the_step_loop(variant, case):
    """In float64: the hand-written backward pass against TensorFlow's
    autodiff of `keras.layers.RNN` over the same cell (its Keras-ops
    `call`), for the inputs, both initial states and every weight."""
    kwargs = dict(GRADIENT_CASES[case])
    mask = MASK if kwargs.pop("mask", False) else None
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7, 5))
    layer = make_layer(variant, dtype="float64", **kwargs)
    layer.build(x.shape)
    perturb(layer, rng)
    reference = keras.layers.RNN(layer.cell, dtype="float64", **kwargs)
    states = initial_states(variant, rng, "float64")
    weights = [rng.standard_normal((3, 7, h_width(variant)))]
    weights += [rng.standard_normal(s.shape) for s in states]
    if not kwargs.get("return_sequences"):
        weights[0] = weights[0][:, 0]
    call_kwargs = {"mask": mask, "training": True}
    ours = gradients(layer, x, states, call_kwargs, weights)
    expected = gradients(reference, x, states, call_kwargs, weights)
    assert len(ours) == 3 + len(layer.trainable_weights)
    for got, want in zip(ours, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fused_gradients_match_finite_differences(variant):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 3))
    layer = make_layer(variant, dtype="float64", return_sequences=True)
    layer.build(x.shape)
    perturb(layer, rng)
    mask = MASK[1:, :5]
    projection = rng.standard_normal((2, 5, h_width(variant)))

    def loss(values):
        layer.set_weights(values)
        out = layer(x, mask=mask, training=True)
        return float(np.sum(np.sin(np.asarray(out)) * projection))

    values = layer.get_weights()
    with tf.GradientTape() as tape:
        out = layer(tf.constant(x), mask=mask, training=True)
        total = tf.reduce_sum(tf.sin(out) * projection)
    analytic = [g.numpy() for g in tape.gradient(total, layer.weights)]
    step = 1e-6
    for index, weight in enumerate(values):
        for position in rng.choice(weight.size, size=3, replace=False):
            shifted = [v.copy() for v in values]
            shifted[index].flat[position] += step
            up = loss(shifted)
            shifted[index].flat[position] -= 2 * step
            down = loss(shifted)
            numeric = (up - down) / (2 * step)
            np.testing.assert_allclose(
                analytic[index].flat[position],
                numeric,
                rtol=1e-5,
                atol=1e-7,
                err_msg=f"{layer.weights[index].name}[{position}]",
            )
        layer.set_weights(values)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_dropout_in_the_fused_loop_matches_keras_loop(variant):
    """With the same seed the fused loop (`unroll=False`) and Keras's loop
    over the cell's step (`unroll=True`) draw the same dropout masks, and
    give the same outputs and gradients."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 7, 5))
    layers = [
        make_layer(
            variant,
            dtype="float64",
            dropout=0.3,
            recurrent_dropout=0.4,
            seed=5,
            unroll=unroll,
            return_sequences=True,
        )
        for unroll in (False, True)
    ]
    for layer in layers:
        layer.build(x.shape)
    perturb(layers[0], rng)
    layers[1].set_weights(layers[0].get_weights())
    assert [loop.loop_plan(layer) for layer in layers] == [["fused"], ["keras"]]
    states = initial_states(variant, rng, "float64")
    weights = [rng.standard_normal((3, 7, h_width(variant)))]
    results = [
        gradients(layer, x, states, {"training": True, "mask": MASK}, weights)
        for layer in layers
    ]
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)
    # Dropout was on: the outputs differ from those without it.
    plain = layers[0](x, initial_state=states, training=False)
    dropped = layers[0](x, initial_state=states, training=True)
    assert not np.allclose(plain, dropped)


def test_weights_in_the_published_order():
    x = np.zeros((2, 3, 5), "float32")
    names = {}
    for variant in VARIANTS:
        layer = make_layer(variant)
        layer(x)
        names[variant] = [w.name for w in layer.weights]
    base = ["kernel", "recurrent_kernel", "bias"]
    assert names["layernorm"] == base + [
        f"{norm}_{part}"
        for norm in ("kernel_norm", "recurrent_norm", "state_norm")
        for part in ("gamma", "beta")
    ]
    assert names["peephole"] == base + [
        f"{gate}_gate_peephole_weights"
        for gate in ("input", "forget", "output")
    ]
    assert names["projection"] == base + ["projection_kernel"]
    layer = make_layer("projection")
    layer(x)
    assert [tuple(w.shape) for w in layer.weights] == [
        (5, 4 * UNITS),
        (PROJ, 4 * UNITS),
        (4 * UNITS,),
        (UNITS, PROJ),
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unit_forget_bias_and_initial_norms(variant):
    layer = make_layer(variant)
    layer(np.zeros((2, 3, 5), "float32"))
    bias = layer.cell.bias.numpy()
    np.testing.assert_array_equal(bias[UNITS : 2 * UNITS], 1.0)
    np.testing.assert_array_equal(np.delete(bias, range(UNITS, 2 * UNITS)), 0)
    if variant == "layernorm":
        values = [w.numpy() for w in layer.weights[3:]]
        for gamma, beta in zip(values[::2], values[1::2], strict=True):
            np.testing.assert_array_equal(gamma, 1.0)
            np.testing.assert_array_equal(beta, 0.0)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_config_round_trip_and_keras_file(variant, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    _, cell_class, extra = VARIANTS[variant]
    inputs = keras.Input((7, 5))
    hidden = keras.layers.Bidirectional(
        make_layer(variant, return_sequences=True, recurrent_dropout=0.1)
    )(inputs)
    hidden = keras.layers.RNN(cell_class(UNITS, **extra))(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    perturb(model, rng, scale=0.1)
    layer = model.layers[1].forward_layer
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    if variant == "layernorm":
        assert config["norm_epsilon"] == 1e-3
    if variant == "projection":
        assert config["proj_size"] == PROJ
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert type(loaded.layers[1].forward_layer) is type(layer)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_saved_model_export(variant, tmp_path):
    x = np.random.default_rng(7).standard_normal((2, 7, 5)).astype("float32")
    model = keras.Sequential(
        [keras.Input((None, 5)), make_layer(variant), keras.layers.Dense(1)]
    )
    model.export(
        str(tmp_path / "saved"), format="tf_saved_model", verbose=False
    )
    served = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        served.serve(tf.constant(x)), model.predict(x, verbose=0), atol=1e-5
    )


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_stateful_carries_state_across_calls(variant):
    x = np.random.default_rng(8).standard_normal((2, 8, 5)).astype("float32")
    stateful = make_layer(variant, stateful=True, return_sequences=True)
    whole = make_layer(variant, return_sequences=True)
    stateful.build((2, 4, 5))
    whole.build((2, 8, 5))
    whole.set_weights(stateful.get_weights())
    halves = np.concatenate([stateful(x[:, :4]), stateful(x[:, 4:])], axis=1)
    np.testing.assert_allclose(halves, whole(x), atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_mixed_precision(variant):
    x = np.random.default_rng(9).standard_normal((3, 7, 5)).astype("float32")
    full = make_layer(variant, return_sequences=True)
    mixed = make_layer(variant, dtype="mixed_bfloat16", return_sequences=True)
    full.build(x.shape)
    mixed.build(x.shape)
    mixed.set_weights(full.get_weights())
    out = mixed(x)
    assert out.dtype == "bfloat16"
    assert mixed.cell.kernel.dtype == "float32"
    np.testing.assert_allclose(np.asarray(out, "float32"), full(x), atol=5e-2)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(mixed(x, training=True), "float32"))
    grads = tape.gradient(loss, mixed.trainable_weights)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_projection_needs_a_narrower_h():
    with pytest.raises(ValueError, match="proj_size"):
        toolkit.ProjectionLSTM(8)
    with pytest.raises(ValueError, match="smaller than `units`"):
        toolkit.ProjectionLSTM(8, proj_size=8)


def test_layer_norm_epsilon_is_checked():
    with pytest.raises(ValueError, match="norm_epsilon"):
        toolkit.LayerNormLSTM(8, norm_epsilon=0)


def test_cudnn_is_refused_for_a_variant():
    layer = toolkit.PeepholeLSTM(4, use_cudnn=True)
    assert not loop.cudnn_allowed(layer)
    with pytest.raises(ValueError, match="use_cudnn=True"):
        layer(np.zeros((2, 3, 5), "float32"))


@pytest.mark.parametrize("cell", ["layernorm", "peephole", "projection"])
def test_deep_rnn_stacks_variants_by_name(cell):
    layer_kwargs = {"proj_size": 3} if cell == "projection" else {}
    stack = toolkit.DeepRNN.from_spec(
        [8, 8, 8],
        cell=cell,
        bidirectional=True,
        residual=True,
        layer_kwargs=layer_kwargs,
    )
    model = keras.Sequential(
        [keras.Input((6, 5)), stack, keras.layers.Dense(1)]
    )
    x = np.random.default_rng(10).standard_normal((4, 6, 5)).astype("float32")
    model.compile(keras.optimizers.Adam(1e-2, clipnorm=1.0), "mse")
    history = model.fit(x, np.ones((4, 1)), epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    layer_class = VARIANTS[cell][0]
    assert [type(layer.forward_layer) for layer in stack.rnn_layers] == [
        layer_class
    ] * 3
    assert stack.residual_connections == (False, True, False)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradients_in_a_graph_with_unknown_batch(variant):
    """What `fit` traces: a `tf.function` whose batch size is unknown
    gives the eager gradients."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 7, 5)).astype("float32")
    layer = make_layer(variant, return_sequences=True)
    layer.build(x.shape)

    def grads(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(
                tf.sin(layer(inputs, mask=MASK, training=True))
            )
        return tape.gradient(loss, layer.trainable_weights)

    graph = tf.function(
        grads, input_signature=[tf.TensorSpec((None, None, 5), "float32")]
    )
    for got, want in zip(graph(x), grads(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
