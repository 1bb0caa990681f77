"""Figures of the gradient-flow lab: gradient norms through time, loss
curves of the long-range tasks, gradient statistics over training."""

from __future__ import annotations

import pathlib

import numpy as np

from toolkit.training.plots import plt, save


def gradient_norms_through_time(
    curves: dict[str, np.ndarray], path: str | pathlib.Path, title: str = ""
) -> pathlib.Path:
    """||dL/dh_t|| (or dL/dc_t) against timestep t, log scale, one line per
    model: `{label: (timesteps,) norms}`. Zeros (underflow) are left out."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, norms in curves.items():
        norms = np.asarray(norms, dtype=np.float64)
        steps = np.arange(1, norms.size + 1)
        keep = norms > 0
        axis.semilogy(steps[keep], norms[keep], label=label)
    axis.set_xlabel("timestep t (the loss is at the last one)")
    axis.set_ylabel("gradient norm")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    axis.set_title(title)
    return save(figure, path)


def loss_curves(
    curves: dict[str, list[float]],
    path: str | pathlib.Path,
    baseline: float | None = None,
    title: str = "",
    ylabel: str = "training loss",
    baseline_label: str = "predict the mean",
) -> pathlib.Path:
    """Loss per step for several runs (log scale), smoothed over 25 steps;
    non-finite values end a curve; `baseline` is a horizontal line."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        end = values.size if finite.all() else int(np.argmin(finite))
        window = min(25, max(end, 1))
        smooth = np.convolve(values[:end], np.ones(window) / window, "valid")
        axis.semilogy(
            np.arange(window, window + smooth.size), smooth, label=label
        )
    if baseline is not None:
        axis.axhline(
            baseline, color="gray", linestyle=":", label=baseline_label
        )
    axis.set_xlabel("training step")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    axis.set_title(title)
    return save(figure, path)


def gradient_stats_over_training(
    logs: dict[str, str | pathlib.Path],
    path: str | pathlib.Path,
    title: str = "",
) -> pathlib.Path:
    """Three panels from `diagnostics.GradientFlowLogger` CSVs, one line per
    run (`{label: csv_path}`): the gradient norm before clipping (log
    scale), the fraction of steps clipped so far, and the recurrent
    kernels' largest singular values."""
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    for index, (label, csv_path) in enumerate(logs.items()):
        rows = _read_csv(csv_path)
        color = f"C{index}"
        steps = rows["step"]
        axes[0].semilogy(steps, rows["gradient_norm"], color=color, label=label)
        axes[1].plot(steps, rows["clipped_fraction"], color=color)
        for layer, key in enumerate(k for k in rows if k.startswith("sv_")):
            axes[2].semilogy(
                steps,
                rows[key],
                color=color,
                linestyle=("-", "--", ":")[layer % 3],
            )
    axes[0].set_ylabel("gradient norm before clipping")
    axes[1].set_ylabel("fraction of steps clipped so far")
    axes[2].set_ylabel("largest singular value of W_h")
    for axis in axes:
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    return save(figure, path)


def _read_csv(path) -> dict[str, np.ndarray]:
    """A numeric CSV with a header as `{column: values}`."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No gradient-flow log at {path}.")
    table = np.atleast_1d(np.genfromtxt(path, delimiter=",", names=True))
    return {name: table[name] for name in table.dtype.names}
