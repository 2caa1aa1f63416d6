"""Views of NeurFlow circuits: a layered PNG figure, a self-contained HTML page and a concept-labelling export.

A circuit (Cao et al., ICLR 2025; built by :mod:`conceptscope.neurflow_circuit`)
is a layered graph for one class: ``layers`` from the logit layer (top) down
through the probed blocks, ``nodes`` (neuron groups of one layer, each with its
top patches), ``edges`` from a group of one layer to a group of the layer
directly below it with a signed weight, and ``patches`` (image, crop scale and
box of each listed patch). The views here:

- :func:`plot_circuit` (paper Fig. 7): one band per layer, logit at the top,
  each group a block of its top patch thumbnails, edges as lines between the
  blocks of consecutive layers (width and opacity by |weight|, colour by sign);
  a CSV beside the PNG lists the thumbnails drawn;
- :func:`write_circuit_html`: one HTML file, usable from ``file://`` without a
  server, with the groups as cards, the edges in SVG and a detail panel;
- :func:`write_labelling_export`: folders of patch PNGs plus a prompt per group
  and per connected pair of groups, ready to hand to a multimodal model that
  names the concepts (no model is called here);
- :func:`validate_circuit`: the structural checks all of them run first.

Patch pixels are passed separately, ``patch_images[patch_id]``: an array
H x W (grey) or H x W x 3 (RGB; H x W x 1 and H x W x 4 are read as grey and as
RGB without alpha; 1 x H x W and 3 x H x W channel-first arrays are accepted
too). Values are expected in [0, 1]; an image with values outside [0, 1] (for
instance still normalized for the model) is rescaled for display by its own
minimum and maximum, each image separately, so colours are comparable within a
patch but not across such patches. Keys may be ``int`` or ``str`` patch ids.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from .pages import READY_JS, inline_json, write_page  # noqa: E402

__all__ = [
    "CIRCUIT_ANSWER_FORM",
    "CIRCUIT_INSTRUCTIONS",
    "CIRCUIT_PROMPT",
    "GROUP_ANSWER_FORM",
    "GROUP_INSTRUCTIONS",
    "GROUP_PROMPT",
    "PROMPT_ROLE",
    "plot_circuit",
    "validate_circuit",
    "write_circuit_html",
    "write_labelling_export",
]

_DPI = 110
_POSITIVE = "#1f77b4"  # edges of positive weight
_NEGATIVE = "#d62728"  # edges of negative weight
_THUMB_IN = 0.6  # inches per thumbnail cell in the figure
_BLOCK_MIN_IN = 1.7  # minimum width of a group block (room for its caption)
_BLOCK_PAD_IN = 0.3  # horizontal gap between group blocks
_MARGIN_IN = 0.35  # left and right figure margin
_TITLE_IN = 0.55  # figure title strip
_LAYER_IN = 0.32  # layer header line of a band
_CAPTION_IN = 0.4  # two caption lines above a block's thumbnails
_GAP_IN = 0.95  # vertical room between two bands, where the edges run
_HEAD_CHAR_IN = 0.085  # rough width of a character of a layer header (9.5 pt bold)
_NOTE_CHAR_IN = 0.066  # ... and of the footer notes (8 pt), for wrapping
_NOTE_LINE_IN = 0.17  # height of a footer line
_LW_MAX = 5.0  # line width of the heaviest edge (points)
_NEURONS_SHOWN = 4  # neuron indices listed in a figure caption
_CARD_THUMBS = 6  # patch previews on an HTML group card (the detail panel shows all carried ones)
_EXPORT_MIN_PX = 96  # exported patch PNGs are upscaled (nearest) until their shorter side reaches this

# -- prompt templates (labelling export) ----------------------------------------------------------------

PROMPT_ROLE = """\
## Role
You work as an image captioner. Your job is to describe what can be seen in pictures: precisely, briefly, and
without speculating about anything that is not visible."""

GROUP_INSTRUCTIONS = """\
## Instructions
The {n_images} attached images are small crops taken from larger photos. All of them strongly excite the same
group of units ({node}) in layer {layer} of an image classifier.
- Look for the visual features that most of the crops have in common.
- Some crops may not fit the rest; leave those few outliers out of your answer.
- Report only objective visual properties: shapes, textures, colours, patterns and object parts.
- Do not try to name the object category or the class the crops were taken from.
- Keep the caption to one or two sentences."""

GROUP_ANSWER_FORM = """\
## Answer form
Common features:
- <feature 1>
- <feature 2>
- ...
Caption: <one line summing up the shared features>"""

CIRCUIT_INSTRUCTIONS = """\
## Instructions
You get two sets of small crops taken from larger photos, both from an image classifier that builds features
layer by layer.
- Folder "lower/" ({n_lower} images) excites the lower-level group {lower} in layer {lower_layer}.
- Folder "upper/" ({n_upper} images) excites the higher-level group {upper} in layer {upper_layer}.
The higher-level group draws on the lower-level one with a connection weight of {weight}.
- For each folder separately, look for the visual features that most of its crops have in common.
- Some crops may not fit the rest; leave those few outliers out of your answer.
- Report only objective visual properties: shapes, textures, colours, patterns and object parts.
- Do not try to name the object category or the class the crops were taken from.
- Keep the final caption to one or two sentences."""

CIRCUIT_ANSWER_FORM = """\
## Answer form
Lower-level features ({lower}):
- <feature L1>
- ...
Higher-level features ({upper}):
- <feature H1>
- ...
Links (one line per higher-level feature):
- <feature H1> <- <the lower-level feature it builds on, or "no match">
- ...
Caption: <one line on how the features change from the lower-level group to the higher-level group>"""

GROUP_PROMPT = "\n\n".join([PROMPT_ROLE, GROUP_INSTRUCTIONS, GROUP_ANSWER_FORM]) + "\n"
CIRCUIT_PROMPT = "\n\n".join([PROMPT_ROLE, CIRCUIT_INSTRUCTIONS, CIRCUIT_ANSWER_FORM]) + "\n"


# -- validation -------------------------------------------------------------------------------------------


def _pixels(patch_images: Mapping[Any, np.ndarray], pid: int) -> np.ndarray | None:
    """Pixels of patch ``pid`` whether ``patch_images`` is keyed by int or by str."""
    if pid in patch_images:
        return patch_images[pid]
    return patch_images.get(str(pid)) if hasattr(patch_images, "get") else None


def _check_pixels(patch_images: Mapping[Any, np.ndarray], needed: Sequence[int], where: Mapping[int, str]) -> None:
    for pid in needed:
        if _pixels(patch_images, pid) is None:
            raise ValueError(f"patch {pid} (top patch of node {where.get(pid, '?')}) has no pixels in patch_images")


def validate_circuit(circuit: Mapping, *, patch_images: Mapping[Any, np.ndarray] | None = None) -> None:
    """Raise ``ValueError`` when ``circuit`` is not a well-formed NeurFlow circuit.

    Parameters
    ----------
    circuit : mapping
        The circuit dict (see the module docstring); ``model``, ``class_name``,
        ``settings`` and other keys are optional and not checked.
    patch_images : mapping of patch id to array, optional
        When given, every top patch of every node must have pixels here.

    Raises
    ------
    ValueError
        With a message naming the offending layer, node, edge or patch id:
        ``layers`` missing, empty or with repeats; a node without ``id``, with
        a repeated id, of a layer not in ``layers``, or whose ``neurons`` /
        ``top_patches`` are not lists of integers; a top patch without an entry
        in ``patches`` (or with a malformed one: ``image``, ``scale`` and a
        four-element ``box`` are required); an edge to or from an unknown node,
        not from a layer to the layer directly below it, or with a missing or
        non-finite weight; a top patch without pixels in ``patch_images``.
    """
    if not isinstance(circuit, Mapping):
        raise ValueError(f"a circuit must be a mapping, got {type(circuit).__name__}")
    for key in ("layers", "nodes", "edges", "patches"):
        if key not in circuit:
            raise ValueError(f"the circuit has no {key!r} entry")
    layers = circuit["layers"]
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise ValueError(f"circuit['layers'] must be a non-empty list of layer names, got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"circuit['layers'] repeats a layer: {list(layers)}")
    level = {str(name): i for i, name in enumerate(layers)}
    patches = circuit["patches"]
    if not isinstance(patches, Mapping):
        raise ValueError("circuit['patches'] must map patch ids to their image, scale and box")
    nodes: dict[str, Mapping] = {}
    where: dict[int, str] = {}
    for k, node in enumerate(circuit["nodes"]):
        if not isinstance(node, Mapping) or "id" not in node:
            raise ValueError(f"node #{k} has no 'id'")
        nid = str(node["id"])
        if nid in nodes:
            raise ValueError(f"node id {nid!r} appears twice")
        if str(node.get("layer")) not in level:
            raise ValueError(f"node {nid!r} is of layer {node.get('layer')!r}, which is not in layers {list(layers)}")
        if not isinstance(node.get("group"), int | np.integer):
            raise ValueError(f"node {nid!r} has no integer 'group'")
        for key in ("neurons", "top_patches"):
            vals = node.get(key)
            if not isinstance(vals, Sequence) or isinstance(vals, str) or not all(_is_int(v) for v in vals):
                raise ValueError(f"node {nid!r}: {key!r} must be a list of integers, got {vals!r}")
        for pid in node["top_patches"]:
            info = patches.get(str(int(pid)), patches.get(int(pid)))
            if info is None:
                raise ValueError(f"patch {int(pid)} (top patch of node {nid!r}) has no entry in circuit['patches']")
            box = info.get("box") if isinstance(info, Mapping) else None
            if not isinstance(info, Mapping) or "image" not in info or "scale" not in info or not _is_box(box):
                raise ValueError(
                    f"patch {int(pid)}: its entry needs 'image', 'scale' and a 4-element 'box', got {info!r}"
                )
            where.setdefault(int(pid), nid)
        nodes[nid] = node
    for k, edge in enumerate(circuit["edges"]):
        if not isinstance(edge, Mapping):
            raise ValueError(f"edge #{k} is not a mapping: {edge!r}")
        src, dst = str(edge.get("source")), str(edge.get("target"))
        for end in (src, dst):
            if end not in nodes:
                raise ValueError(f"edge #{k} ({src} -> {dst}) refers to unknown node {end!r}")
        a, b = level[str(nodes[src]["layer"])], level[str(nodes[dst]["layer"])]
        if b != a + 1:
            raise ValueError(
                f"edge #{k} ({src} -> {dst}) must go from a layer to the one directly below it in layers {list(layers)}"
            )
        w = edge.get("weight")
        if not isinstance(w, int | float | np.number) or isinstance(w, bool) or not math.isfinite(float(w)):
            raise ValueError(f"edge #{k} ({src} -> {dst}) has a missing or non-finite weight {w!r}")
    if patch_images is not None:
        _check_pixels(patch_images, sorted(where), where)


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_box(box: Any) -> bool:
    return isinstance(box, Sequence) and not isinstance(box, str) and len(box) == 4


# -- shared helpers ---------------------------------------------------------------------------------------


@dataclass
class _Graph:
    """A validated circuit, indexed."""

    layers: list[str]
    nodes: dict[str, dict[str, Any]]
    by_layer: dict[str, list[str]]  # node ids per layer, by group index
    edges: list[dict[str, Any]]
    patches: dict[int, dict[str, Any]]

    def top(self, nid: str, n: int) -> list[int]:
        return [int(p) for p in self.nodes[nid]["top_patches"][: max(0, int(n))]]

    def total_weight(self, nid: str) -> float:
        return float(sum(abs(e["weight"]) for e in self.edges if nid in (e["source"], e["target"])))


def _graph(circuit: Mapping) -> _Graph:
    validate_circuit(circuit)
    layers = [str(name) for name in circuit["layers"]]
    nodes = {str(n["id"]): dict(n) for n in circuit["nodes"]}
    by_layer: dict[str, list[str]] = {name: [] for name in layers}
    for nid, n in sorted(nodes.items(), key=lambda kv: (int(kv[1]["group"]), kv[0])):
        by_layer[str(n["layer"])].append(nid)
    edges = [
        {"source": str(e["source"]), "target": str(e["target"]), "weight": float(e["weight"])} for e in circuit["edges"]
    ]
    patches = {int(k): dict(v) for k, v in circuit["patches"].items()}
    return _Graph(layers, nodes, by_layer, edges, patches)


def _where(g: _Graph, per_group: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for nid in g.nodes:
        for p in g.top(nid, per_group):
            out.setdefault(p, nid)
    return out


def _display(img: Any) -> tuple[np.ndarray, str | None]:
    """An image as an (H, W) or (H, W, 3) float array in [0, 1] and its colormap (``"gray"`` for grey).

    Values outside [0, 1] are rescaled by the image's own minimum and maximum.
    """
    x = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if x.ndim == 3 and x.shape[-1] not in (1, 3, 4) and x.shape[0] in (1, 3):
        x = x.transpose(1, 2, 0)  # channel-first
    if x.ndim == 3 and x.shape[-1] == 4:
        x = x[..., :3]
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] != 3) or x.size == 0:
        raise ValueError(f"a patch image must be H x W or H x W x 3, got shape {np.shape(img)}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        x = (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)
    x = np.clip(x, 0.0, 1.0)
    return x, ("gray" if x.ndim == 2 else None)


def _pil(img: Any) -> Image.Image:
    arr, _ = _display(img)
    return Image.fromarray(np.round(arr * 255.0).astype(np.uint8))


def _neuron_text(neurons: Sequence[int], n: int = _NEURONS_SHOWN) -> str:
    shown = ", ".join(str(int(v)) for v in neurons[:n])
    return shown + (", …" if len(neurons) > n else "")


def _title(circuit: Mapping) -> str:
    bits = ["NeurFlow circuit"]
    if circuit.get("model"):
        bits.append(str(circuit["model"]))
    if "class_index" in circuit or "class_name" in circuit:
        name, idx = circuit.get("class_name"), circuit.get("class_index")
        if name is not None and idx is not None and str(name) != str(idx):
            bits.append(f"class {name} ({idx})")
        else:
            bits.append(f"class {name if name is not None else idx}")
    return " · ".join(bits)


# -- Fig. 7: the circuit as a PNG -------------------------------------------------------------------------


def _kept_groups(g: _Graph, max_groups: int) -> dict[str, list[str]]:
    """Per layer the node ids drawn: all, or the ``max_groups`` of largest total |weight|, in group order."""
    out = {}
    for layer, ids in g.by_layer.items():
        if len(ids) > max_groups:
            order = sorted(ids, key=lambda nid: (-g.total_weight(nid), int(g.nodes[nid]["group"])))
            chosen = set(order[:max_groups])
            ids = [nid for nid in ids if nid in chosen]
        out[layer] = ids
    return out


def _figure(
    circuit: Mapping,
    patch_images: Mapping[Any, np.ndarray],
    *,
    per_group: int = 6,
    max_groups_per_layer: int = 8,
    min_abs_weight: float = 0.0,
    title: str | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """The circuit figure and the table of its thumbnails (see :func:`plot_circuit`)."""
    if per_group < 1 or max_groups_per_layer < 1:
        raise ValueError(f"per_group and max_groups_per_layer must be >= 1, got {per_group}, {max_groups_per_layer}")
    g = _graph(circuit)
    kept = _kept_groups(g, int(max_groups_per_layer))
    drawn = [nid for ids in kept.values() for nid in ids]
    where = {p: nid for nid in drawn for p in g.top(nid, per_group)}
    _check_pixels(patch_images, sorted(where), where)

    drawn_set = set(drawn)
    shown = [
        e
        for e in g.edges
        if e["source"] in drawn_set
        and e["target"] in drawn_set
        and e["weight"] != 0.0
        and abs(e["weight"]) >= min_abs_weight
    ]
    # edges are scaled per level (pair of adjacent layers): group edges sum member weights, so deeper
    # levels with more members reach larger |W| and one circuit-wide scale would hide the upper levels
    wmax: dict[str, float] = {}
    for e in shown:
        level = g.nodes[e["source"]]["layer"]
        wmax[level] = max(wmax.get(level, 0.0), abs(e["weight"]))
    heads = []
    for li, layer in enumerate(g.layers):
        n_kept, n_all = len(kept[layer]), len(g.by_layer[layer])
        head = f"{layer} · {n_all} group{'s' if n_all != 1 else ''}" + (" (logit)" if li == 0 else "")
        if n_kept < n_all:
            head += f" · the {n_kept} of largest total |edge weight| shown (cap {max_groups_per_layer})"
        heads.append(head)
    notes = [
        "edges: blue positive, red negative; width and opacity ∝ |weight| / max |weight| between the same two "
        "layers (max "
        + ", ".join(f"{a}→{b} {wmax[a]:.3g}" for a, b in zip(g.layers, g.layers[1:], strict=False) if a in wmax)
        + ")",
        f"{len(shown)} of {len(g.edges)} edges drawn",
    ]
    if min_abs_weight > 0:
        notes.append(f"|weight| < {min_abs_weight:g} omitted")
    if len(drawn) < len(g.nodes):
        notes.append(f"at most {max_groups_per_layer} groups per layer: {len(g.nodes) - len(drawn)} groups not shown")
    notes.append(f"up to {per_group} top patches per group")

    cols = per_group if per_group <= 4 else math.ceil(per_group / 2)
    rows = math.ceil(per_group / cols)
    block_w = max(cols * _THUMB_IN, _BLOCK_MIN_IN)
    band_h = _LAYER_IN + _CAPTION_IN + rows * _THUMB_IN
    widest = max([len(ids) * block_w + (len(ids) - 1) * _BLOCK_PAD_IN for ids in kept.values() if ids] or [0.0])
    text_w = max(len(h) for h in heads) * _HEAD_CHAR_IN
    width = max(2 * _MARGIN_IN + max(widest, text_w), 6.0)
    lines: list[str] = []
    for note in notes:  # wrapped between notes, never inside one
        if lines and len(lines[-1]) + 3 + len(note) <= (width - 2 * _MARGIN_IN) / _NOTE_CHAR_IN:
            lines[-1] += " · " + note
        else:
            lines.append(note)
    footer = "\n".join(lines)
    footer_h = 0.2 + _NOTE_LINE_IN * (footer.count("\n") + 1)
    n_layers = len(g.layers)
    height = _TITLE_IN + n_layers * band_h + (n_layers - 1) * _GAP_IN + footer_h
    fig = Figure(figsize=(width, height), dpi=_DPI)

    def fx(x_in: float) -> float:
        return x_in / width

    def fy(y_in: float) -> float:  # inches from the top
        return 1.0 - y_in / height

    fig.text(0.5, fy(_TITLE_IN / 2), title or _title(circuit), ha="center", va="center", fontsize=11, weight="bold")
    anchors: dict[str, tuple[float, float, float]] = {}  # node -> (x centre, y top, y bottom) in inches
    records: list[dict[str, Any]] = []
    for li, layer in enumerate(g.layers):
        top = _TITLE_IN + li * (band_h + _GAP_IN)
        ids = kept[layer]
        fig.text(
            fx(_MARGIN_IN),
            fy(top + _LAYER_IN / 2),
            heads[li],
            ha="left",
            va="center",
            fontsize=9.5,
            weight="bold",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
        if not ids:
            fig.text(0.5, fy(top + band_h / 2), "no groups", ha="center", va="center", fontsize=9, style="italic")
            continue
        row_w = len(ids) * block_w + (len(ids) - 1) * _BLOCK_PAD_IN
        x0 = (width - row_w) / 2
        for gi, nid in enumerate(ids):
            node = g.nodes[nid]
            left = x0 + gi * (block_w + _BLOCK_PAD_IN)
            y_cap = top + _LAYER_IN
            y_bottom = top + band_h
            anchors[nid] = (left + block_w / 2, y_cap, y_bottom)
            fig.add_artist(
                Rectangle(
                    (fx(left - 0.05), fy(y_bottom + 0.03)),
                    fx(block_w + 0.1),
                    (band_h - _LAYER_IN + 0.06) / height,
                    transform=fig.transFigure,
                    facecolor="#f4f4f2",
                    edgecolor="#bbbbbb",
                    linewidth=0.6,
                    zorder=0,
                    gid="block",
                )
            )
            neurons = [int(v) for v in node["neurons"]]
            caption = (
                f"{layer} · group {int(node['group'])}\n"
                f"{len(neurons)} neuron{'s' if len(neurons) != 1 else ''}: {_neuron_text(neurons)}"
            )
            fig.text(
                fx(left + block_w / 2), fy(y_cap + 0.03), caption, ha="center", va="top", fontsize=7, linespacing=1.2
            )
            top_ids = g.top(nid, per_group)
            if not top_ids:
                fig.text(fx(left + block_w / 2), fy(y_cap + _CAPTION_IN + 0.3), "no patches", ha="center", fontsize=7)
            grid_left = left + (block_w - cols * _THUMB_IN) / 2
            for rank, pid in enumerate(top_ids):
                r, c = divmod(rank, cols)
                inset = 0.04
                ax = fig.add_axes(
                    (
                        fx(grid_left + c * _THUMB_IN + inset),
                        fy(y_cap + _CAPTION_IN + (r + 1) * _THUMB_IN - inset),
                        (_THUMB_IN - 2 * inset) / width,
                        (_THUMB_IN - 2 * inset) / height,
                    )
                )
                img, cmap = _display(_pixels(patch_images, pid))
                ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_gid("thumb")
                for spine in ax.spines.values():
                    spine.set_linewidth(0.4)
                info = g.patches[pid]
                records.append(
                    {
                        "layer": layer,
                        "group": int(node["group"]),
                        "node": nid,
                        "rank": rank,
                        "patch": pid,
                        "image": int(info["image"]),
                        "sample_id": info.get("sample_id"),
                        "scale": float(info["scale"]),
                    }
                )

    for e in sorted(shown, key=lambda e: abs(e["weight"])):  # heaviest on top
        r = abs(e["weight"]) / wmax[g.nodes[e["source"]]["layer"]]
        xs, _, ys = anchors[e["source"]]
        xt, yt, _ = anchors[e["target"]]
        fig.add_artist(
            Line2D(
                [fx(xs), fx(xt)],
                [fy(ys + 0.04), fy(yt - 0.04)],
                transform=fig.transFigure,
                color=_POSITIVE if e["weight"] > 0 else _NEGATIVE,
                linewidth=max(_LW_MAX * r, 0.3),
                alpha=max(0.9 * r, 0.12),
                solid_capstyle="round",
                zorder=1,
                gid="edge",
            )
        )
    fig.text(fx(_MARGIN_IN), fy(height - footer_h / 2), footer, ha="left", va="center", fontsize=8, linespacing=1.3)
    cols_out = ["layer", "group", "node", "rank", "patch", "image", "sample_id", "scale"]
    table = pd.DataFrame.from_records(records, columns=cols_out)
    return fig, table


def plot_circuit(
    circuit: Mapping,
    patch_images: Mapping[Any, np.ndarray],
    path: str | Path,
    *,
    per_group: int = 6,
    max_groups_per_layer: int = 8,
    min_abs_weight: float = 0.0,
    title: str | None = None,
) -> pd.DataFrame:
    """Draw a circuit as in paper Fig. 7 and save it as PNG, with a CSV of its thumbnails beside it.

    Parameters
    ----------
    circuit : mapping
        The circuit (see the module docstring); checked with :func:`validate_circuit`.
    patch_images : mapping of patch id to array
        Pixels of (at least) the drawn patches, H x W or H x W x 3; images
        with values outside [0, 1] are rescaled by their own min / max.
    path : str or Path
        PNG to write (110 dpi); the table goes to the same path with ``.csv``.
    per_group : int
        Top patches drawn per group (fewer when a group lists fewer), in
        blocks of one row (up to 4) or two rows.
    max_groups_per_layer : int
        Groups drawn per layer; a layer with more keeps those with the largest
        total |weight| of their incoming plus outgoing edges (ties: lower group
        index), shown in group order; the layer header and the footer say so.
    min_abs_weight : float
        Edges with |weight| below this are not drawn (edges of weight 0 never are).
    title : str, optional
        Figure title; default names the model and the class.

    Returns
    -------
    pandas.DataFrame
        One row per drawn thumbnail: ``layer``, ``group``, ``node``, ``rank``
        (0 = top patch), ``patch``, ``image``, ``sample_id``, ``scale``; the
        CSV holds the same.

    Notes
    -----
    Bands are stacked from ``circuit["layers"][0]`` (the logit) at the top
    down. Each group block is captioned with its layer, group index, number of
    neurons and first neuron indices. Edges are straight lines from the bottom
    of the upper block to the top of the lower block; line width and opacity
    are proportional to |weight| / max |weight| over the drawn edges between
    the same two layers (group edges sum member weights, so one scale for the
    whole circuit would make the upper levels vanish; a small floor keeps
    light edges visible); positive weights are blue, negative red.

    Raises
    ------
    ValueError
        For a malformed circuit or a drawn patch without pixels.
    """
    fig, table = _figure(
        circuit,
        patch_images,
        per_group=int(per_group),
        max_groups_per_layer=int(max_groups_per_layer),
        min_abs_weight=float(min_abs_weight),
        title=title,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    table.to_csv(path.with_suffix(".csv"), index=False)
    return table


# -- HTML page ------------------------------------------------------------------------------------------


def _png_data_uri(img: Any, thumb_px: int) -> str:
    """PNG data URI of a patch; patches larger than ``thumb_px`` are shrunk to fit it, smaller ones kept as they are."""
    im = _pil(img)
    w, h = im.size
    if max(w, h) > thumb_px:
        s = thumb_px / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_circuit_html(
    circuit: Mapping,
    patch_images: Mapping[Any, np.ndarray],
    path: str | Path,
    *,
    per_group: int = 12,
    thumb_px: int = 64,
) -> None:
    """Write one self-contained HTML page to explore a circuit (works from ``file://``, no network).

    Parameters
    ----------
    circuit : mapping
        The circuit (see the module docstring); checked with :func:`validate_circuit`.
    patch_images : mapping of patch id to array
        Pixels of (at least) the first ``per_group`` top patches of every node;
        images with values outside [0, 1] are rescaled by their own min / max.
    path : str or Path
        HTML file to write.
    per_group : int
        Top patches carried per group: their images are embedded and the
        detail panel shows them all (the card previews the first 6).
    thumb_px : int
        Thumbnail size in CSS pixels in the detail panel; patches larger than
        this are stored shrunk to it, smaller ones at their own size (drawn
        scaled up, pixelated).

    Notes
    -----
    The circuit itself is inline, unchanged, as JSON in ``<script
    type="application/json" id="circuit-data">``; the patch images (PNG data
    URIs, each patch once) and view settings are in ``id="view-data"``. The
    page draws the layers as rows of group cards (``<div class="group"
    data-node="<id>">``), logit at the top, and every edge as an SVG ``<path
    class="edge">`` from the upper card to the lower one, width by |weight| /
    max |weight| between the same two layers, blue for positive and red for negative weights. Clicking a
    card (or following ``#node=<id>``) highlights it, its neighbours and its
    edges and fills ``<aside id="detail">`` with its layer, group, neurons,
    n_patches, carried top patches (image, sample id, scale, box) and its
    incoming (from the layer above) and outgoing (to the layer below) edges
    sorted by |weight|. When rendered and its images have loaded the page sets
    ``document.body.dataset.ready = "1"`` (``"error"`` on an exception) and
    ``dataset.loadedImages``.

    Raises
    ------
    ValueError
        For a malformed circuit or a carried patch without pixels.
    """
    if per_group < 1 or thumb_px < 8:
        raise ValueError(f"per_group must be >= 1 and thumb_px >= 8, got {per_group}, {thumb_px}")
    g = _graph(circuit)
    where = _where(g, per_group)
    _check_pixels(patch_images, sorted(where), where)
    view = {
        "perGroup": int(per_group),
        "thumbPx": int(thumb_px),
        "cardThumbs": _CARD_THUMBS,
        "title": _title(circuit),
        "images": {str(p): _png_data_uri(_pixels(patch_images, p), int(thumb_px)) for p in sorted(where)},
    }
    page = _PAGE.replace("@@TITLE@@", html.escape(_title(circuit))).replace("@@CSS@@", _CSS).replace("@@JS@@", _JS)
    page = page.replace("@@READY@@", READY_JS)
    page = page.replace("@@VIEW@@", inline_json(view, _json_default))
    page = page.replace("@@CIRCUIT@@", inline_json(dict(circuit), _json_default))
    write_page(path, page)


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #f6f6f4; }
header { position: sticky; top: 0; z-index: 5; background: #23313f; color: #fff; padding: 8px 12px;
  display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }
header h1 { font-size: 15px; margin: 0; font-weight: 600; }
.legend { opacity: .9; font-size: 12px; }
.legend .pos { color: #8ec5f0; font-weight: 600; }
.legend .neg { color: #ff9a9a; font-weight: 600; }
main { display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 10px; padding: 10px; align-items: start; }
#scroller { overflow: auto; background: #fff; border: 1px solid #ddd; max-height: calc(100vh - 70px); }
#circuit { position: relative; display: inline-block; min-width: 100%; padding: 10px 10px 0; }
#edges { position: absolute; left: 0; top: 0; z-index: 0; pointer-events: none; overflow: visible; }
#edges path { fill: none; pointer-events: stroke; transition: opacity .15s; }
#edges path.dim { opacity: .07 !important; }
#edges path.active { opacity: 1 !important; }
.layer { position: relative; z-index: 1; display: flex; align-items: flex-start; margin-bottom: 80px;
  pointer-events: none; }
.layer:last-child { margin-bottom: 12px; }
.layer .lname { width: 110px; flex: none; font-weight: 600; padding-top: 4px; }
.layer .lname small { display: block; font-weight: 400; color: #666; }
.layer .groups { display: flex; gap: 14px; justify-content: center; flex: 1; }
.group { pointer-events: auto; background: #fff; border: 1px solid #bbb; border-radius: 4px; padding: 5px;
  cursor: pointer; width: 170px; }
.group:hover { border-color: #1f77b4; }
.group.selected { border: 2px solid #1f77b4; background: #eaf2fb; padding: 4px; }
.group.linked { border-color: #1f77b4; background: #f5f9fd; }
.group.faded { opacity: .45; }
.group .t { font-weight: 600; }
.group .s { color: #555; font-size: 11px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.group .previews { display: grid; grid-template-columns: repeat(3, 1fr); gap: 3px; margin-top: 4px; }
.group .previews img { width: 100%; aspect-ratio: 1; image-rendering: pixelated; object-fit: contain;
  background: #000; display: block; }
aside { background: #fff; border: 1px solid #ddd; padding: 10px; min-height: 200px; position: sticky; top: 56px;
  max-height: calc(100vh - 70px); overflow-y: auto; }
h2 { font-size: 15px; margin: 0 0 4px; }
h3 { font-size: 13px; margin: 12px 0 4px; }
.muted { color: #666; }
.neurons { word-break: break-word; }
.patches { display: flex; flex-wrap: wrap; gap: 6px; }
figure.patch { margin: 0; font-size: 10px; color: #333; text-align: center; }
figure.patch img { display: block; image-rendering: pixelated; object-fit: contain; background: #000; }
ul.edges { list-style: none; padding: 0; margin: 0; }
ul.edges li { padding: 2px 0; border-bottom: 1px solid #f0f0f0; display: flex; justify-content: space-between; }
.w.pos { color: #1f5f99; font-variant-numeric: tabular-nums; }
.w.neg { color: #b01c1c; font-variant-numeric: tabular-nums; }
a { color: #1f5f99; }
.err { color: #a01818; font-weight: 600; }
"""

_JS = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
  let C, V, nodes, maxW, selected = "";

  const fmtW = (w) => (w > 0 ? "+" : "") + (+w).toFixed(4);
  const sign = (w) => (w < 0 ? "neg" : "pos");
  const patchInfo = (p) => C.patches[String(p)] || {};
  const nodeHash = (id) => "#node=" + encodeURIComponent(id);
  const cardOf = (id) => Array.from(document.querySelectorAll(".group")).find((el) => el.dataset.node === id);

  function img(p, size, cls) {
    const info = patchInfo(p);
    const tip = "patch " + p + " · image " + info.image + (info.sample_id !== undefined ? " · sample id "
      + info.sample_id : "") + " · scale " + info.scale + " · box " + (info.box || []).join(",");
    return '<img class="' + cls + '" data-patch="' + p + '"' + (size ? ' width="' + size + '" height="' + size + '"'
      : "") + ' alt="' + esc(tip) + '" title="' + esc(tip) + '" src="' + V.images[String(p)] + '">';
  }

  function build() {
    const rows = C.layers.map((layer, li) => {
      const ids = C.nodes.filter((n) => String(n.layer) === String(layer))
        .sort((a, b) => a.group - b.group || String(a.id).localeCompare(String(b.id)));
      const cards = ids.map((n) => {
        const shown = n.top_patches.slice(0, Math.min(V.perGroup, V.cardThumbs));
        const neu = n.neurons.slice(0, 6).join(", ") + (n.neurons.length > 6 ? ", …" : "");
        return '<div class="group" data-node="' + esc(n.id) + '" title="' + esc(n.id) + '">'
          + '<div class="t">g' + n.group + " · " + n.neurons.length + " neuron" + (n.neurons.length === 1 ? "" : "s")
          + '</div><div class="s">' + esc(neu) + '</div><div class="s">' + esc(n.n_patches ?? "?") + " patches</div>"
          + '<div class="previews">' + shown.map((p) => img(p, 0, "preview")).join("") + "</div></div>";
      });
      return '<div class="layer" data-layer="' + esc(layer) + '"><div class="lname">' + esc(layer)
        + "<small>" + (li === 0 ? "logit · " : "") + ids.length + " group" + (ids.length === 1 ? "" : "s")
        + '</small></div><div class="groups">' + cards.join("") + "</div></div>";
    });
    $("circuit").insertAdjacentHTML("beforeend", rows.join(""));
    $("circuit").addEventListener("click", (e) => {
      const el = e.target.closest(".group");
      if (el) location.hash = nodeHash(el.dataset.node);
    });
  }

  function drawEdges() {
    const box = $("circuit"), svg = $("edges");
    const o = box.getBoundingClientRect();
    svg.setAttribute("width", box.scrollWidth);
    svg.setAttribute("height", box.scrollHeight);
    svg.replaceChildren();
    const cards = new Map(Array.from(document.querySelectorAll(".group")).map((el) => [el.dataset.node, el]));
    const order = C.edges.map((e, i) => i).sort((a, b) => Math.abs(C.edges[a].weight) - Math.abs(C.edges[b].weight));
    for (const i of order) {
      const e = C.edges[i];
      const a = cards.get(String(e.source)).getBoundingClientRect(), b = cards.get(String(e.target))
        .getBoundingClientRect();
      const x1 = a.left + a.width / 2 - o.left, y1 = a.bottom - o.top;
      const x2 = b.left + b.width / 2 - o.left, y2 = b.top - o.top;
      const my = (y1 + y2) / 2;
      const m = maxW.get(nodes.get(String(e.source)).layer) || 0;
      const r = m > 0 ? Math.abs(e.weight) / m : 0;
      const p = document.createElementNS(svg.namespaceURI, "path");
      p.setAttribute("class", "edge");
      p.setAttribute("d", "M" + x1 + "," + y1 + " C" + x1 + "," + my + " " + x2 + "," + my + " " + x2 + "," + y2);
      p.setAttribute("stroke", e.weight < 0 ? "#d62728" : "#1f77b4");
      p.setAttribute("stroke-width", (0.5 + 5.5 * r).toFixed(2));
      p.setAttribute("stroke-opacity", (0.2 + 0.7 * r).toFixed(3));
      p.dataset.source = e.source;
      p.dataset.target = e.target;
      p.dataset.weight = e.weight;
      const t = document.createElementNS(svg.namespaceURI, "title");
      t.textContent = e.source + " → " + e.target + ": " + fmtW(e.weight);
      p.appendChild(t);
      svg.appendChild(p);
    }
    highlight();
  }

  function highlight() {
    const linked = new Set();
    for (const p of document.querySelectorAll("#edges path.edge")) {
      const on = selected !== "" && (p.dataset.source === selected || p.dataset.target === selected);
      p.classList.toggle("active", on);
      p.classList.toggle("dim", selected !== "" && !on);
      if (on) linked.add(p.dataset.source === selected ? p.dataset.target : p.dataset.source);
    }
    for (const el of document.querySelectorAll(".group")) {
      el.classList.toggle("selected", el.dataset.node === selected);
      el.classList.toggle("linked", linked.has(el.dataset.node));
      el.classList.toggle("faded", selected !== "" && el.dataset.node !== selected && !linked.has(el.dataset.node));
    }
  }

  function edgeList(list, otherKey) {
    if (!list.length) return '<p class="muted">none</p>';
    return '<ul class="edges">' + list.map((e) => {
      const other = String(e[otherKey]);
      return '<li class="edge-item" data-other="' + esc(other) + '"><a href="' + esc(nodeHash(other)) + '">'
        + esc(other) + '</a> <span class="w ' + sign(e.weight) + '">' + fmtW(e.weight) + "</span></li>";
    }).join("") + "</ul>";
  }

  function renderDetail() {
    const n = nodes.get(selected);
    if (!n) {
      $("detail").innerHTML = "<h2>details</h2>" + '<p class="muted">' + (selected ? "no node " + esc(selected)
        + " in this circuit" : "click a group to see its neurons, patches and edges") + "</p>";
      return;
    }
    const byW = (a, b) => Math.abs(b.weight) - Math.abs(a.weight);
    const incoming = C.edges.filter((e) => String(e.target) === n.id).sort(byW);
    const outgoing = C.edges.filter((e) => String(e.source) === n.id).sort(byW);
    const carried = n.top_patches.slice(0, V.perGroup);
    const patches = carried.map((p) => {
      const info = patchInfo(p);
      return '<figure class="patch" style="width:' + (V.thumbPx + 4) + 'px">' + img(p, V.thumbPx, "detail-patch")
        + "<figcaption>#" + p + " · img " + esc(info.image) + "<br>scale " + esc(info.scale) + "<br>box "
        + esc((info.box || []).join(",")) + "</figcaption></figure>";
    });
    $("detail").innerHTML = "<h2>" + esc(n.id) + "</h2>"
      + '<div class="muted">layer <b>' + esc(n.layer) + "</b> · group " + n.group + " · " + esc(n.n_patches ?? "?")
      + " patches in its concept</div>"
      + "<h3>neurons (" + n.neurons.length + ')</h3><div class="neurons">' + esc(n.neurons.join(", ")) + "</div>"
      + "<h3>incoming edges (from the layer above, " + incoming.length + ")</h3>" + edgeList(incoming, "source")
      + "<h3>outgoing edges (to the layer below, " + outgoing.length + ")</h3>" + edgeList(outgoing, "target")
      + "<h3>top patches (" + (carried.length < n.top_patches.length ? "the first " + carried.length + " of "
        + n.top_patches.length : carried.length) + ")</h3>"
      + '<div class="muted">patch id · source image · crop scale · box top,left,height,width</div>'
      + '<div class="patches">' + patches.join("") + "</div>";
  }

  function fromHash() {
    selected = new URLSearchParams(location.hash.replace(/^#/, "")).get("node") || "";
    renderDetail();
    highlight();
    const el = cardOf(selected);
    if (el && el.scrollIntoView) el.scrollIntoView({block: "nearest", inline: "nearest"});
  }

  try {
    C = JSON.parse($("circuit-data").textContent);
    V = JSON.parse($("view-data").textContent);
    nodes = new Map(C.nodes.map((n) => [String(n.id), n]));
    maxW = new Map();  // per source layer: each level of edges has its own scale
    for (const e of C.edges) {
      const layer = nodes.get(String(e.source)).layer;
      maxW.set(layer, Math.max(maxW.get(layer) || 0, Math.abs(e.weight)));
    }
    document.title = V.title;
    $("summary").textContent = C.layers.length + " layers · " + C.nodes.length + " groups · " + C.edges.length
      + " edges";
    build();
    fromHash();
    drawEdges();
    window.addEventListener("hashchange", fromHash);
    window.addEventListener("resize", drawEdges);
    markReady(drawEdges);
  } catch (err) {
    markFailed(err, "detail", "the page");
  }
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>@@CSS@@</style>
</head>
<body data-ready="0" data-loaded-images="0">
<header>
<h1>@@TITLE@@</h1>
<span id="summary"></span>
<span class="legend">edges: <span class="pos">blue</span> positive, <span class="neg">red</span> negative,
width ∝ |weight|; click a group for details</span>
</header>
<main>
<div id="scroller"><div id="circuit"><svg id="edges"></svg></div></div>
<aside id="detail"><noscript>This page needs JavaScript.</noscript></aside>
</main>
<script type="application/json" id="circuit-data">@@CIRCUIT@@</script>
<script type="application/json" id="view-data">@@VIEW@@</script>
<script>@@READY@@</script>
<script>@@JS@@</script>
</body>
</html>
"""


# -- labelling export -----------------------------------------------------------------------------------


def _folder_name(layer: str, group: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{layer}_g{int(group)}")


def _save_patch(img: Any, path: Path) -> None:
    im = _pil(img)
    w, h = im.size
    f = max(1, math.ceil(_EXPORT_MIN_PX / min(w, h)))
    if f > 1:
        im = im.resize((w * f, h * f), Image.Resampling.NEAREST)
    im.save(path, format="PNG")


def write_labelling_export(
    circuit: Mapping,
    patch_images: Mapping[Any, np.ndarray],
    folder: str | Path,
    *,
    per_group: int = 12,
) -> pd.DataFrame:
    """Write patch PNGs and prompts for naming the circuit's concepts with a multimodal model (nothing is called).

    Parameters
    ----------
    circuit : mapping
        The circuit (see the module docstring); checked with :func:`validate_circuit`.
    patch_images : mapping of patch id to array
        Pixels of (at least) the first ``per_group`` top patches of every node;
        images with values outside [0, 1] are rescaled by their own min / max.
    folder : str or Path
        Output folder (created; existing files of the same names are overwritten).
    per_group : int
        Top patches exported per group.

    Returns
    -------
    pandas.DataFrame
        The rows of ``index.csv``: ``folder`` (relative), ``kind`` (``group``
        or ``circuit``), ``nodes`` (node ids; for a circuit ``upper;lower``),
        ``weight`` (edge weight; empty for groups), ``n_images`` and ``files``
        (relative to the row's folder, ``;``-separated, ``prompt.txt`` last).

    Notes
    -----
    Per node a folder ``<layer>_g<group>/`` (characters other than letters,
    digits, ``.``, ``_`` and ``-`` replaced by ``_``) holds ``patch_<id>.png``
    for each of its first ``per_group`` top patches, upscaled with nearest
    neighbour by an integer factor until the shorter side is at least 96 px,
    and ``prompt.txt`` (:data:`GROUP_PROMPT`). Per edge with a non-zero weight
    (edges always join consecutive layers) a folder
    ``circuit_<upper folder>_to_<lower folder>/`` holds ``upper/`` and
    ``lower/`` with the two groups' patches and ``prompt.txt``
    (:data:`CIRCUIT_PROMPT`). Each prompt has three parts: the role
    (:data:`PROMPT_ROLE`), the instructions and the answer form.

    Raises
    ------
    ValueError
        For a malformed circuit or an exported patch without pixels.
    """
    if per_group < 1:
        raise ValueError(f"per_group must be >= 1, got {per_group}")
    g = _graph(circuit)
    where = _where(g, per_group)
    _check_pixels(patch_images, sorted(where), where)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    names = {nid: _folder_name(n["layer"], n["group"]) for nid, n in g.nodes.items()}
    if len(set(names.values())) != len(names):
        raise ValueError("two nodes map to the same folder name (same layer and group)")

    def patches_into(nid: str, dest: Path) -> list[str]:
        dest.mkdir(parents=True, exist_ok=True)
        files = []
        for p in g.top(nid, per_group):
            _save_patch(_pixels(patch_images, p), dest / f"patch_{p}.png")
            files.append(f"patch_{p}.png")
        return files

    rows: list[dict[str, Any]] = []
    for layer in g.layers:
        for nid in g.by_layer[layer]:
            sub = root / names[nid]
            files = patches_into(nid, sub)
            prompt = GROUP_PROMPT.format(n_images=len(files), node=nid, layer=layer)
            (sub / "prompt.txt").write_text(prompt, encoding="utf-8")
            rows.append(
                {
                    "folder": names[nid],
                    "kind": "group",
                    "nodes": nid,
                    "weight": None,
                    "n_images": len(files),
                    "files": ";".join([*files, "prompt.txt"]),
                }
            )
    for e in g.edges:
        if e["weight"] == 0.0:
            continue
        up, low = e["source"], e["target"]
        name = f"circuit_{names[up]}_to_{names[low]}"
        sub = root / name
        f_up = patches_into(up, sub / "upper")
        f_low = patches_into(low, sub / "lower")
        prompt = CIRCUIT_PROMPT.format(
            upper=up,
            lower=low,
            upper_layer=g.nodes[up]["layer"],
            lower_layer=g.nodes[low]["layer"],
            n_upper=len(f_up),
            n_lower=len(f_low),
            weight=f"{e['weight']:+.4f}",
        )
        (sub / "prompt.txt").write_text(prompt, encoding="utf-8")
        rows.append(
            {
                "folder": name,
                "kind": "circuit",
                "nodes": f"{up};{low}",
                "weight": e["weight"],
                "n_images": len(f_up) + len(f_low),
                "files": ";".join([*(f"upper/{f}" for f in f_up), *(f"lower/{f}" for f in f_low), "prompt.txt"]),
            }
        )
    table = pd.DataFrame.from_records(rows, columns=["folder", "kind", "nodes", "weight", "n_images", "files"])
    table.to_csv(root / "index.csv", index=False)
    return table
