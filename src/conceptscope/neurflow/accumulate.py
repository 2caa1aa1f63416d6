"""Weighted path gradients of many (patch, target) pairs of NeurFlow, each (patch, node) point evaluated once.

The sum behind NeurFlow Eq. 2 (Cao et al., ICLR 2025) for every pair of a
concept patch ``p`` and a target ``a`` whose concept holds it,
``sum_k w_k sum_space maps[p] * grad f_a(alpha_k maps[p])``, computed with one
forward pass per chunk of (patch, node) rows and one backward pass per target
slot (:func:`_accumulate`); :class:`_Pairs` groups the pairs by patch and
:func:`_chunks` cuts the rows so that few backward rows idle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .affine import _Plan
from .blocks import _unit_mean


class _Pairs:
    """The (patch, target) pairs of a set of concepts, grouped by patch.

    ``patches`` are the distinct rows of ``maps`` used by any concept, sorted by
    decreasing number of targets (so a chunk of rows needs about as many
    backward passes as each of its rows has targets); ``slots[j, q]`` is the pair
    index of the q-th target of patch j (-1 past its count) and ``targets[j, q]``
    that target.
    """

    def __init__(self, concepts: Mapping[int, np.ndarray]) -> None:
        by_patch: dict[int, list[int]] = {}
        for a, rows in concepts.items():
            for p in np.unique(rows):
                by_patch.setdefault(int(p), []).append(int(a))
        order = sorted(by_patch, key=lambda p: (-len(by_patch[p]), p))
        width = max((len(v) for v in by_patch.values()), default=0)
        self.patches = np.asarray(order, dtype=np.int64)
        self.counts = np.asarray([len(by_patch[p]) for p in order], dtype=np.int64)
        self.slots = np.full((len(order), width), -1, dtype=np.int64)
        self.targets = np.zeros((len(order), width), dtype=np.int64)
        self.index: dict[tuple[int, int], int] = {}
        for j, p in enumerate(order):
            for q, a in enumerate(by_patch[p]):
                self.index[(p, a)] = len(self.index)
                self.slots[j, q] = self.index[(p, a)]
                self.targets[j, q] = a

    def __len__(self) -> int:
        return len(self.index)

    def ids(self, target: int, rows: np.ndarray, device: torch.device) -> torch.Tensor:
        """Pair indices of ``(row, target)`` for each of ``rows`` (in their order, repeats kept)."""
        return torch.as_tensor([self.index[(int(p), target)] for p in rows], dtype=torch.long, device=device)


class _EvalNoParamGrad:
    """Context: module (and every submodule) in eval mode, parameters not requiring grad; restored on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.modes = {m: m.training for m in self.module.modules()}
        self.flags = [(p, p.requires_grad) for p in self.module.parameters()]
        self.module.eval()
        for p, _ in self.flags:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes.items():
            m.training = mode
        for p, flag in self.flags:
            p.requires_grad_(flag)


# A pass (forward or one backward) over a chunk costs at least about this many rows' worth of work
# (Python and autograd overhead, small-batch inefficiency); used only to choose chunk boundaries.
_PASS_OVERHEAD_ROWS = 16


