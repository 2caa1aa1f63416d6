"""Views of NeurFlow circuits: checks, the indexed graph and the layered PNG figure (paper Fig. 7).

A circuit (Cao et al., ICLR 2025; built by :func:`conceptscope.neurflow.build_circuit`)
is a layered graph for one class: ``layers`` from the logit layer (top) down
through the probed blocks, ``nodes`` (neuron groups of one layer, each with its
top patches), ``edges`` from a group of one layer to a group of the layer
directly below it with a signed weight, and ``patches`` (image, crop scale and
box of each listed patch). The views:

- :func:`plot_circuit` (paper Fig. 7, here): one band per layer, logit at the
  top, each group a block of its top patch thumbnails, edges as lines between
  the blocks of consecutive layers (width and opacity by |weight|, colour by
  sign); a CSV beside the PNG lists the thumbnails drawn;
- :func:`conceptscope.neurflow.write_circuit_html` (:mod:`.page`): one HTML
  file, usable from ``file://`` without a server, with the groups as cards,
  the edges in SVG and a detail panel;
- :func:`conceptscope.neurflow.write_labelling_export` (:mod:`.labelling`):
  folders of patch PNGs plus a prompt per group and per connected pair of
  groups, ready to hand to a multimodal model that names the concepts (no
  model is called here);
- :func:`validate_circuit`: the structural checks all of them run first.

Patch pixels are passed separately, ``patch_images[patch_id]``: an array
H x W (grey) or H x W x 3 (RGB; H x W x 1 and H x W x 4 are read as grey and as
RGB without alpha; 1 x H x W and 3 x H x W channel-first arrays are accepted
too). Values are expected in [0, 1]; an image with values outside [0, 1] (for
instance still normalized for the model) is rescaled for display by its own
minimum and maximum, each image separately, so colours are comparable within a
patch but not across such patches (:func:`conceptscope.imaging.display_image`
with ``rescale=True``). Keys may be ``int`` or ``str`` patch ids.
"""

from __future__ import annotations

import math
import textwrap
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

from ..checks import check_int  # noqa: E402
from ..imaging import display_image  # noqa: E402
from ..runtime import save_figure, write_table  # noqa: E402
from .settings import NeurFlowSettings  # noqa: E402

__all__ = ["plot_circuit", "validate_circuit"]

PatchImages = Mapping[Any, np.ndarray]  # patch id (int or str) -> pixels, see the module docstring

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


# -- validation -------------------------------------------------------------------------------------------


def _pixels(patch_images: PatchImages, pid: int) -> np.ndarray | None:
    """Pixels of patch ``pid`` whether ``patch_images`` is keyed by int or by str."""
    if pid in patch_images:
        return patch_images[pid]
    return patch_images.get(str(pid)) if hasattr(patch_images, "get") else None


def _check_pixels(patch_images: PatchImages, needed: Sequence[int], where: Mapping[int, str]) -> None:
    for pid in needed:
        if _pixels(patch_images, pid) is None:
            raise ValueError(f"patch {pid} (top patch of node {where.get(pid, '?')}) has no pixels in patch_images")


def validate_circuit(circuit: Mapping, *, patch_images: PatchImages | None = None) -> None:
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


def _carried(circuit: Mapping, patch_images: PatchImages, per_group: int) -> tuple[_Graph, dict[int, str]]:
    """The indexed circuit and its nodes' first ``per_group`` top patches (patch -> first node), pixels checked."""
    check_int("per_group", per_group, minimum=1)
    g = _graph(circuit)
    where = _where(g, per_group)
    _check_pixels(patch_images, sorted(where), where)
    return g, where


def _where(g: _Graph, per_group: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for nid in g.nodes:
        for p in g.top(nid, per_group):
            out.setdefault(p, nid)
    return out


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
    patch_images: PatchImages,
    *,
    per_group: int = NeurFlowSettings.per_group,
    max_groups_per_layer: int = 8,
    min_abs_weight: float = 0.0,
    title: str | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """The circuit figure and the table of its thumbnails (see :func:`plot_circuit`)."""
    check_int("per_group", per_group, minimum=1)
    check_int("max_groups_per_layer", max_groups_per_layer, minimum=1)
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
    capacity = int((width - 2 * _MARGIN_IN) / _NOTE_CHAR_IN)  # characters of a footer line
    lines: list[str] = []
    for note in notes:  # notes share a line when they fit; a note longer than a line wraps at its spaces
        if lines and len(lines[-1]) + 3 + len(note) <= capacity:
            lines[-1] += " · " + note
        else:
            lines += textwrap.wrap(note, capacity) or [note]
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
                img, cmap = display_image(_pixels(patch_images, pid), rescale=True)
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
    patch_images: PatchImages,
    path: str | Path,
    *,
    per_group: int = NeurFlowSettings.per_group,
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
    save_figure(fig, path, dpi=_DPI)
    write_table(table, path.with_suffix(".csv"), index=False)
    return table
