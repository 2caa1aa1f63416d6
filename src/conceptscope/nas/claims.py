"""Claim rule of the NAS thesis: NAS-1 (layer summaries and taxonomy for every probed layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..claims import make_row
from .core import NEURON_TYPES, TAXONOMY_LABELS

__all__ = ["nas_1"]

_COLUMNS = ("model", "layer", "type", "count", "n_units", "consistent")


def _layer_problem(g: pd.DataFrame) -> str:
    """Why one layer's count rows cannot be a taxonomy: "" when they can."""
    if not all(isinstance(v, bool | np.bool_) and bool(v) for v in g["consistent"]):
        return "the summary or the taxonomy table is inconsistent"
    numbers = g[["count", "n_units"] + [c for c in ("judged", "n_images") if c in g.columns]]
    numbers = numbers.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    if not np.isfinite(numbers.to_numpy()).all() or (numbers.to_numpy() != np.round(numbers.to_numpy())).any():
        return "a count, unit or image number is not a whole number"
    if numbers["n_units"].nunique() != 1 or numbers["n_units"].iloc[0] < 1:
        return f"n_units {sorted(set(numbers['n_units'].astype(int)))} (one value >= 1 expected)"
    if "n_images" in numbers and (numbers["n_images"].nunique() != 1 or numbers["n_images"].iloc[0] < 1):
        return f"n_images {sorted(set(numbers['n_images'].astype(int)))} (one value >= 1 expected)"
    for col in ("count", "judged"):
        if col in numbers and ((numbers[col] < 0) | (numbers[col] > numbers["n_units"])).any():
            return f"{col} {numbers[col].astype(int).tolist()} outside [0, {int(numbers['n_units'].iloc[0])}]"
    unknown = sorted(set(g["type"]) - set(TAXONOMY_LABELS))
    if unknown or g["type"].duplicated().any():
        return f"types {g['type'].tolist()} (each of {list(TAXONOMY_LABELS)} once expected)"
    return ""


def nas_1(counts: pd.DataFrame, expected: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """NAS-1: the layer summary and the taxonomy exist for every probed layer, with counts per type.

    ``counts``: rows (model, layer, type, count, judged, n_units, n_images, consistent)
    from the taxonomy jobs, one per layer and label of
    :data:`~conceptscope.nas.TAXONOMY_LABELS` (the six types and
    ``insufficient``: units with too little evidence for some type),
    ``judged`` the units whose evidence sufficed for the type's rule
    (:func:`~conceptscope.nas.count_labels`); ``consistent`` says the summary
    put every sampled image in exactly one range of every unit and the
    taxonomy has a row per unit. ``expected``: per model, the probed layers.

    Verdict: FAIL when an expected layer is missing, or its rows are
    inconsistent or impossible (a count outside [0, n_units], no unit, no
    image, NaN, a type twice). NOT RUN when a layer's rows lack a label or the
    ``judged`` column (a table from before the evidence minima), or some type
    was judged on no unit of a layer (too few images: raise ``nas.per_class``):
    the rule of every type must be applied on every layer. Else PASS; the
    detail states the insufficient units per layer.
    """
    if not expected:
        return make_row("NAS-1", "", "NOT RUN", "nas.models is empty")
    absent = [c for c in _COLUMNS if c not in counts.columns]
    if absent and not counts.empty:
        return make_row("NAS-1", "", "NOT RUN", f"the counts table lacks column(s) {absent}")
    groups = {key: g for key, g in counts.groupby(["model", "layer"], sort=False)} if not counts.empty else {}
    wanted = [(m, layer) for m, layers in expected.items() for layer in layers]
    missing = [f"{m}/{layer}" for m, layer in wanted if (m, layer) not in groups]
    broken, unlabelled, unjudged, parts = [], [], [], []
    totals = dict.fromkeys(TAXONOMY_LABELS, 0)
    n_units_all = 0
    for m, layer in wanted:
        g = groups.get((m, layer))
        if g is None:
            continue
        name = f"{m}/{layer}"
        problem = _layer_problem(g)
        if problem:
            broken.append(f"{name} ({problem})")
            continue
        have = dict(zip(g["type"], g["count"].astype(int), strict=True))
        n_units = int(g["n_units"].iloc[0])
        lacking = [t for t in TAXONOMY_LABELS if t not in have] + (["judged"] if "judged" not in g.columns else [])
        if lacking:
            unlabelled.append(f"{name} (no {', '.join(lacking)})")
            continue
        n_units_all += n_units
        for t in TAXONOMY_LABELS:
            totals[t] += have[t]
        judged = dict(zip(g["type"], g["judged"].astype(int), strict=True))
        never = [t for t in NEURON_TYPES if judged[t] == 0]
        if never:
            unjudged.append(f"{name} ({', '.join(never)})")
        images = f", {int(g['n_images'].iloc[0])} images" if "n_images" in g.columns else ""
        parts.append(f"{name}: " + ", ".join(f"{t} {have[t]}" for t in TAXONOMY_LABELS) + f" of {n_units}{images}")
    n = len(wanted)
    good = n - len(missing) - len(broken) - len(unlabelled) - len(unjudged)
    measured = f"{good}/{n} layers; totals " + ", ".join(f"{t} {c}" for t, c in totals.items())
    measured += f" of {n_units_all} units"
    detail = (
        "rule: every probed layer has a summary (each sampled image in exactly one range of every unit) and a "
        f"taxonomy row per unit, and every type judged on some unit; missing {missing or 'none'}, "
        f"inconsistent {broken or 'none'}, without a count per label {unlabelled or 'none'}, types judged on "
        f"no unit {unjudged or 'none'}; {totals['insufficient']} of {n_units_all} units insufficient "
        "(too few images in H, L or the sample for some type). " + "; ".join(parts)
    )
    if unjudged:
        detail = f"some types were judged on no unit of {unjudged}: sample more images (nas.per_class). {detail}"
    if missing or broken:
        verdict = "FAIL"
    elif unlabelled or unjudged:
        verdict = "NOT RUN"
    else:
        verdict = "PASS"
    return make_row("NAS-1", measured, verdict, detail)
