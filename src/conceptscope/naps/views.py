"""Views of NAPs: paper-style image galleries (PNG), each with the CSV of the thumbnails it draws.

Reproduces the visual side of Bäuerle, Jönsson and Ropinski, "Neural
Activation Patterns (NAPs)":

- :func:`plot_nap_gallery` (paper Fig. 1): one row per NAP, its most probable
  members as thumbnails;
- :func:`plot_aggregation_gallery` (Fig. 7): the top NAPs of one layer, one
  block per disentanglement (location aggregation) method;
- :func:`plot_follow_image` (Fig. 9 / 10): one image through the layers, with
  the NAP that holds it in each layer (or noise);
- :func:`plot_models_side_by_side` (Fig. 14): for chosen images, the NAP that
  holds each in model A next to the one in model B.

The HTML browser of a model's NAPs is :mod:`conceptscope.naps.browser`.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure, SubFigure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..data import ImageSet  # noqa: E402
from ..imaging import display_image, load_images  # noqa: E402
from ..runtime import save_figure, write_table  # noqa: E402
from .core import NapResult  # noqa: E402
from .settings import NapSettings  # noqa: E402

__all__ = [
    "FigureOptions",
    "check_alignment",
    "plot_aggregation_gallery",
    "plot_follow_image",
    "plot_models_side_by_side",
    "plot_nap_gallery",
    "resolve_class_names",
]

_CELL_W = 1.0  # inches per thumbnail column
_MARGIN_W = 0.3  # inches left + right of a row
_HEIGHTS = {"title": 0.5, "header": 0.38, "text": 0.5, "thumbs": 1.55}  # inches per row kind
_CAPTION_PT = 6.5  # caption font size
_CAPTION_MIN_PT = 4.0  # smallest caption font (names up to ~29 characters a line)
_CAPTION_CHARS = 18  # characters of a caption line that fit a thumbnail column at _CAPTION_PT
_DPI = 110
_WRONG = "#d62728"  # frame of misclassified inputs
_HIGHLIGHT = "#1f77b4"  # caption of the followed image


class FigureOptions(TypedDict, total=False):
    """Keyword options every NAP figure takes.

    Attributes
    ----------
    class_names : sequence of str or None
        Names for captions; default ``images.class_names``.
    title : str or None
        Figure title; the default (None) is made from the results' meta.
    """

    class_names: Sequence[str] | None
    title: str | None


# -- inputs ------------------------------------------------------------------------------------


def check_alignment(result: NapResult, images: ImageSet, what: str = "result") -> None:
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


def resolve_class_names(images: ImageSet, class_names: Sequence[str] | None) -> list[str]:
    """The class names of captions: ``class_names`` if given, else the image set's own."""
    return list(class_names) if class_names is not None else list(getattr(images, "class_names", []) or [])


def _name(names: Sequence[str], c: Any) -> str:
    c = int(c)
    return str(names[c]) if 0 <= c < len(names) else str(c)


def _caption(names: Sequence[str], label: Any, prediction: Any) -> str:
    """``label/prediction`` by class name, whole: on two lines (``label/`` over ``prediction``) when one
    line would not fit a thumbnail; :func:`_caption_size` shrinks the font for longer names."""
    a, b = _name(names, label), _name(names, prediction)
    one = f"{a}/{b}"
    return one if len(one) <= _CAPTION_CHARS else f"{a}/\n{b}"


def _caption_size(caption: str) -> float:
    """Font size (points) at which every line of ``caption`` fits a thumbnail column."""
    longest = max(len(line) for line in caption.splitlines())
    return max(_CAPTION_MIN_PT, min(_CAPTION_PT, _CAPTION_PT * _CAPTION_CHARS / max(longest, 1)))


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
    img, cmap = display_image(t.image)
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
        fontsize=_caption_size(t.caption),
        labelpad=2,
        linespacing=1.0,
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
        gridspec_kw={"left": pad, "right": 1 - pad, "top": 1 - 0.3 / h, "bottom": 0.3 / h, "wspace": 0.12},
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
    save_figure(fig, path, dpi=_DPI)
    write_table(_table(rows), path.with_suffix(".csv"), index=False)


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
    per_nap: int = NapSettings.per_nap,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> list[_Row]:
    check_alignment(result, images)
    names = resolve_class_names(images, class_names)
    ranks = range(min(int(top_naps), result.n_naps))
    imgs = load_images(images, np.concatenate([result.members(k)[:per_nap] for k in ranks] or [np.zeros(0, np.int64)]))
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
    per_nap: int = NapSettings.per_nap,
    **options: Unpack[FigureOptions],
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
    **options
        ``class_names`` and ``title`` (:class:`FigureOptions`); the default title names
        model, layer, method, split of ``result.meta``.

    Notes
    -----
    Row titles read ``NAP k · n members · persistence p``; captions
    ``label/prediction``; misclassified members have a red frame. With no NAP
    the figure says so.
    """
    _save(_gallery_rows(result, images, top_naps=top_naps, per_nap=per_nap, **options), path)


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
    names = resolve_class_names(images, class_names)
    needed = []
    for method, r in results_by_method.items():
        check_alignment(r, images, what=f"result of method {method!r}")
        needed += [r.members(k)[:per_nap] for k in range(min(top_naps, r.n_naps))]
    imgs = load_images(images, np.concatenate(needed) if needed else np.zeros(0, np.int64))
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
    **options: Unpack[FigureOptions],
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
    **options
        ``class_names`` and ``title`` (:class:`FigureOptions`); the default title names from the results' meta.
    """
    rows = _aggregation_rows(results_by_method, images, top_naps=top_naps, per_nap=per_nap, **options)
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
    names = resolve_class_names(images, class_names)
    needed = [np.array([position])]
    for layer, r in results_by_layer.items():
        check_alignment(r, images, what=f"result of layer {layer!r}")
        if r.nap[position] >= 0:
            needed.append(r.members(int(r.nap[position]))[:per_nap])
    imgs = load_images(images, np.concatenate(needed))
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
    **options: Unpack[FigureOptions],
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
    **options
        ``class_names`` and ``title`` (:class:`FigureOptions`); the default title names from the first result's meta.

    Notes
    -----
    A layer where the image belongs to no NAP shows ``noise in <layer>``.
    """
    rows = _follow_rows(results_by_layer, images, position, per_nap=per_nap, **options)
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
    check_alignment(results_a, images, what=f"result of model {names[0]!r}")
    check_alignment(results_b, images, what=f"result of model {names[1]!r}")
    cnames = resolve_class_names(images, class_names)
    positions = [int(p) for p in positions]
    for p in positions:
        if not 0 <= p < len(images):
            raise IndexError(f"position {p} outside the image set of {len(images)} images")
    needed = [np.asarray(positions, dtype=np.int64)]
    for r in (results_a, results_b):
        needed += [r.members(int(r.nap[p]))[:per_nap] for p in positions if r.nap[p] >= 0]
    imgs = load_images(images, np.concatenate(needed))
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
        query.caption = _name(cnames, results_a.labels[p])
        query.wrong = False
        parts = [(f"image {p}", [query], 1)]
        for n, r in zip(names, (results_a, results_b), strict=True):
            k = int(r.nap[p])
            pred = f"predicts {_name(cnames, r.predictions[p])}"
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
    **options: Unpack[FigureOptions],
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
    **options
        ``class_names`` and ``title`` (:class:`FigureOptions`); the default title names the two models and layers.
    """
    rows = _side_by_side_rows(results_a, results_b, images, positions, names=names, per_nap=per_nap, **options)
    _save(rows, path)