def _chunks(counts: np.ndarray, n_nodes: int, batch_size: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of at most ``batch_size`` rows over patch-major rows.

    ``counts`` (targets per patch) is in decreasing order, so a chunk needs as
    many backward passes as its first row has targets and rows with fewer
    targets idle in the extra passes. The cut points minimise
    ``sum over chunks of (rows + overhead) * (1 + passes)`` (one forward and
    ``passes`` backward passes), by dynamic programming over the runs of
    equal counts: a chunk ending inside a run of high counts rather than
    reaching into the next, lower run avoids idle backward rows.
    """
    if len(counts) == 0:
        return []
    edges = np.flatnonzero(np.diff(counts)) + 1
    starts = np.concatenate([[0], edges]) * n_nodes  # first row of each run
    ends = np.concatenate([edges, [len(counts)]]) * n_nodes
    m = len(starts)
    best = [0.0] + [math.inf] * m
    back = [0] * (m + 1)
    for j in range(1, m + 1):
        for i in range(j):
            rows = int(ends[j - 1] - starts[i])
            pieces = math.ceil(rows / batch_size)
            passes = int(counts[starts[i] // n_nodes])
            cost = best[i] + (rows + _PASS_OVERHEAD_ROWS * pieces) * (1 + passes)
            if cost < best[j]:
                best[j], back[j] = cost, i
    cuts, j = [], m
    while j > 0:
        cuts.append((int(starts[back[j]]), int(ends[j - 1])))
        j = back[j]
    out = []
    for lo, hi in reversed(cuts):
        pieces = math.ceil((hi - lo) / batch_size)
        bounds = np.linspace(lo, hi, pieces + 1).round().astype(np.int64)
        out.extend((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    return out


def _accumulate(
    plan: _Plan | None,
    maps: torch.Tensor,
    pairs: _Pairs,
    alphas: np.ndarray,
    weights: np.ndarray,
    *,
    batch_size: int,
    progress: bool = False,
) -> tuple[torch.Tensor, int]:
    """``sum_k w_k sum_space maps[p] * grad f_a(alpha_k maps[p])`` for every (patch p, target a) pair.

    Rows are (patch, node) points, patch-major, patches by decreasing number of
    targets; each chunk of at most ``batch_size`` rows (:func:`_chunks`) is
    evaluated in one forward pass, then one backward pass per target slot q
    (pass q takes, for every row, the gradient of its q-th target). With an
    affine split (:class:`_Plan`) the forward and backward passes run through
    ``rest`` only, and the weighted frontier gradients of a patch's targets
    go through ``lin`` once its last node has been evaluated. The
    sub-network must be in eval mode with parameters not requiring grad, and
    take and return channels-first tensors (``maps`` (P, C, ...), output (n, C, ...)).

    Returns the (n_pairs, C_prev) float64 sums and the number of forward rows.
    """
    # Measured on a 2-core CPU (AMD EPYC, torch 2.14), ResNet-18-CIFAR layer3 -> layer4:
    # - backward strategy (200 rows, 8 targets; 2 runs): one autograd.grad per target with
    #   retain_graph=True 5.1-5.3 s, one autograd.grad(..., is_grads_batched=True) 6.2-6.6 s: the loop is kept;
    # - rows per chunk: per-row cost flat from 100 to 800 rows (0.92-0.95 ms forward, 1.03-1.05 ms per
    #   backward pass), worse at 2000 (1.10 / 1.32 ms, activations outgrow the cache) and at 50 (1.06 / 1.14);
    # - the benchmark's level 2 (251 patches, 16 targets, 800 pairs, N = 50, batch 512): 59 s evaluating
    #   layer4 whole, 51 s with the affine split (layer4.0 conv1/bn1 and downsample once per patch; the
    #   strided convolution's backward costs 1.6x its forward here).
    device = maps.device
    n_nodes, n_patches = len(alphas), len(pairs.patches)
    acc = torch.zeros((len(pairs), maps.shape[1]), dtype=torch.float64, device=device)
    total_rows = n_patches * n_nodes
    if total_rows == 0:
        return acc, 0
    a = torch.as_tensor(alphas, dtype=maps.dtype, device=device)
    w = torch.as_tensor(weights, dtype=maps.dtype, device=device)
    patches = torch.as_tensor(pairs.patches, device=device)
    counts = torch.as_tensor(pairs.counts, device=device)
    slots = torch.as_tensor(pairs.slots, device=device)
    targets = torch.as_tensor(pairs.targets, device=device)
    first_pair = np.concatenate([[0], np.cumsum(pairs.counts)])  # pairs of patch j: first_pair[j] .. [j + 1]
    pair_patch = torch.as_tensor(np.repeat(np.arange(n_patches), pairs.counts), device=device)
    space = tuple(range(2, maps.ndim))

    def scale(alpha: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return alpha.view((-1,) + (1,) * (t.ndim - 1))

    def finish(grads: Sequence[torch.Tensor], pair_ids: torch.Tensor) -> None:
        """Pull summed frontier gradients back through ``lin``; add x * grad per pair."""
        x = maps[patches[pair_patch[pair_ids]]].clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(plan.lin(x), x, tuple(grads))
        contrib = (gx * x.detach()).sum(dim=space) if space else gx * x.detach()
        acc.index_add_(0, pair_ids, contrib.to(torch.float64))

    from tqdm.auto import tqdm

    carry: list[torch.Tensor] | None = None  # frontier-gradient sums of a patch cut by a chunk boundary
    chunks = _chunks(pairs.counts, n_nodes, batch_size)
    with torch.enable_grad():
        for start, end in tqdm(chunks, desc="integrated gradients", disable=not progress, leave=False):
            rows = torch.arange(start, end, device=device)
            j, k = rows // n_nodes, rows % n_nodes
            local = torch.arange(len(rows), device=device)
            j_lo, j_hi = start // n_nodes, (end - 1) // n_nodes
            if plan.lin is None:
                x = maps[patches[j]]
                points: tuple[torch.Tensor, ...] = ((x * scale(a[k], x)).requires_grad_(True),)
                out = _unit_mean(plan.sub(points[0].clone()))  # a copy: the sub-network may write into its input
            else:
                with torch.no_grad():
                    span = plan.lin(maps[patches[j_lo : j_hi + 1]])
                points = tuple(
                    (o + scale(a[k], o) * (t - o)[j - j_lo]).requires_grad_(True)
                    for t, o in zip(span, plan.offset, strict=True)
                )
                out = _unit_mean(plan.rest(*points))
                p_lo = int(first_pair[j_lo])
                sums = [p.new_zeros((int(first_pair[j_hi + 1]) - p_lo, *p.shape[1:])) for p in points]
                if carry is not None:
                    for s_, c_ in zip(sums, carry, strict=True):
                        s_[: len(c_)] += c_
            passes = int(counts[j].max())
            for q in range(passes):
                valid = counts[j] > q
                grad_out = torch.zeros_like(out)
                grad_out[local[valid], targets[j[valid], q]] = w[k[valid]]
                grads = torch.autograd.grad(out, points, grad_out, retain_graph=q < passes - 1, allow_unused=True)
                if plan.lin is None:
                    if grads[0] is None:
                        continue
                    contrib = (grads[0] * x).sum(dim=space) if space else grads[0] * x
                    acc.index_add_(0, slots[j[valid], q], contrib[valid].to(torch.float64))
                else:
                    for s_, g in zip(sums, grads, strict=True):
                        if g is not None:
                            s_.index_add_(0, slots[j[valid], q] - p_lo, g[valid])
            if plan.lin is not None:
                done = j_hi + 1 if end == (j_hi + 1) * n_nodes else j_hi  # patches finished in this chunk
                n_done = int(first_pair[done]) - p_lo
                if n_done:
                    finish([s_[:n_done] for s_ in sums], torch.arange(p_lo, p_lo + n_done, device=device))
                carry = [s_[n_done:] for s_ in sums] if n_done < len(sums[0]) else None
    return acc, total_rows
