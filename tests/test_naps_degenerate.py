"""NAP clustering on degenerate inputs (issue #12): duplicate rows, tied merge heights, row order.

References: hdbscan called directly (where the fix does not apply, and to show the faults), and a
brute-force HDBSCAN* written from its definition (all tied edges removed at once; Campello et al. 2015,
Alg. 1; the authors' reference implementation HDBSCANStar.java does the same).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hdbscan
import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import cdist

from conceptscope import activations, naps

LEAF = {"min_cluster_size": 5, "min_samples": 5, "cluster_selection_method": "leaf"}
FC_CACHE = Path(os.environ.get("CONCEPTSCOPE_FC_CACHE", "results/activations/resnet18_cifar/test/fc.h5"))


def _hdbscan_star_leaf(D: np.ndarray, min_cluster_size: int = 5, min_samples: int = 5):
    """Brute-force HDBSCAN* with leaf selection from a distance matrix: labels, probabilities, persistence, GLOSH.

    Core distance: the min_samples-th smallest distance of a row counting itself (as hdbscan). A cluster S
    is cut at the largest weight w of its minimum spanning tree: all edges of weight >= w go at once, the
    components of the rest are the pieces; pieces of >= min_cluster_size points become new clusters if
    there are two or more, a single one continues S, smaller ones fall out at lambda = 1/w. Persistence:
    sum over members of (lambda_out - lambda_birth) / (size x largest lambda of the tree), as hdbscan.
    """
    n = len(D)
    k = min(n - 1, min_samples)
    core = np.sort(D, axis=0)[k]
    M = np.maximum(D, np.maximum(core[:, None], core[None, :]))
    lam_out, last = np.zeros(n), np.full(n, -1)  # lambda at which a point leaves its last cluster, and that cluster
    births, parents, members, has_child = [0.0], [-1], [np.arange(n)], [False]
    stack = [(0, np.arange(n))]
    while stack:
        c, S = stack.pop()
        while True:
            sub = M[np.ix_(S, S)]
            w = minimum_spanning_tree(sub).data.max()
            n_pieces, piece = connected_components(sub < w, directed=False)
            pieces = [S[piece == g] for g in range(n_pieces)]
            big = [g for g in pieces if len(g) >= min_cluster_size]
            for g in pieces:
                if len(g) < min_cluster_size:
                    lam_out[g], last[g] = 1.0 / w, c
            if len(big) == 1:
                S = big[0]
                continue
            if len(big) >= 2:
                has_child[c] = True
                for g in big:
                    births.append(1.0 / w), parents.append(c), members.append(g), has_child.append(False)
                    stack.append((len(births) - 1, g))
            break
    leaves = [c for c in range(1, len(births)) if not has_child[c]]
    labels, probabilities = np.full(n, -1), np.zeros(n)
    lam_max = max(lam_out.max(), max(births))
    persistence = np.zeros(len(leaves))
    for i, c in enumerate(leaves):
        pts = members[c]
        labels[pts] = i
        persistence[i] = (lam_out[pts] - births[c]).sum() / (len(pts) * lam_max)
        probabilities[pts] = lam_out[pts] / lam_out[pts].max()
    death = np.zeros(len(births))  # the largest lambda in each cluster's subtree
    np.maximum.at(death, last, lam_out)
    for c in range(len(births) - 1, 0, -1):
        death[parents[c]] = max(death[parents[c]], death[c])
    return labels, probabilities, persistence, (death[last] - lam_out) / death[last]


def label_map(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """perm with got == perm[ref]; asserts the two labelings are one partition with the same noise."""
    pairs = set(zip(ref.tolist(), got.tolist(), strict=True))
    to_got = dict(pairs)
    assert len(pairs) == len(to_got) == len(set(to_got.values()))
    assert to_got.get(-1, -1) == -1
    return np.array([to_got[k] for k in range(int(ref.max()) + 1)], dtype=np.int64)


def assert_equals_bruteforce(got: naps.ClusterResult, D: np.ndarray) -> None:
    labels, probabilities, persistence, outliers = _hdbscan_star_leaf(D)
    perm = label_map(got.labels, labels)
    np.testing.assert_allclose(got.persistence[perm], persistence, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.probabilities, probabilities, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.outlier_scores, outliers, rtol=1e-9, atol=1e-12)


def _assert_row_order_independent(X: np.ndarray, got: naps.ClusterResult, n_orders: int = 6) -> None:
    for seed in range(n_orders):
        p = np.random.default_rng(seed).permutation(len(X))
        other = naps.cluster(X[p])
        np.testing.assert_array_equal(other.labels, got.labels[p])
        np.testing.assert_array_equal(other.probabilities, got.probabilities[p])
        np.testing.assert_array_equal(other.outlier_scores, got.outlier_scores[p])
        np.testing.assert_array_equal(other.persistence, got.persistence)
        assert other.diagnostics == got.diagnostics


# -- duplicate rows ------------------------------------------------------------------------------


def _three_blobs() -> np.ndarray:
    """90 rows in 8-D: blobs of 30 rows with spreads 0.1, 0.3, 0.6 (the issue's case)."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0.0, 3.0, (3, 8))
    return np.concatenate([c + rng.normal(0.0, s, (30, 8)) for c, s in zip(centres, (0.1, 0.3, 0.6), strict=True)])


def _blob_persistence(res: naps.ClusterResult) -> np.ndarray:
    """Persistence of the cluster holding each blob's rows (each blob is one cluster here)."""
    out = []
    for b in range(3):
        lab = np.unique(res.labels[30 * b : 30 * b + 30])
        assert lab.shape == (1,) and lab[0] >= 0
        out.append(res.persistence[lab[0]])
    return np.array(out)


def test_three_blobs_without_duplicates_equal_hdbscan():
    X = _three_blobs()
    got = naps.cluster(X)
    ref = hdbscan.HDBSCAN(**LEAF).fit(X)
    perm = label_map(got.labels, ref.labels_)
    np.testing.assert_allclose(got.persistence[perm], ref.cluster_persistence_, rtol=1e-9)  # KD-tree distances
    np.testing.assert_allclose(_blob_persistence(got), [0.782, 0.226, 0.071], atol=5e-4)  # tightest blob first
    assert got.diagnostics["duplicate_rows"] == 0 and got.diagnostics["lambda_cap"] is None


@pytest.mark.parametrize("where", ["zeros", "blob0", "blob1", "blob2"])
def test_duplicate_rows_keep_the_persistence_ranking(where, caplog):
    X = _three_blobs()
    base = naps.cluster(X)
    extra = np.zeros((6, 8)) if where == "zeros" else np.repeat(X[30 * int(where[-1]) + 7][None], 6, axis=0)
    Y = np.concatenate([X, extra])
    # the fault: hdbscan scores every cluster 1.0 once >= min_samples + 1 rows coincide (lambda = 1/0)
    np.testing.assert_array_equal(hdbscan.HDBSCAN(**LEAF).fit(Y).cluster_persistence_, 1.0)
    with caplog.at_level(logging.INFO, logger="conceptscope"):
        got = naps.cluster(Y)
    assert len(got.persistence) == 3
    want = _blob_persistence(base)
    if where == "zeros":  # one more distinct row (noise, far away): close, same ranking
        np.testing.assert_allclose(_blob_persistence(got), want, atol=0.02)
        assert (got.labels[90:] == got.labels[90]).all() and (got.probabilities[90:] == got.probabilities[90]).all()
    else:  # the same distinct rows: the same clustering, the copies as their row
        np.testing.assert_array_equal(_blob_persistence(got), want)
        np.testing.assert_array_equal(got.labels[:90], base.labels)
        np.testing.assert_array_equal(got.probabilities[:90], base.probabilities)
        np.testing.assert_array_equal(got.labels[90:], base.labels[30 * int(where[-1]) + 7])
        np.testing.assert_array_equal(got.probabilities[90:], base.probabilities[30 * int(where[-1]) + 7])
    assert list(np.argsort(-_blob_persistence(got))) == [0, 1, 2]
    d = got.diagnostics
    assert (d["duplicate_rows"], d["duplicate_groups"], d["distinct_rows"]) == (
        (5, 1, 91) if where == "zeros" else (6, 1, 90)
    )
    assert d["largest_duplicate_group"] == (6 if where == "zeros" else 7)
    assert f"{d['duplicate_rows']} duplicate another input" in caplog.text


def test_extract_naps_counts_duplicates_in_meta_and_sizes():
    X = _three_blobs()
    Y = np.concatenate([X, np.repeat(X[:1], 6, axis=0)])
    n = len(Y)
    res = naps.extract_naps(
        Y,
        kind="dense",
        method="max",
        unit_shape=(8,),
        labels=np.zeros(n),
        predictions=np.zeros(n),
        sample_ids=np.arange(n),
    )
    assert res.meta["duplicate_rows"] == 6 and res.meta["largest_duplicate_group"] == 7
    assert res.n_naps == 3 and res.size.sum() == np.sum(res.nap >= 0)
    assert res.size[res.nap[0]] == 36  # the NAP of row 0 counts its copies
    assert (np.diff(res.persistence) < 0).all()


def test_duplicates_collapse_to_hdbscan_on_the_distinct_rows():
    rng = np.random.default_rng(3)
    distinct = np.concatenate([c + rng.normal(0, 0.4, (40, 6)) for c in rng.normal(0, 4, (4, 6))])
    X = distinct[rng.integers(0, len(distinct), 400)]  # each row 0..many times
    got = naps.cluster(X)
    rows, inverse = np.unique(X, axis=0, return_inverse=True)
    ref = hdbscan.HDBSCAN(metric="precomputed", **LEAF).fit(cdist(rows, rows))
    perm = label_map(got.labels, ref.labels_[inverse])
    np.testing.assert_allclose(got.persistence[perm], ref.cluster_persistence_, rtol=1e-9)
    np.testing.assert_allclose(got.probabilities, ref.probabilities_[inverse], rtol=1e-9, atol=1e-12)
    assert got.diagnostics["distinct_rows"] == len(rows) and got.diagnostics["duplicate_rows"] == 400 - len(rows)
    _assert_row_order_independent(X, got, n_orders=3)


def test_distinct_rows_at_distance_zero_get_finite_lambdas():
    # six rows that differ only by 1e-200 (distance underflows to 0): hdbscan's lambdas are infinite
    X = np.concatenate([_three_blobs(), np.zeros((90, 1))], axis=1)
    extra = np.repeat(X[37][None], 6, axis=0)
    extra[:, 8] = np.arange(1, 7) * 1e-200
    Y = np.concatenate([X, extra])
    assert naps.pairwise_distances(Y)[90:, 90:].max() == 0.0 and len(np.unique(Y, axis=0)) == 96
    ref = hdbscan.HDBSCAN(**LEAF).fit(Y)
    np.testing.assert_array_equal(ref.cluster_persistence_, 1.0)
    got = naps.cluster(Y)
    perm = label_map(got.labels, ref.labels_)
    # by hand from hdbscan's condensed tree: infinite lambdas capped at the largest finite one
    tree = ref.condensed_tree_.to_numpy()
    lam = tree["lambda_val"]
    cap = lam[np.isfinite(lam)].max()
    lam = np.minimum(lam, cap)
    assert got.diagnostics["lambda_cap"] == pytest.approx(cap, rel=1e-9)  # (KD-tree vs. product distances)
    assert got.diagnostics["infinite_lambdas"] == np.sum(tree["lambda_val"] > cap) == 7
    links = tree[tree["child_size"] > 1]
    leaves = sorted(c for c in links["child"] if c not in set(links["parent"]))  # label k = k-th leaf
    assert len(leaves) == len(got.persistence) == 3
    for k, c in enumerate(leaves):
        birth, rows = lam[tree["child"] == c][0], tree["parent"] == c
        stability = np.sum((lam[rows] - birth) * tree["child_size"][rows])
        assert got.persistence[perm[k]] == pytest.approx(stability / (np.sum(ref.labels_ == k) * cap), rel=1e-8)
    assert (got.persistence < 1).all() and len(set(got.persistence)) == len(got.persistence)


# -- ties and row order --------------------------------------------------------------------------


def _lattice(seed: int = 7) -> np.ndarray:
    """Distinct integer points around 4 centres in 3-D: most mutual reachability weights tie."""
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 6, (4, 3))
    X = np.unique(np.round(c[rng.integers(0, 4, 200)] + rng.normal(0, 2.0, (200, 3))), axis=0)
    return X[rng.permutation(len(X))]


