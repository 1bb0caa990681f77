"""`ExactResume` in a plain `model.fit`, beside Keras's own callbacks."""

import keras
import numpy as np
import pytest

from toolkit import optimizers
from toolkit.training import resumable


class KillAt(keras.callbacks.Callback):
    """Stands in for `kill -9` as an epoch begins."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


def model_and_data():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dropout(0.3, seed=5)(
        keras.layers.Dense(8, activation="tanh")(inputs)
    )
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(
        optimizer=optimizers.make_optimizer("adam", 1e-2, 1.0), loss="mse"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ np.array([1.0, -1.0, 0.5, 2.0]))[:, None].astype("float32")
    return model, x, y


def fit(folder, epochs=6, kill_at=None):
    model, x, y = model_and_data()
    resume = resumable.ExactResume(folder / "run", patience=3, verbose=0)
    early = keras.callbacks.EarlyStopping(patience=3)
    best = keras.callbacks.ModelCheckpoint(
        folder / "user_best.keras", save_best_only=True
    )
    extra = [] if kill_at is None else [KillAt(kill_at)]
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=epochs,
        shuffle=False,
        validation_data=(x[:16], y[:16]),
        verbose=0,
        callbacks=[*extra, early, best, resume],
    )
    return model, history, resume


def test_a_killed_fit_resumes_to_the_uninterrupted_weights(tmp_path):
    whole, whole_history, _ = fit(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", kill_at=3)
    assert resumable.load_state(tmp_path / "killed" / "run").epochs_done == 3
    resumed, history, resume = fit(tmp_path / "killed")
    assert len(history.history["loss"]) == 3  # epochs 4-6 only
    assert resume.state.epochs_done == 6 and resume.state.finished
    for got, expected in zip(
        resumed.get_weights(), whole.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        history.history["val_loss"], whole_history.history["val_loss"][3:]
    )
    assert (tmp_path / "killed" / "user_best.keras").exists()


def test_a_finished_fit_trains_no_more_epochs(tmp_path):
    fit(tmp_path, epochs=2)
    _, history, resume = fit(tmp_path, epochs=2)
    assert history.history == {} or not history.history.get("loss")
    assert resume.state.epochs_done == 2
    assert resume.state.stop_reason == "completed 2 epochs"
