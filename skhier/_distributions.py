"""Population families p(theta | alpha) and priors on their parameters.

This module is the model vocabulary of the population estimators: it knows
nothing about measurement errors, samplers or estimators, so any estimator
that needs "a population distribution with parameters alpha" can reuse it
(the collapsed :class:`~skhier.PopulationModel`, or an estimator that
reweights per-object posterior samples as in Hogg, Myers & Bovy 2010).

Interface of a family (:class:`PopulationFamily`)
-------------------------------------------------
``param_names``
    Names of the population parameters alpha, e.g. ``("mu", "tau")``.
``transforms``
    One of ``"identity"``, ``"log"``, ``"logit"`` per parameter: the map
    from the constrained parameter to the unconstrained sampler coordinate.
``support``
    ``(low, high)`` of theta (``-inf``/``inf`` for unbounded sides).
``constrain(u)`` / ``unconstrain(params)`` / ``log_jacobian(u)``
    Unconstrained <-> constrained parameter arrays, shape ``(..., p)``;
    ``log_jacobian`` is ``log |d params / d u|`` with shape ``(...)``.
``log_prior(params, priors)`` / ``log_prior_unconstrained(u, priors)``
    Sum of the independent per-parameter priors (a dict name -> :class:`Prior`),
    the second one including the log-Jacobian (the density of ``u``).
``logpdf(theta, params)``
    ``log p(theta | alpha)``. ``params`` has the parameters on its *last*
    axis; its leading ("batch") axes align with the *leading* axes of
    ``theta``, and the remaining axes of ``theta`` broadcast. So
    ``theta`` of shape ``(n_walkers, n_objects, n_samples)`` (or
    ``(1, n_objects, n_samples)``) with ``params`` of shape
    ``(n_walkers, p)`` gives ``(n_walkers, n_objects, n_samples)``;
    ``params`` of shape ``(p,)`` broadcasts over everything.
    Outside the support the result is ``-inf``.
``rvs(params, size=(), random_state=None)``
    Random draws of shape ``params.shape[:-1] + size``.
``default_priors(x)``
    Weakly informative default priors given (rough) values ``x`` of the
    quantity, documented on each family.

The latent-space helpers (``to_latent``, ``from_latent``,
``latent_logpdf``, ``latent_moments``) describe the population in an
unconstrained variable ``v = T(theta)`` (identity, log or logit of theta);
collapsed likelihoods integrate over ``v`` with Gauss–Hermite nodes
centred on each object's likelihood x population product.

:func:`density_band` evaluates the population density on a grid for many
posterior draws and returns the median and a credible band.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy import integrate, special, stats
from sklearn.utils import Bunch, check_random_state

from ._math import HALF_LOG2PI
from .utils._warnings import warn

__all__ = [
    "Prior",
    "NormalPrior",
    "HalfNormalPrior",
    "HalfCauchyPrior",
    "LogNormalPrior",
    "UniformPrior",
    "LogUniformPrior",
    "BetaPrior",
    "parse_prior",
    "PopulationFamily",
    "NormalFamily",
    "LogNormalFamily",
    "BetaFamily",
    "TruncatedNormalFamily",
    "PowerLawFamily",
    "BrokenPowerLawFamily",
    "CustomPopulation",
    "HistogramFamily",
    "feature_map",
    "get_family",
    "FAMILIES",
    "density_band",
    "population_density",
]



# ---------------------------------------------------------------------------
# Priors on single (constrained) parameters
# ---------------------------------------------------------------------------
class Prior:
    """A proper prior on one scalar parameter.

    Subclasses define ``support`` (low, high), ``logpdf(x)`` (vectorised,
    ``-inf`` outside the support) and ``rvs(size, rng)``.
    """

    support: tuple[float, float] = (-np.inf, np.inf)

    def logpdf(self, x):
        raise NotImplementedError

    def rvs(self, size=(), random_state=None):
        raise NotImplementedError

    def _spec(self):
        raise NotImplementedError

    def __repr__(self):
        name, *args = self._spec()
        return f"{type(self).__name__}({', '.join(f'{a:.6g}' for a in args)})"

    def __eq__(self, other):
        return type(self) is type(other) and self._spec() == other._spec()

    def __hash__(self):
        return hash(self._spec())


def _positive(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {value!r}.")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be finite and > 0, got {value}.")
    return value


def _finite(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}.")
    return value


class NormalPrior(Prior):
    """N(loc, scale^2) on the real line."""

    def __init__(self, loc=0.0, scale=1.0):
        self.loc = _finite(loc, "normal prior loc")
        self.scale = _positive(scale, "normal prior scale")

    def _spec(self):
        return ("normal", self.loc, self.scale)

    def logpdf(self, x):
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        return -0.5 * z * z - np.log(self.scale) - HALF_LOG2PI

    def rvs(self, size=(), random_state=None):
        return self.loc + self.scale * _rng(random_state).standard_normal(size)


class HalfNormalPrior(Prior):
    """|N(0, scale^2)| on (0, inf)."""

    support = (0.0, np.inf)

    def __init__(self, scale=1.0):
        self.scale = _positive(scale, "half-normal prior scale")

    def _spec(self):
        return ("halfnormal", self.scale)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(invalid="ignore"):
            lp = -0.5 * (x / self.scale) ** 2 - np.log(self.scale) + 0.5 * np.log(2 / np.pi)
        return np.where(x > 0, lp, -np.inf)

    def rvs(self, size=(), random_state=None):
        return np.abs(self.scale * _rng(random_state).standard_normal(size))


class HalfCauchyPrior(Prior):
    """Half-Cauchy(0, scale) on (0, inf): the scale prior of Gelman (2006)."""

    support = (0.0, np.inf)

    def __init__(self, scale=1.0):
        self.scale = _positive(scale, "half-Cauchy prior scale")

    def _spec(self):
        return ("halfcauchy", self.scale)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(invalid="ignore", over="ignore"):
            lp = np.log(2.0 / (np.pi * self.scale)) - np.log1p((x / self.scale) ** 2)
        return np.where(x > 0, lp, -np.inf)

    def rvs(self, size=(), random_state=None):
        return np.abs(self.scale * _rng(random_state).standard_cauchy(size))


class LogNormalPrior(Prior):
    """log x ~ N(mu, sigma^2) on (0, inf)."""

    support = (0.0, np.inf)

    def __init__(self, mu=0.0, sigma=1.0):
        self.mu = _finite(mu, "log-normal prior mu")
        self.sigma = _positive(sigma, "log-normal prior sigma")

    def _spec(self):
        return ("lognormal", self.mu, self.sigma)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            lx = np.log(x)
            lp = -0.5 * ((lx - self.mu) / self.sigma) ** 2 - np.log(self.sigma) - lx - HALF_LOG2PI
        return np.where(x > 0, lp, -np.inf)

    def rvs(self, size=(), random_state=None):
        rng = _rng(random_state)
        return np.exp(self.mu + self.sigma * rng.standard_normal(size))


class UniformPrior(Prior):
    """Uniform(low, high)."""

    def __init__(self, low=0.0, high=1.0):
        self.low = _finite(low, "uniform prior low")
        self.high = _finite(high, "uniform prior high")
        if not self.high > self.low:
            raise ValueError(f"uniform prior needs low < high, got ({low}, {high}).")
        self.support = (self.low, self.high)

    def _spec(self):
        return ("uniform", self.low, self.high)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x > self.low) & (x < self.high)
        return np.where(inside, -np.log(self.high - self.low), -np.inf)

    def rvs(self, size=(), random_state=None):
        return _rng(random_state).uniform(self.low, self.high, size)


class LogUniformPrior(Prior):
    """Log-uniform on (low, high), 0 < low < high: density 1 / (x log(high / low))."""

    def __init__(self, low=1.0, high=10.0):
        self.low = _finite(low, "log-uniform prior low")
        self.high = _finite(high, "log-uniform prior high")
        if not 0 < self.low < self.high:
            raise ValueError(f"log-uniform prior needs 0 < low < high, got ({low}, {high}).")
        self.support = (self.low, self.high)

    def _spec(self):
        return ("loguniform", self.low, self.high)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x > self.low) & (x < self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -np.log(x) - np.log(np.log(self.high / self.low))
        return np.where(inside, out, -np.inf)

    def rvs(self, size=(), random_state=None):
        return np.exp(_rng(random_state).uniform(np.log(self.low), np.log(self.high), size))


class BetaPrior(Prior):
    """Beta(a, b) on (0, 1)."""

    support = (0.0, 1.0)

    def __init__(self, a=1.0, b=1.0):
        self.a = _positive(a, "beta prior a")
        self.b = _positive(b, "beta prior b")

    def _spec(self):
        return ("beta", self.a, self.b)

    def logpdf(self, x):
        x = np.asarray(x, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            lp = special.xlogy(self.a - 1, x) + special.xlog1py(self.b - 1, -x)
            lp = lp - special.betaln(self.a, self.b)
        return np.where((x > 0) & (x < 1), lp, -np.inf)

    def rvs(self, size=(), random_state=None):
        return _rng(random_state).beta(self.a, self.b, size)


_PRIORS = {
    "normal": NormalPrior,
    "halfnormal": HalfNormalPrior,
    "halfcauchy": HalfCauchyPrior,
    "lognormal": LogNormalPrior,
    "uniform": UniformPrior,
    "loguniform": LogUniformPrior,
    "beta": BetaPrior,
}


def parse_prior(spec, name="prior") -> Prior:
    """A :class:`Prior` from a Prior instance or a tuple ``(kind, *args)``.

    ``kind`` is one of ``"normal"`` (loc, scale), ``"halfnormal"`` (scale),
    ``"halfcauchy"`` (scale), ``"lognormal"`` (mu, sigma), ``"uniform"``
    (low, high), ``"loguniform"`` (low, high) and ``"beta"`` (a, b);
    case, hyphens and underscores are ignored (``"half-cauchy"``). The one
    prior syntax of every skhier estimator.

    Examples
    --------
    >>> from skhier._distributions import parse_prior
    >>> parse_prior(("halfcauchy", 25.0))
    HalfCauchyPrior(25)
    """
    if isinstance(spec, Prior):
        return spec
    if not isinstance(spec, (tuple, list)) or not spec or not isinstance(spec[0], str):
        raise TypeError(
            f"{name} must be a Prior or a tuple (kind, *args) with kind in "
            f"{sorted(_PRIORS)}, got {spec!r}."
        )
    kind = spec[0].lower().replace("-", "").replace("_", "")
    if kind not in _PRIORS:
        raise ValueError(f"{name}: unknown prior kind {spec[0]!r}; use one of {sorted(_PRIORS)}.")
    try:
        return _PRIORS[kind](*spec[1:])
    except TypeError as exc:
        if "argument" in str(exc):
            raise ValueError(f"{name}: wrong number of arguments in {spec!r}.") from None
        raise


# ---------------------------------------------------------------------------
# Parameter transforms
# ---------------------------------------------------------------------------
_TRANSFORM_DOMAIN = {"identity": (-np.inf, np.inf), "log": (0.0, np.inf), "logit": (0.0, 1.0)}


def check_prior(spec, name, transform) -> Prior:
    """``priors[name]``'s spec parsed, checked to put no mass outside the range
    of a parameter sampled through ``transform`` ("identity", "log", "logit")."""
    prior = parse_prior(spec, f"priors[{name!r}]")
    dlo, dhi = _TRANSFORM_DOMAIN[transform]
    if prior.support[0] < dlo or prior.support[1] > dhi:
        raise ValueError(
            f"priors[{name!r}] = {prior!r} puts mass outside the range of {name} ({dlo}, {dhi})."
        )
    return prior


def _to_unconstrained(kind, x):
    if kind == "identity":
        return x
    if kind == "log":
        return np.log(x)
    return special.logit(x)


def _to_constrained(kind, u):
    if kind == "identity":
        return u
    if kind == "log":
        return np.exp(u)
    return special.expit(u)


def _log_jacobian(kind, u):
    if kind == "identity":
        return np.zeros_like(u)
    if kind == "log":
        return u
    return special.log_expit(u) + special.log_expit(-u)


def _split(params, ndim: int):
    """Per-parameter arrays whose batch axes lead and broadcast over ``ndim`` axes."""
    params = np.asarray(params, dtype=float)
    batch = params.shape[:-1]
    if ndim < len(batch):
        raise ValueError(
            f"theta has {ndim} axes but params has {len(batch)} batch axes; the "
            "batch axes of params must align with the leading axes of theta."
        )
    shape = batch + (1,) * (ndim - len(batch))
    return [params[..., k].reshape(shape) for k in range(params.shape[-1])]


# ---------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------
def clip_into_priors(params, names, priors):
    """Copy of ``params`` (one value per name) moved just inside each prior's range.

    Values already inside are kept; a value outside (or on the edge of) a
    prior's support moves 1 % of the range inside it. Used for starting
    points, which must have a finite log-prior.

    Examples
    --------
    >>> clip_into_priors(np.array([3.0]), ["mu"], {"mu": UniformPrior(-10.0, 2.8)})
    array([2.672])
    """
    params = np.array(params, dtype=float)
    for k, name in enumerate(names):
        lo, hi = priors[name].support
        if not lo < params[k] < hi:
            width = (hi - lo) if np.isfinite(hi - lo) else abs(params[k]) + 1.0
            params[k] = np.clip(params[k], lo + 0.01 * width, hi - 0.01 * width)
    return params


class PopulationFamily:
    """Base class of the population distributions p(theta | alpha).

    See the module docstring for the interface. Instances hold only floats
    and tuples, so they pickle and compare by value.
    """

    name: str = ""
    param_names: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    support: tuple[float, float] = (-np.inf, np.inf)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def unconstrained_names(self) -> list[str]:
        pre = {"identity": "", "log": "log_", "logit": "logit_"}
        return [pre[t] + n for n, t in zip(self.param_names, self.transforms, strict=False)]

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.__dict__.items()))))

    # -- parameters ---------------------------------------------------------
    def constrain(self, u):
        """Constrained parameters from unconstrained coordinates, (..., p)."""
        u = np.asarray(u, dtype=float)
        return np.stack(
            [_to_constrained(t, u[..., k]) for k, t in enumerate(self.transforms)], axis=-1
        )

    def unconstrain(self, params):
        """Inverse of :meth:`constrain`."""
        params = np.asarray(params, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.stack(
                [_to_unconstrained(t, params[..., k]) for k, t in enumerate(self.transforms)],
                axis=-1,
            )

    def log_jacobian(self, u):
        """``log |d params / d u|`` for unconstrained ``u`` of shape (..., p)."""
        u = np.asarray(u, dtype=float)
        return sum(_log_jacobian(t, u[..., k]) for k, t in enumerate(self.transforms))

    def check_priors(self, priors) -> dict[str, Prior]:
        """Validate a dict name -> prior spec; fill in nothing (see default_priors)."""
        out = {}
        for name, spec in priors.items():
            if name not in self.param_names:
                raise ValueError(
                    f"priors: unknown parameter {name!r} for the {self.name!r} "
                    f"population; its parameters are {list(self.param_names)}."
                )
            transform = self.transforms[self.param_names.index(name)]
            out[name] = check_prior(spec, name, transform)
        return out

    def log_prior(self, params, priors):
        """Sum of the per-parameter log priors; ``params`` of shape (..., p)."""
        params = np.asarray(params, dtype=float)
        return sum(priors[n].logpdf(params[..., k]) for k, n in enumerate(self.param_names))

    def log_prior_unconstrained(self, u, priors):
        """Log density of the unconstrained coordinates (prior + Jacobian)."""
        u = np.asarray(u, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            return self.log_prior(self.constrain(u), priors) + self.log_jacobian(u)

    def sample_prior(self, priors, size=(), random_state=None):
        """Parameters drawn from ``priors``, shape ``size + (p,)``."""
        rng = _rng(random_state)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        return np.stack([priors[n].rvs(size, rng) for n in self.param_names], axis=-1)

    def default_priors(self, x) -> dict[str, Prior]:
        raise NotImplementedError

    def moment_start(self, values, errors=None):
        """Starting parameters (constrained) matched to rough per-object values.

        ``values`` are measurements (or per-object posterior medians) and
        ``errors`` their standard deviations, if known: the spread they add
        is taken out of the population's. The MAP search of every estimator
        starts here. None when the family has no rule (the caller then
        starts at the median of the prior).
        """
        return None

    def default_grid(self, values, n_grid=200) -> np.ndarray:
        """Values of theta at which to show the population density by default.

        ``n_grid`` points over the range of ``values`` (measurements or
        samples of the objects) widened by 10 %, cut to the support (the whole
        support when it is bounded on both sides), and kept 1e-6 of the range
        inside a finite bound, where a density can be infinite.
        """
        values = np.asarray(values, dtype=float)
        low, high = self.support
        if np.isfinite(low) and np.isfinite(high):
            lo, hi = float(low), float(high)
        else:
            lo, hi = float(np.min(values)), float(np.max(values))
            pad = 0.1 * (hi - lo) or 1.0
            lo, hi = max(lo - pad, low), min(hi + pad, high)
        grid = np.linspace(lo, hi, n_grid)
        return np.clip(grid, low + 1e-6 * (hi - lo), high - 1e-6 * (hi - lo))

    # -- density --------------------------------------------------------------
    def _in_support(self, theta):
        lo, hi = self.support
        return (theta >= lo) & (theta <= hi)

    def logpdf(self, theta, params):
        """log p(theta | params), broadcast as described in the module docstring."""
        raise NotImplementedError

    def pdf(self, theta, params):
        return np.exp(self.logpdf(theta, params))

    def rvs(self, params, size=(), random_state=None):
        """Draws of theta, shape ``params.shape[:-1] + size``."""
        raise NotImplementedError

    def mean(self, params):
        """Population mean of theta for each parameter set, shape params.shape[:-1]."""
        raise NotImplementedError

    # -- latent (unconstrained) representation of theta -----------------------
    def to_latent(self, theta):
        """v = T(theta): identity, log or logit according to the support."""
        lo, hi = self.support
        theta = np.asarray(theta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.isinf(lo) and np.isinf(hi):
                return theta
            if np.isinf(hi):
                return np.log(theta - lo)
            if np.isinf(lo):
                return -np.log(hi - theta)
            z = (theta - lo) / (hi - lo)
            return np.log(z) - np.log1p(-z)

    def from_latent(self, v):
        """(theta, log dtheta/dv) for latent values ``v``."""
        lo, hi = self.support
        v = np.asarray(v, dtype=float)
        if np.isinf(lo) and np.isinf(hi):
            return v, np.zeros_like(v)
        if np.isinf(hi):
            return lo + np.exp(v), v
        if np.isinf(lo):
            return hi - np.exp(-v), -v
        w = hi - lo
        return lo + w * special.expit(v), np.log(w) + special.log_expit(v) + special.log_expit(-v)

    def latent_logpdf(self, v, params):
        """Log density of v = T(theta) (same broadcasting as :meth:`logpdf`)."""
        theta, logjac = self.from_latent(v)
        return self.logpdf(theta, params) + logjac

    def latent_moments(self, params):
        """Approximate (mean, sd) of v = T(theta) under the population, each (...)."""
        raise NotImplementedError

    def boundary_quantile(self, u, dist, side, params):
        """Distance D to the ``side`` bound at quantile ``u`` of D given D < dist.

        The inverse of the conditional CDF behind :meth:`boundary_moments`;
        ``u`` broadcasts with ``params.shape[:-1]``.
        """
        raise NotImplementedError

    def latent_features(self, v):
        """Parameter-independent arrays computed once for fixed latent nodes ``v``."""
        return (np.asarray(v, dtype=float),)

    def latent_logpdf_features(self, features, params):
        """:meth:`latent_logpdf` at nodes given by :meth:`latent_features`."""
        return self.latent_logpdf(features[0], params)

    def latent_grad_prec(self, v, params):
        """(d/dv latent_logpdf, a positive curvature ~ -d2/dv2), for mode searches."""
        raise NotImplementedError

    def boundary_moments(self, dist, side, params):
        """Mass and mean distance of the population within ``dist`` of a bound.

        Returns ``(log M0, log M1)`` with ``M0 = P(D < dist)`` and
        ``M1 = E[D 1{D < dist}]``, where ``D`` is the distance of theta to
        the ``side`` ("lower" or "upper") support bound; each of shape
        ``params.shape[:-1]``. Used by collapsed likelihoods to integrate a
        (possibly singular) density exactly next to a bound.
        """
        raise NotImplementedError


class NormalFamily(PopulationFamily):
    """theta ~ N(mu, tau^2).

    Parameters ``mu`` (mean) and ``tau`` (standard deviation, > 0), sampled
    as ``(mu, log tau)``. Default priors, with ``m`` the median and ``s``
    the spread (1.4826 x median absolute deviation, or the standard
    deviation if that is 0) of the data: ``mu ~ N(m, (10 s)^2)`` and
    ``tau ~ Half-Cauchy(0, s)`` (Gelman 2006).
    """

    name = "normal"
    param_names = ("mu", "tau")
    transforms = ("identity", "log")

    def default_priors(self, x):
        m, s = _location_spread(x)
        return {"mu": NormalPrior(m, 10.0 * s), "tau": HalfCauchyPrior(s)}

    def moment_start(self, values, errors=None):
        # Robust location and spread, less the typical measurement variance
        # (at least a tenth of the spread remains).
        m, s = _location_spread(values)
        var = s**2 if errors is None else s**2 - float(np.median(np.asarray(errors) ** 2))
        return np.array([m, np.sqrt(max(var, (0.1 * s) ** 2))])

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        mu, tau = _split(params, theta.ndim)
        z = (theta - mu) / tau
        return -0.5 * z * z - np.log(tau) - HALF_LOG2PI

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        mu, tau = _split(params, params.ndim - 1 + len(size))
        return mu + tau * rng.standard_normal(params.shape[:-1] + size)

    def mean(self, params):
        return np.asarray(params, dtype=float)[..., 0]

    def latent_moments(self, params):
        params = np.asarray(params, dtype=float)
        return params[..., 0], params[..., 1]


class LogNormalFamily(PopulationFamily):
    """log theta ~ N(mu, sigma^2), theta > 0 (e.g. orbital periods).

    Parameters ``mu`` (mean of log theta; ``exp(mu)`` is the median) and
    ``sigma`` (standard deviation of log theta, > 0), sampled as
    ``(mu, log sigma)``. Default priors: ``mu ~ N(log m, 5^2)`` with ``m``
    the median of the positive data values, and ``sigma ~ Half-Cauchy(0, 1)``
    (natural-log units).
    """

    name = "lognormal"
    param_names = ("mu", "sigma")
    transforms = ("identity", "log")
    support = (0.0, np.inf)

    def default_priors(self, x):
        x = np.asarray(x, dtype=float)
        pos = x[x > 0]
        m = float(np.median(pos)) if pos.size else 1.0
        return {"mu": NormalPrior(np.log(m), 5.0), "sigma": HalfCauchyPrior(1.0)}

    def moment_start(self, values, errors=None):
        # Robust location and spread of log theta over the positive values
        # (errors are not subtracted: they are not Gaussian in log theta);
        # sigma starts at 0.1 or more, away from a point mass.
        values = np.asarray(values, dtype=float)
        pos = values[values > 0]
        m, s = _location_spread(np.log(pos)) if pos.size else (0.0, 1.0)
        return np.array([m, max(s, 0.1)])

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        mu, sigma = _split(params, theta.ndim)
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log(theta)
            z = (lt - mu) / sigma
            lp = -0.5 * z * z - np.log(sigma) - lt - HALF_LOG2PI
        return np.where(theta > 0, lp, -np.inf)

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        mu, sigma = _split(params, params.ndim - 1 + len(size))
        return np.exp(mu + sigma * rng.standard_normal(params.shape[:-1] + size))

    def mean(self, params):
        params = np.asarray(params, dtype=float)
        return np.exp(params[..., 0] + 0.5 * params[..., 1] ** 2)

    def latent_logpdf(self, v, params):
        v = np.asarray(v, dtype=float)
        mu, sigma = _split(params, v.ndim)
        z = (v - mu) / sigma
        return -0.5 * z * z - np.log(sigma) - HALF_LOG2PI

    def latent_features(self, v):
        v = np.asarray(v, dtype=float)
        return (v, -0.5 * v * v)

    def latent_logpdf_features(self, features, params):
        # Quadratic in v: two multiply-adds per node.
        v, mhv2 = features
        mu, sigma = _split(params, v.ndim)
        prec = 1.0 / sigma**2
        return prec * mhv2 + (mu * prec) * v - 0.5 * mu**2 * prec - np.log(sigma) - HALF_LOG2PI

    def latent_grad_prec(self, v, params):
        v = np.asarray(v, dtype=float)
        mu, sigma = _split(params, v.ndim)
        return -(v - mu) / sigma**2, np.broadcast_to(1.0 / sigma**2, np.broadcast_shapes(v.shape, mu.shape))

    def boundary_moments(self, dist, side, params):
        if side != "lower":
            raise ValueError("the log-normal population has no upper bound.")
        params = np.asarray(params, dtype=float)
        mu, sigma = params[..., 0], params[..., 1]
        ld = np.log(dist)
        m0 = special.log_ndtr((ld - mu) / sigma)
        m1 = mu + 0.5 * sigma**2 + special.log_ndtr((ld - mu - sigma**2) / sigma)
        return m0, m1

    def boundary_quantile(self, u, dist, side, params):
        params = np.asarray(params, dtype=float)
        mu, sigma = params[..., 0], params[..., 1]
        log_u = np.log(u) + special.log_ndtr((np.log(dist) - mu) / sigma)
        return np.exp(mu + sigma * special.ndtri_exp(log_u))

    def latent_moments(self, params):
        params = np.asarray(params, dtype=float)
        return params[..., 0], params[..., 1]


class BetaFamily(PopulationFamily):
    """theta ~ Beta(a, b) on [0, 1] (e.g. orbital eccentricities).

    Parameterised by the population ``mean`` = a / (a + b) in (0, 1) and the
    ``concentration`` kappa = a + b > 0 (sampled as ``logit mean`` and
    ``log concentration``), so ``a = mean * kappa`` and
    ``b = (1 - mean) * kappa``. Default priors: ``mean ~ Uniform(0, 1)``
    and ``concentration ~ LogNormal(log 10, 1.5^2)`` (median 10, 95 % of the
    mass in [0.5, 190]): from U-shaped through flat to narrow populations.
    """

    name = "beta"
    param_names = ("mean", "concentration")
    transforms = ("logit", "log")
    support = (0.0, 1.0)

    def default_priors(self, x):
        return {"mean": UniformPrior(0.0, 1.0), "concentration": LogNormalPrior(np.log(10.0), 1.5)}

    def moment_start(self, values, errors=None):
        # Method of moments, the measurement variance taken out:
        # var = m (1 - m) / (kappa + 1).
        v = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
        m = float(np.clip(np.mean(v), 0.02, 0.98))
        var = float(np.var(v)) - (0.0 if errors is None else float(np.mean(np.asarray(errors) ** 2)))
        k = m * (1 - m) / var - 1.0 if var > 0 else 10.0
        return np.array([m, float(np.clip(k, 0.5, 1000.0))])

    @staticmethod
    def shape_params(params):
        """(a, b) arrays from (mean, concentration) parameters (..., 2)."""
        params = np.asarray(params, dtype=float)
        m, k = params[..., 0], params[..., 1]
        return m * k, (1.0 - m) * k

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        m, k = _split(params, theta.ndim)
        a, b = m * k, (1.0 - m) * k
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = special.xlogy(a - 1, theta) + special.xlog1py(b - 1, -theta) - special.betaln(a, b)
        return np.where((theta >= 0) & (theta <= 1), lp, -np.inf)

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        m, k = _split(params, params.ndim - 1 + len(size))
        shape = params.shape[:-1] + size
        a, b = np.broadcast_to(m * k, shape), np.broadcast_to((1 - m) * k, shape)
        # Beta via two gammas in log space: stable for small a, b (where
        # numpy's beta sampler returns exact 0 or 1).
        lg_a = _log_gamma_rvs(a, rng)
        lg_b = _log_gamma_rvs(b, rng)
        return special.expit(lg_a - lg_b)

    def mean(self, params):
        return np.asarray(params, dtype=float)[..., 0]

    def latent_logpdf(self, v, params):
        # Density of v = logit(theta): a log s(v) + b log s(-v) - B(a, b),
        # smooth for every a, b > 0 (no endpoint singularity in v).
        v = np.asarray(v, dtype=float)
        m, k = _split(params, v.ndim)
        a, b = m * k, (1.0 - m) * k
        return a * special.log_expit(v) + b * special.log_expit(-v) - special.betaln(a, b)

    def latent_features(self, v):
        v = np.asarray(v, dtype=float)
        return (special.log_expit(v), special.log_expit(-v))

    def latent_logpdf_features(self, features, params):
        lsp, lsn = features
        m, k = _split(params, lsp.ndim)
        a, b = m * k, (1.0 - m) * k
        return a * lsp + b * lsn - special.betaln(a, b)

    def latent_grad_prec(self, v, params):
        v = np.asarray(v, dtype=float)
        m, k = _split(params, v.ndim)
        s_pos, s_neg = special.expit(v), special.expit(-v)
        # d/dv [a log s(v) + b log s(-v)] = a s(-v) - b s(v); curvature (a+b) s(v) s(-v).
        return m * k * s_neg - (1.0 - m) * k * s_pos, k * s_pos * s_neg

    def boundary_moments(self, dist, side, params):
        # D = theta ~ Beta(a, b) at the lower bound, D = 1 - theta ~ Beta(b, a)
        # at the upper one; E[D 1{D < d}] = a/(a+b) I_d(a+1, b).
        a, b = self.shape_params(params)
        if side == "upper":
            a, b = b, a
        with np.errstate(divide="ignore"):
            m0 = np.log(special.betainc(a, b, dist))
            m1 = np.log(a / (a + b)) + np.log(special.betainc(a + 1.0, b, dist))
        return m0, m1

    def boundary_quantile(self, u, dist, side, params):
        a, b = self.shape_params(params)
        if side == "upper":
            a, b = b, a
        return special.betaincinv(a, b, u * special.betainc(a, b, dist))

    def latent_moments(self, params):
        # Exact moments of logit(theta) for theta ~ Beta(a, b).
        a, b = self.shape_params(params)
        return special.digamma(a) - special.digamma(b), np.sqrt(
            special.polygamma(1, a) + special.polygamma(1, b)
        )


class TruncatedNormalFamily(PopulationFamily):
    """theta ~ N(mu, tau^2) truncated to [low, high].

    Same parameters and default priors as :class:`NormalFamily`; ``low``
    and ``high`` (either may be infinite, not both) are fixed.
    """

    name = "truncnormal"
    param_names = ("mu", "tau")
    transforms = ("identity", "log")

    def __init__(self, low=0.0, high=np.inf):
        low, high = float(low), float(high)
        if not high > low or (np.isinf(low) and np.isinf(high)):
            raise ValueError(
                f"truncnormal bounds must satisfy low < high with at least one finite, "
                f"got ({low}, {high})."
            )
        self.low, self.high = low, high
        self.support = (low, high)

    def __repr__(self):
        return f"TruncatedNormalFamily(low={self.low}, high={self.high})"

    def default_priors(self, x):
        return NormalFamily().default_priors(x)

    def moment_start(self, values, errors=None):
        m, tau = NormalFamily().moment_start(values, errors)
        return np.array([float(np.clip(m, *self.support)), tau])

    def _log_norm(self, mu, tau):
        a, b = (self.low - mu) / tau, (self.high - mu) / tau
        return _log_diff_ndtr(a, b)

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        mu, tau = _split(params, theta.ndim)
        z = (theta - mu) / tau
        lp = -0.5 * z * z - np.log(tau) - HALF_LOG2PI - self._log_norm(mu, tau)
        return np.where(self._in_support(theta), lp, -np.inf)

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        mu, tau = _split(params, params.ndim - 1 + len(size))
        shape = params.shape[:-1] + size
        a, b = (self.low - mu) / tau, (self.high - mu) / tau
        return stats.truncnorm.rvs(
            np.broadcast_to(a, shape), np.broadcast_to(b, shape),
            loc=np.broadcast_to(mu, shape), scale=np.broadcast_to(tau, shape),
            size=shape, random_state=rng,
        )

    def mean(self, params):
        params = np.asarray(params, dtype=float)
        mu, tau = params[..., 0], params[..., 1]
        a, b = (self.low - mu) / tau, (self.high - mu) / tau
        return stats.truncnorm.mean(a, b, loc=mu, scale=tau)

    def latent_moments(self, params):
        # Delta method around the (clipped) mode; only used to centre nodes.
        params = np.asarray(params, dtype=float)
        mu, tau = params[..., 0], params[..., 1]
        lo, hi = self.low, self.high
        width = tau if np.isinf(hi - lo) else np.minimum(tau, 0.5 * (hi - lo))
        c = np.clip(mu, lo + 0.5 * width, hi - 0.5 * width)
        v = self.to_latent(c)
        _, logjac = self.from_latent(v)
        return v, width / np.exp(logjac)


def _log_int_power(a1, lo_log, hi_log):
    """log of the integral of exp(a1 * u) du over [lo_log, hi_log] (= the
    integral of theta^(a1 - 1) dtheta over [e^lo_log, e^hi_log]), stable for
    a1 near 0 and of either sign; broadcasts."""
    a1 = np.asarray(a1, dtype=float)
    lo_log, hi_log = np.asarray(lo_log, dtype=float), np.asarray(hi_log, dtype=float)
    width = hi_log - lo_log
    t = a1 * width
    small = np.abs(t) < 1e-8
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # a1 > 0: a1 hi + log((1 - e^{-t}) / a1); a1 < 0: a1 lo + log((e^{t} - 1) / a1).
        pos = a1 * hi_log + np.log(-np.expm1(-t) / a1)
        neg = a1 * lo_log + np.log(np.expm1(t) / a1)
    out = np.where(a1 > 0, pos, neg)
    return np.where(small, np.log(width) + a1 * lo_log + 0.5 * t, out)


def _icdf_log_power(q, alpha, lo_log, hi_log):
    """u = log theta at CDF value q of theta^alpha on [e^lo_log, e^hi_log]:
    CDF(u) = (e^{a1 u} - e^{a1 lo}) / (e^{a1 hi} - e^{a1 lo}), a1 = alpha + 1."""
    a1 = alpha + 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = lo_log + np.log1p(q * np.expm1(a1 * (hi_log - lo_log))) / a1
    return np.where(np.abs(a1 * (hi_log - lo_log)) < 1e-8, lo_log + q * (hi_log - lo_log), u)


class PowerLawFamily(PopulationFamily):
    """theta ~ theta^alpha on [low, high], 0 < low < high < inf.

    The usual form of period and radius distributions (``dN/dP ~ P^alpha``).
    One parameter ``alpha`` (any real; ``alpha = -1`` is log-uniform),
    sampled as is. Default prior ``alpha ~ N(0, 3^2)``. Its latent variable
    is ``log theta`` on ``[log low, log high]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier._distributions import PowerLawFamily
    >>> fam = PowerLawFamily(1.0, 100.0)
    >>> round(float(np.exp(fam.logpdf(np.array([10.0]), np.array([-1.0])))[0] * 10 * np.log(100)), 6)
    1.0
    """

    name = "powerlaw"
    param_names = ("alpha",)
    transforms = ("identity",)

    def __init__(self, low=1.0, high=10.0):
        low, high = float(low), float(high)
        if not (0 < low < high < np.inf):
            raise ValueError(
                f"power-law bounds must satisfy 0 < low < high < inf, got ({low}, {high})."
            )
        self.low, self.high = low, high
        self.support = (low, high)

    def __repr__(self):
        return f"{type(self).__name__}(low={self.low}, high={self.high})"

    def default_priors(self, x):
        return {"alpha": NormalPrior(0.0, 3.0)}

    def _log_norm(self, alpha):
        return _log_int_power(alpha + 1.0, np.log(self.low), np.log(self.high))

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        (alpha,) = _split(params, theta.ndim)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = alpha * np.log(theta) - self._log_norm(alpha)
        return np.where(self._in_support(theta), out, -np.inf)

    def _icdf_log(self, q, alpha):
        """log theta at CDF value q (inverse CDF in u = log theta)."""
        return _icdf_log_power(q, alpha, np.log(self.low), np.log(self.high))

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        (alpha,) = _split(params, params.ndim - 1 + len(size))
        q = rng.uniform(size=params.shape[:-1] + size)
        return np.clip(np.exp(self._icdf_log(q, alpha)), self.low, self.high)

    def mean(self, params):
        alpha = np.asarray(params, dtype=float)[..., 0]
        return np.exp(self._log_norm(alpha + 1.0) - self._log_norm(alpha))

    # Latent variable: log theta on a bounded interval.
    def to_latent(self, theta):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.asarray(theta, dtype=float))

    def from_latent(self, v):
        v = np.asarray(v, dtype=float)
        return np.exp(v), v

    def latent_range(self, params):
        shape = np.shape(params)[:-1]
        return np.full(shape, np.log(self.low)), np.full(shape, np.log(self.high))

    def latent_moments(self, params):
        a, b = self.latent_range(params)
        return 0.5 * (a + b), (b - a) / np.sqrt(12.0)


class BrokenPowerLawFamily(PowerLawFamily):
    """theta ~ theta^alpha1 below ``break``, ~ theta^alpha2 above, on [low, high].

    Continuous at the break. Parameters ``alpha1``, ``alpha2`` (any real)
    and ``break`` (low < break < high, sampled as the logit of its position
    in ``log theta``). Default priors ``alpha1, alpha2 ~ N(0, 3^2)`` and
    ``break`` log-uniform on (low, high).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import integrate
    >>> from skhier._distributions import BrokenPowerLawFamily
    >>> fam = BrokenPowerLawFamily(1.0, 400.0)
    >>> pdf = lambda t: float(np.exp(fam.logpdf(np.array([t]), np.array([0.5, -1.5, 10.0]))[0]))
    >>> round(integrate.quad(pdf, 1.0, 400.0, points=[10.0])[0], 8)
    1.0
    """

    name = "brokenpowerlaw"
    param_names = ("alpha1", "alpha2", "break")
    transforms = ("identity", "identity", "identity")

    def default_priors(self, x):
        return {"alpha1": NormalPrior(0.0, 3.0), "alpha2": NormalPrior(0.0, 3.0),
                "break": LogUniformPrior(self.low, self.high)}

    def _pieces(self, alpha1, alpha2, brk):
        L, H = np.log(self.low), np.log(self.high)
        with np.errstate(divide="ignore", invalid="ignore"):
            lb = np.log(brk)
            lb = np.where((brk > self.low) & (brk < self.high), lb, np.nan)
            # p = theta^a1 below, b^(a1 - a2) theta^a2 above (continuous).
            z1 = _log_int_power(alpha1 + 1.0, L, lb)
            z2 = (alpha1 - alpha2) * lb + _log_int_power(alpha2 + 1.0, lb, H)
        return lb, np.logaddexp(z1, z2)

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        a1, a2, brk = _split(params, theta.ndim)
        lb, lz = self._pieces(a1, a2, brk)
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log(theta)
            out = np.where(lt < lb, a1 * lt, (a1 - a2) * lb + a2 * lt) - lz
        out = np.where(self._in_support(theta), out, -np.inf)
        return np.where(np.isfinite(out), out, -np.inf)

    def rvs(self, params, size=(), random_state=None):
        rng = _rng(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        a1, a2, brk = _split(params, params.ndim - 1 + len(size))
        L, H = np.log(self.low), np.log(self.high)
        lb, lz = self._pieces(a1, a2, brk)
        p_low = np.exp(_log_int_power(a1 + 1.0, L, lb) - lz)
        shape = params.shape[:-1] + size
        q = rng.uniform(size=shape)
        below = rng.uniform(size=shape) < p_low
        u = np.where(below, _icdf_log_power(q, a1, L, lb), _icdf_log_power(q, a2, lb, H))
        return np.clip(np.exp(u), self.low, self.high)

    def mean(self, params):
        params = np.asarray(params, dtype=float)
        a1, a2, brk = params[..., 0], params[..., 1], params[..., 2]
        L, H = np.log(self.low), np.log(self.high)
        lb, lz = self._pieces(a1, a2, brk)
        m1 = _log_int_power(a1 + 2.0, L, lb)
        m2 = (a1 - a2) * lb + _log_int_power(a2 + 2.0, lb, H)
        return np.exp(np.logaddexp(m1, m2) - lz)

    def latent_breakpoints(self, params):
        params = np.asarray(params, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return [np.log(np.clip(params[..., 2], self.low, self.high))]


FAMILIES = {
    "normal": NormalFamily,
    "lognormal": LogNormalFamily,
    "beta": BetaFamily,
    "truncnormal": TruncatedNormalFamily,
}


def get_family(distribution, bounds=None) -> PopulationFamily:
    """The family instance for a ``distribution`` name (or a family instance).

    ``bounds`` (low, high) applies to ``"truncnormal"`` only.
    """
    if isinstance(distribution, PopulationFamily):
        return distribution
    if distribution not in FAMILIES:
        raise ValueError(
            f"distribution must be one of {sorted(FAMILIES)} or a PopulationFamily, "
            f"got {distribution!r}."
        )
    if distribution == "truncnormal":
        return TruncatedNormalFamily(*(bounds if bounds is not None else (0.0, np.inf)))
    return FAMILIES[distribution]()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _rng(random_state):
    """A numpy Generator passes through; anything else goes to check_random_state."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)


