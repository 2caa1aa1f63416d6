"""NAP clustering: HDBSCAN on a layer's features, independent of row order, ties and duplicate rows.

The NAP paper (Bäuerle, Jönsson, Ropinski) clusters with the ``hdbscan``
package: euclidean, ``min_cluster_size=5``, ``min_samples=5``, leaf selection,
epsilon 0 (:data:`HDBSCAN_PARAMS`), and ranks the clusters (NAPs) by
``cluster_persistence_``. hdbscan's single-linkage tree, condensed tree,
stabilities, labels, membership probabilities and GLOSH outlier scores are used
as they are, with three well-defined exceptions that make the result a function
of the *set* of inputs:

1. **Duplicate rows: the set of distinct rows is clustered.** HDBSCAN*'s
   density estimate is defined for a set of points: ``min_samples`` + 1
   identical rows have core distance 0, merge at lambda = 1/0 = inf, and
   hdbscan's persistence, stability / (size x max lambda of the tree), becomes
   1.0 for *every* cluster (its membership probability 0 for every other member
   of a cluster holding them, its outlier score NaN; the authors' reference
   implementation warns that replicates make the density "not well-defined
   (infinite)"). Real activation sets hold exact duplicates (dead inputs,
   repeated images, all-zero post-ReLU vectors). NAPs are regions of the
   layer's activation space: the distinct rows are clustered, and every input
   gets the label, probability and outlier score of its row, so NAP sizes,
   statistics and class mixes still count every input (the duplicates are
   collapsed with their multiplicity). A repeated image therefore neither makes
   a NAP of its own nor makes its NAP more persistent, and the ranking by
   persistence is that of the distinct activation patterns.
   ``min_cluster_size`` and ``min_samples`` count distinct rows.
2. **Row order.** The distinct rows are clustered in a canonical order, sorted
   lexicographically by value, and the results are mapped back. hdbscan's
   minimum spanning tree is not unique when mutual reachability distances tie,
   and which tree Prim's algorithm returns, and how it binarizes equal merge
   heights, depends on the row order; so does the rounding of a distance
   matrix. In the canonical order the same input set gives bit-identical
   input to hdbscan.
3. **Ties: simultaneous merges.** Equal mutual reachability weights are common
   (a point's core distance is the weight of every edge it dominates; two mutual
   ``min_samples``-th neighbours share a core distance). hdbscan's binary
   single-linkage tree merges k > 2 components that join at one height d in an
   arbitrary sequence, and its condensed tree then depends on that sequence:
   two pieces below ``min_cluster_size`` merged first can pass the size test
   together and become a spurious cluster of zero lifetime (the NAP count of
   ResNet-18 CIFAR ``fc`` was 12 or 13 depending on the row order). HDBSCAN*
   removes tied edges simultaneously (Campello et al. 2015, Algorithm 1; the
   authors' reference implementation ``HDBSCANStar.java``,
   ``computeHierarchyAndClusterTree``, removes "all edges tied with the current
   edge weight" before it checks for a split): at height d the components that
   meet there are the *pieces*; those with >= ``min_cluster_size`` points
   become new clusters if there are two or more of them (one continues its
   parent's cluster), the smaller ones fall out as noise at lambda = 1/d. Every
   merge of three or more pieces is rebuilt here as a chain (large pieces
   first, then small ones, each by their first row in the canonical order)
   whose hdbscan condensed tree has exactly those leaves and lambdas; merges of
   two pieces are left as hdbscan built them. The hierarchy of pieces at every
   height does not depend on which minimum spanning tree was found.

Distinct rows closer than the float64 resolution (distance exactly 0) would
still give lambda = inf; then the infinite lambdas of the condensed tree are
capped at its largest finite one before hdbscan's own functions compute
stabilities, probabilities, persistence and outlier scores (labels do not
change: leaf selection does not use lambda values).

The number of duplicate rows, tied minimum spanning tree weights, simultaneous
merges, capped lambdas and the count hdbscan's own binary tree gives (for the
canonical order) are returned in :attr:`ClusterResult.diagnostics` and logged.

Without duplicate rows, and where no merge of three or more pieces changes
hdbscan's condensed tree (the usual case; ``n_clusters_hdbscan`` shows when
one changes the count), labels, probabilities, outlier scores and persistence
equal those of ``hdbscan.HDBSCAN`` run on the canonically ordered rows, and up
to the numbering of the clusters those of any row order (the tests check
both, against its exact ``prims_kdtree`` and ``generic`` paths). hdbscan's
tree functions (``label``, ``condense_tree``, ``compute_stability``,
``get_clusters``, ``outlier_scores``) and its dense Prim's
(``mst_linkage_core``) come from its private modules, pinned to hdbscan 0.8.44
(the tests compare the results with hdbscan's estimator).

The minimum spanning tree of the mutual reachability graph comes from one of
two exact paths (:mod:`.reachability`), chosen by ``max_precomputed``:

- ``"precomputed"`` (up to ``max_precomputed`` distinct rows): the exact
  pairwise euclidean distance matrix as matrix products (float64; torch on
  GPU when present, numpy's BLAS on CPU), m^2 x 8 bytes, then the core
  distances, the weights in place and hdbscan's dense Prim's, as
  ``HDBSCAN(metric="precomputed")`` does.
- ``"tiled"`` (above): bounded memory, O(m f + tile^2): one float64 product
  per tile of the distance matrix, torch on the device (CUDA tiles on the
  GPU), two passes over the tiles (nearest neighbours, then the lightest edge
  between the components that verified Borůvka steps on the neighbours leave;
  more passes only when over 4,096 components are left).

The log names the path and its peak memory. The tree functions above then
run on that tree, as in hdbscan's own estimator.

References
----------
.. [1] R. J. G. B. Campello, D. Moulavi, A. Zimek, J. Sander, "Hierarchical
   density estimates for data clustering, visualization, and outlier
   detection", ACM TKDD 10(1), 2015.
.. [2] L. McInnes, J. Healy, S. Astels, "hdbscan: Hierarchical density based
   clustering", JOSS 2(11), 2017.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..checks import check_choice, check_int
from ..models import resolve_device
from .reachability import CANCELLATION, peak_memory_gb, precomputed_mst, tiled_mst
from .settings import NapSettings

__all__ = ["HDBSCAN_PARAMS", "ClusterResult", "canonical_order", "cluster", "pairwise_distances"]

HDBSCAN_PARAMS: dict[str, Any] = {
    "min_cluster_size": 5,
    "min_samples": 5,
    "cluster_selection_method": "leaf",
    "cluster_selection_epsilon": 0.0,
}
_SELECTION_PARAMS = ("cluster_selection_method", "cluster_selection_epsilon", "allow_single_cluster")
_PARAM_NAMES = ("min_cluster_size", "min_samples", *_SELECTION_PARAMS)
_BLOCK_ELEMENTS = 1 << 22  # distance rows per block x n <= 4 M float64 (32 MB) of temporaries

_PREFIX_COLUMNS = 16  # canonical_order sorts by these first, then runs of equal prefixes by all columns
_CLUSTERING_DIAGNOSTICS = (  # None when too few distinct rows were left to cluster
    "mst",
    "mst_edges",
    "tied_mst_edges",
    "simultaneous_merges",
    "infinite_lambdas",
    "lambda_cap",
    "n_clusters_hdbscan",
)

_log = logging.getLogger("conceptscope")


@dataclass(frozen=True)
class ClusterResult:
    """Per-input and per-cluster output of :func:`cluster`, in the input's row order.

    Attributes
    ----------
    labels : ndarray (n_samples,) int64
        Cluster label, -1 for noise.
    probabilities, outlier_scores : ndarray (n_samples,) float64
        Membership probability (0 for noise) and GLOSH outlier score.
    persistence : ndarray (n_clusters,) float64
        hdbscan's ``cluster_persistence_`` per label, in [0, 1].
    path : str
        ``"precomputed"``, ``"tiled"`` or ``"too-few-inputs"``.
    seconds : float
        Wall-clock time.
    diagnostics : dict
        ``duplicate_rows`` (rows equal to an earlier row), ``duplicate_groups``,
        ``largest_duplicate_group``, ``distinct_rows`` (the rows clustered),
        ``infinite_lambdas`` (condensed-tree entries capped) and ``lambda_cap``
        (None when nothing was capped),
        ``mst_edges``, ``tied_mst_edges`` (edges whose weight another edge
        shares), ``simultaneous_merges`` (heights where three or more pieces
        merge), ``n_clusters_hdbscan`` (the count of hdbscan's own binary tree
        for the canonical order; it differs from ``len(persistence)`` only
        through such merges; None on the tiled path, whose spanning tree is
        not the one hdbscan's Prim's visits where weights tie), ``mst`` (the spanning tree's
        :attr:`~conceptscope.naps.reachability.MstResult.info` without its
        seconds). The keys after ``distinct_rows`` are None when too few
        distinct rows were left to cluster. Deterministic.
    resources : dict
        Seconds of the spanning tree, distances included (``seconds``; per
        pass on the tiled path),
        ``peak_rss_gb`` (the process's peak resident memory so far) and on
        CUDA ``peak_gpu_gb``; empty when nothing was clustered.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    persistence: np.ndarray
    path: str
    seconds: float
    diagnostics: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)


