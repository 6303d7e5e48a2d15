"""Deterministic grid quadrature of a skewed low-dimensional posterior.

The adaptive Gauss–Hermite rules of :mod:`skhier._quadrature` need a
posterior close to its Laplace approximation. A hierarchical model whose
data barely resolve a dispersion ``s`` (a far star cluster's depth with
40 % parallax errors) has a posterior in ``log s`` with a long exponential
tail towards ``s -> 0``, and Gauss–Hermite rules do not converge there.
In ``s`` itself the same posterior is smooth up to ``s = 0``, where the
model depends on ``s²`` only (its density extends to ``s < 0`` as an even
function). This module integrates such posteriors on a lattice:

* coordinates: ``s = exp(theta_j)`` for the dispersion coordinates named
  by the caller, the others sheared by their Laplace regression on ``s``
  and scaled by their conditional Laplace widths (a linear change of
  variables, so the lattice's weights stay uniform);
* the trapezoidal rule on an unbounded lattice converges geometrically
  for a smooth integrand that decays at both ends (Trefethen & Weideman
  2014, "The exponentially convergent trapezoidal rule", SIAM Review 56,
  385); in ``s`` the lattice is the midpoint rule ``s_k = (k + 1/2) h``,
  which is the trapezoidal rule of the even extension;
* the lattice grows until its faces are ``drop`` log-units below the
  maximum; its step is accepted when the error estimated from its
  sub-lattices (every other point of the other coordinates; every third
  of the dispersions, since midpoint lattices nest when the step is
  tripled) is below ``tol`` posterior sd, else it is halved. The estimate
  is Richardson's for a second-order rule, ``|coarse - fine| / (r² - 1)``
  for sub-lattices of ``r`` times the step: the posterior mean of a
  dispersion integrates ``|s| p(s)``, whose kink at 0 makes the midpoint
  rule second-order there (elsewhere convergence is geometric, and the
  estimate is far above the error);
* draws for quantiles and per-object latents come from the lattice
  posterior refined 4 times per coordinate by cubic interpolation of the
  log-density (no further evaluations), each a lattice point jittered
  uniformly within its cell.

Like :mod:`skhier._quadrature`, this module knows nothing about any model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.special import logsumexp

from ._importance import _evaluate
from ._quadrature import DeterministicResult

__all__ = ["GridResult", "run_grid"]

#: Fine-lattice refinement (per coordinate) of the draws' density.
_DRAW_REFINE = 4


@dataclass
class GridResult(DeterministicResult):
    """Moments, error and draws of one lattice quadrature.

    The fields of :class:`skhier._quadrature.DeterministicResult`, where
    ``error`` is Richardson's estimate from the sub-lattices (see the module
    notes), the nodes are the lattice points and the draws are independent;
    and:

    Attributes
    ----------
    step : ndarray
        Lattice step per coordinate (in ``s`` for dispersion coordinates,
        in conditional Laplace widths for the others).
    """

    step: np.ndarray
    pareto_k: float = float("nan")
    messages: list[str] = field(default_factory=list)
    method: str = "quadrature"


class _Lattice:
    """Map between integer lattice indices and parameters, with a cache of
    evaluated log-densities (in the lattice's own measure)."""

    def __init__(self, log_prob, x_map, cov, scale_coords, step, chunk):
        p = x_map.size
        self.log_prob, self.chunk, self.p = log_prob, chunk, p
        self.scale = np.zeros(p, dtype=bool)
        self.scale[list(scale_coords)] = True
        s_map = np.exp(x_map[self.scale])
        # Laplace covariance in (other coordinates, s): ds = s dtheta.
        jac = np.where(self.scale, np.exp(np.where(self.scale, x_map, 0.0)), 1.0)
        cov_y = cov * jac[:, None] * jac[None, :]
        o, s = ~self.scale, self.scale
        if np.any(s):
            b = np.linalg.solve(cov_y[np.ix_(s, s)], cov_y[np.ix_(s, o)]).T
            cond = cov_y[np.ix_(o, o)] - b @ cov_y[np.ix_(s, o)]
        else:
            b = np.zeros((o.sum(), 0))
            cond = cov_y[np.ix_(o, o)]
        self.b, self.s_ref, self.c_o = b, s_map, x_map[o]
        self.chol = np.linalg.cholesky(0.5 * (cond + cond.T)) if o.any() else np.zeros((0, 0))
        sd_s = np.sqrt(np.diag(cov_y)[s])
        # Steps: in conditional Laplace widths for the others, in s for the
        # dispersions (their Laplace width in s).
        self.h = np.where(self.scale, 0.0, step)
        self.h[s] = step * sd_s / 1.4
        self.cache: dict[tuple, float] = {}
        self.n_eval = 0

    def coords(self, k):
        """(m, p) parameters and the lattice's log-Jacobian of the points ``k``."""
        k = np.asarray(k, dtype=np.float64)
        y = np.empty_like(k)
        s_val = (k[:, self.scale] + 0.5) * self.h[self.scale]
        u = k[:, ~self.scale] * self.h[~self.scale]
        y[:, self.scale] = np.log(s_val)
        y[:, ~self.scale] = self.c_o + (s_val - self.s_ref) @ self.b.T + u @ self.chol.T
        # Density in (u, s): p(theta) |dtheta / d(u, s)| = p(theta) / prod(s) * const.
        return y, -np.sum(y[:, self.scale], axis=1)

    def evaluate(self, ks):
        new = [k for k in ks if k not in self.cache]
        if new:
            theta, logjac = self.coords(np.array(new))
            vals = _evaluate(self.log_prob, theta, self.chunk) + logjac
            self.n_eval += len(new)
            for k, v in zip(new, vals, strict=True):
                self.cache[k] = float(v)
        return np.array([self.cache[k] for k in ks])


def _box_points(lo, hi):
    return list(itertools.product(*(range(a, b + 1) for a, b in zip(lo, hi, strict=True))))


def _moments(theta, lw):
    w = np.exp(lw - logsumexp(lw))
    mean = w @ theta
    d = theta - mean
    return w, mean, (w[:, None] * d).T @ d


def _explore(lat, drop, max_points):
    """Index box whose faces lie ``drop`` below the maximum (None: too big)."""
    p = lat.p
    centre = np.zeros(p, dtype=int)
    k_s = np.floor(lat.s_ref / lat.h[lat.scale] - 0.5).astype(int)
    centre[lat.scale] = np.maximum(k_s, 0)
    lo, hi = centre.copy(), centre.copy()
    top = lat.evaluate([tuple(centre)])[0]
    if not np.isfinite(top):
        return None
    # Along each axis from the centre, then grow faces until all are low.
    for j in range(p):
        for sign in (-1, 1):
            k = centre.copy()
            while True:
                k[j] += sign
                if lat.scale[j] and k[j] < 0:
                    break
                v = lat.evaluate([tuple(k)])[0]
                top = max(top, v)
                if v < top - drop:
                    break
                if abs(k[j] - centre[j]) > 200:
                    return None
            if sign < 0:
                lo[j] = max(k[j], 0) if lat.scale[j] else k[j]
            else:
                hi[j] = k[j]
    while True:
        size = np.prod(hi - lo + 1)
        if size > max_points:
            return None
        pts = _box_points(lo, hi)
        vals = lat.evaluate(pts)
        top = max(top, float(np.max(vals)))
        ks = np.array(pts)
        grown = False
        for j in range(p):
            for side, edge in ((-1, lo[j]), (1, hi[j])):
                if side < 0 and lat.scale[j] and edge == 0:
                    continue
                on = ks[:, j] == edge
                if np.max(vals[on]) > top - drop:
                    step = max(1, (hi[j] - lo[j]) // 4)
                    if side < 0:
                        lo[j] = max(lo[j] - step, 0) if lat.scale[j] else lo[j] - step
                    else:
                        hi[j] += step
                    grown = True
        if not grown:
            return ks, vals


def run_grid(
    log_prob,
    x_map,
    cov,
    *,
    random_state,
    scale_coords=(),
    tol: float = 0.02,
    drop: float = 12.0,
    step: float = 0.7,
    n_draws: int = 2000,
    max_points: int = 4000,
    max_halvings: int = 2,
    chunk: int = 256,
) -> GridResult | None:
    """Lattice quadrature of a vectorised log-density (see the module notes).

    Parameters
    ----------
    log_prob, x_map, cov, random_state
        As in :func:`skhier._quadrature.run_quadrature` (the vectorised
        log-density, its maximum, the Laplace covariance there, and the
        random state of the draws; the moments are deterministic).
    scale_coords : sequence of int
        Coordinates ``theta_j = log s_j`` of dispersions ``s_j`` whose
        posterior density in ``s_j`` is smooth up to ``s_j = 0`` (the model
        depends on ``s_j²``); integrated in ``s_j`` by the midpoint rule.
    tol : float, default=0.02
        Largest accepted estimated error of the means and sds, in posterior
        sd.
    drop : float, default=12
        The lattice's faces lie this far (log-density) below its maximum
        (the mass beyond them changes a mean by ~1e-4 sd).
    step : float, default=0.7
        First lattice step, in Laplace widths (5/7 of it for dispersions,
        whose sub-lattices have three times the step).
    n_draws : int, default=2000
        Posterior draws returned (equally weighted).
    max_points : int, default=4000
        Largest lattice; beyond it None is returned.
    max_halvings : int, default=2
        Step halvings tried before giving up (``ok`` False).
    chunk : int, default=256
        Points per ``log_prob`` call.

    Returns
    -------
    GridResult, or None when the lattice would exceed ``max_points`` or the
    log-density is not finite at the maximum.
    """
    x_map = np.asarray(x_map, dtype=np.float64)
    p = x_map.size
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    messages: list[str] = []
    error = np.full(p, np.inf)
    n_eval = 0
    for _ in range(max_halvings + 1):
        lat = _Lattice(log_prob, x_map, np.asarray(cov, dtype=np.float64), scale_coords,
                       step, chunk)
        found = _explore(lat, drop, max_points)
        n_eval += lat.n_eval
        if found is None:
            return None
        ks, lv = found
        theta, _ = lat.coords(ks)
        # Moments in (other coordinates, s); errors in posterior sd.
        y = theta.copy()
        y[:, lat.scale] = np.exp(theta[:, lat.scale])
        w, mean_y, cov_y = _moments(y, lv)
        sd_y = np.sqrt(np.diag(cov_y))
        error = np.zeros(p)
        # Sub-lattices: every other point of the other coordinates (step
        # 2h) and every third of the dispersions (the midpoint lattice of
        # step 3h: midpoint lattices nest when the step is tripled).
        period = np.where(lat.scale, 3, 2)
        offsets = [(1,) if lat.scale[j] else (0, 1) for j in range(p)]
        for residue in itertools.product(*offsets):
            sub = np.all(ks % period == np.array(residue), axis=1)
            if not np.any(sub) or not np.any(np.isfinite(lv[sub])):
                error[:] = np.inf
                continue
            _, m_sub, c_sub = _moments(y[sub], lv[sub])
            d_mean = np.abs(m_sub - mean_y) / sd_y
            d_sd = np.abs(np.sqrt(np.diag(c_sub)) - sd_y) / sd_y
            # Richardson's estimate for a rule of second order: the error
            # of the lattice is 1 / (r² - 1) of its difference from the
            # sub-lattice of r times the step (the posterior mean of a
            # dispersion s integrates |s| p(s), whose kink at s = 0 makes
            # the midpoint rule second-order; elsewhere convergence is
            # geometric and the estimate is far above the error).
            ratio = np.max(np.where(lat.scale, 3.0, 2.0))
            error = np.maximum(error, np.maximum(d_mean, d_sd) / (ratio**2 - 1.0))
        if np.all(error < tol):
            break
        step /= 2.0
    ok = bool(np.all(error < tol))
    if not ok:
        messages.append(
            f"Grid quadrature not converged: estimated error {np.max(error):.3g} "
            f"posterior sd (tolerance {tol})."
        )
    w, mean, post_cov = _moments(theta, lv)
    samples = _draws(lat, ks, lv, n_draws, random_state)
    return GridResult(
        mean=mean, cov=post_cov, error=error, nodes=theta, node_log_prob=lv - lat.coords(ks)[1],
        node_weights=w, step=lat.h.copy(), samples=samples,
        log_prob=np.full(len(samples), np.nan), raw_draws=samples,
        weights=np.full(len(samples), 1.0 / len(samples)),
        n_effective_params=np.full(p, float(len(samples))), map_estimate=x_map,
        n_evaluations=n_eval, ok=ok, messages=messages,
    )


def _draws(lat, ks, lv, n_draws, rng):
    """Draws from the lattice posterior refined by cubic interpolation."""
    lo, hi = ks.min(axis=0), ks.max(axis=0)
    shape = tuple(hi - lo + 1)
    table = np.full(shape, -np.inf)
    table[tuple((ks - lo).T)] = lv
    floor = np.max(lv[np.isfinite(lv)]) - 50.0
    table = np.maximum(table, floor)
    axes = [np.arange(n, dtype=float) for n in shape]
    r = _DRAW_REFINE
    fine_axes = [np.arange(n * r, dtype=float) / r - (r - 1) / (2 * r) for n in shape]
    fine_axes = [np.clip(a, 0, n - 1) for a, n in zip(fine_axes, shape, strict=True)]
    cubic = all(n >= 4 for n in shape)
    interp = RegularGridInterpolator(axes, table, method="cubic" if cubic else "linear")
    mesh = np.stack(np.meshgrid(*fine_axes, indexing="ij"), axis=-1).reshape(-1, len(shape))
    flv = interp(mesh)
    w = np.exp(flv - logsumexp(flv))
    idx = rng.choice(len(w), size=n_draws, p=w)
    # Fine cell centres in lattice units: index (k + lo) with sub-cell offsets.
    fine_idx = np.stack(np.meshgrid(*[np.arange(n * r) for n in shape], indexing="ij"),
                        axis=-1).reshape(-1, len(shape))[idx]
    k = lo + (fine_idx + 0.5) / r - 0.5 + (rng.uniform(size=fine_idx.shape) - 0.5) / r
    theta, _ = lat.coords(k)
    return theta
