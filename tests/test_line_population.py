"""RobustLineMixture with a population model for the true X, censored y and
inlier masks (issue: unbiased slopes under x errors)."""

import warnings

import numpy as np
import pytest
import sklearn
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

from skhier import RobustLineMixture

from .helpers import assert_mc_close, ignore_convergence, mcse_mean, mcse_sd


def _attenuation_data(seed, n=300, d=1, outlier_fraction=0.0):
    """The issue's setting: true x ~ N(0, 1), x errors 0.8, y = 2x + 1,
    scatter 0.5, y errors 0.3; with d = 2 a second slope -1 and x errors
    correlated (rho = 0.5) between the two columns."""
    rng = np.random.default_rng(seed)
    coef = np.array([2.0, -1.0])[:d]
    xi = rng.normal(size=(n, d))
    cov = np.full((d, d), 0.5 * 0.8**2)
    np.fill_diagonal(cov, 0.8**2)
    X = xi + rng.multivariate_normal(np.zeros(d), cov, size=n)
    y = xi @ coef + 1.0 + 0.5 * rng.normal(size=n) + 0.3 * rng.normal(size=n)
    bad = rng.uniform(size=n) < outlier_fraction
    y[bad] = rng.normal(0.0, 10.0, size=bad.sum())
    errors = {"y_err": np.full(n, 0.3), "X_cov": np.broadcast_to(cov, (n, d, d)).copy()}
    return X, y, errors, coef, xi


def test_without_x_errors_the_fit_is_the_projected_one():
    X, y, errors, _, _ = _attenuation_data(0, n=60)
    auto = RobustLineMixture(random_state=3).fit(X, y, y_err=errors["y_err"])
    proj = RobustLineMixture(x_model="projected", random_state=3).fit(X, y, y_err=errors["y_err"])
    assert auto.x_model_ == "projected" and auto.x_true_ is None
    for k in proj.posterior_:
        np.testing.assert_allclose(auto.posterior_[k], proj.posterior_[k], rtol=1e-12)
    np.testing.assert_allclose(auto.membership_proba_, proj.membership_proba_, rtol=1e-12)


def test_population_model_removes_the_attenuation(stat_seed):
    # One data set of the setting: the projected likelihood returns
    # the attenuated slope (about 2 / (1 + 0.8^2) = 1.22), the default
    # population model the truth. The 3.29 sd tolerance has a 1e-3 false-failure rate.
    X, y, errors, coef, _ = _attenuation_data(10 + stat_seed)
    kw = dict(outliers=False, sampler="importance", random_state=0)
    pop = RobustLineMixture(**kw).fit(X, y, **errors)
    proj = RobustLineMixture(x_model="projected", **kw).fit(X, y, **errors)
    assert pop.x_model_ == "population" and pop.pareto_k_ < 0.7
    m, s = pop.posterior_["coef"][:, 0].mean(), pop.posterior_["coef"][:, 0].std()
    assert abs(m - coef[0]) < 3.29 * s
    mp, sp = proj.posterior_["coef"][:, 0].mean(), proj.posterior_["coef"][:, 0].std()
    assert coef[0] - mp > 6 * sp  # the projected slope is far below the truth
    # The deconvolved true x are closer to the truth than the measured x.
    xi = _attenuation_data(10 + stat_seed)[4]
    assert np.mean((pop.x_true_ - xi) ** 2) < 0.75 * np.mean((X - xi) ** 2)


# -- latent true x against a brute-force grid --------------------------------
TRUTH = dict(c=1.5, a=0.5, s=0.4, P=0.2, Yb=0.0, Sb=3.0, w=(0.3, 0.7), m=(-1.0, 1.0),
             T=(0.3**2, 0.6**2))


