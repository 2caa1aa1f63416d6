"""Cross-method alignment of concepts: Jaccard overlap of image sets and an optimal one-to-one matching.

Every method's concept (a NAP, an NMF factor, a NeurFlow group, ...) is reduced
to the set of images it covers, as integer sample ids of one shared universe
(the same images, numbered the same way for every method). For two methods of
one model and layer, with concepts :math:`a_1..a_m` and :math:`b_1..b_k`:

- the overlap of every pair is the Jaccard index (Jaccard 1912)
  :math:`J_{ij} = |a_i \\cap b_j| / |a_i \\cup b_j|`, with the intersections of all
  pairs computed as one matrix product of the 0/1 membership matrices,
  :math:`|a_i \\cap b_j| = (A B^T)_{ij}`, and the unions as
  :math:`|a_i| + |b_j| - |a_i \\cap b_j|`. Two empty sets have Jaccard 0 here (not
  1, and not undefined): an empty concept matches nothing;
- the optimal one-to-one matching maximises :math:`\\sum J_{i\\pi(i)}` over the
  injective maps between the smaller and the larger side (the assignment problem,
  Kuhn 1955 [1]_), solved by :func:`scipy.optimize.linear_sum_assignment`, which
  implements the Jonker-Volgenant variant of Crouse (2016) [2]_ and accepts
  rectangular matrices: ``min(m, k)`` pairs are matched;
- the summary says how many of the row method's concepts have a counterpart:
  a best Jaccard over all of the other method's concepts at or above a threshold
  (:data:`DEFAULT_THRESHOLD`), and, separately, a matched partner at or above it;
- the null replaces the other method's sets by uniformly random sets of the
  same sizes (seeded) and repeats the matching, so that a reader sees whether
  the observed mean matched Jaccard beats what the set sizes alone would give.

The tests check the Jaccard matrix against Python ``set`` arithmetic, the
matching's total against a brute-force maximum over all injections, the summary
counts on a case worked out by hand, and that the null is seeded and lies below
a planted alignment.

References
----------
.. [1] H. W. Kuhn, "The Hungarian method for the assignment problem", Naval
   Research Logistics Quarterly 2 (1955) 83-97.
.. [2] D. F. Crouse, "On implementing 2D rectangular assignment algorithms",
   IEEE Transactions on Aerospace and Electronic Systems 52(4) (2016) 1679-1696.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from scipy import sparse as sp  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from ..nulls import permutation_p_value
from ..runtime import save_figure, write_table  # noqa: E402

__all__ = [
    "DEFAULT_N_PERMUTATIONS",
    "DEFAULT_THRESHOLD",
    "alignment_summary",
    "alignment_table",
    "jaccard_matrix",
    "match",
    "membership",
    "plot_alignment",
    "simulate_null",
]

# A counterpart needs Jaccard >= 0.3. For two concepts of equal size s sharing x images, J = x / (2s - x), so
# J >= 0.3 means x >= 0.46 s: about half of each concept's images are in the other. Two independent random sets
# covering fractions p and q of the images have expected Jaccard ~ pq / (p + q - pq): 0.05 at p = q = 0.1, 0.18
# at p = q = 0.3, 0.33 at p = q = 0.5. So 0.3 is far above chance for concepts covering up to ~30 % of the
# images (NAPs and NeurFlow groups are usually much smaller) but not for very large ones, hence the null.
DEFAULT_THRESHOLD = 0.3
DEFAULT_N_PERMUTATIONS = 200  # enough for a stable q95 (10 draws above it) at a few seconds per layer pair
_DPI = 110
_MAX_TICK_LABELS = 60  # beyond this many concepts on an axis, tick labels are left out
_MAX_ANNOTATED = 30  # matched cells get their value written in when both sides have at most this many


# -- membership and Jaccard -------------------------------------------------------------------------


def membership(sets: Sequence[np.ndarray], universe: np.ndarray) -> np.ndarray:
    """Bool membership matrix of integer id sets over a universe of ids.

    Parameters
    ----------
    sets : sequence of n_sets 1-D integer arrays
        The image set of each concept, as ids that are elements of ``universe``
        (sample ids or positions, the same numbering for every method). Order
        and repeats within a set do not matter; an empty set is allowed (any
        dtype when empty).
    universe : ndarray of shape (n_universe,), integer
        The distinct ids of all images; column ``j`` of the result is
        ``universe[j]``.

    Returns
    -------
    ndarray of shape (n_sets, n_universe), bool
        ``out[i, j]`` is True iff ``universe[j]`` is in ``sets[i]``.

    Raises
    ------
    ValueError
        When ``sets`` or ``universe`` is empty, ``universe`` is not 1-D or has
        repeated ids, a set is not 1-D, or a set has ids outside ``universe``
        (a mismatched universe; the message names the set and some of the ids).
    TypeError
        When ``universe`` or a non-empty set is not of an integer dtype.
    """
    universe = np.asarray(universe)
    if universe.ndim != 1 or universe.size == 0:
        raise ValueError(f"universe must be a non-empty 1-D array of ids, got shape {universe.shape}")
    if not np.issubdtype(universe.dtype, np.integer):
        raise TypeError(f"universe must hold integer ids, got dtype {universe.dtype}")
    order = np.argsort(universe, kind="stable")
    ordered = universe[order]
    if np.any(ordered[1:] == ordered[:-1]):
        raise ValueError(f"universe has repeated ids, e.g. {ordered[1:][ordered[1:] == ordered[:-1]][:5].tolist()}")
    if len(sets) == 0:
        raise ValueError("sets is empty: no concept to build a membership matrix for")
    out = np.zeros((len(sets), universe.size), dtype=bool)
    for i, s in enumerate(sets):
        s = np.asarray(s)
        if s.ndim != 1:
            raise ValueError(f"set {i} must be 1-D, got shape {s.shape}")
        if s.size == 0:
            continue
        if not np.issubdtype(s.dtype, np.integer):
            raise TypeError(f"set {i} must hold integer ids, got dtype {s.dtype}")
        pos = np.searchsorted(ordered, s)
        found = (pos < ordered.size) & (ordered[np.minimum(pos, ordered.size - 1)] == s)
        if not found.all():
            missing = np.unique(s[~found])
            raise ValueError(
                f"set {i} has {missing.size} id(s) outside the universe (mismatched universe?), "
                f"e.g. {missing[:5].tolist()}"
            )
        out[i, order[pos]] = True
    return out


def _check_membership(name: str, X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype != np.bool_:
        raise TypeError(f"{name} must be a bool membership matrix, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (n_sets, n_universe) matrix, got shape {X.shape}")
    return X


def _check_pair(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A, B = _check_membership("A", A), _check_membership("B", B)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A and B must be over the same universe: A has {A.shape[1]} columns, B has {B.shape[1]} "
            "(mismatched universe)"
        )
    return A, B


def _sparse(X: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(X, dtype=np.int64)


def _jaccard_sparse(A: sp.csr_matrix, B: sp.csr_matrix) -> np.ndarray:
    # |A ∩ B| as an integer product of the 0/1 matrices, (m, n) @ (n, k) -> (m, k). Sparse, because concepts
    # cover few of the images: ~25x faster than a dense BLAS product for 2 % density at n = 50 000, and exact.
    inter = (A @ B.T).toarray()
    union = np.asarray(A.sum(axis=1)).reshape(-1, 1) + np.asarray(B.sum(axis=1)).reshape(1, -1) - inter
    # empty vs empty: union 0, Jaccard defined as 0
    return np.divide(inter, union, out=np.zeros(inter.shape, dtype=np.float64), where=union > 0)


def jaccard_matrix(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Jaccard index between every set of ``A`` and every set of ``B``.

    ``J[i, j] = |A_i ∩ B_j| / |A_i ∪ B_j|``, with ``|A ∩ B| = A @ B.T`` and
    ``|A ∪ B| = |A| + |B| - |A ∩ B|`` computed for all pairs at once (a sparse integer product, exact). Two empty
    sets have Jaccard 0 (by definition here; it is 0/0 otherwise).

    Parameters
    ----------
    A : ndarray of shape (m, n_universe), bool
        Membership of the first method's m concepts (rows), e.g. from :func:`membership`.
    B : ndarray of shape (k, n_universe), bool
        Membership of the second method's k concepts, over the same universe (same columns).

    Returns
    -------
    ndarray of shape (m, k), float64
        Values in [0, 1].

    Raises
    ------
    TypeError
        When ``A`` or ``B`` is not bool.
    ValueError
        When ``A`` or ``B`` is not 2-D or has no rows or no columns, or their
        numbers of columns differ (mismatched universe).
    """
    A, B = _check_pair(A, B)
    return _jaccard_sparse(_sparse(A), _sparse(B))


