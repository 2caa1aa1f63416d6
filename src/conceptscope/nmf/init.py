"""NNDSVD initialization of the coupled NMF's P and O (Boutsidis and Gallopoulos 2008).

Non-negative double SVD (C. Boutsidis and E. Gallopoulos, "SVD based
initialization: A head start for nonnegative matrix factorization", Pattern
Recognition 41, 2008, Table 1): from the top-d singular triplets of X, the
leading pair in absolute value and, for every further triplet, the positive or
the negative parts of its singular vectors, whichever carry more of it.

In :func:`conceptscope.nmf.fit_coupled`, P_i and O_j start as the
unit-normalized left factors of NNDSVD of their own matrix (the solvers keep
unit columns). The SVD is exact for small matrices and randomized (seeded
range finder, one power iteration; Halko, Martinsson and Tropp 2011)
otherwise. ``init="nndsvda"`` (the same paper's variant) fills NNDSVD's zeros
with mean(X) before normalizing: multiplicative updates never move a zero, so
NNDSVD's zeros persist. Measured on planted coupled problems (D_i = P_i F,
A_j = O_j F, rank 4, unit-column P_i, O_j, 300 sweeps): ``nndsvd`` stalls at a
fit of 0.53-0.66, because its frozen zeros do not match the planted supports,
while ``nndsvda`` reaches 0.994-0.997 (tests/test_nmf.py); the default stays
``nndsvd``, the specified (authors') setting.

NOTE: where an entry of a singular vector is zero in exact arithmetic (e.g. the
rows of an all-zero row of X) the SVD leaves rounding noise (1e-17 to 1e-23 in
float64), so such an entry of the NNDSVD factor is either exactly 0 (frozen by
the multiplicative updates; filled by ``nndsvda``) or a tiny free entry,
depending on rounding. Seen in tests as a 1e-16 change of the data moving the
fit (a column of the constrained update then met the "hard case" and was kept).
Not thresholded (scikit-learn zeroes NNDSVD entries below an absolute 1e-6,
which depends on the data's scale); the default suite's factors have no gap
between noise and small entries that a threshold could use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int
from .settings import INITS

__all__ = ["nndsvd"]

_SVD_METHODS = ("auto", "exact", "randomized")
_ROW_BLOCK = 1024

Matrix = Tensor | np.ndarray


# -- products ------------------------------------------------------------------------------------


def _x_times(X: Tensor, M: Tensor) -> Tensor:
    """X @ M for X (rows, N), M (N, k); on the CPU in blocks of rows (MKL ran the tall product ~25 % faster so)."""
    rows = X.shape[0]
    if X.device.type != "cpu" or rows <= 2 * _ROW_BLOCK:
        return X @ M
    out = torch.empty(rows, M.shape[1], dtype=M.dtype, device=M.device)
    for start in range(0, rows, _ROW_BLOCK):
        torch.mm(X[start : start + _ROW_BLOCK], M, out=out[start : start + _ROW_BLOCK])
    return out


# -- NNDSVD ----------------------------------------------------------------------------------------


def _randomized_svd(
    X: Tensor, rank: int, generator: torch.Generator, *, oversample: int = 10, n_power_iter: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Top-``rank`` SVD of X by a randomized range finder on the row space (Halko, Martinsson, Tropp 2011).

    Omega (N x l, l = rank + oversample) is standard normal from ``generator`` (drawn on the CPU,
    then moved). Q = orth((X^T X)^(q+1) Omega), orthonormalizing after every product, spans the
    leading row space, so X ~ (X Q) Q^T and the SVD of the thin X Q (rows x l) gives the
    factors: 3 + 2q passes over X (q = ``n_power_iter``).
    """
    m, n = X.shape
    width = min(rank + oversample, m, n)
    omega = torch.randn(n, width, generator=generator, dtype=X.dtype).to(X.device)
    Y = _x_times(X, omega)
    for _ in range(n_power_iter + 1):
        Qr = torch.linalg.qr(X.T @ torch.linalg.qr(Y).Q).Q  # (n, width)
        Y = _x_times(X, Qr)
    U, S, Vh = torch.linalg.svd(Y, full_matrices=False)
    return U[:, :rank], S[:rank], Vh[:rank] @ Qr.T


def _top_svd(X: Tensor, rank: int, seed: int, svd: str) -> tuple[Tensor, Tensor, Tensor]:
    check_choice("svd", svd, _SVD_METHODS)
    if svd == "exact" or (svd == "auto" and min(X.shape) <= 4 * (rank + 10)):
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        return U[:, :rank], S[:rank], Vh[:rank]
    return _randomized_svd(X, rank, torch.Generator().manual_seed(seed))


