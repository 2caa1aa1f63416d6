"""One function per workflow rule: read inputs, call the library, write outputs.

The scripts in ``workflow/scripts/`` only unpack the ``snakemake`` object and
call these, so every rule's work can be run and tested without Snakemake.
Parameters arrive as plain values (from the rule's ``params``), never from a
global config.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import data, models
from .workflow import provenance

__all__ = ["cache_activations", "gather_claims", "plot_training", "prepare_split", "train_model"]

_log = logging.getLogger("conceptscope")


def _open_split(
    dataset: Mapping[str, Any], dataset_id: str, split: str, manifest: str | Path | None = None
) -> data.ImageSet:
    """Open a split; if a manifest is given, check the data still matches it."""
    images = data.load_split(dataset, split, key=f"datasets.{dataset_id}")
    if manifest is not None:
        ids = pd.read_csv(manifest)["sample_id"].to_numpy()
        if not np.array_equal(ids, images.sample_ids):
            raise RuntimeError(
                f"datasets.{dataset_id} split {split} no longer matches {manifest} (the data changed); "
                f"delete {manifest} and rerun"
            )
    return images


def prepare_split(dataset: Mapping[str, Any], dataset_id: str, split: str, manifest: str | Path) -> None:
    """Write the split's manifest: position, sample id, label, class name (and superclass)."""
    images = _open_split(dataset, dataset_id, split)
    table = pd.DataFrame(
        {
            "position": np.arange(len(images)),
            "sample_id": images.sample_ids,
            "label": images.labels,
            "class_name": [images.class_names[i] for i in images.labels],
        }
    )
    if images.superclass_labels is not None and images.superclass_names is not None:
        table["superclass"] = [images.superclass_names[i] for i in images.superclass_labels]
    table.to_csv(manifest, index=False)
    counts = table["class_name"].value_counts().sort_index()
    _log.info(
        "%s/%s: %d samples, %d classes, per class %d..%d",
        dataset_id,
        split,
        len(table),
        images.n_classes,
        counts.min(),
        counts.max(),
    )


def train_model(
    *,
    model_id: str,
    spec: str,
    dataset: Mapping[str, Any],
    dataset_id: str,
    pretrained: bool,
    input_size: Sequence[int] | None,
    train: Mapping[str, Any],
    seed: int,
    device: str,
    manifests: Mapping[str, str],
    weights: str | Path,
    metrics: str | Path,
) -> None:
    """Build (and, if ``train.epochs`` > 0, train) a model; save weights and metrics.json.

    Settings left null in ``train`` take the paper's value for the architecture
    (:data:`conceptscope.models.TRAINING_DEFAULTS`); timm / torchvision models
    use Adam 1e-4, batch 32 when fine-tuned.
    """
    dev = models.resolve_device(device)
    train_split, eval_split = train["train_split"], train["eval_split"]
    eval_set = _open_split(dataset, dataset_id, eval_split, manifests.get(eval_split))
    train_set = _open_split(dataset, dataset_id, train_split, manifests.get(train_split)) if train["epochs"] else None
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # weight initialization
        model, inp = models.build_model(
            spec,
            n_classes=eval_set.n_classes,
            in_channels=eval_set.channels,
            pretrained=pretrained,
            input_size=tuple(input_size) if input_size else None,
        )
    model.to(dev)
    settings = models.training_settings(spec, train)
    _log.info("%s (%s) on %s, settings %s, %d epochs", model_id, spec, dev, settings, train["epochs"])
    t0 = time.perf_counter()
    history = []
    if train["epochs"]:
        history = models.train_model(
            model, train_set, eval_set, inp, epochs=train["epochs"], seed=seed, log=_log.info, **settings
        )
    seconds = time.perf_counter() - t0
    out_classes = _n_outputs(model, inp, dev)
    result = {
        "model": model_id,
        "spec": spec,
        "dataset": dataset_id,
        "train_accuracy": models.evaluate_accuracy(model, train_set, inp) if train_set is not None else None,
        "test_accuracy": _final_accuracy(history, model, eval_set, inp) if out_classes == eval_set.n_classes else None,
        "eval_split": eval_split,
        "train_seconds": seconds,
        "history": history,
        "provenance": provenance(
            settings=settings,
            epochs=train["epochs"],
            seed=seed,
            device=str(dev),
            pretrained=pretrained,
            input=asdict(inp),
        ),
    }
    if out_classes != eval_set.n_classes:
        _log.info("model has %d outputs, data set %d classes: no test accuracy", out_classes, eval_set.n_classes)
    meta = {
        "spec": spec,
        "n_classes": out_classes,
        "in_channels": eval_set.channels,
        "pretrained": pretrained,
        "model": model_id,
    }
    models.save_model(weights, model.cpu(), inp, meta)
    Path(metrics).write_text(json.dumps(result, indent=2, default=list))
    _log.info("train acc %s, test acc %s", result["train_accuracy"], result["test_accuracy"])


