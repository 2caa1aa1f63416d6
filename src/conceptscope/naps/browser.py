"""The NAP browser: one self-contained HTML page to browse the NAPs of every (layer, method) of a model.

Visual side of Bäuerle, Jönsson and Ropinski, "Neural Activation Patterns
(NAPs)": their NAP browser, as one file that works from ``file://`` without a
server. :func:`browser_data` gathers the page's data (NAPs, members, box
statistics, thumbnails as PNG data URIs); :func:`write_browser` renders the
page ``static/browser.html`` (with ``browser.css`` and ``browser.js``) around it
through :func:`conceptscope.pages.render_page`.

Every :class:`~conceptscope.naps.NapResult` passed in must cover the images
of the given :class:`~conceptscope.data.ImageSet` in the same order (see
:func:`conceptscope.naps.views.check_alignment`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import ImageSet
from ..imaging import iter_images, png_data_uri
from ..pages import inline_json, render_page, write_page
from .core import NapResult
from .views import check_alignment, resolve_class_names

__all__ = ["browser_data", "write_browser"]


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


def browser_data(
    model_id: str,
    results: Mapping[tuple[str, str], NapResult],
    images: ImageSet,
    *,
    per_nap: int,
    thumb_px: int,
    class_names: Sequence[str] | None,
    max_features: int,
) -> dict[str, Any]:
    """The data of the browser page (the JSON of ``<script id="nap-data">``); see :func:`write_browser`."""
    names = resolve_class_names(images, class_names)
    layers: list[str] = []
    methods: list[str] = []
    shown: set[int] = set()
    for key, r in results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"results keys must be (layer, method) tuples, got {key!r}")
        check_alignment(r, images, what=f"result {key!r}")
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
        "images": {str(p): png_data_uri(img, thumb_px) for p, img in iter_images(images, positions)},
    }


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
    data = browser_data(
        model_id,
        results,
        images,
        per_nap=int(per_nap),
        thumb_px=int(thumb_px),
        class_names=class_names,
        max_features=int(max_features),
    )
    page = render_page("conceptscope.naps", "browser", text={"TITLE": str(model_id)}, data={"DATA": inline_json(data)})
    write_page(path, page)
