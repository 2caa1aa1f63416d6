"""NeurFlow circuit views on a small synthetic circuit: figure + CSV, HTML page (Chromium), labelling export."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import chromium_or_skip, dump_dom
from matplotlib.colors import to_hex
from PIL import Image
from pngs import check_png

from conceptscope import neurflow as nf
from conceptscope.imaging import display_image
from conceptscope.neurflow import views as nv
from conceptscope.neurflow.page import _CARD_THUMBS

N_PATCHES = 20
TOP = {  # node -> (neurons, top patches)
    "fc/g0": ([3], [0, 1, 2, 3, 4, 5, 6, 7]),
    "layer4/g0": ([5, 17, 300], [8, 9, 10, 11, 12, 13, 14]),
    "layer4/g1": ([1, 2, 40, 41, 77, 90], [2, 15, 16]),
    "layer4/g2": ([8], [17, 18, 19, 0, 1]),
    "layer3/g0": ([4, 9], [3, 4, 5, 6, 7, 8]),
    "layer3/g1": ([11], [10, 11]),
    "layer3/g2": ([12, 13, 14], [12, 13, 14, 15, 16, 17, 18, 19]),
    "layer3/g3": ([20], [19]),
}
EDGES = [
    ("fc/g0", "layer4/g0", 0.42),
    ("fc/g0", "layer4/g1", -0.17),
    ("fc/g0", "layer4/g2", 0.08),
    ("layer4/g0", "layer3/g0", 0.3),
    ("layer4/g0", "layer3/g2", -0.25),
    ("layer4/g1", "layer3/g1", 0.12),
    ("layer4/g1", "layer3/g2", 0.06),
    ("layer4/g1", "layer3/g3", -0.33),
    ("layer4/g2", "layer3/g0", 0.0),  # zero weight: drawn in the page, not in the figure nor the export
    ("layer4/g2", "layer3/g3", 0.021),
]


@pytest.fixture(scope="module")
def circuit() -> dict:
    nodes = []
    for nid, (neurons, top) in TOP.items():
        layer, g = nid.split("/g")
        nodes.append(
            {
                "id": nid,
                "layer": layer,
                "group": int(g),
                "neurons": neurons,
                "top_patches": top,
                "n_patches": 10 * len(top),
            }
        )
    patches = {
        str(p): {
            "image": p // 2,
            "sample_id": 1000 + p // 2,
            "scale": [1.0, 0.5][p % 2],
            "box": [0, 8 * (p % 2), 16, 16],
        }
        for p in range(N_PATCHES)
    }
    return {
        "model": "resnet18_cifar",
        "class_index": 3,
        "class_name": "cat",
        "settings": {"tau": 4, "k": 20},
        "layers": ["fc", "layer4", "layer3"],
        "nodes": nodes,
        "edges": [{"source": s, "target": t, "weight": w} for s, t, w in EDGES],
        "patches": patches,
    }


@pytest.fixture(scope="module")
def patch_images() -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {p: rng.random((16, 16)) if p % 2 == 0 else rng.random((16, 16, 3)) for p in range(N_PATCHES)}
    out[19] = rng.normal(0.0, 2.0, size=(16, 16, 3))  # still model-normalized: rescaled for display
    return out


def _total_weight(nid: str) -> float:
    return sum(abs(w) for s, t, w in EDGES if nid in (s, t))


def _kept(max_groups: int) -> set[str]:
    out = set()
    for layer in ("fc", "layer4", "layer3"):
        ids = [nid for nid in TOP if nid.startswith(layer + "/")]
        out |= set(sorted(ids, key=_total_weight, reverse=True)[:max_groups])
    return out


# -- validation ----------------------------------------------------------------------------------------


def _unknown_target(c, _):
    c["edges"].append({"source": "fc/g0", "target": "layer4/g9", "weight": 0.1})


def _unknown_layer(c, _):
    c["nodes"][2]["layer"] = "layer2"


def _no_pixels(_, imgs):
    del imgs[18]


def _no_patch_entry(c, _):
    del c["patches"]["16"]


def _duplicate_id(c, _):
    c["nodes"][3]["id"] = "layer4/g1"


def _skips_layer(c, _):
    c["edges"].append({"source": "fc/g0", "target": "layer3/g1", "weight": 0.1})


def _nan_weight(c, _):
    c["edges"][4]["weight"] = float("nan")


def _bad_box(c, _):
    c["patches"]["7"]["box"] = [0, 0, 16]


@pytest.mark.parametrize(
    ("malform", "named"),
    [
        (_unknown_target, "layer4/g9"),
        (_unknown_layer, "layer4/g1"),
        (_no_pixels, "patch 18"),
        (_no_patch_entry, "patch 16"),
        (_duplicate_id, "layer4/g1"),
        (_skips_layer, "layer3/g1"),
        (_nan_weight, "layer3/g2"),
        (_bad_box, "patch 7"),
    ],
)
def test_validate_circuit_names_the_offender(tmp_path, circuit, patch_images, malform, named):
    nf.validate_circuit(circuit, patch_images=patch_images)  # the fixture itself is fine
    c, imgs = copy.deepcopy(circuit), dict(patch_images)
    malform(c, imgs)
    with pytest.raises(ValueError, match=re.escape(named)):
        nf.validate_circuit(c, patch_images=imgs)
    with pytest.raises(ValueError, match=re.escape(named)):  # every writer checks first
        nf.write_labelling_export(c, imgs, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_display_rescales_out_of_range_and_reads_channel_first():
    x = np.linspace(-3.0, 5.0, 48).reshape(4, 4, 3)
    img, cmap = display_image(x, rescale=True)
    assert cmap is None and img.min() == 0.0 and img.max() == 1.0
    np.testing.assert_allclose(img, (x + 3.0) / 8.0, atol=1e-6)
    inside = np.full((5, 6), 0.25)
    np.testing.assert_array_equal(display_image(inside, rescale=True)[0], inside)  # in [0, 1]: untouched
    assert display_image(inside, rescale=True)[1] == "gray"
    assert display_image(np.zeros((3, 7, 5)), rescale=True)[0].shape == (7, 5, 3)
    with pytest.raises(ValueError, match="shape"):
        display_image(np.zeros((2, 3, 4, 5)), rescale=True)


# -- figure ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("per_group", "max_groups", "min_abs"), [(6, 8, 0.0), (2, 2, 0.1)])
def test_plot_circuit_png_and_thumbnail_table(tmp_path, circuit, patch_images, per_group, max_groups, min_abs):
    path = tmp_path / "sub" / "circuit.png"
    table = nf.plot_circuit(
        circuit, patch_images, path, per_group=per_group, max_groups_per_layer=max_groups, min_abs_weight=min_abs
    )
    kept = _kept(max_groups)
    assert len(kept) == (8 if max_groups == 8 else 5)
    csv = pd.read_csv(path.with_suffix(".csv"))
    assert len(csv) == len(table)
    pd.testing.assert_frame_equal(
        csv[["layer", "group", "rank", "patch", "image"]],
        table[["layer", "group", "rank", "patch", "image"]],
        check_dtype=False,
    )
    assert set(csv["node"]) == kept
    for nid, rows in csv.groupby("node", sort=False):
        top = TOP[nid][1][:per_group]
        assert rows["patch"].tolist() == top and rows["rank"].tolist() == list(range(len(top)))
        assert rows["layer"].iloc[0] == nid.split("/")[0] and rows["group"].iloc[0] == int(nid.split("/g")[1])
        assert rows["image"].tolist() == [p // 2 for p in top]
        assert rows["scale"].tolist() == [[1.0, 0.5][p % 2] for p in top]
    assert csv["layer"].drop_duplicates().tolist() == ["fc", "layer4", "layer3"]  # logit band first

    fig, _ = nv._figure(
        circuit, patch_images, per_group=per_group, max_groups_per_layer=max_groups, min_abs_weight=min_abs
    )
    thumbs = [ax for ax in fig.axes if ax.get_gid() == "thumb"]
    assert len(thumbs) == len(csv)
    edges = [a for a in fig.artists if a.get_gid() == "edge"]
    drawn = [(s, t, w) for s, t, w in EDGES if s in kept and t in kept and w != 0 and abs(w) >= min_abs]
    assert len(edges) == len(drawn) > 0
    assert sorted(to_hex(e.get_color()) for e in edges) == sorted(
        nv._POSITIVE if w > 0 else nv._NEGATIVE for _, _, w in drawn
    )
    # one width scale per level (pair of layers): |w| / the level's largest drawn |w|, floored at 0.3 pt;
    # edges are drawn lightest first
    level_max: dict[str, float] = {}
    for s, _, w in drawn:
        level_max[s.split("/")[0]] = max(level_max.get(s.split("/")[0], 0.0), abs(w))
    expected = [
        max(nv._LW_MAX * abs(w) / level_max[s.split("/")[0]], 0.3) for s, _, w in sorted(drawn, key=lambda d: abs(d[2]))
    ]
    assert [e.get_linewidth() for e in edges] == pytest.approx(expected)
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("layer4 · group 0\n3 neurons: 5, 17, 300") for t in texts)
    if max_groups == 2:
        assert any("the 2 of largest total |edge weight| shown (cap 2)" in t for t in texts)
        assert any("at most 2 groups per layer: 3 groups not shown" in t for t in texts)
    for ax in thumbs:
        arr = ax.images[0].get_array()
        assert arr.min() >= 0.0 and arr.max() <= 1.0

    check_png(path, fig, min_bytes=5000, width=(600, 4000), height=(400, 3000))
    # every text (legend notes, layer heads, group captions) lies inside the figure: nothing is clipped
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    box = fig.bbox
    for t in fig.texts:
        ext = t.get_window_extent(renderer)
        assert box.x0 - 1 <= ext.x0 and ext.x1 <= box.x1 + 1 and box.y0 - 1 <= ext.y0, t.get_text()[:60]


def test_plot_circuit_needs_pixels_of_drawn_patches_only(tmp_path, circuit, patch_images):
    imgs = {p: v for p, v in patch_images.items() if p != 16}  # 16: 3rd of layer4/g1, 5th of layer3/g2
    nf.plot_circuit(circuit, imgs, tmp_path / "a.png", per_group=2)
    with pytest.raises(ValueError, match="patch 16"):
        nf.plot_circuit(circuit, imgs, tmp_path / "b.png", per_group=3)


# -- HTML page ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory, circuit, patch_images) -> tuple[Path, str, dict, dict]:
    path = tmp_path_factory.mktemp("html") / "circuit.html"
    nf.write_circuit_html(circuit, patch_images, path, per_group=5, thumb_px=48)
    text = path.read_text(encoding="utf-8")
    blobs = {
        k: json.loads(re.search(rf'<script type="application/json" id="{k}">(.*?)</script>', text, re.S).group(1))
        for k in ("circuit-data", "view-data")
    }
    return path, text, blobs["circuit-data"], blobs["view-data"]


def test_html_is_self_contained_with_each_patch_once(page, circuit):
    _, text, data, view = page
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"@import|url\(", text)
    assert not re.search(r'src="[^"]*\.(png|jpe?g|gif|svg|js|css)"', text)
    assert "<img" not in text.split("<script", 1)[0]  # every image comes from the inline data
    assert data == circuit
    needed = {p for _, top in TOP.values() for p in top[:5]}
    assert set(view["images"]) == {str(p) for p in needed}
    for uri in view["images"].values():
        assert uri.startswith("data:image/png;base64,")
        assert text.count(uri) == 1


def _body(dom: str) -> str:
    return re.search(r"<body([^>]*)>", dom).group(1)


def test_html_renders_in_headless_chromium(tmp_path, page, circuit):
    binary = chromium_or_skip()
    path, _, _, view = page
    dom = dump_dom(binary, path.resolve().as_uri(), tmp_path / "profile")
    body = _body(dom)
    assert 'data-ready="1"' in body, body
    n_img = len(re.findall(r"<img\b", dom))
    assert int(re.search(r'data-loaded-images="(\d+)"', body).group(1)) == n_img
    assert n_img == sum(min(len(top), 5, _CARD_THUMBS) for _, top in TOP.values())
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', dom))
    cards = re.findall(r'<div class="group(?: [a-z ]+)?" data-node="([^"]+)"', dom)
    assert sorted(cards) == sorted(TOP)
    assert cards[0] == "fc/g0" and cards[-1] == "layer3/g3"  # logit row first
    assert len(re.findall(r'<path class="edge\b', dom)) == len(circuit["edges"])
    assert "active" not in " ".join(re.findall(r'<path class="([^"]*)"', dom))


def test_html_deep_link_selects_node(tmp_path, page):
    binary = chromium_or_skip()
    path, _, _, _ = page
    dom = dump_dom(binary, f"{path.resolve().as_uri()}#node=layer4/g1", tmp_path / "profile")
    assert 'data-ready="1"' in _body(dom)
    assert re.findall(r'<div class="group selected" data-node="([^"]+)"', dom) == ["layer4/g1"]
    detail = re.search(r'<aside id="detail">(.*?)</aside>', dom, re.S).group(1)
    assert "layer4/g1" in detail and "1, 2, 40, 41, 77, 90" in detail
    items = re.findall(
        r'<li class="edge-item" data-other="([^"]+)">.*?<span class="w (pos|neg)">([^<]+)</span>', detail
    )
    mine = [(s, t, w) for s, t, w in EDGES if "layer4/g1" in (s, t)]
    incoming = sorted([(s, w) for s, t, w in mine if t == "layer4/g1"], key=lambda x: -abs(x[1]))
    outgoing = sorted([(t, w) for s, t, w in mine if s == "layer4/g1"], key=lambda x: -abs(x[1]))
    assert [(o, float(w)) for o, _, w in items] == [(o, pytest.approx(w)) for o, w in incoming + outgoing]
    assert [(o, w) for o, _, w in items][0] == ("fc/g0", "-0.1700")
    assert [c for _, c, _ in items] == ["neg" if w < 0 else "pos" for _, w in incoming + outgoing]
    patches = re.findall(r'<img class="detail-patch" data-patch="(\d+)"', detail)
    assert [int(p) for p in patches] == TOP["layer4/g1"][1]
    assert "box 0,8,16,16" in detail  # patch 15
    active = re.findall(r'<path class="edge active"[^>]*data-source="([^"]+)" data-target="([^"]+)"', dom)
    assert sorted(active) == sorted((s, t) for s, t, _ in mine)


# -- labelling export -----------------------------------------------------------------------------------


def test_labelling_export(tmp_path, circuit, patch_images):
    root = tmp_path / "label"
    table = nf.write_labelling_export(circuit, patch_images, root, per_group=4)
    index = pd.read_csv(root / "index.csv")
    assert len(index) == len(table) == len(TOP) + sum(w != 0 for _, _, w in EDGES)
    assert index["folder"].tolist() == table["folder"].tolist()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(index["folder"])

    def check_patches(folder: Path, nid: str) -> list[str]:
        top = TOP[nid][1][:4]
        assert sorted(f.name for f in folder.glob("*.png")) == sorted(f"patch_{p}.png" for p in top)
        for p in top:
            with Image.open(folder / f"patch_{p}.png") as im:
                assert min(im.size) >= 96 and im.size[0] % 16 == 0
        return [f"patch_{p}.png" for p in top]

    for nid in TOP:
        layer, g = nid.split("/g")
        row = index[index["folder"] == f"{layer}_g{g}"].iloc[0]
        assert row["kind"] == "group" and row["nodes"] == nid
        files = check_patches(root / row["folder"], nid)
        assert row["files"].split(";") == [*files, "prompt.txt"]
        prompt = (root / row["folder"] / "prompt.txt").read_text(encoding="utf-8")
        assert prompt.index("## Role") < prompt.index("## Instructions") < prompt.index("## Answer form")
        assert "image captioner" in prompt and "outliers" in prompt and "one or two sentences" in prompt
        assert "Common features:" in prompt and "Caption:" in prompt and nid in prompt
        assert "{" not in prompt

    for s, t, w in EDGES:
        name = f"circuit_{s.replace('/', '_')}_to_{t.replace('/', '_')}"
        if w == 0:
            assert not (root / name).exists()
            continue
        row = index[index["folder"] == name].iloc[0]
        assert row["kind"] == "circuit" and row["nodes"] == f"{s};{t}" and row["weight"] == pytest.approx(w)
        up = check_patches(root / name / "upper", s)
        low = check_patches(root / name / "lower", t)
        assert row["files"].split(";") == [*(f"upper/{f}" for f in up), *(f"lower/{f}" for f in low), "prompt.txt"]
        prompt = (root / name / "prompt.txt").read_text(encoding="utf-8")
        assert prompt.index("## Role") < prompt.index("## Instructions") < prompt.index("## Answer form")
        assert s in prompt and t in prompt and '"no match"' in prompt
        assert "Lower-level features" in prompt and "Higher-level features" in prompt and "{" not in prompt
