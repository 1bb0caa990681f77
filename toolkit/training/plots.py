"""Matplotlib figures written to files (no display needed)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def training_curves(
    history: list[dict],
    path: str | pathlib.Path,
    title: str = "",
    best_epoch: int | None = None,
) -> pathlib.Path:
    """Loss and accuracy per epoch, train and validation, from the rows of
    `history.csv`; `best_epoch` (1-based) is marked."""
    epochs = [int(row["epoch"]) + 1 for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, style in (("", "o-"), ("val_", "s--")):
            key = prefix + metric
            if history and key in history[0]:
                axis.plot(
                    epochs,
                    [row[key] for row in history],
                    style,
                    label="validation" if prefix else "train",
                )
        if best_epoch is not None:
            axis.axvline(
                best_epoch,
                color="gray",
                linestyle=":",
                label=f"best (epoch {best_epoch})",
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_xticks(epochs)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return _save(figure, path)


def confusion_matrix(
    matrix,
    path: str | pathlib.Path,
    labels=("negative", "positive"),
    title: str = "",
) -> pathlib.Path:
    """A 2x2 (or nxn) confusion matrix with counts and row percentages."""
    matrix = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.imshow(matrix, cmap="Blues")
    totals = matrix.sum(axis=1, keepdims=True)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            share = matrix[i, j] / max(totals[i, 0], 1)
            axis.text(
                j,
                i,
                f"{matrix[i, j]:,}\n{share:.1%}",
                ha="center",
                va="center",
                color="white" if share > 0.5 else "black",
            )
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    return _save(figure, path)


def char_lm_curves(
    history: list[dict], path: str | pathlib.Path, title: str = ""
) -> pathlib.Path:
    """A character LM's cross-entropy (nats per character; bits on the
    right axis) per epoch and against training time, from `history.csv`
    rows with `loss`, `val_loss` and `train_seconds`."""
    epochs = [int(row["epoch"]) + 1 for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, xs, xlabel in (
        (axes[0], epochs, "epoch"),
        (
            axes[1],
            [row.get("train_seconds", np.nan) for row in history],
            "training time (s)",
        ),
    ):
        for key, style, label in (
            ("loss", "o-", "train (running mean over the epoch)"),
            ("val_loss", "s--", "validation (whole split)"),
        ):
            if history and key in history[0]:
                axis.plot(xs, [row[key] for row in history], style, label=label)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("nats per character")
        _bits_axis(axis)
        axis.grid(alpha=0.3)
        axis.legend()
    axes[0].set_xticks(epochs)
    figure.suptitle(title)
    return _save(figure, path)


def word_lm_curves(
    history: list[dict], path: str | pathlib.Path, title: str = ""
) -> pathlib.Path:
    """A word LM's pretraining per epoch, from `history.csv` rows: the
    held-out perplexity (full softmax, whole held-out set) on the left, the
    training loss (sampled softmax, running mean over the epoch) and the
    held-out cross-entropy in nats per word on the right."""
    epochs = [int(row["epoch"]) + 1 for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(
        epochs,
        [row["val_perplexity"] for row in history],
        "s--",
        label="held-out",
    )
    axes[0].set_ylabel("perplexity (full softmax)")
    for key, style, label in (
        ("loss", "o-", "train (sampled softmax)"),
        ("val_loss", "s--", "held-out (full softmax)"),
    ):
        axes[1].plot(epochs, [row[key] for row in history], style, label=label)
    axes[1].set_ylabel("nats per word")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.set_xticks(epochs)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    return _save(figure, path)


def loss_vs_time(
    curves: dict[str, tuple[list[float], list[float]]],
    path: str | pathlib.Path,
    points: dict[str, tuple[float, float]] | None = None,
    target: float | None = None,
    title: str = "",
) -> pathlib.Path:
    """Validation loss against training time for several runs.

    Args:
        curves: `{label: (seconds, nats_per_char)}`, drawn as lines.
        points: `{label: (seconds, nats_per_char)}`, published single
            results, drawn as markers.
        target: a horizontal line at this loss.
    """
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, (seconds, losses) in curves.items():
        axis.plot(seconds, losses, "o-", label=label)
    for label, (seconds, loss) in (points or {}).items():
        axis.plot([seconds], [loss], "*", markersize=14, label=label)
    if target is not None:
        axis.axhline(
            target, color="gray", linestyle=":", label=f"target {target}"
        )
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("validation nats per character")
    _bits_axis(axis)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    return _save(figure, path)


def _bits_axis(axis) -> None:
    ln2 = np.log(2.0)
    secondary = axis.secondary_yaxis(
        "right", functions=(lambda n: n / ln2, lambda b: b * ln2)
    )
    secondary.set_ylabel("bits per character")


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
    return _save(figure, path)


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
    return _save(figure, path)


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
    return _save(figure, path)


def _read_csv(path) -> dict[str, np.ndarray]:
    """A numeric CSV with a header as `{column: values}`."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No gradient-flow log at {path}.")
    table = np.atleast_1d(np.genfromtxt(path, delimiter=",", names=True))
    return {name: table[name] for name in table.dtype.names}


def _save(figure, path) -> pathlib.Path:
    """Lay out, write (120 dpi) and close `figure`; return the path."""
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
