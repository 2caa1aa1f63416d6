"""Concept-level faithfulness, one score for every method: ablate the concept's direction, read the class logit.

For a concept of a layer with a direction (or a subspace) in the layer's
activation space, the layer's output ``a`` is replaced by its projection

    a' = a - B^T B a          (B: k x n_features, orthonormal rows)

during a forward pass, the rest of the network runs on ``a'``, and the
concept's score is the drop of the class logit on its member images,
``drop(x) = z_c(x) - z_c(x; a -> a')``, against the same drop for random
subspaces of the same dimension (every basis is orthonormal, so every
direction has unit norm): the observed mean drop, the random mean and 95th
percentile, the p-value (1 + #{random >= observed}) / (n_random + 1) and the
ratio observed / random mean. A concept the network uses for the class drops
the logit more than a random direction does.

**Spaces** (``space``). A basis lives in one of two spaces of a layer output:

- ``"flat"``: the whole flattened output of one image, in the order of the
  activation cache's ``full`` array (:mod:`conceptscope.activations`):
  channels first, C*H*W, for maps of either layout (a channels-last output is
  permuted to (C, H, W) before flattening and back after); (T, C) token-major,
  T*C, for token layers; C for dense layers.
- ``"channel"``: the C channels, the same projection applied at every spatial
  position or token (axis 1 of channels-first maps and dense outputs, the
  last axis of channels-last maps and tokens).

The concepts of each method, and their space (helpers on plain inputs, so
that they read no result file):

- **NAPs** (:func:`nap_direction`): the centroid of a NAP's normalized members,
  row 2 (``mean``) of :attr:`conceptscope.naps.core.NapResult.stats` for the
  NAP, ``stats[rank, 2]``. Its features are the disentangled ones:
  ``channel`` space for ``mean`` and ``max`` (one feature per channel, the
  spatial mean or max of a unit) and for dense layers; ``flat`` for ``none``
  (the cache's ``full``). For ``mean_std`` the mean half and for ``min_max``
  the max half is the direction (the other half is not a location statistic
  of the unit). :data:`NAP_SPACES` lists them.
- **Coupled NMF** (:func:`nmf_direction`): column ``j`` of the layer factor
  ``O_j`` (C*H*W x d): the factorized matrix A_j is the cache's ``full`` array
  transposed (:mod:`conceptscope.nmf.jobs`), so a column is a ``flat``
  direction in the cache's order.
- **NeurFlow** neuron groups and **NAS** units (:func:`unit_basis`): channel
  indices; their subspace is spanned by the standard axes of those channels,
  and projecting it out is zeroing those channels at every position
  (``channel`` space; NeurFlow's own knock-out, Cao et al. 2025, Def. 2).

NOTE: for ``max`` (and the max half of ``min_max``) the channel direction is
projected out at every position, which removes that direction from the
spatial maximum only approximately (the maximum is not linear); for ``mean``
it is exact. The NAP centroid lives in the normalized feature space (every
feature divided by its max |a| over the split, NAP paper Eq. 2); pass the
divisors as ``scale`` to :func:`nap_direction` to get the raw-activation
centroid instead (the NAP file does not store them; they are the max |a| of
each feature over the split, from the activation cache).

The random null (``null``): ``"gaussian"`` (the default) draws a k x F
Gaussian matrix and orthonormalizes its rows (QR), which is a uniformly random
k-dimensional subspace; ``"axes"`` draws k distinct standard axes (random
channel sets, NeurFlow's random knock-out baseline, the fairer null for unit
sets: activations after a ReLU are axis-aligned and sparse). Draws come one at
a time from a ``torch.Generator`` seeded with ``seed``, on the CPU, in float64.

References
----------
.. [1] Bäuerle, Jönsson and Ropinski, "Neural Activation Patterns (NAPs):
   Visual Explainability of Learned Concepts", arXiv:2206.10611, 2022.
.. [2] Saini and Papalexakis, "Analyzing Representations inside
   Convolutional Neural Networks", arXiv:2012.12516, 2020.
.. [3] Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron
   Groups and Functional Interactions", ICLR 2025.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..activations import UnknownLayerError, channels_first, layer_layout
from ..checks import check_choice, check_int
from ..nulls import permutation_p_value
from .directions import NULLS, SPACES, _check_size, _project, orthonormalize, random_basis

__all__ = ["ablation_drop", "faithfulness"]


# --------------------------------------------------------------------------- ablation


def _resolve(model: nn.Module, layer: str) -> nn.Module:
    """The module at path ``layer``; UnknownLayerError (a ValueError) naming it, close and first paths."""
    modules = dict(model.named_modules())
    if isinstance(layer, str) and layer and layer in modules:
        return modules[layer]
    valid = [n for n in modules if n]
    close = difflib.get_close_matches(str(layer), valid, n=4, cutoff=0.5)
    err = UnknownLayerError(
        f"{type(model).__name__} has no layer {layer!r} (closest: {', '.join(close) if close else 'none'}; "
        f"module paths: {', '.join(valid[:8])}{', ...' if len(valid) > 8 else ''}; {len(valid)} in all)"
    )
    err.valid = valid
    raise err


def _model_device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _classes(class_index: int | Any, n: int) -> Tensor:
    """``class_index`` as a LongTensor (n,) on the CPU."""
    if isinstance(class_index, Tensor | np.ndarray | list | tuple) and np.ndim(class_index) > 0:
        c = torch.as_tensor(class_index).to("cpu")
        if c.is_floating_point() or c.dtype == torch.bool or c.shape != (n,):
            raise ValueError(f"class_index must be an int or n_images = {n} integers, got {c.dtype} {tuple(c.shape)}")
        if (c < 0).any():
            raise ValueError(f"class_index must be >= 0, got {c[c < 0][:5].tolist()}")
        return c.long()
    return torch.full((n,), check_int("class_index", class_index, minimum=0), dtype=torch.long)


class _Ablation:
    """The forward hook that replaces a layer's output by its projection; counts calls, checks sizes."""

    def __init__(self, layer: str, basis: Tensor, space: str, layout: str | None) -> None:
        self.layer, self.basis, self.space, self.layout = layer, basis, space, layout
        self.calls = 0
        self.shape: tuple[int, ...] | None = None

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Tensor:
        if not isinstance(output, Tensor) or not output.is_floating_point():
            raise TypeError(
                f"layer {self.layer!r} returns {type(output).__name__}, not a float tensor; ablate a submodule"
            )
        layout = layer_layout(output.shape[1:], self.layout, name=self.layer)
        self.calls += 1
        self.shape = tuple(output.shape[1:])
        if self.space == "channel":
            axis = -1 if layout in ("channels_last", "tokens") else 1
            _check_size(self.basis, output, "channel", axis % output.ndim, f"layer {self.layer!r} output")
            return _project(output, self.basis, "channel", axis)
        # flat space in the cache's `full` order: channels-last maps are flattened channels first
        x = channels_first(output, layout) if layout == "channels_last" else output
        _check_size(self.basis, x, "flat", 1, f"layer {self.layer!r} output ({layout}, flattened as {tuple(x.shape)})")
        y = _project(x, self.basis, "flat", 1)
        return y.permute(0, 2, 3, 1) if layout == "channels_last" else y


