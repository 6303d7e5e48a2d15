"""Selection effects (skhier.selection) in the population estimators.

References used here, written independently of the code under test:
``scipy.integrate.quad`` for the detected fraction alpha(lambda); the known
truth of simulated selected samples; the Monte Carlo error of injections
measured over independent injection sets.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from skhier import PopulationModel, PosteriorSamplesPopulation
from skhier._distributions import (
    BetaFamily,
    BrokenPowerLawFamily,
    LogNormalFamily,
    NormalFamily,
    PowerLawFamily,
)
from skhier.datasets import (
    make_selected_velocities,
    make_transit_periods,
    transit_detection_probability,
)
from skhier.selection import (
    DetectionProbability,
    Injections,
    SelectionTerm,
    SelectionWarning,
    Window,
    injection_alpha,
    log_alpha_quadrature,
)

from .helpers import assert_mc_close, chi2_variance_ratio_bounds, mcse_mean, z_threshold

# ---------------------------------------------------------------------------
# alpha(lambda) against quad
# ---------------------------------------------------------------------------


def _logistic(t):
    return 1.0 / (1.0 + np.exp(-(t - 1.0) / 0.3))


CASES = [
    ("normal-logistic", NormalFamily(), [0.5, 2.0], DetectionProbability(_logistic), None),
    ("normal-window-true", NormalFamily(), [0.5, 2.0], Window(-1.0, 2.5, on="true"), None),
    ("normal-window-measured", NormalFamily(), [0.5, 2.0], Window(-1.0, 2.5), 0.3),
    ("normal-window-measured-sharp", NormalFamily(), [0.5, 2.0], Window(-1.0, 2.5), 1e-3),
    ("lognormal-transit", LogNormalFamily(), [np.log(10.0), 1.0],
     DetectionProbability(transit_detection_probability, breakpoints=(1.0,)), None),
    ("beta-logistic", BetaFamily(), [0.3, 5.0], DetectionProbability(lambda t: t**2), None),
    ("powerlaw-transit", PowerLawFamily(0.5, 500.0), [-1.3],
     DetectionProbability(transit_detection_probability, breakpoints=(1.0,)), None),
    ("brokenpowerlaw-transit", BrokenPowerLawFamily(0.5, 500.0), [0.5, -1.5, 12.0],
     DetectionProbability(transit_detection_probability, breakpoints=(1.0,)), None),
    ("lognormal-window-measured", LogNormalFamily(), [np.log(10.0), 1.0], Window(2.0, 50.0),
     1.5),
]


def _quad_alpha(family, params, selection, err):
    if isinstance(selection, Window) and isinstance(family, NormalFamily):
        # Closed form: the measured value is N(mu, tau^2 + e^2).
        s = np.hypot(params[1], err or 0.0)
        return (stats.norm.cdf(selection.high, params[0], s)
                - stats.norm.cdf(selection.low, params[0], s))

    def f(t):
        p = selection.probability(np.array(t), err) if selection.uses_error else \
            selection.probability(np.array(t))
        return float(p * np.exp(family.logpdf(np.array([t]), np.asarray(params))[0]))

    lo, hi = family.support
    pts = [b for b in getattr(selection, "breakpoints", lambda: ())() if lo < b < hi]
    if isinstance(family, BrokenPowerLawFamily):
        pts.append(params[2])
    if np.isinf(lo) or np.isinf(hi):
        # Split an infinite range at the points (quad takes no points there).
        edges = [lo] + sorted(pts) + [hi]
        return sum(integrate.quad(f, a, b, limit=400, epsabs=0, epsrel=1e-12)[0]
                   for a, b in zip(edges[:-1], edges[1:], strict=True))
    return integrate.quad(f, lo, hi, points=sorted(pts) or None, limit=400, epsabs=0,
                          epsrel=1e-12)[0]


@pytest.mark.parametrize("name, family, params, selection, err", CASES, ids=[c[0] for c in CASES])
def test_detected_fraction_matches_quad(name, family, params, selection, err):
    got = log_alpha_quadrature(selection, family, np.asarray(params)[None, :],
                               None if err is None else np.array([err]))
    want = _quad_alpha(family, params, selection, err)
    assert 1e-6 < want < 1
    np.testing.assert_allclose(np.exp(got).ravel(), want, rtol=1e-7)


def test_per_object_errors_interpolated_on_a_grid_match_the_exact_sum():
    """Beyond 64 distinct errors, alpha_i comes from a cubic spline in log e,
    accurate to 1e-5 per object (lognormal population: no closed form)."""
    rng = np.random.default_rng(0)
    e = rng.uniform(0.05, 3.0, 200)
    x = rng.uniform(-0.9, 2.4, 200)
    x = np.exp(x)
    sel = Window(0.3, 12.0)
    term = SelectionTerm(sel, LogNormalFamily(), x, e, n_obs=200, support_values=x)
    params = np.array([[0.5, 2.0], [1.0, 0.5], [-1.0, 1.0]])
    exact = log_alpha_quadrature(sel, LogNormalFamily(), params, e).sum(axis=1)
    np.testing.assert_allclose(term.log_alpha(params), exact, rtol=0, atol=1e-5 * 200)


def test_injection_alpha_and_its_claimed_error():
    """The injection estimate of alpha agrees with quad, and its claimed
    effective number N_eff matches the spread over 200 injection sets."""
    fam, params = LogNormalFamily(), np.array([[np.log(10.0), 1.0]])
    want = _quad_alpha(fam, params[0], DetectionProbability(transit_detection_probability), None)
    lo, hi = 0.5, 500.0
    ests, claims = [], []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        v = np.exp(rng.uniform(np.log(lo), np.log(hi), 4000))
        found = rng.uniform(size=v.size) < transit_detection_probability(v)
        inj = Injections(v, found, -np.log(v) - np.log(np.log(hi / lo)))
        la, n_eff = injection_alpha(inj, fam, params)
        ests.append(np.exp(la[0]))
        claims.append(n_eff[0])
    ests, claims = np.array(ests), np.array(claims)
    # Unbiased: the mean over sets agrees with quad within its Monte Carlo error.
    assert_mc_close(ests.mean(), want, ests.std(ddof=1) / np.sqrt(ests.size),
                    what="mean injection alpha")
    # Honest error: Var(alpha_hat) = alpha^2 / N_eff.
    ratio = ests.var(ddof=1) / np.mean(ests**2 / claims)
    lo_b, hi_b = chi2_variance_ratio_bounds(ests.size)
    assert lo_b < ratio < hi_b, ratio


# ---------------------------------------------------------------------------
# Fits: the selection correction removes the bias
# ---------------------------------------------------------------------------


def _z(est, name, truth):
    d = est.posterior_[name]
    return (d.mean() - truth) / d.std()


@pytest.fixture(scope="module")
def transit():
    return make_transit_periods(3000, random_state=0, n_injections=60_000)


def test_lognormal_periods_with_transit_selection(transit):
    d = transit
    naive = PopulationModel("lognormal", random_state=0).fit(d.X, X_err=d.X_err)
    fixed = PopulationModel("lognormal", selection=d.selection, random_state=0).fit(
        d.X, X_err=d.X_err)
    # Without the selection, the median period is biased low by > 5 sd.
    assert _z(naive, "mu", d.params[0]) < -5
    # With it, both parameters are within 3 sd of the truth.
    for name, truth in zip(("mu", "sigma"), d.params, strict=True):
        assert abs(_z(fixed, name, truth)) < 3, (name, _z(fixed, name, truth))
    assert fixed.selection_n_effective_ is None and fixed.selection_loglik_variance_ == 0.0


def test_injections_agree_with_the_analytic_detection_probability(transit):
    d = transit
    exact = PopulationModel("lognormal", selection=d.selection, random_state=0).fit(
        d.X, X_err=d.X_err)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SelectionWarning)  # enough injections: no warning
        inj = PopulationModel("lognormal", selection=d.injections, random_state=1).fit(
            d.X, X_err=d.X_err)
    n_obs = d.X.shape[0]
    assert inj.selection_n_effective_ > 4 * n_obs
    assert inj.selection_loglik_variance_ == pytest.approx(n_obs**2 / inj.selection_n_effective_)
    for name in ("mu", "sigma"):
        a, b = exact.posterior_[name], inj.posterior_[name]
        # Monte Carlo error of both posterior means, plus the shift that the
        # injections' own Monte Carlo error can cause: about one posterior sd
        # times the log-likelihood's Monte Carlo sd, N_obs / sqrt(N_eff).
        shift = b.std() * np.sqrt(inj.selection_loglik_variance_)
        err = np.sqrt(mcse_mean(a.std(), min(exact.n_effective_.values())) ** 2
                      + mcse_mean(b.std(), min(inj.n_effective_.values())) ** 2 + shift**2)
        assert_mc_close(b.mean(), a.mean(), err, n_assertions=2, what=name)


def test_too_few_injections_warn(transit):
    d = transit
    few = Injections(d.injections.values[:1500], d.injections.detected[:1500],
                     d.injections.log_reference_density[:1500])
    with pytest.warns(SelectionWarning, match="fewer than 4 x"):
        est = PopulationModel("lognormal", selection=few, random_state=0).fit(d.X, X_err=d.X_err)
    assert est.selection_n_effective_ < 4 * d.X.shape[0]


def test_truncated_velocities_with_a_window():
    d = make_selected_velocities(600, random_state=1)
    naive = PopulationModel(random_state=0).fit(d.X, X_err=d.X_err)
    fixed = PopulationModel(selection=d.selection, random_state=0).fit(d.X, X_err=d.X_err)
    assert _z(naive, "tau", d.dispersion) < -5
    assert abs(_z(fixed, "tau", d.dispersion)) < 3
    assert abs(_z(fixed, "mu", d.mean)) < 3


def test_background_enters_the_detected_fraction():
    """With outliers, the normaliser is (1 - f) alpha_pop + f alpha_bg per
    object, the background's true values being N(mu_b, sigma_b^2)."""
    d = make_selected_velocities(200, random_state=2)
    x, e = d.X[:, 0], d.X_err[:, 0]
    term = SelectionTerm(d.selection, NormalFamily(), x, e, n_obs=x.size, support_values=x)
    pop = np.array([[10.0, 700.0], [-50.0, 900.0]])
    bg = np.array([[0.0, 3000.0], [100.0, 5000.0]])
    f = np.array([0.1, 0.3])
    got = term.log_alpha_mixture(pop, np.log1p(-f), np.log(f), bg)
    s_pop = np.hypot(pop[:, 1:2], e[None, :])
    s_bg = np.hypot(bg[:, 1:2], e[None, :])
    a_pop = (stats.norm.cdf(1000.0, pop[:, :1], s_pop) - stats.norm.cdf(-1000.0, pop[:, :1], s_pop))
    a_bg = (stats.norm.cdf(1000.0, bg[:, :1], s_bg) - stats.norm.cdf(-1000.0, bg[:, :1], s_bg))
    want = np.log((1 - f[:, None]) * a_pop + f[:, None] * a_bg).sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_power_law_periods_from_posterior_samples():
    d = make_transit_periods(2500, distribution="powerlaw", params=(-1.3,),
                             random_state=3)
    rng = np.random.default_rng(4)
    fam = PowerLawFamily(0.5, 500.0)
    # Per-object posterior samples of each period (2 % errors, log-flat interim prior).
    logp = np.log(d.X[:, 0])
    samples = np.exp(logp[:, None] + 0.02 * rng.standard_normal((logp.size, 100)))
    samples = np.clip(samples, 0.5001, 499.99)
    kw = dict(interim_log_prior=-np.log(samples))
    naive = PosteriorSamplesPopulation(fam, random_state=0).fit(samples, **kw)
    fixed = PosteriorSamplesPopulation(fam, selection=d.selection, random_state=0).fit(
        samples, **kw)
    assert _z(naive, "alpha", -1.3) < -5
    assert abs(_z(fixed, "alpha", -1.3)) < 3


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_bad_selection_inputs():
    d = make_selected_velocities(100, random_state=0)
    X, E = d.X, d.X_err
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        PopulationModel(selection=lambda t: 2.0 + 0 * t).fit(X, X_err=E)
    with pytest.raises(ValueError, match="zero everywhere"):
        PopulationModel(selection=lambda t: 0.0 * t).fit(X, X_err=E)
    with pytest.raises(ValueError, match="excludes 1 observed value"):
        PopulationModel(selection=Window(-1000.0, 900.0)).fit(
            np.vstack([X[X[:, 0] < 900.0], [[950.0]]]),
            X_err=np.vstack([E[X[:, 0] < 900.0], [[50.0]]]))
    with pytest.raises(ValueError, match="detected is required"):
        Injections(np.arange(10.0), log_reference_density=np.zeros(10))
    with pytest.raises(ValueError, match="boolean array of shape"):
        Injections(np.arange(10.0), detected=np.ones(9, bool), log_reference_density=np.zeros(10))
    with pytest.raises(ValueError, match="no injection was detected"):
        Injections(np.arange(10.0), detected=np.zeros(10, bool),
                   log_reference_density=np.zeros(10))
    with pytest.raises(TypeError, match="selection must be"):
        PopulationModel(selection="window").fit(X, X_err=E)
    with pytest.raises(ValueError, match="has none"):
        PopulationModel(selection=Window(-1000.0, 1000.0)).fit(X)
    with pytest.raises(ValueError, match="low < high"):
        Window(3.0, 1.0)
    samples = np.random.default_rng(0).normal(size=(20, 50))
    with pytest.raises(ValueError, match="without outliers"):
        PosteriorSamplesPopulation(outliers=True, selection=_logistic).fit(samples)


