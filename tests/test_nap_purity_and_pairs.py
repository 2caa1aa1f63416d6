"""NAP-3 (more accurate model of equal size) and NAP-5 (label purity of the NAPs against shuffled labels)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conceptscope.naps import claims
from conceptscope.naps.purity import label_purity, purity_test
from conceptscope.naps.settings import NapSettings

# -- label purity -------------------------------------------------------------------------------


def _brute_purity(nap: np.ndarray, labels: np.ndarray) -> float:
    members = [(k, y) for k, y in zip(nap, labels, strict=True) if k >= 0]
    by_nap: dict[int, list[int]] = {}
    for k, y in members:
        by_nap.setdefault(int(k), []).append(int(y))
    return sum(max(ys.count(v) for v in set(ys)) for ys in by_nap.values()) / len(members)


def test_label_purity_equals_a_hand_count():
    nap = np.array([0, 0, 0, 1, 1, -1, -1, 2, 2, 2])
    labels = np.array([3, 3, 1, 0, 2, 3, 3, 5, 5, 5])
    # NAP 0: 2 of 3 carry 3; NAP 1: 1 of 2; NAP 2: 3 of 3; noise ignored -> (2 + 1 + 3) / 8
    assert label_purity(nap, labels) == pytest.approx(6 / 8)
    rng = np.random.default_rng(1)
    for _ in range(20):
        nap = rng.integers(-1, 6, size=60)
        labels = rng.integers(0, 4, size=60)
        assert label_purity(nap, labels) == pytest.approx(_brute_purity(nap, labels))


def test_purity_without_members_is_nan_and_p_is_one():
    t = purity_test(np.full(5, -1), np.arange(5), n_permutations=10)
    assert np.isnan(t.purity) and t.p_value == 1.0


def test_a_single_nap_cannot_beat_its_shuffles():
    t = purity_test(np.zeros(10, dtype=int), np.array([0] * 9 + [1]), n_permutations=50)
    assert t.purity == pytest.approx(0.9) and t.p_value == 1.0  # every shuffle gives the same purity


def test_the_null_equals_an_exact_enumeration_on_a_tiny_case():
    """With 6 members in two NAPs of 3, the shuffled purity takes each permutation with equal probability:
    the permutation null's mean approaches the mean over all 720 orderings."""
    nap = np.array([0, 0, 0, 1, 1, 1])
    labels = np.array([0, 0, 0, 1, 1, 2])
    exact = np.mean([label_purity(nap, labels[list(p)]) for p in itertools.permutations(range(6))])
    t = purity_test(nap, labels, n_permutations=20000, seed=3)
    assert t.null_mean == pytest.approx(exact, abs=0.005)
    assert t.purity == pytest.approx(5 / 6)


def test_pure_naps_are_significant_and_random_ones_are_not():
    labels = np.repeat(np.arange(5), 20)
    pure = purity_test(labels.copy(), labels, n_permutations=200, seed=0)
    assert pure.purity == 1.0 and pure.p_value == pytest.approx(1 / 201) and pure.null_q95 < 0.5
    rng = np.random.default_rng(0)
    random = purity_test(rng.integers(0, 5, size=100), labels, n_permutations=200, seed=0)
    assert random.p_value > 0.05


def test_purity_test_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    nap, labels = rng.integers(-1, 4, size=80), rng.integers(0, 3, size=80)
    assert purity_test(nap, labels, seed=7) == purity_test(nap, labels, seed=7)


@pytest.mark.parametrize(
    ("nap", "labels", "match"),
    [([0, 1], [0], "one length"), ([0, 1], [0, -1], ">= 0")],
)
def test_purity_refuses_bad_input(nap, labels, match):
    with pytest.raises(ValueError, match=match):
        purity_test(np.array(nap), np.array(labels))


# -- NAP-5 --------------------------------------------------------------------------------------


def _purity_rows(ps: list[float], n_naps: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": "m",
            "layer": [f"l{i}" for i in range(len(ps))],
            "depth": range(len(ps)),
            "kind": "conv",
            "method": "max",
            "n_naps": n_naps,
            "label_purity": 0.8,
            "purity_null_mean": 0.4,
            "purity_p": ps,
        }
    )


def test_nap_5_passes_when_half_the_clusterings_are_purer_than_chance():
    assert claims.nap_5(_purity_rows([0.001, 0.5]))["verdict"] == "PASS"
    row = claims.nap_5(_purity_rows([0.001, 0.5, 0.2]))
    assert row["verdict"] == "FAIL" and row["measured_value"].startswith("1 of 3")


