"""The 3-D cluster model (skhier._cluster3d, HierarchicalDistanceEstimator3D).

The per-star distance integral is checked against ``scipy.integrate.quad``
over a grid of regimes, the footprint's mass against Monte Carlo, the
per-star distance draws against the conditional CDF from quad; the fit
recovers a simulated centre and size (fast, one simulation; slow, coverage
over many), and agrees with the 1-D model on the Pleiades and Ruprecht 147
members (shared data).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import quad

import skhier._cluster3d as cluster3d
from skhier import HierarchicalDistanceEstimator, HierarchicalDistanceEstimator3D
from skhier._cluster3d import (
    LEAD3D_RULES,
    _adaptive_log_marginal,
    _cluster3d_sample,
    cluster3d_log_marginal,
    cluster3d_log_marginal_leading,
    footprint_log_mass,
    sky_directions,
    to_icrs,
)
from skhier._cluster_integral import _lead_correction, lead_terms
from skhier.datasets import make_cluster_3d

from .conftest import SHARED_DATA
from .helpers import check_leading_rules, quad_standardised
from .test_distance_speed import _random_cases  # the 1-D rules' regimes (other seeds here)

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
    total = sum(quad(f, a, b, limit=200, epsabs=0, epsrel=1e-11)[0]
                for a, b in zip(edges[:-1], edges[1:], strict=True))
    return np.log(total)


REGIMES = [
    # (centre distance pc, dispersion / distance, error / parallax, offset in dispersions)
    (m, fs, fe, dz)
    for m in (50.0, 2000.0)
    for fs in (1e-3, 0.03, 0.3)
    for fe in (0.001, 0.05, 0.5, 2.0)
    for dz in (0.0, 3.0, -10.0)
]


def test_log_marginal_matches_quad():
    """Measured worst |difference| 6e-11 over 108 regimes (these 72 and a
    distance of 135 pc); asserted 1e-8."""
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


def test_leading_rule_matches_quad():
    """The leading term with its Gauss–Hermite correction, wherever its rules
    admit an entry, within 2e-8 (the documented 1e-8 with a margin of 2) of
    quad; negative parallaxes and both kinds of entries are covered. Cases:
    30 pc-6 kpc, depths 0.1 %-30 %, fractional parallax errors 0.03 %-200 %,
    stars up to 8 combined widths out (the rule bounds were set on other
    seeds)."""
    plx, err, mu, sig = _random_cases(800, 5)
    val, ok = cluster3d_log_marginal_leading(plx, err, mu, sig)
    assert ok.sum() > 500
    ref = np.array([quad_standardised(*a, power=2) for a in zip(plx[ok], err[ok], mu[ok],
                                                                 sig[ok], strict=True)])
    np.testing.assert_array_less(np.abs(val[ok] - ref), 2e-8)
    assert np.any(plx[ok] < 0), "negative parallaxes are covered"
    resolved = 2 * err**2 <= err**2 + (1000 * sig / mu**2) ** 2
    assert np.any(ok & resolved) and np.any(ok & ~resolved)


def test_every_leading_rule_matches_quad_on_its_range():
    """Each Gauss–Hermite rule of LEAD3D_RULES, not only the one chosen, is
    within 2e-8 of quad wherever its bound admits the entry, and every
    rule's own band holds cases."""
    plx, err, mu, sig = _random_cases(1500, 6, max_depth=0.4)
    terms = lead_terms(plx, err, mu, sig)
    q, valid = terms[9], terms[10]
    ref = np.full(plx.size, np.nan)
    for i in np.flatnonzero(valid & (q <= 0.45)):
        ref[i] = quad_standardised(plx[i], err[i], mu[i], sig[i], power=2)
    # The 3-D leading term: the 1-D one times mean².
    check_leading_rules(LEAD3D_RULES, functools.partial(_lead_correction, power=2), terms, ref,
                        lead=terms[2] + 2 * np.log(mu))


