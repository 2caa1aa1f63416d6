"""Shared parts of the self-contained HTML pages (NAP browser, NAS layer summary, NeurFlow circuit).

A page is a template ``static/<name>.html`` inside its method's package, with
its stylesheet ``<name>.css`` and script ``<name>.js`` beside it (shipped as
package data, so editors, linters and browser devtools see real files).
:func:`render_page` inlines them, the shared :data:`READY_JS`
(``conceptscope/static/ready.js``), escaped text and the page's data as JSON
(:func:`inline_json`), so every written page is one file that works from
``file://``; :func:`write_page` writes it atomically. The pages report their
state on ``<body>`` for tests and scripted use: ``data-ready`` is ``"1"`` when
the first view has rendered and its images have loaded
(``data-loaded-images`` counts the images that decoded), ``"error"`` with
``data-error`` if the script failed.

This module imports neither torch nor matplotlib.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .runtime import write_text

__all__ = ["READY_JS", "inline_json", "read_static", "render_page", "write_page"]

_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


def read_static(package: str, name: str) -> str:
    """The text of ``static/<name>`` inside ``package`` (e.g. ``"conceptscope.naps"``)."""
    return resources.files(package).joinpath("static", name).read_text(encoding="utf-8")


READY_JS = read_static("conceptscope", "ready.js")


def render_page(
    package: str, name: str, *, text: Mapping[str, str] | None = None, data: Mapping[str, str] | None = None
) -> str:
    """The page ``static/<name>.html`` of ``package`` with every ``@@KEY@@`` placeholder filled.

    ``@@CSS@@`` / ``@@JS@@`` take ``static/<name>.css`` / ``.js``, ``@@READY@@``
    takes :data:`READY_JS`, ``@@HEAD@@`` the shared page opening through
    ``</head>`` (``conceptscope/static/head.html``: doctype, charset, viewport,
    title, styles), ``@@KEY@@`` takes ``html.escape(text[KEY])`` or
    ``data[KEY]`` (already script-safe, from :func:`inline_json`). Substitution
    is one pass over the template, so nothing inside inserted text is replaced.

    Raises
    ------
    KeyError
        If the template names a placeholder nobody fills.
    """
    values = {k: html.escape(str(v)) for k, v in (text or {}).items()} | dict(data or {})
    values["READY"] = READY_JS
    template = read_static(package, f"{name}.html")
    head = read_static("conceptscope", "head.html") if "@@HEAD@@" in template else ""
    for key, suffix in (("CSS", ".css"), ("JS", ".js")):
        if f"@@{key}@@" in template + head:
            values[key] = read_static(package, name + suffix)

    def fill(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"page {package}:{name}.html: nothing fills @@{m.group(1)}@@")
        return values[m.group(1)]

    if head:
        values["HEAD"] = _PLACEHOLDER.sub(fill, head).rstrip("\n")
    return _PLACEHOLDER.sub(fill, template)


def inline_json(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``obj`` as compact JSON that is safe inside a ``<script>`` element (no ``</script>``, ``<!--``).

    ``default`` converts objects json cannot (as in :func:`json.dumps`); NaN is refused.
    """
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=default)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_page(path: str | Path, page: str) -> Path:
    """Write ``page`` to ``path`` (parents created) through a temporary file, so a reader never sees half a page
    (:func:`conceptscope.runtime.write_text`)."""
    return write_text(path, page)
