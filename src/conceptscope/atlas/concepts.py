"""Concept image sets: every method's concepts, read from its result files, as sets of images.

The atlas compares the four papers' concepts on the images they contain. Each
reader turns one result file into :class:`Concept` objects, one per concept,
each holding the positions of its images in the split the method ran on, their
sample ids (so that methods run on different image lists can be compared) and
the universe: the sample ids of every image the method looked at. The readers
read files only (:mod:`conceptscope.naps.core` and :mod:`conceptscope.nas.core`
for their public HDF5 readers), never a method's internals.

Concept image sets, per method:

- **NAPs** (:func:`read_nap_concepts`, ``results/naps/{model}/{split}/{layer}/{method}.h5``):
  one concept per NAP, its member images (HDBSCAN cluster members; noise
  belongs to none). Universe: every image of the split. Sample ids from the
  file.
- **Coupled NMF** (:func:`read_nmf_concepts`, ``results/nmf/{model}/coupled.pt``,
  F of shape d x N): one concept per latent factor, its top ``ceil(N / d)``
  images by F (ties by lower position; images with F = 0 are never taken).
  The cut is the size each factor would have if the d factors shared the N
  images evenly; a rank cut is invariant to the scale of a factor (W F =
  (W D)(D^-1 F) for any positive diagonal D, so F's units mean nothing across
  factors) and every factor gets the same size, so no factor wins a best
  match by its size alone. The coupled factor is shared by all factored
  layers: layer ``"coupled"``. A single-layer fit (``single/{layer}.pt``) is
  read the same way, with its layer. Universe: every image of the split. F's
  columns are the split's positions (the fit factors the cached split in
  order); the file has no sample ids, so the caller passes the split's.
- **NAS** (:func:`read_nas_concepts`, ``results/nas/{model}/{layer}/summary.h5``):
  one concept per unit, the images of its top: by default the taxonomy's top
  set H (whole ranges taken from the highest down while they hold at most
  ``top_fraction`` of the sampled images, and at least the highest non-empty
  range; ``top_fraction`` as recorded in the summary, 0.1 by default), or with
  ``top="range"`` the highest non-empty range alone (often one to three
  images: a unit's maximum is an outlier). Constant units (one range) give no
  concept. Universe: the per-class sample of the summary (``positions``).
- **NeurFlow** (:func:`read_neurflow_concepts`,
  ``results/neurflow/{model}/class{c}/circuit.json`` and ``levels.pt``): one
  concept per neuron group of every traced layer, the images its concept
  patches (the union of its members' top-k patches) were cut from. Patches
  are image-major with the same count per image (n_patches / n_images), so
  patch p comes from class image ``p // (n_patches / n_images)``, and class
  image i is split position ``positions[i]`` of the circuit (the first
  ``max_images`` images predicted as the class). The reader checks this
  mapping against the image and sample id that circuit.json stores for every
  displayed patch. Universe: the class's images. A circuit with a status (no
  image predicted as the class) gives no concept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checks import check_choice, check_int, check_number
from ..runtime import write_json

__all__ = [
    "METHODS",
    "NAS_TOPS",
    "READERS",
    "Concept",
    "nmf_cut",
    "read_concepts",
    "read_nap_concepts",
    "read_nas_concepts",
    "read_neurflow_concepts",
    "read_nmf_concepts",
    "read_sample_ids",
    "load_concepts",
    "save_concepts",
]

METHODS = ("naps", "nmf", "nas", "neurflow")
NAS_TOPS = ("set", "range")


def _id_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Concept:
    """One concept of one method, as the set of images it contains.

    Attributes
    ----------
    method : str
        One of :data:`METHODS` (other names are allowed for hand-made concepts).
    model, layer : str
        Model id and probed layer (``"coupled"`` for the coupled NMF's shared factors).
    name : str
        The concept within its method, model and layer (``nap0``, ``factor3``,
        ``unit12``, ``class2/g0``).
    positions : ndarray of int64, shape (n_members,)
        Positions of its images in ``split`` (ascending, distinct).
    sample_ids : ndarray of int64, shape (n_members,), optional
        Sample ids of the same images (``sample_ids[i]`` is the image at
        ``positions[i]``). None: the positions are the ids (all concepts
        compared must then index the same image list).
    universe : ndarray of int64, optional
        Ids (sample ids, or positions when ``sample_ids`` is None) of every
        image the method looked at; the concept's images are among them.
        None: every image.
    split : str, optional
        Split whose positions ``positions`` are.
    variant : str
        What else tells a method's runs apart on one model and layer (the NAP
        disentanglement, ``coupled`` / ``single`` NMF, the NAS top rule).
    meta : dict
        Reader's notes (e.g. the NMF cut, the NeurFlow patch count).
    """

    method: str
    model: str
    layer: str
    name: str
    positions: np.ndarray
    sample_ids: np.ndarray | None = None
    universe: np.ndarray | None = None
    split: str | None = None
    variant: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = _id_array("positions", self.positions)
        if pos.size and (pos.min() < 0 or np.any(np.diff(pos) <= 0)):
            raise ValueError(f"concept {self.name}: positions must be distinct, ascending and >= 0, got {pos}")
        object.__setattr__(self, "positions", pos)
        if self.sample_ids is not None:
            ids = _id_array("sample_ids", self.sample_ids)
            if ids.shape != pos.shape:
                raise ValueError(
                    f"concept {self.name}: {ids.size} sample ids for {pos.size} positions; give one per position"
                )
            object.__setattr__(self, "sample_ids", ids)
        if self.universe is not None:
            uni = _id_array("universe", self.universe)
            missing = np.setdiff1d(self.ids, uni)
            if missing.size:
                raise ValueError(f"concept {self.name}: ids {missing[:10].tolist()} are not in its universe")
            object.__setattr__(self, "universe", uni)

    @property
    def ids(self) -> np.ndarray:
        """The ids its images are matched by: ``sample_ids``, else ``positions``."""
        return self.positions if self.sample_ids is None else self.sample_ids

    @property
    def size(self) -> int:
        return int(self.positions.size)

    def __repr__(self) -> str:
        where = "/".join(p for p in (self.method, self.variant, self.model, self.layer) if p)
        return f"Concept({where}: {self.name}, {self.size} images)"


def read_sample_ids(manifest: str | Path) -> np.ndarray:
    """The sample id of every position of a split, from its manifest CSV (``position``, ``sample_id``)."""
    table = pd.read_csv(manifest, usecols=["position", "sample_id"])
    if not np.array_equal(table["position"].to_numpy(), np.arange(len(table))):
        raise ValueError(f"{manifest}: positions are not 0..{len(table) - 1} in order")
    return table["sample_id"].to_numpy(dtype=np.int64)


def _checked_ids(sample_ids: Any, n: int, what: str) -> np.ndarray:
    ids = _id_array("sample_ids", sample_ids)
    if ids.size != n:
        raise ValueError(
            f"{what} indexes {n} images, but {ids.size} sample ids were given: "
            "pass the sample ids of the split it ran on"
        )
    if np.unique(ids).size != ids.size:
        raise ValueError("sample_ids must be distinct")
    return ids


def _check_split(path: str | Path, recorded: str | None, given: str | None) -> str | None:
    if recorded is not None and given is not None and recorded != given:
        raise ValueError(f"{path} was computed on split {recorded!r}, not {given!r}")
    return recorded if recorded is not None else given


def read_nap_concepts(path: str | Path, *, sample_ids: Any = None) -> list[Concept]:
    """One concept per NAP of a NAP result file: its member images (rank order: most persistent first).

    Parameters
    ----------
    path : path
        A file written by :func:`conceptscope.naps.core.save_result`.
    sample_ids : array of int, optional
        The split's sample ids by position; when given they must equal the
        file's (a check that the file is of this data).
    """
    from ..naps.core import load_result

    r = load_result(path)
    ids = _id_array("sample_ids", r.sample_ids)
    if sample_ids is not None and not np.array_equal(_id_array("sample_ids", sample_ids), ids):
        raise ValueError(f"{path}: its sample ids differ from the ones given (another split or data)")
    meta = r.meta
    out = []
    for rank in range(r.n_naps):
        pos = np.sort(r.members(rank))
        out.append(
            Concept(
                "naps",
                str(meta.get("model", "")),
                str(meta.get("layer", "")),
                f"nap{rank}",
                pos,
                ids[pos],
                ids,
                meta.get("split"),
                str(meta.get("method", "")),
                {"persistence": float(r.persistence[rank])},
            )
        )
    return out


def nmf_cut(n_images: int, n_components: int) -> int:
    """Images per NMF concept: ``ceil(n_images / n_components)`` (the factors' even share of the images)."""
    return math.ceil(check_int("n_images", n_images, minimum=1) / check_int("n_components", n_components, minimum=1))


def read_nmf_concepts(
    path: str | Path, *, model: str, sample_ids: Any, top: int | None = None, split: str | None = None
) -> list[Concept]:
    """One concept per NMF latent factor: its ``top`` images by F (default :func:`nmf_cut`).

    Parameters
    ----------
    path : path
        A coupled fit (``coupled.pt``: P, O, F, layers, meta) or a single-layer fit (``single/{layer}.pt``).
    model : str
        Model id (the file does not record it).
    sample_ids : array of int, shape (N,)
        Sample ids of the split the fit ran on, by position (F's column j is position j).
    top : int, optional
        Images per factor; default ``ceil(N / d)``. Fewer when a factor has fewer images with F > 0.
    split : str, optional
        The split's name; checked against the one a coupled fit records.
    """
    res = torch.load(path, map_location="cpu", weights_only=False)
    F = np.asarray(res["F"].numpy() if isinstance(res["F"], torch.Tensor) else res["F"], dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"{path}: F must be d x N, got shape {F.shape}")
    d, n = F.shape
    ids = _checked_ids(sample_ids, n, f"{path} (F is {d} x {n})")
    cut = nmf_cut(n, d) if top is None else check_int("top", top, minimum=1)
    coupled = "P" in res
    layer = "coupled" if coupled else str(res["layers"][0])
    split = _check_split(path, res.get("meta", {}).get("split"), split)
    order = np.arange(n)
    out = []
    for i in range(d):
        ranked = np.lexsort((order, -F[i]))[:cut]  # descending F, ties by lower position
        pos = np.sort(ranked[F[i, ranked] > 0])
        out.append(
            Concept(
                "nmf",
                model,
                layer,
                f"factor{i}",
                pos,
                ids[pos],
                ids,
                split,
                "coupled" if coupled else "single",
                {"cut": cut, "n_components": d, "layers": [str(x) for x in res["layers"]]},
            )
        )
    return out


def _range_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Range of each value: ``[e_i, e_{i+1})``, the last range closed (the NAS summary's rule)."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)


def _top_ranges(counts: np.ndarray, top: str, fraction: float) -> np.ndarray:
    """Indices of the ranges of a unit's top: from the highest down (see the module docstring)."""
    nonempty = np.flatnonzero(counts > 0)
    first = int(nonempty[-1])
    if top == "range":
        return np.array([first])
    limit = fraction * counts.sum()
    taken, total = [], 0
    for i in range(first, -1, -1):
        if taken and total + counts[i] > limit:
            break
        taken.append(i)
        total += int(counts[i])
    return np.asarray(taken)


def read_nas_concepts(
    path: str | Path, *, sample_ids: Any, top: str = "set", top_fraction: float | None = None
) -> list[Concept]:
    """One concept per (non-constant) unit of a NAS layer summary: the images of its top ranges.

    Parameters
    ----------
    path : path
        A summary written by :func:`conceptscope.nas.core.save_summary`.
    sample_ids : array of int
        Sample ids of the split the summary sampled, by position.
    top : ``"set"`` or ``"range"``
        The taxonomy's top set H (default) or the highest non-empty range alone.
    top_fraction : float in (0, 1], optional
        Share of the sampled images H may hold; default the summary's
        ``taxonomy.top_fraction``.
    """
    from ..nas.core import load_summary

    check_choice("top", top, NAS_TOPS)
    s = load_summary(path)
    if top_fraction is None:
        top_fraction = s.meta.get("taxonomy", {}).get("top_fraction")
        if top_fraction is None:
            raise ValueError(f"{path} records no taxonomy.top_fraction; pass top_fraction")
    fraction = check_number("top_fraction", top_fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    positions = _id_array("positions", s.positions)
    all_ids = _id_array("sample_ids", sample_ids)
    if positions.size and positions.max() >= all_ids.size:
        raise ValueError(f"{path} samples position {positions.max()}, but {all_ids.size} sample ids were given")
    universe = all_ids[positions]
    meta = s.meta
    out = []
    for u in range(s.n_units):
        if s.n_ranges[u] < 2:  # constant unit: its one range separates nothing
            continue
        idx = _range_index(s.values[:, u], s.unit_edges(u))
        counts = np.bincount(idx, minlength=int(s.n_ranges[u]))
        if not np.array_equal(counts, s.unit_counts(u).sum(1)):
            raise ValueError(f"{path}: unit {u}'s values do not fall in its stored ranges as counted")
        chosen = _top_ranges(counts, top, fraction)
        rows = np.flatnonzero(np.isin(idx, chosen))
        order = np.argsort(positions[rows], kind="stable")
        pos = positions[rows][order]
        out.append(
            Concept(
                "nas",
                str(meta.get("model", "")),
                str(meta.get("layer", "")),
                f"unit{u}",
                pos,
                all_ids[pos],
                universe,
                meta.get("split"),
                f"top {top}",
                {"ranges": sorted(int(i) for i in chosen), "top_fraction": fraction},
            )
        )
    return out


def read_neurflow_concepts(circuit: str | Path, arrays: str | Path | None = None, *, sample_ids: Any) -> list[Concept]:
    """One concept per neuron group of a NeurFlow circuit: the images of the group's concept patches.

    Parameters
    ----------
    circuit : path
        ``circuit.json`` of one class.
    arrays : path, optional
        Its ``levels.pt`` (default: beside ``circuit``).
    sample_ids : array of int
        Sample ids of the split the circuit was built on (its ``split``), by position.
    """
    circuit = Path(circuit)
    c = json.loads(circuit.read_text())
    if str(c.get("status", "ok")) != "ok":
        return []
    lv = torch.load(circuit.with_name("levels.pt") if arrays is None else arrays, weights_only=False)
    positions = _id_array("positions", c["positions"])
    if not np.array_equal(positions, _id_array("positions", np.asarray(lv["positions"]))):
        raise ValueError(f"{circuit} and its arrays list different class images")
    all_ids = _id_array("sample_ids", sample_ids)
    if positions.size and positions.max() >= all_ids.size:
        raise ValueError(f"{circuit} uses position {positions.max()}, but {all_ids.size} sample ids were given")
    n_images, n_patches = int(c["n_images"]), int(c["n_patches"])
    if n_images != positions.size or n_patches % n_images:
        raise ValueError(f"{circuit}: {n_patches} patches of {n_images} images ({positions.size} positions)")
    per_image = n_patches // n_images
    for key, v in c["patches"].items():  # the stored mapping of every displayed patch
        i = int(key) // per_image
        if int(v["image"]) != i or int(v["sample_id"]) != all_ids[positions[i]]:
            raise ValueError(
                f"{circuit}: patch {key} is of image {v['image']} (sample {v['sample_id']}), not of image {i} "
                f"(sample {all_ids[positions[i]]}): wrong sample ids, or the patch layout changed"
            )
    universe = all_ids[positions]
    cls = int(c["class_index"])
    out = []
    for layer in c["layers"]:
        for g in lv["groups"][layer]:
            patches = np.asarray(g["patches"], dtype=np.int64)
            pos = np.unique(positions[patches // per_image])
            out.append(
                Concept(
                    "neurflow",
                    str(c["model"]),
                    str(layer),
                    f"class{cls}/g{int(g['index'])}",
                    pos,
                    all_ids[pos],
                    universe,
                    c.get("split"),
                    "",
                    {"class_index": cls, "n_patches": int(patches.size), "neurons": [int(n) for n in g["neurons"]]},
                )
            )
    return out


READERS: dict[str, Callable[..., list[Concept]]] = {
    "naps": read_nap_concepts,
    "nmf": read_nmf_concepts,
    "nas": read_nas_concepts,
    "neurflow": read_neurflow_concepts,
}


def read_concepts(method: str, paths: Sequence[str | Path], **kwargs: Any) -> list[Concept]:
    """The concepts of several result files of one method (:data:`METHODS`), in file order.

    ``kwargs`` go to that method's reader (e.g. ``sample_ids``, ``model``, ``top``).
    """
    reader = READERS[check_choice("method", method, METHODS)]
    return [concept for path in paths for concept in reader(path, **kwargs)]


CATALOG_VERSION = 1


def _ids_or_none(value: np.ndarray | None) -> list[int] | None:
    return None if value is None else value.tolist()


def save_concepts(concepts: Sequence[Concept], path: str | Path, **meta: Any) -> Path:
    """Write concepts to a JSON catalog (atomically): every field, each distinct universe stored once.

    The file holds ``format_version``, ``meta`` (the keyword arguments, JSON
    values), ``universes`` (a list of id lists) and ``concepts`` (one object per
    concept with its fields; ``universe`` is an index into ``universes`` or
    null). :func:`load_concepts` reads it back.
    """
    universes: list[list[int]] = []
    index: dict[bytes, int] = {}
    rows = []
    for c in concepts:
        u = None
        if c.universe is not None:
            key = c.universe.tobytes()
            if key not in index:
                index[key] = len(universes)
                universes.append(c.universe.tolist())
            u = index[key]
        rows.append(
            {
                "method": c.method,
                "variant": c.variant,
                "model": c.model,
                "layer": c.layer,
                "name": c.name,
                "split": c.split,
                "positions": c.positions.tolist(),
                "sample_ids": _ids_or_none(c.sample_ids),
                "universe": u,
                "meta": dict(c.meta),
            }
        )
    doc = {"format_version": CATALOG_VERSION, "meta": meta, "universes": universes, "concepts": rows}
    return write_json(path, doc, indent=None)


def load_concepts(path: str | Path) -> tuple[list[Concept], dict[str, Any]]:
    """The concepts and ``meta`` of a catalog written by :func:`save_concepts`.

    Raises
    ------
    ValueError
        If the file is not a concept catalog of this format (the message names the file and the fix).
    """
    fix = f"delete {path} and rerun snakemake to rebuild it"
    try:
        doc = json.loads(Path(path).read_text())
        if doc.get("format_version") != CATALOG_VERSION:
            raise ValueError(f"format {doc.get('format_version')}, expected {CATALOG_VERSION}")
        universes = [np.asarray(u, dtype=np.int64) for u in doc["universes"]]
        concepts = [
            Concept(
                r["method"],
                r["model"],
                r["layer"],
                r["name"],
                np.asarray(r["positions"], dtype=np.int64),
                None if r["sample_ids"] is None else np.asarray(r["sample_ids"], dtype=np.int64),
                None if r["universe"] is None else universes[r["universe"]],
                r["split"],
                r["variant"],
                r["meta"],
            )
            for r in doc["concepts"]
        ]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise ValueError(f"{path} is not a readable concept catalog ({err}); {fix}") from err
    return concepts, dict(doc["meta"])
