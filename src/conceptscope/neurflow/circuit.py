"""NeurFlow circuits: from the class logit down through the probed blocks (Cao et al., ICLR 2025, Sect. 4).

For class c, with the images the model predicts as c cut into patches
(:func:`conceptscope.neurflow.make_patches`):

1. **Concepts.** One forward pass over every patch records the spatially
   averaged activation of every probed block (:func:`conceptscope.neurflow.concept_means`:
   the mean over the spatial axes of maps, channels first or last, or over
   the tokens of a transformer block); the concept V_a of a neuron a is its
   top-k patches there.
2. **Levels.** Level 0 targets the class logit in the top block. At each
   level, for the targets a of block l: the maps of block l-1 are computed
   for the union of the targets' concepts only; the importance T(a, s, V_a)
   (paper Eq. 2, integrated gradients through the sub-network from l-1 to l,
   :func:`conceptscope.neurflow.importance`, attributing to the channels of
   block l-1 whatever its layout) gives the core neurons S_a (top
   tau by |T|; tau may not exceed the channels of block l-1); the concept is
   split into semantic groups (ward clustering of the patches' mean
   activations at l-1) with edge weights w = T / sum_s |T| per group; all
   semantic groups of the layer are then clustered into neuron groups. The
   union of the core sets are the next level's targets. The top layer (the
   class logit) is one node: its semantic groups form a single neuron group.
3. **The bottom layer** has no layer below to attribute to: each of its
   neurons forms one semantic group (its concept's mean activation at its own
   layer), clustered into neuron groups the same way, without edges below.
4. **Group edges** W(G_i, G_j) sum the member edge weights
   (:func:`conceptscope.neurflow.group_edges`).

The circuit is returned as a JSON-ready dict (nodes: layer, group, neurons,
top patches; edges: weights; the patches' image, crop scale and box) plus the
per-level arrays (targets, concepts, T, core sets) for the evaluations
(:mod:`conceptscope.neurflow.evaluate`). A class that cannot have a circuit
(no image predicted as it) gets :func:`status_circuit`: no nodes, and a
``status`` and ``reason`` that the views, evaluations and claim state
(:func:`circuit_status`; a built circuit has no ``status`` key, it is ``ok``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .accumulate import _EvalNoParamGrad
from .blocks import BlockChain
from .groups import NeuronGroup, SemanticGroup, group_edges, neuron_groups, rank_patches, semantic_groups
from .neuron_importance import adaptive_importance, core_neurons, importance
from .patches import concept_means, make_patches, top_k_patches
from .settings import NeurFlowBatchSize, NeurFlowSettings

__all__ = ["CIRCUIT_DEFAULTS", "STATUS_NO_IMAGES", "CircuitResult", "build_circuit", "circuit_status", "status_circuit"]

STATUS_NO_IMAGES = "no images"  # no image of the split is predicted as the class

_log = logging.getLogger("conceptscope")

# the settings a circuit records in its "settings" entry, in this order (batch_size: the rows used)
_RECORDED = (
    "tau",
    "k",
    "n_steps",
    "method",
    "ig_steps",
    "adaptive_rtol",
    "adaptive_max_swaps",
    "batch_size",
    "semantic_k",
    "group_k",
    "n_groups",
    "top_patches",
)


def _recorded_settings(s: NeurFlowSettings, batch_size: int) -> dict[str, Any]:
    """The settings that shape a circuit, as its JSON records them."""
    return {key: batch_size if key == "batch_size" else getattr(s, key) for key in _RECORDED}


CIRCUIT_DEFAULTS: dict[str, Any] = _recorded_settings(NeurFlowSettings(), NeurFlowBatchSize.cpu)


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
    semantic: dict[str, list[SemanticGroup]] = field(default_factory=dict)
    groups: dict[str, list[NeuronGroup]] = field(default_factory=dict)
    patch_max: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


def _level_importance(
    chain: BlockChain,
    patches: torch.Tensor,
    upper: str,
    lower: str,
    concepts: Mapping[int, np.ndarray],
    s: NeurFlowSettings,
    batch_size: int,
    progress: bool,
    device: torch.device,
    layouts: Mapping[str, str],
) -> tuple[dict[int, torch.Tensor], int]:
    """Per-patch attributions of each target over the lower block's channels, and the forward rows evaluated."""
    union = np.unique(np.concatenate(list(concepts.values())))
    where = {int(p): i for i, p in enumerate(union)}
    rows = {a: [where[int(p)] for p in v] for a, v in concepts.items()}
    with torch.no_grad():
        maps = torch.cat(
            [
                chain.prefix(patches[union[i : i + batch_size]].to(device), lower)
                for i in range(0, union.size, batch_size)
            ]
        )
    sub = chain.between(lower, upper)
    given = {"lower_layout": layouts.get(lower), "upper_layout": layouts.get(upper)}
    if s.ig_steps == "adaptive":
        attr, report = adaptive_importance(
            sub,
            maps,
            rows,
            max_steps=int(s.n_steps),
            tau=int(s.tau),
            rtol=float(s.adaptive_rtol),
            max_swaps=int(s.adaptive_max_swaps),
            batch_size=batch_size,
            **given,
        )
        return attr, int(report["evaluations"])
    attr = importance(
        sub, maps, rows, n_steps=int(s.n_steps), method=s.method, batch_size=batch_size, progress=progress, **given
    )
    return attr, union.size * int(s.n_steps)  # each distinct patch and node is evaluated once


