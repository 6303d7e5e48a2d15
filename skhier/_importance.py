"""Importance sampling from a fitted Student-t approximation, with a Pareto-k check.

For the low-dimensional, smooth posteriors of collapsed hierarchical models
(2–6 population parameters after the per-object latents are integrated
out), independent draws from a heavy-tailed approximation of the posterior,
reweighted by the exact density, are far cheaper than a Markov chain: every
draw costs one vectorised log-density evaluation and the draws are
independent. Whether the approximation is good enough is not assumed but
measured with the Pareto-k diagnostic of the importance weights (Vehtari,
Simpson, Gelman, Yao & Gabry 2024, "Pareto smoothed importance sampling",
JMLR 25, 72): k < 0.7 means the importance estimates are reliable; above
that the caller should fall back to MCMC.

Like :mod:`skhier._sampling`, this module knows nothing about any model: it
receives a vectorised ``log_prob(theta) -> (k,)`` over unconstrained
``theta`` of shape ``(k, n_params)`` and a starting guess.

Algorithm (:func:`run_importance`):

1. MAP and Laplace covariance (shared with the emcee runner);
2. proposal: multivariate Student-t (``df`` degrees of freedom) centred at
   the MAP with the Laplace covariance inflated by ``inflate²``;
3. ``n_draws`` proposal draws, log-density evaluated in chunks;
4. adaptive refinement (at most ``n_rounds - 1`` times) while k or the
   effective sample size fail: the proposal's centre and covariance are
   replaced by the weighted moments of the last round (inflated again) and
   the draws are redone;
5. Pareto-k and Kish effective sample size; the weighted draws are turned
   into equally weighted ones by systematic resampling, so that callers can
   store them exactly like MCMC draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from ._sampling import SamplerResult, find_map, laplace_covariance

__all__ = ["ImportanceResult", "pareto_khat", "run_importance", "K_THRESHOLD"]

#: Above this Pareto-k the importance estimates are unreliable (Vehtari et al.).
K_THRESHOLD = 0.7


@dataclass
class ImportanceResult:
    """Draws and diagnostics of one importance-sampling run.

    Attributes
    ----------
    samples : ndarray, shape (n_draws, n_params)
        Equally weighted draws (systematic resampling of the weighted ones).
    log_prob : ndarray, shape (n_draws,)
        Target log-density of ``samples``.
    raw_draws : ndarray, shape (n_draws, n_params)
        Proposal draws before resampling.
    weights : ndarray, shape (n_draws,)
        Normalised importance weights of ``raw_draws``.
    n_effective : float
        Kish effective sample size ``1 / sum(w²)``.
    n_effective_params : ndarray, shape (n_params,)
        Per-coordinate effective sample size: the smaller of those of the
        posterior mean and of the posterior second central moment, each
        ``Var_w(h) / sum(w² (h - E_w h)²)`` (the self-normalised importance
        sampling variance), so that ``sd / sqrt(ESS)`` is an honest Monte
        Carlo error for means and ``sd / sqrt(2 ESS)`` roughly for sds.
    pareto_k : float
        Pareto-k diagnostic of the weights.
    map_estimate : ndarray, shape (n_params,)
    proposal_cov : ndarray, shape (n_params, n_params)
    n_evaluations : int
        Log-density evaluations spent on draws (MAP search excluded).
    ok : bool
        ``pareto_k < K_THRESHOLD`` and ``n_effective >= min_ess``.
    """

    samples: np.ndarray
    log_prob: np.ndarray
    raw_draws: np.ndarray
    weights: np.ndarray
    n_effective: float
    n_effective_params: np.ndarray
    pareto_k: float
    map_estimate: np.ndarray
    proposal_cov: np.ndarray
    n_evaluations: int
    ok: bool
    messages: list[str] = field(default_factory=list)

    def as_sampler_result(self) -> SamplerResult:
        """The stored draws as a :class:`SamplerResult` (one chain of one walker).

        The equally weighted (resampled) draws stand for the chain. Resampling
        adds roughly var/N of noise on top of the importance-sampling error
        var/ESS, so each coordinate's ``n_effective`` is ``1 / (1/ESS + 1/N)``;
        ``autocorr_time`` is 1 and ``acceptance_fraction`` NaN (no chain);
        ``n_steps`` counts the log-density evaluations spent on draws.
        """
        n_stored = len(self.samples)
        ess = np.asarray(self.n_effective_params, dtype=float)
        return SamplerResult(
            samples=self.samples,
            log_prob=self.log_prob,
            chain=self.samples[:, None, :],
            acceptance_fraction=np.array([np.nan]),
            autocorr_time=np.ones(ess.size),
            n_effective=1.0 / (1.0 / ess + 1.0 / n_stored),
            n_steps=int(self.n_evaluations),
            n_burn=0,
            map_estimate=self.map_estimate,
            converged=bool(self.ok),
            messages=list(self.messages),
        )


def _gpd_fit(x: np.ndarray) -> float:
    """Shape k of a generalized Pareto fitted to exceedances ``x`` (sorted).

    Empirical-Bayes estimator of Zhang & Stephens (2009), Technometrics 51,
    316, with the weakly informative prior on k used by PSIS.
    """
    n = x.size
    prior_bs, prior_k = 3.0, 10.0
    m = 30 + int(np.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = b / (prior_bs * x[max(int(n / 4 + 0.5) - 1, 0)]) + 1.0 / x[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.log1p(-b[:, None] * x).mean(axis=1)
        len_scale = n * (np.log(-(b / k)) - k - 1.0)
    ok = np.isfinite(len_scale)
    b, len_scale = b[ok], len_scale[ok]
    with np.errstate(over="ignore"):
        w = 1.0 / np.exp(len_scale - len_scale[:, None]).sum(axis=1)
    keep = w >= 10 * np.finfo(float).eps
    w, b = w[keep], b[keep]
    w = w / w.sum()
    b_post = np.sum(b * w)
    k_post = np.log1p(-b_post * x).mean()
    return float((n * k_post + prior_k * 0.5) / (n + prior_k))


def pareto_khat(log_weights) -> float:
    """Pareto-k diagnostic of importance weights given on the log scale.

    Fits a generalized Pareto distribution to the largest
    ``min(S/5, 3 sqrt(S))`` weights (Vehtari et al. 2024). Values below 0.5
    are excellent, up to 0.7 acceptable; larger values mean the weights have
    (nearly) infinite variance.
    """
    lw = np.sort(np.asarray(log_weights, dtype=np.float64).ravel())
    lw = lw[np.isfinite(lw)]
    s = lw.size
    m = int(np.ceil(min(0.2 * s, 3.0 * np.sqrt(s))))
    if m < 5:
        return np.inf
    lw = lw - lw[-1]
    tail = lw[-m:]
    cutoff = lw[-m - 1]
    x = np.exp(tail) - np.exp(cutoff)
    if np.all(x <= 0):
        return 0.0
    x = np.sort(np.maximum(x, np.finfo(float).tiny))
    return _gpd_fit(x)


def _t_draws(rng, mean, chol, df, n):
    p = mean.size
    z = rng.standard_normal((n, p))
    chi = rng.chisquare(df, size=n) / df
    return mean + (z @ chol.T) / np.sqrt(chi)[:, None]


def _t_logpdf(x, mean, chol, df):
    p = mean.size
    sol = np.linalg.solve(chol, (x - mean).T)
    maha = np.sum(sol**2, axis=0)
    logdet = np.sum(np.log(np.diag(chol)))
    return -0.5 * (df + p) * np.log1p(maha / df) - logdet


def _evaluate(log_prob, x, chunk):
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        with np.errstate(all="ignore"):
            out[start : start + chunk] = log_prob(x[start : start + chunk])
    return np.where(np.isfinite(out), out, -np.inf)


def _ess_per_param(draws, w):
    """min over (mean, second central moment) of the IS effective sample size."""
    out = []
    for h in (draws, (draws - np.sum(w[:, None] * draws, axis=0)) ** 2):
        m = np.sum(w[:, None] * h, axis=0)
        var = np.sum(w[:, None] * (h - m) ** 2, axis=0)
        err = np.sum(w[:, None] ** 2 * (h - m) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(err > 0, var / err, len(w)))
    return np.minimum(out[0], out[1])


def _systematic_resample(weights, n, rng):
    positions = (rng.uniform() + np.arange(n)) / n
    idx = np.searchsorted(np.cumsum(weights), positions)
    return np.minimum(idx, len(weights) - 1)


def run_importance(
    log_prob,
    x0,
    *,
    n_draws: int = 2000,
    df: float = 5.0,
    inflate: float = 1.5,
    random_state,
    min_ess: float = 400.0,
    chunk: int = 256,
    x_map=None,
    cov=None,
    n_rounds: int = 3,
) -> ImportanceResult | None:
    """Importance sampling of a vectorised log-density around its MAP.

    Parameters
    ----------
    log_prob : callable
        ``log_prob(theta)`` with ``theta`` of shape ``(k, n_params)``.
    x0 : array, shape (n_params,)
        Starting point of the MAP search.
    n_draws : int, default=2000
        Proposal draws (and equally weighted output draws).
    df : float, default=5
        Degrees of freedom of the Student-t proposal.
    inflate : float, default=1.5
        Scale factor applied to the Laplace standard deviations.
    random_state : numpy RandomState
    min_ess : float, default=400
        Smallest acceptable effective sample size (Kish, and per coordinate
        for the mean and the second moment).
    chunk : int, default=256
        Draws per ``log_prob`` call (bounds memory).
    x_map, cov : array, optional
        A known MAP and Laplace covariance (skip the search).
    n_rounds : int, default=3
        Proposal rounds at most: after a round whose diagnostics fail, the
        proposal is refitted to the weighted moments of its draws.

    Returns
    -------
    ImportanceResult, or None when no Laplace approximation exists (the
    Hessian at the MAP is not negative definite): use MCMC then.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x_map is None:
        x_map = find_map(log_prob, x0)
    if cov is None:
        cov = laplace_covariance(log_prob, x_map)
    if cov is None:
        return None
    mean = np.asarray(x_map, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64) * inflate**2
    n_eval = 0
    messages: list[str] = []
    for round_ in range(n_rounds):
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            return None
        draws = _t_draws(random_state, mean, chol, df, n_draws)
        lp = _evaluate(log_prob, draws, chunk)
        n_eval += n_draws
        lw = lp - _t_logpdf(draws, mean, chol, df)
        if not np.any(np.isfinite(lw)):
            return None
        w = np.exp(lw - logsumexp(lw))
        ess = float(1.0 / np.sum(w**2))
        ess_params = _ess_per_param(draws, w)
        ess = min(ess, float(np.min(ess_params)))
        k = pareto_khat(lw)
        if (k < K_THRESHOLD and ess >= min_ess) or round_ == n_rounds - 1:
            break
        # Adapt: weighted moments of this round, inflated again.
        messages.append(
            f"round {round_ + 1}: pareto_k={k:.2f}, ess={ess:.0f}; proposal refitted"
        )
        mean = np.sum(w[:, None] * draws, axis=0)
        d = draws - mean
        new_cov = (w[:, None] * d).T @ d
        new_cov = 0.5 * (new_cov + new_cov.T) * inflate**2
        if not np.all(np.isfinite(new_cov)) or np.linalg.eigvalsh(new_cov).min() <= 0:
            break
        cov = new_cov
    ok = bool(k < K_THRESHOLD and ess >= min_ess)
    if not ok:
        messages.append(
            f"Importance sampling unreliable: pareto_k={k:.2f} (threshold {K_THRESHOLD}), "
            f"effective sample size {ess:.0f} (minimum {min_ess:.0f})."
        )
    idx = _systematic_resample(w, n_draws, random_state)
    return ImportanceResult(
        samples=draws[idx],
        log_prob=lp[idx],
        raw_draws=draws,
        weights=w,
        n_effective=float(1.0 / np.sum(w**2)),
        n_effective_params=ess_params,
        pareto_k=float(k),
        map_estimate=np.asarray(x_map, dtype=np.float64),
        proposal_cov=cov,
        n_evaluations=n_eval,
        ok=ok,
        messages=messages,
    )
