"""Benchmark: the coupled NMF solver (:func:`conceptscope.nmf.fit_coupled`) against its matrix-product floor.

The paper's problem shape (Saini and Papalexakis; ResNet-18 on CIFAR inputs):
``--n`` examples (default 10,000); three pixel matrices of 1,024 rows (32 x 32
per input channel, uniform in [0, 1)); three activation matrices of 16,384,
8,192 and 512 rows (C*H*W of layer3, layer4, avgpool), ReLU'd low-rank signal
plus noise; d = 20; 50 sweeps with ``tol=0`` (so all 50 run); float32; seeded.

- Solver: the wall-clock seconds of ``fit_coupled`` from the data tensors to the
  result, initialization (randomized NNDSVD of every matrix), checks, the
  float64 ||X||^2 and the final float64 objective and block residuals (one more
  pass over the data) included; ``--block-scaling`` (default the settings').
- Floor: the same 50 sweeps' matrix products alone, the ones the updates need:
  per matrix X with factor W, X F^T, W (F F^T), W^T X (accumulated), W^T W; per
  sweep F F^T and (sum W^T W) F; computed in the solver's own forms (F kept
  transposed, the row-blocked X F^T). Timed twice in the same run (before and
  after the solver); the smaller time is the floor.

The last line is ``ratio=<x>``: solver seconds / floor seconds (goals: ratio <= 1.3, solver <= 30 s).

    python benchmarks/nmf.py [--n 10000] [--iters 50] [--threads 0]
"""

from __future__ import annotations

import argparse
import time

import torch

from conceptscope import nmf
from conceptscope.nmf.init import _x_times
from conceptscope.nmf.settings import NmfSettings

PIXEL_ROWS = (1024, 1024, 1024)
ACTIVATION_ROWS = (16384, 8192, 512)


def synthetic_data(n: int, *, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Pixel matrices uniform in [0, 1) and ReLU'd rank-30 activations with noise; float32."""
    g = torch.Generator().manual_seed(seed)
    D = [torch.rand(rows, n, generator=g) for rows in PIXEL_ROWS]
    latent = torch.rand(30, n, generator=g)
    A = []
    for rows in ACTIVATION_ROWS:
        X = torch.randn(rows, 30, generator=g) @ latent
        X.add_(torch.randn(rows, n, generator=g), alpha=0.5).clamp_(min=0)
        A.append(X)
    return D, A


def product_floor(mats: list[torch.Tensor], d: int, iters: int, *, seed: int = 1) -> float:
    """Seconds of ``iters`` sweeps' matrix products on factors of the solver's shapes.

    The products are computed as the solver computes them (F kept transposed, Ft = F^T (N, d);
    X F^T = ``_x_times(X, Ft)`` (:mod:`conceptscope.nmf.init`), the row-blocked product; (W^T X)^T = X^T W accumulated).
    """
    g = torch.Generator().manual_seed(seed)
    n = mats[0].shape[1]
    Ws = [torch.rand(X.shape[0], d, generator=g) for X in mats]
    Ft = torch.rand(n, d, generator=g)
    t0 = time.perf_counter()
    for _ in range(iters):
        G = Ft.T @ Ft  # F F^T
        numT = torch.zeros(n, d)
        S = torch.zeros(d, d)
        for X, W in zip(mats, Ws, strict=True):
            B = _x_times(X, Ft)  # X F^T
            WG = W @ G  # W (F F^T)
            numT.addmm_(X.T, W)  # sum W^T X, transposed
            S.addmm_(W.T, W)  # sum W^T W
            del B, WG
        Ft @ S  # ((sum W^T W) F)^T
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="examples (columns)")
    parser.add_argument("--iters", type=int, default=NmfSettings.max_iter, help="sweeps")
    parser.add_argument("--components", type=int, default=NmfSettings.n_components, help="d")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-scaling", default=NmfSettings.block_scaling, help="none or frobenius")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    D, A = synthetic_data(args.n, seed=args.seed)
    mats = D + A
    gb = sum(X.numel() for X in mats) * 4 / 1e9
    rows = [X.shape[0] for X in mats]
    print(f"data: N={args.n} rows={rows} ({gb:.2f} GB float32) d={args.components} sweeps={args.iters}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    floor_before = product_floor(mats, args.components, args.iters)
    t0 = time.perf_counter()
    res = nmf.fit_coupled(
        D,
        A,
        n_components=args.components,
        max_iter=args.iters,
        tol=0.0,
        seed=args.seed,
        block_scaling=args.block_scaling,
    )
    solver_s = time.perf_counter() - t0
    floor_after = product_floor(mats, args.components, args.iters)
    floor_s = min(floor_before, floor_after)

    assert res.n_iter == args.iters, res.n_iter
    increases = sum(b > a * (1 + 1e-6) for a, b in zip(res.losses, res.losses[1:], strict=False))
    print(f"loss: {res.losses[0]:.6g} -> {res.losses[-1]:.6g}; fit {res.fits[0]:.4f} -> {res.fits[-1]:.4f}")
    print(f"sweeps with a loss increase above 1e-6 relative (float32 rounding): {increases}")
    print(
        f"block scaling {res.block_scaling}; relative residuals ||X - W F|| / ||X||: "
        + ", ".join(f"{r:.3f}" for r in res.residuals)
    )
    print(f"solver: {solver_s:.2f} s ({solver_s / args.iters * 1e3:.0f} ms per sweep, goal <= 30 s)")
    print(f"floor (products only): {floor_s:.2f} s (before {floor_before:.2f} s, after {floor_after:.2f} s)")
    print(f"ratio={solver_s / floor_s:.3f}")


if __name__ == "__main__":
    main()
