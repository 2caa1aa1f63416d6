"""NAP count figures: paper Fig. 6 (per layer and disentanglement) and Fig. 8 (against the number of inputs)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..runtime import save_figure  # noqa: E402

__all__ = ["plot_input_size", "plot_nap_counts"]

_METHOD_ORDER = ("none", "max", "min_max", "mean", "mean_std")


def plot_nap_counts(table: pd.DataFrame, path: str | Path) -> None:
    """Paper Fig. 6: grouped bars of NAP count per layer (x, probed order) and disentanglement."""
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
    save_figure(fig, path, dpi=120)
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
    save_figure(fig, path, dpi=120)
    plt.close(fig)
