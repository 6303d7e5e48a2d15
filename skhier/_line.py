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
drawn afterwards from its conditional probability. With X errors the true X
get a population model instead of the projection (``x_model="population"``,
Kelly 2007): :mod:`skhier._line_population`.
"""

from __future__ import annotations

import copy
from numbers import Integral

import numpy as np
from scipy.special import expit, log_expit, log_ndtr
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import BaseHierarchicalEstimator, PosteriorModel
from ._distributions import Prior
from ._docstrings import fill_doc
from ._math import (
    log_normal_pdf,
    row_chunks,
    standardisation,
)
from .utils._checks import (
    check_beta_prior,
    check_finite_array,
    check_limit,
    check_limit_length,
    check_magnitude,
    check_sample_weight,
)
from .utils._warnings import warn

__all__ = ["RobustLineMixture"]

# Without intrinsic scatter, a median |residual| / error above this (0.67
# expected) means the errors cannot explain the data (see
# RobustLineMixture._check_errors_explain_residuals).
_MAX_MEDIAN_Z = 5.0
_ROW_CHUNK_CELLS = 4_000_000  # draws x rows evaluated at once (~32 MB)
#: A point is an inlier (``inlier_mask_``) when its outlier probability is at most this.
INLIER_THRESHOLD = 0.5
#: Posterior draws averaged for ``x_true_`` (conditional means: the Monte Carlo
#: error is that of the parameters' effect on a point's true X, not its spread).
X_TRUE_DRAWS = 250


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


def _gauss_or_limit(y, mu, var, limit):
    """log N(y | mu, var) for detections; log P(measured value beyond y) for limits.

    ``limit`` (n,) holds 1 (upper limit: the measured value is below y),
    -1 (lower limit) or 0 (detection), or is None (all detections).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = log_normal_pdf(y, mu, var)
        if limit is not None:
            idx = np.flatnonzero(limit)
            if idx.size:
                z = (y[..., idx] - mu[..., idx]) / np.sqrt(var[..., idx])
                ll[..., idx] = log_ndtr(limit[idx] * z)
    return ll


def _trend_loglik(coef, intercept, scatter_var, X, y, y_var, X_cov, Xy_cov, X_var_diag,
                  limit=None):
    """log N(y_i | X_i coef + b, Sigma_i^2) for draws (S,) x points (n,)."""
    mu = coef @ X.T + intercept[:, None]
    var = _error_variance(coef, X_cov, Xy_cov, X_var_diag) + scatter_var[:, None]
    if y_var is not None:
        var = var + y_var[None, :]
    var = np.broadcast_to(var, mu.shape)
    ll = _gauss_or_limit(y[None, :], mu, var, limit)
    return np.where(var > 0, ll, -np.inf)


def _outlier_loglik(mean, std, y, y_var, limit=None):
    """log N(y_i | Y_b, V_b + y_err_i^2) for draws (S,) x points (n,)."""
    var = std[:, None] ** 2 + (0.0 if y_var is None else y_var[None, :])
    mu = np.broadcast_to(mean[:, None], (len(mean), len(y)))
    return _gauss_or_limit(y[None, :], mu, np.broadcast_to(var, mu.shape), limit)