def _location_spread(x):
    """Median and robust spread of data (1 when degenerate)."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        return 0.0, 1.0
    m = float(np.median(x))
    s = 1.4826 * float(np.median(np.abs(x - m)))
    if not s > 0:
        s = float(np.std(x))
    if not s > 0:
        s = max(abs(m), 1.0)
    return m, s


def _log_gamma_rvs(shape, rng):
    """log of Gamma(shape, 1) draws, accurate for tiny shapes.

    Uses Gamma(a) = Gamma(a + 1) U^(1/a) (Marsaglia & Tsang 2000, note).
    """
    shape = np.asarray(shape, dtype=float)
    g = rng.standard_gamma(shape + 1.0)
    u = rng.uniform(size=shape.shape)
    return np.log(g) + np.log(u) / shape


def _log_diff_ndtr(a, b):
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    # Work in the tail where the difference is computed without cancellation.
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    lhi = special.log_ndtr(hi)
    llo = special.log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lhi + np.log1p(-np.exp(llo - lhi))


def density_band(family, grid, params, *, level=0.9):
    """Posterior median and credible band of the population density on a grid.

    Parameters
    ----------
    family : PopulationFamily
    grid : array of shape (n_grid,)
        Values of theta.
    params : array of shape (n_draws, p)
        Posterior draws of the population parameters.
    level : float, default=0.9
        Probability content of the central band.

    Returns
    -------
    median, lower, upper : ndarrays of shape (n_grid,)
        Pointwise posterior median and band of p(theta | alpha).

    Examples
    --------
    >>> import numpy as np
    >>> from skhier._distributions import NormalFamily, density_band
    >>> draws = np.array([[0.0, 1.0], [0.1, 1.1], [-0.1, 0.9]])
    >>> med, lo, hi = density_band(NormalFamily(), np.linspace(-3, 3, 7), draws)
    >>> bool(np.all(lo <= med) and np.all(med <= hi))
    True
    """
    grid = np.asarray(grid, dtype=float).ravel()
    params = np.atleast_2d(np.asarray(params, dtype=float))
    dens = family.pdf(grid[None, :], params)
    q = 0.5 * (1.0 - level)
    lower, median, upper = np.quantile(dens, [q, 0.5, 1.0 - q], axis=0)
    return median, lower, upper


def population_density(family, params, grid, values, *, level=0.9, n_grid=200):
    """The population densities' posterior band, as the estimators return it.

    ``grid`` None: ``family.default_grid(values, n_grid)``. Returns a
    ``Bunch`` with ``grid``, ``median``, ``lower``, ``upper`` (see
    :func:`density_band`) and ``level``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    if grid is None:
        grid = family.default_grid(values, n_grid)
    grid = np.asarray(grid, dtype=float).ravel()
    median, lower, upper = density_band(family, grid, params, level=level)
    return Bunch(grid=grid, median=median, lower=lower, upper=upper, level=level)


