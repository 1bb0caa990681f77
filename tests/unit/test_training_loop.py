"""The resumable epoch loop: early stopping, NaN guard, the optimizer."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit import optimizers
from toolkit.training import resumable


def tiny_model(learning_rate=0.05):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(
        optimizer=optimizers.make_optimizer("sgd", learning_rate, 1.0),
        loss="mse",
    )
    return model


def data(rng, scale=1.0):
    x = rng.standard_normal((32, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5]) * scale)[:, None].astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_early_stopping_keeps_the_best_epoch(rng, tmp_path):
    model = tiny_model()
    train = data(rng)
    # Validation targets the model cannot fit: val_loss rises as it learns.
    validation = data(rng, scale=-1.0)
    state = resumable.train_with_resume(
        model,
        lambda epoch: train,
        validation,
        tmp_path,
        epochs=10,
        patience=2,
        verbose=0,
    )
    history = resumable.read_history(tmp_path)
    assert state.finished and "early stop" in state.stop_reason
    assert state.epochs_done == len(history) < 10
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert state.best_epoch == best
    assert state.wait == 2
    saved = json.loads((tmp_path / "train_state.json").read_text())
    assert saved["best_epoch"] == best
    np.testing.assert_allclose(
        model.evaluate(validation, verbose=0),
        history[best]["val_loss"],
        rtol=1e-5,
    )


def test_nan_loss_stops_with_a_clear_error(rng, tmp_path):
    model = tiny_model()
    x = np.full((8, 3), np.nan, "float32")
    bad = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)
    with pytest.raises(resumable.NonFiniteLossError, match="became nan"):
        resumable.train_with_resume(
            model, lambda epoch: bad, bad, tmp_path, epochs=2, verbose=0
        )
    assert resumable.load_state(tmp_path).epochs_done == 0


def test_finished_run_is_not_trained_again(rng, tmp_path):
    model = tiny_model()
    train = data(rng)
    resumable.train_with_resume(
        model, lambda e: train, train, tmp_path, epochs=2, verbose=0
    )
    calls = []

    def never(epoch):
        calls.append(epoch)
        return train

    state = resumable.train_with_resume(
        tiny_model(), never, train, tmp_path, epochs=2, verbose=0
    )
    assert calls == [] and state.epochs_done == 2


def test_time_budget_stops_the_run_and_logs_training_seconds(rng, tmp_path):
    model = tiny_model()
    state = resumable.train_with_resume(
        model,
        lambda epoch: data(rng).repeat(50),
        data(rng),
        tmp_path,
        epochs=5,
        verbose=0,
        max_train_seconds=1e-9,
    )
    assert state.finished and state.epochs_done == 1
    assert state.stop_reason.startswith("time budget")
    history = resumable.read_history(tmp_path)
    assert len(history) == 1
    assert 0 < history[0]["train_seconds"] == pytest.approx(state.train_seconds)
    # One batch ran before the clock stopped the epoch: 1 of 200 steps.
    assert int(model.optimizer.iterations.numpy()) == 1


def test_training_seconds_add_up_across_epochs(rng, tmp_path):
    state = resumable.train_with_resume(
        tiny_model(), lambda epoch: data(rng), data(rng), tmp_path, 3, verbose=0
    )
    seconds = [row["train_seconds"] for row in resumable.read_history(tmp_path)]
    assert len(seconds) == 3 and all(np.diff(seconds) > 0)
    assert seconds[-1] == pytest.approx(state.train_seconds)
