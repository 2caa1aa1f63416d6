"""NeurFlow importance: patches, block chains, integrated gradients (against captum) and the adaptive steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from conceptscope import neurflow as nf
from conceptscope.models import build_model
from conceptscope.neurflow.accumulate import _EvalNoParamGrad
from conceptscope.neurflow.affine import _Plan

# -- helpers ---------------------------------------------------------------------------------------


def small_conv(c_in: int = 4, c_out: int = 6, *, bias: bool = True, bn: bool = True, seed: int = 0) -> nn.Module:
    """Conv-BN-ReLU-Conv-ReLU with non-trivial BN statistics, eval mode."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(c_in, 8, 3, padding=1, bias=bias)]
    if bn:
        norm = nn.BatchNorm2d(8)
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.3, 0.3)
        layers.append(norm)
    layers += [nn.ReLU(), nn.Conv2d(8, c_out, 3, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def captum_ig(sub: nn.Module, x: torch.Tensor, target: int, n_steps: int, method: str) -> torch.Tensor:
    ig = IntegratedGradients(lambda z: nf.spatial_mean(sub(z)))
    return ig.attribute(x, target=target, n_steps=n_steps, method=method, internal_batch_size=4 * n_steps)


def assert_rel_close(got: torch.Tensor, ref: torch.Tensor, rel: float = 1e-4) -> None:
    scale = float(ref.abs().max())
    torch.testing.assert_close(got, ref, rtol=rel, atol=rel * scale)


# -- integrated gradients --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["riemann_right", "gausslegendre", "riemann_left", "riemann_middle"])
def test_ig_equals_captum(method):
    model = small_conv()
    x = torch.randn(3, 4, 7, 7, generator=torch.Generator().manual_seed(1))
    ours = nf.integrated_gradients(model, x, target=2, n_steps=16, method=method, batch_size=20)
    assert ours.shape == x.shape and ours.dtype == x.dtype
    assert_rel_close(ours, captum_ig(model, x, 2, 16, method))


def test_trapezoid_is_the_true_rule_captum_scales_it_by_n_minus_1_over_n():
    model = small_conv()
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    n = 12
    ours = nf.integrated_gradients(model, x, target=1, n_steps=n, method="riemann_trapezoid")
    assert_rel_close(ours * (n - 1) / n, captum_ig(model, x, 1, n, "riemann_trapezoid"))


@pytest.mark.parametrize("method", nf.METHODS)
def test_linear_model_ig_is_weight_times_input(method):
    torch.manual_seed(0)
    lin = nn.Linear(5, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    attr = nf.integrated_gradients(lin, x, target=1, n_steps=3, method=method)
    torch.testing.assert_close(attr, lin.weight[1].detach() * x, rtol=1e-12, atol=1e-12)


def test_completeness_error_shrinks_with_steps():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 4)).double()
    x = torch.randn(5, 6, dtype=torch.float64) * 2
    with torch.no_grad():
        gap = f(x)[:, 3] - f(torch.zeros_like(x))[:, 3]
    errors = []
    for n in (2, 8, 32, 128):
        attr = nf.integrated_gradients(f, x, target=3, n_steps=n)
        errors.append(float((attr.sum(1) - gap).abs().max()))
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.02 * errors[0]
    gl = nf.integrated_gradients(f, x, target=3, n_steps=16, method="gausslegendre")
    assert float((gl.sum(1) - gap).abs().max()) < 1e-6  # smooth path: Gauss-Legendre converges fast


def test_nonzero_baseline_completeness():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    x, base = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    attr = nf.integrated_gradients(f, x, target=0, n_steps=40, method="gausslegendre", baselines=base)
    with torch.no_grad():
        gap = f(x)[:, 0] - f(base.expand_as(x))[:, 0]
    torch.testing.assert_close(attr.sum(1), gap, rtol=1e-8, atol=1e-8)


def test_batching_does_not_change_the_result():
    model = small_conv()
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(3))
    ref = nf.integrated_gradients(model, x, target=4, n_steps=10, batch_size=1000)
    for bs in (1, 7, 10, 29):
        torch.testing.assert_close(nf.integrated_gradients(model, x, target=4, n_steps=10, batch_size=bs), ref)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "simpson"}, "method"),
        ({"n_steps": 0}, "n_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"target": 9}, "target"),
        ({"method": "riemann_trapezoid", "n_steps": 1}, "n_steps"),
    ],
)
def test_ig_rejects_bad_arguments(kwargs, match):
    model = small_conv()
    args = {"target": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        nf.integrated_gradients(model, torch.randn(2, 4, 5, 5), **args)


# -- importance ------------------------------------------------------------------------------------

CONCEPTS = {0: [0, 1, 2, 5], 3: [2, 3, 4, 5, 6], 5: [5, 7, 8, 11, 2], 1: [9]}


@pytest.mark.parametrize("method", ["riemann_right", "gausslegendre"])
def test_importance_equals_a_per_target_captum_loop(method):
    sub = small_conv()
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(4)).relu()
    n = 10
    ours = nf.importance(sub, maps, CONCEPTS, n_steps=n, method=method, batch_size=7)
    assert sorted(ours) == sorted(CONCEPTS)
    for a, rows in CONCEPTS.items():
        ref = captum_ig(sub, maps[rows], a, n, method).sum(dim=(2, 3))
        assert ours[a].shape == (len(rows), 4)
        assert_rel_close(ours[a], ref)
        assert nf.core_neurons(ours[a].sum(0), 2).tolist() == nf.core_neurons(ref.sum(0), 2).tolist()


