"""The IMDB recipe end to end on a generated aclImdb archive: run folder,
serving without toolkit, prediction CLI, resume, and config errors."""

import json
import pathlib
import shutil

import keras
import numpy as np
import pytest

from data_fixtures import synthetic_imdb, write_imdb_archive
from recipes import imdb_sentiment
from toolkit.training import resumable

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imdb")
    return write_imdb_archive(folder / "aclImdb_v1.tar.gz", synthetic_imdb())


def smoke_args(archive, run_dir, *extra, encoders=None):
    return [
        "--preset=smoke",
        f"--imdb-path={archive}",
        "--strict-data=false",
        "--validation-split=0.25",
        "--lm.heldout-reviews=2",  # the fixture has 6 unlabelled reviews
        f"--encoder-cache={encoders or run_dir.parent / 'encoders'}",
        f"--run-dir={run_dir}",
        "--verbose=0",
        *extra,
    ]


# Four epochs of small batches: enough to learn the fixture's words (the
# smoke preset's one epoch is 3 steps here, too few to learn anything).
LEARNS = ("--epochs=4", "--batch-size=8", "--learning-rate=1e-2")


@pytest.fixture(scope="module")
def smoke_run(archive, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "smoke"
    assert imdb_sentiment.main(smoke_args(archive, run_dir, *LEARNS)) == 0
    return run_dir


SERVE_WITHOUT_TOOLKIT = """
import sys
import numpy as np, tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
texts = ["", "Great film! 😀🎬", "x" * 50_000, "awful dull waste",
         "Ünïcödé ½ 中文"]
scores = served.serve(tf.constant(texts)).numpy()
assert scores.shape == (5,), scores.shape
batch = served.serve(tf.constant(["a great film"] * 1000)).numpy()
assert batch.shape == (1000,)
for values in (scores, batch):
    assert np.all(np.isfinite(values))
    assert np.all((values >= 0) & (values <= 1))
assert "toolkit" not in sys.modules
# The learned direction: praise above 0.5, a pan below it.
assert scores[1] > 0.5 > scores[3], scores
print("ok", scores.tolist())
"""


@pytest.fixture(scope="module")
def processes(smoke_run, tmp_path_factory, run_side_by_side):
    """The fresh processes that use the smoke run's outputs (a user loading
    the .keras file, a server, saved_model_cli, the prediction CLI), run
    side by side once; each test below checks its own."""
    folder = tmp_path_factory.mktemp("predict")
    reviews = folder / "reviews.txt"
    reviews.write_text("a great superb film\nawful boring waste\n")
    predict = str(ROOT / "recipes" / "predict.py")
    saved_model = str(smoke_run / "saved_model")
    return run_side_by_side(
        {
            "load": [
                "-c",
                "import keras, toolkit\n"
                f"model = keras.saving.load_model("
                f"{str(smoke_run / 'model.keras')!r})"
                "\nprint(model.output_shape)",
            ],
            "serve": ["-c", SERVE_WITHOUT_TOOLKIT, saved_model],
            "cli": [
                "-m",
                "tensorflow.python.tools.saved_model_cli",
                "show",
                "--dir",
                saved_model,
                "--all",
            ],
            # The run folder itself: predict.py finds its saved_model/.
            "predict": [
                predict,
                str(smoke_run),
                "loved it",
                "--file",
                str(reviews),
                "--json",
            ],
            "predict_export": [predict, saved_model, "loved it", "--json"],
            # A folder that is not a SavedModel (it holds reviews.txt).
            "missing": [predict, str(folder), "text"],
        }
    )


def test_smoke_run_writes_the_whole_run_folder(smoke_run, processes):
    for name in (
        "config.json",
        "vocabulary.txt",
        "history.csv",
        "metrics.json",
        "train_state.json",
        "training_curves.png",
        "confusion_matrix.png",
        "lm_curves.png",
        "model.keras",
        "checkpoints/best.weights.h5",
        "checkpoints/epoch_001.seeds.npy",
        "checkpoints/epoch_001.weights.h5",
        "saved_model/saved_model.pb",
    ):
        assert (smoke_run / name).exists(), name
    assert any((smoke_run / "logs").rglob("events.out.tfevents.*"))
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    for key in ("accuracy", "roc_auc", "precision", "recall", "f1"):
        assert 0.0 <= metrics["test"][key] <= 1.0
    # The fixture's labels follow from its words: a model that learned
    # nothing (one class for every review, or noise) is far below these.
    assert metrics["test"]["roc_auc"] >= 0.9, metrics["test"]
    assert metrics["test"]["accuracy"] >= 0.75, metrics["test"]
    (true_negatives, _), (_, true_positives) = metrics["test"][
        "confusion_matrix"
    ]
    assert true_negatives > 0 and true_positives > 0
    assert metrics["test"]["examples"] == 48
    assert np.sum(metrics["test"]["confusion_matrix"]) == 48
    assert metrics["baseline"]["examples"] == 48
    assert metrics["nbsvm"]["examples"] == 48
    sizes = metrics["data"]["sizes"]
    assert sizes["train"] + sizes["validation"] == 96
    assert 24 <= sizes["validation"] < 27  # whole movies of 2-3 reviews
    assert metrics["data"]["movies"]["in_both"] == 0
    encoder = metrics["encoder"]
    assert pathlib.Path(encoder["path"], "encoder.json").exists()
    assert np.isfinite(encoder["heldout_perplexity"])
    assert len(encoder["history"]) == encoder["epochs_run"] == 1
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["units"] == 16 and config["cell"] == "lstm"
    assert config["pretrain"] is True
    # `import toolkit` alone is enough to load the .keras file.
    result = processes["load"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "(None, 1)"


def test_saved_model_serves_raw_text_without_toolkit(processes):
    result = processes["serve"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_saved_model_cli_lists_the_serving_signature(processes):
    result = processes["cli"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signature_def['serve']" in result.stdout
    assert "DT_STRING" in result.stdout and "DT_FLOAT" in result.stdout


def test_predict_cli_scores_texts_and_files(processes):
    result = processes["predict"]
    assert result.returncode == 0, result.stderr[-2000:]
    scored = json.loads(result.stdout)
    assert [s["text"] for s in scored] == [
        "loved it",
        "a great superb film",
        "awful boring waste",
    ]
    assert all(0.0 <= s["probability"] <= 1.0 for s in scored)
    loved, great, awful = (s["probability"] for s in scored)
    assert min(loved, great) > 0.5 > awful, scored
    # The export folder gives the run folder's score for the same text.
    export_result = processes["predict_export"]
    assert export_result.returncode == 0, export_result.stderr[-2000:]
    (same,) = json.loads(export_result.stdout)
    assert same == scored[0]
    missing = processes["missing"]
    assert missing.returncode != 0
    assert "neither a run folder" in missing.stderr


class Interrupt(keras.callbacks.Callback):
    """Stands in for a killed process: raises in the middle of an epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("simulated kill")


def test_resume_after_interruption_matches_an_uninterrupted_run(
    archive, smoke_run, tmp_path, monkeypatch
):
    extra = [
        "--epochs=3",
        "--baseline=false",
        "--export=false",
        "--patience=5",
        # The fine-tuning options whose state lives outside the weights:
        # the adversarial trainer, per-layer rates and the unfreezing stage.
        "--adversarial-epsilon=2",
        "--discriminative-factor=2.6",
        "--gradual-unfreezing=true",
    ]
    # The classifier's training is what is interrupted; all three runs
    # start from the encoder that the smoke run pretrained (same LM
    # settings, so the same cached encoder) instead of pretraining it again.
    encoders = smoke_run.parent / "encoders"
    straight = tmp_path / "straight"
    assert (
        imdb_sentiment.main(
            smoke_args(archive, straight, *extra, encoders=encoders)
        )
        == 0
    )

    resumed = tmp_path / "resumed"
    original = resumable.train_with_resume

    def interrupted(*args, callbacks=(), **kwargs):
        callbacks = [*callbacks, Interrupt(epoch=1, batch=1)]
        return original(*args, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(resumable, "train_with_resume", interrupted)
    with pytest.raises(KeyboardInterrupt):
        imdb_sentiment.main(
            smoke_args(archive, resumed, *extra, encoders=encoders)
        )
    state = json.loads((resumed / "train_state.json").read_text())
    assert state["epochs_done"] == 1
    monkeypatch.setattr(resumable, "train_with_resume", original)
    assert (
        imdb_sentiment.main(
            smoke_args(archive, resumed, *extra, encoders=encoders)
        )
        == 0
    )

    first = json.loads((straight / "metrics.json").read_text())
    second = json.loads((resumed / "metrics.json").read_text())
    assert second["epochs_run"] == first["epochs_run"] == 3
    np.testing.assert_allclose(
        second["test"]["roc_auc"], first["test"]["roc_auc"], atol=1e-6
    )
    assert (
        second["test"]["confusion_matrix"]
        == (first["test"]["confusion_matrix"])
    )
    histories = [resumable.read_history(run) for run in (straight, resumed)]
    assert len(histories[1]) == 3
    for a, b in zip(*histories, strict=True):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
        np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-5)


def test_another_run_reuses_the_cached_encoder_and_says_so(
    archive, smoke_run, capsys
):
    # A forward + backward ensemble: the forward member reuses the smoke
    # run's encoder; the backward one pretrains its own, cached apart.
    other = smoke_run.parent / "again"
    args = smoke_args(
        archive, other, "--baseline=false", "--direction=both", "--verbose=2"
    )
    assert imdb_sentiment.main(args) == 0
    out = capsys.readouterr().out
    cached = json.loads((smoke_run / "metrics.json").read_text())["encoder"]
    assert f"Reusing the pretrained encoder in {cached['path']}" in out
    assert "Pretraining the encoder as a backward word LM" in out
    assert "Pretraining the encoder as a word LM" not in out
    results = json.loads((other / "metrics.json").read_text())
    forward, backward = (results["members"][d] for d in ("forward", "backward"))
    assert forward["encoder"]["fingerprint"] == cached["fingerprint"]
    assert backward["encoder"]["fingerprint"] != cached["fingerprint"]
    for direction in ("forward", "backward"):
        assert (other / direction / "training_curves.png").is_file()
        assert (other / direction / "checkpoints").is_dir()
    # The exported ensemble averages the two members on raw text.
    served = keras.saving.load_model(other / "model.keras")
    ids = np.array([[5, 9, 3, 0, 0], [7, 0, 0, 0, 0]], "int32")
    members = [
        served.get_layer(n) for n in ("text_classifier", "backward_classifier")
    ]
    np.testing.assert_allclose(
        served(ids), (members[0](ids) + members[1](ids)) / 2, atol=1e-6
    )
    assert "Ensemble test accuracy" in out


def test_an_explicit_encoder_that_does_not_fit_is_refused(
    archive, smoke_run, tmp_path, capsys
):
    cached = json.loads((smoke_run / "metrics.json").read_text())["encoder"]
    args = smoke_args(
        archive,
        tmp_path / "wider",
        f"--encoder={cached['path']}",
        "--units=32",
        "--pretrain=false",
    )
    assert imdb_sentiment.main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: The encoder in")
    assert "units: encoder [16] != classifier [32]" in error


def test_too_many_held_out_reviews_is_a_one_line_error(
    archive, tmp_path, capsys
):
    args = smoke_args(archive, tmp_path / "run", "--lm.heldout-reviews=6")
    assert imdb_sentiment.main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Option `--lm.heldout-reviews` must be")
    assert "6 unlabelled reviews" in error


def test_rerun_with_other_options_in_the_same_folder_is_refused(
    archive, smoke_run, capsys
):
    code = imdb_sentiment.main(
        smoke_args(archive, smoke_run, *LEARNS, "--units=32")
    )
    assert code == 2
    assert "units: 16 -> 32" in capsys.readouterr().err


def test_resume_with_another_vocabulary_is_refused(
    archive, smoke_run, tmp_path, capsys
):
    """A copy of a run folder resumes where it is (the run folder is not
    part of the config), but not when its vocabulary differs from the one
    the training texts give now."""
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    path = copy / "vocabulary.txt"
    words = path.read_text().splitlines()
    words[2], words[3] = words[3], words[2]
    path.write_text("\n".join(words) + "\n")
    args = smoke_args(
        archive, copy, *LEARNS, encoders=smoke_run.parent / "encoders"
    )
    assert imdb_sentiment.main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        f"error: {copy} holds a run trained with another vocabulary (the "
        "training reviews differ); use another --run-dir."
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--unitz=3", "Unknown option `--unitz`. Did you mean `--units`?"),
        ("--units=-3", "`--units` must be a positive integer, got -3"),
        ("--units=abc", "`--units` expects int, got 'abc'"),
        ("--layers=0", "`--layers` must be between 1 and 8, got 0"),
        ("--clipnorm=0", "`--clipnorm` must be positive"),
        ("--clipnorm=-1", "`--clipnorm` must be positive"),
        ("--dropout=1.5", "`--dropout` must be a float in [0, 1), got 1.5"),
        (
            "--cell=gru",
            "`--cell` must be one of ['lstm', 'vanilla', 'layernorm', "
            "'peephole', 'projection']",
        ),
        ("--preset=huge", "Unknown preset 'huge'"),
    ],
)
def test_bad_config_fails_before_any_work(option, message, tmp_path, capsys):
    run_dir = tmp_path / "never"
    code = imdb_sentiment.main([option, f"--run-dir={run_dir}"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()


def test_help_lists_every_option(capsys):
    assert imdb_sentiment.main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--cell",
        "--layers",
        "--units",
        "--bidirectional",
        "--residual",
        "--dropout",
        "--clipnorm",
        "--optimizer",
        "--epochs",
        "--data-dir",
        "--imdb-path",
        "--run-dir",
    ):
        assert option in text
