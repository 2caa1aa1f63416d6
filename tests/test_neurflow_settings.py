"""NeurFlow settings: value checks, the library defaults they feed, and the parse-time check of tau."""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from conceptscope import neurflow as nf
from conceptscope.neurflow.settings import NeurFlowBatchSize, NeurFlowSettings
from conceptscope.settings import ConfigError
from conceptscope.workflow import check_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config() -> dict:
    """config/test.yaml with NeurFlow on nap_mnist_cnn: circuit blocks fc (10), pool2 (64), conv1 (32 channels)."""
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    validate(cfg, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert cfg["neurflow"]["models"] == ["nap_mnist_cnn"]
    return cfg


def _problems(cfg: dict) -> str:
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    return str(err.value)


def test_tau_above_a_lower_blocks_channels_fails_at_parse_time(config):
    cfg = copy.deepcopy(config)
    cfg["neurflow"]["tau"] = 40
    msg = _problems(cfg)
    assert (
        "neurflow.tau = 40 exceeds the 32 channels of conv1 (models.nap_mnist_cnn); "
        "lower neurflow.tau or probe a wider layer" in msg
    )
    assert "pool2" not in msg  # 64 channels hold 40 core neurons
    cfg["neurflow"]["tau"] = 100
    msg = _problems(cfg)
    assert "the 64 channels of pool2" in msg and "the 32 channels of conv1" in msg
    cfg["neurflow"]["tau"] = 32  # exactly the channel count is fine; the logit layer (10 units) is never a lower block
    check_config(cfg)


def test_tau_is_checked_against_the_configured_circuit_layers(config):
    cfg = copy.deepcopy(config)
    cfg["neurflow"]["tau"] = 40
    cfg["neurflow"]["layers"] = {"nap_mnist_cnn": ["fc", "pool2"]}  # conv1 is not in the circuit
    check_config(cfg)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"tau": 0}, "neurflow.tau must be a positive integer"),
        ({"method": "simpson"}, "neurflow.method must be one of"),
        ({"ig_steps": "auto"}, "neurflow.ig_steps must be one of"),
        ({"adaptive_rtol": 0.0}, "neurflow.adaptive_rtol must be a finite number > 0"),
        ({"semantic_k": [1, 3]}, "neurflow.semantic_k must satisfy 2 <= min <= max"),
        ({"group_k": [5, 2]}, r"neurflow.group_k: need min <= max, got \[5, 2\]"),
        ({"ig_steps": "adaptive", "tau": 3, "adaptive_max_swaps": 3}, r"adaptive_max_swaps: must be < tau \(3\)"),
        ({"batch_size": {"cuda": 0}}, "neurflow.batch_size.cuda must be a positive integer"),
        ({"max_images": 0}, "neurflow.max_images must be a positive integer"),
    ],
)
def test_bad_values_name_the_key(values, match):
    with pytest.raises(ConfigError, match=match):
        NeurFlowSettings.from_config(values)


def test_batch_size_per_device():
    b = NeurFlowSettings.from_config({"batch_size": {"cpu": 7}}).batch_size
    assert b == NeurFlowBatchSize(cpu=7, cuda=4096)
    assert b.rows("cpu") == 7 and b.rows("cuda:1") == 4096


def test_library_defaults_are_the_settings_defaults():
    s = NeurFlowSettings()
    sig = {name: inspect.signature(getattr(nf, name)).parameters for name in ("importance", "adaptive_importance")}
    assert sig["importance"]["n_steps"].default == s.n_steps and sig["importance"]["method"].default == s.method
    assert sig["importance"]["batch_size"].default == s.batch_size.cpu
    ad = sig["adaptive_importance"]
    assert (ad["max_steps"].default, ad["tau"].default) == (s.n_steps, s.tau)
    assert (ad["rtol"].default, ad["max_swaps"].default) == (s.adaptive_rtol, s.adaptive_max_swaps)
    assert inspect.signature(nf.semantic_groups).parameters["k_range"].default == tuple(s.semantic_k)
    assert inspect.signature(nf.neuron_groups).parameters["k_range"].default == tuple(s.group_k)
    assert inspect.signature(nf.masking_effect).parameters["n_random"].default == s.n_random
    assert inspect.signature(nf.plot_circuit).parameters["per_group"].default == s.per_group


@pytest.mark.parametrize("key", ["optimality_tau", "subset_sizes", "fidelity_tau"])
def test_evaluation_sizes_above_a_lower_blocks_channels_fail_at_parse_time(config, key):
    cfg = copy.deepcopy(config)
    cfg["neurflow"]["evaluation"][key] = [2, 40]
    msg = _problems(cfg)
    assert f"neurflow.evaluation.{key}: 40 channels exceed the 32 channels of conv1" in msg
    assert "pool2" not in msg
    cfg["neurflow"]["evaluation"]["run"] = False  # not run: not checked
    check_config(cfg)


def test_unknown_l2_block_fails_at_parse_time(config):
    cfg = copy.deepcopy(config)
    cfg["neurflow"]["evaluation"]["l2_blocks"] = {"nap_mnist_cnn": ["conv1", "layer9"]}
    msg = _problems(cfg)
    assert "neurflow.evaluation.l2_blocks.nap_mnist_cnn: ['layer9'] are not modules" in msg
    cfg["neurflow"]["evaluation"]["l2_blocks"] = {"other_model": ["conv1"]}
    assert "neurflow.evaluation.l2_blocks: 'other_model' is not in neurflow.models" in _problems(cfg)


def test_repeated_evaluation_values_are_refused():
    with pytest.raises(ConfigError, match="subset_sizes: values must not repeat"):
        NeurFlowSettings.from_config({"evaluation": {"subset_sizes": [1, 5, 5]}})
