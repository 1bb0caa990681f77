"""The six scripts from a user's terminal, on one convention
(`recipes/_cli.py`): `--help` starts with a one-line description and
documents every option; errors are one `error:` line (status 2 for a bad
command line, 1 for a failed run), without TensorFlow's native start-up
chatter."""

import importlib
import pathlib

import pytest

from helpers import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = [
    "imdb_sentiment",
    "char_lm",
    "gradient_flow",
    "predict",
    "sample",
    "export_litert",
]


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


@pytest.mark.parametrize("script", ["predict", "sample", "export_litert"])
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
        ("sample", ["r", "--length=x"], "argument --length"),
        ("sample", ["--prime=a"], "give one MODEL"),
        ("export_litert", ["r", "--quantize=int4"], "argument --quantize"),
        ("export_litert", ["r", "--batch-size=0"], "--batch-size must be"),
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
            "error: no_such_folder is neither a run folder with a "
            "saved_model/ export nor a SavedModel folder (no saved_model.pb); "
            "pass the run folder or its saved_model/ folder.",
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


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A classifier export, a character LM export, a folder whose
    saved_model.pb is garbage, and a char_lm run folder whose checkpoint
    is garbage."""
    from export_fixtures import (
        VOCABULARY,
        export_small_char_lm,
        export_small_classifier,
    )
    from recipes.configs.char_lm import CharLmConfig
    from toolkit.training import config as config_lib

    folder = tmp_path_factory.mktemp("exports")
    garbage = folder / "garbage"
    garbage.mkdir()
    (garbage / "saved_model.pb").write_bytes(bytes(range(256)) * 4)
    run_dir = folder / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text(config_lib.to_json(CharLmConfig()))
    (run_dir / "vocabulary.json").write_text(VOCABULARY.to_json())
    (run_dir / "checkpoints" / "best.weights.h5").write_bytes(b"\x89HDF\0" * 9)
    return {
        "classifier": str(export_small_classifier(folder / "classifier")),
        "char_lm": str(export_small_char_lm(folder / "char_lm")),
        "garbage": str(garbage),
        "run_dir": str(run_dir),
        "folder": str(folder),
    }


def one_error_line(status, out, err, expected_status=1) -> str:
    assert (status, out) == (expected_status, "")
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{garbage}", "text"], "garbage cannot be loaded (Cannot parse file"),
        (["{char_lm}", "text"], "has no `serve` signature"),
        (["{classifier}", "--file", "{folder}"], "is a folder; give a text"),
        (["{classifier}", "--file", "{folder}/none.txt"], "does not exist"),
        (["{classifier}", "--file", "{latin1}"], "not valid UTF-8 (byte 6)"),
        (["{classifier}", "ok", "caf\udce9"], "A text argument is not valid"),
        (["{classifier}", "x" * 501], "(ServingLimits.max_text_chars)"),
        (["{classifier}", "-"], "Standard input is not valid UTF-8 (byte 5)"),
    ],
    ids=[
        "garbage",
        "other-kind",
        "file-is-folder",
        "no-file",
        "latin1-file",
        "bad-argument",
        "too-long",
        "latin1-stdin",
    ],
)
def test_predict_errors_are_one_line(
    exports, argv, message, tmp_path, capsys, monkeypatch
):
    import io
    import sys

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok\ncafé\n".encode("latin-1"))
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b"fine\n\xe9t\xe9\n"))
    )
    argv = [arg.format(latin1=latin1, **exports) for arg in argv]
    line = one_error_line(*run_main("predict", argv, capsys))
    assert message in line


def test_predict_scores_in_batches_within_the_export_limit(exports, capsys):
    texts = ["great film", "dull"] * 13  # 26 texts; the export takes 12
    status, out, err = run_main(
        "predict", [exports["classifier"], *texts], capsys
    )
    assert (status, err) == (0, "")
    assert len(out.splitlines()) == 26


def test_predict_without_texts_is_a_command_line_error(exports, capsys):
    line = one_error_line(
        *run_main("predict", [exports["classifier"]], capsys), 2
    )
    assert "give texts, --file FILE, or - for stdin" in line


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["{garbage}"], 1, "cannot be loaded"),
        (["{classifier}"], 1, "use recipes/predict.py"),
        (["{run_dir}"], 1, "best.weights.h5 cannot be loaded"),
        (["{char_lm}", "--length=51"], 1, "limit of 50"),
        (["{char_lm}", "--prime=a\udcff"], 1, "--prime is not"),
        (
            ["{char_lm}", "--length=5", "--prime=" + "a" * 21],
            1,
            "limit of 20",
        ),
        (
            ["{char_lm}", "--length=2147483648"],
            2,
            "must be from 0 to 2,147,483,647, got 2,147,483,648",
        ),
        (["{char_lm}", "--temperature=nan"], 2, "finite"),
        (["{char_lm}", "--top-k=3"], 1, "has no top-k"),
    ],
    ids=[
        "garbage",
        "other-kind",
        "garbage-checkpoint",
        "over-length-limit",
        "bad-prime",
        "over-prime-limit",
        "length-overflow",
        "nan-temperature",
        "top-k-export",
    ],
)
def test_sample_errors_are_one_line(exports, argv, status, message, capsys):
    argv = [arg.format(**exports) for arg in argv]
    line = one_error_line(*run_main("sample", argv, capsys), status)
    assert message in line


def test_both_serving_scripts_warn_to_serve_only_trusted_exports(capsys):
    for script in ("predict", "sample"):
        _, out, _ = run_main(script, ["--help"], capsys)
        assert "Serve only exports you trust" in " ".join(out.split())


def test_export_litert_writes_a_fused_model_of_a_run(tmp_path, capsys):
    """A run folder's classifier becomes a .tflite beside it, with one
    fused LSTM op per layer and direction; a folder that is not a run is
    one error line."""
    import json

    from export_fixtures import small_classifier
    from toolkit import data

    model, vectorizer = small_classifier()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    data.write_vocabulary(
        run_dir / "vocabulary.txt", vectorizer.get_vocabulary()
    )
    (run_dir / "config.json").write_text(json.dumps({"max_length": 16}))
    status, out, err = run_main(
        "export_litert", [str(run_dir), "--check-reviews=0"], capsys
    )
    assert status == 0, err
    assert (run_dir / "model.tflite").is_file()
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM x4" in out
    assert "WHILE" not in out
    status, out, err = run_main(
        "export_litert", [str(tmp_path / "nothing")], capsys
    )
    assert status == 1
    (line,) = err.splitlines()
    assert line.startswith("error: ") and "is not a folder" in line
    (tmp_path / "empty").mkdir()
    status, out, err = run_main(
        "export_litert", [str(tmp_path / "empty")], capsys
    )
    assert status == 1 and "has no model.keras" in err


def _preset_cases():
    from recipes.configs import char_lm, gradient_flow, imdb_sentiment

    modules = {
        "imdb_sentiment": imdb_sentiment,
        "char_lm": char_lm,
        "gradient_flow": gradient_flow,
    }
    return [
        (script, preset, module.PRESETS[preset])
        for script, module in modules.items()
        for preset in module.PRESETS
    ]


@pytest.mark.parametrize(
    ("script", "preset", "config"),
    _preset_cases(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_preset_help_shows_that_presets_values(script, preset, config, capsys):
    from toolkit.training import config as config_lib

    status, out, err = run_main(
        script, [f"--preset={preset}", "--help"], capsys
    )
    assert (status, err) == (0, "")
    assert f"values of --preset={preset}" in out
    shown = {}
    for line in out.splitlines():
        if line.startswith("  --") and ", default " in line:
            key = line.split()[0][2:].replace("-", "_")
            shown[key] = line.rsplit(", default ", 1)[1].removesuffix(")")
    values = config_lib.flat_values(config)
    assert set(shown) == set(values)
    for key, value in values.items():
        assert shown[key] == repr(value), key


def test_help_for_an_unknown_preset_is_a_command_line_error(capsys):
    status, out, err = run_main("char_lm", ["--preset=nope", "--help"], capsys)
    assert status == 2 and out == ""
    assert err.startswith("error: Unknown preset 'nope'")


@pytest.mark.parametrize("script", ["predict", "sample", "export_litert"])
def test_argparse_help_has_the_training_recipes_layout(script, capsys):
    """Description first (no usage block), then each option as
    `  --name  (type, default X)` with its sentence below, as the training
    recipes print theirs."""
    import argparse

    status, out, err = run_main(script, ["--help"], capsys)
    assert (status, err) == (0, "")
    assert not out.startswith("usage:") and "\nOptions:\n" in out
    parser = importlib.import_module(f"recipes.{script}").make_parser()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        name = max(action.option_strings, key=len)
        if name == "--help":
            continue
        line = next(x for x in out.splitlines() if x.startswith(f"  {name}  ("))
        if action.type is not None or action.nargs == 0:
            assert "(str" not in line, line  # a real type is named
        if action.default is not None and action.default is not False:
            assert f"default {action.default!r})" in line, line