def _nndsvd_parts(U: Tensor, S: Tensor, Vh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """NNDSVD from a truncated SVD: unit directions u (m, r), v (r, n) >= 0 and scales (r,)."""
    u = torch.empty_like(U)
    v = torch.empty_like(Vh)
    scale = torch.empty_like(S)
    # the leading pair of a non-negative matrix is non-negative up to a common sign (Perron-Frobenius)
    u[:, 0] = U[:, 0].abs()
    v[0] = Vh[0].abs()
    scale[0] = S[0]
    if U.shape[1] > 1:
        x, y = U[:, 1:], Vh[1:].T  # (m, r-1), (n, r-1)
        xp, xn, yp, yn = x.clamp(min=0), (-x).clamp(min=0), y.clamp(min=0), (-y).clamp(min=0)
        nxp, nxn = torch.linalg.vector_norm(xp, dim=0), torch.linalg.vector_norm(xn, dim=0)
        nyp, nyn = torch.linalg.vector_norm(yp, dim=0), torch.linalg.vector_norm(yn, dim=0)
        mp, mn = nxp * nyp, nxn * nyn
        take_p = mp > mn
        # if both products vanish, keep whichever half of x is non-zero (x has unit norm)
        take_p = torch.where((mp == 0) & (mn == 0), nxp > 0, take_p)
        xs, ys = torch.where(take_p, xp, xn), torch.where(take_p, yp, yn)
        nx, ny = torch.where(take_p, nxp, nxn), torch.where(take_p, nyp, nyn)
        u[:, 1:] = xs / nx.clamp(min=torch.finfo(U.dtype).tiny)
        v[1:] = (ys / ny.clamp(min=torch.finfo(U.dtype).tiny)).T
        scale[1:] = S[1:] * torch.where(take_p, mp, mn)
    return u, v, scale


def nndsvd(X: Matrix, rank: int, *, seed: int = 0, svd: str = "auto", variant: str = "nndsvd") -> tuple[Tensor, Tensor]:
    """Non-negative double SVD initialization (Boutsidis and Gallopoulos 2008).

    For the leading singular triplet (s, x, y): W[:, 0] = sqrt(s) |x|, H[0] = sqrt(s) |y|.
    For every further triplet, the positive parts (x+, y+) or the negative parts (x-, y-),
    whichever has the larger ||x.|| ||y.||, are normalized to unit vectors (u, v) and
    W[:, j] = sqrt(s m) u, H[j] = sqrt(s m) v with m that product. No zero filling.

    Parameters
    ----------
    X : Tensor or ndarray (m, n)
        Non-negative.
    rank : int
        1 <= rank <= min(m, n).
    seed : int
        Seeds the randomized SVD's test matrix; the result is a deterministic function of
        (X, rank, seed) on a given device and thread count.
    svd : ``"auto"``, ``"exact"`` or ``"randomized"``
        ``auto``: exact (``torch.linalg.svd``) when min(m, n) <= 4 (rank + 10), else randomized
        (oversampling 10, one power iteration, 5 passes over X).
    variant : ``"nndsvd"`` or ``"nndsvda"``
        ``nndsvda`` (the same paper's variant, as scikit-learn's): zeros of W and H replaced by mean(X).

    Returns
    -------
    W : Tensor (m, rank), H : Tensor (rank, n)
        Non-negative, dtype and device of X (a float tensor; other input becomes float64).
    """
    X = torch.as_tensor(X)
    if not X.is_floating_point():
        X = X.to(torch.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {tuple(X.shape)}")
    rank = check_int("rank", rank, minimum=1)
    check_choice("variant", variant, INITS)
    if rank > min(X.shape):
        raise ValueError(f"rank must be <= min(X.shape) = {min(X.shape)}, got {rank}")
    low = float(X.min())
    if low < 0:
        raise ValueError(f"X must be non-negative, its minimum is {low!r}")
    U, S, Vh = _top_svd(X, rank, seed, svd)
    u, v, scale = _nndsvd_parts(U, S, Vh)
    root = scale.sqrt()
    W, H = u * root, v * root[:, None]
    if variant == "nndsvda":
        avg = X.mean()
        W = torch.where(W > 0, W, avg)
        H = torch.where(H > 0, H, avg)
    return W, H


def _init_factor(X: Tensor, d: int, seed: int, init: str, *, weight: float = 1.0) -> Tensor:
    """Unit-column NNDSVD (``nndsvd``) or NNDSVDa (``nndsvda``, zeros filled with mean(X)) left factor of X.

    ``weight``: the factor of ``weight * X`` (the solvers' block scaling), without forming it; only
    NNDSVDa depends on it (the singular values and the mean scale with it, by different powers).
    """
    U, S, Vh = _top_svd(X, d, seed, "auto")
    u, _, scale = _nndsvd_parts(U, S, Vh)
    if init == "nndsvda":
        W = u * (scale * weight).sqrt()
        W = torch.where(W > 0, W, X.mean() * weight)
        norm = torch.linalg.vector_norm(W, dim=0)
        u = torch.where(norm > 0, W / torch.where(norm > 0, norm, 1.0), u)
    return u.contiguous()
