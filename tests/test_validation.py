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


# -- n_jobs with a skhier estimator (big-catalogue/parallel block) -----------------------
def test_sbc_n_jobs_identical_with_a_skhier_estimator():
    """Per-simulation seeds are drawn up front: parallel runs of a real
    estimator give the same ranks and truths as sequential ones."""
    from skhier import RobustLineMixture

    from .helpers import FAST

    est = RobustLineMixture(scatter=None, outliers=False, **FAST)
    kw = dict(n_draws=19, random_state=3)
    a = simulation_based_calibration(est, _simulate_line, 4, n_jobs=1, **kw)
    b = simulation_based_calibration(est, _simulate_line, 4, n_jobs=2, **kw)
    for name in a.ranks:
        np.testing.assert_array_equal(a.ranks[name], b.ranks[name])  # integers
        np.testing.assert_allclose(a.truths[name], b.truths[name], rtol=1e-12)
    assert len(set(a.truths["coef[0]"])) == 4  # a different simulation each time


def _simulate_line(rng):
    m = rng.normal(1.0, 0.1)
    X = rng.uniform(-1, 1, size=(20, 1))
    y = m * X[:, 0] + rng.normal(0, 0.1, 20)
    return {"coef": [m]}, X, y, {"y_err": np.full(20, 0.1)}