def _grid_posterior(x, y, ex, ey, cxy, limit, step):
    """p(true x | x, y) for one point under TRUTH, on a grid (independent of skhier)."""
    t = TRUTH
    xi = np.arange(-8.0, 8.0 + step / 2, step)
    px = stats.norm.pdf(x, xi, ex)
    mean_y = t["a"] + t["c"] * xi + cxy / ex**2 * (x - xi)
    sd_y = np.sqrt(ey**2 + t["s"] ** 2 - cxy**2 / ex**2)
    sd_b = np.hypot(t["Sb"], ey)
    if limit == 0:
        p_in, p_out = stats.norm.pdf(y, mean_y, sd_y), stats.norm.pdf(y, t["Yb"], sd_b)
    else:
        p_in = stats.norm.cdf(limit * (y - mean_y) / sd_y)
        p_out = stats.norm.cdf(limit * (y - t["Yb"]) / sd_b)
    prior = sum(w * stats.norm.pdf(xi, m, np.sqrt(T)) for w, m, T in zip(t["w"], t["m"], t["T"], strict=True))
    f_in = prior * px * (1 - t["P"]) * p_in
    f_out = prior * px * t["P"] * p_out
    z = np.trapezoid(f_in + f_out, xi)
    dens = (f_in + f_out) / z
    mean = np.trapezoid(xi * dens, xi)
    var = np.trapezoid((xi - mean) ** 2 * dens, xi)
    k4 = np.trapezoid((xi - mean) ** 4 * dens, xi) / var**2
    return mean, np.sqrt(var), np.trapezoid(f_out, xi) / z, k4


@ignore_convergence
def test_latent_x_matches_grid_posterior(stat_seed):
    rng = np.random.default_rng(40 + stat_seed)
    n = 30
    X = rng.normal(size=(n, 1))
    y = 1.5 * X[:, 0] + 0.5 + rng.normal(size=n)
    ex, ey = np.full(n, 0.5), np.full(n, 0.3)
    cxy = np.full(n, 0.05)
    limit = np.zeros(n, dtype=int)
    # Four test points: a detection, an outlier-like point, an upper and a lower limit.
    X[:4, 0], y[:4], limit[:4] = [0.3, 1.0, -0.5, 1.2], [1.0, 7.0, -0.6, 1.5], [0, 0, 1, -1]
    est = RobustLineMixture(x_components=2, sampler="emcee", n_walkers=26, n_steps=30, n_burn=5,
                            random_state=0)
    est.fit(X, y, y_err=ey, X_err=ex[:, None], Xy_cov=cxy[:, None], y_limit=limit)
    t, S = TRUTH, 20000
    params = {
        "coef": np.full((S, 1), t["c"]), "intercept": np.full(S, t["a"]),
        "scatter": np.full(S, t["s"]), "outlier_fraction": np.full(S, t["P"]),
        "outlier_mean": np.full(S, t["Yb"]), "outlier_std": np.full(S, t["Sb"]),
        "x_weight": np.tile(t["w"], (S, 1)),
        "x_mean": np.tile(np.reshape(t["m"], (2, 1)), (S, 1, 1)),
        "x_cov": np.tile(np.reshape(t["T"], (2, 1, 1)), (S, 1, 1, 1)),
    }
    lat = est.model_.draw_latents(params, np.random.default_rng(stat_seed))
    theta = est.model_.unconstrain({k: v[:1] for k, v in params.items()})
    rb_mean, _ = est.model_.latent_x(theta, slice(0, 4))  # standardised units
    rb_mean = est.model_.x_loc + est.model_.x_scale * rb_mean
    n_assert = 4 * 3
    for i in range(4):
        ref = _grid_posterior(X[i, 0], y[i], ex[i], ey[i], cxy[i], limit[i], 0.002)
        coarse = _grid_posterior(X[i, 0], y[i], ex[i], ey[i], cxy[i], limit[i], 0.004)
        np.testing.assert_allclose(ref[:3], coarse[:3], rtol=1e-6, atol=1e-9)  # grid converged
        mean, sd, p_out, k4 = ref
        # Rao-Blackwellised mean (used by x_true_): exact up to rounding.
        np.testing.assert_allclose(rb_mean[0, i, 0], mean, rtol=1e-6, atol=1e-9)
        draws = lat["x_true"][:, i, 0]
        assert_mc_close(draws.mean(), mean, mcse_mean(sd, S), n_assertions=n_assert,
                        what=f"point {i} mean")
        assert_mc_close(draws.std(), sd, mcse_sd(sd, S, k4), n_assertions=n_assert,
                        what=f"point {i} sd")
        assert_mc_close(lat["outlier"][:, i].mean(), p_out, np.sqrt(p_out * (1 - p_out) / S),
                        n_assertions=n_assert, what=f"point {i} outlier probability")


