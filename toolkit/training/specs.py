"""How a model trains, as one value: `OptimizerSpec`, and `compile_model`,
the one function that compiles every recipe's model with it.

A recipe builds its spec once from its config (where each value is defaulted
and validated) and hands it on whole: the IMDB classifier, its language-model
pretraining and the character LM all compile through `compile_model`.

    spec = OptimizerSpec("adam", 2e-3, schedule="slanted", warmup_fraction=0.1)
    compile_model(model, spec, total_steps=1_000, loss="binary_crossentropy")
"""

from __future__ import annotations

import dataclasses

import keras

from toolkit import _checks, optimizers


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer that always clips gradients, and its learning rate.

    Attributes:
        name: `"adam"`, `"adamw"`, `"sgd"` or `"rmsprop"`.
        learning_rate: the peak rate, positive.
        schedule: `"constant"`, `"cosine"` (a linear warm-up, then a cosine
            decay to `final_fraction` of the peak) or `"slanted"` (ULMFiT's
            slanted triangular rate: a rise, then a fall to
            `final_fraction` of the peak); see `toolkit.optimizers`.
        warmup_steps: steps the rate rises over; or
        warmup_fraction: that number as a share of the run's steps, in
            [0, 1). Set at most one of the two. Either is capped at one
            step fewer than the run has.
        final_fraction: where the cosine or slanted rate ends, as a share of
            the peak, in [0, 1].
        clipnorm: largest gradient norm per variable (Keras's `clipnorm`),
            positive: clipping is always on.
        rate_multipliers: per-layer rate multipliers, a dict `{path
            prefix: multiplier}` or its items
            (`toolkit.optimizers.LayerRatesMixin`), kept as pairs in order;
            empty: one rate for all.
        track_gradients: record gradient norms and clipping events (the
            `Tracked*` optimizers of `toolkit.optimizers`).
    """

    name: str = "adam"
    learning_rate: float = 2e-3
    schedule: str = "constant"
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    final_fraction: float = 0.0
    clipnorm: float = 1.0
    rate_multipliers: tuple[tuple[str, float], ...] = ()
    track_gradients: bool = False

    def __post_init__(self):
        if self.name not in optimizers.OPTIMIZERS:
            raise _checks.ArgumentError(
                "name", f"one of {sorted(optimizers.OPTIMIZERS)}", self.name
            )
        if self.schedule not in optimizers.SCHEDULES:
            raise _checks.ArgumentError(
                "schedule",
                f"one of {list(optimizers.SCHEDULES)}",
                self.schedule,
            )
        _positive("learning_rate", self.learning_rate)
        _positive("clipnorm", self.clipnorm, "clipping is always on")
        if self.warmup_steps:
            _checks.check_positive_int("warmup_steps", self.warmup_steps)
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise _checks.ArgumentError(
                "warmup_fraction", "in [0, 1)", self.warmup_fraction
            )
        if self.warmup_steps and self.warmup_fraction:
            raise ValueError(
                f"Received warmup_steps={self.warmup_steps} and "
                f"warmup_fraction={self.warmup_fraction}; set one of them."
            )
        if not 0.0 <= self.final_fraction <= 1.0:
            raise _checks.ArgumentError(
                "final_fraction", "in [0, 1]", self.final_fraction
            )
        multipliers = tuple(
            (str(prefix), float(multiplier))
            for prefix, multiplier in dict(self.rate_multipliers).items()
        )
        object.__setattr__(self, "rate_multipliers", multipliers)

    def warmup(self, total_steps: int) -> int:
        """Steps the rate rises over in a run of `total_steps`."""
        steps = self.warmup_steps or int(self.warmup_fraction * total_steps)
        return max(0, min(steps, total_steps - 1))

    def learning_rate_for(self, total_steps: int):
        """The rate, or its schedule over a run of `total_steps` steps."""
        return optimizers.make_schedule(
            self.schedule,
            self.learning_rate,
            total_steps,
            self.warmup(total_steps),
            final_fraction=self.final_fraction,
        )

    def build(self, total_steps: int) -> keras.optimizers.Optimizer:
        """A new optimizer for a run of `total_steps` optimizer steps."""
        return optimizers.make_optimizer(
            self.name,
            self.learning_rate_for(total_steps),
            self.clipnorm,
            track_gradients=self.track_gradients,
            rate_multipliers=dict(self.rate_multipliers) or None,
        )


def _positive(key: str, value, why: str = "") -> None:
    if not (isinstance(value, (int, float)) and value > 0):
        why = f" ({why})" if why else ""
        raise _checks.ArgumentError(key, f"positive{why}", value)


def compile_model(
    model: keras.Model,
    optimizer: OptimizerSpec,
    total_steps: int,
    loss=None,
    metrics=None,
    jit_compile="auto",
) -> keras.Model:
    """`model.compile` with a new optimizer built from `optimizer` for a run
    of `total_steps` steps; returns `model`. `loss`, `metrics` and
    `jit_compile` are `keras.Model.compile`'s."""
    total_steps = _checks.check_positive_int("total_steps", total_steps)
    model.compile(
        optimizer=optimizer.build(total_steps),
        loss=loss,
        metrics=metrics,
        jit_compile=jit_compile,
    )
    return model
