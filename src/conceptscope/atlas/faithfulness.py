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
from ..naps.settings import DISENTANGLEMENTS

__all__ = [
    "NAP_SPACES",
    "NULLS",
    "SPACES",
    "ablation_drop",
    "faithfulness",
    "nap_direction",
    "nmf_direction",
    "orthonormalize",
    "project_out",
    "project_out_subspace",
    "random_basis",
    "unit_basis",
]

SPACES = ("flat", "channel")
NULLS = ("gaussian", "axes")
# the space of a NAP centroid, per disentanglement (naps.core.disentangle); dense layers are always "channel"
NAP_SPACES = {"none": "flat", "max": "channel", "min_max": "channel", "mean": "channel", "mean_std": "channel"}
# the half of a paired disentanglement taken as the direction: [min | max] -> max, [mean | std] -> mean
_NAP_HALF = {"min_max": 1, "mean_std": 0}
_ORTHO_TOL = 1e-5  # max |B B^T - I| of an orthonormal basis (float32 rows pass, a non-orthonormal one fails)
_RANK_TOL = 1e-10  # |R_ii| / max |R_jj| below this: the basis is rank deficient


# --------------------------------------------------------------------------- projections


def _as_tensor(x: Any, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must be a real array, got dtype {t.dtype}")
    return t


def _unit(direction: Any, name: str = "direction") -> Tensor:
    """``direction`` (1-D) divided by its norm, float64 on its device; ValueError for zero or non-finite norm."""
    d = _as_tensor(direction, name).to(torch.float64)
    if d.ndim != 1 or d.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(d.shape)}")
    norm = torch.linalg.vector_norm(d)
    if not torch.isfinite(norm):
        raise ValueError(f"{name} has non-finite entries")
    if norm == 0:
        raise ValueError(f"{name} has zero norm: it defines no direction")
    return d / norm


def _channel_axis(acts: Tensor, channel_axis: int) -> int:
    axis = check_int("channel_axis", channel_axis)
    pos = axis + acts.ndim if axis < 0 else axis
    if not 1 <= pos < acts.ndim:
        raise ValueError(f"channel_axis must name a feature axis of acts {tuple(acts.shape)} (not 0), got {axis}")
    return pos


def _check_acts(acts: Any) -> Tensor:
    if not isinstance(acts, Tensor) or not acts.is_floating_point():
        raise TypeError(f"acts must be a floating-point Tensor, got {type(acts).__name__}")
    if acts.ndim < 2:
        raise ValueError(f"acts must be (n_samples, *feature_shape), got shape {tuple(acts.shape)}")
    return acts


def _project(acts: Tensor, basis: Tensor, space: str, axis: int) -> Tensor:
    """``acts`` minus its component in the row space of the orthonormal ``basis`` (k, F); trusts its inputs.

    Computed in at least float32 (float64 stays float64), returned in ``acts``' dtype.
    """
    work = torch.promote_types(acts.dtype, torch.float32)
    B = basis.to(device=acts.device, dtype=work)  # (k, F)
    x = acts.to(work)
    if space == "flat":
        flat = x.reshape(len(x), -1)  # (n, F)
        return (flat - (flat @ B.T) @ B).reshape(acts.shape).to(acts.dtype)
    moved = x.movedim(axis, -1)  # (n, ..., C)
    out = moved - (moved @ B.T) @ B
    return out.movedim(-1, axis).to(acts.dtype)


def _feature_size(acts: Tensor, space: str, axis: int) -> int:
    return int(np.prod(acts.shape[1:])) if space == "flat" else int(acts.shape[axis])


def _check_size(basis: Tensor, acts: Tensor, space: str, axis: int, what: str = "acts") -> None:
    n = _feature_size(acts, space, axis)
    if basis.shape[-1] != n:
        detail = f"{n} = prod{tuple(acts.shape[1:])}" if space == "flat" else f"{n} channels on axis {axis}"
        raise ValueError(
            f"the direction has {basis.shape[-1]} features but {what} {tuple(acts.shape)} has {detail} "
            f"in {space!r} space"
        )


def project_out(acts: Tensor, direction: Any, space: str = "flat", *, channel_axis: int = 1) -> Tensor:
    """Remove the component of every sample along a direction: a - <a, d> d with d = direction / ||direction||.

    Parameters
    ----------
    acts : Tensor, shape (n_samples, *feature_shape), floating point
        Dimension 0 indexes samples. Any device; the result is on the same
        device with the same dtype (computed in at least float32).
    direction : array or Tensor, shape (n_features,)
        Any non-zero vector; only its direction counts. ``n_features`` is
        ``prod(feature_shape)`` for ``space="flat"`` and the size of
        ``channel_axis`` for ``space="channel"``.
    space : ``"flat"`` or ``"channel"``
        ``"flat"``: ``d`` is a direction of the flattened feature space (row-major
        order of ``feature_shape``). ``"channel"``: ``d`` is a direction of the
        channel axis, projected out at every other index (every spatial
        position or token) separately.
    channel_axis : int
        The channel axis of ``acts`` for ``space="channel"`` (1 for (n, C, H, W)
        and (n, C); -1 for (n, H, W, C) and tokens (n, T, C)); never 0.

    Returns
    -------
    Tensor, shape and dtype of ``acts``
        Orthogonal to ``d`` (at every position in ``channel`` space); for
        every v orthogonal to ``d``, <result, v> = <acts, v>.

    Raises
    ------
    ValueError
        If ``direction`` has zero norm, non-finite entries, or a size other
        than the feature size of ``acts`` in ``space``; if ``space`` is unknown.
    """
    return project_out_subspace(acts, _unit(direction)[None], space, channel_axis=channel_axis)


