"""tf.distribute scale-out: a mirrored step equals a one-device step, two
workers on localhost train the IMDB smoke preset to identical weights, a
dead worker is an error rather than a hang, and bad options are clear."""

import csv
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from data_fixtures import synthetic_imdb, write_imdb_archive
from helpers import run_script
from toolkit.training import distribute

ROOT = pathlib.Path(__file__).resolve().parents[2]

MIRRORED_STEP = textwrap.dedent(
    """
    import json
    import numpy as np
    from toolkit import optimizers
    from toolkit.text import models
    from toolkit.text.encoder import EncoderSpec
    from toolkit.training import distribute
    from toolkit.training import resumable

    strategy = distribute.make_strategy("mirrored", cpu_devices=2)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, (16, 12))
    y = rng.integers(0, 2, (16, 1)).astype("float32")

    def build(clipnorm, tracked=False):
        model = models.build_text_classifier(
            EncoderSpec(50, 8, cell="lstm", units=[8], bidirectional=True),
            embedding_dropout=0.0, head_dropout=0.0, pooling="mean_max",
            seed=0,
        )
        optimizer = (
            optimizers.make_optimizer("adam", 1e-2, clipnorm)
            if not tracked
            # Keras's own Adam: clips each replica's share, then sums.
            else __import__("keras").optimizers.Adam(1e-2, clipnorm=clipnorm)
        )
        model.compile(optimizer=optimizer, loss="binary_crossentropy")
        model(np.zeros((1, 1), "int64"))
        return model

    result = {"replicas": strategy.num_replicas_in_sync}
    for clipnorm in (1e3, 1e-3):  # clipping never fires / always fires
        single = build(clipnorm)
        start = single.get_weights()
        single.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        for name, keras_adam in (("toolkit", False), ("keras", True)):
            with strategy.scope():
                mirrored = build(clipnorm, keras_adam)
            mirrored.set_weights(start)
            mirrored.fit(x, y, batch_size=16, epochs=1, shuffle=False,
                         verbose=0)
            result[f"{name}_{clipnorm:g}"] = max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(single.get_weights(), mirrored.get_weights())
            )
        result[f"moved_{clipnorm:g}"] = min(
            float(np.max(np.abs(a - b)))
            for a, b in zip(single.get_weights(), start)
        )
    print(json.dumps(result))
    """
)


@pytest.mark.slow
def test_mirrored_step_equals_a_single_device_step():
    # One Adam step on a global batch of 16, split 8 + 8 over two logical
    # CPU devices, for the IMDB classifier's layers (embedding, a
    # bidirectional LSTM, mean-max pooling, the head); one recurrent layer,
    # as a second adds only tracing time (six models are traced). Adam's
    # first update is lr * g / (|g| + eps), so gradient round-off from
    # summing two half-batch means instead of one mean (float32, relative
    # ~1e-7) moves a weight by ~1e-9 of lr; 1e-6 is far above that and far
    # below the 1e-2-sized update every weight takes.
    result = json.loads(run_script(MIRRORED_STEP).strip().splitlines()[-1])
    assert result["replicas"] == 2
    for clipnorm in ("1000", "0.001"):
        assert result[f"moved_{clipnorm}"] > 1e-4  # every weight moved
        assert result[f"toolkit_{clipnorm}"] < 1e-6, result
    # Keras alone matches when clipping does not fire, and not when it
    # does (it clips each replica's half before summing): why the
    # toolkit's optimizers sum first.
    assert result["keras_1000"] < 1e-6
    assert result["keras_0.001"] > 1e-4