def _group_nodes(
    layer: str, groups: Sequence[NeuronGroup], means: np.ndarray, top: int
) -> tuple[list[dict[str, Any]], set[int]]:
    nodes, shown = [], set()
    for g in groups:
        score = means[g.patches][:, g.neurons].mean(1)
        best = rank_patches(g.patches, score, top)
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
    settings: NeurFlowSettings | Mapping[str, Any] | None = None,
    image_ids: Sequence[int] | None = None,
    progress: bool = False,
    layouts: Mapping[str, str] | None = None,
) -> CircuitResult:
    """The NeurFlow circuit of one class (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        On the device to run on; it runs in eval mode (its modes are restored afterwards).
    images : Tensor (n_images, C, H, W)
        Model-ready images predicted as ``class_index`` (CPU or the model's
        device; at least one; not modified).
    layers : sequence of str
        Probed blocks from the top (the logit layer) down, e.g. ``["fc", "layer4", "layer3"]``.
    settings : NeurFlowSettings or mapping, optional
        The ``neurflow`` settings, or a ``neurflow`` config section (missing
        keys take the defaults; see :class:`NeurFlowSettings`). The circuit
        uses tau, k, n_steps, method, ig_steps, adaptive_rtol,
        adaptive_max_swaps, batch_size (the entry of the model's device),
        semantic_k, group_k, n_groups and top_patches, and records them
        (:data:`CIRCUIT_DEFAULTS` has the defaults).
    image_ids : sequence of int, optional
        Ids stored with each patch (default: the image's index).
    progress : bool
        Show progress bars of the integrated gradients.
    layouts : mapping layer -> layout, optional
        The layouts of blocks whose layout is set rather than detected from
        their output shape (the config's ``models.<id>.layouts``; see
        :func:`conceptscope.activations.layer_layout`).
    """
    s = settings if isinstance(settings, NeurFlowSettings) else NeurFlowSettings.from_config(settings)
    if len(layers) < 2:
        raise ValueError(f"a circuit needs the logit layer and at least one block below it, got {list(layers)}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"images must be a tensor of shape (n_images >= 1, C, H, W), got {getattr(images, 'shape', images)!r}"
        )
    layouts = dict(layouts or {})
    with _EvalNoParamGrad(model):
        return _build_circuit(model, images, class_index, list(layers), s, image_ids, progress, layouts)