# -- matching --------------------------------------------------------------------------------------


def _check_scores(J: np.ndarray) -> np.ndarray:
    J = np.asarray(J, dtype=np.float64)
    if J.ndim != 2 or J.shape[0] == 0 or J.shape[1] == 0:
        raise ValueError(f"J must be a non-empty 2-D (m, k) matrix, got shape {J.shape}")
    if not np.isfinite(J).all():
        raise ValueError(f"J must be finite, got {int((~np.isfinite(J)).sum())} non-finite value(s)")
    return J


def match(J: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of rows to columns that maximises the total of ``J``.

    Solves ``max sum_i J[rows[i], cols[i]]`` over one-to-one pairings of
    ``min(m, k)`` rows with as many distinct columns (the rectangular assignment
    problem) with ``scipy.optimize.linear_sum_assignment(J, maximize=True)``.
    Among optimal matchings with equal totals, scipy's choice is kept (it is
    deterministic).

    Parameters
    ----------
    J : ndarray of shape (m, k)
        Scores, e.g. :func:`jaccard_matrix`; any finite values.

    Returns
    -------
    rows : ndarray of shape (min(m, k),), int64
        Matched row indices, increasing.
    cols : ndarray of shape (min(m, k),), int64
        The column matched with each of ``rows``, all distinct.
    values : ndarray of shape (min(m, k),), float64
        ``J[rows, cols]``.

    Raises
    ------
    ValueError
        When ``J`` is not 2-D, is empty, or has a NaN or infinite value.
    """
    J = _check_scores(J)
    rows, cols = linear_sum_assignment(J, maximize=True)
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    return rows, cols, J[rows, cols]


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return threshold


def _check_names(names_a: Sequence[str], names_b: Sequence[str], shape: tuple[int, int]) -> None:
    if len(names_a) != shape[0] or len(names_b) != shape[1]:
        raise ValueError(f"names do not fit J of shape {shape}: {len(names_a)} names_a, {len(names_b)} names_b")


def alignment_table(
    names_a: Sequence[str], names_b: Sequence[str], J: np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The matched pairs of :func:`match` with their Jaccard and whether it reaches ``threshold``.

    Parameters
    ----------
    names_a : sequence of m str
        Names of the row concepts (method A).
    names_b : sequence of k str
        Names of the column concepts (method B).
    J : ndarray of shape (m, k)
        Jaccard matrix, :func:`jaccard_matrix`.
    threshold : float, default :data:`DEFAULT_THRESHOLD`
        A pair is ``above_threshold`` when its Jaccard is >= ``threshold``.

    Returns
    -------
    DataFrame
        One row per matched pair (``min(m, k)`` rows, in the order of A's
        concepts) with columns ``index_a``, ``concept_a``, ``index_b``,
        ``concept_b``, ``jaccard``, ``above_threshold`` (bool) and
        ``best_jaccard_a`` (the highest Jaccard of ``concept_a`` with any of B's
        concepts, matched or not: it exceeds ``jaccard`` where the matching gave
        A's best partner to another concept).

    Raises
    ------
    ValueError
        As :func:`match`; when the names do not fit ``J``'s shape, or
        ``threshold`` is outside [0, 1].
    """
    J = _check_scores(J)
    _check_names(names_a, names_b, J.shape)
    threshold = _check_threshold(threshold)
    rows, cols, values = match(J)
    return pd.DataFrame(
        {
            "index_a": rows,
            "concept_a": [names_a[i] for i in rows],
            "index_b": cols,
            "concept_b": [names_b[j] for j in cols],
            "jaccard": values,
            "above_threshold": values >= threshold,
            "best_jaccard_a": J[rows].max(axis=1),
        }
    )


