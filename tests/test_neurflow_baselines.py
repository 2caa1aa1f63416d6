"""NeurFlow baselines (Table 3, Table 4): set F1, NeuronMCT-style gates, convolution pairs, L2 weight ranking."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from conceptscope.neurflow.baselines import (
    conv_pairs,
    critical_neurons,
    l2_weight_neurons,
    neuronmct_gates,
    set_f1,
)

# -- set_f1 ----------------------------------------------------------------------------------------


def test_set_f1_hand_made_sets():
    assert set_f1([1, 2, 3], [3, 2, 1]) == 1.0
    assert set_f1([1, 2, 3], [4, 5]) == 0.0
    assert set_f1({1, 2, 3}, np.array([2, 3, 4])) == pytest.approx(2 / 3)
    assert set_f1(torch.tensor([0, 7]), [7]) == pytest.approx(2 * 1 / 3)
    assert set_f1([], [5]) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [([], [], "two empty sets"), ([1, 1], [1], "repeat"), ([1], [[1]], "1-D"), ([0.5], [1], "integer")],
)
def test_set_f1_rejects(a, b, match):
    with pytest.raises(ValueError, match=match):
        set_f1(a, b)


# -- NeuronMCT gates -------------------------------------------------------------------------------

RELEVANT = (2, 5)


def linear_sub() -> nn.Module:
    """1x1 conv, 8 -> 3 channels; target 1 = 3 * (channel 2 + channel 5), the other channels weigh zero."""
    conv = nn.Conv2d(8, 3, 1)
    with torch.no_grad():
        conv.weight.normal_(generator=torch.Generator().manual_seed(0))
        conv.weight[1] = 0.0
        conv.weight[1, list(RELEVANT)] = 3.0
        conv.bias.zero_()
    return conv.train()


def concept_maps(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 8, 4, 4, generator=torch.Generator().manual_seed(seed)) + 0.5


def test_gates_keep_exactly_the_channels_the_target_uses():
    sub, maps = linear_sub(), concept_maps()
    before = maps.clone()
    gates = neuronmct_gates(sub, maps, 1, steps=150)
    assert gates.shape == (8,) and gates.dtype == np.float64
    assert set(critical_neurons(gates, 2).tolist()) == set(RELEVANT)
    others = np.delete(gates, list(RELEVANT))
    # with the gates in the forward pass the fidelity term holds the used channels near 1 while the l1
    # term drives the unused ones to 0; were the gates not applied, all gates would fall alike
    assert gates[list(RELEVANT)].min() > 0.9 and others.max() < 0.05
    torch.testing.assert_close(maps, before, rtol=0, atol=0)
    assert sub.training and all(p.requires_grad for p in sub.parameters())


def test_the_gates_are_applied_in_the_forward_pass():
    sub, maps = linear_sub(), concept_maps()
    inputs: list[torch.Tensor] = []
    handle = sub.register_forward_pre_hook(lambda _m, args: inputs.append(args[0].detach().clone()))
    try:
        gates = neuronmct_gates(sub, maps, 1, steps=150)
    finally:
        handle.remove()
    # first call: the layout probe (2 maps), then the unmasked reference, then one gated pass per step
    assert len(inputs) == 2 + 150
    first, last = inputs[2], inputs[-1]
    ratio = (first / maps).mean(dim=(0, 2, 3))
    assert torch.allclose(ratio, ratio.new_full((8,), float(torch.sigmoid(torch.tensor(3.0)))), atol=0.01)
    # the last pass used the gates of the step before the last: unused channels almost shut, used ones open
    last_ratio = (last / maps).mean(dim=(0, 2, 3)).numpy()
    assert np.all(np.abs(last_ratio - gates) < 0.1)
    assert last_ratio[list(RELEVANT)].min() > 0.8 and np.delete(last_ratio, list(RELEVANT)).max() < 0.2
    # and the target's value through the learned gates matches the unmasked one
    with torch.no_grad():
        g = torch.as_tensor(gates, dtype=maps.dtype).view(1, 8, 1, 1)
        gated, plain = sub(maps * g)[:, 1].mean((1, 2)), sub(maps)[:, 1].mean((1, 2))
    assert torch.allclose(gated, plain, rtol=0.1)


def test_gates_are_reproducible_and_leave_the_global_rng_alone():
    sub, maps = linear_sub(), concept_maps()
    state = torch.random.get_rng_state()
    a = neuronmct_gates(sub, maps, 0, steps=20, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = neuronmct_gates(sub, maps, 0, steps=20, seed=3)
    c = neuronmct_gates(sub, maps, 0, steps=20, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_gates_do_not_depend_on_the_batch_size_or_the_layout():
    sub, maps = linear_sub(), concept_maps(n=7)
    ref = neuronmct_gates(sub, maps, 1, steps=30, batch_size=256)
    np.testing.assert_allclose(neuronmct_gates(sub, maps, 1, steps=30, batch_size=3), ref, atol=1e-5)

    class Last(nn.Module):  # takes (n, h, w, C), returns (n, h, w, C')
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return sub(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    last = neuronmct_gates(Last(), maps.permute(0, 2, 3, 1), 1, steps=30, lower_layout="channels_last")
    np.testing.assert_allclose(last, ref, atol=1e-5)


def test_gates_leave_maps_alone_under_an_inplace_first_operation():
    sub = nn.Sequential(nn.ReLU(inplace=True), linear_sub())
    maps = concept_maps() - 0.7  # some negatives for the in-place ReLU to clip
    before = maps.clone()
    gates = neuronmct_gates(sub, maps, 1, steps=5)
    torch.testing.assert_close(maps, before, rtol=0, atol=0)
    assert np.isfinite(gates).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": 3}, "out of range"),
        ({"maps": torch.zeros(4, 8, 4, 4)}, "zero on every"),
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"l1": -1.0}, "l1"),
        ({"maps": torch.zeros(0, 8, 3, 3)}, "non-empty"),
    ],
)
def test_gates_reject(kwargs, match):
    args = {"maps": concept_maps(), "target": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        neuronmct_gates(linear_sub(), args.pop("maps"), args.pop("target"), **args)


def test_critical_neurons_order_and_ties():
    np.testing.assert_array_equal(critical_neurons([0.2, 0.9, 0.5, 0.9, 0.1], 3), [1, 3, 2])
    with pytest.raises(ValueError, match="tau"):
        critical_neurons([0.2, 0.9], 3)


# -- convolution pairs -----------------------------------------------------------------------------


def test_conv_pairs_resnet18_layer4():
    model = torchvision.models.resnet18(weights=None)
    assert conv_pairs(model, "layer4") == [
        ("layer4.0.conv1", "layer4.0.conv2"),
        ("layer4.1.conv1", "layer4.1.conv2"),
    ]
    assert model.training  # traced in eval mode, mode restored


def test_conv_pairs_plain_stack_and_errors():
    features = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 6, 1)
    )
    model = nn.Sequential(
        OrderedDict(features=features, pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(6, 2))
    )
    assert conv_pairs(model, "features") == [("features.0", "features.2"), ("features.2", "features.5")]
    with pytest.raises(ValueError, match="'nope'"):
        conv_pairs(model, "nope")
    with pytest.raises(ValueError, match="'fc' has no pair"):
        conv_pairs(model, "fc")
    grouped = nn.Sequential(OrderedDict(features=nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, groups=2))))
    with pytest.raises(ValueError, match="'features' has no pair"):
        conv_pairs(grouped, "features")


# -- L2 weight ranking -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 9, 3, 3), (5, 9)])
def test_l2_weight_neurons_equals_a_brute_force_ranking(shape):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    for target in range(shape[0]):
        norms = [float(np.linalg.norm(w[target, s].numpy().ravel())) for s in range(shape[1])]
        brute = sorted(range(shape[1]), key=lambda s: (-norms[s], s))[:4]
        np.testing.assert_array_equal(l2_weight_neurons(w, target, 4), brute)
    tie = np.zeros((1, 4, 2, 2))
    tie[0, [1, 3]] = 1.0
    np.testing.assert_array_equal(l2_weight_neurons(tie, 0, 3), [1, 3, 0])
    with pytest.raises(ValueError, match="target"):
        l2_weight_neurons(w, shape[0], 2)
    with pytest.raises(ValueError, match="tau"):
        l2_weight_neurons(w, 0, 10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gates_on_cuda_match_cpu():
    cpu = neuronmct_gates(linear_sub(), concept_maps(), 1, steps=40)
    gpu = neuronmct_gates(linear_sub().cuda(), concept_maps().cuda(), 1, steps=40)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
