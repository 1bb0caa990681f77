"""The fused recurrence of the LSTM variants, with hand-written backward
passes.

`toolkit.recurrence` runs the plain LSTM and vanilla RNN; this module runs
the cells of `toolkit.lstm_variants` the same way: the input projection of
every timestep is computed before the loop (by the cell's
`project_inputs`, through autodiff), the forward loop saves what the
backward loop needs, and the backward loop does only the sequential chain.
The recurrent weight gradient is one matmul over all timesteps afterwards
(`dW_h = H_prev^T dR`, with dR the gradient of `h_{t-1} W_h`), and so are
the variants' own weights (peepholes, norm gammas and betas, the
projection): sums over timesteps and samples of products of what the loops
stacked. Nothing is accumulated inside the loops, which at small widths
are bound by the number of ops per step.

A variant is a `StepRule`: its forward step, its backward step and what
they exchange. The loop around it, masking (a masked step carries the
state and the previous output, or zeros, exactly as `keras.layers.RNN`
does), recurrent dropout, `go_backwards`, inference without saved
factors, is written once here.
"""

from __future__ import annotations

from keras import ops

from toolkit._scan import scan
from toolkit.recurrence import (
    layer_results,
    split_upstream,
    time_major_inputs,
)


def _split4(x):
    return ops.split(x, 4, axis=-1)


def _sigmoid_slope(s):
    return s * (1.0 - s)


