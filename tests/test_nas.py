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
from conceptscope.pages import read_static

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


# -- evidence minima ---------------------------------------------------------------------------------


def _random_weight_layer(per_class: int, n_units: int = 1024, seed: int = 0) -> nas.LayerSummary:
    """A random-weight ReLU layer (64 -> n_units) on ``per_class`` digits images of each of 10 classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    pos = nas.sample_per_class(y, per_class, seed=seed)
    rng = np.random.default_rng(seed)
    acts = np.maximum(X[pos] / 16 @ rng.normal(size=(64, n_units)) / 8 + 0.1 * rng.normal(size=n_units), 0)
    return nas.summarize_layer(acts, y[pos], [str(c) for c in range(10)], m=30, positions=pos)


def test_thirty_images_give_no_specialized_unit_on_a_tiny_top_set():
    """Issue #12: with 30 images H holds 1-3 images, and every one-image H used to be "specialized"."""
    s = _random_weight_layer(per_class=3)
    t = nas.classify_units(s)
    # |H| recomputed by brute force: whole ranges from the top while they hold <= 10 % of the images (>= 1 range)
    for u in range(0, s.n_units, 97):
        sizes = s.unit_counts(u).sum(1)[::-1]
        taken = 0
        for k in sizes:
            if taken and taken + k > 0.1 * 30:
                break
            taken += k
        assert t.loc[u, "top_images"] == taken
    tiny = (t["top_images"] < 5) & (s.n_ranges > 1)
    assert tiny.sum() > 800 and (t["top_images"] == 1).sum() >= 50
    assert not t.loc[tiny, ["specialized", "bisemantic", "polysemantic"]].any().any()
    assert t.loc[tiny, "insufficient"].all()
    assert t.loc[tiny, "insufficient_for"].str.contains("specialized+bisemantic+polysemantic", regex=False).all()
    assert "insufficient" in t.loc[tiny.idxmax(), "labels"]
    # without the minimum (min_top 1) the one-image H units are all specialized: the fault this guards against
    loose = nas.classify_units(s, min_top=1)
    one = t["top_images"] == 1
    assert loose.loc[one, "specialized"].all() and not t["specialized"].any()


def test_a_specialized_unit_with_enough_evidence_stays_specialized():
    # 30 images, 6 per class: class 1 sits at one value above the rest, so the top range holds its 6 images
    labels = np.repeat(np.arange(5), 6)
    rng = np.random.default_rng(7)
    v = np.where(labels == 1, 3.0, rng.random(30))
    s = nas.summarize_layer(v[:, None], labels, list("abcde"), m=30)
    t = nas.classify_units(s)
    assert t.loc[0, "top_images"] == 6 and t.loc[0, "specialized"] and t.loc[0, "top_class"] == "b"
    assert "specialized" not in t.loc[0, "insufficient_for"]
    # and the random layer with 30 images per class has specialized units judged on H of >= 5 images
    t = nas.classify_units(_random_weight_layer(per_class=30, n_units=256))
    assert t["specialized"].any() and (t.loc[t["specialized"], "top_images"] >= 5).all()


@pytest.mark.parametrize(("n_top", "judged"), [(4, False), (5, True)])
def test_min_top_boundary(n_top, judged):
    """A unit whose top range holds ``n_top`` images of class 0 (the rest spread below): judged from 5 on."""
    v = np.linspace(0.0, 1.0, LABELS.size)
    v[LABELS == 0] = 0.5  # keep class 0 out of the top, except n_top of its images
    v[np.flatnonzero(LABELS == 0)[:n_top]] = 5.0
    t = _classify(v)
    assert t.loc[0, "top_images"] == n_top
    assert t.loc[0, "specialized"] == judged and t.loc[0, "insufficient"] == (not judged)
    assert nas.classify_units(nas.summarize_layer(v[:, None], LABELS, list("01234")), min_top=n_top).loc[
        0, "specialized"
    ]


def test_suppressing_needs_min_low_images():
    v = _unit({4: -5.0}, base=1.0)
    assert _classify(v).loc[0, "suppressing"]
    t = _classify(v, min_low=41)  # L holds class 4's 40 images
    assert (
        t.loc[0, "low_images"] == 40 and not t.loc[0, "suppressing"] and "suppressing" in t.loc[0, "insufficient_for"]
    )


def test_zeroing_needs_min_sample_images():
    labels = np.arange(10) % 2
    s = nas.summarize_layer(np.zeros((10, 1)), labels, ["a", "b"], m=5)
    t = nas.classify_units(s)
    assert not t.loc[0, "zeroing"] and t.loc[0, "insufficient_for"] == "zeroing"
    assert nas.classify_units(s, min_sample=10).loc[0, "labels"] == "zeroing"


