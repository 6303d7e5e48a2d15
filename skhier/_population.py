"""Collapsed population likelihoods: integrate per-object latents out.

For a measurement ``d_i`` of an object whose true value ``t_i`` follows a
population ``p(t | alpha)``, the sampler only needs the marginal likelihood

    p(d_i | alpha) = ∫ p(d_i | t) p(t | alpha) dt,

evaluated for every object and every walker (or importance draw) at once.
This module provides that integral, and draws of ``t_i`` from the
conditional posterior ``p(t_i | d_i, alpha)`` for any draw of ``alpha``.

The integrator is *adaptive Gauss–Hermite quadrature* (Liu & Pierce 1994;
Naylor & Smith 1982): for every (draw, object) pair the integrand's mode is
found by a few vectorised Gauss–Newton steps, and fixed Gauss–Hermite nodes
are placed around it with the width given by the curvature there. Nodes
therefore sit where the integrand lives, whether the measurement is much
narrower than the population (a precise parallax inside a deep cluster) or
much broader (a noisy parallax of a compact cluster). The accuracy over a
grid of such regimes is tested against ``scipy.integrate.quad`` in
``tests/test_population_engine.py``.

Public, stable pieces (the signatures below are the contract other model
modules may rely on):

- :func:`gaussian_latent_log_marginal` — log ∫ N(y | g(t), e²) N(t | m, s²) dt
  over an interval, for any monotone ``g`` (``g(t) = 1000 / t`` for
  parallaxes, ``g(t) = exp(t)`` for a log-normal population, ...);
- :func:`gaussian_latent_sample` — draws of ``t`` from the corresponding
  conditional posterior;
- :func:`adaptive_log_integral` and :func:`adaptive_sample` — the same
  two operations for any smooth 1-D log-integrand with up to two modes
  given by the caller (used e.g. for the exponentially decreasing space
  density prior of field stars); :func:`sample_log_density` is the
  single-mode sampling building block.

Every function broadcasts its array arguments against each other, so a
``(n_draws, 1)`` array of population parameters against ``(n_objects,)``
arrays of data evaluates the whole (draws x objects) table in one call. Only
numpy operations over full arrays are used; there is no loop over objects.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._math import LOG2PI, logsumexp

__all__ = [
    "DEFAULT_NODES",
    "quadrature_rules",
    "adaptive_log_integral",
    "adaptive_sample",
    "gauss_hermite",
    "gaussian_latent_log_marginal",
    "gaussian_latent_sample",
    "sample_log_density",
]

#: Gauss–Hermite nodes used by default. The accuracy test over regimes
#: (fractional errors 0.1 %–100 %, negative measurements, population widths
#: 0.01 %–30 % of the location) keeps every object within 1e-6 of quad.
DEFAULT_NODES = 24

#: Gauss–Newton iterations of the mode search (each costs one evaluation of
#: the gradient and curvature, much less than a quadrature node).
DEFAULT_ITER = 8

#: Where the integrand's Laplace width exceeds this fraction of its distance
#: to a finite lower boundary, the (spectrally accurate) trapezoid rule with
#: ``N_TRAPEZOID`` points in ``log(t - lower)`` replaces Gauss–Hermite.
TRAPEZOID_REL_WIDTH = 0.05
N_TRAPEZOID = 128

@lru_cache(maxsize=16)
def gauss_hermite(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Physicists' Gauss–Hermite nodes ``x`` and ``log(w) + x**2``.

    The second array turns ∫ e^{-x²} h(x) dx ≈ Σ w_k h(x_k) into a rule for a
    plain integrand: ∫ F(x) dx ≈ Σ exp(log w_k + x_k²) F(x_k).
    """
    x, w = np.polynomial.hermite.hermgauss(int(n_nodes))
    x.setflags(write=False)
    lw = np.log(w) + x**2
    lw.setflags(write=False)
    return x, lw


def _clip_to_domain(t, t_old, lower, upper):
    """Keep Newton iterates strictly inside (lower, upper): a step that would
    leave the domain goes half-way to the boundary instead."""
    t = np.where(t <= lower, 0.5 * (t_old + lower), t)
    t = np.where(t >= upper, 0.5 * (t_old + upper), t)
    return t