def _final_accuracy(history: list[dict[str, float]], model, images: data.ImageSet, inp: models.InputSpec) -> float:
    """Accuracy after training: the last epoch's evaluation (same weights), else evaluated now."""
    return history[-1]["test_acc"] if history else models.evaluate_accuracy(model, images, inp)


@torch.no_grad()
def _n_outputs(model: torch.nn.Module, inp: models.InputSpec, device: torch.device) -> int:
    model.eval()
    return int(model(torch.zeros(1, inp.channels, *inp.size, device=device)).shape[1])


def plot_training(*, metrics: str | Path, png: str | Path, csv: str | Path) -> None:
    """Training curve and accuracies of one model (figure + the table behind it)."""
    m = json.loads(Path(metrics).read_text())
    table = pd.DataFrame(m["history"], columns=["epoch", "train_loss", "train_acc_running", "test_acc", "seconds"])
    table.to_csv(csv, index=False)
    from . import plots  # matplotlib only where a figure is drawn

    plots.plot_training(table, m, png)
    _log.info("%s: %d epochs plotted, test accuracy %s -> %s", m["model"], len(table), m["test_accuracy"], png)


def cache_activations(
    *,
    model_id: str,
    weights: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    layers: Sequence[str],
    outputs: Sequence[str],
    full_maps: Sequence[str],
    batch_size: int,
    device: str,
    seed: int,
) -> None:
    """One forward pass of a trained model over one split; one HDF5 file per layer."""
    from . import activations

    dev = models.resolve_device(device)
    model, inp, meta = models.load_model(weights, dev)
    images = _open_split(dataset, dataset_id, split, manifest)
    paths = dict(zip(layers, outputs, strict=True))
    t0 = time.perf_counter()
    shapes = activations.cache_activations(
        model,
        inp,
        images,
        paths,
        full_layers=full_maps,
        batch_size=batch_size,
        model_name=model_id,
        provenance=provenance(
            model=model_id,
            spec=meta["spec"],
            dataset=dataset_id,
            split=split,
            device=str(dev),
            batch_size=batch_size,
            seed=seed,
            full_maps=list(full_maps),
        ),
    )
    _log.info(
        "%s/%s: %d samples, %d layers in %.1f s", model_id, split, len(images), len(layers), time.perf_counter() - t0
    )
    for layer, shape in shapes.items():
        _log.info("  %s: output %s", layer, shape)


def gather_claims(
    *, row_files: Sequence[str], not_run_reasons: Mapping[str, str], csv: str | Path, md: str | Path
) -> None:
    """The reproduction table over every claim id (rows produced so far, else NOT RUN)."""
    from . import claims

    table = claims.gather_claims(row_files, not_run_reasons)
    table.to_csv(csv, index=False)
    claims.write_claims_markdown(table, md)
    _log.info("claims: %s", table["verdict"].value_counts().to_dict())


# -- NAPs ----------------------------------------------------------------------------------------


def extract_naps(
    *,
    cache: str | Path,
    outputs: Mapping[str, str | Path],
    normalization: str,
    max_precomputed: int,
    device: str,
) -> None:
    """NAPs of one cached layer for every disentanglement in ``outputs`` (method -> file).

    Dense layers are never aggregated: their NAPs are computed once and written
    under every method name (the files say so in ``meta['aggregated']``).
    """
    from . import activations, naps

    cached = activations.read_cache(cache)
    dev = models.resolve_device(device)
    done: dict[str, naps.NapResult] = {}
    for method, path in outputs.items():
        key = "values" if cached.kind == "dense" else method
        if key not in done:
            X = naps.disentangle(cached.arrays, cached.kind, method)
            done[key] = naps.extract_naps(
                X,
                kind=cached.kind,
                method=method,
                unit_shape=cached.unit_shape,
                labels=cached.labels,
                predictions=cached.predictions,
                sample_ids=cached.sample_ids,
                normalization=normalization,
                max_precomputed=max_precomputed,
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
        naps.save_result(result, path)


def nap_input_sizes(
    *,
    cache: str | Path,
    csv: str | Path,
    sizes: Sequence[int],
    method: str,
    normalization: str,
    max_precomputed: int,
    device: str,
) -> None:
    """NAP count of one layer for the first N inputs of the split, N in ``sizes`` (paper Fig. 8)."""
    from . import activations, naps

    cached = activations.read_cache(cache)
    X = naps.disentangle(cached.arrays, cached.kind, method)
    rows = []
    for n in sorted(sizes):
        if n > len(X):
            raise ValueError(
                f"input size {n} exceeds the {len(X)} cached inputs of {cache}; lower naps.input_size.sizes"
            )
        r = naps.extract_naps(
            X[:n],
            kind=cached.kind,
            method=method,
            unit_shape=cached.unit_shape,
            labels=cached.labels[:n],
            predictions=cached.predictions[:n],
            sample_ids=cached.sample_ids[:n],
            normalization=normalization,
            max_precomputed=max_precomputed,
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
    pd.DataFrame(rows).to_csv(csv, index=False)


def nap_counts(files: Mapping[tuple[str, str], str | Path], layers: Sequence[str]) -> pd.DataFrame:
    """One row per (layer, method): NAP count, noise, inputs, clustering time; layers in probed order."""
    from . import naps

    rows = []
    for (layer, method), path in files.items():
        r = naps.load_result(path)
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
            }
        )
    return pd.DataFrame(rows).sort_values(["depth", "method"], kind="stable").reset_index(drop=True)


