"""A paper package's public names, imported on first use (PEP 562).

Each paper package (``conceptscope.naps``, ``nmf``, ``nas``, ``neurflow``)
gives the public names of its modules (their ``__all__``) as its own
attributes, so ``from conceptscope import neurflow as nf; nf.importance(...)``
works, but imports a module only when one of its names is first used: reading
a paper's settings at workflow parse time loads neither matplotlib, captum nor
scikit-learn. A name is looked up in the modules in the order given (put the
light ones first); a submodule of the package is returned as the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names are those of its ``modules``.

    ``__all__`` is the sorted union of the modules' ``__all__``; a value is
    cached on the package after its first lookup.

    Raises
    ------
    AttributeError
        (from ``__getattr__``) for a name no module exports.
    """

    def load(name: str) -> Any:
        return importlib.import_module(f"{package}.{name}")

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
        if name == "__all__":
            value: Any = sorted({n for m in modules for n in load(m).__all__})
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = load(name)  # a submodule not imported yet
        else:
            module = next((m for m in map(load, modules) if name in m.__all__), None)
            if module is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook
        return sorted({*vars(sys.modules[package]), *__getattr__("__all__")})

    return __getattr__, __dir__
