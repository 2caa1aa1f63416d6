"""NeurFlow for every block layout (issue #11): channels-last maps, tokens, vectors; ViT / Swin / timm CNN.

Right values: a network whose blocks output channels-last maps or tokens computes the same function as a
channels-first one, so its circuit (concepts, T, core sets) and masking table are the same; on a random
ViT and Swin the circuit's scores equal integrated gradients of each target summed over the lower block's
tokens (or spatial axes) per channel, and its concepts the top-k of the hooked outputs' token (spatial) means.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate
from torch import nn

from conceptscope import models
from conceptscope import neurflow as nf
from conceptscope.activations import LayoutError
from conceptscope.settings import ConfigError
from conceptscope.workflow import check_config

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"tau": 2, "k": 4, "n_steps": 3, "top_patches": 3, "semantic_k": [2, 3], "group_k": [2, 3]}
TIMM = {"tau": 2, "k": 3, "n_steps": 2, "top_patches": 2, "semantic_k": [2, 2], "group_k": [2, 2]}


# -- one function, three layouts of its blocks -------------------------------------------------------------


class _Permute(nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class _ToTokens(nn.Module):
    """(n, C, H, W) -> (n, H*W, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class _FromTokens(nn.Module):
    """(n, H*W, C) -> (n, C, H, W)."""

    def __init__(self, h: int, w: int) -> None:
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).unflatten(2, (self.h, self.w))


class Net(nn.Module):
    """conv -> ReLU (block_a) -> conv -> BN -> ReLU (block_b) -> mean -> fc, the blocks' outputs in ``layout``.

    Input (n, 1, 10, 12): block_a is (4, 8, 10) channels first, block_b (5, 6, 8); non-square maps, so
    their layout must be set. The parameters do not depend on the layout (same seed, same function).
    """

    def __init__(self, layout: str) -> None:
        super().__init__()
        torch.manual_seed(3)
        conv_a, conv_b, bn = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
        self.fc = nn.Linear(5, 3)
        out, back_a, back_b = {
            "channels_first": (nn.Identity, nn.Identity(), nn.Identity()),
            "channels_last": (lambda: _Permute(0, 2, 3, 1), _Permute(0, 3, 1, 2), _Permute(0, 3, 1, 2)),
            "tokens": (_ToTokens, _FromTokens(8, 10), _FromTokens(6, 8)),
        }[layout]
        self.block_a = nn.Sequential(conv_a, nn.ReLU(), out())
        self.block_b = nn.Sequential(back_a, conv_b, bn, nn.ReLU(), out())
        self.back_b = back_b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.back_b(self.block_b(self.block_a(x))).mean(dim=(2, 3)))


