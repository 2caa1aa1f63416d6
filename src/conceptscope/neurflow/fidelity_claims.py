"""Claim rules NF-2 and NF-10 of NeurFlow (Cao et al., ICLR 2025, Fig. 5, 16-17): the fidelity table.

The rules read the rows of :func:`conceptscope.neurflow.fidelity_table` (concatenated over models and
classes) and return a claim row (:func:`conceptscope.claims.make_row`) whose detail states the rule; the
conventions are those of :mod:`conceptscope.neurflow.eval_claims`. A retained core set that makes the model
predict the class for most other classes' images (column ``other_predicted``) is *degenerate*: the class's
accuracy then says nothing about the core neurons, and such a cell does not count for the claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import invalid_values, make_row
from .eval_claims import _TAU_KEY, _key, _problem

__all__ = ["nf_10", "nf_2"]

# -- NF-2 and NF-10: fidelity ---------------------------------------------------------------------------------

_FIDELITY = ("model", "class_index", "tau", "scope", "layer", "mode", "set", "relative_accuracy")


def _fidelity_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The fidelity rows of the classes whose relative accuracy is defined; a note naming the others; a problem."""
    problem = _problem(table, _FIDELITY, "fidelity")
    if problem:
        return table, "", problem
    ra = pd.to_numeric(table["relative_accuracy"], errors="coerce")
    nan_classes = table.loc[ra.isna(), ["model", "class_index"]].drop_duplicates()
    classes = pd.MultiIndex.from_frame(table[["model", "class_index"]])
    dropped = classes.isin(pd.MultiIndex.from_frame(nan_classes)) if len(nan_classes) else np.zeros(len(table), bool)
    note = ""
    if len(nan_classes):
        names = ", ".join(f"{m} class {c}" for m, c in nan_classes.itertuples(index=False))
        note = f"excluded (NaN relative accuracy: unmasked accuracy 0): {names}. "
    rows = table[~dropped]
    if rows.empty:
        return rows, note, f"no class with a defined relative accuracy; {note}"
    problem = invalid_values(rows, "relative_accuracy", minimum=0, keys=("model", "class_index", "tau", "layer"))
    return rows.assign(relative_accuracy=ra[~dropped].astype(np.float64)), note, problem


def _set_means(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean relative accuracy per ``by`` cell and set: each class's mean over draws, then the mean over classes."""
    per_class = rows.groupby(by + ["set", "class_index"], sort=True)["relative_accuracy"].mean()
    return per_class.groupby(level=list(range(len(by) + 1))).mean().unstack("set")


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)


_DEGENERATE = 0.5  # share of other classes' images predicted as the class above which a retained set is degenerate


def _degenerate(rows: pd.DataFrame, by: list[str]) -> pd.Series:
    """Per ``by`` cell, whether retaining only the core neurons makes the model predict the class for at least
    half of the other classes' images (``other_predicted``, mean over classes): the class's accuracy then says
    nothing about the core neurons. All False when the column is absent."""
    core = rows[(rows["mode"] == "retain") & (rows["set"] == "core")]
    if "other_predicted" not in rows.columns or core.empty:
        return pd.Series(dtype=bool)  # reindexed by the caller: every cell False
    share = pd.to_numeric(core["other_predicted"], errors="coerce")
    return (core.assign(other_predicted=share).groupby(by)["other_predicted"].mean() >= _DEGENERATE).fillna(False)


def nf_2(fidelity: pd.DataFrame) -> dict[str, str]:
    """NF-2 (Fig. 5): masking core neurons lowers accuracy more than random ones; retaining them keeps it better.

    ``fidelity``: columns model, class_index, tau, scope, layer, mode ('mask' | 'retain'), set ('core' |
    'random' | 'extended'), draw, relative_accuracy. Uses the rows with tau in {4, 8, 16} (those present).
    Per cell (model, tau, scope, layer) and mode, core = mean over classes of the core relative accuracy,
    random = mean over classes of each class's mean over the random draws. mask holds when core < random,
    retain when core > random. PASS when mask holds in >= 80 % of the cells and retain holds in >= 80 % of the
    cells, and on average over the cells random - core > 0 for mask and core - random > 0 for retain; FAIL
    otherwise (a cell lacking a set does not hold). Classes with a NaN relative accuracy (unmasked accuracy 0)
    are excluded with a note. NOT RUN when the table is empty, no tau of {4, 8, 16} is present, no class
    remains, or a relative accuracy is infinite or negative.
    """
    rows, note, problem = _fidelity_rows(fidelity)
    if problem:
        return make_row("NF-2", "", "NOT RUN", problem)
    taus = [t for t in (4, 8, 16) if t in set(rows["tau"])]
    if not taus:
        present = sorted(set(rows["tau"]))
        return make_row("NF-2", "", "NOT RUN", f"no tau of 4, 8, 16 in the fidelity rows (present: {present})")
    cell = ["model", "tau", "scope", "layer"]
    means = _set_means(rows[rows["tau"].isin(taus)], cell + ["mode"])
    cells = rows[rows["tau"].isin(taus)][cell].drop_duplicates()
    index = pd.MultiIndex.from_frame(cells)
    gap, holds = {}, {}
    for mode, sign in (("mask", 1.0), ("retain", -1.0)):
        part = means.xs(mode, level="mode") if mode in means.index.get_level_values("mode") else means.iloc[:0]
        g = (sign * (_col(part, "random") - _col(part, "core"))).reindex(index)
        gap[mode], holds[mode] = g, (g > 0)
    bad = _degenerate(rows[rows["tau"].isin(taus)], cell).reindex(index, fill_value=False)
    holds["retain"] = holds["retain"] & ~bad  # a degenerate retained set does not show the claim
    n = len(index)
    shares = {m: float(holds[m].sum()) / n for m in holds}
    mean_gap = {m: float(gap[m].mean()) if gap[m].notna().any() else float("nan") for m in gap}
    ok = all(shares[m] >= 0.8 and mean_gap[m] > 0 for m in holds)
    per_cell = "; ".join(
        f"{m}/{lay} tau {t} {sc}: mask random-core {gap['mask'][(m, t, sc, lay)]:.3f}, "
        f"retain core-random {gap['retain'][(m, t, sc, lay)]:.3f}"
        for m, t, sc, lay in index
    )
    measured = (
        f"mask holds in {int(holds['mask'].sum())} of {n} cells (mean random - core {mean_gap['mask']:.3f}); "
        f"retain holds in {int(holds['retain'].sum())} of {n} (mean core - random {mean_gap['retain']:.3f})"
    )
    rule = (
        f"rule: tau in {taus}; per (model, tau, scope, layer), mask: core relative accuracy < mean random relative "
        "accuracy; retain: core > mean random. PASS when each holds in >= 80 % of the cells and on average (mean "
        "random - core > 0 for mask, mean core - random > 0 for retain). A retain cell where retaining only the "
        "core neurons makes the model predict the class for >= 50 % of the other classes' images (column "
        "other_predicted) is degenerate and does not hold. "
    )
    if bad.any():
        rule += f"Degenerate retain cells: {int(bad.sum())} of {n} ({', '.join(_key(c) for c in index[bad])}). "
    return make_row("NF-2", measured, "PASS" if ok else "FAIL", rule + note + per_cell)