# -- null and summary ------------------------------------------------------------------------------


def _check_n_permutations(n_permutations: int) -> int:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer) or n_permutations < 1:
        raise ValueError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    return int(n_permutations)


def _null(A: np.ndarray, B: np.ndarray, n_permutations: int, seed: int | np.random.Generator) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = A.shape[1]
    sizes = B.sum(axis=1)  # (k,)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    data = np.ones(int(indptr[-1]), dtype=np.int64)
    A_sparse = _sparse(A)
    stats = np.empty(n_permutations, dtype=np.float64)
    for p in range(n_permutations):
        # row i of R: |B_i| distinct ids drawn uniformly; (k, n_universe) built in CSR directly
        indices = np.concatenate([rng.choice(n, size=int(s), replace=False) for s in sizes])
        R = sp.csr_matrix((data, indices, indptr), shape=B.shape)
        stats[p] = match(_jaccard_sparse(A_sparse, R))[2].mean()
    return stats


def simulate_null(
    A: np.ndarray, B: np.ndarray, *, n_permutations: int = DEFAULT_N_PERMUTATIONS, seed: int | np.random.Generator
) -> np.ndarray:
    """Mean matched Jaccard when B's sets are replaced by random sets of the same sizes.

    For each draw, every set ``B_j`` is replaced by ``|B_j|`` ids drawn uniformly
    without replacement from the universe (independently per set and per draw),
    and the mean of :func:`match`'s values on :func:`jaccard_matrix` ``(A, R)`` is
    recorded. ``A`` is kept as it is.

    NOTE: this null keeps the set sizes only. Two methods that both follow the
    class structure of the data overlap more than random sets of those sizes
    even when they find different concepts, so beating this null says the
    alignment is not explained by set sizes, not that the concepts are the same.

    Parameters
    ----------
    A : ndarray of shape (m, n_universe), bool
        Membership of method A's concepts.
    B : ndarray of shape (k, n_universe), bool
        Membership of method B's concepts; only its row sums are used.
    n_permutations : int, default :data:`DEFAULT_N_PERMUTATIONS`
        Number of random draws, >= 1.
    seed : int or numpy.random.Generator
        Seed of ``numpy.random.default_rng``; equal seeds give equal results.

    Returns
    -------
    ndarray of shape (n_permutations,), float64
        The mean matched Jaccard of each draw.

    Raises
    ------
    TypeError, ValueError
        As :func:`jaccard_matrix`; ValueError when ``n_permutations`` < 1.
    """
    A, B = _check_pair(A, B)
    return _null(A, B, _check_n_permutations(n_permutations), seed)


