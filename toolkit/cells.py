"""Recurrent cells: one timestep of a vanilla (Elman) RNN and of an LSTM.

Both cells split a step into two pieces so that a layer can run them fast:

* `project_inputs(x)` computes the input projection `x W_x + b`. It does not
  depend on the recurrence, so `toolkit.VanillaRNN` / `toolkit.LSTM` apply it
  to all timesteps in one matmul before the loop.
* `recurrent_step(projected, states)` adds `h_{t-1} W_h` and applies the
  nonlinearities; this is all the loop does.

`call()` chains the two for one step, so a cell also works inside
`keras.layers.RNN` or a hand-written loop, with the same numerics.

Weights are named and shaped exactly as in `keras.layers.SimpleRNNCell` and
`keras.layers.LSTMCell`, so `get_weights()` / `set_weights()` move trained
weights between the toolkit and the Keras built-ins in either direction.
"""

from __future__ import annotations

import inspect

import keras
from keras import constraints, initializers, ops, regularizers

from toolkit import _checks
from toolkit._keras_private import DropoutRNNCell
from toolkit.initializers import UnitForgetBias


def arguments_for(function, arguments: dict) -> dict:
    """The entries of `arguments` (a caller's `locals()`) that `function`
    takes by name: how a cell passes its signature on to its base class,
    and a layer its cell arguments to its cell, without writing each
    argument out a second time."""
    names = inspect.signature(function).parameters
    return {
        name: value
        for name, value in arguments.items()
        if name in names
        and names[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        and name != "self"
    }


class DropoutMaskMixin(DropoutRNNCell):
    """Per-sequence ("variational") dropout masks for a recurrent cell.

    One mask for the inputs and one for the recurrent state are drawn per
    sequence batch and reused at every timestep (Gal & Ghahramani 2016).
    `get_dropout_mask` / `get_recurrent_dropout_mask` create a mask on first
    use and cache it until `reset_dropout_mask` /
    `reset_recurrent_dropout_mask`. This is Keras's own protocol for its
    built-in cells (see `toolkit._keras_private.DropoutRNNCell`):
    `keras.layers.RNN` draws both masks before its loop on every call and
    clears them afterwards, so a toolkit cell inside `keras.layers.RNN` gets
    one mask per sequence, the same at every timestep, and a new one on
    every call. A caller that steps the cell by hand resets them between
    sequences.

    Masks hold 0 or `1 / (1 - rate)`, as `keras.random.dropout` scales them.
    The host class must define `dropout`, `recurrent_dropout` and
    `seed_generator`.
    """

    def new_dropout_mask(self, like, rate: float):
        """A fresh mask of the shape of `like` (batch, features)."""
        return keras.random.dropout(
            ops.ones_like(like), rate=rate, seed=self.seed_generator
        )

    def _create_dropout_mask(self, step_input, dropout_rate):
        # Keras's DropoutRNNCell draws every mask through this method.
        return self.new_dropout_mask(step_input, dropout_rate)


class _DenseRecurrentCell(DropoutMaskMixin, keras.layers.Layer):
    """Shared plumbing of cells whose step is `act(x W_x + h W_h + b)`.

    Subclasses set `gate_count` (blocks of `units` columns in each kernel)
    and implement `_gates_to_state(z, states)`.
    """

    gate_count = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        units = _checks.check_positive_int("units", units)
        dropout = _checks.check_rate("dropout", dropout)
        recurrent_dropout = _checks.check_rate(
            "recurrent_dropout", recurrent_dropout
        )
        activation = _checks.get_activation("activation", activation)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.use_bias = bool(use_bias)

        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = self.units  # a list when a cell has more states
        self.output_size = self.units

    @property
    def recurrent_input_size(self) -> int:
        """Width of h_{t-1}, the rows of `recurrent_kernel` (`units`,
        except in a projection LSTM)."""
        return self.units

    def _bias_initializer_for_build(self):
        return self.bias_initializer

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"Cell '{self.name}' needs a known feature dimension, got "
                f"input_shape={tuple(input_shape)}."
            )
        width = self.gate_count * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.recurrent_input_size, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(width,),
                name="bias",
                initializer=self._bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

    def project_inputs(self, inputs, dp_mask=None, time_major=False):
        """Input projection `x W_x + b`.

        Args:
            inputs: `(batch, features)` for one step, or a whole sequence:
                `(batch, timesteps, features)`, or
                `(timesteps, batch, features)` with `time_major=True`.
            dp_mask: optional `(batch, features)` dropout mask, the same for
                every timestep.
            time_major: layout of a 3D `inputs`.

        Returns:
            `(..., gate_count * units)`.
        """
        if dp_mask is not None:
            if len(inputs.shape) == 3:
                dp_mask = ops.expand_dims(dp_mask, 0 if time_major else 1)
            inputs = inputs * dp_mask
        projected = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            projected = projected + self.bias
        return projected

    def recurrent_step(
        self, projected, states, rec_dp_mask=None, recurrent_kernel=None
    ):
        """One step of the recurrence from a precomputed input projection.

        Args:
            projected: `(batch, gate_count * units)`, from `project_inputs`.
            states: list of `(batch, units)` tensors, `h_{t-1}` first.
            rec_dp_mask: optional `(batch, units)` mask applied to `h_{t-1}`.
            recurrent_kernel: W_h to use instead of `self.recurrent_kernel`
                (a layer's weight-dropped copy).

        Returns:
            `(h_t, new_states)`.
        """
        h_tm1 = states[0]
        if rec_dp_mask is not None:
            h_tm1 = h_tm1 * rec_dp_mask
        if recurrent_kernel is None:
            recurrent_kernel = self.recurrent_kernel
        z = projected + ops.matmul(h_tm1, recurrent_kernel)
        return self._gates_to_state(z, states)

    def _gates_to_state(self, z, states):
        raise NotImplementedError

    def standard_kernel_blocker(self) -> str | None:
        """Why this cell is not the LSTM that the cuDNN and LiteRT kernels
        compute (tanh, sigmoid gates, a bias), or `None`."""
        return (
            "it is a vanilla RNN: the cuDNN and LiteRT kernels used here are "
            "LSTMs (the LiteRT converter has no composite route to its RNN "
            "kernel)"
        )

    def call(self, inputs, states, training=False):
        nested = isinstance(states, (list, tuple))
        states = list(states) if nested else [states]
        dp_mask = rec_dp_mask = None
        if training:
            dp_mask = self.get_dropout_mask(inputs)
            rec_dp_mask = self.get_recurrent_dropout_mask(states[0])
        projected = self.project_inputs(inputs, dp_mask)
        output, new_states = self.recurrent_step(projected, states, rec_dp_mask)
        if not nested:
            new_states = new_states[0]
        return output, new_states

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size
        sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for size in sizes
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="toolkit")
class VanillaRNNCell(_DenseRecurrentCell):
    """One step of a vanilla (Elman) RNN: h_t = act(x_t W_x + h_{t-1} W_h + b).

    Weights match `keras.layers.SimpleRNNCell`: `kernel` W_x
    `(input_dim, units)`, `recurrent_kernel` W_h `(units, units)`, `bias`
    `(units,)`.

    Args:
        units: positive int, size of h.
        activation: default `"tanh"`; `None` means identity (a linear RNN).
        use_bias: default `True`.
        kernel_initializer: default `"glorot_uniform"`.
        recurrent_initializer: default `"orthogonal"`.
        bias_initializer: default `"zeros"`.
        kernel_regularizer: regularizer of `kernel`. Default `None`.
        recurrent_regularizer: regularizer of `recurrent_kernel`. Default
            `None`.
        bias_regularizer: regularizer of `bias`. Default `None`.
        kernel_constraint: constraint on `kernel`. Default `None`.
        recurrent_constraint: constraint on `recurrent_kernel`. Default
            `None`.
        bias_constraint: constraint on `bias`. Default `None`.
        dropout: fraction of input features dropped, in [0, 1). Default 0.
        recurrent_dropout: fraction of h_{t-1} dropped, in [0, 1). Default 0.
            Both masks are drawn once per sequence (see `DropoutMaskMixin`).
        seed: int seed for the dropout masks. Default `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`,
            `trainable`).

    Call arguments:
        inputs: `(batch, features)`.
        states: `[h_{t-1}]` with shape `(batch, units)` (or the bare tensor).
        training: apply dropout when `True`.

    Returns:
        `(h_t, [h_t])`, each `(batch, units)`.

    Example:

    >>> cell = VanillaRNNCell(4)
    >>> layer = keras.layers.RNN(cell, return_sequences=True)
    >>> layer(np.zeros((2, 5, 3))).shape
    (2, 5, 4)
    """

    gate_count = 1

    def _gates_to_state(self, z, states):
        h = self.activation(z)
        return h, [h]


