"""Headless Chromium for the HTML views' tests: render a page and return its DOM."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["chromium_or_skip", "dump_dom"]


def chromium_or_skip() -> str:
    """The Chromium binary; skip the test without one (fail when CONCEPTSCOPE_REQUIRE_CHROMIUM is set, as in CI)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CONCEPTSCOPE_REQUIRE_CHROMIUM"):
            pytest.fail("CONCEPTSCOPE_REQUIRE_CHROMIUM is set but no chromium binary is on PATH")
        pytest.skip("no chromium / chromium-browser binary on PATH (apt-get install chromium)")
    return binary


def dump_dom(binary: str, url: str, profile: Path) -> str:
    """The DOM after scripts ran (virtual time 5 s), with <script> elements removed."""
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return re.sub(r"<script\b.*?</script>", "", done.stdout, flags=re.S)  # the rendered DOM without code and data
