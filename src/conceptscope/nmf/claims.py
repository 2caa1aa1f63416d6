"""Claim rules of the coupled-NMF paper: NMF-1 (Fig. 2), NMF-2 (Fig. 3), NMF-3 (Table 1), NMF-4 (Fig. 4-5),
NMF-5 (Table 2).

NMF-1 and NMF-2 are depth trends per model (Spearman rho over the factored layers,
:func:`conceptscope.claims.rank_trend`). A model with a single factored
layer cannot show a trend and is left out (named in the detail); a value
outside its mathematical range makes the table no evidence (NOT RUN naming
the rows): diagonal dominance ``1 - mean |cos|`` lies in [0, 1], and the
eigenvalues of a cosine-similarity (Gram) matrix are >= 0.

The factorization behind the table must be evidence too (columns
``block_scaling`` and ``relative_residual`` of the Fig. 3 table; every row's
detail names the scaling and the layers' residuals): NOT RUN when the blocks
were not normalized (``block_scaling`` other than ``frobenius``: with
unit-norm columns and one shared F, the similarity of O_j's columns follows
the layer block's Frobenius norm, not its depth; reversing the layer norms
of the default suite reversed the trend, :mod:`conceptscope.nmf.blocks`), or
when a layer's factors fit it worse than zeros (relative residual
||A_j - O_j F|| / ||A_j|| >= 1 or NaN: O_j does not describe A_j). A table
without these columns is judged on its values and says "block scaling not
recorded".

NMF-3 to NMF-5 are measurable proxies of the paper's tables and figures,
each judged against a null (:mod:`conceptscope.nmf.analysis`), every model
separately; a factor without mass (``mass`` 0) stands for nothing and is not
counted:

- NMF-3 (Table 1, ``factor_table`` with superclasses): the share of factors
  whose top classes lie in one superclass, against ``superclass_chance`` (the
  probability for classes drawn at random), one-sided binomial test. NOT RUN
  on a data set without superclasses (all but CIFAR-100).
- NMF-4 (Fig. 4-5, ``neighbour_purity``): the share of the examples' k latent
  nearest neighbours with their own label, against label permutations. The
  pixel masks of Fig. 4 are shown, not judged.
- NMF-5 (Table 2, ``factor_table`` of the group-sparse fit): the share of
  factors whose top-class weight beats its label-permutation 95th
  percentile (``class_coherent``), beside the same share of the coupled
  Table 1.

A table that is missing, empty, lacks a column, holds a NaN or an
out-of-range value, or whose factors all lack mass is no evidence: NOT RUN
naming the model and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..claims import Trend, invalid_values, make_row, rank_trend

__all__ = ["nmf_1", "nmf_2", "nmf_3", "nmf_4", "nmf_5"]

ALPHA = 0.01  # significance level of NMF-3 and NMF-4
MIN_SHARE = 0.5  # share of the factors with mass that NMF-3 and NMF-5 ask for
PAPER_CONFIG = "config/paper/nmf.yaml"


def _trends(table: pd.DataFrame, column: str) -> dict[str, Trend]:
    return {m: rank_trend(g["depth"], g[column]) for m, g in table.groupby("model", sort=True)}


def _check(table: pd.DataFrame, column: str, minimum: float, maximum: float | None) -> str:
    missing = [c for c in ("model", "layer", "depth", column) if c not in table.columns]
    if missing:
        return f"the table lacks column(s) {missing}"
    problem = invalid_values(table, column, minimum=minimum, maximum=maximum)
    problem = problem or invalid_values(table, "depth", minimum=0)
    dup = table.duplicated(["model", "layer"], keep=False)
    if not problem and dup.any():
        problem = f"{int(dup.sum())} rows repeat a (model, layer)"
    return problem


def _fit_evidence(table: pd.DataFrame) -> tuple[str, str]:
    """(what the detail says about the factorization, why it is no evidence or "") from the fit columns."""
    if "block_scaling" not in table.columns:
        return "block scaling not recorded", ""
    scalings = sorted({str(v) for v in table["block_scaling"]})
    text = f"block scaling {', '.join(scalings)}"
    problems = []
    if scalings != ["frobenius"]:
        problems.append(
            f"block scaling {scalings}: unnormalized blocks, where the similarity of O_j follows each layer "
            "block's Frobenius norm rather than its depth (set nmf.block_scaling: frobenius)"
        )
    if "relative_residual" in table.columns:
        r = pd.to_numeric(table["relative_residual"], errors="coerce")
        text += "; layer residuals ||A - OF||/||A||: " + ", ".join(
            f"{m}/{layer} {v:.3f}" for m, layer, v in zip(table["model"], table["layer"], r, strict=True)
        )
        worse = [
            f"{m}/{layer} {v:.3f}" for m, layer, v in zip(table["model"], table["layer"], r, strict=True) if not v < 1
        ]
        if worse:
            problems.append(f"factors fit these layers worse than zeros (relative residual >= 1 or NaN): {worse}")
    return text, "; ".join(problems)


def _judge(claim: str, table: pd.DataFrame, column: str, sign: int, rule: str, values: str) -> dict[str, str]:
    """PASS when every model with two or more depths has sign(rho) == ``sign`` and the fit is evidence."""
    fit, no_evidence = _fit_evidence(table)
    rule = f"{rule}; {fit}"
    trends = _trends(table, column)
    judged = {m: t for m, t in trends.items() if t.defined}
    unjudged = [m for m, t in trends.items() if not t.defined]
    rhos = {m: (round(t.rho, 2) if t.defined else t.note) for m, t in trends.items()}
    notes = {m: t.note for m, t in judged.items() if t.note}
    left_out = f"; left out (one depth): {unjudged}" if unjudged else ""
    detail = f"{rule}; rho: {rhos}" + (f"; {notes}" if notes else "") + left_out
    if not judged:
        return make_row(claim, values, "NOT RUN", f"no model has two or more factored layers; {detail}")
    if no_evidence:
        return make_row(claim, values, "NOT RUN", f"the factorization is no evidence: {no_evidence}; {detail}")
    ok = all(t.rho * sign > 0 for t in judged.values())
    return make_row(claim, values, "PASS" if ok else "FAIL", detail)


def nmf_1(table: pd.DataFrame) -> dict[str, str]:
    """NMF-1 (Fig. 2): the cosine-similarity matrix of O_j's columns becomes more diagonal with depth.

    ``table``: rows (model, layer, depth, diagonal_dominance) of the coupled
    factorization; diagonal dominance = 1 - mean |off-diagonal similarity|,
    in [0, 1]. PASS when Spearman rho(depth, dominance) > 0 for every model
    with two or more factored layers (a constant dominance is rho 0: FAIL).
    NOT RUN when no model has two layers, or a value is NaN or outside [0, 1].
    """
    if table.empty:
        return make_row("NMF-1", "", "NOT RUN", "no NMF layers")
    problem = _check(table, "diagonal_dominance", 0.0, 1.0)
    if problem:
        return make_row("NMF-1", "", "NOT RUN", f"invalid Fig. 2 table: {problem}")
    values = "; ".join(
        f"{m}: " + ", ".join(f"{r.layer} {r.diagonal_dominance:.3f}" for r in g.sort_values("depth").itertuples())
        for m, g in table.groupby("model")
    )
    return _judge(
        "NMF-1",
        table,
        "diagonal_dominance",
        +1,
        "diagonal dominance = 1 - mean |off-diagonal cosine|; rule: Spearman rho(depth, dominance) > 0 for every model",
        values,
    )


def nmf_2(table: pd.DataFrame) -> dict[str, str]:
    """NMF-2 (Fig. 3): the mean of the K largest eigenvalues of the similarity matrices falls with depth.

    ``table``: rows (model, layer, depth, k, eigen_mean). PASS when Spearman
    rho(depth, eigen mean) < 0 for every model with two or more factored
    layers (a constant mean is rho 0: FAIL; logit layers are not factored by
    default). NOT RUN when no model has two layers, or an eigen mean is NaN
    or negative (a similarity matrix's eigenvalues are >= 0).
    """
    if table.empty:
        return make_row("NMF-2", "", "NOT RUN", "no NMF layers")
    problem = _check(table, "eigen_mean", 0.0, None) or invalid_values(table, "k", minimum=1)
    if problem:
        return make_row("NMF-2", "", "NOT RUN", f"invalid Fig. 3 table: {problem}")
    values = "; ".join(
        f"{m} (K={int(g['k'].iloc[0])}): "
        + ", ".join(f"{r.layer} {r.eigen_mean:.3f}" for r in g.sort_values("depth").itertuples())
        for m, g in table.groupby("model")
    )
    return _judge(
        "NMF-2",
        table,
        "eigen_mean",
        -1,
        "eigenvalues sorted descending; rule: Spearman rho(depth, eigen mean) < 0 for every model",
        values,
    )


# -- NMF-3 to NMF-5: factors and neighbours against their nulls ------------------------------------------------


def _flags(values: pd.Series) -> np.ndarray | None:
    """A boolean column as read back from CSV (bool, or the strings True/False); None when it is not one."""
    if values.dtype == bool:
        return values.to_numpy()
    known = {True: True, False: False, "True": True, "False": False, "true": True, "false": False}
    if not all(isinstance(v, bool | np.bool_ | str) and v in known for v in values):
        return None
    return np.array([known[v] for v in values], dtype=bool)


def _factor_problem(model: str, table: pd.DataFrame, columns: tuple[str, ...], flag: str, what: str) -> str:
    """Why a factor table of ``model`` is no evidence ("" when it is): columns, mass, the ``flag`` column."""
    if table.empty:
        return f"the {what} of {model} is empty"
    missing = [c for c in ("factor", "mass", flag, *columns) if c not in table.columns]
    if missing:
        return f"the {what} of {model} lacks column(s) {missing} (written by an older version: rerun its rule)"
    t = table.assign(model=model)
    problem = invalid_values(t, "mass", minimum=0.0, keys=("model", "factor"))
    if problem:
        return f"{what} of {model}: {problem}"
    if not (pd.to_numeric(t["mass"]) > 0).any():
        return f"no factor of the {what} of {model} has mass (every F row is zero)"
    if _flags(t[flag]) is None:
        return f"{what} of {model}: column {flag} is not True/False ({sorted(map(str, set(t[flag])))[:5]})"
    return ""


def _alive(table: pd.DataFrame) -> np.ndarray:
    return (pd.to_numeric(table["mass"]) > 0).to_numpy()


def nmf_3(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """NMF-3 (Table 1): each latent factor's top classes share a superclass.

    ``tables``: per model, its Table 1 (:func:`~conceptscope.nmf.analysis.factor_table`
    with superclasses: ``factor``, ``mass``, ``top_share_superclass``,
    ``superclass_chance``). Per model, count the factors with mass whose top
    classes all lie in one superclass, and test the count against
    ``superclass_chance`` (one-sided binomial test, ``scipy.stats.binomtest``).
    PASS when in every model the share is >= 0.5 and p < 0.01; FAIL otherwise.
    NOT RUN when there is no table, a table has no superclass columns (a data
    set without superclasses: only CIFAR-100 has them, ``config/paper/nmf.yaml``),
    or a table is no evidence (empty, a missing column, NaN mass, no factor
    with mass, a chance outside [0, 1] or not one value).
    """
    from scipy.stats import binomtest

    if not tables:
        return make_row("NMF-3", "", "NOT RUN", "no NMF models (no Table 1)")
    sup_columns = ("superclass", "superclass_weight", "top_share_superclass", "superclass_chance")
    plain = [m for m, t in tables.items() if not any(c in t.columns for c in sup_columns)]
    if plain:
        return make_row(
            "NMF-3",
            "",
            "NOT RUN",
            f"the data set of {plain} has no superclasses (Table 1 lists none), and the claim is about superclasses; "
            f"{PAPER_CONFIG} (CIFAR-100 and its 20 superclasses) computes it: "
            f"snakemake --cores all --configfile {PAPER_CONFIG}",
        )
    results, values = {}, []
    for model, table in tables.items():
        problem = _factor_problem(model, table, ("superclass_chance",), "top_share_superclass", "Table 1")
        if problem:
            return make_row("NMF-3", "", "NOT RUN", f"invalid Table 1: {problem}")
        problem = invalid_values(
            table.assign(model=model), "superclass_chance", minimum=0.0, maximum=1.0, keys=("model", "factor")
        )
        chance = pd.to_numeric(table["superclass_chance"], errors="coerce")
        if not problem and chance.nunique() != 1:
            problem = f"superclass_chance takes {chance.nunique()} values (one per table expected)"
        if problem:
            return make_row("NMF-3", "", "NOT RUN", f"invalid Table 1 of {model}: {problem}")
        alive = _alive(table)
        shared = int(_flags(table["top_share_superclass"])[alive].sum())
        n, p0 = int(alive.sum()), float(chance.iloc[0])
        p = float(binomtest(shared, n, p0, alternative="greater").pvalue)
        results[model] = (shared / n, p)
        values.append(f"{model}: {shared}/{n} factors ({shared / n:.2f}), chance {p0:.3g}, p {p:.2g}")
    ok = all(share >= MIN_SHARE and p < ALPHA for share, p in results.values())
    detail = (
        "proxy: share of the factors with mass whose top classes (Table 1, by class weight = sum of F over the "
        "class's examples / sum of F) all lie in one superclass, against the chance that as many classes drawn at "
        f"random do (one-sided binomial test); rule: share >= {MIN_SHARE} and p < {ALPHA} in every model"
    )
    return make_row("NMF-3", "; ".join(values), "PASS" if ok else "FAIL", detail)


_PURITY_COLUMNS = ("k", "n_examples", "same_label_share", "null_mean", "null_q95", "p_value", "n_permutations")


def _purity_problem(model: str, table: pd.DataFrame) -> str:
    if len(table) != 1:
        return f"the neighbour-purity table of {model} has {len(table)} rows, expected 1"
    missing = [c for c in _PURITY_COLUMNS if c not in table.columns]
    if missing:
        return f"the neighbour-purity table of {model} lacks column(s) {missing}"
    t = table.assign(model=model)
    bounds = {
        "same_label_share": (0.0, 1.0),
        "null_mean": (0.0, 1.0),
        "null_q95": (0.0, 1.0),
        "p_value": (0.0, 1.0),
        "k": (1, None),
        "n_examples": (2, None),
        "n_permutations": (1, None),
    }
    for column, (lo, hi) in bounds.items():
        problem = invalid_values(t, column, minimum=lo, maximum=hi, keys=("model",))
        if problem:
            return f"{model}: {problem}"
    n_perm, p = int(t["n_permutations"].iloc[0]), float(t["p_value"].iloc[0])
    if p * (n_perm + 1) < 1 - 1e-9:
        return f"{model}: p_value {p:g} is below 1/(n_permutations + 1) = 1/{n_perm + 1}, impossible for the test"
    if 1 / (n_perm + 1) >= ALPHA:
        return f"{model}: {n_perm} permutations cannot give p < {ALPHA} (the smallest p is 1/{n_perm + 1})"
    return ""


def nmf_4(tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """NMF-4 (Fig. 4-5): an example's top-k latent nearest neighbours come from its own class.

    ``tables``: per model, one row of :func:`~conceptscope.nmf.analysis.neighbour_purity`
    (``k``, ``n_examples``, ``same_label_share``, ``null_mean``, ``null_q95``,
    ``p_value``, ``n_permutations``). PASS when in every model the share of
    neighbours with the example's label exceeds the 95th percentile of the
    label-permutation null and p < 0.01; FAIL otherwise. NOT RUN when there is
    no table, a table is not one row, lacks a column, holds a NaN or an
    out-of-range value, or has too few permutations to reach p < 0.01. The
    per-factor pixel masks of Fig. 4 are drawn, not judged.
    """
    if not tables:
        return make_row("NMF-4", "", "NOT RUN", "no NMF models (no neighbour-purity table)")
    for model, table in tables.items():
        problem = _purity_problem(model, table)
        if problem:
            return make_row("NMF-4", "", "NOT RUN", f"invalid neighbour-purity table: {problem}")
    rows = {m: t.iloc[0] for m, t in tables.items()}
    ok = all(r["same_label_share"] > r["null_q95"] and r["p_value"] < ALPHA for r in rows.values())
    values = "; ".join(
        f"{m}: {r['same_label_share']:.3f} same-label among k={int(r['k'])} (null mean {r['null_mean']:.3f}, "
        f"q95 {r['null_q95']:.3f}, p {r['p_value']:.2g}, N={int(r['n_examples'])})"
        for m, r in rows.items()
    )
    detail = (
        "proxy for the top-k latent nearest-neighbour concept distributions: share of each example's k nearest "
        "neighbours in the latent space of F's columns (euclidean) with its own label, mean over examples, against "
        f"{int(next(iter(rows.values()))['n_permutations'])} permutations of the labels (neighbours kept); rule: "
        f"share > null 95th percentile and p < {ALPHA} in every model; the per-factor pixel masks (Fig. 4) are "
        "shown, not judged"
    )
    return make_row("NMF-4", values, "PASS" if ok else "FAIL", detail)


def _coherent_share(model: str, table: pd.DataFrame, what: str) -> tuple[int, int, str]:
    """(coherent factors with mass, factors with mass, problem) of a factor table."""
    problem = _factor_problem(model, table, ("top_class_weight", "top_class_weight_null95"), "class_coherent", what)
    if problem:
        return 0, 0, problem
    alive = _alive(table)
    t = table[alive].assign(model=model)
    for column in ("top_class_weight", "top_class_weight_null95"):
        problem = invalid_values(t, column, minimum=0.0, maximum=1.0, keys=("model", "factor"))
        if problem:
            return 0, 0, f"{what} of {model}: {problem}"
    return int(_flags(table["class_coherent"])[alive].sum()), int(alive.sum()), ""


def nmf_5(
    table2s: Mapping[str, pd.DataFrame], table1s: Mapping[str, pd.DataFrame], lam_group: float | None = None
) -> dict[str, str]:
    """NMF-5 (Table 2): the group-sparse variant still yields class-coherent factors.

    ``table2s``, ``table1s``: per model, the factor tables
    (:func:`~conceptscope.nmf.analysis.factor_table`: ``factor``, ``mass``,
    ``top_class_weight``, ``top_class_weight_null95``, ``class_coherent``) of
    the group-sparse fit and of the coupled fit; ``lam_group`` the group
    weight (``nmf.lam_group``). A factor is class-coherent when its top-class
    weight beats the 95th percentile of its label-permutation null. PASS when
    in every model at least half of the group-sparse factors with mass are
    class-coherent; FAIL otherwise. The coupled share is given beside it. NOT
    RUN when the group-sparse variant was not run (``lam_group`` 0, no
    table), a model lacks its coupled table, or a table is no evidence.
    """
    if not table2s:
        lam = f"nmf.lam_group = {lam_group:g}" if lam_group is not None else "nmf.lam_group = 0"
        return make_row(
            "NMF-5",
            "",
            "NOT RUN",
            f"the group-sparse variant was not run ({lam}; set nmf.lam_group > 0, {PAPER_CONFIG} sets 0.1)",
        )
    absent = [m for m in table2s if m not in table1s]
    if absent:
        return make_row("NMF-5", "", "NOT RUN", f"no coupled Table 1 for {absent} to compare with")
    shares, values = {}, []
    for model in table2s:
        coherent, n, problem = _coherent_share(model, table2s[model], "Table 2")
        coherent1, n1, problem1 = _coherent_share(model, table1s[model], "Table 1")
        if problem or problem1:
            return make_row("NMF-5", "", "NOT RUN", f"invalid factor table: {problem or problem1}")
        shares[model] = coherent / n
        values.append(
            f"{model}: group-sparse {coherent}/{n} factors with mass coherent ({coherent / n:.2f}), "
            f"coupled {coherent1}/{n1} ({coherent1 / n1:.2f})"
        )
    lam = f"nmf.lam_group = {lam_group:g}" if lam_group is not None else "nmf.lam_group"
    detail = (
        "proxy: a factor is class-coherent when its top-class weight exceeds the 95th percentile of its top-class "
        "weight under permutations of the labels among the examples; rule: at least half of the group-sparse "
        f"factors with mass are coherent in every model (coupled Table 1 share beside it); the example groups of "
        f"the group-sparse penalty are the classes ({lam}), which makes coherence expected by construction"
    )
    ok = all(share >= MIN_SHARE for share in shares.values())
    return make_row("NMF-5", "; ".join(values), "PASS" if ok else "FAIL", detail)
