"""NAPs (conceptscope.naps.core) against independent computations: hdbscan called directly, scipy, numpy."""

from __future__ import annotations

import hdbscan
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.datasets import make_blobs
from test_naps_degenerate import assert_equals_bruteforce, label_map

from conceptscope import activations, naps

LEAF = {"min_cluster_size": 5, "min_samples": 5, "cluster_selection_method": "leaf"}


def _blobs(seed: int, n_features: int, n: int = 300) -> np.ndarray:
    X, _ = make_blobs(n_samples=n, n_features=n_features, centers=6, cluster_std=2.0, random_state=seed)
    return X


def _assert_same_clustering(got: naps.ClusterResult, ref: hdbscan.HDBSCAN) -> None:
    """The same clusters, noise, probabilities, outlier scores and per-cluster persistence; ids may differ."""
    perm = label_map(got.labels, ref.labels_)
    np.testing.assert_allclose(got.persistence[perm], ref.cluster_persistence_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.probabilities, ref.probabilities_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.outlier_scores, ref.outlier_scores_, rtol=1e-9, atol=1e-12)
    assert got.labels.max() >= 1  # several clusters found, not a degenerate case


# -- clustering ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n_features"), [(0, 64), (1, 64), (2, 100), (3, 128)])
def test_cluster_equals_hdbscan_default_path(seed, n_features):
    # above 60 features hdbscan's default ("best") path is Prim's MST on a KD-tree: exact, like ours
    X = _blobs(seed, n_features)
    got = naps.cluster(X)
    assert got.path == "precomputed"
    _assert_same_clustering(got, hdbscan.HDBSCAN(**LEAF).fit(X))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_features", [10, 30, 50])
def test_cluster_equals_exact_euclidean_hdbscan_few_features(seed, n_features):
    # Up to 60 features the bare default is Boruvka with approx_min_span_tree=True, an *approximate*
    # MST (its merge heights can differ from the exact ones), so compare with the exact euclidean paths.
    X = _blobs(seed, n_features)
    got = naps.cluster(X)
    assert len(got.persistence) == 6  # the six blobs
    if (seed, n_features) == (1, 50):
        # four components merge at one height: hdbscan's binary tree makes a 7th, spurious cluster of them,
        # removing the tied edges at once (HDBSCAN*) does not; the brute-force HDBSCAN* is the reference
        assert got.diagnostics["n_clusters_hdbscan"] == 7
        assert_equals_bruteforce(got, naps.pairwise_distances(X))
        return
    _assert_same_clustering(got, hdbscan.HDBSCAN(algorithm="prims_kdtree", **LEAF).fit(X))
    _assert_same_clustering(got, hdbscan.HDBSCAN(approx_min_span_tree=False, **LEAF).fit(X))


@pytest.mark.parametrize(("seed", "n_features"), [(0, 10), (1, 64), (2, 100)])
def test_cluster_equals_hdbscan_on_the_canonical_row_order(seed, n_features):
    # hdbscan called directly on the rows in canonical order, with the same distances: identical output,
    # cluster ids included (these blobs have tied MST weights, but no tie that changes hdbscan's result)
    X = _blobs(seed, n_features)[np.random.default_rng(seed).permutation(300)]
    got = naps.cluster(X)
    order, first = naps.canonical_order(X)
    assert first.all()
    ref = hdbscan.HDBSCAN(metric="precomputed", **LEAF).fit(naps.pairwise_distances(X[order]))
    for name, ours, theirs in (
        ("labels", got.labels, ref.labels_),
        ("probabilities", got.probabilities, ref.probabilities_),
        ("outlier_scores", got.outlier_scores, ref.outlier_scores_),
    ):
        np.testing.assert_array_equal(ours[order], theirs, err_msg=name)
    np.testing.assert_array_equal(got.persistence, ref.cluster_persistence_)
    assert got.diagnostics["n_clusters_hdbscan"] == len(got.persistence) >= 2


