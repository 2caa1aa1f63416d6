"""Claim rules on adversarial inputs: no PASS on the wrong evidence, and PASS kept on the right one.

For every rule of NAPs (NAP-1, NAP-2, NAP-4), NMF (NMF-1, NMF-2) and NAS
(NAS-1): all-negative values, all-zero values, one element, a NaN, an empty
table and constant columns (where a Spearman rho is undefined) each give
FAIL or NOT RUN with a reason; the verdict below is the right one, derived
by hand from the rule's statement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from conceptscope import claims
from conceptscope.naps.claims import nap_1, nap_2, nap_4
from conceptscope.nas import TAXONOMY_LABELS
from conceptscope.nas.claims import nas_1
from conceptscope.nmf.claims import nmf_1, nmf_2

NAN = float("nan")
GOOD_RANKING = {"none": 1, "max": 5, "min_max": 4, "mean": 9, "mean_std": 8}

# -- table builders --------------------------------------------------------------------------------


def _nap_counts(per_layer: list[dict[str, float]], kind: str = "conv") -> pd.DataFrame:
    """NAP-1/NAP-4 rows: layer d has the counts ``per_layer[d]`` per method."""
    rows = [
        {"model": "m", "layer": f"l{d}", "depth": d, "kind": kind, "method": method, "n_naps": n}
        for d, counts in enumerate(per_layer)
        for method, n in counts.items()
    ]
    return pd.DataFrame(rows, columns=["model", "layer", "depth", "kind", "method", "n_naps"])


def _nap_depth(values: list[float], depths: list[int] | None = None) -> pd.DataFrame:
    """NAP-4 rows: one method, NAP count ``values[i]`` at depth ``depths[i]``."""
    depths = list(range(len(values))) if depths is None else depths
    return pd.DataFrame(
        {"model": "m", "layer": [f"l{i}" for i in range(len(values))], "depth": depths, "kind": "conv"}
        | {"method": "mean", "n_naps": values}
    )


def _nap_sizes(test: list[float], train: list[float], sizes: list[int] | None = None) -> pd.DataFrame:
    """NAP-2 rows of one layer: NAP counts per input size in the test and train split."""
    sizes = [100 * (i + 1) for i in range(len(test))] if sizes is None else sizes
    rows = [
        {"model": "m", "layer": "fc", "split": split, "size": s, "n_naps": n}
        for split, values in (("test", test), ("train", train))
        for s, n in zip(sizes, values, strict=True)
    ]
    return pd.DataFrame(rows, columns=["model", "layer", "split", "size", "n_naps"])


def _nmf(column: str, values: list[float], depths: list[int] | None = None) -> pd.DataFrame:
    depths = list(range(len(values))) if depths is None else depths
    return pd.DataFrame(
        {"model": "m", "layer": [f"l{i}" for i in range(len(values))], "depth": depths, "k": 3, column: values},
        columns=["model", "layer", "depth", "k", column],
    )


def _nas_counts(
    counts: dict[str, int], n_units: int = 10, n_images: int = 450, layers=("a", "b"), judged: dict | None = None
) -> pd.DataFrame:
    """NAS-1 rows: the same label counts on every layer (labels not in ``counts`` count 0); every unit judged
    on every type unless ``judged`` says otherwise."""
    rows = [
        {
            "model": "m",
            "layer": layer,
            "type": t,
            "count": counts.get(t, 0),
            "judged": (judged or {}).get(t, n_units),
            "n_units": n_units,
            "n_images": n_images,
            "consistent": True,
        }
        for layer in layers
        for t in TAXONOMY_LABELS
    ]
    return pd.DataFrame(rows)


NAS_EXPECTED = {"m": ["a", "b"]}
NAS_GOOD = {"specialized": 3, "bisemantic": 2, "differentiating": 5, "insufficient": 1}

# -- the right evidence passes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "table"),
    [
        (nap_1, _nap_counts([GOOD_RANKING, GOOD_RANKING])),
        (nap_2, _nap_sizes([3, 5, 9], [2, 4, 7])),
        (nap_4, _nap_depth([3, 5, 9, 12])),
        (nmf_1, _nmf("diagonal_dominance", [0.6, 0.7, 0.99])),
        (nmf_2, _nmf("eigen_mean", [3.5, 2.8, 1.05])),
        (lambda t: nas_1(t, NAS_EXPECTED), _nas_counts(NAS_GOOD)),
    ],
    ids=["NAP-1", "NAP-2", "NAP-4", "NMF-1", "NMF-2", "NAS-1"],
)
def test_the_right_evidence_passes(rule, table):
    row = rule(table)
    assert row["verdict"] == "PASS", row


# -- adversarial inputs ----------------------------------------------------------------------------

# (claim, input, rule, table, verdict, a phrase of the reason)
CASES = [
    # NAP-1: avg(mean, mean_std) >= avg(max, min_max) >= none, and mean > none, on half the conv layers
    ("NAP-1", "all_negative", nap_1, _nap_counts([{k: -v for k, v in GOOD_RANKING.items()}] * 2), "NOT RUN", "n_naps"),
    ("NAP-1", "all_zero", nap_1, _nap_counts([dict.fromkeys(GOOD_RANKING, 0)] * 2), "NOT RUN", "same count"),
    ("NAP-1", "one_element", nap_1, _nap_counts([{"mean": 5}]), "NOT RUN", "all five"),
    ("NAP-1", "nan", nap_1, _nap_counts([GOOD_RANKING, GOOD_RANKING | {"none": NAN}]), "NOT RUN", "nan"),
    ("NAP-1", "empty", nap_1, _nap_counts([]), "NOT RUN", "all five"),
    ("NAP-1", "constant", nap_1, _nap_counts([dict.fromkeys(GOOD_RANKING, 7)] * 3), "NOT RUN", "same count"),
    # NAP-2: rho(size, count) > 0 in every split on half the layers
    ("NAP-2", "all_negative", nap_2, _nap_sizes([-9, -6, -3], [-8, -5, -1]), "NOT RUN", "n_naps"),
    ("NAP-2", "all_zero", nap_2, _nap_sizes([0, 0, 0], [0, 0, 0]), "NOT RUN", "no NAP on any layer"),
    ("NAP-2", "one_element", nap_2, _nap_sizes([4], [5]), "NOT RUN", "one size"),
    ("NAP-2", "nan", nap_2, _nap_sizes([3, NAN, 9], [2, 4, 7]), "NOT RUN", "nan"),
    ("NAP-2", "empty", nap_2, _nap_sizes([], []), "NOT RUN", "no NAP counts"),
    ("NAP-2", "constant_size", nap_2, _nap_sizes([3], [2], sizes=[100]).iloc[[0, 1]], "NOT RUN", "one size"),
    ("NAP-2", "constant_count", nap_2, _nap_sizes([5, 5, 5], [5, 5, 5]), "FAIL", "no change"),
    # NAP-4: median over (model, method) of rho(depth, count) > 0
    ("NAP-4", "all_negative", nap_4, _nap_depth([-9, -6, -3]), "NOT RUN", "n_naps"),
    ("NAP-4", "all_zero", nap_4, _nap_depth([0, 0, 0]), "NOT RUN", "no NAP on any layer"),
    ("NAP-4", "one_element", nap_4, _nap_depth([7]), "NOT RUN", "two or more depths"),
    ("NAP-4", "nan", nap_4, _nap_depth([3, NAN, 9]), "NOT RUN", "nan"),
    ("NAP-4", "empty", nap_4, _nap_depth([]), "NOT RUN", "no NAP counts"),
    ("NAP-4", "constant_depth", nap_4, _nap_depth([3, 5, 9], depths=[2, 2, 2]), "NOT RUN", "one depth"),
    ("NAP-4", "constant_count", nap_4, _nap_depth([4, 4, 4, 4]), "FAIL", "+0.00"),
    # NMF-1: rho(depth, diagonal dominance) > 0 for every model; dominance lies in [0, 1]
    ("NMF-1", "all_negative", nmf_1, _nmf("diagonal_dominance", [-0.5, -0.3, -0.1]), "NOT RUN", ">= 0"),
    ("NMF-1", "all_zero", nmf_1, _nmf("diagonal_dominance", [0.0, 0.0, 0.0]), "FAIL", "no change"),
    ("NMF-1", "one_element", nmf_1, _nmf("diagonal_dominance", [0.8]), "NOT RUN", "two or more"),
    ("NMF-1", "nan", nmf_1, _nmf("diagonal_dominance", [0.6, NAN, 0.9]), "NOT RUN", "nan"),
    ("NMF-1", "empty", nmf_1, _nmf("diagonal_dominance", []), "NOT RUN", "no NMF layers"),
    ("NMF-1", "constant_depth", nmf_1, _nmf("diagonal_dominance", [0.6, 0.7, 0.9], [1, 1, 1]), "NOT RUN", "two or"),
    ("NMF-1", "above_one", nmf_1, _nmf("diagonal_dominance", [0.6, 0.9, 1.5]), "NOT RUN", "<= 1"),
    # NMF-2: rho(depth, eigen mean) < 0 for every model; eigenvalues of a similarity matrix are >= 0
    ("NMF-2", "all_negative", nmf_2, _nmf("eigen_mean", [-1.0, -2.0, -3.0]), "NOT RUN", ">= 0"),
    ("NMF-2", "all_zero", nmf_2, _nmf("eigen_mean", [0.0, 0.0, 0.0]), "FAIL", "no change"),
    ("NMF-2", "one_element", nmf_2, _nmf("eigen_mean", [2.0]), "NOT RUN", "two or more"),
    ("NMF-2", "nan", nmf_2, _nmf("eigen_mean", [3.0, NAN, 1.0]), "NOT RUN", "nan"),
    ("NMF-2", "empty", nmf_2, _nmf("eigen_mean", []), "NOT RUN", "no NMF layers"),
    ("NMF-2", "constant_depth", nmf_2, _nmf("eigen_mean", [3.0, 2.0, 1.0], [0, 0, 0]), "NOT RUN", "two or more"),
    ("NMF-2", "constant_mean", nmf_2, _nmf("eigen_mean", [2.0, 2.0, 2.0]), "FAIL", "no change"),
]
NAS_CASES = [
    # NAS-1: every probed layer present, consistent, some unit judged on every type
    ("all_negative", _nas_counts(dict.fromkeys(TAXONOMY_LABELS, -1)), NAS_EXPECTED, "FAIL", "outside [0, 10]"),
    ("all_zero", _nas_counts({}, n_units=0, n_images=0), NAS_EXPECTED, "FAIL", "n_units [0]"),
    ("one_element", _nas_counts(NAS_GOOD).iloc[[0]], {"m": ["a"]}, "NOT RUN", "without a count per label"),
    ("nan", _nas_counts(NAS_GOOD | {"zeroing": NAN}), NAS_EXPECTED, "FAIL", "not a whole number"),
    ("empty", _nas_counts({}, layers=()), NAS_EXPECTED, "FAIL", "missing ['m/a', 'm/b']"),
    ("empty_no_models", pd.DataFrame(), {}, "NOT RUN", "nas.models is empty"),
    (
        "constant_insufficient",
        _nas_counts({"insufficient": 10}, judged=dict.fromkeys(["specialized", "bisemantic", "polysemantic"], 0)),
        NAS_EXPECTED,
        "NOT RUN",
        "m/a (specialized, bisemantic, polysemantic)",
    ),
    ("judged_above_units", _nas_counts(NAS_GOOD, judged={"zeroing": 11}), NAS_EXPECTED, "FAIL", "judged [11"),
    ("no_judged_column", _nas_counts(NAS_GOOD).drop(columns="judged"), NAS_EXPECTED, "NOT RUN", "(no judged)"),
    ("count_above_units", _nas_counts(NAS_GOOD | {"specialized": 11}), NAS_EXPECTED, "FAIL", "outside [0, 10]"),
    ("no_insufficient_row", _nas_counts(NAS_GOOD).query("type != 'insufficient'"), NAS_EXPECTED, "NOT RUN", "no insu"),
]


@pytest.mark.parametrize(
    ("rule", "table", "verdict", "reason"),
    [
        pytest.param(rule, table, verdict, reason, id=f"{cid}-{name}")
        for cid, name, rule, table, verdict, reason in CASES
    ],
)
def test_adversarial_input(rule, table, verdict, reason):
    row = rule(table)
    assert row["verdict"] == verdict, row
    assert reason.lower() in (row["measured_value"] + " " + row["detail"]).lower(), row


@pytest.mark.parametrize(
    ("counts", "expected", "verdict", "reason"),
    [pytest.param(*case[1:], id=f"NAS-1-{case[0]}") for case in NAS_CASES],
)
def test_nas_1_adversarial_input(counts, expected, verdict, reason):
    row = nas_1(counts, expected)
    assert row["verdict"] == verdict, row
    assert reason.lower() in (row["measured_value"] + " " + row["detail"]).lower(), row


def test_nas_1_inconsistent_summary_fails():
    counts = _nas_counts(NAS_GOOD)
    counts.loc[counts["layer"] == "b", "consistent"] = False
    row = nas_1(counts, NAS_EXPECTED)
    assert row["verdict"] == "FAIL" and "m/b (the summary or the taxonomy table is inconsistent)" in row["detail"]


def test_nas_1_detail_counts_the_insufficient_units():
    row = nas_1(_nas_counts(NAS_GOOD), NAS_EXPECTED)
    assert row["verdict"] == "PASS"
    assert "insufficient 2 of 20 units" in row["measured_value"]
    assert "2 of 20 units insufficient" in row["detail"] and "m/a: zeroing 0, specialized 3" in row["detail"]


# -- where the old rules passed on the wrong evidence ----------------------------------------------


def test_nap_1_tied_layers_are_not_counted_as_following():
    """The default suite's avgpool layers (1x1 maps) give 13 NAPs for every method: no ranking, not a PASS."""
    bad = {"none": 9, "max": 5, "min_max": 4, "mean": 1, "mean_std": 2}
    row = nap_1(_nap_counts([dict.fromkeys(GOOD_RANKING, 13), dict.fromkeys(GOOD_RANKING, 15), bad]))
    assert row["verdict"] == "FAIL" and row["measured_value"].startswith("0 of 1")  # the old rule: 2 of 3, PASS
    assert "m/l0 (13)" in row["detail"] and "m/l1 (15)" in row["detail"]


