"""Optimizers that always clip, and learning-rate schedules.

Every optimizer the toolkit builds clips gradients (`clipnorm`). The named
classes below add to Keras's optimizers:

- `ClipAfterAllReduceMixin` (all of them): under a `tf.distribute`
  strategy, the replicas' gradients are summed before they are clipped,
  as one device would clip the same global batch.
- `LayerRatesMixin` (all of them): discriminative learning rates, a
  multiplier of the learning rate per layer (`rate_multipliers`), as
  ULMFiT fine-tunes a pretrained encoder; `discriminative_multipliers`
  builds ULMFiT's geometric ones.
- `GradientStatsMixin` (the `Tracked*` classes): the global gradient norm
  and whether clipping fired, at every step, for `GradientFlowLogger`.

Both override private Keras methods, listed with their reasons in
`toolkit._keras_private.OPTIMIZER_HOOKS` and checked at import.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from toolkit import _keras_private


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
        if keras.backend.backend() != "tensorflow":  # no tf.distribute
            return super()._backend_apply_gradients(grads, trainable_variables)
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


class LayerRatesMixin:
    """Discriminative learning rates and frozen layers: each variable's
    update uses the learning rate times a multiplier chosen by its path
    (ULMFiT, Howard & Ruder 2018, section 3.2), times a gate of 0 (frozen)
    or 1 that `freeze` sets during training (`GradualUnfreezing`).

    Args:
        rate_multipliers: `{path prefix: multiplier}`; a variable whose
            `path` (e.g. `"deep_rnn/lstm_0/lstm_cell/kernel"`) is a prefix
            or starts with one followed by `/` takes the multiplier of the
            longest such prefix, others 1. `None` or `{}`: one rate for all.

    The multiplier scales the rate inside `update_step`, so it is exact for
    every optimizer (Adam's step scales, not its gradient); weight decay
    (AdamW) keeps the unscaled rate. A frozen variable is left unchanged,
    but its gradient is still computed (and, for Adam, enters its moments):
    unlike `layer.trainable = False`, freezing needs no new train function
    and the set of trained variables stays the same, which JAX's `fit`
    requires. The variable's index comes from a private Keras method
    (`toolkit._keras_private.optimizer_variable_index`).
    """

    def __init__(self, *args, rate_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        multipliers = dict(rate_multipliers or {})
        for prefix, value in multipliers.items():
            if not isinstance(prefix, str) or not prefix:
                raise ValueError(
                    "Received an invalid key in `rate_multipliers`, expected "
                    f"a layer path such as 'embedding', got {prefix!r}."
                )
            if not value > 0:
                raise ValueError(
                    "Received an invalid value in `rate_multipliers` for "
                    f"{prefix!r}, expected a positive float, got {value!r}."
                )
        self.rate_multipliers = {k: float(v) for k, v in multipliers.items()}
        self._variable_multipliers = []

    def multiplier_of(self, path: str) -> float:
        """The multiplier that a variable with this `path` gets."""
        prefix = _longest_prefix(path, self.rate_multipliers)
        return 1.0 if prefix is None else self.rate_multipliers[prefix]

    def build(self, variables):
        super().build(variables)
        self._variable_multipliers = [
            self.multiplier_of(v.path) for v in variables
        ]
        # 1: the variable trains; 0: frozen (`freeze`).
        self.rate_gates = self.add_variable(
            (len(variables),), initializer="ones", name="rate_gates"
        )

    def freeze(self, prefixes) -> list[str]:
        """Freeze the variables under these path prefixes and unfreeze all
        others; returns the paths of the frozen ones. Build the optimizer
        first (`fit` does, before any callback runs)."""
        if not self.built:
            raise ValueError(
                "Build the optimizer before freezing layers: "
                "`optimizer.build(model.trainable_variables)`."
            )
        prefixes = list(prefixes)
        paths = [v.path for v in self._trainable_variables]
        frozen = [p for p in paths if _longest_prefix(p, prefixes) is not None]
        self.rate_gates.assign([0.0 if p in frozen else 1.0 for p in paths])
        return frozen

    def update_step(self, gradient, variable, learning_rate):
        index = _keras_private.optimizer_variable_index(self, variable)
        learning_rate = learning_rate * ops.cast(
            self.rate_gates[index], learning_rate.dtype
        )
        multiplier = self._variable_multipliers[index]
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {
            **super().get_config(),
            "rate_multipliers": self.rate_multipliers,
        }


def _longest_prefix(path: str, prefixes) -> str | None:
    matches = [
        prefix
        for prefix in prefixes
        if path == prefix or path.startswith(prefix.rstrip("/") + "/")
    ]
    return max(matches, key=len) if matches else None


def discriminative_multipliers(
    groups: Sequence[str], factor: float = 2.6
) -> dict[str, float]:
    """ULMFiT's discriminative rates: `groups` are layer paths from the top
    (output) down; the top one trains at the base rate, each lower one at
    the rate above it divided by `factor` (ULMFiT: 2.6).

    Example: `discriminative_multipliers(["output", "deep_rnn",
    "embedding"])` -> `{"output": 1.0, "deep_rnn": 1/2.6, "embedding":
    1/2.6**2}`.
    """
    if not factor >= 1.0:
        raise ValueError(
            "Received an invalid value for argument `factor`, expected a "
            f"float of at least 1 (each lower layer learns more slowly), got "
            f"{factor!r}."
        )
    return {group: factor**-depth for depth, group in enumerate(groups)}


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


@keras.saving.register_keras_serializable("toolkit")
class ClippedAdam(
    ClipAfterAllReduceMixin, LayerRatesMixin, keras.optimizers.Adam
):
    """`keras.optimizers.Adam`, replicas' gradients summed before clipping,
    optional `rate_multipliers` per layer (`LayerRatesMixin`)."""


@keras.saving.register_keras_serializable("toolkit")
class ClippedAdamW(
    ClipAfterAllReduceMixin, LayerRatesMixin, keras.optimizers.AdamW
):
    """`keras.optimizers.AdamW`, replicas' gradients summed before clipping,
    optional `rate_multipliers` per layer (`LayerRatesMixin`)."""


@keras.saving.register_keras_serializable("toolkit")
class ClippedSGD(
    ClipAfterAllReduceMixin, LayerRatesMixin, keras.optimizers.SGD
):
    """`keras.optimizers.SGD`, replicas' gradients summed before clipping,
    optional `rate_multipliers` per layer (`LayerRatesMixin`)."""


@keras.saving.register_keras_serializable("toolkit")
class ClippedRMSprop(
    ClipAfterAllReduceMixin, LayerRatesMixin, keras.optimizers.RMSprop
):
    """`keras.optimizers.RMSprop`, replicas' gradients summed before
    clipping, optional `rate_multipliers` per layer (`LayerRatesMixin`)."""


@keras.saving.register_keras_serializable("toolkit")
class TrackedAdam(GradientStatsMixin, ClippedAdam):
    """`ClippedAdam` that records gradient norms and clipping events."""


@keras.saving.register_keras_serializable("toolkit")
class TrackedAdamW(GradientStatsMixin, ClippedAdamW):
    """`ClippedAdamW` that records gradient norms and clipping events."""


@keras.saving.register_keras_serializable("toolkit")
class TrackedSGD(GradientStatsMixin, ClippedSGD):
    """`ClippedSGD` that records gradient norms and clipping events."""


@keras.saving.register_keras_serializable("toolkit")
class TrackedRMSprop(GradientStatsMixin, ClippedRMSprop):
    """`ClippedRMSprop` that records gradient norms and clipping events."""


# name -> (the clipped class, the tracked class)
OPTIMIZERS = {
    "adam": (ClippedAdam, TrackedAdam),
    "adamw": (ClippedAdamW, TrackedAdamW),
    "sgd": (ClippedSGD, TrackedSGD),
    "rmsprop": (ClippedRMSprop, TrackedRMSprop),
}

# The Keras optimizers the named classes extend.
KERAS_BASES = (
    keras.optimizers.Adam,
    keras.optimizers.AdamW,
    keras.optimizers.SGD,
    keras.optimizers.RMSprop,
)

# The mixins override private Keras methods; an override of a method that
# Keras renamed or reshaped would silently never run, so a Keras upgrade
# that changes one fails here, at import.
for _base in KERAS_BASES:
    _keras_private.check_optimizer_hooks(
        _base, mixins=(ClipAfterAllReduceMixin, GradientStatsMixin)
    )
del _base


def _check_name(name: str) -> None:
    if name not in OPTIMIZERS:
        raise ValueError(
            "Received an invalid value for argument `optimizer`, expected "
            f"one of {sorted(OPTIMIZERS)}, got {name!r}."
        )


def make_optimizer(
    name: str,
    learning_rate,
    clipnorm: float,
    track_gradients: bool = False,
    rate_multipliers: dict[str, float] | None = None,
) -> keras.optimizers.Optimizer:
    """An optimizer that always clips gradients (Keras's `clipnorm`: each
    variable's gradient to at most that norm).

    Args:
        name: `"adam"`, `"adamw"`, `"sgd"` or `"rmsprop"`.
        learning_rate: a float or a `keras.optimizers.schedules` schedule.
        clipnorm: largest allowed gradient norm; must be positive.
        track_gradients: a `Tracked*` class, which records gradient norms
            and clipping events for `GradientFlowLogger`.
        rate_multipliers: per-layer learning-rate multipliers
            (`LayerRatesMixin`, `discriminative_multipliers`).
    """
    _check_name(name)
    if not clipnorm or clipnorm <= 0:
        raise ValueError(
            "Received an invalid value for argument `clipnorm`, expected a "
            f"positive float (clipping is always on), got {clipnorm!r}."
        )
    optimizer_class = OPTIMIZERS[name][track_gradients]
    return optimizer_class(
        learning_rate=learning_rate,
        clipnorm=clipnorm,
        rate_multipliers=rate_multipliers,
    )


def tracked_optimizer(
    name: str, learning_rate, clipnorm: float | None
) -> keras.optimizers.Optimizer:
    """A `Tracked*` optimizer with `clipnorm`, or without clipping when it
    is `None`: for experiments that show what clipping prevents. Train
    real models with `make_optimizer`."""
    if clipnorm is not None:
        return make_optimizer(name, learning_rate, clipnorm, True)
    _check_name(name)
    return OPTIMIZERS[name][True](learning_rate=learning_rate)


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
