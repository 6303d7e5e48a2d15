"""Tests of BayesianGMM: conjugate posterior, recovery, deconvolution,
label switching, scikit-learn contract and error routing.

Tolerances come from Monte Carlo standard errors (MCSE = sd / sqrt(ESS));
"within 3 MCSE" means |a - b| < 3 sqrt(MCSE_a^2 + MCSE_b^2). Interval checks
on one data set count covered quantities against a binomial bound instead of
requiring every one of many 90 % intervals to cover (which would fail for a
correct sampler most of the time).
"""

import copy
import pickle
import sys
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from skhier import BayesianGMM
from skhier.datasets import load_galaxy_velocities, make_mixture_with_errors
from skhier.diagnostics import effective_sample_size

from .helpers import (
    assert_error_routing,
    assert_mc_close,
    encode_ids,
    ignore_convergence,
    kurtosis,
    mcse_mean,
    mcse_sd,
    rank_rhat_by_hand,
    z_threshold,
)

#: Short chains for API/contract tests (not for statistical checks).
FAST_GMM = {"n_chains": 2, "n_iter": 40, "n_burn": 10}


def _ess(draws, n_chains):
    """ESS of each column of draws (T, p), chains concatenated along T."""
    T = draws.shape[0]
    chain = draws.reshape(n_chains, T // n_chains, -1).transpose(1, 0, 2)
    return effective_sample_size(chain)


def _interval_covers(draws, truth, level):
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (lo <= truth) & (truth <= hi)


def _binomial_floor(m, p=0.9):
    """Smallest count of covered intervals accepted: mean - 3 sd of Bin(m, p)."""
    return int(np.floor(m * p - 3 * np.sqrt(m * p * (1 - p))))


# ---------------------------------------------------------------------------
# K = 1: the Normal-inverse-Wishart posterior is known in closed form.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_single_component_matches_analytic_niw_posterior(d, stat_seed):
    rng = np.random.default_rng(10 + d)
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])[:d, :d]
    X = rng.multivariate_normal(np.arange(1, d + 1) * 3.0, cov, size=40)
    kappa0, nu0, c = 0.5, d + 4.0, 0.3
    gmm = BayesianGMM(
        n_components=1, mean_precision_prior=kappa0, degrees_of_freedom_prior=nu0,
        covariance_prior=c, n_chains=2, n_iter=2500, n_burn=100, random_state=stat_seed,
    ).fit(X)
    # Independent reference (BDA3 section 3.6) in the estimator's documented
    # standardised units: columns centred on their mean and divided by their
    # (population) standard deviation; prior mean 0, Psi0 = c (nu0 - d - 1) I.
    loc, scale = X.mean(0), X.std(0)
    Z = (X - loc) / scale
    n = len(Z)
    zbar = Z.mean(0)
    kn, nun = kappa0 + n, nu0 + n
    mn = n * zbar / kn
    psin = (c * (nu0 - d - 1) * np.eye(d) + (Z - zbar).T @ (Z - zbar)
            + kappa0 * n / kn * np.outer(zbar, zbar))
    D = np.outer(scale, scale)
    psi_user = psin * D
    mean_mu = loc + scale * mn
    var_mu = np.diag(psi_user) / (kn * (nun - d - 1))
    mean_sigma = psi_user / (nun - d - 1)
    p = d
    var_sigma = ((nun - p + 1) * psi_user**2 + (nun - p - 1) * np.outer(np.diag(psi_user),
                 np.diag(psi_user))) / ((nun - p) * (nun - p - 1) ** 2 * (nun - p - 3))

    mu = gmm.posterior_["means"][:, 0, :]
    sig = gmm.posterior_["covariances"][:, 0].reshape(len(mu), -1)
    draws = np.hstack([mu, sig])
    ess = _ess(draws, 2)
    assert np.all(ess > 2000)  # K = 1 Gibbs draws are independent
    ref_mean = np.concatenate([mean_mu, mean_sigma.ravel()])
    ref_sd = np.sqrt(np.concatenate([var_mu, var_sigma.ravel()]))
    # Covariance elements are inverse-Wishart: heavy-tailed, so the sd's
    # Monte Carlo error uses their kurtosis (estimated from > 2000
    # independent draws).
    n = draws.shape[1]
    assert_mc_close(draws.mean(0), ref_mean, mcse_mean(ref_sd, ess), n_assertions=2 * n,
                    what="NIW posterior means")
    assert_mc_close(draws.std(0), ref_sd, mcse_sd(ref_sd, ess, kurtosis(draws)),
                    n_assertions=2 * n, what="NIW posterior sds")
    np.testing.assert_allclose(gmm.weights_, [1.0])


# ---------------------------------------------------------------------------
# Well-separated mixture: recovery and agreement with GaussianMixture.
# ---------------------------------------------------------------------------
SEPARATED = {
    "weights": (0.5, 0.3, 0.2),
    "means": ((0.0, 0.0), (8.0, 0.0), (0.0, 8.0)),
    "covariances": (((1.0, 0.3), (0.3, 0.8)), ((0.6, 0.0), (0.0, 1.5)), ((1.2, -0.4), (-0.4, 0.7))),
}


