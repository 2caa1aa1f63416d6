"""The reproduction table: every claim id of the four papers, NOT RUN until a rule measures it."""

from __future__ import annotations

import pandas as pd
import pytest

from conceptscope import claims

# The papers' claim ids, written out here independently of the registry file.
PAPER_IDS = (
    [f"NAP-{i}" for i in range(1, 6)]
    + [f"NMF-{i}" for i in range(1, 6)]
    + ["NAS-1"]
    + [f"NF-{i}" for i in range(1, 13)]
)


def test_registry_holds_every_claim_of_the_papers_once():
    reg = claims.claim_registry()
    assert list(reg["claim_id"]) == PAPER_IDS
    assert set(reg["paper"]) == set(claims.PAPERS)
    assert (reg["paper_value"].str.len() > 0).all()


def test_gather_without_rows_lists_every_id_not_run_with_reason():
    table = claims.gather_claims([], {"nas": "no model of the suite runs NAS"})
    assert list(table.columns) == list(claims.ROW_COLUMNS)
    assert list(table["claim_id"]) == PAPER_IDS
    assert (table["verdict"] == "NOT RUN").all()
    assert table.loc[table["claim_id"] == "NAS-1", "detail"].item() == "no model of the suite runs NAS"
    assert "yet" in table.loc[table["claim_id"] == "NF-3", "detail"].item()


def test_produced_rows_replace_not_run(tmp_path):
    rows = [
        claims.make_row("NAP-4", "3 of 4 layer pairs", "PASS", "nap_mnist_cnn"),
        claims.make_row("NAP-4", "1 of 4 layer pairs", "FAIL", "vgg11_cifar"),
        claims.make_row("NMF-2", "0.8, 0.5, 0.3", "PASS"),
    ]
    claims.write_rows(tmp_path / "rows.csv", rows)
    table = claims.gather_claims([tmp_path / "rows.csv"])
    assert len(table) == len(PAPER_IDS) + 1  # NAP-4 has two rows
    nap4 = table[table["claim_id"] == "NAP-4"]
    assert list(nap4["verdict"]) == ["PASS", "FAIL"]
    assert table.loc[table["claim_id"] == "NMF-2", "paper"].item() == "nmf"
    assert (table["verdict"] == "NOT RUN").sum() == len(PAPER_IDS) - 2
    md = tmp_path / "claims.md"
    claims.write_claims_markdown(table, md)
    text = md.read_text()
    assert all(f"| {cid} |" in text for cid in PAPER_IDS)
    assert "PASS: 2, FAIL: 1, NOT RUN: 21" in text


@pytest.mark.parametrize(
    "claim_id, verdict, match",
    [("NAP-9", "PASS", "unknown claim id"), ("NAP-1", "OK", "verdict must be one of")],
)
def test_make_row_rejects_bad_values(claim_id, verdict, match):
    with pytest.raises(ValueError, match=match):
        claims.make_row(claim_id, "x", verdict)


def test_read_rows_rejects_foreign_files(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"claim_id": ["NAP-1"], "verdict": ["PASS"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="columns"):
        claims.read_rows(bad)
    row = claims.make_row("NAP-1", "x", "PASS")
    pd.DataFrame([{**row, "claim_id": "XYZ-1"}]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="XYZ-1"):
        claims.read_rows(bad)
    pd.DataFrame([{**row, "verdict": "MAYBE"}]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="MAYBE"):
        claims.read_rows(bad)


def test_gather_writes_the_claims_page_with_every_row(tmp_path):
    """claims.html (the table of the report): every claim id with its verdict, rendered in headless Chromium."""
    import re

    from browser import chromium_or_skip, dump_dom

    from conceptscope import jobs

    rows = tmp_path / "rows.csv"
    claims.write_rows(rows, [claims.make_row("NF-12", "ratio 2.5", "PASS", "rule: <b>not markup</b>")])
    out = {k: tmp_path / f"claims.{k}" for k in ("csv", "md", "html")}
    jobs.gather_claims(row_files=[str(rows)], not_run_reasons={"naps": "not configured"}, **out)
    table = pd.read_csv(out["csv"])
    binary = chromium_or_skip()
    dom = dump_dom(binary, out["html"].resolve().as_uri(), tmp_path / "profile")
    assert 'data-ready="1"' in re.search(r"<body([^>]*)>", dom).group(1)
    cells = re.findall(r'<td class="(PASS|FAIL|NOT-RUN)">', dom)
    assert len(cells) == len(table) == len(claims.claim_registry())
    assert cells.count("PASS") == 1 and "&lt;b&gt;not markup&lt;/b&gt;" in dom  # text, never markup
