"""NeurFlow evaluation figures (Cao et al., ICLR 2025): Figs. 4, 5, 6, 10, 11, 12, 16, 17, 18 and Tables 3-5.

One function per figure or table, each ``(table, path, *, title="") -> None``
writing a PNG (matplotlib Agg, like :mod:`.plots`), from the tables the claim
rules of :mod:`.eval_claims` read. The plots show what the rules judge: an
undefined Pearson r (NaN) is drawn as 0 (no correlation), as the rules count
it; NaN accuracies and losses are left out; a table with nothing left to draw
gives a figure that says so instead of raising.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..runtime import save_figure  # noqa: E402
from .eval_claims import IG, PAIRS, PAPER_F1, PAPER_SECONDS, _paper_name, optimality_cells  # noqa: E402

__all__ = [
    "plot_correlation",
    "plot_crops",
    "plot_extended",
    "plot_fidelity",
    "plot_k_ablation",
    "plot_l2",
    "plot_methods",
    "plot_optimality",
    "plot_overlaps",
    "plot_sum_mean",
    "plot_timing",
]

_R_LABEL = "mean Pearson r (undefined r as 0)"


def _save(fig, path: str | Path, title: str) -> None:
    width = max(40, int(fig.get_size_inches()[0] * 14))  # characters that fit the figure at 9 pt
    fig.suptitle(textwrap.fill(title, width), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _no_data(path: str | Path, title: str, what: str) -> None:
    """A figure that says there is nothing to draw."""
    fig, ax = plt.subplots(figsize=(5.0, 2.0), dpi=110)
    ax.axis("off")
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", fontsize=10)
    _save(fig, path, title)


def _grid(n: int, *, width: float = 3.4, height: float = 2.8, max_cols: int = 4):
    """``n`` panels in rows of at most ``max_cols``; returns the figure and a flat list of the used axes."""
    cols = max(1, min(n, max_cols))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=110, squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _numeric(rows: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(rows[column], errors="coerce").astype(np.float64)


def _r0(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with r numeric and an undefined r counted as 0."""
    return rows.assign(r=_numeric(rows, "r").fillna(0.0))


def _accuracy(rows: pd.DataFrame, by: list[str]) -> pd.Series:
    """Mean relative accuracy per ``by``: each class's mean over draws, then over classes; NaN rows left out."""
    rows = rows.assign(relative_accuracy=_numeric(rows, "relative_accuracy"))
    rows = rows[np.isfinite(rows["relative_accuracy"])]
    per_class = rows.groupby(by + ["class_index"], sort=True)["relative_accuracy"].mean()
    return per_class.groupby(level=list(range(len(by)))).mean()


