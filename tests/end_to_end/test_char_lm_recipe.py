"""The character-LM recipe end to end on generated text8-format and
Shakespeare-format corpora: run folder, bits per character, samples, the
export, the sampling CLI, resume and errors."""

import json
import math
import pathlib
import random

import numpy as np
import pytest

from data_fixtures import WORDS, play_text, write_imdb_archive
from recipes import char_lm, sample
from recipes.configs.char_lm import CharLmConfig
from toolkit.data import TEXT8_VOCABULARY, imdb_unsup_text8, normalize_text8
from toolkit.training import config as config_lib
from toolkit.training import resumable

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    (root / "tinyshakespeare").mkdir()
    (root / "tinyshakespeare" / "input.txt").write_text(play_text())
    rng = random.Random(1)
    text8 = " ".join(rng.choice(WORDS) for _ in range(5000))
    (root / "text8").write_text(text8, encoding="ascii")
    (root / "book.txt").write_text("Chapter 1. " + play_text(300, seed=2))
    return root


def smoke_args(run_dir, *extra):
    return ["--preset=smoke", f"--run-dir={run_dir}", "--verbose=0", *extra]


@pytest.fixture(scope="module")
def text8_run(corpora, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "text8"
    args = smoke_args(
        run_dir,
        "--corpus=text8",
        f"--data-dir={corpora}",
        "--strict-data=false",
    )
    assert char_lm.main(args) == 0
    return run_dir


def test_text8_format_smoke_run_writes_the_run_folder(text8_run, corpora):
    for name in (
        "config.json",
        "vocabulary.json",
        "history.csv",
        "metrics.json",
        "learning_curves.png",
        "samples/epoch_001.txt",
        "samples/epoch_002.txt",
        "checkpoints/best.weights.h5",
        "checkpoints/epoch_002.weights.h5",
        "saved_model/saved_model.pb",
        "model.keras",
    ):
        assert (text8_run / name).exists(), name
    metrics = json.loads((text8_run / "metrics.json").read_text())
    sizes = metrics["corpus"]["sizes"]
    n = len((corpora / "text8").read_text())
    assert sizes == {
        "train": int(0.9 * n),
        "validation": int(0.95 * n) - int(0.9 * n),
        "test": n - int(0.95 * n),
    }
    for split in ("validation", "test"):
        result = metrics[split]
        # Whole splits: every character but the first is scored.
        assert result["characters"] == sizes[split] - 1
        assert result["bits"] == pytest.approx(result["nats"] / math.log(2))
    # 20 steps already beat the uniform guess over 27 symbols.
    assert metrics["validation"]["nats"] < math.log(27) - 0.2
    history = resumable.read_history(text8_run)
    assert [int(row["epoch"]) for row in history] == [0, 1]
    for row in history:
        assert row["val_bpc"] == pytest.approx(row["val_loss"] / math.log(2))
        assert row["train_seconds"] > 0
    best = min(row["val_loss"] for row in history)
    assert metrics["validation"]["nats"] == pytest.approx(best, rel=1e-5)
    samples = (text8_run / "samples" / "epoch_002.txt").read_text()
    assert samples.count("--- temperature") == 3


def test_rerunning_a_finished_run_trains_nothing_more(text8_run, corpora):
    before = (text8_run / "history.csv").read_text()
    args = smoke_args(
        text8_run,
        "--corpus=text8",
        f"--data-dir={corpora}",
        "--strict-data=false",
    )
    assert char_lm.main(args) == 0
    assert (text8_run / "history.csv").read_text() == before


def test_other_settings_in_the_same_run_folder_are_refused(
    text8_run, corpora, capsys
):
    args = smoke_args(
        text8_run, "--corpus=text8", f"--data-dir={corpora}", "--units=8"
    )
    assert char_lm.main(args) == 2
    assert "units: 16 -> 8" in capsys.readouterr().err


def test_shakespeare_format_with_windows_and_a_text_file(
    corpora, tmp_path, capsys
):
    # What is checked is the corpus and the metrics: one epoch and no
    # export (text8_run covers both) for each run.
    quick = ["--epochs=1", "--export=false"]
    run_dir = tmp_path / "shakespeare"
    args = smoke_args(
        run_dir,
        f"--data-dir={corpora}",
        "--batching=windows",
        "--max-train-seconds=600",
        "--verbose=2",
        *quick,
    )
    assert char_lm.main(args) == 0
    # A time cap is said at the start, with how to lift it.
    assert (
        "Stops after 600 s of training (the preset's time cap); "
        "--max-train-seconds=none to lift it." in capsys.readouterr().out
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "test" not in metrics  # Tiny Shakespeare has train/validation
    assert metrics["corpus"]["dataset"] == "tinyshakespeare"
    assert metrics["validation"]["characters"] == (
        metrics["corpus"]["sizes"]["validation"] - 1
    )
    book = tmp_path / "book"
    args = smoke_args(
        book, f"--corpus={corpora / 'book.txt'}", "--text8-format", *quick
    )
    assert char_lm.main(args) == 0
    vocabulary = json.loads((book / "vocabulary.json").read_text())
    assert "".join(vocabulary["chars"]) == " abcdefghijklmnopqrstuvwxyz"


def test_sample_cli_from_the_run_folder_and_from_the_export(
    text8_run, run_side_by_side
):
    script = str(ROOT / "recipes" / "sample.py")
    sources = (str(text8_run), str(text8_run / "saved_model"))
    results = run_side_by_side(
        {
            **{
                source: [
                    script,
                    source,
                    "--prime=the king",
                    "--length=50",
                    "--seed=3",
                ]
                for source in sources
            },
            "bad": [script, str(text8_run / "saved_model"), "--prime=Kings!"],
        }
    )
    for source in sources:
        result = results[source]
        assert result.returncode == 0, result.stderr[-2000:]
        text = result.stdout.rstrip("\n")
        assert text.startswith("the king") and len(text) == 58
        assert set(text) <= set(TEXT8_VOCABULARY.chars)
    bad = results["bad"]
    assert bad.returncode == 1
    assert "outside the model's vocabulary" in bad.stderr
    assert "K" in bad.stderr and "!" in bad.stderr


def test_sample_in_process_matches_the_library(text8_run, capsys):
    from toolkit.data import CharVocabulary
    from toolkit.text.sampling import generate

    assert (
        sample.main(
            [
                str(text8_run),
                "--prime=lord",
                "--length=30",
                "--temperature=0",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.rstrip("\n")
    config = config_lib.from_json(
        CharLmConfig, (text8_run / "config.json").read_text()
    )
    model = char_lm.build_model(config, 27, training=False)
    model.load_weights(text8_run / "checkpoints" / "best.weights.h5")
    vocabulary = CharVocabulary.from_json(
        (text8_run / "vocabulary.json").read_text()
    )
    assert printed == "lord" + generate(
        model, vocabulary, "lord", 30, temperature=0.0
    )


def test_command_line_help_errors_and_a_missing_corpus(
    tmp_path, run_side_by_side
):
    script = str(ROOT / "recipes" / "char_lm.py")
    results = run_side_by_side(
        {
            "help": [script, "--help"],
            "typo": [script, "--preset=smoke", "--lerning-rate=1"],
            "missing": [
                script,
                "--preset=smoke",
                f"--corpus={tmp_path / 'nothing.txt'}",
                f"--run-dir={tmp_path / 'run'}",
            ],
        }
    )
    result = results["help"]
    assert result.returncode == 0
    assert "text8-cpu" in result.stdout and "--sequence-length" in result.stdout
    result = results["typo"]
    assert result.returncode == 2
    assert "--learning-rate" in result.stderr
    result = results["missing"]
    assert result.returncode == 1
    assert "No text file at" in result.stderr


def test_imdb_unlabelled_reviews_in_text8_format(tmp_path):
    archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
    corpus = imdb_unsup_text8(path=archive, strict=False)
    text = TEXT8_VOCABULARY.decode(
        np.concatenate(
            [corpus.splits[k] for k in ("train", "validation", "test")]
        )
    )
    assert text == normalize_text8(
        "Some unlabelled review. Another one, with   a tag."
    )
    assert corpus.vocabulary == TEXT8_VOCABULARY
    assert "not text8" in corpus.metadata["note"]
    assert list(corpus.metadata["fractions"].values()) == [0.9, 0.05, 0.05]


@pytest.mark.parametrize(
    "source",
    ["run folder", "run folder --export", "saved_model/", "--run-dir (old)"],
)
def test_sample_defaults_work_on_a_text8_format_run(text8_run, source, capsys):
    """text8's vocabulary has no newline: the default prime is a space,
    from the run folder's checkpoint, its export and the export folder;
    the option name of an earlier version still works."""
    target = {
        "run folder": [str(text8_run)],
        "run folder --export": [str(text8_run), "--export"],
        "saved_model/": [str(text8_run / "saved_model")],
        "--run-dir (old)": [f"--run-dir={text8_run}"],
    }[source]
    assert sample.main([*target, "--length=20", "--seed=1"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert printed.startswith(" ") and len(printed) == 21
    assert set(printed) <= set(TEXT8_VOCABULARY.chars)
