import math

import numpy as np
import pytest
import sklearn
from scipy import integrate, stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skhier import HierarchicalDistanceEstimator
from skhier.datasets import make_cluster_parallaxes

from .helpers import (
    FAST,
    assert_error_routing,
    assert_mc_close,
    encode_ids,
    ignore_convergence,
    mcse_mean,
    mcse_sd,
)

# Contract/smoke tests: a short importance-sampling run (its ESS warning is
# expected and filtered with ``ignore_convergence``).
QUICK = {"sampler": "importance", "n_importance": 300, **FAST}

# ---------------------------------------------------------------------------
# Brute-force reference: 2-D grid posterior of (mu_r, sigma_r) for 20 stars,
# each star's marginal likelihood computed with scipy.integrate.quad.
# ---------------------------------------------------------------------------

N_SMALL = 20
HALF_CAUCHY = 20.0  # the estimator's default dispersion prior scale


def _small_problem():
    rng = np.random.default_rng(42)
    r = rng.normal(200.0, 10.0, N_SMALL)
    err = np.full(N_SMALL, 0.4 * 1000 / 200.0)  # 40 % errors ("far")
    err[0] = 0.01 * 1000 / 200.0  # one star with a 1 % error
    plx = 1000 / r + err * rng.standard_normal(N_SMALL)
    plx[1] = -0.8  # a negative parallax (valid data at 2 mas errors)
    return plx, err


def _star_log_marginal(p, s, mu, sig):
    """log ∫ N(p | 1000/r, s) N(r | mu, sig) dr / Phi(mu/sig), by quad."""
    c = -math.log(2 * math.pi * s * sig)

    def f(x):
        return math.exp(c - 0.5 * ((p - 1000.0 / x) / s) ** 2 - 0.5 * ((x - mu) / sig) ** 2)

    pts = [q for q in (mu - 3 * sig, mu, mu + 3 * sig) if q > 0]
    if p > 0:
        rl, wl = 1000 / p, 1000 * s / p**2
        pts += [q for q in (rl - 3 * wl, rl, rl + 3 * wl) if q > 0]
    lo, hi = max(1e-9, mu - 15 * sig), mu + 15 * sig
    pts = sorted(q for q in pts if lo < q < hi)
    val, _ = integrate.quad(f, lo, hi, points=pts, limit=200, epsabs=0, epsrel=1e-10)
    return math.log(val) - math.log(0.5 * math.erfc(-mu / sig / math.sqrt(2)))


@pytest.fixture(scope="module")
def grid_reference():
    plx, err = _small_problem()
    mu = np.linspace(130.0, 300.0, 30)
    sig = (np.arange(32) + 0.5) * 4.4  # cell centres from 0 (midpoint rule)
    per_star = np.array(
        [[[_star_log_marginal(plx[i], err[i], m, s) for s in sig] for m in mu]
         for i in range(N_SMALL)]
    )
    # Priors: uniform mu_r (default range contains the grid), half-Cauchy sigma_r.
    lp = per_star.sum(axis=0) - np.log1p((sig / HALF_CAUCHY) ** 2)[None, :]
    w = np.exp(lp - lp.max())
    w /= w.sum()
    # The grid covers the posterior: negligible mass on its outer edges.
    assert w[0].sum() < 1e-4 and w[-1].sum() < 1e-3 and w[:, -1].sum() < 1e-4
    return plx, err, mu, sig, w, per_star


@pytest.fixture(scope="module")
def small_fit():
    plx, err = _small_problem()
    return HierarchicalDistanceEstimator(random_state=0).fit(plx[:, None], X_err=err)


def _moments(x, w):
    m = np.sum(w * x)
    return m, np.sqrt(np.sum(w * (x - m) ** 2))


