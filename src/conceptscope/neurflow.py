"""NeurFlow core-neuron importance: patches, sub-networks between probed blocks, integrated gradients.

Implements the model-facing half of NeurFlow (Cao et al., "NeurFlow: Interpreting
Neural Networks through Neuron Groups and Functional Interactions", ICLR 2025,
Sect. 3-4); the grouping steps on the resulting arrays live in
:mod:`conceptscope.neurflow_groups`. Notation follows the paper:

- For class ``c`` the images predicted as ``c`` are cut into patches
  (:func:`make_patches`: crops at several scales, each resized back to the model
  input). A neuron (channel) ``a`` of probed block ``l`` has the concept
  ``V_a``: its top-k patches by spatially averaged activation
  (:func:`top_k_patches`).
- The importance of channel ``s`` of the previous probed block ``l-1`` for
  ``a`` is NeurFlow Eq. 2,

  ``T(a, s, V_a) = sum_{v in V_a} IG_s(f_a, z_v)``,

  where ``z_v`` is the output of block ``l-1`` for patch ``v``, ``f_a`` maps it
  to the spatial mean of channel ``a`` at block ``l`` and ``IG_s`` is the
  integrated-gradients attribution (Sundararajan, Taly and Yan, "Axiomatic
  Attribution for Deep Networks", ICML 2017, arXiv:1703.01365, Eq. 1) with a
  zero baseline, summed over the spatial positions of channel ``s``:

  ``IG_i(f, x) = (x_i - x'_i) * int_0^1 df(x' + t (x - x')) / dx_i dt``.

  The integral is a quadrature with ``N`` nodes; the paper writes the right
  Riemann sum ``(1/N) sum_{k=1..N} grad f(x' + k/N (x - x'))`` (the default
  here, ``riemann_right``), the authors' code used captum's default
  Gauss-Legendre rule (``gausslegendre``).
- The core neurons ``S_a`` are the top-tau channels ``s`` by ``|T(a, s, V_a)|``
  (:func:`core_neurons`; tau = 16, k = 50, N = 50 in the paper).

:class:`BlockChain` cuts any ``torch.fx``-traceable model into the
sub-networks between consecutive probed blocks, so ``f_a`` is evaluated on
stored block outputs instead of from pixels. :func:`importance` computes the
attributions of many targets at once: each (patch, quadrature node) point is
evaluated once and all targets whose concepts contain the patch take their
gradients from that forward pass; an affine first stage of the sub-network
(e.g. the first convolutions of a ResNet block) runs once per patch.
:func:`adaptive_importance` doubles the nested Riemann grid per target, with
the Richardson-extrapolated (midpoint) estimate, until its core set settles.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = [
    "METHODS",
    "PATCH_SCALES",
    "BlockChain",
    "adaptive_importance",
    "class_patches",
    "core_neurons",
    "importance",
    "integrated_gradients",
    "make_patches",
    "spatial_mean",
    "top_k_patches",
]

PATCH_SCALES = (1.0, 0.5, 0.25)
METHODS = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")


# ----------------------------------------------------------------------------
# patches
# ----------------------------------------------------------------------------


def _offsets(length: int, crop: int, stride: float) -> list[int]:
    """Start offsets of crops of size ``crop`` along ``length``: first at 0, last ending at the border."""
    if crop >= length:
        return [0]
    count = math.ceil((length - crop) / stride - 1e-9) + 1
    return [round(v) for v in np.linspace(0.0, length - crop, count)]


def make_patches(
    images: torch.Tensor, *, scales: Sequence[float] = PATCH_SCALES, overlap: float = 0.5
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Cut images into overlapping crops at several scales, each resized back to the input size.

    For each scale ``s`` a crop of ``round(s*H) x round(s*W)`` pixels slides with
    stride ``(1 - overlap) * crop size`` in each direction; the offsets are
    evenly spaced from 0 to ``H - crop`` (resp. ``W - crop``) so that the crops
    tile the image exactly (the last crop ends at the border). With the default
    scales (1, 0.5, 0.25) and overlap 0.5 this gives 1 + 3x3 + 7x7 = 59 patches
    per image. Each crop is resized to (H, W) with bilinear interpolation
    (``align_corners=False``, no antialiasing); a full-size crop is the image.

    Parameters
    ----------
    images : Tensor, shape (n, C, H, W)
        Model-ready images.
    scales : sequence of float in (0, 1]
        Crop side as a fraction of the image side, in output order.
    overlap : float in [0, 1)
        Fraction of a crop shared with its neighbour.

    Returns
    -------
    patches : Tensor, shape (n * n_per_image, C, H, W)
        Image-major: all patches of image 0 (scales in order, then row-major
        crop positions), then image 1, ...
    table : DataFrame
        One row per patch: ``patch`` (row index into ``patches``), ``image``
        (index into ``images``), ``scale``, ``top``, ``left``, ``height``,
        ``width`` (the crop box in pixels of the input).
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a tensor of shape (n, C, H, W), got {getattr(images, 'shape', images)!r}")
    scales = tuple(float(s) for s in scales)
    if not scales or any(not 0.0 < s <= 1.0 for s in scales):
        raise ValueError(f"scales must be a non-empty sequence of values in (0, 1], got {scales!r}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    n, c, H, W = images.shape
    boxes: list[tuple[float, int, int, int, int]] = []
    per_scale: list[torch.Tensor] = []
    for s in scales:
        ch, cw = max(1, round(s * H)), max(1, round(s * W))
        tops = _offsets(H, ch, (1.0 - overlap) * ch)
        lefts = _offsets(W, cw, (1.0 - overlap) * cw)
        crops = [images[:, :, t : t + ch, le : le + cw] for t in tops for le in lefts]
        stack = torch.stack(crops, dim=1).reshape(n * len(crops), c, ch, cw)
        if (ch, cw) != (H, W):
            stack = F.interpolate(stack, size=(H, W), mode="bilinear", align_corners=False, antialias=False)
        per_scale.append(stack.reshape(n, len(crops), c, H, W))
        boxes.extend((s, t, le, ch, cw) for t in tops for le in lefts)
    patches = torch.cat(per_scale, dim=1).reshape(n * len(boxes), c, H, W)
    box = np.asarray([b[1:] for b in boxes], dtype=np.int64).reshape(-1, 4)
    table = pd.DataFrame(
        {
            "patch": np.arange(n * len(boxes), dtype=np.int64),
            "image": np.repeat(np.arange(n, dtype=np.int64), len(boxes)),
            "scale": np.tile(np.asarray([b[0] for b in boxes], dtype=np.float64), n),
            "top": np.tile(box[:, 0], n),
            "left": np.tile(box[:, 1], n),
            "height": np.tile(box[:, 2], n),
            "width": np.tile(box[:, 3], n),
        }
    )
    return patches, table


# ----------------------------------------------------------------------------
# sub-networks between probed blocks
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# integrated gradients
# ----------------------------------------------------------------------------


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


def _quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha`` in [0, 1] and weights of the path integral, float64.

    Riemann sums use weights 1/n: right nodes k/n (k = 1..n), left (k-1)/n,
    middle (k - 1/2)/n. The trapezoid rule uses n equally spaced nodes 0..1
    with weights 1/(n-1), halved at both ends (it integrates linear functions
    exactly; captum's ``riemann_trapezoid`` uses weights 1/n on the same nodes,
    so its sum is (n-1)/n of this one). Gauss-Legendre: numpy's nodes and
    weights on [-1, 1] mapped to [0, 1].
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = _positive_int(n_steps, "n_steps")
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


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _int_in(value: Any, name: str, lo: int, hi: float) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def integrated_gradients(
    forward_fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    target: int,
    n_steps: int = 50,
    method: str = "riemann_right",
    batch_size: int = 64,
    baselines: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Integrated gradients of one output channel, averaged over space (Sundararajan et al. 2017, Eq. 1).

    ``attr = (x - x') * sum_k w_k grad f(x' + alpha_k (x - x'))`` with
    ``f = spatial_mean(forward_fn(.))[:, target]`` and the nodes ``alpha_k`` and
    weights ``w_k`` of ``method`` for ``n_steps`` (``riemann_right``: k/N and 1/N,
    the paper's sum; ``gausslegendre``: captum's default, used by the NeurFlow
    authors). The (example, node) rows are evaluated in chunks of ``batch_size``
    rows and the weighted gradients summed per example, so the batch size does
    not change the result (``forward_fn`` must treat rows independently, e.g. a
    model in eval mode).

    Parameters
    ----------
    forward_fn : callable
        Maps a batch shaped like ``inputs`` to (n, C, H, W), (n, C) or (n, T, C).
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

    Returns
    -------
    Tensor, shape of ``inputs``
        The attributions, dtype of ``inputs``.
    """
    alphas, weights = _quadrature(method, n_steps)
    batch_size = _positive_int(batch_size, "batch_size")
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1:
        raise ValueError(f"inputs must be a tensor of shape (n, ...), got {getattr(inputs, 'shape', inputs)!r}")
    target = _int_in(target, "target", 0, math.inf)
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
            out = spatial_mean(forward_fn(point))
            if target >= out.shape[1]:
                raise ValueError(f"target {target!r} out of range for an output with {out.shape[1]} channels")
            (grad,) = torch.autograd.grad((out[:, target] * w[node]).sum(), point, allow_unused=True)
            if grad is not None:
                total.index_add_(0, ex, grad.to(torch.float64))
    return (diff.to(torch.float64) * total).to(x.dtype)


