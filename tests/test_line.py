import numpy as np
import pytest

from skhier import RobustLineMixture
from skhier.datasets import load_hogg2010, make_line_with_outliers

from .helpers import (
    FAST,
    assert_error_routing,
    assert_grid_converged,
    assert_mc_close,
    encode_ids,
    ignore_convergence,
    mcse_mean,
    mcse_sd,
)


@ignore_convergence
def test_error_routing_y_err():
    d = make_line_with_outliers(30, random_state=0)
    assert_error_routing(
        RobustLineMixture(**FAST, random_state=0), d.X, d.y, "y_err", encode_ids(30)
    )


@ignore_convergence
def test_error_routing_X_err():
    d = make_line_with_outliers(30, random_state=1)
    assert_error_routing(
        RobustLineMixture(**FAST, random_state=0), d.X, d.y, "X_err", encode_ids(30, (1,))
    )


# --------------------------------------------------------------------------
# Correctness against an independent brute-force grid posterior
# --------------------------------------------------------------------------
def _grid_reference_logprior(m, b, x, y, scatter_std=None):
    """The estimator's documented prior, written out independently in user units.

    In standardised units (x and y centred, divided by their std) the normal of
    the line is uniform in angle and the perpendicular offset is N(0, 10^2);
    scatter (standardised) is Half-Cauchy(0, 1)."""
    sx, sy = np.std(x), np.std(y)
    c = m * sx / sy
    bs = (b + m * np.mean(x) - np.mean(y)) / sy
    q = 1 + c**2
    lp = -1.5 * np.log(q) - bs**2 / (200 * q)
    if scatter_std is not None:
        s = scatter_std / sy
        lp = lp - np.log1p(s**2)  # half-Cauchy density in s (grid is in s itself)
    return lp


def _moments(logp, *axes_values):
    w = np.exp(logp - logp.max())
    w /= w.sum()
    out = []
    for k, v in enumerate(axes_values):
        marg = w.sum(axis=tuple(i for i in range(w.ndim) if i != k))
        mean = np.sum(marg * v)
        out.append((mean, np.sqrt(np.sum(marg * (v - mean) ** 2))))
    return out


def _assert_within_mcse(model, name, idx, ref_mean, ref_sd, ess, kurt=3.0, n_assertions=1):
    """Posterior mean and sd of one parameter against a converged reference,
    within the Monte Carlo error (kurtosis-aware for the sd) at the suite's
    false-failure rate, shared by ``n_assertions`` calls."""
    draws = model.posterior_[name]
    draws = draws[:, idx] if draws.ndim == 2 else draws
    mean, sd = draws.mean(), draws.std()
    assert_mc_close(mean, ref_mean, mcse_mean(sd, ess), n_assertions=2 * n_assertions,
                    what=f"posterior mean of {name}")
    assert_mc_close(sd, ref_sd, mcse_sd(ref_sd, ess, kurt), n_assertions=2 * n_assertions,
                    what=f"posterior sd of {name}")


@pytest.mark.parametrize("sampler", ["emcee", "importance"])
def test_slope_intercept_match_grid_posterior_y_errors_only(sampler, stat_seed):
    # Hogg et al. (2010) points 5-20: the straight-line exercise without outliers.
    data = load_hogg2010()
    X, y, ey = data.X[4:], data.y[4:], data.y_err[4:]
    model = RobustLineMixture(scatter=None, outliers=False, sampler=sampler,
                              random_state=1 + stat_seed).fit(X, y, y_err=ey)
    assert model.converged_ and model.sampler_ == sampler
    x = X[:, 0]

    def grid_moments(step_factor):
        n = 400 * step_factor + 1
        m_grid = np.linspace(1.2, 3.3, n)
        b_grid = np.linspace(-200, 260, n)
        M, B = np.meshgrid(m_grid, b_grid, indexing="ij")
        resid = y[None, None, :] - M[..., None] * x - B[..., None]
        loglik = -0.5 * np.sum((resid / ey) ** 2, axis=-1)
        logp = loglik + _grid_reference_logprior(M, B, x, y)
        (m_mean, m_sd), (b_mean, b_sd) = _moments(logp, m_grid, b_grid)
        # The grid covers the posterior: +-6 sd on both sides.
        assert m_grid[0] < m_mean - 6 * m_sd and m_grid[-1] > m_mean + 6 * m_sd
        assert b_grid[0] < b_mean - 6 * b_sd and b_grid[-1] > b_mean + 6 * b_sd
        return np.array([m_mean, b_mean, m_sd, b_sd])

    # Converged: the half-step grid gives the same moments (to 1e-3 sd).
    m_mean, b_mean, m_sd, b_sd = assert_grid_converged(grid_moments)
    ess = min(model.n_effective_["coef[0]"], model.n_effective_["intercept"])
    # Gaussian posterior (y errors only, no scatter): kurtosis 3.
    _assert_within_mcse(model, "coef", 0, m_mean, m_sd, ess, n_assertions=2)
    _assert_within_mcse(model, "intercept", None, b_mean, b_sd, ess, n_assertions=2)