def _grid_hyper_moments(mu, sig, lp):
    """[means, sds] of (mu_r, sigma_r) and their kurtoses, from the log
    posterior ``lp`` on the grid ``mu`` x ``sig``."""
    w = np.exp(lp - lp.max())
    w /= w.sum()
    M, S = np.meshgrid(mu, sig, indexing="ij")
    means, sds, kurts = [], [], []
    for v in (M, S):
        m = np.sum(w * v)
        m2 = np.sum(w * (v - m) ** 2)
        means.append(m)
        sds.append(np.sqrt(m2))
        kurts.append(np.sum(w * (v - m) ** 4) / m2**2)
    return np.array(means + sds), np.array(kurts)


def test_hyperparameters_match_grid_posterior(grid_reference, small_fit, stat_seed):
    from scipy.interpolate import RectBivariateSpline

    if stat_seed:
        plx, err = _small_problem()
        small_fit = HierarchicalDistanceEstimator(random_state=stat_seed).fit(
            plx[:, None], X_err=err)
    plx, err, mu, sig, w, per_star = grid_reference
    lp = np.log(w)
    ref, kurt = _grid_hyper_moments(mu, sig, lp)
    # The grid's step is fine enough: on a grid of half the step (the smooth
    # log posterior interpolated by a bicubic spline) no moment moves by
    # more than 1 % of its parameter's sd.
    spline = RectBivariateSpline(mu, sig, lp)
    mu_f = np.linspace(mu[0], mu[-1], 2 * len(mu) - 1)
    sig_f = (np.arange(2 * len(sig)) + 0.5) * (sig[1] - sig[0]) / 2
    fine, _ = _grid_hyper_moments(mu_f, sig_f, spline(mu_f, sig_f))
    np.testing.assert_array_less(np.abs(fine - ref), 1e-2 * np.tile(ref[2:], 2))
    est = small_fit
    ess = min(est.n_effective_.values())
    assert ess > 300
    # The posterior is heavy-tailed (kurtosis ~7-8): the sd's Monte Carlo
    # error is ~1.9x its normal-theory value.
    for k, name in enumerate(("mean_distance", "distance_dispersion")):
        draws = est.posterior_[name]
        assert_mc_close(draws.mean(), ref[k], mcse_mean(ref[2 + k], ess), n_assertions=4,
                        what=f"posterior mean of {name}")
        assert_mc_close(draws.std(), ref[2 + k], mcse_sd(ref[2 + k], ess, kurt[k]),
                        n_assertions=4, what=f"posterior sd of {name}")


@pytest.mark.parametrize("star", [0, 1], ids=["1pc-error", "negative-parallax"])
def test_star_distance_draws_match_grid(grid_reference, small_fit, star):
    plx, err, mu, sig, w, per_star = grid_reference
    p, s = plx[star], err[star]
    if star == 0:
        r = np.linspace(1000 / (p + 10 * s), 1000 / (p - 10 * s), 3000)
    else:
        r = np.linspace(0.5, 600.0, 6000)
    # p(r | data) = sum_g w_g N(p | 1000/r, s) N(r | mu_g, sig_g) / (Phi_g Z_g).
    M, S = np.meshgrid(mu, sig, indexing="ij")
    keep = w > 1e-10
    wg, Mg, Sg, Zg = w[keep], M[keep], S[keep], per_star[star][keep]
    log_dens = (
        stats.norm.logpdf(p, 1000 / r[:, None], s)
        + stats.norm.logpdf(r[:, None], Mg, Sg)
        - stats.norm.logcdf(Mg / Sg)
        - Zg
    )
    dens = np.exp(log_dens) @ wg
    dens /= integrate.trapezoid(dens, r)
    ref_mean = integrate.trapezoid(r * dens, r)
    ref_sd = np.sqrt(integrate.trapezoid((r - ref_mean) ** 2 * dens, r))
    draws = small_fit.sample_posterior(4000, random_state=1)["r"][:, star]
    assert np.all(draws > 0)
    ref_kurt = integrate.trapezoid((r - ref_mean) ** 4 * dens, r) / ref_sd**4
    # Conservative MC error: the population draws' ESS bounds that of r.
    ess = min(small_fit.n_effective_.values())
    assert_mc_close(draws.mean(), ref_mean, mcse_mean(ref_sd, ess), n_assertions=2,
                    what="mean of the star's distance")
    assert_mc_close(draws.std(), ref_sd, mcse_sd(ref_sd, ess, ref_kurt), n_assertions=2,
                    what="sd of the star's distance")


