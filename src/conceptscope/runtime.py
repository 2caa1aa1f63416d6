"""Running a workflow job: logging to the rule's log, CPU threads, provenance sidecars.

Every script in ``workflow/scripts/`` is one call of :func:`run_job`: it points
the ``conceptscope`` logger at the rule's ``log:`` file (uncaught exceptions
land there too), gives torch the threads Snakemake granted, and calls one job
function with plain keyword arguments taken from the ``snakemake`` object.
"""

from __future__ import annotations

import logging
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import __version__

__all__ = ["configure_logging", "provenance", "run_job", "set_threads"]


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
