"""Image helpers shared by the figures and pages of every method.

Images travel through the library as float arrays in [0, 1], channels first
(C, H, W), as :meth:`conceptscope.data.ImageSet.images` returns them; these
helpers turn them into what matplotlib and PIL draw.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .data import ImageSet

__all__ = ["display_image", "iter_images", "load_images", "png_data_uri", "to_pil"]

_CHUNK = 256  # images loaded per call when many are needed


def display_image(img: Any, *, rescale: bool = False) -> tuple[np.ndarray, str | None]:
    """An image as an (H, W) or (H, W, 3) float32 array in [0, 1] and its colormap (``"gray"`` for grey).

    Parameters
    ----------
    img : array-like, shape (H, W), (C, H, W) or (H, W, C)
        Channels first is recognised when the first axis has 1-4 entries and
        the last does not. Three or more channels: the first three (RGB);
        one or two: their mean, drawn grey. NaN becomes 0.
    rescale : bool
        If true, an image with values outside [0, 1] is mapped onto [0, 1] by
        its own minimum and maximum (a constant image becomes 0.5); otherwise
        values are clipped to [0, 1].

    Raises
    ------
    ValueError
        If the array is empty or not 2-D / 3-D.
    """
    x = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"an image must be H x W, C x H x W or H x W x C, got shape {np.shape(img)}")
    if x.ndim == 3:
        if x.shape[0] <= 4 and x.shape[-1] not in (1, 3, 4):
            x = x.transpose(1, 2, 0)  # channels first -> last
        x = x[..., :3] if x.shape[-1] >= 3 else x.mean(-1)
    if rescale:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            x = (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)
    x = np.clip(x, 0.0, 1.0)
    return x, ("gray" if x.ndim == 2 else None)


def to_pil(img: Any, *, rescale: bool = False):
    """An image (see :func:`display_image`) as an 8-bit PIL image, grey ("L") or RGB."""
    from PIL import Image

    arr, _ = display_image(img, rescale=rescale)
    return Image.fromarray(np.round(arr * 255.0).astype(np.uint8))


def png_data_uri(img: Any, thumb_px: int, *, rescale: bool = False) -> str:
    """PNG data URI of an image; one larger than ``thumb_px`` on its longer side is shrunk to fit (Lanczos)."""
    from PIL import Image

    im = to_pil(img, rescale=rescale)
    w, h = im.size
    if max(w, h) > thumb_px:
        s = thumb_px / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def iter_images(images: ImageSet, positions: Sequence[int] | np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
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


def load_images(images: ImageSet, positions: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]:
    """Position -> image (C, H, W) in [0, 1] for the distinct ``positions`` (see :func:`iter_images`)."""
    return dict(iter_images(images, positions))
