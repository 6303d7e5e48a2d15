"""The distance estimator's fast path: the leading-term cluster integral,
Newton MAP search and adaptive Gauss–Hermite quadrature over the population
posterior, each checked against an independent reference (scipy quad in
the standardised variable; analytic posteriors; a brute-force grid)."""


import numpy as np
import pytest
from scipy.special import digamma, polygamma

from skhier import HierarchicalDistanceEstimator
from skhier._cluster_integral import (
    LEAD_RULES,
    _lead_correction,
    cluster_log_marginal,
    cluster_log_marginal_leading,
    lead_terms,
    population_quadrature,
)
from skhier._distance import _DistanceModel
from skhier._grid import GridResult
from skhier._population import gaussian_latent_log_marginal
from skhier._quadrature import run_quadrature, tensor_gauss_hermite
from skhier._sampling import laplace_covariance, newton_map

from .helpers import check_leading_rules, quad_standardised


def _random_cases(n, seed, max_depth=0.3):
    """(parallax, error, mu, sigma): 30 pc-6 kpc, depth 0.1 %-``max_depth``
    of the distance, fractional parallax errors 0.03 %-200 % (so negative
    parallaxes too), stars up to 8 combined widths from the cluster."""
    rng = np.random.default_rng(seed)
    mu = 10 ** rng.uniform(1.5, 3.8, n)
    sig = mu * 10 ** rng.uniform(-3, np.log10(max_depth), n)
    err = 10 ** rng.uniform(-3.5, 0.3, n) * 1000 / mu
    m, sx = 1000 / mu, 1000 * sig / mu**2
    plx = m + rng.uniform(-8, 8, n) * np.sqrt(err**2 + sx**2)
    return plx, err, mu, sig


def test_leading_rule_matches_quad():
    plx, err, mu, sig = _random_cases(600, 0)
    val, ok = cluster_log_marginal_leading(plx, err, mu, sig)
    assert ok.sum() > 300
    ref = np.array([quad_standardised(*a) for a in zip(plx[ok], err[ok], mu[ok], sig[ok],
                                                         strict=True)])
    # The documented bound (1e-8) with a margin of 2.
    np.testing.assert_array_less(np.abs(val[ok] - ref), 2e-8)
    assert np.any(plx[ok] < 0), "negative parallaxes are covered"


def test_every_leading_rule_matches_quad_on_its_range():
    """Each Gauss–Hermite rule of LEAD_RULES, not only the one chosen, is
    within the documented 1e-8 (margin 2) of quad wherever its bound
    admits the entry; deep clusters (depth up to 40 %) reach the largest
    rules, and every rule's own band holds cases."""
    plx, err, mu, sig = _random_cases(500, 1, max_depth=0.4)
    terms = lead_terms(plx, err, mu, sig)
    q, valid = terms[9], terms[10]
    ref = np.full(plx.size, np.nan)
    for i in np.flatnonzero(valid & (q <= 0.55)):
        ref[i] = quad_standardised(plx[i], err[i], mu[i], sig[i])
    check_leading_rules(LEAD_RULES, _lead_correction, terms, ref)


@pytest.mark.parametrize("regime", [(135.0, 5.0, 0.1), (2000.0, 30.0, 0.2)])
def test_leading_rule_covers_benchmark_clusters(regime):
    """Near (resolved stars) and far (broad likelihoods, negative parallaxes):
    nearly every star is handled by the leading-term rule at the truth."""
    mu, sig, s = regime
    rng = np.random.default_rng(1)
    r = rng.normal(mu, sig, 5000)
    plx = 1000 / r + rng.normal(0, s, r.size)
    _, ok = cluster_log_marginal_leading(plx, s, mu, sig)
    assert ok.mean() > 0.95


def test_cluster_log_marginal_matches_adaptive_everywhere():
    """Table over draws x stars mixing both rules and the adaptive fallback
    (deep clusters, stars far out) agrees with the adaptive quadrature
    (accurate to 1e-6) entry by entry; inputs are not modified."""
    plx, err, _, _ = _random_cases(300, 2)
    mu = np.array([[50.0], [400.0], [2000.0]])
    sig = np.array([[20.0], [4.0], [300.0]])
    plx0 = plx.copy()
    val = cluster_log_marginal(plx, err, mu, sig)
    _, ok = cluster_log_marginal_leading(plx, err, mu, sig)
    assert 0 < ok.mean() < 1
    ref = gaussian_latent_log_marginal(plx, err, mu, sig, lambda r: 1000 / r,
                                       lambda r: -1000 / r**2, g_inv=lambda p: 1000 / p,
                                       lower=0.0)
    from scipy.special import log_ndtr

    np.testing.assert_allclose(val, ref - log_ndtr(mu / sig), rtol=0, atol=2e-6)
    np.testing.assert_array_equal(plx, plx0)


