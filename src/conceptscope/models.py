"""The papers' models, timm / torchvision models by name, and their training.

A model is named by a spec string:

- ``local:<arch>``: an architecture of one of the papers, built here and
  trained in the workflow (:data:`LOCAL_ARCHITECTURES`). Input channels and
  class count follow the data set; the input size is the paper's.
- ``timm:<name>``: ``timm.create_model(name)``; ``torchvision:<name>``:
  ``torchvision.models.get_model(name)``. Pretrained weights when asked for
  (an offline machine gets an error naming the cache directory), random
  weights otherwise; input size and normalization from the weights' card.

Layers are named by PyTorch module path (``dict(model.named_modules())``).
In the local CNNs a convolution and its ReLU form one named block
(``conv1`` = Conv2d + ReLU), so ``conv1`` holds what the Keras layer
``conv2d`` of the NAP paper outputs (the activation after the ReLU).

Training settings default to each paper's (:data:`TRAINING_DEFAULTS`, from the
papers: NAP CNNs Adam 1e-3; NAS QuickDraw CNN SGD 0.01, momentum 0.9, batch
32; ResNet-18 / VGG-11 SGD 0.1, momentum 0.9, weight decay 5e-4, step decay
x0.2 at epochs 30/60/90, batch 64); the number of epochs comes from config.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import ImageSet
from .runtime import atomic_path

__all__ = [
    "InputSpec",
    "LOCAL_ARCHITECTURES",
    "PretrainedWeightsError",
    "TRAINING_DEFAULTS",
    "build_model",
    "evaluate_accuracy",
    "fetch_weights",
    "list_layers",
    "load_model",
    "predict",
    "resolve_device",
    "save_model",
    "train_model",
    "training_settings",
]


@dataclass(frozen=True)
class InputSpec:
    """What a model takes: (height, width), channels and input normalization.

    ``mean``/``std`` (per channel) are applied after the images are fitted to
    ``size`` and ``channels``; the local models take images in [0, 1] as they
    are (mean 0, std 1).
    """

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the per-channel normalization to fitted images (n, C, H, W)."""
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def batches(self, images: ImageSet, batch_size: int):
        """Model-ready batches ``(x, y, positions)`` of an image set, in order."""
        for x, y, pos in images.batches(batch_size, self.size, self.channels):
            yield self.normalize(x), y, pos


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be loaded (no network, empty cache)."""


# -- the papers' architectures ---------------------------------------------------------------


def _conv_relu(c_in: int, c_out: int, k: int, bias: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, bias=bias), nn.ReLU())


def nap_mnist_cnn(in_channels: int, n_classes: int) -> nn.Sequential:
    """NAP paper MNIST CNN (28x28): Conv32-Pool-Conv64-Pool-Flatten(1600)-Dropout(0.5)-Dense."""
    return nn.Sequential(
        _named(
            conv1=_conv_relu(in_channels, 32, 3),
            pool1=nn.MaxPool2d(2),
            conv2=_conv_relu(32, 64, 3),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            dropout=nn.Dropout(0.5),
            fc=nn.Linear(1600, n_classes),
        )
    )


def nap_cifar_cnn(in_channels: int, n_classes: int) -> nn.Sequential:
    """NAP paper CIFAR-10 CNN (32x32): Conv32-Pool-Conv64-Pool-Conv64-Flatten(1024)-Dense64-Dense."""
    return nn.Sequential(
        _named(
            conv1=_conv_relu(in_channels, 32, 3),
            pool1=nn.MaxPool2d(2),
            conv2=_conv_relu(32, 64, 3),
            pool2=nn.MaxPool2d(2),
            conv3=_conv_relu(64, 64, 3),
            flatten=nn.Flatten(),
            dense=nn.Sequential(nn.Linear(1024, 64), nn.ReLU()),
            fc=nn.Linear(64, n_classes),
        )
    )


def nas_quickdraw_cnn(in_channels: int, n_classes: int) -> nn.Sequential:
    """NAS thesis QuickDraw CNN (28x28): two bias-free 5x5 convs, three FC layers, no ReLU between FCs."""
    return nn.Sequential(
        _named(
            conv1=_conv_relu(in_channels, 32, 5, bias=False),
            pool1=nn.MaxPool2d(2),
            conv2=_conv_relu(32, 64, 5, bias=False),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(1024, 512),
            dropout1=nn.Dropout(0.5),
            fc2=nn.Linear(512, 128),
            dropout2=nn.Dropout(0.5),
            fc3=nn.Linear(128, n_classes),
        )
    )


def resnet18_cifar(in_channels: int, n_classes: int) -> nn.Module:
    """ResNet-18, CIFAR variant: 3x3 stride-1 stem, no max-pool (``maxpool`` is an Identity).

    Module names are torchvision's (``layer3`` = conv4_x, ``layer4`` = conv5_x).
    """
    import torchvision

    model = torchvision.models.resnet18(num_classes=n_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


class VGG11CIFAR(nn.Module):
    """VGG-11 with batch norm for 32x32 inputs: torchvision's ``features`` layout
    (max-pools at ``features.3, .7, .14, .21, .28``), then ``flatten`` and a
    single ``classifier`` Linear(512, classes), as in the common CIFAR VGG."""

    CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def _named(**modules: nn.Module):
    from collections import OrderedDict

    return OrderedDict(modules)


LOCAL_ARCHITECTURES: dict[str, tuple[Callable[[int, int], nn.Module], tuple[int, int]]] = {
    "nap_mnist_cnn": (nap_mnist_cnn, (28, 28)),
    "nap_cifar_cnn": (nap_cifar_cnn, (32, 32)),
    "nas_quickdraw_cnn": (nas_quickdraw_cnn, (28, 28)),
    "resnet18_cifar": (resnet18_cifar, (32, 32)),
    "vgg11_cifar": (VGG11CIFAR, (32, 32)),
}

_ADAM = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "milestones": [], "gamma": 1.0}
_CIFAR_SGD = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "milestones": [30, 60, 90]}
TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "nap_mnist_cnn": {**_ADAM, "batch_size": 128},
    "nap_cifar_cnn": {**_ADAM, "batch_size": 32},
    "nas_quickdraw_cnn": {**_ADAM, "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 32},
    "resnet18_cifar": {**_CIFAR_SGD, "gamma": 0.2, "batch_size": 64},
    "vgg11_cifar": {**_CIFAR_SGD, "gamma": 0.2, "batch_size": 64},
}
_EXTERNAL_TRAINING = {**_ADAM, "lr": 1e-4, "batch_size": 32}


def training_settings(spec: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer settings for a model: ``overrides`` where not None, else the paper's.

    Local architectures default to :data:`TRAINING_DEFAULTS`; timm / torchvision
    models (fine-tuning) to Adam 1e-4, batch 32.
    """
    source, name = _parse_spec(spec)
    if source == "local" and name not in TRAINING_DEFAULTS:
        raise ValueError(f"local architecture {name!r} has no training recipe: add it to models.TRAINING_DEFAULTS")
    base = TRAINING_DEFAULTS[name] if source == "local" else _EXTERNAL_TRAINING
    return {k: (overrides[k] if overrides.get(k) is not None else v) for k, v in base.items()}