def alignment_summary(
    A: np.ndarray,
    B: np.ndarray,
    *,
    model: str,
    layer: str,
    method_a: str,
    method_b: str,
    threshold: float = DEFAULT_THRESHOLD,
    n_permutations: int = DEFAULT_N_PERMUTATIONS,
    seed: int,
) -> dict[str, Any]:
    """One summary row for the concepts of two methods on one model and layer.

    Parameters
    ----------
    A : ndarray of shape (m, n_universe), bool
        Membership of method A's concepts (e.g. the NAPs: the counts below are
        "how many of A's concepts have a counterpart in B").
    B : ndarray of shape (k, n_universe), bool
        Membership of method B's concepts over the same universe.
    model, layer, method_a, method_b : str
        Copied into the row.
    threshold : float, default :data:`DEFAULT_THRESHOLD`
        Jaccard at or above which a concept has a counterpart.
    n_permutations : int, default :data:`DEFAULT_N_PERMUTATIONS`
        Draws of :func:`simulate_null`.
    seed : int
        Seed of the null.

    Returns
    -------
    dict
        ``model``, ``layer``, ``method_a``, ``method_b``; ``n_universe``;
        ``n_a`` (m) and ``n_b`` (k); ``n_matched`` (``min(m, k)``);
        ``threshold``; ``n_a_with_counterpart``: A's concepts whose best
        Jaccard over all of B's concepts is >= ``threshold``;
        ``n_b_with_counterpart``: the same for B over A;
        ``n_matched_above``: matched pairs with Jaccard >= ``threshold``
        (at most ``n_a_with_counterpart``: the one-to-one matching can give two
        A concepts' common best partner to only one of them);
        ``mean_matched_jaccard``; ``null_mean`` and ``null_q95``: mean and 95 %
        quantile of the null's mean matched Jaccard; ``p_value``: the share of
        null draws at or above the observed one, ``(1 + #{null >= observed}) /
        (1 + n_permutations)``; ``n_permutations``, ``seed``.

    Raises
    ------
    TypeError, ValueError
        As :func:`jaccard_matrix` (empty inputs, mismatched universe) and
        :func:`simulate_null`; ValueError when ``threshold`` is outside [0, 1].
    """
    A, B = _check_pair(A, B)
    threshold = _check_threshold(threshold)
    n_permutations = _check_n_permutations(n_permutations)
    J = _jaccard_sparse(_sparse(A), _sparse(B))  # (m, k)
    values = match(J)[2]
    observed = float(values.mean())
    null = _null(A, B, n_permutations, seed)
    return {
        "model": model,
        "layer": layer,
        "method_a": method_a,
        "method_b": method_b,
        "n_universe": int(A.shape[1]),
        "n_a": int(A.shape[0]),
        "n_b": int(B.shape[0]),
        "n_matched": int(values.size),
        "threshold": threshold,
        "n_a_with_counterpart": int((J.max(axis=1) >= threshold).sum()),
        "n_b_with_counterpart": int((J.max(axis=0) >= threshold).sum()),
        "n_matched_above": int((values >= threshold).sum()),
        "mean_matched_jaccard": observed,
        "null_mean": float(null.mean()),
        "null_q95": float(np.quantile(null, 0.95)),
        "p_value": permutation_p_value(observed, null),
        "n_permutations": n_permutations,
        "seed": seed,
    }