def test_tied_merges_are_simultaneous_and_independent_of_row_order():
    X = _lattice()
    # the fault: hdbscan's count depends on the row order (3, 4, 5 or 6 here)
    counts = set()
    for seed in range(8):
        p = np.random.default_rng(seed).permutation(len(X))
        counts.add(int(hdbscan.HDBSCAN(metric="precomputed", **LEAF).fit(cdist(X[p], X[p])).labels_.max()) + 1)
    assert len(counts) > 1
    got = naps.cluster(X)
    assert_equals_bruteforce(got, cdist(X, X))
    assert len(got.persistence) == 2
    d = got.diagnostics
    assert (d["mst_edges"], d["tied_mst_edges"], d["simultaneous_merges"]) == (181, 178, 16)
    assert d["n_clusters_hdbscan"] in counts
    _assert_row_order_independent(X, got)


def test_tiled_path_is_independent_of_row_order():
    # the tiled path (above max_precomputed) on the same canonical rows, ties merged at once as on the
    # precomputed path
    X = _lattice()
    got = naps.cluster(X, max_precomputed=0)
    assert got.path == "tiled" and got.diagnostics["simultaneous_merges"] > 0
    assert_equals_bruteforce(got, cdist(X, X))
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(len(X))
        other = naps.cluster(X[p], max_precomputed=0)
        np.testing.assert_array_equal(other.labels, got.labels[p])
        np.testing.assert_array_equal(other.persistence, got.persistence)