def _layer_norm_forward(x, epsilon):
    """`(x_hat, inv_std)` over the last axis."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    inv_std = ops.rsqrt(
        ops.mean(ops.square(centred), axis=-1, keepdims=True) + epsilon
    )
    return centred * inv_std, inv_std


def _layer_norm_backward(d_x_hat, x_hat, inv_std):
    """Gradient of the input of a layer norm from that of its normalised
    output `x_hat` (before gamma and beta)."""
    return inv_std * (
        d_x_hat
        - ops.mean(d_x_hat, axis=-1, keepdims=True)
        - x_hat * ops.mean(d_x_hat * x_hat, axis=-1, keepdims=True)
    )


class StepRule:
    """One variant's step, forward and backward.

    `params` are the tensors the step reads besides W_h (which is always
    `params[0]` in the methods below). `saved` is what the forward step
    keeps per timestep for the backward step; `saved_widths` gives each
    one's last dimension and `saved_stacked` whether `param_grads` reads it
    after the loop (else it is only read by the backward loop).
    """

    rec_grad_is_dz = True  # the gradient of h W_h is that of z

    def __init__(self, cell):
        self.cell = cell
        self.units = cell.units

    def params(self):
        return []

    def saved_widths(self):
        raise NotImplementedError

    def saved_stacked(self):
        return [False] * len(self.saved_widths())

    def extra_widths(self):
        """Widths of the per-step outputs of `backward` beyond d_p and
        d_rec, which `param_grads` reads."""
        return []

    def forward(self, p_t, states, params, h_in, with_saved):
        """`(h_t, new_states, saved)` from the projection `p_t` and the
        (dropout-masked) `h_in`."""
        raise NotImplementedError

    def backward_constants(self, params):
        return {"kernel_t": ops.transpose(params[0])}

    def backward(self, d_h, d_states, saved, params, constants):
        """From the gradient of h_t (everything that reads it) and of the
        other new states: `(d_p_t, d_states_prev, d_rec, extra_outputs)`.
        `d_states_prev[0]` is the gradient of the (dropout-masked) h_in."""
        raise NotImplementedError

    def param_grads(self, d_z, saved, extra):
        """Gradients of `params[1:]` from the stacked `(T, B, 4u)` gradient
        of z, the stacked `saved` entries and the `extra` outputs (zero on
        masked steps)."""
        return []

    @staticmethod
    def _gates(z):
        z_i, z_f, z_g, z_o = _split4(z)
        return ops.sigmoid(z_i), ops.sigmoid(z_f), ops.tanh(z_g), z_o


class PeepholeRule(StepRule):
    def params(self):
        return list(self.cell.peephole_weights)

    def saved_widths(self):
        u = self.units
        return [4 * u, u, u]  # gates, c_{t-1}, c_t

    def saved_stacked(self):
        return [False, True, True]  # c_{t-1} and c_t: the peepholes' grads

    def forward(self, p_t, states, params, h_in, with_saved):
        kernel, p_i, p_f, p_o = params
        c_tm1 = states[1]
        z_i, z_f, z_g, z_o = _split4(p_t + ops.matmul(h_in, kernel))
        i = ops.sigmoid(z_i + p_i * c_tm1)
        f = ops.sigmoid(z_f + p_f * c_tm1)
        g = ops.tanh(z_g)
        c = f * c_tm1 + i * g
        o = ops.sigmoid(z_o + p_o * c)
        h = o * ops.tanh(c)
        saved = []
        if with_saved:
            saved = [ops.concatenate([i, f, g, o], axis=-1), c_tm1, c]
        return h, [h, c], saved

    def backward(self, d_h, d_states, saved, params, constants):
        _, p_i, p_f, p_o = params
        gates, c_tm1, c = saved
        i, f, g, o = _split4(gates)
        tanh_c = ops.tanh(c)
        d_o = d_h * tanh_c * _sigmoid_slope(o)
        d_c = d_states[0] + d_h * o * (1.0 - tanh_c * tanh_c) + d_o * p_o
        d_i = d_c * g * _sigmoid_slope(i)
        d_f = d_c * c_tm1 * _sigmoid_slope(f)
        d_g = d_c * i * (1.0 - g * g)
        d_z = ops.concatenate([d_i, d_f, d_g, d_o], axis=-1)
        d_h_in = ops.matmul(d_z, constants["kernel_t"])
        d_c_tm1 = d_c * f + d_i * p_i + d_f * p_f
        return d_z, [d_h_in, d_c_tm1], d_z, []

    def param_grads(self, d_z, saved, extra):
        _, c_tm1, c = saved
        d_i, d_f, _, d_o = _split4(d_z)
        return [
            ops.sum(d * state, axis=(0, 1))
            for d, state in ((d_i, c_tm1), (d_f, c_tm1), (d_o, c))
        ]


class ProjectionRule(StepRule):
    def params(self):
        return [self.cell.projection_kernel]

    def saved_widths(self):
        u = self.units
        # A = o (1 - tanh(c)^2), F = f, B (the gate derivatives times what
        # each multiplies, as in `toolkit.recurrence`), m = o tanh(c).
        return [u, u, 4 * u, u]

    def saved_stacked(self):
        return [False, False, False, True]  # m is read by `param_grads`

    def extra_widths(self):
        return [self.cell.proj_size]  # d_h, for the projection's gradient

    def forward(self, p_t, states, params, h_in, with_saved):
        kernel, projection = params
        c_tm1 = states[1]
        i, f, g, z_o = self._gates(p_t + ops.matmul(h_in, kernel))
        o = ops.sigmoid(z_o)
        c = f * c_tm1 + i * g
        tanh_c = ops.tanh(c)
        m = o * tanh_c
        h = ops.matmul(m, projection)
        saved = []
        if with_saved:
            b = ops.concatenate(
                [
                    g * _sigmoid_slope(i),
                    c_tm1 * _sigmoid_slope(f),
                    i * (1.0 - g * g),
                    tanh_c * _sigmoid_slope(o),
                ],
                axis=-1,
            )
            saved = [o * (1.0 - tanh_c * tanh_c), f, b, m]
        return h, [h, c], saved

    def backward_constants(self, params):
        return {
            "kernel_t": ops.transpose(params[0]),
            "projection_t": ops.transpose(params[1]),
        }

    def backward(self, d_h, d_states, saved, params, constants):
        a, f, b, _ = saved
        d_m = ops.matmul(d_h, constants["projection_t"])
        d_c = d_states[0] + d_m * a
        d_z = ops.concatenate([d_c, d_c, d_c, d_m], axis=-1) * b
        d_h_in = ops.matmul(d_z, constants["kernel_t"])
        return d_z, [d_h_in, d_c * f], d_z, [d_h]

    def param_grads(self, d_z, saved, extra):
        m_seq = saved[3]
        (d_h_seq,) = extra
        return [ops.einsum("tbi,tbj->ij", m_seq, d_h_seq)]


class LayerNormRule(StepRule):
    rec_grad_is_dz = False

    def params(self):
        weights = self.cell.norm_weights
        return [
            weights[name]
            for name in (
                "recurrent_norm_gamma",
                "recurrent_norm_beta",
                "state_norm_gamma",
                "state_norm_beta",
            )
        ]

    def saved_widths(self):
        u = self.units
        # r_hat, 1/std(r), gates, c_{t-1}, c'_hat, 1/std(c')
        return [4 * u, 1, 4 * u, u, u, 1]

    def saved_stacked(self):
        # r_hat and c'_hat: the gradients of the gammas.
        return [True, False, False, False, True, False]

    def extra_widths(self):
        return [self.units]  # the gradient of c_t, for the state norm

    def forward(self, p_t, states, params, h_in, with_saved):
        kernel, gamma_r, beta_r, gamma_c, beta_c = params
        epsilon = self.cell.norm_epsilon
        c_tm1 = states[1]
        r_hat, inv_r = _layer_norm_forward(ops.matmul(h_in, kernel), epsilon)
        i, f, g, z_o = self._gates(p_t + r_hat * gamma_r + beta_r)
        o = ops.sigmoid(z_o)
        c_hat, inv_c = _layer_norm_forward(f * c_tm1 + i * g, epsilon)
        c = c_hat * gamma_c + beta_c
        h = o * ops.tanh(c)
        saved = []
        if with_saved:
            gates = ops.concatenate([i, f, g, o], axis=-1)
            saved = [r_hat, inv_r, gates, c_tm1, c_hat, inv_c]
        return h, [h, c], saved

    def backward(self, d_h, d_states, saved, params, constants):
        _, gamma_r, _, gamma_c, beta_c = params
        r_hat, inv_r, gates, c_tm1, c_hat, inv_c = saved
        i, f, g, o = _split4(gates)
        tanh_c = ops.tanh(c_hat * gamma_c + beta_c)
        d_o = d_h * tanh_c * _sigmoid_slope(o)
        d_c = d_states[0] + d_h * o * (1.0 - tanh_c * tanh_c)
        d_c_pre = _layer_norm_backward(d_c * gamma_c, c_hat, inv_c)
        d_i = d_c_pre * g * _sigmoid_slope(i)
        d_f = d_c_pre * c_tm1 * _sigmoid_slope(f)
        d_g = d_c_pre * i * (1.0 - g * g)
        d_z = ops.concatenate([d_i, d_f, d_g, d_o], axis=-1)
        d_r = _layer_norm_backward(d_z * gamma_r, r_hat, inv_r)
        d_h_in = ops.matmul(d_r, constants["kernel_t"])
        return d_z, [d_h_in, d_c_pre * f], d_r, [d_c]

    def param_grads(self, d_z, saved, extra):
        r_hat, c_hat = saved[0], saved[4]
        (d_c,) = extra
        return [
            ops.sum(d_z * r_hat, axis=(0, 1)),
            ops.sum(d_z, axis=(0, 1)),
            ops.sum(d_c * c_hat, axis=(0, 1)),
            ops.sum(d_c, axis=(0, 1)),
        ]


# A variant cell names its rule in its `fused_rule` attribute.
RULES = {
    "layer_norm": LayerNormRule,
    "peephole": PeepholeRule,
    "projection": ProjectionRule,
}


def is_variant(cell) -> bool:
    return getattr(cell, "fused_rule", None) in RULES


def variant_recurrence(
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
    """Run a variant cell over a sequence whose input projection is
    precomputed; arguments and return value as
    `toolkit.recurrence.fused_recurrence`."""
    rule = RULES[cell.fused_rule](cell)
    dtype = projected.dtype
    if recurrent_kernel is None:
        recurrent_kernel = cell.recurrent_kernel
    # Plain tensors, not variables: the custom gradient returns their
    # gradients itself and must not see variable reads inside.
    params = [
        ops.copy(ops.cast(weight, dtype))
        for weight in [recurrent_kernel, *rule.params()]
    ]
    projected, time_mask = time_major_inputs(projected, mask, go_backwards)
    states = [ops.convert_to_tensor(state, dtype) for state in initial_state]
    sequence_outputs = return_sequences or time_mask is not None
    n_params, n_states = len(params), len(states)

    args = [projected, *params, *states]
    if rec_dp_mask is not None:
        args.append(ops.convert_to_tensor(rec_dp_mask, dtype))
    if time_mask is not None:
        args.append(time_mask)

    @ops.custom_gradient
    def run(*args):
        args = list(args)
        p_seq = args[0]
        weights = args[1 : 1 + n_params]
        states_0 = args[1 + n_params : 1 + n_params + n_states]
        rest = args[1 + n_params + n_states :]
        rec_mask = rest.pop(0) if rec_dp_mask is not None else None
        m_seq = rest.pop(0) if time_mask is not None else None

        def forward(with_saved):
            return _forward(
                rule,
                p_seq,
                weights,
                states_0,
                rec_mask,
                m_seq,
                zero_output_for_mask,
                with_saved,
            )

        outputs, h_seq, saved, final = forward(training)

        def grad(*upstream):
            d_outputs, d_final = split_upstream(upstream, sequence_outputs)
            h_seq_b, saved_b = h_seq, saved
            if not training:
                _, h_seq_b, saved_b, _ = forward(with_saved=True)
            d_p, d_weights, d_states = _backward(
                rule,
                d_outputs,
                d_final,
                h_seq_b,
                saved_b,
                weights,
                states_0,
                rec_mask,
                m_seq,
                zero_output_for_mask,
            )
            grads = [d_p, *d_weights, *d_states]
            if rec_mask is not None:
                grads.append(ops.zeros_like(rec_mask))
            if m_seq is not None:
                grads.append(ops.zeros_like(m_seq))
            return tuple(grads)

        if sequence_outputs:
            return (outputs, *final), grad
        return tuple(final), grad

    return layer_results(run(*args), sequence_outputs)


def _forward(
    rule,
    p_seq,
    params,
    states,
    rec_mask,
    m_seq,
    zero_output_for_mask,
    with_saved,
):
    """Forward loop: `(outputs, h_seq, saved, final_states)`, with h_seq
    the h state after each step (the outputs where nothing is masked)."""
    with_mask = m_seq is not None
    n_states = len(states)

    def step(inputs, carry):
        carry = list(carry)
        old = carry[:n_states]
        h_in = old[0] * rec_mask if rec_mask is not None else old[0]
        h, new, saved = rule.forward(inputs[0], old, params, h_in, with_saved)
        if not with_mask:
            return [h, *saved], new
        keep = inputs[1] > 0
        new = [ops.where(keep, n, o) for n, o in zip(new, old, strict=True)]
        out = ops.where(
            keep, h, ops.zeros_like(h) if zero_output_for_mask else carry[-1]
        )
        return [out, new[0], *saved], new + [out]

    h_width = rule.cell.state_size[0]
    widths, stacked = [h_width], [True]
    if with_mask:
        widths.append(h_width)
        stacked.append(True)
    if with_saved:
        widths += rule.saved_widths()
        stacked += rule.saved_stacked()
    sequences = [p_seq] + ([m_seq] if with_mask else [])
    carry = list(states) + ([ops.zeros_like(states[0])] if with_mask else [])
    step_outputs, final = scan(step, sequences, carry, widths, stacked=stacked)
    outputs = step_outputs[0]
    if with_mask:
        return outputs, step_outputs[1], step_outputs[2:], final[:n_states]
    return outputs, outputs, step_outputs[1:], final[:n_states]


def _backward(
    rule,
    d_outputs,
    d_final,
    h_seq,
    saved,
    params,
    states_0,
    rec_mask,
    m_seq,
    zero_output_for_mask,
):
    """Backward loop: `(d_projected, d_params, d_initial_states)`."""
    with_mask = m_seq is not None
    with_outputs = d_outputs is not None
    keep_output = with_mask and not zero_output_for_mask
    n_states, n_saved = len(states_0), len(saved)
    constants = rule.backward_constants(params)

    def step(inputs, carry):
        inputs, carry = list(inputs), list(carry)
        d_states = carry[:n_states]
        d_out = inputs.pop(0) if with_outputs else None
        if keep_output:
            d_out = carry[-1] if d_out is None else d_out + carry[-1]
        d_h = d_states[0] if d_out is None else d_states[0] + d_out
        d_p, d_prev, d_rec, extra = rule.backward(
            d_h, d_states[1:], inputs[:n_saved], params, constants
        )
        if rec_mask is not None:
            d_prev[0] = d_prev[0] * rec_mask
        if with_mask:
            m_t = inputs[n_saved]
            keep = m_t > 0
            d_p = d_p * m_t
            d_rec = d_rec * m_t
            extra = [e * m_t for e in extra]
            d_prev = [
                ops.where(keep, new, old)
                for new, old in zip(d_prev, d_states, strict=True)
            ]
        outputs = [d_p] + ([] if rule.rec_grad_is_dz else [d_rec]) + extra
        new_carry = list(d_prev)
        if keep_output:
            new_carry.append(d_out * (1.0 - m_t))
        return outputs, new_carry

    sequences = ([d_outputs] if with_outputs else []) + list(saved)
    if with_mask:
        sequences.append(m_seq)
    carry = [
        ops.zeros_like(state) if d is None else d
        for d, state in zip(d_final, states_0, strict=True)
    ]
    if keep_output:
        carry.append(ops.zeros_like(states_0[0]))
    gate_width = 4 * rule.units
    out_widths = [gate_width]
    if not rule.rec_grad_is_dz:
        out_widths.append(gate_width)
    extra_widths = rule.extra_widths()
    length = h_seq.shape[0]
    step_outputs, final = scan(
        step,
        sequences,
        carry,
        out_widths + extra_widths,
        reverse=True,
        length=ops.shape(h_seq)[0] if length is None else length,
    )
    d_p_seq = step_outputs[0]
    d_rec_seq = d_p_seq if rule.rec_grad_is_dz else step_outputs[1]
    extra_seqs = step_outputs[len(out_widths) :]
    h_prev = ops.concatenate(
        [ops.expand_dims(states_0[0], 0), h_seq[:-1]], axis=0
    )
    if rec_mask is not None:
        h_prev = h_prev * rec_mask
    d_kernel = ops.einsum("tbi,tbj->ij", h_prev, d_rec_seq)
    d_rest = rule.param_grads(d_p_seq, saved, extra_seqs)
    return d_p_seq, [d_kernel, *d_rest], final[:n_states]
