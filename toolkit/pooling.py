"""`MaskedGlobalPooling1D`: mean, max or last over a sequence's unmasked
timesteps, `(batch, timesteps, features) -> (batch, features)`."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Mean or max over the unmasked timesteps, or the last unmasked one.

    Unlike `keras.layers.GlobalAveragePooling1D`, a sequence with no unmasked
    step (an empty text) gives zeros rather than NaN.

    Args:
        mode: `"mean"`, `"max"` or `"last"` (the features at the last
            unmasked timestep: a right-padded sequence's final state).

    Call arguments:
        inputs: `(batch, timesteps, features)`.
        mask: optional boolean `(batch, timesteps)`.

    Returns:
        `(batch, features)`.
    """

    def __init__(self, mode: str = "mean", **kwargs):
        if mode not in ("mean", "max", "last"):
            raise ValueError(
                "Received an invalid value for argument `mode`, expected "
                f"'mean', 'max' or 'last', got {mode!r}."
            )
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        if self.mode == "last":
            steps = ops.sum(ops.cast(mask, "int32"), axis=1)
            index = ops.reshape(ops.maximum(steps - 1, 0), (-1, 1, 1))
            last = ops.take_along_axis(inputs, index, axis=1)[:, 0]
            return ops.where(
                ops.expand_dims(steps > 0, -1), last, ops.zeros_like(last)
            )
        if self.mode == "mean":
            weights = ops.cast(keep, inputs.dtype)
            total = ops.sum(inputs * weights, axis=1)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            return total / count
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(keep, inputs, lowest), axis=1)
        any_step = ops.any(keep, axis=1)
        return ops.where(any_step, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