LAYERS = ["fc", "block_b", "block_a"]
IMAGES = torch.rand(2, 1, 10, 12, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference():
    net = Net("channels_first").eval()
    layouts = {"block_a": "channels_first", "block_b": "channels_first"}
    res = nf.build_circuit(net, IMAGES, 1, LAYERS, settings=SETTINGS, layouts=layouts)
    return res, nf.masking_table(net, IMAGES, res.circuit | {"model": "net"}, n_random=3, layouts=layouts)


@pytest.mark.parametrize("layout", ["channels_last", "tokens"])
def test_a_circuit_does_not_depend_on_the_blocks_layout(reference, layout):
    ref, ref_mask = reference
    net = Net(layout).eval()
    layouts = {"block_a": layout, "block_b": layout}
    res = nf.build_circuit(net, IMAGES, 1, LAYERS, settings=SETTINGS, layouts=layouts)
    for lv, want in zip(res.levels, ref.levels, strict=True):
        assert lv["concepts"] == want["concepts"] and lv["core"] == want["core"]
        for a, t in want["scores"].items():
            assert lv["scores"][a].shape == t.shape  # one T per channel of the lower block
            np.testing.assert_allclose(lv["scores"][a], t, rtol=1e-4, atol=1e-6 * np.abs(t).max())
    assert res.circuit["nodes"] == ref.circuit["nodes"]
    mask = nf.masking_table(net, IMAGES, res.circuit | {"model": "net"}, n_random=3, layouts=layouts)
    np.testing.assert_allclose(mask["drop"], ref_mask["drop"], atol=1e-6)  # a channel zeroed at every position
    np.testing.assert_allclose(mask["random_drop_mean"], ref_mask["random_drop_mean"], atol=1e-6)


def test_an_ambiguous_layout_is_refused_naming_how_to_set_it():
    with pytest.raises(LayoutError, match="block_a.*set its layout"):
        nf.build_circuit(Net("channels_last").eval(), IMAGES, 1, LAYERS, settings=SETTINGS)
    sub = Net("channels_last").block_b
    maps = torch.rand(3, 8, 10, 4)
    with pytest.raises(LayoutError, match="lower_layout"):
        nf.importance(sub, maps, {0: [0, 1]}, n_steps=2)
    out = nf.importance(sub, maps, {0: [0, 1]}, n_steps=2, lower_layout="channels_last", upper_layout="channels_last")
    assert out[0].shape == (2, 4)


def test_linear_tokens_block_has_the_closed_form_attribution():
    """f_a(z) = mean_t (z W^T)[t, a]: IG of channel s is sum_t z[t, s] W[a, s] / T (exact, zero baseline)."""
    torch.manual_seed(0)
    lin = nn.Linear(4, 3, bias=False)
    maps = torch.randn(5, 7, 4)  # (P, T, C)
    concepts = {0: [0, 2], 2: [1, 3, 4]}
    out = nf.importance(lin, maps, concepts, n_steps=2)
    for a, rows in concepts.items():
        want = maps[rows].sum(1) * lin.weight[a] / maps.shape[1]
        torch.testing.assert_close(out[a], want.detach())
    adaptive, _ = nf.adaptive_importance(lin, maps, concepts, max_steps=4, tau=2, max_swaps=0)
    for a, rows in concepts.items():
        torch.testing.assert_close(adaptive[a], (maps[rows].sum(1) * lin.weight[a] / maps.shape[1]).detach())
    ig = nf.integrated_gradients(lin, maps, target=2, n_steps=2, layout="tokens")
    torch.testing.assert_close(ig.sum(1), (maps.sum(1) * lin.weight[2] / 7).detach())


def test_masking_zeroes_a_token_channel_at_every_token():
    class Tok(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.embed, self.head = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(x.flatten(1, 2)).mean(1))  # (n, 1, 4, 4) -> 4 tokens of 4

    net = Tok().eval()
    x = torch.rand(3, 1, 4, 4)
    t = nf.masking_effect(net, x, 2, "embed", [[1, 4]], n_random=2)
    with torch.no_grad():
        z = net.embed(x.flatten(1, 2))
        z[..., [1, 4]] = 0.0
        want = net.head(z.mean(1)).softmax(1)[:, 2].mean()
    assert t.loc[0, "masked"] == pytest.approx(float(want), abs=1e-6)


# -- optional forward arguments do not break a cut -----------------------------------------------------------


class MaskedNet(nn.Module):
    """Blocks that take an optional mask, passed on by the model (like timm's ViT attn_mask / is_causal)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: bool = False) -> torch.Tensor:
        x = x.flatten(1)
        for blk in self.blocks:
            x = blk(x) if mask is None else blk(x) * mask
            x = 2 * x if scale else x.relu()
        return self.head(x)


def test_optional_forward_arguments_are_fixed_at_their_defaults_for_the_cut():
    net = MaskedNet().eval()
    x = torch.rand(3, 1, 2, 2)
    chain = nf.BlockChain(net, ["blocks.0", "blocks.1", "head"])
    with torch.no_grad():
        z = chain.prefix(x, "blocks.0")
        y = chain.between("blocks.1", "head")(chain.between("blocks.0", "blocks.1")(z))
        torch.testing.assert_close(y, net(x))


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model, inp = models.build_model("timm:vit_tiny_patch16_224", n_classes=3, in_channels=3)
    assert inp.size == (224, 224)
    return model.eval()


def test_vit_blocks_are_a_cut_and_reproduce_the_model(vit):
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    chain = nf.BlockChain(vit, ["blocks.10", "blocks.11", "head"])
    with torch.no_grad():
        z = chain.prefix(x, "blocks.10")
        by_hand = vit.head(vit.fc_norm(vit.norm(vit.blocks[11](z))[:, 0]))
        y = chain.between("blocks.11", "head")(chain.between("blocks.10", "blocks.11")(z))
        torch.testing.assert_close(y, vit(x))
        torch.testing.assert_close(by_hand, vit(x))


# -- ViT, Swin, a timm CNN: circuits with the right values -------------------------------------------------


def _check_circuit(model: nn.Module, layers: list[str], spatial: tuple[int, ...], channels: dict[str, int]) -> None:
    """Build a circuit on one image; scores = IG summed over the lower block's ``spatial`` axes; concepts = top-k
    of the blocks' outputs (hooked during the circuit's pass over all patches) averaged over ``spatial``;
    masking runs on every group."""
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    patches, _ = nf.make_patches(x)
    modules = dict(model.named_modules())
    outs: dict[str, torch.Tensor] = {}

    def keep(name: str, out: torch.Tensor) -> None:
        if len(out) == len(patches) and name not in outs:  # the pass over every patch
            outs[name] = out.detach()

    hooks = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: keep(n, o)) for n in layers]
    try:
        res = nf.build_circuit(model, x, 1, layers, settings=TIMM)
    finally:
        for h in hooks:
            h.remove()
    chain = nf.BlockChain(model, layers[::-1])
    for lv in res.levels:
        upper, lower = lv["upper"], lv["lower"]
        ax = spatial if outs[upper].ndim > 2 else ()
        means = outs[upper].mean(dim=ax) if ax else outs[upper]
        sub = chain.between(lower, upper)
        for a in lv["targets"]:
            rows = torch.as_tensor(lv["concepts"][a])
            assert lv["concepts"][a] == torch.argsort(means[:, a], descending=True, stable=True)[:3].tolist()
            with torch.no_grad():
                maps = chain.prefix(patches[rows], lower)
            ig = nf.integrated_gradients(sub, maps, target=a, n_steps=TIMM["n_steps"])
            want = ig.sum(dim=spatial).sum(0).numpy() if maps.ndim > 2 else ig.sum(0).numpy()
            assert lv["scores"][a].shape == (channels[lower],)
            np.testing.assert_allclose(lv["scores"][a], want, rtol=1e-3, atol=1e-5 * np.abs(want).max())
    table = nf.masking_table(model, x, res.circuit | {"model": "m"}, n_random=2)
    assert len(table) == sum(1 for n in res.circuit["nodes"] if n["layer"] != layers[0])
    assert table["masked"].notna().all()


def test_vit_circuit_attributes_to_channels_over_tokens(vit):
    _check_circuit(vit, ["head", "blocks.11", "blocks.9"], (1,), {"blocks.11": 192, "blocks.9": 192})


def test_swin_circuit_attributes_to_channels_over_space():
    torch.manual_seed(0)
    model, inp = models.build_model("timm:swin_tiny_patch4_window7_224", n_classes=3, in_channels=3)
    assert inp.size == (224, 224)
    _check_circuit(model.eval(), ["head", "layers.3", "layers.2"], (1, 2), {"layers.3": 768, "layers.2": 384})


def test_timm_cnn_circuit():
    torch.manual_seed(0)
    model, _ = models.build_model("timm:mobilenetv3_small_050", n_classes=3, in_channels=3)
    _check_circuit(model.eval(), ["classifier", "blocks.5", "blocks.4"], (2, 3), {"blocks.5": 288, "blocks.4": 48})


# -- parse time: the same models pass the config checks, or are refused with the reason -----------------------


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    validate(cfg, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return cfg


def _with_model(config: dict, spec: str, layers: list[str], **neurflow) -> dict:
    cfg = copy.deepcopy(config)
    cfg["models"]["m"] = copy.deepcopy(cfg["models"]["timm_resnet18"]) | {"spec": spec, "layers": layers[::-1]}
    cfg["models"]["m"].pop("input_size")
    cfg["neurflow"] |= {"models": ["m"], "layers": {"m": layers}} | neurflow
    return cfg


@pytest.mark.parametrize(
    ("spec", "layers", "tau"),
    [
        ("timm:mobilenetv3_small_050", ["classifier", "blocks.5", "blocks.4"], 48),
        ("timm:vit_tiny_patch16_224", ["head", "blocks.11", "blocks.9"], 192),  # 192 channels of 197 tokens
        ("timm:swin_tiny_patch4_window7_224", ["head", "layers.3", "layers.2"], 384),  # (14, 14, 384)
    ],
)
def test_timm_models_pass_the_parse_time_checks_with_tau_up_to_their_channels(config, spec, layers, tau):
    check_config(_with_model(config, spec, layers, tau=tau))
    with pytest.raises(ConfigError, match=rf"neurflow.tau = {tau + 1} exceeds the {tau} channels of {layers[-1]}"):
        check_config(_with_model(config, spec, layers, tau=tau + 1))


def test_a_circuit_that_is_not_a_cut_is_refused_at_parse_time(config):
    cfg = _with_model(config, "timm:resnet18", ["fc", "layer4.0", "layer4.0.conv1"], tau=2)
    with pytest.raises(ConfigError, match=r"neurflow.layers.m: NeurFlow cannot cut timm:resnet18.*is not a cut"):
        check_config(cfg)