@pytest.mark.parametrize("seed", [0, 4, 8])
def test_tied_merges_match_bruteforce_on_more_lattices(seed):
    X = _lattice(seed)
    assert_equals_bruteforce(naps.cluster(X), cdist(X, X))


def test_extract_naps_is_independent_of_row_order():
    X = _lattice()
    n = len(X)
    kw = {"kind": "dense", "method": "max", "unit_shape": (3,), "predictions": np.zeros(n, dtype=int)}
    a = naps.extract_naps(X, labels=np.arange(n) % 3, sample_ids=np.arange(n), **kw)
    p = np.random.default_rng(0).permutation(n)
    b = naps.extract_naps(X[p], labels=(np.arange(n) % 3)[p], sample_ids=np.arange(n)[p], **kw)
    np.testing.assert_array_equal(b.nap, a.nap[p])
    np.testing.assert_array_equal(b.persistence, a.persistence)
    np.testing.assert_array_equal(b.stats, a.stats)
    np.testing.assert_array_equal(b.mix_table(), a.mix_table())
    for key in ("tied_mst_edges", "simultaneous_merges", "n_clusters_hdbscan", "duplicate_rows"):
        assert a.meta[key] == b.meta[key]


@pytest.mark.skipif(not FC_CACHE.exists(), reason=f"no activation cache {FC_CACHE} (set CONCEPTSCOPE_FC_CACHE)")
def test_resnet18_cifar_fc_cache():
    """The issue's case: ResNet-18 CIFAR fc, 450 x 10, 77 of 449 MST weights tied; hdbscan gave 12 or 13."""
    cache = activations.read_cache(FC_CACHE)
    X = naps.normalize(cache.arrays["values"], kind="dense", method="max", unit_shape=cache.unit_shape)
    got = naps.cluster(X)
    assert_equals_bruteforce(got, naps.pairwise_distances(X))
    assert len(got.persistence) == 12
    assert (got.diagnostics["mst_edges"], got.diagnostics["tied_mst_edges"]) == (449, 77)
    _assert_row_order_independent(X, got, n_orders=4)


