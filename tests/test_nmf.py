"""Coupled NMF solvers (conceptscope.nmf.solvers) against independent computations: numpy, scikit-learn, brute force."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF

from conceptscope import nmf
from conceptscope.nmf import solvers

F64 = torch.float64


def _rand(seed: int, *shapes: tuple[int, int], scale: float = 1.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(*shape, generator=g, dtype=F64) * scale for shape in shapes]


def _coupled_data(seed: int = 0, n: int = 70) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two pixel-like matrices in [0, 1) and two activation-like matrices (one of larger scale)."""
    D = _rand(seed, (30, n), (24, n))
    A = _rand(seed + 100, (40, n), (18, n))
    A[0] = A[0] * 3.0
    return D, A


def _scales(D, A, res) -> list[float]:
    """s_i of every block under the result's scaling: ||X||_F (frobenius, float64) or 1 (none)."""
    frob = res.block_scaling == "frobenius"
    return [float(torch.linalg.norm(X.double())) if frob else 1.0 for X in D + A]


def _naive_objective(D, A, res, lam_p, lam_o, lam_f) -> float:
    """The objective from explicit residual matrices, float64; of X / s and W / s under frobenius scaling."""
    F = res.F.double()
    s = _scales(D, A, res)
    lams = [lam_p] * len(D) + [lam_o] * len(A)
    total = 0.0
    for X, W, si, lam in zip(D + A, res.P + res.O, s, lams, strict=True):
        total += (
            float(((X.double() - W.double() @ F) ** 2).sum()) / si**2 + lam * float((W.double() ** 2).sum()) / si**2
        )
    return total + lam_f * float((F**2).sum())


def _assert_non_increasing(losses: list[float], slack: float = 1e-9) -> None:
    L = np.asarray(losses)
    worst = np.max((L[1:] - L[:-1]) / L[:-1])
    assert worst <= slack, f"objective increased by {worst:.3g} (relative) in a sweep"


# -- monotonicity and the objective ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lam_p", "lam_o", "lam_f"), [(0.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 2.0, 3.0), (0.5, 0.0, 10.0)]
)
@pytest.mark.parametrize("init", ["nndsvd", "nndsvda"])
@pytest.mark.parametrize("scaling", ["none", "frobenius"])
def test_coupled_objective_never_increases(lam_p, lam_o, lam_f, init, scaling):
    D, A = _coupled_data(seed=1)
    res = nmf.fit_coupled(
        D,
        A,
        n_components=5,
        max_iter=80,
        tol=0.0,
        lam_p=lam_p,
        lam_o=lam_o,
        lam_f=lam_f,
        dtype=F64,
        init=init,
        block_scaling=scaling,
    )
    assert res.block_scaling == scaling
    assert res.n_iter == 80 and len(res.losses) == len(res.fits) == 81
    _assert_non_increasing(res.losses)
    assert res.losses[-1] < 0.9 * res.losses[0]  # it did descend
    # the reported objective is the objective of the returned factors
    assert res.losses[-1] == pytest.approx(_naive_objective(D, A, res, lam_p, lam_o, lam_f), rel=1e-10)
    assert res.losses[-1] == pytest.approx(
        nmf.objective(D, A, res.P, res.O, res.F, lam_p, lam_o, lam_f, block_scaling=scaling), rel=1e-10
    )


