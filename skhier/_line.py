"""RobustLineMixture: a line or plane through data with errors and outliers.

The model follows Hogg, Bovy & Lang (2010), "Data analysis recipes: Fitting a
model to data", arXiv:1008.4686:

* trend: ``y = X @ coef + intercept``; a point's residual
  ``y_i - X_i @ coef - intercept`` has variance (their eqs. 26–32, written in
  the vertical direction)

      Sigma_i^2 = y_err_i^2 + coef^T C_x,i coef - 2 coef^T C_xy,i + V_i,

  with ``C_x,i`` the x-error covariance (``X_err``/``X_cov``), ``C_xy,i`` the
  x–y error covariance (``Xy_cov``) and ``V_i`` the intrinsic scatter:
  ``scatter^2`` (vertical) or ``scatter^2 (1 + |coef|^2)`` (orthogonal,
  their section 7);
* outliers (their eq. 17): a point is "bad" with probability ``P_b`` and then
  ``y_i ~ N(Y_b, V_b + y_err_i^2)``, a broad background.

Both components are summed over the outlier indicator, so the sampler only
sees the handful of global parameters; each point's outlier indicator is
drawn afterwards from its conditional probability.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, logsumexp
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseHierarchicalEstimator, PosteriorModel
from .utils._checks import check_errors, check_finite_array

__all__ = ["RobustLineMixture"]

_LOG2PI = np.log(2.0 * np.pi)
_ROW_CHUNK_CELLS = 4_000_000  # draws x rows evaluated at once (~32 MB)


def _error_variance(coef, X_cov, Xy_cov, X_var_diag):
    """coef^T C_x coef - 2 coef^T C_xy for every draw and point: (S, n)."""
    s = coef.shape[0]
    out = 0.0
    if X_var_diag is not None:
        out = (coef**2) @ X_var_diag.T
    elif X_cov is not None:
        out = np.einsum("sj,njk,sk->sn", coef, X_cov, coef, optimize=True)
    if Xy_cov is not None:
        out = out - 2.0 * coef @ Xy_cov.T
    if np.ndim(out) == 0:
        out = np.zeros((s, 1))
    return out


def _trend_loglik(coef, intercept, scatter_var, X, y, y_var, X_cov, Xy_cov, X_var_diag):
    """log N(y_i | X_i coef + b, Sigma_i^2) for draws (S,) x points (n,)."""
    mu = coef @ X.T + intercept[:, None]
    var = _error_variance(coef, X_cov, Xy_cov, X_var_diag) + scatter_var[:, None]
    if y_var is not None:
        var = var + y_var[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = -0.5 * ((y[None, :] - mu) ** 2 / var + np.log(var) + _LOG2PI)
    return np.where(var > 0, ll, -np.inf)


def _outlier_loglik(mean, std, y, y_var):
    """log N(y_i | Y_b, V_b + y_err_i^2) for draws (S,) x points (n,)."""
    var = std[:, None] ** 2 + (0.0 if y_var is None else y_var[None, :])
    return -0.5 * ((y[None, :] - mean[:, None]) ** 2 / var + np.log(var) + _LOG2PI)


class _LineModel(PosteriorModel):
    """Collapsed log-posterior of the line mixture in standardised units.

    Coordinates: ``coef[0..d-1], intercept`` then optionally
    ``log_scatter`` and ``logit_outlier_fraction, outlier_mean,
    log_outlier_std``.
    """

    def __init__(self, X, y, errors, *, scatter, outliers, outlier_prior, loc, scale):
        self.scatter = scatter
        self.outliers = outliers
        self.outlier_prior = outlier_prior
        self.x_loc, self.x_scale, self.y_loc, self.y_scale = loc[0], scale[0], loc[1], scale[1]
        # Training data in standardised units (copies; the user's arrays are untouched).
        self.X = (X - self.x_loc) / self.x_scale
        self.y = (y - self.y_loc) / self.y_scale
        self.y_var, self.X_cov, self.Xy_cov, self.X_var_diag = _standardise_errors(
            errors, self.x_scale, self.y_scale
        )
        d = X.shape[1]
        self.d = d
        names = [f"coef[{j}]" for j in range(d)] + ["intercept"]
        if scatter is not None:
            names.append("log_scatter")
        if outliers:
            names += ["logit_outlier_fraction", "outlier_mean", "log_outlier_std"]
        self.param_names = names

    # parameters ---------------------------------------------------------
    def _unpack(self, theta):
        d = self.d
        coef = theta[:, :d]
        b = theta[:, d]
        k = d + 1
        log_s = None
        if self.scatter is not None:
            log_s = theta[:, k]
            k += 1
        out = None
        if self.outliers:
            out = theta[:, k], theta[:, k + 1], theta[:, k + 2]
        return coef, b, log_s, out

    def _scatter_var(self, coef, log_s):
        if log_s is None:
            return np.zeros(coef.shape[0])
        s2 = np.exp(2.0 * log_s)
        if self.scatter == "orthogonal":
            s2 = s2 * (1.0 + np.sum(coef**2, axis=1))
        return s2

    def log_prior(self, theta):
        coef, b, log_s, out = self._unpack(theta)
        q = 1.0 + np.sum(coef**2, axis=1)
        # Uniform direction of the hyperplane's normal and a N(0, 10^2) prior on
        # its perpendicular offset b / sqrt(1 + |coef|^2) (Hogg et al. 2010,
        # section 3 and exercise 6 generalised to d dimensions): rotation
        # invariant and proper.
        lp = -0.5 * (self.d + 2) * np.log(q) - 0.5 * b**2 / (100.0 * q)
        if log_s is not None:
            # Half-Cauchy(0, 1) on the scatter, plus the log-transform Jacobian.
            lp = lp - np.log1p(np.exp(2.0 * log_s)) + log_s
        if out is not None:
            z, yb, log_sb = out
            a, beta = self.outlier_prior
            # Beta(a, beta) on P_b, plus the logit Jacobian P_b (1 - P_b).
            lp = lp + a * log_expit(z) + beta * log_expit(-z)
            lp = lp - 0.5 * yb**2 - 0.5 * log_sb**2
        return lp

    def point_logliks(self, theta, rows=slice(None)):
        """(log(1-P_b) + log L_in, log P_b + log L_out) per draw and point
        (the points ``rows``, all by default)."""
        def take(a):
            return None if a is None else a[rows]

        coef, b, log_s, out = self._unpack(theta)
        y, y_var = self.y[rows], take(self.y_var)
        ll_in = _trend_loglik(
            coef, b, self._scatter_var(coef, log_s), self.X[rows], y,
            y_var, take(self.X_cov), take(self.Xy_cov), take(self.X_var_diag),
        )
        if out is None:
            return ll_in, None
        z, yb, log_sb = out
        ll_out = _outlier_loglik(yb, np.exp(log_sb), y, y_var)
        return ll_in + log_expit(-z)[:, None], ll_out + log_expit(z)[:, None]

    def log_prob(self, theta):
        theta = np.atleast_2d(theta)
        n = len(self.y)
        # Points in chunks: the (draws x points) tables stay below
        # _ROW_CHUNK_CELLS cells whatever the number of points and draws.
        step = max(1, _ROW_CHUNK_CELLS // max(len(theta), 1))
        with np.errstate(over="ignore", invalid="ignore"):
            total = self.log_prior(theta)
            for start in range(0, n, step):
                ll_in, ll_out = self.point_logliks(theta, slice(start, start + step))
                ll = ll_in if ll_out is None else np.logaddexp(ll_in, ll_out)
                total = total + ll.sum(axis=1)
        return np.where(np.isfinite(total), total, -np.inf)

    def initial_point(self):
        n, d = self.X.shape
        A = np.column_stack([self.X, np.ones(n)])
        w = 1.0 if self.y_var is None else 1.0 / np.sqrt(self.y_var + 0.1)
        sol, *_ = np.linalg.lstsq(A * np.reshape(w, (-1, 1)), self.y * w, rcond=None)
        resid = self.y - A @ sol
        theta = list(sol)
        if self.scatter is not None:
            theta.append(np.log(max(0.5 * np.std(resid), 0.05)))
        if self.outliers:
            theta += [np.log(0.1 / 0.9), 0.0, 0.0]
        return np.asarray(theta, dtype=np.float64)

    def constrain(self, theta):
        theta = np.atleast_2d(theta)
        coef, b, log_s, out = self._unpack(theta)
        coef_user = coef * self.y_scale / self.x_scale
        params = {
            "coef": coef_user,
            "intercept": self.y_loc + self.y_scale * b - coef_user @ self.x_loc,
        }
        if log_s is not None:
            params["scatter"] = self.y_scale * np.exp(log_s)
        if out is not None:
            z, yb, log_sb = out
            params["outlier_fraction"] = expit(z)
            params["outlier_mean"] = self.y_loc + self.y_scale * yb
            params["outlier_std"] = self.y_scale * np.exp(log_sb)
        return params

    def draw_latents(self, params, rng):
        theta = self.unconstrain(params)
        ll_in, ll_out = self.point_logliks(theta)
        if ll_out is None:
            return {"outlier": np.zeros(ll_in.shape, dtype=bool)}
        p_out = np.exp(ll_out - np.logaddexp(ll_in, ll_out))
        return {"outlier": rng.uniform(size=p_out.shape) < p_out}

    def unconstrain(self, params):
        """Inverse of :meth:`constrain` (draws in user units -> sampler coords)."""
        coef = params["coef"] * self.x_scale / self.y_scale
        cols = [coef, ((params["intercept"] - self.y_loc + params["coef"] @ self.x_loc)
                       / self.y_scale)[:, None]]
        if self.scatter is not None:
            cols.append(np.log(params["scatter"] / self.y_scale)[:, None])
        if self.outliers:
            p = params["outlier_fraction"]
            cols += [
                (np.log(p) - np.log1p(-p))[:, None],
                ((params["outlier_mean"] - self.y_loc) / self.y_scale)[:, None],
                np.log(params["outlier_std"] / self.y_scale)[:, None],
            ]
        return np.hstack(cols)


def _standardise_errors(errors, x_scale, y_scale):
    """Error arrays rescaled to standardised units: (y_var, X_cov, Xy_cov, diag)."""
    y_var = None if errors["y_err"] is None else (errors["y_err"] / y_scale) ** 2
    X_cov = Xy_cov = X_var_diag = None
    if errors["X_cov"] is not None:
        X_cov = errors["X_cov"] / (x_scale[:, None] * x_scale[None, :])
        off = X_cov.copy()
        idx = np.arange(X_cov.shape[1])
        off[:, idx, idx] = 0.0
        if not np.any(off):
            # Diagonal covariances: a (n, d) matrix product is much cheaper.
            X_var_diag = X_cov[:, idx, idx]
            X_cov = None
    if errors["Xy_cov"] is not None:
        Xy_cov = errors["Xy_cov"] / (x_scale * y_scale)
    return y_var, X_cov, Xy_cov, X_var_diag


class RobustLineMixture(RegressorMixin, BaseHierarchicalEstimator):
    """Line or hyperplane fit with x and y errors, scatter and outliers.

    Bayesian version of the "mixture model for outliers" of Hogg, Bovy &
    Lang (2010): ``y = X @ coef + intercept`` with per-point measurement
    errors in y and in X (including x–y correlations), an optional intrinsic
    scatter, and an optional broad Gaussian background that absorbs
    outliers. The outlier indicators are summed out of the likelihood, so the
    sampler (emcee) only sees ``d + 5`` parameters; each point's posterior
    outlier probability is computed afterwards.

    Parameters
    ----------
    scatter : {"vertical", "orthogonal"} or None, default="vertical"
        Intrinsic scatter of the inliers about the trend: in the y direction,
        perpendicular to the hyperplane (needs X and y in the same units), or
        none (then measurement errors must explain the residuals).
    outliers : bool, default=True
        Model outliers with a broad Gaussian background component.
    outlier_fraction_prior : tuple of two floats, default=(1.0, 4.0)
        Beta(a, b) prior on the outlier fraction ``P_b``. The default (mean
        0.2, ``P(P_b > 0.5) = 6 %``) states that outliers are a minority, which
        removes the unidentifiable region ``P_b -> 1`` where the line floats
        free.
    standardize : bool, default=True
        State the priors in standardised units (see Notes), which makes the
        fit equivariant under shifts and rescalings. With False they are
        stated in the data's own units: a prior that does not depend on the
        data, for when the units are meaningful (e.g. a scatter of order 1)
        or for simulation-based calibration.
    sampler : {"auto", "emcee", "importance"}, default="auto"
        ``"auto"``: independent draws from a Student-t (5 d.o.f.) fitted at
        the posterior maximum, reweighted to the exact posterior, when the
        Pareto-k diagnostic of the weights is below 0.7 and every
        coordinate has enough effective draws (typical with hundreds of
        points, where the posterior is near Gaussian); emcee otherwise (e.g.
        small data sets with skewed scatter or outlier-fraction posteriors).
        ``"emcee"`` and ``"importance"`` force one method. ``sampler_``
        tells which one ran.
    n_importance : int, default=2000
        Proposal draws per importance-sampling round.
    n_walkers : int, default=32
        emcee walkers (raised to ``2 * n_params + 2`` if smaller).
    n_steps : int or "auto", default="auto"
        Steps per walker, burn-in included. ``"auto"`` runs until the kept
        chain is longer than 50 autocorrelation times (or ``max_steps``).
    n_burn : int or "auto", default="auto"
        Steps discarded as burn-in; ``"auto"`` uses ``max(100, 5 tau)``.
    max_steps : int, default=20000
        Upper limit on steps per walker in ``"auto"`` mode.
    thin : int, default=1
        Keep every ``thin``-th step.
    random_state : int, RandomState instance or None, default=None
        Seeds the walker start and the sampler; a fixed value makes ``fit``
        reproducible bit for bit.
    progress : bool, default=False
        Show a progress bar during sampling (needs ``tqdm``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior median of the slopes, in units of y per unit of X.
    intercept_ : float
        Posterior median of the intercept (value of y at X = 0).
    scatter_ : float or None
        Posterior median intrinsic scatter (y units; perpendicular distance
        for ``scatter="orthogonal"``), or None when ``scatter=None``.
    outlier_fraction_ : float or None
        Posterior median of ``P_b``; None when ``outliers=False``.
    membership_proba_ : ndarray of shape (n_samples, 2)
        Posterior-averaged probability that each training point is an inlier
        (column 0) or an outlier (column 1).
    posterior_ : dict of ndarray
        Posterior draws: ``"coef"`` (n_draws, n_features), ``"intercept"``,
        ``"scatter"``, ``"outlier_fraction"``, ``"outlier_mean"`` and
        ``"outlier_std"`` (n_draws,), as applicable.
    acceptance_fraction_, autocorr_time_, n_effective_, converged_
        Sampler diagnostics (see :class:`BaseHierarchicalEstimator`).
    sampler_ : str
        ``"importance"`` or ``"emcee"``: the method that produced the draws.
    pareto_k_ : float or None
        Pareto-k of the importance weights (None when emcee ran).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.

    See Also
    --------
    sklearn.linear_model.HuberRegressor : point estimate robust to outliers.

    Notes
    -----
    Inputs are standardised internally (X columns and y centred and scaled
    by their standard deviations; with ``scatter="orthogonal"`` all axes
    share the scale of y so perpendicular distances are preserved); the
    priors below are stated in those standardised units, which makes the fit
    equivariant under shifts and rescalings of X and y (with their errors).
    Do not rescale error-carrying columns *outside* the estimator (e.g. with a
    ``StandardScaler`` earlier in a pipeline): that changes X but not
    ``X_err``.

    Priors (standardised units): the hyperplane's unit normal is uniform on
    the sphere and its perpendicular offset ``intercept / sqrt(1 + |coef|^2)``
    is N(0, 10^2), i.e. ``p(coef, intercept) ∝ (1 + |coef|^2)^(-(d+2)/2)
    exp(-intercept^2 / (200 (1 + |coef|^2)))`` (flat in angle, as Hogg et
    al. 2010 recommend, instead of flat in slope); scatter ~ Half-Cauchy(0,
    1); ``P_b`` ~ Beta(``outlier_fraction_prior``); background mean
    ``Y_b`` ~ N(0, 1) and log background std ~ N(0, 1) (the background is
    about as broad as the data). Summaries use posterior medians.

    References
    ----------
    .. [1] Hogg, D. W., Bovy, J. & Lang, D. (2010), "Data analysis recipes:
       Fitting a model to data", arXiv:1008.4686.

    Examples
    --------
    >>> from skhier import RobustLineMixture
    >>> from skhier.datasets import load_hogg2010
    >>> data = load_hogg2010()
    >>> model = RobustLineMixture(random_state=0).fit(
    ...     data.X, data.y, y_err=data.y_err)
    >>> bool(2.1 < model.coef_[0] < 2.4)  # posterior median, about 2.23
    True
    >>> model.membership_proba_.shape
    (20, 2)
    """

    _parameter_constraints: dict = {
        **BaseHierarchicalEstimator._parameter_constraints,
        "scatter": [StrOptions({"vertical", "orthogonal"}), None],
        "outliers": ["boolean"],
        "outlier_fraction_prior": [tuple],
        "standardize": ["boolean"],
    }

    def __init__(
        self,
        *,
        scatter="vertical",
        outliers=True,
        outlier_fraction_prior=(1.0, 4.0),
        standardize=True,
        sampler="auto",
        n_importance=2000,
        n_walkers=32,
        n_steps="auto",
        n_burn="auto",
        max_steps=20000,
        thin=1,
        random_state=None,
        progress=False,
    ):
        super().__init__(
            n_walkers=n_walkers,
            n_steps=n_steps,
            n_burn=n_burn,
            max_steps=max_steps,
            thin=thin,
            random_state=random_state,
            progress=progress,
            sampler=sampler,
            n_importance=n_importance,
        )
        self.scatter = scatter
        self.outliers = outliers
        self.outlier_fraction_prior = outlier_fraction_prior
        self.standardize = standardize

    # -- fitting ----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Sample the posterior of the line given data and errors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Independent variable(s); at least 3 samples.
        y : array-like of shape (n_samples,)
            Dependent variable.
        y_err : array-like of shape (n_samples,), default=None
            Standard deviations of the y measurements.
        X_err : array-like of shape (n_samples, n_features), default=None
            Standard deviations of the X measurements.
        X_cov : array-like of shape (n_samples, n_features, n_features), default=None
            Full covariances of the X measurements (instead of ``X_err``).
        Xy_cov : array-like of shape (n_samples, n_features), default=None
            Covariance between each point's X and y errors
            (``rho_xy * sigma_x * sigma_y`` for a line).

        Returns
        -------
        self : RobustLineMixture
        """
        prior = self._check_prior()
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=3, dtype=np.float64,
                              order="C")
        errors = check_errors(
            X.shape[0], X.shape[1], y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov
        )
        if self.scatter is None and errors["y_err"] is None and errors["X_cov"] is None:
            raise ValueError(
                "With scatter=None the residuals must be explained by measurement "
                "errors: pass y_err (and/or X_err/X_cov), or use scatter='vertical'."
            )
        rng = check_random_state(self.random_state)
        model = _LineModel(
            X, y, errors, scatter=self.scatter, outliers=self.outliers,
            outlier_prior=prior, **self._standardisation(X, y),
        )
        self._sample(model, rng)
        self.coef_ = np.atleast_1d(self._posterior_median("coef"))
        self.intercept_ = self._posterior_median("intercept")
        self.scatter_ = self._posterior_median("scatter") if self.scatter else None
        self.outlier_fraction_ = (
            self._posterior_median("outlier_fraction") if self.outliers else None
        )
        self.membership_proba_ = self._membership(
            self._summary_draws(), X, y, errors
        )
        return self

    def _check_prior(self):
        prior = self.outlier_fraction_prior
        if (
            len(prior) != 2
            or not all(np.isscalar(v) and np.isfinite(v) and v > 0 for v in prior)
        ):
            raise ValueError(
                "outlier_fraction_prior must be a tuple (a, b) of two positive "
                f"numbers (Beta prior), got {prior!r}."
            )
        return float(prior[0]), float(prior[1])

    def _standardisation(self, X, y):
        if not self.standardize:
            return {"loc": (np.zeros(X.shape[1]), 0.0), "scale": (np.ones(X.shape[1]), 1.0)}

        def spread(v):
            s = np.std(v, axis=0)
            return np.where(s > 0, s, 1.0)

        x_loc, y_loc = X.mean(axis=0), float(y.mean())
        y_scale = float(spread(y))
        x_scale = spread(X)
        if self.scatter == "orthogonal":
            # Perpendicular distances survive only a common scale on all axes.
            x_scale = np.full(X.shape[1], y_scale)
        return {"loc": (x_loc, y_loc), "scale": (x_scale, y_scale)}

    # -- per-point posterior quantities -----------------------------------
    def _membership(self, draws, X, y, errors):
        """Posterior-averaged (inlier, outlier) probabilities, chunked over rows."""
        n = X.shape[0]
        proba = np.empty((n, 2))
        if not self.outliers:
            proba[:, 0], proba[:, 1] = 1.0, 0.0
            return proba
        y_var = None if errors["y_err"] is None else errors["y_err"] ** 2
        coef = np.atleast_2d(draws["coef"].T).T
        s2 = self.model_._scatter_var(  # user units; orthogonal axes share one scale
            coef, None if self.scatter is None else np.log(draws["scatter"])
        )
        log1m = np.log1p(-draws["outlier_fraction"])[:, None]
        logp = np.log(draws["outlier_fraction"])[:, None]
        for rows in _row_chunks(n, len(coef)):
            xc = None if errors["X_cov"] is None else errors["X_cov"][rows]
            xyc = None if errors["Xy_cov"] is None else errors["Xy_cov"][rows]
            yv = None if y_var is None else y_var[rows]
            ll_in = log1m + _trend_loglik(
                coef, draws["intercept"], s2, X[rows], y[rows], yv, xc, xyc, None
            )
            ll_out = logp + _outlier_loglik(draws["outlier_mean"], draws["outlier_std"], y[rows], yv)
            p_out = np.exp(ll_out - np.logaddexp(ll_in, ll_out)).mean(axis=0)
            proba[rows, 1] = p_out
            proba[rows, 0] = 1.0 - p_out
        return proba

    def predict(self, X, return_std=False):
        """Posterior mean of the trend at X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the predictive standard deviation of a new inlier
            measured without error: parameter uncertainty plus intrinsic
            scatter (vertical component).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std=True``.
        """
        check_is_fitted(self, "posterior_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        draws = self._summary_draws()
        coef = np.atleast_2d(draws["coef"].T).T
        # The trend is linear in (coef, intercept), so its mean and variance
        # over the draws are the draws' mean and covariance applied to (x, 1):
        # O(n d^2) work and O(n) memory instead of a (draws x n) table.
        beta = np.column_stack([coef, draws["intercept"]])
        centre = beta.mean(axis=0)
        mean = X @ centre[:-1] + centre[-1]
        if not return_std:
            return mean
        s2 = self.model_._scatter_var(  # user units; orthogonal axes share one scale
            coef, None if self.scatter is None else np.log(draws["scatter"])
        ).mean()
        dev = beta - centre
        cov = dev.T @ dev / len(beta)  # the draws' covariance (ddof=0, as var)
        std = np.empty(X.shape[0])
        for rows in _row_chunks(X.shape[0], 1):
            xr = X[rows]
            var = np.einsum("ni,ij,nj->n", xr, cov[:-1, :-1], xr)
            var += 2 * xr @ cov[:-1, -1] + cov[-1, -1]
            std[rows] = np.sqrt(np.maximum(var, 0.0) + s2)
        return mean, std

    def predict_membership_proba(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Posterior probability that each (X, y) point is an inlier or outlier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        y_err, X_err, X_cov, Xy_cov : array-like, default=None
            Measurement errors of these points, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0: inlier (on the trend); column 1: outlier. Rows sum to 1.
        """
        check_is_fitted(self, "posterior_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        y = check_finite_array(y, "y", (X.shape[0],))
        errors = check_errors(
            X.shape[0], X.shape[1], y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov
        )
        return self._membership(self._summary_draws(), X, y, errors)

    def log_predictive_density(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Log posterior predictive density of each observed ``y`` given ``X``.

        ``log p(y_i | X_i, training data) = log E_posterior[(1 - P_b) L_in + P_b L_out]``
        (the mixture density, with these points' measurement errors),
        estimated over at most 1000 posterior draws.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "posterior_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        y = check_finite_array(y, "y", (X.shape[0],))
        errors = check_errors(
            X.shape[0], X.shape[1], y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov
        )
        draws = self._summary_draws()
        coef = np.atleast_2d(draws["coef"].T).T
        s2 = self.model_._scatter_var(  # user units; orthogonal axes share one scale
            coef, None if self.scatter is None else np.log(draws["scatter"])
        )
        y_var = None if errors["y_err"] is None else errors["y_err"] ** 2
        out = np.empty(X.shape[0])
        n_draws = len(coef)
        for rows in _row_chunks(X.shape[0], n_draws):
            xc = None if errors["X_cov"] is None else errors["X_cov"][rows]
            xyc = None if errors["Xy_cov"] is None else errors["Xy_cov"][rows]
            yv = None if y_var is None else y_var[rows]
            ll = _trend_loglik(coef, draws["intercept"], s2, X[rows], y[rows], yv, xc, xyc, None)
            if self.outliers:
                p = draws["outlier_fraction"][:, None]
                ll_out = _outlier_loglik(draws["outlier_mean"], draws["outlier_std"], y[rows], yv)
                ll = np.logaddexp(np.log1p(-p) + ll, np.log(p) + ll_out)
            out[rows] = logsumexp(ll, axis=0) - np.log(n_draws)
        return out

    def score(self, X, y, sample_weight=None, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Coefficient of determination R² of :meth:`predict` on (X, y).

        Measurement errors are accepted (so that metadata routing can pass
        them per fold) and validated against X, but R² is defined on the
        point predictions and does not use them.
        """
        Xv = validate_data(self, X, reset=False, dtype=np.float64)
        check_errors(
            Xv.shape[0], Xv.shape[1], y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov
        )
        # predict gets X as given, so that a DataFrame's feature names are checked once
        # and not reported missing.
        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    def _data_groups(self):
        """Training data and errors, in data units, for :meth:`to_inference_data`."""
        m = self.model_
        errors = {}
        if m.y_var is not None:
            errors["y_err"] = np.sqrt(m.y_var) * m.y_scale
        if m.X_cov is not None:
            errors["X_cov"] = m.X_cov * (m.x_scale[:, None] * m.x_scale[None, :])
        elif m.X_var_diag is not None:
            errors["X_err"] = np.sqrt(m.X_var_diag) * m.x_scale
        if m.Xy_cov is not None:
            errors["Xy_cov"] = m.Xy_cov * (m.x_scale * m.y_scale)
        return {"observed_data": {"X": m.X * m.x_scale + m.x_loc, "y": m.y * m.y_scale + m.y_loc},
                "constant_data": errors}


def _row_chunks(n_rows: int, n_draws: int):
    """Slices of rows such that draws x rows stays below _ROW_CHUNK_CELLS."""
    step = max(1, _ROW_CHUNK_CELLS // max(n_draws, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