@keras.saving.register_keras_serializable(package="toolkit")
class LSTMCell(_DenseRecurrentCell):
    """One step of a long short-term memory cell (Hochreiter & Schmidhuber
    1997, with a forget gate as in Gers et al. 2000).

        z   = x_t W_x + h_{t-1} W_h + b        split into blocks i, f, g, o
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
        g   = tanh(z_g)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Weights match `keras.layers.LSTMCell`: `kernel` W_x `(input_dim, 4 units)`,
    `recurrent_kernel` W_h `(units, 4 units)` and `bias` `(4 units,)`, each
    with column blocks in the order i, f, c (= g), o. The lecture's single
    matrix W of shape (4h, 2h), applied to the stacked vector [h_{t-1}; x_t],
    is the transpose of the row-stacked `[recurrent_kernel; kernel]`: Keras
    multiplies row vectors from the left, `[h_{t-1}, x_t] @ W.T`. Keeping the
    two halves apart lets `toolkit.LSTM` compute `x W_x` for every timestep in
    one matmul before the loop.

    Args:
        units: positive int, size of h and c.
        activation: for g and for c_t before the output gate. Default
            `"tanh"`.
        recurrent_activation: for i, f, o. Default `"sigmoid"`.
        use_bias: default `True`.
        kernel_initializer: default `"glorot_uniform"`.
        recurrent_initializer: default `"orthogonal"`.
        bias_initializer: default `"zeros"`.
        unit_forget_bias: default `True`: the forget-gate block of the bias
            starts at 1 (`toolkit.initializers.UnitForgetBias` wrapping
            `bias_initializer`).
        kernel_regularizer: regularizer of `kernel`. Default `None`.
        recurrent_regularizer: regularizer of `recurrent_kernel`. Default
            `None`.
        bias_regularizer: regularizer of `bias`. Default `None`.
        kernel_constraint: constraint on `kernel`. Default `None`.
        recurrent_constraint: constraint on `recurrent_kernel`. Default
            `None`.
        bias_constraint: constraint on `bias`. Default `None`.
        dropout: fraction of input features dropped, in [0, 1). Default 0.
        recurrent_dropout: fraction of h_{t-1} dropped, in [0, 1). Default 0.
            One mask each per sequence, shared by the four gates.
        seed: int seed for the dropout masks. Default `None`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`,
            `trainable`), and `implementation` (1 or 2, as in
            `keras.layers.LSTMCell`; accepted for compatibility, the toolkit
            always computes the four gates in one matmul).

    Call arguments:
        inputs: `(batch, features)`.
        states: `[h_{t-1}, c_{t-1}]`, each `(batch, units)`.
        training: apply dropout when `True`.

    Returns:
        `(h_t, [h_t, c_t])`, each `(batch, units)`.

    Example:

    >>> cell = LSTMCell(4)
    >>> layer = keras.layers.RNN(cell, return_state=True)
    >>> h, h_again, c = layer(np.zeros((2, 5, 3)))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    gate_count = 4
    # Keyword arguments a variant adds to the LSTM's (see
    # `toolkit.lstm_variants`), and the name its layer gives it.
    variant_arguments: tuple[str, ...] = ()
    default_name = "lstm_cell"
    # A variant's fused-loop rule (`toolkit.variant_recurrence`).
    fused_rule: str | None = None

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        recurrent_activation = _checks.get_activation(
            "recurrent_activation", recurrent_activation
        )
        # Keras's LSTMCell takes `implementation` (1: four small matmuls and,
        # with dropout, one mask per gate; 2: one fused matmul). The toolkit
        # always runs the fused form with one mask shared by the gates;
        # both give the same outputs without dropout.
        implementation = kwargs.pop("implementation", 2)
        if implementation not in (1, 2):
            raise ValueError(
                "Received an invalid value for argument `implementation`, "
                f"expected 1 or 2, got {implementation!r}."
            )
        super().__init__(
            **arguments_for(_DenseRecurrentCell.__init__, locals()), **kwargs
        )
        self.implementation = implementation
        self.recurrent_activation = recurrent_activation
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def _bias_initializer_for_build(self):
        if self.unit_forget_bias:
            return UnitForgetBias(self.bias_initializer)
        return self.bias_initializer

    def _gates_to_state(self, z, states):
        c, o = self.cell_state_and_output_gate(z, states[1])
        h = o * self.activation(c)
        return h, [h, c]

    def standard_kernel_blocker(self) -> str | None:
        if self.fused_rule is not None:
            return (
                f"{type(self).__name__} has no LiteRT kernel and no cuDNN one"
            )
        if self.activation is not keras.activations.tanh:
            return "activation is not tanh"
        if self.recurrent_activation is not keras.activations.sigmoid:
            return "recurrent_activation is not sigmoid"
        if not self.use_bias:
            return "use_bias=False"
        return None

    def cell_state_and_output_gate(self, z, c_tm1):
        """`(c_t, o_t)` from the pre-activations `z` `(batch, 4 units)` and
        `c_{t-1}`; then `h_t = o_t * activation(c_t)`. Split out so that
        `toolkit.lab.diagnostics` can reach c_t before it makes h_t."""
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_g)
        return c, self.recurrent_activation(z_o)

    def get_config(self):
        config = {
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}
