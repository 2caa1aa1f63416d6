"""Atlas concept readers and planted-concept recovery scores, against hand-made sets and brute force."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conceptscope.atlas.concepts import (
    Concept,
    nmf_cut,
    read_concepts,
    read_nap_concepts,
    read_nas_concepts,
    read_neurflow_concepts,
    read_nmf_concepts,
    read_sample_ids,
)
from conceptscope.atlas.recovery import COLUMNS, plot_recovery, read_truth, recovery_scores, write_recovery

ROOT = Path(__file__).resolve().parents[1]


def _truth(n: int, *sets: list[int]) -> np.ndarray:
    t = np.zeros((n, len(sets)), dtype=bool)
    for j, s in enumerate(sets):
        t[s, j] = True
    return t


def _concept(name: str, positions, layer: str = "l", method: str = "m", **kw) -> Concept:
    return Concept(method, "model", layer, name, np.asarray(sorted(positions), dtype=np.int64), **kw)


# --------------------------------------------------------------------------- scores on hand-made sets


def test_perfect_disjoint_and_partial_match():
    truth = _truth(20, [0, 1, 2, 3], [10, 11, 12, 13, 14, 15])
    tab = recovery_scores(
        [_concept("same", [0, 1, 2, 3]), _concept("other", [16, 17]), _concept("part", [10, 11, 12, 19])],
        truth,
        ["a", "b"],
        n_permutations=0,
    )
    assert list(tab.columns) == list(COLUMNS)
    a, b = tab.iloc[0], tab.iloc[1]
    assert (a.best_concept, a.precision, a.recall, a.f1, a.overlap) == ("same", 1.0, 1.0, 1.0, 4)
    # |C| = 4, |T| = 6, overlap 3: P = 3/4, R = 3/6, F1 = 2 * .75 * .5 / 1.25 = 0.6
    assert b.best_concept == "part"
    assert (b.concept_size, b.planted_size, b.overlap) == (4, 6, 3)
    assert b.precision == pytest.approx(0.75) and b.recall == pytest.approx(0.5) and b.f1 == pytest.approx(0.6)
    assert np.isnan(a.null_mean) and np.isnan(a.p_value)

    only_disjoint = recovery_scores([_concept("other", [16, 17])], truth, ["a", "b"], n_permutations=0)
    assert (only_disjoint[["precision", "recall", "f1"]].to_numpy() == 0).all()
    empty = recovery_scores([_concept("empty", [])], truth, ["a", "b"], n_permutations=0)
    assert (empty["f1"] == 0).all() and (empty["concept_size"] == 0).all()


def test_ties_go_to_the_concept_listed_first():
    truth = _truth(10, [0, 1])
    tab = recovery_scores(
        [_concept("x", [0, 5]), _concept("y", [1, 6]), _concept("z", [0])], truth, ["a"], n_permutations=0
    )
    # x and y: P .5, R .5, F1 .5; z: P 1, R .5, F1 2/3 -> z
    assert tab.iloc[0].best_concept == "z"
    tab = recovery_scores([_concept("y", [1, 6]), _concept("x", [0, 5])], truth, ["a"], n_permutations=0)
    assert tab.iloc[0].best_concept == "y"


def test_universe_restricts_recall_and_sample_ids_align():
    # truth rows are sample ids 100..109 in shuffled order; the concept saw only ids 100..104
    ids = np.array([105, 100, 108, 101, 103, 109, 102, 104, 106, 107])
    carriers = {100, 101, 106, 107}  # two inside the universe, two outside
    truth = np.isin(ids, list(carriers))[:, None]
    c = Concept("neurflow", "m", "l", "g", np.array([0, 1, 2]), np.array([100, 101, 102]), np.arange(100, 105))
    row = recovery_scores([c], truth, ["a"], ids, n_permutations=0).iloc[0]
    assert (row.overlap, row.planted_size, row.planted_in_universe) == (2, 4, 2)
    assert row.precision == pytest.approx(2 / 3) and row.recall == 1.0 and row.f1 == pytest.approx(0.8)
    with pytest.raises(ValueError, match="not among the truth's sample ids"):
        recovery_scores([Concept("m", "m", "l", "x", np.array([0]), np.array([999]))], truth, ["a"], ids)


def _brute_f1(c: set[int], t: set[int], u: set[int]) -> float:
    t = t & u
    return 0.0 if not (c or t) else 2 * len(c & t) / (len(c) + len(t))


def _random_concepts(rng, n, ids):
    concepts = []
    for method in ("naps", "nmf"):
        for layer in ("l1", "l2"):
            for i in range(int(rng.integers(1, 6))):
                universe = ids if method == "naps" else np.sort(rng.choice(ids, n // 2, replace=False))
                members = np.sort(rng.choice(universe, int(rng.integers(0, len(universe) // 2)), replace=False))
                pos = np.sort(np.searchsorted(np.sort(ids), members))  # positions into the sorted id list
                concepts.append(Concept(method, "m", layer, f"{method}{layer}c{i}", pos, np.sort(ids)[pos], universe))
    return concepts


@pytest.mark.parametrize("seed", range(5))
def test_best_match_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = 30, 3
    ids = rng.permutation(np.arange(500, 500 + n))
    truth = rng.random((n, k)) < 0.3
    concepts = _random_concepts(rng, n, ids)
    tab = recovery_scores(concepts, truth, ["a", "b", "c"], ids, n_permutations=0)
    for _, row in tab.iterrows():
        j = ["a", "b", "c"].index(row.planted)
        t = set(ids[truth[:, j]].tolist())
        group = [c for c in concepts if (c.method, c.layer) == (row.method, row.layer)]
        scores = [_brute_f1(set(c.sample_ids.tolist()), t, set(c.universe.tolist())) for c in group]
        best = int(np.argmax(scores))  # first max
        c = group[best]
        inter = len(set(c.sample_ids.tolist()) & t)
        tu = len(t & set(c.universe.tolist()))
        assert row.best_concept == c.name and row.n_concepts == len(group)
        assert row.f1 == pytest.approx(scores[best], abs=1e-12)
        assert row.precision == pytest.approx(inter / c.size if c.size else 0.0, abs=1e-12)
        assert row.recall == pytest.approx(inter / tu if tu else 0.0, abs=1e-12)


# --------------------------------------------------------------------------- the null


def _brute_null(group, truth_j, perms):
    """Best-match F1 of ``group`` against the permuted truth column, by set operations."""
    null = []
    for p in perms:
        t = set(np.flatnonzero(truth_j[p]).tolist())
        null.append(max(_brute_f1(set(c.positions.tolist()), t, set(c.universe.tolist())) for c in group))
    return np.asarray(null)


def test_null_equals_brute_force_permutations_and_ignores_batch_size():
    rng = np.random.default_rng(3)
    n = 25
    ids = np.arange(n)
    truth = rng.random((n, 2)) < 0.4
    concepts = _random_concepts(rng, n, ids)  # naps: universe = all images; nmf: random universes
    tab = recovery_scores(concepts, truth, ["a", "b"], n_permutations=40, seed=11, batch_size=256)
    again = recovery_scores(concepts, truth, ["a", "b"], n_permutations=40, seed=11, batch_size=3)
    pd.testing.assert_frame_equal(tab, again)
    other = recovery_scores(concepts, truth, ["a", "b"], n_permutations=40, seed=12)
    assert not np.allclose(tab["null_mean"], other["null_mean"])
    naps = [c for c in concepts if c.method == "naps"]
    alone = recovery_scores(naps, truth, ["a", "b"], n_permutations=40, seed=11)
    pd.testing.assert_frame_equal(alone, tab[tab.method == "naps"].reset_index(drop=True))  # groups independent

    for _, row in tab[tab.method == "naps"].iterrows():
        gen = np.random.default_rng(11)  # the documented draw for a whole-list universe: every group restarts
        perms = [gen.permutation(n) for _ in range(40)]
        group = [c for c in naps if c.layer == row.layer]
        null = _brute_null(group, truth[:, ["a", "b"].index(row.planted)], perms)
        assert row.null_mean == pytest.approx(null.mean(), abs=1e-12)
        assert row.null_q95 == pytest.approx(np.quantile(null, 0.95), abs=1e-12)
        assert row.p_value == pytest.approx((1 + np.sum(null >= row.f1 - 1e-12)) / 41, abs=1e-12)


def test_null_permutes_within_a_restricted_universe():
    n, n_u, c, t_u = 200, 100, 25, 20
    inside = np.arange(0, 2 * n_u, 2)  # the universe: even positions
    truth = _truth(n, [*inside[:t_u].tolist(), *range(1, 41, 2)])  # 20 carriers inside, 20 outside
    concept = _concept("c", inside[50 : 50 + c], universe=inside)
    row = recovery_scores([concept], truth, ["a"], n_permutations=3000, seed=5).iloc[0]
    assert (row.planted_size, row.planted_in_universe) == (40, 20)
    expected = 2 * c * t_u / (n_u * (c + t_u))  # hypergeometric within the universe
    sd_f1 = 2 / (c + t_u) * math.sqrt(c * t_u / n_u * (1 - t_u / n_u) * (n_u - c) / (n_u - 1))
    assert abs(row.null_mean - expected) < 4 * sd_f1 / math.sqrt(3000)

    small = recovery_scores([concept], truth, ["a"], n_permutations=30, seed=5).iloc[0]
    gen = np.random.default_rng(5)
    perms = []
    for _ in range(30):
        perm = np.arange(n)
        perm[inside] = inside[gen.permutation(n_u)]
        perms.append(perm)
    null = _brute_null([concept], truth[:, 0], perms)
    assert small.null_mean == pytest.approx(null.mean(), abs=1e-12)


def test_null_keeps_each_universes_carriers():
    # NeurFlow-like: two classes' images as disjoint universes, each group concept = all of its class's images
    n = 60
    class_a, class_b = np.arange(0, 10), np.arange(10, 20)
    truth = _truth(n, [0, 1, 2, 3, 4, 30, 31, 32])  # half of class a carries it, and images outside both classes
    concepts = [
        _concept("a/g0", class_a, method="neurflow", universe=class_a),
        _concept("b/g0", class_b, method="neurflow", universe=class_b),
    ]
    row = recovery_scores(concepts, truth, ["x"], n_permutations=200, seed=0).iloc[0]
    assert row.best_concept == "a/g0" and row.f1 == pytest.approx(2 * 5 / 15)
    # every permutation keeps 5 carriers in class a and 0 in class b: the null is the observed value, p = 1
    assert row.null_mean == pytest.approx(row.f1) and row.null_q95 == pytest.approx(row.f1) and row.p_value == 1.0


def test_null_mean_matches_the_hypergeometric_expectation():
    n, c, t = 200, 30, 50
    truth = _truth(n, list(range(t)))
    concept = _concept("c", range(100, 100 + c))
    row = recovery_scores([concept], truth, ["a"], n_permutations=4000, seed=0).iloc[0]
    expected = 2 * c * t / (n * (c + t))  # E|C n T| = c t / n, F1 = 2 |C n T| / (c + t)
    # sd of the overlap: hypergeometric variance c (t/n)(1 - t/n)(n - c)/(n - 1)
    sd_f1 = 2 / (c + t) * math.sqrt(c * t / n * (1 - t / n) * (n - c) / (n - 1))
    assert abs(row.null_mean - expected) < 4 * sd_f1 / math.sqrt(4000)
    assert row.f1 == 0.0 and row.p_value == 1.0


def test_perfect_match_beats_every_permutation():
    truth = _truth(100, list(range(20)))
    row = recovery_scores([_concept("c", range(20))], truth, ["a"], n_permutations=99, seed=0).iloc[0]
    assert row.f1 == 1.0 and row.null_q95 < 0.6 and row.p_value == pytest.approx(1 / 100)


def test_listed_groups_keep_layers_without_concepts():
    truth = _truth(10, [0, 1], [5])
    c = Concept("naps", "cnn", "conv2", "nap0", np.array([0, 1]), variant="max")
    groups = [("naps", "max", "cnn", "pool1"), ("naps", "max", "cnn", "conv2")]
    tab = recovery_scores([c], truth, ["a", "b"], groups=groups, n_permutations=10)
    assert tab[["layer", "planted"]].values.tolist() == [["pool1", "a"], ["pool1", "b"], ["conv2", "a"], ["conv2", "b"]]
    empty = tab[tab.layer == "pool1"]
    assert (empty.n_concepts == 0).all() and (empty.f1 == 0).all() and (empty.p_value == 1).all()
    assert empty.planted_size.tolist() == [2, 1] and (empty.best_concept == "").all()
    assert tab.iloc[2].f1 == 1.0
    assert len(recovery_scores([], truth, ["a", "b"], groups=groups[:1])) == 2
    with pytest.raises(ValueError, match="not in groups"):
        recovery_scores([c], truth, ["a", "b"], groups=groups[:1])


def test_bad_arguments_raise():
    truth = _truth(5, [0])
    good = [_concept("c", [0])]
    with pytest.raises(ValueError, match="bool"):
        recovery_scores(good, truth.astype(int), ["a"])
    with pytest.raises(ValueError, match="truth_names"):
        recovery_scores(good, truth, ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        recovery_scores(good, truth, ["a"], np.array([1, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="n_permutations"):
        recovery_scores(good, truth, ["a"], n_permutations=-1)
    with pytest.raises(ValueError, match="ascending"):
        Concept("m", "x", "l", "c", np.array([3, 1]))
    with pytest.raises(ValueError, match="universe"):
        Concept("m", "x", "l", "c", np.array([1, 2]), universe=np.array([1]))
    assert recovery_scores([], truth, ["a"]).empty


def test_read_truth_plot_and_csv(tmp_path):
    manifest = tmp_path / "test.csv"
    pd.DataFrame(
        {
            "position": range(6),
            "sample_id": [7, 3, 9, 1, 4, 8],
            "label": [0] * 6,
            "class_name": ["0"] * 6,
            "concept_cross": [True, True, False, False, False, False],
            "concept_bar": [False, False, True, False, True, False],
        }
    ).to_csv(manifest, index=False)
    truth, names, ids = read_truth(manifest)
    assert names == ["cross", "bar"] and ids.tolist() == [7, 3, 9, 1, 4, 8]
    assert truth.dtype == bool and truth[:, 1].tolist() == [False, False, True, False, True, False]
    np.testing.assert_array_equal(read_sample_ids(manifest), ids)
    concepts = [
        Concept("naps", "m", "conv2", "nap0", np.array([0, 1]), np.array([7, 3]), variant="max"),
        Concept("nmf", "m", "coupled", "factor0", np.array([2]), np.array([9]), variant="coupled"),
    ]
    tab = recovery_scores(concepts, truth, names, ids, n_permutations=20)
    png = plot_recovery(tab, tmp_path / "recovery_m.png")
    csv = write_recovery(tab, tmp_path / "recovery_m.csv")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(csv, keep_default_na=False)
    assert list(back.columns) == list(COLUMNS) and back["best_concept"].tolist() == tab["best_concept"].tolist()
    np.testing.assert_allclose(back[["f1", "null_q95", "p_value"]], tab[["f1", "null_q95", "p_value"]])
    assert plot_recovery(tab.iloc[:0], tmp_path / "empty.png").exists()
    pd.DataFrame({"position": [0], "sample_id": [1]}).to_csv(tmp_path / "plain.csv", index=False)
    with pytest.raises(ValueError, match="concept_"):
        read_truth(tmp_path / "plain.csv")


# --------------------------------------------------------------------------- readers on hand-made files


def test_read_nap_concepts(tmp_path):
    from conceptscope.naps.core import NapResult, save_result

    n = 8
    ids = np.array([30, 31, 35, 36, 40, 41, 42, 50])
    result = NapResult(
        nap=np.array([1, 0, -1, 0, 1, 1, -1, 0]),
        probability=np.array([0.5, 1.0, 0.0, 0.7, 1.0, 0.9, 0.0, 0.8]),
        outlier_score=np.zeros(n),
        hdbscan_label=np.array([0, 1, -1, 1, 0, 0, -1, 1]),
        persistence=np.array([0.9, 0.4]),
        size=np.array([3, 3]),
        stats=np.zeros((2, 7, 4), dtype=np.float32),
        feature_unit=np.arange(4),
        labels=np.zeros(n, dtype=np.int64),
        predictions=np.zeros(n, dtype=np.int64),
        sample_ids=ids,
        meta={"model": "cnn", "layer": "conv2", "split": "test", "method": "max"},
    )
    path = tmp_path / "max.h5"
    save_result(result, path)
    concepts = read_nap_concepts(path, sample_ids=ids)
    assert [c.name for c in concepts] == ["nap0", "nap1"]
    assert concepts[0].positions.tolist() == [1, 3, 7] and concepts[0].sample_ids.tolist() == [31, 36, 50]
    assert concepts[1].positions.tolist() == [0, 4, 5] and concepts[1].sample_ids.tolist() == [30, 40, 41]
    c = concepts[0]
    assert (c.method, c.model, c.layer, c.variant, c.split) == ("naps", "cnn", "conv2", "max", "test")
    np.testing.assert_array_equal(c.universe, ids)
    with pytest.raises(ValueError, match="differ"):
        read_nap_concepts(path, sample_ids=ids + 1)
    assert len(read_concepts("naps", [path, path])) == 4


def test_read_nmf_concepts(tmp_path):
    F = np.array(
        [
            [5.0, 1.0, 5.0, 0.0, 2.0, 0.0, 0.0],  # ties at 5 -> lower position first; cut ceil(7/2) = 4
            [0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 1.0],  # only two images with F > 0
        ]
    )
    ids = np.array([10, 12, 14, 16, 18, 20, 22])
    path = tmp_path / "coupled.pt"
    torch.save(
        {"P": [torch.zeros(4, 2)], "F": torch.from_numpy(F), "layers": ["a", "b"], "meta": {"split": "test"}}, path
    )
    assert nmf_cut(7, 2) == 4
    concepts = read_nmf_concepts(path, model="r18", sample_ids=ids)
    assert [c.positions.tolist() for c in concepts] == [[0, 1, 2, 4], [5, 6]]
    assert concepts[0].sample_ids.tolist() == [10, 12, 14, 18]
    assert {(c.layer, c.variant, c.split, c.model) for c in concepts} == {("coupled", "coupled", "test", "r18")}
    assert [c.positions.tolist() for c in read_nmf_concepts(path, model="r18", sample_ids=ids, top=1)] == [[0], [5]]
    with pytest.raises(ValueError, match="split"):
        read_nmf_concepts(path, model="r18", sample_ids=ids, split="train")
    with pytest.raises(ValueError, match="indexes 7 images"):
        read_nmf_concepts(path, model="r18", sample_ids=ids[:5])
    single = tmp_path / "layer4.pt"
    torch.save({"O": [torch.zeros(3, 2)], "F": torch.from_numpy(F), "layers": ["layer4"]}, single)
    c = read_nmf_concepts(single, model="r18", sample_ids=ids, split="test")[0]
    assert (c.layer, c.variant, c.split) == ("layer4", "single", "test")


def test_read_nas_concepts(tmp_path):
    from conceptscope.nas.core import save_summary, summarize_layer

    values = np.stack(
        [
            np.arange(10.0),  # ranges of width 1.8 over [0, 9], two images each
            np.array([0, 0, 0, 0, 0, 0, 0, 1, 2, 10.0]),  # ranges of width 2: [0, 2) holds 8, then 2, ..., 10
            np.full(10, 3.0),  # constant: no concept
        ],
        axis=1,
    )
    positions = np.array([1, 3, 4, 6, 9, 11, 12, 15, 17, 19])  # sampled positions of a 20-image split
    ids = 1000 + 3 * np.arange(20)
    s = summarize_layer(
        values,
        np.zeros(10, dtype=np.int64),
        ["0"],
        m=5,
        positions=positions,
        meta={"model": "qd", "layer": "fc1", "split": "test", "taxonomy": {"top_fraction": 0.3}},
    )
    path = tmp_path / "summary.h5"
    save_summary(s, path)
    concepts = read_nas_concepts(path, sample_ids=ids)
    assert [c.name for c in concepts] == ["unit0", "unit1"]
    # unit 0: top range [7.2, 9] holds rows 8, 9; adding [5.4, 7.2) would give 4 > 0.3 * 10
    assert concepts[0].positions.tolist() == [17, 19] and concepts[0].sample_ids.tolist() == [1051, 1057]
    # unit 1: ranges from the top hold 1 (10), 0, 0, 1 (2): 2 images <= 3; then [0, 2) with 8 would exceed
    assert concepts[1].positions.tolist() == [17, 19]
    assert read_nas_concepts(path, sample_ids=ids, top_fraction=0.4)[0].positions.tolist() == [12, 15, 17, 19]
    top = read_nas_concepts(path, sample_ids=ids, top="range")
    assert [c.positions.tolist() for c in top] == [[17, 19], [19]]
    np.testing.assert_array_equal(concepts[0].universe, ids[positions])
    assert (concepts[0].model, concepts[0].layer, concepts[0].variant) == ("qd", "fc1", "top set")
    with pytest.raises(ValueError, match="top"):
        read_nas_concepts(path, sample_ids=ids, top="bottom")


def _neurflow_files(tmp_path, ids, *, status=None, bad_sample=False):
    positions = [4, 9, 11]
    circuit = {
        "class_index": 2,
        "layers": ["fc", "layer4"],
        "n_images": 3,
        "n_patches": 9,  # 3 patches per image, image-major
        "model": "r18",
        "split": "test",
        "positions": positions,
        "patches": {
            "0": {"image": 0, "sample_id": int(ids[4])},
            "4": {"image": 1, "sample_id": int(ids[9]) + (1 if bad_sample else 0)},
            "8": {"image": 2, "sample_id": int(ids[11])},
        },
        "nodes": [],
        "edges": [],
    }
    if status:
        circuit["status"] = status
    groups = {
        "fc": [{"index": 0, "patches": np.array([0, 4]), "neurons": [2]}],
        "layer4": [
            {"index": 0, "patches": np.array([1, 2]), "neurons": [1, 3]},
            {"index": 1, "patches": np.array([5, 7, 8]), "neurons": [0]},
        ],
    }
    path = tmp_path / "class2" / "circuit.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(circuit))
    torch.save({"groups": groups, "positions": np.array(positions)}, path.with_name("levels.pt"))
    return path


def test_read_neurflow_concepts(tmp_path):
    ids = 500 + np.arange(15)[::-1]
    path = _neurflow_files(tmp_path, ids)
    concepts = read_neurflow_concepts(path, sample_ids=ids)
    assert [(c.layer, c.name) for c in concepts] == [
        ("fc", "class2/g0"),
        ("layer4", "class2/g0"),
        ("layer4", "class2/g1"),
    ]
    assert [c.positions.tolist() for c in concepts] == [[4, 9], [4], [9, 11]]
    assert concepts[2].sample_ids.tolist() == [int(ids[9]), int(ids[11])]
    np.testing.assert_array_equal(concepts[0].universe, ids[[4, 9, 11]])
    assert concepts[2].meta["n_patches"] == 3 and concepts[0].split == "test"
    with pytest.raises(ValueError, match="patch 4"):
        read_neurflow_concepts(_neurflow_files(tmp_path, ids, bad_sample=True), sample_ids=ids)
    assert read_neurflow_concepts(_neurflow_files(tmp_path, ids, status="no images"), sample_ids=ids) == []


# --------------------------------------------------------------------------- readers on the default suite's outputs


def _real(pattern: str) -> list[Path]:
    return sorted((ROOT / "results").glob(pattern))


def _manifest_ids(dataset: str, split: str) -> np.ndarray:
    path = ROOT / "results" / "data" / dataset / f"{split}.csv"
    if not path.exists():
        pytest.skip(f"no {path}")
    return read_sample_ids(path)


def test_readers_on_default_suite_outputs():
    """The real formats (only where the default suite has been run in this checkout)."""
    naps, nmf = _real("naps/*/test/*/max.h5")[:3], _real("nmf/*/coupled.pt")
    nas, neurflow = _real("nas/*/*/summary.h5")[:2], _real("neurflow/*/class*/circuit.json")
    if not (naps or nmf or nas or neurflow):
        pytest.skip("the default suite has not been run here")
    for path in naps:
        from conceptscope.naps.core import load_result

        meta = load_result(path).meta
        concepts = read_nap_concepts(path, sample_ids=_manifest_ids(meta["dataset"], meta["split"]))
        assert all(c.size >= 1 for c in concepts)
    for path in nmf:
        res = torch.load(path, weights_only=False)
        ids = _manifest_ids(res["meta"]["dataset"], res["meta"]["split"])
        concepts = read_nmf_concepts(path, model=path.parent.name, sample_ids=ids)
        assert len(concepts) == res["F"].shape[0]
        assert all(c.size == nmf_cut(len(ids), len(concepts)) for c in concepts)
    for path in nas:
        from conceptscope.nas.core import load_summary

        meta = load_summary(path).meta
        concepts = read_nas_concepts(path, sample_ids=_manifest_ids(meta["dataset"], meta["split"]))
        assert concepts and all(c.size >= 1 for c in concepts)
    for path in neurflow:
        c = json.loads(path.read_text())
        concepts = read_neurflow_concepts(path, sample_ids=_manifest_ids(c["dataset"], c["split"]))
        assert all(1 <= x.size <= c["n_images"] for x in concepts)
