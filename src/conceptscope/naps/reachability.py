"""Exact minimum spanning trees of HDBSCAN*'s mutual reachability graph, from a matrix or from tiles.

HDBSCAN* (Campello et al. 2015) clusters by the minimum spanning tree (MST) of
the mutual reachability graph: core distance c(i) = the euclidean distance to
the ``min_samples``-th nearest other row (hdbscan's convention: its generic
path takes entry ``min_samples`` of each sorted distance column, self
included; its KD-tree path queries ``min_samples + 1`` neighbours), and edge
weights w(i, j) = max(c(i), c(j), d(i, j)). The hdbscan package's single-linkage
tree, condensed tree and labels are then functions of that MST. Two ways to get
it, both exact:

:func:`precomputed_mst` (up to ``naps.max_precomputed`` rows)
    From the full distance matrix (m^2 x 8 bytes): the core distances by a
    row-wise partition, the weights in place, and hdbscan's own dense Prim's
    (``hdbscan._hdbscan_linkage.mst_linkage_core``). The same steps as
    ``HDBSCAN(metric="precomputed")`` (``_hdbscan_generic``), without its
    copies and its column-wise partition (4.1 of 12.6 s at 12,811 rows).

:func:`tiled_mst` (any number of rows; memory O(m f + tile^2 + m_c^2))
    Never holds more than one tile of the distance matrix. Distances are
    squared euclidean from one matrix product per tile, float64 (the same
    formula and cancellation fix as the full matrix), torch on the given device
    (CUDA tiles on the GPU; on the CPU torch's BLAS). Two passes over the upper
    triangle of tiles:

    1. **Neighbours.** Each row's K nearest other rows (K = ``candidates``,
       at least 2 ``min_samples``): the core distances, and candidate edges with
       a lower bound: a row i's non-candidate edges weigh at least r(i), the
       distance to its K-th neighbour.
    2. **Borůvka on the candidates, verified.** Each component's lightest
       outgoing candidate edge, in the strict order (weight, smaller row,
       larger row), is its lightest outgoing edge of the whole graph when it is
       strictly below min r(i) over the component's rows; such edges are MST
       edges (cut property) and join components, round after round, until no
       component can be verified. This forest F is part of the MST.
    3. **Components.** One more pass computes, for every pair of the m_c
       components left, the lightest edge between them (its weight and rows).
       The MST is F plus the MST of this contracted graph (a component pair's
       lightest edge stands for all of them), found by hdbscan's dense Prim's
       on the m_c x m_c weights. While more than 4,096 components are left
       (three 128 MB tables), full Borůvka passes (each component's lightest
       outgoing edge over all tiles) at least halve them first.

    Ties: the MST is not unique when weights tie; every MST gives the same
    hierarchy of components at every height (:mod:`.clustering` merges tied
    edges simultaneously), which is all the clustering uses. Exactly equal
    distances (e.g. integer data) are equal on both paths and at any tile
    size; distances equal in exact arithmetic but rounded differently (a
    product's rounding depends on the formula, and on the tile on a GPU or
    BLAS) can order differently, as between hdbscan's own exact paths.

Both return hdbscan's MST format: rows (i, j, w), unsorted. Squared distances
are compared throughout; w = sqrt(w^2) at the end (sqrt is monotone and
correctly rounded, so this equals the maximum of the square-rooted terms).

References
----------
.. [1] R. J. G. B. Campello, D. Moulavi, A. Zimek, J. Sander, "Hierarchical
   density estimates for data clustering, visualization, and outlier
   detection", ACM TKDD 10(1), 2015.
.. [2] O. Borůvka (1926); the contraction and cut properties of MSTs, e.g.
   R. E. Tarjan, "Data structures and network algorithms", SIAM 1983, ch. 6.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..checks import check_int
from ..models import resolve_device

__all__ = ["MstResult", "peak_memory_gb", "precomputed_mst", "tiled_mst"]

CANDIDATES = 32  # neighbours per row kept in the tiled path's first pass
TILE_ROWS = {"cpu": 2048, "cuda": 4096}  # rows per tile: 32 MB / 128 MB of float64 per tile
CANCELLATION = 1e-8  # pairs with d^2 below this x (|x_i|^2 + |x_j|^2) are recomputed as |x_i - x_j|^2
_MAX_COMPONENT_PAIRS = 1 << 24  # m_c^2 entries of the component pass (16 M: 3 tables of 128 MB)

_log = logging.getLogger("conceptscope")


@dataclass(frozen=True)
class MstResult:
    """An MST of the mutual reachability graph of m rows.

    Attributes
    ----------
    edges : ndarray (m - 1, 3) float64
        Rows (i, j, w): row indices and mutual reachability distance, in no
        particular order (hdbscan's ``mst_linkage_core`` format).
    core_distances : ndarray (m,) float64
        Distance of each row to its ``min(m - 1, min_samples)``-th nearest other row.
    info : dict
        ``path``, ``seconds`` and, for the tiled path, ``tile_rows``,
        ``candidates``, ``tiles`` (per pass), ``forest_edges`` (MST edges verified
        from the candidates), ``boruvka_rounds``, ``boruvka_passes`` (full
        passes run while more than 4,096 components were left),
        ``components`` (m_c, left for the component pass), and seconds per pass.
    """

    edges: np.ndarray
    core_distances: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def peak_memory_gb(device: torch.device | None = None) -> dict[str, float]:
    """Peak resident memory of this process so far, and on CUDA the peak allocated GPU memory; GB.

    Linux's ``VmHWM`` (the high-water mark of this process's own memory; ``ru_maxrss`` would also hold a
    parent's resident memory at fork), else ``ru_maxrss``.
    """
    import resource

    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_gb": kb * 1024 / 1e9}
    if device is not None and device.type == "cuda":
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return out


def _core_rank(m: int, min_samples: int) -> int:
    """hdbscan's effective ``min_samples``: ``min(m - 1, min_samples)``, the rank of the core neighbour."""
    return max(1, min(m - 1, min_samples))


def precomputed_mst(distances: np.ndarray, min_samples: int) -> MstResult:
    """MST of the mutual reachability graph of a full distance matrix, overwritten in place.

    Parameters
    ----------
    distances : ndarray (m, m) float64, C-contiguous
        Symmetric, zero diagonal. Replaced by the mutual reachability weights.
    min_samples : int
        Core neighbour rank (capped at m - 1, as hdbscan does).

    Returns
    -------
    MstResult
        ``path`` ``"precomputed"``. The weights equal those of hdbscan's
        ``mutual_reachability`` (a maximum is exact), and the tree is
        hdbscan's ``mst_linkage_core`` on them, as ``HDBSCAN(metric="precomputed")`` builds it.
    """
    from hdbscan._hdbscan_linkage import mst_linkage_core

    t0 = time.perf_counter()
    m = len(distances)
    k = _core_rank(m, min_samples)
    block = max(1, (1 << 22) // max(m, 1))
    core = np.empty(m)
    for a in range(0, m, block):  # rows == columns (symmetric): entry k of each sorted row, self included
        core[a : a + block] = np.partition(distances[a : a + block], k, axis=1)[:, k]
    for a in range(0, m, block):
        rows = distances[a : a + block]
        np.maximum(rows, core[a : a + block, None], out=rows)
        np.maximum(rows, core[None, :], out=rows)
    edges = mst_linkage_core(distances)
    return MstResult(edges, core, {"path": "precomputed", "seconds": time.perf_counter() - t0})


class _Tiles:
    """Squared euclidean distances between blocks of rows of ``x``, one float64 tile at a time (on ``device``)."""

    def __init__(self, x: np.ndarray, tile_rows: int, device: torch.device) -> None:
        self.x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float64), device=device)
        self.sq = torch.einsum("ij,ij->i", self.x, self.x)
        self.m = len(x)
        self.starts = list(range(0, self.m, tile_rows))
        self.tile_rows = tile_rows

    def blocks(self) -> list[tuple[int, int, int, int]]:
        """(a0, a1, b0, b1) of the tiles on and above the diagonal: every pair of rows once."""
        spans = [(s, min(s + self.tile_rows, self.m)) for s in self.starts]
        return [(*spans[i], *spans[j]) for i in range(len(spans)) for j in range(i, len(spans))]

    def squared(self, a0: int, a1: int, b0: int, b1: int) -> torch.Tensor:
        """d^2 (a1 - a0, b1 - b0): (|x_i|^2 + |x_j|^2) - 2 x_i . x_j, clamped at 0; close pairs recomputed directly."""
        sa, sb = self.sq[a0:a1], self.sq[b0:b1]
        d2 = torch.addmm(sa[:, None] + sb[None, :], self.x[a0:a1], self.x[b0:b1].T, alpha=-2.0)
        if bool((d2 < CANCELLATION * (sa.max() + sb.max())).any()):  # a cheap superset of the close pairs
            i, j = torch.nonzero(d2 < CANCELLATION * (sa[:, None] + sb[None, :]), as_tuple=True)
            diff = self.x[a0 + i] - self.x[b0 + j]
            d2[i, j] = torch.einsum("ij,ij->i", diff, diff)
        return d2.clamp_min_(0.0)

    def reachability(self, a0: int, a1: int, b0: int, b1: int, core2: torch.Tensor) -> torch.Tensor:
        """Squared mutual reachability (a1 - a0, b1 - b0): max(d^2, c(i)^2, c(j)^2), ``core2`` (m,) on the device."""
        w2 = self.squared(a0, a1, b0, b1)
        torch.maximum(w2, core2[a0:a1, None], out=w2)
        return torch.maximum(w2, core2[None, b0:b1], out=w2)