def _projected_line_grid(x, y, ey, ex, cxy, res):
    """Exact posterior moments of (slope, intercept, vertical scatter) under the
    projected x-error likelihood and the documented prior: the intercept is
    integrated analytically (for fixed slope and scatter the log posterior is
    quadratic in it), slope and scatter on a trapezoid grid of ``res`` times
    the base resolution. Returns [means (m, b, s), sds (m, b, s)] and the
    Pearson kurtoses (m, b, s)."""
    sx, sy = np.std(x), np.std(y)
    m_grid = np.linspace(1.0, 3.6, 130 * res + 1)
    s_grid = np.linspace(0.0, 120.0, 240 * res + 1)
    M, S = np.meshgrid(m_grid, s_grid, indexing="ij")
    v = ey**2 + M[..., None] ** 2 * ex**2 - 2 * M[..., None] * cxy + S[..., None] ** 2
    r = y - M[..., None] * x
    q = 1 + (M * sx / sy) ** 2
    beta0 = np.mean(y) - M * np.mean(x)  # the prior's offset is (b - beta0) / sy
    v0 = 100 * q * sy**2  # prior variance of b given (m, s): -bs^2 / (200 q)
    # log p(m, b, s) = -A/2 b^2 + Bb - C
    A = np.sum(1 / v, axis=-1) + 1 / v0
    B = np.sum(r / v, axis=-1) + beta0 / v0
    C = 0.5 * np.sum(r**2 / v + np.log(v), axis=-1) + 0.5 * beta0**2 / v0
    logp = (B**2 / (2 * A) - C + 0.5 * np.log(2 * np.pi / A)
            - 1.5 * np.log(q) - np.log1p((S / sy) ** 2))
    w = np.exp(logp - logp.max())
    # Trapezoid weights: the scatter density is largest at s = 0, the grid's edge.
    w[0, :] *= 0.5
    w[-1, :] *= 0.5
    w[:, 0] *= 0.5
    w[:, -1] *= 0.5
    w /= w.sum()
    bc, bv = B / A, 1 / A
    means, sds, kurts = [], [], []
    for val in (M, bc, S):
        means.append(np.sum(w * val))
    for k, val in enumerate((M, bc, S)):
        d = val - means[k]
        if k == 1:  # Gaussian in b given (m, s): add its own moments
            m2 = np.sum(w * (d**2 + bv))
            m4 = np.sum(w * (d**4 + 6 * d**2 * bv + 3 * bv**2))
        else:
            m2, m4 = np.sum(w * d**2), np.sum(w * d**4)
        sds.append(np.sqrt(m2))
        kurts.append(m4 / m2**2)
    # The grid covers the posterior.
    assert m_grid[0] < means[0] - 5 * sds[0] and m_grid[-1] > means[0] + 5 * sds[0]
    assert s_grid[-1] > means[2] + 6 * sds[2]
    return np.array(means + sds), np.array(kurts)


@pytest.mark.parametrize("sampler", ["emcee", "auto"])
def test_slope_intercept_match_grid_posterior_with_xy_errors_and_scatter(sampler, stat_seed):
    # x and y errors with x-y correlations (Hogg et al. 2010, section 7), plus
    # vertical intrinsic scatter; reference: the intercept integrated exactly,
    # slope and scatter on a grid checked for convergence (halving the step
    # changes no moment by more than 1e-3 sd).
    data = load_hogg2010()
    sl = slice(4, None)
    X, y, ey, ex, cxy = data.X[sl], data.y[sl], data.y_err[sl], data.X_err[sl, 0], data.Xy_cov[sl, 0]
    model = RobustLineMixture(scatter="vertical", outliers=False, sampler=sampler,
                              x_model="projected", random_state=2 + stat_seed).fit(
        X, y, y_err=ey, X_err=ex[:, None], Xy_cov=cxy[:, None]
    )
    assert model.converged_
    x = X[:, 0]
    ref = assert_grid_converged(lambda res: _projected_line_grid(x, y, ey, ex, cxy, res)[0])
    kurt = _projected_line_grid(x, y, ey, ex, cxy, 2)[1]
    (m_mean, b_mean, s_mean), (m_sd, b_sd, s_sd) = ref[:3], ref[3:]
    ess = min(model.n_effective_["coef[0]"], model.n_effective_["intercept"])
    _assert_within_mcse(model, "coef", 0, m_mean, m_sd, ess, kurt[0], n_assertions=3)
    _assert_within_mcse(model, "intercept", None, b_mean, b_sd, ess, kurt[1], n_assertions=3)
    _assert_within_mcse(model, "scatter", None, s_mean, s_sd,
                        model.n_effective_["log_scatter"], kurt[2], n_assertions=3)


