"""Claimed effective sample sizes against the spread of independent fits.

Every fit reports ``n_effective_`` (and the engine results ``n_effective``):
the number of independent draws its posterior summaries are worth, from
which users read Monte Carlo errors (sd / sqrt(ESS)). Here the claim is put
to the test: the same problem is fitted with ``N_SEEDS`` seeds and the
variance across seeds of each sampled parameter's posterior mean is compared
with the claimed one, mean over seeds of ``posterior variance / ESS``. For
an honest claim their ratio is distributed as chi2(N_SEEDS - 1) / (N_SEEDS - 1);
the bounds below hold it with a false-failure rate of 1e-3 per test (shared
by the test's parameters). A ratio above the upper bound means the claim is
optimistic (Monte Carlo errors reported too small); below the lower bound,
needlessly pessimistic.

Run with ``-s`` to see the table of ratios (``make test-slow`` prints it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skhier import BayesianGMM, HierarchicalDistanceEstimator, PopulationModel, RobustLineMixture
from skhier._importance import run_importance
from skhier._sampling import run_emcee
from skhier.datasets import load_hogg2010, make_cluster_parallaxes, make_population

from .helpers import FALSE_FAILURE_RATE, chi2_variance_ratio_bounds

pytestmark = pytest.mark.slow

N_SEEDS = 30


def _check(label, means, variances, claims, names):
    """means, variances, claims: (N_SEEDS, p) per seed and sampled parameter."""
    means, variances, claims = (np.asarray(a, dtype=float) for a in (means, variances, claims))
    p = means.shape[1]
    lo, hi = chi2_variance_ratio_bounds(len(means), FALSE_FAILURE_RATE / p)
    across = means.var(axis=0, ddof=1)
    claimed = np.mean(variances / claims, axis=0)
    ratio = across / claimed
    for j in range(p):
        print(f"{label:34s} {names[j]:22s} claimed ESS {np.mean(claims[:, j]):7.0f}  "
              f"from spread {np.mean(variances[:, j]) / across[j]:7.0f}  "
              f"ratio {ratio[j]:.2f}  bounds [{lo:.2f}, {hi:.2f}]")
    assert np.all(ratio < hi), f"{label}: claimed ESS optimistic, ratios {ratio} > {hi:.2f}"
    assert np.all(ratio > lo), f"{label}: claimed ESS pessimistic, ratios {ratio} < {lo:.2f}"


# -- the engine --------------------------------------------------------------

_COV = np.array([[1.0, 0.9 * 2.0], [0.9 * 2.0, 4.0]])
_PREC = np.linalg.inv(_COV)


def _gauss(x):
    x = np.atleast_2d(x) - [1.0, -1.0]
    return -0.5 * np.einsum("ki,ij,kj->k", x, _PREC, x)


def test_run_emcee_claimed_ess():
    rows = []
    for seed in range(N_SEEDS):
        r = run_emcee(_gauss, [0.5, 0.0], n_walkers=32, n_steps="auto",
                      random_state=np.random.RandomState(seed))
        rows.append((r.samples.mean(0), r.samples.var(0), r.n_effective))
    m, v, c = map(np.array, zip(*rows, strict=True))
    _check("run_emcee, correlated Gaussian", m, v, c, ["x0", "x1"])


def test_run_importance_claimed_ess():
    rows = []
    for seed in range(N_SEEDS):
        r = run_importance(_gauss, [0.5, 0.0], n_draws=2000,
                           random_state=np.random.RandomState(seed))
        rows.append((r.samples.mean(0), r.samples.var(0), r.n_effective_params))
    m, v, c = map(np.array, zip(*rows, strict=True))
    _check("run_importance (stored draws)", m, v, c, ["x0", "x1"])


# -- the estimators ------------------------------------------------------------


def _estimator_rows(make_and_fit):
    rows = []
    for seed in range(N_SEEDS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = make_and_fit(seed)
        draws = est.chain_.reshape(-1, est.chain_.shape[-1])
        names = list(est.sampled_param_names_)
        rows.append((draws.mean(0), draws.var(0), [est.n_effective_[k] for k in names]))
    m, v, c = map(np.array, zip(*rows, strict=True))
    return m, v, c, names, est.sampler_


def _hogg():
    d = load_hogg2010()
    sl = slice(4, None)
    return d.X[sl], d.y[sl], d.y_err[sl]


@pytest.mark.parametrize("sampler", ["auto", "emcee"])
def test_line_claimed_ess(sampler):
    X, y, ey = _hogg()
    m, v, c, names, used = _estimator_rows(
        lambda s: RobustLineMixture(scatter="vertical", outliers=False, sampler=sampler,
                                    random_state=s).fit(X, y, y_err=ey))
    _check(f"RobustLineMixture ({used})", m, v, c, names)


@pytest.mark.parametrize("sampler", ["auto", "emcee"])
def test_population_claimed_ess(sampler):
    d = make_population(100, distribution="lognormal", params=(0.0, 0.5), err=0.3,
                        random_state=0)
    m, v, c, names, used = _estimator_rows(
        lambda s: PopulationModel("lognormal", sampler=sampler, random_state=s).fit(
            d.X, X_err=d.X_err))
    _check(f"PopulationModel lognormal ({used})", m, v, c, names)


@pytest.mark.parametrize("regime", ["far", "near"])
def test_distance_claimed_ess(regime):
    """Far: 40 % parallax errors; near: 1.5 % errors on 2000 stars, each star
    resolved against the cluster's depth (the frozen-rule path of big fits)."""
    if regime == "far":
        d = make_cluster_parallaxes(150, mean_distance=2000.0, distance_dispersion=30.0,
                                    parallax_error=0.2, random_state=0)
    else:
        d = make_cluster_parallaxes(2000, mean_distance=135.0, distance_dispersion=5.0,
                                    parallax_error=0.1, random_state=0)
    m, v, c, names, used = _estimator_rows(
        lambda s: HierarchicalDistanceEstimator(random_state=s).fit(d.X, X_err=d.X_err))
    _check(f"HierarchicalDistanceEstimator {regime} ({used})", m, v, c, names)


def test_gmm_gibbs_claimed_ess():
    """One component with per-point errors: the Gibbs chain alternates true
    positions and parameters, so its draws are autocorrelated."""
    rng = np.random.default_rng(7)
    e = rng.uniform(0.5, 1.5, 60)
    x = (rng.normal(0.7, 1.0, 60) + e * rng.standard_normal(60))[:, None]
    rows = []
    for seed in range(N_SEEDS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = BayesianGMM(n_components=1, n_chains=2, n_iter=700, n_burn=200,
                            random_state=seed).fit(x, X_err=e[:, None])
        mu = g.posterior_["means"][:, 0, 0]
        rows.append(([mu.mean()], [mu.var()], [g.n_effective_["means"][0, 0]]))
    m, v, c = map(np.array, zip(*rows, strict=True))
    _check("BayesianGMM Gibbs (deconvolution)", m, v, c, ["means[0, 0]"])
