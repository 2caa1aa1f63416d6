"""Config checks at parse time, after the JSON schema validation.

:func:`check_config` runs when Snakemake parses the workflow: it checks what a
schema cannot (that a model's data set exists, that every probed layer is a
module of the model, that data folders are present) and then builds every
paper's settings object from its section (:mod:`conceptscope.settings`), which
checks its own values and its references to models, splits and layers. A bad
config fails before any job starts, with every problem listed.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import DATASET_KINDS, DOWNLOADABLE, check_split_files, split_names
from .runtime import write_text
from .settings import ConfigError, Section

__all__ = [
    "SECTIONS",
    "ConfigError",
    "canonical",
    "check_config",
    "layer_layouts",
    "layer_minimums",
    "layer_shapes",
    "schema_problem",
    "section_settings",
    "validate_config",
]

_NEEDS_ROOT = set(DATASET_KINDS) - {"digits", "planted"}

# config section -> the settings class of the paper that owns it (imported when needed)
SECTIONS = {
    "naps": "conceptscope.naps.settings:NapSettings",
    "nmf": "conceptscope.nmf.settings:NmfSettings",
    "nas": "conceptscope.nas.settings:NasSettings",
    "neurflow": "conceptscope.neurflow.settings:NeurFlowSettings",
    "atlas": "conceptscope.atlas.settings:AtlasSettings",
}


def section_settings(key: str) -> type[Section]:
    """The settings class of config section ``key`` (one of :data:`SECTIONS`)."""
    module, name = SECTIONS[key].split(":")
    return getattr(importlib.import_module(module), name)


def validate_config(config: dict[str, Any], schema: str | Path, *, detail: str | Path | None = None) -> None:
    """Validate ``config`` against the JSON schema (filling its defaults), then :func:`check_config`.

    A schema violation raises :class:`ConfigError` in a few lines: the key
    path, the offending value, the expected type or the closest valid names;
    the validator's full report (which quotes the whole schema and config) is
    written to ``detail`` when given, and the message says so.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema))
    except WorkflowError as err:
        where = ""
        if detail is not None:
            write_text(detail, str(err))
            where = f"\n  (the validator's full report: {detail})"
        raise ConfigError("invalid configuration:\n  - " + schema_problem(config, schema) + where) from None
    check_config(config)


