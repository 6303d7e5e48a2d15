"""Calibration of RobustLineMixture's population model for the true X (slow)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skhier import RobustLineMixture
from skhier.validation import simulation_based_calibration

from .helpers import z_threshold
from .test_line_population import _attenuation_data

pytestmark = pytest.mark.slow

N_SETS = 20
CONFIGS = [(1, 0.0), (1, 0.1), (2, 0.0), (2, 0.1)]


@pytest.mark.parametrize("d, outlier_fraction", CONFIGS,
                         ids=["d1", "d1-outliers", "d2-correlated", "d2-correlated-outliers"])
def test_slopes_unbiased_and_intervals_cover(d, outlier_fraction):
    # The setting (300 points, x errors 0.8 against a unit spread of
    # the true x; d = 2 with x errors correlated at rho = 0.5), 20 data sets,
    # the default model (population model, outlier mixture when there are
    # outliers), short emcee runs (300 steps of 32 walkers; each fit's
    # effective sample size of the slopes is checked to be >= 100 — importance
    # sampling is not valid here: with x errors 0.8 the scatter's posterior
    # has a long tail towards zero).
    # Every posterior mean slope lies within z posterior sd of the truth,
    # z = 4.3 for a 1e-3 false-failure rate over the 20 x (1 + 1 + 2 + 2)
    # slopes of the four configurations (3 sd on each would fail a correct
    # model in 1 run out of 4); the 90 % intervals cover at least
    # 18 - 3 x 1.34 = 14 of 20 times (Binomial(20, 0.9): mean 18, sd 1.34).
    z = z_threshold(1e-3, N_SETS * 6)
    hits = np.zeros(d, dtype=int)
    for seed in range(N_SETS):
        X, y, errors, coef, _ = _attenuation_data(1000 + seed, d=d,
                                                  outlier_fraction=outlier_fraction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # ESS checked below
            est = RobustLineMixture(outliers=outlier_fraction > 0, sampler="emcee",
                                    n_steps=300, n_burn=75,
                                    random_state=seed).fit(X, y, **errors)
        assert all(est.n_effective_[f"coef[{j}]"] >= 100 for j in range(d)), est.n_effective_
        draws = est.posterior_["coef"]
        mean, sd = draws.mean(axis=0), draws.std(axis=0)
        assert np.all(np.abs(mean - coef) < z * sd), (seed, mean, sd)
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        hits += (lo < coef) & (coef < hi)
    assert np.all(hits >= 14), hits


# -- simulation-based calibration of the population parameters ----------------
N_SBC, N_POINTS, X_ERR, Y_ERR = 100, 30, 0.5, 0.3


def _simulate(rng):
    """One data set from the estimator's documented priors in data units
    (``standardize=False``, d = 1, K = 1, no outliers): normal of the line
    uniform in angle, perpendicular offset N(0, 10^2), scatter
    Half-Cauchy(0, 1), population mean N(0, 2^2), population sd
    Half-Cauchy(0, 1)."""
    slope = np.tan(rng.uniform(-np.pi / 2, np.pi / 2))
    intercept = rng.normal(0.0, 10.0) * np.sqrt(1.0 + slope**2)
    scatter = abs(rng.standard_cauchy())
    mean, sd = rng.normal(0.0, 2.0), abs(rng.standard_cauchy())
    xi = rng.normal(mean, sd, N_POINTS)
    X = (xi + rng.normal(0.0, X_ERR, N_POINTS))[:, None]
    y = slope * xi + intercept + rng.normal(0.0, np.hypot(scatter, Y_ERR), N_POINTS)
    truth = {"coef": [slope], "intercept": intercept, "scatter": scatter,
             "x_mean": [[mean]], "x_cov": [[[sd**2]]], "x_true": xi[:, None]}
    return truth, X, y, {"y_err": np.full(N_POINTS, Y_ERR),
                         "X_err": np.full((N_POINTS, 1), X_ERR)}


def _first_points(draws):
    """The line, the population and the true x of the first three points."""
    out = {k: np.asarray(draws[k]) for k in ("coef", "intercept", "scatter", "x_mean", "x_cov")}
    out["x_true"] = np.asarray(draws["x_true"])[:, :3, 0]
    return out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_population_model_sbc():
    # Ranks of the line, the population parameters and three points' true x
    # (latent draws from sample_posterior); chi-square over 10 bins,
    # Bonferroni level 1e-3 over the parameters.
    # Fixed 500-step chains (150 burn-in) of 32 walkers (autocorrelation
    # times of this model are 20-30 steps on the 300-point setting): the 99
    # ranked draws are taken at random from ~11 000 and are close to
    # independent. Took 60 s here (130 s with automatic chain lengths).
    est = RobustLineMixture(standardize=False, outliers=False, sampler="emcee", n_steps=500,
                            n_burn=150)
    res = simulation_based_calibration(est, _simulate, N_SBC, random_state=2,
                                       statistic=_first_points)
    assert {"coef[0]", "intercept", "scatter"} <= set(res.ranks)
    assert any(k.startswith("x_mean") for k in res.ranks)
    assert any(k.startswith("x_true") for k in res.ranks)
    assert res.is_uniform(alpha=0.001), res.p_values