def canonical_order(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted lexicographically by value, and which of them are distinct.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        Finite values (-0.0 and 0.0 are equal).

    Returns
    -------
    order : ndarray (n_samples,) intp
        ``X[order]`` is the canonical order; identical rows are adjacent, in
        their input order (a stable sort).
    first : ndarray (n_samples,) bool
        Along ``X[order]``: True where a row differs from the one before
        (``X[order][first]`` are the distinct rows, in canonical order).
    """
    X = np.asarray(X)
    n, f = X.shape
    k = min(f, _PREFIX_COLUMNS)
    order = np.lexsort(X[:, :k].T[::-1])  # by the first k columns (column 0 first)
    tie = (X[order[1:], :k] == X[order[:-1], :k]).all(axis=1)
    if k < f and tie.any():  # runs of rows equal on the first k columns: by all columns
        edges = np.diff(np.concatenate([[0], tie.astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) + 1, strict=True):
            run = order[s:e]
            order[s:e] = run[np.lexsort(X[run, k:].T[::-1])]
    first = np.ones(n, dtype=bool)
    same = np.flatnonzero(tie) + 1  # candidates: equal to the previous row on the first k columns
    for c in range(0, len(same), 4096):  # in chunks: no copy of X
        rows = same[c : c + 4096]
        first[rows] = (X[order[rows]] != X[order[rows - 1]]).any(axis=1)
    return order, first


def _squared_distances_cuda(x: np.ndarray, sq: np.ndarray, device: torch.device) -> np.ndarray:
    """(n, n) -2 x_i.x_j + |x_i|^2 + |x_j|^2 on a CUDA ``device``, exactly symmetric, as numpy."""
    xt = torch.as_tensor(x, device=device)
    sqt = torch.as_tensor(sq, device=device)
    d2 = (xt @ xt.T).mul_(-2.0).add_(sqt[:, None]).add_(sqt[None, :]).triu_()
    return d2.add_(d2.triu(1).T).cpu().numpy()  # the upper triangle, mirrored: peak 2 n^2 on the device


def _distances(x: np.ndarray, device: str | torch.device | None) -> np.ndarray:
    """Exactly symmetric euclidean distances (n, n) of the rows of ``x`` (see :func:`pairwise_distances`)."""
    dev = resolve_device(device)
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    cpu = dev.type != "cuda"
    d2 = x @ x.T if cpu else _squared_distances_cuda(x, sq, dev)  # numpy gives x @ x.T to BLAS syrk: symmetric
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    sums = np.empty((min(block, n), n))  # one buffer for every block: no fresh pages per block
    for a in range(0, n, block):
        rows, s = d2[a : a + block], sums[: min(block, n - a)]
        np.add(sq[a : a + block, None], sq[None, :], out=s)  # |x_i|^2 + |x_j|^2: symmetric
        if cpu:
            rows *= -2.0
            rows += s
        # close pairs lose their digits to cancellation (error ~1e-16 (|x_i|^2 + |x_j|^2)): recompute directly
        s *= CANCELLATION
        i, j = np.nonzero(rows < s)
        i, j = i[a + i != j] + a, j[a + i != j]
        for c in range(0, len(i), 4096):
            diff = x[i[c : c + 4096]] - x[j[c : c + 4096]]  # |x_i - x_j|^2 = |x_j - x_i|^2 exactly
            d2[i[c : c + 4096], j[c : c + 4096]] = np.einsum("ij,ij->i", diff, diff)
        np.maximum(rows, 0.0, out=rows)
        rows[np.arange(len(rows)), np.arange(a, a + len(rows))] = 0.0  # the diagonal
        np.sqrt(rows, out=rows)
    return d2


def _distinct(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``X`` in canonical order (m, f) and each input row's index among them (n,)."""
    order, first = canonical_order(X)
    inverse = np.empty(len(X), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return np.ascontiguousarray(X[order[first]]), inverse


def pairwise_distances(X: np.ndarray, *, device: str | torch.device | None = None) -> np.ndarray:
    """Exact euclidean distances (n_samples, n_samples), float64, from matrix products.

    d(i, j)^2 = (-2 x_i . x_j) + (|x_i|^2 + |x_j|^2), clamped at 0, computed once
    for each pair of distinct rows (in :func:`canonical_order`); pairs where
    that is below 1e-8 (|x_i|^2 + |x_j|^2), whose digits cancel, are recomputed
    as |x_i - x_j|^2 (the product form alone leaves noise of ~1e-8 |x| there,
    i.e. lambdas near 1e8 for near-duplicates). The matrix is exactly
    symmetric, its diagonal is 0, identical rows have distance exactly 0 and
    identical distances to every other row. On
    a CUDA ``device`` the products run in torch; on CPU in numpy's BLAS, which
    was 2.4x faster than torch's float64 matmul here (12,811 x 2,048: 5.8 s vs
    14.0 s on 2 cores). Memory: the result plus 128 MB of temporaries (plus
    the distinct rows' matrix when there are duplicates).
    """
    x = np.asarray(X, dtype=np.float64) + 0.0
    if not len(x):
        return np.zeros((0, 0))
    distinct, inverse = _distinct(x)
    out = _distances(distinct, device)
    return out if len(distinct) == len(x) and (inverse == np.arange(len(x))).all() else out[np.ix_(inverse, inverse)]


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(_PARAM_NAMES))
    if unknown:
        raise ValueError(f"unsupported HDBSCAN parameters {unknown}; supported: {list(_PARAM_NAMES)}")
    settings = {**HDBSCAN_PARAMS, **params}
    check_int("min_cluster_size", settings["min_cluster_size"], minimum=2)
    check_int("min_samples", settings["min_samples"], minimum=1)
    check_choice("cluster_selection_method", settings["cluster_selection_method"], ("leaf", "eom"))
    return settings


def _simultaneous_ties(linkage: np.ndarray, min_cluster_size: int) -> tuple[np.ndarray, dict[str, int]]:
    """hdbscan's single-linkage tree with every tie made one simultaneous merge (module docstring, 3.).

    ``linkage`` (n - 1, 4) is hdbscan's tree (scipy format, heights non-
    decreasing). Rows sharing a height form groups; within a group, rows
    connected through nodes created in the group are one merge of the
    group's *pieces* (their children made below that height). A merge of two
    pieces keeps its row; one of k >= 3 pieces becomes a chain of k - 1 merges:
    pieces of >= ``min_cluster_size`` points first, then the smaller ones, each
    ordered by its smallest point. The tree is rebuilt from (point, point,
    height) edges by hdbscan's ``label``; returned unchanged when no merge has
    three or more pieces.
    """
    from hdbscan._hdbscan_linkage import label

    n = len(linkage) + 1
    left = linkage[:, 0].astype(np.intp).tolist()
    right = linkage[:, 1].astype(np.intp).tolist()
    first = list(range(n)) + [0] * (n - 1)  # the smallest point of each node's subtree
    for i in range(n - 1):
        first[n + i] = min(first[left[i]], first[right[i]])
    sizes = [1] * n + linkage[:, 3].astype(np.intp).tolist()
    height = linkage[:, 2]
    bounds = np.flatnonzero(np.diff(height) != 0) + 1
    starts, ends = np.concatenate([[0], bounds]).tolist(), np.concatenate([bounds, [n - 1]]).tolist()
    info = {"mst_edges": n - 1, "tied_mst_edges": 0, "simultaneous_merges": 0}
    rows_out: list[tuple[int, int, float]] = []
    for s, e in zip(starts, ends, strict=True):
        if e - s == 1:
            rows_out.append((first[left[s]], first[right[s]], height[s]))
            continue
        info["tied_mst_edges"] += e - s
        parent = list(range(s, e))  # union-find over the group's rows (index r - s)

        def find(r: int, parent: list[int] = parent, s: int = s) -> int:
            while parent[r - s] != r:
                parent[r - s] = parent[parent[r - s] - s]
                r = parent[r - s]
            return r

        for r in range(s, e):
            for c in (left[r], right[r]):
                if c >= n + s:  # a node made in this group: its merge continues here
                    parent[find(c - n) - s] = r
        merges: dict[int, list[int]] = {}
        for r in range(s, e):
            merges.setdefault(find(r), []).append(r)
        for rows in sorted(merges.values(), key=min):
            if len(rows) == 1:
                rows_out.append((first[left[rows[0]]], first[right[rows[0]]], height[s]))
                continue
            info["simultaneous_merges"] += 1
            pieces = [c for r in rows for c in (left[r], right[r]) if c < n + s]
            pieces.sort(key=lambda c: (sizes[c] < min_cluster_size, first[c]))
            rows_out.extend((first[pieces[0]], first[c], height[s]) for c in pieces[1:])
    if not info["simultaneous_merges"]:
        return linkage, info
    return label(np.asarray(rows_out, dtype=np.float64)), info


def _condensed_results(linkage: np.ndarray, settings: dict[str, Any]) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
    """Labels, probabilities, persistence, outlier scores of a tree; infinite lambdas capped (module docstring)."""
    from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters, outlier_scores

    tree = condense_tree(linkage, settings["min_cluster_size"])
    lam = tree["lambda_val"]
    infinite = ~np.isfinite(lam)
    cap = float(lam[~infinite].max()) if (~infinite).any() else 0.0
    capped = infinite.any() and cap > 0.0
    if capped:
        tree = tree.copy()
        tree["lambda_val"][infinite] = cap
    selection = {k: settings[k] for k in _SELECTION_PARAMS if k in settings}
    labels, probabilities, persistence = get_clusters(tree, compute_stability(tree), **selection)
    info = {"infinite_lambdas": int(infinite.sum()), "lambda_cap": cap if capped else None}
    return (labels, probabilities, persistence, outlier_scores(tree)), info


def cluster(
    X: np.ndarray,
    *,
    max_precomputed: int = NapSettings.max_precomputed,
    device: str | torch.device | None = None,
    tile_rows: int | None = None,
    **params: Any,
) -> ClusterResult:
    """HDBSCAN with the NAP parameters (:data:`HDBSCAN_PARAMS`), independent of row order, ties and duplicates.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        One row per input; finite values. Read as float64 on the CPU.
    max_precomputed : int
        Up to this many distinct rows the distance matrix is held (memory
        m^2 x 8 bytes: 3.2 GB at 20,000); above, the tiled path runs in
        O(m f + tile_rows^2) memory (see the module docstring). Both are exact.
    device : str or torch.device, optional
        Where the distance products run (default or ``"auto"``: CUDA when
        available; see :func:`conceptscope.models.resolve_device`).
    tile_rows : int, optional
        Rows per tile of the tiled path (default
        :data:`conceptscope.naps.reachability.TILE_ROWS` of the device).
    **params
        Overrides of ``min_cluster_size``, ``min_samples``,
        ``cluster_selection_method``, ``cluster_selection_epsilon``,
        ``allow_single_cluster``.

    Returns
    -------
    ClusterResult
        In the input's row order; identical rows get identical results. See
        the module docstring for duplicates, row order, ties and capped lambdas.

    Raises
    ------
    ValueError
        For a non-2-D or non-finite ``X``, or an unsupported parameter.
    """
    from hdbscan._hdbscan_linkage import label

    settings = _check_params(params)
    check_int("max_precomputed", max_precomputed, minimum=0)
    if tile_rows is not None:
        check_int("tile_rows", tile_rows, minimum=1)
    dev = resolve_device(device)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"X must be 2-D (n_samples, n_features >= 1), got shape {X.shape}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise ValueError(
            f"X has non-finite values in {int(bad.sum())} rows (first: {np.flatnonzero(bad)[:5].tolist()})"
        )
    n = len(X)
    t0 = time.perf_counter()
    distinct, inverse = _distinct(X) if n else (X + 0.0, np.zeros(0, dtype=np.intp))
    distinct += 0.0  # a new array: -0.0 becomes 0.0 (canonical_order already compares them equal)
    m = len(distinct)
    sizes = np.bincount(inverse, minlength=m)
    diagnostics: dict[str, Any] = {
        "duplicate_rows": int(n - m),
        "duplicate_groups": int(np.sum(sizes > 1)),
        "largest_duplicate_group": int(sizes.max(initial=0)),
        "distinct_rows": int(m),
    }
    if m <= settings["min_cluster_size"]:
        _log.info("%d inputs, %d distinct: too few for a cluster of %d", n, m, settings["min_cluster_size"])
        diagnostics |= dict.fromkeys(_CLUSTERING_DIAGNOSTICS)
        empty = np.full(n, -1, dtype=np.int64)
        return ClusterResult(empty, np.zeros(n), np.zeros(n), np.zeros(0), "too-few-inputs", 0.0, diagnostics)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t_mst = time.perf_counter()
    if m <= max_precomputed:
        mst = precomputed_mst(_distances(distinct, dev), settings["min_samples"])
    else:
        mst = tiled_mst(distinct, settings["min_samples"], tile_rows=tile_rows, device=dev)
    mst_seconds = time.perf_counter() - t_mst  # distances included on both paths
    memory = peak_memory_gb(dev)
    _log.info(
        "%s path (%d distinct rows %s max_precomputed=%d) on %s: MST in %.1f s; peak %s",
        mst.info["path"],
        m,
        "<=" if m <= max_precomputed else ">",
        max_precomputed,
        dev,
        mst_seconds,
        ", ".join(f"{k.removeprefix('peak_')} {v:.2f}" for k, v in memory.items()),
    )
    binary = label(mst.edges[np.argsort(mst.edges[:, 2])])  # hdbscan's single-linkage tree (_hdbscan_generic)
    linkage, ties = _simultaneous_ties(binary, settings["min_cluster_size"])
    (labels, probabilities, persistence, outliers), lambdas = _condensed_results(linkage, settings)
    count = _cluster_count(binary, linkage, labels, settings) if mst.info["path"] == "precomputed" else None
    diagnostics |= ties | lambdas | {"n_clusters_hdbscan": count}
    diagnostics["mst"] = {k: v for k, v in mst.info.items() if k != "path" and not k.endswith("seconds")}
    resources = {**{k: v for k, v in mst.info.items() if k.endswith("seconds")}, "seconds": mst_seconds, **memory}
    _log_diagnostics(diagnostics, n, len(persistence))
    return ClusterResult(
        labels=np.asarray(labels, dtype=np.int64)[inverse],
        probabilities=np.asarray(probabilities, dtype=np.float64)[inverse],
        outlier_scores=np.asarray(outliers, dtype=np.float64)[inverse],
        persistence=np.asarray(persistence, dtype=np.float64),
        path=mst.info["path"],
        seconds=time.perf_counter() - t0,
        diagnostics=diagnostics,
        resources=resources,
    )


