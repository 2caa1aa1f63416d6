"""Claim rules of the coupled-NMF paper: NMF-1 (Fig. 2), NMF-2 (Fig. 3)."""

from __future__ import annotations

import pandas as pd

from ..claims import make_row, spearman

__all__ = ["nmf_1", "nmf_2"]


def _per_model_rho(table: pd.DataFrame, column: str) -> pd.Series:
    return table.groupby("model")[["depth", column]].apply(lambda g: spearman(g["depth"].tolist(), g[column].tolist()))


def nmf_1(table: pd.DataFrame) -> dict[str, str]:
    """NMF-1 (Fig. 2): the cosine-similarity matrix of O_j's columns becomes more diagonal with depth.

    ``table``: rows (model, layer, depth, diagonal_dominance) of the coupled
    factorization; diagonal dominance = 1 - mean |off-diagonal similarity|.
    PASS when Spearman rho(depth, dominance) > 0 for every model.
    """
    if table.empty:
        return make_row("NMF-1", "", "NOT RUN", "no NMF layers")
    rhos = _per_model_rho(table, "diagonal_dominance")
    values = "; ".join(
        f"{m}: " + ", ".join(f"{r.layer} {r.diagonal_dominance:.3f}" for r in g.sort_values("depth").itertuples())
        for m, g in table.groupby("model")
    )
    return make_row(
        "NMF-1",
        values,
        "PASS" if (rhos > 0).all() else "FAIL",
        "diagonal dominance = 1 - mean |off-diagonal cosine|; rule: Spearman rho(depth, dominance) > 0 "
        f"for every model; rho: {rhos.round(2).to_dict()}",
    )


def nmf_2(table: pd.DataFrame) -> dict[str, str]:
    """NMF-2 (Fig. 3): the mean of the K largest eigenvalues of the similarity matrices falls with depth.

    PASS when Spearman rho(depth, eigen mean) < 0 for every model (logit
    layers are not factored by default).
    """
    if table.empty:
        return make_row("NMF-2", "", "NOT RUN", "no NMF layers")
    rhos = _per_model_rho(table, "eigen_mean")
    values = "; ".join(
        f"{m} (K={int(g['k'].iloc[0])}): "
        + ", ".join(f"{r.layer} {r.eigen_mean:.3f}" for r in g.sort_values("depth").itertuples())
        for m, g in table.groupby("model")
    )
    return make_row(
        "NMF-2",
        values,
        "PASS" if (rhos < 0).all() else "FAIL",
        f"eigenvalues sorted descending; rule: Spearman rho(depth, eigen mean) < 0 for every model; "
        f"rho: {rhos.round(2).to_dict()}",
    )