def fig6_disentanglement(
    *, files: Mapping[tuple[str, str], str | Path], layers: Sequence[str], csv: str | Path, png: str | Path
) -> None:
    """Paper Fig. 6: NAP count per layer x disentanglement of one model."""
    from . import plots

    table = nap_counts(files, layers)
    table.to_csv(csv, index=False)
    plots.plot_nap_counts(table, png)
    _log.info("\n%s", table.pivot(index="layer", columns="method", values="n_naps").reindex(layers).to_string())


def fig8_input_size(*, tables: Sequence[str | Path], csv: str | Path, png: str | Path) -> None:
    """Paper Fig. 8: NAP count against the number of inputs, per layer and split."""
    from . import plots

    table = pd.concat([pd.read_csv(p) for p in tables], ignore_index=True)
    table.to_csv(csv, index=False)
    plots.plot_input_size(table, png)
    _log.info("\n%s", table.pivot_table(index=["layer", "split"], columns="size", values="n_naps").to_string())


def nap_claims(*, fig6: Sequence[str | Path], fig8: Sequence[str | Path], rows: str | Path) -> None:
    """Claim rows NAP-1, NAP-2 and NAP-4 from the Fig. 6 and Fig. 8 tables."""
    from . import claims

    counts = pd.concat([pd.read_csv(p) for p in fig6], ignore_index=True)
    sizes = pd.concat([pd.read_csv(p) for p in fig8], ignore_index=True) if fig8 else None
    out = [claims.nap_1(counts), claims.nap_4(counts)]
    out.append(
        claims.nap_2(sizes)
        if sizes is not None
        else claims.make_row("NAP-2", "", "NOT RUN", "naps.input_size.models is empty")
    )
    claims.write_rows(rows, sorted(out, key=lambda r: r["claim_id"]))
    for r in out:
        _log.info("%s %s: %s (%s)", r["claim_id"], r["verdict"], r["measured_value"], r["detail"])


def nap_figures(
    *,
    model_id: str,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    files: Mapping[tuple[str, str], str | Path],
    layers: Sequence[str],
    methods: Sequence[str],
    gallery_method: str,
    fig7_layer: str,
    follow_images: Sequence[int],
    top_naps: int,
    per_nap: int,
    figures: Sequence[str | Path],
    browser: str | Path,
) -> None:
    """Galleries of one model (Fig. 1 per layer, Fig. 7, Fig. 9/10, in that order in ``figures``) and its browser."""
    from . import nap_views, naps

    images = _open_split(dataset, dataset_id, split, manifest)
    results = {key: naps.load_result(path) for key, path in files.items()}
    names = images.class_names
    n_layers = len(layers)
    for layer, png in zip(layers, figures[:n_layers], strict=True):
        nap_views.plot_nap_gallery(
            results[(layer, gallery_method)],
            images,
            png,
            top_naps=top_naps,
            per_nap=per_nap,
            class_names=names,
            title=f"{model_id} {layer} ({gallery_method}): top NAPs by persistence",
        )
    nap_views.plot_aggregation_gallery(
        {m: results[(fig7_layer, m)] for m in methods},
        images,
        figures[n_layers],
        per_nap=per_nap,
        class_names=names,
        title=f"{model_id} {fig7_layer}: NAPs per disentanglement",
    )
    for position, png in zip(follow_images, figures[n_layers + 1 :], strict=True):
        if position >= len(images):
            raise ValueError(f"naps.follow_images: position {position} is beyond the {len(images)} images of {split}")
        nap_views.plot_follow_image(
            {layer: results[(layer, gallery_method)] for layer in layers},
            images,
            position,
            png,
            per_nap=per_nap,
            class_names=names,
        )
    nap_views.write_browser(browser, model_id, results, images, class_names=names)
    _log.info("%s: %d galleries, browser %s", model_id, len(figures), browser)


def fig14_side_by_side(
    *,
    a: str | Path,
    b: str | Path,
    manifest: str | Path,
    png: str | Path,
    names: Sequence[str],
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    positions: Sequence[int],
    per_nap: int,
) -> None:
    """Paper Fig. 14: the NAPs of the same images in two models, side by side."""
    from . import nap_views, naps

    images = _open_split(dataset, dataset_id, split, manifest)
    ra, rb = naps.load_result(a), naps.load_result(b)
    if not np.array_equal(ra.sample_ids, rb.sample_ids):
        raise ValueError(f"{a} and {b} hold different inputs; Fig. 14 compares the same images")
    nap_views.plot_models_side_by_side(ra, rb, images, list(positions), png, names=tuple(names), per_nap=per_nap)
    _log.info("%s vs %s for images %s -> %s", names[0], names[1], list(positions), png)