# --------------------------------------------------------------------------
# Outlier detection, planes, per-point outputs
# --------------------------------------------------------------------------
def _roc_auc(scores, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


@pytest.mark.parametrize("seed", [0, 1])
def test_outlier_probabilities_separate_outliers(seed):
    # Setting: 200 points on y = 2x + 1 (x ~ U(-5, 5)), vertical scatter 0.5,
    # y errors U(0.5, 1); 20% outliers from N(0, 30^2).
    d = make_line_with_outliers(
        200, coef=2.0, intercept=1.0, scatter=0.5, outlier_fraction=0.2,
        outlier_std=30.0, random_state=seed,
    )
    model = RobustLineMixture(random_state=seed).fit(d.X, d.y, y_err=d.y_err)
    auc = _roc_auc(model.membership_proba_[:, 1], d.is_outlier)
    assert auc >= 0.95, auc
    # The line itself is recovered despite the outliers.
    lo, hi = np.quantile(model.posterior_["coef"][:, 0], [0.005, 0.995])
    assert lo < 2.0 < hi
    np.testing.assert_allclose(model.membership_proba_.sum(axis=1), 1.0)


def test_plane_recovers_truth_with_x_errors():
    d = make_line_with_outliers(
        300, n_features=2, coef=[1.5, -0.7], intercept=3.0, scatter=0.3,
        outlier_fraction=0.1, outlier_std=20, x_err=0.1, random_state=3,
    )
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err, X_err=d.X_err)
    assert model.coef_.shape == (2,)
    for j, true in enumerate(d.coef):
        lo, hi = np.quantile(model.posterior_["coef"][:, j], [0.001, 0.999])
        assert lo < true < hi
    lo, hi = np.quantile(model.posterior_["intercept"], [0.001, 0.999])
    assert lo < 3.0 < hi


def test_predict_and_predict_membership_proba():
    d = make_line_with_outliers(60, outlier_fraction=0.1, outlier_std=30, random_state=4)
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err)
    Xnew = np.linspace(-5, 5, 7)[:, None]
    mean, std = model.predict(Xnew, return_std=True)
    draws = model.posterior_
    trend = draws["coef"][:, 0][:, None] * Xnew[:, 0] + draws["intercept"][:, None]
    # predict summarises at most 1000 stored draws: compare within that MC error.
    np.testing.assert_allclose(mean, trend.mean(axis=0), atol=4 * trend.std(axis=0).max() / np.sqrt(1000))
    assert np.all(std > np.sqrt(np.median(draws["scatter"] ** 2)) * 0.8)
    assert np.all(std >= trend.std(axis=0) * 0.9)
    # The training points' probabilities are reproduced for the same points.
    proba = model.predict_membership_proba(d.X, d.y, y_err=d.y_err)
    np.testing.assert_allclose(proba, model.membership_proba_)
    # A point far off the line is an outlier; a point on it is an inlier.
    far = model.predict_membership_proba([[0.0], [0.0]], [model.intercept_ + 40, model.intercept_])
    assert far[0, 1] > 0.99 and far[1, 0] > 0.9


def test_sample_posterior_contract():
    d = make_line_with_outliers(40, random_state=5)
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err)
    s = model.sample_posterior(25, random_state=0)
    assert set(s) == {"coef", "intercept", "scatter", "outlier_fraction",
                      "outlier_mean", "outlier_std", "outlier"}
    assert s["coef"].shape == (25, 1) and s["intercept"].shape == (25,)
    assert s["outlier"].shape == (25, 40) and s["outlier"].dtype == bool
    s2 = model.sample_posterior(25, random_state=0)
    for k in s:
        np.testing.assert_array_equal(s[k], s2[k])
    # The outlier indicators average to the training membership probabilities.
    big = model.sample_posterior(4000, random_state=1)["outlier"].mean(axis=0)
    np.testing.assert_allclose(big, model.membership_proba_[:, 1], atol=0.05)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample_posterior(0)