def _cluster_count(binary: np.ndarray, linkage: np.ndarray, labels: np.ndarray, settings: dict[str, Any]) -> int:
    """Clusters in hdbscan's own binary tree (as ``HDBSCAN.fit`` labels it); as ``labels`` if no tie changed it."""
    own = labels if linkage is binary else _condensed_results(binary, settings)[0][0]
    return int(np.max(own, initial=-1)) + 1


def _log_diagnostics(d: dict[str, Any], n: int, n_clusters: int) -> None:
    level = logging.WARNING if d["duplicate_rows"] else logging.INFO
    _log.log(
        level,
        "%d inputs, %d distinct: %d duplicate another input (%d groups, largest %d); the distinct rows are "
        "clustered and every input gets its row's result",
        n,
        d["distinct_rows"],
        d["duplicate_rows"],
        d["duplicate_groups"],
        d["largest_duplicate_group"],
    )
    _log.info(
        "%d of %d MST edge weights tied, %d simultaneous merges of 3+ components",
        d["tied_mst_edges"],
        d["mst_edges"],
        d["simultaneous_merges"],
    )
    if d["lambda_cap"] is not None:
        _log.warning(
            "distinct rows at distance 0 (below float64 resolution): %d condensed-tree lambdas capped at the "
            "largest finite one, %.6g",
            d["infinite_lambdas"],
            d["lambda_cap"],
        )
    if d["n_clusters_hdbscan"] is not None and d["n_clusters_hdbscan"] != n_clusters:
        _log.warning(
            "ties decide the count: %d clusters with tied merges simultaneous (HDBSCAN*), %d in hdbscan's binary tree",
            n_clusters,
            d["n_clusters_hdbscan"],
        )