def nap_paper_comparison(*, tables: Sequence[str | Path], reference: Mapping[str, Any], csv: str | Path) -> None:
    """Our Fig. 6 NAP counts beside the authors' (resources/nap_pattern_counts.csv), per model x layer x method."""
    from importlib import resources

    methods = {
        "none": "NoAggregation",
        "max": "MaxAggregation",
        "min_max": "MinMaxAggregation",
        "mean": "MeanAggregation",
        "mean_std": "MeanStdAggregation",
    }
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
                & (theirs["Layer aggregation"] == methods[r["method"]])
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
    pd.DataFrame(rows).to_csv(csv, index=False)
    _log.info("compared %d rows with the authors' counts", len(rows))


# -- coupled NMF ---------------------------------------------------------------------------------


def _nmf_matrices(caches: Sequence[str | Path]) -> tuple[list[np.ndarray], list[str], np.ndarray, np.ndarray]:
    """Activation matrices A_j (rows x N, float32) of cached layers, their names, labels and predictions."""
    from . import activations

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


def fit_coupled_nmf(
    *,
    weights: str | Path,
    caches: Sequence[str | Path],
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    settings: Mapping[str, Any],
    seed: int,
    device: str,
    result: str | Path,
    losses: str | Path,
) -> None:
    """Coupled NMF of a model: pixel matrices D_i (one per input channel) and layer matrices A_j share F."""
    from . import nmf

    D, A, layers, labels, predictions, inp = _coupled_inputs(weights, caches, dataset, dataset_id, split, manifest)
    dev = models.resolve_device(device)
    t0 = time.perf_counter()
    res = nmf.fit_coupled(
        [torch.from_numpy(d) for d in D],
        [torch.from_numpy(a) for a in A],
        **_solver_kwargs(settings, seed, device),
    )
    seconds = time.perf_counter() - t0
    torch.save(
        {
            "P": [p.cpu() for p in res.P],
            "O": [o.cpu() for o in res.O],
            "F": res.F.cpu(),
            "layers": layers,
            "labels": labels,
            "predictions": predictions,
            "image_size": list(inp.size),
            "channels": inp.channels,
            "meta": provenance(
                settings=dict(settings),
                seed=seed,
                device=str(dev),
                seconds=seconds,
                n_iter=res.n_iter,
                converged=res.converged,
                split=split,
                dataset=dataset_id,
            ),
        },
        result,
    )
    pd.DataFrame({"iteration": range(len(res.losses)), "objective": res.losses}).to_csv(losses, index=False)
    _log.info(
        "coupled NMF: %d pixel + %d layer matrices (%s), N=%d, d=%d: %d iterations in %.1f s, objective %.4g -> %.4g",
        len(D),
        len(A),
        ", ".join(layers),
        D[0].shape[1],
        settings["n_components"],
        res.n_iter,
        seconds,
        res.losses[0],
        res.losses[-1],
    )


def _solver_kwargs(settings: Mapping[str, Any], seed: int, device: str) -> dict[str, Any]:
    """Keyword arguments of the NMF solvers from the rule's settings (config ``nmf``)."""
    keys = ("n_components", "max_iter", "tol", "lam_p", "lam_o", "lam_f", "init")
    return {k: settings[k] for k in keys} | {
        "seed": seed,
        "dtype": getattr(torch, settings["dtype"]),
        "device": models.resolve_device(device),
    }


def _coupled_inputs(
    weights: str | Path,
    caches: Sequence[str | Path],
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str], np.ndarray, np.ndarray, models.InputSpec]:
    """Pixel matrices D_i (H*W x N per input channel, [0, 1], at the model's input) and layer matrices A_j."""
    _, inp, _ = models.load_model(weights)
    images = _open_split(dataset, dataset_id, split, manifest)
    x = images.images(np.arange(len(images)), inp.size, inp.channels).numpy()  # (N, C, H, W)
    D = [np.ascontiguousarray(x[:, i].reshape(len(x), -1).T) for i in range(x.shape[1])]
    A, layers, labels, predictions = _nmf_matrices(caches)
    return D, A, layers, labels, predictions, inp


