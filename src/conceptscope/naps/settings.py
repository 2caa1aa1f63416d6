"""Settings of the ``naps`` config section: the single source of the NAP defaults and checks.

:class:`NapSettings` has one field per key of ``naps`` in
``workflow/schemas/config.schema.yaml`` (same defaults; a test compares them),
:class:`NapInputSize` those of ``naps.input_size`` (the Fig. 8 study). Rules
pass the whole section as ``params.settings``; the jobs build the object with
:meth:`~conceptscope.settings.Section.from_config`.

This module imports neither torch nor matplotlib.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..checks import check_choice, check_int
from ..settings import Section

__all__ = ["DISENTANGLEMENTS", "NORMALIZATIONS", "SIZE_TOLERANCE", "NapInputSize", "NapSettings"]

DISENTANGLEMENTS = ("none", "max", "min_max", "mean", "mean_std")  # location disentanglements, in figure order
NORMALIZATIONS = ("paper", "authors")  # unit equalization: paper Eq. 2, or as the authors' code
# NAP-3: "of equal size" = parameter counts within 5 % of the larger (timm resnet50 vs resnetv2_50: 0.03 %)
SIZE_TOLERANCE = 0.05


def _check_methods(name: str, methods: list[str]) -> None:
    if not methods:
        raise ValueError(f"{name} must list at least one disentanglement, got {methods!r}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"{name} must not repeat a disentanglement, got {methods!r}")
    for m in methods:
        check_choice(name, m, DISENTANGLEMENTS)


@dataclass(frozen=True)
class NapInputSize(Section):
    """``naps.input_size``: NAP count against the number of inputs (paper Fig. 8).

    Attributes
    ----------
    models : list of str
        Models studied (keys of ``models``; each needs ``splits`` cached).
    splits : list of str
        Splits whose first N inputs are clustered.
    sizes : list of int
        Numbers of inputs N (at least two, each >= 1; the first N of the split, nested).
    method : str
        The disentanglement clustered (one of :data:`DISENTANGLEMENTS`).
    """

    KEY: ClassVar[str] = "naps.input_size"

    models: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=lambda: ["train", "test"])
    sizes: list[int] = field(default_factory=lambda: [100, 200, 300, 400])
    method: str = "max"

    def validate(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least two input counts, got {self.sizes!r}")
        for n in self.sizes:
            check_int("sizes", n, minimum=1)
        check_choice("method", self.method, DISENTANGLEMENTS)


@dataclass(frozen=True)
class NapSettings(Section):
    """``naps``: Neural Activation Patterns (Bäuerle, Jönsson, Ropinski).

    Attributes
    ----------
    models : list of str
        Models whose probed layers get NAPs.
    split : str
        Split of the disentanglement sweep (Fig. 6), galleries and browser.
    model_splits : dict of str to str
        Per model, a split other than ``split``.
    methods : list of str
        Location disentanglements (of :data:`DISENTANGLEMENTS`).
    normalization : str
        Unit equalization, one of :data:`NORMALIZATIONS`.
    max_precomputed : int
        Up to this many distinct inputs HDBSCAN's spanning tree comes from the
        precomputed distance matrix (N^2 x 8 bytes); above, from the exact
        tiled path (:mod:`~conceptscope.naps.reachability`), O(N x features).
    gallery_method : str
        Disentanglement of the per-layer galleries (Fig. 1) and of follow-an-image (Fig. 9/10).
    top_naps, per_nap : int
        NAPs per gallery (by persistence) and members shown per NAP (by probability).
    fig7_layers : dict of str to str
        Per model, the layer of the per-aggregation gallery (Fig. 7); default its first probed layer.
    follow_images : list of int
        Positions (in the split) of the images followed through the layers (Fig. 9/10) and compared (Fig. 14).
    input_size : NapInputSize
        The input-size study (Fig. 8).
    compare : list of [model_a, layer_a, model_b, layer_b]
        Fig. 14 pairs on the same data set.
    reference : dict
        Per model, the authors' model name and layer names in their result table.
    accuracy_pairs : list of [model_a, model_b]
        NAP-3 pairs: models of equal size (parameter count within
        :data:`SIZE_TOLERANCE`) on the same data set and NAP split, whose
        probed layers are compared position by position; the more accurate of
        the two (``test_accuracy`` of ``metrics.json``) should give more NAPs.
    purity_permutations : int
        Label shuffles of the NAP-5 purity baseline (:mod:`conceptscope.naps.purity`).
    """

    KEY: ClassVar[str] = "naps"

    models: list[str] = field(default_factory=list)
    split: str = "test"
    model_splits: dict[str, str] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(DISENTANGLEMENTS))
    normalization: str = "paper"
    max_precomputed: int = 20000
    gallery_method: str = "max"
    top_naps: int = 6
    per_nap: int = 10
    fig7_layers: dict[str, str] = field(default_factory=dict)
    follow_images: list[int] = field(default_factory=lambda: [0])
    input_size: NapInputSize = field(default_factory=NapInputSize)
    compare: list[list[str]] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)
    accuracy_pairs: list[list[str]] = field(default_factory=list)
    purity_permutations: int = 1000

    def validate(self) -> None:
        _check_methods("methods", self.methods)
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_int("max_precomputed", self.max_precomputed, minimum=0)
        check_choice("gallery_method", self.gallery_method, DISENTANGLEMENTS)
        check_int("top_naps", self.top_naps, minimum=1)
        check_int("per_nap", self.per_nap, minimum=1)
        for position in self.follow_images:
            check_int("follow_images", position, minimum=0)
        for pair in self.compare:
            if len(pair) != 4:
                raise ValueError(f"compare must hold [model_a, layer_a, model_b, layer_b] entries, got {pair!r}")
        for pair in self.accuracy_pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"accuracy_pairs must hold [model_a, model_b] entries of two models, got {pair!r}")
        check_int("purity_permutations", self.purity_permutations, minimum=1)

    @property
    def method_order(self) -> tuple[str, ...]:
        """The configured disentanglements in :data:`DISENTANGLEMENTS` order (the order of a layer's NAP files)."""
        return tuple(m for m in DISENTANGLEMENTS if m in self.methods)

    def split_of(self, model: str) -> str:
        """The split whose NAPs ``model`` gets (``model_splits``, else ``split``)."""
        return self.model_splits.get(model, self.split)

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """Models, splits and layers the section names must exist in ``config``; Fig. 14 pairs must match."""
        models = config.get("models", {})
        problems: list[str] = []

        def known(key: str, model: str, split: str | None = None, layer: str | None = None) -> bool:
            if model not in models:
                problems.append(f"{key}: {model!r} is not a key of models ({', '.join(models)})")
                return False
            if split is not None and split not in models[model]["splits"]:
                problems.append(f"{key}: split {split!r} is not cached for {model} (add it to models.{model}.splits)")
            if layer is not None and layer not in models[model]["layers"]:
                problems.append(f"{key}: layer {layer!r} is not probed in {model} (models.{model}.layers)")
            return True

        for m in self.model_splits:
            if m not in self.models:
                problems.append(f"naps.model_splits: {m!r} is not in naps.models")
        for m in self.models:
            known("naps.models", m, self.split_of(m))
        for m in self.input_size.models:
            for split in self.input_size.splits:
                known("naps.input_size.models", m, split)
        if self.models and self.gallery_method not in self.methods:
            problems.append(f"naps.gallery_method: {self.gallery_method!r} is not in naps.methods")
        for m, layer in self.fig7_layers.items():
            if m not in self.models:
                problems.append(f"naps.fig7_layers: {m!r} is not in naps.models")
            else:
                known("naps.fig7_layers", m, layer=layer)
        for i, (ma, la, mb, lb) in enumerate(self.compare):
            key = f"naps.compare[{i}]"
            for m, layer in ((ma, la), (mb, lb)):
                if m not in self.models:
                    problems.append(f"{key}: {m!r} is not in naps.models")
                else:
                    known(key, m, layer=layer)
            if ma in models and mb in models and models[ma]["dataset"] != models[mb]["dataset"]:
                problems.append(f"{key}: {ma} and {mb} run on different data sets; Fig. 14 compares the same images")
            if self.split_of(ma) != self.split_of(mb):
                problems.append(f"{key}: {ma} and {mb} use different NAP splits (naps.model_splits)")
        for i, (ma, mb) in enumerate(self.accuracy_pairs):
            key = f"naps.accuracy_pairs[{i}]"
            missing = [m for m in (ma, mb) if m not in self.models]
            if missing:
                close = {m: difflib.get_close_matches(m, self.models, n=1) for m in missing}
                hint = "; ".join(f"did you mean {c[0]!r} for {m!r}?" for m, c in close.items() if c)
                problems.append(
                    f"{key}: {', '.join(map(repr, missing))} not in naps.models (NAP-3 compares NAPs)"
                    + (f"; {hint}" if hint else "")
                )
                continue
            if models[ma]["dataset"] != models[mb]["dataset"] or self.split_of(ma) != self.split_of(mb):
                problems.append(f"{key}: {ma} and {mb} must cluster the same inputs (one data set and NAP split)")
            if len(models[ma]["layers"]) != len(models[mb]["layers"]):
                problems.append(
                    f"{key}: {ma} probes {len(models[ma]['layers'])} layers and {mb} {len(models[mb]['layers'])}; "
                    "NAP-3 compares the layers position by position, so list as many in each"
                )
        for m, ref in self.reference.items():
            if m not in self.models:
                problems.append(f"naps.reference: {m!r} is not in naps.models")
                continue
            for layer in ref["layers"]:
                known(f"naps.reference.{m}.layers", m, layer=layer)
        return problems
