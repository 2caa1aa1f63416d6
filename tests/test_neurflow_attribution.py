"""Attribution methods of the NeurFlow comparison (Fig. 10-11) against captum called directly, and the
NeuCEPT knockoff statistics against closed forms and planted signals."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from captum.attr import LRP, GradientShap, GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from conceptscope import neurflow as nf
from conceptscope.neurflow.attribution import (
    ATTRIBUTION_METHODS,
    AttributionRefused,
    channel_attributions,
    method_scores,
)
from conceptscope.neurflow.knockoffs import (
    _gaussian_knockoffs,
    _numpy_global_seed,
    equicorrelated_s,
    knockoff_neurons,
    knockoff_statistics,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:Input Tensor 0 did not already require gradients", "ignore:Setting backward hooks on ReLU"
)
GRADIENT_METHODS = [m for m in ATTRIBUTION_METHODS if m != "knockoff"]
OPTS = {"n_steps": 8, "smoothgrad_samples": 5, "gradient_shap_samples": 6, "seed": 3}

# -- tiny models -------------------------------------------------------------------------------------------


def _bn(c: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(c)
    norm.running_mean.uniform_(-0.5, 0.5)
    norm.running_var.uniform_(0.5, 2.0)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.3, 0.3)
    return norm


class Basic(nn.Module):
    """A ResNet BasicBlock: conv-BN-ReLU-conv-BN, identity skip, the ReLU module used twice."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + x)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(6, 9, 3, padding=1), nn.ReLU(), nn.Conv2d(9, 8, 3, padding=1), nn.ReLU())
        self.block2 = Basic(8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x))))


class ConvLinear(nn.Module):
    """Conv-ReLU, pooling module, functional flatten, linear: a vector output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu = nn.Conv2d(6, 7, 3, padding=1), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(7, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class ChannelsLast(nn.Module):
    """``sub`` seen with channels-last maps in and out."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sub(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Means(nn.Module):
    """The test's own wrapper: the spatial mean as a pooling module (LRP needs a module to apply its rule)."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub, self.pool = sub, nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sub(x)
        return y if y.ndim == 2 else self.pool(y).flatten(1)


@pytest.fixture(scope="module")
def cuts():
    """The plain conv-ReLU cut (stem -> block1) and the ResNet-style cut (block1 -> block2), with maps."""
    torch.manual_seed(1)  # block1 channels 1-7 and block2 channels 1-3, 5-7 are active on the images
    model = Tiny().eval()
    chain = nf.BlockChain(model, ["stem", "block1", "block2"])
    images = torch.rand(6, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = {"stem": chain.prefix(images, "stem"), "block1": chain.prefix(images, "block1")}
    return {
        "plain": (chain.between("stem", "block1"), maps["stem"]),
        "resnet": (chain.between("block1", "block2"), maps["block1"]),
        "model": model,
    }


def captum_direct(method: str, sub: nn.Module, x: torch.Tensor, target: int, opts: dict) -> torch.Tensor:
    """captum on the test's own wrapper, summed over space; stochastic methods seeded like the library."""
    f = Means(sub).eval()
    x = x.clone()
    if method == "integrated_gradients":
        a = IntegratedGradients(f).attribute(x, target=target, n_steps=opts["n_steps"], method="riemann_right")
    elif method == "saliency":
        a = Saliency(f).attribute(x, target=target)
    elif method == "guided_backprop":
        a = GuidedBackprop(f).attribute(x, target=target)
    elif method == "lrp":
        a = LRP(f).attribute(x, target=target)
    else:
        with torch.random.fork_rng(devices=[]), _numpy_global_seed(opts["seed"]):
            torch.manual_seed(opts["seed"])
            if method == "smoothgrad":
                stdev = 0.15 * float(x.max() - x.min())
                a = NoiseTunnel(Saliency(f)).attribute(
                    x, nt_type="smoothgrad", nt_samples=opts["smoothgrad_samples"], stdevs=stdev, target=target
                )
            else:
                base = torch.stack([torch.zeros_like(x[0]), x.mean(0)])
                a = GradientShap(f).attribute(
                    x, baselines=base, n_samples=opts["gradient_shap_samples"], stdevs=0.0, target=target
                )
    return a.detach().sum(dim=tuple(range(2, a.ndim)))


