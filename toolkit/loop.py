"""The one place that decides how a toolkit recurrent layer runs its loop.

`toolkit.LSTM` and `toolkit.VanillaRNN` call `run_loop` from
`keras.layers.RNN.inner_loop`; `loop_plan` says which loop that will be.
There are three loops:

1. `"cudnn"`, the backend's cuDNN LSTM kernel (what `keras.layers.LSTM`
   runs on a GPU). LSTM only, and only for a configuration the kernel
   computes (`cudnn_allowed`): tanh and sigmoid activations, a bias, no
   `unroll`, and in training neither `recurrent_dropout` nor
   `recurrent_weight_dropout` (at inference there is no mask, so they do
   not matter). Input dropout is applied to the sequence before the
   kernel. Whether a GPU is there, and whether it takes the mask (cuDNN
   needs right padding), is the backend's call: it raises
   `NotImplementedError` and the fused loop runs, unless
   `use_cudnn=True`, which is then a `ValueError`. Under TensorFlow the
   layer is marked not to be compiled with XLA, which cuDNN ops do not
   support.
2. `"fused"`, `toolkit.recurrence.fused_recurrence` (or, for the LSTM
   variants, `toolkit.variant_recurrence.variant_recurrence`): the
   toolkit's own loop with a hand-written backward pass, for cells with
   their standard nonlinearities (tanh, and sigmoid gates for the LSTMs)
   on the TensorFlow and JAX backends, not unrolled. It is exact: the
   same outputs as Keras's loop to float32 round-off.
3. `"keras"`, Keras's backend loop (`keras.ops.rnn`) over
   `cell.recurrent_step`: everything else (other activations, `unroll`,
   the PyTorch backend).

Which of cuDNN and the fused loop runs follows measurement
(`AUTO_TAKES_CUDNN`, and the table in docs/benchmark.md):
`use_cudnn=True` always takes cuDNN; `use_cudnn="auto"` takes it only on
the backends where it was measured faster or could not be measured, and
the fused loop elsewhere; `use_cudnn=False` never takes it. On a CPU there
is no cuDNN, so every backend runs the fused loop.

While a LiteRT export traces the model (`toolkit.litert_composite`), an
LSTM at inference runs instead as the composite op that LiteRT's converter
fuses into its LSTM kernel, where its configuration allows.

All three start from `cell.project_inputs`, the input projection
`x_t W_x + b` of every timestep in one matmul (cuDNN does the same inside
its kernel), so the loop itself does only `h_{t-1} W_h` and the gates.
"""

from __future__ import annotations

import keras
from keras import ops

from toolkit import litert_composite
from toolkit._keras_private import backend_lstm, backend_rnn
from toolkit.recurrence import fused_recurrence, fused_recurrence_supported
from toolkit.variant_recurrence import is_variant, variant_recurrence

# Whether `use_cudnn="auto"` tries cuDNN first, per backend.
# - jax: no. On an NVIDIA H200 (keras 3.15.1, jax 0.11.2, float32, batch
#   64, 100 and 1000 steps, 256 and 512 units) the fused loop trained
#   1.35-1.36x and inferred 1.83-2.13x faster than the toolkit on cuDNN,
#   and 1.32-1.83x / 1.59-1.84x faster than keras.layers.LSTM on cuDNN
#   (docs/benchmark.md).
# - tensorflow: yes, as keras.layers.LSTM does. Not measured: no GPU with
#   TensorFlow was available to this project.
# - torch (and any other): yes; the toolkit has no fused loop there.
AUTO_TAKES_CUDNN = {"jax": False, "tensorflow": True}


def _backend() -> str:
    return keras.backend.backend()


def cudnn_allowed(layer, training=False) -> bool:
    """Whether `layer`'s configuration may run on the cuDNN kernel (rule 1
    of this module's docstring; a GPU is still needed)."""
    cell = layer.cell
    return (
        getattr(layer, "use_cudnn", False) in ("auto", True)
        and cell.standard_kernel_blocker() is None
        and not layer.unroll
        and not (training and cell.recurrent_dropout > 0)
        and not (training and layer.recurrent_weight_dropout > 0)
    )


def loop_plan(layer, training=False) -> list[str]:
    """The loops `run_loop` will try for `layer`, in order: `["cudnn"]`
    (`use_cudnn=True`), `["cudnn", "fused"]` (`"auto"` where cuDNN is
    preferred), or one of `["fused"]` and `["keras"]`."""
    use_cudnn = getattr(layer, "use_cudnn", False)
    if cudnn_allowed(layer, training):
        if use_cudnn is True:
            return ["cudnn"]
        if AUTO_TAKES_CUDNN.get(_backend(), True):
            return ["cudnn", "fused"]
    if fused_recurrence_supported(layer.cell, layer.unroll):
        return ["fused"]
    return ["keras"]


def run_loop(layer, sequences, initial_state, mask, training=False):
    """`keras.layers.RNN.inner_loop` for a toolkit layer: the first loop of
    `loop_plan` that runs. Returns `(last_output, outputs, states)`."""
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if litert_composite.composite_requested() and not training:
        reason = litert_composite.composite_blocker(layer, initial_state)
        if reason is None:
            return litert_composite.run_composite(
                layer, sequences, initial_state, mask
            )
        litert_composite.record_not_fused(layer, reason)
    plan = loop_plan(layer, training)
    if plan[0] == "cudnn":
        try:
            return _cudnn_loop(layer, sequences, initial_state, mask, training)
        except NotImplementedError:
            plan = plan[1:]  # no GPU, or a mask the kernel cannot take
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
    recurrence = variant_recurrence if is_variant(cell) else fused_recurrence
    last_output, outputs, states = recurrence(
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
