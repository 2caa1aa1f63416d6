"""NF-1 .. NF-11 on hand-made tables: right evidence passes, wrong evidence fails, no evidence is NOT RUN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conceptscope.neurflow.eval_claims import (
    PAPER_SECONDS,
    nf_1,
    nf_3,
    nf_4,
    nf_5,
    nf_6,
    nf_7,
    nf_8,
    nf_9,
    nf_11,
    optimality_cells,
)
from conceptscope.neurflow.fidelity_claims import nf_2, nf_10

NAN = float("nan")


# -- NF-1 -----------------------------------------------------------------------------------------------------


def _optimality(core: float, random, *, taus=(10, 30), layers=("l1", "l2"), n_draws: int = 10) -> pd.DataFrame:
    """Two classes x two targets per layer; ``random(draw)`` gives a random subset's loss."""
    rows = []
    for layer in layers:
        for tau in taus:
            for c in (0, 1):
                for t in (3, 7):
                    rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": c, "target": t})
                    rows[-1].update(tau=tau, kind="core", draw=-1, loss=core)
                    for d in range(n_draws):
                        rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": c, "target": t})
                        rows[-1].update(tau=tau, kind="random", draw=d, loss=random(d))
    return pd.DataFrame(rows)


def test_nf_1_core_sets_far_below_random_pass():
    row = nf_1(_optimality(0.3, lambda d: 0.6 + 0.02 * d))
    assert row["verdict"] == "PASS", row
    assert "m/l2 tau 30: D 0.390" in row["detail"] and "99 % t interval" in row["detail"]
    assert row["measured_value"] == "D = 0.39 .. 0.39 over 4 layer/tau cells; random wins 0.0 % of pairs, margin 0.00"


def test_nf_1_random_beating_core_fails():
    assert nf_1(_optimality(0.6, lambda d: 0.3 + 0.01 * d))["verdict"] == "FAIL"
    # D > 0 with a tight interval, but random subsets win in 20 % of pairs
    row = nf_1(_optimality(0.5, lambda d: 0.45 if d < 2 else 0.9))
    assert row["verdict"] == "FAIL" and "random wins 20.0 %" in row["detail"]
    # ... or rarely (10 %) but by a large margin (0.3 > 0.05)
    row = nf_1(_optimality(0.5, lambda d: 0.2 if d == 0 else 0.9))
    assert row["verdict"] == "FAIL" and "margin 0.300" in row["detail"]
    # the same rarity with a negligible margin passes
    assert nf_1(_optimality(0.5, lambda d: 0.48 if d == 0 else 0.9))["verdict"] == "PASS"


def test_nf_1_knockouts_that_change_nothing_fail():
    # every knock-out leaves the concept intact: d = 0, no evidence of optimality
    assert nf_1(_optimality(1.0, lambda d: 1.0))["verdict"] == "FAIL"


def test_nf_1_one_failing_layer_fails():
    table = _optimality(0.3, lambda d: 0.6 + 0.01 * d)
    table.loc[(table["layer"] == "l2") & (table["tau"] == 30) & (table["kind"] == "core"), "loss"] = 0.95
    assert nf_1(table)["verdict"] == "FAIL"


def test_nf_1_no_evidence_is_not_run():
    assert nf_1(_optimality(0.3, lambda d: 0.6).iloc[:0])["verdict"] == "NOT RUN"
    table = _optimality(0.3, lambda d: 0.6 + 0.01 * d)
    table.loc[5, "loss"] = NAN
    row = nf_1(table)
    assert row["verdict"] == "NOT RUN" and "m/l1/10/random" in row["detail"] and "nan" in row["detail"]
    table.loc[5, "loss"] = 1.5  # outside [0, 1]
    assert nf_1(table)["verdict"] == "NOT RUN"


def test_nf_1_interval_is_scipy_t_interval():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.2, 0.9, size=40)
    table = _optimality(0.4, lambda d: values[d], taus=(10,), layers=("l1",), n_draws=40)
    cell = optimality_cells(table).iloc[0]
    d = np.tile(values - 0.4, 4)  # four targets share the random losses
    lo, hi = stats.t.interval(0.99, d.size - 1, loc=d.mean(), scale=stats.sem(d))
    assert cell["n"] == 160 and cell["mean"] == pytest.approx(d.mean())
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((lo, hi))
    assert cell["wins"] == pytest.approx((d < 0).mean()) and cell["margin"] == pytest.approx(-d[d < 0].mean())


