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
from typing import NamedTuple

import numpy as np
import pandas as pd

from .runtime import atomic_path, write_text

__all__ = [
    "PAPERS",
    "ROW_COLUMNS",
    "VERDICTS",
    "Trend",
    "claim_registry",
    "gather_claims",
    "invalid_values",
    "make_row",
    "rank_trend",
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
    """Write claim rows as CSV with the shared columns (atomically: a failure leaves no partial file)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
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
    write_text(path, "\n".join(lines) + "\n")


class Trend(NamedTuple):
    """A monotone trend of ``y`` along ``x`` (:func:`rank_trend`).

    Attributes
    ----------
    rho : float
        Spearman rho in [-1, 1]; NaN when the trend is undefined, 0.0 when ``y`` is constant.
    n : int
        Number of (x, y) pairs.
    note : str
        "" for an ordinary rho, else why rho is NaN or 0.0.
    """

    rho: float
    n: int
    note: str

    @property
    def defined(self) -> bool:
        """Whether the data can show a trend at all (``rho`` is not NaN)."""
        return not np.isnan(self.rho)


def rank_trend(x: Sequence[float], y: Sequence[float]) -> Trend:
    """Spearman rho of ``y`` along ``x`` for a trend claim ("grows with depth"), saying when it is undefined.

    Parameters
    ----------
    x, y : sequences of float, same length n
        ``x`` the ordered quantity (depth, input size), ``y`` the measured one.

    Returns
    -------
    Trend
        ``rho`` is NaN (undefined) when a value is NaN or infinite, or ``x``
        takes fewer than 2 distinct values (one point, or one depth): the
        data cannot show a trend. When ``y`` is constant over at least 2
        positions, ``rho`` is 0.0 with a note: ``y`` does not change, so it
        neither rises nor falls (Spearman's 0/0 is read as "no trend", which
        fails a claim of either sign). Otherwise ``scipy.stats.spearmanr``.

    Raises
    ------
    ValueError
        When ``x`` and ``y`` differ in length.
    """
    from scipy.stats import spearmanr

    xs, ys = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if np.isfinite(ys).all():
        ys = np.round(ys, 9)  # values equal up to float noise (e.g. eigen means that are all 1) are equal
    if xs.size != ys.size:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    n = int(xs.size)
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        return Trend(float("nan"), n, "NaN or infinite values")
    positions = np.unique(xs).size
    if positions < 2:
        return Trend(float("nan"), n, f"{n} value(s) at {positions} position(s): no trend to measure")
    if np.unique(ys).size < 2:
        return Trend(0.0, n, f"constant at {ys[0]:g}: no change")
    return Trend(float(spearmanr(xs, ys).statistic), n, "")


def invalid_values(
    table: pd.DataFrame,
    column: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    keys: Sequence[str] = ("model", "layer"),
) -> str:
    """Why ``table[column]`` cannot be evidence for a claim: "" when every value is a finite number in range.

    Names the first offending rows by ``keys`` (those present) and the value,
    e.g. ``"n_naps: m/l1 = -3, m/l2 = nan (must be finite and >= 0)"``; a
    missing column gives ``"no column n_naps"``. A claim rule returns NOT RUN
    with this reason instead of judging such a table.
    """
    if column not in table.columns:
        return f"no column {column}"
    values = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    bad = ~np.isfinite(values)
    rule = "finite"
    if minimum is not None:
        bad |= values < minimum
        rule += f" and >= {minimum:g}"
    if maximum is not None:
        bad |= values > maximum
        rule += f" and <= {maximum:g}"
    if not bad.any():
        return ""
    keys = [k for k in keys if k in table.columns]
    rows = table[bad.to_numpy()]
    shown = ", ".join(
        "/".join(str(r[k]) for k in keys) + f" = {r[column]}" if keys else str(r[column])
        for _, r in rows.head(5).iterrows()
    )
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"{column}: {shown}{more} (must be {rule})"
