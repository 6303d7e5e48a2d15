"""PopulationModel: collapsed likelihoods, posteriors against independent
references, calibration, outliers and the scikit-learn contract."""

import os
import pickle
import warnings

import numpy as np
import pytest
from scipy import integrate, special, stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from skhier import PopulationModel
from skhier._distributions import BetaFamily, LogNormalFamily
from skhier._population import make_marginal
from skhier.datasets import (
    load_eight_schools,
    make_population,
    make_velocity_dispersion,
)
from skhier.diagnostics import effective_sample_size

from .conftest import SHARED_DATA
from .helpers import (
    FAST,
    assert_error_routing,
    encode_ids,
    ignore_convergence,
)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _chain_ess(model, values):
    """ESS of a function of the draws: from the (steps, walkers) chain after
    emcee; after importance sampling (independent proposals, resampled) the
    smallest per-parameter importance-sampling ESS."""
    if model.sampler_ == "importance":
        return float(min(model.n_effective_.values()))
    n_steps, n_walkers = model.chain_.shape[:2]
    return float(effective_sample_size(np.reshape(values, (n_steps, n_walkers)))[0])


def _within_3_mcse(est, ref, mcse):
    return abs(est - ref) < 3 * mcse


def _sd_mcse(draws, ess):
    """MCSE of a posterior sd: sqrt(Var(s^2)) / (2 s) with Var(s^2) = (m4 - s^4) / ESS.

    Equals sd / sqrt(2 ESS) for Gaussian draws; larger for heavy tails.
    """
    d = draws - draws.mean()
    s2 = np.mean(d**2)
    return np.sqrt(max(np.mean(d**4) - s2**2, 2 * s2**2) / ess) / (2 * np.sqrt(s2))


# ---------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="../shared/data not present")
def test_eight_schools_match_the_shared_table():
    import pandas as pd

    table = pd.read_csv(os.path.join(SHARED_DATA, "eight_schools.csv"))
    book = load_eight_schools()
    rubin = load_eight_schools(version="rubin1981")
    np.testing.assert_array_equal(book.y, table["y_book"])
    np.testing.assert_array_equal(book.sigma, table["sigma_book"])
    np.testing.assert_array_equal(rubin.y, table["y_rubin1981"])
    np.testing.assert_array_equal(rubin.sigma, table["sigma_rubin1981"])
    assert list(book.schools) == list(table["school"])
    assert "Rubin" in book.DESCR and "Table 5.2" in book.DESCR
    with pytest.raises(ValueError, match="version"):
        load_eight_schools(version="bda2")


def test_simulators_shapes_and_truth():
    d = make_population(200, distribution="lognormal", params=(1.0, 0.5), err=0.1,
                        relative_err=True, random_state=0)
    assert d.X.shape == (200, 1) and np.all(d.theta > 0)
    np.testing.assert_allclose(d.X_err[:, 0], 0.1 * d.theta)
    v = make_velocity_dispersion(50, 10, random_state=1)
    assert v.X.shape == (60, 1) and v.is_interloper.sum() == 10
    with pytest.raises(ValueError, match="params"):
        make_population(10, distribution="beta", params=(0.5,))


# ---------------------------------------------------------------------------
# Collapsed likelihood: quadrature against scipy.integrate.quad
# ---------------------------------------------------------------------------
def _quad_log_marginal(logpdf, lo, hi, x, e):
    """log ∫ N(x | t, e^2) p(t) dt by adaptive quad, split at the bounds and x."""
    def lf(t):
        return stats.norm.logpdf(x, t, e) + logpdf(t)

    pts = [lo, min(max(x, lo), hi)] + ([hi] if np.isfinite(hi) else [])
    ref_grid = np.linspace(max(lo, x - 12 * e), min(x + 12 * e, hi if np.isfinite(hi) else x + 12 * e), 2001)
    c = max(np.max(lf(ref_grid[(ref_grid > lo) & (ref_grid < hi)])), np.max(lf(np.linspace(lo + 1e-9, min(hi, 50.0) - 1e-9, 20001))))
    total = 0.0
    segs = list(zip(pts[:-1], pts[1:], strict=False)) + ([] if np.isfinite(hi) else [(pts[-1], np.inf)])
    for a, b in segs:
        if b > a:
            total += integrate.quad(lambda t: np.exp(lf(t) - c), a, b, limit=500,
                                    epsabs=0, epsrel=1e-11)[0]
    return np.log(total) + c


