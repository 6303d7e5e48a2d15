"""Simulators for the population models, with known truth."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "make_population",
    "make_velocity_dispersion",
    "make_eccentricities",
    "make_periods",
]


def _err(rng, err, n, scale=None):
    if np.ndim(err) == 0:
        out = np.full(n, float(err))
    else:
        out = rng.uniform(err[0], err[1], size=n)
    return out if scale is None else out * scale


def make_population(
    n_samples: int = 100,
    *,
    distribution: str = "normal",
    params=(0.0, 1.0),
    err=(0.5, 1.0),
    relative_err: bool = False,
    outlier_fraction: float = 0.0,
    outlier_mean: float = 0.0,
    outlier_std: float = 10.0,
    random_state=None,
) -> Bunch:
    """Noisy measurements of true values drawn from a population.

    The generative model of :class:`~skhier.PopulationModel`: true values
    ``theta_i ~ p(theta | params)`` for the chosen ``distribution``
    (``params`` in the order of its parameters: normal ``(mu, tau)``,
    lognormal ``(mu, sigma)``, beta ``(mean, concentration)``); a fraction
    ``outlier_fraction`` of the objects are replaced by background values
    ``N(outlier_mean, outlier_std^2)``; measurements
    ``x_i = theta_i + e_i * N(0, 1)``.

    Parameters
    ----------
    n_samples : int, default=100
    distribution : {"normal", "lognormal", "beta"}, default="normal"
    params : tuple of float
    err : float or (low, high), default=(0.5, 1.0)
        Measurement standard deviations, fixed or drawn uniformly per object.
    relative_err : bool, default=False
        Multiply the errors by each true value (fractional errors). The
        errors then carry information about the true values, which a model
        that conditions on the quoted errors (as
        :class:`~skhier.PopulationModel` does) ignores; keep the default for
        calibration studies.
    outlier_fraction : float in [0, 1), default=0
    outlier_mean, outlier_std : float
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n, 1) measurements, ``X_err`` (n, 1), ``theta`` (n,) true
        values, ``is_outlier`` (n,) bool, ``params``, ``distribution``.

    Examples
    --------
    >>> from skhier.datasets import make_population
    >>> d = make_population(50, distribution="beta", params=(0.3, 4.0), err=0.05,
    ...                     random_state=0)
    >>> d.X.shape, d.X_err.shape
    ((50, 1), (50, 1))
    """
    from .._distributions import get_family

    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction must be in [0, 1), got {outlier_fraction}.")
    rng = check_random_state(random_state)
    family = get_family(distribution)
    params = np.asarray(params, dtype=float)
    if params.shape != (family.n_params,):
        raise ValueError(
            f"params must hold {family.n_params} values {family.param_names} for "
            f"distribution={distribution!r}, got {params.tolist()}."
        )
    theta = family.rvs(params, n_samples, random_state=rng)
    is_outlier = rng.uniform(size=n_samples) < outlier_fraction
    theta = np.where(
        is_outlier, outlier_mean + outlier_std * rng.standard_normal(n_samples), theta
    )
    e = _err(rng, err, n_samples, np.abs(theta) if relative_err else None)
    x = theta + e * rng.standard_normal(n_samples)
    return Bunch(
        X=x[:, None],
        X_err=e[:, None],
        theta=theta,
        is_outlier=is_outlier,
        params=dict(zip(family.param_names, params.tolist(), strict=False)),
        distribution=distribution,
    )


def make_velocity_dispersion(
    n_members: int = 60,
    n_interlopers: int = 15,
    *,
    mean_velocity: float = 0.0,
    dispersion: float = 750.0,
    interloper_range: float = 4000.0,
    err=(50.0, 150.0),
    random_state=None,
) -> Bunch:
    """Line-of-sight velocities of a galaxy cluster with interlopers.

    Members: velocities ``N(mean_velocity, dispersion^2)`` (km/s, relative
    to the cluster's systemic velocity); interlopers: foreground/background
    galaxies uniform over ``mean_velocity ± interloper_range``. Each
    velocity (from a redshift) has a Gaussian error drawn from ``err``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n, 1) measured velocities, ``X_err`` (n, 1), ``v_true``,
        ``is_interloper`` (bool), ``dispersion``, ``mean_velocity``.

    Examples
    --------
    >>> from skhier.datasets import make_velocity_dispersion
    >>> d = make_velocity_dispersion(random_state=0)
    >>> d.X.shape, int(d.is_interloper.sum())
    ((75, 1), 15)
    """
    rng = check_random_state(random_state)
    v_mem = mean_velocity + dispersion * rng.standard_normal(n_members)
    v_int = mean_velocity + rng.uniform(-interloper_range, interloper_range, n_interlopers)
    v = np.concatenate([v_mem, v_int])
    is_int = np.r_[np.zeros(n_members, bool), np.ones(n_interlopers, bool)]
    order = rng.permutation(v.size)
    v, is_int = v[order], is_int[order]
    e = _err(rng, err, v.size)
    x = v + e * rng.standard_normal(v.size)
    return Bunch(
        X=x[:, None], X_err=e[:, None], v_true=v, is_interloper=is_int,
        dispersion=dispersion, mean_velocity=mean_velocity,
    )


def make_eccentricities(
    n_samples: int = 200, *, a: float = 0.867, b: float = 3.03, err=(0.02, 0.15),
    random_state=None,
) -> Bunch:
    """Noisy orbital eccentricities from a Beta(a, b) population.

    The default (a, b) is Kipping's (2013, MNRAS 434, L51) fit to radial
    velocity planets. Measured values ``e_true + N(0, err^2)`` are not
    clipped: estimates outside [0, 1] are valid noisy data.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X``, ``X_err``, ``theta`` (true eccentricities), ``a``, ``b``,
        ``params`` as (mean, concentration).

    Examples
    --------
    >>> from skhier.datasets import make_eccentricities
    >>> make_eccentricities(10, random_state=0).X.shape
    (10, 1)
    """
    d = make_population(
        n_samples, distribution="beta", params=(a / (a + b), a + b), err=err,
        random_state=random_state,
    )
    d.a, d.b = a, b
    return d


def make_periods(
    n_samples: int = 200, *, log_median: float = np.log(30.0), sigma: float = 1.0,
    err=(0.02, 0.2), random_state=None,
) -> Bunch:
    """Periods from a log-normal population, with Gaussian errors.

    ``log P ~ N(log_median, sigma^2)``; each measurement has a standard
    deviation of ``err`` (fixed or drawn uniformly) times the population
    median ``exp(log_median)``, independently of the object's own period
    (errors that scale with the true value would tell the model more than
    it is told).

    Examples
    --------
    >>> from skhier.datasets import make_periods
    >>> make_periods(10, random_state=0).X.shape
    (10, 1)
    """
    scale = float(np.exp(log_median))
    err = err * scale if np.ndim(err) == 0 else (err[0] * scale, err[1] * scale)
    return make_population(
        n_samples, distribution="lognormal", params=(log_median, sigma), err=err,
        random_state=random_state,
    )
