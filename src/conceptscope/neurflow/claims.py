"""Claim rules of NeurFlow: NF-12 (masking a neuron group vs random neurons)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import make_row

__all__ = ["nf_12"]


def _not_run(masking: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The group rows, and per class whose circuit did not run (a ``status`` row) "model class c: status (reason)"."""
    if "status" not in masking.columns:
        return masking, []
    stated = masking["status"].notna()
    skipped = []
    for _, r in masking[stated].iterrows():
        reason = r.get("reason")
        why = f" ({reason})" if isinstance(reason, str) and reason else ""
        skipped.append(f"{r['model']} class {int(r['class_index'])}: {r['status']}{why}")
    return masking[~stated].astype({"drop": float, "random_drop_mean": float}), skipped


_TOL = 1e-3  # probability change below which masking "changes nothing" (0.1 percentage point)


def nf_12(masking: pd.DataFrame) -> dict[str, str]:
    """NF-12 (Sect. 5.1): masking a neuron group changes the class probability far more than as many random neurons.

    ``masking``: rows (model, class_index, layer, node, drop, random_drop_mean)
    of :func:`conceptscope.neurflow.masking_table` (``drop`` = class
    probability before minus after masking, so > 0 when masking lowers it),
    and for a class whose circuit did not run one row with its ``status``
    (e.g. ``no images``). Per group, the ratio is ``drop / max(|random drop|,
    0.001)``: negative when masking the group raises the probability, near 0
    when the group changes nothing, large when random neurons change nothing
    and the group lowers it. PASS when at least 80 % of the groups lower the
    probability more than their random neurons do (``drop > 0`` and ``drop >
    random drop``) and the median ratio is at least 2 ("far more"); FAIL
    otherwise. NOT RUN, naming the rows, when a drop is NaN or infinite, and
    when no class has groups. Only the classes that ran count; the note names
    the others.
    """
    if masking.empty:
        return make_row("NF-12", "", "NOT RUN", "no masking rows: neurflow.models is empty or no circuit ran")
    masking, skipped = _not_run(masking)
    missing = f"not run: {'; '.join(skipped)}" if skipped else ""
    if masking.empty:
        return make_row("NF-12", "", "NOT RUN", f"no class has neuron groups; {missing}")
    values = masking[["drop", "random_drop_mean"]].to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = masking.loc[bad, ["model", "class_index", "node"]].astype(str).agg(" ".join, axis=1)
        return make_row(
            "NF-12", "", "NOT RUN", f"{int(bad.sum())} group(s) with a NaN or infinite drop: {', '.join(rows)}"
        )
    drop, rand = values[:, 0], values[:, 1]
    beats = float(((drop > 0) & (drop > rand)).mean())
    median = float(np.median(drop / np.maximum(np.abs(rand), _TOL)))
    per_layer = "; ".join(
        f"{m} class {c} {layer}: drop {g['drop'].mean():.3f} vs random {g['random_drop_mean'].mean():.3f}"
        for (m, c, layer), g in masking.groupby(["model", "class_index", "layer"], sort=False)
    )
    ok = beats >= 0.8 and median >= 2.0
    note = (
        "rule: >= 80% of groups lower the class probability more than their random neurons (drop > 0 and "
        "drop > random drop), and the median of drop / max(|random drop|, 0.001) >= 2. "
        f"{per_layer}"
    )
    if skipped:
        note += f". Counts only the classes that ran; {missing}"
    return make_row(
        "NF-12",
        f"group lowers the probability more than random in {beats:.0%} of {len(masking)} groups; "
        f"median drop ratio {median:.2f}",
        "PASS" if ok else "FAIL",
        note,
    )