# ---------------------------------------------------------------------------
# User-defined and histogram populations (PosteriorSamplesPopulation)
# ---------------------------------------------------------------------------
class CustomPopulation(PopulationFamily):
    """A population given by a user-supplied log-density.

    Parameters
    ----------
    logpdf : callable
        ``logpdf(theta, *params) -> log p(theta | params)``, vectorised:
        ``theta`` is an array and each parameter an array that broadcasts
        against it. Must be **normalised** over ``bounds`` for every
        parameter value (a check by quadrature at the starting point warns
        otherwise). Must be picklable (a module-level function) for the
        estimator to pickle.
    param_names : sequence of str
        Names of the population parameters.
    priors : dict
        Proper prior for every parameter: name -> :class:`Prior` or tuple
        ``(kind, *args)`` (see :func:`skhier._distributions.parse_prior`).
    init : sequence of float
        Starting values of the parameters for the MAP search.
    transforms : sequence of {"identity", "log", "logit"}, default=None
        Map from each parameter to the sampler's unconstrained coordinate:
        ``"log"`` for positive, ``"logit"`` for (0, 1) parameters. ``None``
        means ``"identity"`` for all.
    bounds : (float, float), default=(-inf, inf)
        Support of theta; samples outside it get zero population density.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import CustomPopulation
    >>> def power_law(theta, gamma):  # p(theta) = gamma theta^(gamma - 1) on (0, 1)
    ...     return np.log(gamma) + (gamma - 1) * np.log(theta)
    >>> fam = CustomPopulation(power_law, ["gamma"], priors={"gamma": ("lognormal", 0, 1)},
    ...                        init=[1.0], transforms=["log"], bounds=(0, 1))
    >>> float(np.exp(fam.logpdf(np.array([0.5]), np.array([2.0])))[0])
    1.0
    """

    name = "custom"

    def __init__(self, logpdf, param_names, *, priors, init, transforms=None, bounds=(-np.inf, np.inf)):
        if not callable(logpdf):
            raise TypeError(f"logpdf must be callable, got {type(logpdf).__name__}.")
        names = tuple(str(n) for n in param_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"param_names must be distinct and non-empty, got {param_names!r}.")
        transforms = ("identity",) * len(names) if transforms is None else tuple(transforms)
        if len(transforms) != len(names) or any(
            t not in ("identity", "log", "logit") for t in transforms
        ):
            raise ValueError(
                "transforms must give one of 'identity', 'log', 'logit' per parameter, "
                f"got {transforms!r}."
            )
        lo, hi = (float(b) for b in bounds)
        if not hi > lo:
            raise ValueError(f"bounds must satisfy low < high, got {bounds!r}.")
        init = np.asarray(init, dtype=float)
        if init.shape != (len(names),) or not np.all(np.isfinite(init)):
            raise ValueError(f"init must hold one finite value per parameter, got {init!r}.")
        self.logpdf_fn = logpdf
        self.param_names = names
        self.transforms = transforms
        self.support = (lo, hi)
        self.init = tuple(init.tolist())
        if not isinstance(priors, dict) or set(priors) != set(names):
            raise ValueError(
                f"priors must be a dict with a prior for each of {list(names)}, got {priors!r}."
            )
        self.priors = self.check_priors(priors)

    def __repr__(self):
        return f"CustomPopulation({getattr(self.logpdf_fn, '__name__', 'logpdf')}, {list(self.param_names)})"

    def __hash__(self):
        return id(self)

    def moment_start(self, values, errors=None):
        return np.asarray(self.init, dtype=float)

    def default_priors(self, x):
        return dict(self.priors)

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        parts = _split(params, theta.ndim)
        lo, hi = self.support
        inside = (theta >= lo) & (theta <= hi)
        with np.errstate(all="ignore"):
            lp = np.asarray(self.logpdf_fn(np.where(inside, theta, 0.5 * (lo + hi) if
                                                    np.isfinite(lo + hi) else 0.0), *parts), dtype=float)
        return np.where(inside, lp, -np.inf)

    def check_normalised(self, params):
        """Warn when the density does not integrate to 1 at ``params``."""
        lo, hi = self.support
        params = np.asarray(params, dtype=float)

        def f(t):
            return float(np.exp(self.logpdf(np.array([t]), params)[0]))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total, err = integrate.quad(f, lo, hi, limit=200)
        if np.isfinite(total) and err < 1e-3 and abs(total - 1.0) > 1e-2:
            warn(
                f"The custom population density integrates to {total:.4g}, not 1, over "
                f"{self.support} at the starting parameters {params.tolist()}; the "
                "population log-density must be normalised for every parameter value.",
                UserWarning,
            )


