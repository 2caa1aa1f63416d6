"""Claim rules of the NAP paper: NAP-1 (Fig. 6), NAP-2 (Fig. 8), NAP-3 (Fig. 6 right), NAP-4, NAP-5 (Fig. 9-14).

Each rule judges only evidence that can show its claim: a NAP count must be a
finite number >= 0 (else NOT RUN naming the rows), a trend needs at least two
positions (:func:`conceptscope.claims.rank_trend`; a single layer or input
size cannot rise), and a layer where every disentanglement gives the same
count (e.g. no NAP at all) cannot follow a ranking. What is left out is named in the row's detail;
with nothing left to judge the verdict is NOT RUN with the reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..claims import Trend, invalid_values, make_row, rank_trend
from .settings import SIZE_TOLERANCE

__all__ = ["nap_1", "nap_2", "nap_3", "nap_4", "nap_5"]

_NO_NAPS = "no NAP on any layer (every input is noise): too few inputs to judge the claim"

_METHODS = ("none", "max", "min_max", "mean", "mean_std")


def _columns(table: pd.DataFrame, needed: tuple[str, ...]) -> str:
    missing = [c for c in needed if c not in table.columns]
    return f"the table lacks column(s) {missing}" if missing else ""


def _duplicates(table: pd.DataFrame, keys: list[str]) -> str:
    dup = table[table.duplicated(keys, keep=False)]
    if dup.empty:
        return ""
    first = dup.iloc[0]
    return f"{len(dup)} rows repeat a ({', '.join(keys)}), e.g. {'/'.join(str(first[k]) for k in keys)}"


def nap_1(counts: pd.DataFrame) -> dict[str, str]:
    """NAP-1 (Fig. 6): on conv layers, mean / mean_std give the most NAPs, max / min_max fewer, none the fewest.

    ``counts``: rows (model, layer, kind, method, n_naps), one per (model,
    layer, method). A conv layer follows the ranking when
    avg(mean, mean_std) >= avg(max, min_max) >= none and
    avg(mean, mean_std) > none. Conv layers without all five methods are left
    out; so are layers where all five give the same count (all 0, or a 1 x 1
    map where the disentanglements coincide: no ranking either way), named in
    the detail. PASS when at least half of the judged layers follow it; NOT
    RUN when no layer can be judged or a count is not a finite number >= 0.
    """
    problem = _columns(counts, ("model", "layer", "kind", "method", "n_naps"))
    if problem:
        return make_row("NAP-1", "", "NOT RUN", problem)
    conv = counts[counts["kind"] != "dense"]
    problem = invalid_values(conv, "n_naps", minimum=0) or _duplicates(conv, ["model", "layer", "method"])
    if problem:
        return make_row("NAP-1", "", "NOT RUN", f"invalid NAP counts: {problem}")
    table = conv.pivot(index=["model", "layer"], columns="method", values="n_naps") if len(conv) else pd.DataFrame()
    if table.empty or not set(_METHODS) <= set(table.columns):
        return make_row("NAP-1", "", "NOT RUN", "needs conv layers with all five disentanglements")
    table = table[list(_METHODS)].dropna().astype(np.float64)
    tied = table.index[table.nunique(axis=1) == 1]
    judged = table.drop(index=tied)
    names = [f"{m}/{lay} ({table.at[(m, lay), 'none']:g})" for m, lay in tied]
    left_out = f"; left out (the same count for all five methods, e.g. a 1x1 map): {names}" if names else ""
    if judged.empty:
        reason = (
            "needs conv layers with all five disentanglements" if table.empty else "no conv layer ranks the methods"
        )
        return make_row("NAP-1", "", "NOT RUN", reason + left_out)
    amount = (judged["mean"] + judged["mean_std"]) / 2
    peak = (judged["max"] + judged["min_max"]) / 2
    ok = (amount >= peak) & (peak >= judged["none"]) & (amount > judged["none"])
    per_method = judged.mean().round(1).to_dict()
    return make_row(
        "NAP-1",
        f"{int(ok.sum())} of {len(ok)} conv layers follow the ranking",
        "PASS" if ok.sum() * 2 >= len(ok) else "FAIL",
        "rule: avg(mean, mean_std) >= avg(max, min_max) >= none and avg(mean, mean_std) > none per layer, "
        f"PASS on at least half; mean NAP count per method: {per_method}{left_out}",
    )


def _fmt(t: Trend) -> str:
    return f"rho {t.rho:+.2f} (n={t.n})" + (f", {t.note}" if t.note else "")


def nap_2(sizes: pd.DataFrame) -> dict[str, str]:
    """NAP-2 (Fig. 8): NAP count grows with the number of inputs, in train and test alike.

    ``sizes``: rows (model, layer, split, size, n_naps). Per (model, layer,
    split), the Spearman rho of count vs. size (:func:`~conceptscope.claims.rank_trend`;
    a count constant over the sizes is rho 0, "no change"). A layer rises
    when rho > 0 in every split of the table. Layers where a split is
    missing or has a single size cannot show a trend and are left out (named).
    PASS when at least half of the judged layers rise; NOT RUN when none can
    be judged, or a size is not > 0 or a count not a finite number >= 0.
    """
    problem = _columns(sizes, ("model", "layer", "split", "size", "n_naps"))
    if problem:
        return make_row("NAP-2", "", "NOT RUN", problem)
    if sizes.empty:
        return make_row("NAP-2", "", "NOT RUN", "no NAP counts per input size")
    problem = invalid_values(sizes, "n_naps", minimum=0, keys=("model", "layer", "split", "size"))
    problem = problem or invalid_values(sizes, "size", minimum=1, keys=("model", "layer", "split"))
    problem = problem or _duplicates(sizes, ["model", "layer", "split", "size"])
    if not problem and not (sizes["n_naps"] > 0).any():
        return make_row("NAP-2", "", "NOT RUN", _NO_NAPS)
    if problem:
        return make_row("NAP-2", "", "NOT RUN", f"invalid input-size table: {problem}")
    splits = sorted(sizes["split"].unique())
    rising, unjudged, parts = {}, [], []
    for (m, layer), g in sizes.groupby(["model", "layer"], sort=True):
        trends = {}
        for split in splits:
            part = g[g["split"] == split]
            trends[split] = rank_trend(part["size"], part["n_naps"]) if len(part) else None
        parts.append(f"{m}/{layer}: " + ", ".join(f"{s} " + (_fmt(t) if t else "missing") for s, t in trends.items()))
        if all(t is not None and t.defined for t in trends.values()):
            rising[(m, layer)] = all(t.rho > 0 for t in trends.values())
        else:
            unjudged.append(f"{m}/{layer}")
    left_out = f"; left out (a split missing or at one size): {unjudged}" if unjudged else ""
    detail = "; ".join(parts) + left_out
    if not rising:
        return make_row("NAP-2", "", "NOT RUN", f"no layer has two or more input sizes in every split; {detail}")
    n_up = sum(rising.values())
    return make_row(
        "NAP-2",
        f"{n_up} of {len(rising)} layers rise in every split ({', '.join(splits)})",
        "PASS" if n_up * 2 >= len(rising) else "FAIL",
        "rule: Spearman rho(size, NAP count) > 0 in every split, PASS on at least half the layers; " + detail,
    )


def nap_4(counts: pd.DataFrame) -> dict[str, str]:
    """NAP-4 (Sect. 6): later layers give more NAPs than early ones.

    ``counts``: rows (model, layer, depth, method, n_naps). Per (model,
    method), the Spearman rho of NAP count vs. layer depth (probed order;
    :func:`~conceptscope.claims.rank_trend`: a count constant over the
    layers is rho 0). (model, method)s with a single depth cannot show a
    trend and are left out (named). PASS when the median rho of the others is
    > 0; NOT RUN when none is left or a count or depth is not a finite number >= 0.
    """
    problem = _columns(counts, ("model", "layer", "depth", "method", "n_naps"))
    if problem:
        return make_row("NAP-4", "", "NOT RUN", problem)
    if counts.empty:
        return make_row("NAP-4", "", "NOT RUN", "no NAP counts")
    problem = invalid_values(counts, "n_naps", minimum=0, keys=("model", "layer", "method"))
    problem = problem or invalid_values(counts, "depth", minimum=0, keys=("model", "layer", "method"))
    problem = problem or _duplicates(counts, ["model", "layer", "method"])
    if problem:
        return make_row("NAP-4", "", "NOT RUN", f"invalid NAP counts: {problem}")
    if not (counts["n_naps"] > 0).any():
        return make_row("NAP-4", "", "NOT RUN", _NO_NAPS)
    trends = {key: rank_trend(g["depth"], g["n_naps"]) for key, g in counts.groupby(["model", "method"], sort=True)}
    defined = pd.Series({key: t.rho for key, t in trends.items() if t.defined}, dtype=np.float64)
    unjudged = [f"{m}/{method}" for (m, method), t in trends.items() if not t.defined]
    left_out = f"; left out (one depth): {unjudged}" if unjudged else ""
    if defined.empty:
        return make_row("NAP-4", "", "NOT RUN", f"no (model, method) has NAP counts at two or more depths{left_out}")
    med = float(defined.median())
    per_model = defined.groupby(level=0).median().round(2).to_dict()
    return make_row(
        "NAP-4",
        f"median Spearman rho(depth, NAP count) = {med:+.2f} over {len(defined)} (model, method)s",
        "PASS" if med > 0 else "FAIL",
        f"rule: median over (model, method) of rho > 0; median per model: {per_model}{left_out}",
    )


def _one_per_dense_layer(counts: pd.DataFrame) -> pd.DataFrame:
    """Dense layers are never aggregated: their NAPs are the same under every method name; keep one row."""
    dense = counts["kind"] == "dense" if "kind" in counts.columns else pd.Series(False, index=counts.index)
    first = ~counts[dense].duplicated(["model", "layer"])
    return pd.concat([counts[~dense], counts[dense][first]]).sort_index()


_NO_PAIRS = (
    "naps.accuracy_pairs is empty: pair two models of equal size on the same inputs (config/config.yaml pairs the "
    "MNIST CNN at two training budgets; config/paper/naps.yaml pairs ResNet50 and ResNet50V2)"
)


def nap_3(counts: pd.DataFrame, models: pd.DataFrame, pairs: list[list[str]]) -> dict[str, str]:
    """NAP-3 (Fig. 6 right): of two models of equal size, the more accurate gives more NAPs on most layers.

    ``counts``: the Fig. 6 rows (model, layer, depth, kind, method, n_naps);
    ``models``: rows (model, test_accuracy, n_parameters); ``pairs``: the
    ``naps.accuracy_pairs``. Per pair, layers are matched by position
    (``depth``) and compared per disentanglement (a dense layer once: its NAPs
    are the same under every method). A cell counts as "more" when the more
    accurate model has strictly more NAPs; cells where both have none are left
    out (nothing to compare). A pair is left out (named) when the accuracies
    are equal or the parameter counts differ by more than
    :data:`~conceptscope.naps.settings.SIZE_TOLERANCE` of the larger. PASS
    when more than half of all compared cells are "more"; NOT RUN without
    pairs, with an accuracy outside [0, 1] or NaN, or without cells.
    """
    if not pairs:
        return make_row("NAP-3", "", "NOT RUN", _NO_PAIRS)
    problem = _columns(counts, ("model", "layer", "depth", "method", "n_naps")) or _columns(
        models, ("model", "test_accuracy", "n_parameters")
    )
    if problem:
        return make_row("NAP-3", "", "NOT RUN", problem)
    problem = invalid_values(models, "test_accuracy", minimum=0, maximum=1, keys=("model",))
    problem = problem or invalid_values(models, "n_parameters", minimum=1, keys=("model",))
    problem = problem or invalid_values(counts, "n_naps", minimum=0, keys=("model", "layer", "method"))
    if problem:
        return make_row("NAP-3", "", "NOT RUN", f"no evidence: {problem}")
    info = models.set_index("model")
    counts = _one_per_dense_layer(counts)
    more = compared = 0
    parts, left_out = [], []
    for a, b in pairs:
        missing = [m for m in (a, b) if m not in info.index or not (counts["model"] == m).any()]
        if missing:
            left_out.append(f"{a} vs {b}: no NAP counts or metrics for {missing}")
            continue
        acc_a, acc_b = float(info.at[a, "test_accuracy"]), float(info.at[b, "test_accuracy"])
        size_a, size_b = int(info.at[a, "n_parameters"]), int(info.at[b, "n_parameters"])
        if abs(size_a - size_b) > SIZE_TOLERANCE * max(size_a, size_b):
            left_out.append(f"{a} ({size_a:,} parameters) vs {b} ({size_b:,}): not of equal size")
            continue
        if acc_a == acc_b:
            left_out.append(f"{a} vs {b}: equal accuracy {acc_a:.4f}")
            continue
        hi, lo = (a, b) if acc_a > acc_b else (b, a)
        x = counts[counts["model"] == hi].set_index(["depth", "method"])["n_naps"]
        y = counts[counts["model"] == lo].set_index(["depth", "method"])["n_naps"]
        both = x.index.intersection(y.index)
        x, y = x[both], y[both]
        keep = (x > 0) | (y > 0)
        n_more, n = int((x[keep] > y[keep]).sum()), int(keep.sum())
        more, compared = more + n_more, compared + n
        parts.append(
            f"{hi} (acc {info.at[hi, 'test_accuracy']:.3f}) vs {lo} (acc {info.at[lo, 'test_accuracy']:.3f}), "
            f"{size_a:,} / {size_b:,} parameters: more NAPs in {n_more} of {n} cells, "
            f"fewer in {int((x[keep] < y[keep]).sum())}; NAPs summed {int(x.sum())} vs {int(y.sum())}"
        )
    note = f"; left out: {left_out}" if left_out else ""
    if compared == 0:
        return make_row("NAP-3", "", "NOT RUN", "no pair of equal size and different accuracy with NAPs" + note)
    return make_row(
        "NAP-3",
        f"the more accurate model has more NAPs in {more} of {compared} (layer, method) cells",
        "PASS" if more * 2 > compared else "FAIL",
        "rule: of two models of equal size (parameters within "
        f"{SIZE_TOLERANCE:.0%}) on the same inputs, the one with the higher test accuracy has strictly more NAPs "
        "in more than half of the (layer position, disentanglement) cells (a dense layer once; cells without NAPs in "
        "either left out); " + "; ".join(parts) + note,
    )


def nap_5(counts: pd.DataFrame, alpha: float = 0.05) -> dict[str, str]:
    """NAP-5 (Fig. 9-14), measured: the NAPs the galleries show group inputs of one class beyond chance.

    ``counts``: the Fig. 6 rows with :func:`~conceptscope.naps.purity.purity_test`
    columns ``label_purity``, ``purity_null_mean``, ``purity_p``. A
    (model, layer, disentanglement) clustering is judged when it has two or
    more NAPs (shuffling one NAP's labels cannot change its purity); a dense
    layer once. It is label-coherent when ``purity_p`` < ``alpha``. PASS when
    at least half of the judged clusterings are; NOT RUN without the columns,
    with a purity or p outside (0, 1], or with nothing to judge. The
    galleries and follow-an-image figures themselves are shown, not judged.
    """
    problem = _columns(counts, ("model", "layer", "method", "n_naps", "label_purity", "purity_null_mean", "purity_p"))
    if problem:
        return make_row("NAP-5", "", "NOT RUN", f"{problem} (rerun fig6_disentanglement)")
    counts = _one_per_dense_layer(counts)
    judged = counts[counts["n_naps"] >= 2]
    keys = ("model", "layer", "method")
    problem = invalid_values(judged, "label_purity", minimum=0, maximum=1, keys=keys)
    problem = problem or invalid_values(judged, "purity_p", minimum=0, maximum=1, keys=keys)
    problem = problem or invalid_values(judged, "purity_null_mean", minimum=0, maximum=1, keys=keys)
    if problem:
        return make_row("NAP-5", "", "NOT RUN", f"invalid purity table: {problem}")
    few = len(counts) - len(judged)
    if judged.empty:
        return make_row("NAP-5", "", "NOT RUN", f"no clustering has two or more NAPs ({few} with fewer)")
    coherent = judged["purity_p"] < alpha
    per_model = {m: f"{int(c.sum())}/{len(c)}" for m, c in coherent.groupby(judged["model"], sort=True)}
    return make_row(
        "NAP-5",
        f"{int(coherent.sum())} of {len(judged)} clusterings have purer NAPs than chance; median label purity "
        f"{judged['label_purity'].median():.2f} vs {judged['purity_null_mean'].median():.2f} with shuffled labels",
        "PASS" if coherent.sum() * 2 >= len(judged) else "FAIL",
        "proxy for the galleries: label purity = share of NAP members carrying their NAP's majority label; "
        f"rule: purity above the label-permutation null at p < {alpha:g} (labels shuffled among the NAP members, "
        "sizes kept) in at least half of the (model, layer, disentanglement) clusterings with two or more NAPs "
        f"(a dense layer once); per model {per_model}; {few} clusterings with fewer than two NAPs left out; the "
        "galleries and follow-an-image figures are shown, not judged",
    )
