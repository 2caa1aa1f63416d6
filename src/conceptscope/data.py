"""Data sets by name, deterministic splits and subsets, and the input pipeline.

Every data set is read into an :class:`ImageSet`: labels, class names and a
loader that returns images as float tensors in [0, 1], shape
``(n_samples, channels, height, width)``, already fitted to a model's input
(:func:`fit_to_input`: bilinear resize, channels repeated or averaged). The
same pipeline serves every data set, so a model sees digits, MNIST, CIFAR or
ImageNet images the same way.

Kinds (``DATASET_KINDS``):

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10
  classes, grey, values 0..16 scaled to [0, 1]); a stratified train/test split
  drawn with ``split_seed``. The embedded default: no download.
- ``planted``: the same digits upsampled to 16x16 (nearest, exact) with
  four visual concepts stamped in by a rule seeded with ``seed``
  (:mod:`conceptscope.planted`); the same split as ``digits`` (same
  ``test_fraction`` / ``split_seed``, same sample ids). Each sample records
  which concepts it carries (:attr:`ImageSet.concepts`). No download.
- ``mnist``: the four IDX files (``train-images-idx3-ubyte`` ...) in
  ``<root>/MNIST/raw`` (torchvision's layout; ``.gz`` accepted).
- ``cifar10`` / ``cifar100``: the python pickles of the official archives in
  ``<root>/cifar-10-batches-py`` / ``<root>/cifar-100-python``. CIFAR-100
  carries its 20 superclasses; ``label_kind: coarse`` makes them the labels.
- ``imagenet``: class folders (WordNet ids) in ``<root>/<split>``, split
  ``val`` (or ``train``); classes in sorted order, which is the usual
  ILSVRC2012 index order.
- ``quickdraw``: one ``<class>.npy`` bitmap file per class (n x 784, uint8);
  the first ``train_per_class`` rows of each class form ``train``, the next
  ``test_per_class`` rows ``test``.
- ``imagefolder``: any ``<root>/<split>/<class>/<image>`` tree.

Samples within a split are in a fixed order (file order for the archives,
sorted paths for folders), and :func:`select_subset` keeps the first samples
of that order, so subsets are deterministic and nested.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DATASET_KINDS",
    "DOWNLOADABLE",
    "IMAGE_SUFFIXES",
    "DataMissingError",
    "ImageSet",
    "check_folder_splits",
    "check_split_files",
    "class_count",
    "fetch_data",
    "fit_to_input",
    "folder_classes",
    "load_split",
    "select_subset",
    "split_names",
]

DOWNLOADABLE = ("mnist", "cifar10", "cifar100")  # kinds torchvision can fetch (``download: true``)
DATASET_KINDS = ("digits", "planted", "mnist", "cifar10", "cifar100", "imagenet", "quickdraw", "imagefolder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


class DataMissingError(FileNotFoundError):
    """A data set's files are not where its configuration says."""


# positions, optional (height, width) -> float32 images (n, C, H, W) in [0, 1]
Loader = Callable[[np.ndarray, "tuple[int, int] | None"], torch.Tensor]


