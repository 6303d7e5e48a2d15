"""Depth profiles of a star cluster beyond the normal one.

A cluster member's true distance is ``r = mean_distance + scale * x`` with
``x`` drawn from a standardised profile, truncated to ``r > 0``:

* ``"student-t"``: ``x ~ t_nu`` (Student's t with ``nu`` degrees of freedom,
  log-uniform prior on [1, 100]); heavy power-law tails for a halo;
* ``"eff"``: ``p(x) ∝ (1 + x²)^(-gamma / 2)``, the profile of Elson, Fall &
  Freeman (1987) along the line of sight, with core radius ``scale`` and a
  uniform prior on ``gamma`` in [2, 10] (``x sqrt(gamma - 1)`` is Student-t
  with ``gamma - 1`` degrees of freedom);
* ``"king"``: ``p(x) ∝ (1 / sqrt(1 + x²) - 1 / sqrt(1 + x_t²))²`` for
  ``|x| < x_t`` and 0 beyond, the profile of King (1962) with core radius
  ``scale`` and tidal radius ``x_t * scale`` (log-uniform prior on ``x_t``
  in [2, 100]).

These are the profiles Kalkayotl offers (Olivares et al. 2020, A&A 644, A7).

The per-star integral ``∫ N(parallax | 1000 / r, err²) p(r) dr`` over
``r > 0`` is computed with one of two rules for every (draw, star) entry:

* *resolved* stars (parallax likelihood narrower than the profile's local
  scale): Gauss–Hermite nodes in the true parallax around the measured one,
  ``∫ N(y | w, e²) q(w) dw`` with ``q`` the profile's density of the true
  parallax ``w = 1000 / r``;
* the others: Gauss–Legendre nodes in the profile's own probability
  variable ``u = F(x)`` on ``[F(x_0), 1]`` (``x_0`` the standardised
  ``r = 0``), where the likelihood is a smooth function of ``u``. The nodes
  depend on the population draw only, so the quantile function is evaluated
  ``draws x nodes`` times, not once per star.

Both rules are checked against ``scipy.integrate.quad`` over regimes in
``tests/test_profiles.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln, log_expit, stdtr, stdtrit

from ._population import logsumexp

__all__ = ["PROFILES", "get_profile", "profile_log_marginal", "profile_sample"]

_LOG2PI = np.log(2.0 * np.pi)

#: Gauss–Legendre nodes per panel (accuracy tested against quad), and the
#: nodes per panel of the grid on which per-star distances are drawn.
N_PANEL = 10
N_SAMPLE = 40
# Panel breakpoints of the profile in v = asinh(x): |x| = 0, 2, 8, 40.
_CORE_BREAKS = (0.0, float(np.arcsinh(2.0)), float(np.arcsinh(8.0)), float(np.arcsinh(40.0)))
# Half-width of the parallax window in errors: the likelihood is below
# exp(-40) of its maximum outside it.
_WINDOW = 9.0


class _Profile:
    """A standardised depth profile with one shape parameter.

    The shape's sampler coordinate is the logit of its position in its prior
    range (in the shape itself for a uniform prior, in its log for a
    log-uniform prior), so the sampler sees an unbounded coordinate.
    """

    name = ""
    shape_name = ""  # key of the shape parameter in the posterior
    bounds = (1.0, 2.0)
    log_uniform = False

    # -- the shape parameter ------------------------------------------------
    def shape_from_coord(self, z):
        a, b = self.bounds
        if self.log_uniform:
            return np.exp(np.log(a) + (np.log(b) - np.log(a)) * expit(z))
        return a + (b - a) * expit(z)

    @staticmethod
    def log_prior_coord(z):
        """Log density of the coordinate under the shape's prior (Jacobian)."""
        return log_expit(z) + log_expit(-z)

    def reported(self, shape, scale):
        """(name, value) stored in the posterior for a draw's shape."""
        return self.shape_name, shape

    def shape_from_reported(self, value, scale):
        return value

    # -- the standardised density ------------------------------------------
    def logpdf(self, x, shape):
        """Log density of the standardised profile."""
        return self.log_norm(shape) + self.log_kernel(x, shape)

    def log_norm(self, shape):  # pragma: no cover - abstract
        raise NotImplementedError

    def log_kernel(self, x, shape):  # pragma: no cover - abstract
        raise NotImplementedError

    def cdf(self, x, shape):  # pragma: no cover - abstract
        raise NotImplementedError

    def ppf(self, u, shape):  # pragma: no cover - abstract
        raise NotImplementedError

    def support(self, shape):
        """Largest |x| with positive density (inf for unbounded profiles)."""
        return np.full(np.shape(shape), np.inf)

    def iqr_half(self, shape):
        """Half the interquartile range of the standardised profile."""
        return self.ppf(np.full(np.shape(shape), 0.75), shape)