def tanh_first(seed: int = 0) -> nn.Module:
    """A sub-network whose first operation is not affine (evaluated whole, no affine split)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Tanh(), nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 6, 1)).eval()


@pytest.mark.parametrize(
    ("make", "probe", "extra"),
    [(small_conv, 2, 4), (tanh_first, 0, 2)],  # extra rows: the 2-row probe (+ the 2-row check of the affine split)
)
def test_importance_evaluates_each_patch_and_step_once_and_restores_the_module(make, probe, extra):
    sub = make()
    first = sub[1] if isinstance(sub[1], nn.Conv2d) else sub[0]
    first.weight.requires_grad_(False)  # a mixed state, to be restored as it was
    sub.train()
    sub[2].eval()
    rows_seen = []
    hook = sub[probe].register_forward_hook(lambda m, i, o: rows_seen.append(i[0].shape[0]))
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(5))
    out = nf.importance(sub, maps, CONCEPTS, n_steps=6, batch_size=11, progress=True)
    hook.remove()
    union = {p for rows in CONCEPTS.values() for p in rows}
    assert sum(rows_seen) == extra + len(union) * 6  # each (patch, step) point once in a forward pass
    assert max(rows_seen) <= 11
    assert sub.training and not sub[2].training and sub[1].training and sub[3].training
    assert not first.weight.requires_grad and first.bias.requires_grad
    assert all(p.requires_grad for p in sub.parameters() if p is not first.weight)
    # the same attributions as without the hook and in eval mode; and as captum's
    sub.eval()
    again = nf.importance(sub, maps, CONCEPTS, n_steps=6, batch_size=256)
    for a, rows in CONCEPTS.items():
        torch.testing.assert_close(out[a], again[a])
        assert_rel_close(out[a], captum_ig(sub, maps[rows], a, 6, "riemann_right").sum(dim=(2, 3)))


def test_importance_on_vectors_and_duplicates():
    torch.manual_seed(0)
    sub = nn.Linear(5, 3)
    maps = torch.randn(6, 5)
    out = nf.importance(sub, maps, {2: [1, 4, 1]}, n_steps=3)
    expected = sub.weight[2].detach() * maps[[1, 4, 1]]  # linear: IG = weight x input
    torch.testing.assert_close(out[2], expected)


def test_importance_rejects_bad_concepts():
    sub, maps = small_conv(), torch.randn(4, 4, 5, 5)
    with pytest.raises(ValueError, match="out of range"):
        nf.importance(sub, maps, {6: [0]})
    with pytest.raises(ValueError, match="row indices"):
        nf.importance(sub, maps, {0: [4]})
    with pytest.raises(ValueError, match="method"):
        nf.importance(sub, maps, {0: [1]}, method="trapezoid")


def test_core_neurons_order_and_ties():
    scores = torch.tensor([0.5, -3.0, 2.0, -2.0, 0.1, 3.0])
    assert nf.core_neurons(scores, 4).tolist() == [1, 5, 2, 3]
    assert nf.core_neurons(scores, 6).tolist() == [1, 5, 2, 3, 0, 4]
    with pytest.raises(ValueError, match="tau"):
        nf.core_neurons(scores, 7)
    with pytest.raises(ValueError, match="tau"):
        nf.core_neurons(scores, 0)


# -- adaptive steps --------------------------------------------------------------------------------


def distinct_patches(concepts: dict[int, list[int]]) -> int:
    return len({p for rows in concepts.values() for p in rows})


def test_adaptive_stops_at_start_on_a_homogeneous_block_with_gradient_times_input():
    sub = small_conv(bias=False, bn=False)
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(6))
    out, report = nf.adaptive_importance(sub, maps, CONCEPTS, max_steps=50, start_steps=4, tau=3, max_swaps=0)
    assert report["steps"] == dict.fromkeys(CONCEPTS, 4)
    union = distinct_patches(CONCEPTS)
    assert report["evaluations"] == union * 3  # nodes 1/4, 3/4 (the estimate) and 2/4 (the one it is compared with)
    assert report["evaluations_full"] == union * 50
    assert report["evaluations_loop"] == sum(len(r) for r in CONCEPTS.values()) * 50
    for a, rows in CONCEPTS.items():
        x = maps[rows].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(nf.spatial_mean(sub(x))[:, a].sum(), x)
        torch.testing.assert_close(out[a], (grad * x).sum(dim=(2, 3)).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("start", "max_steps", "last", "evaluated"),
    [(4, 50, 32, 3 + 4 + 8 + 16), (6, 24, 24, 3 + 6 + 12), (2, 3, 2, 1), (4, 4, 4, 3)],
)
def test_adaptive_never_settling_ends_at_the_cap_with_the_richardson_estimate(start, max_steps, last, evaluated):
    sub = small_conv()
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(7))
    out, report = nf.adaptive_importance(
        sub, maps, CONCEPTS, max_steps=max_steps, start_steps=start, tau=3, rtol=0.0, max_swaps=0, batch_size=13
    )
    assert report["steps"] == dict.fromkeys(CONCEPTS, last)
    assert report["evaluations"] == distinct_patches(CONCEPTS) * evaluated
    middle = nf.importance(sub, maps, CONCEPTS, n_steps=last // 2, method="riemann_middle")
    right = nf.importance(sub, maps, CONCEPTS, n_steps=last)
    coarse = nf.importance(sub, maps, CONCEPTS, n_steps=last // 2)
    for a in CONCEPTS:
        assert_rel_close(out[a], middle[a], 1e-5)
        assert_rel_close(out[a], 2 * right[a] - coarse[a], 1e-4)  # Richardson of the paper's right sums


def test_adaptive_stop_counts_follow_the_stated_rule():
    """Each target's final count is the first one where the rule holds, found here by plain importance() calls."""
    sub = small_conv()
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(8)).relu()
    tau, rtol, swaps, sequence = 2, 0.05, 0, (4, 8, 16, 32)
    out, report = nf.adaptive_importance(
        sub, maps, CONCEPTS, max_steps=40, start_steps=4, tau=tau, rtol=rtol, max_swaps=swaps
    )
    assert report["sequence"] == list(sequence)

    def estimate(a: int, n: int) -> torch.Tensor:
        return nf.importance(sub, maps, {a: CONCEPTS[a]}, n_steps=n // 2, method="riemann_middle")[a]

    for a in CONCEPTS:
        expected = sequence[-1]
        for n in sequence:
            new, old = estimate(a, n).sum(0), estimate(a, n // 2).sum(0)
            shared = set(nf.core_neurons(new, tau).tolist()) & set(nf.core_neurons(old, tau).tolist())
            if len(shared) >= tau - swaps and float((new - old).abs().max()) <= rtol * float(new.abs().max()):
                expected = n
                break
        assert report["steps"][a] == expected, a
        assert_rel_close(out[a], estimate(a, expected), 1e-5)
    assert len(set(report["steps"].values())) > 1  # the case separates targets
    # rows: the first count evaluates 3/4 of its nodes for every patch; each doubling n/2 for active targets' patches
    expected_rows = distinct_patches(CONCEPTS) * 3
    for n in sequence[1:]:
        active = [a for a, m in report["steps"].items() if m >= n]
        expected_rows += distinct_patches({a: CONCEPTS[a] for a in active}) * (n // 2)
    assert report["evaluations"] == expected_rows


def test_adaptive_swaps_and_tolerance_loosen_the_rule():
    sub = small_conv()
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(9))
    strict = nf.adaptive_importance(sub, maps, CONCEPTS, tau=3, rtol=0.0, max_swaps=0)[1]
    loose = nf.adaptive_importance(sub, maps, CONCEPTS, tau=3, rtol=1.0, max_swaps=2)[1]
    assert set(strict["steps"].values()) == {32}
    assert set(loose["steps"].values()) == {4}  # here every first comparison shares >= 1 of 3 and moves <= 100 %
    assert loose["evaluations"] < strict["evaluations"]


def test_adaptive_rejects_bad_arguments():
    sub, maps = small_conv(), torch.randn(4, 4, 5, 5)
    with pytest.raises(ValueError, match="start_steps"):
        nf.adaptive_importance(sub, maps, {0: [0]}, start_steps=8, max_steps=4)
    with pytest.raises(ValueError, match="start_steps"):
        nf.adaptive_importance(sub, maps, {0: [0]}, start_steps=3)
    with pytest.raises(ValueError, match="tau"):
        nf.adaptive_importance(sub, maps, {0: [0]}, tau=5)
    with pytest.raises(ValueError, match="max_swaps"):
        nf.adaptive_importance(sub, maps, {0: [0]}, tau=3, max_swaps=3)


# -- patches and concepts --------------------------------------------------------------------------


def test_patch_count_boxes_and_order():
    images = torch.rand(2, 3, 32, 32)
    patches, table = nf.make_patches(images)
    assert patches.shape == (2 * 59, 3, 32, 32)
    assert len(table) == 118 and table["patch"].tolist() == list(range(118))
    assert table["image"].tolist() == [0] * 59 + [1] * 59
    assert table.groupby("scale").size().to_dict() == {0.25: 98, 0.5: 18, 1.0: 2}
    for _, rows in table.groupby(["image", "scale"]):
        size = int(rows["height"].iloc[0])
        tops, lefts = sorted(set(rows["top"])), sorted(set(rows["left"]))
        assert tops[0] == 0 and tops[-1] + size == 32 and lefts[0] == 0 and lefts[-1] + size == 32
        assert np.all(np.diff(tops) == size // 2)  # stride = half the crop
        assert len(rows) == len(tops) * len(lefts)


def test_boxes_tile_exactly_for_awkward_sizes():
    _, table = nf.make_patches(torch.rand(1, 1, 30, 45), scales=(0.5, 0.3), overlap=0.25)
    for _, rows in table.groupby("scale"):
        assert rows["top"].min() == 0 and (rows["top"] + rows["height"]).max() == 30
        assert rows["left"].min() == 0 and (rows["left"] + rows["width"]).max() == 45
        h, w = int(rows["height"].iloc[0]), int(rows["width"].iloc[0])
        assert np.all(np.diff(sorted(set(rows["top"]))) <= 0.75 * h + 1)
        assert np.all(np.diff(sorted(set(rows["left"]))) <= 0.75 * w + 1)


def test_full_patch_is_the_image_and_a_known_crop_matches():
    img = torch.zeros(1, 1, 8, 8)
    img[0, 0, :4, :4] = torch.arange(16, dtype=torch.float32).view(4, 4)
    patches, table = nf.make_patches(img, scales=(1.0, 0.5))
    torch.testing.assert_close(patches[0], img[0], rtol=0, atol=0)
    # the top-left half crop is the 4x4 block, upsampled x2 (bilinear, half-pixel centres, edges clamped)
    row = table[(table["scale"] == 0.5) & (table["top"] == 0) & (table["left"] == 0)]
    crop = patches[int(row["patch"].iloc[0]), 0]
    block = img[0, 0, :4, :4]
    src = (torch.arange(8) + 0.5) / 2 - 0.5
    lo = src.floor().clamp(0, 3).long()
    hi = (lo + 1).clamp(max=3)
    frac = (src - lo).clamp(0, 1)
    frac[src < 0] = 0
    rows_i = block[lo] * (1 - frac[:, None]) + block[hi] * frac[:, None]
    expected = rows_i[:, lo] * (1 - frac) + rows_i[:, hi] * frac
    torch.testing.assert_close(crop, expected)
    assert crop[0, 0] == 0 and crop[7, 7] == 15 and crop[0, 7] == 3


def test_make_patches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        nf.make_patches(torch.rand(1, 1, 8, 8), overlap=1.0)
    with pytest.raises(ValueError, match="scales"):
        nf.make_patches(torch.rand(1, 1, 8, 8), scales=(1.5,))
    with pytest.raises(ValueError, match="shape"):
        nf.make_patches(torch.rand(1, 8, 8))


def test_class_patches_and_top_k():
    preds = np.array([3, 1, 3, 3, 0, 3])
    assert nf.class_patches(preds, 3, None).tolist() == [0, 2, 3, 5]
    assert nf.class_patches(preds, 3, 2).tolist() == [0, 2]
    assert nf.class_patches(preds, 7, 5).tolist() == []
    means = np.array([[1.0, 0.0], [3.0, 0.0], [3.0, 1.0], [2.0, 0.0]])
    assert nf.top_k_patches(means, 0, 3).tolist() == [1, 2, 3]
    assert nf.top_k_patches(means, 1, 2).tolist() == [2, 0]
    with pytest.raises(ValueError, match="k must"):
        nf.top_k_patches(means, 0, 5)
    with pytest.raises(ValueError, match="unit"):
        nf.top_k_patches(means, 2, 1)


def test_spatial_mean_shapes():
    x = torch.arange(24.0).view(2, 3, 2, 2)
    torch.testing.assert_close(nf.spatial_mean(x), x.mean(dim=(2, 3)))
    v = torch.randn(2, 5)
    assert nf.spatial_mean(v) is v
    tokens = torch.randn(2, 7, 5)
    torch.testing.assert_close(nf.spatial_mean(tokens), tokens.mean(1))


# -- block chains ----------------------------------------------------------------------------------


def chain_matches_hooks(model: nn.Module, names: list[str], x: torch.Tensor) -> None:
    model.eval()
    chain = nf.BlockChain(model, names)
    modules = dict(model.named_modules())
    seen = {}
    hooks = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.detach().clone())) for n in names
    ]
    with torch.no_grad():
        logits = model(x)
        for h in hooks:
            h.remove()
        z = chain.prefix(x, names[0])
        torch.testing.assert_close(z, seen[names[0]])
        for lower, upper in zip(names, names[1:], strict=False):
            z = chain.between(lower, upper)(z)
            torch.testing.assert_close(z, seen[upper])
        torch.testing.assert_close(z, logits)
        for n in names[1:]:  # prefixes stop at their block
            torch.testing.assert_close(chain.prefix(x, n), seen[n])


