"""NeurFlow evaluations of a circuit: masking neuron groups, and the debugging metric (Cao et al., ICLR 2025).

- Masking (paper Sect. 5.1, Fig. 9): :func:`masking_effect` zeroes a neuron
  group's channels and measures the drop of the class probability, against as
  many random channels of the same layer; :func:`masking_table` does so for
  every group of every layer of a circuit below the logit.
- Debugging (App. F): :func:`debugging_table` scores the split's images
  labelled or predicted as the class against every group with the metric M
  (:func:`conceptscope.neurflow.debugging_metric`), from the activation cache.

:func:`class_images` picks the images a circuit is built from: those the model
predicts as the class, by the cached predictions.
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
from .groups import debugging_metric
from .patches import class_patches
from .settings import NeurFlowBatchSize, NeurFlowSettings

if TYPE_CHECKING:
    from ..data import ImageSet
    from ..models import InputSpec

__all__ = ["class_images", "debugging_table", "masking_effect", "masking_table"]


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
    ValueError
        If no image is predicted as the class.
    """
    cached = activations.read_cache(cache, keys=[])
    if not np.array_equal(cached.sample_ids, images.sample_ids):
        raise RuntimeError(f"{cache} was cached from other samples than the split; delete it and rerun")
    pos = class_patches(cached.predictions, class_index, max_images)
    if pos.size == 0:
        raise ValueError(
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
) -> pd.DataFrame:
    """Drop of the class probability when a neuron group's channels are zeroed, against random channels.

    For each group (a list of channel indices of ``layer``), the mean softmax
    probability of ``class_index`` over ``images`` is measured with those
    channels zeroed (a forward hook on ``layer``), and with ``n_random`` draws
    of as many channels chosen uniformly from the layer (seeded). Returns one
    row per group: ``group, n_neurons, base, masked, drop, random_drop_mean,
    random_drop_std, ratio`` (drop / random mean drop).
    """
    n_random = check_int("n_random", n_random, minimum=1)
    device = next(model.parameters()).device
    module = dict(model.named_modules()).get(layer)
    if module is None:
        raise ValueError(f"model has no layer {layer!r}")
    model.eval()
    zero: list[int] = []

    def hook(_m: nn.Module, _a: Any, out: torch.Tensor) -> torch.Tensor:
        if not zero:
            return out
        out = out.clone()
        out[:, zero] = 0.0
        return out

    def prob() -> float:
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                p = model(images[i : i + batch_size].to(device)).softmax(1)[:, class_index]
                total += float(p.sum())
        return total / len(images)

    widths: list[int] = []
    probe = module.register_forward_hook(lambda _m, _a, out: widths.append(out.shape[1]))
    try:
        with torch.no_grad():
            model(images[:1].to(device))
    finally:
        probe.remove()
    n_units = widths[0]
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
) -> pd.DataFrame:
    """:func:`masking_effect` of every neuron group of a circuit, layer by layer below the logit.

    Returns the rows of :func:`masking_effect` with ``layer``, ``node``
    (``<layer>/g<group>``), ``model`` and ``class_index`` added; the top
    layer's group is the class logit itself and is not masked.
    """
    cls = int(circuit["class_index"])
    tables = []
    for layer in circuit["layers"][1:]:
        groups = [n["neurons"] for n in circuit["nodes"] if n["layer"] == layer]
        t = masking_effect(model, images, cls, layer, groups, n_random=n_random, seed=seed)
        tables.append(t.assign(layer=layer, node=[f"{layer}/g{g}" for g in t["group"]]))
    return pd.concat(tables, ignore_index=True).assign(model=circuit["model"], class_index=cls)


def debugging_table(
    circuit: Mapping[str, Any],
    caches: Mapping[str, str | Path],
    patch_max: Mapping[str, np.ndarray],
    *,
    n_images: int = NeurFlowSettings.debug_images,
) -> pd.DataFrame:
    """The debugging metric M of the split's images against every neuron group of a circuit (App. F).

    Per layer, the images labelled or predicted as the class, correctly
    predicted ones first, the first ``n_images`` of them (then in split
    order), are scored against each group by the spatially averaged
    activations of the cache; a group's neurons whose reference maximum
    ``patch_max`` (over the class's patches) is not positive are left out, and
    a group without any is skipped. Returns one row per (group, image):
    ``layer, node, position, label, prediction, M, neurons_used, neurons``.
    """
    cls = int(circuit["class_index"])
    rows = []
    for layer in circuit["layers"]:
        cached = activations.read_cache(caches[layer])
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
    return pd.DataFrame(rows)