def _class_logits(
    model: nn.Module,
    images: Tensor,
    classes: Tensor,
    batch_size: int,
    hook: tuple[nn.Module, _Ablation] | None = None,
) -> Tensor:
    """Logit of ``classes[i]`` for every image, (n,) float64 on the CPU; with ``hook`` the layer is ablated.

    The model is in eval mode for the pass (every module's mode restored after), under no_grad; the hook
    is removed whatever happens, and an ablation that never ran is an error.
    """
    device = _model_device(model)
    modes = {m: m.training for m in model.modules()}
    handle = hook[0].register_forward_hook(hook[1]) if hook is not None else None
    out = []
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                z = model(images[start : start + batch_size].to(device))
                if not isinstance(z, Tensor) or z.ndim != 2:
                    raise TypeError(f"the model must return logits (n, n_classes), got {getattr(z, 'shape', type(z))}")
                c = classes[start : start + batch_size]
                if int(c.max()) >= z.shape[1]:
                    raise ValueError(f"class_index {int(c.max())} is out of range for {z.shape[1]} classes")
                out.append(z.gather(1, c.to(z.device)[:, None])[:, 0].to("cpu", torch.float64))
    finally:
        if handle is not None:
            handle.remove()
        for m, training in modes.items():
            m.train(training)
    if hook is not None and hook[1].calls == 0:
        raise RuntimeError(f"layer {hook[1].layer!r} never ran in the model's forward pass: nothing was ablated")
    return torch.cat(out)


