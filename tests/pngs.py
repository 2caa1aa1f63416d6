"""Checks of written figures shared by the view tests."""

from __future__ import annotations

from PIL import Image


def check_png(path, fig, *, min_bytes: int, width: tuple[int, int], height: tuple[int, int]) -> None:
    """``path`` is a PNG of at least ``min_bytes`` whose size is the figure's (to 2 px) and within the bounds."""
    assert path.stat().st_size > min_bytes
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    fw, fh = fig.get_size_inches() * fig.dpi
    assert abs(w - fw) <= 2 and abs(h - fh) <= 2
    assert width[0] <= w <= width[1] and height[0] <= h <= height[1]
