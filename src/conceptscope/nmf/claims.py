"""Claim rules of the coupled-NMF paper: NMF-1 (Fig. 2), NMF-2 (Fig. 3).

Both are depth trends per model (Spearman rho over the factored layers,
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
"""

from __future__ import annotations

import pandas as pd

from ..claims import Trend, invalid_values, make_row, rank_trend

__all__ = ["nmf_1", "nmf_2"]


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
