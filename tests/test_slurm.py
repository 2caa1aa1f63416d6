"""The SLURM profile end to end, where a SLURM cluster is reachable (sbatch on PATH).

Skipped otherwise. Extra executor flags for a cluster without accounting come
from CONCEPTSCOPE_SLURM_ARGS, e.g. "--slurm-no-account --slurm-status-command squeue".
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(shutil.which("sbatch") is None, reason="needs a SLURM cluster (sbatch on PATH)"),
]


def test_test_suite_runs_through_the_slurm_profile(tmp_path):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--configfile", str(ROOT / "config/test.yaml"), "--profile", str(ROOT / "profiles/slurm")]
    cmd += shlex.split(os.environ.get("CONCEPTSCOPE_SLURM_ARGS", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert (tmp_path / "results/reproduction/claims.csv").exists()
    assert (tmp_path / "results/activations/nap_mnist_cnn/test/conv1.h5").stat().st_size > 0
    again = subprocess.run([*cmd, "-n"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr
