"""The data blocks of the coupled NMF: checks, exact norms and residuals, block scaling, the objective.

Saini and Papalexakis factor pixel blocks D_i (rows_i x N, one per input
channel) and layer blocks A_j (rows_j x N) with one shared F (d x N) and
factors P_i, O_j of unit-norm columns (:mod:`conceptscope.nmf.solvers`).

**Exact sums.** ||X||_F^2, the residuals ||X - W F||_F^2 and the final
objective are accumulated in float64 by row blocks of 2^22 entries (no
float64 copy of a whole block). A float32 reduction
(``torch.linalg.vector_norm(X) ** 2``) was low by 2.6e-4 relative on the
default suite's 7.4 M-entry ``layer3`` block (resnet18_cifar): the reported
objective 9,242,355.8 against 9,246,528.2 recomputed from the saved factors,
the fit 0.366885 against 0.366790. Residuals are summed from X - W F itself,
not from the expanded ||X||^2 - 2 <W^T X, F> + <W^T W, F F^T>, so there is
no cancellation when the fit is good.

**Block scaling** (``block_scaling``). Under unit-norm columns a component
has the same strength, its row of F, in every block, so the blocks' relative
scale decides what is fitted. For non-negative P with unit columns and
F >= 0,

    ||P F||_F^2 = sum_n f_n^T (P^T P) f_n >= ||F||_F^2

(P^T P has a unit diagonal and non-negative entries), hence

    ||D_i - P_i F||_F / ||D_i||_F >= ||F||_F / ||D_i||_F - 1            (*)

whatever P_i: once the large activation blocks have set the scale of F, a
block with ||X|| < ||F|| / 2 is fitted worse than the all-zero matrix, and
the smaller a block is relative to F, the more its best factor has
near-orthogonal columns (which minimize the overshoot f^T P^T P f), so the
similarity of O_j's columns (Fig. 2-3) follows ||A_j||. Measured on the
default suite (digits test split, N = 450, 20 components, 50 sweeps) with
``none``, the paper's objective as written: pixel residual 2.51
(resnet18_cifar; ||F|| = 955, ||D|| = 302, bound (*) 2.16) and 1.68
(vgg11_cifar; bound 1.30), avgpool 1.39. Not the solver: 500 float64
sweeps give 2.54 and 1.76, and NNDSVDa 2.41 and 1.54; the same solver on the
stacked matrix as one block (free relative scale) gives 0.31 and 0.27.
Reversing the layer blocks' norms reversed the depth trend of O_j's
diagonal dominance (resnet18_cifar: 0.61, 0.77, 1.00 became 1.00, 0.80, 0.61).

``frobenius`` divides every block by its Frobenius norm s before fitting:
L = sum_i ||D_i / s_i - P^_i F||^2 + ... with unit-column P^_i. The solvers
do it without copying the data (block i's products X F^T and W^T X are
multiplied by 1 / s_i) and return the factors in the original scale,
P_i = s_i P^_i (columns of norm s_i), so P_i F approximates D_i;
``losses`` and ``fits`` are those of the normalized problem (what is
minimized). On the default suite every block's residual fell: pixels 0.33
(both models), layer3 0.61 -> 0.54, avgpool 1.39 -> 0.33, features.28
0.59 -> 0.41, and the stacked original-scale error 0.633 -> 0.531 and
0.464 -> 0.400 (scikit-learn's unconstrained NMF of the stacked matrix,
20 components, mu, nndsvd, 50 iterations: 0.489, 0.351). The fit then
depends neither on the pixel range nor on a layer's activation magnitude,
and lam_f weighs ||F||^2 against blocks of unit norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice
from .init import Matrix
from .settings import BLOCK_SCALINGS, DTYPES, NmfSettings
from .updates import _Groups

__all__ = ["block_residuals", "objective"]

_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_F64_BLOCK = 1 << 22  # entries of X converted to float64 at a time (32 MiB) by the exact sums


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``dtype`` (a name in :data:`~conceptscope.nmf.settings.DTYPES` or a torch dtype) as the torch dtype."""
    if isinstance(dtype, str):
        dtype = _DTYPES.get(dtype, dtype)
    return check_choice("dtype", dtype, tuple(_DTYPES.values()))


