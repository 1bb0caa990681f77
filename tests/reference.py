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