def _find_mode(newton_terms, t0, lower, upper, n_iter):
    """Vectorised damped Gauss–Newton ascent; returns (mode, precision)."""
    t = np.asarray(t0, dtype=np.float64)
    for _ in range(n_iter):
        grad, prec = newton_terms(t)
        t = _clip_to_domain(t + grad / prec, t, lower, upper)
    _, prec = newton_terms(t)
    return t, prec


def sample_log_density(
    log_f,
    mode,
    prec,
    *,
    lower=-np.inf,
    upper=np.inf,
    rng=None,
    u=None,
    n_grid: int = 257,
    half_width: float = 12.0,
    bounds=None,
):
    """Draw from the 1-D density ∝ exp(log_f(t)) by inverse CDF on a grid.

    The grid spans ``mode ± half_width / sqrt(prec)`` (cut to the domain)
    with ``n_grid`` points; the density is taken piecewise linear between
    grid points and its CDF inverted exactly, so the only approximation is
    the grid's resolution (``2 * half_width / (n_grid - 1) ≈ 0.09`` local
    widths by default), far below any Monte Carlo error that matters.

    Parameters
    ----------
    log_f : callable
        Log-density up to a constant (``-inf`` allowed).
    mode, prec : ndarray
        Mode and positive curvature of ``log_f``,
        all of the same shape ``S``.
    lower, upper : float
        Support.
    rng : numpy Generator or RandomState, optional
        Source of the uniforms (ignored when ``u`` is given).
    u : ndarray of shape ``S``, optional
        Uniforms to invert (e.g. stratified ones for smooth quantiles).
    bounds : (ndarray, ndarray), optional
        Explicit grid ends (of shape ``S``) instead of ``mode ± half_width``
        widths, e.g. to cover two modes.

    Returns
    -------
    t : ndarray of shape ``S``
    """
    mode = np.asarray(mode, dtype=np.float64)
    width = 1.0 / np.sqrt(np.asarray(prec, dtype=np.float64))
    if bounds is None:
        bounds = (mode - half_width * width, mode + half_width * width)
    lo = np.maximum(bounds[0], lower)
    hi = np.minimum(bounds[1], upper)
    z = np.linspace(0.0, 1.0, n_grid)
    grid = lo[..., None] + (hi - lo)[..., None] * z
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lf = log_f(grid)
    lf = np.where(np.isfinite(lf), lf, -np.inf)
    dens = np.exp(lf - np.max(lf, axis=-1, keepdims=True))
    dt = np.diff(grid, axis=-1)
    mass = 0.5 * (dens[..., 1:] + dens[..., :-1]) * dt
    cdf = np.concatenate([np.zeros(mass.shape[:-1] + (1,)), np.cumsum(mass, axis=-1)], axis=-1)
    total = cdf[..., -1:]
    if u is None:
        u = rng.uniform(size=mode.shape)
    target = np.asarray(u)[..., None] * total
    # Cell j holds cdf[j] <= target < cdf[j + 1].
    j = np.clip(np.sum(cdf[..., 1:] <= target, axis=-1), 0, n_grid - 2)[..., None]
    c0 = np.take_along_axis(cdf, j, axis=-1)[..., 0]
    p0 = np.take_along_axis(dens, j, axis=-1)[..., 0]
    p1 = np.take_along_axis(dens, j + 1, axis=-1)[..., 0]
    h = np.take_along_axis(dt, j, axis=-1)[..., 0]
    g0 = np.take_along_axis(grid, j, axis=-1)[..., 0]
    rem = target[..., 0] - c0
    # Solve p0 x + (p1 - p0) x² / (2h) = rem for x in [0, h] (h = 0 only for a
    # degenerate, zero-width grid: the draw is then its single point).
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 0.5 * (p1 - p0) / h
        disc = np.sqrt(np.maximum(p0**2 + 4.0 * a * rem, 0.0))
        x_quad = 2.0 * rem / (p0 + disc)  # stable root of the quadratic
    x_lin = np.where(p0 > 0, rem / np.where(p0 > 0, p0, 1.0), 0.0)
    with np.errstate(invalid="ignore"):
        x = np.where(np.abs(a) * h > 1e-12 * np.maximum(p0, 1e-300), x_quad, x_lin)
    x = np.where(np.isfinite(x), np.clip(x, 0.0, h), 0.5 * h)
    return g0 + x


