"""The atlas rules' jobs: read every method's concepts, align them, score recovery and faithfulness, write the page.

One function per rule (``workflow/rules/atlas.smk``), called through
:func:`conceptscope.runtime.run_job` with the rule's params, inputs and
outputs as keywords:

- :func:`atlas_concepts`: a model's concept catalog (``results/atlas/{model}/concepts.json``),
  every method's concepts as image sets (:mod:`~conceptscope.atlas.concepts`);
- :func:`atlas_alignment`: per layer where two or more methods ran, every pair
  of methods' Jaccard heatmap and matching, and the summary table
  (:mod:`~conceptscope.atlas.alignment`);
- :func:`atlas_recovery`: best-match F1 of every planted concept
  (:mod:`~conceptscope.atlas.recovery`);
- :func:`atlas_faithfulness`: every concept's direction ablated in the model
  (:mod:`~conceptscope.atlas.faithfulness`); :func:`atlas_faithfulness_table`
  gathers the models' tables and draws them.

Which concepts meet at a layer (:func:`layer_concepts`): the NAPs of one
disentanglement (``atlas.nap_method``), the coupled NMF's factors at every
layer the fit factors (one factor is one image set, shared by its layers), the
NAS units of the layer, and the NeurFlow groups of the layer pooled over the
classes. Two methods are aligned on the images both looked at: the
intersection of their universes (NAPs and NMF: the split; NAS: its per-class
sample; NeurFlow: the circuits' class images), each concept restricted to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..runtime import write_table
from . import alignment as al
from .concepts import (
    METHODS,
    Concept,
    load_concepts,
    read_concepts,
    read_neurflow_concepts,
    read_sample_ids,
    save_concepts,
)
from .settings import AtlasSettings

__all__ = [
    "FAITHFULNESS_COLUMNS",
    "atlas_alignment",
    "atlas_concepts",
    "atlas_faithfulness",
    "atlas_faithfulness_table",
    "atlas_recovery",
    "class_baseline",
    "group_variants",
    "layer_concepts",
    "method_universe",
]

_log = logging.getLogger("conceptscope")

FAITHFULNESS_COLUMNS = (
    "model",
    "layer",
    "method",
    "variant",
    "concept",
    "n_members",
    "n_images",
    "space",
    "null",
    "dimension",
    "observed",
    "random_mean",
    "random_q95",
    "p_value",
    "set_mean",
    "set_q95",
    "set_p_value",
    "n_random",
    "seed",
    "note",
)
_NULL_OF = {"naps": "gaussian", "nmf": "gaussian", "nas": "axes", "neurflow": "axes"}


# -- the catalog ---------------------------------------------------------------------------------


def atlas_concepts(
    *,
    model_id: str,
    settings: Mapping[str, Any],
    catalog: str | Path,
    naps: Sequence[str | Path] = (),
    nmf: str | Path | None = None,
    nmf_manifest: str | Path | None = None,
    nas: Sequence[str | Path] = (),
    nas_manifest: str | Path | None = None,
    neurflow: Sequence[str | Path] = (),
    neurflow_arrays: Sequence[str | Path] = (),
    neurflow_manifest: str | Path | None = None,
) -> None:
    """Write a model's concept catalog: every NAP file's NAPs, the coupled NMF's factors, the NAS units, the
    NeurFlow groups (:mod:`~conceptscope.atlas.concepts` readers; NAS by ``atlas.nas_top``).

    The catalog's meta lists ``groups``: every (method, variant, model, layer) a file was read for, also
    those without a concept (a layer where HDBSCAN found no NAP), so that the tables show them.
    """
    s = AtlasSettings.from_config(settings)
    concepts: list[Concept] = []
    groups: list[list[str]] = []

    def add(found: list[Concept], group: Sequence[str]) -> None:
        concepts.extend(found)
        if list(group) not in groups:
            groups.append(list(group))

    from ..naps.core import load_result
    from ..nas.core import load_summary

    def group(found: list[Concept], method: str, variant: str, meta: Callable[[], Mapping[str, Any]]) -> tuple:
        """The group of one file's concepts: from its first concept, else (no concept) from the file's meta."""
        if found:
            return (method, found[0].variant, model_id, found[0].layer)
        m = meta()
        return (method, variant or str(m.get("method", "")), model_id, str(m.get("layer", "")))

    for path in naps:
        found = read_concepts("naps", [path])
        add(found, group(found, "naps", "", lambda p=path: load_result(p).meta))
    if nmf is not None:
        found = read_concepts("nmf", [nmf], model=model_id, sample_ids=read_sample_ids(nmf_manifest))
        add(found, ("nmf", found[0].variant, model_id, found[0].layer))
    if nas:
        ids = read_sample_ids(nas_manifest)
        for path in nas:
            found = read_concepts("nas", [path], sample_ids=ids, top=s.nas_top)
            add(found, group(found, "nas", f"top {s.nas_top}", lambda p=path: load_summary(p).meta))
    if neurflow:
        ids = read_sample_ids(neurflow_manifest)
        arrays = list(neurflow_arrays) or [None] * len(neurflow)
        for path, arr in zip(neurflow, arrays, strict=True):
            found = read_neurflow_concepts(path, arr, sample_ids=ids)
            for layer in sorted({c.layer for c in found}, key=[c.layer for c in found].index):
                add([c for c in found if c.layer == layer], ("neurflow", "", model_id, layer))
    _log.info("%s: %d concepts in %d groups", model_id, len(concepts), len(groups))
    save_concepts(concepts, catalog, model=model_id, groups=groups)


def layer_concepts(
    concepts: Sequence[Concept],
    *,
    layers: Sequence[str],
    nap_method: str,
    groups: Sequence[Sequence[str]] = (),
) -> dict[str, dict[str, list[Concept]]]:
    """The concepts that meet at each layer: ``{layer: {method: [concepts]}}`` (see the module docstring).

    Layers in the order of ``layers`` (those without a method are left out), methods in :data:`METHODS`
    order, concepts in the method's own order. ``groups`` (the catalog's (method, variant, model, layer)
    list) adds an empty list for a method that ran at a layer and found no concept there.
    """
    out: dict[str, dict[str, list[Concept]]] = {layer: {} for layer in layers}
    for method, variant, _, layer in groups:
        if layer in out and (method != "naps" or variant == nap_method):
            out[layer].setdefault(method, [])
    for c in concepts:
        if c.method == "naps" and c.variant != nap_method:
            continue
        where = c.meta.get("layers", [c.layer]) if c.layer == "coupled" else [c.layer]
        for layer in where:
            if layer in out:
                out[layer].setdefault(c.method, []).append(c)
    return {layer: {m: by[m] for m in METHODS if m in by} for layer, by in out.items() if by}


def group_variants(groups: Sequence[Sequence[str]], nap_method: str) -> dict[tuple[str, str], str]:
    """``{(method, layer): variant}`` of a catalog's groups (the NAPs of ``nap_method`` only)."""
    return {(g[0], g[3]): g[1] for g in groups if g[0] != "naps" or g[1] == nap_method}


