"""Planted-concept recovery: how well each method's concepts recover each planted concept.

On data with planted concepts (data set kind ``planted``, :mod:`conceptscope.planted`)
every image records which concepts it carries. For a planted concept with
carrier set T, and a method's concept with image set C among the images U the
method looked at (its universe, :attr:`~conceptscope.atlas.concepts.Concept.universe`):

.. math::

    P = |C \\cap T| / |C|, \\quad R = |C \\cap T| / |T \\cap U|, \\quad
    F_1 = 2PR / (P + R) = 2 |C \\cap T| / (|C| + |T \\cap U|)

(C lies in U, so :math:`C \\cap T = C \\cap (T \\cap U)`: a method is judged on
the carriers it saw; a NeurFlow circuit of class 2 is not blamed for carriers
of other classes.) A ratio with a zero denominator is 0, so an empty concept,
or a planted concept with no carrier in U, scores F1 = 0.

For every group of concepts (one method, variant, model and layer) and every
planted concept, the **best match** is the concept of highest F1; ties go to
the concept listed first (the readers list a method's concepts in its own
order: NAP rank, factor, unit, class then group).

**Null.** The images' truth rows are permuted, so that each planted concept
becomes a random set of carriers (the planted concepts' co-occurrence kept),
and the best-match F1 is recomputed; the table gives the null's mean, its 95th
percentile (``numpy.quantile``, linear) and the permutation p-value
(1 + #{null >= observed}) / (n_permutations + 1). The permutation keeps what
the method could not choose: within one group, images are permuted only among
images that lie in the same universes (strata: the distinct columns of the
group's universe membership; images in no universe of the group stay put, they
enter no score). With the whole image list as universe (NAPs, NMF) this is a
plain permutation of all images: T becomes a uniformly random set of |T|
images. With one restricted universe (the NAS sample) T n U becomes a random
set of |T n U| images of U; with disjoint ones (NeurFlow's classes) each
class keeps its count of carriers, so a group that merely holds every image of
its class, carriers or not, is not called a recovery. Draws: for every group
``rng = numpy.random.default_rng(seed)``, then per permutation, stratum by
stratum in :func:`numpy.unique` order, ``idx[rng.permutation(len(idx))]``; a
group's null therefore depends neither on the other groups in the call nor on
``batch_size``, and with one stratum holding all images a permutation is
``rng.permutation(n_images)``. Counts are exact integers and observed and null
F1 come from the same expression, so ties compare exactly. For one concept of
size c over all n images and a random T of size t, the overlap is
hypergeometric with mean ct / n, so the null mean of F1 is 2ct / (n (c + t)).

Everything is matrix products of 0/1 float32 matrices (concepts x images times
images x (planted x permutations)), exact for counts below 2^24.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..checks import check_int  # noqa: E402
from ..nulls import permutation_p_value
from ..runtime import save_figure, write_table  # noqa: E402
from .concepts import Concept  # noqa: E402

__all__ = [
    "COLUMNS",
    "GROUP_KEYS",
    "plot_recovery",
    "read_truth",
    "recovery_scores",
    "write_recovery",
]

GROUP_KEYS = ("method", "variant", "model", "layer")
COLUMNS = (
    *GROUP_KEYS,
    "planted",
    "n_concepts",
    "best_concept",
    "concept_size",
    "planted_size",
    "planted_in_universe",
    "overlap",
    "precision",
    "recall",
    "f1",
    "null_mean",
    "null_q95",
    "p_value",
    "n_permutations",
    "seed",
)


def read_truth(manifest: str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The planted concepts of a split, from its manifest's ``concept_<name>`` columns.

    Returns
    -------
    truth : ndarray of bool, shape (n_images, n_planted)
    names : list of str
        Planted concept names (the columns without ``concept_``).
    sample_ids : ndarray of int64, shape (n_images,)
    """
    table = pd.read_csv(manifest)
    cols = [c for c in table.columns if c.startswith("concept_")]
    if not cols:
        raise ValueError(f"{manifest} has no concept_<name> columns: its data set plants no concepts")
    truth = table[cols].to_numpy().astype(bool)
    return truth, [c.removeprefix("concept_") for c in cols], table["sample_id"].to_numpy(dtype=np.int64)


def _rows(ids: np.ndarray, sorted_ids: np.ndarray, order: np.ndarray, what: str) -> np.ndarray:
    """Row of each id in the truth's image list."""
    at = np.searchsorted(sorted_ids, ids)
    at = np.minimum(at, sorted_ids.size - 1)
    bad = sorted_ids[at] != ids
    if np.any(bad):
        raise ValueError(f"{what}: ids {ids[bad][:10].tolist()} are not among the truth's sample ids")
    return order[at]


