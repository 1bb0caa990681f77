"""Figures of training runs, written to files (no display needed):
training and learning curves, loss against time, the confusion matrix.
`save` is how every figure of the toolkit is written."""

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
    return save(figure, path)


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
    return save(figure, path)


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
    return save(figure, path)


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
    return save(figure, path)


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
    return save(figure, path)


def _bits_axis(axis) -> None:
    ln2 = np.log(2.0)
    secondary = axis.secondary_yaxis(
        "right", functions=(lambda n: n / ln2, lambda b: b * ln2)
    )
    secondary.set_ylabel("bits per character")


def save(figure, path) -> pathlib.Path:
    """Lay out, write (120 dpi) and close `figure`; return the path."""
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