def numpy_state() -> tuple:
    return np.random.get_state()  # noqa: NPY002 - the global state must be left alone


def assert_rel_close(got: torch.Tensor, ref: torch.Tensor, rel: float) -> None:
    torch.testing.assert_close(got, ref, rtol=rel, atol=rel * float(ref.abs().max()))


# -- against captum ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["plain", "resnet"])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_equals_captum_called_directly(cuts, cut, method):
    if cut == "resnet" and method == "lrp":
        pytest.skip("refused, see test_lrp_refuses_a_skip_connection")
    sub, maps = cuts[cut]
    ours = channel_attributions(method, sub, maps, 2, **OPTS)
    assert ours.shape == (len(maps), maps.shape[1]) and ours.dtype == maps.dtype
    assert float(ours.abs().max()) > 0
    torch.testing.assert_close(ours, captum_direct(method, sub, maps, 2, OPTS), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cut", ["plain", "resnet"])
def test_integrated_gradients_equal_our_importance(cuts, cut):
    sub, maps = cuts[cut]
    rows = [4, 0, 2]
    ours = channel_attributions("integrated_gradients", sub, maps[rows], 3, n_steps=12)
    ref = nf.importance(sub, maps, {3: rows}, n_steps=12, method="riemann_right")[3]
    assert_rel_close(ours, ref, 1e-4)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "lrp"])
def test_batching_does_not_change_deterministic_methods(cuts, method):
    sub, maps = cuts["plain"]
    full = channel_attributions(method, sub, maps, 1, n_steps=8)
    for batch_size in (1, 3, 7):
        torch.testing.assert_close(channel_attributions(method, sub, maps, 1, n_steps=8, batch_size=batch_size), full)


def test_lrp_on_a_conv_relu_linear_stack_equals_captum():
    torch.manual_seed(2)
    sub = ConvLinear().eval()
    maps = torch.rand(4, 6, 5, 5)
    ours = channel_attributions("lrp", sub, maps, 1)
    torch.testing.assert_close(ours, captum_direct("lrp", sub, maps, 1, OPTS), rtol=1e-5, atol=1e-5)


def test_saliency_is_the_absolute_gradient_summed_over_space(cuts):
    sub, maps = cuts["resnet"]
    x = maps.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(sub(x).mean((2, 3))[:, 5].sum(), x)
    torch.testing.assert_close(channel_attributions("saliency", sub, maps, 5), grad.abs().sum((2, 3)))


@pytest.mark.parametrize("cut", ["plain", "resnet"])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_channels_last_equals_channels_first(cuts, cut, method):
    if cut == "resnet" and method == "lrp":
        pytest.skip("refused")
    sub, maps = cuts[cut]
    ref = channel_attributions(method, sub, maps, 6, **OPTS)
    cl = channel_attributions(
        method,
        ChannelsLast(sub),
        maps.permute(0, 2, 3, 1),
        6,
        lower_layout="channels_last",
        upper_layout="channels_last",
        **OPTS,
    )
    torch.testing.assert_close(cl, ref, rtol=1e-5, atol=1e-6)


