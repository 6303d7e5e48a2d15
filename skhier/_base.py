"""The shared skeleton of every skhier estimator.

:class:`PosteriorMixin` owns what every estimator has in common (BayesianGMM's
Gibbs chains included): posterior storage, :meth:`sample_posterior`,
summaries and the ArviZ export, the per-object layer (membership,
predictive densities, pointwise log-likelihood) over one model hook, and
the requests and checks of measurement errors. :class:`BaseHierarchicalEstimator`
adds what the MCMC estimators share: the sampler settings, declared once,
their validation, the one sampler dispatch and storage path, and
diagnostics. Each model module only describes its own maths through a small
*model object* (see :class:`PosteriorModel`) and the per-object hook.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._importance import _ess_per_param, run_importance
from ._math import logmeanexp, logsumexp, row_chunks
from ._quadrature import DEFAULT_LEVELS, run_quadrature
from ._sampling import SamplerResult, find_map, laplace_covariance, newton_map, run_emcee
from .utils._checks import check_errors, check_magnitude, check_sample_weight
from .utils._warnings import warn

__all__ = [
    "BaseHierarchicalEstimator", "PosteriorMixin", "PosteriorModel", "PriorBoundWarning", "MissingErrorsWarning",
    "ERROR_ARGS",
]

#: Measurement-error keyword arguments shared by every estimator.
ERROR_ARGS = ("y_err", "X_err", "X_cov", "Xy_cov")

#: Methods besides ``fit`` and ``score`` through which scikit-learn's
#: meta-estimators route metadata (``Pipeline.predict(X, X_err=...)``).
ROUTED_METHODS = ("predict", "predict_proba", "score_samples")

# Per-object quantities averaged over the posterior use at most this many
# draws (the Monte Carlo error of such an average, <= 0.5/sqrt(1000) ~ 0.016
# for a probability, is far below the posterior spread it summarises).
MAX_SUMMARY_DRAWS = 1000

# Per-object tables (draws x rows x the model's cost per cell, see
# BaseHierarchicalEstimator._object_cost) are evaluated in chunks of rows of at
# most this many cells (~32 MB of float64), whatever the number of rows.
OBJECT_CHUNK_CELLS = 4_000_000

# A posterior "hits" a hard prior bound when more than BOUND_MASS of its draws
# lie within BOUND_BAND posterior standard deviations of the bound. For a
# Gaussian-shaped posterior that is the case once the bound is within about
# one standard deviation of the mode (at two, the mass in the band is 0.5 %).
BOUND_BAND = 0.1
BOUND_MASS = 0.02


class PriorBoundWarning(UserWarning):
    """The posterior of a parameter is piled up against a hard prior bound.

    Raised after a fit when a bound that the prior imposes (a uniform
    prior's edge, not a parameter's natural range such as a dispersion's 0)
    cuts into the posterior: the result then reflects the prior's range as
    much as the data. Widen the prior, or report the result as a limit.
    """


class MissingErrorsWarning(UserWarning):
    """A model fitted with measurement errors was given new data without them.

    The new points are then treated as exactly measured, which changes
    membership probabilities and predictive densities. Pass the errors to the
    method, or turn on scikit-learn's metadata routing so that ``Pipeline``,
    ``cross_validate`` and ``GridSearchCV`` pass them for you.
    """


def warn_missing_errors(estimator, method: str, **errors) -> None:
    """Warn (:class:`MissingErrorsWarning`) when ``method`` of an estimator
    fitted with measurement errors received none of ``errors``.

    ``estimator._fit_error_names`` lists the error arguments given to ``fit``.
    """
    fitted = getattr(estimator, "_fit_error_names", ())
    if not fitted or any(value is not None for value in errors.values()):
        return
    names = " / ".join(fitted)
    args = ", ".join(f"{name}=..." for name in fitted)
    warn(
        f"{type(estimator).__name__} was fitted with measurement errors ({names}) but "
        f"{method} got none: these points are treated as exactly measured. Pass "
        f"{method}(X, ..., {args}); in a Pipeline, cross_validate or GridSearchCV, call "
        "sklearn.set_config(enable_metadata_routing=True) and pass the errors with "
        "the data (params={...} or fit(X, ..., " + args + ")) so that they are "
        "routed and sliced per fold.",
        MissingErrorsWarning,
    )


def error_names(**errors) -> tuple[str, ...]:
    """The names of the error arguments that were given (not None)."""
    return tuple(name for name, value in errors.items() if value is not None)


def _user_label(name: str) -> str:
    """A sampled coordinate named for the user: ``log_outlier_std`` ->
    ``outlier_std (sampled as its log)``; plain names are unchanged."""
    for prefix, how in (("logit_", "its logit"), ("log_", "its log"),
                        ("z_", "a transformed coordinate")):
        if name.startswith(prefix):
            return f"{name[len(prefix):]} (sampled as {how})"
    return name


def hard_prior_bounds(support, domain) -> tuple[float, float]:
    """The bounds of a prior ``support`` that lie inside the parameter's ``domain``.

    Returns ``(low, high)`` with ``-inf``/``inf`` for a side where the prior
    adds no bound of its own.

    Examples
    --------
    >>> hard_prior_bounds((0.0, 50.0), (0.0, float("inf")))
    (-inf, 50.0)
    """
    low = float(support[0]) if support[0] > domain[0] else -np.inf
    high = float(support[1]) if support[1] < domain[1] else np.inf
    return low, high


def prior_bound_messages(posterior: dict, bounds: dict) -> list[str]:
    """Messages for each parameter whose draws pile up against a hard prior bound.

    Parameters
    ----------
    posterior : dict of str to ndarray
        Posterior draws of each named parameter (draws on axis 0).
    bounds : dict of str to (float, float)
        Hard prior bounds ``(low, high)`` per parameter (infinite: none);
        for a parameter with several columns (draws of shape (n, d)),
        ``low``/``high`` may be arrays of length d.

    Returns
    -------
    list of str
        One message per parameter and bound that the posterior hits.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> draws = {"mu": np.abs(rng.normal(size=4000))}  # piled up against 0
    >>> prior_bound_messages(draws, {"mu": (0.0, 10.0)})[0][:40]
    'the posterior of mu is piled up against '
    >>> prior_bound_messages({"mu": rng.normal(5.0, 1.0, 4000)}, {"mu": (0.0, 10.0)})
    []
    """
    messages = []
    for name, (low, high) in bounds.items():
        if name not in posterior:
            continue
        x = np.asarray(posterior[name], dtype=float).reshape(len(posterior[name]), -1)
        lows = np.broadcast_to(np.asarray(low, dtype=float), x.shape[1:])
        highs = np.broadcast_to(np.asarray(high, dtype=float), x.shape[1:])
        for j in range(x.shape[1]):
            label = name if x.shape[1] == 1 else f"{name}[{j}]"
            col = x[:, j]
            band = BOUND_BAND * float(np.std(col))
            for side, edge, mass in (
                ("lower", lows[j], np.mean(col <= lows[j] + band)),
                ("upper", highs[j], np.mean(col >= highs[j] - band)),
            ):
                if np.isfinite(edge) and mass > BOUND_MASS:
                    messages.append(
                        f"the posterior of {label} is piled up against the {side} bound "
                        f"{edge:g} of its prior ({100 * mass:.1f}% of the draws within "
                        f"{BOUND_BAND:g} posterior sd of it): the result depends on that "
                        "bound; widen the prior or report a limit."
                    )
    return messages


class PosteriorModel:
    """Interface of the model objects that estimators hand to the sampler.

    A model is a log-density over a small unconstrained vector plus the
    functions that turn draws of that vector into named parameters and that
    draw per-object latents given parameters. Subclasses are module-level
    classes holding only arrays, so they pickle.

    Attributes
    ----------
    param_names : list of str
        Names of the unconstrained coordinates the sampler sees.
    """

    param_names: list[str]

    #: Each object's weight in the likelihood, set from ``fit``'s
    #: ``sample_weight`` by :meth:`BaseHierarchicalEstimator._set_sample_weight`;
    #: None means every weight is 1.
    sample_weight: np.ndarray | None = None

    def sum_objects(self, table: np.ndarray, rows=slice(None)) -> np.ndarray:
        """Sum over objects of a (draws, objects) log-likelihood table.

        The one place where sample weights enter a likelihood: each object's
        log-likelihood is multiplied by its weight (``rows`` says which
        objects the table's columns are). A zero-weight object contributes
        nothing, even where its log-likelihood is -inf.
        """
        if self.sample_weight is None:
            return table.sum(axis=1)
        w = self.sample_weight[rows]
        return np.where(w > 0, table, 0.0) @ w

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """Log posterior (up to a constant) for ``theta`` of shape (k, p)."""
        raise NotImplementedError

    def initial_point(self) -> np.ndarray:
        """A starting point for the MAP search, shape (p,)."""
        raise NotImplementedError

    def constrain(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named parameters in user units, each with the draws on axis 0."""
        raise NotImplementedError

    def draw_latents(self, params: dict[str, np.ndarray], rng) -> dict[str, np.ndarray]:
        """Per-object latent draws, one per parameter draw (axis 0)."""
        return {}

    def prior_bounds(self) -> dict[str, tuple[float, float]]:
        """Hard bounds ``(low, high)`` that the priors put on named parameters.

        Only bounds inside a parameter's natural range count (a uniform
        prior's edges, not a dispersion's 0); the fit warns with
        :class:`PriorBoundWarning` when the posterior piles up against one.
        """
        return {}


class PosteriorMixin:
    """Posterior storage and access shared by every skhier estimator.

    Whatever the sampler (emcee, importance sampling, BayesianGMM's Gibbs
    chains), a fit hands its draws to :meth:`_set_posterior` with the layout
    of its chains; this mixin then provides ``posterior_``, ``n_draws_``,
    :meth:`sample_posterior`, :meth:`summary`, :meth:`to_inference_data` and
    the per-object layer (membership probabilities, log predictive
    densities, the pointwise log-likelihood) over the hook
    :meth:`_object_logliks`. Estimators fill in small hooks:
    :meth:`_object_logliks` and its companions (:meth:`_training_objects`,
    :meth:`_n_objects`, ...), :meth:`_draw_latents` (per-object latents for
    given draws), :meth:`_sample_stats`, :meth:`_data_groups`,
    :meth:`_inference_dims` and :meth:`_summary_axis_labels`.
    """

    # Measurement errors are requested metadata by default: with
    # ``sklearn.set_config(enable_metadata_routing=True)`` meta-estimators
    # route them to fit and score without any set_*_request call.
    # So is ``sample_weight`` (fit weights the likelihood, score the mean).
    __metadata_request__fit = {name: True for name in (*ERROR_ARGS, "sample_weight")}
    __metadata_request__score = {name: True for name in (*ERROR_ARGS, "sample_weight")}

    #: Fewest chains for an R-hat in :meth:`summary` (see
    #: :func:`posterior_diagnostics`): 2 by default, 1 for a sampler whose
    #: single chain is a Markov chain (its split halves are compared).
    _rhat_min_chains = 2

    def __init_subclass__(cls, **kwargs):
        # Every other routed method that takes metadata requested for fit (the
        # measurement errors, ...) requests it too, so that
        # ``Pipeline.predict(X, X_err=...)`` routes it; this must run before
        # scikit-learn's hook builds the ``set_*_request`` methods.
        fit_request = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if attr.endswith("__metadata_request__fit"):
                    fit_request.update(value)
        requested = [name for name, value in fit_request.items() if value is True]
        for method in ROUTED_METHODS:
            func = getattr(cls, method, None)
            if func is None:
                continue
            params = inspect.signature(func).parameters
            request = {name: True for name in requested if name in params}
            if request:
                setattr(cls, f"_skhier__metadata_request__{method}", request)
        super().__init_subclass__(**kwargs)

    def _set_posterior(self, posterior: dict, *, n_chains: int, chain_major: bool) -> None:
        """Store the draws ``posterior`` (name -> array, draws on axis 0).

        ``n_chains`` chains are stored either chain after chain
        (``chain_major``: Gibbs chains) or interleaved step by step (emcee's
        flat chain, one chain per walker).
        """
        self.posterior_ = posterior
        self._chain_layout = (int(n_chains), bool(chain_major))

    @property
    def n_draws_(self) -> int:
        check_is_fitted(self, "posterior_")
        return len(next(iter(self.posterior_.values())))

    def _draws_by_chain(self, draws) -> np.ndarray:
        """Stored draws (n_draws, ...) as (n_chains, n_per_chain, ...)."""
        n_chains, chain_major = getattr(self, "_chain_layout", (1, True))
        draws = np.asarray(draws)
        if chain_major:
            return draws.reshape((n_chains, -1) + draws.shape[1:])
        return np.swapaxes(draws.reshape((-1, n_chains) + draws.shape[1:]), 0, 1)

    # -- measurement errors and new rows ------------------------------------------
    def _check_errors(self, X, method, *, allow_zero=True, **errors) -> dict:
        """The measurement errors of the rows ``X``, validated (``check_errors``).

        ``method="fit"`` records which errors were given; another method's
        name warns (:class:`MissingErrorsWarning`) when the model was fitted
        with errors and that method got none; None only validates.
        """
        checked = check_errors(X.shape[0], X.shape[1], allow_zero=allow_zero, **errors)
        if method == "fit":
            self._fit_error_names = error_names(**errors)
        elif method is not None:
            warn_missing_errors(self, method, **errors)
        return checked

    def _one_column(self, X, X_err, *, reset, what, method=None, allow_zero=True):
        """``(x, e)`` of a one-column X (one measured quantity per object):
        values and standard deviations, shape (n,); ``e`` is None without
        ``X_err``. ``what`` names the column in the error for several columns."""
        X = validate_data(self, X, reset=reset, dtype=np.float64,
                          ensure_min_samples=2 if reset else 1)
        if X.shape[1] != 1:
            raise ValueError(f"X must have a single column ({what}), got {X.shape[1]} columns.")
        check_magnitude(X, "X")
        cov = self._check_errors(X, "fit" if reset else method, X_err=X_err,
                                 allow_zero=allow_zero)["X_cov"]
        return X[:, 0].copy(), None if cov is None else np.sqrt(cov[:, 0, 0])

    def _new_data(self, X, method, **errors):
        """``(X, errors)`` of new rows for a fitted model's ``method``: X checked
        against the training data (``validate_data(reset=False)``)."""
        check_is_fitted(self, "posterior_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X, self._check_errors(X, method, **errors)

    # -- sample_posterior ---------------------------------------------------
    def sample_posterior(self, n_samples: int = 1, random_state=None) -> dict:
        """Draw from the posterior, per-object latents included.

        Parameters
        ----------
        n_samples : int, default=1
            Number of joint draws. Stored draws are taken without replacement
            while there are enough of them, with replacement otherwise.
        random_state : int, RandomState instance or None, default=None
            Seeds the choice of draws and the latent draws.

        Returns
        -------
        samples : dict
            Maps every parameter name to an array whose first axis has length
            ``n_samples``. Per-object latents of the training data (see the
            estimator's docstring) are drawn conditionally on each
            hyperparameter draw.
        """
        rng = check_random_state(random_state)
        idx = self._draw_indices(n_samples, rng)
        params = {k: v[idx].copy() for k, v in self.posterior_.items()}
        params.update(self._draw_latents(idx, params, rng))
        return params

    def _draw_indices(self, n_samples, rng) -> np.ndarray:
        """``n_samples`` indices of stored draws (without replacement while
        there are enough), after checking ``n_samples``."""
        check_is_fitted(self, "posterior_")
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral):
            raise TypeError(f"n_samples must be an integer, got {type(n_samples).__name__}.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
        n = self.n_draws_
        return rng.choice(n, n_samples, replace=n_samples > n)

    def _draw_latents(self, idx, params: dict, rng) -> dict:
        """Per-object latents of the training data for the stored draws ``idx``
        (``params`` holds those draws); ``rng`` is a ``RandomState``."""
        return self.model_.draw_latents(params, rng)

    def _replicate(self, params: dict, rng) -> dict:
        """Replicated training data, {observed variable: (n_draws, ...)}, one per draw."""
        raise NotImplementedError(
            f"{type(self).__name__} does not draw replicated data yet."
        )

    def sample_posterior_predictive(self, n_samples: int = 100, random_state=None, *,
                                    draw=None) -> dict:
        """Replicated data sets from the posterior predictive distribution.

        Each replicate takes one posterior draw of the population
        parameters, draws new true values for the training objects from the
        population (and new outlier/background labels), and measures them
        with the training data's measurement errors. Comparing a statistic
        of the replicates with that of the data is a posterior predictive
        check (see :func:`skhier.plotting.plot_posterior_predictive` and
        ``to_inference_data(posterior_predictive=True)`` for ``az.plot_ppc``).
        What is replicated, per estimator: ``PopulationModel`` the
        measurements ``X``; ``RobustLineMixture`` ``y`` at the measured X
        (and ``X`` too when the true X have a population model);
        ``HierarchicalDistanceEstimator`` the ``parallax``; ``BayesianGMM``
        the points ``X``; ``PosteriorSamplesPopulation`` each object's
        likelihood-weighted mean ``theta_hat``: a true value from the
        population plus an error drawn from the object's own likelihood
        (see the user guide, "Model checking").

        Parameters
        ----------
        n_samples : int, default=100
            Number of replicated data sets.
        random_state : int, RandomState instance or None, default=None
            Seeds the choice of posterior draws and the replicated data.
        draw : int or None, default=None
            Index of one stored posterior draw to make every replicate with
            (for the *sampled* posterior predictive p-value, which is
            uniform for data from the model: Johnson 2007, Gosselin 2011);
            None draws a posterior draw per replicate.

        Returns
        -------
        replicates : dict
            Maps each replicated variable (named as in
            ``to_inference_data()``'s ``observed_data``) to an array of shape
            ``(n_samples,) + observed.shape``.

        Examples
        --------
        >>> import numpy as np
        >>> from skhier import PopulationModel
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(1.0, 0.5, size=(50, 1))
        >>> est = PopulationModel(random_state=0).fit(x, X_err=np.full(50, 0.2))
        >>> reps = est.sample_posterior_predictive(200, random_state=0)
        >>> reps["X"].shape
        (200, 50, 1)
        >>> p = np.mean(reps["X"].std(axis=(1, 2)) >= x.std())  # p-value of the spread
        """
        rng = check_random_state(random_state)
        idx = self._draw_indices(n_samples, rng)
        if draw is not None:
            if isinstance(draw, bool) or not isinstance(draw, Integral) \
                    or not 0 <= draw < self.n_draws_:
                raise ValueError(f"draw must be an integer in [0, {self.n_draws_}), got {draw!r}.")
            idx = np.full(n_samples, int(draw))
        return self._replicate({k: v[idx] for k, v in self.posterior_.items()}, rng)

    # -- summary --------------------------------------------------------------
    def summary(self, quantiles=(0.05, 0.5, 0.95)):
        """Table of posterior summaries, one row per (scalar) parameter.

        Columns: ``mean``, ``sd``, the requested ``quantiles``, ``ess`` (bulk
        effective sample size from the chains' autocorrelation -- emcee's
        walkers or BayesianGMM's Gibbs chains -- averaged over chains; after
        importance sampling, that of the weighted draws combined with the
        resampling noise, as ``n_effective_``) and ``r_hat`` (rank-normalised
        split R-hat over chains, Vehtari et al. 2021; NaN after importance sampling, with one chain
        -- except BayesianGMM's, whose two halves are compared -- or with
        fewer than 4 draws per chain). Vector parameters get one row per
        element (``coef[0]``, ``means[1, 0]``); after a fit on a DataFrame,
        feature axes are labelled by its column names (``coef[g-r]``,
        ``means[1, g-r]``).

        Parameters
        ----------
        quantiles : sequence of float, default=(0.05, 0.5, 0.95)

        Returns
        -------
        table : pandas.DataFrame if pandas is installed, else dict of
            column name -> list (with a ``"parameter"`` column).
        """
        check_is_fitted(self, "posterior_")
        return posterior_table(self.posterior_, self._draws_by_chain, quantiles,
                               ess=getattr(self, "_summary_ess", None),
                               axis_labels=self._summary_axis_labels(),
                               min_chains=self._rhat_min_chains)

    def _summary_axis_labels(self) -> dict:
        """Labels of parameter axes for :meth:`summary`: name -> one entry per
        axis (a sequence of labels, or None for integer positions).

        By default a DataFrame fit's column names label ``coef``.
        """
        names = getattr(self, "feature_names_in_", None)
        if names is None or "coef" not in self.posterior_:
            return {}
        return {"coef": [list(names)]}

    # -- ArviZ ----------------------------------------------------------------
    def _sample_stats(self, pointwise) -> dict:
        """The ``sample_stats`` group: the log posterior ``lp`` of each draw.

        ``pointwise`` is the table of :meth:`_pointwise_log_likelihood` when
        it has been computed (else None), for estimators that report sums of it.
        """
        if getattr(self, "log_prob_", None) is None:
            return {}
        return {"lp": self._draws_by_chain(self.log_prob_)}

    def _data_groups(self) -> dict:
        """``observed_data``/``constant_data`` groups as {group: {name: array}}."""
        return {}

    def observed_data(self) -> dict:
        """The training data as the replicated data sets see them.

        Returns
        -------
        observed : dict
            Maps each observed variable (the keys of
            :meth:`sample_posterior_predictive`'s result, the
            ``observed_data`` group of :meth:`to_inference_data`) to its
            training values, in data units. For a
            ``PosteriorSamplesPopulation`` this is ``theta_hat``, each
            object's likelihood-weighted mean.

        Examples
        --------
        >>> import numpy as np
        >>> from skhier import PopulationModel
        >>> x = np.random.default_rng(0).normal(1.0, 0.5, size=(50, 1))
        >>> est = PopulationModel(random_state=0).fit(x, X_err=np.full(50, 0.2))
        >>> reps = est.sample_posterior_predictive(200, random_state=0)["X"]
        >>> p = np.mean(reps.std(axis=(1, 2)) >= est.observed_data()["X"].std())
        """
        check_is_fitted(self, "posterior_")
        return dict(self._data_groups().get("observed_data", {}))

    def _inference_dims(self):
        """ArviZ dimension names of the variables (name -> list), or None."""
        return None

    def to_inference_data(self, *, log_likelihood=True, posterior_predictive=False,
                          random_state=None):
        """Posterior draws and sampler statistics as an ArviZ ``InferenceData``.

        Each chain becomes an ArviZ chain (emcee: ``chain`` = walker,
        ``draw`` = kept step; BayesianGMM: ``chain`` = Gibbs chain, ``draw``
        = kept sweep); after importance sampling there is one chain of
        independent draws. ``sample_stats`` holds the log posterior (``lp``)
        of every draw (BayesianGMM: the training data's log-likelihood
        ``loglik``). ``observed_data`` holds the training data and
        ``constant_data`` their measurement errors (in the units of the
        input). Needs the optional dependency ``arviz``
        (``pip install skhier[arviz]``).

        Parameters
        ----------
        log_likelihood : bool, default=True
            Add the ``log_likelihood`` group: the log-likelihood of each
            training object (variable ``obs``, dimension ``obs_dim_0``) at
            each draw, with the object's measurement errors and any outlier
            or background component included, and the object's latent true
            values integrated out. This is what ``az.loo``, ``az.waic`` and
            ``az.compare`` read. It costs one pass over draws x objects and
            memory of that size; pass False to skip it.
        posterior_predictive : bool, default=False
            Add the ``posterior_predictive`` group: one replicated data set
            per stored draw (see :meth:`sample_posterior_predictive`), named
            like ``observed_data``, for ``az.plot_ppc``. Estimators that do
            not draw replicates raise NotImplementedError.
        random_state : int, RandomState instance or None, default=None
            Seeds the replicated data.

        Returns
        -------
        arviz.InferenceData

        Examples
        --------
        >>> import numpy as np
        >>> import arviz as az
        >>> from skhier import PopulationModel
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(1.0, 0.5, size=(40, 1))
        >>> est = PopulationModel(random_state=0).fit(x, X_err=np.full(40, 0.1))
        >>> idata = est.to_inference_data()
        >>> loo = az.loo(idata)
        """
        check_is_fitted(self, "posterior_")
        pointwise = self._pointwise_log_likelihood() if log_likelihood else None
        groups = {"posterior": {k: self._draws_by_chain(v) for k, v in self.posterior_.items()},
                  "sample_stats": self._sample_stats(pointwise)}
        if log_likelihood:
            groups["log_likelihood"] = {"obs": self._draws_by_chain(pointwise)}
        if posterior_predictive:
            reps = self._replicate(self.posterior_, check_random_state(random_state))
            groups["posterior_predictive"] = {k: self._draws_by_chain(v) for k, v in reps.items()}
        groups.update(self._data_groups())
        return make_inference_data(groups, dims=self._inference_dims())


    # -- posterior access ---------------------------------------------------
    def _summary_draws(self, random_state=0, max_draws=MAX_SUMMARY_DRAWS) -> dict[str, np.ndarray]:
        """At most ``max_draws`` posterior draws, for per-object averages.

        The draw-subset policy of every per-object summary: a random subset
        (without replacement, in storage order) from a fixed generator, which
        makes every summary deterministic for a fitted model.
        """
        idx = self._draw_subset(max_draws, random_state)
        if idx is None:
            return self.posterior_
        return {k: v[idx] for k, v in self.posterior_.items()}

    def _draw_subset(self, max_draws, random_state=0):
        """Indices (sorted) of the stored draws :meth:`_summary_draws` keeps; None for all."""
        n = self.n_draws_
        if n <= max_draws:
            return None
        rng = check_random_state(random_state)
        return np.sort(rng.choice(n, max_draws, replace=False))

    def _posterior_median(self, name: str):
        med = np.median(self.posterior_[name], axis=0)
        return float(med) if np.ndim(med) == 0 else med

    # -- the per-object layer -------------------------------------------------
    # Membership probabilities, log predictive densities and the pointwise
    # log-likelihood of every estimator are averages over posterior draws of
    # one per-object table per group: log[(1 - f) p_member(x_i | draw)] and
    # log[f p_background(x_i | draw)] for a member/background mixture,
    # log[w_k p_k(x_i | draw)] for BayesianGMM's components. A model supplies
    # the tables through :meth:`_object_logliks`; which draws, in which
    # chunks of rows, and how they are combined is written here once.

    #: Most posterior draws a per-object summary averages over (the
    #: draw-subset policy is :meth:`_summary_draws`).
    _max_object_draws = MAX_SUMMARY_DRAWS

    def _object_logliks(self, objects, draws, rows: slice):
        """The per-object hook: one log-likelihood table per group.

        Parameters
        ----------
        objects
            The estimator's validated data for a set of objects (training or
            new), as returned by :meth:`_training_objects` or built by the
            public methods.
        draws
            Posterior draws as returned by :meth:`_prepare_object_draws`.
        rows : slice
            The chunk of objects to evaluate.

        Returns
        -------
        tables : sequence of :meth:`_n_groups` ndarrays of shape (n_draws, n_rows)
            For a member/background mixture ``(log_member, log_background)``:
            ``log (1 - f) + log p_member(object | draw)`` and
            ``log f + log p_background(object | draw)`` (``f`` the background
            fraction), with the objects' latent true values integrated out;
            ``log_background`` is None when the model has no background.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not provide per-object log-likelihoods."
        )

    def _n_objects(self, objects) -> int:
        """Number of objects in ``objects`` (see :meth:`_object_logliks`)."""
        raise NotImplementedError

    def _training_objects(self):
        """The training data in the form :meth:`_object_logliks` takes."""
        raise NotImplementedError

    def _has_background(self) -> bool:
        """Whether the fitted model has a background (outlier, field) component."""
        return True

    def _n_groups(self) -> int:
        """Number of groups (columns of the membership probabilities)."""
        return 2

    def _prepare_object_draws(self, draws: dict):
        """Posterior draws (dict of named arrays) in the form the hook takes."""
        return draws

    def _object_cost(self, objects) -> int:
        """Relative cost of one (draw, object) cell of the hook (sets the chunks)."""
        return 1

    def _object_log_jacobian(self, objects):
        """What to subtract from the hook's log-likelihoods to express them in
        the units of the input data (0, or one value per object)."""
        return 0.0

    def _object_draws(self, *, all_draws: bool = False) -> dict[str, np.ndarray]:
        """The posterior draws per-object summaries average over.

        Every stored draw with ``all_draws`` (the pointwise log-likelihood),
        else at most :attr:`_max_object_draws` of them (:meth:`_summary_draws`).
        """
        if all_draws:
            return self.posterior_
        return self._summary_draws(max_draws=self._max_object_draws)

    def _object_row_chunks(self, objects, n_draws: int):
        """Chunks of rows whose (draws x rows x cost) tables stay below
        ``OBJECT_CHUNK_CELLS`` cells, so memory is bounded for any number of rows."""
        per_row = n_draws * self._object_cost(objects)
        return row_chunks(self._n_objects(objects), per_row, OBJECT_CHUNK_CELLS)

    def _object_table(self, objects, reduce, *, all_draws: bool = False, draws=None) -> np.ndarray:
        """Apply ``reduce(*tables)`` chunk by chunk of rows.

        ``reduce`` maps the groups' (n_draws, n_rows) tables of a chunk to an
        array whose last axis is the rows; the chunks are concatenated along
        it. ``draws``: other draws than :meth:`_object_draws`' (same form).
        """
        raw = self._object_draws(all_draws=all_draws) if draws is None else draws
        n_draws = len(next(iter(raw.values())))
        draws = self._prepare_object_draws(raw)
        n = self._n_objects(objects)
        out = None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for rows in self._object_row_chunks(objects, n_draws):
                value = reduce(*self._object_logliks(objects, draws, rows))
                if out is None:
                    out = np.empty(value.shape[:-1] + (n,))
                out[..., rows] = value
        if out is None:  # no rows
            out = np.empty((n_draws, 0) if all_draws else (0,))
        return out

    def _membership_proba(self, objects) -> np.ndarray:
        """Posterior-averaged group probabilities, shape (n, n_groups).

        ``mean over draws of exp(log_group - log_total)`` for each group
        (``log_total`` the mixture's, :meth:`_mixture_loglik`); a draw under
        which an object has zero density in every group counts for the first
        (membership).
        """
        n = self._n_objects(objects)
        proba = np.zeros((n, self._n_groups()))
        if not self._has_background():
            proba[:, 0] = 1.0
            return proba

        def shares(*tables):
            # Each column from its own table keeps tiny probabilities exact.
            total = self._mixture_loglik(*tables)
            return np.stack([np.nan_to_num(np.exp(t - total), nan=float(g == 0)).mean(axis=0)
                             for g, t in enumerate(tables)])

        if n:
            table = self._object_table(objects, shares)
            proba[:] = (table / table.sum(axis=0)).T
        return proba

    @staticmethod
    def _mixture_loglik(*tables):
        """log p(object | draw) of the mixture: the groups' tables (None: an
        absent group) summed in probability."""
        tables = [t for t in tables if t is not None]
        if len(tables) <= 2:
            return functools.reduce(np.logaddexp, tables)
        return logsumexp(np.stack(tables), axis=0)

    def _log_predictive_density(self, objects) -> np.ndarray:
        """``log mean over draws of p(object | draw)`` for every object, shape (n,),
        in the units of the input data."""
        if not self._n_objects(objects):
            return np.empty(0)
        lpd = self._object_table(objects, lambda *t: logmeanexp(self._mixture_loglik(*t)))
        return lpd - self._object_log_jacobian(objects)

    def _pointwise_log_likelihood(self) -> np.ndarray:
        """Log-likelihood of each training object at each stored draw.

        Returns an array of shape (n_draws, n_objects), in the units of the
        input data (standardisation Jacobians included), so that tables of
        different models of the same data can be compared. Built from the
        same per-object tables as the predictions (:meth:`_object_logliks`),
        with the objects' latent values integrated out and the background
        component included.
        """
        check_is_fitted(self, "posterior_")
        objects = self._training_objects()
        table = self._object_table(objects, self._mixture_loglik, all_draws=True)
        return table - self._object_log_jacobian(objects)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = False
        return tags

class BaseHierarchicalEstimator(PosteriorMixin, BaseEstimator):
    """Base class of the emcee-backed estimators.

    The sampler settings (``sampler``, ``n_importance``, ``n_walkers``, ...)
    are declared here once: a subclass's ``__init__`` takes them as
    ``**sampler_settings`` and passes them on, and its signature is
    completed with them. Subclasses build a :class:`PosteriorModel` in
    ``fit`` and call :meth:`_sample`, the one sampler dispatch; the base then
    stores, through one storage path for every sampler (:meth:`_store`),

    - ``posterior_`` : dict mapping each population/global parameter name to
      its draws (first axis is the draw);
    - ``acceptance_fraction_`` : float, mean acceptance fraction of the walkers;
    - ``autocorr_time_`` : dict, integrated autocorrelation time (steps) of
      each sampled coordinate;
    - ``n_effective_`` : dict, effective sample size of each sampled
      coordinate;
    - ``converged_`` : bool, whether the kept chain is longer than
      ``TAU_MULTIPLE`` (50) autocorrelation times;
    - ``n_steps_``, ``n_burn_`` : steps run and discarded;
    - ``map_`` : dict, the maximum a posteriori parameters used to start the
      walkers.
    """

    #: Whether ``sampler="quadrature"`` is implemented (see :mod:`skhier._quadrature`).
    _supports_quadrature = False

    _parameter_constraints: dict = {
        "n_walkers": [Interval(Integral, 4, None, closed="left")],
        "n_steps": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "n_burn": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "max_steps": [Interval(Integral, 10, None, closed="left")],
        "thin": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        # "quadrature": only estimators with ``_supports_quadrature`` (their
        # _importance_attempt then integrates the posterior deterministically).
        "sampler": [StrOptions({"auto", "emcee", "importance", "quadrature"})],
        "n_importance": [Interval(Integral, 100, None, closed="left")],
    }

    def __init_subclass__(cls, **kwargs):
        # An estimator's __init__ that ends in ``**sampler_settings`` (passed on
        # to this class's __init__) takes the shared sampler settings as
        # keyword-only parameters: its signature (what scikit-learn's
        # get_params, clone and repr, and help(), read) lists them after the
        # estimator's own parameters, with the defaults declared here.
        init = cls.__dict__.get("__init__")
        if init is not None:
            sig = inspect.signature(init)
            params = list(sig.parameters.values())
            if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
                shared = list(inspect.signature(BaseHierarchicalEstimator.__init__)
                              .parameters.values())[1:]
                init.__signature__ = sig.replace(parameters=params[:-1] + shared)
        super().__init_subclass__(**kwargs)

    def __init__(
        self,
        *,
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
        # The sampler settings of every MCMC estimator, declared once: an
        # estimator's __init__ takes them as ``**sampler_settings``.
        self.sampler = sampler
        self.n_importance = n_importance
        self.n_walkers = n_walkers
        self.n_steps = n_steps
        self.n_burn = n_burn
        self.max_steps = max_steps
        self.thin = thin
        self.random_state = random_state
        self.progress = progress

    # -- sampling ---------------------------------------------------------
    def _sample(self, model: PosteriorModel, random_state) -> None:
        """Draw the posterior with the sampler chosen by ``self.sampler`` and store it.

        The one sampler dispatch of every estimator. ``"emcee"``: the
        ensemble sampler. ``"importance"``: independent draws from a
        Student-t fitted at the MAP, reweighted (warns when the Pareto-k
        diagnostic says the draws are unreliable; raises when there is no
        Laplace approximation to build the proposal from). ``"auto"``:
        importance sampling when its diagnostics pass (Pareto-k < 0.7 and
        enough effective draws), else emcee. ``"quadrature"`` (estimators
        with ``_supports_quadrature``): adaptive Gauss–Hermite quadrature
        over the posterior (:meth:`_quadrature_attempt`), which ``"auto"``
        also tries first where :meth:`_quadrature_by_default` says so, and
        leaves for importance sampling when its rules do not converge.
        Subclasses change how the importance draws are made through
        :meth:`_importance_attempt`.
        """
        sampler = self.sampler
        x_map = cov = None
        self.__dict__.pop("_progress_t0", None)
        # The last quadrature rule (nodes, posterior weights) behind a
        # quadrature fit, for deterministic posterior averages; None otherwise.
        self._quadrature_rule = None
        if self._supports_quadrature:
            self.quadrature_error_ = None
        if sampler == "quadrature" and not self._supports_quadrature:
            raise ValueError(
                f"sampler='quadrature' is not available for {type(self).__name__}; "
                "use 'auto', 'importance' or 'emcee'."
            )
        if sampler in ("auto", "importance", "quadrature"):
            result, x_map, cov = self._importance_attempt(model, random_state)
            if result is not None and (result.ok or sampler != "auto"):
                # Importance draws, or (where an estimator offers it) draws
                # from a deterministic quadrature of the posterior.
                self._store(model, result.as_sampler_result(),
                            sampler=getattr(result, "method", "importance"),
                            pareto_k=float(result.pareto_k),
                            summary_ess=self._importance_summary_ess(model, result))
                if getattr(result, "method", None) == "quadrature":
                    self._quadrature_rule = (result.nodes, result.node_weights)
                if not result.ok:
                    warn(result.messages[-1], ConvergenceWarning)
                return
            if sampler != "auto":
                raise ValueError(
                    f"sampler={sampler!r} needs a Laplace approximation, but the "
                    "Hessian at the posterior maximum is not negative definite; "
                    "use sampler='emcee' or 'auto'."
                )
            self._report("importance sampling not reliable here: running emcee")
        result = run_emcee(
            model.log_prob,
            model.initial_point(),
            x_map=x_map,
            cov=cov,
            n_walkers=self.n_walkers,
            n_steps=self.n_steps,
            n_burn=self.n_burn,
            thin=self.thin,
            max_steps=self.max_steps,
            random_state=random_state,
            progress=self.progress,
            param_names=[_user_label(name) for name in model.param_names],
        )
        self._store(model, result, sampler="emcee")

    def _importance_attempt(self, model: PosteriorModel, random_state):
        """Importance sampling of ``model``'s posterior, for :meth:`_sample`.

        Returns ``(result, x_map, cov)``: the :class:`ImportanceResult` (None
        when there is no Laplace approximation) and the posterior maximum and
        Laplace covariance found on the way (reused by emcee when importance
        sampling is not accepted; None to let emcee search again).
        """
        if self._supports_quadrature and (
            self.sampler == "quadrature"
            or (self.sampler == "auto" and self._quadrature_by_default(model))
        ):
            result = self._quadrature_attempt(model, random_state)
            if result is not None and (result.ok or self.sampler == "quadrature"):
                return result, None, None
            if self.sampler == "quadrature":
                n_params = len(model.param_names)
                if n_params not in DEFAULT_LEVELS:
                    raise ValueError(
                        f"sampler='quadrature' integrates posteriors of at most "
                        f"{max(DEFAULT_LEVELS)} parameters; this model has {n_params} "
                        f"({', '.join(model.param_names)}). Use sampler='auto', "
                        "'importance' or 'emcee'."
                    )
                return None, None, None  # no Laplace approximation: _sample raises
            self._report("quadrature not accepted: importance sampling")
            self.quadrature_error_ = None
        return self._importance_draws(model, random_state)

    def _importance_draws(self, model: PosteriorModel, random_state):
        """The importance-sampling part of :meth:`_importance_attempt` (after
        any quadrature), with the same return value: MAP, Laplace covariance
        and importance draws with the exact log-posterior. Estimators with a
        cheaper likelihood for the draws try it here first.
        """
        # One MAP search serves both the importance attempt and emcee.
        self._report("searching the posterior maximum")
        x_map = find_map(model.log_prob, model.initial_point())
        cov = laplace_covariance(model.log_prob, x_map)
        self._report(f"importance sampling ({self.n_importance} draws)")
        result = run_importance(
            model.log_prob, model.initial_point(), x_map=x_map, cov=cov,
            n_draws=self.n_importance, random_state=random_state,
        )
        return result, x_map, cov

    def _quadrature_by_default(self, model: PosteriorModel) -> bool:
        """Whether ``sampler="auto"`` tries quadrature first (estimators with
        ``_supports_quadrature`` decide, e.g. from the number of objects)."""
        return False

    def _quadrature_attempt(self, model: PosteriorModel, random_state):
        """Deterministic quadrature of ``model``'s posterior
        (:meth:`_integrate_posterior`), its error estimate stored in
        ``quadrature_error_`` (per sampled coordinate, in posterior sd).
        Returns the :class:`~skhier._quadrature.DeterministicResult`, or None
        when there is no Laplace approximation or no rule for this many
        parameters.
        """
        self._report(f"quadrature over the {len(model.param_names)}-parameter posterior")
        result = self._integrate_posterior(model, random_state)
        if result is not None:
            self.quadrature_error_ = dict(zip(model.param_names, result.error.tolist(),
                                              strict=True))
        return result

    def _integrate_posterior(self, model: PosteriorModel, random_state):
        """Adaptive Gauss–Hermite quadrature of ``model``'s posterior.

        MAP by Newton steps (:func:`~skhier._sampling.newton_map`), Laplace
        covariance, then :func:`skhier._quadrature.run_quadrature`: posterior
        moments with no Monte Carlo error, ``error`` the change between the
        last two rules (in posterior sd), ``n_importance`` draws from the
        quadrature posterior. Estimators with their own integrator (a better
        start, other rules, a lattice) override this hook.
        """
        x_map = newton_map(model.log_prob, model.initial_point())
        cov = laplace_covariance(model.log_prob, x_map)
        if cov is None:
            return None
        return run_quadrature(model.log_prob, x_map, cov, random_state=random_state,
                              n_draws=self.n_importance)

    @staticmethod
    def _importance_summary_ess(model: PosteriorModel, result) -> dict[str, np.ndarray]:
        """Effective sample size of each summarised parameter of an importance run.

        The same for every summarised parameter: the stored draws are a sorted
        resample, whose autocorrelation says nothing about their ESS, so it is
        measured on the weighted draws (and combined with the resampling
        noise as in :meth:`ImportanceResult.as_sampler_result`).
        """
        n_stored = len(result.samples)
        w = np.asarray(result.weights, dtype=float)
        keep = w > 0
        out = {}
        for name, draws in model.constrain(result.raw_draws[keep]).items():
            flat = np.asarray(draws, dtype=float).reshape(len(draws), -1)
            ok = np.all(np.isfinite(flat), axis=1)  # overflow far out in the tails
            e = _ess_per_param(flat[ok], w[keep][ok] / w[keep][ok].sum())
            out[name] = 1.0 / (1.0 / e + 1.0 / n_stored)
        return out

    def _store(self, model: PosteriorModel, result: SamplerResult, *, sampler: str,
               pareto_k=None, summary_ess=None) -> None:
        """Store the draws and diagnostics of any sampler run (the one storage path).

        ``summary_ess``: per summarised parameter ESS, or None to let
        :meth:`summary` measure it on the chains.
        """
        names = list(model.param_names)
        self.model_ = model
        # emcee's flat chain is step-major with one chain per walker; an
        # importance run is one chain of independent draws.
        n_chains = result.chain.shape[1] if result.chain is not None else 1
        self._set_posterior(model.constrain(result.samples), n_chains=n_chains,
                            chain_major=False)
        self._summary_ess = summary_ess
        self.log_prob_ = result.log_prob
        self.chain_ = result.chain
        self.sampled_param_names_ = names
        self.acceptance_fraction_ = float(np.mean(result.acceptance_fraction))
        self.autocorr_time_ = dict(zip(names, np.asarray(result.autocorr_time, float).tolist(),
                                       strict=True))
        self.n_effective_ = dict(zip(names, np.asarray(result.n_effective, float).tolist(),
                                     strict=True))
        self.converged_ = bool(result.converged)
        self.convergence_messages_ = list(result.messages)
        self.n_steps_ = int(result.n_steps)
        self.n_burn_ = int(result.n_burn)
        self.map_ = {
            k: v[0] for k, v in model.constrain(result.map_estimate[None, :]).items()
        }
        self.sampler_ = sampler
        self.pareto_k_ = pareto_k
        if pareto_k is not None:
            self._report(
                f"{sampler} done: Pareto-k {pareto_k:.2f}, "
                f"ESS {min(self.n_effective_.values()):.0f}"
            )
        self._warn_prior_bounds(model)

    def _set_sample_weight(self, model: PosteriorModel, sample_weight, n_objects: int):
        """Validate ``fit``'s ``sample_weight`` and give it to ``model``.

        A row's weight multiplies its log-likelihood (in the model's
        :meth:`PosteriorModel.sum_objects`), so an integer weight m counts
        the row m times and 0 drops it. Returns the validated weights (a
        float copy) or None.
        """
        model.sample_weight = check_sample_weight(sample_weight, n_objects)
        return model.sample_weight

    def _report(self, message: str) -> None:
        """With ``progress=True``, a timestamped stage of the fit on stderr
        (emcee's own progress bar covers the MCMC stage)."""
        if self.progress:
            start = self.__dict__.setdefault("_progress_t0", time.perf_counter())
            print(f"{type(self).__name__} [{time.perf_counter() - start:6.1f} s] {message}",
                  file=sys.stderr, flush=True)

    def _warn_prior_bounds(self, model: PosteriorModel) -> None:
        """Warn (:class:`PriorBoundWarning`) when the posterior hits a prior bound."""
        self.prior_bound_messages_ = prior_bound_messages(self.posterior_, model.prior_bounds())
        for msg in self.prior_bound_messages_:
            warn(msg, PriorBoundWarning)

# ---------------------------------------------------------------------------
# Summaries shared by every estimator (BayesianGMM's Gibbs chains included)
# ---------------------------------------------------------------------------
def posterior_diagnostics(posterior: dict, by_chain, *, min_chains: int = 2):
    """Rank-normalised split R-hat and ESS of every element of every parameter.

    The numbers :func:`posterior_table` reports; a sampler that also decides
    on them (BayesianGMM's run length and ``ConvergenceWarning``) calls this
    function, so that its decision and the summary cannot disagree.

    Parameters
    ----------
    posterior : dict of str to ndarray
        Draws of each named parameter, first axis the draw.
    by_chain : callable
        As in :func:`posterior_table`.
    min_chains : int, default=2
        Fewest chains for an R-hat. With 1, a single chain gets the split
        R-hat of its two halves (as ArviZ computes it); the default 2 leaves
        it NaN, for draws that are not a Markov chain (importance sampling).

    Returns
    -------
    rhat, ess : dict of str to ndarray
        Each parameter's :func:`~skhier.diagnostics.rank_normalized_rhat`
        over chains (NaN with fewer than ``min_chains`` chains or fewer than
        4 draws per chain) and :func:`~skhier.diagnostics.effective_sample_size`
        (from the autocorrelation averaged over chains), shaped like one draw.
    """
    from .diagnostics import effective_sample_size, rank_normalized_rhat

    rhat, ess = {}, {}
    for name, draws in posterior.items():
        chains = by_chain(np.asarray(draws, dtype=float))
        shape = chains.shape[2:]
        steps = chains.reshape(chains.shape[0], chains.shape[1], -1).swapaxes(0, 1)
        n_steps, n_chains = steps.shape[:2]
        ess[name] = effective_sample_size(steps).reshape(shape)
        if n_chains >= min_chains and n_steps >= 4:
            rhat[name] = rank_normalized_rhat(steps).reshape(shape)
        else:
            rhat[name] = np.full(shape, np.nan)
    return rhat, ess


def posterior_table(posterior: dict, by_chain, quantiles=(0.05, 0.5, 0.95), ess=None,
                    axis_labels=None, min_chains=2):
    """Table of posterior summaries, one row per scalar parameter.

    Parameters
    ----------
    posterior : dict of str to ndarray
        Draws of each named parameter, first axis the draw.
    by_chain : callable
        Maps an array of draws (n_draws, ...) to (n_chains, n_per_chain, ...),
        the chain each draw came from (the sampler's storage layout).
    quantiles : sequence of float, default=(0.05, 0.5, 0.95)
    ess : dict of str to ndarray, optional
        Effective sample size of each element of each parameter, measured by
        the sampler (after importance sampling); by default it is measured
        from the chains' autocorrelation.
    axis_labels : dict, optional
        Labels of the axes of array parameters: name -> one entry per axis,
        a sequence of labels (e.g. a DataFrame's column names) or None to
        keep integer positions.
    min_chains : int, default=2
        Fewest chains for an R-hat (see :func:`posterior_diagnostics`).

    Returns
    -------
    table : pandas.DataFrame (index ``parameter``) if pandas is installed,
        else dict of column name -> list. Columns ``mean``, ``sd``, one per
        quantile (``q5``, ``q50``, ...), ``ess`` (effective sample size from
        the autocorrelation averaged over chains) and ``r_hat`` (rank-normalised
        split R-hat over chains, :func:`~skhier.diagnostics.rank_normalized_rhat`; NaN with fewer than
        ``min_chains`` chains or fewer than 4 draws per chain).
        Array parameters get one row per element (``coef[0]``,
        ``means[1, 0]``).
    """
    rhat, measured_ess = posterior_diagnostics(posterior, by_chain, min_chains=min_chains)
    ess = {**measured_ess, **(ess or {})}
    rows = []
    for name, draws in posterior.items():
        draws = np.asarray(draws, dtype=float)
        shape = draws.shape[1:]
        flat = draws.reshape(len(draws), -1)
        ess_j, rhat_j = np.ravel(ess[name]), np.ravel(rhat[name])
        q = np.quantile(flat, quantiles, axis=0)
        labels = list((axis_labels or {}).get(name) or [None] * len(shape))
        for j in range(flat.shape[1]):
            index = ", ".join(
                str(int(i)) if lab is None else str(lab[int(i)])
                for i, lab in zip(np.unravel_index(j, shape), labels, strict=True)
            ) if shape else ""
            row = {
                "parameter": f"{name}[{index}]" if shape else name,
                "mean": flat[:, j].mean(),
                "sd": flat[:, j].std(ddof=1),
            }
            row.update({f"q{100 * p:g}": float(v) for p, v in zip(quantiles, q[:, j], strict=True)})
            row["ess"] = float(ess_j[j])
            row["r_hat"] = float(rhat_j[j])
            rows.append(row)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a test extra
        return {k: [r[k] for r in rows] for k in rows[0]}
    return pd.DataFrame(rows).set_index("parameter")


def make_inference_data(groups: dict, dims: dict | None = None):
    """An ArviZ ``InferenceData`` from ``{group: {name: array}}``.

    Arrays of the ``posterior`` and ``sample_stats`` groups are shaped
    (chain, draw, ...). Works with ArviZ < 1.0 (groups as keyword
    arguments) and >= 1.0 (one dict of groups, returns a DataTree).
    """
    try:
        import arviz as az
    except ImportError as exc:
        raise ImportError(
            "to_inference_data needs ArviZ: pip install arviz (or skhier[arviz])."
        ) from exc
    groups = {k: v for k, v in groups.items() if v}
    extra = {} if dims is None else {"dims": dims}
    try:  # ArviZ < 1.0: groups as keyword arguments
        return az.from_dict(**groups, **extra)
    except TypeError:  # ArviZ >= 1.0: one dict of groups
        return az.from_dict(groups, **extra)
