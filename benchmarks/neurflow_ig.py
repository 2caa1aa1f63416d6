"""Benchmark: NeurFlow core neurons with :mod:`conceptscope.neurflow` vs. the authors' pipeline structure.

Model: ``local:resnet18_cifar`` on scikit-learn digits (32x32, grey). With
``--weights`` the saved model is loaded (:func:`conceptscope.models.load_model`);
otherwise it is trained here briefly (``--epochs`` 2, SGD lr 0.02, momentum
0.9, batch 64; seeded). Data: the test images predicted as ``--class-index``
(all of them unless ``--max-images``), cut into 59 patches each
(:func:`conceptscope.neurflow.make_patches`). Circuit, top two levels
(tau = ``--tau`` 16, k = ``--k`` 50, N = ``--steps`` 50):

- level 1: target = the class logit (block ``fc``), its concept = the top-k
  patches by logit; core neurons in ``layer4``;
- level 2: targets = those core neurons (block ``layer4``), concepts = top-k
  patches by spatial mean; core neurons in ``layer3``.

Both pipelines use Gauss-Legendre quadrature with N nodes (the authors' code
used captum's default), run one after the other in this process after an
untimed warm-up forward pass, and are timed from the patches to the core sets:

- ours: one forward pass over all patches (``--forward-batch`` 64 per pass,
  :func:`conceptscope.neurflow.concept_means`, as the pipeline) recording
  the spatial means of ``layer3``, ``layer4`` and ``fc`` (the cache, which
  gives every concept); per level the l-1 maps
  recomputed (:meth:`conceptscope.neurflow.BlockChain.prefix`) only for the
  union of the level's concept patches; :func:`conceptscope.neurflow.importance`
  on :meth:`~conceptscope.neurflow.BlockChain.between` with ``--batch-size``
  512 rows.
- authors' structure (re-implemented here): per level a forward pass from
  pixels over ALL patches (64 per pass) keeping the l-1 maps (and block l for
  the concepts), then per target captum ``IntegratedGradients`` on the same
  sub-network, 4 concept patches x N nodes (200 rows) per call.

Checks and figures printed:

1. exactness: the core sets of both pipelines are equal (asserted), and the
   largest deviation of the scores ``T`` relative to their maximum;
2. seconds of both pipelines;
3. adaptive steps (:func:`conceptscope.neurflow.adaptive_importance`, start 4,
   one core-set swap allowed, for each ``--rtol``, default 0.2 (the
   default) and 0.1) vs. the N-node Riemann-right result, per level: forward
   rows saved (ratio), final step counts and core-set overlap per target
   (mean / min of tau); goal at level 2: >= 4x fewer rows with >= 15 of 16
   shared. For context, level 2 with a fixed N = 8 and N = 16 against N.

The last line is ``ratio=<x>``: authors' seconds / our seconds (goal >= 1.5).

    python benchmarks/neurflow_ig.py [--weights results/models/resnet18_cifar/weights.pt] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from captum.attr import IntegratedGradients

from conceptscope import data, models
from conceptscope import neurflow as nf

LAYERS = ("layer3", "layer4", "fc")


def get_model(args: argparse.Namespace) -> tuple[torch.nn.Module, models.InputSpec]:
    """The saved model, or one trained briefly on digits."""
    if args.weights:
        model, inp, _ = models.load_model(args.weights, "cpu")
        print(f"model: {args.weights}")
        return model, inp
    model, inp = models.build_model("local:resnet18_cifar", n_classes=10, in_channels=1)
    train = data.load_split({"kind": "digits"}, "train", key="datasets.digits")
    t0 = time.perf_counter()
    models.train_model(
        model,
        train,
        None,
        inp,
        epochs=args.epochs,
        optimizer="sgd",
        lr=args.lr,
        momentum=0.9,
        batch_size=64,
        seed=args.seed,
        progress=False,
        log=lambda s: None,
    )
    print(f"model: local:resnet18_cifar trained on digits, {args.epochs} epochs ({time.perf_counter() - t0:.0f} s)")
    if args.save_weights:
        meta = {"spec": "local:resnet18_cifar", "n_classes": 10, "in_channels": 1}
        models.save_model(args.save_weights, model, inp, meta)
    return model.eval(), inp


def block_maps(chain: nf.BlockChain, x: torch.Tensor, block: str, batch: int) -> torch.Tensor:
    """Outputs of ``block`` for inputs ``x``, in batches."""
    with torch.no_grad():
        return torch.cat([chain.prefix(x[s : s + batch], block) for s in range(0, len(x), batch)])


def cores(scores: dict[int, torch.Tensor], tau: int) -> dict[int, list[int]]:
    """Core set (sorted channel list) per target from per-patch attributions."""
    return {a: sorted(nf.core_neurons(v.sum(0), tau).tolist()) for a, v in scores.items()}


def ours(
    model: torch.nn.Module, chain: nf.BlockChain, patches: torch.Tensor, c: int, args: argparse.Namespace
) -> tuple[dict, dict, dict[str, float]]:
    """Our pipeline: the cache pass, then per level maps for the concept union and shared IG."""
    times = {}
    t0 = time.perf_counter()
    means = nf.concept_means(model, patches, LAYERS, batch_size=args.forward_batch)
    times["cache"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    v1 = nf.top_k_patches(means["fc"], c, args.k)
    maps = block_maps(chain, patches[v1], "layer4", args.forward_batch)
    level1 = nf.importance(
        chain.between("layer4", "fc"),
        maps,
        {c: np.arange(len(v1))},
        n_steps=args.steps,
        method="gausslegendre",
        batch_size=args.batch_size,
    )
    targets = nf.core_neurons(level1[c].sum(0), args.tau).tolist()
    times["level1"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    concepts = {a: nf.top_k_patches(means["layer4"], a, args.k) for a in targets}
    union = np.unique(np.concatenate(list(concepts.values())))
    local = {a: np.searchsorted(union, v) for a, v in concepts.items()}
    maps3 = block_maps(chain, patches[union], "layer3", args.forward_batch)
    level2 = nf.importance(
        chain.between("layer3", "layer4"),
        maps3,
        local,
        n_steps=args.steps,
        method="gausslegendre",
        batch_size=args.batch_size,
    )
    times["level2"] = time.perf_counter() - t0
    times["union"] = len(union)
    inputs = {"maps1": maps, "concept1": {c: np.arange(len(v1))}, "maps2": maps3, "concepts2": local}
    return level1, level2, times | {"inputs": inputs}


def authors(
    model: torch.nn.Module, chain: nf.BlockChain, patches: torch.Tensor, c: int, args: argparse.Namespace
) -> tuple[dict, dict, dict[str, float]]:
    """The authors' structure: per level all patches from pixels, per-target captum IG in 4-patch calls."""
    modules = dict(model.named_modules())

    def from_pixels(keep: str, rank: str) -> tuple[torch.Tensor, np.ndarray]:
        """Full forward of all patches; the output of ``keep`` and the spatial means of ``rank``."""
        kept, ranked = [], []
        hooks = [
            modules[keep].register_forward_hook(lambda m, i, o: kept.append(o.detach().clone())),
            modules[rank].register_forward_hook(lambda m, i, o: ranked.append(nf.spatial_mean(o.detach()))),
        ]
        with torch.no_grad():
            for start in range(0, len(patches), args.forward_batch):
                model(patches[start : start + args.forward_batch])
        for h in hooks:
            h.remove()
        return torch.cat(kept), torch.cat(ranked).numpy()

    def per_target(sub: torch.nn.Module, maps: torch.Tensor, target: int, rows: np.ndarray) -> torch.Tensor:
        ig = IntegratedGradients(lambda z: nf.spatial_mean(sub(z)))
        parts = []
        for start in range(0, len(rows), 4):
            chunk = maps[rows[start : start + 4]]
            attr = ig.attribute(
                chunk,
                target=target,
                n_steps=args.steps,
                method="gausslegendre",
                internal_batch_size=len(chunk) * args.steps,
            )
            parts.append(attr.sum(dim=(2, 3)) if attr.ndim == 4 else attr)
        return torch.cat(parts)

    times = {}
    t0 = time.perf_counter()
    maps4, logits = from_pixels("layer4", "fc")
    v1 = nf.top_k_patches(logits, c, args.k)
    level1 = {c: per_target(chain.between("layer4", "fc"), maps4, c, v1)}
    targets = nf.core_neurons(level1[c].sum(0), args.tau).tolist()
    times["level1"] = time.perf_counter() - t0
    del maps4

    t0 = time.perf_counter()
    maps3, means4 = from_pixels("layer3", "layer4")
    sub = chain.between("layer3", "layer4")
    level2 = {a: per_target(sub, maps3, a, nf.top_k_patches(means4, a, args.k)) for a in targets}
    times["level2"] = time.perf_counter() - t0
    return level1, level2, times


