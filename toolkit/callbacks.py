"""Callbacks of the toolkit's training loop, usable in any `model.fit`."""

from __future__ import annotations

import time

import keras


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, told the run's total number of epochs (each
    `fit` call here covers one)."""

    def __init__(self, total_epochs: int):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.total_epochs})


class TrainingClock(keras.callbacks.Callback):
    """Counts training time (the batches of every epoch, not validation or
    callbacks after the last batch), adds the running total to the epoch's
    logs as `train_seconds`, and stops training once it passes
    `budget_seconds`.

    Args:
        start_seconds: time already spent (by the run this one resumes).
        budget_seconds: stop after this much training time; `None`: never.
    """

    def __init__(
        self, start_seconds: float = 0.0, budget_seconds: float | None = None
    ):
        super().__init__()
        self.seconds = float(start_seconds)
        self.budget_seconds = budget_seconds
        self.exhausted = False
        self._epoch_start = self._epoch_base = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_base = self.seconds
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds = (
            self._epoch_base + time.perf_counter() - self._epoch_start
        )
        if self.budget_seconds is not None and (
            self.seconds >= self.budget_seconds
        ):
            self.exhausted = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_seconds"] = self.seconds


class ResetStatesEachEpoch(keras.callbacks.Callback):
    """Zero the carried state of every stateful layer when an epoch starts
    (truncated backpropagation through time restarts its streams)."""

    def on_epoch_begin(self, epoch, logs=None):
        reset_stateful_layers(self.model)


def reset_stateful_layers(model: keras.Model) -> None:
    """Zero the carried state of every stateful layer of `model`."""
    for layer in model.layers:
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()
