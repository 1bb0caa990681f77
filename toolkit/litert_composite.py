"""`toolkit.LSTM` as the composite op that LiteRT fuses into its
`UNIDIRECTIONAL_SEQUENCE_LSTM` kernel.

The LiteRT converter replaces a `tf.function` that declares itself an
LSTM (`api_implements` starting with `"lstm_"`, plus `time_major` and
`go_backwards` attributes) with its fused kernel, provided that the
function has Keras 2's `standard_lstm` signature (`inputs, init_h, init_c,
kernel, recurrent_kernel, bias`; five results, of which only the last
output and the output sequence are read), the batch size and the weights
have static shapes, and (a converter crash, not documented) the weights
are constants rather than variables. Its body is the LSTM itself, so where
the converter declines, the graph still computes the layer. This is how
Keras 2's LSTM reached the fused kernel, and Keras 3's does not.

`composite_blocker(layer)` says which argument keeps a layer from fusing;
`run_composite` is `run_loop`'s replacement while `composite_lstm()` is
active (the LiteRT exports of `toolkit.serving.litert` turn it on).

The fused kernel takes no mask. A right-padded mask (each row's valid
steps first, as the recipes pad and as cuDNN also requires) is handled
around it: the backward direction reverses each row's valid prefix
(`tf.reverse_sequence`), and the padded steps' outputs are set to what
`keras.layers.RNN` gives them (the last valid output, or zeros), so the
outputs match the layer exactly. A mask with holes or left padding is not
supported: the exports check parity on right-padded probes only.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import uuid

import keras
import numpy as np

logger = logging.getLogger(__name__)
BATCH_NOT_FIXED = "the batch size is not fixed"

_ACTIVE = contextvars.ContextVar("toolkit_litert_composite", default=None)


@dataclasses.dataclass
class FusionReport:
    """What the traces inside `composite_lstm()` did: the names of the
    layers traced as the composite op, and why each other one was not."""

    composite: set = dataclasses.field(default_factory=set)
    not_fused: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def composite_lstm():
    """Within this context, toolkit LSTM layers traced at inference run as
    LiteRT's composite LSTM op where they can (`composite_blocker`).
    Yields the `FusionReport` of the traces."""
    report = FusionReport()
    token = _ACTIVE.set(report)
    try:
        yield report
    finally:
        _ACTIVE.reset(token)


def composite_requested() -> bool:
    return _ACTIVE.get() is not None and keras.backend.backend() == "tensorflow"


def record_not_fused(layer, reason: str) -> None:
    """Note why `layer` runs as a loop in this export (a trace with a free
    batch size is not the converted one and is not noted)."""
    if reason != BATCH_NOT_FIXED:
        _ACTIVE.get().not_fused[layer.name] = reason


def composite_blocker(layer, initial_state) -> str | None:
    """Why `layer` cannot run as the fused LiteRT LSTM, or `None`."""
    reason = layer.cell.standard_kernel_blocker()
    if reason is not None:
        return reason
    if layer.unroll:
        return "unroll=True"
    if any(state.shape[0] is None for state in initial_state):
        return BATCH_NOT_FIXED
    return None


def _constant(variable):
    """A variable's value as a constant of the traced graph."""
    import tensorflow as tf

    with tf.init_scope():
        value = np.asarray(keras.ops.convert_to_numpy(variable))
    return tf.constant(value)


def _standard_lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
    """Keras 2's `standard_lstm` contract, batch-major: `(last_output,
    outputs, h, c, runtime)`. The body is what runs where the converter
    does not fuse (and in TensorFlow itself)."""
    import tensorflow as tf

    projected = tf.einsum("btf,fg->btg", inputs, kernel) + bias

    def step(carry, z_x):
        h, c = carry
        z = z_x + tf.matmul(h, recurrent_kernel)
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)
        return tf.sigmoid(z_o) * tf.tanh(c), c

    hs, cs = tf.scan(
        step, tf.transpose(projected, [1, 0, 2]), initializer=(init_h, init_c)
    )
    outputs = tf.transpose(hs, [1, 0, 2])
    return outputs[:, -1], outputs, hs[-1], cs[-1], tf.constant(0.0)


def _composite_function():
    import tensorflow as tf

    # A new API name per layer, as Keras 2 gave one, so that the
    # converter treats each layer's function apart.
    return tf.function(
        _standard_lstm,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": False,
        },
        autograph=False,
    )


def run_composite(layer, sequences, initial_state, mask):
    """`(last_output, outputs, [h, c])` of `layer` at inference through
    the composite op. The converter fuses only while nothing reads the
    composite's final c: a model that reads it (a step model that hands its
    states on) keeps the op's body, a loop, whose c is exact without a mask
    and is the padded sequence's with one (the exports' parity checks
    refuse such a model)."""
    import tensorflow as tf

    _ACTIVE.get().composite.add(layer.name)
    cell = layer.cell
    weights = [_constant(w) for w in (cell.kernel, cell.recurrent_kernel)]
    weights.append(_constant(cell.bias))
    dtype = sequences.dtype
    weights = [tf.cast(w, dtype) for w in weights]
    h0, c0 = (tf.cast(state, dtype) for state in initial_state)
    lstm = _composite_function()
    if mask is None:
        inputs = tf.reverse(sequences, [1]) if layer.go_backwards else sequences
        _, outputs, _, c, _ = lstm(inputs, h0, c0, *weights)
        return outputs[:, -1], outputs, [outputs[:, -1], c]

    mask = tf.cast(mask, tf.bool)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    keep = mask[:, :, None]
    # Zeros of the outputs' shape (batch, timesteps, units).
    zeros = tf.zeros_like(sequences[:, :, :1]) * tf.zeros_like(h0[:, None, :])
    if not layer.go_backwards:
        _, outputs, _, c, _ = lstm(sequences, h0, c0, *weights)
        last = tf.gather(outputs, tf.maximum(lengths - 1, 0), batch_dims=1)
        last = tf.where(lengths[:, None] > 0, last, tf.zeros_like(last))
        fill = zeros if layer.zero_output_for_mask else last[:, None, :]
        outputs = tf.where(keep, outputs, fill)
        return outputs[:, -1], outputs, [last, c]
    # Backwards: each row's valid steps reversed in place, then the
    # outputs put back in Keras's order (processing order, padded steps,
    # which Keras reads first, giving zeros).
    reversed_inputs = tf.reverse_sequence(
        sequences, lengths, seq_axis=1, batch_axis=0
    )
    _, outputs, _, c, _ = lstm(reversed_inputs, h0, c0, *weights)
    outputs = tf.reverse(
        tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0), [1]
    )
    outputs = tf.where(tf.reverse(keep, [1]), outputs, zeros)
    return outputs[:, -1], outputs, [outputs[:, -1], c]


def warn_not_fused(name: str, reason: str) -> None:
    logger.warning(
        "LiteRT: layer '%s' is not converted to the fused LSTM kernel "
        "because %s; it converts as a loop of builtin ops (slower).",
        name,
        reason,
    )
