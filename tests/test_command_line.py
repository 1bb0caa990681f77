"""The five scripts from a user's terminal: errors are one `error:` line,
without TensorFlow's native start-up chatter."""

import pathlib

import pytest

from helpers import run_python

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "args", "status", "message"),
    [
        (
            "gradient_flow.py",
            ["--preset=huge"],
            2,
            "error: Unknown preset 'huge'; choose one of ['full', 'quick'].",
        ),
        (
            "predict.py",
            ["no_such_folder", "a review"],
            1,
            "error: no_such_folder is not a SavedModel folder (no "
            "saved_model.pb); pass the run's saved_model/ folder.",
        ),
    ],
    ids=["recipe", "predict"],
)
def test_an_error_is_one_line_without_tensorflow_chatter(
    script, args, status, message
):
    result = run_python(str(ROOT / "recipes" / script), *args)
    assert result.returncode == status
    assert result.stderr.splitlines() == [message]
