"""Analysis and figures of a coupled NMF: factor similarity, class weights, pixel masks, latent neighbours.

Reproduces the analysis side of Saini and Papalexakis, "Analyzing
Representations inside Convolutional Neural Networks". The coupled
factorization (:mod:`conceptscope.nmf`) gives, over N examples and d latent
factors, ``P_i`` (H*W pixels x d) per input channel i, ``O_j`` (C*H*W rows x d)
per probed layer j, and the shared ``F`` (d x N): the weight of every example
in every factor. This module takes those as plain arrays (numpy or torch) and
implements:

- :func:`cosine_similarity` and :func:`diagonal_dominance` of the columns of
  ``O_j`` (paper Fig. 2: the similarity matrix becomes more diagonal with
  depth), :func:`eigen_mean` of it (Fig. 3: the mean of the K largest
  eigenvalues falls with depth);
- :func:`class_weights`, :func:`factor_table` and :func:`top_examples`
  (Table 1: the classes, and on CIFAR-100 the superclass, each factor stands
  for);
- :func:`pixel_masks` (Fig. 4: the pixels a factor weighs, thresholded at
  their median);
- :func:`latent_neighbours` and :func:`neighbour_distribution` (Fig. 4-5: the
  classes of an example's nearest neighbours in the latent space of ``F``'s
  columns), :func:`accuracy_vs_impurity` (the model's accuracy against the
  share of an example's latent neighbours from other classes);
- the figures :func:`plot_similarity_heatmaps`, :func:`plot_eigen_means`,
  :func:`plot_factor_table`, :func:`plot_masks_and_neighbours`,
  :func:`plot_accuracy_vs_impurity`. As for every figure of the suite, each
  PNG has a CSV beside it (same name, ``.csv``) holding the numbers drawn.

Positions index the examples in the column order of ``F``, which is the order
of the :class:`~conceptscope.data.ImageSet` the factorization was fitted on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .data import ImageSet  # noqa: E402

__all__ = [
    "accuracy_vs_impurity",
    "class_weights",
    "cosine_similarity",
    "diagonal_dominance",
    "eigen_mean",
    "factor_table",
    "latent_neighbours",
    "neighbour_distribution",
    "pixel_masks",
    "plot_accuracy_vs_impurity",
    "plot_eigen_means",
    "plot_factor_table",
    "plot_masks_and_neighbours",
    "plot_similarity_heatmaps",
    "top_examples",
]

_DPI = 110
_MASK_RGBA = (0.84, 0.15, 0.16, 0.5)  # pixels above the median, drawn over the image
_KNN_BUDGET = 8_000_000  # float64 elements of the (queries x N x d) difference block computed at once


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
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
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
    if not 1 <= int(k) <= d:
        raise ValueError(f"k must be in [1, {d}] for a {d} x {d} matrix, got {k}")
    if not np.allclose(S, S.T, rtol=1e-5, atol=1e-6):
        raise ValueError("S must be symmetric")
    values = np.sort(np.linalg.eigvalsh((S + S.T) / 2.0))[::-1]
    return float(values[: int(k)].mean())


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
) -> pd.DataFrame:
    """One row per latent factor: its top classes, superclass, entropy and mass (paper Table 1).

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

    Returns
    -------
    DataFrame
        Columns ``factor``; ``top_classes`` (``"7 (0.41), 1 (0.22), 9 (0.10)"``:
        class name and :func:`class_weights` weight, heaviest first, ties by
        class index); ``top_class``, ``top_class_weight``; with superclasses
        ``superclass``, ``superclass_weight`` (the heaviest superclass; a
        superclass's weight is the sum of the weights of its classes) and
        ``top_share_superclass`` (whether the ``top`` classes all lie in one
        superclass); ``entropy`` (natural log) of the class weights, between 0
        (one class) and log(n_classes) (uniform); ``mass`` = sum of ``F[k]``.
        A factor without mass has empty class columns and NaN weights and
        entropy.
    """
    F = _factors(F)
    names = list(class_names)
    n_classes = len(names)
    labels = _labels(labels, F.shape[1], n_classes)
    if int(top) < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    W = class_weights(F, labels, n_classes)
    mass = F.sum(axis=1)
    alive = mass > 0
    entropy = np.where(alive, _entropy(W), np.nan)
    order = np.argsort(-W, axis=1, kind="stable")[:, : int(top)]
    table: dict[str, Any] = {
        "factor": np.arange(F.shape[0]),
        "top_classes": [
            ", ".join(f"{names[c]} ({W[k, c]:.2f})" for c in order[k]) if alive[k] else "" for k in range(F.shape[0])
        ],
        "top_class": [names[order[k, 0]] if alive[k] else "" for k in range(F.shape[0])],
        "top_class_weight": np.where(alive, W[np.arange(F.shape[0]), order[:, 0]], np.nan),
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
    table["entropy"] = entropy
    table["mass"] = mass
    return pd.DataFrame(table)


def top_examples(F: Any, k: int) -> np.ndarray:
    """Positions of the ``k`` examples with the largest weight in each factor, shape (d, k).

    Row ``f`` lists positions (columns of ``F``) by ``F[f]`` descending, ties
    by position. ``1 <= k <= N``.
    """
    F = _factors(F)
    n = F.shape[1]
    if not 1 <= int(k) <= n:
        raise ValueError(f"k must be in [1, {n}] (the number of examples), got {k}")
    return np.argsort(-F, axis=1, kind="stable")[:, : int(k)]


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


def _check_k(k: int, n: int) -> int:
    if not 1 <= int(k) <= n - 1:
        raise ValueError(f"k must be in [1, {n - 1}] (the other examples), got {k}")
    return int(k)


def latent_neighbours(F: Any, query: int, k: int = 30) -> np.ndarray:
    """Positions of the ``k`` nearest examples to ``query`` in the latent space (paper Fig. 4-5).

    Each example is the column ``F[:, n]`` (its d factor weights); distances
    are euclidean. The query itself is excluded (other examples at distance 0
    are not). Nearest first, equal distances by position. ``1 <= k <= N - 1``.
    """
    F = _factors(F)
    n = F.shape[1]
    if not 0 <= int(query) < n:
        raise ValueError(f"query must be a position in [0, {n}), got {query}")
    k = _check_k(k, n)
    return _neighbours(np.ascontiguousarray(F.T), np.array([int(query)]), k)[0]


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


def accuracy_vs_impurity(F: Any, labels: Any, predictions: Any, k: int = 30, n_bins: int = 5) -> pd.DataFrame:
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
    k = _check_k(k, n)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n_bins = int(n_bins)
    labels, predictions = _ints(labels), _ints(predictions)
    n_classes = int(max(labels.max(initial=0), predictions.max(initial=0))) + 1
    labels = _labels(labels, n, n_classes)
    predictions = _labels(predictions, n, n_classes, name="predictions")
    nbrs = _neighbours(np.ascontiguousarray(F.T), np.arange(n), k)
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


# -- figures ---------------------------------------------------------------------------------------


def _save(fig: Figure, table: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    table.to_csv(path.with_suffix(".csv"), index=False)


def _display(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image (C, H, W) in [0, 1] as something imshow draws, and its colormap (grey for 1 channel)."""
    x = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32)), 0.0, 1.0)
    if x.shape[0] >= 3:
        return x[:3].transpose(1, 2, 0), None
    return x.mean(axis=0), "gray"


