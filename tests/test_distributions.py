"""Population families and priors: densities, transforms, sampling."""

import pickle

import numpy as np
import pytest
from scipy import integrate, stats

from skhier._distributions import (
    BetaFamily,
    BrokenPowerLawFamily,
    HalfCauchyPrior,
    LogNormalFamily,
    NormalFamily,
    NormalPrior,
    PowerLawFamily,
    TruncatedNormalFamily,
    density_band,
    get_family,
    parse_prior,
)

from .helpers import assert_mc_close, kurtosis, mcse_mean, mcse_sd

FAMILY_CASES = [
    (NormalFamily(), np.array([0.3, 1.7]), lambda t, p: stats.norm.logpdf(t, p[0], p[1])),
    (
        LogNormalFamily(),
        np.array([0.5, 0.8]),
        lambda t, p: stats.lognorm.logpdf(t, s=p[1], scale=np.exp(p[0])),
    ),
    (
        BetaFamily(),
        np.array([0.3, 4.0]),
        lambda t, p: stats.beta.logpdf(t, p[0] * p[1], (1 - p[0]) * p[1]),
    ),
    (
        BetaFamily(),
        np.array([0.2, 1.5]),  # a = 0.3 < 1: singular at 0
        lambda t, p: stats.beta.logpdf(t, p[0] * p[1], (1 - p[0]) * p[1]),
    ),
    (
        TruncatedNormalFamily(0.0, 1.0),
        np.array([0.2, 0.4]),
        lambda t, p: stats.truncnorm.logpdf(t, -p[0] / p[1], (1 - p[0]) / p[1], p[0], p[1]),
    ),
]


def _grid(family):
    lo, hi = family.support
    lo = -5.0 if np.isinf(lo) else lo + 1e-3
    hi = 8.0 if np.isinf(hi) else hi - 1e-3
    return np.linspace(lo, hi, 41)


