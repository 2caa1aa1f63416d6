"""The NeurFlow concept-labelling export: a circuit's top patches and prompts, one folder per group and per edge.

A neuron group of a circuit (Cao et al., ICLR 2025; format in
:mod:`conceptscope.neurflow.views`) is named from its top patches: the export
writes them as PNGs beside a prompt (:mod:`conceptscope.neurflow.prompts`)
for a multimodal model; nothing is called here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from ..imaging import to_pil
from ..runtime import save_image, write_table, write_text
from .prompts import CIRCUIT_PROMPT, GROUP_PROMPT
from .settings import NeurFlowSettings
from .views import PatchImages, _carried, _pixels

__all__ = ["LABELLING_COLUMNS", "write_labelling_export", "write_status_export"]

LABELLING_COLUMNS = ("folder", "kind", "nodes", "weight", "n_images", "files")  # of index.csv
_EXPORT_MIN_PX = 96  # exported patch PNGs are upscaled (nearest) until their shorter side reaches this


def _folder_name(layer: str, group: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{layer}_g{int(group)}")


def _save_patch(img: Any, path: Path) -> None:
    im = to_pil(img, rescale=True)
    w, h = im.size
    f = max(1, math.ceil(_EXPORT_MIN_PX / min(w, h)))
    if f > 1:
        im = im.resize((w * f, h * f), Image.Resampling.NEAREST)
    save_image(im, path, format="PNG")


def write_labelling_export(
    circuit: Mapping, patch_images: PatchImages, folder: str | Path, *, per_group: int = NeurFlowSettings.top_patches
) -> pd.DataFrame:
    """Write patch PNGs and prompts for naming the circuit's concepts with a multimodal model (nothing is called).

    Parameters
    ----------
    circuit : mapping
        The circuit (format in :mod:`conceptscope.neurflow.views`), checked first
        (:func:`~conceptscope.neurflow.validate_circuit`).
    patch_images : mapping of patch id to array
        Pixels of the exported patches (the first ``per_group`` top patches of
        each node); out-of-range images are rescaled by their own min / max.
    folder : str or Path
        Output folder (created; existing files of the same names are overwritten).
    per_group : int
        Top patches exported per group.

    Returns
    -------
    pandas.DataFrame
        The rows of ``index.csv``: ``folder`` (relative), ``kind`` (``group``
        or ``circuit``), ``nodes`` (node ids; for a circuit ``upper;lower``),
        ``weight`` (edge weight; empty for groups), ``n_images`` and ``files``
        (relative to the row's folder, ``;``-separated, ``prompt.txt`` last).

    Notes
    -----
    Per node a folder ``<layer>_g<group>/`` (characters other than letters,
    digits, ``.``, ``_`` and ``-`` replaced by ``_``) holds ``patch_<id>.png``
    for each of its first ``per_group`` top patches, upscaled with nearest
    neighbour by an integer factor until the shorter side is at least 96 px,
    and ``prompt.txt`` (:data:`GROUP_PROMPT`). Per edge with a non-zero weight
    (edges always join consecutive layers) a folder
    ``circuit_<upper folder>_to_<lower folder>/`` holds ``upper/`` and
    ``lower/`` with the two groups' patches and ``prompt.txt``
    (:data:`CIRCUIT_PROMPT`). Each prompt has three parts: the role
    (:data:`PROMPT_ROLE`), the instructions and the answer form.

    Raises
    ------
    ValueError
        For a malformed circuit or an exported patch without pixels.
    """
    g, _ = _carried(circuit, patch_images, per_group)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    names = {nid: _folder_name(n["layer"], n["group"]) for nid, n in g.nodes.items()}
    if len(set(names.values())) != len(names):
        raise ValueError("two nodes map to the same folder name (same layer and group)")

    def patches_into(nid: str, dest: Path) -> list[str]:
        dest.mkdir(parents=True, exist_ok=True)
        files = []
        for p in g.top(nid, per_group):
            _save_patch(_pixels(patch_images, p), dest / f"patch_{p}.png")
            files.append(f"patch_{p}.png")
        return files

    rows: list[dict[str, Any]] = []
    for layer in g.layers:
        for nid in g.by_layer[layer]:
            sub = root / names[nid]
            files = patches_into(nid, sub)
            prompt = GROUP_PROMPT.format(n_images=len(files), node=nid, layer=layer)
            write_text(sub / "prompt.txt", prompt)
            rows.append(
                {
                    "folder": names[nid],
                    "kind": "group",
                    "nodes": nid,
                    "weight": None,
                    "n_images": len(files),
                    "files": ";".join([*files, "prompt.txt"]),
                }
            )
    for e in g.edges:
        if e["weight"] == 0.0:
            continue
        up, low = e["source"], e["target"]
        name = f"circuit_{names[up]}_to_{names[low]}"
        sub = root / name
        f_up = patches_into(up, sub / "upper")
        f_low = patches_into(low, sub / "lower")
        prompt = CIRCUIT_PROMPT.format(
            upper=up,
            lower=low,
            upper_layer=g.nodes[up]["layer"],
            lower_layer=g.nodes[low]["layer"],
            n_upper=len(f_up),
            n_lower=len(f_low),
            weight=f"{e['weight']:+.4f}",
        )
        write_text(sub / "prompt.txt", prompt)
        rows.append(
            {
                "folder": name,
                "kind": "circuit",
                "nodes": f"{up};{low}",
                "weight": e["weight"],
                "n_images": len(f_up) + len(f_low),
                "files": ";".join([*(f"upper/{f}" for f in f_up), *(f"lower/{f}" for f in f_low), "prompt.txt"]),
            }
        )
    table = pd.DataFrame.from_records(rows, columns=list(LABELLING_COLUMNS))
    write_table(table, root / "index.csv", index=False)
    return table


def write_status_export(folder: str | Path, *, status: str, reason: str = "") -> pd.DataFrame:
    """The export of a class without a circuit: ``index.csv`` without rows and ``status.txt`` saying why."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / "status.txt", f"{status}: {reason}\n" if reason else f"{status}\n")
    table = pd.DataFrame(columns=list(LABELLING_COLUMNS))
    write_table(table, root / "index.csv", index=False)
    return table