@dataclass(frozen=True)
class ImageSet:
    """One split of a data set.

    Attributes
    ----------
    name, split : str
        Configured data set id and split name.
    labels : ndarray of int64, shape (n_samples,)
        Class index per sample.
    class_names : list of str
        Name of each class index.
    sample_ids : ndarray of int64, shape (n_samples,)
        Stable id of each sample within its source (row of the archive, index
        into the sorted file list), kept through subsetting.
    channels : int
        Channels of the stored images (1 grey, 3 colour).
    superclass_labels, superclass_names
        Coarse labels where the data set has them (CIFAR-100), else None.
    concepts : ndarray of bool, shape (n_samples, n_concepts), or None
        Ground-truth concepts where the data set plants them (``planted``):
        whether sample i carries concept j. Kept through subsetting.
    concept_names : list of str or None
        Name of each column of ``concepts``.
    """

    name: str
    split: str
    labels: np.ndarray
    class_names: list[str]
    sample_ids: np.ndarray
    channels: int
    loader: Loader = field(repr=False)
    superclass_labels: np.ndarray | None = None
    superclass_names: list[str] | None = None
    concepts: np.ndarray | None = None
    concept_names: list[str] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, positions: np.ndarray) -> ImageSet:
        """The samples at ``positions`` (indices into this set), same order."""
        positions = np.asarray(positions, dtype=np.int64)
        base = self.loader
        sup = None if self.superclass_labels is None else self.superclass_labels[positions]
        concepts = None if self.concepts is None else self.concepts[positions]
        return replace(
            self,
            labels=self.labels[positions],
            sample_ids=self.sample_ids[positions],
            loader=lambda pos, size: base(positions[pos], size),
            superclass_labels=sup,
            concepts=concepts,
        )

    def images(
        self, positions: np.ndarray, size: tuple[int, int] | None = None, channels: int | None = None
    ) -> torch.Tensor:
        """Images at ``positions`` as float32 in [0, 1], shape (n, C, H, W).

        With ``size``/``channels`` they are fitted to a model input by
        :func:`fit_to_input`; otherwise returned at their stored size (all
        images of the requested positions must then share one size).
        """
        size = None if size is None else (int(size[0]), int(size[1]))
        x = self.loader(np.asarray(positions, dtype=np.int64), size)
        if size is None and channels is None:
            return x
        return fit_to_input(x, size or tuple(x.shape[-2:]), channels or x.shape[1])

    def batches(
        self, batch_size: int, size: tuple[int, int], channels: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield ``(images, labels, positions)`` in order, images fitted to the input."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            pos = np.arange(start, min(start + batch_size, len(self)))
            yield self.images(pos, size, channels), torch.from_numpy(self.labels[pos]), pos


def fit_to_input(x: torch.Tensor, size: Sequence[int], channels: int) -> torch.Tensor:
    """Fit images to a model input: bilinear resize, then match channels.

    Parameters
    ----------
    x : Tensor, shape (n, C, H, W), float in [0, 1]
    size : (height, width) of the model input.
    channels : channels the model expects. Grey images are repeated to 3
        channels; colour images are averaged to 1 (equal weights). Any other
        mismatch raises ``ValueError``.

    The same function serves every data set. Resizing is bilinear with
    antialiasing (which equals plain bilinear when enlarging) and no crop.
    """
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (n, C, H, W), got {tuple(x.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp_(0.0, 1.0)
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1 and channels == 3:
        return x.expand(-1, channels, -1, -1).contiguous()
    if have == 3 and channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot fit {have}-channel images to a {channels}-channel input")


def select_subset(labels: np.ndarray, *, per_class: int | None = None, first_n: int | None = None) -> np.ndarray:
    """Positions of a deterministic subset, in the original order.

    ``per_class`` keeps the first ``per_class`` samples of each class;
    ``first_n`` then keeps the first ``first_n`` of what remains. Both keep the
    stored order, so a smaller subset is always contained in a larger one.
    """
    labels = np.asarray(labels)
    keep = np.arange(labels.shape[0])
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        rank = np.zeros_like(keep)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            rank[members] = np.arange(members.size)
        keep = keep[rank < per_class]
    if first_n is not None:
        if first_n < 1:
            raise ValueError(f"first_n must be >= 1, got {first_n}")
        keep = keep[:first_n]
    return keep


def split_names(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Split names a data set of this kind offers."""
    kind = spec["kind"]
    if kind == "imagenet":
        return ("train", "val")
    if kind == "imagefolder":
        return tuple(spec.get("splits", ("train", "test")))
    return ("train", "test")


def class_count(spec: Mapping[str, Any], *, key: str = "datasets.<id>") -> int | None:
    """The number of classes of a configured data set, without reading its images (for parse-time checks).

    ``None`` when it cannot be told without the files (a folder or QuickDraw
    root that is missing: the data checks report that separately).
    """
    kind = spec["kind"]
    fixed = {"digits": 10, "planted": 10, "mnist": 10, "cifar10": 10}
    if kind in fixed:
        return fixed[kind]
    if kind == "cifar100":
        return 20 if spec.get("label_kind", "fine") == "coarse" else 100
    if spec.get("classes"):
        return len(spec["classes"])
    try:
        if kind == "quickdraw":
            return len(list(_root(spec, key, kind).glob("*.npy"))) or None
        return len(folder_classes(spec, key=key))
    except DataMissingError:
        return None


def load_split(spec: Mapping[str, Any], split: str, *, key: str = "datasets.<id>") -> ImageSet:
    """Open one split of a configured data set, subset applied.

    Parameters
    ----------
    spec : mapping
        The data set's configuration (``config['datasets'][id]`` with schema
        defaults): ``kind``, ``root``, ``download``, ``subset`` and the
        kind's own keys.
    split : str
        One of :func:`split_names` for the kind.
    key : str
        Configuration path of ``spec``, named in error messages.

    Raises
    ------
    DataMissingError
        When files are missing; the message names ``<key>.root`` and the files
        expected there.
    """
    kind = spec.get("kind")
    if kind not in DATASET_KINDS:
        raise ValueError(f"{key}.kind: unknown data set kind {kind!r}; choose one of {DATASET_KINDS}")
    if split not in split_names(spec):
        raise ValueError(f"{key}: split {split!r} does not exist for kind {kind!r}; splits: {split_names(spec)}")
    name = key.rsplit(".", 1)[-1]
    reader = _READERS[kind]
    full = reader(spec, split, key, name)
    sub = (spec.get("subset") or {}).get(split) or {}
    if sub.get("per_class") is None and sub.get("first_n") is None:
        return full
    return full.subset(select_subset(full.labels, per_class=sub.get("per_class"), first_n=sub.get("first_n")))


# -- readers ---------------------------------------------------------------------------------


def _array_set(
    name: str, split: str, images: np.ndarray, labels: np.ndarray, class_names: list[str], **extra: Any
) -> ImageSet:
    """An ImageSet over in-memory uint8 (n, H, W[, C]) or float (n, C, H, W) images."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        if images.ndim == 3:
            images = images[:, None]
        elif images.shape[-1] in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        scale = 1.0 / 255.0
    else:
        scale = 1.0

    def loader(pos: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images[pos], dtype=np.float32) * scale)

    return ImageSet(
        name=name,
        split=split,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=list(class_names),
        sample_ids=np.arange(len(labels), dtype=np.int64),
        channels=int(images.shape[1]),
        loader=loader,
        **extra,
    )


def _digits_split(spec: Mapping[str, Any], split: str, labels: np.ndarray) -> np.ndarray:
    """Sorted row ids of a split of the digits (kinds ``digits`` and ``planted``): stratified by label."""
    from sklearn.model_selection import train_test_split

    train_ids, test_ids = train_test_split(
        np.arange(labels.shape[0]),
        test_size=float(spec.get("test_fraction", 0.25)),
        stratify=labels,
        random_state=int(spec.get("split_seed", 0)),
    )
    return np.sort(train_ids if split == "train" else test_ids).astype(np.int64)


def _read_digits(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    labels = bunch.target.astype(np.int64)
    ids = _digits_split(spec, split, labels)
    out = _array_set(name, split, images[ids], labels[ids], [str(d) for d in range(10)])
    return replace(out, sample_ids=ids)


def _read_planted(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    from .planted import planted_digits

    if spec.get("seed") is None:
        raise ValueError(f"{key}.seed is not set: kind 'planted' needs the seed of its planting rule")
    planting = planted_digits(int(spec["seed"]))
    ids = _digits_split(spec, split, planting.labels)
    out = _array_set(
        name,
        split,
        planting.images[ids][:, None],  # (n, 1, 16, 16) float32 in [0, 1]
        planting.labels[ids],
        [str(d) for d in range(10)],
        concepts=planting.concepts[ids],
        concept_names=planting.concept_names,
    )
    return replace(out, sample_ids=ids)


def _root(spec: Mapping[str, Any], key: str, kind: str) -> Path:
    root = spec.get("root")
    if not root:
        raise DataMissingError(f"{key}.root is not set: data set kind {kind!r} needs the folder that holds its files")
    return Path(root).expanduser()


def _missing(key: str, kind: str, path: Path, what: str) -> DataMissingError:
    hint = (
        f" or set {key}.download: true and run `snakemake prefetch --cores 1` where there is internet"
        if kind in DOWNLOADABLE
        else ""
    )
    return DataMissingError(f"{key} ({kind}): {path} not found. Put {what} there (set {key}.root){hint}.")


def _download(kind: str, root: Path) -> None:
    """Fetch an archive with torchvision's downloader (only when ``download: true``)."""
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[kind]  # DOWNLOADABLE
    for train in (True, False):
        cls(str(root), train=train, download=True)


def fetch_data(spec: Mapping[str, Any], *, key: str = "datasets.<id>") -> list[str]:
    """Download the files of a data set that torchvision can fetch (``mnist``, ``cifar10``, ``cifar100`` with
    ``download: true``) into its ``root`` when they are missing; the archives fetched (empty when nothing was
    needed: other kinds are read from folders the user provides).

    Raises
    ------
    DataMissingError
        When the files are missing and cannot be downloaded (offline), naming the folder.
    """
    kind = spec["kind"]
    if kind not in DOWNLOADABLE or not spec.get("download"):
        return []
    absent = [split for split in ("train", "test") if _missing_files(spec, split, key) is not None]
    if not absent:
        return []
    root = _root(spec, key, kind)
    try:
        _download(kind, root)
    except Exception as err:  # torchvision raises URLError, RuntimeError, ... when offline
        raise DataMissingError(f"{key} ({kind}): could not download into {root}: {type(err).__name__}: {err}") from err
    return [f"{key} ({kind}) -> {root}"]


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format): big-endian dims after a 4-byte magic."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


def _mnist_stems(root: Path, split: str) -> dict[str, Path]:
    """The IDX files of an MNIST split (each may also be gzipped, ``<stem>.gz``)."""
    prefix = "train" if split == "train" else "t10k"
    return {part: root / "MNIST" / "raw" / f"{prefix}-{part}-ubyte" for part in ("images-idx3", "labels-idx1")}


def _cifar_paths(kind: str, root: Path, split: str) -> list[Path]:
    """The pickles of a CIFAR split, its metadata file last."""
    folder = root / _CIFAR_DIRS[kind]
    if kind == "cifar10":
        parts = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        return [folder / p for p in [*parts, "batches.meta"]]
    return [folder / p for p in ["train" if split == "train" else "test", "meta"]]


def _missing_files(spec: Mapping[str, Any], split: str, key: str) -> DataMissingError | None:
    """The error for the first file of a split that is not there (archive kinds, QuickDraw), else None."""
    kind = spec["kind"]
    root = _root(spec, key, kind)
    if kind == "mnist":
        for stem in _mnist_stems(root, split).values():
            if not (stem.exists() or stem.with_name(stem.name + ".gz").exists()):
                return _missing(key, kind, stem, _MNIST_WHAT)
    elif kind in _CIFAR_DIRS:
        for p in _cifar_paths(kind, root, split):
            if not p.exists():
                return _missing(
                    key, kind, p, f"the python version of the {kind.upper()} archive ({_CIFAR_DIRS[kind]}/)"
                )
    elif kind == "quickdraw":
        wanted = spec.get("classes") or []
        absent = [c for c in wanted if not (root / f"{c}.npy").exists()]
        if not root.is_dir() or not (absent or wanted or any(root.glob("*.npy"))):
            return _missing(key, kind, root, "one <class>.npy bitmap file per class (n x 784 uint8)")
        if absent:
            return _missing(key, kind, root / f"{absent[0]}.npy", f"the bitmap files of classes {absent}")
    return None


def check_split_files(spec: Mapping[str, Any], splits: Sequence[str], *, key: str = "datasets.<id>") -> list[str]:
    """Problems of a data set's ``splits`` that can be seen without reading the data (for the parse-time
    check): missing files of archive kinds and QuickDraw, missing split or class folders of folder kinds.
    Nothing is reported for ``download: true`` (the files are fetched when a job reads them)."""
    if spec["kind"] in ("imagefolder", "imagenet"):
        return check_folder_splits(spec, splits, key=key)
    if spec["kind"] in ("digits", "planted") or spec.get("download"):
        return []
    return [str(err) for split in dict.fromkeys(splits) if (err := _missing_files(spec, split, key)) is not None]


_MNIST_WHAT = "the MNIST IDX files (train-/t10k-images-idx3-ubyte, -labels-idx1-ubyte)"


def _read_mnist(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    root = _root(spec, key, "mnist")
    raw = root / "MNIST" / "raw"
    files = {}
    for part, stem in _mnist_stems(root, split).items():
        found = [p for p in (stem, stem.with_name(stem.name + ".gz")) if p.exists()]
        if not found and spec.get("download"):
            _download("mnist", root)
            found = [p for p in (stem, stem.with_name(stem.name + ".gz")) if p.exists()]
        if not found:
            raise _missing(key, "mnist", stem, _MNIST_WHAT)
        files[part] = found[0]
    images, labels = _read_idx(files["images-idx3"]), _read_idx(files["labels-idx1"])
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{raw}: {images.shape[0]} images but {labels.shape[0]} labels")
    return _array_set(name, split, images, labels, [str(d) for d in range(10)])


def _unpickle(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        obj = pickle.load(fh, encoding="bytes")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values: Sequence[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _read_cifar(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    kind = spec["kind"]
    root = _root(spec, key, kind)
    label_key = "labels" if kind == "cifar10" else "fine_labels"
    paths = _cifar_paths(kind, root, split)
    if not all(p.exists() for p in paths) and spec.get("download"):
        _download(kind, root)
    for p in paths:
        if not p.exists():
            raise _missing(key, kind, p, f"the python version of the {kind.upper()} archive ({_CIFAR_DIRS[kind]}/)")
    batches = [_unpickle(p) for p in paths[:-1]]
    meta = _unpickle(paths[-1])
    images = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)
    fine = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    if kind == "cifar10":
        return _array_set(name, split, images, fine, _names(meta["label_names"]))
    coarse = np.concatenate([np.asarray(b["coarse_labels"], dtype=np.int64) for b in batches])
    fine_names, coarse_names = _names(meta["fine_label_names"]), _names(meta["coarse_label_names"])
    if spec.get("label_kind", "fine") == "coarse":
        return _array_set(name, split, images, coarse, coarse_names)
    return _array_set(name, split, images, fine, fine_names, superclass_labels=coarse, superclass_names=coarse_names)


def _read_quickdraw(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    root = _root(spec, key, "quickdraw")
    if not root.is_dir():
        raise _missing(key, "quickdraw", root, "one <class>.npy bitmap file per class (n x 784 uint8)")
    classes = list(spec.get("classes") or sorted(p.stem for p in root.glob("*.npy")))
    if not classes:
        raise _missing(key, "quickdraw", root / "<class>.npy", "one <class>.npy bitmap file per class")
    n_train, n_test = int(spec.get("train_per_class", 1000)), int(spec.get("test_per_class", 200))
    start, stop = (0, n_train) if split == "train" else (n_train, n_train + n_test)
    arrays, labels, ids = [], [], []
    for c, cls in enumerate(classes):
        path = root / f"{cls}.npy"
        if not path.exists():
            raise _missing(key, "quickdraw", path, f"the bitmap file of class {cls!r}")
        rows = np.load(path, mmap_mode="r")
        if rows.ndim != 2 or rows.shape[1] != 784:
            raise ValueError(f"{path}: expected an (n, 784) bitmap array, got shape {rows.shape}")
        if rows.shape[0] < stop:
            raise ValueError(
                f"{path}: {rows.shape[0]} drawings, but {key}.train_per_class + test_per_class = {n_train + n_test}"
            )
        arrays.append(np.asarray(rows[start:stop], dtype=np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(stop - start, c, dtype=np.int64))
        ids.append(np.arange(start, stop) + c * 10**9)
    out = _array_set(name, split, np.concatenate(arrays), np.concatenate(labels), classes)
    return replace(out, sample_ids=np.concatenate(ids))


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _class_source(spec: Mapping[str, Any], root: Path) -> str:
    """The split whose class folders define the class list: train if its folder exists, else the first that does."""
    splits = split_names(spec)
    ordered = ["train", *[s for s in splits if s != "train"]] if "train" in splits else list(splits)
    return next((s for s in ordered if (root / s).is_dir()), ordered[0])


def folder_classes(spec: Mapping[str, Any], *, key: str = "datasets.<id>") -> list[str]:
    """The class list of an ``imagefolder`` / ``imagenet`` data set, the same for every split.

    ``classes`` from the config if set; else the class folders of the train
    split (the first split present if there is no train folder), sorted by name as
    torchvision's ``find_classes`` does (for ImageNet: sorted WordNet ids, the
    standard ILSVRC2012 indices), hidden entries (``.ipynb_checkpoints``)
    skipped. Class ``i`` is the ``i``-th name in every split.

    Raises
    ------
    DataMissingError
        If the folder of the split that defines the classes is missing or empty.
    """
    if spec.get("classes"):
        return list(spec["classes"])
    kind = spec["kind"]
    root = _root(spec, key, kind)
    folder = root / _class_source(spec, root)
    if not folder.is_dir():
        raise _missing(key, kind, folder, "one sub-folder per class (it defines the class list of every split)")
    names = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not _hidden(e.name))
    if not names:
        raise _missing(key, kind, folder / "<class>", "one sub-folder per class")
    return names


def _is_image(path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not any(_hidden(part) for part in p.parts[-2:])


def _class_folders(spec: Mapping[str, Any], split: str, key: str) -> tuple[Path, list[str], list[str]]:
    """The split folder, the class list, and the classes whose folder in the split is missing or has no image."""
    kind = spec["kind"]
    folder = _root(spec, key, kind) / split
    if not folder.is_dir():
        raise _missing(key, kind, folder, f"one sub-folder per class holding the {split} images")
    classes = folder_classes(spec, key=key)
    empty = [c for c in classes if not (folder / c).is_dir() or not _has_image(folder / c)]
    return folder, classes, empty


def _empty_message(
    spec: Mapping[str, Any], key: str, folder: Path, classes: Sequence[str], empty: Sequence[str]
) -> str:
    shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
    return (
        f"{key} ({spec['kind']}): class folder(s) {shown} missing or without images in {folder}. Every split "
        f"needs every class of the class list ({len(classes)} classes); add the images under {key}.root, or set "
        f"{key}.classes to the classes every split has"
    )


def _has_image(folder: Path) -> bool:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        if any(_is_image(os.path.join(dirpath, f)) for f in filenames):
            return True
    return False


def check_folder_splits(spec: Mapping[str, Any], splits: Sequence[str], *, key: str = "datasets.<id>") -> list[str]:
    """Problems of an ``imagefolder`` / ``imagenet`` data set's ``splits`` (missing folders, missing or
    empty class folders), one sentence each, without opening an image (for the parse-time config check)."""
    problems = []
    for split in splits:
        try:
            folder, classes, empty = _class_folders(spec, split, key)
        except DataMissingError as err:
            problems.append(str(err))
            continue
        if empty:
            problems.append(_empty_message(spec, key, folder, classes, empty))
    return problems


def _read_folder(spec: Mapping[str, Any], split: str, key: str, name: str) -> ImageSet:
    """Images of ``<root>/<split>/<class>/...`` listed by torchvision's ``make_dataset`` (recursive, sorted
    paths), hidden files and folders skipped, labelled by the data set's one class list (:func:`folder_classes`)."""
    from torchvision.datasets.folder import make_dataset

    folder, classes, empty = _class_folders(spec, split, key)
    if empty:
        raise DataMissingError(_empty_message(spec, key, folder, classes, empty))
    samples = [  # class by class in class-list order, each class's files in sorted path order
        sample for i, c in enumerate(classes) for sample in make_dataset(str(folder), {c: i}, is_valid_file=_is_image)
    ]
    paths = [Path(p) for p, _ in samples]
    labels = [c for _, c in samples]
    channels = int(spec.get("channels", 3))
    mode = "L" if channels == 1 else "RGB"

    def loader(pos: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
        from PIL import Image

        out = []
        for i in pos:
            with Image.open(paths[int(i)]) as im:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
            arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
            img = torch.from_numpy(arr.astype(np.float32) / 255.0)[None]
            out.append(img if size is None else fit_to_input(img, size, channels))
        if len({tuple(t.shape[-2:]) for t in out}) > 1:
            raise ValueError(f"{folder}: images differ in size; pass a size to fit them to")
        return torch.cat(out) if out else torch.empty(0, channels, *(size or (1, 1)))

    sample_set = ImageSet(
        name=name,
        split=split,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=classes,
        sample_ids=np.arange(len(paths), dtype=np.int64),
        channels=channels,
        loader=loader,
    )
    return sample_set


_READERS: dict[str, Callable[[Mapping[str, Any], str, str, str], ImageSet]] = {
    "digits": _read_digits,
    "planted": _read_planted,
    "mnist": _read_mnist,
    "cifar10": _read_cifar,
    "cifar100": _read_cifar,
    "imagenet": _read_folder,
    "quickdraw": _read_quickdraw,
    "imagefolder": _read_folder,
}