def test_selection_does_not_modify_inputs_and_clones():
    from sklearn.base import clone

    d = make_selected_velocities(600, random_state=1)
    X, E = d.X.copy(), d.X_err.copy()
    est = PopulationModel(selection=d.selection, random_state=0)
    est.fit(X, X_err=E)
    np.testing.assert_array_equal(X, d.X)
    np.testing.assert_array_equal(E, d.X_err)
    again = clone(est).fit(X, X_err=E)
    np.testing.assert_array_equal(again.posterior_["tau"], est.posterior_["tau"])


def test_stats_reference_for_the_measured_window():
    """Window(on='measured') is Phi((high - t)/e) - Phi((low - t)/e)."""
    w = Window(-1.0, 2.0)
    t, e = np.array([-1.0, 0.5, 3.0]), 0.5
    np.testing.assert_allclose(w.probability(t, e),
                               stats.norm.cdf(2.0, t, e) - stats.norm.cdf(-1.0, t, e), rtol=1e-12)


# ---------------------------------------------------------------------------
# Calibration (slow)
# ---------------------------------------------------------------------------
_SBC_PRIORS = {"mu": ("normal", np.log(10.0), 0.5), "sigma": ("lognormal", 0.0, 0.3)}


def _simulate_selected_periods(rng):
    """Draw (mu, sigma) from the estimator's prior, then a transit survey of
    600 planets observes some of them (2 % period errors)."""
    mu = rng.normal(np.log(10.0), 0.5)
    sigma = np.exp(rng.normal(0.0, 0.3))
    P = np.exp(rng.normal(mu, sigma, 600))
    det = rng.uniform(size=P.size) < transit_detection_probability(P)
    p = P[det]
    e = 0.02 * p
    x = p + e * rng.standard_normal(p.size)
    return {"mu": mu, "sigma": sigma}, x[:, None], None, {"X_err": e[:, None]}


