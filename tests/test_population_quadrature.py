"""PopulationModel at scale: quadrature over the population posterior and
lazily computed per-object summaries.

The deterministic quadrature (``sampler="quadrature"``, the default from
1 000 objects) is checked against brute-force grid posteriors whose
per-object integrals are dense trapezoids in the latent variable (code
independent of skhier's), with the grid's own convergence checked by
halving its steps.
"""

import warnings

import numpy as np
import pytest
from scipy import special, stats
from sklearn.exceptions import ConvergenceWarning

from skhier import PopulationModel, _popmodel, _population
from skhier.datasets import make_population

from .helpers import assert_grid_converged, assert_mc_close, mcse_mean, mcse_sd, z_threshold

# The benchmark's populations (benchmarks/population.py), at 1 000 objects.
CASES = {
    "lognormal": dict(
        params=(1.0, 0.5), err=(0.1, 0.5),
        priors={"mu": ("normal", 0.0, 5.0), "sigma": ("halfcauchy", 1.0)},
    ),
    "beta": dict(
        params=(0.3, 5.0), err=(0.03, 0.1),
        priors={"mean": ("uniform", 0.0, 1.0),
                "concentration": ("lognormal", np.log(10.0), 1.5)},
    ),
}


def _latent_setup(population):
    """theta(v), the population's log-density in v and the log prior, in the
    sampler's coordinates (u1, u2): (mu, log sigma) or (logit mean, log kappa)."""
    if population == "lognormal":
        def log_pv(v, u1, u2):
            return stats.norm.logpdf(v, u1, np.exp(u2))

        def log_prior(u1, u2):
            return stats.norm.logpdf(u1, 0.0, 5.0) + stats.halfcauchy.logpdf(np.exp(u2)) + u2

        return np.exp, log_pv, log_prior, (-8.0, 5.0)

    def log_pv(v, u1, u2):
        a, b = special.expit(u1) * np.exp(u2), special.expit(-u1) * np.exp(u2)
        return a * special.log_expit(v) + b * special.log_expit(-v) - special.betaln(a, b)

    def log_prior(u1, u2):
        return (special.log_expit(u1) + special.log_expit(-u1)
                + stats.norm.logpdf(u2, np.log(10.0), 1.5))

    return special.expit, log_pv, log_prior, (-30.0, 25.0)


def _grid_moments(population, x, e, centre, half, n_cells, n_latent, objects=()):
    """Posterior means and sds of (u1, u2) on a uniform grid of ``n_cells``
    per axis over ``centre +- half``; each object's integral
    ∫ N(x_i | theta(v), e_i^2) p(v | u) dv by the trapezoid rule on
    ``n_latent`` points (a matrix product over objects x latent points x
    cells). Also returns the posterior mass in the grid's outer cells and
    the posterior mean true value of the ``objects`` (indices)."""
    theta_of_v, log_pv, log_prior, (v_lo, v_hi) = _latent_setup(population)
    v = np.linspace(v_lo, v_hi, n_latent)
    dv = v[1] - v[0]
    ll = stats.norm.logpdf(x[:, None], theta_of_v(v)[None, :], e[:, None])
    ll_max = ll.max(axis=1, keepdims=True)
    L = np.exp(ll - ll_max)
    objects = np.asarray(objects, dtype=int)
    L_theta = L[objects] * theta_of_v(v)[None, :]
    g1 = np.linspace(centre[0] - half[0], centre[0] + half[0], n_cells)
    g2 = np.linspace(centre[1] - half[1], centre[1] + half[1], n_cells)
    U1, U2 = np.meshgrid(g1, g2, indexing="ij")
    u1, u2 = U1.ravel(), U2.ravel()
    lp = np.empty(u1.size)
    cond_mean = np.empty((objects.size, u1.size))  # E[theta_i | x_i, u] per cell
    for start in range(0, u1.size, 256):
        cells = slice(start, start + 256)
        pv = log_pv(v[:, None], u1[None, cells], u2[None, cells])  # (V, C)
        pv_max = pv.max(axis=0, keepdims=True)
        P = np.exp(pv - pv_max)
        M = L @ P  # (n, C)
        cond_mean[:, cells] = (L_theta @ P) / M[objects]
        with np.errstate(divide="ignore"):
            lp[cells] = np.sum(np.log(M * dv), axis=0) + ll_max.sum() + x.size * pv_max[0]
    lp += log_prior(u1, u2)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    edge = w.reshape(U1.shape)
    edge_mass = edge[[0, -1], :].sum() + edge[:, [0, -1]].sum()
    m = np.array([w @ u1, w @ u2])
    sd = np.sqrt(np.array([w @ (u1 - m[0]) ** 2, w @ (u2 - m[1]) ** 2]))
    return np.concatenate([m, sd]), edge_mass, cond_mean @ w


