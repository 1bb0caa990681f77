"""Recurrent layers: `VanillaRNN`, `LSTM` and the `DeepRNN` stack.

`VanillaRNN` and `LSTM` are `keras.layers.RNN` subclasses with the
constructor arguments of `keras.layers.SimpleRNN` and `keras.layers.LSTM`, so
either can replace the built-in without other changes. They differ from a
plain `keras.layers.RNN(cell)` in one way: the input projection `x_t W_x + b`
is computed for all timesteps in one matmul before the loop (input dropout
uses one mask per sequence, so it is hoisted too), and the loop itself does
only `h_{t-1} W_h` and the gates. The loop is Keras's own backend loop, so
masking, `go_backwards`, `unroll`, `stateful` and initial states behave
exactly as in the built-ins.
"""

from __future__ import annotations

import keras
from keras import ops

from toolkit import _checks
from toolkit._keras_private import backend_lstm, backend_rnn
from toolkit.cells import LSTMCell, VanillaRNNCell
from toolkit.recurrence import fused_recurrence, fused_recurrence_supported


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

    # Read-only views of the cell's settings, as the built-ins expose.
    @property
    def units(self):
        return self.cell.units

    @property
    def activation(self):
        return self.cell.activation

    @property
    def use_bias(self):
        return self.cell.use_bias

    @property
    def kernel_initializer(self):
        return self.cell.kernel_initializer

    @property
    def recurrent_initializer(self):
        return self.cell.recurrent_initializer

    @property
    def bias_initializer(self):
        return self.cell.bias_initializer

    @property
    def kernel_regularizer(self):
        return self.cell.kernel_regularizer

    @property
    def recurrent_regularizer(self):
        return self.cell.recurrent_regularizer

    @property
    def bias_regularizer(self):
        return self.cell.bias_regularizer

    @property
    def kernel_constraint(self):
        return self.cell.kernel_constraint

    @property
    def recurrent_constraint(self):
        return self.cell.recurrent_constraint

    @property
    def bias_constraint(self):
        return self.cell.bias_constraint

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    @property
    def seed(self):
        return self.cell.seed

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
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        dp_mask = rec_dp_mask = None
        if training:
            # `keras.layers.RNN.call` drew this call's masks before the loop
            # and clears them after it (Keras's DropoutRNNCell protocol).
            dp_mask = cell.get_dropout_mask(sequences[:, 0, :])
            rec_dp_mask = cell.get_recurrent_dropout_mask(initial_state[0])
        recurrent_kernel = self.weight_dropped_kernel(training)
        if fused_recurrence_supported(cell, self.unroll):
            # The loop is time-major: transpose the inputs or their
            # projection, whichever is narrower.
            if sequences.shape[-1] <= cell.gate_count * cell.units:
                projected = cell.project_inputs(
                    ops.transpose(sequences, (1, 0, 2)),
                    dp_mask,
                    time_major=True,
                )
            else:
                projected = ops.transpose(
                    cell.project_inputs(sequences, dp_mask), (1, 0, 2)
                )
            last_output, outputs, states = fused_recurrence(
                cell,
                projected,
                initial_state,
                mask=mask,
                rec_dp_mask=rec_dp_mask,
                go_backwards=self.go_backwards,
                zero_output_for_mask=self.zero_output_for_mask,
                return_sequences=self.return_sequences,
                training=bool(training),
                recurrent_kernel=recurrent_kernel,
            )
            if self.return_sequences:
                outputs = ops.transpose(outputs, (1, 0, 2))
            return last_output, outputs, states

        projected = cell.project_inputs(sequences, dp_mask)

        def step(projected_t, states):
            return cell.recurrent_step(
                projected_t, list(states), rec_dp_mask, recurrent_kernel
            )

        return backend_rnn(
            step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
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


_COMMON_CELL_CONFIG_KEYS = (
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)


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
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
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
        use_cudnn: `"auto"` (default): run on the backend's cuDNN kernel when
            a GPU and the configuration allow it (`cudnn_allowed`), as
            `keras.layers.LSTM` does, else the fused loop; `True`: require
            cuDNN (a `ValueError` when it cannot run); `False`: never.
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
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            implementation=kwargs.pop("implementation", 2),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
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
        """Whether this configuration may run on the backend's cuDNN kernel.

        The conditions `keras.layers.LSTM` checks: `use_cudnn` is not
        `False`, tanh and sigmoid activations, a bias, no `unroll`, and no
        recurrent dropout (which only matters in training: at inference
        there is no mask). Whether a GPU is there is the backend's call; on
        a CPU it declines and the fused loop runs.
        """
        cell = self.cell
        return (
            self.use_cudnn in ("auto", True)
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and cell.use_bias
            and not self.unroll
            and not (training and cell.recurrent_dropout > 0)
            and not (training and self.recurrent_weight_dropout > 0)
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.cudnn_allowed(training):
            try:
                return self._cudnn_loop(
                    sequences, initial_state, mask, training
                )
            except NotImplementedError:
                pass  # no GPU, or a mask the kernel cannot take
        if self.use_cudnn is True:
            raise ValueError(
                "use_cudnn=True was specified, but cuDNN is not available for "
                "this layer configuration with this backend (it needs a GPU, "
                "tanh/sigmoid activations, use_bias=True, unroll=False and, "
                "in training, recurrent_dropout=0 and "
                "recurrent_weight_dropout=0). Pass use_cudnn='auto' to fall "
                "back to the fused loop."
            )
        return super().inner_loop(
            sequences, initial_state, mask, training=training
        )

    def _cudnn_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        if training and cell.dropout > 0:
            dp_mask = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(dp_mask, 1)
        result = backend_lstm(
            sequences,
            initial_state[0],
            initial_state[1],
            mask,
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
        )
        if keras.backend.backend() == "tensorflow":
            self.supports_jit = False  # cuDNN ops do not compile under XLA
        return result

    @property
    def recurrent_activation(self):
        return self.cell.recurrent_activation

    @property
    def unit_forget_bias(self):
        return self.cell.unit_forget_bias

    @property
    def implementation(self):
        return self.cell.implementation


_RECURRENT_LAYERS = {"lstm": LSTM, "vanilla": VanillaRNN}
_MERGE_MODES = ("concat", "sum", "mul", "ave")


def _output_width(layer) -> int:
    """Feature width of a recurrent layer's output."""
    if isinstance(layer, keras.layers.Bidirectional):
        width = _output_width(layer.forward_layer)
        return 2 * width if layer.merge_mode == "concat" else width
    size = getattr(layer.cell, "output_size", None)
    if size is None:
        size = layer.cell.state_size
        size = size[0] if isinstance(size, (list, tuple)) else size
    return int(size)


def _state_sizes(layer) -> list[int]:
    """Width of each state tensor a recurrent layer carries, in order."""
    if isinstance(layer, keras.layers.Bidirectional):
        return _state_sizes(layer.forward_layer) * 2
    size = layer.cell.state_size
    return [
        int(s) for s in (size if isinstance(size, (list, tuple)) else [size])
    ]


def _return_states(layer) -> None:
    """Make `layer` return its final states after its output."""
    if isinstance(layer, keras.layers.Bidirectional):
        for inner in (layer.forward_layer, layer.backward_layer):
            inner.return_state = True
    layer.return_state = True


@keras.saving.register_keras_serializable(package="toolkit")
class DeepRNN(keras.layers.Layer):
    """A stack of recurrent layers with dropout between them and optional
    residual connections; it can start from given states and return the
    final states of every layer.

    Layer k reads the output sequence of layer k-1. With `residual=True`, a
    layer's input is added to its output wherever the two have the same
    width and the layer returns sequences (never around the first layer,
    whose input width is the data's, and never around a top layer that
    returns one vector); which layers get one is decided here, in
    `__init__`, and readable as `residual_connections`.

    Build a stack from layers, as `keras.layers.StackedRNNCells` takes cells
    and `keras.layers.Bidirectional` takes a layer:

        DeepRNN([toolkit.LSTM(256, return_sequences=True),
                 toolkit.LSTM(256, return_sequences=True)], dropout=0.2)

    or from widths with `DeepRNN.from_spec([256, 256], cell="lstm", ...)`.

    Args:
        layers: a non-empty list of recurrent layers: toolkit `LSTM` /
            `VanillaRNN`, Keras's `LSTM`, `GRU`, `SimpleRNN`, any
            `keras.layers.RNN`, or a `keras.layers.Bidirectional` of one
            (with a merge mode). Every layer but the top one must return
            sequences; the top one decides `return_sequences`. The stack
            owns the layers: it sets their `return_state` so it can carry
            their states.
        dropout: rate of the `keras.layers.Dropout` between layers, in
            [0, 1). Default 0.
        locked_dropout: draw that dropout's mask once per sequence and use
            it at every timestep (variational or "locked" dropout, Gal &
            Ghahramani 2016; AWD-LSTM) instead of anew at each timestep.
            Default `False`.
        residual: add skip connections between equal-width layers (see
            above). Default `False`.
        return_state: also return every layer's final states. Default
            `False`.
        seed: int seed of the dropout between layers (layer k's dropout uses
            `seed + 1000 + k`). Default `None`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: `(batch, timesteps, features)`.
        initial_state: optional list with one entry per layer: that layer's
            list of state tensors (`[h]` for a vanilla RNN, `[h, c]` for an
            LSTM, forward then backward states for a bidirectional layer),
            each `(batch, units)`; or `None` for a layer that starts from
            zeros (or from its carried state when stateful).
        mask: optional boolean `(batch, timesteps)`, passed to every layer.
        training: apply dropout when `True`.

    Returns:
        `(batch, width)` or `(batch, timesteps, width)`, where width is the
        top layer's output width. With `return_state`, a list: that output
        followed by one list of final states per layer, in the
        `initial_state` format (as `keras.layers.RNN` over
        `StackedRNNCells` returns them).

    Example:

    >>> stack = DeepRNN([LSTM(8, return_sequences=True), LSTM(8)])
    >>> stack(np.zeros((2, 7, 16))).shape
    (2, 8)
    """

    def __init__(
        self,
        layers,
        dropout=0.0,
        residual=False,
        return_state=False,
        seed=None,
        locked_dropout=False,
        **kwargs,
    ):
        layers = self._check_layers(layers)
        dropout = _checks.check_rate("dropout", dropout)
        super().__init__(**kwargs)
        self._rnn_layers = layers
        self.dropout = dropout
        self.residual = bool(residual)
        self.return_state = bool(return_state)
        self.seed = seed
        self.locked_dropout = bool(locked_dropout)
        self.supports_masking = True
        for layer in layers:
            _return_states(layer)
        top = len(layers) - 1
        self._dropout_layers = [
            keras.layers.Dropout(
                dropout,
                # (batch, 1, features): one mask for all timesteps.
                noise_shape=(None, 1, None) if locked_dropout else None,
                seed=None if seed is None else seed + 1000 + index,
                name=f"dropout_{index}",
            )
            for index in range(top)
            if dropout > 0
        ]
        self._residual_connections = self._plan_residuals()

    @classmethod
    def from_spec(
        cls,
        units,
        num_layers=None,
        cell="lstm",
        dropout=0.0,
        residual=False,
        bidirectional=False,
        merge_mode="concat",
        return_sequences=False,
        return_state=False,
        stateful=False,
        seed=None,
        layer_kwargs=None,
        locked_dropout=False,
        **kwargs,
    ):
        """A stack of toolkit layers described by their widths.

        Args:
            units: int (with `num_layers`) or a list of ints, one per layer.
            num_layers: number of layers when `units` is an int. Default 2.
            cell: `"lstm"` (default) or `"vanilla"`.
            dropout: between layers, as in `DeepRNN`. Default 0.
            residual: as in `DeepRNN`. Default `False`.
            bidirectional: wrap every layer in `keras.layers.Bidirectional`.
                Default `False`.
            merge_mode: how the two directions merge (`"concat"`, `"sum"`,
                `"mul"`, `"ave"`). Default `"concat"`, which doubles the
                width.
            return_sequences: the top layer returns every timestep. Default
                `False`.
            return_state: as in `DeepRNN`. Default `False`.
            stateful: every layer carries its state across batches (see
                `keras.layers.RNN`). Default `False`.
            seed: int seed; layer k uses `seed + k` for its dropout masks.
            layer_kwargs: dict of extra arguments for every recurrent layer,
                such as `{"recurrent_dropout": 0.1, "unroll": True}`.
            locked_dropout: as in `DeepRNN`. Default `False`.
            **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

        Example:

        >>> DeepRNN.from_spec([64, 64, 32], dropout=0.2, residual=True)(
        ...     np.zeros((2, 7, 16))).shape
        (2, 32)
        """
        units = _resolve_units(units, num_layers)
        if cell not in _RECURRENT_LAYERS:
            raise ValueError(
                "Received an invalid value for argument `cell`, expected one "
                f"of {sorted(_RECURRENT_LAYERS)}, got {cell!r}."
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                "Received an invalid value for argument `merge_mode`, "
                f"expected one of {_MERGE_MODES}, got {merge_mode!r}."
            )
        layer_kwargs = dict(layer_kwargs or {})
        owned = sorted(
            set(layer_kwargs)
            & {"units", "return_sequences", "return_state", "stateful", "seed"}
        )
        if owned:
            raise ValueError(
                f"Received `layer_kwargs` with {owned}, which DeepRNN sets "
                "itself; pass them as DeepRNN arguments instead."
            )
        layer_class = _RECURRENT_LAYERS[cell]
        top = len(units) - 1
        layers = []
        for index, width in enumerate(units):
            layer = layer_class(
                width,
                return_sequences=index < top or bool(return_sequences),
                stateful=bool(stateful),
                seed=None if seed is None else seed + index,
                name=f"{cell}_{index}",
                **layer_kwargs,
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(
                    layer, merge_mode=merge_mode, name=f"bidirectional_{index}"
                )
            layers.append(layer)
        return cls(
            layers,
            dropout=dropout,
            residual=residual,
            return_state=return_state,
            seed=seed,
            locked_dropout=locked_dropout,
            **kwargs,
        )

    @staticmethod
    def _check_layers(layers):
        if isinstance(layers, keras.layers.Layer):
            layers = [layers]
        if not isinstance(layers, (list, tuple)) or not all(
            isinstance(layer, keras.layers.Layer) for layer in layers
        ):
            raise TypeError(
                "DeepRNN expects a list of recurrent layers, e.g. "
                "DeepRNN([toolkit.LSTM(64, return_sequences=True), "
                "toolkit.LSTM(64)]); for a stack described by widths use "
                f"DeepRNN.from_spec(units, ...). Got {layers!r}."
            )
        if not layers:
            raise ValueError("DeepRNN needs at least one layer, got [].")
        for index, layer in enumerate(layers):
            inner = (
                layer.forward_layer
                if isinstance(layer, keras.layers.Bidirectional)
                else layer
            )
            if not isinstance(inner, keras.layers.RNN):
                raise TypeError(
                    f"DeepRNN layer {index} ({layer.name}) is a "
                    f"{type(layer).__name__}; every layer must be a "
                    "keras.layers.RNN (toolkit.LSTM, keras.layers.GRU, ...) "
                    "or a keras.layers.Bidirectional of one."
                )
            if (
                isinstance(layer, keras.layers.Bidirectional)
                and layer.merge_mode is None
            ):
                raise ValueError(
                    f"DeepRNN layer {index} ({layer.name}) is Bidirectional "
                    "with merge_mode=None; give it a merge mode "
                    f"{_MERGE_MODES} so the next layer reads one tensor."
                )
            if index < len(layers) - 1 and not layer.return_sequences:
                raise ValueError(
                    f"DeepRNN layer {index} ({layer.name}) returns one "
                    "vector, but the layer above reads a sequence: build "
                    "every layer below the top with return_sequences=True."
                )
        stateful = {bool(layer.stateful) for layer in layers}
        if len(stateful) > 1:
            raise ValueError(
                "DeepRNN layers must all be stateful or all not, got "
                f"stateful={[bool(layer.stateful) for layer in layers]}."
            )
        return list(layers)

    def _plan_residuals(self):
        widths = [_output_width(layer) for layer in self._rnn_layers]
        plan = [False] + [
            self.residual
            and layer.return_sequences
            and widths[index - 1] == widths[index]
            for index, layer in enumerate(self._rnn_layers)
            if index > 0
        ]
        if self.residual and not any(plan):
            raise ValueError(
                "Received `residual=True`, but no layer can take a residual "
                "connection: one joins the input and output of a layer after "
                "the first when they have equal width and the layer returns "
                f"sequences (layer widths {widths}, return_sequences="
                f"{self.return_sequences}, so the top layer returns one "
                "vector). Use equal widths with at least 3 layers or "
                "return_sequences=True, or residual=False."
            )
        return tuple(plan)

    @property
    def rnn_layers(self) -> list:
        """The recurrent layers, bottom first (read-only)."""
        return list(self._rnn_layers)

    @property
    def layers(self) -> list:
        """Every inner layer in call order, the dropout between recurrent
        layers included (what `model.summary(expand_nested=True)` shows)."""
        ordered = []
        for index, layer in enumerate(self._rnn_layers):
            ordered.append(layer)
            if index < len(self._dropout_layers):
                ordered.append(self._dropout_layers[index])
        return ordered

    @property
    def dropout_layers(self) -> list:
        """The `Dropout` after each recurrent layer but the top one."""
        return list(self._dropout_layers)

    @property
    def residual_connections(self) -> tuple[bool, ...]:
        """Whether layer k's input is added to its output (read-only)."""
        return self._residual_connections

    @property
    def return_sequences(self) -> bool:
        return bool(self._rnn_layers[-1].return_sequences)

    @property
    def stateful(self) -> bool:
        return bool(self._rnn_layers[0].stateful)

    @property
    def bidirectional(self) -> bool:
        return any(
            isinstance(layer, keras.layers.Bidirectional)
            for layer in self._rnn_layers
        )

    @property
    def units(self) -> list[int]:
        """Each layer's output width (doubled by a concatenating
        bidirectional layer)."""
        return [_output_width(layer) for layer in self._rnn_layers]

    @property
    def state_sizes(self) -> list[list[int]]:
        """Per layer, the width of each state tensor it carries."""
        return [_state_sizes(layer) for layer in self._rnn_layers]

    def build(self, inputs_shape, initial_state_shape=None):
        _checks.check_sequence_shape(self.name, inputs_shape)
        shape = tuple(inputs_shape)
        for layer in self._rnn_layers:
            if not layer.built:
                layer.build(shape)
            shape = shape[:2] + (_output_width(layer),)

    def get_initial_state(self, batch_size):
        """Zero states in the `initial_state` format: one list per layer,
        each tensor `(batch_size, units)`."""
        return [
            [
                ops.zeros((batch_size, size), dtype=self.compute_dtype)
                for size in sizes
            ]
            for sizes in self.state_sizes
        ]

    def _check_initial_state(self, initial_state, shape):
        sizes = self.state_sizes
        if not isinstance(initial_state, (list, tuple)) or len(
            initial_state
        ) != len(sizes):
            count = (
                len(initial_state)
                if isinstance(initial_state, (list, tuple))
                else "not a list"
            )
            raise ValueError(
                f"Layer '{self.name}' expects `initial_state` as a list with "
                f"one list of states per layer ({len(sizes)} layers, state "
                f"widths {sizes}, e.g. from get_initial_state(batch)), got "
                f"{count}."
            )
        for states, layer in zip(initial_state, self._rnn_layers, strict=True):
            # Toolkit layers check their own states in `call`.
            if states is not None and not isinstance(layer, _ProjectedRNN):
                _checks.check_initial_state(
                    layer.name, states, _state_sizes(layer), shape
                )

    def call(self, inputs, initial_state=None, mask=None, training=None):
        _checks.check_sequence_shape(self.name, inputs.shape)
        if initial_state is not None:
            self._check_initial_state(initial_state, inputs.shape)
        x = inputs
        final_states = []
        for index, layer in enumerate(self._rnn_layers):
            states = None if initial_state is None else initial_state[index]
            if states is not None:
                states = list(states)
            y, *layer_states = layer(
                x, initial_state=states, mask=mask, training=training
            )
            final_states.append(list(layer_states))
            if self._residual_connections[index]:
                y = ops.add(y, x)
            if index < len(self._dropout_layers):
                y = self._dropout_layers[index](y, training=training)
            x = y
        if self.return_state:
            return [x, *final_states]
        return x

    def compute_output_shape(self, inputs_shape, initial_state_shape=None):
        input_shape = inputs_shape
        width = _output_width(self._rnn_layers[-1])
        if self.return_sequences:
            output = (input_shape[0], input_shape[1], width)
        else:
            output = (input_shape[0], width)
        if not self.return_state:
            return output
        return [output] + [
            [(input_shape[0], size) for size in sizes]
            for sizes in self.state_sizes
        ]

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [
                [None] * len(sizes) for sizes in self.state_sizes
            ]
        return output_mask

    def reset_state(self):
        """Zero the carried state of every layer (for `stateful=True`)."""
        for layer in self._rnn_layers:
            layer.reset_state()

    def reset_states(self):
        """Alias of `reset_state`, as `keras.layers.RNN` has."""
        self.reset_state()

    def get_config(self):
        config = {
            "layers": [
                keras.saving.serialize_keras_object(layer)
                for layer in self._rnn_layers
            ],
            "dropout": self.dropout,
            "residual": self.residual,
            "return_state": self.return_state,
            "seed": self.seed,
            "locked_dropout": self.locked_dropout,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "units" in config:  # saved by toolkit 0.1 (the spec form)
            return cls.from_spec(**config)
        config["layers"] = [
            keras.saving.deserialize_keras_object(layer)
            for layer in config["layers"]
        ]
        return cls(**config)


def _resolve_units(units, num_layers):
    if isinstance(units, (list, tuple)):
        units = [_checks.check_positive_int("units", u) for u in units]
        if not units:
            raise ValueError(
                "Received an invalid value for argument `units`, expected "
                "a positive integer or a non-empty list of them, got []."
            )
        if num_layers is not None and num_layers != len(units):
            raise ValueError(
                "Received an invalid value for argument `num_layers`, "
                f"expected {len(units)} to match `units`={units}, got "
                f"{num_layers!r}."
            )
        return units
    units = _checks.check_positive_int("units", units)
    num_layers = 2 if num_layers is None else num_layers
    num_layers = _checks.check_positive_int("num_layers", num_layers)
    return [units] * num_layers
