"""Failure honesty: a posterior that piles up against a hard prior bound is warned about.

The check (``skhier._base.prior_bound_messages``) counts the draws within
0.1 posterior sd of a bound; more than 2 % means the bound cuts into the
posterior (for a Gaussian-shaped posterior: the bound is within about one sd
of the mode; two sd away the band holds 0.5 %, so no warning).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skhier import (
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    PriorBoundWarning,
    RobustLineMixture,
)
from skhier._base import hard_prior_bounds, prior_bound_messages
from skhier.datasets import make_line_with_outliers

from .helpers import FAST


def _bound_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = fit()
    return est, [w for w in caught if issubclass(w.category, PriorBoundWarning)]


def _cluster(n=200, seed=1):
    rng = np.random.default_rng(seed)
    r = rng.normal(900.0, 5.0, n)
    err = np.full(n, 0.02)
    return (1000.0 / r + rng.normal(0.0, err))[:, None], err


# -- the check itself ---------------------------------------------------------
def test_messages_for_a_truncated_posterior_only():
    rng = np.random.default_rng(0)
    piled = {"a": np.abs(rng.normal(size=4000)), "b": 10.0 - np.abs(rng.normal(size=4000))}
    msgs = prior_bound_messages(piled, {"a": (0.0, 10.0), "b": (0.0, 10.0)})
    assert len(msgs) == 2
    assert "a is piled up against the lower bound 0" in msgs[0]
    assert "b is piled up against the upper bound 10" in msgs[1]
    # A Gaussian posterior 3 sd from the bound: 0.1 % of draws in the band.
    far = {"a": rng.normal(3.0, 1.0, 4000)}
    assert prior_bound_messages(far, {"a": (0.0, np.inf)}) == []
    # No finite bound, or a parameter without draws: nothing to say.
    assert prior_bound_messages(piled, {"a": (-np.inf, np.inf), "zzz": (0.0, 1.0)}) == []


def test_messages_per_column_with_per_column_bounds():
    rng = np.random.default_rng(1)
    draws = np.column_stack([rng.normal(5.0, 1.0, 3000), np.abs(rng.normal(size=3000))])
    msgs = prior_bound_messages({"mu": draws}, {"mu": (np.array([0.0, 0.0]), np.array([20.0, 20.0]))})
    assert len(msgs) == 1 and "mu[1]" in msgs[0]


def test_hard_bounds_ignore_natural_range():
    assert hard_prior_bounds((0.0, np.inf), (0.0, np.inf)) == (-np.inf, np.inf)
    assert hard_prior_bounds((-5.0, 5.0), (-np.inf, np.inf)) == (-5.0, 5.0)
    assert hard_prior_bounds((0.0, 1.0), (0.0, 1.0)) == (-np.inf, np.inf)


# -- estimators ------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["auto", "emcee"])
def test_distance_warns_when_mean_prior_cuts_the_posterior(sampler):
    X, err = _cluster()
    # The cluster is at ~900 pc (posterior sd ~0.4 pc); a prior ending at 899 cuts it.
    kw = {"sampler": sampler, "random_state": 0}
    if sampler == "emcee":
        kw.update(n_walkers=16, n_steps=400, n_burn=200)
    est, caught = _bound_warnings(
        lambda: HierarchicalDistanceEstimator(mean_distance_prior=("uniform", 1.0, 899.0), **kw)
        .fit(X, X_err=err)
    )
    assert len(caught) == 1
    assert "mean_distance" in str(caught[0].message) and "upper bound 899" in str(caught[0].message)
    assert est.prior_bound_messages_ == [str(caught[0].message)]


def test_distance_default_prior_does_not_warn():
    X, err = _cluster()
    est, caught = _bound_warnings(
        lambda: HierarchicalDistanceEstimator(random_state=0).fit(X, X_err=err)
    )
    assert caught == [] and est.prior_bound_messages_ == []
    assert abs(est.mean_distance_ - 900.0) < 5.0


def test_population_warns_for_a_uniform_prior_edge_and_starts_inside_it():
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 1.0, 100)
    e = np.full(100, 0.3)
    # The data's median (~3) lies outside the prior's range: the fit must
    # still start inside the prior, and then warn.
    est, caught = _bound_warnings(
        lambda: PopulationModel(priors={"mu": ("uniform", -10.0, 2.8)}, random_state=0)
        .fit(x[:, None], X_err=e)
    )
    assert len(caught) == 1 and "mu" in str(caught[0].message)
    assert est.population_params_["mu"] < 2.8
    est, caught = _bound_warnings(
        lambda: PopulationModel(random_state=0).fit(x[:, None], X_err=e)
    )
    assert caught == []


def test_samples_population_warns_for_a_uniform_prior_edge():
    rng = np.random.default_rng(3)
    true = rng.normal(5.0, 1.0, size=100)
    obs = true + rng.normal(0.0, 0.5, size=100)
    X = obs[:, None] + 0.5 * rng.standard_normal((100, 200))
    est, caught = _bound_warnings(
        lambda: PosteriorSamplesPopulation(
            priors={"mu": ("uniform", 0.0, 4.5)}, n_walkers=16, n_steps=400, random_state=0
        ).fit(X)
    )
    assert len(caught) == 1 and "mu" in str(caught[0].message)


def test_line_has_no_hard_prior_bounds():
    data = make_line_with_outliers(n_samples=30, random_state=0)
    est, caught = _bound_warnings(
        lambda: RobustLineMixture(random_state=0, **FAST).fit(data.X, data.y, y_err=data.y_err)
    )
    assert caught == [] and est.prior_bound_messages_ == []
