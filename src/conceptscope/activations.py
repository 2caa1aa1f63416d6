"""Per-layer activation cache: one hooked forward pass, one HDF5 file per layer.

A forward hook on every probed module reduces its output on the device, right
when the module runs (before any in-place op of a later module can change it):

- conv layers, output (n, C, H, W) (layout ``channels_first``) or
  (n, H, W, C) (``channels_last``, e.g. timm's Swin stages): per-unit spatial
  ``mean``, ``max``, ``min`` and ``std`` (ddof = 0), each (n, C). These are
  all five location disentanglements of the NAP paper need (``none`` needs
  the full map).
- token layers, output (n, T, C) (``tokens``, e.g. ViT blocks): the same four
  statistics over the T tokens.
- dense layers, output (n, C) (``vector``): the raw ``values``.
- optionally the ``full`` flattened output (n, C*H*W), channels first whatever
  the layout, for the methods that need whole maps (coupled NMF, NAP ``none``).

:func:`layer_layout` is the one place that decides a layer's layout (detected
from its output shape, or set in the config as ``models.<id>.layouts``); every
array in a cache file is channels first, units on axis 1, so every method reads
C units whatever the layout. The layout is stored in the file (``layout``).

Each file also holds ``labels``, ``predictions`` (argmax of the model output
in the same pass) and ``sample_ids``, plus a ``provenance`` attribute (JSON).
Files are written under a temporary name and renamed when the whole pass has
finished, so a killed job leaves nothing that looks complete.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from .data import ImageSet
from .models import InputSpec
from .runtime import temporary_path

__all__ = [
    "FORMAT_VERSION",
    "LAYOUTS",
    "STATISTICS",
    "ActivationRecorder",
    "CacheFileError",
    "CachedLayer",
    "LayoutError",
    "UnknownLayerError",
    "cache_activations",
    "channels_first",
    "layer_layout",
    "read_cache",
    "record_activations",
    "resolve_layers",
    "summarize",
]

FORMAT_VERSION = 1
STATISTICS = ("mean", "max", "min", "std")
LAYOUTS = ("channels_first", "channels_last", "tokens", "vector")


class LayoutError(ValueError):
    """A layer's layout cannot be detected, or the one set does not fit its output."""


def layer_layout(shape: Sequence[int], layout: str | None = None, *, name: str = "layer") -> str:
    """The layout of a layer output of ``shape`` (without the batch axis): one of :data:`LAYOUTS`.

    ``layout`` (from the config) is checked against the shape and returned.
    Otherwise: 1 axis is ``vector``, 2 axes ``tokens`` (T, C), 3 axes a map:
    ``channels_first`` (C, H, W) when its last two axes are equal and the first
    differs, ``channels_last`` (H, W, C) when its first two are equal and the
    last differs (square inputs give square maps).

    Raises
    ------
    LayoutError
        If a map's layout is ambiguous (non-square maps, or C equal to H and
        W), naming the layer and the config key that settles it; or if
        ``layout`` does not fit the number of axes.
    """
    shape = tuple(int(s) for s in shape)
    axes = {"vector": 1, "tokens": 2, "channels_first": 3, "channels_last": 3}
    if layout is not None:
        if layout not in LAYOUTS:
            raise LayoutError(f"{name}: layout {layout!r} is not one of {LAYOUTS}")
        if axes[layout] != len(shape):
            raise LayoutError(f"{name}: layout {layout!r} needs {axes[layout]} axes per sample, output is {shape}")
        return layout
    if len(shape) == 1:
        return "vector"
    if len(shape) == 2:
        return "tokens"
    if len(shape) == 3:
        a, b, c = shape
        if b == c and a != b:
            return "channels_first"
        if a == b and c != a:
            return "channels_last"
        raise LayoutError(
            f"{name}: cannot tell channels from spatial axes in output {shape}; set its layout "
            "(channels_first or channels_last) in models.<id>.layouts"
        )
    raise LayoutError(f"{name}: output shape {shape} has {len(shape)} axes per sample; probe a layer with 1 to 3")


def channels_first(output: torch.Tensor, layout: str) -> torch.Tensor:
    """A batch of layer outputs with the units on axis 1: (n, C, H, W), (n, C, T) or (n, C)."""
    if layout == "channels_last":
        return output.permute(0, 3, 1, 2)
    if layout == "tokens":
        return output.transpose(1, 2)
    return output


class UnknownLayerError(ValueError):
    """A probed layer name is not a module of the model; ``valid`` lists every module path."""

    valid: list[str] = []


