"""NeuCEPT-style model-X knockoff statistics: which lower channels a target neuron depends on.

NeuCEPT (Vu, Nguyen and Thai 2022 [1]_), the ``knockoff`` baseline of NeurFlow (Cao et
al., ICLR 2025, Fig. 10-11, Table 3), selects the critical neurons of a layer with model-X
knockoffs (Candes et al. 2018 [2]_): features ``X`` (n, p), here the lower block's channels'
spatially averaged activations over the class's patches, and a response ``y`` (n,), here
the target neuron's spatially averaged activation on the same patches.

1. Knockoffs ``X~`` are sampled from the Gaussian model-X construction: with the mean
   ``mu`` and covariance ``Sigma`` of ``X`` (knockpy's estimate: the empirical mean and the
   Ledoit-Wolf shrunk covariance) and a diagonal ``S``,
   ``X~ | X ~ N(X - (X - mu) Sigma^-1 S, 2 S - S Sigma^-1 S)``, so that
   ``Cov([X, X~]) = [[Sigma, Sigma - S], [Sigma - S, Sigma]]`` ([2]_ Sect. 3.1).
   The equicorrelated ``S`` (Barber and Candes 2015 [3]_ Sect. 2.1) is, for a correlation
   matrix, ``s_j = min(1, 2 lambda_min(Sigma))``; for a covariance matrix it is computed on
   the correlation matrix ``D^-1/2 Sigma D^-1/2`` (``D = diag(Sigma)``) and scaled back by
   ``D`` (:func:`equicorrelated_s`). knockpy (``GaussianSampler(method="equicorrelated")``)
   then multiplies ``S`` by the largest ``gamma`` found by a 10-step bisection on (0, 1) with
   ``2 Sigma - gamma S - 1e-5 I`` positive definite, i.e. ``gamma >= 1 - 2^-10`` for a
   well-conditioned ``Sigma`` (tested).
2. The lasso is fitted on ``[X, X~]`` (knockpy ``LassoStatistic``: sklearn ``LassoCV``,
   5-fold, or n folds below 5 rows) and the statistic is the coefficient difference
   ``W_j = |beta_j| - |beta~_j|`` ([2]_ Eq. 3.7); a larger ``W`` means a more important
   channel. NeuCEPT's critical neurons at a fixed count are the top-tau channels by ``W``
   (:func:`knockoff_neurons`).

Choices here (no silent fallbacks):

- The columns of ``X`` and ``y`` are standardized (mean 0, standard deviation 1) before the
  knockoffs and the lasso, as the R ``knockoff`` package's lasso statistic does (glmnet
  standardizes); knockpy's lasso tries fixed penalties 1e-4 .. 1e4, which otherwise depend
  on the activations' scale. ``W`` is thus in standard-deviation units.
- Constant columns (dead channels, ``max == min`` over the patches) are left out of the
  knockoff model and the fit and get ``W = 0`` (they carry no information about ``y``); a
  constant ``y`` gives ``W = 0`` everywhere.
- knockpy draws from numpy's global generator (``np.random.randn`` for the knockoffs,
  ``np.random.shuffle`` for the lasso's feature order) and takes no generator; it is seeded
  with ``seed`` inside a saved and restored global state. The response is declared
  Gaussian (knockpy would otherwise fit a logistic lasso to a ``y`` with two distinct values).

References
----------
.. [1] M. N. Vu, T. D. Nguyen, M. T. Thai, "NeuCEPT: Locally Discover Neural Networks'
   Mechanism via Critical Neurons Identification with Precision Guarantee",
   arXiv:2209.08448, 2022.
.. [2] E. Candes, Y. Fan, L. Janson, J. Lv, "Panning for Gold: 'Model-X' Knockoffs for
   High Dimensional Controlled Variable Selection", JRSS-B 80(3), 2018, arXiv:1610.02351.
.. [3] R. F. Barber, E. J. Candes, "Controlling the False Discovery Rate via Knockoffs",
   Annals of Statistics 43(5), 2015, arXiv:1404.5609.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from knockpy.knockoff_stats import LassoStatistic
from knockpy.knockoffs import GaussianSampler

from ..checks import check_int

__all__ = ["equicorrelated_s", "knockoff_neurons", "knockoff_statistics"]


@contextlib.contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's legacy global generator, which knockpy and captum draw from (they take no generator);
    its state is restored afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - the global generator is the one the libraries use
    try:
        np.random.seed(seed)  # noqa: NPY002
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _gaussian_knockoffs(Z: np.ndarray, seed: int) -> tuple[np.ndarray, Any]:
    """Equicorrelated Gaussian model-X knockoffs of ``Z`` (n, p) with knockpy, seeded.

    Returns the knockoffs (n, p) and knockpy's ``GaussianSampler`` (its ``Sigma`` and
    ``fetch_S()``).
    """
    with _numpy_global_seed(seed):
        sampler = GaussianSampler(Z, method="equicorrelated")
        return sampler.sample_knockoffs(), sampler


def knockoff_statistics(X: Any, y: Any, *, seed: int = 0) -> np.ndarray:
    """NeuCEPT's knockoff statistics ``W_j = |beta_j| - |beta~_j|`` of each feature for a response.

    Parameters
    ----------
    X : array-like, shape (n, p)
        Features: the lower channels' spatially averaged activations over the class's patches
        (rows: patches). Finite. Not modified.
    y : array-like, shape (n,)
        Response: the target neuron's spatially averaged activation on the same patches. Finite.
    seed : int
        Seed of the knockoff draw and of the lasso's feature order, 0 <= seed < 2**32 (numpy's
        global random state is restored afterwards).

    Returns
    -------
    ndarray of float64, shape (p,)
        ``W``; larger is more important; 0 for constant columns, and everywhere for a constant ``y``.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, ``y`` not 1-D, their lengths differ, n < 2, or either holds NaN or inf.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be a 1-D array with one value per row of X ({len(X)}), got shape {y.shape}")
    if len(X) < 2:
        raise ValueError(f"knockoff statistics need at least 2 samples (rows of X), got {len(X)}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite; they hold NaN or inf values")
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    n, p = X.shape
    W = np.zeros(p)
    live = np.ptp(X, axis=0) > 0
    if not live.any() or np.ptp(y) == 0:
        return W
    Z = X[:, live]
    Z = (Z - Z.mean(0)) / Z.std(0)
    t = (y - y.mean()) / y.std()
    Zk, _ = _gaussian_knockoffs(Z, seed)
    with _numpy_global_seed(seed):
        W[live] = LassoStatistic().fit(Z, Zk, t, y_dist="gaussian", cv=min(5, n))
    return W


