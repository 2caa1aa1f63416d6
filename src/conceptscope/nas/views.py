"""NAS views: the layer summary (thesis Fig. 3-1) as PNG and HTML, the individual neuron view
(Fig. 3-2), and the taxonomy counts per layer.

Layer summary layout: one row per unit. The x axis counts ranges from the
zero line (drawn thick): range ``i`` of a unit whose ranges have 0 as the
lower edge of range ``z`` is drawn in cell ``[i - z, i - z + 1)``. A unit whose
activations stay above 0 starts at the zero line; one that stays at or below
0 ends there. Each non-empty range is a bar of stacked class shares (bottom
to top in class order), its width in three steps by the number of images
(:func:`conceptscope.nas.width_classes`). The layer summary page is the template
``static/summary.html`` (+ ``.css``, ``.js``) of this package, filled by
:func:`conceptscope.pages.render_page`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.patches import Patch

from ..data import ImageSet
from ..imaging import display_image, load_images
from ..pages import inline_json, render_page, write_page
from ..runtime import save_figure, write_table
from .core import NEURON_TYPES, TAXONOMY_LABELS, LayerSummary, assign_ranges, width_classes
from .settings import NasSettings, check_width_thresholds

__all__ = [
    "BAR_WIDTHS",
    "class_colors",
    "plot_layer_summary",
    "plot_neuron",
    "plot_taxonomy_counts",
    "select_neurons",
    "write_layer_summary_html",
]

BAR_WIDTHS = (0.0, 0.3, 0.6, 0.92)  # cell fraction per width step (empty, 1-3, 4-11, 12+)
_ROW_H = 0.8  # share of a row's height the stacked bar fills
_DPI = 110
# the quantity that ranks units within a type (largest first) when picking neuron views
_STRENGTH = {
    "zeroing": "zero_fraction",
    "specialized": "top_share",
    "bisemantic": "second_share",
    "polysemantic": "n_top_classes",
    "suppressing": "low_share",
    "differentiating": "eta2",
}


def class_colors(n: int) -> list[str]:
    """One colour per class: tab10 up to 10 classes, tab20 up to 20, else evenly spaced hues."""
    if n <= 10:
        return [to_hex(plt.get_cmap("tab10")(i)) for i in range(n)]
    if n <= 20:
        return [to_hex(plt.get_cmap("tab20")(i)) for i in range(n)]
    return [to_hex(plt.get_cmap("hsv")(i / n)) for i in range(n)]


def _first_cell(summary: LayerSummary, unit: int) -> int:
    """Cell (relative to the zero line) of a unit's first range."""
    z = int(summary.zero_range[unit])
    if z >= 0:
        return -z
    hi = summary.unit_edges(unit)[-1]
    return -int(summary.n_ranges[unit]) if hi <= 0 else 0


def _thresholds(thresholds: Sequence[int] | None) -> tuple[int, int]:
    """The bar width steps, ``NasSettings().width_thresholds`` when None."""
    return check_width_thresholds(NasSettings().width_thresholds if thresholds is None else thresholds)


def _unit_bars(summary: LayerSummary, unit: int, row: float, thresholds: Sequence[int]) -> tuple[list, list]:
    """Polygons and class indices of one unit's stacked bars (row = y of the row's centre)."""
    counts = summary.unit_counts(unit)
    widths = width_classes(counts.sum(1), thresholds)
    x0 = _first_cell(summary, unit)
    polys, colors = [], []
    for i, (c, w) in enumerate(zip(counts, widths, strict=True)):
        if w == 0:
            continue
        half = BAR_WIDTHS[w] / 2
        cx = x0 + i + 0.5
        y = row + _ROW_H / 2  # rows grow downwards: bars stack from the row's bottom edge up
        for k in np.flatnonzero(c):
            h = _ROW_H * c[k] / c.sum()
            polys.append([(cx - half, y), (cx + half, y), (cx + half, y - h), (cx - half, y - h)])
            colors.append(k)
            y -= h
    return polys, colors


