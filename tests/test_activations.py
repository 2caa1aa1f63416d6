"""The activation cache against independent computations (numpy, manual forwards)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conceptscope import activations as act
from conceptscope import data, models


@pytest.fixture(scope="module")
def digits_small() -> data.ImageSet:
    return data.load_split({"kind": "digits", "subset": {"test": {"first_n": 37}}}, "test", key="datasets.digits")


def _model(arch: str, seed: int = 0) -> tuple[nn.Module, models.InputSpec]:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m, inp = models.build_model(f"local:{arch}", n_classes=10, in_channels=1)
    return m.eval(), inp


def _numpy_stats(a: np.ndarray) -> dict[str, np.ndarray]:
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    return {"mean": flat.mean(2), "max": flat.max(2), "min": flat.min(2), "std": flat.std(2, ddof=0)}


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (2, 7, 1, 1)])
def test_summarize_conv_equals_numpy(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    got = act.summarize(x, "channels_first")
    for k, v in _numpy_stats(x.numpy()).items():
        np.testing.assert_allclose(got[k].numpy(), v, rtol=1e-5, atol=1e-6)
    # the same maps stored channels last (a Swin stage): the same statistics per channel
    nhwc = act.summarize(x.permute(0, 2, 3, 1).contiguous(), "channels_last")
    for k, v in got.items():
        np.testing.assert_allclose(nhwc[k].numpy(), v.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "shape, layout",
    [((96, 56, 56), "channels_first"), ((56, 56, 96), "channels_last"), ((7, 1, 1), "channels_first")]
    + [((197, 192), "tokens"), ((10,), "vector")],
)
def test_layouts_are_detected_from_square_maps(shape, layout):
    assert act.layer_layout(shape) == layout


@pytest.mark.parametrize("shape", [(4, 5, 6), (8, 8, 8)])
def test_an_ambiguous_map_needs_its_layout_set_in_the_config(shape):
    with pytest.raises(act.LayoutError, match=r"blocks\.2: cannot tell .* models\.<id>\.layouts"):
        act.layer_layout(shape, name="blocks.2")
    assert act.layer_layout(shape, "channels_last") == "channels_last"
    with pytest.raises(act.LayoutError, match="needs 2 axes"):
        act.layer_layout(shape, "tokens")


def test_summarize_tokens_and_dense():
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))  # (n, T, C)
    got = act.summarize(x)
    np.testing.assert_allclose(got["mean"].numpy(), x.numpy().mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["std"].numpy(), x.numpy().std(1), rtol=1e-5, atol=1e-6)
    d = torch.randn(3, 9)
    assert set(act.summarize(d)) == {"values"}
    assert torch.equal(act.summarize(d)["values"], d)
    with pytest.raises(ValueError, match="shape"):
        act.summarize(torch.zeros(2, 2, 2, 2, 2))


def test_cache_equals_manual_forward(tmp_path, digits_small):
    """nap_mnist_cnn is an nn.Sequential: slices give each layer's output independently of hooks."""
    model, inp = _model("nap_mnist_cnn")
    names = [n for n, _ in model.named_children()]  # conv1, pool1, conv2, pool2, flatten, dropout, fc
    probed = ["conv1", "pool1", "conv2", "pool2", "flatten", "fc"]
    paths = {n: tmp_path / f"{n}.h5" for n in probed}
    act.cache_activations(model, inp, digits_small, paths, full_layers=["conv2"], batch_size=10, progress=False)
    x = inp.normalize(digits_small.images(np.arange(len(digits_small)), inp.size, inp.channels))
    with torch.no_grad():
        logits = model(x)
        for name in probed:
            ref = model[: names.index(name) + 1](x).numpy()
            cached = act.read_cache(paths[name])
            assert cached.layer == name
            assert cached.unit_shape == ref.shape[1:]
            if ref.ndim == 4:
                assert cached.kind == "conv"
                for k, v in _numpy_stats(ref).items():
                    np.testing.assert_allclose(cached.arrays[k], v, rtol=1e-5, atol=1e-6, err_msg=f"{name} {k}")
            else:
                assert cached.kind == "dense"
                np.testing.assert_allclose(cached.arrays["values"], ref, rtol=1e-5, atol=1e-6)
            if name == "conv2":
                np.testing.assert_allclose(cached.arrays["full"], ref.reshape(len(ref), -1), rtol=1e-5, atol=1e-6)
            else:
                assert "full" not in cached.arrays
            np.testing.assert_array_equal(cached.labels, digits_small.labels)
            np.testing.assert_array_equal(cached.sample_ids, digits_small.sample_ids)
            np.testing.assert_array_equal(cached.predictions, logits.argmax(1).numpy())