def _prepare(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    dtype: torch.dtype | str | None,
    device: str | torch.device | None,
) -> tuple[list[Tensor], list[Tensor], list[float]]:
    """Tensors of ``dtype`` on one device, checked (2-D, same N, finite, >= 0); also ||X||_F^2 of each.

    ``dtype=None`` keeps a floating dtype (other input becomes float64); ||X||_F^2 is accumulated in
    float64 whatever the dtype.
    """
    dtype = _torch_dtype(dtype) if dtype is not None else None
    for name, seq in (("D", D), ("A", A)):
        if isinstance(seq, Tensor | np.ndarray) and seq.ndim == 2:
            raise ValueError(f"{name} must be a sequence of 2-D matrices (wrap a single matrix in a list)")
    mats = list(D) + list(A)
    if not mats:
        raise ValueError("no matrices: D and A are both empty")
    if device is None:
        first = mats[0]
        device = first.device if isinstance(first, Tensor) else torch.device("cpu")
    out: list[Tensor] = []
    sq: list[float] = []
    n_examples = None
    for pos, X in enumerate(mats):
        name = f"D[{pos}]" if pos < len(D) else f"A[{pos - len(D)}]"
        X = torch.as_tensor(X, dtype=dtype, device=device).detach()
        if not X.is_floating_point():
            X = X.to(torch.float64)
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows x examples), got shape {tuple(X.shape)}")
        if n_examples is None:
            n_examples = X.shape[1]
        if X.shape[1] != n_examples:
            raise ValueError(f"{name} has {X.shape[1]} examples (columns), the first matrix {n_examples}")
        if X.numel() == 0:
            raise ValueError(f"{name} is empty, shape {tuple(X.shape)}")
        norm2 = _squared_norm(X)
        if not math.isfinite(norm2):
            raise ValueError(f"{name} has non-finite values")
        low = float(X.min())
        if low < 0:
            raise ValueError(f"{name} must be non-negative, its minimum is {low!r}")
        out.append(X)
        sq.append(norm2)
    return out[: len(D)], out[len(D) :], sq


