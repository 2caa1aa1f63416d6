"""The baselines NeurFlow compares its core neuron sets with (Cao et al., ICLR 2025, Table 3 and Table 4).

- Table 3 (overlap of core sets): NeuronMCT-style critical neurons, learned
  channel masks in the manner of the critical-pathway masks of Khakzar et al.
  ("Neural Response Interpretation through the Lens of Critical Pathways",
  CVPR 2021), trained per target neuron on its concept patches
  (:func:`neuronmct_gates`, :func:`critical_neurons`), and the F1 overlap of
  two index sets (:func:`set_f1`).
- Table 4 (L2 weight baseline): the input channels of a convolution ranked by
  the L2 norm of their weights into the target channel (Cammarata et al.,
  "Thread: Circuits", Distill 2020; :func:`l2_weight_neurons`), on the pairs of
  consecutive convolutions of a block whose lower output is the upper input
  (:func:`conv_pairs`).

NeuronMCT objective used here (the paper gives no formula; the NeurFlow
authors' code computed masks but never applied them, here they are). For a
target channel ``a`` of block l, its concept patches' outputs ``z_v`` of block
l-1 (channels first, ``C`` channels) and gates ``g = sigmoid(theta)`` in
``(0, 1)^C``,

``loss(theta) = mean_v (f_a(g * z_v) - f_a(z_v))^2 / mean_v f_a(z_v)^2 + l1 * mean_s g_s``,

where ``f_a`` is the target's spatially averaged activation through the
sub-network and ``g * z_v`` scales every position of channel ``s`` by ``g_s``:
the gates act in the forward pass. The first term keeps the target's response
(normalised by its mean square, so ``l1`` means the same for every target); the
second pushes unneeded gates to zero. ``theta`` starts at ``3 + 0.01 e`` (``e``
standard normal from a generator seeded by ``seed``: gates near 0.95, ties
between interchangeable channels broken reproducibly) and is optimised with
Adam for a fixed number of full-batch steps. The critical neurons are the
channels with the largest gates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..activations import channels_first
from ..checks import check_int, check_number
from .accumulate import _EvalNoParamGrad
from .blocks import BlockChain, _ChannelsFirst, _fixed_arguments, _resolve_layout, _unit_mean

__all__ = ["conv_pairs", "critical_neurons", "l2_weight_neurons", "neuronmct_gates", "set_f1"]

# initial gate logit (sigmoid(3) = 0.953) and the scale of its seeded jitter
_THETA_START = 3.0
_THETA_JITTER = 0.01


def _index_set(name: str, values: Any) -> np.ndarray:
    """A 1-D int64 array of distinct indices; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    elif isinstance(values, set | frozenset):
        values = sorted(values)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D collection of indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{name} must not repeat an index, got {arr.tolist()}")
    return arr


def set_f1(a: Iterable[int], b: Iterable[int]) -> float:
    """F1 overlap of two index sets, ``2 |a & b| / (|a| + |b|)`` (NeurFlow Table 3).

    For sets of equal size (core sets of the same tau) it is the fraction of
    shared members.

    Parameters
    ----------
    a, b : 1-D collections of int
        Sequences, arrays, tensors or sets of distinct indices.

    Returns
    -------
    float
        In [0, 1]: 1 for equal sets, 0 for disjoint ones.

    Raises
    ------
    ValueError
        If an input repeats an index or is not 1-D integer, or if both are empty
        (the F1 of two empty sets is undefined).
    """
    x, y = _index_set("a", a), _index_set("b", b)
    if x.size + y.size == 0:
        raise ValueError("set_f1 is undefined for two empty sets; pass at least one index")
    return 2.0 * len(np.intersect1d(x, y)) / (x.size + y.size)


def _sub_channels_first(
    sub: nn.Module, maps: torch.Tensor, lower_layout: str | None, upper_layout: str | None
) -> tuple[nn.Module, torch.Tensor, int]:
    """The sub-network and the maps seen channels first, and the number of output channels."""
    lower = _resolve_layout(maps.shape[1:], lower_layout, name="maps (outputs of block l-1)", param="lower_layout")
    with torch.no_grad():
        probe = sub(maps[:2].clone())  # a copy: the sub-network may write into its input
    if not isinstance(probe, torch.Tensor) or probe.ndim < 2:
        raise ValueError(f"the sub-network must return a batch tensor, got {getattr(probe, 'shape', probe)!r}")
    upper = _resolve_layout(
        probe.shape[1:], upper_layout, name="the sub-network's output (block l)", param="upper_layout"
    )
    n_out = channels_first(probe, upper).shape[1]
    if {lower, upper} <= {"channels_first", "vector"}:
        return sub, maps, n_out
    return _ChannelsFirst(sub, lower, upper), channels_first(maps, lower), n_out


