"""Simulated surveys that detect only some objects, with known truth."""

from __future__ import annotations

import numpy as np
from scipy import special
from sklearn.utils import Bunch, check_random_state

from .._distributions import LogNormalFamily, PowerLawFamily
from ..selection import DetectionProbability, Injections, Window

__all__ = ["make_transit_periods", "make_selected_velocities", "transit_detection_probability"]


def transit_detection_probability(period, *, period_min=1.0, snr_one_day=60.0,
                                  snr_threshold=7.1):
    """Detection probability of a transiting-planet survey, for orbital periods.

    The geometric transit probability ``(period / period_min)^(-2/3)``
    (R_star / a, Kepler's third law; capped at 1) times a detection
    efficiency: the signal-to-noise ratio of the folded transits falls as
    ``sqrt(number of transits) ~ period^(-1/2)``, ``snr = snr_one_day *
    period^(-1/2)``, and a signal is recovered with probability
    ``Phi(snr - snr_threshold)``. Periods in days.

    Examples
    --------
    >>> from skhier.datasets import transit_detection_probability
    >>> [round(float(transit_detection_probability(p)), 2) for p in (1.0, 8.0, 200.0)]
    [1.0, 0.25, 0.0]
    """
    p = np.asarray(period, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.minimum((p / period_min) ** (-2.0 / 3.0), 1.0)
        snr = snr_one_day / np.sqrt(p)
    return np.where(p > 0, geometric * special.ndtr(snr - snr_threshold), 0.0)


def make_transit_periods(
    n_planets: int = 3000,
    *,
    distribution: str = "lognormal",
    params=(2.302585092994046, 1.0),  # log P ~ N(log 10 d, 1)
    period_range=(0.5, 500.0),
    relative_err: float = 0.02,
    n_injections: int = 0,
    snr_one_day: float = 60.0,
    random_state=None,
) -> Bunch:
    """Orbital periods of the planets a transit survey detects.

    ``n_planets`` true periods are drawn from the population (log-normal:
    ``params = (mu, sigma)`` of log P; power law ``dN/dP ~ P^alpha`` on
    ``period_range``: ``params = (alpha,)``); each is detected with
    :func:`transit_detection_probability` and the detected ones are measured
    with a relative error ``relative_err``. With ``n_injections > 0``, an
    injection-recovery set of the same survey is returned too: periods drawn
    log-uniformly over ``period_range``, each detected by the same process.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_detected, 1) measured periods [days] and ``X_err`` their
        errors; ``true_period`` of the detected planets; ``all_periods`` and
        ``detected`` (bool) for every simulated planet; ``selection``, a
        :class:`~skhier.selection.DetectionProbability` of the survey;
        ``injections`` (an :class:`~skhier.selection.Injections`, or None);
        ``params`` and ``distribution``, the truth.

    Examples
    --------
    >>> from skhier.datasets import make_transit_periods
    >>> d = make_transit_periods(2000, random_state=0)
    >>> d.X.shape[0] < 2000 and d.X.shape[1] == 1
    True
    """
    rng = check_random_state(random_state)
    params = np.atleast_1d(np.asarray(params, dtype=float))
    lo, hi = map(float, period_range)
    if distribution == "lognormal":
        fam = LogNormalFamily()
    elif distribution == "powerlaw":
        fam = PowerLawFamily(lo, hi)
    else:
        raise ValueError(f"distribution must be 'lognormal' or 'powerlaw', got {distribution!r}.")

    def pdet(p):
        return transit_detection_probability(p, snr_one_day=snr_one_day)

    periods = fam.rvs(params, n_planets, random_state=rng)
    # The geometric probability is capped at 1 below 1 day: a kink there.
    detected = rng.uniform(size=n_planets) < pdet(periods)
    true = periods[detected]
    err = relative_err * true
    X = true + err * rng.standard_normal(true.size)
    injections = None
    if n_injections:
        v = np.exp(rng.uniform(np.log(lo), np.log(hi), n_injections))
        found = rng.uniform(size=n_injections) < pdet(v)
        injections = Injections(v, found, -np.log(v) - np.log(np.log(hi / lo)))
    return Bunch(X=X[:, None], X_err=err[:, None], true_period=true, all_periods=periods,
                 detected=detected, selection=DetectionProbability(pdet, breakpoints=(1.0,)),
                 injections=injections, params=params, distribution=distribution)


def make_selected_velocities(
    n_galaxies: int = 400,
    *,
    mean: float = 0.0,
    dispersion: float = 800.0,
    window=(-1000.0, 1000.0),
    err=(50.0, 150.0),
    random_state=None,
) -> Bunch:
    """Line-of-sight velocities of a galaxy cluster seen through a window.

    True velocities ``~ N(mean, dispersion^2)`` [km/s], measured with
    errors uniform in ``err``; only measurements inside ``window`` are kept
    (a spectroscopic survey that rejects velocities beyond a cut to keep
    out the field, or whose spectrograph covers a limited range): a
    truncated sample, which makes the dispersion look smaller.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_kept, 1) and ``X_err``; ``selection``, the
        :class:`~skhier.selection.Window` on the measured velocities;
        ``n_simulated``; the truth ``mean`` and ``dispersion``.

    Examples
    --------
    >>> from skhier.datasets import make_selected_velocities
    >>> d = make_selected_velocities(500, random_state=0)
    >>> bool(abs(d.X).max() <= 1000.0)
    True
    """
    rng = check_random_state(random_state)
    v = rng.normal(mean, dispersion, n_galaxies)
    e = rng.uniform(err[0], err[1], n_galaxies) if np.ndim(err) else np.full(n_galaxies, err)
    x = v + e * rng.standard_normal(n_galaxies)
    keep = (x >= window[0]) & (x <= window[1])
    return Bunch(X=x[keep, None], X_err=e[keep, None], selection=Window(*window, on="measured"),
                 n_simulated=n_galaxies, mean=mean, dispersion=dispersion)
