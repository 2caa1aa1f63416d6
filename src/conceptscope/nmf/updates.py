"""The update steps of the coupled-NMF solvers (:mod:`conceptscope.nmf.solvers`).

- :func:`_sphere_update`: the constrained P / O step, the exact minimizer of Lee and Seung's
  (2001, Eq. 7's auxiliary function) diagonal majorizer over non-negative W with unit columns
  (one ridge multiplier mu_k per column, the root of a secular equation; the solvers' module
  docstring, "Unit columns and monotonicity");
- :func:`_projected_update`: the paper's literal step (multiplicative update, then unit columns);
- :func:`_group_prox_update` and :class:`_Groups`: the F step of the group-sparse variant
  (:func:`conceptscope.nmf.fit_group_sparse`).

Private helpers: they trust their inputs (shapes and signs are checked by the solvers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__: list[str] = []


def _newton_tol(dtype: torch.dtype) -> float:
    return 1e-12 if dtype == torch.float64 else 1e-5


def _sphere_update(W: Tensor, B: Tensor, G: Tensor, lam: float, *, max_newton: int = 40) -> Tensor:
    """The constrained multiplicative update of W (rows x d, unit columns) given B = X F^T, G = F F^T.

    Minimizes Lee and Seung's majorizer sum_rk c_rk (W'_rk)^2 - 2 B_rk W'_rk (c = (W G + lam W) / W,
    infinite where W = 0) over W' >= 0 with unit columns: W'[:, k] = B[:, k] / (c[:, k] + mu_k),
    mu_k > -min_r c_rk the root of ||W'[:, k]|| = 1; this is the global minimizer (the majorizer's
    curvature c + mu is positive on every free entry). Solved in the shifted variable
    tau = mu + min_{r: B_rk > 0} c_rk > 0, which keeps the dominant term exact when the root is
    close to the pole (a column concentrated on one row), by Newton's method on
    psi(tau) = 1 / ||W'(tau)||, concave and increasing, from the lower bound
    tau_0 = max_r (B_rk - c'_rk) (where one entry alone has norm 1): the iterates increase
    monotonically to the root. Columns where it does not apply keep their old values: a zero
    column of B, or the "hard case" where the root lies below the pole of a row with B_rk = 0.
    """
    den = W @ G
    if lam:
        den.add_(W, alpha=lam)
    free = W > 0  # entries at zero are frozen (infinite curvature)
    c = torch.where(free, den / W, torch.inf)
    c_min_free = c.amin(0)
    c.masked_fill_(B <= 0, torch.inf)  # rows with B = 0 get W' = 0: only their pole matters
    b = torch.where(c < torch.inf, B, 0.0)
    c_min = c.amin(0)
    movable = torch.isfinite(c_min)
    c.sub_(torch.where(movable, c_min, 0.0))
    tau_lo = (b - c).amax(0)  # > 0 on movable columns (the row of c_min gives its B)
    tau = tau_lo.clone()
    tol = _newton_tol(W.dtype)
    done = ~movable
    for _ in range(max_newton):
        t = (c + tau).reciprocal_()
        v = (b * t).square_()
        phi = v.sum(0)
        dphi = v.mul_(t).sum(0)  # -phi'(tau) / 2
        psi = phi.rsqrt()
        done = done | ((psi - 1).abs() <= tol)
        if bool(done.all()):
            break
        new = torch.maximum(tau + (1 - psi) * phi * phi.sqrt() / dphi, tau_lo)
        tau = torch.where(done, tau, new)
    Wn = b / (c + tau)
    norm = torch.linalg.vector_norm(Wn, dim=0)
    # accept converged columns whose curvature stays positive on every free row (not the hard case)
    ok = movable & ((norm - 1).abs() <= max(tol, 1e-6) ** 0.5) & (tau - c_min + c_min_free > 0)
    Wn.div_(torch.where(ok, norm, 1.0))
    return torch.where(ok, Wn, W)


def _projected_update(W: Tensor, B: Tensor, G: Tensor, lam: float) -> Tensor:
    """The paper's literal step: multiplicative update, then columns scaled to unit L2 norm."""
    den = W @ G
    if lam:
        den.add_(W, alpha=lam)
    Wn = W * B / den.clamp_(min=torch.finfo(W.dtype).tiny)
    norm = torch.linalg.vector_norm(Wn, dim=0)
    ok = norm > 0
    return torch.where(ok, Wn / torch.where(ok, norm, 1.0), W)


class _Groups:
    """Example groups as dense ids 0..n_groups-1, with segment sums over the examples of Ft (N, d)."""

    def __init__(self, groups: Sequence[int] | Tensor | np.ndarray, n_examples: int, device: torch.device):
        g = groups if isinstance(groups, Tensor) else torch.as_tensor(np.asarray(groups))
        if g.ndim != 1 or g.shape[0] != n_examples:
            raise ValueError(f"groups must have one id per example ({n_examples}), got shape {tuple(g.shape)}")
        if g.is_floating_point() or g.is_complex() or g.dtype == torch.bool:
            raise ValueError(f"groups must be integer ids, got dtype {g.dtype}")
        uniq, ids = torch.unique(g.cpu(), return_inverse=True)
        self.n_groups = int(uniq.numel())
        self.ids = ids.to(device)

    def sum(self, X: Tensor) -> Tensor:
        """Per group sums of the rows of X (N, d): (n_groups, d)."""
        out = torch.zeros(self.n_groups, X.shape[1], dtype=X.dtype, device=X.device)
        return out.index_add_(0, self.ids, X)

    def spread(self, Y: Tensor) -> Tensor:
        """Per example rows of Y (n_groups, d): (N, d)."""
        return Y.index_select(0, self.ids)

    def penalty(self, Ft: Tensor) -> float:
        """sum over components k and groups g of ||F[k, group g]||_2."""
        return float(self.sum(Ft * Ft).sqrt_().sum())


def _group_prox_update(
    Ft: Tensor, numT: Tensor, denT: Tensor, groups: _Groups, lam: float, *, max_newton: int = 60
) -> Tensor:
    """The F step of :func:`fit_group_sparse`, transposed: Ft, numT, denT are (N, d)."""
    active = Ft > 0
    M = Ft * numT / denT  # the plain multiplicative step
    C = torch.where(active, (lam / 2) * Ft / denT, 1.0)  # lam x the step size F / (2 den) of each entry
    num_active = torch.where(active, numT, 0.0)
    alive = groups.sum(num_active * num_active).mul_(4) > lam * lam  # block survives iff 2 ||num_kg|| > lam
    rho = torch.zeros(groups.n_groups, Ft.shape[1], dtype=Ft.dtype, device=Ft.device)
    tol = _newton_tol(Ft.dtype)
    done = ~alive
    for _ in range(max_newton):
        t = (groups.spread(rho) + C).reciprocal_()
        v = (M * t).square_()
        phi = groups.sum(v)
        dphi = groups.sum(v.mul_(t))  # -phi'(rho) / 2
        psi = phi.rsqrt()
        done = done | ((psi - 1).abs() <= tol)
        if bool(done.all()):
            break
        # psi(rho) = phi^(-1/2) is concave and increasing; from rho = 0 (psi < 1 on live blocks)
        # Newton's iterates increase monotonically to the root
        new = (rho + (1 - psi) * phi * phi.sqrt() / dphi).clamp_(min=0)
        rho = torch.where(done, rho, new)
    rho = torch.where(alive, rho, 0.0)
    R = groups.spread(rho)
    return M.mul_(R / (R + C))
