"""Calibration of posterior predictive replicates (slow).

For data drawn from the model a predictive p-value must be uniform. The
classical posterior predictive p-value (replicates over all posterior
draws) is not: it piles up near 0.5 (Meng 1994). The *sampled* posterior
predictive p-value is (Johnson 2007; Gosselin 2011): draw the parameters
from the estimator's own prior, simulate data, fit, take ONE posterior draw
and rank the data's test statistic among those of L = 99 replicates made
with it. Since (draw, data) has the law of (truth, data), the rank is
uniform on 0..L for any statistic -- when the posterior and the replicates
are right -- and not when the replicates miss a piece of the model
(measurement errors, background, truncation).

:func:`skhier.validation.simulation_based_calibration` runs this with its
``predictive`` argument; the line and the Gaussian mixture are checked inside
their SBC runs (tests/test_sbc.py), the other families here. Priors are
stated in data units and passed to the estimators, so the simulations use
exactly their priors. Uniformity: chi-square over 5 bins, rejected at the
suite's false-failure rate (tests.helpers.FALSE_FAILURE_RATE = 1e-3). The
statistic is the standard deviation of the data (of the objects'
likelihood-weighted means for per-object samples).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from skhier import HierarchicalDistanceEstimator, PopulationModel, PosteriorSamplesPopulation
from skhier.validation import simulation_based_calibration

from .helpers import FALSE_FAILURE_RATE

pytestmark = pytest.mark.slow

M = 100


def spread(name):
    """Test statistic: the standard deviation of each data set of ``name``."""
    def statistic(data):
        v = np.asarray(data[name], dtype=float)
        return {f"sd_{name}": v.reshape(len(v), -1).std(axis=1)}
    return statistic


def _assert_uniform(res):
    assert list(res.ranks) and all(k.startswith("predictive:") for k in res.ranks)
    for k, p in res.p_values.items():
        counts = np.bincount(res.ranks[k] * res.n_bins // (res.n_draws + 1), minlength=res.n_bins)
        assert p > FALSE_FAILURE_RATE, (k, p, counts.tolist())


def test_population_model_replicates_are_calibrated():
    priors = {"mu": ("normal", 1.0, 1.0), "tau": ("halfnormal", 0.5)}

    def simulate(rng):
        mu, tau = rng.normal(1.0, 1.0), abs(rng.normal(0.0, 0.5))
        e = rng.uniform(0.1, 0.5, 40)
        x = rng.normal(mu, tau, 40) + e * rng.standard_normal(40)
        return {}, x[:, None], None, {"X_err": e}

    res = simulation_based_calibration(PopulationModel(priors=priors), simulate, M, params=[],
                                       n_bins=5, random_state=2, predictive=spread("X"))
    _assert_uniform(res)


def test_distance_replicates_are_calibrated():
    """Cluster (normal prior on mu_r, half-normal on sigma_r) plus an EDSD
    field with a fixed length scale and a Beta(4, 1) cluster fraction."""
    L_FIELD = 800.0

    def simulate(rng):
        mu = stats.truncnorm.rvs(-10, np.inf, loc=500.0, scale=50.0, random_state=rng)
        sd = abs(rng.normal(0.0, 20.0))
        f = rng.beta(4.0, 1.0)
        n = 40
        r = stats.truncnorm.rvs(-mu / sd, np.inf, loc=mu, scale=sd, size=n, random_state=rng)
        r = np.where(rng.uniform(size=n) >= f, rng.gamma(3.0, L_FIELD, n), r)
        err = rng.uniform(0.05, 0.3, n)
        return {}, (1000.0 / r + err * rng.standard_normal(n))[:, None], None, {"X_err": err}

    est = HierarchicalDistanceEstimator(
        field="edsd", field_length_scale=L_FIELD, cluster_fraction_prior=(4.0, 1.0),
        mean_distance_prior=("normal", 500.0, 50.0),
        distance_dispersion_prior=("half-normal", 20.0))
    res = simulation_based_calibration(est, simulate, M, params=[], n_bins=5, random_state=3,
                                       predictive=spread("parallax"))
    _assert_uniform(res)


def test_posterior_samples_population_replicates_are_calibrated():
    """Gaussian per-object likelihoods (flat interim prior): theta_hat is then
    the measurement and its replicate a new theta plus an error of the same
    law, up to the objects' finite samples (200 each)."""
    priors = {"mu": ("normal", 0.0, 1.0), "tau": ("halfnormal", 1.0)}

    def simulate(rng):
        mu, tau = rng.normal(0.0, 1.0), abs(rng.normal(0.0, 1.0))
        n, k = 30, 200
        sig = rng.uniform(0.2, 0.6, n)
        d = rng.normal(mu, tau, n) + sig * rng.standard_normal(n)
        return {}, d[:, None] + sig[:, None] * rng.standard_normal((n, k)), None, {}

    res = simulation_based_calibration(PosteriorSamplesPopulation(priors=priors), simulate, M,
                                       params=[], n_bins=5, random_state=4,
                                       predictive=spread("theta_hat"))
    _assert_uniform(res)
