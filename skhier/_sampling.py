"""Samplers over a small parameter vector.

The runner knows nothing about lines or clusters: it receives a vectorised
log-density ``log_prob(theta) -> (n_walkers,)`` over an unconstrained
parameter vector ``theta`` of shape ``(n_walkers, n_params)`` and a starting
guess, and returns draws with their diagnostics.

Strategy:

1. find the maximum a posteriori point with ``scipy.optimize`` and a
   finite-difference Hessian there (both vectorised: one log-prob call per
   Hessian);
2. start the emcee walkers from the Laplace approximation, shrunk so that
   every walker starts in the bulk of the posterior;
3. run ``emcee.EnsembleSampler(vectorize=True)`` for ``n_steps`` steps, or in
   ``"auto"`` mode in blocks until the kept chain is longer than
   ``TAU_MULTIPLE`` integrated autocorrelation times (or ``max_steps``);
4. warn with :class:`sklearn.exceptions.ConvergenceWarning` whenever the
   kept chain is shorter than ``TAU_MULTIPLE`` autocorrelation times.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import emcee
import numpy as np
from emcee.pbar import get_progress_bar
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning

from .diagnostics import integrated_autocorr_time
from .utils._warnings import warn

__all__ = [
    "SamplerResult", "find_map", "laplace_covariance", "newton_map", "run_emcee", "TAU_MULTIPLE",
]

#: A kept chain shorter than this many autocorrelation times triggers a warning.
TAU_MULTIPLE = 50

#: The emcee move mixture used by :func:`run_emcee`, as (move factory, weight)
#: pairs; tests/test_engine.py samples known targets with it.
MOVES_SPEC = (("DEMove", 0.8), ("StretchMove", 0.2))


def _moves():
    return [(getattr(emcee.moves, name)(), w) for name, w in MOVES_SPEC]


@dataclass
class SamplerResult:
    """Draws and diagnostics of one sampler run.

    Attributes
    ----------
    samples : ndarray, shape (n_draws, n_params)
        Kept, thinned draws flattened over walkers.
    log_prob : ndarray, shape (n_draws,)
    chain : ndarray, shape (n_kept_steps, n_walkers, n_params)
        Kept (post burn-in, thinned) chain, for diagnostics and trace plots.
    acceptance_fraction : ndarray, shape (n_walkers,)
    autocorr_time : ndarray, shape (n_params,)
        Integrated autocorrelation time in (unthinned) steps.
    n_effective : ndarray, shape (n_params,)
        Effective number of independent draws per parameter, of the stored
        (kept, thinned) draws.
    n_steps, n_burn : int
        Steps run in total, and steps discarded as burn-in.
    map_estimate : ndarray, shape (n_params,)
    converged : bool
        ``n_kept_steps >= TAU_MULTIPLE * max(autocorr_time)``.
    """

    samples: np.ndarray
    log_prob: np.ndarray
    chain: np.ndarray
    acceptance_fraction: np.ndarray
    autocorr_time: np.ndarray
    n_effective: np.ndarray
    n_steps: int
    n_burn: int
    map_estimate: np.ndarray
    converged: bool
    messages: list[str] = field(default_factory=list)


def _scalar_log_prob(log_prob):
    def f(x):
        with np.errstate(all="ignore"):
            val = log_prob(np.atleast_2d(x))[0]
        return -val if np.isfinite(val) else 1e300

    return f


def find_map(log_prob, x0, *, maxiter: int = 2000) -> np.ndarray:
    """Maximum of a vectorised log-density, started at ``x0``.

    BFGS first (smooth posteriors), then Nelder–Mead polishing when BFGS
    stops on a non-finite point or fails to improve on the start.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    f = _scalar_log_prob(log_prob)
    f0 = f(x0)
    if f0 >= 1e300:
        raise ValueError(
            "The log-posterior is not finite at the starting point; "
            "check the data and priors."
        )
    best = x0
    best_f = f0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = optimize.minimize(f, x0, method="BFGS", options={"maxiter": maxiter})
        if np.all(np.isfinite(res.x)) and res.fun < best_f:
            best, best_f = res.x, res.fun
        if not res.success or best_f >= f0:
            res2 = optimize.minimize(
                f,
                best,
                method="Nelder-Mead",
                options={"maxiter": maxiter * len(x0), "xatol": 1e-8, "fatol": 1e-10},
            )
            if np.all(np.isfinite(res2.x)) and res2.fun < best_f:
                best = res2.x
    return np.asarray(best, dtype=np.float64)


