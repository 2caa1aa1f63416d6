"""NeurFlow fidelity (Fig. 5, Fig. 16-17): accuracy with core neurons masked or retained, against hand forwards."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from conceptscope.neurflow import fidelity
from conceptscope.neurflow.fidelity import FIDELITY_COLUMNS, fidelity_table, masked_accuracy

# -- helpers ---------------------------------------------------------------------------------------

LAYERS = ["act2", "act1"]  # top first
N_UNITS = {"act1": 6, "act2": 8}
BIAS = [0.01, 0.05, -0.02, 0.03]  # argmax 1: the class of every image once act2 is all zero


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 6, 3, padding=1),
            act1=nn.ReLU(),
            conv2=nn.Conv2d(6, 8, 3, padding=1),
            act2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(8, 4),
        )
    )
    with torch.no_grad():
        model.fc.weight.mul_(10.0)  # so that the images' predictions differ
        model.fc.bias.copy_(torch.tensor(BIAS))
    return model.train()


def images(n: int = 24) -> torch.Tensor:
    """Noise with a per-image colour offset (7 x 7: maps of no layer look square in channels)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 7, 7, generator=gen) + 2.0 * torch.randn(n, 3, 1, 1, generator=gen)


def hand_predictions(model: nn.Module, x: torch.Tensor, zero: dict[str, list[int]]) -> torch.Tensor:
    """The model's forward written out, the listed channels of act1 / act2 zeroed by hand."""
    with torch.no_grad():
        h = model.act1(model.conv1(x))
        h[:, zero.get("act1", [])] = 0.0
        h = model.act2(model.conv2(h))
        h[:, zero.get("act2", [])] = 0.0
        return model.fc(model.flat(model.pool(h))).argmax(1)


def hand_accuracy(model, x, cls, sets, mode) -> float:
    zero = {n: (list(s) if mode == "mask" else sorted(set(range(N_UNITS[n])) - set(s))) for n, s in sets.items()}
    return float((hand_predictions(model, x, zero) == cls).double().mean())


def common_class(model: nn.Module, x: torch.Tensor) -> int:
    return int(hand_predictions(model, x, {}).mode().values)


# -- masked_accuracy -------------------------------------------------------------------------------


def test_nothing_masked_and_everything_retained_give_the_unmasked_accuracy():
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    base = hand_accuracy(model, x, cls, {}, "mask")
    assert 0 < base < 1
    assert masked_accuracy(model, x, None, cls, {}, mode="mask") == base
    assert masked_accuracy(model, x, None, cls, {}, mode="retain") == base
    assert masked_accuracy(model, x, None, cls, {"act2": [], "act1": []}, mode="mask") == base
    everything = {n: list(range(c)) for n, c in N_UNITS.items()}
    assert masked_accuracy(model, x, None, cls, everything, mode="retain", batch_size=5) == base


def test_masking_every_channel_leaves_the_bias_as_the_logits():
    model, x = tiny_model(), images()
    winner = int(np.argmax(BIAS))
    for cls in range(4):
        for mode, chans in (("mask", list(range(8))), ("retain", [])):
            assert masked_accuracy(model, x, None, cls, {"act2": chans}, mode=mode) == float(cls == winner)


@pytest.mark.parametrize("mode", ["mask", "retain"])
def test_multi_layer_masking_equals_a_hand_forward(mode):
    model, x = tiny_model(), images()
    before = x.clone()
    cls = common_class(model, x)
    sets = {"act2": [0, 3, 5], "act1": [1, 2, 4]}
    got = masked_accuracy(model, x, None, cls, sets, mode=mode, batch_size=7)
    assert got == hand_accuracy(model, x, cls, sets, mode)
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_retaining_a_set_is_masking_its_complement():
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    kept = {"act2": [1, 6], "act1": [0, 5]}
    rest = {n: sorted(set(range(N_UNITS[n])) - set(s)) for n, s in kept.items()}
    assert masked_accuracy(model, x, None, cls, kept, mode="retain") == masked_accuracy(
        model, x, None, cls, rest, mode="mask"
    )


def test_labels_select_the_class_images():
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    labels = np.where(np.arange(len(x)) % 3 == 0, cls, (cls + 1) % 4)
    pick = torch.as_tensor(np.flatnonzero(labels == cls))
    sets = {"act2": [2, 7]}
    got = masked_accuracy(model, x, torch.as_tensor(labels), cls, sets, mode="mask")
    assert got == hand_accuracy(model, x[pick], cls, sets, "mask")
    with pytest.raises(ValueError, match="no image is labelled"):
        masked_accuracy(model, x, np.full(len(x), (cls + 1) % 4), cls, sets, mode="mask")
    with pytest.raises(ValueError, match="one entry per image"):
        masked_accuracy(model, x, labels[:3], cls, sets, mode="mask")