def test_emcee_and_importance_agree(small_fit):
    plx, err = _small_problem()
    mc = HierarchicalDistanceEstimator(sampler="emcee", n_steps=1500, random_state=0).fit(
        plx[:, None], X_err=err
    )
    assert mc.sampler_ == "emcee" and small_fit.sampler_ == "importance"
    assert small_fit.pareto_k_ < 0.7
    for name in ("mean_distance", "distance_dispersion"):
        a, b = mc.posterior_[name], small_fit.posterior_[name]
        ess_a = min(mc.n_effective_.values())
        ess_b = min(small_fit.n_effective_.values())
        tol = 3 * np.hypot(a.std() / np.sqrt(ess_a), b.std() / np.sqrt(ess_b))
        assert abs(a.mean() - b.mean()) < tol, name


# ---------------------------------------------------------------------------
# Field contamination, zero-point, predictions
# ---------------------------------------------------------------------------


def test_field_contamination_recovers_fraction_and_members():
    # 300 stars at 1 kpc, 70 % members with 20 pc depth, field L = 1350 pc,
    # 0.1 mas errors (10 % at the cluster).
    d = make_cluster_parallaxes(
        300, mean_distance=1000.0, distance_dispersion=20.0, cluster_fraction=0.7,
        field_length_scale=1350.0, parallax_error=0.1, random_state=1,
    )
    est = HierarchicalDistanceEstimator(
        field="edsd", field_length_scale=1350.0, random_state=0
    ).fit(d.X, X_err=d.X_err)
    frac = est.posterior_["cluster_fraction"]
    lo, hi = np.quantile(frac, [0.005, 0.995])
    assert lo < d.is_member.mean() < hi
    assert lo < 0.7 < hi
    assert roc_auc_score(d.is_member, est.membership_proba_[:, 0]) >= 0.9
    np.testing.assert_allclose(est.membership_proba_.sum(axis=1), 1.0)
    mu = est.posterior_["mean_distance"]
    assert np.quantile(mu, 0.005) < 1000.0 < np.quantile(mu, 0.995)
    proba = est.predict_membership_proba(d.X[:10], d.X_err[:10])
    np.testing.assert_allclose(proba, est.membership_proba_[:10], atol=1e-12)
    s = est.sample_posterior(5, random_state=0)
    assert s["r"].shape == (5, 300) and s["is_member"].dtype == bool


def test_fitted_zero_point_is_recovered():
    d = make_cluster_parallaxes(
        200, mean_distance=250.0, distance_dispersion=3.0, parallax_error=0.05,
        zero_point=-0.05, random_state=3,
    )
    # A tight prior on the cluster distance (as from an independent
    # measurement) makes the zero-point identifiable.
    est = HierarchicalDistanceEstimator(
        parallax_zero_point=(0.0, 0.1), mean_distance_prior=("normal", 250.0, 0.5),
        random_state=0,
    ).fit(d.X, X_err=d.X_err)
    zp = est.posterior_["zero_point"]
    assert abs(est.zero_point_ - (-0.05)) < 4 * zp.std()
    assert zp.std() < 0.01


def test_predict_shrinks_towards_cluster(small_fit):
    plx, err = _small_problem()
    pred = small_fit.predict(plx[:, None], err)
    np.testing.assert_allclose(pred, small_fit.distance_, rtol=1e-10)
    # Noisy stars are pulled to the cluster; the 1 % star keeps its own distance.
    assert np.all(np.abs(pred[2:] - small_fit.mean_distance_) < 4 * small_fit.distance_dispersion_ + 20)
    assert abs(pred[0] - 1000 / plx[0]) < 3 * 1000 * err[0] / plx[0] ** 2
    assert pred[1] > 0
    # Row order does not matter.
    perm = np.random.default_rng(0).permutation(N_SMALL)
    np.testing.assert_allclose(small_fit.predict(plx[perm, None], err[perm]), pred[perm])


