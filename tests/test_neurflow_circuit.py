"""NeurFlow circuits end to end on a tiny CNN: concepts, levels, groups, JSON, masking; claim row NF-12."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conceptscope import models
from conceptscope import neurflow as nf
from conceptscope.neurflow import claims

LAYERS = ["fc", "pool2", "conv1"]
SETTINGS = {"tau": 3, "k": 6, "n_steps": 4, "top_patches": 4}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model, _ = models.build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1)
    model.eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return model, x, nf.build_circuit(model, x, 2, LAYERS, settings=SETTINGS, image_ids=[10, 11, 12])


def test_concepts_are_top_k_of_a_plain_forward(tiny):
    model, x, res = tiny
    patches, _ = nf.make_patches(x)
    with torch.no_grad():
        logits = model(patches)
    lv = res.levels[0]
    assert lv["upper"] == "fc" and lv["targets"] == [2]
    expected = torch.argsort(logits[:, 2], descending=True, stable=True)[: SETTINGS["k"]].tolist()
    assert lv["concepts"][2] == expected


def test_core_sets_are_top_tau_of_the_scores_and_feed_the_next_level(tiny):
    _, _, res = tiny
    for i, lv in enumerate(res.levels):
        for a, core in lv["core"].items():
            scores = np.abs(lv["scores"][a])
            assert len(core) == SETTINGS["tau"]
            assert set(core) == set(np.argsort(-scores, kind="stable")[: SETTINGS["tau"]].tolist())
        nxt = sorted({n for c in lv["core"].values() for n in c})
        if i + 1 < len(res.levels):
            assert res.levels[i + 1]["targets"] == nxt
        else:
            bottom = sorted({n for g in res.groups[LAYERS[-1]] for n in g.neurons})
            assert bottom == nxt


def test_importance_equals_the_per_target_loop(tiny):
    model, x, res = tiny
    chain = nf.BlockChain(model, LAYERS[::-1])
    patches, _ = nf.make_patches(x)
    lv = res.levels[1]
    sub = chain.between("conv1", "pool2")
    for a in lv["targets"]:
        rows = torch.as_tensor(lv["concepts"][a])
        with torch.no_grad():
            maps = chain.prefix(patches[rows], "conv1")
        one = nf.importance(sub, maps, {a: list(range(len(rows)))}, n_steps=SETTINGS["n_steps"])[a]
        np.testing.assert_allclose(one.sum(0).numpy(), lv["scores"][a], rtol=1e-4, atol=1e-6)


def test_adaptive_steps_in_the_circuit_follow_adaptive_importance(tiny):
    model, x, res = tiny
    settings = SETTINGS | {"ig_steps": "adaptive", "n_steps": 16, "adaptive_rtol": 0.2}
    ad = nf.build_circuit(model, x, 2, LAYERS, settings=settings, image_ids=[10, 11, 12])
    chain = nf.BlockChain(model, LAYERS[::-1])
    patches, _ = nf.make_patches(x)
    lv = ad.levels[1]
    assert lv["targets"] == res.levels[1]["targets"]  # level 0 (a linear logit) is exact at any count
    sub = chain.between("conv1", "pool2")
    for a in lv["targets"]:
        with torch.no_grad():
            maps = chain.prefix(patches[torch.as_tensor(lv["concepts"][a])], "conv1")
        one, _ = nf.adaptive_importance(
            sub, maps, {a: list(range(len(maps)))}, max_steps=16, tau=SETTINGS["tau"], rtol=0.2, max_swaps=1
        )
        np.testing.assert_allclose(one[a].sum(0).numpy(), lv["scores"][a], rtol=1e-4, atol=1e-6)
    assert lv["evaluations"] < len({p for a in lv["targets"] for p in lv["concepts"][a]}) * 16


def test_forward_rows_count_each_distinct_patch_and_step_once(tiny):
    _, _, res = tiny
    for lv in res.levels:
        distinct = {p for a in lv["targets"] for p in lv["concepts"][a]}
        assert lv["evaluations"] == len(distinct) * SETTINGS["n_steps"]
        assert len(distinct) < sum(len(lv["concepts"][a]) for a in lv["targets"]) or len(lv["targets"]) == 1


def test_edge_weights_of_each_semantic_group_sum_to_one(tiny):
    _, _, res = tiny
    for layer in LAYERS[:-1]:
        for g in res.semantic[layer]:
            total = sum(abs(w) for w in g.weights.values())
            assert total == pytest.approx(1.0) or total == 0.0


def test_circuit_json_is_valid_and_complete(tiny):
    _, _, res = tiny
    c = json.loads(json.dumps(res.circuit))
    nf.validate_circuit(c)
    assert c["layers"] == LAYERS and c["n_patches"] == 3 * 59
    per_layer = {layer: [n for n in c["nodes"] if n["layer"] == layer] for layer in LAYERS}
    assert [n["neurons"] for n in per_layer["fc"]] == [[2]]
    for layer in LAYERS:
        assert sorted(n["group"] for n in per_layer[layer]) == list(range(len(res.groups[layer])))
        for n in per_layer[layer]:
            assert 0 < len(n["top_patches"]) <= SETTINGS["top_patches"]
    for p in c["patches"].values():
        assert p["sample_id"] == 10 + p["image"] and p["scale"] in (1.0, 0.5, 0.25)
    ids = {n["id"] for n in c["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in c["edges"])


def test_bad_settings_and_layers_raise(tiny):
    model, x, _ = tiny
    with pytest.raises(ValueError, match=r"unknown key neurflow\.tua \(did you mean 'tau'\?\)"):
        nf.build_circuit(model, x, 0, LAYERS, settings={"tua": 3})
    with pytest.raises(ValueError, match="at least one block"):
        nf.build_circuit(model, x, 0, ["fc"])
    with pytest.raises(ValueError, match="class_index 12"):
        nf.build_circuit(model, x, 12, LAYERS, settings=SETTINGS)


@pytest.mark.parametrize("ig_steps", ["fixed", "adaptive"])
def test_tau_above_the_lower_blocks_channels_raises_for_fixed_and_adaptive_steps(tiny, ig_steps):
    model, x, _ = tiny  # conv1 has 32 channels: no silent clamp to 32 core neurons
    with pytest.raises(ValueError, match=r"tau must be an integer in \[1, 32\], got 40"):
        nf.build_circuit(model, x, 2, LAYERS, settings=SETTINGS | {"tau": 40, "ig_steps": ig_steps})


def test_the_circuit_records_its_settings_in_the_old_order(tiny):
    _, _, res = tiny
    assert list(res.circuit["settings"]) == list(nf.CIRCUIT_DEFAULTS)
    assert res.circuit["settings"] == nf.CIRCUIT_DEFAULTS | SETTINGS
    assert nf.CIRCUIT_DEFAULTS == {
        "tau": 16,
        "k": 50,
        "n_steps": 50,
        "method": "riemann_right",
        "ig_steps": "fixed",
        "adaptive_rtol": 0.2,
        "adaptive_max_swaps": 1,
        "batch_size": 256,
        "semantic_k": [2, 5],
        "group_k": [2, 5],
        "n_groups": None,
        "top_patches": 12,
    }


class _Linear2(nn.Module):
    """x -> relu(W1 x) -> W2 h: masking hidden units can be computed by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


