"""Tests of conceptscope.models: the papers' architectures, model specs, saving, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from conceptscope import models
from conceptscope.data import load_split
from conceptscope.models import (
    LOCAL_ARCHITECTURES,
    TRAINING_DEFAULTS,
    InputSpec,
    PretrainedWeightsError,
    build_model,
    evaluate_accuracy,
    load_model,
    predict,
    resolve_device,
    save_model,
    train_model,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (module path, output shape without the batch dimension) per local architecture, from the papers
INTERMEDIATE = {
    "nap_mnist_cnn": {
        "conv1": (32, 26, 26),
        "pool1": (32, 13, 13),
        "conv2": (64, 11, 11),
        "pool2": (64, 5, 5),
        "flatten": (1600,),
    },
    "nap_cifar_cnn": {
        "conv1": (32, 30, 30),
        "pool1": (32, 15, 15),
        "conv2": (64, 13, 13),
        "pool2": (64, 6, 6),
        "conv3": (64, 4, 4),
        "flatten": (1024,),
        "dense": (64,),
    },
    "nas_quickdraw_cnn": {
        "conv1": (32, 24, 24),
        "pool1": (32, 12, 12),
        "conv2": (64, 8, 8),
        "pool2": (64, 4, 4),
        "flatten": (1024,),
        "fc1": (512,),
        "fc2": (128,),
    },
    "resnet18_cifar": {
        "conv1": (64, 32, 32),
        "maxpool": (64, 32, 32),
        "layer1": (64, 32, 32),
        "layer2": (128, 16, 16),
        "layer3": (256, 8, 8),
        "layer4": (512, 4, 4),
        "avgpool": (512, 1, 1),
    },
    "vgg11_cifar": {
        "features.3": (64, 16, 16),
        "features.7": (128, 8, 8),
        "features.14": (256, 4, 4),
        "features.21": (512, 2, 2),
        "features.28": (512, 1, 1),
        "flatten": (512,),
    },
}
SIZES = {
    "nap_mnist_cnn": (28, 28),
    "nap_cifar_cnn": (32, 32),
    "nas_quickdraw_cnn": (28, 28),
    "resnet18_cifar": (32, 32),
    "vgg11_cifar": (32, 32),
}


def _forward_shapes(model: nn.Module, names, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, tuple[int, ...]]]:
    mods = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    handles = [
        mods[n].register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape))) for n in names
    ]
    try:
        model.eval()
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, shapes


def _fresh(spec: str = "local:nap_mnist_cnn", **kw):
    """A model built from seed 0 without touching the global RNG."""
    kw = {"n_classes": 10, "in_channels": 1, **kw}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(spec, **kw)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    spec = {"kind": "digits", "subset": {"train": {"per_class": 20}, "test": {"first_n": 50}}}
    return load_split(spec, "train", key="datasets.digits"), load_split(spec, "test", key="datasets.digits")


# -- 1. local architectures -------------------------------------------------------------------


def test_architecture_tables_agree():
    assert set(LOCAL_ARCHITECTURES) == set(INTERMEDIATE) == set(SIZES) == set(TRAINING_DEFAULTS)


@pytest.mark.parametrize("in_channels,n_classes", [(1, 10), (3, 100)])
@pytest.mark.parametrize("arch", sorted(INTERMEDIATE))
def test_local_architecture_shapes(arch, in_channels, n_classes):
    model, inp = _fresh(f"local:{arch}", n_classes=n_classes, in_channels=in_channels)
    assert inp == InputSpec(SIZES[arch], in_channels)
    x = torch.rand(2, in_channels, *inp.size)
    out, shapes = _forward_shapes(model, INTERMEDIATE[arch], x)
    assert out.shape == (2, n_classes)
    assert shapes == {n: (2, *s) for n, s in INTERMEDIATE[arch].items()}


def test_local_input_size_override():
    _, inp = build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1, input_size=(40, 40))
    assert inp.size == (40, 40)


def test_nap_cnn_layers():
    mnist, _ = _fresh("local:nap_mnist_cnn")
    assert [type(m) for m in mnist.conv1] == [nn.Conv2d, nn.ReLU]
    assert mnist.conv1[0].kernel_size == mnist.conv2[0].kernel_size == (3, 3)
    assert isinstance(mnist.dropout, nn.Dropout) and mnist.dropout.p == 0.5
    assert (mnist.fc.in_features, mnist.fc.out_features) == (1600, 10)
    cifar, _ = _fresh("local:nap_cifar_cnn", in_channels=3)
    assert [type(m) for m in cifar.dense] == [nn.Linear, nn.ReLU]
    assert not any(isinstance(m, nn.Dropout) for m in cifar.modules())


def test_nas_quickdraw_cnn_layers():
    model, _ = _fresh("local:nas_quickdraw_cnn")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.bias is None and c.kernel_size == (5, 5) for c in convs)
    names = [n for n, _ in model.named_children()]
    between = list(model.children())[names.index("fc1") + 1 : names.index("fc3")]
    assert between and all(type(m) in (nn.Dropout, nn.Linear) for m in between)
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)] == [
        (1024, 512),
        (512, 128),
        (128, 10),
    ]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2  # only after the two convs


def test_resnet18_cifar_stem_and_vgg11_layout():
    resnet, _ = _fresh("local:resnet18_cifar", in_channels=3)
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, nn.Identity)
    assert sum(isinstance(m, torchvision.models.resnet.BasicBlock) for m in resnet.modules()) == 8
    vgg, _ = _fresh("local:vgg11_cifar", in_channels=3)
    pools = [i for i, m in enumerate(vgg.features) if isinstance(m, nn.MaxPool2d)]
    assert pools == [3, 7, 14, 21, 28]
    assert sum(isinstance(m, nn.Conv2d) for m in vgg.modules()) == 8
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules()) == 8


# -- 2. timm / torchvision specs, bad specs ---------------------------------------------------


@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:resnet18"])
def test_external_random_model(spec):
    model, inp = _fresh(spec, n_classes=7, in_channels=1)  # grey data: the model still takes 3 channels
    assert inp.channels == 3 and inp.size == (224, 224)
    assert inp.mean == pytest.approx(IMAGENET_MEAN) and inp.std == pytest.approx(IMAGENET_STD)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, *inp.size)).shape == (2, 7)
    _, small = build_model(spec, n_classes=7, in_channels=1, input_size=(64, 64))
    assert small == InputSpec((64, 64), 3, inp.mean, inp.std)


@pytest.mark.parametrize("spec", ["foo:bar", "local:nope", "timm", "timm:", "torchvision:", "", "local"])
def test_bad_spec(spec):
    with pytest.raises(ValueError, match="model spec"):
        build_model(spec, n_classes=10, in_channels=1)


def test_local_pretrained_is_an_error():
    with pytest.raises(ValueError, match="pretrained: false"):
        build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1, pretrained=True)


# -- 3. pretrained weights on an offline machine ----------------------------------------------


@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:resnet18"])
def test_pretrained_offline_names_cache(spec, tmp_path, monkeypatch):
    import timm.models._hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def no_network(*args, **kwargs):
        raise ConnectionError("no network in this test")

    # huggingface_hub reads its environment at import time: cut the downloaders themselves
    monkeypatch.setattr(timm.models._hub, "hf_hub_download", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    # tests/conftest.py makes the host answer: the download itself fails here
    hub = torch.hub.get_dir()
    assert hub.startswith(str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as info:
        build_model(spec, n_classes=10, in_channels=3, pretrained=True)
    msg = str(info.value)
    assert hub in msg and "pretrained: false" in msg and spec in msg
    assert "no network in this test" in msg  # the simulated download failure, not some other error


# -- 4. save / load ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,in_channels,size",
    [("local:nap_mnist_cnn", 1, (28, 28)), ("local:vgg11_cifar", 3, (32, 32)), ("timm:resnet18", 1, (64, 64))],
)
def test_save_load_round_trip(spec, in_channels, size, tmp_path):
    model, inp = _fresh(spec, n_classes=10, in_channels=in_channels, input_size=size)
    with torch.no_grad():  # non-trivial batch-norm statistics must round-trip too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
    model.train()
    meta = {"spec": spec, "n_classes": 10, "in_channels": in_channels, "pretrained": False, "model": "m"}
    path = tmp_path / "model.pt"
    save_model(path, model, inp, meta)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    loaded, inp2, meta2 = load_model(path)
    assert inp2 == inp and meta2 == meta
    assert not loaded.training and all(not m.training for m in loaded.modules())
    x = torch.rand(2, inp.channels, *inp.size)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_save_load_torchvision_pretrained_shape(name, tmp_path, monkeypatch):
    """A pretrained torchvision model (weights faked offline) reloads with its pretrained shape."""
    extra = {"aux_logits": True, "transform_input": True, "init_weights": False} if name == "googlenet" else {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ckpt = torchvision.models.get_model(name, weights=None, num_classes=1000, **extra).state_dict()
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda *a, **k: ckpt)
    model, inp = build_model(f"torchvision:{name}", n_classes=10, in_channels=3, pretrained=True)
    meta = {"spec": f"torchvision:{name}", "n_classes": 1000, "in_channels": 3, "pretrained": True}
    save_model(tmp_path / "m.pt", model, inp, meta)
    loaded, inp2, _ = load_model(tmp_path / "m.pt")
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert inp2 == inp


# -- 5. training -------------------------------------------------------------------------------


def _train(model, inp, digits, **kw):
    train, test = digits
    settings = {"epochs": 2, "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "seed": 0, "log": lambda _s: None, **kw}
    return train_model(model, train, test, inp, progress=False, **settings)


def test_train_same_seed_same_weights(digits, one_thread):
    runs = []
    for seed in (0, 0, 1):
        model, inp = _fresh()
        _train(model, inp, digits, seed=seed)
        runs.append(model)
    assert _same_weights(runs[0], runs[1])
    assert not _same_weights(runs[0], runs[2])
    assert not _same_weights(runs[0], _fresh()[0])  # training changed the weights


def test_train_loss_decreases(digits, one_thread):
    model, inp = _fresh()
    lines: list[str] = []
    history = _train(model, inp, digits, epochs=3, log=lines.append)
    assert [row["epoch"] for row in history] == [1, 2, 3] and len(lines) == 3
    assert history[2]["train_loss"] < history[0]["train_loss"]
    assert all(0.0 <= row["test_acc"] <= 1.0 for row in history)
    assert not model.training


def test_train_milestones_step_per_epoch(digits, one_thread):
    """With gamma 0 at milestone 1, a second epoch leaves plain-SGD weights unchanged."""
    kw = {"optimizer": "sgd", "lr": 0.05, "milestones": [1], "gamma": 0.0}
    one, inp = _fresh()
    _train(one, inp, digits, epochs=1, **kw)
    two, _ = _fresh()
    _train(two, inp, digits, epochs=2, **kw)
    assert _same_weights(one, two) and not _same_weights(one, _fresh()[0])


def test_train_keeps_global_rng(digits, one_thread):
    model, inp = _fresh()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _train(model, inp, digits, epochs=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_train_bad_optimizer(digits):
    model, inp = _fresh()
    with pytest.raises(ValueError, match="optimizer"):
        _train(model, inp, digits, optimizer="rmsprop")


# -- 6. prediction, accuracy, devices ----------------------------------------------------------


def test_predict_and_accuracy_match_manual_argmax(digits):
    _, test = digits
    model, inp = _fresh()
    model.eval()
    with torch.no_grad():
        x = inp.normalize(test.images(np.arange(len(test)), inp.size, inp.channels))
        manual = model(x).argmax(1).numpy()
    model.train()  # predict must switch to eval (dropout off)
    np.testing.assert_array_equal(predict(model, test, inp, batch_size=16), manual)
    assert evaluate_accuracy(model, test, inp, batch_size=7) == pytest.approx(float((manual == test.labels).mean()))
    empty = test.subset(np.array([], dtype=np.int64))
    assert predict(model, empty, inp).shape == (0,)
    assert np.isnan(evaluate_accuracy(model, empty, inp))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == resolve_device(None).type == "cuda"
        return
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA"):
        resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_on_cuda(digits):
    model, inp = _fresh()
    model.to("cuda")
    history = _train(model, inp, digits, epochs=1)
    assert np.isfinite(history[0]["train_loss"])
    assert next(model.parameters()).device.type == "cuda"


# -- 7. the papers' training settings ----------------------------------------------------------


def test_training_defaults_match_papers():
    for arch in ("nap_mnist_cnn", "nap_cifar_cnn"):
        d = TRAINING_DEFAULTS[arch]
        assert (d["optimizer"], d["lr"], d["milestones"], d["gamma"]) == ("adam", 1e-3, [], 1.0)
    nas = TRAINING_DEFAULTS["nas_quickdraw_cnn"]
    assert (nas["optimizer"], nas["lr"], nas["momentum"], nas["batch_size"]) == ("sgd", 0.01, 0.9, 32)
    for arch in ("resnet18_cifar", "vgg11_cifar"):
        d = TRAINING_DEFAULTS[arch]
        got = {k: d[k] for k in ("optimizer", "lr", "momentum", "weight_decay", "milestones", "gamma", "batch_size")}
        assert got == {
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "milestones": [30, 60, 90],
            "gamma": 0.2,
            "batch_size": 64,
        }
    # every entry holds exactly the keyword arguments train_model takes besides epochs and seed
    keys = {"optimizer", "lr", "momentum", "weight_decay", "milestones", "gamma", "batch_size"}
    assert all(set(d) == keys for d in [*TRAINING_DEFAULTS.values(), models._EXTERNAL_TRAINING])


def test_training_settings_fill_nulls_with_the_papers_values():
    s = models.training_settings("local:resnet18_cifar", {"lr": 0.02, "milestones": [], "momentum": None})
    assert s["lr"] == 0.02 and s["milestones"] == [] and s["momentum"] == 0.9 and s["gamma"] == 0.2
    assert models.training_settings("timm:resnet18", {})["lr"] == 1e-4
    with pytest.raises(ValueError, match="unknown local architecture"):
        models.training_settings("local:nope", {})


@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:resnet18"])
def test_pretrained_offline_fails_within_seconds_before_any_download(spec, tmp_path, monkeypatch):
    """Weights not in the cache and their host unreachable: PretrainedWeightsError at once, no download tried."""
    import time

    import timm.models._hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probed = []
    monkeypatch.setattr(models, "_reachable", lambda host: probed.append(host) or False)

    def download(*args, **kwargs):
        raise AssertionError("no download may start when the host cannot be reached")

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    t0 = time.perf_counter()
    with pytest.raises(PretrainedWeightsError, match="cannot be reached") as info:
        build_model(spec, n_classes=10, in_channels=3, pretrained=True)
    assert time.perf_counter() - t0 < 5 and probed == [models._weights_host(*spec.split(":"))]
    assert torch.hub.get_dir() in str(info.value) and "pretrained: false" in str(info.value)


def test_cached_weights_are_found_without_probing_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, url = models._weight_urls("torchvision", "resnet18")
    path = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    assert models._cached_weights("torchvision", "resnet18") is None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert models._cached_weights("torchvision", "resnet18") == path
