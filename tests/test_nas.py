"""NAS: zero-aligned ranges, class counts, width steps, the taxonomy rules, and the views."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from browser import chromium_or_skip, dump_dom

from conceptscope import data, nas
from conceptscope.nas import views as nv

# -- ranges ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "m", "n_neg"),
    [(-1.0, 2.0, 30, 10), (-3.0, 1.0, 30, 22), (-1.0, 1.0, 31, 16), (-1e-6, 5.0, 30, 1), (-5.0, 1e-6, 30, 29)],
)
def test_zero_is_an_edge_when_the_sign_changes(lo, hi, m, n_neg):
    e = nas.range_edges(lo, hi, m)
    assert e.size == m + 1 and e[0] == lo and e[-1] == hi
    assert np.all(np.diff(e) > 0)
    assert e[n_neg] == 0.0  # counts proportional to each side's length, at least one per side
    neg, pos = np.diff(e[: n_neg + 1]), np.diff(e[n_neg:])
    np.testing.assert_allclose(neg, neg[0])  # equal widths on each side
    np.testing.assert_allclose(pos, pos[0])
    assert not np.any((e[:-1] < 0) & (e[1:] > 0))  # no range straddles 0


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 3.0), (0.5, 3.0), (-4.0, -1.0), (-4.0, 0.0)])
def test_one_signed_units_get_m_equal_ranges(lo, hi):
    e = nas.range_edges(lo, hi, 30)
    assert e.size == 31 and e[0] == lo and e[-1] == hi
    np.testing.assert_allclose(np.diff(e), (hi - lo) / 30)


def test_constant_unit_has_one_range():
    e = nas.range_edges(0.7, 0.7, 30)
    assert e.tolist() == [0.7, 0.7]
    assert nas.assign_ranges(np.full(5, 0.7), e).tolist() == [0] * 5


@pytest.mark.parametrize("seed", range(5))
def test_every_value_in_exactly_one_range(seed):
    rng = np.random.default_rng(seed)
    v = np.concatenate([rng.normal(size=200), [0.0, 0.0]])
    e = nas.range_edges(v.min(), v.max(), 30)
    idx = nas.assign_ranges(v, e)
    # brute force: membership in [e_i, e_{i+1}) (last closed), counted over all ranges
    inside = (v[:, None] >= e[None, :-1]) & (v[:, None] < e[None, 1:])
    inside[:, -1] |= v == e[-1]
    assert np.all(inside.sum(1) == 1)
    assert np.array_equal(np.argmax(inside, 1), idx)
    assert idx[-1] == np.flatnonzero(e == 0.0)[0]  # 0 belongs to the range starting at 0


def test_values_outside_the_edges_raise():
    with pytest.raises(ValueError, match="outside the edges"):
        nas.assign_ranges(np.array([0.0, 2.0]), np.array([0.0, 1.0]))


@pytest.mark.parametrize(
    ("args", "match"), [((0, 1, 1), "m must be"), ((1, 0, 30), "min <= max"), ((0, np.nan, 30), "finite")]
)
def test_bad_range_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        nas.range_edges(*args)


def test_width_steps_at_the_threshold_boundaries():
    counts = np.array([0, 1, 3, 4, 11, 12, 500])
    assert nas.width_classes(counts).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert nas.width_classes(counts, (2, 5)).tolist() == [0, 1, 2, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="thresholds"):
        nas.width_classes(counts, (5, 5))


def test_range_class_counts_match_a_loop():
    rng = np.random.default_rng(1)
    v, labels = rng.normal(size=300), rng.integers(0, 4, 300)
    e = nas.range_edges(v.min(), v.max(), 12)
    counts = nas.range_class_counts(v, e, labels, 4)
    loop = np.zeros_like(counts)
    for x, c in zip(v, labels, strict=True):
        i = max(j for j in range(12) if e[j] <= x)
        loop[i, c] += 1
    assert np.array_equal(counts, loop)


def test_sample_per_class_is_deterministic_and_balanced():
    labels = np.repeat(np.arange(3), [50, 5, 40])
    a = nas.sample_per_class(labels, 10, seed=0)
    assert np.array_equal(a, nas.sample_per_class(labels, 10, seed=0))
    assert np.bincount(labels[a]).tolist() == [10, 5, 10]
    assert not np.array_equal(a, nas.sample_per_class(labels, 10, seed=1))
    assert np.all(np.diff(a) > 0)


def test_summary_counts_every_image_once_per_unit():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=90), np.maximum(rng.normal(size=90), 0), np.full(90, 3.0)])
    labels = np.repeat(np.arange(3), 30)
    s = nas.summarize_layer(X, labels, ["a", "b", "c"], m=10)
    assert s.n_ranges.tolist() == [10, 10, 1]
    assert np.all(s.counts.sum((1, 2)) == 90)
    assert np.array_equal(s.counts.sum(1), np.full((3, 3), 30))
    assert s.zero_range[0] >= 1 and s.edges[0, s.zero_range[0]] == 0.0
    assert s.zero_range[1] == 0 and s.zero_range[2] == -1


def test_summary_round_trips(tmp_path):
    rng = np.random.default_rng(3)
    s = nas.summarize_layer(rng.normal(size=(20, 4)), np.arange(20) % 2, ["x", "y"], m=6, meta={"layer": "fc"})
    nas.save_summary(s, tmp_path / "s.h5")
    t = nas.load_summary(tmp_path / "s.h5")
    assert np.array_equal(t.counts, s.counts) and np.array_equal(t.edges, s.edges, equal_nan=True)
    assert t.meta == {"layer": "fc", "m": 6} and t.class_names == ["x", "y"]
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(OSError, match="Delete it and rerun"):
        nas.load_summary(tmp_path / "bad.h5")


# -- taxonomy --------------------------------------------------------------------------------------

N_PER, C = 40, 5
LABELS = np.repeat(np.arange(C), N_PER)


def _classify(*units: np.ndarray, **thresholds) -> pd.DataFrame:
    s = nas.summarize_layer(np.column_stack(units), LABELS, [str(c) for c in range(C)], m=30)
    return nas.classify_units(s, **thresholds)


def _unit(high: dict[int, float], base: float = 0.0, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Class c at ``high.get(c, base)`` plus small positive noise."""
    rng = np.random.default_rng(seed)
    return np.array([high.get(int(c), base) for c in LABELS]) + noise * rng.random(LABELS.size)


