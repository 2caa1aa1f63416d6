"""NeurFlow fidelity of core neurons: accuracy when masking or retaining only them (Cao et al., ICLR 2025).

Paper Sect. 5.1, Fig. 5 (tau in {4, 8, 16}) and App. Fig. 16-17 (tau 20, 24,
and core sets extended by 50% random non-core neurons): the class's images are
classified with, at one circuit block ("single") or at every circuit block from
the top one below the logit down to it ("multi"),

- ``mask``: the core neurons' channels zeroed (at every spatial position or
  token of the block's layout), or
- ``retain``: every other channel of the block zeroed,

and the accuracy (fraction predicted as the class) is compared with that of as
many random non-core neurons per block (``random``), and of the core set plus
``ceil(extend * |core|)`` random non-core neurons (``extended``).
:func:`masked_accuracy` evaluates one such masking; :func:`fidelity_table`
writes the rows of the fig5/fig16/fig17 tables (:data:`FIDELITY_COLUMNS`).

The channels are zeroed by forward hooks on the blocks, as in
:func:`conceptscope.neurflow.masking_effect`: axis 1 of channels-first maps and
vectors, the last axis of channels-last maps and tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..checks import check_choice, check_int, check_number
from .accumulate import _EvalNoParamGrad
from .blocks import _resolve_layout

__all__ = ["FIDELITY_COLUMNS", "MODES", "fidelity_table", "masked_accuracy"]

MODES = ("mask", "retain")
SCOPES = ("single", "multi")
SETS = ("core", "random", "extended")
# the columns of the fig5/fig16/fig17 tables, in order; fidelity_table returns all but ``model``
FIDELITY_COLUMNS = (
    "model",
    "class_index",
    "tau",
    "scope",
    "layer",
    "mode",
    "set",
    "draw",
    "n_neurons",
    "accuracy",
    "relative_accuracy",
    "base_accuracy",
    "n_images",
    "other_predicted",
)


def _check_images(images: Any) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or len(images) == 0:
        raise ValueError(
            f"images must be a non-empty batch tensor (n, C, H, W), got {getattr(images, 'shape', images)!r}"
        )
    return images


class _Masker:
    """Forward hooks on some layers of a model that zero chosen channels; one instance for many evaluations.

    Entering probes the layers (one forward pass of the first image) for their
    layouts and unit counts, then registers one hook per layer; ``keep[layer]``
    (a 0/1 tensor per batch row and channel, absent: nothing zeroed) is read by the hook at each
    forward pass. The model runs in eval mode with parameters not requiring
    grad; everything is restored on exit.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        images: torch.Tensor,
        layouts: Mapping[str, str] | None,
        modules: Mapping[str, nn.Module] | None = None,
        n_class: int | None = None,
    ) -> None:
        modules = dict(model.named_modules()) | dict(modules or {})
        self.n_class = len(images) if n_class is None else int(n_class)
        unknown = [n for n in layers if not n or n not in modules]
        if unknown:
            raise ValueError(f"model has no layer(s) {unknown!r}; valid names: {[k for k in modules if k]}")
        self.model = model
        self.modules = {n: modules[n] for n in layers}
        self.images = images
        self.layouts = dict(layouts or {})
        params = next(model.parameters(), None)
        self.device = params.device if params is not None else images.device
        self.keep: dict[str, torch.Tensor] = {}
        self.last: dict[str, bool] = {}  # whether the channels are on the last axis (channels-last maps, tokens)
        self.n_units: dict[str, int] = {}
        self._handles: list[Any] = []
        self._ctx = _EvalNoParamGrad(model)

    def __enter__(self) -> _Masker:
        self._ctx.__enter__()
        try:
            self._probe()
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._ctx.__exit__(*exc)

    def _probe(self) -> None:
        shapes: dict[str, list[tuple[int, ...]]] = {n: [] for n in self.modules}

        def record(name: str):
            def hook(_m: nn.Module, _a: Any, out: Any) -> None:
                if not isinstance(out, torch.Tensor) or out.ndim < 2:
                    raise ValueError(f"layer {name!r} does not return a batch tensor, got {type(out).__name__}")
                shapes[name].append(tuple(out.shape[1:]))

            return hook

        handles = [m.register_forward_hook(record(n)) for n, m in self.modules.items()]
        try:
            with torch.no_grad():
                self.model(self.images[:1].clone().to(self.device))
        finally:
            for h in handles:
                h.remove()
        for name, seen in shapes.items():
            if len(seen) != 1:
                raise ValueError(
                    f"layer {name!r} is called {len(seen)} times in a forward pass; its channels are ambiguous"
                    if seen
                    else f"layer {name!r} is not called in the forward pass of the model"
                )
            layout = _resolve_layout(seen[0], self.layouts.get(name), name=f"layer {name}", param="layouts")
            self.last[name] = layout in ("channels_last", "tokens")
            self.n_units[name] = seen[0][-1] if self.last[name] else seen[0][0]

    def _hook(self, name: str):
        def hook(_m: nn.Module, _a: Any, out: torch.Tensor) -> torch.Tensor:
            keep = self.keep.get(name)  # (rows, C): 1 keeps a channel, 0 zeroes it, per row of the batch
            if keep is None:
                return out
            keep = keep.to(device=out.device, dtype=out.dtype)
            shape = [len(out)] + [1] * (out.ndim - 1)
            shape[-1 if self.last[name] else 1] = keep.shape[1]
            return out * keep.view(shape)

        return hook

    def check_channels(self, name: str, channels: Any, what: str) -> np.ndarray:
        """Distinct channel indices of layer ``name`` in range, as an int64 array; ``ValueError`` naming it."""
        arr = np.asarray(channels.detach().cpu() if isinstance(channels, torch.Tensor) else channels)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{what} of layer {name!r} must be a 1-D list of channel indices, got {arr.tolist()}")
        n = self.n_units[name]
        bad = arr[(arr < 0) | (arr >= n)]
        if bad.size:
            raise ValueError(f"{what} of layer {name!r} must be channel indices in [0, {n}), got {bad.tolist()}")
        if len(np.unique(arr)) != len(arr):
            raise ValueError(f"{what} of layer {name!r} repeat a channel: {arr.tolist()}")
        return arr.astype(np.int64)

    def accuracy(self, sets: Mapping[str, np.ndarray], mode: str, class_index: int, batch_size: int) -> float:
        """Fraction of the images predicted as ``class_index`` with ``sets`` masked (or retained) per layer."""
        return self.accuracies([sets], mode, class_index, batch_size)[0]

    def accuracies(
        self, sets: Sequence[Mapping[str, np.ndarray]], mode: str, class_index: int, batch_size: int
    ) -> list[float]:
        """:meth:`accuracy` of several maskings at once (:meth:`rates` without the other classes' share)."""
        return self.rates(sets, mode, class_index, batch_size)[0]

    def rates(
        self, sets: Sequence[Mapping[str, np.ndarray]], mode: str, class_index: int, batch_size: int
    ) -> tuple[list[float], list[float]]:
        """Per masking, the share of the class's images (the first ``n_class``) predicted as the class, and the
        share of the other images (the rest; NaN when there are none) predicted as it. Rows (masking, image)
        share the forward passes, each row zeroing its own channels (a 0/1 mask per row on every hooked layer)."""
        n_img = len(self.images)
        keep: dict[str, torch.Tensor] = {}
        for name in {n for one in sets for n in one}:
            mask = torch.ones(len(sets), self.n_units[name])
            for i, one in enumerate(sets):
                if name in one:
                    chosen = torch.as_tensor(one[name], dtype=torch.long)
                    if mode == "mask":
                        mask[i, chosen] = 0.0
                    else:
                        mask[i] = 0.0
                        mask[i, chosen] = 1.0
            keep[name] = mask
        hits = np.zeros((len(sets), n_img), dtype=bool)
        rows = len(sets) * n_img
        try:
            with torch.no_grad():
                for r0 in range(0, rows, batch_size):
                    r = torch.arange(r0, min(r0 + batch_size, rows))
                    which, image = r // n_img, r % n_img
                    self.keep = {name: m[which] for name, m in keep.items()}
                    logits = self.model(self.images[image].clone().to(self.device))
                    hits[which.numpy(), image.numpy()] = (logits.argmax(1) == class_index).cpu().numpy()
        finally:
            self.keep = {}
        own, other = hits[:, : self.n_class], hits[:, self.n_class :]
        others = other.mean(1) if other.shape[1] else np.full(len(sets), np.nan)
        return own.mean(1).tolist(), others.tolist()