# -- NF-2 and NF-10 -------------------------------------------------------------------------------------------

_GOOD = {("mask", "core"): 0.5, ("mask", "random"): 0.9, ("retain", "core"): 0.97, ("retain", "random"): 0.4}


def _fidelity(values=None, *, taus=(4, 8, 16, 20, 24), extended: float | None = 0.98) -> pd.DataFrame:
    """``values[(mode, set)]`` the relative accuracy (a number, or a function of tau); 2 classes, 2 layers, 2 draws."""
    values = {**_GOOD, **(values or {})}
    if extended is not None:
        values[("retain", "extended")] = extended
    rows = []
    for (mode, kind), v in values.items():
        for tau in taus:
            for c in (0, 1):
                for scope in ("single", "multi"):
                    for layer in ("l1", "l2"):
                        for draw in [-1] if kind == "core" else [0, 1]:
                            ra = v(tau) if callable(v) else v
                            rows.append({"model": "m", "class_index": c, "tau": tau, "scope": scope, "layer": layer})
                            rows[-1].update(mode=mode, set=kind, draw=draw, relative_accuracy=ra)
    return pd.DataFrame(rows)


def test_nf_2_core_masking_hurts_and_retaining_keeps():
    row = nf_2(_fidelity())
    assert row["verdict"] == "PASS", row
    assert "mask holds in 12 of 12 cells" in row["measured_value"] and "tau in [4, 8, 16]" in row["detail"]


def test_nf_2_wrong_direction_or_no_effect_fails():
    assert nf_2(_fidelity({("mask", "core"): 0.95}))["verdict"] == "FAIL"  # masking core hurts less
    assert nf_2(_fidelity({("retain", "random"): 0.99}))["verdict"] == "FAIL"
    # all equal: masking changes nothing
    flat = dict.fromkeys(_GOOD, 1.0)
    assert nf_2(_fidelity(flat))["verdict"] == "FAIL"
    # retain fails at tau 4 only: 8 of 12 cells hold (67 % < 80 %)
    row = nf_2(_fidelity({("retain", "core"): lambda t: 0.1 if t == 4 else 0.97}))
    assert row["verdict"] == "FAIL" and "retain holds in 8 of 12" in row["measured_value"]


def test_nf_2_nan_classes_are_excluded_and_no_evidence_is_not_run():
    table = _fidelity()
    table.loc[table["class_index"] == 1, "relative_accuracy"] = NAN
    row = nf_2(table)
    assert row["verdict"] == "PASS" and "m class 1" in row["detail"]
    table["relative_accuracy"] = NAN
    assert nf_2(table)["verdict"] == "NOT RUN"
    assert nf_2(_fidelity().iloc[:0])["verdict"] == "NOT RUN"
    assert nf_2(_fidelity(taus=(20, 24)))["verdict"] == "NOT RUN"
    table = _fidelity()
    table.loc[3, "relative_accuracy"] = np.inf
    assert nf_2(table)["verdict"] == "NOT RUN"


def test_nf_10_large_tau_retains_and_extension_changes_little():
    row = nf_10(_fidelity())
    assert row["verdict"] == "PASS", row
    assert "tau in [20, 24]" in row["detail"] and "in 20 of 20 cells" in row["measured_value"]


def test_nf_10_fails_on_a_drop_or_a_large_extension_effect():
    # a 10 % drop at tau 24
    assert nf_10(_fidelity({("retain", "core"): lambda t: 0.85 if t >= 20 else 0.97}))["verdict"] == "FAIL"
    # extended differs by 0.2 everywhere
    assert nf_10(_fidelity(extended=0.77))["verdict"] == "FAIL"


