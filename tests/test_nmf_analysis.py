"""Coupled-NMF analysis on hand-made factor matrices, and its figures over 60 digits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conceptscope import data
from conceptscope.nmf import analysis as na
from conceptscope.nmf import views

# -- Fig. 2-3: similarity, diagonal dominance, eigen mean ------------------------------------------------


def test_cosine_of_orthogonal_columns_is_identity():
    M = np.zeros((5, 3))
    M[0, 0], M[1, 1], M[3, 2] = 2.0, 0.5, 7.0
    S = na.cosine_similarity(M)
    np.testing.assert_allclose(S, np.eye(3), atol=1e-12)
    assert na.diagonal_dominance(S) == pytest.approx(1.0)
    for k in (1, 2, 3):
        assert na.eigen_mean(S, k) == pytest.approx(1.0)


def test_cosine_equals_numpy_and_accepts_tensors():
    M = np.random.default_rng(0).random((40, 6))
    unit = M / np.linalg.norm(M, axis=0)
    expected = unit.T @ unit
    np.testing.assert_allclose(na.cosine_similarity(M), expected, rtol=1e-12)
    np.testing.assert_allclose(na.cosine_similarity(torch.from_numpy(M).float()), expected, rtol=1e-5)
    S = na.cosine_similarity(M)
    off = S[~np.eye(6, dtype=bool)]
    assert na.diagonal_dominance(S) == pytest.approx(1 - np.abs(off).mean())


def test_identical_columns_have_similarity_one():
    a = np.array([1.0, 2.0, 0.0, 0.0])
    b = np.array([0.0, 0.0, 3.0, 1.0])
    S = na.cosine_similarity(np.stack([a, 3 * a, b], axis=1))
    assert S[0, 1] == pytest.approx(1.0) and S[1, 0] == pytest.approx(1.0)
    assert S[0, 2] == pytest.approx(0.0) and S[1, 2] == pytest.approx(0.0)
    assert na.diagonal_dominance(S) == pytest.approx(1 - 2 / 6)  # two of six off-diagonal entries are 1
    assert na.diagonal_dominance(na.cosine_similarity(np.stack([a, a], axis=1))) == pytest.approx(0.0)


def test_zero_column_gives_zero_similarity_not_nan():
    S = na.cosine_similarity(np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert np.isfinite(S).all()
    np.testing.assert_allclose(S, [[1.0, 0.0], [0.0, 0.0]], atol=1e-12)


def test_eigen_mean_sorts_eigenvalues_descending():
    S = np.diag([0.1, 3.0, 1.0])
    assert np.linalg.eigh(S)[0][0] == pytest.approx(0.1)  # numpy gives them ascending
    assert na.eigen_mean(S, 1) == pytest.approx(3.0)
    assert na.eigen_mean(S, 2) == pytest.approx(2.0)
    assert na.eigen_mean(S, 3) == pytest.approx(4.1 / 3)

    X = np.random.default_rng(1).random((30, 7))
    S = na.cosine_similarity(X)
    values = np.linalg.eigh(S)[0]
    assert values[0] < values[-1]
    assert na.eigen_mean(S, 1) == pytest.approx(values[-1])
    assert na.eigen_mean(S, 3) == pytest.approx(np.sort(values)[::-1][:3].mean())


@pytest.mark.parametrize(
    ("S", "k"),
    [(np.eye(3), 0), (np.eye(3), 4), (np.ones((2, 3)), 1), (np.array([[1.0, 0.5], [0.0, 1.0]]), 1)],
)
def test_eigen_mean_rejects_bad_input(S, k):
    with pytest.raises(ValueError):
        na.eigen_mean(S, k)


# -- Table 1: class weights, factor table, top examples ------------------------------------------------


def test_class_weights_hand_computed():
    F = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    W = na.class_weights(F, np.array([0, 0, 1, 2]), 4)
    np.testing.assert_allclose(W, [[0.3, 0.3, 0.4, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(W[:2].sum(axis=1), 1.0)
    np.testing.assert_allclose(na.class_weights(torch.from_numpy(F), torch.tensor([0, 0, 1, 2]), 4), W)


def test_class_weights_sum_to_one_on_random_factors():
    rng = np.random.default_rng(2)
    F = rng.random((5, 200))
    labels = rng.integers(0, 7, 200)
    W = na.class_weights(F, labels, 7)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W[3, 4], F[3, labels == 4].sum() / F[3].sum())


@pytest.mark.parametrize(
    ("F", "labels", "n"),
    [
        (np.array([[1.0, -0.5]]), np.array([0, 1]), 2),  # negative weight
        (np.array([[1.0, 0.5]]), np.array([0, 2]), 2),  # label out of range
        (np.array([[1.0, 0.5]]), np.array([0, 1, 1]), 2),  # one label too many
        (np.array([[1.0, 0.5]]), np.array([0.0, 1.0]), 2),  # float labels
    ],
)
def test_class_weights_rejects_bad_input(F, labels, n):
    with pytest.raises(ValueError):
        na.class_weights(F, labels, n)


def test_factor_table_top_classes_entropy_mass_and_superclass():
    labels = np.array([0, 1, 2, 3])
    F = np.array(
        [
            [0.1, 0.5, 0.3, 0.1],  # mixed: b, c, then a and d tie at 0.1 (a first)
            [0.0, 0.0, 2.0, 0.0],  # one-hot on c
            [1.0, 1.0, 1.0, 1.0],  # uniform
            [0.0, 0.0, 0.0, 0.0],  # no mass
        ]
    )
    sup = np.array([0, 0, 1, 1])  # a, b -> x; c, d -> y
    t = na.factor_table(F, labels, ["a", "b", "c", "d"], sup, ["x", "y"], top=3)
    assert list(t["factor"]) == [0, 1, 2, 3]
    assert t.loc[0, "top_classes"] == "b (0.50), c (0.30), a (0.10)"
    assert t.loc[0, "top_class"] == "b" and t.loc[0, "top_class_weight"] == pytest.approx(0.5)
    assert t.loc[0, "superclass"] == "x" and t.loc[0, "superclass_weight"] == pytest.approx(0.6)
    assert not t.loc[0, "top_share_superclass"]
    assert t.loc[1, "entropy"] == pytest.approx(0.0) and t.loc[1, "superclass"] == "y"
    assert t.loc[1, "superclass_weight"] == pytest.approx(1.0)
    assert t.loc[2, "entropy"] == pytest.approx(np.log(4))
    np.testing.assert_allclose(t["mass"], [1.0, 2.0, 4.0, 0.0])
    assert t.loc[3, "top_classes"] == "" and np.isnan(t.loc[3, "entropy"])
    t1 = na.factor_table(F[:1], labels, ["a", "b", "c", "d"], sup, ["x", "y"], top=1)
    assert t1.loc[0, "top_classes"] == "b (0.50)" and t1.loc[0, "top_share_superclass"]
    plain = na.factor_table(F, labels, ["a", "b", "c", "d"])
    assert "superclass" not in plain.columns


def test_superclass_weight_is_sum_of_its_class_weights():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, 120)
    of_class = np.array([2, 0, 1, 2, 0, 1])
    F = rng.random((4, 120)) ** 3
    t = na.factor_table(F, labels, [f"c{i}" for i in range(6)], of_class[labels], ["s0", "s1", "s2"])
    W = na.class_weights(F, labels, 6)
    SW = np.stack([W[:, of_class == s].sum(axis=1) for s in range(3)], axis=1)
    np.testing.assert_allclose(t["superclass_weight"], SW.max(axis=1))
    assert list(t["superclass"]) == [f"s{s}" for s in SW.argmax(axis=1)]
    np.testing.assert_allclose(SW, na.class_weights(F, of_class[labels], 3))
    bad = of_class[labels].copy()
    bad[np.flatnonzero(labels == 0)[0]] = 0  # class 0 now in two superclasses
    with pytest.raises(ValueError, match="several superclasses"):
        na.factor_table(F, labels, [f"c{i}" for i in range(6)], bad, ["s0", "s1", "s2"])


def test_top_examples_order_and_ties():
    F = np.array([[0.1, 0.9, 0.5, 0.9], [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(na.top_examples(F, 3), [[1, 3, 2], [0, 1, 2]])
    assert na.top_examples(F, 1).shape == (2, 1)
    with pytest.raises(ValueError):
        na.top_examples(F, 5)


# -- Fig. 4: pixel masks ---------------------------------------------------------------------------


def test_pixel_masks_threshold_at_median_row_major():
    rng = np.random.default_rng(4)
    h, w, d = 4, 6, 3
    P = [rng.permutation(h * w * d).reshape(h * w, d) / 100.0 for _ in range(3)]
    P[0][:, 0] = np.arange(h * w)  # factor 0: weight grows along the rows
    P[1][:, 0] = 0.0
    P[2][:, 0] = 0.0
    masks = na.pixel_masks(P, (h, w))
    assert masks.shape == (d, h, w) and masks.dtype == bool
    assert (masks.reshape(d, -1).sum(axis=1) == h * w // 2).all()
    expected = np.zeros((h, w), dtype=bool)
    expected[2:] = True
    np.testing.assert_array_equal(masks[0], expected)
    total = sum(P)
    np.testing.assert_array_equal(masks[1].ravel(), total[:, 1] > np.median(total[:, 1]))
    masks_t = na.pixel_masks([torch.from_numpy(p) for p in P], (h, w))
    np.testing.assert_array_equal(masks_t, masks)
    with pytest.raises(ValueError):
        na.pixel_masks(P, (5, 5))
    with pytest.raises(ValueError):
        na.pixel_masks([P[0], P[1][:, :2]], (h, w))


# -- Fig. 4-5: latent neighbours -------------------------------------------------------------------


def _brute_force(F: np.ndarray, q: int, k: int) -> np.ndarray:
    X = F.T
    order = np.argsort(np.linalg.norm(X - X[q], axis=1), kind="stable")
    return order[order != q][:k]


def test_latent_neighbours_equal_brute_force():
    rng = np.random.default_rng(5)
    F = rng.random((4, 80))
    for q in (0, 17, 79):
        np.testing.assert_array_equal(na.latent_neighbours(F, q, k=12), _brute_force(F, q, 12))
    ties = rng.integers(0, 3, (2, 40)).astype(float)  # many equal distances and duplicates of the query
    for q in range(0, 40, 7):
        got = na.latent_neighbours(ties, q, k=9)
        np.testing.assert_array_equal(got, _brute_force(ties, q, 9))
        assert q not in got
    with pytest.raises(ValueError):
        na.latent_neighbours(F, 0, k=80)
    with pytest.raises(ValueError):
        na.latent_neighbours(F, 80, k=3)


def test_neighbours_in_chunks_equal_one_by_one(monkeypatch):
    F = np.random.default_rng(6).integers(0, 4, (3, 50)).astype(float)
    X = np.ascontiguousarray(F.T)
    whole = na._neighbours(X, np.arange(50), 7)
    monkeypatch.setattr(na, "_KNN_BUDGET", 3 * 50 * 4)  # four queries per chunk
    np.testing.assert_array_equal(na._neighbours(X, np.arange(50), 7), whole)
    for q in range(50):
        np.testing.assert_array_equal(whole[q], _brute_force(F, q, 7))


def test_neighbour_distribution():
    labels = np.array([0, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(na.neighbour_distribution(labels, [1, 3, 4, 5], 4), [0.0, 0.25, 0.75, 0.0])
    np.testing.assert_allclose(na.neighbour_distribution(labels, [], 3), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        na.neighbour_distribution(labels, [6], 3)


def test_accuracy_vs_impurity_hand_made():
    # two far-apart groups on a line; k = 4 neighbours are the rest of one's own group
    F = np.array([[0.0, 0.01, 0.02, 0.03, 0.04, 100.0, 100.01, 100.02, 100.03, 100.04]])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    predictions = np.array([0, 1, 2, 0, 0, 1, 1, 1, 1, 1])
    t = na.accuracy_vs_impurity(F, labels, predictions, k=4, n_bins=4)
    # impurity: first group label 0 -> 1/4 (bin 1, its lower edge), the lone 1 -> 4/4 (last bin); second group 0
    assert list(t["bin"]) == [0, 1, 3]  # bin 2 is empty and dropped
    assert list(t["count"]) == [5, 4, 1]
    np.testing.assert_allclose(t["accuracy"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(t["mean_impurity"], [0.0, 0.25, 1.0])
    np.testing.assert_allclose(t["impurity_low"], [0.0, 0.25, 0.75])
    np.testing.assert_allclose(t["impurity_high"], [0.25, 0.5, 1.0])
    assert (t["k"] == 4).all()
    assert t["count"].sum() == F.shape[1]
    one = na.accuracy_vs_impurity(F, labels, predictions, k=4, n_bins=1)
    assert list(one["count"]) == [10] and one["accuracy"].iloc[0] == pytest.approx(0.7)


# -- figures over 60 digits ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> data.ImageSet:
    return data.load_split({"kind": "digits", "subset": {"test": {"first_n": 60}}}, "test", key="datasets.digits")


@pytest.fixture(scope="module")
def factors(digits) -> tuple[np.ndarray, list[np.ndarray]]:
    """F (5, 60): factor k holds the digits with label % 5 == k; P: their mean image per factor (one channel)."""
    rng = np.random.default_rng(7)
    d = 5
    x = digits.images(np.arange(len(digits))).numpy()[:, 0]
    F = (digits.labels[None, :] % d == np.arange(d)[:, None]) + 0.2 * rng.random((d, len(digits)))
    P = np.stack([x[digits.labels % d == k].mean(axis=0).ravel() + 1e-3 * rng.random(64) for k in range(d)], 1)
    return F, [P / np.linalg.norm(P, axis=0)]


def _check_png(path) -> pd.DataFrame:
    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert min(im.size) >= 200
    csv = path.with_suffix(".csv")
    assert csv.stat().st_size > 0
    return pd.read_csv(csv)


def test_plot_similarity_heatmaps(tmp_path):
    rng = np.random.default_rng(8)
    mats = {"conv1": na.cosine_similarity(rng.random((30, 4))), "fc": np.eye(4)}
    path = tmp_path / "fig2.png"
    views.plot_similarity_heatmaps(mats, path)
    t = _check_png(path)
    assert len(t) == 2 * 16 and list(dict.fromkeys(t["layer"])) == ["conv1", "fc"]
    np.testing.assert_allclose(t[t["layer"] == "conv1"]["similarity"], mats["conv1"].ravel())
    assert t[t["layer"] == "fc"]["diagonal_dominance"].iloc[0] == pytest.approx(1.0)


def test_plot_eigen_means(tmp_path):
    table = pd.DataFrame(
        {
            "model": ["m1"] * 3 + ["m2"] * 3,
            "source": "coupled",
            "layer": ["a", "b", "c"] * 2,
            "depth": [0, 1, 2] * 2,
            "k": [3] * 3 + [10] * 3,
            "eigen_mean": [2.0, 1.5, 1.1, 3.0, 2.0, 1.2],
            "diagonal_dominance": [0.2, 0.4, 0.9] * 2,
        }
    )
    path = tmp_path / "fig3.png"
    views.plot_eigen_means(table, path)
    pd.testing.assert_frame_equal(_check_png(path), table)
    with pytest.raises(ValueError):
        views.plot_eigen_means(table.drop(columns="k"), tmp_path / "bad.png")


def test_plot_factor_table(tmp_path, digits, factors):
    F, _ = factors
    table = na.factor_table(F, digits.labels, digits.class_names)
    path = tmp_path / "table1.png"
    views.plot_factor_table(table, F, digits, path, per_factor=6)
    t = _check_png(path)
    assert list(t["factor"]) == list(range(5))
    assert list(t["top_classes"]) == list(table["top_classes"])
    top = na.top_examples(F, 6)
    assert [list(map(int, s.split())) for s in t["positions"]] == top.tolist()


def test_plot_masks_and_neighbours(tmp_path, digits, factors):
    F, P = factors
    path = tmp_path / "fig4.png"
    views.plot_masks_and_neighbours(F, P, digits, digits.labels, digits.class_names, path, factors=[0, 3], k=10)
    t = _check_png(path)
    pixels = t[t["kind"] == "pixel"]
    assert len(pixels) == 2 * 64 and pixels.groupby("factor")["in_mask"].sum().tolist() == [32, 32]
    shares = t[t["kind"] == "neighbour_class"].groupby("factor")
    np.testing.assert_allclose(shares["fraction"].sum(), 1.0)
    assert shares["count"].sum().tolist() == [10, 10]
    q = int(na.top_examples(F, 1)[3, 0])
    assert (t[t["factor"] == 3]["position"] == q).all()
    expected = na.neighbour_distribution(digits.labels, na.latent_neighbours(F, q, 10), 10)
    got = t[(t["factor"] == 3) & (t["kind"] == "neighbour_class")]
    np.testing.assert_allclose(got["fraction"], expected[got["class"].astype(int)])


def test_plot_masks_at_a_model_input_size(tmp_path, digits, factors):
    F, _ = factors
    P16 = [np.random.default_rng(9).random((16 * 16, F.shape[0]))]  # factorization saw 16 x 16 inputs
    path = tmp_path / "fig4_16.png"
    views.plot_masks_and_neighbours(F, P16, digits, digits.labels, digits.class_names, path, factors=[1], k=5)
    t = _check_png(path)
    assert (t["kind"] == "pixel").sum() == 256
    with pytest.raises(ValueError, match="size"):
        views.plot_masks_and_neighbours(F, [P16[0][:250]], digits, digits.labels, digits.class_names, path)


def test_plot_accuracy_vs_impurity(tmp_path, digits, factors):
    F, _ = factors
    predictions = digits.labels.copy()
    predictions[::3] = 0
    curve = na.accuracy_vs_impurity(F, digits.labels, predictions, k=10)
    assert curve["count"].sum() == len(digits)
    path = tmp_path / "fig5.png"
    views.plot_accuracy_vs_impurity(curve, path)
    pd.testing.assert_frame_equal(_check_png(path), curve)


@pytest.mark.parametrize("n_layers", [1, 3, 5, 7])
def test_similarity_heatmaps_for_any_layer_count(tmp_path, n_layers):
    """Grids with empty cells (e.g. 5 layers) must still get their shared colour bar."""
    rng = np.random.default_rng(n_layers)
    mats = {f"l{i}": na.cosine_similarity(rng.random((30, 4))) for i in range(n_layers)}
    views.plot_similarity_heatmaps(mats, tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").stat().st_size > 0 and (tmp_path / "fig2.csv").stat().st_size > 0


# -- Table 1-2 nulls: superclass chance, top-class weight under label permutations -------------------------


@pytest.mark.parametrize("top", [1, 2, 3, 4, 5])
def test_superclass_chance_equals_enumeration(top):
    import itertools

    of_class = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, 3])  # class 9 has no example; superclass 3 has one class
    kept = np.flatnonzero(of_class >= 0)
    subsets = list(itertools.combinations(kept, top))
    same = sum(len({int(of_class[c]) for c in sub}) == 1 for sub in subsets)
    assert na.superclass_chance(of_class, top) == pytest.approx(same / len(subsets), rel=1e-12)


def test_superclass_chance_edge_cases():
    assert na.superclass_chance(np.array([0, 1, 2]), 1) == 1.0  # one class always shares its own superclass
    assert na.superclass_chance(np.array([0, 1, 2]), 2) == 0.0
    assert np.isnan(na.superclass_chance(np.array([0, 0, -1]), 3))  # fewer than top classes with examples
    with pytest.raises(ValueError):
        na.superclass_chance(np.array([0.0, 1.0]), 1)


def test_factor_table_superclass_chance_counts_only_classes_with_examples():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # class 4 ("e") has no example
    sup = np.array([0, 0, 0, 1, 1])[labels]
    F = np.random.default_rng(11).random((3, 8))
    t = na.factor_table(F, labels, list("abcde"), sup, ["x", "y"], top=2)
    # a, b, c in x and d in y: 3 of the C(4, 2) = 6 pairs; counting e (in y) too would give 4 / 10
    np.testing.assert_allclose(t["superclass_chance"], 3 / 6, rtol=1e-12)
    assert "superclass_chance" not in na.factor_table(F, labels, list("abcde")).columns


def test_top_class_weight_null_one_class_factors_are_coherent_uniform_are_not():
    rng = np.random.default_rng(12)
    labels = np.repeat(np.arange(6), 10)[rng.permutation(60)]
    one_class = (labels[None, :] == np.arange(6)[:, None]) * rng.uniform(0.5, 1.5, (6, 60))
    uniform = np.full((2, 60), 0.3)  # every permutation gives the same top-class weight (1/6)
    F = np.vstack([one_class, uniform, np.zeros((1, 60))])
    names = [f"c{i}" for i in range(6)]
    t = na.factor_table(F, labels, names, n_permutations=200, seed=3)
    assert list(t["class_coherent"]) == [True] * 6 + [False] * 3
    np.testing.assert_allclose(t["top_class_weight"][:6], 1.0)
    # one class of 10 among 60 examples: under permutations its 10 examples spread over the classes
    assert (t["top_class_weight_null95"][:6] < 0.7).all()
    np.testing.assert_allclose(t["top_class_weight_null95"][6:8], 1 / 6, rtol=1e-9)
    assert np.isnan(t["top_class_weight_null95"][8])
    again = na.factor_table(F, labels, names, n_permutations=200, seed=3)
    pd.testing.assert_frame_equal(t, again)  # deterministic for a seed
    other = na.factor_table(F, labels, names, n_permutations=200, seed=4)
    assert not np.array_equal(other["top_class_weight_null95"][:6], t["top_class_weight_null95"][:6])
    with pytest.raises(ValueError):
        na.factor_table(F, labels, names, n_permutations=0)


def test_top_class_weight_null_is_the_permutation_quantile_of_a_hypergeometric():
    """A factor holding one class of n_c examples with weight 1: its permuted top-class weight is the largest share
    of any class among n_c positions drawn without replacement, checked against an independent simulation."""
    labels = np.repeat(np.arange(4), [20, 10, 10, 10])
    F = (labels == 1)[None, :].astype(float)
    t = na.factor_table(F, labels, list("abcd"), n_permutations=4000, seed=0)
    rng = np.random.default_rng(123)
    sim = [np.bincount(rng.choice(labels, 10, replace=False), minlength=4).max() / 10 for _ in range(4000)]
    assert t["top_class_weight_null95"][0] == pytest.approx(np.quantile(sim, 0.95), abs=0.1 + 1e-9)


# -- Fig. 4-5: latent-neighbour purity --------------------------------------------------------------------------


def _purity_brute_force(F: np.ndarray, labels: np.ndarray, k: int) -> float:
    X = F.T
    shares = []
    for i in range(X.shape[0]):
        dist = np.linalg.norm(X - X[i], axis=1)
        dist[i] = np.inf
        nbrs = np.argsort(dist, kind="stable")[:k]
        shares.append(np.mean(labels[nbrs] == labels[i]))
    return float(np.mean(shares))


def test_neighbour_purity_observed_share_equals_brute_force():
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 4, 70)
    F = rng.random((5, 70)) + 0.4 * (labels[None, :] == np.arange(5)[:, None])
    got = na.neighbour_purity(F, labels, k=7, n_permutations=50, seed=0)
    assert got["same_label_share"] == pytest.approx(_purity_brute_force(F, labels, 7), rel=1e-12)
    assert got["k"] == 7 and got["n_examples"] == 70 and got["n_permutations"] == 50
    assert 1 / 51 <= got["p_value"] <= 1.0
    with pytest.raises(ValueError):
        na.neighbour_purity(F, labels, k=70)
    with pytest.raises(ValueError):
        na.neighbour_purity(F, labels[:-1], k=3)
    with pytest.raises(ValueError):
        na.neighbour_purity(F, labels, k=3, n_permutations=0)


def test_neighbour_purity_null_is_deterministic_and_matches_its_expectation():
    rng = np.random.default_rng(14)
    labels = rng.integers(0, 5, 80)
    F = rng.random((4, 80))
    a = na.neighbour_purity(F, labels, k=6, n_permutations=3000, seed=5)
    assert a == na.neighbour_purity(F, labels, k=6, n_permutations=3000, seed=5)
    assert a != na.neighbour_purity(F, labels, k=6, n_permutations=3000, seed=6)
    n_c = np.bincount(labels)
    N = labels.size
    expected = float((n_c * (n_c - 1)).sum() / (N * (N - 1)))  # P(two distinct examples share a label)
    assert a["null_mean"] == pytest.approx(expected, abs=0.004)
    assert a["null_q95"] > a["null_mean"]


def test_neighbour_purity_separates_planted_classes_from_random_factors():
    rng = np.random.default_rng(15)
    labels = np.repeat(np.arange(4), 15)
    planted = (labels[None, :] == np.arange(4)[:, None]) + 0.1 * rng.random((4, 60))
    p = na.neighbour_purity(planted, labels, k=10, n_permutations=200, seed=0)
    assert p["same_label_share"] == 1.0 and p["p_value"] == pytest.approx(1 / 201)
    assert p["same_label_share"] > p["null_q95"]
    noise = na.neighbour_purity(rng.random((4, 60)), labels, k=10, n_permutations=200, seed=0)
    assert noise["p_value"] > 0.01


def test_precomputed_neighbours_give_the_same_purity_and_curve():
    """nmf_figures computes the all-pairs kNN once for Fig. 5 and NMF-4: the results equal those computed alone."""
    rng = np.random.default_rng(5)
    F = rng.random((4, 40))
    labels, predictions = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    nbrs = na.all_latent_neighbours(F, 6)
    assert nbrs.shape == (40, 6) and np.array_equal(nbrs[7], na.latent_neighbours(F, 7, 6))
    assert na.neighbour_purity(F, labels, 6, 50, 1, neighbours=nbrs) == na.neighbour_purity(F, labels, 6, 50, 1)
    pd.testing.assert_frame_equal(
        na.accuracy_vs_impurity(F, labels, predictions, 6, neighbours=nbrs),
        na.accuracy_vs_impurity(F, labels, predictions, 6),
    )
    with pytest.raises(ValueError, match=r"neighbours must be \(40, 6\)"):
        na.neighbour_purity(F, labels, 6, neighbours=nbrs[:, :5])