def _row_blocks(X: Tensor) -> range:
    """Starts of the row blocks of X (rows, N) that the exact sums convert to float64 one at a time."""
    return range(0, X.shape[0], max(1, _F64_BLOCK // max(1, X.shape[1])))


def _squared_norm(X: Tensor) -> float:
    """||X||_F^2 accumulated in float64, by row blocks (no float64 copy of X).

    A float32 reduction (``torch.linalg.vector_norm(X) ** 2``) was low by 2.6e-4 relative on a
    7.4 M-entry activation matrix, which moved the reported objective by 4,000 and the fit by 1e-4.
    """
    step = _row_blocks(X).step
    return math.fsum(
        float(torch.linalg.vector_norm(X[start : start + step], dtype=torch.float64)) ** 2 for start in _row_blocks(X)
    )


def _residual_sq(X: Tensor, W: Tensor, F: Tensor) -> float:
    """||X - W F||_F^2 in float64 from the residual itself, by row blocks (no cancellation, no rows x N copy).

    X (rows, N), W (rows, d), F (d, N), any float dtype, one device.
    """
    F64 = F.to(torch.float64)
    W64 = W.to(torch.float64)
    step = _row_blocks(X).step
    parts = []
    for start in _row_blocks(X):
        R = torch.addmm(X[start : start + step].to(torch.float64), W64[start : start + step], F64, alpha=-1.0)
        parts.append(float(torch.linalg.vector_norm(R)) ** 2)
    return math.fsum(parts)


def _block_weights(sq: Sequence[float], n_pixels: int, scaling: str) -> list[float]:
    """c_i with which block i enters the fit (X_i c_i): 1 (``none``) or 1 / ||X_i||_F (``frobenius``)."""
    if scaling == "none":
        return [1.0] * len(sq)
    zero = [_block_name(pos, n_pixels) for pos, s in enumerate(sq) if s == 0]
    if zero:
        raise ValueError(
            f"{', '.join(zero)} all zero: block_scaling='frobenius' divides every block by its Frobenius norm; "
            "drop the block or use block_scaling='none'"
        )
    return [1.0 / math.sqrt(s) for s in sq]


def _block_name(pos: int, n_pixels: int) -> str:
    return f"D[{pos}]" if pos < n_pixels else f"A[{pos - n_pixels}]"


def _penalty(
    Ws: Sequence[Tensor],
    lams: Sequence[float],
    F: Tensor,
    lam_f: float,
    group_penalty: Callable[[Tensor], float] | None,
    lam_group: float,
) -> float:
    """lam sum ||W||^2 (factors of the fitted blocks) + lam_f ||F||^2 (+ the group penalty), in float64."""
    F64 = F.double()
    total = [lam * float(torch.linalg.vector_norm(W.double())) ** 2 for W, lam in zip(Ws, lams, strict=True)]
    total.append(lam_f * float(torch.linalg.vector_norm(F64)) ** 2)
    if group_penalty is not None:
        total.append(lam_group * group_penalty(F64.T))
    return math.fsum(total)


def _factor_pairs(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    P: Sequence[Matrix],
    O: Sequence[Matrix],  # noqa: E741 (the paper's name)
    F: Matrix,
) -> tuple[list[Tensor], list[Tensor], list[float], Tensor, int]:
    """The checked blocks (dtype kept), their factors as float64 on the blocks' device, ||X||^2, F and len(D)."""
    Ds, As, sq = _prepare(D, A, None, None)
    if len(P) != len(Ds) or len(O) != len(As):
        raise ValueError(f"got {len(P)} P and {len(O)} O factors for {len(Ds)} D and {len(As)} A matrices")
    mats = Ds + As
    dev = mats[0].device
    F = torch.as_tensor(F, dtype=torch.float64, device=dev)
    if F.ndim != 2 or F.shape[1] != mats[0].shape[1]:
        raise ValueError(f"F must be (d, {mats[0].shape[1]}), got shape {tuple(F.shape)}")
    Ws = []
    for pos, (X, W) in enumerate(zip(mats, list(P) + list(O), strict=True)):
        W = torch.as_tensor(W, dtype=torch.float64, device=dev)
        if W.shape != (X.shape[0], F.shape[0]):
            raise ValueError(
                f"factor of {_block_name(pos, len(Ds))} has shape {tuple(W.shape)}, which does not fit data "
                f"{tuple(X.shape)} and F {tuple(F.shape)}"
            )
        Ws.append(W)
    return mats, Ws, sq, F, len(Ds)


def objective(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    P: Sequence[Matrix],
    O: Sequence[Matrix],  # noqa: E741 (the paper's name)
    F: Matrix,
    lam_p: float,
    lam_o: float,
    lam_f: float,
    *,
    groups: Sequence[int] | Tensor | np.ndarray | None = None,
    lam_group: float = NmfSettings.lam_group,
    block_scaling: str = NmfSettings.block_scaling,
) -> float:
    """The coupled objective L (module docstring) that :func:`fit_coupled` minimizes, in float64.

    Parameters
    ----------
    D, A : sequences of (rows, N) matrices
        The blocks, in the original scale.
    P, O : sequences of (rows, d) matrices; F : (d, N)
        Factors in the original scale, as the solvers return them.
    lam_p, lam_o, lam_f : float
        Ridge weights.
    groups, lam_group
        With ``groups`` (one id per example), the group penalty of :func:`fit_group_sparse`.
    block_scaling : ``"frobenius"`` or ``"none"``
        ``frobenius``: L of the normalized problem, every block and its factor divided by
        s = ||X||_F: sum ||X / s - (W / s) F||^2 + lam ||W / s||^2 + lam_f ||F||^2.

    Returns
    -------
    float
        L, each ||X - W F||^2 summed from the residual itself in float64, by row blocks; equal to
        the last of the solver's ``losses`` for its own factors (the solvers' module docstring).

    Raises
    ------
    ValueError
        Blocks not 2-D, negative or non-finite, of different N; factors that do not fit them; an
        unknown ``block_scaling``, or an all-zero block under ``frobenius``.
    """
    scaling = check_choice("block_scaling", block_scaling, BLOCK_SCALINGS)
    mats, Ws, sq, F, n_pixels = _factor_pairs(D, A, P, O, F)
    weights = _block_weights(sq, n_pixels, scaling)
    lams = [lam_p] * n_pixels + [lam_o] * (len(mats) - n_pixels)
    terms = [c * c * _residual_sq(X, W, F) for X, W, c in zip(mats, Ws, weights, strict=True)]
    grp = _Groups(groups, F.shape[1], F.device).penalty if groups is not None and lam_group else None
    scaled = [W * c for W, c in zip(Ws, weights, strict=True)]
    return math.fsum(terms) + _penalty(scaled, lams, F, lam_f, grp, lam_group)


def block_residuals(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    P: Sequence[Matrix],
    O: Sequence[Matrix],  # noqa: E741 (the paper's name)
    F: Matrix,
) -> list[float]:
    """Relative residual ||X - W F||_F / ||X||_F of every block (D blocks, then A blocks), in float64.

    Parameters
    ----------
    D, A : sequences of (rows, N) matrices
        The blocks in the original scale (non-negative; not both empty).
    P, O : sequences of (rows, d) matrices; F : (d, N)
        Factors in the original scale (as the solvers return them, whatever ``block_scaling``).

    Returns
    -------
    list of float
        One value per block; 1.0 is the residual of the all-zero reconstruction, so a value above
        1 means the factors fit the block worse than predicting zeros. NaN for an all-zero block.

    Raises
    ------
    ValueError
        When the numbers or shapes of blocks and factors do not match.
    """
    mats, Ws, sq, F, _ = _factor_pairs(D, A, P, O, F)
    return [math.sqrt(_residual_sq(X, W, F) / s) if s > 0 else math.nan for X, W, s in zip(mats, Ws, sq, strict=True)]