def test_score_is_mean_log_predictive_density(small_fit):
    plx, err = _small_problem()
    per_star = small_fit.score_samples(plx[:, None], err)
    assert per_star.shape == (N_SMALL,)
    assert small_fit.score(plx[:, None], X_err=err) == pytest.approx(per_star.mean())
    w = np.arange(1.0, N_SMALL + 1)
    assert small_fit.score(plx[:, None], X_err=err, sample_weight=w) == pytest.approx(
        np.average(per_star, weights=w)
    )
    # A predictive density: integrates to ~1 over parallax for a fixed error.
    grid = np.linspace(-15.0, 25.0, 801)
    dens = np.exp(small_fit.score_samples(grid[:, None], np.full(grid.size, 2.0)))
    assert integrate.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)


# ---------------------------------------------------------------------------
# Input validation and the scikit-learn contract
# ---------------------------------------------------------------------------


def test_x_err_required_and_validated():
    X = np.array([[1.0], [2.0], [1.5]])
    with pytest.raises(ValueError, match="X_err"):
        HierarchicalDistanceEstimator().fit(X)
    with pytest.raises(ValueError, match="X_err"):
        HierarchicalDistanceEstimator().fit(X, X_err=[0.1, 0.1])
    with pytest.raises(ValueError, match="X_err"):
        HierarchicalDistanceEstimator().fit(X, X_err=[0.1, -0.1, 0.1])
    with pytest.raises(ValueError, match="X_err"):
        HierarchicalDistanceEstimator().fit(X, X_err=[0.1, 0.0, 0.1])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mean_distance_prior": ("uniform", 10.0, 5.0)}, "mean_distance_prior"),
        ({"mean_distance_prior": ("lognormal", 1.0, 2.0)}, "mean_distance_prior"),
        ({"distance_dispersion_prior": ("half-cauchy", -1.0)}, "distance_dispersion_prior"),
        ({"cluster_fraction_prior": (1.0,)}, "cluster_fraction_prior"),
        ({"parallax_zero_point": (0.0, -1.0)}, "parallax_zero_point"),
    ],
)
def test_bad_priors_raise(params, match):
    X, err = np.array([[1.0], [2.0], [1.5]]), np.full(3, 0.1)
    with pytest.raises(ValueError, match=match):
        HierarchicalDistanceEstimator(**params).fit(X, X_err=err)


def test_priors_take_the_one_prior_syntax():
    """Prior objects and either spelling of a kind give the same prior."""
    from skhier._distance import _check_mean_prior, _check_scale_prior
    from skhier._distributions import HalfNormalPrior, UniformPrior

    assert _check_mean_prior(UniformPrior(1.0, 5000.0)) == _check_mean_prior(("uniform", 1, 5000))
    assert _check_mean_prior(["normal", 250, 5]) == ("normal", 250.0, 5.0)
    for spelling in ("half-cauchy", "halfcauchy", "Half_Cauchy"):
        assert _check_scale_prior((spelling, 20)) == ("half-cauchy", 20.0)
    assert _check_scale_prior(HalfNormalPrior(3.0)) == ("half-normal", 3.0)
    with pytest.raises(ValueError, match="distance_dispersion_prior"):
        _check_scale_prior(("normal", 0.0, 1.0))
    with pytest.raises(ValueError, match="mean_distance_prior"):
        _check_mean_prior(UniformPrior(-5.0, 10.0))  # distances are positive
    # Fraction priors: (a, b), ("beta", a, b) or a BetaPrior.
    from skhier._distributions import BetaPrior
    from skhier.utils._checks import check_beta_prior

    for spec in ((2, 3), ("beta", 2, 3), BetaPrior(2.0, 3.0)):
        assert check_beta_prior(spec, "cluster_fraction_prior") == (2.0, 3.0)
    with pytest.raises(ValueError, match="cluster_fraction_prior"):
        check_beta_prior(("normal", 2, 3), "cluster_fraction_prior")