# --------------------------------------------------------------------------
# Determinism, pickling, refit, bad input
# --------------------------------------------------------------------------
@ignore_convergence
def test_same_random_state_gives_identical_posterior():
    d = make_line_with_outliers(30, random_state=6)
    a = RobustLineMixture(**FAST, random_state=7).fit(d.X, d.y, y_err=d.y_err)
    b = RobustLineMixture(**FAST, random_state=7).fit(d.X, d.y, y_err=d.y_err)
    for k in a.posterior_:
        np.testing.assert_array_equal(a.posterior_[k], b.posterior_[k])
    c = RobustLineMixture(**FAST, random_state=8).fit(d.X, d.y, y_err=d.y_err)
    assert not np.array_equal(a.posterior_["coef"], c.posterior_["coef"])


@ignore_convergence
def test_pickle_before_and_after_fit_and_refit():
    import pickle

    d = make_line_with_outliers(30, random_state=6)
    est = pickle.loads(pickle.dumps(RobustLineMixture(**FAST, random_state=0)))
    est.fit(d.X, d.y, y_err=d.y_err)
    clone_ = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone_.predict(d.X), est.predict(d.X))
    np.testing.assert_array_equal(
        clone_.predict_membership_proba(d.X, d.y, y_err=d.y_err), est.membership_proba_
    )
    # Refit on other data leaves nothing of the first fit.
    d2 = make_line_with_outliers(45, n_features=2, random_state=9)
    est.fit(d2.X, d2.y)
    assert est.coef_.shape == (2,) and est.membership_proba_.shape == (45, 2)
    assert est.n_features_in_ == 2


def _good():
    d = make_line_with_outliers(20, random_state=0)
    return d.X, d.y, d.y_err


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y_err": "nan"}, "y_err"),
        ({"y_err": "inf"}, "y_err"),
        ({"y_err": "neg"}, "y_err"),
        ({"y_err": "short"}, "y_err"),
        ({"X_err": "neg"}, "X_err"),
        ({"X_err": "short"}, "X_err"),
        ({"X_cov": "notpsd"}, "X_cov"),
        ({"Xy_cov": "toobig"}, "Xy_cov"),
    ],
)
def test_bad_errors_raise_named_value_error(kwargs, match):
    X, y, ey = _good()
    ex = np.full((20, 1), 0.1)
    name, kind = next(iter(kwargs.items()))
    base = {"y_err": ey.copy(), "X_err": ex.copy()}
    arg = base.get(name)
    if kind == "nan":
        arg[3] = np.nan
    elif kind == "inf":
        arg[3] = np.inf
    elif kind == "neg":
        arg[3] = -1.0
    elif kind == "short":
        arg = arg[:-1]
    elif kind == "notpsd":
        arg = np.ones((20, 1, 1))
        arg[2] = -1.0
    elif kind == "toobig":
        arg = np.full((20, 1), 10.0)  # |rho| = 10 / (0.1 * y_err) >> 1
    fit_kwargs = {name: arg}
    if name == "Xy_cov":
        fit_kwargs.update(y_err=ey, X_err=ex)
    with pytest.raises(ValueError, match=match):
        RobustLineMixture(**FAST).fit(X, y, **fit_kwargs)


@pytest.mark.parametrize(
    "X, y, exc, match",
    [
        (np.ones((2, 1)), np.ones(2), ValueError, "sample"),
        ([[1.0], [np.nan], [3.0]], [1.0, 2.0, 3.0], ValueError, "NaN"),
        ([[1.0], [2.0], [3.0]], [1.0, np.inf, 3.0], ValueError, "infinity"),
        ([[1.0], [2.0], [3.0]], [1.0, 2.0], ValueError, "inconsistent"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], ValueError, "2D"),
    ],
)
def test_bad_data_raise(X, y, exc, match):
    with pytest.raises(exc, match=match):
        RobustLineMixture(**FAST).fit(X, y)


def test_scatter_none_without_errors_is_refused():
    X, y, _ = _good()
    with pytest.raises(ValueError, match="scatter=None"):
        RobustLineMixture(scatter=None, **FAST).fit(X, y)


def test_bad_prior_is_refused():
    X, y, ey = _good()
    with pytest.raises(ValueError, match="outlier_fraction_prior"):
        RobustLineMixture(outlier_fraction_prior=(1.0, -2.0), **FAST).fit(X, y, y_err=ey)


