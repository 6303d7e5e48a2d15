"""Test utilities shared by the estimator test modules.

``FAST`` holds the sampler settings for scikit-learn's common checks and
other smoke tests (one place, as imbalanced-learn does), so the default
suite stays quick without weakening the statistical tests, which set their
own, longer runs.
"""

from __future__ import annotations

import functools

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

#: Short emcee runs for API/contract tests (not for statistical checks).
FAST = {"n_walkers": 16, "n_steps": 60, "n_burn": 20}

#: Error values encode the row id: value = BASE + STEP * row_id.
ID_BASE, ID_STEP = 0.5, 1e-3


def encode_ids(n: int, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    """Error array whose first column/element per row equals BASE + STEP*id."""
    vals = ID_BASE + ID_STEP * np.arange(n)
    out = np.broadcast_to(vals.reshape((n,) + (1,) * len(shape_tail)), (n,) + shape_tail)
    return np.array(out)


def decode_ids(err) -> np.ndarray:
    arr = np.asarray(err, dtype=float).reshape(len(err), -1)[:, 0]
    return np.rint((arr - ID_BASE) / ID_STEP).astype(int)


def recording_subclass(estimator_cls, error_name: str):
    """Subclass of ``estimator_cls`` that records the row ids of the errors
    it receives in ``fit`` and ``score`` (kept on the class, since
    meta-estimators clone their steps)."""

    calls: list[tuple[str, np.ndarray | None]] = []

    def wrap(method_name):
        method = getattr(estimator_cls, method_name)

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            err = kwargs.get(error_name)
            calls.append((method_name, None if err is None else decode_ids(err)))
            return method(self, *args, **kwargs)

        return wrapper

    cls = type(
        "Recording" + estimator_cls.__name__,
        (estimator_cls,),
        {"fit": wrap("fit"), "score": wrap("score"), "__module__": __name__},
    )
    cls.calls = calls
    return cls


def assert_error_routing(estimator, X, y, error_name: str, errors, *, param_grid=None):
    """Check that ``errors`` reach fit and score row-for-row in every fold.

    Runs, with ``enable_metadata_routing=True`` and no ``set_*_request``
    call: ``Pipeline.fit``, ``cross_validate`` (fit and score) and
    ``GridSearchCV`` (fit and score). ``errors`` must come from
    :func:`encode_ids`. Also checks that a wrong-length error array raises
    ``ValueError``.
    """
    n = len(X)
    cls = recording_subclass(type(estimator), error_name)
    est = cls(**estimator.get_params())
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    folds = list(cv.split(X))
    with sklearn.config_context(enable_metadata_routing=True):
        # Pipeline: the whole data set.
        pipe = make_pipeline(FunctionTransformer(), clone(est))
        cls.calls.clear()
        pipe.fit(X, y, **{error_name: errors})
        assert [c[0] for c in cls.calls] == ["fit"]
        np.testing.assert_array_equal(cls.calls[0][1], np.arange(n))

        # cross_validate: each fold's fit gets the train rows, score the test rows.
        cls.calls.clear()
        cross_validate(clone(est), X, y, cv=cv, params={error_name: errors})
        fits = [c[1] for c in cls.calls if c[0] == "fit"]
        scores = [c[1] for c in cls.calls if c[0] == "score"]
        assert len(fits) == len(scores) == 3
        for (train, test), f, s in zip(folds, fits, scores, strict=True):
            np.testing.assert_array_equal(f, train)
            np.testing.assert_array_equal(s, test)

        # GridSearchCV: same per fold and candidate, then a refit on all rows.
        grid = param_grid or {"random_state": [0, 1]}
        cls.calls.clear()
        GridSearchCV(clone(est), grid, cv=cv).fit(X, y, **{error_name: errors})
        fits = [c[1] for c in cls.calls if c[0] == "fit"]
        scores = [c[1] for c in cls.calls if c[0] == "score"]
        n_cand = int(np.prod([len(v) for v in grid.values()]))
        assert len(fits) == 3 * n_cand + 1 and len(scores) == 3 * n_cand
        expected_train = [train for _ in range(n_cand) for train, _ in folds]
        expected_test = [test for _ in range(n_cand) for _, test in folds]
        for f, t in zip(sorted(map(tuple, fits[:-1])), sorted(map(tuple, expected_train)), strict=True):
            assert f == t
        for s, t in zip(sorted(map(tuple, scores)), sorted(map(tuple, expected_test)), strict=True):
            assert s == t
        np.testing.assert_array_equal(fits[-1], np.arange(n))

    # A wrong-length error array is refused with a message naming it.
    import pytest

    with pytest.raises(ValueError, match=error_name):
        clone(estimator).fit(X, y, **{error_name: errors[:-1]})


#: Mark for tests that run FAST (deliberately short) chains: their
#: ConvergenceWarnings are expected and not what the test is about.
import pytest  # noqa: E402

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

#: scikit-learn checks that fit X with several columns. Estimators of one
#: measured quantity per object (PopulationModel, HierarchicalDistanceEstimator)
#: refuse such X with a ValueError, so these are their justified expected
#: failures; the behaviour each check tests is covered on one-column data.
MULTI_COLUMN_CHECKS = (
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
    # The sample-weight checks fit X with 2 to 30 columns too.
    "check_sample_weights_pandas_series",
    "check_sample_weights_not_an_array",
    "check_sample_weights_list",
    "check_all_zero_sample_weights_error",
    "check_sample_weights_shape",
    "check_sample_weights_not_overwritten",
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weights_invariance",
)


def split_rhat_by_hand(chains):
    """Split R-hat (BDA3 section 11.4) of one scalar, chains of shape (C, n):
    an independent reference for the estimators' diagnostics."""
    h = chains.shape[1] // 2
    halves = np.concatenate([chains[:, :h], chains[:, -h:]])
    w = halves.var(axis=1, ddof=1).mean()
    b = h * halves.mean(axis=1).var(ddof=1)
    return np.sqrt(((h - 1) / h * w + b / h) / w)


def rank_rhat_by_hand(chains):
    """Rank-normalised split R-hat (Vehtari et al. 2021) of one scalar, chains
    (C, n): max of the bulk and folded-tail R-hat of normal scores."""
    from scipy import stats

    def scores(x):
        r = stats.rankdata(x.ravel()).reshape(x.shape)
        return stats.norm.ppf((r - 0.375) / (x.size + 0.25))

    return max(split_rhat_by_hand(scores(chains)),
               split_rhat_by_hand(scores(np.abs(chains - np.median(chains)))))


# --------------------------------------------------------------------------
# Monte Carlo tolerances (one place for every statistical test)
#
# A statistical assertion compares an estimate from draws with a reference.
# Its threshold is z * sqrt(err_estimate**2 + err_reference**2), where the
# errors are the Monte Carlo standard errors that are right for the quantity
# (the sd of a heavy-tailed posterior has a larger error than normal theory
# says) and z is set by a stated false-failure rate per assertion.
# --------------------------------------------------------------------------

#: Default probability that one correct assertion fails by chance.
FALSE_FAILURE_RATE = 1e-3


def z_threshold(rate: float = FALSE_FAILURE_RATE, n_assertions: int = 1) -> float:
    """Two-sided normal threshold for a false-failure ``rate`` shared by
    ``n_assertions`` assertions (Bonferroni): ``rate=1e-3`` gives 3.29."""
    from scipy.stats import norm

    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    return float(norm.isf(rate / (2.0 * n_assertions)))


def kurtosis(x, axis=0):
    """Pearson kurtosis E[(x-m)^4] / var^2 (3 for a normal), along ``axis``."""
    x = np.asarray(x, dtype=float)
    d = x - x.mean(axis=axis, keepdims=True)
    return np.mean(d**4, axis=axis) / np.mean(d**2, axis=axis) ** 2


def mcse_mean(sd, ess):
    """Monte Carlo error of a posterior mean: sd / sqrt(ESS)."""
    return np.asarray(sd) / np.sqrt(ess)


def mcse_sd(sd, ess, kurt=3.0):
    """Monte Carlo error of a posterior sd, kurtosis-aware.

    Var(s^2) = (mu_4 - sigma^4) / n = sigma^4 (kurt - 1) / n, and by the delta
    method Var(s) = sigma^2 (kurt - 1) / (4 n). For normal draws (kurt = 3)
    this is the familiar sd / sqrt(2 n); a kurtosis of 5 makes it 1.41x
    larger. ``ess`` should be the effective size for the squared deviations
    (for independent draws, the number of draws).
    """
    return np.asarray(sd) * np.sqrt((np.asarray(kurt) - 1.0) / (4.0 * np.asarray(ess)))


def mcse_quantile(draws, q, ess):
    """Monte Carlo error of the ``q`` quantile of 1-D ``draws``:
    sqrt(q (1 - q) / ESS) / f(x_q), with the density f at the quantile
    estimated from the spacing of neighbouring empirical quantiles."""
    draws = np.asarray(draws, dtype=float)
    n = draws.size
    dq = max(2.0 * np.sqrt(q * (1 - q) / n), 5.0 / n)
    lo, hi = np.quantile(draws, [max(q - dq, 0.0), min(q + dq, 1.0)])
    density = (min(q + dq, 1.0) - max(q - dq, 0.0)) / max(hi - lo, np.finfo(float).tiny)
    return np.sqrt(q * (1 - q) / ess) / density


def chain_ess(values) -> float:
    """Effective sample size of a scalar function of an ensemble chain,
    ``values`` of shape (n_steps, n_walkers), from emcee's integrated
    autocorrelation time (an implementation independent of skhier's)."""
    import emcee

    values = np.asarray(values, dtype=float)
    tau = emcee.autocorr.integrated_time(values[:, :, None], quiet=True)[0]
    return values.size / max(float(tau), 1.0)


def assert_mc_close(estimate, reference, err, ref_err=0.0, *, rate=FALSE_FAILURE_RATE,
                    n_assertions=1, what="estimate"):
    """Assert |estimate - reference| < z * sqrt(err^2 + ref_err^2), elementwise,
    with z from :func:`z_threshold` (false-failure ``rate`` per call)."""
    estimate = np.asarray(estimate, dtype=float)
    reference = np.asarray(reference, dtype=float)
    tol = z_threshold(rate, n_assertions) * np.sqrt(
        np.asarray(err, dtype=float) ** 2 + np.asarray(ref_err, dtype=float) ** 2
    )
    diff = np.abs(estimate - reference)
    bad = ~(diff < tol)
    if np.any(bad):
        raise AssertionError(
            f"{what}: {estimate} vs reference {reference}; |diff| = {diff} exceeds the "
            f"Monte Carlo tolerance {tol} (false-failure rate {rate:g} per assertion)"
        )


def chi2_variance_ratio_bounds(n_groups: int, rate: float = FALSE_FAILURE_RATE):
    """Two-sided bounds on (sample variance / true variance) of ``n_groups``
    independent normal values: the chi-square(n - 1) / (n - 1) quantiles."""
    from scipy.stats import chi2

    df = n_groups - 1
    return chi2.ppf(rate / 2, df) / df, chi2.isf(rate / 2, df) / df


def assert_grid_converged(moments_at, rtol=1e-3):
    """Grid references are checked for convergence: ``moments_at(res)``
    returns ``[means..., sds...]`` of a grid posterior at resolution factor
    ``res``; the moments at ``res=1`` and at ``res=2`` (half the step) must
    agree within ``rtol`` times each parameter's sd. Returns the finer ones."""
    coarse = np.asarray(moments_at(1), dtype=float)
    fine = np.asarray(moments_at(2), dtype=float)
    p = len(fine) // 2
    scale = np.concatenate([fine[p:], fine[p:]])
    if not np.all(np.abs(coarse - fine) <= rtol * scale):
        raise AssertionError(
            f"grid reference not converged: {coarse} at the base step, {fine} at half the step"
        )
    return fine


def plot_ppc(idata, **kwargs):
    """ArviZ's posterior predictive density plot: ``az.plot_ppc`` in ArviZ
    0.x, ``az.plot_ppc_dist`` in 1.x (which takes the same DataTree)."""
    import arviz as az

    if hasattr(az, "plot_ppc"):
        return az.plot_ppc(idata, **kwargs)
    kwargs.pop("num_pp_samples", None)
    return az.plot_ppc_dist(idata, **kwargs)


def check_leading_rules(rules, correction, terms, ref, lead=None, tol=2e-8):
    """Every Gauss–Hermite rule of a leading-term integral on its own range.

    ``rules``: ``{kind: ((nodes, q_max), ...)}``; ``correction(kind, nodes,
    eps, sd_t, t_hat, m, sx, d, err)``: the rule's expectation of the
    correction; ``terms``: :func:`skhier._cluster_integral.lead_terms` of
    the cases; ``ref``: the reference log-integrals (NaN where not
    computed); ``lead``: the leading term (default ``terms``'). Each rule,
    not only the one an entry gets, must be within ``tol`` of ``ref``
    wherever its bound admits the entry, and every rule's own band (between
    the previous bound and its own) must hold at least 5 cases.
    """
    _, err, lead0, m, eps, sx, d, t_hat, sd_t, q, valid, resolved = terms
    lead = lead0 if lead is None else lead
    for kind, kind_rules in rules.items():
        of_kind = valid & (resolved if kind == "resolved" else ~resolved)
        lower = -np.inf
        for n_nodes, q_max in kind_rules:
            sel = of_kind & (q <= q_max)
            assert np.sum(sel & (q > lower)) >= 5, (kind, n_nodes)
            lower = q_max
            with np.errstate(all="ignore"):
                val = lead[sel] + np.log(correction(
                    kind, n_nodes, *(a[sel] for a in (eps, sd_t, t_hat, m, sx, d, err))))
            np.testing.assert_array_less(np.abs(val - ref[sel]), tol, err_msg=f"{kind} {n_nodes}")


def quad_standardised(plx, err, mu, sig, power=0):
    """log ∫_{r>0} N(plx | 1000/r, err²) N(r | mu, sig²) r^power dr by scipy quad.

    The cluster integral of the distance models (``power=0``: the 1-D
    model's, without its truncation factor; ``power=2``: a 3-D member's),
    integrated in the parallax x = 1000 / r, standardised by the
    conditional mean and sd of x under the delta-method Gaussian of the
    cluster (v = (x - x_c) / w_d), so that the integrand has unit width for
    every regime; the log-integrand is taken relative to its value at v = 0.
    """
    import math

    from scipy import integrate

    m = 1000.0 / mu
    sx = m * sig / mu
    var = err**2 + sx**2
    xc = m + sx * sx * (plx - m) / var
    wd = sx * err / math.sqrt(var)

    def log_f(v):
        x = xc + wd * v
        r = 1000.0 / x
        return (-0.5 * ((plx - x) / err) ** 2 - 0.5 * ((r - mu) / sig) ** 2
                + math.log(1000.0 / x**2) + power * math.log(r)
                - math.log(2 * math.pi * err * sig))

    f0 = log_f(0.0)
    lo = max(-60.0, (1e-12 - xc) / wd)
    val, _ = integrate.quad(lambda v: math.exp(log_f(v) - f0) * wd, lo, 60.0,
                            points=[0.0] if lo < 0 else None, limit=2000, epsabs=0,
                            epsrel=1e-13)
    return math.log(val) + f0
