"""NeurFlow's evaluations of core sets, per level of a circuit (Cao et al., ICLR 2025, Sect. 5.2 and App.).

The tables here are the ones the workflow writes (``results/figures/neurflow/<id>_<model>_...csv``) and the
claim rules read (:mod:`conceptscope.neurflow.eval_claims`). A *level* is a pair of consecutive circuit blocks:
``upper`` (block l, the target neurons ``a``) and ``lower`` (block l-1, the channels ``s`` knocked out or
attributed); every function takes the lower block's outputs for ALL the class's patches (``maps``) and the
sub-network between the two blocks (``sub``).

- :func:`evaluation_targets` -- the targets of a level: the class logit at the top, below it the circuit's
  targets with the largest importance for the level above.
- :func:`knockout_tables` -- optimality (Fig. 4: core sets vs random subsets of the same size, NF-1) and the
  correlation of each attribution method's summed or averaged ``|score|`` with the knock-out loss
  (Fig. 6, 11, 12: NF-3, NF-4, NF-6), from ONE batched knock-out evaluation
  (:func:`conceptscope.neurflow.knockout_losses`): random subsets are shared by all targets of a class.
- :func:`k_ablation_rows` -- the core set for several concept sizes k against the one for ``neurflow.k``
  (Table 5, NF-9), from per-patch IG attributions over the largest concept.
- :func:`pearson` -- Pearson r, NaN when either side is constant (scipy's value otherwise).
- :func:`core_sets_by_tau` -- the circuit's core neurons of every block for several tau, top-down from the
  class logit (the "core" of the fidelity experiment, Fig. 5, 16, 17).
- :func:`crop_shares` -- the share of each crop scale among the concept patches of a layer's neurons (Fig. 18).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..checks import check_int
from .knockout import knockout_losses, random_subsets
from .neuron_importance import core_neurons, importance
from .patches import top_k_patches

__all__ = [
    "CONTROLS",
    "CORRELATION_COLUMNS",
    "OPTIMALITY_COLUMNS",
    "core_sets_by_tau",
    "crop_shares",
    "evaluation_targets",
    "k_ablation_rows",
    "knockout_tables",
    "pearson",
]

OPTIMALITY_COLUMNS = ("target", "tau", "kind", "draw", "loss")
# scores with no information about the channels, correlated beside the methods: ``subset_size`` (a constant,
# whose sum is the subset's size) and ``random`` (seeded uniform scores per target)
CONTROLS = ("subset_size", "random")
CORRELATION_COLUMNS = ("target", "method", "size", "aggregate", "r", "n")


def evaluation_targets(levels: Sequence[Mapping[str, Any]], upper: str, n_targets: int) -> list[int]:
    """The target neurons of the level whose upper block is ``upper``.

    Level 0 (the logit layer) has the class as its only target. Below it, the level's circuit targets (the
    union of the core sets of the level above) ranked by their largest ``|T|`` for any target of the level
    above (ties: lower channel first), the first ``n_targets``.

    Raises
    ------
    ValueError
        If no level has ``upper`` as its upper block.
    """
    n_targets = check_int("n_targets", n_targets, minimum=1)
    names = [lv["upper"] for lv in levels]
    if upper not in names:
        raise ValueError(f"no level of the circuit has {upper!r} as its upper block; levels: {names}")
    i = names.index(upper)
    targets = [int(a) for a in levels[i]["targets"]]
    if i == 0:
        return targets[:n_targets]
    parent = np.stack([np.abs(np.asarray(s, dtype=np.float64)) for s in levels[i - 1]["scores"].values()])
    strength = parent.max(0)
    order = sorted(targets, key=lambda a: (-strength[a], a))
    return order[:n_targets]


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson r of ``x`` and ``y`` (``scipy.stats.pearsonr``); NaN when either is constant or n < 2."""
    from scipy.stats import pearsonr

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {xs.shape} and {ys.shape}")
    if xs.size < 2 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return float("nan")
    return float(pearsonr(xs, ys).statistic)


