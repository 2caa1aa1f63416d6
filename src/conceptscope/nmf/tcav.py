"""TCAV of latent concepts: how sensitive a class logit is to a concept direction in a layer.

Testing with Concept Activation Vectors (Kim et al., "Interpretability Beyond
Feature Attribution: Quantitative Testing with Concept Activation Vectors
(TCAV)", ICML 2018), as Saini and Papalexakis, "Analyzing Representations
inside Convolutional Neural Networks", use it in their Fig. 6: a latent NMF
factor is a concept given by its top images (largest weights in the factor's
row of F); random images are the counterexamples.

For a concept C, a layer l and a class k:

1. **CAV**: a linear classifier separates the layer-l activations (flattened)
   of C's images from those of a random set R; the CAV v is the unit normal of
   its boundary, pointing towards C. The classifier is
   :class:`SeededSGDClassifier`, captum's default settings (scikit-learn
   ``SGDClassifier``, hinge loss, alpha 0.01, max_iter 1000, tol 1e-3, a third
   of the examples held out to measure its accuracy) but seeded and with a
   stratified split instead of the global-RNG shuffle of captum's
   ``DefaultClassifier``.
2. **Directional derivative** of the class-k logit h_k at every input x of
   class k (the images of ``images`` labelled k): S(x) = grad_l h_k(x) . v
   (captum's default layer attribution, the gradient w.r.t. the layer output).
3. **TCAV score** = the fraction of those inputs with S(x) > 0 (captum's
   ``sign_count``); ``magnitude`` is captum 0.9's other number, the *mean* of
   S(x) over the inputs (its docstring describes a ratio of sums instead; the
   code computes the mean): the change of the logit per unit step along the
   CAV, which has unit norm here.

Every concept is run against ``n_random_sets`` random sets; a concept is
meaningful when its scores over the random sets differ from those of random
directions. The baseline: one more random set ("random counterpart", as in Kim
et al.'s code) taken as the concept against each of the same random sets.
:func:`summarize_tcav` gives the mean and std over random sets and a two-sided
t-test (``scipy.stats.ttest_ind``) of the concept's scores against the
baseline's.

Random sets are shared by all concepts: each is ``n_random`` positions drawn
without replacement (numpy ``Generator`` seeded with ``seed``) from the
positions that belong to none of the concepts; different sets may overlap.

captum's ``TCAV`` stores activations and CAVs as files; they live in a
temporary directory that is removed when :func:`tcav_scores` returns (or
raises). Scores are computed ``batch_size`` inputs at a time (sign counts and
means combine exactly); captum re-reads every CAV file from that directory on
each ``interpret`` call, a small cost next to the gradients. Nothing here
uses a global RNG (the classifier has its own seed, the model runs in eval
mode), so no ``torch.random.fork_rng`` is needed and the same seed gives the
same table on the same device and thread count.

The figure of a summary is :func:`conceptscope.nmf.views.plot_tcav`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.concept import TCAV, Classifier, Concept
from torch import nn

from ..activations import resolve_layers
from ..checks import check_int
from ..data import ImageSet
from ..models import InputSpec, resolve_device
from .settings import TcavSettings

__all__ = [
    "BASELINE",
    "SUMMARY_COLUMNS",
    "TABLE_COLUMNS",
    "SeededSGDClassifier",
    "summarize_tcav",
    "tcav_scores",
]

BASELINE = "random"
TABLE_COLUMNS = (
    "concept",
    "layer",
    "class",
    "class_name",
    "random_set",
    "tcav_score",
    "magnitude",
    "cav_accuracy",
    "n_concept",
    "n_random",
    "n_inputs",
    "baseline",
)
SUMMARY_COLUMNS = (
    "concept",
    "layer",
    "class",
    "class_name",
    "n_random_sets",
    "tcav_mean",
    "tcav_std",
    "magnitude_mean",
    "magnitude_std",
    "cav_accuracy_mean",
    "baseline_mean",
    "baseline_std",
    "p_value",
)
_MODEL_ID = "model"


class SeededSGDClassifier(Classifier):
    """captum's default CAV classifier, seeded: a linear SGD classifier on flattened activations.

    scikit-learn ``SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3)`` (hinge
    loss), trained on a stratified ``1 - test_split_ratio`` of the examples and
    scored on the rest; both the split and the SGD shuffling draw from ``seed``
    on every fit, so a CAV does not depend on what was trained before it.
    :meth:`weights` are unit-norm rows, one per class in :meth:`classes` order
    (for two classes: the boundary normal pointing to each class).

    Parameters
    ----------
    seed : int
        Seed of the split and of the SGD.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self._weights: torch.Tensor | None = None
        self._classes: list[int] = []

    def train_and_eval(self, dataloader: Any, test_split_ratio: float = 0.33, **kwargs: Any) -> dict[str, float]:
        """Fit on the batches ``(activations (n, F), concept ids (n,))``; returns ``{"accs": test accuracy}``."""
        from sklearn.linear_model import SGDClassifier
        from sklearn.model_selection import train_test_split

        xs, ys = [], []
        for x, y in dataloader:
            xs.append(x.detach().cpu().reshape(x.shape[0], -1).numpy())
            ys.append(y.detach().cpu().numpy())
        X = np.concatenate(xs).astype(np.float64)
        y = np.concatenate(ys).astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(
            X, y, test_size=test_split_ratio, stratify=y, random_state=self.seed
        )
        lm = SGDClassifier(alpha=0.01, max_iter=1000, tol=1e-3, random_state=self.seed)
        with warnings.catch_warnings():
            # a separable toy set can stop at max_iter; the CAV direction is still usable
            warnings.filterwarnings("ignore", message="Maximum number of iteration", category=UserWarning)
            lm.fit(x_train, y_train)
        coef = np.asarray(lm.coef_, dtype=np.float64)
        if coef.shape[0] == 1:
            coef = np.concatenate([-coef, coef])  # binary: coef_ points to classes_[1]
        norms = np.linalg.norm(coef, axis=1, keepdims=True)
        coef = np.divide(coef, norms, out=np.zeros_like(coef), where=norms > 0)
        self._weights = torch.from_numpy(coef.astype(np.float32))
        self._classes = [int(c) for c in lm.classes_]
        # plain python numbers: captum re-reads CAVs with torch.load(weights_only=True)
        return {"accs": float((lm.predict(x_test) == y_test).mean())}

    def weights(self) -> torch.Tensor:
        """Unit CAVs, shape (n_classes, n_features), rows in :meth:`classes` order."""
        if self._weights is None:
            raise RuntimeError("no CAV trained yet: call train_and_eval first")
        return self._weights

    def classes(self) -> list[int]:
        """Concept ids in the order of the :meth:`weights` rows."""
        return list(self._classes)