def nmf_group_sparse(
    *,
    weights: str | Path,
    caches: Sequence[str | Path],
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    settings: Mapping[str, Any],
    lam_group: float,
    seed: int,
    device: str,
    csv: str | Path,
) -> None:
    """Paper Table 2: the group-sparse F variant (example groups = classes) and its factor table."""
    from . import nmf
    from . import nmf_analysis as na

    D, A, layers, labels, _, _ = _coupled_inputs(weights, caches, dataset, dataset_id, split, manifest)
    images = _open_split(dataset, dataset_id, split, manifest)
    res = nmf.fit_group_sparse(
        [torch.from_numpy(d) for d in D],
        [torch.from_numpy(a) for a in A],
        torch.from_numpy(labels),
        lam_group=lam_group,
        **_solver_kwargs(settings, seed, device),
    )
    table = na.factor_table(
        res.F.cpu().numpy(), labels, images.class_names, images.superclass_labels, images.superclass_names
    )
    table.to_csv(csv, index=False)
    _log.info("group-sparse NMF (lambda %.3g), %d iterations:\n%s", lam_group, res.n_iter, table.to_string())


def fit_single_nmf(
    *, cache: str | Path, settings: Mapping[str, Any], seed: int, device: str, result: str | Path
) -> None:
    """Activations-only NMF of one layer (the paper's per-layer factorization)."""
    from . import nmf

    A, layers, _, _ = _nmf_matrices([cache])
    res = nmf.fit_single(
        torch.from_numpy(A[0]),
        **_solver_kwargs(settings, seed, device),
    )
    torch.save({"O": [o.cpu() for o in res.O], "F": res.F.cpu(), "layers": layers, "losses": res.losses}, result)
    _log.info(
        "single NMF of %s: %d iterations, objective %.4g -> %.4g", layers[0], res.n_iter, res.losses[0], res.losses[-1]
    )


def nmf_figures(
    *,
    model_id: str,
    coupled: str | Path,
    singles: Sequence[str | Path],
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    eigen_k: int,
    knn: int,
    per_factor: int,
    fig2: str | Path,
    fig3_csv: str | Path,
    fig3_png: str | Path,
    table1_csv: str | Path,
    table1_png: str | Path,
    fig4: str | Path,
    fig5: str | Path,
) -> None:
    """Fig. 2 (similarity heatmaps), Fig. 3 (eigenvalue means), Table 1, Fig. 4-5 of one model."""
    from . import nmf_analysis as na

    res = torch.load(coupled, weights_only=False)
    images = _open_split(dataset, dataset_id, split, manifest)
    F = res["F"].numpy()
    sims = {layer: na.cosine_similarity(o.numpy()) for layer, o in zip(res["layers"], res["O"], strict=True)}
    rows = [
        {
            "model": model_id,
            "source": "coupled",
            "layer": layer,
            "depth": i,
            "k": eigen_k,
            "eigen_mean": na.eigen_mean(s, eigen_k),
            "diagonal_dominance": na.diagonal_dominance(s),
        }
        for i, (layer, s) in enumerate(sims.items())
    ]
    for i, path in enumerate(singles):
        single = torch.load(path, weights_only=False)
        s = na.cosine_similarity(single["O"][0].numpy())
        rows.append(
            {
                "model": model_id,
                "source": "single",
                "layer": single["layers"][0],
                "depth": i,
                "k": eigen_k,
                "eigen_mean": na.eigen_mean(s, eigen_k),
                "diagonal_dominance": na.diagonal_dominance(s),
            }
        )
    table = pd.DataFrame(rows)
    na.plot_similarity_heatmaps(sims, fig2)
    table.to_csv(fig3_csv, index=False)
    na.plot_eigen_means(table, fig3_png)
    factors = na.factor_table(F, images.labels, images.class_names, images.superclass_labels, images.superclass_names)
    factors.to_csv(table1_csv, index=False)
    na.plot_factor_table(factors, F, images, table1_png, per_factor=per_factor)
    P = [p.numpy() for p in res["P"]]
    na.plot_masks_and_neighbours(
        F, P, images, images.labels, images.class_names, fig4, k=knn, size=tuple(res["image_size"])
    )
    curve = na.accuracy_vs_impurity(F, images.labels, np.asarray(res["predictions"]), k=knn)
    na.plot_accuracy_vs_impurity(curve, fig5)
    _log.info("\n%s", table.to_string())


def nmf_tcav(
    *,
    weights: str | Path,
    coupled: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    factors: int,
    concept_size: int,
    classes: Sequence[int] | None,
    n_random: int,
    n_random_sets: int,
    seed: int,
    device: str,
    csv: str | Path,
    png: str | Path,
) -> None:
    """TCAV of the latent concepts (top images of the heaviest factors) against classes (paper Fig. 6)."""
    from . import nmf_analysis as na
    from . import tcav

    model, inp, _ = models.load_model(weights, models.resolve_device(device))
    images = _open_split(dataset, dataset_id, split, manifest)
    res = torch.load(coupled, weights_only=False)
    F = res["F"].numpy()
    heaviest = np.argsort(-F.sum(1), kind="stable")[:factors]
    top = na.top_examples(F, concept_size)
    concepts = {f"factor{k}": [int(p) for p in top[k]] for k in heaviest}
    table = tcav.tcav_scores(
        model,
        inp,
        images,
        concepts,
        list(res["layers"]),
        list(classes) if classes is not None else list(range(images.n_classes)),
        n_random=n_random,
        n_random_sets=n_random_sets,
        seed=seed,
    )
    summary = tcav.summarize_tcav(table)
    summary.to_csv(csv, index=False)
    tcav.plot_tcav(summary, png)
    _log.info("\n%s", summary.to_string())