@ignore_convergence
def test_inputs_are_not_modified():
    d = make_line_with_outliers(30, x_err=0.2, random_state=10)
    X, y, ey, ex = d.X.copy(), d.y.copy(), d.y_err.copy(), d.X_err.copy()
    cxy = 0.3 * ex * ey[:, None]
    cxy0 = cxy.copy()
    est = RobustLineMixture(**FAST, random_state=0).fit(X, y, y_err=ey, X_err=ex, Xy_cov=cxy)
    est.predict(X, return_std=True)
    est.predict_membership_proba(X, y, y_err=ey, X_err=ex, Xy_cov=cxy)
    est.score(X, y, y_err=ey)
    est.sample_posterior(5)
    for a, b in [(X, d.X), (y, d.y), (ey, d.y_err), (ex, d.X_err), (cxy, cxy0)]:
        np.testing.assert_array_equal(a, b)


def test_hogg_mixture_result_matches_published_exercise():
    # Hogg et al. (2010), exercise 6 / figure 4: all 20 points with the
    # outlier mixture give a slope ~2.2 and intercept ~35 (their priors are
    # flat; ours are documented in the class docstring), with points 1-3
    # flagged as outliers.
    data = load_hogg2010()
    model = RobustLineMixture(scatter=None, random_state=0).fit(data.X, data.y, y_err=data.y_err)
    lo, hi = np.quantile(model.posterior_["coef"][:, 0], [0.05, 0.95])
    assert lo < 2.24 < hi
    assert np.all(model.membership_proba_[1:4, 1] > 0.9)
    assert np.all(model.membership_proba_[4:, 1] < 0.5)


def test_log_predictive_density_is_posterior_predictive():
    d = make_line_with_outliers(50, outlier_fraction=0.1, outlier_std=30, random_state=11)
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err)
    lpd = model.log_predictive_density(d.X, d.y, y_err=d.y_err)
    assert lpd.shape == (50,) and np.all(np.isfinite(lpd))
    # Independent Monte Carlo estimate from joint draws for one point.
    from scipy.stats import norm

    s = model.posterior_
    i = 0
    mu = s["coef"][:, 0] * d.X[i, 0] + s["intercept"]
    dens = (1 - s["outlier_fraction"]) * norm.pdf(d.y[i], mu, np.sqrt(s["scatter"] ** 2 + d.y_err[i] ** 2))
    dens += s["outlier_fraction"] * norm.pdf(
        d.y[i], s["outlier_mean"], np.sqrt(s["outlier_std"] ** 2 + d.y_err[i] ** 2))
    ref = np.log(dens.mean())
    rel_mcse = dens.std() / dens.mean() / np.sqrt(1000)  # the estimate uses 1000 draws
    assert abs(lpd[i] - ref) < 4 * rel_mcse + 1e-9
    # A point far off the line has a lower predictive density than one on it.
    far = model.log_predictive_density([[0.0], [0.0]], [model.intercept_ + 40, model.intercept_], y_err=[1, 1])
    assert far[0] < far[1]


def test_summary_table():
    d = make_line_with_outliers(40, random_state=12)
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err)
    table = model.summary()
    assert list(table.index) == ["coef[0]", "intercept", "scatter", "outlier_fraction",
                                 "outlier_mean", "outlier_std"]
    np.testing.assert_allclose(table.loc["intercept", "q50"], model.intercept_)
    np.testing.assert_allclose(table.loc["coef[0]", "mean"], model.posterior_["coef"].mean())
    # Slope and intercept are linear in the sampled coordinates: same ESS.
    assert table.loc["coef[0]", "ess"] == pytest.approx(model.n_effective_["coef[0]"], rel=0.01)
    assert np.all(table["r_hat"] < 1.05)


def test_to_inference_data_round_trips_draws():
    az = pytest.importorskip("arviz")
    d = make_line_with_outliers(30, random_state=13)
    model = RobustLineMixture(random_state=0).fit(d.X, d.y, y_err=d.y_err)
    idata = model.to_inference_data()
    post = idata.posterior
    n_walkers = model.chain_.shape[1]
    assert post.sizes["chain"] == n_walkers
    # Draw (step s, walker w) of the flattened storage is chain w, draw s.
    np.testing.assert_array_equal(
        post["intercept"].values[3, 5], model.posterior_["intercept"][5 * n_walkers + 3]
    )
    np.testing.assert_array_equal(
        np.sort(post["coef"].values.reshape(-1)), np.sort(model.posterior_["coef"].ravel())
    )
    assert "lp" in idata.sample_stats
    summary = az.summary(idata, var_names=["intercept"])
    # ArviZ rounds its summary table to 3 decimals.
    assert summary.loc["intercept", "mean"] == pytest.approx(
        model.posterior_["intercept"].mean(), abs=5e-4)
