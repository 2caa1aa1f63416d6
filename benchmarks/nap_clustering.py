"""Benchmark: NAP clustering, hdbscan's default path vs. :func:`conceptscope.naps.cluster`.

Measures the wall-clock seconds of HDBSCAN with the NAP parameters
(euclidean, ``min_cluster_size=5``, ``min_samples=5``, leaf selection) on
seeded synthetic rows shaped like unit-normalized ReLU activations of a
2,048-unit layer (ResNet50's pooled features):

- ``--n`` rows (default 4,000) drawn around ~20 sparse non-negative cluster
  centres (unequal sizes) plus 5 % background rows, ReLU'd and then
  unit-normalized with :func:`conceptscope.naps.normalize` (dense layer).
- Case 1, same data, same run: ``hdbscan.HDBSCAN(...).fit(X)`` (the package's
  default path; above 60 features an exact Prim's MST on a KD-tree) vs.
  ``naps.cluster(X)`` (exact distances as matrix products, then
  ``metric="precomputed"``, rows in canonical order, tied merges
  simultaneous). The labels must be the same partition (the same clusters and
  noise; cluster ids may be numbered differently, as the row order differs),
  asserted unless ties decide hdbscan's tree (``naps.cluster`` reports it in
  ``diagnostics``); then the two counts are printed instead.
- Case 2: ``naps.cluster`` alone on ``--large-n`` rows (default 12,811, the
  NAP paper's ImageNet subset); goal <= 30 s.

The last line is ``ratio=<x>``: default seconds / ours seconds in case 1
(goal >= 25).

    python benchmarks/nap_clustering.py [--n 4000] [--features 2048] [--large-n 12811] [--skip-large]
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="rows of the comparison case")
    parser.add_argument("--features", type=int, default=2048, help="features (units) per row")
    parser.add_argument("--large-n", type=int, default=12811, help="rows of the ours-only case")
    parser.add_argument("--skip-large", action="store_true", help="skip the ours-only case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X = synthetic_activations(args.n, args.features, seed=args.seed)
    t0 = time.perf_counter()
    ref = hdbscan.HDBSCAN(**naps.HDBSCAN_PARAMS).fit(X)  # the package's default path, NAP parameters
    default_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = naps.cluster(X)
    ours_s = time.perf_counter() - t0
    n_clusters = len(ours.persistence)
    same = _same_partition(ref.labels_, ours.labels)
    ties = ours.diagnostics["n_clusters_hdbscan"] != n_clusters
    assert same or ties, "labels differ between hdbscan's default path and naps.cluster"
    print(f"data: n={args.n} features={args.features} clusters={n_clusters} noise={int(np.sum(ours.labels < 0))}")
    print(f"ties: {ours.diagnostics['tied_mst_edges']} of {ours.diagnostics['mst_edges']} MST weights tied")
    print(f"hdbscan default path: {default_s:.2f} s")
    print(f"naps.cluster ({ours.path}): {ours_s:.2f} s")
    print(
        "labels: the same partition"
        if same
        else f"labels differ: ties decide hdbscan's tree ({int(ref.labels_.max()) + 1} vs {n_clusters} clusters)"
    )

    if not args.skip_large:
        XL = synthetic_activations(args.large_n, args.features, seed=args.seed + 1)
        t0 = time.perf_counter()
        large = naps.cluster(XL)
        large_s = time.perf_counter() - t0
        print(
            f"large: n={args.large_n} features={args.features} naps.cluster ({large.path}): {large_s:.2f} s "
            f"clusters={len(large.persistence)} (goal <= 30 s)"
        )
    print(f"ratio={default_s / ours_s:.1f}")


if __name__ == "__main__":
    main()