def test_zeroing():
    v = np.zeros(LABELS.size)
    v[:3] = 1.0
    t = _classify(v, _unit({0: 1.0}, base=0.2))
    assert t["zeroing"].tolist() == [True, False]
    assert t.loc[0, "zero_fraction"] == pytest.approx(1 - 3 / LABELS.size)


def test_specialized_not_bisemantic():
    t = _classify(_unit({2: 5.0}), _unit({2: 5.0, 3: 5.0}))
    assert t.loc[0, "specialized"] and not t.loc[0, "bisemantic"] and t.loc[0, "top_class"] == "2"
    assert not t.loc[1, "specialized"]


def test_bisemantic():
    t = _classify(_unit({1: 5.0, 3: 5.1}), _unit({1: 5.0}), top_fraction=0.2)
    assert t.loc[0, "bisemantic"] and not t.loc[0, "specialized"] and not t.loc[0, "polysemantic"]
    assert not t.loc[1, "bisemantic"]


def test_polysemantic():
    t = _classify(_unit({0: 5.0, 2: 5.0, 4: 5.0}), _unit({0: 5.0, 2: 5.0}), top_fraction=0.35)
    assert t.loc[0, "polysemantic"] and t.loc[0, "n_top_classes"] == 3
    assert not t.loc[1, "polysemantic"] and t.loc[1, "bisemantic"]


def test_uniform_top_is_not_polysemantic():
    rng = np.random.default_rng(4)
    t = _classify(rng.normal(size=LABELS.size))
    assert not t.loc[0, ["specialized", "bisemantic", "polysemantic", "differentiating"]].any()


def test_suppressing():
    t = _classify(_unit({4: -5.0}, base=1.0), _unit({4: 5.0}, base=1.0))
    assert t.loc[0, "suppressing"] and t.loc[0, "low_class"] == "4"
    assert not t.loc[1, "suppressing"]


def test_all_zero_low_set_is_not_suppressing():
    v = _unit({4: 5.0}, base=0.0, noise=0.0)  # the lowest range holds four classes at exactly 0
    t = _classify(v)
    assert not t.loc[0, "suppressing"] and t.loc[0, "specialized"]