def _match(est_means, true_means):
    cost = ((est_means[:, None, :] - true_means[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return rows[np.argsort(cols)]  # estimated component for each true one


def _coverage_counts(gmm, data, level=0.9):
    """Covered / total for weights, means and covariance entries."""
    K = len(data.weights)
    order = _match(gmm.means_[:K], data.means)
    post = gmm.posterior_
    covered = np.concatenate([
        _interval_covers(post["weights"][:, order], data.weights, level).ravel(),
        _interval_covers(post["means"][:, order], data.means, level).ravel(),
        _interval_covers(post["covariances"][:, order], data.covariances, level)[
            (slice(None), *np.triu_indices(2))
        ].ravel(),
    ])
    return int(covered.sum()), covered.size


def test_separated_mixture_recovery_and_sklearn_agreement():
    data = make_mixture_with_errors(600, **SEPARATED, random_state=3)
    gmm = BayesianGMM(n_components=5, n_chains=2, n_iter=700, n_burn=200, random_state=0).fit(
        data.X
    )
    assert gmm.converged_
    assert np.argmax(gmm.n_components_posterior_) == 3
    assert gmm.weights_[3:].sum() < 0.01
    hits, total = _coverage_counts(gmm, data)
    assert hits >= _binomial_floor(total), (hits, total)
    hits99, _ = _coverage_counts(gmm, data, level=0.998)
    assert hits99 == total
    # predict vs scikit-learn's EM fit, up to a permutation of the labels.
    em = GaussianMixture(3, random_state=0, n_init=3).fit(data.X)
    ours, theirs = gmm.predict(data.X), em.predict(data.X)
    confusion = np.zeros((gmm.n_components, 3))
    np.add.at(confusion, (ours, theirs), 1)
    rows, cols = linear_sum_assignment(-confusion)
    assert confusion[rows, cols].sum() / len(ours) >= 0.99
    proba = gmm.predict_proba(data.X)
    np.testing.assert_allclose(proba.sum(1), 1.0)


@pytest.mark.slow
def test_separated_mixture_interval_coverage():
    """Coverage of 90 % intervals over M = 20 data sets at fixed truth."""
    M = 20
    hits = total = 0
    for rep in range(M):
        data = make_mixture_with_errors(300, **SEPARATED, random_state=100 + rep)
        gmm = BayesianGMM(n_components=3, weight_concentration=1.0, n_chains=2, n_iter=600,
                          n_burn=150, random_state=rep).fit(data.X)
        h, t = _coverage_counts(gmm, data)
        hits, total = hits + h, total + t
    # 18 correlated quantities per data set: a conservative binomial bound on
    # the number of independent-ish data sets, applied to the pooled rate.
    rate = hits / total
    print(f"separated mixture: pooled 90% coverage {rate:.3f} over {M} data sets")
    assert abs(rate - 0.9) < 3 * np.sqrt(0.9 * 0.1 / M), rate


# ---------------------------------------------------------------------------
# Deconvolution (extreme deconvolution inside the sampler).
# ---------------------------------------------------------------------------
DECONV = {
    "weights": (0.6, 0.4),
    "means": ((0.0, 0.0), (5.0, 3.0)),
    "covariances": (((1.0, 0.5), (0.5, 1.0)), ((0.6, -0.2), (-0.2, 1.2))),
}


def test_deconvolution_recovers_intrinsic_covariances():
    # Errors as large as the intrinsic widths: sd in [0.7, 1.3] per coordinate,
    # with random correlations.
    data = make_mixture_with_errors(1500, **DECONV, error_scale=(0.7, 1.3),
                                    full_error_cov=True, random_state=5)
    kw = dict(n_components=2, weight_concentration=1.0, n_chains=2, n_iter=800, n_burn=150,
              random_state=0)
    deconv = BayesianGMM(**kw).fit(data.X, X_cov=data.X_cov)
    plain = BayesianGMM(**kw).fit(data.X)
    iu = np.triu_indices(2)
    true = data.covariances[:, iu[0], iu[1]]

    order = _match(deconv.means_, data.means)
    cov = deconv.posterior_["covariances"][:, order][:, :, iu[0], iu[1]]
    covered90 = _interval_covers(cov, true, 0.9)
    assert covered90.sum() >= _binomial_floor(covered90.size), covered90
    assert _interval_covers(cov, true, 0.998).all()

    # Without the errors, the fitted covariances absorb them (~ +1 on the
    # diagonal): the whole 99.8 % interval lies above the truth.
    order = _match(plain.means_, data.means)
    diag = np.diagonal(plain.posterior_["covariances"][:, order], axis1=2, axis2=3)
    true_diag = np.diagonal(data.covariances, axis1=1, axis2=2)
    assert np.all(np.quantile(diag, 0.001, axis=0) > true_diag + 0.4)

    # Latent true positions: deconvolved draws are closer to the truth than X.
    sp = deconv.sample_posterior(20, random_state=0)
    assert sp["X_true"].shape == (20, 1500, 2)
    err_post = np.mean((sp["X_true"].mean(0) - data.X_true) ** 2)
    err_obs = np.mean((data.X - data.X_true) ** 2)
    assert err_post < 0.8 * err_obs

    # Responsibilities of noisy new points use the convolved components.
    p_noisy = deconv.predict_membership_proba(data.X[:50], X_cov=data.X_cov[:50])
    np.testing.assert_allclose(p_noisy.sum(1), 1.0)
    assert deconv.score(data.X, X_cov=data.X_cov) > deconv.score(data.X)


@pytest.mark.slow
def test_deconvolution_interval_coverage():
    """90 % intervals of the deconvolved covariances over M = 20 noisy data sets.

    Errors as large as the intrinsic widths; the pooled coverage of the six
    covariance entries must be within 3 sd of 0.9 (sd computed as if only the
    M data sets were independent: conservative).
    """
    M = 20
    iu = np.triu_indices(2)
    hits = []
    for rep in range(M):
        data = make_mixture_with_errors(500, **DECONV, error_scale=(0.7, 1.3),
                                        full_error_cov=True, random_state=200 + rep)
        gmm = BayesianGMM(n_components=2, weight_concentration=1.0, n_chains=2, n_iter=800,
                          n_burn=200, random_state=rep).fit(data.X, X_cov=data.X_cov)
        order = _match(gmm.means_, data.means)
        cov = gmm.posterior_["covariances"][:, order][:, :, iu[0], iu[1]]
        hits.append(_interval_covers(cov, data.covariances[:, iu[0], iu[1]], 0.9).mean())
    rate = float(np.mean(hits))
    print(f"deconvolution: pooled 90% coverage {rate:.3f} over {M} data sets")
    assert abs(rate - 0.9) < 3 * np.sqrt(0.9 * 0.1 / M), rate


def test_x_err_equals_diagonal_x_cov():
    data = make_mixture_with_errors(200, **DECONV, error_scale=(0.3, 0.6), random_state=1)
    kw = dict(n_components=2, **FAST_GMM, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = BayesianGMM(**kw).fit(data.X, X_err=data.X_err)
        b = BayesianGMM(**kw).fit(data.X, X_cov=data.X_cov)
    np.testing.assert_allclose(a.posterior_["means"], b.posterior_["means"], rtol=1e-10)
    np.testing.assert_allclose(a.score_samples(data.X, X_err=data.X_err),
                               b.score_samples(data.X, X_cov=data.X_cov))


# ---------------------------------------------------------------------------
# Label switching.
# ---------------------------------------------------------------------------
def test_label_switching_resolved_and_stable_across_seeds():
    """Three overlapping 1-D components fitted with three seeds.

    How: each fit runs 4 chains from different k-means++ starts, so raw
    labels differ between chains (asserted: some draws needed a non-identity
    permutation, and the raw per-label means are much more dispersed than the
    relabelled ones). After relabelling, (i) split R-hat of every component
    mean and weight is < 1.05 and (ii) each component's posterior mean and
    weight agree across seeds within 3 MCSE.
    """
    data = make_mixture_with_errors(
        300, weights=(0.5, 0.3, 0.2), means=((-2.0,), (0.5,), (3.0,)),
        covariances=(0.8, 0.5, 0.8), random_state=7,
    )
    fits = [
        # Gibbs mixes slowly between overlapping components (autocorrelation
        # times of tens of sweeps), hence the long chains.
        BayesianGMM(n_components=3, weight_concentration=4.0, n_chains=4, n_iter=4000,
                    n_burn=500, random_state=seed).fit(data.X)
        for seed in (0, 1, 2)
    ]
    for g in fits:
        perms = g.relabel_permutations_
        assert np.any(perms != np.arange(3)), "no label switching to resolve"
        assert max(g.rhat_["means"].max(), g.rhat_["weights"].max()) < 1.05
        # Undo the relabelling: raw label k held relabelled component perms^-1.
        raw = np.empty_like(g.posterior_["means"][..., 0])
        np.put_along_axis(raw, perms, g.posterior_["means"][..., 0], axis=1)
        # A switch moves at least two labels: their raw draws mix components.
        assert np.sort(raw.std(0))[-2] > 3 * g.posterior_["means"][..., 0].std(0).max()
    ref = fits[0]
    for g in fits[1:]:
        for name in ("means", "weights"):
            a, b = ref.posterior_[name], g.posterior_[name]
            a = a.reshape(len(a), -1)
            b = b.reshape(len(b), -1)
            mcse_a = a.std(0) / np.sqrt(ref.n_effective_[name].ravel())
            mcse_b = b.std(0) / np.sqrt(g.n_effective_[name].ravel())
            diff = np.abs(a.mean(0) - b.mean(0))
            np.testing.assert_array_less(diff, 3 * np.sqrt(mcse_a**2 + mcse_b**2))
    np.testing.assert_allclose(np.sort(ref.means_[:, 0]), [-2.0, 0.5, 3.0], atol=0.5)


# ---------------------------------------------------------------------------
# Number of components, real data.
# ---------------------------------------------------------------------------
def test_sparse_prior_empties_unneeded_components():
    data = make_mixture_with_errors(400, **SEPARATED, random_state=11)
    gmm = BayesianGMM(n_components=8, n_chains=4, n_iter=1000, n_burn=400,
                      random_state=0).fit(data.X)
    post = gmm.n_components_posterior_
    assert post.shape == (9,)
    np.testing.assert_allclose(post.sum(), 1.0)
    assert gmm.converged_
    assert post[3] > 0.9
    assert post[:3].sum() == 0.0


def test_galaxy_velocities_loader():
    data = load_galaxy_velocities()
    assert data.X.shape == (82, 1)
    assert data.X[77, 0] == 26.960
    assert np.all(np.diff(data.X[:, 0]) > 0)
    assert "Roeder" in data.DESCR and "26.690" in data.DESCR


@pytest.mark.slow
def test_galaxy_velocities_posterior():
    """Three well-known groups: ~9.7 (7 galaxies), ~33 (3), bulk ~20-23."""
    X = load_galaxy_velocities().X
    gmm = BayesianGMM(random_state=0, n_iter=4000, n_burn=1000).fit(X)
    k = np.arange(len(gmm.n_components_posterior_))
    assert 3 <= np.sum(k * gmm.n_components_posterior_) <= 6
    proba = gmm.predict_proba(X)
    low = proba[:7].argmax(1)
    assert len(set(low)) == 1  # the 7 slowest galaxies share a component
    assert abs(gmm.means_[low[0], 0] - 9.7) < 0.5
    assert set(proba[:7].argmax(1)).isdisjoint(proba[-3:].argmax(1))


@pytest.mark.slow
def test_defaults_converge_on_easy_mixtures():
    """Issue 21 item 1: with its defaults, BayesianGMM converges on
    make_mixture_with_errors(400) for 20 seeds -- no ConvergenceWarning, every
    R-hat below 1.05 -- and the posterior mean weights of the three true
    components lie within the posterior (and Monte Carlo) error of the true
    (0.5, 0.3, 0.2). The posterior mean differs from the truth by about one
    posterior sd (the data's own sampling noise), so each weight is checked
    at z * sqrt(sd^2 + mcse^2) with z for a 1e-3 false-failure rate shared by
    the 60 assertions. Before n_iter="auto" and the EM starts, 10 of 20
    seeds warned (split R-hat up to 4.6) and a spurious component took 6 %
    of the weight."""
    truth = np.array([0.5, 0.3, 0.2])
    n_seeds = 20
    z = z_threshold(n_assertions=3 * n_seeds)
    for seed in range(n_seeds):
        X = make_mixture_with_errors(400, random_state=seed).X
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            gmm = BayesianGMM(random_state=seed).fit(X)
        assert gmm.converged_
        for name, rhat in gmm.rhat_.items():
            assert np.nanmax(rhat) < 1.05, (seed, name, rhat)
        assert np.argmax(gmm.n_components_posterior_) == 3, seed
        # Components are ordered by weight; match them to the truth by mean.
        true_means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
        order = [int(np.argmin(((gmm.means_[:3] - m) ** 2).sum(1))) for m in true_means]
        assert sorted(order) == [0, 1, 2], (seed, gmm.means_[:3])
        w = gmm.posterior_["weights"][:, order]
        sd = w.std(axis=0, ddof=1)
        ess = gmm.n_effective_["weights"][order]
        err = np.sqrt(sd**2 + mcse_mean(sd, ess) ** 2)
        assert np.all(np.abs(w.mean(axis=0) - truth) < z * err), (seed, w.mean(0), sd)


# ---------------------------------------------------------------------------
# API details.
# ---------------------------------------------------------------------------
@ignore_convergence
def test_api_shapes_and_determinism():
    data = make_mixture_with_errors(120, **SEPARATED, random_state=0)
    gmm = BayesianGMM(n_components=4, **FAST_GMM, random_state=3).fit(data.X)
    n_draws = 2 * 30
    assert gmm.posterior_["weights"].shape == (n_draws, 4)
    assert gmm.posterior_["covariances"].shape == (n_draws, 4, 2, 2)
    np.testing.assert_allclose(gmm.weights_.sum(), 1.0)
    assert np.all(np.diff(gmm.weights_) <= 0)  # ordered by weight
    sp = gmm.sample_posterior(5, random_state=1)
    assert sp["labels"].shape == (5, 120) and "X_true" not in sp
    assert sp["means"].shape == (5, 4, 2)
    np.testing.assert_array_equal(sp["labels"], gmm.sample_posterior(5, random_state=1)["labels"])
    Xs, ys = gmm.sample(50)
    assert Xs.shape == (50, 2) and ys.shape == (50,)
    assert np.isfinite(gmm.bic(data.X)) and gmm.aic(data.X) < gmm.bic(data.X)
    again = clone(gmm).fit(data.X)
    np.testing.assert_array_equal(again.posterior_["means"], gmm.posterior_["means"])
    restored = pickle.loads(pickle.dumps(gmm))
    np.testing.assert_array_equal(restored.predict_proba(data.X), gmm.predict_proba(data.X))
    # Posterior predictive density integrates to ~1 (1-D check on a grid).
    x1 = make_mixture_with_errors(200, weights=(1, 1), means=((0.0,), (4.0,)), random_state=2).X
    g1 = BayesianGMM(n_components=3, **FAST_GMM, random_state=0).fit(x1)
    grid = np.linspace(-10, 14, 4001)[:, None]
    total = np.trapezoid(np.exp(g1.score_samples(grid)), grid[:, 0])
    assert abs(total - 1.0) < 1e-3
    # score is the (weighted) mean of score_samples.
    w = np.arange(1, 201, dtype=float)
    np.testing.assert_allclose(g1.score(x1, sample_weight=w),
                               np.average(g1.score_samples(x1), weights=w))


def test_predict_proba_matches_direct_computation():
    """The chunked quadratic-form evaluation equals scipy's densities."""
    data = make_mixture_with_errors(150, **SEPARATED, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = BayesianGMM(n_components=3, **FAST_GMM, random_state=0).fit(data.X)
    X = data.X[:20]
    post = gmm.posterior_
    T = len(post["weights"])
    idx = np.unique(np.linspace(0, T - 1, min(T, 200)).round().astype(int))
    dens = np.stack([
        np.stack([post["weights"][t, k] * stats.multivariate_normal(
            post["means"][t, k], post["covariances"][t, k]).pdf(X) for k in range(3)], 1)
        for t in idx
    ])  # (S, n, K)
    expected = (dens / dens.sum(2, keepdims=True)).mean(0)
    np.testing.assert_allclose(gmm.predict_proba(X), expected, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(gmm.score_samples(X), np.log(dens.sum(2).mean(0)), rtol=1e-8)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"X_err": -np.ones((30, 2))}, "X_err"),
        ({"X_err": np.ones((29, 2))}, "X_err"),
        ({"X_cov": np.ones((30, 2, 2)) * [[1, 2], [2, 1]]}, "X_cov"),
    ],
)
def test_bad_errors_raise(kwargs, match):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=match):
        BayesianGMM(**FAST_GMM).fit(X, **kwargs)


def test_bad_parameters_raise():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="n_burn"):
        BayesianGMM(n_iter=10, n_burn=10).fit(X)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior"):
        BayesianGMM(degrees_of_freedom_prior=0.5, **FAST_GMM).fit(X)
    with pytest.raises(ValueError, match="weight_concentration"):
        BayesianGMM(weight_concentration=0.0).fit(X)