def _short(s: str, n: int = 14) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _bare(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_similarity_heatmaps(mats: Mapping[str, Any], path: str | Path) -> None:
    """Heatmaps of the factor-similarity matrices of the probed layers (paper Fig. 2).

    Parameters
    ----------
    mats : mapping of layer name to array (d, d)
        :func:`cosine_similarity` of each layer's ``O_j``, in depth order
        (the mapping's order, shallowest first).
    path : str or Path
        PNG to write. The CSV beside it has one row per matrix entry:
        ``layer``, ``depth`` (position in ``mats``), ``row``, ``col``,
        ``similarity`` and the layer's ``diagonal_dominance``.

    All panels share one colour scale (from min(0, smallest entry) to
    max(1, largest entry)); each title gives the layer and its
    :func:`diagonal_dominance`.
    """
    layers = list(mats)
    if not layers:
        raise ValueError("mats is empty: give one similarity matrix per layer")
    arrays = [_square(mats[layer], f"mats[{layer!r}]") for layer in layers]
    lo = min(0.0, *(float(a.min()) for a in arrays))
    hi = max(1.0, *(float(a.max()) for a in arrays))
    n = len(layers)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.9 * cols + 0.9, 2.9 * rows + 0.5), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    records = []
    image = None
    for i, (layer, S) in enumerate(zip(layers, arrays, strict=True)):
        ax = axes.flat[i]
        dd = diagonal_dominance(S)
        image = ax.imshow(S, vmin=lo, vmax=hi, cmap="viridis", interpolation="nearest")
        ax.set_title(f"{layer}\ndiagonal dominance {dd:.3f}", fontsize=9)
        d = S.shape[0]
        ticks = np.arange(0, d, max(1, int(np.ceil(d / 10))))
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("factor", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("factor", fontsize=8)
        r, c = np.indices(S.shape)
        records.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "depth": i,
                    "row": r.ravel(),
                    "col": c.ravel(),
                    "similarity": S.ravel(),
                    "diagonal_dominance": dd,
                }
            )
        )
    used = list(axes.flat[:n])
    for ax in axes.flat[n:]:
        ax.remove()
    fig.colorbar(image, ax=used, shrink=0.85, label="cosine similarity of O_j's columns")
    fig.suptitle("similarity of the latent factors per layer (shallow to deep)", fontsize=10)
    _save(fig, pd.concat(records, ignore_index=True), path)


