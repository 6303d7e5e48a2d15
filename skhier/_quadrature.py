"""Deterministic quadrature over a low-dimensional posterior (adaptive Gauss–Hermite).

Collapsed hierarchical models leave 2–4 population parameters whose
posterior, for thousands of objects, is smooth and close to Gaussian. Its
moments are then integrals that a tensor Gauss–Hermite rule in the
posterior's own whitened coordinates computes with no Monte Carlo error at
all and with a few dozen to a few hundred log-density evaluations (Naylor
& Smith 1982, "Applications of a method for the efficient computation of
posterior distributions", Applied Statistics 31, 214; Liu & Pierce 1994,
"A note on Gauss–Hermite quadrature", Biometrika 81, 624):

    E[h(θ)] = ∫ h(θ) p(θ) dθ ≈ Σ_j W_j h(θ_j),
    θ_j = m + C u_j,  W_j ∝ w_j p(θ_j) / φ(u_j),

with ``(u_j, w_j)`` the tensor Gauss–Hermite rule of the standard normal
``φ``. The rule is exact when ``h(θ) p(θ) / φ(u)`` is a polynomial of
degree < 2K in each coordinate; for a near-Gaussian posterior the ratio
is smooth and the error falls quickly with K.

Algorithm (:func:`run_quadrature`):

1. the first rule is centred at the MAP with the Laplace covariance;
2. each next rule (more nodes) is centred at the previous rule's posterior
   mean and covariance (adaptive Gauss–Hermite);
3. it stops when two consecutive rules agree on every coordinate's mean
   and standard deviation within ``tol`` posterior standard deviations
   (and the posterior mass on the outermost nodes in excess of the rule's
   own Gaussian mass there, times their distance in rule widths, is below
   ``tol``: the grid covers the posterior); the
   first rule already ends the run when it moves the mean by more than
   half a Laplace width (the posterior is then far from Gaussian, and
   the caller should sample it instead); that difference is reported as the error of the result (the error of
   the coarser rule, an upper estimate for the finer one);
4. posterior draws, for quantiles and per-object latents, come from the
   quadrature posterior itself: a polynomial (total degree <= 4) fitted to
   the log-density at the last rule's nodes, sampled by importance
   resampling of Student-t draws against that cheap surrogate (no further
   log-density evaluations). The surrogate's moments are checked against
   the quadrature's.

Like :mod:`skhier._importance`, this module knows nothing about any model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from ._importance import (
    K_THRESHOLD,
    ImportanceResult,
    _ess_per_param,
    _evaluate,
    _systematic_resample,
    _t_draws,
    _t_logpdf,
    pareto_khat,
)

__all__ = ["DeterministicResult", "QuadratureResult", "run_quadrature", "tensor_gauss_hermite", "DEFAULT_LEVELS"]

#: Nodes per coordinate of the successive rules, by number of parameters.
DEFAULT_LEVELS = {1: (8, 12, 16, 24), 2: (6, 8, 12, 16), 3: (5, 7, 9), 4: (4, 6)}
#: Tensor nodes whose weight is below this fraction are dropped (corners of
#: the grid, where a near-Gaussian posterior has no mass).
_MIN_WEIGHT = 1e-12
#: Largest total degree of the surrogate polynomial behind the draws.
_SURROGATE_DEGREE = 4


def tensor_gauss_hermite(n_dim: int, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite rule of the standard normal in ``n_dim`` dimensions.

    Returns nodes ``u`` of shape (m, n_dim) and log-weights (m,) summing to
    one (``Σ w h(u) ≈ E h(U)``, ``U ~ N(0, I)``), without the nodes whose
    weight is below ``1e-12``.
    """
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    lw1 = np.log(w / w.sum())
    u = np.array(list(itertools.product(x, repeat=n_dim)))
    lw = np.array([sum(c) for c in itertools.product(lw1, repeat=n_dim)])
    keep = lw > np.log(_MIN_WEIGHT)
    u, lw = u[keep], lw[keep]
    return u, lw - logsumexp(lw)


