"""NeurFlow evaluation building blocks (:mod:`conceptscope.neurflow.experiments`) against independent computations.

- :func:`evaluation_targets`: hand-made levels, targets ranked by hand from the level above's ``|T|``.
- :func:`pearson`: ``scipy.stats.pearsonr`` on random data, NaN for constant sides and n < 2.
- :func:`knockout_tables`: on a tiny conv network cut by :class:`BlockChain`, every loss equals an explicit
  loop (one masked forward pass per subset, stable top-k, overlap with the unmasked top-k), the core rows equal
  :func:`knockout_losses` run alone on the core set, the random subsets (recorded as drawn) are reproducible,
  of the right sizes and shared by the targets, and every correlation row's ``r`` equals a Pearson r computed
  by hand from that loop.
- :func:`k_ablation_rows`: attributions whose core set changes at known rows, overlaps derived by hand.
- :func:`core_sets_by_tau`: on a 3-block network, the top level equals the top-tau of ``|T|`` of the class
  (IG run per target on its own concept) and the next level the union of the top-tau sets of those targets.
- :func:`crop_shares`: hand-made means and scales, shares counted by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from conceptscope import neurflow as nf
from conceptscope.neurflow import experiments
from conceptscope.neurflow.experiments import (
    core_sets_by_tau,
    crop_shares,
    evaluation_targets,
    k_ablation_rows,
    knockout_tables,
    pearson,
)
from conceptscope.neurflow.knockout import knockout_losses, random_subsets

# -- helpers ----------------------------------------------------------------------------------------------


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    """``model`` in float64 and eval mode with parameters drawn from a seeded generator (no global seed)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def _hand_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r from its definition; NaN when either side is constant or has fewer than 2 values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


# -- evaluation_targets -----------------------------------------------------------------------------------


def _levels() -> list[dict]:
    return [
        # level 0: the class logit (class 3) over the 6 channels of b2
        {"upper": "fc", "targets": [3], "scores": {3: np.array([0.1, -0.5, 0.2, 0.3, 0.9, -0.9])}},
        # level 1: b2's targets over the 5 channels of b1
        {
            "upper": "b2",
            "targets": [5, 1, 4],
            "scores": {
                1: np.array([0.1, 0.0, -0.2, 0.0, 0.0]),
                4: np.array([0.0, 0.0, 0.0, 0.3, -0.05]),
                5: np.array([-0.4, 0.0, 0.1, 0.0, 0.0]),
            },
        },
        {"upper": "b1", "targets": [4, 2, 0, 3], "scores": {}},
    ]


def test_evaluation_targets_level0_is_the_class():
    assert evaluation_targets(_levels(), "fc", 1) == [3]
    assert evaluation_targets(_levels(), "fc", 5) == [3]


def test_evaluation_targets_ranked_by_largest_abs_score_above():
    # b2: strength = |T(3, .)| = [.1, .5, .2, .3, .9, .9]; targets 5, 1, 4 -> 4 and 5 tie at .9 (lower first), then 1
    assert evaluation_targets(_levels(), "b2", 3) == [4, 5, 1]
    assert evaluation_targets(_levels(), "b2", 2) == [4, 5]
    # b1: max over the three parents of |T|: ch0 .4 (from 5, negative), ch2 .2 (from 1, negative), ch3 .3, ch4 .05
    assert evaluation_targets(_levels(), "b1", 10) == [0, 3, 2, 4]
    assert evaluation_targets(_levels(), "b1", 3) == [0, 3, 2]
    # no single parent gives this order: parent 1 alone ranks ch2 first, parent 4 ch3, parent 5 ch0 then ch2
    assert evaluation_targets(_levels(), "b1", 1) == [0]


def test_evaluation_targets_errors():
    with pytest.raises(ValueError, match=r"'b0'.*levels: \['fc', 'b2', 'b1'\]"):
        evaluation_targets(_levels(), "b0", 2)
    with pytest.raises(ValueError, match="n_targets"):
        evaluation_targets(_levels(), "b2", 0)


