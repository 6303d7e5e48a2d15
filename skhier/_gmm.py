"""BayesianGMM: a Gaussian mixture with its full posterior, by blocked Gibbs.

The estimator: fit (chains, the automatic run length, relabelled storage),
per-point outputs through the base's per-object layer, model selection and
draws. The model, its Gibbs sampler and the relabelling of the draws are in
:mod:`skhier._gmm_gibbs`; the sweep over chunks of rows (Dask collections,
weighted fits) in :mod:`skhier._gmm_dask`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metadata_routing import UNUSED
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import PosteriorMixin, posterior_diagnostics
from ._gmm_gibbs import (
    _component_loglik,
    _draw_true_positions,
    _em_start_labels,
    _quad_coefs,
    _quad_features,
    _run_chain,
    _sample_categorical,
    _start_chain,
    _stephens_relabel,
)
from ._math import (
    categorical,
    logpdf_stack,
    psd_sqrt,
    single_threaded_blas,
    standardisation,
)
from .utils._checks import check_magnitude, check_sample_weight
from .utils._warnings import warn

__all__ = ["BayesianGMM"]

#: Draws used for posterior-averaged per-point quantities (predict_proba,
#: score_samples). The Monte Carlo error of such an average is at most
#: (posterior sd of the quantity) / sqrt(200), i.e. <= 0.035 for a
#: probability and usually far less.
_MAX_PREDICT_DRAWS = 200
#: Split R-hat above this flags a fit as not converged.
_RHAT_MAX = 1.05
#: n_iter="auto": sweeps of the first run (burn-in included), most sweeps per
#: chain, and most draws kept per chain (longer runs are thinned evenly).
_AUTO_FIRST = 1500
_AUTO_MAX = 8500
_AUTO_KEEP = 1000


def _require_training_rows(X, what):
    if X is None:
        raise ValueError(
            f"{what} needs the training rows, which stay on the Dask cluster after a fit "
            "on a Dask collection; compute it from the Dask array (e.g. score_samples on "
            "its blocks with dask.array.map_blocks), or call "
            "to_inference_data(log_likelihood=False)."
        )


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------
class BayesianGMM(DensityMixin, PosteriorMixin, BaseEstimator):
    """Gaussian mixture with its full posterior, optionally deconvolving errors.

    A finite mixture ``sum_k w_k N(x | mu_k, Sigma_k)`` of at most
    ``n_components`` Gaussians in any dimension, sampled by a blocked Gibbs
    sampler (Dirichlet weights, Normal-inverse-Wishart components). A sparse
    Dirichlet prior on the weights (Malsiner-Walli, Frühwirth-Schnatter &
    Grün 2016) lets unneeded components empty out, so ``n_components`` is an
    upper bound and the number of occupied components has a posterior
    (``n_components_posterior_``). With per-point measurement errors
    (``X_err`` or ``X_cov``) the sampler also draws every point's true
    position, so the components describe the error-free distribution
    (extreme deconvolution, Bovy, Hogg & Roweis 2011).

    Parameters
    ----------
    n_components : int, default=10
        Maximum number of components K.
    weight_concentration : float, default=0.01
        Concentration ``e0`` of the symmetric Dirichlet prior on the weights.
        Small values (``e0 << 1``) make the prior sparse: components not
        needed by the data empty out. ``e0 >= 1`` keeps all components
        populated (a classical finite mixture with K components).
    mean_precision_prior : float, default=0.01
        ``kappa0``: the prior on each component mean is
        ``N(m0, Sigma_k / kappa0)`` with ``m0`` the data mean.
    degrees_of_freedom_prior : float or None, default=None
        ``nu0`` of the inverse-Wishart prior on each covariance; must exceed
        ``n_features - 1``. None means ``n_features + 2`` (the least
        informative value whose prior mean exists).
    covariance_prior : float, default=0.3
        Scale ``c`` of the inverse-Wishart scale matrix
        ``Psi0 = c (nu0 - d - 1) I`` in standardised units (``c I`` when
        ``nu0 <= d + 1``), so that the prior mean of every component
        covariance is ``c`` times the data variance along each axis
        (components somewhat narrower than the data).
    standardize : bool, default=True
        State the priors in standardised units (see Notes), which makes the
        fit equivariant under shifts and rescalings of the columns. With
        False the priors are stated in data units (prior mean of the
        component means 0, ``Psi0`` as above without rescaling): a prior
        that does not depend on the data, as needed for simulation-based
        calibration or when the data's units are meaningful.
    n_chains : int, default=4
        Independent chains (for split R-hat). With a sparse prior
        (``weight_concentration < 1``) each starts from its own EM fit
        (scikit-learn's ``GaussianMixture``, from its own seed) with the
        number of components that BIC prefers; otherwise from its own
        k-means++ centres, all ``n_components`` occupied.
    n_iter : int or "auto", default="auto"
        Gibbs sweeps per chain, burn-in included. ``"auto"`` runs 1500
        sweeps; then, while the largest R-hat (``rhat_``) is 1.05 or
        more, every chain runs on for as many sweeps again as it has kept
        (the kept part doubles), up to 8500 sweeps per chain, keeping at most
        1000 draws per chain (longer runs are thinned evenly). The chains
        resume where they stopped, so an extended run equals one run of
        that length, on every path: in memory, weighted and on Dask.
        ``n_iter_`` reports the sweeps run; an int runs exactly that many.
    n_burn : int, default=500
        Sweeps discarded at the start of each chain.
    thin : int, default=1
        Keep every ``thin``-th sweep.
    random_state : int, RandomState instance or None, default=None
        Seeds everything; a fixed value makes ``fit`` reproducible.
    progress : bool, default=False
        Report sampling progress on stderr.
    n_jobs : int, default=None
        Number of chains run in parallel with joblib (``None`` means 1 unless
        in a :func:`joblib.parallel_backend` context; ``-1`` uses all
        processors). Each chain's seed is drawn from ``random_state`` before
        any chain runs, so the posterior does not depend on ``n_jobs``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Posterior mean weights (sum to 1), components ordered by decreasing
        weight.
    means_ : ndarray of shape (n_components, n_features)
        Posterior mean of each component mean (data units).
    covariances_ : ndarray of shape (n_components, n_features, n_features)
        Posterior mean of each component covariance (data units; error-free
        when fitted with errors).
    n_components_posterior_ : ndarray of shape (n_components + 1,)
        Posterior probability that exactly ``j`` components are occupied
        (entry ``j``).
    posterior_ : dict of ndarray
        Relabelled draws, first axis the draw (chains concatenated):
        ``"weights"`` (n_draws, K), ``"means"`` (n_draws, K, d),
        ``"covariances"`` (n_draws, K, d, d) and ``"n_occupied"``
        (n_draws,). :meth:`sample_posterior` adds the latents ``"labels"``
        (n_samples, n_train): each training point's component drawn from its
        conditional given the parameter draw, and, with errors at fit time,
        ``"X_true"`` (n_samples, n_train, d): the deconvolved true positions.
    relabel_permutations_ : ndarray of shape (n_draws, n_components)
        For every draw, the raw sampler component that became each reported
        component.
    rhat_ : dict
        Rank-normalised split R-hat (Vehtari et al. 2021; as ArviZ and Stan
        report it, :func:`~skhier.diagnostics.rank_normalized_rhat`) of
        every element of the relabelled ``"weights"``, ``"means"``,
        ``"covariances"`` and of ``"n_occupied"``: the ``r_hat`` column of
        :meth:`summary`, row for row. With one chain, the split R-hat of its
        two halves. The classic split R-hat is not used: the weight of a
        rarely occupied component is near zero in most draws and
        occasionally large, and its classic R-hat is dominated by its few
        largest values.
    n_effective_ : dict
        Effective sample sizes of the same quantities (the ``ess`` column of
        :meth:`summary`).
    converged_ : bool
        Whether every R-hat in ``rhat_`` (every ``r_hat`` of
        :meth:`summary`) is below 1.05 (False when fewer than 4 sweeps per
        chain are kept). A ``ConvergenceWarning`` says when it is False.
    n_iter_ : int
        Sweeps run per chain.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : maximum-likelihood fit (EM).
    sklearn.mixture.BayesianGaussianMixture : variational approximation.

    Notes
    -----
    **Units.** X is standardised internally (each column centred on its mean
    and divided by its standard deviation; errors rescaled accordingly); the
    priors are stated in these units, which makes the fit equivariant under
    shifts and rescalings of the columns. All outputs are in data units. Do
    not rescale error-carrying columns *outside* the estimator (e.g. with a
    ``StandardScaler`` earlier in a pipeline): that changes X but not
    ``X_err``.

    **Label switching.** The mixture likelihood is invariant under
    permutations of the components, so raw chains (and different chains)
    report the same component under different labels. Before any summary
    the draws are relabelled with the Kullback-Leibler algorithm of Stephens
    (2000): per-draw permutations are chosen to minimise the divergence
    between each draw's classification probabilities and their average,
    iterated to a fixed point from the highest-likelihood draw. Empty
    components carry no classification information and are left in
    arbitrary order among themselves; their draws are prior draws.

    **Summaries.** :meth:`summary` has one row per element of the relabelled
    ``weights``, ``means`` and ``covariances`` and for ``n_occupied``; its
    ``ess`` is measured on the Gibbs chains and its ``r_hat`` across them;
    they are the numbers of ``n_effective_`` and ``rhat_``, the ones that
    decide ``converged_``, the run length and the warning.
    Components with (near) zero weight hold prior draws in arbitrary order:
    their R-hat says nothing about convergence.

    **Per-point outputs** (``predict_proba``, ``score_samples``, ...) average
    over a fixed random subset of at most 200 posterior draws, and are
    evaluated in chunks of rows, so memory stays bounded for any number of
    rows.

    References
    ----------
    .. [1] Bovy, J., Hogg, D. W. & Roweis, S. T. (2011), "Extreme
       deconvolution", Ann. Appl. Stat. 5, 1657.
    .. [2] Stephens, M. (2000), "Dealing with label switching in mixture
       models", J. R. Stat. Soc. B 62, 795.
    .. [3] Malsiner-Walli, G., Frühwirth-Schnatter, S. & Grün, B. (2016),
       "Model-based clustering based on sparse finite Gaussian mixtures",
       Stat. Comput. 26, 303.
    .. [4] Gelman, A. et al., Bayesian Data Analysis, 3rd ed., section 3.6.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import BayesianGMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, (150, 1)), rng.normal(3, 1, (100, 1))])
    >>> gmm = BayesianGMM(n_components=3, n_chains=2, n_iter=600, n_burn=200,
    ...                   random_state=0).fit(X)
    >>> int(np.argmax(gmm.n_components_posterior_))
    2
    >>> np.round(gmm.means_[:2, 0]).tolist()
    [-3.0, 3.0]
    >>> gmm.predict([[-3.0], [3.0]]).tolist()
    [0, 1]
    """

    #: A single Gibbs chain gets the split R-hat of its two halves (in
    #: rhat_, the warning and summary() alike).
    _rhat_min_chains = 1

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "weight_concentration": [Interval(Real, 0, None, closed="neither")],
        "mean_precision_prior": [Interval(Real, 0, None, closed="neither")],
        "degrees_of_freedom_prior": [Interval(Real, 0, None, closed="neither"), None],
        "covariance_prior": [Interval(Real, 0, None, closed="neither")],
        "standardize": ["boolean"],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "n_burn": [Interval(Integral, 0, None, closed="left")],
        "thin": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "n_jobs": [Integral, None],
    }

    # Measurement errors are requested metadata by default (PosteriorMixin);
    # a mixture has no target, so no y errors.
    __metadata_request__fit = {"y_err": UNUSED, "Xy_cov": UNUSED}
    __metadata_request__score = {"y_err": UNUSED, "Xy_cov": UNUSED}

    def __init__(
        self,
        n_components=10,
        *,
        weight_concentration=0.01,
        mean_precision_prior=0.01,
        degrees_of_freedom_prior=None,
        covariance_prior=0.3,
        standardize=True,
        n_chains=4,
        n_iter="auto",
        n_burn=500,
        thin=1,
        random_state=None,
        progress=False,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.weight_concentration = weight_concentration
        self.mean_precision_prior = mean_precision_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.standardize = standardize
        self.n_chains = n_chains
        self.n_iter = n_iter
        self.n_burn = n_burn
        self.thin = thin
        self.random_state = random_state
        self.progress = progress
        self.n_jobs = n_jobs

    # -- fitting ----------------------------------------------------------
    def _prior(self, d):
        nu0 = d + 2.0 if self.degrees_of_freedom_prior is None else float(self.degrees_of_freedom_prior)
        if nu0 <= d - 1:
            raise ValueError(
                f"degrees_of_freedom_prior must exceed n_features - 1 = {d - 1}, got {nu0}."
            )
        # Prior mean of Sigma is Psi0 / (nu0 - d - 1) when nu0 > d + 1.
        psi_scale = self.covariance_prior * max(nu0 - d - 1.0, 1.0)
        return float(self.mean_precision_prior), nu0, psi_scale * np.eye(d)

    def _standardise(self, X, X_cov):
        Xs = (X - self._loc) / self._scale
        if X_cov is None:
            return Xs, None
        return Xs, X_cov / (self._scale[:, None] * self._scale[None, :])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, X_err=None, X_cov=None, sample_weight=None):
        """Sample the posterior of the mixture given data (and errors).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), Dask array or Dask DataFrame
            Observed positions; at least 2 samples. A Dask array or DataFrame
            is fitted where it lies: every Gibbs sweep maps over its chunks
            on the Dask workers and only per-chunk sufficient statistics
            come back (see :mod:`skhier._gmm_dask` and the user guide's
            "Big catalogues" page).
        y : Ignored
        X_err : array-like of shape (n_samples, n_features), default=None
            Standard deviations of independent Gaussian errors on X.
        X_cov : array-like of shape (n_samples, n_features, n_features), default=None
            Full error covariances (instead of ``X_err``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each row: its likelihood is raised to
            this power, so an integer weight ``m`` gives the posterior of the
            row repeated ``m`` times (each copy with its own label and true
            position) and 0 drops the row. A fractional part ``f`` counts
            one more copy whose complete-data likelihood (label, true
            position and measurement) is raised to ``f``: a generalised
            (tempered) posterior, not the posterior of any data set. The
            standardisation uses the weighted mean and variance.

        Returns
        -------
        self : BayesianGMM

        Examples
        --------
        >>> import numpy as np
        >>> import dask.array as da
        >>> from skhier import BayesianGMM
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(-3, 1, (600, 1)), rng.normal(3, 1, (400, 1))])
        >>> gmm = BayesianGMM(n_components=2, n_chains=2, n_iter=60, n_burn=20,
        ...                   random_state=0).fit(da.from_array(X, chunks=250))
        >>> np.round(gmm.means_[:, 0]).tolist()
        [-3.0, 3.0]
        >>> weighted = BayesianGMM(n_components=2, n_chains=2, n_iter=60, n_burn=20,
        ...                        random_state=0).fit(X, sample_weight=np.full(1000, 2))
        >>> np.round(weighted.weights_, 1).tolist()
        [0.6, 0.4]
        """
        from ._gmm_dask import is_dask_collection

        self._n_iter_first()  # checks n_burn < n_iter before any work
        if is_dask_collection(X):
            from ._gmm_dask import fit_dask

            return fit_dask(self, X, X_err=X_err, X_cov=X_cov, sample_weight=sample_weight)
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64, order="C")
        check_magnitude(X, "X")
        n, d = X.shape
        errors = self._check_errors(X, "fit", X_err=X_err, X_cov=X_cov)
        sample_weight = check_sample_weight(sample_weight, n)
        if sample_weight is not None and np.any(sample_weight != 1):
            from ._gmm_dask import fit_in_memory

            return fit_in_memory(self, X, errors["X_cov"], sample_weight)
        prior = self._prior(d)
        K = self.n_components
        seeds = self._chain_seeds()

        self._loc, self._scale = (standardisation(X) if self.standardize
                                  else (np.zeros(d), np.ones(d)))
        Xs, S = self._standardise(X, errors["X_cov"])
        S_sqrt = None if S is None else psd_sqrt(S)
        phi = _quad_features(Xs) if S is None else None

        C = self.n_chains
        # A sparse prior (e0 < 1) empties unneeded components: start from the
        # number of components an EM fit supports (every component occupied
        # would leave split components the sampler cannot merge). With
        # e0 >= 1 every component stays occupied: start from K centres.
        starts = [None] * C
        if self.weight_concentration < 1:
            with single_threaded_blas():
                starts = _em_start_labels(Xs, K, seeds)
        chains = [_start_chain(Xs, S, S_sqrt, phi, K, prior, self.weight_concentration,
                               seeds[c], starts[c]) for c in range(C)]

        def run(n_sweeps, n_skip, thin, done):
            # Independent chains (seeds drawn above), in parallel when n_jobs asks.
            out = Parallel(n_jobs=self.n_jobs)(
                delayed(_run_chain)(chains[c], n_sweeps, n_skip, thin, done=done,
                                    progress=f"chain {c + 1}/{C}" if self.progress else None)
                for c in range(C)
            )
            chains[:] = [o[4] for o in out]  # the chains' states (copies with n_jobs > 1)
            return [np.stack([o[k] for o in out]) for k in range(4)]

        def store(parts, done, last):
            with single_threaded_blas():
                ref_labels = chains[0].draw_labels(self._reference_rng(seeds, done))
            self._store_chains(*parts, relabel_data=(Xs, S), ref_labels=ref_labels,
                               relabel_seed=seeds[-1], training=(Xs, S, S_sqrt),
                               n_iter=done, warn_if_not=last)

        return self._sample_until_converged(run, store)

    def _sample_until_converged(self, run, store):
        """The run length of ``n_iter``, for the in-memory and the chunked sampler.

        ``run(n_sweeps, n_skip, thin, done)`` runs every chain ``n_sweeps``
        more sweeps, going on where the previous call stopped (``done``
        sweeps so far), and returns the kept ``(log_w, mu, sigma,
        n_occupied)`` arrays, (n_chains, n_kept, ...), keeping every
        ``thin``-th sweep after the first ``n_skip``. ``store(parts, done,
        last)`` relabels and stores the draws kept so far and sets
        ``converged_`` (warning when ``last``).

        An int ``n_iter`` is one run. ``"auto"`` runs ``_AUTO_FIRST`` sweeps;
        then, while not converged, every chain runs on for as many sweeps as
        it has kept (burn-in excluded: the kept part doubles), up to
        ``_AUTO_MAX`` sweeps in all; beyond ``_AUTO_KEEP`` kept draws per
        chain every other one is dropped, and later sweeps are kept at the
        doubled stride, so the kept draws stay evenly spaced.
        """
        auto = self.n_iter == "auto"
        parts, thin, done = None, self.thin, 0
        n_new, n_skip = self._n_iter_first(), self.n_burn
        while True:
            new = run(n_new, n_skip, thin, done)
            parts = new if parts is None else [np.concatenate(p, 1) for p in zip(parts, new, strict=True)]
            done += n_new
            if auto and parts[0].shape[1] > _AUTO_KEEP:
                parts = [p[:, ::2] for p in parts]  # keep every other draw
                thin *= 2
            last = not auto or done >= _AUTO_MAX  # no further extension possible
            store(parts, done, last)
            if last or self.converged_:
                return self
            # Not converged yet: run as many more sweeps as each chain has kept.
            n_new, n_skip = min(done - self.n_burn, _AUTO_MAX - done), 0

    @staticmethod
    def _reference_rng(seeds, done):
        """Generator of the reference labels that guide the relabelling after
        ``done`` sweeps: its own stream, so drawing them leaves the chains'
        generators (and a resumed run) untouched."""
        return np.random.default_rng([int(seeds[-1]), int(done)])

    def _n_iter_first(self):
        """Sweeps of the first run: n_iter, or _AUTO_FIRST with n_iter="auto"."""
        n_iter = _AUTO_FIRST if self.n_iter == "auto" else self.n_iter
        if self.n_burn >= n_iter:
            raise ValueError(f"n_burn ({self.n_burn}) must be smaller than n_iter ({n_iter}).")
        return n_iter

    def _chain_seeds(self):
        """One seed per chain, plus one for the starts and the relabelling."""
        rng = check_random_state(self.random_state)
        return rng.randint(0, 2**31 - 1, size=self.n_chains + 1)

    def _store_chains(self, log_w, mu, sigma, occupied, *, relabel_data, ref_labels,
                      relabel_seed, training, n_iter=None, warn_if_not=True):
        """Relabel the chains' draws (C, n_keep, ...) and store the posterior.

        ``relabel_data`` = (Xs, S): standardised rows the relabelling
        classifies, ``ref_labels`` their labels under chain 0's last draw;
        ``training`` = (Xs, S, S_sqrt): the training rows kept for per-point
        outputs (all None when they stay on a Dask cluster); ``n_iter`` the
        sweeps run per chain (default: ``self.n_iter``). Sets ``converged_``,
        warning if it is False and ``warn_if_not``.
        """
        C, n_keep, K, d = mu.shape
        with single_threaded_blas():
            # -- relabel, pooled over chains ----------------------------------
            T = C * n_keep
            log_w, mu, sigma = log_w.reshape(T, K), mu.reshape(T, K, d), sigma.reshape(T, K, d, d)
            perms = _stephens_relabel(
                relabel_data[0], relabel_data[1], log_w, mu, sigma, ref_labels,
                np.random.default_rng(relabel_seed),
            )
        log_w = np.take_along_axis(log_w, perms, axis=1)
        mu = np.take_along_axis(mu, perms[:, :, None], axis=1)
        sigma = np.take_along_axis(sigma, perms[:, :, None, None], axis=1)
        order = np.argsort(-np.exp(log_w).mean(axis=0), kind="stable")
        log_w, mu, sigma, perms = log_w[:, order], mu[:, order], sigma[:, order], perms[:, order]
        self.relabel_permutations_ = perms

        # -- store, in data units -----------------------------------------
        self._log_w, self._mu, self._sigma = log_w, mu, sigma  # standardised
        D = self._scale
        # Chains are stored one after the other (chain-major).
        self._set_posterior({
            "weights": np.exp(log_w),
            "means": self._loc + mu * D,
            "covariances": sigma * D[:, None] * D[None, :],
            "n_occupied": occupied.reshape(T),
        }, n_chains=C, chain_major=True)
        self.weights_ = self.posterior_["weights"].mean(axis=0)
        self.means_ = self.posterior_["means"].mean(axis=0)
        self.covariances_ = self.posterior_["covariances"].mean(axis=0)
        self.n_components_posterior_ = (
            np.bincount(self.posterior_["n_occupied"], minlength=K + 1)[: K + 1] / T
        )
        self.n_iter_ = self._n_iter_first() if n_iter is None else n_iter
        self.n_chains_ = C
        self._X_train, self._S_train, self._S_sqrt_train = training
        self._diagnose(C, n_keep, warn_if_not)

    def _diagnose(self, C, n_keep, warn_if_not=True):
        """R-hat and ESS of every summarised quantity; converged_ and the warning.

        The measurement of :meth:`summary`'s ``ess`` and ``r_hat`` columns
        (:func:`~skhier._base.posterior_diagnostics`, every row, with the
        same settings) decides ``converged_``, the run length and the
        warning, so they cannot contradict the summary.
        """
        rhat, ess = posterior_diagnostics(self.posterior_, self._draws_by_chain,
                                          min_chains=self._rhat_min_chains)
        self.rhat_ = {k: v if v.ndim else float(v) for k, v in rhat.items()}
        self.n_effective_ = {k: v if v.ndim else float(v) for k, v in ess.items()}
        if n_keep < 4:
            self.converged_ = False
            msg = (f"BayesianGMM: only {n_keep} kept sweeps per chain, too few to assess "
                   "convergence (split R-hat needs 4); increase n_iter.")
        else:
            worst_name = max(self.rhat_, key=lambda k: np.max(self.rhat_[k]))
            worst = float(np.max(self.rhat_[worst_name]))
            self.converged_ = bool(worst < _RHAT_MAX)
            which = "chains" if C > 1 else "two halves of the chain"
            msg = (f"BayesianGMM: the largest R-hat is {worst:.3f} (>= {_RHAT_MAX}, for "
                   f"{worst_name!r}) after {self.n_iter_} sweeps per chain; the {which} "
                   f"disagree. Pass n_iter={2 * self.n_iter_} or more (and check "
                   "n_components_posterior_, and the r_hat column of summary()).")
        if not self.converged_ and warn_if_not:
            warn(msg, ConvergenceWarning)

    # -- per-point posterior quantities --------------------------------------
    def _check_X(self, X, X_err=None, X_cov=None, method="predict_membership_proba"):
        X, errors = self._new_data(X, method, X_err=X_err, X_cov=X_cov)
        return X, errors["X_cov"]

    # -- the per-object hook (see PosteriorMixin._object_logliks): one table
    # -- per component, log w_k N(x_i | mu_k, Sigma_k + S_i) --------------------
    _max_object_draws = _MAX_PREDICT_DRAWS

    def _object_logliks(self, objects, draws, rows):
        """log w_k N(x_i | mu_k, Sigma_k + S_i) of the rows ``rows`` at each
        draw, in standardised units: shape (K, n_draws, n_rows).

        ``objects`` is ``(X, X_cov, standardised)``; new rows are
        standardised chunk by chunk, so the working memory does not grow
        with the number of rows.
        """
        X, X_cov, standardised = objects
        x, S = X[rows], None if X_cov is None else X_cov[rows]
        if not standardised:
            x, S = self._standardise(x, S)
        log_w, mu, sigma, W = draws
        n_draws, K = log_w.shape
        if S is None:  # one matrix product (see _quad_coefs)
            lp = (W @ _quad_features(x)).reshape(n_draws, K, len(x))
        else:
            r = x[None, None] - mu[:, :, None]
            lp = logpdf_stack(r, sigma[:, :, None] + S[None, None]) + log_w[:, :, None]
        return np.moveaxis(lp, 1, 0)

    def _object_table(self, objects, reduce, **kwargs):
        with single_threaded_blas():  # skinny products: threads only add contention
            return super()._object_table(objects, reduce, **kwargs)

    def _object_draws(self, *, all_draws=False):
        """The standardised draws (log weights, means, covariances) per-point
        outputs average over: all, or the base's subset (:meth:`_draw_subset`)."""
        idx = None if all_draws else self._draw_subset(self._max_object_draws)
        idx = slice(None) if idx is None else idx
        return {"log_w": self._log_w[idx], "mu": self._mu[idx], "sigma": self._sigma[idx]}

    def _prepare_object_draws(self, draws):
        # Quadratic-form coefficients (see _quad_coefs): the error-free path
        # is then one matrix product per chunk of rows.
        W = _quad_coefs(draws["log_w"], draws["mu"], draws["sigma"])  # (S, K, p)
        return draws["log_w"], draws["mu"], draws["sigma"], W.reshape(-1, W.shape[-1])

    def _n_objects(self, objects):
        return objects[0].shape[0]

    def _training_objects(self):
        _require_training_rows(self._X_train, "the training points' log-likelihood")
        return self._X_train, self._S_train, True

    def _n_groups(self):
        return self.n_components

    def _object_cost(self, objects):
        # K components per (draw, row) cell; x16 keeps a chunk's tables
        # small enough (~250 000 cells, ~2 MB) to stay in cache.
        return 16 * self.n_components

    def _object_log_jacobian(self, objects):
        return np.sum(np.log(self._scale))  # of the standardisation

    def predict_membership_proba(self, X, X_err=None, X_cov=None):
        """Posterior-averaged probability that each point belongs to each component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        X_err : array-like of shape (n_samples, n_features), default=None
            Measurement errors of these points: the components are convolved
            with each point's error covariance.
        X_cov : array-like of shape (n_samples, n_features, n_features), default=None
            Full error covariances (instead of ``X_err``).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_components)
            Rows sum to 1; columns follow ``weights_``.
        """
        return self._membership_proba((*self._check_X(X, X_err, X_cov), False))

    def predict_proba(self, X, X_err=None, X_cov=None):
        """Posterior-averaged responsibilities (same as :meth:`predict_membership_proba`)."""
        return self.predict_membership_proba(X, X_err=X_err, X_cov=X_cov)

    def predict(self, X, X_err=None, X_cov=None):
        """Most probable component of each point (argmax of :meth:`predict_proba`)."""
        return np.argmax(self.predict_membership_proba(X, X_err=X_err, X_cov=X_cov), axis=1)

    def fit_predict(self, X, y=None, X_err=None, X_cov=None, sample_weight=None):
        """Fit, then :meth:`predict` the training points."""
        return self.fit(X, X_err=X_err, X_cov=X_cov, sample_weight=sample_weight).predict(
            X, X_err=X_err, X_cov=X_cov)

    def score_samples(self, X, X_err=None, X_cov=None):
        """Log posterior predictive density of each point.

        ``log E_post[sum_k w_k N(x | mu_k, Sigma_k + S_x)]``, the posterior
        average of the mixture density (convolved with the point's error
        covariance ``S_x`` when errors are given), in data units.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
        """
        return self._log_predictive_density(
            (*self._check_X(X, X_err, X_cov, method="score_samples"), False))

    def score(self, X, y=None, sample_weight=None, X_err=None, X_cov=None):
        """Mean log posterior predictive density of X (see :meth:`score_samples`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of a weighted mean.
        X_err, X_cov : array-like, default=None
            Measurement errors of X, as in :meth:`fit`.

        Returns
        -------
        score : float
        """
        return float(np.average(self.score_samples(X, X_err=X_err, X_cov=X_cov),
                                weights=sample_weight))

    # -- model selection, as in GaussianMixture --------------------------------
    def _n_parameters(self):
        d = self.n_features_in_
        k = max(int(np.argmax(self.n_components_posterior_)), 1)
        return k * (d + d * (d + 1) // 2) + k - 1

    def _plugin_loglik(self, X):
        """Log-likelihood of X at the posterior-mean parameters (one "draw" of
        the per-object layer, data units), and the number of rows."""
        X = validate_data(self, X, reset=False, dtype=np.float64)
        D = self._scale
        with np.errstate(divide="ignore"):
            plugin = {"log_w": np.log(self.weights_)[None],
                      "mu": ((self.means_ - self._loc) / D)[None],
                      "sigma": (self.covariances_ / (D[:, None] * D[None, :]))[None]}
        ll = self._object_table((X, None, False), self._mixture_loglik, draws=plugin)
        return float(ll.sum()) - X.shape[0] * np.sum(np.log(D)), X.shape[0]

    def bic(self, X):
        """Bayesian information criterion at the posterior-mean parameters.

        ``-2 log L(weights_, means_, covariances_) + p log n`` with ``p`` the
        free parameters of a mixture with the posterior-mode number of
        occupied components.
        """
        check_is_fitted(self, "posterior_")
        ll, n = self._plugin_loglik(X)
        return -2.0 * ll + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion at the posterior-mean parameters (see :meth:`bic`)."""
        check_is_fitted(self, "posterior_")
        ll, _ = self._plugin_loglik(X)
        return -2.0 * ll + 2.0 * self._n_parameters()

    # -- draws -------------------------------------------------------------------
    def sample(self, n_samples=1):
        """Draw new points from the posterior predictive distribution.

        Each point takes a random posterior draw, a component from that
        draw's weights and a position from that component (error-free).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each point.
        """
        check_is_fitted(self, "posterior_")
        if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(self.random_state)
        w = self.posterior_["weights"]
        t = rng.randint(0, len(w), size=n_samples)
        k = categorical(w[t], rng)
        L = np.linalg.cholesky(self.posterior_["covariances"][t, k])
        eps = rng.standard_normal((n_samples, self.n_features_in_))
        X = self.posterior_["means"][t, k] + np.einsum("nij,nj->ni", L, eps)
        return X, k

    def _draw_latents(self, idx, params, rng):
        """Labels (and true positions) of the training points for draws ``idx``."""
        rng = np.random.default_rng(rng.randint(0, 2**31 - 1))
        X, S = self._X_train, self._S_train
        if X is None:  # fitted on a Dask collection: the rows stay on the cluster
            return {}
        labels = np.empty((len(idx), X.shape[0]), dtype=np.intp)
        true = None if S is None else np.empty((len(idx), *X.shape))
        phi = _quad_features(X) if S is None else None
        for j, t in enumerate(idx):
            chol = np.linalg.cholesky(self._sigma[t])
            ll = _component_loglik(X, self._log_w[t], self._mu[t], self._sigma[t], S, phi)
            labels[j] = _sample_categorical(ll, rng)
            if S is not None:
                v = _draw_true_positions(X, S, self._S_sqrt_train, labels[j], self._mu[t],
                                         self._sigma[t], chol, rng)
                true[j] = self._loc + v * self._scale
        out = {"labels": labels}
        if true is not None:
            out["X_true"] = true
        return out

    # -- posterior predictive checks -------------------------------------------
    def _replicate(self, params, rng):
        """Replicated training data ``{"X": (S, n, d)}`` (data units).

        For each draw and training point: a component from the draw's
        weights, a true position from that component, and, when fitted with
        ``X_err``/``X_cov``, the point's measurement error added (the
        deconvolution model run forward).
        """
        _require_training_rows(self._X_train, "replicating the training data")
        w, mu, cov = params["weights"], params["means"], params["covariances"]
        S, K, d = mu.shape
        n = self._X_train.shape[0]
        k = categorical(np.broadcast_to(w[:, None, :], (S, n, K)), rng)
        idx = np.arange(S)[:, None]
        L = np.linalg.cholesky(cov)
        X = mu[idx, k] + np.einsum("snij,snj->sni", L[idx, k], rng.standard_normal((S, n, d)))
        if self._S_train is not None:
            root = self._S_sqrt_train * self._scale[:, None]   # data units
            X = X + np.einsum("nij,snj->sni", root, rng.standard_normal((S, n, d)))
        return {"X": X}

    # -- summaries ---------------------------------------------------------------
    def _summary_axis_labels(self):
        """A DataFrame fit's column names label the feature axes in :meth:`summary`."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return {}
        names = list(names)
        return {"means": [None, names], "covariances": [None, names, names]}

    # -- ArviZ export (the base's to_inference_data fills these groups) --------
    def _sample_stats(self, pointwise):
        """``loglik``: the training data's log-likelihood at each draw."""
        if pointwise is None:
            if self._X_train is None:  # Dask fit: the rows stay on the cluster
                return {}
            pointwise = self._pointwise_log_likelihood()
        return {"loglik": self._draws_by_chain(pointwise.sum(axis=1))}

    def _data_groups(self):
        """Training data (and error covariances), in data units."""
        D = self._scale
        if self._X_train is None:
            return {}
        groups = {"observed_data": {"X": self._loc + self._X_train * D}}
        if self._S_train is not None:
            groups["constant_data"] = {"X_cov": self._S_train * D[:, None] * D[None, :]}
        return groups

    def _inference_dims(self):
        return {
            "weights": ["component"],
            "means": ["component", "feature"],
            "covariances": ["component", "feature", "feature_bis"],
            "X": ["point", "feature"],
            "X_cov": ["point", "feature", "feature_bis"],
        }
