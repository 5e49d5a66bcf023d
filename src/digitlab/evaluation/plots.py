"""PNG figures for reports: confusion matrix, misclassified digits, training curves."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only backend, imported on first use: importing it
    is half of the `digitlab` command's start-up time, and most commands draw nothing."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def confusion_png(cm: npt.NDArray[np.int64], path: Path, *, title: str = "") -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log colour scale: the diagonal is ~1000x the errors, which a linear scale hides.
    shown = np.log1p(cm)
    im = ax.imshow(shown, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                colour = "white" if shown[i, j] > shown.max() / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10))
    ax.set_title(f"Confusion matrix {title}", fontsize=9)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def misclassified_png(
    images: npt.NDArray[np.uint8],
    true: npt.NDArray[np.uint8],
    predicted: npt.NDArray[np.int64],
    confidence: npt.NDArray[np.float32],
    path: Path,
    *,
    limit: int = 100,
) -> None:
    plt = pyplot()
    n = min(limit, len(images))
    cols = 10
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.3), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{true[k]}→{predicted[k]} {confidence[k]:.0%}", fontsize=7)
    fig.suptitle(
        f"Misclassified test digits (true→predicted, confidence), {n} of {len(images)}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_png(history: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Loss and accuracy per epoch, train and validation; one line per ensemble member."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    members = sorted({row.get("member", 0) for row in history})
    for member in members:
        rows = [row for row in history if row.get("member", 0) == member]
        suffix = f" (member {member + 1})" if len(members) > 1 else ""
        epochs = [row["epoch"] for row in rows]
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, name in (("train", "train"), ("val", "validation")):
                key = f"{split}_{metric}"
                if rows and key in rows[0]:
                    ax.plot(epochs, [r[key] for r in rows], marker="o", label=name + suffix)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.get_lines():  # a card without a history (e.g. a test fixture) has no curves
            ax.legend(fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.suptitle(f"Training curves {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def validation_curves_png(
    curves: dict[str, list[dict[str, Any]]], path: Path, *, title: str = ""
) -> None:
    """Validation loss and accuracy per epoch, one line per run (and per ensemble member),
    overlaid so runs can be compared; `curves` maps a label to its history rows."""
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    seen: set[int] = set()
    for label, history in curves.items():
        members = sorted({row.get("member", 0) for row in history})
        for member in members:
            rows = [
                r for r in history if r.get("member", 0) == member and r.get("val_acc") is not None
            ]
            if not rows:
                continue
            name = label if len(members) == 1 else f"{label} (member {member + 1})"
            epochs = [r["epoch"] for r in rows]
            seen.update(epochs)
            (line,) = ax_acc.plot(epochs, [r["val_acc"] for r in rows], marker="o", label=name)
            ax_loss.plot(epochs, [r["val_loss"] for r in rows], marker="o", color=line.get_color())
    ax_loss.set(xlabel="epoch", ylabel="validation loss", title="Validation loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if len(seen) <= 20:  # whole epochs, also when there is only one
            ax.set_xticks(sorted(seen))
    if ax_acc.get_legend_handles_labels()[0]:
        ax_acc.legend(fontsize=7)
    fig.suptitle(f"Validation curves {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