@ignore_convergence
def test_input_not_modified():
    d = make_cluster_parallaxes(30, random_state=0)
    X, err = d.X.copy(), d.X_err.copy()
    HierarchicalDistanceEstimator(random_state=0, **QUICK).fit(d.X, X_err=d.X_err)
    np.testing.assert_array_equal(X, d.X)
    np.testing.assert_array_equal(err, d.X_err)


@ignore_convergence
def test_error_routing_X_err():
    d = make_cluster_parallaxes(30, mean_distance=100.0, parallax_error=0.4, random_state=0)
    errors = encode_ids(30, (1,))  # 0.5 .. 0.53 mas
    assert_error_routing(
        HierarchicalDistanceEstimator(random_state=0, **QUICK), d.X, None, "X_err", errors
    )


@ignore_convergence
def test_grid_search_scores_with_routed_errors():
    d = make_cluster_parallaxes(40, mean_distance=100.0, parallax_error=0.5, random_state=2)
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(HierarchicalDistanceEstimator(random_state=0, **QUICK), d.X,
                             cv=cv, params={"X_err": d.X_err})
        gs = GridSearchCV(
            HierarchicalDistanceEstimator(random_state=0, **QUICK),
            {"distance_dispersion_prior": [("half-cauchy", 1.0), ("half-cauchy", 20.0)]},
            cv=cv,
        ).fit(d.X, X_err=d.X_err)
    assert np.all(np.isfinite(res["test_score"]))
    assert np.all(np.isfinite(gs.cv_results_["mean_test_score"]))


# ---------------------------------------------------------------------------
# Simulation-based calibration (Talts et al. 2018)
# ---------------------------------------------------------------------------

SBC_MEAN_PRIOR = ("uniform", 100.0, 300.0)
SBC_DISP_PRIOR = ("half-normal", 10.0)


