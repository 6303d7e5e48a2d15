"""``sample_weight`` in ``fit``: each row's log-likelihood times its weight.

For every estimator (BayesianGMM's weights are tested in tests/test_gmm*.py):

- integer weights give the log posterior of the data with each row
  repeated that many times: the same function of the parameters, checked
  deterministically (differences between draws, rtol 1e-9: only summation
  order differs) -- and the fitted posteriors agree within Monte Carlo error
  (means and sds, false-failure rate tests.helpers.FALSE_FAILURE_RATE per
  test);
- a zero weight drops the row;
- invalid weights raise a ValueError naming ``sample_weight``, and the
  user's array is not modified;
- with metadata routing on, the weights reach ``fit`` and ``score`` row for
  row through Pipeline, cross_validate and GridSearchCV (requested by
  default, like the measurement errors).
"""

from __future__ import annotations

import numpy as np
import pytest

from skhier import (
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)

from .helpers import (
    assert_error_routing,
    assert_mc_close,
    encode_ids,
    ignore_convergence,
    mcse_mean,
    mcse_sd,
)

N = 24


def _line(rows, rng=None):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (N, 1))
    ey = rng.uniform(0.2, 0.4, N)
    y = 1.0 + 2.0 * X[:, 0] + rng.normal(0, 0.3, N) + ey * rng.standard_normal(N)
    y[:2] += 6.0  # two outliers
    return RobustLineMixture, {}, X[rows], y[rows], {"y_err": ey[rows]}


def _line_population(rows):
    rng = np.random.default_rng(1)
    ex, ey = np.full(N, 0.2), np.full(N, 0.2)
    xt = rng.normal(0, 1, N)
    X = (xt + ex * rng.standard_normal(N))[:, None]
    y = 1.0 - xt + rng.normal(0, 0.3, N) + ey * rng.standard_normal(N)
    return (RobustLineMixture, {"outliers": False}, X[rows], y[rows],
            {"y_err": ey[rows], "X_err": ex[rows, None]})


def _distance(rows):
    rng = np.random.default_rng(2)
    r = rng.normal(300.0, 10.0, N)
    r[:4] = rng.gamma(3.0, 400.0, 4)
    err = rng.uniform(0.1, 0.3, N)
    plx = 1000.0 / r + err * rng.standard_normal(N)
    return (HierarchicalDistanceEstimator, {"field": "edsd", "field_length_scale": 500.0},
            plx[rows, None], None, {"X_err": err[rows]})