# ---------------------------------------------------------------------------
# Gaussian latent with a Gaussian measurement of a monotone function of it.
# ---------------------------------------------------------------------------


def _gaussian_latent_pieces(y, y_err, loc, scale, g, dg):
    """Broadcast data plus the log-integrand factory and Newton terms."""
    arrays = np.broadcast_arrays(
        np.asarray(y, dtype=np.float64),
        np.asarray(y_err, dtype=np.float64) ** 2,
        np.asarray(loc, dtype=np.float64),
        np.asarray(scale, dtype=np.float64) ** 2,
    )
    # At least 1-D so that masked updates work; callers reshape back.
    arrays = [np.atleast_1d(a) for a in arrays]
    y, e2, loc, s2 = arrays

    def make_log_f(sel):
        yy, ee, mm, ss = (a if sel is None else a[sel] for a in arrays)
        const = (-LOG2PI - 0.5 * np.log(ee) - 0.5 * np.log(ss))[..., None]
        yy, ee, mm, ss = yy[..., None], ee[..., None], mm[..., None], ss[..., None]

        def log_f(t):
            # t carries one extra trailing axis (nodes/grid) over the data.
            return const - 0.5 * (yy - g(t)) ** 2 / ee - 0.5 * (t - mm) ** 2 / ss

        return log_f

    def newton_terms(t):
        gt, dgt = g(t), dg(t)
        grad = -(t - loc) / s2 + (y - gt) * dgt / e2
        prec = 1.0 / s2 + dgt**2 / e2
        return grad, prec

    return y, loc, make_log_f, newton_terms


def _gaussian_latent_starts(y, loc, g_inv, lower, upper):
    """Mode-search starts: the population mean and, where defined, g^{-1}(y).

    The integrand N(y | g(t)) N(t | loc) can have two modes when ``g`` is
    non-linear (a parallax likelihood has a plateau towards large
    distances): one near each start.
    """
    t0 = np.clip(loc, np.nextafter(lower, np.inf), np.nextafter(upper, -np.inf))
    if g_inv is None:
        return np.stack([t0, t0])
    with np.errstate(all="ignore"):
        t1 = np.broadcast_to(g_inv(y), t0.shape)
    ok = np.isfinite(t1) & (t1 > lower) & (t1 < upper)
    return np.stack([t0, np.where(ok, t1, t0)])


def adaptive_log_integral(
    make_log_f,
    newton_terms,
    starts,
    *,
    lower=-np.inf,
    upper=np.inf,
    span=None,
    n_nodes: int = DEFAULT_NODES,
    n_iter: int = DEFAULT_ITER,
):
    """log ∫ f(t) dt for a table of 1-D integrands with up to two modes.

    The general engine behind :func:`gaussian_latent_log_marginal`, for any
    smooth integrand (e.g. a measurement likelihood times a non-Gaussian
    population density). Returns ``(log_integral, mode, prec)`` where
    ``mode``/``prec`` are the higher mode and the curvature there.

    Parameters
    ----------
    make_log_f : callable
        ``make_log_f(sel)`` returns a function ``log_f(t)`` of node arrays
        ``t`` of shape ``S' + (k,)``, where ``S'`` is the full table shape
        ``S`` when ``sel is None`` and ``(m,)`` for a boolean mask ``sel``
        of shape ``S`` (the data restricted to ``sel``).
    newton_terms : callable
        ``newton_terms(t) -> (grad, prec)`` on arrays of shape ``(2,) + S``
        (or broadcastable): derivative of ``log f`` and a positive curvature.
    starts : ndarray of shape ``(2,) + S``
        Two starting points per entry (e.g. the population's centre and the
        measurement's inverse image); they may coincide.
    lower, upper : float
        Domain.
    span : (loc, scale) of arrays broadcastable to ``S``, optional
        Location and width of the population's bulk, used (with a finite
        ``lower``) to size the trapezoid rule for broad integrands.
    n_nodes, n_iter : int
        Gauss–Hermite nodes and Gauss–Newton iterations.
    """
    return _multimodal_gauss_hermite(
        make_log_f, newton_terms, starts, lower, upper, n_nodes, n_iter, span
    )


