"""Fused recurrences with hand-written backpropagation through time.

`toolkit.LSTM` and `toolkit.VanillaRNN` run their loop here when the cell
uses its standard nonlinearities (tanh, and sigmoid gates for the LSTM) and
the layer is not unrolled. Autodiff of a loop makes the backward pass do, at
every timestep, everything the forward pass did plus accumulate
`dW_h += h_{t-1}^T dz_t` into a full-size weight gradient. Here the backward
loop does only what is inherently sequential, `dh_{t-1} = dz_t W_h^T` and the
gate derivatives; the weight gradient is one large matmul over all
timesteps afterwards, `dW_h = H_{prev}^T dZ`, and the input-projection
gradients (`dW_x`, `db`, `dx`) follow by autodiff from `dZ` outside the loop.

The step bodies are `keras.ops`; the loops are the backend's own
(`toolkit._scan`: `tf.while_loop` or `jax.lax.scan`), which read each
timestep by index and run backwards without flipping anything, so it runs
under the TensorFlow and JAX backends (`ops.custom_gradient`). Both loops
are time-major. At inference (`training=False`) the forward loop computes
only the outputs and states; the backward factors are computed in training,
or by a second forward pass if a gradient is asked for at inference. Masked
timesteps carry the previous state and output exactly as
`keras.layers.RNN` does; the gradients of masks and dropout masks are zero.
"""

from __future__ import annotations

import keras
from keras import ops

from toolkit._scan import scan

FUSED_BACKENDS = ("tensorflow", "jax")


def fused_recurrence_supported(cell, unroll: bool) -> bool:
    """Whether the fused recurrence (`fused_recurrence`, or for an LSTM
    variant `toolkit.variant_recurrence.variant_recurrence`) computes
    exactly what `cell` would."""
    if unroll or keras.backend.backend() not in FUSED_BACKENDS:
        return False
    if cell.activation is not keras.activations.tanh:
        return False
    if cell.gate_count == 4:
        return cell.recurrent_activation is keras.activations.sigmoid
    return True


def fused_recurrence(
    cell,
    projected,
    initial_state,
    mask=None,
    rec_dp_mask=None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    return_sequences: bool = True,
    training: bool = True,
    recurrent_kernel=None,
):
    """Run `cell` over a sequence whose input projection is precomputed.

    Args:
        cell: a `toolkit.LSTMCell` or `toolkit.VanillaRNNCell` for which
            `fused_recurrence_supported` holds.
        projected: `(timesteps, batch, gate_count * units)`, the output of
            `cell.project_inputs` on the whole time-major sequence.
        initial_state: `[h_0]` or `[h_0, c_0]`, each `(batch, units)`.
        mask: optional boolean `(batch, timesteps)`.
        rec_dp_mask: optional `(batch, units)` recurrent dropout mask.
        go_backwards: iterate from the last timestep to the first; outputs
            come back in the order they were computed, as in
            `keras.layers.RNN`.
        zero_output_for_mask: masked steps output zeros instead of the
            previous output.
        return_sequences: whether the per-step outputs are needed; without
            them (and without a mask) the loop stacks only what the
            backward pass reads.
        training: compute the backward pass's per-step factors in the
            forward loop. At inference the forward loop computes only the
            outputs; a gradient, if one is asked for all the same, runs the
            forward loop again with the factors first.
        recurrent_kernel: W_h to use instead of `cell.recurrent_kernel`
            (a weight-dropped copy); its gradient flows back to whatever
            it was computed from.

    Returns:
        `(last_output, outputs, final_states)`: `(batch, units)`, the
        time-major `(timesteps, batch, units)` outputs (with
        `return_sequences=False`, `last_output` again) and a list of
        `(batch, units)` tensors.
    """
    is_lstm = cell.gate_count == 4
    units = cell.units
    dtype = projected.dtype
    # A plain tensor, not the variable: the custom gradient returns dW_h
    # itself and must not see variable reads inside.
    if recurrent_kernel is None:
        recurrent_kernel = cell.recurrent_kernel
    recurrent_kernel = ops.copy(ops.cast(recurrent_kernel, dtype))

    projected, time_mask = time_major_inputs(projected, mask, go_backwards)
    h0 = ops.convert_to_tensor(initial_state[0], dtype)
    c0 = ops.convert_to_tensor(initial_state[1], dtype) if is_lstm else None
    # Without a mask the last output is the final h state.
    sequence_outputs = return_sequences or time_mask is not None

    args = [projected, recurrent_kernel, h0]
    if is_lstm:
        args.append(c0)
    if rec_dp_mask is not None:
        args.append(ops.convert_to_tensor(rec_dp_mask, dtype))
    if time_mask is not None:
        args.append(time_mask)

    @ops.custom_gradient
    def run(*args):
        args = list(args)
        p_seq, kernel, h_init = args[:3]
        rest = args[3:]
        c_init = rest.pop(0) if is_lstm else None
        rec_mask = rest.pop(0) if rec_dp_mask is not None else None
        m_seq = rest.pop(0) if time_mask is not None else None

        def forward(with_factors):
            return _forward(
                p_seq,
                kernel,
                h_init,
                c_init,
                rec_mask,
                m_seq,
                is_lstm,
                units,
                zero_output_for_mask,
                with_factors,
            )

        outputs, saved, final = forward(with_factors=training)

        def grad(*upstream):
            d_outputs, d_final = split_upstream(upstream, sequence_outputs)
            factors = (
                saved
                if training or not is_lstm
                else forward(with_factors=True)[1]
            )
            d_p, d_kernel, d_h0, d_c0 = _backward(
                d_outputs,
                d_final,
                factors,
                kernel,
                h_init,
                c_init,
                rec_mask,
                m_seq,
                is_lstm,
                units,
                zero_output_for_mask,
            )
            grads = [d_p, d_kernel, d_h0]
            if is_lstm:
                grads.append(d_c0)
            if rec_mask is not None:
                grads.append(ops.zeros_like(rec_mask))
            if m_seq is not None:
                grads.append(ops.zeros_like(m_seq))
            return tuple(grads)

        if sequence_outputs:
            return (outputs, *final), grad
        return tuple(final), grad

    return layer_results(run(*args), sequence_outputs)


