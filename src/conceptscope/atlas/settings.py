"""Settings of the ``atlas`` config section: the single source of the atlas's defaults and checks.

:class:`AtlasSettings` has one field per key of ``atlas`` in
``workflow/schemas/config.schema.yaml`` (same defaults; a test compares them),
the faithfulness keys in the nested :class:`FaithfulnessSettings`
(``atlas.faithfulness``). The rules pass the whole section as
``params.settings``; the jobs rebuild the object with
:meth:`AtlasSettings.from_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_choice, check_int, check_number
from ..settings import Section
from .concepts import NAS_TOPS

__all__ = ["AtlasSettings", "FaithfulnessSettings"]

_DISENTANGLEMENTS = ("none", "max", "min_max", "mean", "mean_std")


@dataclass(frozen=True)
class FaithfulnessSettings(Section):
    """How each concept's direction is ablated (:mod:`conceptscope.atlas.faithfulness`).

    Attributes
    ----------
    run : bool
        Compute the faithfulness table.
    n_random : int
        Draws of each null per concept: random directions (or random unit sets)
        of the same dimension, and (NAPs, NMF) random image sets' directions.
        A p-value is at least 1 / (n_random + 1).
    max_concepts : int
        Concepts scored per method and layer, the first in the method's own
        order (NAP rank, factor, unit, class then group); 0: all.
    max_images : int
        Member images the logit drop is measured on, the first by position; 0: all.
    batch_size : int
        Images per forward pass.
    """

    KEY = "atlas.faithfulness"

    run: bool = True
    n_random: int = 20
    max_concepts: int = 8
    max_images: int = 32
    batch_size: int = 64

    def validate(self) -> None:
        check_int("n_random", self.n_random, minimum=1)
        check_int("max_concepts", self.max_concepts, minimum=0)
        check_int("max_images", self.max_images, minimum=0)
        check_int("batch_size", self.batch_size, minimum=1)


@dataclass(frozen=True)
class AtlasSettings(Section):
    """The ``atlas`` section: which models, how concepts are read, aligned, scored and shown.

    Attributes
    ----------
    run : bool
        Build the atlas (``results/index.html`` and ``results/figures/atlas``).
    models : list of str
        Models in the atlas; empty: every model at least one method ran on.
    nap_method : str or None
        The NAP disentanglement aligned, ablated and shown; None: ``naps.gallery_method``.
        Recovery scores every disentanglement that ran.
    nas_top : ``"set"`` or ``"range"``
        A NAS unit's images: the taxonomy's top set H or its highest non-empty range.
    threshold : float
        Jaccard at or above which two concepts of different methods are counterparts.
    n_permutations : int
        Draws of the alignment null (random sets of the same sizes).
    recovery_permutations : int
        Label permutations of the recovery null.
    page_concepts : int
        Concepts shown per method and layer on the atlas page (the first in the method's order).
    faithfulness : FaithfulnessSettings
    """

    KEY = "atlas"

    run: bool = True
    models: list[str] = field(default_factory=list)
    nap_method: str | None = None
    nas_top: str = "set"
    threshold: float = 0.3
    n_permutations: int = 200
    recovery_permutations: int = 1000
    page_concepts: int = 6
    faithfulness: FaithfulnessSettings = field(default_factory=FaithfulnessSettings)

    def validate(self) -> None:
        if self.nap_method is not None:
            check_choice("nap_method", self.nap_method, _DISENTANGLEMENTS)
        check_choice("nas_top", self.nas_top, NAS_TOPS)
        check_number("threshold", self.threshold, minimum=0.0, maximum=1.0)
        check_int("n_permutations", self.n_permutations, minimum=1)
        check_int("recovery_permutations", self.recovery_permutations, minimum=1)
        check_int("page_concepts", self.page_concepts, minimum=1)

    def method_models(self, config: Mapping[str, Any]) -> list[str]:
        """Models at least one method's section lists, in the order of ``models``."""
        ran = {m for key in ("naps", "nmf", "nas", "neurflow") for m in (config.get(key) or {}).get("models", [])}
        return [m for m in config.get("models", {}) if m in ran]

    def atlas_models(self, config: Mapping[str, Any]) -> list[str]:
        """The models of the atlas: ``models``, else every model a method ran on; none when ``run`` is false."""
        if not self.run:
            return []
        return list(self.models) if self.models else self.method_models(config)

    def nap_variant(self, naps: Mapping[str, Any]) -> str:
        """The NAP disentanglement of the alignment, the faithfulness and the page."""
        return self.nap_method or str((naps or {}).get("gallery_method", "max"))

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """The models exist and a method ran on each; ``nap_method`` is clustered."""
        problems = []
        ran = self.method_models(config)
        for m in self.models:
            if m not in config.get("models", {}):
                problems.append(f"atlas.models: {m!r} is not a key of models ({', '.join(config.get('models', {}))})")
            elif m not in ran:
                problems.append(f"atlas.models: no method runs on {m!r}; add it to naps, nmf, nas or neurflow models")
        naps = config.get("naps") or {}
        methods: Sequence[str] = naps.get("methods", _DISENTANGLEMENTS)
        # an unset nap_method follows naps.gallery_method, whose own check reports it
        if naps.get("models") and self.run and self.nap_method and self.nap_method not in methods:
            problems.append(
                f"atlas.nap_method: {self.nap_variant(naps)!r} is not clustered (naps.methods: {list(methods)}); "
                "add it there or choose one of them"
            )
        return problems
