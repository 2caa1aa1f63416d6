"""Verdict rules of NAP-1, NAP-2, NAP-4: hand-made cases, and the authors' own counts pass them."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest

from conceptscope.naps import claims

AGGREGATION = {
    "NoAggregation": "none",
    "MaxAggregation": "max",
    "MinMaxAggregation": "min_max",
    "MeanAggregation": "mean",
    "MeanStdAggregation": "mean_std",
}


@pytest.fixture(scope="module")
def authors() -> pd.DataFrame:
    with resources.files("conceptscope").joinpath("resources/nap_pattern_counts.csv").open() as fh:
        t = pd.read_csv(fh)
    return t[(t["Minimum pattern size"] == 5) & (t["Minimum samples"] == 5) & (t["Method"] == "leaf")]


def _counts(rows: list[tuple[str, int, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["layer", "depth", "kind", "method", "n_naps"]).assign(model="m")


def test_nap_1_pass_and_fail_on_hand_made_counts():
    good = {"none": 1, "max": 5, "min_max": 4, "mean": 9, "mean_std": 8}
    bad = {"none": 9, "max": 5, "min_max": 4, "mean": 1, "mean_std": 2}
    rows = [("c1", 0, "conv", m, v) for m, v in good.items()] + [("c2", 1, "conv", m, v) for m, v in bad.items()]
    rows += [("fc", 2, "dense", m, 50) for m in good]
    row = claims.nap_1(_counts(rows))
    assert row["verdict"] == "PASS" and row["measured_value"].startswith("1 of 2")  # half passes
    rows += [("c3", 3, "conv", m, v) for m, v in bad.items()]
    assert claims.nap_1(_counts(rows))["verdict"] == "FAIL"
    assert claims.nap_1(_counts([("fc", 0, "dense", "max", 3)]))["verdict"] == "NOT RUN"


def test_nap_4_follows_the_sign_of_the_depth_trend():
    rising = [(f"l{d}", d, "conv", "max", 3 + 2 * d) for d in range(4)]
    falling = [(f"l{d}", d, "conv", "max", 20 - 2 * d) for d in range(4)]
    assert claims.nap_4(_counts(rising))["verdict"] == "PASS"
    row = claims.nap_4(_counts(falling))
    assert row["verdict"] == "FAIL" and "-1.00" in row["measured_value"]


def test_nap_2_needs_every_split_to_rise():
    sizes = [100, 200, 300]
    up = [("m", "dense", "test", s, 3 + i) for i, s in enumerate(sizes)]
    down = [("m", "dense", "train", s, 9 - i) for i, s in enumerate(sizes)]
    table = pd.DataFrame(up + down, columns=["model", "layer", "split", "size", "n_naps"])
    assert claims.nap_2(table)["verdict"] == "FAIL"
    table = pd.DataFrame(up + [(m, lay, "train", s, n + 1) for m, lay, _, s, n in up], columns=table.columns)
    assert claims.nap_2(table)["verdict"] == "PASS"


def test_the_authors_own_counts_pass_our_rules(authors):
    """Calibration: the operational rules must hold on the paper's own result table."""
    full = authors[authors["Split"].isin(["test", "validation"])]
    full = full[full["Input size"] == full.groupby("Model")["Input size"].transform("max")]
    full = full.drop_duplicates(["Model", "Layer", "Layer aggregation"])
    depth = {m: list(dict.fromkeys(g["Layer"])) for m, g in full.groupby("Model", sort=False)}
    counts = pd.DataFrame(
        {
            "model": full["Model"],
            "layer": full["Layer"],
            "depth": [depth[m].index(layer) for m, layer in zip(full["Model"], full["Layer"], strict=True)],
            "kind": [
                "dense" if lay.startswith(("dense", "flatten", "dropout", "predictions")) else "conv"
                for lay in full["Layer"]
            ],
            "method": full["Layer aggregation"].map(AGGREGATION),
            "n_naps": full["Number of patterns"],
        }
    )
    assert claims.nap_1(counts)["verdict"] == "PASS"
    assert claims.nap_4(counts)["verdict"] == "PASS"
    fig8 = authors[
        (authors["Model"] == "cifar10")
        & (authors["Layer"] == "dense")
        & (authors["Layer aggregation"] == "MeanAggregation")
    ]
    fig8 = fig8.drop_duplicates(["Split", "Input size"])
    sizes = pd.DataFrame(
        {
            "model": "cifar10",
            "layer": "dense",
            "split": fig8["Split"],
            "size": fig8["Input size"],
            "n_naps": fig8["Number of patterns"],
        }
    )
    assert set(sizes["split"]) == {"train", "test"} and len(sizes) == 20
    assert claims.nap_2(sizes)["verdict"] == "PASS"
