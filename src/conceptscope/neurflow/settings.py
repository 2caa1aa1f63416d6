"""NeurFlow settings: the ``neurflow`` config section, the single source of its defaults and checks.

The defaults equal the JSON schema's (``workflow/schemas/config.schema.yaml``;
a test compares them) and follow the paper where it gives a value (tau = 16,
k = 50, N = 50; Cao et al., ICLR 2025, Sect. 5). :meth:`NeurFlowSettings.validate`
checks each value, :meth:`NeurFlowSettings.check` the references to models,
splits and layers, the classes against each data set's class count, the
core-set size against each layer's channel count (by its layout), and that the
model can be cut into the circuit's sub-networks (a ``torch.fx`` trace on the
``meta`` device).
The library functions take their defaults from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from ..checks import check_choice, check_int, check_number, check_range_pair
from ..settings import Section

__all__ = ["ATTRIBUTION_METHODS", "IG_STEPS", "METHODS", "NeurFlowBatchSize", "NeurFlowEvaluation", "NeurFlowSettings"]

# integrated-gradients quadratures (conceptscope.neurflow.neuron_importance) and step-count modes
METHODS = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")
IG_STEPS = ("fixed", "adaptive")
# attribution methods compared with integrated gradients (paper Fig. 10-11; conceptscope.neurflow.attribution)
ATTRIBUTION_METHODS = (
    "integrated_gradients",
    "saliency",
    "guided_backprop",
    "lrp",
    "smoothgrad",
    "gradient_shap",
    "knockoff",
)


@dataclasses.dataclass(frozen=True)
class NeurFlowBatchSize(Section):
    """Forward rows (patches x steps) per integrated-gradients pass, per device (``neurflow.batch_size``)."""

    KEY: ClassVar[str] = "neurflow.batch_size"

    cpu: int = 256
    cuda: int = 4096

    def validate(self) -> None:
        check_int("cpu", self.cpu, minimum=1)
        check_int("cuda", self.cuda, minimum=1)

    def rows(self, device: torch.device | str) -> int:
        """The batch size for ``device`` (``cuda`` on a CUDA device, else ``cpu``)."""
        return int(self.cuda if torch.device(device).type == "cuda" else self.cpu)


@dataclasses.dataclass(frozen=True)
class NeurFlowEvaluation(Section):
    """The paper's evaluations of core sets (``neurflow.evaluation``; Cao et al., ICLR 2025, Sect. 5.2, App.).

    Attributes
    ----------
    run : bool
        Whether the suite runs the evaluations (Fig. 4-6, 10-12, 16-18, Tables 3-5) for ``neurflow.models``.
    n_targets : int
        Target neurons per class and layer below the logit: the class's circuit targets with the largest
        importance for the layer above (the logit layer has one target, the class).
    optimality_tau, n_random : list of int, int
        Core-set sizes of the optimality experiment (Fig. 4; paper 10, 30, 50) and random subsets per size
        (paper 100).
    subset_sizes, n_subsets : list of int, int
        Random subset sizes of the correlation experiments (Fig. 6, 11, 12; paper 1, 5, 10, 20, 50) and subsets
        drawn per size.
    methods : list of str
        Attribution methods compared (:data:`ATTRIBUTION_METHODS`).
    smoothgrad_samples, smoothgrad_noise, gradient_shap_samples
        NoiseTunnel samples and noise (fraction of the maps' range), GradientShap samples.
    fidelity_tau, fidelity_random, extend : list of int, int, float
        Core-set sizes of the fidelity experiment (Fig. 5: 4, 8, 16; Fig. 16-17 add 20, 24), random draws, and
        the share of non-core neurons added to the extended set (Fig. 17; 0.5).
    k_values : list of int
        Concept sizes of the k ablation (Table 5; paper 30 ... 190), each compared with ``neurflow.k``.
    mct_steps, mct_lr, mct_l1
        NeuronMCT-style mask training (Table 3): Adam steps, learning rate, sparsity weight.
    l2_blocks : dict model -> list of str
        Blocks whose consecutive convolutions the L2-weight baseline uses (Table 4); default the circuit's
        blocks below the logit.
    """

    KEY: ClassVar[str] = "neurflow.evaluation"

    run: bool = True
    n_targets: int = 5
    optimality_tau: list[int] = dataclasses.field(default_factory=lambda: [10, 30, 50])
    n_random: int = 100
    subset_sizes: list[int] = dataclasses.field(default_factory=lambda: [1, 5, 10, 20, 50])
    n_subsets: int = 50
    methods: list[str] = dataclasses.field(default_factory=lambda: list(ATTRIBUTION_METHODS))
    smoothgrad_samples: int = 10
    smoothgrad_noise: float = 0.15
    gradient_shap_samples: int = 20
    fidelity_tau: list[int] = dataclasses.field(default_factory=lambda: [4, 8, 16, 20, 24])
    fidelity_random: int = 10
    extend: float = 0.5
    k_values: list[int] = dataclasses.field(default_factory=lambda: [30, 50, 70, 90, 110, 130, 150, 170, 190])
    mct_steps: int = 200
    mct_lr: float = 0.05
    mct_l1: float = 0.01
    l2_blocks: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        if not isinstance(self.run, bool):
            raise ValueError(f"run must be true or false, got {self.run!r}")
        for name in ("n_targets", "n_random", "n_subsets", "smoothgrad_samples", "gradient_shap_samples"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("fidelity_random", self.fidelity_random, minimum=1)
        check_int("mct_steps", self.mct_steps, minimum=1)
        for name in ("optimality_tau", "subset_sizes", "fidelity_tau", "k_values"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name}: give at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: values must not repeat, got {list(values)}")
            for v in values:
                check_int(f"{name} entry", v, minimum=1)
        for m in self.methods:
            check_choice("methods entry", m, ATTRIBUTION_METHODS)
        if "integrated_gradients" not in self.methods:
            raise ValueError("methods: must include integrated_gradients (the others are compared with it)")
        check_number("smoothgrad_noise", self.smoothgrad_noise, minimum=0.0, exclusive_minimum=True)
        check_number("extend", self.extend, minimum=0.0, exclusive_minimum=True)
        check_number("mct_lr", self.mct_lr, minimum=0.0, exclusive_minimum=True)
        check_number("mct_l1", self.mct_l1, minimum=0.0)

    def lower_sizes(self, tau: int) -> dict[str, int]:
        """The largest channel count each experiment takes from the lower block of a level (for the checks)."""
        return {
            "neurflow.evaluation.optimality_tau": max(self.optimality_tau),
            "neurflow.evaluation.subset_sizes": max(self.subset_sizes),
            "neurflow.evaluation.fidelity_tau": max(self.fidelity_tau),
            "neurflow.tau (core sets of Tables 3-5)": tau,
        }


@dataclasses.dataclass(frozen=True)
class NeurFlowSettings(Section):
    """The ``neurflow`` config section (see ``config/README.md`` for every key).

    Attributes
    ----------
    tau, k, n_steps : int
        Core neurons per target, concept patches per neuron, IG quadrature nodes N.
    method : str
        IG quadrature, one of :data:`METHODS` (``riemann_right`` is the paper's sum).
    ig_steps : str
        ``fixed`` (``n_steps`` nodes) or ``adaptive`` (doubled nested counts up to ``n_steps``).
    adaptive_rtol, adaptive_max_swaps
        Stop rule of the adaptive counts (:func:`conceptscope.neurflow.adaptive_importance`).
    batch_size : NeurFlowBatchSize
        Forward rows per pass, per device.
    semantic_k, group_k : list of two int
        Cluster-count ranges searched by silhouette (semantic groups, neuron groups).
    n_groups : int or None
        A fixed neuron-group count per layer instead of the search.
    top_patches, per_group, n_random, debug_images : int
        Patches kept per group, drawn per group in the figure, random neuron
        sets per masked group, images scored with the debugging metric.
    """

    KEY: ClassVar[str] = "neurflow"

    models: list[str] = dataclasses.field(default_factory=list)
    split: str = "test"
    model_splits: dict[str, str] = dataclasses.field(default_factory=dict)
    layers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    classes: list[int] = dataclasses.field(default_factory=lambda: [0])
    max_images: int | None = 50
    tau: int = 16
    k: int = 50
    n_steps: int = 50
    method: str = "riemann_right"
    ig_steps: str = "fixed"
    adaptive_rtol: float = 0.2
    adaptive_max_swaps: int = 1
    batch_size: NeurFlowBatchSize = dataclasses.field(default_factory=NeurFlowBatchSize)
    semantic_k: list[int] = dataclasses.field(default_factory=lambda: [2, 5])
    group_k: list[int] = dataclasses.field(default_factory=lambda: [2, 5])
    n_groups: int | None = None
    top_patches: int = 12
    per_group: int = 6
    n_random: int = 20
    debug_images: int = 30
    evaluation: NeurFlowEvaluation = dataclasses.field(default_factory=NeurFlowEvaluation)

    def validate(self) -> None:
        for name in ("tau", "k", "n_steps", "top_patches", "per_group", "n_random", "debug_images"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("max_images", "n_groups"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        for c in self.classes:
            check_int("classes entry", c, minimum=0)
        check_choice("method", self.method, METHODS)
        check_choice("ig_steps", self.ig_steps, IG_STEPS)
        check_number("adaptive_rtol", self.adaptive_rtol, minimum=0.0, exclusive_minimum=True)
        swaps = check_int("adaptive_max_swaps", self.adaptive_max_swaps, minimum=0)
        if self.ig_steps == "adaptive" and swaps >= self.tau:
            raise ValueError(f"adaptive_max_swaps: must be < tau ({self.tau}), got {swaps}")
        if not isinstance(self.evaluation, NeurFlowEvaluation):
            raise ValueError(f"evaluation must be a NeurFlowEvaluation, got {self.evaluation!r}")
        if not isinstance(self.batch_size, NeurFlowBatchSize):
            raise ValueError(f"batch_size must be a NeurFlowBatchSize, got {self.batch_size!r}")
        for name in ("semantic_k", "group_k"):
            value = getattr(self, name)
            if isinstance(value, list | tuple) and len(value) == 2 and value[0] > value[1]:
                raise ValueError(f"{name}: need min <= max, got {list(value)}")
            check_range_pair(name, value)

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """References to models, splits and layers; classes against the data sets' class counts; tau
        against the channels of every lower circuit block; the circuit's cuts of each model."""
        from ..activations import LayoutError
        from ..workflow import layer_layouts, layer_shapes

        models = config.get("models", {})
        problems = []
        for key, section in (("model_splits", self), ("layers", self), ("evaluation.l2_blocks", self.evaluation)):
            for m in getattr(section, key.rpartition(".")[2]):
                if m not in self.models:
                    problems.append(f"neurflow.{key}: {m!r} is not in neurflow.models")
        for m in self.models:
            if m not in models:
                problems.append(f"neurflow.models: {m!r} is not a key of models ({', '.join(models)})")
                continue
            split = self.split_of(m)
            if split not in models[m]["splits"]:
                problems.append(f"neurflow.models: split {split!r} is not cached for {m}; add it to models.{m}.splits")
            layers = self.circuit_layers(m, models[m]["layers"])
            absent = [layer for layer in layers if layer not in models[m]["layers"]]
            if absent:
                problems.append(f"neurflow.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
                continue
            problems += self._check_classes(config, m)
            shapes = layer_shapes(config, m)
            try:
                layouts = layer_layouts(config, m)
            except LayoutError as err:
                problems.append(str(err))
                continue
            for layer in layers[1:]:  # the lower block of each level; tau of its channels are the core set
                channels = shapes[layer][-1 if layouts[layer] in ("channels_last", "tokens") else 0]
                if self.tau > channels:
                    problems.append(
                        f"neurflow.tau = {self.tau} exceeds the {channels} channels of {layer} (models.{m}); "
                        "lower neurflow.tau or probe a wider layer"
                    )
                    continue
                if not self.evaluation.run:
                    continue
                for key, size in self.evaluation.lower_sizes(self.tau).items():
                    if size > channels:
                        problems.append(
                            f"{key}: {size} channels exceed the {channels} channels of {layer} (models.{m}); "
                            f"lower it, probe a wider layer, or set neurflow.evaluation.run: false"
                        )
            l2 = self.evaluation.l2_blocks.get(m, []) if self.evaluation.run else []
            problems += _check_cuts(config, m, layers, l2)
        return problems

    def _check_classes(self, config: Mapping[str, Any], model: str) -> list[str]:
        """The classes against the class count of ``model``'s data set (skipped when it is unknown)."""
        from ..data import class_count

        ds_id = config["models"][model]["dataset"]
        ds = config.get("datasets", {}).get(ds_id)
        n = None if ds is None else class_count(ds, key=f"datasets.{ds_id}")
        bad = [] if n is None else [c for c in self.classes if c >= n]
        if not bad:
            return []
        return [
            f"neurflow.classes: {bad} out of {self.classes} are not classes of data set {ds_id} "
            f"(models.{model}), which has {n} classes (0 to {n - 1})"
        ]

    def split_of(self, model: str) -> str:
        """The split whose images ``model``'s circuits are built from (``model_splits``, else ``split``)."""
        return self.model_splits.get(model, self.split)

    def circuit_layers(self, model: str, probed: Sequence[str]) -> list[str]:
        """The circuit's blocks of ``model`` from the logit layer down: configured, else the probed ones, top first."""
        return list(self.layers.get(model, list(probed)[::-1]))


def _check_cuts(
    config: Mapping[str, Any], model_id: str, layers: Sequence[str], l2_blocks: Sequence[str] = ()
) -> list[str]:
    """Whether ``model_id`` can be cut into the circuit's sub-networks: a ``torch.fx`` trace of the model built
    on the ``meta`` device (no weights, no memory), each consecutive pair of blocks a cut; and whether the
    blocks of ``neurflow.evaluation.l2_blocks`` are modules of the model."""
    from ..models import build_model
    from .blocks import BlockChain

    m = config["models"][model_id]
    ds = config["datasets"][m["dataset"]]
    size = tuple(m["input_size"]) if m.get("input_size") else None
    key = f"neurflow.layers.{model_id}"
    try:
        with torch.device("meta"):
            model, _ = build_model(
                m["spec"], n_classes=10, in_channels=ds.get("channels", 3), pretrained=False, input_size=size
            )
    except (RuntimeError, NotImplementedError, ValueError):
        return []  # reported by the model checks, or an op without a meta kernel: the circuit job will tell
    names = dict(model.named_modules())
    unknown = [b for b in l2_blocks if not b or b not in names]
    if unknown:
        return [
            f"neurflow.evaluation.l2_blocks.{model_id}: {unknown} are not modules of {m['spec']} (models.{model_id}); "
            f"list its layers with `python -m conceptscope.models {m['spec']}`"
        ]
    try:
        chain = BlockChain(model, list(layers)[::-1])
        for upper, lower in zip(layers[:-1], layers[1:], strict=True):
            chain.between(lower, upper)
    except (ValueError, TypeError) as err:  # ValueError includes torch.fx's TraceError
        return [
            f"{key}: NeurFlow cannot cut {m['spec']} (models.{model_id}) into sub-networks between the blocks "
            f"{list(layers)} with torch.fx: {err}"
        ]
    except (RuntimeError, NotImplementedError):
        return []  # an operation the meta device cannot trace through: the circuit job will tell
    return []
