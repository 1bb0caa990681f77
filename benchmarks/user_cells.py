"""LSTM variants as a Keras 3 user writes them today: a cell of Keras ops
from the published equations, run by `keras.layers.RNN`. They are the
reference that `plain_fit.py --cell layernorm|peephole|projection` times
the toolkit's `LayerNormLSTM`, `PeepholeLSTM` and `ProjectionLSTM`
against (the same equations; `tests/conformance/test_lstm_variants.py`
checks the toolkit's numerics, not these)."""

from __future__ import annotations

import keras
from keras import ops


class _UserLSTMCellBase(keras.layers.Layer):
    def __init__(self, units, h_size=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.h_size = h_size or units
        self.state_size = [self.h_size, units]
        self.output_size = self.h_size

    def build(self, input_shape):
        width = 4 * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width), initializer="glorot_uniform"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.h_size, width), initializer="orthogonal"
        )
        self.bias = self.add_weight(shape=(width,), initializer="zeros")

    def gates(self, z):
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        return ops.sigmoid(z_i), ops.sigmoid(z_f), ops.tanh(z_g), z_o


class UserLayerNormLSTMCell(_UserLSTMCellBase):
    """TF Addons' LayerNormLSTMCell equations, with Keras's
    LayerNormalization layers."""

    def build(self, input_shape):
        super().build(input_shape)
        self.norms = [
            keras.layers.LayerNormalization(epsilon=1e-3) for _ in range(3)
        ]
        for norm, width in zip(
            self.norms,
            (4 * self.units, 4 * self.units, self.units),
            strict=True,
        ):
            norm.build((None, width))

    def call(self, inputs, states):
        h, c = states
        z = (
            self.norms[0](ops.matmul(inputs, self.kernel))
            + self.norms[1](ops.matmul(h, self.recurrent_kernel))
            + self.bias
        )
        i, f, g, z_o = self.gates(z)
        c = self.norms[2](f * c + i * g)
        h = ops.sigmoid(z_o) * ops.tanh(c)
        return h, [h, c]


class UserPeepholeLSTMCell(_UserLSTMCellBase):
    """Keras 2's PeepholeLSTMCell equations."""

    def build(self, input_shape):
        super().build(input_shape)
        self.peepholes = [
            self.add_weight(shape=(self.units,), initializer="glorot_uniform")
            for _ in range(3)
        ]

    def call(self, inputs, states):
        h, c = states
        p_i, p_f, p_o = self.peepholes
        z = (
            ops.matmul(inputs, self.kernel)
            + ops.matmul(h, self.recurrent_kernel)
            + self.bias
        )
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = ops.sigmoid(z_i + p_i * c)
        f = ops.sigmoid(z_f + p_f * c)
        c = f * c + i * ops.tanh(z_g)
        h = ops.sigmoid(z_o + p_o * c) * ops.tanh(c)
        return h, [h, c]


class UserProjectionLSTMCell(_UserLSTMCellBase):
    """PyTorch's proj_size LSTM equations."""

    def build(self, input_shape):
        super().build(input_shape)
        self.projection = self.add_weight(
            shape=(self.units, self.h_size), initializer="glorot_uniform"
        )

    def call(self, inputs, states):
        h, c = states
        z = (
            ops.matmul(inputs, self.kernel)
            + ops.matmul(h, self.recurrent_kernel)
            + self.bias
        )
        i, f, g, z_o = self.gates(z)
        c = f * c + i * g
        h = ops.matmul(ops.sigmoid(z_o) * ops.tanh(c), self.projection)
        return h, [h, c]