@pytest.mark.parametrize("regime", ["near", "far", "deep"])
def test_log_marginal_matches_adaptive(regime):
    """The (draws x stars) table that the model evaluates, mixing the leading
    rule and the adaptive fallback (stars far out, deep clusters), against
    the adaptive quadrature alone (accurate to 1e-8 against quad, see
    test_log_marginal_matches_quad) entry by entry, per-star means
    included: near (resolved stars), far (broad likelihoods, negative
    parallaxes) and a deep cluster (depth 40 % of the distance). Inputs are
    not modified."""
    dist, disp, err = {"near": (135.0, 5.0, 0.1), "far": (2000.0, 30.0, 0.2),
                       "deep": (300.0, 120.0, 0.3)}[regime]
    rng = np.random.default_rng(8)
    r = np.abs(rng.normal(dist, disp, 400))
    plx = 1000.0 / r + err * rng.standard_normal(400)
    plx[:10] += 8 * err * rng.choice([-1, 1], 10)  # stars far from the cluster
    e = np.full(400, err)
    means = dist + disp * rng.uniform(-0.3, 0.3, (5, 400))  # per-star means u.c
    s = disp * rng.uniform(0.8, 1.2, (5, 1))
    plx0 = plx.copy()
    val = cluster3d_log_marginal(plx, e, means, s)
    _, ok = cluster3d_log_marginal_leading(plx, e, means, s)
    # The leading rule serves nearly all of a near or far cluster's entries;
    # a deep cluster's go to the fallback.
    assert ok.mean() > 0.9 if regime != "deep" else ok.mean() < 0.1
    if regime == "far":
        assert np.any(plx < 0) and np.all(ok[:, plx < 0])
    ref = _adaptive_log_marginal(plx, e, means, s)
    np.testing.assert_allclose(val, ref, rtol=0, atol=2e-8)
    np.testing.assert_array_equal(plx, plx0)


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


def test_field_membership_and_fraction(monkeypatch):
    """30 % field stars uniform over the footprint: the fitted cluster
    fraction within 3 posterior sd of the realised one (false-failure rate
    0.3 %), every star classified right, and the centre recovered. At 20
    posterior draws, the log-posterior and every star's cluster and field
    log-likelihoods (which make its membership) agree with those from the
    adaptive per-star integrals (the exact path) to 1e-6 and 1e-7 (the
    field stars' cluster integrals are outside the leading rule's range)."""
    d = make_cluster_3d(200, center_icrs=(56.0, 24.0, 135.0), dispersion=4.0,
                        cluster_fraction=0.7, parallax_error=0.3, random_state=3)
    est = HierarchicalDistanceEstimator3D(field="edsd", field_length_scale=1350.0,
                                          random_state=0).fit(d.X, X_err=d.X_err, ra=d.ra,
                                                              dec=d.dec)
    f = est.posterior_["cluster_fraction"]
    assert abs(np.mean(f) - d.is_member.mean()) < 3 * np.std(f)
    np.testing.assert_array_equal(est.membership_proba_[:, 0] > 0.5, d.is_member)
    assert abs(est.mean_distance_ - 135.0) < 3 * np.std(est.posterior_["mean_distance"])
    draws = est.sample_posterior(2, random_state=1)
    assert draws["is_member"].shape == (2, 200)
    proba = est.predict_membership_proba(d.X[:5], X_err=d.X_err[:5], ra=d.ra[:5],
                                         dec=d.dec[:5])
    np.testing.assert_allclose(proba, est.membership_proba_[:5], rtol=1e-12)
    theta = est.chain_[:20, 0]
    p = est.model_._unpack(theta)
    fast, fast_tables = est.model_.log_prob(theta), est.model_.star_logliks(p)
    monkeypatch.setattr(cluster3d, "cluster3d_log_marginal", _adaptive_log_marginal)
    np.testing.assert_allclose(est.model_.log_prob(theta), fast, rtol=0, atol=1e-6)
    for got, ref in zip(fast_tables, est.model_.star_logliks(p), strict=True):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7)


