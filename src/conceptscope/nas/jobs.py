"""NAS jobs, one function per rule of ``workflow/rules/nas.smk``: read inputs, call the library, write outputs.

Each rule passes the whole ``nas`` config section as ``settings`` (rebuilt
here as :class:`~conceptscope.nas.settings.NasSettings`) and its data set as
``dataset`` (``{"id", "config"}``, see :func:`conceptscope.jobs.open_split`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import activations
from ..claims import write_rows
from ..jobs import open_split
from ..runtime import write_table
from . import core, views
from .claims import nas_1
from .settings import NasSettings

__all__ = ["nas_claims", "nas_layer_views", "nas_summary", "nas_taxonomy"]

_log = logging.getLogger("conceptscope")


def nas_summary(
    *,
    cache: str | Path,
    dataset: Mapping[str, Any],
    split: str,
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    summary: str | Path,
    table: str | Path,
) -> None:
    """Layer summary (ranges x class counts per unit) and the neuron taxonomy of one cached layer."""
    cfg = NasSettings.from_config(settings)
    cached = activations.read_cache(cache)
    images = open_split(dataset, split, manifest)
    if not np.array_equal(cached.sample_ids, images.sample_ids):
        raise RuntimeError(f"{cache} was cached from other samples than {manifest}; delete it and rerun")
    pos = core.sample_per_class(cached.labels, cfg.per_class, seed=seed)
    values = core.unit_activations(cached.arrays, cached.kind, cfg.aggregation)[pos]
    taxonomy = cfg.taxonomy.as_dict()
    meta = {k: cached.provenance.get(k) for k in ("model", "spec", "dataset", "split")}
    meta |= {"layer": cached.layer, "kind": cached.kind, "aggregation": cfg.aggregation, "per_class": cfg.per_class}
    meta |= {"seed": seed, "taxonomy": taxonomy}
    s = core.summarize_layer(values, cached.labels[pos], images.class_names, m=cfg.n_ranges, positions=pos, meta=meta)
    tax = core.classify_units(s, **taxonomy)
    core.save_summary(s, summary)
    write_table(tax, table, index=False)
    counts = {t: int(tax[t].sum()) for t in core.TAXONOMY_LABELS}
    _log.info("%s: %d units over %d images; %s", cached.layer, s.n_units, len(pos), counts)
    if counts["insufficient"]:
        _log.info(
            "%s: %d units lack evidence for some type (|H| < %d, |L| < %d, %d images < %d, or eta^2 chance %.3g > %g)",
            cached.layer,
            counts["insufficient"],
            cfg.taxonomy.min_top,
            cfg.taxonomy.min_low,
            len(pos),
            cfg.taxonomy.min_sample,
            float(tax["eta2_chance"].iloc[0]) if len(tax) else float("nan"),
            cfg.taxonomy.eta_chance,
        )


def nas_layer_views(
    *,
    summary: str | Path,
    table: str | Path,
    dataset: Mapping[str, Any],
    split: str,
    manifest: str | Path,
    settings: Mapping[str, Any],
    png: str | Path,
    html: str | Path,
    neurons: str | Path,
) -> None:
    """The layer summary (PNG, capped at ``max_rows`` units, and the full HTML page) and the neuron views.

    ``neurons`` is a folder: one PNG (+ CSV) per unit picked by
    :func:`~conceptscope.nas.views.select_neurons` and an ``index.csv`` of type, unit, strength and file.
    """
    cfg = NasSettings.from_config(settings)
    s = core.load_summary(summary)
    tax = pd.read_csv(table)
    title = f"{s.meta.get('model')} {s.meta.get('layer')} ({s.meta.get('split')})"
    thresholds = cfg.width_thresholds
    views.plot_layer_summary(s, png, taxonomy=tax, max_rows=cfg.max_rows, thresholds=thresholds, title=title)
    views.write_layer_summary_html(s, html, taxonomy=tax, thresholds=thresholds, title=title)
    images = open_split(dataset, split, manifest)
    picked = views.select_neurons(tax, cfg.neurons_per_type)
    folder = Path(neurons)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for unit, types in picked.groupby("unit", sort=False)["type"]:
        name = f"unit{unit}.png"
        views.plot_neuron(
            s,
            int(unit),
            images,
            folder / name,
            max_per_range=cfg.max_per_range,
            title=f"{title} unit {unit}: {', '.join(types)}",
        )
        files.append(name)
    picked["file"] = picked["unit"].map(lambda u: f"unit{u}.png")
    write_table(picked, folder / "index.csv", index=False)
    _log.info("%s: summary of %d units, %d neuron views", title, s.n_units, len(files))


def nas_taxonomy(
    *,
    model_id: str,
    layers: Sequence[str],
    summaries: Sequence[str | Path],
    tables: Sequence[str | Path],
    csv: str | Path,
    png: str | Path,
) -> None:
    """Units per label per layer of one model (CSV and bar chart), with the summaries' consistency check.

    One row per layer and label of :data:`~conceptscope.nas.TAXONOMY_LABELS`
    (the six types and ``insufficient``): model, layer, type, count, judged
    (units the type's rule could judge, :func:`~conceptscope.nas.count_labels`),
    n_units, n_images, consistent (every sampled image in exactly one range
    of every unit, and a taxonomy row with every label column per unit).
    """
    rows = []
    for layer, spath, tpath in zip(layers, summaries, tables, strict=True):
        s = core.load_summary(spath)
        tax = pd.read_csv(tpath)
        n = s.values.shape[0]
        labelled = {*core.TAXONOMY_LABELS, "insufficient_for"} <= set(tax.columns)
        consistent = bool(np.all(s.counts.sum((1, 2)) == n) and len(tax) == s.n_units and labelled)
        if not consistent:
            _log.warning("%s: the summary or the taxonomy table is inconsistent (%s, %s)", layer, spath, tpath)
        per_label = (
            core.count_labels(tax, s.n_ranges)
            if consistent
            else pd.DataFrame({"type": core.TAXONOMY_LABELS, "count": 0, "judged": 0})
        )
        for r in per_label.itertuples():
            rows.append(
                {
                    "model": model_id,
                    "layer": layer,
                    "type": r.type,
                    "count": int(r.count),
                    "judged": int(r.judged),
                    "n_units": s.n_units,
                    "n_images": n,
                    "consistent": consistent,
                }
            )
    counts = pd.DataFrame(rows)
    write_table(counts, csv, index=False)
    views.plot_taxonomy_counts(counts, png, title=f"{model_id}: neuron types per layer (NAS)")
    _log.info(
        "%s taxonomy:\n%s",
        model_id,
        counts.pivot(index="layer", columns="type", values="count")
        .loc[list(layers), list(core.TAXONOMY_LABELS)]
        .to_string(),
    )


def nas_claims(*, counts: Sequence[str | Path], expected: Mapping[str, Sequence[str]], rows: str | Path) -> None:
    """Claim row NAS-1 from the taxonomy count tables."""
    table = pd.concat([pd.read_csv(p) for p in counts], ignore_index=True) if counts else pd.DataFrame()
    row = nas_1(table, expected)
    write_rows(rows, [row])
    _log.info("%s %s: %s", row["claim_id"], row["verdict"], row["measured_value"])
