"""Coupled NMF concept analysis (Saini and Papalexakis, "Analyzing Representations inside CNNs").

Pixels and layer activations factored into shared latent concepts, and what
the paper reads from them:

- :mod:`.solvers`: the coupled, single-layer and group-sparse multiplicative
  updates (:func:`fit_coupled`, :func:`fit_single`, :func:`fit_group_sparse`,
  :class:`CoupledNMF`); :mod:`.init`: their NNDSVD initialization;
- :mod:`.analysis`: factor similarity and eigenvalues (Fig. 2-3), class weights
  (Table 1), pixel masks and latent neighbours (Fig. 4-5);
- :mod:`.tcav`: TCAV of the latent concepts (Fig. 6); :mod:`.views`: the figures;
- :mod:`.jobs` (the workflow's rules), :mod:`.claims` (NMF-1, NMF-2),
  :mod:`.settings` (config section ``nmf``).

The public names of those modules (their ``__all__``) are attributes of this
package, imported on first use: reading the settings at workflow parse time
loads neither matplotlib nor captum.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

# the modules whose public names the package gives, searched in this order
_MODULES = ("solvers", "init", "settings", "analysis", "tcav", "views")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def __getattr__(name: str) -> Any:
    if name == "__all__":
        value: Any = sorted({n for m in _MODULES for n in _module(m).__all__})
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not imported yet
        value = _module(name)
    else:
        module = next((module for module in map(_module, _MODULES) if name in module.__all__), None)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
