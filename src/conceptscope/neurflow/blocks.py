"""NeurFlow sub-networks between probed blocks, cut from a model's ``torch.fx`` graph.

NeurFlow (Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron
Groups and Functional Interactions", ICLR 2025, Sect. 4) attributes a neuron
``a`` of probed block ``l`` to the channels of the previous probed block
``l-1`` through ``f_a``, the map from the output of block ``l-1`` to the
spatial mean of channel ``a`` at block ``l`` (:func:`spatial_mean`: the mean
over the spatial axes or tokens of the block's layout, see
:func:`conceptscope.activations.layer_layout`). :class:`BlockChain` cuts any
``torch.fx``-traceable model into those sub-networks, so ``f_a`` is evaluated
on stored block outputs instead of from pixels; the tests check that the
pieces reproduce the model's own forward pass (CNNs, ViT, Swin).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

from ..activations import LayoutError, channels_first, layer_layout

__all__ = ["BlockChain", "spatial_mean"]


class _BlockTracer(fx.Tracer):
    """A tracer that keeps the innermost probed blocks as leaves and records every probed block's output node."""

    def __init__(self, leaves: set[str], probed: set[str]) -> None:
        super().__init__()
        self._leaves = leaves
        self._probed = probed
        self.block_nodes: dict[str, fx.Node] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self._leaves or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        name = self.path_of_module(m)
        out = super().call_module(m, forward, args, kwargs)
        if name in self._probed:
            if name in self.block_nodes:
                raise ValueError(
                    f"block {name!r} is called more than once in the forward pass; its output is ambiguous"
                )
            if not isinstance(out, fx.Proxy):
                raise ValueError(f"block {name!r} does not return a single tensor (got {type(out).__name__})")
            self.block_nodes[name] = out.node
        return out


def _ancestors(outs: Sequence[fx.Node], stops: Sequence[fx.Node]) -> set[fx.Node]:
    """Nodes the ``outs`` depend on (themselves included), not looking past the ``stops``."""
    seen: set[fx.Node] = set()
    stack = list(outs)
    while stack:
        node = stack.pop()
        if node in seen or node in stops:
            continue
        seen.add(node)
        stack.extend(node.all_input_nodes)
    return seen


def _fixed_arguments(model: nn.Module) -> dict[str, Any]:
    """The optional arguments of ``model.forward`` (all but the input), fixed at their defaults for tracing.

    A traced optional input (e.g. the ``attn_mask`` / ``is_causal`` of a timm
    ViT) would otherwise be a placeholder that the traced graph branches on
    and passes to every block, a false dependency of each block on the model
    input. Required extra arguments and ``*args`` / ``**kwargs`` stay free.
    """
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # no signature to read: trace as is
        return {}
    free = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p.default for p in params[1:] if p.kind not in free and p.default is not inspect.Parameter.empty}


