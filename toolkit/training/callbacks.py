"""Callbacks of the toolkit's training loop, usable in any `model.fit`."""

from __future__ import annotations

import time
from collections.abc import Sequence

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


class GradualUnfreezing(keras.callbacks.Callback):
    """ULMFiT's gradual unfreezing (Howard & Ruder 2018, section 3.3): the
    top layer group trains alone in the first epoch, and every
    `epochs_per_group` epochs the next group down joins, until all train.

    Args:
        groups: layer paths (variable path prefixes such as `"output"`,
            `"deep_rnn"`, `"embedding"`), from the top (output) down.
        epochs_per_group: epochs before the next group is unfrozen.
        log: called with one line whenever the set of frozen layers changes.

    The model's optimizer must be a toolkit optimizer (it freezes through
    `LayerRatesMixin.freeze`, a learning rate of 0, so the same train
    function keeps running on both backends). Epochs are counted as `fit`
    counts them, so a resumed run (`initial_epoch`) is at the same stage.
    """

    def __init__(
        self, groups: Sequence[str], epochs_per_group: int = 1, log=None
    ):
        super().__init__()
        if not groups:
            raise ValueError("Received no layer groups to unfreeze.")
        if not (isinstance(epochs_per_group, int) and epochs_per_group > 0):
            raise ValueError(
                "Received an invalid value for argument `epochs_per_group`, "
                f"expected a positive integer, got {epochs_per_group!r}."
            )
        self.groups = list(groups)
        self.epochs_per_group = epochs_per_group
        self.log = log
        self._frozen = None

    def trained_groups(self, epoch: int) -> int:
        """How many groups, from the top, train in `epoch` (from 0)."""
        return min(len(self.groups), epoch // self.epochs_per_group + 1)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "freeze"):
            raise TypeError(
                "GradualUnfreezing needs a toolkit optimizer "
                "(toolkit.make_optimizer), which can freeze layers; got "
                f"{type(optimizer).__name__}."
            )
        if not optimizer.built:  # as its first `apply` would
            optimizer.build(self.model.trainable_variables)
        frozen = self.groups[self.trained_groups(epoch) :]
        frozen_paths = optimizer.freeze(frozen)
        if frozen != self._frozen and self.log is not None:
            self.log(
                f"Epoch {epoch + 1}: training "
                f"{', '.join(self.groups[: len(self.groups) - len(frozen)])}"
                + (
                    f"; frozen: {', '.join(frozen)} "
                    f"({len(frozen_paths)} variables)"
                    if frozen
                    else " (all layers)"
                )
            )
        self._frozen = frozen


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
