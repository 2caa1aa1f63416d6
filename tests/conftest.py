"""Shared test settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_network_probe(monkeypatch):
    """Tests never open network connections: a pretrained build's host check answers "reachable" (so the
    test's own stand-in for the download runs); tests of the offline path set it themselves."""
    from conceptscope import models

    monkeypatch.setattr(models, "_reachable", lambda host: True)