@pytest.mark.parametrize("population", ["lognormal", "beta"])
def test_default_quadrature_matches_brute_force_grid(population):
    """At 1 000 objects ``sampler="auto"`` integrates the posterior by
    quadrature. Its moments (no Monte Carlo error) agree with a converged
    grid posterior within the quadrature's convergence tolerance (0.02
    posterior sd) plus the grid's own convergence error; the stored draws
    agree within their Monte Carlo error."""
    cfg = CASES[population]
    d = make_population(1000, distribution=population, params=cfg["params"], err=cfg["err"],
                        random_state=11)
    est = PopulationModel(population, priors=cfg["priors"], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(d.X, X_err=d.X_err)
    assert est.sampler_ == "quadrature"
    assert max(est.quadrature_error_.values()) < 0.02
    # The deterministic moments of the same quadrature (a rerun: they do not
    # depend on the random state, which only seeds the draws).
    res = est._quadrature_attempt(est.model_, np.random.RandomState(1))
    q_sd = np.sqrt(np.diag(res.cov))
    x, e = d.X[:, 0], d.X_err[:, 0]
    # Objects with the smallest, middle and largest measurements.
    objects = np.argsort(x)[[0, 1, 500, 998, 999]]
    theta_ref = {}

    def moments_at(factor):
        mom, edge, theta_ref[factor] = _grid_moments(
            population, x, e, res.mean, 7.0 * q_sd, 20 * factor + 1, 3000 * factor, objects)
        assert edge < 1e-9  # the grid holds the whole posterior
        return mom

    ref = assert_grid_converged(moments_at, rtol=1e-3)
    ref_mean, ref_sd = ref[:2], ref[2:]
    np.testing.assert_array_less(np.abs(res.mean - ref_mean) / ref_sd, 0.02 + 1e-3)
    np.testing.assert_array_less(np.abs(q_sd / ref_sd - 1.0), 0.02 + 1e-3)
    # Per-object posterior means (averaged over the quadrature's nodes):
    # within the per-object integrals' accuracy (tested against quad at 1e-4)
    # of the converged grid's.
    np.testing.assert_allclose(theta_ref[1], theta_ref[2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(est.theta_mean_[objects], theta_ref[2], rtol=0, atol=1e-4)
    # The stored draws (what summaries and sample_posterior use).
    draws = est.model_.unconstrain(est.posterior_)
    ess = np.array(list(est.n_effective_.values()))
    assert_mc_close(draws.mean(axis=0), ref_mean, mcse_mean(ref_sd, ess), n_assertions=4,
                    what="posterior means from the quadrature draws")
    assert_mc_close(draws.std(axis=0), ref_sd, mcse_sd(ref_sd, ess), n_assertions=4,
                    what="posterior sds from the quadrature draws")


def test_quadrature_falls_back_when_the_posterior_is_far_from_gaussian(monkeypatch):
    """Ten objects measured with errors far larger than the population's
    width leave a posterior of log sigma with a long tail towards a point
    mass: the first rule moves the mean by more than half a Laplace width,
    so ``sampler="auto"`` importance-samples instead."""
    monkeypatch.setattr(_popmodel, "QUADRATURE_MIN_OBJECTS", 5)
    cfg = CASES["lognormal"]
    d = make_population(10, distribution="lognormal", params=(1.0, 0.1), err=(1.0, 2.0),
                        random_state=2)
    est = PopulationModel("lognormal", priors=cfg["priors"], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(d.X, X_err=d.X_err)
    assert est.sampler_ in ("importance", "emcee")
    assert est.quadrature_error_ is None
    # Forced, quadrature runs anyway and says it did not converge.
    forced = PopulationModel("lognormal", priors=cfg["priors"], sampler="quadrature",
                             random_state=0)
    with pytest.warns(ConvergenceWarning, match="[Qq]uadrature"):
        forced.fit(d.X, X_err=d.X_err)
    assert forced.sampler_ == "quadrature"


def test_quadrature_refuses_more_than_four_parameters():
    d = make_population(50, distribution="normal", params=(0.0, 1.0), err=0.5,
                        outlier_fraction=0.1, random_state=0)
    est = PopulationModel(outliers=True, sampler="quadrature", random_state=0)
    with pytest.raises(ValueError, match="at most 4 parameters; this model has 5"):
        est.fit(d.X, X_err=d.X_err)


@pytest.mark.parametrize("population", ["lognormal", "beta"])
def test_per_object_summaries_are_lazy_and_match_predict(population):
    cfg = CASES[population]
    d = make_population(60, distribution=population, params=cfg["params"], err=cfg["err"],
                        random_state=5)
    est = PopulationModel(population, priors=cfg["priors"], random_state=0)
    est.fit(d.X, X_err=d.X_err)
    assert "theta_mean_" not in vars(est) and "membership_proba_" not in vars(est)
    theta = est.theta_mean_
    assert "theta_mean_" in vars(est)
    # The training objects' fitted nodes against predict's freshly built ones.
    np.testing.assert_allclose(theta, est.predict(d.X, X_err=d.X_err), rtol=1e-10)
    np.testing.assert_array_equal(est.membership_proba_, np.c_[np.ones(60), np.zeros(60)])
    # A refit on other data recomputes them.
    est.fit(d.X[:30], X_err=d.X_err[:30])
    assert "theta_mean_" not in vars(est)
    assert est.theta_mean_.shape == (30,)


@pytest.mark.parametrize("population", ["normal", "lognormal", "beta"])
def test_score_samples_after_quadrature_match_the_mean_over_draws(population):
    """After quadrature score_samples averages p(x_i | alpha) with the rule's
    weights; the mean over all 2 000 stored draws (the pointwise
    log-likelihood table, the base class's path) agrees within its Monte
    Carlo error, sd / (mean sqrt(S)) by the delta method, per object
    (Bonferroni over the objects: valid however correlated they are)."""
    cfg = CASES.get(population, dict(params=(0.0, 1.0), err=(0.5, 1.5), priors=None))
    d = make_population(1000, distribution=population, params=cfg["params"], err=cfg["err"],
                        random_state=2)
    est = PopulationModel(population, priors=cfg["priors"], random_state=0)
    est.fit(d.X, X_err=d.X_err)
    assert est.sampler_ == "quadrature"
    got = est.score_samples(d.X, X_err=d.X_err)
    table = est._pointwise_log_likelihood()
    ratio = np.exp(table - table.max(axis=0))
    se = ratio.std(axis=0) / ratio.mean(axis=0) / np.sqrt(len(table))
    ref = special.logsumexp(table, axis=0) - np.log(len(table))
    assert np.all(np.abs(got - ref) < z_threshold(n_assertions=got.size) * se)


def test_lazy_summaries_need_a_fitted_model():
    est = PopulationModel()
    assert not hasattr(est, "theta_mean_")
    assert not hasattr(est, "membership_proba_")


@pytest.mark.slow
@pytest.mark.parametrize("population", ["lognormal", "beta"])
def test_quadrature_intervals_cover_the_truth(population, stat_seed):
    """Coverage of the default (quadrature) fit at 1 000 objects: over M
    simulated data sets at the benchmark's truth, the number of central
    90 % intervals (from the stored draws) that contain the true value is
    Binomial(M, 0.9) for each parameter; accepted between its 0.05 % and
    99.95 % quantiles (false-failure rate about 1e-3 per parameter)."""
    cfg = CASES[population]
    names = list(cfg["priors"])
    n_sims = 60
    covered = np.zeros(len(names), dtype=int)
    for sim in range(n_sims):
        d = make_population(1000, distribution=population, params=cfg["params"],
                            err=cfg["err"], random_state=1000 * stat_seed + sim)
        est = PopulationModel(population, priors=cfg["priors"], random_state=sim)
        est.fit(d.X, X_err=d.X_err)
        assert est.sampler_ == "quadrature"
        for j, (name, truth) in enumerate(zip(names, cfg["params"], strict=True)):
            lo, hi = np.quantile(est.posterior_[name], [0.05, 0.95])
            covered[j] += lo < truth < hi
    low, high = stats.binom.ppf([5e-4, 1 - 5e-4], n_sims, 0.9)
    assert np.all((covered >= low) & (covered <= high)), (covered, low, high)


@pytest.mark.parametrize("population", ["lognormal", "beta"])
def test_node_solver_hits_its_targets_in_blocks(population, monkeypatch):
    """The fixed nodes solve s(v) = target per object (to 1e-12 relative),
    and solving in blocks of objects gives the same nodes."""
    from skhier._distributions import BetaFamily, LogNormalFamily

    cfg = CASES[population]
    d = make_population(300, distribution=population, params=cfg["params"], err=cfg["err"],
                        random_state=3)
    fam = LogNormalFamily() if population == "lognormal" else BetaFamily()
    x, e = d.X[:, 0], d.X_err[:, 0]
    whole = _population._BoundedMarginal(fam, x, e)
    u = np.linspace(0.0, 1.0, 7)
    target = whole.sa[:, None] + (whole.sb - whole.sa)[:, None] * u
    v = whole._solve_v(target, whole.va, whole.vb, e)
    s_v = whole._s(v, e[:, None])[0]
    np.testing.assert_allclose(s_v, target, rtol=1e-10, atol=1e-10)
    assert np.all(np.diff(v, axis=1) > 0)
    monkeypatch.setattr(_population._BoundedMarginal, "SOLVE_BLOCK", 50)  # 1-7 objects a block
    blocks = _population._BoundedMarginal(fam, x, e)
    np.testing.assert_allclose(blocks.nodes, whole.nodes, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocks._solve_v(target, whole.va, whole.vb, e), v,
                               rtol=1e-12, atol=1e-12)