BOUNDS = (-0.05, 0.0, 1.08)  # measurements at and beyond the support bounds
QUAD_CASES = [
    # family, params, scipy log-density, extra measurements
    (BetaFamily(), (0.3, 4.0), lambda t: stats.beta.logpdf(t, 1.2, 2.8), BOUNDS),
    (BetaFamily(), (0.2, 1.0), lambda t: stats.beta.logpdf(t, 0.2, 0.8), BOUNDS),  # singular at 0
    (BetaFamily(), (0.5, 0.1), lambda t: stats.beta.logpdf(t, 0.05, 0.05), BOUNDS),  # U-shaped
    (BetaFamily(), (0.8, 20.0), lambda t: stats.beta.logpdf(t, 16.0, 4.0), BOUNDS),
    # A narrow population: measurements within a few population widths.
    (BetaFamily(), (0.5, 1000.0), lambda t: stats.beta.logpdf(t, 500.0, 500.0), (0.44, 0.57)),
    (LogNormalFamily(), (0.0, 0.5), lambda t: stats.lognorm.logpdf(t, 0.5), BOUNDS[:2]),
    (LogNormalFamily(), (0.0, 2.0), lambda t: stats.lognorm.logpdf(t, 2.0), BOUNDS[:2]),
    # A narrow population: measurements within a few population widths.
    (LogNormalFamily(), (2.0, 0.05), lambda t: stats.lognorm.logpdf(t, 0.05, scale=np.exp(2.0)),
     (6.5, 8.5)),
]


@pytest.mark.parametrize("family, params, logpdf, extra", QUAD_CASES)
def test_collapsed_likelihood_matches_quad(family, params, logpdf, extra):
    rng = np.random.default_rng(0)
    params = np.array(params)
    lo, hi = family.support
    for err in (0.01, 0.05, 0.2):
        theta = family.rvs(params, 5, random_state=rng)
        x = np.r_[theta + err * rng.standard_normal(5), extra]
        e = np.full(x.size, err)
        got = make_marginal(family, x, e).loglik(params[None])[0]
        ref = np.array([_quad_log_marginal(logpdf, lo, hi, xi, ei) for xi, ei in zip(x, e, strict=False)])
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)


def test_collapsed_posterior_mean_matches_quad():
    fam = BetaFamily()
    params = np.array([0.25, 3.0])
    x = np.array([-0.05, 0.1, 0.4, 0.97])
    e = np.array([0.05, 0.1, 0.02, 0.08])
    got = make_marginal(fam, x, e).posterior_mean(params[None])[0]
    for xi, ei, g in zip(x, e, got, strict=False):
        def f(t, xi=xi, ei=ei):
            return stats.norm.pdf(xi, t, ei) * stats.beta.pdf(t, 0.75, 2.25)

        num = integrate.quad(lambda t, f=f: t * f(t), 0, 1, limit=200)[0]
        den = integrate.quad(f, 0, 1, limit=200)[0]
        assert abs(g - num / den) < 1e-4


# ---------------------------------------------------------------------------
# Normal population: eight schools against a 1-D integration over tau
# ---------------------------------------------------------------------------
EIGHT_PRIORS = {"mu": ("normal", 0.0, 50.0), "tau": ("halfcauchy", 25.0)}


