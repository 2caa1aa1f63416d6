"""The workflow end to end on config/test.yaml, through Snakemake's command line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import run_snakemake

from conceptscope import activations, claims, data, models

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, config: Path = TEST_CONFIG) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, *args, config=config)


@pytest.fixture(scope="module")
def run_dir(suite_run) -> Path:
    return suite_run


def test_suite_builds_every_target(run_dir):
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    for model, spec in cfg["models"].items():
        assert (run_dir / f"results/figures/models/{model}_training.png").stat().st_size > 0
        metrics = json.loads((run_dir / f"results/models/{model}/metrics.json").read_text())
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
        assert len(metrics["history"]) == spec.get("train", {}).get("epochs", 0)
        for split in spec.get("splits", ["test"]):
            for layer in spec["layers"]:
                cached = activations.read_cache(run_dir / f"results/activations/{model}/{split}/{layer}.h5")
                assert cached.provenance["model"] == model and cached.provenance["split"] == split
    table = pd.read_csv(run_dir / "results/reproduction/claims.csv")
    assert list(table["claim_id"]) == list(claims.claim_registry()["claim_id"])
    # the claims the suite computes on this config: NF-8 needs consecutive convolutions inside a circuit block
    # (the MNIST CNN's blocks are single layers) and NF-10 tau 20 or 24 (the test config's layers are narrow)
    measured = {"NAP-1", "NAP-2", "NAP-3", "NAP-4", "NAP-5", "NMF-1", "NMF-2", "NMF-4", "NMF-5", "NAS-1"}
    measured |= {f"NF-{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9, 11, 12)}
    assert (table[~table["claim_id"].isin(measured)]["verdict"] == "NOT RUN").all()
    assert (table[table["claim_id"].isin(measured)]["verdict"] != "NOT RUN").all()
    for rule in ("prepare_split", "train_model", "plot_training", "cache_activations", "gather_claims"):
        logs = list((run_dir / "logs" / rule).glob("*.log"))
        assert logs and all(p.stat().st_size > 0 for p in logs), rule


def test_second_run_has_nothing_to_do(run_dir):
    res = snakemake(run_dir, "-n")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Nothing to be done" in res.stdout + res.stderr


def test_cache_matches_the_saved_model(run_dir):
    """Recompute a cached layer from the trained weights, outside the workflow."""
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    model, inp, _ = models.load_model(run_dir / "results/models/nap_mnist_cnn/weights.pt")
    images = data.load_split(cfg["datasets"]["digits"], "test", key="datasets.digits")
    x = inp.normalize(images.images(np.arange(len(images)), inp.size, inp.channels))
    with torch.no_grad():
        conv1 = model.conv1(x).numpy()
        pred = model(x).argmax(1).numpy()
    cached = activations.read_cache(run_dir / "results/activations/nap_mnist_cnn/test/conv1.h5")
    np.testing.assert_allclose(cached.arrays["mean"], conv1.mean((2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cached.arrays["full"], conv1.reshape(len(x), -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cached.predictions, pred)
    metrics = json.loads((run_dir / "results/models/nap_mnist_cnn/metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(float((pred == images.labels).mean()))


def test_same_config_and_seed_give_the_same_results(run_dir, tmp_path):
    res = snakemake(tmp_path, "--cores", "2", "results/activations/nap_mnist_cnn/test/fc.h5")
    assert res.returncode == 0, res.stderr[-4000:]
    a = activations.read_cache(run_dir / "results/activations/nap_mnist_cnn/test/fc.h5")
    b = activations.read_cache(tmp_path / "results/activations/nap_mnist_cnn/test/fc.h5")
    np.testing.assert_array_equal(a.arrays["values"], b.arrays["values"])
    np.testing.assert_array_equal(a.predictions, b.predictions)


def _edited_config(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    edit(cfg)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _planned_jobs(res: subprocess.CompletedProcess) -> dict[str, int]:
    stats = res.stdout.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in res.stdout else ""
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)\s*$", stats, re.M) if k != "total"}


def test_adding_a_layer_reruns_only_that_cache(run_dir, tmp_path):
    """A new probed layer adds cache jobs; nothing is retrained."""

    # probed layers are listed in forward order (NAP depth, NeurFlow's blocks top first): pool1 after conv1
    # (in both models of the NAP-3 pair, which compares their layers position by position)
    def edit(c):
        for model in ("nap_mnist_cnn", "nap_mnist_cnn_short"):
            c["models"][model]["layers"].insert(1, "pool1")

    res = snakemake(run_dir, "-n", config=_edited_config(tmp_path, edit))
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = _planned_jobs(res)
    assert jobs.get("cache_activations_nap_mnist_cnn") == 2, res.stdout[-3000:]  # train and test
    assert jobs.get("cache_activations_nap_mnist_cnn_short") == 1, res.stdout[-3000:]
    assert "train_model" not in jobs and "cache_activations_timm_resnet18" not in jobs


def test_unknown_layer_fails_before_any_job(tmp_path):
    cfg = _edited_config(tmp_path, lambda c: c["models"]["nap_mnist_cnn"].update(layers=["conv1", "conv7"]))
    res = snakemake(tmp_path, "--cores", "1", config=cfg)
    assert res.returncode != 0
    err = res.stdout + res.stderr
    assert "conv7" in err and "closest conv2, conv1" in err and "python -m conceptscope.models" in err
    assert not (tmp_path / "results").exists()


def test_misspelt_config_key_fails_before_any_job(tmp_path):
    cfg = _edited_config(tmp_path, lambda c: c["models"]["nap_mnist_cnn"]["train"].update(epochz=3))
    res = snakemake(tmp_path, "--cores", "1", config=cfg)
    assert res.returncode != 0
    assert "epochz" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_lint_and_format_are_clean(tmp_path):
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    snakefmt = shutil.which("snakefmt") or str(Path(sys.executable).with_name("snakefmt"))
    fmt = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/rules"], capture_output=True, text=True, cwd=ROOT)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_nap_tables_have_one_row_per_layer_method_and_size_split(run_dir):
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    layers = cfg["models"]["nap_mnist_cnn"]["layers"]
    fig6 = pd.read_csv(run_dir / "results/figures/naps/fig6_nap_mnist_cnn_disentanglement.csv")
    assert sorted(zip(fig6["layer"], fig6["method"], strict=True)) == sorted(
        (layer, m) for layer in layers for m in ("none", "max", "min_max", "mean", "mean_std")
    )
    fig8 = pd.read_csv(run_dir / "results/figures/naps/fig8_nap_mnist_cnn_input_size.csv")
    sizes = cfg["naps"]["input_size"]["sizes"]
    assert sorted(zip(fig8["layer"], fig8["size"], fig8["split"], strict=True)) == sorted(
        (layer, s, split) for layer in layers for s in sizes for split in ("train", "test")
    )
    table = pd.read_csv(run_dir / "results/reproduction/claims.csv").set_index("claim_id")
    assert set(table.loc[["NAP-1", "NAP-2", "NAP-3", "NAP-4", "NAP-5"], "verdict"]) <= {"PASS", "FAIL"}
    assert "nap_mnist_cnn_short (acc" in table.loc["NAP-3", "detail"]  # the pair of config/test.yaml, compared
    html = (run_dir / "results/naps/nap_mnist_cnn/browser.html").read_text()
    assert "https://" not in html and "data:image/png;base64" in html


def test_changing_a_nap_parameter_reruns_only_nap_jobs(run_dir, tmp_path):
    cfg = _edited_config(tmp_path, lambda c: c["naps"].update(normalization="authors"))
    res = snakemake(run_dir, "-n", config=cfg)
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = _planned_jobs(res)
    assert jobs.get("extract_naps") == 9, res.stdout[-3000:]  # 3 models x 3 layers
    assert not [j for j in jobs if j.startswith(("cache_activations", "train_model", "prepare_split"))], jobs


def test_a_gallery_or_claim_key_reruns_no_clustering(run_dir, tmp_path):
    """Only the keys HDBSCAN reads rerun it: the galleries' and the claims' keys rerun their own jobs."""

    def edit(c):
        c["naps"].update(purity_permutations=100, top_naps=2, accuracy_pairs=[])

    res = snakemake(run_dir, "-n", config=_edited_config(tmp_path, edit))
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = _planned_jobs(res)
    assert "fig6_disentanglement" in jobs and "nap_claims" in jobs, jobs
    assert not {"extract_naps", "nap_input_sizes"} & set(jobs), jobs


@pytest.fixture
def paper_standins(tmp_path) -> Path:
    """config/paper/naps.yaml with its data roots pointing at tiny stand-ins."""
    from standins import write_cifar, write_image_folder, write_mnist

    write_mnist(tmp_path / "mnist")
    write_cifar(tmp_path / "cifar10")
    write_image_folder(tmp_path / "imagenet", "val", ["n01440764", "n01443537"])
    cfg = yaml.safe_load((ROOT / "config/paper/naps.yaml").read_text())
    for ds in ("mnist", "cifar10", "imagenet"):
        cfg["datasets"][ds]["root"] = str(tmp_path / ds)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_paper_config_dry_run_with_the_data_and_error_without(paper_standins, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, "-n", config=paper_standins)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = _planned_jobs(res)
    assert jobs.get("extract_naps") and jobs.get("nap_paper_comparison") == 1, jobs
    cfg = yaml.safe_load(paper_standins.read_text())
    cfg["datasets"]["imagenet"]["root"] = str(tmp_path / "nowhere")
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(cfg))
    res = snakemake(work, "-n", config=missing)
    assert res.returncode != 0
    assert "datasets.imagenet.root" in res.stdout + res.stderr and "nowhere" in res.stdout + res.stderr


def test_nmf_outputs_are_consistent(run_dir):
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    layers = cfg["nmf"]["layers"]["timm_resnet18"]
    res = torch.load(run_dir / "results/nmf/timm_resnet18/coupled.pt", weights_only=False)
    assert res["layers"] == layers and res["F"].shape == (cfg["nmf"]["n_components"], 60)
    assert (res["F"] >= 0).all() and all((m >= 0).all() for m in [*res["P"], *res["O"]])
    # unit-norm columns of the fitted (block-scaled) problem: in the original scale each block's columns
    # have its Frobenius norm (nmf.block_scaling: frobenius, the default)
    assert res["block_scaling"] == "frobenius"
    for m, norm in zip([*res["P"], *res["O"]], res["block_norms"], strict=True):
        torch.testing.assert_close(m.norm(dim=0), torch.full((m.shape[1],), float(norm)), rtol=1e-4, atol=1e-4)
    losses = pd.read_csv(run_dir / "results/nmf/timm_resnet18/coupled_losses.csv")["objective"].to_numpy()
    assert (np.diff(losses) <= 1e-6 * losses[:-1]).all()
    fig3 = pd.read_csv(run_dir / "results/figures/nmf/fig3_timm_resnet18_eigen.csv")
    assert sorted(zip(fig3["source"], fig3["layer"], strict=True)) == sorted(
        (s, layer) for s in ("coupled", "single") for layer in layers
    )
    tcav = pd.read_csv(run_dir / "results/figures/nmf/fig6_timm_resnet18_tcav.csv")
    assert tcav["tcav_mean"].between(0, 1).all() and set(tcav["layer"]) == set(layers)
    table = pd.read_csv(run_dir / "results/reproduction/claims.csv").set_index("claim_id")
    assert set(table.loc[["NMF-1", "NMF-2"], "verdict"]) <= {"PASS", "FAIL"}
    assert len(pd.read_csv(run_dir / "results/figures/nmf/table2_timm_resnet18_group_sparse.csv")) == 4


def test_nas_outputs_are_consistent(run_dir):
    from conceptscope import nas

    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    table = pd.read_csv(run_dir / "results/reproduction/claims.csv").set_index("claim_id")
    assert table.loc["NAS-1", "verdict"] == "PASS", table.loc["NAS-1"].to_dict()
    for model in cfg["nas"]["models"]:
        layers = cfg["models"][model]["layers"]
        counts = pd.read_csv(run_dir / f"results/figures/nas/taxonomy_{model}_counts.csv")
        assert sorted(set(counts["layer"])) == sorted(layers) and counts["consistent"].all()
        for layer in layers:
            s = nas.load_summary(run_dir / f"results/nas/{model}/{layer}/summary.h5")
            assert s.values.shape[0] == 40  # 4 per class x 10 classes of the 60 test images
            assert np.all(s.counts.sum((1, 2)) == 40) and s.n_ranges.max() <= cfg["nas"]["n_ranges"]
            cache = activations.read_cache(run_dir / f"results/activations/{model}/test/{layer}.h5")
            values = nas.unit_activations(cache.arrays, cache.kind, "mean")[s.positions]
            np.testing.assert_allclose(s.values, values)
            tax = pd.read_csv(run_dir / f"results/nas/{model}/{layer}/taxonomy.csv")
            got = counts[counts["layer"] == layer].set_index("type")["count"]
            assert all(got[t] == tax[t].sum() for t in nas.NEURON_TYPES)
            index = pd.read_csv(run_dir / f"results/figures/nas/fig3-2_{model}_{layer}_neurons/index.csv")
            for t, g in index.groupby("type"):
                assert len(g) <= cfg["nas"]["neurons_per_type"] and tax.loc[g["unit"], t].all()
            html = (run_dir / f"results/nas/{model}/{layer}/summary.html").read_text()
            assert html.count('"unit":') == s.n_units


def test_nas_paper_config_dry_run(tmp_path):
    """config/paper/nas.yaml on stand-in QuickDraw and ImageNet folders plans every NAS job."""
    from standins import write_image_folder, write_quickdraw

    cfg = yaml.safe_load((ROOT / "config/paper/nas.yaml").read_text())
    write_quickdraw(tmp_path / "quickdraw", [f"class{i}" for i in range(20)])
    write_image_folder(tmp_path / "imagenet", "val", cfg["datasets"]["imagenet10"]["classes"])
    cfg["datasets"]["quickdraw"] |= {"root": str(tmp_path / "quickdraw"), "train_per_class": 8, "test_per_class": 4}
    cfg["datasets"]["imagenet10"]["root"] = str(tmp_path / "imagenet")
    path = tmp_path / "nas.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, "-n", config=path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = _planned_jobs(res)
    n_layers = sum(len(cfg["models"][m]["layers"]) for m in cfg["nas"]["models"])
    assert jobs.get("nas_summary") == n_layers and jobs.get("nas_layer_views") == n_layers, jobs
    assert jobs.get("nas_taxonomy") == 2 and jobs.get("train_model") == 2, jobs


def test_nmf_paper_config_computes_nmf_3_on_cifar100(tmp_path):
    """config/paper/nmf.yaml on a stand-in CIFAR-100 (60 classes in 20 superclasses of 3), shortened: NMF-3,
    NOT RUN on the digits of the default suite, is judged from the data's superclasses."""
    from standins import write_cifar

    write_cifar(tmp_path / "cifar100", kind="cifar100", n=60)
    cfg = yaml.safe_load((ROOT / "config/paper/nmf.yaml").read_text())
    cfg["datasets"]["cifar100"]["root"] = str(tmp_path / "cifar100")
    cfg["device"] = "cpu"
    for spec in cfg["models"].values():
        spec["train"]["epochs"] = 1
    cfg["nmf"].update(n_components=12, max_iter=5, knn=5, models=["resnet18_cifar"])  # one model is enough here
    for key in ("layers", "eigen_k"):
        cfg["nmf"][key].pop("vgg11_cifar")
    path = tmp_path / "nmf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, "--cores", "2", "results/reproduction/nmf_claims.csv", config=path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    rows = pd.read_csv(work / "results/reproduction/nmf_claims.csv").set_index("claim_id")
    assert rows.at["NMF-3", "verdict"] in ("PASS", "FAIL"), rows.at["NMF-3", "detail"]
    assert "superclass" in rows.at["NMF-3", "detail"]
    table1 = pd.read_csv(work / "results/figures/nmf/table1_resnet18_cifar_factors.csv")
    assert {"superclass", "top_share_superclass", "superclass_chance"} <= set(table1.columns)
    # the chance that 3 of the 60 classes share a superclass: 20 superclasses of 3 classes, 20 / C(60, 3)
    assert table1["superclass_chance"].iloc[0] == pytest.approx(20 / 34220)