# -- seeds -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["smoothgrad", "gradient_shap"])
def test_stochastic_methods_are_seeded_and_leave_the_global_rng_alone(cuts, method):
    sub, maps = cuts["resnet"]
    torch_state, np_state = torch.get_rng_state(), numpy_state()
    a = channel_attributions(method, sub, maps, 3, seed=0)
    b = channel_attributions(method, sub, maps, 3, seed=0)
    c = channel_attributions(method, sub, maps, 3, seed=1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = numpy_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


# -- LRP refusals ------------------------------------------------------------------------------------------


def test_lrp_refuses_a_skip_connection(cuts):
    sub, maps = cuts["resnet"]
    with pytest.raises(AttributionRefused, match=r"lrp.*add in module 'block2' \(Basic\)"):
        channel_attributions("lrp", sub, maps, 0)
    assert issubclass(AttributionRefused, ValueError)


def test_captum_lrp_does_not_conserve_relevance_across_a_skip_add():
    """Why the skip connection is refused: captum runs, but the add hands the whole relevance to both
    summands (bias-free layers, so without the skip the relevances sum to the output)."""

    class Block(nn.Module):
        def __init__(self, skip: bool) -> None:
            super().__init__()
            self.c1, self.r, self.c2 = (
                nn.Conv2d(4, 4, 3, padding=1, bias=False),
                nn.ReLU(),
                nn.Conv2d(4, 4, 3, padding=1, bias=False),
            )
            self.skip = skip

        def forward(self, x):
            y = self.c2(self.r(self.c1(x)))
            return y + x if self.skip else y

    torch.manual_seed(0)
    x = torch.rand(3, 4, 5, 5)
    for skip, ok in ((False, True), (True, False)):
        f = Means(Block(skip).eval()).eval()
        with torch.no_grad():
            out = f(x)[:, 1]
        total = LRP(f).attribute(x.clone(), target=1).sum((1, 2, 3))
        assert torch.allclose(total, out, rtol=1e-4) is ok


def test_lrp_refuses_a_module_without_a_rule_naming_it():
    sub = nn.Sequential(OrderedDict(conv=nn.Conv2d(6, 7, 3, padding=1), act=nn.GELU())).eval()
    maps = torch.rand(3, 6, 5, 5)
    with pytest.raises(TypeError, match="no rule"):  # what captum itself says, without the module's name
        LRP(Means(sub)).attribute(maps.clone(), target=0)
    with pytest.raises(AttributionRefused, match=r"'act' \(GELU\) have no LRP rule"):
        channel_attributions("lrp", sub, maps, 0)
    assert channel_attributions("saliency", sub, maps, 0).shape == (3, 6)  # other methods still run


def test_lrp_refuses_a_reused_module_and_a_functional_op():
    class Reuse(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.relu = nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.conv(self.relu(self.conv(x)))

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(6, 7, 3, padding=1)

        def forward(self, x):
            return 2.0 * self.conv(x)

    maps = torch.rand(2, 6, 5, 5)
    with pytest.raises(AttributionRefused, match=r"'conv' \(2 calls\)"):
        channel_attributions("lrp", Reuse().eval(), maps, 0)
    with pytest.raises(AttributionRefused, match=r"mul .*no LRP rule"):
        channel_attributions("lrp", Scaled().eval(), maps, 0)


def test_lrp_leaves_no_captum_state_on_the_modules():
    sub = ConvLinear().eval()
    maps = torch.rand(3, 6, 5, 5)
    LRP(Means(sub)).attribute(maps.clone(), target=0)
    left = [n for n, m in sub.named_modules() if "activations" in m.__dict__]
    assert left  # captum itself leaves its saved activations on the modules ...
    for n in left:
        del sub.get_submodule(n).activations
    channel_attributions("lrp", sub, maps, 0)  # ... channel_attributions does not
    assert not [n for n, m in sub.named_modules() if "rule" in m.__dict__ or "activations" in m.__dict__]


# -- method_scores -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ATTRIBUTION_METHODS)
def test_method_scores_shapes_timings_and_no_side_effects(cuts, method):
    model = cuts["model"]
    sub, maps = cuts["plain"]
    model.train()
    model.stem[0].weight.requires_grad_(True)
    model.block1[0].weight.requires_grad_(False)
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    before = maps.clone()
    try:
        scores, cpu, wall = method_scores(method, sub, maps, 1, **OPTS)
    finally:
        restored = {n: m.training for n, m in model.named_modules()} == modes
        restored &= {n: p.requires_grad for n, p in model.named_parameters()} == flags
        model.eval()
        model.block1[0].weight.requires_grad_(True)
    assert restored
    assert torch.equal(maps, before)
    assert isinstance(scores, np.ndarray) and scores.shape == (maps.shape[1],) and scores.dtype == np.float64
    assert cpu >= 0 and wall >= 0 and np.isfinite(scores).all()
    if method == "knockoff":
        with torch.no_grad():
            y = sub(maps).mean((2, 3))[:, 1].double().numpy()
        np.testing.assert_allclose(scores, knockoff_statistics(maps.mean((2, 3)).double().numpy(), y, seed=3))
    else:
        ref = channel_attributions(method, sub, maps, 1, **OPTS).double().sum(0).numpy()
        np.testing.assert_allclose(scores, ref, rtol=1e-6, atol=1e-9)


def test_bad_arguments_raise(cuts):
    sub, maps = cuts["plain"]
    with pytest.raises(ValueError, match="method must be one of"):
        channel_attributions("deeplift", sub, maps, 0)
    with pytest.raises(ValueError, match="knockoff_statistics"):
        channel_attributions("knockoff", sub, maps, 0)
    with pytest.raises(ValueError, match="target 8 out of range"):
        channel_attributions("saliency", sub, maps, 8)
    with pytest.raises(ValueError, match="batch_size"):
        channel_attributions("saliency", sub, maps, 0, batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        channel_attributions("integrated_gradients", sub, maps, 0, n_steps=0)
    with pytest.raises(ValueError, match="smoothgrad_noise"):
        channel_attributions("smoothgrad", sub, maps, 0, smoothgrad_noise=-0.1)
    with pytest.raises(ValueError, match=r"baselines must be .*\(m, 6, 5, 5\)"):
        channel_attributions("gradient_shap", sub, maps, 0, baselines=maps.permute(0, 2, 3, 1))
    bad = maps.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        channel_attributions("saliency", sub, bad, 0)


def test_gradient_shap_uses_the_given_baselines(cuts):
    sub, maps = cuts["plain"]
    default = channel_attributions("gradient_shap", sub, maps, 2)
    zero_mean = torch.stack([torch.zeros_like(maps[0]), maps.mean(0)])
    torch.testing.assert_close(channel_attributions("gradient_shap", sub, maps, 2, baselines=zero_mean), default)
    assert not torch.allclose(channel_attributions("gradient_shap", sub, maps, 2, baselines=maps[:2]), default)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(cuts):
    sub, maps = cuts["plain"]
    for method in ("integrated_gradients", "saliency", "lrp"):
        ref = channel_attributions(method, sub, maps, 1, n_steps=8)
        got = channel_attributions(method, sub.cuda(), maps.cuda(), 1, n_steps=8)
        sub.cpu()
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), ref, rtol=1e-4, atol=1e-5)
    state = torch.cuda.get_rng_state()
    a = channel_attributions("smoothgrad", sub.cuda(), maps.cuda(), 1, seed=0)
    b = channel_attributions("smoothgrad", sub.cuda(), maps.cuda(), 1, seed=0)
    sub.cpu()
    assert torch.equal(a, b) and torch.equal(torch.cuda.get_rng_state(), state)


# -- knockoffs ---------------------------------------------------------------------------------------------


def _correlated(n: int, p: int, rho: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Sigma = rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))  # AR(1) correlations
    return rng.multivariate_normal(np.zeros(p), Sigma, size=n) * np.linspace(0.5, 2.0, p)


