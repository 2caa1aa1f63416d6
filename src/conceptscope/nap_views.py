"""Views of NAPs: paper-style image galleries (PNG) and a self-contained HTML browser.

Reproduces the visual side of Bäuerle, Jönsson and Ropinski, "Neural
Activation Patterns (NAPs)":

- :func:`plot_nap_gallery` (paper Fig. 1): one row per NAP, its most probable
  members as thumbnails;
- :func:`plot_aggregation_gallery` (Fig. 7): the top NAPs of one layer, one
  block per disentanglement (location aggregation) method;
- :func:`plot_follow_image` (Fig. 9 / 10): one image through the layers, with
  the NAP that holds it in each layer (or noise);
- :func:`plot_models_side_by_side` (Fig. 14): for chosen images, the NAP that
  holds each in model A next to the one in model B;
- :func:`write_browser`: one HTML file, usable from ``file://`` without a
  server, to browse the NAPs of every (layer, method) of one model.

Every :class:`~conceptscope.naps.NapResult` passed in must cover the images
of the given :class:`~conceptscope.data.ImageSet` in the same order: position
``i`` of the result is image ``i`` of the set (checked on length and, where
both carry them, on sample ids).

Thumbnails are captioned ``label/prediction`` (class names); misclassified
inputs get a red frame. As for every figure of the suite, each PNG has a CSV
beside it (same name, ``.csv``) listing the thumbnails drawn: row, NAP rank,
position, sample id, label, prediction, membership probability.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure, SubFigure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .data import ImageSet  # noqa: E402
from .naps import NapResult  # noqa: E402
from .pages import READY_JS, inline_json, write_page  # noqa: E402

__all__ = [
    "plot_aggregation_gallery",
    "plot_follow_image",
    "plot_models_side_by_side",
    "plot_nap_gallery",
    "write_browser",
]

_CELL_W = 1.0  # inches per thumbnail column
_MARGIN_W = 0.3  # inches left + right of a row
_HEIGHTS = {"title": 0.5, "header": 0.38, "text": 0.5, "thumbs": 1.45}  # inches per row kind
_DPI = 110
_WRONG = "#d62728"  # frame of misclassified inputs
_HIGHLIGHT = "#1f77b4"  # caption of the followed image
_CHUNK = 256  # images loaded per call when many are needed


# -- inputs ------------------------------------------------------------------------------------


def _check_alignment(result: NapResult, images: ImageSet, what: str = "result") -> None:
    """Raise ``ValueError`` when ``result`` does not index ``images`` position by position."""
    n = int(np.asarray(result.nap).shape[0])
    if n != len(images):
        raise ValueError(
            f"{what} covers {n} inputs but the image set {images.name}/{images.split} has {len(images)}: "
            "a NapResult's positions must index the same split in the same order"
        )
    ids = np.asarray(result.sample_ids)
    if ids.shape == images.sample_ids.shape and not np.array_equal(ids, images.sample_ids):
        raise ValueError(f"{what}: sample ids differ from those of {images.name}/{images.split} (other order or split)")


def _class_names(images: ImageSet, class_names: Sequence[str] | None) -> list[str]:
    return list(class_names) if class_names is not None else list(getattr(images, "class_names", []) or [])


def _name(names: Sequence[str], c: Any) -> str:
    c = int(c)
    return str(names[c]) if 0 <= c < len(names) else str(c)


def _short(s: str, n: int = 12) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _caption(names: Sequence[str], label: Any, prediction: Any) -> str:
    """``label/prediction`` by class name, each cut to 8 characters when both do not fit a thumbnail."""
    a, b = _name(names, label), _name(names, prediction)
    return f"{a}/{b}" if len(a) + len(b) < 17 else f"{_short(a, 8)}/{_short(b, 8)}"


def _iter_images(images: ImageSet, positions: Sequence[int] | np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(position, image (C, H, W) float in [0, 1])`` for each distinct position, sorted, loaded in chunks.

    Images of differing sizes (image folders) are loaded one by one.
    """
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    for start in range(0, pos.size, _CHUNK):
        chunk = pos[start : start + _CHUNK]
        try:
            batch = [np.asarray(x) for x in images.images(chunk).numpy()]
        except (ValueError, RuntimeError):
            batch = [images.images(chunk[i : i + 1]).numpy()[0] for i in range(chunk.size)]
        yield from zip((int(p) for p in chunk), batch, strict=True)


def _load(images: ImageSet, positions: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]:
    return dict(_iter_images(images, positions))


