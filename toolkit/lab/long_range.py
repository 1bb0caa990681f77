"""Controlled gradient-flow experiments on long-range tasks, used by
`recipes/gradient_flow.py`: gradient norms at initialisation, the adding
problem, the copy-memory task, and training with and without gradient
clipping."""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from toolkit import optimizers
from toolkit.data import synthetic
from toolkit.lab import diagnostics
from toolkit.layers import LSTM, VanillaRNN


def _build(
    cell,
    units,
    timesteps,
    features,
    forget_bias,
    seed,
    outputs=1,
    return_sequences=False,
    one_hot=False,
):
    """`Input -> VanillaRNN | LSTM -> Dense(outputs)`; an LSTM's forget-gate
    bias is set to `forget_bias` (1 is Keras's `unit_forget_bias`). With
    `one_hot`, the inputs are `(timesteps,)` ids below `features`."""
    if cell not in ("lstm", "vanilla"):
        raise ValueError(f"Expected cell 'lstm' or 'vanilla', got {cell!r}.")
    keras.utils.set_random_seed(seed)
    layer_class = LSTM if cell == "lstm" else VanillaRNN
    layer = layer_class(units, return_sequences=return_sequences, seed=seed)
    if one_hot:
        head = [
            keras.Input((timesteps,), dtype="int32"),
            keras.layers.Lambda(lambda ids: keras.ops.one_hot(ids, features)),
        ]
    else:
        head = [keras.Input((timesteps, features))]
    model = keras.Sequential([*head, layer, keras.layers.Dense(outputs)])
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


class _PerStepLoss(keras.callbacks.Callback):
    """Each training step's own loss. Keras logs the running mean over the
    epoch; consecutive means give each batch's loss (all batches are the
    same size)."""

    def __init__(self):
        super().__init__()
        self.losses: list[float] = []
        self._mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.losses.append((batch + 1) * mean - batch * self._mean)
        self._mean = mean


def _train(
    model,
    layer,
    data,
    test_data,
    optimizer,
    learning_rate,
    clipnorm,
    loss,
    batch_size,
    flow_log,
    flow_every,
) -> dict:
    """Fit one epoch over `data` (fresh examples at every step), then
    score `test_data` unless a loss went non-finite."""
    model.compile(
        optimizer=optimizers.tracked_optimizer(
            optimizer, learning_rate, clipnorm
        ),
        loss=loss,
        jit_compile=True,
    )
    per_step = _PerStepLoss()
    callbacks = [per_step, keras.callbacks.TerminateOnNaN()]
    if flow_log is not None:
        callbacks.append(
            diagnostics.GradientFlowLogger(flow_log, flow_every, layer)
        )
    start = time.perf_counter()
    model.fit(
        *data,
        batch_size=batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    losses = per_step.losses
    diverged = not all(math.isfinite(v) for v in losses)
    test_loss = (
        math.nan
        if diverged
        else float(model.evaluate(*test_data, batch_size=500, verbose=0))
    )
    clipped = float(model.optimizer.clipped_steps.numpy())
    return {
        "parameters": int(model.count_params()),
        "clipnorm": clipnorm,
        "test_loss": test_loss,
        "diverged": diverged,
        "clipped_fraction": clipped / max(len(losses), 1),
        "losses": losses,
        "seconds": seconds,
    }


def _describe(
    task, cell, units, timesteps, forget_bias, measure, baseline, run
) -> dict:
    """A run's record: its settings, `test_<measure>`,
    `baseline_<measure>` and `beats_baseline` (under half the baseline),
    plus what `_train` measured."""
    test = run.pop("test_loss")
    return {
        "task": task,
        "cell": cell,
        "units": units,
        "timesteps": timesteps,
        "forget_bias": forget_bias if cell == "lstm" else None,
        f"test_{measure}": test,
        f"baseline_{measure}": baseline,
        "beats_baseline": bool(test < 0.5 * baseline),
        **run,
    }


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
    flow_log=None,
    flow_every: int = 10,
) -> dict:
    """Train on `steps` freshly drawn adding-problem batches.

    Returns a dict with `test_mse` (nan if training diverged), each step's
    training loss (`losses`), `diverged` (a non-finite loss),
    `beats_baseline` (test MSE under half of predicting the mean) and
    `clipped_fraction` (steps whose gradients were clipped). With
    `flow_log`, a `diagnostics.GradientFlowLogger` writes gradient norms,
    clip events and singular values to that CSV every `flow_every` steps.
    """
    model, layer = _build(cell, units, timesteps, 2, forget_bias, seed)
    if recurrent_singular_value is not None:
        diagnostics.scale_recurrent_kernel(layer, recurrent_singular_value)
    data = synthetic.adding_problem(steps * batch_size, timesteps, seed + 1)
    test = synthetic.adding_problem(test_size, timesteps, 10**6)
    run = _train(
        model,
        layer,
        data,
        test,
        optimizer,
        learning_rate,
        clipnorm,
        "mse",
        batch_size,
        flow_log,
        flow_every,
    )
    return _describe(
        "adding",
        cell,
        units,
        timesteps,
        forget_bias,
        "mse",
        synthetic.ADDING_MEAN_BASELINE_MSE,
        run,
    )


def train_copy(
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
    test_size: int = 2000,
    flow_log=None,
    flow_every: int = 10,
) -> dict:
    """Train on `steps` freshly drawn copy-memory batches (inputs one-hot,
    `timesteps + 20` steps; softmax cross-entropy at every step).

    Returns a dict like `train_adding`'s, with `test_cross_entropy` (nats
    per step), `baseline_cross_entropy` (the memoryless 10 ln 8 / (T + 20))
    and `beats_baseline` (under half of it: some symbols are recalled)."""
    vocabulary = synthetic.COPY_VOCABULARY
    length = timesteps + 2 * synthetic.COPY_LENGTH
    model, layer = _build(
        cell,
        units,
        length,
        vocabulary,
        forget_bias,
        seed,
        outputs=vocabulary,
        return_sequences=True,
        one_hot=True,
    )
    data = synthetic.copy_memory(steps * batch_size, timesteps, seed + 1)
    test = synthetic.copy_memory(test_size, timesteps, 10**6)
    run = _train(
        model,
        layer,
        data,
        test,
        optimizer,
        learning_rate,
        clipnorm,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        batch_size,
        flow_log,
        flow_every,
    )
    return _describe(
        "copy",
        cell,
        units,
        timesteps,
        forget_bias,
        "cross_entropy",
        synthetic.copy_memory_baseline(timesteps),
        run,
    )
