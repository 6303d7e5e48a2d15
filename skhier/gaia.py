"""Helpers for Gaia data: the EDR3/DR3 parallax zero-point of each star.

Lindegren et al. (2021, A&A 649, A4) give the parallax bias of Gaia EDR3
(also DR3) as a function of G magnitude, colour (the effective wavenumber
``nu_eff_used_in_astrometry`` of five-parameter solutions, the
``pseudocolour`` of six-parameter ones) and ecliptic latitude. Their recipe
is implemented by the ``gaiadr3-zeropoint`` package (``pip install
skhier[gaia]``); :func:`gaia_zero_point` calls it with the validity range
checked. Pass the result as ``zero_point=`` to
:meth:`skhier.HierarchicalDistanceEstimator.fit`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .utils._warnings import warn

__all__ = ["gaia_zero_point", "ZERO_POINT_RANGES"]

#: Validity ranges of the Lindegren et al. (2021) recipe: G magnitude, and the
#: colour of five-parameter (``nu_eff``, 1/µm) and six-parameter
#: (``pseudocolour``, 1/µm) solutions.
ZERO_POINT_RANGES = {"phot_g_mean_mag": (6.0, 21.0),
                     "nu_eff_used_in_astrometry": (1.1, 1.9),
                     "pseudocolour": (1.24, 1.72)}
_SOLUTIONS = {31: "nu_eff_used_in_astrometry", 95: "pseudocolour"}


def _column(value, name, n=None):
    arr = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value,
                     dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape != (n,)):
        expected = "1-D" if n is None else f"shape ({n},)"
        raise ValueError(f"{name} must be {expected} (one value per star), got shape {arr.shape}.")
    return arr


def gaia_zero_point(phot_g_mean_mag, nu_eff_used_in_astrometry, pseudocolour, ecl_lat,
                    astrometric_params_solved):
    """Parallax zero-point of each star (mas), Lindegren et al. (2021) recipe.

    Parameters
    ----------
    phot_g_mean_mag : array-like of shape (n,)
        G magnitude.
    nu_eff_used_in_astrometry : array-like of shape (n,)
        Effective wavenumber (1/µm) of five-parameter solutions (NaN allowed
        for six-parameter ones).
    pseudocolour : array-like of shape (n,)
        Pseudocolour (1/µm) of six-parameter solutions (NaN allowed for
        five-parameter ones).
    ecl_lat : array-like of shape (n,)
        Ecliptic latitude in degrees, in [-90, 90].
    astrometric_params_solved : array-like of int, shape (n,)
        31 (five-parameter) or 95 (six-parameter solution).

    Returns
    -------
    zero_point : ndarray of shape (n,)
        In mas; subtract it from the parallaxes, or pass it as
        ``zero_point=`` to :meth:`HierarchicalDistanceEstimator.fit`.

    Warns
    -----
    UserWarning
        With the number of stars outside the recipe's validity range
        (``6 < G < 21``; ``1.1 < nu_eff < 1.9`` for five-parameter and
        ``1.24 < pseudocolour < 1.72`` for six-parameter solutions): their
        zero-points are extrapolated and may be imprecise.

    Raises
    ------
    ImportError
        Without the optional ``gaiadr3-zeropoint`` package.
    ValueError
        For wrong shapes, ``ecl_lat`` outside [-90, 90] or a solution type
        other than 31 or 95.

    Examples
    --------
    >>> from skhier.gaia import gaia_zero_point
    >>> zp = gaia_zero_point([15.0], [1.5], [float("nan")], [20.0], [31])  # doctest: +SKIP
    >>> zp.shape  # doctest: +SKIP
    (1,)
    """
    try:
        from zero_point import zpt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gaia_zero_point needs the optional package gaiadr3-zeropoint: "
            "pip install 'skhier[gaia]' (or pip install gaiadr3-zeropoint)."
        ) from exc
    g = _column(phot_g_mean_mag, "phot_g_mean_mag")
    n = len(g)
    nu = _column(nu_eff_used_in_astrometry, "nu_eff_used_in_astrometry", n)
    pc = _column(pseudocolour, "pseudocolour", n)
    lat = _column(ecl_lat, "ecl_lat", n)
    sol = _column(astrometric_params_solved, "astrometric_params_solved", n)
    if not np.all(np.isin(sol, list(_SOLUTIONS))):
        bad = sol[~np.isin(sol, list(_SOLUTIONS))]
        raise ValueError(
            "astrometric_params_solved must be 31 (five-parameter) or 95 (six-parameter "
            f"solution) for every star; got {bad[:3].tolist()} (the recipe has no "
            "zero-point for two-parameter solutions)."
        )
    if not np.all(np.isfinite(lat) & (np.abs(lat) <= 90.0)):
        raise ValueError("ecl_lat must be finite and in [-90, 90] degrees.")
    five = sol == 31
    colour = np.where(five, nu, pc)
    if not np.all(np.isfinite(g) & np.isfinite(colour)):
        raise ValueError(
            "phot_g_mean_mag must be finite, and nu_eff_used_in_astrometry (five-parameter) or "
            "pseudocolour (six-parameter solutions) finite for every star."
        )
    g_lo, g_hi = ZERO_POINT_RANGES["phot_g_mean_mag"]
    n_lo, n_hi = ZERO_POINT_RANGES["nu_eff_used_in_astrometry"]
    p_lo, p_hi = ZERO_POINT_RANGES["pseudocolour"]
    outside = ((g <= g_lo) | (g >= g_hi)
               | (five & ((nu <= n_lo) | (nu >= n_hi)))
               | (~five & ((pc <= p_lo) | (pc >= p_hi))))
    if np.any(outside):
        warn(
            f"{int(outside.sum())} of {n} stars lie outside the validity range of the "
            f"Lindegren et al. (2021) zero-point ({g_lo:g} < G < {g_hi:g}; {n_lo:g} < nu_eff "
            f"< {n_hi:g} for five-parameter, {p_lo:g} < pseudocolour < {p_hi:g} for "
            "six-parameter solutions): their zero-points are extrapolated and may be "
            "imprecise.",
            UserWarning,
        )
    zpt.load_tables()
    with warnings.catch_warnings():
        # The out-of-range count above replaces the package's per-call warning.
        warnings.simplefilter("ignore")
        out = zpt.get_zpt(g, np.where(five, nu, np.nan), np.where(five, np.nan, pc), lat,
                          sol.astype(int), _warnings=True)
    return np.asarray(out, dtype=np.float64)