def _display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image (C, H, W) as an array imshow / PIL can show, and the colormap (``"gray"`` for grey)."""
    x = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32)), 0.0, 1.0)
    if x.ndim == 2:
        return x, "gray"
    if x.shape[0] >= 3:
        return x[:3].transpose(1, 2, 0), None
    return x.mean(0), "gray"  # 1 channel (or 2: averaged)


# -- figure building blocks ----------------------------------------------------------------------


@dataclass
class _Thumb:
    """One thumbnail: image, caption, frame, and the CSV record of it."""

    image: np.ndarray
    caption: str
    wrong: bool
    record: dict[str, Any]
    highlight: bool = False
    gid: str = "thumb"


@dataclass
class _Row:
    """One horizontal strip of a figure.

    ``kind``: ``"title"`` (figure title), ``"header"`` (block header),
    ``"text"`` (a sentence instead of thumbnails) or ``"thumbs"`` (titled
    parts side by side, each ``(title, thumbnails, n_columns)``).
    """

    kind: str
    text: str = ""
    parts: list[tuple[str, list[_Thumb], int]] = field(default_factory=list)


def _member_thumbs(
    result: NapResult,
    rank: int,
    imgs: Mapping[int, np.ndarray],
    per_nap: int,
    names: Sequence[str],
    row: str,
    highlight: int | None = None,
) -> list[_Thumb]:
    out = []
    for slot, p in enumerate(result.members(rank)[:per_nap]):
        p = int(p)
        lab, pred = int(result.labels[p]), int(result.predictions[p])
        out.append(
            _Thumb(
                image=imgs[p],
                caption=_caption(names, lab, pred),
                wrong=lab != pred,
                highlight=p == highlight,
                record={
                    "row": row,
                    "kind": "member",
                    "nap": rank,
                    "slot": slot,
                    "position": p,
                    "sample_id": int(result.sample_ids[p]),
                    "label": lab,
                    "prediction": pred,
                    "probability": float(result.probability[p]),
                },
            )
        )
    return out


def _query_thumb(
    result: NapResult, imgs: Mapping[int, np.ndarray], position: int, names: Sequence[str], row: str
) -> _Thumb:
    lab, pred = int(result.labels[position]), int(result.predictions[position])
    return _Thumb(
        image=imgs[position],
        caption=_caption(names, lab, pred),
        wrong=lab != pred,
        highlight=True,
        gid="query",
        record={
            "row": row,
            "kind": "query",
            "nap": int(result.nap[position]),
            "slot": 0,
            "position": position,
            "sample_id": int(result.sample_ids[position]),
            "label": lab,
            "prediction": pred,
            "probability": float(result.probability[position]),
        },
    )


def _nap_title(result: NapResult, rank: int) -> str:
    return f"NAP {rank} · {int(result.size[rank])} members · persistence {float(result.persistence[rank]):.3f}"


def _draw_thumb(ax: Axes, t: _Thumb) -> None:
    img, cmap = _display(t.image)
    ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_gid(t.gid)
    for spine in ax.spines.values():
        spine.set_visible(t.wrong)
        if t.wrong:
            spine.set_edgecolor(_WRONG)
            spine.set_linewidth(2.5)
    ax.set_xlabel(
        t.caption,
        fontsize=6.5,
        labelpad=2,
        color=_HIGHLIGHT if t.highlight else ("#a01818" if t.wrong else "black"),
        fontweight="bold" if t.highlight else "normal",
    )


def _draw_part(sf: SubFigure, title: str, thumbs: list[_Thumb], n_cols: int, width_in: float) -> None:
    """Title and one row of ``n_cols`` thumbnail slots into a subfigure ``width_in`` inches wide."""
    h = _HEIGHTS["thumbs"]
    sf.text(0.1 / width_in, 1 - 0.06 / h, title, ha="left", va="top", fontsize=8.5)
    if not thumbs:
        return
    pad = 0.1 / width_in
    axs = sf.subplots(
        1,
        max(n_cols, len(thumbs)),
        squeeze=False,
        gridspec_kw={"left": pad, "right": 1 - pad, "top": 1 - 0.3 / h, "bottom": 0.2 / h, "wspace": 0.12},
    )[0]
    for ax, t in zip(axs, thumbs, strict=False):
        _draw_thumb(ax, t)
    for ax in axs[len(thumbs) :]:
        ax.remove()


def _render(rows: list[_Row]) -> Figure:
    """Stack ``rows`` vertically into one figure, sized so that every thumbnail column is ``_CELL_W`` inches."""
    widths = [sum(max(n, len(th), 1) * _CELL_W + _MARGIN_W for _, th, n in r.parts) for r in rows if r.kind == "thumbs"]
    width = max([6.0, *widths])
    heights = [_HEIGHTS[r.kind] for r in rows]
    fig = Figure(figsize=(width, sum(heights)), dpi=_DPI)
    subs = fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sf, r in zip(subs, rows, strict=True):
        if r.kind == "title":
            sf.text(0.5, 0.5, r.text, ha="center", va="center", fontsize=11, fontweight="bold")
        elif r.kind == "header":
            sf.text(0.1 / width, 0.35, r.text, ha="left", va="center", fontsize=10, fontweight="bold")
            sf.add_artist(Line2D([0.1 / width, 1 - 0.1 / width], [0.08, 0.08], color="0.6", linewidth=0.8))
        elif r.kind == "text":
            sf.text(0.1 / width, 0.5, r.text, ha="left", va="center", fontsize=9, style="italic", color="0.25")
        else:
            part_w = [max(n, len(th), 1) * _CELL_W + _MARGIN_W for _, th, n in r.parts]
            ratios = [*part_w, max(width - sum(part_w), 1e-3)]
            cells = sf.subfigures(1, len(ratios), width_ratios=ratios, squeeze=False)[0]
            for cell, (title, thumbs, n_cols), w in zip(cells, r.parts, part_w, strict=False):
                _draw_part(cell, title, thumbs, n_cols, w)
    return fig


def _table(rows: list[_Row]) -> pd.DataFrame:
    records = [t.record for r in rows for _, th, _ in r.parts for t in th]
    cols = ["row", "kind", "nap", "slot", "position", "sample_id", "label", "prediction", "probability"]
    table = pd.DataFrame.from_records(records)
    if table.empty:
        return pd.DataFrame(columns=cols)
    return table[[c for c in cols if c in table] + [c for c in table if c not in cols]]


def _save(rows: list[_Row], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = _render(rows)
    fig.savefig(path, dpi=_DPI)
    _table(rows).to_csv(path.with_suffix(".csv"), index=False)


def _describe(result: NapResult) -> str:
    m = result.meta or {}
    bits = [str(m[k]) for k in ("model", "split") if m.get(k) is not None]
    return " · ".join(bits)


# -- Fig. 1: gallery ---------------------------------------------------------------------------------


def _gallery_rows(
    result: NapResult,
    images: ImageSet,
    *,
    top_naps: int = 8,
    per_nap: int = 10,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> list[_Row]:
    _check_alignment(result, images)
    names = _class_names(images, class_names)
    ranks = range(min(int(top_naps), result.n_naps))
    imgs = _load(images, np.concatenate([result.members(k)[:per_nap] for k in ranks] or [np.zeros(0, np.int64)]))
    if title is None:
        m = result.meta or {}
        title = " · ".join(
            str(x) for x in ("NAPs", m.get("model"), m.get("layer"), m.get("method"), m.get("split")) if x
        )
    rows = [_Row("title", title)]
    if not ranks:
        return [*rows, _Row("text", f"no NAPs: all {len(result.nap)} inputs are noise")]
    n_cols = max(min(per_nap, int(result.size[k])) for k in ranks)
    for k in ranks:
        thumbs = _member_thumbs(result, k, imgs, per_nap, names, row=f"NAP {k}")
        rows.append(_Row("thumbs", parts=[(_nap_title(result, k), thumbs, n_cols)]))
    return rows


def plot_nap_gallery(
    result: NapResult,
    images: ImageSet,
    path: str | Path,
    *,
    top_naps: int = 8,
    per_nap: int = 10,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Gallery of the most persistent NAPs (paper Fig. 1), one row per NAP.

    Parameters
    ----------
    result : NapResult
        NAPs of one layer x method over ``images`` (same positions).
    images : ImageSet
        The inputs the NAPs were extracted from.
    path : str or Path
        PNG to write; a CSV of the thumbnails drawn goes beside it.
    top_naps : int
        Rows: NAP ranks ``0 .. top_naps - 1`` (most persistent first).
    per_nap : int
        Thumbnails per row: the NAP's most probable members.
    class_names : sequence of str, optional
        Names for captions; default ``images.class_names``.
    title : str, optional
        Figure title; default from ``result.meta`` (model, layer, method, split).

    Notes
    -----
    Row titles read ``NAP k · n members · persistence p``; captions
    ``label/prediction``; misclassified members have a red frame. With no NAP
    the figure says so.
    """
    _save(_gallery_rows(result, images, top_naps=top_naps, per_nap=per_nap, class_names=class_names, title=title), path)