def test_input_not_modified():
    data = make_mixture_with_errors(60, **DECONV, error_scale=0.5, random_state=0)
    X, err = data.X.copy(), data.X_err.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BayesianGMM(n_components=2, **FAST_GMM, random_state=0).fit(data.X, X_err=data.X_err)
    np.testing.assert_array_equal(X, data.X)
    np.testing.assert_array_equal(err, data.X_err)


# ---------------------------------------------------------------------------
# scikit-learn contract and metadata routing.
# ---------------------------------------------------------------------------
# scikit-learn's estimator checks: tests/test_common.py


@ignore_convergence
@pytest.mark.parametrize("name, tail", [("X_err", (2,)), ("X_cov", (2, 2))])
def test_error_routing(name, tail):
    data = make_mixture_with_errors(30, **DECONV, random_state=0)
    errors = encode_ids(30, tail)
    if name == "X_cov":  # identity-scaled covariances stay positive definite
        errors = errors * np.eye(2)
    assert_error_routing(BayesianGMM(n_components=2, **FAST_GMM, random_state=0),
                         data.X, None, name, errors)


# ---------------------------------------------------------------------------
# Whole sampler against exact enumeration of the labellings (small n).
# ---------------------------------------------------------------------------
def _log_marginal_niw(Z, kappa0, nu0, psi0):
    """log p(Z) under N(mu, Sigma) with (mu, Sigma) ~ NIW(0, kappa0, nu0, psi0)."""
    from scipy.special import multigammaln

    n, d = Z.shape
    if n == 0:
        return 0.0
    zbar = Z.mean(0)
    kn, nun = kappa0 + n, nu0 + n
    psin = psi0 + (Z - zbar).T @ (Z - zbar) + kappa0 * n / kn * np.outer(zbar, zbar)
    return (-0.5 * n * d * np.log(np.pi) + multigammaln(nun / 2, d) - multigammaln(nu0 / 2, d)
            + 0.5 * nu0 * np.linalg.slogdet(psi0)[1] - 0.5 * nun * np.linalg.slogdet(psin)[1]
            + 0.5 * d * np.log(kappa0 / kn))