def test_tensor_gauss_hermite_moments():
    u, lw = tensor_gauss_hermite(2, 8)
    w = np.exp(lw)
    assert w.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(w @ u, 0.0, atol=1e-12)
    np.testing.assert_allclose((w[:, None] * u).T @ u, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(w @ u[:, 0] ** 4, 3.0, rtol=1e-10)


def _log_gamma_posterior(theta):
    """theta0 = log x, x ~ Gamma(30); theta1 | theta0 ~ N(theta0 / 2, 1)."""
    theta = np.atleast_2d(theta)
    return 30.0 * theta[:, 0] - np.exp(theta[:, 0]) - 0.5 * (theta[:, 1] - 0.5 * theta[:, 0]) ** 2


def test_newton_map_and_quadrature_on_skewed_posterior():
    x = newton_map(_log_gamma_posterior, np.zeros(2))
    np.testing.assert_allclose(x, [np.log(30.0), 0.5 * np.log(30.0)], atol=1e-6)
    cov = laplace_covariance(_log_gamma_posterior, x)
    res = run_quadrature(_log_gamma_posterior, x, cov, random_state=np.random.RandomState(0))
    assert res.ok, res.messages
    m0, v0 = digamma(30.0), polygamma(1, 30.0)
    exact_mean = np.array([m0, 0.5 * m0])
    exact_sd = np.sqrt([v0, 0.25 * v0 + 1.0])
    # Deterministic: the quadrature's own error estimate bounds the error.
    assert np.all(res.error < 0.02)
    np.testing.assert_array_less(np.abs(res.mean - exact_mean) / exact_sd, 1e-4)
    np.testing.assert_array_less(np.abs(np.sqrt(np.diag(res.cov)) - exact_sd) / exact_sd, 1e-4)
    # Draws from the quadrature posterior: mean within its Monte Carlo error
    # (false-failure rate ~1e-4 per coordinate at 3.9 sd).
    ess = res.n_effective_params
    dev = np.abs(res.samples.mean(axis=0) - exact_mean) / exact_sd
    np.testing.assert_array_less(dev, 3.9 * np.sqrt(1 / ess + 1 / len(res.samples)))


def _cluster(n, mu, sig, frac_err, seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(mu, sig, n)
    err = np.full(n, frac_err * 1000 / mu)
    return 1000 / r + err * rng.standard_normal(n), err


def _grid_moments(plx, err, mu_grid, sig_grid, integral=None):
    """Posterior means and sds of (mu_r, sigma_r) on a grid (uniform mu prior,
    half-normal(50) sigma prior; equal weights: a midpoint rule), per-star
    integrals by the adaptive quadrature (not the leading-term rule under
    test) unless ``integral`` is given."""
    M, S = np.meshgrid(mu_grid, sig_grid, indexing="ij")
    ll = np.zeros(M.shape)
    for i in range(M.shape[0]):
        if integral is None:
            v = gaussian_latent_log_marginal(plx, err, M[i][:, None], S[i][:, None],
                                             lambda r: 1000 / r, lambda r: -1000 / r**2,
                                             g_inv=lambda p: 1000 / p, lower=0.0)
        else:
            v = integral(plx, err, M[i][:, None], S[i][:, None])
        ll[i] = v.sum(axis=1)
    lp = ll - 0.5 * (S / 50.0) ** 2
    w = np.exp(lp - lp.max())
    w /= w.sum()
    out = []
    for v in (M, S):
        m = np.sum(w * v)
        out.append((m, np.sqrt(np.sum(w * (v - m) ** 2))))
    return np.array(out)


def _benchmark_model(plx, err):
    """The distance model with the peers' priors (uniform mu, half-normal(50) sigma)."""
    return _DistanceModel(plx, err, mean_prior=("uniform", 1.0, 10000.0),
                          dispersion_prior=("half-normal", 50.0), field=False,
                          length_scale=None, fraction_prior=(1.0, 1.0), zero_point=0.0,
                          zero_point_prior=None)


def _node_moments(model, res):
    """[[mean, sd] of mu_r, [mean, sd] of sigma_r] from a rule's nodes and weights."""
    p = model.constrain(res.nodes)
    W = res.node_weights
    out = []
    for name in ("mean_distance", "distance_dispersion"):
        m = W @ p[name]
        out.append((m, np.sqrt(W @ (p[name] - m) ** 2)))
    return np.array(out)


@pytest.mark.parametrize("case", [
    "near", pytest.param("far-negative-parallax", marks=pytest.mark.slow)])
def test_quadrature_fit_matches_grid_posterior(case):
    if case == "near":  # resolved stars: 1.4 % errors, depth 3.7 %
        plx, err = _cluster(400, 135.0, 5.0, 0.014, 3)
    else:  # 30 % errors at 800 pc: broad likelihoods, negative parallaxes, a
        # skewed posterior of the depth
        plx, err = _cluster(2000, 800.0, 80.0, 0.3, 4)
        assert np.any(plx < 0)
    model = _benchmark_model(plx, err)
    x = newton_map(model.log_prob, model.initial_point())
    cov = laplace_covariance(model.log_prob, x)
    res = run_quadrature(model.log_prob, x, cov, random_state=np.random.RandomState(0))
    assert res.ok, res.messages
    quad = _node_moments(model, res)
    # Grid over +-6 sd of each parameter, checked by halving the step.
    c, s = quad[:, 0], quad[:, 1]

    def grid(k):
        return _grid_moments(plx, err, np.linspace(c[0] - 6 * s[0], c[0] + 6 * s[0], 20 * k),
                             np.linspace(max(c[1] - 6 * s[1], 1e-3), c[1] + 6 * s[1], 20 * k))

    ref, fine = grid(1), grid(2)
    assert np.all(np.abs(fine - ref) < 2e-3 * s[:, None]), (fine, ref)
    # Deterministic comparison: the quadrature's tolerance (0.02 sd) plus the
    # leading-term rule's error (< 1e-7 per star, far below).
    assert np.all(np.abs(quad - fine) < 0.02 * s[:, None]), (quad, fine)


@pytest.mark.parametrize("reference", [
    "leading-term", pytest.param("adaptive", marks=pytest.mark.slow)])
def test_unresolved_depth_lattice_matches_grid_posterior(reference):
    """A far cluster whose depth the parallaxes barely resolve (40 % errors,
    negative parallaxes): the depth's posterior is flat down to 0, Gauss–
    Hermite rules do not converge, and the lattice quadrature takes over.
    Its moments against a brute-force midpoint grid in (mu_r, sigma_r)
    (checked by halving its step), with the per-star integrals by the
    leading-term rule (tested against quad above) or, slow, by the adaptive
    quadrature."""
    plx, err = _cluster(1000, 2000.0, 30.0, 0.4, 7)
    assert np.any(plx < 0)
    model = _benchmark_model(plx, err)
    res = population_quadrature(model, np.random.RandomState(0), 2000)
    assert isinstance(res, GridResult) and res.ok, res
    assert np.all(res.error < 0.02)
    quad = _node_moments(model, res)
    c, s = quad[:, 0], quad[:, 1]
    top = c[1] + 7 * s[1]
    integral = cluster_log_marginal if reference == "leading-term" else None

    def grid(k):
        h = top / (24 * k)
        return _grid_moments(plx, err, np.linspace(c[0] - 7 * s[0], c[0] + 7 * s[0], 24 * k),
                             (np.arange(24 * k) + 0.5) * h, integral)

    ref, fine = grid(1), grid(2)
    # The midpoint rule's error in the mean of sigma is second order (|s|
    # has a kink at 0): the finer grid's error is a third of the difference.
    assert np.all(np.abs(fine - ref) < 0.01 * s[:, None]), (fine, ref)
    assert np.all(np.abs(quad - fine) < (0.02 + np.abs(fine - ref) / 3) * s[:, None]), (
        quad, fine)


def test_estimator_uses_quadrature_for_large_samples():
    plx, err = _cluster(2000, 135.0, 5.0, 0.014, 5)
    est = HierarchicalDistanceEstimator(random_state=0).fit(plx[:, None], X_err=err)
    assert est.sampler_ == "quadrature"
    assert max(est.quadrature_error_.values()) < 0.02
    assert est.n_draws_ == 2000
    d = est.distance_
    assert d.shape == (2000,) and est.distance_ is d  # computed once, on access
    again = HierarchicalDistanceEstimator(random_state=0).fit(plx[:, None], X_err=err)
    np.testing.assert_array_equal(again.posterior_["mean_distance"],
                                  est.posterior_["mean_distance"])


def test_quadrature_sampler_only_where_implemented():
    from skhier import RobustLineMixture

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(30, 1))
    y = 2 * x[:, 0] + 0.1 * rng.standard_normal(30)
    with pytest.raises(ValueError, match="sampler='quadrature' is not available"):
        RobustLineMixture(sampler="quadrature").fit(x, y, y_err=np.full(30, 0.1))


def test_failed_quadrature_falls_back_to_importance(monkeypatch):
    import skhier._cluster_integral as dist

    def not_converged(real):
        def run(*args, **kwargs):
            res = real(*args, **kwargs)
            res.ok = False
            return res
        return run

    monkeypatch.setattr(dist, "run_quadrature", not_converged(dist.run_quadrature))
    monkeypatch.setattr(dist, "run_grid", not_converged(dist.run_grid))
    plx, err = _cluster(1000, 135.0, 5.0, 0.014, 6)
    est = HierarchicalDistanceEstimator(random_state=0).fit(plx[:, None], X_err=err)
    assert est.sampler_ == "importance"
    assert est.quadrature_error_ is None
