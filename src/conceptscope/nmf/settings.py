"""Settings of the coupled-NMF paper: the config section ``nmf`` (and ``nmf.tcav``), its defaults and checks.

The single source of the solver defaults (the authors' run), of the analysis
defaults (Fig. 3's K, Fig. 4-5's neighbours, Table 1's images per factor)
and of the TCAV defaults (Fig. 6); the JSON schema's defaults equal these. The library's defaults refer to
these fields; the workflow passes the whole section and the jobs build this
object from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_choice, check_int, check_number
from ..settings import Section

__all__ = ["BLOCK_SCALINGS", "DEFAULT_EIGEN_K", "DTYPES", "INITS", "NmfSettings", "TcavSettings"]

INITS = ("nndsvd", "nndsvda")  # initializations of P and O (conceptscope.nmf.init)
# per-block normalization before the fit (conceptscope.nmf.solvers, "Block scaling"): none = the paper's
# objective as written; frobenius = every D_i, A_j divided by its Frobenius norm
BLOCK_SCALINGS = ("none", "frobenius")
DTYPES = ("float32", "float64")  # torch dtypes the solvers compute in
DEFAULT_EIGEN_K = 3  # K of Fig. 3 for a model without an ``eigen_k`` entry (the paper's ResNet-18 value)


@dataclass(frozen=True)
class TcavSettings(Section):
    """Config ``nmf.tcav``: TCAV of the latent concepts (paper Fig. 6).

    Attributes
    ----------
    factors : int
        Latent concepts tested, the factors of largest mass; 0 = no TCAV.
    concept_size : int
        Top images per concept.
    classes : list of int or None
        Classes scored; None = all.
    n_random, n_random_sets : int
        Size and number of the random counterexample sets.
    """

    KEY = "nmf.tcav"

    factors: int = 3
    concept_size: int = 20
    classes: list[int] | None = None
    n_random: int = 20
    n_random_sets: int = 3

    def validate(self) -> None:
        check_int("factors", self.factors, minimum=0)
        check_int("concept_size", self.concept_size, minimum=2)
        check_int("n_random", self.n_random, minimum=2)
        check_int("n_random_sets", self.n_random_sets, minimum=2)
        for i, k in enumerate(self.classes or []):
            check_int(f"classes[{i}]", k, minimum=0)


@dataclass(frozen=True)
class NmfSettings(Section):
    """Config ``nmf``: which models and layers are factored, the solver, the figures (config/README.md).

    Attributes
    ----------
    models : list of str
        Models analysed.
    split : str
        Split whose activations are factored.
    layers : dict of str to list of str
        Per model, the probed layers factored, in depth order.
    n_components, max_iter, tol, lam_p, lam_o, lam_f, dtype, init
        The solver (:func:`conceptscope.nmf.fit_coupled`).
    block_scaling : ``"frobenius"`` or ``"none"``
        Divide every pixel and layer matrix by its Frobenius norm before fitting (``frobenius``), or
        factor them as they are (``none``, the paper's objective as written). Default ``frobenius``:
        on the default suite ``none`` fits the pixel blocks worse than the all-zero image (relative
        residual 2.51 / 1.68), a consequence of the objective, not of the solver
        (:mod:`conceptscope.nmf.solvers`, "Block scaling").
    eigen_k : dict of str to int
        Per model, K of the eigenvalue mean (Fig. 3); see :meth:`eigen_k_of`.
    knn : int
        Latent nearest neighbours of Fig. 4-5.
    per_factor : int
        Top images shown per factor (Table 1).
    lam_group : float
        Weight of the group-sparse F variant (Table 2); 0 = not run.
    tcav : TcavSettings
    """

    KEY = "nmf"

    models: list[str] = field(default_factory=list)
    split: str = "test"
    layers: dict[str, list[str]] = field(default_factory=dict)
    n_components: int = 20
    max_iter: int = 50
    tol: float = 1e-8
    lam_p: float = 0.0
    lam_o: float = 0.0
    lam_f: float = 1.0
    dtype: str = "float32"
    init: str = "nndsvd"
    block_scaling: str = "frobenius"
    eigen_k: dict[str, int] = field(default_factory=dict)
    knn: int = 30
    per_factor: int = 8
    lam_group: float = 0.0
    tcav: TcavSettings = field(default_factory=TcavSettings)

    def validate(self) -> None:
        check_int("n_components", self.n_components, minimum=1)
        check_int("max_iter", self.max_iter, minimum=1)
        for name in ("tol", "lam_p", "lam_o", "lam_f", "lam_group"):
            check_number(name, getattr(self, name), minimum=0)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("init", self.init, INITS)
        check_choice("block_scaling", self.block_scaling, BLOCK_SCALINGS)
        for model, k in self.eigen_k.items():
            check_int(f"eigen_k.{model}", k, minimum=1)
        for model, k in {**self.eigen_k, "(default)": DEFAULT_EIGEN_K}.items():
            uses_default = any(m not in self.eigen_k for m in self.models)
            if k >= self.n_components and (model != "(default)" or uses_default):
                name = f"eigen_k.{model}" if model != "(default)" else "eigen_k (default 3)"
                raise ValueError(
                    f"{name} = {k} must be below n_components = {self.n_components}: the mean of all the "
                    "eigenvalues of a cosine-similarity matrix is always 1 (Fig. 3 would show no trend)"
                )
        check_int("knn", self.knn, minimum=1)
        check_int("per_factor", self.per_factor, minimum=1)
        for model, layers in self.layers.items():
            if not layers:
                raise ValueError(f"layers.{model} must list at least one layer, got {layers!r}")

    def check(self, config: Mapping[str, Any]) -> list[str]:
        """Problems: unknown or uncached models; ``layers`` / ``eigen_k`` of models not analysed, unprobed layers."""
        models = config.get("models", {})
        problems = []
        for m in self.models:
            if m not in models:
                problems.append(f"nmf.models: {m!r} is not a key of models ({', '.join(models)})")
            elif self.split not in models[m]["splits"]:
                problems.append(f"nmf.models: split {self.split!r} is not cached for {m} (models.{m}.splits)")
        for key in ("layers", "eigen_k"):
            for m, value in getattr(self, key).items():
                if m not in self.models:
                    problems.append(f"nmf.{key}: {m!r} is not in nmf.models")
                elif key == "layers" and m in models:
                    absent = [layer for layer in value if layer not in models[m]["layers"]]
                    if absent:
                        problems.append(f"nmf.layers.{m}: {absent} are not probed in {m} (models.{m}.layers)")
        return problems or self._negative_layers(config)

    def _negative_layers(self, config: Mapping[str, Any]) -> list[str]:
        """Factored layers whose outputs go below 0 (seeded random inputs, random weights: structural signs).

        Coupled NMF needs non-negative matrices; such a layer would otherwise fail in the NMF job, after
        training and caching.
        """
        from ..workflow import layer_minimums

        problems = []
        for m in self.models:
            mins = layer_minimums(config, m)
            negative = [f"{layer} (min {mins[layer]:.3g})" for layer in self.layers_of(m, config) if mins[layer] < 0]
            if negative:
                problems.append(
                    f"nmf.layers.{m}: {', '.join(negative)} output negative values (random inputs through the "
                    "model with random weights); coupled NMF factors non-negative activations: pick layers that "
                    f"end in a ReLU in nmf.layers.{m}"
                )
        return problems

    def layers_of(self, model: str, config: Mapping[str, Any]) -> list[str]:
        """The factored layers of ``model``: its ``layers`` entry, else every probed layer but the last (logits)."""
        return list(self.layers.get(model, config["models"][model]["layers"][:-1]))

    def eigen_k_of(self, model: str) -> int:
        """K of Fig. 3 for ``model``: its ``eigen_k`` entry, else :data:`DEFAULT_EIGEN_K`."""
        return self.eigen_k.get(model, DEFAULT_EIGEN_K)