def masked_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: Sequence[int] | np.ndarray | torch.Tensor | None,
    class_index: int,
    channels: Mapping[str, Sequence[int]],
    *,
    mode: str,
    layouts: Mapping[str, str] | None = None,
    batch_size: int = 256,
) -> float:
    """Accuracy on a class's images with channels of some layers zeroed (``mask``) or kept alone (``retain``).

    The accuracy is the fraction of the images labelled ``class_index`` (all
    of them when ``labels`` is None) that the model predicts as
    ``class_index`` (argmax of its output; ties: the lower class) while, at
    each layer of ``channels``, ``mask`` zeroes the listed channels and
    ``retain`` zeroes every other channel of the layer, at every spatial
    position or token of its layout (forward hooks). An empty mapping gives the
    unmasked accuracy. The model runs in eval mode (its modes and
    ``requires_grad`` flags are restored); ``images`` are not modified.

    Parameters
    ----------
    model : nn.Module
        A classifier returning (n, n_classes) scores.
    images : Tensor, shape (n, C, H, W)
        Model-ready images (dimension 0: images); moved to the model's device per batch.
    labels : array-like of int, shape (n,), or None
        The images' labels; images labelled otherwise are left out. None: every
        image is an image of the class.
    class_index : int
    channels : mapping str -> sequence of int
        Module path (as in ``model.named_modules()``) -> distinct channel indices.
    mode : str
        ``mask`` or ``retain`` (:data:`MODES`).
    layouts : mapping str -> str, optional
        Layouts of the layers (:data:`conceptscope.activations.LAYOUTS`),
        detected from their output shapes when not given.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        For an unknown layer, a channel out of range or repeated (naming the
        layer), labels of another length, or no image labelled ``class_index``.
    """
    check_choice("mode", mode, MODES)
    class_index = check_int("class_index", class_index, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    images = _check_images(images)
    if not isinstance(channels, Mapping):
        raise ValueError(f"channels must map layer names to channel indices, got {type(channels).__name__}")
    if labels is not None:
        lab = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
        if len(lab) != len(images):
            raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(lab)}")
        pick = np.flatnonzero(lab == class_index)
        if pick.size == 0:
            raise ValueError(f"no image is labelled class_index {class_index}; pass the class's images")
        if pick.size < len(images):
            images = images[torch.as_tensor(pick, device=images.device)]
    with _Masker(model, list(channels), images, layouts) as masker:
        sets = {name: masker.check_channels(name, c, "channels") for name, c in channels.items()}
        return masker.accuracy(sets, mode, class_index, batch_size)