def nmf_claims(*, fig3: Sequence[str | Path], rows: str | Path) -> None:
    """Claim rows NMF-1 and NMF-2 from the Fig. 3 tables."""
    from . import claims

    table = pd.concat([pd.read_csv(p) for p in fig3], ignore_index=True)
    table = table[table["source"] == "coupled"]
    out = [claims.nmf_1(table), claims.nmf_2(table)]
    claims.write_rows(rows, out)
    for r in out:
        _log.info("%s %s: %s (%s)", r["claim_id"], r["verdict"], r["measured_value"], r["detail"])


# -- NAS -----------------------------------------------------------------------------------------


def nas_summary(
    *,
    cache: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    per_class: int,
    n_ranges: int,
    aggregation: str,
    taxonomy: Mapping[str, float],
    seed: int,
    summary: str | Path,
    table: str | Path,
) -> None:
    """Layer summary (ranges x class counts per unit) and the neuron taxonomy of one cached layer."""
    from . import activations, nas

    cached = activations.read_cache(cache)
    images = _open_split(dataset, dataset_id, split, manifest)
    if not np.array_equal(cached.sample_ids, images.sample_ids):
        raise RuntimeError(f"{cache} was cached from other samples than {manifest}; delete it and rerun")
    pos = nas.sample_per_class(cached.labels, per_class, seed=seed)
    values = nas.unit_activations(cached.arrays, cached.kind, aggregation)[pos]
    meta = {k: cached.provenance.get(k) for k in ("model", "spec", "dataset", "split")}
    meta |= {"layer": cached.layer, "kind": cached.kind, "aggregation": aggregation, "per_class": per_class}
    meta |= {"seed": seed, "taxonomy": dict(taxonomy)}
    s = nas.summarize_layer(values, cached.labels[pos], images.class_names, m=n_ranges, positions=pos, meta=meta)
    tax = nas.classify_units(s, **taxonomy)
    nas.save_summary(s, summary)
    tax.to_csv(table, index=False)
    counts = {t: int(tax[t].sum()) for t in nas.NEURON_TYPES}
    _log.info("%s: %d units over %d images; %s", cached.layer, s.n_units, len(pos), counts)


def nas_layer_views(
    *,
    summary: str | Path,
    table: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    max_rows: int,
    thresholds: Sequence[int],
    per_type: int,
    max_per_range: int,
    png: str | Path,
    html: str | Path,
    neurons: str | Path,
) -> None:
    """The layer summary (PNG, capped at ``max_rows`` units, and the full HTML page) and the neuron views.

    ``neurons`` is a folder: one PNG (+ CSV) per unit picked by
    :func:`nas_views.select_neurons` and an ``index.csv`` of type, unit, strength and file.
    """
    from . import nas, nas_views

    s = nas.load_summary(summary)
    tax = pd.read_csv(table)
    title = f"{s.meta.get('model')} {s.meta.get('layer')} ({s.meta.get('split')})"
    nas_views.plot_layer_summary(s, png, taxonomy=tax, max_rows=max_rows, thresholds=thresholds, title=title)
    nas_views.write_layer_summary_html(s, html, taxonomy=tax, thresholds=thresholds, title=title)
    images = _open_split(dataset, dataset_id, split, manifest)
    picked = nas_views.select_neurons(tax, per_type)
    folder = Path(neurons)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for unit, types in picked.groupby("unit", sort=False)["type"]:
        name = f"unit{unit}.png"
        nas_views.plot_neuron(
            s,
            int(unit),
            images,
            folder / name,
            max_per_range=max_per_range,
            title=f"{title} unit {unit}: {', '.join(types)}",
        )
        files.append(name)
    picked["file"] = picked["unit"].map(lambda u: f"unit{u}.png")
    picked.to_csv(folder / "index.csv", index=False)
    _log.info("%s: summary of %d units, %d neuron views", title, s.n_units, len(files))


def nas_taxonomy(
    *,
    model_id: str,
    layers: Sequence[str],
    summaries: Sequence[str | Path],
    tables: Sequence[str | Path],
    csv: str | Path,
    png: str | Path,
) -> None:
    """Units per neuron type per layer of one model (CSV and bar chart), with the summaries' consistency check."""
    from . import nas, nas_views

    rows = []
    for layer, spath, tpath in zip(layers, summaries, tables, strict=True):
        s = nas.load_summary(spath)
        tax = pd.read_csv(tpath)
        n = s.values.shape[0]
        consistent = bool(np.all(s.counts.sum((1, 2)) == n) and len(tax) == s.n_units)
        for t in nas.NEURON_TYPES:
            rows.append(
                {
                    "model": model_id,
                    "layer": layer,
                    "type": t,
                    "count": int(tax[t].sum()),
                    "n_units": s.n_units,
                    "n_images": n,
                    "consistent": consistent,
                }
            )
    counts = pd.DataFrame(rows)
    counts.to_csv(csv, index=False)
    nas_views.plot_taxonomy_counts(counts, png, title=f"{model_id}: neuron types per layer (NAS)")
    _log.info(
        "%s taxonomy:\n%s",
        model_id,
        counts.pivot(index="layer", columns="type", values="count")
        .loc[list(layers), list(nas.NEURON_TYPES)]
        .to_string(),
    )