def test_footprint_that_cuts_the_cluster_is_accounted_for():
    """A cone of 1 degree (2.4 pc at 135 pc) around a cluster with s = 5 pc
    keeps its core only. With that footprint the dispersion is recovered
    within 3 posterior sd; without it (the default: the sample holds the
    whole cluster) the model reads the cut as a small cluster: s is then
    more than 3 sd below the truth (measured 4.91 +- 0.21 pc with the
    footprint, 2.80 +- 0.07 pc without)."""
    d = make_cluster_3d(300, center_icrs=(56.0, 24.0, 135.0), dispersion=5.0,
                        footprint_radius=1.0, parallax_error=0.05, random_state=4)
    kw = dict(X_err=d.X_err, ra=d.ra, dec=d.dec)
    right = HierarchicalDistanceEstimator3D(footprint=d.footprint, random_state=0).fit(d.X, **kw)
    s = right.posterior_["distance_dispersion"]
    assert abs(np.mean(s) - 5.0) < 3 * np.std(s)
    default = HierarchicalDistanceEstimator3D(random_state=0).fit(d.X, **kw)
    s = default.posterior_["distance_dispersion"]
    assert 5.0 - np.mean(s) > 3 * np.std(s)
    assert right.footprint_ == pytest.approx(d.footprint)
    # The default's footprint_ is the data's cone (inside the declared one).
    assert default.footprint_[2] <= 1.0


def test_positions_are_required_and_checked():
    d = make_cluster_3d(20, random_state=0)
    est = HierarchicalDistanceEstimator3D(random_state=0)
    with pytest.raises(ValueError, match="needs the stars' sky positions: pass ra and dec"):
        est.fit(d.X, X_err=d.X_err)
    with pytest.raises(ValueError, match="ra and dec .* must be given together"):
        est.fit(d.X, X_err=d.X_err, ra=d.ra)
    with pytest.raises(ValueError, match=r"ra must have shape \(20,\)"):
        est.fit(d.X, X_err=d.X_err, ra=d.ra[:5], dec=d.dec)
    with pytest.raises(ValueError, match=r"dec must have shape \(20,\)"):
        est.fit(d.X, X_err=d.X_err, ra=d.ra, dec=np.c_[d.dec, d.dec])
    with pytest.raises(ValueError, match=r"dec must lie in \[-90, 90\]"):
        est.fit(d.X, X_err=d.X_err, ra=d.ra, dec=d.dec + 100.0)
    with pytest.raises(ValueError, match=r"ra must lie in \[0, 360\]"):
        est.fit(d.X, X_err=d.X_err, ra=np.radians(d.ra) - 10.0, dec=d.dec)
    with pytest.raises(ValueError, match="ra must be finite|ra .*finite"):
        est.fit(d.X, X_err=d.X_err, ra=np.r_[np.nan, d.ra[1:]], dec=d.dec)
    fitted = HierarchicalDistanceEstimator3D(random_state=0).fit(d.X, X_err=d.X_err, ra=d.ra,
                                                                 dec=d.dec)
    with pytest.raises(ValueError, match="needs the stars' sky positions"):
        fitted.predict(d.X, X_err=d.X_err)
    with pytest.raises(ValueError, match=r"ra must have shape \(20,\)"):
        fitted.predict_membership_proba(d.X, X_err=d.X_err, ra=d.ra[:3], dec=d.dec)


@pytest.mark.parametrize("footprint, match", [
    ((56.0, 24.0), "footprint must be None or a tuple"),
    ((56.0, 24.0, 95.0), "0 < radius < 90"),
    ((56.0, 124.0, 5.0), "dec in"),
    ((56.0, 24.0, np.nan), "footprint must be"),
    ((80.0, 24.0, 2.0), "stars lie outside the footprint"),
])
def test_bad_footprint_is_refused(footprint, match):
    d = make_cluster_3d(20, random_state=0)
    with pytest.raises(ValueError, match=match):
        HierarchicalDistanceEstimator3D(footprint=footprint).fit(d.X, X_err=d.X_err, ra=d.ra,
                                                                 dec=d.dec)


