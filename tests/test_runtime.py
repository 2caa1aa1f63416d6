"""Job runner helpers: temporary files of killed writers, the closing summary of a run."""

from __future__ import annotations

import os

import pytest

from conceptscope.runtime import remove_stale_temporaries, run_summary, temporary_path


def test_temporaries_of_killed_writers_are_removed_and_nothing_else(tmp_path):
    results = tmp_path / "results"
    (results / "activations/m/test").mkdir(parents=True)
    keep = [results / "activations/m/test/fc.h5", results / "activations/m/test/.hidden_but_final.h5"]
    for p in keep:
        p.write_text("x")
    stale = [
        temporary_path(results / "activations/m/test/conv1.h5"),
        results / "naps/m/test/fc/.max.h5.tmp",
        results / ".browser.html.tmp123",
    ]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("half")
    assert temporary_path(keep[0]).name == f".fc.h5.tmp{os.getpid()}"
    assert sorted(remove_stale_temporaries(results)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_the_run_summary_counts_verdicts_and_lists_pages(tmp_path):
    results = tmp_path / "results"
    (results / "reproduction").mkdir(parents=True)
    (results / "reproduction/claims.csv").write_text(
        "claim_id,verdict\nNAP-1,PASS\nNAP-2,FAIL\nNAP-3,NOT RUN\nNAP-4,PASS\n"
    )
    for page in ("naps/m/browser.html", "nas/m/fc/summary.html", "neurflow/m/class0/circuit.html"):
        (results / page).parent.mkdir(parents=True, exist_ok=True)
        (results / page).write_text("<html></html>")
    text = run_summary(results)
    assert "claims: 2 PASS, 1 FAIL, 1 NOT RUN" in text
    assert str(results / "reproduction/claims.md") in text and "HTML pages (3" in text
    assert f"snakemake --report {results / 'report.html'}" in text


def test_the_report_command_repeats_the_runs_config_files(tmp_path):
    text = run_summary(tmp_path / "results", ["my.yaml", "changes.yaml"])
    assert f"snakemake --report {tmp_path / 'results' / 'report.html'} --configfile my.yaml changes.yaml" in text


def test_atomic_path_renames_when_complete_and_keeps_the_old_file_on_failure(tmp_path):
    from conceptscope.runtime import atomic_path

    out = tmp_path / "circuit.json"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".circuit.json.tmp")
        tmp.write_text("new")
        assert not out.exists()  # nothing at the output until the block ends
    assert out.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["circuit.json"]
