"""Figures of the coupled-NMF paper: Fig. 2-6 and Table 1 of Saini and Papalexakis.

:func:`plot_similarity_heatmaps` (Fig. 2), :func:`plot_eigen_means` (Fig. 3),
:func:`plot_factor_table` (Table 1), :func:`plot_masks_and_neighbours`
(Fig. 4-5), :func:`plot_accuracy_vs_impurity` (Fig. 5) draw the numbers of
:mod:`conceptscope.nmf.analysis`; :func:`plot_tcav` (Fig. 6) those of
:mod:`conceptscope.nmf.tcav`. As for every figure of the suite, each PNG has a
CSV beside it (same name, ``.csv``) holding the numbers drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..checks import check_int  # noqa: E402
from ..data import ImageSet  # noqa: E402
from ..imaging import display_image  # noqa: E402
from ..runtime import save_figure, write_table  # noqa: E402
from .analysis import (  # noqa: E402
    _array,
    _factors,
    _labels,
    _name,
    _pixel_weights,
    _square,
    diagonal_dominance,
    latent_neighbours,
    neighbour_distribution,
    pixel_masks,
    top_examples,
)
from .settings import NmfSettings  # noqa: E402

__all__ = [
    "pixel_residual_note",
    "plot_accuracy_vs_impurity",
    "plot_eigen_means",
    "plot_factor_table",
    "plot_masks_and_neighbours",
    "plot_similarity_heatmaps",
    "plot_tcav",
]

_DPI = 110
_MASK_RGBA = (0.84, 0.15, 0.16, 0.5)  # pixels above the median, drawn over the image


# -- figures ---------------------------------------------------------------------------------------


def _save(fig: Figure, table: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=_DPI)
    write_table(table, path.with_suffix(".csv"), index=False)


def _short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _bare(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _residual_words(r: float) -> str:
    """A block's relative residual for a title, flagged when the factors fit worse than zeros."""
    return f"{r:.2f}" + (" (worse than zeros)" if r >= 1 else "")


