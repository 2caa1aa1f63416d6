"""No public NeurFlow function modifies its arguments (issue #11), even for modules that write into their input.

``importance(Sequential(ReLU(inplace=True), Conv2d(2, 3, 3, padding=1)), maps, ...)`` used to zero the
negatives of the caller's ``maps`` and then fail with a generic PyTorch error; it now leaves ``maps`` as it
was and gives the attributions of the same network with an out-of-place ReLU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conceptscope import neurflow as nf

CONCEPTS = {0: [0, 1, 3], 2: [1, 2]}


def inplace_sub() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(2, 3, 3, padding=1))


def outofplace(sub: nn.Module) -> nn.Module:
    return nn.Sequential(nn.ReLU(), sub[1])


class InplaceNet(nn.Module):
    """A model whose first operation writes into its input: ReLU(inplace) -> conv -> ReLU(inplace) -> conv -> fc."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.act0 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.act1(self.conv1(self.act0(x)))).mean(dim=(2, 3)))


@pytest.fixture
def maps() -> torch.Tensor:
    return torch.randn(4, 2, 5, 5, generator=torch.Generator().manual_seed(2))


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def test_importance_of_an_inplace_first_module_leaves_maps_and_equals_the_out_of_place_one(maps):
    before = maps.clone()
    sub = inplace_sub()
    got = nf.importance(sub, maps, CONCEPTS, n_steps=4)
    assert torch.equal(maps, before)
    want = nf.importance(outofplace(sub), maps, CONCEPTS, n_steps=4)
    for a in CONCEPTS:
        torch.testing.assert_close(got[a], want[a])
    adaptive, _ = nf.adaptive_importance(sub, maps, CONCEPTS, max_steps=8, tau=2, max_swaps=0)
    assert torch.equal(maps, before)
    again, _ = nf.adaptive_importance(outofplace(sub), maps, CONCEPTS, max_steps=8, tau=2, max_swaps=0)
    for a in CONCEPTS:
        torch.testing.assert_close(adaptive[a], again[a])
    base = torch.full_like(maps, -0.1)
    base_before = base.clone()
    ig = nf.integrated_gradients(sub, maps, target=1, n_steps=4, baselines=base)
    assert torch.equal(maps, before) and torch.equal(base, base_before)
    torch.testing.assert_close(ig, nf.integrated_gradients(outofplace(sub), maps, target=1, n_steps=4, baselines=base))


def test_tensor_helpers_leave_their_arguments(maps):
    before = maps.clone()
    nf.spatial_mean(maps)
    scores = maps[:, 0, 0, 0].clone()
    nf.core_neurons(scores, 2)
    patches, _ = nf.make_patches(maps)
    assert torch.equal(maps, before) and torch.equal(scores, maps[:, 0, 0, 0])
    patches[:] = 0.0  # the patches are a new tensor, not a view of the images
    assert torch.equal(maps, before)


def test_block_chain_pieces_leave_their_inputs(images):
    before = images.clone()
    net = InplaceNet().eval()
    chain = nf.BlockChain(net, ["conv1", "conv2", "fc"])
    with torch.no_grad():
        z = chain.prefix(images, "conv1")
        assert torch.equal(images, before)
        z_before = z.clone()
        y = chain.between("conv1", "conv2")(z)
        assert torch.equal(z, z_before)
        torch.testing.assert_close(chain.between("conv2", "fc")(y), net(images.clone()))


def test_model_level_functions_leave_images_model_modes_and_flags(images):
    before = images.clone()
    net = InplaceNet()
    net.train()
    net.conv1.weight.requires_grad_(False)
    layers = ["fc", "conv2", "conv1"]
    means = nf.concept_means(net.eval(), images, layers)
    assert torch.equal(images, before)
    net.train()
    res = nf.build_circuit(net, images, 1, layers, settings={"tau": 2, "k": 4, "n_steps": 2, "top_patches": 2})
    assert torch.equal(images, before)
    # the circuit's concepts are those of the uncorrupted patches
    patches, _ = nf.make_patches(images)
    with torch.no_grad():
        logits = net.eval()(patches.clone())
    assert res.levels[0]["concepts"][1] == torch.argsort(logits[:, 1], descending=True, stable=True)[:4].tolist()
    net.train()
    circuit = res.circuit | {"model": "net"}
    table = nf.masking_table(net, images, circuit, n_random=2)
    assert torch.equal(images, before) and len(table) > 0
    nf.masking_effect(net, images, 1, "conv2", [[0, 1]], n_random=2)
    assert torch.equal(images, before)
    assert net.training and all(m.training for m in net.modules())
    assert not net.conv1.weight.requires_grad and net.conv1.bias.requires_grad and net.fc.weight.requires_grad
    assert set(means) == set(layers)


def test_array_functions_leave_their_arrays():
    rng = np.random.default_rng(0)
    vectors, attributions = rng.random((6, 4)), rng.normal(size=(6, 4))
    acts, ref = rng.random((5, 4)), rng.random(4) + 0.1
    copies = [a.copy() for a in (vectors, attributions, acts, ref)]
    sem = nf.semantic_groups("l", 0, np.arange(6), vectors, attributions, [1, 2], k_range=(2, 3))
    nf.edge_weights(attributions, np.array([0, 2]), [0, 3])
    nf.neuron_groups("l", sem, k_range=(2, 2))
    nf.debugging_metric(acts, [0, 2], ref)
    nf.rank_patches(np.arange(4), ref, 2)
    nf.best_ward_clusters(vectors, k_range=(2, 3))
    for a, b in zip((vectors, attributions, acts, ref), copies, strict=True):
        np.testing.assert_array_equal(a, b)