@pytest.mark.slow
def test_selection_simulation_based_calibration():
    """Talts et al. (2018) for PopulationModel with a transit selection: the
    ranks of the true (mu, sigma) among 49 posterior draws are uniform
    (chi-square, 10 bins, over 100 simulated surveys)."""
    from skhier.validation import simulation_based_calibration

    sel = DetectionProbability(transit_detection_probability, breakpoints=(1.0,))
    est = PopulationModel("lognormal", priors=_SBC_PRIORS, selection=sel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simulation_based_calibration(est, _simulate_selected_periods, 100, n_draws=49,
                                           random_state=0)
    for name in ("mu", "sigma"):
        assert res.p_values[name] > 1e-3 / 2, (name, res.p_values[name])


@pytest.mark.slow
@pytest.mark.parametrize("distribution, params", [("lognormal", (np.log(10.0), 1.0)),
                                                  ("powerlaw", (-1.3,))])
def test_selected_population_coverage_over_20_surveys(distribution, params):
    """20 simulated transit surveys: every posterior mean within z posterior
    sd of the truth (z = 3.9 for 40 checks at a 1e-3 false-failure rate:
    3 sd each would fail 10 % of the time), and the 90 % intervals cover at
    the nominal rate (binomial, 3 sd)."""
    covered, n = 0, 0
    z = z_threshold(n_assertions=20 * len(params))
    for seed in range(20):
        d = make_transit_periods(2500, distribution=distribution, params=params,
                                 random_state=100 + seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if distribution == "lognormal":
                est = PopulationModel("lognormal", selection=d.selection, random_state=seed).fit(
                    d.X, X_err=d.X_err)
                names = ("mu", "sigma")
            else:
                rng = np.random.default_rng(seed)
                logp = np.log(d.X[:, 0])
                s = np.exp(logp[:, None] + 0.02 * rng.standard_normal((logp.size, 32)))
                s = np.clip(s, 0.5001, 499.99)
                est = PosteriorSamplesPopulation(PowerLawFamily(0.5, 500.0), selection=d.selection,
                                                 random_state=seed).fit(
                    s, interim_log_prior=-np.log(s))
                names = ("alpha",)
        for name, truth in zip(names, params, strict=True):
            draws = est.posterior_[name]
            assert abs(draws.mean() - truth) < z * draws.std(), (seed, name)
            lo, hi = np.quantile(draws, [0.05, 0.95])
            covered += lo < truth < hi
            n += 1
    sd = np.sqrt(n * 0.9 * 0.1)
    assert abs(covered - 0.9 * n) < 3 * sd + 1, (covered, n)
