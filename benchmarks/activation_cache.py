"""Benchmark: building the activation cache vs. one bare forward pass over the same data.

Two cases, each timed in this run (best of ``--repeats``, cases interleaved):

1. ``local:resnet18_cifar`` on the digits test split (450 images at 32x32),
   probing layer1..layer4, avgpool and fc (the default suite's layers).
2. ``timm:resnet50`` (random weights) on 256 random 224x224 images, probing
   the NAP paper's layers (maxpool, layer1.2, layer2.3, layer3.5, layer4.2, fc).

"bare" = the same batches through ``model(x)`` under ``no_grad``, data
preparation included in both. "cache" = :func:`conceptscope.activations.cache_activations`
writing one HDF5 file per layer. Prints each case's seconds and ratio; the
last line ``ratio=<x>`` is the worse of the two (goal <= 1.3).

    python benchmarks/activation_cache.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from conceptscope import activations, data, models


def _random_images(n: int, size: int, seed: int) -> data.ImageSet:
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, size, size, generator=gen)
    return data.ImageSet(
        name="random",
        split="test",
        labels=np.zeros(n, dtype=np.int64),
        class_names=["none"],
        sample_ids=np.arange(n),
        channels=3,
        loader=lambda pos, _size: pixels[torch.from_numpy(pos)],
    )


def _case(spec: str, images: data.ImageSet, layers: list[str], batch_size: int):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model, inp = models.build_model(spec, n_classes=10, in_channels=images.channels)
    model.eval()

    @torch.no_grad()
    def bare() -> None:
        for x, _, _ in inp.batches(images, batch_size):
            model(x)

    def cache() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            paths = {layer: Path(tmp) / f"{layer}.h5" for layer in layers}
            activations.cache_activations(model, inp, images, paths, batch_size=batch_size, progress=False)

    return bare, cache


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    digits = data.load_split({"kind": "digits"}, "test", key="datasets.digits")
    cases = {
        "local:resnet18_cifar, digits test (450 x 32 px)": _case(
            "local:resnet18_cifar", digits, ["layer1", "layer2", "layer3", "layer4", "avgpool", "fc"], 128
        ),
        "timm:resnet50, 256 random 224 px images": _case(
            "timm:resnet50",
            _random_images(256, 224, seed=0),
            ["maxpool", "layer1.2", "layer2.3", "layer3.5", "layer4.2", "fc"],
            32,
        ),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    ratios = []
    for name, (bare, cache) in cases.items():
        bare()  # warm-up (allocator, first-call overheads)
        t_bare, t_cache = _best(bare, args.repeats), _best(cache, args.repeats)
        ratios.append(t_cache / t_bare)
        print(f"{name}: bare forward {t_bare:.2f} s, cache {t_cache:.2f} s, ratio {t_cache / t_bare:.3f}")
    print(f"ratio={max(ratios):.3f}")


if __name__ == "__main__":
    main()