def _parse_spec(spec: str) -> tuple[str, str]:
    source, _, name = spec.partition(":")
    if source not in ("local", "timm", "torchvision") or not name:
        raise ValueError(f"model spec {spec!r}: expected 'local:<arch>', 'timm:<name>' or 'torchvision:<name>'")
    if source == "local" and name not in LOCAL_ARCHITECTURES:
        raise ValueError(
            f"model spec {spec!r}: unknown local architecture; choose one of {sorted(LOCAL_ARCHITECTURES)}"
        )
    return source, name


def build_model(
    spec: str,
    *,
    n_classes: int,
    in_channels: int,
    pretrained: bool = False,
    input_size: tuple[int, int] | None = None,
) -> tuple[nn.Module, InputSpec]:
    """Build a model and its :class:`InputSpec` from a spec string.

    Parameters
    ----------
    spec : str
        ``local:<arch>``, ``timm:<name>`` or ``torchvision:<name>``.
    n_classes, in_channels : int
        Of the data set. Local models take both; timm / torchvision models keep
        3 input channels (grey images are repeated) and, when pretrained, their
        own head.
    pretrained : bool
        Load published weights (timm / torchvision only).
    input_size : (height, width), optional
        Overrides the declared input size.

    Raises
    ------
    PretrainedWeightsError
        When pretrained weights are not in the cache and cannot be downloaded;
        the message names the cache directory.
    """
    source, name = _parse_spec(spec)
    _check_name(spec, source, name)
    if source == "local":
        if pretrained:
            raise ValueError(
                f"model spec {spec!r}: local architectures have no pretrained weights; set pretrained: false"
            )
        factory, size = LOCAL_ARCHITECTURES[name]
        model = factory(in_channels, n_classes)
        return model, InputSpec(tuple(input_size or size), in_channels)
    if pretrained and not os.environ.get("HF_HUB_OFFLINE") and _cached_weights(source, name) is None:
        host = _weights_host(source, name)
        if host and not _reachable(host):  # fail within seconds, not after minutes of download retries
            raise PretrainedWeightsError(
                _offline_message(spec, ConnectionError(f"{host} cannot be reached ({_PROBE_SECONDS:g} s)"))
            )
    try:
        if source == "timm":
            model, inp = _build_timm(name, n_classes, pretrained, input_size)
        else:
            model, inp = _build_torchvision(name, n_classes, pretrained)
    except PretrainedWeightsError:
        raise
    except Exception as err:  # network and cache failures surface as many types
        if not pretrained:
            raise
        raise PretrainedWeightsError(_offline_message(spec, err)) from err
    if input_size:
        inp = InputSpec(tuple(input_size), inp.channels, inp.mean, inp.std)
    return model, inp


