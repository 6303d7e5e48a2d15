"""Simulators with known truth, for tests, examples and calibration studies."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_line_with_outliers"]


def make_line_with_outliers(
    n_samples: int = 50,
    *,
    n_features: int = 1,
    coef=2.0,
    intercept: float = 1.0,
    scatter: float = 0.5,
    outlier_fraction: float = 0.2,
    outlier_mean: float = 0.0,
    outlier_std: float = 10.0,
    y_err=(0.5, 1.0),
    x_err: float = 0.0,
    x_range=(-5.0, 5.0),
    random_state=None,
) -> Bunch:
    """Simulate points around a line/hyperplane with errors and outliers.

    True positions ``x_true ~ U(x_range)`` per column; inliers
    ``y_true = x_true @ coef + intercept + N(0, scatter^2)``; outliers (a
    random ``outlier_fraction`` of the points) ``y_true ~ N(outlier_mean,
    outlier_std^2)``. Observations add Gaussian noise with per-point
    ``y_err ~ U(*y_err)`` and ``X_err = x_err`` — the generative model of
    :class:`~skhier.RobustLineMixture`.

    Parameters
    ----------
    n_samples : int, default=50
    n_features : int, default=1
    coef : float or array of shape (n_features,), default=2.0
    intercept, scatter : float
    outlier_fraction : float in [0, 1), default=0.2
        Each point is an outlier independently with this probability.
    outlier_mean, outlier_std : float
        Background Gaussian of the outliers.
    y_err : float or (low, high), default=(0.5, 1.0)
        Per-point y standard deviations, fixed or drawn uniformly.
    x_err : float, default=0.0
        Standard deviation of the x errors (0: x known exactly).
    x_range : (low, high), default=(-5, 5)
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X``, ``y``, ``y_err``, ``X_err`` (None when ``x_err == 0``),
        ``is_outlier`` (bool), ``X_true``, ``y_true`` and the truth in
        ``coef``, ``intercept``, ``scatter``, ``outlier_fraction``.

    Examples
    --------
    >>> from skhier.datasets import make_line_with_outliers
    >>> d = make_line_with_outliers(100, random_state=0)
    >>> d.X.shape, d.y.shape, d.is_outlier.dtype
    ((100, 1), (100,), dtype('bool'))
    """
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction must be in [0, 1), got {outlier_fraction}.")
    rng = check_random_state(random_state)
    coef = np.broadcast_to(np.asarray(coef, dtype=float), (n_features,)).copy()
    X_true = rng.uniform(x_range[0], x_range[1], size=(n_samples, n_features))
    y_true = X_true @ coef + intercept + scatter * rng.standard_normal(n_samples)
    is_outlier = rng.uniform(size=n_samples) < outlier_fraction
    y_true[is_outlier] = outlier_mean + outlier_std * rng.standard_normal(int(is_outlier.sum()))
    if np.ndim(y_err) == 0:
        y_sd = np.full(n_samples, float(y_err))
    else:
        y_sd = rng.uniform(y_err[0], y_err[1], size=n_samples)
    y = y_true + y_sd * rng.standard_normal(n_samples)
    X_err = None
    X = X_true.copy()
    if x_err > 0:
        X_err = np.full((n_samples, n_features), float(x_err))
        X = X_true + X_err * rng.standard_normal(X.shape)
    return Bunch(
        X=X, y=y, y_err=y_sd, X_err=X_err, is_outlier=is_outlier,
        X_true=X_true, y_true=y_true, coef=coef, intercept=float(intercept),
        scatter=float(scatter), outlier_fraction=float(outlier_fraction),
    )