class _LineModel(PosteriorModel):
    """Collapsed log-posterior of the line mixture in standardised units.

    Coordinates: ``coef[0..d-1], intercept`` then optionally
    ``log_scatter`` and ``logit_outlier_fraction, outlier_mean,
    log_outlier_std``.
    """

    def __init__(self, X, y, errors, *, scatter, outliers, outlier_prior, loc, scale,
                 limit=None):
        self.scatter = scatter
        self.outliers = outliers
        self.outlier_prior = outlier_prior
        self.x_loc, self.x_scale, self.y_loc, self.y_scale = loc[0], scale[0], loc[1], scale[1]
        self._set_data(X, y, errors, limit)
        d = X.shape[1]
        self.d = d
        names = [f"coef[{j}]" for j in range(d)] + ["intercept"]
        if scatter is not None:
            names.append("log_scatter")
        if outliers:
            names += ["logit_outlier_fraction", "outlier_mean", "log_outlier_std"]
        self.param_names = names

    def _set_data(self, X, y, errors, limit):
        # Data in standardised units (copies; the user's arrays are untouched).
        self.X = (X - self.x_loc) / self.x_scale
        self.y = (y - self.y_loc) / self.y_scale
        self.limit = limit
        self.y_var, self.X_cov, self.Xy_cov, self.X_var_diag = _standardise_errors(
            errors, self.x_scale, self.y_scale
        )

    def with_data(self, X, y, errors, limit=None):
        """The same model (priors, units) holding other data (user units)."""
        other = copy.copy(self)
        other._set_data(X, y, errors, limit)
        return other

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

    def point_logliks(self, theta, rows=slice(None), conditional=False):
        """(log(1-P_b) + log L_in, log P_b + log L_out) per draw and point
        (the points ``rows``, all by default).

        The projected likelihood is conditional on the observed X, so
        ``conditional`` changes nothing here (see :class:`_LinePopulationModel`).
        """
        def take(a):
            return None if a is None else a[rows]

        coef, b, log_s, out = self._unpack(theta)
        y, y_var, limit = self.y[rows], take(self.y_var), take(self.limit)
        ll_in = _trend_loglik(
            coef, b, self._scatter_var(coef, log_s), self.X[rows], y,
            y_var, take(self.X_cov), take(self.Xy_cov), take(self.X_var_diag), limit,
        )
        if out is None:
            return ll_in, None
        z, yb, log_sb = out
        ll_out = _outlier_loglik(yb, np.exp(log_sb), y, y_var, limit)
        return ll_in + log_expit(-z)[:, None], ll_out + log_expit(z)[:, None]

    def log_prob(self, theta):
        theta = np.atleast_2d(theta)
        n = len(self.y)
        # Points in chunks: the (draws x points) tables stay below
        # _ROW_CHUNK_CELLS cells whatever the number of points and draws.
        with np.errstate(over="ignore", invalid="ignore"):
            total = self.log_prior(theta)
            for rows in row_chunks(n, len(theta), _ROW_CHUNK_CELLS):
                ll_in, ll_out = self.point_logliks(theta, rows)
                ll = ll_in if ll_out is None else np.logaddexp(ll_in, ll_out)
                total = total + self.sum_objects(ll, rows)
        return np.where(np.isfinite(total), total, -np.inf)

    def initial_point(self):
        n, d = self.X.shape
        A = np.column_stack([self.X, np.ones(n)])
        w = 1.0 if self.y_var is None else 1.0 / np.sqrt(self.y_var + 0.1)
        sol, *_ = np.linalg.lstsq(A * np.reshape(w, (-1, 1)), self.y * w, rcond=None)
        return np.asarray(list(sol) + self._nuisance_start(self.y - A @ sol), dtype=np.float64)

    def _nuisance_start(self, resid):
        """Starting log scatter (from the residuals) and outlier coordinates."""
        theta = []
        if self.scatter is not None:
            theta.append(np.log(max(0.5 * np.std(resid), 0.05)))
        if self.outliers:
            theta += [np.log(0.1 / 0.9), 0.0, 0.0]
        return theta

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

    def replicate(self, theta, rng):
        """Replicated measurements (standardised units) for the draws ``theta``.

        The projected likelihood is conditional on the measured X, so only y
        is replicated, from exactly that conditional: the trend's mean with
        the scatter and the projected measurement variance, or the
        background with the y errors for points drawn as outliers.
        """
        coef, b, log_s, out = self._unpack(theta)
        mean = coef @ self.X.T + b[:, None]
        var = _error_variance(coef, self.X_cov, self.Xy_cov, self.X_var_diag)
        var = var + self._scatter_var(coef, log_s)[:, None]
        if self.y_var is not None:
            var = var + self.y_var[None, :]
        var = np.broadcast_to(var, mean.shape)
        if out is not None:
            z, yb, log_sb = out
            is_out = rng.uniform(size=mean.shape) < expit(z)[:, None]
            bg_var = np.exp(2.0 * log_sb)[:, None] + (0.0 if self.y_var is None else self.y_var)
            mean = np.where(is_out, yb[:, None], mean)
            var = np.where(is_out, bg_var, var)
        y = mean + np.sqrt(np.maximum(var, 0.0)) * rng.standard_normal(mean.shape)
        return {"y": y}

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


