"""Matplotlib figures of the suite.

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
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ["plot_input_size", "plot_nap_counts", "plot_training"]


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
    fig.savefig(path, dpi=120)
    plt.close(fig)


_METHOD_ORDER = ("none", "max", "min_max", "mean", "mean_std")


def plot_nap_counts(table: pd.DataFrame, path: str | Path) -> None:
    """Paper Fig. 6: grouped bars of NAP count per layer (x, probed order) and disentanglement."""
    import numpy as np

    layers = list(dict.fromkeys(table.sort_values("depth")["layer"]))
    methods = [m for m in _METHOD_ORDER if m in set(table["method"])]
    counts = table.pivot_table(index="layer", columns="method", values="n_naps").reindex(index=layers, columns=methods)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(layers) + 2), 3.4), constrained_layout=True)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(layers))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, counts[m].to_numpy(), width, label=m)
    ax.set_xticks(x, layers, rotation=30, ha="right")
    ax.set(
        ylabel="number of NAPs",
        title=f"{table['model'].iloc[0]}: NAPs per layer and disentanglement ({int(table['n_inputs'].iloc[0])} inputs)",
    )
    ax.legend(fontsize=8, ncols=min(len(methods), 5))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_input_size(table: pd.DataFrame, path: str | Path) -> None:
    """Paper Fig. 8: NAP count against the number of inputs, one panel per layer, a line per split."""
    layers = list(dict.fromkeys(table["layer"]))
    fig, axes = plt.subplots(
        1, len(layers), figsize=(2.6 * len(layers) + 0.6, 2.8), squeeze=False, constrained_layout=True
    )
    for ax, layer in zip(axes[0], layers, strict=True):
        part = table[table["layer"] == layer]
        for split, g in part.groupby("split"):
            ax.plot(g["size"], g["n_naps"], marker="o", label=split)
        ax.set(title=layer, xlabel="inputs")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("number of NAPs")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{table['model'].iloc[0]}: NAPs vs. number of inputs ({table['method'].iloc[0]})", fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    fig.savefig(path)
    plt.close(fig)
