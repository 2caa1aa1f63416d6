"""Running a workflow job: logging to the rule's log, CPU threads, provenance sidecars.

Every script in ``workflow/scripts/`` is one call of :func:`run_job`: it points
the ``conceptscope`` logger at the rule's ``log:`` file (uncaught exceptions
land there too), gives torch the threads Snakemake granted, and calls one job
function with plain keyword arguments taken from the ``snakemake`` object.

Every result file is written atomically: to a temporary file beside it
(:func:`temporary_path`), renamed onto the output only when complete
(:func:`atomic_path`), so a killed job never leaves a partial file that a
later run accepts. :func:`write_text`, :func:`write_json`, :func:`write_table`,
:func:`save_figure` and :func:`save_image` do this for text, JSON, CSV tables,
matplotlib figures and PIL images. This module imports neither torch nor
matplotlib nor pandas at import time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from PIL.Image import Image

__all__ = [
    "atomic_path",
    "configure_logging",
    "provenance",
    "remove_stale_temporaries",
    "run_job",
    "run_summary",
    "snakemake_command",
    "save_figure",
    "save_image",
    "set_threads",
    "temporary_path",
    "write_json",
    "write_table",
    "write_text",
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
    import torch

    torch.set_num_threads(max(1, int(threads)))


def provenance(**fields: Any) -> dict[str, Any]:
    """Effective parameters plus library, torch and host versions, for sidecars."""
    import torch

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


# compression pandas infers from a CSV path's suffix (the temporary's name ends in .tmp<pid>, so say it)
_CSV_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def _prepared(path: str | Path) -> Path:
    """``path`` as a Path, its folder created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (parents created) atomically (:func:`atomic_path`); returns ``path``.

    Raises
    ------
    OSError
        When the folder cannot be created or the file cannot be written or renamed; ``path`` is then left as
        it was and no temporary file remains.
    """
    path = _prepared(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2, **dumps_kwargs: Any) -> Path:
    """Write ``obj`` as JSON (``json.dumps(obj, indent=indent, **dumps_kwargs)``, newline-terminated) to
    ``path`` atomically (:func:`write_text`); returns ``path``.

    Raises
    ------
    TypeError, ValueError
        When ``obj`` is not JSON serialisable (raised before anything is written).
    OSError
        As :func:`write_text`.
    """
    return write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs) + "\n")


def write_table(table: pd.DataFrame | pd.Series, path: str | Path, **to_csv_kwargs: Any) -> Path:
    """Write ``table`` as CSV (``table.to_csv(tmp, **to_csv_kwargs)``) to ``path`` atomically; returns ``path``.

    The compression pandas would infer from ``path`` (``.csv.gz``, ...) is kept: the temporary's name ends
    in ``.tmp<pid>``, so it is passed explicitly unless ``compression`` is given.

    Raises
    ------
    OSError
        As :func:`write_text`.
    Exception
        Whatever ``table.to_csv`` raises; ``path`` is then left as it was and no temporary file remains.
    """
    path = _prepared(path)
    to_csv_kwargs.setdefault("compression", _CSV_COMPRESSION.get(path.suffix.lower()))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, **to_csv_kwargs)
    return path


def save_figure(fig: Figure, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure (``fig.savefig(tmp, **savefig_kwargs)``) to ``path`` atomically; returns ``path``.

    The format is the one of ``path``'s suffix (``.png``, ``.pdf``, ``.svg``, ...), passed explicitly unless
    ``format`` is given (the temporary's name ends in ``.tmp<pid>``). The figure is not closed.

    Raises
    ------
    ValueError
        When matplotlib supports no format of that name.
    OSError
        As :func:`write_text`.
    Exception
        Whatever ``fig.savefig`` raises; ``path`` is then left as it was and no temporary file remains.
    """
    path = _prepared(path)
    if path.suffix:
        savefig_kwargs.setdefault("format", path.suffix[1:].lower())
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    return path


def save_image(image: Image, path: str | Path, **save_kwargs: Any) -> Path:
    """Save a PIL image (``image.save(tmp, **save_kwargs)``) to ``path`` atomically; returns ``path``.

    The format is the one PIL registers for ``path``'s suffix, passed explicitly unless ``format`` is given.

    Raises
    ------
    ValueError
        When PIL knows no format for ``path``'s suffix and none is given.
    OSError
        As :func:`write_text`, or when PIL cannot encode the image in that format.
    """
    path = _prepared(path)
    if "format" not in save_kwargs:
        from PIL import Image as PILImage

        fmt = PILImage.registered_extensions().get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"save_image: no image format for the suffix {path.suffix!r} of {path}; pass format=")
        save_kwargs["format"] = fmt
    with atomic_path(path) as tmp:
        image.save(tmp, **save_kwargs)
    return path


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


def snakemake_command(argv0: str | None = None) -> str:
    """How the running Snakemake was called, for the commands a hint repeats: the script path when it was run as
    ``<path>/snakemake`` (e.g. ``.venv/bin/snakemake``, relative to the working directory when inside it), else
    ``snakemake``."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name != "snakemake":
        return "snakemake"
    try:
        return str(Path(argv0).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return argv0


def run_summary(
    root: str | Path = "results",
    configfiles: Sequence[str | Path] = (),
    command: str = "snakemake",
    workdir: str | Path | None = None,
) -> str:
    """The closing lines of a run: claim counts and where to look (atlas, claims table, report, HTML pages).

    ``configfiles``: the run's ``--configfile`` arguments, repeated in the report command; ``command``: how
    Snakemake is called there (:func:`snakemake_command`); ``workdir``: the working directory when ``-d``
    moved it away from where Snakemake was started (``root`` is read inside it; the lines then name
    ``workdir / root`` and the report command gets ``-d workdir``).
    """
    import csv
    from collections import Counter

    root = Path(root)
    shown = root if workdir is None else Path(workdir) / root
    lines = ["", "conceptscope: done."]
    if (root / "index.html").exists():
        lines.append(f"  start here, the atlas of every method's concepts: {shown / 'index.html'}")
    claims = root / "reproduction" / "claims.csv"
    if claims.exists():
        with open(claims, newline="", encoding="utf-8") as fh:
            counts = Counter(row["verdict"] for row in csv.DictReader(fh))
        lines.append("  claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("PASS", "FAIL", "NOT RUN")))
        lines.append(f"  claims table: {shown / 'reproduction' / 'claims.md'}")
    pages = sorted(
        [*root.glob("naps/*/browser.html"), *root.glob("nas/*/*/summary.html"), *root.glob("neurflow/*/*/circuit.html")]
    )
    if pages:
        lines.append(f"  HTML pages ({len(pages)}, open in a browser):")
        lines += [f"    {shown / p.relative_to(root)}" for p in pages[:12]]
        if len(pages) > 12:
            lines.append(f"    ... and {len(pages) - 12} more under {shown}")
    config = f" --configfile {' '.join(map(str, configfiles))}" if configfiles else ""
    where = "" if workdir is None else f" -d {workdir}"
    lines.append(f"  report with every figure: {command}{where} --report {root / 'report.html'}{config}")
    return "\n".join(lines)
