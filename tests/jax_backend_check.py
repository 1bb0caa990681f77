"""Run by test_backends.py in a fresh process with KERAS_BACKEND=jax.

Compares toolkit layers with the Keras built-ins under JAX (outputs, and
gradients under `jax.jit`), and trains a DeepRNN with dropout with `fit`.
Exits non-zero on the first mismatch.

The tolerances (1e-5) are for float32 matmuls computed in full float32.
JAX's default matmul precision on a GPU is lower (TF32 on an H200, where
toolkit and Keras differed by 1.3e-4), so the comparison pins "highest"
unless `JAX_DEFAULT_MATMUL_PRECISION` says otherwise; on a CPU the
default is full float32 anyway. The precision in force is printed.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import toolkit  # noqa: E402

assert keras.backend.backend() == "jax"
print(
    "matmul precision:", jax.config.jax_default_matmul_precision,
    "on", jax.devices()[0].platform,
)  # fmt: skip
PAIRS = {
    "lstm": (keras.layers.LSTM, toolkit.LSTM),
    "vanilla": (keras.layers.SimpleRNN, toolkit.VanillaRNN),
}


def loss_fn(trainable, layer, x, mask):
    non_trainable = [v.value for v in layer.non_trainable_variables]
    out, _ = layer.stateless_call(trainable, non_trainable, x, mask=mask)
    return jnp.sum(jnp.sin(out))


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 5)).astype("float32")
    mask = np.arange(9)[None] < np.array([9, 5, 1])[:, None]
    checked = 0
    for name, (builtin_class, toolkit_class) in PAIRS.items():
        for kwargs in ({}, {"go_backwards": True}, {"return_sequences": True}):
            for step_mask in (None, mask):
                builtin = builtin_class(4, **kwargs)
                ours = toolkit_class(4, **kwargs)
                # Built from the shape alone: a call here would compile
                # one more loop per layer and check nothing.
                builtin.build(x.shape)
                ours.build(x.shape)
                ours.set_weights(builtin.get_weights())
                np.testing.assert_allclose(
                    ours(x, mask=step_mask),
                    builtin(x, mask=step_mask),
                    atol=1e-5,
                    err_msg=f"{name} {kwargs} outputs",
                )
                grad = jax.jit(jax.grad(loss_fn), static_argnums=1)
                expected = jax.grad(loss_fn)(
                    [v.value for v in builtin.trainable_variables],
                    builtin,
                    x,
                    step_mask,
                )
                got = grad(
                    [v.value for v in ours.trainable_variables],
                    ours,
                    x,
                    step_mask,
                )
                for g, e in zip(got, expected, strict=True):
                    np.testing.assert_allclose(
                        g,
                        e,
                        atol=1e-5,
                        rtol=1e-5,
                        err_msg=f"{name} {kwargs} gradients",
                    )
                checked += 1
    model = keras.Sequential(
        [
            keras.Input((9, 5)),
            toolkit.DeepRNN.from_spec(
                8,
                num_layers=2,
                dropout=0.1,
                layer_kwargs={"recurrent_dropout": 0.1},
            ),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2, clipnorm=1.0), "mse")
    history = model.fit(x, np.ones((3, 1)), epochs=5, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    print(f"jax backend: {checked} configurations match; fit ok")
    check_cell_dropout_in_keras_rnn()
    check_adversarial_training()
    check_layer_rates()
    check_recurrent_weight_dropout()
    check_lstm_variants(x, mask)


def check_adversarial_training():
    """The same hand computations as tests/unit/test_adversarial.py (the
    perturbation, one SGD step, fit of a toolkit classifier), under JAX."""
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).parent / "unit"))
    import test_adversarial

    for normalised in (False, True):
        test_adversarial.test_perturbation_matches_a_hand_computation(
            np.random.default_rng(0), normalised
        )
    test_adversarial.test_one_sgd_step_is_the_clean_plus_adversarial_gradient(
        np.random.default_rng(1)
    )
    test_adversarial.test_trains_a_toolkit_classifier_under_fit(
        np.random.default_rng(2)
    )
    print("adversarial training under jax: ok")


def check_layer_rates():
    """One SGD step with a discriminative multiplier and a frozen layer is
    the hand update under JAX's stateless optimizer."""
    from toolkit import optimizers

    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="low")(inputs)
    mid = keras.layers.Dense(2, name="mid")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, name="top")(mid))
    rng = np.random.default_rng(3)
    x = rng.random((4, 3)).astype("float32")
    y = rng.random((4, 1)).astype("float32")

    def loss(values):
        out, _ = model.stateless_call(values, [], x)
        return jnp.mean((out - y) ** 2)

    before = [np.asarray(v.value) for v in model.trainable_variables]
    gradients = jax.grad(loss)([v.value for v in model.trainable_variables])
    optimizer = optimizers.make_optimizer(
        "sgd", 0.1, 1e6, rate_multipliers={"mid": 0.5}
    )
    model.compile(optimizer, "mse")
    optimizer.build(model.trainable_variables)
    optimizer.freeze(["low"])
    model.train_on_batch(x, y)
    rates = {"low": 0.0, "mid": 0.05, "top": 0.1}
    for variable, old, gradient in zip(
        model.trainable_variables, before, gradients, strict=True
    ):
        rate = rates[variable.path.split("/")[0]]
        np.testing.assert_allclose(
            np.asarray(variable.value),
            old - rate * np.asarray(gradient),
            atol=1e-7,
        )
    print("layer rates under jax: ok")


