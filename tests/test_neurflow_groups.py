"""Tests for conceptscope.neurflow.groups against independent small computations."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import AgglomerativeClustering
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from conceptscope.neurflow import (
    NeuronGroup,
    SemanticGroup,
    best_ward_clusters,
    debugging_metric,
    edge_weights,
    group_edges,
    neuron_groups,
    rank_patches,
    semantic_groups,
)
from conceptscope.neurflow import groups as ng


def partition(labels) -> frozenset[frozenset[int]]:
    """A labelling as a set of index sets, independent of the label names."""
    labels = np.asarray(labels)
    return frozenset(frozenset(np.flatnonzero(labels == lab).tolist()) for lab in np.unique(labels))


# ----------------------------------------------------------------------------
# best_ward_clusters
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_silhouette_choice_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(int(rng.integers(8, 14)), 4))
    if seed % 2:  # some structure, so that different counts win
        X[: len(X) // 2] += 4.0
    scores = {}
    labelings = {}
    for k in range(2, 6):
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X)
        scores[k] = silhouette_score(X, labels, metric="euclidean")
        labelings[k] = labels
    best_k = max(scores, key=lambda k: (scores[k], -k))

    labels, count, got = best_ward_clusters(X)
    assert count == best_k
    assert sorted(got) == [2, 3, 4, 5]
    for k in scores:
        assert got[k] == pytest.approx(scores[k], abs=1e-12)
    assert partition(labels) == partition(labelings[best_k])


@pytest.mark.parametrize("seed", range(4))
def test_ward_partitions_match_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(11, 3))
    Z = linkage(X, method="ward", metric="euclidean")
    for k in range(2, 6):
        ref = fcluster(Z, t=k, criterion="maxclust")
        labels, count, _ = best_ward_clusters(X, n_clusters=k)
        assert count == k
        assert partition(labels) == partition(ref)
    labels, count, _ = best_ward_clusters(X)
    assert partition(labels) == partition(fcluster(Z, t=count, criterion="maxclust"))


def test_blobs_with_three_centres_give_three_clusters():
    X, y = make_blobs(n_samples=60, centers=3, n_features=5, cluster_std=0.5, random_state=0)
    labels, count, scores = best_ward_clusters(X)
    assert count == 3
    assert max(scores, key=scores.get) == 3
    assert partition(labels) == partition(y)


def test_labels_in_order_of_first_appearance_and_deterministic():
    X, _ = make_blobs(n_samples=30, centers=4, n_features=3, cluster_std=0.3, random_state=3)
    labels, count, scores = best_ward_clusters(X)
    first = [int(labels[np.flatnonzero(labels == lab)[0]]) for lab in range(count)]
    assert first == list(range(count))
    seen = []
    for lab in labels.tolist():
        if lab not in seen:
            seen.append(lab)
    assert seen == list(range(count))
    again = best_ward_clusters(X)
    np.testing.assert_array_equal(labels, again[0])
    assert (count, scores) == (again[1], again[2])
    assert labels.dtype == np.int64


def test_small_and_degenerate_inputs_give_one_cluster():
    for X in (np.zeros((1, 3)), np.array([[0.0, 1.0], [5.0, 5.0]]), np.ones((6, 2))):
        labels, count, scores = best_ward_clusters(X)
        assert count == 1
        assert scores == {}
        np.testing.assert_array_equal(labels, np.zeros(len(X), dtype=np.int64))
    # every count of the range exceeds n - 1
    labels, count, scores = best_ward_clusters(np.arange(8.0).reshape(4, 2), k_range=(4, 5))
    assert (count, scores) == (1, {})


def test_counts_above_n_minus_one_are_skipped():
    X = np.array([[0.0], [0.1], [5.0], [5.2]])
    _, count, scores = best_ward_clusters(X, k_range=(2, 5))
    assert sorted(scores) == [2, 3]
    assert count == 2


def test_silhouette_ties_prefer_smaller_count(monkeypatch):
    monkeypatch.setattr(ng, "silhouette_score", lambda X, labels, metric: 0.25)
    X = np.random.default_rng(0).normal(size=(10, 2))
    _, count, scores = best_ward_clusters(X, k_range=(3, 5))
    assert count == 3
    assert scores == {3: 0.25, 4: 0.25, 5: 0.25}


def test_fixed_count_and_cap(caplog):
    X = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]])
    labels, count, scores = best_ward_clusters(X, n_clusters=2)
    assert count == 2
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1])
    assert scores == {2: pytest.approx(silhouette_score(X, labels))}
    with caplog.at_level(logging.WARNING, logger="conceptscope"):
        labels, count, scores = best_ward_clusters(X, n_clusters=4)
    assert count == 2
    assert "distinct rows" in caplog.text
    labels, count, scores = best_ward_clusters(X, n_clusters=1)
    assert (count, scores) == (1, {})


# ----------------------------------------------------------------------------
# edge weights
# ----------------------------------------------------------------------------

A_2x3 = np.array([[1.0, -2.0, 3.0], [1.0, 0.0, -1.0]])


def test_edge_weights_hand_computed_2x3():
    # both rows: T = [2, -2, 2]
    assert edge_weights(A_2x3, np.array([True, True]), [0, 1]) == pytest.approx({0: 0.5, 1: -0.5})
    assert edge_weights(A_2x3, np.array([0, 1]), [0, 1, 2]) == pytest.approx({0: 1 / 3, 1: -1 / 3, 2: 1 / 3})
    # first row only: T = [1, -2, 3]; core {1, 2}: |-2| + |3| = 5
    w = edge_weights(A_2x3, np.array([0]), [2, 1])
    assert w == pytest.approx({1: -0.4, 2: 0.6})
    assert list(w) == [2, 1]  # order of core
    # second row only, non-core channel 1 ignored: T = [1, 0, -1] on core {0, 2}
    assert edge_weights(A_2x3, np.array([False, True]), [0, 2]) == pytest.approx({0: 0.5, 2: -0.5})


@pytest.mark.parametrize("seed", range(5))
def test_edge_weights_unit_l1_and_signs(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(7, 9))
    rows = rng.random(7) < 0.5
    rows[0] = True
    core = rng.choice(9, size=4, replace=False).tolist()
    before = A.copy()
    w = edge_weights(A, rows, core)
    T = A[rows].sum(axis=0)
    assert sum(abs(v) for v in w.values()) == pytest.approx(1.0)
    for s in core:
        assert np.sign(w[s]) == np.sign(T[s])
        assert w[s] == pytest.approx(T[s] / np.abs(T[core]).sum())
    np.testing.assert_array_equal(A, before)  # computed out of place


def test_edge_weights_all_zero_group_gives_zeros_and_warning(caplog):
    A = np.array([[1.0, 0.0, 2.0], [-1.0, 0.0, 5.0]])
    with caplog.at_level(logging.WARNING, logger="conceptscope"):
        w = edge_weights(A, np.array([0, 1]), [0, 1])  # T = [0, 0, 7]
    assert w == {0: 0.0, 1: 0.0}
    assert any(r.levelno == logging.WARNING and "zero" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------
# semantic and neuron groups
# ----------------------------------------------------------------------------


def two_cluster_patches(seed=0):
    rng = np.random.default_rng(seed)
    vectors = np.vstack([rng.normal(0.0, 0.1, size=(4, 5)), rng.normal(6.0, 0.1, size=(5, 5))])
    order = np.array([0, 4, 1, 5, 6, 2, 7, 3, 8])  # interleave the two clusters
    vectors = vectors[order]
    attributions = rng.normal(size=(9, 5))
    patch_ids = np.arange(100, 109)
    return patch_ids, vectors, attributions


def test_semantic_groups_split_and_weights():
    patch_ids, vectors, attributions = two_cluster_patches()
    core = [3, 0, 4]
    groups = semantic_groups("layer3", 7, patch_ids, vectors, attributions, core)
    assert [g.index for g in groups] == [0, 1]
    assert all(g.layer == "layer3" and g.neuron == 7 for g in groups)
    # first patch is in the low cluster, which therefore gets index 0
    low = vectors.mean(axis=1) < 3.0
    np.testing.assert_array_equal(groups[0].patches, patch_ids[low])
    np.testing.assert_array_equal(groups[1].patches, patch_ids[~low])
    for g, mask in zip(groups, (low, ~low), strict=True):
        np.testing.assert_allclose(g.vector, vectors[mask].mean(axis=0))
        T = attributions[mask].sum(axis=0)
        expected = {s: T[s] / sum(abs(T[t]) for t in core) for s in core}
        assert g.weights == pytest.approx(expected)
        assert list(g.weights) == core
        assert sum(abs(v) for v in g.weights.values()) == pytest.approx(1.0)


def test_semantic_groups_with_two_patches_is_one_group():
    groups = semantic_groups("l", 0, np.array([5, 9]), np.eye(2), np.array([[1.0, 3.0], [1.0, -1.0]]), [0, 1])
    assert len(groups) == 1
    np.testing.assert_array_equal(groups[0].patches, [5, 9])
    assert groups[0].weights == pytest.approx({0: 0.5, 1: 0.5})


def sg(neuron, index, patches, vector, weights=None, layer="l2"):
    return SemanticGroup(layer, neuron, index, np.asarray(patches), np.asarray(vector, dtype=float), weights or {})


def test_neuron_groups_members_union_and_mean():
    groups = [
        sg(0, 0, [3, 1], [0.0, 0.1]),
        sg(0, 1, [7, 8], [9.0, 9.2]),
        sg(2, 0, [1, 2], [0.2, 0.0]),
        sg(5, 0, [8, 9], [9.1, 8.9]),
        sg(5, 1, [4], [0.1, -0.1]),
    ]
    out = neuron_groups("l2", groups)
    assert len(out) == 2
    g0, g1 = out
    assert (g0.layer, g0.index, g1.index) == ("l2", 0, 1)
    assert g0.members == [(0, 0), (2, 0), (5, 1)]
    assert g0.neurons == [0, 2, 5]
    np.testing.assert_array_equal(g0.patches, [1, 2, 3, 4])
    np.testing.assert_allclose(g0.vector, np.mean([[0.0, 0.1], [0.2, 0.0], [0.1, -0.1]], axis=0))
    assert g1.members == [(0, 1), (5, 0)]
    assert g1.neurons == [0, 5]
    np.testing.assert_array_equal(g1.patches, [7, 8, 9])
    np.testing.assert_allclose(g1.vector, [9.05, 9.05])

    single = neuron_groups("l2", groups, n_groups=1)
    assert len(single) == 1
    assert single[0].members == [(0, 0), (0, 1), (2, 0), (5, 0), (5, 1)]
    np.testing.assert_array_equal(single[0].patches, [1, 2, 3, 4, 7, 8, 9])
    assert len(neuron_groups("l2", groups, n_groups=3)) == 3


def test_neuron_groups_count_matches_brute_force():
    X, _ = make_blobs(n_samples=14, centers=4, n_features=3, cluster_std=1.5, random_state=7)
    groups = [sg(i // 2, i % 2, [i], x) for i, x in enumerate(X)]
    out = neuron_groups("l2", groups, k_range=(2, 6))
    scores = {
        k: silhouette_score(X, AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(X))
        for k in range(2, 7)
    }
    assert len(out) == max(scores, key=lambda k: (scores[k], -k))
    assert sorted(m for g in out for m in g.members) == sorted((g.neuron, g.index) for g in groups)


# ----------------------------------------------------------------------------
# group edges
# ----------------------------------------------------------------------------


def test_group_edges_hand_built_two_layer_example():
    upper_semantic = [
        sg(0, 0, [1], [0.0], {0: 0.5, 1: -0.25, 2: 0.25}),
        sg(0, 1, [2], [0.0], {0: -0.2, 1: 0.8, 2: 0.0}),
        sg(1, 0, [3], [0.0], {2: 0.5, 3: 0.3, 4: 0.2}),
    ]
    upper = [
        NeuronGroup("l2", 0, [(0, 0), (1, 0)], [0, 1], np.array([1, 3]), np.zeros(1)),
        NeuronGroup("l2", 1, [(0, 1)], [0], np.array([2]), np.zeros(1)),
    ]
    # neuron 2 of layer l1 belongs to two lower groups; neuron 4 to none
    lower = [
        NeuronGroup("l1", 0, [(0, 0), (2, 0)], [0, 2], np.array([5]), np.zeros(1)),
        NeuronGroup("l1", 1, [(1, 0), (2, 1)], [1, 2], np.array([6]), np.zeros(1)),
        NeuronGroup("l1", 2, [(3, 0)], [3], np.array([7]), np.zeros(1)),
    ]
    expected = np.array(
        [
            [0.5 + 0.25 + 0.5, -0.25 + 0.25 + 0.5, 0.3],
            [-0.2 + 0.0, 0.8 + 0.0, 0.0],
        ]
    )
    W = group_edges(upper, upper_semantic, lower)
    assert W.shape == (2, 3)
    np.testing.assert_allclose(W, expected, atol=1e-15)
    assert group_edges([], upper_semantic, lower).shape == (0, 3)


def test_group_edges_pipeline_matches_loop():
    rng = np.random.default_rng(11)
    sem = []
    for a in range(4):
        patch_ids = np.arange(10 * a, 10 * a + 8)
        vectors = rng.normal(size=(8, 6)) + 5.0 * (rng.random((8, 1)) < 0.5)
        core = rng.choice(6, size=3, replace=False).tolist()
        sem += semantic_groups("l2", a, patch_ids, vectors, rng.normal(size=(8, 6)), core)
    upper = neuron_groups("l2", sem)
    lower = [
        NeuronGroup("l1", 0, [(0, 0), (1, 0)], [0, 1], np.array([0]), np.zeros(1)),
        NeuronGroup("l1", 1, [(1, 1), (2, 0), (3, 0)], [1, 2, 3], np.array([1]), np.zeros(1)),
        NeuronGroup("l1", 2, [(4, 0), (5, 0)], [4, 5], np.array([2]), np.zeros(1)),
    ]
    by_key = {(g.neuron, g.index): g for g in sem}
    expected = np.zeros((len(upper), len(lower)))
    for i, gi in enumerate(upper):
        for j, gj in enumerate(lower):
            expected[i, j] = sum(
                w for key in gi.members for s, w in by_key[key].weights.items() if s in set(gj.neurons)
            )
    np.testing.assert_allclose(group_edges(upper, sem, lower), expected, atol=1e-12)


# ----------------------------------------------------------------------------
# debugging metric and top patches
# ----------------------------------------------------------------------------


def test_debugging_metric_hand_computed():
    acts = np.array([[1.0, 4.0], [2.0, 2.0], [-2.0, 1.0]])
    ref = np.array([2.0, 4.0])
    M = debugging_metric(acts, [0, 1], ref)
    np.testing.assert_allclose(M, [np.sqrt(0.5 * 1.0), np.sqrt(1.0 * 0.5), np.sqrt(1.0 * 0.25)], rtol=1e-9)
    np.testing.assert_allclose(debugging_metric(acts, [1], ref), [1.0, 0.5, 0.25], rtol=1e-9)
    assert M.shape == (3,)
    assert M.dtype == np.float64


def test_debugging_metric_is_one_at_the_maxima_and_eps_guards_zero():
    ref = np.array([0.5, 3.0, 7.0])
    assert debugging_metric(ref[None, :], [0, 1, 2], ref) == pytest.approx([1.0], abs=1e-10)
    zero = debugging_metric(np.array([[0.0, 3.0, 7.0]]), [0, 1], ref, eps=1e-6)
    assert zero == pytest.approx([np.exp((np.log(1e-6) + np.log(1 + 1e-6)) / 2)])
    assert np.all(np.isfinite(debugging_metric(np.zeros((2, 3)), [0, 1, 2], ref)))


def test_debugging_metric_names_bad_reference_neuron():
    with pytest.raises(ValueError, match=r"\(2, 0\.0\)"):
        debugging_metric(np.ones((1, 3)), [0, 2], np.array([1.0, -1.0, 0.0]))
    # a non-positive max of an unlisted neuron is fine
    assert debugging_metric(np.ones((1, 3)), [0], np.array([1.0, -1.0, 0.0])) == pytest.approx([1.0])


def test_rank_patches_stable_top_n():
    ids = np.array([10, 11, 12, 13, 14])
    scores = np.array([0.5, 2.0, 0.5, 2.0, -1.0])
    np.testing.assert_array_equal(rank_patches(ids, scores, 3), [11, 13, 10])
    np.testing.assert_array_equal(rank_patches(ids, scores, 0), np.array([], dtype=ids.dtype))
    np.testing.assert_array_equal(rank_patches(ids, scores, 9), [11, 13, 10, 12, 14])


# ----------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------

X_OK = np.random.default_rng(0).normal(size=(6, 2))
SG_OK = sg(0, 0, [1], [0.0, 1.0])
NG_OK = NeuronGroup("l2", 0, [(0, 0)], [0], np.array([1]), np.zeros(2))

BAD_CALLS = {
    "X 1-D": ("2-D", lambda: best_ward_clusters(np.ones(4))),
    "X empty": ("at least one row", lambda: best_ward_clusters(np.ones((0, 2)))),
    "X nan": ("finite", lambda: best_ward_clusters(np.array([[0.0, np.nan], [1.0, 1.0]]))),
    "k_range low": ("2 <= min", lambda: best_ward_clusters(X_OK, k_range=(1, 3))),
    "k_range reversed": ("2 <= min", lambda: best_ward_clusters(X_OK, k_range=(4, 3))),
    "k_range scalar": ("pair", lambda: best_ward_clusters(X_OK, k_range=3)),
    "k_range float": ("integer", lambda: best_ward_clusters(X_OK, k_range=(2.5, 4))),
    "n_clusters zero": (">= 1", lambda: best_ward_clusters(X_OK, n_clusters=0)),
    "n_clusters bool": ("integer", lambda: best_ward_clusters(X_OK, n_clusters=True)),
    "rows empty": ("at least one", lambda: edge_weights(A_2x3, np.array([False, False]), [0])),
    "rows mask length": ("boolean mask", lambda: edge_weights(A_2x3, np.array([True]), [0])),
    "rows out of range": (r"\[0, 2\)", lambda: edge_weights(A_2x3, np.array([2]), [0])),
    "core empty": ("not be empty", lambda: edge_weights(A_2x3, np.array([0]), [])),
    "core out of range": (r"\[0, 3\)", lambda: edge_weights(A_2x3, np.array([0]), [3])),
    "core repeated": ("duplicates", lambda: edge_weights(A_2x3, np.array([0]), [1, 1])),
    "attributions 1-D": ("2-D", lambda: edge_weights(np.ones(3), np.array([0]), [0])),
    "semantic layer empty": (
        "layer",
        lambda: semantic_groups("", 0, np.arange(3), np.ones((3, 2)), np.ones((3, 2)), [0]),
    ),
    "semantic neuron negative": (
        "neuron must be",
        lambda: semantic_groups("l", -1, np.arange(3), np.ones((3, 2)), np.ones((3, 2)), [0]),
    ),
    "semantic rows mismatch": (
        "one row per patch",
        lambda: semantic_groups("l", 0, np.arange(4), np.ones((3, 2)), np.ones((3, 2)), [0]),
    ),
    "semantic attr shape": (
        "shape of vectors",
        lambda: semantic_groups("l", 0, np.arange(3), np.ones((3, 2)), np.ones((3, 3)), [0]),
    ),
    "neuron_groups empty": ("not be empty", lambda: neuron_groups("l2", [])),
    "neuron_groups layer": ("layer 'l1'", lambda: neuron_groups("l1", [SG_OK])),
    "neuron_groups duplicate": ("repeats", lambda: neuron_groups("l2", [SG_OK, SG_OK])),
    "neuron_groups vector length": ("one length", lambda: neuron_groups("l2", [SG_OK, sg(1, 0, [2], [0.0])])),
    "neuron_groups not semantic": ("SemanticGroup", lambda: neuron_groups("l2", [NG_OK])),
    "group_edges missing member": (r"\(0, 0\)", lambda: group_edges([NG_OK], [sg(1, 0, [1], [0.0, 1.0])], [NG_OK])),
    "group_edges layer mismatch": ("l9", lambda: group_edges([NG_OK], [sg(0, 0, [1], [0.0], layer="l9")], [NG_OK])),
    "metric neurons empty": ("not be empty", lambda: debugging_metric(np.ones((1, 2)), [], np.ones(2))),
    "metric neurons range": (r"\[0, 2\)", lambda: debugging_metric(np.ones((1, 2)), [2], np.ones(2))),
    "metric ref shape": ("one entry per channel", lambda: debugging_metric(np.ones((1, 2)), [0], np.ones(3))),
    "metric eps": ("eps", lambda: debugging_metric(np.ones((1, 2)), [0], np.ones(2), eps=0.0)),
    "metric ref max zero": (r"\(1, 0\.0\)", lambda: debugging_metric(np.ones((1, 2)), [1], np.array([1.0, 0.0]))),
    "rank n negative": ("n must be", lambda: rank_patches(np.arange(3), np.ones(3), -1)),
    "rank shape": ("shape of patch_ids", lambda: rank_patches(np.arange(3), np.ones(2), 1)),
    "rank nan": ("finite", lambda: rank_patches(np.arange(2), np.array([1.0, np.nan]), 1)),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_arguments_raise_value_error(name):
    match, call = BAD_CALLS[name]
    with pytest.raises(ValueError, match=match):
        call()
