"""LSTM variants: layer-normalised, peephole and projection LSTMs.

Each is an `LSTMCell` subclass with the LSTM's arguments, weights
(`kernel`, `recurrent_kernel`, `bias`, gate order i, f, c, o) and unit
forget bias, plus its own weights after those, and an `LSTM` subclass that
runs it like `toolkit.LSTM`: input projection for every timestep before
the loop, then the fused recurrence (`toolkit.variant_recurrence`) with a
hand-written backward pass, or Keras's loop where the fused one does not
apply (other activations, `unroll`, the PyTorch backend).

* `LayerNormLSTMCell`: TensorFlow Addons' `tfa.rnn.LayerNormLSTMCell`
  (Ba et al. 2016): layer normalisation of `x W_x`, of `h W_h` and of the
  new cell state, each with its own gamma and beta.
* `PeepholeLSTMCell`: Keras 2's `PeepholeLSTMCell` (Gers & Schmidhuber
  2000): the input and forget gates see c_{t-1}, the output gate sees c_t.
* `ProjectionLSTMCell`: PyTorch's `nn.LSTM(proj_size=P)` (Sak et al.
  2014): h_t = (o_t * tanh(c_t)) W_hr, a `P`-wide h and a `units`-wide c.

`call()` of each cell is the variant's equations in Keras ops, so a cell
also works inside `keras.layers.RNN` and `Bidirectional`.
"""

from __future__ import annotations

import keras
from keras import constraints, initializers, ops, regularizers

from toolkit import _checks
from toolkit.cells import LSTMCell
from toolkit.layers import LSTM


