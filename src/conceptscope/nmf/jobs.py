"""The coupled-NMF paper's jobs, one function per workflow rule (``workflow/rules/nmf.smk``).

Each rule passes the whole config section ``nmf`` as ``settings`` (built into
:class:`~conceptscope.nmf.settings.NmfSettings` here) and its data set as
``dataset`` (``{"id", "config"}``, opened with :func:`conceptscope.jobs.open_split`
on ``settings.split``). The scripts in ``workflow/scripts/`` call these through
:func:`conceptscope.runtime.run_job`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import activations, models
from ..claims import write_rows
from ..data import ImageSet
from ..jobs import open_split
from ..runtime import atomic_path, provenance, write_table
from . import analysis, solvers, tcav, views
from .claims import nmf_1, nmf_2, nmf_3, nmf_4, nmf_5
from .settings import NmfSettings

__all__ = ["fit_coupled_nmf", "fit_single_nmf", "nmf_claims", "nmf_figures", "nmf_group_sparse", "nmf_tcav"]

_log = logging.getLogger("conceptscope")

# the solver options a config sets (n_components ... init); seed and device come from the top-level config
_SOLVER_SETTINGS = tuple(
    f.name for f in fields(solvers.SolverOptions) if f.name in {g.name for g in fields(NmfSettings)}
)


def _solver_settings(s: NmfSettings) -> dict[str, Any]:
    """The settings' solver options, by name (also recorded as the fit's provenance)."""
    return {name: getattr(s, name) for name in _SOLVER_SETTINGS}


def _solver_options(s: NmfSettings, seed: int, device: str) -> dict[str, Any]:
    """Keyword arguments of the solvers (:class:`~conceptscope.nmf.solvers.SolverOptions`)."""
    return _solver_settings(s) | {"seed": seed, "device": models.resolve_device(device)}


def _nmf_matrices(caches: Sequence[str | Path]) -> tuple[list[np.ndarray], list[str], np.ndarray, np.ndarray]:
    """Activation matrices A_j (rows x N, float32) of cached layers, their names, labels and predictions."""
    mats, names = [], []
    for path in caches:
        c = activations.read_cache(path, keys=["full"])
        a = c.arrays["full"]
        if a.min() < 0:
            raise ValueError(
                f"{path}: layer {c.layer} has negative activations ({a.min():.3g}); coupled NMF needs "
                "non-negative matrices: factor layers after a ReLU (set nmf.layers)"
            )
        mats.append(np.ascontiguousarray(a.T, dtype=np.float32))
        names.append(c.layer)
    return mats, names, c.labels, c.predictions


def _tensors(mats: Sequence[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(m) for m in mats]


def _block_names(n_channels: int, layers: Sequence[str]) -> list[str]:
    """Names of the blocks in the solvers' order: ``pixels`` (``pixels[c]`` per channel when several), layers."""
    pixels = ["pixels"] if n_channels == 1 else [f"pixels[{c}]" for c in range(n_channels)]
    return pixels + list(layers)


def _residual_table(
    names: Sequence[str], n_pixels: int, res: solvers.CoupledNMFResult, rows: Sequence[int]
) -> pd.DataFrame:
    """One row per block: ``block``, ``kind`` (pixels / layer), ``rows``, ``frobenius_norm`` (||X||_F),
    ``relative_residual`` (||X - W F||_F / ||X||_F, float64; 1 = the all-zero reconstruction) and ``block_scaling``."""
    return pd.DataFrame(
        {
            "block": list(names),
            "kind": ["pixels"] * n_pixels + ["layer"] * (len(names) - n_pixels),
            "rows": [int(r) for r in rows],
            "frobenius_norm": res.block_norms,
            "relative_residual": res.residuals,
            "block_scaling": res.block_scaling,
        }
    )


def _residual_text(names: Sequence[str], residuals: Sequence[float]) -> str:
    return ", ".join(f"{name} {r:.3f}" for name, r in zip(names, residuals, strict=True))


@dataclass
class _CoupledFit:
    """A model's coupled NMF as a job ran it: settings, data, the fitted result and what the provenance records."""

    settings: NmfSettings
    D: list[np.ndarray]  # pixel matrices, H*W x N per input channel
    A: list[np.ndarray]  # layer matrices, C*H*W x N per factored layer
    layers: list[str]
    labels: np.ndarray
    predictions: np.ndarray
    inp: models.InputSpec
    images: ImageSet
    result: solvers.CoupledNMFResult
    seconds: float
    seed: int
    device: torch.device
    dataset_id: str