def _build_circuit(
    model: nn.Module,
    images: torch.Tensor,
    class_index: int,
    layers: list[str],
    s: NeurFlowSettings,
    image_ids: Sequence[int] | None,
    progress: bool,
    layouts: dict[str, str],
) -> CircuitResult:
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    batch_size = s.batch_size.rows(device)
    patches, table = make_patches(images)
    means = concept_means(model, patches, layers, batch_size=batch_size, layouts=layouts)
    n_out = means[layers[0]].shape[1]
    if not 0 <= class_index < n_out:
        raise ValueError(f"class_index {class_index} is not an output of {layers[0]} ({n_out} units)")
    chain = BlockChain(model, list(layers)[::-1])
    result = CircuitResult(circuit={}, patch_max={layer: m.max(0) for layer, m in means.items()})
    semantic_k = tuple(s.semantic_k)
    group_k = tuple(s.group_k)
    targets = [int(class_index)]
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        k = min(int(s.k), len(patches))
        concepts = {a: top_k_patches(means[upper], a, k) for a in targets}
        attr, evaluations = _level_importance(
            chain, patches, upper, lower, concepts, s, batch_size, progress, device, layouts
        )
        scores = {a: attr[a].sum(0) for a in targets}
        core = {a: core_neurons(scores[a], int(s.tau)).tolist() for a in targets}
        sem = []
        for a in targets:
            v = concepts[a]
            sem += semantic_groups(upper, a, v, means[lower][v], attr[a].cpu().numpy(), core[a], k_range=semantic_k)
        result.semantic[upper] = sem
        top = upper == layers[0]  # the class logit is one node, whatever its semantic groups
        result.groups[upper] = neuron_groups(upper, sem, k_range=group_k, n_groups=1 if top else s.n_groups)
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
    k = min(int(s.k), len(patches))
    own = []
    for a in targets:
        v = top_k_patches(means[bottom], a, k)
        own.append(SemanticGroup(bottom, a, 0, v, means[bottom][v].mean(0), {}))
    result.semantic[bottom] = own
    result.groups[bottom] = neuron_groups(bottom, own, k_range=group_k, n_groups=s.n_groups)

    nodes, edges, shown = [], [], set()
    for layer in layers:
        n, sh = _group_nodes(layer, result.groups[layer], means[layer], int(s.top_patches))
        nodes += n
        shown |= sh
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        W = group_edges(result.groups[upper], result.semantic[upper], result.groups[lower])
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
        "settings": _recorded_settings(s, batch_size),
        "n_images": len(images),
        "n_patches": len(patches),
        "nodes": nodes,
        "edges": edges,
        "patches": patch_info,
        "seconds": round(result.seconds, 3),
    }
    return result


def circuit_status(circuit: Mapping[str, Any]) -> str:
    """``ok`` for a built circuit, else its ``status`` (e.g. :data:`STATUS_NO_IMAGES`)."""
    return str(circuit.get("status", "ok"))


def status_circuit(
    class_index: int,
    layers: Sequence[str],
    *,
    status: str,
    reason: str,
    settings: NeurFlowSettings | Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> CircuitResult:
    """The result for a class whose circuit cannot be built: the keys of a circuit, no nodes, edges or
    patches, ``status`` (e.g. :data:`STATUS_NO_IMAGES`) and ``reason`` (a sentence saying why)."""
    s = settings if isinstance(settings, NeurFlowSettings) else NeurFlowSettings.from_config(settings)
    if not status or status == "ok":
        raise ValueError(f"status must name why there is no circuit, got {status!r}")
    circuit = {
        "class_index": int(class_index),
        "layers": list(layers),
        "settings": _recorded_settings(s, s.batch_size.rows(device)),
        "n_images": 0,
        "n_patches": 0,
        "nodes": [],
        "edges": [],
        "patches": {},
        "seconds": 0.0,
        "status": str(status),
        "reason": str(reason),
    }
    return CircuitResult(circuit=circuit)
