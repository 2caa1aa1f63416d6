"""NeurFlow sub-networks between probed blocks, cut from a model's ``torch.fx`` graph.

NeurFlow (Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron
Groups and Functional Interactions", ICLR 2025, Sect. 4) attributes a neuron
``a`` of probed block ``l`` to the channels of the previous probed block
``l-1`` through ``f_a``, the map from the output of block ``l-1`` to the
spatial mean of channel ``a`` at block ``l`` (:func:`spatial_mean`).
:class:`BlockChain` cuts any ``torch.fx``-traceable model into those
sub-networks, so ``f_a`` is evaluated on stored block outputs instead of from
pixels; the tests check that the pieces reproduce the model's own forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

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
    ``self.training`` take their inference path) by a tracer that treats each
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
            graph = tracer.trace(model)
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


def spatial_mean(out: torch.Tensor) -> torch.Tensor:
    """Average a block output over space (or tokens).

    Parameters
    ----------
    out : Tensor
        (n, C, H, W) feature maps, (n, C) vectors or (n, T, C) tokens.

    Returns
    -------
    Tensor, shape (n, C)
        Mean over (H, W); vectors unchanged; mean over T for tokens.
    """
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    if out.ndim == 2:
        return out
    if out.ndim == 3:
        return out.mean(dim=1)
    raise ValueError(f"expected a block output of shape (n, C, H, W), (n, C) or (n, T, C), got {tuple(out.shape)}")
