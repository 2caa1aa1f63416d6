"""NeurFlow evaluations of a circuit: masking neuron groups, and the debugging metric (Cao et al., ICLR 2025).

- Masking (paper Sect. 5.1, Fig. 9): :func:`masking_effect` zeroes a neuron
  group's channels (at every spatial position or token of the layer's
  layout) and measures the drop of the class probability, against as
  many random channels of the same layer; :func:`masking_table` does so for
  every group of every layer of a circuit below the logit.
- Debugging (App. F): :func:`debugging_table` scores the split's images
  labelled or predicted as the class against every group with the metric M
  (:func:`conceptscope.neurflow.debugging_metric`), from the activation cache.

:func:`class_images` picks the images a circuit is built from: those the model
predicts as the class, by the cached predictions (:class:`NoClassImagesError`
when there is none; the workflow then writes outputs that say so, with
:func:`status_masking_table` for the masking table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import activations
from ..checks import check_int
from .accumulate import _EvalNoParamGrad
from .blocks import _resolve_layout
from .groups import debugging_metric
from .patches import class_patches
from .settings import NeurFlowBatchSize, NeurFlowSettings

if TYPE_CHECKING:
    from ..data import ImageSet
    from ..models import InputSpec

__all__ = [
    "DEBUGGING_COLUMNS",
    "MASKING_COLUMNS",
    "NoClassImagesError",
    "class_images",
    "debugging_table",
    "masking_effect",
    "masking_table",
    "status_masking_table",
]

# the columns of masking_table's rows and of debugging_table's rows, in order
MASKING_COLUMNS = (
    "group",
    "n_neurons",
    "base",
    "masked",
    "drop",
    "random_drop_mean",
    "random_drop_std",
    "ratio",
    "layer",
    "node",
    "model",
    "class_index",
)
DEBUGGING_COLUMNS = ("layer", "node", "position", "label", "prediction", "M", "neurons_used", "neurons")


class NoClassImagesError(ValueError):
    """No image of the split is predicted as the class: there is nothing to build its circuit from."""


def class_images(
    cache: str | Path, images: ImageSet, inp: InputSpec, class_index: int, max_images: int | None
) -> tuple[np.ndarray, torch.Tensor]:
    """The images the model predicts as ``class_index``, by the activation cache's predictions.

    Parameters
    ----------
    cache : path
        A layer's activation cache of the split (its predictions are read).
    images : ImageSet
        The split.
    inp : InputSpec
        The model input.
    class_index : int
    max_images : int or None
        Keep the first this many in split order (None: all).

    Returns
    -------
    positions : ndarray of int64, shape (m,)
        Their positions in the split.
    images : Tensor, shape (m, C, H, W)
        Fitted to the model input, not yet normalized, in [0, 1].

    Raises
    ------
    RuntimeError
        If the cache was written from other samples than the split.
    NoClassImagesError
        If no image is predicted as the class (a ``ValueError``).
    """
    cached = activations.read_cache(cache, keys=[])
    if not np.array_equal(cached.sample_ids, images.sample_ids):
        raise RuntimeError(f"{cache} was cached from other samples than the split; delete it and rerun")
    pos = class_patches(cached.predictions, class_index, max_images)
    if pos.size == 0:
        raise NoClassImagesError(
            f"no image of {images.name}/{images.split} is predicted as class {class_index}; "
            "pick another class in neurflow.classes"
        )
    return pos, images.images(pos, inp.size, inp.channels)


def masking_effect(
    model: nn.Module,
    images: torch.Tensor,
    class_index: int,
    layer: str,
    groups: Sequence[Sequence[int]],
    *,
    n_random: int = NeurFlowSettings.n_random,
    seed: int = 0,
    batch_size: int = NeurFlowBatchSize.cpu,
    layout: str | None = None,
) -> pd.DataFrame:
    """Drop of the class probability when a neuron group's channels are zeroed, against random channels.

    For each group (a list of channel indices of ``layer``), the mean softmax
    probability of ``class_index`` over ``images`` is measured with those
    channels zeroed at every position of the layer's layout (a forward hook
    on ``layer``: axis 1 of channels-first maps and vectors, the last axis of
    channels-last maps and tokens), and with ``n_random`` draws of as many
    channels chosen uniformly from the layer (seeded). The model runs in eval
    mode (its modes are restored) and ``images`` are not modified.

    ``layout`` is the layer's (:data:`conceptscope.activations.LAYOUTS`),
    detected from its output shape when not given. Returns one row per group:
    ``group, n_neurons, base, masked, drop, random_drop_mean,
    random_drop_std, ratio`` (drop / random mean drop).
    """
    n_random = check_int("n_random", n_random, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch tensor, got {getattr(images, 'shape', images)!r}")
    device = next(model.parameters()).device
    module = dict(model.named_modules()).get(layer)
    if module is None or not layer:
        raise ValueError(f"model has no layer {layer!r}")
    zero: list[int] = []
    last = False  # whether the channels are on the last axis (channels-last maps, tokens)

    def hook(_m: nn.Module, _a: Any, out: torch.Tensor) -> torch.Tensor:
        if not zero:
            return out
        out = out.clone()
        if last:
            out[..., zero] = 0.0
        else:
            out[:, zero] = 0.0
        return out

    def prob() -> float:
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                p = model(images[i : i + batch_size].clone().to(device)).softmax(1)[:, class_index]
                total += float(p.sum())
        return total / len(images)

    with _EvalNoParamGrad(model):
        shapes: list[tuple[int, ...]] = []
        probe = module.register_forward_hook(lambda _m, _a, out: shapes.append(tuple(out.shape[1:])))
        try:
            with torch.no_grad():
                model(images[:1].clone().to(device))
        finally:
            probe.remove()
        layout = _resolve_layout(shapes[0], layout, name=f"layer {layer}", param="layout")
        last = layout in ("channels_last", "tokens")
        n_units = shapes[0][-1] if last else shapes[0][0]
        bad = [list(g) for g in groups if any(not 0 <= int(n) < n_units for n in g)]
        if bad:
            raise ValueError(f"groups of {layer} must hold channel indices in [0, {n_units}), got {bad}")
        handle = module.register_forward_hook(hook)
        try:
            base = prob()
            rng = np.random.default_rng(seed)
            rows = []
            for gi, neurons in enumerate(groups):
                zero[:] = [int(n) for n in neurons]
                masked = prob()
                drops = []
                for _ in range(n_random):
                    zero[:] = rng.choice(n_units, size=len(neurons), replace=False).tolist()
                    drops.append(base - prob())
                zero.clear()
                mean = float(np.mean(drops))
                rows.append(
                    {
                        "group": gi,
                        "n_neurons": len(neurons),
                        "base": base,
                        "masked": masked,
                        "drop": base - masked,
                        "random_drop_mean": mean,
                        "random_drop_std": float(np.std(drops)),
                        "ratio": (base - masked) / mean if mean > 0 else float("inf"),
                    }
                )
        finally:
            handle.remove()
    return pd.DataFrame(rows)


def masking_table(
    model: nn.Module,
    images: torch.Tensor,
    circuit: Mapping[str, Any],
    *,
    n_random: int = NeurFlowSettings.n_random,
    seed: int = 0,
    layouts: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`masking_effect` of every neuron group of a circuit, layer by layer below the logit.

    Returns the rows of :func:`masking_effect` with ``layer``, ``node``
    (``<layer>/g<group>``), ``model`` and ``class_index`` added (the columns
    :data:`MASKING_COLUMNS`); the top layer's group is the class logit itself
    and is not masked. ``layouts``: the layers' layouts set rather than
    detected (the config's ``models.<id>.layouts``).
    """
    cls = int(circuit["class_index"])
    layouts = dict(layouts or {})
    tables = []
    for layer in circuit["layers"][1:]:
        groups = [n["neurons"] for n in circuit["nodes"] if n["layer"] == layer]
        t = masking_effect(model, images, cls, layer, groups, n_random=n_random, seed=seed, layout=layouts.get(layer))
        tables.append(t.assign(layer=layer, node=[f"{layer}/g{g}" for g in t["group"]]))
    return pd.concat(tables, ignore_index=True).assign(model=circuit["model"], class_index=cls)