class CacheFileError(OSError):
    """An activation cache file is unreadable, incomplete or of another format."""


def resolve_layers(model: nn.Module, layer_names: Sequence[str], *, model_name: str = "model") -> dict[str, nn.Module]:
    """Map module paths to modules.

    Raises
    ------
    UnknownLayerError
        Naming every missing name with the closest valid module paths
        (``difflib``) and how many there are; the full list is the error's
        ``valid`` attribute (``python -m conceptscope.models SPEC`` prints it).
    """
    modules = dict(model.named_modules())
    missing = [n for n in layer_names if n not in modules or n == ""]
    if missing:
        valid = [n for n in modules if n]
        close = {n: difflib.get_close_matches(n, valid, n=4, cutoff=0.5) for n in missing}
        hints = "; ".join(f"{n!r}: closest {', '.join(c) if c else 'none'}" for n, c in close.items())
        err = UnknownLayerError(
            f"{model_name} has no layer(s) {missing} ({hints}). Valid layer names: {len(valid)} module paths, "
            "listed by `python -m conceptscope.models <spec>`"
        )
        err.valid = valid
        raise err
    return {n: modules[n] for n in layer_names}


def summarize(output: torch.Tensor, layout: str | None = None) -> dict[str, torch.Tensor]:
    """Reduce one layer output to per-unit statistics (see module docstring).

    Parameters
    ----------
    output : Tensor, shape (n, C, H, W), (n, H, W, C), (n, T, C) or (n, C)
    layout : str, optional
        One of :data:`LAYOUTS`; detected from the shape if not given
        (:func:`layer_layout`).

    Returns
    -------
    dict of Tensor, each (n, C), float32, on the device of ``output``:
    ``values`` for vectors; ``mean``, ``max``, ``min``, ``std`` otherwise.
    """
    layout = layer_layout(output.shape[1:], layout)
    x = output.detach().float()
    if layout == "vector":
        # a copy: the output tensor itself may be changed in place by a later module (ReLU(inplace=True))
        return {"values": x.clone()}
    x = channels_first(x, layout).flatten(2)  # (n, C, H*W) or (n, C, T)
    std, mean = torch.std_mean(x, dim=2, unbiased=False)
    lo, hi = torch.aminmax(x, dim=2)
    return {"mean": mean, "max": hi, "min": lo, "std": std}


def _layer_kind(layout: str) -> str:
    """The cache's ``kind`` of a layout: ``dense`` (vector), ``tokens`` or ``conv`` (maps, either layout)."""
    return {"vector": "dense", "tokens": "tokens"}.get(layout, "conv")


def _unit_shape(shape: Sequence[int], layout: str) -> tuple[int, ...]:
    """Output shape without the batch axis as cached: (C, H, W) for maps of either layout, else as is."""
    shape = tuple(shape)
    return (shape[2], shape[0], shape[1]) if layout == "channels_last" else shape


@dataclass
class ActivationRecorder:
    """Context manager that hooks named modules and keeps what one forward pass gives.

    For each layer it keeps ``summarize(output, layout)`` (moved to CPU when
    ``to_cpu``) and, for layers in ``full_layers``, the flattened output
    (channels first). ``layouts`` sets a layer's layout (see
    :func:`layer_layout`); the others are detected from the first output, and
    :attr:`layouts_used` records what was used.
    :meth:`pop` returns one pass's records and clears the buffers; it raises
    when a hook did not fire or fired more than once (a module reused within
    one forward, such as torchvision ResNet's shared ``relu``, has no single
    output to record).
    """

    model: nn.Module
    layer_names: Sequence[str]
    full_layers: Iterable[str] = ()
    to_cpu: bool = True
    model_name: str = "model"
    layouts: Mapping[str, str] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    layouts_used: dict[str, str] = field(default_factory=dict)
    _handles: list[Any] = field(default_factory=list, repr=False)
    _buffer: dict[str, list[dict[str, torch.Tensor]]] = field(default_factory=dict, repr=False)

    def __enter__(self) -> ActivationRecorder:
        modules = resolve_layers(self.model, self.layer_names, model_name=self.model_name)
        full = set(self.full_layers)
        unknown_full = full - set(self.layer_names)
        if unknown_full:
            raise UnknownLayerError(f"full maps requested for layers that are not probed: {sorted(unknown_full)}")
        try:
            for name, module in modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name, name in full)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._buffer.clear()

    def _hook(self, name: str, keep_full: bool):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor; probe a submodule")
            layout = layer_layout(output.shape[1:], self.layouts.get(name), name=f"{self.model_name} {name}")
            rec = summarize(output, layout)
            if keep_full and layout != "vector":  # a dense layer's full output is its `values`
                x = output if layout == "tokens" else channels_first(output, layout)  # tokens stay (T, C)
                rec["full"] = x.detach().float().flatten(1).clone()
            if self.to_cpu:
                rec = {k: v.cpu() for k, v in rec.items()}
            self.shapes[name] = tuple(output.shape[1:])
            self.layouts_used[name] = layout
            self._buffer.setdefault(name, []).append(rec)

        return hook

    def pop(self) -> dict[str, dict[str, torch.Tensor]]:
        """The records of the last forward pass, one dict per layer; buffers cleared."""
        out = {}
        for name in self.layer_names:
            got = self._buffer.get(name, [])
            if len(got) != 1:
                self._buffer.clear()
                why = "never ran" if not got else f"ran {len(got)} times"
                raise RuntimeError(
                    f"layer {name!r} {why} in one forward pass of {self.model_name}; "
                    "probe a module that runs exactly once per forward"
                )
            out[name] = got[0]
        self._buffer.clear()
        return out


