"""The foundation's jobs, one function per workflow rule: data splits, training, the activation cache, claims.

The scripts in ``workflow/scripts/`` only unpack the ``snakemake`` object and
call these (through :func:`conceptscope.runtime.run_job`), so every rule's
work can be run and tested without Snakemake. Parameters arrive as plain
values (from the rule's ``params``), never from a global config. Each paper's
rules have their jobs in its own package (``conceptscope.<paper>.jobs``).

A rule's ``dataset`` parameter is ``{"id": <key of datasets>, "config": <its
config section>}`` (``get_dataset`` in ``workflow/rules/common.smk``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import data, models
from .runtime import provenance, write_json, write_table, write_text

__all__ = [
    "cache_activations",
    "gather_claims",
    "open_split",
    "plot_training",
    "prefetch",
    "prepare_split",
    "train_model",
]

_log = logging.getLogger("conceptscope")


def open_split(dataset: Mapping[str, Any], split: str, manifest: str | Path | None = None) -> data.ImageSet:
    """Open a split of ``dataset`` (``{"id", "config"}``); with a manifest, check the data still matches it.

    Raises
    ------
    RuntimeError
        If the split's sample ids differ from the manifest's (the data changed).
    """
    dataset_id = dataset["id"]
    images = data.load_split(dataset["config"], split, key=f"datasets.{dataset_id}")
    if manifest is not None:
        ids = pd.read_csv(manifest)["sample_id"].to_numpy()
        if not np.array_equal(ids, images.sample_ids):
            raise RuntimeError(
                f"datasets.{dataset_id} split {split} no longer matches {manifest} (the data changed); "
                f"delete {manifest} and rerun"
            )
    return images


def prepare_split(dataset: Mapping[str, Any], split: str, manifest: str | Path) -> None:
    """Write the split's manifest: position, sample id, label, class name (and superclass; and one bool
    column ``concept_<name>`` per planted concept)."""
    images = open_split(dataset, split)
    table = pd.DataFrame(
        {
            "position": np.arange(len(images)),
            "sample_id": images.sample_ids,
            "label": images.labels,
            "class_name": [images.class_names[i] for i in images.labels],
        }
    )
    if images.superclass_labels is not None and images.superclass_names is not None:
        table["superclass"] = [images.superclass_names[i] for i in images.superclass_labels]
    if images.concepts is not None and images.concept_names is not None:
        for j, concept in enumerate(images.concept_names):
            table[f"concept_{concept}"] = images.concepts[:, j]
    write_table(table, manifest, index=False)
    counts = table["class_name"].value_counts().sort_index()
    _log.info(
        "%s/%s: %d samples, %d classes, per class %d..%d",
        dataset["id"],
        split,
        len(table),
        images.n_classes,
        counts.min(),
        counts.max(),
    )


def train_model(
    *,
    model_id: str,
    spec: str,
    dataset: Mapping[str, Any],
    pretrained: bool,
    input_size: Sequence[int] | None,
    train: Mapping[str, Any],
    seed: int,
    device: str,
    manifests: Mapping[str, str],
    weights: str | Path,
    metrics: str | Path,
) -> None:
    """Build (and, if ``train.epochs`` > 0, train) a model; save weights and metrics.json.

    Settings left null in ``train`` take the paper's value for the architecture
    (:data:`conceptscope.models.TRAINING_DEFAULTS`); timm / torchvision models
    use Adam 1e-4, batch 32 when fine-tuned.
    """
    dev = models.resolve_device(device)
    train_split, eval_split = train["train_split"], train["eval_split"]
    eval_set = open_split(dataset, eval_split, manifests.get(eval_split))
    train_set = open_split(dataset, train_split, manifests.get(train_split)) if train["epochs"] else None
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # weight initialization
        model, inp = models.build_model(
            spec,
            n_classes=eval_set.n_classes,
            in_channels=eval_set.channels,
            pretrained=pretrained,
            input_size=tuple(input_size) if input_size else None,
        )
    model.to(dev)
    settings = models.training_settings(spec, train)
    _log.info("%s (%s) on %s, settings %s, %d epochs", model_id, spec, dev, settings, train["epochs"])
    t0 = time.perf_counter()
    history = []
    if train["epochs"]:
        history = models.train_model(
            model, train_set, eval_set, inp, epochs=train["epochs"], seed=seed, log=_log.info, **settings
        )
    seconds = time.perf_counter() - t0
    out_classes = _n_outputs(model, inp, dev)
    result = {
        "model": model_id,
        "spec": spec,
        "dataset": dataset["id"],
        "train_accuracy": models.evaluate_accuracy(model, train_set, inp) if train_set is not None else None,
        "test_accuracy": _final_accuracy(history, model, eval_set, inp) if out_classes == eval_set.n_classes else None,
        "eval_split": eval_split,
        "train_seconds": seconds,
        "history": history,
        "provenance": provenance(
            settings=settings,
            epochs=train["epochs"],
            seed=seed,
            device=str(dev),
            pretrained=pretrained,
            input=asdict(inp),
        ),
    }
    if out_classes != eval_set.n_classes:
        _log.info("model has %d outputs, data set %d classes: no test accuracy", out_classes, eval_set.n_classes)
    meta = {
        "spec": spec,
        "n_classes": out_classes,
        "in_channels": eval_set.channels,
        "pretrained": pretrained,
        "model": model_id,
    }
    models.save_model(weights, model.cpu(), inp, meta)
    write_json(metrics, result, default=list)
    _log.info("train acc %s, test acc %s", result["train_accuracy"], result["test_accuracy"])


def _final_accuracy(history: list[dict[str, float]], model, images: data.ImageSet, inp: models.InputSpec) -> float:
    """Accuracy after training: the last epoch's evaluation (same weights), else evaluated now."""
    return history[-1]["test_acc"] if history else models.evaluate_accuracy(model, images, inp)