def knockout_tables(
    sub: nn.Module,
    maps: torch.Tensor,
    targets: Sequence[int],
    scores: Mapping[int, Mapping[str, np.ndarray]],
    *,
    k: int,
    optimality_tau: Sequence[int],
    n_random: int,
    subset_sizes: Sequence[int],
    n_subsets: int,
    seed: int = 0,
    batch_size: int = 256,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Optimality (Fig. 4) and correlation (Fig. 6, 11, 12) tables of one class at one level.

    Parameters
    ----------
    sub, maps
        The sub-network from l-1 to l and the l-1 outputs of all the class's patches (see
        :func:`conceptscope.neurflow.knockout_losses`).
    targets : sequence of int
        Target channels of block l.
    scores : mapping target -> mapping method -> ndarray (C,)
        Per target, each attribution method's per-channel score over ``V_a``; the core set ``S_a`` of size
        tau is the top-tau channels by ``|integrated_gradients|`` (paper Eq. 2).
    k : int
        Concept size.
    optimality_tau, n_random
        Core-set sizes and random subsets per size (drawn from all channels of block l-1, as the paper's
        random tau-subsets; shared by the targets).
    subset_sizes, n_subsets
        Random subset sizes and subsets per size of the correlation experiments (shared by the targets).
    seed : int
        The random subsets of core-set size tau are drawn with the seed ``[seed, 0, tau]``, those of the
        correlation size ``[seed, 1, size]`` (:func:`conceptscope.neurflow.knockout.random_subsets`): the same
        seed gives the same subsets, and every size has its own stream.

    Returns
    -------
    optimality : DataFrame
        :data:`OPTIMALITY_COLUMNS`: per target and tau the core row (``kind`` core, ``draw`` -1) and the
        random rows (``draw`` 0..n_random-1); ``loss`` = L(S, a).
    correlation : DataFrame
        :data:`CORRELATION_COLUMNS`: per target, method, subset size (0 = all sizes pooled) and aggregate
        (``sum`` or ``mean`` of ``|score|`` over the subset), Pearson ``r`` with the loss over the ``n``
        subsets (:func:`pearson`; NaN when the loss or the score is constant). Beside the methods of
        ``scores``, the :data:`CONTROLS` (``subset_size``: the sum is the subset size, which alone correlates
        with the loss when sizes are pooled; ``random``: uniform scores seeded by ``[seed, 2, target]``).
    rows : int
        Forward rows evaluated.
    """
    targets = [int(a) for a in targets]
    if not targets:
        raise ValueError("targets must name at least one channel of block l")
    for name, values in (("optimality_tau", optimality_tau), ("subset_sizes", subset_sizes)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} must not repeat a value, got {list(values)}")
    missing = [a for a in targets if "integrated_gradients" not in scores.get(a, {})]
    if missing:
        raise ValueError(f"targets {missing} have no integrated_gradients scores")
    n_channels = int(np.asarray(scores[targets[0]]["integrated_gradients"]).shape[0])
    subsets: list[np.ndarray] = []
    core_at: dict[tuple[int, int], int] = {}
    random_at: dict[int, list[int]] = {}
    for tau in optimality_tau:
        for a in targets:
            core_at[(a, tau)] = len(subsets)
            t = torch.as_tensor(np.asarray(scores[a]["integrated_gradients"], dtype=np.float64))
            subsets.append(np.sort(core_neurons(t, int(tau)).numpy()))
        draws = random_subsets(n_channels, int(tau), n_random, seed=[seed, 0, int(tau)])
        random_at[int(tau)] = list(range(len(subsets), len(subsets) + len(draws)))
        subsets += draws
    sized: dict[int, list[int]] = {}
    for size in subset_sizes:
        draws = random_subsets(n_channels, int(size), n_subsets, seed=[seed, 1, int(size)])
        sized[int(size)] = list(range(len(subsets), len(subsets) + len(draws)))
        subsets += draws
    res = knockout_losses(
        sub, maps, subsets, targets, k, batch_size=batch_size, lower_layout=lower_layout, upper_layout=upper_layout
    )
    opt = []
    for tau in optimality_tau:
        for j, a in enumerate(targets):
            opt.append((a, int(tau), "core", -1, float(res.loss[core_at[(a, tau)], j])))
            opt += [(a, int(tau), "random", d, float(res.loss[m, j])) for d, m in enumerate(random_at[int(tau)])]
    corr = []
    pooled = [m for ms in sized.values() for m in ms]
    for j, a in enumerate(targets):
        controls = {
            "subset_size": np.ones(n_channels),
            "random": np.random.default_rng([seed, 2, a]).random(n_channels),
        }
        for method, score in {**scores[a], **controls}.items():
            mag = np.abs(np.asarray(score, dtype=np.float64))
            for size, ms in [*sized.items(), (0, pooled)]:
                loss = res.loss[ms, j]
                for agg in ("sum", "mean"):
                    val = np.array([getattr(mag[subsets[m]], agg)() for m in ms])
                    corr.append((a, method, size, agg, pearson(val, loss), len(ms)))
    return (
        pd.DataFrame(opt, columns=list(OPTIMALITY_COLUMNS)),
        pd.DataFrame(corr, columns=list(CORRELATION_COLUMNS)),
        res.rows,
    )


def k_ablation_rows(
    attributions: Mapping[int, torch.Tensor], k_values: Sequence[int], k_reference: int, tau: int
) -> pd.DataFrame:
    """Table 5: per target and k, how many of the core set for ``k_reference`` the core set for k keeps.

    Parameters
    ----------
    attributions : mapping target -> Tensor (k_max, C)
        Per-patch IG attributions (:func:`conceptscope.neurflow.importance`) over the target's top
        ``k_max`` patches IN RANK ORDER (highest activation first), ``k_max >= max(k_values, k_reference)``;
        ``T`` for concept size k is the sum of the first k rows.
    k_values, k_reference, tau

    Returns
    -------
    DataFrame
        ``target, tau, k, k_reference, overlap`` (``|S_a(k) ∩ S_a(k_reference)|``).
    """
    tau = check_int("tau", tau, minimum=1)
    rows = []
    for a, attr in attributions.items():
        need = max([*k_values, k_reference])
        if attr.shape[0] < need:
            raise ValueError(f"target {a}: attributions over {attr.shape[0]} patches, k up to {need} needed")
        ref = set(core_neurons(attr[:k_reference].sum(0), tau).tolist())
        for kk in k_values:
            got = set(core_neurons(attr[: int(kk)].sum(0), tau).tolist())
            rows.append((int(a), tau, int(kk), int(k_reference), len(got & ref)))
    return pd.DataFrame(rows, columns=["target", "tau", "k", "k_reference", "overlap"])


def core_sets_by_tau(
    chain: Any,
    patches: torch.Tensor,
    means: Mapping[str, np.ndarray],
    layers: Sequence[str],
    class_index: int,
    taus: Sequence[int],
    *,
    k: int,
    n_steps: int,
    method: str,
    batch_size: int,
    layouts: Mapping[str, str] | None = None,
) -> dict[int, dict[str, list[int]]]:
    """The circuit's core neurons of every block below the logit, for each tau (the "core" of Fig. 5, 16, 17).

    Top-down from the class logit in ``layers[0]``: the core neurons of block ``layers[i+1]`` are the union
    over the targets ``a`` (the core neurons of ``layers[i]``; at the top, the class) of the top-tau channels
    by ``|T(a, s, V_a)|`` (paper Eq. 2: IG over ``a``'s top-k patches by ``means``). For tau equal to
    ``neurflow.tau`` these are the circuit's targets of each level. IG runs once per (level, target) for the
    largest tau that reaches the target.

    Returns
    -------
    dict tau -> dict layer -> sorted list of channels
    """
    layouts = dict(layouts or {})
    device = next(chain.model.parameters()).device
    out: dict[int, dict[str, list[int]]] = {int(t): {} for t in taus}
    current = {int(t): [int(class_index)] for t in taus}
    kk = min(int(k), len(patches))
    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        needed = sorted({a for t in taus for a in current[int(t)]})
        concepts = {a: top_k_patches(means[upper], a, kk) for a in needed}
        union = np.unique(np.concatenate(list(concepts.values())))
        where = {int(p): i for i, p in enumerate(union)}
        with torch.no_grad():
            maps = torch.cat(
                [
                    chain.prefix(patches[union[i : i + batch_size]].to(device), lower)
                    for i in range(0, union.size, batch_size)
                ]
            )
        attr = importance(
            chain.between(lower, upper),
            maps,
            {a: [where[int(p)] for p in v] for a, v in concepts.items()},
            n_steps=n_steps,
            method=method,
            batch_size=batch_size,
            lower_layout=layouts.get(lower),
            upper_layout=layouts.get(upper),
        )
        for t in taus:
            t = int(t)
            core = sorted({int(s) for a in current[t] for s in core_neurons(attr[a].sum(0), t).tolist()})
            out[t][lower] = core
            current[t] = core
    return out


def crop_shares(
    means: Mapping[str, np.ndarray], scales: np.ndarray, neurons: Mapping[str, Sequence[int]], k: int
) -> pd.DataFrame:
    """Fig. 18: per layer, the share of each crop scale among its neurons' concept patches.

    Parameters
    ----------
    means : mapping layer -> ndarray (n_patches, n_units)
        Spatially averaged activations of every patch (:func:`conceptscope.neurflow.concept_means`).
    scales : ndarray (n_patches,)
        Each patch's crop scale (the ``scale`` column of :func:`conceptscope.neurflow.make_patches`).
    neurons : mapping layer -> sequence of int
        The layer's neurons (e.g. those of the circuit's groups), layers from the top down.
    k : int
        Concept size (top-k patches per neuron; patches counted once per neuron).

    Returns
    -------
    DataFrame
        ``layer, depth, scale, share, n_patches`` (depth 0 = the last layer of ``neurons``, the bottom).
    """
    layers = list(neurons)
    rows = []
    values = np.unique(scales)[::-1]
    for i, layer in enumerate(layers):
        kk = min(int(k), means[layer].shape[0])
        picked = np.concatenate([top_k_patches(means[layer], int(a), kk) for a in neurons[layer]])
        s = scales[picked]
        for v in values:
            rows.append((layer, len(layers) - 1 - i, float(v), float(np.mean(s == v)), int(picked.size)))
    return pd.DataFrame(rows, columns=["layer", "depth", "scale", "share", "n_patches"])
