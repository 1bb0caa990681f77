"""The layers use keras.ops only, so they also run under JAX."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed"
)
@pytest.mark.slow
def test_layers_match_builtins_under_jax():
    """Outputs, gradients and `fit` against the built-ins, and a toolkit
    cell in `keras.layers.RNN` drawing new dropout masks on every call and
    `fit` step, adversarial training and per-layer learning rates against
    hand computations (one JAX process for all: its start-up is most of
    the time)."""
    script = pathlib.Path(__file__).parents[1] / "jax_backend_check.py"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "12 configurations match; fit ok" in result.stdout
    assert "fresh masks under jax: ok" in result.stdout
    assert "adversarial training under jax: ok" in result.stdout
    assert "layer rates under jax: ok" in result.stdout
    assert "recurrent weight dropout under jax: ok" in result.stdout