def test_nf_10_not_run_without_the_taus_or_the_extended_set():
    row = nf_10(_fidelity(taus=(4, 8, 16)))
    assert row["verdict"] == "NOT RUN" and "neurflow.evaluation.fidelity_tau" in row["detail"]
    assert nf_10(_fidelity(extended=None))["verdict"] == "NOT RUN"
    assert nf_10(_fidelity().iloc[:0])["verdict"] == "NOT RUN"
    table = _fidelity()
    table["relative_accuracy"] = NAN
    assert nf_10(table)["verdict"] == "NOT RUN"


# -- NF-3, NF-4, NF-6 ----------------------------------------------------------------------------------------


def _fig11(r, *, methods=("integrated_gradients",), sizes=(1, 5, 10, 20), classes=(0, 1)) -> pd.DataFrame:
    """``r(method, size, aggregate, class_index, layer)`` the Pearson r of every target."""
    rows = []
    for method in methods:
        for layer in ("l1", "l2"):
            for c in classes:
                for t in (2, 5):
                    for size in sizes:
                        for agg in ("sum", "mean") if size == 0 else ("sum",):
                            rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": c, "target": t})
                            rows[-1].update(method=method, size=size, aggregate=agg, n=30)
                            rows[-1]["r"] = r(method, size, agg, c, layer)
    return pd.DataFrame(rows)


def _ig(method, size, agg, c, layer):
    return -0.9 + 0.02 * size


def test_nf_3_strong_negative_correlation_weakening_with_size_passes():
    row = nf_3(_fig11(_ig))
    assert row["verdict"] == "PASS", row
    assert "m/l1: mean r by size {1: -0.88" in row["detail"]


def test_nf_3_wrong_sign_weak_or_flat_fails():
    assert nf_3(_fig11(lambda *a: 0.8 - 0.02 * a[1]))["verdict"] == "FAIL"  # the wrong sign
    assert nf_3(_fig11(lambda *a: -0.5 + 0.01 * a[1]))["verdict"] == "FAIL"  # too weak
    assert nf_3(_fig11(lambda *a: -0.9 - 0.001 * a[1]))["verdict"] == "FAIL"  # strengthens with size
    # undefined everywhere (no knock-out changed the concept): no correlation
    row = nf_3(_fig11(lambda *a: NAN))
    assert row["verdict"] == "FAIL" and "32 of 32 r undefined" in row["detail"]
    # half of the size-1 targets undefined: mean -0.44
    row = nf_3(_fig11(lambda m, s, a, c, lay: NAN if (s == 1 and c == 1) else _ig(m, s, a, c, lay)))
    assert row["verdict"] == "FAIL" and "{1: -0.44" in row["detail"]


def test_nf_3_not_run_cases():
    assert nf_3(_fig11(_ig).iloc[:0])["verdict"] == "NOT RUN"
    row = nf_3(_fig11(_ig, sizes=(5, 10)))
    assert row["verdict"] == "NOT RUN" and "m/l1" in row["detail"] and "size 1" in row["detail"]
    table = _fig11(_ig)
    table.loc[0, "r"] = np.inf
    assert nf_3(table)["verdict"] == "NOT RUN"
    assert nf_3(_fig11(_ig, methods=("saliency",)))["verdict"] == "NOT RUN"


_STRENGTH = {
    "integrated_gradients": -0.8,
    "saliency": -0.6,
    "guided_backprop": -0.5,
    "lrp": -0.82,
    "smoothgrad": -0.7,
    "gradient_shap": -0.75,
    "knockoff": -0.1,
}


def _methods(strength=None, methods=None):
    strength = {**_STRENGTH, **(strength or {})}
    return _fig11(lambda m, *a: strength[m], methods=methods or tuple(strength))


def test_nf_4_ig_at_least_as_good_passes():
    row = nf_4(_methods())
    assert row["verdict"] == "PASS", row
    assert "integrated_gradients 0.80" in row["measured_value"]


