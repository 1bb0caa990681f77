"""Recurrent layers: `VanillaRNN` and `LSTM`.

Both are `keras.layers.RNN` subclasses with the constructor arguments of
`keras.layers.SimpleRNN` and `keras.layers.LSTM`, in the same positional
order, so either can replace the built-in without other changes. The input
projection `x_t W_x + b` is computed for all timesteps in one matmul before
the loop (input dropout uses one mask per sequence, so it is hoisted too),
and the loop itself does only `h_{t-1} W_h` and the gates. Which loop runs
(cuDNN, the toolkit's fused recurrence or Keras's own) is decided in
`toolkit.loop`; masking, `go_backwards`, `unroll`, `stateful` and initial
states behave exactly as in the built-ins whichever it is.

The cell arguments are written once per layer, in its visible signature;
`toolkit.cells.arguments_for` hands them to the cell, and the layer reads
them back from the cell (`layer.units` is `layer.cell.units`), as Keras's
layers do.
"""

from __future__ import annotations

import inspect

import keras
from keras import ops

from toolkit import _checks, loop
from toolkit.cells import (
    LSTMCell,
    VanillaRNNCell,
    _DenseRecurrentCell,
    arguments_for,
)


class _ProjectedRNN(keras.layers.RNN):
    """A `keras.layers.RNN` whose loop starts from precomputed projections.

    The cell must provide `project_inputs` and `recurrent_step` (see
    `toolkit.cells`). Subclasses list the cell arguments that their config
    carries in `_cell_config_keys`.

    `recurrent_weight_dropout` (keyword, every subclass) is DropConnect on
    the recurrent kernel W_h (Wan et al. 2013), as AWD-LSTM's weight drop
    (Merity et al. 2018) uses it: in training, each call draws one mask of
    W_h's shape (zeros and `1 / (1 - rate)`) and the whole sequence, every
    row of the batch, runs with the masked W_h, so the fused recurrence
    still runs; at inference W_h is used whole. Keras's built-ins have no
    such argument: a layer that sets it cannot be swapped for one.
    """

    _cell_config_keys: tuple[str, ...] = ()

    def __init__(
        self, cell, use_cudnn="auto", recurrent_weight_dropout=0.0, **kwargs
    ):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "Received an invalid value for argument `use_cudnn`, expected "
                f"'auto', True or False, got {use_cudnn!r}."
            )
        recurrent_weight_dropout = _checks.check_rate(
            "recurrent_weight_dropout", recurrent_weight_dropout
        )
        super().__init__(cell, **kwargs)
        self.use_cudnn = use_cudnn
        self.recurrent_weight_dropout = recurrent_weight_dropout
        if recurrent_weight_dropout:
            seed = cell.seed
            self.weight_dropout_seed = keras.random.SeedGenerator(
                None if seed is None else seed + 7919,
                name="weight_dropout_seed",
            )

    def weight_dropped_kernel(self, training=False):
        """W_h for this call: DropConnect-masked in training when
        `recurrent_weight_dropout` is set, else `None` (the cell's own)."""
        if not (training and self.recurrent_weight_dropout):
            return None
        kernel = ops.convert_to_tensor(self.cell.recurrent_kernel)
        mask = keras.random.dropout(
            ops.ones_like(kernel),
            rate=self.recurrent_weight_dropout,
            seed=self.weight_dropout_seed,
        )
        return kernel * ops.cast(mask, kernel.dtype)

    def __call__(self, sequences, *args, **kwargs):
        # Checked before Keras builds the layer, where only shapes are seen,
        # so integer token ids get the message that names Embedding.
        shape = getattr(sequences, "shape", None)
        if shape is not None and len(shape) != 3:
            _checks.check_sequence_shape(
                self.name, shape, getattr(sequences, "dtype", None)
            )
        return super().__call__(sequences, *args, **kwargs)

    def build(self, sequences_shape, initial_state_shape=None):
        _checks.check_sequence_shape(self.name, sequences_shape)
        super().build(sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        # The rank was checked in `__call__`.
        if initial_state is not None:
            _checks.check_initial_state(
                self.name, initial_state, self.cell.state_size, sequences.shape
            )
        return super().call(
            sequences,
            initial_state=initial_state,
            mask=mask,
            training=training,
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        return loop.run_loop(
            self, sequences, initial_state, mask, training=training
        )

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {name: cell_config[name] for name in self._cell_config_keys}
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        if self.recurrent_weight_dropout:
            # Only when set, so the config of a layer without it stays
            # exactly the built-in's.
            config["recurrent_weight_dropout"] = self.recurrent_weight_dropout
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _read_from_cell(name: str) -> property:
    return property(
        lambda self: getattr(self.cell, name),
        doc=f"The cell's `{name}` (read-only).",
    )


# A layer's cell arguments, readable on the layer as on Keras's layers.
_COMMON_CELL_CONFIG_KEYS = tuple(
    inspect.signature(_DenseRecurrentCell.__init__).parameters
)[1:-1]
for _name in _COMMON_CELL_CONFIG_KEYS:
    setattr(_ProjectedRNN, _name, _read_from_cell(_name))
del _name


@keras.saving.register_keras_serializable(package="toolkit")
class VanillaRNN(_ProjectedRNN):
    """Vanilla (Elman) RNN layer: h_t = act(x_t W_x + h_{t-1} W_h + b).

    A drop-in replacement for `keras.layers.SimpleRNN`: the same arguments in
    the same positional order, the same weights (`cell.kernel`,
    `cell.recurrent_kernel`, `cell.bias`), the same outputs, with `x_t W_x`
    computed for all timesteps before the loop.

    Args:
        units: positive int, size of h.
        activation: default `"tanh"`; `None` gives a linear RNN.
        use_bias: default `True`.
        kernel_initializer: initializer of `kernel` W_x. Default
            `"glorot_uniform"`.
        recurrent_initializer: initializer of `recurrent_kernel` W_h.
            Default `"orthogonal"`.
        bias_initializer: initializer of `bias`. Default `"zeros"`.
        kernel_regularizer: regularizer of `kernel`. Default `None`.
        recurrent_regularizer: regularizer of `recurrent_kernel`. Default
            `None`.
        bias_regularizer: regularizer of `bias`. Default `None`.
        activity_regularizer: regularizer of the layer's output. Default
            `None`.
        kernel_constraint: constraint on `kernel`. Default `None`.
        recurrent_constraint: constraint on `recurrent_kernel`. Default
            `None`.
        bias_constraint: constraint on `bias`. Default `None`.
        dropout: fraction of input features dropped, in [0, 1), one mask per
            sequence. Default 0.
        recurrent_dropout: fraction of h_{t-1} dropped, in [0, 1), one mask
            per sequence. Default 0.
        return_sequences: return `(batch, timesteps, units)` instead of the
            last output. Default `False`.
        return_state: also return the final h. Default `False`.
        go_backwards: process the sequence in reverse and return the reversed
            output sequence. Default `False`.
        stateful: carry the final state of batch k into batch k+1 (needs a
            fixed batch size). Default `False`.
        unroll: unroll the loop (needs a known number of timesteps). Default
            `False`.
        seed: int seed for the dropout masks. Default `None`.
        **kwargs: `keras.layers.RNN` arguments (`zero_output_for_mask`) and
            base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional `[h_0]`, `(batch, units)`.
        mask: optional boolean `(batch, timesteps)`; masked steps keep the
            previous state.
        training: apply dropout when `True`.

    Returns:
        `(batch, units)`, or `(batch, timesteps, units)` with
        `return_sequences`; with `return_state`, also the final h.

    Example:

    >>> layer = VanillaRNN(8, return_sequences=True)
    >>> layer(np.zeros((4, 10, 3))).shape
    (4, 10, 8)
    """

    _cell_config_keys = _COMMON_CELL_CONFIG_KEYS

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        seed=None,
        **kwargs,
    ):
        cell = VanillaRNNCell(
            **arguments_for(VanillaRNNCell.__init__, locals()),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="simple_rnn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="toolkit")
class LSTM(_ProjectedRNN):
    """Long short-term memory layer (see `toolkit.LSTMCell` for the equations).

    A drop-in replacement for `keras.layers.LSTM`: the same arguments in the
    same positional order, the same weights (`cell.kernel`
    `(features, 4 units)`, `cell.recurrent_kernel` `(units, 4 units)`,
    `cell.bias` `(4 units,)`, gate order i, f, c, o), the same outputs to
    float32 round-off, with `x_t W_x + b` computed for all timesteps before
    the loop.

    Args:
        units: positive int, size of h and c.
        activation: for the candidate g and for c_t before the output gate.
            Default `"tanh"`.
        recurrent_activation: for the gates i, f, o. Default `"sigmoid"`.
        use_bias: default `True`.
        kernel_initializer: initializer of `kernel` W_x. Default
            `"glorot_uniform"`.
        recurrent_initializer: initializer of `recurrent_kernel` W_h.
            Default `"orthogonal"`.
        bias_initializer: initializer of `bias`. Default `"zeros"`.
        unit_forget_bias: start the forget-gate bias at 1. Default `True`.
        kernel_regularizer: regularizer of `kernel`. Default `None`.
        recurrent_regularizer: regularizer of `recurrent_kernel`. Default
            `None`.
        bias_regularizer: regularizer of `bias`. Default `None`.
        activity_regularizer: regularizer of the layer's output. Default
            `None`.
        kernel_constraint: constraint on `kernel`. Default `None`.
        recurrent_constraint: constraint on `recurrent_kernel`. Default
            `None`.
        bias_constraint: constraint on `bias`. Default `None`.
        dropout: fraction of input features dropped, in [0, 1), one mask per
            sequence shared by the four gates. Default 0.
        recurrent_dropout: fraction of h_{t-1} dropped, in [0, 1), one mask
            per sequence shared by the four gates. Default 0.
        seed: int seed for the dropout masks. Default `None`.
        return_sequences: return `(batch, timesteps, units)` instead of the
            last output. Default `False`.
        return_state: also return the final h and c. Default `False`.
        go_backwards: process the sequence in reverse and return the reversed
            output sequence. Default `False`.
        stateful: carry the final state of batch k into batch k+1 (needs a
            fixed batch size). Default `False`.
        unroll: unroll the loop (needs a known number of timesteps). Default
            `False`.
        use_cudnn: `"auto"` (default): the loop measured fastest for the
            backend (`toolkit.loop`): under TensorFlow the cuDNN kernel
            when a GPU and the configuration allow it (`cudnn_allowed`), as
            `keras.layers.LSTM` does, else the fused loop; under JAX the
            fused loop. `True`: require cuDNN (a `ValueError` when it
            cannot run); `False`: never.
        **kwargs: `keras.layers.RNN` arguments (`zero_output_for_mask`),
            `implementation` (1 or 2, accepted as `keras.layers.LSTM` does;
            the toolkit always fuses the four gates into one matmul), and
            base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        sequences: `(batch, timesteps, features)`.
        initial_state: optional `[h_0, c_0]`, each `(batch, units)`.
        mask: optional boolean `(batch, timesteps)`.
        training: apply dropout when `True`.

    Returns:
        `(batch, units)`, or `(batch, timesteps, units)` with
        `return_sequences`; with `return_state`, also the final h and c.

    Example:

    >>> layer = LSTM(8, return_state=True)
    >>> output, h, c = layer(np.zeros((4, 10, 3)))
    >>> output.shape, c.shape
    ((4, 8), (4, 8))
    """

    cell_class = LSTMCell
    _cell_config_keys = _COMMON_CELL_CONFIG_KEYS + (
        "recurrent_activation",
        "unit_forget_bias",
    )

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        cell_class = self.cell_class
        # A variant's own cell arguments (keyword-only in its signature).
        variant_arguments = {
            name: kwargs.pop(name)
            for name in cell_class.variant_arguments
            if name in kwargs
        }
        cell = cell_class(
            **arguments_for(LSTMCell.__init__, locals()),
            **variant_arguments,
            implementation=kwargs.pop("implementation", 2),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=cell_class.default_name,
        )
        super().__init__(
            cell,
            use_cudnn=use_cudnn,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )

    def cudnn_allowed(self, training=False) -> bool:
        """Whether this configuration may run on the backend's cuDNN kernel
        (the conditions `keras.layers.LSTM` checks; see `toolkit.loop`).
        Whether a GPU is there is the backend's call; on a CPU it declines
        and the fused loop runs."""
        return loop.cudnn_allowed(self, training)

    @property
    def implementation(self):
        return self.cell.implementation


for _name in ("recurrent_activation", "unit_forget_bias"):
    setattr(LSTM, _name, _read_from_cell(_name))
del _name