def test_block_chain_resnet18_cifar():
    torch.manual_seed(0)
    model, _ = build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    chain_matches_hooks(model, ["layer1", "layer2", "layer3", "layer4", "fc"], torch.randn(3, 1, 32, 32))


def test_block_chain_timm_resnet50():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet50", pretrained=False, num_classes=10)
    names = ["layer2.3", "layer3.5", "layer4.0", "layer4.1", "layer4.2", "fc"]
    chain_matches_hooks(model, names, torch.randn(2, 3, 64, 64))


def test_block_chain_torchvision_googlenet():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, num_classes=10)
    names = ["maxpool2", "inception3a", "inception4e", "inception5a", "inception5b", "fc"]
    chain_matches_hooks(model, names, torch.randn(2, 3, 64, 64))


def test_prefix_runs_nothing_after_its_block():
    model, _ = build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    chain = nf.BlockChain(model, ["layer2", "layer3"])
    calls = []
    model.layer3.register_forward_hook(lambda *a: calls.append("layer3"))
    model.fc.register_forward_hook(lambda *a: calls.append("fc"))
    chain.prefix(torch.randn(1, 1, 32, 32), "layer2")
    assert calls == []


def test_block_chain_errors():
    model, _ = build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="layer9") as err:
        nf.BlockChain(model, ["layer3", "layer9"])
    assert "layer4" in str(err.value)  # valid names are listed
    with pytest.raises(ValueError, match="forward order"):
        nf.BlockChain(model, ["layer4", "layer3"])
    chain = nf.BlockChain(model, ["layer2", "layer3.0.conv1", "layer3.0", "layer3.1"])
    with pytest.raises(ValueError, match="layer3_0_downsample"):  # the skip path bypasses conv1
        chain.between("layer3.0.conv1", "layer3.0")
    with pytest.raises(ValueError, match="not a cut"):
        chain.between("layer3.0.conv1", "layer3.1")
    with pytest.raises(ValueError, match="does not depend"):
        chain.between("layer3.1", "layer2")
    with pytest.raises(ValueError, match="not a probed block"):
        chain.between("layer2", "layer4")
    # a nested pair that is a cut works
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            chain.between("layer3.0", "layer3.1")(chain.prefix(x, "layer3.0")), chain.prefix(x, "layer3.1")
        )


