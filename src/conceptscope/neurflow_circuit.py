"""NeurFlow circuits: from the class logit down through the probed blocks (Cao et al., ICLR 2025, Sect. 4).

For class c, with the images the model predicts as c cut into patches
(:func:`conceptscope.neurflow.make_patches`):

1. **Concepts.** One forward pass over every patch records the spatially
   averaged activation of every probed block (:func:`concept_means`); the
   concept V_a of a neuron a is its top-k patches there.
2. **Levels.** Level 0 targets the class logit in the top block. At each
   level, for the targets a of block l: the maps of block l-1 are computed
   for the union of the targets' concepts only; the importance T(a, s, V_a)
   (paper Eq. 2, integrated gradients through the sub-network from l-1 to l,
   :func:`conceptscope.neurflow.importance`) gives the core neurons S_a (top
   tau by |T|); the concept is split into semantic groups (ward clustering of
   the patches' mean activations at l-1) with edge weights
   w = T / sum_s |T| per group; all semantic groups of the layer are then
   clustered into neuron groups. The union of the core sets are the next
   level's targets. The top layer (the class logit) is one node: its
   semantic groups form a single neuron group.
3. **The bottom layer** has no layer below to attribute to: each of its
   neurons forms one semantic group (its concept's mean activation at its own
   layer), clustered into neuron groups the same way, without edges below.
4. **Group edges** W(G_i, G_j) sum the member edge weights
   (:func:`conceptscope.neurflow_groups.group_edges`).

The circuit is returned as a JSON-ready dict (nodes: layer, group, neurons,
top patches; edges: weights; the patches' image, crop scale and box) plus the
per-level arrays (targets, concepts, T, core sets) for evaluations.

Evaluations (paper Sect. 5.1 and App. F): :func:`masking_effect` zeroes a
neuron group's channels and measures the drop of the class probability,
against as many random channels of the same layer; the debugging metric M of
an image against each group is :func:`conceptscope.neurflow_groups.debugging_metric`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import neurflow as nf
from . import neurflow_groups as ng
from .activations import record_activations

__all__ = [
    "CIRCUIT_DEFAULTS",
    "CircuitResult",
    "build_circuit",
    "concept_means",
    "masking_effect",
]

_log = logging.getLogger("conceptscope")

CIRCUIT_DEFAULTS: dict[str, Any] = {
    "tau": 16,
    "k": 50,
    "n_steps": 50,
    "method": "riemann_right",
    "ig_steps": "fixed",
    "adaptive_rtol": 0.2,
    "adaptive_max_swaps": 1,
    "batch_size": 256,
    "semantic_k": [2, 5],
    "group_k": [2, 5],
    "n_groups": None,
    "top_patches": 12,
}


def concept_means(
    model: nn.Module, patches: torch.Tensor, layers: Sequence[str], *, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Spatially averaged activation of every probed block for every patch, in one pass.

    Returns per layer an array (n_patches, n_units) float32 (dense layers: the values).
    """
    device = next(model.parameters()).device
    batches = (patches[i : i + batch_size] for i in range(0, len(patches), batch_size))
    rec = record_activations(model, list(layers), batches, device=device)
    return {layer: (r["mean"] if "mean" in r else r["values"]).numpy() for layer, r in rec.items()}


@dataclass
class CircuitResult:
    """A circuit and the per-level arrays behind it.

    Attributes
    ----------
    circuit : dict
        JSON-ready: ``layers`` (top to bottom), ``nodes``, ``edges``, ``patches``, ``settings``.
    levels : list of dict
        Per level (upper layer, lower layer): ``targets``, ``concepts``
        (target -> patch ids), ``scores`` (target -> T over the lower layer's
        channels), ``core`` (target -> S_a), ``evaluations`` (forward rows).
    semantic : dict layer -> list of SemanticGroup
    groups : dict layer -> list of NeuronGroup
    patch_max : dict layer -> ndarray (n_units,)
        Each neuron's largest spatially averaged activation over the class's
        patches: the reference max of the debugging metric.
    seconds : float
    """

    circuit: dict[str, Any]
    levels: list[dict[str, Any]] = field(default_factory=list)
    semantic: dict[str, list[ng.SemanticGroup]] = field(default_factory=dict)
    groups: dict[str, list[ng.NeuronGroup]] = field(default_factory=dict)
    patch_max: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


