"""The synthetic long-range tasks."""

import math

import numpy as np
import pytest

from toolkit.data import synthetic


def test_adding_problem_targets_are_the_two_marked_values():
    x, y = synthetic.adding_problem(500, 30, seed=0)
    assert x.shape == (500, 30, 2) and y.shape == (500, 1)
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(1), 2)
    assert np.all(markers[:, :15].sum(1) == 1)  # one in each half
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(1), 1e-6)
    # Predicting the mean scores about 1/6.
    mse = np.mean((y - 1.0) ** 2)
    assert abs(mse - synthetic.ADDING_MEAN_BASELINE_MSE) < 0.03
    again, _ = synthetic.adding_problem(500, 30, seed=0)
    np.testing.assert_array_equal(x, again)


def test_copy_memory_layout_and_baseline():
    x, y = synthetic.copy_memory(4, 7, seed=1)
    assert x.shape == y.shape == (4, 27)
    np.testing.assert_array_equal(y[:, -10:], x[:, :10])
    assert np.all((x[:, :10] >= 1) & (x[:, :10] <= 8))
    assert np.all(x[:, 16] == 9) and np.all(np.delete(x, 16, 1)[:, 10:] == 0)
    assert np.all(y[:, :-10] == 0)
    assert synthetic.copy_memory_baseline(100) == pytest.approx(
        10 * math.log(8) / 120
    )


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="at least 2 timesteps"):
        synthetic.adding_problem(3, 1)
    with pytest.raises(ValueError, match="count"):
        synthetic.copy_memory(0, 5)
