"""Claim rules of the NAP paper: NAP-1 (Fig. 6), NAP-2 (Fig. 8), NAP-4 (Sect. 6)."""

from __future__ import annotations

import pandas as pd

from ..claims import make_row, spearman

__all__ = ["nap_1", "nap_2", "nap_4"]


def nap_1(counts: pd.DataFrame) -> dict[str, str]:
    """NAP-1 (Fig. 6): on conv layers, mean / mean_std give the most NAPs, max / min_max fewer, none the fewest.

    ``counts``: rows (model, layer, kind, method, n_naps). A conv layer follows
    the ranking when avg(mean, mean_std) >= avg(max, min_max) >= none. PASS
    when at least half of the conv layers with all five methods follow it.
    """
    conv = counts[counts["kind"] != "dense"]
    table = conv.pivot_table(index=["model", "layer"], columns="method", values="n_naps")
    needed = ["none", "max", "min_max", "mean", "mean_std"]
    table = table.dropna(subset=[m for m in needed if m in table.columns])
    if table.empty or not set(needed) <= set(table.columns):
        return make_row("NAP-1", "", "NOT RUN", "needs conv layers with all five disentanglements")
    amount = (table["mean"] + table["mean_std"]) / 2
    peak = (table["max"] + table["min_max"]) / 2
    ok = (amount >= peak) & (peak >= table["none"])
    per_method = table[needed].mean().round(1).to_dict()
    return make_row(
        "NAP-1",
        f"{int(ok.sum())} of {len(ok)} conv layers follow the ranking",
        "PASS" if ok.sum() * 2 >= len(ok) else "FAIL",
        "rule: avg(mean, mean_std) >= avg(max, min_max) >= none per layer, PASS on at least half; "
        f"mean NAP count per method: {per_method}",
    )


def nap_2(sizes: pd.DataFrame) -> dict[str, str]:
    """NAP-2 (Fig. 8): NAP count grows with the number of inputs, in train and test alike.

    Per (model, layer, split), Spearman rho of count vs. size. PASS when rho > 0
    for every split on at least half of the (model, layer)s, i.e. both splits
    rise together.
    """
    rhos = (
        sizes.groupby(["model", "layer", "split"])[["size", "n_naps"]]
        .apply(lambda g: spearman(g["size"].tolist(), g["n_naps"].tolist()))
        .unstack("split")
    )
    rising = (rhos > 0).all(axis=1)
    detail = "; ".join(
        f"{m}/{layer}: " + ", ".join(f"{s} rho {v:+.2f}" for s, v in row.items()) for (m, layer), row in rhos.iterrows()
    )
    return make_row(
        "NAP-2",
        f"{int(rising.sum())} of {len(rising)} layers rise in every split",
        "PASS" if rising.sum() * 2 >= len(rising) and len(rising) else "FAIL",
        "rule: Spearman rho(size, NAP count) > 0 in every split, PASS on at least half the layers; " + detail,
    )


def nap_4(counts: pd.DataFrame) -> dict[str, str]:
    """NAP-4 (Sect. 6): later layers give more NAPs than early ones.

    Per (model, method), Spearman rho of NAP count vs. layer depth (probed
    order). PASS when the median rho is > 0.
    """
    rhos = counts.groupby(["model", "method"])[["depth", "n_naps"]].apply(
        lambda g: spearman(g["depth"].tolist(), g["n_naps"].tolist())
    )
    if rhos.empty:
        return make_row("NAP-4", "", "NOT RUN", "no NAP counts")
    med = float(rhos.median())
    per_model = rhos.groupby("model").median().round(2).to_dict()
    return make_row(
        "NAP-4",
        f"median Spearman rho(depth, NAP count) = {med:+.2f}",
        "PASS" if med > 0 else "FAIL",
        f"rule: median over (model, method) of rho > 0; median per model: {per_model}",
    )
