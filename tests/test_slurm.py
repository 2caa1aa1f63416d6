"""The SLURM profile end to end on a real cluster, where one is reachable (sbatch on PATH; CI starts one).

Skipped otherwise. Extra executor flags for a cluster without accounting come
from CONCEPTSCOPE_SLURM_ARGS, e.g. "--slurm-no-account --slurm-status-command squeue".
The run is made from a second copy of the repository (the tracked files), so
comparing it with the local run of the same config (the ``suite_run`` fixture)
also shows that two checkouts give identical tables.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run_snakemake, second_checkout

from conceptscope.compare import compare_trees

pytestmark = pytest.mark.workflow


@pytest.fixture(autouse=True)
def slurm_or_skip():
    """Skip without ``sbatch``; fail instead when CONCEPTSCOPE_REQUIRE_SLURM is set (CI starts a cluster)."""
    if shutil.which("sbatch") is None:
        if os.environ.get("CONCEPTSCOPE_REQUIRE_SLURM"):
            pytest.fail("CONCEPTSCOPE_REQUIRE_SLURM is set but sbatch is not on PATH")
        pytest.skip("needs a SLURM cluster (sbatch on PATH)")


def _small_memory(profile: Path, mem_mb: int = 3000) -> list[str]:
    """The profile's memory requests lowered to ``mem_mb`` for the test config's tiny jobs, every other resource
    kept. The profile sizes them for paper configs (8 to 16 GB); on one CI node of about 22 GB a 16 GB job
    cannot share it, and the DAG would run one job at a time."""
    cfg = yaml.safe_load(profile.read_text())
    default = {**cfg["default-resources"], "mem_mb": mem_mb}
    out = ["--default-resources", *(f"{k}={v}" for k, v in default.items()), "--set-resources"]
    for rule, resources in cfg["set-resources"].items():
        out += [f"{rule}:{k}={mem_mb if k == 'mem_mb' else v}" for k, v in resources.items()]
    return out


def test_test_suite_runs_through_the_slurm_profile_and_equals_the_local_run(suite_run, tmp_path):
    clone = second_checkout(tmp_path / "clone")
    work = tmp_path / "work"
    work.mkdir()
    args = ["--profile", str(clone / "profiles/slurm"), "--slurm-keep-successful-logs"]
    args += ["--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "3"]
    args += _small_memory(clone / "profiles/slurm/config.yaml")
    args += shlex.split(os.environ.get("CONCEPTSCOPE_SLURM_ARGS", ""))
    res = run_snakemake(work, *args, config=clone / "config/test.yaml", snakefile=clone / "Snakefile", timeout=2400)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    # every job but the local rules went through sbatch: one SLURM job id per submitted job, each with its log
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    planned = sum(int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", out, re.M) if rule != "total")
    local = len(re.findall(r"^localrule ", out, re.M))
    assert submitted and len(set(submitted)) == len(submitted) == planned - local, (planned, local, submitted)
    logs = {p.stem for p in (work / "logs" / "slurm").rglob("*.log")}  # the profile's slurm-logdir
    assert set(submitted) <= logs
    # the same tables as the local run of the same config (wall-clock values and CPU-time ratios aside)
    cmp = compare_trees(suite_run / "results", work / "results")
    assert cmp.identical, cmp.differences[:20]
    assert cmp.files > 50
    again = run_snakemake(work, *args, "-n", config=clone / "config/test.yaml", snakefile=clone / "Snakefile")
    assert "Nothing to be done" in again.stdout + again.stderr
