"""NAS, the Neuron Activation Sorter: per-unit activation ranges, their class mix, and a neuron taxonomy.

Method of the MIT M.Eng. thesis (reference/papers.md §3). A layer is summarized
over ``n`` sampled images per class: each unit's activations span
``[min, max]``, split into ``m`` ranges (default 30); each range holds the
images whose activation falls in it, drawn as a stacked bar of their class
mix, the bar's width in three steps by how many images it holds (1-3, 4-11,
12 and more). The thesis's code is not public, so the operational rules here
are ours; each is stated where it is implemented and in config/README.md:

- **Unit activation.** Dense units: the value. Conv units (and tokens): the
  spatial ``mean`` over positions (option ``max``), read from the activation cache.
- **Zero-aligned ranges** (:func:`range_edges`). When ``min < 0 < max``, 0 is
  an edge; each side of 0 is cut into equal-width ranges, the number of
  ranges per side proportional to the side's length (rounded, at least one
  per side), ``m`` in all, so no range straddles 0. Otherwise ``m`` equal
  ranges span ``[min, max]``. A constant unit (``min = max``) has one range.
  Range ``i`` is ``[e_i, e_{i+1})``, the last one closed, so every activation
  is in exactly one range (an activation of exactly 0 belongs to the range
  that starts at 0).
- **Taxonomy** (:func:`classify_units`). A unit may carry several labels:

  * *zeroing*: at least ``zero_fraction`` of its activations are exactly 0;
  * the *top set* H: the images of the highest ranges, whole ranges taken from
    the top down while they hold at most ``top_fraction`` of the images (and
    at least the highest non-empty range); the *bottom set* L likewise from the
    lowest range up (``low_fraction``); a class's share is its fraction of the
    set's images; a class *shares the top* when its share of H is at least
    ``min_share`` and at least ``enrichment`` times its share of the sample;
  * *specialized*: one class holds at least ``dominance`` of H;
  * *bisemantic*: not specialized; the two largest classes hold at least
    ``dominance`` of H together and each at least ``min_share``;
  * *polysemantic*: neither; at least three classes share the top and hold
    at least ``dominance`` of H together (a unit whose top mirrors the sample
    is not polysemantic);
  * *suppressing*: one class holds at least ``dominance`` of L, and L is not the whole sample;
  * *differentiating*: the correlation ratio eta^2 of the activation by class
    (between-class over total sum of squares) is at least ``eta``: the class
    distributions sit at different places along the range.

  Constant units get no label but *zeroing* (when constant 0), since ranges
  cannot separate anything.

- **Evidence** (thresholds ``min_top``, ``min_low``, ``min_sample``,
  ``eta_chance``). A label is judged only on enough images, else it is not
  given and the unit is labelled *insufficient* (``insufficient_for`` names
  the labels not judged): the labels of H need ``|H| >= min_top`` and
  *suppressing* ``|L| >= min_low`` (default 5 = 1 / (1 - ``dominance``), the
  smallest set where a dominance of 0.8 leaves room for one image of another
  class; with |H| = 1 every unit would be specialized); *zeroing* needs
  ``min_sample`` images (20 = 1 / (1 - ``zero_fraction``)); *differentiating*
  needs a sample where a unit without class effect reaches eta^2 >= ``eta``
  with probability at most ``eta_chance`` (0.01; the F-test null eta^2 ~
  Beta((C - 1) / 2, (n - C) / 2) for n images of C classes,
  :func:`eta_squared_chance`). A constant unit needs only ``min_sample``.

The defaults of every setting (``m``, the per-class sample, the aggregation,
the width steps, the taxonomy thresholds) are those of
:class:`conceptscope.nas.settings.NasSettings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ..checks import check_choice, check_int
from ..runtime import atomic_path
from .settings import AGGREGATIONS, NasSettings, TaxonomySettings, check_width_thresholds

__all__ = [
    "NEURON_TYPES",
    "TAXONOMY_DEFAULTS",
    "TAXONOMY_LABELS",
    "LayerSummary",
    "assign_ranges",
    "classify_units",
    "count_labels",
    "eta_squared_chance",
    "load_summary",
    "range_class_counts",
    "range_edges",
    "sample_per_class",
    "save_summary",
    "summarize_layer",
    "unit_activations",
    "width_classes",
]

NEURON_TYPES = ("zeroing", "specialized", "bisemantic", "polysemantic", "suppressing", "differentiating")
# every label of the taxonomy table: the thesis's types, then "too little evidence to judge some type"
TAXONOMY_LABELS = (*NEURON_TYPES, "insufficient")
TAXONOMY_DEFAULTS: dict[str, float] = TaxonomySettings().as_dict()
_TOP_TYPES = ("specialized", "bisemantic", "polysemantic")  # the labels judged on the top set H


def sample_per_class(labels: np.ndarray, n_per_class: int, *, seed: int) -> np.ndarray:
    """Positions of ``n_per_class`` images of every class, drawn without replacement (all of a smaller class).

    Deterministic for a seed: each class draws from its own stream
    ``default_rng([seed, class])``, so adding a class leaves the others' draws
    unchanged. Returns sorted positions (int64).
    """
    check_int("n_per_class", n_per_class, minimum=1)
    labels = np.asarray(labels)
    picked = []
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        if pos.size > n_per_class:
            pos = np.random.default_rng([seed, int(c)]).choice(pos, n_per_class, replace=False)
        picked.append(pos)
    return np.sort(np.concatenate(picked)).astype(np.int64)


def unit_activations(
    arrays: Mapping[str, np.ndarray], kind: str, aggregation: str = NasSettings.aggregation
) -> np.ndarray:
    """One activation per image and unit, (n_samples, n_units): dense ``values``, else the spatial ``aggregation``."""
    check_choice("aggregation", aggregation, AGGREGATIONS)
    key = "values" if kind == "dense" else aggregation
    if key not in arrays:
        raise ValueError(f"a {kind} layer's cache needs the array {key!r}; it has {sorted(arrays)}")
    return np.asarray(arrays[key], dtype=np.float64)


def range_edges(lo: float, hi: float, m: int) -> np.ndarray:
    """Edges of the zero-aligned ranges of one unit (see the module docstring).

    Returns
    -------
    ndarray, shape (n_ranges + 1,)
        Increasing edges; ``n_ranges`` is ``m``, or 1 when ``lo == hi``.
        When ``lo < 0 < hi``, 0 is an edge.
    """
    check_int("m", m, minimum=2)  # so that 0 can be an edge
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"need finite min <= max, got [{lo}, {hi}]")
    if lo == hi:
        return np.array([lo, hi])
    if lo < 0.0 < hi:
        n_neg = int(np.clip(round(m * -lo / (hi - lo)), 1, m - 1))
        return np.concatenate([np.linspace(lo, 0.0, n_neg + 1), np.linspace(0.0, hi, m - n_neg + 1)[1:]])
    return np.linspace(lo, hi, m + 1)


def assign_ranges(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Range index of each value: ``[e_i, e_{i+1})``, the last range closed. Values outside raise."""
    values = np.asarray(values, dtype=np.float64)
    if values.size and (values.min() < edges[0] or values.max() > edges[-1]):
        raise ValueError(f"values span [{values.min()}, {values.max()}], outside the edges [{edges[0]}, {edges[-1]}]")
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)


