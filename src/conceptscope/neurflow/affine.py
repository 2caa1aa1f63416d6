"""The affine first stage of a NeurFlow sub-network, applied once per patch instead of once per IG node.

If the sub-network between two probed blocks (:meth:`conceptscope.neurflow.BlockChain.between`)
begins with operations that are affine in its input (convolutions, batch norm
in eval mode, average pooling, sums; e.g. ``conv1``/``bn1`` and the
downsampling branch of a ResNet block), that part ``L`` is split off
(:func:`_affine_split`, found with ``torch.fx``, checked numerically in
:class:`_Plan`): the integrated-gradients points ``alpha x`` enter the rest as
``L(0) + alpha (L(x) - L(0))`` and, the Jacobian ``J`` of ``L`` being constant,
``sum_k w_k J^T g_k = J^T sum_k w_k g_k`` (see
:func:`conceptscope.neurflow.importance`).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
from torch import fx, nn

from .blocks import _ancestors, _is_inplace, _unit_mean

# Operations that are affine in their (only) input tensor argument, row by row, in eval mode.
_AFFINE_MODULES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.Identity,
    nn.Flatten,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_SUMS = (operator.add, torch.add, operator.sub, torch.sub)
_ONE_ARG_FUNCTIONS = (operator.neg, torch.neg, torch.flatten, torch.reshape, torch.mean)
_ONE_ARG_METHODS = ("view", "reshape", "flatten", "contiguous", "permute", "transpose", "squeeze", "unsqueeze", "mean")


def _affine_op(node: fx.Node, dep: list[fx.Node], modules: Mapping[str, nn.Module]) -> bool:
    """Whether ``node`` is affine in its input-dependent arguments ``dep`` (all of them affine)."""
    only_first = len(dep) == 1 and bool(node.args) and node.args[0] is dep[0]
    if node.op == "call_module":
        m = modules[str(node.target)]
        if type(m) in _BATCH_NORMS:
            return only_first and not m.training and m.running_mean is not None
        return only_first and type(m) in _AFFINE_MODULES and not m.training
    if node.op == "call_function":
        if node.target in _SUMS:
            return not isinstance(node.kwargs.get("alpha"), fx.Node)
        if node.target in (operator.mul, torch.mul):
            return len(dep) == 1
        if node.target in (operator.truediv, torch.div):
            return only_first and node.kwargs.get("rounding_mode") is None
        return only_first and node.target in _ONE_ARG_FUNCTIONS
    if node.op == "call_method":
        return only_first and node.target in _ONE_ARG_METHODS
    return False


def _affine_split(sub: nn.Module) -> tuple[fx.GraphModule, fx.GraphModule] | None:
    """Split ``sub`` into ``rest(*lin(x))`` where ``lin`` holds the operations affine in the input ``x``.

    The sub-network is traced with ``torch.fx`` (through any non-``torch.nn``
    module); a node is affine if it is an affine operation (convolution,
    linear, batch norm in eval mode, average pooling, reshaping, sums, scaling
    by a constant) of affine nodes and constants. ``lin`` returns the affine
    nodes that feed anything else (the frontier), ``rest`` the output from
    them. None when tracing fails or nothing but ``x`` itself is affine.
    """
    try:
        gm = fx.symbolic_trace(sub)
    except Exception:  # any untraceable module: evaluate it whole
        return None
    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = [n for n in graph.nodes if n.op == "output"]
    if len(placeholders) != 1 or len(outputs) != 1 or not isinstance(outputs[0].args[0], fx.Node):
        return None
    modules = dict(gm.named_modules())
    kind: dict[fx.Node, str] = {placeholders[0]: "affine"}
    for node in graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        dep = [i for i in node.all_input_nodes if kind[i] != "const"]
        if not dep:
            kind[node] = "const"
        elif any(kind[i] == "other" for i in dep):
            kind[node] = "other"
        else:
            kind[node] = "affine" if _affine_op(node, dep, modules) else "other"
    out = outputs[0].args[0]
    frontier = [
        n
        for n in graph.nodes
        if kind.get(n) == "affine" and any(u.op == "output" or kind.get(u) == "other" for u in n.users)
    ]
    if not frontier or frontier == placeholders:
        return None
    lin_graph, env = fx.Graph(), {}
    needed = _ancestors(frontier, ())
    for node in graph.nodes:
        if node in needed:
            env[node] = lin_graph.node_copy(node, lambda n: env[n])
    lin_graph.output(tuple(env[f] for f in frontier))
    rest_graph, env = fx.Graph(), {}
    for f in frontier:
        env[f] = rest_graph.placeholder(f"z_{f.name}")
    for f in frontier:
        if any(_is_inplace(u, gm) and u.args and u.args[0] is f for u in f.users if kind.get(u) == "other"):
            env[f] = rest_graph.call_function(torch.clone, (env[f],))
    needed = _ancestors([out], frontier)
    for node in graph.nodes:
        if node in needed and node not in env:
            env[node] = rest_graph.node_copy(node, lambda n: env[n])
    rest_graph.output(env[out])
    lin_graph.lint()
    rest_graph.lint()
    return fx.GraphModule(gm, lin_graph, class_name="AffinePart"), fx.GraphModule(gm, rest_graph, class_name="Rest")


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4) -> bool:
    if a.shape != b.shape:
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool((a - b).abs().max() <= rel * scale + 1e-12) if b.numel() else True


class _Plan:
    """How the sub-network is evaluated on interpolation points; built in eval mode.

    ``sub`` takes and returns channels-first tensors; ``probe`` is its output on
    ``maps[:2]`` (computed when not given); ``n_out``: its output channels. If it starts with affine operations
    (:func:`_affine_split`) and the split reproduces it on the first maps
    (and ``lin`` is affine there), ``lin``/``rest``/``offset`` (``lin(0)``) are
    set: the points ``alpha * x`` then enter ``rest`` as ``lin(0) + alpha *
    (lin(x) - lin(0))``, and because the Jacobian of ``lin`` is constant the
    weighted gradients at the frontier are summed over nodes before one
    backward pass through ``lin`` per (patch, target).
    """

    def __init__(self, sub: nn.Module, maps: torch.Tensor, probe: torch.Tensor | None = None) -> None:
        self.sub = sub
        self.lin: fx.GraphModule | None = None
        self.rest: fx.GraphModule | None = None
        self.offset: tuple[torch.Tensor, ...] = ()
        probe_in = maps[:2].clone()  # the sub-network may write into its input
        with torch.no_grad():
            if probe is None:
                probe = sub(probe_in.clone())
            self.n_out = _unit_mean(probe).shape[1]
            split = _affine_split(sub)
            if split is None:
                return
            lin, rest = split
            try:
                z = lin(probe_in)
                zero = lin(torch.zeros_like(maps[:1]))
                half = lin(probe_in * 0.5)
                ok = all(isinstance(t, torch.Tensor) and t.shape[0] == len(probe_in) for t in z)
                ok = ok and all(_close(h, 0.5 * (t + o)) for h, t, o in zip(half, z, zero, strict=True))
                ok = ok and _close(rest(*z), probe)
            except Exception:  # a split that does not run is not used
                ok = False
        if ok:
            self.lin, self.rest, self.offset = lin, rest, tuple(o.detach() for o in zero)
