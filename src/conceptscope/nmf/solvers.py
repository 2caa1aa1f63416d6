"""Coupled non-negative matrix factorization of pixels and activations (the solvers).

Reproduces the factorization of Saini and Papalexakis, "Analyzing
Representations inside Convolutional Neural Networks". For N examples:

- D_i (rows_i x N), one pixel matrix per input channel i, values in [0, 1];
- A_j (rows_j x N), the flattened activations (C*H*W) of probed layer j, non-negative;

share one non-negative example factor F (d x N). The objective is

    L = sum_i ||D_i - P_i F||_F^2 + sum_j ||A_j - O_j F||_F^2
        + lam_p sum_i ||P_i||_F^2 + lam_o sum_j ||O_j||_F^2 + lam_f ||F||_F^2,

with P_i, O_j, F >= 0 and every column of every P_i and O_j of unit L2 norm.
The solver is the paper's multiplicative updates (Lee and Seung, with the
ridge terms in the denominators),

    P_i <- P_i * (D_i F^T) / (P_i F F^T + lam_p P_i)                       (same for O_j, A_j, lam_o)
    F   <- F * (sum_i P_i^T D_i + sum_j O_j^T A_j) / ((sum_i P_i^T P_i + sum_j O_j^T O_j) F + lam_f F),

one sweep = all P_i and O_j (from the same F), then F.

**Unit columns and monotonicity** (a documented departure). The paper
normalizes the columns of P_i and O_j after their update. With several
matrices coupled through F the removed scale cannot be moved into F (each
matrix would need its own rescaling of F's rows), so the normalization is a
projection, and it is not a descent step: measured on small random problems,
"update, then normalize" (``update="projected"``) raised L in most sweeps
once lam_f > 0 (by up to 2e-3 relative per sweep) and converged to a point
with a larger L. The default (``update="constrained"``) is a
majorize-minimize step that respects the constraint exactly: with F fixed,
Lee and Seung's diagonal majorizer of ||X - W F||^2 at the current W is
minimized over non-negative W with unit columns. Per column k, the Lagrange
condition gives

    W[:, k] <- W[:, k] * (X F^T)[:, k] / ((W F F^T)[:, k] + (lam + mu_k) W[:, k]),

the paper's update with one extra ridge weight mu_k per column, the
multiplier that makes the column's norm exactly 1 (the root of a
one-dimensional secular equation, solved by Newton steps on 1/||w(mu)||
as for the trust-region subproblem, 2-7 steps per update). This is the global
minimizer of the majorizer on the sphere, so L never increases; the tests
check it. Consequences: under the constraint ||P_i||_F^2 = d, so lam_p and
lam_o only add the constant lam_p * d * len(D) + lam_o * d * len(A) to L and do
not change the iterates (mu_k absorbs them). When the equation has no root in
the admissible range (a column of X F^T that is zero, e.g. a row of F that is
all zero, or the degenerate "hard case"), the column is kept.

Both updates keep zeros at zero (multiplicative), so the zeros of the
NNDSVD initialization persist.

**Block scaling** (``block_scaling``, default ``"frobenius"``; a documented
departure, :mod:`conceptscope.nmf.blocks`). Under the constraint a component
has the same strength (its row of F) in every matrix, so the relative scale of
the matrices decides the fit: ||P_i F|| >= ||F|| for any unit-column P_i, and a
block much smaller than the ones that set F is fitted worse than zero (on the
default suite, the pixels: relative residual 2.51 and 1.68 with ``"none"``, the
objective as written). ``"frobenius"`` fits every block divided by its
Frobenius norm s_i (the products of block i scaled by 1 / s_i, the data never
copied) and returns the factors in the original scale (P_i = s_i P^_i, so
P_i F approximates D_i); ``losses`` and ``fits`` are the normalized problem's.
Every result carries each block's relative residual ||X - W F|| / ||X||
(``residuals``; 1 = the all-zero reconstruction).

**Initialization** (``init``, :mod:`conceptscope.nmf.init`): P_i and O_j are the
unit-normalized left factors of NNDSVD (Boutsidis and Gallopoulos 2008) of their
own matrix (``nndsvda`` fills its zeros with mean(X) first); F is uniform in
[0, 1) from ``torch.Generator().manual_seed(seed)`` (drawn in float64 and cast,
so float32 and float64 runs start alike).

**Stopping**: after ``max_iter`` sweeps, or when the relative fit
1 - sqrt(sum of squared residuals) / sqrt(sum ||X||_F^2) changes by less than
``tol`` between sweeps. Defaults (:class:`SolverOptions`) are the authors' run,
held by :class:`conceptscope.nmf.settings.NmfSettings`: d = 20, 50 iterations,
tol = 1e-8, lam_f = 1, lam_p = lam_o = 0; but ``block_scaling="frobenius"`` (the
authors' objective is ``"none"``; see "Block scaling").

**Against unconstrained multiplicative updates** (one matrix, all lambdas 0,
where unit columns do not restrict the fit; scikit-learn ``solver="mu"``):
from the same start the reconstruction errors agree within 0.1 % on uniform
random data; on strongly low-rank data (rank 6 + noise) the constrained
sweeps converge more slowly, 9-14 % higher error after 50 sweeps and 3-6 %
after 200. From scikit-learn's own NNDSVD start (its H keeps NNDSVD's zeros)
ours is 1.5-25 % lower.

**Cost**: no N x N or rows x rows matrix is formed. A sweep reads each data
matrix twice (X F^T before, W^T X after the factor update) and otherwise works
on d x d, rows x d and d x N matrices. F is kept transposed internally
(F^T, N x d), so that both data products are the fast tall-skinny forms
(X @ F^T, row-blocked on the CPU, and X^T @ W). The objective of every sweep
comes from products the updates already made, ||X - W F||^2 = ||X||^2 -
2 <W^T X, F> + <W^T W, F F^T>, with ||X||^2 accumulated once in float64 (a
float32 reduction was low by 2.6e-4 relative on a 7.4 M-entry block); in
float32 the sweep values then agree with float64 to about 1e-7 relative on the
default suite (more when the fit is very good: the error scales with
||X||^2 / SSR). The last entry of ``losses`` and ``fits`` and the block
residuals are recomputed in float64 from the returned factors, one more pass
over the data by row blocks (:mod:`conceptscope.nmf.blocks`), so they equal an
independent float64 recomputation from the saved factors. ``benchmarks/nmf.py``: the paper's
shape (N = 10,000; 3 x 1,024 pixel rows; 16,384 + 8,192 + 512 activation rows;
d = 20; 50 sweeps; float32) took 16.3-16.8 s on 2 CPU cores, 1.12-1.13 x the time of its
matrix products alone (initialization included); with the float64 norms and the final
float64 pass (and ``block_scaling="frobenius"``) 14.3 s, 1.23 x (a busier machine).

**Group-sparse F** (the paper's Table 2 extension, :func:`fit_group_sparse`):
L + lam_group * sum_k sum_g ||F[k, group g]||_2, see that function.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int, check_number
from .blocks import (
    _block_name,
    _block_weights,
    _penalty,
    _prepare,
    _residual_sq,
    _torch_dtype,
)
from .init import Matrix, _init_factor, _x_times
from .settings import BLOCK_SCALINGS, INITS, NmfSettings
from .updates import _group_prox_update, _Groups, _projected_update, _sphere_update

__all__ = [
    "UPDATES",
    "CoupledNMF",
    "CoupledNMFResult",
    "SolverOptions",
    "fit_coupled",
    "fit_group_sparse",
    "fit_single",
]

UPDATES = ("constrained", "projected")

_log = logging.getLogger("conceptscope")


# -- options and validation ----------------------------------------------------------------------


@dataclass
class SolverOptions:
    """Options of the coupled-NMF solvers; the defaults are :class:`~conceptscope.nmf.settings.NmfSettings`'s.

    Attributes
    ----------
    n_components : int
        d, at most min(rows, N) of every matrix.
    max_iter, tol
        At most ``max_iter`` sweeps (>= 0); stop when the relative fit changes by less than ``tol``.
    lam_p, lam_o, lam_f : float
        Ridge weights of P, O and F (>= 0). Under the unit-column constraint lam_p and lam_o
        only shift the objective by a constant (module docstring).
    seed : int
        Seeds F (``torch.Generator().manual_seed(seed)``) and the randomized SVDs of the
        initialization (one stream per matrix, spawned from ``numpy.random.SeedSequence(seed)``).
    dtype : ``"float32"``, ``"float64"`` or the torch dtype
    device : None (the device of the first matrix), or a device the data are moved to.
    progress : bool
        Show a tqdm bar with the loss and fit.
    update : ``"constrained"`` or ``"projected"``
        The P / O step: the exact unit-column majorize-minimize step (monotone), or the paper's
        literal update-then-normalize (not monotone when lam_f > 0).
    init : ``"nndsvd"`` or ``"nndsvda"``
        Initialization of P and O (:mod:`conceptscope.nmf.init`).
    block_scaling : ``"frobenius"`` or ``"none"``
        Fit every D_i and A_j divided by its Frobenius norm, or as given (module docstring,
        "Block scaling"); the returned factors are in the original scale either way.

    The values are checked when a solver runs, not here.
    """

    n_components: int = NmfSettings.n_components
    _: KW_ONLY  # the others by keyword only
    max_iter: int = NmfSettings.max_iter
    tol: float = NmfSettings.tol
    lam_p: float = NmfSettings.lam_p
    lam_o: float = NmfSettings.lam_o
    lam_f: float = NmfSettings.lam_f
    seed: int = 0
    dtype: torch.dtype | str = NmfSettings.dtype
    device: str | torch.device | None = None
    progress: bool = False
    update: str = "constrained"
    init: str = NmfSettings.init
    block_scaling: str = NmfSettings.block_scaling


def _dot(a: Tensor, b: Tensor) -> float:
    """<a, b> of two small tensors of the same shape, accumulated in float64."""
    return float(torch.vdot(a.reshape(-1).double(), b.reshape(-1).double()))


# -- the solver ------------------------------------------------------------------------------------


@dataclass
class CoupledNMFResult:
    """A fitted coupled NMF.

    Attributes
    ----------
    P : list of Tensor (rows_i, d)
        Pixel factors, one per D_i; non-negative, in the original scale (P_i F approximates
        D_i): unit L2 columns under ``block_scaling="none"``, columns of norm ||D_i||_F under
        ``"frobenius"``.
    O : list of Tensor (rows_j, d)
        Activation factors, one per A_j; as ``P``.
    F : Tensor (d, N)
        The shared example factor, non-negative.
    losses : list of float
        Objective (with the ridge and, for the group-sparse fit, the group penalty) at the
        initialization and after every sweep: ``n_iter + 1`` values; of the normalized blocks
        under ``"frobenius"`` (:func:`objective`). The last value is recomputed in float64 from
        the returned factors; the others come from the sweep's own products (module docstring).
    fits : list of float
        Relative fit 1 - sqrt(sum of squared residuals) / sqrt(sum ||X||^2) at the same points
        (normalized blocks under ``"frobenius"``); the last one in float64, as ``losses``.
    n_iter : int
        Sweeps run.
    converged : bool
        True when the fit changed by less than ``tol`` (False when ``max_iter`` stopped it).
    residuals : list of float
        Relative residual ||X - W F||_F / ||X||_F of every block, D blocks then A blocks, in
        float64 from the returned factors (NaN for an all-zero block); independent of the scaling.
    block_norms : list of float
        ||X||_F of every block, same order (float64 accumulation).
    block_scaling : str
        The scaling the blocks were fitted with (:data:`~conceptscope.nmf.settings.BLOCK_SCALINGS`).
    """

    P: list[Tensor]
    O: list[Tensor]  # noqa: E741 (the paper's name)
    F: Tensor
    losses: list[float] = field(default_factory=list)
    fits: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    residuals: list[float] = field(default_factory=list)
    block_norms: list[float] = field(default_factory=list)
    block_scaling: str = "none"


def _fit(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    options: SolverOptions,
    groups: Sequence[int] | Tensor | np.ndarray | None = None,
    lam_group: float | None = None,
) -> CoupledNMFResult:
    """The solver behind every ``fit_*``: checks ``options``, then the sweeps (a group penalty if ``lam_group``)."""
    d = check_int("n_components", options.n_components, minimum=1)
    max_iter = check_int("max_iter", options.max_iter, minimum=0)
    tol = check_number("tol", options.tol, minimum=0)
    lam_p = check_number("lam_p", options.lam_p, minimum=0)
    lam_o = check_number("lam_o", options.lam_o, minimum=0)
    lam_f = check_number("lam_f", options.lam_f, minimum=0)
    lam_group = check_number("lam_group", lam_group, minimum=0) if lam_group is not None else 0.0
    seed = check_int("seed", options.seed, minimum=0)
    update = check_choice("update", options.update, UPDATES)
    init = check_choice("init", options.init, INITS)
    scaling = check_choice("block_scaling", options.block_scaling, BLOCK_SCALINGS)
    dtype = _torch_dtype(options.dtype)
    progress = options.progress
    Ds, As, sq = _prepare(D, A, dtype, options.device)
    mats = Ds + As
    lams = [lam_p] * len(Ds) + [lam_o] * len(As)
    n = mats[0].shape[1]
    dev = mats[0].device
    for pos, X in enumerate(mats):
        if d > min(X.shape):
            raise ValueError(
                f"n_components={d} exceeds min(shape) = {min(X.shape)} of {_block_name(pos, len(Ds))} {tuple(X.shape)}"
            )
    # block i is fitted as X_i c_i without copying it: its products X F^T and W^T X are scaled by c_i
    weights = _block_weights(sq, len(Ds), scaling)
    grp = _Groups(groups, n, dev) if groups is not None else None
    use_group = grp is not None and lam_group > 0
    step: Callable[[Tensor, Tensor, Tensor, float], Tensor] = (
        _sphere_update if update == "constrained" else _projected_update
    )

    # initialization: NNDSVD directions per matrix (own seed each), F uniform [0, 1)
    states = np.random.SeedSequence(seed).spawn(len(mats))
    Ws = [
        _init_factor(X, d, int(ss.generate_state(1, dtype=np.uint64)[0] >> 1), init, weight=c)
        for X, ss, c in zip(mats, states, weights, strict=True)
    ]
    # F is kept transposed, Ft = F^T (N, d): then X F^T = X @ Ft and (W^T X)^T = X^T W are the
    # fast forms of the two products over the data
    # drawn in float64 whatever the dtype, so float32 and float64 runs start from the same F
    F0 = torch.rand(d, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    Ft = F0.T.to(device=dev, dtype=dtype).contiguous()
    G = Ft.T @ Ft
    sq_total = math.fsum(s * c * c for s, c in zip(sq, weights, strict=True))  # of the fitted (scaled) blocks
    tiny = torch.finfo(dtype).tiny
    losses: list[float] = []
    fits: list[float] = []

    def record(cross: float, quad: float, ridge: float) -> None:
        ssr = max(sq_total - 2.0 * cross + quad, 0.0)
        penalty = lam_f * float(G.trace()) + ridge + (lam_group * grp.penalty(Ft) if use_group else 0.0)
        losses.append(ssr + penalty)
        fits.append(1.0 - math.sqrt(ssr / sq_total) if sq_total > 0 else 1.0)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max_iter, desc="coupled NMF", unit="sweep")
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        numT = torch.zeros(n, d, dtype=dtype, device=dev)  # (sum c W^T X)^T
        S = torch.zeros(d, d, dtype=dtype, device=dev)  # sum W^T W
        cross0 = quad0 = ridge0 = 0.0
        for i, (X, lam, c) in enumerate(zip(mats, lams, weights, strict=True)):
            W = Ws[i]
            B = _x_times(X, Ft)  # X F^T (rows, d)
            if c != 1.0:
                B.mul_(c)
            if it == 1:  # the objective at the initialization, from the same product
                WtW = W.T @ W
                cross0 += _dot(B, W)
                quad0 += _dot(WtW, G)
                ridge0 += lam * float(WtW.trace())
            W = step(W, B, G, lam)
            del B
            Ws[i] = W
            S.addmm_(W.T, W)
            numT.addmm_(X.T, W, alpha=c)
        if it == 1:
            record(cross0, quad0, ridge0)
        ridge = sum(lam * float(torch.linalg.vector_norm(W)) ** 2 for W, lam in zip(Ws, lams, strict=True))
        denT = torch.addmm(Ft, Ft, S, beta=lam_f) if lam_f else Ft @ S  # ((S + lam_f I) F)^T
        denT.clamp_(min=tiny)
        if use_group:
            Ft = _group_prox_update(Ft, numT, denT, grp, lam_group)
        else:
            Ft = denT.reciprocal_().mul_(numT).mul_(Ft)
        G = Ft.T @ Ft
        record(_dot(numT, Ft), _dot(S, G), ridge)
        del numT
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.6g}", fit=f"{fits[-1]:.6f}")
        _log.debug("coupled NMF sweep %d: loss %.9g fit %.9f", it, losses[-1], fits[-1])
        if abs(fits[-1] - fits[-2]) < tol:
            converged = True
            break
    if bar is not None:
        bar.close()
    # the final objective and the block residuals, in float64 from the returned factors (original scale)
    F = Ft.T.contiguous()
    out = [W / c if c != 1.0 else W for W, c in zip(Ws, weights, strict=True)]
    ssr = [_residual_sq(X, W, F) for X, W in zip(mats, out, strict=True)]
    fitted_ssr = math.fsum(r * c * c for r, c in zip(ssr, weights, strict=True))
    penalty = _penalty(Ws, lams, F, lam_f, grp.penalty if use_group else None, lam_group)
    final = (fitted_ssr + penalty, 1.0 - math.sqrt(fitted_ssr / sq_total) if sq_total > 0 else 1.0)
    if losses:
        losses[-1], fits[-1] = final
    else:  # max_iter = 0: the objective of the initialization
        losses.append(final[0])
        fits.append(final[1])
    return CoupledNMFResult(
        P=out[: len(Ds)],
        O=out[len(Ds) :],
        F=F,
        losses=losses,
        fits=fits,
        n_iter=it,
        converged=converged,
        residuals=[math.sqrt(r / s) if s > 0 else math.nan for r, s in zip(ssr, sq, strict=True)],
        block_norms=[math.sqrt(s) for s in sq],
        block_scaling=scaling,
    )


def fit_coupled(D: Sequence[Matrix], A: Sequence[Matrix], **options: Any) -> CoupledNMFResult:
    """Coupled NMF of pixel matrices ``D`` and activation matrices ``A`` with a shared F (module docstring).

    Parameters
    ----------
    D : sequence of Tensor or ndarray (rows_i, N)
        Pixel matrices, one per input channel (may be empty). Non-negative.
    A : sequence of Tensor or ndarray (rows_j, N)
        Activation matrices of the probed layers (may be empty, not both). Non-negative.
    **options
        The fields of :class:`SolverOptions`: ``n_components``, ``max_iter``, ``tol``,
        ``lam_p``, ``lam_o``, ``lam_f``, ``seed``, ``dtype``, ``device``, ``progress``,
        ``update``, ``init``.

    Returns
    -------
    CoupledNMFResult
    """
    return _fit(D, A, SolverOptions(**options))


def fit_single(A: Matrix, **options: Any) -> CoupledNMFResult:
    """Activations-only factorization of one layer, A (rows, N) ~ O F: :func:`fit_coupled` with D = [], A = [A].

    The result has ``P == []`` and ``O == [O]``; ``lam_p`` is accepted for symmetry and unused.
    """
    return _fit([], [A], SolverOptions(**options))


def fit_group_sparse(
    D: Sequence[Matrix],
    A: Sequence[Matrix],
    groups: Sequence[int] | Tensor | np.ndarray,
    *,
    lam_group: float,
    **options: Any,
) -> CoupledNMFResult:
    """Coupled NMF with a group-sparse F (the paper's Table 2 extension).

    Objective: the coupled objective + lam_group * sum_k sum_g ||F[k, n in group g]||_2, a group
    lasso on the (component row, example group) blocks of F; ``losses`` include the penalty.

    The F step (P and O steps as in :func:`fit_coupled`) is the exact minimizer of Lee and Seung's
    majorizer plus the penalty. With den = (S + lam_f I) F and num = sum W^T X, the plain step is
    M = F * num / den = F - s * gradient with the per-entry step size s = F / (2 den); the
    majorizer is sum_kn (M_kn - x_kn)^2 / (2 s_kn) + const. Its minimizer with the penalty and
    x >= 0 is the prox of lam_group * ||.||_2 (+ the indicator of x >= 0) in that metric, per
    block (k, g):

        F[k, g] = M[k, g] * rho / (rho + lam_group * s[k, g])    (elementwise),

    where rho = ||F[k, g]|| is the root of sum_n M_n^2 / (rho + lam_group s_n)^2 = 1 (Newton), and
    the block is exactly zero when 2 ||num[k, g]|| <= lam_group (entries with F > 0). When all
    entries of a block have the same step s this is the usual group soft-thresholding
    F[k, g] = M[k, g] * max(0, 1 - s lam_group / ||M[k, g]||). Non-negativity: M >= 0 and every
    entry is only multiplied by a factor in [0, 1). Monotonicity: the majorizer touches the
    objective at the current F, so the penalized objective never increases. Entries and blocks at
    zero stay zero (multiplicative updates).

    Parameters
    ----------
    groups : sequence of int or Tensor (N,)
        Group id of every example (e.g. its class); any integers.
    lam_group : float
        Weight of the group penalty (>= 0; 0 gives :func:`fit_coupled`).
    **options
        As :func:`fit_coupled` (:class:`SolverOptions`).
    """
    return _fit(D, A, SolverOptions(**options), groups=groups, lam_group=lam_group)


class CoupledNMF(SolverOptions):
    """Estimator wrapper of :func:`fit_coupled`; ``__init__`` (that of :class:`SolverOptions`) only stores the options.

    After :meth:`fit`: ``P_``, ``O_`` (lists of Tensor), ``F_`` (d, N), ``losses_``, ``fits_``,
    ``n_iter_``, ``converged_`` and ``result_`` (the :class:`CoupledNMFResult`).
    """

    def fit(self, D: Sequence[Matrix], A: Sequence[Matrix]) -> CoupledNMF:
        """Fit to pixel matrices ``D`` and activation matrices ``A``; returns self."""
        res = _fit(D, A, self)
        self.result_ = res
        self.P_, self.O_, self.F_ = res.P, res.O, res.F
        self.losses_, self.fits_ = res.losses, res.fits
        self.n_iter_, self.converged_ = res.n_iter, res.converged
        return self
