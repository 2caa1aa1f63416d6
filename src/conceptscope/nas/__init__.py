"""NAS, the Neuron Activation Sorter (MIT M.Eng. thesis, reference/papers.md §3).

Modules: :mod:`~conceptscope.nas.core` (zero-aligned ranges, the layer
summary, the neuron taxonomy, sampling), :mod:`~conceptscope.nas.views`
(layer summary PNG and HTML page, neuron views, taxonomy chart),
:mod:`~conceptscope.nas.jobs` (the rules' jobs), :mod:`~conceptscope.nas.claims`
(NAS-1) and :mod:`~conceptscope.nas.settings` (the ``nas`` config section).

The names of the former ``conceptscope.nas`` and ``conceptscope.nas_views``
modules are available here; the views' names load :mod:`matplotlib` on first
use only, so reading the settings (at workflow parse time) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import core
from .core import *  # noqa: F403 - the former conceptscope.nas
from .settings import NasSettings, TaxonomySettings

_SUBMODULES = ("claims", "core", "jobs", "settings", "views")  # imported by the import system, not here

__all__ = [*core.__all__, "NasSettings", "TaxonomySettings"]  # + the names of views.__all__, loaded on first use


def __getattr__(name: str) -> Any:
    """The former ``conceptscope.nas_views`` names, from :mod:`conceptscope.nas.views` (imported here, once)."""
    if not name.startswith("_") and name not in _SUBMODULES:
        views = importlib.import_module(f"{__name__}.views")
        if name in views.__all__:
            return getattr(views, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
