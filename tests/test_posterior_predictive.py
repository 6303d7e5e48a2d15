"""Posterior predictive replicates of every estimator.

Each test checks the replicates against the distribution the model gives
them *conditionally on the posterior draw they were made with* (in
``to_inference_data(posterior_predictive=True)`` replicate (chain, draw)
belongs to posterior draw (chain, draw)): standardised by that draw's
predictive mean and variance they must have mean 0 and variance 1, within
the sampling error of the pooled, conditionally independent values, or
follow a predictive CDF computed independently by quadrature. The
thresholds share the suite's false-failure rate
(:data:`tests.helpers.FALSE_FAILURE_RATE`) over the assertions of a test.
The calibration of posterior predictive p-values over simulated data sets
is in ``tests/test_ppc_calibration.py`` (slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)

from .helpers import FALSE_FAILURE_RATE, FAST, kurtosis, plot_ppc, z_threshold

az = pytest.importorskip("arviz")

FAST_GMM = {"n_chains": 2, "n_iter": 120, "n_burn": 60}


def _assert_standardised(z, n_assertions=2):
    """Pooled, independent values z: mean 0 and variance 1 within sampling error."""
    z = np.ravel(z)
    n = z.size
    thr = z_threshold(n_assertions=n_assertions)
    assert abs(z.mean()) < thr / np.sqrt(n), z.mean()
    # Var(z^2) = E z^4 - 1 (2 for a normal); its estimate from the sample.
    assert abs(np.mean(z**2) - 1.0) < thr * np.sqrt((kurtosis(z) - 1.0) / n), np.mean(z**2)


def _pp(est, seed=0):
    idata = est.to_inference_data(log_likelihood=False, posterior_predictive=True,
                                  random_state=seed)
    post = {k: idata.posterior[k].values for k in idata.posterior.data_vars}
    reps = {k: idata.posterior_predictive[k].values for k in idata.posterior_predictive.data_vars}
    return idata, post, reps


def test_line_replicates_y_at_the_measured_x(stat_seed):
    rng = np.random.default_rng(10 + stat_seed)
    n = 40
    X = rng.uniform(-2, 2, (n, 1))
    ey = rng.uniform(0.1, 0.4, n)
    y = 1.0 + 2.0 * X[:, 0] + rng.normal(0, 0.3, n) + ey * rng.standard_normal(n)
    est = RobustLineMixture(outliers=False, random_state=stat_seed).fit(X, y, y_err=ey)
    idata, post, reps = _pp(est, stat_seed)
    assert set(reps) == {"y"} and reps["y"].shape == post["intercept"].shape + (n,)
    mean = post["coef"][..., :1] * X[:, 0] + post["intercept"][..., None]
    z = (reps["y"] - mean) / np.sqrt(post["scatter"][..., None] ** 2 + ey**2)
    _assert_standardised(z)
    # X is what the projected likelihood conditions on: constant data, so
    # az.plot_ppc pairs y with its replicates without being told.
    assert "X" in idata.constant_data and set(idata.observed_data.data_vars) == {"y"}
    plot_ppc(idata, num_pp_samples=10)


def test_line_population_replicates_x_and_y_jointly(stat_seed):
    """With X errors the true X have a population N(m, T): (X, y) replicates
    are jointly normal with mean (m, b + c m) and covariance
    [[T + ex^2, c T + cxy], [c T + cxy, c^2 T + s^2 + ey^2]] per draw."""
    rng = np.random.default_rng(20 + stat_seed)
    n = 40
    ex, ey = rng.uniform(0.1, 0.3, n), rng.uniform(0.1, 0.3, n)
    cxy = 0.4 * ex * ey
    xt = rng.normal(1.0, 1.0, n)
    X = (xt + ex * rng.standard_normal(n))[:, None]
    y = 0.5 - xt + rng.normal(0, 0.2, n) + ey * rng.standard_normal(n)
    est = RobustLineMixture(outliers=False, random_state=stat_seed).fit(
        X, y, y_err=ey, X_err=ex[:, None], Xy_cov=cxy[:, None])
    assert est.x_model_ == "population"
    _, post, reps = _pp(est, stat_seed)
    c, b, s = post["coef"][..., :1], post["intercept"][..., None], post["scatter"][..., None]
    m, T = post["x_mean"][..., 0, :1], post["x_cov"][..., 0, 0, :1]
    vx = T + ex**2
    cov = c * T + cxy
    vy = c**2 * T + s**2 + ey**2
    zx = (reps["X"][..., 0] - m) / np.sqrt(vx)
    # y given the replicated X: residual variance vy - cov^2 / vx.
    zy = (reps["y"] - b - c * m - cov / vx * (reps["X"][..., 0] - m)) / np.sqrt(vy - cov**2 / vx)
    _assert_standardised(zx, 5)
    _assert_standardised(zy, 5)
    # Whitened components are uncorrelated (a check on the x-y correlation).
    r = np.mean(zx * zy)
    assert abs(r) < z_threshold(n_assertions=5) / np.sqrt(zx.size)


def _parallax_cdf(t, err, mu, sd, zp, f=1.0, L=None):
    """P(parallax_rep <= t) by quadrature over the true distance."""
    def cluster(r):
        return stats.norm.cdf((t - zp - 1000.0 / r) / err) * stats.norm.pdf(r, mu, sd)

    lo, hi = max(1e-3, mu - 12 * sd), mu + 12 * sd
    out = f * integrate.quad(cluster, lo, hi, points=[mu], limit=200)[0] / stats.norm.sf(0, mu, sd)
    if f < 1.0:
        def field(r):
            return stats.norm.cdf((t - zp - 1000.0 / r) / err) * stats.gamma.pdf(r, 3, scale=L)
        out += (1 - f) * integrate.quad(field, 1e-6, 60 * L, points=[2 * L], limit=400)[0]
    return out


@pytest.mark.parametrize("field", [None, "edsd"])
def test_distance_replicates_follow_the_predictive_parallax_distribution(field, stat_seed):
    """One posterior draw replicated many times: the replicated parallaxes of a
    star follow the predictive CDF computed by quadrature (chi-square over 20
    bins)."""
    rng = np.random.default_rng(30 + stat_seed)
    n = 60
    r = rng.normal(400.0, 20.0, n)
    if field:
        r[:12] = rng.gamma(3.0, 500.0, 12)
    err = rng.uniform(0.1, 0.3, n)
    plx = 1000.0 / r + err * rng.standard_normal(n)
    est = HierarchicalDistanceEstimator(field=field, random_state=stat_seed, **FAST,
                                        sampler="emcee")
    est.fit(plx[:, None], X_err=err)
    one = {k: np.repeat(v[:1], 2000, axis=0) for k, v in est.posterior_.items()}
    p = est.model_.full_params(one)
    rep = est._replicate(one, np.random.RandomState(stat_seed))["parallax"]
    assert rep.shape == (2000, n)
    star = int(np.argmax(err))  # the widest predictive distribution
    f = float(p["cluster_fraction"][0]) if field else 1.0
    L = float(p["field_length_scale"][0]) if field else None

    # Bin edges from one half of the replicates, counts from the other
    # (independent of the edges, so the chi-square has its usual law).
    edges = np.quantile(rep[1000:, star], np.linspace(0, 1, 21)[1:-1])
    rep = rep[:1000]
    cdf = [_parallax_cdf(t, err[star], float(p["mean_distance"][0]),
                         float(p["distance_dispersion"][0]), float(p["zero_point"][0]), f, L)
           for t in edges]
    expected = np.diff(np.concatenate([[0.0], cdf, [1.0]])) * len(rep)
    observed = np.bincount(np.searchsorted(edges, rep[:, star]), minlength=20)
    assert stats.chisquare(observed, expected).pvalue > FALSE_FAILURE_RATE


def test_samples_population_replicates_the_likelihood_weighted_means(stat_seed):
    """Gaussian per-object likelihoods under a flat interim prior and a
    normal population N(mu, tau^2): theta_hat replicates have the draw's
    mean mu and variance tau^2 + v_i, v_i the (ddof=0) variance of object
    i's samples (the error added is one of its centred samples)."""
    rng = np.random.default_rng(40 + stat_seed)
    n, k = 40, 200
    true = rng.normal(1.0, 0.7, n)
    sig = rng.uniform(0.2, 0.5, n)
    X = (true + sig * rng.standard_normal(n))[:, None] + sig[:, None] * rng.standard_normal((n, k))
    est = PosteriorSamplesPopulation(random_state=stat_seed).fit(X)
    idata, post, reps = _pp(est, stat_seed)
    np.testing.assert_allclose(idata.observed_data["theta_hat"].values[:, 0], X.mean(axis=1),
                               rtol=1e-12)
    v = X.var(axis=1)
    z = (reps["theta_hat"][..., 0] - post["mu"][..., None]) / np.sqrt(post["tau"][..., None] ** 2 + v)
    _assert_standardised(z)
    plot_ppc(idata, num_pp_samples=10)


