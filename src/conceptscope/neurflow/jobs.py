"""NeurFlow jobs, one function per workflow rule: circuit, views, evaluations, claim row.

The scripts in ``workflow/scripts/neurflow_*.py`` only unpack the ``snakemake``
object and call these (through :func:`conceptscope.runtime.run_job`).
``settings`` is the whole ``neurflow`` config section, read with
:class:`~conceptscope.neurflow.settings.NeurFlowSettings`; ``dataset`` is the
rule's ``{"id", "config"}`` parameter (:func:`conceptscope.jobs.open_split`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import models
from ..jobs import open_split
from .settings import NeurFlowSettings

__all__ = ["neurflow_circuit", "neurflow_claims", "neurflow_evaluate", "neurflow_views"]

_log = logging.getLogger("conceptscope")


def neurflow_circuit(
    *,
    model_id: str,
    weights: str | Path,
    cache: str | Path,
    dataset: Mapping[str, Any],
    split: str,
    manifest: str | Path,
    class_index: int,
    layers: Sequence[str],
    settings: Mapping[str, Any],
    device: str,
    circuit: str | Path,
    arrays: str | Path,
) -> None:
    """The NeurFlow circuit of one class: ``circuit`` (JSON) and the per-level arrays (``arrays``, torch.save)."""
    from .circuit import build_circuit
    from .evaluate import class_images

    s = NeurFlowSettings.from_config(settings)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = open_split(dataset, split, manifest)
    pos, x = class_images(cache, images, inp, class_index, s.max_images)
    res = build_circuit(
        model,
        inp.normalize(x),
        class_index,
        layers,
        settings=s,
        image_ids=images.sample_ids[pos].tolist(),
        progress=True,
    )
    c = res.circuit | {
        "model": model_id,
        "class_name": images.class_names[class_index],
        "dataset": dataset["id"],
        "split": split,
        "positions": pos.tolist(),
        "device": str(dev),
    }
    Path(circuit).write_text(json.dumps(c, indent=1))
    torch.save(
        {
            "levels": res.levels,
            "groups": {k: [asdict(g) for g in v] for k, v in res.groups.items()},
            "semantic": {k: [asdict(g) for g in v] for k, v in res.semantic.items()},
            "patch_max": res.patch_max,
            "positions": pos,
        },
        arrays,
    )
    rows = sum(lv["evaluations"] for lv in res.levels)
    _log.info(
        "%s class %d: %d images, %d patches, %d nodes, %d edges, %d IG forward rows, %.1f s on %s",
        model_id,
        class_index,
        len(pos),
        c["n_patches"],
        len(c["nodes"]),
        len(c["edges"]),
        rows,
        res.seconds,
        dev,
    )


def neurflow_views(
    *,
    circuit: str | Path,
    weights: str | Path,
    dataset: Mapping[str, Any],
    manifest: str | Path,
    settings: Mapping[str, Any],
    png: str | Path,
    html: str | Path,
    labelling: str | Path,
) -> None:
    """The circuit figure (paper Fig. 7 style), its HTML view, and the concept-labelling export."""
    from .labelling import write_labelling_export
    from .page import write_circuit_html
    from .patches import circuit_patch_images
    from .views import plot_circuit

    s = NeurFlowSettings.from_config(settings)
    c = json.loads(Path(circuit).read_text())
    _, inp, _ = models.load_model(weights, "cpu")
    images = open_split(dataset, c["split"], manifest)
    pix = circuit_patch_images(c, images, inp)
    title = f"{c['model']}: circuit of class {c['class_name']} ({c['n_images']} images, {c['n_patches']} patches)"
    plot_circuit(c, pix, png, per_group=s.per_group, title=title)
    write_circuit_html(c, pix, html)
    index = write_labelling_export(c, pix, labelling)
    _log.info(
        "%s: %d nodes, %d edges; labelling export %d folders", title, len(c["nodes"]), len(c["edges"]), len(index)
    )


def neurflow_evaluate(
    *,
    circuit: str | Path,
    arrays: str | Path,
    weights: str | Path,
    caches: Sequence[str | Path],
    layers: Sequence[str],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    masking: str | Path,
    debug: str | Path,
    png: str | Path,
) -> None:
    """Masking each neuron group against as many random neurons (paper Sect. 5.1, Fig. 9) and the
    debugging metric M of the split's images against every group (App. F). ``caches``: the cache
    files of ``layers`` (the circuit's blocks, top first), in that order."""
    from .evaluate import debugging_table, masking_table
    from .plots import plot_masking

    s = NeurFlowSettings.from_config(settings)
    c = json.loads(Path(circuit).read_text())
    saved = torch.load(arrays, weights_only=False)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = open_split(dataset, c["split"], manifest)
    pos = np.asarray(c["positions"], dtype=np.int64)
    x = inp.normalize(images.images(pos, inp.size, inp.channels))
    mask = masking_table(model, x, c, n_random=s.n_random, seed=seed)
    mask.to_csv(masking, index=False)
    plot_masking(mask, png, title=f"{c['model']} class {c['class_name']}: masking a neuron group vs random neurons")
    debugging_table(c, dict(zip(layers, caches, strict=True)), saved["patch_max"], n_images=s.debug_images).to_csv(
        debug, index=False
    )
    _log.info(
        "%s class %d masking:\n%s",
        c["model"],
        c["class_index"],
        mask[["node", "n_neurons", "drop", "random_drop_mean", "ratio"]],
    )


def neurflow_claims(*, masking: Sequence[str | Path], rows: str | Path) -> None:
    """Claim row NF-12 from the masking tables; the other NeurFlow claims are not computed by the suite."""
    from ..claims import write_rows
    from .claims import nf_12

    table = pd.concat([pd.read_csv(p) for p in masking], ignore_index=True) if masking else pd.DataFrame()
    row = nf_12(table)
    write_rows(rows, [row])
    _log.info("%s %s: %s", row["claim_id"], row["verdict"], row["measured_value"])
