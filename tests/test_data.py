"""Tests of conceptscope.data: splits, subsets, the input pipeline and every reader (tiny local files only)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from conceptscope import data
from conceptscope.data import DataMissingError, ImageSet, fit_to_input, load_split, select_subset

KEY = "datasets.mydata"


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _digits(split, **extra):
    return load_split({"kind": "digits", **extra}, split, key="datasets.digits")


# -- digits ----------------------------------------------------------------------------------


def test_digits_split_partition_stratified_and_values(digits):
    train, test = _digits("train"), _digits("test")
    assert len(train) + len(test) == 1797
    assert not set(train.sample_ids) & set(test.sample_ids)
    np.testing.assert_array_equal(np.sort(np.concatenate([train.sample_ids, test.sample_ids])), np.arange(1797))
    for c in range(10):
        n_c = int((digits.target == c).sum())
        assert abs(int((test.labels == c).sum()) - 0.25 * n_c) <= 1
    for s in (train, test):
        assert s.n_classes == 10 and s.channels == 1
        np.testing.assert_array_equal(s.labels, digits.target[s.sample_ids])
        x = s.images(np.arange(len(s)))
        assert x.dtype == torch.float32 and tuple(x.shape) == (len(s), 1, 8, 8)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        np.testing.assert_allclose(x[:, 0].numpy(), digits.images[s.sample_ids] / 16.0, rtol=0, atol=1e-6)


def test_digits_deterministic_and_seeded():
    a, b = _digits("test"), _digits("test")
    np.testing.assert_array_equal(a.sample_ids, b.sample_ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert torch.equal(a.images(np.arange(len(a))), b.images(np.arange(len(b))))
    assert not np.array_equal(a.sample_ids, _digits("test", split_seed=1).sample_ids)


# -- select_subset / ImageSet ------------------------------------------------------------------

LABELS = np.array([2, 0, 2, 1, 0, 2, 1, 0, 0, 2])


def test_select_subset_per_class_first_n_and_combined():
    np.testing.assert_array_equal(select_subset(LABELS, per_class=2), [0, 1, 2, 3, 4, 6])
    np.testing.assert_array_equal(select_subset(LABELS, first_n=4), [0, 1, 2, 3])
    np.testing.assert_array_equal(select_subset(LABELS, per_class=2, first_n=4), [0, 1, 2, 3])
    np.testing.assert_array_equal(select_subset(LABELS, per_class=1, first_n=10), [0, 1, 3])
    np.testing.assert_array_equal(select_subset(LABELS), np.arange(10))
    np.testing.assert_array_equal(select_subset(LABELS, first_n=100), np.arange(10))


def test_select_subset_nested():
    for per_class in (None, 1, 2, 3):
        prev = select_subset(LABELS, per_class=per_class, first_n=1)
        for n in range(2, 11):
            cur = select_subset(LABELS, per_class=per_class, first_n=n)
            np.testing.assert_array_equal(cur[: len(prev)], prev)
            prev = cur
    for k in range(1, 4):
        assert set(select_subset(LABELS, per_class=k)) <= set(select_subset(LABELS, per_class=k + 1))


@pytest.mark.parametrize("kwargs", [{"per_class": 0}, {"first_n": 0}, {"per_class": -1}, {"first_n": -3}])
def test_select_subset_bad_values(kwargs):
    with pytest.raises(ValueError):
        select_subset(LABELS, **kwargs)


def test_subset_via_spec(digits):
    full = _digits("test")
    sub = _digits("test", subset={"test": {"per_class": 3}, "train": {"first_n": 5}})
    assert len(sub) == 30
    np.testing.assert_array_equal(np.bincount(sub.labels), [3] * 10)
    pos = select_subset(full.labels, per_class=3)
    np.testing.assert_array_equal(sub.sample_ids, full.sample_ids[pos])
    np.testing.assert_array_equal(sub.labels, digits.target[sub.sample_ids])
    assert torch.equal(sub.images(np.arange(30)), full.images(pos))
    assert len(_digits("train", subset={"test": {"per_class": 3}, "train": {"first_n": 5}})) == 5


def _toy_set(n=7):
    data = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2) / n
    return ImageSet(
        name="toy",
        split="test",
        labels=np.arange(n, dtype=np.int64) % 3,
        class_names=["a", "b", "c"],
        sample_ids=np.arange(n, dtype=np.int64) + 100,
        channels=1,
        loader=lambda pos, size: data[torch.as_tensor(pos)],
    )


def test_imageset_subset_aligned():
    s = _toy_set()
    pos = np.array([5, 1, 3])
    sub = s.subset(pos)
    np.testing.assert_array_equal(sub.sample_ids, s.sample_ids[pos])
    np.testing.assert_array_equal(sub.labels, s.labels[pos])
    assert torch.equal(sub.images(np.arange(3)), s.images(pos))
    subsub = sub.subset(np.array([2, 0]))
    np.testing.assert_array_equal(subsub.sample_ids, [103, 105])
    assert torch.equal(subsub.images(np.arange(2)), s.images(np.array([3, 5])))


def test_batches_cover_in_order():
    s = _toy_set()
    got = list(s.batches(3, size=(2, 2), channels=1))
    assert [len(p) for _, _, p in got] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([p for _, _, p in got]), np.arange(7))
    for x, y, p in got:
        np.testing.assert_array_equal(p, np.arange(p[0], p[-1] + 1))
        assert torch.equal(x, s.images(p)) and torch.equal(y, torch.from_numpy(s.labels[p]))
    with pytest.raises(ValueError):
        next(s.batches(0, size=(2, 2), channels=1))


# -- fit_to_input ------------------------------------------------------------------------------


def test_fit_resize_matches_interpolate_and_stays_in_range():
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    out = fit_to_input(x, (11, 13), 3)
    ref = F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False, antialias=True)
    assert out.shape == (2, 3, 11, 13)
    torch.testing.assert_close(out, ref.clamp(0, 1))
    torch.testing.assert_close(out, F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False))
    small = fit_to_input(x, (2, 3), 3)  # shrinking: antialiasing matters
    torch.testing.assert_close(small, F.interpolate(x, (2, 3), mode="bilinear", antialias=True).clamp(0, 1))
    assert not torch.allclose(small, F.interpolate(x, (2, 3), mode="bilinear", align_corners=False))
    extreme = (torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    for size in ((4, 4), (20, 17), (9, 9)):
        y = fit_to_input(extreme, size, 3)
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_fit_channels():
    g = torch.rand(2, 1, 4, 4)
    rgb = fit_to_input(g, (4, 4), 3)
    assert rgb.shape == (2, 3, 4, 4)
    for c in range(3):
        assert torch.equal(rgb[:, c], g[:, 0])
    c3 = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(fit_to_input(c3, (4, 4), 1), c3.mean(dim=1, keepdim=True))
    assert torch.equal(fit_to_input(c3, (4, 4), 3), c3)
    with pytest.raises(ValueError):
        fit_to_input(torch.rand(1, 2, 4, 4), (4, 4), 3)
    with pytest.raises(ValueError):
        fit_to_input(torch.rand(4, 4), (4, 4), 1)


# -- mnist -------------------------------------------------------------------------------------


def _idx(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, dtype=">i4").tobytes() + arr.tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_roundtrip(tmp_path, gz):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        imgs, labs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        data[prefix] = imgs, labs
        for part, arr in (("images-idx3", imgs), ("labels-idx1", labs)):
            name = raw / f"{prefix}-{part}-ubyte"
            if gz:
                with gzip.open(name.with_name(name.name + ".gz"), "wb") as fh:
                    fh.write(_idx(arr))
            else:
                name.write_bytes(_idx(arr))
    for split, prefix in (("train", "train"), ("test", "t10k")):
        s = load_split({"kind": "mnist", "root": str(tmp_path)}, split, key=KEY)
        imgs, labs = data[prefix]
        np.testing.assert_array_equal(s.labels, labs)
        np.testing.assert_array_equal(s.sample_ids, np.arange(len(labs)))
        assert s.channels == 1 and s.class_names == [str(d) for d in range(10)] and s.name == "mydata"
        x = s.images(np.arange(len(labs)))
        assert x.shape == (len(labs), 1, 28, 28)
        np.testing.assert_allclose(x[:, 0].numpy(), imgs / 255.0, rtol=0, atol=1e-6)


# -- cifar -------------------------------------------------------------------------------------


def _pickle(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


def test_cifar10(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name, n in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 3)]:
        batches[name] = rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]
        _pickle(folder / name, {b"data": batches[name][0], b"labels": batches[name][1]})
    names = [f"class{i}".encode() for i in range(10)]
    _pickle(folder / "batches.meta", {b"label_names": names})
    for split, parts in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        s = load_split({"kind": "cifar10", "root": str(tmp_path)}, split, key=KEY)
        data = np.concatenate([batches[p][0] for p in parts])
        np.testing.assert_array_equal(s.labels, sum((batches[p][1] for p in parts), []))
        assert s.class_names == [f"class{i}" for i in range(10)] and s.channels == 3
        assert s.superclass_labels is None
        x = s.images(np.arange(len(s)))
        assert x.shape == (len(data), 3, 32, 32)
        np.testing.assert_allclose(x.numpy(), data.reshape(-1, 3, 32, 32) / 255.0, rtol=0, atol=1e-6)
        # channel-major layout: first 1024 bytes are the red plane
        np.testing.assert_allclose(x[0, 0, 0, :].numpy(), data[0, :32] / 255.0, rtol=0, atol=1e-6)


def test_cifar100(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    parts = {}
    for name, n in (("train", 4), ("test", 3)):
        parts[name] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8), list(range(n)), [n - 1 - i for i in range(n)])
        _pickle(
            folder / name, {b"data": parts[name][0], b"fine_labels": parts[name][1], b"coarse_labels": parts[name][2]}
        )
    fine, coarse = [f"f{i}".encode() for i in range(100)], [f"c{i}".encode() for i in range(20)]
    _pickle(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": coarse})
    for split in ("train", "test"):
        data, f, c = parts[split]
        s = load_split({"kind": "cifar100", "root": str(tmp_path)}, split, key=KEY)
        np.testing.assert_array_equal(s.labels, f)
        np.testing.assert_array_equal(s.superclass_labels, c)
        assert s.class_names == [f"f{i}" for i in range(100)] and s.superclass_names == [f"c{i}" for i in range(20)]
        np.testing.assert_allclose(
            s.images(np.arange(len(s))).numpy(), data.reshape(-1, 3, 32, 32) / 255.0, rtol=0, atol=1e-6
        )
        sub = s.subset(np.array([2, 0]))
        np.testing.assert_array_equal(sub.superclass_labels, [c[2], c[0]])
        co = load_split({"kind": "cifar100", "root": str(tmp_path), "label_kind": "coarse"}, split, key=KEY)
        np.testing.assert_array_equal(co.labels, c)
        assert co.class_names == [f"c{i}" for i in range(20)]


# -- quickdraw ---------------------------------------------------------------------------------


def _quickdraw(tmp_path, counts):
    rng = np.random.default_rng(3)
    rows = {}
    for cls, n in counts.items():
        rows[cls] = rng.integers(0, 256, (n, 784), dtype=np.uint8)
        np.save(tmp_path / f"{cls}.npy", rows[cls])
    return rows


def test_quickdraw_splits(tmp_path):
    rows = _quickdraw(tmp_path, {"cat": 6, "apple": 7, "bus": 5})
    spec = {"kind": "quickdraw", "root": str(tmp_path), "train_per_class": 3, "test_per_class": 2}
    for split, lo, hi in (("train", 0, 3), ("test", 3, 5)):
        s = load_split(spec, split, key=KEY)
        assert s.class_names == ["apple", "bus", "cat"]
        np.testing.assert_array_equal(s.labels, np.repeat([0, 1, 2], hi - lo))
        x = s.images(np.arange(len(s)))
        assert x.shape == (3 * (hi - lo), 1, 28, 28)
        want = np.concatenate([rows[c][lo:hi] for c in ("apple", "bus", "cat")]).reshape(-1, 28, 28) / 255.0
        np.testing.assert_allclose(x[:, 0].numpy(), want, rtol=0, atol=1e-6)
        assert len(set(s.sample_ids)) == len(s)
    train, test = load_split(spec, "train", key=KEY), load_split(spec, "test", key=KEY)
    assert not set(train.sample_ids) & set(test.sample_ids)
    s = load_split({**spec, "classes": ["cat", "apple"]}, "train", key=KEY)
    assert s.class_names == ["cat", "apple"]
    np.testing.assert_allclose(s.images(np.array([0]))[0, 0].numpy(), rows["cat"][0].reshape(28, 28) / 255.0)


def test_quickdraw_bad_files(tmp_path):
    _quickdraw(tmp_path, {"cat": 4})
    spec = {"kind": "quickdraw", "root": str(tmp_path), "train_per_class": 3, "test_per_class": 2}
    with pytest.raises(ValueError, match="drawings"):
        load_split(spec, "test", key=KEY)
    with pytest.raises(ValueError, match="drawings"):
        load_split({**spec, "train_per_class": 5}, "train", key=KEY)
    np.save(tmp_path / "cat.npy", np.zeros((10, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="784"):
        load_split(spec, "train", key=KEY)
    np.save(tmp_path / "cat.npy", np.zeros((10, 100), dtype=np.uint8))
    with pytest.raises(ValueError, match="784"):
        load_split(spec, "train", key=KEY)


# -- imagefolder / imagenet --------------------------------------------------------------------

COLOURS = {"zebra": (200, 10, 50), "ant": (0, 128, 255), "mole": (30, 60, 90)}


def _png(path, colour, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.mark.parametrize("kind,split", [("imagefolder", "test"), ("imagenet", "val")])
def test_folder_reader(tmp_path, kind, split):
    for cls, colour in COLOURS.items():
        for i in range(2):
            _png(tmp_path / split / cls / f"img{i}.png", colour)
    (tmp_path / split / "ant" / "notes.txt").write_text("not an image")
    s = load_split({"kind": kind, "root": str(tmp_path)}, split, key=KEY)
    assert s.class_names == ["ant", "mole", "zebra"] and s.channels == 3
    np.testing.assert_array_equal(s.labels, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(s.sample_ids, np.arange(6))
    x = s.images(np.arange(6), size=(16, 16), channels=3)
    assert x.shape == (6, 3, 16, 16) and x.dtype == torch.float32
    for k, cls in enumerate(s.class_names):
        want = torch.tensor(COLOURS[cls], dtype=torch.float32).view(1, 3, 1, 1) / 255.0
        torch.testing.assert_close(x[2 * k : 2 * k + 2], want.expand(2, 3, 16, 16), rtol=0, atol=1e-5)
    assert s.images(np.array([0])).shape == (1, 3, 8, 8)
    grey = s.images(np.array([4]), channels=1)
    torch.testing.assert_close(grey, torch.full((1, 1, 8, 8), sum(COLOURS["zebra"]) / 3 / 255.0))
    picked = load_split({"kind": kind, "root": str(tmp_path), "classes": ["zebra", "ant"]}, split, key=KEY)
    assert picked.class_names == ["zebra", "ant"]
    np.testing.assert_array_equal(picked.labels, [0, 0, 1, 1])
    torch.testing.assert_close(
        picked.images(np.array([0]), size=(4, 4))[0, :, 0, 0], torch.tensor(COLOURS["zebra"]) / 255.0
    )
    with pytest.raises(DataMissingError, match=KEY):
        load_split({"kind": kind, "root": str(tmp_path), "classes": ["ant", "nope"]}, split, key=KEY)


def test_folder_mixed_sizes_and_grey(tmp_path):
    _png(tmp_path / "train" / "a" / "1.png", (255, 255, 255), size=(5, 7))
    _png(tmp_path / "train" / "a" / "2.png", (0, 0, 0), size=(9, 4))
    _png(tmp_path / "train" / "b" / "1.png", (90, 90, 90), size=(6, 6))
    spec = {"kind": "imagefolder", "root": str(tmp_path)}
    s = load_split(spec, "train", key=KEY)
    with pytest.raises(ValueError, match="size"):
        s.images(np.arange(3))
    x = s.images(np.arange(3), size=(12, 10), channels=3)
    assert x.shape == (3, 3, 12, 10)
    torch.testing.assert_close(x[0], torch.ones(3, 12, 10))
    torch.testing.assert_close(x[1], torch.zeros(3, 12, 10))
    assert s.images(np.array([1])).shape == (1, 3, 4, 9)  # PIL size is (width, height)
    g = load_split({**spec, "channels": 1}, "train", key=KEY)
    assert g.channels == 1
    y = g.images(np.array([2]), size=(3, 3))
    torch.testing.assert_close(y, torch.full((1, 1, 3, 3), 90 / 255.0))
    assert g.images(np.array([2]), size=(3, 3), channels=3).shape == (1, 3, 3, 3)


# -- missing data and bad arguments ------------------------------------------------------------

FOLDER_SPLIT = {"imagenet": "val", "imagefolder": "train"}
KINDS = ["mnist", "cifar10", "cifar100", "quickdraw", "imagefolder", "imagenet"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("root", ["absent", "empty", None, ""])
def test_missing_data(tmp_path, kind, root):
    if root == "empty":
        (tmp_path / "empty").mkdir()
    spec = {"kind": kind, "root": None if not root else str(tmp_path / root)}
    with pytest.raises(DataMissingError) as info:
        load_split(spec, FOLDER_SPLIT.get(kind, "train"), key=KEY)
    assert KEY in str(info.value) and f"{KEY}.root" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("kind", ["imagefolder", "imagenet"])
def test_folder_without_images_is_missing(tmp_path, kind):
    split = FOLDER_SPLIT[kind]
    (tmp_path / split / "cls").mkdir(parents=True)
    (tmp_path / split / "cls" / "readme.txt").write_text("x")
    with pytest.raises(DataMissingError, match=f"{KEY}.root"):
        load_split({"kind": kind, "root": str(tmp_path)}, split, key=KEY)


def test_cifar10_partial_archive_is_missing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _pickle(folder / "data_batch_1", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
    _pickle(folder / "batches.meta", {b"label_names": [b"a"]})
    with pytest.raises(DataMissingError, match="data_batch_2"):
        load_split({"kind": "cifar10", "root": str(tmp_path)}, "train", key=KEY)


@pytest.mark.parametrize(
    "spec,split",
    [
        ({"kind": "svhn"}, "train"),
        ({}, "train"),
        ({"kind": "digits"}, "val"),
        ({"kind": "imagenet", "root": "/nonexistent"}, "test"),
        ({"kind": "imagefolder", "root": "/nonexistent", "splits": ["a", "b"]}, "train"),
    ],
)
def test_unknown_kind_or_split(spec, split):
    with pytest.raises(ValueError, match="datasets.mydata"):
        load_split(spec, split, key=KEY)


# -- one class list per folder data set ---------------------------------------------------------


def test_hidden_folders_and_files_are_skipped_and_imagenet_keeps_sorted_wnid_indices(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850"]  # tench, goldfish, great white shark: indices 0, 1, 2
    for w in wnids:
        _png(tmp_path / "val" / w / "ILSVRC2012_val_1.JPEG", (1, 2, 3))
    _png(tmp_path / "val" / ".ipynb_checkpoints" / "x.png", (0, 0, 0))
    _png(tmp_path / "val" / "n01440764" / ".ipynb_checkpoints" / "copy.png", (0, 0, 0))
    _png(tmp_path / "val" / "n01440764" / ".hidden.png", (0, 0, 0))
    s = load_split({"kind": "imagenet", "root": str(tmp_path)}, "val", key=KEY)
    assert s.class_names == wnids and s.class_names.index("n01440764") == 0
    np.testing.assert_array_equal(s.labels, [0, 1, 2])


def test_class_indices_are_the_same_in_every_split_and_a_missing_class_folder_is_named(tmp_path):
    for split in ("train", "test"):
        for cls in ("circle_red", "square_green", "triangle_blue"):
            if not (split == "test" and cls == "square_green"):
                _png(tmp_path / split / cls / "1.png", (9, 9, 9))
    spec = {"kind": "imagefolder", "root": str(tmp_path)}
    train = load_split(spec, "train", key=KEY)
    assert train.class_names.index("triangle_blue") == 2
    with pytest.raises(DataMissingError, match=r"square_green missing or without images in .*test.*3 classes"):
        load_split(spec, "test", key=KEY)
    problems = data.check_folder_splits(spec, ["train", "test"], key=KEY)
    assert len(problems) == 1 and "square_green" in problems[0] and f"{KEY}.classes" in problems[0]
    picked = {**spec, "classes": ["circle_red", "triangle_blue"]}
    test = load_split(picked, "test", key=KEY)
    assert test.class_names == load_split(picked, "train", key=KEY).class_names == ["circle_red", "triangle_blue"]
    np.testing.assert_array_equal(test.labels, [0, 1])


def test_an_empty_class_folder_is_an_error_not_a_phantom_class(tmp_path):
    _png(tmp_path / "train" / "a" / "1.png", (9, 9, 9))
    (tmp_path / "train" / "b").mkdir()
    (tmp_path / "train" / "b" / "notes.txt").write_text("no image")
    spec = {"kind": "imagefolder", "root": str(tmp_path), "splits": ["train"]}
    with pytest.raises(DataMissingError, match=r"class folder\(s\) b missing or without images"):
        load_split(spec, "train", key=KEY)
    assert data.check_folder_splits(spec, ["train"], key=KEY)[0].startswith(f"{KEY} (imagefolder): class folder(s) b")


def test_a_missing_split_folder_is_reported_at_parse_time(tmp_path):
    _png(tmp_path / "train" / "a" / "1.png", (9, 9, 9))
    problems = data.check_folder_splits({"kind": "imagefolder", "root": str(tmp_path)}, ["train", "test"], key=KEY)
    assert len(problems) == 1 and str(tmp_path / "test") in problems[0]


def test_class_count_without_reading_images(tmp_path):
    assert data.class_count({"kind": "digits"}) == 10
    assert data.class_count({"kind": "cifar100", "label_kind": "coarse"}) == 20
    assert data.class_count({"kind": "cifar100"}) == 100
    for cls in ("b", "a", ".ipynb_checkpoints"):
        (tmp_path / "train" / cls).mkdir(parents=True)
    assert data.class_count({"kind": "imagefolder", "root": str(tmp_path)}) == 2
    assert data.class_count({"kind": "imagefolder", "root": str(tmp_path / "none")}) is None
    assert data.class_count({"kind": "quickdraw", "root": str(tmp_path), "classes": ["cat", "dog", "owl"]}) == 3