def _check_images(images: Any) -> Tensor:
    if not isinstance(images, Tensor) or images.ndim < 1:
        raise TypeError(f"images must be a Tensor (n_images, ...), got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is empty: a concept needs at least one member image")
    return images


def ablation_drop(
    model: nn.Module,
    layer: str,
    images: Tensor,
    class_index: int | Tensor,
    basis: Any,
    space: str = "flat",
    *,
    batch_size: int,
    layout: str | None = None,
) -> Tensor:
    """Drop of the class logit when a direction (or subspace) is projected out of one layer's output.

    A forward hook on ``layer`` replaces its output ``a`` by ``a - B^T B a``
    (:func:`project_out_subspace`, in ``space``); every later module runs on
    the ablated activations. The drop is the clean logit minus the ablated one.

    Parameters
    ----------
    model : nn.Module
        Returns logits (n, n_classes). Run in eval mode under ``no_grad`` on
        the device of its first parameter (or buffer; CPU without any); each
        module's train/eval mode is restored and the hook removed afterwards,
        also on error.
    layer : str
        Module path (as :meth:`torch.nn.Module.get_submodule`), not ``""``.
        A module called several times per forward is ablated at every call.
    images : Tensor, shape (n_images, ...)
        Model inputs, dimension 0 indexes images; moved to the model's device
        one batch at a time.
    class_index : int, or ints (Tensor, array, list), shape (n_images,)
        The class whose logit is read, one for all images or one per image.
    basis : array or Tensor, shape (n_features,) or (k, n_features)
        A direction or a set of k linearly independent directions; only the
        span counts (:func:`orthonormalize`). ``n_features`` is the layer's
        feature count in ``space`` (C*H*W or T*C for ``flat``, C for
        ``channel``; see the module docstring for the flattening order).
    space : ``"flat"`` or ``"channel"``
    batch_size : int
        Images per forward pass; the result does not depend on it beyond
        float rounding.
    layout : str, optional
        The layer output's layout (:data:`conceptscope.activations.LAYOUTS`);
        detected from its shape if not given
        (:func:`conceptscope.activations.layer_layout`, which raises for
        non-square maps: pass it then).

    Returns
    -------
    Tensor, shape (n_images,), float64 on the CPU
        clean logit - ablated logit of ``class_index`` per image.

    Raises
    ------
    ValueError
        :class:`~conceptscope.activations.UnknownLayerError` if the model has
        no module ``layer`` (naming it, the closest and the first module
        paths); if ``basis`` has zero norm, dependent rows, or a feature
        size other than the layer's in ``space``; a bad ``space``,
        ``batch_size`` or ``class_index``; no images.
    TypeError
        If the layer's output is not a float tensor or the model does not
        return (n, n_classes) logits.
    RuntimeError
        If the layer never ran during the forward pass.
    """
    module, images, classes, B, batch_size = _prepare(model, layer, images, class_index, basis, space, batch_size)
    clean = _class_logits(model, images, classes, batch_size)
    ablated = _class_logits(model, images, classes, batch_size, (module, _Ablation(layer, B, space, layout)))
    return clean - ablated


def _prepare(
    model: nn.Module, layer: str, images: Any, class_index: Any, basis: Any, space: str, batch_size: Any
) -> tuple[nn.Module, Tensor, Tensor, Tensor, int]:
    """The checked arguments shared by :func:`ablation_drop` and :func:`faithfulness`."""
    check_choice("space", space, SPACES)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    module = _resolve(model, layer)
    images = _check_images(images)
    classes = _classes(class_index, len(images))
    B = orthonormalize(torch.as_tensor(basis).to("cpu"))
    return module, images, classes, B, batch_size


def _quantile(x: Tensor, q: float) -> float:
    return float(np.quantile(x.numpy(), q)) if len(x) else float("nan")


