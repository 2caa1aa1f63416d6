"""NeurFlow semantic groups, neuron groups, group edges and the debugging metric.

Implements the grouping and edge-weighting steps of NeurFlow (Cao et al.,
"NeurFlow: Interpreting Neural Networks through Neuron Groups and Functional
Interactions", ICLR 2025, Sect. 4) on precomputed arrays; nothing here touches
a model. Notation follows the paper:

- ``a`` is a target neuron of probed block ``l``, ``V_a`` its concept (the
  top-k patches that activate it most) and ``s`` a channel of block ``l-1``.
- ``T(a, s, V)`` is the integrated-gradients importance of ``s`` for ``a``,
  summed over the patches of ``V``. The caller passes per-patch attributions as
  a ``(k, C_prev)`` matrix ``A_a``, so ``T(a, s, V) = A_a[V].sum(0)[s]``.
- ``S_a`` (the core concept neurons of ``a``) are the top-tau channels by
  ``|T(a, ., V_a)|``; the caller selects them and passes them as ``core``.

Steps implemented (all deterministic):

1. :func:`semantic_groups` splits ``V_a`` into semantic groups ``V_a,j`` by
   ward clustering of the patches' spatially averaged activations at ``l-1``
   (count chosen by silhouette, :func:`best_ward_clusters`), and gives each
   group its edge weights ``w(a, s, V_a,j)`` (:func:`edge_weights`).
2. :func:`neuron_groups` clusters all semantic-group centroids of a layer into
   neuron groups; a group's concept is the union of its members' patches.
3. :func:`group_edges` sums the edge weights into the group-level matrix
   ``W(G_i, G_j)`` between two consecutive layers.
4. :func:`debugging_metric` scores images against a group's neurons (the
   image-debugging application of the paper), and :func:`rank_patches` picks
   a group's top patches for display.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import silhouette_score

from ..checks import check_int, check_number, check_range_pair
from .settings import NeurFlowSettings

__all__ = [
    "NeuronGroup",
    "SemanticGroup",
    "best_ward_clusters",
    "debugging_metric",
    "edge_weights",
    "group_edges",
    "neuron_groups",
    "rank_patches",
    "semantic_groups",
]

_log = logging.getLogger("conceptscope")

_SEMANTIC_K = tuple(NeurFlowSettings().semantic_k)  # default cluster-count ranges
_GROUP_K = tuple(NeurFlowSettings().group_k)


# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------


def _float_matrix(name: str, value: Any, *, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite, got {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return arr


def _index_list(name: str, values: Any, size: int, *, allow_empty: bool = False) -> list[int]:
    """Distinct integer indices in ``[0, size)``, in the given order."""
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}")
    try:
        items = list(np.asarray(values).reshape(-1)) if isinstance(values, np.ndarray) else list(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}") from None
    out = [check_int(f"{name} entry", v) for v in items]
    if not out and not allow_empty:
        raise ValueError(f"{name} must not be empty, got {values!r}")
    bad = [v for v in out if not 0 <= v < size]
    if bad:
        raise ValueError(f"{name} entries must lie in [0, {size}), got {bad}")
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"{name} must not repeat entries, got duplicates {dup}")
    return out


def _relabel_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Rename cluster ids 0, 1, ... in order of their first occurrence."""
    mapping: dict[int, int] = {}
    for lab in labels.tolist():
        if lab not in mapping:
            mapping[lab] = len(mapping)
    return np.array([mapping[lab] for lab in labels.tolist()], dtype=np.int64)


def _ward_labels(X: np.ndarray, n_clusters: int) -> np.ndarray:
    if n_clusters == 1:
        return np.zeros(len(X), dtype=np.int64)
    model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward", metric="euclidean")
    return _relabel_first_appearance(model.fit_predict(X))


# ----------------------------------------------------------------------------
# clustering
# ----------------------------------------------------------------------------