def _fit_model(
    *,
    weights: str | Path,
    caches: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    group_sparse: bool = False,
) -> _CoupledFit:
    """Fit the coupled NMF of a model (``group_sparse``: with the group-sparse F of Table 2, groups = classes).

    Pixel matrices D_i (H*W x N per input channel, [0, 1], at the model's input) and the layer
    matrices A_j of the activation ``caches`` share F.
    """
    s = NmfSettings.from_config(settings)
    _, inp, _ = models.load_model(weights)
    images = open_split(dataset, s.split, manifest)
    if s.knn >= len(images):  # Fig. 4-5 read knn latent neighbours of each image: fail here, not after the fit
        raise ValueError(
            f"nmf.knn = {s.knn} latent neighbours, but the {s.split} split of {dataset['id']} has "
            f"{len(images)} images; set nmf.knn below {len(images)}"
        )
    x = images.images(np.arange(len(images)), inp.size, inp.channels).numpy()  # (N, C, H, W)
    D = [np.ascontiguousarray(x[:, i].reshape(len(x), -1).T) for i in range(x.shape[1])]
    A, layers, labels, predictions = _nmf_matrices(caches)
    options = _solver_options(s, seed, device)
    t0 = time.perf_counter()
    if group_sparse:
        res = solvers.fit_group_sparse(
            _tensors(D), _tensors(A), torch.from_numpy(labels), lam_group=s.lam_group, **options
        )
    else:
        res = solvers.fit_coupled(_tensors(D), _tensors(A), **options)
    seconds = time.perf_counter() - t0
    return _CoupledFit(
        s, D, A, layers, labels, predictions, inp, images, res, seconds, seed, options["device"], dataset["id"]
    )


def fit_coupled_nmf(*, result: str | Path, losses: str | Path, residuals: str | Path, **inputs: Any) -> None:
    """Coupled NMF of a model: pixel matrices D_i (one per input channel) and layer matrices A_j share F.

    ``inputs``: ``weights``, ``caches``, ``dataset``, ``manifest``, ``settings``, ``seed``, ``device``
    (see ``_fit_model``). Writes ``result`` (P, O, F in the original scale, layers, labels,
    predictions, input size, ``blocks`` with their ``residuals``, ``block_norms`` and the
    ``block_scaling``, provenance), ``losses`` (the objective per sweep) and ``residuals`` (CSV, one
    row per block: see ``_residual_table``).
    """
    fit = _fit_model(**inputs)
    res = fit.result
    names = _block_names(len(fit.D), fit.layers)
    with atomic_path(result) as tmp:
        torch.save(
            {
                "P": [p.cpu() for p in res.P],
                "O": [o.cpu() for o in res.O],
                "F": res.F.cpu(),
                "layers": fit.layers,
                "labels": fit.labels,
                "predictions": fit.predictions,
                "image_size": list(fit.inp.size),
                "channels": fit.inp.channels,
                "blocks": names,
                "residuals": res.residuals,
                "block_norms": res.block_norms,
                "block_scaling": res.block_scaling,
                "meta": provenance(
                    settings=_solver_settings(fit.settings),
                    seed=fit.seed,
                    device=str(fit.device),
                    seconds=fit.seconds,
                    n_iter=res.n_iter,
                    converged=res.converged,
                    split=fit.settings.split,
                    dataset=fit.dataset_id,
                ),
            },
            tmp,
        )
    write_table(pd.DataFrame({"iteration": range(len(res.losses)), "objective": res.losses}), losses, index=False)
    write_table(_residual_table(names, len(fit.D), res, [x.shape[0] for x in fit.D + fit.A]), residuals, index=False)
    _log.info(
        "coupled NMF: %d pixel + %d layer matrices (%s), N=%d, d=%d: %d iterations in %.1f s, objective %.4g -> %.4g; "
        "block scaling %s, relative residuals ||X - W F|| / ||X||: %s",
        len(fit.D),
        len(fit.A),
        ", ".join(fit.layers),
        fit.D[0].shape[1],
        fit.settings.n_components,
        res.n_iter,
        fit.seconds,
        res.losses[0],
        res.losses[-1],
        res.block_scaling,
        _residual_text(names, res.residuals),
    )


def nmf_group_sparse(*, csv: str | Path, **inputs: Any) -> None:
    """Paper Table 2: the group-sparse F variant (example groups = classes, weight ``lam_group``), its factor table.

    ``inputs`` as for :func:`fit_coupled_nmf`. The table's label-permutation null (``class_coherent``, claim
    NMF-5) is seeded with ``seed``.
    """
    fit = _fit_model(**inputs, group_sparse=True)
    images = fit.images
    table = analysis.factor_table(
        fit.result.F.cpu().numpy(),
        fit.labels,
        images.class_names,
        images.superclass_labels,
        images.superclass_names,
        seed=fit.seed,
    )
    write_table(table, csv, index=False)
    _log.info(
        "group-sparse NMF (lambda %.3g, block scaling %s), %d iterations, relative residuals %s:\n%s",
        fit.settings.lam_group,
        fit.result.block_scaling,
        fit.result.n_iter,
        _residual_text(_block_names(len(fit.D), fit.layers), fit.result.residuals),
        table.to_string(),
    )