def _population(rows):
    rng = np.random.default_rng(3)
    e = rng.uniform(0.2, 0.5, N)
    x = rng.normal(1.0, 0.5, N) + e * rng.standard_normal(N)
    priors = {"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 1.0)}
    return PopulationModel, {"priors": priors}, x[rows, None], None, {"X_err": e[rows]}


def _samples(rows):
    rng = np.random.default_rng(4)
    true = rng.normal(1.0, 0.5, N)
    X = (true + 0.3 * rng.standard_normal(N))[:, None] + 0.3 * rng.standard_normal((N, 60))
    priors = {"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 1.0)}
    return PosteriorSamplesPopulation, {"priors": priors}, X[rows], None, {}


CASES = {"line": _line, "line_population": _line_population, "distance": _distance,
         "population": _population, "samples": _samples}
WEIGHTS = np.random.default_rng(5).integers(0, 4, N)  # 0 to 3 copies of each row
WEIGHTS[:2] = (1, 2)  # the line's outliers stay in


def _sampler_coords(est, other):
    """``other``'s stored draws in ``est``'s sampler coordinates."""
    m = est.model_
    if isinstance(est, PosteriorSamplesPopulation):
        # x = (u - u0) / c, u the family's unconstrained parameters.
        P = m.params_from_dict(other.posterior_)
        u = np.concatenate([m.family.unconstrain(P[:, j]) for j in range(m.d)], axis=1)
        return (u - m.u0) / m.c
    if isinstance(est, HierarchicalDistanceEstimator):
        # (logit of mu_r's place in its uniform prior, log sigma_r, logit f);
        # L and the zero-point are fixed in these cases.
        from scipy.special import logit

        p = other.posterior_
        _, lo, hi = m.mean_prior
        return np.column_stack([logit((p["mean_distance"] - lo) / (hi - lo)),
                                np.log(p["distance_dispersion"]), logit(p["cluster_fraction"])])
    return m.unconstrain(other.posterior_)


def _assert_same_log_posterior(case, la, lb):
    """Log posteriors at the same parameters, up to a constant: float64
    rounding (rtol 1e-9 of the largest value) -- except the per-object
    samples' fast path, which sums single-precision features centred on the
    data (float32 eps 1.2e-7 per object, rtol 1e-5 of the largest value)."""
    tol = (1e-5 if case == "samples" else 1e-9) * np.abs(lb).max()
    np.testing.assert_allclose(la - la[0], lb - lb[0], rtol=0, atol=tol)


@ignore_convergence
@pytest.mark.parametrize("case", sorted(CASES))
def test_integer_weights_equal_repeated_rows(case, stat_seed):
    rows = np.arange(N)
    cls, params, X, y, errors = CASES[case](rows)
    weighted = cls(random_state=stat_seed, **params).fit(X, y, **errors, sample_weight=WEIGHTS)
    rep = np.repeat(rows, WEIGHTS)
    cls, params, Xr, yr, errors_r = CASES[case](rep)
    repeated = cls(random_state=stat_seed + 1, **params).fit(Xr, yr, **errors_r)

    # The same log posterior: differences between draws agree to rtol 1e-9.
    ta = _sampler_coords(weighted, repeated)[:200]
    tb = _sampler_coords(repeated, repeated)[:200]
    la, lb = weighted.model_.log_prob(ta), repeated.model_.log_prob(tb)
    _assert_same_log_posterior(case, la, lb)

    # The posteriors (independent runs) agree within Monte Carlo error.
    ta_, tb_ = weighted.summary(), repeated.summary()
    varies = (ta_["sd"] > 0).to_numpy()  # not constants (one component's weight)
    ta_, tb_ = ta_[varies], tb_[varies]
    k = len(ta_)
    assert_mc_close(ta_["mean"], tb_["mean"], mcse_mean(ta_["sd"], ta_["ess"]),
                    mcse_mean(tb_["sd"], tb_["ess"]), n_assertions=2 * k, what="means")
    # sds: kurtosis of the posterior up to ~6 allowed for (heavy outlier tails).
    assert_mc_close(ta_["sd"], tb_["sd"], mcse_sd(ta_["sd"], ta_["ess"], 6.0),
                    mcse_sd(tb_["sd"], tb_["ess"], 6.0), n_assertions=2 * k, what="sds")


@pytest.mark.parametrize("case", sorted(CASES))
def test_zero_weight_drops_the_row(case):
    rows = np.arange(N)
    w = np.ones(N)
    w[5] = 0.0
    cls, params, X, y, errors = CASES[case](rows)
    a = cls(random_state=0, **params).fit(X, y, **errors, sample_weight=w)
    keep = np.delete(rows, 5)
    cls, params, Xk, yk, errors_k = CASES[case](keep)
    b = cls(random_state=0, **params).fit(Xk, yk, **errors_k)
    t = _sampler_coords(b, b)[:100]
    la, lb = a.model_.log_prob(_sampler_coords(a, b)[:100]), b.model_.log_prob(t)
    _assert_same_log_posterior(case, la, lb)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("weights", "match"), [
    (-np.ones(N), "non-negative"),
    (np.r_[np.ones(N - 1), np.nan], "sample_weight"),
    (np.r_[np.ones(N - 1), np.inf], "sample_weight"),
    (np.ones(N - 1), "sample_weight"),
    (np.zeros(N), "sample_weight"),
])
def test_invalid_weights_are_refused(case, weights, match):
    cls, params, X, y, errors = CASES[case](np.arange(N))
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X, y, **errors, sample_weight=weights)


def test_weights_are_not_modified():
    cls, params, X, y, errors = _line(np.arange(N))
    w = WEIGHTS.astype(float)
    before = w.copy()
    cls(random_state=0, **params).fit(X, y, **errors, sample_weight=w)
    np.testing.assert_array_equal(w, before)


@ignore_convergence
@pytest.mark.parametrize("case", ["line", "distance", "samples"])
def test_weights_are_routed_like_the_errors(case):
    """Pipeline, cross_validate and GridSearchCV pass each fold's weights to
    fit and score without any set_*_request call (weights encode row ids;
    the distance fit takes one error for every star, so no X_err is needed)."""
    from .helpers import FAST

    cls, params, X, y, _ = CASES[case](np.arange(N))
    if case == "distance":
        params = {**params, "parallax_error": 0.2}
    est = cls(**params, **FAST, sampler="emcee", random_state=0)
    assert_error_routing(est, X, y, "sample_weight", encode_ids(N))


def test_set_fit_request_turns_the_routing_off():
    import sklearn
    from sklearn.pipeline import make_pipeline

    from .helpers import FAST

    cls, params, X, y, _ = _line(np.arange(N))
    seen = []

    class Recording(cls):
        def fit(self, X, y, sample_weight=None, **kw):
            seen.append(sample_weight)
            return super().fit(X, y, sample_weight=sample_weight, **kw)

    with sklearn.config_context(enable_metadata_routing=True):
        est = Recording(**FAST, sampler="emcee", random_state=0)
        make_pipeline(est).fit(X, y, sample_weight=WEIGHTS)
        assert seen[-1] is not None
        est = Recording(**FAST, sampler="emcee", random_state=0).set_fit_request(
            sample_weight=False)
        with pytest.raises((TypeError, ValueError), match="sample_weight"):
            make_pipeline(est).fit(X, y, sample_weight=WEIGHTS)  # nobody consumes them