def _f1(inter: np.ndarray, csize: np.ndarray, tsize: np.ndarray) -> np.ndarray:
    """2 |C n T| / (|C| + |T n U|), 0 where both are empty; float64."""
    denom = np.asarray(csize, dtype=np.float64) + tsize
    return _ratio(2.0 * np.asarray(inter, dtype=np.float64), denom)


def _ratio(num: np.ndarray, denom: np.ndarray) -> np.ndarray:
    denom = np.asarray(denom, dtype=np.float64)
    return np.divide(num, denom, out=np.zeros(np.broadcast_shapes(np.shape(num), denom.shape)), where=denom > 0)


def _strata(universes: np.ndarray) -> list[np.ndarray]:
    """Images sharing the same universe membership (columns of ``universes``, concepts x images), each a
    sorted index array, in :func:`numpy.unique` order; images in no universe are left out."""
    member = universes.astype(bool)
    if (member == member[:1]).all():  # one universe for the whole group (the usual case)
        inside = np.flatnonzero(member[0])
        return [inside] if inside.size else []
    patterns, label = np.unique(member.T, axis=0, return_inverse=True)
    label = label.ravel()
    return [np.flatnonzero(label == i) for i, p in enumerate(patterns) if p.any()]


def _permutation(rng: np.random.Generator, n: int, strata: Sequence[np.ndarray]) -> np.ndarray:
    """A permutation of ``range(n)`` that moves images only within their stratum."""
    perm = np.arange(n)
    for idx in strata:
        perm[idx] = idx[rng.permutation(idx.size)]
    return perm


