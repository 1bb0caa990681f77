"""Gradient-flow diagnostics for recurrent layers.

`gradient_norms_through_time` measures how much of the loss's gradient
reaches each timestep's hidden state (and, for the LSTM, its cell state):
the quantity that vanishes or explodes in a vanilla RNN and that the LSTM's
cell state carries across long spans. `recurrent_singular_values` gives the
largest singular value of each recurrent kernel (per gate block for the
LSTM), the number that decides whether a vanilla RNN's gradient grows or
shrinks, and `scale_recurrent_kernel` sets it for controlled experiments.

These tools run the recurrence step by step with TensorFlow's
`GradientTape` (TensorFlow backend), so they are for analysis, not training
speed. They are the one place that steps the cells themselves rather than
carrying states through `DeepRNN(initial_state=..., return_state=True)`
(`toolkit.stepping`): the total gradient dL/dc_t is measured by a probe
added to c_t before the cell turns it into h_t = o_t * tanh(c_t), a point
inside the step that no layer-level state exposes. The stack's layers,
residual plan and zero states are read from its public API.
"""

from __future__ import annotations

import csv
import pathlib

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from toolkit.deep import DeepRNN
from toolkit.layers import LSTM, VanillaRNN

LSTM_GATES = ("i", "f", "c", "o")


def _recurrent_layers(layer) -> tuple[list, list[bool]]:
    """The stack's one-way recurrent layers and residual flags."""
    if isinstance(layer, DeepRNN):
        if layer.bidirectional:
            raise ValueError(
                f"{layer.name} is bidirectional; gradient flow through time "
                "is measured for one-way stacks only."
            )
        return list(layer.rnn_layers), list(layer.residual_connections)
    if isinstance(layer, (VanillaRNN, LSTM)):
        return [layer], [False]
    raise TypeError(
        "Expected a toolkit VanillaRNN, LSTM or DeepRNN layer, got "
        f"{type(layer).__name__}. For a model, pass the recurrent layer, "
        "e.g. model.get_layer('deep_rnn')."
    )


def gradient_norms_through_time(layer, inputs, loss_fn) -> dict:
    """Norms of dL/dh_t (and dL/dc_t for LSTMs) at every timestep of every
    layer, for the loss `loss_fn(outputs)` of the layer's output sequence.

    The gradient is the total one: what reaches h_t through the next
    timestep and through the layer above. It is measured by adding a zero
    tensor to each state and differentiating with respect to it.

    Args:
        layer: a built toolkit `VanillaRNN`, `LSTM` or one-way `DeepRNN`.
        inputs: `(batch, timesteps, features)`.
        loss_fn: maps the top layer's outputs `(batch, timesteps, units)`
            to a scalar loss (e.g. a head and a loss on the last step).

    Returns:
        `{"h": (layers, timesteps), "c": (layers, timesteps) or None,
        "loss": float}`; each entry is the Frobenius norm over the batch and
        units of the gradient at that timestep.
    """
    layers, residual = _recurrent_layers(layer)
    inputs = tf.convert_to_tensor(inputs, dtype=tf.float32)
    if inputs.shape.rank != 3:
        raise ValueError(
            "Expected inputs of shape (batch, timesteps, features), got "
            f"{tuple(inputs.shape)}."
        )
    batch, steps = int(inputs.shape[0]), int(inputs.shape[1])
    if not layer.built:
        layer(inputs[:, :1])
    has_cell_state = isinstance(layers[0], LSTM)
    probes_h = [
        [tf.zeros((batch, lay.cell.units)) for _ in range(steps)]
        for lay in layers
    ]
    probes_c = [
        [tf.zeros((batch, lay.cell.units)) for _ in range(steps)]
        for lay in layers
    ]
    with tf.GradientTape() as tape:
        tape.watch(probes_h)
        if has_cell_state:
            tape.watch(probes_c)
        states = [lay.cell.get_initial_state(batch) for lay in layers]
        outputs = []
        for t in range(steps):
            x = inputs[:, t]
            for k, lay in enumerate(layers):
                cell = lay.cell
                projected = cell.project_inputs(x)
                if has_cell_state:
                    # The cell's own step, opened between c_t and h_t.
                    z = projected + ops.matmul(
                        states[k][0], cell.recurrent_kernel
                    )
                    c, o = cell.cell_state_and_output_gate(z, states[k][1])
                    c = c + probes_c[k][t]
                    h = o * cell.activation(c) + probes_h[k][t]
                    states[k] = [h, c]
                else:
                    h, _ = cell.recurrent_step(projected, states[k])
                    h = h + probes_h[k][t]
                    states[k] = [h]
                x = h + x if residual[k] else h
            outputs.append(x)
        loss = loss_fn(tf.stack(outputs, axis=1))
    watched = probes_h + (probes_c if has_cell_state else [])
    gradients = tape.gradient(loss, watched)

    def norms(grads):
        return np.array(
            [
                [0.0 if g is None else float(tf.norm(g)) for g in layer_grads]
                for layer_grads in grads
            ]
        )

    result = {"h": norms(gradients[: len(layers)]), "c": None}
    if has_cell_state:
        result["c"] = norms(gradients[len(layers) :])
    result["loss"] = float(loss)
    return result


