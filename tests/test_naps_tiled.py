"""The bounded-memory MST (conceptscope.naps.reachability, issue #16) against hdbscan and brute force.

References: hdbscan's exact paths called directly (``prims_kdtree``, ``generic``), hdbscan's own
``mutual_reachability`` + ``mst_linkage_core`` on the full matrix, scipy's MST, and the brute-force HDBSCAN*
of test_naps_degenerate (tied edges removed at once).
"""

from __future__ import annotations

import json
import subprocess
import sys

import hdbscan
import numpy as np
import pytest
import torch
from hdbscan._hdbscan_linkage import mst_linkage_core
from hdbscan._hdbscan_reachability import mutual_reachability
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs
from test_naps import digits_cache
from test_naps_degenerate import LEAF, _lattice, assert_equals_bruteforce, label_map

from conceptscope import naps
from conceptscope.naps import reachability


def _blobs(seed: int, n_features: int, n: int = 300, std: float = 2.0) -> np.ndarray:
    return make_blobs(n_samples=n, n_features=n_features, centers=6, cluster_std=std, random_state=seed)[0]


def _reference_weights(X: np.ndarray, min_samples: int) -> np.ndarray:
    """Sorted MST weights by hdbscan's own routines on the full distance matrix."""
    return np.sort(mst_linkage_core(mutual_reachability(cdist(X, X), min_samples))[:, 2])


def _assert_same(got: naps.ClusterResult, ref: hdbscan.HDBSCAN | naps.ClusterResult) -> None:
    """One partition and noise set; the same probabilities, outlier scores and persistence.

    Cluster ids may differ: hdbscan numbers the clusters along its binary tree, whose order among tied
    merge heights follows the order of the MST's edges (Prim's visiting order on the precomputed path).
    """
    if isinstance(ref, naps.ClusterResult):
        ref_labels, ref_p, ref_o, ref_pers = ref.labels, ref.probabilities, ref.outlier_scores, ref.persistence
    else:
        ref_labels, ref_p, ref_o = ref.labels_, ref.probabilities_, ref.outlier_scores_
        ref_pers = ref.cluster_persistence_
    perm = label_map(got.labels, ref_labels)
    np.testing.assert_allclose(got.persistence[perm], ref_pers, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.probabilities, ref_p, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.outlier_scores, ref_o, rtol=1e-9, atol=1e-12)


