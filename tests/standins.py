"""Tiny stand-ins for the papers' data sets, in their real on-disk layouts (for dry runs and loaders)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(arr: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (MNIST format)."""
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, dtype=">i4").tobytes() + arr.tobytes()


def write_mnist(root: Path, n: int = 20, seed: int = 0) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(n) % 10))


def write_cifar(root: Path, kind: str = "cifar10", n: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder = root / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, obj: dict) -> None:
        with open(folder / name, "wb") as fh:
            pickle.dump(obj, fh)

    def batch() -> dict:
        data = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        if kind == "cifar10":
            return data | {b"labels": list(np.arange(n) % 10)}
        return data | {b"fine_labels": list(np.arange(n) % 100), b"coarse_labels": list(np.arange(n) % 20)}

    if kind == "cifar10":
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            dump(name, batch())
        dump("batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    else:
        dump("train", batch())
        dump("test", batch())
        dump(
            "meta",
            {
                b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                b"coarse_label_names": [f"s{i}".encode() for i in range(20)],
            },
        )


def write_image_folder(root: Path, split: str, classes: list[str], per_class: int = 3, size: int = 40) -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        d = root / split / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{c}_{i:03d}.png")


def write_quickdraw(root: Path, classes: list[str], n: int = 12, seed: int = 0) -> None:
    """One ``<class>.npy`` bitmap file per class (n x 784 uint8), QuickDraw's numpy_bitmap layout."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for cls in classes:
        np.save(root / f"{cls}.npy", rng.integers(0, 256, (n, 784), dtype=np.uint8))