def fetch_weights(spec: str) -> Path | None:
    """Download the pretrained weights of a timm / torchvision ``spec`` into their cache; the cached file.

    The Hugging Face cache (timm) or the torch hub cache (``torch.hub.get_dir()/checkpoints``) is where
    :func:`build_model` looks for them on a machine without internet (a cluster's compute nodes). Returns the
    cached file (None for a ``local:`` spec, which has no published weights).

    Raises
    ------
    PretrainedWeightsError
        When the weights are not cached and cannot be downloaded (offline), naming the cache directory.
    """
    source, name = _parse_spec(spec)
    if source == "local":
        return None
    found = _cached_weights(source, name)
    if found is None:
        build_model(spec, n_classes=1000, in_channels=3, pretrained=True)  # into the cache, or raises offline
        found = _cached_weights(source, name)
    return found


def _check_name(spec: str, source: str, name: str) -> None:
    """Raise ``ValueError`` with the closest known names when ``name`` is no timm / torchvision model."""
    if source == "local":
        return  # checked by _parse_spec
    if source == "timm":
        import timm

        known = timm.list_models()
        ok = timm.is_model(name)
    else:
        import torchvision

        known = torchvision.models.list_models()
        ok = name in known
    if not ok:
        close = difflib.get_close_matches(name.split(".")[0], known, n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"{len(known)} names, e.g. {', '.join(known[:5])}"
        raise ValueError(f"model spec {spec!r}: {source} has no model {name!r} ({hint})")


def _build_timm(
    name: str, n_classes: int, pretrained: bool, input_size: tuple[int, int] | None = None
) -> tuple[nn.Module, InputSpec]:
    import timm

    kwargs: dict[str, Any] = {} if pretrained else {"num_classes": n_classes}
    try:  # models with a fixed input grid (ViT, Swin) are built for the configured size
        model = timm.create_model(
            name, pretrained=pretrained, **kwargs, **({"img_size": input_size} if input_size else {})
        )
    except TypeError as err:
        if "img_size" not in str(err):
            raise
        model = timm.create_model(name, pretrained=pretrained, **kwargs)  # a CNN: any input size
    cfg = model.pretrained_cfg or {}
    c, h, w = cfg.get("input_size", (3, 224, 224))
    return model, InputSpec(
        (h, w), c, tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    )


def _build_torchvision(name: str, n_classes: int, pretrained: bool) -> tuple[nn.Module, InputSpec]:
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    if pretrained:
        model = torchvision.models.get_model(name, weights=weights)
    else:
        extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = torchvision.models.get_model(name, weights=None, num_classes=n_classes, **extra)
    tf = weights.transforms()
    size = int(getattr(tf, "crop_size", [224])[0])
    return model, InputSpec((size, size), 3, tuple(tf.mean), tuple(tf.std))


_PROBE_SECONDS = 5.0


def _weight_urls(source: str, name: str) -> tuple[str | None, str | None]:
    """(Hugging Face repo id, download URL) of a timm / torchvision model's published weights."""
    if source == "timm":
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
        return (getattr(cfg, "hf_hub_id", None), getattr(cfg, "url", None)) if cfg is not None else (None, None)
    import torchvision

    return None, torchvision.models.get_model_weights(name).DEFAULT.url


def _cached_weights(source: str, name: str) -> Path | None:
    """The local file of a model's published weights if it is already in the Hugging Face or torch hub cache."""
    repo, url = _weight_urls(source, name)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return Path(found)
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if path.exists():
            return path
    return None


def _weights_host(source: str, name: str) -> str | None:
    """The host a model's weights download from (the Hugging Face endpoint for hub-hosted timm weights)."""
    from urllib.parse import urlparse

    repo, url = _weight_urls(source, name)
    if repo:
        return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    return urlparse(url).hostname if url else None


def _reachable(host: str, port: int = 443) -> bool:
    """Whether a TCP connection to ``host`` opens within :data:`_PROBE_SECONDS` (one attempt)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _offline_message(spec: str, err: Exception) -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        hf = HF_HUB_CACHE
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        hf = "~/.cache/huggingface/hub"
    where = f"{hf} (Hugging Face cache, timm) or {hub} (torch hub)" if spec.startswith("timm:") else str(hub)
    return (
        f"could not load pretrained weights for {spec}: {type(err).__name__}: {err}. "
        f"This machine may be offline. Put the weights in the cache directory {where} "
        f"(e.g. download them once on a machine with internet and copy the cache), "
        f"or set pretrained: false for random weights."
    )


# -- devices, saving, loading ----------------------------------------------------------------


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` / None → CUDA when present, else CPU; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device: auto or cpu")
    return dev


def save_model(path: str | Path, model: nn.Module, inp: InputSpec, meta: Mapping[str, Any]) -> None:
    """Save weights, input spec and build arguments (atomically) to ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "input": asdict(inp), "meta": dict(meta)}, tmp)