def status_masking_table(model: str, class_index: int, status: str, reason: str) -> pd.DataFrame:
    """The masking table of a class whose circuit did not run: no group rows, one row stating why.

    Columns :data:`MASKING_COLUMNS` (empty but ``model`` and ``class_index``),
    then ``status`` (e.g. ``no images``) and ``reason``; the claim NF-12 counts
    such a class as not run (:func:`conceptscope.neurflow.nf_12`).
    """
    row = dict.fromkeys(MASKING_COLUMNS, np.nan) | {"model": model, "class_index": int(class_index)}
    return pd.DataFrame([row | {"status": status, "reason": reason}])


def debugging_table(
    circuit: Mapping[str, Any],
    caches: Mapping[str, str | Path],
    patch_max: Mapping[str, np.ndarray],
    *,
    n_images: int = NeurFlowSettings.debug_images,
    layouts: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The debugging metric M of the split's images against every neuron group of a circuit (App. F).

    Per layer, the images labelled or predicted as the class, correctly
    predicted ones first, the first ``n_images`` of them (then in split
    order), are scored against each group by the spatially averaged
    activations of the cache; a group's neurons whose reference maximum
    ``patch_max`` (over the class's patches) is not positive are left out, and
    a group without any is skipped. Returns one row per (group, image), the
    columns :data:`DEBUGGING_COLUMNS`: ``layer, node, position, label,
    prediction, M, neurons_used, neurons`` (none for a circuit without nodes).

    The cached means are per unit whatever the layer's layout; ``layouts``
    (the layouts set in the config) are checked against the ones the cache
    files record, so that a stale cache is not scored against the circuit.
    """
    cls = int(circuit["class_index"])
    layouts = dict(layouts or {})
    rows = []
    for layer in circuit["layers"]:
        cached = activations.read_cache(caches[layer])
        if layer in layouts and cached.layout != layouts[layer]:
            raise RuntimeError(
                f"{caches[layer]} holds {layer} cached as {cached.layout}, the config sets {layouts[layer]}; "
                "delete it and rerun"
            )
        acts = cached.arrays["mean" if "mean" in cached.arrays else "values"]
        pick = np.flatnonzero((cached.labels == cls) | (cached.predictions == cls))
        order = np.argsort(cached.labels[pick] != cached.predictions[pick], kind="stable")
        pick = np.sort(pick[order][:n_images])
        ref = patch_max[layer]
        for n in (n for n in circuit["nodes"] if n["layer"] == layer):
            usable = [u for u in n["neurons"] if ref[u] > 0]
            if not usable:
                continue
            m = debugging_metric(acts[pick], usable, ref)
            rows += [
                {
                    "layer": layer,
                    "node": n["id"],
                    "position": int(p),
                    "label": int(cached.labels[p]),
                    "prediction": int(cached.predictions[p]),
                    "M": float(v),
                    "neurons_used": len(usable),
                    "neurons": len(n["neurons"]),
                }
                for p, v in zip(pick, m, strict=True)
            ]
    return pd.DataFrame(rows, columns=list(DEBUGGING_COLUMNS))
