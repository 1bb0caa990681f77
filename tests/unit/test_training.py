"""Training: a clipped optimizer step updates every weight, and deep stacks
learn a small synthetic task."""

import keras
import numpy as np
import pytest

import toolkit


@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: toolkit.LSTM(8),
        lambda: toolkit.VanillaRNN(8, dropout=0.2, recurrent_dropout=0.2),
        lambda: toolkit.DeepRNN.from_spec(
            [8, 8, 8], bidirectional=True, residual=True
        ),
    ],
    ids=["lstm", "vanilla_dropout", "deep_bidirectional"],
)
def test_one_fit_step_with_clipnorm_changes_every_weight(make_layer, rng):
    inputs = keras.Input((6, 3))
    outputs = keras.layers.Dense(1)(make_layer()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1, clipnorm=1.0), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = rng.standard_normal((16, 6, 3)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for weight, old in zip(model.trainable_weights, before, strict=True):
        assert not np.allclose(weight.numpy(), old), weight.path


def memory_task(rng, samples, timesteps):
    """Label = whether the first element of the sequence is positive; the
    rest is noise, so the model must carry one bit across the sequence."""
    x = rng.standard_normal((samples, timesteps, 1)).astype("float32")
    y = (x[:, 0, 0] > 0).astype("float32")[:, None]
    return x, y


@pytest.mark.parametrize(("num_layers", "residual"), [(2, False), (4, True)])
@pytest.mark.parametrize("cell", ["lstm", "vanilla"])
def test_deep_stack_learns_a_memory_task(cell, num_layers, residual, rng):
    x, y = memory_task(rng, 512, 12)
    inputs = keras.Input((12, 1))
    hidden = toolkit.DeepRNN.from_spec(
        16, num_layers=num_layers, cell=cell, residual=residual, seed=0
    )(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    initial_loss = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    final_loss = history.history["loss"][-1]
    assert final_loss < 0.5 * initial_loss
    assert history.history["accuracy"][-1] > 0.9