@pytest.mark.parametrize("lam_f", [0.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_objective_never_increases(lam_f, seed):
    (X,) = _rand(seed, (45, 90), scale=2.0)
    res = nmf.fit_single(X, n_components=6, max_iter=100, tol=0.0, lam_f=lam_f, dtype=F64)
    assert res.P == [] and len(res.O) == 1
    _assert_non_increasing(res.losses)
    assert res.losses[-1] == pytest.approx(_naive_objective([], [X], res, 0.0, 0.0, lam_f), rel=1e-10)


def test_initial_loss_is_the_objective_of_the_initialization():
    D, A = _coupled_data(seed=2)
    start = nmf.fit_coupled(D, A, n_components=4, max_iter=0, lam_f=2.0, dtype=F64)
    assert start.n_iter == 0 and len(start.losses) == 1 and not start.converged
    assert start.losses[0] == pytest.approx(_naive_objective(D, A, start, 0.0, 0.0, 2.0), rel=1e-12)
    run = nmf.fit_coupled(D, A, n_components=4, max_iter=3, lam_f=2.0, dtype=F64)
    assert run.losses[0] == pytest.approx(start.losses[0], rel=1e-12)
    # the initialization: F uniform [0, 1) from torch.Generator(seed), P / O unit NNDSVD directions
    F0 = torch.rand(4, D[0].shape[1], generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(start.F, F0)
    W, _ = nmf.nndsvd(D[0], 4)
    torch.testing.assert_close(start.P[0] / D[0].norm(), W / W.norm(dim=0))  # frobenius: P_0 = ||D_0|| P^_0


def test_projected_update_is_not_monotone_but_constrained_is():
    # why the default is the constrained step: the paper's update-then-normalize raises L once lam_f > 0
    D, A = _coupled_data(seed=3)
    kwargs = {"n_components": 5, "max_iter": 60, "tol": 0.0, "lam_f": 1.0, "dtype": F64, "block_scaling": "none"}
    projected = nmf.fit_coupled(D, A, update="projected", **kwargs)
    constrained = nmf.fit_coupled(D, A, **kwargs)
    L = np.asarray(projected.losses)
    assert np.sum(L[1:] > L[:-1] * (1 + 1e-9)) >= 10
    _assert_non_increasing(constrained.losses)
    assert constrained.losses[-1] < projected.losses[-1]
    for W in projected.P + projected.O:  # the projection does give unit columns
        torch.testing.assert_close(W.norm(dim=0), torch.ones(5, dtype=F64))


def test_lam_p_and_lam_o_only_shift_the_objective():
    # under unit columns ||P_i||^2 = d: the ridge on P and O is a constant and the multiplier absorbs it
    D, A = _coupled_data(seed=4)
    kwargs = {"n_components": 5, "max_iter": 30, "tol": 0.0, "lam_f": 1.0, "dtype": F64}
    base = nmf.fit_coupled(D, A, **kwargs)
    ridged = nmf.fit_coupled(D, A, lam_p=3.0, lam_o=0.7, **kwargs)
    torch.testing.assert_close(ridged.F, base.F, rtol=1e-9, atol=1e-9)
    for a, b in zip(ridged.P + ridged.O, base.P + base.O, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    shift = 3.0 * 5 * len(D) + 0.7 * 5 * len(A)
    np.testing.assert_allclose(np.subtract(ridged.losses, base.losses), shift, rtol=1e-9)


# -- constraints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scaling", ["none", "frobenius"])
def test_unit_columns_and_non_negative_factors(dtype, scaling):
    # unit columns in the fitted problem: columns of norm 1 (none) or ||X||_F (frobenius, original scale)
    D, A = _coupled_data(seed=5)
    res = nmf.fit_coupled(D, A, n_components=6, max_iter=25, dtype=dtype, block_scaling=scaling)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert len(res.P) == 2 and len(res.O) == 2
    for W, X, s in zip(res.P + res.O, D + A, _scales(D, A, res), strict=True):
        assert W.dtype == dtype and W.shape == (X.shape[0], 6)
        assert float(W.min()) >= 0
        np.testing.assert_allclose(W.norm(dim=0).double().numpy() / s, 1.0, atol=tol)
    assert res.F.shape == (6, 70) and res.F.dtype == dtype and float(res.F.min()) >= 0


def test_sphere_update_is_the_constrained_minimizer_of_the_majorizer():
    # brute force: no non-negative unit-column W' (random ones, the old W, the normalized plain
    # multiplicative step) has a lower value of Lee and Seung's majorizer than the update
    g = torch.Generator().manual_seed(6)
    X = torch.rand(12, 40, generator=g, dtype=F64)
    F = torch.rand(3, 40, generator=g, dtype=F64)
    W = torch.rand(12, 3, generator=g, dtype=F64)
    W[torch.rand(12, 3, generator=g) < 0.2] = 0.0
    W /= W.norm(dim=0)
    B, G = X @ F.T, F @ F.T
    c = torch.where(W > 0, (W @ G) / W, torch.inf)

    def majorizer(V: torch.Tensor) -> torch.Tensor:  # per column; +inf off the support of W
        quad = torch.where(V > 0, c * V * V, 0.0)
        return (quad - 2 * B * V).sum(0)

    new = solvers._sphere_update(W, B, G, 0.0)
    np.testing.assert_allclose(new.norm(dim=0).numpy(), 1.0, atol=1e-12)
    assert bool((new[W == 0] == 0).all())
    best = majorizer(new)
    mu = W * B / (W @ G)
    candidates = [W, mu / mu.norm(dim=0)]
    for _ in range(2000):
        V = torch.rand(12, 3, generator=g, dtype=F64) ** 3 * (W > 0)
        candidates.append(V / V.norm(dim=0))
    for V in candidates:
        assert bool((best <= majorizer(V) + 1e-12).all())
    # and the true objective with F fixed does not increase
    assert float(((X - new @ F) ** 2).sum()) <= float(((X - W @ F) ** 2).sum())


# -- against scikit-learn --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_iter", [50, 200])
def test_fit_single_against_sklearn_mu(seed, max_iter):
    # Reconstruction errors ||A - O F||_F are compared (they are invariant to moving the unit-column
    # scale between O and F; with lam = 0 and one matrix the constraint does not restrict the fit).
    # 1. scikit-learn's own NNDSVD start: its H has NNDSVD's zeros, which multiplicative updates never
    #    leave; ours starts from a dense F, so ours may only be better (it is, by ~1.5 % here).
    # 2. the same start (scikit-learn init="custom" with our unit-column NNDSVD O and our F):
    #    within 1 %; the two algorithms differ (unit columns vs free scale) but reach the same error.
    rng = np.random.default_rng(seed)
    X = rng.random((60, 120))
    ours = nmf.fit_single(
        torch.from_numpy(X),
        n_components=6,
        lam_o=0.0,
        lam_f=0.0,
        max_iter=max_iter,
        tol=0.0,
        dtype=F64,
        block_scaling="none",
    )
    err = float(torch.linalg.norm(torch.from_numpy(X) - ours.O[0] @ ours.F))
    assert ours.losses[-1] == pytest.approx(err**2, rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        sk = NMF(n_components=6, solver="mu", init="nndsvd", max_iter=max_iter, tol=0.0).fit(X)
        start = nmf.fit_single(torch.from_numpy(X), n_components=6, max_iter=0, dtype=F64, block_scaling="none")
        same = NMF(n_components=6, solver="mu", init="custom", max_iter=max_iter, tol=0.0)
        same.fit(X, W=start.O[0].numpy().copy(), H=start.F.numpy().copy())
    assert err <= 1.01 * sk.reconstruction_err_
    assert err == pytest.approx(same.reconstruction_err_, rel=0.01)


# -- NNDSVD ----------------------------------------------------------------------------------------


def _nndsvd_reference(X: np.ndarray, k: int, fill: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Boutsidis and Gallopoulos (2008), Table 1, from numpy's exact SVD."""
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    W, H = np.zeros((X.shape[0], k)), np.zeros((k, X.shape[1]))
    W[:, 0], H[0] = np.sqrt(S[0]) * np.abs(U[:, 0]), np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, k):
        x, y = U[:, j], Vt[j]
        xp, xn, yp, yn = np.maximum(x, 0), np.maximum(-x, 0), np.maximum(y, 0), np.maximum(-y, 0)
        mp = np.linalg.norm(xp) * np.linalg.norm(yp)
        mn = np.linalg.norm(xn) * np.linalg.norm(yn)
        if mp > mn:
            u, v, sigma = xp / np.linalg.norm(xp), yp / np.linalg.norm(yp), mp
        else:
            u, v, sigma = xn / np.linalg.norm(xn), yn / np.linalg.norm(yn), mn
        W[:, j], H[j] = np.sqrt(S[j] * sigma) * u, np.sqrt(S[j] * sigma) * v
    if fill:
        W[W == 0], H[H == 0] = X.mean(), X.mean()
    return W, H


@pytest.mark.parametrize(("seed", "shape", "k"), [(0, (30, 50), 5), (1, (64, 20), 8), (2, (15, 15), 15)])
@pytest.mark.parametrize("variant", ["nndsvd", "nndsvda"])
def test_nndsvd_equals_reference(seed, shape, k, variant):
    X = np.random.default_rng(seed).random(shape)
    W, H = nmf.nndsvd(torch.from_numpy(X), k, variant=variant)
    W_ref, H_ref = _nndsvd_reference(X, k, fill=variant == "nndsvda")
    np.testing.assert_allclose(W.numpy(), W_ref, atol=1e-10)
    np.testing.assert_allclose(H.numpy(), H_ref, atol=1e-10)
    assert float(W.min()) >= 0 and float(H.min()) >= 0


def _planted_blocks(seed: int, m: int, n: int, k: int) -> np.ndarray:
    """Non-negative rank-k matrix of k diagonal blocks with distinct strengths."""
    rng = np.random.default_rng(seed)
    X = np.zeros((m, n))
    rows, cols = np.array_split(np.arange(m), k), np.array_split(np.arange(n), k)
    for j, (r, c) in enumerate(zip(rows, cols, strict=True)):
        X[np.ix_(r, c)] = np.outer(rng.random(len(r)) + 0.5, rng.random(len(c)) + 0.5) * (k - j)
    return X


@pytest.mark.parametrize("svd", ["exact", "randomized"])
def test_nndsvd_recovers_planted_non_negative_low_rank_matrix(svd):
    # Block-diagonal: the leading singular vectors are non-negative (one block each), so NNDSVD's
    # W @ H is the best rank-k approximation; for the exact rank-k matrix that is X itself.
    k = 4
    X = torch.from_numpy(_planted_blocks(0, 300, 500, k))
    W, H = nmf.nndsvd(X, k, svd=svd, seed=3)
    tol = 1e-10 if svd == "exact" else 1e-6
    assert float(torch.linalg.norm(X - W @ H) / torch.linalg.norm(X)) < tol
    # with multiplicative noise (full rank, still block-diagonal): the Eckart-Young error
    noise = torch.rand(X.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    noisy = X * (0.8 + 0.4 * noise)
    W, H = nmf.nndsvd(noisy, k, svd=svd, seed=3)
    s = torch.linalg.svdvals(noisy)
    best = float(s[k:].square().sum().sqrt())
    assert best > 0.05 * float(s.square().sum().sqrt())  # the noise is not negligible
    assert float(torch.linalg.norm(noisy - W @ H)) == pytest.approx(best, rel=tol)
    assert float(W.min()) >= 0 and float(H.min()) >= 0


def test_nndsvd_randomized_is_deterministic_under_a_seed():
    X = torch.from_numpy(np.random.default_rng(4).random((400, 300)))
    W1, H1 = nmf.nndsvd(X, 10, seed=7)  # min(shape) > 4 (k + 10): the randomized SVD
    W2, H2 = nmf.nndsvd(X, 10, seed=7)
    assert torch.equal(W1, W2) and torch.equal(H1, H2)
    W3, _ = nmf.nndsvd(X, 10, seed=8)
    assert not torch.equal(W1, W3)
    # the leading (Perron) pair is well separated: the same as the exact SVD's
    W_exact, _ = nmf.nndsvd(X, 10, svd="exact")
    torch.testing.assert_close(W1[:, 0], W_exact[:, 0], rtol=1e-4, atol=1e-6)


def test_fit_is_deterministic_under_a_seed():
    D, A = _coupled_data(seed=6, n=300)
    a = nmf.fit_coupled(D, A, n_components=4, max_iter=10, seed=3)
    b = nmf.fit_coupled(D, A, n_components=4, max_iter=10, seed=3)
    c = nmf.fit_coupled(D, A, n_components=4, max_iter=10, seed=4)
    assert torch.equal(a.F, b.F) and all(torch.equal(x, y) for x, y in zip(a.O, b.O, strict=True))
    assert a.losses == b.losses
    assert not torch.equal(a.F, c.F)


# -- recovery --------------------------------------------------------------------------------------


def _planted_coupled(seed: int, d: int = 4, n: int = 300):
    """D_i = P_i F, A_j = O_j F with unit-column P_i, O_j (the model's own scale convention)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, d, (n,), generator=g)
    F = torch.nn.functional.one_hot(labels, d).T.to(F64) * (0.5 + torch.rand(n, generator=g, dtype=F64)) * 5
    F += 0.25 * torch.rand(d, n, generator=g, dtype=F64)

    def factor(rows: int) -> torch.Tensor:
        W = torch.rand(rows, d, generator=g, dtype=F64) ** 3
        return W / W.norm(dim=0)

    D = [factor(rows) @ F for rows in (40, 50)]
    A = [factor(rows) @ F for rows in (60, 30)]
    return D, A


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_coupled_problem_is_recovered(seed):
    D, A = _planted_coupled(seed)
    res = nmf.fit_coupled(D, A, n_components=4, max_iter=300, tol=0.0, lam_f=0.0, dtype=F64, init="nndsvda")
    assert res.fits[-1] > 0.99
    _assert_non_increasing(res.losses)


def test_nndsvd_zeros_persist():
    # multiplicative updates never move a zero: NNDSVD's zeros stay (why init="nndsvda" exists)
    D, A = _planted_coupled(0)
    start = nmf.fit_coupled(D, A, n_components=4, max_iter=0, dtype=F64)
    res = nmf.fit_coupled(D, A, n_components=4, max_iter=100, tol=0.0, lam_f=0.0, dtype=F64)
    for W0, W in zip(start.P + start.O, res.P + res.O, strict=True):
        assert int((W0 == 0).sum()) > 0
        assert bool((W[W0 == 0] == 0).all())
    filled = nmf.fit_coupled(D, A, n_components=4, max_iter=100, tol=0.0, lam_f=0.0, dtype=F64, init="nndsvda")
    assert filled.fits[-1] > res.fits[-1]


def test_large_n_without_n_by_n_products():
    # N = 20,000: an N x N intermediate would be 3.2 GB in float64 and take far longer than this
    g = torch.Generator().manual_seed(0)
    n = 20000
    D = [torch.rand(30, n, generator=g)]
    A = [torch.rand(30, n, generator=g)]
    t0 = time.perf_counter()
    res = nmf.fit_coupled(D, A, n_components=5, max_iter=20, tol=0.0)
    assert time.perf_counter() - t0 < 10.0
    assert res.F.shape == (5, n) and res.n_iter == 20
    _assert_non_increasing(res.losses, slack=1e-5)  # float32 rounding of the expanded objective


# -- group-sparse F --------------------------------------------------------------------------------


def _block_norms(F: torch.Tensor, groups: np.ndarray) -> torch.Tensor:
    return torch.stack([F[:, torch.from_numpy(groups == g)].norm(dim=1) for g in np.unique(groups)], 1)


@pytest.mark.parametrize("lam_group", [10.0, 100.0])
def test_group_sparse_zeroes_whole_blocks_and_descends(lam_group):
    D, A = _coupled_data(seed=7, n=80)
    groups = np.arange(80) % 4
    # lam_group weighs the penalty against the data as given (block_scaling none; the unit-norm blocks of
    # frobenius scaling need a smaller weight for the same effect)
    res = nmf.fit_group_sparse(
        D, A, groups, lam_group=lam_group, n_components=5, max_iter=80, tol=0.0, dtype=F64, block_scaling="none"
    )
    _assert_non_increasing(res.losses)
    penalty = lam_group * float(_block_norms(res.F, groups).sum())
    assert res.losses[-1] == pytest.approx(_naive_objective(D, A, res, 0.0, 0.0, 1.0) + penalty, rel=1e-10)
    assert res.losses[-1] == pytest.approx(
        nmf.objective(
            D, A, res.P, res.O, res.F, 0.0, 0.0, 1.0, groups=groups, lam_group=lam_group, block_scaling="none"
        ),
        rel=1e-10,
    )
    zero_blocks = _block_norms(res.F, groups) == 0
    # zeros come in whole (component, group) blocks only
    expanded = zero_blocks[:, torch.from_numpy(groups)]
    assert torch.equal(res.F == 0, expanded)
    if lam_group >= 100:
        assert 0 < int(zero_blocks.sum()) < zero_blocks.numel()
    else:
        assert int(zero_blocks.sum()) == 0


def test_group_sparse_with_zero_weight_is_fit_coupled():
    D, A = _coupled_data(seed=8)
    groups = torch.arange(70) % 3
    a = nmf.fit_group_sparse(D, A, groups, lam_group=0.0, n_components=4, max_iter=15, dtype=F64)
    b = nmf.fit_coupled(D, A, n_components=4, max_iter=15, dtype=F64)
    torch.testing.assert_close(a.F, b.F, rtol=0, atol=0)
    assert a.losses == b.losses


def test_group_prox_step_satisfies_its_optimality_conditions():
    # the step minimizes sum K (x - m)^2 + lam sum_blocks ||x|| over x >= 0 (K = den / F, m = F num / den)
    g = torch.Generator().manual_seed(9)
    n, d, lam = 60, 3, 1.5
    Ft = torch.rand(n, d, generator=g, dtype=F64)
    ids = torch.arange(n) % 5
    numT = torch.rand(n, d, generator=g, dtype=F64) * 0.2 * (ids[:, None] + 1)  # small in some groups
    denT = torch.rand(n, d, generator=g, dtype=F64) + 0.5
    groups = solvers._Groups(ids, n, torch.device("cpu"))
    new = solvers._group_prox_update(Ft.clone(), numT, denT, groups, lam)
    K, m = denT / Ft, Ft * numT / denT
    norms = groups.sum(new * new).sqrt()
    dead = norms == 0
    assert 0 < int(dead.sum()) < dead.numel()  # both cases occur
    # dead blocks: 0 is optimal iff ||2 K m|| <= lam
    assert bool((groups.sum((2 * K * m) ** 2).sqrt()[dead] <= lam).all())
    # live blocks: 2 K (x - m) + lam x / ||x|| = 0
    grad = 2 * K * (new - m) + lam * new / groups.spread(norms).clamp(min=1e-300)
    live = ~groups.spread(dead)
    assert float(grad[live].abs().max()) < 1e-9
    assert float(new.min()) >= 0


# -- arguments, estimator, devices ------------------------------------------------------------------


def _bad(**overrides):
    D, A = _coupled_data(seed=10, n=30)
    args = {"D": D, "A": A, "n_components": 3, "max_iter": 2}
    args.update(overrides)
    D, A = args.pop("D"), args.pop("A")
    return lambda: nmf.fit_coupled(D, A, **args)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (_bad(A=[-torch.ones(5, 30, dtype=F64)]), "non-negative"),
        (_bad(A=[torch.ones(5, 29, dtype=F64)]), "examples"),
        (_bad(n_components=0), "n_components"),
        (_bad(n_components=-2), "n_components"),
        (_bad(n_components=31), "n_components"),
        (_bad(A=[torch.full((5, 30), float("nan"), dtype=F64)]), "non-finite"),
        (_bad(lam_f=-1.0), "lam_f"),
        (_bad(lam_o=float("inf")), "lam_o"),
        (_bad(tol=-1e-3), "tol"),
        (_bad(max_iter=-1), "max_iter"),
        (_bad(update="normalize"), "update"),
        (_bad(init="random"), "init"),
        (_bad(dtype=torch.float16), "dtype"),
        (_bad(D=[], A=[]), "empty"),
        (_bad(A=[torch.ones(30, dtype=F64)]), "2-D"),
        (_bad(A=torch.ones(5, 30, dtype=F64)), "sequence"),
    ],
)
def test_bad_arguments_raise_value_error(case, match):
    with pytest.raises(ValueError, match=match):
        case()


def test_bad_groups_and_nndsvd_arguments():
    D, A = _coupled_data(seed=11, n=30)
    with pytest.raises(ValueError, match="one id per example"):
        nmf.fit_group_sparse(D, A, np.arange(29), lam_group=1.0, n_components=3)
    with pytest.raises(ValueError, match="integer"):
        nmf.fit_group_sparse(D, A, np.linspace(0, 1, 30), lam_group=1.0, n_components=3)
    with pytest.raises(ValueError, match="lam_group"):
        nmf.fit_group_sparse(D, A, np.arange(30), lam_group=-1.0, n_components=3)
    with pytest.raises(ValueError, match="non-negative"):
        nmf.nndsvd(-torch.ones(4, 4), 2)
    with pytest.raises(ValueError, match="rank"):
        nmf.nndsvd(torch.ones(4, 6), 5)
    with pytest.raises(ValueError, match="rank"):
        nmf.nndsvd(torch.ones(4, 6), 0)


def test_estimator_stores_arguments_and_fits():
    est = nmf.CoupledNMF(4, max_iter=12, lam_f=0.5, dtype=F64)
    assert not hasattr(est, "F_") and est.n_components == 4 and est.lam_f == 0.5
    D, A = _coupled_data(seed=12)
    assert est.fit(D, A) is est
    ref = nmf.fit_coupled(D, A, n_components=4, max_iter=12, lam_f=0.5, dtype=F64)
    torch.testing.assert_close(est.F_, ref.F, rtol=0, atol=0)
    assert est.losses_ == ref.losses and est.n_iter_ == 12 == len(est.losses_) - 1
    assert len(est.P_) == 2 and len(est.O_) == 2


def test_fit_single_is_fit_coupled_without_pixels_and_accepts_numpy():
    (X,) = _rand(13, (35, 60))
    a = nmf.fit_single(X.numpy(), n_components=5, max_iter=10, dtype=F64)
    b = nmf.fit_coupled([], [X], n_components=5, max_iter=10, dtype=F64)
    torch.testing.assert_close(a.F, b.F, rtol=0, atol=0)
    assert a.losses == b.losses


def test_tol_stops_early_and_float32_follows_float64():
    D, A = _coupled_data(seed=14)
    res = nmf.fit_coupled(D, A, n_components=4, max_iter=500, tol=1e-4, dtype=F64)
    assert res.converged and res.n_iter < 500 and len(res.losses) == res.n_iter + 1
    assert abs(res.fits[-1] - res.fits[-2]) < 1e-4 <= abs(res.fits[-2] - res.fits[-3])
    r32 = nmf.fit_coupled(D, A, n_components=4, max_iter=20, tol=0.0, dtype=torch.float32)
    r64 = nmf.fit_coupled(D, A, n_components=4, max_iter=20, tol=0.0, dtype=F64)
    np.testing.assert_allclose(r32.losses, r64.losses, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu():
    D, A = _coupled_data(seed=15)
    cpu = nmf.fit_coupled(D, A, n_components=4, max_iter=20, tol=0.0, dtype=F64)
    gpu = nmf.fit_coupled([X.cuda() for X in D], [X.cuda() for X in A], n_components=4, max_iter=20, tol=0.0, dtype=F64)
    assert gpu.F.device.type == "cuda" and gpu.P[0].device.type == "cuda"
    torch.testing.assert_close(gpu.F.cpu(), cpu.F, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=1e-9)
    moved = nmf.fit_coupled(D, A, n_components=4, max_iter=2, dtype=F64, device="cuda")
    assert moved.F.device.type == "cuda"


# -- the package ------------------------------------------------------------------------------------


def test_solver_defaults_are_the_settings_defaults():
    import dataclasses

    settings = nmf.NmfSettings()
    for f in dataclasses.fields(nmf.SolverOptions):
        if hasattr(settings, f.name):
            assert f.default == getattr(settings, f.name), f.name
