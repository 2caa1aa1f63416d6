"""Compare two results trees: claims, figure tables and every HDF5 dataset.

Used to show that a refactor moved no result, and that two runs of one config
give identical tables::

    python -m conceptscope.compare results_a results_b

compares every CSV table (the claims, every figure's table, the per-method
tables such as NeurFlow's ``masking.csv``), every JSON file (``circuit.json``,
``metrics.json``) and every dataset of every HDF5 file (``**/*.h5``, bit for
bit: same shape, dtype and bytes; HDF5 attributes such as provenance are not
compared), prints one line per difference and a summary, and exits 1 if
anything differs or is missing on one side. Wall-clock values differ between
any two runs: table columns and JSON keys whose name ends in ``seconds``, and
the ratios of CPU times (:data:`TIMING_COLUMNS`), are left out, as are the
claim rows measured from CPU times (:data:`TIMING_CLAIMS`, in any table with a
``claim_id`` column), and the summary counts the files where they did differ.
Torch files (``.pt``) and images are not compared.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

__all__ = ["TIMING_CLAIMS", "TIMING_COLUMNS", "TreeComparison", "compare_trees"]

TIMING_COLUMNS = re.compile(r"(seconds|seconds_per_target|ratio_to_ig)$")
# claim rows measured from wall-clock values (NF-5: CPU seconds of attribution methods)
TIMING_CLAIMS = ("NF-5",)


@dataclass
class TreeComparison:
    """Outcome of :func:`compare_trees`: files compared, datasets compared, and the differences found."""

    files: int = 0
    datasets: int = 0
    differences: list[str] = field(default_factory=list)
    timing_only: list[str] = field(default_factory=list)  # files equal apart from wall-clock values

    @property
    def identical(self) -> bool:
        return not self.differences


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for suffix in ("*.csv", "*.json", "*.h5") for p in root.rglob(suffix)}


def _datasets(f: h5py.File) -> Iterator[tuple[str, h5py.Dataset]]:
    found: list[tuple[str, h5py.Dataset]] = []
    f.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    yield from sorted(found, key=lambda t: t[0])


def _compare_h5(a: Path, b: Path, rel: str, out: TreeComparison) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = dict(_datasets(fa)), dict(_datasets(fb))
        for name in sorted(set(da) ^ set(db)):
            out.differences.append(f"{rel}:{name}: only in {'a' if name in da else 'b'}")
        for name in sorted(set(da) & set(db)):
            out.datasets += 1
            x, y = da[name][()], db[name][()]
            xa, ya = np.asarray(x), np.asarray(y)
            if xa.shape != ya.shape or xa.dtype != ya.dtype or xa.tobytes() != ya.tobytes():
                out.differences.append(f"{rel}:{name}: differs ({xa.shape} {xa.dtype} vs {ya.shape} {ya.dtype})")


def compare_trees(a: str | Path, b: str | Path) -> TreeComparison:
    """Compare the results trees ``a`` and ``b`` (see the module docstring)."""
    a, b = Path(a), Path(b)
    for root in (a, b):
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder; give two results folders")
    out = TreeComparison()
    fa, fb = _files(a), _files(b)
    for rel in sorted(fa ^ fb):
        out.differences.append(f"{rel}: only in {'a' if rel in fa else 'b'}")
    for rel in sorted(fa & fb):
        out.files += 1
        if rel.endswith(".h5"):
            _compare_h5(a / rel, b / rel, rel, out)
        elif (a / rel).read_bytes() != (b / rel).read_bytes():
            same = _equal_json_but_timing if rel.endswith(".json") else _equal_but_timing
            if same(a / rel, b / rel):
                out.timing_only.append(rel)
            else:
                out.differences.append(f"{rel}: differs")
    return out


def _untimed(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if not TIMING_COLUMNS.search(str(k))}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _equal_json_but_timing(a: Path, b: Path) -> bool:
    """Whether two JSON files are equal once every key ending in ``seconds`` is dropped."""
    return _untimed(json.loads(a.read_text())) == _untimed(json.loads(b.read_text()))


def _equal_but_timing(a: Path, b: Path) -> bool:
    """Whether two CSV tables have the same columns and equal cells outside the timing columns."""
    ta, tb = pd.read_csv(a, dtype=str, keep_default_na=False), pd.read_csv(b, dtype=str, keep_default_na=False)
    if list(ta.columns) != list(tb.columns) or ta.shape != tb.shape:
        return False
    keep = [c for c in ta.columns if not TIMING_COLUMNS.search(str(c))]
    if "claim_id" in ta.columns:
        timed = ta["claim_id"].isin(TIMING_CLAIMS)
        if not timed.any() or not timed.equals(tb["claim_id"].isin(TIMING_CLAIMS)):
            return False
        return ta[~timed].equals(tb[~timed])
    return len(keep) < len(ta.columns) and ta[keep].equals(tb[keep])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="first results folder")
    parser.add_argument("b", help="second results folder")
    args = parser.parse_args(argv)
    res = compare_trees(args.a, args.b)
    for line in res.differences:
        print(line)
    timing = f" ({len(res.timing_only)} files differ only in wall-clock values)" if res.timing_only else ""
    print(
        f"compared {res.files} files ({res.datasets} HDF5 datasets): "
        + ("identical" if res.identical else f"{len(res.differences)} differences")
        + timing
    )
    return 0 if res.identical else 1


if __name__ == "__main__":
    sys.exit(main())