def _monomials(u: np.ndarray, degree: int) -> np.ndarray:
    """All monomials of total degree <= ``degree`` of the columns of ``u``."""
    n, p = u.shape
    cols = [np.ones(n)]
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(p), deg):
            cols.append(np.prod(u[:, combo], axis=1))
    return np.stack(cols, axis=1)


@dataclass
class DeterministicResult:
    """What every deterministic integrator over the population parameters
    returns (Gauss–Hermite rules here, the lattice of :mod:`skhier._grid`).

    Duck-types :class:`skhier._importance.ImportanceResult` (``samples``,
    ``log_prob``, ``raw_draws``, ``weights``, ``pareto_k``, ``ok``,
    ``messages``, :meth:`as_sampler_result`) so that estimators store it
    through the same path.

    Attributes
    ----------
    mean : ndarray, shape (n_params,)
        Posterior mean of the unconstrained parameters.
    cov : ndarray, shape (n_params, n_params)
        Posterior covariance.
    error : ndarray, shape (n_params,)
        Per coordinate, the estimated error of the mean and standard
        deviation, in posterior standard deviations (how each integrator
        estimates it is said in its subclass).
    nodes, node_log_prob, node_weights : ndarray
        The last rule's nodes (unconstrained parameters), exact log-density
        there and normalised posterior weights (``Σ W h(nodes)`` is the
        estimate of ``E h``).
    samples, log_prob, raw_draws, weights, n_effective_params : ndarray
        Draws from the integrated posterior for ``posterior_``, as an
        importance result stores them.
    map_estimate : ndarray
        The posterior maximum the integrator started from.
    n_evaluations : int
        Points at which the log-density was evaluated.
    ok : bool
        Whether the integrator met its tolerance.
    """

    mean: np.ndarray
    cov: np.ndarray
    error: np.ndarray
    nodes: np.ndarray
    node_log_prob: np.ndarray
    node_weights: np.ndarray
    samples: np.ndarray
    log_prob: np.ndarray
    raw_draws: np.ndarray
    weights: np.ndarray
    n_effective_params: np.ndarray
    map_estimate: np.ndarray
    n_evaluations: int
    ok: bool

    # The stored draws are independent, like importance draws after
    # resampling: the same conversion (one chain of one walker).
    as_sampler_result = ImportanceResult.as_sampler_result


@dataclass
class QuadratureResult(DeterministicResult):
    """Moments, error and draws of one adaptive Gauss–Hermite run.

    The fields of :class:`DeterministicResult`, where ``error`` is the
    larger of the mean's and the standard deviation's change between the
    last two rules, and ``raw_draws`` and ``weights`` are those of the
    surrogate draws, whose effective sample size is that of ``samples``;
    and:

    Attributes
    ----------
    n_nodes : int
        Gauss–Hermite nodes per coordinate of the last rule.
    surrogate_error : float
        Largest difference between the surrogate's and the quadrature's
        mean or sd (in posterior sd), measured on the surrogate draws.
    pareto_k : float
        Pareto-k of the surrogate draws' importance weights.
    """

    n_nodes: int
    surrogate_error: float
    pareto_k: float
    messages: list[str] = field(default_factory=list)
    method: str = "quadrature"


