"""NeurFlow core-neuron importance: integrated gradients through a sub-network, for many targets at once.

Implements the attribution step of NeurFlow (Cao et al., "NeurFlow: Interpreting
Neural Networks through Neuron Groups and Functional Interactions", ICLR 2025,
Sect. 3-4); patches and concepts are in :mod:`conceptscope.neurflow.patches`,
the sub-networks in :mod:`conceptscope.neurflow.blocks`, the grouping steps on
the resulting arrays in :mod:`conceptscope.neurflow.groups`. Notation follows the paper:

- The importance of channel ``s`` of the previous probed block ``l-1`` for a
  neuron ``a`` of block ``l`` with concept ``V_a`` is NeurFlow Eq. 2,

  ``T(a, s, V_a) = sum_{v in V_a} IG_s(f_a, z_v)``,

  where ``z_v`` is the output of block ``l-1`` for patch ``v``, ``f_a`` maps it
  to the spatially averaged activation of channel ``a`` at block ``l`` (the
  mean over its spatial axes or tokens) and ``IG_s`` is the
  integrated-gradients attribution (Sundararajan, Taly and Yan, "Axiomatic
  Attribution for Deep Networks", ICML 2017, arXiv:1703.01365, Eq. 1) with a
  zero baseline, summed over the spatial positions (or tokens) of channel ``s``:

  ``IG_i(f, x) = (x_i - x'_i) * int_0^1 df(x' + t (x - x')) / dx_i dt``.

  The integral is a quadrature with ``N`` nodes; the paper writes the right
  Riemann sum ``(1/N) sum_{k=1..N} grad f(x' + k/N (x - x'))`` (the default
  here, ``riemann_right``), the authors' code used captum's default
  Gauss-Legendre rule (``gausslegendre``).
- The core neurons ``S_a`` are the top-tau channels ``s`` by ``|T(a, s, V_a)|``
  (:func:`core_neurons`; tau = 16, k = 50, N = 50 in the paper, the defaults
  of :class:`conceptscope.neurflow.settings.NeurFlowSettings`).

:func:`importance` computes the attributions of many targets at once: each
(patch, quadrature node) point is evaluated once and all targets whose
concepts contain the patch take their gradients from that forward pass
(:mod:`conceptscope.neurflow.accumulate`); an affine first stage of the
sub-network (e.g. the first convolutions of a ResNet block) runs once per
patch (:mod:`conceptscope.neurflow.affine`). :func:`adaptive_importance`
doubles the nested Riemann grid per target, with the Richardson-extrapolated
(midpoint) estimate, until its core set settles.

Layouts. A block's output is (C, H, W) maps, (H, W, C) maps (e.g. Swin
stages), (T, C) tokens (ViT blocks) or a (C,) vector
(:data:`conceptscope.activations.LAYOUTS`); the layouts are detected from the
shapes or given (``lower_layout``, ``upper_layout``). Channels-first maps and
vectors are used as they are; other layouts are turned channels first (a
permutation before and after the sub-network), so the mean of ``f_a`` and the
sum of ``IG_s`` always run over the spatial axes or tokens of a channel.

No function here writes into its arguments: every evaluation of a
sub-network gets a fresh tensor (a sub-network that starts with an in-place
operation, e.g. ``ReLU(inplace=True)``, leaves ``maps`` as it was).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..activations import channels_first
from ..checks import check_choice, check_int, check_number
from .accumulate import _accumulate, _EvalNoParamGrad, _Pairs
from .affine import _Plan
from .blocks import _ChannelsFirst, _resolve_layout, spatial_mean
from .settings import METHODS, NeurFlowBatchSize, NeurFlowSettings

__all__ = ["adaptive_importance", "core_neurons", "importance", "integrated_gradients"]


def _quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha`` in [0, 1] and weights of the path integral, float64.

    Riemann sums use weights 1/n: right nodes k/n (k = 1..n), left (k-1)/n,
    middle (k - 1/2)/n. The trapezoid rule uses n equally spaced nodes 0..1
    with weights 1/(n-1), halved at both ends (it integrates linear functions
    exactly; captum's ``riemann_trapezoid`` uses weights 1/n on the same nodes,
    so its sum is (n-1)/n of this one). Gauss-Legendre: numpy's nodes and
    weights on [-1, 1] mapped to [0, 1].
    """
    check_choice("method", method, METHODS)
    n = check_int("n_steps", n_steps, minimum=1)
    k = np.arange(1, n + 1, dtype=np.float64)
    if method == "riemann_right":
        return k / n, np.full(n, 1.0 / n)
    if method == "riemann_left":
        return (k - 1.0) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (k - 0.5) / n, np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError(f"riemann_trapezoid needs n_steps >= 2, got {n_steps!r}")
        w = np.full(n, 1.0 / (n - 1))
        w[[0, -1]] /= 2.0
        return np.linspace(0.0, 1.0, n), w
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def integrated_gradients(
    forward_fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    target: int,
    n_steps: int = NeurFlowSettings.n_steps,
    method: str = NeurFlowSettings.method,
    batch_size: int = 64,
    baselines: torch.Tensor | float | None = None,
    layout: str | None = None,
) -> torch.Tensor:
    """Integrated gradients of one output channel, averaged over space (Sundararajan et al. 2017, Eq. 1).

    ``attr = (x - x') * sum_k w_k grad f(x' + alpha_k (x - x'))`` with
    ``f = spatial_mean(forward_fn(.), layout)[:, target]`` and the nodes ``alpha_k`` and
    weights ``w_k`` of ``method`` for ``n_steps`` (``riemann_right``: k/N and 1/N,
    the paper's sum; ``gausslegendre``: captum's default, used by the NeurFlow
    authors). The (example, node) rows are evaluated in chunks of ``batch_size``
    rows and the weighted gradients summed per example, so the batch size does
    not change the result (``forward_fn`` must treat rows independently, e.g. a
    model in eval mode).

    Parameters
    ----------
    forward_fn : callable
        Maps a batch shaped like ``inputs`` to (n, C, H, W), (n, H, W, C), (n, T, C) or (n, C).
        It gets a fresh tensor per chunk (it may write into it).
    inputs : Tensor, shape (n, ...)
    target : int
        Output channel.
    n_steps : int
        Quadrature nodes.
    method : str
        One of :data:`METHODS`.
    batch_size : int
        Rows (examples x nodes) per forward/backward pass.
    baselines : Tensor or float, optional
        Broadcastable to ``inputs``; zero by default.
    layout : str, optional
        Layout of the output of ``forward_fn`` (:data:`conceptscope.activations.LAYOUTS`),
        detected from its shape when not given.

    Returns
    -------
    Tensor, shape of ``inputs``
        The attributions, dtype of ``inputs`` (not summed over any axis).
    """
    alphas, weights = _quadrature(method, n_steps)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1:
        raise ValueError(f"inputs must be a tensor of shape (n, ...), got {getattr(inputs, 'shape', inputs)!r}")
    target = check_int("target", target, minimum=0)
    x = inputs.detach()
    base = torch.zeros_like(x) if baselines is None else torch.as_tensor(baselines, dtype=x.dtype, device=x.device)
    base = base.expand_as(x)
    diff = x - base
    a = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    n, steps = x.shape[0], len(alphas)
    shape = (-1,) + (1,) * (x.ndim - 1)
    total = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    with torch.enable_grad():
        for start in range(0, n * steps, batch_size):
            rows = torch.arange(start, min(start + batch_size, n * steps), device=x.device)
            ex, node = rows // steps, rows % steps
            point = (base[ex] + a[node].view(shape) * diff[ex]).requires_grad_(True)
            out = spatial_mean(forward_fn(point.clone()), layout)  # a copy: forward_fn may write into it
            if target >= out.shape[1]:
                raise ValueError(f"target {target!r} out of range for an output with {out.shape[1]} channels")
            (grad,) = torch.autograd.grad((out[:, target] * w[node]).sum(), point, allow_unused=True)
            if grad is not None:
                total.index_add_(0, ex, grad.to(torch.float64))
    return (diff.to(torch.float64) * total).to(x.dtype)


