import numpy as np
import pytest
from sklearn.base import BaseEstimator

from skhier.validation import rank_uniformity_test, simulation_based_calibration


class ConjugateNormalMean(BaseEstimator):
    """Exact posterior of mu for y_i ~ N(mu, 1), mu ~ N(0, 1); ``width``
    scales the posterior sd (1 = correct, < 1 = overconfident)."""

    def __init__(self, width=1.0, random_state=None):
        self.width = width
        self.random_state = random_state

    def fit(self, X, y=None):
        x = np.asarray(X, dtype=float).ravel()
        prec = 1.0 + x.size
        self.mean_, self.sd_ = x.sum() / prec, self.width / np.sqrt(prec)
        return self

    def sample_posterior(self, n_samples=1, random_state=None):
        rng = np.random.default_rng(random_state)
        return {"mu": rng.normal(self.mean_, self.sd_, n_samples)}


def _simulate(rng):
    mu = rng.normal()
    return {"mu": mu}, rng.normal(mu, 1.0, size=(10, 1)), None, None


def test_sbc_accepts_exact_posterior_and_rejects_overconfident_one():
    good = simulation_based_calibration(ConjugateNormalMean(), _simulate, 400, random_state=0)
    assert good.is_uniform()
    assert good.ranks["mu"].shape == (400,)
    assert good.ranks["mu"].min() >= 0 and good.ranks["mu"].max() <= 99
    bad = simulation_based_calibration(ConjugateNormalMean(width=0.5), _simulate, 400,
                                       random_state=0)
    assert not bad.is_uniform()
    assert bad.p_values["mu"] < 1e-6


def test_sbc_plot_and_parallel_runs_agree():
    a = simulation_based_calibration(ConjugateNormalMean(), _simulate, 20, random_state=1)
    b = simulation_based_calibration(ConjugateNormalMean(), _simulate, 20, random_state=1,
                                     n_jobs=2)
    np.testing.assert_array_equal(a.ranks["mu"], b.ranks["mu"])
    fig = a.plot()
    assert len(fig.axes) == 1


def test_rank_uniformity_test_detects_skew():
    rng = np.random.default_rng(0)
    assert rank_uniformity_test(rng.integers(0, 100, 1000), 99)[1] > 1e-3
    skewed = np.minimum(rng.integers(0, 100, 1000), rng.integers(0, 100, 1000))
    assert rank_uniformity_test(skewed, 99)[1] < 1e-6
    with pytest.raises(ValueError, match="ranks"):
        rank_uniformity_test([0, 200], 99)


def test_sbc_argument_checks():
    with pytest.raises(ValueError, match="n_simulations"):
        simulation_based_calibration(ConjugateNormalMean(), _simulate, 0)
    with pytest.raises(TypeError, match="simulate"):
        simulation_based_calibration(ConjugateNormalMean(), "nope", 3)