def _settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - set(CIRCUIT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown circuit setting(s) {sorted(unknown)}; known: {sorted(CIRCUIT_DEFAULTS)}")
    s = CIRCUIT_DEFAULTS | dict(overrides)
    if s["ig_steps"] not in ("fixed", "adaptive"):
        raise ValueError(f"ig_steps must be 'fixed' or 'adaptive', got {s['ig_steps']!r}")
    for key in ("tau", "k", "n_steps", "batch_size", "top_patches"):
        if int(s[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {s[key]}")
    return s


def _level_importance(
    chain: nf.BlockChain,
    patches: torch.Tensor,
    upper: str,
    lower: str,
    concepts: Mapping[int, np.ndarray],
    s: Mapping[str, Any],
    progress: bool,
    device: torch.device,
) -> tuple[dict[int, torch.Tensor], int]:
    """Per-patch attributions of each target over the lower block's channels, and the forward rows evaluated."""
    union = np.unique(np.concatenate(list(concepts.values())))
    where = {int(p): i for i, p in enumerate(union)}
    rows = {a: [where[int(p)] for p in v] for a, v in concepts.items()}
    with torch.no_grad():
        maps = torch.cat(
            [
                chain.prefix(patches[union[i : i + s["batch_size"]]].to(device), lower)
                for i in range(0, union.size, s["batch_size"])
            ]
        )
    sub = chain.between(lower, upper)
    if s["ig_steps"] == "adaptive":
        attr, report = nf.adaptive_importance(
            sub,
            maps,
            rows,
            max_steps=int(s["n_steps"]),
            tau=int(s["tau"]),
            rtol=float(s["adaptive_rtol"]),
            max_swaps=int(s["adaptive_max_swaps"]),
            batch_size=int(s["batch_size"]),
        )
        return attr, int(report["evaluations"])
    attr = nf.importance(
        sub,
        maps,
        rows,
        n_steps=int(s["n_steps"]),
        method=s["method"],
        batch_size=int(s["batch_size"]),
        progress=progress,
    )
    return attr, union.size * int(s["n_steps"])  # each distinct patch and node is evaluated once


def _group_nodes(
    layer: str, groups: Sequence[ng.NeuronGroup], means: np.ndarray, top: int
) -> tuple[list[dict[str, Any]], set[int]]:
    nodes, shown = [], set()
    for g in groups:
        score = means[g.patches][:, g.neurons].mean(1)
        best = ng.rank_patches(g.patches, score, top)
        shown.update(int(p) for p in best)
        nodes.append(
            {
                "id": f"{layer}/g{g.index}",
                "layer": layer,
                "group": int(g.index),
                "neurons": [int(n) for n in g.neurons],
                "top_patches": [int(p) for p in best],
                "n_patches": int(len(g.patches)),
            }
        )
    return nodes, shown


def build_circuit(
    model: nn.Module,
    images: torch.Tensor,
    class_index: int,
    layers: Sequence[str],
    *,
    settings: Mapping[str, Any] | None = None,
    image_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> CircuitResult:
    """The NeurFlow circuit of one class (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        In eval mode, on the device to run on.
    images : Tensor (n_images, C, H, W)
        Model-ready images predicted as ``class_index`` (CPU or the model's device).
    layers : sequence of str
        Probed blocks from the top (the logit layer) down, e.g. ``["fc", "layer4", "layer3"]``.
    settings : mapping
        Overrides of :data:`CIRCUIT_DEFAULTS` (tau, k, n_steps, method,
        ig_steps, adaptive_rtol, adaptive_max_swaps, batch_size, semantic_k, group_k, n_groups, top_patches).
    image_ids : sequence of int, optional
        Ids stored with each patch (default: the image's index).
    """
    s = _settings(settings or {})
    if len(layers) < 2:
        raise ValueError(f"a circuit needs the logit layer and at least one block below it, got {list(layers)}")
    t0 = time.perf_counter()
    model.eval()
    device = next(model.parameters()).device
    patches, table = nf.make_patches(images)
    means = concept_means(model, patches, layers, batch_size=int(s["batch_size"]))
    n_out = means[layers[0]].shape[1]
    if not 0 <= class_index < n_out:
        raise ValueError(f"class_index {class_index} is not an output of {layers[0]} ({n_out} units)")
    chain = nf.BlockChain(model, list(layers)[::-1])
    result = CircuitResult(circuit={}, patch_max={layer: m.max(0) for layer, m in means.items()})
    semantic_k = tuple(s["semantic_k"])
    group_k = tuple(s["group_k"])
    targets = [int(class_index)]
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        k = min(int(s["k"]), len(patches))
        concepts = {a: nf.top_k_patches(means[upper], a, k) for a in targets}
        attr, evaluations = _level_importance(chain, patches, upper, lower, concepts, s, progress, device)
        scores = {a: attr[a].sum(0) for a in targets}
        core = {a: nf.core_neurons(scores[a], min(int(s["tau"]), scores[a].numel())).tolist() for a in targets}
        sem = []
        for a in targets:
            v = concepts[a]
            sem += ng.semantic_groups(upper, a, v, means[lower][v], attr[a].cpu().numpy(), core[a], k_range=semantic_k)
        result.semantic[upper] = sem
        top = upper == layers[0]  # the class logit is one node, whatever its semantic groups
        result.groups[upper] = ng.neuron_groups(upper, sem, k_range=group_k, n_groups=1 if top else s["n_groups"])
        result.levels.append(
            {
                "upper": upper,
                "lower": lower,
                "targets": list(targets),
                "concepts": {a: concepts[a].tolist() for a in targets},
                "scores": {a: scores[a].cpu().numpy() for a in targets},
                "core": core,
                "evaluations": evaluations,
            }
        )
        _log.info(
            "%s -> %s: %d targets, %d concept patches, %d semantic groups, %d neuron groups, %d forward rows",
            upper,
            lower,
            len(targets),
            len(np.unique(np.concatenate(list(concepts.values())))),
            len(sem),
            len(result.groups[upper]),
            evaluations,
        )
        targets = sorted({int(n) for c in core.values() for n in c})
    bottom = layers[-1]
    k = min(int(s["k"]), len(patches))
    own = []
    for a in targets:
        v = nf.top_k_patches(means[bottom], a, k)
        own.append(ng.SemanticGroup(bottom, a, 0, v, means[bottom][v].mean(0), {}))
    result.semantic[bottom] = own
    result.groups[bottom] = ng.neuron_groups(bottom, own, k_range=group_k, n_groups=s["n_groups"])

    nodes, edges, shown = [], [], set()
    for layer in layers:
        n, sh = _group_nodes(layer, result.groups[layer], means[layer], int(s["top_patches"]))
        nodes += n
        shown |= sh
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        W = ng.group_edges(result.groups[upper], result.semantic[upper], result.groups[lower])
        for i, gi in enumerate(result.groups[upper]):
            for j, gj in enumerate(result.groups[lower]):
                if W[i, j] != 0.0:
                    edges.append(
                        {"source": f"{upper}/g{gi.index}", "target": f"{lower}/g{gj.index}", "weight": float(W[i, j])}
                    )
    ids = list(range(len(images))) if image_ids is None else [int(i) for i in image_ids]
    patch_info = {}
    for p in sorted(shown):
        r = table.iloc[p]
        patch_info[str(p)] = {
            "image": int(r["image"]),
            "sample_id": ids[int(r["image"])],
            "scale": float(r["scale"]),
            "box": [int(r["top"]), int(r["left"]), int(r["height"]), int(r["width"])],
        }
    result.seconds = time.perf_counter() - t0
    result.circuit = {
        "class_index": int(class_index),
        "layers": list(layers),
        "settings": {k: v for k, v in s.items()},
        "n_images": len(images),
        "n_patches": len(patches),
        "nodes": nodes,
        "edges": edges,
        "patches": patch_info,
        "seconds": round(result.seconds, 3),
    }
    return result


def masking_effect(
    model: nn.Module,
    images: torch.Tensor,
    class_index: int,
    layer: str,
    groups: Sequence[Sequence[int]],
    *,
    n_random: int = 20,
    seed: int = 0,
    batch_size: int = 256,
) -> pd.DataFrame:
    """Drop of the class probability when a neuron group's channels are zeroed, against random channels.

    For each group (a list of channel indices of ``layer``), the mean softmax
    probability of ``class_index`` over ``images`` is measured with those
    channels zeroed (a forward hook on ``layer``), and with ``n_random`` draws
    of as many channels chosen uniformly from the layer (seeded). Returns one
    row per group: ``group, n_neurons, base, masked, drop, random_drop_mean,
    random_drop_std, ratio`` (drop / random mean drop).
    """
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
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