class _ConceptBatches:
    """Model-ready batches of the images at ``positions``, re-iterable, loaded lazily."""

    def __init__(
        self, images: ImageSet, positions: np.ndarray, inp: InputSpec, batch_size: int, device: torch.device
    ) -> None:
        self.images, self.positions, self.inp = images, positions, inp
        self.batch_size, self.device = batch_size, device

    def __iter__(self) -> Iterator[torch.Tensor]:
        for start in range(0, len(self.positions), self.batch_size):
            pos = self.positions[start : start + self.batch_size]
            x = self.inp.normalize(self.images.images(pos, self.inp.size, self.inp.channels))
            yield x.to(self.device)


def _check_positions(name: str, positions: Sequence[int], n: int) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.ndim != 1 or (pos.size and not np.issubdtype(pos.dtype, np.integer)):
        raise ValueError(f"concept {name!r}: positions must be a 1-D sequence of integers, got {positions!r}")
    pos = pos.astype(np.int64)
    if pos.size < 2:
        raise ValueError(f"concept {name!r}: needs at least 2 images to train a CAV, got {pos.size}")
    if pos.min() < 0 or pos.max() >= n:
        raise ValueError(
            f"concept {name!r}: positions must lie in [0, {n}) (the image set), got {pos.min()}..{pos.max()}"
        )
    if np.unique(pos).size != pos.size:
        raise ValueError(f"concept {name!r}: positions contain duplicates")
    return pos


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def tcav_scores(
    model: nn.Module,
    inp: InputSpec,
    images: ImageSet,
    concept_positions: Mapping[str, Sequence[int]],
    layers: Sequence[str],
    classes: Sequence[int],
    *,
    n_random: int = TcavSettings.n_random,
    n_random_sets: int = TcavSettings.n_random_sets,
    seed: int = 0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """TCAV scores of concepts (sets of images) for classes, in layers, against random sets.

    Parameters
    ----------
    model : nn.Module
        Returns class logits (n, n_classes). Run in eval mode (its mode is
        restored afterwards); moved to ``device`` when one is given.
    inp : InputSpec
        How the model sees images: every batch is
        ``inp.normalize(images.images(pos, inp.size, inp.channels))``.
    images : ImageSet
        Concept examples, random counterexamples and the inputs scored (the
        images labelled with each class) all come from it.
    concept_positions : mapping of str to sequence of int
        Concept name → positions in ``images`` of its examples (e.g. a latent
        factor's top images), at least 2 each. The name ``"random"`` is
        reserved for the baseline.
    layers : sequence of str
        Module paths (``dict(model.named_modules())``); the CAV lives in the
        flattened output of each.
    classes : sequence of int
        Output indices; the inputs of class k are the images with label k.
    n_random, n_random_sets : int
        Size and number of the random counterexample sets, drawn from the
        positions in no concept; one more set of ``n_random`` is the
        baseline's random counterpart.
    seed : int
        Seeds the random sets (numpy Generator) and the CAV classifier.
    batch_size : int
        Images per forward / backward pass.
    device : str or torch.device, optional
        Defaults to the device of the model's parameters.

    Returns
    -------
    DataFrame
        One row per (concept, layer, class, random set), columns
        :data:`TABLE_COLUMNS`: ``tcav_score`` (fraction of the class inputs
        with a positive directional derivative, in [0, 1]), ``magnitude``
        (mean directional derivative along the unit CAV), ``cav_accuracy``
        (held-out accuracy of the CAV classifier), set sizes, and
        ``baseline`` (True for the rows of concept ``"random"``: the random
        counterpart against random set r). ``attrs["random_positions"]`` holds
        the drawn positions (``random_<r>`` and ``random_counterpart``).

    Raises
    ------
    ValueError
        On empty or invalid arguments, an unknown layer, a class without
        inputs, or fewer than ``n_random`` positions outside the concepts.
    """
    if not concept_positions:
        raise ValueError("concept_positions is empty: give at least one concept")
    if BASELINE in concept_positions:
        raise ValueError(f"concept name {BASELINE!r} is reserved for the random baseline; rename the concept")
    layers = list(layers)
    if not layers:
        raise ValueError("layers is empty: give at least one layer name")
    resolve_layers(model, layers)  # raises UnknownLayerError (a ValueError) with the valid names
    classes = [int(k) for k in classes]
    if not classes:
        raise ValueError("classes is empty: give at least one class index")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes contain duplicates: {classes}")
    n_random = check_int("n_random", n_random, minimum=2)
    n_random_sets = check_int("n_random_sets", n_random_sets, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)

    n = len(images)
    concepts = {str(name): _check_positions(str(name), pos, n) for name, pos in concept_positions.items()}
    inputs = {k: np.flatnonzero(images.labels == k) for k in classes}
    empty = [k for k, pos in inputs.items() if pos.size == 0]
    if empty:
        raise ValueError(f"classes {empty} have no images in the image set: nothing to score")
    in_concept = np.zeros(n, dtype=bool)
    for pos in concepts.values():
        in_concept[pos] = True
    pool = np.flatnonzero(~in_concept)
    if pool.size < n_random:
        raise ValueError(
            f"only {pool.size} images lie outside the concepts, fewer than n_random={n_random}: "
            "use a larger image set or a smaller n_random"
        )
    rng = np.random.default_rng(seed)
    random_sets = [np.sort(rng.choice(pool, n_random, replace=False)) for _ in range(n_random_sets)]
    counterpart = np.sort(rng.choice(pool, n_random, replace=False))

    dev = resolve_device(device) if device is not None else _model_device(model)
    model.to(dev)

    def concept(cid: int, pos: np.ndarray) -> Concept:
        # internal names: captum builds file paths from them
        return Concept(cid, f"c{cid}", _ConceptBatches(images, pos, inp, batch_size, dev))

    names = list(concepts)
    user = [concept(i, concepts[name]) for i, name in enumerate(names)]
    rand = [concept(len(names) + r, pos) for r, pos in enumerate(random_sets)]
    ref = concept(len(names) + n_random_sets, counterpart)
    experiments = [[c, rnd] for c in [*user, ref] for rnd in rand]
    labels_of = {id(c): name for c, name in zip(user, names, strict=True)} | {id(ref): BASELINE}

    sums: dict[tuple[int, str, int], np.ndarray] = {}  # (experiment, layer, class) -> [positive count, sum of S]
    accuracy: dict[tuple[int, str], float] = {}
    was_training = model.training
    model.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="conceptscope-tcav-") as tmp, warnings.catch_warnings():
            # captum 0.9's CAV.load names np.core (deprecated in numpy 2) on every CAV it re-reads
            warnings.filterwarnings("ignore", message="numpy.core is deprecated", category=DeprecationWarning)
            tcav = TCAV(model, layers, model_id=_MODEL_ID, classifier=SeededSGDClassifier(seed), save_path=tmp)
            cavs = tcav.compute_cavs(experiments)
            for e, exp in enumerate(experiments):
                key = "-".join(str(c.id) for c in exp)
                for layer in layers:
                    accuracy[e, layer] = float(cavs[key][layer].stats["accs"])
            for k in classes:
                for x in _ConceptBatches(images, inputs[k], inp, batch_size, dev):
                    scores = tcav.interpret(x, experiments, target=k)
                    for e, exp in enumerate(experiments):
                        key = "-".join(str(c.id) for c in exp)
                        for layer in layers:
                            got = scores[key][layer]
                            # sign_count is a float32 fraction of the batch: back to an exact count
                            count = round(float(got["sign_count"][0]) * x.shape[0])
                            pair = np.array([count, float(got["magnitude"][0]) * x.shape[0]])
                            sums[e, layer, k] = sums.get((e, layer, k), 0.0) + pair
    finally:
        model.train(was_training)

    rows = []
    for e, exp in enumerate(experiments):
        name = labels_of[id(exp[0])]
        for layer in layers:
            for k in classes:
                sign, mag = sums[e, layer, k] / inputs[k].size
                rows.append(
                    {
                        "concept": name,
                        "layer": layer,
                        "class": k,
                        "class_name": images.class_names[k] if k < len(images.class_names) else str(k),
                        "random_set": exp[1].id - len(names),
                        "tcav_score": float(sign),
                        "magnitude": float(mag),
                        "cav_accuracy": accuracy[e, layer],
                        "n_concept": len(concepts[name]) if name != BASELINE else n_random,
                        "n_random": n_random,
                        "n_inputs": int(inputs[k].size),
                        "baseline": name == BASELINE,
                    }
                )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table = table.sort_values(["baseline", "layer", "class", "random_set"], kind="stable", ignore_index=True)
    table.attrs["random_positions"] = {f"random_{r}": s.tolist() for r, s in enumerate(random_sets)} | {
        "random_counterpart": counterpart.tolist()
    }
    table.attrs["seed"] = int(seed)
    return table