def adaptive_sample(
    make_log_f,
    newton_terms,
    starts,
    *,
    lower=-np.inf,
    upper=np.inf,
    span=None,
    rng=None,
    u=None,
    n_iter: int = DEFAULT_ITER,
    n_grid: int = 513,
):
    """Draws from the densities ∝ f(t) of :func:`adaptive_log_integral`.

    One draw per table entry (shape ``S``), by inverse CDF on a grid that
    covers every mode found to 12 local widths and, for broad integrands,
    the population's bulk ``span`` to 12 widths. ``u`` (shape ``S``)
    replaces the uniforms from ``rng``.
    """
    (modes, precs, broad, _, _), mode, prec = _multimodal_gauss_hermite(
        make_log_f, newton_terms, starts, lower, upper, 0, n_iter, span
    )
    half = 12.0 / np.sqrt(precs)
    lo, hi = np.min(modes - half, axis=0), np.max(modes + half, axis=0)
    if span is not None:
        p_hi = np.broadcast_to(span[0] + 12.0 * np.asarray(span[1]), hi.shape)
        p_lo = np.broadcast_to(span[0] - 12.0 * np.asarray(span[1]), lo.shape)
        hi = np.where(broad, np.maximum(hi, p_hi), hi)
        lo = np.where(broad, np.minimum(lo, p_lo), lo)
    if u is not None:
        u = np.broadcast_to(u, mode.shape)
    return sample_log_density(
        make_log_f(None), mode, prec, lower=lower, upper=upper, rng=rng, u=u,
        bounds=(lo, hi), n_grid=n_grid,
    )


def quadrature_rules(
    make_log_f,
    newton_terms,
    starts,
    *,
    lower=-np.inf,
    upper=np.inf,
    span=None,
    n_nodes: int = DEFAULT_NODES,
    n_iter: int = DEFAULT_ITER,
):
    """The quadrature rules :func:`adaptive_log_integral` would use, as data.

    For a 1-D table of integrands (shape ``(n,)``) returns a list of groups
    ``(index, nodes, log_weights)`` — ``index`` an integer array of entries,
    ``nodes`` and ``log_weights`` of shape ``(len(index), K)`` — such that
    ``log ∫ f_j ≈ logsumexp(log f_j(nodes[j]) + log_weights[j])``. Groups:
    single-mode Gauss–Hermite (``K = n_nodes``), two-mode partition of unity
    (``K = 2 n_nodes``, the partition weights folded into ``log_weights``)
    and trapezoid (``K = N_TRAPEZOID``). Nodes outside the domain carry
    weight ``-inf``.

    Frozen at one integrand (e.g. one population draw), the same rule
    integrates nearby integrands (other draws) with an accuracy that decays
    smoothly with their distance — the basis of a fast likelihood for
    importance sampling, checked against the exact one by the caller. At
    the integrand it was built for, the rule returns
    :func:`adaptive_log_integral`'s value.
    """
    (mode, prec, broad, two, fm), m1, h1 = _multimodal_gauss_hermite(
        make_log_f, newton_terms, starts, lower, upper, 0, n_iter, span
    )
    if m1.ndim != 1:
        raise ValueError("quadrature_rules needs a 1-D table of integrands.")
    x, lw = gauss_hermite(n_nodes)
    groups = []

    def gh_nodes(center, p):
        scale = np.sqrt(2.0 / p)
        nodes = center[:, None] + scale[:, None] * x
        inside = (nodes > lower) & (nodes < upper)
        logw = np.where(inside, lw + np.log(scale)[:, None], -np.inf)
        return np.where(inside, nodes, center[:, None]), logw

    two = two & ~broad
    simple = ~two & ~broad
    if np.any(simple):
        idx = np.flatnonzero(simple)
        groups.append((idx, *gh_nodes(m1[idx], h1[idx])))
    if np.any(broad):
        idx = np.flatnonzero(broad)
        ms, ws = mode[:, idx], 1.0 / np.sqrt(prec[:, idx])
        finite = np.isfinite(lower)
        p_loc = p_scale = None
        if span is not None:
            p_loc, p_scale = (np.broadcast_to(a, m1.shape)[idx] for a in span)
        lo, hi = _trapezoid_window(ms, ws, lower, finite, p_loc, p_scale)
        v = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, N_TRAPEZOID)
        logdv = np.log((hi - lo) / (N_TRAPEZOID - 1))[:, None]
        if finite:
            groups.append((idx, lower + np.exp(v), v + logdv))
        else:
            groups.append((idx, v, np.broadcast_to(logdv, v.shape).copy()))
    if np.any(two):
        idx = np.flatnonzero(two)
        ma, mb, ha, hb = mode[0][idx], mode[1][idx], prec[0][idx], prec[1][idx]
        la = fm[0][idx] + 0.5 * np.log(2 * np.pi / ha)
        lb = fm[1][idx] + 0.5 * np.log(2 * np.pi / hb)
        na, wa = gh_nodes(ma, ha)
        nb, wb = gh_nodes(mb, hb)
        nodes = np.concatenate([na, nb], axis=1)

        def log_aq(t, m, h, la_):
            return (la_[:, None] - 0.5 * h[:, None] * (t - m[:, None]) ** 2
                    + 0.5 * np.log(h[:, None] / (2 * np.pi)))

        qa, qb = log_aq(nodes, ma, ha, la), log_aq(nodes, mb, hb, lb)
        part = np.concatenate([(qa - np.logaddexp(qa, qb))[:, : len(x)],
                               (qb - np.logaddexp(qa, qb))[:, len(x):]], axis=1)
        groups.append((idx, nodes, np.concatenate([wa, wb], axis=1) + part))
    return groups