@pytest.mark.parametrize("rho", [0.1, 0.8])
def test_knockpy_equicorrelated_s_is_the_closed_form(rho):
    X = _correlated(400, 6, rho, seed=0)
    _, sampler = _gaussian_knockoffs(X, seed=0)
    S, Sigma = sampler.fetch_S(), sampler.Sigma
    s = equicorrelated_s(Sigma)
    np.testing.assert_allclose(S - np.diag(np.diag(S)), 0.0, atol=1e-12)
    # knockpy shrinks by its bisection factor gamma in [1 - 2^-10, 1)
    np.testing.assert_allclose(np.diag(S), s, rtol=2**-10 + 1e-9)
    assert (np.diag(S) <= s).all()
    # the closed form is the largest equal s (on the correlation scale, capped at 1) with 2C - diag(s) PSD
    d = np.sqrt(np.diag(Sigma))
    C, t = Sigma / np.outer(d, d), s[0] / Sigma[0, 0]
    assert np.allclose(s / np.diag(Sigma), t)
    assert np.linalg.eigvalsh(2 * C - t * np.eye(6))[0] >= -1e-10
    assert t == 1.0 or np.linalg.eigvalsh(2 * C - (t + 1e-6) * np.eye(6))[0] < 0


def test_knockoffs_have_the_joint_covariance():
    X = _correlated(40000, 4, 0.6, seed=1)
    Xk, sampler = _gaussian_knockoffs(X, seed=2)
    Sigma, S = sampler.Sigma, sampler.fetch_S()
    joint = np.block([[Sigma, Sigma - S], [Sigma - S, Sigma]])
    emp = np.cov(np.hstack([X, Xk]).T)
    np.testing.assert_allclose(emp, joint, atol=0.06 * float(np.abs(joint).max()))


