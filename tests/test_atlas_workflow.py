"""The atlas on config/test.yaml: results/index.html shows every model's methods in headless Chromium, and the
atlas tables agree with the catalogs they were computed from."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conceptscope.atlas.concepts import METHODS, load_concepts
from conceptscope.atlas.jobs import layer_concepts

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())

pytestmark = pytest.mark.workflow


def methods_that_ran() -> dict[str, list[str]]:
    """The atlas's models (atlas.models, else every model a method ran on) and the methods that ran on each."""
    out = {m: [k for k in METHODS if m in CONFIG.get(k, {}).get("models", [])] for m in CONFIG["models"]}
    chosen = CONFIG.get("atlas", {}).get("models") or list(out)
    return {m: v for m, v in out.items() if v and m in chosen}


class _Atlas(HTMLParser):
    """(model, layer, method) of every method column and the concept cards in it, from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.where: dict[str, str] = {}
        self.columns: dict[tuple[str, str, str], list[str]] = {}
        self.claim_rows = 0
        self._in_claims = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("model", "layer", "method"):
            if a.get(f"data-{key}") is not None:
                self.where[key] = a[f"data-{key}"]
                if key == "model":
                    self.where.pop("layer", None)
                    self.where.pop("method", None)
                if key == "method":
                    self.columns[self.where["model"], self.where["layer"], a["data-method"]] = []
        if a.get("data-concept") is not None:
            self.columns[self.where["model"], self.where["layer"], self.where["method"]].append(a["data-concept"])
        if tag == "table" and "claims" in (a.get("class") or "") + (a.get("id") or ""):
            self._in_claims = True
        if self._in_claims and tag == "tr":
            self.claim_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_claims = False


def test_the_atlas_page_shows_every_models_methods(suite_run):
    from browser import chromium_or_skip, dump_dom

    page = suite_run / "results" / "index.html"
    dom = dump_dom(chromium_or_skip(), page.resolve().as_uri(), suite_run / "chromium-atlas")
    assert 'data-ready="1"' in dom, dom[:2000]
    parsed = _Atlas()
    parsed.feed(dom)
    ran = methods_that_ran()
    shown = {(m, method) for (m, _, method) in parsed.columns}
    assert shown == {(m, method) for m, methods in ran.items() for method in methods}
    nap_method = CONFIG.get("atlas", {}).get("nap_method") or "max"
    for m in ran:
        concepts, meta = load_concepts(suite_run / f"results/atlas/{m}/concepts.json")
        by = layer_concepts(
            concepts, layers=CONFIG["models"][m]["layers"], nap_method=nap_method, groups=meta["groups"]
        )
        columns = {(layer, method): names for (mm, layer, method), names in parsed.columns.items() if mm == m}
        assert set(columns) == {(layer, method) for layer, methods in by.items() for method in methods}
        for (layer, method), names in columns.items():
            assert names == [c.name for c in by[layer][method][: CONFIG["atlas"]["page_concepts"]]]
    claims = pd.read_csv(suite_run / "results/reproduction/claims.csv")
    assert parsed.claim_rows == len(claims) + 1  # the header row and one per claim


def test_alignment_and_faithfulness_tables_cover_the_methods(suite_run):
    ran = methods_that_ran()
    faith = pd.read_csv(suite_run / "results/figures/atlas/faithfulness.csv")
    assert set(faith["model"]) == set(ran)
    nap_method = CONFIG.get("atlas", {}).get("nap_method") or "max"
    for m, methods in ran.items():
        concepts, meta = load_concepts(suite_run / f"results/atlas/{m}/concepts.json")
        by = layer_concepts(
            concepts, layers=CONFIG["models"][m]["layers"], nap_method=nap_method, groups=meta["groups"]
        )
        found = {method for layer in by.values() for method, cs in layer.items() if cs}
        empty = {(layer, method) for layer, b in by.items() for method, cs in b.items() if not cs}
        scored = faith[(faith["model"] == m) & faith["observed"].notna()]
        assert set(scored["method"]) == found, m  # every method with a concept gets scores
        noted = faith[(faith["model"] == m) & (faith["note"] == "no concept at this layer")]
        assert set(zip(noted["layer"], noted["method"], strict=True)) == empty
        assert (scored["p_value"] > 0).all() and (scored["p_value"] <= 1).all()
        assert (scored["n_images"] <= CONFIG["atlas"]["faithfulness"]["max_images"]).all()
        table = pd.read_csv(suite_run / f"results/figures/atlas/alignment_{m}.csv", dtype={"figure": str})
        if len(methods) < 2:
            assert table.empty
            continue
        pairs = {tuple(sorted(p)) for p in table[["method_a", "method_b"]].itertuples(index=False)}
        assert pairs  # two methods met at some layer
        scored = table[table["figure"].notna()]
        assert ((scored["mean_matched_jaccard"] >= 0) & (scored["mean_matched_jaccard"] <= 1)).all()
        for fig in scored["figure"]:
            assert (suite_run / f"results/figures/atlas/alignment_{m}" / fig).stat().st_size > 0
    assert np.isfinite(faith["observed"].dropna()).all()