@ignore_convergence
def test_x_true_is_the_mean_of_the_latent_draws():
    X, y, errors, _, _ = _attenuation_data(3, n=80, d=2)
    est = RobustLineMixture(sampler="emcee", n_walkers=24, n_steps=40, n_burn=10,
                            random_state=1).fit(X, y, **errors)
    draws = est.sample_posterior(1000, random_state=0)
    assert draws["x_true"].shape == (1000, 80, 2)
    assert est.x_true_.shape == (80, 2)
    # x_true_ averages the conditional means over the stored draws; the
    # latent draws add their conditional spread: compare within 4.4 sd
    # (1e-3 over the 160 coordinates, with Bonferroni).
    sd = draws["x_true"].std(axis=0)
    assert_mc_close(draws["x_true"].mean(axis=0), est.x_true_, sd / np.sqrt(1000),
                    n_assertions=160, what="x_true_")


# -- censored responses -------------------------------------------------------
def _censored_fits(seed, n):
    """30 % of y (the faintest) replaced by upper limits at the detection
    threshold, with x errors (population model): fits with the limits, with
    the limits taken as detections and with the limits dropped."""
    rng = np.random.default_rng(seed)
    xi = rng.normal(size=n)
    X = (xi + 0.3 * rng.normal(size=n))[:, None]
    y = 2.0 * xi + 1.0 + 0.5 * rng.normal(size=n) + 0.3 * rng.normal(size=n)
    thr = np.quantile(y, 0.3)
    lim = (y < thr).astype(int)
    y_rep = np.where(lim == 1, thr, y)
    err = {"y_err": np.full(n, 0.3), "X_err": np.full((n, 1), 0.3)}
    kw = dict(outliers=False, sampler="importance", random_state=0)
    fit = RobustLineMixture(**kw).fit(X, y_rep, y_limit=lim, **err)
    det = RobustLineMixture(**kw).fit(X, y_rep, **err)
    keep = lim == 0
    drop = RobustLineMixture(**kw).fit(X[keep], y_rep[keep], y_err=err["y_err"][keep],
                                       X_err=err["X_err"][keep])
    return fit, det, drop


def _z(model, name, true):
    draws = np.ravel(model.posterior_[name])
    return (draws.mean() - true) / draws.std()


def test_upper_limits_unbiased_where_detections_are_biased(stat_seed):
    fit, det, _ = _censored_fits(70 + stat_seed, 300)
    # 3.29 sd: false-failure rate 1e-3 per assertion.
    assert abs(_z(fit, "coef", 2.0)) < 3.29 and abs(_z(fit, "intercept", 1.0)) < 3.29
    assert _z(det, "coef", 2.0) < -5  # limits read as detections flatten the line (~10 sd)


@pytest.mark.slow
def test_upper_limits_unbiased_where_dropping_them_is_biased(stat_seed):
    # Dropping the limits (a truncated sample) biases the slope by about 0.1
    # per unit and the intercept by 0.15: about 6.5 posterior sd with 3000
    # points (5 sd with 2000, measured), so 3.29 sd fails falsely < 1e-3.
    fit, det, drop = _censored_fits(80 + stat_seed, 3000)
    assert abs(_z(fit, "coef", 2.0)) < 3.29 and abs(_z(fit, "intercept", 1.0)) < 3.29
    assert _z(drop, "coef", 2.0) < -3.29 and _z(drop, "intercept", 1.0) > 3.29
    assert _z(det, "coef", 2.0) < -5