def method_universe(concepts: Sequence[Concept]) -> np.ndarray:
    """The ids of the images a method's concepts looked at: the union of their universes (sorted)."""
    parts = [c.universe if c.universe is not None else c.ids for c in concepts]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


# -- alignment -----------------------------------------------------------------------------------


def _pair_row(
    model: str, layer: str, a: str, b: str, n_universe: int | None, n_a: int, n_b: int, s: AtlasSettings
) -> dict:
    """The summary row of a pair that cannot be aligned (no concept on a side, or no image in common)."""
    return {
        "model": model,
        "layer": layer,
        "method_a": a,
        "method_b": b,
        "n_universe": n_universe,
        "n_a": n_a,
        "n_b": n_b,
        "n_matched": 0,
        "threshold": s.threshold,
        "n_a_with_counterpart": 0,
        "n_b_with_counterpart": 0,
        "n_matched_above": 0,
        "mean_matched_jaccard": np.nan,
        "null_mean": np.nan,
        "null_q95": np.nan,
        "p_value": np.nan,
        "n_permutations": s.n_permutations,
        "seed": None,
    }


def atlas_alignment(
    *,
    catalog: str | Path,
    model_id: str,
    layers: Sequence[str],
    nap_method: str,
    settings: Mapping[str, Any],
    seed: int,
    summary: str | Path,
    figures: str | Path,
) -> None:
    """Align every pair of methods at every layer where two or more ran.

    Writes ``figures/{layer}_{a}_{b}.png`` (Jaccard heatmap, matched cells outlined) with the cell table
    ``.csv`` beside it, and ``summary``: one row per (layer, pair) of :func:`alignment.alignment_summary`
    plus ``variant_a``, ``variant_b`` and ``figure`` (the heatmap's name in ``figures``; empty when the
    pair has no concept on a side or no image in common, its scores then NaN).
    """
    s = AtlasSettings.from_config(settings)
    concepts, meta = load_concepts(catalog)
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    rows = []
    groups = meta.get("groups", [])
    variant_of = group_variants(groups, nap_method)
    for layer, by in layer_concepts(concepts, layers=layers, nap_method=nap_method, groups=groups).items():
        for a, b in combinations(by, 2):
            ca, cb = by[a], by[b]
            universe = np.intersect1d(method_universe(ca), method_universe(cb))
            variants = {
                "variant_a": ca[0].variant if ca else variant_of.get((a, layer), ""),
                "variant_b": cb[0].variant if cb else variant_of.get((b, layer), ""),
            }
            if universe.size == 0 or not ca or not cb:  # no image set on a side: the images compared are unknown
                n = 0 if ca and cb else None
                rows.append(_pair_row(model_id, layer, a, b, n, len(ca), len(cb), s) | variants | {"figure": ""})
                continue
            A = al.membership([np.intersect1d(c.ids, universe) for c in ca], universe)
            B = al.membership([np.intersect1d(c.ids, universe) for c in cb], universe)
            J = al.jaccard_matrix(A, B)
            name = f"{layer}_{a}_{b}.png"
            title = f"{model_id} {layer}: {a} x {b} ({universe.size} images in common)"
            al.plot_alignment(
                J, [c.name for c in ca], [c.name for c in cb], al.match(J), figures / name, title, label_a=a, label_b=b
            )
            row = al.alignment_summary(
                A,
                B,
                model=model_id,
                layer=layer,
                method_a=a,
                method_b=b,
                threshold=s.threshold,
                n_permutations=s.n_permutations,
                seed=seed,
            )
            rows.append(row | variants | {"figure": name})
            _log.info("%s %s %s x %s: mean matched Jaccard %.3f", model_id, layer, a, b, row["mean_matched_jaccard"])
    columns = [*_pair_row("", "", "", "", 0, 0, 0, s), "variant_a", "variant_b", "figure"]
    write_table(pd.DataFrame(rows, columns=columns), summary, index=False)