class _StudentT(_Profile):
    name = "student-t"
    shape_name = "profile_dof"
    bounds = (1.0, 100.0)
    log_uniform = True

    def log_norm(self, nu):
        return gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * np.log(np.pi * nu)

    def log_kernel(self, x, nu):
        return -0.5 * (nu + 1) * np.log1p(x * x / nu)

    def cdf(self, x, nu):
        return stdtr(nu, x)

    def ppf(self, u, nu):
        return stdtrit(nu, u)


class _EFF(_Profile):
    name = "eff"
    shape_name = "profile_gamma"
    bounds = (2.0, 10.0)
    log_uniform = False

    def log_norm(self, gamma):
        nu = gamma - 1.0
        return _StudentT.log_norm(self, nu) + 0.5 * np.log(nu)

    def log_kernel(self, x, gamma):
        return -0.5 * gamma * np.log1p(x * x)

    def cdf(self, x, gamma):
        nu = gamma - 1.0
        return stdtr(nu, x * np.sqrt(nu))

    def ppf(self, u, gamma):
        nu = gamma - 1.0
        return stdtrit(nu, u) / np.sqrt(nu)


class _King(_Profile):
    name = "king"
    shape_name = "tidal_radius"
    bounds = (2.0, 100.0)  # tidal radius in units of the core radius
    log_uniform = True

    def reported(self, shape, scale):
        return "tidal_radius", shape * scale

    def support(self, xt):
        return np.asarray(xt, dtype=np.float64)

    def shape_from_reported(self, value, scale):
        return value / scale

    @staticmethod
    def _g(x, xt):
        # Antiderivative of (1/sqrt(1+x²) - c)², c = 1/sqrt(1+xt²).
        c = 1.0 / np.sqrt(1.0 + xt * xt)
        return np.arctan(x) - 2.0 * c * np.arcsinh(x) + c * c * x

    def log_norm(self, xt):
        return -np.log(2.0 * self._g(xt, xt))

    def log_kernel(self, x, xt):
        c = 1.0 / np.sqrt(1.0 + xt * xt)
        inside = np.abs(x) < xt
        with np.errstate(divide="ignore", invalid="ignore"):
            core = 1.0 / np.sqrt(1.0 + x * x) - c
            val = 2.0 * np.log(np.where(inside, core, 1.0))
        return np.where(inside, val, -np.inf)

    def cdf(self, x, xt):
        x = np.clip(x, -xt, xt)
        return 0.5 + 0.5 * self._g(x, xt) / self._g(xt, xt)

    def ppf(self, u, xt):
        """Inverse CDF by bisection then Newton steps (vectorised)."""
        u, xt = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(xt, dtype=float))
        lo, hi = -xt.copy(), xt.copy()
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid, xt) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        x = 0.5 * (lo + hi)
        for _ in range(3):
            dens = np.exp(self.logpdf(x, xt))
            step = np.where(dens > 0, (self.cdf(x, xt) - u) / np.where(dens > 0, dens, 1.0), 0.0)
            x = np.clip(x - step, lo, hi)
        return x


PROFILES = {p.name: p for p in (_StudentT(), _EFF(), _King())}


def get_profile(name):
    """The profile object for ``name`` (None for the normal profile)."""
    if name == "normal":
        return None
    return PROFILES[name]


# -- the per-star integrals -------------------------------------------------------


def _tail_cut(profile, shape):
    """Standardised |x| beyond which the profile holds < 1e-14 of its mass
    (its support for a profile with a hard edge)."""
    support = profile.support(shape)
    if np.all(np.isfinite(support)):
        return np.asarray(support, dtype=np.float64)
    return np.minimum(np.abs(profile.ppf(np.full(np.shape(shape), 1e-14), shape)), support)