def check_recurrent_weight_dropout():
    """DropConnect on W_h under JAX: a new mask each training call, none at
    inference (the built-in LSTM with the same weights), and `fit` trains
    the recurrent kernel through it."""
    x = np.random.default_rng(4).standard_normal((4, 5, 3)).astype("float32")
    layer = toolkit.LSTM(6, recurrent_weight_dropout=0.5, seed=2)
    model = keras.Sequential(
        [keras.Input((5, 3)), layer, keras.layers.Dense(1)]
    )
    first, second = (np.asarray(layer(x, training=True)) for _ in range(2))
    assert not np.allclose(first, second)
    builtin = keras.layers.LSTM(6)
    builtin.build((4, 5, 3))
    builtin.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x), builtin(x), atol=1e-5)
    before = np.asarray(layer.cell.recurrent_kernel.value).copy()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, np.ones((4, 1), "float32"), epochs=2, verbose=0)
    assert not np.allclose(
        before, np.asarray(layer.cell.recurrent_kernel.value)
    )
    print("recurrent weight dropout under jax: ok")


def check_cell_dropout_in_keras_rnn():
    """A toolkit cell inside `keras.layers.RNN` draws new dropout masks on
    every call and every `fit` step, as `keras.layers.LSTMCell` does."""
    x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
    y = np.zeros((4, 1), "float32")
    for cls in (toolkit.LSTMCell, toolkit.VanillaRNNCell):
        cell = cls(8, dropout=0.5, recurrent_dropout=0.5, seed=2)
        rnn = keras.layers.RNN(cell)
        outputs = [np.asarray(rnn(x, training=True)) for _ in range(3)]
        assert not np.allclose(outputs[0], outputs[1]), cls.__name__
        assert not np.allclose(outputs[1], outputs[2]), cls.__name__
        np.testing.assert_array_equal(rnn(x), rnn(x))
        model = keras.Sequential(
            [keras.Input((6, 3)), rnn, keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        history = model.fit(x, y, batch_size=4, epochs=3, verbose=0)
        losses = history.history["loss"]
        assert len(set(np.round(losses, 7))) == 3, (cls.__name__, losses)
    print("fresh masks under jax: ok")


def check_lstm_variants(x, mask):
    """The variants' fused loop against `keras.layers.RNN` over the same
    cell (its Keras-ops step) under JAX: outputs, and jitted gradients."""
    variants = {
        toolkit.LayerNormLSTM: {},
        toolkit.PeepholeLSTM: {},
        toolkit.ProjectionLSTM: {"proj_size": 3},
    }
    checked = 0
    for layer_class, extra in variants.items():
        for kwargs in ({}, {"go_backwards": True, "return_sequences": True}):
            for step_mask in (None, mask):
                ours = layer_class(8, **extra, **kwargs)
                ours.build(x.shape)
                reference = keras.layers.RNN(ours.cell, **kwargs)
                np.testing.assert_allclose(
                    ours(x, mask=step_mask),
                    reference(x, mask=step_mask),
                    atol=1e-5,
                    err_msg=f"{layer_class.__name__} {kwargs} outputs",
                )
                values = [v.value for v in ours.trainable_variables]
                got = jax.jit(jax.grad(loss_fn), static_argnums=1)(
                    values, ours, x, step_mask
                )
                expected = jax.grad(loss_fn)(values, reference, x, step_mask)
                for g, e in zip(got, expected, strict=True):
                    np.testing.assert_allclose(
                        g,
                        e,
                        atol=1e-5,
                        rtol=1e-5,
                        err_msg=f"{layer_class.__name__} {kwargs} gradients",
                    )
                checked += 1
    print(f"lstm variants under jax: {checked} configurations match")


if __name__ == "__main__":
    main()
