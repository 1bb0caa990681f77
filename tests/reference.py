"""Plain numpy reference implementations, written from the equations.

They use float64 and a per-timestep loop, and follow `keras.layers.RNN`'s
conventions: masked steps keep the previous state and repeat the previous
output (zeros before the first step); `go_backwards` returns outputs in the
order they were computed.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_reference(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    cell="lstm",
    initial_state=None,
    mask=None,
    go_backwards=False,
    dp_mask=None,
    rec_dp_mask=None,
    activation=np.tanh,
):
    """Returns `(outputs (B, T, u), final_states)`."""
    x = np.asarray(x, np.float64)
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    if bias is None:
        bias = np.zeros(recurrent_kernel.shape[1])
    if initial_state is None:
        initial_state = [np.zeros((batch, units))] * (
            2 if cell == "lstm" else 1
        )
    h = np.asarray(initial_state[0], np.float64)
    c = np.asarray(initial_state[1], np.float64) if cell == "lstm" else None
    output = np.zeros((batch, units))
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    outputs = []
    for t in order:
        x_t = x[:, t] if dp_mask is None else x[:, t] * dp_mask
        h_in = h if rec_dp_mask is None else h * rec_dp_mask
        z = x_t @ kernel + h_in @ recurrent_kernel + bias
        if cell == "lstm":
            z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
            i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
            c_new = f * c + i * np.tanh(z_g)
            h_new = o * np.tanh(c_new)
        else:
            h_new = activation(z)
            c_new = None
        if mask is None:
            keep = np.ones((batch, 1), bool)
        else:
            keep = np.asarray(mask)[:, t][:, None].astype(bool)
        output = np.where(keep, h_new, output)
        h = np.where(keep, h_new, h)
        if cell == "lstm":
            c = np.where(keep, c_new, c)
        outputs.append(output)
    states = [h, c] if cell == "lstm" else [h]
    return np.stack(outputs, axis=1), states


def _layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def lstm_variant_reference(
    x,
    weights,
    variant,
    initial_state=None,
    mask=None,
    go_backwards=False,
    zero_output_for_mask=False,
    epsilon=1e-3,
):
    """An LSTM variant's layer, written from the published equations.

    `weights` is the cell's `get_weights()` list: kernel, recurrent kernel,
    bias, then, per `variant`:
    - `"layernorm"` (Ba et al. 2016, as TF Addons' `LayerNormLSTMCell`):
      gamma and beta of the kernel norm, the recurrent norm, the state norm;
      z = LN(x W_x) + LN(h W_h) + b, c_t = LN(f c + i g);
    - `"peephole"` (Gers & Schmidhuber 2000, as Keras 2's
      `PeepholeLSTMCell`): peephole weights of the input, forget and output
      gates; i and f see c_{t-1}, o sees c_t;
    - `"projection"` (Sak et al. 2014, as PyTorch's `proj_size`): the
      projection W_hr; h_t = (o tanh(c_t)) W_hr.
    Returns `(outputs (B, T, width of h), [h, c])`.
    """
    x = np.asarray(x, np.float64)
    weights = [np.asarray(w, np.float64) for w in weights]
    kernel, recurrent_kernel, bias, *extra = weights
    batch, timesteps, _ = x.shape
    units = bias.shape[0] // 4
    h_width = recurrent_kernel.shape[0]
    if initial_state is None:
        initial_state = [np.zeros((batch, h_width)), np.zeros((batch, units))]
    h, c = (np.asarray(s, np.float64) for s in initial_state)
    output = np.zeros((batch, h_width))
    order = range(timesteps - 1, -1, -1) if go_backwards else range(timesteps)
    outputs = []
    for t in order:
        x_proj = x[:, t] @ kernel
        h_proj = h @ recurrent_kernel
        if variant == "layernorm":
            k_gamma, k_beta, r_gamma, r_beta, c_gamma, c_beta = extra
            x_proj = _layer_norm(x_proj, k_gamma, k_beta, epsilon)
            h_proj = _layer_norm(h_proj, r_gamma, r_beta, epsilon)
        z_i, z_f, z_g, z_o = np.split(x_proj + h_proj + bias, 4, axis=-1)
        if variant == "peephole":
            p_i, p_f, p_o = extra
            i = sigmoid(z_i + p_i * c)
            f = sigmoid(z_f + p_f * c)
            c_new = f * c + i * np.tanh(z_g)
            o = sigmoid(z_o + p_o * c_new)
        else:
            i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
            c_new = f * c + i * np.tanh(z_g)
            if variant == "layernorm":
                c_new = _layer_norm(c_new, c_gamma, c_beta, epsilon)
        h_new = o * np.tanh(c_new)
        if variant == "projection":
            h_new = h_new @ extra[0]
        keep = (
            np.ones((batch, 1), bool)
            if mask is None
            else np.asarray(mask)[:, t][:, None].astype(bool)
        )
        masked_output = (
            np.zeros_like(output) if zero_output_for_mask else output
        )
        output = np.where(keep, h_new, masked_output)
        h = np.where(keep, h_new, h)
        c = np.where(keep, c_new, c)
        outputs.append(output)
    return np.stack(outputs, axis=1), [h, c]
