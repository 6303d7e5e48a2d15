"""Simulation-based calibration through the public utility (slow).

:func:`skhier.validation.simulation_based_calibration` (Talts et al. 2018)
draws parameters from the estimator's own prior, simulates data, fits, and
ranks each true value among posterior draws; for a correct posterior the
ranks are uniform. Both estimators here are run with ``standardize=False``,
so that their priors, stated in data units, do not depend on the data (a
data-dependent prior has no fixed joint distribution to simulate from). The
uniformity test is a chi-square over 10 bins of the ranks (0..99) with a
Bonferroni-corrected level of 0.001 over the parameters: a correct posterior
fails it with probability below 0.1 %. Each run also ranks the data's
standard deviation among replicates made with one posterior draw (the
sampled posterior predictive p-value), which calibrates the replicates.
"""

from __future__ import annotations

import numpy as np
import pytest

from skhier import BayesianGMM, RobustLineMixture
from skhier.validation import simulation_based_calibration

pytestmark = pytest.mark.slow

N_SIMULATIONS = 200


def _spread(name):
    """Posterior predictive check (sampled p-value, see tests/test_ppc_calibration.py):
    the standard deviation of each data set of ``name``."""
    def statistic(data):
        v = np.asarray(data[name], dtype=float)
        return {f"sd_{name}": v.reshape(len(v), -1).std(axis=1)}
    return statistic


def _assert_uniform(result):
    assert result.is_uniform(alpha=0.001), {
        k: (round(p, 5), np.bincount(result.ranks[k] * 10 // (result.n_draws + 1), minlength=10).tolist())
        for k, p in result.p_values.items()
    }


# -- RobustLineMixture -----------------------------------------------------------
N_LINE = 30
LINE_ERR = 0.3
BETA_PRIOR = (1.0, 4.0)


def _simulate_line(rng):
    """One data set from the documented priors, in data units (d = 1).

    The normal of the line is uniform in angle (slope = tan(phi)), the
    perpendicular offset N(0, 10^2) (intercept = offset * sqrt(1 + slope^2)),
    vertical scatter Half-Cauchy(0, 1), P_b ~ Beta(1, 4), background mean
    N(0, 1) and log background sd N(0, 1)."""
    slope = np.tan(rng.uniform(-np.pi / 2, np.pi / 2))
    intercept = rng.normal(0.0, 10.0) * np.sqrt(1.0 + slope**2)
    scatter = abs(rng.standard_cauchy())
    p_b = rng.beta(*BETA_PRIOR)
    yb, sb = rng.normal(), np.exp(rng.normal())
    x = rng.uniform(-2.0, 2.0, N_LINE)
    out = rng.uniform(size=N_LINE) < p_b
    y = np.where(
        out,
        rng.normal(yb, np.sqrt(sb**2 + LINE_ERR**2), N_LINE),
        slope * x + intercept + rng.normal(0.0, np.sqrt(scatter**2 + LINE_ERR**2), N_LINE),
    )
    truth = {"coef": [slope], "intercept": intercept, "scatter": scatter,
             "outlier_fraction": p_b}
    return truth, x[:, None], y, {"y_err": np.full(N_LINE, LINE_ERR)}


def test_line_mixture_sbc():
    est = RobustLineMixture(standardize=False, outlier_fraction_prior=BETA_PRIOR)
    res = simulation_based_calibration(est, _simulate_line, N_SIMULATIONS, random_state=1,
                                       predictive=_spread("y"))
    assert sorted(res.ranks) == ["coef[0]", "intercept", "outlier_fraction",
                                 "predictive:sd_y", "scatter"]
    _assert_uniform(res)


# -- BayesianGMM ------------------------------------------------------------------
N_GMM, K = 40, 2
E0, KAPPA0, NU0, PSI0 = 1.0, 0.1, 3.0, 0.3  # d = 1: nu0 = d + 2, Psi0 = c (nu0 - d - 1)


def _simulate_gmm(rng):
    """A two-component 1-D mixture from BayesianGMM's prior in data units:
    w ~ Dirichlet(1, 1), sigma_k^2 ~ InvGamma(nu0 / 2, Psi0 / 2),
    mu_k | sigma_k^2 ~ N(0, sigma_k^2 / kappa0)."""
    w = rng.dirichlet(np.full(K, E0))
    var = (0.5 * PSI0) / rng.gamma(0.5 * NU0, size=K)
    mu = rng.normal(0.0, np.sqrt(var / KAPPA0))
    z = rng.choice(K, size=N_GMM, p=w)
    x = rng.normal(mu[z], np.sqrt(var[z]))
    truth = {"weights": w, "means": mu[:, None], "covariances": var[:, None, None]}
    return truth, x[:, None], None, None


def _sorted_components(draws):
    """Label-free functions of a mixture draw: components ordered by their mean."""
    mu = np.asarray(draws["means"])[..., 0]
    order = np.argsort(mu, axis=1)
    w = np.take_along_axis(np.asarray(draws["weights"]), order, axis=1)
    sd = np.sqrt(np.take_along_axis(np.asarray(draws["covariances"])[..., 0, 0], order, axis=1))
    mu = np.take_along_axis(mu, order, axis=1)
    return {"mean_low": mu[:, 0], "mean_high": mu[:, 1], "weight_low": w[:, 0],
            "sd_low": sd[:, 0], "sd_high": sd[:, 1]}


def test_bayesian_gmm_sbc():
    est = BayesianGMM(
        n_components=K, weight_concentration=E0, mean_precision_prior=KAPPA0,
        covariance_prior=PSI0, standardize=False, n_chains=2, n_iter=1200, n_burn=200,
    )
    assert est._prior(1)[1] == NU0  # the documented default nu0 = d + 2
    res = simulation_based_calibration(
        est, _simulate_gmm, N_SIMULATIONS, statistic=_sorted_components, random_state=2,
        predictive=_spread("X"),
    )
    assert sorted(res.ranks) == ["mean_high", "mean_low", "predictive:sd_X", "sd_high", "sd_low",
                                 "weight_low"]
    _assert_uniform(res)