def time_major_inputs(projected, mask, go_backwards):
    """`(projected, time_mask)` in the loop's order: the mask time-major
    `(timesteps, batch, 1)` in `projected`'s dtype (or `None`), both
    reversed in time for `go_backwards`."""
    time_mask = None
    if mask is not None:
        time_mask = ops.cast(
            ops.expand_dims(ops.transpose(mask, (1, 0)), -1), projected.dtype
        )
    if go_backwards:
        projected = ops.flip(projected, 0)
        if time_mask is not None:
            time_mask = ops.flip(time_mask, 0)
    return projected, time_mask


def split_upstream(upstream, sequence_outputs):
    """`(d_outputs or None, [d_final_state, ...])` from a custom gradient's
    upstream gradients."""
    if len(upstream) == 1 and isinstance(upstream[0], (tuple, list)):
        upstream = tuple(upstream[0])  # JAX: one cotangent tuple.
    if sequence_outputs:
        return upstream[0], list(upstream[1:])
    return None, list(upstream)


def layer_results(result, sequence_outputs):
    """`(last_output, outputs, final_states)` from the custom gradient's
    results: `(outputs, *states)`, or the states alone."""
    result = list(result)
    if sequence_outputs:
        outputs, *final_states = result
        return outputs[-1], outputs, final_states
    return result[0], result[0], result


def _forward(
    p_seq,
    kernel,
    h_init,
    c_init,
    rec_mask,
    m_seq,
    is_lstm,
    units,
    zero_output_for_mask,
    with_factors,
):
    """Forward loop.

    Returns the outputs `(T, B, u)`, what the backward pass needs (the h
    state after each step and, with `with_factors`, the per-step local
    derivative factors of `_backward`) and the final states. The factors
    are computed here because the loop is bound by the latency of its
    sequential chain and these products, which nothing in the chain waits
    for, ride along.
    """
    with_mask = m_seq is not None

    def step(inputs, states):
        states = list(states)
        h_tm1 = states[0]
        h_in = h_tm1 * rec_mask if rec_mask is not None else h_tm1
        z = inputs[0] + ops.matmul(h_in, kernel)
        factors = []
        if is_lstm:
            c_tm1 = states[1]
            z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
            i = ops.sigmoid(z_i)
            f = ops.sigmoid(z_f)
            g = ops.tanh(z_g)
            o = ops.sigmoid(z_o)
            c = f * c_tm1 + i * g
            tanh_c = ops.tanh(c)
            h = o * tanh_c
            new_states = [h, c]
            if with_factors:
                a = o * (1.0 - tanh_c * tanh_c)
                b = ops.concatenate(
                    [
                        g * i * (1.0 - i),
                        c_tm1 * f * (1.0 - f),
                        i * (1.0 - g * g),
                        tanh_c * o * (1.0 - o),
                    ],
                    axis=-1,
                )
                factors = [a, f, b]
        else:
            # The vanilla cell's factor, 1 - h^2, is computed by
            # `_backward` from the h sequence, in one pass.
            h = ops.tanh(z)
            new_states = [h]
        if not with_mask:
            return [h, *factors], new_states
        m_t = inputs[1]
        keep = m_t > 0
        if factors:
            # On a masked step nothing reaches z and the carried state
            # passes its gradient straight through.
            a, f, b = factors
            factors = [
                a * m_t,
                ops.where(keep, f, ops.ones_like(f)),
                b * m_t,
            ]
        new_states = [
            ops.where(keep, new, old)
            for new, old in zip(
                new_states, states[: len(new_states)], strict=True
            )
        ]
        out_prev = states[-1]
        out = ops.where(
            keep, h, ops.zeros_like(h) if zero_output_for_mask else out_prev
        )
        # The previous output rides along as a last, extra state.
        return [out, new_states[0], *factors], new_states + [out]

    widths = [units]
    if with_mask:
        widths.append(units)
    stacked = [True] * len(widths)
    if with_factors and is_lstm:
        # Read only by the backward loop: left unstacked where the backend
        # allows (`scan`).
        widths += [units, units, 4 * units]
        stacked += [False] * 3
    sequences = [p_seq] + ([m_seq] if with_mask else [])
    states = [h_init] + ([c_init] if is_lstm else [])
    if with_mask:
        states.append(ops.zeros_like(h_init))
    step_outputs, final = scan(step, sequences, states, widths, stacked=stacked)
    outputs = step_outputs[0]
    saved = step_outputs[1:] if with_mask else step_outputs
    final = final[: 2 if is_lstm else 1]
    return outputs, saved, final


