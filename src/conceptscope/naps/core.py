"""Neural Activation Patterns (NAPs): HDBSCAN on disentangled, unit-normalized activations.

Reproduces Bäuerle, Jönsson and Ropinski, "Neural Activation Patterns (NAPs):
Visual Explainability of Learned Concepts". For one layer's activations over a
set of inputs X:

1. **Location disentanglement** of conv layers (per unit, over H x W):
   ``none`` (the flattened map), ``max``, ``min_max`` (2C features),
   ``mean``, ``mean_std`` (2C; std with ddof = 0). Dense layers are never
   aggregated: every method gives their raw vector.
2. **Unit equalization** (paper Eq. 2): every feature is divided by its
   maximum absolute value over X, a' = a / max_{x in X} |a(x)|. For ``none``
   the divisor is per unit (channel), over X and all positions; for the
   aggregated methods each aggregated feature (e.g. the mean of unit c, the std
   of unit c) has its own divisor. A feature that is 0 on all of X stays 0.
   ``normalization="authors"`` reproduces the authors' code instead, which
   differs in two places: the std half of ``mean_std`` is divided by
   sqrt(max |mean|) of the same unit, and a dense layer is divided by one
   layer-wide max |a|.
3. **Clustering**: HDBSCAN (the ``hdbscan`` package), euclidean,
   ``min_cluster_size=5``, ``min_samples=5``, ``cluster_selection_method="leaf"``,
   epsilon 0, no dimensionality reduction (:func:`~conceptscope.naps.clustering.cluster`:
   rows in a canonical order, tied merges simultaneous as in HDBSCAN*, the
   infinite lambdas of duplicate rows capped; exact precomputed distances up to
   ``max_precomputed`` inputs). Each cluster is a NAP; label -1 is noise. NAPs
   are ranked by cluster persistence (rank 0 = most persistent; equal
   persistence by hdbscan label), members by membership probability.

Per NAP, unit statistics of the normalized features: min, q1, mean, q3, max,
lower / upper whisker (q1 - 1.5 IQR and q3 + 1.5 IQR clipped to [min, max]).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..checks import check_choice
from ..runtime import atomic_path
from .clustering import HDBSCAN_PARAMS, cluster
from .settings import DISENTANGLEMENTS, NORMALIZATIONS, NapSettings

__all__ = [
    "DISENTANGLEMENTS",
    "FORMAT_VERSION",
    "NORMALIZATIONS",
    "STATISTIC_NAMES",
    "NapResult",
    "disentangle",
    "extract_naps",
    "feature_units",
    "load_result",
    "normalize",
    "save_result",
    "unit_statistics",
]

STATISTIC_NAMES = ("min", "q1", "mean", "q3", "max", "lower_whisker", "upper_whisker")
FORMAT_VERSION = 1

_log = logging.getLogger("conceptscope")


def _check_method(method: str) -> None:
    check_choice("disentanglement", method, DISENTANGLEMENTS)


def disentangle(arrays: Mapping[str, np.ndarray], kind: str, method: str) -> np.ndarray:
    """Features of one layer for one disentanglement, shape (n_samples, n_features).

    Parameters
    ----------
    arrays : mapping
        Cache arrays of the layer (:func:`conceptscope.activations.read_cache`):
        ``mean``, ``max``, ``min``, ``std`` (n, C) and, for ``none``, ``full``
        (n, C*H*W) for conv layers; ``values`` (n, C) for dense layers.
    kind : ``"conv"``, ``"tokens"`` or ``"dense"``
    method : one of :data:`DISENTANGLEMENTS`
        Pairs are concatenated as [first half | second half]: min_max = [min, max],
        mean_std = [mean, std].
    """
    _check_method(method)
    if kind == "dense":
        return np.asarray(arrays["values"])
    if method == "none":
        if "full" not in arrays:
            raise KeyError("disentanglement 'none' needs the full maps: add the layer to the model's full_maps")
        return np.asarray(arrays["full"])
    if method == "min_max":
        return np.concatenate([arrays["min"], arrays["max"]], axis=1)
    if method == "mean_std":
        return np.concatenate([arrays["mean"], arrays["std"]], axis=1)
    return np.asarray(arrays[method])


def feature_units(kind: str, method: str, unit_shape: Sequence[int]) -> np.ndarray:
    """The unit (channel) index of every feature column of :func:`disentangle`."""
    _check_method(method)
    if kind == "dense":
        return np.arange(int(unit_shape[-1]))
    c = int(unit_shape[0] if kind == "conv" else unit_shape[-1])
    if method == "none":
        n_pos = int(np.prod(unit_shape)) // c
        # conv (C, H, W) flattens channel-major; tokens (T, C) flatten token-major (column t * C + c)
        return np.tile(np.arange(c), n_pos) if kind == "tokens" else np.repeat(np.arange(c), n_pos)
    if method in ("min_max", "mean_std"):
        return np.tile(np.arange(c), 2)
    return np.arange(c)


def _safe_divide(x: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    np.divide(x, divisor, out=out, where=divisor > 0)
    return out


def normalize(
    X: np.ndarray, *, kind: str, method: str, unit_shape: Sequence[int], mode: str = NapSettings.normalization
) -> np.ndarray:
    """Unit equalization (paper Eq. 2) of disentangled features; float64.

    ``mode="paper"``: divide each feature column by its max |a| over the rows
    of ``X`` (for ``none``: each unit's columns by the unit's max |a| over rows
    and positions). ``mode="authors"``: as the authors' code (see the module
    docstring). Columns whose divisor is 0 stay 0; signs are kept.
    """
    check_choice("normalization", mode, NORMALIZATIONS)
    _check_method(method)
    X = np.asarray(X, dtype=np.float64)
    absmax = np.abs(X).max(axis=0) if len(X) else np.zeros(X.shape[1])
    if kind == "dense":
        if mode == "authors":
            return _safe_divide(X, np.full_like(absmax, absmax.max(initial=0.0)))
        return _safe_divide(X, absmax)
    if method == "none":
        units = feature_units(kind, method, unit_shape)
        per_unit = np.zeros(units.max(initial=-1) + 1)
        np.maximum.at(per_unit, units, absmax)
        return _safe_divide(X, per_unit[units])
    if method == "mean_std" and mode == "authors":
        c = X.shape[1] // 2
        divisor = np.concatenate([absmax[:c], np.sqrt(absmax[:c])])
        return _safe_divide(X, divisor)
    return _safe_divide(X, absmax)


def unit_statistics(Xn: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Statistics of each feature over the rows ``members``; shape (7, n_features).

    Order :data:`STATISTIC_NAMES`: min, q1, mean, q3, max, lower whisker
    (q1 - 1.5 IQR, at least min), upper whisker (q3 + 1.5 IQR, at most max).
    Quartiles by numpy's default (linear) interpolation.
    """
    rows = Xn[members]
    lo, q1, q3, hi = (np.quantile(rows, q, axis=0) for q in (0.0, 0.25, 0.75, 1.0))
    iqr = q3 - q1
    return np.stack([lo, q1, rows.mean(0), q3, hi, np.maximum(q1 - 1.5 * iqr, lo), np.minimum(q3 + 1.5 * iqr, hi)])