def test_nf_4_fails_on_each_condition():
    assert nf_4(_methods({"saliency": -0.9}))["verdict"] == "FAIL"
    assert nf_4(_methods({"gradient_shap": -0.5}))["verdict"] == "FAIL"
    assert nf_4(_methods({"knockoff": -0.5}))["verdict"] == "FAIL"
    # all methods undefined everywhere (all 0): s_ig > 0 fails
    assert nf_4(_methods(dict.fromkeys(_STRENGTH, NAN)))["verdict"] == "FAIL"
    # the wrong sign for all: IG "beats" nothing
    assert nf_4(_methods({m: -v for m, v in _STRENGTH.items()}))["verdict"] == "FAIL"


def test_nf_4_absent_methods_are_named_and_skipped():
    methods = ("integrated_gradients", "saliency", "gradient_shap", "knockoff")
    timing = pd.DataFrame({"method": ["lrp", "saliency"], "status": ["refused: no rule for Foo", "ok"]})
    row = nf_4(_methods(methods=methods), timing)
    assert row["verdict"] == "PASS"
    assert "lrp absent (refused: no rule for Foo)" in row["detail"] and "smoothgrad absent (no rows)" in row["detail"]


def test_nf_4_not_run_cases():
    assert nf_4(_methods().iloc[:0])["verdict"] == "NOT RUN"
    assert nf_4(_methods(methods=("saliency", "lrp")))["verdict"] == "NOT RUN"
    assert nf_4(_methods(methods=("integrated_gradients",)))["verdict"] == "NOT RUN"
    assert nf_4(_methods({"other": -0.1}, methods=("integrated_gradients", "other")))["verdict"] == "NOT RUN"
    table = _methods()
    table.loc[3, "r"] = -1.5
    assert nf_4(table)["verdict"] == "NOT RUN"


def _sum_mean(r_sum, r_mean, classes=(0, 1, 2)):
    """Size-0 rows; ``r_sum(c)``, ``r_mean(c)`` per class."""
    return _fig11(lambda m, s, a, c, lay: r_sum(c) if a == "sum" else r_mean(c), sizes=(0,), classes=classes)


def test_nf_6_sum_beats_mean_on_every_layer_passes():
    row = nf_6(_sum_mean(lambda c: -0.7, lambda c: -0.4))
    assert row["verdict"] == "PASS", row
    assert "classes counted: {'m': [0, 1, 2]}" in row["detail"]


def test_nf_6_counts_every_class_not_only_the_last():
    # the last class alone would pass (sum -0.8 < mean -0.2); pooled over classes sum -0.2 > mean -0.467
    r_sum = {0: 0.1, 1: 0.1, 2: -0.8}
    r_mean = {0: -0.6, 1: -0.6, 2: -0.2}
    assert nf_6(_sum_mean(r_sum.get, r_mean.get, classes=(2,)))["verdict"] == "PASS"
    row = nf_6(_sum_mean(r_sum.get, r_mean.get))
    assert row["verdict"] == "FAIL" and "r_sum -0.200, r_mean -0.467" in row["detail"]
    # and vice versa: the last class alone fails, all classes pooled pass
    r_sum, r_mean = {0: -0.9, 1: -0.9, 2: -0.1}, {0: -0.2, 1: -0.2, 2: -0.3}
    assert nf_6(_sum_mean(r_sum.get, r_mean.get, classes=(2,)))["verdict"] == "FAIL"
    assert nf_6(_sum_mean(r_sum.get, r_mean.get))["verdict"] == "PASS"


def test_nf_6_wrong_sign_equal_or_undefined_fails():
    assert nf_6(_sum_mean(lambda c: 0.2, lambda c: 0.6))["verdict"] == "FAIL"  # sum < mean but positive
    assert nf_6(_sum_mean(lambda c: -0.5, lambda c: -0.5))["verdict"] == "FAIL"
    assert nf_6(_sum_mean(lambda c: NAN, lambda c: NAN))["verdict"] == "FAIL"


def test_nf_6_not_run_cases():
    assert nf_6(_sum_mean(lambda c: -0.7, lambda c: -0.4).iloc[:0])["verdict"] == "NOT RUN"
    only_sum = _sum_mean(lambda c: -0.7, lambda c: -0.4)
    assert nf_6(only_sum[only_sum["aggregate"] == "sum"])["verdict"] == "NOT RUN"
    table = _sum_mean(lambda c: -0.7, lambda c: -0.4)
    table.loc[0, "r"] = -np.inf
    assert nf_6(table)["verdict"] == "NOT RUN"