def test_hooks_match_manual_resnet_blocks(digits_small):
    model, inp = _model("resnet18_cifar")
    x = inp.normalize(digits_small.images(np.arange(6), inp.size, inp.channels))
    rec = act.record_activations(model, ["layer2", "layer3", "avgpool"], [x[:4], x[4:]], full_layers=["layer3"])
    with torch.no_grad():
        h = model.relu(model.bn1(model.conv1(x)))
        l2 = model.layer2(model.layer1(h))
        l3 = model.layer3(l2)
        pooled = model.avgpool(model.layer4(l3))
    np.testing.assert_allclose(rec["layer2"]["mean"].numpy(), l2.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec["layer3"]["full"].numpy(), l3.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec["avgpool"]["max"].numpy(), pooled.flatten(1).numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_relu_does_not_alter_recorded_conv_output():
    """VGG's ReLU(inplace=True) runs after the conv hook; the record must be the pre-ReLU conv output."""
    model, inp = _model("vgg11_cifar")
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    rec = act.record_activations(model, ["features.0"], [x])
    with torch.no_grad():
        ref = model.features[0](x)
    assert (ref < 0).any()
    np.testing.assert_allclose(rec["features.0"]["min"].numpy(), ref.flatten(2).min(2).values.numpy(), rtol=1e-6)


def test_batch_size_does_not_change_cache(tmp_path, digits_small):
    model, inp = _model("nas_quickdraw_cnn")
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    act.cache_activations(model, inp, digits_small, {"conv2": a}, batch_size=4, progress=False)
    act.cache_activations(model, inp, digits_small, {"conv2": b}, batch_size=64, progress=False)
    ca, cb = act.read_cache(a), act.read_cache(b)
    for k in act.STATISTICS:
        np.testing.assert_allclose(ca.arrays[k], cb.arrays[k], rtol=1e-5, atol=1e-6)


def _all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_unknown_layer_lists_valid_names_and_leaves_no_hooks():
    model, _ = _model("nap_mnist_cnn")
    with pytest.raises(act.UnknownLayerError) as err:
        act.record_activations(model, ["conv1", "layer9", "fc2"], [torch.zeros(1, 1, 28, 28)])
    msg = str(err.value)
    assert "layer9" in msg and "fc2" in msg and "Valid layer names" in msg and "'fc2': closest fc" in msg
    assert "pool2" in err.value.valid and "python -m conceptscope.models" in msg
    assert _all_hooks(model) == 0


def test_hooks_removed_when_forward_raises():
    model, _ = _model("nap_mnist_cnn")
    with pytest.raises(RuntimeError):
        act.record_activations(model, ["conv1", "fc"], [torch.zeros(1, 1, 9, 9)])  # too small for fc
    assert _all_hooks(model) == 0


def test_module_run_twice_is_rejected():
    model, _ = _model("resnet18_cifar")
    with pytest.raises(RuntimeError, match="ran 2 times"):
        act.record_activations(model, ["layer1.0.relu"], [torch.zeros(1, 1, 32, 32)])


def test_killed_pass_leaves_no_complete_looking_file(tmp_path, digits_small):
    model, inp = _model("nap_mnist_cnn")
    calls = {"n": 0}
    base = digits_small.loader

    def flaky(pos, size):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as when a job is killed mid-pass
        return base(pos, size)

    broken = data.ImageSet(**{**digits_small.__dict__, "loader": flaky})
    out = {"conv1": tmp_path / "conv1.h5", "fc": tmp_path / "fc.h5"}
    with pytest.raises(KeyboardInterrupt):
        act.cache_activations(model, inp, broken, out, batch_size=8, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_foreign_cache_file_named_in_error(tmp_path):
    bad = tmp_path / "layer.h5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(act.CacheFileError, match="Delete .*layer.h5"):
        act.read_cache(bad)
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(act.CacheFileError, match="rerun snakemake"):
        act.read_cache(tmp_path / "other.h5")


def test_reading_absent_array_is_an_error(tmp_path, digits_small):
    model, inp = _model("nap_mnist_cnn")
    act.cache_activations(model, inp, digits_small, {"conv1": tmp_path / "c.h5"}, progress=False)
    with pytest.raises(act.CacheFileError, match="full"):
        act.read_cache(tmp_path / "c.h5", keys=["full"])
    assert set(act.read_cache(tmp_path / "c.h5", keys=["mean"]).arrays) == {"mean"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cache_on_cuda_equals_cpu(tmp_path, digits_small):
    model, inp = _model("nap_mnist_cnn")
    act.cache_activations(model, inp, digits_small, {"conv2": tmp_path / "cpu.h5"}, progress=False)
    act.cache_activations(model.cuda(), inp, digits_small, {"conv2": tmp_path / "gpu.h5"}, progress=False)
    a, b = act.read_cache(tmp_path / "cpu.h5"), act.read_cache(tmp_path / "gpu.h5")
    np.testing.assert_allclose(a.arrays["mean"], b.arrays["mean"], rtol=1e-4, atol=1e-5)


def test_dense_full_map_is_its_values_stored_once(tmp_path, digits_small):
    model, inp = _model("nap_mnist_cnn")
    act.cache_activations(model, inp, digits_small, {"fc": tmp_path / "fc.h5"}, full_layers=["fc"], progress=False)
    import h5py

    with h5py.File(tmp_path / "fc.h5") as f:
        assert "full" not in f and "values" in f
    cached = act.read_cache(tmp_path / "fc.h5", keys=["full"])
    np.testing.assert_array_equal(cached.arrays["full"], act.read_cache(tmp_path / "fc.h5").arrays["values"])


def test_dense_output_changed_in_place_later_is_stored_as_the_modules_own_output():
    """Linear(4, 3) -> ReLU(inplace=True): the Linear's record keeps its negatives (it was stored post-ReLU)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(inplace=True)).eval()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    rec = act.record_activations(model, ["0", "1"], [x])
    with torch.no_grad():
        ref = model[0](x)
    assert (ref < 0).any()
    np.testing.assert_array_equal(rec["0"]["values"].numpy(), ref.numpy())
    np.testing.assert_array_equal(rec["1"]["values"].numpy(), ref.clamp_min(0).numpy())


def test_vgg11_classifier_linear_and_its_inplace_relu_are_stored_apart():
    """torchvision VGG-11: classifier.0 (Linear) is followed by ReLU(inplace=True) as classifier.1."""
    from torchvision.models import vgg11

    torch.manual_seed(0)
    model = vgg11(num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    rec = act.record_activations(model, ["classifier.0", "classifier.1"], [x])
    with torch.no_grad():
        ref = model.classifier[0](torch.flatten(model.avgpool(model.features(x)), 1))
    np.testing.assert_allclose(rec["classifier.0"]["values"].numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert (rec["classifier.0"]["values"] < 0).any() and not (rec["classifier.1"]["values"] < 0).any()


@pytest.mark.parametrize("key", ["mean", "max"])
def test_non_finite_cache_data_is_refused_naming_file_layer_and_fix(tmp_path, digits_small, key):
    import h5py

    model, inp = _model("nap_mnist_cnn")
    path = tmp_path / "c.h5"
    act.cache_activations(model, inp, digits_small, {"conv1": path}, progress=False)
    with h5py.File(path, "a") as f:
        a = f[key][()]
        a.flat[:500] = np.nan
        a.flat[-1] = np.inf
        f[key][...] = a
    with pytest.raises(act.CacheFileError, match=rf"c\.h5: layer conv1: 501 non-finite values .* in '{key}'.*delete"):
        act.read_cache(path)
    other = "max" if key == "mean" else "mean"
    assert act.read_cache(path, keys=[other]).arrays[other].shape[0] == len(digits_small)


def test_a_channels_last_stage_is_cached_per_channel_with_channels_first_full_maps(tmp_path, digits_small):
    """A Swin-like stage outputs (n, H, W, C): the cache holds C units (not W), and `full` is channels first."""

    class ChannelsLast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 5, 3, padding=1)
            self.stage = nn.Identity()
            self.head = nn.Linear(5, 10)

        def forward(self, x):
            h = self.stage(self.conv(x).permute(0, 2, 3, 1))  # (n, 8, 8, 5)
            return self.head(h.mean((1, 2)))

    torch.manual_seed(0)
    model = ChannelsLast().eval()
    inp = models.InputSpec((8, 8), 1)
    act.cache_activations(model, inp, digits_small, {"stage": tmp_path / "s.h5"}, full_layers=["stage"], progress=False)
    c = act.read_cache(tmp_path / "s.h5")
    assert c.layout == "channels_last" and c.kind == "conv" and c.unit_shape == (5, 8, 8) and c.n_units == 5
    x = inp.normalize(digits_small.images(np.arange(len(digits_small)), (8, 8), 1))
    with torch.no_grad():
        ref = model.conv(x)  # (n, 5, 8, 8), channels first
    np.testing.assert_allclose(c.arrays["mean"], ref.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.arrays["full"], ref.flatten(1).numpy(), rtol=1e-5, atol=1e-6)


def test_swin_stages_are_cached_per_channel_and_vit_blocks_per_token_channel(tmp_path, digits_small):
    """timm Swin stages output (n, H, W, C) and ViT blocks (n, T, C): the cache holds C units for both."""
    four = digits_small.subset(np.arange(4))
    for spec, layers, want in [
        ("timm:swin_tiny_patch4_window7_224", ["layers.0", "layers.3"], {"layers.0": 96, "layers.3": 768}),
        ("timm:vit_tiny_patch16_224", ["blocks.11"], {"blocks.11": 192}),
    ]:
        torch.manual_seed(0)
        model, inp = models.build_model(spec, n_classes=10, in_channels=1)
        paths = {layer: tmp_path / f"{layer}.h5" for layer in layers}
        act.cache_activations(model.eval(), inp, four, paths, batch_size=4, progress=False)
        x = inp.normalize(four.images(np.arange(4), inp.size, inp.channels))
        for layer in layers:
            c = act.read_cache(paths[layer])
            assert c.arrays["mean"].shape == (4, want[layer]) and c.n_units == want[layer], (spec, layer)
            module = dict(model.named_modules())[layer]
            out = {}
            h = module.register_forward_hook(lambda _m, _i, o, out=out: out.setdefault("o", o.detach()))
            with torch.no_grad():
                model(x)
            h.remove()
            axes = (1, 2) if c.layout == "channels_last" else (1,)
            np.testing.assert_allclose(c.arrays["mean"], out["o"].mean(axes).numpy(), rtol=1e-4, atol=1e-5)
