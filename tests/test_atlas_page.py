"""The atlas page (conceptscope.atlas.page): thumbnail strips, data validation, rendering in headless Chromium."""

from __future__ import annotations

import base64
import copy
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from browser import chromium_or_skip, dump_dom
from PIL import Image

from conceptscope.atlas.page import thumbnail_strip, write_atlas_page

EVIL = "<script>alert(1)</script>"
PWN = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"


def _decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


# --- thumbnail_strip ---------------------------------------------------------------------------------------------


def test_strip_grey_size_gap_and_a_white_square_survive():
    images = np.zeros((3, 1, 8, 8), dtype=np.float32)
    images[1, 0, 2:4, 5:7] = 1.0  # a white 2 x 2 square in image 1
    im = _decode(thumbnail_strip(images, height=32))  # x4, nearest
    assert im.mode == "L" and im.size == (3 * 32 + 2, 32)
    a = np.asarray(im)
    expect = np.zeros((32, 3 * 32 + 2), dtype=np.uint8)
    expect[:, [32, 65]] = 255  # the 1-px white gaps
    expect[8:16, 33 + 20 : 33 + 28] = 255  # the square, scaled x4, in the second tile
    assert np.array_equal(a, expect)


def test_strip_rgb_keeps_colour_and_aspect():
    images = np.zeros((2, 3, 4, 6), dtype=np.float64)
    images[0, 0, 1, 2] = 1.0  # one red pixel in image 0
    images[1, 2] = 0.5  # image 1 all mid blue
    im = _decode(thumbnail_strip(images, height=8))  # H 4 -> 8: x2, width 6 -> 12
    assert im.mode == "RGB" and im.size == (2 * 12 + 1, 8)
    a = np.asarray(im)
    assert (a[2:4, 4:6] == [255, 0, 0]).all() and (a[:2, :][:, :12] == 0).all()
    assert (a[:, 12] == 255).all()
    assert (a[:, 13:] == [0, 0, 128]).all()


def test_strip_takes_max_images_and_shrinks():
    images = np.random.default_rng(0).random((10, 1, 64, 32))
    im = _decode(thumbnail_strip(images, max_images=8, height=16))  # 64 -> 16: width 8
    assert im.size == (8 * 8 + 7, 16)


def test_strip_accepts_a_tensor():
    torch = pytest.importorskip("torch")
    images = torch.zeros(2, 1, 4, 4, requires_grad=True)
    assert _decode(thumbnail_strip(images, height=4)).size == (9, 4)