def _is_inplace(node: fx.Node, root: nn.Module) -> bool:
    """Whether a graph node (probably) writes into its first input."""
    if node.kwargs.get("inplace", False):
        return True
    if node.op == "call_module":
        return bool(getattr(root.get_submodule(str(node.target)), "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_") and not str(node.target).endswith("__")
    return False


class BlockChain:
    """Sub-networks between the probed blocks of a model, cut from its ``torch.fx`` graph.

    The model is traced once (in eval mode, so Python branches on
    ``self.training`` take their inference path; optional arguments of its
    ``forward``, e.g. an attention mask, fixed at their defaults) by a tracer that treats each
    probed block as a leaf module (besides the ``torch.nn`` leaves); a probed
    block that contains another probed block is traced through and its output
    node recorded. :meth:`prefix` runs the graph from the model input up to one
    block; :meth:`between` returns a module mapping one block's output to a
    later block's output. Modules and parameters are shared with ``model`` (no
    copies).

    Parameters
    ----------
    model : nn.Module
        Any model that ``torch.fx`` can trace symbolically.
    layer_names : sequence of str
        Probed blocks, module paths as in ``model.named_modules()`` (e.g.
        ``layer3``, ``layer4``, ``fc``), in forward (bottom to top) order.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones), repeated names,
        names out of forward order, or a block called more than once.
    """

    def __init__(self, model: nn.Module, layer_names: Sequence[str]) -> None:
        if isinstance(layer_names, str):
            raise ValueError(f"layer_names must be a sequence of module names, got the string {layer_names!r}")
        names = [str(n) for n in layer_names]
        if not names:
            raise ValueError("layer_names must name at least one block, got an empty sequence")
        if len(set(names)) != len(names):
            raise ValueError(f"layer_names must be unique, got {names!r}")
        modules = dict(model.named_modules())
        unknown = [n for n in names if n not in modules or n == ""]
        if unknown:
            valid = [k for k in modules if k]
            raise ValueError(f"unknown layer name(s) {unknown!r}; valid names: {valid}")
        probed = set(names)
        leaves = {n for n in names if not any(o.startswith(n + ".") for o in names)}
        tracer = _BlockTracer(leaves, probed)
        modes = {m: m.training for m in model.modules()}
        model.eval()
        try:
            graph = tracer.trace(model, concrete_args=_fixed_arguments(model) or None)
        finally:
            for m, mode in modes.items():
                m.training = mode
        missing = [n for n in names if n not in tracer.block_nodes]
        if missing:
            raise ValueError(f"block(s) {missing!r} are not called in the forward pass of the model")
        order = {node: i for i, node in enumerate(graph.nodes)}
        in_graph = sorted(names, key=lambda n: order[tracer.block_nodes[n]])
        if in_graph != names:
            raise ValueError(f"layer_names must be in forward order; got {names!r}, forward order is {in_graph!r}")
        self.model = model
        self.layer_names: tuple[str, ...] = tuple(names)
        self.graph = graph
        self.block_nodes: dict[str, fx.Node] = dict(tracer.block_nodes)
        self._order = order
        self._prefix: dict[str, fx.GraphModule] = {}
        self._between: dict[tuple[str, str], fx.GraphModule] = {}

    def _check(self, name: str, what: str) -> fx.Node:
        if name not in self.block_nodes:
            raise ValueError(f"{what} {name!r} is not a probed block; probed blocks: {list(self.layer_names)}")
        return self.block_nodes[name]

    def _build(self, nodes: set[fx.Node], out: fx.Node, env: dict[fx.Node, Any], g: fx.Graph, name: str):
        for node in sorted(nodes, key=self._order.__getitem__):
            if node not in env:
                env[node] = g.node_copy(node, lambda n: env[n])
                if node.op == "placeholder" and any(
                    _is_inplace(u, self.model) and u.args and u.args[0] is node for u in node.users if u in nodes
                ):
                    env[node] = g.call_function(torch.clone, (env[node],))  # keep the caller's tensor intact
        g.output(env[out])
        g.lint()
        return fx.GraphModule(self.model, g, class_name=name)

    def prefix(self, x: torch.Tensor, upto: str) -> torch.Tensor:
        """Output of block ``upto`` for model input ``x``; only the graph up to that block runs.

        Parameters
        ----------
        x : Tensor, shape (n, ...)
            Model input.
        upto : str
            A probed block.

        Returns
        -------
        Tensor
            The block's output, e.g. (n, C, h, w).
        """
        if upto not in self._prefix:
            out = self._check(upto, "upto")
            nodes = _ancestors([out], ())
            self._prefix[upto] = self._build(nodes, out, {}, fx.Graph(), "Prefix")
        return self._prefix[upto](x)

    def between(self, lower: str, upper: str) -> nn.Module:
        """A module mapping the output of block ``lower`` to the output of block ``upper``.

        Everything the graph does in between is included (e.g. average pooling
        and flattening before a classifier, a max-pool between two inception
        blocks). The module shares the model's submodules and parameters.

        Parameters
        ----------
        lower, upper : str
            Probed blocks, ``lower`` before ``upper``.

        Returns
        -------
        nn.Module
            Takes a tensor shaped like the output of ``lower`` and returns the
            output of ``upper``.

        Raises
        ------
        ValueError
            If the output of ``upper`` does not depend on ``lower`` or depends on
            anything else computed from the model input (a skip connection
            around ``lower``, the input itself); the message names the nodes
            that break the cut.
        """
        key = (lower, upper)
        if key in self._between:
            return self._between[key]
        lo, up = self._check(lower, "lower"), self._check(upper, "upper")
        if lo is up:
            raise ValueError(f"lower and upper must be different blocks, got {lower!r} twice")
        region = _ancestors([up], (lo,))
        from_lower: dict[fx.Node, bool] = {}
        from_input: dict[fx.Node, bool] = {}
        for node in sorted(region, key=self._order.__getitem__):
            ins = node.all_input_nodes
            from_lower[node] = any(i is lo or from_lower.get(i, False) for i in ins)
            from_input[node] = node.op == "placeholder" or any(i is not lo and from_input.get(i, False) for i in ins)
        if not from_lower[up]:
            raise ValueError(f"between({lower!r}, {upper!r}): the output of {upper!r} does not depend on {lower!r}")
        if from_input[up]:
            breakers = [
                n
                for n in sorted(region, key=self._order.__getitem__)
                if from_input[n] and not from_lower[n] and any(u in region and from_lower[u] for u in n.users)
            ]
            desc = ", ".join(f"{n.name} ({n.op} {n.target})" for n in breakers)
            raise ValueError(
                f"between({lower!r}, {upper!r}) is not a cut: the output of {upper!r} depends on the model input "
                f"other than through {lower!r}, via node(s) {desc} (e.g. a skip connection around {lower!r})"
            )
        g = fx.Graph()
        inp = g.placeholder(lo.name)
        if any(_is_inplace(u, self.model) and u.args and u.args[0] is lo for u in lo.users if u in region):
            inp = g.call_function(torch.clone, (inp,))  # keep the caller's tensor intact
        sub = self._build(region, up, {lo: inp}, g, "Between")
        self._between[key] = sub
        return sub


def _unit_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis after the units of a channels-first output: (n, C, ...) -> (n, C)."""
    return x if x.ndim == 2 else x.mean(dim=tuple(range(2, x.ndim)))


def _resolve_layout(shape: Sequence[int], layout: str | None, *, name: str, param: str) -> str:
    """:func:`conceptscope.activations.layer_layout`, its error naming the argument that sets the layout."""
    try:
        return layer_layout(shape, layout, name=name)
    except LayoutError as err:
        raise LayoutError(f"{err} (here: the argument {param})") from None


def spatial_mean(out: torch.Tensor, layout: str | None = None) -> torch.Tensor:
    """Average a block output over its spatial axes or tokens: the units' spatially averaged activation.

    Parameters
    ----------
    out : Tensor
        A batch of block outputs: (n, C, H, W) maps (``channels_first``),
        (n, H, W, C) maps (``channels_last``, e.g. Swin stages), (n, T, C)
        tokens or (n, C) vectors.
    layout : str, optional
        One of :data:`conceptscope.activations.LAYOUTS`; detected from the
        shape when not given (:func:`conceptscope.activations.layer_layout`).

    Returns
    -------
    Tensor, shape (n, C)
        Mean over (H, W) for maps, over T for tokens; vectors unchanged.

    Raises
    ------
    conceptscope.activations.LayoutError
        If the layout cannot be detected (non-square maps) or does not fit.
    """
    if not isinstance(out, torch.Tensor) or out.ndim < 2:
        raise ValueError(f"out must be a batch of block outputs (n, ...), got {getattr(out, 'shape', out)!r}")
    layout = _resolve_layout(out.shape[1:], layout, name="block output", param="layout")
    return _unit_mean(channels_first(out, layout))


class _ChannelsFirst(nn.Module):
    """A sub-network seen with units on axis 1: takes the lower block's output channels first, returns its
    output channels first (:func:`conceptscope.activations.channels_first`); traceable by ``torch.fx``."""

    def __init__(self, sub: nn.Module, lower: str, upper: str) -> None:
        super().__init__()
        self.sub = sub
        self.lower = lower
        self.upper = upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lower == "channels_last":  # (n, C, H, W) -> (n, H, W, C)
            x = x.permute(0, 2, 3, 1)
        elif self.lower == "tokens":  # (n, C, T) -> (n, T, C)
            x = x.transpose(1, 2)
        return channels_first(self.sub(x), self.upper)