# -- recovery ------------------------------------------------------------------------------------


def atlas_recovery(
    *,
    catalog: str | Path,
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    csv: str | Path,
    png: str | Path,
) -> None:
    """Best-match precision, recall and F1 of every planted concept, per method, variant and layer, with the
    label-permutation null (:func:`recovery.recovery_scores`); the table and its figure."""
    from .recovery import plot_recovery, read_truth, recovery_scores, write_recovery

    s = AtlasSettings.from_config(settings)
    concepts, meta = load_concepts(catalog)
    parts = [read_truth(m) for m in ([manifest] if isinstance(manifest, str | Path) else manifest)]
    names = parts[0][1]
    if any(p[1] != names for p in parts):
        raise ValueError(f"the manifests {manifest} plant different concepts")
    truth = np.concatenate([p[0] for p in parts])
    ids, first = np.unique(np.concatenate([p[2] for p in parts]), return_index=True)
    truth = truth[first]
    manifests = [manifest] if isinstance(manifest, str | Path) else manifest
    classes = pd.concat([pd.read_csv(m, usecols=["sample_id", "class_name"]) for m in manifests])
    class_of = classes.drop_duplicates("sample_id").set_index("sample_id").loc[ids, "class_name"].astype(str).to_numpy()
    table = recovery_scores(
        concepts,
        truth,
        names,
        ids,
        n_permutations=s.recovery_permutations,
        seed=seed,
        groups=[tuple(g) for g in meta["groups"]],
    )
    table = class_baseline(table, concepts, truth, names, ids, class_of)
    write_recovery(table, csv)
    plot_recovery(table, png, title=f"{meta['model']}: planted-concept recovery, best-match F1 vs permuted labels")


