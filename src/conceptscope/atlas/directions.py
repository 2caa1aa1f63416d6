"""Concept directions and their removal from a layer's activations (the projections behind :mod:`.faithfulness`).

A concept is a direction (NAP centroid, NMF column of O_j) or a set of unit axes
(NAS unit, NeurFlow group) in one of two spaces of a layer's output:
``"flat"``, the flattened feature vector in the activation cache's order
(C*H*W for channels-first maps), or ``"channel"``, the channel axis at every
position. :func:`project_out_subspace` removes the span of an orthonormal basis
B (k x n_features): a' = a - B^T B a; for unit axes this zeroes those channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..checks import check_choice, check_int
from ..naps.settings import DISENTANGLEMENTS

__all__ = [
    "NAP_SPACES",
    "NULLS",
    "SPACES",
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