def best_ward_clusters(
    X: np.ndarray, *, k_range: tuple[int, int] = _GROUP_K, n_clusters: int | None = None
) -> tuple[np.ndarray, int, dict[int, float]]:
    """Ward clustering of the rows of ``X``, count chosen by the silhouette score.

    NeurFlow (Sect. 4) groups both a neuron's concept patches (semantic groups)
    and a layer's semantic groups (neuron groups) by agglomerative clustering
    with ward linkage, choosing the number of clusters with the best silhouette
    score. This is that shared step.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` finite feature vectors, one per row.
    k_range : tuple of int, default ``NeurFlowSettings.group_k``, (2, 5)
        Inclusive range ``(min, max)`` of cluster counts to try, ``2 <= min <=
        max``. Counts above ``n - 1`` (where the silhouette is undefined) are
        skipped. Ignored when ``n_clusters`` is given.
    n_clusters : int, optional
        Fixed cluster count (``>= 1``) instead of the silhouette search. It is
        capped at the number of distinct rows of ``X`` (a warning is logged
        when the cap applies), because ward cannot meaningfully separate
        identical points.

    Returns
    -------
    labels : np.ndarray
        ``(n,)`` int64 cluster labels, renumbered ``0, 1, ...`` in order of first
        appearance along the rows, so equal partitions give equal labels.
    count : int
        Number of clusters used.
    scores : dict of int to float
        Euclidean silhouette score per tried count (ascending). In the fixed
        mode it holds the score of the fixed count when that is defined
        (``2 <= count <= n - 1``), otherwise it is empty.

    Notes
    -----
    Ties in the silhouette score are broken towards the smaller count. One
    cluster (all labels 0, empty ``scores``) is returned when ``n <= 2``, when
    all rows are identical, or when every count of ``k_range`` exceeds ``n - 1``.
    Clustering uses :class:`sklearn.cluster.AgglomerativeClustering` with
    ``linkage="ward"`` and is deterministic.

    Raises
    ------
    ValueError
        If ``X`` is not a finite 2-D numeric array with at least one row, or
        ``k_range`` / ``n_clusters`` are invalid.
    """
    X = _float_matrix("X", X, ndim=2)
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"X must have at least one row, got shape {X.shape}")
    lo, hi = check_range_pair("k_range", k_range)
    if n_clusters is not None:
        n_clusters = check_int("n_clusters", n_clusters)
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")

    one = (np.zeros(n, dtype=np.int64), 1, {})
    n_distinct = len(np.unique(X, axis=0))

    if n_clusters is not None:
        count = min(n_clusters, n_distinct)
        if count < n_clusters:
            _log.warning(
                "best_ward_clusters: n_clusters=%d exceeds the %d distinct rows; using %d",
                n_clusters,
                n_distinct,
                count,
            )
        if count == 1:
            return one
        labels = _ward_labels(X, count)
        scores = {count: float(silhouette_score(X, labels, metric="euclidean"))} if count <= n - 1 else {}
        return labels, count, scores

    if n <= 2 or n_distinct == 1:
        return one
    best: tuple[np.ndarray, int] | None = None
    best_score = -np.inf
    scores: dict[int, float] = {}
    for count in range(lo, min(hi, n - 1) + 1):
        labels = _ward_labels(X, count)
        score = float(silhouette_score(X, labels, metric="euclidean"))
        scores[count] = score
        if score > best_score:  # strict: ties keep the smaller count
            best, best_score = (labels, count), score
    if best is None:
        return one
    return best[0], best[1], scores


# ----------------------------------------------------------------------------
# semantic groups and edge weights
# ----------------------------------------------------------------------------


@dataclass
class SemanticGroup:
    """One semantic group ``V_a,j`` of neuron ``a`` (NeurFlow, Sect. 4).

    Attributes
    ----------
    layer : str
        Block ``l`` of the neuron ``a``.
    neuron : int
        Channel index of ``a`` in block ``l``.
    index : int
        Group index ``j`` within the neuron (0-based, order of first appearance
        along the neuron's patches).
    patches : np.ndarray
        Patch ids of the group, in the order they were given.
    vector : np.ndarray
        ``(C_prev,)`` centroid: mean of the patches' spatially averaged
        activations at block ``l-1``.
    weights : dict of int to float
        ``s -> w(a, s, V_a,j)`` for every core neuron ``s`` in ``S_a`` (in the
        order of ``core``); see :func:`edge_weights`.
    """

    layer: str
    neuron: int
    index: int
    patches: np.ndarray
    vector: np.ndarray
    weights: dict[int, float] = field(default_factory=dict)