@pytest.mark.parametrize("family, params, ref", FAMILY_CASES)
def test_logpdf_matches_scipy(family, params, ref):
    t = _grid(family)
    np.testing.assert_allclose(family.logpdf(t, params), ref(t, params), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("family, params, ref", FAMILY_CASES)
def test_logpdf_broadcasting_walkers_objects_samples(family, params, ref):
    rng = np.random.default_rng(0)
    walkers = np.stack([params * (1 + 0.1 * k) for k in range(3)])  # (3, p)
    walkers[:, 0] = np.clip(walkers[:, 0], 0.05, 0.95) if family.name == "beta" else walkers[:, 0]
    theta = rng.uniform(0.05, 0.95, size=(1, 5, 4))  # (1, n_objects, n_samples)
    out = family.logpdf(theta, walkers)
    assert out.shape == (3, 5, 4)
    for w in range(3):
        np.testing.assert_allclose(out[w], ref(theta[0], walkers[w]), rtol=1e-10, atol=1e-10)
    # Params without batch axes broadcast over everything.
    assert family.logpdf(theta, params).shape == (1, 5, 4)


@pytest.mark.parametrize("family, params, ref", FAMILY_CASES)
def test_latent_density_integrates_to_one(family, params, ref, stat_seed):
    val, _ = integrate.quad(lambda v: np.exp(family.latent_logpdf(np.array(v), params)),
                            -np.inf, np.inf, limit=200)
    assert abs(val - 1) < 1e-6
    # ... and is the density of T(theta) for theta from the family.
    draws = family.rvs(params, 20000, random_state=stat_seed)
    v = family.to_latent(draws)
    m, s = family.latent_moments(params)
    if family.name != "truncnormal":  # (truncnormal moments are only a node centre)
        assert_mc_close(v.mean(), m, mcse_mean(s, v.size), n_assertions=2,
                        what=f"{family.name} latent mean")
        assert_mc_close(v.std(), s, mcse_sd(s, v.size, kurtosis(v)), n_assertions=2,
                        what=f"{family.name} latent sd")


@pytest.mark.parametrize("family, params, ref", FAMILY_CASES)
def test_rvs_follow_the_density(family, params, ref):
    draws = family.rvs(params, 4000, random_state=1)
    assert draws.shape == (4000,)
    lo, hi = family.support
    assert np.all((draws >= lo) & (draws <= hi))
    # Chi-square over 10 equal-count bins of the draws, bin probabilities by quad.
    edges = np.quantile(draws, np.linspace(0, 1, 11))
    edges[0], edges[-1] = lo if np.isfinite(lo) else -np.inf, hi if np.isfinite(hi) else np.inf
    probs = np.array([
        integrate.quad(lambda t: np.exp(ref(t, params)), a, b, limit=200)[0]
        for a, b in zip(edges[:-1], edges[1:], strict=False)
    ])
    counts = np.histogram(draws, edges)[0]
    assert stats.chisquare(counts, probs / probs.sum() * counts.sum()).pvalue > 1e-3
    # Batch of parameter sets: shape params.shape[:-1] + size.
    batch = np.stack([params, params])
    assert family.rvs(batch, (3, 2), random_state=0).shape == (2, 3, 2)


def test_beta_rvs_small_shape_parameters_stay_inside():
    fam = BetaFamily()
    draws = fam.rvs(np.array([0.5, 0.02]), 5000, random_state=0)  # a = b = 0.01
    assert np.all((draws >= 0) & (draws <= 1)) and np.all(np.isfinite(draws))
    # Nearly all mass near 0 or 1, half each.
    assert abs(np.mean(draws > 0.5) - 0.5) < 0.05


@pytest.mark.parametrize("family", [NormalFamily(), LogNormalFamily(), BetaFamily()])
def test_transforms_roundtrip_and_jacobian(family):
    rng = np.random.default_rng(2)
    u = rng.normal(size=(6, family.n_params))
    params = family.constrain(u)
    np.testing.assert_allclose(family.unconstrain(params), u, rtol=1e-10, atol=1e-10)
    # log-Jacobian against finite differences (transforms are element-wise).
    h = 1e-6
    num = 0.0
    for k in range(family.n_params):
        du = np.zeros(family.n_params)
        du[k] = h
        num = num + np.log(np.abs(family.constrain(u + du)[:, k] - family.constrain(u - du)[:, k]) / (2 * h))
    np.testing.assert_allclose(family.log_jacobian(u), num, rtol=1e-6, atol=1e-6)


def test_log_prior_unconstrained_is_a_density():
    fam = NormalFamily()
    priors = {"mu": NormalPrior(1.0, 2.0), "tau": HalfCauchyPrior(3.0)}
    # Integrate the unconstrained density over (mu, log tau): should be 1.
    val, _ = integrate.dblquad(
        lambda lt, mu: np.exp(fam.log_prior_unconstrained(np.array([mu, lt]), priors)),
        -20, 22, -25, 25,
    )
    assert abs(val - 1) < 1e-4
    draws = fam.sample_prior(priors, 5, random_state=0)
    assert draws.shape == (5, 2) and np.all(draws[:, 1] > 0)


@pytest.mark.parametrize(
    "spec, x",
    [
        (("normal", 1.0, 2.0), 0.3),
        (("halfnormal", 2.0), 0.7),
        (("halfcauchy", 25.0), 3.0),
        (("lognormal", 0.5, 1.5), 2.0),
        (("uniform", -1.0, 3.0), 0.1),
        (("beta", 2.0, 3.0), 0.4),
    ],
)
def test_priors_match_scipy_and_pickle(spec, x):
    prior = parse_prior(spec)
    ref = {
        "normal": lambda: stats.norm.logpdf(x, spec[1], spec[2]),
        "halfnormal": lambda: stats.halfnorm.logpdf(x, scale=spec[1]),
        "halfcauchy": lambda: stats.halfcauchy.logpdf(x, scale=spec[1]),
        "lognormal": lambda: stats.lognorm.logpdf(x, s=spec[2], scale=np.exp(spec[1])),
        "uniform": lambda: stats.uniform.logpdf(x, spec[1], spec[2] - spec[1]),
        "beta": lambda: stats.beta.logpdf(x, spec[1], spec[2]),
    }[spec[0]]()
    np.testing.assert_allclose(prior.logpdf(x), ref, rtol=1e-12)
    assert pickle.loads(pickle.dumps(prior)) == prior
    draws = prior.rvs(2000, random_state=0)
    lo, hi = prior.support
    assert np.all((draws >= lo) & (draws <= hi))


def test_bad_priors_are_refused():
    with pytest.raises(ValueError, match="unknown prior kind"):
        parse_prior(("cauchy", 1.0))
    with pytest.raises(TypeError, match="prior"):
        parse_prior(3.0)
    with pytest.raises(ValueError, match="> 0"):
        parse_prior(("halfcauchy", -1.0))
    with pytest.raises(ValueError, match="tau"):
        NormalFamily().check_priors({"tau": ("normal", 0.0, 1.0)})  # mass below 0
    with pytest.raises(ValueError, match="unknown parameter"):
        NormalFamily().check_priors({"sigma": ("halfcauchy", 1.0)})


def test_get_family_and_density_band():
    assert get_family("beta") == BetaFamily()
    assert get_family("truncnormal", (0, 1)) == TruncatedNormalFamily(0, 1)
    with pytest.raises(ValueError, match="distribution"):
        get_family("gamma")
    draws = np.array([[0.0, 1.0], [0.5, 2.0], [1.0, 0.5]])
    grid = np.linspace(-2, 2, 5)
    med, lo, hi = density_band(NormalFamily(), grid, draws, level=0.5)
    dens = np.stack([stats.norm.pdf(grid, m, s) for m, s in draws])
    np.testing.assert_allclose(med, np.median(dens, axis=0))
    assert np.all(lo <= med) and np.all(med <= hi)


@pytest.mark.parametrize("family, params", [
    (PowerLawFamily(0.5, 500.0), [-1.3]),
    (PowerLawFamily(1.0, 10.0), [-1.0]),
    (BrokenPowerLawFamily(0.5, 500.0), [0.5, -1.5, 12.0]),
])
def test_power_law_families_normalised_and_sampled(family, params, stat_seed):
    """The densities integrate to 1 (quad, split at the break); draws follow
    them (Kolmogorov-Smirnov against the CDF by quad, false-failure rate
    1e-3) and their mean is the family's mean."""
    params = np.asarray(params)
    pts = [params[2]] if len(params) == 3 else None

    def pdf(t):
        return float(np.exp(family.logpdf(np.array([t]), params))[0])

    total = integrate.quad(pdf, family.low, family.high, points=pts, limit=200)[0]
    assert abs(total - 1) < 1e-8
    draws = family.rvs(params, 5000, random_state=stat_seed)
    assert draws.min() >= family.low and draws.max() <= family.high

    def cdf(x):
        return np.array([integrate.quad(pdf, family.low, v, points=[p for p in (pts or [])
                                                                   if p < v] or None,
                                        limit=200)[0] for v in np.atleast_1d(x)])

    grid = np.geomspace(family.low, family.high, 400)
    cgrid = cdf(grid)
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cgrid)).pvalue > 1e-3
    mean = family.mean(params)
    assert_mc_close(draws.mean(), mean, draws.std() / np.sqrt(draws.size), what="mean")


