"""The NeurFlow circuit page: one self-contained HTML file to explore a circuit (Cao et al., ICLR 2025).

The template, stylesheet and script are ``static/circuit.html``, ``.css`` and
``.js`` of this package, inlined by :func:`conceptscope.pages.render_page`;
the circuit and the view settings travel as JSON inside the page. The circuit
format is described in :mod:`conceptscope.neurflow.views`. A class without a
circuit gets a page that says why (:func:`write_status_html`, ``static/status.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int
from ..imaging import png_data_uri
from ..pages import inline_json, render_page, write_page
from .settings import NeurFlowSettings
from .views import PatchImages, _carried, _pixels, _title

__all__ = ["write_circuit_html", "write_status_html"]

_TOP = NeurFlowSettings.top_patches  # every kept top patch of a group, by default
_CARD_THUMBS = 6  # patch previews on an HTML group card (the detail panel shows all carried ones)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_circuit_html(
    circuit: Mapping, patch_images: PatchImages, path: str | Path, *, per_group: int = _TOP, thumb_px: int = 64
) -> None:
    """Write one self-contained HTML page to explore a circuit (works from ``file://``, no network).

    Parameters
    ----------
    circuit, patch_images
        As for :func:`conceptscope.neurflow.plot_circuit`; every node's first
        ``per_group`` top patches need pixels.
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
    check_int("thumb_px", thumb_px, minimum=8)
    _, where = _carried(circuit, patch_images, per_group)
    view = {
        "perGroup": int(per_group),
        "thumbPx": int(thumb_px),
        "cardThumbs": _CARD_THUMBS,
        "title": _title(circuit),
        "images": {str(p): png_data_uri(_pixels(patch_images, p), int(thumb_px), rescale=True) for p in sorted(where)},
    }
    page = render_page(
        "conceptscope.neurflow",
        "circuit",
        text={"TITLE": _title(circuit)},
        data={"VIEW": inline_json(view, _json_default), "CIRCUIT": inline_json(dict(circuit), _json_default)},
    )
    write_page(path, page)


def write_status_html(path: str | Path, *, title: str, status: str, reason: str = "") -> None:
    """Write the page of a class without a circuit: its title, the status (e.g. ``no images``) and the reason."""
    page = render_page("conceptscope.neurflow", "status", text={"TITLE": title, "STATUS": status, "REASON": reason})
    write_page(path, page)
