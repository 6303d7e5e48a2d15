"""The base's per-object layer, tested directly on a toy model.

Membership probabilities, log predictive densities and the pointwise
log-likelihood of every estimator come from one hook
(``PosteriorMixin._object_logliks``). Here toy estimators whose hook is a
two-Gaussian mixture (member and background) or a three-component one (as
BayesianGMM's) with known draws check the layer against closed forms
computed independently (numpy only), for chunks of any size and for the
draw-subset policy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

import skhier._base as base_module
from skhier._base import BaseHierarchicalEstimator
from skhier._math import logmeanexp, row_chunks


class _ToyMixture(BaseHierarchicalEstimator):
    """x ~ (1 - f) N(mu, 1) + f N(0, 10): the draws are set by hand."""

    def __init__(self, background=True):
        super().__init__()
        self.background = background

    def fit(self, X=None, y=None):  # draws are set by hand in these tests
        return self

    def _object_logliks(self, x, draws, rows):
        mu, f = draws["mu"][:, None], draws["f"][:, None]
        lm = norm.logpdf(x[rows][None, :], mu, 1.0) + np.log1p(-f)
        if not self.background:
            return norm.logpdf(x[rows][None, :], mu, 1.0), None
        return lm, norm.logpdf(x[rows][None, :], 0.0, 10.0) + np.log(f)

    def _n_objects(self, x):
        return len(x)

    def _training_objects(self):
        return self.x_train_

    def _has_background(self):
        return self.background

    def _object_log_jacobian(self, x):
        return np.log(2.0)  # as if the data had been standardised by a scale 2


def _toy(n_draws=50, background=True, seed=0):
    rng = np.random.default_rng(seed)
    est = _ToyMixture(background=background)
    est.posterior_ = {"mu": rng.normal(1.0, 0.3, n_draws), "f": rng.uniform(0.05, 0.3, n_draws)}
    est.x_train_ = rng.normal(1.0, 2.0, 30)
    return est


def _reference(est, x, draws):
    """Densities per draw and object, written out without the layer."""
    mu, f = draws["mu"][:, None], draws["f"][:, None]
    pm = (1 - f) * norm.pdf(x[None, :], mu, 1.0)
    pb = f * norm.pdf(x[None, :], 0.0, 10.0)
    return pm, pb


@pytest.mark.parametrize("cells", [1, 7, 10**9])
def test_membership_and_predictive_density_match_closed_forms(cells, monkeypatch):
    monkeypatch.setattr(base_module, "OBJECT_CHUNK_CELLS", cells)
    est = _toy()
    x = np.linspace(-20.0, 20.0, 41)
    pm, pb = _reference(est, x, est.posterior_)
    proba = est._membership_proba(x)
    np.testing.assert_allclose(proba[:, 1], (pb / (pm + pb)).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(proba[:, 0], (pm / (pm + pb)).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    lpd = est._log_predictive_density(x)
    np.testing.assert_allclose(lpd, np.log((pm + pb).mean(axis=0)) - np.log(2.0), rtol=1e-12)
    table = est._pointwise_log_likelihood()
    pm, pb = _reference(est, est.x_train_, est.posterior_)
    np.testing.assert_allclose(table, np.log(pm + pb) - np.log(2.0), rtol=1e-12)


def test_without_background_everything_is_a_member():
    est = _toy(background=False)
    x = np.array([0.0, 5.0])
    np.testing.assert_array_equal(est._membership_proba(x), [[1.0, 0.0], [1.0, 0.0]])
    mu = est.posterior_["mu"][:, None]
    np.testing.assert_allclose(est._log_predictive_density(x),
                               np.log(norm.pdf(x, mu, 1.0).mean(axis=0)) - np.log(2.0), rtol=1e-12)


def test_draw_subset_policy():
    """Per-object summaries average over at most _max_object_draws draws, a
    fixed subset (deterministic); the pointwise table uses every draw."""
    est = _toy(n_draws=300)
    est._max_object_draws = 40
    sub = est._object_draws()
    assert len(sub["mu"]) == 40
    assert np.all(np.isin(sub["mu"], est.posterior_["mu"]))
    np.testing.assert_array_equal(est._object_draws()["mu"], sub["mu"])  # same call repeated
    x = np.array([-3.0, 0.5, 4.0])
    pm, pb = _reference(est, x, sub)
    np.testing.assert_allclose(est._log_predictive_density(x),
                               np.log((pm + pb).mean(axis=0)) - np.log(2.0), rtol=1e-12)
    assert est._pointwise_log_likelihood().shape == (300, 30)


def test_zero_density_in_both_components_counts_as_member():
    est = _toy(n_draws=4)
    est.posterior_["f"] = np.array([0.1, 0.1, 0.0, 0.0])

    def hook(x, draws, rows):  # both components -inf under the last two draws
        lm = np.where(draws["f"][:, None] > 0, 0.0, -np.inf) + np.zeros((4, len(x[rows])))
        return lm, lm + np.log(0.25)

    est._object_logliks = hook
    proba = est._membership_proba(np.zeros(3))
    # Two draws give 1/(1 + 0.25) = 0.8 membership, two count as members.
    np.testing.assert_allclose(proba[:, 0], (0.8 + 0.8 + 1 + 1) / 4, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)


def test_no_rows():
    est = _toy()
    assert est._membership_proba(np.empty(0)).shape == (0, 2)
    assert est._log_predictive_density(np.empty(0)).shape == (0,)


def test_math_helpers():
    t = np.log(np.array([[1.0, 1e-300], [3.0, 1e-300]]))
    np.testing.assert_allclose(logmeanexp(t, axis=0), np.log([2.0, 1e-300]), rtol=1e-12)
    np.testing.assert_allclose(logmeanexp(t + 1000.0, axis=1), np.log(np.mean(np.exp(t), axis=1)) + 1000.0,
                               rtol=1e-12)
    assert logmeanexp(np.full(3, -np.inf)) == -np.inf
    chunks = list(row_chunks(10, 3, 7))
    assert [c.start for c in chunks] == [0, 2, 4, 6, 8] and chunks[-1].stop == 10
    assert len(list(row_chunks(3, 10**6, 1))) == 3  # at least one row per chunk


class _ToyThreeGroups(_ToyMixture):
    """x ~ sum_k w_k N(m_k, 1) with three groups (as BayesianGMM's components)."""

    def _object_logliks(self, x, draws, rows):
        return [np.log(draws["w"][:, k, None]) + norm.logpdf(x[rows][None, :], draws["m"][:, k, None])
                for k in range(3)]

    def _n_groups(self):
        return 3


@pytest.mark.parametrize("cells", [1, 10**9])
def test_any_number_of_groups(cells, monkeypatch):
    """Membership and predictive densities over K tables (the mixture summed
    by log-sum-exp), against the densities written out."""
    monkeypatch.setattr(base_module, "OBJECT_CHUNK_CELLS", cells)
    rng = np.random.default_rng(3)
    est = _ToyThreeGroups()
    est.posterior_ = {"w": rng.dirichlet([2.0, 3.0, 4.0], 25),
                      "m": np.array([-4.0, 0.0, 5.0]) + 0.3 * rng.standard_normal((25, 3))}
    x = np.linspace(-8.0, 9.0, 18)
    dens = est.posterior_["w"][:, :, None] * norm.pdf(x[None, None, :], est.posterior_["m"][:, :, None])
    proba = est._membership_proba(x)
    assert proba.shape == (18, 3)
    np.testing.assert_allclose(proba, (dens / dens.sum(axis=1, keepdims=True)).mean(axis=0).T,
                               rtol=1e-12)
    np.testing.assert_allclose(est._log_predictive_density(x),
                               np.log(dens.sum(axis=1).mean(axis=0)) - np.log(2.0), rtol=1e-12)
