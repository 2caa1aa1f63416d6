"""The atlas jobs on hand-made catalogs: which concepts meet at a layer, the alignment table against brute force,
the recovery table of a planted manifest, the catalog round trip."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from conceptscope.atlas.concepts import Concept, load_concepts, save_concepts
from conceptscope.atlas.jobs import atlas_alignment, atlas_recovery, layer_concepts, method_universe

SPLIT = np.arange(100, 120)  # sample ids of a 20-image split; position p is sample 100 + p


def concept(method, layer, name, positions, variant="", universe=None, **meta):
    pos = np.asarray(positions, dtype=np.int64)
    uni = SPLIT if universe is None else np.asarray(universe, dtype=np.int64)
    return Concept(method, "m", layer, name, pos, SPLIT[pos], uni, "test", variant, meta)


@pytest.fixture
def catalog(tmp_path):
    cs = [
        concept("naps", "l1", "nap0", [0, 1, 2, 3], "max"),
        concept("naps", "l1", "nap1", [10, 11, 12], "max"),
        concept("naps", "l1", "nap0", [5, 6], "mean"),  # another disentanglement: not aligned
        concept("nmf", "coupled", "factor0", [0, 1, 2, 4], "coupled", layers=["l1", "l2"]),
        concept("nmf", "coupled", "factor1", [10, 11, 13, 14], "coupled", layers=["l1", "l2"]),
        concept("nmf", "coupled", "factor2", [7, 8], "coupled", layers=["l1", "l2"]),
        # NeurFlow looked at images 0..5 only (one class): the alignment is on those
        concept("neurflow", "l1", "class0/g0", [0, 1], universe=SPLIT[:6], neurons=[0, 2]),
        concept("neurflow", "l1", "class0/g1", [3, 4, 5], universe=SPLIT[:6], neurons=[1]),
        concept("nas", "l2", "unit0", [7, 8, 9], "top set"),
    ]
    groups = [
        ["naps", "max", "m", "l1"],
        ["naps", "mean", "m", "l1"],
        ["naps", "max", "m", "l2"],  # HDBSCAN found no NAP at l2
        ["nmf", "coupled", "m", "coupled"],
        ["neurflow", "", "m", "l1"],
        ["nas", "top set", "m", "l2"],
    ]
    path = tmp_path / "concepts.json"
    save_concepts(cs, path, model="m", groups=groups)
    return path


def test_catalog_round_trip_keeps_every_field(catalog):
    cs, meta = load_concepts(catalog)
    assert meta["model"] == "m" and len(meta["groups"]) == 6
    c = cs[6]
    assert (c.method, c.layer, c.name, c.split, dict(c.meta)) == (
        "neurflow",
        "l1",
        "class0/g0",
        "test",
        {"neurons": [0, 2]},
    )
    assert c.positions.tolist() == [0, 1] and c.sample_ids.tolist() == [100, 101]
    assert c.universe.tolist() == SPLIT[:6].tolist() and cs[0].universe.tolist() == SPLIT.tolist()
    assert len(json.loads(catalog.read_text())["universes"]) == 2  # each distinct universe stored once


def test_a_broken_catalog_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "concepts.json"
    bad.write_text('{"format_version": 1, "concepts": [')
    with pytest.raises(ValueError, match=r"concepts\.json is not a readable concept catalog .* delete"):
        load_concepts(bad)


def test_layer_concepts_puts_coupled_factors_at_every_factored_layer(catalog):
    cs, meta = load_concepts(catalog)
    by = layer_concepts(cs, layers=["l0", "l1", "l2"], nap_method="max", groups=meta["groups"])
    assert list(by) == ["l1", "l2"]  # l0: no method
    assert list(by["l1"]) == ["naps", "nmf", "neurflow"]
    assert [c.name for c in by["l1"]["naps"]] == ["nap0", "nap1"]  # the max NAPs only
    assert by["l1"]["nmf"] == by["l2"]["nmf"] and len(by["l2"]["nmf"]) == 3
    assert by["l2"]["naps"] == []  # it ran there and found nothing
    assert [c.name for c in layer_concepts(cs, layers=["l1"], nap_method="mean")["l1"]["naps"]] == ["nap0"]
    assert method_universe(by["l1"]["neurflow"]).tolist() == SPLIT[:6].tolist()


def _brute_force_matching(sets_a, sets_b, universe):
    """Mean Jaccard of the best one-to-one matching, by trying every injection of the smaller side."""
    u = set(universe.tolist())
    a = [set(s.tolist()) & u for s in sets_a]
    b = [set(s.tolist()) & u for s in sets_b]
    J = np.array([[len(x & y) / len(x | y) if x | y else 0.0 for y in b] for x in a])
    if len(a) > len(b):
        J = J.T
    best = max(
        sum(J[i, p[i]] for i in range(J.shape[0])) for p in itertools.permutations(range(J.shape[1]), J.shape[0])
    )
    return best / J.shape[0], J


def test_alignment_table_equals_brute_force_on_the_shared_images(catalog, tmp_path):
    out = tmp_path / "figures"
    atlas_alignment(
        catalog=catalog,
        model_id="m",
        layers=["l1", "l2"],
        nap_method="max",
        settings={"n_permutations": 20, "threshold": 0.5},
        seed=0,
        summary=tmp_path / "alignment.csv",
        figures=out,
    )
    table = pd.read_csv(tmp_path / "alignment.csv", dtype={"figure": str}).fillna({"figure": ""})
    pairs = [tuple(r) for r in table[["layer", "method_a", "method_b"]].itertuples(index=False)]
    assert pairs == [
        ("l1", "naps", "nmf"),
        ("l1", "naps", "neurflow"),
        ("l1", "nmf", "neurflow"),
        ("l2", "naps", "nmf"),
        ("l2", "naps", "nas"),
        ("l2", "nmf", "nas"),
    ]
    cs, _ = load_concepts(catalog)
    by = layer_concepts(cs, layers=["l1", "l2"], nap_method="max")
    for r in table.itertuples():
        if r.layer == "l2" and "naps" in (r.method_a, r.method_b):  # no NAP there: a row, no score, no figure
            assert r.n_a == 0 and np.isnan(r.mean_matched_jaccard) and r.figure == ""
            continue
        a, b = by[r.layer][r.method_a], by[r.layer][r.method_b]
        universe = np.intersect1d(method_universe(a), method_universe(b))
        expected, J = _brute_force_matching([c.ids for c in a], [c.ids for c in b], universe)
        assert r.n_universe == universe.size
        assert r.mean_matched_jaccard == pytest.approx(expected)
        best_a = J.max(axis=1) if len(a) <= len(b) else J.max(axis=0)
        assert r.n_a_with_counterpart == int((best_a >= 0.5).sum())
        assert (out / r.figure).is_file() and (out / r.figure).with_suffix(".csv").is_file()
    # NAPs x NeurFlow is judged on images 0..5 only: nap0 = {0..3} and g0 = {0, 1}: J = 2 / 4
    row = table[(table["layer"] == "l1") & (table["method_b"] == "neurflow") & (table["method_a"] == "naps")].iloc[0]
    assert row["n_universe"] == 6
    cells = pd.read_csv(out / row["figure"].replace(".png", ".csv"))
    assert cells.set_index(["concept_a", "concept_b"]).loc[("nap0", "class0/g0"), "jaccard"] == pytest.approx(0.5)


def test_recovery_table_scores_planted_concepts_and_lists_empty_groups(catalog, tmp_path):
    manifest = tmp_path / "test.csv"
    carriers = np.zeros(20, dtype=bool)
    carriers[[10, 11, 12]] = True  # exactly nap1's images
    pd.DataFrame(
        {
            "position": np.arange(20),
            "sample_id": SPLIT,
            "label": np.arange(20) % 2,
            "class_name": np.where((np.arange(20) >= 10) & (np.arange(20) < 15), "b", "a"),
            "concept_stamp": carriers,
            "concept_none": np.zeros(20, dtype=bool),
        }
    ).to_csv(manifest, index=False)
    atlas_recovery(
        catalog=catalog,
        manifest=[manifest],
        settings={"recovery_permutations": 200},
        seed=0,
        csv=tmp_path / "recovery.csv",
        png=tmp_path / "recovery.png",
    )
    t = pd.read_csv(tmp_path / "recovery.csv", keep_default_na=False)
    row = t[(t["method"] == "naps") & (t["variant"] == "max") & (t["layer"] == "l1") & (t["planted"] == "stamp")]
    assert row["best_concept"].item() == "nap1" and row["f1"].item() == 1.0 and row["p_value"].item() < 0.05
    empty = t[(t["method"] == "naps") & (t["layer"] == "l2")]
    assert len(empty) == 2 and (empty["n_concepts"] == 0).all() and (empty["f1"] == 0).all()
    # a planted concept nobody carries is recovered by nobody
    assert (t[t["planted"] == "none"]["f1"] == 0).all()
    # the class baseline: class b (positions 10..14) holds the three carriers, 2 * 3 / (5 + 3); NeurFlow looked at
    # positions 0..5 only, where nobody carries the stamp
    stamp = t[t["planted"] == "stamp"].set_index(["method", "layer"])
    assert stamp.loc[("naps", "l1"), "class_f1"].tolist() == [0.75, 0.75]  # both NAP disentanglements
    assert set(stamp.loc[("naps", "l1"), "class_best"]) == {"b"}
    assert stamp.loc[("neurflow", "l1"), "class_f1"] == 0.0 and stamp.loc[("neurflow", "l1"), "class_best"] == ""
    assert (t[t["planted"] == "none"]["class_f1"] == 0).all()
    assert (tmp_path / "recovery.png").stat().st_size > 0


def test_the_image_set_null_is_the_direction_of_random_image_sets_of_the_concepts_size():
    from conceptscope.atlas.jobs import _Features, _set_null

    rng = np.random.default_rng(3)
    X = rng.random((20, 6))  # a NAP layer's `max` features, rows by position
    full = rng.random((20, 12))  # an NMF layer's flattened maps
    features = _Features({}, {})
    features.features = {("l1", "max"): X, ("l1", "flat"): full}
    nap = concept("naps", "l1", "nap0", [0, 1, 2, 3], "max")
    got = _set_null(nap, "naps", "l1", features, 5, seed=7)
    draw = np.random.default_rng(7)
    for basis in got:
        rows = np.sort(draw.choice(20, size=4, replace=False))
        centroid = X[rows].mean(0)
        np.testing.assert_allclose(basis[0].numpy(), centroid / np.linalg.norm(centroid))
    factor = concept("nmf", "coupled", "factor0", [0, 1, 2], "coupled", layers=["l1"])
    (first,) = _set_null(factor, "nmf", "l1", features, 1, seed=7)
    rows = np.sort(np.random.default_rng(7).choice(20, size=3, replace=False))
    np.testing.assert_allclose(first[0].numpy(), full[rows].mean(0) / np.linalg.norm(full[rows].mean(0)))
    assert _set_null(concept("nas", "l2", "unit0", [7, 8], "top set"), "nas", "l2", features, 5, seed=7) is None
    with pytest.raises(KeyError, match="no activation cache of layer 'l9'"):
        features("l9", "max")