def _check_concepts(maps: torch.Tensor, concepts: Mapping[int, Sequence[int]]) -> dict[int, np.ndarray]:
    """Validate the maps and the concepts' structure; concepts as int64 arrays."""
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise ValueError(
            "maps must be a tensor of shape (P, C_prev, h, w), (P, h, w, C_prev), (P, T, C_prev) or (P, C_prev), "
            f"got {getattr(maps, 'shape', maps)!r}"
        )
    if not isinstance(concepts, Mapping):
        raise ValueError(f"concepts must map target channels to row indices, got {type(concepts).__name__}")
    out: dict[int, np.ndarray] = {}
    for a, rows in concepts.items():
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0:
            raise ValueError(f"concept keys must be non-negative channel indices, got {a!r}")
        r = np.asarray(rows, dtype=np.int64).reshape(-1)
        if r.size and (r.min() < 0 or r.max() >= maps.shape[0]):
            raise ValueError(f"concept of target {a}: row indices must be in [0, {maps.shape[0]}), got {r.tolist()}")
        out[int(a)] = r
    return out


def _channels_first(
    sub: nn.Module, maps: torch.Tensor, lower_layout: str | None, upper_layout: str | None, any_rows: bool
) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None]:
    """The sub-network and the maps seen channels first (sub in eval mode; unchanged for channels-first
    maps or vectors in and out), and its channels-first output on the first two maps (None without
    concept rows), the probe that tells the upper layout and that :class:`_Plan` reuses."""
    lower = _resolve_layout(maps.shape[1:], lower_layout, name="maps (outputs of block l-1)", param="lower_layout")
    if not any_rows:
        return sub, channels_first(maps, lower), None
    with torch.no_grad():
        probe = sub(maps[:2].clone())  # a copy: the sub-network may write into its input
    if not isinstance(probe, torch.Tensor) or probe.ndim < 2:
        raise ValueError(f"the sub-network must return a batch tensor, got {getattr(probe, 'shape', probe)!r}")
    upper = _resolve_layout(
        probe.shape[1:], upper_layout, name="the sub-network's output (block l)", param="upper_layout"
    )
    if {lower, upper} <= {"channels_first", "vector"}:
        return sub, maps, probe
    return _ChannelsFirst(sub, lower, upper), channels_first(maps, lower), channels_first(probe, upper)


