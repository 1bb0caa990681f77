"""Training that resumes exactly.

`ExactResume`, a Keras callback for any `fit`, writes after every epoch the
weights (with the optimizer state), the dropout seed generators' states and
then a small state file with the checksums of both, each atomically; when
`fit` starts again on the folder it verifies and reloads them and skips the
epochs already done. `train_with_resume` runs `model.fit` one epoch at a
time with one, so that a killed run, started again with the same command,
redoes the interrupted epoch with the same data order (the training data is
built per epoch from a seed and the epoch number) and ends where an
uninterrupted run would. Early stopping and the best checkpoint are part of
that state.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Sequence

import keras
import numpy as np

from toolkit import _keras_private
from toolkit._keras_private import seed_generator_states
from toolkit.training import callbacks as callbacks_lib
from toolkit.training import run_dir as run_dir_lib


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass
class TrainState:
    """What a resumed run needs besides the weights."""

    epochs_done: int = 0
    best_value: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    finished: bool = False
    stop_reason: str = ""
    train_seconds: float = 0.0
    # sha256 of every checkpoint file, by name under checkpoints/, as
    # written; verified before a resumed run trusts them.
    checksums: dict = dataclasses.field(default_factory=dict)


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _save_weights_atomically(model, path: pathlib.Path) -> None:
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


def _save_seed_states(model, path: pathlib.Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    # Keras weights files leave out the dropout seed generators' states;
    # a resumed run needs them to draw the masks an uninterrupted run would.
    states = [v.numpy().ravel() for v in seed_generator_states(model)]
    np.save(temporary, np.stack(states) if states else np.zeros((0, 2)))
    os.replace(temporary, path)


def _restore_seed_states(model, path: pathlib.Path) -> None:
    states = seed_generator_states(model)
    saved = np.load(path)
    if len(saved) != len(states):
        raise ValueError(
            f"{path} holds {len(saved)} dropout seed states but the model "
            f"has {len(states)}; it was saved by a different model."
        )
    for variable, value in zip(states, saved, strict=True):
        variable.assign(value.reshape(variable.shape))


def load_state(run_dir: pathlib.Path) -> TrainState:
    """The commit point of a run, or a fresh `TrainState`.

    Raises:
        RunDirError: `train_state.json` is not valid JSON or not a state.
    """
    path = pathlib.Path(run_dir) / run_dir_lib.STATE_NAME
    if not path.exists():
        return TrainState()
    fix = f"delete {run_dir} (or pass another --run-dir) to start the run over"
    saved = run_dir_lib.read_json(path, fix)
    known = {field.name for field in dataclasses.fields(TrainState)}
    if not isinstance(saved, dict) or not set(saved) <= known:
        raise run_dir_lib.RunDirError(
            f"{path} is not a training state (unexpected fields); {fix}."
        )
    return TrainState(**saved)


def _load_checkpoint(model, path: pathlib.Path, state, run_dir) -> None:
    """Load weights `path` after checking it against `state.checksums`."""
    run_dir_lib.verify(path, state.checksums.get(path.name), run_dir)
    try:
        model.load_weights(path)
    except OSError as error:  # h5py: truncated or not HDF5
        raise run_dir_lib.RunDirError(
            f"{path} cannot be read ({str(error).splitlines()[0]}); delete "
            f"{run_dir} (or pass another --run-dir) to start the run over."
        ) from None


def read_history(run_dir: pathlib.Path) -> list[dict[str, float]]:
    """The per-epoch metrics logged to `history.csv`."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [
            {key: float(value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def _truncate_history(run_dir: pathlib.Path, epochs: int) -> None:
    """Drop rows of epochs that a killed run logged but never saved."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) > epochs + 1:
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(rows[: epochs + 1])


def train_with_resume(
    model: keras.Model,
    train_data_for_epoch: Callable[[int], object],
    validation_data,
    run_dir: str | os.PathLike,
    epochs: int,
    monitor: str = "val_loss",
    mode: str = "min",
    patience: int | None = None,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    max_train_seconds: float | None = None,
    chief: bool | None = None,
) -> TrainState:
    """Train `model` (compiled) for up to `epochs` epochs, resumably.

    Args:
        model: a compiled, built model.
        train_data_for_epoch: `epoch -> dataset`; must give the same data in
            the same order for the same epoch (seed it with the epoch).
        validation_data: evaluated after every epoch, or `None` when a
            callback adds the `monitor` metric to the epoch's logs.
        run_dir: where `checkpoints/`, `history.csv`, `logs/` (TensorBoard)
            and `train_state.json` go.
        epochs: the total number of epochs, counting resumed ones.
        monitor, mode: the validation metric that picks the best epoch.
        patience: stop after this many epochs in a row without improvement,
            as `keras.callbacks.EarlyStopping` counts them (`None`: never
            stop early).
        verbose: passed to `fit` (1 shows a progress bar).
        callbacks: extra callbacks for every epoch. They run before the
            progress bar and the CSV and TensorBoard loggers, so metrics
            they add to the logs in `on_epoch_end` are shown and logged.
        max_train_seconds: stop once this much training time (counted by
            `TrainingClock` across resumes) has passed; the epoch under way
            ends early and is validated and saved.
        chief: whether this process writes to `run_dir` (default:
            `distribute.is_chief()`). The other workers of a multi-worker
            run resume from the chief's `run_dir` (shared storage) and
            write to a scratch folder that is deleted at the end.

    Returns:
        The final `TrainState`. The model holds the best epoch's weights.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite; the last good
            epoch's checkpoint is kept.
    """
    from toolkit.training import distribute

    run_dir = pathlib.Path(run_dir)
    if chief is None:
        chief = distribute.is_chief()
    if chief:
        run_dir_lib.hold_lock(run_dir)
    with contextlib.ExitStack() as stack:
        write_dir = run_dir
        if not chief:
            write_dir = pathlib.Path(
                stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="toolkit_worker_")
                )
            )
        return _train_with_resume(
            model,
            train_data_for_epoch,
            validation_data,
            resume_dir=run_dir,
            write_dir=write_dir,
            epochs=epochs,
            monitor=monitor,
            mode=mode,
            patience=patience,
            verbose=verbose if chief else 0,  # the chief shows progress
            callbacks=callbacks,
            max_train_seconds=max_train_seconds,
        )


def _restore(model, state, resume_dir, write_dir, verbose, monitor) -> None:
    """Load the checkpoint `state` names from `resume_dir` (verified)."""
    resume = resume_dir / "checkpoints"
    last = resume / f"epoch_{state.epochs_done:03d}.weights.h5"
    seeds = resume / f"epoch_{state.epochs_done:03d}.seeds.npy"
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy else contextlib.nullcontext():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        _load_checkpoint(model, last, state, resume_dir)
    run_dir_lib.verify(seeds, state.checksums.get(seeds.name), resume_dir)
    _restore_seed_states(model, seeds)
    if resume_dir == write_dir:
        _truncate_history(write_dir, state.epochs_done)
    elif (resume / "best.weights.h5").exists():
        shutil.copyfile(
            resume / "best.weights.h5",
            write_dir / "checkpoints" / "best.weights.h5",
        )
    if verbose:
        print(
            f"Resuming from {last} after epoch {state.epochs_done} "
            f"(best {monitor} {state.best_value:.4f} at epoch "
            f"{state.best_epoch + 1})."
        )


def _stop_reason(state, clock, patience, epochs, monitor) -> str:
    """Why the run ends after this epoch, or "" if it goes on."""
    if clock is not None and clock.exhausted:
        return (
            f"time budget: {clock.seconds:.0f} s of training "
            f"(max_train_seconds={clock.budget_seconds:g})"
        )
    if patience is not None and state.wait >= max(patience, 1):
        return f"early stop: no {monitor} improvement for {state.wait} epochs"
    if state.epochs_done == epochs:
        return f"completed {epochs} epochs"
    return ""


class ExactResume(keras.callbacks.Callback):
    """Exact resume for any `model.fit`, in the spirit of
    `keras.callbacks.BackupAndRestore`.

    After every epoch it writes, atomically, the weights with the optimizer
    state, the dropout seed generators' states, the best epoch's weights and
    then the commit point, `train_state.json` (epochs done, best value and
    epoch, patience count, training seconds, a SHA-256 of every checkpoint
    file). When `fit` starts on a folder that has one, it verifies and
    loads that checkpoint and makes `fit` skip the epochs already done, so a
    killed run started again ends where an uninterrupted one would, given
    training data in the same order for the same epoch (`fit`'s `x` the same
    every epoch, or the per-epoch datasets of `train_with_resume`).

    Other callbacks work alongside it (`EarlyStopping`, `ModelCheckpoint`,
    `TensorBoard`); put it last, so that metrics they add to the logs are
    seen. Its own `patience` is part of the saved state, so unlike an
    `EarlyStopping`, it counts across a resume.

    Args:
        run_dir: the folder written (`checkpoints/`, `train_state.json`).
        monitor, mode: the metric that picks the best epoch.
        patience: stop after this many epochs in a row without improvement
            (`None`: never).
        epochs: the run's total epochs (default: `fit`'s `epochs`).
        clock: a `TrainingClock` in the same `fit` (before this callback):
            its seconds are saved and restored, and its budget ends the run.
        resume_dir: the folder read on resume (default `run_dir`;
            multi-worker runs' other workers read the chief's).
        verbose: say where it resumes from.

    Raises (from `fit`):
        NonFiniteLossError: the loss became NaN or infinite; the last good
            epoch's checkpoint is kept.
        RunDirError: a checkpoint or the state file is damaged.
    """

    def __init__(
        self,
        run_dir,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int | None = None,
        epochs: int | None = None,
        clock: callbacks_lib.TrainingClock | None = None,
        resume_dir=None,
        verbose: int = 1,
    ):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        self.write_dir = pathlib.Path(run_dir)
        self.resume_dir = pathlib.Path(resume_dir or run_dir)
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.epochs, self.clock, self.verbose = epochs, clock, verbose
        self.state: TrainState | None = None
        self.best_path = self.write_dir / "checkpoints" / "best.weights.h5"

    def load(self, model=None) -> TrainState:
        """Read the commit point and restore the checkpoint it names into
        `model` (default: the model this callback is attached to). Done
        once; `on_train_begin` calls it if nobody did."""
        if self.state is None:
            model = model or self.model
            (self.write_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            state = load_state(self.resume_dir)
            if self.mode == "max" and state.best_value == math.inf:
                state.best_value = -math.inf
            if state.epochs_done:
                _restore(
                    model,
                    state,
                    self.resume_dir,
                    self.write_dir,
                    self.verbose,
                    self.monitor,
                )
            self.state = state
        return self.state

    def on_train_begin(self, logs=None):
        state = self.load()
        if self.clock is not None:
            self.clock.seconds = state.train_seconds
        start = self.params["epochs"] if state.finished else state.epochs_done
        if start:
            _keras_private.set_initial_epoch(self.model, start)

    def on_epoch_begin(self, epoch, logs=None):
        _keras_private.set_initial_epoch(self.model, None)  # read by now

    def _checkpoint(self, epochs_done: int, suffix: str) -> pathlib.Path:
        return (
            self.write_dir / "checkpoints" / f"epoch_{epochs_done:03d}.{suffix}"
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        state = self.state
        loss = logs.get("loss", math.nan)
        if not math.isfinite(loss) or self.monitor not in logs:
            raise NonFiniteLossError(
                f"The training loss became {loss} in epoch {epoch + 1}. The "
                "last good weights are in "
                f"{self._checkpoint(state.epochs_done, 'weights.h5')}. Lower "
                "the learning rate or the clipnorm, then start a new run."
            )
        value = logs[self.monitor]
        written = [
            self._checkpoint(epoch + 1, "weights.h5"),
            self._checkpoint(epoch + 1, "seeds.npy"),
        ]
        _save_weights_atomically(self.model, written[0])
        _save_seed_states(self.model, written[1])
        better = (
            value < state.best_value
            if self.mode == "min"
            else (value > state.best_value)
        )
        if better:
            state.best_value, state.best_epoch, state.wait = value, epoch, 0
            _save_weights_atomically(self.model, self.best_path)
            written.append(self.best_path)
        else:
            state.wait += 1
        state.checksums.update(
            {path.name: run_dir_lib.sha256(path) for path in written}
        )
        state.epochs_done = epoch + 1
        if self.clock is not None:
            state.train_seconds = self.clock.seconds
        state.stop_reason = _stop_reason(
            state,
            self.clock,
            self.patience,
            self.epochs or self.params["epochs"],
            self.monitor,
        )
        state.finished = bool(state.stop_reason)
        # The state file is the commit point: it names the checkpoint a
        # resumed run starts from, and is written after everything else.
        _write_atomically(
            self.write_dir / run_dir_lib.STATE_NAME,
            json.dumps(dataclasses.asdict(state), indent=2),
        )
        if state.finished:
            self.model.stop_training = True

    def restore_best(self) -> None:
        """Load the best epoch's weights (verified), if there is one."""
        if self.best_path.exists():
            _load_checkpoint(
                self.model, self.best_path, self.state, self.write_dir
            )


def _train_with_resume(
    model,
    train_data_for_epoch,
    validation_data,
    *,
    resume_dir: pathlib.Path,
    write_dir: pathlib.Path,
    epochs,
    monitor,
    mode,
    patience,
    verbose,
    callbacks,
    max_train_seconds,
) -> TrainState:
    """`train_with_resume`, resuming from `resume_dir` and writing to
    `write_dir` (the same folder, except on non-chief workers): one `fit`
    per epoch, so that each gets `train_data_for_epoch(epoch)`, with an
    `ExactResume` doing the checkpoints."""
    resume = ExactResume(
        write_dir,
        monitor=monitor,
        mode=mode,
        patience=patience,
        epochs=epochs,
        resume_dir=resume_dir,
        verbose=verbose,
    )
    state = resume.load(model)
    for epoch in range(state.epochs_done, epochs):
        if state.finished:
            break
        resume.clock = callbacks_lib.TrainingClock(
            state.train_seconds, max_train_seconds
        )
        model.fit(
            train_data_for_epoch(epoch),
            validation_data=validation_data,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,  # the per-epoch dataset already is
            verbose=verbose,
            callbacks=[
                resume.clock,
                *callbacks,
                callbacks_lib.EpochProgress(epochs),
                keras.callbacks.TerminateOnNaN(),
                keras.callbacks.CSVLogger(
                    write_dir / "history.csv", append=True
                ),
                keras.callbacks.TensorBoard(write_dir / "logs"),
                resume,
            ],
        )
    resume.set_model(model)
    resume.restore_best()
    return state
