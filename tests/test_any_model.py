"""timm models the project never tuned for (random weights): every method reads C channels per layer, whatever
the layout, or the config is refused before the run with a named reason."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conceptscope import activations as act
from conceptscope import data, models, naps, nas
from conceptscope.settings import ConfigError
from conceptscope.workflow import check_config, layer_layouts

ROOT = Path(__file__).resolve().parents[1]

# name -> (spec, input size, probed layers, channels of the first two probed layers)
MODELS = {
    "mobilenet": ("timm:mobilenetv3_small_050", [64, 64], ["blocks.2", "conv_head", "classifier"], [24, 1024]),
    "vit": ("timm:vit_tiny_patch16_224", None, ["blocks.9", "blocks.11", "head"], [192, 192]),
    "swin": ("timm:swin_tiny_patch4_window7_224", None, ["layers.2", "layers.3", "head"], [384, 768]),
}
LAYOUTS = {
    "mobilenet": ["channels_first", "channels_first", "vector"],
    "vit": ["tokens", "tokens", "vector"],
    "swin": ["channels_last", "channels_last", "vector"],
}


def _config(name: str) -> dict:
    spec, size, layers, _ = MODELS[name]
    return {
        "datasets": {"d": {"kind": "digits", "channels": 1}},
        "models": {
            name: {
                "spec": spec,
                "dataset": "d",
                "input_size": size,
                "layers": layers,
                "full_maps": [],
                "splits": ["test"],
                "layouts": {},
                "train": {"epochs": 0, "train_split": "train", "eval_split": "test"},
            }
        },
    }


@pytest.mark.parametrize("name", MODELS)
def test_layouts_are_detected_at_parse_time(name):
    cfg = _config(name)
    assert list(layer_layouts(cfg, name).values()) == LAYOUTS[name]


@pytest.mark.parametrize("name", MODELS)
def test_nmf_is_refused_at_parse_time_on_layers_that_go_negative(name):
    """None of these three has a ReLU at its block outputs (BatchNorm, Hardswish, LayerNorm residuals)."""
    from snakemake.utils import validate

    cfg = _config(name)
    cfg["nmf"] = {"models": [name]}
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"))
    with pytest.raises(ConfigError, match=rf"nmf\.layers\.{name}: .* output negative values"):
        check_config(copy.deepcopy(cfg))


@pytest.fixture(scope="module")
def digits6() -> data.ImageSet:
    s = data.load_split({"kind": "digits"}, "test", key="datasets.digits")
    return s.subset(np.arange(12))


@pytest.mark.parametrize("name", MODELS)
def test_naps_and_nas_read_one_unit_per_channel(name, digits6, tmp_path):
    spec, size, layers, channels = MODELS[name]
    torch.manual_seed(0)
    model, inp = models.build_model(spec, n_classes=10, in_channels=1, input_size=tuple(size) if size else None)
    paths = {layer: tmp_path / f"{layer}.h5" for layer in layers[:2]}
    act.cache_activations(model.eval(), inp, digits6, paths, batch_size=12, progress=False)
    for layer, c in zip(layers[:2], channels, strict=True):
        cached = act.read_cache(paths[layer])
        assert cached.n_units == c and cached.arrays["mean"].shape == (12, c), (name, layer)
        X = naps.disentangle(cached.arrays, cached.kind, "mean")
        r = naps.extract_naps(
            X,
            kind=cached.kind,
            method="mean",
            unit_shape=cached.unit_shape,
            labels=cached.labels,
            predictions=cached.predictions,
            sample_ids=cached.sample_ids,
        )
        assert len(r.nap) == 12 and r.meta["n_features"] == c
        values = nas.unit_activations(cached.arrays, cached.kind)
        s = nas.summarize_layer(values, cached.labels, digits6.class_names, m=6)
        assert s.n_units == c and len(nas.classify_units(s)) == c


def test_the_layouts_key_must_name_probed_layers_and_fit_them():
    cfg = _config("swin")
    cfg["models"]["swin"]["layouts"] = {"layers.3": "tokens", "layers.9": "channels_last"}
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert "models.swin.layouts: ['layers.9'] are not in models.swin.layers" in str(err.value)
    cfg["models"]["swin"]["layouts"] = {"layers.3": "tokens"}
    with pytest.raises(ConfigError, match=r"models\.swin layer layers\.3: layout 'tokens' needs 2 axes"):
        check_config(cfg)


def test_the_shipped_configs_do_not_need_layouts():
    for path in sorted((ROOT / "config").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        for m in cfg["models"]:
            assert "layouts" not in cfg["models"][m], path


def test_vit_and_swin_are_built_for_the_configured_input_size():
    """timm ViT / Swin take the configured size (img_size); a non-square Swin stage needs its layout set."""
    vit = _config("vit")
    vit["models"]["vit"]["input_size"] = [64, 64]
    check_config(vit)
    assert layer_layouts(vit, "vit")["blocks.11"] == "tokens"
    swin = _config("swin")
    swin["models"]["swin"]["input_size"] = [224, 160]
    with pytest.raises(ConfigError, match=r"models\.swin layer layers\.2: cannot tell channels"):
        check_config(swin)
    swin["models"]["swin"]["layouts"] = {"layers.2": "channels_last", "layers.3": "channels_last"}
    check_config(swin)
    assert layer_layouts(swin, "swin")["layers.3"] == "channels_last"
