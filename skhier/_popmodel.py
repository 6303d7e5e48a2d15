"""PopulationModel: a population distribution from noisy per-object values.

Each object i has a true value ``theta_i`` drawn from a population
``p(theta | alpha)`` (a family of :mod:`skhier._distributions`) and a
Gaussian measurement ``x_i ~ N(theta_i, e_i^2)``; optionally a fraction
``f`` of the objects are outliers (interlopers) whose measurements follow a
broad Gaussian background ``N(mu_b, sigma_b^2 + e_i^2)``. The true values
and the member/outlier labels are integrated out of the likelihood,

    p(x_i | alpha) = (1 - f) ∫ N(x_i | theta, e_i^2) p(theta | alpha) dtheta
                     + f N(x_i | mu_b, sigma_b^2 + e_i^2),

so the sampler (quadrature, importance sampling or emcee, chosen by the base class)
only sees the 2–5 population parameters; each
object's true value and label are drawn afterwards, conditionally on every
posterior draw. The integral is

* analytic for the normal population, ``N(x_i | mu, tau^2 + e_i^2)``
  (the "eight schools" model, Rubin 1981; Gelman et al. BDA3 §5.5);
* for the log-normal and Beta populations, composite Gauss–Legendre nodes
  in ``log theta`` / ``logit theta`` placed, once per fit, on the region
  where each object's likelihood is not negligible; the population mass
  next to a support bound — where a Beta density may diverge — is
  integrated exactly (incomplete Beta / normal CDF), and where the
  population is too narrow for the fixed nodes, Gauss–Legendre nodes on the
  population's own scale (or, for measurements far in its tail, on a window
  of +-20 Laplace widths around the mode of likelihood x population) are
  used instead (``_BoundedMarginal`` in :mod:`skhier._population`,
  next to the other collapsed-likelihood integrators). Accuracy is tested
  against ``scipy.integrate.quad``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy.special import expit, log_expit
from sklearn.base import DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metadata_routing import UNUSED
from sklearn.utils.validation import check_is_fitted

from ._base import (
    OBJECT_CHUNK_CELLS,
    BaseHierarchicalEstimator,
    PosteriorModel,
    hard_prior_bounds,
)
from ._distributions import (
    _TRANSFORM_DOMAIN,
    BetaFamily,
    BetaPrior,
    LogNormalFamily,
    LogNormalPrior,
    NormalFamily,
    NormalPrior,
    check_prior,
    clip_into_priors,
    population_density,
)
from ._docstrings import fill_doc
from ._math import log_normal_pdf, logsumexp
from ._population import make_marginal
from .selection import SelectionTerm
from .utils._checks import check_sample_weight

__all__ = ["PopulationModel"]

#: Objects from which ``sampler="auto"`` integrates the population posterior
#: by adaptive Gauss-Hermite quadrature (see :mod:`skhier._quadrature`);
#: smaller samples, whose posteriors are further from Gaussian, are
#: importance-sampled.
QUADRATURE_MIN_OBJECTS = 1000

#: Fitted per-object summaries computed on first access (cleared by ``fit``).
_LAZY_SUMMARIES = ("membership_proba_", "theta_mean_")


OUTLIER_PARAMS = {"outlier_fraction": "logit", "outlier_mean": "identity", "outlier_std": "log"}


def default_outlier_priors(x):
    """Default priors of the background component, from the data ``x``.

    ``outlier_fraction ~ Beta(1, 4)`` (outliers are a minority: mean 0.2,
    P(f > 0.5) = 6 %), ``outlier_mean ~ N(mean(x), sd(x)^2)`` and
    ``outlier_std ~ LogNormal(log sd(x), 1)``: a background about as broad
    as the whole data set, as in Hogg, Bovy & Lang (2010).
    """
    x = np.asarray(x, dtype=float)
    m = float(np.mean(x))
    s = float(np.std(x))
    if not s > 0:
        s = max(abs(m), 1.0)
    return {
        "outlier_fraction": BetaPrior(1.0, 4.0),
        "outlier_mean": NormalPrior(m, s),
        "outlier_std": LogNormalPrior(np.log(s), 1.0),
    }


class _PopulationPosterior(PosteriorModel):
    """Collapsed log-posterior of a population (+ background) model.

    Coordinates: the family's unconstrained parameters, then optionally
    ``logit_outlier_fraction, outlier_mean, log_outlier_std``.
    """

    def __init__(self, family, x, e, priors, outliers, selection=None):
        self.family = family
        self.selection = selection  # a skhier.selection.SelectionTerm, or None
        self.x = x
        self.e = e
        self.var = e**2
        self.priors = priors
        self.outliers = outliers
        self.marginal = make_marginal(family, x, e)
        self.p = family.n_params
        names = list(family.unconstrained_names)
        if outliers:
            names += ["logit_outlier_fraction", "outlier_mean", "log_outlier_std"]
        self.param_names = names

    # -- pieces -----------------------------------------------------------
    def _outlier_terms(self, u):
        z, mb, lsb = u[:, self.p], u[:, self.p + 1], u[:, self.p + 2]
        lp = (
            self.priors["outlier_fraction"].logpdf(expit(z))
            + log_expit(z)
            + log_expit(-z)
            + self.priors["outlier_mean"].logpdf(mb)
            + self.priors["outlier_std"].logpdf(np.exp(lsb))
            + lsb
        )
        return lp, z, mb, np.exp(lsb)

    def log_prior(self, u):
        lp = self.family.log_prior_unconstrained(u[:, : self.p], self.priors)
        if self.outliers:
            lp = lp + self._outlier_terms(u)[0]
        return lp

    def component_logliks(self, u, marginal=None, x=None, var=None):
        """(log(1-f) + log L_pop, log f + log L_bg) per row and object."""
        marginal = self.marginal if marginal is None else marginal
        x = self.x if x is None else x
        var = self.var if var is None else var
        params = self.family.constrain(u[:, : self.p])
        with np.errstate(all="ignore"):
            ll = marginal.loglik(params)
        if not self.outliers:
            return ll, None
        _, z, mb, sb = self._outlier_terms(u)
        lb = log_normal_pdf(x[None, :], mb[:, None], sb[:, None] ** 2 + var[None, :])
        return ll + log_expit(-z)[:, None], lb + log_expit(z)[:, None]

    def log_prob(self, theta):
        u = np.atleast_2d(theta)
        with np.errstate(all="ignore"):
            lp = self.log_prior(u)
        out = np.full(u.shape[0], -np.inf)
        ok = np.isfinite(lp)
        if ok.any():
            ll_pop, ll_bg = self.component_logliks(u[ok])
            ll = ll_pop if ll_bg is None else np.logaddexp(ll_pop, ll_bg)
            out[ok] = lp[ok] + self.sum_objects(ll) - self.log_selection(u[ok])
        return np.where(np.isfinite(out), out, -np.inf)

    def log_selection(self, u):
        """Sum over objects of log alpha_i: the detected fraction of the
        population (and background) for each object (0 without selection)."""
        if self.selection is None:
            return 0.0
        params = self.family.constrain(u[:, : self.p])
        if not self.outliers:
            return self.selection.log_alpha(params)
        _, z, mb, sb = self._outlier_terms(u)
        # The background's true values: N(mu_b, sigma_b^2) (its measurements
        # add each object's error).
        return self.selection.log_alpha_mixture(params, log_expit(-z), log_expit(z),
                                                np.stack([mb, sb], axis=-1))

    # -- starting point and named parameters --------------------------------
    def initial_point(self):
        x, e = self.x, self.e
        fam = self.family
        start = fam.moment_start(x, e)
        # Move a start outside a user prior's range just inside it.
        params = clip_into_priors(np.asarray(start, dtype=float), fam.param_names, self.priors)
        start = list(fam.unconstrain(params[None, :])[0])
        if self.outliers:
            start += [np.log(0.1 / 0.9), float(np.mean(x)), np.log(float(np.std(x)) or 1.0)]
        return np.asarray(start, dtype=float)

    def prior_bounds(self):
        """Edges of the priors that lie inside each parameter's natural range."""
        fam = self.family
        domains = {
            n: _TRANSFORM_DOMAIN[t] for n, t in zip(fam.param_names, fam.transforms, strict=True)
        }
        if self.outliers:
            domains.update(outlier_fraction=(0.0, 1.0), outlier_mean=(-np.inf, np.inf),
                           outlier_std=(0.0, np.inf))
        return {n: hard_prior_bounds(self.priors[n].support, d) for n, d in domains.items()}

    def constrain(self, theta):
        u = np.atleast_2d(theta)
        params = self.family.constrain(u[:, : self.p])
        out = {n: params[:, k] for k, n in enumerate(self.family.param_names)}
        if isinstance(self.family, BetaFamily):
            out["a"], out["b"] = self.family.shape_params(params)
        if self.outliers:
            out["outlier_fraction"] = expit(u[:, self.p])
            out["outlier_mean"] = u[:, self.p + 1].copy()
            out["outlier_std"] = np.exp(u[:, self.p + 2])
        return out

    def unconstrain(self, named):
        params = np.stack([named[n] for n in self.family.param_names], axis=-1)
        cols = [self.family.unconstrain(params)]
        if self.outliers:
            f = named["outlier_fraction"]
            cols.append(
                np.stack(
                    [np.log(f) - np.log1p(-f), named["outlier_mean"], np.log(named["outlier_std"])],
                    axis=-1,
                )
            )
        return np.concatenate(cols, axis=-1)

    def population_array(self, named):
        return np.stack([named[n] for n in self.family.param_names], axis=-1)

    def draw_latents(self, named, rng):
        """True values ``theta`` (and the ``outlier`` labels) of the training objects."""
        u = self.unconstrain(named)
        params = self.family.constrain(u[:, : self.p])
        with np.errstate(all="ignore"):
            theta = self.marginal.sample(params, rng)
        if not self.outliers:
            return {"theta": theta}
        ll_pop, ll_bg = self.component_logliks(u)
        p_out = np.exp(ll_bg - np.logaddexp(ll_pop, ll_bg))
        outlier = rng.uniform(size=p_out.shape) < p_out
        # An outlier's true value, from the background's conditional N(mean, var).
        sb2 = named["outlier_std"][:, None] ** 2
        w = sb2 / (sb2 + self.var[None, :])
        mean = named["outlier_mean"][:, None] + w * (self.x[None, :] - named["outlier_mean"][:, None])
        theta_bg = mean + np.sqrt(w * self.var[None, :]) * rng.standard_normal(mean.shape)
        return {"theta": np.where(outlier, theta_bg, theta), "outlier": outlier}


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------
_DISTRIBUTIONS = {"normal": NormalFamily, "lognormal": LogNormalFamily, "beta": BetaFamily}