def _multimodal_gauss_hermite(
    make_log_f, newton_terms, starts, lower, upper, n_nodes, n_iter, prior=None
):
    """Adaptive Gauss–Hermite from one or two starts.

    ``make_log_f(sel)`` returns the log-integrand restricted to the entries
    ``sel`` of the broadcast shape (``sel=None``: all of them), taking node
    arrays with one extra trailing axis. Both starts are refined to a mode.
    Where they reach the same mode the ordinary rule is used; where they
    reach two different modes the integrand is split by a smooth partition
    of unity built from the two Laplace approximations,
    ``pi_j = a_j q_j / (a_1 q_1 + a_2 q_2)``, and each part ``f * pi_j`` is
    integrated with nodes around its own mode (only those entries pay the
    extra cost). On a domain with a finite lower bound, entries whose
    integrand is as wide as its distance to the bound (relative Laplace
    width above ``TRAPEZOID_REL_WIDTH``) are strongly skewed; they use the
    trapezoid rule in ``log(t - lower)`` over a span covering the modes and
    the population ``prior=(loc, scale)`` to 12 widths. Returns the
    log-integral (or, when ``n_nodes == 0``, the modes, precisions and the
    "broad" mask) and the mode and precision of the higher mode.
    """
    log_f = make_log_f(None)
    mode, prec = _find_mode(newton_terms, starts, lower, upper, n_iter)
    with np.errstate(all="ignore"):
        fm = log_f(mode[..., None])[..., 0]
    fm = np.where(np.isfinite(fm), fm, -np.inf)
    best = np.argmax(fm, axis=0)[None]
    m1 = np.take_along_axis(mode, best, axis=0)[0]
    h1 = np.take_along_axis(prec, best, axis=0)[0]
    x, lw = gauss_hermite(max(n_nodes, 1))

    def gh(lf_fun, center, p, weight=None):
        scale = np.sqrt(2.0 / p)
        nodes = center[..., None] + scale[..., None] * x
        inside = (nodes > lower) & (nodes < upper)
        safe = np.where(inside, nodes, center[..., None])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lf = lf_fun(safe)
            if weight is not None:
                lf = lf + weight(safe)
            lf = np.where(inside, lf, -np.inf)
            return logsumexp(lf + lw, axis=-1) + np.log(scale)

    out = np.array(gh(log_f, m1, h1), copy=True) if n_nodes else None
    width = 1.0 / np.sqrt(np.minimum(prec[0], prec[1]))
    two = (np.abs(mode[0] - mode[1]) > 1e-3 * width) & np.all(np.isfinite(fm), axis=0)
    broad = np.zeros(m1.shape, dtype=bool)
    finite = np.isfinite(lower)
    if finite:
        # Integrand as wide as its distance to the boundary: strongly skewed
        # (a parallax likelihood rises steeply near r = 0 and has a plateau
        # at large r). Use the trapezoid rule in log(t - lower) instead.
        with np.errstate(all="ignore"):
            rel = np.max(1.0 / np.sqrt(prec) / (mode - lower), axis=0)
        broad = rel > TRAPEZOID_REL_WIDTH
    elif prior is not None:
        # Unbounded domain: a mode far (> 3 widths) from a wider population
        # signals a likelihood plateau under the population (a shoulder), and
        # a likelihood about as wide as the population gives a skewed
        # product; the trapezoid rule over both resolves either when the
        # span is at most ~100 local widths.
        p_loc, p_scale = (np.broadcast_to(a, m1.shape) for a in prior)
        w1 = 1.0 / np.sqrt(h1)
        lo_ = np.minimum(np.min(mode - 12.0 / np.sqrt(prec), axis=0), p_loc - 12.0 * p_scale)
        hi_ = np.maximum(np.max(mode + 12.0 / np.sqrt(prec), axis=0), p_loc + 12.0 * p_scale)
        w_min = np.min(1.0 / np.sqrt(prec), axis=0)
        broad = ((np.abs(m1 - p_loc) > 3.0 * w1) & (p_scale > w1)) | (w1 > 0.2 * p_scale)
        broad &= (hi_ - lo_) / (N_TRAPEZOID - 1) <= 0.8 * w_min
    if n_nodes == 0:
        return (mode, prec, broad, two, fm), m1, h1
    if np.any(broad):
        sel = broad
        ms, ws = mode[:, sel], 1.0 / np.sqrt(prec[:, sel])
        p_loc = p_scale = None
        if prior is not None:
            p_loc, p_scale = (np.broadcast_to(a, m1.shape)[sel] for a in prior)
        lo, hi = _trapezoid_window(ms, ws, lower, finite, p_loc, p_scale)
        z = np.linspace(0.0, 1.0, N_TRAPEZOID)
        v = lo[:, None] + (hi - lo)[:, None] * z
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if finite:
                lf = make_log_f(sel)(lower + np.exp(v)) + v
            else:
                lf = make_log_f(sel)(v)
            lf = np.where(np.isnan(lf), -np.inf, lf)
            out[sel] = logsumexp(lf, axis=-1) + np.log((hi - lo) / (N_TRAPEZOID - 1))
        two &= ~broad
    if not np.any(two):
        return out, m1, h1
    idx = two
    sub_log_f = make_log_f(idx)
    ma, mb = mode[0][idx], mode[1][idx]
    ha, hb = prec[0][idx], prec[1][idx]
    # log of the Laplace masses a_j, so that a_j q_j ~ f near mode j.
    la = fm[0][idx] + 0.5 * np.log(2 * np.pi / ha)
    lb = fm[1][idx] + 0.5 * np.log(2 * np.pi / hb)

    def log_aq(t, m, h, la_):
        return (
            la_[..., None]
            - 0.5 * h[..., None] * (t - m[..., None]) ** 2
            + 0.5 * np.log(h[..., None] / (2 * np.pi))
        )

    def w_a(t):
        qa, qb = log_aq(t, ma, ha, la), log_aq(t, mb, hb, lb)
        return qa - np.logaddexp(qa, qb)

    def w_b(t):
        qa, qb = log_aq(t, ma, ha, la), log_aq(t, mb, hb, lb)
        return qb - np.logaddexp(qa, qb)

    out[idx] = np.logaddexp(gh(sub_log_f, ma, ha, w_a), gh(sub_log_f, mb, hb, w_b))
    return out, m1, h1