@torch.no_grad()
def _n_outputs(model: torch.nn.Module, inp: models.InputSpec, device: torch.device) -> int:
    model.eval()
    return int(model(torch.zeros(1, inp.channels, *inp.size, device=device)).shape[1])


def plot_training(*, metrics: str | Path, png: str | Path, csv: str | Path) -> None:
    """Training curve and accuracies of one model (figure + the table behind it)."""
    m = json.loads(Path(metrics).read_text())
    table = pd.DataFrame(m["history"], columns=["epoch", "train_loss", "train_acc_running", "test_acc", "seconds"])
    write_table(table, csv, index=False)
    from . import plots  # matplotlib only where a figure is drawn

    plots.plot_training(table, m, png)
    _log.info("%s: %d epochs plotted, test accuracy %s -> %s", m["model"], len(table), m["test_accuracy"], png)


def cache_activations(
    *,
    model_id: str,
    weights: str | Path,
    dataset: Mapping[str, Any],
    split: str,
    manifest: str | Path,
    layers: Sequence[str],
    outputs: Sequence[str],
    full_maps: Sequence[str],
    batch_size: int,
    device: str,
    seed: int,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """One forward pass of a trained model over one split; one HDF5 file per layer (``layouts``: the
    config's ``models.<id>.layouts``, the layers whose layout is set rather than detected)."""
    from . import activations

    dev = models.resolve_device(device)
    model, inp, meta = models.load_model(weights, dev)
    images = open_split(dataset, split, manifest)
    paths = dict(zip(layers, outputs, strict=True))
    t0 = time.perf_counter()
    shapes = activations.cache_activations(
        model,
        inp,
        images,
        paths,
        full_layers=full_maps,
        batch_size=batch_size,
        model_name=model_id,
        layouts=layouts,
        provenance=provenance(
            model=model_id,
            spec=meta["spec"],
            dataset=dataset["id"],
            split=split,
            device=str(dev),
            batch_size=batch_size,
            seed=seed,
            full_maps=list(full_maps),
        ),
    )
    _log.info(
        "%s/%s: %d samples, %d layers in %.1f s", model_id, split, len(images), len(layers), time.perf_counter() - t0
    )
    for layer, shape in shapes.items():
        _log.info("  %s: output %s", layer, shape)


def gather_claims(
    *,
    row_files: Sequence[str],
    not_run_reasons: Mapping[str, str],
    csv: str | Path,
    md: str | Path,
    html: str | Path | None = None,
) -> None:
    """The reproduction table over every claim id (rows produced so far, else NOT RUN): CSV, Markdown and, with
    ``html``, a self-contained page (the table in ``snakemake --report``)."""
    from . import claims
    from .pages import inline_json, render_page, write_page
    from .runtime import atomic_path

    table = claims.gather_claims(row_files, not_run_reasons)
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    claims.write_claims_markdown(table, md)
    if html is not None:
        rows = table.fillna("").astype(str).to_dict(orient="records")
        page = render_page(
            "conceptscope",
            "claims",
            text={"TITLE": "conceptscope: the papers' claims"},
            data={"DATA": inline_json(rows)},
        )
        write_page(html, page)
    _log.info("claims: %s", table["verdict"].value_counts().to_dict())


def prefetch(
    *, models_config: Mapping[str, Mapping[str, Any]], datasets: Mapping[str, Mapping[str, Any]], done: str | Path
) -> None:
    """Everything a config needs from the internet, into the caches the jobs read (run where there is internet,
    e.g. a cluster's login node, before the compute jobs): the pretrained weights of every model with
    ``pretrained: true`` (:func:`conceptscope.models.fetch_weights`: Hugging Face or torch hub cache) and the
    archives of every data set with ``download: true`` (:func:`conceptscope.data.fetch_data`). ``done``
    lists what is in place.

    Raises
    ------
    RuntimeError
        Naming every item that could not be fetched, its cache directory, and the command to run on a
        machine with internet; nothing already fetched is lost.
    """
    lines, missing = [], []
    for m_id, m in models_config.items():
        if not m.get("pretrained"):
            continue
        try:
            path = models.fetch_weights(m["spec"])
        except models.PretrainedWeightsError as err:
            missing.append(f"models.{m_id} ({m['spec']}): {err}")
        else:
            lines.append(f"models.{m_id} ({m['spec']}): {path}")
    for d_id, d in datasets.items():
        try:
            fetched = data.fetch_data(d, key=f"datasets.{d_id}")
        except data.DataMissingError as err:
            missing.append(str(err))
        else:
            lines += fetched
    if missing:
        raise RuntimeError(
            f"prefetch: {len(missing)} item(s) could not be fetched (this machine is probably offline):\n  "
            + "\n  ".join(missing)
            + "\nRun `snakemake prefetch --cores 1 --configfile <your config>` on a machine with internet (a cluster's "
            "login node) that shares these cache directories with the compute nodes, then run the suite."
        )
    write_text(done, "".join(f"{line}\n" for line in lines) or "nothing to fetch\n")
    _log.info("prefetch: %d item(s) in place", len(lines))