def test_simulator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="center_icrs"):
        make_cluster_3d(10, center_icrs=(56.0, 95.0, 135.0))
    with pytest.raises(ValueError, match="dispersion"):
        make_cluster_3d(10, dispersion=-1.0)
    with pytest.raises(ValueError, match="footprint_radius"):
        make_cluster_3d(10, footprint_radius=120.0)


# -- real data: agreement with the 1-D model ------------------------------------------
#: The 3-D centre's distance against the 1-D mean distance, fitted to the same
#: stars (so their errors are strongly correlated): measured differences
#: -0.82 (Pleiades) and -0.16 (Ruprecht 147) combined posterior sd. The two
#: models differ (an isotropic 3-D Gaussian against a normal distribution of
#: line-of-sight distances; |c| against the mean of r, which is larger by
#: about s²/|c|), so they are asked to agree within 2 combined sd.
REAL = [("pleiades_tgas_gdr1set03.csv", 0.0, 164, (125.0, 145.0)),
        pytest.param("ruprecht147_gdr2_kalkayotl.csv", -0.029, 218, (290.0, 320.0),
                     marks=pytest.mark.slow)]


@needs_shared_data
@pytest.mark.parametrize("filename, zero_point, n, published", REAL,
                         ids=["pleiades", "ruprecht147"])
def test_agrees_with_the_1d_model_on_real_clusters(filename, zero_point, n, published):
    t = np.genfromtxt(os.path.join(SHARED_DATA, filename), delimiter=",", names=True)
    assert len(t) == n
    X, err = t["parallax"][:, None], t["parallax_error"]
    one = HierarchicalDistanceEstimator(parallax_zero_point=zero_point, random_state=0)
    with pytest.warns() if filename.startswith("pleiades") else _no_warning():
        one.fit(X, X_err=err)  # (4 Pleiades stars lie > 5 sd out: the contamination warning)
    three = HierarchicalDistanceEstimator3D(parallax_zero_point=zero_point, random_state=0).fit(
        X, X_err=err, ra=t["ra"], dec=t["dec"])
    m1, m3 = one.posterior_["mean_distance"], three.posterior_["mean_distance"]
    diff = (np.mean(m3) - np.mean(m1)) / np.hypot(np.std(m1), np.std(m3))
    assert abs(diff) < 2.0, diff
    assert published[0] < three.mean_distance_ < published[1]
    ra, dec, _ = three.center_icrs_
    assert np.hypot((ra - np.median(t["ra"])) * np.cos(np.radians(dec)),
                    dec - np.median(t["dec"])) < 1.0


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- slow: calibration ---------------------------------------------------------------
SBC_STARS = 40
SBC_MEAN = ("uniform", 100.0, 400.0)
SBC_DISP = ("half-normal", 5.0)


def _simulate_3d(rng):
    """Parameters from the estimator's priors (isotropic direction, |c|
    uniform, s half-normal), then 40 members with 5 % parallax errors; the
    sample holds the whole cluster (the default footprint's assumption)."""
    u = rng.standard_normal(3)
    c = rng.uniform(*SBC_MEAN[1:]) * u / np.linalg.norm(u)
    s = abs(rng.normal(0.0, SBC_DISP[1]))
    x = c + s * rng.standard_normal((SBC_STARS, 3))
    r = np.linalg.norm(x, axis=1)
    ra, dec, _ = to_icrs(x)
    e = np.full(SBC_STARS, 0.05 * 1000.0 / np.linalg.norm(c))
    X = (1000.0 / r + e * rng.standard_normal(SBC_STARS))[:, None]
    truth = {"center": c, "distance_dispersion": s}
    return truth, X, None, {"X_err": e, "ra": ra, "dec": dec}