def gaussian_latent_log_marginal(
    y,
    y_err,
    loc,
    scale,
    g,
    dg,
    *,
    g_inv=None,
    lower: float = -np.inf,
    upper: float = np.inf,
    n_nodes: int = DEFAULT_NODES,
    n_iter: int = DEFAULT_ITER,
    return_mode: bool = False,
):
    """log ∫ N(y | g(t), y_err²) N(t | loc, scale²) dt over (lower, upper).

    The marginal likelihood of a Gaussian measurement ``y`` of a monotone
    function ``g`` of a latent ``t`` that follows a normal population, with
    ``t`` integrated out by adaptive Gauss–Hermite quadrature (see the module
    docstring). Examples: parallaxes of a cluster of stars with normally
    distributed distances (``t = r``, ``g(r) = 1000 / r``, ``lower = 0``);
    a log-normal population of periods measured with Gaussian errors
    (``t = log P``, ``g = exp``). When ``g`` is the identity this equals
    ``log N(y | loc, scale² + y_err²)`` (use that closed form instead).

    The normal density is *not* renormalised to (lower, upper): for a
    population truncated to the interval, subtract the log of its mass
    ``log(Phi((upper - loc) / scale) - Phi((lower - loc) / scale))``.

    Parameters
    ----------
    y, y_err : array-like
        Measurements and their standard deviations (``y_err > 0``).
    loc, scale : array-like
        Population mean and standard deviation (``scale > 0``) of ``t``.
        All four broadcast together; e.g. ``loc`` of shape ``(k, 1)`` against
        ``y`` of shape ``(n,)`` gives a ``(k, n)`` table.
    g, dg : callable
        The monotone measurement function and its derivative, elementwise on
        arrays; only evaluated inside (lower, upper).
    g_inv : callable, optional
        Inverse of ``g``. When given, the mode search also starts from
        ``g_inv(y)`` where that point has a higher integrand than ``loc``
        (useful when the measurement is much sharper than the population).
    lower, upper : float, default=(-inf, inf)
        Domain of ``t`` (where ``g`` is defined); the integrand is zero
        outside it.
    n_nodes : int, default=DEFAULT_NODES
        Gauss–Hermite nodes per (draw, object).
    n_iter : int, default=DEFAULT_ITER
        Gauss–Newton iterations for the mode.
    return_mode : bool, default=False
        Also return the integrand's mode and curvature (for sampling).

    Returns
    -------
    log_marginal : ndarray
        Broadcast shape of the inputs.
    mode, prec : ndarray
        Only when ``return_mode=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier._population import gaussian_latent_log_marginal
    >>> # identity g: the closed form log N(1 | 0, 1 + 1)
    >>> val = gaussian_latent_log_marginal(1.0, 1.0, 0.0, 1.0, lambda t: t,
    ...                                    lambda t: np.ones_like(t))
    >>> bool(np.isclose(val, -0.25 - 0.5 * np.log(2 * np.pi * 2)))
    True
    """
    y_in, loc_in = y, loc
    y, loc, make_log_f, newton_terms = _gaussian_latent_pieces(y, y_err, loc, scale, g, dg)
    starts = _gaussian_latent_starts(y, loc, g_inv, lower, upper)
    out, mode, prec = _multimodal_gauss_hermite(
        make_log_f, newton_terms, starts, lower, upper, n_nodes, n_iter,
        prior=(loc, np.asarray(scale, dtype=np.float64)),
    )
    shape = np.broadcast_shapes(*(np.shape(a) for a in (y_in, y_err, loc_in, scale)))
    out, mode, prec = (np.reshape(a, shape) for a in (out, mode, prec))
    out = _narrow_population_limit(out, y_in, y_err, loc_in, scale, g, dg, lower, upper)
    if return_mode:
        return out, mode, prec
    return out