def _plan(
    sub: nn.Module, maps: torch.Tensor, concepts: Mapping[int, np.ndarray], probe: torch.Tensor | None
) -> _Plan | None:
    """The evaluation plan (sub in eval mode), after checking the targets against its output width."""
    if probe is None:
        return None
    plan = _Plan(sub, maps, probe)
    bad = [a for a in concepts if a >= plan.n_out]
    if bad:
        raise ValueError(f"target channel(s) {bad} out of range: the sub-network outputs {plan.n_out} channels")
    return plan


def _assemble(
    acc: torch.Tensor, pairs: _Pairs, concepts: Mapping[int, np.ndarray], dtype: torch.dtype
) -> dict[int, torch.Tensor]:
    """Per target a, the (k, C_prev) rows of its concept in concept order."""
    result = {}
    for a, rows in concepts.items():
        result[a] = acc.index_select(0, pairs.ids(a, rows, acc.device)).to(dtype)
    return result


def importance(
    sub: nn.Module,
    maps: torch.Tensor,
    concepts: Mapping[int, Sequence[int]],
    *,
    n_steps: int = NeurFlowSettings.n_steps,
    method: str = NeurFlowSettings.method,
    batch_size: int = NeurFlowBatchSize.cpu,
    progress: bool = False,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
) -> dict[int, torch.Tensor]:
    """Integrated-gradients attributions of the l-1 channels for many targets of block l (NeurFlow Eq. 2).

    For each target channel ``a`` of block l and each patch ``v`` of its
    concept, the zero-baseline IG of ``spatial_mean(sub(.))[:, a]`` at
    ``maps[v]``, summed over the spatial positions (or tokens) of each channel
    of block l-1. Then ``T(a, s, V_a) = result[a].sum(0)[s]``.

    Each (patch, node) point is evaluated once in a forward pass, whatever the
    number of targets whose concepts contain the patch; those targets take
    their gradients from that pass (one backward pass per target slot). Rows
    are processed in chunks of ``batch_size`` (patches x nodes), which bounds
    memory.

    If the sub-network begins with operations that are affine in its input
    (convolutions, batch norm in eval mode, average pooling, sums; found with
    ``torch.fx``, checked numerically, e.g. ``conv1``/``bn1`` and the
    downsampling branch of a ResNet block), that part ``L`` is applied once
    per patch: the points enter the rest as ``L(0) + alpha (L(x) - L(0))``
    and, as the Jacobian ``J`` of ``L`` is constant, ``sum_k w_k J^T g_k =
    J^T sum_k w_k g_k``, so the gradients are pulled back through ``L`` once
    per (patch, target) instead of once per node. Sub-networks that cannot be
    traced are evaluated whole. The result equals a per-target loop of
    ``captum.attr.IntegratedGradients(...).attribute(maps[V_a], target=a,
    n_steps=n_steps, method=method)`` summed over space (for the Riemann
    left/right/middle and Gauss-Legendre rules; see :func:`integrated_gradients`
    for the trapezoid rule).

    Parameters
    ----------
    sub : nn.Module
        The sub-network from block l-1 to block l (e.g. :meth:`BlockChain.between`).
        It runs in eval mode with parameters not requiring grad; its modes and
        ``requires_grad`` flags are restored afterwards.
    maps : Tensor, shape (P, C_prev, h, w), (P, h, w, C_prev), (P, T, C_prev) or (P, C_prev)
        Outputs of block l-1 for a set of patches; computation happens on its
        device; not modified.
    concepts : mapping int -> sequence of int
        Target channel ``a`` of block l -> row indices into ``maps`` (``V_a``).
    n_steps : int
        Quadrature nodes N.
    method : str
        One of :data:`METHODS`; ``riemann_right`` is the paper's sum.
    batch_size : int
        Forward rows (patches x nodes) per pass.
    progress : bool
        Show a tqdm progress bar over the chunks.
    lower_layout, upper_layout : str, optional
        Layouts of block l-1 (``maps``) and of block l (the output of ``sub``),
        :data:`conceptscope.activations.LAYOUTS`; detected from the shapes
        when not given.

    Returns
    -------
    dict int -> Tensor, shape (k_a, C_prev)
        Per target, the attribution of each concept patch (in concept order) per
        l-1 channel, dtype of ``maps``.
    """
    alphas, weights = _quadrature(method, n_steps)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    checked = _check_concepts(maps, concepts)
    pairs = _Pairs(checked)
    maps = maps.detach()
    with _EvalNoParamGrad(sub):
        any_rows = any(len(r) for r in checked.values())
        sub, maps, probe = _channels_first(sub, maps, lower_layout, upper_layout, any_rows)
        plan = _plan(sub, maps, checked, probe)
        acc, _ = _accumulate(plan, maps, pairs, alphas, weights, batch_size=batch_size, progress=progress)
    return _assemble(acc, pairs, checked, maps.dtype)


