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
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


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
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