def _sbc_statistic(draws):
    c = np.asarray(draws["center"])
    return {"center_x": c[:, 0], "center_y": c[:, 1], "center_z": c[:, 2],
            "distance": np.linalg.norm(c, axis=1),
            "distance_dispersion": np.asarray(draws["distance_dispersion"])}


@pytest.mark.slow
def test_cluster3d_sbc():
    """Ranks of the centre's coordinates, its distance and the dispersion
    among 39 posterior draws are uniform over 60 simulations (chi-square over
    4 bins, level 0.001 per quantity)."""
    from skhier.validation import simulation_based_calibration

    est = HierarchicalDistanceEstimator3D(mean_distance_prior=SBC_MEAN,
                                          distance_dispersion_prior=SBC_DISP)
    res = simulation_based_calibration(est, _simulate_3d, 60, n_draws=39, n_bins=4,
                                       random_state=7, statistic=_sbc_statistic)
    assert res.is_uniform(alpha=0.001), res.p_values


# -- quadrature over the population posterior against a brute-force grid ------------
def _grid_log_post(plx, err, dirs, c, s, integral):
    """Log posterior of centres ``c`` (k, 3) and dispersions ``s`` (k,) under
    the default priors (|c| uniform, isotropic direction; half-Cauchy(20) on
    s), written independently of the model: per-star integrals by
    ``integral``, the perpendicular factor and the normalisation by hand."""
    along = c @ dirs.T
    perp2 = np.sum(c**2, axis=1)[:, None] - along**2
    ll = (integral(plx, err, along, s[:, None]) - 0.5 * perp2 / s[:, None] ** 2
          - np.log(2 * np.pi * s[:, None] ** 2)).sum(axis=1)
    return ll - 2 * np.log(np.linalg.norm(c, axis=1)) - np.log1p((s / 20.0) ** 2)