def _eight_schools_reference(y, s, mu_loc=0.0, mu_scale=50.0, tau_scale=25.0):
    """Posterior moments by integrating tau numerically, mu and theta analytically.

    Given tau, mu | tau, y is normal (BDA3 eqs. 5.20-5.21 with a N(mu_loc,
    mu_scale^2) prior on mu), and E[theta_j | tau, y] is linear in mu.
    """

    def pieces(tau):
        v = s**2 + tau**2
        prec = np.sum(1 / v) + 1 / mu_scale**2
        mhat = (np.sum(y / v) + mu_loc / mu_scale**2) / prec
        # log p(y | tau) with mu integrated out, + log p(tau)
        logml = (
            -0.5 * np.sum(np.log(2 * np.pi * v)) - 0.5 * np.sum(y**2 / v)
            - 0.5 * np.log(2 * np.pi * mu_scale**2) - 0.5 * mu_loc**2 / mu_scale**2
            + 0.5 * mhat**2 * prec + 0.5 * np.log(2 * np.pi / prec)
        )
        logp = logml + stats.halfcauchy.logpdf(tau, scale=tau_scale)
        return logp, mhat, prec

    c = pieces(5.0)[0]

    def moment(fn):
        return integrate.quad(
            lambda t: np.exp(pieces(t)[0] - c) * fn(t), 0, np.inf, limit=500, epsabs=0, epsrel=1e-10
        )[0]

    z = moment(lambda t: 1.0)
    e_mu = moment(lambda t: pieces(t)[1]) / z
    e_mu2 = moment(lambda t: pieces(t)[1] ** 2 + 1 / pieces(t)[2]) / z
    e_tau = moment(lambda t: t) / z
    e_tau2 = moment(lambda t: t**2) / z

    def theta_mean(j):
        def f(t):
            _, mhat, _ = pieces(t)
            if t == 0:
                return mhat
            w = (1 / s[j] ** 2) / (1 / s[j] ** 2 + 1 / t**2)
            return w * y[j] + (1 - w) * mhat

        return moment(f) / z

    return {
        "mu": (e_mu, np.sqrt(e_mu2 - e_mu**2)),
        "tau": (e_tau, np.sqrt(e_tau2 - e_tau**2)),
        "theta": np.array([theta_mean(j) for j in range(len(y))]),
    }


