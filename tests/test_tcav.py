"""TCAV (conceptscope.nmf.tcav): table layout, determinism, clean-up, and a model whose answer is known by hand."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ttest_ind
from torch import nn

from conceptscope import data, models
from conceptscope.data import ImageSet
from conceptscope.models import InputSpec
from conceptscope.nmf import tcav, views


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return data.load_split({"kind": "digits", "subset": {"test": {"first_n": 120}}}, "test", key="datasets.digits")


def _cnn(seed: int = 0) -> tuple[nn.Module, InputSpec]:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return models.build_model("local:nap_mnist_cnn", n_classes=10, in_channels=1)


def _digit_concepts(images: ImageSet) -> dict[str, np.ndarray]:
    return {"zero": np.flatnonzero(images.labels == 0)[:10], "one": np.flatnonzero(images.labels == 1)[:10]}


def _run_digits(images: ImageSet, model: nn.Module, inp: InputSpec, **kw) -> pd.DataFrame:
    args = {"n_random": 10, "n_random_sets": 2, "seed": 0, "batch_size": 8} | kw
    return tcav.tcav_scores(model, inp, images, _digit_concepts(images), ["conv2"], [0, 1], **args)


@pytest.fixture(scope="module")
def digits_table(digits) -> pd.DataFrame:
    model, inp = _cnn()
    return _run_digits(digits, model.eval(), inp)


def test_table_layout(digits, digits_table):
    t = digits_table
    assert list(t.columns) == list(tcav.TABLE_COLUMNS)
    # 2 concepts + the random baseline, x 1 layer x 2 classes x 2 random sets
    assert t.shape == (3 * 2 * 2, len(tcav.TABLE_COLUMNS))
    assert set(t["concept"]) == {"zero", "one", tcav.BASELINE}
    assert (t["baseline"] == (t["concept"] == tcav.BASELINE)).all()
    assert set(t["random_set"]) == {0, 1}
    assert set(t["layer"]) == {"conv2"}
    assert t.groupby(["concept", "class"]).size().eq(2).all()
    assert t["tcav_score"].between(0.0, 1.0).all()
    assert t["cav_accuracy"].between(0.0, 1.0).all()
    assert np.isfinite(t["magnitude"]).all()
    n_inputs = t.set_index("class")["n_inputs"].groupby(level=0).first()
    assert n_inputs.to_dict() == {k: int((digits.labels == k).sum()) for k in (0, 1)}
    # the score is a fraction of the class's inputs
    assert np.allclose(t["tcav_score"] * t["n_inputs"], np.round(t["tcav_score"] * t["n_inputs"]))
    # random sets: n_random positions each, none of them in a concept
    concept_pos = np.concatenate(list(_digit_concepts(digits).values()))
    drawn = t.attrs["random_positions"]
    assert sorted(drawn) == ["random_0", "random_1", "random_counterpart"]
    for pos in drawn.values():
        assert len(pos) == len(set(pos)) == 10
        assert not set(pos) & set(concept_pos.tolist())


def test_deterministic_under_seed_and_mode_restored(digits, digits_table):
    model, inp = _cnn()
    model.train()
    again = _run_digits(digits, model, inp)
    assert model.training  # the mode the caller had
    pd.testing.assert_frame_equal(again, digits_table)
    assert again.attrs == digits_table.attrs
    other = _run_digits(digits, model.eval(), inp, seed=1)
    assert other.attrs["random_positions"] != digits_table.attrs["random_positions"]


def test_batch_size_does_not_change_scores(digits, digits_table):
    # scores are fractions / means over a class's inputs, accumulated batch by batch
    model, inp = _cnn()
    small = _run_digits(digits, model.eval(), inp, batch_size=3)
    pd.testing.assert_series_equal(small["tcav_score"], digits_table["tcav_score"])
    np.testing.assert_allclose(small["magnitude"], digits_table["magnitude"], rtol=1e-5, atol=1e-7)
    pd.testing.assert_series_equal(small["cav_accuracy"], digits_table["cav_accuracy"])


def test_temporary_directory_removed(digits, monkeypatch):
    made: list[str] = []

    class Recording(tempfile.TemporaryDirectory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.name)

    monkeypatch.setattr(tempfile, "TemporaryDirectory", Recording)
    model, inp = _cnn()
    _run_digits(digits, model.eval(), inp, n_random_sets=1)
    assert len(made) == 1 and not Path(made[0]).exists()
    with pytest.raises(ValueError, match="classes"):  # an error inside the run cleans up too
        tcav.tcav_scores(model, inp, digits, _digit_concepts(digits), ["conv2"], [0, 42], n_random=10)
    assert all(not Path(p).exists() for p in made)


# -- a model whose TCAV scores are known by hand ---------------------------------------------------


def _corner_world(n: int = 60, seed: int = 0) -> tuple[ImageSet, InputSpec, np.ndarray]:
    """4x4 grey images, grey noise in [0.25, 0.75]; images 0-14 have a white 2x2 top-left corner,
    images 15-29 a black one. Returns the set, its input spec and the corner indicator d (16,)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.25, 0.75, size=(n, 1, 4, 4)).astype(np.float32)
    x[:15, :, :2, :2] = 1.0
    x[15:30, :, :2, :2] = 0.0
    labels = np.arange(n) % 2

    def loader(pos, size):
        return torch.from_numpy(x[pos])

    images = ImageSet("corners", "test", labels, ["a", "b"], np.arange(n), 1, loader)
    d = np.zeros((4, 4), dtype=np.float32)
    d[:2, :2] = 1.0
    return images, InputSpec((4, 4), 1), d.ravel()


