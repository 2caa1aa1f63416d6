"""The atlas page's job: gather the catalogs and the atlas tables into the data of ``results/index.html``.

:func:`atlas_page` (rule ``atlas_page``) reads, per model, the concept catalog
(:func:`~conceptscope.atlas.concepts.load_concepts`), the alignment summary and
its cell tables (:func:`~conceptscope.atlas.jobs.atlas_alignment`), the
recovery table when the data plants concepts, and the faithfulness table
across models; then the claims table; and writes the page with
:func:`~conceptscope.atlas.page.write_atlas_page`. Per layer the page shows the
concepts :func:`~conceptscope.atlas.jobs.layer_concepts` puts there, the first
``atlas.page_concepts`` of each method, each with a strip of its first eight
images (fitted to 48 x 48 pixels), its faithfulness row, its best counterpart
in each other method (highest Jaccard in the pair's cell table) and the
planted concepts it is the best match of. Hrefs are relative to the page.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .concepts import Concept, load_concepts
from .jobs import group_variants, layer_concepts
from .page import ALIGNMENT_KEYS, CLAIM_KEYS, RECOVERY_KEYS, thumbnail_strip, write_atlas_page
from .settings import AtlasSettings

__all__ = ["atlas_page"]

_THUMB_SIZE = (48, 48)
_THUMB_IMAGES = 8


def _value(v: Any) -> Any:
    """A JSON value for the page: numpy scalars as Python ones, NaN and inf as None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _records(table: pd.DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    return [{k: _value(r[k]) for k in keys} for r in table.to_dict("records")]


def _href(path: str | Path, page: Path) -> str:
    return Path(os.path.relpath(path, page.parent)).as_posix()


def _counterparts(summary: pd.DataFrame, figures: Path, layer: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``{(method, concept): [best counterpart per other method]}`` from the layer's alignment cell tables."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in summary[(summary["layer"] == layer) & (summary["figure"].fillna("") != "")].to_dict("records"):
        cells = pd.read_csv((figures / r["figure"]).with_suffix(".csv"), dtype={"concept_a": str, "concept_b": str})
        for own, other, method, other_method in (
            ("concept_a", "concept_b", r["method_a"], r["method_b"]),
            ("concept_b", "concept_a", r["method_b"], r["method_a"]),
        ):
            best = cells.sort_values("jaccard", ascending=False, kind="stable").drop_duplicates(own)
            for c in best[best["jaccard"] > 0].to_dict("records"):  # no overlap is no counterpart
                out.setdefault((method, c[own]), []).append(
                    {"method": other_method, "concept": c[other], "jaccard": _value(c["jaccard"])}
                    | {"n_universe": _value(r["n_universe"]), "counterpart": bool(c["jaccard"] >= r["threshold"])}
                )
    return out


def _thumbnail(c: Concept, splits: dict[str, Any], dataset: Mapping[str, Any]) -> str:
    """A strip of a concept's first images (its split opened once per job, kept in ``splits``)."""
    from ..jobs import open_split

    if c.size == 0:
        return ""
    if c.split not in splits:
        splits[c.split] = open_split(dataset, c.split)
    x = splits[c.split].images(c.positions[:_THUMB_IMAGES], _THUMB_SIZE)
    return thumbnail_strip(x, max_images=_THUMB_IMAGES)


def _faithfulness(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None or not math.isfinite(row["observed"]):
        return None
    return {k: _value(row[k]) for k in ("observed", "random_mean", "p_value", "set_mean", "set_p_value")}


def atlas_page(
    *,
    models: Mapping[str, Mapping[str, Any]],
    catalogs: Sequence[str | Path],
    alignment: Sequence[str | Path],
    alignment_figures: Sequence[str | Path],
    claims: str | Path,
    claims_html: str | Path,
    settings: Mapping[str, Any],
    nap_method: str,
    page: str | Path,
    faithfulness: str | Path | None = None,
    faithfulness_png: str | Path | None = None,
    recovery: Sequence[str | Path] = (),
    recovery_models: Sequence[str] = (),
) -> None:
    """Write the atlas page (see the module docstring).

    Parameters
    ----------
    models : {model: {"dataset": {"id", "config"}, "layers": [...], "methods": [...], "links": [{label, href}],
        "method_links": {method: {layer: {label, href}}}}}
        Per model of the atlas: its data set (the rule's ``dataset`` param), probed layers in order, the
        methods that ran on it and the links to their pages (paths relative to the working directory).
    catalogs, alignment, alignment_figures : sequence of paths, one per model in the order of ``models``
        Each model's catalog, alignment summary and alignment figure folder.
    recovery : sequence of paths, one per model of ``recovery_models``
        The recovery tables (data sets that plant concepts).
    claims, claims_html : path
        The claims table (CSV) and page.
    faithfulness, faithfulness_png : path, optional
        The faithfulness table across models and its figure.
    """
    names = list(models)
    for what, files in (("catalogs", catalogs), ("alignment", alignment), ("alignment_figures", alignment_figures)):
        if len(files) != len(names):
            raise ValueError(f"{len(files)} {what} for {len(names)} models; give one per model")
    if len(recovery) != len(recovery_models):
        raise ValueError(f"{len(recovery)} recovery tables for models {list(recovery_models)}")
    catalogs, alignment = dict(zip(names, catalogs, strict=True)), dict(zip(names, alignment, strict=True))
    alignment_figures = dict(zip(names, alignment_figures, strict=True))
    recovery_of = dict(zip(recovery_models, recovery, strict=True))
    s = AtlasSettings.from_config(settings)
    page = Path(page)
    faith = pd.read_csv(faithfulness) if faithfulness is not None else pd.DataFrame(columns=["model"])
    faith_rows = {(r["model"], r["layer"], r["method"], str(r["concept"])): r for r in faith.to_dict("records")}
    out_models = []
    for model, info in models.items():
        concepts, meta = load_concepts(catalogs[model])
        summary = pd.read_csv(alignment[model], dtype={"figure": str})
        rec = None
        if model in recovery_of:
            rec = pd.read_csv(recovery_of[model], dtype={"variant": str, "best_concept": str})
            rec[["variant", "best_concept"]] = rec[["variant", "best_concept"]].fillna("")
        splits: dict[str, Any] = {}
        variant_of = group_variants(meta.get("groups", []), nap_method)

        layers = []
        for layer, by in layer_concepts(
            concepts, layers=info["layers"], nap_method=nap_method, groups=meta.get("groups", [])
        ).items():
            counterparts = _counterparts(summary, Path(alignment_figures[model]), layer)
            rec_layer = None
            if rec is not None:  # the page's NAP disentanglement (the CSV has them all)
                rec_layer = rec[
                    rec["layer"].isin([layer, "coupled"]) & ((rec["method"] != "naps") | (rec["variant"] == nap_method))
                ]
            methods = []
            for method, cs in by.items():
                shown = cs[: s.page_concepts]
                cards = []
                for c in shown:
                    best_of = None
                    if rec_layer is not None:
                        mine = rec_layer[
                            (rec_layer["method"] == method)
                            & (rec_layer["variant"] == c.variant)
                            & (rec_layer["layer"] == c.layer)
                            & (rec_layer["best_concept"] == c.name)
                            & (rec_layer["f1"] > 0)
                        ]
                        best_of = [
                            {"planted": r["planted"], "f1": _value(r["f1"]), "p_value": _value(r["p_value"])}
                            for r in mine.to_dict("records")
                        ]
                    cards.append(
                        {
                            "name": c.name,
                            "size": c.size,
                            "thumbnail": _thumbnail(c, splits, info["dataset"]),
                            "faithfulness": _faithfulness(faith_rows.get((model, layer, method, c.name))),
                            "counterparts": counterparts.get((method, c.name), []),
                            "recovery": best_of,
                        }
                    )
                link = info["method_links"].get(method, {}).get(layer)
                methods.append(
                    {
                        "method": method,
                        "variant": cs[0].variant if cs else variant_of.get((method, layer), ""),
                        "n_concepts": len(cs),
                        "shown": len(shown),
                        "link": None if link is None else {"label": link["label"], "href": _href(link["href"], page)},
                        "concepts": cards,
                    }
                )
            al_rows = summary[summary["layer"] == layer]
            al_records = _records(al_rows, ALIGNMENT_KEYS[:-1])
            for rec_row, fig in zip(al_records, al_rows["figure"].fillna(""), strict=True):
                rec_row["figure"] = _href(Path(alignment_figures[model]) / fig, page) if fig else None
            recovery_rows = [] if rec_layer is None else _records(rec_layer[rec_layer["layer"] == layer], RECOVERY_KEYS)
            if rec_layer is not None and "nmf" in by:  # the coupled factors' rows belong to every factored layer
                recovery_rows += _records(rec_layer[rec_layer["layer"] == "coupled"], RECOVERY_KEYS)
            layers.append({"layer": layer, "methods": methods, "alignment": al_records, "recovery": recovery_rows})
        out_models.append(
            {
                "model": model,
                "dataset": info["dataset"]["id"],
                "split": ", ".join(sorted({str(c.split) for c in concepts})),
                "methods": list(info["methods"]),
                "links": [{"label": x["label"], "href": _href(x["href"], page)} for x in info["links"]],
                "layers": layers,
            }
        )
    claims_table = pd.read_csv(claims, dtype=str).fillna("")
    figures = []
    if faithfulness_png is not None:
        figures.append({"label": "Faithfulness, every method and layer", "href": _href(faithfulness_png, page)})
    figures += [
        {"label": f"Planted-concept recovery, {m}", "href": _href(Path(p).with_suffix(".png"), page)}
        for m, p in recovery_of.items()
    ]
    data = {
        "settings": {
            "NAP disentanglement": nap_method,
            "counterpart threshold (Jaccard)": s.threshold,
            "alignment null draws": s.n_permutations,
            "NMF concept": "a factor's top ceil(N / d) images by F",
            "NAS concept": "a unit's top set H" if s.nas_top == "set" else "a unit's highest non-empty range",
            "NeurFlow concept": "a neuron group's concept patches, as their images",
            "faithfulness: concepts scored per method and layer": s.faithfulness.max_concepts or "all",
            "faithfulness: images per concept": s.faithfulness.max_images or "all",
            "faithfulness: draws per null (smallest p)": (
                f"{s.faithfulness.n_random} (p >= {1 / (s.faithfulness.n_random + 1):.3f})"
            ),
        }
        | ({"recovery permutations": s.recovery_permutations} if recovery_of else {}),
        "claims_href": _href(claims_html, page),
        "claims": _records(claims_table, CLAIM_KEYS),
        "figures": figures,
        "models": out_models,
    }
    write_atlas_page(page, data)