@fill_doc
class RobustLineMixture(RegressorMixin, BaseHierarchicalEstimator):
    """Line or hyperplane fit with x and y errors, scatter and outliers.

    Bayesian version of the "mixture model for outliers" of Hogg, Bovy &
    Lang (2010): ``y = X @ coef + intercept`` with per-point measurement
    errors in y and in X (including x–y correlations), an optional intrinsic
    scatter, and an optional broad Gaussian background that absorbs
    outliers. With X errors the true X of the points get a population model
    (a Gaussian mixture, as in Kelly 2007), which removes the attenuation of
    the slopes that X errors cause. Upper and lower limits on y are
    accepted (``y_limit``). The outlier indicators and the true X are
    integrated out of the likelihood analytically, so the sampler only sees
    a few parameters; each point's outlier probability and true X are drawn
    afterwards.

    Parameters
    ----------
    scatter : {"vertical", "orthogonal"} or None, default="vertical"
        Intrinsic scatter of the inliers about the trend: in the y direction,
        perpendicular to the hyperplane (needs X and y in the same units), or
        none (then measurement errors must explain the residuals).
    outliers : bool, default=True
        Model outliers with a broad Gaussian background component.
    x_model : {"auto", "population", "projected"}, default="auto"
        Model of the true X when X errors are given. ``"population"``: the
        true X are drawn from a Gaussian mixture with ``x_components``
        components whose means, covariances and weights are fitted with the
        line; the slopes are then unbiased under X errors. ``"projected"``:
        the likelihood of Hogg, Bovy & Lang (2010, eq. 32), the residual's
        variance ``y_err^2 + coef' C_x coef + V``; it is the limit of a flat,
        infinitely wide population and its slopes are attenuated towards zero
        when X errors are comparable to the spread of X (it is right when X
        errors are negligible, and reproduces the paper's numbers).
        ``"auto"``: population when ``X_err``/``X_cov`` is given, projected
        otherwise (without X errors both give the same line posterior, and
        the projected one is cheaper).
    x_components : int, default=1
        Number of Gaussian components K of the population model (a few at
        most; more only for clearly multi-modal or skewed X).
    outlier_fraction_prior : tuple or Prior, default=(1.0, 4.0)
        Beta(a, b) prior on the outlier fraction ``P_b``: ``(a, b)``,
        ``("beta", a, b)`` or a ``BetaPrior``. The default (mean
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
    %(emcee_settings)s

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
    inlier_mask_ : ndarray of bool, shape (n_samples,)
        True where a training point's outlier probability is at most 0.5
        (``INLIER_THRESHOLD``), as ``RANSACRegressor.inlier_mask_``;
        :meth:`predict_inliers` does the same for new points.
    x_model_ : str
        ``"population"`` or ``"projected"``: the model of the true X that ran.
    x_true_ : ndarray of shape (n_samples, n_features) or None
        Posterior mean of every training point's true X (deconvolved X),
        population model only.
    posterior_ : dict of ndarray
        Posterior draws: ``"coef"`` (n_draws, n_features), ``"intercept"``,
        ``"scatter"``, ``"outlier_fraction"``, ``"outlier_mean"`` and
        ``"outlier_std"`` (n_draws,), as applicable; with the population
        model also ``"x_weight"`` (n_draws, K), ``"x_mean"`` (n_draws, K,
        n_features) and ``"x_cov"`` (n_draws, K, n_features, n_features).
        :meth:`sample_posterior` adds the latents ``"outlier"`` (n_samples,
        n_points) and, with the population model, ``"x_true"`` (n_samples,
        n_points, n_features): each point's true X drawn given the draw's
        parameters, its component and its outlier indicator.
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
    about as broad as the data). Population model of the true X
    (standardised units): component means N(0, 2^2) per coordinate; each
    covariance ``L L'`` with the diagonal of its Cholesky factor
    Half-Cauchy(0, 1) and the off-diagonal N(0, 1); weights Dirichlet(1, …,
    1). Summaries use posterior medians.

    Which likelihood: with X errors that are not negligible against the
    spread of the true X, use the population model (the default); the
    projected likelihood there returns the attenuated least-squares slope
    with a confidently small posterior sd. The population model assumes the
    true X of the points follow a Gaussian mixture; with a strongly
    non-Gaussian distribution of X, raise ``x_components``.

    Censoring: a point marked in ``y_limit`` contributes the probability
    that its measured y lies beyond the limit, under the full mixture
    (inlier and outlier components): a normal CDF in the collapsed model.
    Under the population model the outlier probabilities are conditional on
    the observed X.

    References
    ----------
    .. [1] Hogg, D. W., Bovy, J. & Lang, D. (2010), "Data analysis recipes:
       Fitting a model to data", arXiv:1008.4686.
    .. [2] Kelly, B. C. (2007), "Some aspects of measurement error in linear
       regression of astronomical data", ApJ 665, 1489.

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

    With X errors the true X get a population model (no attenuation):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x_true = rng.normal(size=300)
    >>> X = (x_true + 0.8 * rng.normal(size=300))[:, None]
    >>> y = 2 * x_true + 1 + 0.5 * rng.normal(size=300)
    >>> fit = RobustLineMixture(outliers=False, random_state=0).fit(
    ...     X, y, X_err=np.full((300, 1), 0.8))
    >>> fit.x_model_, bool(1.6 < fit.coef_[0] < 2.4)
    ('population', True)
    """

    _parameter_constraints: dict = {
        **BaseHierarchicalEstimator._parameter_constraints,
        "scatter": [StrOptions({"vertical", "orthogonal"}), None],
        "outliers": ["boolean"],
        "outlier_fraction_prior": [tuple, Prior],
        "standardize": ["boolean"],
        "x_model": [StrOptions({"auto", "population", "projected"})],
        "x_components": [Interval(Integral, 1, None, closed="left")],
    }

    # Censoring marks are routed like the measurement errors.
    __metadata_request__fit = {"y_limit": True}

    def __init__(
        self,
        *,
        scatter="vertical",
        outliers=True,
        outlier_fraction_prior=(1.0, 4.0),
        x_model="auto",
        x_components=1,
        standardize=True,
        **sampler_settings,
    ):
        super().__init__(**sampler_settings)
        self.scatter = scatter
        self.outliers = outliers
        self.outlier_fraction_prior = outlier_fraction_prior
        self.x_model = x_model
        self.x_components = x_components
        self.standardize = standardize

    # -- fitting ----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc
    def fit(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None, y_limit=None,
            sample_weight=None):
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
        y_limit : array-like of shape (n_samples,), default=None
            Censoring marks: 1 where ``y`` is an upper limit (the measured
            value lies below it), -1 where it is a lower limit, 0 for a
            detection; booleans mean upper limits. A limit's likelihood is
            the probability that the measured value (true value plus its
            ``y_err``) lies beyond it. None: all detections.
        %(sample_weight)s
            The standardisation uses the weighted mean and standard
            deviation, so integer weights give the posterior of the
            repeated rows exactly.

        Returns
        -------
        self : RobustLineMixture
        """
        prior = check_beta_prior(self.outlier_fraction_prior, "outlier_fraction_prior")
        limit = check_limit(y_limit, y)
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=3, dtype=np.float64,
                              order="C")
        check_magnitude(X, "X")
        check_magnitude(y, "y")
        errors = self._check_errors(X, "fit", y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov)
        limit = check_limit_length(limit, X.shape[0])
        if self.scatter is None and errors["y_err"] is None and errors["X_cov"] is None:
            raise ValueError(
                "With scatter=None the residuals must be explained by measurement "
                "errors: pass y_err (and/or X_err/X_cov), or use scatter='vertical'."
            )
        if self.scatter is None:
            _check_nonzero_variance(errors)
        rng = check_random_state(self.random_state)
        x_model = self.x_model
        if x_model == "auto":
            x_model = "projected" if errors["X_cov"] is None else "population"
        weights = check_sample_weight(sample_weight, X.shape[0])
        kwargs = dict(scatter=self.scatter, outliers=self.outliers, outlier_prior=prior,
                      limit=limit, **self._standardisation(X, y, weights))
        if x_model == "population":
            from ._line_population import _LinePopulationModel

            model = _LinePopulationModel(X, y, errors, n_components=self.x_components, **kwargs)
        else:
            model = _LineModel(X, y, errors, **kwargs)
        self.x_model_ = x_model
        self._set_sample_weight(model, weights, X.shape[0])
        self._sample(model, rng)
        self.coef_ = np.atleast_1d(self._posterior_median("coef"))
        self.intercept_ = self._posterior_median("intercept")
        self.scatter_ = self._posterior_median("scatter") if self.scatter else None
        self.outlier_fraction_ = (
            self._posterior_median("outlier_fraction") if self.outliers else None
        )
        self.membership_proba_ = self._membership_proba(model)
        self.inlier_mask_ = self.membership_proba_[:, 1] <= INLIER_THRESHOLD
        self.x_true_ = None
        if x_model == "population":
            self.x_true_ = self._x_true(model)
        if self.scatter is None:
            self._check_errors_explain_residuals(X, y, errors)
        return self

    def _check_errors_explain_residuals(self, X, y, errors) -> None:
        """Warn when, without intrinsic scatter, the errors are far too small.

        Residuals about the fitted line in units of each point's error are
        half-normal for inliers (median 0.67); even with half the points
        outliers their median stays below ~2.3. A median above
        ``_MAX_MEDIAN_Z`` (5), or most points called outliers, means the errors
        cannot explain the scatter and the likelihood is degenerate.
        """
        var = np.zeros(X.shape[0]) if errors["y_err"] is None else errors["y_err"] ** 2
        if errors["X_cov"] is not None:
            var = var + np.einsum("i,nij,j->n", self.coef_, errors["X_cov"], self.coef_)
            if errors["Xy_cov"] is not None:
                var = var - 2 * errors["Xy_cov"] @ self.coef_
        z = np.abs(y - X @ self.coef_ - self.intercept_) / np.sqrt(np.maximum(var, 1e-300))
        median_z = float(np.median(z))
        frac = self.outlier_fraction_ if self.outliers else 0.0
        if median_z > _MAX_MEDIAN_Z or frac > 0.5:
            warn(
                f"With scatter=None the measurement errors must explain the scatter about "
                f"the line, but the median residual is {median_z:.3g} errors (about 0.67 "
                f"expected) and the outlier fraction is {frac:.2f}: the errors are too "
                "small and the fit is degenerate. Check y_err/X_err, or fit the extra "
                "scatter with scatter='vertical' or 'orthogonal'.",
                UserWarning,
            )

    def _x_true(self, model):
        """Posterior mean of every training point's true X (user units).

        Rao-Blackwellised: the conditional means given each parameter draw,
        averaged over at most ``X_TRUE_DRAWS`` posterior draws.
        """
        draws = self._summary_draws()
        n_draws = len(draws["intercept"])
        if n_draws > X_TRUE_DRAWS:
            idx = np.linspace(0, n_draws - 1, X_TRUE_DRAWS).astype(int)
            draws = {k: v[idx] for k, v in draws.items()}
        theta = model.unconstrain(draws)
        n = len(model.y)
        out = np.empty((n, model.d))
        for rows in row_chunks(n, len(theta) * model.K * 2 * model.d, _ROW_CHUNK_CELLS):
            mean, _ = model.latent_x(theta, rows)
            out[rows] = mean.mean(axis=0)
        return model.x_loc + model.x_scale * out

    def _standardisation(self, X, y, weights=None):
        if not self.standardize:
            return {"loc": (np.zeros(X.shape[1]), 0.0), "scale": (np.ones(X.shape[1]), 1.0)}
        x_loc, x_scale = standardisation(X, weights)
        y_loc, y_scale = (float(v) for v in standardisation(y, weights))
        if self.scatter == "orthogonal":
            # Perpendicular distances survive only a common scale on all axes.
            x_scale = np.full(X.shape[1], y_scale)
        return {"loc": (x_loc, y_loc), "scale": (x_scale, y_scale)}

    # -- the per-object hook (see BaseHierarchicalEstimator._object_logliks) ---
    def _object_logliks(self, model, theta, rows):
        """(inlier, outlier) log-likelihood tables of the points ``rows`` of
        ``model`` (a :class:`_LineModel` holding their data), conditional on
        the measured X, in standardised units."""
        return model.point_logliks(theta, rows, conditional=True)

    def _n_objects(self, model):
        return len(model.y)

    def _training_objects(self):
        return self.model_

    def _has_background(self):
        return self.model_.outliers

    def _prepare_object_draws(self, draws):
        return self.model_.unconstrain(draws)

    def _object_cost(self, model):
        return getattr(model, "K", 1)

    def _object_log_jacobian(self, model):
        """Densities in standardised y units -> data units: ``log y_scale`` for
        detections (limits are probabilities, unit-free)."""
        detected = np.ones(len(model.y)) if model.limit is None else (np.asarray(model.limit) == 0)
        return detected * np.log(model.y_scale)

    def _replicate(self, params, rng):
        """Replicated training data: ``{"y": (S, n)}``, and ``"X"`` (S, n, d)
        when the true X have a population model (``x_model_ == "population"``).

        Each replicate redraws every point's outlier label, its true values
        and its measurement errors (the training ``y_err``, ``X_err``/``X_cov``
        and ``Xy_cov``). With the projected likelihood, which is conditional
        on the measured X, only y is replicated, at the measured X. Points
        fitted as limits (``y_limit``) are replicated as measured values.
        """
        m = self.model_
        with np.errstate(over="ignore", invalid="ignore"):
            reps = m.replicate(m.unconstrain(params), rng)
        out = {"y": m.y_loc + m.y_scale * reps["y"]}
        if "X" in reps:
            out["X"] = m.x_loc + m.x_scale * reps["X"]
        return out

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
        for rows in row_chunks(X.shape[0], 1, _ROW_CHUNK_CELLS):
            xr = X[rows]
            var = np.einsum("ni,ij,nj->n", xr, cov[:-1, :-1], xr)
            var += 2 * xr @ cov[:-1, -1] + cov[-1, -1]
            std[rows] = np.sqrt(np.maximum(var, 0.0) + s2)
        return mean, std

    def predict_membership_proba(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None,
                                 y_limit=None):
        """Posterior probability that each (X, y) point is an inlier or outlier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        y_err, X_err, X_cov, Xy_cov, y_limit : array-like, default=None
            Measurement errors and censoring marks of these points, as in
            :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0: inlier (on the trend); column 1: outlier. Rows sum to 1.
            Under the population model the probabilities are conditional on
            the observed X (the X population is shared by both components).
        """
        return self._membership_proba(self._new_points(
            X, y, "predict_membership_proba", y_limit, y_err=y_err, X_err=X_err, X_cov=X_cov,
            Xy_cov=Xy_cov))

    def predict_inliers(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None,
                        y_limit=None):
        """Boolean inlier mask of new points, as ``inlier_mask_`` for the training data.

        A point is an inlier when its posterior outlier probability
        (column 1 of :meth:`predict_membership_proba`) is at most 0.5.
        Arguments as in :meth:`predict_membership_proba`.

        Returns
        -------
        mask : ndarray of bool, shape (n_samples,)
        """
        proba = self.predict_membership_proba(X, y, y_err=y_err, X_err=X_err, X_cov=X_cov,
                                              Xy_cov=Xy_cov, y_limit=y_limit)
        return proba[:, 1] <= INLIER_THRESHOLD

    def log_predictive_density(self, X, y, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Log posterior predictive density of each observed ``y`` given ``X``.

        ``log p(y_i | X_i, training data) = log E_posterior[(1 - P_b) L_in + P_b L_out]``
        (the mixture density, with these points' measurement errors),
        estimated over at most 1000 posterior draws.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        return self._log_predictive_density(self._new_points(
            X, y, "log_predictive_density", y_err=y_err, X_err=X_err, X_cov=X_cov,
            Xy_cov=Xy_cov))

    def _new_points(self, X, y, method, y_limit=False, **errors):
        """The model holding new points (X, y) and their errors, for ``method``;
        ``y_limit``: their censoring marks (False: ``method`` takes none)."""
        check_is_fitted(self, "posterior_")
        limit = None if y_limit is False else check_limit(y_limit, y)
        X, errors = self._new_data(X, method, **errors)
        y = check_finite_array(y, "y", (X.shape[0],))
        return self.model_.with_data(X, y, errors, check_limit_length(limit, X.shape[0]))

    def score(self, X, y, sample_weight=None, y_err=None, X_err=None, X_cov=None, Xy_cov=None):
        """Coefficient of determination R² of :meth:`predict` on (X, y).

        Measurement errors are accepted (so that metadata routing can pass
        them per fold) and validated against X, but R² is defined on the
        point predictions and does not use them.
        """
        Xv = validate_data(self, X, reset=False, dtype=np.float64)
        self._check_errors(Xv, None, y_err=y_err, X_err=X_err, X_cov=X_cov, Xy_cov=Xy_cov)
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
        # X is observed data when the true X are modelled (a population);
        # the projected likelihood conditions on it, so X is then a
        # constant (ArviZ's convention for regressors), which also lets
        # az.plot_ppc pair every observed variable with its replicates.
        observed = {"y": m.y * m.y_scale + m.y_loc}
        X = m.X * m.x_scale + m.x_loc
        if self.x_model_ == "population":
            observed = {"X": X, **observed}
        else:
            errors = {"X": X, **errors}
        return {"observed_data": observed, "constant_data": errors}


def _check_nonzero_variance(errors) -> None:
    """Refuse points whose variance about the line is exactly zero (scatter=None)."""
    zero = np.ones(len(next(v for v in errors.values() if v is not None)), dtype=bool)
    if errors["y_err"] is not None:
        zero &= errors["y_err"] == 0
    if errors["X_cov"] is not None:
        zero &= np.all(errors["X_cov"] == 0, axis=(1, 2))
    if np.any(zero):
        raise ValueError(
            f"With scatter=None, {int(zero.sum())} point(s) have zero y_err and no X "
            "error: their variance about the line is zero and the likelihood is "
            "degenerate. Give their measurement errors, or use scatter='vertical'."
        )