@pytest.mark.parametrize(("seed", "n_features"), [(0, 20), (1, 80)])
def test_cluster_tiled_path_when_above_max_precomputed(seed, n_features):
    # above max_precomputed the bounded-memory tiled path: hdbscan's exact result, as on the precomputed path
    # (more in test_naps_tiled.py)
    X = _blobs(seed, n_features)
    got = naps.cluster(X, max_precomputed=0)
    assert got.path == "tiled"
    _assert_same_clustering(got, hdbscan.HDBSCAN(algorithm="prims_kdtree", **LEAF).fit(X))
    pre = naps.cluster(X)
    np.testing.assert_array_equal(label_map(got.labels, pre.labels), np.arange(len(pre.persistence)))


def test_too_few_inputs_are_all_noise():
    X = np.random.default_rng(0).normal(size=(4, 6))
    got = naps.cluster(X)
    assert got.path == "too-few-inputs"
    np.testing.assert_array_equal(got.labels, -1)
    assert got.persistence.shape == (0,)
    res = naps.extract_naps(
        X,
        kind="dense",
        method="max",
        unit_shape=(6,),
        labels=np.zeros(4),
        predictions=np.zeros(4),
        sample_ids=np.arange(4),
    )
    np.testing.assert_array_equal(res.nap, -1)
    assert res.n_naps == 0
    assert res.stats.shape == (0, len(naps.STATISTIC_NAMES), 6)


