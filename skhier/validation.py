"""Validation tools: simulation-based calibration (Talts et al. 2018).

If data are simulated from the model's own prior and likelihood, the rank of
the true parameter value among L posterior draws is uniform on {0, ..., L}
for a correct inference. :func:`simulation_based_calibration` runs that
experiment for any skhier estimator and returns the ranks with a chi-square
uniformity test per parameter and a plot.

The estimator is used only through its public API (``clone``,
``set_params(random_state=...)``, ``fit``, ``sample_posterior``, and for
predictive checks ``sample_posterior_predictive`` and ``observed_data``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.utils import check_random_state

__all__ = ["SBCResult", "simulation_based_calibration", "rank_uniformity_test"]


def rank_uniformity_test(ranks, n_draws: int, n_bins: int = 10) -> tuple[float, float]:
    """Chi-square test that ranks are uniform on {0, ..., n_draws}.

    The ``n_draws + 1`` possible ranks are grouped into ``n_bins`` bins of
    (as nearly as possible) equal width; expected counts account for unequal
    bin widths.

    Returns
    -------
    statistic, p_value : float

    Examples
    --------
    >>> import numpy as np
    >>> from skhier.validation import rank_uniformity_test
    >>> ranks = np.random.default_rng(0).integers(0, 101, size=500)
    >>> stat, p = rank_uniformity_test(ranks, 100)
    >>> bool(p > 0.01)
    True
    """
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError("ranks must be a non-empty 1-D array.")
    if np.any((ranks < 0) | (ranks > n_draws)):
        raise ValueError(f"ranks must lie in 0..{n_draws}.")
    n_bins = int(min(n_bins, n_draws + 1))
    edges = np.linspace(0, n_draws + 1, n_bins + 1)
    edges = np.unique(np.floor(edges).astype(int))
    counts = np.histogram(ranks, bins=edges)[0]
    expected = len(ranks) * np.diff(edges) / (n_draws + 1)
    stat = float(np.sum((counts - expected) ** 2 / expected))
    p = float(stats.chi2.sf(stat, df=len(counts) - 1))
    return stat, p


@dataclass
class SBCResult:
    """Ranks of the true values among posterior draws, per parameter.

    Attributes
    ----------
    ranks : dict of str -> ndarray of int, shape (n_simulations,)
    n_draws : int
        Posterior draws per simulation (ranks lie in 0..n_draws).
    n_bins : int
        Bins of the chi-square test.
    truths : dict of str -> ndarray, shape (n_simulations,)
    statistics, p_values : dict of str -> float
        Chi-square uniformity test of each parameter's ranks.
    """

    ranks: dict
    n_draws: int
    n_bins: int
    truths: dict = field(default_factory=dict)
    statistics: dict = field(default_factory=dict)
    p_values: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, r in self.ranks.items():
            self.statistics[name], self.p_values[name] = rank_uniformity_test(
                r, self.n_draws, self.n_bins
            )

    def is_uniform(self, alpha: float = 0.001) -> bool:
        """Whether no parameter's test rejects uniformity at level ``alpha``
        (Bonferroni-corrected over parameters)."""
        return all(p >= alpha / len(self.p_values) for p in self.p_values.values())

    def plot(self, fig=None):
        """Histogram of ranks per parameter with the 99% band of uniformity."""
        import matplotlib.pyplot as plt

        names = list(self.ranks)
        if fig is None:
            fig = plt.figure(figsize=(3.2 * len(names), 2.8), layout="constrained")
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        m = len(next(iter(self.ranks.values())))
        edges = np.unique(np.floor(np.linspace(0, self.n_draws + 1, self.n_bins + 1)).astype(int))
        for ax, name in zip(axes, names, strict=True):
            ax.hist(self.ranks[name], bins=edges, color="C0", alpha=0.7)
            p_bin = np.diff(edges) / (self.n_draws + 1)
            lo = stats.binom.ppf(0.005, m, p_bin.mean())
            hi = stats.binom.ppf(0.995, m, p_bin.mean())
            ax.axhspan(lo, hi, color="0.8", zorder=0)
            ax.set_title(f"{name}  (p = {self.p_values[name]:.2g})", fontsize=9)
            ax.set_xlabel("rank of truth")
        return fig


def _flatten(params: dict, names) -> dict:
    out = {}
    for name in names:
        v = np.asarray(params[name], dtype=float)
        if v.ndim <= 1:
            out[name] = v.reshape(-1)
        else:
            flat = v.reshape(v.shape[0], -1)
            for j in range(flat.shape[1]):
                out[f"{name}[{j}]"] = flat[:, j]
    return out


def _one_simulation(estimator, simulate, seed, n_draws, params, statistic=None,
                    predictive=None):
    rng = np.random.RandomState(seed)
    truth, X, y, fit_kwargs = simulate(rng)
    est = clone(estimator)
    if "random_state" in est.get_params():
        est.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
    est.fit(X, y, **(fit_kwargs or {}))
    draws = est.sample_posterior(n_draws, random_state=rng.randint(np.iinfo(np.int32).max))
    if statistic is not None:
        draws = statistic(draws)
        truth = {k: np.asarray(v)[0] for k, v in
                 statistic({k: np.asarray(v)[None] for k, v in truth.items()}).items()}
    names = list(truth) if params is None else list(params)
    d = _flatten(draws, names)
    t = _flatten({k: np.asarray(truth[k])[None] for k in names}, names)
    ranks = {k: int(np.sum(d[k] < t[k][0])) for k in d}
    truths = {k: float(t[k][0]) for k in d}
    if predictive is not None:
        # Sampled posterior predictive p-value: replicates from ONE posterior
        # draw, so that (draw, data) has the law of (truth, data).
        reps = est.sample_posterior_predictive(
            n_draws, random_state=rng.randint(np.iinfo(np.int32).max),
            draw=int(rng.randint(est.n_draws_)))
        observed = {k: np.asarray(v)[None] for k, v in est.observed_data().items()}
        t_obs, t_rep = predictive(observed), predictive(reps)
        for k in t_obs:
            name = f"predictive:{k}"
            truths[name] = float(np.ravel(t_obs[k])[0])
            ranks[name] = int(np.sum(np.asarray(t_rep[k]) < truths[name]))
    return ranks, truths


def simulation_based_calibration(
    estimator,
    simulate,
    n_simulations: int,
    *,
    params=None,
    n_draws: int = 99,
    n_bins: int = 10,
    random_state=None,
    n_jobs=None,
    statistic=None,
    predictive=None,
) -> SBCResult:
    """Simulation-based calibration of an estimator (Talts et al. 2018).

    Parameters
    ----------
    estimator : skhier estimator (unfitted)
        Cloned for every simulation; its ``random_state`` is set per run.
    simulate : callable
        ``simulate(rng) -> (truth, X, y, fit_kwargs)`` draws the parameters
        from **the estimator's own prior**, simulates data from them, and
        returns the true values (dict name -> value, names as in
        ``sample_posterior``), the data and extra ``fit`` keyword arguments
        (e.g. ``{"X_err": ...}``; ``None`` for none).
    n_simulations : int
        Number of simulated data sets (a few hundred for a useful test).
    params : list of str, optional
        Parameters to rank (default: every key of ``truth``).
    n_draws : int, default=99
        Posterior draws per simulation (taken at random from the stored
        chain, which keeps them close to independent); ranks lie in
        ``0..n_draws``.
    n_bins : int, default=10
        Bins of the chi-square uniformity test.
    random_state : int, RandomState instance or None
        Seeds all simulations.
    n_jobs : int or None
        Parallel simulations through joblib (``None``: one process).
    statistic : callable, optional
        ``statistic(draws) -> dict`` of name -> array with the draws on axis
        0, applied to the posterior draws (the dict from
        ``sample_posterior``) and to ``truth`` (given with a leading axis of
        length 1); the ranks are then those of these functions of the
        parameters. Calibration holds for any function of the parameters, so
        this is how label-free quantities of a mixture (e.g. the component
        means sorted) are checked when the labels themselves are arbitrary.
    predictive : callable, optional
        ``predictive(data) -> dict`` of name -> array of test statistics of
        data sets, one per entry of the leading axis of ``data`` (a dict
        like ``estimator.sample_posterior_predictive``'s result; the
        observed data are passed with a leading axis of length 1). Adds
        the rank ``"predictive:<name>"`` of the observed statistic among
        ``n_draws`` replicates made with one posterior draw (the sampled
        posterior predictive p-value, Johnson 2007; Gosselin 2011): uniform
        too when the replicates are drawn right.

    Returns
    -------
    SBCResult

    References
    ----------
    .. [1] Talts, S., Betancourt, M., Simpson, D., Vehtari, A. & Gelman, A.
       (2018), "Validating Bayesian inference algorithms with simulation-based
       calibration", arXiv:1804.06788.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import RobustLineMixture
    >>> from skhier.validation import simulation_based_calibration
    >>> def simulate(rng):  # a flat-ish prior stand-in, for illustration only
    ...     m = rng.normal(1.0, 0.1)
    ...     X = rng.uniform(-1, 1, size=(20, 1))
    ...     y = m * X[:, 0] + rng.normal(0, 0.1, 20)
    ...     return {"coef": [m]}, X, y, {"y_err": np.full(20, 0.1)}
    >>> est = RobustLineMixture(scatter=None, outliers=False, n_steps=600)
    >>> def spread(data):  # a test statistic of each data set
    ...     return {"sd_y": data["y"].std(axis=-1)}
    >>> res = simulation_based_calibration(est, simulate, 5, n_draws=19, random_state=0,
    ...                                    predictive=spread)
    >>> sorted(res.ranks)
    ['coef[0]', 'predictive:sd_y']
    """
    if isinstance(n_simulations, bool) or int(n_simulations) != n_simulations or n_simulations < 1:
        raise ValueError(f"n_simulations must be a positive integer, got {n_simulations!r}.")
    if int(n_draws) != n_draws or n_draws < 1:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}.")
    if not callable(simulate):
        raise TypeError("simulate must be a callable simulate(rng) -> (truth, X, y, fit_kwargs).")
    if statistic is not None and not callable(statistic):
        raise TypeError(f"statistic must be callable or None, got {type(statistic).__name__}.")
    if predictive is not None and not callable(predictive):
        raise TypeError(f"predictive must be callable or None, got {type(predictive).__name__}.")
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=int(n_simulations))
    if n_jobs in (None, 1):
        results = [
            _one_simulation(estimator, simulate, s, int(n_draws), params, statistic, predictive)
            for s in seeds
        ]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(
            delayed(_one_simulation)(estimator, simulate, s, int(n_draws), params, statistic,
                                     predictive)
            for s in seeds
        )
    names = list(results[0][0])
    ranks = {k: np.array([r[0][k] for r in results]) for k in names}
    truths = {k: np.array([r[1][k] for r in results]) for k in names}
    return SBCResult(ranks=ranks, n_draws=int(n_draws), n_bins=n_bins, truths=truths)
