"""Benchmark: NAP clustering, hdbscan's default path vs. :func:`conceptscope.naps.cluster`, up to 50,000 rows.

Measures the wall-clock seconds of HDBSCAN with the NAP parameters
(euclidean, ``min_cluster_size=5``, ``min_samples=5``, leaf selection) on
seeded synthetic rows shaped like unit-normalized ReLU activations of a
2,048-unit layer (ResNet50's pooled features):

- rows drawn around ~20 sparse non-negative cluster centres (unequal sizes)
  plus 5 % background rows, ReLU'd and then unit-normalized with
  :func:`conceptscope.naps.normalize` (dense layer).
- Case 1, ``--n`` rows (default 4,000), same data, same run:
  ``hdbscan.HDBSCAN(...).fit(X)`` (the package's default path; above 60
  features an exact Prim's MST on a KD-tree) vs. ``naps.cluster(X)`` (the
  precomputed path: exact distances as matrix products, hdbscan's dense
  Prim's, rows in canonical order, tied merges simultaneous). The labels must
  be the same partition (the same clusters and noise; cluster ids may be
  numbered differently, as the row order differs), asserted unless ties decide:
  then hdbscan's own binary tree for the canonical order (``metric=
  "precomputed"``) must differ from ours too (our one departure there,
  documented in :mod:`conceptscope.naps.clustering`: tied merges at once, as
  HDBSCAN*), and the rows that differ are printed. Each is first called once on 200 rows, so
  that neither time holds one-time costs (imports, BLAS thread pools).
  Goal: ratio >= 30.
- Case 2: ``naps.cluster`` alone on ``--large-n`` rows (default 12,811, the
  NAP paper's ImageNet subset; the precomputed path). Goal <= 15 s. The tiled
  path then runs on the same rows (timed too) and must give the same partition.
- Case 3: ``naps.cluster`` alone on ``--huge-n`` rows (default 50,000, the
  ImageNet validation set; above ``max_precomputed``: the tiled path, also
  forced for a smaller ``--huge-n``), in a
  fresh process that loads the rows from a file and clusters 200 rows first.
  Its peak resident memory (Linux ``VmHWM``) is the clustering's, with what
  any job holds: Python, torch and hdbscan loaded (~0.5 GB) and the input
  rows (0.8 GB). The same process then times the bare float64 matrix product
  of one full tile and scales it to the tiles of both passes: the GEMM floor.
  Goals <= 10 minutes and <= 4 GB on 2 cores.

The last four lines are ``ratio=<x>`` (default seconds / ours in case 1),
``seconds_12811=<s>``, ``seconds_50000=<s>`` and ``peak_gb_50000=<g>`` (named
by the sizes given).

    python benchmarks/nap_clustering.py [--n 4000] [--features 2048] [--large-n 12811] [--huge-n 50000]
        [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hdbscan
import numpy as np

from conceptscope import naps


def synthetic_activations(n: int, features: int, *, n_centres: int = 20, seed: int = 0) -> np.ndarray:
    """Non-negative clustered rows (n, features), unit-normalized per feature; float64."""
    rng = np.random.default_rng(seed)
    # sparse non-negative centres: about 30 % of the units active per centre
    centres = np.maximum(rng.normal(0.0, 1.0, (n_centres, features)), 0) * (rng.random((n_centres, features)) < 0.3)
    sizes = rng.dirichlet(np.full(n_centres, 2.0))
    n_background = n // 20
    assign = rng.choice(n_centres, size=n - n_background, p=sizes)
    spread = rng.uniform(0.15, 0.4, n_centres)[assign, None]
    rows = centres[assign] + rng.normal(0.0, 1.0, (len(assign), features)) * spread
    background = rng.normal(0.3, 0.6, (n_background, features))
    X = np.maximum(np.concatenate([rows, background]), 0)[rng.permutation(n)]
    return naps.normalize(X, kind="dense", method="max", unit_shape=(features,))


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when labelings ``a`` and ``b`` are the same clusters and noise, up to the numbering of clusters."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    to_b = dict(pairs)
    return len(pairs) == len(to_b) == len(set(to_b.values())) and to_b.get(-1, -1) == -1


_HUGE_CASE = """
import json, sys, time
import numpy as np, torch
from conceptscope import naps
from conceptscope.naps import reachability
X = np.load(sys.argv[1])
naps.cluster(X[:200], max_precomputed=0)  # warm-up: first calls, thread pools
t0 = time.perf_counter()
res = naps.cluster(X, max_precomputed=min(naps.NapSettings.max_precomputed, len(X) - 1))  # the tiled path
seconds = time.perf_counter() - t0
peak = reachability.peak_memory_gb()["peak_rss_gb"]
rows = reachability.TILE_ROWS["cpu"]
tiles = reachability._Tiles(X, rows, torch.device("cpu"))
area = sum((a1 - a0) * (b1 - b0) for a0, a1, b0, b1 in tiles.blocks()) / rows**2  # in full tiles
x, y = tiles.x[:rows], tiles.x[rows : 2 * rows]
torch.mm(x, y.T)
t1 = time.perf_counter()
for _ in range(3):
    torch.mm(x, y.T)
tile_seconds = (time.perf_counter() - t1) / 3
print(json.dumps({"seconds": seconds, "peak_gb": peak, "path": res.path, "clusters": len(res.persistence),
                  "noise": int((res.labels < 0).sum()), "mst": res.diagnostics["mst"], "resources": res.resources,
                  "tile_gemm_seconds": tile_seconds, "full_tiles": area}))
