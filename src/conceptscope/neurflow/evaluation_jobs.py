"""NeurFlow evaluation jobs (Cao et al., ICLR 2025, Sect. 5.2 and App.), one function per workflow rule.

Per (model, layer), where ``layer`` is the upper block of a circuit level (the target neurons' block):

- :func:`neurflow_attribution` -- per class and target: each attribution method's channel scores over the
  concept (Fig. 10-11) with its CPU seconds, the k ablation (Table 5) and the overlaps of the core set with
  NeuronMCT-style and NeuCEPT-style neurons (Table 3);
- :func:`neurflow_knockout` -- optimality (Fig. 4) and the correlations of Fig. 6, 11 and 12, from one
  batched knock-out evaluation per class.

Per model: :func:`neurflow_fidelity` (Fig. 5, 16, 17), :func:`neurflow_l2` (Table 4), :func:`neurflow_crops`
(Fig. 18), :func:`neurflow_tables` (Fig. 10, Tables 3 and 5 gathered over the layers). Every job reads the
classes' circuits (``circuit.json``, ``levels.pt`` of :func:`conceptscope.neurflow.jobs.neurflow_circuit`) and
works on the same images as the circuit; a class whose circuit has a status (e.g. ``no images``) is skipped
and named in the log. ``settings`` is the whole ``neurflow`` config section.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import models
from ..jobs import open_split
from ..runtime import atomic_path
from .settings import NeurFlowSettings

__all__ = [
    "neurflow_attribution",
    "neurflow_crops",
    "neurflow_fidelity",
    "neurflow_knockout",
    "neurflow_l2",
    "neurflow_tables",
]

_log = logging.getLogger("conceptscope")


@dataclass
class _Class:
    """One class's circuit and the patches it was built from."""

    index: int
    circuit: dict[str, Any]
    levels: list[dict[str, Any]]
    images: torch.Tensor
    patches: torch.Tensor
    table: pd.DataFrame


def _classes(
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    inp: models.InputSpec,
) -> Iterator[_Class]:
    """The classes whose circuits ran, with their images (normalized) and patches."""
    from .circuit import circuit_status
    from .patches import make_patches

    split = None
    for cpath, apath in zip(circuits, arrays, strict=True):
        c = json.loads(Path(cpath).read_text())
        status = circuit_status(c)
        if status != "ok":
            _log.info("class %s: circuit %s (%s); skipped", c["class_index"], status, c.get("reason", ""))
            continue
        if split is None:
            split = open_split(dataset, c["split"], manifest)
        pos = np.asarray(c["positions"], dtype=np.int64)
        x = inp.normalize(split.images(pos, inp.size, inp.channels))
        patches, table = make_patches(x)
        levels = torch.load(apath, weights_only=False)["levels"]
        yield _Class(int(c["class_index"]), c, levels, x, patches, table)


def _lower_of(layers: Sequence[str], layer: str) -> str:
    i = list(layers).index(layer)
    if i + 1 >= len(layers):
        raise ValueError(f"{layer!r} is the bottom circuit block; it has no block below to evaluate")
    return layers[i + 1]


def _block_maps(chain: Any, patches: torch.Tensor, block: str, batch: int, device: torch.device) -> torch.Tensor:
    """Outputs of ``block`` for every patch (the l-1 maps the knock-outs and attributions start from)."""
    with torch.no_grad():
        return torch.cat(
            [chain.prefix(patches[i : i + batch].to(device), block) for i in range(0, len(patches), batch)]
        )


def _unit_means(sub: nn.Module, maps: torch.Tensor, layout: str | None, batch: int) -> np.ndarray:
    """Spatially averaged activations of the upper block for every row of ``maps`` (P, C_upper)."""
    from .blocks import spatial_mean

    with torch.no_grad():
        return (
            torch.cat([spatial_mean(sub(maps[i : i + batch].clone()), layout) for i in range(0, len(maps), batch)])
            .cpu()
            .numpy()
        )