def _largest_singular_value(matrix) -> float:
    return float(np.linalg.svd(np.asarray(matrix), compute_uv=False)[0])


def recurrent_singular_values(layer) -> list[dict[str, float]]:
    """Largest singular value of W_h for every layer: `{"W_h": s}` for a
    vanilla RNN; for an LSTM also one per gate block `"i"`, `"f"`, `"c"`,
    `"o"` (the `(units, units)` column blocks of `recurrent_kernel`)."""
    layers, _ = _recurrent_layers(layer)
    values = []
    for lay in layers:
        kernel = np.asarray(lay.cell.recurrent_kernel)
        entry = {"W_h": _largest_singular_value(kernel)}
        if isinstance(lay, LSTM):
            units = lay.cell.units
            for index, gate in enumerate(LSTM_GATES):
                block = kernel[:, index * units : (index + 1) * units]
                entry[gate] = _largest_singular_value(block)
        values.append(entry)
    return values


def scale_recurrent_kernel(layer, largest_singular_value: float) -> None:
    """Rescale every layer's recurrent kernel so that its largest singular
    value is `largest_singular_value` (a built vanilla RNN or stack)."""
    if largest_singular_value <= 0:
        raise ValueError(
            "Received an invalid value for argument `largest_singular_value`"
            f", expected a positive float, got {largest_singular_value!r}."
        )
    layers, _ = _recurrent_layers(layer)
    for lay in layers:
        kernel = np.asarray(lay.cell.recurrent_kernel)
        current = _largest_singular_value(kernel)
        if current == 0:
            raise ValueError(
                f"{lay.name}'s recurrent kernel is zero; it cannot be scaled."
            )
        lay.cell.recurrent_kernel.assign(
            kernel * (largest_singular_value / current)
        )


class GradientFlowLogger(keras.callbacks.Callback):
    """Every `every` training steps, log gradient and clipping statistics
    to `csv_path` (and TensorBoard scalars to `log_dir`, if given).

    Columns: `step`; `gradient_norm` (global norm of the last step's
    gradients, before clipping); `clip_fired` (0/1, last step);
    `clipped_fraction` (steps clipped so far / steps); `sv_<layer>` (largest
    singular value of each recurrent kernel); and, with `probe`,
    `first_last_ratio`: ||dL/dh_1|| / ||dL/dh_T|| of the bottom layer.

    The model must be compiled with an optimizer from
    `optimizers.make_optimizer(..., track_gradients=True)`.

    Args:
        csv_path: the CSV file (appended to; a header is written once).
        every: log every this many optimizer steps.
        layer: the model's toolkit recurrent layer or `DeepRNN`, for the
            singular values and the probe.
        probe: optional `(inputs, loss_fn)` for
            `gradient_norms_through_time(layer, inputs, loss_fn)`.
        log_dir: TensorBoard folder.
    """

    def __init__(
        self, csv_path, every=10, layer=None, probe=None, log_dir=None
    ):
        super().__init__()
        if every < 1:
            raise ValueError(
                "Received an invalid value for argument `every`, expected a "
                f"positive integer, got {every!r}."
            )
        self.csv_path = pathlib.Path(csv_path)
        self.every = int(every)
        self.layer = layer
        self.probe = probe
        self.log_dir = log_dir
        self._writer = None
        self.rows: list[dict] = []

    def on_train_begin(self, logs=None):
        from toolkit.optimizers import GradientStatsMixin

        if not isinstance(self.model.optimizer, GradientStatsMixin):
            raise ValueError(
                "GradientFlowLogger needs an optimizer that records its "
                "gradients: compile with toolkit.optimizers.make_optimizer("
                "..., track_gradients=True)."
            )
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        if step % self.every:
            return
        row = {
            "step": step,
            "gradient_norm": float(optimizer.gradient_norm.numpy()),
            "clip_fired": float(optimizer.clip_fired.numpy()),
            "clipped_fraction": float(optimizer.clipped_steps.numpy())
            / max(step, 1),
        }
        if self.layer is not None:
            for index, values in enumerate(
                recurrent_singular_values(self.layer)
            ):
                row[f"sv_layer{index}"] = values["W_h"]
            if self.probe is not None:
                norms = gradient_norms_through_time(self.layer, *self.probe)
                bottom = norms["h"][0]
                row["first_last_ratio"] = float(
                    bottom[0] / max(bottom[-1], 1e-30)
                )
        self._write(row)

    def _write(self, row):
        self.rows.append(row)
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            with self._writer.as_default(step=row["step"]):
                for key, value in row.items():
                    if key != "step":
                        tf.summary.scalar(f"gradient_flow/{key}", value)