# -- NF-5 -----------------------------------------------------------------------------------------------------


def _fig10(ours=None, status=None):
    ratios = {m: s / PAPER_SECONDS["integrated_gradients"] for m, s in PAPER_SECONDS.items()} | (ours or {})
    rows = [
        {"model": "googlenet", "method": m, "cpu_seconds_per_target": 2.0 * v, "ratio_to_ig": v}
        | {"status": (status or {}).get(m, "ok"), "paper_seconds": PAPER_SECONDS[m]}
        for m, v in ratios.items()
    ]
    return pd.DataFrame(rows)


def test_nf_5_ratios_on_the_paper_side_pass():
    row = nf_5(_fig10({"lrp": 0.5, "knockoff": 1.2}))
    assert row["verdict"] == "PASS", row
    assert "googlenet/lrp 0.50 (paper 0.16)" in row["measured_value"]


def test_nf_5_wrong_side_or_equal_fails():
    row = nf_5(_fig10({"saliency": 1.5}))
    assert row["verdict"] == "FAIL" and "googlenet/saliency" in row["detail"].split("wrong side")[1]
    assert nf_5(_fig10({"smoothgrad": 1.0}))["verdict"] == "FAIL"


def test_nf_5_refused_methods_are_skipped_and_no_evidence_is_not_run():
    row = nf_5(_fig10({"lrp": NAN}, {"lrp": "refused: no rule"}))
    assert row["verdict"] == "PASS" and "googlenet/lrp (refused: no rule)" in row["detail"]
    assert nf_5(_fig10().iloc[:0])["verdict"] == "NOT RUN"
    assert nf_5(_fig10({"saliency": NAN}))["verdict"] == "NOT RUN"
    assert nf_5(_fig10(status={"integrated_gradients": "refused: x"}))["verdict"] == "NOT RUN"
    ig_only = _fig10()
    assert nf_5(ig_only[ig_only["method"] == "integrated_gradients"])["verdict"] == "NOT RUN"


# -- NF-7, NF-8, NF-9 ----------------------------------------------------------------------------------------


def _table3(f1: dict[str, float], models=("resnet50", "googlenet")) -> pd.DataFrame:
    rows = [
        {"model": m, "layer": lay, "class_index": 0, "target": t, "tau": 16, "pair": p, "f1": v + 0.01 * t}
        for m in models
        for lay in ("l1", "l2")
        for t in (0, 1)
        for p, v in f1.items()
    ]
    return pd.DataFrame(rows)


_F1 = {"neuronmct-neurflow": 0.7, "neuronmct-neucept": 0.4, "neurflow-neucept": 0.45}


def test_nf_7_paper_ordering():
    row = nf_7(_table3(_F1))
    assert row["verdict"] == "PASS", row
    assert (
        "resnet50: neuronmct-neurflow 0.70" in row["measured_value"]
        and "(paper 0.72/0.48/0.49)" in row["measured_value"]
    )
    assert nf_7(_table3(_F1 | {"neurflow-neucept": 0.8}))["verdict"] == "FAIL"
    assert nf_7(_table3(dict.fromkeys(_F1, 0.0)))["verdict"] == "FAIL"  # all zero: no ordering


def test_nf_7_not_run_cases():
    assert nf_7(_table3(_F1).iloc[:0])["verdict"] == "NOT RUN"
    table = _table3(_F1)
    row = nf_7(table[~((table["model"] == "googlenet") & (table["pair"] == "neuronmct-neucept"))])
    assert row["verdict"] == "NOT RUN" and "googlenet: neuronmct-neucept" in row["detail"]
    table.loc[2, "f1"] = NAN
    assert nf_7(table)["verdict"] == "NOT RUN"


def _table4(core, l2):
    rows = [
        {"model": m, "block": b, "class_index": 0, "target": t, "tau": 16, "loss_core": core, "loss_l2": l2}
        for m in ("resnet50", "googlenet")
        for b in ("layer4.0", "layer4.1")
        for t in range(3)
    ]
    table = pd.DataFrame(rows)
    return table.assign(diff=table["loss_core"] - table["loss_l2"])