def project_out_subspace(acts: Tensor, basis: Any, space: str = "flat", *, channel_axis: int = 1) -> Tensor:
    """Remove the component of every sample in the span of an orthonormal basis: a - B^T B a.

    The k-axis case ``basis = unit_basis(units, C)`` in ``channel`` space zeroes
    the channels ``units`` at every position.

    Parameters
    ----------
    acts : Tensor, shape (n_samples, *feature_shape), floating point
        As in :func:`project_out`.
    basis : array or Tensor, shape (k, n_features)
        Orthonormal rows (max |B B^T - I| <= 1e-5); :func:`orthonormalize`
        turns any full-rank set of vectors into one with the same span.
    space, channel_axis
        As in :func:`project_out`.

    Returns
    -------
    Tensor, shape and dtype of ``acts``, on its device

    Raises
    ------
    ValueError
        If ``basis`` is not 2-D with orthonormal rows, or its feature size
        differs from that of ``acts`` in ``space``; if ``space`` is unknown.
    """
    check_choice("space", space, SPACES)
    acts = _check_acts(acts)
    axis = _channel_axis(acts, channel_axis) if space == "channel" else 1
    B = _as_tensor(basis, "basis").to(torch.float64)
    if B.ndim != 2 or B.shape[0] == 0:
        raise ValueError(f"basis must be (k, n_features) with k >= 1, got shape {tuple(B.shape)}")
    gram_err = (B @ B.T - torch.eye(len(B), dtype=B.dtype, device=B.device)).abs().max()
    if not gram_err <= _ORTHO_TOL:
        raise ValueError(
            f"basis rows are not orthonormal (max |B B^T - I| = {float(gram_err):.3g}); use orthonormalize(basis)"
        )
    _check_size(B, acts, space, axis)
    return _project(acts, B, space, axis)


def orthonormalize(basis: Any) -> Tensor:
    """Orthonormal rows with the same span as ``basis`` (QR in float64).

    Parameters
    ----------
    basis : array or Tensor, shape (k, n_features) or (n_features,)
        k <= n_features vectors (a 1-D input is one direction).

    Returns
    -------
    Tensor, shape (k, n_features), float64, on the device of ``basis``

    Raises
    ------
    ValueError
        If a vector has zero norm or the vectors are linearly dependent
        (|R_ii| < 1e-10 max |R_jj|), if entries are not finite, or if
        k > n_features.
    """
    B = _as_tensor(basis, "basis").to(torch.float64)
    if B.ndim == 1:
        return _unit(B)[None]
    if B.ndim != 2 or B.shape[0] == 0 or B.shape[1] == 0:
        raise ValueError(f"basis must be (k, n_features) with k >= 1, got shape {tuple(B.shape)}")
    if B.shape[0] > B.shape[1]:
        raise ValueError(f"basis has {B.shape[0]} vectors of {B.shape[1]} features: at most {B.shape[1]} independent")
    if not torch.isfinite(B).all():
        raise ValueError("basis has non-finite entries")
    norms = torch.linalg.vector_norm(B, dim=1)
    if (norms == 0).any():
        raise ValueError(
            f"basis rows {torch.nonzero(norms == 0).flatten().tolist()} have zero norm: they define no direction"
        )
    Q, R = torch.linalg.qr((B / norms[:, None]).T)  # Q (F, k); unit rows, so R's scale is 1
    diag = R.diagonal().abs()
    if (diag < _RANK_TOL * diag.max()).any():
        raise ValueError(f"basis rows are linearly dependent (rank < {len(B)}): their span has a lower dimension")
    return Q.T.contiguous()


def random_basis(k: int, n_features: int, generator: torch.Generator, null: str = "gaussian") -> Tensor:
    """One random orthonormal basis (k, n_features), float64 on the CPU, drawn from ``generator``.

    ``null="gaussian"``: a Gaussian k x n_features matrix with orthonormalized
    rows (a uniformly random k-dimensional subspace); ``"axes"``: k distinct
    standard axes, uniformly at random.
    """
    check_choice("null", null, NULLS)
    k = check_int("k", k, minimum=1)
    n_features = check_int("n_features", n_features, minimum=k)
    if null == "axes":
        axes = torch.randperm(n_features, generator=generator)[:k]
        return torch.eye(n_features, dtype=torch.float64)[axes]
    G = torch.randn(n_features, k, generator=generator, dtype=torch.float64)
    return torch.linalg.qr(G).Q.T.contiguous()


# --------------------------------------------------------------------------- concept -> basis


