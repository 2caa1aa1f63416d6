"""Claim rules of NeurFlow: NF-12 (masking a neuron group vs random neurons)."""

from __future__ import annotations

import pandas as pd

from ..claims import make_row

__all__ = ["nf_12"]


def nf_12(masking: pd.DataFrame) -> dict[str, str]:
    """NF-12 (Sect. 5.1): masking a neuron group changes the class probability far more than as many random neurons.

    ``masking``: rows (model, class_index, layer, node, drop, random_drop_mean)
    of :func:`conceptscope.neurflow.masking_table`. PASS when the
    group's drop exceeds the random mean drop for at least 80 % of the groups
    and the median ratio drop / random drop is at least 2 ("far more").
    """
    if masking.empty:
        return make_row("NF-12", "", "NOT RUN", "neurflow.models is empty")
    beats = float((masking["drop"] > masking["random_drop_mean"]).mean())
    ratio = (masking["drop"] / masking["random_drop_mean"].where(masking["random_drop_mean"] > 0)).fillna(float("inf"))
    median = float(ratio.median())
    per_layer = "; ".join(
        f"{m} class {c} {layer}: drop {g['drop'].mean():.3f} vs random {g['random_drop_mean'].mean():.3f}"
        for (m, c, layer), g in masking.groupby(["model", "class_index", "layer"], sort=False)
    )
    ok = beats >= 0.8 and median >= 2.0
    return make_row(
        "NF-12",
        f"group beats random in {beats:.0%} of {len(masking)} groups; median drop ratio {median:.2f}",
        "PASS" if ok else "FAIL",
        f"rule: the group's probability drop exceeds the random mean for >= 80% of groups and the median ratio >= 2. "
        f"{per_layer}",
    )