def test_nap_4_undefined_groups_cannot_lift_the_median():
    """A falling (model, method) plus two single-depth ones: the old rule read those as rho 0 (median 0)."""
    falling = _nap_depth([9, 6, 3])
    single = [_nap_depth([5]).assign(method=m) for m in ("max", "none")]
    row = nap_4(pd.concat([falling, *single], ignore_index=True))
    assert row["verdict"] == "FAIL" and "-1.00 over 1 (model, method)" in row["measured_value"]
    assert "m/max" in row["detail"] and "m/none" in row["detail"]


def test_nap_2_layers_missing_a_split_are_left_out():
    rising = _nap_sizes([3, 5, 9], [2, 4, 7])
    only_test = _nap_sizes([9, 5, 3], [1, 1, 1]).query("split == 'test'").assign(layer="conv")
    row = nap_2(pd.concat([rising, only_test], ignore_index=True))
    assert row["verdict"] == "PASS" and row["measured_value"].startswith("1 of 1")
    assert "left out (a split missing or at one size): ['m/conv']" in row["detail"]


@pytest.mark.parametrize(
    ("rule", "column", "values"), [(nmf_1, "diagonal_dominance", [0.6, 0.7, 0.9]), (nmf_2, "eigen_mean", [3, 2, 1])]
)
def test_nmf_models_with_one_layer_are_named_not_judged(rule, column, values):
    table = pd.concat([_nmf(column, values), _nmf(column, values[:1]).assign(model="solo")], ignore_index=True)
    row = rule(table)
    assert row["verdict"] == "PASS" and "left out (one depth): ['solo']" in row["detail"]
    reverse = pd.concat([_nmf(column, values[::-1]), _nmf(column, values[:1]).assign(model="solo")])
    assert rule(reverse)["verdict"] == "FAIL"