def range_class_counts(values: np.ndarray, edges: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Images per range and class, (n_ranges, n_classes) int64."""
    idx = assign_ranges(values, edges)
    counts = np.zeros((edges.size - 1, n_classes), dtype=np.int64)
    np.add.at(counts, (idx, np.asarray(labels, dtype=np.int64)), 1)
    return counts


def width_classes(counts: np.ndarray, thresholds: Sequence[int] | None = None) -> np.ndarray:
    """Bar width step of each count: 0 for empty, 1 for 1..t1-1, 2 for t1..t2-1, 3 for t2 and more.

    ``thresholds`` ``(t1, t2)`` defaults to ``NasSettings().width_thresholds`` (1-3, 4-11, 12+).
    """
    t1, t2 = check_width_thresholds(NasSettings().width_thresholds if thresholds is None else thresholds)
    counts = np.asarray(counts)
    return np.select([counts <= 0, counts < t1, counts < t2], [0, 1, 2], 3).astype(np.int8)


@dataclass
class LayerSummary:
    """The NAS summary of one layer over the sampled images.

    Attributes
    ----------
    values : ndarray (n_samples, n_units) float64
        Activation of each sampled image (rows follow ``positions``) per unit.
    positions : ndarray (n_samples,) int64
        Positions of the sampled images in the split.
    labels : ndarray (n_samples,) int64
    edges : ndarray (n_units, m + 1) float64
        Range edges per unit, NaN-padded after ``n_ranges[u] + 1`` entries.
    counts : ndarray (n_units, m, n_classes) int64
        Images per range and class, zero-padded after ``n_ranges[u]`` ranges.
    n_ranges : ndarray (n_units,) int64
    zero_range : ndarray (n_units,) int64
        Index of the range whose lower edge is 0, or -1 when 0 is no edge.
    class_names : list of str
    meta : dict
        Layer, settings and provenance.
    """

    values: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    edges: np.ndarray
    counts: np.ndarray
    n_ranges: np.ndarray
    zero_range: np.ndarray
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return int(self.values.shape[1])

    def unit_edges(self, unit: int) -> np.ndarray:
        return self.edges[unit, : self.n_ranges[unit] + 1]

    def unit_counts(self, unit: int) -> np.ndarray:
        return self.counts[unit, : self.n_ranges[unit]]


def summarize_layer(
    values: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    m: int = NasSettings.n_ranges,
    positions: np.ndarray | None = None,
    meta: Mapping[str, Any] | None = None,
) -> LayerSummary:
    """Zero-aligned ranges and their class counts for every unit of a layer (thesis Fig. 3-1).

    Parameters
    ----------
    values : ndarray (n_samples, n_units)
        One activation per sampled image and unit (:func:`unit_activations`).
    labels : ndarray (n_samples,)
        Class index of each image, in ``range(len(class_names))``.
    m : int
        Ranges per unit (the thesis's 30, ``NasSettings.n_ranges``).
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if values.ndim != 2 or values.shape[0] != labels.shape[0] or values.shape[0] == 0:
        raise ValueError(
            f"values (n_samples, n_units) and labels (n_samples,) must match; got {values.shape}, {labels.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("activations contain NaN or inf")
    n_classes = len(class_names)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    n_units = values.shape[1]
    edges = np.full((n_units, m + 1), np.nan)
    counts = np.zeros((n_units, m, n_classes), dtype=np.int64)
    n_ranges = np.zeros(n_units, dtype=np.int64)
    zero_range = np.full(n_units, -1, dtype=np.int64)
    lo, hi = values.min(0), values.max(0)
    for u in range(n_units):
        e = range_edges(lo[u], hi[u], m)
        k = e.size - 1
        edges[u, : k + 1] = e
        counts[u, :k] = range_class_counts(values[:, u], e, labels, n_classes)
        n_ranges[u] = k
        at_zero = np.flatnonzero(e[:-1] == 0.0)
        zero_range[u] = at_zero[0] if at_zero.size else -1
    return LayerSummary(
        values=values,
        positions=np.arange(values.shape[0]) if positions is None else np.asarray(positions, dtype=np.int64),
        labels=labels,
        edges=edges,
        counts=counts,
        n_ranges=n_ranges,
        zero_range=zero_range,
        class_names=list(class_names),
        meta=dict(meta or {}) | {"m": int(m)},
    )


def _edge_set(counts: np.ndarray, fraction: float, from_top: bool) -> np.ndarray:
    """Class counts of the top (or bottom) set: whole ranges from one end while they hold at most
    ``fraction`` of the images, and at least the first non-empty range."""
    order = np.arange(counts.shape[0])[::-1] if from_top else np.arange(counts.shape[0])
    limit = fraction * counts.sum()
    taken = np.zeros(counts.shape[1], dtype=np.int64)
    for i in order:
        if taken.sum() > 0 and taken.sum() + counts[i].sum() > limit:
            break
        taken += counts[i]
    return taken


def _shares(taken: np.ndarray) -> np.ndarray:
    return np.sort(taken / max(taken.sum(), 1))[::-1]


def _eta_squared(v: np.ndarray, labels: np.ndarray) -> float:
    total = float(((v - v.mean()) ** 2).sum())
    if total == 0.0:
        return 0.0
    between = sum(
        float((labels == c).sum()) * (float(v[labels == c].mean()) - float(v.mean())) ** 2 for c in np.unique(labels)
    )
    return between / total


def eta_squared_chance(n_samples: int, n_classes: int, eta: float) -> float:
    """Probability that eta^2 >= ``eta`` for a unit whose activation does not depend on the class.

    Under the one-way ANOVA null (activations i.i.d. normal whatever the
    class), eta^2 = SS_between / SS_total of ``n_samples`` values in
    ``n_classes`` groups follows Beta((C - 1) / 2, (n - C) / 2); this is its
    survival function at ``eta``. Returns 1.0 when ``n_samples <= n_classes``
    (no within-class spread: eta^2 is 1 whatever the unit) or ``n_classes < 2``
    (nothing to differentiate).
    """
    n, c = check_int("n_samples", n_samples, minimum=0), check_int("n_classes", n_classes, minimum=0)
    if c < 2 or n <= c:
        return 1.0
    from scipy.stats import beta

    return float(beta.sf(eta, (c - 1) / 2, (n - c) / 2))


def classify_units(summary: LayerSummary, **thresholds: float) -> pd.DataFrame:
    """The neuron taxonomy of every unit, by the rules of the module docstring.

    Parameters
    ----------
    summary : LayerSummary
    **thresholds
        Overrides of :data:`TAXONOMY_DEFAULTS`, the fields of
        :class:`~conceptscope.nas.settings.TaxonomySettings` (unknown names and
        values out of range raise).

    Returns
    -------
    DataFrame, one row per unit: ``unit``; one boolean column per label of
    :data:`TAXONOMY_LABELS` (the six types of :data:`NEURON_TYPES`, then
    ``insufficient``); ``labels`` ("+"-joined, "" for none);
    ``insufficient_for`` (the types not judged for lack of evidence,
    "+"-joined); and the quantities behind the rules: ``top_images`` (|H|),
    ``low_images`` (|L|), ``zero_fraction``, ``top_class``, ``top_share``,
    ``second_share``, ``n_top_classes`` (classes sharing the top),
    ``low_class``, ``low_share``, ``eta2``, ``eta2_chance``
    (:func:`eta_squared_chance` of the sample, the same for every unit).
    """
    known = [f.name for f in fields(TaxonomySettings)]
    unknown = set(thresholds) - set(known)
    if unknown:
        raise ValueError(f"unknown taxonomy threshold(s) {sorted(unknown)}; known: {sorted(known)}")
    t = TaxonomySettings(**thresholds)
    n_images = int(summary.labels.size)
    chance = np.bincount(summary.labels, minlength=len(summary.class_names)) / n_images
    eta_chance = eta_squared_chance(n_images, int(np.unique(summary.labels).size), t.eta)
    judged_zero = n_images >= t.min_sample
    judged_eta = eta_chance <= t.eta_chance
    rows = []
    for u in range(summary.n_units):
        v = summary.values[:, u]
        counts = summary.unit_counts(u)
        zero_fraction = float((v == 0.0).mean())
        constant = summary.n_ranges[u] == 1
        top = _edge_set(counts, t.top_fraction, from_top=True)
        low = _edge_set(counts, t.low_fraction, from_top=False)
        top_sh, low_sh = _shares(top), _shares(low)
        top_frac = top / max(top.sum(), 1)
        sharing = (top_frac >= t.min_share) & (top_frac >= t.enrichment * chance)
        n_top = int(sharing.sum())
        eta2 = _eta_squared(v, summary.labels)
        flags = dict.fromkeys(NEURON_TYPES, False)
        flags["zeroing"] = zero_fraction >= t.zero_fraction
        # which rules the evidence can decide; a constant unit is decided by its constancy (no label but
        # zeroing), so only its zeroing rule needs evidence
        judged = dict.fromkeys(NEURON_TYPES, True)
        judged["zeroing"] = judged_zero
        if not constant:
            flags["specialized"] = top_sh[0] >= t.dominance
            two = len(top_sh) > 1 and top_sh[0] + top_sh[1] >= t.dominance and top_sh[1] >= t.min_share
            flags["bisemantic"] = not flags["specialized"] and bool(two)
            poly = n_top >= 3 and top_frac[sharing].sum() >= t.dominance
            flags["polysemantic"] = not flags["specialized"] and not flags["bisemantic"] and bool(poly)
            flags["suppressing"] = low_sh[0] >= t.dominance and low.sum() < counts.sum()
            flags["differentiating"] = eta2 >= t.eta
            # bisemantic and polysemantic exclude specialized: the three stand or fall together with |H|
            judged |= dict.fromkeys(_TOP_TYPES, int(top.sum()) >= t.min_top)
            judged["suppressing"] = int(low.sum()) >= t.min_low
            judged["differentiating"] = judged_eta
        missing = [k for k in NEURON_TYPES if not judged[k]]
        flags = {k: bool(flags[k] and judged[k]) for k in NEURON_TYPES} | {"insufficient": bool(missing)}
        rows.append(
            {
                "unit": u,
                **flags,
                "labels": "+".join(k for k in TAXONOMY_LABELS if flags[k]),
                "insufficient_for": "+".join(missing),
                "top_images": int(top.sum()),
                "low_images": int(low.sum()),
                "zero_fraction": zero_fraction,
                "top_class": summary.class_names[int(np.argmax(top))],
                "top_share": float(top_sh[0]),
                "second_share": float(top_sh[1]) if len(top_sh) > 1 else 0.0,
                "n_top_classes": n_top,
                "low_class": summary.class_names[int(np.argmax(low))],
                "low_share": float(low_sh[0]),
                "eta2": eta2,
                "eta2_chance": eta_chance,
            }
        )
    return pd.DataFrame(rows)


def count_labels(taxonomy: pd.DataFrame, n_ranges: np.ndarray) -> pd.DataFrame:
    """Units per label of a layer's taxonomy, and per type the units it could judge.

    Parameters
    ----------
    taxonomy : DataFrame
        :func:`classify_units` of the layer (columns of :data:`TAXONOMY_LABELS`
        and ``insufficient_for``).
    n_ranges : ndarray (n_units,)
        The summary's ranges per unit (1 for a constant unit).

    Returns
    -------
    DataFrame, one row per label of :data:`TAXONOMY_LABELS`: ``type``,
    ``count`` (units with the label) and ``judged``: the units whose evidence
    sufficed for the type's rule and to which it applies (a constant unit
    only to *zeroing*); for ``insufficient``, the number of units.
    """
    n_ranges = np.asarray(n_ranges)
    if len(taxonomy) != n_ranges.size:
        raise ValueError(f"the taxonomy has {len(taxonomy)} rows for {n_ranges.size} units")
    missing = taxonomy["insufficient_for"].fillna("").astype(str).str.split("+")
    varies = n_ranges > 1
    rows = []
    for t in TAXONOMY_LABELS:
        if t == "insufficient":
            judged = n_ranges.size
        else:
            applies = np.ones_like(varies) if t == "zeroing" else varies
            judged = int(sum(bool(a) and t not in m for a, m in zip(applies, missing, strict=True)))
        rows.append({"type": t, "count": int(taxonomy[t].sum()), "judged": judged})
    return pd.DataFrame(rows)


def save_summary(summary: LayerSummary, path: str | Path) -> None:
    """Write a summary to HDF5 atomically (temp file, then rename); ``meta`` as a JSON attribute."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for k in ("values", "positions", "labels", "edges", "counts", "n_ranges", "zero_range"):
            f.create_dataset(k, data=getattr(summary, k))
        f.attrs["class_names"] = json.dumps(summary.class_names)
        f.attrs["meta"] = json.dumps(summary.meta, sort_keys=True, default=str)


def load_summary(path: str | Path) -> LayerSummary:
    """Read a summary written by :func:`save_summary`; a broken file raises naming the fix."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            arrays = {
                k: f[k][()] for k in ("values", "positions", "labels", "edges", "counts", "n_ranges", "zero_range")
            }
            names = json.loads(f.attrs["class_names"])
            meta = json.loads(f.attrs["meta"])
    except (OSError, KeyError, ValueError) as err:
        raise OSError(f"{path}: unreadable NAS summary ({err}). Delete it and rerun snakemake to rebuild it.") from err
    return LayerSummary(**arrays, class_names=names, meta=meta)
