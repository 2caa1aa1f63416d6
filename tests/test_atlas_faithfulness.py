"""Concept faithfulness by direction ablation: projections against their definition, drops against linear algebra."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from conceptscope.atlas.directions import (
    NAP_SPACES,
    nap_direction,
    nmf_direction,
    orthonormalize,
    project_out,
    project_out_subspace,
    random_basis,
    unit_basis,
)
from conceptscope.atlas.faithfulness import ablation_drop, faithfulness

C, H, W = 3, 4, 4
F = C * H * W


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _acts(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, C, H, W, generator=_gen(seed), dtype=torch.float64)


def _orthogonal_to(d: torch.Tensor, seed: int) -> torch.Tensor:
    """A random vector orthogonal to ``d`` (same size)."""
    v = torch.randn(d.shape, generator=_gen(seed), dtype=torch.float64)
    u = d / d.norm()
    return v - (v @ u) * u


class _Linear(nn.Module):
    """logits = fc(flatten(feat(x))), with ``feat`` an identity hook point on (n, C, H, W) inputs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, perm: bool = False) -> None:
        super().__init__()
        self.feat = nn.Identity()
        self.perm = perm  # feed `feat` a channels-last (n, H, W, C) map, flatten channels first after it
        self.fc = nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.copy_(bias if bias is not None else torch.zeros(weight.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.perm:
            return self.fc(self.feat(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).flatten(1))
        return self.fc(self.feat(x).flatten(1))


# --------------------------------------------------------------------------- projections


def test_project_out_leaves_orthogonal_components_unchanged():
    acts = _acts()
    d = torch.randn(F, generator=_gen(1), dtype=torch.float64) * 3.0  # any norm: only the direction counts
    u = d / d.norm()
    proj = project_out(acts, d)
    assert proj.shape == acts.shape and proj.dtype == acts.dtype
    flat, pflat = acts.reshape(len(acts), -1), proj.reshape(len(acts), -1)
    # acts - proj lies along d, proj has no component along d
    removed = flat - pflat
    for seed in range(5):
        v = _orthogonal_to(d, seed + 10)
        torch.testing.assert_close(removed @ v, torch.zeros(len(acts), dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(pflat @ v, flat @ v, atol=1e-12, rtol=0)
    torch.testing.assert_close(pflat @ u, torch.zeros(len(acts), dtype=torch.float64), atol=1e-12, rtol=0)
    # exactly the component along d was removed
    torch.testing.assert_close(removed, (flat @ u)[:, None] * u[None, :])
    # idempotent
    torch.testing.assert_close(project_out(proj, d), proj)
    # float32 acts stay float32, same values up to rounding
    p32 = project_out(acts.float(), d)
    assert p32.dtype == torch.float32
    torch.testing.assert_close(p32.double(), proj, atol=1e-5, rtol=1e-5)


def test_channel_projection_equals_a_loop_over_positions():
    acts = _acts()
    d = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    u = d / d.norm()
    proj = project_out(acts, d, "channel")
    expected = acts.clone()
    for i in range(len(acts)):
        for h in range(H):
            for w in range(W):
                a = acts[i, :, h, w]
                expected[i, :, h, w] = a - (a @ u) * u
    torch.testing.assert_close(proj, expected)
    # the same on a channels-last copy with channel_axis=-1
    last = project_out(acts.permute(0, 2, 3, 1), d, "channel", channel_axis=-1)
    torch.testing.assert_close(last, expected.permute(0, 2, 3, 1))
    # a dense (n, C) output: channel space is the flat space
    torch.testing.assert_close(project_out(acts[:, :, 0, 0], d, "channel"), project_out(acts[:, :, 0, 0], d))


def test_subspace_equals_sequential_projections_and_unit_axes_zero_channels():
    acts = _acts()
    B = orthonormalize(torch.randn(3, F, generator=_gen(2), dtype=torch.float64))
    torch.testing.assert_close(B @ B.T, torch.eye(3, dtype=torch.float64))
    sequential = acts
    for b in B:
        sequential = project_out(sequential, b)
    torch.testing.assert_close(project_out_subspace(acts, B), sequential)

    axes = unit_basis([2, 0], C)
    assert axes.shape == (2, C)
    zeroed = acts.clone()
    zeroed[:, [0, 2]] = 0.0
    torch.testing.assert_close(project_out_subspace(acts, axes, "channel"), zeroed)
    # the span counts, not the vectors: orthonormalizing a skewed basis of the same plane gives the same projection
    skew = torch.stack([B[0] + B[1], 2.0 * B[1] - B[0]])
    torch.testing.assert_close(project_out_subspace(acts, orthonormalize(skew)), project_out_subspace(acts, B[:2]))


def test_projection_errors():
    acts = _acts()
    with pytest.raises(ValueError, match="zero norm"):
        project_out(acts, torch.zeros(F))
    with pytest.raises(ValueError, match="has 5 features but acts .* 48"):
        project_out(acts, torch.ones(5))
    with pytest.raises(ValueError, match="3 channels on axis 1"):
        project_out(acts, torch.ones(F), "channel")
    with pytest.raises(ValueError, match="space must be one of"):
        project_out(acts, torch.ones(F), "pixel")
    with pytest.raises(ValueError, match="channel_axis"):
        project_out(acts, torch.ones(C), "channel", channel_axis=0)
    with pytest.raises(ValueError, match="not orthonormal"):
        project_out_subspace(acts, torch.ones(2, F))
    with pytest.raises(ValueError, match="linearly dependent"):
        orthonormalize(torch.stack([torch.ones(F), 2.0 * torch.ones(F)]))
    with pytest.raises(ValueError, match="zero norm"):
        orthonormalize(torch.stack([torch.ones(F), torch.zeros(F)]))
    with pytest.raises(TypeError, match="floating-point"):
        project_out(acts.long(), torch.ones(F))


# --------------------------------------------------------------------------- concept -> basis


def test_concept_helpers():
    centroid = np.array([0.0, 3.0, 4.0])
    torch.testing.assert_close(nap_direction(centroid), torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64))
    # the pairs: mean half of mean_std, max half of min_max
    torch.testing.assert_close(
        nap_direction([3.0, 4.0, 9.0, 9.0], method="mean_std"), torch.tensor([0.6, 0.8]).double()
    )
    torch.testing.assert_close(nap_direction([9.0, 9.0, 0.0, 2.0], method="min_max"), torch.tensor([0.0, 1.0]).double())
    # scale maps normalized features back to raw units
    torch.testing.assert_close(
        nap_direction([1.0, 1.0], scale=[3.0, 4.0]), torch.tensor([0.6, 0.8], dtype=torch.float64)
    )
    assert NAP_SPACES["mean"] == "channel" and NAP_SPACES["none"] == "flat"
    with pytest.raises(ValueError, match="zero norm"):
        nap_direction([0.0, 0.0, 1.0, 1.0], method="mean_std")
    with pytest.raises(ValueError, match="2C features"):
        nap_direction([1.0, 2.0, 3.0], method="min_max")
    with pytest.raises(ValueError, match="method must be one of"):
        nap_direction([1.0], method="median")

    torch.testing.assert_close(nmf_direction(torch.tensor([0.0, 2.0])), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="zero norm"):
        nmf_direction(np.zeros(4))

    torch.testing.assert_close(unit_basis(np.array([1]), 3), torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64))
    for units, match in (([], "at least one"), ([0, 0], "distinct"), ([3], "outside"), ([-1], "outside")):
        with pytest.raises(ValueError, match=match):
            unit_basis(units, 3)


def test_random_basis_is_orthonormal_and_seeded():
    B = random_basis(3, F, _gen(5))
    torch.testing.assert_close(B @ B.T, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(random_basis(3, F, _gen(5)), B)
    assert not torch.allclose(random_basis(3, F, _gen(6)), B)
    A = random_basis(2, C, _gen(5), "axes")
    assert sorted(A.sum(0).tolist()) == [0.0, 1.0, 1.0] and (A.sum(1) == 1).all()


# --------------------------------------------------------------------------- ablation


def test_ablation_drop_equals_the_analytic_drop_of_a_linear_model():
    weight = torch.randn(4, F, generator=_gen(3), dtype=torch.float64)
    model = _Linear(weight, torch.randn(4, generator=_gen(4), dtype=torch.float64))
    x = _acts(7, seed=8)
    d = torch.randn(F, generator=_gen(9), dtype=torch.float64)
    u = d / d.norm()
    flat = x.reshape(len(x), -1)
    # clean - ablated = w_c . (component of x along u) = (x . u)(w_c . u); the bias cancels
    expected = (flat @ u) * (weight[2] @ u)
    torch.testing.assert_close(ablation_drop(model, "feat", x, 2, d, batch_size=3), expected)
    # per-image classes, and batching does not change the result
    classes = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    per_image = (flat @ u) * (weight[classes] @ u)
    for bs in (1, 2, 7, 100):
        torch.testing.assert_close(ablation_drop(model, "feat", x, classes, d, batch_size=bs), per_image)
    # channel space: at every position the channel vector loses its component along c
    c = torch.tensor([2.0, 0.0, -1.0], dtype=torch.float64)
    cu = c / c.norm()
    removed = torch.einsum("nchw,c,k->nkhw", x, cu, cu).reshape(len(x), -1)
    torch.testing.assert_close(ablation_drop(model, "feat", x, 1, c, "channel", batch_size=4), removed @ weight[1])
    # a unit set in channel space is zeroing those channels
    zeroed = x.clone()
    zeroed[:, 1] = 0.0
    torch.testing.assert_close(
        ablation_drop(model, "feat", x, 0, unit_basis([1], C), "channel", batch_size=4),
        (flat - zeroed.reshape(len(x), -1)) @ weight[0],
    )


def test_channels_last_layer_is_ablated_in_the_cache_order():
    """A channels-last output is flattened channels first (as the cache's ``full``); channel space is its last axis."""
    weight = torch.randn(2, F, generator=_gen(3), dtype=torch.float64)
    model = _Linear(weight, perm=True)
    x = _acts(5, seed=1)
    d = torch.randn(F, generator=_gen(2), dtype=torch.float64)
    u = d / d.norm()
    flat = x.reshape(len(x), -1)
    torch.testing.assert_close(ablation_drop(model, "feat", x, 0, d, batch_size=2), (flat @ u) * (weight[0] @ u))
    zeroed = x.clone()
    zeroed[:, 2] = 0.0
    torch.testing.assert_close(
        ablation_drop(model, "feat", x, 1, unit_basis([2], C), "channel", batch_size=2, layout="channels_last"),
        (flat - zeroed.reshape(len(x), -1)) @ weight[1],
    )


def test_hooks_removed_and_modes_restored_even_on_error():
    model = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(C, 5, 3, padding=1), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1)),
    )
    model.add_module("flat", nn.Flatten())
    model.add_module("drop", nn.Dropout(0.5))
    model.add_module("fc", nn.Linear(5, 3))
    model.train()
    x = torch.randn(4, C, H, W, generator=_gen(0))
    with torch.no_grad():
        model.eval()
        before = model(x)
        model.train()
    drop = ablation_drop(model, "relu", x, 1, torch.ones(5), "channel", batch_size=3)
    assert drop.shape == (4,) and drop.dtype == torch.float64 and drop.device.type == "cpu"
    assert model.training and model.drop.training  # the modes are restored
    assert all(not m._forward_hooks for m in model.modules())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)
    model.train()
    with pytest.raises(ValueError, match="has 4 features but layer 'relu' output"):
        ablation_drop(model, "relu", x, 1, torch.ones(4), "channel", batch_size=3)
    assert all(not m._forward_hooks for m in model.modules()) and model.training