def layer_norm(x, gamma, beta, epsilon):
    """`gamma * (x - mean) / sqrt(var + epsilon) + beta` over the last axis,
    as `keras.layers.LayerNormalization(epsilon=epsilon)` computes it."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * ops.rsqrt(variance + epsilon) * gamma + beta


@keras.saving.register_keras_serializable(package="toolkit")
class LayerNormLSTMCell(LSTMCell):
    """An LSTM step with layer normalisation (Ba et al. 2016), as TensorFlow
    Addons' `LayerNormLSTMCell` computes it:

        z   = LN_k(x_t W_x) + LN_r(h_{t-1} W_h) + b
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
        c_t = LN_c(f * c_{t-1} + i * g)
        h_t = o * tanh(c_t)

    where `LN(v) = gamma * (v - mean(v)) / sqrt(var(v) + norm_epsilon) +
    beta` over the feature axis, each LN with its own gamma and beta. The
    normalised cell state is what the next step receives.

    Weights, in TF Addons' order so `set_weights` takes its weights:
    `kernel`, `recurrent_kernel`, `bias` (as `LSTMCell`), then the gamma and
    beta of the kernel norm `(4 units,)`, of the recurrent norm
    `(4 units,)` and of the state norm `(units,)`.

    Args:
        units, activation, ...: as `toolkit.LSTMCell`.
        norm_gamma_initializer: initializer of the three gammas. Default
            `"ones"`.
        norm_beta_initializer: initializer of the three betas. Default
            `"zeros"`.
        norm_epsilon: added to the variance. Default 1e-3 (TF Addons').

    Returns:
        `(h_t, [h_t, c_t])`, each `(batch, units)`.
    """

    variant_arguments = (
        "norm_gamma_initializer",
        "norm_beta_initializer",
        "norm_epsilon",
    )
    default_name = "layer_norm_lstm_cell"
    fused_rule = "layer_norm"  # see toolkit.variant_recurrence

    def __init__(
        self,
        units,
        *args,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_epsilon=1e-3,
        **kwargs,
    ):
        if not isinstance(norm_epsilon, (int, float)) or not norm_epsilon > 0:
            raise ValueError(
                "Received an invalid value for argument `norm_epsilon`, "
                f"expected a positive float, got {norm_epsilon!r}."
            )
        super().__init__(units, *args, **kwargs)
        self.norm_gamma_initializer = initializers.get(norm_gamma_initializer)
        self.norm_beta_initializer = initializers.get(norm_beta_initializer)
        self.norm_epsilon = float(norm_epsilon)

    def build(self, input_shape):
        super().build(input_shape)
        self.norm_weights = {}
        for norm, width in (
            ("kernel_norm", 4 * self.units),
            ("recurrent_norm", 4 * self.units),
            ("state_norm", self.units),
        ):
            for name, initializer in (
                ("gamma", self.norm_gamma_initializer),
                ("beta", self.norm_beta_initializer),
            ):
                self.norm_weights[f"{norm}_{name}"] = self.add_weight(
                    shape=(width,),
                    name=f"{norm}_{name}",
                    initializer=initializer,
                )

    def _norm(self, norm, x):
        return layer_norm(
            x,
            self.norm_weights[f"{norm}_gamma"],
            self.norm_weights[f"{norm}_beta"],
            self.norm_epsilon,
        )

    def project_inputs(self, inputs, dp_mask=None, time_major=False):
        """`LN_k(x W_x) + b` (shapes as `LSTMCell.project_inputs`)."""
        if dp_mask is not None:
            if len(inputs.shape) == 3:
                dp_mask = ops.expand_dims(dp_mask, 0 if time_major else 1)
            inputs = inputs * dp_mask
        projected = self._norm("kernel_norm", ops.matmul(inputs, self.kernel))
        if self.bias is not None:
            projected = projected + self.bias
        return projected

    def recurrent_step(
        self, projected, states, rec_dp_mask=None, recurrent_kernel=None
    ):
        h_tm1 = states[0]
        if rec_dp_mask is not None:
            h_tm1 = h_tm1 * rec_dp_mask
        if recurrent_kernel is None:
            recurrent_kernel = self.recurrent_kernel
        z = projected + self._norm(
            "recurrent_norm", ops.matmul(h_tm1, recurrent_kernel)
        )
        return self._gates_to_state(z, states)

    def cell_state_and_output_gate(self, z, c_tm1):
        c, o = super().cell_state_and_output_gate(z, c_tm1)
        return self._norm("state_norm", c), o

    def get_config(self):
        config = {
            "norm_gamma_initializer": initializers.serialize(
                self.norm_gamma_initializer
            ),
            "norm_beta_initializer": initializers.serialize(
                self.norm_beta_initializer
            ),
            "norm_epsilon": self.norm_epsilon,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="toolkit")
class PeepholeLSTMCell(LSTMCell):
    """An LSTM step with peephole connections (Gers & Schmidhuber 2000), as
    Keras 2's `tf.keras.experimental.PeepholeLSTMCell` computed it:

        z   = x_t W_x + h_{t-1} W_h + b
        i   = sigmoid(z_i + p_i * c_{t-1})
        f   = sigmoid(z_f + p_f * c_{t-1})
        c_t = f * c_{t-1} + i * tanh(z_g)
        o   = sigmoid(z_o + p_o * c_t)
        h_t = o * tanh(c_t)

    Weights: `kernel`, `recurrent_kernel`, `bias` (as `LSTMCell`), then the
    diagonal peephole weights `input_gate_peephole_weights`,
    `forget_gate_peephole_weights`, `output_gate_peephole_weights`, each
    `(units,)` and initialised with `kernel_initializer`, as in Keras 2.

    Args: as `toolkit.LSTMCell`.

    Returns:
        `(h_t, [h_t, c_t])`, each `(batch, units)`.
    """

    default_name = "peephole_lstm_cell"
    fused_rule = "peephole"

    def build(self, input_shape):
        super().build(input_shape)
        self.peephole_weights = [
            self.add_weight(
                shape=(self.units,),
                name=f"{gate}_gate_peephole_weights",
                initializer=self.kernel_initializer,
            )
            for gate in ("input", "forget", "output")
        ]

    def cell_state_and_output_gate(self, z, c_tm1):
        p_i, p_f, p_o = self.peephole_weights
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c_tm1)
        f = self.recurrent_activation(z_f + p_f * c_tm1)
        c = f * c_tm1 + i * self.activation(z_g)
        return c, self.recurrent_activation(z_o + p_o * c)


@keras.saving.register_keras_serializable(package="toolkit")
class ProjectionLSTMCell(LSTMCell):
    """An LSTM step with a projected output (Sak et al. 2014), as PyTorch's
    `nn.LSTM(..., proj_size=P)` defines it:

        z   = x_t W_x + h_{t-1} W_h + b        (h_{t-1} is P wide)
        c_t = f * c_{t-1} + i * g              (gates as in `LSTMCell`)
        h_t = (o * tanh(c_t)) W_hr             (P wide)

    Weights: `kernel` `(input_dim, 4 units)`, `recurrent_kernel`
    `(P, 4 units)`, `bias` `(4 units,)`, then `projection_kernel` W_hr
    `(units, P)` (PyTorch's `weight_hr`, transposed). States `[h (P),
    c (units)]`; the output is h.

    Args:
        units: positive int, size of c.
        proj_size: positive int below `units`, size of h (PyTorch requires
            it smaller than the hidden size).
        projection_initializer: initializer of `projection_kernel`. Default
            `"glorot_uniform"`.
        projection_regularizer: its regularizer. Default `None`.
        projection_constraint: its constraint. Default `None`.
        Others as `toolkit.LSTMCell`; `recurrent_dropout` drops features of
        the P-wide h_{t-1}.

    Returns:
        `(h_t, [h_t, c_t])`: `(batch, proj_size)` and `(batch, units)`.
    """

    variant_arguments = (
        "proj_size",
        "projection_initializer",
        "projection_regularizer",
        "projection_constraint",
    )
    default_name = "projection_lstm_cell"
    fused_rule = "projection"

    def __init__(
        self,
        units,
        *args,
        proj_size=None,
        projection_initializer="glorot_uniform",
        projection_regularizer=None,
        projection_constraint=None,
        **kwargs,
    ):
        proj_size = _checks.check_positive_int("proj_size", proj_size)
        units = _checks.check_positive_int("units", units)
        if proj_size >= units:
            raise ValueError(
                f"`proj_size` must be smaller than `units` (the projection "
                f"narrows h), got proj_size={proj_size}, units={units}. Use "
                "toolkit.LSTM for an unprojected LSTM."
            )
        super().__init__(units, *args, **kwargs)
        self.proj_size = proj_size
        self.projection_initializer = initializers.get(projection_initializer)
        self.projection_regularizer = regularizers.get(projection_regularizer)
        self.projection_constraint = constraints.get(projection_constraint)
        self.state_size = [proj_size, self.units]
        self.output_size = proj_size

    @property
    def recurrent_input_size(self) -> int:
        return self.proj_size

    def build(self, input_shape):
        super().build(input_shape)
        self.projection_kernel = self.add_weight(
            shape=(self.units, self.proj_size),
            name="projection_kernel",
            initializer=self.projection_initializer,
            regularizer=self.projection_regularizer,
            constraint=self.projection_constraint,
        )

    def _gates_to_state(self, z, states):
        c, o = self.cell_state_and_output_gate(z, states[1])
        h = ops.matmul(o * self.activation(c), self.projection_kernel)
        return h, [h, c]

    def get_config(self):
        config = {
            "proj_size": self.proj_size,
            "projection_initializer": initializers.serialize(
                self.projection_initializer
            ),
            "projection_regularizer": regularizers.serialize(
                self.projection_regularizer
            ),
            "projection_constraint": constraints.serialize(
                self.projection_constraint
            ),
        }
        return {**super().get_config(), **config}


_VARIANT_LAYER_DOC = """

    A `toolkit.LSTM` (same arguments in the same positional order, same
    masking, dropout, `go_backwards`, `stateful`, `return_state` and
    `initial_state` behaviour) over a `{cell}`; see that cell for the
    equations and weights. It runs the fused recurrence with its own
    backward pass under TensorFlow and JAX; `use_cudnn` has no effect (cuDNN
    has no such cell), and `use_cudnn=True` is an error when called.

    Extra keyword arguments: {extra}.
"""


@keras.saving.register_keras_serializable(package="toolkit")
class LayerNormLSTM(LSTM):
    """Layer-normalised LSTM layer (TF Addons' `LayerNormLSTMCell` in a
    layer)."""

    __doc__ += _VARIANT_LAYER_DOC.format(
        cell="toolkit.LayerNormLSTMCell",
        extra="`norm_gamma_initializer`, `norm_beta_initializer`, "
        "`norm_epsilon` (default 1e-3)",
    )
    cell_class = LayerNormLSTMCell
    _cell_config_keys = LSTM._cell_config_keys + (
        LayerNormLSTMCell.variant_arguments
    )

    def __init__(
        self,
        units,
        *args,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(
            units,
            *args,
            norm_gamma_initializer=norm_gamma_initializer,
            norm_beta_initializer=norm_beta_initializer,
            norm_epsilon=norm_epsilon,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="toolkit")
class PeepholeLSTM(LSTM):
    """Peephole LSTM layer (Keras 2's `PeepholeLSTMCell` in a layer)."""

    __doc__ += _VARIANT_LAYER_DOC.format(
        cell="toolkit.PeepholeLSTMCell", extra="none"
    )
    cell_class = PeepholeLSTMCell


@keras.saving.register_keras_serializable(package="toolkit")
class ProjectionLSTM(LSTM):
    """Projection LSTM layer (PyTorch's `nn.LSTM(proj_size=P)`): outputs and
    h are `proj_size` wide, c is `units` wide."""

    __doc__ += _VARIANT_LAYER_DOC.format(
        cell="toolkit.ProjectionLSTMCell",
        extra="`proj_size` (required, below `units`), "
        "`projection_initializer`, `projection_regularizer`, "
        "`projection_constraint`",
    )
    cell_class = ProjectionLSTMCell
    _cell_config_keys = LSTM._cell_config_keys + (
        ProjectionLSTMCell.variant_arguments
    )

    def __init__(
        self,
        units,
        *args,
        proj_size=None,
        projection_initializer="glorot_uniform",
        projection_regularizer=None,
        projection_constraint=None,
        **kwargs,
    ):
        super().__init__(
            units,
            *args,
            proj_size=proj_size,
            projection_initializer=projection_initializer,
            projection_regularizer=projection_regularizer,
            projection_constraint=projection_constraint,
            **kwargs,
        )

    @property
    def proj_size(self):
        return self.cell.proj_size
