"""Per-channel importance of the lower block's channels for one target, by several attribution methods.

NeurFlow (Cao et al., ICLR 2025, App., Fig. 10-11) compares its integrated-gradients
importance ``T(a, s, V_a)`` (Eq. 2, :mod:`conceptscope.neurflow.neuron_importance`) with
other ways of scoring the channels ``s`` of block l-1 for a target ``a`` of block l, by how
well the scores predict the knock-out loss (Fig. 11) and by their cost (Fig. 10). Every
method here attributes the same scalar, the target's spatially averaged activation

    ``f_a(z) = spatial_mean(sub(z), upper_layout)[:, a]``,

to the elements of the lower block's output ``z`` (one concept patch per row) and sums the
attribution of each channel over its spatial positions or tokens; :func:`method_scores`
then sums over the concept's patches, like ``T(a, s, V_a) = sum_{v in V_a}``. The methods
(:data:`ATTRIBUTION_METHODS`) are captum 0.9's:

- ``integrated_gradients``: ``(z - 0) * (1/N) sum_{k=1..N} grad f(k/N z)``, Sundararajan et
  al. 2017 [1]_ Eq. 1 with the right Riemann sum of the NeurFlow paper (captum
  ``IntegratedGradients``, ``method='riemann_right'``, zero baseline); equals
  :func:`conceptscope.neurflow.importance` (tested).
- ``saliency``: ``|grad f(z)|`` (Simonyan et al. 2014 [2]_; captum ``Saliency``, ``abs=True``).
- ``guided_backprop``: the gradient with negative gradients zeroed at every ``nn.ReLU``
  module (Springenberg et al. 2015 [3]_; captum ``GuidedBackprop``). NOTE: captum hooks
  ``nn.ReLU`` modules only; a functional ``relu`` (``F.relu``, ``torch.relu``) passes the
  plain gradient.
- ``lrp``: layer-wise relevance propagation, captum ``LRP`` with its default rules (the
  epsilon rule, epsilon 1e-9, on convolutions, linear, batch-norm and pooling modules;
  relevance passes unchanged through ReLU, Tanh and Dropout) (Bach et al. 2015 [4]_).
- ``smoothgrad``: the mean of ``|grad f(z + eps)|`` over ``smoothgrad_samples`` draws
  ``eps ~ N(0, sigma^2)``, ``sigma = smoothgrad_noise * (max(maps) - min(maps))``, the noise
  level as a fraction of the input range (Smilkov et al. 2017 [5]_, who suggest 10-20 %;
  captum ``NoiseTunnel(Saliency)``, ``nt_type='smoothgrad'``).
- ``gradient_shap``: the expected gradient x (input - baseline) over baselines drawn from
  ``baselines`` and points drawn uniformly on the segment between them and the input
  (Lundberg and Lee 2017 [6]_; captum ``GradientShap``, ``stdevs=0``); baselines by default
  the zero map and the mean map of the patches.
- ``knockoff``: NeuCEPT's model-X knockoff statistics, not an attribution of a patch; see
  :func:`conceptscope.neurflow.knockoffs.knockoff_statistics` (:func:`method_scores` runs it
  on the spatially averaged activations of the given patches).

The sub-network is wrapped channels first (:class:`conceptscope.neurflow.blocks._ChannelsFirst`)
in a module whose forward returns the (n, C_upper) spatial means, through an
``nn.AdaptiveAvgPool2d(1)`` module (so that LRP applies its rule to the average, a
functional ``mean`` would pass relevance uniformly over the positions); captum is called on
that module. Stochastic methods are seeded (``seed``): torch's default generator of the
maps' device and numpy's global generator (captum's ``GradientShap`` draws baselines and
path points with ``np.random``) are seeded inside a saved and restored state, so the global
random state is left as it was. Their draws depend on ``batch_size`` (each chunk draws in
turn); the result is reproducible for a given seed and batch size.

LRP. captum's ``LRP`` propagates relevance with hooks on leaf modules and runs every other
operation as a plain gradient, which is a relevance rule only for operations that move,
copy or gate values (reshape, permute, slicing, concatenation, ReLU). It raises for a leaf
module type without a rule (e.g. ``GELU``, ``LayerNorm``) and for a module with a rule used
twice; it runs silently, with a wrong result, when the graph adds two tensors (a skip
connection): the add's gradient hands the whole relevance to both summands. Before calling
it, :func:`channel_attributions` traces the wrapped sub-network with ``torch.fx`` (shapes
propagated on one patch) and raises :class:`AttributionRefused` naming every module or
operation of those kinds (and when the sub-network cannot be traced, as it then cannot be
checked). Observed with captum 0.9:

- a plain conv-ReLU stack (and conv-ReLU-pool-linear): runs; the relevances sum to f_a for
  bias-free layers (biases absorb some).
- a ResNet BasicBlock cut (torchvision resnet18 ``layer3`` -> ``layer4``, two
  BasicBlocks, random weights): captum runs without error, but on two random maps the
  relevances sum to 4.3 and 3.6 where f_a is 1.0 and 0.85 (about 4 times); a bias-free
  conv-ReLU-conv block with an identity skip gives 1.6 times f_a (exactly f_a without the
  skip). Both adds (``out += identity``) are refused here, so LRP is refused on every cut
  holding a residual block (``layer4`` -> ``fc``, pooling and linear, runs). The block's
  ``relu`` module is called twice; captum accepts reused ReLU modules (they carry no rule),
  and so does this check.
- a GoogLeNet cut (``inception4e`` -> ``inception5a``: convolutions, batch norm, functional
  ReLU, max pooling, concatenation of the branches): runs.

References
----------
.. [1] M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep Networks",
   ICML 2017, arXiv:1703.01365.
.. [2] K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks:
   Visualising Image Classification Models and Saliency Maps", ICLR workshop 2014,
   arXiv:1312.6034.
.. [3] J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller, "Striving for
   Simplicity: The All Convolutional Net", ICLR workshop 2015, arXiv:1412.6806.
.. [4] S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Mueller, W. Samek, "On
   Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
   Propagation", PLoS ONE 10(7), 2015.
.. [5] D. Smilkov, N. Thorat, B. Kim, F. Viegas, M. Wattenberg, "SmoothGrad: removing
   noise by adding noise", arXiv:1706.03825, 2017.
.. [6] S. M. Lundberg, S.-I. Lee, "A Unified Approach to Interpreting Model Predictions",
   NeurIPS 2017, arXiv:1705.07874.
"""