def fit_single_nmf(
    *, cache: str | Path, settings: Mapping[str, Any], seed: int, device: str, result: str | Path
) -> None:
    """Activations-only NMF of one layer (the paper's per-layer factorization)."""
    s = NmfSettings.from_config(settings)
    A, layers, _, _ = _nmf_matrices([cache])
    res = solvers.fit_single(torch.from_numpy(A[0]), **_solver_options(s, seed, device))
    with atomic_path(result) as tmp:
        torch.save(
            {
                "O": [o.cpu() for o in res.O],
                "F": res.F.cpu(),
                "layers": layers,
                "losses": res.losses,
                "residuals": res.residuals,
                "block_norms": res.block_norms,
                "block_scaling": res.block_scaling,
            },
            tmp,
        )
    _log.info(
        "single NMF of %s: %d iterations, objective %.4g -> %.4g, relative residual %.4f (block scaling %s)",
        layers[0],
        res.n_iter,
        res.losses[0],
        res.losses[-1],
        res.residuals[0],
        res.block_scaling,
    )


def _eigen_row(
    model_id: str, source: str, layer: str, depth: int, k: int, S: np.ndarray, residual: float, scaling: str
) -> dict[str, Any]:
    """A row of the Fig. 3 table: eigenvalue mean and diagonal dominance of a layer's factor similarity ``S``.

    Also the layer block's relative residual ||A - O F|| / ||A|| and the block scaling of the fit it came from.
    """
    return {
        "model": model_id,
        "source": source,
        "layer": layer,
        "depth": depth,
        "k": k,
        "eigen_mean": analysis.eigen_mean(S, k),
        "diagonal_dominance": analysis.diagonal_dominance(S),
        "relative_residual": residual,
        "block_scaling": scaling,
    }


def _load_fit(path: str | Path) -> dict[str, Any]:
    """A saved coupled or single fit, checked to carry the block residuals (written since issue #12)."""
    res = torch.load(path, weights_only=False)
    missing = [key for key in ("residuals", "block_scaling") if key not in res]
    if missing:
        raise ValueError(f"{path} lacks {missing}: it was written by an older version; rerun its fit rule")
    return res


def nmf_figures(
    *,
    model_id: str,
    coupled: str | Path,
    singles: Sequence[str | Path],
    dataset: Mapping[str, Any],
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    fig2: str | Path,
    fig3_csv: str | Path,
    fig3_png: str | Path,
    table1_csv: str | Path,
    table1_png: str | Path,
    fig4: str | Path,
    purity_csv: str | Path,
    fig5: str | Path,
    fig5_csv: str | Path,
) -> None:
    """Fig. 2 (similarity heatmaps), Fig. 3 (eigenvalue means), Table 1, Fig. 4-5 of one model.

    Besides the figures: ``table1_csv`` (:func:`~conceptscope.nmf.analysis.factor_table`, claims NMF-3 and
    NMF-5), ``purity_csv`` (one row: ``model`` and :func:`~conceptscope.nmf.analysis.neighbour_purity` of the
    ``knn`` latent neighbours, claim NMF-4) and ``fig5_csv`` (the accuracy-vs-impurity curve drawn in ``fig5``).
    ``seed`` seeds the label permutations of both nulls.
    """
    s = NmfSettings.from_config(settings)
    eigen_k = s.eigen_k_of(model_id)
    res = _load_fit(coupled)
    images = open_split(dataset, s.split, manifest)
    F = res["F"].numpy()
    scaling = res["block_scaling"]
    n_pixels = len(res["P"])
    layer_res = dict(zip(res["layers"], res["residuals"][n_pixels:], strict=True))
    sims = {layer: analysis.cosine_similarity(o.numpy()) for layer, o in zip(res["layers"], res["O"], strict=True)}
    rows = [
        _eigen_row(model_id, "coupled", layer, i, eigen_k, S, layer_res[layer], scaling)
        for i, (layer, S) in enumerate(sims.items())
    ]
    for i, path in enumerate(singles):
        single = _load_fit(path)
        S = analysis.cosine_similarity(single["O"][0].numpy())
        rows.append(
            _eigen_row(
                model_id, "single", single["layers"][0], i, eigen_k, S, single["residuals"][0], single["block_scaling"]
            )
        )
    table = pd.DataFrame(rows)
    pixel_res = res["residuals"][:n_pixels]
    note = views.pixel_residual_note(pixel_res, scaling)
    views.plot_similarity_heatmaps(sims, fig2, residuals=layer_res, note=note)
    write_table(table, fig3_csv, index=False)
    coupled_res = ", ".join(f"{layer} {r:.2f}" for layer, r in layer_res.items())
    views.plot_eigen_means(table, fig3_png, note=f"block scaling {scaling}; coupled ||A - OF||/||A||: {coupled_res}")
    factors = analysis.factor_table(
        F, images.labels, images.class_names, images.superclass_labels, images.superclass_names, seed=seed
    )
    write_table(factors, table1_csv, index=False)
    views.plot_factor_table(factors, F, images, table1_png, per_factor=s.per_factor)
    P = [p.numpy() for p in res["P"]]
    views.plot_masks_and_neighbours(
        F, P, images, images.labels, images.class_names, fig4, k=s.knn, size=tuple(res["image_size"]), note=note
    )
    nbrs = analysis.all_latent_neighbours(F, s.knn)  # one kNN for Fig. 5 and the NMF-4 purity
    purity = analysis.neighbour_purity(F, images.labels, k=s.knn, seed=seed, neighbours=nbrs)
    purity = pd.DataFrame([{"model": model_id} | purity])
    write_table(purity, purity_csv, index=False)
    curve = analysis.accuracy_vs_impurity(F, images.labels, np.asarray(res["predictions"]), k=s.knn, neighbours=nbrs)
    views.plot_accuracy_vs_impurity(curve, fig5)
    write_table(curve, fig5_csv, index=False)
    _log.info("%s\n%s\nlatent-neighbour purity:\n%s", note, table.to_string(), purity.to_string(index=False))