@dataclass
class NapResult:
    """NAPs of one layer x disentanglement x input set.

    Attributes
    ----------
    nap : ndarray (n_samples,)
        NAP rank per input (0 = most persistent NAP), -1 for noise.
    probability, outlier_score : ndarray (n_samples,)
        HDBSCAN membership probability and GLOSH outlier score.
    hdbscan_label : ndarray (n_samples,)
        HDBSCAN's own cluster label.
    persistence, size : ndarray (n_naps,)
        Per NAP, in rank order.
    stats : ndarray (n_naps, 7, n_features)
        :func:`unit_statistics` of each NAP's members.
    labels, predictions, sample_ids : ndarray (n_samples,)
        Of the inputs, from the activation cache.
    meta : dict
        Model, layer, split, method, normalization, parameters, timing, and
        the clustering's diagnostics (duplicate rows, tied MST weights,
        simultaneous merges, capped lambdas, hdbscan's own binary-tree count:
        :attr:`~conceptscope.naps.clustering.ClusterResult.diagnostics`).
    """

    nap: np.ndarray
    probability: np.ndarray
    outlier_score: np.ndarray
    hdbscan_label: np.ndarray
    persistence: np.ndarray
    size: np.ndarray
    stats: np.ndarray
    feature_unit: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    sample_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_naps(self) -> int:
        return int(self.persistence.shape[0])

    def members(self, rank: int) -> np.ndarray:
        """Positions of NAP ``rank``'s members, most probable first (ties by position)."""
        pos = np.flatnonzero(self.nap == rank)
        return pos[np.lexsort((pos, -self.probability[pos]))]

    def mix_table(self, of: str = "labels") -> np.ndarray:
        """Counts of each class among each NAP's members, shape (n_naps, n_classes)."""
        values = getattr(self, of)
        n_classes = int(max(self.labels.max(initial=-1), self.predictions.max(initial=-1))) + 1
        out = np.zeros((self.n_naps, n_classes), dtype=np.int64)
        member = self.nap >= 0
        np.add.at(out, (self.nap[member], values[member]), 1)
        return out

    def mix(self, rank: int, of: str = "labels") -> dict[int, int]:
        """Count of each label (or prediction) among NAP ``rank``'s members."""
        values, counts = np.unique(getattr(self, of)[self.nap == rank], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def extract_naps(
    X: np.ndarray,
    *,
    kind: str,
    method: str,
    unit_shape: Sequence[int],
    labels: np.ndarray,
    predictions: np.ndarray,
    sample_ids: np.ndarray,
    normalization: str = NapSettings.normalization,
    max_precomputed: int = NapSettings.max_precomputed,
    device: str | torch.device | None = None,
    meta: Mapping[str, Any] | None = None,
) -> NapResult:
    """Normalize, cluster and rank: the NAPs of disentangled features ``X`` (n_samples, n_features).

    ``meta`` of the result adds, to the given ``meta``, the method, kind,
    normalization, HDBSCAN parameters, clustering path and seconds, and the
    clustering's :attr:`~conceptscope.naps.clustering.ClusterResult.diagnostics`
    (duplicate rows, tied MST weights, simultaneous merges, capped lambdas,
    hdbscan's own binary-tree count).
    """
    Xn = normalize(X, kind=kind, method=method, unit_shape=unit_shape, mode=normalization)
    res = cluster(Xn, max_precomputed=max_precomputed, device=device)
    order = np.argsort(-res.persistence, kind="stable")  # hdbscan labels by persistence, descending
    rank_of = np.full(len(order) + 1, -1, dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    nap = np.where(res.labels >= 0, rank_of[res.labels], -1)
    sizes = np.bincount(nap[nap >= 0], minlength=len(order))
    stats = (
        np.stack([unit_statistics(Xn, np.flatnonzero(nap == k)) for k in range(len(order))])
        if len(order)
        else (np.zeros((0, len(STATISTIC_NAMES), Xn.shape[1])))
    )
    info = {
        **dict(meta or {}),
        "method": method,
        "kind": kind,
        "normalization": normalization,
        "hdbscan": HDBSCAN_PARAMS,
        "clustering_path": res.path,
        "clustering_seconds": res.seconds,
        "clustering_resources": res.resources,
        "n_samples": int(len(X)),
        "n_features": int(Xn.shape[1]),
        **res.diagnostics,
    }
    return NapResult(
        nap=nap,
        probability=res.probabilities,
        outlier_score=res.outlier_scores,
        hdbscan_label=res.labels,
        persistence=res.persistence[order],
        size=sizes,
        stats=stats.astype(np.float32),
        feature_unit=feature_units(kind, method, unit_shape),
        labels=np.asarray(labels),
        predictions=np.asarray(predictions),
        sample_ids=np.asarray(sample_ids),
        meta=info,
    )


_ARRAYS = (
    "nap",
    "probability",
    "outlier_score",
    "hdbscan_label",
    "persistence",
    "size",
    "stats",
    "feature_unit",
    "labels",
    "predictions",
    "sample_ids",
)


def save_result(result: NapResult, path: str | Path) -> None:
    """Write a :class:`NapResult` to HDF5 (atomically: temporary file, then rename)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name in _ARRAYS:
            f.create_dataset(name, data=getattr(result, name))
        f.create_dataset("label_mix", data=result.mix_table("labels"))  # derived, for readers without this library
        f.create_dataset("prediction_mix", data=result.mix_table("predictions"))
        f.attrs["meta"] = json.dumps({**result.meta, "format_version": FORMAT_VERSION}, sort_keys=True, default=str)


def load_result(path: str | Path) -> NapResult:
    """Read a file written by :func:`save_result`."""
    with h5py.File(path, "r") as f:
        arrays = {name: f[name][()] for name in _ARRAYS}
        meta = json.loads(f.attrs["meta"])
    return NapResult(**arrays, meta=meta)