def class_baseline(
    table: pd.DataFrame,
    concepts: Sequence[Concept],
    truth: np.ndarray,
    names: Sequence[str],
    ids: np.ndarray,
    class_of: np.ndarray,
) -> pd.DataFrame:
    """The recovery table with the class baseline: ``class_f1``, the best F1 any one class reaches as the concept
    (``class_best`` names it), on the same images as the row's group.

    A planted concept tied to one class (all its carriers in it) is "recovered" with F1 ``2 |T| / (|class| + |T|)``
    by any concept that is just that class; a concept beats the baseline only if it picks the carriers out of
    their class. ``truth`` (n_images x n_planted) and ``class_of`` (class name per image) are by ``ids``; the
    images of a group are its concepts' universes (every image for a group without concepts).
    """
    row_of = {int(i): k for k, i in enumerate(ids)}
    groups: dict[tuple[str, str, str, str], list[Concept]] = {}
    for c in concepts:
        groups.setdefault((c.method, c.variant, c.model, c.layer), []).append(c)
    f1s, best = [], []
    for r in table.itertuples(index=False):
        cs = groups.get((r.method, r.variant, r.model, r.layer), [])
        rows = np.array([row_of[int(i)] for i in (method_universe(cs) if cs else ids)], dtype=np.int64)
        carriers = truth[rows, list(names).index(r.planted)]
        labels = class_of[rows]
        scores = {
            k: 2 * np.sum(carriers & (labels == k)) / (np.sum(labels == k) + carriers.sum()) for k in np.unique(labels)
        }
        k = max(sorted(scores), key=scores.__getitem__)  # the highest; ties: the first class name in order
        f1s.append(float(scores[k]) if carriers.any() else 0.0)
        best.append(str(k) if carriers.any() else "")
    return table.assign(class_f1=f1s, class_best=best)


# -- faithfulness --------------------------------------------------------------------------------


def _first(items: Sequence[Any], n: int) -> Sequence[Any]:
    return items if n == 0 else items[:n]