#: Below this ratio of the population's width in measurement space,
#: |g'(loc)| scale, to the measurement error, the marginal likelihood is taken
#: from the delta method (see _narrow_population_limit).
NARROW_POPULATION = 1e-6


def _narrow_population_limit(out, y, y_err, loc, scale, g, dg, lower, upper):
    """Replace entries whose population is far narrower than the measurement.

    There the integrand's width in t is the population's, which floating
    point cannot resolve around ``loc`` once ``scale / |loc|`` nears 1e-13
    (the quadrature then returns nonsense). The delta method,
    ``log N(y | g(loc), y_err^2 + (g'(loc) scale)^2)``, is accurate there to
    terms of order ``|g''| scale^2 / y_err`` (relative), far below 1e-6 when
    ``|g'(loc)| scale < NARROW_POPULATION * y_err`` and ``loc`` lies 40
    population widths inside (lower, upper) (the mass outside, which the
    normal density is not renormalised for, is then below 1e-300).
    """
    y, y_err, loc, scale = (np.asarray(a, dtype=np.float64) for a in (y, y_err, loc, scale))
    inside = (loc - lower > 40.0 * scale) & (upper - loc > 40.0 * scale)
    safe_loc = np.where(inside, loc, np.where(np.isfinite(lower), lower + 1.0, 0.0))
    s_y = np.abs(dg(safe_loc)) * scale
    narrow = inside & (s_y < NARROW_POPULATION * y_err)
    if not np.any(narrow):
        return out
    var = y_err**2 + s_y**2
    limit = -0.5 * ((y - g(safe_loc)) ** 2 / var + np.log(2.0 * np.pi * var))
    return np.where(narrow, limit, out)