# -- the spanning tree itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "f", "tile_rows", "candidates", "min_samples"),
    [
        (300, 5, 64, 32, 5),  # several tiles, a tile size that does not divide n
        (300, 5, 512, 32, 5),  # n below one tile
        (257, 2, 16, 10, 5),  # many small tiles, few candidates: most edges from the component pass
        (400, 40, 100, 4, 3),  # candidates raised to 2 min_samples
        (120, 3, 7, 1, 1),  # min_samples 1: core distance = nearest neighbour
        (60, 8, 13, 200, 5),  # every other row a candidate: all verified, no component pass
    ],
)
def test_tiled_mst_weights_equal_hdbscan_on_the_full_matrix(n, f, tile_rows, candidates, min_samples):
    rng = np.random.default_rng(n + f)
    X = rng.normal(size=(n, f))
    X[: n // 3] += 4.0
    got = reachability.tiled_mst(X, min_samples, tile_rows=tile_rows, candidates=candidates, device="cpu")
    assert got.edges.shape == (n - 1, 3)
    np.testing.assert_allclose(np.sort(got.edges[:, 2]), _reference_weights(X, min_samples), rtol=1e-12, atol=1e-12)
    # a spanning tree: n - 1 edges joining all rows, and each weight is its own pair's mutual reachability
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i, j = got.edges[:, 0].astype(int), got.edges[:, 1].astype(int)
    assert connected_components(coo_matrix((np.ones(n - 1), (i, j)), shape=(n, n)), directed=False)[0] == 1
    D = cdist(X, X)
    core = np.sort(D, axis=1)[:, min(n - 1, min_samples)]
    np.testing.assert_allclose(got.core_distances, core, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.edges[:, 2], np.maximum(D[i, j], np.maximum(core[i], core[j])), rtol=1e-12)
    if candidates >= n:
        assert got.info["components"] == 1 and got.info["forest_edges"] == n - 1


def test_few_candidates_leave_components_for_the_component_pass():
    X = _blobs(0, 20)
    got = reachability.tiled_mst(X, 5, tile_rows=64, candidates=10, device="cpu")
    assert got.info["components"] > 1 and got.info["forest_edges"] < len(X) - 1
    np.testing.assert_allclose(np.sort(got.edges[:, 2]), _reference_weights(X, 5), rtol=1e-12)


def test_boruvka_passes_when_too_many_components(monkeypatch):
    # a table of at most 3 x 3 component pairs: full Boruvka passes halve the components first
    monkeypatch.setattr(reachability, "_MAX_COMPONENT_PAIRS", 9)
    X = _blobs(1, 10, n=200, std=4.0)
    got = reachability.tiled_mst(X, 5, tile_rows=32, candidates=10, device="cpu")
    assert got.info["boruvka_passes"] >= 1 and got.info["components"] <= 3
    np.testing.assert_allclose(np.sort(got.edges[:, 2]), _reference_weights(X, 5), rtol=1e-12)
    got = reachability.tiled_mst(_lattice(), 5, tile_rows=16, candidates=10, device="cpu")  # tied weights
    np.testing.assert_array_equal(np.sort(got.edges[:, 2]), _reference_weights(_lattice(), 5))


def test_precomputed_mst_is_hdbscans_generic_tree():
    X = _blobs(2, 30)
    D = cdist(X, X)
    ref = mst_linkage_core(mutual_reachability(D.copy(), 5))
    got = reachability.precomputed_mst(D.copy(), 5)
    np.testing.assert_array_equal(got.edges, ref)  # the same weights, and Prim's visits them in the same order


def test_tiled_mst_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 rows"):
        reachability.tiled_mst(np.zeros((1, 3)), 5)
    for bad in (0, 1.5, "64", True):
        with pytest.raises(ValueError, match="tile_rows must be a positive integer"):
            reachability.tiled_mst(np.eye(4), 2, tile_rows=bad)
        with pytest.raises(ValueError, match="tile_rows must be a positive integer"):
            naps.cluster(np.eye(4), tile_rows=bad)  # checked on the precomputed path too
    with pytest.raises(ValueError, match="candidates must be a positive integer"):
        reachability.tiled_mst(np.eye(4), 2, candidates=0)
    for bad in (None, -1, 2.5):
        with pytest.raises(ValueError, match="max_precomputed must be an integer >= 0"):
            naps.cluster(np.eye(4), max_precomputed=bad)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):  # models.resolve_device
            naps.cluster(np.eye(4), device="cuda")


# -- the clustering on the tiled path -------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "n_features", "tile_rows", "reference"),
    [
        (0, 10, 64, "hdbscan"),
        (1, 64, 128, "hdbscan"),
        (2, 100, 1000, "hdbscan"),  # one tile
        # 3 features: core distances tie, merges of 3+ components at one height; hdbscan's binary tree
        # sequences them (other noise points), HDBSCAN* removes tied edges at once: brute force decides
        (3, 3, 37, "bruteforce"),
        (4, 3, 37, "bruteforce"),
    ],
)
def test_tiled_path_equals_hdbscan_exact_paths(seed, n_features, tile_rows, reference):
    X = _blobs(seed, n_features)
    got = naps.cluster(X, max_precomputed=0, tile_rows=tile_rows, device="cpu")
    assert got.path == "tiled" and len(got.persistence) >= 2
    assert got.diagnostics["mst"]["tiles"] > 1 or tile_rows >= 300
    assert got.diagnostics["n_clusters_hdbscan"] is None  # hdbscan's binary tree: the precomputed path's only
    assert_equals_bruteforce(got, cdist(X, X))
    exact = [hdbscan.HDBSCAN(algorithm=a, **LEAF).fit(X) for a in ("prims_kdtree", "generic")]
    for ref in exact:
        if reference == "hdbscan":
            _assert_same(got, ref)
        else:
            assert not np.array_equal(got.labels < 0, ref.labels_ < 0)  # the tie fault, on hdbscan's side
    same = naps.cluster(X, device="cpu")  # the precomputed path: the same result
    assert same.path == "precomputed"
    _assert_same(got, same)


