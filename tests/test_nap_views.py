"""NAP galleries and the HTML browser on synthetic NAPs over 120 digits (positions line up with the image set)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from browser import chromium_or_skip, dump_dom
from matplotlib.colors import to_hex
from PIL import Image
from pngs import check_png
from sklearn.datasets import make_blobs

from conceptscope import data, naps
from conceptscope.naps import views as nv

N = 120


@pytest.fixture(scope="module")
def digits() -> data.ImageSet:
    return data.load_split({"kind": "digits", "subset": {"test": {"first_n": N}}}, "test", key="datasets.digits")


def _result(X: np.ndarray, images: data.ImageSet, layer: str, method: str = "max") -> naps.NapResult:
    predictions = images.labels.copy()
    predictions[::7] = (predictions[::7] + 1) % 10  # some misclassified inputs
    return naps.extract_naps(
        X,
        kind="dense",
        method=method,
        unit_shape=(X.shape[1],),
        labels=images.labels,
        predictions=predictions,
        sample_ids=images.sample_ids,
        device="cpu",
        meta={"model": "toy", "layer": layer, "split": "test"},
    )


@pytest.fixture(scope="module")
def results(digits) -> dict[str, naps.NapResult]:
    """``fc1``: 6 clean blobs; ``fc2``: 4 blobs in 80 features, positions 0..9 far scattered outliers (noise)."""
    x1, _ = make_blobs(n_samples=N, centers=6, n_features=16, cluster_std=0.6, random_state=0)
    x2, _ = make_blobs(n_samples=N, centers=4, n_features=80, cluster_std=0.8, random_state=1)
    x2[:10] = np.random.default_rng(0).uniform(-40, 40, size=(10, 80))
    out = {
        "fc1": _result(x1, digits, "fc1"),
        "fc2": _result(x2, digits, "fc2"),
        "fc1_mean": _result(x1 + 0.1, digits, "fc1", method="mean"),
    }
    assert out["fc1"].n_naps >= 3 and out["fc2"].n_naps >= 2
    return out


@pytest.fixture(scope="module")
def noise_position(results) -> int:
    """A position that is noise in fc2 and in a NAP in fc1."""
    pos = np.flatnonzero((results["fc2"].nap < 0) & (results["fc1"].nap >= 0))
    assert pos.size, "synthetic data should give noise in fc2"
    return int(pos[0])


def _no_naps(r: naps.NapResult) -> naps.NapResult:
    return replace(
        r,
        nap=np.full_like(r.nap, -1),
        probability=np.zeros_like(r.probability),
        persistence=np.zeros(0),
        size=np.zeros(0, dtype=np.int64),
        stats=np.zeros((0, *r.stats.shape[1:]), dtype=np.float32),
    )


def _thumbs(fig, gid: str = "thumb") -> list:
    return [ax for ax in fig.axes if ax.get_gid() == gid]


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))]


def _expected_thumbs(r: naps.NapResult, top_naps: int, per_nap: int) -> int:
    return sum(min(per_nap, int(r.size[k])) for k in range(min(top_naps, r.n_naps)))


def _check_png(path, fig) -> None:
    check_png(path, fig, min_bytes=1000, width=(300, 6000), height=(100, 8000))


# -- figures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("top_naps", "per_nap"), [(8, 10), (2, 25)])
def test_gallery_rows_thumbnails_and_frames(tmp_path, digits, results, top_naps, per_nap):
    r = results["fc1"]
    rows = nv._gallery_rows(r, digits, top_naps=top_naps, per_nap=per_nap)
    fig = nv._render(rows)
    thumbs = _thumbs(fig)
    assert len(thumbs) == _expected_thumbs(r, top_naps, per_nap)
    shown = np.concatenate([r.members(k)[:per_nap] for k in range(min(top_naps, r.n_naps))])
    n_wrong = int((r.labels[shown] != r.predictions[shown]).sum())
    assert n_wrong > 0
    red = [
        ax for ax in thumbs if ax.spines["top"].get_visible() and to_hex(ax.spines["top"].get_edgecolor()) == nv._WRONG
    ]
    assert len(red) == n_wrong
    captions = [ax.get_xlabel() for ax in thumbs]
    assert captions[0] == f"{r.labels[shown[0]]}/{r.predictions[shown[0]]}"
    texts = _texts(fig)
    for k in range(min(top_naps, r.n_naps)):
        assert f"NAP {k} · {r.size[k]} members · persistence {r.persistence[k]:.3f}" in texts
    grey = [ax.images[0] for ax in thumbs]
    assert all(im.get_cmap().name == "gray" for im in grey)

    path = tmp_path / "gallery.png"
    nv.plot_nap_gallery(r, digits, path, top_naps=top_naps, per_nap=per_nap)
    _check_png(path, fig)
    table = pd.read_csv(path.with_suffix(".csv"))
    assert len(table) == len(thumbs)
    np.testing.assert_array_equal(table["position"], shown)


def test_gallery_without_naps(tmp_path, digits, results):
    r = _no_naps(results["fc1"])
    fig = nv._render(nv._gallery_rows(r, digits))
    assert not _thumbs(fig)
    assert any("no NAPs" in t for t in _texts(fig))
    nv.plot_nap_gallery(r, digits, tmp_path / "empty.png", title="nothing")
    _check_png(tmp_path / "empty.png", fig)


def test_aggregation_gallery_blocks_in_order(tmp_path, digits, results):
    by_method = {"mean": results["fc1_mean"], "max": results["fc1"], "none": _no_naps(results["fc1"])}
    fig = nv._render(nv._aggregation_rows(by_method, digits, top_naps=3, per_nap=8))
    assert len(_thumbs(fig)) == sum(_expected_thumbs(r, 3, 8) for r in by_method.values())
    headers = [t for t in _texts(fig) if re.match(r"^(mean|max|none): \d+ NAPs", t)]
    assert [h.split(":")[0] for h in headers] == ["mean", "max", "none"]
    path = tmp_path / "fig7.png"
    nv.plot_aggregation_gallery(by_method, digits, path, top_naps=3, per_nap=8)
    _check_png(path, fig)


def test_follow_image_shows_noise(tmp_path, digits, results, noise_position):
    by_layer = {"fc1": results["fc1"], "fc2": results["fc2"]}
    fig = nv._render(nv._follow_rows(by_layer, digits, noise_position, per_nap=8))
    texts = _texts(fig)
    assert any(t.startswith("noise in fc2") for t in texts)
    assert not any(t.startswith("noise in fc1") for t in texts)
    k = int(results["fc1"].nap[noise_position])
    assert any(t.startswith(f"fc1: NAP {k} · ") for t in texts)
    assert len(_thumbs(fig, "query")) == 1
    assert len(_thumbs(fig)) == min(8, int(results["fc1"].size[k]))
    path = tmp_path / "fig9.png"
    nv.plot_follow_image(by_layer, digits, noise_position, path, per_nap=8)
    _check_png(path, fig)
    with pytest.raises(IndexError):
        nv.plot_follow_image(by_layer, digits, N, tmp_path / "x.png")


def test_models_side_by_side(tmp_path, digits, results, noise_position):
    a, b = results["fc1"], results["fc2"]
    both = int(np.flatnonzero((a.nap >= 0) & (b.nap >= 0))[0])
    positions = [noise_position, both]
    fig = nv._render(nv._side_by_side_rows(a, b, digits, positions, names=("small", "big"), per_nap=6))
    expected = sum(min(6, int(r.size[r.nap[p]])) for r in (a, b) for p in positions if r.nap[p] >= 0)
    assert len(_thumbs(fig)) == expected
    assert len(_thumbs(fig, "query")) == 2
    texts = _texts(fig)
    assert any(t.startswith("big (") and t.endswith("noise") for t in texts)
    assert any(t.startswith("small (") and f"NAP {a.nap[both]}" in t for t in texts)
    path = tmp_path / "fig14.png"
    nv.plot_models_side_by_side(a, b, digits, positions, path, names=("small", "big"), per_nap=6)
    _check_png(path, fig)
    with Image.open(path) as im:
        assert im.size[0] >= (1 + 2 * 6) * nv._CELL_W * nv._DPI  # image + two NAP halves side by side


def test_misaligned_result_is_refused(tmp_path, digits, results):
    with pytest.raises(ValueError, match="same split"):
        nv.plot_nap_gallery(results["fc1"], digits.subset(np.arange(100)), tmp_path / "x.png")
    shuffled = replace(results["fc1"], sample_ids=results["fc1"].sample_ids[::-1])
    with pytest.raises(ValueError, match="sample ids"):
        nv.plot_nap_gallery(shuffled, digits, tmp_path / "x.png")


# -- browser ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory, digits, results):
    res = {("fc1", "max"): results["fc1"], ("fc2", "max"): results["fc2"], ("fc1", "mean"): results["fc1_mean"]}
    path = tmp_path_factory.mktemp("browser") / "naps.html"
    naps.write_browser(path, "toy-model", res, digits, per_nap=12, thumb_px=40)
    text = path.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="nap-data">(.*?)</script>', text, re.S).group(1)
    return path, text, json.loads(blob), res


def test_browser_is_self_contained(browser):
    _, text, _, _ = browser
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"@import|url\(", text)


def test_browser_json_lists_every_nap(browser):
    _, text, payload, res = browser
    assert payload["layers"] == ["fc1", "fc2"] and payload["methods"] == ["max", "mean"]
    assert [(e["layer"], e["method"]) for e in payload["results"]] == list(res)
    shown = set()
    for entry, r in zip(payload["results"], res.values(), strict=True):
        assert entry["nNaps"] == r.n_naps == len(entry["naps"])
        for k, nap in enumerate(entry["naps"]):
            assert nap["rank"] == k and nap["size"] == int(r.size[k])
            assert nap["persistence"] == pytest.approx(float(r.persistence[k]))
            assert nap["members"] == [int(p) for p in r.members(k)[:12]]
            assert sum(c for _, _, c in nap["mix"]) == nap["size"]
            assert len(nap["stats"]["features"]) == min(64, r.stats.shape[2])
            shown.update(nap["members"])
        assert entry["napOf"] == [int(r.nap[p]) for p in payload["positions"]]
    assert "64 of 80 features" in payload["results"][1]["naps"][0]["stats"]["note"]
    assert set(payload["positions"]) == shown
    assert set(payload["images"]) == {str(p) for p in shown}
    uris = list(payload["images"].values())
    assert all(u.startswith("data:image/png;base64,") for u in uris)
    for uri in set(uris):  # each shown image stored once (identical images would share a data URI)
        assert text.count(uri) == uris.count(uri)


def test_browser_renders_in_headless_chromium(tmp_path, browser, noise_position):
    binary = chromium_or_skip()
    path, _, payload, res = browser
    dom = dump_dom(binary, path.resolve().as_uri(), tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-ready="1"' in body, body
    loaded = int(re.search(r'data-loaded-images="(\d+)"', body).group(1))
    n_img = len(re.findall(r"<img\b", dom))
    assert loaded > 0 and loaded == n_img
    r = res[("fc1", "max")]
    assert len(re.findall(r'class="nap(?: selected)?"', dom)) == r.n_naps
    members = re.findall(r'<img class="member" data-pos="(\d+)"', dom)
    assert [int(p) for p in members] == [int(p) for p in r.members(0)[:12]]
    assert "NAP 0 · " in dom

    # image view: the followed image is noise in fc2, in a NAP of fc1 with a link there
    dom = dump_dom(binary, f"{path.resolve().as_uri()}#method=max&image={noise_position}", tmp_path / "profile2")
    view = re.search(r'<aside id="imageview">(.*?)</aside>', dom, re.S).group(1)
    assert "noise in fc2" in view
    k = int(r.nap[noise_position])
    assert re.search(rf'<a class="jump" href="#layer=fc1&amp;method=max&amp;nap={k}&amp;image={noise_position}">', view)


@pytest.mark.parametrize(
    "names, label, prediction, lines",
    [
        (["square_green", "circle_red"], 0, 1, ["square_green/", "circle_red"]),
        (["cat", "dog"], 0, 1, ["cat/dog"]),
        (["n01440764_tench_tinca_tinca", "b"], 0, 0, ["n01440764_tench_tinca_tinca/", "n01440764_tench_tinca_tinca"]),
    ],
)
def test_gallery_captions_keep_whole_names_and_fit_the_thumbnail(names, label, prediction, lines):
    from conceptscope.naps import views

    caption = views._caption(names, label, prediction)
    assert caption.splitlines() == lines and "…" not in caption
    size = views._caption_size(caption)
    # every line fits a thumbnail column: characters x font size within what fits at the default size
    assert all(len(line) * size <= views._CAPTION_CHARS * views._CAPTION_PT + 1e-9 for line in lines) or (
        size == views._CAPTION_MIN_PT
    )


def test_browser_captions_are_never_cut(browser):
    from conceptscope.pages import read_static

    css = read_static("conceptscope.naps", "browser.css")
    rule = next(line for line in css.splitlines() if line.startswith("figure.thumb figcaption"))
    assert "ellipsis" not in rule and "nowrap" not in rule and "hidden" not in rule
    assert '"/<wbr>"' in read_static("conceptscope.naps", "browser.js")  # a line break may fall after the slash
