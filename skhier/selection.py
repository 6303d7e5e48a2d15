"""Selection effects: population inference from what a survey could detect.

A survey that detects an object with probability ``P_det`` sees the
population of detections, not of the objects: long-period planets transit
less often, faint galaxies drop out of a magnitude-limited redshift survey.
With a selection description, :class:`~skhier.PopulationModel` and
:class:`~skhier.PosteriorSamplesPopulation` fit the likelihood of the
detected objects (Loredo 2004; Mandel, Farr & Gair 2019, eq. 7),

    p({d_i} | lambda, detected) = prod_i p(d_i | lambda) / alpha_i(lambda),
    alpha_i(lambda) = ∫ P_det(theta, e_i) p(theta | lambda) dtheta,

the per-object likelihood normalised by the fraction of the population that
the survey detects (for object i's noise level ``e_i`` when detection depends
on it; one shared ``alpha`` otherwise). Detection acts through the data (a
measured value above a threshold, a transit that happened), so the
numerators are unchanged.

Three descriptions:

:class:`DetectionProbability`
    ``P_det`` as a function of the true value (and, optionally, of each
    object's measurement error); ``alpha`` by Gauss-Legendre quadrature over
    the population, tested against ``scipy.integrate.quad``.
:class:`Window`
    Hard truncation: values observable only inside ``[low, high]``, either
    the measured values (``P_det = Phi((high - theta) / e) - Phi((low - theta) / e)``)
    or the true ones.
:class:`Injections`
    A survey's injection-recovery set: true values drawn from a known
    reference density, each with a detected flag; ``alpha`` by reweighting
    the detected injections (Tiwari 2018; Farr 2019), with its Monte Carlo
    variance. Fewer than ``4 N_obs`` effective injections (Farr 2019) make
    the log-likelihood uncertain by more than ~1/2 and raise a
    :class:`SelectionWarning`.

References
----------
Loredo, T. J. (2004), AIP Conf. Proc. 735, 195. Mandel, I., Farr, W. M. &
Gair, J. R. (2019), MNRAS 486, 1086. Farr, W. M. (2019), RNAAS 3, 66.
Tiwari, V. (2018), CQG 35, 145009.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from ._distributions import NormalFamily, _log_diff_ndtr

__all__ = ["DetectionProbability", "Window", "Injections", "SelectionWarning"]

#: The quadrature for alpha: every sub-interval (between the ends of the
#: population's range and the detection function's breakpoints) is cut into
#: _N_PANELS equal panels of _N_NODES Gauss-Legendre nodes each.
_N_NODES = 16
_N_PANELS = 12
#: Half-width, in latent standard deviations, of the quadrature range.
_HALF_WIDTH = 9.0
#: Cells (draws x objects x nodes) evaluated at once.
_CHUNK_CELLS = 2_000_000
#: With more distinct measurement errors than this, alpha is computed on a
#: grid of errors and interpolated.
_N_ERR_GRID = 64


class SelectionWarning(UserWarning):
    """The selection correction is less accurate than the data need."""


class _Selection:
    """Base class: validated in ``prepare`` against the data of a fit."""

    uses_error = False

    def _check_probability(self, p, where):
        p = np.asarray(p, dtype=float)
        if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise ValueError(
                f"selection: the detection probability must lie in [0, 1]; got values "
                f"from {np.nanmin(p):.3g} to {np.nanmax(p):.3g} {where}."
            )
        return p


class DetectionProbability(_Selection):
    """Detection probability as a function of the true value.

    Parameters
    ----------
    func : callable
        ``func(theta)`` (or ``func(theta, err)`` with ``uses_error=True``)
        returns the probability, in [0, 1], that an object with true value
        ``theta`` (and measurement error ``err``) is detected; it must accept
        arrays and broadcast.
    uses_error : bool, default=False
        Detection depends on each object's measurement error (e.g. a cut on
        the measured signal-to-noise ratio): ``alpha`` is then computed per
        object, for its own error.
    breakpoints : sequence of float, default=()
        Values of theta where ``func`` has a step or a kink (e.g. where a
        probability is capped at 1): the quadrature splits there, which
        keeps it accurate to ~1e-7.

    Examples
    --------
    A transit survey: geometric probability ``(P / 1 d)^(-2/3)`` (capped at
    1) times an efficiency that falls off beyond 100 days.

    >>> import numpy as np
    >>> from skhier.selection import DetectionProbability
    >>> sel = DetectionProbability(
    ...     lambda p: np.minimum(p ** (-2 / 3), 1.0) / (1 + (p / 100.0) ** 4))
    >>> sel.probability(np.array([1.0, 8.0, 1000.0])).round(4).tolist()
    [1.0, 0.25, 0.0]
    """

    def __init__(self, func, *, uses_error=False, breakpoints=()):
        if not callable(func):
            raise TypeError(f"DetectionProbability: func must be callable, got {type(func).__name__}.")
        self.func = func
        self.uses_error = bool(uses_error)
        bp = np.atleast_1d(np.asarray(breakpoints, dtype=float))
        if bp.ndim != 1 or not np.all(np.isfinite(bp)):
            raise ValueError("DetectionProbability: breakpoints must be finite numbers.")
        self._breakpoints = tuple(float(b) for b in bp)

    def __repr__(self):
        return f"DetectionProbability({getattr(self.func, '__name__', 'func')}, uses_error={self.uses_error})"

    def probability(self, theta, err=None):
        with np.errstate(all="ignore"):
            p = self.func(theta, err) if self.uses_error else self.func(theta)
        return np.broadcast_to(np.asarray(p, dtype=float), np.broadcast(theta, err).shape
                               if self.uses_error else np.shape(theta))

    def breakpoints(self):
        return self._breakpoints


class Window(DetectionProbability):
    """Hard truncation: values observable only inside ``[low, high]``.

    Parameters
    ----------
    low, high : float
        The window (either may be infinite, not both).
    on : {"measured", "true"}, default="measured"
        Whether the window applies to the measured values (an object is
        kept when its measurement falls inside; ``P_det`` then depends on
        each object's error) or to the true values.

    Examples
    --------
    >>> from skhier.selection import Window
    >>> w = Window(-1000.0, 1000.0)   # velocities measured inside +-1000 km/s
    >>> round(float(w.probability(1000.0, 50.0)), 3)
    0.5
    """

    def __init__(self, low=-np.inf, high=np.inf, *, on="measured"):
        low, high = float(low), float(high)
        if not high > low or (np.isinf(low) and np.isinf(high)):
            raise ValueError(
                f"Window: need low < high with at least one finite, got ({low}, {high})."
            )
        if on not in ("measured", "true"):
            raise ValueError(f"Window: on must be 'measured' or 'true', got {on!r}.")
        self.low, self.high, self.on = low, high, on
        self.uses_error = on == "measured"

    def __repr__(self):
        return f"Window({self.low}, {self.high}, on={self.on!r})"

    def probability(self, theta, err=None):
        theta = np.asarray(theta, dtype=float)
        if self.on == "true":
            return ((theta >= self.low) & (theta <= self.high)).astype(float)
        err = np.asarray(err, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            hi = special.ndtr((self.high - theta) / err)
            lo = special.ndtr((self.low - theta) / err)
        return np.clip(hi - lo, 0.0, 1.0)

    def breakpoints(self):
        return tuple(b for b in (self.low, self.high) if np.isfinite(b))

    def check_data(self, x):
        x = np.asarray(x, dtype=float)
        if self.on == "measured" and np.any((x < self.low) | (x > self.high)):
            bad = x[(x < self.low) | (x > self.high)]
            raise ValueError(
                f"selection: Window({self.low}, {self.high}) excludes {bad.size} observed "
                f"value(s) (e.g. {bad[0]:.6g}): a measured value outside the window could "
                "not have been observed."
            )


class Injections(_Selection):
    """A survey's injection-recovery set.

    Parameters
    ----------
    values : array-like of shape (n_injections,)
        True values of the injected (simulated) objects, drawn from a known
        reference density.
    detected : array-like of bool, shape (n_injections,)
        Whether the survey's pipeline recovered each injection.
    log_reference_density : array-like of shape (n_injections,) or callable
        The log density from which ``values`` were drawn, at each value
        (or a function of the values).

    Notes
    -----
    ``alpha(lambda) = (1/N) sum_{detected j} p(theta_j | lambda) / p_ref(theta_j)``,
    with ``N`` all injections, detected or not. Its Monte Carlo variance
    gives the effective number of injections ``N_eff = alpha^2 / Var(alpha)``;
    the log-likelihood of ``N_obs`` objects then carries a Monte Carlo
    variance of about ``N_obs^2 / N_eff`` (Farr 2019): keep
    ``N_eff > 4 N_obs``. The estimator reports it in
    ``selection_n_effective_`` and ``selection_loglik_variance_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier.selection import Injections
    >>> rng = np.random.default_rng(0)
    >>> v = rng.uniform(0.0, 1.0, 5000)          # drawn from U(0, 1): log density 0
    >>> inj = Injections(v, detected=v < 0.5, log_reference_density=np.zeros(5000))
    >>> inj.values.shape
    (5000,)
    """

    def __init__(self, values, detected=None, log_reference_density=None):
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError("Injections: values must be a non-empty 1-D array of finite numbers.")
        if detected is None:
            raise ValueError(
                "Injections: detected is required, a boolean array saying which injections "
                "the survey recovered."
            )
        det = np.asarray(detected)
        if det.shape != values.shape or det.dtype.kind not in "bui":
            raise ValueError(
                f"Injections: detected must be a boolean array of shape {values.shape}, "
                f"got shape {det.shape} and dtype {det.dtype}."
            )
        if det.dtype.kind != "b" and not np.isin(det, (0, 1)).all():
            raise ValueError("Injections: detected must hold booleans (or 0/1).")
        det = det.astype(bool)
        if not det.any():
            raise ValueError("Injections: no injection was detected; alpha would be 0.")
        if log_reference_density is None:
            raise ValueError("Injections: log_reference_density is required.")
        if callable(log_reference_density):
            lref = np.asarray(log_reference_density(values), dtype=float)
        else:
            lref = np.asarray(log_reference_density, dtype=float)
        if lref.shape != values.shape or not np.all(np.isfinite(lref[det])):
            raise ValueError(
                f"Injections: log_reference_density must give a finite value for every "
                f"detected injection, shape {values.shape}."
            )
        self.values = values
        self.detected = det
        self.log_reference_density = lref

    def __repr__(self):
        return f"Injections(n={self.values.size}, detected={int(self.detected.sum())})"


# ---------------------------------------------------------------------------
# The normalisation alpha(lambda)
# ---------------------------------------------------------------------------
_GL_T, _GL_W = np.polynomial.legendre.leggauss(_N_NODES)


def _latent_range(family, params):
    """(a, b) latent interval holding all but ~1e-30 of the population, per draw."""
    if hasattr(family, "latent_range"):
        a, b = family.latent_range(params)
    else:
        m, s = family.latent_moments(params)
        a, b = m - _HALF_WIDTH * s, m + _HALF_WIDTH * s
    return np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def _intervals(family, selection, params):
    """Latent sub-intervals (list of (a, b) arrays, per draw) for the quadrature."""
    a, b = _latent_range(family, params)
    cuts = []
    if isinstance(selection, Window) and selection.on == "true":
        lo, hi = family.to_latent(np.array([selection.low, selection.high]))
        a = np.maximum(a, lo if np.isfinite(lo) else -np.inf)
        b = np.minimum(b, hi if np.isfinite(hi) else np.inf)
        b = np.maximum(a, b)
    else:
        for t in selection.breakpoints():
            v = float(family.to_latent(np.array(t)))
            if np.isfinite(v):
                cuts.append(np.full_like(a, v))
    if hasattr(family, "latent_breakpoints"):
        cuts += list(family.latent_breakpoints(params))
    edges = [a] + [np.clip(c, a, b) for c in cuts] + [b]
    edges = np.sort(np.stack(edges, axis=-1), axis=-1)
    return [(edges[..., k], edges[..., k + 1]) for k in range(edges.shape[-1] - 1)]


def _nodes(intervals):
    """(v, log w) composite Gauss-Legendre nodes, each (S, n_nodes_total)."""
    vs, lws = [], []
    for a, b in intervals:
        for k in range(_N_PANELS):
            pa = a + (b - a) * (k / _N_PANELS)
            pb = a + (b - a) * ((k + 1) / _N_PANELS)
            half = 0.5 * (pb - pa)
            vs.append(0.5 * (pa + pb)[:, None] + half[:, None] * _GL_T[None, :])
            with np.errstate(divide="ignore"):
                lws.append(np.log(half)[:, None] + np.log(_GL_W)[None, :])
    return np.concatenate(vs, axis=1), np.concatenate(lws, axis=1)


def log_alpha_quadrature(selection, family, params, err=None):
    """log alpha per draw (S,), or per draw and error (S, len(err)) when
    the detection probability uses the error.

    ``params`` (S, p) constrained population parameters; ``err`` the
    distinct measurement errors.
    """
    params = np.atleast_2d(np.asarray(params, dtype=float))
    if isinstance(selection, Window) and type(family) is NormalFamily:
        # Exact: the measured (or true) value is N(mu, tau^2 + e^2) (or N(mu, tau^2)).
        mu, tau = params[:, 0], params[:, 1]
        if selection.uses_error:
            s = np.sqrt(tau[:, None] ** 2 + np.asarray(err, dtype=float)[None, :] ** 2)
            mu = mu[:, None]
        else:
            s = tau
        return _log_diff_ndtr((selection.low - mu) / s, (selection.high - mu) / s)
    v, lw = _nodes(_intervals(family, selection, params))
    with np.errstate(all="ignore"):
        theta, _ = family.from_latent(v)
        log_dens = family.latent_logpdf(v, params) + lw
    log_dens = np.where(np.isfinite(log_dens), log_dens, -np.inf)
    if not selection.uses_error:
        with np.errstate(divide="ignore"):
            lp = np.log(selection.probability(theta))
        return special.logsumexp(log_dens + lp, axis=1)
    err = np.asarray(err, dtype=float)
    S, K = v.shape
    out = np.empty((S, err.size))
    step = max(1, _CHUNK_CELLS // max(S * K, 1))
    for s in range(0, err.size, step):
        e = err[s : s + step]
        with np.errstate(divide="ignore"):
            lp = np.log(selection.probability(theta[:, None, :], e[None, :, None]))
        out[:, s : s + step] = special.logsumexp(log_dens[:, None, :] + lp, axis=2)
    return out


def injection_alpha(injections, family, params):
    """(log alpha, N_eff) per draw from the detected injections."""
    params = np.atleast_2d(np.asarray(params, dtype=float))
    th = injections.values[injections.detected]
    lref = injections.log_reference_density[injections.detected]
    n = injections.values.size
    with np.errstate(all="ignore"):
        lr = family.logpdf(th[None, :], params) - lref[None, :]
    lr = np.where(np.isfinite(lr), lr, -np.inf)
    log_s1 = special.logsumexp(lr, axis=1)
    log_s2 = special.logsumexp(2 * lr, axis=1)
    log_alpha = log_s1 - np.log(n)
    # Var(alpha_hat) = (S2/N - alpha^2)/N; N_eff = alpha^2 / Var.
    with np.errstate(all="ignore"):
        var = (np.exp(log_s2 - 2 * log_s1) - 1.0 / n)
        n_eff = np.where(var > 0, 1.0 / var, np.inf)
    return log_alpha, n_eff


class SelectionTerm:
    """The selection correction of one fit: validated against its data.

    ``x``: the measured values (None for per-object posterior samples);
    ``e``: their errors (None when there are none); ``family``: the
    population family; ``n_obs``: the number of objects.
    """

    def __init__(self, selection, family, x=None, e=None, *, n_obs, support_values=None):
        if callable(selection) and not isinstance(selection, _Selection):
            selection = DetectionProbability(selection)
        if not isinstance(selection, _Selection):
            raise TypeError(
                "selection must be a DetectionProbability, Window or Injections from "
                f"skhier.selection, or a callable P_det(theta); got {type(selection).__name__}."
            )
        self.selection = selection
        self.family = family
        self.n_obs = int(n_obs)
        self.injections = isinstance(selection, Injections)
        if selection.uses_error:
            if e is None:
                raise ValueError(
                    f"selection: {selection!r} depends on each object's measurement error, "
                    "but this fit has none."
                )
            e = np.asarray(e, dtype=float)
            if np.any(e <= 0):
                raise ValueError(
                    f"selection: {selection!r} depends on each object's measurement error; "
                    "every error must be positive."
                )
            self.err_values, self.err_index = np.unique(e, return_inverse=True)
            self.err_interp = None
            if self.err_values.size > _N_ERR_GRID:
                # log alpha is smooth in log e: computed on a grid and
                # interpolated (cubic in log e; tested against the exact sum).
                lo, hi = np.log(self.err_values[0]), np.log(self.err_values[-1])
                self.err_interp = (np.log(e), np.linspace(lo, hi, _N_ERR_GRID))
                self.err_values = np.exp(self.err_interp[1])
        if isinstance(selection, Window) and x is not None:
            selection.check_data(x)
        if not self.injections:
            self._check_probabilities(support_values, e)

    def _check_probabilities(self, values, e):
        sel = self.selection
        values = np.asarray(values if values is not None else [], dtype=float).ravel()
        values = values[np.isfinite(values)]
        lo, hi = self.family.support
        if values.size:
            span = values.max() - values.min()
            pad = max(span, abs(values.max()), 1e-12)
            grid = np.linspace(values.min() - pad, values.max() + pad, 201)
        else:
            grid = np.linspace(-10.0, 10.0, 201)
        grid = grid[(grid > lo) & (grid < hi)]
        if np.isfinite(lo) and np.isfinite(hi):
            grid = np.concatenate([grid, lo + (hi - lo) * np.linspace(1e-6, 1 - 1e-6, 201)])
        if sel.uses_error:
            ev = np.quantile(np.asarray(e, dtype=float), [0.0, 0.5, 1.0])
            p = sel.probability(grid[:, None], ev[None, :])
        else:
            p = sel.probability(grid)
        p = sel._check_probability(p, "over the range of the data")
        if not np.any(p > 0):
            raise ValueError(
                "selection: the detection probability is zero everywhere over the range of "
                "the data; no object could have been detected."
            )

    def log_alpha(self, params):
        """Sum over objects of log alpha_i, per draw (S,); +inf where a
        population would detect nothing (the data are then impossible)."""
        return self._finite_or_inf(self._log_alpha(params))

    def log_alpha_mixture(self, params, log_f_pop, log_f_bg, bg_params):
        """Sum over objects of log[(1-f) alpha_pop,i + f alpha_bg,i] (S,), the
        background being a normal N(mu_b, sigma_b) in the true value."""
        return self._finite_or_inf(
            self._log_alpha_mixture(params, log_f_pop, log_f_bg, bg_params))

    @staticmethod
    def _finite_or_inf(v):
        return np.where(np.isfinite(v), v, np.inf)

    def _log_alpha(self, params):
        params = np.atleast_2d(params)
        if self.injections:
            la, _ = injection_alpha(self.selection, self.family, params)
            return self.n_obs * la
        la = log_alpha_quadrature(self.selection, self.family, params,
                                  self.err_values if self.selection.uses_error else None)
        if self.selection.uses_error:
            return self._per_object(la).sum(axis=1)
        return self.n_obs * la

    def _per_object(self, la):
        """(S, n_objects) from values at ``err_values`` (S, n_err)."""
        if self.err_interp is None:
            return la[:, self.err_index]
        from scipy.interpolate import CubicSpline

        x_obj, grid = self.err_interp
        out = np.full((la.shape[0], x_obj.size), -np.inf)
        ok = np.all(np.isfinite(la), axis=1)
        if ok.any():
            out[ok] = CubicSpline(grid, la[ok], axis=1)(x_obj)
        return out

    def _log_alpha_mixture(self, params, log_f_pop, log_f_bg, bg_params):
        params, bg_params = np.atleast_2d(params), np.atleast_2d(bg_params)
        if self.injections:
            lp, _ = injection_alpha(self.selection, self.family, params)
            lb, _ = injection_alpha(self.selection, NormalFamily(), bg_params)
            return self.n_obs * np.logaddexp(log_f_pop + lp, log_f_bg + lb)
        err = self.err_values if self.selection.uses_error else None
        lp = log_alpha_quadrature(self.selection, self.family, params, err)
        lb = log_alpha_quadrature(self.selection, NormalFamily(), bg_params, err)
        if self.selection.uses_error:
            tot = np.logaddexp(log_f_pop[:, None] + lp, log_f_bg[:, None] + lb)
            return self._per_object(tot).sum(axis=1)
        return self.n_obs * np.logaddexp(log_f_pop + lp, log_f_bg + lb)

    def diagnostics(self, params):
        """For injections: (median N_eff over the draws, Monte Carlo variance of
        the log-likelihood N_obs^2 / N_eff at that N_eff); warns when
        N_eff < 4 N_obs."""
        if not self.injections:
            return None, 0.0
        _, n_eff = injection_alpha(self.selection, self.family, np.atleast_2d(params))
        med = float(np.median(n_eff))
        var = self.n_obs**2 / med if med > 0 else np.inf
        if not med > 4 * self.n_obs:
            warnings.warn(
                f"The injections are worth {med:.0f} independent ones at the posterior "
                f"(median over draws), fewer than 4 x {self.n_obs} objects (Farr 2019): "
                f"the log-likelihood carries a Monte Carlo variance of about {var:.2g}, "
                "so the posterior is unreliable. Provide more injections, drawn closer to "
                "the detected population.",
                SelectionWarning,
                stacklevel=4,
            )
        return med, var