def plot_eigen_means(table: pd.DataFrame, path: str | Path) -> None:
    """Mean of the K largest eigenvalues of the factor similarity against depth (paper Fig. 3).

    Parameters
    ----------
    table : DataFrame
        Columns ``model``, ``layer``, ``depth``, ``k``, ``eigen_mean``; an
        optional ``source`` column (e.g. ``coupled`` / ``single``) gives one
        line per (model, source); sources after the first are dashed with hollow markers.
    path : str or Path
        PNG to write; the CSV beside it is ``table`` unchanged (all columns).

    One line per model, x = depth (layer names as tick labels when all models
    share them), legend ``model (K=k)``.
    """
    need = {"model", "layer", "depth", "k", "eigen_mean"}
    if missing := need - set(table.columns):
        raise ValueError(f"table lacks the columns {sorted(missing)}")
    fig = Figure(figsize=(6.0, 3.8), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    has_source = "source" in table.columns
    sources = list(dict.fromkeys(table["source"])) if has_source else [None]
    styles = ["-", "--", ":", "-."]
    colours: dict[Any, Any] = {}
    for (model, source), g in table.groupby(
        ["model", "source"] if has_source else ["model", np.zeros(len(table))], sort=False
    ):
        g = g.sort_values("depth")
        colour = colours.setdefault(model, f"C{len(colours) % 10}")
        ks = sorted({int(v) for v in g["k"]})
        label = f"{model} (K={','.join(map(str, ks))})" + (f", {source}" if has_source and len(sources) > 1 else "")
        style = styles[sources.index(source) % len(styles)] if has_source else "-"
        first = not has_source or sources.index(source) == 0
        ax.plot(
            g["depth"],
            g["eigen_mean"],
            style,
            marker="o",
            color=colour,
            markerfacecolor=colour if first else "white",
            label=label,
        )
    per_model = [tuple(g.sort_values("depth")["layer"]) for _, g in table.groupby("model", sort=False)]
    if table.empty:
        ax.text(0.5, 0.5, "no layers", ha="center", va="center", transform=ax.transAxes)
    elif len(set(per_model)) == 1:
        first = table.drop_duplicates("depth").sort_values("depth")
        ax.set_xticks(first["depth"], [str(v) for v in first["layer"]], rotation=30, ha="right")
    else:
        ax.set_xticks(sorted({int(v) for v in table["depth"]}))
    ax.set(
        xlabel="layer (depth)",
        ylabel="mean of the K largest eigenvalues",
        title="eigenvalue mean of the factor-similarity matrix vs depth",
    )
    ax.title.set_fontsize(10)
    if not table.empty:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, table, path)