def test_tokens_are_masked_on_their_last_axis():
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.act, self.head = nn.Linear(3, 5), nn.GELU(), nn.Linear(5, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.act(self.embed(x.flatten(2).transpose(1, 2))).mean(1))  # (n, 49, 5) tokens

    torch.manual_seed(0)
    model, x = Tokens().eval(), images()
    with torch.no_grad():
        h = model.act(model.embed(x.flatten(2).transpose(1, 2)))
        plain = model.head(h.mean(1)).argmax(1)
        h[..., [1, 3]] = 0.0
        masked = model.head(h.mean(1)).argmax(1)
    cls = int(plain.mode().values)
    assert masked_accuracy(model, x, None, cls, {"act": [1, 3]}, mode="mask") == float((masked == cls).double().mean())


@pytest.mark.parametrize(
    ("channels", "kwargs", "match"),
    [
        ({"nope": [0]}, {}, "'nope'"),
        ({"act1": [6]}, {}, "layer 'act1'.*\\[0, 6\\)"),
        ({"act1": [1, 1]}, {}, "repeat"),
        ({"act1": [0]}, {"mode": "keep"}, "mode"),
        ({"act1": [0]}, {"layouts": {"act1": "tokens"}}, "tokens"),
    ],
)
def test_masked_accuracy_rejects(channels, kwargs, match):
    model = tiny_model()
    with pytest.raises(ValueError, match=match):
        masked_accuracy(model, images(4), None, 0, channels, **({"mode": "mask"} | kwargs))
    assert model.training


# -- fidelity_table --------------------------------------------------------------------------------

CORE = {2: {"act2": [0, 4], "act1": [3, 5]}, 1: {"act2": [6], "act1": [2]}}
SPEC_COLUMNS = [
    "class_index",
    "tau",
    "scope",
    "layer",
    "mode",
    "set",
    "draw",
    "n_neurons",
    "accuracy",
    "relative_accuracy",
    "base_accuracy",
    "n_images",
    "other_predicted",
]


ORIGINAL_ACCURACY = fidelity._Masker.rates  # every evaluation goes through it


def recorded_table(monkeypatch, seed: int = 0, n_random: int = 3, extend: float = 0.5):
    """The table, and the channel sets of every evaluation in call order (the first: unmasked)."""
    calls: list[tuple[str, dict[str, np.ndarray]]] = []
    original = ORIGINAL_ACCURACY

    def record(self, many, mode, class_index, batch_size):
        calls.extend((mode, {n: np.array(s) for n, s in sets.items()}) for sets in many)
        return original(self, many, mode, class_index, batch_size)

    monkeypatch.setattr(fidelity._Masker, "rates", record)
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    table = fidelity_table(model, x, cls, CORE, LAYERS, n_random=n_random, extend=extend, seed=seed, batch_size=10)
    return table, calls, model, x, cls


def test_table_columns_rows_and_accuracies(monkeypatch):
    table, calls, model, x, cls = recorded_table(monkeypatch)
    assert list(table.columns) == SPEC_COLUMNS == list(FIDELITY_COLUMNS[1:])
    assert len(table) == 2 * 2 * 2 * 2 * (1 + 2 * 3)  # taus x layers x scopes x modes x sets/draws
    base = hand_accuracy(model, x, cls, {}, "mask")
    assert (table["base_accuracy"] == base).all() and (table["n_images"] == len(x)).all()
    np.testing.assert_allclose(table["relative_accuracy"], table["accuracy"] / base)
    assert (table.loc[table["set"] == "core", "draw"] == -1).all()
    assert sorted(table.loc[table["set"] != "core", "draw"].unique()) == [0, 1, 2]
    # the first layer's multi rows repeat its single rows
    first = table[table["layer"] == LAYERS[0]]
    single = first[first["scope"] == "single"].drop(columns="scope").reset_index(drop=True)
    multi = first[first["scope"] == "multi"].drop(columns="scope").reset_index(drop=True)
    assert len(single) and single.equals(multi)
    # every evaluated row: its accuracy by a hand forward on the channels it used, its n_neurons their count
    evaluated = table[~((table["scope"] == "multi") & (table["layer"] == LAYERS[0]))]
    assert calls[0][1] == {} and len(calls) == 1 + len(evaluated)
    for row, (mode, sets) in zip(evaluated.itertuples(), calls[1:], strict=True):
        assert mode == row.mode
        involved = [row.layer] if row.scope == "single" else LAYERS[: LAYERS.index(row.layer) + 1]
        assert sorted(sets) == sorted(involved)
        assert row.n_neurons == sum(len(s) for s in sets.values())
        assert row.accuracy == hand_accuracy(model, x, cls, sets, mode)