def test_nf_8_core_sets_beat_l2():
    row = nf_8(_table4(0.3, 0.35))
    assert row["verdict"] == "PASS", row
    assert "resnet50: -0.050 (paper -0.082)" in row["measured_value"]
    assert nf_8(_table4(0.4, 0.35))["verdict"] == "FAIL"
    assert nf_8(_table4(0.4, 0.4))["verdict"] == "FAIL"  # exactly 0: no difference
    table = _table4(0.3, 0.35)
    table.loc[table["model"] == "googlenet", "loss_core"] = 0.5
    assert nf_8(table.assign(diff=table["loss_core"] - table["loss_l2"]))["verdict"] == "FAIL"


def test_nf_8_not_run_cases():
    assert nf_8(_table4(0.3, 0.35).iloc[:0])["verdict"] == "NOT RUN"
    table = _table4(0.3, 0.35)
    table.loc[1, "loss_l2"] = NAN
    assert nf_8(table)["verdict"] == "NOT RUN"
    table = _table4(0.3, 0.35)
    table.loc[1, "diff"] = 0.2  # disagrees with the losses
    assert nf_8(table)["verdict"] == "NOT RUN"


def _table5(overlap, tau=8):
    rows = [
        {"model": "m", "layer": lay, "class_index": 0, "target": t, "tau": tau, "k": k, "k_reference": 50}
        | {"overlap": tau if k == 50 else overlap(lay, k)}
        for lay in ("layer4", "fc")
        for t in range(2)
        for k in (30, 50, 70)
    ]
    return pd.DataFrame(rows)


def test_nf_9_threshold_is_ceil_14_of_16_tau():
    # tau 8: ceil(7) = 7
    row = nf_9(_table5(lambda lay, k: 7 if lay == "layer4" else 8))
    assert row["verdict"] == "PASS", row
    assert row["measured_value"] == "min overlap 7 of 8 (m/layer4), 8 of 8 (m/fc)"
    assert nf_9(_table5(lambda lay, k: 6 if k == 70 and lay == "fc" else 8))["verdict"] == "FAIL"
    # tau 10: ceil(8.75) = 9, so 8 fails
    assert math.ceil(14 * 10 / 16) == 9
    assert nf_9(_table5(lambda lay, k: 8, tau=10))["verdict"] == "FAIL"
    assert nf_9(_table5(lambda lay, k: 9, tau=10))["verdict"] == "PASS"
    assert nf_9(_table5(lambda lay, k: 0))["verdict"] == "FAIL"


def test_nf_9_not_run_cases():
    assert nf_9(_table5(lambda lay, k: 8).iloc[:0])["verdict"] == "NOT RUN"
    assert nf_9(_table5(lambda lay, k: NAN))["verdict"] == "NOT RUN"
    assert nf_9(_table5(lambda lay, k: 9))["verdict"] == "NOT RUN"  # above tau: a broken table
    same = _table5(lambda lay, k: 8)
    assert nf_9(same[same["k"] == 50])["verdict"] == "NOT RUN"


# -- NF-11 ----------------------------------------------------------------------------------------------------


def _fig18(shares: dict[int, tuple[float, float, float]]) -> pd.DataFrame:
    """``shares[depth]`` = the shares of scales (1.0, 0.5, 0.25) of the layer at that depth, two models."""
    rows = [
        {"model": m, "layer": f"b{d}", "depth": d, "scale": s, "share": v, "n_patches": 100}
        for m in ("a", "b")
        for d, values in shares.items()
        for s, v in zip((1.0, 0.5, 0.25), values, strict=True)
    ]
    return pd.DataFrame(rows)


_CROPS = {0: (0.1, 0.3, 0.6), 1: (0.3, 0.4, 0.3), 2: (0.6, 0.3, 0.1)}


def test_nf_11_larger_crops_higher_up_passes():
    row = nf_11(_fig18(_CROPS))
    assert row["verdict"] == "PASS", row
    assert "b0 (depth 0) 0.400" in row["detail"]  # 0.1 * 1 + 0.3 * 0.5 + 0.6 * 0.25