"""


def _huge_case(X: np.ndarray) -> dict:
    """Cluster ``X`` in a fresh process (its peak memory is the clustering's) and time the GEMM floor there."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.npy"
        np.save(path, X)
        out = subprocess.run([sys.executable, "-c", _HUGE_CASE, str(path)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the {len(X)}-row case failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="rows of the comparison case")
    parser.add_argument("--features", type=int, default=2048, help="features (units) per row")
    parser.add_argument("--large-n", type=int, default=12811, help="rows of the ours-only case")
    parser.add_argument("--huge-n", type=int, default=50000, help="rows of the bounded-memory (tiled) case")
    parser.add_argument("--skip-large", action="store_true", help="skip the ours-only cases 2 and 3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X = synthetic_activations(args.n, args.features, seed=args.seed)
    hdbscan.HDBSCAN(**naps.HDBSCAN_PARAMS).fit(X[:200])  # warm-up of both: imports, thread pools, first allocations
    naps.cluster(X[:200])
    t0 = time.perf_counter()
    ref = hdbscan.HDBSCAN(**naps.HDBSCAN_PARAMS).fit(X)  # the package's default path, NAP parameters
    default_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = naps.cluster(X)
    ours_s = time.perf_counter() - t0
    n_clusters = len(ours.persistence)
    same = _same_partition(ref.labels_, ours.labels)
    if not same:  # ties decide? then hdbscan's binary tree for our canonical order differs from ours as well
        order, _ = naps.canonical_order(X)
        canon = hdbscan.HDBSCAN(metric="precomputed", **naps.HDBSCAN_PARAMS).fit(naps.pairwise_distances(X[order]))
        ties = not _same_partition(canon.labels_, ours.labels[order])
        assert ties, "labels differ between hdbscan and naps.cluster, and not through simultaneous tied merges"
    print(f"data: n={args.n} features={args.features} clusters={n_clusters} noise={int(np.sum(ours.labels < 0))}")
    print(f"ties: {ours.diagnostics['tied_mst_edges']} of {ours.diagnostics['mst_edges']} MST weights tied")
    print(f"hdbscan default path: {default_s:.2f} s")
    print(f"naps.cluster ({ours.path}): {ours_s:.2f} s")
    print(
        "labels: the same partition"
        if same
        else f"labels differ in {int(np.sum((ref.labels_ < 0) != (ours.labels < 0)))} noise assignments: tied merges "
        f"decide hdbscan's binary tree ({int(ref.labels_.max()) + 1} vs {n_clusters} clusters; ours: all at once)"
    )

    if args.skip_large:
        print(f"ratio={default_s / ours_s:.1f}")
        return
    XL = synthetic_activations(args.large_n, args.features, seed=args.seed + 1)
    t0 = time.perf_counter()
    large = naps.cluster(XL)
    large_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiled = naps.cluster(XL, max_precomputed=0)
    tiled_s = time.perf_counter() - t0
    del XL
    assert _same_partition(large.labels, tiled.labels), "the tiled and precomputed paths differ"
    print(
        f"large: n={args.large_n} features={args.features} naps.cluster ({large.path}): {large_s:.2f} s "
        f"clusters={len(large.persistence)} (goal <= 15 s); tiled path {tiled_s:.2f} s, the same partition"
    )
    XH = synthetic_activations(args.huge_n, args.features, seed=args.seed + 2)
    huge = _huge_case(XH)
    mst, res = huge["mst"], huge["resources"]
    passes = 2 + mst["boruvka_passes"] if mst["components"] > 1 else 1 + mst["boruvka_passes"]
    full_tiles = huge["full_tiles"]  # the tiles on and above the diagonal, in full tiles
    floor = passes * full_tiles * huge["tile_gemm_seconds"]
    pass_s = sum(v for k, v in res.items() if k.endswith("pass_seconds"))
    print(
        f"huge: n={args.huge_n} features={args.features} naps.cluster ({huge['path']}): {huge['seconds']:.1f} s "
        f"clusters={huge['clusters']} noise={huge['noise']} peak {huge['peak_gb']:.2f} GB "
        "(goals at 50,000 x 2,048 on 2 cores: <= 600 s, <= 4 GB)"
    )
    print(
        f"huge: {mst['tiles']} tiles of {mst['tile_rows']} rows, {passes} passes "
        f"(neighbours {res['neighbour_pass_seconds']:.1f} s, "
        f"component pass {res.get('component_pass_seconds', 0):.1f} s; "
        f"{mst['forest_edges']} of {args.huge_n - 1} MST edges verified from {mst['candidates']} candidates per row, "
        f"{mst['components']} components left); Boruvka on candidates {res['boruvka_seconds']:.1f} s; "
        f"rest (distinct rows, hdbscan's tree, labels) {huge['seconds'] - res['seconds']:.1f} s"
    )
    print(
        f"huge: GEMM floor {floor:.1f} s ({huge['tile_gemm_seconds'] * 1e3:.0f} ms per {mst['tile_rows']}-row tile "
        f"x {full_tiles:.0f} tiles x {passes} passes); the passes take {pass_s / floor:.2f}x the floor"
    )
    print(f"ratio={default_s / ours_s:.1f}")
    print(f"seconds_{args.large_n}={large_s:.2f}")
    print(f"seconds_{args.huge_n}={huge['seconds']:.1f}")
    print(f"peak_gb_{args.huge_n}={huge['peak_gb']:.2f}")


if __name__ == "__main__":
    main()