def overlap(a: dict[int, list[int]], b: dict[int, list[int]]) -> list[int]:
    return [len(set(a[t]) & set(b[t])) for t in a]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="saved model (models.save_model); else train briefly")
    parser.add_argument("--save-weights", default=None, help="save the briefly trained model here")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--class-index", type=int, default=0, help="digit class c")
    parser.add_argument("--max-images", type=int, default=None, help="at most this many predicted-as-c images")
    parser.add_argument("--k", type=int, default=50, help="concept size")
    parser.add_argument("--tau", type=int, default=16, help="core neurons per target")
    parser.add_argument("--steps", type=int, default=50, help="IG nodes N")
    parser.add_argument("--batch-size", type=int, default=512, help="our IG rows per forward pass")
    parser.add_argument("--forward-batch", type=int, default=64, help="patches per plain forward pass (both)")
    parser.add_argument("--rtol", default="0.2,0.1", help="adaptive tolerances to report (first = the default)")
    parser.add_argument("--max-swaps", type=int, default=1, help="adaptive: core-set members estimates may differ in")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 images, k=10, N=8, tau=8")
    args = parser.parse_args()
    if args.quick:
        args.max_images, args.k, args.steps, args.tau = 4, 10, 8, 8
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model, inp = get_model(args)
    test = data.load_split({"kind": "digits"}, "test", key="datasets.digits")
    preds = models.predict(model, test, inp)
    print(f"test accuracy {float((preds == test.labels).mean()):.4f}")
    c = args.class_index
    positions = nf.class_patches(preds, c, args.max_images)
    images = inp.normalize(test.images(positions, inp.size, inp.channels))
    patches, table = nf.make_patches(images)
    chain = nf.BlockChain(model, LAYERS)
    print(
        f"class {c}: {len(positions)} images, {len(patches)} patches; tau={args.tau} k={args.k} N={args.steps} "
        f"(gausslegendre); torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    with torch.no_grad():  # warm-up (not timed): the first passes of a process are slower
        model(patches[: args.forward_batch])
    t0 = time.perf_counter()
    o1, o2, ot = ours(model, chain, patches, c, args)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    a1, a2, at = authors(model, chain, patches, c, args)
    authors_s = time.perf_counter() - t0

    # 1. exactness
    assert cores(o1, args.tau) == cores(a1, args.tau), "level 1 core sets differ"
    assert sorted(o2) == sorted(a2), "level 2 targets differ"
    assert cores(o2, args.tau) == cores(a2, args.tau), "level 2 core sets differ"
    dev = max(
        float((o[t].sum(0) - a[t].sum(0)).abs().max() / a[t].sum(0).abs().max())
        for o, a in ((o1, a1), (o2, a2))
        for t in a
    )
    pairs = sum(len(v) for v in ot["inputs"]["concepts2"].values())
    print(
        f"level 1: 1 target ({args.k} patches); level 2: {len(o2)} targets, {pairs} concept patches, "
        f"{ot['union']} distinct"
    )
    print(f"core sets identical to the per-target captum loop: True (max |dT| / max |T| = {dev:.2e})")

    # 2. time
    print(
        f"ours: {ours_s:.2f} s (cache {ot['cache']:.2f}, level 1 {ot['level1']:.2f}, level 2 {ot['level2']:.2f}; "
        f"batch {args.batch_size} rows)"
    )
    print(f"authors' structure: {authors_s:.2f} s (level 1 {at['level1']:.2f}, level 2 {at['level2']:.2f})")

    # 3. adaptive steps vs N nodes, Riemann right
    inputs = ot["inputs"]
    subs = {1: chain.between("layer4", "fc"), 2: chain.between("layer3", "layer4")}
    for level, maps, concepts in ((1, inputs["maps1"], inputs["concept1"]), (2, inputs["maps2"], inputs["concepts2"])):
        t0 = time.perf_counter()
        full = nf.importance(subs[level], maps, concepts, n_steps=args.steps, batch_size=args.batch_size)
        full_s = time.perf_counter() - t0
        if level == 2:  # context: fixed small step counts against N
            for n in (8, 16):
                fixed = nf.importance(subs[level], maps, concepts, n_steps=n, batch_size=args.batch_size)
                shared = overlap(cores(fixed, args.tau), cores(full, args.tau))
                print(
                    f"fixed N={n} level 2: {args.steps / n:.2f}x fewer rows; core overlap of {args.tau}: "
                    f"mean {np.mean(shared):.2f}, min {min(shared)}"
                )
        for rtol in [float(r) for r in args.rtol.split(",")]:
            t0 = time.perf_counter()
            adapt, report = nf.adaptive_importance(
                subs[level],
                maps,
                concepts,
                max_steps=args.steps,
                tau=args.tau,
                rtol=rtol,
                max_swaps=args.max_swaps,
                batch_size=args.batch_size,
            )
            adapt_s = time.perf_counter() - t0
            shared = overlap(cores(adapt, args.tau), cores(full, args.tau))
            counts = np.bincount(list(report["steps"].values()), minlength=args.steps + 1)
            steps = ", ".join(f"{n}: {int(counts[n])}" for n in np.flatnonzero(counts))
            print(
                f"adaptive level {level} rtol={rtol:g}: rows {report['evaluations']} vs {report['evaluations_full']} "
                f"at N={args.steps} ({report['evaluations_full'] / report['evaluations']:.2f}x fewer; "
                f"{adapt_s:.2f} s vs {full_s:.2f} s); targets per final step count {{{steps}}}; "
                f"core overlap of {args.tau}: mean {np.mean(shared):.2f}, min {min(shared)}"
            )
    print(f"ratio={authors_s / ours_s:.3f}")


if __name__ == "__main__":
    main()