def schema_problem(config: Mapping[str, Any], schema: str | Path) -> str:
    """The most relevant schema violation of ``config`` in one sentence (key path, value, what is expected)."""
    import jsonschema
    import yaml

    spec = yaml.safe_load(Path(schema).read_text(encoding="utf-8"))
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(spec).iter_errors(config))
    if err is None:
        return "the configuration does not match the schema"
    path = ".".join(str(p) for p in err.absolute_path) or "the top level"
    value = err.instance
    if err.validator == "additionalProperties" and isinstance(value, Mapping):
        known = list(err.schema.get("properties", {}))
        extra = [k for k in value if k not in known]
        hints = []
        for k in extra:
            close = difflib.get_close_matches(str(k), known, n=3)
            hints.append(f"{k!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        return f"{path}: unknown key {', '.join(hints)}; the keys there are {', '.join(known)}"
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    if err.validator == "enum":
        close = difflib.get_close_matches(str(value), [str(v) for v in err.validator_value], n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        return f"{path}: {shown} is not one of {err.validator_value}{hint}"
    if err.validator == "type":
        return f"{path}: {shown} is not of type {err.validator_value}"
    return f"{path}: {err.message if len(err.message) <= 200 else err.message[:197] + '...'}"


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
                fetch = (
                    f", or set {key}.download: true and run `snakemake prefetch --cores 1` where there is internet"
                    if ds["kind"] in DOWNLOADABLE
                    else ""
                )
                problems.append(
                    f"{key}.root: {root} does not exist. Put the {ds['kind']} files there or fix the path{fetch}"
                )
            else:
                problems += check_split_files(ds, _used_splits(config, ds_id), key=key)
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
        extra = sorted(set(m.get("layouts", {})) - set(m["layers"]))
        if extra:
            problems.append(f"{key}.layouts: {extra} are not in {key}.layers")
        try:
            with torch.device("meta"):
                try:
                    model, _ = build_model(m["spec"], n_classes=10, in_channels=ds.get("channels", 3), pretrained=False)
                except ValueError as err:
                    raise ValueError(f"{key}.spec: {err}") from None
            resolve_layers(model, m["layers"], model_name=f"{key}.layers: {m['spec']}")
            order = list(layer_layouts(config, m_id))
            listed = [layer for layer in m["layers"] if layer in order]
            if listed != order:
                problems.append(
                    f"{key}.layers: list the probed layers in forward order ({', '.join(order)}); NAP depth, "
                    "NMF depth trends and NeurFlow's default blocks follow this order"
                )
        except ValueError as err:
            problems.append(str(err))
        except AssertionError as err:  # timm's checks of the input grid (patch size, window size)
            problems.append(
                f"{key}.input_size {m.get('input_size')}: {m['spec']} refuses this input size ({err}); "
                "use a size the model supports (e.g. a multiple of its patch and window sizes)"
            )
        except (RuntimeError, NotImplementedError):
            pass  # an op without a meta kernel: the cache job detects (or refuses) the layouts when it runs
    if not problems:  # the sections refer to models and layers: check those first
        for key in SECTIONS:
            try:
                problems += section_settings(key).from_config(config.get(key)).check(config)
            except ConfigError as err:
                problems.append(str(err))
            except (RuntimeError, NotImplementedError):
                pass  # a model the meta device cannot run: its jobs check shapes and layouts when they run
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def layer_layouts(config: Mapping[str, Any], model_id: str) -> dict[str, str]:
    """The layout of every probed layer of ``models.<model_id>`` (set in ``layouts``, else detected).

    Raises
    ------
    conceptscope.activations.LayoutError
        If a layer's layout cannot be detected or the one set does not fit,
        naming ``models.<id>`` and the layer.
    """
    from .activations import layer_layout

    m = config["models"][model_id]
    set_ = m.get("layouts") or {}
    return {
        layer: layer_layout(shape, set_.get(layer), name=f"models.{model_id} layer {layer}")
        for layer, shape in layer_shapes(config, model_id).items()
    }


def layer_minimums(config: Mapping[str, Any], model_id: str, *, n: int = 4, seed: int = 0) -> dict[str, float]:
    """The smallest value each probed layer of ``models.<model_id>`` outputs on ``n`` seeded random inputs.

    The model is built on the CPU with random weights (no download), so this
    shows structural signs only: a layer after a ReLU never goes below 0,
    a layer that is negative here is negative for trained weights too unless
    training happens to avoid it. Used to refuse, at parse time, methods that
    need non-negative activations (coupled NMF) on layers that have none.
    """
    from .models import build_model

    m = config["models"][model_id]
    ds = config["datasets"][m["dataset"]]
    size = tuple(m["input_size"]) if m.get("input_size") else None
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model, inp = build_model(m["spec"], n_classes=10, in_channels=ds.get("channels", 3), input_size=size)
        x = inp.normalize(torch.rand(n, inp.channels, *inp.size))
    found: dict[str, float] = {}
    modules = dict(model.named_modules())
    handles = [
        modules[layer].register_forward_hook(
            lambda _m, _i, out, name=layer: found.__setitem__(name, min(found.get(name, np.inf), float(out.min())))
        )
        for layer in m["layers"]
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return found


def _used_splits(config: Mapping[str, Any], dataset_id: str) -> list[str]:
    """The splits of a data set that some model trains on, evaluates on or caches."""
    used = set()
    for m in config.get("models", {}).values():
        if m["dataset"] == dataset_id:
            train = m["train"]
            used |= {*m["splits"], train["eval_split"], *([train["train_split"]] if train["epochs"] else [])}
    return sorted(used)


def layer_shapes(config: Mapping[str, Any], model_id: str) -> dict[str, tuple[int, ...]]:
    """Output shape (without the batch axis) of every probed layer of ``models.<model_id>``, in the order the
    layers first run in a forward pass (their forward order).

    One forward pass of a single input on the ``meta`` device: no memory, no
    weights, no download. The model is built with the data set's channels and
    10 classes (only the logit layer's width depends on the class count).
    """
    m = config["models"][model_id]
    ds = config["datasets"][m["dataset"]]
    size = tuple(m["input_size"]) if m.get("input_size") else None
    return dict(_layer_shapes(m["spec"], tuple(m["layers"]), ds.get("channels", 3), size))


@lru_cache(maxsize=32)
def _layer_shapes(
    spec: str, layers: tuple[str, ...], in_channels: int, input_size: tuple[int, int] | None
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from .activations import resolve_layers
    from .models import build_model

    with torch.device("meta"):
        model, inp = build_model(spec, n_classes=10, in_channels=in_channels, pretrained=False, input_size=input_size)
    model.eval()
    shapes: dict[str, tuple[int, ...]] = {}  # in the order the layers first run

    def record(name: str):
        def hook(_module: torch.nn.Module, _args: Any, out: Any) -> None:  # returns None: the output stays
            if isinstance(out, torch.Tensor) and name not in shapes:
                shapes[name] = tuple(out.shape[1:])

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in resolve_layers(model, layers).items()]
    try:
        with torch.no_grad():
            model(torch.empty(1, inp.channels, *inp.size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return tuple(shapes.items())


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
