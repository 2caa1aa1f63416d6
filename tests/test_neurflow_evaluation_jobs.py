"""NeurFlow evaluation jobs: the per-model gathering of timing, overlaps and k-ablation tables (Fig. 10)."""

from __future__ import annotations

import pandas as pd
import pytest

from conceptscope.neurflow.eval_claims import PAPER_SECONDS
from conceptscope.neurflow.evaluation_jobs import neurflow_tables


def _timing(layer: str, rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(0, 3, m, cpu, cpu / 2, status) for m, cpu, status in rows],
        columns=["class_index", "target", "method", "cpu_seconds", "wall_seconds", "status"],
    ).assign(model="m", layer=layer)


def test_timing_ratio_compares_each_method_with_ig_on_the_same_targets(tmp_path):
    """LRP refused on the expensive layer is compared with IG where it ran, not with IG's mean over all layers."""
    cheap = _timing("fc", [("integrated_gradients", 1.0, "ok"), ("lrp", 0.5, "ok"), ("saliency", 0.1, "ok")])
    dear = _timing(
        "layer4", [("integrated_gradients", 9.0, "ok"), ("lrp", float("nan"), "refused: skip"), ("saliency", 0.9, "ok")]
    )
    paths = {}
    for name, table in (("a", cheap), ("b", dear)):
        paths[name] = tmp_path / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    other = pd.DataFrame({"model": ["m"], "layer": ["fc"], "class_index": [0], "target": [3], "tau": [2]})
    overlaps = other.assign(pair="neuronmct-neurflow", f1=1.0)
    kab = other.assign(k=4, k_reference=4, overlap=2)
    overlaps.to_csv(tmp_path / "o.csv", index=False)
    kab.to_csv(tmp_path / "k.csv", index=False)
    out = {f"{n}_{e}": tmp_path / f"{n}.{e}" for n in ("fig10", "table3", "table5") for e in ("csv", "png")}
    neurflow_tables(
        model_id="m",
        timing=[paths["a"], paths["b"]],
        overlaps=[tmp_path / "o.csv"],
        k_ablation=[tmp_path / "k.csv"],
        **out,
    )
    fig10 = pd.read_csv(out["fig10_csv"]).set_index("method")
    assert fig10.loc["lrp", "ratio_to_ig"] == pytest.approx(0.5 / 1.0)  # where LRP ran, IG took 1.0 s
    assert fig10.loc["saliency", "ratio_to_ig"] == pytest.approx(0.5 / 5.0)  # both layers: 0.5 s vs 5.0 s
    assert fig10.loc["integrated_gradients", "ratio_to_ig"] == pytest.approx(1.0)
    assert "refused on ['layer4']" in fig10.loc["lrp", "status"]
    paper = PAPER_SECONDS["lrp"] / PAPER_SECONDS["integrated_gradients"]
    assert fig10.loc["lrp", "paper_ratio"] == pytest.approx(paper)
    for key in ("fig10_png", "table3_png", "table5_png"):
        assert out[key].stat().st_size > 0
