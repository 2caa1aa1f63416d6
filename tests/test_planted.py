"""Planted concepts (data set kind ``planted``): the rule is reproducible, its masks exact, its split the digits'."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_digits

from conceptscope import jobs
from conceptscope.data import check_split_files, class_count, load_split
from conceptscope.planted import STAMPS, ConceptStamp, plant_concepts, planted_digits
from conceptscope.workflow import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SPEC = {"kind": "planted", "seed": 0}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def planting():
    return planted_digits(0)


def _mask(stamp: ConceptStamp, r: int, c: int, size: int = 16) -> np.ndarray:
    """The stamp's pixels, written out from its pattern strings (independent of the library's masks)."""
    out = np.zeros((size, size), dtype=bool)
    for dr, row in enumerate(stamp.pattern):
        for dc, ch in enumerate(row):
            if ch == "1":
                out[r + dr, c + dc] = True
    return out


def _box(stamp: ConceptStamp, r: int, c: int, gap: int = 0) -> set[tuple[int, int]]:
    h, w = len(stamp.pattern), len(stamp.pattern[0])
    return {(i, j) for i in range(r - gap, r + h + gap) for j in range(c - gap, c + w + gap)}


# -- the rule --------------------------------------------------------------------------------


def test_same_seed_is_byte_identical_and_another_seed_differs(planting):
    again = planted_digits(0)
    assert planting.images.tobytes() == again.images.tobytes()
    assert planting.concepts.tobytes() == again.concepts.tobytes()
    assert planting.positions.tobytes() == again.positions.tobytes()
    other = planted_digits(1)
    np.testing.assert_array_equal(other.labels, planting.labels)
    assert not np.array_equal(other.concepts, planting.concepts)
    assert not np.array_equal(other.images, planting.images)
    a, b = load_split(SPEC, "test"), load_split(SPEC, "test")
    x = a.images(np.arange(len(a))).numpy()
    assert x.tobytes() == b.images(np.arange(len(b))).numpy().tobytes() and a.concepts.tobytes() == b.concepts.tobytes()
    c = load_split({**SPEC, "seed": 1}, "test")
    assert not np.array_equal(c.concepts, a.concepts) and not np.array_equal(c.images(np.arange(len(c))).numpy(), x)


def test_masks_are_exact(planting, digits):
    clean = np.kron(digits.images / 16.0, np.ones((2, 2))).astype(np.float32)  # 8x8 -> 16x16, each pixel a 2x2 block
    masks = planting.masks()
    assert masks.shape == (1797, len(STAMPS), 16, 16) and masks.dtype == bool
    expected = np.zeros_like(masks)
    for i in range(1797):
        for j, stamp in enumerate(STAMPS):
            r, c = planting.positions[i, j]
            if planting.concepts[i, j]:
                expected[i, j] = _mask(stamp, r, c)
                assert masks[i, j].sum() == "".join(stamp.pattern).count("1")
            else:
                assert (r, c) == (-1, -1)
    np.testing.assert_array_equal(masks, expected)
    union = masks.any(axis=1)
    rebuilt = clean.copy()
    rebuilt[union] = 1.0
    np.testing.assert_array_equal(rebuilt, planting.images)
    np.testing.assert_array_equal(planting.images[~union], clean[~union])
    assert planting.images.dtype == np.float32 and (planting.images[union] == 1.0).all()
    assert (masks.sum(axis=1) <= 1).all()  # no pixel belongs to two stamps


def test_positions_fixed_or_random_and_stamps_never_touch(planting):
    fixed = [(j, s) for j, s in enumerate(STAMPS) if s.position is not None]
    floating = [(j, s) for j, s in enumerate(STAMPS) if s.position is None]
    assert fixed and floating
    for j, s in fixed:
        np.testing.assert_array_equal(
            planting.positions[planting.concepts[:, j], j], [s.position] * planting.concepts[:, j].sum()
        )
    reserved = set().union(*(_box(s, *s.position, gap=1) for _, s in fixed))
    for j, s in floating:
        pos = planting.positions[planting.concepts[:, j], j]
        assert len({tuple(p) for p in pos}) > 20  # spread over the image
        h, w = len(s.pattern), len(s.pattern[0])
        assert (pos >= 0).all() and (pos[:, 0] + h <= 16).all() and (pos[:, 1] + w <= 16).all()
        assert all(not (_box(s, r, c) & reserved) for r, c in pos)
    for i in np.flatnonzero(planting.concepts[:, [j for j, _ in floating]].all(axis=1)):
        (ja, sa), (jb, sb) = floating[:2]
        assert not _box(sa, *planting.positions[i, ja], gap=1) & _box(sb, *planting.positions[i, jb])


def test_class_tied_concepts_stay_in_their_class_and_cross_class_ones_spread(planting):
    labels = planting.labels
    assert any(s.label is not None for s in STAMPS) and any(s.label is None for s in STAMPS)
    for j, s in enumerate(STAMPS):
        carriers = planting.concepts[:, j]
        pool = labels == s.label if s.label is not None else np.ones_like(carriers)
        assert carriers.sum() == np.floor(s.fraction * pool.sum() + 0.5)  # the stated fraction, rounded half up
        assert abs(carriers.sum() - s.fraction * pool.sum()) <= 0.5
        assert not (carriers & ~pool).any()
        if s.label is None:
            per_class = np.bincount(labels[carriers], minlength=10)
            assert (per_class > 0).all(), per_class


def test_plant_concepts_on_a_small_explicit_case():
    images = np.zeros((4, 6, 6), dtype=np.float32) + 0.25
    stamp = ConceptStamp("l", ("10", "11"), 1.0, label=1, position=(4, 0))
    out = plant_concepts(images, np.array([0, 0, 1, 1]), seed=0, stamps=(stamp,))
    np.testing.assert_array_equal(out.concepts[:, 0], [False, False, True, True])
    expected = images.copy()
    expected[2:, 4, 0] = expected[2:, 5, 0] = expected[2:, 5, 1] = 1.0
    np.testing.assert_array_equal(out.images, expected)
    assert (images == 0.25).all()  # the input is not modified


@pytest.mark.parametrize(
    "stamp, match",
    [
        (ConceptStamp("a", ("12",), 0.5), "pattern must be"),
        (ConceptStamp("a", ("00",), 0.5), "pattern must be"),
        (ConceptStamp("a", ("1", "11"), 0.5), "pattern must be"),
        (ConceptStamp("a", ("1",), 0.0), r"fraction must be in \(0, 1\]"),
        (ConceptStamp("a", ("1",), 1.5), r"fraction must be in \(0, 1\]"),
        (ConceptStamp("a", ("1",), 0.5, label=5), "no image has label 5"),
        (ConceptStamp("a", ("11",), 0.5, position=(0, 3)), r"position \(0, 3\) leaves the 4x4 image"),
        (ConceptStamp("a", ("11111",), 0.5), "does not fit 4x4 images"),
    ],
)
def test_bad_stamps_raise(stamp, match):
    with pytest.raises(ValueError, match=match):
        plant_concepts(np.zeros((2, 4, 4)), np.array([0, 1]), seed=0, stamps=(stamp,))
    with pytest.raises(ValueError, match="names must be unique"):
        plant_concepts(np.zeros((2, 4, 4)), np.array([0, 1]), seed=0, stamps=(STAMPS[2], STAMPS[2]))


# -- the data set kind -----------------------------------------------------------------------


@pytest.mark.parametrize("extra", [{}, {"test_fraction": 0.3, "split_seed": 3}])
def test_split_is_the_digits_split(planting, extra):
    for split in ("train", "test"):
        p = load_split({**SPEC, **extra}, split, key="datasets.planted")
        d = load_split({"kind": "digits", **extra}, split, key="datasets.digits")
        np.testing.assert_array_equal(p.sample_ids, d.sample_ids)
        np.testing.assert_array_equal(p.labels, d.labels)
        assert p.n_classes == 10 and p.channels == 1 and p.class_names == d.class_names
        x = p.images(np.arange(len(p))).numpy()
        assert x.shape == (len(p), 1, 16, 16)
        np.testing.assert_array_equal(x[:, 0], planting.images[p.sample_ids])
        np.testing.assert_array_equal(p.concepts, planting.concepts[p.sample_ids])
        assert p.concept_names == [s.name for s in STAMPS]


def test_subsetting_keeps_concepts_aligned(planting):
    s = load_split(SPEC, "test")
    pos = np.array([5, 1, 3, 40])
    sub = s.subset(pos)
    np.testing.assert_array_equal(sub.concepts, s.concepts[pos])
    np.testing.assert_array_equal(sub.concepts, planting.concepts[sub.sample_ids])
    assert sub.concept_names == s.concept_names
    subsub = sub.subset(np.array([2, 0]))
    np.testing.assert_array_equal(subsub.concepts, s.concepts[[3, 5]])
    np.testing.assert_array_equal(subsub.images(np.arange(2)).numpy(), s.images(np.array([3, 5])).numpy())
    spec_sub = load_split({**SPEC, "subset": {"test": {"per_class": 3, "first_n": 20}}}, "test")
    assert len(spec_sub) == 20
    np.testing.assert_array_equal(spec_sub.concepts, planting.concepts[spec_sub.sample_ids])


def test_manifest_has_one_column_per_concept(tmp_path):
    path = tmp_path / "test.csv"
    jobs.prepare_split({"id": "planted", "config": SPEC}, "test", path)
    table = pd.read_csv(path)
    s = load_split(SPEC, "test")
    names = [f"concept_{c}" for c in s.concept_names]
    assert list(table.columns) == ["position", "sample_id", "label", "class_name", *names]
    assert all(pd.api.types.is_bool_dtype(t) for t in table[names].dtypes)
    np.testing.assert_array_equal(table[names].to_numpy(), s.concepts)
    np.testing.assert_array_equal(table["sample_id"], s.sample_ids)
    jobs.prepare_split({"id": "digits", "config": {"kind": "digits"}}, "test", tmp_path / "digits.csv")
    assert not [c for c in pd.read_csv(tmp_path / "digits.csv").columns if c.startswith("concept_")]


def test_needs_no_files_and_has_ten_classes():
    assert class_count(SPEC) == 10
    assert check_split_files(SPEC, ["train", "test"]) == []
    with pytest.raises(ValueError, match=r"datasets\.planted\.seed is not set"):
        load_split({"kind": "planted"}, "test", key="datasets.planted")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d.update(sed=1), "datasets.planted: unknown key 'sed' (did you mean 'seed'?)"),
        (lambda d: d.pop("seed"), "datasets.planted: 'seed' is a required property"),
        (lambda d: d.update(seed="one"), "datasets.planted.seed: 'one' is not of type integer"),
    ],
)
def test_schema_names_a_bad_planted_key(edit, expected, tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "planted.yaml").read_text())
    validate_config(copy.deepcopy(cfg), SCHEMA)  # the shipped suite is valid
    edit(cfg["datasets"]["planted"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA, detail=tmp_path / "detail.log")
    assert expected in str(err.value), str(err.value)
