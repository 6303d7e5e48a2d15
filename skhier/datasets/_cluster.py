"""Simulated star-cluster parallaxes with field contamination (known truth)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_cluster_3d", "make_cluster_parallaxes"]


def _parallax_errors(parallax_error, n_stars, rng):
    """Per-star parallax errors: one value, or uniform on (low, high)."""
    if np.ndim(parallax_error) == 0:
        err = np.full(n_stars, float(parallax_error))
    else:
        err = rng.uniform(parallax_error[0], parallax_error[1], size=n_stars)
    if np.any(err <= 0):
        raise ValueError("parallax_error must be > 0.")
    return err


def make_cluster_parallaxes(
    n_stars: int = 200,
    *,
    mean_distance: float = 500.0,
    distance_dispersion: float = 10.0,
    cluster_fraction: float = 1.0,
    field_length_scale: float = 1350.0,
    parallax_error=0.1,
    zero_point: float = 0.0,
    random_state=None,
) -> Bunch:
    """Simulate Gaia-like parallaxes of a star cluster and field stars.

    The generative model of :class:`~skhier.HierarchicalDistanceEstimator`:
    each star is a cluster member with probability ``cluster_fraction``;
    members have true distances ``r ~ N(mean_distance, distance_dispersion²)``
    truncated to ``r > 0``; field stars follow the exponentially decreasing
    space density ``p(r) ∝ r² exp(-r / L)`` (Bailer-Jones 2015), i.e. a
    Gamma(3, L) distribution. Observed parallaxes are
    ``1000 / r + zero_point + N(0, parallax_error²)`` in mas (negative
    values occur and are kept, as in a real catalogue).

    Parameters
    ----------
    n_stars : int, default=200
    mean_distance, distance_dispersion : float, default=(500, 10)
        Cluster centre and depth in pc.
    cluster_fraction : float in (0, 1], default=1.0
        Probability that a star is a member.
    field_length_scale : float, default=1350.0
        Length scale L of the field's space density in pc (the value used by
        Astraatmadja & Bailer-Jones 2016 for Gaia mock catalogues).
    parallax_error : float or (low, high), default=0.1
        Parallax standard errors in mas, fixed or drawn uniformly per star.
    zero_point : float, default=0.0
        Global parallax offset in mas added to every parallax.
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_stars, 1) parallaxes [mas], ``X_err`` (n_stars, 1) errors,
        ``distance`` true distances [pc], ``is_member`` (bool), and the
        truth: ``mean_distance``, ``distance_dispersion``,
        ``cluster_fraction``, ``field_length_scale``, ``zero_point``.

    References
    ----------
    Bailer-Jones, C. A. L. (2015), PASP 127, 994 (the exponentially
    decreasing space density prior).

    Examples
    --------
    >>> from skhier.datasets import make_cluster_parallaxes
    >>> d = make_cluster_parallaxes(100, cluster_fraction=0.7, random_state=0)
    >>> d.X.shape, d.X_err.shape, int(d.is_member.sum())
    ((100, 1), (100, 1), 77)
    """
    if not 0 < cluster_fraction <= 1:
        raise ValueError(f"cluster_fraction must be in (0, 1], got {cluster_fraction}.")
    for name, val in [
        ("mean_distance", mean_distance),
        ("distance_dispersion", distance_dispersion),
        ("field_length_scale", field_length_scale),
    ]:
        if not (np.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be finite and > 0, got {val}.")
    rng = check_random_state(random_state)
    is_member = rng.uniform(size=n_stars) < cluster_fraction
    r = np.empty(n_stars)
    n_mem = int(is_member.sum())
    draws = mean_distance + distance_dispersion * rng.standard_normal(n_mem)
    while np.any(draws <= 0):  # truncation at r > 0, by rejection
        bad = draws <= 0
        draws[bad] = mean_distance + distance_dispersion * rng.standard_normal(int(bad.sum()))
    r[is_member] = draws
    r[~is_member] = rng.gamma(3.0, field_length_scale, size=n_stars - n_mem)
    err = _parallax_errors(parallax_error, n_stars, rng)
    parallax = 1000.0 / r + zero_point + err * rng.standard_normal(n_stars)
    return Bunch(
        X=parallax[:, None], X_err=err[:, None], distance=r, is_member=is_member,
        mean_distance=float(mean_distance), distance_dispersion=float(distance_dispersion),
        cluster_fraction=float(cluster_fraction),
        field_length_scale=float(field_length_scale), zero_point=float(zero_point),
    )


def make_cluster_3d(
    n_stars: int = 200,
    *,
    center_icrs=(56.75, 24.12, 135.0),
    dispersion: float = 5.0,
    cluster_fraction: float = 1.0,
    field_length_scale: float = 1350.0,
    footprint_radius=None,
    parallax_error=0.1,
    zero_point: float = 0.0,
    random_state=None,
) -> Bunch:
    """Simulate sky positions and parallaxes of a 3-D star cluster and field stars.

    The generative model of :class:`~skhier.HierarchicalDistanceEstimator3D`:
    members' positions are ``N3(c, dispersion² I)`` in the ICRS Cartesian
    frame (x towards ra = dec = 0, z towards the north pole), kept only inside
    the footprint, a cone of radius ``footprint_radius`` about the centre's
    direction (drawn again until inside); each star is a member with
    probability ``cluster_fraction``, field stars have directions uniform
    over the footprint and distances from the exponentially decreasing
    space density (a Gamma(3, L) distribution). Parallaxes are
    ``1000 / r + zero_point + N(0, parallax_error²)`` in mas.

    Parameters
    ----------
    n_stars : int, default=200
    center_icrs : tuple (ra, dec, distance), default=(56.75, 24.12, 135.0)
        The centre in degrees and pc (the default is near the Pleiades).
    dispersion : float, default=5.0
        Per-axis dispersion of the members' positions (pc).
    cluster_fraction : float in (0, 1], default=1.0
    field_length_scale : float, default=1350.0
    footprint_radius : float or None, default=None
        Cone radius in degrees (below 90); None: 6 dispersions at the
        centre's distance (no member falls outside, to 1e-8).
    parallax_error : float or (low, high), default=0.1
        Parallax standard errors in mas, fixed or drawn uniformly per star.
    zero_point : float, default=0.0
    random_state : int, RandomState instance or None

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (n_stars, 1) parallaxes [mas], ``X_err`` (n_stars, 1), ``ra``
        and ``dec`` (degrees), ``position`` (n_stars, 3) true positions [pc],
        ``distance``, ``is_member``, and the truth: ``center`` (3,),
        ``center_icrs``, ``dispersion``, ``cluster_fraction``,
        ``field_length_scale``, ``zero_point``, ``footprint`` (ra, dec, radius).

    Examples
    --------
    >>> from skhier.datasets import make_cluster_3d
    >>> d = make_cluster_3d(100, cluster_fraction=0.8, random_state=0)
    >>> d.X.shape, d.ra.shape, d.position.shape
    ((100, 1), (100,), (100, 3))
    """
    if not 0 < cluster_fraction <= 1:
        raise ValueError(f"cluster_fraction must be in (0, 1], got {cluster_fraction}.")
    ra0, dec0, dist0 = (float(v) for v in center_icrs)
    if not (0 <= ra0 <= 360 and -90 <= dec0 <= 90 and dist0 > 0):
        raise ValueError(
            f"center_icrs must be (ra in [0, 360], dec in [-90, 90], distance > 0), "
            f"got {center_icrs!r}.")
    for name, val in [("dispersion", dispersion), ("field_length_scale", field_length_scale)]:
        if not (np.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be finite and > 0, got {val}.")
    if footprint_radius is None:
        footprint_radius = float(np.degrees(min(6.0 * dispersion / dist0, 1.4)))
    if not 0 < footprint_radius < 90:
        raise ValueError(f"footprint_radius must be in (0, 90) degrees, got {footprint_radius}.")
    rng = check_random_state(random_state)
    a, d = np.radians(ra0), np.radians(dec0)
    axis = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    center = dist0 * axis
    cos_r = np.cos(np.radians(footprint_radius))
    is_member = rng.uniform(size=n_stars) < cluster_fraction
    n_mem = int(is_member.sum())
    pos = np.empty((n_stars, 3))
    members = np.empty((0, 3))
    while len(members) < n_mem:  # members outside the footprint are not observed
        x = center + dispersion * rng.standard_normal((2 * n_mem, 3))
        inside = x @ axis > cos_r * np.linalg.norm(x, axis=1)
        members = np.vstack([members, x[inside]])
    pos[is_member] = members[:n_mem]
    n_field = n_stars - n_mem
    # Field directions uniform over the cone: cos(angle) uniform in [cos_r, 1].
    cos_t = rng.uniform(cos_r, 1.0, n_field)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_field)
    e1 = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    sin_t = np.sqrt(1.0 - cos_t**2)
    u = (cos_t[:, None] * axis + sin_t[:, None] * (np.cos(phi)[:, None] * e1
                                                   + np.sin(phi)[:, None] * e2))
    pos[~is_member] = rng.gamma(3.0, field_length_scale, n_field)[:, None] * u
    r = np.linalg.norm(pos, axis=1)
    ra = np.degrees(np.arctan2(pos[:, 1], pos[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(pos[:, 2] / r))
    err = _parallax_errors(parallax_error, n_stars, rng)
    parallax = 1000.0 / r + zero_point + err * rng.standard_normal(n_stars)
    return Bunch(
        X=parallax[:, None], X_err=err[:, None], ra=ra, dec=dec, position=pos, distance=r,
        is_member=is_member, center=center, center_icrs=(ra0, dec0, dist0),
        dispersion=float(dispersion), cluster_fraction=float(cluster_fraction),
        field_length_scale=float(field_length_scale), zero_point=float(zero_point),
        footprint=(ra0, dec0, float(footprint_radius)),
    )