def test_nap_5_leaves_out_clusterings_with_one_nap_and_needs_the_columns():
    assert claims.nap_5(_purity_rows([0.001], n_naps=1))["verdict"] == "NOT RUN"
    row = claims.nap_5(_purity_rows([0.001]).drop(columns=["purity_p"]))
    assert row["verdict"] == "NOT RUN" and "purity_p" in row["detail"]
    bad = _purity_rows([0.001, 0.01])
    bad.loc[0, "label_purity"] = np.nan
    row = claims.nap_5(bad)
    assert row["verdict"] == "NOT RUN" and "label_purity" in row["detail"]


def test_nap_5_counts_a_dense_layer_once():
    rows = pd.concat([_purity_rows([0.5]), _purity_rows([0.001]).assign(layer="fc", kind="dense")])
    rows = pd.concat([rows] + [rows[rows["layer"] == "fc"].assign(method=m) for m in ("mean", "none")])
    row = claims.nap_5(rows)
    assert row["measured_value"].startswith("1 of 2") and row["verdict"] == "PASS"


# -- NAP-3 --------------------------------------------------------------------------------------


def _fig6(model: str, counts: dict[tuple[int, str], int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": model, "layer": f"{model}_l{d}", "depth": d, "kind": "conv", "method": m, "n_naps": n}
            for (d, m), n in counts.items()
        ]
    )


def _models(acc_a=0.9, acc_b=0.7, size_a=1000, size_b=1000) -> pd.DataFrame:
    return pd.DataFrame({"model": ["a", "b"], "test_accuracy": [acc_a, acc_b], "n_parameters": [size_a, size_b]})


def test_nap_3_compares_layers_by_position_and_follows_the_accuracy():
    a = _fig6("a", {(0, "max"): 5, (0, "mean"): 6, (1, "max"): 9, (1, "mean"): 2})
    b = _fig6("b", {(0, "max"): 3, (0, "mean"): 4, (1, "max"): 4, (1, "mean"): 7})
    counts = pd.concat([a, b])
    row = claims.nap_3(counts, _models(), [["a", "b"]])
    assert row["verdict"] == "PASS" and row["measured_value"].startswith(
        "the more accurate model has more NAPs in 3 of 4"
    )
    # the same counts with the accuracies swapped: b is the more accurate and has more in 1 of 4
    row = claims.nap_3(counts, _models(acc_a=0.6), [["a", "b"]])
    assert row["verdict"] == "FAIL" and "in 1 of 4" in row["measured_value"]


def test_nap_3_half_is_not_most_and_empty_cells_are_left_out():
    a = _fig6("a", {(0, "max"): 5, (1, "max"): 1, (2, "max"): 0})
    b = _fig6("b", {(0, "max"): 3, (1, "max"): 2, (2, "max"): 0})
    row = claims.nap_3(pd.concat([a, b]), _models(), [["a", "b"]])
    assert row["verdict"] == "FAIL" and "1 of 2" in row["measured_value"]


@pytest.mark.parametrize(
    ("models", "pairs", "reason"),
    [
        (_models(), [], "naps.accuracy_pairs is empty"),
        (_models(size_b=2000), [["a", "b"]], "not of equal size"),
        (_models(acc_b=0.9), [["a", "b"]], "equal accuracy"),
        (_models(acc_b=float("nan")), [["a", "b"]], "test_accuracy"),
        (_models(acc_b=1.5), [["a", "b"]], "test_accuracy"),
        (_models(), [["a", "c"]], "no NAP counts or metrics"),
    ],
)
def test_nap_3_is_not_run_without_evidence(models, pairs, reason):
    counts = pd.concat([_fig6("a", {(0, "max"): 5}), _fig6("b", {(0, "max"): 3})])
    row = claims.nap_3(counts, models, pairs)
    assert row["verdict"] == "NOT RUN" and reason in row["detail"]


def test_accuracy_pairs_are_checked_against_the_config():
    config = {
        "models": {
            "a": {"dataset": "digits", "splits": ["test"], "layers": ["x", "y"]},
            "b": {"dataset": "digits", "splits": ["test"], "layers": ["x"]},
            "c": {"dataset": "other", "splits": ["test"], "layers": ["x", "y"]},
        }
    }
    s = NapSettings.from_config({"models": ["a", "b", "c"], "accuracy_pairs": [["a", "b"], ["a", "c"], ["a", "z"]]})
    problems = "\n".join(s.check(config))
    assert "accuracy_pairs[0]: a probes 2 layers and b 1" in problems
    assert "accuracy_pairs[1]: a and c must cluster the same inputs" in problems
    assert "accuracy_pairs[2]: 'z' not in naps.models" in problems
    s = NapSettings.from_config({"models": ["a", "b"], "accuracy_pairs": [["a", "bb"]]})
    assert "did you mean 'b' for 'bb'?" in "\n".join(s.check(config))
    with pytest.raises(ValueError, match="two models"):
        NapSettings.from_config({"accuracy_pairs": [["a", "a"]]})