def _rule_moments(log_prob, centre, chol, n_nodes, chunk):
    u, lw = tensor_gauss_hermite(centre.size, n_nodes)
    theta = centre + u @ chol.T
    lp = _evaluate(log_prob, theta, chunk)
    lr = lw + lp + 0.5 * np.sum(u**2, axis=1)
    if not np.any(np.isfinite(lr)):
        return None
    W = np.exp(lr - logsumexp(lr))
    mean = W @ theta
    d = theta - mean
    cov = (W[:, None] * d).T @ d
    # Posterior mass on the rule's outermost nodes in excess of the rule's
    # own Gaussian mass there, times their distance (in rule widths): an
    # estimate of what the region beyond the grid could add to a mean, in
    # posterior sd (zero for a posterior as light-tailed as the rule, on
    # which the rule is exact).
    edge = np.any(np.abs(u) >= np.abs(u).max() - 1e-9, axis=1)
    excess = max(float(np.sum(W[edge]) - np.sum(np.exp(lw[edge]))), 0.0)
    return dict(u=u, theta=theta, lp=lp, W=W, mean=mean, cov=0.5 * (cov + cov.T),
                centre=centre, chol=chol, edge=excess * float(np.abs(u).max()))


def run_quadrature(
    log_prob,
    x_map,
    cov,
    *,
    random_state,
    levels=None,
    tol: float = 0.02,
    n_draws: int = 4000,
    draw_factor: int = 8,
    chunk: int = 256,
) -> QuadratureResult | None:
    """Adaptive Gauss–Hermite quadrature of a vectorised log-density.

    Parameters
    ----------
    log_prob : callable
        ``log_prob(theta)`` with ``theta`` of shape ``(k, n_params)``.
    x_map : array, shape (n_params,)
        Posterior maximum (centre of the first rule).
    cov : array, shape (n_params, n_params)
        Laplace covariance at ``x_map``.
    random_state : numpy RandomState
        For the draws from the quadrature posterior only; the moments are
        deterministic.
    levels : sequence of int, optional
        Nodes per coordinate of the successive rules (default
        ``DEFAULT_LEVELS[n_params]``).
    tol : float, default=0.02
        Stop when two consecutive rules agree within ``tol`` posterior
        standard deviations on every mean and sd (0.02 is the Monte Carlo
        error of the mean from 2 500 independent draws).
    n_draws : int, default=4000
        Posterior draws returned (equally weighted).
    draw_factor : int, default=8
        Surrogate proposal draws per returned draw.
    chunk : int, default=256
        Points per ``log_prob`` call.

    Returns
    -------
    QuadratureResult, or None when the dimension has no default rule or the
    log-density is not finite at any node. ``ok`` is False when the rules
    did not agree within ``tol``, the posterior has mass on the grid's
    edge, or the surrogate's draws disagree with the quadrature moments.
    """
    x_map = np.asarray(x_map, dtype=np.float64)
    p = x_map.size
    if levels is None:
        levels = DEFAULT_LEVELS.get(p)
    if not levels:
        return None
    try:
        cov = np.asarray(cov, dtype=np.float64)
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    centre = x_map
    prev = None
    n_eval = 0
    messages: list[str] = []
    error = np.full(p, np.inf)
    for K in levels:
        cur = _rule_moments(log_prob, centre, chol, K, chunk)
        if cur is None:
            return None
        n_eval += len(cur["u"])
        cur["K"] = K
        sd = np.sqrt(np.diag(cur["cov"]))
        if prev is None:
            # Far from Gaussian (the first rule moves the mean by more than
            # half a Laplace width, or changes a width by 1.5x): more nodes
            # would reach into the tails at great cost; stop here.
            sd0 = np.sqrt(np.diag(cov))
            far = np.max(np.abs(cur["mean"] - x_map) / sd0)
            ratio = np.max(np.abs(np.log(sd / sd0)))
            if not (far < 0.5 and ratio < np.log(1.5)):
                messages.append(
                    f"Quadrature abandoned: the posterior is far from its Laplace "
                    f"approximation (mean moved by {far:.2g} Laplace sd, widths changed by "
                    f"up to {np.exp(ratio):.2g}x)."
                )
                prev_ok = cur
                break
        if prev is not None:
            d_mean = np.abs(cur["mean"] - prev["mean"]) / sd
            d_sd = np.abs(sd - np.sqrt(np.diag(prev["cov"]))) / sd
            error = np.maximum(d_mean, d_sd)
        prev_ok = cur
        if np.all(error < tol) and cur["edge"] < tol:
            break
        prev = cur
        try:
            chol_new = np.linalg.cholesky(cur["cov"])
        except np.linalg.LinAlgError:
            break
        if not (np.all(np.isfinite(cur["mean"])) and np.all(np.isfinite(chol_new))):
            break
        centre, chol = cur["mean"], chol_new
    cur = prev_ok
    ok = bool(np.all(error < tol) and cur["edge"] < tol)
    if not ok and not messages:
        messages.append(
            f"Quadrature not converged: the last two rules differ by {np.max(error):.3g} "
            f"posterior sd (tolerance {tol}); edge mass x distance {cur['edge']:.2g}."
        )

    # Draws from the quadrature posterior: log p(theta(u)) + |u|²/2 ≈ P(u),
    # a polynomial fitted at the last rule's nodes (weighted by their mass,
    # with a floor so that no node is ignored), evaluated at u clipped to
    # the nodes' range.
    mean, post_cov = cur["mean"], cur["cov"]
    u_nodes, theta_nodes = cur["u"], cur["theta"]
    c_rule, L_rule = cur["centre"], cur["chol"]
    finite = np.isfinite(cur["lp"])
    g = cur["lp"] + 0.5 * np.sum(u_nodes**2, axis=1)
    degree = min(_SURROGATE_DEGREE, cur["K"] - 1)
    A = _monomials(u_nodes[finite], degree)
    sw = np.sqrt(np.maximum(cur["W"][finite], 1e-6 / finite.sum()))
    coef = np.linalg.lstsq(A * sw[:, None], g[finite] * sw, rcond=None)[0]
    u_max = np.abs(u_nodes).max()

    def surrogate(theta):
        u = np.linalg.solve(L_rule, (theta - c_rule).T).T
        return _monomials(np.clip(u, -u_max, u_max), degree) @ coef - 0.5 * np.sum(u**2, axis=1)

    prop_chol = np.linalg.cholesky(post_cov) * 1.2
    m = draw_factor * n_draws
    draws = _t_draws(random_state, mean, prop_chol, 7.0, m)
    s_lp = surrogate(draws)
    lw = s_lp - _t_logpdf(draws, mean, prop_chol, 7.0)
    w = np.exp(lw - logsumexp(lw))
    ess_params = _ess_per_param(draws, w)
    k_hat = pareto_khat(lw)
    s_mean = w @ draws
    s_sd = np.sqrt(w @ (draws - s_mean) ** 2)
    sd = np.sqrt(np.diag(post_cov))
    surrogate_error = float(np.max(np.maximum(np.abs(s_mean - mean) / sd,
                                              np.abs(s_sd - sd) / sd)))
    # The surrogate's own Monte Carlo error (~1/sqrt(ESS)) plus the allowed
    # quadrature error: beyond that the polynomial does not represent the
    # posterior (heavy tails, a boundary).
    mc = 4.0 / np.sqrt(max(float(np.min(ess_params)), 1.0))
    if not surrogate_error < 5 * tol + mc or not k_hat < K_THRESHOLD:
        ok = False
        messages.append(
            f"Draws from the quadrature posterior disagree with its moments by "
            f"{surrogate_error:.3g} sd (Pareto-k {k_hat:.2f})."
        )
    idx = _systematic_resample(w, n_draws, random_state)
    return QuadratureResult(
        mean=mean, cov=post_cov, error=error, nodes=theta_nodes, node_log_prob=cur["lp"],
        node_weights=cur["W"], n_nodes=int(cur["K"]), surrogate_error=surrogate_error,
        samples=draws[idx], log_prob=s_lp[idx], raw_draws=draws, weights=w,
        n_effective_params=ess_params, pareto_k=float(k_hat), map_estimate=x_map,
        n_evaluations=n_eval, ok=ok, messages=messages,
    )
