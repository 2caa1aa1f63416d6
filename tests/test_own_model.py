"""The README's own-model example (config/examples/own_model.yaml) runs end to end: a timm model by name, random
weights trained here, on an image folder the test writes, through all four methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw
from snakemake.utils import validate
from test_workflow import ROOT, snakemake

from conceptscope.workflow import check_config

EXAMPLE = ROOT / "config" / "examples" / "own_model.yaml"
SHAPES = {"blue_triangle": (40, 60, 220), "green_circle": (30, 180, 60), "red_square": (210, 40, 40)}


def write_shapes(root: Path, per_split: dict[str, int], size: int = 32, seed: int = 0) -> None:
    """<root>/<split>/<class>/*.png: a coloured shape per class at a random place on a noisy grey ground."""
    rng = np.random.default_rng(seed)
    for split, n in per_split.items():
        for cls, colour in SHAPES.items():
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                ground = rng.integers(90, 150, (size, size, 3), dtype=np.uint8)
                im = Image.fromarray(ground)
                draw = ImageDraw.Draw(im)
                s = int(rng.integers(10, 16))
                x, y = (int(v) for v in rng.integers(1, size - s - 1, 2))
                box = [x, y, x + s, y + s]
                if cls == "red_square":
                    draw.rectangle(box, fill=colour)
                elif cls == "green_circle":
                    draw.ellipse(box, fill=colour)
                else:
                    draw.polygon([(x, y + s), (x + s, y + s), (x + s // 2, y)], fill=colour)
                im.save(folder / f"{i:03d}.png")
    (root / "train" / ".ipynb_checkpoints").mkdir(exist_ok=True)  # skipped, not a class


@pytest.fixture(scope="module")
def own_config(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("own")
    write_shapes(work / "data", {"train": 16, "test": 8})
    cfg = yaml.safe_load(EXAMPLE.read_text())
    cfg["datasets"]["mine"]["root"] = str(work / "data")
    cfg["device"] = "cpu"
    # the example's settings, scaled to the test budget
    cfg["models"]["own"]["train"]["epochs"] = 4
    cfg["nmf"] |= {"n_components": 4, "max_iter": 5, "knn": 5, "per_factor": 3, "tcav": {"factors": 0}}
    cfg["nas"] |= {"per_class": 4, "n_ranges": 6, "max_rows": 8}
    cfg["nas"]["taxonomy"] = {
        "min_top": 1,
        "min_low": 1,
        "min_sample": 1,
        "eta_chance": 1.0,
    }  # 12 images: see test.yaml
    cfg["neurflow"] |= {"max_images": 3, "tau": 3, "k": 5, "n_steps": 4, "n_random": 2, "debug_images": 4}
    cfg["neurflow"]["evaluation"] = {
        "n_targets": 2,
        "optimality_tau": [2, 4],
        "n_random": 2,
        "subset_sizes": [1, 2, 4],
        "n_subsets": 3,
        "fidelity_tau": [2, 3],
        "fidelity_random": 1,
        "k_values": [3],
        "mct_steps": 3,
        "smoothgrad_samples": 2,
        "gradient_shap_samples": 2,
    }
    path = work / "own.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_example_config_is_valid_and_checked(own_config):
    cfg = yaml.safe_load(own_config.read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    check_config(cfg)


@pytest.mark.workflow
def test_the_example_runs_all_four_methods(own_config):
    work = own_config.parent
    res = snakemake(work, "--cores", "2", config=own_config)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    results = work / "results"
    for path in [
        "figures/naps/fig6_own_disentanglement.csv",
        "naps/own/browser.html",
        "figures/nmf/fig3_own_eigen.csv",
        "figures/nas/taxonomy_own_counts.csv",
        "nas/own/layer3/summary.html",
        "neurflow/own/class0/circuit.json",
    ]:
        assert (results / path).stat().st_size > 0, path
    manifest = pd.read_csv(results / "data/mine/test.csv")
    assert sorted(set(manifest["class_name"])) == sorted(SHAPES)  # the hidden folder is no class
    table = pd.read_csv(results / "reproduction/claims.csv")
    verdicts = dict(zip(table["claim_id"], table["verdict"], strict=True))
    assert all(verdicts[c] in ("PASS", "FAIL") for c in ("NAP-1", "NAP-4", "NMF-1", "NMF-2", "NAS-1")), verdicts
