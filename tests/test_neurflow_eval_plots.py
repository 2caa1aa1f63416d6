"""Every NeurFlow evaluation plot writes a non-empty PNG from a small table, with NaN values and from one row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from conceptscope.neurflow import eval_plots as ep

NAN = float("nan")


def _optimality() -> pd.DataFrame:
    rows = []
    for layer in ("l1", "l2"):
        for tau in (10, 30):
            rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": 0, "target": 1, "tau": tau})
            rows[-1].update(kind="core", draw=-1, loss=0.3)
            for d in range(4):
                rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": 0, "target": 1, "tau": tau})
                rows[-1].update(kind="random", draw=d, loss=0.5 + 0.05 * d)
    return pd.DataFrame(rows)


def _fidelity() -> pd.DataFrame:
    rows = []
    for tau in (4, 8, 16, 20):
        for scope in ("single", "multi"):
            for mode in ("mask", "retain"):
                for kind, draws in (("core", [-1]), ("random", [0, 1]), ("extended", [0, 1])):
                    for c in (0, 1):
                        for draw in draws:
                            ra = NAN if c == 1 else 0.5 + 0.01 * tau + 0.1 * draw
                            rows.append({"model": "m", "class_index": c, "tau": tau, "scope": scope, "layer": "l1"})
                            rows[-1].update(mode=mode, set=kind, draw=draw, relative_accuracy=ra)
    return pd.DataFrame(rows)


def _fig11() -> pd.DataFrame:
    rows = []
    for method in ("integrated_gradients", "saliency", "knockoff"):
        for layer in ("l1", "l2"):
            for size in (0, 1, 5, 10):
                for agg in ("sum", "mean"):
                    for t in (0, 1):
                        r = NAN if (t == 1 or method == "knockoff") else -0.8 + 0.05 * size
                        rows.append({"model": "m", "layer": layer, "lower": "lo", "class_index": 0, "target": t})
                        rows[-1].update(method=method, size=size, aggregate=agg, r=r, n=20)
    return pd.DataFrame(rows)


def _fig10() -> pd.DataFrame:
    seconds = {"integrated_gradients": 2.0, "saliency": 0.1, "lrp": NAN, "smoothgrad": 20.0}
    return pd.DataFrame(
        {"model": "googlenet", "method": m, "cpu_seconds_per_target": s, "ratio_to_ig": s / 2.0}
        | {"status": "refused: no rule" if np.isnan(s) else "ok"}
        for m, s in seconds.items()
    )


def _table3() -> pd.DataFrame:
    pairs = {"neuronmct-neurflow": 0.7, "neuronmct-neucept": NAN, "neurflow-neucept": 0.4}
    return pd.DataFrame(
        {"model": m, "layer": "l1", "class_index": 0, "target": 0, "tau": 16, "pair": p, "f1": v}
        for m in ("resnet50", "mymodel")
        for p, v in pairs.items()
    )


def _table4() -> pd.DataFrame:
    return pd.DataFrame(
        {"model": "resnet50", "block": "layer4.0", "class_index": 0, "target": t, "tau": 16}
        | {"loss_core": [0.2, NAN, 0.5][t], "loss_l2": 0.4, "diff": [0.2, NAN, 0.5][t] - 0.4}
        for t in range(3)
    )


def _table5() -> pd.DataFrame:
    return pd.DataFrame(
        {"model": "m", "layer": lay, "class_index": 0, "target": t, "tau": 8, "k": k, "k_reference": 50}
        | {"overlap": NAN if (t, k) == (1, 70) else 8 - (k != 50)}
        for lay in ("l1", "l2")
        for t in (0, 1)
        for k in (30, 50, 70)
    )


def _fig18() -> pd.DataFrame:
    return pd.DataFrame(
        {"model": "m", "layer": f"b{d}", "depth": d, "scale": s, "share": v, "n_patches": 10}
        for d, shares in enumerate([(0.2, 0.3, 0.5), (0.5, 0.3, 0.2), (NAN, 0.5, 0.5)])
        for s, v in zip((1.0, 0.5, 0.25), shares, strict=True)
    )


CASES = {
    "optimality": (ep.plot_optimality, _optimality, {}),
    "fidelity_fig5": (ep.plot_fidelity, _fidelity, {"taus": (4, 8, 16)}),
    "fidelity_fig16": (ep.plot_fidelity, _fidelity, {"taus": (4, 8, 16, 20)}),
    "extended": (ep.plot_extended, _fidelity, {}),
    "correlation": (ep.plot_correlation, _fig11, {}),
    "methods": (ep.plot_methods, _fig11, {}),
    "timing": (ep.plot_timing, _fig10, {}),
    "sum_mean": (ep.plot_sum_mean, _fig11, {}),
    "overlaps": (ep.plot_overlaps, _table3, {}),
    "l2": (ep.plot_l2, _table4, {}),
    "k_ablation": (ep.plot_k_ablation, _table5, {}),
    "crops": (ep.plot_crops, _fig18, {}),
}


def _check_png(path) -> None:
    assert path.stat().st_size > 1000
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.std() > 0  # something is drawn


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_writes_a_png_with_nan_values(name, tmp_path):
    plot, make, kwargs = CASES[name]
    table = make()
    before = table.copy()
    path = tmp_path / f"{name}.png"
    plot(table, path, title=name, **kwargs)
    _check_png(path)
    pd.testing.assert_frame_equal(table, before)  # the table is not modified


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_draws_one_row_and_an_empty_table(name, tmp_path):
    plot, make, kwargs = CASES[name]
    table = make()
    table = table[table.notna().all(axis=1)]
    one = table.iloc[:1]
    plot(one, tmp_path / "one.png", title=name, **kwargs)
    _check_png(tmp_path / "one.png")
    plot(table.iloc[:0], tmp_path / "empty.png", title=name, **kwargs)
    _check_png(tmp_path / "empty.png")


def test_undefined_r_is_drawn_as_zero_like_the_rules(tmp_path, monkeypatch):
    """A layer where every r is undefined draws a line at 0 (what NF-3 counts), not a gap."""
    table = _fig11()
    table = table[(table["method"] == "knockoff")].assign(method="integrated_gradients")
    captured = {}
    real_save = ep._save

    def spy(fig, path, title):
        captured["y"] = [line.get_ydata() for line in fig.axes[0].lines if len(line.get_ydata()) > 2]
        real_save(fig, path, title)

    monkeypatch.setattr(ep, "_save", spy)
    ep.plot_correlation(table, tmp_path / "c.png")
    assert len(captured["y"]) == 2 and all(np.array_equal(y, [0.0, 0.0, 0.0]) for y in captured["y"])