def gaussian_latent_sample(
    y,
    y_err,
    loc,
    scale,
    g,
    dg,
    *,
    g_inv=None,
    lower: float = -np.inf,
    upper: float = np.inf,
    rng=None,
    u=None,
    n_iter: int = DEFAULT_ITER,
    n_grid: int = 513,
):
    """Draw ``t`` from p(t | y) ∝ N(y | g(t), y_err²) N(t | loc, scale²) on (lower, upper).

    Arguments as in :func:`gaussian_latent_log_marginal`; one draw per
    element of the broadcast shape (pass ``loc``/``scale`` of shape
    ``(k, 1)`` and ``y`` of shape ``(n,)`` for one draw per (draw, object)).
    ``rng`` supplies the uniforms unless ``u`` (same shape) is given. Uses
    :func:`sample_log_density` around the integrand's mode.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier._population import gaussian_latent_sample
    >>> rng = np.random.default_rng(0)
    >>> r = gaussian_latent_sample(np.full(2000, 10.0), 0.1, 100.0, 5.0,
    ...     lambda r: 1000 / r, lambda r: -1000 / r**2, lower=0.0, rng=rng)
    >>> bool(abs(r.mean() - 100) < 1)
    True
    """
    y_in, loc_in = y, loc
    y, loc, make_log_f, newton_terms = _gaussian_latent_pieces(y, y_err, loc, scale, g, dg)
    starts = _gaussian_latent_starts(y, loc, g_inv, lower, upper)
    shape = np.broadcast_shapes(*(np.shape(a) for a in (y_in, y_err, loc_in, scale)))
    if u is not None:
        u = np.reshape(np.broadcast_to(u, shape), y.shape)
    draws = adaptive_sample(
        make_log_f, newton_terms, starts, lower=lower, upper=upper,
        span=(loc, np.asarray(scale, dtype=np.float64)), rng=rng, u=u,
        n_iter=n_iter, n_grid=n_grid,
    )
    return np.reshape(draws, shape)


def _trapezoid_window(ms, ws, lower, finite, p_loc, p_scale):
    """Range (lo, hi) of the trapezoid grid covering every integrand mode
    +-12 widths (and the population +-12 scales when given): in log(r - lower)
    for a finite lower bound, in the variable itself otherwise."""
    with np.errstate(all="ignore"):
        if finite:
            lo = np.min(np.log(ms - lower) - 12.0 * ws / (ms - lower), axis=0)
            hi = np.max(np.log(ms + 12.0 * ws - lower), axis=0)
            if p_loc is not None:
                hi = np.maximum(hi, np.log(np.maximum(p_loc + 12.0 * p_scale - lower, 1e-300)))
        else:
            lo = np.minimum(np.min(ms - 12.0 * ws, axis=0), p_loc - 12.0 * p_scale)
            hi = np.maximum(np.max(ms + 12.0 * ws, axis=0), p_loc + 12.0 * p_scale)
    return lo, hi
