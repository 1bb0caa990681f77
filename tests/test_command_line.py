"""The five scripts from a user's terminal, on one convention
(`recipes/_cli.py`): `--help` starts with a one-line description and
documents every option; errors are one `error:` line (status 2 for a bad
command line, 1 for a failed run), without TensorFlow's native start-up
chatter."""

import importlib
import pathlib

import pytest

from helpers import run_python

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ["imdb_sentiment", "char_lm", "gradient_flow", "predict", "sample"]


def run_main(script: str, argv, capsys):
    """`recipes.<script>.main(argv)` in this process: (status, stdout,
    stderr). argparse's exits become a status too."""
    module = importlib.import_module(f"recipes.{script}")
    try:
        status = module.main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_starts_with_a_one_line_description(script, capsys):
    status, out, err = run_main(script, ["--help"], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    if lines[0].startswith("usage:"):  # argparse: usage, blank, description
        lines = lines[lines.index("") + 1 :]
    description = lines[0]
    assert description.endswith(".") and lines[1] == "", lines[:2]
    assert len(description) <= 79
    assert "--help" not in description and description[0].isupper()


@pytest.mark.parametrize("script", ["predict", "sample"])
def test_every_argparse_option_has_a_description(script):
    parser = importlib.import_module(f"recipes.{script}").make_parser()
    undocumented = [
        action.dest
        for action in parser._actions
        if action.dest != "help" and len(action.help or "") < 10
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("imdb_sentiment", ["--epochs=x"], "Option `--epochs` expects int"),
        ("char_lm", ["--no-such-option=1"], "no-such-option"),
        ("gradient_flow", ["--preset=huge"], "Unknown preset 'huge'"),
        (
            "predict",
            ["model", "--no-such"],
            "unrecognized arguments: --no-such",
        ),
        ("sample", ["--run-dir=r", "--length=x"], "argument --length"),
        ("sample", ["--prime=a"], "--run-dir --saved-model is required"),
    ],
)
def test_a_bad_command_line_is_one_error_line_and_status_2(
    script, argv, message, capsys
):
    status, out, err = run_main(script, argv, capsys)
    assert status == 2
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: ") and message in line
    assert line.endswith("Run with --help to see the options.")


@pytest.mark.parametrize(
    ("script", "args", "status", "message"),
    [
        (
            "gradient_flow.py",
            ["--preset=huge"],
            2,
            "error: Unknown preset 'huge'; choose one of ['full', 'quick']. "
            "Run with --help to see the options.",
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