def load_model(path: str | Path, device: str | torch.device | None = "cpu") -> tuple[nn.Module, InputSpec, dict]:
    """Rebuild a model saved by :func:`save_model`; returns (model in eval mode, input spec, meta)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = blob["meta"]
    if meta["spec"].startswith("torchvision:") and meta.get("pretrained"):
        model = _torchvision_pretrained_shape(meta)
    else:
        model, _ = build_model(meta["spec"], n_classes=meta["n_classes"], in_channels=meta["in_channels"])
    model.load_state_dict(blob["state_dict"])
    i = blob["input"]
    inp = InputSpec(tuple(i["size"]), int(i["channels"]), tuple(i["mean"]), tuple(i["std"]))
    return model.to(resolve_device(device)).eval(), inp, meta


def _torchvision_pretrained_shape(meta: Mapping[str, Any]) -> nn.Module:
    """A torchvision model shaped like its pretrained version (aux heads, transform_input), random weights."""
    import torchvision

    name = meta["spec"].split(":", 1)[1]
    weights = torchvision.models.get_model_weights(name).DEFAULT
    kwargs: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if name in ("googlenet", "inception_v3"):
        # torchvision's pretrained googlenet drops its aux heads after loading; inception_v3 keeps its one
        kwargs.update(aux_logits=name == "inception_v3", transform_input=True, init_weights=False)
    return torchvision.models.get_model(name, weights=None, **kwargs)


# -- training ---------------------------------------------------------------------------------


@torch.no_grad()
def predict(model: nn.Module, images: ImageSet, inp: InputSpec, *, batch_size: int = 64) -> np.ndarray:
    """Predicted class per sample (argmax of the model output), in order."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(x.to(device)).argmax(1).cpu() for x, _, _ in inp.batches(images, batch_size)]
    return torch.cat(out).numpy() if out else np.empty(0, dtype=np.int64)