# -- figure ----------------------------------------------------------------------------------------


def plot_alignment(
    J: np.ndarray,
    names_a: Sequence[str],
    names_b: Sequence[str],
    matched: Sequence[np.ndarray],
    path: str | Path,
    title: str,
    *,
    label_a: str = "A",
    label_b: str = "B",
) -> Path:
    """Heatmap of the Jaccard matrix with the matched cells outlined; the numbers go to a CSV beside it.

    Parameters
    ----------
    J : ndarray of shape (m, k)
        Jaccard matrix (rows: method A, columns: method B), drawn on a fixed
        [0, 1] colour scale.
    names_a : sequence of m str
        Row labels (shown when m <= 60).
    names_b : sequence of k str
        Column labels (shown when k <= 60).
    matched : (rows, cols) or (rows, cols, values)
        The matched cells, e.g. ``match(J)``; only ``rows`` and ``cols`` are used.
    path : str or Path
        The PNG, written through :func:`conceptscope.runtime.save_figure`; the
        long table ``concept_a, concept_b, jaccard, matched`` (one row per cell)
        is written to ``path.with_suffix(".csv")`` through
        :func:`conceptscope.runtime.write_table`.
    title : str
        Figure title.
    label_a, label_b : str
        Axis labels (method names).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        As :func:`match` for ``J``; when the names do not fit ``J``, ``rows``
        and ``cols`` differ in length, an index is out of range, or a row or
        column is matched twice.
    """
    J = _check_scores(J)
    _check_names(names_a, names_b, J.shape)
    rows, cols = np.asarray(matched[0], dtype=np.int64), np.asarray(matched[1], dtype=np.int64)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError(f"matched rows and cols must be 1-D of one length, got {rows.shape} and {cols.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= J.shape[0] or cols.min() < 0 or cols.max() >= J.shape[1]):
        raise ValueError(f"matched indices out of range for J of shape {J.shape}")
    if np.unique(rows).size != rows.size or np.unique(cols).size != cols.size:
        raise ValueError("matched is not one-to-one: a row or a column appears twice")
    path = Path(path)
    m, k = J.shape
    fig, ax = plt.subplots(
        figsize=(min(max(3.0 + 0.22 * k, 4.5), 20.0), min(max(1.8 + 0.22 * m, 3.0), 20.0)), constrained_layout=True
    )
    im = ax.imshow(J, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="Jaccard of image sets")
    for i, j in zip(rows, cols, strict=True):
        if J[i, j] == 0:  # a pair the matching had to form without any overlap: left unmarked (the CSV keeps it)
            continue
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
        if m <= _MAX_ANNOTATED and k <= _MAX_ANNOTATED:
            ax.text(
                j,
                i,
                f"{J[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if J[i, j] < 0.6 else "black",
            )
    if m <= _MAX_TICK_LABELS:
        ax.set_yticks(range(m), [str(s) for s in names_a], fontsize=6)
    if k <= _MAX_TICK_LABELS:
        ax.set_xticks(range(k), [str(s) for s in names_b], fontsize=6, rotation=90)
    ax.set(xlabel=f"{label_b} ({k})", ylabel=f"{label_a} ({m})")
    ax.set_title(title, fontsize=9)
    is_matched = np.zeros(J.shape, dtype=bool)
    is_matched[rows, cols] = True
    table = pd.DataFrame(
        {
            "concept_a": np.repeat(np.asarray([str(s) for s in names_a], dtype=object), k),
            "concept_b": np.tile(np.asarray([str(s) for s in names_b], dtype=object), m),
            "jaccard": J.ravel(),
            "matched": is_matched.ravel(),
        }
    )
    try:
        save_figure(fig, path, dpi=_DPI)
    finally:
        plt.close(fig)
    write_table(table, path.with_suffix(".csv"), index=False)
    return path
