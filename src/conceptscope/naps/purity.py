"""Label purity of a layer's NAPs against a permutation baseline: the measurable side of the NAP galleries (NAP-5).

The paper's galleries (Fig. 1, 7, 9-14) show that a NAP groups inputs the
model treats alike, often of one class. Measured here: the **label purity**
of a clustering, the share of NAP members that carry their NAP's majority
label (member-weighted over the NAPs; noise inputs are no NAP member), and
its **permutation null**, the same purity after the labels are shuffled among
the members (NAP sizes kept). A purity above the null's 95th percentile says
the NAPs are more label-coherent than NAPs of the same sizes drawn at random.

With a single NAP, shuffling cannot change the purity (one NAP holds every
member): the p-value is 1 and such a layer shows nothing either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_int
from ..nulls import permutation_p_value

__all__ = ["PurityTest", "label_purity", "purity_test"]


def _members(nap: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nap, labels = np.asarray(nap), np.asarray(labels)
    if nap.shape != labels.shape or nap.ndim != 1:
        raise ValueError(f"nap and labels must be 1-d of one length, got shapes {nap.shape} and {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
    member = nap >= 0
    return nap[member].astype(np.int64), labels[member].astype(np.int64)


def _purity(codes: np.ndarray, labels: np.ndarray, n_naps: int, n_labels: int) -> float:
    counts = np.bincount(codes * n_labels + labels, minlength=n_naps * n_labels).reshape(n_naps, n_labels)
    return float(counts.max(axis=1).sum() / codes.size)


def label_purity(nap: np.ndarray, labels: np.ndarray) -> float:
    """Share of NAP members carrying their NAP's majority label.

    Parameters
    ----------
    nap : ndarray of int, shape (n_samples,)
        NAP of every input (:attr:`~conceptscope.naps.core.NapResult.nap`), -1 for noise.
    labels : ndarray of int, shape (n_samples,)
        Class of every input, >= 0.

    Returns
    -------
    float
        sum over NAPs of (count of its majority label) / number of members,
        in (0, 1]; NaN when no input is in a NAP.
    """
    codes, labs = _members(nap, labels)
    if codes.size == 0:
        return float("nan")
    return _purity(codes, labs, int(codes.max()) + 1, int(labs.max()) + 1)


@dataclass(frozen=True)
class PurityTest:
    """:func:`purity_test`'s result.

    Attributes
    ----------
    purity : float
        :func:`label_purity` of the NAPs (NaN without NAP members).
    null_mean, null_q95 : float
        Mean and 95th percentile of the purity with labels shuffled among the members.
    p_value : float
        (1 + #{null >= purity}) / (1 + n_permutations): one-sided, "purer than chance"; 1.0 without members.
    n_permutations : int
    """

    purity: float
    null_mean: float
    null_q95: float
    p_value: float
    n_permutations: int


def purity_test(nap: np.ndarray, labels: np.ndarray, *, n_permutations: int = 1000, seed: int = 0) -> PurityTest:
    """:func:`label_purity` against ``n_permutations`` shuffles of the labels among the NAP members.

    Deterministic for a ``seed`` (numpy's default generator). Raises ``ValueError`` for
    mismatched shapes, negative labels or ``n_permutations`` < 1.
    """
    n_permutations = check_int("n_permutations", n_permutations, minimum=1)
    codes, labs = _members(nap, labels)
    if codes.size == 0:
        nan = float("nan")
        return PurityTest(nan, nan, nan, 1.0, n_permutations)
    n_naps, n_labels = int(codes.max()) + 1, int(labs.max()) + 1
    observed = _purity(codes, labs, n_naps, n_labels)
    rng = np.random.default_rng(seed)
    null = np.array([_purity(codes, rng.permutation(labs), n_naps, n_labels) for _ in range(n_permutations)])
    p_value = permutation_p_value(observed, null, tolerance=1e-12)
    return PurityTest(observed, float(null.mean()), float(np.quantile(null, 0.95)), p_value, n_permutations)
