"""Cross-method alignment: Jaccard against Python sets, the matching against brute force, the summary by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conceptscope.atlas.alignment import (
    DEFAULT_THRESHOLD,
    alignment_summary,
    alignment_table,
    jaccard_matrix,
    match,
    membership,
    plot_alignment,
    simulate_null,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _random_sets(rng: np.random.Generator, n_sets: int, universe: np.ndarray) -> list[np.ndarray]:
    # sizes from 0 (empty) to the whole universe, ids in random order with repeats
    return [rng.choice(universe, size=rng.integers(0, universe.size + 1)) for _ in range(n_sets)]


def _brute_force_jaccard(sets_a: list[np.ndarray], sets_b: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(sets_a), len(sets_b)))
    for i, a in enumerate(sets_a):
        for j, b in enumerate(sets_b):
            sa, sb = set(a.tolist()), set(b.tolist())
            out[i, j] = len(sa & sb) / len(sa | sb) if sa | sb else 0.0
    return out


def _brute_force_best(J: np.ndarray) -> float:
    m, k = J.shape
    if m <= k:
        return max(sum(J[i, p[i]] for i in range(m)) for p in itertools.permutations(range(k), m))
    return max(sum(J[p[j], j] for j in range(k)) for p in itertools.permutations(range(m), k))


# -- membership and Jaccard ------------------------------------------------------------------------


def test_membership_marks_ids_in_universe_order():
    universe = np.array([30, 10, 20, 40])
    M = membership([np.array([10, 40, 10]), np.array([], dtype=float), np.array([20])], universe)
    np.testing.assert_array_equal(
        M, [[False, True, False, True], [False, False, False, False], [False, False, True, False]]
    )
    assert M.dtype == np.bool_


def test_jaccard_equals_python_sets():
    rng = np.random.default_rng(0)
    for trial in range(20):
        universe = rng.permutation(100)[: rng.integers(1, 15)] * 7  # non-contiguous ids
        sets_a = _random_sets(rng, int(rng.integers(1, 6)), universe)
        sets_b = _random_sets(rng, int(rng.integers(1, 6)), universe)
        J = jaccard_matrix(membership(sets_a, universe), membership(sets_b, universe))
        np.testing.assert_allclose(J, _brute_force_jaccard(sets_a, sets_b), rtol=0, atol=1e-15, err_msg=f"{trial}")


def test_identical_sets_give_one_disjoint_zero_empty_zero():
    universe = np.arange(10)
    A = membership([np.array([1, 2, 3]), np.array([4, 5]), np.array([], dtype=np.int64)], universe)
    B = membership([np.array([3, 2, 1]), np.array([6, 7, 8, 9]), np.array([], dtype=np.int64)], universe)
    J = jaccard_matrix(A, B)
    assert J[0, 0] == 1.0
    assert J[1, 1] == 0.0 and J[0, 1] == 0.0 and J[1, 0] == 0.0
    assert J[2, 2] == 0.0  # empty vs empty is defined as 0
    assert J[0, 2] == 0.0
    np.testing.assert_array_equal(np.diag(jaccard_matrix(A[:2], A[:2])), [1.0, 1.0])


def test_bad_inputs_raise():
    universe = np.arange(5)
    with pytest.raises(ValueError, match="outside the universe"):
        membership([np.array([1, 7])], universe)
    with pytest.raises(ValueError, match="repeated ids"):
        membership([np.array([1])], np.array([1, 2, 1]))
    with pytest.raises(ValueError, match="sets is empty"):
        membership([], universe)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        membership([np.array([1])], np.array([], dtype=np.int64))
    with pytest.raises(TypeError, match="integer ids"):
        membership([np.array([1.0])], universe)
    A = np.ones((2, 5), dtype=bool)
    with pytest.raises(ValueError, match="mismatched universe"):
        jaccard_matrix(A, np.ones((2, 4), dtype=bool))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        jaccard_matrix(A, np.ones((0, 5), dtype=bool))
    with pytest.raises(TypeError, match="bool"):
        jaccard_matrix(A.astype(int), A)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        match(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="finite"):
        match(np.array([[0.5, np.nan]]))
    with pytest.raises(ValueError, match="threshold"):
        alignment_table(["a"], ["b"], np.array([[0.5]]), threshold=1.5)
    with pytest.raises(ValueError, match="names"):
        alignment_table(["a", "b"], ["c"], np.array([[0.5]]))
    with pytest.raises(ValueError, match="n_permutations"):
        simulate_null(A, A, n_permutations=0, seed=0)


# -- matching --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (2, 5), (5, 2), (3, 6), (5, 6), (6, 5)])
def test_matching_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape) * 101 + shape[0])
    for ties in (False, True):
        for _ in range(5):
            # with ties: few distinct values, so many optimal matchings exist
            J = rng.integers(0, 3, size=shape) / 2 if ties else rng.random(shape)
            rows, cols, values = match(J)
            assert rows.size == cols.size == values.size == min(shape)
            assert np.unique(rows).size == rows.size and np.unique(cols).size == cols.size  # one-to-one
            np.testing.assert_array_equal(values, J[rows, cols])
            assert values.sum() == pytest.approx(_brute_force_best(J), abs=1e-12)


# -- table and summary -----------------------------------------------------------------------------


def _hand_case() -> tuple[np.ndarray, np.ndarray]:
    # a0 = {0,1,2,3}, a1 = {0,1,2}, a2 = {7,8};  b0 = {0,1,2,3}, b1 = {7,9}
    # J = [[1, 0], [3/4, 0], [0, 1/3]]; optimal matching a0-b0 (1) + a2-b1 (1/3) = 4/3 beats a1-b0 + a2-b1 = 13/12
    universe = np.arange(10)
    A = membership([np.array([0, 1, 2, 3]), np.array([0, 1, 2]), np.array([7, 8])], universe)
    B = membership([np.array([0, 1, 2, 3]), np.array([7, 9])], universe)
    return A, B


def test_table_on_hand_case():
    A, B = _hand_case()
    J = jaccard_matrix(A, B)
    np.testing.assert_allclose(J, [[1, 0], [0.75, 0], [0, 1 / 3]])
    table = alignment_table(["a0", "a1", "a2"], ["b0", "b1"], J, threshold=0.3)
    assert table["concept_a"].tolist() == ["a0", "a2"]
    assert table["concept_b"].tolist() == ["b0", "b1"]
    np.testing.assert_allclose(table["jaccard"], [1, 1 / 3])
    assert table["above_threshold"].tolist() == [True, True]
    np.testing.assert_allclose(table["best_jaccard_a"], [1, 1 / 3])
    assert alignment_table(["a0", "a1", "a2"], ["b0", "b1"], J, threshold=0.5)["above_threshold"].tolist() == [
        True,
        False,
    ]


def test_summary_counts_on_hand_case():
    A, B = _hand_case()
    row = alignment_summary(
        A, B, model="m", layer="l", method_a="naps", method_b="nmf", threshold=0.3, n_permutations=20, seed=0
    )
    assert (row["model"], row["layer"], row["method_a"], row["method_b"]) == ("m", "l", "naps", "nmf")
    assert (row["n_universe"], row["n_a"], row["n_b"], row["n_matched"]) == (10, 3, 2, 2)
    # a0 (1), a1 (3/4, its best partner b0 went to a0) and a2 (1/3) have a counterpart; only 2 are matched
    assert row["n_a_with_counterpart"] == 3
    assert row["n_matched_above"] == 2
    assert row["n_b_with_counterpart"] == 2
    assert row["mean_matched_jaccard"] == pytest.approx(2 / 3)
    assert row["threshold"] == 0.3 and row["n_permutations"] == 20 and row["seed"] == 0
    row = alignment_summary(A, B, model="m", layer="l", method_a="naps", method_b="nmf", n_permutations=5, seed=0)
    assert row["threshold"] == DEFAULT_THRESHOLD
    strict = alignment_summary(
        A, B, model="m", layer="l", method_a="a", method_b="b", threshold=0.8, n_permutations=5, seed=0
    )
    assert (strict["n_a_with_counterpart"], strict["n_matched_above"], strict["n_b_with_counterpart"]) == (1, 1, 1)


def _planted(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # 6 disjoint concepts of 15 images in 300; B is A with 2 ids of each set swapped for others
    universe = np.arange(300)
    ids = rng.permutation(300)
    sets_a = [ids[15 * i : 15 * (i + 1)] for i in range(6)]
    sets_b = [np.concatenate([s[2:], ids[200 + 2 * i : 202 + 2 * i]]) for i, s in enumerate(sets_a)]
    order = rng.permutation(6)  # B's concepts in another order
    return membership(sets_a, universe), membership([sets_b[i] for i in order], universe)


def test_null_is_seeded_and_below_planted_alignment():
    A, B = _planted(np.random.default_rng(3))
    null = simulate_null(A, B, n_permutations=50, seed=7)
    assert null.shape == (50,)
    np.testing.assert_array_equal(null, simulate_null(A, B, n_permutations=50, seed=7))
    assert not np.array_equal(null, simulate_null(A, B, n_permutations=50, seed=8))
    row = alignment_summary(A, B, model="m", layer="l", method_a="a", method_b="b", n_permutations=50, seed=7)
    assert row["null_mean"] == pytest.approx(null.mean())
    assert row["null_q95"] == pytest.approx(np.quantile(null, 0.95))
    assert row["mean_matched_jaccard"] == pytest.approx(13 / 17)  # |∩| = 13, |∪| = 17 for each pair
    assert row["null_q95"] < row["mean_matched_jaccard"]
    assert row["p_value"] == pytest.approx(1 / 51)
    assert row["n_a_with_counterpart"] == row["n_matched_above"] == 6
    # draw p does not depend on how many draws follow
    same_sizes = simulate_null(A, B, n_permutations=1, seed=7)
    assert same_sizes[0] == null[0]


# -- figure ----------------------------------------------------------------------------------------


def test_plot_writes_png_and_csv(tmp_path):
    A, B = _hand_case()
    J = jaccard_matrix(A, B)
    path = plot_alignment(
        J, ["a0", "a1", "a2"], ["b0", "b1"], match(J), tmp_path / "fig" / "align.png", "m / l", label_a="naps"
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    table = pd.read_csv(tmp_path / "fig" / "align.csv")
    assert len(table) == 6 and table["matched"].sum() == 2
    assert table.loc[table["matched"], "concept_a"].tolist() == ["a0", "a2"]
    with pytest.raises(ValueError, match="one-to-one"):
        plot_alignment(J, ["a0", "a1", "a2"], ["b0", "b1"], (np.array([0, 1]), np.array([0, 0])), path, "t")