def faithfulness(
    model: nn.Module,
    layer: str,
    images: Tensor,
    class_index: int | Tensor,
    basis: Any,
    space: str = "flat",
    *,
    n_random: int,
    seed: int,
    batch_size: int,
    layout: str | None = None,
    null: str = "gaussian",
    progress: Callable[[int], None] | None = None,
    random_bases: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Faithfulness of one concept: its mean logit drop on its member images against random subspaces.

    The clean logits are computed once; then one ablated pass for the
    concept's basis and one for each of ``n_random`` random bases of the same
    dimension k (orthonormal, so of the same norm), drawn one at a time by
    :func:`random_basis` from a ``torch.Generator`` seeded with ``seed``, or
    given (``random_bases``, e.g. the directions of random image sets: a null
    drawn from the data rather than from the sphere).

    Parameters
    ----------
    model, layer, images, class_index, basis, space, batch_size, layout
        As in :func:`ablation_drop`; ``images`` are the concept's member
        images and ``class_index`` the class whose logit it should carry.
    n_random : int
        Random bases (>= 0; 0 gives NaN random statistics and p-value).
    seed : int
        Seed of the random bases: equal seeds give equal results.
    null : ``"gaussian"`` or ``"axes"``
        Random subspaces (:data:`NULLS`): Gaussian, orthonormalized; or k
        random distinct standard axes (for unit sets).
    progress : callable, optional
        Called with the number of random bases done after each.
    random_bases : sequence of array or Tensor (k, n_features), optional
        The null's bases, each orthonormalized; then ``n_random`` must be their
        number, ``seed`` is not used and ``null`` is reported as ``"given"``.

    Returns
    -------
    dict
        ``observed`` (mean drop of the concept's ablation over the images),
        ``random_mean``, ``random_q95`` (95th percentile, numpy's linear
        interpolation) of the random bases' mean drops, ``p_value`` =
        (1 + #{random >= observed}) / (n_random + 1), ``ratio`` = observed /
        random_mean (NaN when random_mean is 0 or NaN), ``drops`` (Tensor
        (n_images,), float64, CPU: the concept's drop per image), ``random``
        (Tensor (n_random,): each random basis's mean drop), and the
        parameters ``layer``, ``space``, ``null``, ``dimension`` (k),
        ``n_features``, ``n_images``, ``n_random``, ``seed``.

    Raises
    ------
    ValueError, TypeError, RuntimeError
        As :func:`ablation_drop`; a bad ``n_random``, ``seed`` or ``null``.
    """
    n_random = check_int("n_random", n_random, minimum=0)
    seed = check_int("seed", seed)
    check_choice("null", null, NULLS)
    if random_bases is not None:
        if len(random_bases) != n_random:
            raise ValueError(f"n_random is {n_random} but {len(random_bases)} random_bases were given")
        null = "given"
    module, images, classes, B, batch_size = _prepare(model, layer, images, class_index, basis, space, batch_size)

    def mean_drop(basis: Tensor) -> Tensor:
        ablated = _class_logits(model, images, classes, batch_size, (module, _Ablation(layer, basis, space, layout)))
        return clean - ablated

    clean = _class_logits(model, images, classes, batch_size)
    drops = mean_drop(B)
    observed = float(drops.mean())
    generator = torch.Generator().manual_seed(seed)
    random = torch.empty(n_random, dtype=torch.float64)
    for i in range(n_random):
        if random_bases is None:
            R = random_basis(len(B), B.shape[1], generator, null)
        else:
            R = orthonormalize(torch.as_tensor(random_bases[i]).to("cpu"))
            if R.shape != B.shape:
                raise ValueError(f"random_bases[{i}] has shape {tuple(R.shape)}, the concept's basis {tuple(B.shape)}")
        random[i] = mean_drop(R).mean()
        if progress is not None:
            progress(i + 1)
    random_mean = float(random.mean()) if n_random else float("nan")
    ratio = observed / random_mean if random_mean != 0 and np.isfinite(random_mean) else float("nan")
    p_value = permutation_p_value(observed, random)
    return {
        "observed": observed,
        "random_mean": random_mean,
        "random_q95": _quantile(random, 0.95),
        "p_value": p_value,
        "ratio": ratio,
        "drops": drops,
        "random": random,
        "layer": layer,
        "space": space,
        "null": null,
        "dimension": len(B),
        "n_features": int(B.shape[1]),
        "n_images": len(images),
        "n_random": n_random,
        "seed": seed,
    }
