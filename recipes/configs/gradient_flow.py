"""Presets for `recipes/gradient_flow.py`; every field is a `--key=value`
option."""

from __future__ import annotations

import dataclasses

from toolkit.training.config import require


@dataclasses.dataclass(frozen=True)
class GradientFlowConfig:
    # Gradient norms at initialisation over `scaling_timesteps` steps.
    scaling_timesteps: int = 200
    scaling_units: int = 64  # width of the layers measured at initialisation
    # Vanilla RNN: W_h's largest singular value, each run.
    singular_values: tuple[float, ...] = (0.5, 0.9, 1.0, 1.1, 1.5)
    # LSTM: forget-gate bias initial values, each run.
    forget_biases: tuple[float, ...] = (0.0, 1.0)
    # The adding problem: equal parameter budgets (about 4,400 each).
    adding_timesteps: tuple[int, ...] = (50, 100, 200)
    lstm_units: int = 32  # LSTM width (adding and copy tasks)
    vanilla_units: int = 64  # vanilla RNN width (adding and copy tasks)
    adding_steps: int = 1200  # Adam steps of batch 64, fresh data
    lstm_learning_rate: float = 1e-2  # Adam rate for the LSTM
    vanilla_learning_rate: float = 1e-3  # Adam rate for the vanilla RNN
    clipnorm: float = 1.0  # gradient-norm clipping of the trained models
    # The copy-memory task, same models (inputs one-hot, 10 symbols).
    copy_timesteps: tuple[int, ...] = (20, 50)
    copy_steps: int = 3000  # Adam steps per copy-memory model
    unclipped_variants: bool = False  # also train every model unclipped
    # Clipping: a vanilla RNN with large recurrent weights, plain SGD.
    clip_seeds: int = 3
    clip_singular_value: float = 3.0  # W_h's largest singular value (explodes)
    clip_learning_rate: float = 0.05  # SGD rate, with and without clipping
    clip_steps: int = 300  # SGD steps per clipping run
    clip_timesteps: int = 50  # sequence length of the clipping runs
    seed: int = 0  # weights and data
    # Where the report, plots and metrics go.
    run_dir: str = "runs/gradient_flow"

    def validate(self) -> None:
        for key in (
            "scaling_timesteps",
            "scaling_units",
            "lstm_units",
            "vanilla_units",
            "adding_steps",
            "copy_steps",
            "clip_seeds",
            "clip_steps",
            "clip_timesteps",
        ):
            value = getattr(self, key)
            require(value > 0, key, "a positive integer", value)
        require(
            all(t >= 2 for t in self.adding_timesteps)
            and self.adding_timesteps,
            "adding_timesteps",
            "integers of 2 or more",
            self.adding_timesteps,
        )
        require(
            all(t >= 1 for t in self.copy_timesteps),
            "copy_timesteps",
            "positive integers",
            self.copy_timesteps,
        )
        require(
            all(v > 0 for v in self.singular_values),
            "singular_values",
            "positive",
            self.singular_values,
        )
        require(self.clipnorm > 0, "clipnorm", "positive", self.clipnorm)


PRESETS = {
    # Under 10 minutes on 2 CPU cores.
    "quick": GradientFlowConfig(),
    # The whole grid: T up to 400, every model also unclipped.
    "full": GradientFlowConfig(
        adding_timesteps=(20, 50, 100, 200, 400),
        adding_steps=3000,
        copy_timesteps=(20, 50, 100, 200, 400),
        copy_steps=6000,
        unclipped_variants=True,
        clip_seeds=5,
        run_dir="runs/gradient_flow_full",
    ),
}
DEFAULT_PRESET = "quick"
