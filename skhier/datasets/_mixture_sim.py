"""Gaussian mixtures observed with heteroscedastic Gaussian errors."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_mixture_with_errors"]


def make_mixture_with_errors(
    n_samples: int = 500,
    *,
    weights=(0.5, 0.3, 0.2),
    means=((0.0, 0.0), (6.0, 0.0), (0.0, 6.0)),
    covariances=None,
    error_scale=0.0,
    full_error_cov: bool = False,
    random_state=None,
) -> Bunch:
    """Simulate a Gaussian mixture observed with per-point Gaussian errors.

    True positions ``X_true`` are drawn from ``sum_k w_k N(means[k],
    covariances[k])``; each point is then observed with its own error
    covariance ``S_i``: ``X = X_true + N(0, S_i)`` -- the generative model
    of :class:`~skhier.BayesianGMM` with ``X_err``/``X_cov``.

    Parameters
    ----------
    n_samples : int, default=500
    weights : array-like of shape (K,), default=(0.5, 0.3, 0.2)
        Mixing weights (normalised to sum to 1).
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d), (K,) or None, default=None
        Full covariances, or one isotropic variance per component; None
        means identity matrices.
    error_scale : float or (low, high), default=0.0
        Per-point error standard deviations, one per coordinate, fixed or
        drawn uniformly from ``[low, high)``. 0 means exact measurements
        (then ``X_err`` and ``X_cov`` are None).
    full_error_cov : bool, default=False
        Give each point a random error correlation (``X_cov`` with
        off-diagonal terms, correlation uniform in (-0.8, 0.8), d = 2 or
        more); otherwise errors are independent per coordinate.
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n, d) observed; ``X_err`` (n, d) standard deviations and
        ``X_cov`` (n, d, d) full error covariances (None without errors);
        ``X_true`` (n, d); ``labels`` (n,) true component; the truth in
        ``weights``, ``means``, ``covariances``.

    Examples
    --------
    >>> from skhier.datasets import make_mixture_with_errors
    >>> d = make_mixture_with_errors(200, error_scale=(0.5, 1.0), random_state=0)
    >>> d.X.shape, d.X_err.shape, d.X_cov.shape
    ((200, 2), (200, 2), (200, 2, 2))
    """
    rng = check_random_state(random_state)
    w = np.asarray(weights, dtype=float)
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative and not all zero.")
    w = w / w.sum()
    mu = np.atleast_2d(np.asarray(means, dtype=float))
    K, d = mu.shape
    if len(w) != K:
        raise ValueError(f"weights has {len(w)} entries but means has {K} rows.")
    if covariances is None:
        cov = np.tile(np.eye(d), (K, 1, 1))
    else:
        cov = np.asarray(covariances, dtype=float)
        if cov.ndim == 1:
            cov = cov[:, None, None] * np.eye(d)
        if cov.shape != (K, d, d):
            raise ValueError(f"covariances must have shape ({K}, {d}, {d}), got {cov.shape}.")
    labels = rng.choice(K, size=n_samples, p=w)
    L = np.linalg.cholesky(cov)
    X_true = mu[labels] + np.einsum("nij,nj->ni", L[labels], rng.standard_normal((n_samples, d)))
    X_err = X_cov = None
    X = X_true.copy()
    if np.ndim(error_scale) == 0 and float(error_scale) == 0.0:
        pass
    else:
        if np.ndim(error_scale) == 0:
            X_err = np.full((n_samples, d), float(error_scale))
        else:
            X_err = rng.uniform(error_scale[0], error_scale[1], size=(n_samples, d))
        X_cov = np.zeros((n_samples, d, d))
        X_cov[:, np.arange(d), np.arange(d)] = X_err**2
        if full_error_cov and d >= 2:
            rho = rng.uniform(-0.8, 0.8, size=n_samples)
            X_cov[:, 0, 1] = X_cov[:, 1, 0] = rho * X_err[:, 0] * X_err[:, 1]
        E = np.linalg.cholesky(X_cov)
        X = X_true + np.einsum("nij,nj->ni", E, rng.standard_normal((n_samples, d)))
    return Bunch(
        X=X, X_err=X_err, X_cov=X_cov, X_true=X_true, labels=labels,
        weights=w, means=mu, covariances=cov,
    )