from __future__ import annotations

import contextlib
import operator
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from captum.attr import LRP, GradientShap, GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency
from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from ..checks import check_choice, check_int, check_number
from .accumulate import _EvalNoParamGrad
from .blocks import _unit_mean
from .knockoffs import _numpy_global_seed, knockoff_statistics
from .neuron_importance import _channels_first
from .settings import ATTRIBUTION_METHODS

__all__ = ["ATTRIBUTION_METHODS", "AttributionRefused", "channel_attributions", "method_scores"]


# Operations outside modules through which captum's LRP (a plain gradient there) redistributes relevance
# correctly: they move, copy, select or gate values (ReLU passes relevance where the unit is active; an
# inactive unit has zero activation and so zero relevance under the next layer's rule anyway).
_LRP_FUNCTIONS = {
    operator.getitem,
    torch.flatten,
    torch.reshape,
    torch.permute,
    torch.transpose,
    torch.squeeze,
    torch.unsqueeze,
    torch.clone,
    torch.cat,
    torch.concat,
    torch.relu,
    nn.functional.relu,
}
_LRP_METHODS = {
    "flatten",
    "reshape",
    "view",
    "permute",
    "transpose",
    "contiguous",
    "clone",
    "squeeze",
    "unsqueeze",
    "relu",
}
_ADDITIONS = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__iadd__"}


class AttributionRefused(ValueError):
    """An attribution method cannot run on this sub-network; the message names the method, the modules or
    operations and why (e.g. LRP on a module type captum has no rule for, or on a skip connection)."""


class _TargetMeans(nn.Module):
    """A channels-first sub-network followed by the spatial mean of its output: (n, C_lower, ...) -> (n, C_upper).

    The mean over (H, W) or tokens is an ``nn.AdaptiveAvgPool2d(1)`` module (tokens get a unit
    width axis), so that captum's LRP applies its rule to it; ``out_ndim`` is the ndim of the
    sub-network's channels-first output (4 maps, 3 tokens, 2 vectors), fixed so that the forward
    has no data-dependent branch (``torch.fx`` traces it).
    """

    def __init__(self, sub: nn.Module, out_ndim: int) -> None:
        super().__init__()
        self.sub = sub
        self.out_ndim = out_ndim
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sub(x)
        if self.out_ndim == 2:
            return y
        if self.out_ndim == 3:  # (n, C, T) -> (n, C, T, 1)
            y = y.unsqueeze(-1)
        return self.pool(y).flatten(1)


