"""Shared test setup: quiet TensorFlow, a fresh Keras session per test."""

import gc
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # Everything under end_to_end/ runs a recipe, a notebook or a command
    # line in full: `pytest -m "not slow"` leaves it out.
    for item in items:
        if "end_to_end" in item.path.parts:
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session):
    # Everything imported so far (TensorFlow, Keras, the test modules) lives
    # for the whole session: keep it out of the collector's full passes.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _fresh_session():
    # All of Keras's global state is reset (names, uids, the TF graph) but
    # without a forced full `gc.collect()` per test, which cost 0.2-1 s a
    # test, growing with what earlier tests left; Python's own collector
    # still frees unreachable objects.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def run_side_by_side():
    """`run_side_by_side({name: args})` runs `python *args` for each entry,
    all started at once, and returns `{name: CompletedProcess}` (output
    captured as text), as `helpers.run_python` does for one. Such a process
    spends most of its time importing TensorFlow on one core, so two or
    more of them take about half the time one after the other would."""

    def run(commands, timeout=300):
        processes = {
            name: subprocess.Popen(
                [sys.executable, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in commands.items()
        }
        results = {}
        try:
            for name, process in processes.items():
                stdout, stderr = process.communicate(timeout=timeout)
                results[name] = subprocess.CompletedProcess(
                    process.args, process.returncode, stdout, stderr
                )
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        return results

    return run
