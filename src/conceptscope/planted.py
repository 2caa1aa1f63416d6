"""Planted concepts: digits with stamped visual patterns whose carriers and pixels are known exactly.

A ground truth for concept discovery. The four papers' methods (NAPs, coupled
NMF, NAS, NeurFlow) are judged on data whose concepts nobody wrote down; here
small binary patterns are stamped into scikit-learn's 8x8 digits by a stated,
seeded rule, and every image records which concepts it carries and exactly
which pixels each stamp set. Data set kind ``planted`` (:mod:`conceptscope.data`)
serves these images.

The rule (:func:`planted_digits`, defaults :data:`STAMPS`):

1. The 1,797 digit images (values 0..16 scaled to [0, 1]) are upsampled
   exactly to 16x16 by nearest neighbour (each pixel becomes a 2x2 block,
   :func:`upsample`), so a stamp of a few pixels covers a fraction of a stroke
   rather than whole strokes.
2. ``rng = numpy.random.default_rng(seed)``. For each concept in order, its
   carriers are ``round_half_up(fraction * len(pool))`` images drawn without
   replacement (``rng.choice``) from its pool: the images of one class
   (class-tied) or all images (cross-class). Concepts are drawn independently,
   so an image may carry several.
3. Positions: a fixed-position concept is stamped with its pattern's top-left
   corner at ``position``. Then, image by image and within an image in concept
   order, each random-position concept it carries gets a top-left corner drawn
   uniformly (``rng.integers``) among the corners, in row-major order, whose
   pattern box lies inside the image and is at least one pixel away from the
   boxes of every fixed-position concept (reserved in all images, carried or
   not) and of the random stamps already placed in that image. So stamps never
   overlap or touch, and a fixed concept's corner box never holds another stamp.
4. Stamping sets the pixels where the pattern is 1 to 1.0 (the digits' maximum
   intensity) and leaves every other pixel, including the pattern's 0s, as it
   was. Those pixels are the stamp's mask (:func:`concept_masks`): outside the
   masks a planted image equals the upsampled digit exactly.

The default concepts, a 2x2 design of class-tied / cross-class and fixed /
random position (pixels of the 16x16 grid, rows top to bottom)::

    name     pattern              pool            fraction  position
    cross    3x3 plus (5 px)      class 2 only    0.5       fixed, top-left corner at (1, 1)
    checker  4x4 checker (8 px)   class 7 only    0.5       random
    bar      1x5 bar (5 px)       all classes     0.25      fixed, top-left corner at (14, 10)
    dots     3x3 diagonal (2 px)  all classes     0.25      random

The planting depends only on ``seed``, not on the split: a sample id (its row
in scikit-learn's digits) is the same image in every split and suite with the
same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "STAMPS",
    "UPSAMPLE",
    "ConceptStamp",
    "Planting",
    "concept_masks",
    "plant_concepts",
    "planted_digits",
    "stamp_images",
    "upsample",
]

UPSAMPLE = 2  # 8x8 digits -> 16x16


@dataclass(frozen=True)
class ConceptStamp:
    """One planted concept: a binary pattern and the rule that places it.

    Attributes
    ----------
    name : str
        Concept name (``concept_<name>`` in a split's manifest).
    pattern : tuple of str
        Rows of the pattern, ``"1"`` = pixel set to 1.0, ``"0"`` = left as is.
    fraction : float in (0, 1]
        Fraction of the pool that carries the concept.
    label : int or None
        Class index of the pool (class-tied); None = all images (cross-class).
    position : (row, col) or None
        Top-left corner of the pattern in the stamped image; None = drawn per
        image (random position).
    """

    name: str
    pattern: tuple[str, ...]
    fraction: float
    label: int | None = None
    position: tuple[int, int] | None = None

    @property
    def array(self) -> np.ndarray:
        """The pattern as a bool array, shape (height, width)."""
        return np.array([[ch == "1" for ch in row] for row in self.pattern], dtype=bool)


STAMPS: tuple[ConceptStamp, ...] = (
    ConceptStamp("cross", ("010", "111", "010"), 0.5, label=2, position=(1, 1)),
    ConceptStamp("checker", ("1010", "0101", "1010", "0101"), 0.5, label=7),
    ConceptStamp("bar", ("11111",), 0.25, position=(14, 10)),
    ConceptStamp("dots", ("100", "000", "001"), 0.25),
)


@dataclass(frozen=True)
class Planting:
    """Images with planted concepts and the record of every stamp.

    Attributes
    ----------
    images : ndarray of float32, shape (n_samples, height, width)
        Stamped images in [0, 1].
    labels : ndarray of int64, shape (n_samples,)
        Class of each image (unchanged by planting).
    concepts : ndarray of bool, shape (n_samples, n_concepts)
        Whether image i carries concept j.
    positions : ndarray of int64, shape (n_samples, n_concepts, 2)
        Top-left (row, col) of each stamp; -1 where the image does not carry it.
    stamps : tuple of ConceptStamp
        The concepts, in column order.
    """

    images: np.ndarray
    labels: np.ndarray
    concepts: np.ndarray
    positions: np.ndarray
    stamps: tuple[ConceptStamp, ...]

    @property
    def concept_names(self) -> list[str]:
        return [s.name for s in self.stamps]

    def masks(self) -> np.ndarray:
        """The exact pixels of every stamp, bool, shape (n_samples, n_concepts, height, width)."""
        return concept_masks(self.positions, self.stamps, self.images.shape[-2:])


def upsample(images: np.ndarray, factor: int = UPSAMPLE) -> np.ndarray:
    """Nearest-neighbour upsampling of (n, H, W) images by an integer ``factor`` (exact: pixel values repeated)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    return np.repeat(np.repeat(np.asarray(images), factor, axis=-2), factor, axis=-1)


def concept_masks(positions: np.ndarray, stamps: Sequence[ConceptStamp], size: Sequence[int]) -> np.ndarray:
    """Masks of the stamps at ``positions``.

    Parameters
    ----------
    positions : int array, shape (n_samples, n_concepts, 2)
        Top-left (row, col) per image and concept; -1 = not carried.
    stamps : the concepts, one per column of ``positions``.
    size : (height, width) of the images.

    Returns
    -------
    ndarray of bool, shape (n_samples, n_concepts, height, width)
        True where the stamp set the pixel (its pattern's 1s).
    """
    positions = np.asarray(positions, dtype=np.int64)
    height, width = int(size[0]), int(size[1])
    if positions.ndim != 3 or positions.shape[1:] != (len(stamps), 2):
        raise ValueError(f"positions must have shape (n, {len(stamps)}, 2), got {positions.shape}")
    masks = np.zeros((positions.shape[0], len(stamps), height, width), dtype=bool)
    for j, stamp in enumerate(stamps):
        pat = stamp.array
        h, w = pat.shape
        for i in np.flatnonzero(positions[:, j, 0] >= 0):
            r, c = positions[i, j]
            if r + h > height or c + w > width:
                raise ValueError(f"stamp {stamp.name!r} at {(int(r), int(c))} leaves the {height}x{width} image")
            masks[i, j, r : r + h, c : c + w] = pat
    return masks


def stamp_images(images: np.ndarray, positions: np.ndarray, stamps: Sequence[ConceptStamp]) -> np.ndarray:
    """A copy of float (n, H, W) ``images`` with each recorded stamp's pixels set to 1.0."""
    out = np.array(images, dtype=np.float32, copy=True)
    out[concept_masks(positions, stamps, out.shape[-2:]).any(axis=1)] = 1.0
    return out


def _check_stamps(stamps: Sequence[ConceptStamp], labels: np.ndarray, size: tuple[int, int]) -> None:
    names = [s.name for s in stamps]
    if len(set(names)) != len(names):
        raise ValueError(f"concept names must be unique, got {names}")
    for s in stamps:
        widths = {len(row) for row in s.pattern}
        if not s.pattern or len(widths) != 1 or set("".join(s.pattern)) - {"0", "1"} or "1" not in "".join(s.pattern):
            raise ValueError(f"concept {s.name!r}: pattern must be equal-length rows of 0/1 with a 1, got {s.pattern}")
        if not 0.0 < s.fraction <= 1.0:
            raise ValueError(f"concept {s.name!r}: fraction must be in (0, 1], got {s.fraction}")
        if s.label is not None and not np.any(labels == s.label):
            raise ValueError(f"concept {s.name!r}: no image has label {s.label}")
        h, w = s.array.shape
        if h > size[0] or w > size[1]:
            raise ValueError(f"concept {s.name!r}: a {h}x{w} pattern does not fit {size[0]}x{size[1]} images")
        if s.position is not None:
            r, c = s.position
            if r < 0 or c < 0 or r + h > size[0] or c + w > size[1]:
                raise ValueError(f"concept {s.name!r}: position {s.position} leaves the {size[0]}x{size[1]} image")


def _block(blocked: np.ndarray, r: int, c: int, shape: tuple[int, int], gap: int = 1) -> None:
    """Mark a pattern box and a ``gap``-pixel border around it as taken."""
    blocked[max(r - gap, 0) : r + shape[0] + gap, max(c - gap, 0) : c + shape[1] + gap] = True


def plant_concepts(
    images: np.ndarray, labels: np.ndarray, *, seed: int, stamps: Sequence[ConceptStamp] = STAMPS
) -> Planting:
    """Stamp concepts into images by the module's rule (steps 2-4 of the module docstring).

    Parameters
    ----------
    images : float array, shape (n_samples, height, width)
        Clean images in [0, 1] (already upsampled); not modified.
    labels : int array, shape (n_samples,)
        Class per image (the pools of class-tied concepts).
    seed : int
        Seed of ``numpy.random.default_rng``: same seed, same planting.
    stamps : the concepts (default :data:`STAMPS`).

    Returns
    -------
    Planting
    """
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"expected images (n, H, W) and labels (n,), got {images.shape} and {labels.shape}")
    stamps = tuple(stamps)
    size = (int(images.shape[1]), int(images.shape[2]))
    _check_stamps(stamps, labels, size)
    n, k = images.shape[0], len(stamps)
    rng = np.random.default_rng(seed)

    concepts = np.zeros((n, k), dtype=bool)
    for j, s in enumerate(stamps):
        pool = np.arange(n) if s.label is None else np.flatnonzero(labels == s.label)
        count = int(np.floor(s.fraction * pool.size + 0.5))
        concepts[rng.choice(pool, size=count, replace=False), j] = True

    positions = np.full((n, k, 2), -1, dtype=np.int64)
    reserved = np.zeros(size, dtype=bool)
    for j, s in enumerate(stamps):
        if s.position is not None:
            positions[concepts[:, j], j] = s.position
            _block(reserved, *s.position, s.array.shape)
    floating = [j for j, s in enumerate(stamps) if s.position is None]
    for i in np.flatnonzero(concepts[:, floating].any(axis=1)):
        blocked = reserved.copy()
        for j in floating:
            if not concepts[i, j]:
                continue
            shape = stamps[j].array.shape
            free = ~np.lib.stride_tricks.sliding_window_view(blocked, shape).any(axis=(-2, -1))
            corners = np.argwhere(free)  # row-major order
            if corners.size == 0:
                raise ValueError(f"no free position for concept {stamps[j].name!r} in image {i}")
            r, c = corners[rng.integers(corners.shape[0])]
            positions[i, j] = (r, c)
            _block(blocked, int(r), int(c), shape)

    return Planting(
        images=stamp_images(images, positions, stamps),
        labels=labels,
        concepts=concepts,
        positions=positions,
        stamps=stamps,
    )


def planted_digits(seed: int, *, stamps: Sequence[ConceptStamp] = STAMPS) -> Planting:
    """scikit-learn's digits (values / 16), upsampled to 16x16, with concepts planted (the module's rule).

    Row i is digits row i: ``sample_ids`` of kind ``planted`` index it, as
    they index the digits for kind ``digits``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    clean = upsample((bunch.images / 16.0).astype(np.float32))  # (1797, 16, 16)
    return plant_concepts(clean, bunch.target, seed=seed, stamps=stamps)
