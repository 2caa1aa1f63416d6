"""Claim rules NF-1 .. NF-11 of NeurFlow (Cao et al., ICLR 2025, Sect. 5.2 and App. D-E): the evaluation tables.

One function per claim id. Each reads the evaluation table(s) the workflow
writes (columns as in the suite's table schemas; tables may be concatenated
over models and layers) and returns one claim row
(:func:`conceptscope.claims.make_row`) whose detail states the rule and gives
the per-layer numbers behind the verdict. A rule never passes on evidence
that cannot show its claim: an empty table, or NaN / infinite values where a
number is needed, give NOT RUN naming the rows (:func:`conceptscope.claims.invalid_values`);
a difference of exactly zero, a correlation of the wrong sign or a
correlation that is undefined everywhere (counted as 0, no correlation)
fails. NF-12 (neuron groups) is in :mod:`.claims`.

:data:`PAPER_SECONDS` holds the paper's per-neuron CPU seconds of Fig. 10
(GoogLeNet, 50 images); :func:`optimality_cells` the per-cell statistics of
NF-1 that the Fig. 4 plot draws too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..claims import invalid_values, make_row, rank_trend

__all__ = [
    "PAPER_F1",
    "PAPER_L2_DIFF",
    "PAPER_SECONDS",
    "optimality_cells",
    "nf_1",
    "nf_3",
    "nf_4",
    "nf_5",
    "nf_6",
    "nf_7",
    "nf_8",
    "nf_9",
    "nf_11",
]

IG = "integrated_gradients"
# paper Fig. 10: per-neuron CPU seconds, GoogLeNet, 50 images
# control scores the knock-out tables add beside the methods (conceptscope.neurflow.experiments.CONTROLS)
SIZE_CONTROL = "subset_size"
RANDOM_CONTROL = "random"

PAPER_SECONDS = {
    IG: 3.1,
    "lrp": 0.5,
    "guided_backprop": 0.2,
    "saliency": 0.2,
    "knockoff": 8.0,
    "smoothgrad": 28.7,
    "gradient_shap": 33.4,
}
# paper Table 3: mean F1 of the core sets per pair, per model
PAIRS = ("neuronmct-neurflow", "neuronmct-neucept", "neurflow-neucept")
PAPER_F1 = {
    "resnet50": {"neuronmct-neurflow": 0.72, "neuronmct-neucept": 0.48, "neurflow-neucept": 0.49},
    "googlenet": {"neuronmct-neurflow": 0.79, "neuronmct-neucept": 0.55, "neurflow-neucept": 0.56},
}
# paper Table 4: mean of loss(core) - loss(L2 weight-norm set)
PAPER_L2_DIFF = {"resnet50": -0.082, "googlenet": -0.013}
# paper Fig. 11: the methods IG should match or beat
_AT_MOST_IG = ("saliency", "guided_backprop", "lrp", "smoothgrad")
_ALPHA = 0.99  # confidence of NF-1's t interval
_TAU_KEY = "neurflow.evaluation.fidelity_tau"


def _key(values) -> str:
    return "/".join(str(v) for v in (values if isinstance(values, tuple) else (values,)))


def _problem(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> str:
    """Why ``table`` cannot be judged at all: empty, or lacking columns; "" when it can."""
    if table.empty:
        return f"no {what} rows"
    missing = [c for c in columns if c not in table.columns]
    return f"the {what} table lacks column(s) {missing}" if missing else ""


def _r_problem(table: pd.DataFrame) -> str:
    """Pearson r may be NaN (undefined) but must otherwise be a finite number in [-1, 1]."""
    defined = table[table["r"].notna()]
    keys = ("model", "layer", "method", "size", "aggregate", "class_index", "target")
    return invalid_values(defined, "r", minimum=-1, maximum=1, keys=keys)


def _mean_r(rows: pd.DataFrame, by: list[str]) -> tuple[pd.Series, int]:
    """Mean r over the rows of each ``by`` group with an undefined (NaN) r counted as 0; and how many were NaN."""
    r = pd.to_numeric(rows["r"], errors="coerce").astype(np.float64)
    return r.fillna(0.0).groupby([rows[c] for c in by], sort=True).mean(), int(r.isna().sum())


# -- NF-1: optimality ---------------------------------------------------------------------------------------


def optimality_cells(optimality: pd.DataFrame) -> pd.DataFrame:
    """Per (model, layer, tau) the differences d = L_random(target, draw) - L_core(target), pooled.

    Parameters
    ----------
    optimality : DataFrame
        The Fig. 4 table: model, layer, class_index, target, tau, kind ('core' | 'random'), draw, loss.
        A target is (class_index, target); its core loss (the mean if repeated) is paired with each random draw.

    Returns
    -------
    DataFrame
        One row per (model, layer, tau) in order of appearance: ``n`` (pairs), ``mean`` (D), ``ci_low``,
        ``ci_high`` (99 % t interval over the pooled d, ``scipy.stats.t.interval`` with n - 1 degrees of freedom
        and the standard error; (D, D) when every d is equal, NaN for fewer than 2 pairs), ``wins`` (share of
        pairs with d < 0), ``margin`` (mean of -d over those pairs, 0 when none), ``n_wins``.
    """
    from scipy import stats

    keys = ["model", "layer", "tau", "class_index", "target"]
    kind = optimality["kind"].astype(str)
    core = optimality[kind == "core"].groupby(keys, sort=False)["loss"].mean().rename("core").reset_index()
    pairs = optimality[kind == "random"][keys + ["loss"]].merge(core, on=keys, how="inner")
    pairs["d"] = pairs["loss"].astype(np.float64) - pairs["core"].astype(np.float64)
    by_cell = {c: g.to_numpy() for c, g in pairs.groupby(["model", "layer", "tau"], sort=False)["d"]}
    out = []
    for cell in optimality[["model", "layer", "tau"]].drop_duplicates().itertuples(index=False):
        d = by_cell.get(tuple(cell), np.zeros(0))
        n = d.size
        mean = float(d.mean()) if n else float("nan")
        if n >= 2 and np.ptp(d) > 0:
            lo, hi = stats.t.interval(_ALPHA, n - 1, loc=mean, scale=stats.sem(d))
        elif n >= 2:
            lo = hi = mean
        else:
            lo = hi = float("nan")
        won = d[d < 0]
        out.append(
            {
                "model": cell.model,
                "layer": cell.layer,
                "tau": cell.tau,
                "n": n,
                "mean": mean,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "wins": won.size / n if n else float("nan"),
                "margin": float(-won.mean()) if won.size else 0.0,
                "n_wins": int(won.size),
            }
        )
    return pd.DataFrame(out)


def nf_1(optimality: pd.DataFrame) -> dict[str, str]:
    """NF-1 (Fig. 4): core sets are near-optimal: random tau-subsets knock the concept out less, rarely better.

    ``optimality``: columns model, layer, class_index, target, tau, kind ('core' | 'random'), draw, loss
    (L(S, a) in [0, 1], the share of the concept V_a that survives knocking out S). Per (model, layer, tau)
    the differences d = L_random(target, draw) - L_core(target) are pooled over targets and draws
    (:func:`optimality_cells`). PASS when on every (model, layer, tau) the mean D > 0, the lower bound of its
    99 % t interval > 0, random subsets win (d < 0) in <= 10 % of pairs and their mean winning margin -d is
    <= 0.05; FAIL otherwise (a cell without pairs, or with one pair and so no interval, fails). NOT RUN when
    the table is empty, lacks a column, or a loss is NaN, infinite or outside [0, 1] (rows named).
    """
    cols = ("model", "layer", "class_index", "target", "tau", "kind", "loss")
    problem = _problem(optimality, cols, "optimality") or invalid_values(
        optimality, "loss", minimum=0, maximum=1, keys=("model", "layer", "tau", "kind", "class_index", "target")
    )
    if problem:
        return make_row("NF-1", "", "NOT RUN", problem)
    cells = optimality_cells(optimality)
    ok = (cells["mean"] > 0) & (cells["ci_low"] > 0) & (cells["wins"] <= 0.10) & (cells["margin"] <= 0.05)
    n_pairs, n_wins = int(cells["n"].sum()), int(cells["n_wins"].sum())
    won = float((cells["margin"] * cells["n_wins"]).sum() / n_wins) if n_wins else 0.0
    per_cell = "; ".join(
        f"{c.model}/{c.layer} tau {c.tau}: D {c.mean:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}] over {c.n} pairs, "
        f"random wins {100 * c.wins:.1f} % (margin {c.margin:.3f})"
        for c in cells.itertuples()
    )
    measured = (
        f"D = {cells['mean'].min():.2f} .. {cells['mean'].max():.2f} over {len(cells)} layer/tau cells; "
        f"random wins {100 * n_wins / max(n_pairs, 1):.1f} % of pairs, margin {won:.2f}"
    )
    rule = (
        "rule: per (model, layer, tau), d = L_random(target, draw) - L_core(target) pooled over targets and "
        "draws; PASS when on every (model, layer, tau) the mean D > 0 and the lower bound of its 99 % t interval "
        "> 0, and random subsets win (d < 0) in <= 10 % of pairs with a mean winning margin -d <= 0.05. "
    )
    return make_row("NF-1", measured, "PASS" if ok.all() else "FAIL", rule + per_cell)


# -- NF-3, NF-4, NF-6: attribution correlation (fig11 table) --------------------------------------------------

_FIG11 = ("model", "layer", "class_index", "target", "method", "size", "aggregate", "r")


def nf_3(fig11: pd.DataFrame) -> dict[str, str]:
    """NF-3 (Fig. 6): a subset's summed |IG| correlates strongly and negatively with its knock-out loss at size 1,
    weakening as the subset grows.

    ``fig11``: columns model, layer, class_index, target, method, size, aggregate, r; uses the rows with method
    integrated_gradients, aggregate sum, size > 0. Per (model, layer, size), the mean r over targets, where an
    undefined r (NaN: the loss was constant over the subsets, no knock-out changed the concept) counts as 0
    (no correlation); their count is stated. PASS when on every (model, layer) the mean r at size 1 is <= -0.6
    (|r| > 0.6 with the expected negative sign: more importance, lower overlap) and the strength -r decreases
    with size (rank_trend(size, -r).rho < 0; a layer with one size has no trend and fails). NOT RUN when the
    table has no such rows, a layer lacks size 1 (named), or an r is infinite or outside [-1, 1].
    """
    problem = _problem(fig11, _FIG11, "fig11")
    if problem:
        return make_row("NF-3", "", "NOT RUN", problem)
    rows = fig11[(fig11["method"] == IG) & (fig11["aggregate"] == "sum") & (fig11["size"] > 0)]
    problem = "no integrated_gradients rows with aggregate sum and size > 0" if rows.empty else _r_problem(rows)
    if problem:
        return make_row("NF-3", "", "NOT RUN", problem)
    means, n_nan = _mean_r(rows, ["model", "layer", "size"])
    layers = means.index.droplevel("size").unique()
    lacking = [_key(lay) for lay in layers if 1 not in means[lay].index]
    if lacking:
        return make_row("NF-3", "", "NOT RUN", f"no subset size 1 on {', '.join(lacking)}")
    ok, parts, r1s = [], [], []
    for lay in layers:
        per_size = means[lay]
        trend = rank_trend(per_size.index.to_numpy(float), -per_size.to_numpy())
        r1s.append(float(per_size[1]))
        ok.append(per_size[1] <= -0.6 and trend.defined and trend.rho < 0)
        sizes = ", ".join(f"{s}: {v:.2f}" for s, v in per_size.items())
        parts.append(f"{_key(lay)}: mean r by size {{{sizes}}}, rho(size, -r) {trend.rho:.2f}{trend.note}")
    measured = (
        f"mean r at size 1 = {min(r1s):.2f} .. {max(r1s):.2f} over {len(layers)} layers; "
        f"strength falls with size on {sum(bool(v) for v in ok)} layers"
    )
    rule = (
        "rule: IG, aggregate sum; per (model, layer, size) mean r over targets (undefined r counted as 0); PASS "
        "when on every layer mean r at size 1 <= -0.6 (|r| > 0.6 with the expected negative sign) and "
        "rank_trend(size, -r).rho < 0. "
    )
    detail = rule + f"{n_nan} of {len(rows)} r undefined (counted as 0). " + "; ".join(parts)
    return make_row("NF-3", measured, "PASS" if all(ok) else "FAIL", detail)


def _refusals(timing: pd.DataFrame | None) -> dict[str, str]:
    """Per method, the first 'refused: ...' status of a timing table (none when there is no table)."""
    if timing is None or timing.empty or not {"method", "status"} <= set(timing.columns):
        return {}
    refused = timing[timing["status"].astype(str).str.startswith("refused")]
    return refused.drop_duplicates("method").set_index("method")["status"].astype(str).to_dict()


def nf_4(fig11: pd.DataFrame, timing: pd.DataFrame | None = None) -> dict[str, str]:
    """NF-4 (Fig. 11): IG correlates at least as well as Saliency, Guided Backprop, LRP and SmoothGrad, comparably
    to GradientShap; Knockoff is poor.

    ``fig11``: columns model, layer, class_index, target, method, size, aggregate, r; uses aggregate sum and
    size > 0. ``timing`` (optional): columns method, status, to name why an absent method did not run (e.g.
    'refused: no LRP rule for a module'). Strength s_m = mean over the (model, layer, size) cells of method m of
    -mean r over targets (undefined r counted as 0). PASS when s_ig > 0 (IG's correlation has the expected
    negative sign), s_ig >= s_m - 0.05 for m in saliency, guided_backprop, lrp, smoothgrad, |s_ig -
    s_gradient_shap| <= 0.15 and s_knockoff <= s_ig / 2, each for the methods present (an absent method is
    named and skipped); FAIL otherwise. NOT RUN when integrated_gradients is absent, no other method is
    present, or an r is infinite or outside [-1, 1].
    """
    problem = _problem(fig11, _FIG11, "fig11")
    if problem:
        return make_row("NF-4", "", "NOT RUN", problem)
    rows = fig11[(fig11["aggregate"] == "sum") & (fig11["size"] > 0)]
    problem = "no rows with aggregate sum and size > 0" if rows.empty else _r_problem(rows)
    if problem:
        return make_row("NF-4", "", "NOT RUN", problem)
    means, n_nan = _mean_r(rows, ["method", "model", "layer", "size"])
    s = (-means).groupby(level="method").mean()
    cells = means.groupby(level="method").size()
    if IG not in s.index:
        return make_row("NF-4", "", "NOT RUN", f"no integrated_gradients rows (methods: {sorted(s.index)})")
    refusals = _refusals(timing)
    absent = [m for m in PAPER_SECONDS if m not in s.index]
    if len(absent) == len(PAPER_SECONDS) - 1:
        return make_row("NF-4", "", "NOT RUN", f"no method of the paper besides integrated_gradients; absent: {absent}")
    ig = float(s[IG])
    checks = [("s_ig > 0", ig > 0)]
    checks += [(f"s_ig >= s_{m} - 0.05", ig >= s[m] - 0.05) for m in _AT_MOST_IG if m in s.index]
    if "gradient_shap" in s.index:
        checks.append(("|s_ig - s_gradient_shap| <= 0.15", abs(ig - s["gradient_shap"]) <= 0.15))
    if "knockoff" in s.index:
        checks.append(("s_knockoff <= s_ig / 2", s["knockoff"] <= ig / 2))
    if RANDOM_CONTROL in s.index:  # a score with no information about the channels
        checks.append(("s_ig >= s_random + 0.1", ig >= s[RANDOM_CONTROL] + 0.1))
    failed = [name for name, good in checks if not good]
    skipped = "; ".join(f"{m} absent ({refusals.get(m, 'no rows')})" for m in absent)
    strengths = ", ".join(f"{m} {v:.3f} ({cells[m]} cells)" for m, v in s.items())
    measured = "strength -r: " + ", ".join(f"{m} {v:.2f}" for m, v in s.items())
    rule = (
        "rule: aggregate sum, size > 0; s_m = mean over (model, layer, size) cells of -mean r (undefined r as 0); "
        "PASS when s_ig > 0, s_ig >= s_m - 0.05 for saliency, guided_backprop, lrp, smoothgrad, "
        "|s_ig - s_gradient_shap| <= 0.15, s_knockoff <= s_ig / 2 and, against the control of random channel "
        "scores, s_ig >= s_random + 0.1 (IG tells more than chance; methods present). "
    )
    detail = rule + f"strengths: {strengths}; {n_nan} of {len(rows)} r undefined (counted as 0)"
    detail += f"; skipped: {skipped}" if skipped else ""
    detail += f"; failed: {', '.join(failed)}" if failed else ""
    return make_row("NF-4", measured, "FAIL" if failed else "PASS", detail)


def nf_6(fig11: pd.DataFrame) -> dict[str, str]:
    """NF-6 (Fig. 12): summing |IG| over a subset correlates with the knock-out loss better than averaging.

    ``fig11``: columns model, layer, class_index, target, method, size, aggregate, r; uses method
    integrated_gradients, size 0 (all subset sizes pooled), aggregates sum and mean. Per (model, layer,
    class_index, target) r_sum and r_mean; per (model, layer) their means over the targets of all classes
    (undefined r counted as 0; the authors' script kept only the last class, this rule counts every class and
    names them). PASS when on every (model, layer) mean r_sum < mean r_mean (a stronger negative correlation
    for the sum) and mean r_sum < 0 (the expected sign); FAIL otherwise. Targets lacking one aggregate are left
    out and counted. NOT RUN when no target has both, or an r is infinite or outside [-1, 1].
    """
    problem = _problem(fig11, _FIG11, "fig11")
    if problem:
        return make_row("NF-6", "", "NOT RUN", problem)
    rows = fig11[(fig11["method"] == IG) & (fig11["size"] == 0) & fig11["aggregate"].isin(["sum", "mean"])]
    problem = "no integrated_gradients rows with size 0" if rows.empty else _r_problem(rows)
    if problem:
        return make_row("NF-6", "", "NOT RUN", problem)
    means, n_nan = _mean_r(rows, ["model", "layer", "class_index", "target", "aggregate"])
    pairs = means.unstack("aggregate")
    both = pairs.dropna(subset=["sum", "mean"]) if {"sum", "mean"} <= set(pairs.columns) else pairs[:0]
    if both.empty:
        return make_row("NF-6", "", "NOT RUN", "no target has both r_sum and r_mean")
    per_layer = both.groupby(level=["model", "layer"]).mean()
    ok = (per_layer["sum"] < per_layer["mean"]) & (per_layer["sum"] < 0)
    control = fig11[(fig11["method"] == SIZE_CONTROL) & (fig11["size"] == 0) & (fig11["aggregate"] == "sum")]
    if len(control):  # the subset size alone (the sum of a constant score) over the same subsets
        size_r, _ = _mean_r(control, ["model", "layer", "class_index", "target"])
        per_layer["size"] = size_r.groupby(level=["model", "layer"]).mean().reindex(per_layer.index)
        ok &= per_layer["sum"] < per_layer["size"]
    classes = {m: sorted(g.index.get_level_values("class_index").unique()) for m, g in both.groupby(level="model")}
    per = "; ".join(
        f"{_key(c)}: r_sum {v['sum']:.3f}, r_mean {v['mean']:.3f}"
        + (f", r of the subset size {v['size']:.3f}" if "size" in v else "")
        for c, v in per_layer.iterrows()
    )
    measured = (
        f"r_sum < r_mean (and below the subset size's r where given) on {int(ok.sum())} of {len(ok)} layers "
        f"(mean r_sum {per_layer['sum'].mean():.2f}, r_mean {per_layer['mean'].mean():.2f})"
    )
    rule = (
        "rule: IG, size 0 (all subset sizes pooled); per (model, layer) mean over the targets of all classes "
        "(undefined r as 0); PASS when mean r_sum < mean r_mean and mean r_sum < 0 on every layer and, as the "
        "pooled sizes make any sum correlate with the loss, mean r_sum < mean r of the subset size alone (the "
        "subset_size control). "
    )
    if not len(control):
        rule += "No subset_size control rows: that condition not checked. "
    detail = rule + f"classes counted: {classes}; {n_nan} of {len(rows)} r undefined (counted as 0)"
    if len(both) < len(pairs):
        detail += f"; {len(pairs) - len(both)} target(s) lacking an aggregate left out"
    return make_row("NF-6", measured, "PASS" if ok.all() else "FAIL", detail + "; " + per)


# -- NF-5: timing ---------------------------------------------------------------------------------------------


def nf_5(fig10: pd.DataFrame) -> dict[str, str]:
    """NF-5 (Fig. 10): per-neuron CPU cost of the attribution methods relative to IG, on the paper's side of 1.

    ``fig10``: columns model, method, ratio_to_ig (cpu seconds per target / IG's), status ('ok' or 'refused:
    ...'; all rows count as run when the column is absent). Paper ratios: :data:`PAPER_SECONDS` / 3.1 (faster
    than IG: lrp, guided_backprop, saliency; slower: knockoff, smoothgrad, gradient_shap). PASS when every
    method that ran has, on every model, its ratio on the same side of 1 as the paper's (a ratio of exactly 1
    is on neither side and fails); FAIL otherwise. Methods that did not run or are not in the paper are named
    and skipped. NOT RUN when the table is empty, IG did not run on a model, no other method ran, or a ratio
    is NaN, infinite or <= 0.
    """
    problem = _problem(fig10, ("model", "method", "ratio_to_ig"), "fig10")
    if problem:
        return make_row("NF-5", "", "NOT RUN", problem)
    ran = fig10["status"].astype(str) == "ok" if "status" in fig10.columns else pd.Series(True, index=fig10.index)
    no_ig = sorted(set(fig10["model"]) - set(fig10.loc[ran & (fig10["method"] == IG), "model"]))
    if no_ig:
        return make_row("NF-5", "", "NOT RUN", f"integrated_gradients did not run on {no_ig}: no ratio to IG")
    known = fig10["method"].isin(list(PAPER_SECONDS)) & (fig10["method"] != IG)
    judged = fig10[ran & known]
    skipped = [
        f"{r.model}/{r.method} ({r.status if 'status' in fig10.columns else 'not in the paper'})"
        for r in fig10[~(ran & known) & (fig10["method"] != IG)].itertuples()
    ]
    if judged.empty:
        return make_row(
            "NF-5", "", "NOT RUN", f"no method besides integrated_gradients ran; skipped: {', '.join(skipped)}"
        )
    problem = invalid_values(judged, "ratio_to_ig", minimum=0, keys=("model", "method"))
    if problem or (judged["ratio_to_ig"] <= 0).any():
        return make_row("NF-5", "", "NOT RUN", problem or "a ratio_to_ig is 0")
    paper = judged["method"].map(lambda m: PAPER_SECONDS[m] / PAPER_SECONDS[IG])
    ok = (judged["ratio_to_ig"].astype(np.float64) - 1) * (paper - 1) > 0
    pairs = ", ".join(
        f"{r.model}/{r.method} {r.ratio_to_ig:.2f} (paper {p:.2f})"
        for r, p in zip(judged.itertuples(), paper, strict=True)
    )
    wrong = [f"{r.model}/{r.method}" for r, good in zip(judged.itertuples(), ok, strict=True) if not good]
    rule = (
        "rule: PASS when every method that ran has its CPU-time ratio to IG on the same side of 1 as the paper's "
        "(faster than IG: lrp, guided_backprop, saliency; slower: knockoff, smoothgrad, gradient_shap). "
    )
    detail = rule + f"ours vs paper: {pairs}"
    detail += f"; wrong side: {', '.join(wrong)}" if wrong else ""
    detail += f"; skipped: {', '.join(skipped)}" if skipped else ""
    return make_row("NF-5", f"ratio to IG, ours (paper): {pairs}", "PASS" if ok.all() else "FAIL", detail)


# -- NF-7, NF-8, NF-9: tables 3-5 -----------------------------------------------------------------------------


def _paper_name(model: str) -> str:
    """The paper's model whose name the suite's model name contains (resnet50, googlenet), else ""."""
    low = str(model).lower()
    return next((p for p in PAPER_F1 if p in low), "")


def nf_7(table3: pd.DataFrame) -> dict[str, str]:
    """NF-7 (Table 3): the core sets of NeuronMCT and NeurFlow overlap more than either overlaps NeuCEPT's.

    ``table3``: columns model, layer, class_index, target, tau, pair ('neuronmct-neurflow' |
    'neuronmct-neucept' | 'neurflow-neucept'), f1 (in [0, 1]). Mean F1 per pair per model (paper, ResNet50 /
    GoogLeNet: 0.72 / 0.79, 0.48 / 0.55, 0.49 / 0.56). PASS when, for every model, F1(neuronmct-neurflow)
    exceeds both other pairs' F1 (the paper's ordering); FAIL otherwise (equal values fail). NOT RUN when the
    table is empty, a model lacks a pair (named), or an F1 is NaN, infinite or outside [0, 1].
    """
    problem = _problem(table3, ("model", "layer", "pair", "f1"), "table3") or invalid_values(
        table3, "f1", minimum=0, maximum=1, keys=("model", "layer", "class_index", "target", "pair")
    )
    if problem:
        return make_row("NF-7", "", "NOT RUN", problem)
    f1 = table3.groupby(["model", "pair"], sort=True)["f1"].mean().unstack("pair")
    lacking = [f"{m}: {p}" for m in f1.index for p in PAIRS if p not in f1.columns or np.isnan(f1.at[m, p])]
    if lacking:
        return make_row("NF-7", "", "NOT RUN", f"missing pair(s): {', '.join(lacking)}")
    top = f1[PAIRS[0]]
    ok = (top > f1[PAIRS[1]]) & (top > f1[PAIRS[2]])
    measured = "; ".join(
        f"{m}: "
        + ", ".join(f"{p} {f1.at[m, p]:.2f}" for p in PAIRS)
        + (f" (paper {'/'.join(f'{PAPER_F1[_paper_name(m)][p]:.2f}' for p in PAIRS)})" if _paper_name(m) else "")
        for m in f1.index
    )
    per_layer = table3.groupby(["model", "layer", "pair"], sort=False)["f1"].mean().unstack("pair")
    per = "; ".join(
        f"{_key(c)}: " + ", ".join(f"{p} {v[p]:.2f}" for p in PAIRS if p in v.index) for c, v in per_layer.iterrows()
    )
    rule = (
        "rule: mean F1 per pair per model; PASS when for every model F1(neuronmct-neurflow) exceeds both "
        "F1(neuronmct-neucept) and F1(neurflow-neucept). "
    )
    return make_row("NF-7", measured, "PASS" if ok.all() else "FAIL", rule + "per layer: " + per)


def nf_8(table4: pd.DataFrame) -> dict[str, str]:
    """NF-8 (Table 4): core sets knock the concept out more than sets ranked by L2 weight norm.

    ``table4``: columns model, block, loss_core, loss_l2 (losses in [0, 1]) and optionally diff (= loss_core -
    loss_l2, checked against the losses). Mean diff per model over all rows (paper: -0.082 ResNet50, -0.013
    GoogLeNet). PASS when every model's mean diff < 0; a mean of exactly 0 (no difference) fails. NOT RUN when
    the table is empty, a loss is NaN, infinite or outside [0, 1], or a diff disagrees with the losses.
    """
    problem = _problem(table4, ("model", "loss_core", "loss_l2"), "table4")
    keys = ("model", "block", "class_index", "target")
    for col in ("loss_core", "loss_l2"):
        problem = problem or invalid_values(table4, col, minimum=0, maximum=1, keys=keys)
    if problem:
        return make_row("NF-8", "", "NOT RUN", problem)
    diff = table4["loss_core"].astype(np.float64) - table4["loss_l2"].astype(np.float64)
    if "diff" in table4.columns:
        off = ~np.isclose(pd.to_numeric(table4["diff"], errors="coerce"), diff, atol=1e-9)
        if off.any():
            return make_row("NF-8", "", "NOT RUN", f"diff != loss_core - loss_l2 on {int(off.sum())} row(s)")
    table = table4.assign(diff=diff)
    means = table.groupby("model", sort=True)["diff"].mean()
    ok = means < 0
    measured = "; ".join(
        f"{m}: {v:+.3f}" + (f" (paper {PAPER_L2_DIFF[_paper_name(m)]:+.3f})" if _paper_name(m) else "")
        for m, v in means.items()
    )
    by = ["model", "block"] if "block" in table.columns else ["model"]
    per = "; ".join(f"{_key(c)}: {v:+.3f}" for c, v in table.groupby(by, sort=False)["diff"].mean().items())
    rule = "rule: mean diff = loss_core - loss_l2 per model over all rows; PASS when every model's mean diff < 0. "
    return make_row("NF-8", f"mean diff {measured}", "PASS" if ok.all() else "FAIL", rule + "per block: " + per)


def nf_9(table5: pd.DataFrame) -> dict[str, str]:
    """NF-9 (Table 5): core sets for other concept sizes k overlap the reference k's set almost entirely.

    ``table5``: columns model, layer, class_index, target, tau, k, k_reference, overlap (|core_k ∩
    core_k_reference|). Per (model, layer), the minimum overlap over targets and k != k_reference (paper: >= 14
    of 16). PASS when every row's overlap >= ceil(14/16 * tau) (tau from the row), i.e. every minimum reaches
    its threshold; FAIL otherwise. NOT RUN when the table is empty, has no k != k_reference, or an overlap is
    NaN, negative or above tau, or a tau is not >= 1.
    """
    cols = ("model", "layer", "tau", "k", "k_reference", "overlap")
    keys = ("model", "layer", "class_index", "target", "k")
    problem = _problem(table5, cols, "table5")
    problem = problem or invalid_values(table5, "tau", minimum=1, keys=keys)
    problem = problem or invalid_values(table5, "overlap", minimum=0, keys=keys)
    if not problem and (table5["overlap"] > table5["tau"]).any():
        problem = f"overlap above tau on {int((table5['overlap'] > table5['tau']).sum())} row(s)"
    if problem:
        return make_row("NF-9", "", "NOT RUN", problem)
    rows = table5[table5["k"] != table5["k_reference"]]
    if rows.empty:
        return make_row("NF-9", "", "NOT RUN", "every row has k == k_reference: nothing to compare")
    need = rows["tau"].astype(np.int64).map(lambda t: math.ceil(14 * t / 16))
    rows = rows.assign(need=need, ok=rows["overlap"] >= need)
    per = rows.groupby(["model", "layer"], sort=False).agg(
        overlap=("overlap", "min"), tau=("tau", "max"), need=("need", "max"), ok=("ok", "all")
    )
    measured = "min overlap " + ", ".join(f"{int(v.overlap)} of {int(v.tau)} ({_key(c)})" for c, v in per.iterrows())
    ks = sorted(set(rows["k"]))
    rule = (
        "rule: per (model, layer) the minimum overlap with the k_reference core set over targets and k != "
        "k_reference; PASS when every overlap >= ceil(14/16 * tau). "
    )
    detail = rule + f"k compared: {ks}; thresholds: " + ", ".join(f"{_key(c)} {int(v.need)}" for c, v in per.iterrows())
    return make_row("NF-9", measured, "PASS" if per["ok"].all() else "FAIL", detail)


# -- NF-11: crop sizes by depth -------------------------------------------------------------------------------


def nf_11(fig18: pd.DataFrame) -> dict[str, str]:
    """NF-11 (Fig. 18): concepts of lower layers are dominated by small crops, of higher layers by large crops.

    ``fig18``: columns model, layer, depth (0 = bottom circuit block), scale (crop side fraction, in (0, 1]),
    share (fraction of the layer's concept patches with that scale; shares of a layer sum to 1). Per model,
    the mean crop scale of a layer is sum(scale * share). PASS when for every model rank_trend(depth, mean
    scale).rho > 0 (larger crops higher up) and the smallest scale's share at the bottom layer exceeds its
    share at the top layer; FAIL otherwise. NOT RUN when the table is empty, a model has fewer than 2 depths
    (named), a share is NaN or outside [0, 1], a scale is not in (0, 1], or a layer's shares do not sum to 1.
    """
    cols = ("model", "layer", "depth", "scale", "share")
    problem = _problem(fig18, cols, "fig18")
    problem = problem or invalid_values(fig18, "share", minimum=0, maximum=1, keys=("model", "layer", "scale"))
    problem = problem or invalid_values(fig18, "depth", keys=("model", "layer"))
    if not problem and not ((fig18["scale"] > 0) & (fig18["scale"] <= 1)).all():
        problem = "a scale is not in (0, 1]"
    if problem:
        return make_row("NF-11", "", "NOT RUN", problem)
    table = fig18.assign(weighted=fig18["scale"] * fig18["share"])
    layers = table.groupby(["model", "depth", "layer"], sort=True).agg(
        mean_scale=("weighted", "sum"), total=("share", "sum")
    )
    off = layers[~np.isclose(layers["total"], 1.0, atol=1e-6)]
    if len(off):
        names = ", ".join(f"{_key(c)} ({v:.3f})" for c, v in off["total"].items())
        return make_row("NF-11", "", "NOT RUN", f"shares do not sum to 1 on {names}")
    few = [m for m, g in layers.groupby(level="model") if g.index.get_level_values("depth").nunique() < 2]
    if few:
        return make_row("NF-11", "", "NOT RUN", f"fewer than 2 layers (depths) for model(s) {few}: no trend")
    ok, parts, summary = [], [], []
    for model, g in layers.groupby(level="model"):
        depth = g.index.get_level_values("depth").to_numpy(np.float64)
        trend = rank_trend(depth, g["mean_scale"].to_numpy())
        rows = table[table["model"] == model]
        small = rows["scale"].min()
        share = rows[rows["scale"] == small].groupby("depth")["share"].sum()
        bottom, top = float(share.get(depth.min(), 0.0)), float(share.get(depth.max(), 0.0))
        ok.append(trend.defined and trend.rho > 0 and bottom > top)
        scales = ", ".join(f"{lay} (depth {d:g}) {v:.3f}" for (_, d, lay), v in g["mean_scale"].items())
        parts.append(
            f"{model}: mean scale {scales}; rho {trend.rho:.2f}{trend.note}; scale {small:g} share bottom "
            f"{bottom:.2f} vs top {top:.2f}"
        )
        summary.append(
            f"{model}: mean scale {g['mean_scale'].iloc[0]:.2f} (bottom) .. {g['mean_scale'].iloc[-1]:.2f} (top), "
            f"rho {trend.rho:.2f}; scale {small:g} share {bottom:.2f} -> {top:.2f}"
        )
    measured = "; ".join(summary)
    rule = (
        "rule: per model, mean crop scale per layer = sum(scale * share); PASS when rank_trend(depth, mean "
        "scale).rho > 0 and the smallest scale's share at the bottom layer exceeds its share at the top layer. "
    )
    return make_row("NF-11", measured, "PASS" if all(ok) else "FAIL", rule + "; ".join(parts))