@pytest.mark.slow
@pytest.mark.parametrize("rel_error, seed", [(0.05, 11), (0.4, 12)], ids=["near", "far"])
def test_simulation_based_calibration(rel_error, seed):
    """Talts et al. (2018) through skhier.validation: (mu_r, sigma_r) drawn from
    the estimator's priors, 40 cluster stars simulated with parallax errors of
    `rel_error` of the mean parallax, 100 simulations per regime (200 over
    both); the ranks of the truth among 99 posterior draws must be uniform."""
    from skhier.validation import simulation_based_calibration

    def simulate(rng):
        mu = rng.uniform(*SBC_MEAN_PRIOR[1:])
        sig = abs(rng.normal(0.0, SBC_DISP_PRIOR[1]))
        d = make_cluster_parallaxes(
            40, mean_distance=mu, distance_dispersion=sig,
            parallax_error=rel_error * 1000.0 / mu, random_state=rng.randint(2**31 - 1),
        )
        return {"mean_distance": mu, "distance_dispersion": sig}, d.X, None, {"X_err": d.X_err}

    est = HierarchicalDistanceEstimator(
        mean_distance_prior=SBC_MEAN_PRIOR, distance_dispersion_prior=SBC_DISP_PRIOR
    )
    res = simulation_based_calibration(est, simulate, 100, n_bins=5, random_state=seed)
    assert sorted(res.ranks) == ["distance_dispersion", "mean_distance"]
    assert res.is_uniform(alpha=0.001), (res.p_values, {
        k: np.bincount(r * 5 // 100, minlength=5).tolist() for k, r in res.ranks.items()
    })


def test_frozen_rules_likelihood():
    from skhier._distance import _DistanceModel

    d = make_cluster_parallaxes(
        300, mean_distance=800.0, distance_dispersion=20.0, cluster_fraction=0.8,
        parallax_error=0.2, random_state=5,
    )
    model = _DistanceModel(
        d.X[:, 0], d.X_err[:, 0], mean_prior=("uniform", 1.0, 10000.0),
        dispersion_prior=("half-cauchy", 20.0), field=True, length_scale=None,
        fraction_prior=(1.0, 1.0), zero_point=None, zero_point_prior=(0.0, 0.05),
    )
    theta0 = model.initial_point()
    model.freeze(theta0)
    # Exact at the draw the rules were built for ...
    assert model.log_prob_frozen(theta0[None])[0] == pytest.approx(
        model.log_prob(theta0[None])[0], abs=1e-8
    )
    # ... and close nearby (the estimator checks this on its draws).
    near = theta0 + 0.01 * np.random.default_rng(0).standard_normal((4, theta0.size))
    np.testing.assert_allclose(model.log_prob_frozen(near), model.log_prob(near), atol=0.05)


def test_grid_median_distances_match_brute_force():
    # Per-star posterior medians (no field) come from the mixture of the
    # conditional CDFs over a subset of the population draws, enlarged until
    # the estimated Monte Carlo error is below 2 % of each star's posterior
    # sd. Reference: the same mixture over *all* summary draws on a dense
    # uniform grid in r, written out here independently.
    from skhier._cluster_integral import _MEDIAN_MC_TOL

    d = make_cluster_parallaxes(30, mean_distance=500.0, distance_dispersion=20.0,
                                parallax_error=0.4, random_state=3)
    X = d.X.copy()
    X[0, 0] = -0.5  # a negative parallax
    est = HierarchicalDistanceEstimator(random_state=0).fit(X, X_err=d.X_err)
    p = est.model_.full_params(est._summary_draws())
    plx, err = X[:, 0], d.X_err[:, 0]
    med, mc, sd = est.model_.median_distances(p, plx, err, return_error=True)
    np.testing.assert_allclose(est.distance_, med)
    r = np.linspace(0.5, 3000.0, 12001)
    for i in range(len(plx)):
        lf = (-0.5 * (plx[i] - 1000.0 / r) ** 2 / err[i] ** 2
              - 0.5 * ((r - p["mean_distance"][:, None]) / p["distance_dispersion"][:, None]) ** 2)
        f = np.exp(lf - lf.max(axis=1, keepdims=True))
        mix = (f / f.sum(axis=1, keepdims=True)).mean(axis=0)
        cdf = np.cumsum(mix) - 0.5 * mix  # mid-point rule
        ref = np.interp(0.5, cdf, r)
        ref_sd = np.sqrt(np.sum(mix * r**2) - np.sum(mix * r) ** 2)
        assert abs(sd[i] / ref_sd - 1) < 0.01
        if mc[i] > _MEDIAN_MC_TOL * sd[i]:
            # Only when every draw was used: then the same estimand exactly.
            assert abs(med[i] - ref) < 5e-3 * ref_sd, (i, med[i], ref, ref_sd)
        # Subset Monte Carlo error (4 of its estimated sd) plus grid error.
        assert abs(med[i] - ref) < 4 * mc[i] + 2e-3 * ref_sd, (i, med[i], ref, mc[i], ref_sd)


@ignore_convergence
def test_fixed_field_term_is_computed_once_per_star(monkeypatch):
    # With L and the zero-point fixed, a star's field integral is the same for
    # every draw: the per-object tables (membership, predictive densities) use
    # one value per star. Reference: the integral evaluated draw by draw.
    from skhier._cluster_integral import field_log_marginal

    d = make_cluster_parallaxes(40, mean_distance=1500.0, distance_dispersion=20.0,
                                cluster_fraction=0.7, parallax_error=0.2, random_state=2)
    est = HierarchicalDistanceEstimator(field="edsd", field_length_scale=1350.0,
                                        **QUICK).fit(d.X, X_err=d.X_err)
    p = est.model_.full_params(est._summary_draws(max_draws=5))
    plx, err = d.X[:, 0] + 0.3, d.X_err[:, 0]  # new stars
    shapes = []

    def recorded(y, *args):
        shapes.append(np.shape(y))
        return field_log_marginal(y, *args)

    monkeypatch.setattr("skhier._distance.field_log_marginal", recorded)
    lc, lf = est.model_.star_logliks(p, slice(None), plx, err)
    assert shapes == [(1, 40)]
    ref = field_log_marginal(plx[None, :], err[None, :], np.full((5, 1), 1350.0))
    f = p["cluster_fraction"][:, None]
    np.testing.assert_allclose(lf, ref + np.log1p(-f), rtol=1e-12)
    assert lf.shape == lc.shape == (5, 40)


@pytest.mark.parametrize("n_stars, error", [
    (500, 0.05),
    pytest.param(200, 0.2, marks=pytest.mark.xfail(strict=True, reason=(
        "known limitation: when the depth draws span decades (here 1-50 pc), the "
        "129-point grid per star does not resolve the narrowest conditionals and the "
        "median is off by ~4 % of the star's posterior sd"))),
])
def test_grid_median_distances_match_quad(n_stars, error):
    # Each star's posterior median under a fixed set of population draws
    # (here 32: median_distances then uses them all, with no subset), against
    # the median of the same mixture of conditional posteriors computed with
    # scipy.integrate.quad and brentq, independently of the grid: a star with
    # the sample's error, a negative parallax and a well-measured star.
    from scipy.optimize import brentq

    d = make_cluster_parallaxes(n_stars, mean_distance=1000.0, distance_dispersion=20.0,
                                parallax_error=error, random_state=4)
    X, E = d.X.copy(), d.X_err.copy()
    X[0, 0], X[1, 0], E[1, 0] = -0.3, 1.02, 0.005
    est = HierarchicalDistanceEstimator(random_state=0, **QUICK)
    with pytest.warns(Warning):
        est.fit(X, X_err=E)
    p = est.model_.full_params(est._summary_draws(max_draws=32))
    plx, err = X[:, 0], E[:, 0]
    stars = [0, 1, 2]
    med, _, sd = est.model_.median_distances(p, plx[stars], err[stars], return_error=True)
    for i, star in enumerate(stars):
        def dens(r, mu, sig, star=star):
            return math.exp(-0.5 * ((plx[star] - 1000.0 / r) / err[star]) ** 2
                            - 0.5 * ((r - mu) / sig) ** 2)

        parts = []
        for mu, sig in zip(p["mean_distance"], p["distance_dispersion"], strict=True):
            lo, hi = max(1e-6, mu - 12 * sig), mu + 12 * sig
            if err[star] < 0.05:  # a resolved star: its own likelihood sets the range
                c, w = 1000.0 / plx[star], 12 * 1000.0 * err[star] / plx[star] ** 2
                lo, hi = max(lo, c - w), min(hi, c + w)
            total = integrate.quad(dens, lo, hi, args=(mu, sig), epsabs=0, epsrel=1e-11,
                                   limit=200)[0]
            parts.append((mu, sig, lo, hi, total))

        def cdf(m, parts=parts):
            return np.mean([integrate.quad(dens, lo, min(m, hi), args=(mu, sig), epsabs=0,
                                           epsrel=1e-11, limit=200)[0] / total
                            if m > lo else 0.0 for mu, sig, lo, hi, total in parts])

        lo_all = min(q[2] for q in parts)
        hi_all = max(q[3] for q in parts)
        ref = brentq(lambda m: cdf(m) - 0.5, lo_all, hi_all, xtol=1e-6 * sd[i])
        # The grid's own resolution error only (no Monte Carlo error here),
        # well below the 2 % of the star's sd allowed for the median's
        # Monte Carlo error.
        assert abs(med[i] - ref) < 0.005 * sd[i], (star, med[i], ref, sd[i])


def test_log_prob_shares_cluster_integrals_across_field_coordinates(monkeypatch):
    # A batch of draws that differ only in the cluster fraction (and L), as
    # the nodes of a tensor quadrature rule or a lattice do, computes each
    # distinct cluster integral once; the log-posterior is that of each draw
    # evaluated on its own.
    from skhier._distance import _DistanceModel

    d = make_cluster_parallaxes(60, mean_distance=1500.0, distance_dispersion=20.0,
                                cluster_fraction=0.7, parallax_error=0.2, random_state=6)
    est = HierarchicalDistanceEstimator(field="edsd")
    model = _DistanceModel(d.X[:, 0], d.X_err[:, 0], **est._model_settings())
    x0 = model.initial_point()
    grid = np.array([[a, b, c, e] for a in (-0.01, 0.01) for b in (-0.5, 0.0, 0.5)
                     for c in (-1.0, 0.0, 1.0) for e in (-0.2, 0.2)])
    theta = x0 + grid
    one_by_one = np.array([model.log_prob(t[None])[0] for t in theta])
    calls = []
    cluster = _DistanceModel._cluster

    def recorded(self, y, *args, **kwargs):
        calls.append(y.shape[0])
        return cluster(self, y, *args, **kwargs)

    monkeypatch.setattr(_DistanceModel, "_cluster", recorded)
    batch = model.log_prob(theta)
    assert sum(calls) == 6  # 2 x 3 distinct (mean, dispersion) pairs of 36 draws
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-12)