def nas_claims(*, counts: Sequence[str | Path], expected: Mapping[str, Sequence[str]], rows: str | Path) -> None:
    """Claim row NAS-1 from the taxonomy count tables."""
    from . import claims

    table = pd.concat([pd.read_csv(p) for p in counts], ignore_index=True) if counts else pd.DataFrame()
    row = claims.nas_1(table, expected)
    claims.write_rows(rows, [row])
    _log.info("%s %s: %s", row["claim_id"], row["verdict"], row["measured_value"])


# -- NeurFlow ------------------------------------------------------------------------------------


def _class_images(
    cache: str | Path, images: data.ImageSet, inp: models.InputSpec, class_index: int, max_images: int | None
) -> tuple[np.ndarray, torch.Tensor]:
    """Positions of the images the model predicts as the class (from the activation cache) and
    those images fitted to the model input, not yet normalized, in [0, 1]."""
    from . import activations, neurflow

    cached = activations.read_cache(cache, keys=[])
    if not np.array_equal(cached.sample_ids, images.sample_ids):
        raise RuntimeError(f"{cache} was cached from other samples than the split; delete it and rerun")
    pos = neurflow.class_patches(cached.predictions, class_index, max_images)
    if pos.size == 0:
        raise ValueError(
            f"no image of {images.name}/{images.split} is predicted as class {class_index}; "
            "pick another class in neurflow.classes"
        )
    return pos, images.images(pos, inp.size, inp.channels)


def neurflow_circuit(
    *,
    model_id: str,
    weights: str | Path,
    cache: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    split: str,
    manifest: str | Path,
    class_index: int,
    layers: Sequence[str],
    max_images: int,
    settings: Mapping[str, Any],
    batch_size: Mapping[str, int],
    device: str,
    circuit: str | Path,
    arrays: str | Path,
) -> None:
    """The NeurFlow circuit of one class: ``circuit`` (JSON) and the per-level arrays (``arrays``, torch.save)."""
    from . import neurflow_circuit as nc

    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = _open_split(dataset, dataset_id, split, manifest)
    pos, x = _class_images(cache, images, inp, class_index, max_images)
    s = dict(settings) | {"batch_size": int(batch_size["cuda" if dev.type == "cuda" else "cpu"])}
    res = nc.build_circuit(
        model,
        inp.normalize(x),
        class_index,
        layers,
        settings=s,
        image_ids=images.sample_ids[pos].tolist(),
        progress=True,
    )
    c = res.circuit | {
        "model": model_id,
        "class_name": images.class_names[class_index],
        "dataset": dataset_id,
        "split": split,
        "positions": pos.tolist(),
        "device": str(dev),
    }
    Path(circuit).write_text(json.dumps(c, indent=1))
    torch.save(
        {
            "levels": res.levels,
            "groups": {k: [asdict(g) for g in v] for k, v in res.groups.items()},
            "semantic": {k: [asdict(g) for g in v] for k, v in res.semantic.items()},
            "patch_max": res.patch_max,
            "positions": pos,
        },
        arrays,
    )
    rows = sum(lv["evaluations"] for lv in res.levels)
    _log.info(
        "%s class %d: %d images, %d patches, %d nodes, %d edges, %d IG forward rows, %.1f s on %s",
        model_id,
        class_index,
        len(pos),
        c["n_patches"],
        len(c["nodes"]),
        len(c["edges"]),
        rows,
        res.seconds,
        dev,
    )


def _circuit_patch_images(
    circuit: Mapping[str, Any], images: data.ImageSet, inp: models.InputSpec
) -> dict[int, np.ndarray]:
    """Pixels of the circuit's shown patches (crops of the fitted, unnormalized images), patch id -> (C, H, W)."""
    from . import neurflow

    pos = np.asarray(circuit["positions"], dtype=np.int64)
    needed = sorted({int(v["image"]) for v in circuit["patches"].values()})
    x = images.images(pos[needed], inp.size, inp.channels)
    patches, table = neurflow.make_patches(x)
    per_image = len(table) // len(needed)
    out = {}
    for key, v in circuit["patches"].items():
        r = needed.index(int(v["image"])) * per_image + int(key) % per_image
        row = table.iloc[r]
        if [int(row["top"]), int(row["left"]), int(row["height"]), int(row["width"])] != list(v["box"]):
            raise RuntimeError(f"patch {key}: its box {v['box']} does not match the patches cut now; rerun the circuit")
        img = patches[r].numpy()
        out[int(key)] = img[0] if img.shape[0] == 1 else img[:3].transpose(1, 2, 0)
    return out


