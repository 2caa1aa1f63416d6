"""The foundation's figure: a model's training curve. Each paper draws its own figures in its package.

Paper figures are named after the figure they reproduce:
``results/figures/<paper>/<figure-id>_<what>.{png,csv}``; every PNG has the
CSV of the numbers drawn beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .runtime import save_figure  # noqa: E402

__all__ = ["plot_training"]


def plot_training(history: pd.DataFrame, metrics: Mapping[str, Any], path: str | Path) -> None:
    """Loss and accuracy per epoch, with the final train / test accuracy in the title."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    if len(history):
        ax_loss.plot(history["epoch"], history["train_loss"], marker="o")
        ax_acc.plot(history["epoch"], history["train_acc_running"], marker="o", label="train (running)")
        ax_acc.plot(history["epoch"], history["test_acc"], marker="s", label=f"{metrics['eval_split']}")
        ax_acc.legend(loc="lower right")
    else:
        for ax in (ax_loss, ax_acc):
            ax.text(0.5, 0.5, "not trained here", ha="center", va="center", transform=ax.transAxes)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    fig.suptitle(
        f"{metrics['model']} ({metrics['spec']}) on {metrics['dataset']}: "
        f"train {fmt(metrics['train_accuracy'])}, {metrics['eval_split']} {fmt(metrics['test_accuracy'])}",
        fontsize=9,
    )
    save_figure(fig, path, dpi=120)
    plt.close(fig)
