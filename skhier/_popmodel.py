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
  population is too narrow for the fixed nodes, Gauss–Legendre nodes on a
  window of +-20 Laplace widths around the mode of likelihood x population
  are used instead (see :class:`_BoundedMarginal`). Accuracy is tested
  against ``scipy.integrate.quad``.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

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
    PopulationFamily,
    check_prior,
    clip_into_priors,
    population_density,
)
from ._docstrings import fill_doc
from ._math import categorical, log_normal_pdf
from .selection import SelectionTerm
from .utils._checks import check_sample_weight

__all__ = ["PopulationModel"]



_CHUNK_CELLS = 2_000_000  # (draws x objects x nodes) evaluated at once (~16 MB)

#: Objects from which ``sampler="auto"`` integrates the population posterior
#: by adaptive Gauss-Hermite quadrature (see :mod:`skhier._quadrature`);
#: smaller samples, whose posteriors are further from Gaussian, are
#: importance-sampled.
QUADRATURE_MIN_OBJECTS = 1000

#: Fitted per-object summaries computed on first access (cleared by ``fit``).
_LAZY_SUMMARIES = ("membership_proba_", "theta_mean_")


def _logsumexp_last(t):
    """log Σ exp over the last axis, in place on the temporary ``t``."""
    m = t.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    np.subtract(t, m, out=t)
    np.exp(t, out=t)
    with np.errstate(divide="ignore"):
        return np.log(t.sum(axis=-1)) + m[..., 0]


@lru_cache(maxsize=8)
def _gauss_legendre(n):
    """Gauss–Legendre nodes and weights on [-1, 1] (cached, read-only)."""
    z, w = np.polynomial.legendre.leggauss(n)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def _find_mode(newton_terms, t0, n_iter):
    """Damped Gauss–Newton ascent (steps capped at 3 local widths): (mode, precision)."""
    t = np.array(t0, dtype=float)
    for _ in range(n_iter):
        grad, prec = newton_terms(t)
        prec = np.maximum(prec, 1e-12)
        width = 1.0 / np.sqrt(prec)
        step = np.clip(grad / prec, -3.0 * width, 3.0 * width)
        t = np.where(np.isfinite(step), t + step, t)
    _, prec = newton_terms(t)
    return t, np.maximum(prec, 1e-12)


# ---------------------------------------------------------------------------
# Collapsed per-object likelihoods  log ∫ N(x_i | theta, e_i^2) p(theta | alpha) dtheta
# ---------------------------------------------------------------------------
class _Marginal:
    """Per-object marginal likelihood of one population family.

    ``x``, ``e`` are (n,) arrays of measurements and their standard
    deviations (``e = 0``: the value is known exactly). Methods take
    population parameters ``params`` of shape (k, p) and return (k, n)
    tables; no loop over objects.
    """

    def __init__(self, family: PopulationFamily, x, e):
        self.family = family
        self.x = np.asarray(x, dtype=float)
        self.e = np.asarray(e, dtype=float)
        self.exact = self.e == 0
        self.noisy = ~self.exact
        self.all_noisy = bool(self.noisy.all())

    # Subclasses implement these for the noisy objects (arrays xs, es).
    def _loglik(self, params, xs, es):
        raise NotImplementedError

    def _post_mean(self, params, xs, es):
        raise NotImplementedError

    def _sample(self, params, xs, es, rng):
        raise NotImplementedError

    def _assemble(self, params, noisy_fn, exact_fn):
        params = np.atleast_2d(params)
        if self.all_noisy:
            return noisy_fn(params, self.x, self.e)
        out = np.empty((params.shape[0], self.x.size))
        if self.noisy.any():
            out[:, self.noisy] = noisy_fn(params, self.x[self.noisy], self.e[self.noisy])
        if self.exact.any():
            out[:, self.exact] = exact_fn(params, self.x[self.exact])
        return out

    def loglik(self, params):
        """log p(x_i | alpha) for every parameter row and object: (k, n)."""
        return self._assemble(
            params, self._loglik, lambda p, xs: self.family.logpdf(xs[None, :], p)
        )

    def posterior_mean(self, params):
        """E[theta_i | x_i, alpha]: (k, n)."""
        return self._assemble(
            params, self._post_mean, lambda p, xs: np.broadcast_to(xs, (p.shape[0], xs.size))
        )

    def sample(self, params, rng):
        """One draw of theta_i from p(theta_i | x_i, alpha) per row: (k, n)."""
        return self._assemble(
            params,
            lambda p, xs, es: self._sample(p, xs, es, rng),
            lambda p, xs: np.broadcast_to(xs, (p.shape[0], xs.size)),
        )