def plot_optimality(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 4: per tau, the mean of L_random - L_core per layer with its 99 % t interval (NF-1's cells).

    ``table``: the optimality table (model, layer, class_index, target, tau, kind, draw, loss). A bar above 0
    means random subsets knock the concept out less than the core set.
    """
    cells = optimality_cells(table) if len(table) else pd.DataFrame()
    cells = cells[np.isfinite(cells["mean"])] if len(cells) else cells
    if cells.empty:
        return _no_data(path, title, "no core / random loss pairs")
    taus = sorted(cells["tau"].unique())
    fig, axes = _grid(len(taus))
    for ax, tau in zip(axes, taus, strict=True):
        c = cells[cells["tau"] == tau]
        x = np.arange(len(c))
        low = np.nan_to_num(c["mean"] - c["ci_low"], nan=0.0)
        high = np.nan_to_num(c["ci_high"] - c["mean"], nan=0.0)
        ax.bar(x, c["mean"], 0.6, yerr=np.vstack([low, high]), capsize=3, color="#4c72b0")
        ax.set_xticks(x, [f"{m}\n{lay}" for m, lay in zip(c["model"], c["layer"], strict=True)], fontsize=7)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"tau = {tau}", fontsize=8)
        ax.set_ylabel("mean L_random - L_core (99 % CI)", fontsize=7)
    _save(fig, path, title)


def plot_fidelity(
    table: pd.DataFrame, path: str | Path, *, taus: tuple[int, ...] = (4, 8, 16), title: str = ""
) -> None:
    """Figs. 5 and 16: relative accuracy vs tau when masking (left) or retaining (right) core or random neurons.

    ``table``: the fidelity table (model, class_index, tau, scope, layer, mode, set, draw, relative_accuracy);
    only the rows with tau in ``taus`` (Fig. 5: (4, 8, 16); Fig. 16: every tau). One row of panels per scope
    (single layer, multi: from the classifier down to the layer); per layer a solid line for the core set and a
    dashed one of the same colour for random neurons.
    """
    rows = table[table["tau"].isin(taus) & table["set"].isin(["core", "random"])] if len(table) else table
    means = _accuracy(rows, ["scope", "mode", "model", "layer", "set", "tau"]) if len(rows) else pd.Series()
    if means.empty:
        return _no_data(path, title, f"no fidelity rows with tau in {list(taus)}")
    scopes = [s for s in ("single", "multi") if s in means.index.get_level_values("scope")]
    fig, axes = plt.subplots(len(scopes), 2, figsize=(8.0, 3.0 * len(scopes)), dpi=110, squeeze=False)
    lines = means.index.droplevel(["scope", "mode", "set", "tau"]).unique()
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(lines)}
    for i, scope in enumerate(scopes):
        for j, mode in enumerate(("mask", "retain")):
            ax = axes[i][j]
            for (sc, mo, model, layer, kind), series in means.groupby(level=[0, 1, 2, 3, 4]):
                if (sc, mo) != (scope, mode):
                    continue
                x = series.index.get_level_values("tau")
                style = "-" if kind == "core" else "--"
                label = f"{model}/{layer} {kind}"
                ax.plot(x, series.to_numpy(), style, marker="o", ms=3, color=colours[(model, layer)], label=label)
            ax.set_title(f"{scope}, {mode}", fontsize=8)
            ax.set_xlabel("tau", fontsize=7)
            ax.set_ylabel("relative accuracy", fontsize=7)
            if ax.lines:
                ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_extended(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 17: relative accuracy vs tau when retaining the core set (solid) or core plus extra neurons (dashed).

    ``table``: the fidelity table; rows mode retain, set core or extended. One panel per scope.
    """
    rows = table[(table["mode"] == "retain") & table["set"].isin(["core", "extended"])] if len(table) else table
    means = _accuracy(rows, ["scope", "model", "layer", "set", "tau"]) if len(rows) else pd.Series()
    if means.empty:
        return _no_data(path, title, "no retained core / extended rows")
    scopes = [s for s in ("single", "multi") if s in means.index.get_level_values("scope")]
    fig, axes = _grid(len(scopes), width=4.0)
    lines = means.index.droplevel(["scope", "set", "tau"]).unique()
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(lines)}
    for ax, scope in zip(axes, scopes, strict=True):
        for (model, layer, kind), series in means[scope].groupby(level=[0, 1, 2]):
            x = series.index.get_level_values("tau")
            style = "-" if kind == "core" else "--"
            ax.plot(x, series.to_numpy(), style, marker="o", ms=3, color=colours[(model, layer)])
            ax.lines[-1].set_label(f"{model}/{layer} {kind}")
        ax.set_title(f"{scope}, retain", fontsize=8)
        ax.set_xlabel("tau", fontsize=7)
        ax.set_ylabel("relative accuracy", fontsize=7)
        ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_correlation(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 6: mean r between a subset's summed |IG| and its knock-out loss vs subset size, one line per layer.

    ``table``: the fig11 table; rows method integrated_gradients, aggregate sum, size > 0. The dotted line is
    NF-3's bar at size 1 (r = -0.6).
    """
    keep = (table["method"] == IG) & (table["aggregate"] == "sum") & (table["size"] > 0) if len(table) else []
    rows = table[keep] if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no integrated_gradients rows with size > 0")
    means = _r0(rows).groupby(["model", "layer", "size"], sort=True)["r"].mean()
    fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=110)
    for (model, layer), series in means.groupby(level=[0, 1]):
        ax.plot(series.index.get_level_values("size"), series.to_numpy(), marker="o", ms=3, label=f"{model}/{layer}")
    ax.axhline(-0.6, color="grey", ls=":", lw=0.8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("subset size", fontsize=8)
    ax.set_ylabel(_R_LABEL, fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_methods(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 11: mean r vs subset size per attribution method, one panel per (model, layer).

    ``table``: the fig11 table; rows aggregate sum, size > 0.
    """
    rows = table[(table["aggregate"] == "sum") & (table["size"] > 0)] if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no rows with aggregate sum and size > 0")
    means = _r0(rows).groupby(["model", "layer", "method", "size"], sort=True)["r"].mean()
    panels = list(means.index.droplevel(["method", "size"]).unique())
    fig, axes = _grid(len(panels), width=4.6)
    for ax, (model, layer) in zip(axes, panels, strict=True):
        for method, series in means[(model, layer)].groupby(level="method"):
            sizes = series.index.get_level_values("size")
            control = method in ("subset_size", "random")  # control scores: dashed grey
            style = {"color": "grey", "ls": "--"} if control else {}
            lw = 2.4 if method == IG else 1.0
            ax.plot(sizes, series.to_numpy(), marker="o", ms=3, lw=lw, label=method, alpha=0.85, **style)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"{model}/{layer}", fontsize=8)
        ax.set_xlabel("subset size", fontsize=7)
        ax.set_ylabel(_R_LABEL, fontsize=7)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    _save(fig, path, title)


def plot_timing(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 10: CPU seconds per target neuron per method, ours (per model) beside the paper's, log scale.

    ``table``: the fig10 table (model, method, cpu_seconds_per_target, ...). Methods that did not run (NaN or
    non-positive seconds) have no bar of ours.
    """
    if table.empty:
        return _no_data(path, title, "no timing rows")
    methods = [m for m in PAPER_SECONDS if m in set(table["method"])]
    methods += sorted(set(table["method"]) - set(methods))
    models = list(dict.fromkeys(table["model"]))
    width = 0.8 / (len(models) + 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(methods) + 2), 3.4), dpi=110)
    x = np.arange(len(methods))
    for i, model in enumerate(models):
        mine = table[table["model"] == model].groupby("method")["cpu_seconds_per_target"].mean()
        ours = np.array([float(mine.get(m, np.nan)) for m in methods])
        ours = np.where(np.isfinite(ours) & (ours > 0), ours, np.nan)
        ax.bar(x + i * width, ours, width, label=f"ours, {model}")
    paper = [PAPER_SECONDS.get(m, np.nan) for m in methods]
    ax.bar(x + len(models) * width, paper, width, color="#999999", hatch="//", label="paper (GoogLeNet)")
    ax.set_yscale("log")
    ax.set_xticks(x + 0.4 - width / 2, methods, fontsize=7, rotation=20)
    ax.set_ylabel("CPU seconds per target", fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_sum_mean(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 12: mean r of the summed vs the averaged |IG| over all subset sizes, per layer.

    ``table``: the fig11 table; rows method integrated_gradients, size 0, aggregate sum or mean.
    """
    keep = (table["method"] == IG) & (table["size"] == 0) if len(table) else []
    rows = table[keep] if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no integrated_gradients rows with size 0")
    means = _r0(rows).groupby(["model", "layer", "aggregate"], sort=False)["r"].mean().unstack("aggregate")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(means) + 2), 3.2), dpi=110)
    x = np.arange(len(means))
    for offset, agg in ((-0.2, "sum"), (0.2, "mean")):
        if agg in means.columns:
            ax.bar(x + offset, means[agg].to_numpy(), 0.4, label=f"r_{agg}")
    ax.set_xticks(x, [f"{m}\n{lay}" for m, lay in means.index], fontsize=7)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(_R_LABEL, fontsize=8)
    ax.legend(fontsize=7)
    _save(fig, path, title)


