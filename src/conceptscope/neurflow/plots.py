"""NeurFlow masking figure (paper Fig. 9 style), and the figure that stands for one that could not be drawn."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..runtime import save_figure  # noqa: E402

__all__ = ["plot_masking", "plot_status"]


def plot_masking(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """NeurFlow Fig. 9 style: per neuron group, the drop of the class probability when its neurons are
    zeroed, beside the mean (and std) drop for as many random neurons of the same layer."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(table) + 2), 3.4), dpi=110)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["drop"], 0.4, label="neuron group zeroed")
    ax.bar(x + 0.2, table["random_drop_mean"], 0.4, yerr=table["random_drop_std"], label="as many random neurons")
    ax.set_xticks(x, [f"{n}\n({k})" for n, k in zip(table["node"], table["n_neurons"], strict=True)], fontsize=7)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("drop of class probability")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_status(path: str | Path, *, title: str, status: str, reason: str = "") -> None:
    """A figure that says why there is nothing to draw (e.g. status ``no images`` and its reason)."""
    fig, ax = plt.subplots(figsize=(6.0, 2.4), dpi=110)
    ax.axis("off")
    ax.text(0.5, 0.62, status, ha="center", va="center", fontsize=16, fontweight="bold", color="#8a4b00")
    ax.text(0.5, 0.3, reason, ha="center", va="center", fontsize=8, wrap=True)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
