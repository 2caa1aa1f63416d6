"""Same config and seed, two checkouts, two runs: identical claims table and figure tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import run_snakemake, second_checkout

from conceptscope.compare import TIMING_CLAIMS, TIMING_COLUMNS, compare_trees

pytestmark = pytest.mark.workflow


def test_two_checkouts_give_identical_claims_and_figure_tables(suite_run, tmp_path):
    """config/test.yaml run from a second copy of the repository, in its own working directory, with one core
    (another job order than the two-core ``suite_run``): every table equals the first run's."""
    clone = second_checkout(tmp_path / "clone")
    work = tmp_path / "work"
    work.mkdir()
    res = run_snakemake(work, "--cores", "1", config=clone / "config/test.yaml", snakefile=clone / "Snakefile")
    assert res.returncode == 0, res.stderr[-4000:]
    a, b = suite_run / "results", work / "results"
    figure_tables = sorted(str(p.relative_to(a)) for p in (a / "figures").rglob("*.csv"))
    assert len(figure_tables) > 20 and figure_tables == sorted(
        str(p.relative_to(b)) for p in (b / "figures").rglob("*.csv")
    )
    cmp = compare_trees(a, b)  # every CSV, JSON and HDF5 dataset; wall-clock columns aside
    assert cmp.identical, cmp.differences[:20]
    # the claims byte for byte, apart from the rows measured in CPU seconds
    claims = [pd.read_csv(Path(r) / "reproduction/claims.csv", dtype=str, keep_default_na=False) for r in (a, b)]
    timed = [c["claim_id"].isin(TIMING_CLAIMS) for c in claims]
    pd.testing.assert_frame_equal(claims[0][~timed[0]], claims[1][~timed[1]])
    for rel in figure_tables:
        x, y = (pd.read_csv(r / rel, dtype=str, keep_default_na=False) for r in (a, b))
        keep = [c for c in x.columns if not TIMING_COLUMNS.search(c)]
        pd.testing.assert_frame_equal(x[keep], y[keep], obj=rel)