def _row_selector(rows: Any, k: int) -> np.ndarray:
    """Boolean mask of length ``k`` from a mask or from integer row indices."""
    arr = np.asarray(rows)
    if arr.dtype == bool:
        if arr.shape != (k,):
            raise ValueError(f"rows as a boolean mask must have shape ({k},), got {arr.shape}")
        mask = arr.copy()
    else:
        idx = _index_list("rows", arr.reshape(-1) if arr.ndim else [arr.item()], k)
        mask = np.zeros(k, dtype=bool)
        mask[idx] = True
    if not mask.any():
        raise ValueError("rows must select at least one patch, got an empty selection")
    return mask


def edge_weights(attributions: np.ndarray, rows: np.ndarray, core: Sequence[int]) -> dict[int, float]:
    """Edge weights ``w(a, s, V_a,j)`` from neuron ``a`` to its core neurons.

    NeurFlow (Sect. 4) weights the edge from ``a`` to a core neuron ``s`` for a
    semantic group ``V_a,j`` as

    ``w(a, s, V_a,j) = T(a, s, V_a,j) / sum_{s' in S_a} |T(a, s', V_a,j)|``,

    with ``T(a, s, V) = attributions[V].sum(0)[s]``. The normalising sum runs
    over the core neurons ``S_a`` only (our reading of the paper), so signs are
    kept and ``sum_{s in S_a} |w(a, s, V_a,j)| = 1`` for every semantic group.
    Unlike the authors' code, which normalises the attribution array in place
    (and so changes the values later terms are divided by), the weights are
    computed out of place from the unmodified sums.

    Parameters
    ----------
    attributions : np.ndarray
        ``(k, C_prev)`` per-patch integrated-gradients attributions of the
        channels of block ``l-1`` for neuron ``a``.
    rows : np.ndarray
        The patches of the group: a boolean mask of length ``k`` or distinct
        integer row indices; must select at least one row.
    core : sequence of int
        The core neurons ``S_a``: distinct channel indices in ``[0, C_prev)``.

    Returns
    -------
    dict of int to float
        ``s -> w`` for ``s`` in ``core``, in the order of ``core``. If
        ``T(a, ., V_a,j)`` is zero on every core neuron, all weights are 0.0 and
        a warning is logged (no division by zero).

    Raises
    ------
    ValueError
        On a non-2-D or non-finite ``attributions``, an empty or out-of-range
        ``rows``, or an empty, repeated or out-of-range ``core``.
    """
    A = _float_matrix("attributions", attributions, ndim=2)
    k, c_prev = A.shape
    mask = _row_selector(rows, k)
    core_idx = _index_list("core", core, c_prev)
    totals = A[mask].sum(axis=0)[core_idx]
    denom = float(np.abs(totals).sum())
    if denom == 0.0:
        _log.warning(
            "edge_weights: attributions sum to zero on all %d core neurons for this group; weights set to 0",
            len(core_idx),
        )
        return {s: 0.0 for s in core_idx}
    return {s: float(t / denom) for s, t in zip(core_idx, totals, strict=True)}