class _NormalMarginal(_Marginal):
    """theta ~ N(mu, tau^2): x_i ~ N(mu, tau^2 + e_i^2) exactly."""

    def _shrink(self, params, xs, es):
        mu, tau2 = params[:, :1], params[:, 1:2] ** 2
        w = tau2 / (tau2 + es**2)  # weight of the measurement (1 when e = 0)
        return mu + w * (xs - mu), w * es**2

    def _loglik(self, params, xs, es):
        return log_normal_pdf(xs, params[:, :1], params[:, 1:2] ** 2 + es**2)

    def _post_mean(self, params, xs, es):
        return self._shrink(params, xs, es)[0]

    def _sample(self, params, xs, es, rng):
        mean, var = self._shrink(params, xs, es)
        return mean + np.sqrt(var) * rng.standard_normal(mean.shape)


#: Population sd (in theta) below this fraction of the measurement error: the
#: population is treated as a point mass smeared by its variance (delta method).
POINT_MASS = 1e-3


class _BoundedMarginal(_Marginal):
    """Population on a (half-)bounded support, integrated in v = T(theta).

    ``T`` is log (support (0, inf)) or logit (support (0, 1)). For each
    object the region where its likelihood exceeds ``exp(-R)`` times its
    maximum over the support is fixed once, and covered by composite
    Gauss–Legendre nodes uniform in ``s(v) = theta(v) / e + v``: spaced by
    about one measurement error where the likelihood varies, and
    logarithmically towards a support bound, where the population density
    may behave like a power of the distance to the bound. The likelihood
    part of every node is computed once per fit, so each posterior
    evaluation costs one population log-density per node. Within ``eps``
    of a bound the likelihood is replaced by its first-order expansion and
    integrated against the exact population mass and first moment there
    (:meth:`PopulationFamily.boundary_moments`), which handles Beta
    densities that diverge at 0 or 1. (The region ignores population mass
    where the likelihood is below ``exp(-R)``: for a measurement more than
    ~10 widths away from a population much narrower than the measurement
    error allows, the log-likelihood is then only good to ~1e-4.) Where the
    population is too narrow for the fixed nodes, Gauss–Legendre nodes on a window of ``WINDOW``
    Laplace widths either side of the mode of likelihood x population
    (found by damped Gauss–Newton steps) are used instead.
    """

    R = 40.0  # likelihood region: log L > log L_max - R
    EPS_FACTOR = 3e-3  # boundary layer: eps <= EPS_FACTOR e^2 / |x - bound|_e
    PANEL_NODES = 8
    NARROW = 2.0  # population width (in s) below which adaptive nodes are used
    GH_ITER = 10  # Gauss-Newton steps from the likelihood x population Gaussian guess
    N_WINDOW = 96  # nodes of the window around the mode (narrow populations)
    WINDOW = 20.0  # its half-width in Laplace widths of likelihood x population

    def __init__(self, family, x, e, n_nodes=40):
        super().__init__(family, x, e)
        self.lo, self.hi = family.support
        self._affine = None  # node log-densities affine in the features? (checked once)
        self._ref = None  # per-object reference log-likelihood (set at first use)
        self._design_cache = None
        self._setup(self.x[self.noisy], self.e[self.noisy], n_nodes)

    def _s(self, v, es):
        theta, logjac = self.family.from_latent(v)
        return theta / es + v, np.exp(logjac) / es + 1.0

    #: Points per object of the coarse table of s(v) that starts the solver.
    GUESS_GRID = 33
    #: Entries solved at once (blocks of objects small enough for the cache).
    SOLVE_BLOCK = 2**17

    def _solve_v(self, target, va, vb, es):
        """v with s(v) = target, row by row: ``target`` (n, m), the other
        arguments (n,) (object i's s is monotone on [va_i, vb_i]).

        Each target starts from linear interpolation in a table of s on
        ``GUESS_GRID`` points per object, inside the table's bracketing
        cell; safeguarded Newton steps then run until every step is below
        1e-12 (relative), updating only the entries still moving (a few
        steps each). Blocks of objects are solved one after the other.
        """
        n, m = target.shape
        out = np.empty((n, m))
        step = max(1, self.SOLVE_BLOCK // max(m, 1))
        for start in range(0, n, step):
            rows = slice(start, start + step)
            out[rows] = self._solve_v_block(target[rows], va[rows], vb[rows], es[rows])
        return out

    def _solve_v_block(self, target, va, vb, es):
        """:meth:`_solve_v` for one block of objects."""
        n, m = target.shape
        vg = va[:, None] + (vb - va)[:, None] * np.linspace(0.0, 1.0, self.GUESS_GRID)
        sg = self._s(vg, es[:, None])[0]
        # Each target's cell in its row of the table: one global search on
        # keys row + f / 2, f in [0, 1] the position within the row's range.
        s0, span = sg[:, :1], sg[:, -1:] - sg[:, :1]
        span = np.where(span > 0, span, 1.0)
        rows = np.arange(n)[:, None]
        key_g = (rows + 0.5 * np.clip((sg - s0) / span, 0.0, 1.0)).ravel()
        key_t = (rows + 0.5 * np.clip((target - s0) / span, 0.0, 1.0)).ravel()
        j = np.searchsorted(key_g, key_t, side="right").reshape(n, m) - 1
        j = np.clip(j - rows * self.GUESS_GRID, 0, self.GUESS_GRID - 2)
        v_lo, v_hi = np.take_along_axis(vg, j, 1), np.take_along_axis(vg, j + 1, 1)
        s_lo, s_hi = np.take_along_axis(sg, j, 1), np.take_along_axis(sg, j + 1, 1)
        # A cell that does not bracket its target (rounding in the keys)
        # falls back to the object's whole range.
        good = (s_lo <= target) & (target <= s_hi)
        lo = np.where(good, v_lo, va[:, None]).ravel()
        hi = np.where(good, v_hi, vb[:, None]).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((target - s_lo) / (s_hi - s_lo), 0.0, 1.0)
        v = np.where(good & np.isfinite(frac), v_lo + (v_hi - v_lo) * frac,
                     0.5 * (va + vb)[:, None]).ravel()
        out = v.copy()
        # Working copies of the entries still moving, compacted as they stop.
        idx = np.arange(v.size)
        t, es = target.ravel(), np.repeat(es, m)
        for _ in range(60):
            sv, ds = self._s(v, es)
            too_big = sv > t
            hi = np.where(too_big, v, hi)
            lo = np.where(too_big, lo, v)
            step = v - (sv - t) / ds
            v_new = np.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
            moving = np.abs(v_new - v) > 1e-12 * (1.0 + np.abs(v))
            v = v_new
            if not moving.all():
                out[idx[~moving]] = v[~moving]
                idx, v, lo, hi, t, es = (a[moving] for a in (idx, v, lo, hi, t, es))
                if not idx.size:
                    break
        out[idx] = v
        return out.reshape(n, m)

    def _setup(self, xs, es, n_nodes):
        lo, hi = self.lo, self.hi
        fam = self.family
        finite_hi = np.isfinite(hi)
        ts = np.clip(xs, lo, hi)
        r = np.sqrt((ts - xs) ** 2 + 2.0 * self.R * es**2)
        touch_lo = xs - r <= lo
        touch_hi = (xs + r >= hi) if finite_hi else np.zeros(xs.shape, dtype=bool)

        # A common boundary layer per bound (so that its population mass is one
        # special-function call per walker), thin enough that each touching
        # object's likelihood is linear across it to ~1e-6.
        def layer(touch, d):
            if not touch.any():
                return 0.0
            cand = self.EPS_FACTOR * es[touch] ** 2 / np.sqrt(d[touch] ** 2 + es[touch] ** 2)
            return float(np.clip(cand.min(), 1e-300, 1e-3 * np.min(es[touch])))

        self.eps_lo = layer(touch_lo, xs - lo)
        self.eps_hi = layer(touch_hi, hi - xs) if finite_hi else 0.0
        a = np.where(touch_lo, lo + self.eps_lo, xs - r)
        b = np.where(touch_hi, hi - self.eps_hi, xs + r)
        with np.errstate(divide="ignore"):
            va = fam.to_latent(a)
            vb = fam.to_latent(b)
        if finite_hi and self.eps_hi > 0:
            # Latent value of hi - eps without rounding 1 - eps.
            vb = np.where(touch_hi, -fam.to_latent(lo + self.eps_hi), vb) if lo == 0 and hi == 1 else vb
        sa, sb = self._s(va, es)[0], self._s(vb, es)[0]
        self.va, self.vb, self.sa, self.sb = va, vb, sa, sb
        g = self.PANEL_NODES
        n_panels = max(1, int(round(n_nodes / g)))
        z, w = np.polynomial.legendre.leggauss(g)
        edges = np.linspace(0.0, 1.0, n_panels + 1)
        u = ((edges[:-1, None] + edges[1:, None]) / 2 + (edges[1:, None] - edges[:-1, None]) / 2 * z).ravel()
        wu = np.tile(w / (2 * n_panels), n_panels)  # weights on [0, 1]
        target = sa[:, None] + (sb - sa)[:, None] * u  # (n, Q) nodes in s
        v = self._solve_v(target, va, vb, es)
        theta, _ = fam.from_latent(v)
        ds = self._s(v, es[:, None])[1]
        self.nodes = v
        self.features = fam.latent_features(v)
        self.theta_nodes = theta
        # ∫ f dv = ∫ f (dv/ds) ds ≈ Σ w_q (sb - sa) f(v_q) / s'(v_q)
        self.log_wl = (
            np.log(wu)
            + np.log(sb - sa)[:, None]
            - np.log(ds)
            + log_normal_pdf(xs[:, None], theta, es[:, None] ** 2)
        )
        self.touch_lo, self.touch_hi = touch_lo, touch_hi
        # log L at each bound and the slope of L / L(bound) with the distance to it.
        self.ll_lo = log_normal_pdf(xs, lo, es**2)
        self.slope_lo = (xs - lo) / es**2
        if finite_hi:
            self.ll_hi = log_normal_pdf(xs, hi, es**2)
            self.slope_hi = (hi - xs) / es**2
        # Fixed-node spacing in s, and where each object's likelihood peaks in v.
        self.spacing = (sb - sa) / n_nodes
        self.v_start = fam.to_latent(np.clip(xs, a, b))
        self.xs, self.es = xs, es

    def _narrow(self, params):
        """(k, n) mask: population too narrow (in s) for the fixed nodes, and
        narrower (in v) than the likelihood where the population lives, so that
        a population-centred window resolves both."""
        mp, sp = self.family.latent_moments(params)
        _, logjac = self.family.from_latent(mp)
        ratio = np.exp(logjac)[:, None] / self.es[None, :]  # 1 / likelihood width in v
        sp_s = sp[:, None] * (1.0 + ratio)
        too_narrow = sp_s < np.maximum(self.NARROW, 4.0 * self.spacing)[None, :]
        return too_narrow & (sp[:, None] * ratio < 1.0)

    # -- pieces ------------------------------------------------------------
    def _check(self, xs):
        if xs.shape != self.xs.shape or not np.array_equal(xs, self.xs):
            raise RuntimeError("internal: marginal evaluated on other data than set up")

    def _boundary_terms(self, params):
        """(log piece_lo, log piece_hi) of shape (k, n) (or None)."""
        out = []
        for side, touch, eps, ll, slope in (
            ("lower", self.touch_lo, self.eps_lo, self.ll_lo, self.slope_lo),
            ("upper", self.touch_hi, self.eps_hi, getattr(self, "ll_hi", None),
             getattr(self, "slope_hi", None)),
        ):
            if not touch.any():
                out.append(None)
                continue
            m0, m1 = self.family.boundary_moments(eps, side, params)
            has_mass = np.isfinite(m0)[:, None]
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                ratio = np.where(has_mass, np.exp(m1 - m0)[:, None], 0.0)  # mean distance
                piece = ll[None, :] + m0[:, None] + np.log1p(slope[None, :] * ratio)
            out.append(np.where(touch[None, :] & has_mass, piece, -np.inf))
        return out

    def _gh_pieces(self, params, mask):
        """Log-integrand, Gauss–Newton terms and start for the masked entries."""
        wi, ni = np.nonzero(mask)
        fam = self.family
        pw = params[wi]
        x, e2 = self.xs[ni], self.es[ni] ** 2
        mp, sp = fam.latent_moments(pw)
        _, lj = fam.from_latent(self.v_start[ni])
        sl = self.es[ni] / np.exp(lj)  # likelihood width in v at its peak
        prec0 = 1 / sp**2 + 1 / sl**2
        t0 = (mp / sp**2 + self.v_start[ni] / sl**2) / prec0

        def log_f(v):
            theta, _ = fam.from_latent(v)
            return log_normal_pdf(x[:, None], theta, e2[:, None]) + fam.latent_logpdf(v, pw)

        def newton_terms(v):
            theta, logjac = fam.from_latent(v)
            dg = np.exp(logjac)
            g1, h1 = fam.latent_grad_prec(v, pw)
            return g1 + (x - theta) * dg / e2, h1 + dg**2 / e2

        return wi, ni, log_f, newton_terms, t0

    def _window_integral(self, params, mask, weight=None):
        """log ∫ f over a window around the mode for the masked (narrow) entries.

        ``N_WINDOW`` Gauss–Legendre nodes on mode ± ``WINDOW`` Laplace widths
        (in v) of likelihood x population: the population, narrower than the
        likelihood here, is resolved. ``weight(v)`` (optional) adds a
        log-factor, e.g. log theta for posterior means.
        Returns (wi, ni, log-integral).
        """
        wi, ni, log_f, newton_terms, t0 = self._gh_pieces(params, mask)
        with np.errstate(all="ignore"):
            mode, prec = _find_mode(newton_terms, t0, self.GH_ITER)
            z, w = _gauss_legendre(self.N_WINDOW)
            half = self.WINDOW / np.sqrt(prec)
            v = mode[:, None] + half[:, None] * z
            lf = log_f(v)
            if weight is not None:
                lf = lf + weight(v)
            lf = np.where(np.isfinite(lf), lf, -np.inf) + np.log(w) + np.log(half)[:, None]
            val = _logsumexp_last(lf)
        return wi, ni, val

    def _fixed_terms(self, params, rows=slice(None)):
        feats = tuple(f[rows][None] for f in self.features)
        return self.family.latent_logpdf_features(feats, params) + self.log_wl[rows][None]

    def _affine_coefs(self, params):
        """(k, J + 2) coefficients ``c`` with log p(v_q | alpha_k) + log_wl =
        ``c @ [1, F_1, ..., F_J, log_wl]`` at the fixed nodes, or None.

        The families' node log-densities are affine in their parameter-free
        features (log-normal: ``v`` and ``-v²/2``; Beta: ``log s(±v)``), so
        a whole (draws x objects x nodes) table is one matrix product. The
        coefficients are read off by evaluating the family at unit features;
        whether the family is affine is checked once on real nodes.
        """
        fam = self.family
        k, n_feat = params.shape[0], len(self.features)
        unit = np.zeros((1, 1))
        with np.errstate(all="ignore"):
            c0 = np.reshape(fam.latent_logpdf_features((unit,) * n_feat, params), k)
            cols = [c0]
            for j in range(n_feat):
                feats = [unit] * n_feat
                feats[j] = np.ones((1, 1))
                cols.append(np.reshape(fam.latent_logpdf_features(tuple(feats), params), k) - c0)
        coefs = np.stack(cols + [np.ones(k)], axis=1)
        if self._affine is None:
            rows = slice(0, min(8, self.xs.size))
            direct = self._fixed_terms(params[:1], rows)[0]
            design = np.stack([np.ones_like(self.log_wl[rows])]
                              + [f[rows] for f in self.features] + [self.log_wl[rows]])
            approx = np.tensordot(coefs[0], design, axes=1)
            self._affine = bool(np.all(np.isfinite(coefs[0])) and np.allclose(
                approx, direct, rtol=1e-10, atol=1e-9))
        return coefs if self._affine else None

    def _design(self):
        """Parameter-free (J + 2, n, q) matrix behind :meth:`_affine_coefs`, with
        each object's reference log-likelihood ``_ref`` subtracted from its
        log-weights so that the exponentials need no per-entry maximum."""
        if self._design_cache is None:
            ones = np.ones_like(self.log_wl)
            self._design_cache = np.stack(
                [ones, *self.features, self.log_wl - self._ref[:, None]]
            )
        return self._design_cache

    def _node_weights(self, params, rows):
        """(offset (k, r), weights (k, r, q)): the fixed-node terms are
        ``log weights + offset[..., None]``; weights are finite and their sums
        positive wherever the log-integral is finite."""
        k = params.shape[0]
        coefs = self._affine_coefs(params) if self._ref is not None else None
        if coefs is None:
            terms = self._fixed_terms(params, rows)
            m = terms.max(axis=-1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            np.subtract(terms, m, out=terms)
            np.exp(terms, out=terms)
            return m[..., 0], terms
        design = self._design()[:, rows]
        q = design.shape[-1]
        with np.errstate(all="ignore"):
            w = np.einsum("kj,jm->km", coefs, design.reshape(design.shape[0], -1)).reshape(k, -1, q)
            np.exp(w, out=w)
            total = w.sum(axis=-1)
        offset = np.broadcast_to(self._ref[rows], total.shape).copy()
        bad = ~((total > 1e-280) & (total < 1e280))
        if bad.any():
            # Far from the reference (rare): the stable way for those entries.
            wi, ni = np.nonzero(bad)
            t = np.einsum("kj,jkq->kq", coefs[wi], design[:, ni])
            m = t.max(axis=-1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            w[wi, ni] = np.exp(t - m)
            offset[wi, ni] = self._ref[rows][ni] + m[:, 0]
        return offset, w

    def _fixed_loglik(self, params):
        """log Σ_q over the fixed nodes, chunked over objects: (k, n)."""
        k, n = params.shape[0], self.xs.size
        out = np.empty((k, n))
        q = self.log_wl.shape[1]
        if self._ref is None:
            # Reference log-likelihoods at the first parameters seen.
            self._ref = np.zeros(n)
            self._ref = _logsumexp_last(self._fixed_terms(params[:1]))[0]
            self._ref = np.where(np.isfinite(self._ref), self._ref, 0.0)
        step = max(1, _CHUNK_CELLS // max(k * q, 1))
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            offset, w = self._node_weights(params, rows)
            with np.errstate(divide="ignore"):
                out[:, rows] = np.log(w.sum(axis=-1)) + offset
        return out

    def _loglik(self, params, xs, es):
        self._check(xs)
        out = self._fixed_loglik(params)
        for piece in self._boundary_terms(params):
            if piece is not None:
                out = np.logaddexp(out, piece)
        mask = self._narrow(params)
        if mask.any():
            wi, ni, val = self._window_integral(params, mask)
            # A failed mode search (only for measurements hundreds of errors
            # away from a narrow population) keeps the fixed-node value.
            out[wi, ni] = np.where(np.isfinite(val), val, out[wi, ni])
        return self._point_mass_limit(params, xs, es, out)

    def _point_mass_limit(self, params, xs, es, out):
        """Entries whose population is a near point mass against the measurement.

        When the population's sd in theta is below ``POINT_MASS`` times
        the measurement error (and its mean lies 40 sds inside the support),
        quadrature in v cannot resolve it (its width in v may be below
        floating-point resolution), while the delta method
        ``log N(x | m, e^2 + s^2)`` (population mean m and sd s) is exact to
        far below 1e-6 there: with the population's exact mean and variance,
        its error comes from the skewness ``g`` (3 sigma for the log-normal,
        about 2 (1 - 2 m) / sqrt(m (1 - m) kappa) for the Beta) and is of order
        ``g * POINT_MASS^3``.
        """
        if isinstance(self.family, LogNormalFamily):
            sig2 = params[:, 1:2] ** 2
            m = np.exp(params[:, :1] + 0.5 * sig2)
            s = m * np.sqrt(np.expm1(sig2))
        elif isinstance(self.family, BetaFamily):
            m = params[:, :1]
            s = np.sqrt(m * (1.0 - m) / (params[:, 1:2] + 1.0))
        else:
            return out
        lo, hi = self.family.support
        narrow = (s < POINT_MASS * es[None, :]) & (m - lo > 40.0 * s) & (hi - m > 40.0 * s)
        if not narrow.any():
            return out
        return np.where(narrow, log_normal_pdf(xs[None, :], m, es[None, :] ** 2 + s**2), out)

    def _post_mean(self, params, xs, es):
        self._check(xs)
        k, n = params.shape[0], self.xs.size
        log_num, log_den = np.empty((k, n)), np.empty((k, n))
        if self._ref is None:
            self._fixed_loglik(params[:1])
        step = max(1, _CHUNK_CELLS // max(k * self.log_wl.shape[1], 1))
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            offset, w = self._node_weights(params, rows)
            with np.errstate(divide="ignore"):
                log_den[:, rows] = np.log(w.sum(axis=-1)) + offset
                log_num[:, rows] = np.log(
                    np.einsum("kiq,iq->ki", w, self.theta_nodes[rows])) + offset
        lo_p, hi_p = self._boundary_terms(params)
        if lo_p is not None:  # theta ~ lo within the layer
            log_num = np.logaddexp(log_num, lo_p + np.log(max(self.lo, 1e-300)))
            log_den = np.logaddexp(log_den, lo_p)
        if hi_p is not None:
            log_num = np.logaddexp(log_num, hi_p + np.log(self.hi))
            log_den = np.logaddexp(log_den, hi_p)
        out = np.exp(log_num - log_den)
        mask = self._narrow(params)
        if mask.any():
            wi, ni, den = self._window_integral(params, mask)
            _, _, num = self._window_integral(
                params, mask, weight=lambda v: np.log(self.family.from_latent(v)[0])
            )
            out[wi, ni] = np.where(np.isfinite(num - den), np.exp(num - den), out[wi, ni])
        return out

    SAMPLE_CELLS = 1024

    def _sample(self, params, xs, es, rng):
        # Inverse CDF over cells uniform in s on each object's likelihood region
        # (~0.04 measurement errors wide; parameter-free edges); the boundary
        # layers (probability q) are sampled as points next to the bound.
        self._check(xs)
        k, n = params.shape[0], xs.size
        fam = self.family
        g = self.SAMPLE_CELLS
        frac = np.linspace(0.0, 1.0, g + 1)
        target = self.sa[:, None] + (self.sb - self.sa)[:, None] * frac
        edges = self._solve_v(target, self.va, self.vb, es)
        mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
        theta_mid, _ = fam.from_latent(mids)
        with np.errstate(divide="ignore"):
            log_cell = log_normal_pdf(xs[:, None], theta_mid, es[:, None] ** 2) + np.log(np.diff(edges, axis=1))
        feats = fam.latent_features(mids)
        obj = np.arange(n)[None, :]
        v = np.empty((k, n))
        step = max(1, _CHUNK_CELLS // (n * g))
        for start in range(0, k, step):
            rows = slice(start, min(start + step, k))
            with np.errstate(all="ignore"):
                lf = fam.latent_logpdf_features(tuple(f[None] for f in feats), params[rows])
                lf = lf + log_cell[None]
            lf = np.where(np.isfinite(lf), lf, -np.inf)
            j = categorical(np.exp(lf - lf.max(axis=-1, keepdims=True)), rng)
            left, right = edges[obj, j], edges[obj, j + 1]
            v[rows] = left + (right - left) * rng.uniform(size=left.shape)
        theta = fam.from_latent(v)[0]
        # Boundary layers: replace by a point in the layer with their probability.
        total = self._loglik(params, xs, es)
        lo_p, hi_p = self._boundary_terms(params)
        u = rng.uniform(size=(k, n))
        for piece, side, eps in ((lo_p, "lower", self.eps_lo), (hi_p, "upper", self.eps_hi)):
            if piece is None:
                continue
            q = np.exp(piece - total)
            inside = (u >= 0) & (u < q)
            if inside.any():
                # Within the layer the likelihood is flat: draw the distance to
                # the bound from the population restricted to the layer.
                with np.errstate(all="ignore"):
                    d = fam.boundary_quantile(
                        rng.uniform(size=(k, n)), eps, side, params[:, None, :]
                    )
                d = np.clip(np.nan_to_num(d, nan=0.5 * eps), 0.0, eps)
                theta = np.where(inside, self.lo + d if side == "lower" else self.hi - d, theta)
            u = u - q
        return theta


def make_marginal(family: PopulationFamily, x, e) -> _Marginal:
    """The collapsed likelihood object for ``family`` and data (x, e)."""
    if isinstance(family, NormalFamily):
        return _NormalMarginal(family, x, e)
    if isinstance(family, (LogNormalFamily, BetaFamily)):
        return _BoundedMarginal(family, x, e)
    raise ValueError(f"no collapsed likelihood for the family {family!r}.")


# ---------------------------------------------------------------------------
# The posterior over population (+ outlier) parameters
# ---------------------------------------------------------------------------
#: The background component's parameters and how each is sampled.
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
    ``skhier._popmodel`` for the integrals.

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

    def score_samples(self, X, X_err=None):
        """Log posterior predictive density of each measurement.

        ``log (1/S) Σ_s p(x_i | alpha_s)`` over posterior draws, with the
        measurement error ``X_err`` (None: exact values) and the background
        component included.

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