def test_random_sets_avoid_the_core_and_extended_sets_contain_it(monkeypatch):
    extend = 0.5
    table, calls, *_ = recorded_table(monkeypatch, extend=extend)
    evaluated = table[~((table["scope"] == "multi") & (table["layer"] == LAYERS[0]))]
    seen_random = set()
    for row, (_, sets) in zip(evaluated.itertuples(), calls[1:], strict=True):
        for n, s in sets.items():
            core = set(CORE[row.tau][n])
            assert len(set(s.tolist())) == len(s)
            if row.set == "core":
                assert set(s.tolist()) == core
            elif row.set == "random":
                assert len(s) == len(core) and not core & set(s.tolist())
                seen_random.add((n, tuple(s.tolist())))
            else:
                assert core <= set(s.tolist()) and len(s) == len(core) + math.ceil(extend * len(core))
    assert len(seen_random) > 4  # the draws vary
    # mask and retain rows of one draw use the same channels
    by_key = {}
    for row, (_, sets) in zip(evaluated.itertuples(), calls[1:], strict=True):
        key = (row.tau, row.layer, row.scope, row.set, row.draw)
        by_key.setdefault(key, []).append({n: s.tolist() for n, s in sets.items()})
    assert all(len(v) == 2 and v[0] == v[1] for v in by_key.values())


def test_table_is_reproducible_under_the_seed(monkeypatch):
    a, calls_a, *_ = recorded_table(monkeypatch, seed=5)
    b, calls_b, *_ = recorded_table(monkeypatch, seed=5)
    c, calls_c, *_ = recorded_table(monkeypatch, seed=6)
    assert a.equals(b)

    def flat(calls):
        return [(m, {n: s.tolist() for n, s in sets.items()}) for m, sets in calls]

    assert flat(calls_a) == flat(calls_b) and flat(calls_a) != flat(calls_c)


def test_table_base_zero_gives_nan_relative_accuracy():
    model, x = tiny_model(), images()
    never = sorted(set(range(4)) - set(hand_predictions(model, x, {}).tolist()))[0]
    table = fidelity_table(model, x, never, {1: {"act2": [0], "act1": [0]}}, LAYERS, n_random=1)
    assert (table["base_accuracy"] == 0).all() and table["relative_accuracy"].isna().all()


def test_table_rejects_too_few_non_core_channels_and_missing_layers():
    model, x = tiny_model(), images(4)
    with pytest.raises(ValueError, match=r"layer 'act1', tau 4: 2 non-core channels.*need 4"):
        fidelity_table(model, x, 0, {4: {"act2": [0, 1, 2, 3], "act1": [0, 1, 2, 3]}}, LAYERS, n_random=1)
    with pytest.raises(ValueError, match=r"layer 'act1', tau 3: 3 non-core channels.*need 4"):
        fidelity_table(model, x, 0, {3: {"act2": [0], "act1": [0, 1, 2]}}, LAYERS, n_random=1, extend=1.1)
    with pytest.raises(ValueError, match=r"core\[1\] has no core channels for layer\(s\) \['act1'\]"):
        fidelity_table(model, x, 0, {1: {"act2": [0]}}, LAYERS)
    with pytest.raises(ValueError, match="core\\[1\\] of layer 'act2'"):
        fidelity_table(model, x, 0, {1: {"act2": [9], "act1": [0]}}, LAYERS)
    assert model.training


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masked_accuracy_on_cuda_matches_cpu():
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    sets = {"act2": [0, 3, 5], "act1": [1, 2, 4]}
    cpu = masked_accuracy(model, x, None, cls, sets, mode="retain")
    assert masked_accuracy(model.cuda(), x, None, cls, sets, mode="retain") == cpu  # images moved per batch


def test_other_classes_share_predicted_as_the_class():
    """``other_predicted``: the share of other images predicted as the class under the same masking."""
    model, x = tiny_model(), images()
    cls = common_class(model, x)
    table = fidelity_table(model, x[:6], cls, CORE, LAYERS, n_random=2, others=x[6:], batch_size=5)
    assert table["n_images"].eq(6).all()
    for row in table[table["set"] == "core"].itertuples():
        involved = [row.layer] if row.scope == "single" else LAYERS[: LAYERS.index(row.layer) + 1]
        sets = {n: np.array(CORE[row.tau][n]) for n in involved}
        want = hand_accuracy(model, x[6:], cls, sets, row.mode)
        assert row.other_predicted == pytest.approx(want)
        assert row.accuracy == pytest.approx(hand_accuracy(model, x[:6], cls, sets, row.mode))
    assert fidelity_table(model, x, cls, CORE, LAYERS, n_random=1)["other_predicted"].isna().all()