def _n_extra(extend: float, k: int) -> int:
    """``ceil(extend * k)``, the product rounded first so that e.g. 0.1 * 30 gives 3, not 4."""
    return math.ceil(round(extend * k, 9))


def _draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct members of ``pool``, uniformly, sorted."""
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)


def fidelity_table(
    model: nn.Module,
    images: torch.Tensor,
    class_index: int,
    core: Mapping[int, Mapping[str, Sequence[int]]],
    layers: Sequence[str],
    *,
    n_random: int = 10,
    extend: float = 0.5,
    seed: int = 0,
    layouts: Mapping[str, str] | None = None,
    batch_size: int = 256,
    modules: Mapping[str, nn.Module] | None = None,
    others: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Accuracy of a class's images when masking or retaining only core neurons, against random ones (Fig. 5).

    For each tau (increasing), each layer ``l`` of ``layers`` (top first), each
    scope (``single``: only ``l``; ``multi``: every layer of ``layers`` from the
    first down to ``l``; for the first layer the two coincide, the ``multi``
    rows repeat the ``single`` ones), each mode (``mask``, ``retain``;
    :func:`masked_accuracy` on all ``images``, taken as the class's images) and
    each set:

    - ``core`` (draw -1): the core channels of every layer in the scope;
    - ``random`` (draws 0..n_random-1): per layer, as many channels as its core
      set, drawn uniformly without replacement from its non-core channels;
    - ``extended`` (draws 0..n_random-1): per layer, the core channels plus
      ``ceil(extend * |core|)`` random non-core channels.

    The random sets are drawn with ``numpy.random.default_rng(seed)`` in the
    loop order above (tau, layer, scope, set, draw, then the scope's layers
    top first); a draw is used for both modes, so mask and retain rows of the
    same draw see the same channels. The table is thus reproducible. One set
    of hooks serves every evaluation.

    Parameters
    ----------
    model : nn.Module
        A classifier returning (n, n_classes) scores.
    images : Tensor, shape (n, C, H, W)
        Model-ready images of the class (dimension 0: images); not modified.
    class_index : int
    core : mapping int -> mapping str -> sequence of int
        tau -> layer -> its core channels (distinct); every layer of ``layers``
        must be present (other layers are ignored).
    layers : sequence of str
        The circuit blocks below the logit, top first, module paths.
    n_random : int
        Random draws per (tau, layer, scope) for the random and extended sets.
    extend : float
        Extra random neurons of the extended set, as a fraction of the core set, >= 0.
    seed : int
    layouts : mapping str -> str, optional
        As in :func:`masked_accuracy`.
    batch_size : int
        Images per forward pass.
    modules : mapping str -> nn.Module, optional
        The modules whose outputs are the layers, when ``model`` is not the whole classifier: e.g. a model
        that starts from the stored output of the bottom block (an ``nn.Identity`` standing for it, then the
        sub-network up to the logits; :class:`conceptscope.neurflow.BlockChain`), so that each evaluation runs
        only the blocks above it. ``images`` are then that model's inputs.
    others : Tensor, optional
        Inputs of other classes' images (like ``images``): the column ``other_predicted`` is the share of
        them predicted as the class under the same masking (NaN without them). Retaining only a class's core
        neurons can make the model predict the class for every input; then a high accuracy on the class's
        images says nothing about the core neurons, and this column shows it.

    Returns
    -------
    DataFrame
        The columns :data:`FIDELITY_COLUMNS` but ``model`` (the caller adds it):
        ``class_index, tau, scope, layer, mode, set, draw, n_neurons`` (channels
        masked or retained over the scope's layers), ``accuracy``,
        ``relative_accuracy`` (accuracy / base_accuracy, NaN when that is 0),
        ``base_accuracy`` (unmasked) and ``n_images``.

    Raises
    ------
    ValueError
        For bad arguments, a layer missing from a core set, a channel out of
        range, or a layer with fewer non-core channels than a random or
        extended set needs (naming the layer, tau and the counts).
    """
    class_index = check_int("class_index", class_index, minimum=0)
    n_random = check_int("n_random", n_random, minimum=1)
    extend = check_number("extend", extend, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    images = _check_images(images)
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty sequence of module names, got {layers!r}")
    layers = [str(n) for n in layers]
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must be unique, got {layers!r}")
    if not isinstance(core, Mapping) or not core:
        raise ValueError(f"core must map tau to per-layer core channels, got {core!r}")
    taus = sorted(check_int("tau (a key of core)", t, minimum=1) for t in core)
    if len(set(taus)) != len(taus):
        raise ValueError(f"core has repeated tau keys: {list(core)}")
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    n_class = len(images)
    if others is not None and len(others):
        images = torch.cat([images, others.to(images.device)])
    with _Masker(model, layers, images, layouts, modules, n_class) as masker:
        cores: dict[int, dict[str, np.ndarray]] = {}
        for tau in taus:
            sets = core[tau]
            missing = [n for n in layers if n not in sets]
            if missing:
                raise ValueError(f"core[{tau}] has no core channels for layer(s) {missing}; it has {list(sets)}")
            cores[tau] = {n: masker.check_channels(n, sets[n], f"core[{tau}]") for n in layers}
            for n in layers:
                k, free = len(cores[tau][n]), masker.n_units[n] - len(cores[tau][n])
                need = max(k, _n_extra(extend, k))
                if free < need:
                    raise ValueError(
                        f"layer {n!r}, tau {tau}: {free} non-core channels, but the random/extended sets need {need} "
                        f"({k} core channels, extend {extend}); lower tau or extend"
                    )
        base = masker.accuracy({}, "mask", class_index, batch_size)
        for tau in taus:
            for li, layer in enumerate(layers):
                for scope in SCOPES:
                    if scope == "multi" and li == 0:  # the same layers as "single": repeat its rows
                        rows += [r | {"scope": "multi"} for r in rows if r["tau"] == tau and r["layer"] == layer]
                        continue
                    involved = layers[li : li + 1] if scope == "single" else layers[: li + 1]
                    c = {n: cores[tau][n] for n in involved}
                    pools = {n: np.setdiff1d(np.arange(masker.n_units[n]), c[n]) for n in involved}
                    draws: list[tuple[str, int, dict[str, np.ndarray]]] = [("core", -1, c)]
                    for d in range(n_random):
                        draws.append(("random", d, {n: _draw(rng, pools[n], len(c[n])) for n in involved}))
                    for d in range(n_random):
                        extra = {n: _draw(rng, pools[n], _n_extra(extend, len(c[n]))) for n in involved}
                        draws.append(("extended", d, {n: np.sort(np.concatenate([c[n], extra[n]])) for n in involved}))
                    for mode in MODES:
                        accs, other = masker.rates([chosen for _, _, chosen in draws], mode, class_index, batch_size)
                        for (kind, d, chosen), acc, oth in zip(draws, accs, other, strict=True):
                            rows.append(
                                {
                                    "class_index": class_index,
                                    "tau": tau,
                                    "scope": scope,
                                    "layer": layer,
                                    "mode": mode,
                                    "set": kind,
                                    "draw": d,
                                    "n_neurons": int(sum(len(v) for v in chosen.values())),
                                    "accuracy": acc,
                                    "relative_accuracy": acc / base if base > 0 else float("nan"),
                                    "base_accuracy": base,
                                    "n_images": n_class,
                                    "other_predicted": oth,
                                }
                            )
    return pd.DataFrame(rows, columns=list(FIDELITY_COLUMNS[1:]))
