"""Frequentist coverage of RobustLineMixture's credible intervals (slow)."""

import numpy as np
import pytest

from skhier import RobustLineMixture
from skhier.datasets import make_line_with_outliers

N_SIM = 200


def _oracle_covers(d, truth):
    """Whether the 90% interval of weighted least squares on the true inliers
    with the true variances covers the truth: an exact-coverage reference on
    the same data, reported to tell data luck from miscalibration."""
    keep = ~d.is_outlier
    x, w = d.X[keep, 0], 1.0 / (d.y_err[keep] ** 2 + d.scatter**2)
    A = np.column_stack([x, np.ones_like(x)])
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    beta = cov @ A.T @ (w * d.y[keep])
    return np.abs(beta - truth) / np.sqrt(np.diag(cov)) < 1.6449


@pytest.mark.slow
def test_90pct_intervals_cover_truth_at_nominal_rate():
    # Fixed truth: 50 points on y = 2x + 1, x ~ U(-5, 5), vertical scatter 0.5,
    # y errors U(0.5, 1), 10% outliers from N(0, 20^2); the estimator's
    # default model (vertical scatter + outlier mixture). The number of
    # covering intervals is Binomial(N_SIM, 0.9): mean 180, sd 4.2.
    hits = np.zeros(2, dtype=int)
    oracle = np.zeros(2, dtype=int)
    truth = np.array([2.0, 1.0])
    for seed in range(N_SIM):
        d = make_line_with_outliers(
            50, coef=2.0, intercept=1.0, scatter=0.5, outlier_fraction=0.1,
            outlier_std=20.0, random_state=seed,
        )
        model = RobustLineMixture(random_state=seed).fit(d.X, d.y, y_err=d.y_err)
        for j, name in enumerate(("coef", "intercept")):
            lo, hi = np.quantile(np.ravel(model.posterior_[name]), [0.05, 0.95])
            hits[j] += lo < truth[j] < hi
        oracle += _oracle_covers(d, truth)
    expected, sd = 0.9 * N_SIM, np.sqrt(N_SIM * 0.9 * 0.1)
    for j, name in enumerate(("slope", "intercept")):
        assert abs(hits[j] - expected) <= 3 * sd, (name, hits[j], expected, sd, "oracle", oracle[j])
