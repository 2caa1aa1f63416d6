"""NeurFlow jobs, one function per workflow rule: circuit, views, evaluations, claim row.

The scripts in ``workflow/scripts/neurflow_*.py`` only unpack the ``snakemake``
object and call these (through :func:`conceptscope.runtime.run_job`).
``settings`` is the whole ``neurflow`` config section, read with
:class:`~conceptscope.neurflow.settings.NeurFlowSettings`; ``dataset`` is the
rule's ``{"id", "config"}`` parameter (:func:`conceptscope.jobs.open_split`);
``layouts`` the model's ``models.<id>.layouts`` (layers whose layout is set
rather than detected). A class without images predicted as it gets a circuit
with a ``status`` (:func:`conceptscope.neurflow.status_circuit`), and every
later job writes its outputs saying so instead of failing.
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
from ..runtime import atomic_path, write_table
from .settings import NeurFlowSettings

__all__ = ["neurflow_circuit", "neurflow_claims", "neurflow_evaluate", "neurflow_views"]

_log = logging.getLogger("conceptscope")


def _class_label(circuit: Mapping[str, Any]) -> str:
    """``name (index)``, or the index alone when the class is named by it."""
    name, idx = str(circuit["class_name"]), int(circuit["class_index"])
    return name if name == str(idx) else f"{name} ({idx})"


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
    layouts: Mapping[str, str] | None = None,
) -> None:
    """The NeurFlow circuit of one class: ``circuit`` (JSON) and the per-level arrays (``arrays``, torch.save).

    A class that no image of the split is predicted as gets a circuit with
    status ``no images`` (and empty arrays), not an error."""
    from .circuit import STATUS_NO_IMAGES, build_circuit, status_circuit
    from .evaluate import NoClassImagesError, class_images

    s = NeurFlowSettings.from_config(settings)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = open_split(dataset, split, manifest)
    try:
        pos, x = class_images(cache, images, inp, class_index, s.max_images)
    except NoClassImagesError as err:
        pos = np.zeros(0, dtype=np.int64)
        res = status_circuit(class_index, layers, status=STATUS_NO_IMAGES, reason=str(err), settings=s, device=dev)
        _log.warning("%s class %d: %s", model_id, class_index, err)
    else:
        res = build_circuit(
            model,
            inp.normalize(x),
            class_index,
            layers,
            settings=s,
            image_ids=images.sample_ids[pos].tolist(),
            progress=True,
            layouts=layouts,
        )
    c = res.circuit | {
        "model": model_id,
        "class_name": images.class_names[class_index],
        "dataset": dataset["id"],
        "split": split,
        "positions": pos.tolist(),
        "device": str(dev),
    }
    # written atomically (a temporary file, then a rename): a killed job never leaves a partial output
    with atomic_path(arrays) as tmp:
        torch.save(
            {
                "levels": res.levels,
                "groups": {k: [asdict(g) for g in v] for k, v in res.groups.items()},
                "semantic": {k: [asdict(g) for g in v] for k, v in res.semantic.items()},
                "patch_max": res.patch_max,
                "positions": pos,
            },
            tmp,
        )
    with atomic_path(circuit) as tmp:
        tmp.write_text(json.dumps(c, indent=1))
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
    """The circuit figure (paper Fig. 7 style), its HTML view, and the concept-labelling export
    (for a circuit with a status, e.g. ``no images``: a figure, page and export saying so)."""
    from .circuit import circuit_status
    from .labelling import write_labelling_export, write_status_export
    from .page import write_circuit_html, write_status_html
    from .patches import circuit_patch_images
    from .plots import plot_status
    from .views import plot_circuit

    s = NeurFlowSettings.from_config(settings)
    c = json.loads(Path(circuit).read_text())
    status = circuit_status(c)
    if status != "ok":
        title = f"{c['model']}: circuit of class {_class_label(c)}"
        plot_status(png, title=title, status=status, reason=c.get("reason", ""))
        write_status_html(html, title=title, status=status, reason=c.get("reason", ""))
        write_status_export(labelling, status=status, reason=c.get("reason", ""))
        _log.info("%s: %s (%s)", title, status, c.get("reason", ""))
        return
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
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Masking each neuron group against as many random neurons (paper Sect. 5.1, Fig. 9) and the
    debugging metric M of the split's images against every group (App. F). ``caches``: the cache
    files of ``layers`` (the circuit's blocks, top first), in that order. For a circuit with a
    status (e.g. ``no images``): a masking table with no groups and that status, an empty
    debugging table and a figure saying so."""
    from .circuit import circuit_status
    from .evaluate import DEBUGGING_COLUMNS, debugging_table, masking_table, status_masking_table
    from .plots import plot_masking, plot_status

    s = NeurFlowSettings.from_config(settings)
    c = json.loads(Path(circuit).read_text())
    status = circuit_status(c)
    if status != "ok":
        reason = c.get("reason", "")
        write_table(status_masking_table(c["model"], c["class_index"], status, reason), masking, index=False)
        write_table(pd.DataFrame(columns=list(DEBUGGING_COLUMNS)), debug, index=False)
        title = f"{c['model']} class {_class_label(c)}: masking a neuron group vs random neurons"
        plot_status(png, title=title, status=status, reason=reason)
        _log.info("%s class %d: %s (%s); nothing to mask", c["model"], c["class_index"], status, reason)
        return
    saved = torch.load(arrays, weights_only=False)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = open_split(dataset, c["split"], manifest)
    pos = np.asarray(c["positions"], dtype=np.int64)
    x = inp.normalize(images.images(pos, inp.size, inp.channels))
    mask = masking_table(model, x, c, n_random=s.n_random, seed=seed, layouts=layouts)
    write_table(mask, masking, index=False)
    plot_masking(mask, png, title=f"{c['model']} class {c['class_name']}: masking a neuron group vs random neurons")
    caches_of = dict(zip(layers, caches, strict=True))
    debug_table = debugging_table(c, caches_of, saved["patch_max"], n_images=s.debug_images, layouts=layouts)
    write_table(debug_table, debug, index=False)
    _log.info(
        "%s class %d masking:\n%s",
        c["model"],
        c["class_index"],
        mask[["node", "n_neurons", "drop", "random_drop_mean", "ratio"]],
    )


