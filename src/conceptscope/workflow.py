"""Glue shared by the workflow: config checks, logging for scripts, provenance.

:func:`check_config` runs when Snakemake parses the workflow, after the JSON
schema validation: it checks what a schema cannot (that a model's data set
exists, that every probed layer is a module of the model, that data folders
are present) so that a bad config fails before any job starts.
"""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .data import DATASET_KINDS, split_names

__all__ = ["canonical", "check_config", "configure_logging", "provenance", "set_threads"]

_NEEDS_ROOT = set(DATASET_KINDS) - {"digits"}


class ConfigError(ValueError):
    """The configuration is valid against the schema but inconsistent."""


def check_config(config: Mapping[str, Any], *, check_data: bool = True) -> None:
    """Cross-field checks of a schema-validated config; raise :class:`ConfigError` naming the key.

    Builds every model on the ``meta`` device (no memory, no weights, no
    download) to check its layer names.
    """
    from .activations import resolve_layers
    from .models import build_model

    datasets = config.get("datasets", {})
    problems: list[str] = []
    for ds_id, ds in datasets.items():
        key = f"datasets.{ds_id}"
        if check_data and ds["kind"] in _NEEDS_ROOT:
            root = ds.get("root")
            if not root:
                problems.append(f"{key}.root is not set; kind {ds['kind']!r} reads its files from there")
            elif not Path(root).expanduser().exists() and not ds.get("download"):
                problems.append(f"{key}.root: {root} does not exist. Put the {ds['kind']} files there or fix the path")
    for m_id, m in config.get("models", {}).items():
        key = f"models.{m_id}"
        ds = datasets.get(m["dataset"])
        if ds is None:
            problems.append(f"{key}.dataset: {m['dataset']!r} is not a key of datasets ({', '.join(datasets)})")
            continue
        splits = split_names(ds)
        for split in [*m["splits"], m["train"]["eval_split"]]:
            if split not in splits:
                problems.append(
                    f"{key}: split {split!r} does not exist for {m['dataset']} (splits: {', '.join(splits)})"
                )
        extra = sorted(set(m["full_maps"]) - set(m["layers"]))
        if extra:
            problems.append(f"{key}.full_maps: {extra} are not in {key}.layers")
        try:
            with torch.device("meta"):
                model, _ = build_model(m["spec"], n_classes=10, in_channels=ds.get("channels", 3), pretrained=False)
            resolve_layers(model, m["layers"], model_name=f"{key}.layers: {m['spec']}")
        except ValueError as err:
            problems.append(str(err))
    problems += _check_naps(config)
    problems += _check_nmf(config)
    problems += _check_nas(config)
    problems += _check_neurflow(config)
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _check_naps(config: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the ``naps`` section."""
    naps = config.get("naps") or {}
    models = config.get("models", {})
    problems = []

    def known(key: str, model: str, split: str | None = None, layer: str | None = None) -> bool:
        if model not in models:
            problems.append(f"{key}: {model!r} is not a key of models ({', '.join(models)})")
            return False
        if split is not None and split not in models[model]["splits"]:
            problems.append(f"{key}: split {split!r} is not cached for {model} (add it to models.{model}.splits)")
        if layer is not None and layer not in models[model]["layers"]:
            problems.append(f"{key}: layer {layer!r} is not probed in {model} (models.{model}.layers)")
        return True

    splits = naps.get("model_splits") or {}
    for m in splits:
        if m not in naps.get("models", []):
            problems.append(f"naps.model_splits: {m!r} is not in naps.models")
    for m in naps.get("models", []):
        known("naps.models", m, splits.get(m, naps.get("split", "test")))
    size = naps.get("input_size") or {}
    for m in size.get("models", []):
        for split in size.get("splits", []):
            known("naps.input_size.models", m, split)
    if naps.get("models") and naps.get("gallery_method", "max") not in naps.get("methods", []):
        problems.append(f"naps.gallery_method: {naps.get('gallery_method')!r} is not in naps.methods")
    for m, layer in (naps.get("fig7_layers") or {}).items():
        if m not in naps.get("models", []):
            problems.append(f"naps.fig7_layers: {m!r} is not in naps.models")
        else:
            known("naps.fig7_layers", m, layer=layer)
    for i, (ma, la, mb, lb) in enumerate(naps.get("compare") or []):
        key = f"naps.compare[{i}]"
        for m, layer in ((ma, la), (mb, lb)):
            if m not in naps.get("models", []):
                problems.append(f"{key}: {m!r} is not in naps.models")
            else:
                known(key, m, layer=layer)
        if ma in models and mb in models and models[ma]["dataset"] != models[mb]["dataset"]:
            problems.append(f"{key}: {ma} and {mb} run on different data sets; Fig. 14 compares the same images")
        if splits.get(ma, naps.get("split", "test")) != splits.get(mb, naps.get("split", "test")):
            problems.append(f"{key}: {ma} and {mb} use different NAP splits (naps.model_splits)")
    for m, ref in (naps.get("reference") or {}).items():
        if m not in naps.get("models", []):
            problems.append(f"naps.reference: {m!r} is not in naps.models")
            continue
        for layer in ref["layers"]:
            known(f"naps.reference.{m}.layers", m, layer=layer)
    return problems


def _check_nmf(config: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the ``nmf`` section."""
    nmf = config.get("nmf") or {}
    models = config.get("models", {})
    problems = []
    for m in nmf.get("models", []):
        if m not in models:
            problems.append(f"nmf.models: {m!r} is not a key of models ({', '.join(models)})")
        elif nmf.get("split", "test") not in models[m]["splits"]:
            problems.append(f"nmf.models: split {nmf.get('split', 'test')!r} is not cached for {m} (models.{m}.splits)")
    for key in ("layers", "eigen_k"):
        for m, value in (nmf.get(key) or {}).items():
            if m not in nmf.get("models", []):
                problems.append(f"nmf.{key}: {m!r} is not in nmf.models")
            elif key == "layers":
                absent = [layer for layer in value if layer not in models[m]["layers"]]
                if absent:
                    problems.append(f"nmf.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
    return problems


def _check_nas(config: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the ``nas`` section."""
    nas = config.get("nas") or {}
    models = config.get("models", {})
    problems = []
    for m in nas.get("model_splits") or {}:
        if m not in nas.get("models", []):
            problems.append(f"nas.model_splits: {m!r} is not in nas.models")
    for m in nas.get("models", []):
        split = (nas.get("model_splits") or {}).get(m, nas.get("split", "test"))
        if m not in models:
            problems.append(f"nas.models: {m!r} is not a key of models ({', '.join(models)})")
        elif split not in models[m]["splits"]:
            problems.append(f"nas.models: split {split!r} is not cached for {m}; add it to models.{m}.splits")
    for m, layers in (nas.get("layers") or {}).items():
        if m not in nas.get("models", []):
            problems.append(f"nas.layers: {m!r} is not in nas.models")
        else:
            absent = [layer for layer in layers if layer not in models[m]["layers"]]
            if absent:
                problems.append(f"nas.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
    t1, t2 = nas.get("width_thresholds", [4, 12])
    if not t1 < t2:
        problems.append(f"nas.width_thresholds: need t1 < t2, got {[t1, t2]}")
    return problems


def _check_neurflow(config: Mapping[str, Any]) -> list[str]:
    """Cross-field checks of the ``neurflow`` section."""
    nf = config.get("neurflow") or {}
    models = config.get("models", {})
    chosen = nf.get("models", [])
    problems = []
    for key in ("model_splits", "layers"):
        for m in nf.get(key) or {}:
            if m not in chosen:
                problems.append(f"neurflow.{key}: {m!r} is not in neurflow.models")
    for m in chosen:
        if m not in models:
            problems.append(f"neurflow.models: {m!r} is not a key of models ({', '.join(models)})")
            continue
        split = (nf.get("model_splits") or {}).get(m, nf.get("split", "test"))
        if split not in models[m]["splits"]:
            problems.append(f"neurflow.models: split {split!r} is not cached for {m}; add it to models.{m}.splits")
        layers = (nf.get("layers") or {}).get(m, models[m]["layers"][::-1])
        absent = [layer for layer in layers if layer not in models[m]["layers"]]
        if absent:
            problems.append(f"neurflow.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
    for key in ("semantic_k", "group_k"):
        lo, hi = nf.get(key, [2, 5])
        if lo > hi:
            problems.append(f"neurflow.{key}: need min <= max, got {[lo, hi]}")
    swaps, tau = nf.get("adaptive_max_swaps", 1), nf.get("tau", 16)
    if nf.get("ig_steps") == "adaptive" and swaps >= tau:
        problems.append(f"neurflow.adaptive_max_swaps: must be < tau ({tau}), got {swaps}")
    return problems


def canonical(obj: Any) -> Any:
    """A copy with every mapping's keys sorted, recursively.

    Snakemake detects changed ``params`` by comparing their values, and dicts
    compare by key order there: a config whose keys were merely reordered would
    otherwise rerun every job that receives a config section.
    """
    if isinstance(obj, Mapping):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    return obj


def configure_logging(log_path: str | Path | None) -> logging.Logger:
    """Log to ``log_path`` (and stderr); uncaught exceptions land in the log too."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    log = logging.getLogger("conceptscope")

    def excepthook(kind, value, tb):
        log.error("uncaught exception", exc_info=(kind, value, tb))

    sys.excepthook = excepthook
    return log


def set_threads(threads: int) -> None:
    """Use the threads Snakemake granted the job for torch's CPU kernels."""
    torch.set_num_threads(max(1, int(threads)))


def provenance(**fields: Any) -> dict[str, Any]:
    """Effective parameters plus library, torch and host versions, for sidecars."""
    return {
        "conceptscope": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **fields,
    }