def test_knockoff_statistics_find_the_planted_features_and_are_reproducible():
    X = _correlated(300, 8, 0.5, seed=3)
    rng = np.random.default_rng(4)
    y = 2 * X[:, 0] + X[:, 3] + 0.05 * rng.normal(size=300)
    X_before, state = X.copy(), numpy_state()
    W = knockoff_statistics(X, y, seed=5)
    assert W.shape == (8,) and set(knockoff_neurons(W, 2).tolist()) == {0, 3}
    np.testing.assert_array_equal(knockoff_statistics(X, y, seed=5), W)
    np.testing.assert_array_equal(X, X_before)
    after = numpy_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]


def test_knockoff_statistics_give_constant_columns_zero():
    X = _correlated(200, 6, 0.3, seed=6)
    y = X[:, 1] - X[:, 4] + 0.1 * np.random.default_rng(7).normal(size=200)
    X[:, 2] = 0.0  # a dead channel
    X[:, 5] = 3.5
    W = knockoff_statistics(X, y)
    assert W[2] == 0 and W[5] == 0 and set(knockoff_neurons(W, 2).tolist()) == {1, 4}
    np.testing.assert_array_equal(knockoff_statistics(np.ones((5, 3)), np.arange(5.0)), np.zeros(3))
    np.testing.assert_array_equal(knockoff_statistics(X, np.full(200, 2.0)), np.zeros(6))


def test_knockoff_bad_inputs_raise():
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.zeros(10)
    for args, match in [
        ((X[:, 0], y), "2-D"),
        ((X, y[:9]), "one value per row"),
        ((X[:1], y[:1]), "at least 2"),
        ((np.where(np.eye(10, 3) > 0, np.nan, X), y), "finite"),
        ((X, np.full(10, np.inf)), "finite"),
    ]:
        with pytest.raises(ValueError, match=match):
            knockoff_statistics(*args)
    with pytest.raises(ValueError, match="positive definite"):
        equicorrelated_s(np.ones((3, 3)))


def test_knockoff_neurons_order_and_ties():
    W = np.array([0.1, 0.5, 0.5, -1.0, 0.7])
    np.testing.assert_array_equal(knockoff_neurons(W, 3), [4, 1, 2])
    with pytest.raises(ValueError, match="tau"):
        knockoff_neurons(W, 6)
