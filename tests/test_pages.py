"""Shared HTML page helpers: script-safe JSON and atomic writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conceptscope import pages


def test_inline_json_cannot_close_the_script_and_round_trips():
    obj = {"a": "</script><!-- & -->", "b": [1, 2.5, None], "ü": "ß"}
    text = pages.inline_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == obj


def test_inline_json_refuses_nan_and_uses_default():
    with pytest.raises(ValueError):
        pages.inline_json({"x": math.nan})
    assert json.loads(pages.inline_json({"x": np.int64(3)}, default=lambda o: o.item())) == {"x": 3}
    with pytest.raises(TypeError):
        pages.inline_json({"x": np.int64(3)})


def test_write_page_creates_parents_and_leaves_no_temporary(tmp_path):
    path = pages.write_page(tmp_path / "a" / "b.html", "<p>one</p>")
    pages.write_page(path, "<p>two</p>")
    assert path.read_text(encoding="utf-8") == "<p>two</p>"
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.html"]
