"""The execution profiles: valid YAML, every rule they name exists, the GPU profile covers every GPU rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_snakemake

PROFILES = ("workstation", "slurm", "slurm-gpu")


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> set[str]:
    res = run_snakemake(tmp_path_factory.mktemp("rules"), "--list-rules")
    assert res.returncode == 0, res.stderr[-2000:]
    return {line.split()[0] for line in res.stdout.splitlines() if line.strip()}


def _gpu_rules() -> set[str]:
    """Rules (by name) that declare the resource gpu."""
    found = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule |    rule:)", smk.read_text()):
            name = re.match(r"rule (\w+):", block.lstrip())
            if name and 'gpu=config["gpus_per_job"]' in block:
                found.add(name.group(1))
    return found


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_names_only_rules_of_the_workflow(profile, rules):
    cfg = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    unknown = set(cfg.get("set-resources", {})) - rules
    assert not unknown, f"profiles/{profile} sets resources of unknown rules {sorted(unknown)}"


def test_gpu_profile_puts_every_gpu_rule_on_the_gpu_partition():
    cfg = yaml.safe_load((ROOT / "profiles" / "slurm-gpu" / "config.yaml").read_text())
    assert "gpus_per_job=1" in cfg["config"]
    gpu = {r for r, res in cfg["set-resources"].items() if res.get("slurm_partition") == "gpu"}
    assert gpu == _gpu_rules() and all(cfg["set-resources"][r]["cpus_per_gpu"] >= 1 for r in gpu)
    assert cfg["default-resources"]["slurm_partition"] == "cpu"  # figures, pages, claims stay off the GPUs


def test_slurm_profiles_keep_logs_and_set_run_time_and_memory():
    for name in ("slurm", "slurm-gpu"):
        cfg = yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())
        assert cfg["executor"] == "slurm" and cfg["slurm-logdir"] == "logs/slurm"
        assert {"runtime", "mem_mb"} <= set(cfg["default-resources"])
        assert all({"runtime", "mem_mb"} <= set(v) for v in cfg["set-resources"].values())


def test_workstation_profile_bounds_gpu_jobs(tmp_path):
    cfg = yaml.safe_load((ROOT / "profiles" / "workstation" / "config.yaml").read_text())
    assert cfg["resources"]["gpu"] >= 1 and "gpus_per_job=1" in cfg["config"]
    res = run_snakemake(tmp_path, "-n", "--profile", str(ROOT / "profiles" / "workstation"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert Path(tmp_path).is_dir()