# -- pearson ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 17, 200])
def test_pearson_equals_scipy(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.3 * x + rng.normal(size=n)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert pearson(list(x), list(-y)) == pytest.approx(-stats.pearsonr(x, y).statistic, abs=1e-12)


def test_pearson_nan_cases_and_errors():
    rng = np.random.default_rng(0)
    y = rng.normal(size=8)
    assert np.isnan(pearson(np.full(8, 0.25), y))
    assert np.isnan(pearson(y, np.ones(8)))
    assert np.isnan(pearson([1.0], [2.0]))
    assert np.isnan(pearson([], []))
    assert pearson([0.0, 1.0], [5.0, 3.0]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="same length"):
        pearson([1.0, 2.0, 3.0], [1.0, 2.0])


# -- knockout_tables --------------------------------------------------------------------------------------

N_PATCHES = 30
C_LOWER = 12
K = 5
TAUS = [2, 5]
N_RANDOM = 3
SIZES = [1, 3, 6]
N_SUBSETS = 6
METHODS = ["integrated_gradients", "saliency"]


class TwoBlocks(nn.Module):
    """``lower``: conv to 12 channels; ``upper``: conv -> ReLU -> conv to 4 channels, on 5 x 5 maps."""

    def __init__(self) -> None:
        super().__init__()
        self.lower = nn.Conv2d(2, C_LOWER, 3, padding=1)
        self.upper = nn.Sequential(nn.Conv2d(C_LOWER, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upper(self.lower(x))


@pytest.fixture(scope="module")
def knock():
    """The cut ``lower -> upper``, the lower maps of 30 random patches and random per-method scores."""
    model = _seeded(TwoBlocks(), 0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N_PATCHES, 2, 5, 5, generator=gen, dtype=torch.float64)
    chain = nf.BlockChain(model, ["lower", "upper"])
    with torch.no_grad():
        maps = chain.prefix(x, "lower")
    rng = np.random.default_rng(2)
    scores = {a: {m: rng.normal(size=C_LOWER) for m in METHODS} for a in (0, 2, 3)}
    return chain.between("lower", "upper"), maps, scores


def _loop_loss(sub: nn.Module, maps: torch.Tensor, subset, a: int, k: int) -> float:
    """``L(S, a)`` by the definition: one masked forward pass, stable top-k vs the unmasked stable top-k."""
    with torch.no_grad():
        base = sub(maps).mean(dim=(2, 3))[:, a].numpy()
        x = maps.clone()
        x[:, list(subset)] = 0.0
        after = sub(x).mean(dim=(2, 3))[:, a].numpy()
    concept = set(np.argsort(-base, kind="stable")[:k].tolist())
    top = set(np.argsort(-after, kind="stable")[:k].tolist())
    return len(concept & top) / k


def _recorded_tables(monkeypatch, sub, maps, targets, scores, *, seed=0, batch_size=256):
    """``knockout_tables`` with every ``random_subsets`` call recorded: [(size, n, subsets), ...] in call order."""
    calls = []
    real = random_subsets  # the library's, not an earlier recorder

    def recording(n_channels, size, n, **kw):
        out = real(n_channels, size, n, **kw)
        assert n_channels == C_LOWER
        calls.append((size, n, [s.copy() for s in out]))
        return out

    monkeypatch.setattr(experiments, "random_subsets", recording)
    opt, corr, rows = knockout_tables(
        sub,
        maps,
        targets,
        scores,
        k=K,
        optimality_tau=TAUS,
        n_random=N_RANDOM,
        subset_sizes=SIZES,
        n_subsets=N_SUBSETS,
        seed=seed,
        batch_size=batch_size,
    )
    return opt, corr, rows, calls


def _draws(calls, size: int, n: int) -> list[np.ndarray]:
    found = [subs for s, m, subs in calls if s == size and m == n]
    assert len(found) == 1, f"expected one draw of {n} subsets of size {size}, got {len(found)}"
    return found[0]


def test_knockout_tables_core_rows_equal_knockout_losses_alone(knock):
    sub, maps, scores = knock
    targets = [2, 0]
    maps_before = maps.clone()
    scores_before = {a: {m: v.copy() for m, v in per.items()} for a, per in scores.items()}
    opt, _, rows = knockout_tables(
        sub,
        maps,
        targets,
        scores,
        k=K,
        optimality_tau=TAUS,
        n_random=N_RANDOM,
        subset_sizes=SIZES,
        n_subsets=N_SUBSETS,
        batch_size=7,  # cuts the 30 patches unevenly
    )
    assert torch.equal(maps, maps_before)  # arguments not modified
    assert all(np.array_equal(scores[a][m], scores_before[a][m]) for a in scores for m in METHODS)
    n_subsets = len(TAUS) * (len(targets) + N_RANDOM) + len(SIZES) * N_SUBSETS
    assert rows == (n_subsets + 1) * N_PATCHES
    assert list(opt.columns) == list(experiments.OPTIMALITY_COLUMNS)
    assert len(opt) == len(TAUS) * len(targets) * (1 + N_RANDOM)
    core = opt[opt["kind"] == "core"]
    assert (core["draw"] == -1).all() and len(core) == len(TAUS) * len(targets)
    for tau in TAUS:
        for a in targets:
            ig = np.abs(scores[a]["integrated_gradients"])
            core_set = np.argsort(-ig, kind="stable")[:tau]  # top-tau by |IG|, independent of core_neurons
            assert sorted(core_set.tolist()) == sorted(nf.core_neurons(torch.as_tensor(ig), tau).tolist())
            alone = knockout_losses(sub, maps, [core_set], [a], K).loss[0, 0]
            got = core[(core["target"] == a) & (core["tau"] == tau)]["loss"]
            assert len(got) == 1
            assert got.iloc[0] == alone
            assert got.iloc[0] == pytest.approx(_loop_loss(sub, maps, core_set, a, K))


def test_knockout_tables_random_subsets_seeded_sized_and_shared(knock, monkeypatch):
    sub, maps, scores = knock
    targets = [0, 3]
    opt, corr, _, calls = _recorded_tables(monkeypatch, sub, maps, targets, scores, seed=0)
    opt2, corr2, _, calls2 = _recorded_tables(monkeypatch, sub, maps, targets, scores, seed=0)
    pd.testing.assert_frame_equal(opt, opt2)
    pd.testing.assert_frame_equal(corr, corr2)
    for (s1, n1, a1), (s2, n2, a2) in zip(calls, calls2, strict=True):
        assert (s1, n1) == (s2, n2)
        assert all(np.array_equal(x, y) for x, y in zip(a1, a2, strict=True))
    # a different seed draws other subsets
    _, _, _, calls3 = _recorded_tables(monkeypatch, sub, maps, targets, scores, seed=1)
    assert [(s, n) for s, n, _ in calls3] == [(s, n) for s, n, _ in calls]
    for (_, _, a1), (_, _, a3) in zip(calls, calls3, strict=True):  # every draw depends on the seed
        assert any(not np.array_equal(x, y) for x, y in zip(a1, a3, strict=True))
    rnd = opt[opt["kind"] == "random"]
    for tau in TAUS:
        draws = _draws(calls, tau, N_RANDOM)
        for d in draws:  # tau distinct channels of the lower block
            assert d.size == tau and np.unique(d).size == tau and 0 <= d.min() and d.max() < C_LOWER
        for a in targets:  # every target's draw d is the loss of the SAME subset d
            rows = rnd[(rnd["target"] == a) & (rnd["tau"] == tau)].sort_values("draw")
            assert rows["draw"].tolist() == list(range(N_RANDOM))
            want = [_loop_loss(sub, maps, d, a, K) for d in draws]
            np.testing.assert_allclose(rows["loss"].to_numpy(), want)
    for size in SIZES:
        assert all(d.size == size for d in _draws(calls, size, N_SUBSETS))
    # the subsets do not depend on the targets: target 0 alone gets the same random rows
    opt_alone, corr_alone, _, calls_alone = _recorded_tables(monkeypatch, sub, maps, [0], scores, seed=0)
    for (_, _, a1), (_, _, a4) in zip(calls, calls_alone, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a1, a4, strict=True))
    pd.testing.assert_frame_equal(
        opt_alone.reset_index(drop=True), opt[opt["target"] == 0].reset_index(drop=True), check_exact=True
    )
    pd.testing.assert_frame_equal(
        corr_alone.reset_index(drop=True), corr[corr["target"] == 0].reset_index(drop=True), check_exact=True
    )


def test_knockout_tables_correlations_equal_hand_pearson(knock, monkeypatch):
    sub, maps, scores = knock
    targets = [2, 3]
    _, corr, _, calls = _recorded_tables(monkeypatch, sub, maps, targets, scores, batch_size=64)
    assert list(corr.columns) == list(experiments.CORRELATION_COLUMNS)
    n_methods = len(METHODS) + len(experiments.CONTROLS)
    assert len(corr) == len(targets) * n_methods * (len(SIZES) + 1) * 2
    finite = 0
    for a in targets:
        per_size = {}
        for size in SIZES:
            subsets = _draws(calls, size, N_SUBSETS)
            per_size[size] = [(s, _loop_loss(sub, maps, s, a, K)) for s in subsets]
        per_size[0] = [pair for size in SIZES for pair in per_size[size]]  # all sizes pooled
        n_channels = len(scores[a][METHODS[0]])
        controls = {"subset_size": np.ones(n_channels), "random": np.random.default_rng([0, 2, a]).random(n_channels)}
        for method in (*METHODS, *controls):
            mag = np.abs(scores[a][method] if method in METHODS else controls[method])
            for size, pairs in per_size.items():
                loss = np.array([lo for _, lo in pairs])
                for agg in ("sum", "mean"):
                    val = np.array([sum(mag[c] for c in s) / (1 if agg == "sum" else len(s)) for s, _ in pairs])
                    row = corr[
                        (corr["target"] == a)
                        & (corr["method"] == method)
                        & (corr["size"] == size)
                        & (corr["aggregate"] == agg)
                    ]
                    assert len(row) == 1
                    assert row["n"].iloc[0] == len(pairs) == (N_SUBSETS * len(SIZES) if size == 0 else N_SUBSETS)
                    want = _hand_pearson(val, loss)
                    np.testing.assert_allclose(row["r"].iloc[0], want, rtol=1e-9, atol=1e-12, equal_nan=True)
                    finite += int(np.isfinite(want))
    assert finite >= 8  # the comparison is not only NaN == NaN
    # for one subset size, sum = size * mean, so both aggregates give the same r
    sized = corr[corr["size"] > 0].pivot_table(index=["target", "method", "size"], columns="aggregate", values="r")
    np.testing.assert_allclose(sized["sum"], sized["mean"], rtol=1e-9)


def test_knockout_tables_missing_ig_raises(knock):
    sub, maps, scores = knock
    bad = {0: {"saliency": scores[0]["saliency"]}}
    with pytest.raises(ValueError, match="integrated_gradients"):
        knockout_tables(sub, maps, [0], bad, k=K, optimality_tau=[2], n_random=1, subset_sizes=[1], n_subsets=2, seed=0)


# -- k_ablation_rows --------------------------------------------------------------------------------------


def _attributions() -> dict[int, torch.Tensor]:
    # target 7: cumulative sums over rows: k=1 [3,2,0,0,0] -> {0,1}; k=2 same; k=3 [3,2,4,0,0] -> {2,0};
    # k=4 [3,2,4,-6,0] -> {3,2} (|.|: the negative channel counts)
    a7 = torch.tensor(
        [[3.0, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 4, 0, 0], [0, 0, 0, -6, 0]],
    )
    # target 1: k=1 [0,0,0,1,1] -> {3,4}; k=2 [0,0,0,1,3] -> {4,3}; k=3 [5,0,0,1,3] -> {0,4}; k=4 [5,5,0,1,3] -> {0,1}
    a1 = torch.tensor(
        [[0.0, 0, 0, 1, 1], [0, 0, 0, 0, 2], [5, 0, 0, 0, 0], [0, 5, 0, 0, 0]],
    )
    return {7: a7, 1: a1}


def test_k_ablation_rows_hand_overlaps():
    attr = _attributions()
    df = k_ablation_rows(attr, [1, 2, 3, 4], 2, 2)
    assert list(df.columns) == ["target", "tau", "k", "k_reference", "overlap"]
    got = {(int(r.target), int(r.k)): int(r.overlap) for r in df.itertuples()}
    assert got == {(7, 1): 2, (7, 2): 2, (7, 3): 1, (7, 4): 0, (1, 1): 2, (1, 2): 2, (1, 3): 1, (1, 4): 0}
    assert (df["tau"] == 2).all() and (df["k_reference"] == 2).all()
    df4 = k_ablation_rows(attr, [1, 3, 4], 4, 2)
    got4 = {(int(r.target), int(r.k)): int(r.overlap) for r in df4.itertuples()}
    assert got4 == {(7, 1): 0, (7, 3): 1, (7, 4): 2, (1, 1): 0, (1, 3): 1, (1, 4): 2}


def test_k_ablation_reference_row_overlap_is_tau():
    gen = torch.Generator().manual_seed(3)
    attr = {a: torch.randn(9, 11, generator=gen) for a in range(3)}
    for tau in (1, 4, 11):
        df = k_ablation_rows(attr, [2, 5, 9], 5, tau)
        assert (df.loc[df["k"] == 5, "overlap"] == tau).all()
        assert df["overlap"].between(0, tau).all()
        assert len(df) == 3 * 3


def test_k_ablation_too_few_rows_raises():
    attr = _attributions()
    with pytest.raises(ValueError, match="k up to 5"):
        k_ablation_rows(attr, [1, 5], 2, 2)
    with pytest.raises(ValueError, match="k up to 6"):
        k_ablation_rows(attr, [1, 2], 6, 2)


# -- core_sets_by_tau -------------------------------------------------------------------------------------


class ThreeBlocks(nn.Module):
    """b1: conv to 6 channels; b2: conv to 5 channels; fc: 3 logits after average pooling (4 x 4 maps)."""

    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(6, 5, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.b2(self.b1(x))).flatten(1))


LAYERS = ["fc", "b2", "b1"]  # top first
CORE_K = 4
N_STEPS = 6


@pytest.fixture(scope="module")
def three():
    model = _seeded(ThreeBlocks(), 4)
    gen = torch.Generator().manual_seed(5)
    patches = torch.randn(20, 2, 4, 4, generator=gen, dtype=torch.float64)
    chain = nf.BlockChain(model, LAYERS[::-1])
    with torch.no_grad():
        means = {
            "fc": chain.prefix(patches, "fc").numpy(),
            "b2": chain.prefix(patches, "b2").mean(dim=(2, 3)).numpy(),
            "b1": chain.prefix(patches, "b1").mean(dim=(2, 3)).numpy(),
        }
    return chain, patches, means


def _top_tau(scores: torch.Tensor, tau: int) -> set[int]:
    return set(np.argsort(-np.abs(scores.numpy()), kind="stable")[:tau].tolist())


def _hand_core(chain, patches, means, class_index: int, tau: int) -> dict[str, list[int]]:
    """Top-down by the definition, IG run for each target alone on its own concept's maps."""
    out, current = {}, [class_index]
    for upper, lower in zip(LAYERS[:-1], LAYERS[1:], strict=False):
        sub = chain.between(lower, upper)
        core: set[int] = set()
        for a in current:
            concept = np.argsort(-means[upper][:, a], kind="stable")[:CORE_K]
            with torch.no_grad():
                maps = chain.prefix(patches[torch.as_tensor(concept)], lower)
            t = nf.importance(sub, maps, {a: list(range(CORE_K))}, n_steps=N_STEPS, method="riemann_right")[a]
            core |= _top_tau(t.sum(0), tau)
        out[lower] = sorted(core)
        current = sorted(core)
    return out


def test_core_sets_by_tau_equals_definition(three):
    chain, patches, means = three
    taus = [1, 2, 5]
    patches_before = patches.clone()
    got = core_sets_by_tau(
        chain, patches, means, LAYERS, 1, taus, k=CORE_K, n_steps=N_STEPS, method="riemann_right", batch_size=10
    )
    assert torch.equal(patches, patches_before) and not chain.model.training
    assert sorted(got) == taus
    for tau in taus:
        want = _hand_core(chain, patches, means, 1, tau)
        assert got[tau] == want, tau
        assert set(got[tau]) == {"b2", "b1"}
        assert len(got[tau]["b2"]) == tau  # one target at the top: exactly tau channels
        assert tau <= len(got[tau]["b1"]) <= min(6, tau * len(got[tau]["b2"]))
    assert got[5]["b2"] == list(range(5))  # tau = every channel of b2
    # each tau alone gives the same sets (IG shared across the taus does not change them)
    for tau in (2, 5):
        alone = core_sets_by_tau(
            chain, patches, means, LAYERS, 1, [tau], k=CORE_K, n_steps=N_STEPS, method="riemann_right", batch_size=64
        )
        assert alone[tau] == got[tau]


def test_core_sets_by_tau_other_class_and_k_above_patches(three):
    chain, patches, means = three
    # k above the number of patches: the concept is every patch
    got = core_sets_by_tau(
        chain, patches, means, LAYERS, 2, [2], k=50, n_steps=N_STEPS, method="riemann_right", batch_size=32
    )
    sub = chain.between("b2", "fc")
    with torch.no_grad():
        maps = chain.prefix(patches, "b2")
    t = nf.importance(sub, maps, {2: list(range(len(patches)))}, n_steps=N_STEPS, method="riemann_right")[2]
    assert got[2]["b2"] == sorted(_top_tau(t.sum(0), 2))


# -- crop_shares ------------------------------------------------------------------------------------------

SCALES = np.array([1.0, 0.5, 0.25, 0.5, 1.0, 0.25])
MEANS = {
    # top, unit 0: 0.9 (row 0), then rows 2 and 3 tie at 0.8 -> row 2 (lower first)
    "top": np.array([[0.9, 0.0], [0.1, 0.0], [0.8, 0.0], [0.8, 0.0], [0.2, 0.0], [0.0, 0.0]]),
    # bottom, unit 1: rows 1, 2; unit 2: rows 2, 0 (row 2 counted once per neuron: twice)
    "bottom": np.array(
        [[0.0, 0.0, 0.5], [0.0, 0.7, 0.0], [0.0, 0.6, 0.9], [0.0, 0.1, 0.1], [0.0, 0.2, 0.2], [0.0, 0.3, 0.3]]
    ),
}


def _shares(df: pd.DataFrame, layer: str) -> dict[float, float]:
    return {float(r.scale): float(r.share) for r in df[df["layer"] == layer].itertuples()}


def test_crop_shares_hand_counts():
    df = crop_shares(MEANS, SCALES, {"top": [0], "bottom": [1, 2]}, 2)
    assert list(df.columns) == ["layer", "depth", "scale", "share", "n_patches"]
    # top: rows 0, 2 -> scales 1.0, 0.25
    assert _shares(df, "top") == {1.0: 0.5, 0.5: 0.0, 0.25: 0.5}
    # bottom: rows 1, 2, 2, 0 -> scales 0.5, 0.25, 0.25, 1.0
    assert _shares(df, "bottom") == {1.0: 0.25, 0.5: 0.25, 0.25: 0.5}
    assert df.groupby("layer")["n_patches"].first().to_dict() == {"top": 2, "bottom": 4}
    assert df.groupby("layer")["depth"].first().to_dict() == {"top": 1, "bottom": 0}  # depth 0 = last layer
    assert df["scale"].tolist() == [1.0, 0.5, 0.25] * 2


def test_crop_shares_k_above_patches_counts_every_patch():
    df = crop_shares(MEANS, SCALES, {"top": [0, 1], "bottom": [2]}, 10)
    for layer in ("top", "bottom"):
        shares = _shares(df, layer)
        assert shares == pytest.approx({1.0: 1 / 3, 0.5: 1 / 3, 0.25: 1 / 3})
    assert df.groupby("layer")["n_patches"].first().to_dict() == {"top": 12, "bottom": 6}


def test_crop_shares_sum_to_one_and_depth_order():
    rng = np.random.default_rng(6)
    layers = ["l3", "l2", "l1"]
    means = {name: rng.normal(size=(40, 7)) for name in layers}
    scales = rng.choice([1.0, 0.5, 0.25], size=40)
    neurons = {"l3": [0], "l2": [1, 4, 6], "l1": [2, 3]}
    df = crop_shares(means, scales, neurons, 5)
    np.testing.assert_allclose(df.groupby("layer")["share"].sum().to_numpy(), 1.0)
    assert df.groupby("layer")["depth"].first().to_dict() == {"l3": 2, "l2": 1, "l1": 0}
    for layer, units in neurons.items():
        picked = np.concatenate([np.argsort(-means[layer][:, u], kind="stable")[:5] for u in units])
        for r in df[df["layer"] == layer].itertuples():
            assert r.share == pytest.approx(np.count_nonzero(scales[picked] == r.scale) / picked.size)
            assert r.n_patches == 5 * len(units)