PRETRAIN_STEP = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    from toolkit.text import pretraining
    from toolkit.text.encoder import EncoderSpec
    from toolkit.training import distribute
    from toolkit.training.specs import OptimizerSpec
    from toolkit.data import window_dataset

    strategy = distribute.make_strategy("mirrored", cpu_devices=2)
    config = pretraining.PretrainConfig(
        EncoderSpec(60, embedding_dim=8, units=(8,), dropout=0.0),
        optimizer=OptimizerSpec(
            "sgd", 0.5, schedule="cosine", final_fraction=0.05, clipnorm=1e3
        ),
        embedding_dropout=0.0, num_sampled=20, batch_size=8,
        sequence_length=6, epochs=1, batching="windows", seed=0,
    )
    stream = np.random.default_rng(0).integers(0, 60, 400).astype("int32")
    data = window_dataset(stream, 8, 6, seed=1).take(3)

    def train(scope):
        with scope:
            model = pretraining._compiled_language_model(config, 3)
        model.set_weights(start)
        history = model.fit(data, epochs=1, verbose=0, shuffle=False)
        return model.get_weights(), history.history["loss"][0]

    start = pretraining._compiled_language_model(config, 3).get_weights()
    single, single_loss = train(tf.distribute.get_strategy().scope())
    mirrored, mirrored_loss = train(strategy.scope())
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "loss": [single_loss, mirrored_loss],
        "moved": min(float(np.abs(a - b).max())
                     for a, b in zip(single, start)),
        "difference": max(float(np.abs(a - b).max())
                          for a, b in zip(single, mirrored)),
    }))
    """
)


@pytest.mark.slow
def test_mirrored_pretraining_step_equals_a_single_device_step():
    # Three SGD steps of the word LM (sampled softmax, windows batching) on
    # a global batch of 8 split 4 + 4: SGD moves weights by the gradient
    # itself, so a gradient scaled by the replica count (a loss that is not
    # each replica's share) would show; the logged loss is the global
    # batch's mean, as on one device.
    result = json.loads(run_script(PRETRAIN_STEP).strip().splitlines()[-1])
    assert result["replicas"] == 2
    single, mirrored = result["loss"]
    assert abs(mirrored / single - 1) < 1e-6, result
    assert result["moved"] > 1e-4, result
    assert result["difference"] < 1e-6, result


@pytest.mark.slow
def test_smoke_preset_pretrains_and_fine_tunes_under_mirrored(
    archive, tmp_path
):
    # From an empty encoder cache: the LM pretrains under the strategy
    # (windows batching, split over two replicas), then the classifier.
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "imdb_sentiment.py"),
            "--preset=smoke",
            f"--imdb-path={archive}",
            "--strict-data=false",
            "--validation-split=0.25",
            "--lm.heldout-reviews=2",
            f"--encoder-cache={tmp_path / 'encoders'}",
            f"--run-dir={tmp_path / 'run'}",
            "--strategy=mirrored",
            "--cpu-devices=2",
            "--baseline=false",
            "--export=false",
            "--verbose=2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "split over 2 replicas" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["distribute"]["replicas"] == 2
    encoder = json.loads(
        (pathlib.Path(metrics["encoder"]["path"]) / "encoder.json").read_text()
    )
    assert encoder["replicas"] == 2
    assert encoder["config"]["batching"] == "windows"


def test_strategy_options_are_checked():
    with pytest.raises(distribute.DistributeConfigError, match="one of"):
        distribute.make_strategy("parameter-server")
    with pytest.raises(distribute.DistributeConfigError, match="mirrored"):
        distribute.make_strategy("none", cpu_devices=2)
    assert distribute.is_chief(distribute.make_strategy("none"))


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not valid"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", '
            '"index": 3}}',
            "index 3 is outside",
        ),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", '
            '"index": 0}}',
            "must be 'worker' or 'chief'",
        ),
    ],
)
def test_multiworker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(distribute.DistributeConfigError, match=message):
        distribute.read_tf_config()


BAD_STRATEGY_OPTIONS = [
    (
        "imdb_sentiment.py",
        ["--cpu-devices=2"],
        "`--cpu-devices` must be used with --strategy=mirrored only",
    ),
    (
        "char_lm.py",
        ["--strategy=mirrored", "--cpu-devices=2"],
        "`--batching` must be 'windows' under a distribution strategy",
    ),
    (
        "imdb_sentiment.py",
        ["--strategy=gpus"],
        "`--strategy` must be one of",
    ),
]


@pytest.fixture(scope="module")
def refusals(run_side_by_side):
    """Each case's recipe run once, the three processes side by side."""
    return run_side_by_side(
        {
            (script, *args): [str(ROOT / "recipes" / script), *args]
            for script, args, _ in BAD_STRATEGY_OPTIONS
        }
    )