def test_limit_input_errors():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 1)), rng.normal(size=20)
    est = RobustLineMixture(n_walkers=16, n_steps=20, n_burn=5)
    with pytest.raises(ValueError, match="y_limit must have length"):
        est.fit(X, y, y_limit=np.zeros(19, dtype=int))
    with pytest.raises(ValueError, match="only 1 .upper limit."):
        est.fit(X, y, y_limit=np.full(20, 2))
    with pytest.raises(TypeError, match="y_limit"):
        est.fit(X, y, y_limit=np.array(["upper"] * 20))
    y_nan = y.copy()
    y_nan[3] = np.nan
    lim = np.zeros(20, dtype=int)
    lim[3] = 1
    with pytest.raises(ValueError, match=r"y_limit marks y\[3\] as a limit"):
        est.fit(X, y_nan, y_limit=lim)
    with pytest.raises(ValueError, match="marked in y_limit"):  # a limit without a mark
        est.fit(X, np.where(np.arange(20) == 3, -np.inf, y))
    lim_copy = lim.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y, y_limit=lim)
    np.testing.assert_array_equal(lim, lim_copy)  # not modified in place


def test_y_limit_is_requested_metadata():
    with sklearn.config_context(enable_metadata_routing=True):
        req = RobustLineMixture().get_metadata_routing().fit.requests
    assert req["y_limit"] is True and req["X_err"] is True


@ignore_convergence
def test_inlier_mask():
    rng = np.random.default_rng(2)
    n = 60
    X = rng.normal(size=(n, 1))
    y = 2 * X[:, 0] + 0.1 * rng.normal(size=n)
    y[:5] += 8.0
    est = RobustLineMixture(n_walkers=16, n_steps=200, n_burn=50, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.inlier_mask_, est.membership_proba_[:, 1] <= 0.5)
    assert not est.inlier_mask_[:5].any() and est.inlier_mask_[5:].all()
    # New data through the prediction path (another code path than the fit's
    # training summaries): probabilities equal to rounding, and the mask is
    # the threshold of that same call's probabilities.
    proba = est.predict_membership_proba(X, y)
    np.testing.assert_allclose(proba, est.membership_proba_, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(est.predict_inliers(X, y), proba[:, 1] <= 0.5)


@ignore_convergence
@pytest.mark.parametrize("scatter", ["vertical", "orthogonal"])
def test_collapsed_likelihood_matches_joint_gaussian(scatter):
    # d = 2, K = 2, full X covariances, x-y error covariances and outliers:
    # each point's likelihood against the (d+1)-variate normal mixture
    # written out with scipy (orthogonal scatter: variance s^2 (1 + |c|^2)
    # in y, as in the projected model).
    X, y, errors, _, _ = _attenuation_data(5, n=40, d=2)
    errors["Xy_cov"] = np.tile([0.05, -0.02], (40, 1))
    est = RobustLineMixture(scatter=scatter, x_components=2, sampler="emcee", n_walkers=40,
                            n_steps=10, n_burn=2, random_state=0).fit(X, y, **errors)
    model = est.model_
    rng = np.random.default_rng(1)
    theta = model.initial_point()[None] + 0.1 * rng.normal(size=(3, len(model.param_names)))
    ll_in, ll_out = model.point_logliks(theta)
    got = np.logaddexp(ll_in, ll_out) - np.log(model.x_scale).sum() - np.log(model.y_scale)
    p = model.constrain(theta)
    for s in range(3):
        c, b = p["coef"][s], p["intercept"][s]
        V = p["scatter"][s] ** 2 * (1 + c @ c if scatter == "orthogonal" else 1)
        P = p["outlier_fraction"][s]
        for i in range(40):
            Cx, cxy, vy = errors["X_cov"][i], errors["Xy_cov"][i], errors["y_err"][i] ** 2
            dens = 0.0
            for k in range(2):
                m, T, w = p["x_mean"][s, k], p["x_cov"][s, k], p["x_weight"][s, k]
                cov = np.zeros((3, 3))
                cov[:2, :2] = T + Cx
                cov[:2, 2] = cov[2, :2] = T @ c + cxy
                cov[2, 2] = c @ T @ c + V + vy
                joint = stats.multivariate_normal(np.r_[m, b + c @ m], cov).pdf(np.r_[X[i], y[i]])
                px = stats.multivariate_normal(m, T + Cx).pdf(X[i])
                out = stats.norm.pdf(y[i], p["outlier_mean"][s],
                                     np.sqrt(p["outlier_std"][s] ** 2 + vy))
                dens += w * ((1 - P) * joint + P * px * out)
            np.testing.assert_allclose(got[s, i], np.log(dens), rtol=1e-9, atol=1e-9)