def recovery_scores(
    concepts: Sequence[Concept],
    truth: np.ndarray,
    truth_names: Sequence[str],
    sample_ids: np.ndarray | None = None,
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    groups: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Best-match precision, recall and F1 of every planted concept, per method, model and layer, with a null.

    Parameters
    ----------
    concepts : sequence of :class:`~conceptscope.atlas.concepts.Concept`
        Any methods, models and layers; grouped by (method, variant, model,
        layer) in order of first appearance, each group's concepts in the given
        order. A concept's images are matched by :attr:`Concept.ids` (sample
        ids, or positions when it has none), its universe likewise (None: every
        image).
    truth : ndarray of bool, shape (n_images, n_planted)
        Whether image i carries planted concept j (:func:`read_truth`).
    truth_names : sequence of str, length n_planted
    sample_ids : ndarray of int, shape (n_images,), optional
        Id of each row of ``truth`` (distinct); default ``0..n_images-1``
        (then concepts must carry positions into the same list). Every
        concept's ids must be among them.
    n_permutations : int >= 0
        Permutations of the null (0: no null; its columns are NaN); see the module docstring.
    seed : int
        Seed of the permutations (each group's draws start from it).
    batch_size : int
        Permutations per matrix product (memory only; the result does not depend on it).
    groups : sequence of (method, variant, model, layer), optional
        Every group the table must have, in its row order, including groups
        without concepts (a layer where HDBSCAN found no NAP; a circuit without
        images): their rows have ``n_concepts`` 0, an empty ``best_concept``,
        every count and score 0 and the null 0 with p-value 1 (an empty group's
        best match is 0 under every permutation). Concepts of a group not
        listed raise. Default: the concepts' groups in order of first appearance.

    Returns
    -------
    DataFrame
        One row per group and planted concept, columns :data:`COLUMNS`:
        ``n_concepts`` in the group; the best match's name ``best_concept``,
        ``concept_size`` |C|, ``overlap`` |C n T|, ``precision``, ``recall``,
        ``f1``; ``planted_size`` |T| over all images and
        ``planted_in_universe`` |T n U| of the best match; the null's
        ``null_mean``, ``null_q95`` and ``p_value``; ``n_permutations``, ``seed``.
    """
    truth = np.asarray(truth)
    if truth.ndim != 2 or truth.dtype != bool:
        raise ValueError(f"truth must be a 2-D bool array (n_images, n_planted), got {truth.dtype} {truth.shape}")
    n, k = truth.shape
    names = [str(t) for t in truth_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} truth_names for {k} planted concepts")
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"sample_ids must be {n} integers, one per row of truth, got {ids.dtype} {ids.shape}")
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        raise ValueError("sample_ids must be distinct")
    n_permutations = check_int("n_permutations", n_permutations, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed)
    # concepts sorted into contiguous groups (stable: first appearance, then given order)
    keys = [tuple(str(getattr(c, a)) for a in GROUP_KEYS) for c in concepts]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    group_order = sorted(first, key=first.get)
    listed = None if groups is None else [tuple(str(v) for v in g) for g in groups]
    if listed is not None:
        if any(len(g) != len(GROUP_KEYS) for g in listed):
            raise ValueError(f"groups must be ({', '.join(GROUP_KEYS)}) tuples, got {listed}")
        unlisted = [key for key in group_order if key not in listed]
        if unlisted:
            raise ValueError(f"concepts of groups {unlisted} are not in groups")
    if not concepts:
        return _empty_rows(listed or [], names, truth, n_permutations, seed)
    by_group = {key: [i for i, kk in enumerate(keys) if kk == key] for key in group_order}
    index = [i for key in group_order for i in by_group[key]]
    sizes = [len(by_group[key]) for key in group_order]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)

    m = len(index)
    C = np.zeros((m, n), dtype=np.float32)  # concepts x images, 0/1
    U = np.zeros((m, n), dtype=np.float32)  # their universes
    for r, i in enumerate(index):
        c = concepts[i]
        C[r, _rows(c.ids, sorted_ids, order, f"concept {c!r}")] = 1.0
        if c.universe is None:
            U[r] = 1.0
        else:
            U[r, _rows(c.universe, sorted_ids, order, f"universe of {c!r}")] = 1.0
    T = truth.astype(np.float32)
    csize = C.sum(1, dtype=np.float64)[:, None]  # (m, 1)

    inter = (C @ T).astype(np.float64)  # (m, k) |C n T|
    tsize = (U @ T).astype(np.float64)  # (m, k) |T n U|
    f1 = _f1(inter, csize, tsize)
    best = np.stack([f1[s : s + g].argmax(0) + s for s, g in zip(starts, sizes, strict=True)])  # (G, k), first max
    observed = np.take_along_axis(f1, best, axis=0)  # (G, k)

    # groups with the same strata draw the same permutations (each group's stream starts at seed): one pass
    null = np.full((len(group_order), n_permutations, k), np.nan)
    same_strata: dict[tuple[bytes, ...], list[int]] = {}
    strata_of = [_strata(U[s0 : s0 + size]) for s0, size in zip(starts, sizes, strict=True)]
    for g, strata in enumerate(strata_of):
        same_strata.setdefault(tuple(idx.tobytes() for idx in strata), []).append(g)
    for groups in same_strata.values():
        rows = np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in groups])
        local = np.concatenate([[0], np.cumsum([sizes[g] for g in groups])[:-1]]).astype(np.intp)
        Cs, csize_s, tsize_s = C[rows], csize[rows, :, None], tsize[rows, None, :]
        rng = np.random.default_rng(seed)
        for b0 in range(0, n_permutations, batch_size):
            B = min(batch_size, n_permutations - b0)
            perms = np.stack([_permutation(rng, n, strata_of[groups[0]]) for _ in range(B)])  # (B, n)
            Tp = T[perms].transpose(1, 0, 2).reshape(n, B * k)  # images x (B * k): column b * k + j
            inter_p = (Cs @ Tp).astype(np.float64).reshape(rows.size, B, k)
            # the stratified permutation keeps every concept's |T n U|
            f1_p = _f1(inter_p, csize_s, tsize_s)
            null[groups, b0 : b0 + B] = np.maximum.reduceat(f1_p, local, axis=0)  # best match per group

    rows = []
    for g, key in enumerate(group_order):
        for j, planted in enumerate(names):
            r = int(best[g, j])
            nul = null[g, :, j]
            rows.append(
                {
                    **dict(zip(GROUP_KEYS, key, strict=True)),
                    "planted": planted,
                    "n_concepts": sizes[g],
                    "best_concept": concepts[index[r]].name,
                    "concept_size": int(csize[r, 0]),
                    "planted_size": int(truth[:, j].sum()),
                    "planted_in_universe": int(tsize[r, j]),
                    "overlap": int(inter[r, j]),
                    "precision": float(_ratio(inter[r, j], csize[r, 0])),
                    "recall": float(_ratio(inter[r, j], tsize[r, j])),
                    "f1": float(observed[g, j]),
                    "null_mean": float(nul.mean()) if n_permutations else np.nan,
                    "null_q95": float(np.quantile(nul, 0.95)) if n_permutations else np.nan,
                    "p_value": permutation_p_value(observed[g, j], nul),
                    "n_permutations": n_permutations,
                    "seed": seed,
                }
            )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    if listed is None:
        return table
    missing = [g for g in listed if g not in first]
    if missing:
        table = pd.concat([table, _empty_rows(missing, names, truth, n_permutations, seed)], ignore_index=True)
    table["_order"] = [listed.index(tuple(r)) for r in table[list(GROUP_KEYS)].itertuples(index=False)]
    return table.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _empty_rows(
    groups: Sequence[tuple[str, ...]], names: Sequence[str], truth: np.ndarray, n_permutations: int, seed: int
) -> pd.DataFrame:
    """Rows of groups without concepts (see :func:`recovery_scores`)."""
    null = 0.0 if n_permutations else np.nan
    rows = [
        {
            **dict(zip(GROUP_KEYS, key, strict=True)),
            "planted": planted,
            "n_concepts": 0,
            "best_concept": "",
            "concept_size": 0,
            "planted_size": int(truth[:, j].sum()),
            "planted_in_universe": 0,
            "overlap": 0,
            "precision": 0.0,
            "recall": 0.0,
            "f1": 0.0,
            "null_mean": null,
            "null_q95": null,
            "p_value": 1.0 if n_permutations else np.nan,
            "n_permutations": n_permutations,
            "seed": seed,
        }
        for key in groups
        for j, planted in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_recovery(table: pd.DataFrame, path: str | Path) -> Path:
    """The recovery table as CSV (:func:`conceptscope.runtime.write_table`, no index)."""
    return write_table(table, path, index=False)


def _row_label(row: pd.Series, with_model: bool) -> str:
    parts = [str(row["method"])]
    if row["variant"] and str(row["variant"]) not in ("nan", str(row["layer"])):
        parts[0] += f" ({row['variant']})"
    if with_model:
        parts.append(str(row["model"]))
    parts.append("all factored layers" if row["layer"] == "coupled" else str(row["layer"]))
    return "  ".join(parts)


def plot_recovery(table: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Heatmap of best-match F1: rows method (variant) x layer, columns planted concepts.

    Each cell shows the F1 and, below it, the null's 95th percentile (and, when
    ``table`` has ``class_f1``, the class baseline, with a star on an F1 above it); only a
    cell whose F1 exceeds that percentile is coloured by its F1 (and framed);
    the others are grey, so that an F1 the null reaches as often (a small
    universe, a concept covering every image) does not look like a recovery.
    Written through
    :func:`conceptscope.runtime.save_figure`; the numbers drawn are ``table``
    (write it beside the PNG with :func:`write_recovery`).
    """
    if len(table) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.text(0.5, 0.5, "no concepts", ha="center", va="center")
        ax.set_axis_off()
        out = save_figure(fig, path, dpi=120)
        plt.close(fig)
        return out
    t = table.copy()
    t["variant"] = t["variant"].fillna("")
    with_model = t["model"].nunique() > 1
    t["row"] = [_row_label(r, with_model) for _, r in t.iterrows()]
    rows = list(dict.fromkeys(t["row"]))
    cols = list(dict.fromkeys(t["planted"]))
    f1 = t.pivot(index="row", columns="planted", values="f1").reindex(index=rows, columns=cols).to_numpy()
    q95 = t.pivot(index="row", columns="planted", values="null_q95").reindex(index=rows, columns=cols).to_numpy()
    if "class_f1" in t:  # the class baseline (atlas.jobs.class_baseline): a star marks an F1 above it
        base = t.pivot(index="row", columns="planted", values="class_f1").reindex(index=rows, columns=cols).to_numpy()
    else:
        base = np.full_like(f1, np.nan)
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(cols), 1.2 + 0.5 * len(rows)), constrained_layout=True)
    beats = ~np.isnan(q95) & (np.nan_to_num(f1) > np.nan_to_num(q95, nan=np.inf))
    ax.imshow(np.where(np.isnan(f1), np.nan, 1.0), cmap="Greys", vmin=0.0, vmax=6.0, aspect="auto")  # light grey
    im = ax.imshow(np.where(beats, f1, np.nan), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isnan(f1[i, j]):
                continue
            color = "black" if f1[i, j] > 0.6 or not beats[i, j] else "white"
            null_text = "" if np.isnan(q95[i, j]) else f"\nq95 {q95[i, j]:.2f}"
            star = "*" if not np.isnan(base[i, j]) and f1[i, j] > base[i, j] else ""
            class_text = "" if np.isnan(base[i, j]) else f"\nclass {base[i, j]:.2f}"
            text = f"{f1[i, j]:.2f}{star}{null_text}{class_text}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=color)
            if beats[i, j]:
                ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("planted concept")
    fig.colorbar(im, ax=ax, label="best-match F1", shrink=0.8)
    note = "coloured and framed: F1 above the null's 95th percentile; grey: not"
    if not np.isnan(base).all():
        note += "\nclass: best F1 of one class as the concept; *: F1 above it"
    ax.set_title(f"{title}\n{note}" if title else f"planted-concept recovery\n{note}", fontsize=9)
    out = save_figure(fig, path, dpi=120)
    plt.close(fig)
    return out