# -- Fig. 7: aggregation methods -------------------------------------------------------------------


def _aggregation_rows(
    results_by_method: Mapping[str, NapResult],
    images: ImageSet,
    *,
    top_naps: int = 3,
    per_nap: int = 8,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> list[_Row]:
    names = _class_names(images, class_names)
    needed = []
    for method, r in results_by_method.items():
        _check_alignment(r, images, what=f"result of method {method!r}")
        needed += [r.members(k)[:per_nap] for k in range(min(top_naps, r.n_naps))]
    imgs = _load(images, np.concatenate(needed) if needed else np.zeros(0, np.int64))
    if title is None:
        layers = sorted({str(r.meta.get("layer")) for r in results_by_method.values() if r.meta.get("layer")})
        first = next(iter(results_by_method.values()), None)
        desc = _describe(first) if first is not None else ""
        title = " · ".join(x for x in ("NAPs per disentanglement", desc, ", ".join(layers)) if x)
    rows = [_Row("title", title)]
    if not results_by_method:
        return [*rows, _Row("text", "no results")]
    n_cols = max(
        [min(per_nap, int(r.size[k])) for r in results_by_method.values() for k in range(min(top_naps, r.n_naps))]
        or [1]
    )
    for method, r in results_by_method.items():
        noise = int((np.asarray(r.nap) < 0).sum())
        rows.append(_Row("header", f"{method}: {r.n_naps} NAPs · noise {noise} of {len(r.nap)} inputs"))
        if r.n_naps == 0:
            rows.append(_Row("text", "no NAPs"))
        for k in range(min(top_naps, r.n_naps)):
            thumbs = _member_thumbs(r, k, imgs, per_nap, names, row=f"{method} NAP {k}")
            rows.append(_Row("thumbs", parts=[(_nap_title(r, k), thumbs, n_cols)]))
    return rows


def plot_aggregation_gallery(
    results_by_method: Mapping[str, NapResult],
    images: ImageSet,
    path: str | Path,
    *,
    top_naps: int = 3,
    per_nap: int = 8,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Top NAPs of one layer per disentanglement method (paper Fig. 7).

    Parameters
    ----------
    results_by_method : mapping of str to NapResult
        One layer's NAPs per method (``none``, ``max``, ...); blocks are drawn
        in the mapping's order.
    images : ImageSet
        The inputs of every result (same positions).
    path : str or Path
        PNG to write; a CSV of the thumbnails drawn goes beside it.
    top_naps, per_nap : int
        NAPs per block (most persistent first) and members per NAP.
    class_names : sequence of str, optional
        Names for captions; default ``images.class_names``.
    title : str, optional
        Figure title; default from the results' meta.
    """
    rows = _aggregation_rows(
        results_by_method, images, top_naps=top_naps, per_nap=per_nap, class_names=class_names, title=title
    )
    _save(rows, path)


# -- Fig. 9 / 10: one image through the layers ----------------------------------------------------------


def _follow_rows(
    results_by_layer: Mapping[str, NapResult],
    images: ImageSet,
    position: int,
    *,
    per_nap: int = 8,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> list[_Row]:
    if not results_by_layer:
        raise ValueError("results_by_layer is empty")
    position = int(position)
    if not 0 <= position < len(images):
        raise IndexError(f"position {position} outside the image set of {len(images)} images")
    names = _class_names(images, class_names)
    needed = [np.array([position])]
    for layer, r in results_by_layer.items():
        _check_alignment(r, images, what=f"result of layer {layer!r}")
        if r.nap[position] >= 0:
            needed.append(r.members(int(r.nap[position]))[:per_nap])
    imgs = _load(images, np.concatenate(needed))
    first = next(iter(results_by_layer.values()))
    if title is None:
        m = first.meta or {}
        title = " · ".join(
            str(x) for x in ("one image through the layers", m.get("model"), m.get("method"), m.get("split")) if x
        )
    n_cols = max(
        [min(per_nap, int(r.size[r.nap[position]])) for r in results_by_layer.values() if r.nap[position] >= 0] or [1]
    )
    query = _query_thumb(first, imgs, position, names, row="image")
    rows = [
        _Row("title", title),
        _Row(
            "thumbs",
            parts=[(f"image at position {position} · sample id {int(first.sample_ids[position])}", [query], 1)],
        ),
    ]
    for layer, r in results_by_layer.items():
        k = int(r.nap[position])
        if k < 0:
            rows.append(_Row("text", f"noise in {layer} · outlier score {float(r.outlier_score[position]):.2f}"))
            continue
        members = r.members(k)
        at = int(np.flatnonzero(members == position)[0]) + 1
        text = f"{layer}: {_nap_title(r, k)} · this image is member {at} (p = {float(r.probability[position]):.2f})"
        thumbs = _member_thumbs(r, k, imgs, per_nap, names, row=str(layer), highlight=position)
        rows.append(_Row("thumbs", parts=[(text, thumbs, n_cols)]))
    return rows


def plot_follow_image(
    results_by_layer: Mapping[str, NapResult],
    images: ImageSet,
    position: int,
    path: str | Path,
    *,
    per_nap: int = 8,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """One image and, per layer, the NAP that contains it (paper Fig. 9 / 10).

    Parameters
    ----------
    results_by_layer : mapping of str to NapResult
        NAPs of one model and method per layer, drawn in the mapping's order.
    images : ImageSet
        The inputs of every result (same positions).
    position : int
        Position of the image to follow (index into ``images``).
    path : str or Path
        PNG to write; a CSV of the thumbnails drawn goes beside it.
    per_nap : int
        Members shown of each NAP (most probable first); the followed image
        has a bold blue caption where it is among them.
    class_names : sequence of str, optional
        Names for captions; default ``images.class_names``.
    title : str, optional
        Figure title; default from the first result's meta.

    Notes
    -----
    A layer where the image belongs to no NAP shows ``noise in <layer>``.
    """
    rows = _follow_rows(results_by_layer, images, position, per_nap=per_nap, class_names=class_names, title=title)
    _save(rows, path)


# -- Fig. 14: two models side by side --------------------------------------------------------------------


def _side_by_side_rows(
    results_a: NapResult,
    results_b: NapResult,
    images: ImageSet,
    positions: Sequence[int],
    *,
    names: tuple[str, str] = ("A", "B"),
    per_nap: int = 6,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> list[_Row]:
    _check_alignment(results_a, images, what=f"result of model {names[0]!r}")
    _check_alignment(results_b, images, what=f"result of model {names[1]!r}")
    cnames = _class_names(images, class_names)
    positions = [int(p) for p in positions]
    for p in positions:
        if not 0 <= p < len(images):
            raise IndexError(f"position {p} outside the image set of {len(images)} images")
    needed = [np.asarray(positions, dtype=np.int64)]
    for r in (results_a, results_b):
        needed += [r.members(int(r.nap[p]))[:per_nap] for p in positions if r.nap[p] >= 0]
    imgs = _load(images, np.concatenate(needed))
    if title is None:
        layers = [str(r.meta.get("layer", "")) for r in (results_a, results_b)]
        title = f"same images, two models: {names[0]} ({layers[0]}) vs {names[1]} ({layers[1]})"
    rows = [_Row("title", title)]
    if not positions:
        return [*rows, _Row("text", "no images chosen")]
    n_cols = max(
        [min(per_nap, int(r.size[r.nap[p]])) for r in (results_a, results_b) for p in positions if r.nap[p] >= 0] or [1]
    )
    for p in positions:
        query = _query_thumb(results_a, imgs, p, cnames, row=f"image {p}")
        query.caption = _short(_name(cnames, results_a.labels[p]))
        query.wrong = False
        parts = [(f"image {p}", [query], 1)]
        for n, r in zip(names, (results_a, results_b), strict=True):
            k = int(r.nap[p])
            pred = f"predicts {_short(_name(cnames, r.predictions[p]))}"
            if k < 0:
                parts.append((f"{n} ({pred}): noise", [], n_cols))
                continue
            thumbs = _member_thumbs(r, k, imgs, per_nap, cnames, row=f"image {p} · {n}", highlight=p)
            for t in thumbs:
                t.record["model"] = n
            parts.append((f"{n} ({pred}): NAP {k} · {int(r.size[k])} members", thumbs, n_cols))
        rows.append(_Row("thumbs", parts=parts))
    return rows


def plot_models_side_by_side(
    results_a: NapResult,
    results_b: NapResult,
    images: ImageSet,
    positions: Sequence[int],
    path: str | Path,
    *,
    names: tuple[str, str] = ("A", "B"),
    per_nap: int = 6,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """For chosen images, their NAP in model A next to their NAP in model B (paper Fig. 14).

    Parameters
    ----------
    results_a, results_b : NapResult
        NAPs of two models (a comparable layer each) over the same images.
    images : ImageSet
        The inputs of both results (same positions).
    positions : sequence of int
        Images to compare, one row each: the image (captioned with its label;
        the title gives both models' predictions), then the members of its NAP
        in A, then in B (``noise`` where it belongs to none).
    path : str or Path
        PNG to write; a CSV of the thumbnails drawn goes beside it.
    names : (str, str)
        Names of the two models.
    per_nap : int
        Members shown per NAP, most probable first.
    class_names : sequence of str, optional
        Names for captions; default ``images.class_names``.
    title : str, optional
        Figure title.
    """
    rows = _side_by_side_rows(
        results_a, results_b, images, positions, names=names, per_nap=per_nap, class_names=class_names, title=title
    )
    _save(rows, path)


# -- HTML browser ----------------------------------------------------------------------------------------


def _png_data_uri(img: np.ndarray, thumb_px: int) -> str:
    """PNG data URI of an image (C, H, W); images larger than ``thumb_px`` are shrunk to fit it."""
    from PIL import Image

    arr, _ = _display(img)
    im = Image.fromarray(np.round(arr * 255.0).astype(np.uint8))
    w, h = im.size
    if max(w, h) > thumb_px:
        s = thumb_px / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rounded(a: np.ndarray, digits: int = 4) -> list[float | None]:
    return [round(float(v), digits) if np.isfinite(v) else None for v in np.asarray(a, dtype=np.float64).ravel()]


def _stats_payload(stats: np.ndarray, feature_unit: np.ndarray, max_features: int) -> dict[str, Any]:
    """Box-plot numbers of one NAP: all features, or the ``max_features`` with the largest mean (feature order)."""
    n_feat = int(stats.shape[1])
    if n_feat <= max_features:
        idx = np.arange(n_feat)
        note = f"all {n_feat} features"
    else:
        idx = np.sort(np.argsort(-stats[2], kind="stable")[:max_features])
        note = f"the {max_features} of {n_feat} features with the largest mean, in feature order"
    unit = np.asarray(feature_unit)
    out: dict[str, Any] = {
        "features": [int(i) for i in idx],
        "units": [int(unit[i]) if i < unit.size else int(i) for i in idx],
        "note": note,
    }
    for key, row in zip(("min", "q1", "mean", "q3", "max", "lw", "uw"), stats[:, idx], strict=True):
        out[key] = _rounded(row)
    return out


def _browser_data(
    model_id: str,
    results: Mapping[tuple[str, str], NapResult],
    images: ImageSet,
    *,
    per_nap: int,
    thumb_px: int,
    class_names: Sequence[str] | None,
    max_features: int,
) -> dict[str, Any]:
    names = _class_names(images, class_names)
    layers: list[str] = []
    methods: list[str] = []
    shown: set[int] = set()
    for key, r in results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"results keys must be (layer, method) tuples, got {key!r}")
        _check_alignment(r, images, what=f"result {key!r}")
        layer, method = (str(k) for k in key)
        layers += [layer] if layer not in layers else []
        methods += [method] if method not in methods else []
        for k in range(r.n_naps):
            shown.update(int(p) for p in r.members(k)[:per_nap])
    positions = np.array(sorted(shown), dtype=np.int64)
    first = next(iter(results.values()), None)
    labels = np.asarray(first.labels if first is not None else images.labels)
    preds = np.asarray(first.predictions) if first is not None else labels
    payload_results = []
    for (layer, method), r in results.items():
        naps = []
        for k in range(r.n_naps):
            members = r.members(k)
            mix = pd.DataFrame({"l": r.labels[members], "p": r.predictions[members]}).value_counts(sort=True)
            naps.append(
                {
                    "rank": k,
                    "size": int(r.size[k]),
                    "persistence": float(r.persistence[k]),
                    "members": [int(p) for p in members[:per_nap]],
                    "probs": _rounded(r.probability[members[:per_nap]], 3),
                    "mix": [[int(lp[0]), int(lp[1]), int(c)] for lp, c in mix.items()],
                    "stats": _stats_payload(np.asarray(r.stats[k]), r.feature_unit, max_features),
                }
            )
        entry: dict[str, Any] = {
            "layer": str(layer),
            "method": str(method),
            "nNaps": r.n_naps,
            "nSamples": int(len(r.nap)),
            "nNoise": int((np.asarray(r.nap) < 0).sum()),
            "nFeatures": int(r.stats.shape[2]) if r.stats.ndim == 3 else int(r.meta.get("n_features", 0)),
            "naps": naps,
            "napOf": [int(v) for v in np.asarray(r.nap)[positions]],
            "probOf": _rounded(np.asarray(r.probability)[positions], 3),
        }
        if not np.array_equal(np.asarray(r.predictions), preds):
            entry["predictions"] = [int(v) for v in np.asarray(r.predictions)[positions]]
        payload_results.append(entry)
    meta = dict(first.meta) if first is not None else {}
    return {
        "version": 1,
        "model": str(model_id),
        "dataset": f"{images.name}/{images.split}",
        "split": str(meta.get("split", images.split)),
        "classNames": [str(c) for c in names],
        "thumbPx": int(thumb_px),
        "perNap": int(per_nap),
        "maxFeatures": int(max_features),
        "layers": layers,
        "methods": methods,
        "positions": [int(p) for p in positions],
        "sampleIds": [int(v) for v in np.asarray(images.sample_ids)[positions]],
        "labels": [int(v) for v in labels[positions]],
        "predictions": [int(v) for v in preds[positions]],
        "results": payload_results,
        "images": {str(p): _png_data_uri(img, thumb_px) for p, img in _iter_images(images, positions)},
    }


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #f6f6f4; }
header { position: sticky; top: 0; z-index: 2; background: #23313f; color: #fff; padding: 8px 12px;
  display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; }
header h1 { font-size: 15px; margin: 0 12px 0 0; font-weight: 600; }
header label { white-space: nowrap; }
header select { margin-left: 4px; max-width: 220px; }
#summary { opacity: .8; }
main { display: grid; grid-template-columns: 300px minmax(0, 1fr) 280px; gap: 10px; padding: 10px; align-items: start; }
#naplist { max-height: calc(100vh - 70px); overflow-y: auto; background: #fff; border: 1px solid #ddd; }
.nap { padding: 6px 8px; border-bottom: 1px solid #eee; cursor: pointer; }
.nap:hover { background: #eef3f8; }
.nap.selected { background: #dbe8f5; border-left: 4px solid #1f77b4; padding-left: 4px; }
.nap .t { font-weight: 600; }
.nap .s { color: #555; font-size: 12px; }
.nap .previews img { width: 24px; height: 24px; margin: 3px 2px 0 0; image-rendering: pixelated; object-fit: contain;
  background: #000; }
section, aside { background: #fff; border: 1px solid #ddd; padding: 10px; min-height: 200px; }
h2 { font-size: 15px; margin: 0 0 4px; }
h3 { font-size: 13px; margin: 12px 0 4px; }
.muted { color: #666; }
.members { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 6px; }
figure.thumb { margin: 0; text-align: center; font-size: 10px; color: #333; }
figure.thumb figcaption { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
figure.thumb img { display: block; border: 3px solid transparent; background: #000; cursor: pointer;
  image-rendering: pixelated; object-fit: contain; }
figure.thumb.wrong img { border-color: #d62728; }
figure.thumb.wrong figcaption { color: #a01818; }
figure.thumb.focused img { outline: 2px solid #1f77b4; outline-offset: 1px; }
svg.stats { display: block; max-width: 100%; height: auto; background: #fcfcfc; border: 1px solid #eee; }
svg.stats text { font: 9px system-ui, sans-serif; fill: #444; }
#imageview img.focus { width: 128px; height: 128px; image-rendering: pixelated; object-fit: contain; background: #000;
  display: block; margin: 4px 0; }
#imageview table { border-collapse: collapse; width: 100%; }
#imageview td { padding: 3px 4px; border-bottom: 1px solid #eee; vertical-align: top; }
#imageview tr.current td { background: #eef3f8; font-weight: 600; }
.noise { color: #888; font-style: italic; }
a { color: #1f5f99; }
.err { color: #a01818; font-weight: 600; }
"""

_JS = r"""
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("nap-data").textContent);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
  const cname = (c) => (c >= 0 && c < D.classNames.length ? D.classNames[c] : String(c));
  const idxOf = new Map(D.positions.map((p, i) => [p, i]));
  const byKey = new Map(D.results.map((r) => [r.layer + "\u0000" + r.method, r]));
  const T = D.thumbPx;
  const defaults = {layer: D.layers[0] || "", method: D.methods[0] || "", nap: "", image: "", label: "", pred: "",
    wrong: ""};
  let state = Object.assign({}, defaults);

  function parseHash() {
    const q = new URLSearchParams(location.hash.replace(/^#/, ""));
    const s = Object.assign({}, defaults);
    for (const k of Object.keys(defaults)) if (q.has(k)) s[k] = q.get(k);
    return s;
  }
  function hashOf(s) {
    const q = new URLSearchParams();
    for (const k of Object.keys(defaults)) if (s[k] !== "" && s[k] !== null && s[k] !== undefined) q.set(k, s[k]);
    return "#" + q.toString();
  }
  function go(patch) {
    const h = hashOf(Object.assign({}, state, patch));
    if (h === location.hash) render(); else location.hash = h;
  }
  const predOf = (r, i) => (r.predictions || D.predictions)[i];
  function matches(l, p) {
    return (state.label === "" || l === +state.label) && (state.pred === "" || p === +state.pred)
      && (state.wrong === "" || l !== p);
  }
  const filtering = () => state.label !== "" || state.pred !== "" || state.wrong !== "";

  function fillSelect(el, values, labels, withAny) {
    el.innerHTML = (withAny ? '<option value="">any</option>' : "")
      + values.map((v, i) => '<option value="' + esc(v) + '">' + esc(labels[i]) + "</option>").join("");
  }
  function setup() {
    $("model").textContent = D.model + " · " + D.dataset;
    document.title = "NAPs · " + D.model;
    fillSelect($("layer"), D.layers, D.layers, false);
    fillSelect($("method"), D.methods, D.methods, false);
    const cls = D.classNames.map((_, i) => String(i));
    fillSelect($("flabel"), cls, D.classNames, true);
    fillSelect($("fpred"), cls, D.classNames, true);
    $("layer").addEventListener("change", (e) => go({layer: e.target.value, nap: ""}));
    $("method").addEventListener("change", (e) => go({method: e.target.value, nap: ""}));
    $("flabel").addEventListener("change", (e) => go({label: e.target.value, nap: ""}));
    $("fpred").addEventListener("change", (e) => go({pred: e.target.value, nap: ""}));
    $("fwrong").addEventListener("change", (e) => go({wrong: e.target.checked ? "1" : "", nap: ""}));
    $("naplist").addEventListener("click", (e) => {
      const el = e.target.closest(".nap");
      if (el) go({nap: el.dataset.rank});
    });
    document.body.addEventListener("click", (e) => {
      const im = e.target.closest("img[data-pos]");
      if (im) go({image: im.dataset.pos});
    });
    window.addEventListener("hashchange", () => { state = parseHash(); render(); });
  }

  function thumb(r, pos, prob, cls, focused) {
    const i = idxOf.get(pos);
    const l = D.labels[i], p = predOf(r, i);
    const wrong = l !== p;
    const tip = "position " + pos + " · sample id " + D.sampleIds[i] + " · label " + cname(l) + " · prediction "
      + cname(p) + (prob === null || prob === undefined ? "" : " · p=" + prob);
    return '<figure class="thumb' + (wrong ? " wrong" : "") + (focused ? " focused" : "") + '" style="width:'
      + (T + 6) + 'px">'
      + '<img class="' + cls + '" data-pos="' + pos + '" width="' + T + '" height="' + T + '" alt="' + esc(tip)
      + '" title="' + esc(tip) + '" src="' + D.images[pos] + '">'
      + "<figcaption>" + esc(cname(l)) + "/" + esc(cname(p)) + "</figcaption></figure>";
  }

  function statsSvg(st) {
    const n = st.features.length;
    if (!n) return "";
    const L = 44, R = 8, Tp = 8, B = 34, step = Math.max(6, Math.min(16, 640 / n));
    const W = L + R + n * step, H = 190;
    const vals = st.min.concat(st.max).filter((v) => v !== null);
    let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
    if (hi - lo < 1e-9) hi = lo + 1;
    const y = (v) => Tp + (hi - v) / (hi - lo) * (H - Tp - B);
    const f = (v) => (v === null ? "n/a" : (+v).toFixed(3));
    const out = ['<svg class="stats" viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '">'];
    out.push('<line x1="' + L + '" x2="' + L + '" y1="' + Tp + '" y2="' + (H - B) + '" stroke="#999"/>');
    for (const v of [lo, 0, hi]) {
      out.push('<line x1="' + (L - 3) + '" x2="' + (W - R) + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="'
        + (v === 0 ? "#bbb" : "#eee") + '"' + (v === 0 ? ' stroke-dasharray="3,3"' : "") + "/>");
      out.push('<text x="' + (L - 5) + '" y="' + (y(v) + 3) + '" text-anchor="end">' + f(v) + "</text>");
    }
    const every = Math.ceil(n / 16);
    for (let j = 0; j < n; j++) {
      const cx = L + step * (j + 0.5), bw = Math.max(2, step * 0.6);
      const g = (k) => st[k][j];
      if ([g("q1"), g("q3"), g("mean"), g("lw"), g("uw")].some((v) => v === null)) continue;
      out.push('<g class="feat"><title>feature ' + st.features[j] + " (unit " + st.units[j] + ")\nmin " + f(g("min"))
        + "\nlower whisker " + f(g("lw")) + "\nq1 " + f(g("q1")) + "\nmean " + f(g("mean")) + "\nq3 " + f(g("q3"))
        + "\nupper whisker " + f(g("uw")) + "\nmax " + f(g("max")) + "</title>");
      out.push('<rect x="' + (cx - step / 2) + '" y="' + Tp + '" width="' + step + '" height="' + (H - Tp - B)
        + '" fill="transparent"/>');
      out.push('<line x1="' + cx + '" x2="' + cx + '" y1="' + y(g("uw")) + '" y2="' + y(g("lw")) + '" stroke="#555"/>');
      for (const k of ["lw", "uw"]) {
        out.push('<line x1="' + (cx - bw / 3) + '" x2="' + (cx + bw / 3) + '" y1="' + y(g(k)) + '" y2="' + y(g(k))
          + '" stroke="#555"/>');
      }
      const top = y(g("q3")), h = Math.max(1, y(g("q1")) - top);
      out.push('<rect x="' + (cx - bw / 2) + '" y="' + top + '" width="' + bw + '" height="' + h
        + '" fill="#9ecae1" stroke="#2b6c99" stroke-width="0.8"/>');
      out.push('<line x1="' + (cx - bw / 2) + '" x2="' + (cx + bw / 2) + '" y1="' + y(g("mean")) + '" y2="'
        + y(g("mean")) + '" stroke="#e6550d" stroke-width="2"/>');
      for (const [k, w] of [["min", "lw"], ["max", "uw"]]) {
        if (g(k) !== null && Math.abs(g(k) - g(w)) > 1e-9) {
          out.push('<circle cx="' + cx + '" cy="' + y(g(k)) + '" r="1.6" fill="#555"/>');
        }
      }
      out.push("</g>");
      if (j % every === 0) {
        out.push('<text x="' + cx + '" y="' + (H - B + 12) + '" text-anchor="middle">' + st.features[j] + "</text>");
      }
    }
    out.push('<text x="' + (L + (W - L - R) / 2) + '" y="' + (H - 6) + '" text-anchor="middle">feature</text>');
    out.push("</svg>");
    return out.join("");
  }

  function renderList(r) {
    const naps = r.naps.slice().sort((a, b) => b.persistence - a.persistence || a.rank - b.rank);
    const rows = [];
    for (const n of naps) {
      let count = 0;
      for (const [l, p, c] of n.mix) if (matches(l, p)) count += c;
      if (filtering() && count === 0) continue;
      const byLabel = new Map();
      for (const [l, , c] of n.mix) byLabel.set(l, (byLabel.get(l) || 0) + c);
      const [top, topCount] = [...byLabel.entries()].sort((a, b) => b[1] - a[1])[0] || [0, 0];
      const wrong = n.mix.reduce((s, [l, p, c]) => s + (l !== p ? c : 0), 0);
      rows.push('<div class="nap' + (String(n.rank) === state.nap ? " selected" : "") + '" data-rank="' + n.rank
        + '"><div class="t">NAP ' + n.rank + "</div>"
        + '<div class="s">' + n.size + " members · persistence " + n.persistence.toFixed(3) + "</div>"
        + '<div class="s">mostly ' + esc(cname(top)) + " (" + Math.round(100 * topCount / n.size) + "%) · "
        + wrong + " misclassified" + (filtering() ? " · " + count + " match the filters" : "") + "</div>"
        + '<div class="previews">' + n.members.slice(0, 6).map((p) => '<img class="preview" alt="" src="'
          + D.images[p] + '">').join("") + "</div></div>");
    }
    $("naplist").innerHTML = rows.length ? rows.join("")
      : '<div class="nap-empty muted" style="padding:8px">' + (r.naps.length ? "no NAP matches the filters"
        : "no NAPs: all inputs are noise") + "</div>";
    return rows.length;
  }

  function renderDetail(r) {
    const n = r.naps.find((x) => String(x.rank) === state.nap);
    if (!n) {
      $("detail").innerHTML = '<p class="muted">' + (r.naps.length ? "select a NAP on the left" : "no NAPs") + "</p>";
      return;
    }
    const shown = [];
    n.members.forEach((p, j) => {
      const i = idxOf.get(p);
      if (matches(D.labels[i], predOf(r, i))) shown.push(thumb(r, p, n.probs[j], "member", String(p) === state.image));
    });
    const byLabel = new Map();
    for (const [l, , c] of n.mix) byLabel.set(l, (byLabel.get(l) || 0) + c);
    const mix = [...byLabel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
      .map(([l, c]) => esc(cname(l)) + " " + c).join(", ");
    $("detail").innerHTML = "<h2>NAP " + n.rank + " · " + n.size + " members · persistence "
      + n.persistence.toFixed(3) + "</h2>"
      + '<div class="muted">' + esc(r.layer) + " · " + esc(r.method) + " · labels: " + mix + "</div>"
      + '<div class="muted">members by membership probability: the first ' + n.members.length + " of " + n.size
      + (filtering() ? ", " + shown.length + " of them match the filters" : "")
      + "; caption label/prediction, red frame = misclassified; click an image to follow it</div>"
      + '<div class="members">' + shown.join("") + "</div>"
      + "<h3>unit statistics (normalized activations of the members)</h3>"
      + '<div class="muted">' + esc(n.stats.note) + " · box q1–q3, orange bar mean, "
      + "whiskers q1 − 1.5 IQR … q3 + 1.5 IQR (clipped to min / max), dots min / max</div>"
      + statsSvg(n.stats);
  }

  function renderImage() {
    const el = $("imageview");
    const pos = state.image === "" ? NaN : +state.image;
    if (!idxOf.has(pos)) {
      el.innerHTML = '<h2>image view</h2><p class="muted">click an image to see which NAP contains it in each layer'
        + " of the current method.</p>";
      return;
    }
    const i = idxOf.get(pos);
    const rows = D.layers.map((layer) => {
      const r = byKey.get(layer + "\u0000" + state.method);
      const cur = layer === state.layer ? ' class="current"' : "";
      if (!r) return "<tr" + cur + "><td>" + esc(layer) + '</td><td class="muted">no result</td></tr>';
      const k = r.napOf[i];
      if (k < 0) return "<tr" + cur + "><td>" + esc(layer) + '</td><td class="noise">noise in ' + esc(layer)
        + "</td></tr>";
      const n = r.naps[k];
      const h = hashOf({layer: layer, method: state.method, nap: String(k), image: String(pos), label: "", pred: "",
        wrong: ""});
      const inShown = n.members.indexOf(pos) >= 0 ? "" : " (not among the " + n.members.length + " shown)";
      return "<tr" + cur + "><td>" + esc(layer) + '</td><td><a class="jump" href="' + esc(h) + '">NAP ' + k + "</a> · "
        + n.size + " members · p=" + r.probOf[i] + inShown + "</td></tr>";
    });
    const first = D.results.find((r) => r.method === state.method) || D.results[0];
    el.innerHTML = "<h2>image view</h2>"
      + '<img class="focus" alt="" src="' + D.images[pos] + '">'
      + "<div>position " + pos + " · sample id " + D.sampleIds[i] + "</div>"
      + "<div>label <b>" + esc(cname(D.labels[i])) + "</b> · prediction <b>" + esc(cname(predOf(first, i)))
      + "</b></div><h3>NAP per layer (" + esc(state.method) + ")</h3><table>" + rows.join("") + "</table>";
  }

  function render() {
    if (!D.layers.includes(state.layer)) state.layer = defaults.layer;
    if (!D.methods.includes(state.method)) state.method = defaults.method;
    $("layer").value = state.layer;
    $("method").value = state.method;
    $("flabel").value = state.label;
    $("fpred").value = state.pred;
    $("fwrong").checked = state.wrong !== "";
    const r = byKey.get(state.layer + "\u0000" + state.method);
    if (!r) {
      $("summary").textContent = "";
      $("naplist").innerHTML = '<div class="muted" style="padding:8px">no result for this layer and method</div>';
      $("detail").innerHTML = '<p class="muted">no result for layer ' + esc(state.layer) + " with method "
        + esc(state.method) + "</p>";
      renderImage();
      return;
    }
    $("summary").textContent = r.nNaps + " NAPs · noise " + r.nNoise + " of " + r.nSamples + " inputs";
    if (state.nap === "" || !r.naps.some((n) => String(n.rank) === state.nap)) {
      state.nap = "";
      renderList(r);
      const firstNap = $("naplist").querySelector(".nap");
      if (firstNap) state.nap = firstNap.dataset.rank;
    }
    renderList(r);
    renderDetail(r);
    renderImage();
  }

  try {
    setup();
    state = parseHash();
    render();
    markReady();
  } catch (err) {
    markFailed(err, "detail", "the browser");
  }
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NAPs · @@TITLE@@</title>
<style>@@CSS@@</style>
</head>
<body data-ready="0" data-loaded-images="0">
<header>
<h1>NAP browser · <span id="model">@@TITLE@@</span></h1>
<label>layer <select id="layer"></select></label>
<label>method <select id="method"></select></label>
<label>label <select id="flabel"></select></label>
<label>prediction <select id="fpred"></select></label>
<label><input type="checkbox" id="fwrong"> misclassified only</label>
<span id="summary"></span>
</header>
<main>
<nav id="naplist"></nav>
<section id="detail"><noscript>This page needs JavaScript.</noscript></section>
<aside id="imageview"></aside>
</main>
<script type="application/json" id="nap-data">@@DATA@@</script>
<script>@@READY@@</script>
<script>@@JS@@</script>
</body>
</html>
"""


def write_browser(
    path: str | Path,
    model_id: str,
    results: Mapping[tuple[str, str], NapResult],
    images: ImageSet,
    *,
    per_nap: int = 40,
    thumb_px: int = 48,
    class_names: Sequence[str] | None = None,
    max_features: int = 64,
) -> None:
    """Write one self-contained HTML file to browse the NAPs of a model (works from ``file://``).

    Parameters
    ----------
    path : str or Path
        HTML file to write.
    model_id : str
        Model shown in the header.
    results : mapping of (layer, method) to NapResult
        NAPs of the model per layer and disentanglement method, all over
        ``images``; selectors list layers and methods in order of appearance.
    images : ImageSet
        The inputs of every result (same positions).
    per_nap : int
        Members kept per NAP (most probable first).
    thumb_px : int
        Thumbnail size in CSS pixels; images larger than this are stored shrunk
        to it, smaller ones at their own size (drawn scaled, pixelated).
    class_names : sequence of str, optional
        Names for captions and filters; default ``images.class_names``.
    max_features : int
        Features drawn in a NAP's unit-statistics plot: all when there are at
        most this many, otherwise the ``max_features`` with the largest mean
        (the page says which).

    Notes
    -----
    Everything is inline: data as JSON in a ``<script type="application/json"
    id="nap-data">`` element (NAPs per result with ``rank``, ``size``,
    ``persistence``, shown ``members``, the label x prediction ``mix`` and box
    statistics), images as base64 PNG data URIs, each image that appears as a
    shown member stored once. The page offers layer and method selectors, the
    NAP list sorted by persistence (elements of class ``nap``), the members of
    the selected NAP (``img.member``; red frame = misclassified), filters by
    label, prediction and misclassification, a box-and-whisker plot per NAP
    (inline SVG), and an image view: clicking an image lists, for every layer
    of the current method, the NAP that holds it (or noise) with a link there.
    The state is kept in the URL fragment (``#layer=...&method=...&nap=...&image=...``).
    When the first view has rendered and its images have loaded the page sets
    ``document.body.dataset.ready = "1"`` and ``dataset.loadedImages``.
    """
    data = _browser_data(
        model_id,
        results,
        images,
        per_nap=int(per_nap),
        thumb_px=int(thumb_px),
        class_names=class_names,
        max_features=int(max_features),
    )
    page = _PAGE.replace("@@TITLE@@", html.escape(str(model_id))).replace("@@CSS@@", _CSS).replace("@@JS@@", _JS)
    page = page.replace("@@READY@@", READY_JS)
    page = page.replace("@@DATA@@", inline_json(data))  # last: nothing is substituted inside the data
    write_page(path, page)
