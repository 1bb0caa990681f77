"""Initializers for recurrent layers."""

from __future__ import annotations

import keras
from keras import initializers, ops


@keras.saving.register_keras_serializable(package="toolkit")
class UnitForgetBias(initializers.Initializer):
    """Bias initializer for an LSTM: ones for the forget gate, `initializer`
    for the rest.

    The LSTM bias has shape `(4 * units,)` with the gate blocks ordered
    i, f, c, o (as in `keras.layers.LSTMCell`). Starting the forget gate at
    sigmoid(1) ~= 0.73 lets gradients flow through the cell state from the
    first update (Gers et al. 2000; Jozefowicz et al. 2015).

    Args:
        initializer: initializer for the i, c and o blocks (anything
            `keras.initializers.get` accepts). Default: `"zeros"`.

    Example:

    >>> init = UnitForgetBias()
    >>> init((8,)).numpy().tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, initializer="zeros"):
        self.initializer = initializers.get(initializer)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 1 or shape[0] % 4 != 0 or shape[0] == 0:
            raise ValueError(
                "UnitForgetBias initializes an LSTM bias of shape "
                f"(4 * units,), got shape={shape}."
            )
        units = shape[0] // 4
        # Same three calls, in the same order, as keras.layers.LSTMCell, so a
        # seeded wrapped initializer gives the built-in's values.
        return ops.concatenate(
            [
                self.initializer((units,), dtype=dtype),
                initializers.get("ones")((units,), dtype=dtype),
                self.initializer((2 * units,), dtype=dtype),
            ]
        )

    def get_config(self):
        return {"initializer": initializers.serialize(self.initializer)}

    @classmethod
    def from_config(cls, config):
        return cls(initializer=initializers.deserialize(config["initializer"]))
