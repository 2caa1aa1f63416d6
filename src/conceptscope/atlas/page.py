"""The atlas page: one self-contained HTML page (``results/index.html``) where the methods' concepts meet.

Per model and layer the page shows each method's concepts side by side (one
column per method: NAPs, coupled NMF factors, NAS units, NeurFlow groups),
each concept as a strip of its images with its size, its faithfulness
(:mod:`~conceptscope.atlas.faithfulness`), its best counterparts in the other
methods (Jaccard overlap of image sets, :mod:`~conceptscope.atlas.alignment`)
and, on data with planted concepts, its recovery F1
(:mod:`~conceptscope.atlas.recovery`); below the columns the layer's alignment
and recovery tables; at the end the papers' claims with their verdicts.

The page is the template ``static/atlas.html`` (+ ``.css``, ``.js``) of this
package, filled by :func:`conceptscope.pages.render_page` with the data as
inline JSON, so it works from ``file://`` with no network. The script renders
every string with ``textContent`` (never as markup), shows a null number as
"–", and sets ``<body data-ready="1">`` once rendered and every image decoded
(``"error"`` with ``data-error`` on failure; ``conceptscope/static/ready.js``).
The structure :func:`write_atlas_page` checks is :data:`_SCHEMA`.

This module imports neither torch nor matplotlib (a torch tensor is recognised
only when torch is already imported).
"""

from __future__ import annotations

import base64
import io
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..pages import inline_json, render_page, write_page

if TYPE_CHECKING:
    import torch

__all__ = ["ALIGNMENT_KEYS", "CLAIM_KEYS", "RECOVERY_KEYS", "thumbnail_strip", "write_atlas_page"]

_GAP = 1  # px of white between the images of a strip