def nmf_tcav(
    *,
    weights: str | Path,
    coupled: str | Path,
    dataset: Mapping[str, Any],
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    csv: str | Path,
    png: str | Path,
) -> None:
    """TCAV of the latent concepts (top images of the heaviest factors) against classes (paper Fig. 6)."""
    s = NmfSettings.from_config(settings)
    t = s.tcav
    model, inp, _ = models.load_model(weights, models.resolve_device(device))
    images = open_split(dataset, s.split, manifest)
    res = torch.load(coupled, weights_only=False)
    F = res["F"].numpy()
    heaviest = np.argsort(-F.sum(1), kind="stable")[: t.factors]
    top = analysis.top_examples(F, t.concept_size)
    concepts = {f"factor{k}": [int(p) for p in top[k]] for k in heaviest}
    table = tcav.tcav_scores(
        model,
        inp,
        images,
        concepts,
        list(res["layers"]),
        list(t.classes) if t.classes is not None else list(range(images.n_classes)),
        n_random=t.n_random,
        n_random_sets=t.n_random_sets,
        seed=seed,
    )
    summary = tcav.summarize_tcav(table)
    write_table(summary, csv, index=False)
    views.plot_tcav(summary, png)
    _log.info("\n%s", summary.to_string())


def nmf_claims(
    *,
    fig3: Sequence[str | Path],
    table1: Sequence[str | Path],
    purity: Sequence[str | Path],
    table2: Sequence[str | Path],
    settings: Mapping[str, Any],
    rows: str | Path,
) -> None:
    """Claim rows NMF-1 to NMF-5.

    NMF-1, NMF-2 from the Fig. 3 tables, NMF-3 from the Table 1 factor tables, NMF-4 from the neighbour-purity
    tables, NMF-5 from the group-sparse Table 2 factor tables (none when ``nmf.lam_group`` is 0) beside Table 1.
    ``table1``, ``purity`` and ``table2`` list one file per model of ``settings.models``, in that order.
    """
    s = NmfSettings.from_config(settings)
    table = pd.concat([pd.read_csv(p) for p in fig3], ignore_index=True)
    table = table[table["source"] == "coupled"]
    table1s = _per_model(s.models, table1)
    table2s = _per_model(s.models, table2) if table2 else {}
    out = [
        nmf_1(table),
        nmf_2(table),
        nmf_3(table1s),
        nmf_4(_per_model(s.models, purity)),
        nmf_5(table2s, table1s, s.lam_group),
    ]
    write_rows(rows, out)
    for r in out:
        _log.info("%s %s: %s (%s)", r["claim_id"], r["verdict"], r["measured_value"], r["detail"])


def _per_model(model_ids: Sequence[str], paths: Sequence[str | Path]) -> dict[str, pd.DataFrame]:
    """The CSV ``paths`` read, by model (one path per model, in order)."""
    if len(paths) != len(model_ids):
        raise ValueError(f"{len(paths)} files for {len(model_ids)} models {list(model_ids)}: {list(paths)}")
    return {m: pd.read_csv(p) for m, p in zip(model_ids, paths, strict=True)}