def test_bad_arguments_raise():
    model = _Linear(torch.eye(3, F, dtype=torch.float64))
    x = _acts(3)
    d = torch.ones(F)
    with pytest.raises(ValueError, match=r"no layer 'fetaure'.*closest: feat.*module paths: feat, fc"):
        ablation_drop(model, "fetaure", x, 0, d, batch_size=2)
    with pytest.raises(ValueError, match="no layer ''"):
        ablation_drop(model, "", x, 0, d, batch_size=2)
    with pytest.raises(ValueError, match="zero norm"):
        ablation_drop(model, "feat", x, 0, torch.zeros(F), batch_size=2)
    with pytest.raises(ValueError, match="has 3 features but layer 'feat'"):
        ablation_drop(model, "feat", x, 0, torch.ones(3), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        ablation_drop(model, "feat", x, 0, d, batch_size=0)
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        ablation_drop(model, "feat", x, 3, d, batch_size=2)
    with pytest.raises(ValueError, match="class_index"):
        ablation_drop(model, "feat", x, torch.tensor([0, 1]), d, batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        ablation_drop(model, "feat", x[:0], 0, d, batch_size=2)
    with pytest.raises(ValueError, match="n_random"):
        faithfulness(model, "feat", x, 0, d, n_random=-1, seed=0, batch_size=2)
    with pytest.raises(ValueError, match="null"):
        faithfulness(model, "feat", x, 0, d, n_random=1, seed=0, batch_size=2, null="uniform")
    model.spare = nn.Identity()  # a module the forward never calls
    with pytest.raises(RuntimeError, match="never ran"):
        ablation_drop(model, "spare", x, 0, d, batch_size=2)
    assert all(not m._forward_hooks for m in model.modules())


def _reading_model(seed: int = 0) -> tuple[_Linear, torch.Tensor, torch.Tensor]:
    """A linear model whose class-0 logit reads direction w, and images x = 3 w + noise along w."""
    w = torch.randn(F, generator=_gen(seed), dtype=torch.float64)
    w = w / w.norm()
    weight = torch.stack([w, torch.randn(F, generator=_gen(seed + 1), dtype=torch.float64)])
    noise = 0.3 * torch.randn(12, F, generator=_gen(seed + 2), dtype=torch.float64)
    x = (3.0 * w + noise).reshape(12, C, H, W)
    return _Linear(weight), x, w


def test_faithfulness_is_seeded_and_separates_the_read_direction():
    model, x, w = _reading_model()
    res = faithfulness(model, "feat", x, 0, w, n_random=49, seed=7, batch_size=5)
    assert res["p_value"] == pytest.approx(1 / 50)
    assert res["observed"] > res["random_q95"] > 0 and res["ratio"] > 5
    torch.testing.assert_close(res["drops"], x.reshape(12, -1) @ w)  # drop = x . w for the read direction
    assert (res["dimension"], res["n_features"], res["n_images"], res["n_random"]) == (1, F, 12, 49)
    again = faithfulness(model, "feat", x, 0, w, n_random=49, seed=7, batch_size=3)
    torch.testing.assert_close(again["random"], res["random"])
    assert again["p_value"] == res["p_value"]
    other = faithfulness(model, "feat", x, 0, w, n_random=49, seed=8, batch_size=5)
    assert not torch.equal(other["random"], res["random"])

    ortho = _orthogonal_to(w, 3)
    res_o = faithfulness(model, "feat", x, 0, ortho, n_random=49, seed=7, batch_size=5)
    assert abs(res_o["observed"]) < 1e-10
    assert res_o["p_value"] > 0.5  # random directions overlap w and drop the logit; the orthogonal one never does

    none = faithfulness(model, "feat", x, 0, w, n_random=0, seed=7, batch_size=5)
    assert np.isnan(none["p_value"]) and np.isnan(none["ratio"]) and np.isnan(none["random_q95"])


def test_faithfulness_of_unit_sets_against_random_axes():
    # class 0 reads channel 1 only (at every position); ablating channel 1 drops it, other channels do nothing
    weight = torch.zeros(2, C, H, W, dtype=torch.float64)
    weight[0, 1] = 1.0
    weight[1] = 1.0
    model = _Linear(weight.reshape(2, F))
    x = _acts(6).abs() + 1.0
    res = faithfulness(
        model, "feat", x, 0, unit_basis([1], C), "channel", n_random=20, seed=0, batch_size=4, null="axes"
    )
    torch.testing.assert_close(res["drops"], x[:, 1].sum((1, 2)))
    # a random axis is channel 1 in about a third of the draws: drop equal to observed, counted as >=
    hits = int(torch.isclose(res["random"], torch.tensor(res["observed"], dtype=torch.float64)).sum())
    assert 0 < hits < 20 and res["p_value"] == pytest.approx((1 + hits) / 21)
    res0 = faithfulness(model, "feat", x, 0, unit_basis([0, 2], C), "channel", n_random=20, seed=0, batch_size=4)
    assert res0["observed"] == 0.0 and res0["dimension"] == 2


def test_faithfulness_against_given_random_bases():
    """A null of given directions (e.g. centroids of random image sets): each one's mean drop is x . u (u the unit
    direction) for the linear model that reads w, whatever its scale; a wrong count or shape is refused."""
    model, x, w = _reading_model()
    given = [torch.randn(F, generator=_gen(10 + i), dtype=torch.float64) for i in range(5)]
    given[0] = given[0] + 3.0 * w  # one direction close to w: a draw at or above the observed drop
    res = faithfulness(model, "feat", x, 0, w, n_random=5, seed=0, batch_size=4, random_bases=[3.0 * g for g in given])
    expected = torch.stack([(x.reshape(12, -1) @ (g / g.norm())).mean() * (g / g.norm() @ w) for g in given])
    torch.testing.assert_close(res["random"], expected)
    assert res["null"] == "given" and res["n_random"] == 5
    assert res["p_value"] == pytest.approx((1 + int((expected >= res["observed"]).sum())) / 6)
    with pytest.raises(ValueError, match="n_random is 4 but 5 random_bases"):
        faithfulness(model, "feat", x, 0, w, n_random=4, seed=0, batch_size=4, random_bases=given)
    with pytest.raises(ValueError, match=r"random_bases\[0\] has shape"):
        faithfulness(
            model,
            "feat",
            x,
            0,
            w,
            n_random=1,
            seed=0,
            batch_size=4,
            random_bases=[torch.eye(F, dtype=torch.float64)[:2]],
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    weight = torch.randn(3, F, generator=_gen(3), dtype=torch.float64)
    model = _Linear(weight)
    x = _acts(9)
    d = torch.randn(F, generator=_gen(4), dtype=torch.float64)
    cpu = ablation_drop(model, "feat", x, 1, d, batch_size=4)
    gpu_model = _Linear(weight).cuda()
    gpu = ablation_drop(gpu_model, "feat", x, 1, d, batch_size=4)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(gpu, cpu)
    res = faithfulness(gpu_model, "feat", x, 1, d, n_random=5, seed=0, batch_size=4)
    torch.testing.assert_close(
        res["random"], faithfulness(model, "feat", x, 1, d, n_random=5, seed=0, batch_size=4)["random"]
    )
    assert all(p.device.type == "cuda" for p in gpu_model.parameters())
