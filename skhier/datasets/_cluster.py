"""Simulated star-cluster parallaxes with field contamination (known truth)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_cluster_parallaxes"]


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
    if np.ndim(parallax_error) == 0:
        err = np.full(n_stars, float(parallax_error))
    else:
        err = rng.uniform(parallax_error[0], parallax_error[1], size=n_stars)
    if np.any(err <= 0):
        raise ValueError("parallax_error must be > 0.")
    parallax = 1000.0 / r + zero_point + err * rng.standard_normal(n_stars)
    return Bunch(
        X=parallax[:, None], X_err=err[:, None], distance=r, is_member=is_member,
        mean_distance=float(mean_distance), distance_dispersion=float(distance_dispersion),
        cluster_fraction=float(cluster_fraction),
        field_length_scale=float(field_length_scale), zero_point=float(zero_point),
    )