def test_tiled_path_is_independent_of_row_order():
    X = _blobs(4, 16)
    got = naps.cluster(X, max_precomputed=0, tile_rows=50, device="cpu")
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(300)
        other = naps.cluster(X[p], max_precomputed=0, tile_rows=50, device="cpu")
        np.testing.assert_array_equal(other.labels, got.labels[p])  # cluster ids included
        np.testing.assert_array_equal(other.persistence, got.persistence)


def test_tiled_path_with_duplicates_keeps_the_persistence_fix():
    # #9: duplicates collapse to the distinct rows on both paths; hdbscan on the distinct rows is the reference
    X = _blobs(5, 12)
    rng = np.random.default_rng(5)
    Xd = np.concatenate([X, X[rng.integers(0, 300, 40)], np.repeat(X[:1], 9, axis=0)])[rng.permutation(349)]
    got = naps.cluster(Xd, max_precomputed=0, tile_rows=64, device="cpu")
    pre = naps.cluster(Xd, device="cpu")
    assert got.diagnostics["duplicate_rows"] == 49 and got.diagnostics["distinct_rows"] == 300
    _assert_same(got, pre)
    assert (got.persistence < 1.0).all()  # not the inf-lambda persistence of 1.0 for every cluster
    ref = hdbscan.HDBSCAN(algorithm="prims_kdtree", **LEAF).fit(X)
    _, first = np.unique(Xd, axis=0, return_index=True)
    by_row = {tuple(r): i for i, r in enumerate(X)}
    back = np.array([by_row[tuple(Xd[i])] for i in first])
    perm = label_map(got.labels[first], ref.labels_[back])
    np.testing.assert_allclose(got.persistence[perm], ref.cluster_persistence_, rtol=1e-9)


@pytest.mark.parametrize("seed", [7, 0, 4])
def test_tiled_path_ties_match_bruteforce_and_row_order(seed):
    # integer lattice: most mutual reachability weights tie; tied merges are simultaneous on every path,
    # and exactly equal distances stay equal at any tile size
    X = _lattice(seed)
    got = naps.cluster(X, max_precomputed=0, tile_rows=20, device="cpu")
    assert got.diagnostics["tied_mst_edges"] > 0
    assert_equals_bruteforce(got, cdist(X, X))
    for tile_rows in (3, 64, 4096):
        other = naps.cluster(X, max_precomputed=0, tile_rows=tile_rows, device="cpu")
        np.testing.assert_array_equal(label_map(other.labels, got.labels), np.arange(len(got.persistence)))
        np.testing.assert_array_equal(np.sort(other.persistence), np.sort(got.persistence))
    for s in range(3):
        p = np.random.default_rng(s).permutation(len(X))
        other = naps.cluster(X[p], max_precomputed=0, tile_rows=33, device="cpu")
        np.testing.assert_array_equal(other.labels, got.labels[p])
        np.testing.assert_array_equal(other.persistence, got.persistence)


@pytest.mark.parametrize(("n", "min_cluster_size"), [(5, 2), (6, 3), (4, 2)])
def test_n_at_or_below_min_samples(n, min_cluster_size):
    # hdbscan caps min_samples at n - 1: the core distance is the farthest row
    X = np.random.default_rng(n).normal(size=(n, 4))
    params = {"min_cluster_size": min_cluster_size, "min_samples": 5, "cluster_selection_method": "leaf"}
    got = naps.cluster(X, max_precomputed=0, tile_rows=2, device="cpu", **params)
    pre = naps.cluster(X, device="cpu", **params)
    ref = hdbscan.HDBSCAN(algorithm="prims_kdtree", **params).fit(X)
    _assert_same(got, pre)
    assert got.path == "tiled"
    label_map(got.labels, ref.labels_)
    mst = reachability.tiled_mst(X, 5, tile_rows=2, device="cpu")
    np.testing.assert_allclose(mst.core_distances, cdist(X, X).max(axis=1), rtol=1e-12)