def plot_layer_summary(
    summary: LayerSummary,
    path: str | Path,
    *,
    taxonomy: pd.DataFrame | None = None,
    max_rows: int = NasSettings.max_rows,
    thresholds: Sequence[int] | None = None,
    title: str = "",
) -> pd.DataFrame:
    """The layer summary as a PNG of the first ``max_rows`` units (the cap is stated in the title).

    ``thresholds``: the bar width steps (default ``NasSettings().width_thresholds``).
    Returns (and writes beside the PNG as CSV) the drawn rows: unit, min, max,
    ranges, first cell and taxonomy labels.
    """
    thresholds = _thresholds(thresholds)
    n = min(summary.n_units, int(max_rows))
    colors = class_colors(len(summary.class_names))
    polys, cls = [], []
    for r in range(n):
        p, c = _unit_bars(summary, r, r, thresholds)
        polys += p
        cls += c
    cells = [(_first_cell(summary, u), _first_cell(summary, u) + int(summary.n_ranges[u])) for u in range(n)]
    left, right = min(a for a, _ in cells), max(b for _, b in cells)
    fig_h = 1.4 + 0.22 * n
    fig, ax = plt.subplots(figsize=(max(7.0, 0.22 * (right - left) + 3.5), fig_h), dpi=_DPI)
    ax.add_collection(PolyCollection(polys, facecolors=[colors[k] for k in cls], edgecolors="none"))
    ax.axvline(0, color="black", lw=2.2, zorder=3)
    for r in range(n):
        ax.axhline(r + 0.5, color="#e5e5e5", lw=0.5, zorder=0)
    ax.set_xlim(left - 0.5, right + 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    labels = taxonomy.set_index("unit")["labels"].fillna("") if taxonomy is not None else None
    ticks = []
    for u in range(n):
        e = summary.unit_edges(u)
        tag = f" {labels[u]}" if labels is not None and labels[u] else ""
        ticks.append(f"{u} [{e[0]:.3g}, {e[-1]:.3g}]{tag}")
    ax.set_yticks(range(n), ticks, fontsize=6)
    ax.set_xlabel("range, counted from the zero line (thick)")
    shown = f"units 0-{n - 1} of {summary.n_units}" + (
        " (capped; the HTML page shows all)" if n < summary.n_units else ""
    )
    ax.set_title(f"{title}\n{shown}; {summary.values.shape[0]} images, m = {summary.meta.get('m')}", fontsize=9)
    t1, t2 = thresholds
    handles = [Patch(color=colors[k], label=name) for k, name in enumerate(summary.class_names)]
    handles += [
        Patch(color="none", label=f"width: 1-{t1 - 1}, {t1}-{t2 - 1}, {t2}+ images"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    plt.close(fig)
    table = pd.DataFrame(
        {
            "unit": range(n),
            "min": [summary.unit_edges(u)[0] for u in range(n)],
            "max": [summary.unit_edges(u)[-1] for u in range(n)],
            "ranges": summary.n_ranges[:n],
            "first_cell": [a for a, _ in cells],
            "labels": [labels[u] if labels is not None else "" for u in range(n)],
        }
    )
    write_table(table, path.with_suffix(".csv"), index=False)
    return table


def _summary_payload(summary: LayerSummary, taxonomy: pd.DataFrame | None, thresholds: Sequence[int]) -> dict:
    labels = taxonomy.set_index("unit")["labels"].fillna("") if taxonomy is not None else None
    units = []
    for u in range(summary.n_units):
        counts = summary.unit_counts(u)
        units.append(
            {
                "unit": u,
                "first": _first_cell(summary, u),
                "edges": [float(f"{v:.4g}") for v in summary.unit_edges(u)],
                "counts": counts.tolist(),
                "width": width_classes(counts.sum(1), thresholds).tolist(),
                "labels": labels[u] if labels is not None else "",
            }
        )
    return {
        "title": summary.meta.get("title", ""),
        "classes": summary.class_names,
        "colors": class_colors(len(summary.class_names)),
        "barWidths": list(BAR_WIDTHS),
        "thresholds": [int(t) for t in thresholds],
        "types": list(TAXONOMY_LABELS),
        "nImages": int(summary.values.shape[0]),
        "units": units,
    }


def write_layer_summary_html(
    summary: LayerSummary,
    path: str | Path,
    *,
    taxonomy: pd.DataFrame | None = None,
    thresholds: Sequence[int] | None = None,
    title: str = "",
) -> None:
    """The whole layer summary as one self-contained, scrollable HTML page (every unit; class legend).

    Rows are ``div.unit-row`` elements (``data-unit``, ``data-labels``), each with
    an inline SVG of its stacked bars and the zero line; a selector shows only
    the units of one taxonomy type. When rendered the page sets
    ``document.body.dataset.ready = "1"``. ``thresholds``: the bar width steps
    (default ``NasSettings().width_thresholds``).
    """
    payload = _summary_payload(summary, taxonomy, _thresholds(thresholds)) | {"title": title}
    page = render_page(
        "conceptscope.nas",
        "summary",
        text={"TITLE": title or "NAS layer summary"},
        data={"DATA": inline_json(payload)},
    )
    write_page(path, page)


def select_neurons(taxonomy: pd.DataFrame, per_type: int = NasSettings.neurons_per_type) -> pd.DataFrame:
    """Up to ``per_type`` units per neuron type, the strongest by the quantity behind the rule.

    Returns a table ``type, unit, strength`` (a unit may appear under several types).
    """
    rows = []
    for t in NEURON_TYPES:
        flagged = taxonomy[taxonomy[t]].sort_values([_STRENGTH[t], "unit"], ascending=[False, True], kind="stable")
        rows += [
            {"type": t, "unit": int(r.unit), "strength": float(r[_STRENGTH[t]])}
            for _, r in flagged.head(per_type).iterrows()
        ]
    return pd.DataFrame(rows, columns=["type", "unit", "strength"])


def _mosaic_tile(img: np.ndarray, px: int, color: str) -> np.ndarray:
    """An image (C, H, W) as an RGB tile (px + 4)^2 with a 2-px frame in the class colour."""
    from PIL import Image

    arr, cmap = display_image(img)
    rgb = np.repeat(arr[..., None], 3, axis=2) if cmap else arr
    tile = np.asarray(Image.fromarray(np.round(rgb * 255).astype(np.uint8)).resize((px, px), Image.Resampling.NEAREST))
    framed = np.empty((px + 4, px + 4, 3), dtype=np.uint8)
    framed[:] = np.round(np.array(matplotlib.colors.to_rgb(color)) * 255).astype(np.uint8)
    framed[2:-2, 2:-2] = tile
    return framed


def plot_neuron(
    summary: LayerSummary,
    unit: int,
    images: ImageSet,
    path: str | Path,
    *,
    max_per_range: int = NasSettings.max_per_range,
    thumb_px: int = 28,
    title: str = "",
) -> pd.DataFrame:
    """The individual neuron view: the sampled images of one unit laid out by range (low left, high right).

    Each non-empty range is a column headed by its interval and image count,
    its images stacked by decreasing activation, framed in their class colour;
    a range with more than ``max_per_range`` images shows the first ones and
    states how many more it holds. Returns (and writes as CSV beside the PNG)
    every image with its range, activation and whether it is drawn.
    """
    if not 0 <= unit < summary.n_units:
        raise ValueError(f"unit {unit} is not in [0, {summary.n_units})")
    edges = summary.unit_edges(unit)
    v = summary.values[:, unit]
    idx = assign_ranges(v, edges)
    colors = class_colors(len(summary.class_names))
    table = pd.DataFrame(
        {
            "position": summary.positions,
            "label": [summary.class_names[k] for k in summary.labels],
            "range": idx,
            "activation": v,
        }
    ).sort_values(["range", "activation"], ascending=[True, False], kind="stable")
    table["rank_in_range"] = table.groupby("range").cumcount()
    table["drawn"] = table["rank_in_range"] < max_per_range
    ranges = sorted(table["range"].unique())
    drawn = table[table["drawn"]]
    pix = load_images(images, drawn["position"].to_numpy())
    t = thumb_px + 4
    canvas = np.full((max_per_range * t, len(ranges) * t, 3), 255, dtype=np.uint8)
    for col, r in enumerate(ranges):
        for row, rec in enumerate(drawn[drawn["range"] == r].itertuples()):
            lab = summary.class_names.index(rec.label)
            canvas[row * t : (row + 1) * t, col * t : (col + 1) * t] = _mosaic_tile(
                pix[rec.position], thumb_px, colors[lab]
            )
    w_in = max(6.0, len(ranges) * t / 60 + 1.5)
    h_in = max_per_range * t / 60 + 2.2
    fig, ax = plt.subplots(figsize=(w_in, h_in), dpi=_DPI)
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks(
        [(c + 0.5) * t for c in range(len(ranges))],
        [f"[{edges[r]:.2g}, {edges[r + 1]:.2g}{']' if r == len(edges) - 2 else ')'}" for r in ranges],
        rotation=90,
        fontsize=6,
    )
    for c, r in enumerate(ranges):
        n = int((table["range"] == r).sum())
        more = f"+{n - max_per_range}" if n > max_per_range else ""
        ax.text((c + 0.5) * t, -4, f"{n}{more and chr(10) + more}", ha="center", va="bottom", fontsize=6)
    ax.set_yticks([])
    zr = int(summary.zero_range[unit])
    if zr >= 0 and zr in ranges:
        ax.axvline(ranges.index(zr) * t - 0.5, color="black", lw=2)
    handles = [Patch(color=colors[k], label=name) for k, name in enumerate(summary.class_names)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    ax.set_title(f"{title}\nimages by activation range (count above; thick line = 0)", fontsize=9, pad=22)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    plt.close(fig)
    write_table(table, path.with_suffix(".csv"), index=False)
    return table


def plot_taxonomy_counts(counts: pd.DataFrame, path: str | Path, *, title: str = "") -> None:
    """Bar chart of units per label per layer (share of the layer's units; the count above each bar).

    ``counts``: columns layer, type, count, n_units, one row per layer and
    label of :data:`~conceptscope.nas.TAXONOMY_LABELS` present (layers in
    order). The ``insufficient`` units (too little evidence for some type)
    are drawn as a grey hatched bar after the six types.
    """
    layers = list(dict.fromkeys(counts["layer"]))
    labels = [t for t in TAXONOMY_LABELS if t in set(counts["type"])]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(layers) + 2), 3.8), dpi=_DPI)
    w = 0.8 / max(len(labels), 1)
    x = np.arange(len(layers))
    for i, t in enumerate(labels):
        sub = counts[counts["type"] == t].set_index("layer").reindex(layers)
        share = (sub["count"] / sub["n_units"]).to_numpy(dtype=float)
        style = {"color": "#bdbdbd", "hatch": "///", "edgecolor": "#6d6d6d"} if t == "insufficient" else {}
        bars = ax.bar(x - 0.4 + (i + 0.5) * w, share, w, label=t, **style)
        for b, n in zip(bars, sub["count"].to_numpy(), strict=True):
            if n:
                ax.text(
                    b.get_x() + b.get_width() / 2, b.get_height(), str(int(n)), ha="center", va="bottom", fontsize=6
                )
    n_units = counts.drop_duplicates("layer").set_index("layer").reindex(layers)["n_units"]
    ax.set_xticks(x, [f"{layer}\n({int(n)} units)" for layer, n in n_units.items()], fontsize=8)
    ax.set_ylabel("share of the layer's units")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncols=4)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    plt.close(fig)