class HistogramFamily(PopulationFamily):
    """Piecewise-constant population on equal-width bins.

    The parameters are the bin probabilities ``w`` (on the simplex); the
    density is ``w_b / width`` inside bin ``b`` and 0 outside ``[low, high]``.
    Only the density methods are used by the estimator (the sampler works
    in the additive log-ratio coordinates of ``w``).
    """

    name = "histogram"

    def __init__(self, low, high, n_bins):
        self.low, self.high, self.n_bins = float(low), float(high), int(n_bins)
        self.support = (self.low, self.high)
        self.param_names = tuple(f"w[{b}]" for b in range(self.n_bins))
        self.transforms = ()

    def __repr__(self):
        return f"HistogramFamily({self.low}, {self.high}, {self.n_bins})"

    @property
    def edges(self):
        return np.linspace(self.low, self.high, self.n_bins + 1)

    @property
    def width(self):
        return (self.high - self.low) / self.n_bins

    def bin_index(self, theta):
        """Bin of each theta (the last bin is closed), -1 outside the bounds."""
        theta = np.asarray(theta, dtype=float)
        idx = np.floor((theta - self.low) / self.width).astype(np.intp)
        idx = np.where(theta == self.high, self.n_bins - 1, idx)
        return np.where((theta >= self.low) & (theta <= self.high), idx, -1)

    def logpdf(self, theta, params):
        theta = np.asarray(theta, dtype=float)
        params = np.asarray(params, dtype=float)
        batch = params.shape[:-1]
        with np.errstate(divide="ignore"):
            table = np.log(params) - np.log(self.width)
        table = table.reshape(batch + (1,) * (theta.ndim - len(batch)) + (self.n_bins,))
        idx = self.bin_index(theta)
        shape = np.broadcast_shapes(theta.shape, table.shape[:-1])
        gathered = np.take_along_axis(
            np.broadcast_to(table, shape + (self.n_bins,)),
            np.broadcast_to(np.maximum(idx, 0), shape)[..., None],
            axis=-1,
        )[..., 0]
        return np.where(np.broadcast_to(idx, shape) >= 0, gathered, -np.inf)

    def mean(self, params):
        centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        return np.asarray(params, dtype=float) @ centres

    def rvs(self, params, size=(), random_state=None):
        rng = check_random_state(random_state)
        params = np.asarray(params, dtype=float)
        size = (size,) if np.ndim(size) == 0 else tuple(size)
        shape = params.shape[:-1] + size
        cum = np.cumsum(params, axis=-1)
        cum = cum.reshape(params.shape[:-1] + (1,) * len(size) + (self.n_bins,))
        u = rng.uniform(size=shape)[..., None] * cum[..., -1:]
        b = np.minimum((cum < u).sum(-1), self.n_bins - 1)
        return self.low + self.width * (b + rng.uniform(size=shape))


