"""The toolkit's callbacks, each in a plain `model.fit`."""

import keras
import numpy as np
import pytest

import toolkit
from toolkit.callbacks import EpochProgress, ResetStatesEachEpoch, TrainingClock


def tiny_fit(callbacks, epochs=2, x=None):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((16, 3), "float32") if x is None else x
    history = model.fit(
        x,
        np.ones((len(x), 1)),
        batch_size=4,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )
    return model, history


def test_training_clock_adds_seconds_to_the_logs_and_counts_on():
    clock = TrainingClock(start_seconds=5.0)
    _, history = tiny_fit([clock], epochs=3)
    seconds = history.history["train_seconds"]
    assert len(seconds) == 3 and seconds[0] > 5.0
    assert all(np.diff(seconds) > 0) and not clock.exhausted
    assert clock.seconds == pytest.approx(seconds[-1])


def test_training_clock_stops_fit_when_its_budget_is_spent():
    clock = TrainingClock(budget_seconds=1e-9)
    model, history = tiny_fit([clock], epochs=5)
    assert clock.exhausted and len(history.history["loss"]) == 1
    assert int(model.optimizer.iterations.numpy()) == 1


def test_reset_states_each_epoch_zeroes_stateful_layers():
    inputs = keras.Input(batch_shape=(2, 4, 3))
    layer = toolkit.LSTM(5, stateful=True)
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(float(np.abs(layer.states[0].numpy()).sum()))

    model.fit(
        np.ones((2, 4, 3)),
        np.ones((2, 1)),
        batch_size=2,
        epochs=2,
        verbose=0,
        callbacks=[ResetStatesEachEpoch(), Spy()],
    )
    assert seen == [0.0, 0.0]
    assert np.abs(layer.states[0].numpy()).sum() > 0  # carried in an epoch


def test_epoch_progress_shows_the_runs_total_epochs():
    progress = EpochProgress(total_epochs=7)
    progress.set_params({"epochs": 1, "steps": 4, "verbose": 1})
    assert progress.epochs == 7 and progress.target == 4