def evaluate_accuracy(model: nn.Module, images: ImageSet, inp: InputSpec, *, batch_size: int = 64) -> float:
    """Fraction of samples whose predicted class equals the label."""
    if len(images) == 0:
        return float("nan")
    return float((predict(model, images, inp, batch_size=batch_size) == images.labels).mean())


def train_model(
    model: nn.Module,
    train_set: ImageSet,
    test_set: ImageSet | None,
    inp: InputSpec,
    *,
    epochs: int,
    optimizer: str,
    lr: float,
    batch_size: int,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    milestones: list[int] | tuple[int, ...] = (),
    gamma: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, float]]:
    """Train in place with cross-entropy; returns one history row per epoch.

    Shuffling and dropout draw from generators seeded with ``seed`` (the global
    RNG state is restored afterwards), so the same seed gives the same weights on
    the same device and thread count. Learning rate: ``lr``, multiplied by
    ``gamma`` at each epoch in ``milestones`` (MultiStepLR).
    """
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    gen = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            t0 = time.perf_counter()
            order = gen.permutation(len(train_set))
            total, correct, loss_sum = 0, 0, 0.0
            steps = range(0, len(order), batch_size)
            for start in tqdm(steps, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False):
                pos = order[start : start + batch_size]
                x = inp.normalize(train_set.images(pos, inp.size, inp.channels)).to(device)
                y = torch.from_numpy(train_set.labels[pos]).to(device)
                opt.zero_grad(set_to_none=True)
                out = model(x)
                loss = loss_fn(out, y)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(pos)
                correct += int((out.argmax(1) == y).sum())
                total += len(pos)
            sched.step()
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(total, 1),
                "train_acc_running": correct / max(total, 1),
                "test_acc": evaluate_accuracy(model, test_set, inp) if test_set is not None else float("nan"),
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            log(
                f"epoch {epoch}/{epochs}: loss {row['train_loss']:.4f}, running train acc "
                f"{row['train_acc_running']:.4f}, test acc {row['test_acc']:.4f}, {row['seconds']:.1f} s"
            )
    model.eval()
    return history


def list_layers(
    spec: str, *, in_channels: int = 3, input_size: tuple[int, int] | None = None
) -> list[tuple[str, str, str]]:
    """``(module path, module type, output shape without the batch axis)`` of every module, in registration order.

    One forward pass of a single input on the ``meta`` device (no memory, no
    weights, no download); a module that runs several times shows its first
    output, one that never runs shows ``-``.
    """
    with torch.device("meta"):
        model, inp = build_model(spec, n_classes=10, in_channels=in_channels, input_size=input_size)
    shapes: dict[str, str] = {}

    def hook(name: str):
        def record(_module: nn.Module, _args: Any, out: Any) -> None:
            if name not in shapes:
                shapes[name] = str(tuple(out.shape[1:])) if isinstance(out, torch.Tensor) else type(out).__name__

        return record

    named = [(n, m) for n, m in model.named_modules() if n]
    handles = [m.register_forward_hook(hook(n)) for n, m in named]
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, inp.channels, *inp.size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return [(n, type(m).__name__, shapes.get(n, "-")) for n, m in named]


def main(argv: list[str] | None = None) -> int:
    """Print a model's module paths (the names ``models.<id>.layers`` takes), their types and output shapes."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m conceptscope.models", description=main.__doc__)
    parser.add_argument("spec", help="local:<arch>, timm:<name> or torchvision:<name>")
    parser.add_argument("--in-channels", type=int, default=3, help="input channels of the data (1 = grey; default 3)")
    parser.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), help="input size (default: the model's own)"
    )
    args = parser.parse_args(argv)
    try:
        rows = list_layers(
            args.spec, in_channels=args.in_channels, input_size=tuple(args.input_size) if args.input_size else None
        )
    except ValueError as err:
        parser.error(str(err))
    width = max(len(n) for n, _, _ in rows)
    print(f"{'module path':<{width}}  {'type':<24} output shape (per input)")
    for name, kind, shape in rows:
        print(f"{name:<{width}}  {kind:<24} {shape}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BrokenPipeError:  # the output piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        raise SystemExit(0) from None