@pytest.mark.parametrize("sampler", ["emcee", "importance"])
def test_eight_schools_posterior_matches_1d_integration(sampler):
    data = load_eight_schools()
    ref = _eight_schools_reference(data.y, data.sigma)
    model = PopulationModel(priors=EIGHT_PRIORS, sampler=sampler, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(data.X, X_err=data.X_err)
    assert model.converged_ and model.sampler_ == sampler
    if sampler == "importance":
        assert model.pareto_k_ < 0.7
    for name in ("mu", "tau"):
        draws = model.posterior_[name]
        ess = _chain_ess(model, draws)
        mean, sd = draws.mean(), draws.std()
        ref_mean, ref_sd = ref[name]
        assert _within_3_mcse(mean, ref_mean, sd / np.sqrt(ess)), (name, mean, ref_mean)
        assert _within_3_mcse(sd, ref_sd, _sd_mcse(draws, ess)), (name, sd, ref_sd)
    # Shrinkage: predict = posterior mean of each school's effect. It averages
    # the analytic conditional means over <= 1000 of the draws.
    pred = model.predict(data.X, X_err=data.X_err)
    np.testing.assert_allclose(model.theta_mean_, pred)
    ess = min(_chain_ess(model, model.posterior_["mu"]), _chain_ess(model, model.posterior_["tau"]))
    n_eff = 1 / (1 / min(1000, model.n_draws_) + 1 / ess)
    w = model.posterior_["tau"][:, None] ** 2 / (model.posterior_["tau"][:, None] ** 2 + data.sigma**2)
    cond = model.posterior_["mu"][:, None] + w * (data.y - model.posterior_["mu"][:, None])
    mcse = cond.std(axis=0) / np.sqrt(n_eff)
    assert np.all(np.abs(pred - ref["theta"]) < 3 * mcse), (pred, ref["theta"], mcse)
    # The schools are pulled together (shrinkage).
    assert np.std(pred) < 0.5 * np.std(data.y)


# ---------------------------------------------------------------------------
# Beta and log-normal populations against brute-force grid posteriors
# ---------------------------------------------------------------------------
def _grid_posterior(log_lik_fn, log_prior_fn, u1, u2):
    """Moments of (c1, c2) = transforms of the grid coordinates, by summation."""
    U1, U2 = np.meshgrid(u1, u2, indexing="ij")
    lp = log_prior_fn(U1, U2) + log_lik_fn(U1, U2)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    return U1, U2, w


def _latent_trapezoid_loglik(x, e, log_density_v, theta_of_v, v):
    """log ∫ N(x_i | theta(v), e_i^2) p_v(v) dv for every grid cell, by a dense
    trapezoid in the latent variable v (independent of the code under test)."""
    dv = v[1] - v[0]
    th = theta_of_v(v)
    like = stats.norm.logpdf(x[:, None], th[None, :], e[:, None])  # (n, V)
    return like, dv


@pytest.mark.parametrize("distribution", ["beta", "lognormal"])
def test_posterior_matches_brute_force_grid(distribution):
    if distribution == "beta":
        truth = (0.3, 6.0)
        priors = {"mean": ("uniform", 0.0, 1.0), "concentration": ("lognormal", np.log(10.0), 1.5)}
        d = make_population(15, distribution="beta", params=truth, err=(0.05, 0.1), random_state=3)
        theta_of_v = special.expit

        def log_pv(v, c1, c2):  # c1 = logit mean, c2 = log kappa; density of v = logit(theta)
            a = special.expit(c1) * np.exp(c2)
            b = special.expit(-c1) * np.exp(c2)
            return a * special.log_expit(v) + b * special.log_expit(-v) - special.betaln(a, b)

        def log_prior(c1, c2):  # uniform mean (logit Jacobian) and log-normal kappa
            return special.log_expit(c1) + special.log_expit(-c1) + stats.norm.logpdf(c2, np.log(10.0), 1.5)

        u1, u2 = np.linspace(-4, 3, 71), np.linspace(-1.5, 6.5, 81)
        v = np.linspace(-25, 25, 2501)
        names = ("mean", "concentration")
        to_c = (special.expit, np.exp)
    else:
        truth = (1.0, 0.6)
        priors = {"mu": ("normal", 0.0, 3.0), "sigma": ("halfcauchy", 1.0)}
        d = make_population(15, distribution="lognormal", params=truth, err=(0.1, 0.3),
                            relative_err=True, random_state=4)
        theta_of_v = np.exp

        def log_pv(v, c1, c2):  # c1 = mu, c2 = log sigma
            return stats.norm.logpdf(v, c1, np.exp(c2))

        def log_prior(c1, c2):
            return stats.norm.logpdf(c1, 0, 3) + stats.halfcauchy.logpdf(np.exp(c2)) + c2

        u1, u2 = np.linspace(-1.0, 3.0, 81), np.linspace(-3.5, 1.5, 81)
        v = np.linspace(-4, 5, 2001)
        names = ("mu", "sigma")
        to_c = (lambda z: z, np.exp)

    x, e = d.X[:, 0], d.X_err[:, 0]
    like, dv = _latent_trapezoid_loglik(x, e, None, theta_of_v, v)

    def log_lik(U1, U2):
        out = np.zeros(U1.shape)
        for i in range(U1.shape[0]):
            pv = log_pv(v[None, :], U1[i][:, None], U2[i][:, None])  # (n_u2, V)
            tot = special.logsumexp(like[None, :, :] + pv[:, None, :], axis=-1) + np.log(dv)
            out[i] = tot.sum(axis=1)
        return out

    U1, U2, w = _grid_posterior(log_lik, log_prior, u1, u2)
    # The grid must contain the posterior (no mass on its edges).
    assert w[[0, -1], :].sum() + w[:, [0, -1]].sum() < 1e-6

    model = PopulationModel(distribution, priors=priors, random_state=0).fit(d.X, X_err=d.X_err)
    assert model.converged_
    for name, grid_u, f in zip(names, (U1, U2), to_c, strict=False):
        c = f(grid_u)
        ref_mean = np.sum(w * c)
        ref_sd = np.sqrt(np.sum(w * c**2) - ref_mean**2)
        draws = model.posterior_[name]
        ess = _chain_ess(model, draws)
        mean, sd = draws.mean(), draws.std()
        assert _within_3_mcse(mean, ref_mean, sd / np.sqrt(ess)), (name, mean, ref_mean, ess)
        assert _within_3_mcse(sd, ref_sd, _sd_mcse(draws, ess)), (name, sd, ref_sd, ess)


# ---------------------------------------------------------------------------
# Simulation-based calibration (slow)
# ---------------------------------------------------------------------------
SBC_SETTINGS = {
    "normal": dict(
        priors={"mu": ("normal", 0.0, 2.0), "tau": ("halfnormal", 1.0)}, err=(0.3, 1.0), rel=False,
    ),
    "beta": dict(
        priors={"mean": ("uniform", 0.0, 1.0), "concentration": ("lognormal", np.log(10.0), 1.0)},
        err=(0.03, 0.1), rel=False,
    ),
    # Errors independent of the true values (the model conditions on them).
    "lognormal": dict(
        priors={"mu": ("normal", 0.0, 1.0), "sigma": ("halfnormal", 1.0)}, err=(0.05, 0.5), rel=False,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["normal", "beta", "lognormal"])
def test_simulation_based_calibration(distribution):
    """Talts et al. (2018) through skhier.validation: parameters drawn from the
    estimator's priors, 12 objects simulated from them, 200 simulations; the
    ranks of the truth among 99 posterior draws must be uniform."""
    from skhier._distributions import get_family, parse_prior
    from skhier.validation import simulation_based_calibration

    cfg = SBC_SETTINGS[distribution]
    fam = get_family(distribution)
    priors = {k: parse_prior(v) for k, v in cfg["priors"].items()}

    def simulate(rng):
        truth = fam.sample_prior(priors, random_state=rng)
        d = make_population(
            12, distribution=distribution, params=truth, err=cfg["err"],
            relative_err=cfg["rel"], random_state=rng.randint(2**31 - 1),
        )
        return dict(zip(fam.param_names, truth, strict=True)), d.X, None, {"X_err": d.X_err}

    # Many walkers, short chains: ~6000 draws with an autocorrelation
    # time of ~7 steps (ESS ~ 800 > 99 draws) at little per-call overhead.
    model = PopulationModel(distribution, priors=cfg["priors"], n_walkers=48, n_steps=250,
                            n_burn=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = simulation_based_calibration(model, simulate, 200, random_state=2026)
    assert sorted(res.ranks) == sorted(fam.param_names)
    assert res.is_uniform(alpha=0.001), (res.p_values, {
        k: np.bincount(r * 10 // 100, minlength=10).tolist() for k, r in res.ranks.items()
    })


# ---------------------------------------------------------------------------
# Outliers: interlopers in a galaxy cluster
# ---------------------------------------------------------------------------
# 60 members with a 600 km/s dispersion and 15 interlopers spread uniformly over
# +-8000 km/s (a redshift slice of about +-0.027). Interlopers that fall inside
# the cluster's own velocity range cannot be told apart by anyone: the ROC AUC
# of the exact likelihood ratio is 1 - E|v_member| / 8000 = 0.94 here.
VDISP = dict(n_members=60, n_interlopers=15, dispersion=600.0, interloper_range=8000.0,
             err=(50.0, 150.0))


def test_interlopers_are_identified_and_do_not_inflate_the_dispersion():
    d = make_velocity_dispersion(**VDISP, random_state=0)
    model = PopulationModel(outliers=True, random_state=0).fit(d.X, X_err=d.X_err)
    auc = roc_auc_score(d.is_interloper, model.membership_proba_[:, 1])
    assert auc >= 0.9, auc
    lo, hi = np.quantile(model.posterior_["tau"], [0.05, 0.95])
    assert lo < VDISP["dispersion"] < hi
    # Without the background component the interlopers inflate the dispersion.
    plain = PopulationModel(random_state=0).fit(d.X, X_err=d.X_err)
    assert np.quantile(plain.posterior_["tau"], 0.05) > hi
    np.testing.assert_allclose(model.membership_proba_.sum(axis=1), 1.0)
    np.testing.assert_allclose(
        model.predict_membership_proba(d.X, X_err=d.X_err), model.membership_proba_
    )


@pytest.mark.slow
def test_interloper_auc_and_dispersion_coverage():
    n_sims, covered, aucs = 100, 0, []
    for seed in range(n_sims):
        d = make_velocity_dispersion(**VDISP, random_state=1000 + seed)
        model = PopulationModel(outliers=True, n_walkers=24, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(d.X, X_err=d.X_err)
        aucs.append(roc_auc_score(d.is_interloper, model.membership_proba_[:, 1]))
        lo, hi = np.quantile(model.posterior_["tau"], [0.05, 0.95])
        covered += lo < VDISP["dispersion"] < hi
    assert np.mean(aucs) >= 0.9, np.mean(aucs)
    assert covered >= 85, covered


# ---------------------------------------------------------------------------
# Behaviour and API
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("distribution", ["normal", "lognormal", "beta"])
@ignore_convergence
def test_api_shapes_and_sample_posterior(distribution):
    params = {"normal": (0.0, 1.0), "lognormal": (0.0, 0.5), "beta": (0.3, 5.0)}[distribution]
    d = make_population(40, distribution=distribution, params=params, err=0.05, random_state=0)
    model = PopulationModel(distribution, **FAST, random_state=0).fit(d.X, X_err=d.X_err)
    assert set(model.population_params_) >= set(model.family_.param_names)
    draws = model.sample_posterior(5, random_state=0)
    assert draws["theta"].shape == (5, 40)
    lo, hi = model.family_.support
    assert np.all((draws["theta"] >= lo) & (draws["theta"] <= hi))
    assert model.predict(d.X, X_err=d.X_err).shape == (40,)
    assert model.score_samples(d.X, X_err=d.X_err).shape == (40,)
    assert np.isfinite(model.score(d.X, X_err=d.X_err))
    band = model.population_density(level=0.8)
    assert np.all(band.lower <= band.median) and np.all(band.median <= band.upper)
    proba = model.predict_membership_proba(d.X, X_err=d.X_err)
    np.testing.assert_array_equal(proba, np.c_[np.ones(40), np.zeros(40)])


@ignore_convergence
def test_beta_accepts_measurements_outside_the_unit_interval():
    d = make_population(60, distribution="beta", params=(0.15, 3.0), err=0.1, random_state=2)
    assert np.any(d.X < 0)
    model = PopulationModel("beta", **FAST, random_state=0).fit(d.X, X_err=d.X_err)
    theta = model.predict(d.X, X_err=d.X_err)
    assert np.all((theta > 0) & (theta < 1))
    # ...but exact values outside the support are refused.
    with pytest.raises(ValueError, match="outside the support"):
        PopulationModel("beta", **FAST).fit(d.X)


@ignore_convergence
def test_predict_without_errors_returns_exact_values_and_shrinks_with_errors():
    d = make_population(30, params=(5.0, 1.0), err=2.0, random_state=0)
    model = PopulationModel(**FAST, random_state=0).fit(d.X, X_err=d.X_err)
    np.testing.assert_allclose(model.predict(d.X), d.X[:, 0])
    shrunk = model.predict(d.X, X_err=d.X_err)
    centre = model.population_params_["mu"]
    assert np.all(np.abs(shrunk - centre) <= np.abs(d.X[:, 0] - centre) + 1e-12)


@ignore_convergence
def test_fit_without_errors_is_a_plain_population_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(200, 1))
    model = PopulationModel(n_walkers=16, n_steps=400, random_state=0).fit(X)
    assert abs(model.population_params_["mu"] - 3.0) < 0.5
    assert abs(model.population_params_["tau"] - 2.0) < 0.4


@ignore_convergence
def test_reproducible_picklable_and_inputs_untouched():
    d = make_population(25, distribution="beta", params=(0.4, 4.0), err=0.05, random_state=0)
    X, X_err = d.X.copy(), d.X_err.copy()
    a = PopulationModel("beta", **FAST, random_state=3).fit(X, X_err=X_err)
    b = PopulationModel("beta", **FAST, random_state=3).fit(X, X_err=X_err)
    np.testing.assert_array_equal(a.posterior_["mean"], b.posterior_["mean"])
    np.testing.assert_array_equal(X, d.X)
    np.testing.assert_array_equal(X_err, d.X_err)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict(X, X_err=X_err), a.predict(X, X_err=X_err))


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, match",
    [
        ({}, {"X_err": -np.ones((10, 1))}, "X_err"),
        ({}, {"X_err": np.ones((9, 1))}, "X_err"),
        ({"priors": {"tau": ("normal", 0, 1)}}, {}, "tau"),
        ({"priors": {"sigma": ("halfcauchy", 1.0)}}, {}, "unknown parameter"),
        ({"priors": {"outlier_fraction": ("beta", 1, 4)}}, {}, "outliers=True"),
        ({"priors": {"tau": ("halfcauchy", -1.0)}}, {}, "> 0"),
        ({"distribution": "gamma"}, {}, "distribution"),
    ],
)
def test_bad_input_is_refused(kwargs, fit_kwargs, match):
    X = np.linspace(0.1, 0.9, 10)[:, None]
    with pytest.raises(ValueError, match=match):
        PopulationModel(**kwargs, **FAST).fit(X, **fit_kwargs)


def test_multi_column_X_is_refused():
    with pytest.raises(ValueError, match="single column"):
        PopulationModel(**FAST).fit(np.ones((10, 2)))


@ignore_convergence
def test_error_routing_X_err():
    d = make_population(30, params=(0.0, 1.0), err=0.5, random_state=0)
    assert_error_routing(
        PopulationModel(**FAST, random_state=0), d.X, None, "X_err", encode_ids(30, (1,))
    )


@pytest.mark.parametrize(
    "family, params, x, e, pdf",
    [
        (BetaFamily(), (0.22, 3.9), -0.035, 0.022, lambda t: stats.beta.pdf(t, 0.858, 3.042)),
        (BetaFamily(), (0.5, 0.4), 0.95, 0.1, lambda t: stats.beta.pdf(t, 0.2, 0.2)),
        (LogNormalFamily(), (1.0, 0.5), 2.7, 0.3, lambda t: stats.lognorm.pdf(t, 0.5, scale=np.e)),
    ],
)
def test_latent_draws_follow_the_conditional_posterior(family, params, x, e, pdf):
    """Draws of theta_i | x_i, alpha (for sample_posterior) against quad CDFs."""
    marginal = make_marginal(family, np.array([x]), np.array([e]))
    draws = marginal.sample(np.tile(params, (3000, 1)), np.random.default_rng(0))[:, 0]
    lo, hi = family.support
    hi = hi if np.isfinite(hi) else 50.0

    def post(t):
        return stats.norm.pdf(x, t, e) * pdf(t)

    z = integrate.quad(post, lo, hi, limit=200, points=[max(lo, min(x, hi))])[0]

    def cdf(v):
        return np.array([integrate.quad(post, lo, vi, limit=200)[0] / z for vi in np.atleast_1d(v)])

    edges = np.quantile(draws, np.linspace(0, 1, 11))
    probs = np.diff(np.r_[0.0, cdf(edges[1:-1]), 1.0])
    counts = np.histogram(draws, np.r_[lo, edges[1:-1], hi])[0]
    assert stats.chisquare(counts, probs * counts.sum()).pvalue > 1e-3


# scikit-learn's estimator checks and their one-column versions: tests/test_common.py


# ---------------------------------------------------------------------------
# Near point-mass populations (a sampler exploring sigma -> 0 or
# concentration -> inf goes there)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("family, params", [
    (LogNormalFamily(), (1.0, 1e-9)), (LogNormalFamily(), (1.0, 1e-14)),
    (LogNormalFamily(), (1.0, 1e-30)), (LogNormalFamily(), (1.0, 1e-5)),
    (BetaFamily(), (0.3, 1e8)), (BetaFamily(), (0.3, 1e10)), (BetaFamily(), (0.3, 1e12)),
    (BetaFamily(), (0.3, 1e18)),
])
def test_marginal_of_a_near_point_mass_population(family, params):
    """Within 1e-6 of quad in the population's standardised variable z.
    Before the point-mass limit, quadrature in v broke down: the Beta
    log-likelihood at concentration 1e18 was about +7000 per object."""
    x = np.array([0.2, 0.3, 0.45, 2.5, 2.72, 3.1])
    e = np.array([0.05, 0.02, 0.1, 0.3, 0.05, 0.4])
    if isinstance(family, BetaFamily):
        x, e = x[:3], e[:3]
        m, s = params[0], np.sqrt(params[0] * (1 - params[0]) / (params[1] + 1))

        def theta(z):  # Beta(m, kappa) -> normal as kappa -> inf (skewness ~ 1e-6 here)
            return m + s * z
    else:
        x, e = x[3:], e[3:]

        def theta(z):
            return np.exp(params[0] + params[1] * z)
    got = make_marginal(family, x, e).loglik(np.array([params]))[0]
    ref = [np.log(integrate.quad(lambda z, xi=xi, ei=ei: stats.norm.pdf(xi, theta(z), ei)
                                 * stats.norm.pdf(z), -40, 40, epsabs=0, epsrel=1e-12)[0])
           for xi, ei in zip(x, e, strict=True)]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
