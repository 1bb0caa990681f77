"""Argument checks shared by the cells and layers.

Every check raises `ValueError` naming the argument and the value received,
so a bad config fails at construction time rather than deep inside training.
"""

from __future__ import annotations

import numbers

from keras import activations


def check_positive_int(name: str, value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )
    return int(value)


def check_rate(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1), got {value!r}."
        )
    return float(value)


def get_activation(name: str, identifier):
    try:
        return activations.get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected an "
            f"activation name such as 'tanh' or a callable, got "
            f"{identifier!r}."
        ) from error


def check_sequence_shape(layer_name: str, shape) -> None:
    if len(shape) != 3:
        raise ValueError(
            f"Layer '{layer_name}' expects `sequences` of rank 3 with shape "
            f"(batch, timesteps, features), got shape {tuple(shape)}. Add a "
            "time axis (e.g. `x[:, None, :]`) or a features axis "
            "(e.g. `x[..., None]`)."
        )
