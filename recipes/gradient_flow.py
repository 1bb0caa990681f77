"""Gradient-flow lab: how gradients vanish, explode, and flow in an LSTM.

Vanishing and exploding gradients in a vanilla RNN, the LSTM's cell state,
and gradient clipping, measured with the toolkit's own layers.

    python recipes/gradient_flow.py              # preset quick, < 10 min
    python recipes/gradient_flow.py --preset=full
    python recipes/gradient_flow.py --help

Writes to `--run-dir`: config.json, results.json, report.md (tables),
gradient_norms.png, adding_T<T>.png, clipping.png.
"""

from __future__ import annotations

import json
import sys
import time

if __package__ in (None, ""):  # `python recipes/gradient_flow.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

from recipes import training_main  # noqa: E402
from recipes.configs.gradient_flow import (  # noqa: E402
    DEFAULT_PRESET,
    PRESETS,
    GradientFlowConfig,
)
from toolkit.training import config as config_lib  # noqa: E402


def adding_variants(config: GradientFlowConfig) -> list[dict]:
    """The models compared on the adding problem."""
    variants = [
        dict(
            cell="vanilla",
            units=config.vanilla_units,
            learning_rate=config.vanilla_learning_rate,
            forget_bias=1.0,
        ),
        dict(
            cell="lstm",
            units=config.lstm_units,
            learning_rate=config.lstm_learning_rate,
            forget_bias=1.0,
        ),
        dict(
            cell="lstm",
            units=config.lstm_units,
            learning_rate=config.lstm_learning_rate,
            forget_bias=0.0,
        ),
    ]
    clips = [config.clipnorm] + ([None] if config.unclipped_variants else [])
    return [dict(v, clipnorm=c) for c in clips for v in variants]


TASK_NAMES = {"adding": "Adding problem", "copy": "Copy memory"}
BASELINE_LABELS = {
    "adding": "predict the mean",
    "copy": "memoryless: 10 ln 8 / (T + 20)",
}


def slug(variant: dict) -> str:
    """A file-name-safe name for a variant, e.g. `lstm_fb1_clip1`."""
    name = variant["cell"]
    if variant["cell"] == "lstm":
        name += f"_fb{variant['forget_bias']:g}"
    clip = variant["clipnorm"]
    return name + ("_noclip" if clip is None else f"_clip{clip:g}")


def run_lab(config: GradientFlowConfig, log=print) -> dict:
    from toolkit.lab import long_range, plots
    from toolkit.lab import report as lab_report

    start = time.perf_counter()
    run_dir = config_lib.prepare_run_dir(config, config.run_dir)
    results = {}

    curves = long_range.norms_at_initialisation(
        config.scaling_timesteps,
        config.scaling_units,
        config.singular_values,
        config.forget_biases,
        seed=config.seed,
    )
    plots.gradient_norms_through_time(
        curves,
        run_dir / "gradient_norms.png",
        title="gradient norms at initialisation, T = "
        f"{config.scaling_timesteps}",
    )
    results["scaling"] = {
        name: {
            "first": float(norms[0]),
            "last": float(norms[-1]),
            "first_over_last": float(norms[0] / norms[-1]),
        }
        for name, norms in curves.items()
    }
    log(f"Scaling experiment done ({time.perf_counter() - start:.0f} s)")

    flow_dir = run_dir / "gradient_flow_logs"
    flow_dir.mkdir(exist_ok=True)
    tasks = (
        ("adding", config.adding_timesteps, config.adding_steps),
        ("copy", config.copy_timesteps, config.copy_steps),
    )
    for task, timesteps_grid, steps in tasks:
        results[task] = []
        train = getattr(long_range, f"train_{task}")
        for timesteps in timesteps_grid:
            loss_curves, flow_logs = {}, {}
            for variant in adding_variants(config):
                flow_log = flow_dir / f"{task}_T{timesteps}_{slug(variant)}.csv"
                flow_log.unlink(missing_ok=True)
                run = train(
                    timesteps=timesteps,
                    steps=steps,
                    seed=config.seed,
                    flow_log=flow_log,
                    flow_every=max(1, steps // 100),
                    **variant,
                )
                loss_curves[lab_report.label(run)] = run.pop("losses")
                flow_logs[lab_report.label(run)] = flow_log
                results[task].append(run)
                log(
                    f"{task} T={timesteps}: {lab_report.label(run)}: test "
                    f"{lab_report.score(run)} ({run['seconds']:.0f} s)"
                )
            baseline = lab_report.baseline_value(results[task][-1])
            plots.loss_curves(
                loss_curves,
                run_dir / f"{task}_T{timesteps}.png",
                baseline=baseline,
                baseline_label=BASELINE_LABELS[task],
                title=f"{TASK_NAMES[task]}, T = {timesteps}",
            )
            plots.gradient_stats_over_training(
                flow_logs,
                run_dir / f"{task}_T{timesteps}_gradients.png",
                title=f"{TASK_NAMES[task]}, T = {timesteps}: gradients "
                "during training",
            )

    results["clipping"] = []
    clip_curves, clip_logs = {}, {}
    for clipnorm in (None, config.clipnorm):
        for seed in range(config.clip_seeds):
            flow_log = None
            if seed == 0:
                flow_log = flow_dir / f"clipping_{clipnorm}.csv"
                flow_log.unlink(missing_ok=True)
            run = long_range.train_adding(
                "vanilla",
                config.vanilla_units,
                config.clip_timesteps,
                config.clip_steps,
                config.clip_learning_rate,
                clipnorm,
                optimizer="sgd",
                seed=seed,
                recurrent_singular_value=config.clip_singular_value,
                flow_log=flow_log,
                flow_every=max(1, config.clip_steps // 100),
            )
            losses = run.pop("losses")
            if seed == 0:
                clip_curves[lab_report.label(run)] = losses
                clip_logs[lab_report.label(run)] = flow_log
            results["clipping"].append(run)
            log(
                f"clipping {clipnorm}, seed {seed}: diverged "
                f"{run['diverged']}, clipped {run['clipped_fraction']:.0%}"
            )
    clip_title = (
        f"Vanilla RNN, sigma_max(W_h) = {config.clip_singular_value:g}"
        f", SGD {config.clip_learning_rate:g}"
    )
    plots.loss_curves(clip_curves, run_dir / "clipping.png", title=clip_title)
    plots.gradient_stats_over_training(
        clip_logs, run_dir / "clipping_gradients.png", title=clip_title
    )
    results["seconds"] = time.perf_counter() - start
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "report.md").write_text(lab_report.report(config, results))
    results["report"] = str(run_dir / "report.md")
    return results


def summary(results: dict) -> str:
    return f"Report: {results['report']} ({results['seconds']:.0f} s)"


def main(argv=None) -> int:
    return training_main.run(
        __doc__,
        PRESETS,
        GradientFlowConfig,
        run_lab,
        summary,
        argv,
        default_preset=DEFAULT_PRESET,
    )


if __name__ == "__main__":
    sys.exit(main())
