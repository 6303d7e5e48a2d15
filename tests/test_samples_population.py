"""PosteriorSamplesPopulation: reweighting per-object posterior samples.

References are computed here independently of the estimator: the
reweighted likelihood with scipy.stats densities on dense grids of the
population parameters, analytic Gaussian marginals, and (slow) simulation-
based calibration.
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from scipy import special, stats
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skhier._distributions import CustomPopulation
from skhier._math import logmeanexp
from skhier._samples_population import PosteriorSamplesPopulation, ReweightingWarning
from skhier.datasets._samples_sim import make_eccentricity_samples, make_stellar_age_samples

from .helpers import FAST, ID_BASE, ID_STEP, ignore_convergence

NORMAL_PRIORS = {"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 2.0)}


def _gaussian_objects(n, k, *, mu=2.0, tau=1.0, err=(0.5, 1.5), seed=0, prior=None):
    """Exact Gaussian posterior samples of n objects (flat or Gaussian interim prior)."""
    rng = np.random.default_rng(seed)
    theta = mu + tau * rng.standard_normal(n)
    e = rng.uniform(*err, n)
    x = theta + e * rng.standard_normal(n)
    if prior is None:
        m, s = x, e
        log_p0 = np.zeros((n, k))
    else:
        m0, s0 = prior
        prec = 1 / e**2 + 1 / s0**2
        m, s = (x / e**2 + m0 / s0**2) / prec, 1 / np.sqrt(prec)
    samples = m[:, None] + s[:, None] * rng.standard_normal((n, k))
    if prior is not None:
        log_p0 = stats.norm.logpdf(samples, prior[0], prior[1])
    return samples, log_p0, x, e


def _grid_moments(logpost, *axes):
    """Posterior means and sds of each parameter from a log posterior on a grid."""
    p = np.exp(logpost - logpost.max())
    p /= p.sum()
    out = []
    for ax in axes:
        m = np.sum(p * ax)
        out.append((m, np.sqrt(np.sum(p * (ax - m) ** 2))))
    return out


def _mc_normal_grid(samples, log_p0, mu_grid, tau_grid, priors=NORMAL_PRIORS):
    """Log posterior of (mu, tau) from the reweighted samples, with scipy densities."""
    MU, TAU = np.meshgrid(mu_grid, tau_grid, indexing="ij")
    lp = stats.norm.logpdf(MU, 0, priors["mu"][2]) + stats.halfcauchy.logpdf(TAU, 0, priors["tau"][1])
    for i in range(samples.shape[0]):
        dens = stats.norm.logpdf(samples[i][None, None, :], MU[..., None], TAU[..., None])
        lp = lp + special.logsumexp(dens - log_p0[i], axis=-1) - np.log(samples.shape[1])
    return MU, TAU, lp


def _exact_normal_grid(x, e, mu_grid, tau_grid, priors=NORMAL_PRIORS):
    """Log posterior of (mu, tau) from the analytic marginal N(x | mu, tau^2 + e^2)."""
    MU, TAU = np.meshgrid(mu_grid, tau_grid, indexing="ij")
    lp = stats.norm.logpdf(MU, 0, priors["mu"][2]) + stats.halfcauchy.logpdf(TAU, 0, priors["tau"][1])
    for xi, ei in zip(x, e, strict=True):
        lp = lp + stats.norm.logpdf(xi, MU, np.sqrt(TAU**2 + ei**2))
    return MU, TAU, lp


def _mcse(model, name, sd):
    ess = min(model.n_effective_.values())
    return sd / np.sqrt(ess)


# ---------------------------------------------------------------------------
# The likelihood: fast single-precision path against scipy
# ---------------------------------------------------------------------------
LIKELIHOOD_CASES = [
    ("normal", None, lambda t, p: stats.norm.logpdf(t, p[0], p[1]), lambda r: r.normal(1, 2, (7, 50))),
    ("lognormal", None, lambda t, p: stats.lognorm.logpdf(t, s=p[1], scale=np.exp(p[0])),
     lambda r: np.exp(r.normal(0.5, 0.7, (7, 50)))),
    ("beta", None, lambda t, p: stats.beta.logpdf(t, p[0] * p[1], (1 - p[0]) * p[1]),
     lambda r: r.beta(2, 5, (7, 50))),
    ("truncnormal", (0.0, 3.0),
     lambda t, p: stats.truncnorm.logpdf(t, -p[0] / p[1], (3 - p[0]) / p[1], p[0], p[1]),
     lambda r: r.uniform(0, 3, (7, 50))),
]


@pytest.mark.parametrize("dist, bounds, ref, make", LIKELIHOOD_CASES)
def test_reweighted_likelihood_matches_scipy(dist, bounds, ref, make):
    rng = np.random.default_rng(1)
    X = make(rng)
    log_p0 = rng.normal(0, 0.5, X.shape)  # an arbitrary interim prior
    est = PosteriorSamplesPopulation(dist, bounds=bounds, n_steps=30, n_burn=10, n_walkers=8,
                                     random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, interim_log_prior=log_p0)
    model = est.model_
    draws = {k: v[:5] for k, v in est.posterior_.items()}
    P = model.params_from_dict(draws)
    fast = model._pop_loglik_train(P)
    for s in range(5):
        p = P[s, 0]
        lw = ref(X, p) - log_p0
        want = logmeanexp(lw, axis=-1)
        # Single precision in the sampler's hot path: float32 rounding (6e-8)
        # of terms as large as the spread of an object's log weights.
        spread = np.nan_to_num(np.ptp(np.where(np.isfinite(lw), lw, np.nan), axis=1))
        err = np.abs(fast[s] - want)
        assert np.all(err < 1e-6 * (1 + spread)), (err, spread)
        np.testing.assert_allclose(
            logmeanexp(model.pop_log_weights(P[s : s + 1], model.samples)[0], axis=-1), want, atol=1e-9
        )


def test_vector_theta_is_a_product_of_independent_populations():
    rng = np.random.default_rng(2)
    n, k = 6, 40
    th = np.stack([rng.normal(0, 1, (n, k)), rng.normal(10, 3, (n, k))], axis=-1)  # (n, k, 2)
    X = th.reshape(n, 2 * k)
    est = PosteriorSamplesPopulation(n_dims=2, n_steps=30, n_burn=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    assert est.posterior_["mu"].shape[1] == 2
    P = est.model_.params_from_dict({k: v[:3] for k, v in est.posterior_.items()})
    fast = est.model_._pop_loglik_train(P)
    for s in range(3):
        lw = sum(stats.norm.logpdf(th[..., j], P[s, j, 0], P[s, j, 1]) for j in range(2))
        err = np.abs(fast[s] - logmeanexp(lw, axis=-1))
        assert np.all(err < 1e-6 * (1 + np.ptp(lw, axis=1))), err
    assert est.predict(X).shape == (n, 2)
    assert est.sample_posterior(4, random_state=0)["theta"].shape == (4, n, 2)


# ---------------------------------------------------------------------------
# Posteriors against dense-grid references
# ---------------------------------------------------------------------------
def test_normal_population_matches_grid_posterior():
    samples, log_p0, x, e = _gaussian_objects(12, 300, seed=3)
    est = PosteriorSamplesPopulation(priors=NORMAL_PRIORS, n_steps=1500, n_burn=300,
                                     random_state=0).fit(samples)
    mu_grid, tau_grid = np.linspace(-3, 7, 101), np.linspace(0.005, 5, 80)
    MU, TAU, lp = _mc_normal_grid(samples, log_p0, mu_grid, tau_grid)
    (m_mu, s_mu), (m_tau, s_tau) = _grid_moments(lp, MU, TAU)
    for name, ref, sd in (("mu", m_mu, s_mu), ("tau", m_tau, s_tau)):
        got = est.posterior_[name].mean()
        assert abs(got - ref) < 3 * _mcse(est, name, sd) * np.sqrt(2), (name, got, ref)


def test_non_uniform_interim_prior_is_divided_out():
    # Posteriors computed under an exponential interim prior p0(theta) ∝
    # exp(-theta / lam) are N(x - e^2 / lam, e^2): every object is pulled
    # down by e^2 / lam. The reweighting must undo exactly that.
    rng = np.random.default_rng(4)
    n, k, lam = 15, 1000, 1.0
    theta = 3.0 + rng.standard_normal(n)
    e = rng.uniform(0.5, 1.2, n)
    x = theta + e * rng.standard_normal(n)
    samples = (x - e**2 / lam)[:, None] + e[:, None] * rng.standard_normal((n, k))
    log_p0 = -samples / lam
    kw = dict(priors=NORMAL_PRIORS, n_steps=1500, n_burn=300, random_state=0)
    est = PosteriorSamplesPopulation(**kw).fit(samples, interim_log_prior=log_p0)
    mu_grid, tau_grid = np.linspace(-2, 8, 101), np.linspace(0.005, 5, 80)
    MU, TAU, lp = _mc_normal_grid(samples, log_p0, mu_grid, tau_grid)
    (m_mu, s_mu), (m_tau, s_tau) = _grid_moments(lp, MU, TAU)
    for name, ref, sd in (("mu", m_mu, s_mu), ("tau", m_tau, s_tau)):
        got = est.posterior_[name].mean()
        assert abs(got - ref) < 3 * _mcse(est, name, sd) * np.sqrt(2), (name, got, ref)
    # The reweighted-sample posterior is the exact one (analytic marginals)
    # up to the Monte Carlo error of 1000 samples per object.
    (e_mu, _), (e_tau, _) = _grid_moments(_exact_normal_grid(x, e, mu_grid, tau_grid)[2], MU, TAU)
    assert abs(m_mu - e_mu) < 0.25 * s_mu and abs(m_tau - e_tau) < 0.25 * s_tau
    # Ignoring the interim prior is wrong: the population looks shifted down.
    naive = PosteriorSamplesPopulation(**kw).fit(samples)
    assert naive.posterior_["mu"].mean() < m_mu - 1.5 * s_mu
    # The interim prior as a callable gives the same fit as its values.
    short = dict(kw, n_steps=100, n_burn=50)
    by_values = PosteriorSamplesPopulation(**short).fit(samples, interim_log_prior=log_p0)
    by_callable = PosteriorSamplesPopulation(interim_prior=lambda t: -t / lam, **short).fit(samples)
    np.testing.assert_allclose(by_callable.posterior_["mu"], by_values.posterior_["mu"], rtol=1e-6)


@pytest.mark.slow
@ignore_convergence
def test_flat_interim_prior_matches_population_model():
    """Exact Gaussian posteriors under a flat interim prior: same answer as the
    collapsed normal PopulationModel on the measurements (within MC error)."""
    PopulationModel = pytest.importorskip("skhier._popmodel").PopulationModel
    samples, _, x, e = _gaussian_objects(20, 2000, seed=5)
    kw = dict(priors=NORMAL_PRIORS, n_steps=3000, n_burn=300, random_state=0)
    ours = PosteriorSamplesPopulation(**kw).fit(samples)
    theirs = PopulationModel("normal", **kw).fit(x[:, None], X_err=e)
    # The Monte Carlo error of 2000 samples per object shifts the reweighted
    # posterior by a known amount: measured here on a grid (scipy densities).
    mu_grid, tau_grid = np.linspace(-3, 7, 101), np.linspace(0.005, 5, 80)
    MU, TAU, lp_mc = _mc_normal_grid(samples, np.zeros_like(samples), mu_grid, tau_grid)
    _, _, lp_ex = _exact_normal_grid(x, e, mu_grid, tau_grid)
    mc, ex = _grid_moments(lp_mc, MU, TAU), _grid_moments(lp_ex, MU, TAU)
    for k, name in enumerate(("mu", "tau")):
        sd = ex[k][1]
        a, b = ours.posterior_[name].mean(), theirs.posterior_[name].mean()
        tol = 3 * np.hypot(_mcse(ours, name, sd), _mcse(theirs, name, sd)) + abs(mc[k][0] - ex[k][0])
        assert abs(a - b) < tol, (name, a, b, tol)
        # and the posterior widths agree (sd MCSE ~ sd / sqrt(2 ESS))
        sa, sb = ours.posterior_[name].std(), theirs.posterior_[name].std()
        ess = min(min(ours.n_effective_.values()), min(theirs.n_effective_.values()))
        assert abs(sa - sb) < 3 * sd * np.sqrt(2 / (2 * ess)) + abs(mc[k][1] - ex[k][1])


def test_beta_population_matches_grid_posterior():
    data = make_eccentricity_samples(25, 300, a=2.0, b=5.0, err=(0.05, 0.1), random_state=6)
    priors = {"mean": ("uniform", 0.0, 1.0), "concentration": ("lognormal", np.log(10), 1.5)}
    est = PosteriorSamplesPopulation("beta", priors=priors, n_steps=1500, n_burn=300,
                                     random_state=0).fit(data.X)
    mgrid, kgrid = np.linspace(0.05, 0.6, 70), np.exp(np.linspace(np.log(0.5), np.log(300), 70))
    M, Kc = np.meshgrid(mgrid, kgrid, indexing="ij")
    # Grid uniform in (mean, log kappa): posterior density times kappa.
    lp = stats.lognorm.logpdf(Kc, s=1.5, scale=10.0) + np.log(Kc)
    for i in range(data.X.shape[0]):
        dens = stats.beta.logpdf(data.X[i][None, None], (M * Kc)[..., None], ((1 - M) * Kc)[..., None])
        lp = lp + special.logsumexp(dens, axis=-1)
    p = np.exp(lp - lp.max())
    edge = max(p[0].max(), p[-1].max(), p[:, 0].max(), p[:, -1].max())
    assert edge < 1e-4  # the grid holds the whole posterior
    (m_m, s_m), (m_lk, s_lk) = _grid_moments(lp, M, np.log(Kc))
    got_m = est.posterior_["mean"].mean()
    got_lk = np.log(est.posterior_["concentration"]).mean()
    assert abs(got_m - m_m) < 3 * np.sqrt(2) * _mcse(est, "mean", s_m), (got_m, m_m)
    assert abs(got_lk - m_lk) < 3 * np.sqrt(2) * _mcse(est, "c", s_lk), (got_lk, m_lk)


def test_histogram_population_matches_grid_posterior():
    rng = np.random.default_rng(7)
    n, k = 20, 200
    centres = rng.beta(2, 3, n)
    X = np.clip(centres[:, None] + 0.15 * rng.standard_normal((n, k)), 0.0, 1.0)
    log_p0 = stats.norm.logpdf(X, 0.5, 1.0)  # some non-flat interim prior
    est = PosteriorSamplesPopulation("histogram", bounds=(0.0, 1.0), n_bins=3, n_steps=2000,
                                     n_burn=300, random_state=0).fit(X, interim_log_prior=log_p0)
    # M_ib = mean_k 1[x_ik in bin b] / p0(x_ik) / width, written out with np.histogram.
    edges = np.linspace(0, 1, 4)
    Mib = np.array([
        np.histogram(X[i], edges, weights=np.exp(-log_p0[i]))[0] / (k * (1 / 3)) for i in range(n)
    ])
    g = np.linspace(0.0005, 0.9995, 500)
    W1, W2 = np.meshgrid(g, g, indexing="ij")
    W3 = 1 - W1 - W2
    ok = W3 > 0
    lp = np.where(ok, 0.0, -np.inf)  # Dirichlet(1): flat on the simplex
    for i in range(n):
        with np.errstate(invalid="ignore", divide="ignore"):
            lp = lp + np.log(np.where(ok, W1 * Mib[i, 0] + W2 * Mib[i, 1] + W3 * Mib[i, 2], 1.0))
    refs = _grid_moments(lp, W1, W2, np.where(ok, W3, 0))
    w = est.posterior_["bin_probabilities"]
    for b in range(3):
        assert abs(w[:, b].mean() - refs[b][0]) < 3 * np.sqrt(2) * _mcse(est, "w", refs[b][1])


@ignore_convergence
def test_custom_log_density_agrees_with_builtin_normal():
    samples, *_ = _gaussian_objects(10, 200, seed=8)

    def normal_logpdf(theta, mu, tau):
        return -0.5 * ((theta - mu) / tau) ** 2 - np.log(tau) - 0.5 * np.log(2 * np.pi)

    fam = CustomPopulation(normal_logpdf, ["mu", "tau"], priors=NORMAL_PRIORS, init=[0.0, 1.0],
                           transforms=["identity", "log"])
    kw = dict(n_steps=1200, n_burn=200, random_state=0)
    custom = PosteriorSamplesPopulation(fam, **kw).fit(samples)
    builtin = PosteriorSamplesPopulation(priors=NORMAL_PRIORS, **kw).fit(samples)
    for name in ("mu", "tau"):
        sd = builtin.posterior_[name].std()
        tol = 3 * np.hypot(_mcse(custom, name, sd), _mcse(builtin, name, sd))
        assert abs(custom.posterior_[name].mean() - builtin.posterior_[name].mean()) < tol


def test_custom_density_must_be_normalised():
    def unnormalised(theta, scale):
        return -0.5 * (theta / scale) ** 2  # missing -log(scale) - log(2 pi)/2

    fam = CustomPopulation(unnormalised, ["scale"], priors={"scale": ("halfcauchy", 1.0)},
                           init=[1.0], transforms=["log"])
    X = np.random.default_rng(0).normal(0, 1, (5, 20))
    with pytest.warns(UserWarning, match="integrates to"):
        PosteriorSamplesPopulation(fam, **FAST).fit(X)


# ---------------------------------------------------------------------------
# Per-object outputs
# ---------------------------------------------------------------------------
@ignore_convergence
def test_predict_and_shrunk_draws_match_normal_conditionals():
    """Given alpha, object i's theta is N(x_i, e_i^2) reweighted by N(mu, tau^2):
    a Gaussian with precision-weighted mean (conjugacy)."""
    samples, _, x, e = _gaussian_objects(8, 2000, seed=9)
    est = PosteriorSamplesPopulation(priors=NORMAL_PRIORS, n_steps=400, n_burn=100,
                                     random_state=0).fit(samples)
    draws = est._object_draws()
    mu, tau = draws["mu"][:, None], draws["tau"][:, None]
    w = tau**2 / (tau**2 + e**2)
    cond_mean = mu + w * (samples.mean(1) - mu)  # exact for these samples' own mean
    want = cond_mean.mean(0)
    # MC error of a self-normalised weighted mean with >= ~1000 effective samples.
    np.testing.assert_allclose(est.predict(samples), want, atol=0.05)
    post = est.sample_posterior(1000, random_state=1)
    assert post["theta"].shape == (1000, 8)
    # Draws are resampled training samples, spread like the shrunk posterior.
    sd_cond = np.sqrt(w * e**2).mean(0)
    assert np.all(np.isin(post["theta"][:5], samples))
    assert np.all(post["theta"].std(0) < e)  # shrunk: narrower than the samples
    assert np.all(post["theta"].std(0) > 0.7 * sd_cond)


@ignore_convergence
def test_outlier_component_flags_interlopers():
    rng = np.random.default_rng(10)
    n, k = 60, 300
    theta = rng.normal(0.0, 0.3, n)
    out = np.zeros(n, bool)
    out[:6] = True
    theta[out] = rng.choice([-1, 1], 6) * rng.uniform(6, 10, 6)
    x = theta + 0.2 * rng.standard_normal(n)  # measurements; posteriors N(x, 0.2^2)
    X = x[:, None] + 0.2 * rng.standard_normal((n, k))
    est = PosteriorSamplesPopulation(outliers=True, n_steps=600, n_burn=200, random_state=0).fit(X)
    proba = est.membership_proba_
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # Inliers up to ~3 population sds out keep a modest outlier probability.
    assert np.all(proba[out, 1] > 0.9) and np.all(proba[~out, 1] < 0.5)
    assert proba[~out, 1].mean() < 0.1
    assert 0.02 < est.outlier_fraction_ < 0.3
    # The population is what the inliers alone give.
    inl = PosteriorSamplesPopulation(n_steps=600, n_burn=200, random_state=0).fit(X[~out])
    for name in ("mu", "tau"):
        a, b = est.posterior_[name], inl.posterior_[name]
        assert abs(np.median(a) - np.median(b)) < 0.3 * b.std()
    np.testing.assert_allclose(est.predict_membership_proba(X), proba)
    lat = est.sample_posterior(50, random_state=0)
    assert lat["outlier"].shape == (50, n) and lat["outlier"][:, out].mean() > 0.9


def test_collapse_warning_when_population_narrower_than_samples():
    rng = np.random.default_rng(11)
    n = 40
    # True values all equal; each object's samples are 100 x wider.
    X = 0.0 + 1.0 * rng.standard_normal((n, 1)) * 0 + rng.standard_normal((n, 200))
    X += rng.normal(0, 1e-3, (n, 1))
    with pytest.warns(ReweightingWarning, match="n_effective_samples_"):
        est = PosteriorSamplesPopulation(priors={"tau": ("halfnormal", 0.01)}, n_steps=200,
                                         n_burn=100, random_state=0).fit(X)
    assert est.n_effective_samples_.min() < 10
    # A population as wide as the samples: no warning, most samples count.
    X2 = rng.normal(0, 2, (n, 1)) + 0.3 * rng.standard_normal((n, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReweightingWarning)
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        est2 = PosteriorSamplesPopulation(n_steps=200, n_burn=100, random_state=0).fit(X2)
    assert est2.n_effective_samples_.min() > 100


@ignore_convergence
def test_population_density_band_and_scores():
    data = make_stellar_age_samples(60, 300, random_state=12)
    est = PosteriorSamplesPopulation("lognormal", n_steps=400, n_burn=150, random_state=0).fit(data.X)
    grid = np.linspace(0.1, 10, 50)
    band = est.population_density(grid, level=0.9)
    med, lo, hi = band.median, band.lower, band.upper
    assert np.all(lo <= med) and np.all(med <= hi)
    np.testing.assert_array_equal(band.grid, grid)
    assert band.level == 0.9
    # The band integrates to about 1 (a density in Gyr^-1).
    assert abs(np.trapezoid(med, grid) - 1) < 0.1
    s = est.score_samples(data.X)
    assert s.shape == (60,) and np.all(np.isfinite(s))
    assert est.score(data.X) == pytest.approx(s.mean())
    # A far-off population scores worse on the same objects.
    wrong = clone(est).set_params(priors={"mu": ("normal", 3.0, 0.01)}).fit(data.X)
    assert wrong.score(data.X) < est.score(data.X) - 0.5


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, fit_kw, match",
    [
        ({"n_dims": 3}, {}, "multiple of n_dims"),
        ({}, {"interim_log_prior": np.zeros((5, 3))}, "interim_log_prior"),
        ({}, {"interim_log_prior": np.full((5, 10), np.nan)}, "interim_log_prior"),
        ({"interim_prior": lambda t: np.zeros_like(t)}, {"interim_log_prior": np.zeros((5, 10))},
         "not both"),
        ({"interim_prior": lambda t: np.zeros(3)}, {}, "interim_prior"),
        ({"distribution": "histogram", "n_dims": 5}, {}, "n_dims=1"),
        ({"distribution": "truncnormal", "bounds": (1.0, 0.0)}, {}, "bounds"),
        ({"outlier_fraction_prior": (1.0, -1.0)}, {}, "outlier_fraction_prior"),
        ({"priors": {"sigma": ("halfcauchy", 1.0)}}, {}, "unknown parameter"),
        ({"distribution": "beta"}, {}, "no sample inside"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, fit_kw, match):
    X = np.random.default_rng(0).normal(2.0, 1.0, (5, 10))
    X[0] = 5.0  # outside [0, 1] for the Beta case
    with pytest.raises(ValueError, match=match):
        PosteriorSamplesPopulation(**kwargs, **FAST).fit(X, **fit_kw)


@ignore_convergence
def test_user_arrays_untouched_and_pickle_roundtrip():
    samples, log_p0, *_ = _gaussian_objects(6, 50, seed=13, prior=(0.0, 2.0))
    X0, L0 = samples.copy(), log_p0.copy()
    est = PosteriorSamplesPopulation(**FAST, random_state=0).fit(samples, interim_log_prior=log_p0)
    np.testing.assert_array_equal(samples, X0)
    np.testing.assert_array_equal(log_p0, L0)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict(samples, interim_log_prior=log_p0),
                               est.predict(samples, interim_log_prior=log_p0))


# ---------------------------------------------------------------------------
# Metadata routing of the interim prior (rows are objects)
# ---------------------------------------------------------------------------
def _encode(n, k):
    """interim_log_prior whose first column encodes the row id (rest constant per row)."""
    ids = ID_BASE + ID_STEP * np.arange(n)
    return np.repeat(ids[:, None], k, axis=1)


def _decode(arr):
    return np.rint((np.asarray(arr)[:, 0] - ID_BASE) / ID_STEP).astype(int)


class _Recording(PosteriorSamplesPopulation):
    calls: list = []

    def fit(self, X, y=None, interim_log_prior=None):
        _Recording.calls.append(("fit", None if interim_log_prior is None else _decode(interim_log_prior)))
        return super().fit(X, y, interim_log_prior=interim_log_prior)

    def score(self, X, y=None, sample_weight=None, interim_log_prior=None):
        _Recording.calls.append(("score", None if interim_log_prior is None else _decode(interim_log_prior)))
        return super().score(X, y, sample_weight=sample_weight, interim_log_prior=interim_log_prior)


@ignore_convergence
def test_interim_log_prior_is_routed_per_fold():
    n, k = 12, 8
    X = np.random.default_rng(14).normal(0, 1, (n, k))
    lp0 = _encode(n, k)
    est = _Recording(n_walkers=8, n_steps=20, n_burn=5, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    folds = list(cv.split(X))
    with sklearn.config_context(enable_metadata_routing=True):
        _Recording.calls.clear()
        make_pipeline(FunctionTransformer(), clone(est)).fit(X, interim_log_prior=lp0)
        assert len(_Recording.calls) == 1
        np.testing.assert_array_equal(_Recording.calls[0][1], np.arange(n))

        _Recording.calls.clear()
        cross_validate(clone(est), X, cv=cv, params={"interim_log_prior": lp0})
        fits = [c[1] for c in _Recording.calls if c[0] == "fit"]
        scores = [c[1] for c in _Recording.calls if c[0] == "score"]
        assert len(fits) == len(scores) == 3
        for (train, test), f, s in zip(folds, fits, scores, strict=True):
            np.testing.assert_array_equal(f, train)
            np.testing.assert_array_equal(s, test)

        _Recording.calls.clear()
        GridSearchCV(clone(est), {"random_state": [0, 1]}, cv=cv).fit(X, interim_log_prior=lp0)
        fits = [tuple(c[1]) for c in _Recording.calls if c[0] == "fit"]
        scores = [tuple(c[1]) for c in _Recording.calls if c[0] == "score"]
        assert len(fits) == 7 and len(scores) == 6
        assert sorted(fits[:-1]) == sorted(tuple(tr) for _ in range(2) for tr, _ in folds)
        assert sorted(scores) == sorted(tuple(te) for _ in range(2) for _, te in folds)
        assert fits[-1] == tuple(range(n))


# scikit-learn's estimator checks: tests/test_common.py


# ---------------------------------------------------------------------------
# Slow: calibration and the eccentricity distribution
# ---------------------------------------------------------------------------
# Priors of the calibration study. The default concentration prior
# (LogNormal(log 10, 1.5) with a flat mean) puts ~20 % of its mass on
# populations with a or b < 0.5, whose density diverges at a bound so fast
# that the importance weights p(theta | alpha) / p0(theta) have infinite
# variance: with a few hundred samples per object the Monte Carlo likelihood
# then systematically misses the mass at the bound and the concentration is
# overestimated (a run with the default priors put 43 of 200 concentration
# ranks in the lowest decile, all from such populations). That is a limit of
# the reweighting method, documented in the estimator; the calibration is
# tested on populations with finite-variance weights.
BETA_PRIORS = {"mean": ("beta", 2.0, 2.0), "concentration": ("lognormal", float(np.log(20)), 0.7)}


@pytest.mark.slow
def test_simulation_based_calibration_beta_population():
    """Talts et al. (2018) through skhier.validation: with (mean, concentration)
    drawn from the estimator's priors and per-planet posterior samples
    simulated from them, the rank of the truth among 49 posterior draws is
    uniform on 0..49 (200 simulations)."""
    from skhier.validation import simulation_based_calibration

    n_planets, n_samples = 40, 300

    def simulate(rng):
        mean = rng.beta(2.0, 2.0)
        conc = np.exp(np.log(20) + 0.7 * rng.standard_normal())
        data = make_eccentricity_samples(
            n_planets, n_samples, a=mean * conc, b=(1 - mean) * conc, err=(0.05, 0.15),
            random_state=rng.randint(2**31 - 1),
        )
        return {"mean": mean, "concentration": conc}, data.X, None, None

    est = PosteriorSamplesPopulation("beta", priors=BETA_PRIORS, sampler="emcee", n_walkers=16,
                                     n_steps=400, n_burn=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simulation_based_calibration(est, simulate, 200, n_draws=49, random_state=2024)
    assert sorted(res.ranks) == ["concentration", "mean"]
    assert res.is_uniform(alpha=0.001), (res.p_values, {
        k: np.bincount(r * 10 // 50, minlength=10).tolist() for k, r in res.ranks.items()
    })


@pytest.mark.slow
def test_eccentricity_distribution_recovered_but_not_by_histogram_of_means():
    """Kipping's Beta(0.867, 3.03): the inferred population's 90 % band holds
    the truth, while the histogram of per-planet posterior means is biased
    away from e = 0 (every circular orbit's posterior mean is > 0)."""
    data = make_eccentricity_samples(300, 500, random_state=0)
    est = PosteriorSamplesPopulation("beta", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        est.fit(data.X)
    grid = np.linspace(0.01, 0.99, 99)
    band = est.population_density(grid, level=0.9)
    lo, hi = band.lower, band.upper
    truth = stats.beta.pdf(grid, 0.867, 3.03)
    inside = (truth >= lo) & (truth <= hi)
    assert inside.mean() >= 0.9, grid[~inside]
    # Histograms (density) of the per-planet means and of the true values,
    # with their Poisson errors, against the band averaged over each bin.
    edges = np.linspace(0, 1, 11)
    fine = np.linspace(0, 1, 1001)[1:-1]
    fine_band = est.population_density(fine, level=0.9)
    flo, fhi = fine_band.lower, fine_band.upper
    which = np.digitize(fine, edges) - 1
    band_lo = np.array([flo[which == b].mean() for b in range(10)])
    band_hi = np.array([fhi[which == b].mean() for b in range(10)])
    n = len(data.X)

    def hist_and_sd(values):
        counts, _ = np.histogram(values, edges)
        return counts / (n * 0.1), np.sqrt(np.maximum(counts, 1)) / (n * 0.1)

    h_mean, sd_mean = hist_and_sd(data.X.mean(axis=1))
    h_true, sd_true = hist_and_sd(data.theta)
    # The true values are consistent with the band in every bin ...
    assert np.all((h_true > band_lo - 3 * sd_true) & (h_true < band_hi + 3 * sd_true))
    # ... the posterior means are not: far too few near e = 0.
    assert h_mean[0] < band_lo[0] - 3 * sd_mean[0]