class _Nullable:
    """Schema node: ``None`` or a value matching ``spec``."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


# The structure of the page's data. A dict: a mapping with (at least) these keys; a one-element list: a list of
# such items; _Nullable: None allowed; None: any JSON scalar (numbers may be null; NaN and inf are refused).
_LINK = {"label": None, "href": None}
_CONCEPT = {
    "name": None,
    "size": None,
    "thumbnail": None,
    "faithfulness": _Nullable(
        {"observed": None, "random_mean": None, "p_value": None, "set_mean": None, "set_p_value": None}
    ),
    "counterparts": [{"method": None, "concept": None, "jaccard": None, "n_universe": None}],
    "recovery": _Nullable([{"planted": None, "f1": None, "p_value": None}]),
}
_METHOD = {
    "method": None,
    "variant": None,
    "n_concepts": None,
    "shown": None,
    "link": _Nullable(_LINK),
    "concepts": [_CONCEPT],
}
# the rows of a layer's alignment and recovery tables, and of the claims table (the job fills them in this order)
ALIGNMENT_KEYS = (
    "method_a",
    "method_b",
    "n_a",
    "n_b",
    "n_a_with_counterpart",
    "n_b_with_counterpart",
    "n_matched_above",
    "mean_matched_jaccard",
    "null_mean",
    "null_q95",
    "p_value",
    "threshold",
    "n_universe",
    "figure",
)
RECOVERY_KEYS = ("method", "variant", "planted", "planted_in_universe", "best_concept", "precision", "recall", "f1")
RECOVERY_KEYS += ("null_mean", "null_q95", "p_value", "class_f1")
CLAIM_KEYS = ("claim_id", "figure", "paper_value", "measured_value", "verdict", "detail")
_ALIGNMENT = dict.fromkeys(ALIGNMENT_KEYS)
_RECOVERY = dict.fromkeys(RECOVERY_KEYS)
_LAYER = {"layer": None, "methods": [_METHOD], "alignment": [_ALIGNMENT], "recovery": [_RECOVERY]}
_MODEL = {"model": None, "dataset": None, "split": None, "methods": [None], "links": [_LINK], "layers": [_LAYER]}
_CLAIM = dict.fromkeys(CLAIM_KEYS)
_SCHEMA = {
    "settings": {},
    "claims_href": None,
    "claims": [_CLAIM],
    "figures": [_LINK],
    "models": [_MODEL],
}


def thumbnail_strip(images: torch.Tensor | np.ndarray, *, max_images: int = 8, height: int = 32) -> str:
    """The first images of a concept side by side, as a PNG data URI for an ``<img src>``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray, shape (n_images, C, H, W), float
        Images in [0, 1] (values outside are clipped, NaN becomes 0), C = 1
        (grey) or 3 (RGB); dimension 0 indexes the images. A tensor on any
        device is copied to the CPU.
    max_images : int
        At most this many images (the first ones) enter the strip.
    height : int
        The strip's height in px. Every image is resized to it keeping its
        aspect ratio (width ``round(W * height / H)``, at least 1): nearest
        neighbour when enlarging, so pixels stay sharp squares, Lanczos when
        shrinking.

    Returns
    -------
    str
        ``"data:image/png;base64,..."``: a PNG (grey for C = 1, RGB for C = 3)
        ``n * width + (n - 1)`` px wide and ``height`` high, the images left to
        right with a 1-px white gap, ``n = min(n_images, max_images)``; ``""``
        for no images (the page then says "no images").

    Raises
    ------
    ValueError
        If ``images`` is not (n_images, C, H, W) with C in (1, 3) and H, W > 0,
        or ``max_images`` / ``height`` is below 1.
    TypeError
        If the images are not floating point (8-bit images would be clipped to 0 / 1).
    """
    from PIL import Image

    if max_images < 1 or height < 1:
        raise ValueError(f"max_images and height must be >= 1, got max_images={max_images}, height={height}")
    x = _as_numpy(images)
    if x.ndim >= 1 and x.shape[0] == 0:
        return ""
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"images must be (n_images, C, H, W) with C = 1 or 3, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images must be floats in [0, 1], got dtype {x.dtype}")
    x = x[:max_images]
    n, c, h, w = x.shape
    width = max(1, round(w * height / h))
    resample = Image.Resampling.NEAREST if height >= h else Image.Resampling.LANCZOS
    # (n, C, H, W) -> (n, H, W) grey or (n, H, W, 3) RGB, 8 bit
    tiles = np.round(np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
    tiles = tiles[:, 0] if c == 1 else tiles.transpose(0, 2, 3, 1)
    mode = "L" if c == 1 else "RGB"
    strip = Image.new(mode, (n * width + (n - 1) * _GAP, height), color=255 if c == 1 else (255, 255, 255))
    for i, tile in enumerate(tiles):
        strip.paste(Image.fromarray(tile).resize((width, height), resample), (i * (width + _GAP), 0))
    buf = io.BytesIO()
    strip.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_atlas_page(path: str | Path, data: Mapping[str, Any], *, title: str = "conceptscope atlas") -> Path:
    """Write the atlas page: ``static/atlas.html`` with ``data`` inlined, atomically.

    Parameters
    ----------
    path : str or Path
        The page (``results/index.html``); the data's hrefs are relative to
        its folder. Parents are created.
    data : Mapping
        ``settings`` (name -> scalar), ``claims_href``, ``claims`` (rows of the
        reproduction table), ``figures`` (``label``, ``href``) and ``models``:
        per model its ``model``, ``dataset``, ``split``, ``methods``, ``links``
        and ``layers``, per layer its ``layer``, ``methods`` (one column each:
        ``method``, ``variant``, ``n_concepts``, ``shown``, ``link``,
        ``concepts``), ``alignment`` and ``recovery`` rows. Every key of
        :data:`_SCHEMA` is required; numbers may be None (shown as "–"),
        ``link``, a concept's ``faithfulness`` and ``recovery`` may be None.
        Extra keys are carried along. numpy scalars and arrays are accepted.
    title : str
        The page's title and heading.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If a key is missing or a value has the wrong kind, naming where
        (``"models[1].layers[0]: no key 'methods'"``), or a number is NaN or
        infinite (the caller turns NaN into None).
    """
    _check(data, _SCHEMA, "")
    page = render_page(
        "conceptscope.atlas",
        "atlas",
        text={"TITLE": title},
        data={"DATA": inline_json(data, default=_jsonable)},
    )
    return write_page(path, page)


def _as_numpy(images: Any) -> np.ndarray:
    """``images`` as a numpy array (a torch tensor detached and copied to the CPU)."""
    torch = sys.modules.get("torch")  # a tensor exists only if torch is imported
    if torch is not None and isinstance(images, torch.Tensor):
        return images.detach().cpu().numpy()
    return np.asarray(images)


def _check(value: Any, spec: Any, where: str) -> None:
    """Raise ValueError unless ``value`` has the structure ``spec`` (see :data:`_SCHEMA`) at ``where``."""
    here = where or "data"
    if isinstance(spec, _Nullable):
        if value is None:
            return
        spec = spec.spec
    if isinstance(spec, dict):
        if not isinstance(value, Mapping):
            raise ValueError(f"{here}: expected a mapping, got {type(value).__name__}")
        for key in spec:
            if key not in value:
                raise ValueError(f"{here}: no key {key!r}")
        for key, item in value.items():
            _check(item, spec.get(key), f"{where}.{key}" if where else str(key))
    elif isinstance(spec, list):
        if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
            raise ValueError(f"{here}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
    elif isinstance(value, Mapping | list | tuple | np.ndarray):
        for key, item in value.items() if isinstance(value, Mapping) else enumerate(value):
            _check(item, None, f"{where}.{key}" if isinstance(value, Mapping) else f"{where}[{key}]")
    elif isinstance(value, float | np.floating) and not math.isfinite(value):
        raise ValueError(f"{here}: {value} is not a number the page can show (use None)")


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays, and non-dict mappings, as JSON values (the ``default`` of :func:`inline_json`)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