def _merge_nearest(vals: torch.Tensor, idx: torch.Tensor, rows: slice, d2: torch.Tensor, offset: int, k: int) -> None:
    """Fold the k nearest columns of ``d2`` (rows x columns, column j is row ``offset + j``) into each row's list."""
    kk = min(k, d2.shape[1])
    tv, ti = torch.topk(d2, kk, dim=1, largest=False, sorted=False)
    allv = torch.cat([vals[rows], tv], dim=1)
    alli = torch.cat([idx[rows], ti + offset], dim=1)
    keep = torch.topk(allv, k, dim=1, largest=False, sorted=False).indices
    vals[rows] = allv.gather(1, keep)
    idx[rows] = alli.gather(1, keep)


def _nearest(tiles: _Tiles, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest other rows: squared distances and indices (m, k), sorted by (distance, index)."""
    m, dev = tiles.m, tiles.x.device
    vals = torch.full((m, k), torch.inf, dtype=torch.float64, device=dev)
    idx = torch.full((m, k), -1, dtype=torch.int64, device=dev)
    for a0, a1, b0, b1 in tiles.blocks():
        d2 = tiles.squared(a0, a1, b0, b1)
        if a0 == b0:
            d2.fill_diagonal_(torch.inf)  # not its own neighbour
        _merge_nearest(vals, idx, slice(a0, a1), d2, b0, k)
        if a0 != b0:
            _merge_nearest(vals, idx, slice(b0, b1), d2.T, a0, k)
    v, i = vals.cpu().numpy(), idx.cpu().numpy()
    order = np.lexsort((i, v), axis=-1)
    return np.take_along_axis(v, order, axis=1), np.take_along_axis(i, order, axis=1)


def _join(comp: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component labels (0..k - 1) of the rows after edges (i, j) join their components ``comp``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = int(comp.max()) + 1
    graph = coo_matrix((np.ones(len(i)), (comp[i], comp[j])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.intp)[comp]


def _verified_boruvka(
    nbr_d2: np.ndarray, nbr: np.ndarray, core2: np.ndarray, bound2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Borůvka on the candidate edges, each step verified against the rows' bounds (module docstring, 2.).

    Returns the forest's edges (e, 3) as (i, j, w^2), each row's component
    label (0..m_c - 1), and the number of rounds.
    """
    m, k = nbr.shape
    u = np.repeat(np.arange(m), k)
    v = nbr.ravel()
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    w2 = np.maximum(nbr_d2.ravel(), np.maximum(core2[u], core2[v]))
    _, first = np.unique(lo * m + hi, return_index=True)  # (i, j) and (j, i): one tile entry, one weight
    order = first[np.lexsort((hi[first], lo[first], w2[first]))]  # the strict order (w, lo, hi)
    lo, hi, w2 = lo[order], hi[order], w2[order]
    comp = np.arange(m)
    chosen: list[np.ndarray] = []
    rounds = 0
    while True:
        cu, cv = comp[lo], comp[hi]
        cross = np.flatnonzero(cu != cv)
        if not len(cross):
            break
        best = np.full(m, len(lo), dtype=np.int64)  # per component label: its lightest outgoing candidate edge
        np.minimum.at(best, cu[cross], cross)
        np.minimum.at(best, cv[cross], cross)
        bound = np.full(m, np.inf)
        np.minimum.at(bound, comp, bound2)
        labels = np.flatnonzero(best < len(lo))
        ok = labels[w2[best[labels]] < bound[labels]]
        if not len(ok):
            break
        edges = np.unique(best[ok])
        chosen.append(edges)
        rounds += 1
        comp = _join(comp, lo[edges], hi[edges])
    e = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return np.column_stack([lo[e], hi[e], w2[e]]).astype(np.float64), comp, rounds


def _component_minima(tiles: _Tiles, comp: np.ndarray, core2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lightest edge between every two components (m_c, m_c): squared weights and rows i * m + j (i < j)."""
    m, dev = tiles.m, tiles.x.device
    mc = int(comp.max()) + 1
    comp_t = torch.as_tensor(comp, device=dev)
    core_t = torch.as_tensor(core2, device=dev)
    best = torch.full((mc * mc,), torch.inf, dtype=torch.float64, device=dev)  # key c_i * m_c + c_j, i < j
    at = torch.full((mc * mc,), -1, dtype=torch.int64, device=dev)  # the pair i * m + j of best
    at_w = torch.full((mc * mc,), torch.inf, dtype=torch.float64, device=dev)  # the weight ``at`` was found for
    lower = None
    for a0, a1, b0, b1 in tiles.blocks():
        w2 = tiles.reachability(a0, a1, b0, b1, core_t)
        if a0 == b0:  # each pair once: i < j
            if lower is None or lower.shape != w2.shape:
                lower = torch.ones_like(w2, dtype=torch.bool).tril_()
            w2.masked_fill_(lower, torch.inf)
        key = (comp_t[a0:a1, None] * mc + comp_t[None, b0:b1]).view(-1)
        flat = w2.view(-1)
        best.scatter_reduce_(0, key, flat, reduce="amin")
        hit = torch.nonzero(flat == best.take(key), as_tuple=True)[0]  # entries at their pair's current minimum
        hit = hit[flat[hit] < torch.inf]  # not the masked lower triangle of a diagonal tile
        if len(hit):
            kk = key[hit]
            stale = at_w[kk] > best[kk]  # found for a heavier weight in an earlier tile
            at[kk[stale]] = torch.iinfo(torch.int64).max
            at_w[kk] = best[kk]
            pairs = (a0 + hit // (b1 - b0)) * m + (b0 + hit % (b1 - b0))
            at.scatter_reduce_(0, kk, pairs, reduce="amin")  # ties: the first pair (deterministic)
    w = best.view(mc, mc).cpu().numpy()
    p = at.view(mc, mc).cpu().numpy()
    wt, pt = w.T, p.T  # key (c_i, c_j) and (c_j, c_i) are the same component pair
    sym_w = np.minimum(w, wt)
    sym_p = np.where(w < wt, p, np.where(wt < w, pt, np.minimum(p, pt)))
    return np.ascontiguousarray(sym_w), sym_p


def _fold_lightest(best_w: torch.Tensor, best_j: torch.Tensor, rows: slice, w: torch.Tensor, j: torch.Tensor) -> None:
    """Keep each row's lightest edge, ties to the smaller other row (the strict order (w, lo, hi) for a fixed row)."""
    cw, cj = best_w[rows], best_j[rows]
    better = (w < cw) | ((w == cw) & (j < cj))
    best_w[rows] = torch.where(better, w, cw)
    best_j[rows] = torch.where(better, j, cj)


def _boruvka_pass(tiles: _Tiles, comp: np.ndarray, core2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One exact Borůvka step over all tiles: every component's lightest outgoing edge joins it to another.

    Returns the edges (e, 3) as (i, j, w^2) and the new component labels
    (0..m_c' - 1, m_c' <= m_c / 2). Used while too many components are left
    for :func:`_component_minima`'s m_c x m_c table.
    """
    m, dev = tiles.m, tiles.x.device
    comp_t = torch.as_tensor(comp, device=dev)
    core_t = torch.as_tensor(core2, device=dev)
    best_w = torch.full((m,), torch.inf, dtype=torch.float64, device=dev)
    best_j = torch.full((m,), m, dtype=torch.int64, device=dev)
    for a0, a1, b0, b1 in tiles.blocks():
        w2 = tiles.reachability(a0, a1, b0, b1, core_t)
        w2.masked_fill_(comp_t[a0:a1, None] == comp_t[None, b0:b1], torch.inf)  # inside a component (and i = j)
        w, j = torch.min(w2, dim=1)  # ties: the first, i.e. smallest, column
        _fold_lightest(best_w, best_j, slice(a0, a1), w, j + b0)
        if a0 != b0:
            w, j = torch.min(w2, dim=0)
            _fold_lightest(best_w, best_j, slice(b0, b1), w, j + a0)
    w2, j = best_w.cpu().numpy(), best_j.cpu().numpy()
    i = np.arange(m)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((hi, lo, w2, comp))  # per component, its lightest edge in the strict order first
    first = order[np.r_[True, comp[order[1:]] != comp[order[:-1]]]]
    _, pick = np.unique(lo[first] * m + hi[first], return_index=True)
    e = first[pick]
    return np.column_stack([lo[e], hi[e], w2[e]]).astype(np.float64), _join(comp, lo[e], hi[e])


def tiled_mst(
    x: np.ndarray,
    min_samples: int,
    *,
    tile_rows: int | None = None,
    candidates: int = CANDIDATES,
    device: str | torch.device | None = None,
) -> MstResult:
    """MST of the mutual reachability graph of the rows of ``x``, never holding the m x m distance matrix.

    Parameters
    ----------
    x : ndarray (m, f)
        Distinct finite rows (float64 is used).
    min_samples : int
        Core neighbour rank (capped at m - 1, as hdbscan does).
    tile_rows : int, optional
        Rows per tile (default :data:`TILE_ROWS` of the device); memory grows as its square.
    candidates : int
        Neighbours kept per row in the first pass (at least 2 ``min_samples``;
        with only ``min_samples`` no step could be verified).
    device : str or torch.device, optional
        Where the tiles are computed (default: CUDA when available).

    Returns
    -------
    MstResult
        ``path`` ``"tiled"``; see the module docstring for the algorithm and
        :class:`MstResult` for ``info``.

    Raises
    ------
    ValueError
        For fewer than 2 rows, or a ``tile_rows`` / ``candidates`` that is not an integer >= 1.
    """
    dev = resolve_device(device)
    m = len(x)
    if m < 2:
        raise ValueError(f"tiled_mst needs at least 2 rows, got {m}")
    tile_rows = TILE_ROWS.get(dev.type, TILE_ROWS["cpu"]) if tile_rows is None else tile_rows
    check_int("tile_rows", tile_rows, minimum=1)
    check_int("candidates", candidates, minimum=1)
    t0 = time.perf_counter()
    tiles = _Tiles(x, tile_rows, dev)
    kc = _core_rank(m, min_samples)
    k = min(m - 1, max(2 * kc, candidates))
    nbr_d2, nbr = _nearest(tiles, k)
    core2 = nbr_d2[:, kc - 1].copy()
    bound2 = nbr_d2[:, -1] if k < m - 1 else np.full(m, np.inf)  # every other row is a candidate: no bound
    t1 = time.perf_counter()
    forest, comp, rounds = _verified_boruvka(nbr_d2, nbr, core2, bound2)
    mc = int(comp.max()) + 1
    t2 = time.perf_counter()
    info: dict[str, Any] = {
        "path": "tiled",
        "tile_rows": tile_rows,
        "candidates": k,
        "tiles": len(tiles.blocks()),
        "forest_edges": len(forest),
        "boruvka_rounds": rounds,
        "boruvka_passes": 0,
        "neighbour_pass_seconds": t1 - t0,
        "boruvka_seconds": t2 - t1,
    }
    _log.info(
        "tiled MST: %d rows, %d tiles of <= %d rows on %s; neighbour pass %.1f s; %d of %d MST edges verified from "
        "%d candidates per row in %d Boruvka rounds, %d components left",
        m, info["tiles"], tile_rows, dev, t1 - t0, len(forest), m - 1, k, rounds, mc,
    )  # fmt: skip
    edges = [forest]
    while mc * mc > _MAX_COMPONENT_PAIRS:  # too many for the m_c x m_c table: halve them with full passes
        step, comp = _boruvka_pass(tiles, comp, core2)
        edges.append(step)
        mc = int(comp.max()) + 1
        info["boruvka_passes"] += 1
        _log.info("tiled MST: Boruvka pass %d over all tiles, %d components left", info["boruvka_passes"], mc)
    info["components"] = mc
    if mc > 1:
        w2, pairs = _component_minima(tiles, comp, core2)
        from hdbscan._hdbscan_linkage import mst_linkage_core

        tree = mst_linkage_core(w2)  # hdbscan's dense Prim's on the contracted graph
        ci, cj = tree[:, 0].astype(np.intp), tree[:, 1].astype(np.intp)
        p = pairs[ci, cj]
        edges.append(np.column_stack([p // m, p % m, tree[:, 2]]).astype(np.float64))
        info["component_pass_seconds"] = time.perf_counter() - t2
        _log.info("tiled MST: component pass %.1f s (%d x %d lightest edges)", info["component_pass_seconds"], mc, mc)
    out = np.concatenate(edges)
    out[:, 2] = np.sqrt(out[:, 2])
    info["seconds"] = time.perf_counter() - t0
    return MstResult(out, np.sqrt(core2), info)