def _shift_in(initial, sequence):
    """`[initial, sequence[0], ..., sequence[T-2]]`: the state before each
    step, from the states after each step."""
    return ops.concatenate([ops.expand_dims(initial, 0), sequence[:-1]], 0)


def _backward(
    d_outputs,
    d_final,
    saved,
    kernel,
    h_init,
    c_init,
    rec_mask,
    m_seq,
    is_lstm,
    units,
    zero_output_for_mask,
):
    """Backward loop; returns the gradients of p_seq, kernel, h_0, c_0.

    With the factors saved by `_forward` (A = o (1 - tanh(c)^2), F = f,
    B = the derivatives of i, f, g, o times what each multiplies, all zero on
    masked steps, where F is 1) the loop does one matmul and a few products:

        d_h_new = d_h + d_out_t
        d_c     = d_c + d_h_new * A_t               (LSTM)
        d_z     = [d_c, d_c, d_c, d_h_new] * B_t    (LSTM; d_h_new * B_t else)
        d_h     = (d_z W_h^T) * rec_mask + d_h * S_t
        d_c     = d_c * F_t                         (LSTM)

    where S_t is 1 on masked steps and 0 elsewhere. `d_outputs` is None when
    only the final states were used.
    """
    with_mask = m_seq is not None
    with_outputs = d_outputs is not None
    keep_output = with_mask and not zero_output_for_mask
    h_seq, *factors = saved
    if not is_lstm:
        # 1 - h^2; zero on masked steps, where h was carried.
        factor = 1.0 - h_seq * h_seq
        factors = [factor * m_seq if with_mask else factor]
    kernel_t = ops.transpose(kernel)

    def step(inputs, states):
        inputs = list(inputs)
        states = list(states)
        d_h = states[0]
        d_out_t = inputs.pop(0) if with_outputs else None
        if keep_output:
            d_out_t = states[-1] if d_out_t is None else d_out_t + states[-1]
        d_h_new = d_h if d_out_t is None else d_h + d_out_t
        if is_lstm:
            a_t, f_t, b_t = inputs[:3]
            d_c = states[1] + d_h_new * a_t
            d_z = ops.concatenate([d_c, d_c, d_c, d_h_new], axis=-1) * b_t
        else:
            d_z = d_h_new * inputs[0]
        d_h_prev = ops.matmul(d_z, kernel_t)
        if rec_mask is not None:
            d_h_prev = d_h_prev * rec_mask
        new_states = [d_h_prev]
        if with_mask:
            skip_t = inputs[-1]
            new_states[0] = d_h_prev + d_h * skip_t
        if is_lstm:
            new_states.append(d_c * f_t)
        if keep_output:
            new_states.append(d_out_t * skip_t)
        return [d_z], new_states

    sequences = ([d_outputs] if with_outputs else []) + factors
    if with_mask:
        sequences.append(1.0 - m_seq)
    states = [_or_zeros(d_final[0], h_init)]
    if is_lstm:
        states.append(_or_zeros(d_final[1], c_init))
    if keep_output:
        states.append(ops.zeros_like(h_init))
    gate_width = (4 if is_lstm else 1) * units
    length = h_seq.shape[0]
    (d_z_seq,), d_initial = scan(
        step,
        sequences,
        states,
        [gate_width],
        reverse=True,
        length=ops.shape(h_seq)[0] if length is None else length,
    )

    h_prev_seq = _shift_in(h_init, h_seq)
    h_in_seq = h_prev_seq * rec_mask if rec_mask is not None else h_prev_seq
    # H_prev^T dZ over all timesteps and samples, without materialising
    # the transpose.
    d_kernel = ops.einsum("tbi,tbj->ij", h_in_seq, d_z_seq)
    d_c0 = d_initial[1] if is_lstm else None
    return d_z_seq, d_kernel, d_initial[0], d_c0


def _or_zeros(gradient, like):
    return ops.zeros_like(like) if gradient is None else gradient