def atlas_faithfulness(
    *,
    catalog: str | Path,
    model_id: str,
    weights: str | Path,
    dataset: Mapping[str, Any],
    layers: Sequence[str],
    nap_method: str,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    table: str | Path,
    nap_caches: Sequence[str | Path] = (),
    nmf: str | Path | None = None,
    nmf_caches: Sequence[str | Path] = (),
    layouts: Mapping[str, str] | None = None,
) -> None:
    """Every concept's faithfulness: the predicted-class logit's drop on its member images when its direction is
    projected out of its layer, against random directions (:func:`faithfulness.faithfulness`).

    Directions: a NAP's raw-activation centroid (the mean of its members' disentangled features, read from
    ``nap_caches``, one cache per layer of ``layers`` on the NAP split; :func:`directions.nap_direction`); an NMF
    factor's column of ``O_j`` (``nmf``, the coupled fit); a NAS unit's axis and a NeurFlow group's units
    (:func:`directions.unit_basis`).

    Two nulls of ``n_random`` draws each. ``random_*`` and ``p_value``: random directions of the same
    dimension and norm, Gaussian (NAPs, NMF) or random unit sets (NAS, NeurFlow). ``set_*`` (NAPs and NMF
    only): the directions of random image sets of the concept's size, drawn from the split (a NAP: their raw
    centroid; an NMF factor: their mean flattened map, ``nmf_caches``, one per layer of the fit). Activations
    after a ReLU are non-negative, so a centroid lies close to the layer's mean activation and removing it
    drops every logit; the set null has the same bias and asks whether the concept's direction matters more
    than any image set's. The class of each image is the model's prediction on it.
    ``atlas.faithfulness.max_concepts`` concepts per method and layer, ``max_images`` images per concept,
    the first in order. A p-value is at least 1 / (n_random + 1).
    """
    import torch
    from tqdm import tqdm

    from .. import models
    from ..jobs import open_split
    from .faithfulness import faithfulness

    f = AtlasSettings.from_config(settings).faithfulness
    concepts, meta = load_concepts(catalog)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    layouts = dict(layouts or {})
    splits: dict[str, Any] = {}
    fits = torch.load(nmf, map_location="cpu", weights_only=False) if nmf is not None else None
    features = _Features(
        dict(zip(layers, nap_caches, strict=True)) if nap_caches else {},
        dict(zip(fits["layers"], nmf_caches, strict=True)) if fits is not None else {},
    )
    by_layer = layer_concepts(concepts, layers=layers, nap_method=nap_method, groups=meta.get("groups", []))
    work = [
        (layer, method, c)
        for layer, by in by_layer.items()
        for method, cs in by.items()
        for c in _first(cs, f.max_concepts)
    ]
    # a method that ran at a layer and found no concept there: one row that says so
    variant_of = group_variants(meta.get("groups", []), nap_method)
    rows = [
        {"model": model_id, "layer": layer, "method": method, "variant": variant_of.get((method, layer), "")}
        | {"concept": "", "n_members": 0, "n_images": 0}
        | {"null": _NULL_OF[method], "n_random": f.n_random, "seed": seed, "note": "no concept at this layer"}
        for layer, by in by_layer.items()
        for method, cs in by.items()
        if not cs
    ]
    for layer, method, c in tqdm(work, desc=f"{model_id} faithfulness", unit="concept"):
        row = {"model": model_id, "layer": layer, "method": method, "variant": c.variant, "concept": c.name}
        row |= {"n_members": c.size, "null": _NULL_OF[method], "n_random": f.n_random, "seed": seed, "note": ""}
        try:
            basis, space = _basis(c, method, layer, features, fits, model, inp, layouts.get(layer))
        except ValueError as err:  # a direction that does not exist (an all-zero centroid or column)
            rows.append(row | {"n_images": 0, "note": str(err)})
            continue
        pos = _first(c.positions, f.max_images)
        if len(pos) == 0:
            rows.append(row | {"n_images": 0, "space": space, "note": "no member images"})
            continue
        if c.split not in splits:
            splits[c.split] = open_split(dataset, c.split)
        x = inp.normalize(splits[c.split].images(np.asarray(pos), inp.size, inp.channels))
        with torch.no_grad():
            classes = torch.cat(
                [model(x[i : i + f.batch_size].to(dev)).argmax(1).cpu() for i in range(0, len(x), f.batch_size)]
            )
        common = {"n_random": f.n_random, "seed": seed, "batch_size": f.batch_size, "layout": layouts.get(layer)}
        r = faithfulness(model, layer, x, classes, basis, space, null=_NULL_OF[method], **common)
        row |= {k: r[k] for k in ("n_images", "space", "dimension", "observed", "random_mean", "random_q95")}
        row["p_value"] = r["p_value"]
        given = _set_null(c, method, layer, features, f.n_random, seed)
        if given is not None:
            g = faithfulness(model, layer, x, classes, basis, space, random_bases=given, **common)
            row |= {"set_mean": g["random_mean"], "set_q95": g["random_q95"], "set_p_value": g["p_value"]}
        rows.append(row)
    write_table(pd.DataFrame(rows, columns=list(FAITHFULNESS_COLUMNS)), table, index=False)


class _Features:
    """Features of the probed layers from their activation caches, each read once: the NAPs' disentangled
    features (``nap_caches``, by layer) and the flattened maps of the NMF layers (``flat_caches``)."""

    def __init__(self, nap_caches: Mapping[str, str | Path], flat_caches: Mapping[str, str | Path]) -> None:
        self.caches = {"nap": nap_caches, "flat": flat_caches}
        self.features: dict[tuple[str, str], np.ndarray] = {}

    def __call__(self, layer: str, method: str) -> np.ndarray:
        """Rows of the split by position: ``method`` a NAP disentanglement, or ``"flat"`` (the cache's full map)."""
        from ..activations import read_cache
        from ..naps.core import disentangle

        which = "flat" if method == "flat" else "nap"
        if (layer, method) not in self.features:
            if layer not in self.caches[which]:
                raise KeyError(f"no activation cache of layer {layer!r} was given for its {which} features")
            if which == "flat":
                cache = read_cache(self.caches[which][layer], keys=["full"])
                self.features[layer, method] = cache.arrays["full"].reshape(len(cache.labels), -1)
            else:
                cache = read_cache(self.caches[which][layer])
                self.features[layer, method] = disentangle(cache.arrays, cache.kind, method)
        return self.features[layer, method]


