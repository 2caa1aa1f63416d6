"""Config validation: the schema (typos, types, defaults) and the cross-field checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conceptscope.workflow import ConfigError, canonical, check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def test_config() -> dict:
    cfg = _load(ROOT / "config" / "test.yaml")
    validate(cfg, SCHEMA)
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_and_check(path):
    cfg = _load(path)
    validate(cfg, SCHEMA)
    check_config(cfg)


def test_defaults_are_filled_from_the_schema(test_config):
    m = test_config["models"]["timm_resnet18"]
    assert m["train"] == {
        "epochs": 0,
        "optimizer": None,
        "lr": None,
        "momentum": None,
        "weight_decay": None,
        "milestones": None,
        "gamma": None,
        "batch_size": None,
        "train_split": "train",
        "eval_split": "test",
    }
    assert m["pretrained"] is False and m["full_maps"] == []
    assert test_config["datasets"]["digits"]["test_fraction"] == 0.25
    assert test_config["gpus_per_job"] == 0


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("models", "nap_mnist_cnn", "train", "epochz"), 3, "epochz"),
        (("models", "nap_mnist_cnn", "layerz"), ["fc"], "layerz"),
        (("datasets", "digits", "rooot"), "/data", "rooot"),
        (("sed",), 1, "sed"),
        (("models", "nap_mnist_cnn", "train", "epochs"), "ten", "ten"),
        (("models", "nap_mnist_cnn", "spec"), "keras:mnist", "keras:mnist"),
        (("datasets", "digits", "kind"), "svhn", "svhn"),
    ],
)
def test_bad_key_or_type_fails_naming_it(path, value, expected):
    cfg = _load(ROOT / "config" / "test.yaml")
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert expected in str(err.value)


def test_unknown_layer_fails_with_the_valid_names(test_config):
    cfg = copy.deepcopy(test_config)
    cfg["models"]["timm_resnet18"]["layers"] = ["layer1", "layer5"]
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    msg = str(err.value)
    assert "models.timm_resnet18.layers" in msg and "layer5" in msg
    assert "'layer5': closest layer4, layer3, layer2, layer1" in msg and "python -m conceptscope.models" in msg
    assert len(msg) < 400 and "layer4.1.conv2" not in msg  # not every module path on one line


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["models"]["nap_mnist_cnn"].update(dataset="mnist"), "models.nap_mnist_cnn.dataset: 'mnist'"),
        (lambda c: c["models"]["nap_mnist_cnn"].update(full_maps=["pool1"]), "models.nap_mnist_cnn.full_maps"),
        (lambda c: c["models"]["nap_mnist_cnn"].update(splits=["val"]), "split 'val' does not exist"),
        (
            lambda c: c["datasets"].update(m={"kind": "mnist", "root": "/nonexistent/mnist", "download": False}),
            "datasets.m.root: /nonexistent/mnist does not exist",
        ),
        (lambda c: c["datasets"].update(q={"kind": "quickdraw", "root": None}), "datasets.q.root is not set"),
    ],
)
def test_cross_field_errors_name_the_key(test_config, edit, expected):
    cfg = copy.deepcopy(test_config)
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert expected in str(err.value)


def test_canonical_sorts_keys_recursively_and_keeps_list_order():
    a = canonical({"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": (3, 1)})
    assert list(a) == ["a", "b"] and list(a["b"]) == ["x", "y"]
    assert list(a["b"]["x"][0]) == ["p", "q"] and a["a"] == [3, 1]
    assert repr(canonical({"k": 1, "j": 2})) == repr(canonical({"j": 2, "k": 1}))


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "paper").glob("*.yaml")), ids=lambda p: p.name)
def test_paper_configs_are_valid_apart_from_the_data(path):
    """Schema and layer names hold; the data folders exist only where the data was put."""
    cfg = _load(path)
    validate(cfg, SCHEMA)
    check_config(cfg, check_data=False)
    if all(ds.get("download") for ds in cfg["datasets"].values()):
        check_config(cfg)  # every data set is fetched (prefetch or its first job): nothing is missing yet
    for ds in cfg["datasets"].values():
        ds["download"] = False
    with pytest.raises(ConfigError, match=r"\.root: .* does not exist"):
        check_config(cfg)


SECTION_ERRORS = [
    ("naps", lambda n: n.update(models=["nap_mnist_cnn", "ghost"]), "naps.models: 'ghost' is not a key of models"),
    (
        "naps",
        lambda n: n.update(split="train", models=["timm_resnet18"]),
        "split 'train' is not cached for timm_resnet18",
    ),
    ("naps", lambda n: n.update(gallery_method="mean", methods=["max"]), "naps.gallery_method: 'mean'"),
    (
        "naps",
        lambda n: n.update(fig7_layers={"nap_mnist_cnn": "conv9"}),
        "layer 'conv9' is not probed in nap_mnist_cnn",
    ),
    ("naps", lambda n: n.update(compare=[["nap_mnist_cnn", "fc", "timm_resnet18", "layer9"]]), "'layer9'"),
    ("naps", lambda n: n.update(reference={"timm_resnet18": {"model": "x", "layers": {"stem": "y"}}}), "'stem'"),
    ("nmf", lambda n: n.update(models=["ghost"]), "nmf.models: 'ghost' is not a key of models"),
    ("nmf", lambda n: n.update(layers={"timm_resnet18": ["layer9"]}), "nmf.layers.timm_resnet18: ['layer9']"),
    ("nmf", lambda n: n.update(eigen_k={"nap_mnist_cnn": 3}), "nmf.eigen_k: 'nap_mnist_cnn' is not in nmf.models"),
    ("nmf", lambda n: n.update(split="train"), "split 'train' is not cached for timm_resnet18"),
    ("nas", lambda n: n.update(models=["ghost"]), "nas.models: 'ghost' is not a key of models"),
    (
        "nas",
        lambda n: n.update(split="train", models=["timm_resnet18"]),
        "split 'train' is not cached for timm_resnet18",
    ),
    (
        "nas",
        lambda n: n.update(model_splits={"timm_resnet18": "train"}),
        "split 'train' is not cached for timm_resnet18",
    ),
    ("nas", lambda n: n.update(model_splits={"vgg": "val"}), "nas.model_splits: 'vgg' is not in nas.models"),
    ("nas", lambda n: n.update(layers={"timm_resnet18": ["layer9"]}), "nas.layers.timm_resnet18: ['layer9']"),
    ("nas", lambda n: n.update(layers={"ghost": ["fc"]}), "nas.layers: 'ghost' is not in nas.models"),
    ("nas", lambda n: n.update(width_thresholds=[12, 4]), "nas.width_thresholds: need t1 < t2"),
    ("neurflow", lambda n: n.update(models=["ghost"]), "neurflow.models: 'ghost' is not a key of models"),
    (
        "neurflow",
        lambda n: n.update(split="train", models=["timm_resnet18"]),
        "split 'train' is not cached for timm_resnet18",
    ),
    (
        "neurflow",
        lambda n: n.update(layers={"nap_mnist_cnn": ["fc", "conv2"]}),
        "neurflow.layers.nap_mnist_cnn: ['conv2']",
    ),
    (
        "neurflow",
        lambda n: n.update(layers={"ghost": ["fc", "x"]}),
        "neurflow.layers: 'ghost' is not in neurflow.models",
    ),
    ("neurflow", lambda n: n.update(group_k=[5, 2]), "neurflow.group_k: need min <= max"),
    (
        "neurflow",
        lambda n: n.update(ig_steps="adaptive", tau=3, adaptive_max_swaps=3),
        "neurflow.adaptive_max_swaps: must be < tau (3)",
    ),
]


@pytest.mark.parametrize("section, edit, expected", SECTION_ERRORS)
def test_section_errors_name_the_key(test_config, section, edit, expected):
    cfg = copy.deepcopy(test_config)
    edit(cfg[section])
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert expected in str(err.value)


def test_an_image_folder_without_a_used_split_fails_at_parse_time(test_config, tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "train" / cls / "1.png")
    cfg = copy.deepcopy(test_config)
    cfg["datasets"]["mine"] = {"kind": "imagefolder", "root": str(tmp_path), "splits": ["train", "test"]}
    validate(cfg, SCHEMA)
    cfg["models"]["nap_mnist_cnn"]["dataset"] = "mine"
    with pytest.raises(ConfigError, match=rf"datasets\.mine \(imagefolder\): {tmp_path / 'test'} not found"):
        check_config(cfg)
    (tmp_path / "test" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "test" / "a" / "1.png")
    with pytest.raises(ConfigError, match=r"class folder\(s\) b missing or without images in .*test"):
        check_config(cfg)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c.update(sed=1), "the top level: unknown key 'sed' (did you mean 'seed'?)"),
        (
            lambda c: c["models"]["nap_mnist_cnn"]["train"].update(epochz=3),
            "models.nap_mnist_cnn.train: unknown key 'epochz' (did you mean 'epochs'?)",
        ),
        (lambda c: c["datasets"]["digits"].update(kind="digit"), "datasets.digits.kind: 'digit' is not one of"),
        (
            lambda c: c["models"]["nap_mnist_cnn"]["train"].update(epochs="ten"),
            "models.nap_mnist_cnn.train.epochs: 'ten' is not of type integer",
        ),
    ],
)
def test_schema_errors_are_a_few_lines_with_the_full_report_in_a_file(edit, expected, tmp_path):
    from conceptscope.workflow import validate_config

    cfg = _load(ROOT / "config" / "test.yaml")
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA, detail=tmp_path / "detail.log")
    msg = str(err.value)
    assert expected in msg and len(msg.splitlines()) <= 4, msg
    assert str(tmp_path / "detail.log") in msg and len((tmp_path / "detail.log").read_text()) > len(msg)


def test_a_misspelt_model_name_gives_the_closest_names(test_config):
    cfg = copy.deepcopy(test_config)
    cfg["models"]["timm_resnet18"]["spec"] = "timm:resnt18"
    with pytest.raises(ConfigError, match=r"timm has no model 'resnt18' \(closest: resnet18"):
        check_config(cfg)


def test_nmf_on_a_layer_with_negative_outputs_fails_at_parse_time(test_config):
    """timm ResNet-18's fc goes below 0 (and so does layer1.0.bn1, before its ReLU); layer1 ends in a ReLU."""
    cfg = copy.deepcopy(test_config)
    cfg["models"]["timm_resnet18"]["layers"] = ["layer1.0.bn1", "layer1", "layer4", "fc"]
    cfg["nmf"]["layers"] = {"timm_resnet18": ["layer1.0.bn1", "layer1", "fc"]}
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    msg = str(err.value)
    assert "nmf.layers.timm_resnet18: layer1.0.bn1 (min -" in msg and ", fc (min -" in msg and "layer1 (" not in msg
    cfg["nmf"]["layers"] = {}  # default: every probed layer but the last, all after a ReLU but the BatchNorm
    with pytest.raises(ConfigError, match=r"layer1\.0\.bn1 \(min -[0-9.]+\) output negative values"):
        check_config(cfg)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("mnist", r"MNIST/raw/t10k-images-idx3-ubyte not found"),
        ("cifar10", r"cifar-10-batches-py/test_batch not found"),
        ("cifar100", r"cifar-100-python/test not found"),
        ("quickdraw", r"datasets\.d \(quickdraw\): .* not found. Put one <class>\.npy"),
    ],
)
def test_an_empty_data_folder_fails_at_parse_time_naming_the_missing_file(test_config, tmp_path, kind, expected):
    cfg = copy.deepcopy(test_config)
    cfg["datasets"]["d"] = {"kind": kind, "root": str(tmp_path)}  # exists, holds nothing
    validate(cfg, SCHEMA)
    cfg["models"]["nap_mnist_cnn"]["dataset"] = "d"
    cfg["naps"]["compare"] = []  # Fig. 14 compares two models on one data set
    cfg["naps"]["accuracy_pairs"] = []  # so does NAP-3
    with pytest.raises(ConfigError, match=expected):
        check_config(cfg)
    cfg["datasets"]["d"]["download"] = True  # fetched by the job that reads it (archive kinds)
    if kind != "quickdraw":
        check_config(cfg)


def test_probed_layers_out_of_forward_order_fail_at_parse_time(test_config):
    """NAP depth, NMF depth trends and NeurFlow's default blocks read the probed list as forward order."""
    cfg = copy.deepcopy(test_config)
    cfg["models"]["nap_mnist_cnn"]["layers"] = ["conv1", "fc", "pool2"]
    cfg["models"]["nap_mnist_cnn"]["full_maps"] = []
    with pytest.raises(ConfigError, match=r"models\.nap_mnist_cnn\.layers: list the probed layers in forward order"):
        check_config(cfg)
