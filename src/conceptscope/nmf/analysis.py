"""Analysis of a coupled NMF: factor similarity, class weights, pixel masks, latent neighbours.

Reproduces the analysis side of Saini and Papalexakis, "Analyzing
Representations inside Convolutional Neural Networks". The coupled
factorization (:mod:`conceptscope.nmf.solvers`) gives, over N examples and d
latent factors, ``P_i`` (H*W pixels x d) per input channel i, ``O_j`` (C*H*W
rows x d) per probed layer j, and the shared ``F`` (d x N): the weight of every
example in every factor. This module takes those as plain arrays (numpy or
torch) and implements:

- :func:`cosine_similarity` and :func:`diagonal_dominance` of the columns of
  ``O_j`` (paper Fig. 2: the similarity matrix becomes more diagonal with
  depth), :func:`eigen_mean` of it (Fig. 3: the mean of the K largest
  eigenvalues falls with depth);
- :func:`class_weights`, :func:`factor_table` and :func:`top_examples`
  (Table 1: the classes, and on CIFAR-100 the superclass, each factor stands
  for), :func:`superclass_chance` (the chance that ``top`` classes drawn at
  random share a superclass) and a label-permutation null of each factor's
  top-class weight (Table 1-2: is the factor class-coherent);
- :func:`pixel_masks` (Fig. 4: the pixels a factor weighs, thresholded at
  their median);
- :func:`latent_neighbours` and :func:`neighbour_distribution` (Fig. 4-5: the
  classes of an example's nearest neighbours in the latent space of ``F``'s
  columns), :func:`neighbour_purity` (the share of an example's latent
  neighbours with its own label, against a label-permutation null),
  :func:`accuracy_vs_impurity` (the model's accuracy against the share of an
  example's latent neighbours from other classes).

The figures of these numbers are in :mod:`conceptscope.nmf.views`.

Positions index the examples in the column order of ``F``, which is the order
of the :class:`~conceptscope.data.ImageSet` the factorization was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..checks import check_int
from ..nulls import permutation_p_value
from .settings import NmfSettings

__all__ = [
    "N_PERMUTATIONS",
    "accuracy_vs_impurity",
    "all_latent_neighbours",
    "class_weights",
    "cosine_similarity",
    "diagonal_dominance",
    "eigen_mean",
    "factor_table",
    "latent_neighbours",
    "neighbour_distribution",
    "neighbour_purity",
    "pixel_masks",
    "superclass_chance",
    "top_examples",
]

_KNN_BUDGET = 8_000_000  # float64 elements of the (queries x N x d) difference block computed at once
N_PERMUTATIONS = 1000  # label permutations of the nulls of factor_table and neighbour_purity
_TIE = 1e-12  # a class weight must beat its null by more than float summation noise (weights lie in [0, 1])


# -- inputs ------------------------------------------------------------------------------------------


def _array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested sequence) as float64 numpy, checked for ``ndim``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _factors(F: Any) -> np.ndarray:
    """``F`` (d, N) as float64; non-negative and finite."""
    F = _array(F, "F", 2)
    if not np.isfinite(F).all():
        raise ValueError("F has non-finite entries")
    if (F < 0).any():
        raise ValueError(f"F must be non-negative (an NMF factor), min is {F.min():.3g}")
    return F


def _ints(x: Any) -> np.ndarray:
    """A numpy array of ``x`` (numpy array, torch tensor or sequence), dtype kept."""
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)


def _labels(labels: Any, n: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """``labels`` checked to be ``n`` integers in [0, n_classes), as int64."""
    labels = _ints(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one per column of F), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {labels.dtype}")
    check_int("n_classes", n_classes, minimum=1)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def _square(S: Any, name: str = "S") -> np.ndarray:
    S = _array(S, name, 2)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"{name} must be square, got shape {S.shape}")
    return S


def _name(names: Sequence[str] | None, c: int) -> str:
    return str(names[c]) if names is not None and 0 <= c < len(names) else str(c)


# -- Fig. 2-3: factor similarity -------------------------------------------------------------------


def cosine_similarity(O: Any) -> np.ndarray:  # noqa: E741 - the paper's O_j
    """Cosine similarity of the columns of a factor matrix (paper Fig. 2).

    Parameters
    ----------
    O : array or Tensor, shape (rows, d)
        E.g. a layer factor ``O_j`` (C*H*W x d) of the coupled NMF.

    Returns
    -------
    ndarray, shape (d, d), float64
        ``S[a, b] = <o_a, o_b> / (|o_a| |o_b|)``; symmetric, diagonal 1. A
        column that is all zero has similarity 0 with every column, itself
        included (so its diagonal entry is 0, not NaN).
    """
    mat = _array(O, "O", 2)
    norms = np.linalg.norm(mat, axis=0)
    unit = np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)
    S = unit.T @ unit
    S = (S + S.T) / 2.0  # exactly symmetric whatever the BLAS summation order
    np.clip(S, -1.0, 1.0, out=S)
    return S


def diagonal_dominance(S: Any) -> float:
    """``1 - mean |off-diagonal entry|`` of a similarity matrix (d, d).

    1 means perfectly diagonal (factors pairwise orthogonal); 0 means every
    pair of distinct factors has |similarity| 1. The diagonal is ignored. A
    1 x 1 matrix has no off-diagonal entry and gives 1.
    """
    S = _square(S)
    d = S.shape[0]
    if d < 2:
        return 1.0
    off = ~np.eye(d, dtype=bool)
    return float(1.0 - np.abs(S[off]).mean())


def eigen_mean(S: Any, k: int) -> float:
    """Mean of the ``k`` largest eigenvalues of a symmetric matrix (paper Fig. 3).

    Parameters
    ----------
    S : array, shape (d, d)
        Symmetric (within rtol 1e-5, atol 1e-6), e.g. :func:`cosine_similarity`;
        it is symmetrized as (S + S^T) / 2 before the eigendecomposition.
    k : int
        1 <= k <= d.

    Notes
    -----
    The eigenvalues (``numpy.linalg.eigvalsh``, which returns them ascending)
    are sorted in descending order and the first ``k`` averaged. The authors'
    code took the first k eigenvalues in the order the eigensolver returned
    them, unsorted; this function deliberately differs and averages the k
    largest, which is what the paper describes.
    """
    S = _square(S)
    d = S.shape[0]
    k = check_int("k", k, minimum=1, maximum=d)
    if not np.allclose(S, S.T, rtol=1e-5, atol=1e-6):
        raise ValueError("S must be symmetric")
    values = np.sort(np.linalg.eigvalsh((S + S.T) / 2.0))[::-1]
    return float(values[:k].mean())


# -- Table 1: what the factors stand for ---------------------------------------------------------------


def class_weights(F: Any, labels: Any, n_classes: int) -> np.ndarray:
    """Weight of each class in each factor (paper Table 1).

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
        Non-negative factor weight of every example.
    labels : array of int, shape (N,)
        Class of every example, in [0, n_classes).
    n_classes : int

    Returns
    -------
    ndarray, shape (d, n_classes), float64
        ``W[k, c] = sum_{n: labels[n] = c} F[k, n] / sum_n F[k, n]``; each row
        sums to 1. A factor with no mass (row of zeros) gets a row of zeros.
    """
    F = _factors(F)
    labels = _labels(labels, F.shape[1], int(n_classes))
    per_class = np.zeros((F.shape[0], int(n_classes)))
    np.add.at(per_class.T, labels, F.T)
    mass = F.sum(axis=1, keepdims=True)
    return np.divide(per_class, mass, out=np.zeros_like(per_class), where=mass > 0)


def _entropy(w: np.ndarray) -> np.ndarray:
    """Natural-log entropy of each row of ``w`` (0 log 0 = 0)."""
    logs = np.log(w, out=np.zeros_like(w), where=w > 0)
    return -(w * logs).sum(axis=1) + 0.0  # + 0.0: no -0.0


def _class_to_superclass(labels: np.ndarray, superclass_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Superclass of each class (-1 when the class has no example), from the per-example labels."""
    out = np.full(n_classes, -1, dtype=np.int64)
    for c in np.unique(labels):
        sup = np.unique(superclass_labels[labels == c])
        if sup.size != 1:
            raise ValueError(f"class {c} has examples in several superclasses {sup.tolist()}")
        out[c] = sup[0]
    return out