def test_differentiating():
    graded = _unit({c: float(c) for c in range(C)}, noise=0.3)
    rng = np.random.default_rng(5)
    t = _classify(graded, rng.normal(size=LABELS.size))
    assert t.loc[0, "differentiating"] and t.loc[0, "eta2"] > 0.9
    assert not t.loc[1, "differentiating"] and t.loc[1, "eta2"] < 0.2
    # eta^2 equals between/total sum of squares computed directly
    v = graded
    means = np.array([v[LABELS == c].mean() for c in range(C)])
    direct = (N_PER * ((means - v.mean()) ** 2).sum()) / ((v - v.mean()) ** 2).sum()
    assert t.loc[0, "eta2"] == pytest.approx(direct)


def test_constant_unit_gets_no_type_but_zeroing():
    t = _classify(np.zeros(LABELS.size), np.full(LABELS.size, 2.0))
    assert t.loc[0, "labels"] == "zeroing" and t.loc[1, "labels"] == ""


def test_unknown_threshold_raises():
    with pytest.raises(ValueError, match="unknown taxonomy threshold"):
        _classify(_unit({0: 1.0}), dominanse=0.5)


def test_select_neurons_takes_the_strongest_per_type():
    t = _classify(_unit({0: 5.0}), _unit({1: 5.0}, noise=2.0), _unit({2: 9.0}, noise=0.0))
    sel = nv.select_neurons(t, per_type=2)
    spec = sel[sel["type"] == "specialized"]
    assert spec["unit"].tolist()[0] in (0, 2) and len(spec) <= 2
    assert np.all(np.diff(spec["strength"]) <= 0)


# -- views -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    images = data.load_split({"kind": "digits", "subset": {"test": {"first_n": 120}}}, "test", key="datasets.digits")
    rng = np.random.default_rng(6)
    pos = nas.sample_per_class(images.labels, 8, seed=0)
    y = images.labels[pos]
    X = np.column_stack(
        [
            rng.normal(size=(pos.size, 40)),
            (y == 3) * 4.0 + rng.random(pos.size),
            np.maximum(rng.normal(size=pos.size), 0),
        ]
    )
    s = nas.summarize_layer(X, y, images.class_names, m=30, positions=pos)
    return images, s, nas.classify_units(s), tmp_path_factory.mktemp("nas")


def test_layer_summary_png_caps_rows(layer):
    _, s, tax, out = layer
    table = nv.plot_layer_summary(s, out / "summary.png", taxonomy=tax, max_rows=16, title="t")
    assert len(table) == 16 and (out / "summary.csv").exists()
    assert table["first_cell"].tolist() == [-int(s.zero_range[u]) for u in range(16)]


def test_neuron_view_lays_out_every_image(layer):
    images, s, _, out = layer
    t = nv.plot_neuron(s, 40, images, out / "unit40.png", max_per_range=3, title="unit 40")
    assert sorted(t["position"]) == sorted(s.positions.tolist())
    assert t.groupby("range")["drawn"].sum().max() <= 3
    assert np.array_equal(t.sort_values("position")["range"], nas.assign_ranges(s.values[:, 40], s.unit_edges(40)))


def test_taxonomy_chart(layer, tmp_path):
    _, s, tax, _ = layer
    counts = pd.DataFrame(
        [{"layer": "fc", "type": k, "count": int(tax[k].sum()), "n_units": s.n_units} for k in nas.NEURON_TYPES]
    )
    nv.plot_taxonomy_counts(counts, tmp_path / "tax.png", title="x")
    assert (tmp_path / "tax.png").stat().st_size > 5000


def test_html_page_shows_one_row_per_unit(layer, tmp_path):
    _, s, tax, _ = layer
    path = tmp_path / "summary.html"
    nv.write_layer_summary_html(s, path, taxonomy=tax, title="digits fc")
    text = path.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    payload = json.loads(re.search(r'id="nas-data">(.*?)</script>', text, re.S).group(1))
    assert len(payload["units"]) == s.n_units
    u = payload["units"][40]
    assert u["counts"] == s.unit_counts(40).tolist() and "specialized" in u["labels"]
    binary = chromium_or_skip()
    dom = dump_dom(binary, path.resolve().as_uri(), tmp_path / "profile")
    assert 'data-ready="1"' in re.search(r"<body([^>]*)>", dom).group(1)
    rows = re.findall(r'<div class="unit-row" data-unit="(\d+)"', dom)
    assert [int(r) for r in rows] == list(range(s.n_units))
    assert len(re.findall(r'class="zero"', dom)) == s.n_units
    assert "specialized" in dom