def knockoff_neurons(W: Any, tau: int) -> np.ndarray:
    """NeuCEPT's critical neurons at a fixed count: the top-tau indices by ``W`` (ties: lower index first).

    Parameters
    ----------
    W : array-like, shape (p,)
        Knockoff statistics (:func:`knockoff_statistics`), finite.
    tau : int
        Number of neurons, 1 <= tau <= p.

    Returns
    -------
    ndarray of int64, shape (tau,)
        By decreasing ``W``.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 1 or not np.isfinite(W).all():
        raise ValueError(f"W must be a finite 1-D array, got shape {W.shape}")
    tau = check_int("tau", tau, minimum=1, maximum=len(W))
    return np.argsort(-W, kind="stable")[:tau].astype(np.int64)


def equicorrelated_s(Sigma: Any) -> np.ndarray:
    """The equicorrelated knockoff diagonal ``s`` of a covariance matrix (Barber and Candes 2015, Sect. 2.1).

    On the correlation matrix ``C = D^-1/2 Sigma D^-1/2`` (``D = diag(Sigma)``) every
    ``s_j = min(1, 2 lambda_min(C))``, the largest equal value with ``2 C - diag(s)``
    positive semi-definite, capped at 1; scaled back, ``s_j = min(1, 2 lambda_min(C)) D_jj``.

    Parameters
    ----------
    Sigma : array-like, shape (p, p)
        Symmetric positive definite, finite.

    Returns
    -------
    ndarray of float64, shape (p,)
        The diagonal of ``S``.

    Raises
    ------
    ValueError
        If ``Sigma`` is not a finite symmetric square matrix with a positive diagonal, or its
        correlation matrix is not positive definite.
    """
    Sigma = np.asarray(Sigma, dtype=np.float64)
    if Sigma.ndim != 2 or Sigma.shape[0] != Sigma.shape[1] or Sigma.shape[0] == 0:
        raise ValueError(f"Sigma must be a non-empty square matrix, got shape {Sigma.shape}")
    if not np.isfinite(Sigma).all() or not np.allclose(Sigma, Sigma.T, rtol=1e-10, atol=1e-12):
        raise ValueError("Sigma must be finite and symmetric")
    d = np.diag(Sigma)
    if (d <= 0).any():
        raise ValueError(f"Sigma must have a positive diagonal, got minimum {d.min()!r}")
    C = Sigma / np.sqrt(np.outer(d, d))
    lam = float(np.linalg.eigvalsh(C)[0])
    if lam <= 0:
        raise ValueError(f"Sigma must be positive definite; its correlation matrix has smallest eigenvalue {lam!r}")
    return min(1.0, 2.0 * lam) * d