def _image_rows(images: ImageSet, positions: np.ndarray, size: tuple[int, int] | None) -> dict[int, np.ndarray]:
    """Images (C, H, W) at the distinct ``positions``, by position."""
    pos = np.unique(np.asarray(positions, dtype=np.int64).ravel())
    if pos.size == 0:
        return {}
    try:
        x = list(images.images(pos, size).numpy())
    except (ValueError, RuntimeError):  # images of differing sizes (image folders) and no size given
        x = [images.images(pos[i : i + 1], size).numpy()[0] for i in range(pos.size)]
    return {int(p): x[i] for i, p in enumerate(pos)}


def plot_factor_table(
    table: pd.DataFrame,
    F: Any,
    images: ImageSet,
    path: str | Path,
    *,
    per_factor: int = 8,
    size: tuple[int, int] | None = None,
) -> None:
    """Table 1 as a picture: one row per factor with its heaviest images, its top classes as row title.

    Parameters
    ----------
    table : DataFrame
        :func:`factor_table` (rows drawn in its order, so a filtered table
        draws only those factors).
    F : array or Tensor, shape (d, N)
        The factor weights the table was made from; columns are the positions
        of ``images``.
    images : ImageSet
    path : str or Path
        PNG to write. The CSV beside it is ``table`` with the images drawn
        added: ``positions`` and ``weights`` (space-separated, left to right).
    per_factor : int
        Images per row (:func:`top_examples`).
    size : (H, W), optional
        Size to draw the images at; default their stored size.

    Captions give the image's class name and its weight in the factor
    relative to the factor's largest weight.
    """
    F = _factors(F)
    if F.shape[1] != len(images):
        raise ValueError(f"F has {F.shape[1]} columns but the image set has {len(images)} images")
    if len(table) == 0:
        raise ValueError("table is empty")
    per_factor = min(int(per_factor), F.shape[1])
    top = top_examples(F, per_factor)
    factors = [int(f) for f in table["factor"]]
    imgs = _image_rows(images, top[factors], size)
    names = list(images.class_names)
    row_h, title_h = 1.5, 0.45
    fig = Figure(figsize=(max(6.0, per_factor * 1.0 + 0.4), row_h * len(factors) + title_h), dpi=_DPI)
    subs = fig.subfigures(len(factors) + 1, 1, height_ratios=[title_h] + [row_h] * len(factors), squeeze=False)[:, 0]
    subs[0].text(0.5, 0.5, "latent factors: heaviest examples, class weights", ha="center", va="center", fontsize=10)
    drawn_pos, drawn_w = [], []
    for sf, (_, row) in zip(subs[1:], table.iterrows(), strict=True):
        f = int(row["factor"])
        title = f"factor {f} · mass {row['mass']:.3g} · {row['top_classes'] or 'no mass'}"
        if "superclass" in row and row["superclass"]:
            title += f" · superclass {row['superclass']} ({row['superclass_weight']:.2f})"
        sf.text(0.01, 0.97, title, ha="left", va="top", fontsize=8.5)
        axs = sf.subplots(
            1, per_factor, squeeze=False, gridspec_kw={"left": 0.01, "right": 0.99, "top": 0.78, "bottom": 0.12}
        )[0]
        peak = F[f].max()
        for ax, p in zip(axs, top[f], strict=True):
            img, cmap = _display(imgs[int(p)])
            ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            _bare(ax)
            rel = F[f, p] / peak if peak > 0 else 0.0
            ax.set_xlabel(f"{_short(_name(names, int(images.labels[p])), 12)} · {rel:.2f}", fontsize=6.5, labelpad=2)
        drawn_pos.append(" ".join(str(int(p)) for p in top[f]))
        drawn_w.append(" ".join(f"{F[f, p]:.6g}" for p in top[f]))
    out = table.reset_index(drop=True).copy()
    out["positions"] = drawn_pos
    out["weights"] = drawn_w
    _save(fig, out, path)