def plot_overlaps(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Table 3: mean F1 of the core sets per method pair and model, the paper's values hatched beside ours.

    ``table``: the table3 table (model, layer, class_index, target, tau, pair, f1); NaN F1 left out.
    """
    rows = table.assign(f1=_numeric(table, "f1")).dropna(subset=["f1"]) if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no F1 rows")
    means = rows.groupby(["model", "pair"], sort=False)["f1"].mean()
    models = list(dict.fromkeys(rows["model"]))
    if not any(_paper_name(m) in PAPER_F1 for m in models):  # the paper's values as groups of their own
        models += [f"paper {name}" for name in PAPER_F1]
    pairs = [p for p in PAIRS if p in set(rows["pair"])] + sorted(set(rows["pair"]) - set(PAIRS))
    fig, ax = plt.subplots(figsize=(max(5.0, 2.2 * len(models) + 1), 3.4), dpi=110)
    width = 0.8 / (2 * len(pairs))
    for j, pair in enumerate(pairs):
        ours = [float(means.get((m, pair), np.nan)) for m in models]
        paper = [PAPER_F1.get(_paper_name(m.removeprefix("paper ")), {}).get(pair, np.nan) for m in models]
        x = np.arange(len(models)) + 2 * j * width
        bars = ax.bar(x, ours, width, label=pair)
        ax.bar(x + width, paper, width, color=bars.patches[0].get_facecolor(), alpha=0.45, hatch="//")
    ax.set_xticks(np.arange(len(models)) + 0.4 - width / 2, models, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean F1 (hatched: paper)", fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_l2(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Table 4: knock-out loss of the core set vs the L2-weight-norm set, one point per target.

    ``table``: the table4 table (model, block, ..., loss_core, loss_l2). Points below the diagonal: the core
    set knocks the concept out more.
    """
    rows = (
        table.assign(loss_core=_numeric(table, "loss_core"), loss_l2=_numeric(table, "loss_l2"))
        if len(table)
        else table
    )
    rows = rows.dropna(subset=["loss_core", "loss_l2"]) if len(rows) else rows
    if rows.empty:
        return _no_data(path, title, "no loss pairs")
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=110)
    for model, g in rows.groupby("model", sort=False):
        ax.scatter(
            g["loss_l2"],
            g["loss_core"],
            s=10,
            alpha=0.7,
            label=f"{model} (mean diff {(g['loss_core'] - g['loss_l2']).mean():+.3f})",
        )
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("loss, L2 weight-norm set", fontsize=8)
    ax.set_ylabel("loss, core set", fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_k_ablation(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Table 5: overlap of the core set for concept size k with the reference k's set, mean (line) and minimum
    (markers) over targets, per layer; the dotted line is NF-9's threshold ceil(14/16 * tau).

    ``table``: the table5 table (model, layer, class_index, target, tau, k, k_reference, overlap).
    """
    rows = table.assign(overlap=_numeric(table, "overlap")).dropna(subset=["overlap"]) if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no overlap rows")
    fig, ax = plt.subplots(figsize=(5.0, 3.4), dpi=110)
    for (model, layer), g in rows.groupby(["model", "layer"], sort=False):
        per_k = g.groupby("k")["overlap"].agg(["mean", "min"])
        (line,) = ax.plot(per_k.index, per_k["mean"], marker="o", ms=3, label=f"{model}/{layer}")
        ax.plot(per_k.index, per_k["min"], "v", ms=4, color=line.get_color())
    for tau in sorted(set(rows["tau"])):
        ax.axhline(np.ceil(14 * tau / 16), color="grey", ls=":", lw=0.8)
    ax.set_xlabel("k (concept size)", fontsize=8)
    ax.set_ylabel("overlap with the reference core set", fontsize=8)
    ax.legend(fontsize=6)
    _save(fig, path, title)


def plot_crops(table: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Fig. 18: share of the concept patches per crop scale, stacked, per layer ordered by depth (bottom left).

    ``table``: the fig18 table (model, layer, depth, scale, share, n_patches); one panel per model.
    """
    rows = table.assign(share=_numeric(table, "share")).dropna(subset=["share"]) if len(table) else table
    if rows.empty:
        return _no_data(path, title, "no crop shares")
    models = list(dict.fromkeys(rows["model"]))
    fig, axes = _grid(len(models), width=4.2)
    scales = sorted(set(rows["scale"]))
    for ax, model in zip(axes, models, strict=True):
        shares = rows[rows["model"] == model].pivot_table(
            index=["depth", "layer"], columns="scale", values="share", aggfunc="sum"
        )
        shares = shares.sort_index().reindex(columns=scales).fillna(0.0)
        x = np.arange(len(shares))
        bottom = np.zeros(len(shares))
        for scale in scales:
            ax.bar(x, shares[scale].to_numpy(), 0.7, bottom=bottom, label=f"scale {scale:g}")
            bottom += shares[scale].to_numpy()
        ax.set_xticks(x, [f"{lay}\n(depth {d})" for d, lay in shares.index], fontsize=7)
        ax.set_ylabel("share of concept patches", fontsize=7)
        ax.set_title(model, fontsize=8)
        ax.legend(fontsize=6)
    _save(fig, path, title)
