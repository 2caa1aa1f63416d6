"""The NAP rules' jobs, one function per rule of ``workflow/rules/naps.smk``: inputs -> library -> outputs.

The scripts in ``workflow/scripts/`` only unpack the ``snakemake`` object and
call these through :func:`conceptscope.runtime.run_job`. ``settings`` is the
rule's whole ``naps`` config section (built into :class:`NapSettings`, which
holds the defaults); ``dataset`` is ``{"id", "config"}`` as for
:func:`conceptscope.jobs.open_split`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import models
from ..jobs import open_split
from ..runtime import write_table
from .settings import NapSettings

__all__ = [
    "extract_naps",
    "fig6_disentanglement",
    "fig8_input_size",
    "fig14_side_by_side",
    "nap_claims",
    "nap_counts",
    "nap_figures",
    "nap_input_sizes",
    "nap_paper_comparison",
]

_log = logging.getLogger("conceptscope")

# the authors' names of the disentanglements (resources/nap_pattern_counts.csv, column "Layer aggregation")
_AUTHORS_METHODS = {
    "none": "NoAggregation",
    "max": "MaxAggregation",
    "min_max": "MinMaxAggregation",
    "mean": "MeanAggregation",
    "mean_std": "MeanStdAggregation",
}


def extract_naps(*, cache: str | Path, outputs: Sequence[str | Path], settings: Mapping[str, Any], device: str) -> None:
    """NAPs of one cached layer for every configured disentanglement; ``outputs`` in ``method_order``.

    Dense layers are never aggregated: their NAPs are computed once and written
    under every method name (the files say so in ``meta['aggregated']``).
    """
    from .. import activations
    from . import core

    s = NapSettings.from_config(settings)
    cached = activations.read_cache(cache)
    dev = models.resolve_device(device)
    done: dict[str, core.NapResult] = {}
    for method, path in zip(s.method_order, outputs, strict=True):
        key = "values" if cached.kind == "dense" else method
        if key not in done:
            X = core.disentangle(cached.arrays, cached.kind, method)
            done[key] = core.extract_naps(
                X,
                kind=cached.kind,
                method=method,
                unit_shape=cached.unit_shape,
                labels=cached.labels,
                predictions=cached.predictions,
                sample_ids=cached.sample_ids,
                normalization=s.normalization,
                max_precomputed=s.max_precomputed,
                device=dev,
                meta={k: cached.provenance.get(k) for k in ("model", "split", "dataset", "spec")}
                | {"layer": cached.layer, "aggregated": cached.kind != "dense"},
            )
            r = done[key]
            _log.info(
                "%s %s: %d features, %d NAPs, %d noise of %d, clustering %.2f s (%s)",
                cached.layer,
                method if cached.kind != "dense" else "dense (not aggregated)",
                r.meta["n_features"],
                r.n_naps,
                int((r.nap < 0).sum()),
                len(r.nap),
                r.meta["clustering_seconds"],
                r.meta["clustering_path"],
            )
        result = done[key]
        result.meta["method"] = method
        core.save_result(result, path)


def nap_input_sizes(*, cache: str | Path, csv: str | Path, settings: Mapping[str, Any], device: str) -> None:
    """NAP count of one layer for the first N inputs of the split, N in ``naps.input_size.sizes`` (paper Fig. 8)."""
    from .. import activations
    from . import core

    s = NapSettings.from_config(settings)
    method = s.input_size.method
    cached = activations.read_cache(cache)
    X = core.disentangle(cached.arrays, cached.kind, method)
    rows = []
    for n in sorted(s.input_size.sizes):
        if n > len(X):
            raise ValueError(
                f"input size {n} exceeds the {len(X)} cached inputs of {cache}; lower naps.input_size.sizes"
            )
        r = core.extract_naps(
            X[:n],
            kind=cached.kind,
            method=method,
            unit_shape=cached.unit_shape,
            labels=cached.labels[:n],
            predictions=cached.predictions[:n],
            sample_ids=cached.sample_ids[:n],
            normalization=s.normalization,
            max_precomputed=s.max_precomputed,
            device=models.resolve_device(device),
        )
        rows.append(
            {
                "model": cached.provenance.get("model"),
                "layer": cached.layer,
                "split": cached.provenance.get("split"),
                "method": method,
                "size": n,
                "n_naps": r.n_naps,
                "n_noise": int((r.nap < 0).sum()),
                "seconds": r.meta["clustering_seconds"],
            }
        )
        _log.info("%s %s first %d inputs: %d NAPs", cached.layer, method, n, r.n_naps)
    write_table(pd.DataFrame(rows), csv, index=False)


def nap_counts(
    files: Mapping[tuple[str, str], str | Path],
    layers: Sequence[str],
    *,
    n_permutations: int = NapSettings.purity_permutations,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (layer, method): NAP count, noise, inputs, clustering time, label purity; layers in probed order.

    ``label_purity``, ``purity_null_mean``, ``purity_null_q95`` and ``purity_p``
    are :func:`~conceptscope.naps.purity.purity_test` of the NAPs' true labels
    with ``n_permutations`` shuffles (seeded by ``seed``; NaN / 1.0 without NAPs).
    """
    from .core import load_result
    from .purity import purity_test

    rows = []
    for (layer, method), path in files.items():
        r = load_result(path)
        test = purity_test(r.nap, r.labels, n_permutations=n_permutations, seed=seed)
        rows.append(
            {
                "model": r.meta.get("model"),
                "layer": layer,
                "depth": layers.index(layer),
                "kind": r.meta["kind"],
                "method": method,
                "n_naps": r.n_naps,
                "n_noise": int((r.nap < 0).sum()),
                "n_inputs": len(r.nap),
                "clustering_seconds": r.meta["clustering_seconds"],
                "label_purity": test.purity,
                "purity_null_mean": test.null_mean,
                "purity_null_q95": test.null_q95,
                "purity_p": test.p_value,
            }
        )
    return pd.DataFrame(rows).sort_values(["depth", "method"], kind="stable").reset_index(drop=True)


