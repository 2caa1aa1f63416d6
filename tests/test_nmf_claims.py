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
