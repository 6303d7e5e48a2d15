"""PosteriorSamplesPopulation: a population from per-object posterior samples.

Each object i has already been analysed on its own (a light-curve fit, an
isochrone fit, ...) and what is left is a set of K posterior samples
``theta_ik`` drawn under an *interim prior* ``p0(theta)``. The population
``p(theta | alpha)`` is inferred by reweighting those samples (Hogg, Myers &
Bovy 2010, ApJ 725, 2166, eq. 9):

    p(alpha | data) ∝ p(alpha) Π_i (1/K) Σ_k p(theta_ik | alpha) / p0(theta_ik).

Each factor is a Monte Carlo estimate of ``p(d_i | alpha) / Z_i`` — the
object's marginal likelihood under the population, divided by its
(alpha-independent) evidence under the interim prior — so the per-object
latents are integrated out and the sampler (emcee) only sees the population
parameters.

Hot path. For W walkers, N objects and K samples every posterior evaluation
needs W x N x K population log-densities. The parametric populations
(normal, log-normal, truncated normal, Beta) are exponential families,
``log p(theta | alpha) = eta(alpha) . T(theta) - A(alpha) + log h(theta)``,
so the sufficient features ``T(theta_ik)`` (centred per object) and the
alpha-independent part ``log h - log p0`` are computed once per fit; each
evaluation is then one single-precision matrix product (walkers x features)
@ (features x objects*samples), an exponential and a sum, done in chunks of
objects. The per-object constants ``eta . mean_k T_ik`` and the normaliser
``A`` are added in double precision, so the rounding error of a per-object
log-likelihood is ~1e-6 relative to the spread of the log weights. Other
populations (a user-supplied log-density) are evaluated in double precision.
The histogram population is linear in its bin probabilities, so its per-
object likelihood is a (objects x bins) matrix computed once.

Everything per object after the fit (posterior means, resampled ``theta``,
membership, the effective number of reweighted samples) is computed in
double precision from the stored samples.
"""

from __future__ import annotations

import numbers
from numbers import Integral, Real

import numpy as np
from scipy import special
from sklearn.base import DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._metadata_requests import UNUSED
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import ERROR_ARGS, BaseHierarchicalEstimator, PosteriorModel, hard_prior_bounds
from ._distributions import (
    _TRANSFORM_DOMAIN,
    CustomPopulation,
    HistogramFamily,
    LogNormalFamily,
    PopulationFamily,
    Prior,
    _location_spread,
    clip_into_priors,
    feature_map,
    get_family,
    population_density,
)
from ._docstrings import fill_doc
from ._math import HALF_LOG2PI, categorical, logmeanexp, row_chunks, single_threaded_blas
from .selection import SelectionTerm
from .utils._checks import check_beta_prior, check_finite_array, check_sample_weight
from .utils._warnings import warn

__all__ = ["PosteriorSamplesPopulation", "ReweightingWarning"]


#: Cells (walkers x objects x samples) evaluated at once in the sampler (~16 MB in float32).
_FAST_CHUNK_CELLS = 4_000_000
#: Cells (draws x objects x samples) evaluated at once in double precision (~16 MB).
_CHUNK_CELLS = 2_000_000
#: Posterior draws used for per-object summaries (predict, score_samples,
#: membership; fewer than other estimators' as each costs a pass over every
#: object's samples). The Monte Carlo error of an average over 200 nearly
#: independent draws is < 7 % of the posterior spread it summarises.
_N_OBJECT_DRAWS = 200
#: Warn when an object's reweighted samples are worth fewer than this many
#: independent samples at the posterior median population.
MIN_EFFECTIVE_SAMPLES = 10.0
_NEG_BIG = np.float32(-1e30)  # finite stand-in for log 0 inside matrix products


class ReweightingWarning(UserWarning):
    """The reweighted per-object samples are too few to trust the result.

    Raised by :class:`PosteriorSamplesPopulation` when, at the posterior
    median population, some object's importance weights
    ``p(theta_ik | alpha) / p0(theta_ik)`` are dominated by a handful of its
    samples (effective number below ``MIN_EFFECTIVE_SAMPLES`` = 10): the
    population is narrower than those objects' posterior samples resolve,
    and the Monte Carlo sums behind the likelihood are unreliable. More
    samples per object (or samples drawn under an interim prior closer to
    the population) fix it. It is a :class:`UserWarning` rather than
    scikit-learn's ``ConvergenceWarning`` because running the sampler longer
    does not help.
    """


# ---------------------------------------------------------------------------
# Background (outlier) component: a fixed broad density
# ---------------------------------------------------------------------------
class _Background:
    """Fixed broad density of one coordinate of theta for the outlier component.

    Uniform over a finite support; a log-normal in the distance to the bound
    for a half-bounded one; otherwise a normal centred on the median of the
    objects' samples with 5 times their robust spread.
    """

    def __init__(self, support, values):
        lo, hi = support
        self.lo, self.hi = float(lo), float(hi)
        values = np.asarray(values, dtype=float)
        if np.isfinite(lo) and np.isfinite(hi):
            self.kind = "uniform"
        elif np.isfinite(lo) or np.isfinite(hi):
            self.kind = "lognormal"
            dist = values - lo if np.isfinite(lo) else hi - values
            dist = dist[dist > 0]
            m, s = _location_spread(np.log(dist)) if dist.size else (0.0, 1.0)
            self.loc, self.scale = m, max(5.0 * s, 1.0)
        else:
            self.kind = "normal"
            m, s = _location_spread(values)
            self.loc, self.scale = m, 5.0 * s

    def logpdf(self, theta):
        theta = np.asarray(theta, dtype=float)
        if self.kind == "uniform":
            inside = (theta >= self.lo) & (theta <= self.hi)
            return np.where(inside, -np.log(self.hi - self.lo), -np.inf)
        if self.kind == "normal":
            z = (theta - self.loc) / self.scale
            return -0.5 * z * z - np.log(self.scale) - HALF_LOG2PI
        dist = theta - self.lo if np.isfinite(self.lo) else self.hi - theta
        with np.errstate(divide="ignore", invalid="ignore"):
            ld = np.log(np.where(dist > 0, dist, 1.0))
            z = (ld - self.loc) / self.scale
            lp = -0.5 * z * z - np.log(self.scale) - HALF_LOG2PI - ld
        return np.where(dist > 0, lp, -np.inf)

    def rvs(self, size, rng):
        """Draws from the background density."""
        if self.kind == "uniform":
            return rng.uniform(self.lo, self.hi, size=size)
        z = rng.standard_normal(size)
        if self.kind == "normal":
            return self.loc + self.scale * z
        dist = np.exp(self.loc + self.scale * z)
        return self.lo + dist if np.isfinite(self.lo) else self.hi - dist