def test_masking_effect_matches_a_hand_computation():
    torch.manual_seed(3)
    m = _Linear2().eval()
    x = torch.randn(16, 4)
    table = nf.masking_effect(m, x, 1, "hidden", [[0, 2], [5]], n_random=4, seed=0)
    h = m.hidden(x).detach()
    base = m.out(h).softmax(1)[:, 1].mean().item()
    h0 = h.clone()
    h0[:, [0, 2]] = 0
    masked = m.out(h0).softmax(1)[:, 1].mean().item()
    assert table.loc[0, "base"] == pytest.approx(base, rel=1e-5)
    assert table.loc[0, "masked"] == pytest.approx(masked, rel=1e-5)
    assert table.loc[0, "drop"] == pytest.approx(base - masked, rel=1e-4, abs=1e-7)
    again = nf.masking_effect(m, x, 1, "hidden", [[0, 2], [5]], n_random=4, seed=0)
    pd.testing.assert_frame_equal(table, again)
    # the hook is gone afterwards
    np.testing.assert_allclose(m(x).softmax(1)[:, 1].mean().item(), base, rtol=1e-6)


def test_nf_12_rule():
    rows = pd.DataFrame(
        {
            "model": "m",
            "class_index": 0,
            "layer": ["a", "a", "b", "b", "b"],
            "drop": [0.3, 0.2, 0.1, 0.4, 0.01],
            "random_drop_mean": [0.01, 0.02, 0.01, 0.05, 0.02],
        }
    )
    row = claims.nf_12(rows)
    assert row["verdict"] == "PASS" and "80% of 5 groups" in row["measured_value"]
    rows.loc[[0, 1], "drop"] = 0.0
    assert claims.nf_12(rows)["verdict"] == "FAIL"
    assert claims.nf_12(pd.DataFrame())["verdict"] == "NOT RUN"
