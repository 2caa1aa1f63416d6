"""The atlas page's job on hand-made tables: each card gets its own counterparts, faithfulness row, thumbnail and
the planted concepts it is the best match of (of its own disentanglement), and the hrefs are relative to the page."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conceptscope import data
from conceptscope.atlas.concepts import Concept, save_concepts
from conceptscope.atlas.jobs import atlas_alignment, atlas_recovery
from conceptscope.atlas.site import atlas_page

DATASET = {"id": "digits", "config": {"kind": "digits", "test_fraction": 0.25, "split_seed": 0}}


@pytest.fixture(scope="module")
def split():
    return data.load_split(DATASET["config"], "test")


def _page_data(path) -> dict:
    text = path.read_text()
    return json.loads(re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', text, re.S).group(1))


def test_the_page_data_of_one_model(split, tmp_path):
    ids = split.sample_ids

    def concept(method, layer, name, pos, variant="", **meta):
        pos = np.asarray(pos, dtype=np.int64)
        return Concept(method, "m", layer, name, pos, ids[pos], ids, "test", variant, meta)

    concepts = [
        concept("naps", "conv", "nap0", [0, 1, 2, 3], "max"),
        concept("naps", "conv", "nap1", [10, 11, 12], "max"),
        concept("naps", "conv", "nap1", [10, 11, 12], "mean"),  # same name, other disentanglement
        concept("nmf", "coupled", "factor0", [0, 1, 2, 5], "coupled", layers=["conv"]),
        concept("nmf", "coupled", "factor1", [], "coupled", layers=["conv"]),  # a factor without images
    ]
    groups = [["naps", "max", "m", "conv"], ["naps", "mean", "m", "conv"], ["nmf", "coupled", "m", "coupled"]]
    catalog = tmp_path / "atlas/m/concepts.json"
    save_concepts(concepts, catalog, model="m", groups=groups)
    figures = tmp_path / "figures/atlas/alignment_m"
    summary = tmp_path / "figures/atlas/alignment_m.csv"
    atlas_alignment(
        catalog=catalog,
        model_id="m",
        layers=["conv"],
        nap_method="max",
        settings={"n_permutations": 10},
        seed=0,
        summary=summary,
        figures=figures,
    )
    manifest = tmp_path / "test.csv"
    carriers = np.zeros(len(ids), dtype=bool)
    carriers[[10, 11, 12]] = True
    pd.DataFrame(
        {"position": np.arange(len(ids)), "sample_id": ids, "class_name": split.labels.astype(str)}
        | {"concept_stamp": carriers}
    ).to_csv(manifest, index=False)
    recovery = tmp_path / "figures/atlas/recovery_m.csv"
    atlas_recovery(
        catalog=catalog,
        manifest=manifest,
        settings={"recovery_permutations": 20},
        seed=0,
        csv=recovery,
        png=recovery.with_suffix(".png"),
    )
    faith = tmp_path / "figures/atlas/faithfulness.csv"
    pd.DataFrame(
        [
            {"model": "m", "layer": "conv", "method": "naps", "concept": "nap0", "observed": 2.0}
            | {"random_mean": 0.5, "p_value": 0.1, "set_mean": 1.5, "set_p_value": 0.2},
            {"model": "m", "layer": "conv", "method": "nmf", "concept": "factor1", "observed": np.nan}
            | {"random_mean": np.nan, "p_value": np.nan, "set_mean": np.nan, "set_p_value": np.nan},
        ]
    ).to_csv(faith, index=False)
    claims = tmp_path / "reproduction/claims.csv"
    claims.parent.mkdir(parents=True)
    pd.DataFrame(
        [{"claim_id": "NAP-1", "figure": "fig6", "paper_value": "a", "measured_value": "b", "verdict": "PASS"}]
    ).assign(detail="").to_csv(claims, index=False)
    page = tmp_path / "index.html"
    browser = tmp_path / "naps/m/browser.html"
    atlas_page(
        models={
            "m": {
                "dataset": DATASET,
                "layers": ["conv"],
                "methods": ["naps", "nmf"],
                "links": [{"label": "NAP browser", "href": str(browser)}],
                "method_links": {"naps": {"conv": {"label": "NAP browser", "href": str(browser)}}},
            }
        },
        catalogs=[catalog],
        alignment=[summary],
        alignment_figures=[figures],
        claims=claims,
        claims_html=tmp_path / "reproduction/claims.html",
        settings={},
        nap_method="max",
        page=page,
        faithfulness=faith,
        faithfulness_png=faith.with_suffix(".png"),
        recovery=[recovery],
        recovery_models=["m"],
    )
    d = _page_data(page)
    assert d["claims_href"] == "reproduction/claims.html" and d["claims"][0]["claim_id"] == "NAP-1"
    (model,) = d["models"]
    assert model["links"] == [{"label": "NAP browser", "href": "naps/m/browser.html"}]
    (layer,) = model["layers"]
    naps, nmf = layer["methods"]
    assert (naps["method"], naps["variant"], naps["n_concepts"]) == ("naps", "max", 2)
    nap0, nap1 = naps["concepts"]
    # nap0 = {0..3}, factor0 = {0, 1, 2, 5}: Jaccard 3 / 5
    assert nap0["counterparts"] == [
        {"method": "nmf", "concept": "factor0", "jaccard": pytest.approx(0.6), "n_universe": len(ids)}
        | {"counterpart": True}  # J 0.6 >= the threshold 0.3
    ]
    assert nap1["counterparts"] == []  # it overlaps no factor: no counterpart, not one at J 0
    assert nap0["faithfulness"] == {"observed": 2.0, "random_mean": 0.5, "p_value": 0.1, "set_mean": 1.5} | {
        "set_p_value": 0.2
    }
    assert nap1["faithfulness"] is None
    # nap1 of max is the best match of the planted stamp (so is nap1 of mean, which is not on the page)
    assert nap1["recovery"] == [{"planted": "stamp", "f1": 1.0, "p_value": pytest.approx(1 / 21)}]
    assert nap0["recovery"] == []
    factor0, factor1 = nmf["concepts"]
    assert factor1["thumbnail"] == "" and factor1["faithfulness"] is None and factor1["size"] == 0
    strip = Image.open(io.BytesIO(base64.b64decode(factor0["thumbnail"].split(",", 1)[1])))
    assert strip.height == 32 and strip.width == 4 * 32 + 3  # four images, 1 px gaps
    assert [r["method_b"] for r in layer["alignment"]] == ["nmf"]
    assert layer["alignment"][0]["figure"] == "figures/atlas/alignment_m/conv_naps_nmf.png"
    planted = {(r["method"], r["variant"], r["planted"]) for r in layer["recovery"]}
    assert planted == {("naps", "max", "stamp"), ("nmf", "coupled", "stamp")}  # the page's disentanglement
    assert "recovery permutations" in d["settings"]