# ---------------------------------------------------------------------------
# Exponential-family features of the parametric populations
#   log p(theta | alpha) = eta(alpha) . T(theta) - A(alpha) + log h(theta):
# PosteriorSamplesPopulation computes T once per fit (its fast path).
# ---------------------------------------------------------------------------
#: Clip samples this close to a Beta population's bounds (log 0 is -inf).
_BETA_EPS = 1e-12


class GaussianFeatures:
    """Normal (optionally truncated) population in ``z = (T(theta) - loc) / scale``.

    ``T`` is the identity (normal, truncated normal) or log (log-normal).
    ``log p = eta1 z + eta2 z^2 - A + log h(theta)``, with
    ``eta = (mu_z / tau_z^2, -1 / (2 tau_z^2))``,
    ``A = mu_z^2 / (2 tau_z^2) + log tau_z + log(2 pi) / 2 + log scale (+ log Z)``
    and ``log h = -log theta`` for the log-normal (Jacobian), ``-inf`` outside
    the support.
    """

    n_features = 2

    def __init__(self, family, loc, scale):
        self.family = family
        self.log = isinstance(family, LogNormalFamily)
        self.trunc = isinstance(family, TruncatedNormalFamily)
        self.loc, self.scale = float(loc), float(scale)

    def _t(self, theta):
        if not self.log:
            return theta
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.where(theta > 0, theta, 1.0))

    def features(self, theta):
        z = (self._t(theta) - self.loc) / self.scale
        return np.stack([z, z * z], axis=-1)

    def base(self, theta):
        lo, hi = self.family.support
        inside = (theta >= lo) & (theta <= hi)
        if self.log:
            inside &= theta > 0
            val = -self._t(theta)
        else:
            val = np.zeros_like(theta)
        return np.where(inside, val, -np.inf)

    def natural(self, params):
        """(eta (S, 2), A (S,)) from constrained parameters (S, 2)."""
        mu_z = (params[:, 0] - self.loc) / self.scale
        tau_z = params[:, 1] / self.scale
        prec = 1.0 / tau_z**2
        eta = np.stack([mu_z * prec, -0.5 * prec], axis=-1)
        a = 0.5 * mu_z**2 * prec + np.log(tau_z) + HALF_LOG2PI + np.log(self.scale)
        if self.trunc:
            a = a + self.family._log_norm(params[:, 0], params[:, 1])
        return eta, a


class BetaFeatures:
    """Beta(a, b): ``log p = (a - 1) log theta + (b - 1) log(1 - theta) - log B(a, b)``."""

    n_features = 2

    def __init__(self, family):
        self.family = family

    def features(self, theta):
        t = np.clip(theta, _BETA_EPS, 1.0 - _BETA_EPS)
        return np.stack([np.log(t), np.log1p(-t)], axis=-1)

    def base(self, theta):
        return np.where((theta >= 0) & (theta <= 1), 0.0, -np.inf)

    def natural(self, params):
        a, b = self.family.shape_params(params)
        return np.stack([a - 1.0, b - 1.0], axis=-1), special.betaln(a, b)


def feature_map(family, values):
    """The exponential-family features of ``family`` (None: generic path)."""
    t = type(family)
    if t in (NormalFamily, TruncatedNormalFamily):
        loc, scale = _location_spread(values)
        return GaussianFeatures(family, loc, scale)
    if t is LogNormalFamily:
        pos = values[values > 0]
        loc, scale = _location_spread(np.log(pos)) if pos.size else (0.0, 1.0)
        return GaussianFeatures(family, loc, scale)
    if t is BetaFamily:
        return BetaFeatures(family)
    return None
