"""NeurFlow knock-out losses, batched across channel subsets (Cao et al., ICLR 2025, Def. 2, Sect. 5.2).

Knocking out a set ``S`` of channels of block l-1 (zeroing them at every
spatial position or token) changes the spatially averaged activation of a
neuron ``a`` of block l on every patch of the class. The paper's loss is the
share of the concept that survives the re-ranking,

    ``L(S, a) = |V_a^(knock-out S) ∩ V_a| / |V_a|``,

where ``V_a`` is the top-k of ALL the class's patches by ``a``'s activation and
``V_a^(knock-out S)`` the top-k of all the class's patches again after
zeroing ``S`` (not a re-ranking of ``V_a`` only). ``L = 1`` when the knock-out
leaves the concept as it was; the lower, the more ``S`` matters for ``a``.

:func:`knockout_losses` computes ``L`` for many subsets and many targets at
once. The outputs of block l-1 for the class's patches (``maps``) are computed
once by the caller (:meth:`conceptscope.neurflow.BlockChain.prefix`); every
knock-out is a channel mask on a batch of those maps, and rows of
(subset, patch) pairs go through the sub-network from l-1 to l together, so
no knock-out runs from pixels and none runs one subset at a time. One forward
pass gives every target of block l at once, so subsets shared between targets
(e.g. the random subsets of the optimality experiment) are evaluated once.
:func:`random_subsets` draws seeded random channel subsets, optionally
disjoint from a given set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from .accumulate import _EvalNoParamGrad
from .blocks import _ChannelsFirst, _resolve_layout, _unit_mean
from .settings import NeurFlowBatchSize

__all__ = ["KnockoutResult", "knockout_losses", "overlap_loss", "random_subsets", "top_k_rows"]


def top_k_rows(values: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``values`` (m, P), the column indices of its ``k`` largest entries, in decreasing order.

    Ties go to the lower column first (the order of
    :func:`conceptscope.neurflow.top_k_patches`, which ranks in float64).

    Returns
    -------
    ndarray of int64, shape (m, k)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (subsets, patches), got shape {values.shape}")
    k = check_int("k", k, minimum=1, maximum=values.shape[1])
    return np.argsort(-values, axis=1, kind="stable")[:, :k].astype(np.int64)


def overlap_loss(after: np.ndarray, concept: Sequence[int]) -> np.ndarray:
    """``|V_a^(knock-out S) ∩ V_a| / |V_a|`` for each row of ``after`` (m, k): the re-ranked top-k patches.

    Parameters
    ----------
    after : ndarray of int, shape (m, k)
        Per knock-out, the top-k patch rows after it (:func:`top_k_rows`).
    concept : sequence of int, length k
        ``V_a``, the top-k patch rows without knock-out.

    Returns
    -------
    ndarray of float64, shape (m,), in [0, 1]
    """
    after = np.asarray(after)
    concept = np.asarray(concept, dtype=np.int64)
    if after.ndim != 2 or after.shape[1] != concept.size or concept.size == 0:
        raise ValueError(f"after must be (m, k) with k = |concept| = {concept.size} > 0, got shape {after.shape}")
    return np.isin(after, concept).sum(1) / float(concept.size)


def random_subsets(
    n_channels: int, size: int, n: int, *, seed: int | Sequence[int] = 0, exclude: Sequence[int] = ()
) -> list[np.ndarray]:
    """``n`` seeded random subsets of ``size`` distinct channels of ``range(n_channels)``, none in ``exclude``.

    Each subset is drawn without replacement (``numpy.random.default_rng(seed).choice``; ``seed`` an int or a
    sequence of ints, e.g. ``[seed, experiment, size]`` for independent streams) and returned sorted; the
    same arguments give the same subsets.

    Raises
    ------
    ValueError
        If fewer than ``size`` channels remain after ``exclude``.
    """
    n_channels = check_int("n_channels", n_channels, minimum=1)
    size = check_int("size", size, minimum=1)
    n = check_int("n", n, minimum=0)
    seed = [int(v) for v in seed] if isinstance(seed, Sequence) else int(seed)
    pool = np.setdiff1d(np.arange(n_channels), np.asarray(list(exclude), dtype=np.int64))
    if size > pool.size:
        raise ValueError(
            f"cannot draw {size} channels: only {pool.size} of {n_channels} are left outside the excluded set"
        )
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(pool, size=size, replace=False)).astype(np.int64) for _ in range(n)]


class KnockoutResult:
    """The losses of :func:`knockout_losses` and what they were computed from.

    Attributes
    ----------
    loss : ndarray of float64, shape (n_subsets, n_targets)
        ``L(S_m, a_j)``.
    concepts : dict int -> ndarray of int64, shape (k,)
        ``V_a`` per target: its top-k patch rows without knock-out, by decreasing activation.
    rows : int
        Forward rows evaluated through the sub-network (subsets x patches, the unmasked pass included).
    """

    def __init__(self, loss: np.ndarray, concepts: dict[int, np.ndarray], rows: int) -> None:
        self.loss = loss
        self.concepts = concepts
        self.rows = rows


def knockout_losses(
    sub: nn.Module,
    maps: torch.Tensor,
    subsets: Sequence[Sequence[int]],
    targets: Sequence[int],
    k: int,
    *,
    batch_size: int = NeurFlowBatchSize.cpu,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
) -> KnockoutResult:
    """Knock-out losses ``L(S, a)`` (NeurFlow Def. 2) of every subset for every target, batched.

    Parameters
    ----------
    sub : nn.Module
        The sub-network from block l-1 to block l (:meth:`BlockChain.between`); it runs in
        eval mode without parameter gradients (modes and flags restored afterwards).
    maps : Tensor, shape (P, C, h, w), (P, h, w, C), (P, T, C) or (P, C)
        Outputs of block l-1 for ALL the class's patches (not modified); computation runs
        on its device.
    subsets : sequence of sequences of int
        Channel sets ``S`` of block l-1 to zero (an empty set is the unmasked model).
    targets : sequence of int
        Channels ``a`` of block l.
    k : int
        Concept size; ``V_a`` is the top-k of the unmasked pass over the ``P`` patches.
    batch_size : int
        Forward rows (subset x patch pairs) per pass; bounds memory.
    lower_layout, upper_layout : str, optional
        Layouts of block l-1 and block l (:data:`conceptscope.activations.LAYOUTS`), detected
        from the shapes when not given.

    Returns
    -------
    KnockoutResult
        ``loss[m, j] = L(subsets[m], targets[j])``, the concepts ``V_a`` and the rows evaluated.

    Raises
    ------
    ValueError
        For a channel index outside block l-1, a target outside block l, or ``k`` above ``P``.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2 or len(maps) == 0:
        raise ValueError(f"maps must be a non-empty batch of block outputs, got {getattr(maps, 'shape', maps)!r}")
    n_patches = len(maps)
    k = check_int("k", k, minimum=1, maximum=n_patches)
    lower = _resolve_layout(maps.shape[1:], lower_layout, name="maps", param="lower_layout")
    x = maps.detach()
    if lower == "channels_last":
        x = x.permute(0, 3, 1, 2)
    elif lower == "tokens":
        x = x.transpose(1, 2)
    n_channels = x.shape[1]
    raw = [np.asarray(list(s)) for s in subsets]
    floats = [r.tolist() for r in raw if r.size and not np.issubdtype(r.dtype, np.integer)]
    if floats:
        raise ValueError(f"subsets must hold integer channel indices, got {floats[:3]}")
    sets = [r.astype(np.int64) for r in raw]
    bad = [s.tolist() for s in sets if s.size and (s.min() < 0 or s.max() >= n_channels)]
    if bad:
        raise ValueError(f"subsets must hold channel indices of block l-1 in [0, {n_channels}), got {bad[:3]}")
    targets = [int(a) for a in targets]
    if not targets:
        raise ValueError("targets must name at least one channel of block l")
    per_patch = min(n_patches, batch_size)
    per_subset = max(1, batch_size // per_patch)
    dtype = np.float64 if x.dtype == torch.float64 else np.float32  # rank in the maps' precision
    acts = np.empty((len(sets) + 1, n_patches, len(targets)), dtype=dtype)
    rows = [np.zeros(0, dtype=np.int64), *sets]  # row 0: the unmasked pass
    with _EvalNoParamGrad(sub), torch.no_grad():
        probe = _input_layout(sub, x[:1], lower)
        upper = _resolve_layout(probe.shape[1:], upper_layout, name="sub output", param="upper_layout")
        wrapped = _fused(_ChannelsFirst(sub, lower, upper))
        n_up = _unit_mean(wrapped(x[:1].clone())).shape[1]
        outside = [a for a in targets if not 0 <= a < n_up]
        if outside:
            raise ValueError(f"targets {outside} are not channels of block l ({n_up} channels)")
        for p0 in range(0, n_patches, per_patch):
            chunk = x[p0 : p0 + per_patch]
            if x.ndim == 4:
                chunk = chunk.contiguous(memory_format=torch.channels_last)
            for m0 in range(0, len(rows), per_subset):
                group = rows[m0 : m0 + per_subset]
                out = _unit_mean(wrapped(_masked(chunk, group)))[:, targets]
                acts[m0 : m0 + len(group), p0 : p0 + len(chunk)] = out.view(len(group), len(chunk), -1).cpu().numpy()
    loss = np.empty((len(sets), len(targets)), dtype=np.float64)
    concepts = {}
    for j, a in enumerate(targets):
        ranked = top_k_rows(acts[:, :, j], k)
        concepts[a] = ranked[0]
        loss[:, j] = overlap_loss(ranked[1:], ranked[0])
    return KnockoutResult(loss, concepts, rows=len(rows) * n_patches)


def _masked(chunk: torch.Tensor, group: Sequence[np.ndarray]) -> torch.Tensor:
    """Rows (subset, patch): ``chunk`` repeated per subset with the subset's channels (axis 1) zeroed."""
    keep = torch.ones(len(group), chunk.shape[1], dtype=chunk.dtype, device=chunk.device)
    for m, s in enumerate(group):
        keep[m, torch.as_tensor(s, dtype=torch.long, device=chunk.device)] = 0.0
    shape = (len(group), 1, chunk.shape[1]) + (1,) * (chunk.ndim - 2)
    return (chunk.unsqueeze(0) * keep.view(shape)).flatten(0, 1)


def _fused(module: nn.Module) -> nn.Module:
    """``module`` with every convolution followed by a batch norm (eval mode) folded into one convolution
    (``torch.fx.experimental.optimization.fuse``, on a copy); ``module`` itself when it cannot be traced.

    Folding changes the activations by float rounding only (about 1e-6 relative); every knock-out and the
    unmasked pass that defines ``V_a`` go through the same module, so ``L(no knock-out, a) = 1`` exactly.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(module)
    except Exception:  # noqa: BLE001 - not traceable by torch.fx: run as it is (same values, slower)
        return module


def _input_layout(sub: nn.Module, first: torch.Tensor, lower: str) -> torch.Tensor:
    """``sub``'s output for one channels-first row, fed in ``lower``'s own layout (to read the upper layout)."""
    if lower == "channels_last":
        first = first.permute(0, 2, 3, 1)
    elif lower == "tokens":
        first = first.transpose(1, 2)
    return sub(first.clone())