def plot_similarity_heatmaps(
    mats: Mapping[str, Any], path: str | Path, *, residuals: Mapping[str, float] | None = None, note: str = ""
) -> None:
    """Heatmaps of the factor-similarity matrices of the probed layers (paper Fig. 2).

    Parameters
    ----------
    mats : mapping of layer name to array (d, d)
        :func:`cosine_similarity` of each layer's ``O_j``, in depth order
        (the mapping's order, shallowest first).
    path : str or Path
        PNG to write. The CSV beside it has one row per matrix entry:
        ``layer``, ``depth`` (position in ``mats``), ``row``, ``col``,
        ``similarity``, the layer's ``diagonal_dominance`` and, with
        ``residuals``, its ``relative_residual``.
    residuals : mapping of layer name to float, optional
        Each layer's relative residual ||A_j - O_j F|| / ||A_j|| (every layer of ``mats``).
    note : str
        A second line of the figure title (e.g. the block scaling).

    All panels share one colour scale (from min(0, smallest entry) to
    max(1, largest entry)); each title gives the layer, its
    :func:`diagonal_dominance` and its residual.
    """
    layers = list(mats)
    if not layers:
        raise ValueError("mats is empty: give one similarity matrix per layer")
    if residuals is not None and (missing := [layer for layer in layers if layer not in residuals]):
        raise ValueError(f"residuals lacks the layers {missing}")
    arrays = [_square(mats[layer], f"mats[{layer!r}]") for layer in layers]
    lo = min(0.0, *(float(a.min()) for a in arrays))
    hi = max(1.0, *(float(a.max()) for a in arrays))
    n = len(layers)
    cols = min(n, 4)
    rows = -(-n // cols)
    extra = (0.3 if note else 0.0) + (0.25 * rows if residuals is not None else 0.0)  # the longer titles
    fig = Figure(figsize=(2.9 * cols + 0.9, 2.9 * rows + 0.5 + extra), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    records = []
    image = None
    for i, (layer, S) in enumerate(zip(layers, arrays, strict=True)):
        ax = axes.flat[i]
        dd = diagonal_dominance(S)
        image = ax.imshow(S, vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
        title = f"{layer}\ndiagonal dominance {dd:.3f}"
        if residuals is not None:
            title += f"\nresidual {_residual_words(residuals[layer])}"
        ax.set_title(title, fontsize=9)
        d = S.shape[0]
        ticks = np.arange(0, d, max(1, int(np.ceil(d / 10))))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("factor", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("factor", fontsize=8)
        r, c = np.indices(S.shape)
        records.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "depth": i,
                    "row": r.ravel(),
                    "col": c.ravel(),
                    "similarity": S.ravel(),
                    "diagonal_dominance": dd,
                }
                | ({"relative_residual": residuals[layer]} if residuals is not None else {})
            )
        )
    used = list(axes.flat[:n])
    for ax in axes.flat[n:]:
        ax.remove()
    fig.colorbar(image, ax=used, shrink=0.85, label="cosine similarity of O_j's columns")
    fig.suptitle(
        "similarity of the latent factors per layer (shallow to deep)" + (f"\n{note}" if note else ""), fontsize=10
    )
    _save(fig, pd.concat(records, ignore_index=True), path)


def plot_eigen_means(table: pd.DataFrame, path: str | Path, *, note: str = "") -> None:
    """Mean of the K largest eigenvalues of the factor similarity against depth (paper Fig. 3).

    Parameters
    ----------
    table : DataFrame
        Columns ``model``, ``layer``, ``depth``, ``k``, ``eigen_mean``; an
        optional ``source`` column (e.g. ``coupled`` / ``single``) gives one
        line per (model, source); sources after the first are dashed with hollow markers.
    path : str or Path
        PNG to write; the CSV beside it is ``table`` unchanged (all columns).
    note : str
        A second line of the title (e.g. the block scaling and the residuals).

    One line per model, x = depth (layer names as tick labels when all models
    share them), legend ``model (K=k)``.
    """
    need = {"model", "layer", "depth", "k", "eigen_mean"}
    if missing := need - set(table.columns):
        raise ValueError(f"table lacks the columns {sorted(missing)}")
    fig = Figure(figsize=(6.0, 3.8), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    has_source = "source" in table.columns
    sources = list(dict.fromkeys(table["source"])) if has_source else [None]
    styles = ["-", "--", ":", "-."]
    colours: dict[Any, Any] = {}
    for (model, source), g in table.groupby(
        ["model", "source"] if has_source else ["model", np.zeros(len(table))], sort=False
    ):
        g = g.sort_values("depth")
        colour = colours.setdefault(model, f"C{len(colours) % 10}")
        ks = sorted({int(v) for v in g["k"]})
        label = f"{model} (K={','.join(map(str, ks))})" + (f", {source}" if has_source and len(sources) > 1 else "")
        style = styles[sources.index(source) % len(styles)] if has_source else "-"
        first = not has_source or sources.index(source) == 0
        ax.plot(
            g["depth"],
            g["eigen_mean"],
            style,
            marker="o",
            color=colour,
            markerfacecolor=colour if first else "white",
            label=label,
        )
    per_model = [tuple(g.sort_values("depth")["layer"]) for _, g in table.groupby("model", sort=False)]
    if table.empty:
        ax.text(0.5, 0.5, "no layers", ha="center", va="center", transform=ax.transAxes)
    elif len(set(per_model)) == 1:
        first = table.drop_duplicates("depth").sort_values("depth")
        ax.set_xticks(first["depth"], [str(v) for v in first["layer"]], rotation=30, ha="right")
    else:
        ax.set_xticks(sorted({int(v) for v in table["depth"]}))
    ax.set(
        xlabel="layer (depth)",
        ylabel="mean of the K largest eigenvalues",
        title="eigenvalue mean of the factor-similarity matrix vs depth" + (f"\n{note}" if note else ""),
    )
    ax.title.set_fontsize(10 if not note else 8.5)
    if not table.empty:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, table, path)


def _image_rows(images: ImageSet, positions: np.ndarray, size: tuple[int, int] | None) -> dict[int, np.ndarray]:
    """Images (C, H, W) at the distinct ``positions``, by position."""
    pos = np.unique(np.asarray(positions, dtype=np.int64).ravel())
    if pos.size == 0:
        return {}
    try:
        x = list(images.images(pos, size).numpy())
    except (ValueError, RuntimeError):  # images of differing sizes (image folders) and no size given
        x = [images.images(pos[i : i + 1], size).numpy()[0] for i in range(pos.size)]
    return {int(p): x[i] for i, p in enumerate(pos)}


def plot_factor_table(
    table: pd.DataFrame,
    F: Any,
    images: ImageSet,
    path: str | Path,
    *,
    per_factor: int = NmfSettings.per_factor,
    size: tuple[int, int] | None = None,
) -> None:
    """Table 1 as a picture: one row per factor with its heaviest images, its top classes as row title.

    Parameters
    ----------
    table : DataFrame
        :func:`factor_table` (rows drawn in its order, so a filtered table
        draws only those factors).
    F : array or Tensor, shape (d, N)
        The factor weights the table was made from; columns are the positions
        of ``images``.
    images : ImageSet
    path : str or Path
        PNG to write. The CSV beside it is ``table`` with the images drawn
        added: ``positions`` and ``weights`` (space-separated, left to right).
    per_factor : int
        Images per row (:func:`top_examples`).
    size : (H, W), optional
        Size to draw the images at; default their stored size.

    Captions give the image's class name and its weight in the factor
    relative to the factor's largest weight.
    """
    F = _factors(F)
    if F.shape[1] != len(images):
        raise ValueError(f"F has {F.shape[1]} columns but the image set has {len(images)} images")
    if len(table) == 0:
        raise ValueError("table is empty")
    per_factor = min(int(per_factor), F.shape[1])
    top = top_examples(F, per_factor)
    factors = [int(f) for f in table["factor"]]
    imgs = _image_rows(images, top[factors], size)
    names = list(images.class_names)
    row_h, title_h = 1.5, 0.45
    fig = Figure(figsize=(max(6.0, per_factor * 1.0 + 0.4), row_h * len(factors) + title_h), dpi=_DPI)
    subs = fig.subfigures(len(factors) + 1, 1, height_ratios=[title_h] + [row_h] * len(factors), squeeze=False)[:, 0]
    subs[0].text(0.5, 0.5, "latent factors: heaviest examples, class weights", ha="center", va="center", fontsize=10)
    drawn_pos, drawn_w = [], []
    for sf, (_, row) in zip(subs[1:], table.iterrows(), strict=True):
        f = int(row["factor"])
        title = f"factor {f} · mass {row['mass']:.3g} · {row['top_classes'] or 'no mass'}"
        if "superclass" in row and row["superclass"]:
            title += f" · superclass {row['superclass']} ({row['superclass_weight']:.2f})"
        sf.text(0.01, 0.97, title, ha="left", va="top", fontsize=8.5)
        axs = sf.subplots(
            1, per_factor, squeeze=False, gridspec_kw={"left": 0.01, "right": 0.99, "top": 0.78, "bottom": 0.12}
        )[0]
        peak = F[f].max()
        for ax, p in zip(axs, top[f], strict=True):
            img, cmap = display_image(imgs[int(p)])
            ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            _bare(ax)
            rel = F[f, p] / peak if peak > 0 else 0.0
            ax.set_xlabel(f"{_short(_name(names, int(images.labels[p])), 12)} · {rel:.2f}", fontsize=6.5, labelpad=2)
        drawn_pos.append(" ".join(str(int(p)) for p in top[f]))
        drawn_w.append(" ".join(f"{F[f, p]:.6g}" for p in top[f]))
    out = table.reset_index(drop=True).copy()
    out["positions"] = drawn_pos
    out["weights"] = drawn_w
    _save(fig, out, path)


def _mask_size(P: Sequence[Any], images: ImageSet, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of the pixel factors: ``size``, else the stored image size when it fits, else a square."""
    if size is not None:
        return int(size[0]), int(size[1])
    rows = _array(P[0], "P[0]", 2).shape[0] if len(P) else 0
    stored = tuple(images.images(np.array([0])).shape[-2:]) if len(images) else (0, 0)
    if stored[0] * stored[1] == rows:
        return int(stored[0]), int(stored[1])
    side = int(round(np.sqrt(rows)))
    if side * side == rows and rows > 0:
        return side, side
    raise ValueError(f"cannot tell the image size of {rows} pixel rows: pass size=(H, W)")


def plot_masks_and_neighbours(
    F: Any,
    P: Sequence[Any],
    images: ImageSet,
    labels: Any,
    class_names: Sequence[str],
    path: str | Path,
    *,
    factors: Sequence[int] | None = None,
    k: int = NmfSettings.knn,
    size: tuple[int, int] | None = None,
    note: str = "",
) -> None:
    """Per factor, its heaviest image with the pixel mask, and the classes of its latent neighbours (Fig. 4-5).

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
    P : sequence of arrays or Tensors, each (H*W, d)
        Pixel factors, one per input channel.
    images : ImageSet
        The N examples (positions = columns of ``F``).
    labels : array of int, shape (N,)
        Classes whose distribution is drawn (true labels, or predictions).
    class_names : sequence of str
    path : str or Path
        PNG to write. The CSV beside it has, per factor, one ``pixel`` row per
        pixel (``row``, ``col``, ``pixel_weight`` summed over channels,
        ``in_mask``) and one ``neighbour_class`` row per class present among
        the neighbours (``class``, ``class_name``, ``count``, ``fraction``);
        ``factor`` and the query ``position`` on every row.
    factors : sequence of int, optional
        Factors drawn, one row each; default all.
    k : int
        Latent neighbours of the query (:func:`latent_neighbours`).
    size : (H, W), optional
        Image size of the pixel factors (the model input the factorization
        saw); default the stored image size when it has H*W pixels, else
        the square one. Images are drawn fitted to it.
    note : str
        A second line of the figure title (e.g. how well P F fits the pixels:
        :func:`pixel_residual_note`).

    Each row shows the factor's heaviest example (:func:`top_examples`), the
    same image with its :func:`pixel_masks` mask (pixels above the median)
    in translucent red, and the class shares among its ``k`` nearest latent
    neighbours: all classes when there are at most 20, else the 12 most
    frequent.
    """
    F = _factors(F)
    n = F.shape[1]
    if n != len(images):
        raise ValueError(f"F has {n} columns but the image set has {len(images)} images")
    names = list(class_names)
    labels = _labels(labels, n, len(names))
    hw = _mask_size(P, images, size)
    weights = _pixel_weights(P, hw)
    masks = pixel_masks(P, hw)
    chosen = list(range(F.shape[0])) if factors is None else [int(f) for f in factors]
    if not chosen:
        raise ValueError("no factors to draw")
    if min(chosen) < 0 or max(chosen) >= F.shape[0]:
        raise ValueError(f"factors must lie in [0, {F.shape[0]}), got {chosen}")
    k = check_int("k", k, minimum=1, maximum=n - 1)  # the other examples
    query = top_examples(F, 1)[:, 0]
    x = images.images(query[chosen], hw).numpy()
    many = len(names) > 20
    fig = Figure(figsize=(8.2, 1.75 * len(chosen) + 0.45 + (0.25 if note else 0.0)), dpi=_DPI)
    fig.suptitle(
        f"pixel masks (red: above the median) and classes of the {k} nearest latent neighbours"
        + (f"\n{note}" if note else ""),
        fontsize=10 if not note else 9,
        y=0.995,
    )
    gs = fig.add_gridspec(
        len(chosen),
        3,
        width_ratios=[1, 1, 4.2],
        left=0.04,
        right=0.98,
        top=1 - (0.75 if note else 0.5) / fig.get_figheight(),
        bottom=0.75 / fig.get_figheight(),
        hspace=0.9,
        wspace=0.25,
    )
    records: list[dict[str, Any]] = []
    for i, f in enumerate(chosen):
        q = int(query[f])
        img, cmap = display_image(x[i])
        ax_img, ax_mask, ax_bar = (fig.add_subplot(gs[i, j]) for j in range(3))
        ax_img.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax_img.set_title(f"factor {f}", fontsize=8.5, loc="left")
        ax_img.set_xlabel(f"{_short(_name(names, int(labels[q])))} · #{q}", fontsize=7, labelpad=2)
        ax_mask.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        overlay = np.zeros((*hw, 4))
        overlay[masks[f]] = _MASK_RGBA
        ax_mask.imshow(overlay, interpolation="nearest")
        ax_mask.set_xlabel("mask", fontsize=7, labelpad=2)
        for ax in (ax_img, ax_mask):
            _bare(ax)
        nbrs = latent_neighbours(F, q, k)
        share = neighbour_distribution(labels, nbrs, len(names))
        counts = np.bincount(labels[nbrs], minlength=len(names))
        shown = np.argsort(-share, kind="stable")[:12] if many else np.arange(len(names))
        own = int(labels[q])
        ax_bar.bar(np.arange(shown.size), share[shown], color=["C3" if c == own else "C0" for c in shown], width=0.75)
        ax_bar.set_xticks(
            np.arange(shown.size),
            [_short(_name(names, int(c))) for c in shown],
            rotation=30 if many or max(len(s) for s in names) > 3 else 0,
            ha="right" if many or max(len(s) for s in names) > 3 else "center",
            fontsize=7,
        )
        ax_bar.set_ylim(0, 1)
        ax_bar.tick_params(axis="y", labelsize=7)
        ax_bar.set_ylabel("share", fontsize=7)
        ax_bar.set_title(
            f"{k} latent neighbours of #{q}"
            + (": 12 most frequent classes" if many else "")
            + f" · own class (red) {share[own]:.2f}",
            fontsize=8,
            loc="left",
        )
        r, c = np.indices(hw)
        records += [
            {
                "factor": f,
                "position": q,
                "kind": "pixel",
                "row": int(a),
                "col": int(b),
                "pixel_weight": float(weights[f, a, b]),
                "in_mask": bool(masks[f, a, b]),
            }
            for a, b in zip(r.ravel(), c.ravel(), strict=True)
        ]
        records += [
            {
                "factor": f,
                "position": q,
                "kind": "neighbour_class",
                "class": int(cl),
                "class_name": _name(names, int(cl)),
                "count": int(counts[cl]),
                "fraction": float(share[cl]),
            }
            for cl in np.flatnonzero(counts)
        ]
    columns = ["factor", "position", "kind", "row", "col", "pixel_weight", "in_mask"]
    columns += ["class", "class_name", "count", "fraction"]
    _save(fig, pd.DataFrame.from_records(records, columns=columns), path)


def pixel_residual_note(residuals: Sequence[float], block_scaling: str) -> str:
    """Fig. 4's title line: how well the pixel factors fit the images, ||D_i - P_i F|| / ||D_i|| per channel.

    1 is the residual of an all-zero image; a mask read from factors above 1 does not describe the pixels.
    """
    values = ", ".join(_residual_words(float(r)) for r in residuals)
    return f"pixels fitted by P F with relative residual ||D - PF||/||D|| = {values} (block scaling {block_scaling})"


def plot_accuracy_vs_impurity(table: pd.DataFrame, path: str | Path) -> None:
    """The model's accuracy per latent-neighbourhood impurity bin (:func:`accuracy_vs_impurity`).

    Each bin is a shaded bar over its impurity range, as high as the bin's
    accuracy; a line joins the accuracies drawn at the bins' mean impurity,
    each point labelled with the number of examples in its bin.
    The CSV beside the PNG is ``table`` unchanged.
    """
    need = {"impurity_low", "impurity_high", "mean_impurity", "count", "accuracy"}
    if missing := need - set(table.columns):
        raise ValueError(f"table lacks the columns {sorted(missing)}")
    fig = Figure(figsize=(5.6, 3.6), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    if len(table):
        t = table.sort_values("impurity_low")
        ax.bar(
            t["impurity_low"],
            t["accuracy"],
            width=t["impurity_high"] - t["impurity_low"],
            align="edge",
            color="C0",
            alpha=0.25,
            edgecolor="C0",
        )
        ax.plot(t["mean_impurity"], t["accuracy"], marker="o", color="C0")
        for row in t.itertuples():
            ax.annotate(
                f"n={int(row.count)}",
                (row.mean_impurity, row.accuracy),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
        k = f" (k={int(t['k'].iloc[0])})" if "k" in t.columns else ""
    else:
        ax.text(0.5, 0.5, "no examples", ha="center", va="center", transform=ax.transAxes)
        k = ""
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.1),
        xlabel=f"impurity: share of latent neighbours from another class{k}",
        ylabel="model accuracy",
        title="accuracy vs latent-neighbourhood impurity",
    )
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    _save(fig, table, path)


def plot_tcav(summary: pd.DataFrame, path: str | Path, *, title: str | None = None, alpha: float = 0.05) -> Path:
    """Bars of the mean TCAV score per class, one panel per layer x concept; writes ``path`` and its CSV.

    Error bars are the std over random sets, the dashed line over each bar is
    the random baseline's mean for that layer and class, and ``*`` marks
    p-values below ``alpha``. The numbers drawn go to ``path`` with suffix
    ``.csv``, which is returned.
    """
    path = Path(path)
    if summary.empty:
        raise ValueError("summary is empty: nothing to plot")
    layers = list(dict.fromkeys(summary["layer"]))
    concepts = list(dict.fromkeys(summary["concept"]))
    classes = list(dict.fromkeys(summary["class"]))
    names = dict(zip(summary["class"], summary["class_name"].astype(str), strict=True))
    fig = Figure(figsize=(max(3.0, 0.45 * len(classes) + 1.2) * len(concepts), 2.6 * len(layers) + 0.6))
    axes = fig.subplots(len(layers), len(concepts), squeeze=False, sharey=True)
    x = np.arange(len(classes))
    top = max(1.12, float(np.nanmax(summary["tcav_mean"] + summary["tcav_std"].fillna(0.0))) + 0.12)
    for i, layer in enumerate(layers):
        for j, name in enumerate(concepts):
            ax = axes[i][j]
            part = summary[(summary["layer"] == layer) & (summary["concept"] == name)].set_index("class")
            part = part.reindex(classes)
            mean, std = part["tcav_mean"].to_numpy(), part["tcav_std"].fillna(0.0).to_numpy()
            ax.bar(x, mean, 0.7, yerr=std, capsize=2, color="tab:blue", label="concept (mean, std over random sets)")
            ax.hlines(
                part["baseline_mean"], x - 0.4, x + 0.4, colors="k", linestyles="dashed", label="random baseline (mean)"
            )
            for xi, m, s, p in zip(x, mean, std, part["p_value"], strict=True):
                if p < alpha:
                    ax.text(xi, m + s + 0.02, "*", ha="center", va="bottom")
            ax.set_xticks(x, [names[k] for k in classes], rotation=90 if len(classes) > 12 else 0)
            ax.set_ylim(0, top)
            ax.set_title(f"{name} @ {layer}", fontsize=9)
            if j == 0:
                ax.set_ylabel("TCAV score")
            if i == len(layers) - 1:
                ax.set_xlabel("class")
    fig.set_layout_engine("constrained")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7)
    fig.suptitle(title or f"TCAV of {len(concepts)} concept(s); * p < {alpha}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=120)
    csv = path.with_suffix(".csv")
    write_table(summary, csv, index=False)
    return csv