def semantic_groups(
    layer: str,
    neuron: int,
    patch_ids: np.ndarray,
    vectors: np.ndarray,
    attributions: np.ndarray,
    core: Sequence[int],
    *,
    k_range: tuple[int, int] = _SEMANTIC_K,
) -> list[SemanticGroup]:
    """Split neuron ``a``'s concept ``V_a`` into weighted semantic groups.

    NeurFlow (Sect. 4): the concept patches of ``a`` are clustered by ward
    linkage on their spatially averaged activations at block ``l-1``, the count
    chosen by the best silhouette over ``k_range`` (:func:`best_ward_clusters`).
    Each group ``V_a,j`` gets edge weights to the core neurons ``S_a``
    (:func:`edge_weights`).

    Parameters
    ----------
    layer : str
        Name of block ``l`` (stored on the groups).
    neuron : int
        Channel index of ``a`` in block ``l`` (``>= 0``).
    patch_ids : np.ndarray
        ``(k,)`` ids of the concept patches ``V_a``.
    vectors : np.ndarray
        ``(k, C_prev)`` spatially averaged activations of those patches at
        block ``l-1``.
    attributions : np.ndarray
        ``(k, C_prev)`` per-patch integrated-gradients attributions for ``a``.
    core : sequence of int
        The core neurons ``S_a`` (distinct indices in ``[0, C_prev)``).
    k_range : tuple of int, default ``NeurFlowSettings.semantic_k``, (2, 5)
        Cluster counts to try (see :func:`best_ward_clusters`).

    Returns
    -------
    list of SemanticGroup
        One per cluster, ordered by ``index`` ``j = 0, 1, ...``. With ``k <= 2``
        patches (or identical vectors) there is a single group.

    Raises
    ------
    ValueError
        On inconsistent shapes, an empty ``layer``, a negative ``neuron``, or any
        invalid argument of the helpers.
    """
    if not isinstance(layer, str) or not layer:
        raise ValueError(f"layer must be a non-empty string, got {layer!r}")
    neuron = check_int("neuron", neuron, minimum=0)
    ids = np.asarray(patch_ids)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"patch_ids must be a non-empty 1-D array, got shape {ids.shape}")
    V = _float_matrix("vectors", vectors, ndim=2)
    A = _float_matrix("attributions", attributions, ndim=2)
    if V.shape[0] != len(ids):
        raise ValueError(f"vectors must have one row per patch ({len(ids)}), got shape {V.shape}")
    if A.shape != V.shape:
        raise ValueError(f"attributions must have the shape of vectors {V.shape}, got {A.shape}")
    core_idx = _index_list("core", core, V.shape[1])

    labels, count, _ = best_ward_clusters(V, k_range=k_range)
    groups = []
    for j in range(count):
        mask = labels == j
        groups.append(
            SemanticGroup(
                layer=layer,
                neuron=neuron,
                index=j,
                patches=ids[mask].copy(),
                vector=V[mask].mean(axis=0),
                weights=edge_weights(A, mask, core_idx),
            )
        )
    return groups


# ----------------------------------------------------------------------------
# neuron groups and group edges
# ----------------------------------------------------------------------------


@dataclass
class NeuronGroup:
    """A neuron group ``G_i`` of one layer (NeurFlow, Sect. 4).

    Attributes
    ----------
    layer : str
        Block ``l`` of the member neurons.
    index : int
        Group index ``i`` within the layer (order of first appearance along the
        semantic groups passed to :func:`neuron_groups`).
    members : list of tuple of int
        ``(neuron, semantic index)`` of the member semantic groups, in input order.
    neurons : list of int
        Sorted unique member neurons.
    patches : np.ndarray
        The group concept: sorted union of the members' patch ids.
    vector : np.ndarray
        Unweighted mean of the member semantic-group vectors.
    """

    layer: str
    index: int
    members: list[tuple[int, int]]
    neurons: list[int]
    patches: np.ndarray
    vector: np.ndarray


def _check_list(name: str, groups: Any, kind: type) -> list[Any]:
    """``groups`` as a list, each a ``kind`` instance (a single instance or a string is refused)."""
    if isinstance(groups, kind | str | bytes):
        raise ValueError(f"{name} must be a sequence of {kind.__name__}, got {groups!r}")
    out = list(groups)
    for g in out:
        if not isinstance(g, kind):
            raise ValueError(f"{name} must contain {kind.__name__} objects, got {type(g).__name__}")
    return out


def _check_semantic(name: str, groups: Any) -> list[SemanticGroup]:
    out = _check_list(name, groups, SemanticGroup)
    keys = [(g.neuron, g.index) for g in out]
    if len(set(keys)) != len(keys):
        dup = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"{name} repeats (neuron, index) pairs {dup}")
    return out


