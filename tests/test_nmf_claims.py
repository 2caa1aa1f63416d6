"""NMF-1 and NMF-2 read the factorization behind the Fig. 3 table: its block scaling and the layers' residuals."""

from __future__ import annotations

import pandas as pd
import pytest

from conceptscope.nmf.claims import nmf_1, nmf_2


def _table(scaling: str = "frobenius", residuals=(0.5, 0.4, 0.3)) -> pd.DataFrame:
    """Two models whose dominance rises and eigen mean falls with depth (both claims would PASS)."""
    rows = []
    for model in ("a", "b"):
        for depth, r in enumerate(residuals):
            rows.append(
                {
                    "model": model,
                    "source": "coupled",
                    "layer": f"l{depth}",
                    "depth": depth,
                    "k": 3,
                    "eigen_mean": 3.0 - depth,
                    "diagonal_dominance": 0.6 + 0.1 * depth,
                    "relative_residual": r,
                    "block_scaling": scaling,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rule", [nmf_1, nmf_2])
def test_normalized_blocks_with_residuals_below_one_are_judged(rule):
    row = rule(_table())
    assert row["verdict"] == "PASS"
    assert "block scaling frobenius" in row["detail"] and "a/l0 0.500" in row["detail"]


@pytest.mark.parametrize("rule", [nmf_1, nmf_2])
def test_unnormalized_blocks_are_no_evidence(rule):
    # with unit-norm columns and one shared F, O_j's similarity follows the block norm (the default suite: reversing
    # the layer norms reversed the trend), so the paper's objective as written cannot confirm a depth trend
    row = rule(_table(scaling="none"))
    assert row["verdict"] == "NOT RUN"
    assert "block scaling ['none']" in row["detail"] and "nmf.block_scaling: frobenius" in row["detail"]
    assert row["measured_value"]  # the values are still shown


@pytest.mark.parametrize("rule", [nmf_1, nmf_2])
@pytest.mark.parametrize("bad", [1.386, 1.0, float("nan")])
def test_a_layer_fitted_worse_than_zeros_is_no_evidence(rule, bad):
    row = rule(_table(residuals=(0.6, 0.58, bad)))
    assert row["verdict"] == "NOT RUN"
    assert "worse than zeros" in row["detail"] and "a/l2" in row["detail"] and "b/l2" in row["detail"]


@pytest.mark.parametrize("rule", [nmf_1, nmf_2])
def test_a_table_without_the_fit_columns_says_so(rule):
    row = rule(_table().drop(columns=["relative_residual", "block_scaling"]))
    assert row["verdict"] == "PASS" and "block scaling not recorded" in row["detail"]


def test_eigen_k_at_or_above_n_components_is_refused():
    """The mean of all d eigenvalues of a d x d cosine-similarity matrix is 1: Fig. 3 could show no trend."""
    from conceptscope.nmf.settings import NmfSettings
    from conceptscope.settings import ConfigError

    with pytest.raises(ConfigError, match=r"nmf\.eigen_k \(default 3\) = 3 must be below n_components = 3"):
        NmfSettings.from_config({"models": ["m"], "n_components": 3})
    with pytest.raises(ConfigError, match=r"nmf\.eigen_k\.m = 5 must be below n_components = 4"):
        NmfSettings.from_config({"models": ["m"], "n_components": 4, "eigen_k": {"m": 5}})
    assert NmfSettings.from_config({"models": ["m"], "n_components": 3, "eigen_k": {"m": 2}}).eigen_k == {"m": 2}


def test_eigen_means_equal_up_to_float_noise_show_no_trend():
    table = pd.DataFrame(
        {"model": "m", "layer": ["a", "b", "c"], "depth": [0, 1, 2], "k": 3}
        | {"eigen_mean": [1.0, 1.0 + 2e-16, 1.0 + 4e-16], "diagonal_dominance": 0.5}
    )
    assert nmf_2(table)["verdict"] == "FAIL" and "rho: {'m': 0.0}" in nmf_2(table)["detail"]
