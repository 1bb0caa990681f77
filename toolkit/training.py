"""Training: seeding, a clipped optimizer, and an epoch loop that resumes.

`train_with_resume` runs `model.fit` one epoch at a time. After every epoch
it writes the weights (with the optimizer state), the dropout seed
generators' states and then a small state file, each atomically. A killed
run, started again with the same command, reloads them and redoes the
interrupted epoch with the same data order (the training data is built per
epoch from a seed and the epoch number), so it ends where an uninterrupted
run would. Early stopping and the best checkpoint are part of that state.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import pathlib
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
from keras import ops

from toolkit import _keras_private
from toolkit._keras_private import seed_generator_states

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


class _EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, told the run's total number of epochs (each
    `fit` call here covers one)."""

    def __init__(self, total_epochs: int):
        super().__init__()
        self.total_epochs = total_epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.total_epochs})


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


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


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what
    `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    """Where a run trained, for its metrics file."""
    return {
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)


class ClipAfterAllReduceMixin:
    """Sum the replicas' gradients before clipping them.

    Keras clips each replica's share of the gradient and then sums the
    shares (under a `tf.distribute` strategy with several replicas), so a
    clipped step differs from the same step on one device. This mixin
    all-reduces first and clips the sum, which is what one device computes
    for the same global batch. With one replica it changes nothing.

    It overrides two private Keras methods, listed with their reasons in
    `toolkit._keras_private.OPTIMIZER_HOOKS` and checked when this module
    is imported (`check_optimizer_hooks`).
    """

    _gradients_reduced = False

    def _backend_apply_gradients(self, grads, trainable_variables):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return super()._backend_apply_gradients(grads, trainable_variables)
        present = [index for index, g in enumerate(grads) if g is not None]
        reduced = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [grads[i] for i in present]
        )
        grads = list(grads)
        for index, value in zip(present, reduced, strict=True):
            grads[index] = value
        self._gradients_reduced = True  # read while tracing the update
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._gradients_reduced = False

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if self._gradients_reduced:
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)


class GradientStatsMixin:
    """Records, at every optimizer step, the gradients' global norm before
    clipping and whether clipping changed them, in optimizer variables:
    `gradient_norm` (last step), `clip_fired` (last step, 0 or 1) and
    `clipped_steps` (running count). Read by `GradientFlowLogger`.

    Keras's `clipnorm` clips each variable's gradient to that norm
    separately, so clipping fires when any one gradient is longer than
    `clipnorm` (`global_clipnorm` compares the global norm instead).

    It overrides the private `_clip_gradients` (see
    `toolkit._keras_private.OPTIMIZER_HOOKS`).
    """

    def build(self, variables):
        super().build(variables)
        self.gradient_norm = self.add_variable((), name="gradient_norm")
        self.clip_fired = self.add_variable((), name="clip_fired")
        self.clipped_steps = self.add_variable((), name="clipped_steps")

    def _clip_gradients(self, grads):
        present = [g for g in grads if g is not None]
        norms = ops.stack([ops.sqrt(ops.sum(ops.square(g))) for g in present])
        global_norm = ops.sqrt(ops.sum(ops.square(norms)))
        if self.clipnorm:
            fired = ops.any(norms > self.clipnorm)
        elif self.global_clipnorm:
            fired = global_norm > self.global_clipnorm
        elif self.clipvalue:
            fired = ops.any(
                ops.stack([ops.max(ops.abs(g)) for g in present])
                > self.clipvalue
            )
        else:
            fired = ops.convert_to_tensor(False)
        fired = ops.cast(fired, "float32")
        self.gradient_norm.assign(ops.cast(global_norm, "float32"))
        self.clip_fired.assign(fired)
        self.clipped_steps.assign_add(fired)
        return super()._clip_gradients(grads)


# The mixins above override private Keras methods; an override of a method
# that Keras renamed or reshaped would silently never run, so a Keras
# upgrade that changes one fails here, at import.
for _base in OPTIMIZERS.values():
    _keras_private.check_optimizer_hooks(
        _base, mixins=(ClipAfterAllReduceMixin, GradientStatsMixin)
    )
del _base


def make_optimizer(
    name: str, learning_rate, clipnorm: float, track_gradients: bool = False
) -> keras.optimizers.Optimizer:
    """An optimizer that always clips gradients (Keras's `clipnorm`: each
    variable's gradient to at most that norm).

    Args:
        name: `"adam"`, `"adamw"`, `"sgd"` or `"rmsprop"`.
        learning_rate: a float or a `keras.optimizers.schedules` schedule.
        clipnorm: largest allowed gradient norm; must be positive.
        track_gradients: record gradient norms and clipping events
            (`GradientStatsMixin`) for `GradientFlowLogger`.
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            "Received an invalid value for argument `optimizer`, expected "
            f"one of {sorted(OPTIMIZERS)}, got {name!r}."
        )
    if not clipnorm or clipnorm <= 0:
        raise ValueError(
            "Received an invalid value for argument `clipnorm`, expected a "
            f"positive float (clipping is always on), got {clipnorm!r}."
        )
    optimizer_class = _CLASSES[(name, track_gradients)]
    return optimizer_class(learning_rate=learning_rate, clipnorm=clipnorm)


def _make_optimizer_class(name: str, track_gradients: bool) -> type:
    """The Keras optimizer with the toolkit's mixins: gradients summed
    across replicas before clipping (TensorFlow backend) and, with
    `track_gradients`, `GradientStatsMixin`. Registered as serializable
    under the `toolkit` package, so a saved model's optimizer reloads in
    any process that imports `toolkit`."""
    base = OPTIMIZERS[name]
    mixins = (GradientStatsMixin,) if track_gradients else ()
    if keras.backend.backend() == "tensorflow":
        mixins += (ClipAfterAllReduceMixin,)
    if not mixins:
        return base
    prefix = "Tracked" if track_gradients else "Clipped"
    return keras.saving.register_keras_serializable("toolkit")(
        type(f"{prefix}{base.__name__}", (*mixins, base), {})
    )


_CLASSES = {
    (name, tracked): _make_optimizer_class(name, tracked)
    for name in OPTIMIZERS
    for tracked in (False, True)
}


def tracked_optimizer(
    name: str, learning_rate, clipnorm: float | None
) -> keras.optimizers.Optimizer:
    """An optimizer that records gradient norms (`GradientStatsMixin`),
    with `clipnorm`, or without clipping when it is `None`: for
    experiments that show what clipping prevents. Train real models with
    `make_optimizer`."""
    if clipnorm is not None:
        return make_optimizer(name, learning_rate, clipnorm, True)
    optimizer = make_optimizer(name, learning_rate, 1.0, True)
    optimizer.clipnorm = None
    return optimizer


SCHEDULES = ("constant", "cosine", "slanted")


@keras.saving.register_keras_serializable(package="toolkit")
class SlantedTriangular(keras.optimizers.schedules.LearningRateSchedule):
    """Howard & Ruder's (2018) slanted triangular learning rate: a linear
    rise from `peak * final_fraction` to `peak` over `warmup_steps`, then
    a linear fall back to `peak * final_fraction` at `total_steps` (and
    flat after it).

    Args:
        peak: the highest rate.
        total_steps: optimizer steps in the whole run.
        warmup_steps: steps of the rise (ULMFiT: 10% of the total).
        final_fraction: the lowest rate as a fraction of `peak` (ULMFiT:
            1/32).
    """

    def __init__(self, peak, total_steps, warmup_steps, final_fraction):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        low = self.peak * self.final_fraction
        rise = step / max(self.warmup_steps, 1)
        fall = (self.total_steps - step) / max(
            self.total_steps - self.warmup_steps, 1
        )
        position = ops.clip(
            ops.where(step < self.warmup_steps, rise, fall), 0.0, 1.0
        )
        return low + (self.peak - low) * position

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_fraction": self.final_fraction,
        }


def make_schedule(
    kind: str,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
):
    """A learning rate for `make_optimizer`.

    Args:
        kind: `"constant"`; `"cosine"`: a linear warm-up from 0 over
            `warmup_steps`, then a cosine decay to
            `final_fraction * learning_rate` at `total_steps`
            (`keras.optimizers.schedules.CosineDecay`); or `"slanted"`:
            `SlantedTriangular`.
        learning_rate: the peak rate.
        total_steps: optimizer steps in the whole run.
    """
    if kind not in SCHEDULES:
        raise ValueError(
            "Received an invalid value for argument `schedule`, expected one "
            f"of {SCHEDULES}, got {kind!r}."
        )
    if kind == "constant":
        return learning_rate
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"Received warmup_steps={warmup_steps!r} for a run of "
            f"{total_steps!r} steps; it must be 0 or more and fewer than the "
            "total."
        )
    if kind == "slanted":
        return SlantedTriangular(
            learning_rate, total_steps, warmup_steps, final_fraction
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=total_steps - warmup_steps,
        alpha=final_fraction,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


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


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _save_weights_atomically(model, path: pathlib.Path) -> None:
    temporary = path.with_name(f".{path.stem}.tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


def _save_seed_states(model, path: pathlib.Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp.npy")
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
    path = pathlib.Path(run_dir) / "train_state.json"
    if not path.exists():
        return TrainState()
    return TrainState(**json.loads(path.read_text()))


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
    from toolkit import distribute

    run_dir = pathlib.Path(run_dir)
    if chief is None:
        chief = distribute.is_chief()
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
            run_dir,
            write_dir,
            epochs,
            monitor,
            mode,
            patience,
            verbose if chief else 0,  # the chief shows progress
            callbacks,
            max_train_seconds,
        )


def _train_with_resume(
    model,
    train_data_for_epoch,
    validation_data,
    resume_dir: pathlib.Path,
    run_dir: pathlib.Path,
    epochs,
    monitor,
    mode,
    patience,
    verbose,
    callbacks,
    max_train_seconds,
) -> TrainState:
    """`train_with_resume`, resuming from `resume_dir` and writing to
    `run_dir` (the same folder, except on non-chief workers)."""
    checkpoints = run_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = load_state(resume_dir)
    best = checkpoints / "best.weights.h5"

    def checkpoint(epochs_done: int, suffix: str) -> pathlib.Path:
        return checkpoints / f"epoch_{epochs_done:03d}.{suffix}"

    if state.epochs_done:
        resume = resume_dir / "checkpoints"
        last = resume / f"epoch_{state.epochs_done:03d}.weights.h5"
        strategy = getattr(model, "distribute_strategy", None)
        with strategy.scope() if strategy else contextlib.nullcontext():
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(last)
        _restore_seed_states(
            model, resume / f"epoch_{state.epochs_done:03d}.seeds.npy"
        )
        if resume_dir == run_dir:
            _truncate_history(run_dir, state.epochs_done)
        elif (resume / "best.weights.h5").exists():
            shutil.copyfile(resume / "best.weights.h5", best)
        if verbose:
            print(
                f"Resuming from {last} after epoch {state.epochs_done} "
                f"(best {monitor} {state.best_value:.4f} at epoch "
                f"{state.best_epoch + 1})."
            )
    better = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)
    if mode == "max" and state.best_value == math.inf:
        state.best_value = -math.inf

    for epoch in range(state.epochs_done, epochs):
        if state.finished:
            break
        clock = TrainingClock(state.train_seconds, max_train_seconds)
        epoch_callbacks = [
            clock,
            *callbacks,
            _EpochProgress(epochs),
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.CSVLogger(run_dir / "history.csv", append=True),
            keras.callbacks.TensorBoard(run_dir / "logs"),
        ]
        history = model.fit(
            train_data_for_epoch(epoch),
            validation_data=validation_data,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,  # the per-epoch dataset already is
            verbose=verbose,
            callbacks=epoch_callbacks,
        )
        logs = {key: values[-1] for key, values in history.history.items()}
        loss = logs.get("loss", math.nan)
        if not math.isfinite(loss) or monitor not in logs:
            raise NonFiniteLossError(
                f"The training loss became {loss} in epoch {epoch + 1}. The "
                "last good weights are in "
                f"{checkpoint(state.epochs_done, 'weights.h5')}. Lower the "
                "learning rate or the clipnorm, then start a new run."
            )
        value = logs[monitor]
        _save_weights_atomically(model, checkpoint(epoch + 1, "weights.h5"))
        _save_seed_states(model, checkpoint(epoch + 1, "seeds.npy"))
        if better(value, state.best_value):
            state.best_value, state.best_epoch, state.wait = value, epoch, 0
            _save_weights_atomically(model, best)
        else:
            state.wait += 1
        state.epochs_done = epoch + 1
        state.train_seconds = clock.seconds
        if clock.exhausted:
            state.finished = True
            state.stop_reason = (
                f"time budget: {clock.seconds:.0f} s of training "
                f"(max_train_seconds={max_train_seconds:g})"
            )
        if (
            not state.finished
            and patience is not None
            and state.wait >= max(patience, 1)
        ):
            state.finished = True
            state.stop_reason = (
                f"early stop: no {monitor} improvement for {state.wait} epochs"
            )
        if state.epochs_done == epochs and not state.finished:
            state.finished = True
            state.stop_reason = f"completed {epochs} epochs"
        # The state file is the commit point: it names the checkpoint a
        # resumed run starts from, and is written after everything else.
        _write_atomically(
            run_dir / "train_state.json",
            json.dumps(dataclasses.asdict(state), indent=2),
        )
    if best.exists():
        model.load_weights(best)
    return state