# ----------------------------------------------------------------------------
# importance of l-1 channels for many targets at once
# ----------------------------------------------------------------------------


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

    ``n_out``: its output channels. If it starts with affine operations
    (:func:`_affine_split`) and the split reproduces it on the first maps
    (and ``lin`` is affine there), ``lin``/``rest``/``offset`` (``lin(0)``) are
    set: the points ``alpha * x`` then enter ``rest`` as ``lin(0) + alpha *
    (lin(x) - lin(0))``, and because the Jacobian of ``lin`` is constant the
    weighted gradients at the frontier are summed over nodes before one
    backward pass through ``lin`` per (patch, target).
    """

    def __init__(self, sub: nn.Module, maps: torch.Tensor) -> None:
        self.sub = sub
        self.lin: fx.GraphModule | None = None
        self.rest: fx.GraphModule | None = None
        self.offset: tuple[torch.Tensor, ...] = ()
        probe_in = maps[:2]
        with torch.no_grad():
            probe = sub(probe_in)
            self.n_out = spatial_mean(probe).shape[1]
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
    sub-network must be in eval mode with parameters not requiring grad.

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
                out = spatial_mean(plan.sub(*points))
            else:
                with torch.no_grad():
                    span = plan.lin(maps[patches[j_lo : j_hi + 1]])
                points = tuple(
                    (o + scale(a[k], o) * (t - o)[j - j_lo]).requires_grad_(True)
                    for t, o in zip(span, plan.offset, strict=True)
                )
                out = spatial_mean(plan.rest(*points))
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


def _check_concepts(maps: torch.Tensor, concepts: Mapping[int, Sequence[int]]) -> dict[int, np.ndarray]:
    """Validate the maps and the concepts' structure; concepts as int64 arrays."""
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2:
        raise ValueError(
            f"maps must be a tensor of shape (P, C_prev, h, w) or (P, C_prev), got {getattr(maps, 'shape', maps)!r}"
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


def _plan(sub: nn.Module, maps: torch.Tensor, concepts: Mapping[int, np.ndarray]) -> _Plan | None:
    """The evaluation plan (sub in eval mode), after checking the targets against its output width."""
    if not any(len(r) for r in concepts.values()):
        return None
    plan = _Plan(sub, maps)
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
        idx = torch.as_tensor([pairs.index[(int(p), a)] for p in rows], dtype=torch.long, device=acc.device)
        result[a] = acc.index_select(0, idx).to(dtype)
    return result


def importance(
    sub: nn.Module,
    maps: torch.Tensor,
    concepts: Mapping[int, Sequence[int]],
    *,
    n_steps: int = 50,
    method: str = "riemann_right",
    batch_size: int = 256,
    progress: bool = False,
) -> dict[int, torch.Tensor]:
    """Integrated-gradients attributions of the l-1 channels for many targets of block l (NeurFlow Eq. 2).

    For each target channel ``a`` of block l and each patch ``v`` of its
    concept, the zero-baseline IG of ``spatial_mean(sub(.))[:, a]`` at
    ``maps[v]``, summed over the spatial positions of each channel. Then
    ``T(a, s, V_a) = result[a].sum(0)[s]``.

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
    maps : Tensor, shape (P, C_prev, h, w) or (P, C_prev)
        Outputs of block l-1 for a set of patches; computation happens on its device.
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

    Returns
    -------
    dict int -> Tensor, shape (k_a, C_prev)
        Per target, the attribution of each concept patch (in concept order) per
        l-1 channel, dtype of ``maps``.
    """
    alphas, weights = _quadrature(method, n_steps)
    batch_size = _positive_int(batch_size, "batch_size")
    checked = _check_concepts(maps, concepts)
    pairs = _Pairs(checked)
    maps = maps.detach()
    with _EvalNoParamGrad(sub):
        plan = _plan(sub, maps, checked)
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
    tau = _int_in(tau, "tau", 1, scores.shape[0])
    order = torch.sort(scores.abs(), descending=True, stable=True).indices
    return order[:tau]


def adaptive_importance(
    sub: nn.Module,
    maps: torch.Tensor,
    concepts: Mapping[int, Sequence[int]],
    *,
    max_steps: int = 50,
    start_steps: int = 4,
    tau: int = 16,
    rtol: float = 0.2,
    max_swaps: int = 1,
    batch_size: int = 256,
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
    sub, maps, concepts, batch_size
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
    max_steps = _positive_int(max_steps, "max_steps")
    start_steps = _positive_int(start_steps, "start_steps")
    if start_steps > max_steps or start_steps % 2:
        raise ValueError(f"start_steps must be even and <= max_steps ({max_steps}), got {start_steps}")
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    batch_size = _positive_int(batch_size, "batch_size")
    checked = _check_concepts(maps, concepts)
    tau = _int_in(tau, "tau", 1, maps.shape[1])
    max_swaps = _int_in(max_swaps, "max_swaps", 0, tau - 1)
    maps = maps.detach()
    pairs = _Pairs(checked)
    sequence = [start_steps]
    while sequence[-1] * 2 <= max_steps:
        sequence.append(sequence[-1] * 2)

    # pair indices of each target's distinct patches, and of its concept rows (duplicates kept)
    own = {
        a: torch.as_tensor([pairs.index[(int(p), a)] for p in np.unique(r)], dtype=torch.long, device=maps.device)
        for a, r in checked.items()
    }
    rows_of = {
        a: torch.as_tensor([pairs.index[(int(p), a)] for p in r], dtype=torch.long, device=maps.device)
        for a, r in checked.items()
    }

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
        plan = _plan(sub, maps, checked)

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


# ----------------------------------------------------------------------------
# concepts
# ----------------------------------------------------------------------------


def class_patches(predictions: np.ndarray, class_index: int, max_images: int | None) -> np.ndarray:
    """Positions of the images predicted as ``class_index``, the first ``max_images`` in stored order.

    Parameters
    ----------
    predictions : ndarray of int, shape (n_images,)
    class_index : int
    max_images : int or None
        Keep at most this many (None: all).

    Returns
    -------
    ndarray of int64, shape (m,)
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 1:
        raise ValueError(f"predictions must be 1-D, got shape {predictions.shape}")
    pos = np.flatnonzero(predictions == class_index).astype(np.int64)
    return pos if max_images is None else pos[: _positive_int(max_images, "max_images")]


def top_k_patches(means: np.ndarray, unit: int, k: int) -> np.ndarray:
    """Row indices of the ``k`` patches with the highest value in column ``unit`` (ties: lower row first).

    Parameters
    ----------
    means : ndarray, shape (n_patches, n_units)
        Spatially averaged activations of one block.
    unit : int
        Column (neuron).
    k : int
        Concept size, 1 <= k <= n_patches.

    Returns
    -------
    ndarray of int64, shape (k,)
        In decreasing order of the value.
    """
    means = np.asarray(means)
    if means.ndim != 2:
        raise ValueError(f"means must be 2-D (n_patches, n_units), got shape {means.shape}")
    unit = _int_in(unit, "unit", 0, means.shape[1] - 1)
    k = _int_in(k, "k", 1, means.shape[0])
    order = np.argsort(-means[:, unit].astype(np.float64), kind="stable")
    return order[:k].astype(np.int64)