def _grid_moments(plx, err, dirs, mean, cov, step, integral):
    """Means and sds of (c_x, c_y, c_z, s) by the midpoint rule on a lattice
    along the principal axes of ``cov`` (a linear change of variables:
    uniform weights), ``step`` principal sd apart, inside the ball of 6.5
    sd (beyond it a near-Gaussian posterior has a mass of ~1e-8)."""
    vals, vecs = np.linalg.eigh(cov)
    g = np.arange(-6.0, 6.0 + 1e-9, step)
    pts = np.stack(np.meshgrid(*[g] * 4, indexing="ij"), axis=-1).reshape(-1, 4)
    pts = pts[np.sum(pts**2, axis=1) <= 6.5**2]
    theta = mean + (pts * np.sqrt(vals)) @ vecs.T
    lp = np.concatenate([_grid_log_post(plx, err, dirs, t[:, :3], t[:, 3], integral)
                         for t in np.array_split(theta, max(1, len(theta) // 2000))])
    w = np.exp(lp - lp.max())
    w /= w.sum()
    m = w @ theta
    return np.stack([m, np.sqrt(w @ (theta - m) ** 2)], axis=1)


@pytest.mark.parametrize("case", ["near", pytest.param("far-negative-parallax",
                                                       marks=pytest.mark.slow)])
def test_quadrature_matches_grid_posterior(case):
    """The estimator's Gauss–Hermite quadrature over (centre, dispersion)
    against a brute-force lattice of the posterior (checked by halving its
    step), with the per-star integrals by the leading-term rule (tested
    against quad above) or, slow, by the adaptive quadrature; far: 60 %
    parallax errors, negative parallaxes."""
    if case == "near":
        d = make_cluster_3d(100, center_icrs=(56.0, 24.0, 135.0), dispersion=4.0,
                            parallax_error=0.2, random_state=11)
        integral = cluster3d_log_marginal
    else:
        d = make_cluster_3d(100, center_icrs=(300.0, -40.0, 1000.0), dispersion=20.0,
                            parallax_error=0.6, random_state=12)
        assert np.any(d.X[:, 0] < 0)
        integral = _adaptive_log_marginal
    est = HierarchicalDistanceEstimator3D(sampler="quadrature", random_state=0).fit(
        d.X, X_err=d.X_err, ra=d.ra, dec=d.dec)
    assert est.sampler_ == "quadrature" and max(est.quadrature_error_.values()) < 0.02
    nodes, weights = est._quadrature_rule
    p = est.model_.constrain(nodes)
    theta = np.column_stack([p["center"], p["distance_dispersion"]])
    mean = weights @ theta
    cov = (weights[:, None] * (theta - mean)).T @ (theta - mean)
    quad_moments = np.stack([mean, np.sqrt(np.diag(cov))], axis=1)
    dirs = sky_directions(d.ra, d.dec)
    coarse = _grid_moments(d.X[:, 0], d.X_err[:, 0], dirs, mean, cov, 1.5, integral)
    fine = _grid_moments(d.X[:, 0], d.X_err[:, 0], dirs, mean, cov, 0.75, integral)
    sd = fine[:, 1:]
    # The trapezoidal rule converges geometrically here: the coarse lattice
    # within 0.005 sd of the fine one means the fine one is far closer.
    assert np.all(np.abs(fine - coarse) < 5e-3 * sd), (fine, coarse)
    # Deterministic: the quadrature's tolerance (0.02 sd) plus the grid's error.
    assert np.all(np.abs(quad_moments - fine) < 0.02 * sd), (quad_moments, fine)
    # The stored draws come from the quadrature posterior (Monte Carlo error
    # of 2 000 draws: 4.4 sd bounds ~1e-5 false failures per quantity).
    draws = np.column_stack([est.posterior_["center"], est.posterior_["distance_dispersion"]])
    ess = min(est.n_effective_.values())
    assert np.all(np.abs(draws.mean(axis=0) - fine[:, 0]) < 4.4 * sd[:, 0] / np.sqrt(ess))
    latents = est.sample_posterior(3, random_state=0)
    np.testing.assert_allclose(latents["position"] / latents["r"][..., None],
                               np.broadcast_to(dirs, (3, 100, 3)), rtol=1e-12)


@pytest.mark.slow
def test_field_mixture_quadrature_matches_importance():
    """1 000 stars, 30 % of them field stars (fixed field length scale):
    the default fit integrates the 5-parameter posterior by quadrature; its
    means of the centre, dispersion and cluster fraction agree with
    importance sampling of the same posterior within 4 Monte Carlo standard
    errors of the importance draws plus the quadrature's 0.02 sd (false-
    failure rate ~1e-4 per quantity)."""
    d = make_cluster_3d(1000, center_icrs=(56.0, 24.0, 135.0), dispersion=4.0,
                        cluster_fraction=0.7, parallax_error=0.3, random_state=3)
    kw = dict(field="edsd", field_length_scale=1350.0, random_state=0)
    fit = dict(X_err=d.X_err, ra=d.ra, dec=d.dec)
    quad_est = HierarchicalDistanceEstimator3D(**kw).fit(d.X, **fit)
    assert quad_est.sampler_ == "quadrature" and max(quad_est.quadrature_error_.values()) < 0.02
    imp = HierarchicalDistanceEstimator3D(sampler="importance", n_importance=4000, **kw).fit(
        d.X, **fit)
    assert imp.pareto_k_ < 0.7
    ess = min(imp.n_effective_.values())
    nodes, weights = quad_est._quadrature_rule
    p = quad_est.model_.constrain(nodes)
    for name in ("center", "distance_dispersion", "cluster_fraction"):
        ref = np.asarray(imp.posterior_[name])
        sd = np.std(ref, axis=0)
        got = weights @ np.asarray(p[name])
        assert np.all(np.abs(got - ref.mean(axis=0)) < (4 / np.sqrt(ess) + 0.02) * sd), name
    np.testing.assert_allclose(quad_est.membership_proba_, imp.membership_proba_, atol=0.02)
