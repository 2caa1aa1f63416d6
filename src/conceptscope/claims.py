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
    "spearman",
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


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho of ``x`` and ``y``; 0.0 when either is constant (rho undefined there)."""
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)