def factor_table(
    F: Any,
    labels: Any,
    class_names: Sequence[str],
    superclass_labels: Any = None,
    superclass_names: Sequence[str] | None = None,
    top: int = 3,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per latent factor: its top classes, superclass, entropy, mass and coherence (paper Table 1).

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
        Non-negative factor weight of every example.
    labels : array of int, shape (N,)
        Class of every example, indexing ``class_names``.
    class_names : sequence of str
        Name of every class; ``len(class_names)`` is the number of classes.
    superclass_labels : array of int, shape (N,), optional
        Superclass of every example (CIFAR-100's coarse labels). Every class
        must lie in a single superclass.
    superclass_names : sequence of str, optional
        Names of the superclasses; default their indices.
    top : int
        Classes listed per factor.
    n_permutations : int
        Label permutations of the null of the top-class weight (>= 1).
    seed : int
        Seed of the permutations (``numpy.random.default_rng``); the table is
        a deterministic function of its arguments.

    Returns
    -------
    DataFrame
        Columns ``factor``; ``top_classes`` (``"7 (0.41), 1 (0.22), 9 (0.10)"``:
        class name and :func:`class_weights` weight, heaviest first, ties by
        class index); ``top_class``, ``top_class_weight``;
        ``top_class_weight_null95``, the 95th percentile (``numpy.quantile``,
        linear) of the factor's top-class weight over ``n_permutations``
        permutations of the labels among the examples (class sizes kept, F
        kept), and ``class_coherent``: the factor has mass and its top-class
        weight exceeds that percentile (by more than 1e-12, float summation
        noise: a factor uniform over the examples has the same top-class
        weight under every permutation and is not coherent); with
        superclasses ``superclass``, ``superclass_weight`` (the heaviest
        superclass; a superclass's weight is the sum of the weights of its
        classes), ``top_share_superclass`` (whether the ``top`` classes all
        lie in one superclass) and ``superclass_chance`` (the same for every
        row: :func:`superclass_chance` of the classes that have examples, the
        probability that ``top`` of them drawn at random share a superclass);
        ``entropy`` (natural log) of the class weights, between 0 (one class)
        and log(n_classes) (uniform); ``mass`` = sum of ``F[k]``. A factor
        without mass has empty class columns, NaN weights and entropy, and is
        not coherent.
    """
    F = _factors(F)
    names = list(class_names)
    n_classes = len(names)
    labels = _labels(labels, F.shape[1], n_classes)
    top = check_int("top", top, minimum=1)
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    W = class_weights(F, labels, n_classes)
    mass = F.sum(axis=1)
    alive = mass > 0
    entropy = np.where(alive, _entropy(W), np.nan)
    order = np.argsort(-W, axis=1, kind="stable")[:, :top]
    top_weight = np.where(alive, W[np.arange(F.shape[0]), order[:, 0]], np.nan)
    null95 = np.where(alive, _top_weight_null95(F, labels, n_classes, n_permutations, seed), np.nan)
    table: dict[str, Any] = {
        "factor": np.arange(F.shape[0]),
        "top_classes": [
            ", ".join(f"{names[c]} ({W[k, c]:.2f})" for c in order[k]) if alive[k] else "" for k in range(F.shape[0])
        ],
        "top_class": [names[order[k, 0]] if alive[k] else "" for k in range(F.shape[0])],
        "top_class_weight": top_weight,
        "top_class_weight_null95": null95,
        "class_coherent": alive & (np.nan_to_num(top_weight) > np.nan_to_num(null95) + _TIE),
    }
    if superclass_labels is not None:
        sup_raw = _ints(superclass_labels)
        n_sup = len(superclass_names) if superclass_names is not None else int(sup_raw.max(initial=-1)) + 1
        sup = _labels(sup_raw, F.shape[1], n_sup, name="superclass_labels")
        of_class = _class_to_superclass(labels, sup, n_classes)
        SW = np.zeros((F.shape[0], n_sup))
        has = of_class >= 0
        np.add.at(SW.T, of_class[has], W[:, has].T)  # superclass weight = sum of its classes' weights
        best = np.argmax(SW, axis=1)
        table["superclass"] = [_name(superclass_names, int(s)) if alive[k] else "" for k, s in enumerate(best)]
        table["superclass_weight"] = np.where(alive, SW[np.arange(F.shape[0]), best], np.nan)
        table["top_share_superclass"] = [
            bool(alive[k]) and len({int(of_class[c]) for c in order[k]}) == 1 for k in range(F.shape[0])
        ]
        table["superclass_chance"] = superclass_chance(of_class, top)
    table["entropy"] = entropy
    table["mass"] = mass
    return pd.DataFrame(table)


def superclass_chance(class_superclass: Any, top: int) -> float:
    """Probability that ``top`` classes drawn at random all lie in one superclass (the null of Table 1).

    Parameters
    ----------
    class_superclass : array of int, shape (n_classes,)
        Superclass of every class; a negative entry marks a class left out
        (one without examples, as :func:`factor_table` marks them).
    top : int
        Classes drawn, uniformly without replacement among the classes kept.

    Returns
    -------
    float
        ``sum_s C(n_s, top) / C(n, top)`` with ``n_s`` the classes kept in
        superclass s and ``n`` all classes kept (exact integer binomials);
        NaN when fewer than ``top`` classes are kept.
    """
    of_class = _ints(class_superclass)
    if of_class.ndim != 1 or not np.issubdtype(of_class.dtype, np.integer):
        raise ValueError(f"class_superclass must be 1-D integers, got shape {of_class.shape}, dtype {of_class.dtype}")
    top = check_int("top", top, minimum=1)
    kept = of_class[of_class >= 0]
    total = math.comb(int(kept.size), top)
    if total == 0:
        return float("nan")
    return sum(math.comb(int(n_s), top) for n_s in np.unique(kept, return_counts=True)[1]) / total


def _top_weight_null(F: np.ndarray, labels: np.ndarray, n_classes: int, n_permutations: int, seed: int) -> np.ndarray:
    """Top-class weight of every factor under ``n_permutations`` label permutations, shape (d, n_permutations).

    Permutation p reorders the labels by ``default_rng(seed)``'s p-th ``permutation(N)`` (F kept); a
    factor without mass gets 0.
    """
    d, n = F.shape
    rng = np.random.default_rng(seed)
    offset = (np.arange(d) * n_classes)[:, None]  # factor k's classes are bins k*C ... k*C + C - 1
    mass = F.sum(axis=1)
    flat = F.ravel()
    out = np.empty((d, n_permutations))
    for p in range(n_permutations):
        per_class = np.bincount((offset + labels[rng.permutation(n)][None, :]).ravel(), flat, d * n_classes)
        top = per_class.reshape(d, n_classes).max(axis=1)
        out[:, p] = np.divide(top, mass, out=np.zeros(d), where=mass > 0)
    return out


def _top_weight_null95(F: np.ndarray, labels: np.ndarray, n_classes: int, n_permutations: int, seed: int) -> np.ndarray:
    """95th percentile of every factor's top-class weight under label permutations, shape (d,)."""
    return np.quantile(_top_weight_null(F, labels, n_classes, n_permutations, seed), 0.95, axis=1)


def top_examples(F: Any, k: int) -> np.ndarray:
    """Positions of the ``k`` examples with the largest weight in each factor, shape (d, k).

    Row ``f`` lists positions (columns of ``F``) by ``F[f]`` descending, ties
    by position. ``1 <= k <= N``.
    """
    F = _factors(F)
    n = F.shape[1]
    k = check_int("k", k, minimum=1, maximum=n)
    return np.argsort(-F, axis=1, kind="stable")[:, :k]


# -- Fig. 4: pixel masks ---------------------------------------------------------------------------


def pixel_masks(P: Sequence[Any], size: tuple[int, int]) -> np.ndarray:
    """Median-thresholded pixel mask of every factor (paper Fig. 4), shape (d, H, W), bool.

    Parameters
    ----------
    P : sequence of arrays or Tensors, each (H*W, d)
        Pixel factors, one per input channel; rows are pixels in row-major
        (H, W) order, as the images were flattened for the factorization.
    size : (H, W)

    Returns
    -------
    ndarray of bool, shape (d, H, W)
        A factor's pixel weights summed over the channels, reshaped to the
        image, True where strictly above their median over the H*W pixels: for
        distinct weights exactly floor(H*W / 2) pixels are True.
    """
    weights = _pixel_weights(P, size)
    med = np.median(weights.reshape(weights.shape[0], -1), axis=1)
    return weights > med[:, None, None]


def _pixel_weights(P: Sequence[Any], size: tuple[int, int]) -> np.ndarray:
    """Channel-summed pixel weights of every factor, shape (d, H, W)."""
    if len(P) == 0:
        raise ValueError("P must hold at least one pixel factor (one per input channel)")
    mats = [_array(p, f"P[{i}]", 2) for i, p in enumerate(P)]
    if len({m.shape for m in mats}) != 1:
        raise ValueError(f"the pixel factors differ in shape: {[m.shape for m in mats]}")
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1 or h * w != mats[0].shape[0]:
        raise ValueError(f"size {tuple(size)} does not match the {mats[0].shape[0]} pixel rows of P")
    return np.sum(mats, axis=0).T.reshape(-1, h, w)


# -- Fig. 4-5: latent neighbours ---------------------------------------------------------------------


def _neighbours(X: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest rows of ``X`` (N, d) to each query row, query excluded, shape (len(queries), k).

    Euclidean distance ``sqrt(sum((x - q)^2))``, nearest first; equal distances
    by position (the order of a stable argsort).
    """
    n, d = X.shape
    out = np.empty((queries.size, k), dtype=np.int64)
    step = max(1, _KNN_BUDGET // max(n * d, 1))
    for start in range(0, queries.size, step):
        q = queries[start : start + step]
        dist = np.sqrt(np.square(X[None, :, :] - X[q][:, None, :]).sum(axis=-1))
        dist[np.arange(q.size), q] = np.inf
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        for r in range(q.size):
            cand = np.flatnonzero(dist[r] <= kth[r])
            out[start + r] = cand[np.lexsort((cand, dist[r, cand]))][:k]
    return out


def latent_neighbours(F: Any, query: int, k: int = NmfSettings.knn) -> np.ndarray:
    """Positions of the ``k`` nearest examples to ``query`` in the latent space (paper Fig. 4-5).

    Each example is the column ``F[:, n]`` (its d factor weights); distances
    are euclidean. The query itself is excluded (other examples at distance 0
    are not). Nearest first, equal distances by position. ``1 <= k <= N - 1``.
    """
    F = _factors(F)
    n = F.shape[1]
    query = check_int("query", query, minimum=0, maximum=n - 1)
    k = check_int("k", k, minimum=1, maximum=n - 1)  # the other examples
    return _neighbours(np.ascontiguousarray(F.T), np.array([query]), k)[0]


def all_latent_neighbours(F: Any, k: int = NmfSettings.knn) -> np.ndarray:
    """:func:`latent_neighbours` of every example at once, shape (N, k) (computed once, shared by
    :func:`neighbour_purity` and :func:`accuracy_vs_impurity`)."""
    F = _factors(F)
    n = F.shape[1]
    k = check_int("k", k, minimum=1, maximum=n - 1)  # the other examples
    return _neighbours(np.ascontiguousarray(F.T), np.arange(n), k)


def _given_neighbours(F: np.ndarray, k: int, neighbours: Any) -> np.ndarray:
    """``neighbours`` checked to be (N, k) positions, or :func:`all_latent_neighbours` when None."""
    if neighbours is None:
        return all_latent_neighbours(F, k)
    nbrs = _ints(neighbours)
    n = F.shape[1]
    if nbrs.shape != (n, k) or (nbrs.size and (nbrs.min() < 0 or nbrs.max() >= n)):
        raise ValueError(f"neighbours must be ({n}, {k}) positions in [0, {n}), got shape {nbrs.shape}")
    return nbrs


def neighbour_distribution(labels: Any, positions: Any, n_classes: int) -> np.ndarray:
    """Share of each class among the examples at ``positions``, shape (n_classes,), summing to 1.

    ``labels`` (N,) are the classes of all examples (true labels, or the
    model's predictions); an empty ``positions`` gives zeros.
    """
    labels = _ints(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    labels = _labels(labels, labels.shape[0], int(n_classes))
    pos = np.asarray(positions, dtype=np.int64).ravel()
    if pos.size and (pos.min() < 0 or pos.max() >= labels.size):
        raise ValueError(f"positions must lie in [0, {labels.size})")
    counts = np.bincount(labels[pos], minlength=int(n_classes)).astype(np.float64)
    return counts / pos.size if pos.size else counts


def neighbour_purity(
    F: Any,
    labels: Any,
    k: int = NmfSettings.knn,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
    *,
    neighbours: Any = None,
) -> dict[str, Any]:
    """Share of the examples' latent nearest neighbours with their own label, against a permutation null.

    The measurable side of paper Fig. 4-5 (the concept distribution of an
    example's top-30 latent neighbours): if the latent space of ``F``'s
    columns groups examples by class, an example's neighbours share its
    label more often than labels assigned at random would.

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
        Non-negative factor weights; example n is the column ``F[:, n]``.
    labels : array of int, shape (N,)
        Class of every example (non-negative).
    k : int
        Latent neighbours per example (:func:`latent_neighbours`: euclidean,
        the example itself excluded, ties by position), ``1 <= k <= N - 1``.
    n_permutations : int
        Label permutations of the null (>= 1).
    seed : int
        Seed of the permutations (``numpy.random.default_rng``).
    neighbours : array of int, shape (N, k), optional
        :func:`all_latent_neighbours` of ``F``, when already computed.

    Returns
    -------
    dict
        ``k``, ``n_examples`` (N), ``same_label_share`` (the share of the N*k
        (example, neighbour) pairs whose labels agree: the mean over examples
        of the share of its k neighbours with its label), ``null_mean`` and
        ``null_q95`` (mean and 95th percentile, ``numpy.quantile`` linear, of
        the same share with the labels permuted among the examples and the
        neighbours kept; its expectation is sum_c n_c (n_c - 1) / (N (N - 1))
        for class sizes n_c), ``p_value`` = (1 + #{null >= observed}) /
        (n_permutations + 1) (one-sided; at least 1 / (n_permutations + 1)),
        ``n_permutations``.
    """
    F = _factors(F)
    n = F.shape[1]
    k = check_int("k", k, minimum=1, maximum=n - 1)  # the other examples
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    labels = _ints(labels)
    labels = _labels(labels, n, int(labels.max(initial=0)) + 1)
    nbrs = _given_neighbours(F, k, neighbours)  # (N, k)
    observed = int((labels[nbrs] == labels[:, None]).sum())  # integer counts: the comparison below is exact
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations, dtype=np.int64)
    for p in range(n_permutations):
        perm = labels[rng.permutation(n)]
        null[p] = (perm[nbrs] == perm[:, None]).sum()
    pairs = n * k
    return {
        "k": k,
        "n_examples": n,
        "same_label_share": observed / pairs,
        "null_mean": float(null.mean()) / pairs,
        "null_q95": float(np.quantile(null / pairs, 0.95)),
        "p_value": permutation_p_value(observed, null),
        "n_permutations": n_permutations,
    }


def accuracy_vs_impurity(
    F: Any, labels: Any, predictions: Any, k: int = NmfSettings.knn, n_bins: int = 5, *, neighbours: Any = None
) -> pd.DataFrame:
    """The model's accuracy against the impurity of the examples' latent neighbourhoods.

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
    labels, predictions : array of int, shape (N,)
        True class and the model's prediction of every example.
    k : int
        Latent neighbours per example (:func:`latent_neighbours`).
    n_bins : int
        Equal-width impurity bins over [0, 1]: bin b holds impurities in
        [b / n_bins, (b + 1) / n_bins), the last bin also 1.
    neighbours : array of int, shape (N, k), optional
        :func:`all_latent_neighbours` of ``F``, when already computed.

    Returns
    -------
    DataFrame
        One row per non-empty bin, in impurity order: ``bin``,
        ``impurity_low``, ``impurity_high`` (the bin's range),
        ``mean_impurity``, ``count`` (examples), ``correct``, ``accuracy``
        (share with prediction == label) and ``k``. The impurity of an example
        is the share of its k latent neighbours whose label differs from its
        own.
    """
    F = _factors(F)
    n = F.shape[1]
    k = check_int("k", k, minimum=1, maximum=n - 1)  # the other examples
    n_bins = check_int("n_bins", n_bins, minimum=1)
    labels, predictions = _ints(labels), _ints(predictions)
    n_classes = int(max(labels.max(initial=0), predictions.max(initial=0))) + 1
    labels = _labels(labels, n, n_classes)
    predictions = _labels(predictions, n, n_classes, name="predictions")
    nbrs = _given_neighbours(F, k, neighbours)
    differ = (labels[nbrs] != labels[:, None]).sum(axis=1)  # integer, so the bin is exact
    impurity = differ / k
    bins = np.minimum(differ * n_bins // k, n_bins - 1)
    correct = predictions == labels
    rows = []
    for b in range(n_bins):
        sel = bins == b
        if not sel.any():
            continue
        rows.append(
            {
                "bin": b,
                "impurity_low": b / n_bins,
                "impurity_high": (b + 1) / n_bins,
                "mean_impurity": float(impurity[sel].mean()),
                "count": int(sel.sum()),
                "correct": int(correct[sel].sum()),
                "accuracy": float(correct[sel].mean()),
                "k": k,
            }
        )
    return pd.DataFrame(rows, columns=[*_IMPURITY_COLUMNS])


_IMPURITY_COLUMNS = ("bin", "impurity_low", "impurity_high", "mean_impurity", "count", "correct", "accuracy", "k")
