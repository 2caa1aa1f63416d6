"""Settings of the ``nas`` config section: the single source of NAS's defaults and checks.

:class:`NasSettings` has one field per key of ``nas`` in
``workflow/schemas/config.schema.yaml`` (same defaults; a test compares them),
the taxonomy thresholds in the nested :class:`TaxonomySettings`
(``nas.taxonomy``). The rules pass the whole section as ``params.settings``;
the jobs rebuild the object with :meth:`NasSettings.from_config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_choice, check_int, check_number
from ..settings import Section

__all__ = ["AGGREGATIONS", "NasSettings", "TaxonomySettings", "check_width_thresholds"]

AGGREGATIONS = ("mean", "max")  # a conv unit's activation per image, over positions


def check_width_thresholds(value: Sequence[int], name: str = "width_thresholds") -> tuple[int, int]:
    """The bar width steps ``(t1, t2)``: integers with ``2 <= t1 < t2`` (widths 1..t1-1, t1..t2-1, t2+)."""
    try:
        t1, t2 = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair [t1, t2], got {value!r}") from None
    t1, t2 = check_int(f"{name}[0]", t1, minimum=2), check_int(f"{name}[1]", t2, minimum=2)
    if not t1 < t2:
        raise ValueError(f"{name}: need t1 < t2, got {[t1, t2]}")
    return t1, t2


@dataclass(frozen=True)
class TaxonomySettings(Section):
    """Thresholds of the neuron taxonomy rules (:func:`conceptscope.nas.classify_units`).

    Attributes
    ----------
    zero_fraction : float
        *zeroing* if at least this share of a unit's activations is exactly 0.
    top_fraction, low_fraction : float
        Share of the images in the top set H / the bottom set L.
    dominance : float
        Share of H (or L) one class (or the sharing classes) must hold.
    min_share : float
        Least share of H of a class that shares the top.
    enrichment : float
        A sharing class's share of H over its share of the sample, at least.
    eta : float
        *differentiating* if eta^2 of the activation by class reaches this.
    min_top, min_low : int
        Least images in H (for *specialized*, *bisemantic*, *polysemantic*) /
        in L (for *suppressing*); below it those labels are not judged and the
        unit is *insufficient*. Default 5 = 1 / (1 - ``dominance``): the
        smallest set where "at least 0.8 of it" leaves room for one image of
        another class; in a smaller set a single image decides (with |H| = 1
        every unit would be specialized).
    min_sample : int
        Least sampled images for *zeroing*. Default 20 = 1 / (1 - ``zero_fraction``),
        by the same argument.
    eta_chance : float
        *differentiating* is judged only when a unit whose activation does
        not depend on the class (normal noise) reaches eta^2 >= ``eta`` with
        probability at most this: the F-test null, eta^2 ~ Beta((C - 1) / 2,
        (n - C) / 2) for n images of C classes. Default 0.01; it needs n >= 10
        for 2 classes, 31 for 10, 53 for 20 (one image per class always gives eta^2 = 1).
    """

    KEY = "nas.taxonomy"

    zero_fraction: float = 0.95
    top_fraction: float = 0.1
    low_fraction: float = 0.1
    dominance: float = 0.8
    min_share: float = 0.15
    enrichment: float = 1.5
    eta: float = 0.6
    min_top: int = 5
    min_low: int = 5
    min_sample: int = 20
    eta_chance: float = 0.01

    def validate(self) -> None:
        for name in ("zero_fraction", "min_share", "eta", "eta_chance"):
            check_number(name, getattr(self, name), minimum=0, maximum=1)
        for name in ("min_top", "min_low", "min_sample"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("top_fraction", "low_fraction", "dominance"):
            check_number(name, getattr(self, name), minimum=0, maximum=1, exclusive_minimum=True)
        check_number("enrichment", self.enrichment, minimum=0)


@dataclass(frozen=True)
class NasSettings(Section):
    """The ``nas`` section: which models and layers, the sampling, the ranges, the views, the taxonomy.

    Attributes
    ----------
    models : list of str
        Models whose probed layers get layer summaries, neuron views and the taxonomy.
    split : str
        Split the images are sampled from; ``model_splits`` overrides it per model.
    layers : dict model -> list of str
        Per model, the probed layers summarized (default: all probed layers).
    per_class : int
        Images sampled per class (all of a smaller class).
    n_ranges : int
        Ranges ``m`` per unit (zero-aligned; one for a constant unit).
    aggregation : {"mean", "max"}
        A conv unit's activation per image, over positions.
    width_thresholds : [t1, t2]
        Bar width steps by image count (1..t1-1, t1..t2-1, t2+).
    max_rows, neurons_per_type, max_per_range : int
        Units drawn in a layer summary PNG; neuron views per type and layer;
        images drawn per range in a neuron view.
    taxonomy : TaxonomySettings
    """

    KEY = "nas"

    models: list[str] = field(default_factory=list)
    split: str = "test"
    model_splits: dict[str, str] = field(default_factory=dict)
    layers: dict[str, list[str]] = field(default_factory=dict)
    per_class: int = 100
    n_ranges: int = 30
    aggregation: str = "mean"
    width_thresholds: list[int] = field(default_factory=lambda: [4, 12])
    max_rows: int = 64
    neurons_per_type: int = 2
    max_per_range: int = 12
    taxonomy: TaxonomySettings = field(default_factory=TaxonomySettings)

    def validate(self) -> None:
        check_int("per_class", self.per_class, minimum=1)
        check_int("n_ranges", self.n_ranges, minimum=2)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)
        check_width_thresholds(self.width_thresholds)
        check_int("max_rows", self.max_rows, minimum=1)
        check_int("neurons_per_type", self.neurons_per_type, minimum=0)
        check_int("max_per_range", self.max_per_range, minimum=1)

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """The models exist and cache the split; ``model_splits`` and ``layers`` name NAS models and probed layers."""
        models = config.get("models", {})
        problems = []
        for m in self.model_splits:
            if m not in self.models:
                problems.append(f"nas.model_splits: {m!r} is not in nas.models")
        for m in self.models:
            split = self.model_splits.get(m, self.split)
            if m not in models:
                problems.append(f"nas.models: {m!r} is not a key of models ({', '.join(models)})")
            elif split not in models[m]["splits"]:
                problems.append(f"nas.models: split {split!r} is not cached for {m}; add it to models.{m}.splits")
        for m, layers in self.layers.items():
            if m not in self.models:
                problems.append(f"nas.layers: {m!r} is not in nas.models")
            elif m in models:  # a missing model is reported above
                absent = [layer for layer in layers if layer not in models[m]["layers"]]
                if absent:
                    problems.append(f"nas.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
        return problems
