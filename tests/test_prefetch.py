"""`snakemake prefetch`: the pretrained weights and data archives of a config, fetched where there is internet."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_snakemake

from conceptscope import data, jobs, models

MODELS = {
    "vit": {"spec": "timm:vit_tiny_patch16_224", "pretrained": True},
    "mine": {"spec": "local:nap_mnist_cnn", "pretrained": False},
}


def _datasets(tmp_path: Path) -> dict:
    return {
        "mnist": {"kind": "mnist", "root": str(tmp_path / "mnist"), "download": True},
        "digits": {"kind": "digits"},
    }


def test_offline_prefetch_names_every_missing_item_its_cache_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_reachable", lambda host: False)  # offline
    monkeypatch.setattr(models, "_cached_weights", lambda source, name: None)

    def no_network(kind, root):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(data, "_download", no_network)
    done = tmp_path / "prefetch.txt"
    with pytest.raises(RuntimeError) as err:
        jobs.prefetch(models_config=MODELS, datasets=_datasets(tmp_path), done=done)
    msg = str(err.value)
    assert "2 item(s) could not be fetched" in msg
    assert "models.vit (timm:vit_tiny_patch16_224)" in msg and "Hugging Face cache" in msg
    assert f"datasets.mnist (mnist): could not download into {tmp_path / 'mnist'}" in msg
    assert "snakemake prefetch --cores 1 --configfile" in msg and "login node" in msg
    assert "models.mine" not in msg and not done.exists()


def test_online_prefetch_fetches_into_the_caches_and_lists_them(tmp_path, monkeypatch):
    cache = {}
    weights = tmp_path / "hub" / "model.safetensors"

    def download(spec, n_classes, pretrained, **kw):  # stand-in for the download that build_model triggers
        assert pretrained
        cache["vit"] = weights
        return None, None

    monkeypatch.setattr(models, "build_model", download)
    monkeypatch.setattr(models, "_cached_weights", lambda source, name: cache.get("vit"))
    fetched = []
    monkeypatch.setattr(data, "_download", lambda kind, root: fetched.append((kind, root)))
    done = tmp_path / "prefetch.txt"
    jobs.prefetch(models_config=MODELS, datasets=_datasets(tmp_path), done=done)
    text = done.read_text()
    assert f"models.vit (timm:vit_tiny_patch16_224): {weights}" in text
    assert fetched == [("mnist", tmp_path / "mnist")] and "datasets.mnist (mnist)" in text
    # a second run finds the weights cached and does not build the model again
    monkeypatch.setattr(models, "build_model", lambda *a, **k: pytest.fail("downloaded twice"))
    jobs.prefetch(models_config=MODELS, datasets={}, done=done)


def test_prefetch_is_one_local_job_of_the_workflow(tmp_path):
    res = run_snakemake(tmp_path, "-n", "prefetch")
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout + res.stderr
    assert "prefetch        1" in out and "total           1" in out