def _fd_derivatives(log_prob, x, step: float = 1e-4):
    """Value, gradient and Hessian of ``log_prob`` at ``x`` by central differences.

    All stencil points (``1 + 2p + 2p(p-1)``) are evaluated in a single
    vectorised call. Returns None when any of them is not finite.
    """
    x = np.asarray(x, dtype=np.float64)
    p = x.size
    h = step * np.maximum(1.0, np.abs(x))
    eye = np.eye(p) * h
    pts = [x]
    for i in range(p):
        pts += [x + eye[i], x - eye[i]]
    pairs = [(i, j) for i in range(p) for j in range(i + 1, p)]
    for i, j in pairs:
        pts += [
            x + eye[i] + eye[j],
            x + eye[i] - eye[j],
            x - eye[i] + eye[j],
            x - eye[i] - eye[j],
        ]
    with np.errstate(all="ignore"):
        vals = np.asarray(log_prob(np.array(pts)), dtype=np.float64)
    if not np.all(np.isfinite(vals)):
        return None
    f0 = vals[0]
    grad = (vals[1:1 + 2 * p:2] - vals[2:2 + 2 * p:2]) / (2 * h)
    hess = np.empty((p, p))
    for i in range(p):
        hess[i, i] = (vals[1 + 2 * i] - 2 * f0 + vals[2 + 2 * i]) / h[i] ** 2
    base = 1 + 2 * p
    for k, (i, j) in enumerate(pairs):
        fpp, fpm, fmp, fmm = vals[base + 4 * k : base + 4 * k + 4]
        hess[i, j] = hess[j, i] = (fpp - fpm - fmp + fmm) / (4 * h[i] * h[j])
    return f0, grad, hess


def laplace_covariance(log_prob, x, *, step: float = 1e-4) -> np.ndarray | None:
    """Inverse of the negative Hessian of ``log_prob`` at ``x``.

    Central finite differences with all stencil points evaluated in a single
    vectorised call. Returns ``None`` when the Hessian is not negative
    definite (e.g. ``x`` is not a maximum).
    """
    out = _fd_derivatives(log_prob, x, step)
    if out is None:
        return None
    try:
        cov = np.linalg.inv(-out[2])
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return 0.5 * (cov + cov.T)


#: Newton decrement (predicted log-density gain) below which a step that
#: fails to improve the log-density counts as convergence: the maximum is
#: then within ~0.005 posterior sd.
_NOISE_DECREMENT = 1e-5


def newton_map(log_prob, x0, *, max_iter: int = 30, tol: float = 1e-7,
               return_cov: bool = False):
    """Maximum of a smooth vectorised log-density by damped Newton steps.

    Gradient and Hessian come from one vectorised finite-difference stencil
    per step (:func:`_fd_derivatives`), so a step costs ``1 + 2p²`` points
    in one call instead of the hundreds of scalar calls of a quasi-Newton
    search; near-Gaussian posteriors converge in a few steps. Stops when the
    Newton decrement ``g' (-H)^-1 g / 2`` (the predicted log-density gain)
    is below ``tol``. Falls back to :func:`find_map` from the current point
    when the Hessian is not negative definite or no step improves.

    With ``return_cov``, returns ``(x, cov)``: ``cov`` is the Laplace
    covariance (as :func:`laplace_covariance`) from the stencil evaluated
    at the returned point, or None when the search ended otherwise (the
    caller then computes it).
    """
    x = np.asarray(x0, dtype=np.float64)

    def done(x, cov=None):
        return (x, cov) if return_cov else x

    for _ in range(max_iter):
        out = _fd_derivatives(log_prob, x)
        if out is None:
            return done(find_map(log_prob, x))
        f0, grad, hess = out
        try:
            chol = np.linalg.cholesky(-hess)
        except np.linalg.LinAlgError:
            return done(find_map(log_prob, x))
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
        decrement = 0.5 * float(grad @ step)
        if decrement < tol:
            cov = np.linalg.inv(-hess)
            return done(x, 0.5 * (cov + cov.T))
        t = 1.0
        while t > 1e-4:
            with np.errstate(all="ignore"):
                f1 = log_prob((x + t * step)[None, :])[0]
            if np.isfinite(f1) and f1 >= f0:
                break
            t *= 0.5
        else:
            if decrement < _NOISE_DECREMENT:
                # Converged to within the log-density's own noise (sums over
                # 10^5 objects carry ~1e-7 of rounding and rule switching).
                cov = np.linalg.inv(-hess)
                return done(x, 0.5 * (cov + cov.T))
            return done(find_map(log_prob, x))
        x = x + t * step
    return done(x)