@pytest.mark.parametrize(("n", "c"), [(30, 10), (12, 3), (10, 2), (53, 20), (40, 10)])
def test_eta_squared_chance_is_the_f_test_tail(n, c):
    """eta^2 >= e  <=>  F = (eta^2 / (C-1)) / ((1 - eta^2) / (n-C)) >= e / (1-e) * (n-C) / (C-1)."""
    from scipy.stats import f

    crit = 0.6 / 0.4 * (n - c) / (c - 1)
    assert nas.eta_squared_chance(n, c, 0.6) == pytest.approx(f.sf(crit, c - 1, n - c), rel=1e-9)


def test_eta_squared_chance_matches_a_simulation():
    rng = np.random.default_rng(8)
    labels = np.repeat(np.arange(5), 4)
    v = rng.normal(size=(4000, labels.size))
    sims = nas.classify_units(
        nas.summarize_layer(v.T, labels, list("abcde"), m=10), eta_chance=1.0, min_top=1, min_low=1
    )["eta2"]
    assert (sims >= 0.4).mean() == pytest.approx(nas.eta_squared_chance(20, 5, 0.4), abs=0.02)


def test_one_image_per_class_is_never_differentiating():
    labels = np.arange(10)
    s = nas.summarize_layer(np.random.default_rng(9).normal(size=(10, 3)), labels, [str(i) for i in range(10)])
    t = nas.classify_units(s)
    assert t["eta2"].tolist() == pytest.approx([1.0] * 3) and not t["differentiating"].any()
    assert t["insufficient_for"].str.contains("differentiating").all() and (t["eta2_chance"] == 1.0).all()


def test_constant_units_are_not_insufficient_on_enough_images():
    t = _classify(np.zeros(LABELS.size), np.full(LABELS.size, 2.0))
    assert not t["insufficient"].any() and t["insufficient_for"].fillna("").eq("").all()


def test_taxonomy_job_counts_insufficient_units(tmp_path):
    from conceptscope.nas import jobs

    s = _random_weight_layer(per_class=3, n_units=64)
    nas.save_summary(s, tmp_path / "s.h5")
    t = nas.classify_units(s)
    t.to_csv(tmp_path / "t.csv", index=False)
    jobs.nas_taxonomy(
        model_id="rand",
        layers=["fc"],
        summaries=[tmp_path / "s.h5"],
        tables=[tmp_path / "t.csv"],
        csv=tmp_path / "counts.csv",
        png=tmp_path / "counts.png",
    )
    counts = pd.read_csv(tmp_path / "counts.csv")
    assert counts["type"].tolist() == list(nas.TAXONOMY_LABELS) and counts["consistent"].all()
    got = counts.set_index("type")
    assert got.loc["insufficient", "count"] == t["insufficient"].sum() > 0 and got.loc["specialized", "count"] == 0
    # judged, by brute force: a type is judged on a unit that varies and whose insufficient_for omits it
    varies = s.n_ranges > 1
    for k in nas.NEURON_TYPES:
        brute = sum(
            (k == "zeroing" or bool(varies[u])) and k not in str(t.loc[u, "insufficient_for"]).split("+")
            for u in range(s.n_units)
        )
        assert got.loc[k, "judged"] == brute
    assert got.loc["specialized", "judged"] == 0 and got.loc["zeroing", "judged"] == 64
    assert (tmp_path / "counts.png").stat().st_size > 5000
    row = nas.nas_1(counts, {"rand": ["fc"]})
    assert f"{got.loc['insufficient', 'count']} of 64 units insufficient" in row["detail"]
    # with 3 images per class H never reaches 5 images: the H types are judged on no unit, so no verdict
    assert row["verdict"] == "NOT RUN" and "rand/fc (specialized, bisemantic, polysemantic" in row["detail"]


def test_count_labels_rejects_a_table_of_another_layer():
    t = _classify(_unit({0: 1.0}))
    with pytest.raises(ValueError, match="1 rows for 2 units"):
        nas.count_labels(t, np.array([30, 30]))


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
    assert payload["types"] == list(nas.TAXONOMY_LABELS)
    binary = chromium_or_skip()
    dom = dump_dom(binary, path.resolve().as_uri(), tmp_path / "profile")
    assert 'data-ready="1"' in re.search(r"<body([^>]*)>", dom).group(1)
    rows = re.findall(r'<div class="unit-row" data-unit="(\d+)"', dom)
    assert [int(r) for r in rows] == list(range(s.n_units))
    assert len(re.findall(r'class="zero"', dom)) == s.n_units
    assert "specialized" in dom
    # every unit's whole label list is on the page (wrapped after "+", never cut by the column)
    names = re.findall(r'<span class="name" title="([^"]*)">([^<]*)</span>', dom)
    assert len(names) == s.n_units and all(text.replace("\u200b", "") == title for title, text in names)
    css = read_static("conceptscope.nas", "summary.css")
    rule = css[css.index(".unit-row .name") :].split("}")[0]
    assert "hidden" not in rule and "nowrap" not in rule and "ellipsis" not in rule