def neuron_groups(
    layer: str,
    groups: Sequence[SemanticGroup],
    *,
    k_range: tuple[int, int] = _GROUP_K,
    n_groups: int | None = None,
) -> list[NeuronGroup]:
    """Cluster a layer's semantic groups into neuron groups.

    NeurFlow (Sect. 4): all semantic groups of the layer's neurons are
    clustered by ward linkage on their vectors (the centroids of their patches'
    mean activations at block ``l-1``); the count is the best silhouette over
    ``k_range`` (capped at the number of vectors minus one) or the fixed
    ``n_groups``. A neuron belongs to every group that holds one of its
    semantic groups; the group concept is the union of the members' patches.

    Parameters
    ----------
    layer : str
        Name of block ``l``; every semantic group must have this ``layer``.
    groups : sequence of SemanticGroup
        Non-empty; ``(neuron, index)`` pairs must be unique and all vectors of
        equal length.
    k_range : tuple of int, default ``NeurFlowSettings.group_k``, (2, 5)
        Counts searched when ``n_groups`` is None.
    n_groups : int, optional
        Fixed number of neuron groups (capped at the number of distinct
        vectors, see :func:`best_ward_clusters`).

    Returns
    -------
    list of NeuronGroup
        Ordered by ``index`` ``i = 0, 1, ...``.

    Raises
    ------
    ValueError
        On an empty ``groups``, a layer mismatch, repeated members, vectors of
        different lengths, or invalid ``k_range`` / ``n_groups``.
    """
    if not isinstance(layer, str) or not layer:
        raise ValueError(f"layer must be a non-empty string, got {layer!r}")
    sem = _check_semantic("groups", groups)
    if not sem:
        raise ValueError("groups must not be empty")
    wrong = sorted({g.layer for g in sem if g.layer != layer})
    if wrong:
        raise ValueError(f"all semantic groups must belong to layer {layer!r}, got layers {wrong}")
    sizes = sorted({np.asarray(g.vector).shape for g in sem})
    if len(sizes) != 1 or len(sizes[0]) != 1:
        raise ValueError(f"semantic-group vectors must be 1-D of one length, got shapes {sizes}")
    X = _float_matrix("semantic-group vectors", np.stack([np.asarray(g.vector) for g in sem]), ndim=2)

    labels, count, _ = best_ward_clusters(X, k_range=k_range, n_clusters=n_groups)
    out = []
    for i in range(count):
        rows = np.flatnonzero(labels == i)
        members = [(int(sem[r].neuron), int(sem[r].index)) for r in rows]
        patches = np.unique(np.concatenate([np.asarray(sem[r].patches).reshape(-1) for r in rows]))
        out.append(
            NeuronGroup(
                layer=layer,
                index=i,
                members=members,
                neurons=sorted({m[0] for m in members}),
                patches=patches,
                vector=X[rows].mean(axis=0),
            )
        )
    return out


def _check_neuron_groups(name: str, groups: Any) -> list[NeuronGroup]:
    out = _check_list(name, groups, NeuronGroup)
    layers = sorted({g.layer for g in out})
    if len(layers) > 1:
        raise ValueError(f"{name} must all belong to one layer, got layers {layers}")
    return out


def group_edges(
    upper: Sequence[NeuronGroup], upper_semantic: Sequence[SemanticGroup], lower: Sequence[NeuronGroup]
) -> np.ndarray:
    """Group-level edge weights ``W(G_i, G_j)`` between two consecutive layers.

    NeurFlow (Sect. 4) aggregates the neuron-level edge weights into edges
    between a neuron group ``G_i`` of block ``l`` and a neuron group ``G_j`` of
    block ``l-1``:

    ``W(G_i, G_j) = sum_{(a, m) in G_i} sum_{s in S_a, s in G_j} w(a, s, V_a,m)``,

    where a neuron ``s`` of block ``l-1`` is in ``G_j`` if one of its semantic
    groups is a member of ``G_j`` (``s in G_j.neurons``). A neuron that belongs
    to several lower groups contributes to each of them.

    Parameters
    ----------
    upper : sequence of NeuronGroup
        Neuron groups of block ``l``.
    upper_semantic : sequence of SemanticGroup
        The semantic groups of block ``l`` (carrying the weights ``w``); every
        member of ``upper`` must be among them.
    lower : sequence of NeuronGroup
        Neuron groups of block ``l-1``.

    Returns
    -------
    np.ndarray
        ``(len(upper), len(lower))`` float64 matrix ``W``.

    Raises
    ------
    ValueError
        If a member of ``upper`` has no semantic group in ``upper_semantic``, if
        the layers of ``upper`` and ``upper_semantic`` disagree, or if either
        group list mixes layers.
    """
    up = _check_neuron_groups("upper", upper)
    low = _check_neuron_groups("lower", lower)
    sem = _check_semantic("upper_semantic", upper_semantic)
    by_key = {(int(g.neuron), int(g.index)): g for g in sem}
    up_layers = {g.layer for g in up}
    sem_layers = sorted({g.layer for g in sem if g.layer not in up_layers}) if up_layers else []
    if sem_layers:
        raise ValueError(f"upper_semantic must belong to the layer of upper {sorted(up_layers)}, got {sem_layers}")

    lower_sets = [{int(s) for s in g.neurons} for g in low]
    W = np.zeros((len(up), len(low)), dtype=np.float64)
    for i, g in enumerate(up):
        for member in g.members:
            key = (int(member[0]), int(member[1]))
            if key not in by_key:
                raise ValueError(f"member {key} of upper group {g.index} has no semantic group in upper_semantic")
            for s, w in by_key[key].weights.items():
                for j, neurons in enumerate(lower_sets):
                    if int(s) in neurons:
                        W[i, j] += w
    return W


