"""A loop over the time axis on the backend's own primitive.

`scan(step, sequences, states, output_widths, reverse)` runs `step` once per
timestep of time-major `sequences` and stacks its outputs, like
`keras.src.backend.rnn` but without what the fused recurrence does not need
and pays for at every call: it reads each timestep by index instead of
copying the sequences into a TensorArray first, and `reverse=True` walks the
indices backwards instead of flipping every sequence and every output (a
full copy each). On TensorFlow that is a `tf.while_loop` writing
`tf.TensorArray`s; on JAX, `jax.lax.scan`.

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
):
    """Run `step(inputs_t, states) -> (outputs_t, new_states)` over time.

    Args:
        step: called with the list of `sequences[k][t]` and the list of
            states; returns a list of `(batch, output_widths[k])` outputs and
            the new states (same shapes as the old).
        sequences: time-major tensors `(timesteps, batch, ...)`.
        states: the initial states.
        output_widths: the last dimension of each step output.
        reverse: run from the last timestep to the first.

    Returns:
        `(outputs, final_states)`: `outputs[k]` is `(timesteps, batch,
        output_widths[k])` with `outputs[k][t]` computed at timestep `t`,
        in either direction.
    """
    if keras.backend.backend() == "jax":
        return _scan_jax(step, sequences, states, reverse)
    return _scan_tensorflow(step, sequences, states, output_widths, reverse)


def _scan_jax(step, sequences, states, reverse):
    import jax

    def body(carry, inputs_t):
        outputs, new_states = step(list(inputs_t), list(carry))
        return tuple(new_states), tuple(outputs)

    final, outputs = jax.lax.scan(
        body, tuple(states), tuple(sequences), reverse=reverse
    )
    return list(outputs), list(final)


def _scan_tensorflow(step, sequences, states, output_widths, reverse):
    import tensorflow as tf

    static_length = sequences[0].shape[0]
    length = (
        static_length
        if static_length is not None
        else tf.shape(sequences[0])[0]
    )
    dtype = states[0].dtype
    arrays = [
        tf.TensorArray(
            dtype,
            size=length,
            element_shape=tf.TensorShape([None, width]),
        )
        for width in output_widths
    ]

    def body(time, states, arrays):
        index = length - 1 - time if reverse else time
        outputs, new_states = step(
            [sequence[index] for sequence in sequences], list(states)
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
    for array, width in zip(arrays, output_widths, strict=True):
        stacked = array.stack()
        stacked.set_shape([static_length, states[0].shape[0], width])
        outputs.append(stacked)
    return outputs, list(final)