def test_tiled_path_logs_path_and_peak_memory(caplog):
    caplog.set_level("INFO", logger="conceptscope")
    got = naps.cluster(_blobs(6, 8), max_precomputed=10, tile_rows=64, device="cpu")
    text = caplog.text
    assert "tiled path (300 distinct rows > max_precomputed=10)" in text and "rss_gb" in text
    assert got.resources["peak_rss_gb"] > 0 and got.diagnostics["mst"]["tiles"] == 15
    assert got.resources["neighbour_pass_seconds"] > 0 and got.resources["component_pass_seconds"] > 0
    caplog.clear()
    naps.cluster(_blobs(6, 8), device="cpu")
    assert "precomputed path (300 distinct rows <= max_precomputed=" in caplog.text


_MEMORY_SCRIPT = """
import json, sys
import numpy as np
from conceptscope import naps
from conceptscope.naps.reachability import peak_memory_gb
X = np.random.default_rng(0).normal(size=(int(sys.argv[1]), 4))
naps.cluster(X[:50], max_precomputed=0, tile_rows=256)  # imports and first calls
before = peak_memory_gb()["peak_rss_gb"] * 1e9
res = naps.cluster(X, max_precomputed=int(sys.argv[2]), tile_rows=256, device="cpu")
after = peak_memory_gb()["peak_rss_gb"] * 1e9
print(json.dumps({"grew": after - before, "path": res.path}))
"""


def test_tiled_path_never_holds_the_distance_matrix():
    # 8,000 rows: the matrix would be 512 MB; the tiled path's peak grows by far less, the precomputed path's not
    n, matrix = 8000, 8000**2 * 8

    def grew(max_precomputed: int) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, str(n), str(max_precomputed)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    tiled = grew(0)
    assert tiled["path"] == "tiled" and tiled["grew"] < matrix / 4, tiled
    full = grew(n)
    assert full["path"] == "precomputed" and full["grew"] > matrix * 0.9, full


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiled_path_on_cuda_equals_cpu():
    X = _blobs(8, 64, n=3000)
    cpu = naps.cluster(X, max_precomputed=0, tile_rows=512, device="cpu")
    gpu = naps.cluster(X, max_precomputed=0, tile_rows=1024, device="cuda")
    assert gpu.resources["peak_gpu_gb"] > 0
    _assert_same(gpu, cpu)
    _assert_same(gpu, hdbscan.HDBSCAN(algorithm="prims_kdtree", **LEAF).fit(X))


def test_extract_job_above_max_precomputed_runs_the_tiled_path(tmp_path, caplog):
    """jobs.extract_naps with naps.max_precomputed below the cached inputs: the tiled path, the same NAPs."""
    from conceptscope.naps import jobs

    cache = digits_cache(tmp_path / "conv2.h5", "conv2", 300)
    results = {}
    for limit in (100, 20000):
        out = tmp_path / f"max_{limit}.h5"
        caplog.clear()
        caplog.set_level("INFO", logger="conceptscope")
        settings = {"methods": ["max"], "max_precomputed": limit}
        jobs.extract_naps(cache=cache, outputs=[out], settings=settings, device="cpu")
        results[limit] = naps.load_result(out)
        path = "tiled" if limit == 100 else "precomputed"
        assert results[limit].meta["clustering_path"] == path
        assert f"{path} path (300 distinct rows" in caplog.text and "peak rss_gb" in caplog.text
    tiled, pre = results[100], results[20000]
    assert tiled.n_naps == pre.n_naps >= 2
    np.testing.assert_array_equal(tiled.size, pre.size)
    np.testing.assert_allclose(tiled.persistence, pre.persistence, rtol=1e-9)
    np.testing.assert_array_equal(tiled.nap, pre.nap)  # ranked by persistence: the same NAP ids


def test_hdbscan_is_the_pinned_version():
    # the clustering calls hdbscan's private routines (label, mst_linkage_core, condense_tree, compute_stability,
    # get_clusters, outlier_scores): pinned in pyproject.toml and environment.yml
    from importlib.metadata import version
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert '"hdbscan==0.8.44"' in (root / "pyproject.toml").read_text()
    assert "- hdbscan=0.8.44 " in (root / "environment.yml").read_text()
    assert version("hdbscan") == "0.8.44"