def nf_10(fidelity: pd.DataFrame) -> dict[str, str]:
    """NF-10 (Fig. 16-17): with tau = 20, 24 retaining core neurons loses little; 50 % more neurons change little.

    ``fidelity``: columns model, class_index, tau, scope, layer, mode, set, draw, relative_accuracy.
    (a) mode retain, set core, tau in {20, 24} (those present): the mean relative accuracy (over classes and
    those taus) is >= 0.95 on every (model, scope, layer) ("negligible drop" = at most 5 %). (b) mode retain,
    every tau: per cell (model, tau, scope, layer), |mean extended - core| <= 0.05 (extended: each class's mean
    over its draws, then the mean over classes) in >= 80 % of the cells with both sets. PASS when (a) and (b)
    hold, FAIL otherwise. Classes with a NaN relative accuracy are excluded with a note. NOT RUN when the table
    is empty, neither tau 20 nor 24 is present (set neurflow.evaluation.fidelity_tau), there is no retained
    extended set, no class remains, or a relative accuracy is infinite or negative.
    """
    rows, note, problem = _fidelity_rows(fidelity)
    if problem:
        return make_row("NF-10", "", "NOT RUN", problem)
    retain = rows[rows["mode"] == "retain"]
    taus = [t for t in (20, 24) if t in set(retain["tau"])]
    if not taus:
        present = sorted(set(rows["tau"]))
        return make_row(
            "NF-10", "", "NOT RUN", f"neither tau 20 nor 24 retained (taus present: {present}); set {_TAU_KEY}"
        )
    if not (retain["set"] == "extended").any():
        return make_row("NF-10", "", "NOT RUN", "no retained 'extended' set in the fidelity rows: (b) cannot be judged")
    cores = retain[(retain["set"] == "core") & retain["tau"].isin(taus)]
    a = _set_means(cores, ["model", "scope", "layer"])
    a = _col(a, "core")
    bad = _degenerate(cores, ["model", "scope", "layer"]).reindex(a.index, fill_value=False)
    ok_a = bool(len(a)) and bool((a >= 0.95).all()) and not bad.any()
    b = _set_means(retain, ["model", "tau", "scope", "layer"])
    b = (_col(b, "extended") - _col(b, "core")).abs().dropna()
    ok_b = bool(len(b)) and float((b <= 0.05).mean()) >= 0.8
    per_a = "; ".join(f"{m}/{lay} {sc}: {v:.3f}" for (m, sc, lay), v in a.items())
    per_b = "; ".join(f"{m}/{lay} tau {t} {sc}: {v:.3f}" for (m, t, sc, lay), v in b.items())
    measured = (
        f"(a) retained core at tau {taus}: min mean relative accuracy {a.min():.3f} over {len(a)} cells; "
        f"(b) |extended - core| <= 0.05 in {int((b <= 0.05).sum())} of {len(b)} cells"
    )
    rule = (
        f"rule: (a) retain, core, tau in {taus}: mean relative accuracy >= 0.95 on every (model, scope, layer) "
        "(negligible drop = at most 5 %); (b) retain, every tau: |mean extended - core| <= 0.05 in >= 80 % of "
        "(model, tau, scope, layer) cells. PASS when both, and no (a) cell is degenerate (retaining only the core "
        "neurons makes the model predict the class for >= 50 % of the other classes' images). "
    )
    if bad.any():
        rule += f"Degenerate (a) cells: {', '.join(_key(c) for c in a.index[bad])}. "
    detail = rule + note + f"(a) {per_a}. (b) |extended - core|: {per_b}"
    return make_row("NF-10", measured, "PASS" if ok_a and ok_b else "FAIL", detail)
