"""The resumable epoch loop: early stopping, NaN guard, the optimizer."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit import training


def tiny_model(learning_rate=0.05):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(
        optimizer=training.make_optimizer("sgd", learning_rate, 1.0),
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
    state = training.train_with_resume(
        model,
        lambda epoch: train,
        validation,
        tmp_path,
        epochs=10,
        patience=2,
        verbose=0,
    )
    history = training.read_history(tmp_path)
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
    with pytest.raises(training.NonFiniteLossError, match="became nan"):
        training.train_with_resume(
            model, lambda epoch: bad, bad, tmp_path, epochs=2, verbose=0
        )
    assert training.load_state(tmp_path).epochs_done == 0


def test_finished_run_is_not_trained_again(rng, tmp_path):
    model = tiny_model()
    train = data(rng)
    training.train_with_resume(
        model, lambda e: train, train, tmp_path, epochs=2, verbose=0
    )
    calls = []

    def never(epoch):
        calls.append(epoch)
        return train

    state = training.train_with_resume(
        tiny_model(), never, train, tmp_path, epochs=2, verbose=0
    )
    assert calls == [] and state.epochs_done == 2


def test_optimizer_always_clips():
    optimizer = training.make_optimizer("adam", 1e-3, 0.5)
    assert optimizer.clipnorm == 0.5
    with pytest.raises(ValueError, match="`clipnorm`.*0"):
        training.make_optimizer("adam", 1e-3, 0)
    with pytest.raises(ValueError, match="`optimizer`.*'lion'"):
        training.make_optimizer("lion", 1e-3, 1.0)
    assert not math.isnan(optimizer.learning_rate.numpy())