# -- LRP check --------------------------------------------------------------------------------------------


def _module_names(forward: _TargetMeans, sub: nn.Module) -> dict[nn.Module, str]:
    """Each module of the wrapped forward -> its path in the caller's ``sub`` (the wrapper's own pool named)."""
    names = {m: (n or "(the sub-network itself)") for n, m in sub.named_modules()}
    names[forward.pool] = "(the spatial-mean pooling added here)"
    return names


def _has_rule(module: nn.Module) -> bool:
    return getattr(module, "rule", None) is not None or type(module) in SUPPORTED_LAYERS_WITH_RULES


def _where(node: fx.Node, forward: nn.Module, names: dict[nn.Module, str]) -> str:
    """The text ", in module 'path' (Type)" for the innermost module holding a traced operation, or ""."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, kind = list(stack.values())[-1]
    try:
        name = names.get(forward.get_submodule(str(path)), str(path))
    except AttributeError:
        name = str(path)
    return f" in module {name!r} ({getattr(kind, '__name__', kind)})"


def _lrp_problems(forward: _TargetMeans, sub: nn.Module, probe: torch.Tensor) -> list[str]:
    """Why captum's LRP cannot run, or would run wrongly, on ``forward``; empty when it can."""
    names = _module_names(forward, sub)
    problems = []
    no_rule = [
        f"{names.get(m, '?')!r} ({type(m).__name__})"
        for m in forward.modules()
        if not list(m.children()) and not _has_rule(m) and type(m) not in SUPPORTED_NON_LINEAR_LAYERS
    ]
    if no_rule:
        problems.append(f"module(s) {', '.join(no_rule)} have no LRP rule in captum")
    try:
        graph = fx.Tracer().trace(forward)
        gm = fx.GraphModule(forward, graph)
        with torch.no_grad():
            ShapeProp(gm).propagate(probe)
    except Exception as err:  # any tracing failure: the graph cannot be checked
        problems.append(
            f"the sub-network cannot be traced by torch.fx ({type(err).__name__}: {err}), so the operations "
            "LRP would pass as plain gradients cannot be checked"
        )
        return problems
    calls = Counter(str(n.target) for n in graph.nodes if n.op == "call_module")
    reused = [
        f"{names.get(gm.get_submodule(t), t)!r} ({k} calls)"
        for t, k in calls.items()
        if k > 1 and _has_rule(gm.get_submodule(t))
    ]
    if reused:
        problems.append(f"module(s) {', '.join(reused)} are used more than once (captum's LRP keeps one state each)")

    def is_tensor(node: Any) -> bool:
        return isinstance(node, fx.Node) and isinstance(node.meta.get("tensor_meta"), TensorMetadata)

    adds, others = [], []
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method") or not is_tensor(node):
            continue
        if not any(is_tensor(a) for a in node.all_input_nodes):
            continue
        if node.target in _LRP_FUNCTIONS or node.target in _LRP_METHODS:
            continue
        what = f"{getattr(node.target, '__name__', node.target)}{_where(node, forward, names)} [node {node.name}]"
        tensors = sum(is_tensor(a) for a in node.all_input_nodes)
        (adds if node.target in _ADDITIONS and tensors > 1 else others).append(what)
    if adds:
        problems.append(
            f"it adds tensors outside modules, e.g. a skip connection ({', '.join(adds)}): captum's LRP passes "
            "the whole relevance to both summands, so relevance is not conserved"
        )
    if others:
        problems.append(
            f"tensor operation(s) outside modules {', '.join(others)} have no LRP rule (captum would pass them "
            "as plain gradients, which is not relevance propagation)"
        )
    return problems


@contextlib.contextmanager
def _captum_lrp_attributes(forward: nn.Module) -> Iterator[None]:
    """Restore the ``rule`` / ``activations`` attributes that captum's LRP sets on (and partly leaves on)
    the leaf modules, so the caller's model keeps no LRP state."""
    keys = ("rule", "activations")
    saved = {m: {k: m.__dict__[k] for k in keys if k in m.__dict__} for m in forward.modules()}
    try:
        yield
    finally:
        for m, attrs in saved.items():
            for k in keys:
                m.__dict__.pop(k, None)
            m.__dict__.update(attrs)