def test_number_of_components_matches_exact_enumeration():
    """P(K+ = j | X) from the sampler vs. brute-force sum over all K^n labellings.

    The reference integrates weights (Dirichlet-multinomial) and components
    (NIW marginal likelihood) analytically for each of the 3^8 labellings.
    """
    from itertools import product

    from scipy.special import gammaln

    X = np.array([-2.1, -1.7, -1.5, -0.2, 0.3, 1.6, 2.0, 2.6])[:, None]
    K, e0, kappa0, c = 3, 0.3, 0.2, 0.2
    d = 1
    nu0 = d + 2.0
    Z = (X - X.mean(0)) / X.std(0)
    psi0 = c * (nu0 - d - 1) * np.eye(d)
    logp = {}
    for z in product(range(K), repeat=len(X)):
        z = np.array(z)
        counts = np.bincount(z, minlength=K)
        lp = gammaln(K * e0) - gammaln(len(X) + K * e0) + np.sum(gammaln(counts + e0) - gammaln(e0))
        lp += sum(_log_marginal_niw(Z[z == k], kappa0, nu0, psi0) for k in range(K))
        logp.setdefault(int(np.count_nonzero(counts)), []).append(lp)
    top = max(max(v) for v in logp.values())
    mass = np.array([np.sum(np.exp(np.array(logp.get(j, [-np.inf])) - top)) for j in range(K + 1)])
    exact = mass / mass.sum()

    gmm = BayesianGMM(n_components=K, weight_concentration=e0, mean_precision_prior=kappa0,
                      covariance_prior=c, n_chains=4, n_iter=6000, n_burn=500,
                      random_state=0).fit(X)
    occ = gmm.posterior_["n_occupied"]
    for j in range(1, K + 1):
        ind = (occ == j).astype(float)[:, None]
        p = ind.mean()
        ess = _ess(ind, 4)[0]
        mcse = np.sqrt(p * (1 - p) / ess)
        assert abs(p - exact[j]) < 3 * mcse, (j, p, exact[j], mcse)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_noisy_membership_matches_direct_convolution(d):
    """With errors, responsibilities use N(x | mu_k, Sigma_k + S_x) (scipy reference)."""
    rng = np.random.default_rng(d)
    means = np.zeros((2, d))
    means[1, 0] = 4.0
    data = make_mixture_with_errors(120, weights=(0.5, 0.5), means=means,
                                    error_scale=(0.2, 0.6), full_error_cov=True, random_state=d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = BayesianGMM(n_components=2, **FAST_GMM, random_state=0).fit(
            data.X, X_cov=data.X_cov)
    X = data.X[:10] + rng.normal(size=(10, d))
    S = data.X_cov[:10]
    post = gmm.posterior_
    T = len(post["weights"])
    idx = np.unique(np.linspace(0, T - 1, min(T, 200)).round().astype(int))
    dens = np.array([[[post["weights"][t, k] * stats.multivariate_normal(
        post["means"][t, k], post["covariances"][t, k] + S[i]).pdf(X[i]) for k in range(2)]
        for i in range(10)] for t in idx])  # (S, n, K)
    expected = (dens / dens.sum(2, keepdims=True)).mean(0)
    np.testing.assert_allclose(gmm.predict_membership_proba(X, X_cov=S), expected, rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(gmm.score_samples(X, X_cov=S), np.log(dens.sum(2).mean(0)),
                               rtol=1e-8)


def test_deconvolution_single_component_matches_grid_posterior():
    """K = 1, d = 1 with heteroscedastic errors: the sampler's marginal posterior
    of (mu, sigma^2) vs. a dense grid over the exact collapsed posterior
    prod_i N(x_i | mu, sigma^2 + s_i^2) x NIW prior, written independently."""
    rng = np.random.default_rng(21)
    n = 30
    s = rng.uniform(0.5, 1.5, n)
    x = rng.normal(2.0, 1.0, n) + s * rng.standard_normal(n)
    kappa0, nu0, c = 0.1, 3.0, 0.3
    gmm = BayesianGMM(n_components=1, mean_precision_prior=kappa0, degrees_of_freedom_prior=nu0,
                      covariance_prior=c, n_chains=4, n_iter=3000, n_burn=300,
                      random_state=0).fit(x[:, None], X_err=s[:, None])
    # Standardised units, as documented: centre and scale by the observed X.
    loc, scale = x.mean(), x.std()
    z, sz = (x - loc) / scale, s / scale
    psi0 = c * (nu0 - 1 - 1)
    mu = np.linspace(-2.5, 2.5, 801)
    log_v = np.linspace(np.log(1e-3), np.log(20.0), 1200)
    M, LV = np.meshgrid(mu, log_v, indexing="ij")
    V = np.exp(LV)
    # Inverse-gamma(nu0/2, psi0/2) on V, N(0, V/kappa0) on mu, Jacobian V for log V.
    lp = -(nu0 / 2 + 1) * LV - psi0 / (2 * V) + LV
    lp += -0.5 * np.log(V / kappa0) - 0.5 * kappa0 * M**2 / V
    for zi, si in zip(z, sz, strict=True):
        var = V + si**2
        lp += -0.5 * np.log(var) - 0.5 * (zi - M) ** 2 / var
    p = np.exp(lp - lp.max())
    p /= p.sum()
    ref = {}
    for name, grid in (("mu", M), ("var", V)):
        m = np.sum(p * grid)
        ref[name] = (m, np.sqrt(np.sum(p * (grid - m) ** 2)), np.sum(p * (grid - m) ** 4))
    draws = {
        "mu": (gmm.posterior_["means"][:, 0, 0] - loc) / scale,
        "var": gmm.posterior_["covariances"][:, 0, 0, 0] / scale**2,
    }
    for name, dr in draws.items():
        ess = _ess(dr[:, None], 4)[0]
        assert ess > 300
        m_ref, sd_ref, m4_ref = ref[name]
        assert abs(dr.mean() - m_ref) < 3 * sd_ref / np.sqrt(ess), (name, dr.mean(), m_ref)
        # MCSE of a standard deviation by the delta method, with the fourth
        # moment of the reference: the variance posterior is skewed and
        # heavy-tailed, so sd / sqrt(2 ESS) (exact for a normal) understates it.
        mcse_sd = np.sqrt(m4_ref - sd_ref**4) / (2 * sd_ref * np.sqrt(ess))
        assert abs(dr.std() - sd_ref) < 3 * mcse_sd, (name, dr.std(), sd_ref)


# ---------------------------------------------------------------------------
# summary() and to_inference_data()  (ecosystem block, issue 7)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gmm_three_chains():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(-2.0, 0.6, (70, 1)), rng.normal(2.0, 0.8, (50, 1))])
    gmm = BayesianGMM(n_components=3, n_chains=3, n_iter=160, n_burn=60, random_state=1).fit(X)
    return gmm, X


@ignore_convergence
def test_summary_is_consistent_with_the_draws(gmm_three_chains):
    gmm, _ = gmm_three_chains
    C, K = 3, 3
    n_keep = 100
    table = gmm.summary(quantiles=(0.1, 0.5, 0.9))
    assert list(table.columns) == ["mean", "sd", "q10", "q50", "q90", "ess", "r_hat"]
    expected = ([f"weights[{k}]" for k in range(K)] + [f"means[{k}, 0]" for k in range(K)]
                + [f"covariances[{k}, 0, 0]" for k in range(K)] + ["n_occupied"])
    assert list(table.index) == expected
    post = gmm.posterior_
    for k in range(K):
        for label, x in ((f"weights[{k}]", post["weights"][:, k]),
                         (f"means[{k}, 0]", post["means"][:, k, 0]),
                         (f"covariances[{k}, 0, 0]", post["covariances"][:, k, 0, 0])):
            row = table.loc[label]
            assert row["mean"] == pytest.approx(x.mean(), rel=1e-12)
            assert row["sd"] == pytest.approx(x.std(ddof=1), rel=1e-12)
            np.testing.assert_allclose(row[["q10", "q50", "q90"]].to_numpy(float),
                                       np.quantile(x, [0.1, 0.5, 0.9]))
            # Chains are stored one after the other: R-hat across them.
            assert row["r_hat"] == pytest.approx(
                rank_rhat_by_hand(x.reshape(C, n_keep)), rel=1e-10)
        # Same numbers as the fit's own diagnostics.
        assert table.loc[f"weights[{k}]", "r_hat"] == pytest.approx(gmm.rhat_["weights"][k])
        assert table.loc[f"weights[{k}]", "ess"] == pytest.approx(gmm.n_effective_["weights"][k])
        assert table.loc[f"means[{k}, 0]", "ess"] == pytest.approx(gmm.n_effective_["means"][k, 0])
    assert table.loc["n_occupied", "mean"] == pytest.approx(post["n_occupied"].mean())
    assert np.all(table["ess"] > 0) and np.all(table["ess"] <= C * n_keep * 2)


@ignore_convergence
def test_summary_rhat_flags_chains_that_disagree(gmm_three_chains):
    # Chains shifted against each other must give a large R-hat: this holds
    # only if the summary reads the chain-major storage chain by chain (read
    # as interleaved, the shift would be averaged away).
    gmm = copy.deepcopy(gmm_three_chains[0])
    rng = np.random.default_rng(8)
    shifted = rng.normal(size=(3, 100)) + np.array([0.0, 0.0, 3.0])[:, None]
    gmm.posterior_["means"] = gmm.posterior_["means"].copy()
    gmm.posterior_["means"][:, 0, 0] = shifted.ravel()
    table = gmm.summary()
    assert table.loc["means[0, 0]", "r_hat"] > 1.5
    assert table.loc["means[0, 0]", "r_hat"] == pytest.approx(rank_rhat_by_hand(shifted))


@ignore_convergence
def test_summary_with_one_chain_compares_its_halves():
    # One Gibbs chain is a Markov chain: its R-hat is the split R-hat of its
    # two halves (as ArviZ computes it), in summary() and rhat_ alike.
    X = np.random.default_rng(6).normal(size=(60, 2))
    gmm = BayesianGMM(n_components=2, n_chains=1, n_iter=60, n_burn=20, random_state=0).fit(X)
    table = gmm.summary()
    x = gmm.posterior_["means"][:, 0, 1]
    assert table.loc["means[0, 1]", "r_hat"] == pytest.approx(
        rank_rhat_by_hand(x.reshape(1, -1)), rel=1e-10)
    assert table.loc["means[0, 1]", "r_hat"] == pytest.approx(gmm.rhat_["means"][0, 1], rel=1e-12)
    assert np.all(np.isfinite(table.loc[["means[0, 0]", "means[0, 1]"], "ess"]))
    assert "covariances[0, 1, 0]" in table.index


def _summary_rows(gmm):
    """(row label, rhat_ entry, n_effective_ entry) for every summary row."""
    for name, rhat in gmm.rhat_.items():
        rhat = np.asarray(rhat)
        for index in np.ndindex(rhat.shape):
            label = f"{name}[{', '.join(map(str, index))}]" if index else name
            yield label, float(rhat[index]), float(np.asarray(gmm.n_effective_[name])[index])


@pytest.mark.parametrize("n_chains", [1, 3])
def test_convergence_decision_uses_the_summary_rhat(n_chains):
    """The R-hat that decides converged_, the run length and the warning is
    the summary's, row for row -- covariances included -- so a warning is
    never contradicted by summary() or the reverse. Chains of one
    covariance element shifted against the others (a disagreement confined
    to the covariances, which rhat_ did not cover before) must warn."""
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(-2.0, 0.6, (70, 1)), rng.normal(2.0, 0.8, (50, 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = BayesianGMM(n_components=3, n_chains=n_chains, n_iter=160, n_burn=60,
                          random_state=1).fit(X)
    n_keep = 100
    table = gmm.summary()
    rows = list(_summary_rows(gmm))
    assert [label for label, _, _ in rows] == list(table.index)
    for label, rhat, ess in rows:
        assert table.loc[label, "r_hat"] == pytest.approx(rhat, rel=1e-12), label
        assert table.loc[label, "ess"] == pytest.approx(ess, rel=1e-12), label
    assert gmm.converged_ == bool(table["r_hat"].max() < 1.05)

    shifted = copy.deepcopy(gmm)
    cov = shifted.posterior_["covariances"].copy()
    step = np.repeat(np.arange(2 * n_chains) % 2, n_keep // 2) if n_chains == 1 else \
        np.repeat(np.arange(n_chains) == n_chains - 1, n_keep)
    cov[:, 0, 0, 0] *= np.exp(3.0 * step)
    shifted.posterior_["covariances"] = cov
    with pytest.warns(ConvergenceWarning, match="'covariances'") as record:
        shifted._diagnose(n_chains, n_keep)
    assert "n_iter=320" in str(record[0].message)
    assert not shifted.converged_
    assert shifted.summary().loc["covariances[0, 0, 0]", "r_hat"] == pytest.approx(
        shifted.rhat_["covariances"][0, 0, 0]) and shifted.rhat_["covariances"][0, 0, 0] > 1.5


@ignore_convergence
def test_summary_labels_features_by_dataframe_columns():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(6).normal(size=(60, 2))
    kw = dict(n_components=2, n_chains=2, n_iter=40, n_burn=10, random_state=0)
    named = BayesianGMM(**kw).fit(pd.DataFrame(X, columns=["g-r", "G"])).summary()
    plain = BayesianGMM(**kw).fit(X).summary()
    assert "means[1, g-r]" in named.index and "covariances[0, G, g-r]" in named.index
    # Same rows in the same order, only the feature positions renamed.
    renamed = [i.replace("g-r", "0").replace("G", "1") for i in named.index]
    assert renamed == list(plain.index)
    np.testing.assert_allclose(named.to_numpy(float), plain.to_numpy(float), rtol=1e-12)


def _mixture_loglik_by_hand(X, w, mu, cov, S=None):
    """sum_i log sum_k w_k N(x_i | mu_k, cov_k + S_i) with scipy."""
    dens = np.zeros(len(X))
    for k in range(len(w)):
        if S is None:
            dens += w[k] * stats.multivariate_normal(mu[k], cov[k]).pdf(X)
            continue
        for i, x in enumerate(X):
            dens[i] += w[k] * stats.multivariate_normal(mu[k], cov[k] + S[i]).pdf(x)
    return np.log(dens).sum()


@ignore_convergence
def test_to_inference_data_groups_and_layout(gmm_three_chains):
    pytest.importorskip("arviz")
    gmm, X = gmm_three_chains
    idata = gmm.to_inference_data()
    post = idata.posterior
    assert post.sizes["chain"] == 3 and post.sizes["draw"] == 100
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["covariances"].shape == (3, 100, 3, 1, 1)
    # Draw t of chain c is stored draw c * n_keep + t.
    np.testing.assert_array_equal(post["weights"].values[2, 7], gmm.posterior_["weights"][207])
    np.testing.assert_array_equal(post["n_occupied"].values.ravel(), gmm.posterior_["n_occupied"])
    np.testing.assert_allclose(idata.observed_data["X"].values, X, rtol=1e-12)
    ll = idata.sample_stats["loglik"].values
    assert ll.shape == (3, 100)
    for c, t in ((0, 0), (1, 50), (2, 99)):
        i = c * 100 + t
        ref = _mixture_loglik_by_hand(X, gmm.posterior_["weights"][i], gmm.posterior_["means"][i],
                                      gmm.posterior_["covariances"][i])
        assert ll[c, t] == pytest.approx(ref, rel=1e-9)


@ignore_convergence
def test_to_inference_data_with_errors():
    pytest.importorskip("arviz")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 2)) * [1.0, 3.0] + [5.0, -2.0]
    X_err = rng.uniform(0.2, 0.6, size=(40, 2))
    gmm = BayesianGMM(n_components=2, n_chains=2, n_iter=40, n_burn=20, random_state=0).fit(
        X, X_err=X_err)
    idata = gmm.to_inference_data()
    S = np.einsum("ni,ij->nij", X_err**2, np.eye(2))
    np.testing.assert_allclose(idata.constant_data["X_cov"].values, S, rtol=1e-12)
    ll = idata.sample_stats["loglik"].values
    i = 33  # chain 1, sweep 13
    ref = _mixture_loglik_by_hand(X, gmm.posterior_["weights"][i], gmm.posterior_["means"][i],
                                  gmm.posterior_["covariances"][i], S)
    assert ll[1, 13] == pytest.approx(ref, rel=1e-9)


def test_to_inference_data_without_arviz(gmm_three_chains, monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match="ArviZ"):
        gmm_three_chains[0].to_inference_data()


# -- n_jobs: parallel chains (big-catalogue/parallel block) -----------------------------
@ignore_convergence
def test_n_jobs_gives_identical_posterior():
    """Chains run in parallel with joblib give the same draws as in sequence
    (every chain's seed is drawn from random_state up front): equal to
    rounding, since worker processes may use other BLAS threads and kernels."""
    rng = np.random.default_rng(11)
    X = np.vstack([rng.normal(-2, 1, (60, 2)), rng.normal(2, 0.5, (40, 2))])
    X_err = rng.uniform(0.1, 0.3, X.shape)
    kw = dict(n_components=3, n_chains=3, n_iter=40, n_burn=10, random_state=5)
    one = BayesianGMM(**kw, n_jobs=1).fit(X, X_err=X_err)
    two = BayesianGMM(**kw, n_jobs=2).fit(X, X_err=X_err)
    for name, draws in one.posterior_.items():
        np.testing.assert_allclose(two.posterior_[name], draws, rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    np.testing.assert_array_equal(two.relabel_permutations_, one.relabel_permutations_)
    np.testing.assert_allclose(two.predict_proba(X), one.predict_proba(X), rtol=1e-12,
                               atol=1e-15)
    # The chains differ from one another (the seeds are per chain).
    n_keep = 30
    w = one.posterior_["weights"]
    assert not np.array_equal(w[:n_keep], w[n_keep : 2 * n_keep])


def test_n_jobs_is_validated():
    with pytest.raises(ValueError, match="n_jobs"):
        BayesianGMM(n_jobs="two").fit(np.zeros((5, 1)) + np.arange(5)[:, None])
