"""Argument checks shared by the cells and layers.

Every check raises `ArgumentError` (a `ValueError`) naming the argument and
the value received, so a bad config fails at construction time rather than
deep inside training; a recipe reads its `argument` and `expectation` to
name the command-line option instead.
"""

from __future__ import annotations

import numbers

from keras import activations


class ArgumentError(ValueError):
    """An argument's value is invalid: `argument` (its name) was expected
    to be `expectation` and is `value`."""

    def __init__(self, argument: str, expectation: str, value):
        super().__init__(
            f"Received an invalid value for argument `{argument}`, expected "
            f"{expectation}, got {value!r}."
        )
        self.argument = argument
        self.expectation = expectation
        self.value = value


def check_positive_int(name: str, value) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value <= 0
    ):
        raise ArgumentError(name, "a positive integer", value)
    return int(value)


def check_rate(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ArgumentError(name, "a float in [0, 1)", value)
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


def check_sequence_shape(layer_name: str, shape, dtype=None) -> None:
    if len(shape) == 3:
        return
    if len(shape) == 2 and _is_integer(dtype):
        raise ValueError(
            f"Layer '{layer_name}' expects `sequences` of rank 3 with shape "
            f"(batch, timesteps, features), got integer inputs of shape "
            f"{tuple(shape)}. These look like token ids: put a "
            "`keras.layers.Embedding(vocab_size, dim)` before this layer to "
            "turn them into vectors (or one-hot encode them)."
        )
    raise ValueError(
        f"Layer '{layer_name}' expects `sequences` of rank 3 with shape "
        f"(batch, timesteps, features), got shape {tuple(shape)}. Add a "
        "time axis (e.g. `x[:, None, :]`) or a features axis "
        "(e.g. `x[..., None]`); token ids need a `keras.layers.Embedding` "
        "first."
    )


def _is_integer(dtype) -> bool:
    if dtype is None:
        return False
    name = getattr(dtype, "name", None) or str(dtype)
    return "int" in name


def check_initial_state(layer_name: str, initial_state, state_size, shape):
    """`initial_state` must hold one `(batch, size)` tensor per state."""
    sizes = (
        list(state_size)
        if isinstance(state_size, (list, tuple))
        else [state_size]
    )
    batch = shape[0]
    names = ["h", "c"][: len(sizes)] if len(sizes) <= 2 else None
    expected = ", ".join(
        f"{name}: ({'batch' if batch is None else batch}, {size})"
        for name, size in zip(
            names or [f"state_{k}" for k in range(len(sizes))],
            sizes,
            strict=True,
        )
    )
    states = (
        list(initial_state)
        if isinstance(initial_state, (list, tuple))
        else [initial_state]
    )
    received = [tuple(getattr(s, "shape", ())) for s in states]
    problem = None
    if len(states) != len(sizes):
        problem = f"got {len(states)} tensor(s)"
    else:
        for state, size in zip(received, sizes, strict=True):
            if (
                len(state) != 2
                or state[-1] not in (None, size)
                or (batch is not None and state[0] not in (None, batch))
            ):
                problem = "got shapes"
                break
    if problem is not None:
        raise ValueError(
            f"Layer '{layer_name}' expects `initial_state` as a list of "
            f"{len(sizes)} tensor(s) [{expected}], {problem} "
            f"{[list(s) for s in received]}."
        )