def _breakpoints(profile, y, e, mu, s, sh, cut):
    """Panel ends in v = asinh((r - mean) / scale), shape ``S + (P + 1,)``.

    The window is the part of ``r > 0`` where the parallax likelihood is
    within ``exp(-40)`` of its maximum (``y ± 9 err`` in true parallax) and
    the profile has mass (its support, or ``cut`` where the likelihood
    leaves the window open towards r -> inf); breakpoints at the profile's
    features (core, shoulders, tidal edges) and the likelihood's (``y`` and
    ``y ± 3 err``) split it into panels on which the integrand is smooth.
    Empty panels have zero width.
    """
    def v_of_r(r):
        with np.errstate(invalid="ignore", over="ignore"):
            return np.arcsinh((r - mu) / s)

    def v_of_w(w):
        """v of the distance of a true parallax w (w <= 0: r = inf)."""
        with np.errstate(divide="ignore"):
            return np.where(w > 0, v_of_r(1000.0 / np.where(w > 0, w, 1.0)), np.inf)

    support = np.arcsinh(profile.support(sh))
    cut = np.arcsinh(cut)
    w_peak = np.maximum(y, 0.0)
    half = np.sqrt((w_peak - y) ** 2 + (_WINDOW * e) ** 2)
    w_lo, w_hi = y - half, y + half
    hard = np.isfinite(support)
    if np.any(hard):
        # A star beyond a hard edge: the window is the 18 errors inside the
        # edge, where the integrand's mass is.
        with np.errstate(divide="ignore", invalid="ignore"):
            r_edge = s * np.sinh(np.where(hard, support, 0.0))
            w_far = np.where(hard, 1000.0 / (mu + r_edge), 0.0)
            near = mu - r_edge
            w_near = np.where(hard & (near > 0), 1000.0 / near, np.inf)
        beyond_far, beyond_near = y < w_far, y > w_near
        w_lo = np.where(beyond_far, w_far, np.where(beyond_near, w_near - 2 * half, w_lo))
        w_hi = np.where(beyond_far, w_far + 2 * half, np.where(beyond_near, w_near, w_hi))
    lo = np.maximum(np.maximum(v_of_w(w_hi), v_of_r(0.0)), -support)
    hi = v_of_w(w_lo)
    # The tail cut only bounds a window the likelihood leaves open (r -> inf).
    hi = np.minimum(np.where(np.isfinite(hi), hi, cut), support)
    hi = np.maximum(lo, hi)
    feats = [np.broadcast_to(f, y.shape) for f in _CORE_BREAKS]
    feats += [-f for f in feats[1:]]
    feats += [v_of_w(y + k * e) for k in (-3.0, 0.0, 3.0)]
    if np.any(hard):
        # Near a hard edge (King's tidal radius) a star beyond it puts the
        # integrand's mass in a thin layer inside the edge: points at
        # 0.03, 0.1, 0.3 and 1 errors from each edge (in true parallax).
        for sign, beyond in ((-1.0, beyond_near), (1.0, beyond_far)):
            edge_r = mu + sign * s * np.where(hard, np.sinh(support), 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                edge_w = 1000.0 / edge_r
            for k in (0.03, 0.1, 0.3, 1.0):
                # (only for stars beyond that edge; elsewhere a duplicate of lo)
                feats.append(np.where(beyond, v_of_w(edge_w + sign * k * e), -np.inf))
    pts = np.stack([lo] + [np.clip(f, lo, hi) for f in feats] + [hi], axis=-1)
    return np.sort(np.where(np.isnan(pts), lo[..., None], pts), axis=-1)


def _panel_nodes(a, b, mu, s, n_nodes=None):
    """Gauss–Legendre nodes of panels [a, b] in v: distances and log-weights
    (Jacobian ``dr/dv = scale cosh v`` included), trailing axis the nodes."""
    x, w = np.polynomial.legendre.leggauss(N_PANEL if n_nodes is None else n_nodes)
    half = 0.5 * (b - a)
    v = (0.5 * (a + b))[..., None] + half[..., None] * x
    sh = np.sinh(v)
    with np.errstate(divide="ignore"):
        lw = (np.log(half) + np.log(s))[..., None] + np.log(w) + 0.5 * np.log1p(sh * sh)
    return mu[..., None] + s[..., None] * sh, lw


def _log_integrand(profile, y, e, mean, scale, shape, r, log_norm=None):
    """log N(y | 1000/r, e²) + log p(r) at nodes r (trailing axis)."""
    if log_norm is None:
        log_norm = profile.log_norm(shape)
    y, e, mu, s, sh, ln = (np.asarray(a, dtype=np.float64)[..., None]
                           for a in (y, e, mean, scale, shape, log_norm))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        val = (ln - 0.5 * _LOG2PI - np.log(e * s) - 0.5 * ((y - 1000.0 / r) / e) ** 2
               + profile.log_kernel((r - mu) / s, sh))
    return np.where((r > 0) & ~np.isnan(val), val, -np.inf)


def _log_trunc(profile, mean, scale, shape):
    """log P(r > 0) of the untruncated profile."""
    with np.errstate(divide="ignore"):
        return np.log1p(-profile.cdf(-mean / scale, shape))


def _per_draw(profile, fn, shape, target_shape):
    """``fn(shape)`` evaluated once per distinct draw (the draws broadcast
    along the stars' axis), then broadcast to ``target_shape``."""
    shape = np.asarray(shape, dtype=np.float64)
    return np.broadcast_to(fn(shape), target_shape)


def profile_log_marginal(profile, parallax, parallax_error, mean, scale, shape):
    """log ∫ N(parallax | 1000/r, err²) p(r | mean, scale, shape) dr over r > 0.

    ``p`` is the profile truncated to ``r > 0`` (renormalised). Arguments
    broadcast against each other, typically ``(k, 1)`` population draws
    against ``(n,)`` stars; returns the broadcast shape. Composite
    Gauss–Legendre quadrature over the non-empty panels of
    :func:`_breakpoints` (only those are evaluated).
    """
    arrs = [np.asarray(a, dtype=np.float64) for a in (parallax, parallax_error, mean,
                                                       scale, shape)]
    out_shape = np.broadcast_shapes(*(a.shape for a in arrs))
    # Shape-only quantities once per draw, before broadcasting over stars.
    cut = _per_draw(profile, lambda h: _tail_cut(profile, h), arrs[4], out_shape)
    lnorm = _per_draw(profile, profile.log_norm, arrs[4], out_shape)
    ltrunc = np.broadcast_to(_log_trunc(profile, arrs[2], arrs[3], arrs[4]), out_shape)
    y, e, mu, s, sh = (np.broadcast_to(a, out_shape).ravel() for a in arrs)
    cut, lnorm = cut.ravel(), lnorm.ravel()
    pts = _breakpoints(profile, y, e, mu, s, sh, cut)
    a, b = pts[:, :-1], pts[:, 1:]
    out = np.full(y.size, -np.inf)
    entry, panel = np.nonzero(b > a)
    if entry.size:
        r, lw = _panel_nodes(a[entry, panel], b[entry, panel], mu[entry], s[entry])
        vals = logsumexp(_log_integrand(profile, y[entry], e[entry], mu[entry], s[entry],
                                        sh[entry], r, lnorm[entry]) + lw, axis=-1)
        # Per-entry logsumexp over its panels.
        top = np.full(y.size, -np.inf)
        np.maximum.at(top, entry, vals)
        ref = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            tot = np.bincount(entry, weights=np.exp(vals - ref[entry]), minlength=y.size)
            out = np.log(tot) + ref
    return out.reshape(out_shape) - ltrunc


def profile_sample(profile, parallax, parallax_error, mean, scale, shape, u):
    """Distances drawn from each entry's conditional posterior by inverse CDF.

    ``u`` (uniforms) has the broadcast shape of the other arguments. The
    conditional density is taken piecewise linear in ``v`` between the
    quadrature nodes of the panels of :func:`_breakpoints` (dense where the
    integrand has features) and its CDF inverted.
    """
    arrs = [np.asarray(a, dtype=np.float64) for a in (parallax, parallax_error, mean,
                                                       scale, shape, u)]
    out_shape = np.broadcast_shapes(*(a.shape for a in arrs))
    cut = _per_draw(profile, lambda h: _tail_cut(profile, h), arrs[4], out_shape)
    y, e, mu, s, sh, uu = (np.broadcast_to(a, out_shape) for a in arrs)
    pts = _breakpoints(profile, y, e, mu, s, sh, cut)
    r, _ = _panel_nodes(pts[..., :-1], pts[..., 1:], mu[..., None], s[..., None],
                        N_SAMPLE)
    r = r.reshape(out_shape + (-1,))
    with np.errstate(invalid="ignore", over="ignore"):
        v = np.arcsinh((r - mu[..., None]) / s[..., None])
    # Density in v: integrand times dr/dv.
    lf = _log_integrand(profile, y, e, mu, s, sh, r) + np.log(np.cosh(v))
    lf = np.where(np.isfinite(lf), lf, -np.inf)
    dens = np.exp(lf - np.max(lf, axis=-1, keepdims=True))
    dv = np.diff(v, axis=-1)
    mass = 0.5 * (dens[..., 1:] + dens[..., :-1]) * dv
    cdf = np.concatenate([np.zeros(mass.shape[:-1] + (1,)), np.cumsum(mass, axis=-1)], axis=-1)
    target = uu[..., None] * cdf[..., -1:]
    j = np.clip(np.sum(cdf[..., 1:] <= target, axis=-1), 0, v.shape[-1] - 2)[..., None]
    c0 = np.take_along_axis(cdf, j, axis=-1)[..., 0]
    m = np.take_along_axis(mass, j, axis=-1)[..., 0]
    v0 = np.take_along_axis(v, j, axis=-1)[..., 0]
    h = np.take_along_axis(dv, j, axis=-1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(m > 0, (target[..., 0] - c0) / m, 0.5)
    vs = v0 + np.clip(frac, 0.0, 1.0) * h
    return mu + s * np.sinh(vs)
