"""Permutation baselines shared by the claim proxies and the atlas scores.

Every such score compares an observed value with draws under a null (labels
shuffled, random sets or directions of the same size) and reports the
one-sided p-value of Phipson and Smyth (2010), which counts the observed value
as one of the draws so that it is never 0: ``(1 + #{null >= observed}) / (1 + n)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["permutation_p_value"]


def permutation_p_value(observed: float, null: ArrayLike, *, tolerance: float = 0.0) -> float:
    """One-sided p-value of ``observed`` ("larger than chance") against the permutation draws ``null``.

    Parameters
    ----------
    observed : float
        The statistic on the real data.
    null : array-like of float, shape (n,)
        The statistic under ``n`` permutations.
    tolerance : float
        Draws within ``tolerance`` below ``observed`` count as reaching it (float
        noise of a statistic that ties exactly, e.g. a purity that a shuffle cannot change).

    Returns
    -------
    float
        ``(1 + #{null >= observed - tolerance}) / (1 + n)``, in [1 / (n + 1), 1]; NaN for ``n = 0``.
    """
    draws = np.asarray(null, dtype=np.float64).ravel()
    if draws.size == 0:
        return float("nan")
    return float((1 + np.count_nonzero(draws >= observed - tolerance)) / (1 + draws.size))
