"""The long-range experiments' bookkeeping: per-step losses recovered from
Keras's running means, and the copy task's model and baseline."""

import math

import keras
import numpy as np

from toolkit.data import synthetic
from toolkit.lab import long_range


def test_per_step_losses_equal_each_batch_loss(rng):
    x = rng.standard_normal((40, 5, 2)).astype("float32")
    y = rng.standard_normal((40, 1)).astype("float32")

    def twin():
        model, _ = long_range._build("vanilla", 6, 5, 2, 1.0, seed=3)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    recorder = long_range._PerStepLoss()
    twin().fit(
        x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[recorder]
    )
    reference = twin()
    expected = [
        float(reference.train_on_batch(x[i : i + 8], y[i : i + 8]))
        for i in range(0, 40, 8)
    ]
    np.testing.assert_allclose(recorder.losses, expected, rtol=1e-5)


def test_copy_model_scores_one_hot_ids_at_every_step():
    run = long_range.train_copy(
        "lstm", 4, timesteps=5, steps=2, learning_rate=1e-3, clipnorm=1.0
    )
    assert run["task"] == "copy" and run["forget_bias"] == 1.0
    # 4 * (4 * (10 + 4) + 4) LSTM weights + (4 + 1) * 10 for the head.
    assert run["parameters"] == 4 * (4 * 14 + 4) + 50
    assert run["baseline_cross_entropy"] == synthetic.copy_memory_baseline(5)
    assert math.isclose(run["baseline_cross_entropy"], 10 * math.log(8) / 25)
    assert len(run["losses"]) == 2 and not run["diverged"]