# -- the shared helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_rank_trend_equals_scipy_spearman(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 6, 12), rng.normal(size=12)
    t = claims.rank_trend(x, y)
    assert t.defined and t.n == 12 and t.note == ""
    assert t.rho == pytest.approx(spearmanr(x, y).statistic)


@pytest.mark.parametrize(
    ("x", "y", "rho", "note"),
    [
        ([1], [5], NAN, "1 position"),
        ([], [], NAN, "0 position"),
        ([2, 2, 2], [1, 2, 3], NAN, "1 position"),
        ([1, 2, 3], [1, NAN, 3], NAN, "NaN"),
        ([1, 2, np.inf], [1, 2, 3], NAN, "NaN"),
        ([1, 2, 3], [4, 4, 4], 0.0, "constant at 4"),
        ([1, 2], [3, 1], -1.0, ""),
    ],
)
def test_rank_trend_says_when_rho_is_undefined(x, y, rho, note):
    t = claims.rank_trend(x, y)
    assert (np.isnan(t.rho) and np.isnan(rho)) or t.rho == pytest.approx(rho)
    assert note in t.note and t.defined == (not np.isnan(rho))


def test_rank_trend_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="same length"):
        claims.rank_trend([1, 2], [1])


def test_invalid_values_names_rows_and_rule():
    table = pd.DataFrame({"model": "m", "layer": ["a", "b", "c"], "v": [1.0, -2.0, NAN]})
    assert claims.invalid_values(table, "v", minimum=-5) == "v: m/c = nan (must be finite and >= -5)"
    assert claims.invalid_values(table, "v", minimum=0).startswith("v: m/b = -2.0, m/c = nan")
    assert claims.invalid_values(table.iloc[:1], "v", minimum=0, maximum=1) == ""
    assert claims.invalid_values(table, "w") == "no column w"