def record_activations(
    model: nn.Module,
    layer_names: Sequence[str],
    batches: Iterable[torch.Tensor],
    *,
    full_layers: Iterable[str] = (),
    device: torch.device | str | None = None,
    layouts: Mapping[str, str] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Run ``batches`` through ``model`` and concatenate each layer's records (on CPU); see
    :class:`ActivationRecorder` for ``full_layers`` and ``layouts``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    parts: dict[str, dict[str, list[torch.Tensor]]] = {}
    with ActivationRecorder(model, layer_names, full_layers, layouts=dict(layouts or {})) as rec, torch.no_grad():
        for x in batches:
            model(x.to(device))
            for layer, stats in rec.pop().items():
                for k, v in stats.items():
                    parts.setdefault(layer, {}).setdefault(k, []).append(v)
    return {layer: {k: torch.cat(v) for k, v in stats.items()} for layer, stats in parts.items()}


# -- the cache files ---------------------------------------------------------------------------


@contextmanager
def _atomic_files(paths: Mapping[str, Path]) -> Iterator[dict[str, h5py.File]]:
    """Open temporary HDF5 files; rename all to their final names only on success."""
    tmp = {k: temporary_path(p) for k, p in paths.items()}
    files: dict[str, h5py.File] = {}
    try:
        for k, t in tmp.items():
            t.parent.mkdir(parents=True, exist_ok=True)
            files[k] = h5py.File(t, "w")
        yield files
        for f in files.values():
            f.close()
        for k, t in tmp.items():
            os.replace(t, paths[k])
    finally:
        for f in files.values():
            if f.id.valid:
                f.close()
        for t in tmp.values():
            t.unlink(missing_ok=True)


def cache_activations(
    model: nn.Module,
    inp: InputSpec,
    images: ImageSet,
    out_paths: Mapping[str, str | Path],
    *,
    full_layers: Iterable[str] = (),
    batch_size: int = 128,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
    model_name: str = "model",
    layouts: Mapping[str, str] | None = None,
) -> dict[str, tuple[int, ...]]:
    """One batched ``no_grad`` forward pass; one HDF5 file per probed layer.

    Parameters
    ----------
    model : nn.Module
        In eval mode, on the device to run on.
    inp : InputSpec
        How images are fitted and normalized for ``model``.
    images : ImageSet
        The samples, in the order they are stored (dimension 0 of every array).
    out_paths : mapping layer name -> path
        The probed layers (module paths) and where their files go.
    full_layers : names in ``out_paths``
        Layers whose full flattened output (n, C*H*W) is stored as well.
    batch_size : int
        Images per forward pass; bounds memory.
    layouts : mapping layer name -> layout, optional
        Layouts set in the config (:data:`LAYOUTS`); others are detected.

    Returns
    -------
    dict layer -> output shape without the batch dimension.
    """
    paths = {k: Path(v) for k, v in out_paths.items()}
    layers = list(paths)
    full = set(full_layers)
    device = next(model.parameters()).device
    n = len(images)
    model.eval()
    from tqdm.auto import tqdm

    with (
        ActivationRecorder(model, layers, full, model_name=model_name, layouts=dict(layouts or {})) as rec,
        _atomic_files(paths) as files,
        torch.no_grad(),
    ):
        preds = np.empty(n, dtype=np.int64)
        dsets: dict[str, dict[str, h5py.Dataset]] = {}
        batches = tqdm(
            inp.batches(images, batch_size),
            total=-(-n // batch_size),
            desc=f"{model_name} {images.split}",
            disable=not progress,
        )
        for x, _, pos in batches:
            out = model(x.to(device, non_blocking=True))
            preds[pos] = out.argmax(1).cpu().numpy()
            for layer, stats in rec.pop().items():
                if layer not in dsets:
                    f = files[layer]
                    dsets[layer] = {
                        k: f.create_dataset(
                            k,
                            shape=(n, v.shape[1]),
                            dtype="float32",
                            chunks=(min(n, 256), v.shape[1]) if k == "full" else None,
                        )
                        for k, v in stats.items()
                    }
                for k, v in stats.items():
                    dsets[layer][k][pos[0] : pos[-1] + 1] = v.numpy()
        meta = {"format_version": FORMAT_VERSION, **dict(provenance or {})}
        for layer, f in files.items():
            shape, layout = rec.shapes[layer], rec.layouts_used[layer]
            f.create_dataset("labels", data=images.labels)
            f.create_dataset("predictions", data=preds)
            f.create_dataset("sample_ids", data=images.sample_ids)
            f.attrs["layer"] = layer
            f.attrs["kind"] = _layer_kind(layout)
            f.attrs["layout"] = layout
            f.attrs["unit_shape"] = np.asarray(_unit_shape(shape, layout), dtype=np.int64)
            f.attrs["provenance"] = json.dumps(meta, sort_keys=True, default=str)
    return dict(rec.shapes)


@dataclass(frozen=True)
class CachedLayer:
    """The contents of one cache file (arrays loaded into memory)."""

    path: Path
    layer: str
    kind: str
    unit_shape: tuple[int, ...]
    arrays: dict[str, np.ndarray]
    labels: np.ndarray
    predictions: np.ndarray
    sample_ids: np.ndarray
    provenance: dict[str, Any]
    layout: str = "channels_first"  # of the layer output; arrays are channels first whatever it is

    @property
    def n_units(self) -> int:
        return int(self.unit_shape[0] if self.kind == "conv" else self.unit_shape[-1])


def read_cache(path: str | Path, *, keys: Iterable[str] | None = None) -> CachedLayer:
    """Load a cache file written by :func:`cache_activations`.

    ``keys`` limits which activation arrays are read (default: all stored).
    For dense layers ``full`` names the stored ``values`` (the same array).

    Raises
    ------
    CacheFileError
        If the file is not a complete cache file of this format, or an array
        read holds NaN or inf; the message names the file, the layer and the
        fix (delete it so that Snakemake rebuilds it).
    """
    path = Path(path)
    fix = f"Delete {path} and rerun snakemake to rebuild it."
    try:
        with h5py.File(path, "r") as f:
            prov = json.loads(f.attrs["provenance"])
            if prov.get("format_version") != FORMAT_VERSION:
                raise CacheFileError(
                    f"{path}: cache format {prov.get('format_version')}, expected {FORMAT_VERSION}. {fix}"
                )
            stored = [k for k in (*STATISTICS, "values", "full") if k in f]
            wanted = stored if keys is None else list(keys)
            alias = {"full": "values"} if "values" in f else {}  # dense layers: the full output is `values`
            absent = [k for k in wanted if alias.get(k, k) not in f and k not in f]
            if absent:
                raise CacheFileError(f"{path}: no array(s) {absent}; it holds {stored}.")
            arrays = {k: f[k if k in f else alias[k]][()] for k in wanted}
            for k, a in arrays.items():
                bad = a.size - int(np.count_nonzero(np.isfinite(a)))
                if bad:
                    raise CacheFileError(
                        f"{path}: layer {f.attrs['layer']}: {bad} non-finite values (NaN or inf) in {k!r}. "
                        "Check the model's weights and inputs (a diverged training gives NaN), then "
                        + fix[0].lower()
                        + fix[1:]
                    )
            kind = str(f.attrs["kind"])
            return CachedLayer(
                path=path,
                layer=str(f.attrs["layer"]),
                kind=kind,
                unit_shape=tuple(int(s) for s in f.attrs["unit_shape"]),
                arrays=arrays,
                labels=f["labels"][()],
                predictions=f["predictions"][()],
                sample_ids=f["sample_ids"][()],
                provenance=prov,
                layout=str(f.attrs.get("layout", {"dense": "vector", "tokens": "tokens"}.get(kind, "channels_first"))),
            )
    except CacheFileError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise CacheFileError(f"{path}: unreadable or incomplete activation cache ({err}). {fix}") from err