@pytest.fixture(scope="module")
def far_field_fit():
    """A far cluster (40 % errors, a depth the data barely resolve) mixed with
    field stars of a fixed length scale, 3 000 stars, fitted with the
    defaults; and whether the MAP search fell back to the scalar search."""
    import skhier._sampling as sampling

    d = make_cluster_parallaxes(3000, mean_distance=2000.0, distance_dispersion=30.0,
                                cluster_fraction=0.8, field_length_scale=1350.0,
                                parallax_error=0.2, random_state=1)
    fallbacks = []
    find_map = sampling.find_map

    def recorded(*args, **kwargs):
        fallbacks.append(args[1])
        return find_map(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sampling, "find_map", recorded)
        est = HierarchicalDistanceEstimator(field="edsd", field_length_scale=1350.0,
                                            random_state=0).fit(d.X, X_err=d.X_err)
    return est, fallbacks


def test_far_cluster_with_fixed_field_takes_the_quadrature_path(far_field_fit):
    # The MAP search starts from the best of a small lattice of depths and
    # fractions and climbs into the concave region, so Newton's method needs
    # no scalar fallback, and the Gauss-Hermite rules converge (the skewed
    # depth needs 12 nodes; at 1 000 stars it is too skewed for them and the
    # fit importance-samples).
    est, fallbacks = far_field_fit
    assert fallbacks == []
    assert est.sampler_ == "quadrature"
    assert max(est.quadrature_error_.values()) < 0.02