def _write_csv(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def neurflow_attribution(
    *,
    model_id: str,
    weights: str | Path,
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    layer: str,
    layers: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    scores: str | Path,
    timing: str | Path,
    overlaps: str | Path,
    k_ablation: str | Path,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Attribution scores of every method (Fig. 10-11), the k ablation (Table 5) and overlaps (Table 3).

    Per class and target ``a`` of ``layer`` (:func:`conceptscope.neurflow.evaluation_targets`): ``V_a`` is the
    top-k of the class's patches by ``a`` (k = ``neurflow.k``); each method of ``neurflow.evaluation.methods``
    scores the channels of the block below over ``V_a`` (knockoff: over all the class's patches, as NeuCEPT
    regresses the target on the channels), timed per target. IG attributions over the top ``max(k_values)``
    patches give the core set for every k (Table 5). NeuronMCT-style gates trained on ``V_a`` with the masks
    applied, and NeuCEPT-style knockoff neurons (top tau by W), are compared with the core set (F1, Table 3).
    """
    from .attribution import AttributionRefused, method_scores
    from .baselines import critical_neurons, neuronmct_gates, set_f1
    from .blocks import BlockChain
    from .experiments import evaluation_targets, k_ablation_rows
    from .knockoffs import knockoff_neurons
    from .neuron_importance import core_neurons, importance
    from .patches import top_k_patches

    s = NeurFlowSettings.from_config(settings)
    ev = s.evaluation
    layouts = dict(layouts or {})
    lower = _lower_of(layers, layer)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    chain = BlockChain(model, [lower, layer])
    sub = chain.between(lower, layer)
    batch = s.batch_size.rows(dev)
    given = {"lower_layout": layouts.get(lower), "upper_layout": layouts.get(layer)}
    saved: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    times, f1s, kab = [], [], []
    for cl in _classes(circuits, arrays, dataset, manifest, inp):
        maps = _block_maps(chain, cl.patches, lower, batch, dev)
        means = _unit_means(sub, maps, layouts.get(layer), batch)
        targets = evaluation_targets(cl.levels, layer, ev.n_targets)
        k = min(s.k, len(maps))
        k_max = min(max([*ev.k_values, k]), len(maps))
        dropped = [kk for kk in ev.k_values if kk > k_max]
        if dropped:
            _log.warning(
                "%s %s class %d: k %s exceed the class's %d patches; left out of Table 5 (more images per class: "
                "neurflow.max_images)",
                model_id,
                layer,
                cl.index,
                dropped,
                len(maps),
            )
        ranked = {a: top_k_patches(means, a, k_max) for a in targets}
        attr = importance(
            sub, maps, ranked, n_steps=s.n_steps, method=s.method, batch_size=batch, progress=False, **given
        )
        kab.append(
            k_ablation_rows(attr, sorted({kk for kk in ev.k_values if kk <= k_max} | {k}), k, s.tau).assign(
                class_index=cl.index
            )
        )
        saved[cl.index] = {}
        for a in targets:
            concept = maps[ranked[a][:k]]
            per: dict[str, np.ndarray] = {}
            for method in ev.methods:
                rows = maps if method == "knockoff" else concept
                try:
                    sc, cpu, wall = method_scores(
                        method,
                        sub,
                        rows,
                        a,
                        n_steps=s.n_steps,
                        smoothgrad_samples=ev.smoothgrad_samples,
                        smoothgrad_noise=ev.smoothgrad_noise,
                        gradient_shap_samples=ev.gradient_shap_samples,
                        seed=seed,
                        batch_size=batch,
                        **given,
                    )
                except AttributionRefused as err:
                    times.append((cl.index, a, method, np.nan, np.nan, f"refused: {err}"))
                    continue
                per[method] = sc
                times.append((cl.index, a, method, cpu, wall, "ok"))
            saved[cl.index][a] = per
            core = core_neurons(attr[a][:k].sum(0), s.tau).numpy()
            gates = neuronmct_gates(
                sub, concept, a, steps=ev.mct_steps, lr=ev.mct_lr, l1=ev.mct_l1, seed=seed, batch_size=batch, **given
            )
            mct = critical_neurons(gates, s.tau)
            sets = {"neuronmct": mct, "neurflow": core}
            if "knockoff" in per:
                sets["neucept"] = knockoff_neurons(per["knockoff"], s.tau)
            for x, y in (("neuronmct", "neurflow"), ("neuronmct", "neucept"), ("neurflow", "neucept")):
                if x in sets and y in sets:
                    f1s.append((cl.index, a, s.tau, f"{x}-{y}", set_f1(sets[x], sets[y])))
        _log.info(
            "%s %s class %d: %d targets scored by %d methods", model_id, layer, cl.index, len(targets), len(ev.methods)
        )
    with atomic_path(scores) as tmp:
        torch.save(saved, tmp)
    head = {"model": model_id, "layer": layer}
    _write_csv(
        pd.DataFrame(
            times, columns=["class_index", "target", "method", "cpu_seconds", "wall_seconds", "status"]
        ).assign(**head),
        timing,
    )
    _write_csv(pd.DataFrame(f1s, columns=["class_index", "target", "tau", "pair", "f1"]).assign(**head), overlaps)
    cols = ["class_index", "target", "tau", "k", "k_reference", "overlap"]
    _write_csv((pd.concat(kab) if kab else pd.DataFrame(columns=cols)).assign(**head), k_ablation)


def neurflow_knockout(
    *,
    model_id: str,
    weights: str | Path,
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    scores: str | Path,
    dataset: Mapping[str, Any],
    manifest: str | Path,
    layer: str,
    layers: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    optimality_csv: str | Path,
    optimality_png: str | Path,
    correlation_csv: str | Path,
    correlation_png: str | Path,
    methods_csv: str | Path,
    methods_png: str | Path,
    sum_mean_csv: str | Path,
    sum_mean_png: str | Path,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Optimality (Fig. 4) and the knock-out correlations (Fig. 6, 11, 12) of one level, all classes.

    Per class, one batched knock-out evaluation (:func:`conceptscope.neurflow.knockout_tables`) of the core
    sets for ``optimality_tau``, the random subsets of the same sizes, and the random subsets of
    ``subset_sizes`` whose summed and averaged ``|score|`` are correlated with their loss for every method.
    """
    import time

    from .blocks import BlockChain
    from .eval_plots import plot_correlation, plot_methods, plot_optimality, plot_sum_mean
    from .experiments import knockout_tables

    s = NeurFlowSettings.from_config(settings)
    ev = s.evaluation
    layouts = dict(layouts or {})
    lower = _lower_of(layers, layer)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    chain = BlockChain(model, [lower, layer])
    sub = chain.between(lower, layer)
    batch = s.batch_size.rows(dev)
    saved = torch.load(scores, weights_only=False)
    opts, corrs = [], []
    for cl in _classes(circuits, arrays, dataset, manifest, inp):
        t0 = time.perf_counter()
        maps = _block_maps(chain, cl.patches, lower, batch, dev)
        per = saved[cl.index]
        opt, corr, rows = knockout_tables(
            sub,
            maps,
            list(per),
            per,
            k=min(s.k, len(maps)),
            optimality_tau=ev.optimality_tau,
            n_random=ev.n_random,
            subset_sizes=ev.subset_sizes,
            n_subsets=ev.n_subsets,
            seed=seed,
            batch_size=batch,
            lower_layout=layouts.get(lower),
            upper_layout=layouts.get(layer),
        )
        opts.append(opt.assign(class_index=cl.index))
        corrs.append(corr.assign(class_index=cl.index))
        _log.info(
            "%s %s class %d: %d knock-out rows through %s -> %s in %.1f s",
            model_id,
            layer,
            cl.index,
            rows,
            lower,
            layer,
            time.perf_counter() - t0,
        )
    head = {"model": model_id, "layer": layer, "lower": lower}
    opt = _frame(opts, ["target", "tau", "kind", "draw", "loss", "class_index"]).assign(**head)
    corr = _frame(corrs, ["target", "method", "size", "aggregate", "r", "n", "class_index"]).assign(**head)
    ig = corr[corr["method"] == "integrated_gradients"]
    tables = {
        optimality_csv: opt,
        correlation_csv: ig[(ig["aggregate"] == "sum") & (ig["size"] > 0)],
        methods_csv: corr,
        sum_mean_csv: ig[ig["size"] == 0],
    }
    for path, table in tables.items():
        _write_csv(table, path)
    what = f"{model_id} {layer} (knock-outs in {lower})"
    plot_optimality(opt, optimality_png, title=f"{what}: core sets vs random subsets (Fig. 4)")
    plot_correlation(tables[correlation_csv], correlation_png, title=f"{what}: IG vs knock-out loss (Fig. 6)")
    plot_methods(corr, methods_png, title=f"{what}: attribution methods (Fig. 11)")
    plot_sum_mean(tables[sum_mean_csv], sum_mean_png, title=f"{what}: sum vs mean of |IG| (Fig. 12)")


def _frame(parts: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))


def neurflow_fidelity(
    *,
    model_id: str,
    weights: str | Path,
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    layers: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    fig5_csv: str | Path,
    fig5_png: str | Path,
    fig16_csv: str | Path,
    fig16_png: str | Path,
    fig17_csv: str | Path,
    fig17_png: str | Path,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Fidelity of the core neurons (Fig. 5; Fig. 16-17 with tau 20, 24 and the extended sets).

    Core neurons per tau: the circuit's, rebuilt top-down for each tau of ``fidelity_tau``
    (:func:`conceptscope.neurflow.core_sets_by_tau`: block l-1's core = the union of the top-tau channels of
    every core neuron of block l, starting from the class logit). Images: ALL the split's images labelled as the
    class; accuracy = the share predicted as the class, relative to the unmasked model
    (:func:`conceptscope.neurflow.fidelity_table`). The bottom block's outputs are computed once; every masked
    evaluation runs only the blocks above it.
    """
    from .blocks import BlockChain
    from .eval_plots import plot_extended, plot_fidelity
    from .experiments import core_sets_by_tau
    from .fidelity import FIDELITY_COLUMNS, fidelity_table
    from .patches import concept_means

    s = NeurFlowSettings.from_config(settings)
    ev = s.evaluation
    layouts = dict(layouts or {})
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    chain = BlockChain(model, list(layers)[::-1])
    batch = s.batch_size.rows(dev)
    parts = []
    for cl in _classes(circuits, arrays, dataset, manifest, inp):
        split = open_split(dataset, cl.circuit["split"], manifest)
        means = concept_means(model, cl.patches, layers, batch_size=batch, layouts=layouts)
        core = core_sets_by_tau(
            chain,
            cl.patches,
            means,
            layers,
            cl.index,
            ev.fidelity_tau,
            k=s.k,
            n_steps=s.n_steps,
            method=s.method,
            batch_size=batch,
            layouts=layouts,
        )
        core = _feasible(core, {layer: means[layer].shape[1] for layer in layers}, ev.extend, model_id, cl.index)
        if not core:
            continue
        pos = np.flatnonzero(split.labels == cl.index)
        x = inp.normalize(split.images(pos, inp.size, inp.channels))
        # the first 5 images of every other class: does a masking make the model predict the class for anything?
        rest = np.concatenate([np.flatnonzero(split.labels == c)[:5] for c in np.unique(split.labels) if c != cl.index])
        y = inp.normalize(split.images(rest, inp.size, inp.channels))
        tail = _FromBlock(chain.between(layers[-1], layers[0]))
        t = fidelity_table(
            tail,
            _block_maps(chain, x, layers[-1], batch, dev),
            cl.index,
            core,
            list(layers)[1:],
            n_random=ev.fidelity_random,
            extend=ev.extend,
            seed=seed,
            layouts=layouts,
            batch_size=batch,
            modules={layers[-1]: tail.bottom} | {b: model.get_submodule(b) for b in layers[1:-1]},
            others=_block_maps(chain, y, layers[-1], batch, dev),
        )
        parts.append(t)
        sizes = {tau: {layer: len(c) for layer, c in v.items()} for tau, v in core.items()}
        _log.info("%s class %d: %d images labelled as it; core sizes %s", model_id, cl.index, len(pos), sizes)
    table = _frame(parts, FIDELITY_COLUMNS[1:]).assign(model=model_id)[list(FIDELITY_COLUMNS)]
    small = table[table["tau"].isin([4, 8, 16]) & table["set"].isin(["core", "random"])]
    _write_csv(small, fig5_csv)
    _write_csv(table, fig16_csv)
    _write_csv(table[(table["mode"] == "retain") & table["set"].isin(["core", "extended"])], fig17_csv)
    plot_fidelity(small, fig5_png, taus=(4, 8, 16), title=f"{model_id}: masking / retaining core neurons (Fig. 5)")
    taus = tuple(sorted(ev.fidelity_tau))
    plot_fidelity(table, fig16_png, taus=taus, title=f"{model_id}: fidelity for tau {list(taus)} (Fig. 16)")
    plot_extended(table, fig17_png, title=f"{model_id}: retaining core vs extended sets (Fig. 17)")


def _feasible(
    core: Mapping[int, Mapping[str, list[int]]], units: Mapping[str, int], extend: float, model_id: str, cls: int
) -> dict[int, Mapping[str, list[int]]]:
    """The taus whose core sets leave every layer enough non-core channels for the random and extended sets
    (as many as the core set, and ``ceil(extend * |core|)``); the others are dropped with a warning."""
    keep = {}
    for tau, sets in core.items():
        short = [
            f"{layer}: {len(c)} core of {units[layer]}"
            for layer, c in sets.items()
            if units[layer] - len(c) < max(len(c), math.ceil(extend * len(c)))
        ]
        if short:
            _log.warning(
                "%s class %d, tau %d: too few non-core channels for random sets of the same size (%s); tau skipped",
                model_id,
                cls,
                tau,
                "; ".join(short),
            )
        else:
            keep[tau] = sets
    return keep


class _FromBlock(nn.Module):
    """The classifier from the stored output of its bottom circuit block: ``bottom`` (an identity standing for
    that block, so that it can be hooked) then the sub-network up to the logits."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.bottom = nn.Identity()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sub(self.bottom(x))


def neurflow_l2(
    *,
    model_id: str,
    weights: str | Path,
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    blocks: Sequence[str],
    settings: Mapping[str, Any],
    device: str,
    csv: str | Path,
    png: str | Path,
) -> None:
    """Table 4: core sets against the top-tau input channels by L2 weight norm, on consecutive convolutions.

    For every pair (lower conv, upper conv) inside ``blocks`` (:func:`conceptscope.neurflow.conv_pairs`) and
    every class: targets = the ``n_targets`` upper-conv channels with the largest mean activation over the
    class's patches; ``V_a`` their top-k patches; the core set is the top-tau by ``|T|`` (IG through the
    sub-network between the two convolutions, e.g. batch norm and ReLU), the L2 set the top-tau input channels
    by ``||W[a, s]||_2`` of the upper convolution (Cammarata et al.); both knocked out as in Fig. 4.
    """
    from .baselines import conv_pairs, l2_weight_neurons
    from .blocks import BlockChain
    from .knockout import knockout_losses
    from .neuron_importance import core_neurons, importance
    from .patches import top_k_patches

    s = NeurFlowSettings.from_config(settings)
    ev = s.evaluation
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    batch = s.batch_size.rows(dev)
    pairs = []
    for b in blocks:
        try:
            pairs += [(b, lo, up) for lo, up in conv_pairs(model, b)]
        except ValueError as err:  # a block without two consecutive convolutions (e.g. a pooling layer)
            _log.warning("%s: no convolution pair in block %s, skipped: %s", model_id, b, err)
    if not pairs:
        _log.warning(
            "%s: no block of %s holds consecutive convolutions; Table 4 stays empty (NF-8 not run). Name blocks "
            "that do in neurflow.evaluation.l2_blocks.%s",
            model_id,
            list(blocks),
            model_id,
        )
    modules = dict(model.named_modules())
    rows = []
    for cl in _classes(circuits, arrays, dataset, manifest, inp):
        for block, lo, up in pairs:
            chain = BlockChain(model, [lo, up])
            sub = chain.between(lo, up)
            maps = _block_maps(chain, cl.patches, lo, batch, dev)
            means = _unit_means(sub, maps, "channels_first", batch)
            targets = np.argsort(-means.mean(0), kind="stable")[: ev.n_targets].tolist()
            k = min(s.k, len(maps))
            concepts = {a: top_k_patches(means, a, k) for a in targets}
            attr = importance(sub, maps, concepts, n_steps=s.n_steps, method=s.method, batch_size=batch)
            weight = modules[up].weight.detach().cpu()
            sets = []
            for a in targets:
                sets.append(np.sort(core_neurons(attr[a].sum(0), s.tau).numpy()))
                sets.append(np.sort(l2_weight_neurons(weight, a, s.tau)))
            res = knockout_losses(sub, maps, sets, targets, k, batch_size=batch)
            for j, a in enumerate(targets):
                core, l2 = res.loss[2 * j, j], res.loss[2 * j + 1, j]
                rows.append((block, lo, up, cl.index, a, s.tau, core, l2, core - l2))
        _log.info("%s class %d: %d convolution pairs", model_id, cl.index, len(pairs))
    cols = ["block", "lower_conv", "upper_conv", "class_index", "target", "tau", "loss_core", "loss_l2", "diff"]
    table = pd.DataFrame(rows, columns=cols).assign(model=model_id)
    _write_csv(table, csv)
    from .eval_plots import plot_l2

    plot_l2(table, png, title=f"{model_id}: core sets vs L2 weight norm (Table 4)")


def neurflow_crops(
    *,
    model_id: str,
    weights: str | Path,
    circuits: Sequence[str | Path],
    arrays: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    layers: Sequence[str],
    settings: Mapping[str, Any],
    device: str,
    csv: str | Path,
    png: str | Path,
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Fig. 18: the crop sizes of the concept patches of each circuit block's neurons (those of its groups)."""
    from .eval_plots import plot_crops
    from .experiments import crop_shares
    from .patches import concept_means

    s = NeurFlowSettings.from_config(settings)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    batch = s.batch_size.rows(dev)
    parts = []
    for cl in _classes(circuits, arrays, dataset, manifest, inp):
        means = concept_means(model, cl.patches, layers, batch_size=batch, layouts=layouts)
        neurons = {
            layer: sorted({int(n) for node in cl.circuit["nodes"] if node["layer"] == layer for n in node["neurons"]})
            for layer in layers
        }
        parts.append(crop_shares(means, cl.table["scale"].to_numpy(), neurons, s.k).assign(class_index=cl.index))
    table = _frame(parts, ["layer", "depth", "scale", "share", "n_patches", "class_index"])
    if len(table):  # pooled over classes: the share of each scale among all the layer's concept patches
        table["count"] = table["share"] * table["n_patches"]
        g = table.groupby(["layer", "depth", "scale"], as_index=False)[["count", "n_patches"]].sum()
        table = g.assign(share=g["count"] / g["n_patches"]).drop(columns="count")
    table = table.assign(model=model_id)[["model", "layer", "depth", "scale", "share", "n_patches"]]
    _write_csv(table, csv)
    plot_crops(table, png, title=f"{model_id}: crop sizes of concept patches by depth (Fig. 18)")


def neurflow_tables(
    *,
    model_id: str,
    timing: Sequence[str | Path],
    overlaps: Sequence[str | Path],
    k_ablation: Sequence[str | Path],
    fig10_csv: str | Path,
    fig10_png: str | Path,
    table3_csv: str | Path,
    table3_png: str | Path,
    table5_csv: str | Path,
    table5_png: str | Path,
) -> None:
    """Fig. 10 (CPU seconds per target and method, ratio to IG, beside the paper's), Tables 3 and 5 (all layers)."""
    from .eval_claims import PAPER_SECONDS
    from .eval_plots import plot_k_ablation, plot_overlaps, plot_timing

    t = pd.concat([pd.read_csv(p) for p in timing], ignore_index=True)
    rows = []
    key = ["layer", "class_index", "target"]
    ok = t[t["status"] == "ok"]
    ig = ok[ok["method"] == "integrated_gradients"].set_index(key)["cpu_seconds"]
    for method, g in t.groupby("method", sort=False):
        good = g[g["status"] == "ok"]
        status = "ok" if len(good) else str(g["status"].iloc[0])
        if len(good) and len(good) < len(g):
            refused = sorted(set(g.loc[g["status"] != "ok", "layer"]))
            status = f"ok on some layers; refused on {refused}"
        cpu = good["cpu_seconds"].mean() if len(good) else math.nan
        same = ig.reindex(pd.MultiIndex.from_frame(good[key])).to_numpy() if len(good) else np.zeros(0)
        paper = PAPER_SECONDS.get(method, math.nan)
        rows.append(
            {
                "model": model_id,
                "method": method,
                "cpu_seconds_per_target": cpu,
                "wall_seconds_per_target": good["wall_seconds"].mean() if len(good) else math.nan,
                # against IG on the same targets (a method refused on some layers is compared where it ran)
                "ratio_to_ig": cpu / np.nanmean(same) if same.size and np.nanmean(same) > 0 else math.nan,
                "paper_seconds": paper,
                "paper_ratio": paper / PAPER_SECONDS["integrated_gradients"],
                "n_targets": len(good),
                "status": status,
            }
        )
    fig10 = pd.DataFrame(rows)
    _write_csv(fig10, fig10_csv)
    plot_timing(fig10, fig10_png, title=f"{model_id}: CPU seconds per target (Fig. 10)")
    t3 = pd.concat([pd.read_csv(p) for p in overlaps], ignore_index=True)
    _write_csv(t3, table3_csv)
    plot_overlaps(t3, table3_png, title=f"{model_id}: core-set overlaps (Table 3)")
    t5 = pd.concat([pd.read_csv(p) for p in k_ablation], ignore_index=True)
    _write_csv(t5, table5_csv)
    plot_k_ablation(t5, table5_png, title=f"{model_id}: core sets across k (Table 5)")