def test_samples_population_outlier_replicates_come_from_the_background(stat_seed):
    rng = np.random.default_rng(45 + stat_seed)
    n, k = 60, 100
    true = np.where(np.arange(n) < 12, rng.uniform(-30, 30, n), rng.normal(0.0, 0.5, n))
    X = (true + 0.2 * rng.standard_normal(n))[:, None] + 0.2 * rng.standard_normal((n, k))
    est = PosteriorSamplesPopulation(outliers=True, random_state=stat_seed).fit(X)
    bg = est.model_.background[0]
    assert bg.kind == "normal"
    S = 4000
    one = {k_: np.repeat(v[:1], S, axis=0) for k_, v in est.posterior_.items()}
    rep = est._replicate(one, np.random.RandomState(stat_seed))["theta_hat"][..., 0]
    f = float(one["outlier_fraction"][0])
    # Replicates beyond 8 population widths come from the background only:
    # their share is f * P(background beyond), binomial over S * n values.
    mu, tau = float(one["mu"][0]), float(one["tau"][0])
    far = np.abs(rep - mu) > 8 * np.sqrt(tau**2 + 0.2**2)
    lo, hi = mu - 8 * np.sqrt(tau**2 + 0.04), mu + 8 * np.sqrt(tau**2 + 0.04)
    # Background N(loc, scale^2) plus the small error (sd 0.2): beyond [lo, hi].
    s_tot = np.sqrt(bg.scale**2 + 0.04)
    p = f * (stats.norm.cdf(lo, bg.loc, s_tot) + stats.norm.sf(hi, bg.loc, s_tot))
    N = far.size
    assert abs(far.mean() - p) < z_threshold() * np.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("with_errors", [False, True])