def test_nf_11_reversed_or_flat_fails():
    assert nf_11(_fig18({d: _CROPS[2 - d] for d in _CROPS}))["verdict"] == "FAIL"
    assert nf_11(_fig18(dict.fromkeys(_CROPS, (0.2, 0.3, 0.5))))["verdict"] == "FAIL"
    # the mean scale rises but the small-crop share does not fall from bottom to top
    assert nf_11(_fig18({0: (0.1, 0.3, 0.6), 1: (0.5, 0.0, 0.5), 2: (0.4, 0.0, 0.6)}))["verdict"] == "FAIL"


def test_nf_11_not_run_cases():
    assert nf_11(_fig18(_CROPS).iloc[:0])["verdict"] == "NOT RUN"
    row = nf_11(_fig18({0: _CROPS[0]}))
    assert row["verdict"] == "NOT RUN" and "fewer than 2" in row["detail"]
    assert nf_11(_fig18(_CROPS | {1: (NAN, NAN, NAN)}))["verdict"] == "NOT RUN"
    assert nf_11(_fig18(_CROPS | {1: (0.0, 0.0, 0.0)}))["verdict"] == "NOT RUN"  # shares sum to 0


@pytest.mark.parametrize(
    "rule",
    [nf_1, nf_2, nf_3, nf_4, nf_5, nf_6, nf_7, nf_8, nf_9, nf_10, nf_11],
)
def test_every_rule_states_a_rule_and_refuses_a_table_without_columns(rule):
    row = rule(pd.DataFrame({"model": ["m"], "layer": ["l"]}))
    assert row["verdict"] == "NOT RUN" and "lacks column" in row["detail"]
    assert rule.__doc__ and "NOT RUN" in rule.__doc__


def test_nf_4_against_the_random_control():
    """IG must beat random channel scores by 0.1 in strength; a random control as strong as IG fails the row."""
    assert nf_4(_methods({"random": 0.0}))["verdict"] == "PASS"
    row = nf_4(_methods({"random": -0.75}))  # random scores nearly as predictive as IG (0.80)
    assert row["verdict"] == "FAIL" and "s_ig >= s_random + 0.1" in row["detail"]


def _with_size_control(r_sum, r_mean, r_size):
    table = _sum_mean(lambda c: r_sum, lambda c: r_mean)
    control = table[table["aggregate"] == "sum"].assign(method="subset_size", r=r_size)
    return pd.concat([table, control], ignore_index=True)


def test_nf_6_sum_must_beat_the_subset_size_alone():
    """Pooled sizes make any sum correlate with the loss: IG's sum must correlate more than the size alone."""
    assert nf_6(_with_size_control(-0.7, -0.4, -0.5))["verdict"] == "PASS"
    row = nf_6(_with_size_control(-0.7, -0.4, -0.8))  # the subset size alone correlates better than |IG|'s sum
    assert row["verdict"] == "FAIL" and "subset size" in row["detail"]


def _with_other_predicted(table: pd.DataFrame, retained_core: float) -> pd.DataFrame:
    """``other_predicted``: 0.02 everywhere but ``retained_core`` for the retained core sets."""
    core = (table["mode"] == "retain") & (table["set"] == "core")
    return table.assign(other_predicted=np.where(core, retained_core, 0.02))


def test_nf_2_and_nf_10_degenerate_retained_sets_do_not_count():
    """Retaining only the core neurons so that the model predicts the class for most other images shows nothing."""
    assert nf_2(_with_other_predicted(_fidelity(), 0.1))["verdict"] == "PASS"
    row = nf_2(_with_other_predicted(_fidelity(), 0.9))
    assert row["verdict"] == "FAIL" and "Degenerate retain cells: 12 of 12" in row["detail"]
    assert "retain holds in 0 of 12" in row["measured_value"]
    good = _fidelity({("retain", "core"): 0.99})
    assert nf_10(_with_other_predicted(good, 0.1))["verdict"] == "PASS"
    row = nf_10(_with_other_predicted(good, 0.9))
    assert row["verdict"] == "FAIL" and "Degenerate (a) cells" in row["detail"]