@fill_doc
class PopulationModel(DensityMixin, BaseHierarchicalEstimator):
    """Population distribution of a quantity measured with noise, per object.

    Each object i has a true value ``theta_i`` from a population
    ``p(theta | alpha)`` and a measurement ``x_i ~ N(theta_i, e_i^2)`` with
    known error ``e_i`` (``X_err``). The model infers the population
    parameters ``alpha`` and, through them, each object's true value, which
    is pulled towards the population ("shrinkage"). Optionally a fraction of
    the objects are outliers (e.g. interlopers in a galaxy cluster's
    velocity list) drawn from a broad Gaussian background. True values and
    labels are integrated out of the likelihood, so the sampler only sees
    the 2–5 population parameters; see the module docstring of
    ``skhier._popmodel`` for the integrals (computed in ``skhier._population``).

    Parameters
    ----------
    distribution : {"normal", "lognormal", "beta"}, default="normal"
        The population family:

        - ``"normal"``: ``theta ~ N(mu, tau^2)``; parameters ``mu``, ``tau``
          (same units as X). Velocity dispersion of a galaxy cluster, the
          "eight schools".
        - ``"lognormal"``: ``log theta ~ N(mu, sigma^2)``, theta > 0;
          parameters ``mu`` (natural log of the median) and ``sigma`` (in
          natural-log units). Errors are in the measured (linear) space, so
          measurements may be zero or negative.
        - ``"beta"``: ``theta ~ Beta(a, b)`` on [0, 1], parameterised by
          ``mean = a / (a + b)`` and ``concentration = a + b`` (the
          posterior also holds ``a`` and ``b``). Measurements may lie
          outside [0, 1]: that is noise, not an error.
    outliers : bool, default=False
        Add a background component ``x_i ~ N(outlier_mean, outlier_std^2 +
        e_i^2)`` with mixing fraction ``outlier_fraction``.
    priors : dict or None, default=None
        Priors that replace the defaults, as ``{name: spec}`` where ``name``
        is a population parameter (above) or ``"outlier_fraction"``,
        ``"outlier_mean"``, ``"outlier_std"``, and ``spec`` is a tuple
        ``("normal", loc, scale)``, ``("halfnormal", scale)``,
        ``("halfcauchy", scale)``, ``("lognormal", mu, sigma)``,
        ``("uniform", low, high)`` or ``("beta", a, b)``. Priors on positive
        parameters must put no mass below 0. Defaults (``m``: median of X,
        ``s``: 1.4826 x its median absolute deviation):

        - normal: ``mu ~ N(m, (10 s)^2)``, ``tau ~ Half-Cauchy(0, s)``
          (Gelman 2006);
        - lognormal: ``mu ~ N(log m+, 5^2)`` (``m+`` the median of the
          positive values), ``sigma ~ Half-Cauchy(0, 1)``;
        - beta: ``mean ~ Uniform(0, 1)``, ``concentration ~ LogNormal(log
          10, 1.5^2)``;
        - background: ``outlier_fraction ~ Beta(1, 4)``, ``outlier_mean ~
          N(mean(X), sd(X)^2)``, ``outlier_std ~ LogNormal(log sd(X), 1)``.

        The data-based defaults only set scales; pass explicit priors when
        the answer must not depend on the data through the prior (e.g. in
        simulation-based calibration).
    selection : DetectionProbability, Window, Injections, callable or None, default=None
        How the objects were selected (:mod:`skhier.selection`): a detection
        probability as a function of the true value (a plain callable
        ``P_det(theta)`` is accepted too), a window in which values were
        observable, or a survey's injection-recovery set. The likelihood of
        each object is then divided by the detected fraction of the
        population (and of the background, with ``outliers=True``), so the
        population parameters describe all objects, not only the detected
        ones (Mandel, Farr & Gair 2019). None: the sample is complete.
    sampler : {"auto", "quadrature", "importance", "emcee"}, default="auto"
        ``"quadrature"``: adaptive Gauss–Hermite quadrature over the
        population posterior around its Laplace fit (``skhier._quadrature``,
        at most 4 parameters): posterior moments with no Monte Carlo error
        (``quadrature_error_``), ``n_importance`` draws from the quadrature
        posterior. ``"importance"``: independent draws from a Student-t
        approximation of the posterior around its mode, reweighted by the
        exact posterior (``skhier._importance``); reliable when the Pareto-k
        diagnostic is below 0.7. ``"emcee"``: the affine-invariant ensemble
        sampler. ``"auto"``: quadrature for 1 000 objects or more (when the
        successive rules agree within 0.02 posterior sd), else importance
        sampling, falling back to emcee when its diagnostics fail. The
        posterior is the same; quadrature and importance sampling are much
        cheaper per effective draw for these 2–5 parameter posteriors.
    n_importance : int, default=2000
        Proposal draws of the importance sampler; draws kept after
        quadrature.
    %(emcee_settings)s

    Attributes
    ----------
    population_params_ : dict of float
        Posterior medians of the population parameters (and, for
        ``"beta"``, of ``a`` and ``b``).
    outlier_fraction_ : float or None
        Posterior median of the background fraction; None without outliers.
    selection_n_effective_ : float or None
        With ``selection=Injections(...)``: the effective number of
        injections behind the detected fraction (median over posterior
        draws); a :class:`~skhier.selection.SelectionWarning` is raised when
        it is below 4 times the number of objects (Farr 2019). None
        otherwise.
    selection_loglik_variance_ : float
        Monte Carlo variance of the log-likelihood due to the injections,
        ``N_obs^2 / selection_n_effective_`` (0 without injections).
    membership_proba_ : ndarray of shape (n_samples, 2)
        Posterior probability that each training object belongs to the
        population (column 0) or the background (column 1); computed on
        first access.
    theta_mean_ : ndarray of shape (n_samples,)
        Posterior mean true value of each training object, given that it
        belongs to the population (:meth:`predict` on the training data);
        computed on first access. After quadrature the average over the
        posterior uses the last rule's nodes and weights (deterministic),
        otherwise at most 1 000 of the stored draws.
    priors_ : dict
        The priors used (defaults completed), as ``Prior`` objects.
    posterior_ : dict of ndarray
        Posterior draws of every parameter (first axis: draw).
    sampler_ : str
        The sampler that produced the draws (``"quadrature"``,
        ``"importance"`` or ``"emcee"``).
    quadrature_error_ : dict or None
        After quadrature: per sampled coordinate, the larger change of its
        posterior mean and sd between the last two Gauss–Hermite rules, in
        posterior sd (an estimate of the quadrature's error); None otherwise.
    pareto_k_ : float or None
        Pareto-k of the importance weights (None after emcee).
    acceptance_fraction_, autocorr_time_, n_effective_, converged_
        Sampler diagnostics (see :class:`BaseHierarchicalEstimator`); after
        importance sampling ``n_effective_`` holds the importance-sampling
        effective sample sizes and ``chain_`` the resampled draws as one
        chain.
    n_features_in_ : int
        Always 1.

    See Also
    --------
    RobustLineMixture : the same outlier model around a trend.

    Notes
    -----
    X holds one quantity per object, in one column. The model uses X in its
    own units (its priors are stated in them), so do not rescale X outside
    the estimator unless ``X_err`` is rescaled alike.

    :meth:`predict` and :meth:`score_samples` without ``X_err`` treat the
    new values as exact.

    References
    ----------
    .. [1] Rubin, D. B. (1981), "Estimation in parallel randomized
       experiments", J. Educ. Stat. 6, 377.
    .. [2] Gelman, A. (2006), "Prior distributions for variance parameters
       in hierarchical models", Bayesian Analysis 1, 515.
    .. [3] Gelman, A. et al. (2013), Bayesian Data Analysis, 3rd ed., §5.5.

    Examples
    --------
    >>> from skhier import PopulationModel
    >>> from skhier.datasets import load_eight_schools
    >>> data = load_eight_schools()
    >>> model = PopulationModel(random_state=0).fit(data.X, X_err=data.X_err)
    >>> sorted(model.population_params_)
    ['mu', 'tau']
    >>> bool(5 < model.population_params_["mu"] < 11)
    True
    >>> model.predict(data.X, X_err=data.X_err).shape
    (8,)
    """

    _supports_quadrature = True

    _parameter_constraints: dict = {
        **BaseHierarchicalEstimator._parameter_constraints,
        "distribution": [StrOptions(set(_DISTRIBUTIONS))],
        "outliers": ["boolean"],
        "priors": [dict, None],
        "selection": [None, callable, object],  # checked against the data in fit
    }

    # Only X_err applies to a single measured quantity.
    __metadata_request__fit = {"X_err": True, "y_err": UNUSED, "X_cov": UNUSED, "Xy_cov": UNUSED}
    __metadata_request__score = {
        "X_err": True, "y_err": UNUSED, "X_cov": UNUSED, "Xy_cov": UNUSED,
    }

    def __init__(
        self,
        distribution="normal",
        *,
        outliers=False,
        priors=None,
        selection=None,
        **sampler_settings,
    ):
        super().__init__(**sampler_settings)
        self.distribution = distribution
        self.outliers = outliers
        self.priors = priors
        self.selection = selection

    # -- validation ---------------------------------------------------------
    def _validate_x(self, X, X_err, *, reset, method="fit"):
        x, e = self._one_column(X, X_err, reset=reset, method=method,
                                what="one measured quantity per object")
        return x, np.zeros(x.size) if e is None else e

    def _check_support(self, family, x, e):
        lo, hi = family.support
        bad = (e == 0) & ((x < lo) | (x > hi) | ((x == lo) & (family.name == "lognormal")))
        if np.any(bad):
            raise ValueError(
                f"X has {int(bad.sum())} value(s) outside the support {family.support} of "
                f"the {family.name!r} population with no measurement error; give X_err "
                "for noisy measurements."
            )

    def _resolve_priors(self, family, x):
        user = dict(self.priors or {})
        pop_user = {k: v for k, v in user.items() if k not in OUTLIER_PARAMS}
        priors = family.default_priors(x)
        priors.update(family.check_priors(pop_user))
        if self.outliers:
            priors.update(default_outlier_priors(x))
            priors.update({name: check_prior(user[name], name, transform)
                           for name, transform in OUTLIER_PARAMS.items() if name in user})
        elif any(k in OUTLIER_PARAMS for k in user):
            raise ValueError("priors for outlier parameters need outliers=True.")
        return priors

    # -- fitting ------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    @fill_doc
    def fit(self, X, y=None, X_err=None, sample_weight=None):
        """Sample the posterior of the population parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
            Measured values, one object per row.
        y : None
            Ignored.
        X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None
            Standard deviations of the measurements (0: exact).
        %(sample_weight)s
            Default priors derived from the data (see ``priors``) use the
            rows with positive weight, unweighted; give the priors
            explicitly for the posterior to equal that of repeated rows
            exactly. Not available with a ``selection``.

        Returns
        -------
        self : PopulationModel
        """
        x, e = self._validate_x(X, X_err, reset=True)
        weights = check_sample_weight(sample_weight, x.size)
        if weights is not None and self.selection is not None:
            raise ValueError(
                "sample_weight is not available with a selection function: the detected "
                "fraction would have to be weighted as well. Pass sample_weight=None."
            )
        family = _DISTRIBUTIONS[self.distribution]()
        self._check_support(family, x, e)
        priors = self._resolve_priors(family, x if weights is None else x[weights > 0])
        rng = check_random_state(self.random_state)
        sel = None
        if self.selection is not None:
            sel = SelectionTerm(self.selection, family, x, e if np.any(e > 0) else None,
                                n_obs=x.size, support_values=x)
        model = _PopulationPosterior(family, x, e, priors, self.outliers, sel)
        self._set_sample_weight(model, weights, x.size)
        self._sample(model, rng)
        self.family_ = family
        self.selection_n_effective_, self.selection_loglik_variance_ = (
            (None, 0.0) if sel is None
            else sel.diagnostics(family.constrain(self._draws_u()[:, : family.n_params])))
        self.priors_ = priors
        names = list(family.param_names) + (["a", "b"] if family.name == "beta" else [])
        self.population_params_ = {n: self._posterior_median(n) for n in names}
        self.outlier_fraction_ = (
            self._posterior_median("outlier_fraction") if self.outliers else None
        )
        # Per-object summaries are computed on first access (see the properties).
        for name in _LAZY_SUMMARIES:
            self.__dict__.pop(name, None)
        return self

    @cached_property
    def membership_proba_(self):
        """Posterior probability that each training object belongs to the
        population (column 0) or the background (column 1), shape
        (n_samples, 2); computed on first access."""
        check_is_fitted(self, "posterior_")
        return self._membership_proba(self._training_objects())

    @cached_property
    def theta_mean_(self):
        """Posterior mean true value of each training object given membership
        of the population, shape (n_samples,); computed on first access."""
        check_is_fitted(self, "posterior_")
        return self._posterior_mean_theta(*self._training_objects(), self.model_.marginal)

    def _quadrature_by_default(self, model):
        # Thousands of objects make the posterior of the 2-4 parameters close
        # to Gaussian: adaptive Gauss-Hermite converges with few rules.
        return model.x.size >= QUADRATURE_MIN_OBJECTS and len(model.param_names) <= 4

    # -- the per-object hook (see BaseHierarchicalEstimator._object_logliks) ---
    def _object_logliks(self, objects, u, rows):
        """(population, background) log-likelihood tables of the measurements
        ``rows`` of ``objects = (x, e)``, true values integrated out."""
        x, e = objects
        marginal = make_marginal(self.family_, x[rows], e[rows])
        return self.model_.component_logliks(u, marginal, x[rows], e[rows] ** 2)

    def _n_objects(self, objects):
        return objects[0].size

    def _training_objects(self):
        return self.model_.x, self.model_.e

    def _has_background(self):
        return self.model_.outliers

    def _prepare_object_draws(self, draws):
        return self.model_.unconstrain(draws)

    def _draws_u(self):
        return self._prepare_object_draws(self._object_draws())

    def _replicate(self, params, rng):
        """New true values from the population (or the background), measured
        with the training errors: {"X": (n_draws, n_objects, 1)}."""
        m = self.model_
        u = m.unconstrain(params)
        n = m.x.size
        with np.errstate(all="ignore"):
            theta = self.family_.rvs(self.family_.constrain(u[:, : m.p]), size=(n,), random_state=rng)
        theta = np.asarray(theta, dtype=float).reshape(len(u), n)
        if m.outliers:
            _, z, mb, sb = m._outlier_terms(u)
            outlier = rng.uniform(size=theta.shape) < expit(z)[:, None]
            theta = np.where(outlier, mb[:, None] + sb[:, None] * rng.standard_normal(theta.shape), theta)
        x = theta + m.e[None, :] * rng.standard_normal(theta.shape)
        return {"X": x[:, :, None]}

    def _posterior_average_points(self):
        """Population parameters (k, p) and weights (k,) of the posterior
        average behind :meth:`_posterior_mean_theta`.

        After quadrature: the last rule's nodes and posterior weights (a
        deterministic average, as accurate as the quadrature's moments, over
        tens of nodes instead of a thousand draws); otherwise at most
        ``MAX_SUMMARY_DRAWS`` stored draws, equally weighted.
        """
        p = self.family_.n_params
        rule = getattr(self, "_quadrature_rule", None)
        if rule is not None:
            nodes, weights = rule
            keep = weights > 0
            return self.family_.constrain(nodes[keep][:, :p]), weights[keep] / weights[keep].sum()
        u = self._draws_u()
        return self.family_.constrain(u[:, :p]), np.full(len(u), 1.0 / len(u))

    def _posterior_mean_theta(self, x, e, marginal=None):
        """Posterior mean of each object's true value; ``marginal``: the
        collapsed likelihood already set up for exactly these objects (the
        training data), used in chunks of draws instead of being rebuilt per
        chunk of objects."""
        params, weights = self._posterior_average_points()
        if marginal is not None:
            total = np.zeros(x.size)
            step = max(1, OBJECT_CHUNK_CELLS // max(x.size, 1))
            for start in range(0, len(params), step):
                chunk = slice(start, start + step)
                with np.errstate(all="ignore"):
                    total += weights[chunk] @ marginal.posterior_mean(params[chunk])
            return total
        out = np.empty(x.size)
        for rows in self._object_row_chunks((x, e), len(params)):
            marginal = make_marginal(self.family_, x[rows], e[rows])
            with np.errstate(all="ignore"):
                out[rows] = weights @ marginal.posterior_mean(params)
        return out

    def predict(self, X, X_err=None):
        """Posterior mean true value of each object under the fitted population.

        The measurement is combined with the population (shrinkage) and the
        result averaged over the posterior of the population parameters.
        With ``outliers=True`` this is the value given membership of the
        population (see :meth:`predict_membership_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
        X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None
            Measurement errors; None means exact values (returned unchanged).

        Returns
        -------
        theta : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "posterior_")
        x, e = self._validate_x(X, X_err, reset=False, method="predict")
        self._check_support(self.family_, x, e)
        return self._posterior_mean_theta(x, e)

    def predict_membership_proba(self, X, X_err=None):
        """Probability that each object belongs to the population or the background.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
        X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0: population member; column 1: background (outlier).
            Rows sum to 1; without ``outliers`` column 1 is 0.
        """
        check_is_fitted(self, "posterior_")
        x, e = self._validate_x(X, X_err, reset=False, method="predict_membership_proba")
        return self._membership_proba((x, e))

    def _log_predictive_density(self, objects):
        """``log Σ_k w_k p(object | alpha_k)`` over the last quadrature rule's
        nodes and weights after quadrature (deterministic, as for
        ``theta_mean_``, over tens of nodes instead of a thousand draws); the
        base class's mean over stored draws otherwise."""
        rule = getattr(self, "_quadrature_rule", None)
        if rule is None or not self._n_objects(objects):
            return super()._log_predictive_density(objects)
        nodes, weights = rule
        keep = weights > 0
        log_w = np.log(weights[keep] / weights[keep].sum())[:, None]
        table = self._object_table(
            objects, lambda *t: logsumexp(self._mixture_loglik(*t) + log_w, axis=0),
            draws=self.model_.constrain(nodes[keep]))
        return table - self._object_log_jacobian(objects)

    def score_samples(self, X, X_err=None):
        """Log posterior predictive density of each measurement.

        ``log (1/S) Σ_s p(x_i | alpha_s)`` over posterior draws (after
        quadrature, ``log Σ_k w_k p(x_i | alpha_k)`` over the rule's nodes
        and weights), with the measurement error ``X_err`` (None: exact
        values) and the background component included.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
        X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "posterior_")
        x, e = self._validate_x(X, X_err, reset=False, method="score_samples")
        return self._log_predictive_density((x, e))

    def score(self, X, y=None, sample_weight=None, X_err=None):
        """Mean log posterior predictive density of the measurements.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
        X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None

        Returns
        -------
        score : float
        """
        ll = self.score_samples(X, X_err=X_err)
        return float(np.average(ll, weights=sample_weight))

    def _data_groups(self):
        """Training values and their errors (0: exact) for :meth:`to_inference_data`."""
        return {"observed_data": {"X": self.model_.x[:, None]},
                "constant_data": {"X_err": self.model_.e[:, None]}}

    @fill_doc
    def population_density(self, grid=None, *, level=0.9, n_grid=200):
        """Posterior density of the population on a grid, with a credible band.

        Parameters
        ----------
        grid : array-like of shape (n_grid,), default=None
            Values of the true quantity. Default: ``n_grid`` points over the
            range of the training data, widened by 10 % and cut to the
            support.
        %(density_band)s

        Returns
        -------
        %(density_bunch)s
        """
        check_is_fitted(self, "posterior_")
        params = self.model_.population_array(self._summary_draws())
        return population_density(self.family_, params, grid, self.model_.x, level=level,
                                  n_grid=n_grid)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
