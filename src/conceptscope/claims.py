"""The reproduction table: one row per claim id of the four papers.

Every method writes its claims as rows of one shared format
(:data:`ROW_COLUMNS`): ``claim_id, paper, figure, paper_value,
measured_value, verdict, detail`` with verdict one of :data:`VERDICTS`.
:func:`gather_claims` merges the rows the workflow produced with the registry
of every claim id (``resources/claims.csv``, taken from the papers), so ids no
rule produced appear as ``NOT RUN`` with the reason.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = [
    "PAPERS",
    "ROW_COLUMNS",
    "VERDICTS",
    "claim_registry",
    "gather_claims",
    "make_row",
    "read_rows",
    "write_claims_markdown",
    "write_rows",
]

ROW_COLUMNS = ("claim_id", "paper", "figure", "paper_value", "measured_value", "verdict", "detail")
VERDICTS = ("PASS", "FAIL", "NOT RUN")
PAPERS = {
    "naps": "Neural Activation Patterns (Bäuerle, Jönsson, Ropinski)",
    "nmf": "Analyzing Representations inside CNNs, coupled NMF (Saini, Papalexakis)",
    "nas": "Neuron Activation Sorter (MIT M.Eng. thesis)",
    "neurflow": "NeurFlow (Cao, Hoang, Pham, Nguyen, Thai; ICLR 2025)",
}


def claim_registry() -> pd.DataFrame:
    """Every claim id with its paper, figure, the paper's value and a one-line statement."""
    with resources.files("conceptscope").joinpath("resources/claims.csv").open(encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def make_row(claim_id: str, measured_value: str, verdict: str, detail: str = "") -> dict[str, str]:
    """A claim row, with paper, figure and paper value taken from the registry."""
    reg = claim_registry().set_index("claim_id")
    if claim_id not in reg.index:
        raise ValueError(f"unknown claim id {claim_id!r}; known: {', '.join(reg.index)}")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    r = reg.loc[claim_id]
    return {
        "claim_id": claim_id,
        "paper": r["paper"],
        "figure": r["figure"],
        "paper_value": r["paper_value"],
        "measured_value": str(measured_value),
        "verdict": verdict,
        "detail": detail,
    }


def write_rows(path: str | Path, rows: Iterable[Mapping[str, str]]) -> None:
    """Write claim rows as CSV with the shared columns."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=ROW_COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in ROW_COLUMNS})


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a claim-row CSV, checking columns, ids and verdicts."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(df.columns) != ROW_COLUMNS:
        raise ValueError(f"{path}: columns {list(df.columns)}, expected {list(ROW_COLUMNS)}")
    known = set(claim_registry()["claim_id"])
    bad = sorted(set(df["claim_id"]) - known)
    if bad:
        raise ValueError(f"{path}: unknown claim id(s) {bad}")
    bad_v = sorted(set(df["verdict"]) - set(VERDICTS))
    if bad_v:
        raise ValueError(f"{path}: unknown verdict(s) {bad_v}; use {VERDICTS}")
    return df


def gather_claims(row_files: Sequence[str | Path], not_run_reasons: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Merge rows from ``row_files`` with the registry: one or more rows per claim id.

    A claim id with no row gets ``NOT RUN`` and a reason: ``not_run_reasons``
    per paper (e.g. "no model of the suite runs NAS"), else "no rule of the
    suite computes this claim yet". Rows keep registry order, then file order.
    """
    reg = claim_registry()
    produced = [read_rows(p) for p in row_files]
    rows = pd.concat(produced, ignore_index=True) if produced else pd.DataFrame(columns=ROW_COLUMNS)
    reasons = dict(not_run_reasons or {})
    out = []
    for _, claim in reg.iterrows():
        mine = rows[rows["claim_id"] == claim["claim_id"]]
        if len(mine):
            out.append(mine)
            continue
        reason = reasons.get(claim["paper"], "no rule of the suite computes this claim yet")
        out.append(
            pd.DataFrame(
                [
                    {
                        **{k: claim.get(k, "") for k in ("claim_id", "paper", "figure", "paper_value")},
                        "measured_value": "",
                        "verdict": "NOT RUN",
                        "detail": reason,
                    }
                ]
            )
        )
    return pd.concat(out, ignore_index=True)[list(ROW_COLUMNS)]


def write_claims_markdown(table: pd.DataFrame, path: str | Path) -> None:
    """The reproduction table as Markdown: a verdict count, then one section per paper."""
    counts = table["verdict"].value_counts()
    lines = ["# Reproduction of the papers' claims", ""]
    lines.append(", ".join(f"{v}: {int(counts.get(v, 0))}" for v in VERDICTS))
    for paper, title in PAPERS.items():
        part = table[table["paper"] == paper]
        if part.empty:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            "| claim | figure | paper | measured | verdict | detail |",
            "|---|---|---|---|---|---|",
        ]
        for _, r in part.iterrows():
            cells = [
                r["claim_id"],
                r["figure"],
                r["paper_value"],
                r["measured_value"],
                f"**{r['verdict']}**",
                r["detail"],
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- NAPs ----------------------------------------------------------------------------------------


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


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
        .apply(lambda g: _spearman(g["size"].tolist(), g["n_naps"].tolist()))
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
        lambda g: _spearman(g["depth"].tolist(), g["n_naps"].tolist())
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


# -- coupled NMF ---------------------------------------------------------------------------------


def _per_model_rho(table: pd.DataFrame, column: str) -> pd.Series:
    return table.groupby("model")[["depth", column]].apply(lambda g: _spearman(g["depth"].tolist(), g[column].tolist()))


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


def nf_12(masking: pd.DataFrame) -> dict[str, str]:
    """NF-12 (Sect. 5.1): masking a neuron group changes the class probability far more than as many random neurons.

    ``masking``: rows (model, class_index, layer, node, drop, random_drop_mean)
    of :func:`conceptscope.neurflow_circuit.masking_effect`. PASS when the
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
