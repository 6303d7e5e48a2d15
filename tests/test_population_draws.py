"""Per-object true-value draws of PopulationModel (``sample_posterior``).

The draws of theta_i given x_i and the population parameters are compared
with the exact conditional distribution, whose CDF is computed here with
``scipy.integrate.quad`` from scipy's own densities (independent of the code
under test), for every family and for very narrow and very wide measurement
errors, objects at and beyond the support's bounds, populations that
diverge at a bound and populations far narrower than the measurement.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from skhier import PopulationModel
from skhier._distributions import BetaFamily, LogNormalFamily, NormalFamily
from skhier._population import make_marginal
from skhier.datasets import make_population

from .helpers import FALSE_FAILURE_RATE, z_threshold

FAMILIES = {"beta": BetaFamily(), "lognormal": LogNormalFamily(), "normal": NormalFamily()}

# (family, population parameters, measured x, its error e)
CASES = [
    ("beta", (0.3, 5.0), 0.25, 0.001),  # measurement much narrower than the population
    ("beta", (0.3, 5.0), 0.25, 0.5),  # much wider: posterior ~ population
    ("beta", (0.3, 5.0), -0.02, 0.03),  # measured below 0
    ("beta", (0.5, 0.4), 0.97, 0.05),  # density diverging at 0 and 1, object near 1
    ("beta", (0.1, 3.0), 0.0, 0.02),  # density diverging at 0, object at 0
    ("beta", (0.3, 1e4), 0.35, 0.1),  # population far narrower than the error
    ("beta", (0.3, 5.0), 1.4, 0.1),  # object far beyond the upper bound
    ("beta", (0.3, 20.0), 0.3, 0.1),
    ("lognormal", (1.0, 0.5), 2.7, 0.001),
    ("lognormal", (1.0, 0.5), 2.7, 20.0),
    ("lognormal", (1.0, 0.5), -0.3, 0.3),  # negative measurement
    ("lognormal", (1.0, 0.01), 3.5, 0.3),  # narrow population
    ("lognormal", (0.0, 2.0), 0.01, 0.05),  # mass next to 0
    ("lognormal", (1.0, 0.2), 2.7, 0.5),
    ("lognormal", (1.0, 0.3), 2.7, 1.0),  # narrow: the population's own grid
    ("lognormal", (1.0, 0.3), 17.7, 1.0),  # narrow, far in its tail: mode window
    ("beta", (0.3, 2000.0), 0.3, 0.1),  # narrow
    ("normal", (0.0, 1.0), 3.0, 0.01),
    ("normal", (0.0, 1.0), 3.0, 100.0),
]
N_DRAWS = 40_000
N_POINTS = 100  # CDF compared at the draws' quantiles i / N_POINTS


def _logpdf(name, params):
    if name == "beta":
        a, b = params[0] * params[1], (1.0 - params[0]) * params[1]
        return lambda t: stats.beta.logpdf(t, a, b)
    if name == "lognormal":
        return lambda t: stats.lognorm.logpdf(t, params[1], scale=np.exp(params[0]))
    return lambda t: stats.norm.logpdf(t, params[0], params[1])


def _reference_cdf(x, e, logpdf, points, lo, hi):
    """CDF of p(theta | x) ∝ N(x | theta, e^2) p(theta) at the sorted ``points``
    by quad over the segments between them (the tails to 40 errors beyond
    them, split geometrically towards the points)."""

    def dens(t):
        return np.exp(stats.norm.logpdf(x, t, e) + logpdf(t))

    a_lo = max(lo, min(points[0], x) - 40.0 * e)
    a_hi = min(hi, max(points[-1], x) + 40.0 * e)
    steps = e * 2.0 ** np.arange(-20, 7)
    b = np.unique(np.r_[a_lo, np.clip(points[0] - steps, a_lo, points[0]), points,
                        np.clip(points[-1] + steps, points[-1], a_hi), a_hi])
    seg = [integrate.quad(dens, p, q, limit=400, epsabs=0, epsrel=1e-11)[0] if q > p else 0.0
           for p, q in zip(b[:-1], b[1:], strict=True)]
    cum = np.r_[0.0, np.cumsum(seg)]
    return cum[np.searchsorted(b, points)] / cum[-1]


def _exact_cdf(name, params, x, e, points):
    fam = FAMILIES[name]
    lo, hi = fam.support
    cdf = _reference_cdf(x, e, _logpdf(name, params), points, lo, hi)
    if name == "beta":
        # Above 1/2, from the distance to 1 (a density diverging at 1 cannot be
        # integrated in theta once theta rounds to 1).
        up = points > 0.5
        a, b = params[0] * params[1], (1.0 - params[0]) * params[1]
        if up.any():
            dist = np.sort(1.0 - points[up])
            tail = _reference_cdf(1.0 - x, e, lambda t: stats.beta.logpdf(t, b, a), dist, 0, 1)
            cdf[up] = 1.0 - tail[::-1]
    return cdf


@pytest.mark.statistical(rate=FALSE_FAILURE_RATE)
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # the reference's
@pytest.mark.parametrize("case", range(len(CASES)))
def test_latent_draws_match_the_exact_conditional(case, stat_seed):
    """Kolmogorov-Smirnov distance between N_DRAWS draws of theta_i | x_i, alpha
    and the exact CDF, taken at N_POINTS quantiles of the draws (at most the
    full KS statistic, so its null tail is at most KS's). Threshold: the KS
    quantile for a false-failure rate of FALSE_FAILURE_RATE over all cases.
    The draws' own approximation (log-density linear between cells) errs by
    about 1e-3 in the CDF at most, measured at 2e6 draws, far below it."""
    name, params, x, e = CASES[case]
    marginal = make_marginal(FAMILIES[name], np.array([x]), np.array([e]))
    rng = np.random.default_rng(1000 + 37 * case + stat_seed)
    draws = marginal.sample(np.tile(params, (N_DRAWS, 1)), rng)[:, 0]
    assert np.all(np.isfinite(draws))
    lo, hi = FAMILIES[name].support
    assert np.all((draws >= lo) & (draws <= hi))
    idx = (np.arange(1, N_POINTS) * N_DRAWS) // N_POINTS
    points = np.sort(draws)[idx]
    distance = np.max(np.abs(_exact_cdf(name, params, x, e, points) - idx / N_DRAWS))
    limit = stats.kstwo.isf(FALSE_FAILURE_RATE / len(CASES), N_DRAWS)
    assert distance < limit, (distance, limit)


def test_latent_draws_of_many_objects_and_draws_at_once():
    """Draws for (draws x objects) tables, chunked over both, against each
    object's posterior mean and sd given the population (from the marginal's
    own quadrature, which tests/test_popmodel.py checks against quad)."""
    d = make_population(300, distribution="lognormal", params=(1.0, 0.5), err=(0.05, 1.0),
                        random_state=3)
    x, e = d.X[:, 0], d.X_err[:, 0]
    marginal = make_marginal(LogNormalFamily(), x, e)
    params = np.array([[1.0, 0.5]])
    n = 2000
    draws = marginal.sample(np.repeat(params, n, axis=0), np.random.default_rng(5))
    mean = marginal.posterior_mean(params)[0]
    sd = draws.std(axis=0)
    z = (draws.mean(axis=0) - mean) / (sd / np.sqrt(n))
    assert np.max(np.abs(z)) < z_threshold(FALSE_FAILURE_RATE, x.size)


@pytest.mark.parametrize("distribution", ["lognormal", "beta"])
def test_sample_posterior_reuses_its_cells_until_refit(distribution):
    """The sampling cells are placed once per fit: kept across calls, dropped
    from pickles, rebuilt by a refit; results do not depend on the cache."""
    params = (1.0, 0.5) if distribution == "lognormal" else (0.3, 5.0)
    err = (0.1, 0.5) if distribution == "lognormal" else (0.03, 0.1)
    d = make_population(1500, distribution=distribution, params=params, err=err,
                        random_state=0)
    est = PopulationModel(distribution, random_state=0).fit(d.X, X_err=d.X_err)
    first = est.sample_posterior(20, random_state=1)
    cells = est.model_.marginal._sample_cells
    again = est.sample_posterior(20, random_state=1)
    assert est.model_.marginal._sample_cells is cells
    np.testing.assert_array_equal(first["theta"], again["theta"])

    clone = pickle.loads(pickle.dumps(est))
    assert "_sample_cells" not in clone.model_.marginal.__dict__
    np.testing.assert_allclose(clone.sample_posterior(20, random_state=1)["theta"],
                               first["theta"], rtol=1e-12)

    d2 = make_population(1200, distribution=distribution, params=params, err=err,
                         random_state=1)
    est.fit(d2.X, X_err=d2.X_err)
    assert "_sample_cells" not in est.model_.marginal.__dict__
    draws = est.sample_posterior(400, random_state=2)["theta"]
    assert draws.shape == (400, 1200)
    # The draws are those of the new data: their means against theta_mean_.
    # The mean of 400 draws is nearly normal; with its sd estimated from the
    # same draws, Student's t (399 d.o.f.) with a Bonferroni share of the rate.
    t = (draws.mean(axis=0) - est.theta_mean_) / (draws.std(axis=0, ddof=1) / np.sqrt(400))
    assert np.max(np.abs(t)) < stats.t.isf(FALSE_FAILURE_RATE / (2 * 1200), 399)


# Populations narrower (in the latent variable) than the measurement: their
# integrals use the population's own grid, and the mode-centred window for
# measurements far enough in the population's tail to tilt the integrand out
# of that grid.
NARROW_CASES = [
    # family, params, theta(z) of the population's standard normal z (approximate
    # for the Beta: the reference integrates its exact density), x, e
    ("lognormal", (1.0, 0.3), np.array([2.7, 0.5, 6.0, 17.7, 25.0, -3.0]), 1.0),
    ("lognormal", (2.0, 0.05), np.array([7.4, 6.0, 9.5, 12.0]), 0.6),
    ("beta", (0.3, 2000.0), np.array([0.3, 0.25, 0.45, 1.1, -0.4]), 0.1),
    ("beta", (0.6, 300.0), np.array([0.6, 0.9, 0.1, 1.5]), 0.25),
]


def _quad_moments(name, params, x, e):
    """(log ∫ f, E[theta]) with f = N(x | theta, e^2) p(theta), by quad."""
    if name == "lognormal":
        mu, sigma = params

        def f(z):  # in the population's own standard variable
            return stats.norm.pdf(x, np.exp(mu + sigma * z), e) * stats.norm.pdf(z)

        def theta(z):
            return np.exp(mu + sigma * z)

        lo, hi, pts = -40.0, 40.0, [0.0]
    else:
        a, b = params[0] * params[1], (1 - params[0]) * params[1]

        def f(t):
            return stats.norm.pdf(x, t, e) * stats.beta.pdf(t, a, b)

        def theta(t):
            return t

        lo, hi, pts = 0.0, 1.0, [params[0]]
    kw = dict(limit=400, epsabs=0, epsrel=1e-12, points=pts)
    den = integrate.quad(f, lo, hi, **kw)[0]
    num = integrate.quad(lambda u: theta(u) * f(u), lo, hi, **kw)[0]
    return np.log(den), num / den


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # the reference's
def test_narrow_population_integrals_match_quad():
    """Log-likelihood within 1e-6 and posterior mean within 1e-6 (relative) of
    quad; both routes (population grid, mode window) are taken."""
    routes = set()
    for name, params, x, e in NARROW_CASES:
        marginal = make_marginal(FAMILIES[name], x, np.full(x.size, e))
        p = np.array([params])
        mask = marginal._narrow(p)
        assert mask.all()
        routes.update(marginal._population_grid_integral(p, mask)[3].tolist())
        ref = np.array([_quad_moments(name, params, xi, e) for xi in x])
        np.testing.assert_allclose(marginal.loglik(p)[0], ref[:, 0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(marginal.posterior_mean(p)[0], ref[:, 1], rtol=1e-6)
    assert routes == {True, False}