def neurflow_views(
    *,
    circuit: str | Path,
    weights: str | Path,
    dataset: Mapping[str, Any],
    dataset_id: str,
    manifest: str | Path,
    per_group: int,
    png: str | Path,
    html: str | Path,
    labelling: str | Path,
) -> None:
    """The circuit figure (paper Fig. 7 style), its HTML view, and the concept-labelling export."""
    from . import neurflow_views as nv

    c = json.loads(Path(circuit).read_text())
    _, inp, _ = models.load_model(weights, "cpu")
    images = _open_split(dataset, dataset_id, c["split"], manifest)
    pix = _circuit_patch_images(c, images, inp)
    title = f"{c['model']}: circuit of class {c['class_name']} ({c['n_images']} images, {c['n_patches']} patches)"
    nv.plot_circuit(c, pix, png, per_group=per_group, title=title)
    nv.write_circuit_html(c, pix, html)
    index = nv.write_labelling_export(c, pix, labelling)
    _log.info(
        "%s: %d nodes, %d edges; labelling export %d folders", title, len(c["nodes"]), len(c["edges"]), len(index)
    )


def neurflow_evaluate(
    *,
    circuit: str | Path,
    arrays: str | Path,
    weights: str | Path,
    caches: Mapping[str, str | Path],
    dataset: Mapping[str, Any],
    dataset_id: str,
    manifest: str | Path,
    n_random: int,
    debug_images: int,
    seed: int,
    device: str,
    masking: str | Path,
    debug: str | Path,
    png: str | Path,
) -> None:
    """Masking each neuron group against as many random neurons (paper Sect. 5.1, Fig. 9) and the
    debugging metric M of the split's images against every group (App. F)."""
    from . import activations, neurflow_circuit, neurflow_groups, plots

    c = json.loads(Path(circuit).read_text())
    saved = torch.load(arrays, weights_only=False)
    dev = models.resolve_device(device)
    model, inp, _ = models.load_model(weights, dev)
    images = _open_split(dataset, dataset_id, c["split"], manifest)
    pos = np.asarray(c["positions"], dtype=np.int64)
    x = inp.normalize(images.images(pos, inp.size, inp.channels))
    cls = int(c["class_index"])
    tables = []
    for layer in c["layers"][1:]:  # the top layer's group is the class logit itself
        groups = [n["neurons"] for n in c["nodes"] if n["layer"] == layer]
        t = neurflow_circuit.masking_effect(model, x, cls, layer, groups, n_random=n_random, seed=seed)
        tables.append(t.assign(layer=layer, node=[f"{layer}/g{g}" for g in t["group"]]))
    mask = pd.concat(tables, ignore_index=True).assign(model=c["model"], class_index=cls)
    mask.to_csv(masking, index=False)
    plots.plot_masking(
        mask, png, title=f"{c['model']} class {c['class_name']}: masking a neuron group vs random neurons"
    )
    # debugging metric: images labelled or predicted as the class, correct ones first
    rows = []
    for layer in c["layers"]:
        cached = activations.read_cache(caches[layer])
        acts = cached.arrays["mean" if "mean" in cached.arrays else "values"]
        pick = np.flatnonzero((cached.labels == cls) | (cached.predictions == cls))
        order = np.argsort(cached.labels[pick] != cached.predictions[pick], kind="stable")
        pick = np.sort(pick[order][:debug_images])
        ref = saved["patch_max"][layer]
        for n in (n for n in c["nodes"] if n["layer"] == layer):
            usable = [u for u in n["neurons"] if ref[u] > 0]
            if not usable:
                continue
            m = neurflow_groups.debugging_metric(acts[pick], usable, ref)
            rows += [
                {
                    "layer": layer,
                    "node": n["id"],
                    "position": int(p),
                    "label": int(cached.labels[p]),
                    "prediction": int(cached.predictions[p]),
                    "M": float(v),
                    "neurons_used": len(usable),
                    "neurons": len(n["neurons"]),
                }
                for p, v in zip(pick, m, strict=True)
            ]
    pd.DataFrame(rows).to_csv(debug, index=False)
    _log.info(
        "%s class %d masking:\n%s", c["model"], cls, mask[["node", "n_neurons", "drop", "random_drop_mean", "ratio"]]
    )


def neurflow_claims(*, masking: Sequence[str | Path], rows: str | Path) -> None:
    """Claim row NF-12 from the masking tables; the other NeurFlow claims are not computed by the suite."""
    from . import claims

    table = pd.concat([pd.read_csv(p) for p in masking], ignore_index=True) if masking else pd.DataFrame()
    row = claims.nf_12(table)
    claims.write_rows(rows, [row])
    _log.info("%s %s: %s", row["claim_id"], row["verdict"], row["measured_value"])