def _mask_size(P: Sequence[Any], images: ImageSet, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of the pixel factors: ``size``, else the stored image size when it fits, else a square."""
    if size is not None:
        return int(size[0]), int(size[1])
    rows = _array(P[0], "P[0]", 2).shape[0] if len(P) else 0
    stored = tuple(images.images(np.array([0])).shape[-2:]) if len(images) else (0, 0)
    if stored[0] * stored[1] == rows:
        return int(stored[0]), int(stored[1])
    side = int(round(np.sqrt(rows)))
    if side * side == rows and rows > 0:
        return side, side
    raise ValueError(f"cannot tell the image size of {rows} pixel rows: pass size=(H, W)")


def plot_masks_and_neighbours(
    F: Any,
    P: Sequence[Any],
    images: ImageSet,
    labels: Any,
    class_names: Sequence[str],
    path: str | Path,
    *,
    factors: Sequence[int] | None = None,
    k: int = 30,
    size: tuple[int, int] | None = None,
) -> None:
    """Per factor, its heaviest image with the pixel mask, and the classes of its latent neighbours (Fig. 4-5).

    Parameters
    ----------
    F : array or Tensor, shape (d, N)
    P : sequence of arrays or Tensors, each (H*W, d)
        Pixel factors, one per input channel.
    images : ImageSet
        The N examples (positions = columns of ``F``).
    labels : array of int, shape (N,)
        Classes whose distribution is drawn (true labels, or predictions).
    class_names : sequence of str
    path : str or Path
        PNG to write. The CSV beside it has, per factor, one ``pixel`` row per
        pixel (``row``, ``col``, ``pixel_weight`` summed over channels,
        ``in_mask``) and one ``neighbour_class`` row per class present among
        the neighbours (``class``, ``class_name``, ``count``, ``fraction``);
        ``factor`` and the query ``position`` on every row.
    factors : sequence of int, optional
        Factors drawn, one row each; default all.
    k : int
        Latent neighbours of the query (:func:`latent_neighbours`).
    size : (H, W), optional
        Image size of the pixel factors (the model input the factorization
        saw); default the stored image size when it has H*W pixels, else
        the square one. Images are drawn fitted to it.

    Each row shows the factor's heaviest example (:func:`top_examples`), the
    same image with its :func:`pixel_masks` mask (pixels above the median)
    in translucent red, and the class shares among its ``k`` nearest latent
    neighbours: all classes when there are at most 20, else the 12 most
    frequent.
    """
    F = _factors(F)
    n = F.shape[1]
    if n != len(images):
        raise ValueError(f"F has {n} columns but the image set has {len(images)} images")
    names = list(class_names)
    labels = _labels(labels, n, len(names))
    hw = _mask_size(P, images, size)
    weights = _pixel_weights(P, hw)
    masks = pixel_masks(P, hw)
    chosen = list(range(F.shape[0])) if factors is None else [int(f) for f in factors]
    if not chosen:
        raise ValueError("no factors to draw")
    if min(chosen) < 0 or max(chosen) >= F.shape[0]:
        raise ValueError(f"factors must lie in [0, {F.shape[0]}), got {chosen}")
    k = _check_k(k, n)
    query = top_examples(F, 1)[:, 0]
    x = images.images(query[chosen], hw).numpy()
    many = len(names) > 20
    fig = Figure(figsize=(8.2, 1.75 * len(chosen) + 0.45), dpi=_DPI)
    fig.suptitle(
        f"pixel masks (red: above the median) and classes of the {k} nearest latent neighbours", fontsize=10, y=0.995
    )
    gs = fig.add_gridspec(
        len(chosen),
        3,
        width_ratios=[1, 1, 4.2],
        left=0.04,
        right=0.98,
        top=1 - 0.5 / fig.get_figheight(),
        bottom=0.75 / fig.get_figheight(),
        hspace=0.9,
        wspace=0.25,
    )
    records: list[dict[str, Any]] = []
    for i, f in enumerate(chosen):
        q = int(query[f])
        img, cmap = _display(x[i])
        ax_img, ax_mask, ax_bar = (fig.add_subplot(gs[i, j]) for j in range(3))
        ax_img.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax_img.set_title(f"factor {f}", fontsize=8.5, loc="left")
        ax_img.set_xlabel(f"{_short(_name(names, int(labels[q])))} · #{q}", fontsize=7, labelpad=2)
        ax_mask.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        overlay = np.zeros((*hw, 4))
        overlay[masks[f]] = _MASK_RGBA
        ax_mask.imshow(overlay, interpolation="nearest")
        ax_mask.set_xlabel("mask", fontsize=7, labelpad=2)
        for ax in (ax_img, ax_mask):
            _bare(ax)
        nbrs = latent_neighbours(F, q, k)
        share = neighbour_distribution(labels, nbrs, len(names))
        counts = np.bincount(labels[nbrs], minlength=len(names))
        shown = np.argsort(-share, kind="stable")[:12] if many else np.arange(len(names))
        own = int(labels[q])
        ax_bar.bar(np.arange(shown.size), share[shown], color=["C3" if c == own else "C0" for c in shown], width=0.75)
        ax_bar.set_xticks(
            np.arange(shown.size),
            [_short(_name(names, int(c))) for c in shown],
            rotation=30 if many or max(len(s) for s in names) > 3 else 0,
            ha="right" if many or max(len(s) for s in names) > 3 else "center",
            fontsize=7,
        )
        ax_bar.set_ylim(0, 1)
        ax_bar.tick_params(axis="y", labelsize=7)
        ax_bar.set_ylabel("share", fontsize=7)
        ax_bar.set_title(
            f"{k} latent neighbours of #{q}"
            + (": 12 most frequent classes" if many else "")
            + f" · own class (red) {share[own]:.2f}",
            fontsize=8,
            loc="left",
        )
        r, c = np.indices(hw)
        records += [
            {
                "factor": f,
                "position": q,
                "kind": "pixel",
                "row": int(a),
                "col": int(b),
                "pixel_weight": float(weights[f, a, b]),
                "in_mask": bool(masks[f, a, b]),
            }
            for a, b in zip(r.ravel(), c.ravel(), strict=True)
        ]
        records += [
            {
                "factor": f,
                "position": q,
                "kind": "neighbour_class",
                "class": int(cl),
                "class_name": _name(names, int(cl)),
                "count": int(counts[cl]),
                "fraction": float(share[cl]),
            }
            for cl in np.flatnonzero(counts)
        ]
    columns = ["factor", "position", "kind", "row", "col", "pixel_weight", "in_mask"]
    columns += ["class", "class_name", "count", "fraction"]
    _save(fig, pd.DataFrame.from_records(records, columns=columns), path)


def plot_accuracy_vs_impurity(table: pd.DataFrame, path: str | Path) -> None:
    """The model's accuracy per latent-neighbourhood impurity bin (:func:`accuracy_vs_impurity`).

    Each bin is a shaded bar over its impurity range, as high as the bin's
    accuracy; a line joins the accuracies drawn at the bins' mean impurity,
    each point labelled with the number of examples in its bin.
    The CSV beside the PNG is ``table`` unchanged.
    """
    need = {"impurity_low", "impurity_high", "mean_impurity", "count", "accuracy"}
    if missing := need - set(table.columns):
        raise ValueError(f"table lacks the columns {sorted(missing)}")
    fig = Figure(figsize=(5.6, 3.6), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    if len(table):
        t = table.sort_values("impurity_low")
        ax.bar(
            t["impurity_low"],
            t["accuracy"],
            width=t["impurity_high"] - t["impurity_low"],
            align="edge",
            color="C0",
            alpha=0.25,
            edgecolor="C0",
        )
        ax.plot(t["mean_impurity"], t["accuracy"], marker="o", color="C0")
        for row in t.itertuples():
            ax.annotate(
                f"n={int(row.count)}",
                (row.mean_impurity, row.accuracy),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
        k = f" (k={int(t['k'].iloc[0])})" if "k" in t.columns else ""
    else:
        ax.text(0.5, 0.5, "no examples", ha="center", va="center", transform=ax.transAxes)
        k = ""
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.1),
        xlabel=f"impurity: share of latent neighbours from another class{k}",
        ylabel="model accuracy",
        title="accuracy vs latent-neighbourhood impurity",
    )
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    _save(fig, table, path)
