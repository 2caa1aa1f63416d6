"""NeurFlow patches and concepts: crops of the class's images, and each neuron's top-k patches.

NeurFlow (Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron
Groups and Functional Interactions", ICLR 2025, Sect. 3-4) explains class ``c``
with the images predicted as ``c`` (:func:`class_patches`), cut into patches
(:func:`make_patches`: crops at several scales, each resized back to the model
input). A neuron (channel) ``a`` of probed block ``l`` has the concept ``V_a``:
its top-k patches by spatially averaged activation (:func:`top_k_patches` on
the means of one forward pass over every patch, :func:`concept_means`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..activations import record_activations
from ..checks import check_int
from .settings import NeurFlowBatchSize

if TYPE_CHECKING:
    from ..data import ImageSet
    from ..models import InputSpec

__all__ = ["PATCH_SCALES", "circuit_patch_images", "class_patches", "concept_means", "make_patches", "top_k_patches"]

PATCH_SCALES = (1.0, 0.5, 0.25)


def _offsets(length: int, crop: int, stride: float) -> list[int]:
    """Start offsets of crops of size ``crop`` along ``length``: first at 0, last ending at the border."""
    if crop >= length:
        return [0]
    count = math.ceil((length - crop) / stride - 1e-9) + 1
    return [round(v) for v in np.linspace(0.0, length - crop, count)]


def make_patches(
    images: torch.Tensor, *, scales: Sequence[float] = PATCH_SCALES, overlap: float = 0.5
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Cut images into overlapping crops at several scales, each resized back to the input size.

    For each scale ``s`` a crop of ``round(s*H) x round(s*W)`` pixels slides with
    stride ``(1 - overlap) * crop size`` in each direction; the offsets are
    evenly spaced from 0 to ``H - crop`` (resp. ``W - crop``) so that the crops
    tile the image exactly (the last crop ends at the border). With the default
    scales (1, 0.5, 0.25) and overlap 0.5 this gives 1 + 3x3 + 7x7 = 59 patches
    per image. Each crop is resized to (H, W) with bilinear interpolation
    (``align_corners=False``, no antialiasing); a full-size crop is the image.

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Model-ready images.
    scales : sequence of float in (0, 1]
        Crop side as a fraction of the image side, in output order.
    overlap : float in [0, 1)
        Fraction of a crop shared with its neighbour.

    Returns
    -------
    patches : Tensor, shape (n * n_per_image, C, H, W)
        Image-major: all patches of image 0 (scales in order, then row-major
        crop positions), then image 1, ...
    table : DataFrame
        One row per patch: ``patch`` (row index into ``patches``), ``image``
        (index into ``images``), ``scale``, ``top``, ``left``, ``height``,
        ``width`` (the crop box in pixels of the input).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor of shape (n, C, H, W), got {getattr(images, 'shape', images)!r}")
    scales = tuple(float(s) for s in scales)
    if not scales or any(not 0.0 < s <= 1.0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of values in (0, 1], got {scales!r}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    n, c, H, W = images.shape
    boxes: list[tuple[float, int, int, int, int]] = []
    per_scale: list[torch.Tensor] = []
    for s in scales:
        ch, cw = max(1, round(s * H)), max(1, round(s * W))
        tops = _offsets(H, ch, (1.0 - overlap) * ch)
        lefts = _offsets(W, cw, (1.0 - overlap) * cw)
        crops = [images[:, :, t : t + ch, le : le + cw] for t in tops for le in lefts]
        stack = torch.stack(crops, dim=1).reshape(n * len(crops), c, ch, cw)
        if (ch, cw) != (H, W):
            stack = F.interpolate(stack, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
        per_scale.append(stack.reshape(n, len(crops), c, H, W))
        boxes.extend((s, t, le, ch, cw) for t in tops for le in lefts)
    patches = torch.cat(per_scale, dim=1).reshape(n * len(boxes), c, H, W)
    box = np.asarray([b[1:] for b in boxes], dtype=np.int64).reshape(-1, 4)
    table = pd.DataFrame(
        {
            "patch": np.arange(n * len(boxes), dtype=np.int64),
            "image": np.repeat(np.arange(n, dtype=np.int64), len(boxes)),
            "scale": np.tile(np.asarray([b[0] for b in boxes], dtype=np.float64), n),
            "top": np.tile(box[:, 0], n),
            "left": np.tile(box[:, 1], n),
            "height": np.tile(box[:, 2], n),
            "width": np.tile(box[:, 3], n),
        }
    )
    return patches, table


def class_patches(predictions: np.ndarray, class_index: int, max_images: int | None) -> np.ndarray:
    """Positions of the images predicted as ``class_index``, the first ``max_images`` in stored order.

    Parameters
    ----------
    predictions : ndarray of int, shape (n_images,)
    class_index : int
    max_images : int or None
        Keep at most this many (None: all).

    Returns
    -------
    ndarray of int64, shape (m,)
        Positions in ``predictions``, ascending.
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ValueError(f"predictions must be 1-D, got shape {predictions.shape}")
    pos = np.flatnonzero(predictions == class_index).astype(np.int64)
    return pos if max_images is None else pos[: check_int("max_images", max_images, minimum=1)]


