"""Classes NeurFlow cannot explain (issue #11): refused at parse time, or outputs that say so.

- ``neurflow.classes: [0, 2, 7]`` on a 3-class data set fails when the config is read, naming the key,
  the value, the class count and the data set (it used to fail late: "no image ... predicted as class 7").
- A class that exists but that no image of the split is predicted as does not stop the suite: its circuit
  job writes a circuit with status "no images", the views and evaluations write outputs saying so, and
  NF-12 counts only the classes that ran (NOT RUN when none did). The tiny model here never predicts 7.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from browser import chromium_or_skip, dump_dom
from PIL import Image
from snakemake.utils import validate

from conceptscope import jobs, models
from conceptscope.activations import read_cache
from conceptscope.neurflow import claims
from conceptscope.neurflow import jobs as nf_jobs
from conceptscope.settings import ConfigError
from conceptscope.workflow import check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
LAYERS = ["fc", "pool2", "conv1"]  # nap_mnist_cnn, top first
NEVER = 7  # no image is predicted as this class


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["datasets"]["digits"]["subset"]["test"] = {"first_n": 24}
    validate(cfg, SCHEMA)
    return cfg


def test_a_class_beyond_the_data_sets_classes_fails_at_parse_time(config, tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b", "c"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(tmp_path / split / cls / "1.png")
    cfg = copy.deepcopy(config)
    cfg["datasets"]["three"] = {"kind": "imagefolder", "root": str(tmp_path), "splits": ["train", "test"]}
    validate(cfg, SCHEMA)
    cfg["models"]["three_cnn"] = copy.deepcopy(cfg["models"]["nap_mnist_cnn"]) | {"dataset": "three"}
    cfg["neurflow"] |= {"models": ["three_cnn"], "classes": [0, 2, 7]}
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert (
        "neurflow.classes: [7] out of [0, 2, 7] are not classes of data set three (models.three_cnn), "
        "which has 3 classes (0 to 2)"
    ) in str(err.value)
    cfg["neurflow"]["classes"] = [0, 2]
    check_config(cfg)


@pytest.fixture(scope="module")
def run(config, tmp_path_factory):
    """The jobs of the DAG for class NEVER and for the class predicted most, on 24 digits."""
    out = tmp_path_factory.mktemp("neurflow_status")
    dataset = {"id": "digits", "config": config["datasets"]["digits"]}
    manifest = out / "test.csv"
    jobs.prepare_split(dataset=dataset, split="test", manifest=manifest)
    torch.manual_seed(0)
    model, inp = models.build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1)
    with torch.no_grad():
        model.fc.bias[NEVER] = -1e4  # never the largest logit
    weights = out / "weights.pt"
    meta = {"spec": "local:nap_mnist_cnn", "n_classes": 10, "in_channels": 1, "pretrained": False, "model": "nap"}
    models.save_model(weights, model, inp, meta)
    caches = [out / f"{layer}.h5" for layer in LAYERS]
    jobs.cache_activations(
        model_id="nap",
        weights=weights,
        dataset=dataset,
        split="test",
        manifest=manifest,
        layers=LAYERS[::-1],
        outputs=[str(c) for c in caches[::-1]],
        full_maps=[],
        batch_size=32,
        device="cpu",
        seed=0,
    )
    predictions = read_cache(caches[0], keys=[]).predictions
    assert NEVER not in predictions
    common = int(pd.Series(predictions).mode()[0])
    settings = config["neurflow"]
    files = {}
    for cls in (NEVER, common):
        d = out / f"class{cls}"
        d.mkdir()
        f = {
            "circuit": d / "circuit.json",
            "arrays": d / "levels.pt",
            "masking": d / "masking.csv",
            "debug": d / "debugging_metric.csv",
            "fig9": d / "fig9.png",
        }
        shared = {"weights": weights, "dataset": dataset, "manifest": manifest, "settings": settings}
        shared |= {"layers": LAYERS, "device": "cpu", "layouts": {}, "circuit": f["circuit"], "arrays": f["arrays"]}
        nf_jobs.neurflow_circuit(model_id="nap", cache=caches[0], split="test", class_index=cls, **shared)
        nf_jobs.neurflow_evaluate(
            caches=caches, seed=0, masking=f["masking"], debug=f["debug"], png=f["fig9"], **shared
        )
        files[cls] = f
    d = out / f"class{NEVER}"
    files[NEVER] |= {"fig7": d / "fig7.png", "html": d / "circuit.html", "labelling": d / "labelling"}
    nf_jobs.neurflow_views(
        circuit=files[NEVER]["circuit"],
        weights=weights,
        dataset=dataset,
        manifest=manifest,
        settings=settings,
        png=files[NEVER]["fig7"],
        html=files[NEVER]["html"],
        labelling=files[NEVER]["labelling"],
    )
    return files, common


def test_a_class_without_images_gets_a_circuit_that_says_so(run):
    files, _ = run
    c = json.loads(files[NEVER]["circuit"].read_text())
    assert c["status"] == "no images" and c["class_index"] == NEVER and c["class_name"] == str(NEVER)
    assert f"predicted as class {NEVER}" in c["reason"] and "digits/test" in c["reason"]
    assert c["nodes"] == [] and c["edges"] == [] and c["positions"] == [] and c["layers"] == LAYERS
    saved = torch.load(files[NEVER]["arrays"], weights_only=False)
    assert saved["levels"] == [] and len(saved["positions"]) == 0


def test_its_views_and_evaluations_say_so(run):
    files, _ = run
    f = files[NEVER]
    mask = pd.read_csv(f["masking"])
    assert len(mask) == 1 and mask.loc[0, "status"] == "no images" and mask.loc[0, "class_index"] == NEVER
    assert mask[["group", "drop", "random_drop_mean", "layer", "node"]].isna().all().all()
    debug = pd.read_csv(f["debug"])
    assert debug.empty and list(debug.columns)[:3] == ["layer", "node", "position"]
    for png in (f["fig7"], f["fig9"]):
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300
    assert "no images" in f["html"].read_text()
    assert "no images" in (f["labelling"] / "status.txt").read_text()
    assert pd.read_csv(f["labelling"] / "index.csv").empty


def test_its_page_renders_in_headless_chromium(run, tmp_path):
    binary = chromium_or_skip()
    dom = dump_dom(binary, run[0][NEVER]["html"].resolve().as_uri(), tmp_path / "profile")
    assert 'data-ready="1"' in re.search(r"<body([^>]*)>", dom).group(1)
    assert re.search(r'<p id="status" class="status">no images</p>', dom)


def test_nf12_counts_only_the_classes_that_ran(run):
    files, common = run
    ran = pd.read_csv(files[common]["masking"])
    assert len(ran) > 0 and "status" not in ran.columns  # a built circuit's table is unchanged
    alone = claims.nf_12(pd.read_csv(files[NEVER]["masking"]))
    assert alone["verdict"] == "NOT RUN"
    why = f"no image of digits/test is predicted as class {NEVER}; pick another class in neurflow.classes"
    assert alone["detail"] == f"no class has neuron groups; not run: nap class {NEVER}: no images ({why})"
    both = pd.concat([ran, pd.read_csv(files[NEVER]["masking"])], ignore_index=True)
    row = claims.nf_12(both)
    assert row == claims.nf_12(ran) | {"detail": row["detail"]}  # the same verdict and value as without the class
    assert row["detail"].startswith(claims.nf_12(ran)["detail"])
    assert row["detail"].endswith(f"Counts only the classes that ran; not run: nap class {NEVER}: no images ({why})")
