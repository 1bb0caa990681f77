"""`DeepRNN`: a stack of recurrent layers with dropout between them,
optional residual connections, and every layer's states in and out.

`DeepRNN(layers)` composes layers that are already built (toolkit, Keras or
`Bidirectional` ones); `DeepRNN.from_spec(units, ...)` builds a stack of
toolkit layers from their widths.
"""

from __future__ import annotations

import keras
from keras import ops

from toolkit import _checks
from toolkit.layers import LSTM, VanillaRNN, _ProjectedRNN
from toolkit.lstm_variants import LayerNormLSTM, PeepholeLSTM, ProjectionLSTM

# The `cell` names of `DeepRNN.from_spec`, specs and recipe configs.
_RECURRENT_LAYERS = {
    "lstm": LSTM,
    "vanilla": VanillaRNN,
    "layernorm": LayerNormLSTM,
    "peephole": PeepholeLSTM,
    "projection": ProjectionLSTM,
}
_MERGE_MODES = ("concat", "sum", "mul", "ave")


def _output_width(layer) -> int:
    """Feature width of a recurrent layer's output."""
    if isinstance(layer, keras.layers.Bidirectional):
        forward = _output_width(layer.forward_layer)
        if layer.merge_mode == "concat":
            return forward + _output_width(layer.backward_layer)
        return forward
    size = getattr(layer.cell, "output_size", None)
    if size is None:
        size = layer.cell.state_size
        size = size[0] if isinstance(size, (list, tuple)) else size
    return int(size)


def _unwrap(layer):
    """The forward layer of a `Bidirectional`, else `layer` itself."""
    if isinstance(layer, keras.layers.Bidirectional):
        return layer.forward_layer
    return layer


def _state_sizes(layer) -> list[int]:
    """Width of each state tensor a recurrent layer carries, in order."""
    if isinstance(layer, keras.layers.Bidirectional):
        return _state_sizes(layer.forward_layer) + _state_sizes(
            layer.backward_layer
        )
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
            cell: `"lstm"` (default), `"vanilla"`, `"layernorm"`,
                `"peephole"` or `"projection"` (`toolkit.LSTM`,
                `VanillaRNN`, `LayerNormLSTM`, `PeepholeLSTM`,
                `ProjectionLSTM`; the last needs `proj_size` in
                `layer_kwargs`).
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
        """Each layer's `units` (per direction for a bidirectional layer),
        as `from_spec` takes them."""
        return [
            int(_unwrap(layer).cell.units)
            if hasattr(_unwrap(layer).cell, "units")
            else _output_width(_unwrap(layer))
            for layer in self._rnn_layers
        ]

    @property
    def output_widths(self) -> list[int]:
        """Each layer's output width: its units, doubled by a concatenating
        bidirectional layer."""
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
