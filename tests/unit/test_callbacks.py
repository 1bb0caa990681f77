"""The toolkit's callbacks, each in a plain `model.fit`."""

import keras
import numpy as np
import pytest

import toolkit
from toolkit.training.callbacks import (
    EpochProgress,
    ResetStatesEachEpoch,
    TrainingClock,
)


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


def test_gradual_unfreezing_adds_one_group_per_stage_from_the_top():
    from toolkit.optimizers import make_optimizer
    from toolkit.training.callbacks import GradualUnfreezing

    inputs = keras.Input((2,))
    x = keras.layers.Dense(2, name="bottom")(inputs)
    x = keras.layers.Dense(2, name="middle")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="top")(x))
    model.compile(make_optimizer("sgd", 0.1, 1e6), "mse")
    lines = []
    callback = GradualUnfreezing(
        ["top", "middle", "bottom"], epochs_per_group=2, log=lines.append
    )
    assert [callback.trained_groups(e) for e in range(7)] == [
        1, 1, 2, 2, 3, 3, 3,
    ]  # fmt: skip
    x = np.random.default_rng(0).random((8, 2))
    y = np.random.default_rng(1).random((8, 1))
    moved = []
    for epoch in range(5):
        before = {v.path: v.numpy().copy() for v in model.trainable_variables}
        # One fit per epoch, as the recipes run them (initial_epoch).
        model.fit(
            x,
            y,
            initial_epoch=epoch,
            epochs=epoch + 1,
            callbacks=[callback],
            verbose=0,
        )
        moved.append(
            sorted(
                {
                    v.path.split("/")[0]
                    for v in model.trainable_variables
                    if not np.array_equal(v.numpy(), before[v.path])
                }
            )
        )
    assert moved == [
        ["top"],
        ["top"],
        ["middle", "top"],
        ["middle", "top"],
        ["bottom", "middle", "top"],
    ]
    assert lines == [
        "Epoch 1: training top; frozen: middle, bottom (4 variables)",
        "Epoch 3: training top, middle; frozen: bottom (2 variables)",
        "Epoch 5: training top, middle, bottom (all layers)",
    ]


def test_gradual_unfreezing_needs_a_toolkit_optimizer():
    from toolkit.training.callbacks import GradualUnfreezing

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(TypeError, match="toolkit optimizer"):
        model.fit(
            np.zeros((2, 2)),
            np.zeros((2, 1)),
            callbacks=[GradualUnfreezing(["dense"])],
            verbose=0,
        )