def _sample_weights(lw):
    """Importance weights of each object's samples from their logs ``lw`` (..., K):
    ``exp(lw - max)``, their sum, and ``log mean_k exp(lw)`` (``-inf`` where
    every weight is 0)."""
    m = np.max(lw, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    w = np.exp(lw - m)
    tot = w.sum(-1)
    with np.errstate(divide="ignore"):
        return w, tot, np.log(tot / lw.shape[-1]) + m[..., 0]


# ---------------------------------------------------------------------------
# Per-object sample sets
# ---------------------------------------------------------------------------
class _Samples:
    """Samples ``theta`` (N, K, d) and ``log p0`` (N, K) of a set of objects."""

    def __init__(self, theta, log_p0):
        self.theta = theta
        self.log_p0 = log_p0
        self.n, self.k, self.d = theta.shape


# ---------------------------------------------------------------------------
# Models (log-densities over the sampler's coordinates)
# ---------------------------------------------------------------------------
class _ReweightingModel(PosteriorModel):
    """Shared part: outlier component, per-object likelihood assembly, latents.

    Subclasses provide ``_pop_loglik_train(P) -> (S, N)`` (fast, for the
    sampler), ``pop_log_weights(P, samples, rows) -> (S, n_rows, K)``
    (exact), ``_unpack(x) -> (P, log_prior, z)`` and the parameter names.
    """

    def __init__(self, samples, *, outliers, outlier_prior, background):
        self.samples = samples
        self.outliers = outliers
        self.outlier_prior = outlier_prior
        self.background = background
        self.bg_loglik = self.background_loglik(samples) if outliers else None

    # -- background -----------------------------------------------------------
    def background_log_weights(self, samples, rows=slice(None)):
        th = samples.theta[rows]
        lp = sum(bg.logpdf(th[..., j]) for j, bg in enumerate(self.background))
        return lp - samples.log_p0[rows]

    def background_loglik(self, samples):
        out = np.empty(samples.n)
        for rows in row_chunks(samples.n, samples.k, _CHUNK_CELLS):
            out[rows] = logmeanexp(self.background_log_weights(samples, rows), axis=-1)
        return out

    # -- posterior ------------------------------------------------------------
    def _outlier_log_prior(self, z):
        a, b = self.outlier_prior
        return a * special.log_expit(z) + b * special.log_expit(-z)

    #: A skhier.selection.SelectionTerm (set by the estimator), or None.
    selection = None

    def log_prob(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        with np.errstate(all="ignore"):
            P, lp, z = self._unpack(x)
            ok = np.isfinite(lp)
            total = np.full(x.shape[0], -np.inf)
            if ok.any():
                ll = self._pop_loglik_train(self._take(P, ok))
                if self.outliers:
                    zz = z[ok][:, None]
                    ll = np.logaddexp(
                        special.log_expit(-zz) + ll, special.log_expit(zz) + self.bg_loglik[None]
                    )
                total[ok] = lp[ok] + self.sum_objects(ll)
                if self.selection is not None:  # one quantity: P is (S, 1, p)
                    total[ok] -= self.selection.log_alpha(self._take(P, ok)[:, 0, :])
        return np.where(np.isfinite(total), total, -np.inf)

    @staticmethod
    def _take(P, mask):
        return P[mask]

    # -- per-object quantities for any sample set ---------------------------
    def object_terms(self, params, samples, *, want_mean=False, want_draw=None):
        """Per-draw, per-object quantities from the exact (double precision) weights.

        Returns a dict with ``"log_pop"`` (S, N) = log mean_k w_pop, and when
        outliers are modelled ``"log_bg"`` (N,) and ``"log_f"``, ``"log_1mf"``
        (S,); with ``want_mean`` ``"mean_pop"``, ``"mean_bg"``: weighted means
        of theta (S, N, d) / (N, d); with a generator ``want_draw`` the index
        of a resampled sample per draw and object for both components.
        """
        P = self.params_from_dict(params)
        S = len(next(iter(params.values())))
        n, k, d = samples.n, samples.k, samples.d
        out = {"log_pop": np.empty((S, n))}
        if want_mean:
            out["mean_pop"] = np.empty((S, n, d))
        if want_draw is not None:
            out["draw_pop"] = np.empty((S, n), dtype=np.intp)
        for rows in row_chunks(n, S * k, _CHUNK_CELLS):
            w, tot, out["log_pop"][:, rows] = _sample_weights(self.pop_log_weights(P, samples, rows))
            if want_mean:
                with np.errstate(invalid="ignore"):
                    out["mean_pop"][:, rows] = np.einsum("snk,nkd->snd", w, samples.theta[rows]) / tot[..., None]
            if want_draw is not None:
                out["draw_pop"][:, rows] = categorical(w, want_draw)
        if self.outliers:
            P_f = np.asarray(params["outlier_fraction"], dtype=float)
            with np.errstate(divide="ignore"):
                out["log_f"], out["log_1mf"] = np.log(P_f), np.log1p(-P_f)
            lbg = np.empty(n)
            mbg = np.empty((n, d))
            dbg = np.empty((S, n), dtype=np.intp) if want_draw is not None else None
            for rows in row_chunks(n, k * max(S if want_draw is not None else 1, 1), _CHUNK_CELLS):
                w, tot, lbg[rows] = _sample_weights(self.background_log_weights(samples, rows))
                with np.errstate(invalid="ignore"):
                    mbg[rows] = np.einsum("nk,nkd->nd", w, samples.theta[rows]) / tot[:, None]
                if dbg is not None:
                    dbg[:, rows] = categorical(np.broadcast_to(w, (S,) + w.shape), want_draw)
            out["log_bg"] = lbg
            out["mean_bg"] = mbg
            if dbg is not None:
                out["draw_bg"] = dbg
        return out

    def draw_latents(self, params, rng):
        rng = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        terms = self.object_terms(params, self.samples, want_draw=rng)
        idx = terms["draw_pop"]
        latents = {}
        if self.outliers:
            lp_in = terms["log_1mf"][:, None] + terms["log_pop"]
            lp_out = terms["log_f"][:, None] + terms["log_bg"][None]
            p_out = np.exp(lp_out - np.logaddexp(lp_in, lp_out))
            outlier = rng.uniform(size=p_out.shape) < p_out
            idx = np.where(outlier, terms["draw_bg"], idx)
            latents["outlier"] = outlier
        theta = self.samples.theta[np.arange(self.samples.n)[None, :], idx]  # (S, N, d)
        latents["theta"] = theta[..., 0] if self.samples.d == 1 else theta
        return latents


class _ParametricModel(_ReweightingModel):
    """Parametric population, independent across the d coordinates of theta.

    Sampler coordinates ``x`` are an affine preconditioning of the
    unconstrained parameters, ``u = u0 + c * x`` (``u0`` the moment-matched
    starting point, ``c`` the data spread for location parameters, 1 for
    log/logit parameters), so that the MAP search and walker start are well
    scaled whatever the units of theta.
    """

    def __init__(self, family, priors, samples, *, u0, c, outliers, outlier_prior, background,
                 features):
        self.family = family
        self.priors = priors  # list of dicts, one per coordinate
        self.d = samples.d
        self.p = family.n_params
        self.u0, self.c = np.asarray(u0, float), np.asarray(c, float)
        self.features = features  # list of feature maps (or None: generic path)
        names = []
        for j in range(self.d):
            sfx = "" if self.d == 1 else f"[{j}]"
            names += [n + sfx for n in family.unconstrained_names]
        if outliers:
            names.append("logit_outlier_fraction")
        self.param_names = names
        self._fast = None
        super().__init__(samples, outliers=outliers, outlier_prior=outlier_prior,
                         background=background)

    # -- parameters -----------------------------------------------------------
    def _u(self, x):
        return self.u0 + self.c * np.atleast_2d(x)

    def _unpack(self, x):
        u = self._u(x)
        S = u.shape[0]
        P = np.empty((S, self.d, self.p))
        lp = np.zeros(S)
        for j in range(self.d):
            uj = u[:, j * self.p : (j + 1) * self.p]
            P[:, j] = self.family.constrain(uj)
            lp = lp + self.family.log_prior_unconstrained(uj, self.priors[j])
        z = None
        if self.outliers:
            z = u[:, -1]
            lp = lp + self._outlier_log_prior(z)
        return P, lp, z

    def initial_point(self):
        # The moment-matched u0, moved just inside any user prior's range it lies outside.
        u = self.u0.copy()
        for j in range(self.d):
            uj = u[j * self.p : (j + 1) * self.p]
            params = clip_into_priors(
                self.family.constrain(uj[None, :])[0], self.family.param_names, self.priors[j]
            )
            uj[:] = self.family.unconstrain(params[None, :])[0]
        return (u - self.u0) / self.c

    def constrain(self, x):
        P, _, z = self._unpack(x)
        out = {}
        for k, name in enumerate(self.family.param_names):
            out[name] = P[:, 0, k] if self.d == 1 else P[:, :, k]
        if self.outliers:
            out["outlier_fraction"] = special.expit(z)
        return out

    def prior_bounds(self):
        """Edges of the priors inside each parameter's natural range, per coordinate."""
        out = {}
        for name, t in zip(self.family.param_names, self.family.transforms, strict=True):
            edges = [hard_prior_bounds(pr[name].support, _TRANSFORM_DOMAIN[t]) for pr in self.priors]
            out[name] = tuple(np.array(e) for e in zip(*edges, strict=True))
        return out

    def params_from_dict(self, params):
        cols = [np.asarray(params[n], dtype=float) for n in self.family.param_names]
        cols = [c.reshape(len(c), -1) for c in cols]  # (S, d)
        return np.stack(cols, axis=-1)  # (S, d, p)

    # -- population log weights -----------------------------------------------
    def pop_log_weights(self, P, samples, rows=slice(None)):
        """Exact log p(theta_ik | alpha_s) - log p0(theta_ik): (S, n_rows, K)."""
        th = samples.theta[rows]
        out = -samples.log_p0[rows][None].copy()
        for j in range(self.d):
            pj = P[:, j]
            f = self.features[j]
            if f is None:
                out = out + self.family.logpdf(th[None, :, :, j], pj)
            else:
                eta, a = f.natural(pj)
                feats = f.features(th[..., j])  # (n, K, m)
                with np.errstate(invalid="ignore"):
                    val = np.einsum("sm,nkm->snk", eta, feats) - a[:, None, None]
                out = out + np.where(np.isfinite(f.base(th[..., j]))[None], val, 0.0) + f.base(th[..., j])[None]
        return out

    def _build_fast(self):
        """Single-precision centred features (m+1, N*K), the base in the last row.

        Built in chunks of objects, so the double-precision temporaries stay
        small whatever N.
        """
        s = self.samples
        m = sum(f.n_features for f in self.features)
        D = np.empty((m + 1, s.n * s.k), dtype=np.float32)
        centre = np.empty((s.n, m))
        H = np.empty(s.n)
        for rows in row_chunks(s.n, s.k * (m + 1), _CHUNK_CELLS):
            th = s.theta[rows]
            base = np.zeros(th.shape[:2])
            feats = []
            for j, f in enumerate(self.features):
                feats.append(f.features(th[..., j]))
                base = base + f.base(th[..., j])
            F = np.concatenate(feats, axis=-1)  # (n_c, K, m)
            ok = np.isfinite(base)
            F = np.where(ok[..., None], F, 0.0)
            cnt = np.maximum(ok.sum(axis=1), 1)[:, None]
            c = F.sum(axis=1) / cnt  # mean over the in-support samples
            F = np.where(ok[..., None], F - c[:, None, :], 0.0)
            h = base - s.log_p0[rows]
            hmax = np.max(h, axis=1)
            hc = np.where(ok, h - np.where(np.isfinite(hmax), hmax, 0.0)[:, None], _NEG_BIG)
            cols = slice(rows.start * s.k, rows.stop * s.k)
            D[:m, cols] = np.moveaxis(F, -1, 0).reshape(m, -1)
            D[m, cols] = hc.ravel()
            centre[rows], H[rows] = c, hmax
        self._fast = (D, centre, H)

    def release(self):
        """Drop the single-precision feature table (rebuilt when needed)."""
        self._fast = None

    def _pop_loglik_train(self, P):
        if any(f is None for f in self.features):
            S = P.shape[0]
            out = np.empty((S, self.samples.n))
            for rows in row_chunks(self.samples.n, S * self.samples.k, _CHUNK_CELLS):
                out[:, rows] = logmeanexp(self.pop_log_weights(P, self.samples, rows), axis=-1)
            return out
        if self._fast is None:
            self._build_fast()
        D, centre, H = self._fast
        etas, A = [], 0.0
        for j in range(self.d):
            eta, a = self.features[j].natural(P[:, j])
            etas.append(eta)
            A = A + a
        eta = np.concatenate(etas, axis=1)  # (S, m)
        S, n, k = eta.shape[0], self.samples.n, self.samples.k
        E = np.concatenate([eta, np.ones((S, 1))], axis=1).astype(np.float32)
        out = (eta @ centre.T) + H[None, :] - A[:, None] - np.log(k)
        step = max(1, _FAST_CHUNK_CELLS // (S * k))
        for start in range(0, n, step):
            stop = min(start + step, n)
            t = (E @ D[:, start * k : stop * k]).reshape(S, stop - start, k)
            m = t.max(axis=-1, keepdims=True)
            t -= m
            np.exp(t, out=t)
            # float32 pairwise summation: relative error ~ log2(K) x 6e-8.
            out[:, start:stop] += np.log(t.sum(axis=-1).astype(np.float64)) + m[..., 0]
        return out


class _HistogramModel(_ReweightingModel):
    """Histogram population: bin probabilities in additive log-ratio coordinates.

    ``w = softmax([u, 0])``. Priors: Dirichlet(``concentration``) on ``w``,
    whose density in ``u`` is ``Π_b w_b^concentration`` (the Jacobian of the
    additive logistic map is ``Π_b w_b``); with ``smoothness`` s, also a
    Gaussian random-walk penalty ``-Σ (Δ² log w_b)² / (2 s²)`` on the second
    differences of the log bin densities.
    """

    def __init__(self, hist, samples, *, concentration, smoothness, outliers, outlier_prior,
                 background):
        self.hist = hist
        self.concentration = float(concentration)
        self.smoothness = smoothness
        B = hist.n_bins
        names = [f"alr_w[{b}]" for b in range(B - 1)]
        if outliers:
            names.append("logit_outlier_fraction")
        self.param_names = names
        super().__init__(samples, outliers=outliers, outlier_prior=outlier_prior,
                         background=background)
        self.M, self.H = self._bin_sums(samples)
        empty = ~np.isfinite(self.H)
        if empty.any() and not outliers:
            raise ValueError(
                f"{int(empty.sum())} object(s) (e.g. row {int(np.flatnonzero(empty)[0])}) have no "
                f"sample inside the histogram bounds {hist.support}; widen bounds."
            )

    def _bin_sums(self, samples):
        """M_ib = mean_k 1[theta_ik in b] / p0(theta_ik) / width, scaled by exp(H_i)."""
        B, n = self.hist.n_bins, samples.n
        idx = self.hist.bin_index(samples.theta[..., 0])
        lw = np.where(idx >= 0, -samples.log_p0, -np.inf)
        H = np.max(lw, axis=1)
        w = np.exp(lw - np.where(np.isfinite(H), H, 0.0)[:, None])
        M = np.zeros((n, B))
        rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
        ok = idx >= 0
        np.add.at(M, (rows[ok], idx[ok]), w[ok])
        M /= samples.k * self.hist.width
        return M, H

    def _unpack(self, x):
        x = np.atleast_2d(x)
        B = self.hist.n_bins
        u = np.concatenate([x[:, : B - 1], np.zeros((x.shape[0], 1))], axis=1)
        logw = u - special.logsumexp(u, axis=1, keepdims=True)
        lp = self.concentration * logw.sum(axis=1)
        if self.smoothness is not None and B >= 3:
            d2 = logw[:, 2:] - 2 * logw[:, 1:-1] + logw[:, :-2]
            lp = lp - 0.5 * np.sum(d2**2, axis=1) / self.smoothness**2
        z = None
        if self.outliers:
            z = x[:, B - 1]
            lp = lp + self._outlier_log_prior(z)
        return np.exp(logw), lp, z

    def initial_point(self):
        # Start from the histogram of the reweighted samples (plus one count per bin).
        tot = self.M.sum(axis=1, keepdims=True)
        share = np.divide(self.M, tot, out=np.zeros_like(self.M), where=tot > 0).sum(0) + 1.0
        w = share / share.sum()
        x = np.log(w[:-1]) - np.log(w[-1])
        if self.outliers:
            x = np.append(x, np.log(0.1 / 0.9))
        return x

    def constrain(self, x):
        w, _, z = self._unpack(x)
        out = {"bin_probabilities": w}
        if self.outliers:
            out["outlier_fraction"] = special.expit(z)
        return out

    def params_from_dict(self, params):
        return np.asarray(params["bin_probabilities"], dtype=float)

    def _pop_loglik_train(self, w):
        with np.errstate(divide="ignore"):
            return np.log(w @ self.M.T) + self.H[None, :]

    def pop_log_weights(self, w, samples, rows=slice(None)):
        th = samples.theta[rows][None, ..., 0]  # (1, n, K)
        return self.hist.logpdf(th, w) - samples.log_p0[rows][None]


# ---------------------------------------------------------------------------
# Starting points
# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------
_DISTRIBUTIONS = {"normal", "lognormal", "beta", "truncnormal", "histogram"}


class PosteriorSamplesPopulation(DensityMixin, BaseHierarchicalEstimator):
    """Population distribution inferred from per-object posterior samples.

    Each row of X holds one object's posterior samples of a quantity theta
    (an eccentricity, an age, ...), drawn under an *interim prior* p0 by an
    earlier per-object analysis. The population ``p(theta | alpha)`` is
    inferred by reweighting the samples (Hogg, Myers & Bovy 2010):

        p(alpha | X) ∝ p(alpha) Π_i (1/K) Σ_k p(theta_ik | alpha) / p0(theta_ik),

    sampled with emcee over the population parameters only. Each object's
    theta is then "shrunk" towards the population by resampling its own
    samples with weights ``p(theta_ik | alpha) / p0(theta_ik)``.

    Parameters
    ----------
    distribution : {"normal", "lognormal", "beta", "truncnormal", "histogram"} \
            or PopulationFamily, default="normal"
        The population: a parametric family of :mod:`skhier._distributions`
        (normal ``(mu, tau)``, log-normal ``(mu, sigma)`` of log theta, Beta
        ``(mean, concentration)`` on [0, 1], normal ``(mu, tau)`` truncated
        to ``bounds``), a non-parametric histogram with ``n_bins`` equal bins
        over ``bounds``, or a family instance such as a
        :class:`CustomPopulation` (a user-supplied normalised log-density
        with bounds).
    n_dims : int, default=1
        Dimension d of theta. X then has ``n_samples * d`` columns, ordered
        sample by sample (columns ``k*d ... k*d + d - 1`` are sample k). The
        population of a vector theta is a product of independent copies of
        the family, one per coordinate, each with its own parameters
        (the histogram needs ``n_dims=1``).
    bounds : (float, float) or None, default=None
        Support for ``"truncnormal"`` (default ``(0, inf)``) and the range
        of the histogram (default: the range of all samples).
    priors : dict or None, default=None
        Priors on the population parameters, name -> :class:`Prior` or
        ``(kind, *args)``; missing ones take the family's documented
        defaults computed from the per-object sample medians (for
        ``n_dims > 1``, per coordinate; given priors apply to every
        coordinate).
    n_bins : int, default=10
        Number of histogram bins.
    bin_concentration : float, default=1.0
        Concentration of the symmetric Dirichlet prior on the histogram's
        bin probabilities (1: uniform on the simplex).
    smoothness : float or None, default=None
        If given, also penalise rough histograms: the second differences of
        the log bin densities are N(0, smoothness^2) (a Gaussian random
        walk prior; smaller is smoother).
    outliers : bool, default=False
        Add an outlier component: with probability ``outlier_fraction`` an
        object's theta comes from a fixed broad background (uniform over a
        bounded support, otherwise a wide normal or log-normal set from the
        samples' spread) instead of the population.
    outlier_fraction_prior : tuple or Prior, default=(1.0, 4.0)
        Beta(a, b) prior on the outlier fraction: ``(a, b)``,
        ``("beta", a, b)`` or a ``BetaPrior``.
    interim_prior : callable or None, default=None
        Log-density of the interim prior, ``interim_prior(theta)`` with
        theta of shape (n_objects, n_samples) (or (n_objects, n_samples, d))
        returning (n_objects, n_samples) values. ``None`` with no
        ``interim_log_prior`` in :meth:`fit` means a flat interim prior.
    selection : DetectionProbability, Window, Injections, callable or None, default=None
        How the objects were selected (:mod:`skhier.selection`): the
        likelihood is divided by the detected fraction of the population, so
        the parameters describe all objects, not only the detected ones
        (Mandel, Farr & Gair 2019). For one quantity (``n_dims=1``), a
        parametric population and no outliers; a detection probability that
        depends on a measurement error needs :class:`PopulationModel`.
    sampler : {"auto", "emcee", "importance"}, default="auto"
        ``"auto"``: independent draws from a Student-t fitted at the
        posterior maximum, reweighted to the exact posterior, when the
        Pareto-k diagnostic of the weights is below 0.7 and every
        coordinate has enough effective draws (typical: the posterior of a
        few population parameters from many objects is near Gaussian);
        emcee otherwise. ``"emcee"`` and ``"importance"`` force one method;
        ``sampler_`` tells which one ran. Each importance draw costs one
        likelihood evaluation, so with many objects it is several times
        cheaper per effective draw than emcee.
    n_importance : int, default=2000
        Proposal draws per importance-sampling round.
    n_walkers, n_steps, n_burn, max_steps, thin, random_state, progress
        Sampler settings, see :class:`~skhier.RobustLineMixture`.

    Attributes
    ----------
    population_params_ : dict
        Posterior medians of the population parameters (floats, or arrays
        of shape (n_dims,) for vector theta; ``"bin_probabilities"`` of
        shape (n_bins,) for the histogram).
    outlier_fraction_ : float or None
        Posterior median of the outlier fraction (None without outliers).
    posterior_ : dict of ndarray
        Posterior draws of the population parameters (first axis the draw).
    membership_proba_ : ndarray of shape (n_objects, 2)
        Probability that each training object belongs to the population
        (column 0) or to the background (column 1).
    n_effective_samples_ : ndarray of shape (n_objects,)
        Effective number of each object's reweighted samples,
        ``(Σ w)^2 / Σ w^2`` with ``w = p(theta_ik | alpha) / p0(theta_ik)``
        at the posterior median alpha. Values below 10 raise a
        :class:`ReweightingWarning`.
    family_ : PopulationFamily
        The population family used.
    priors_ : dict or list of dict
        The priors used (per coordinate when ``n_dims > 1``).
    bin_edges_ : ndarray of shape (n_bins + 1,)
        Histogram bin edges (histogram population only).
    n_samples_per_object_ : int
    acceptance_fraction_, autocorr_time_, n_effective_, converged_
        Sampler diagnostics (see :class:`~skhier.RobustLineMixture`).
    n_features_in_ : int

    See Also
    --------
    skhier.PopulationModel : the same populations from measurements with
        Gaussian errors (no per-object samples needed).

    Notes
    -----
    **Interim prior.** The samples must come from posteriors under the
    interim prior that is passed (as ``interim_log_prior`` values per
    sample, or the ``interim_prior`` callable); a flat interim prior needs
    neither. The reweighting divides it out, so any interim prior whose
    support covers the population's works. Only log-density differences
    within an object matter: the interim prior may be unnormalised.

    **Monte Carlo error.** The likelihood is a Monte Carlo estimate. It is
    accurate when each object's reweighted samples are many
    (``n_effective_samples_``); where the population is much narrower than
    an object's posterior, or where the population density is singular
    (a Beta population with ``a`` or ``b`` < 0.5 at a bound), few samples
    carry the weight: the estimator warns (:class:`ReweightingWarning`).

    **Scores.** ``score_samples`` returns, for each object, the log of the
    posterior average of ``(1/K) Σ_k p(theta_k | alpha) / p0(theta_k)``:
    its marginal likelihood under the fitted population *relative to its
    evidence under the interim prior*. The omitted evidence does not depend
    on the population, so scores compare populations (and
    hyper-parameters in ``GridSearchCV``) on the same objects.

    **Rows are objects**, so cross-validation splits by object; the
    ``interim_log_prior`` metadata is requested by default and sliced per
    fold when ``sklearn.set_config(enable_metadata_routing=True)``.

    **Units.** Location parameters are preconditioned internally by the
    spread of the samples, so the fit does not depend on the units of
    theta; the summaries are in the units of theta.

    References
    ----------
    .. [1] Hogg, D. W., Myers, A. D. & Bovy, J. (2010), "Inferring the
       eccentricity distribution", ApJ 725, 2166.
    .. [2] Foreman-Mackey, D., Hogg, D. W. & Morton, T. D. (2014),
       "Exoplanet population inference and the abundance of Earth analogs
       from noisy, incomplete catalogs", ApJ 795, 64.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import PosteriorSamplesPopulation
    >>> rng = np.random.default_rng(0)
    >>> true = rng.normal(5.0, 1.0, size=100)          # population N(5, 1)
    >>> obs = true + rng.normal(0.0, 0.5, size=100)     # measurements
    >>> X = obs[:, None] + 0.5 * rng.standard_normal((100, 100))  # flat-prior posteriors
    >>> model = PosteriorSamplesPopulation(n_walkers=16, n_steps=500, random_state=0).fit(X)
    >>> bool(4.8 < model.population_params_["mu"] < 5.3)
    True
    >>> bool(0.7 < model.population_params_["tau"] < 1.3)
    True
    >>> model.predict(X[:3]).shape, model.sample_posterior(10)["theta"].shape
    ((3,), (10, 100))
    """

    _parameter_constraints: dict = {
        **BaseHierarchicalEstimator._parameter_constraints,
        "distribution": [StrOptions(_DISTRIBUTIONS), PopulationFamily],
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "bounds": [tuple, list, None],
        "priors": [dict, None],
        "selection": [None, callable, object],  # checked against the data in fit
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "bin_concentration": [Interval(Real, 0, None, closed="neither")],
        "smoothness": [Interval(Real, 0, None, closed="neither"), None],
        "outliers": ["boolean"],
        "outlier_fraction_prior": [tuple, Prior],
        "interim_prior": [callable, None],
    }

    # The interim prior values are per-object metadata, routed like the
    # measurement errors of the other estimators; those errors do not apply.
    __metadata_request__fit = {"interim_log_prior": True, **{n: UNUSED for n in ERROR_ARGS}}
    __metadata_request__score = {"interim_log_prior": True, **{n: UNUSED for n in ERROR_ARGS}}

    def __init__(
        self,
        distribution="normal",
        *,
        n_dims=1,
        bounds=None,
        priors=None,
        n_bins=10,
        bin_concentration=1.0,
        smoothness=None,
        outliers=False,
        outlier_fraction_prior=(1.0, 4.0),
        interim_prior=None,
        selection=None,
        **sampler_settings,
    ):
        super().__init__(**sampler_settings)
        self.distribution = distribution
        self.n_dims = n_dims
        self.bounds = bounds
        self.priors = priors
        self.n_bins = n_bins
        self.bin_concentration = bin_concentration
        self.smoothness = smoothness
        self.outliers = outliers
        self.outlier_fraction_prior = outlier_fraction_prior
        self.interim_prior = interim_prior
        self.selection = selection

    # -- input handling -----------------------------------------------------
    def _samples(self, X, interim_log_prior, *, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64, order="C")
        n, cols = X.shape
        d = self.n_dims
        if cols % d:
            raise ValueError(
                f"X has {cols} columns, not a multiple of n_dims={d}: each row must hold "
                "n_samples * n_dims values (sample by sample)."
            )
        k = cols // d
        theta = X.reshape(n, k, d)
        if interim_log_prior is not None and self.interim_prior is not None:
            raise ValueError(
                "Give the interim prior either as the interim_prior callable or as "
                "interim_log_prior values, not both."
            )
        if interim_log_prior is not None:
            arr = np.asarray(interim_log_prior.to_numpy() if hasattr(interim_log_prior, "to_numpy")
                             else interim_log_prior)
            if arr.ndim == 2 and d > 1 and arr.shape == (n, cols) and cols != k:
                raise ValueError(
                    f"interim_log_prior must have shape (n_objects, n_samples) = {(n, k)}: one "
                    f"log-density per {d}-dimensional sample, got {arr.shape}."
                )
            log_p0 = np.ascontiguousarray(check_finite_array(arr, "interim_log_prior", (n, k)))
        elif self.interim_prior is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                val = self.interim_prior(theta[..., 0].copy() if d == 1 else theta.copy())
            val = np.asarray(val, dtype=float)
            if val.shape != (n, k) or not np.all(np.isfinite(val)):
                raise ValueError(
                    "interim_prior(theta) must return finite log-densities of shape "
                    f"(n_objects, n_samples) = {(n, k)}, got shape {val.shape}"
                    + ("" if val.shape != (n, k) else " with non-finite values") + "."
                )
            log_p0 = val
        else:
            log_p0 = np.zeros((n, k))
        return _Samples(theta, log_p0)

    def _family(self, theta):
        dist = self.distribution
        if isinstance(dist, str) and dist == "histogram":
            if self.n_dims != 1:
                raise ValueError("The histogram population needs n_dims=1.")
            if self.bounds is None:
                lo, hi = float(theta.min()), float(theta.max())
                pad = 1e-9 * max(hi - lo, abs(hi), 1.0)
                lo, hi = lo - pad, hi + pad
            else:
                lo, hi = self._check_bounds()
            return HistogramFamily(lo, hi, self.n_bins)
        if isinstance(dist, str) and dist == "truncnormal":
            return get_family("truncnormal", self._check_bounds() if self.bounds is not None else None)
        if isinstance(dist, PopulationFamily) and self.bounds is not None:
            raise ValueError("bounds applies to 'truncnormal' and 'histogram' only; a family "
                             "instance carries its own support.")
        return get_family(dist)

    def _check_bounds(self):
        b = self.bounds
        if len(b) != 2 or not all(isinstance(v, numbers.Real) for v in b) or not b[1] > b[0]:
            raise ValueError(f"bounds must be a pair (low, high) with low < high, got {b!r}.")
        return float(b[0]), float(b[1])

    def _priors(self, family, values):
        """Default priors per coordinate, overridden by the user's."""
        user = {} if self.priors is None else family.check_priors(self.priors)
        out = []
        for j in range(values.shape[1]):
            pri = family.default_priors(values[:, j])
            pri.update(user)
            out.append(pri)
        return out

    # -- fitting ----------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, interim_log_prior=None, sample_weight=None):
        """Sample the posterior of the population given per-object samples.

        Parameters
        ----------
        X : array-like of shape (n_objects, n_samples * n_dims)
            Row i holds object i's posterior samples (sample by sample for
            vector theta).
        y : Ignored
        interim_log_prior : array-like of shape (n_objects, n_samples), default=None
            ``log p0(theta_ik)``, the interim prior under which each sample
            was drawn (up to a constant per object). ``None``: use the
            ``interim_prior`` callable, or a flat interim prior.
        sample_weight : array-like of shape (n_objects,), default=None
            Non-negative weight of each object: its log-likelihood is
            multiplied by its weight, so an integer weight m counts the
            object m times and 0 drops it. None: every weight is 1. Default
            priors, starting point and background derived from the data use
            the objects with positive weight, unweighted; give the priors
            explicitly for the posterior to equal that of repeated objects
            exactly. Not available with a ``selection``.

        Returns
        -------
        self : PosteriorSamplesPopulation
        """
        outlier_prior = check_beta_prior(self.outlier_fraction_prior, "outlier_fraction_prior")
        samples = self._samples(X, interim_log_prior, reset=True)
        weights = check_sample_weight(sample_weight, samples.n)
        if weights is not None and self.selection is not None:
            raise ValueError(
                "sample_weight is not available with a selection function: the detected "
                "fraction would have to be weighted as well. Pass sample_weight=None."
            )
        flat = samples.theta.reshape(-1, samples.d)
        if np.any(np.ptp(flat, axis=0) == 0):
            raise ValueError(
                f"Every sample of every object in X is the same value ({flat[0].tolist()}): "
                "the population is a single point and its spread has no estimate "
                "(the sampler would run towards a zero width). Check that X holds "
                "per-object posterior samples."
            )
        family = self._family(samples.theta)
        # Data-derived defaults look at the objects with positive weight.
        used = samples.theta if weights is None else samples.theta[weights > 0]
        medians = np.median(used, axis=1)  # (N, d)
        background = [_Background(family.support, used[..., j]) for j in range(samples.d)]
        common = dict(outliers=self.outliers, outlier_prior=outlier_prior, background=background)
        if isinstance(family, HistogramFamily):
            model = _HistogramModel(family, samples, concentration=self.bin_concentration,
                                    smoothness=self.smoothness, **common)
            self.priors_ = {"bin_probabilities": f"Dirichlet({self.bin_concentration})"
                            + ("" if self.smoothness is None else
                               f" x random-walk smoothness {self.smoothness}")}
            self.bin_edges_ = family.edges
        else:
            priors = self._priors(family, medians)
            self.priors_ = priors[0] if samples.d == 1 else priors
            u0, c = [], []
            for j in range(samples.d):
                start = family.moment_start(medians[:, j])
                if start is None:
                    start = np.median(family.sample_prior(priors[j], 2001, 0), axis=0)
                uj = family.unconstrain(start)
                if not np.all(np.isfinite(uj)):
                    raise ValueError(f"Could not find a finite starting point for {family!r}.")
                vals = medians[:, j]
                if isinstance(family, LogNormalFamily):  # its location lives in log theta
                    with np.errstate(divide="ignore", invalid="ignore"):
                        vals = np.log(vals)
                vals = vals[np.isfinite(vals)]
                _, spread = _location_spread(vals)
                c += [spread if t == "identity" else 1.0 for t in family.transforms]
                u0 += list(uj)
                if isinstance(family, CustomPopulation):
                    family.check_normalised(start)
            if self.outliers:
                u0.append(np.log(0.1 / 0.9))
                c.append(1.0)
            features = [feature_map(family, samples.theta[..., j]) for j in range(samples.d)]
            model = _ParametricModel(family, priors, samples, u0=u0, c=c, features=features,
                                     **common)
        sel = self._selection_term(family, samples, medians)
        model.selection = sel
        self._set_sample_weight(model, weights, samples.n)
        x0 = model.initial_point()
        if not np.isfinite(model.log_prob(x0[None])[0]):
            self._explain_bad_start(model, family)
        rng = check_random_state(self.random_state)
        # The hot path is a (walkers x features) @ (features x cells) product
        # with 3-5 features: memory bound, so BLAS threads only add contention.
        with single_threaded_blas():
            self._sample(model, rng)
        if hasattr(model, "release"):
            model.release()
        self.family_ = family
        self.selection_n_effective_, self.selection_loglik_variance_ = (
            (None, 0.0) if sel is None else sel.diagnostics(
                model.params_from_dict(self._summary_draws())[:, 0, :]))
        self.n_samples_per_object_ = samples.k
        self.population_params_ = {
            k: self._posterior_median(k) for k in self.posterior_ if k != "outlier_fraction"
        }
        if isinstance(family, HistogramFamily):
            w = self.population_params_["bin_probabilities"]
            self.population_params_["bin_probabilities"] = w / w.sum()
        self.outlier_fraction_ = (
            self._posterior_median("outlier_fraction") if self.outliers else None
        )
        self.membership_proba_ = self._membership_proba(samples)
        self.n_effective_samples_ = self._effective_samples(samples)
        self._warn_collapse()
        return self

    def _selection_term(self, family, samples, medians):
        if self.selection is None:
            return None
        if isinstance(family, HistogramFamily) or samples.d != 1 or self.outliers:
            raise ValueError(
                "selection needs a parametric population of one quantity (n_dims=1) without "
                "outliers in PosteriorSamplesPopulation; use PopulationModel for a background "
                "component with selection."
            )
        return SelectionTerm(self.selection, family, n_obs=samples.n,
                             support_values=medians[:, 0])

    def _explain_bad_start(self, model, family):
        ll = model._pop_loglik_train(model._unpack(model.initial_point()[None])[0])[0]
        bad = np.flatnonzero(~np.isfinite(ll))
        if bad.size and not self.outliers:
            raise ValueError(
                f"{bad.size} object(s) (e.g. row {int(bad[0])}) have no sample inside the "
                f"population's support {family.support}; remove them or use outliers=True."
            )
        raise ValueError(
            "The log-posterior is not finite at the starting point; check the samples, "
            "the interim prior and the priors."
        )

    # -- the per-object hook (see BaseHierarchicalEstimator._object_logliks) ---
    _max_object_draws = _N_OBJECT_DRAWS

    def _object_logliks(self, samples, draws, rows):
        """(population, background) log-likelihood tables of the objects
        ``rows`` of ``samples``, relative to their interim evidence."""
        sub = _Samples(samples.theta[rows], samples.log_p0[rows])
        return self._log_components(self.model_.object_terms(draws, sub))

    def _n_objects(self, samples):
        return samples.n

    def _training_objects(self):
        return self.model_.samples

    def _has_background(self):
        return self.model_.outliers

    def _object_cost(self, samples):
        # A cell averages the object's samples (and their background weights).
        return 2 * samples.k

    def _terms_by_chunk(self, samples, **kw):
        """Yield (rows, object terms at the summary draws) over chunks of objects.

        Each object's terms depend only on its own samples, so chunking
        changes nothing but keeps the (draws x objects) tables bounded for
        any number of objects.
        """
        draws = self._object_draws()
        n_draws = len(next(iter(draws.values())))
        for rows in self._object_row_chunks(samples, n_draws):
            sub = _Samples(samples.theta[rows], samples.log_p0[rows])
            yield rows, self.model_.object_terms(draws, sub, **kw)

    def _log_components(self, terms):
        """(log p_member, log p_outlier) per draw and object, in the mixture."""
        if not self.outliers:
            return terms["log_pop"], None
        return (terms["log_1mf"][:, None] + terms["log_pop"],
                terms["log_f"][:, None] + terms["log_bg"][None])

    def _likelihood_summary(self):
        """Each training object's likelihood-weighted samples: the point
        estimate ``theta_hat`` (n, d) and the normalised cumulative weights
        (n, K) ``∝ 1 / p0(theta_ik)`` that make the samples draws from the
        object's likelihood."""
        s = self.model_.samples
        lw = -s.log_p0
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkd->nd", w, s.theta), np.cumsum(w, axis=1)

    def _replicate(self, params, rng):
        """Replicated per-object point estimates ``{"theta_hat": (S, n, d)}``.

        An object's data here are its posterior samples, which cannot be
        simulated anew; what is replicated is its likelihood-weighted mean
        ``theta_hat`` (the mean of its samples weighted by 1 / interim
        prior: the samples' mean for a flat interim prior), which is the
        observed variable of the same name in ``to_inference_data()``. Each
        replicate draws the object's true theta from the population (or the
        background, for an object drawn as an outlier) and adds a
        measurement error drawn from the object's own likelihood: one of its
        likelihood-weighted samples minus ``theta_hat``. This takes the
        measurement's likelihood to keep its shape when the true value
        moves (exact for Gaussian errors away from the support's bounds).
        Not available with a selection function (replicates would need the
        detection process).
        """
        if self.selection is not None:
            raise NotImplementedError(
                "Replicated data of a selected sample need the detection process; "
                "sample_posterior_predictive is not available with a selection function."
            )
        m, fam, s = self.model_, self.family_, self.model_.samples
        P = m.params_from_dict(params)
        S, n, k, d = len(P), s.n, s.k, s.d
        try:
            if isinstance(fam, HistogramFamily):
                theta = fam.rvs(P, size=(n,), random_state=rng)[..., None]
            else:
                theta = np.stack([fam.rvs(P[:, j], size=(n,), random_state=rng)
                                  for j in range(d)], axis=-1)
        except NotImplementedError:
            raise NotImplementedError(
                f"The population {fam!r} cannot draw values (it has no rvs method), "
                "so no replicated data can be made."
            ) from None
        theta = np.asarray(theta, dtype=float).reshape(S, n, d)
        if self.outliers:
            is_out = rng.uniform(size=(S, n)) < np.asarray(params["outlier_fraction"])[:, None]
            bg = np.stack([b.rvs((S, n), rng) for b in m.background], axis=-1)
            theta = np.where(is_out[..., None], bg, theta)
        theta_hat, cum = self._likelihood_summary()
        # One likelihood-weighted sample per draw and object: inverse CDF on
        # the objects' cumulative weights laid end to end (object i on [i, i+1]).
        flat = (cum + np.arange(n)[:, None]).ravel()
        u = rng.uniform(size=(S, n)) + np.arange(n)
        idx = np.clip(np.searchsorted(flat, u) - k * np.arange(n), 0, k - 1)
        eps = s.theta[np.arange(n), idx] - theta_hat                # (S, n, d)
        return {"theta_hat": theta + eps}

    def _effective_samples(self, samples):
        med = {}
        for k, v in self.posterior_.items():
            med[k] = np.median(v, axis=0)[None]
        if "bin_probabilities" in med:
            med["bin_probabilities"] = med["bin_probabilities"] / med["bin_probabilities"].sum()
        P = self.model_.params_from_dict(med)
        ess = np.empty(samples.n)
        for rows in row_chunks(samples.n, samples.k, _CHUNK_CELLS):
            w, s1, _ = _sample_weights(self.model_.pop_log_weights(P, samples, rows)[0])
            s2 = (w * w).sum(-1)
            with np.errstate(invalid="ignore", divide="ignore"):
                ess[rows] = np.where(s2 > 0, s1 * s1 / s2, 0.0)
        return ess

    def _warn_collapse(self):
        thr = min(MIN_EFFECTIVE_SAMPLES, 0.5 * self.n_samples_per_object_)
        ess = self.n_effective_samples_
        if self.outliers:  # background members do not use the population weights
            ess = ess[self.membership_proba_[:, 0] > 0.5]
        bad = ess < thr
        if bad.any():
            warn(
                f"For {int(bad.sum())} object(s) the reweighted posterior samples are worth "
                f"fewer than {thr:g} independent samples at the posterior median population "
                f"(minimum {ess.min():.1f} of {self.n_samples_per_object_}): the population is "
                "narrower than these objects' samples resolve, and the Monte Carlo likelihood is "
                "unreliable. Provide more samples per object. See n_effective_samples_.",
                ReweightingWarning,
            )

    # -- public per-object methods ----------------------------------------------
    def predict(self, X, interim_log_prior=None):
        """Posterior mean of each object's theta under the inferred population.

        The average over posterior draws of alpha of the reweighted sample
        mean ``Σ_k w_ik theta_ik / Σ_k w_ik`` (mixed with the background's
        when ``outliers=True``): each object's estimate shrunk towards the
        population.

        Parameters
        ----------
        X : array-like of shape (n_objects, n_samples * n_dims)
            Posterior samples of the objects (same layout as in :meth:`fit`).
        interim_log_prior : array-like of shape (n_objects, n_samples), default=None

        Returns
        -------
        theta_mean : ndarray of shape (n_objects,) or (n_objects, n_dims)
        """
        check_is_fitted(self, "posterior_")
        samples = self._samples(X, interim_log_prior, reset=False)
        out = np.empty((samples.n, samples.d))
        for rows, terms in self._terms_by_chunk(samples, want_mean=True):
            mean = terms["mean_pop"]  # (S, n_rows, d)
            lin, lout = self._log_components(terms)
            if lout is not None:
                with np.errstate(invalid="ignore"):
                    p_out = np.nan_to_num(np.exp(lout - np.logaddexp(lin, lout)), nan=1.0)
                mean = np.where(p_out[..., None] > 0,
                                (1 - p_out[..., None]) * np.nan_to_num(mean)
                                + p_out[..., None] * terms["mean_bg"][None], mean)
            out[rows] = np.mean(mean, axis=0)
        return out[:, 0] if samples.d == 1 else out

    def predict_membership_proba(self, X, interim_log_prior=None):
        """Probability that each object belongs to the population or the background.

        Parameters
        ----------
        X : array-like of shape (n_objects, n_samples * n_dims)
        interim_log_prior : array-like of shape (n_objects, n_samples), default=None

        Returns
        -------
        proba : ndarray of shape (n_objects, 2)
            Column 0: population; column 1: background (all 0 when
            ``outliers=False``). Rows sum to 1.
        """
        check_is_fitted(self, "posterior_")
        samples = self._samples(X, interim_log_prior, reset=False)
        return self._membership_proba(samples)

    def score_samples(self, X, interim_log_prior=None):
        """Log marginal likelihood of each object relative to its interim evidence.

        ``log E_post[(1/K) Σ_k p(theta_k | alpha) / p0(theta_k)]`` (with the
        outlier mixture when enabled); see the Notes on what is omitted.

        Returns
        -------
        log_density : ndarray of shape (n_objects,)
        """
        check_is_fitted(self, "posterior_")
        samples = self._samples(X, interim_log_prior, reset=False)
        return self._log_predictive_density(samples)

    def score(self, X, y=None, sample_weight=None, interim_log_prior=None):
        """Mean of :meth:`score_samples` (weighted by ``sample_weight``)."""
        return float(np.average(self.score_samples(X, interim_log_prior=interim_log_prior),
                                weights=sample_weight))

    def _data_groups(self):
        """Likelihood-weighted means (observed), training samples and interim
        log-prior values (constant) for :meth:`to_inference_data`."""
        s = self.model_.samples
        # The samples stand for each object's likelihood, which the model
        # conditions on (constant data); the observed variable that replicates
        # are made of is each object's likelihood-weighted mean (see
        # _replicate), so az.plot_ppc pairs it with its replicates.
        return {"observed_data": {"theta_hat": self._likelihood_summary()[0]},
                "constant_data": {"X": s.theta.reshape(s.theta.shape[0], -1),
                                  "interim_log_prior": s.log_p0}}

    @fill_doc
    def population_density(self, grid=None, *, level=0.9, n_grid=200, dim=0):
        """Posterior density of the population on a grid, with a credible band.

        Parameters
        ----------
        grid : array-like of shape (n_grid,), default=None
            Values of theta. Default: ``n_grid`` points over the range of the
            training samples (coordinate ``dim``), widened by 10 % and cut to
            the support (the whole range of a histogram or Beta population).
        %(density_band)s
        dim : int, default=0
            Coordinate of theta (for ``n_dims > 1``).

        Returns
        -------
        %(density_bunch)s

        Examples
        --------
        >>> from skhier import PosteriorSamplesPopulation
        >>> from skhier.datasets import make_eccentricity_samples
        >>> data = make_eccentricity_samples(40, 200, random_state=0)
        >>> model = PosteriorSamplesPopulation("beta", random_state=0).fit(data.X)
        >>> band = model.population_density([0.1, 0.3, 0.5])
        >>> bool(np.all(band.lower <= band.median) and np.all(band.median <= band.upper))
        True
        """
        check_is_fitted(self, "posterior_")
        n_dims = self.model_.samples.d
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not 0 <= dim < n_dims:
            raise ValueError(f"dim must be an integer in [0, {n_dims}), got {dim!r}.")
        if isinstance(self.family_, HistogramFamily):
            params = self.posterior_["bin_probabilities"]
        else:
            params = self.model_.params_from_dict(self.posterior_)[:, dim]
        return population_density(self.family_, params, grid, self.model_.samples.theta[..., dim],
                                  level=level, n_grid=n_grid)