def test_strip_empty_and_bad_input():
    assert thumbnail_strip(np.zeros((0, 3, 8, 8))) == ""
    assert thumbnail_strip(np.zeros((0,))) == ""
    with pytest.raises(ValueError, match="C = 1 or 3"):
        thumbnail_strip(np.zeros((2, 2, 8, 8)))
    with pytest.raises(ValueError, match="shape"):
        thumbnail_strip(np.zeros((8, 8)))
    with pytest.raises(TypeError, match="uint8"):
        thumbnail_strip(np.zeros((1, 1, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="height"):
        thumbnail_strip(np.zeros((1, 1, 8, 8)), height=0)


# --- the data ----------------------------------------------------------------------------------------------------


def _concept(name, thumb, *, faith=True, counterparts=(), recovery=None):
    return {
        "name": name,
        "size": 40,
        "thumbnail": thumb,
        "faithfulness": {"observed": 1.25, "random_mean": 0.3, "p_value": 0.0005, "set_mean": 0.9, "set_p_value": None}
        if faith
        else None,
        "counterparts": [{"method": m, "concept": c, "jaccard": j, "n_universe": 12} for m, c, j in counterparts],
        "recovery": recovery,
    }


def _method(method, variant, concepts, n_concepts, link=True):
    return {
        "method": method,
        "variant": variant,
        "n_concepts": n_concepts,
        "shown": len(concepts),
        "link": {"label": f"{method} page", "href": f"{method}/page.html"} if link else None,
        "concepts": concepts,
    }


def _alignment(a, b, p):
    return {
        "method_a": a,
        "method_b": b,
        "n_a": 12,
        "n_b": 20,
        "n_a_with_counterpart": 3,
        "n_b_with_counterpart": 2,
        "n_matched_above": 2,
        "mean_matched_jaccard": 0.21,
        "null_mean": 0.05,
        "null_q95": 0.08,
        "p_value": p,
        "threshold": 0.3,
        "n_universe": 450,
        "figure": f"figures/atlas/alignment_m/{a}_{b}.png" if p is not None else None,
    }


def _data():
    rng = np.random.default_rng(1)
    thumb = thumbnail_strip(rng.random((3, 3, 8, 8)))
    layer3 = {
        "layer": "layer3",
        "methods": [
            _method(
                "naps",
                "max",
                [
                    _concept(
                        EVIL,
                        thumb,
                        counterparts=[("nmf", "factor3", 0.41)],
                        recovery=[{"planted": "x", "f1": 0.8, "p_value": 0.001}],
                    ),
                    _concept("nap1", thumb, faith=False),
                ],
                12,
            ),
            _method("nmf", "", [_concept("factor3", thumb, counterparts=[("naps", EVIL, 0.41)])], 20, link=False),
            _method("neurflow", "class0", [_concept("group0", "", counterparts=[("nmf", "factor3", None)])], 4),
        ],
        "alignment": [
            _alignment("naps", "nmf", 0.005),
            _alignment("naps", "neurflow", None),
            _alignment("nmf", "neurflow", 0.5),
        ],
        "recovery": [
            {
                "method": "naps",
                "variant": "max",
                "planted": "x",
                "best_concept": EVIL,
                "precision": 0.9,
                "recall": 0.7,
                "f1": 0.79,
                "null_mean": 0.1,
                "null_q95": 0.15,
                "p_value": 0.001,
                "planted_in_universe": 24,
                "class_f1": 0.71,
            }
        ],
    }
    layer4 = {
        "layer": "layer4",
        "methods": [_method("nmf", "", [_concept("factor0", thumb)], 20)],
        "alignment": [],
        "recovery": [],
    }
    blocks = {
        "layer": "blocks.3",
        "methods": [_method("nas", "", [_concept("unit7", "", faith=False)], 64)],
        "alignment": [],
        "recovery": [],
    }
    claim = {"figure": "Fig. 6", "paper_value": "> 0.5", "measured_value": "0.61", "detail": "rule & evidence"}
    return {
        "settings": {"nap_method": "max", "threshold": 0.3, "nas_top": "top set H", "faithfulness": True, "seed": None},
        "claims_href": "reproduction/claims.html",
        "claims": [
            claim | {"claim_id": "NAP-1", "verdict": "PASS"},
            claim | {"claim_id": "NAP-2", "verdict": "PASS"},
            claim | {"claim_id": "NMF-1", "verdict": "FAIL", "detail": PWN},
            claim | {"claim_id": "NF-1", "verdict": "NOT RUN", "measured_value": None},
        ],
        "figures": [{"label": 'Faithfulness "all" <methods>', "href": "figures/atlas/faithfulness.png"}],
        "models": [
            {
                "model": "resnet18_cifar",
                "dataset": "digits",
                "split": "test",
                "methods": ["naps", "nmf", "neurflow"],
                "links": [
                    {"label": PWN, "href": "naps/resnet18_cifar/browser.html"},
                    {"label": "bad", "href": "javascript:alert(1)"},
                ],
                "layers": [layer3, layer4],
            },
            {
                "model": "vit_tiny",
                "dataset": "digits",
                "split": "test",
                "methods": ["nas"],
                "links": [],
                "layers": [blocks],
            },
        ],
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("settings"), "data: no key 'settings'"),
        (lambda d: d["models"][1]["layers"][0].pop("methods"), "models[1].layers[0]: no key 'methods'"),
        (
            lambda d: d["models"][0]["layers"][0]["methods"][0]["concepts"][1].pop("counterparts"),
            "models[0].layers[0].methods[0].concepts[1]: no key 'counterparts'",
        ),
        (
            lambda d: d["models"][0]["layers"][0]["methods"][0]["concepts"][0]["faithfulness"].pop("p_value"),
            "models[0].layers[0].methods[0].concepts[0].faithfulness: no key 'p_value'",
        ),
        (
            lambda d: d["models"][0]["layers"][0]["alignment"][2].pop("null_q95"),
            "models[0].layers[0].alignment[2]: no key 'null_q95'",
        ),
        (lambda d: d["claims"][3].pop("verdict"), "claims[3]: no key 'verdict'"),
        (lambda d: d["models"][0].update(layers={"layer": "x"}), "models[0].layers: expected a list"),
        (
            lambda d: d["models"][0]["layers"][1]["recovery"].append({"f1": 0.5}),
            "models[0].layers[1].recovery[0]: no key 'method'",
        ),
        (
            lambda d: d["models"][0]["layers"][0]["alignment"][0].update(p_value=float("nan")),
            "models[0].layers[0].alignment[0].p_value: nan is not a number",
        ),
    ],
)
def test_validation_names_the_missing_key_and_where(tmp_path, edit, message):
    data = _data()
    write_atlas_page(tmp_path / "ok.html", copy.deepcopy(data))  # the unedited data passes
    edit(data)
    with pytest.raises(ValueError, match=re.escape(message)):
        write_atlas_page(tmp_path / "index.html", data)
    assert not (tmp_path / "index.html").exists()