@pytest.mark.slow
def test_far_cluster_with_fixed_field_quadrature_matches_importance(far_field_fit):
    # Reference: importance sampling of the exact collapsed posterior with
    # 4 000 draws from a Student-t fitted to the quadrature's moments.
    from skhier._importance import run_importance

    est, _ = far_field_fit
    nodes, weights = est._quadrature_rule
    q_mean = weights @ nodes
    q_sd = np.sqrt(weights @ (nodes - q_mean) ** 2)
    model = est.model_
    ref = run_importance(model.log_prob, q_mean, x_map=q_mean,
                         cov=np.cov(nodes.T, aweights=weights), n_draws=4000,
                         random_state=np.random.RandomState(1))
    assert ref.pareto_k < 0.7
    w = ref.weights / ref.weights.sum()
    r_mean = w @ ref.raw_draws
    ess = 1.0 / np.sum(w**2)
    err = np.array([est.quadrature_error_[name] for name in model.param_names])
    # Monte Carlo error of the reference (3 MCSE, three coordinates: a
    # false-failure rate ~1 %) plus twice the quadrature's own error estimate.
    tol = 3 * q_sd / np.sqrt(ess) + 2 * err * q_sd
    assert np.all(np.abs(q_mean - r_mean) < tol), (q_mean, r_mean, tol)
