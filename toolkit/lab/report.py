"""The gradient-flow lab's report: `report.md`'s tables, from the results
`recipes/gradient_flow.py` collects (`toolkit.lab.long_range` runs the
experiments)."""

from __future__ import annotations

import math


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


def baseline_value(run: dict) -> float:
    return run.get("baseline_mse", run.get("baseline_cross_entropy"))


def test_value(run: dict) -> float:
    return run.get("test_mse", run.get("test_cross_entropy"))


def format_value(value: float) -> str:
    return "diverged" if math.isnan(value) else f"{value:.4f}"


def score(run: dict) -> str:
    return (
        f"{format_value(test_value(run))} (baseline {baseline_value(run):.4f})"
    )


def task_table(title, runs, measure, baseline) -> list[str]:
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
            f"{format_value(test_value(run))} | "
            f"{baseline_value(run):.4f} | "
            f"{test_value(run) / baseline_value(run):.2f} | "
            f"{'yes' if run['beats_baseline'] else 'no'} | "
            f"{run['clipped_fraction']:.0%} |"
        )
    return lines


def report(config, results: dict) -> str:
    """`report.md`: gradient norms at initialisation, the adding and copy
    tasks, clipping. `config` is the lab's `GradientFlowConfig`."""
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
    lines += task_table(
        "Adding problem",
        results["adding"],
        "test MSE",
        f"predicting the mean scores {1 / 6:.4f}",
    )
    lines += task_table(
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
