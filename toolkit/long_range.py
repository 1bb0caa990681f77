"""Controlled gradient-flow experiments on long-range tasks, used by
`recipes/gradient_flow.py`: gradient norms at initialisation, the adding
problem, and training with and without gradient clipping."""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from toolkit import diagnostics, training
from toolkit.data import synthetic
from toolkit.layers import LSTM, VanillaRNN


def _build(cell, units, timesteps, features, forget_bias, seed):
    """`Input -> VanillaRNN | LSTM -> Dense(1)`; an LSTM's forget-gate
    bias is set to `forget_bias` (1 is Keras's `unit_forget_bias`)."""
    if cell not in ("lstm", "vanilla"):
        raise ValueError(f"Expected cell 'lstm' or 'vanilla', got {cell!r}.")
    keras.utils.set_random_seed(seed)
    layer_class = LSTM if cell == "lstm" else VanillaRNN
    layer = layer_class(units, seed=seed)
    model = keras.Sequential(
        [keras.Input((timesteps, features)), layer, keras.layers.Dense(1)]
    )
    if cell == "lstm":
        bias = np.asarray(layer.cell.bias).copy()
        bias[units : 2 * units] = forget_bias
        layer.cell.bias.assign(bias)
    return model, layer


def norms_at_initialisation(
    timesteps: int,
    units: int,
    vanilla_singular_values,
    lstm_forget_biases,
    seed: int = 0,
    batch: int = 16,
) -> dict[str, np.ndarray]:
    """||dL/dh_t|| for t = 1..T at initialisation, L = sum of h_T, on
    inputs drawn from the adding problem; vanilla RNNs with W_h rescaled to
    each largest singular value, LSTMs with each forget-gate bias (their
    ||dL/dc_t|| too, the gradient along the cell state)."""
    inputs, _ = synthetic.adding_problem(batch, timesteps, seed=seed)

    def loss(outputs):
        return tf.reduce_sum(outputs[:, -1])

    curves = {}
    for value in vanilla_singular_values:
        _, layer = _build("vanilla", units, timesteps, 2, 1.0, seed)
        diagnostics.scale_recurrent_kernel(layer, value)
        norms = diagnostics.gradient_norms_through_time(layer, inputs, loss)
        curves[f"vanilla, sigma_max(W_h) = {value:g}"] = norms["h"][0]
    for bias in lstm_forget_biases:
        _, layer = _build("lstm", units, timesteps, 2, bias, seed)
        norms = diagnostics.gradient_norms_through_time(layer, inputs, loss)
        curves[f"LSTM, forget bias {bias:g}: dL/dh_t"] = norms["h"][0]
        curves[f"LSTM, forget bias {bias:g}: dL/dc_t"] = norms["c"][0]
    return curves


def train_adding(
    cell: str,
    units: int,
    timesteps: int,
    steps: int,
    learning_rate: float,
    clipnorm: float | None,
    forget_bias: float = 1.0,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
    recurrent_singular_value: float | None = None,
    test_size: int = 2000,
) -> dict:
    """Train on freshly drawn adding-problem batches; return the test MSE,
    each step's training loss, whether it diverged (a non-finite loss)
    and the fraction of steps whose gradients were clipped."""
    model, layer = _build(cell, units, timesteps, 2, forget_bias, seed)
    if recurrent_singular_value is not None:
        diagnostics.scale_recurrent_kernel(layer, recurrent_singular_value)
    model.compile(
        optimizer=training.tracked_optimizer(
            optimizer, learning_rate, clipnorm
        ),
        loss="mse",
        jit_compile=True,
    )
    x, y = synthetic.adding_problem(steps * batch_size, timesteps, seed + 1)
    test_x, test_y = synthetic.adding_problem(test_size, timesteps, 10**6)
    losses = []

    class _Record(keras.callbacks.Callback):
        # Keras logs the running mean over the epoch; recover each batch's
        # own loss from consecutive means (all batches are the same size).
        def on_train_batch_end(self, batch, logs=None):
            mean = float(logs["loss"])
            previous = self.__dict__.get("mean", 0.0)
            losses.append((batch + 1) * mean - batch * previous)
            self.mean = mean

    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[_Record(), keras.callbacks.TerminateOnNaN()],
    )
    seconds = time.perf_counter() - start
    diverged = not all(math.isfinite(v) for v in losses)
    test_mse = (
        math.nan
        if diverged
        else float(model.evaluate(test_x, test_y, batch_size=500, verbose=0))
    )
    clipped = float(model.optimizer.clipped_steps.numpy())
    return {
        "cell": cell,
        "units": units,
        "parameters": int(model.count_params()),
        "timesteps": timesteps,
        "clipnorm": clipnorm,
        "forget_bias": forget_bias if cell == "lstm" else None,
        "test_mse": test_mse,
        "baseline_mse": synthetic.ADDING_MEAN_BASELINE_MSE,
        "beats_baseline": bool(
            test_mse < 0.5 * synthetic.ADDING_MEAN_BASELINE_MSE
        ),
        "diverged": diverged,
        "clipped_fraction": clipped / max(len(losses), 1),
        "losses": losses,
        "seconds": seconds,
    }