def _initial_walkers(log_prob, x_map, cov, n_walkers, rng) -> np.ndarray:
    """Walkers drawn from a shrunk Laplace approximation around the MAP.

    Any start with a non-finite log-density is redrawn closer to the MAP.
    """
    p = x_map.size
    if cov is None:
        cov = np.diag((1e-2 * np.maximum(1.0, np.abs(x_map))) ** 2)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(p))
    scale = 0.5
    for _ in range(30):
        z = rng.standard_normal((n_walkers, p))
        pos = x_map + scale * z @ chol.T
        with np.errstate(all="ignore"):
            lp = log_prob(pos)
        bad = ~np.isfinite(lp)
        if not bad.any():
            return pos
        scale *= 0.5
    pos[bad] = x_map + 1e-6 * rng.standard_normal((int(bad.sum()), p))
    return pos


def _autocorr(chain_after_burn: np.ndarray) -> np.ndarray:
    if chain_after_burn.shape[0] < 2:
        return np.full(chain_after_burn.shape[2], np.inf)
    return integrated_autocorr_time(chain_after_burn)


def run_emcee(
    log_prob,
    x0,
    *,
    n_walkers: int = 32,
    n_steps: int | str = "auto",
    n_burn: int | str = "auto",
    thin: int = 1,
    max_steps: int = 20000,
    random_state: np.random.RandomState,
    progress: bool = False,
    param_names: list[str] | None = None,
    check_every: int = 250,
    x_map=None,
    cov=None,
) -> SamplerResult:
    """Run emcee on a vectorised log-density started around its MAP.

    Parameters
    ----------
    log_prob : callable
        ``log_prob(theta)`` with ``theta`` of shape ``(k, n_params)`` returns
        ``(k,)`` log-densities (``-inf`` outside the support).
    x0 : array, shape (n_params,)
        Starting point for the MAP search.
    n_walkers : int
        Number of walkers; raised to ``2 * n_params + 2`` if smaller.
    n_steps : int or "auto"
        Total steps per walker (burn-in included), or ``"auto"``: run in
        blocks of ``check_every`` steps until the kept chain exceeds
        ``TAU_MULTIPLE`` autocorrelation times, within ``max_steps``.
    n_burn : int or "auto"
        Steps discarded at the start. ``"auto"``: ``max(100, 5 tau)``, but
        never more than half of the run.
    thin : int
        Keep every ``thin``-th step of the kept chain. With
        ``n_steps="auto"`` and ``thin=1`` every ``floor(tau / 4)``-th step is
        kept (``tau``: the largest autocorrelation time), which stores fewer
        draws without losing effective samples.
    random_state : numpy RandomState
        Seeds the walker start and emcee's own generator.
    progress : bool
        Show emcee's progress bar (needs tqdm).
    param_names : list of str, optional
        Used in warning messages.
    x_map, cov : array, optional
        A MAP (and its Laplace covariance) found already, e.g. by an
        importance-sampling attempt: the search is then skipped.

    Returns
    -------
    SamplerResult
    """
    x0 = np.asarray(x0, dtype=np.float64)
    p = x0.size
    names = param_names or [f"theta[{i}]" for i in range(p)]
    n_walkers = max(int(n_walkers), 2 * p + 2)
    n_walkers += n_walkers % 2

    if x_map is None:
        x_map = find_map(log_prob, x0)
        cov = laplace_covariance(log_prob, x_map)
    x_map = np.asarray(x_map, dtype=np.float64)
    pos = _initial_walkers(log_prob, x_map, cov, n_walkers, random_state)

    sampler = emcee.EnsembleSampler(
        n_walkers,
        p,
        log_prob,
        vectorize=True,
        # Differential evolution with a share of stretch moves: both satisfy
        # detailed balance. emcee 3.1.x's DESnookerMove does not (its
        # acceptance ratio misses a Jacobian term; measured here: variances
        # of a 3-D standard normal 0.95 instead of 1), so it is not used.
        moves=_moves(),
    )
    sampler.random_state = np.random.RandomState(
        random_state.randint(np.iinfo(np.int32).max)
    ).get_state()

    def assess(chain):
        """(burn-in, autocorrelation time of the kept chain) for a chain so far."""
        total = chain.shape[0]
        if n_burn != "auto":
            burn = min(int(n_burn), total - 1)
        else:
            # A first tau from the last 3/4 of the run sets the burn-in; the
            # reported tau is then measured on exactly the kept chain.
            tau0 = _autocorr(chain[total // 4 :])
            t = np.max(tau0[np.isfinite(tau0)]) if np.any(np.isfinite(tau0)) else 20.0
            burn = int(min(max(100, np.ceil(5 * t)), total // 2))
        return burn, _autocorr(chain[burn:])

    def is_converged(chain, burn, tau):
        return bool(np.all(np.isfinite(tau)) and chain.shape[0] - burn >= TAU_MULTIPLE * tau.max())

    with warnings.catch_warnings():
        # emcee's own autocorr warnings are replaced by ours below.
        warnings.simplefilter("ignore", RuntimeWarning)
        if n_steps == "auto":
            total = 0
            state = pos
            # One bar for the whole run (not one per block): its total is
            # max_steps, and it closes early once the chain has converged.
            with get_progress_bar(
                progress, max_steps,
                desc=f"emcee (until {TAU_MULTIPLE} tau, at most {max_steps} steps)",
            ) as bar:
                while True:
                    block = min(check_every, max_steps - total)
                    for step in sampler.sample(state, iterations=block):
                        bar.update(1)
                        state = step
                    total += block
                    chain = sampler.get_chain()
                    burn, tau = assess(chain)
                    if is_converged(chain, burn, tau) or total >= max_steps:
                        break
                    # Grow the block geometrically so long runs check less often.
                    check_every = max(check_every, total // 2)
        else:
            total = int(n_steps)
            sampler.run_mcmc(pos, total, progress=progress)
            chain = sampler.get_chain()
            burn, tau = assess(chain)

    lnp = sampler.get_log_prob()
    kept_chain = chain[burn:]
    n_kept = kept_chain.shape[0]
    converged = is_converged(chain, burn, tau)
    messages = []
    if not converged:
        worst = int(np.argmax(np.where(np.isfinite(tau), tau, np.inf)))
        msg = (
            f"The kept chain ({n_kept} steps after {burn} burn-in steps) is shorter "
            f"than {TAU_MULTIPLE} autocorrelation times (worst: {names[worst]} with "
            f"tau = {tau[worst]:.1f} steps). Posterior summaries may be unreliable; "
            "increase n_steps (or max_steps with n_steps='auto')."
        )
        messages.append(msg)
        warn(msg, ConvergenceWarning)
    if n_steps == "auto" and thin == 1 and np.all(np.isfinite(tau)):
        # Every kept step is worth only 1/tau of an independent draw, so a
        # long run stores far more draws than its ESS. For an AR(1) chain
        # (tau = (1+rho)/(1-rho), rho^k ~ exp(-2k/tau)) every k-th step keeps
        # N/k / tau_k effective draws, tau_k = (1+rho^k)/(1-rho^k); at
        # k = tau/4, tau_k = 4.08: N/(1.02 tau), 2 % fewer effective draws
        # for tau/4 times fewer stored ones.
        thin = max(1, int(tau.max() // 4))
    kept_chain = kept_chain[::thin]
    kept_lnp = lnp[burn:][::thin]
    with np.errstate(divide="ignore"):
        if thin == 1:
            n_eff = n_kept * n_walkers / tau
        else:  # the effective sample size of the draws actually stored
            n_eff = kept_chain.shape[0] * n_walkers / _autocorr(kept_chain)
    return SamplerResult(
        samples=kept_chain.reshape(-1, p),
        log_prob=kept_lnp.reshape(-1),
        chain=kept_chain,
        acceptance_fraction=np.asarray(sampler.acceptance_fraction),
        autocorr_time=tau,
        n_effective=n_eff,
        n_steps=total,
        n_burn=burn,
        map_estimate=x_map,
        converged=converged,
        messages=messages,
    )