def fig6_disentanglement(
    *,
    files: Mapping[tuple[str, str], str | Path],
    layers: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    csv: str | Path,
    png: str | Path,
) -> None:
    """Paper Fig. 6: NAP count per layer x disentanglement of one model, with each clustering's label purity (NAP-5)."""
    from .plots import plot_nap_counts

    s = NapSettings.from_config(settings)
    table = nap_counts(files, layers, n_permutations=s.purity_permutations, seed=seed)
    write_table(table, csv, index=False)
    plot_nap_counts(table, png)
    _log.info("\n%s", table.pivot(index="layer", columns="method", values="n_naps").reindex(layers).to_string())


def fig8_input_size(*, tables: Sequence[str | Path], csv: str | Path, png: str | Path) -> None:
    """Paper Fig. 8: NAP count against the number of inputs, per layer and split."""
    from .plots import plot_input_size

    table = pd.concat([pd.read_csv(p) for p in tables], ignore_index=True)
    write_table(table, csv, index=False)
    plot_input_size(table, png)
    _log.info("\n%s", table.pivot_table(index=["layer", "split"], columns="size", values="n_naps").to_string())


def _model_sizes(metrics: Sequence[str | Path], weights: Sequence[str | Path]) -> pd.DataFrame:
    """Per model: its test accuracy (``metrics.json``) and parameter count (the saved model rebuilt on CPU)."""
    import json

    rows = []
    for m_path, w_path in zip(metrics, weights, strict=True):
        m = json.loads(Path(m_path).read_text())
        model, _, _ = models.load_model(w_path, "cpu")
        acc = m.get("test_accuracy")
        rows.append(
            {
                "model": m["model"],
                "test_accuracy": float("nan") if acc is None else acc,
                "n_parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    return pd.DataFrame(rows, columns=["model", "test_accuracy", "n_parameters"])


def nap_claims(
    *,
    fig6: Sequence[str | Path],
    fig8: Sequence[str | Path],
    rows: str | Path,
    pairs: Sequence[Sequence[str]] = (),
    metrics: Sequence[str | Path] = (),
    weights: Sequence[str | Path] = (),
) -> None:
    """Claim rows NAP-1 to NAP-5 from the Fig. 6 and Fig. 8 tables, and (NAP-3) the paired models' accuracy and size.

    ``metrics`` and ``weights`` are the ``metrics.json`` and ``weights.pt`` of the models of ``pairs``
    (``naps.accuracy_pairs``), one each per model in the same order.
    """
    from ..claims import make_row, write_rows
    from .claims import nap_1, nap_2, nap_3, nap_4, nap_5

    counts = pd.concat([pd.read_csv(p) for p in fig6], ignore_index=True)
    sizes = pd.concat([pd.read_csv(p) for p in fig8], ignore_index=True) if fig8 else None
    out = [nap_1(counts), nap_4(counts), nap_5(counts)]
    out.append(nap_3(counts, _model_sizes(metrics, weights), [list(p) for p in pairs]))
    out.append(
        nap_2(sizes) if sizes is not None else make_row("NAP-2", "", "NOT RUN", "naps.input_size.models is empty")
    )
    write_rows(rows, sorted(out, key=lambda r: r["claim_id"]))
    for r in out:
        _log.info("%s %s: %s (%s)", r["claim_id"], r["verdict"], r["measured_value"], r["detail"])


def nap_figures(
    *,
    model_id: str,
    dataset: Mapping[str, Any],
    manifest: str | Path,
    files: Mapping[tuple[str, str], str | Path],
    layers: Sequence[str],
    settings: Mapping[str, Any],
    figures: Sequence[str | Path],
    browser: str | Path,
) -> None:
    """Galleries of one model (Fig. 1 per layer, Fig. 7, Fig. 9/10, in that order in ``figures``) and its browser.

    The NAPs are those of the model's NAP split (``naps.model_splits``, else
    ``naps.split``); Fig. 7 shows ``naps.fig7_layers[model_id]``, else the
    first probed layer.
    """
    from .browser import write_browser
    from .core import load_result
    from .views import plot_aggregation_gallery, plot_follow_image, plot_nap_gallery

    s = NapSettings.from_config(settings)
    gallery_method, per_nap = s.gallery_method, s.per_nap
    split = s.split_of(model_id)
    fig7_layer = s.fig7_layers.get(model_id, layers[0])
    images = open_split(dataset, split, manifest)
    results = {key: load_result(path) for key, path in files.items()}
    names = images.class_names
    n_layers = len(layers)
    for layer, png in zip(layers, figures[:n_layers], strict=True):
        plot_nap_gallery(
            results[(layer, gallery_method)],
            images,
            png,
            top_naps=s.top_naps,
            per_nap=per_nap,
            class_names=names,
            title=f"{model_id} {layer} ({gallery_method}): top NAPs by persistence",
        )
    plot_aggregation_gallery(
        {m: results[(fig7_layer, m)] for m in s.method_order},
        images,
        figures[n_layers],
        per_nap=per_nap,
        class_names=names,
        title=f"{model_id} {fig7_layer}: NAPs per disentanglement",
    )
    for position, png in zip(s.follow_images, figures[n_layers + 1 :], strict=True):
        if position >= len(images):
            raise ValueError(f"naps.follow_images: position {position} is beyond the {len(images)} images of {split}")
        plot_follow_image(
            {layer: results[(layer, gallery_method)] for layer in layers},
            images,
            position,
            png,
            per_nap=per_nap,
            class_names=names,
        )
    write_browser(browser, model_id, results, images, class_names=names)
    _log.info("%s: %d galleries, browser %s", model_id, len(figures), browser)


def fig14_side_by_side(
    *,
    a: str | Path,
    b: str | Path,
    manifest: str | Path,
    png: str | Path,
    pair: int,
    dataset: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> None:
    """Paper Fig. 14: the NAPs of the same images in the two models of ``naps.compare[pair]``, side by side.

    The images are ``naps.follow_images``; both results must hold the same inputs.
    """
    from .core import load_result
    from .views import plot_models_side_by_side

    s = NapSettings.from_config(settings)
    ma, la, mb, lb = s.compare[int(pair)]
    names = [f"{ma} {la}", f"{mb} {lb}"]
    positions = list(s.follow_images)
    images = open_split(dataset, s.split_of(ma), manifest)
    ra, rb = load_result(a), load_result(b)
    if not np.array_equal(ra.sample_ids, rb.sample_ids):
        raise ValueError(f"{a} and {b} hold different inputs; Fig. 14 compares the same images")
    plot_models_side_by_side(ra, rb, images, positions, png, names=tuple(names), per_nap=s.per_nap)
    _log.info("%s vs %s for images %s -> %s", names[0], names[1], positions, png)


def nap_paper_comparison(*, tables: Sequence[str | Path], settings: Mapping[str, Any], csv: str | Path) -> None:
    """Our Fig. 6 NAP counts beside the authors' (resources/nap_pattern_counts.csv), per model x layer x method.

    ``naps.reference`` names, per model, the authors' model and layers.
    """
    from importlib import resources

    reference = NapSettings.from_config(settings).reference
    with resources.files("conceptscope").joinpath("resources/nap_pattern_counts.csv").open() as fh:
        theirs = pd.read_csv(fh)
    theirs = theirs[
        (theirs["Minimum pattern size"] == 5)
        & (theirs["Minimum samples"] == 5)
        & (theirs["Method"] == "leaf")
        & (theirs["Split"].isin(["test", "validation"]))
    ]
    rows = []
    for path in tables:
        ours = pd.read_csv(path)
        model = str(ours["model"].iloc[0])
        ref = reference[model]
        for _, r in ours.iterrows():
            their_layer = ref["layers"].get(r["layer"])
            match = theirs[
                (theirs["Model"] == ref["model"])
                & (theirs["Layer"] == their_layer)
                & (theirs["Layer aggregation"] == _AUTHORS_METHODS[r["method"]])
            ]
            match = match[match["Input size"] == match["Input size"].max()] if len(match) else match
            rows.append(
                {
                    "model": model,
                    "layer": r["layer"],
                    "method": r["method"],
                    "ours": int(r["n_naps"]),
                    "authors_model": ref["model"],
                    "authors_layer": their_layer,
                    "authors": int(match["Number of patterns"].iloc[0]) if len(match) else None,
                    "authors_inputs": int(match["Input size"].iloc[0]) if len(match) else None,
                    "our_inputs": int(r["n_inputs"]),
                }
            )
    write_table(pd.DataFrame(rows), csv, index=False)
    _log.info("compared %d rows with the authors' counts", len(rows))
