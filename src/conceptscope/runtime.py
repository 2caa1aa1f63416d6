"""Running a workflow job: logging to the rule's log, CPU threads, provenance sidecars.

Every script in ``workflow/scripts/`` is one call of :func:`run_job`: it points
the ``conceptscope`` logger at the rule's ``log:`` file (uncaught exceptions
land there too), gives torch the threads Snakemake granted, and calls one job
function with plain keyword arguments taken from the ``snakemake`` object.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from . import __version__

__all__ = [
    "atomic_path",
    "configure_logging",
    "provenance",
    "remove_stale_temporaries",
    "run_job",
    "run_summary",
    "set_threads",
    "temporary_path",
]

_TEMPORARY = re.compile(r"^\..+\.tmp\d*$")  # .<name>.tmp<pid>: a result being written


def configure_logging(log_path: str | Path | None) -> logging.Logger:
    """Log to ``log_path`` (and stderr); uncaught exceptions land in the log too."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    log = logging.getLogger("conceptscope")

    def excepthook(kind, value, tb):
        log.error("uncaught exception", exc_info=(kind, value, tb))

    sys.excepthook = excepthook
    return log


def set_threads(threads: int) -> None:
    """Use the threads Snakemake granted the job for torch's CPU kernels."""
    torch.set_num_threads(max(1, int(threads)))


def provenance(**fields: Any) -> dict[str, Any]:
    """Effective parameters plus library, torch and host versions, for sidecars."""
    return {
        "conceptscope": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **fields,
    }


def run_job(smk: Any, job: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run one rule's job: log to ``smk.log[0]``, use ``smk.threads`` threads, call ``job(**kwargs)``.

    ``smk`` is the ``snakemake`` object a ``script:`` directive injects (any
    object with ``log`` and ``threads`` attributes will do in tests).
    """
    log = configure_logging(smk.log[0] if len(smk.log) else None)
    set_threads(getattr(smk, "threads", 1))
    log.info("rule %s: %s", getattr(smk, "rule", "?"), getattr(job, "__qualname__", job))
    return job(**kwargs)


def temporary_path(path: str | Path) -> Path:
    """Where a writer puts ``path`` while writing it (``.<name>.tmp<pid>`` beside it), renamed when complete.

    A job killed mid-write leaves only such a file, which no rule accepts as an
    output and :func:`remove_stale_temporaries` removes at the next run.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path (:func:`temporary_path`) to write ``path`` to, renamed onto ``path`` when the block ends.

    If the block raises, the temporary file is deleted and ``path`` is left as it was, so a reader never
    sees a half-written file (``with atomic_path(out) as tmp: table.to_csv(tmp)``).
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(root: str | Path = "results") -> list[Path]:
    """Delete the temporary files of writers that were killed (see :func:`temporary_path`) under ``root``.

    Call it when no job runs (Snakemake's ``onstart``, which runs with the
    working directory locked). Returns the files removed.
    """
    root = Path(root)
    removed = []
    if root.is_dir():
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                if _TEMPORARY.match(name):
                    path = Path(dirpath) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed


def run_summary(root: str | Path = "results", configfiles: Sequence[str | Path] = ()) -> str:
    """The closing lines of a run: claim counts and where to look (claims table, report, HTML pages).

    ``configfiles``: the run's ``--configfile`` arguments, repeated in the report command.
    """
    import csv
    from collections import Counter

    root = Path(root)
    lines = ["", "conceptscope: done."]
    claims = root / "reproduction" / "claims.csv"
    if claims.exists():
        with open(claims, newline="", encoding="utf-8") as fh:
            counts = Counter(row["verdict"] for row in csv.DictReader(fh))
        lines.append("  claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("PASS", "FAIL", "NOT RUN")))
        lines.append(f"  claims table: {root / 'reproduction' / 'claims.md'}")
    pages = sorted(
        [*root.glob("naps/*/browser.html"), *root.glob("nas/*/*/summary.html"), *root.glob("neurflow/*/*/circuit.html")]
    )
    if pages:
        lines.append(f"  HTML pages ({len(pages)}, open in a browser):")
        lines += [f"    {p}" for p in pages[:12]]
        if len(pages) > 12:
            lines.append(f"    ... and {len(pages) - 12} more under {root}")
    config = f" --configfile {' '.join(map(str, configfiles))}" if configfiles else ""
    lines.append(f"  report with every figure: snakemake --report {root / 'report.html'}{config}")
    return "\n".join(lines)