def test_pairwise_distances_equal_cdist():
    X = np.random.default_rng(1).normal(size=(120, 37)) * 3.0 + 1.0
    X[7], X[9] = X[3], X[3] + 1e-9  # a duplicate and a near-duplicate (the product form's noise is ~1e-7 here)
    got = naps.pairwise_distances(X, device="cpu")
    ref = cdist(X, X)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(np.diag(got), 0.0)
    np.testing.assert_array_equal(got, got.T)
    assert (got >= 0).all()
    assert got[3, 7] == 0.0 and np.array_equal(got[3], got[7])
    off = ~np.eye(len(X), dtype=bool)
    np.testing.assert_allclose(got[off], ref[off], rtol=1e-9, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pairwise_distances_and_cluster_on_cuda_equal_cpu():
    X = _blobs(0, 64)
    X[7], X[9] = X[3], X[3] + 1e-9
    got = naps.pairwise_distances(X, device="cuda")
    np.testing.assert_array_equal(got, got.T)
    np.testing.assert_array_equal(np.diag(got), 0.0)
    assert got[3, 7] == 0.0
    np.testing.assert_allclose(got, naps.pairwise_distances(X, device="cpu"), rtol=1e-9, atol=1e-12)
    gpu, cpu = naps.cluster(X, device="cuda"), naps.cluster(X, device="cpu")
    label_map(gpu.labels, cpu.labels)
    np.testing.assert_allclose(gpu.persistence, cpu.persistence, rtol=1e-9)


# -- extract_naps --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nap_result() -> tuple[np.ndarray, naps.NapResult]:
    X, y = make_blobs(
        n_samples=300, n_features=24, centers=7, cluster_std=[0.5, 1, 1.5, 2, 2.5, 3, 3.5], random_state=5
    )
    X = X - 2.0  # negative values, so the normalization divides by max |a|
    res = naps.extract_naps(
        X,
        kind="dense",
        method="max",
        unit_shape=(24,),
        labels=y,
        predictions=(y + 1) % 7,
        sample_ids=np.arange(300) + 1000,
        meta={"model": "blobs", "layer": "fc"},
    )
    return X, res


def test_extract_naps_ranking(nap_result):
    X, res = nap_result
    assert res.n_naps >= 3
    assert (np.diff(res.persistence) <= 0).all()
    # the ranks are a relabelling of hdbscan's labels; noise stays -1
    np.testing.assert_array_equal(res.nap == -1, res.hdbscan_label == -1)
    ranks = {}
    for lab in np.unique(res.hdbscan_label[res.hdbscan_label >= 0]):
        r = np.unique(res.nap[res.hdbscan_label == lab])
        assert r.shape == (1,)
        ranks[int(lab)] = int(r[0])
    assert sorted(ranks.values()) == list(range(res.n_naps))
    # rank k carries the persistence of the hdbscan cluster mapped to it
    Xn = X / np.abs(X).max(0)
    direct = naps.cluster(Xn)
    np.testing.assert_array_equal(direct.labels, res.hdbscan_label)
    for lab, k in ranks.items():
        assert res.persistence[k] == direct.persistence[lab]
    np.testing.assert_array_equal(res.size, [np.sum(res.nap == k) for k in range(res.n_naps)])
    assert res.size.sum() == np.sum(res.nap >= 0)


def test_members_sorted_by_probability(nap_result):
    _, res = nap_result
    for k in range(res.n_naps):
        m = res.members(k)
        np.testing.assert_array_equal(np.sort(m), np.flatnonzero(res.nap == k))
        p = res.probability[m]
        assert (np.diff(p) <= 0).all()
        ties = np.flatnonzero(np.diff(p) == 0)
        assert (m[ties] < m[ties + 1]).all()


def test_stats_equal_numpy(nap_result):
    X, res = nap_result
    Xn = X / np.abs(X).max(0)  # dense layer, paper normalization
    assert res.stats.shape == (res.n_naps, 7, X.shape[1])
    for k in range(res.n_naps):
        rows = Xn[res.nap == k]
        q1, q3 = np.quantile(rows, 0.25, axis=0), np.quantile(rows, 0.75, axis=0)
        lo, hi = rows.min(0), rows.max(0)
        iqr = q3 - q1
        want = {
            "min": lo,
            "q1": q1,
            "mean": rows.mean(0),
            "q3": q3,
            "max": hi,
            "lower_whisker": np.maximum(q1 - 1.5 * iqr, lo),
            "upper_whisker": np.minimum(q3 + 1.5 * iqr, hi),
        }
        for i, name in enumerate(naps.STATISTIC_NAMES):
            np.testing.assert_allclose(res.stats[k, i], want[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert not np.allclose(res.stats[:, 5], res.stats[:, 0])  # some whisker is inside [min, max]


def test_mix_counts_labels(nap_result):
    _, res = nap_result
    for k in range(res.n_naps):
        mix = res.mix(k)
        assert sum(mix.values()) == res.size[k]
        assert mix == {int(v): int(np.sum(res.labels[res.nap == k] == v)) for v in np.unique(res.labels[res.nap == k])}


def test_save_load_round_trip(nap_result, tmp_path):
    _, res = nap_result
    path = tmp_path / "naps.h5"
    naps.save_result(res, path)
    back = naps.load_result(path)
    for name in naps.core._ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name), err_msg=name)
        assert getattr(back, name).dtype == np.asarray(getattr(res, name)).dtype, name
    assert back.meta == {**res.meta, "format_version": naps.FORMAT_VERSION}
    assert back.meta["layer"] == "fc" and back.meta["clustering_path"] == "precomputed"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


# -- normalization -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conv_x() -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 4, 3, 5, generator=gen) * torch.tensor([1.0, 5.0, 0.1, 2.0])[None, :, None, None]
    x[:, 2] = 0.0  # a dead unit
    x[x.abs() < 0.2] = 0.0  # zeros elsewhere too
    return x


def _arrays(x: torch.Tensor, layout: str = "channels_first") -> dict[str, np.ndarray]:
    # small test shapes are ambiguous (channels vs spatial axes): the layout is given, as the cache does
    summary = activations.summarize(x, layout)
    return {**{k: v.numpy() for k, v in summary.items()}, "full": x.flatten(1).numpy()}


def test_normalize_none_per_unit(conv_x):
    full = conv_x.flatten(1).numpy()
    got = naps.normalize(full, kind="conv", method="none", unit_shape=(4, 3, 5))
    assert got.dtype == np.float64
    per_unit = np.abs(got.reshape(9, 4, -1)).max(axis=(0, 2))
    np.testing.assert_allclose(per_unit[[0, 1, 3]], 1.0, rtol=1e-12)
    assert per_unit[2] == 0.0 and (got.reshape(9, 4, -1)[:, 2] == 0).all()
    np.testing.assert_array_equal(got == 0, full == 0)
    np.testing.assert_array_equal(np.sign(got), np.sign(full))
    x = conv_x.double().numpy()
    divisor = np.abs(x).max(axis=(0, 2, 3))
    want = np.divide(x, divisor[None, :, None, None], out=np.zeros_like(x), where=divisor[None, :, None, None] > 0)
    np.testing.assert_allclose(got, want.reshape(9, -1), rtol=1e-12)
    # per unit, not per column: some columns of a live unit stay below 1
    assert (np.abs(got).max(0) < 1 - 1e-6).any()


@pytest.mark.parametrize("method", ["max", "min_max", "mean", "mean_std"])
def test_normalize_aggregated_per_column(conv_x, method):
    X = naps.disentangle(_arrays(conv_x), "conv", method).astype(np.float64)
    got = naps.normalize(X, kind="conv", method=method, unit_shape=(4, 3, 5))
    colmax = np.abs(got).max(0)
    nonzero = np.abs(X).max(0) > 0
    assert (~nonzero).any() and nonzero.any()
    np.testing.assert_allclose(colmax[nonzero], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(got[:, ~nonzero], 0.0)
    np.testing.assert_array_equal(np.sign(got), np.sign(X))
    np.testing.assert_allclose(got[:, nonzero], X[:, nonzero] / np.abs(X[:, nonzero]).max(0), rtol=1e-12)


def test_normalize_authors_mode(conv_x):
    X = naps.disentangle(_arrays(conv_x), "conv", "mean_std").astype(np.float64)
    got = naps.normalize(X, kind="conv", method="mean_std", unit_shape=(4, 3, 5), mode="authors")
    mean, std = X[:, :4], X[:, 4:]
    mmax = np.abs(mean).max(0)
    live = mmax > 0
    np.testing.assert_allclose(got[:, :4][:, live], mean[:, live] / mmax[live], rtol=1e-12)
    np.testing.assert_allclose(got[:, 4:][:, live], std[:, live] / np.sqrt(mmax[live]), rtol=1e-12)
    np.testing.assert_array_equal(got[:, [2, 6]], 0.0)
    paper = naps.normalize(X, kind="conv", method="mean_std", unit_shape=(4, 3, 5))
    assert not np.allclose(got[:, 4:], paper[:, 4:])
    np.testing.assert_allclose(got[:, :4], paper[:, :4], rtol=1e-12)
    # dense: one layer-wide divisor
    D = np.random.default_rng(2).normal(size=(10, 6)) * np.array([1, 2, 3, 4, 20, 0])
    got = naps.normalize(D, kind="dense", method="max", unit_shape=(6,), mode="authors")
    np.testing.assert_allclose(got, D / np.abs(D).max(), rtol=1e-12)
    assert np.abs(got).max() == pytest.approx(1.0) and np.abs(got[:, :4]).max() < 1
    paper = naps.normalize(D, kind="dense", method="max", unit_shape=(6,))
    np.testing.assert_allclose(np.abs(paper[:, :5]).max(0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(paper[:, 5], 0.0)


def test_normalize_rejects_bad_mode_and_method():
    X = np.ones((6, 3))
    with pytest.raises(ValueError, match="normalization"):
        naps.normalize(X, kind="dense", method="max", unit_shape=(3,), mode="tf")
    with pytest.raises(ValueError, match="disentanglement"):
        naps.normalize(X, kind="conv", method="avg", unit_shape=(3, 1, 1))


# -- disentanglement -----------------------------------------------------------------------------


def test_disentangle_conv_equals_numpy():
    x = torch.randn(6, 5, 4, 3, generator=torch.Generator().manual_seed(4))
    a = x.numpy().reshape(6, 5, -1)
    want = {
        "none": x.numpy().reshape(6, -1),
        "max": a.max(2),
        "min_max": np.concatenate([a.min(2), a.max(2)], axis=1),
        "mean": a.mean(2),
        "mean_std": np.concatenate([a.mean(2), a.std(2, ddof=0)], axis=1),
    }
    arrays = _arrays(x)
    for method in naps.DISENTANGLEMENTS:
        got = naps.disentangle(arrays, "conv", method)
        assert got.shape == want[method].shape, method
        np.testing.assert_allclose(got, want[method], rtol=1e-5, atol=1e-6, err_msg=method)


def test_disentangle_dense_and_errors():
    v = np.random.default_rng(5).normal(size=(4, 7)).astype(np.float32)
    for method in naps.DISENTANGLEMENTS:
        np.testing.assert_array_equal(naps.disentangle({"values": v}, "dense", method), v)
    x = torch.randn(3, 2, 2, 2, generator=torch.Generator().manual_seed(6))
    no_full = {k: v.numpy() for k, v in activations.summarize(x, "channels_first").items()}
    with pytest.raises(KeyError, match="full_maps"):
        naps.disentangle(no_full, "conv", "none")
    with pytest.raises(ValueError, match="disentanglement"):
        naps.disentangle(no_full, "conv", "median")
    with pytest.raises(ValueError, match="disentanglement"):
        naps.feature_units("conv", "median", (2, 2, 2))


@pytest.mark.parametrize("method", naps.DISENTANGLEMENTS)
def test_feature_units_conv_and_tokens(method):
    # conv (n, C, H, W) and tokens (n, T, C) whose every value is its channel index
    C, H, W, T = 5, 3, 4, 6
    conv = torch.arange(C, dtype=torch.float32)[None, :, None, None].expand(2, C, H, W).contiguous()
    tokens = torch.arange(C, dtype=torch.float32)[None, None, :].expand(2, T, C).contiguous()
    for kind, x, shape in (("conv", conv, (C, H, W)), ("tokens", tokens, (T, C))):
        cols = naps.disentangle(_arrays(x, "channels_first" if kind == "conv" else "tokens"), kind, method)
        units = naps.feature_units(kind, method, shape)
        assert units.shape == (cols.shape[1],)
        if method != "mean_std":  # (the std half is 0 everywhere)
            np.testing.assert_array_equal(units, cols[0], err_msg=kind)
        else:
            np.testing.assert_array_equal(units[:C], cols[0, :C])
            np.testing.assert_array_equal(units[C:], units[:C])
    if method == "none":
        np.testing.assert_array_equal(naps.feature_units("conv", method, (C, H, W)), np.arange(C * H * W) // (H * W))
        np.testing.assert_array_equal(naps.feature_units("tokens", method, (T, C)), np.arange(T * C) % C)
    np.testing.assert_array_equal(naps.feature_units("dense", method, (7,)), np.arange(7))


def test_mix_table_counts_labels_and_predictions_per_nap():
    rng = np.random.default_rng(5)
    X, _ = make_blobs(n_samples=120, centers=3, n_features=8, random_state=5)
    labels, preds = rng.integers(0, 4, 120), rng.integers(0, 4, 120)
    r = naps.extract_naps(
        X, kind="dense", method="max", unit_shape=(8,), labels=labels, predictions=preds, sample_ids=np.arange(120)
    )
    table = r.mix_table("labels")
    assert table.shape == (r.n_naps, 4) and (table.sum(1) == r.size).all()
    for k in range(r.n_naps):
        assert dict(enumerate(table[k])) == {c: r.mix(k).get(c, 0) for c in range(4)}
        assert r.mix_table("predictions")[k].sum() == r.size[k]


def digits_cache(path, layer: str, n: int):
    """A cache file of one layer of a seeded untrained nap_mnist_cnn on the first ``n`` digits test images."""
    from conceptscope import data, models

    images = data.load_split({"kind": "digits", "subset": {"test": {"first_n": n}}}, "test", key="datasets.digits")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model, inp = models.build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1)
    activations.cache_activations(model.eval(), inp, images, {layer: path}, progress=False)
    return path


def test_input_size_study_clusters_nested_prefixes(tmp_path):
    """jobs.nap_input_sizes: the count for N equals NAPs of the first N cached rows, computed directly."""
    import pandas as pd

    from conceptscope.naps import jobs

    cache = digits_cache(tmp_path / "fc.h5", "fc", 90)
    csv = tmp_path / "sizes.csv"
    jobs.nap_input_sizes(
        cache=cache,
        csv=csv,
        settings={
            "input_size": {"sizes": [90, 30, 60], "method": "max"},
            "normalization": "paper",
            "max_precomputed": 1000,
        },
        device="cpu",
    )
    table = pd.read_csv(csv)
    assert list(table["size"]) == [30, 60, 90]
    values = activations.read_cache(cache).arrays["values"]
    for n, count in zip(table["size"], table["n_naps"], strict=True):
        direct = naps.cluster(naps.normalize(values[:n], kind="dense", method="max", unit_shape=(10,)))
        assert count == len(direct.persistence)
