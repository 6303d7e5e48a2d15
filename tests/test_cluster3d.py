"""The 3-D cluster model (skhier._cluster3d, HierarchicalDistanceEstimator3D).

The per-star distance integral is checked against ``scipy.integrate.quad``
over a grid of regimes, the footprint's mass against Monte Carlo, the
per-star distance draws against the conditional CDF from quad; the fit
recovers a simulated centre and size (fast, one simulation; slow, coverage
over many), and agrees with the 1-D model on the Pleiades and Ruprecht 147
members (shared data).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import quad

from skhier import HierarchicalDistanceEstimator, HierarchicalDistanceEstimator3D
from skhier._cluster3d import (
    _cluster3d_sample,
    cluster3d_log_marginal,
    footprint_log_mass,
    sky_directions,
    to_icrs,
)
from skhier.datasets import make_cluster_3d

from .conftest import SHARED_DATA
from .helpers import z_threshold

needs_shared_data = pytest.mark.skipif(
    not os.path.isdir(SHARED_DATA), reason="../shared/data not present"
)


def _quad_integrand(y, e, m, s):
    def f(r):
        return stats.norm.pdf(y, 1000.0 / r, e) * stats.norm.pdf(r, m, s) * r * r
    return f


def _quad_edges(y, e, m, s):
    pts = [max(m + k * s, 1e-9) for k in (-10, -3, 0, 3, 10)]
    pts += [1000.0 / (y + k * e) for k in (-3, 0, 3) if y + k * e > 0]
    return [1e-12] + sorted(p for p in set(pts) if p > 1e-12) + [np.inf]


def _quad_log_marginal(y, e, m, s):
    """log ∫_0^∞ N(y | 1000/r, e²) N(r | m, s²) r² dr by quad on split intervals."""
    f, edges = _quad_integrand(y, e, m, s), _quad_edges(y, e, m, s)
    total = sum(quad(f, a, b, limit=500, epsabs=0, epsrel=1e-12)[0]
                for a, b in zip(edges[:-1], edges[1:], strict=True))
    return np.log(total)


REGIMES = [
    # (centre distance pc, dispersion / distance, error / parallax, offset in dispersions)
    (m, fs, fe, dz)
    for m in (50.0, 135.0, 2000.0)
    for fs in (1e-3, 0.03, 0.3)
    for fe in (0.001, 0.05, 0.5, 2.0)
    for dz in (0.0, 3.0, -10.0)
]


def test_log_marginal_matches_quad():
    """Measured worst |difference| 6e-11 over the 108 regimes; asserted 1e-8."""
    y, e, m, s = (np.array(v) for v in zip(
        *[(1000.0 / (m + dz * fs * m) if m + dz * fs * m > 0 else 1000.0 / m,
           fe * 1000.0 / m, m, fs * m) for m, fs, fe, dz in REGIMES], strict=True))
    got = cluster3d_log_marginal(y, e, m, s)
    ref = np.array([_quad_log_marginal(*args) for args in zip(y, e, m, s, strict=True)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)
    # Broadcasting: (k, 1) population means against (n,) stars.
    table = cluster3d_log_marginal(y[:4], e[:4], m[:3, None], s[:3, None])
    assert table.shape == (3, 4)
    np.testing.assert_allclose(table[1, 2], cluster3d_log_marginal(y[2], e[2], m[1], s[1]),
                               rtol=1e-12)


@pytest.mark.parametrize("y, e, m, s", [(7.4, 0.3, 135.0, 5.0), (3.3, 0.05, 300.0, 3.0),
                                        (0.5, 1.0, 300.0, 10.0)])
def test_distance_draws_follow_the_conditional(y, e, m, s):
    """Draws at stratified uniforms against quantiles of the conditional
    ∝ N(y | 1000/r, e²) N(r | m, s²) r² from quad (to 1 % of its sd)."""
    u = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    got = _cluster3d_sample(np.full(5, y), e, m, s, u)
    f, edges = _quad_integrand(y, e, m, s), _quad_edges(y, e, m, s)
    grid = np.unique(np.concatenate([np.linspace(a, min(b, m + 40 * s + 4000), 400)
                                     for a, b in zip(edges[:-1], edges[1:], strict=True)]))
    dens = f(grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    ref = np.interp(u, cdf, grid)
    mean = np.trapezoid(grid * dens, grid) / np.trapezoid(dens, grid)
    sd = np.sqrt(np.trapezoid((grid - mean) ** 2 * dens, grid) / np.trapezoid(dens, grid))
    np.testing.assert_allclose(got, ref, atol=0.01 * sd)


@pytest.mark.parametrize("center_icrs, s, radius", [
    ((56.0, 24.0, 135.0), 5.0, 1.0),   # the cone cuts the cluster's core
    ((56.0, 24.0, 135.0), 5.0, 3.0),
    ((58.0, 24.5, 135.0), 5.0, 2.0),   # centre off the axis
    ((10.0, -60.0, 1000.0), 2.0, 30.0),  # the whole cluster inside: mass 1
])
def test_footprint_mass_matches_monte_carlo(center_icrs, s, radius):
    """P(a member lies inside the cone) against 400 000 simulated members:
    agreement within 4.4 binomial standard errors (false-failure rate 1e-5)."""
    rng = np.random.default_rng(0)
    c = to_icrs_inverse(center_icrs)
    axis = sky_directions(56.0, 24.0)
    x = c + s * rng.standard_normal((400_000, 3))
    inside = x @ axis > np.cos(np.radians(radius)) * np.linalg.norm(x, axis=1)
    p_mc = inside.mean()
    p = np.exp(footprint_log_mass(c[None, :], np.array([s]), axis, radius))[0]
    se = np.sqrt(max(p * (1 - p), 1e-12) / len(x))
    assert abs(p - p_mc) < 4.4 * se + 1e-12, (p, p_mc, se)


def to_icrs_inverse(center_icrs):
    ra, dec, dist = center_icrs
    return dist * sky_directions(ra, dec)


def test_icrs_round_trip():
    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(0, 360, 20), rng.uniform(-89, 89, 20)
    dist = rng.uniform(10, 5000, 20)
    back = to_icrs(dist[:, None] * sky_directions(ra, dec))
    np.testing.assert_allclose(back[0], ra, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back[1], dec, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back[2], dist, rtol=1e-12)


def test_recovers_simulated_centre_and_size(stat_seed):
    """150 members with 3 % parallax errors: each Cartesian coordinate of the
    centre, the dispersion and the centre's distance within 3 posterior sd
    of the truth (false-failure rate ~1.3 % for the five assertions, which
    the slow coverage test checks over many simulations)."""
    d = make_cluster_3d(150, center_icrs=(56.0, 24.0, 135.0), dispersion=4.0,
                        parallax_error=0.2, random_state=100 + stat_seed)
    est = HierarchicalDistanceEstimator3D(random_state=0).fit(d.X, X_err=d.X_err, ra=d.ra,
                                                             dec=d.dec)
    post = est.posterior_
    for got, truth in [(post["center"][:, j], d.center[j]) for j in range(3)] + [
            (post["distance_dispersion"], d.dispersion),
            (post["mean_distance"], d.center_icrs[2])]:
        assert abs(np.mean(got) - truth) < 3 * np.std(got), (np.mean(got), truth, np.std(got))
    assert est.center_.shape == (3,)
    ra, dec, dist = est.center_icrs_
    assert abs(ra - 56.0) < 1.0 and abs(dec - 24.0) < 1.0 and abs(dist - 135.0) < 3.0
    draws = est.sample_posterior(3, random_state=0)
    assert draws["position"].shape == (3, 150, 3)
    np.testing.assert_allclose(np.linalg.norm(draws["position"], axis=-1), draws["r"],
                               rtol=1e-12)
    assert est.distance_.shape == (150,)
    assert np.all(est.membership_proba_[:, 0] == 1.0)