# -- arguments -----------------------------------------------------------------------------------


def test_cluster_rejects_bad_input_and_parameters():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="unsupported HDBSCAN parameters"):
        naps.cluster(X, metric="manhattan")
    with pytest.raises(ValueError, match="min_cluster_size"):
        naps.cluster(X, min_cluster_size=1)
    with pytest.raises(ValueError, match="cluster_selection_method"):
        naps.cluster(X, cluster_selection_method="tree")
    with pytest.raises(ValueError, match="2-D"):
        naps.cluster(X[:, 0])
    Y = X.copy()
    Y[[3, 8], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"non-finite values in 2 rows \(first: \[3, 8\]\)"):
        naps.cluster(Y)


def test_too_few_distinct_rows_are_all_noise():
    X = np.repeat(np.eye(3), 10, axis=0)  # 30 inputs, 3 distinct rows
    got = naps.cluster(X)
    assert got.path == "too-few-inputs"
    np.testing.assert_array_equal(got.labels, -1)
    assert got.diagnostics["distinct_rows"] == 3 and got.diagnostics["duplicate_rows"] == 27


def test_canonical_order_sorts_rows_lexicographically():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (300, 40)).astype(float)  # long runs of rows equal on the first 16 columns
    X[-5:] = X[0]
    order, first = naps.canonical_order(X)
    want = np.lexsort(X.T[::-1])
    np.testing.assert_array_equal(X[order], X[want])
    np.testing.assert_array_equal(np.sort(order), np.arange(300))
    distinct = np.unique(X, axis=0)
    np.testing.assert_array_equal(X[order][first], distinct)
    np.testing.assert_array_equal(naps.canonical_order(X[:, :5])[1].sum(), len(np.unique(X[:, :5], axis=0)))