def summarize_tcav(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over random sets per concept x layer x class, against the random baseline.

    Parameters
    ----------
    table : DataFrame
        Of :func:`tcav_scores`.

    Returns
    -------
    DataFrame
        One row per concept x layer x class (baseline rows excluded), columns
        :data:`SUMMARY_COLUMNS`: ``tcav_mean`` / ``tcav_std`` (std with
        ddof = 1; NaN for one random set), the same for ``magnitude``, the
        mean CAV accuracy, ``baseline_mean`` / ``baseline_std`` of the
        random-vs-random scores of the same layer and class, and ``p_value``
        of a two-sided two-sample t-test (``scipy.stats.ttest_ind``, equal
        variances) of the concept's TCAV scores against the baseline's. The
        p-value is NaN with fewer than two scores on either side or when both
        sides are constant and equal; when both are constant but differ it is 0.
    """
    from scipy.stats import ttest_ind

    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"not a tcav_scores table: columns {missing} are missing")
    base = table[table["baseline"]]
    baseline = {key: g["tcav_score"].to_numpy() for key, g in base.groupby(["layer", "class"], sort=False)}
    rows = []
    concepts = table[~table["baseline"]]
    for (name, layer, k), g in concepts.groupby(["concept", "layer", "class"], sort=False):
        scores = g["tcav_score"].to_numpy()
        ref = baseline.get((layer, k), np.empty(0))
        p = float("nan")
        if scores.size >= 2 and ref.size >= 2:
            if np.ptp(scores) == 0 and np.ptp(ref) == 0:
                p = float("nan") if scores[0] == ref[0] else 0.0
            else:
                with warnings.catch_warnings():  # a constant side warns of precision loss; the test still holds
                    warnings.filterwarnings("ignore", message="Precision loss", category=RuntimeWarning)
                    p = float(ttest_ind(scores, ref).pvalue)
        rows.append(
            {
                "concept": name,
                "layer": layer,
                "class": k,
                "class_name": g["class_name"].iloc[0],
                "n_random_sets": int(scores.size),
                "tcav_mean": float(scores.mean()),
                "tcav_std": float(scores.std(ddof=1)) if scores.size > 1 else float("nan"),
                "magnitude_mean": float(g["magnitude"].mean()),
                "magnitude_std": float(g["magnitude"].std(ddof=1)) if scores.size > 1 else float("nan"),
                "cav_accuracy_mean": float(g["cav_accuracy"].mean()),
                "baseline_mean": float(ref.mean()) if ref.size else float("nan"),
                "baseline_std": float(ref.std(ddof=1)) if ref.size > 1 else float("nan"),
                "p_value": p,
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
