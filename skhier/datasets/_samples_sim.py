"""Simulated per-object posterior samples with a known population.

Each simulator draws true values from a population, a noisy measurement of
each, and then exact posterior samples of every object's true value under a
stated interim prior — the input of
:class:`~skhier.PosteriorSamplesPopulation`. Posteriors that are not
Gaussian are sampled by inverting their cumulative distribution, tabulated
on a fine grid (4 097 points, linear interpolation), so the samples follow
the stated posterior to well below their Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_eccentricity_samples", "make_stellar_age_samples"]

_N_GRID = 4097


def _grid_posterior_samples(log_post, grid, n_samples, rng):
    """Inverse-CDF draws from densities tabulated as ``log_post`` (n, G) on ``grid``."""
    lp = log_post - log_post.max(axis=1, keepdims=True)
    dens = np.exp(lp)
    # Trapezoid cumulative integral; linear interpolation of the inverse CDF.
    cells = 0.5 * (dens[:, 1:] + dens[:, :-1]) * np.diff(grid)[None, :]
    cdf = np.concatenate([np.zeros((len(dens), 1)), np.cumsum(cells, axis=1)], axis=1)
    cdf /= cdf[:, -1:]
    u = rng.uniform(size=(len(dens), n_samples))
    out = np.empty_like(u)
    for i in range(len(dens)):  # one interpolation per object, vectorised over samples
        out[i] = np.interp(u[i], cdf[i], grid)
    return out


def make_eccentricity_samples(
    n_planets: int = 200,
    n_samples: int = 500,
    *,
    a: float = 0.867,
    b: float = 3.03,
    err=(0.05, 0.2),
    interim_prior=None,
    random_state=None,
) -> Bunch:
    """Per-planet eccentricity posterior samples from a Beta(a, b) population.

    True eccentricities ``e ~ Beta(a, b)``; each planet's fit is summarised
    as a measurement ``e_obs ~ N(e, err^2)`` (a simple stand-in for a
    light-curve or radial-velocity fit; ``err`` per planet drawn uniformly
    from the given range), and its posterior under the interim prior on
    [0, 1] is sampled exactly: with the default flat interim prior it is
    ``N(e_obs, err^2)`` truncated to [0, 1].

    The default (a, b) = (0.867, 3.03) is Kipping's (2013, MNRAS 434, L51)
    fit to the eccentricities of radial-velocity planets.

    Parameters
    ----------
    n_planets : int, default=200
    n_samples : int, default=500
        Posterior samples per planet.
    a, b : float
        Shape parameters of the true population.
    err : float or (low, high), default=(0.05, 0.2)
        Measurement errors, fixed or drawn uniformly per planet.
    interim_prior : (float, float) or None, default=None
        Shape parameters (a0, b0) of a Beta interim prior under which the
        posterior samples are drawn; None means flat (Beta(1, 1)).
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_planets, n_samples) posterior samples; ``interim_log_prior``
        (n_planets, n_samples) log interim prior at each sample (zeros when
        flat); ``theta`` true eccentricities; ``e_obs``, ``err``; ``a``,
        ``b`` and ``params`` = (mean, concentration) of the population.

    Examples
    --------
    >>> from skhier.datasets import make_eccentricity_samples
    >>> data = make_eccentricity_samples(5, 100, random_state=0)
    >>> data.X.shape, bool(((data.X >= 0) & (data.X <= 1)).all())
    ((5, 100), True)
    """
    rng = check_random_state(random_state)
    e_true = rng.beta(a, b, n_planets)
    err = np.asarray(err, dtype=float)
    sig = rng.uniform(err[0], err[1], n_planets) if err.ndim else np.full(n_planets, float(err))
    e_obs = e_true + sig * rng.standard_normal(n_planets)
    if interim_prior is None:
        lo, hi = (0.0 - e_obs) / sig, (1.0 - e_obs) / sig
        X = stats.truncnorm.rvs(
            lo[:, None], hi[:, None], loc=e_obs[:, None], scale=sig[:, None],
            size=(n_planets, n_samples), random_state=rng,
        )
        log_p0 = np.zeros_like(X)
    else:
        a0, b0 = (float(v) for v in interim_prior)
        # Grid in logit(e) so that mass piling up at 0 or 1 is resolved.
        v = np.linspace(-25.0, 25.0, _N_GRID)
        g = special.expit(v)
        log_jac = special.log_expit(v) + special.log_expit(-v)
        lp = (stats.norm.logpdf(e_obs[:, None], g[None], sig[:, None])
              + stats.beta.logpdf(g, a0, b0)[None] + log_jac[None])
        X = special.expit(_grid_posterior_samples(lp, v, n_samples, rng))
        log_p0 = stats.beta.logpdf(np.clip(X, 1e-300, 1 - 1e-16), a0, b0)
    return Bunch(
        X=X, interim_log_prior=log_p0, theta=e_true, e_obs=e_obs, err=sig,
        a=a, b=b, params=(a / (a + b), a + b),
    )


def make_stellar_age_samples(
    n_stars: int = 300,
    n_samples: int = 500,
    *,
    median_age: float = 3.0,
    log_age_spread: float = 0.3,
    err_dex=(0.1, 0.3),
    max_age: float = 13.8,
    random_state=None,
) -> Bunch:
    """Per-star age posterior samples (Gyr) from a log-normal age population.

    True ages follow ``log(age) ~ N(log median_age, log_age_spread^2)``
    (natural log), truncated at ``max_age``. Each star's isochrone fit is
    summarised as a measurement of ``log10(age)`` with an error of
    ``err_dex`` dex; its posterior is computed under a flat interim prior in
    age on (0, max_age] (what an isochrone fitter with a uniform age prior
    returns: skewed towards old ages, because the prior is flat in age, not
    in log age) and sampled exactly.

    Parameters
    ----------
    n_stars : int, default=300
    n_samples : int, default=500
    median_age : float, default=3.0
        Median of the population, Gyr.
    log_age_spread : float, default=0.3
        Standard deviation of the natural log of age in the population.
    err_dex : float or (low, high), default=(0.1, 0.3)
        Per-star error of the log10 age measurement.
    max_age : float, default=13.8
        Upper end of the interim prior (Gyr).
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_stars, n_samples) age samples in Gyr; ``interim_log_prior``
        (zeros: flat in age); ``theta`` true ages; ``log10_age_obs``,
        ``err_dex``; ``params`` = (mu, sigma) of the log-normal population.

    Examples
    --------
    >>> from skhier.datasets import make_stellar_age_samples
    >>> data = make_stellar_age_samples(4, 50, random_state=0)
    >>> data.X.shape, bool((data.X > 0).all() and (data.X <= 13.8).all())
    ((4, 50), True)
    """
    rng = check_random_state(random_state)
    mu = np.log(median_age)
    ages = np.exp(mu + log_age_spread * rng.standard_normal(n_stars))
    while np.any(ages > max_age):  # truncate by redrawing
        bad = ages > max_age
        ages[bad] = np.exp(mu + log_age_spread * rng.standard_normal(int(bad.sum())))
    err = np.asarray(err_dex, dtype=float)
    sig = rng.uniform(err[0], err[1], n_stars) if err.ndim else np.full(n_stars, float(err))
    obs = np.log10(ages) + sig * rng.standard_normal(n_stars)
    # Posterior in age on a grid in log(age) (resolves young ages), flat in age.
    lg = np.linspace(np.log(1e-4), np.log(max_age), _N_GRID)
    age = np.exp(lg)
    lp = stats.norm.logpdf(obs[:, None], np.log10(age)[None], sig[:, None]) + lg[None]
    X = np.exp(_grid_posterior_samples(lp, lg, n_samples, rng))
    return Bunch(
        X=X, interim_log_prior=np.zeros_like(X), theta=ages, log10_age_obs=obs,
        err_dex=sig, params=(mu, log_age_spread), max_age=max_age,
    )