def core_neurons(scores: torch.Tensor, tau: int) -> torch.Tensor:
    """Indices of the top-tau entries of ``|scores|``, by decreasing ``|score|`` (ties: lower index first).

    Parameters
    ----------
    scores : Tensor, shape (C_prev,)
        E.g. ``T(a, ., V_a) = importance(...)[a].sum(0)``.
    tau : int
        Number of core neurons, 1 <= tau <= C_prev.

    Returns
    -------
    Tensor of int64, shape (tau,)
    """
    scores = torch.as_tensor(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {tuple(scores.shape)}")
    tau = check_int("tau", tau, minimum=1, maximum=scores.shape[0])
    order = torch.sort(scores.abs(), descending=True, stable=True).indices
    return order[:tau]


def adaptive_importance(
    sub: nn.Module,
    maps: torch.Tensor,
    concepts: Mapping[int, Sequence[int]],
    *,
    max_steps: int = NeurFlowSettings.n_steps,
    start_steps: int = 4,
    tau: int = NeurFlowSettings.tau,
    rtol: float = NeurFlowSettings.adaptive_rtol,
    max_swaps: int = NeurFlowSettings.adaptive_max_swaps,
    batch_size: int = NeurFlowBatchSize.cpu,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
) -> tuple[dict[int, torch.Tensor], dict[str, Any]]:
    """:func:`importance` with per-target adaptive step counts (the ``ig_steps: adaptive`` option).

    Grids. The counts double, ``n = start_steps, 2*start_steps, ...`` while
    ``n <= max_steps`` (the cap), and the right Riemann grids ``k/n`` of the
    paper's Eq. 2 are nested: doubling ``n`` adds the odd ``k``, the midpoints
    of the previous grid. Those new nodes alone give the estimate

        E_n = 2 R_n - R_{n/2} = (2/n) sum_{k odd} g(k/n),

    the Richardson extrapolation of the right Riemann sums ``R_n`` (error
    O(1/n), the leading term cancels), which is the midpoint rule with ``n/2``
    nodes (error O(1/n^2) on smooth paths). Each estimate thus uses nodes no
    other one does; a doubling costs ``n/2`` evaluations per patch of the
    still-active targets.

    Stop rule. At count ``n`` a target stops when its estimate and the one at
    ``n/2`` (``T = result[a].sum(0)``) agree:

    1. their core sets (top-``tau`` channels by ``|T|``) share at least
       ``tau - max_swaps`` channels, and
    2. ``max |E_n - E_{n/2}| <= rtol * max |E_n|`` and ``E_n`` is not all
       zero (the few nodes of a coarse count can all lie where the target is
       inactive).

    At ``start_steps`` the comparison estimate ``E_{start/2}`` is computed too
    (the nodes ``k/start`` with ``k = 2 mod 4``) when ``start_steps`` is a
    multiple of 4, so a target can stop at once; nodes ``k/start`` with
    ``k = 0 mod 4`` are never evaluated. A target that has not stopped at the
    largest count ``n <= max_steps`` ends there. The result of a target is
    ``E_n`` at its final count: :func:`importance` with ``riemann_middle`` and
    ``n/2`` steps. It costs at most ``n`` evaluations per patch, never more
    than ``max_steps``.

    Why few steps can suffice: the zero-baseline IG of a positively homogeneous
    block (ReLU, convolutions without bias) equals gradient x input, as the
    gradient is the same at every point of the path, so every estimate is exact
    and the count stops at ``start_steps``. Blocks with BatchNorm (an affine
    shift) are not homogeneous; there the stop rule decides. The defaults
    (start 4, rtol 0.2, one swap) are those the benchmark
    (``benchmarks/neurflow_ig.py``) measured against N = 50.

    Parameters
    ----------
    sub, maps, concepts, batch_size, lower_layout, upper_layout
        As in :func:`importance`.
    max_steps : int
        Cap of the count (the N of :func:`importance`).
    start_steps : int
        First count, even, 2 <= start_steps <= max_steps.
    tau : int
        Core-set size for the stop rule.
    rtol : float
        Tolerance of the change of the summed scores relative to their maximum.
    max_swaps : int
        Core-set members two successive estimates may differ in, 0 <= max_swaps < tau.

    Returns
    -------
    attributions : dict int -> Tensor, shape (k_a, C_prev)
        As :func:`importance` (per-target midpoint rule).
    report : dict
        ``evaluations`` (forward rows evaluated), ``evaluations_full`` (rows of
        :func:`importance` with ``max_steps`` nodes: distinct concept patches x
        max_steps), ``evaluations_loop`` (a per-target loop at ``max_steps``:
        sum of concept sizes x max_steps), ``steps`` (final count ``n`` per
        target; its estimate has ``n/2`` nodes) and ``sequence`` (the counts).
    """
    max_steps = check_int("max_steps", max_steps, minimum=1)
    start_steps = check_int("start_steps", start_steps, minimum=1)
    if start_steps > max_steps or start_steps % 2:
        raise ValueError(f"start_steps must be even and <= max_steps ({max_steps}), got {start_steps}")
    check_number("rtol", rtol, minimum=0.0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    checked = _check_concepts(maps, concepts)
    any_rows = any(len(r) for r in checked.values())
    with _EvalNoParamGrad(sub):
        sub, maps, probe = _channels_first(sub, maps.detach(), lower_layout, upper_layout, any_rows)
    tau = check_int("tau", tau, minimum=1, maximum=maps.shape[1])
    max_swaps = check_int("max_swaps", max_swaps, minimum=0, maximum=tau - 1)
    pairs = _Pairs(checked)
    sequence = [start_steps]
    while sequence[-1] * 2 <= max_steps:
        sequence.append(sequence[-1] * 2)

    # pair indices of each target's distinct patches, and of its concept rows (duplicates kept)
    own = {a: pairs.ids(a, np.unique(r), maps.device) for a, r in checked.items()}
    rows_of = {a: pairs.ids(a, r, maps.device) for a, r in checked.items()}

    def scores(acc: torch.Tensor, a: int, nodes: int) -> torch.Tensor:
        return acc.index_select(0, rows_of[a]).sum(0) / nodes

    def settled(new: torch.Tensor, old: torch.Tensor) -> bool:
        shared = len(set(core_neurons(new, tau).tolist()) & set(core_neurons(old, tau).tolist()))
        top = float(new.abs().max()) if new.numel() else 0.0
        change = float((new - old).abs().max()) if new.numel() else 0.0
        return top > 0 and shared >= tau - max_swaps and change <= rtol * top

    final = torch.zeros((len(pairs), maps.shape[1]), dtype=torch.float64, device=maps.device)
    steps: dict[int, int] = {}
    prev: dict[int, torch.Tensor] = {}
    active = set(checked)
    evaluations = 0
    with _EvalNoParamGrad(sub):
        plan = _plan(sub, maps, checked, probe)

        def midpoints(part: _Pairs, back: torch.Tensor, k: np.ndarray, n: int) -> torch.Tensor:
            nonlocal evaluations
            acc, rows = _accumulate(plan, maps, part, k / n, np.ones(len(k)), batch_size=batch_size)
            evaluations += rows
            return torch.zeros_like(final).index_add_(0, back, acc)

        for i, n in enumerate(sequence):
            if not active:
                break
            part = pairs if len(active) == len(checked) else _Pairs({a: checked[a] for a in active})
            back = torch.as_tensor([pairs.index[key] for key in part.index], dtype=torch.long, device=maps.device)
            est = midpoints(part, back, np.arange(1, n + 1, 2, dtype=np.float64), n)
            if i == 0 and n % 4 == 0:
                half = midpoints(part, back, np.arange(2, n + 1, 4, dtype=np.float64), n)
                prev = {a: scores(half, a, n // 4) for a in active}
            last = i == len(sequence) - 1
            for a in sorted(active):
                cur = scores(est, a, n // 2)
                if last or (a in prev and settled(cur, prev[a])):
                    steps[a] = n
                    final[own[a]] = est[own[a]] / (n // 2)
                    active.discard(a)
                else:
                    prev[a] = cur
    report = {
        "evaluations": int(evaluations),
        "evaluations_full": int(len(pairs.patches) * max_steps),
        "evaluations_loop": int(sum(len(r) for r in checked.values()) * max_steps),
        "steps": {a: steps[a] for a in checked},
        "sequence": sequence,
    }
    return _assemble(final, pairs, checked, maps.dtype), report
