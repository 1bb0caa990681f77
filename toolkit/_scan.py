"""A loop over the time axis on the backend's own primitive.

`scan(step, sequences, states, output_widths, reverse)` runs `step` once per
timestep of time-major `sequences` and stacks its outputs, like
`keras.src.backend.rnn` but without what the fused recurrence does not need
and pays for at every call: it reads each timestep by index instead of
copying the sequences into a TensorArray first, and `reverse=True` walks the
indices backwards instead of flipping every sequence and every output (a
full copy each). On TensorFlow that is a `tf.while_loop` writing
`tf.TensorArray`s; on JAX, `jax.lax.scan`.

Outputs that are only read again by a later `scan` need not be stacked
(`stacked=False`): on TensorFlow they stay `tf.TensorArray`s, which a later
`scan` takes as a sequence and reads step by step, saving a full copy.

The loop is not meant to be differentiated by autodiff (the fused recurrence
has its own backward pass): on TensorFlow the indexed reads would make the
gradient of every step a full-size tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

Step = Callable[[list, list], tuple[list, list]]


def scan(
    step: Step,
    sequences: Sequence,
    states: Sequence,
    output_widths: Sequence[int],
    reverse: bool = False,
    stacked: Sequence[bool] | None = None,
    length=None,
):
    """Run `step(inputs_t, states) -> (outputs_t, new_states)` over time.

    Args:
        step: called with the list of `sequences[k][t]` and the list of
            states; returns a list of `(batch, output_widths[k])` outputs and
            the new states (same shapes as the old).
        sequences: time-major tensors `(timesteps, batch, ...)`, or unstacked
            outputs of an earlier `scan` of the same length.
        states: the initial states: `(batch, ...)` tensors, or 1-D
            accumulators (a sum over the batch).
        output_widths: the last dimension of each step output.
        reverse: run from the last timestep to the first.
        stacked: per output, whether it is returned as one tensor (the
            default) or, where the backend can, left unstacked for a later
            `scan` to read.
        length: the number of timesteps, when no sequence is a tensor (all
            unstacked outputs); read from the first tensor otherwise.

    Returns:
        `(outputs, final_states)`: `outputs[k]` is `(timesteps, batch,
        output_widths[k])` with `outputs[k][t]` computed at timestep `t`,
        in either direction.
    """
    if stacked is None:
        stacked = [True] * len(output_widths)
    if keras.backend.backend() == "jax":
        return _scan_jax(step, sequences, states, reverse)
    return _scan_tensorflow(
        step, sequences, states, output_widths, reverse, stacked, length
    )


def _scan_jax(step, sequences, states, reverse):
    import jax

    def body(carry, inputs_t):
        outputs, new_states = step(list(inputs_t), list(carry))
        return tuple(new_states), tuple(outputs)

    final, outputs = jax.lax.scan(
        body, tuple(states), tuple(sequences), reverse=reverse
    )
    return list(outputs), list(final)


def _scan_tensorflow(
    step, sequences, states, output_widths, reverse, stacked, length
):
    import tensorflow as tf

    if length is None:
        first = next(s for s in sequences if not isinstance(s, tf.TensorArray))
        length = first.shape[0]
        if length is None:
            length = tf.shape(first)[0]
    static_length = length if isinstance(length, int) else None

    def read(sequence, index):
        if isinstance(sequence, tf.TensorArray):
            return sequence.read(index)
        return sequence[index]

    dtype = states[0].dtype
    # A static element shape where the batch size is known lets converters
    # that need one (LiteRT's tensor-list lowering) take the loop.
    batch = next(
        (
            s.shape[0]
            for s in states
            if len(s.shape) > 1 and s.shape[0] is not None
        ),
        next(
            (
                s.shape[1]
                for s in sequences
                if not isinstance(s, tf.TensorArray) and s.shape[1] is not None
            ),
            None,
        ),
    )
    arrays = [
        tf.TensorArray(
            dtype,
            size=length,
            element_shape=tf.TensorShape([batch, width]),
        )
        for width in output_widths
    ]

    def body(time, states, arrays):
        index = length - 1 - time if reverse else time
        outputs, new_states = step(
            [read(sequence, index) for sequence in sequences], list(states)
        )
        arrays = [
            array.write(index, output)
            for array, output in zip(arrays, outputs, strict=True)
        ]
        return time + 1, new_states, arrays

    _, final, arrays = tf.while_loop(
        lambda time, *_: time < length,
        body,
        (tf.constant(0), list(states), arrays),
        maximum_iterations=static_length,
    )
    outputs = []
    for array, width, stack in zip(arrays, output_widths, stacked, strict=True):
        if stack:
            array = array.stack()
            array.set_shape([static_length, batch, width])
        outputs.append(array)
    return outputs, list(final)
