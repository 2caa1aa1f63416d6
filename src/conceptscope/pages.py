"""Shared parts of the self-contained HTML pages (NAP browser, NAS layer summary, NeurFlow circuit).

Every page embeds its data as JSON (:func:`inline_json`), includes
:data:`READY_JS` before its own script, and is written atomically
(:func:`write_page`). The pages report their state on ``<body>`` for tests
and scripted use: ``data-ready`` is ``"1"`` when the first view has rendered
and its images have loaded (``data-loaded-images`` counts the images that
decoded), ``"error"`` with ``data-error`` if the script failed.

This module imports neither torch nor matplotlib.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["READY_JS", "inline_json", "write_page"]

READY_JS = """
function whenImagesLoaded() {
  return Promise.all(Array.from(document.images).map((im) => (im.complete ? Promise.resolve()
    : new Promise((res) => { im.addEventListener("load", res, {once: true});
      im.addEventListener("error", res, {once: true}); }))));
}
// once every image has loaded or failed: run `then`, count the decoded images, set data-ready="1"
function markReady(then) {
  return whenImagesLoaded().then(() => {
    if (then) then();
    document.body.dataset.loadedImages = String(Array.from(document.images).filter((im) => im.naturalWidth > 0)
      .length);
    document.body.dataset.ready = "1";
  });
}
// data-ready="error" with the message, shown in the element with id `box` if there is one
function markFailed(err, box, what) {
  document.body.dataset.ready = "error";
  document.body.dataset.error = String(err);
  const el = box ? document.getElementById(box) : null;
  if (el) {
    const p = document.createElement("p");
    p.className = "err";
    p.textContent = what + " failed: " + err;
    el.replaceChildren(p);
  }
}
"""


def inline_json(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``obj`` as compact JSON that is safe inside a ``<script>`` element (no ``</script>``, ``<!--``).

    ``default`` converts objects json cannot (as in :func:`json.dumps`); NaN is refused.
    """
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=default)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_page(path: str | Path, page: str) -> Path:
    """Write ``page`` to ``path`` (parents created) through a temporary file, so a reader never sees half a page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