def neuronmct_gates(
    sub: nn.Module,
    maps: torch.Tensor,
    target: int,
    *,
    steps: int = 200,
    lr: float = 0.05,
    l1: float = 0.01,
    seed: int = 0,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Learned channel gates of block l-1 that keep a target neuron's response (NeuronMCT-style, Table 3).

    Minimises the objective of the module docstring,
    ``mean_v (f_a(g * z_v) - f_a(z_v))^2 / mean_v f_a(z_v)^2 + l1 * mean(g)``
    with ``g = sigmoid(theta)``, by ``steps`` Adam steps of learning rate
    ``lr`` on ``theta`` (start ``3 + 0.01 e``, ``e`` standard normal from a
    ``torch.Generator`` seeded with ``seed``; the global RNG is not used). The
    gates multiply the channels of ``maps`` (every position) in the forward
    pass of ``sub``. Each step uses every patch: the gradient is accumulated
    over chunks of ``batch_size`` patches, so the batch size does not change
    the result. Deterministic for a seed on a given device.

    Parameters
    ----------
    sub : nn.Module
        The sub-network from block l-1 to block l (e.g. :meth:`BlockChain.between`).
        It runs in eval mode with parameters not requiring grad; its modes and
        ``requires_grad`` flags are restored afterwards.
    maps : Tensor, shape (P, C_prev, h, w), (P, h, w, C_prev), (P, T, C_prev) or (P, C_prev)
        Outputs of block l-1 for the target's concept patches ``V_a``
        (dimension 0: patches); computation runs on its device; not modified.
    target : int
        Channel ``a`` of block l.
    steps : int
        Adam steps, >= 1.
    lr : float
        Adam learning rate, > 0.
    l1 : float
        Weight of the mean gate, >= 0.
    seed : int
        Seed of the initial jitter.
    lower_layout, upper_layout : str, optional
        Layouts of block l-1 (``maps``) and block l (the output of ``sub``),
        :data:`conceptscope.activations.LAYOUTS`; detected from the shapes when not given.
    batch_size : int
        Patches per forward/backward pass.

    Returns
    -------
    ndarray of float64, shape (C_prev,)
        The gates ``sigmoid(theta)`` after the last step, in [0, 1].

    Raises
    ------
    ValueError
        For bad arguments, a target out of range, or a target whose activation
        is zero on every patch (the normalised objective is undefined).
    """
    steps = check_int("steps", steps, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, exclusive_minimum=True)
    l1 = check_number("l1", l1, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    target = check_int("target", target, minimum=0)
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2 or len(maps) == 0:
        raise ValueError(
            "maps must be a non-empty tensor of shape (P, C_prev, h, w), (P, h, w, C_prev), (P, T, C_prev) or "
            f"(P, C_prev), got {getattr(maps, 'shape', maps)!r}"
        )
    maps = maps.detach()
    with _EvalNoParamGrad(sub):
        net, x, n_out = _sub_channels_first(sub, maps, lower_layout, upper_layout)
        if target >= n_out:
            raise ValueError(f"target {target} out of range: the sub-network outputs {n_out} channels")
        n_patches, n_channels = x.shape[0], x.shape[1]
        chunks = [(i, min(i + batch_size, n_patches)) for i in range(0, n_patches, batch_size)]
        with torch.no_grad():
            ref = torch.cat([_unit_mean(net(x[i:j].clone()))[:, target] for i, j in chunks])  # (P,)
        scale = ref.pow(2).mean()
        if not float(scale) > 0:
            raise ValueError(
                f"target {target} is zero on every one of the {n_patches} patches; the NeuronMCT objective is "
                "normalised by its mean square and undefined; pick a target active on its concept"
            )
        gen = torch.Generator().manual_seed(seed)
        jitter = torch.randn(n_channels, generator=gen, dtype=torch.float64)
        theta = (_THETA_START + _THETA_JITTER * jitter).to(dtype=x.dtype, device=x.device).requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=lr)
        gate_shape = (1, n_channels) + (1,) * (x.ndim - 2)
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                for i, j in chunks:
                    gates = torch.sigmoid(theta).view(gate_shape)
                    out = _unit_mean(net(x[i:j] * gates))[:, target]  # (chunk,): the gates act in the forward
                    ((out - ref[i:j]).pow(2).sum() / (n_patches * scale)).backward()
                (l1 * torch.sigmoid(theta).mean()).backward()
                opt.step()
    return torch.sigmoid(theta.detach()).to(torch.float64).cpu().numpy()


def critical_neurons(gates: Sequence[float] | np.ndarray | torch.Tensor, tau: int) -> np.ndarray:
    """Indices of the top-tau gates, by decreasing gate value (ties: lower index first).

    Parameters
    ----------
    gates : 1-D array-like of float, shape (C_prev,)
        E.g. :func:`neuronmct_gates`.
    tau : int
        Number of critical neurons, 1 <= tau <= C_prev.

    Returns
    -------
    ndarray of int64, shape (tau,)
    """
    if isinstance(gates, torch.Tensor):
        gates = gates.detach().cpu().numpy()
    g = np.asarray(gates, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or not np.isfinite(g).all():
        raise ValueError(f"gates must be a non-empty 1-D array of finite values, got shape {g.shape}")
    tau = check_int("tau", tau, minimum=1, maximum=g.size)
    return np.argsort(-g, kind="stable")[:tau].astype(np.int64)


def _forward_convs(model: nn.Module, block: str) -> list[str]:
    """The ``nn.Conv2d`` calls inside ``block``, in the order of the model's ``torch.fx`` graph (repeats kept)."""
    modules = dict(model.named_modules())
    modes = {m: m.training for m in model.modules()}
    model.eval()  # Python branches on self.training take their inference path, as in BlockChain
    try:
        graph = fx.Tracer().trace(model, concrete_args=_fixed_arguments(model) or None)
    finally:
        for m, mode in modes.items():
            m.training = mode
    names = [str(n.target) for n in graph.nodes if n.op == "call_module"]
    return [n for n in names if n.startswith(block + ".") and isinstance(modules.get(n), nn.Conv2d)]


def conv_pairs(model: nn.Module, block: str) -> list[tuple[str, str]]:
    """Consecutive convolutions ``(lower_conv, upper_conv)`` of a block whose lower output is the upper input.

    The ``nn.Conv2d`` modules inside the module path ``block`` are put in
    forward order by tracing the model with ``torch.fx`` (the order of their
    call nodes in the graph; the model is traced in eval mode, as by
    :class:`BlockChain`). A pair of successive ones is kept when
    ``upper.in_channels == lower.out_channels``, ``upper.groups == 1`` and the
    upper convolution's input depends on the model input only through the
    lower one's output: ``BlockChain(model, [lower, upper]).between(lower,
    upper)`` does not raise (no skip connection around the cut). For a
    torchvision ResNet-18 ``layer4`` these are the two (conv1, conv2) pairs of
    its basic blocks; conv2 -> the next block's conv1 is not a cut (the skip
    connection), and the downsampling convolution follows conv2 in the graph
    without taking its output.

    Parameters
    ----------
    model : nn.Module
        A ``torch.fx``-traceable model.
    block : str
        Module path, e.g. ``layer4``.

    Returns
    -------
    list of (str, str)
        Module paths, in forward order.

    Raises
    ------
    ValueError
        If ``block`` is not a module of ``model`` or has no such pair.
    """
    modules = dict(model.named_modules())
    if not isinstance(block, str) or not block or block not in modules:
        raise ValueError(
            f"block {block!r} is not a module of the model; valid module paths: {[k for k in modules if k]}"
        )
    order = _forward_convs(model, block)
    pairs = []
    for lower, upper in zip(order[:-1], order[1:], strict=True):
        lo, up = modules[lower], modules[upper]
        if lower == upper or up.in_channels != lo.out_channels or up.groups != 1:
            continue
        try:
            BlockChain(model, [lower, upper]).between(lower, upper)
        except ValueError:  # not a cut (skip connection), or a convolution called more than once
            continue
        pairs.append((lower, upper))
    if not pairs:
        raise ValueError(
            f"block {block!r} has no pair of consecutive Conv2d modules where the upper one (groups 1) takes "
            f"exactly the lower one's output; its convolutions in forward order: {order}"
        )
    return pairs


def l2_weight_neurons(weight: torch.Tensor | np.ndarray, target: int, tau: int) -> np.ndarray:
    """The top-tau input channels of output channel ``target`` by the L2 norm of their weights (Table 4).

    Cammarata et al.'s ranking of the connections into a neuron:
    ``||weight[target, s]||_2`` over the kernel of input channel ``s``, largest
    first (ties: lower index first).

    Parameters
    ----------
    weight : Tensor or ndarray, shape (O, I, kh, kw) or (O, I)
        A ``Conv2d`` or ``Linear`` weight; not modified.
    target : int
        Output channel, 0 <= target < O.
    tau : int
        1 <= tau <= I.

    Returns
    -------
    ndarray of int64, shape (tau,)
    """
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().numpy()
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim not in (2, 4):
        raise ValueError(f"weight must be a Conv2d (O, I, kh, kw) or Linear (O, I) weight, got shape {w.shape}")
    target = check_int("target", target, minimum=0, maximum=w.shape[0] - 1)
    tau = check_int("tau", tau, minimum=1, maximum=w.shape[1])
    norms = np.sqrt((w[target].reshape(w.shape[1], -1) ** 2).sum(axis=1))  # (I,)
    return np.argsort(-norms, kind="stable")[:tau].astype(np.int64)
