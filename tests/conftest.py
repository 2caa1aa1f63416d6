"""Shared test settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"


def run_snakemake(
    workdir: Path, *args: str, config: Path = TEST_CONFIG, snakefile: Path = ROOT / "Snakefile", timeout: int = 900
) -> subprocess.CompletedProcess:
    """Snakemake's command line on ``config`` with working directory ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "--configfile", str(config)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=workdir, timeout=timeout)


def second_checkout(dest: Path) -> Path:
    """The repository's tracked files (as in the working tree) copied to ``dest``: a second clone."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="session")
def suite_run(tmp_path_factory) -> Path:
    """The working directory of one local run of config/test.yaml (2 cores), shared by the workflow tests."""
    work = tmp_path_factory.mktemp("suite")
    res = run_snakemake(work, "--cores", "2")
    assert res.returncode == 0, res.stderr[-4000:]
    return work


@pytest.fixture(autouse=True)
def no_network_probe(monkeypatch):
    """Tests never open network connections: a pretrained build's host check answers "reachable" (so the
    test's own stand-in for the download runs); tests of the offline path set it themselves."""
    from conceptscope import models

    monkeypatch.setattr(models, "_reachable", lambda host: True)
