"""Gradient-flow lab: vanishing and exploding gradients in a vanilla RNN,
the LSTM's cell state, and gradient clipping, measured with the toolkit's
own layers.

    python recipes/gradient_flow.py              # preset quick, < 10 min
    python recipes/gradient_flow.py --preset=full
    python recipes/gradient_flow.py --help

Writes to `--run-dir`: config.json, results.json, report.md (tables),
gradient_norms.png, adding_T<T>.png, clipping.png.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import time

if __package__ in (None, ""):  # `python recipes/gradient_flow.py`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes import training_main  # noqa: E402
from recipes.configs.gradient_flow import (  # noqa: E402
    DEFAULT_PRESET,
    PRESETS,
    GradientFlowConfig,
)
from toolkit import config as config_lib  # noqa: E402


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


def label(run: dict) -> str:
    name = (
        "vanilla RNN"
        if run["cell"] == "vanilla"
        else (f"LSTM, forget bias {run['forget_bias']:g}")
    )
    clip = (
        "no clipping"
        if run["clipnorm"] is None
        else (f"clipnorm {run['clipnorm']:g}")
    )
    return f"{name} ({run['units']} units), {clip}"


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


def _baseline(run: dict) -> float:
    return run.get("baseline_mse", run.get("baseline_cross_entropy"))


def _test_value(run: dict) -> float:
    return run.get("test_mse", run.get("test_cross_entropy"))


def _format(value: float) -> str:
    return "diverged" if math.isnan(value) else f"{value:.4f}"


def _score(run: dict) -> str:
    return f"{_format(_test_value(run))} (baseline {_baseline(run):.4f})"


def run_lab(config: GradientFlowConfig, log=print) -> dict:
    from toolkit import long_range, plots

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
                loss_curves[label(run)] = run.pop("losses")
                flow_logs[label(run)] = flow_log
                results[task].append(run)
                log(
                    f"{task} T={timesteps}: {label(run)}: test "
                    f"{_score(run)} ({run['seconds']:.0f} s)"
                )
            baseline = _baseline(results[task][-1])
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
                clip_curves[label(run)] = losses
                clip_logs[label(run)] = flow_log
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
    (run_dir / "report.md").write_text(report(config, results))
    results["report"] = str(run_dir / "report.md")
    return results


def _task_table(title, runs, measure, baseline) -> list[str]:
    lines = [
        "",
        f"## {title} ({measure}; {baseline}; solved = under half the baseline)",
        "",
        "| T | model | params | test | baseline | test / baseline | solved "
        "| clipped steps |",
        "|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['timesteps']} | {label(run)} | {run['parameters']:,} | "
            f"{_format(_test_value(run))} | "
            f"{_baseline(run):.4f} | "
            f"{_test_value(run) / _baseline(run):.2f} | "
            f"{'yes' if run['beats_baseline'] else 'no'} | "
            f"{run['clipped_fraction']:.0%} |"
        )
    return lines


def report(config: GradientFlowConfig, results: dict) -> str:
    lines = [
        "# Gradient-flow lab",
        "",
        f"## Gradient norms at initialisation (T = {config.scaling_timesteps})",
        "",
        "| model: gradient | at t = 1 | at t = T | first / last |",
        "|---|---:|---:|---:|",
    ]
    for name, row in results["scaling"].items():
        lines.append(
            f"| {name} | {row['first']:.3g} | {row['last']:.3g} | "
            f"{row['first_over_last']:.3g} |"
        )
    lines += _task_table(
        "Adding problem",
        results["adding"],
        "test MSE",
        f"predicting the mean scores {1 / 6:.4f}",
    )
    lines += _task_table(
        "Copy memory",
        results["copy"],
        "test cross-entropy, nats per step",
        "the memoryless model scores 10 ln 8 / (T + 20)",
    )
    lines += [
        "",
        f"## Clipping (vanilla RNN, sigma_max(W_h) = "
        f"{config.clip_singular_value:g}, SGD {config.clip_learning_rate:g}"
        f", {config.clip_steps} steps, T = {config.clip_timesteps})",
        "",
        "| clipping | runs | diverged (NaN) | mean clipped steps |",
        "|---|---:|---:|---:|",
    ]
    for clipnorm in (None, config.clipnorm):
        runs = [r for r in results["clipping"] if r["clipnorm"] == clipnorm]
        name = "none" if clipnorm is None else f"clipnorm {clipnorm:g}"
        diverged = sum(r["diverged"] for r in runs)
        clipped = sum(r["clipped_fraction"] for r in runs) / len(runs)
        lines.append(f"| {name} | {len(runs)} | {diverged} | {clipped:.0%} |")
    lines += ["", f"Total {results['seconds']:.0f} s.", ""]
    return "\n".join(lines)


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
