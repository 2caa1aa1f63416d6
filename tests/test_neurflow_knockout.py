"""NeurFlow knock-out losses (Def. 2), batched over channel subsets, against hand values and a per-patch loop.

Right values: on a linear sub-network the losses are derived by hand; on a tiny conv network zeroing no
channel gives ``L = 1`` and zeroing every channel makes all patches tie, so the stable top-k is rows
``0..k-1`` and ``L = |{0..k-1} ∩ V_a| / k``; for every layout and batch size the batched losses equal an
explicit loop (one masked forward pass per subset and patch, numpy stable argsort); ``V_a`` equals
:func:`conceptscope.neurflow.top_k_patches` of the unmasked spatial means.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conceptscope import neurflow as nf
from conceptscope.neurflow.knockout import knockout_losses, overlap_loss, random_subsets, top_k_rows

N_PATCHES = 23  # odd, so batch sizes 7 and 1000 cut the patches unevenly / not at all
C_LOWER = 6
C_UPPER = 3


# -- tiny networks ---------------------------------------------------------------------------------------


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
    """(n, H*W, C) -> (n, C, 4, 4)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).unflatten(2, (4, 4))


class Net(nn.Module):
    """``lower``: conv to 6 channels on 4 x 4 maps; ``upper``: conv -> ReLU -> conv to 3 channels.

    ``layout`` sets how both blocks hand over their maps: channels first, channels last (Swin-like, made by
    permuting) or tokens; the parameters (seeded) and so the function do not depend on it. ``vector``
    replaces the convolutions by linear layers on (n, 8) inputs.
    """

    def __init__(self, layout: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        if layout == "vector":
            self.lower = nn.Linear(8, C_LOWER)
            self.upper = nn.Sequential(nn.Linear(C_LOWER, 5), nn.ReLU(), nn.Linear(5, C_UPPER))
            return
        out, into = {
            "channels_first": (nn.Identity(), nn.Identity()),
            "channels_last": (_Permute(0, 2, 3, 1), _Permute(0, 3, 1, 2)),
            "tokens": (_ToTokens(), _FromTokens()),
        }[layout]
        back = {"channels_first": nn.Identity(), "channels_last": _Permute(0, 2, 3, 1), "tokens": _ToTokens()}
        conv1, conv2 = nn.Conv2d(C_LOWER, 5, 3, padding=1), nn.Conv2d(5, C_UPPER, 3, padding=1)
        self.lower = nn.Sequential(nn.Conv2d(1, C_LOWER, 3, padding=1), out)
        self.upper = nn.Sequential(into, conv1, nn.ReLU(), conv2, back[layout])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upper(self.lower(x))


# per layout: axis of the channels in the lower maps, spatial / token axes of the upper output
AXES = {"channels_first": (1, (2, 3)), "channels_last": (3, (1, 2)), "tokens": (2, (1,)), "vector": (1, ())}
LAYOUTS = list(AXES)


def setup(layout: str) -> tuple[nn.Module, torch.Tensor]:
    """The sub-network ``lower -> upper`` cut by :class:`BlockChain` and the lower maps of N_PATCHES inputs."""
    model = Net(layout).eval()
    gen = torch.Generator().manual_seed(1)
    shape = (N_PATCHES, 8) if layout == "vector" else (N_PATCHES, 1, 4, 4)
    x = torch.randn(*shape, generator=gen)
    chain = nf.BlockChain(model, ["lower", "upper"])
    with torch.no_grad():
        maps = chain.prefix(x, "lower")
    return chain.between("lower", "upper"), maps


def loop_means(sub: nn.Module, maps: torch.Tensor, subset, layout: str) -> np.ndarray:
    """(P, C_UPPER) spatial means, one masked forward pass per patch (maps cloned, channels zeroed by hand)."""
    channel_axis, mean_axes = AXES[layout]
    rows = []
    with torch.no_grad():
        for p in range(len(maps)):
            x = maps[p : p + 1].clone()
            x.index_fill_(channel_axis, torch.as_tensor(list(subset), dtype=torch.long), 0.0)
            out = sub(x)
            rows.append((out.mean(dim=mean_axes) if mean_axes else out)[0].numpy())
    return np.stack(rows).astype(np.float64)


def loop_losses(sub, maps, subsets, targets, k, layout) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``L(S, a)`` by the definition: per subset the stable top-k after zeroing vs. the unmasked top-k."""
    base = loop_means(sub, maps, [], layout)
    concepts = {a: np.argsort(-base[:, a], kind="stable")[:k] for a in targets}
    loss = np.empty((len(subsets), len(targets)))
    for m, s in enumerate(subsets):
        after = loop_means(sub, maps, s, layout)
        for j, a in enumerate(targets):
            top = np.argsort(-after[:, a], kind="stable")[:k]
            loss[m, j] = len(set(top.tolist()) & set(concepts[a].tolist())) / k
    return loss, concepts


SUBSETS = [[], [0], [5], [1, 3], [0, 2, 4], [2, 3, 4, 5], [0, 1, 2, 3, 4], list(range(C_LOWER))]
TARGETS = [2, 0, 1]
K = 5


# -- a linear sub-network, losses by hand -----------------------------------------------------------------


def test_linear_sub_hand_derived_losses():
    # 6 patches, 3 channels (vectors); values of target a = W[a] . x + b[a]
    maps = torch.tensor(
        [[0.0, 4, 0], [0, 3, 0], [0, 0, 9], [0, 0, 0], [5, 0, 0], [6, 0, 0]]
    )  # ch0 = [0,0,0,0,5,6], ch1 = [4,3,0,0,0,0], ch2 = [0,0,9,0,0,0]
    sub = nn.Linear(3, 4)
    with torch.no_grad():
        sub.weight.copy_(torch.tensor([[1.0, 1, 0], [1, 0.5, 0], [1, 2, 0], [1, 0, 1]]))
        sub.bias.copy_(torch.tensor([0.0, 0.5, -1, 0]))
    subsets = [[], [0], [1], [2], [0, 1, 2]]
    res = knockout_losses(sub, maps, subsets, [0, 1, 2, 3], k=2)
    # t0: [4,3,0,0,5,6] -> V=[5,4]; no ch0 [4,3,0,0,0,0] -> [0,1]; no ch1 [0,0,0,0,5,6]; all zero -> [0,1]
    # t1: [2.5,2,.5,.5,5.5,6.5] -> V=[5,4]; no ch0 -> [0,1]; all 0.5 -> [0,1]
    # t2: [7,5,-1,-1,4,5] -> V=[0,1] (tie at 5: row 1 first); no ch1 [-1,-1,-1,-1,4,5] -> [5,4]; all -1 -> [0,1]
    # t3: [0,0,9,0,5,6] -> V=[2,5]; no ch0 [0,0,9,0,0,0] -> [2,0]; no ch2 [0,0,0,0,5,6] -> [5,4]; all 0 -> [0,1]
    expected = np.array(
        [
            [1.0, 1.0, 1.0, 1.0],
            [0.0, 0.0, 1.0, 0.5],
            [1.0, 1.0, 0.0, 1.0],
            [1.0, 1.0, 1.0, 0.5],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(res.loss, expected)
    assert {a: v.tolist() for a, v in res.concepts.items()} == {0: [5, 4], 1: [5, 4], 2: [0, 1], 3: [2, 5]}
    assert res.rows == 6 * 6
    assert res.loss.dtype == np.float64


# -- the tiny conv network: the two ends, the loop, V_a ---------------------------------------------------


def test_no_knockout_is_one_and_full_knockout_is_the_first_k_rows():
    sub, maps = setup("channels_first")
    everything = list(range(C_LOWER))
    res = knockout_losses(sub, maps, [[], everything], TARGETS, K)
    base = loop_means(sub, maps, [], "channels_first")
    for j, a in enumerate(TARGETS):
        concept = np.argsort(-base[:, a], kind="stable")[:K]
        assert res.loss[0, j] == 1.0
        # all channels zero: every patch gets the same (bias-only) value, so the stable top-k is rows 0..K-1
        assert res.loss[1, j] == len(set(range(K)) & set(concept.tolist())) / K
    # the formula is not trivially 1 or 0 here: at least one target has a concept that differs from rows 0..K-1
    assert (res.loss[1] < 1).any()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batched_equals_per_patch_loop(layout):
    sub, maps = setup(layout)
    expected, concepts = loop_losses(sub, maps, SUBSETS, TARGETS, K, layout)
    assert len(np.unique(expected)) > 2  # the subsets disturb the concepts to different degrees
    for batch_size in (1, 7, 1000):
        res = knockout_losses(sub, maps, SUBSETS, TARGETS, K, batch_size=batch_size)
        np.testing.assert_array_equal(res.loss, expected, err_msg=f"batch_size={batch_size}")
        for a in TARGETS:
            np.testing.assert_array_equal(res.concepts[a], concepts[a])
        assert res.rows == (len(SUBSETS) + 1) * N_PATCHES


def test_layouts_give_the_same_losses():
    """The same function with its maps handed over channels first, channels last or as tokens."""
    losses = {}
    for layout in ("channels_first", "channels_last", "tokens"):
        sub, maps = setup(layout)
        losses[layout] = knockout_losses(sub, maps, SUBSETS, TARGETS, K, batch_size=50).loss
    np.testing.assert_array_equal(losses["channels_last"], losses["channels_first"])
    np.testing.assert_array_equal(losses["tokens"], losses["channels_first"])


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "vector"])
def test_concepts_are_top_k_patches_of_the_unmasked_means(layout):
    sub, maps = setup(layout)
    _, mean_axes = AXES[layout]
    with torch.no_grad():
        out = sub(maps.clone())
        means = (out.mean(dim=mean_axes) if mean_axes else out).numpy()
    res = knockout_losses(sub, maps, SUBSETS[:2], TARGETS, K, batch_size=7)
    assert list(res.concepts) == TARGETS
    for a in TARGETS:
        np.testing.assert_array_equal(res.concepts[a], nf.top_k_patches(means, a, K))


# -- helpers ----------------------------------------------------------------------------------------------


def test_top_k_rows_and_overlap_loss_on_small_arrays():
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    np.testing.assert_array_equal(top_k_rows(values, 2), [[1, 2], [0, 1]])
    np.testing.assert_array_equal(overlap_loss(np.array([[1, 2], [0, 3]]), [2, 3]), [0.5, 0.5])
    np.testing.assert_array_equal(overlap_loss(np.array([[2, 3], [0, 1]]), [3, 2]), [1.0, 0.0])
    with pytest.raises(ValueError, match="k must be"):
        top_k_rows(values, 5)
    with pytest.raises(ValueError, match="after must be"):
        overlap_loss(np.array([[1, 2, 3]]), [1, 2])


def test_random_subsets():
    a = random_subsets(20, 5, 8, seed=3)
    b = random_subsets(20, 5, 8, seed=3)
    c = random_subsets(20, 5, 8, seed=4)
    assert len(a) == 8
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    for s in a:
        assert s.dtype == np.int64 and len(s) == 5 and len(set(s.tolist())) == 5
        assert np.all(np.diff(s) > 0) and s.min() >= 0 and s.max() < 20
    assert len({tuple(s.tolist()) for s in a}) > 1  # not the same subset every time
    exclude = [0, 2, 4, 6, 8, 10, 12, 14]
    drawn = random_subsets(20, 12, 5, seed=0, exclude=exclude)
    for s in drawn:
        assert not set(s.tolist()) & set(exclude)
        assert s.tolist() == sorted(set(range(20)) - set(exclude))  # 12 of the 12 left: all of them
    assert random_subsets(20, 5, 0) == []
    with pytest.raises(ValueError, match="cannot draw 13 channels: only 12 of 20"):
        random_subsets(20, 13, 1, exclude=exclude)
    with pytest.raises(ValueError, match="cannot draw 21"):
        random_subsets(20, 21, 1)


# -- errors, arguments unchanged, modes restored ----------------------------------------------------------


def test_errors_name_the_problem():
    sub, maps = setup("channels_first")
    with pytest.raises(ValueError, match=r"subsets must hold channel indices of block l-1 in \[0, 6\)"):
        knockout_losses(sub, maps, [[0, 6]], TARGETS, K)
    with pytest.raises(ValueError, match="subsets must hold channel indices"):
        knockout_losses(sub, maps, [[1], [-1]], TARGETS, K)
    with pytest.raises(ValueError, match=r"targets \[3\] are not channels of block l \(3 channels\)"):
        knockout_losses(sub, maps, [[1]], [0, 3], K)
    with pytest.raises(ValueError, match="targets"):
        knockout_losses(sub, maps, [[1]], [-1], K)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 23\], got 24"):
        knockout_losses(sub, maps, [[1]], TARGETS, N_PATCHES + 1)
    with pytest.raises(ValueError, match="targets must name at least one"):
        knockout_losses(sub, maps, [[1]], [], K)
    with pytest.raises(ValueError, match="batch_size"):
        knockout_losses(sub, maps, [[1]], TARGETS, K, batch_size=0)


class _InPlaceSub(nn.Module):
    """Writes into its input, then BatchNorm and Dropout (which would change the values in training mode)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.conv1 = nn.Conv2d(C_LOWER, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(5)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(5, C_UPPER, 3, padding=1)
        self.bn.running_mean.uniform_(-0.5, 0.5)
        self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2.0)
        return self.conv2(self.drop(torch.relu(self.bn(self.conv1(x)))))


def test_maps_unchanged_modes_and_flags_restored():
    _, maps = setup("channels_first")
    before = maps.clone()
    sub = _InPlaceSub()
    sub.train()
    sub.bn.eval()  # a mixed state, restored module by module
    sub.conv1.weight.requires_grad_(False)
    modes = {name: m.training for name, m in sub.named_modules()}
    flags = {name: p.requires_grad for name, p in sub.named_parameters()}
    res = knockout_losses(sub, maps, SUBSETS, TARGETS, K, batch_size=7)
    assert torch.equal(maps, before)
    assert {name: m.training for name, m in sub.named_modules()} == modes
    assert {name: p.requires_grad for name, p in sub.named_parameters()} == flags
    # the losses are those of the sub in eval mode (the loop clones each patch, so the in-place write is harmless)
    evaluated = _InPlaceSub().eval()
    expected, _ = loop_losses(evaluated, maps, SUBSETS, TARGETS, K, "channels_first")
    np.testing.assert_array_equal(res.loss, expected)
    assert torch.equal(maps, before)


def test_float_channel_indices_are_refused():
    """A subset of non-integer channel indices is an error, not silently truncated (1.7 -> 1)."""
    sub = torch.nn.Linear(4, 2)
    maps = torch.randn(6, 4)
    with pytest.raises(ValueError, match="integer channel indices"):
        knockout_losses(sub, maps, [[1.7]], [0], 2)