@pytest.mark.parametrize("script, args, message", BAD_STRATEGY_OPTIONS)
@pytest.mark.slow
def test_recipes_refuse_bad_strategy_options(script, args, message, refusals):
    result = refusals[(script, *args)]
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


# --- two workers on localhost -------------------------------------------

WORKER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from recipes import imdb_sentiment
    from toolkit import optimizers
    from toolkit.training import resumable

    weights_path, die_after = sys.argv[1], int(sys.argv[2])
    train = resumable.train_with_resume

    class Die(__import__("keras").callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Die.batches += 1  # across epochs
            if Die.batches == die_after:
                os._exit(17)  # a crash: no clean-up, no goodbye

    def recording(model, *args, **kwargs):
        if die_after:
            kwargs["callbacks"] = [*kwargs.get("callbacks", ()), Die()]
        state = train(model, *args, **kwargs)
        np.savez(weights_path, *model.get_weights())
        return state

    resumable.train_with_resume = recording
    sys.exit(imdb_sentiment.main(sys.argv[3:]))
    """
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _start_workers(
    tmp_path, archive, encoders, die_after=(0, 0), attempt=0, extra=()
):
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": [f"localhost:{p}" for p in ports]},
                "task": {"type": "worker", "index": index},
            }
        )
        env["PYTHONPATH"] = str(ROOT)
        log = open(tmp_path / f"worker{index}_{attempt}.log", "w")
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    str(tmp_path / f"weights{index}_{attempt}.npz"),
                    str(die_after[index]),
                    "--preset=smoke",
                    f"--imdb-path={archive}",
                    "--strict-data=false",
                    "--validation-split=0.25",
                    f"--run-dir={tmp_path / 'run'}",
                    "--strategy=multiworker",
                    "--baseline=false",
                    # The smoke preset pretrains its encoder (under the
                    # strategy) unless this cache already holds it.
                    f"--encoder-cache={encoders}",
                    "--lm.heldout-reviews=2",
                    "--epochs=2",  # 3 batches each
                    "--patience=2",
                    "--verbose=2",
                    *extra,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def _wait(workers, timeout):
    """Exit codes; kill (and fail) whatever is still running at `timeout`."""
    deadline = time.monotonic() + timeout
    codes = []
    try:
        for worker in workers:
            codes.append(worker.wait(max(deadline - time.monotonic(), 1)))
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    return codes


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imdb")
    return write_imdb_archive(folder / "aclImdb_v1.tar.gz", synthetic_imdb())


def _logs(folder, attempt=0):
    return [(folder / f"worker{i}_{attempt}.log").read_text() for i in (0, 1)]


def _weights(folder, index, attempt=0):
    import numpy as np

    with np.load(folder / f"weights{index}_{attempt}.npz") as saved:
        return [saved[key] for key in sorted(saved.files, key=_arr_index)]


def _arr_index(name):
    return int(name.split("_")[1])


@pytest.fixture(scope="module")
def straight(tmp_path_factory, archive):
    """Two workers, two epochs, nothing goes wrong."""
    folder = tmp_path_factory.mktemp("straight")
    codes = _wait(
        _start_workers(folder, archive, folder / "encoders"), timeout=400
    )
    logs = _logs(folder)
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    return folder


@pytest.mark.slow
def test_two_workers_train_the_smoke_preset_to_identical_weights(straight):
    import numpy as np

    first, second = _weights(straight, 0), _weights(straight, 1)
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # The chief (worker 0) wrote the run folder; worker 1 wrote nothing.
    run = straight / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distribute"]["replicas"] == 2
    assert metrics["distribute"]["task"] == "worker:0"
    assert metrics["epochs_run"] == 2
    assert (run / "checkpoints" / "epoch_002.weights.h5").exists()
    assert (run / "saved_model" / "saved_model.pb").exists()
    logs = _logs(straight)
    assert "Test accuracy" in logs[0] and "Test accuracy" not in logs[1]
    # Both workers pretrained the encoder together; the chief cached it.
    assert "split over 2 replicas" in logs[0]
    encoder = json.loads(
        (pathlib.Path(metrics["encoder"]["path"]) / "encoder.json").read_text()
    )
    assert encoder["replicas"] == 2
    assert pathlib.Path(metrics["encoder"]["path"]).parent == (
        straight / "encoders"
    )


@pytest.mark.slow
def test_a_dead_worker_stops_the_other_and_a_restart_resumes(
    tmp_path, archive, straight
):
    import numpy as np

    # Worker 1 crashes in the second epoch (after 5 of 6 batches). The
    # weights are compared, not the export, so these runs skip it; they
    # fine-tune the encoder that the uninterrupted run pretrained.
    no_export = ["--export=false"]
    encoders = straight / "encoders"
    start = time.monotonic()
    codes = _wait(
        _start_workers(tmp_path, archive, encoders, (0, 5), extra=no_export),
        timeout=300,
    )
    seconds = time.monotonic() - start
    log = _logs(tmp_path)[0]
    assert codes == [1, 17], log[-3000:]
    assert "error: the multi-worker run lost a worker" in log, log[-3000:]
    assert seconds < 300
    state = json.loads((tmp_path / "run" / "train_state.json").read_text())
    assert state["epochs_done"] == 1

    # The same command again resumes after epoch 1 and ends where the
    # uninterrupted run ended (same data order, optimizer and seeds).
    codes = _wait(
        _start_workers(tmp_path, archive, encoders, attempt=1, extra=no_export),
        timeout=400,
    )
    logs = _logs(tmp_path, attempt=1)
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "Resuming from" in logs[0] and "after epoch 1" in logs[0]
    for index in (0, 1):
        for a, b in zip(
            _weights(tmp_path, index, 1), _weights(straight, 0), strict=True
        ):
            np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_char_lm_windows_train_the_same_on_two_devices(
    tmp_path, run_side_by_side
):
    # The whole smoke run (20 Adam steps, batch 4 split 2 + 2) under
    # `mirrored` follows the one-device run: same batches, and each step's
    # summed gradients equal the one-device gradient up to float32
    # rounding, which 20 steps do not amplify past 1e-6 relative.
    words = ["the", "king", "shall", "speak", "of", "crowns", "and", "wars"]
    rng = random.Random(0)
    book = tmp_path / "book.txt"
    book.write_text(" ".join(rng.choice(words) for _ in range(6000)))
    runs = {
        "single": [],
        "mirrored": ["--strategy=mirrored", "--cpu-devices=2"],
    }
    # The two runs are independent processes: side by side.
    results = run_side_by_side(
        {
            name: [
                str(ROOT / "recipes" / "char_lm.py"),
                "--preset=smoke",
                f"--corpus={book}",
                "--batching=windows",
                f"--run-dir={tmp_path / name}",
                "--export=false",
                "--verbose=0",
                *extra,
            ]
            for name, extra in runs.items()
        }
    )
    histories = {}
    for name in runs:
        result = results[name]
        assert result.returncode == 0, result.stderr[-3000:]
        history = (tmp_path / name / "history.csv").read_text()
        histories[name] = history.splitlines()
    single, mirrored = (
        list(csv.DictReader(histories[name])) for name in ("single", "mirrored")
    )
    assert len(single) == len(mirrored) == 2
    for a, b in zip(single, mirrored, strict=True):
        for key in ("loss", "val_loss"):
            assert abs(float(a[key]) / float(b[key]) - 1) < 1e-6, (a, b)
    metrics = (tmp_path / "mirrored" / "metrics.json").read_text()
    assert '"replicas": 2' in metrics