# --- the page in headless Chromium --------------------------------------------------------------------------------


class _Tree(HTMLParser):
    """The DOM as nested dicts {tag, attrs, children, text} (void elements closed at once)."""

    VOID = {"img", "br", "meta", "link", "input", "hr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = {"tag": "#root", "attrs": {}, "children": [], "text": ""}
        self._stack = [self.root]
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = {"tag": tag, "attrs": dict(attrs), "children": [], "text": ""}
        self._stack[-1]["children"].append(node)
        if tag not in self.VOID:
            self._stack.append(node)

    def handle_endtag(self, tag):
        while len(self._stack) > 1 and self._stack.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for node in self._stack:
            node["text"] += data


def _find(node, tag=None, cls=None):
    """Every descendant with this tag and class, in document order."""
    out = []
    for c in node["children"]:
        if (tag is None or c["tag"] == tag) and (cls is None or cls in c["attrs"].get("class", "").split()):
            out.append(c)
        out += _find(c, tag, cls)
    return out


def _kids(node, cls):
    return [c for c in node["children"] if cls in c["attrs"].get("class", "").split()]


def test_atlas_page_renders_every_model_layer_method_and_concept(tmp_path):
    data = _data()
    path = write_atlas_page(tmp_path / "results" / "index.html", data, title="atlas <test>")
    text = path.read_text()
    assert "http://" not in text and "https://" not in text and not re.search(r"<script[^>]*\bsrc=", text)
    assert EVIL not in text  # inline JSON escapes "<"

    dom = dump_dom(chromium_or_skip(), path.resolve().as_uri(), tmp_path / "profile")
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-ready="1"' in body, body
    assert "pwned" not in body  # no string from the data ran as markup
    n_thumbs = sum(
        c["thumbnail"] != ""
        for m in data["models"]
        for ly in m["layers"]
        for me in ly["methods"]
        for c in me["concepts"]
    )
    assert re.search(r'data-loaded-images="(\d+)"', body).group(1) == str(n_thumbs) == "4"
    tree = _Tree(dom).root
    assert _find(tree, "h1")[0]["text"] == "atlas <test>"

    sections = _find(tree, "section", "model")
    assert [s["attrs"]["data-model"] for s in sections] == ["resnet18_cifar", "vit_tiny"]
    for sec, model in zip(sections, data["models"], strict=True):
        layers = _find(sec, "div", "layer")
        assert [ly["attrs"]["data-layer"] for ly in layers] == [ly["layer"] for ly in model["layers"]]
        for div, layer in zip(layers, model["layers"], strict=True):
            cols = _find(div, "div", "method")
            assert [c["attrs"]["data-method"] for c in cols] == [m["method"] for m in layer["methods"]]
            for col, m in zip(cols, layer["methods"], strict=True):
                cards = _kids(col, "concept")
                assert [c["attrs"]["data-concept"] for c in cards] == [c["name"] for c in m["concepts"]]
                assert f"{m['shown']} of {m['n_concepts']} concepts shown" in col["text"]
                for card, c in zip(cards, m["concepts"], strict=True):
                    imgs = _find(card, "img")
                    assert [i["attrs"]["alt"] for i in imgs] == ([c["name"]] if c["thumbnail"] else [])
                    assert _find(card, "div", "name")[0]["text"] == c["name"]
                    assert c["thumbnail"] or "no images" in card["text"]
            rows = [_find(r, "td") for t in _find(div, "table", "alignment") for r in _find(t, "tbody")[0]["children"]]
            assert [r[0]["text"] for r in rows] == [
                f"{a['method_a']} \u2194 {a['method_b']}" for a in layer["alignment"]
            ]
            single = len(layer["methods"]) == 1
            assert ("one method at this layer: nothing to align" in div["text"]) == single
            assert len(_find(div, "table", "recovery")) == (1 if layer["recovery"] else 0)

    layer3 = _find(sections[0], "div", "layer")[0]
    naps_col = _find(layer3, "div", "method")[0]
    evil_card = _kids(naps_col, "concept")[0]
    assert "\u2194 nmf factor3 (J 0.41 on 12 images)" in evil_card["text"]
    assert "best match of planted x: F1 0.8 (p 0.001)" in evil_card["text"]
    # a null number is shown as "–"
    assert "logit drop 1.25; random directions 0.3 (p 5.0e-4); random image sets 0.9 (p \u2013)" in evil_card["text"]
    assert "faithfulness: not scored" in _kids(naps_col, "concept")[1]["text"]
    align = _find(layer3, "table", "alignment")[0]
    second = [td["text"] for td in _find(_find(align, "tbody")[0]["children"][1], "td")]
    assert second[1] == "450" and second[9:] == ["\u2013", "\u2013"]  # p and heatmap of the row without them
    assert [a["attrs"].get("href") for a in _find(align, "a")] == [
        "figures/atlas/alignment_m/naps_nmf.png",
        "figures/atlas/alignment_m/nmf_neurflow.png",
    ]
    recovery_cells = [td["text"] for td in _find(_find(layer3, "table", "recovery")[0], "td")]
    assert recovery_cells[3:5] == ["24", EVIL] and recovery_cells[-1] == "0.71"  # carriers compared, class baseline
    # the malicious strings are text: escaped in the serialised DOM, no element of theirs in the tree
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "&lt;img src=x onerror=" in dom
    assert not [i for i in _find(tree, "img") if "onerror" in i["attrs"]]
    links = _find(sections[0], "ul", "links")[0]
    assert [a["text"] for a in _find(links, "a")] == [PWN, "bad"] and "href" not in _find(links, "a")[1]["attrs"]

    claims = [[td["text"] for td in _find(r, "td")] for r in _find(_find(tree, "table")[-1], "tbody")[0]["children"]]
    assert [r[0] for r in claims] == ["NAP-1", "NAP-2", "NMF-1", "NF-1"]
    assert claims[2][5] == PWN and claims[3][3] == ""
    assert [td["attrs"]["class"] for td in _find(tree, "td") if td["text"] in ("PASS", "FAIL", "NOT RUN")] == [
        "PASS",
        "PASS",
        "FAIL",
        "NOT-RUN",
    ]
    assert [p["text"] for p in _find(tree, "p") if p["attrs"].get("id") == "claim-counts"] == [
        "2 PASS, 1 FAIL, 1 NOT RUN"
    ]
    settings = _find(tree, "dl")[0]
    assert [d["text"] for d in _find(settings, "dd")] == ["max", "0.3", "top set H", "true", "\u2013"]
    assert [a["attrs"]["href"] for a in _find(_find(tree, "nav")[0], "a")] == [
        "#m0",
        "#m0-l0",
        "#m0-l1",
        "#m1",
        "#m1-l0",
        "#claims-section",
    ]
    assert any(a["attrs"].get("href") == "reproduction/claims.html" for a in _find(tree, "a"))
    assert any(a["text"] == data["figures"][0]["label"] for a in _find(tree, "a"))