# ----------------------------------------------------------------------------
# debugging metric and top patches
# ----------------------------------------------------------------------------


def debugging_metric(
    activations: np.ndarray, neurons: Sequence[int], reference_max: np.ndarray, *, eps: float = 1e-12
) -> np.ndarray:
    """Image-debugging score ``M(v, S_G)`` of images against a neuron group.

    NeurFlow's image-debugging application scores an image ``v`` against the
    neurons ``S_G`` of a group by the geometric mean of its activations relative
    to each neuron's maximum over a reference set (the concept patches):

    ``M(v, S_G) = exp(mean_{s in S_G} log(|phi_s(v)| / max phi_s + eps))``.

    The small ``eps`` inside the log keeps a zero activation finite (it then
    contributes ``log(eps)``). Ratios are not clipped, so ``M`` exceeds 1 when
    an image activates the neurons more strongly than the reference maximum.

    Parameters
    ----------
    activations : np.ndarray
        ``(n_images, C)`` spatially averaged activations of the images.
    neurons : sequence of int
        The group's neurons ``S_G``: distinct, non-empty, in ``[0, C)``.
    reference_max : np.ndarray
        ``(C,)`` maximum activation of each neuron over the reference set; must
        be ``> 0`` for every listed neuron.
    eps : float, default 1e-12
        Positive, finite constant added inside the log.

    Returns
    -------
    np.ndarray
        ``(n_images,)`` float64 scores ``M``.

    Raises
    ------
    ValueError
        On bad shapes, non-finite values, bad ``neurons``, a non-positive ``eps``,
        or a reference max ``<= 0`` for a listed neuron (the message names it).
    """
    X = _float_matrix("activations", activations, ndim=2)
    ref = _float_matrix("reference_max", reference_max, ndim=1)
    if ref.shape[0] != X.shape[1]:
        raise ValueError(f"reference_max must have one entry per channel ({X.shape[1]}), got shape {ref.shape}")
    idx = _index_list("neurons", neurons, X.shape[1])
    eps = check_number("eps", eps, minimum=0.0, exclusive_minimum=True)
    bad = [(s, float(ref[s])) for s in idx if ref[s] <= 0]
    if bad:
        raise ValueError(f"reference_max must be > 0 for every listed neuron; got (neuron, max) {bad}")
    ratios = np.abs(X[:, idx]) / ref[idx]
    return np.exp(np.log(ratios + eps).mean(axis=1))


def rank_patches(patch_ids: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` patch ids with the highest scores (a group's top patches).

    Used to show a neuron group's concept (NeurFlow, Sect. 4): the caller
    supplies a score per patch, e.g. the group's mean activation on it.

    Parameters
    ----------
    patch_ids : np.ndarray
        ``(m,)`` patch ids.
    scores : np.ndarray
        ``(m,)`` finite scores.
    n : int
        How many to return (``>= 0``); all ``m`` are returned if ``n > m``.

    Returns
    -------
    np.ndarray
        ``(min(n, m),)`` ids by decreasing score; equal scores keep their input
        order (stable sort).

    Raises
    ------
    ValueError
        On mismatched or non-1-D inputs, non-finite scores, or a negative ``n``.
    """
    ids = np.asarray(patch_ids)
    if ids.ndim != 1:
        raise ValueError(f"patch_ids must be 1-D, got shape {ids.shape}")
    sc = _float_matrix("scores", scores, ndim=1)
    if sc.shape != ids.shape:
        raise ValueError(f"scores must have the shape of patch_ids {ids.shape}, got {sc.shape}")
    n = check_int("n", n, minimum=0)
    order = np.argsort(-sc, kind="stable")
    return ids[order[:n]].copy()
