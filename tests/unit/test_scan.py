"""`toolkit._scan.scan`, the fused recurrence's loop, against numpy.

The fused layers' numerics are checked end to end in test_layers.py; these
tests pin the loop's own contract: timestep order in both directions, the
final states, unstacked outputs read by a later scan, and an unknown number
of timesteps inside a traced function.
"""

import numpy as np
import pytest
import tensorflow as tf

from toolkit._scan import scan


def running_sums(x, h0, reverse):
    """numpy: h_t = h_{t-1} + x_t in the given direction; outputs are h_t
    and 2 x_t, indexed by t."""
    order = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    h = h0.copy()
    sums = np.zeros_like(x)
    for t in order:
        h = h + x[t]
        sums[t] = h
    return sums, 2 * x, h


def step(inputs, states):
    (x_t,) = inputs
    (h,) = states
    h = h + x_t
    return [h, 2.0 * x_t], [h]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_outputs_are_indexed_by_timestep_in_either_direction(reverse, rng):
    x = rng.standard_normal((6, 3, 2)).astype("float32")
    h0 = rng.standard_normal((3, 2)).astype("float32")
    (sums, doubled), (final,) = scan(
        step, [tf.constant(x)], [tf.constant(h0)], [2, 2], reverse=reverse
    )
    expected_sums, expected_doubled, expected_final = running_sums(
        x, h0, reverse
    )
    np.testing.assert_allclose(sums, expected_sums, rtol=1e-6)
    np.testing.assert_allclose(doubled, expected_doubled, rtol=1e-6)
    np.testing.assert_allclose(final, expected_final, rtol=1e-6)
    assert tuple(sums.shape) == (6, 3, 2)


def test_unstacked_outputs_are_read_by_a_later_scan(rng):
    x = rng.standard_normal((5, 2, 3)).astype("float32")
    h0 = np.zeros((2, 3), "float32")
    (sums, doubled), _ = scan(
        step,
        [tf.constant(x)],
        [tf.constant(h0)],
        [3, 3],
        stacked=[True, False],
    )
    assert isinstance(doubled, tf.TensorArray)

    def read_back(inputs, states):
        (doubled_t,) = inputs
        return [doubled_t + 1.0], states

    # Only unstacked sequences: the length must be given.
    (read,), _ = scan(
        read_back, [doubled], [tf.constant(h0)], [3], reverse=True, length=5
    )
    np.testing.assert_allclose(read, 2 * x + 1, rtol=1e-6)
    np.testing.assert_allclose(sums, np.cumsum(x, axis=0), rtol=1e-5)


def test_unknown_number_of_timesteps_in_a_traced_function(rng):
    @tf.function(input_signature=[tf.TensorSpec((None, 2, 3), tf.float32)])
    def run(x):
        (sums, _), (final,) = scan(
            step, [x], [tf.zeros((2, 3))], [3, 3], reverse=True
        )
        return sums, final

    for timesteps in (1, 4, 7):
        x = rng.standard_normal((timesteps, 2, 3)).astype("float32")
        sums, final = run(tf.constant(x))
        expected_sums, _, expected_final = running_sums(
            x, np.zeros((2, 3), "float32"), reverse=True
        )
        np.testing.assert_allclose(sums, expected_sums, rtol=1e-5)
        np.testing.assert_allclose(final, expected_final, rtol=1e-5)