# -- NF-12 (being fixed in the NeurFlow package) ---------------------------------------------------


def _masking(drops: list[float], random: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": "m",
            "class_index": 0,
            "layer": "l",
            "node": range(len(drops)),
            "drop": drops,
            "random_drop_mean": random,
        }
    )


def test_nf_12_adversarial_inputs():
    from conceptscope.neurflow.claims import nf_12

    # (input, table, allowed verdicts); the right verdict derived from "masking the group changes the class
    # probability far more than as many random neurons"
    cases = [
        # the example: the group raises the probability less than random neurons do: ratio was +inf
        ("all_negative", _masking([-0.02, -0.01, -0.03, -0.01], [-0.05, -0.04, -0.06, -0.02]), {"FAIL"}),
        # random neurons change the probability (by -0.05) far more than the group (+0.001)
        ("random_negative", _masking([0.001] * 4, [-0.05] * 4), {"FAIL", "NOT RUN"}),
        ("all_zero", _masking([0.0] * 4, [0.0] * 4), {"FAIL", "NOT RUN"}),
        ("nan", _masking([0.3, NAN, 0.2, 0.4], [0.01, 0.02, NAN, 0.05]), {"FAIL", "NOT RUN"}),
        ("one_element", _masking([-0.01], [-0.05]), {"FAIL"}),
        ("empty", _masking([], []), {"NOT RUN"}),
    ]
    wrong = {}
    for name, table, allowed in cases:
        row = nf_12(table)
        if row["verdict"] not in allowed or not row["detail"]:
            wrong[name] = (row["verdict"], row["measured_value"])
    assert not wrong, wrong
    # and the right evidence still passes: every group drops the probability >= 2x its random neurons
    assert nf_12(_masking([0.3, 0.2, 0.1, 0.4], [0.01, 0.02, 0.01, 0.05]))["verdict"] == "PASS"
