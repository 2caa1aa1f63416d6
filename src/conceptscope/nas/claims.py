"""Claim rule of the NAS thesis: NAS-1 (layer summaries and taxonomy for every probed layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..claims import make_row

__all__ = ["nas_1"]


def nas_1(counts: pd.DataFrame, expected: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """NAS-1: the layer summary and the taxonomy exist for every probed layer, with counts per type.

    ``counts``: rows (model, layer, type, count, n_units, n_images, consistent)
    from the taxonomy jobs; ``consistent`` says the summary put every sampled
    image in exactly one range of every unit and the taxonomy has a row per unit.
    ``expected``: per model, the probed layers. PASS when every expected layer
    is present and consistent.
    """
    if not expected:
        return make_row("NAS-1", "", "NOT RUN", "nas.models is empty")
    have = counts.groupby(["model", "layer"])["consistent"].all() if not counts.empty else pd.Series(dtype=bool)
    missing = [f"{m}/{layer}" for m, layers in expected.items() for layer in layers if (m, layer) not in have.index]
    broken = [f"{m}/{layer}" for (m, layer), ok in have.items() if not ok]
    n = sum(len(v) for v in expected.values())
    totals = counts.groupby("type", sort=False)["count"].sum() if not counts.empty else pd.Series(dtype=int)
    per_layer = "; ".join(
        f"{m}/{layer}: " + ", ".join(f"{r.type} {r.count}" for r in g.itertuples()) + f" of {g['n_units'].iloc[0]}"
        for (m, layer), g in counts.groupby(["model", "layer"], sort=False)
    )
    ok = not missing and not broken
    return make_row(
        "NAS-1",
        f"{n - len(missing) - len(broken)}/{n} layers; totals " + ", ".join(f"{t} {c}" for t, c in totals.items()),
        "PASS" if ok else "FAIL",
        "rule: every probed layer has a summary (each sampled image in exactly one range of every unit) and a "
        f"taxonomy row per unit; missing {missing or 'none'}, inconsistent {broken or 'none'}. {per_layer}",
    )