def _tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The CSV tables at ``paths`` concatenated (an empty frame for none)."""
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else pd.DataFrame()


def neurflow_claims(
    *,
    masking: Sequence[str | Path],
    rows: str | Path,
    optimality: Sequence[str | Path] = (),
    methods: Sequence[str | Path] = (),
    fidelity: Sequence[str | Path] = (),
    timing: Sequence[str | Path] = (),
    overlaps: Sequence[str | Path] = (),
    l2: Sequence[str | Path] = (),
    k_ablation: Sequence[str | Path] = (),
    crops: Sequence[str | Path] = (),
) -> None:
    """Claim rows NF-1 ... NF-12: NF-12 from the masking tables, the others from the evaluation tables
    (:mod:`conceptscope.neurflow.eval_claims`; each NOT RUN, saying so, when its tables are absent, i.e.
    ``neurflow.evaluation.run`` is false)."""
    from ..claims import write_rows
    from . import eval_claims as ec
    from .claims import nf_12
    from .fidelity_claims import nf_2, nf_10

    fig11 = _tables(methods)
    fid = _tables(fidelity)
    out = [
        ec.nf_1(_tables(optimality)),
        nf_2(fid),
        ec.nf_3(fig11),
        ec.nf_4(fig11),
        ec.nf_5(_tables(timing)),
        ec.nf_6(fig11),
        ec.nf_7(_tables(overlaps)),
        ec.nf_8(_tables(l2)),
        ec.nf_9(_tables(k_ablation)),
        nf_10(fid),
        ec.nf_11(_tables(crops)),
        nf_12(_tables(masking)),
    ]
    write_rows(rows, out)
    for row in out:
        _log.info("%s %s: %s", row["claim_id"], row["verdict"], row["measured_value"])