def test_neurflow_paper_config_dry_run(tmp_path):
    """config/paper/neurflow.yaml on a stand-in ImageNet folder plans every circuit and every evaluation job."""
    from standins import write_image_folder

    cfg = yaml.safe_load((ROOT / "config/paper/neurflow.yaml").read_text())
    write_image_folder(tmp_path / "imagenet", "val", [f"n{i:08d}" for i in range(1000)])
    cfg["datasets"]["imagenet"]["root"] = str(tmp_path / "imagenet")
    path = tmp_path / "neurflow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    work.mkdir()
    res = snakemake(work, "-n", config=path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = _planned_jobs(res)
    nf = cfg["neurflow"]
    levels = sum(len(cfg["models"][m]["layers"]) - 1 for m in nf["models"])  # every circuit block but the bottom
    assert jobs.get("neurflow_circuit") == len(nf["models"]) * len(nf["classes"]), jobs
    assert jobs.get("neurflow_knockout") == levels and jobs.get("neurflow_attribution") == levels, jobs
    for rule in ("neurflow_fidelity", "neurflow_l2", "neurflow_crops", "neurflow_tables"):
        assert jobs.get(rule) == len(nf["models"]), (rule, jobs)
    assert nf["tau"] == 16 and nf["k"] == 50 and nf["n_steps"] == 50 and nf["evaluation"]["n_random"] == 100


def test_neurflow_evaluation_outputs_are_consistent(run_dir):
    """Every NeurFlow evaluation table of the test config (Fig. 4-6, 10-12, 16-18, Tables 3-5) with its figure."""
    cfg = yaml.safe_load(TEST_CONFIG.read_text())["neurflow"]
    ev, model = cfg["evaluation"], cfg["models"][0]
    fig = run_dir / "results/figures/neurflow"
    levels = ["fc", "pool2"]  # the circuit fc -> pool2 -> conv1: levels by their upper block
    for name in ["fig5_{m}_fidelity", "fig16_{m}_tau", "fig17_{m}_extended", "fig10_{m}_timing"]:
        assert (fig / f"{name.format(m=model)}.png").stat().st_size > 0
    opt = pd.concat([pd.read_csv(fig / f"fig4_{model}_{layer}_optimality.csv") for layer in levels])
    assert set(opt["layer"]) == set(levels) and set(opt["tau"]) == set(ev["optimality_tau"])
    per = opt.groupby(["layer", "class_index", "target", "tau", "kind"]).size().unstack("kind")
    assert (per["core"] == 1).all() and (per["random"] == ev["n_random"]).all()
    assert opt["loss"].between(0, 1).all()
    methods = pd.read_csv(fig / f"fig11_{model}_pool2_methods.csv")
    assert set(methods["size"]) == {0, *ev["subset_sizes"]}
    assert {"integrated_gradients", "saliency", "knockoff"} <= set(methods["method"])
    fid = pd.read_csv(fig / f"fig16_{model}_tau.csv")
    np.testing.assert_allclose(fid["relative_accuracy"], fid["accuracy"] / fid["base_accuracy"])
    k = pd.read_csv(fig / f"table5_{model}_k_ablation.csv")
    reference = k[k["k"] == k["k_reference"]]
    assert (k["overlap"] <= k["tau"]).all() and len(reference) and (reference["overlap"] == reference["tau"]).all()
    timing = pd.read_csv(fig / f"fig10_{model}_timing.csv").set_index("method")
    assert timing.loc["integrated_gradients", "ratio_to_ig"] == pytest.approx(1.0)
    crops = pd.read_csv(fig / f"fig18_{model}_crops.csv")
    np.testing.assert_allclose(crops.groupby("layer")["share"].sum(), 1.0)


def test_report_holds_every_figure_and_the_claims_table(run_dir):
    """`snakemake --report`: every figure the run produced and the claims page, no docutils messages, renders."""
    import os

    from browser import chromium_or_skip, dump_dom

    report = run_dir / "results" / "report.html"
    res = snakemake(run_dir, "--report", str(report))
    assert res.returncode == 0, res.stderr[-3000:]
    text = report.read_text()
    figures = sorted((run_dir / "results" / "figures").rglob("*.png"))
    assert figures and not [p for p in figures if os.path.basename(p) not in text]
    assert "claims.html" in text
    for message in ("System Message", "Docutils", "(ERROR/", "(WARNING/", "Undefined substitution"):
        assert message not in text, message
    # every report item's caption (the report embeds them as JSON) names its paper figure or table, or says it
    # is none, and gives the settings the run used, its Jinja fully rendered
    results = json.loads(re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', text, re.S).group(1))
    missing = sorted({p.relative_to(run_dir).as_posix() for p in figures} - set(results))
    assert not missing, f"figures that are no report item: {missing}"
    assert any(p.endswith("claims.html") for p in results)
    for path, item in results.items():
        caption = item["caption"]
        plain = re.sub(r"<[^>]+>", "", caption)
        assert "Settings:" in plain, path
        assert "{{" not in caption and "{%" not in caption and "}}" not in caption, path
        assert re.search(r"\bFig\. \d|\bTable \d|not a paper figure", plain, re.I), path
    dom = dump_dom(chromium_or_skip(), report.resolve().as_uri(), run_dir / "chromium-profile")
    assert 'id="loading-screen" style="display: none;"' in dom  # the report's app rendered
    assert "Claims" in dom and "NeurFlow" in dom