def test_importance_through_a_block_chain_matches_captum():
    torch.manual_seed(0)
    model, _ = build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    model.eval()
    chain = nf.BlockChain(model, ["layer3", "layer4", "fc"])
    with torch.no_grad():
        maps = chain.prefix(torch.rand(6, 1, 32, 32), "layer4")
    sub = chain.between("layer4", "fc")
    concepts = {2: [0, 1, 2, 3], 7: [2, 3, 4, 5]}
    ours = nf.importance(sub, maps, concepts, n_steps=5, method="gausslegendre")
    for a, rows in concepts.items():
        assert_rel_close(ours[a], captum_ig(sub, maps[rows], a, 5, "gausslegendre").sum(dim=(2, 3)))


def test_importance_resnet_block_uses_the_affine_split_and_matches_captum():
    torch.manual_seed(0)
    model, _ = build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    model.eval()
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    chain = nf.BlockChain(model, ["layer3", "layer4"])
    with torch.no_grad():
        maps = chain.prefix(torch.rand(5, 1, 32, 32), "layer3")
    sub = chain.between("layer3", "layer4")
    with _EvalNoParamGrad(sub):
        plan = _Plan(sub, maps)
    # conv1 + bn1 and the downsampling branch of layer4.0 form the affine part; the in-place ReLU gets a copy
    assert plan.lin is not None and len(plan.offset) == 2
    assert "torch.clone" in plan.rest.code
    concepts = {3: [0, 1, 2], 100: [1, 2, 3, 4]}
    ours = nf.importance(sub, maps, concepts, n_steps=4, method="gausslegendre", batch_size=3)
    for a, rows in concepts.items():
        assert_rel_close(ours[a], captum_ig(sub, maps[rows], a, 4, "gausslegendre").sum(dim=(2, 3)))


def test_subnetworks_without_an_affine_start_are_evaluated_whole():
    for sub in (tanh_first(), nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 3, 1))):
        with _EvalNoParamGrad(sub):
            assert _Plan(sub, torch.randn(2, 4, 6, 6)).lin is None
    bn = nn.Sequential(nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU())  # batch statistics: not per row
    with _EvalNoParamGrad(bn):
        assert _Plan(bn, torch.randn(2, 4, 6, 6)).lin is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_importance_on_cuda_matches_cpu():
    sub = small_conv()
    maps = torch.randn(12, 4, 6, 6, generator=torch.Generator().manual_seed(9))
    cpu = nf.importance(sub, maps, CONCEPTS, n_steps=8)
    gpu = nf.importance(sub.cuda(), maps.cuda(), CONCEPTS, n_steps=8)
    for a in CONCEPTS:
        assert gpu[a].device.type == "cuda"
        assert_rel_close(gpu[a].cpu(), cpu[a], 1e-4)