def test_gmm_replicates_are_component_draws_plus_errors(with_errors, stat_seed):
    """One component: X replicates of point i are N(mu, Sigma + S_i) per draw."""
    rng = np.random.default_rng(50 + stat_seed)
    n = 50
    err = rng.uniform(0.1, 0.4, (n, 2)) if with_errors else None
    X = rng.multivariate_normal([1.0, -1.0], [[1.0, 0.5], [0.5, 2.0]], n)
    if with_errors:
        X = X + err * rng.standard_normal((n, 2))
    est = BayesianGMM(n_components=1, random_state=stat_seed, **FAST_GMM).fit(X, X_err=err)
    idata, post, reps = _pp(est, stat_seed)
    assert reps["X"].shape == post["means"].shape[:2] + (n, 2)
    cov = post["covariances"][..., 0, None, :, :]
    if with_errors:
        cov = cov + np.einsum("ni,ij->nij", err**2, np.eye(2))
    L = np.linalg.cholesky(cov)
    r = reps["X"] - post["means"][..., 0, None, :]
    z = np.linalg.solve(L, r[..., None])[..., 0]  # whitened: independent N(0, 1)
    _assert_standardised(z[..., 0], 5)
    _assert_standardised(z[..., 1], 5)
    assert abs(np.mean(z[..., 0] * z[..., 1])) < z_threshold(n_assertions=5) / np.sqrt(z[..., 0].size)
    plot_ppc(idata, num_pp_samples=10)


@pytest.mark.parametrize("make", ["line", "line_population", "distance", "population", "samples",
                                  "gmm"])
def test_every_estimator_replicates_and_plots(make):
    import matplotlib

    matplotlib.use("Agg")
    from skhier.plotting import plot_posterior_predictive

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 1))
    e = np.full(30, 0.2)
    est, name = {
        "line": (lambda: RobustLineMixture(**FAST, sampler="emcee", random_state=0).fit(
            X, 2 * X[:, 0] + rng.normal(size=30), y_err=e), "y"),
        "line_population": (lambda: RobustLineMixture(**FAST, sampler="emcee", random_state=0).fit(
            X, 2 * X[:, 0] + rng.normal(size=30), y_err=e, X_err=e[:, None]), "y"),
        "distance": (lambda: HierarchicalDistanceEstimator(**FAST, sampler="emcee", random_state=0)
                     .fit(1000 / rng.normal(300, 10, (30, 1)), X_err=e), "parallax"),
        "population": (lambda: PopulationModel(**FAST, sampler="emcee", random_state=0).fit(
            X, X_err=e), "X"),
        "samples": (lambda: PosteriorSamplesPopulation(**FAST, sampler="emcee", random_state=0)
                    .fit(X + 0.3 * rng.normal(size=(30, 40))), "theta_hat"),
        "gmm": (lambda: BayesianGMM(n_components=2, random_state=0, **FAST_GMM).fit(X), "X"),
    }[make]
    est = est()
    reps = est.sample_posterior_predictive(7, random_state=0)
    assert next(iter(reps)) == name
    observed = est.observed_data()
    assert set(observed) == set(reps)
    for k in reps:  # one replicate per observed value
        assert reps[k].shape == (7,) + np.shape(observed[k])
    first = est.sample_posterior_predictive(7, random_state=0)
    for k in reps:  # the same call repeated gives the same replicates
        np.testing.assert_array_equal(reps[k], first[k])
    ax = plot_posterior_predictive(est, n_replicates=6, bins=12, random_state=0)
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(lines) == 7  # 6 replicates and the data
    width = np.diff(lines[-1].get_xdata())[0]
    assert np.isclose(lines[-1].get_ydata().sum() * width, 1.0)
    with pytest.raises(ValueError, match="var_name"):
        plot_posterior_predictive(est, var_name="nope")
