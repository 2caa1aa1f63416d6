"""A run killed with SIGKILL in the middle of a job resumes to exactly the results of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TEST_CONFIG, run_snakemake

from conceptscope.compare import compare_trees
from conceptscope.runtime import _TEMPORARY

pytestmark = pytest.mark.workflow

# a job of each kind: training, caching, a NeurFlow job (Snakemake prints "rule <name>:" when one starts)
KILL_IN = ("rule train_model:", "rule cache_activations_", "rule neurflow_circuit:")


def _run_until(work: Path, marker: str, log: Path, *, after: float = 2.0, limit: float = 900.0) -> bool:
    """Start the suite and SIGKILL Snakemake and its jobs ``after`` seconds after ``marker`` is printed;
    False if the run ended first."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work)]
    cmd += ["--configfile", str(TEST_CONFIG), "--cores", "2", "--rerun-incomplete"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            if proc.poll() is not None:
                return False
            if marker in log.read_text(errors="replace"):
                time.sleep(after)
                os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it started, without warning
                proc.wait()
                return True
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{marker!r} not reached within {limit:g} s")


def test_killed_run_resumes_to_the_results_of_an_uninterrupted_run(suite_run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    killed = []
    for marker in KILL_IN:
        if _run_until(work, marker, tmp_path / f"run{len(killed)}.log"):
            killed.append(marker)
        assert run_snakemake(work, "--unlock").returncode == 0
    assert killed == list(KILL_IN)  # each kill hit a running job
    res = run_snakemake(work, "--cores", "2", "--rerun-incomplete")
    assert res.returncode == 0, res.stderr[-4000:]
    assert not [p for p in (work / "results").rglob("*") if _TEMPORARY.match(p.name)]  # no half-written file left
    cmp = compare_trees(suite_run / "results", work / "results")
    assert cmp.identical, cmp.differences[:20]
    assert "Nothing to be done" in run_snakemake(work, "-n").stdout
