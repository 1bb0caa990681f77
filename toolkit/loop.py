"""The one place that decides how a toolkit recurrent layer runs its loop.

`toolkit.LSTM` and `toolkit.VanillaRNN` call `run_loop` from
`keras.layers.RNN.inner_loop`; `loop_plan` says which loop that will be.
There are three loops, tried in this order:

1. `"cudnn"`, the backend's cuDNN LSTM kernel (what `keras.layers.LSTM`
   runs on a GPU). LSTM only, and only when `use_cudnn` is `"auto"` or
   `True` and the configuration is one the kernel computes: tanh and
   sigmoid activations, a bias, no `unroll`, and in training neither
   `recurrent_dropout` nor `recurrent_weight_dropout` (at inference there
   is no mask, so they do not matter). Input dropout is applied to the
   sequence before the kernel. Whether a GPU is there, and whether it takes
   the mask (cuDNN needs right padding), is the backend's call: it raises
   `NotImplementedError` and the next loop runs, unless `use_cudnn=True`,
   which is then a `ValueError`. Under TensorFlow the layer is marked not
   to be compiled with XLA, which cuDNN ops do not support.
2. `"fused"`, `toolkit.recurrence.fused_recurrence`: the toolkit's own loop
   with a hand-written backward pass, for cells with their standard
   nonlinearities (tanh, and sigmoid gates for the LSTM) on the TensorFlow
   and JAX backends, not unrolled. It is exact: the same outputs as Keras's
   loop to float32 round-off.
3. `"keras"`, Keras's backend loop (`keras.ops.rnn`) over
   `cell.recurrent_step`: everything else (other activations, `unroll`,
   the PyTorch backend).

All three start from `cell.project_inputs`, the input projection
`x_t W_x + b` of every timestep in one matmul (cuDNN does the same inside
its kernel), so the loop itself does only `h_{t-1} W_h` and the gates.
"""

from __future__ import annotations

import keras
from keras import ops

from toolkit._keras_private import backend_lstm, backend_rnn
from toolkit.recurrence import fused_recurrence, fused_recurrence_supported


def cudnn_allowed(layer, training=False) -> bool:
    """Whether `layer`'s configuration may run on the cuDNN kernel (rule 1
    of this module's docstring; a GPU is still needed)."""
    cell = layer.cell
    return (
        getattr(layer, "use_cudnn", False) in ("auto", True)
        and cell.gate_count == 4
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.use_bias
        and not layer.unroll
        and not (training and cell.recurrent_dropout > 0)
        and not (training and layer.recurrent_weight_dropout > 0)
    )


def loop_plan(layer, training=False) -> list[str]:
    """The loops `run_loop` will try for `layer`, in order: `"cudnn"`
    (when allowed), then `"fused"` or `"keras"`."""
    plan = ["cudnn"] if cudnn_allowed(layer, training) else []
    if fused_recurrence_supported(layer.cell, layer.unroll):
        plan.append("fused")
    else:
        plan.append("keras")
    return plan


def run_loop(layer, sequences, initial_state, mask, training=False):
    """`keras.layers.RNN.inner_loop` for a toolkit layer: the first loop of
    `loop_plan` that runs. Returns `(last_output, outputs, states)`."""
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    plan = loop_plan(layer, training)
    if plan[0] == "cudnn":
        try:
            return _cudnn_loop(layer, sequences, initial_state, mask, training)
        except NotImplementedError:
            pass  # no GPU, or a mask the kernel cannot take
    if getattr(layer, "use_cudnn", "auto") is True:
        raise ValueError(
            "use_cudnn=True was specified, but cuDNN is not available for "
            "this layer configuration with this backend (it needs a GPU, "
            "tanh/sigmoid activations, use_bias=True, unroll=False and, "
            "in training, recurrent_dropout=0 and "
            "recurrent_weight_dropout=0). Pass use_cudnn='auto' to fall "
            "back to the fused loop."
        )
    cell = layer.cell
    dp_mask = rec_dp_mask = None
    if training:
        # `keras.layers.RNN.call` drew this call's masks before the loop
        # and clears them after it (Keras's DropoutRNNCell protocol).
        dp_mask = cell.get_dropout_mask(sequences[:, 0, :])
        rec_dp_mask = cell.get_recurrent_dropout_mask(initial_state[0])
    recurrent_kernel = layer.weight_dropped_kernel(training)
    if plan[-1] == "fused":
        return _fused_loop(
            layer,
            sequences,
            initial_state,
            mask,
            training=training,
            dp_mask=dp_mask,
            rec_dp_mask=rec_dp_mask,
            recurrent_kernel=recurrent_kernel,
        )
    projected = cell.project_inputs(sequences, dp_mask)

    def step(projected_t, states):
        return cell.recurrent_step(
            projected_t, list(states), rec_dp_mask, recurrent_kernel
        )

    return backend_rnn(
        step,
        projected,
        list(initial_state),
        go_backwards=layer.go_backwards,
        mask=mask,
        unroll=layer.unroll,
        input_length=sequences.shape[1],
        zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences,
    )


def _fused_loop(
    layer,
    sequences,
    initial_state,
    mask,
    training,
    dp_mask,
    rec_dp_mask,
    recurrent_kernel,
):
    cell = layer.cell
    # The loop is time-major: transpose the inputs or their projection,
    # whichever is narrower.
    if sequences.shape[-1] <= cell.gate_count * cell.units:
        projected = cell.project_inputs(
            ops.transpose(sequences, (1, 0, 2)), dp_mask, time_major=True
        )
    else:
        projected = ops.transpose(
            cell.project_inputs(sequences, dp_mask), (1, 0, 2)
        )
    last_output, outputs, states = fused_recurrence(
        cell,
        projected,
        initial_state,
        mask=mask,
        rec_dp_mask=rec_dp_mask,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        return_sequences=layer.return_sequences,
        training=bool(training),
        recurrent_kernel=recurrent_kernel,
    )
    if layer.return_sequences:
        outputs = ops.transpose(outputs, (1, 0, 2))
    return last_output, outputs, states


def _cudnn_loop(layer, sequences, initial_state, mask, training):
    cell = layer.cell
    if training and cell.dropout > 0:
        dp_mask = cell.get_dropout_mask(sequences[:, 0, :])
        sequences = sequences * ops.expand_dims(dp_mask, 1)
    result = backend_lstm(
        sequences,
        initial_state[0],
        initial_state[1],
        mask,
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        return_sequences=layer.return_sequences,
        go_backwards=layer.go_backwards,
        unroll=layer.unroll,
    )
    if keras.backend.backend() == "tensorflow":
        layer.supports_jit = False  # cuDNN ops do not compile under XLA
    return result
