"""Synthetic long-range memory tasks for gradient-flow experiments.

* The adding problem (Hochreiter & Schmidhuber 1997): T steps of
  (value in [0, 1), marker); exactly two markers are 1, one in each half
  of the sequence; the target is the sum of the two marked values. Always
  predicting the mean (1.0) gives a mean squared error of about 1/6.
* The copy-memory task (Arjovsky et al. 2016): 10 symbols from {1..8},
  T blanks (0), a delimiter (9), then 10 more blanks during which the
  model must reproduce the 10 symbols. A model without memory scores
  10 ln(8) / (T + 20) nats per step.
"""

from __future__ import annotations

import math

import numpy as np

from toolkit import _checks

COPY_SYMBOLS = 8
COPY_LENGTH = 10
COPY_DELIMITER = 9
COPY_VOCABULARY = COPY_DELIMITER + 1  # blank 0, symbols 1-8, delimiter 9
ADDING_MEAN_BASELINE_MSE = 1.0 / 6.0  # var(u1 + u2), u ~ U(0, 1)


def adding_problem(
    count: int, timesteps: int, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`(inputs (count, timesteps, 2) float32, targets (count, 1))`."""
    count = _checks.check_positive_int("count", count)
    timesteps = _checks.check_positive_int("timesteps", timesteps)
    if timesteps < 2:
        raise ValueError(
            f"The adding problem needs at least 2 timesteps, got {timesteps}."
        )
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (count, timesteps)).astype("float32")
    half = timesteps // 2
    first = rng.integers(0, half, count)
    second = rng.integers(half, timesteps, count)
    markers = np.zeros((count, timesteps), "float32")
    rows = np.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), targets[:, None]


def copy_memory(
    count: int, timesteps: int, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`(inputs, targets)`, each `(count, timesteps + 20)` int32 ids in
    `[0, COPY_VOCABULARY)`."""
    count = _checks.check_positive_int("count", count)
    timesteps = _checks.check_positive_int("timesteps", timesteps)
    rng = np.random.default_rng(seed)
    total = timesteps + 2 * COPY_LENGTH
    symbols = rng.integers(1, COPY_SYMBOLS + 1, (count, COPY_LENGTH))
    inputs = np.zeros((count, total), "int32")
    targets = np.zeros((count, total), "int32")
    inputs[:, :COPY_LENGTH] = symbols
    inputs[:, COPY_LENGTH + timesteps - 1] = COPY_DELIMITER
    targets[:, -COPY_LENGTH:] = symbols
    return inputs, targets


def copy_memory_baseline(timesteps: int) -> float:
    """Cross-entropy (nats per step) of the best memoryless model."""
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (timesteps + 2 * COPY_LENGTH)