def nap_direction(centroid: Any, *, method: str = "mean", scale: Any = None) -> Tensor:
    """The direction of a NAP: the centroid of its normalized members, as a unit vector.

    Parameters
    ----------
    centroid : array or Tensor, shape (n_features,)
        Mean of the NAP members' normalized features,
        ``NapResult.stats[rank, 2]`` (:data:`conceptscope.naps.core.STATISTIC_NAMES`
        index 2 is ``mean``). ``n_features`` is C for ``mean``, ``max`` and
        dense layers, 2C for ``min_max`` and ``mean_std``, C*H*W (or T*C)
        for ``none``.
    method : one of :data:`~conceptscope.naps.settings.DISENTANGLEMENTS`
        The NAP's disentanglement; its space is ``NAP_SPACES[method]``. For
        the pairs, the direction is the ``max`` half of ``min_max`` and the
        ``mean`` half of ``mean_std``.
    scale : array or Tensor, shape (n_features,), optional
        Per-feature divisors of the normalization (max |a| over the split);
        when given the centroid is multiplied by them, giving the
        raw-activation centroid of the members.

    Returns
    -------
    Tensor, shape (C,) or (n_features,) for ``none``, float64 unit vector on the CPU

    Raises
    ------
    ValueError
        If the (scaled) centroid, or the half used, has zero norm (the
        members are all zero there); for an unknown method, a centroid that
        is not 1-D, an odd length for a paired method, or a ``scale`` of
        another shape.
    """
    check_choice("method", method, DISENTANGLEMENTS)
    c = _as_tensor(centroid, "centroid").to(device="cpu", dtype=torch.float64)
    if c.ndim != 1:
        raise ValueError(f"centroid must be 1-D (n_features,), got shape {tuple(c.shape)}")
    if scale is not None:
        s = _as_tensor(scale, "scale").to(device="cpu", dtype=torch.float64)
        if s.shape != c.shape:
            raise ValueError(f"scale must have the centroid's shape {tuple(c.shape)}, got {tuple(s.shape)}")
        c = c * s
    if method in _NAP_HALF:
        if len(c) % 2:
            raise ValueError(f"a {method} centroid has 2C features, got {len(c)}")
        half = len(c) // 2
        c = c[half:] if _NAP_HALF[method] else c[:half]
    return _unit(c, f"NAP centroid ({method})")


def nmf_direction(column: Any) -> Tensor:
    """The direction of a coupled-NMF factor in one layer: column j of O_j, as a unit vector.

    Parameters
    ----------
    column : array or Tensor, shape (C*H*W,) (or (T*C,) / (C,))
        ``O[j][:, component]`` of a coupled (or single-layer) fit: rows in the
        order of the activation cache's ``full`` array, so a ``flat``
        direction. Only its direction counts (the solvers' block scaling
        changes its norm, not its direction).

    Returns
    -------
    Tensor, shape (n_features,), float64 unit vector on the CPU

    Raises
    ------
    ValueError
        If the column is not 1-D, has zero norm (a factor without weight in
        the layer) or non-finite entries.
    """
    return _unit(_as_tensor(column, "column").to("cpu"), "NMF factor column")


def unit_basis(units: Sequence[int] | Any, n_channels: int) -> Tensor:
    """The standard axes of a set of channels (a NeurFlow neuron group, a NAS unit): rows e_u, in order.

    Projecting their span out in ``channel`` space zeroes those channels at
    every position.

    Parameters
    ----------
    units : sequence of int, length k >= 1
        Channel indices in [0, n_channels), distinct.
    n_channels : int
        C, the layer's channel count.

    Returns
    -------
    Tensor, shape (k, n_channels), float64 on the CPU

    Raises
    ------
    ValueError
        If ``units`` is empty, repeats a channel or has one outside [0, n_channels).
    """
    n_channels = check_int("n_channels", n_channels, minimum=1)
    u = [check_int("units[i]", x) for x in np.asarray(units).reshape(-1).tolist()]
    if not u:
        raise ValueError("units must name at least one channel, got none")
    bad = [x for x in u if not 0 <= x < n_channels]
    if bad:
        raise ValueError(f"units {bad} are outside [0, {n_channels})")
    if len(set(u)) != len(u):
        raise ValueError(f"units must be distinct, got {u}")
    return torch.eye(n_channels, dtype=torch.float64)[u]


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
) -> dict[str, Any]:
    """Faithfulness of one concept: its mean logit drop on its member images against random subspaces.

    The clean logits are computed once; then one ablated pass for the
    concept's basis and one for each of ``n_random`` random bases of the same
    dimension k (orthonormal, so of the same norm), drawn one at a time by
    :func:`random_basis` from a ``torch.Generator`` seeded with ``seed``.

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
        random[i] = mean_drop(random_basis(len(B), B.shape[1], generator, null)).mean()
        if progress is not None:
            progress(i + 1)
    random_mean = float(random.mean()) if n_random else float("nan")
    ratio = observed / random_mean if random_mean != 0 and np.isfinite(random_mean) else float("nan")
    p_value = float((1 + (random >= observed).sum()) / (n_random + 1)) if n_random else float("nan")
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