def _set_null(c: Concept, method: str, layer: str, features: _Features, n: int, seed: int) -> list[Any] | None:
    """The directions of ``n`` random image sets of the concept's size, the null drawn from the data (NAPs: the
    raw centroid of random images' features; NMF: the direction of the mean flattened map of random images);
    None for unit sets (their null, random units, is already drawn from the layer's own axes)."""
    from .directions import nap_direction, nmf_direction

    if method not in ("naps", "nmf") or c.size == 0:
        return None
    X = features(layer, c.variant if method == "naps" else "flat")
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(len(X), size=c.size, replace=False)) for _ in range(n)]
    if method == "naps":
        return [nap_direction(X[r].mean(0), method=c.variant)[None] for r in rows]
    return [nmf_direction(X[r].mean(0))[None] for r in rows]


def _basis(
    c: Concept, method: str, layer: str, features: _Features, fits: Any, model: Any, inp: Any, layout: str | None
) -> tuple[Any, str]:
    """A concept's basis (k x n_features) at ``layer`` and its space (see :func:`atlas_faithfulness`)."""
    from .directions import NAP_SPACES, nap_direction, nmf_direction, unit_basis

    if method == "naps":
        X = features(layer, c.variant)
        return nap_direction(X[c.positions].mean(0), method=c.variant)[None], NAP_SPACES[c.variant]
    if method == "nmf":
        j = list(fits["layers"]).index(layer)
        return nmf_direction(fits["O"][j][:, int(c.name.removeprefix("factor"))])[None], "flat"
    units = c.meta["neurons"] if method == "neurflow" else [int(c.name.removeprefix("unit"))]
    return unit_basis(units, _channels(model, layer, inp, layout)), "channel"


def _channels(model: Any, layer: str, inp: Any, layout: str | None) -> int:
    """C of a layer's output: one forward pass of a blank image, its output shape read by a hook."""
    import torch

    from ..activations import layer_layout

    shapes: list[tuple[int, ...]] = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, inp.channels, *inp.size, device=p.device, dtype=p.dtype))
    finally:
        handle.remove()
    shape = shapes[0][1:]  # without the batch axis
    kind = layer_layout(shape, layout, name=layer)
    return int(shape[-1] if kind in ("channels_last", "tokens") else shape[0])


def atlas_faithfulness_table(*, tables: Sequence[str | Path], csv: str | Path, png: str | Path) -> None:
    """One faithfulness table across models, methods and layers, and its figure: per model and layer, each
    method's mean logit drop over its concepts (filled) against the random directions' (open) and the random
    image sets' (crosses, NAPs and NMF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..runtime import save_figure

    table = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
    write_table(table, csv, index=False)
    models_ = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(len(models_), 1, figsize=(9.5, 2.6 * max(len(models_), 1)), squeeze=False)
    colors = dict(zip(METHODS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    for ax, m in zip(axes[:, 0], models_, strict=True):
        t = table[(table["model"] == m) & table["observed"].notna()]
        layers = list(dict.fromkeys(table.loc[table["model"] == m, "layer"]))
        for k, method in enumerate(METHODS):
            g = t[t["method"] == method].groupby("layer", sort=False)[["observed", "random_mean", "set_mean"]].mean()
            if g.empty:
                continue
            x = np.array([layers.index(layer) for layer in g.index]) + (k - 1.5) * 0.12
            ax.plot(x, g["observed"], "o", color=colors[method], label=f"{method} concept")
            ax.plot(x, g["random_mean"], "o", mfc="none", color=colors[method], label=f"{method} random directions")
            if g["set_mean"].notna().any():
                ax.plot(x, g["set_mean"], "x", color=colors[method], label=f"{method} random image sets")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(range(len(layers)), layers, fontsize=7)
        ax.set_ylabel("mean logit drop")
        ax.set_title(m, fontsize=9)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: hides no mark
    fig.suptitle(
        "each mark: the mean over a method's scored concepts at a layer (rows and p-values: faithfulness.csv)",
        fontsize=8,
    )
    fig.tight_layout()
    try:
        save_figure(fig, png, dpi=110)
    finally:
        plt.close(fig)