def test_known_direction_gives_scores_one_and_zero():
    # logits h_0 = d . a, h_1 = -d . a of the flattened image a: the gradient w.r.t. the "flatten" layer is
    # +d for class 0 and -d for class 1 at every input. The white-corner concept differs from random images
    # only along +d, so its CAV v has d . v > 0: TCAV(class 0) = 1, TCAV(class 1) = 0; the black corner the
    # reverse. magnitude = mean of grad . v = +-d . v, opposite for the two classes, at most |d| = 2.
    images, inp, d = _corner_world()
    model = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(16, 2)))
    with torch.no_grad():
        model.fc.weight.copy_(torch.from_numpy(np.stack([d, -d])))
        model.fc.bias.zero_()
    concepts = {"white corner": np.arange(10), "black corner": np.arange(15, 25)}
    t = tcav.tcav_scores(model, inp, images, concepts, ["flatten"], [0, 1], n_random=10, n_random_sets=3, seed=0)
    by = t[~t["baseline"]].set_index(["concept", "class", "random_set"])
    for r in range(3):
        assert by.loc[("white corner", 0, r), "tcav_score"] == 1.0
        assert by.loc[("white corner", 1, r), "tcav_score"] == 0.0
        assert by.loc[("black corner", 0, r), "tcav_score"] == 0.0
        assert by.loc[("black corner", 1, r), "tcav_score"] == 1.0
        for name, sign in (("white corner", 1.0), ("black corner", -1.0)):
            m0, m1 = by.loc[(name, 0, r), "magnitude"], by.loc[(name, 1, r), "magnitude"]
            assert 0.0 < sign * m0 <= 2.0 + 1e-5
            assert m1 == pytest.approx(-m0, abs=1e-6)
            assert by.loc[(name, 0, r), "cav_accuracy"] >= 0.8  # regularized SGD on 13 examples: not always 1
    # gradients are the same at every input, so any score (the baseline's too) is exactly 0 or 1
    assert set(t["tcav_score"]) <= {0.0, 1.0}
    s = tcav.summarize_tcav(t).set_index(["concept", "class"])
    assert s.loc[("white corner", 0), "tcav_mean"] == 1.0 and s.loc[("white corner", 0), "tcav_std"] == 0.0


# -- summary and plot --------------------------------------------------------------------------------


def _fake_table() -> pd.DataFrame:
    rows = []
    scores = {"A": [0.9, 0.8, 0.95], tcav.BASELINE: [0.4, 0.6, 0.5]}
    for name, values in scores.items():
        for k in (3, 5):
            for r, v in enumerate(values):
                val = v if k == 3 else 1 - v
                rows.append((name, "L", k, str(k), r, val, 0.1 * val, 0.7 + 0.1 * r, 10, 10, 20, name == tcav.BASELINE))
    return pd.DataFrame(rows, columns=list(tcav.TABLE_COLUMNS))


def test_summary_equals_direct_computation():
    table = _fake_table()
    s = tcav.summarize_tcav(table)
    assert list(s.columns) == list(tcav.SUMMARY_COLUMNS)
    assert len(s) == 2 and set(s["concept"]) == {"A"}
    row = s.set_index("class").loc[3]
    a, b = np.array([0.9, 0.8, 0.95]), np.array([0.4, 0.6, 0.5])
    assert row["tcav_mean"] == pytest.approx(a.mean())
    assert row["tcav_std"] == pytest.approx(a.std(ddof=1))
    assert row["baseline_mean"] == pytest.approx(0.5)
    assert row["baseline_std"] == pytest.approx(b.std(ddof=1))
    assert row["p_value"] == pytest.approx(ttest_ind(a, b).pvalue)
    assert row["magnitude_mean"] == pytest.approx(0.1 * a.mean())
    assert row["cav_accuracy_mean"] == pytest.approx(0.8)
    assert row["n_random_sets"] == 3
    assert s.set_index("class").loc[5, "p_value"] == pytest.approx(ttest_ind(1 - a, 1 - b).pvalue)
    with pytest.raises(ValueError, match="missing"):
        tcav.summarize_tcav(table.drop(columns="baseline"))


def test_plot_writes_png_and_csv(tmp_path):
    s = tcav.summarize_tcav(_fake_table())
    png = tmp_path / "fig6" / "tcav.png"
    csv = views.plot_tcav(s, png)
    assert png.stat().st_size > 0 and csv == png.with_suffix(".csv")
    back = pd.read_csv(csv)
    np.testing.assert_allclose(back["tcav_mean"], s["tcav_mean"])
    np.testing.assert_allclose(back["baseline_mean"], s["baseline_mean"])


# -- bad arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"concepts": {}}, "empty"),
        ({"concepts": {"random": [0, 1, 2]}}, "reserved"),
        ({"concepts": {"x": [0]}}, "at least 2"),
        ({"concepts": {"x": [0, 0, 1]}}, "duplicates"),
        ({"concepts": {"x": [0, 999]}}, r"\[0, 60\)"),
        ({"concepts": {"x": [0.5, 1.5]}}, "integers"),
        ({"layers": ["nope"]}, "no layer"),
        ({"layers": []}, "layers is empty"),
        ({"classes": []}, "classes is empty"),
        ({"classes": [0, 0]}, "duplicates"),
        ({"classes": [7]}, "no images"),
        ({"n_random": 1}, "n_random"),
        ({"n_random": 58}, "outside the concepts"),
        ({"n_random_sets": 0}, "n_random_sets"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(change, match):
    images, inp, _ = _corner_world()
    model = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(16, 2)))
    args = {"concepts": {"x": [0, 1, 2]}, "layers": ["flatten"], "classes": [0]} | change
    kw = {k: v for k, v in change.items() if k not in ("concepts", "layers", "classes")}
    with pytest.raises(ValueError, match=match):
        tcav.tcav_scores(model, inp, images, args["concepts"], args["layers"], args["classes"], **kw)
