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


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_names_only_rules_of_the_workflow(profile, rules):
    cfg = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    unknown = set(cfg.get("set-resources", {})) - rules
    assert not unknown, f"profiles/{profile} sets resources of unknown rules {sorted(unknown)}"


def _planned_resources(res) -> dict[str, dict[str, str]]:
    """Rule -> the resources Snakemake's dry run prints for its jobs (the last job of a rule wins)."""
    out: dict[str, dict[str, str]] = {}
    rule = None
    for line in res.stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            pairs = line.split("resources:", 1)[1].split(", ")
            out[rule] = dict(p.split("=", 1) for p in pairs if "=" in p)
    return out


def test_gpu_profile_puts_every_torch_job_on_the_gpu_partition(tmp_path):
    """Every job that declares a GPU, the per-model caching rules included, gets the gpu partition and cores per
    GPU; the others stay on the default (cpu) partition without a GPU."""
    cfg = yaml.safe_load((ROOT / "profiles" / "slurm-gpu" / "config.yaml").read_text())
    assert "gpus_per_job=1" in cfg["config"] and "gpu_partition=gpu" in cfg["config"]
    res = run_snakemake(tmp_path, "-n", "--profile", str(ROOT / "profiles" / "slurm-gpu"))
    assert res.returncode == 0, res.stderr[-2000:]
    planned = _planned_resources(res)
    gpu = {rule for rule, r in planned.items() if r.get("gpu") == "1"}
    torch_rules = {"train_model", "extract_naps", "fit_coupled_nmf", "fit_single_nmf", "neurflow_circuit"}
    torch_rules |= {rule for rule in planned if rule.startswith("cache_activations_")}
    assert torch_rules <= gpu, sorted(torch_rules - gpu)
    for rule in gpu:
        assert planned[rule]["slurm_partition"] == "gpu" and int(planned[rule]["cpus_per_gpu"]) >= 1, rule
    for rule in set(planned) - gpu:
        assert planned[rule].get("slurm_partition") == "cpu" and "cpus_per_gpu" not in planned[rule], rule


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