# -- seeding -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's default generator of ``device`` and numpy's global generator; restore both afterwards.

    Only the generator of ``device`` is seeded (``torch.manual_seed`` would also queue a seed for
    every CUDA device, outside the forked state).
    """
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"), _numpy_global_seed(seed):
        generator = torch.cuda.default_generators[index] if cuda else torch.default_generator
        generator.manual_seed(seed)
        yield


# -- attributions ------------------------------------------------------------------------------------------


def _check_options(
    method: str,
    n_steps: int,
    smoothgrad_samples: int,
    smoothgrad_noise: float,
    gradient_shap_samples: int,
    seed: int,
    batch_size: int,
) -> dict[str, Any]:
    check_choice("method", method, ATTRIBUTION_METHODS)
    return {
        "n_steps": check_int("n_steps", n_steps, minimum=1),
        "smoothgrad_samples": check_int("smoothgrad_samples", smoothgrad_samples, minimum=1),
        "smoothgrad_noise": check_number("smoothgrad_noise", smoothgrad_noise, minimum=0.0),
        "gradient_shap_samples": check_int("gradient_shap_samples", gradient_shap_samples, minimum=1),
        "seed": check_int("seed", seed, minimum=0, maximum=2**32 - 1),
        "batch_size": check_int("batch_size", batch_size, minimum=1),
    }


def _check_maps(maps: Any) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor) or maps.ndim < 2 or not maps.is_floating_point():
        raise ValueError(
            "maps must be a floating-point tensor of shape (P, C_lower, h, w), (P, h, w, C_lower), (P, T, C_lower) "
            f"or (P, C_lower), got {getattr(maps, 'shape', type(maps).__name__)!r}"
        )
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("maps must be finite; it holds NaN or inf values")
    return maps.detach()


def _default_baselines(x: torch.Tensor, baselines: torch.Tensor | None) -> torch.Tensor:
    """GradientShap baselines, channels first on the device and dtype of ``x``: given, or zero and mean maps."""
    if baselines is None:
        return torch.stack([torch.zeros_like(x[0]), x.mean(0)])
    if not isinstance(baselines, torch.Tensor) or tuple(baselines.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(
            f"baselines must be a tensor of channels-first maps shaped (m, {', '.join(map(str, x.shape[1:]))}), "
            f"got {getattr(baselines, 'shape', type(baselines).__name__)!r}"
        )
    if len(baselines) == 0 or not bool(torch.isfinite(baselines).all()):
        raise ValueError("baselines must hold at least one map and only finite values")
    return baselines.detach().to(device=x.device, dtype=x.dtype)


def _attribute(method: str, forward: nn.Module, x: torch.Tensor, target: int, opts: dict[str, Any]) -> torch.Tensor:
    """captum's attribution of ``forward(.)[:, target]`` for every row of ``x`` (channels first), chunked."""
    bs = opts["batch_size"]
    rows = {"integrated_gradients": opts["n_steps"], "smoothgrad": opts["smoothgrad_samples"]}
    rows["gradient_shap"] = opts["gradient_shap_samples"]
    per = max(1, bs // rows.get(method, 1))  # examples per captum call: about batch_size forward rows
    if method == "smoothgrad":
        stdev = opts["smoothgrad_noise"] * float(x.max() - x.min())  # over all patches, not per chunk
    if method == "gradient_shap":
        base = _default_baselines(x, opts["baselines"])
    out = []
    for start in range(0, len(x), per):
        chunk = x[start : start + per].clone().requires_grad_(True)  # a copy: the sub-network may write into it
        if method == "integrated_gradients":
            a = IntegratedGradients(forward).attribute(
                chunk, target=target, n_steps=opts["n_steps"], method="riemann_right", internal_batch_size=bs
            )
        elif method == "saliency":
            a = Saliency(forward).attribute(chunk, target=target, abs=True)
        elif method == "guided_backprop":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
                a = GuidedBackprop(forward).attribute(chunk, target=target)
        elif method == "lrp":
            with _captum_lrp_attributes(forward):
                try:
                    a = LRP(forward).attribute(chunk, target=target)
                except (TypeError, RuntimeError) as err:  # captum's own refusals, should the check above miss one
                    if "no rule" in str(err) or "more than once" in str(err):
                        raise AttributionRefused(f"method 'lrp': captum refuses this sub-network: {err}") from err
                    raise
        elif method == "smoothgrad":
            a = NoiseTunnel(Saliency(forward)).attribute(
                chunk,
                nt_type="smoothgrad",
                nt_samples=opts["smoothgrad_samples"],
                nt_samples_batch_size=max(1, min(opts["smoothgrad_samples"], bs // len(chunk))),
                stdevs=stdev,
                target=target,
            )
        else:
            a = GradientShap(forward).attribute(
                chunk, baselines=base, n_samples=opts["gradient_shap_samples"], stdevs=0.0, target=target
            )
        a = a.detach()
        out.append(a if a.ndim == 2 else a.sum(dim=tuple(range(2, a.ndim))))  # (n, C_lower): summed over space
    return torch.cat(out).to(x.dtype)


def channel_attributions(
    method: str,
    sub: nn.Module,
    maps: torch.Tensor,
    target: int,
    *,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
    n_steps: int = 50,
    smoothgrad_samples: int = 10,
    smoothgrad_noise: float = 0.15,
    gradient_shap_samples: int = 20,
    baselines: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> torch.Tensor:
    """Attribution of a target's spatially averaged activation to each lower channel, per patch.

    For each row ``z`` of ``maps``, ``method``'s attribution of ``f_a(z) =
    spatial_mean(sub(z), upper_layout)[:, target]`` to the elements of ``z``, summed over
    each channel's spatial positions or tokens (see the module docstring for the methods).

    Parameters
    ----------
    method : str
        One of :data:`ATTRIBUTION_METHODS` except ``knockoff``.
    sub : nn.Module
        The sub-network from block l-1 to block l (e.g. :meth:`BlockChain.between`). It runs
        in eval mode with parameters not requiring grad; modes and flags are restored.
    maps : Tensor, shape (P, C_lower, h, w), (P, h, w, C_lower), (P, T, C_lower) or (P, C_lower)
        Outputs of block l-1 for the target's concept patches V_a (dimension 0: patches);
        floating point, finite; computation happens on its device; not modified.
    target : int
        Channel ``a`` of block l.
    lower_layout, upper_layout : str, optional
        Layouts of ``maps`` and of the output of ``sub``
        (:data:`conceptscope.activations.LAYOUTS`), detected from the shapes when not given.
    n_steps : int
        Riemann nodes N of ``integrated_gradients``.
    smoothgrad_samples : int
        Noisy copies per patch of ``smoothgrad``.
    smoothgrad_noise : float
        Noise standard deviation of ``smoothgrad`` as a fraction of ``maps.max() - maps.min()``.
    gradient_shap_samples : int
        Samples per patch of ``gradient_shap``.
    baselines : Tensor, shape (m, C_lower, ...), optional
        ``gradient_shap`` baselines, channels first whatever ``lower_layout`` (e.g. maps of
        other patches); by default the zero map and the mean map of ``maps``.
    seed : int
        Seed of ``smoothgrad`` and ``gradient_shap`` (the global random state is untouched).
    batch_size : int
        Forward rows (patches x steps or samples) per captum call: ``max(1, batch_size //
        rows per patch)`` patches per call, and captum's ``internal_batch_size`` of
        integrated gradients / ``nt_samples_batch_size`` of smoothgrad.

    Returns
    -------
    Tensor, shape (P, C_lower)
        On the device of ``maps``, its dtype.

    Raises
    ------
    ValueError
        For an unknown method, ``knockoff`` (use
        :func:`conceptscope.neurflow.knockoffs.knockoff_statistics`), bad options, maps or
        baselines, or a target out of range.
    AttributionRefused
        For ``lrp`` on a sub-network captum's LRP cannot handle (module types without a rule,
        modules with a rule used twice, additions of tensors such as skip connections, other
        tensor operations outside modules, or a sub-network ``torch.fx`` cannot trace).
    """
    opts = _check_options(
        method, n_steps, smoothgrad_samples, smoothgrad_noise, gradient_shap_samples, seed, batch_size
    )
    if method == "knockoff":
        raise ValueError(
            "method 'knockoff' has no per-patch attributions: use conceptscope.neurflow.knockoffs."
            "knockoff_statistics on the spatially averaged activations (or method_scores('knockoff', ...))"
        )
    opts["baselines"] = baselines
    maps = _check_maps(maps)
    target = check_int("target", target, minimum=0)
    with _EvalNoParamGrad(sub):
        if len(maps) == 0:
            sub_cf, x, probe = _channels_first(sub, maps, lower_layout, upper_layout, False)
            return torch.zeros((0, x.shape[1]), dtype=maps.dtype, device=maps.device)
        sub_cf, x, probe = _channels_first(sub, maps, lower_layout, upper_layout, True)
        if target >= probe.shape[1]:
            raise ValueError(f"target {target} out of range: the sub-network outputs {probe.shape[1]} channels")
        forward = _TargetMeans(sub_cf, probe.ndim).eval()
        if method == "lrp":
            problems = _lrp_problems(forward, sub, x[:1].clone())
            if problems:
                raise AttributionRefused(f"method 'lrp' cannot run on this sub-network: {'; '.join(problems)}")
        if method in ("smoothgrad", "gradient_shap"):
            with _seeded(opts["seed"], x.device):
                return _attribute(method, forward, x, target, opts)
        return _attribute(method, forward, x, target, opts)


def _knockoff_scores(
    sub: nn.Module,
    maps: torch.Tensor,
    target: int,
    lower_layout: str | None,
    upper_layout: str | None,
    seed: int,
    batch_size: int,
) -> np.ndarray:
    """W of :func:`knockoff_statistics` with X the channels' spatial means of ``maps`` and y the target's."""
    maps = _check_maps(maps)
    target = check_int("target", target, minimum=0)
    with _EvalNoParamGrad(sub), torch.no_grad():
        sub_cf, x, probe = _channels_first(sub, maps, lower_layout, upper_layout, len(maps) > 0)
        if probe is not None and target >= probe.shape[1]:
            raise ValueError(f"target {target} out of range: the sub-network outputs {probe.shape[1]} channels")
        y = [_unit_mean(sub_cf(x[i : i + batch_size].clone()))[:, target] for i in range(0, len(x), batch_size)]
    X = _unit_mean(x).double().cpu().numpy()
    y_np = torch.cat(y).double().cpu().numpy() if y else np.zeros(0)
    return knockoff_statistics(X, y_np, seed=seed)


def method_scores(
    method: str,
    sub: nn.Module,
    maps: torch.Tensor,
    target: int,
    *,
    lower_layout: str | None = None,
    upper_layout: str | None = None,
    n_steps: int = 50,
    smoothgrad_samples: int = 10,
    smoothgrad_noise: float = 0.15,
    gradient_shap_samples: int = 20,
    baselines: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[np.ndarray, float, float]:
    """Per-channel scores of one method for one target, with the CPU and wall time they took.

    For a gradient method, the score of channel s is :func:`channel_attributions` summed
    over the patches (like ``T(a, s, V_a) = sum_{v in V_a}``, NeurFlow Eq. 2). For
    ``knockoff``, it is NeuCEPT's statistic ``W_s``
    (:func:`conceptscope.neurflow.knockoffs.knockoff_statistics`) with X the channels'
    spatially averaged activations over the rows of ``maps`` (for NeuCEPT, the class's
    patches rather than one concept; at least 2) and y the target's; ``n_steps``,
    ``smoothgrad_*``, ``gradient_shap_samples`` and ``baselines`` are unused then.

    Parameters
    ----------
    method, sub, maps, target, lower_layout, upper_layout, n_steps, smoothgrad_samples, smoothgrad_noise,
    gradient_shap_samples, baselines, seed, batch_size
        As in :func:`channel_attributions` (``knockoff`` allowed).

    Returns
    -------
    scores : ndarray of float64, shape (C_lower,)
    cpu_seconds : float
        ``time.process_time()`` difference (all threads of the process).
    wall_seconds : float
        ``time.perf_counter()`` difference; the scores are copied to the host inside the timed
        region, so a CUDA computation has finished.

    Raises
    ------
    ValueError, AttributionRefused
        As :func:`channel_attributions`; for ``knockoff`` as :func:`knockoff_statistics`.
    """
    check_choice("method", method, ATTRIBUTION_METHODS)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if method == "knockoff":
        _check_options(method, n_steps, smoothgrad_samples, smoothgrad_noise, gradient_shap_samples, seed, batch_size)
        scores = _knockoff_scores(sub, maps, target, lower_layout, upper_layout, seed, batch_size)
    else:
        attr = channel_attributions(
            method,
            sub,
            maps,
            target,
            lower_layout=lower_layout,
            upper_layout=upper_layout,
            n_steps=n_steps,
            smoothgrad_samples=smoothgrad_samples,
            smoothgrad_noise=smoothgrad_noise,
            gradient_shap_samples=gradient_shap_samples,
            baselines=baselines,
            seed=seed,
            batch_size=batch_size,
        )
        scores = attr.double().sum(0).cpu().numpy()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return scores, max(cpu, 0.0), max(wall, 0.0)