def test_moment_start_takes_the_measurement_spread_out():
    """One table of starting values: each family's moment_start. With
    20000 objects the moments are known to ~1 %; a start only needs to be
    near the posterior, so the checks allow 10 % and check the direction of
    the error correction (with the errors known, the width is closer to the
    truth than without)."""
    rng = np.random.default_rng(0)
    n = 20000
    theta = rng.normal(3.0, 2.0, n)
    e = np.full(n, 1.5)
    x = theta + e * rng.standard_normal(n)
    m, tau = NormalFamily().moment_start(x, e)
    assert abs(m - 3.0) < 0.1 and abs(tau - 2.0) < 0.2
    assert abs(NormalFamily().moment_start(x)[1] - 2.0) > abs(tau - 2.0)
    # Truncated normal: the location is moved into the support.
    assert TruncatedNormalFamily(5.0, np.inf).moment_start(x, e)[0] == 5.0
    # Beta(mean 0.3, concentration 10) measured with errors 0.03.
    t = rng.beta(3.0, 7.0, n)
    eb = np.full(n, 0.03)
    mean, k = BetaFamily().moment_start(t + eb * rng.standard_normal(n), eb)
    assert abs(mean - 0.3) < 0.03 and abs(k - 10.0) < 1.0
    # Log-normal: location and spread of log theta.
    mu, sigma = LogNormalFamily().moment_start(np.exp(rng.normal(1.0, 0.5, n)))
    assert abs(mu - 1.0) < 0.05 and abs(sigma - 0.5) < 0.05
    # A family without a rule leaves the start to the prior.
    assert PowerLawFamily(1.0, 10.0).moment_start(x) is None