def top_k_patches(means: np.ndarray, unit: int, k: int) -> np.ndarray:
    """Row indices of the ``k`` patches with the highest value in column ``unit`` (ties: lower row first).

    Parameters
    ----------
    means : ndarray, shape (n_patches, n_units)
        Spatially averaged activations of one block.
    unit : int
        Column (neuron).
    k : int
        Concept size, 1 <= k <= n_patches.

    Returns
    -------
    ndarray of int64, shape (k,)
        In decreasing order of the value.
    """
    means = np.asarray(means)
    if means.ndim != 2:
        raise ValueError(f"means must be 2-D (n_patches, n_units), got shape {means.shape}")
    unit = check_int("unit", unit, minimum=0, maximum=means.shape[1] - 1)
    k = check_int("k", k, minimum=1, maximum=means.shape[0])
    order = np.argsort(-means[:, unit].astype(np.float64), kind="stable")
    return order[:k].astype(np.int64)


def concept_means(
    model: nn.Module,
    patches: torch.Tensor,
    layers: Sequence[str],
    *,
    batch_size: int = NeurFlowBatchSize.cpu,
    layouts: Mapping[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Spatially averaged activation of every probed block for every patch, in one pass.

    The mean runs over the spatial axes of maps (channels first or last) and
    over the tokens of token outputs (:func:`conceptscope.activations.summarize`).

    Parameters
    ----------
    model : nn.Module
        In eval mode (its modes are not changed), on the device to run on.
    patches : Tensor, shape (n_patches, C, H, W)
        Model-ready patches (not modified, even by a model that writes into its input).
    layers : sequence of str
        Probed blocks.
    batch_size : int
        Patches per forward pass.
    layouts : mapping layer -> layout, optional
        Layouts set rather than detected (:data:`conceptscope.activations.LAYOUTS`).

    Returns
    -------
    dict layer -> ndarray, shape (n_patches, n_units), float32
        Per unit its spatially averaged activation (vector layers: the values).
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    # copies: a model may write into its input
    batches = (patches[i : i + batch_size].clone() for i in range(0, len(patches), batch_size))
    rec = record_activations(model, list(layers), batches, device=device, layouts=layouts)
    return {layer: (r["mean"] if "mean" in r else r["values"]).numpy() for layer, r in rec.items()}


def circuit_patch_images(circuit: Mapping[str, Any], images: ImageSet, inp: InputSpec) -> dict[int, np.ndarray]:
    """Pixels of a circuit's listed patches, cut again from the images, patch id -> (H, W) or (H, W, 3) in [0, 1].

    The images at ``circuit["positions"]`` are fitted to the model input (not
    normalized) and cut with :func:`make_patches` as when the circuit was built.

    Raises
    ------
    RuntimeError
        If a patch's box differs from the one the circuit recorded (the data or the patch grid changed).
    """
    pos = np.asarray(circuit["positions"], dtype=np.int64)
    needed = sorted({int(v["image"]) for v in circuit["patches"].values()})
    x = images.images(pos[needed], inp.size, inp.channels)
    patches, table = make_patches(x)
    per_image = len(table) // len(needed)
    out = {}
    for key, v in circuit["patches"].items():
        r = needed.index(int(v["image"])) * per_image + int(key) % per_image
        row = table.iloc[r]
        if [int(row["top"]), int(row["left"]), int(row["height"]), int(row["width"])] != list(v["box"]):
            raise RuntimeError(f"patch {key}: its box {v['box']} does not match the patches cut now; rerun the circuit")
        img = patches[r].numpy()
        out[int(key)] = img[0] if img.shape[0] == 1 else img[:3].transpose(1, 2, 0)
    return out
