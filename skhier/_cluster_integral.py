"""Numerics of the cluster-distance model's per-star integrals.

Each star's cluster integral ``∫ N(parallax | 1000 / r, err²) N(r | mu_r,
sigma_r²) dr`` and field integral (the exponentially decreasing space
density of Bailer-Jones 2015) with the distance integrated out: the
analytic leading term with a Gauss–Hermite correction
(:func:`cluster_log_marginal_leading`), the adaptive fallback, per-star
quadrature rules frozen at one population draw (:class:`FrozenRulesMixin`,
for importance sampling), per-star posterior medians on a grid
(:class:`GridMediansMixin`), and the samplers that use them
(:func:`frozen_importance`, :func:`population_quadrature`).
:mod:`skhier._distance` holds the model's parameters and the estimator.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import log_ndtr, logit

from ._grid import run_grid
from ._importance import run_importance
from ._math import LOG2PI, logsumexp
from ._population import (
    adaptive_log_integral,
    adaptive_sample,
    gaussian_latent_log_marginal,
    quadrature_rules,
)
from ._quadrature import run_quadrature
from ._sampling import _fd_derivatives, laplace_covariance, newton_map

#: Nodes per coordinate of the successive Gauss–Hermite rules over the
#: population posterior, by number of parameters (others: the defaults of
#: :mod:`skhier._quadrature`). Large samples have near-Gaussian posteriors
#: on which rules of 4 and 6 nodes already agree. With a field (3
#: parameters), a far cluster's barely resolved depth has a skewed
#: posterior that needs 12 nodes; the nodes' cluster integrals are shared
#: along the fraction's axis (:meth:`_DistanceModel._distinct_cluster_draws`),
#: so a rule costs K² of them, not K³.
QUADRATURE_LEVELS = {2: (4, 6, 8, 12, 16), 3: (5, 7, 9, 12)}
#: Largest number of population parameters integrated on a lattice
#: (:func:`skhier._grid.run_grid`) when Gauss–Hermite rules do not converge.
GRID_MAX_PARAMS = 3

# Per-star posterior medians without a field (see
# _DistanceModel.median_distances): every star's conditional densities on one
# grid of _MEDIAN_GRID_POINTS points, averaged over _MEDIAN_SUBSET population
# draws; stars whose median then has a Monte Carlo error above
# _MEDIAN_MC_TOL of their posterior sd are redone with more draws. The grid's
# own error (against quad, tests/test_distance.py) is ~2e-4 of a star's sd
# when the depth is resolved, but reaches ~4 % when the depth draws span
# decades (the grid, set by the widest conditionals, then does not resolve
# the narrowest ones).
_MEDIAN_SUBSET = 32
_MEDIAN_GRID_POINTS = 129
_MEDIAN_MC_TOL = 0.02
_CELLS_GRID = 1_000_000  # (draws x stars x grid points) per chunk


def _g(r):
    return 1000.0 / r


def _dg(r):
    return -1000.0 / r**2


def _g_inv(p):
    return 1000.0 / p


# -- the two populations ----------------------------------------------------


#: Gauss–Hermite rules of the leading term's correction
#: (:func:`cluster_log_marginal_leading`), by kind of star, as ``(nodes,
#: q_max)``: an entry (star, draw) gets the first rule whose ``q_max`` is at
#: least ``q = eps (|t̂| + LEAD_Q_SPAN sd_t)`` (how far the correction's
#: variable reaches towards its singularity at ``r = 0``, in units of the
#: distance), and the adaptive quadrature beyond the last one or for
#: ``|t̂| > LEAD_T_MAX``. Each bound keeps the log-integral's error below
#: 1e-8 against scipy quad in the standardised variable, measured over
#: distances 30 pc-6 kpc, depths 0.1 %-40 % and fractional parallax errors
#: 0.03 %-200 % (7 000 cases; worst errors 6e-9); tests/test_distance_speed.py
#: checks every rule on its own range. Near-Gaussian entries (small ``q``)
#: need few nodes: a far cluster's stars mostly get 8.
LEAD_RULES = {
    "resolved": ((6, 0.02), (8, 0.06), (12, 0.1), (16, 0.2), (24, 0.3), (32, 0.5)),
    "broad": ((6, 0.04), (8, 0.15), (12, 0.25), (16, 0.35), (24, 0.5), (32, 0.55)),
}
#: Scale of ``q``: the largest node of the 12-node rule.
LEAD_Q_SPAN = 5.500901704467748
LEAD_T_MAX = 7.0


#: Entries per block of the correction's (entries x nodes) tables: small
#: enough to stay in the processor's cache.
_LEAD_BLOCK = 4096


@functools.cache
def _lead_rule(n_nodes):
    u, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / w.sum()
    u.flags.writeable = w.flags.writeable = False
    return u, w


def _lead_correction(kind, n_nodes, eps, sd_t, t_hat, m=None, sx=None, d=None, err=None,
                     power=0):
    """Expectation of the leading term's correction with ``n_nodes`` nodes.

    The arguments are 1-D arrays of equal length (one entry per star and
    draw; ``m``, ``sx``, ``d`` and ``err`` are needed by the broad kind
    only); worked in blocks of ``_LEAD_BLOCK`` entries. ``power`` (0 or 2):
    the integrand's extra factor ``r**power`` (the 3-D model's ``r²``), of
    which ``(r / mean)**power`` joins the correction (the factor
    ``mean**power`` is the caller's). Nodes at ``r <= 0`` get weight 0.
    """
    u, w = _lead_rule(n_nodes)
    out = np.empty(eps.shape)
    for start in range(0, eps.size, _LEAD_BLOCK):
        sl = slice(start, start + _LEAD_BLOCK)
        e, st = eps[sl, None], sd_t[sl, None] * u
        if kind == "resolved":
            t = st + t_hat[sl, None]
            b = e * t
            b += 1.0
            # Nodes at r <= 0 (1 + eps t <= 0) are outside the truncated
            # cluster: weight 0 (their Gaussian weight is below 1e-20 where
            # used). Flooring r / mean at 1e-30 makes their exponent about
            # -1e60 t², so their value is exactly 0 (no inf * 0).
            np.maximum(b, 1e-30, out=b)
            b *= b
            np.reciprocal(b, out=b)  # (r / mean)²
            t *= t
            t *= 0.5
            t *= 1.0 - b
            np.exp(t, out=t)
            t *= b
            if power:
                t *= b
        else:
            z = st - t_hat[sl, None]
            ez = e * z
            delta = ez * ez
            delta *= m[sl, None]
            ez += 1.0  # r / mean
            np.maximum(ez, 1e-30, out=ez)  # r <= 0: exponent -inf-like, value 0
            delta /= ez
            t = sx[sl, None] * z
            t += d[sl, None]
            t -= 0.5 * delta
            t *= delta
            t /= err[sl, None] ** 2
            np.exp(t, out=t)
            if power:
                ez *= ez
                t *= ez
        np.dot(t, w, out=out[sl])
    return out


def _rule_keys(rules):
    """``rules`` (``{"resolved": ((nodes, q_max), ...), "broad": ...}``) as
    one sorted array of keys and the ``(kind, nodes)`` of each, for
    :func:`leading_log_marginal`'s single sorted search: the resolved
    bounds, a sentinel 9, the broad bounds shifted by 10, a sentinel 19
    (None for the sentinels). Every bound must be below 5."""
    keys = [q for _, q in rules["resolved"]] + [9.0] + [10.0 + q for _, q in rules["broad"]]
    groups = ([("resolved", k) for k, _ in rules["resolved"]] + [None]
              + [("broad", k) for k, _ in rules["broad"]] + [None])
    return np.array(keys + [19.0]), groups


def leading_log_marginal(parallax, parallax_error, mean, dispersion, rules, power=0):
    """log ∫_0^∞ N(parallax | 1000/r, err²) N(r | mean, dispersion²) r**power dr
    by the leading term and the rules ``rules`` (see
    :func:`cluster_log_marginal_leading`; without the truncation factor).

    ``power`` 0 (the 1-D cluster, :data:`LEAD_RULES`) or 2 (the 3-D
    cluster's ``r²``, ``skhier._cluster3d.LEAD3D_RULES``): ``r² = mean²
    (r / mean)²``, ``mean²`` joins the leading term and ``(r / mean)²`` the
    correction. Each entry gets the first rule of its kind whose bound
    admits its ``q``. Broadcasts its arguments; returns ``(log_integral,
    ok)``, entries with ``ok == False`` outside the rules' validated range
    (their value is meaningless).
    """
    x, err, lead, m, eps, sx, d, t_hat, sd_t, q, valid, resolved = lead_terms(
        parallax, parallax_error, mean, dispersion)
    keys, groups = _rule_keys(rules)
    with np.errstate(all="ignore"):
        if power:
            lead = lead - power * np.log(m / 1000.0)  # the factor mean**power
        # One sorted search: key q (capped at 5) for resolved entries, 10 + q
        # for broad ones, against both kinds' bounds with a sentinel after each.
        key = np.where(valid, np.minimum(q, 5.0) + np.where(resolved, 0.0, 10.0), np.inf)
        which = np.searchsorted(keys, key, side="left")
        corr = np.ones(x.shape)
        ok = np.zeros(x.shape, dtype=bool)
        for j in np.flatnonzero(np.bincount(which.ravel(), minlength=len(keys) + 1)):
            if j >= len(groups) or groups[j] is None:
                continue  # beyond the last rule of its kind, or not valid
            kind, n_nodes = groups[j]
            sel = which == j
            args = (eps, sd_t, t_hat) if kind == "resolved" else (eps, sd_t, t_hat, m, sx, d, err)
            corr[sel] = _lead_correction(kind, n_nodes, *(a[sel] for a in args), power=power)
            ok |= sel
        val = lead + np.log(corr)
    return val, ok & np.isfinite(val)


def fill_unvalidated(val, ok, fallback, *arrays):
    """``val`` with its entries where ``ok`` is False replaced by
    ``fallback(*arrays_at_those_entries)`` (the adaptive integral behind a
    leading-term rule); ``arrays`` broadcast to ``val``'s shape."""
    if np.all(ok):
        return val
    bad = ~ok
    args = [np.broadcast_to(np.asarray(a, dtype=np.float64), val.shape)[bad] for a in arrays]
    val = np.array(val, copy=True)
    val[bad] = fallback(*args)
    return val


def lead_terms(parallax, parallax_error, mean, dispersion):
    """The pieces of the leading term and its correction (see
    :func:`cluster_log_marginal_leading`), broadcast: ``(parallax, err,
    lead, m, eps, sx, d, t_hat, sd_t, q, valid, resolved)``, with ``lead``
    the log of ``N(parallax | m, err² + sx²)``, ``q`` the reach of the
    correction's variable, ``valid`` the entries with ``|t̂| <= LEAD_T_MAX``
    and a positive mean and dispersion, ``resolved`` those with ``sd_t² <=
    1/2``. Shared by the 3-D model's integral (:mod:`skhier._cluster3d`)."""
    x, err, mu, sig = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (
        parallax, parallax_error, mean, dispersion)))
    with np.errstate(all="ignore"):
        m = 1000.0 / mu
        eps = sig / mu
        sx = m * eps
        var = err**2 + sx**2
        d = x - m
        lead = -0.5 * (np.log(2.0 * np.pi * var) + d * d / var)
        t_hat = sx * d / var
        sd_t = err / np.sqrt(var)
        resolved = 2.0 * err**2 <= var
        q = eps * (np.abs(t_hat) + LEAD_Q_SPAN * sd_t)
        valid = (np.abs(t_hat) <= LEAD_T_MAX) & (mu > 0) & (sig > 0) & np.isfinite(q)
    return x, err, lead, m, eps, sx, d, t_hat, sd_t, q, valid, resolved


def cluster_log_marginal_leading(parallax, parallax_error, mean, dispersion):
    """Cluster log-integral as an analytic leading term times a smooth correction.

    With ``m = 1000 / mu``, ``eps = sigma / mu`` and ``sx = m eps`` (the
    cluster's depth in parallax, delta method), linearising ``1000 / r``
    makes the integrand Gaussian, and the integral's leading term is the
    Gaussian convolution ``N(parallax | m, err² + sx²)``. The exact integral
    is that term times the expectation of a correction under the
    linearised conditional of the star's position, ``t ~ N(t̂, sd_t²)`` with
    ``t̂ = sx (parallax - m) / (err² + sx²)``, ``sd_t = err / sqrt(err² + sx²)``:

    * resolved stars (``sd_t² <= 1/2``, likelihood narrower than the depth),
      in the parallax ``x = m + sx t`` where the likelihood is exactly
      Gaussian: ``c(t) = exp(t²/2 (1 - 1/a²)) / a²``, ``a = 1 + eps t``
      (the cluster's density in ``x`` over its delta-method Gaussian; a
      function of ``eps`` and ``t`` only);
    * broad stars, in the cluster's standard variable ``z = (r - mu) / sigma
      ≈ -t`` where the prior is exactly Gaussian:
      ``c(z) = exp((D δ - δ²/2) / err²)`` with ``D = parallax - m + sx z``
      and ``δ = m eps² z² / (1 + eps z)`` (the exact likelihood over the
      linearised one).

    Either correction is smooth, and a Gauss–Hermite rule of a few nodes
    gives its expectation (the rule for each entry is the smallest of
    ``LEAD_RULES`` valid for it), at O(1) cost per star and draw, with no
    per-star mode search.

    Broadcasts its arguments like :func:`cluster_log_marginal` (without the
    truncation factor). Returns ``(log_integral, ok)``; entries with
    ``ok == False`` are outside the rules' validated range (their value is
    meaningless) and need the adaptive quadrature.
    """
    return leading_log_marginal(parallax, parallax_error, mean, dispersion, LEAD_RULES)


def cluster_log_marginal(parallax, parallax_error, mean, dispersion):
    """log ∫ N(parallax | 1000/r, err²) N_{r>0}(r | mean, dispersion²) dr.

    Broadcasts its arguments (e.g. (k, 1) population parameters against
    (n,) stars). ``parallax`` is already corrected for the zero-point. The
    leading-term rule (:func:`cluster_log_marginal_leading`) where it is
    validated, the adaptive quadrature of
    :func:`skhier._population.gaussian_latent_log_marginal` elsewhere.
    """
    mean = np.asarray(mean, dtype=np.float64)
    dispersion = np.asarray(dispersion, dtype=np.float64)
    val, ok = cluster_log_marginal_leading(parallax, parallax_error, mean, dispersion)
    val = fill_unvalidated(val, ok, _adaptive_log_marginal, parallax, parallax_error, mean,
                           dispersion)
    return val - log_ndtr(mean / dispersion)


def _adaptive_log_marginal(parallax, parallax_error, mean, dispersion):
    """The untruncated cluster log-integral by the adaptive quadrature of
    :func:`skhier._population.gaussian_latent_log_marginal` (1-D arrays)."""
    return gaussian_latent_log_marginal(parallax, parallax_error, mean, dispersion, _g, _dg,
                                        g_inv=_g_inv, lower=0.0)


def _edsd_pieces(parallax, parallax_error, length_scale):
    arrays = [
        np.atleast_1d(a)
        for a in np.broadcast_arrays(
            np.asarray(parallax, dtype=np.float64),
            np.asarray(parallax_error, dtype=np.float64) ** 2,
            np.asarray(length_scale, dtype=np.float64),
        )
    ]
    y, e2, L = arrays

    def make_log_f(sel):
        yy, ee, ll = (a if sel is None else a[sel] for a in arrays)
        const = (-0.5 * LOG2PI - 0.5 * np.log(ee) - np.log(2.0 * ll**3))[..., None]
        yy, ee, ll = yy[..., None], ee[..., None], ll[..., None]

        def log_f(r):
            return const - 0.5 * (yy - 1000.0 / r) ** 2 / ee + 2.0 * np.log(r) - r / ll

        return log_f

    def newton_terms(r):
        gt, dgt = 1000.0 / r, -1000.0 / r**2
        grad = (y - gt) * dgt / e2 + 2.0 / r - 1.0 / L
        prec = dgt**2 / e2 + 2.0 / r**2
        return grad, prec

    # Starts: the prior's mode 2L and the inverse parallax where positive.
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(y > 0, 1000.0 / y, 2.0 * L)
    starts = np.stack([2.0 * L, inv])
    span = (3.0 * L, 2.5 * L)  # bulk of r² exp(-r/L): tail beyond 33 L < 1e-10
    return make_log_f, newton_terms, starts, span


def field_log_marginal(parallax, parallax_error, length_scale):
    """log ∫ N(parallax | 1000/r, err²) r² exp(-r/L) / (2L³) dr (Bailer-Jones 2015)."""
    shape = np.broadcast_shapes(np.shape(parallax), np.shape(parallax_error),
                                np.shape(length_scale))
    make_log_f, newton_terms, starts, span = _edsd_pieces(
        parallax, parallax_error, length_scale
    )
    out, _, _ = adaptive_log_integral(make_log_f, newton_terms, starts, lower=0.0, span=span)
    return np.reshape(out, shape)


def _field_sample(parallax, parallax_error, length_scale, u, n_grid=513):
    shape = u.shape
    make_log_f, newton_terms, starts, span = _edsd_pieces(
        np.broadcast_to(parallax, shape), parallax_error, length_scale
    )
    draws = adaptive_sample(
        make_log_f, newton_terms, starts, lower=0.0, span=span, u=u, n_grid=n_grid,
    )
    return np.reshape(draws, shape)


# -- frozen quadrature rules (fast likelihood for importance sampling) --------

#: Stars from which the frozen-rule likelihood is tried for importance sampling.
FROZEN_MIN_STARS = 1000
#: Stars from which ``sampler="auto"`` integrates the population posterior by
#: adaptive Gauss–Hermite quadrature (the posterior is then close to Gaussian
#: and the quadrature converges with few nodes; smaller samples are
#: importance-sampled).
QUADRATURE_MIN_STARS = 1000
#: Largest |frozen - exact| log-posterior difference accepted on the check draws.
FROZEN_TOL = 0.01
#: Node counts tried for each star's frozen Gauss–Hermite rule: a star gets
#: the smallest one that reproduces the full rule's log-integral within
#: ``FROZEN_NODE_TOL`` at the draw the rules are built for and within
#: ``FROZEN_SPREAD_TOL`` at check draws spread around it (near-Gaussian
#: integrands need only a few nodes; the exact check on the importance draws
#: still applies).
FROZEN_NODE_COUNTS = (4, 6, 8, 12, 16)
FROZEN_NODE_TOL = 1e-12
FROZEN_SPREAD_TOL = 1e-9
#: Node counts tried for the prior-centred rule (Gauss–Hermite in the
#: cluster's standard normal variable), used for stars whose parallax
#: likelihood is broad compared with the cluster's depth.
PRIOR_GH_NODES = (8, 12, 16, 24, 32, 48)
# (draws x stars x nodes) cells of one frozen-table chunk (~8 MB of float64).
_CELLS_FROZEN = 1_000_000


def _cluster_rules(parallax, parallax_error, mean, dispersion, n_nodes=None):
    """Quadrature rules of each star's cluster integral at one population draw."""
    from ._population import DEFAULT_NODES, _gaussian_latent_pieces, _gaussian_latent_starts

    y, loc, make_log_f, newton_terms = _gaussian_latent_pieces(
        parallax, parallax_error, mean, dispersion, _g, _dg
    )
    starts = _gaussian_latent_starts(y, loc, _g_inv, 0.0, np.inf)
    return quadrature_rules(
        make_log_f, newton_terms, starts, lower=0.0,
        span=(loc, np.broadcast_to(dispersion, y.shape)),
        n_nodes=DEFAULT_NODES if n_nodes is None else n_nodes,
    )


def _fewer_nodes(build, evaluate, n):
    """Frozen rules with each star's smallest adequate Gauss–Hermite rule.

    ``build(n_nodes)`` returns :func:`quadrature_rules`' groups and
    ``evaluate(groups)`` their (n_check, n) log-integrals at the check draws,
    the first of which is the draw the rules are built for. The
    single-mode Gauss–Hermite group (``K = DEFAULT_NODES`` nodes) is split
    by node count: a star gets the first of ``FROZEN_NODE_COUNTS`` that
    agrees with the full rule at every check draw (see ``FROZEN_NODE_TOL``).
    """
    from ._population import DEFAULT_NODES

    full = build(DEFAULT_NODES)
    simple = [g for g in full if g[1].shape[1] == DEFAULT_NODES]
    if not simple:
        return full
    idx = simple[0][0]
    ref = evaluate(simple)[:, idx]
    tol = np.full((ref.shape[0], 1), FROZEN_SPREAD_TOL)
    tol[0] = FROZEN_NODE_TOL
    todo = np.ones(len(idx), dtype=bool)
    groups = [g for g in full if g[1].shape[1] != DEFAULT_NODES]
    for m in FROZEN_NODE_COUNTS:
        cand = [g for g in build(m) if g[1].shape[1] == m]
        if not cand or not np.array_equal(cand[0][0], idx):
            break
        val = evaluate(cand)[:, idx]
        with np.errstate(invalid="ignore"):
            close = (np.abs(val - ref) < tol) | (val == ref)
        good = todo & np.all(close, axis=0)
        if np.any(good):
            groups.append((idx[good], cand[0][1][good], cand[0][2][good]))
            todo &= ~good
    if np.any(todo):
        groups.append((idx[todo], simple[0][1][todo], simple[0][2][todo]))
    return groups


def _prior_gh_logint(p, groups, parallax, parallax_error, out, ref=None):
    """Cluster log-integrals with Gauss–Hermite nodes in z = (r - mu_r) / sigma_r.

    ``∫ N(parallax | 1000 / r + zp, err²) N(r | mu_r, sigma_r²) dr`` (over
    r > 0) as ``Σ_q w_q N(parallax | 1000 / r_q + zp, err²)`` with
    ``r_q = mu_r + sigma_r sqrt(2) x_q``: the nodes depend on the draw only,
    so the (draw, star, node) table is a rank-4 product of per-star
    features ``[log-const - parallax² / (2 err²), parallax / err²,
    -1 / (2 err²), 1]`` and per-(draw, node) features ``[1, h, h², log w]``
    with ``h = 1000 / r_q + zp``. Accurate when the parallax likelihood is
    smooth on the scale of sigma_r (checked per star by the caller).
    ``groups``: list of ``(idx, n_nodes)``; results go to ``out[:, idx]``.
    """
    from ._population import gauss_hermite

    mu, sd, zp = p["mean_distance"], p["distance_dispersion"], p["zero_point"]
    k = len(mu)
    for idx, K in groups:
        x, lw = gauss_hermite(K)
        with np.errstate(all="ignore"):
            r = mu[:, None] + sd[:, None] * np.sqrt(2.0) * x
            valid = r > 0
            h = zp[:, None] + np.where(valid, 1000.0 / r, 0.0)
            logw = np.where(valid, lw - x**2 - 0.5 * np.log(np.pi), -np.inf)
        dn = np.stack([np.ones_like(h), h, h * h, logw], axis=-1)
        plx, e2 = parallax[idx], parallax_error[idx] ** 2
        c = -0.5 * np.log(2 * np.pi * e2) - 0.5 * plx**2 / e2
        if ref is not None:
            c = c - ref[idx]
        feats = np.stack([c, plx / e2, -0.5 / e2, np.ones_like(c)])
        step = max(1, _CELLS_FROZEN // max(k * K, 1))
        for start in range(0, len(idx), step):
            sl = slice(start, min(start + step, len(idx)))
            with np.errstate(all="ignore"):
                t = np.einsum("kqj,ji->kiq", dn, feats[:, sl])
                if ref is None:
                    out[:, idx[sl]] = logsumexp(np.where(np.isnan(t), -np.inf, t), axis=-1)
                    continue
                np.exp(t, out=t)
                tot = t.sum(axis=-1)
                val = np.log(tot) + ref[idx[sl]][None, :]
            bad = ~((tot > 1e-280) & (tot < 1e280))
            if np.any(bad):
                wi, ni = np.nonzero(bad)
                with np.errstate(all="ignore"):
                    tb = np.einsum("kqj,jk->kq", dn[wi], feats[:, sl][:, ni])
                    tb = tb + ref[idx[sl]][ni][:, None]
                    val[wi, ni] = logsumexp(np.where(np.isnan(tb), -np.inf, tb), axis=-1)
            out[:, idx[sl]] = val
    return out


def _frozen_design(groups, parallax, parallax_error, kind, zero_point, center, scale):
    """Parameter-free design of the frozen log-integrands.

    For each group ``(idx, nodes, logw)`` returns ``(idx, D)`` with ``D`` of
    shape ``(J, len(idx), K)`` such that the log-integrand at every node is
    ``coefs @ D`` for the per-draw coefficient vector of
    :meth:`_DistanceModel._frozen_coefs`: rows are ``1``, the
    draw-independent part (quadrature log-weight, parallax likelihood at a
    fixed zero-point or at zero-point 0, and ``2 log r`` for the field),
    then the features multiplied by draw-dependent coefficients (cluster:
    ``s²`` and ``s`` with ``s = (r - center) / scale``; field: ``r``; a
    fitted zero-point adds ``u / err²`` and ``-1 / (2 err²)`` with
    ``u = parallax - 1000 / r``). Centring and scaling keep the expanded
    quadratic free of cancellation.
    """
    out = []
    for idx, nodes, logw in groups:
        s2 = parallax_error[idx, None] ** 2
        u = parallax[idx, None] - 1000.0 / nodes
        zp = 0.0 if zero_point is None else zero_point
        with np.errstate(divide="ignore", invalid="ignore"):
            fixed = logw - 0.5 * np.log(2 * np.pi * s2) - 0.5 * (u - zp) ** 2 / s2
            if kind == "field":
                fixed = fixed + 2.0 * np.log(nodes)
        fixed = np.where(np.isfinite(logw), fixed, -np.inf)
        rows = [np.ones_like(nodes), fixed]
        if kind == "cluster":
            z = (nodes - center) / scale
            rows += [z * z, z]
        else:
            rows += [nodes]
        if zero_point is None:
            rows += [u / s2, np.broadcast_to(-0.5 / s2, nodes.shape)]
        out.append((idx, np.ascontiguousarray(np.stack(rows))))
    return out


def _frozen_logint(design, coefs, n, ref=None):
    """(k, n) log-integrals ``log Σ_K exp(coefs @ D)`` of every star.

    ``ref`` (n,), when given, is subtracted inside the exponential so that no
    per-entry maximum is needed; entries whose sum under- or overflows are
    redone the stable way.
    """
    k = coefs.shape[0]
    out = np.full((k, n), -np.inf)
    for idx, D in design:
        J, r, K = D.shape
        step = max(1, _CELLS_FROZEN // max(k * K, 1))
        for start in range(0, r, step):
            sl = slice(start, min(start + step, r))
            Dc = D[:, sl]
            ii = idx[sl]
            with np.errstate(all="ignore"):
                t = np.einsum("kj,jm->km", coefs, Dc.reshape(J, -1)).reshape(k, -1, K)
                if ref is None:
                    out[:, ii] = logsumexp(np.where(np.isnan(t), -np.inf, t), axis=-1)
                    continue
                t -= ref[ii][None, :, None]
                np.exp(t, out=t)
                tot = t.sum(axis=-1)
                val = np.log(tot) + ref[ii][None, :]
            bad = ~((tot > 1e-280) & (tot < 1e280))
            if np.any(bad):
                wi, ni = np.nonzero(bad)
                with np.errstate(all="ignore"):
                    tb = np.einsum("kj,jkq->kq", coefs[wi], Dc[:, ni])
                    val[wi, ni] = logsumexp(np.where(np.isnan(tb), -np.inf, tb), axis=-1)
            out[:, ii] = val
    return out



class FrozenRulesMixin:
    """Per-star quadrature rules frozen at one population draw (a fast likelihood).

    Mixed into the distance model, whose ``parallax``, ``parallax_error``,
    ``field``, ``field_const``, ``zero_point``, ``_unpack``, ``log_prior``,
    ``log_prob`` and ``sum_objects`` it uses.
    """

    def freeze(self, theta, spread=None, validate=False):
        """Freeze per-star rules at ``theta`` (see :meth:`_freeze_at`).

        With ``validate``, the frozen log-posterior is compared with the
        exact one at the check draws ``theta ± spread`` (each coordinate and
        both diagonals); each side whose check draw differs by more than
        ``FROZEN_TOL / 10`` is shrunk (at most 6 rounds).
        :meth:`log_prob_frozen` then uses the frozen rules only inside the
        validated box and the exact likelihood outside it.
        """
        theta = np.atleast_2d(theta)[0]
        self.frozen_box_ = None
        if not validate:
            self._freeze_at(theta, spread)
            return
        spread = np.asarray(np.broadcast_to(spread, theta.shape), dtype=float)
        lo, hi = spread.copy(), spread.copy()
        for _ in range(6):
            checks = self._freeze_at(theta, (lo, hi))
            self.frozen_box_ = None
            with np.errstate(all="ignore"):
                diff = np.abs(self.log_prob_frozen(checks) - self.log_prob(checks))
            bad = ~(diff <= 0.1 * FROZEN_TOL)
            if not np.any(bad):
                break
            # Shrink only the sides whose check draws fail.
            p = theta.size
            up, down = bad[1:1 + 2 * p:2], bad[2:2 + 2 * p:2]
            if bad[-2] and not np.any(up):
                up[:] = True
            if bad[-1] and not np.any(down):
                down[:] = True
            hi = np.where(up, hi / 1.5, hi)
            lo = np.where(down, lo / 1.5, lo)
        self.frozen_box_ = (theta, lo, hi)

    def _freeze_at(self, theta, spread=None):
        """Build per-star quadrature rules at the population draw ``theta``.

        Check draws: ``theta``, ``theta + hi_j e_j``, ``theta - lo_j e_j``
        for every sampler coordinate j, ``theta + hi`` and ``theta - lo``
        (``spread = (lo, hi)`` or one array for both; default 0.1). Each
        star's cluster integral gets the first rule that agrees with the
        exact (adaptive) integral at every check draw: Gauss–Hermite nodes
        in the cluster's standard variable (:func:`_prior_gh_logint`, for
        likelihoods broad against the depth) with the fewest of
        ``PRIOR_GH_NODES`` nodes, else the adaptive rule frozen at
        ``theta`` with the fewest adequate nodes (:func:`_fewer_nodes`).
        Rules are stored as parameter-free designs, so that the frozen
        likelihood of a batch of draws is one small matrix product, an
        exponential and a sum per (draw, star, node). Returns the check
        draws.
        """
        theta = np.atleast_2d(theta)[0]
        if not isinstance(spread, tuple):
            spread = (0.1 if spread is None else spread,) * 2
        lo, hi = (np.broadcast_to(a, theta.shape) for a in spread)
        steps = [np.zeros_like(theta)]
        for j in range(theta.size):
            e = np.zeros_like(theta)
            e[j] = 1.0
            steps += [hi * e, -lo * e]
        steps += [hi, -lo]
        pc = self._unpack(theta + np.array(steps))
        from ._population import _gaussian_latent_pieces

        p = self._unpack(theta[None])
        zp = p["zero_point"][0]
        y = self.parallax - zp
        mu, sd = p["mean_distance"][0], p["distance_dispersion"][0]
        n = len(y)
        _, _, make_log_f, _ = _gaussian_latent_pieces(y, self.parallax_error, mu, sd, _g, _dg)

        def build(m):
            return _cluster_rules(y, self.parallax_error, mu, sd, n_nodes=m)

        fixed_zp = None if self.zero_point is None else self.zero_point
        self.frozen_center_ = (float(mu), float(sd))

        def evaluate(kind):
            def f(groups):
                design = _frozen_design(groups, self.parallax, self.parallax_error, kind,
                                        fixed_zp, mu, sd)
                return _frozen_logint(design, self._frozen_coefs(pc, kind), n)
            return f

        # Stars whose likelihood is smooth on the cluster's scale: nodes in
        # the cluster's own standard variable, checked against the exact
        # adaptive integral at the check draws.
        with np.errstate(all="ignore"):
            exact = gaussian_latent_log_marginal(
                self.parallax[None, :] - pc["zero_point"][:, None], self.parallax_error[None, :],
                pc["mean_distance"][:, None], pc["distance_dispersion"][:, None], _g, _dg,
                g_inv=_g_inv, lower=0.0,
            )
        tol = np.full((exact.shape[0], 1), FROZEN_SPREAD_TOL)
        tol[0] = FROZEN_NODE_TOL * 10
        todo = np.ones(n, dtype=bool)
        self.frozen_prior_ = []
        last = None
        for m in PRIOR_GH_NODES:
            idx = np.flatnonzero(todo)
            if not idx.size:
                break
            val = _prior_gh_logint(pc, [(idx, m)], self.parallax, self.parallax_error,
                                   np.full((exact.shape[0], n), -np.inf))[:, idx]
            with np.errstate(invalid="ignore"):
                good = np.all((np.abs(val - exact[:, idx]) < tol) & np.isfinite(val), axis=0)
            if np.any(good):
                self.frozen_prior_.append((idx[good], m))
                todo[idx[good]] = False
            last = (idx, val)
        rules = _fewer_nodes(build, evaluate("cluster"), n)
        if np.any(todo):
            # Neither rule is within tolerance at every check draw: keep the
            # one that is closer to the exact integral at its worst check
            # draw (the caller then shrinks the validated box).
            idx, val = last
            with np.errstate(invalid="ignore"):
                err_z = np.max(np.abs(val - exact[:, idx]), axis=0)
                err_f = np.max(np.abs(evaluate("cluster")(rules)[:, idx] - exact[:, idx]), axis=0)
            use_z = ~(err_f <= err_z) & todo[idx]
            if np.any(use_z):
                self.frozen_prior_.append((idx[use_z], PRIOR_GH_NODES[-1]))
                todo[idx[use_z]] = False
        rules = [(i[todo[i]], nd[todo[i]], w[todo[i]]) for i, nd, w in rules]
        self.frozen_cluster_ = _frozen_design(
            [g for g in rules if g[0].size], self.parallax, self.parallax_error,
            "cluster", fixed_zp, mu, sd,
        )
        self.frozen_field_ = None
        if self.field and self.field_const is None:
            fm, fnt, fstarts, fspan = _edsd_pieces(y, self.parallax_error,
                                                   p["field_length_scale"][0])

            def build_f(m):
                return quadrature_rules(fm, fnt, fstarts, lower=0.0, span=fspan, n_nodes=m)

            self.frozen_field_ = _frozen_design(
                _fewer_nodes(build_f, evaluate("field"), n), self.parallax, self.parallax_error,
                "field", fixed_zp, mu, sd,
            )
        # Reference log-integrals at the freeze draw (no per-entry maximum later).
        self.frozen_ref_ = {}
        self.frozen_ref_["cluster"] = self._frozen_cluster(p, None)[0]
        if self.frozen_field_ is not None:
            self.frozen_ref_["field"] = _frozen_logint(
                self.frozen_field_, self._frozen_coefs(p, "field"), n)[0]
        for key, ref in self.frozen_ref_.items():
            self.frozen_ref_[key] = np.where(np.isfinite(ref), ref, 0.0)
        return theta + np.array(steps)

    def _frozen_cluster(self, p, ref):
        """(k, n) frozen cluster log-integrals (both kinds of rules)."""
        out = _frozen_logint(self.frozen_cluster_, self._frozen_coefs(p, "cluster"),
                             len(self.parallax), ref)
        return _prior_gh_logint(p, self.frozen_prior_, self.parallax, self.parallax_error,
                                out, ref)

    def _frozen_coefs(self, p, kind):
        """(k, J) coefficients of the frozen design rows for the draws ``p``."""
        k = len(p["mean_distance"])
        if kind == "cluster":
            c, s = self.frozen_center_
            mu, sd = p["mean_distance"], p["distance_dispersion"]
            d = c - mu
            cols = [-0.5 * (d / sd) ** 2 - np.log(sd) - 0.5 * LOG2PI, np.ones(k),
                    -0.5 * (s / sd) ** 2, -s * d / sd**2]
        else:
            L = p["field_length_scale"]
            cols = [-np.log(2.0 * L**3), np.ones(k), -1.0 / L]
        if self.zero_point is None:
            zp = p["zero_point"]
            cols += [zp, zp**2]
        return np.stack(cols, axis=1)

    def log_prob_frozen(self, theta):
        """:meth:`log_prob` with the per-star rules frozen by :meth:`freeze`."""
        theta = np.atleast_2d(theta)
        n = len(self.parallax)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            lp = self.log_prior(theta)
            ok = np.isfinite(lp)
            total = np.full(len(theta), -np.inf)
            box = getattr(self, "frozen_box_", None)
            if box is not None:
                # Outside the validated box: the exact likelihood.
                dev = theta - box[0]
                out = ok & np.any((dev > box[2] * (1 + 1e-9)) | (-dev > box[1] * (1 + 1e-9)),
                                  axis=1)
                if np.any(out):
                    total[out] = self.log_prob(theta[out])
                    ok &= ~out
            if np.any(ok):
                p = self._unpack(theta[ok])
                lc = self._frozen_cluster(p, self.frozen_ref_["cluster"])
                lc -= log_ndtr(p["mean_distance"] / p["distance_dispersion"])[:, None]
                if self.field:
                    f = p["cluster_fraction"][:, None]
                    if self.field_const is not None:
                        lf = self.field_const[None, :]
                    else:
                        lf = _frozen_logint(self.frozen_field_, self._frozen_coefs(p, "field"),
                                            n, self.frozen_ref_["field"])
                    lc = np.logaddexp(lc + np.log(f), lf + np.log1p(-f))
                total[ok] = lp[ok] + self.sum_objects(lc)
        return np.where(np.isfinite(total), total, -np.inf)



class GridMediansMixin:
    """Per-star posterior median distances on a grid (no field population)."""

    def median_distances(self, p, parallax, parallax_error, *, return_error=False):
        """Per-star posterior median distances, without a field population.

        The posterior of a star's distance is the average over population
        draws of its conditional posteriors p(r | parallax, alpha_s). Each
        conditional is evaluated on one grid per star (covering every
        conditional's bulk to 10 local widths, and the population to 12
        dispersions for broad ones), normalised, and averaged; the median
        is the exact inverse of the piecewise-linear mixture density's CDF.
        A subset of ``_MEDIAN_SUBSET`` draws is used first; stars whose
        median's Monte Carlo error ``sd_s(F_s(m)) / sqrt(S) / p(m)``
        exceeds ``_MEDIAN_MC_TOL`` times their posterior sd are redone with
        four times as many draws (the same nested subsets for every star),
        and so on up to all of them: each star's median depends on its own
        data only. With ``return_error``, also returns that Monte Carlo error and
        the posterior sd of each star.
        """
        k = len(p["mean_distance"])
        n = len(parallax)
        order = np.random.RandomState(0).permutation(k)
        med, mc, sd = np.empty(n), np.empty(n), np.empty(n)
        idx = np.arange(n)
        size = min(k, _MEDIAN_SUBSET)
        while idx.size:
            sub = np.sort(order[:size])
            med[idx], mc[idx], sd[idx] = self._grid_medians(
                {a: v[sub] for a, v in p.items()}, parallax[idx], parallax_error[idx])
            ratio = mc[idx] / (_MEDIAN_MC_TOL * sd[idx])
            redo = ~(ratio <= 1.0)
            if size == k or not np.any(redo):
                break
            # A fixed ladder of subset sizes (x4 each time; Monte Carlo error
            # ~ 1/sqrt(draws) halves), so that a star's result depends on its
            # own error only, never on the other stars predicted with it.
            size = min(k, 4 * size)
            idx = idx[redo]
        if return_error:
            return med, mc, sd
        return med

    def _grid_medians(self, p, parallax, parallax_error):
        """(median, its Monte Carlo error, posterior sd) per star from draws ``p``."""
        from ._population import (
            _gaussian_latent_pieces,
            _gaussian_latent_starts,
            _multimodal_gauss_hermite,
            sample_log_density,
        )

        k, n = len(p["mean_distance"]), len(parallax)
        mu, sd, zp = p["mean_distance"], p["distance_dispersion"], p["zero_point"]
        # Grid ends: the conditionals at the draws with extreme parameters.
        pick = np.unique(np.concatenate([[np.argmin(v), np.argmax(v)] for v in (mu, sd, zp)]
                                        + [[0]]))
        y = parallax[None, :] - zp[pick, None]
        yy, loc, make_log_f, newton = _gaussian_latent_pieces(
            y, parallax_error[None, :], mu[pick, None], sd[pick, None], _g, _dg)
        starts = _gaussian_latent_starts(yy, loc, _g_inv, 0.0, np.inf)
        scale = np.broadcast_to(sd[pick, None], yy.shape)
        (modes, precs, broad, _, fm), _, _ = _multimodal_gauss_hermite(
            make_log_f, newton, starts, 0.0, np.inf, 0, 8, (loc, scale))
        half = 10.0 / np.sqrt(precs)
        ok = np.isfinite(fm) & np.isfinite(half)
        lo = np.min(np.where(ok, modes - half, np.inf), axis=(0, 1))
        hi = np.max(np.where(ok, modes + half, -np.inf), axis=(0, 1))
        p_lo = np.min(np.where(broad, loc - 12.0 * scale, np.inf), axis=0)
        p_hi = np.max(np.where(broad, loc + 12.0 * scale, -np.inf), axis=0)
        lo, hi = np.minimum(lo, p_lo), np.maximum(hi, p_hi)
        lo = np.maximum(lo, 1e-6 * hi)
        G = _MEDIAN_GRID_POINTS
        grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, G)
        h = (hi - lo) / (G - 1)
        # log conditional density (up to a constant per draw and star) as
        # coefs (k, J) @ design (J, n, G), centred and scaled against cancellation.
        e2 = parallax_error[:, None] ** 2
        u = parallax[:, None] - 1000.0 / grid
        c, s = float(np.median(mu)), float(np.median(sd))
        z = (grid - c) / s
        rows = [-0.5 * u**2 / e2, z * z, z]
        cols = [np.ones(k), -0.5 * (s / sd) ** 2, -s * (c - mu) / sd**2]
        if np.any(zp != 0):
            rows.append(u / e2)
            cols.append(zp)
        design = np.stack(rows)
        coefs = np.stack(cols, axis=1)
        trap = np.ones(G)
        trap[[0, -1]] = 0.5
        med, mc, post_sd = np.empty(n), np.empty(n), np.empty(n)
        step = max(1, _CELLS_GRID // (k * G))
        cols_g = np.arange(G)
        # One pass over chunks of stars: each star's median needs only its
        # own conditionals, so they are computed once, for the mixture, its
        # median and the draws' CDFs there.
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            m = sl.stop - sl.start
            # Each draw's normalised conditional density of the stars: (k, m, G).
            t = np.einsum("kj,jm->km", coefs, design[:, sl].reshape(len(rows), -1))
            t = t.reshape(k, m, G)
            t -= t.max(axis=-1, keepdims=True)
            np.exp(t, out=t)
            t /= (t @ trap)[..., None]
            mix = t.mean(axis=0)
            with np.errstate(divide="ignore"):
                log_mix = np.log(mix)
            med[sl] = sample_log_density(lambda _, lm=log_mix: lm, grid[sl, 0], np.ones(m),
                                         bounds=(lo[sl], hi[sl]), u=np.full(m, 0.5), n_grid=G)
            # Posterior sd, and the Monte Carlo error of the median from the
            # spread of the draws' CDFs at it.
            g, hh = grid[sl], h[sl]
            mass = mix @ trap * hh
            mean = (mix * g) @ trap * hh / mass
            post_sd[sl] = np.sqrt(np.maximum(
                (mix * (g - mean[:, None]) ** 2) @ trap * hh / mass, 0))
            j = np.clip(((med[sl] - lo[sl]) / hh).astype(int), 0, G - 2)
            frac = (med[sl] - g[np.arange(m), j]) / hh
            # The draws' trapezoidal CDFs at the median, linear between grid
            # points, as one weighted sum over the grid per star.
            wts = np.where(cols_g < j[:, None], 1.0, 0.0)
            wts[:, 0] *= 0.5
            wts[np.arange(m), j] += np.where(j > 0, 0.5, 0.0) + 0.5 * frac
            wts[np.arange(m), j + 1] += 0.5 * frac
            cdf_at = np.einsum("kmg,mg->km", t, wts)
            dens = mix[np.arange(m), j] * (1 - frac) + mix[np.arange(m), j + 1] * frac
            with np.errstate(divide="ignore", invalid="ignore"):
                err_c = np.std(cdf_at, axis=0) / np.sqrt(k) / (dens / hh)
            mc[sl] = np.where(np.isfinite(err_c), err_c, np.inf)
        return med, mc, post_sd



# -- samplers over the population posterior that use these integrals ------------


def frozen_importance(model, rng, n_draws):
    """Importance sampling with frozen per-star quadrature rules.

    The rules are built at the MAP (found with rules frozen at the start,
    refrozen at the optimum and polished), the importance draws use the
    frozen likelihood, and the result is accepted only when the exact
    log-posterior agrees within ``FROZEN_TOL`` on the 8 heaviest and 8
    random draws (and, before sampling, on 8 points 2.5 Laplace widths
    from the MAP). Returns ``(result, frozen_check)``: the importance result
    (None when the frozen likelihood fails a check; the caller then uses the
    exact one) and the largest frozen-vs-exact log-posterior difference
    found on the check points (None when none were compared).
    """
    x = model.initial_point()
    # Freeze, find the frozen posterior's maximum (Newton steps on
    # vectorised finite-difference stencils), refreeze there, until the
    # maximum moves by less than half a Laplace width (3 rounds at most).
    cov = None
    for _ in range(3):
        model.freeze(x)
        x_new = newton_map(model.log_prob_frozen, x)
        cov = laplace_covariance(model.log_prob_frozen, x_new)
        moved = np.inf
        if cov is not None:
            d = x_new - x
            moved = float(np.sqrt(d @ np.linalg.solve(cov, d)))
        x = x_new
        if moved < 0.5:
            break
    if cov is None:
        return None, None
    # Rules for the importance draws: node counts checked 5 Laplace
    # widths out along every coordinate (less where that fails; draws
    # outside the validated box then use the exact likelihood).
    model.freeze(x, spread=5.0 * np.sqrt(np.diag(cov)), validate=True)
    # Cheap pre-check on 8 points spread over 2.5 Laplace widths: where
    # the population posterior is wide compared with the stars'
    # integrands (noisy parallaxes, few stars), frozen rules fail at once.
    z = rng.standard_normal((8, x.size))
    pre = x + 2.5 * z / np.linalg.norm(z, axis=1, keepdims=True) @ np.linalg.cholesky(cov).T
    diff = np.abs(model.log_prob(pre) - model.log_prob_frozen(pre))
    if not np.all(np.isfinite(diff)) or np.max(diff) > FROZEN_TOL:
        return None, float(np.max(diff))
    result = run_importance(
        model.log_prob_frozen, x, x_map=x, cov=cov, n_draws=n_draws, random_state=rng,
    )
    if result is None:
        return None, None
    heavy = np.argsort(result.weights)[-8:]
    rand = rng.choice(len(result.weights), 8, replace=False)
    check = result.raw_draws[np.concatenate([heavy, rand])]
    diff = np.abs(model.log_prob(check) - model.log_prob_frozen(check))
    frozen_check = float(np.max(diff))
    if not np.all(np.isfinite(diff)) or frozen_check > FROZEN_TOL:
        return None, frozen_check
    return result, frozen_check


#: Starting lattice of a field model's MAP search (see :func:`_depth_start`):
#: depths as fractions of the starting distance, and cluster fractions.
FIELD_START_DEPTHS = (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3)
FIELD_START_FRACTIONS = (0.2, 0.5, 0.8, 0.95)


def _depth_start(model):
    """The model's starting point, with the depth from the parallaxes' excess
    variance when there is no field: ``sx² = var(parallax) - mean(err²)`` is
    the cluster's depth in parallax (delta method), ``sigma_r = sx mu² /
    1000``; a start within a few posterior sd of the maximum saves most
    Newton steps for large samples. Left as it is when the excess is not
    positive (a depth the data do not resolve). With a field, whose stars
    make the excess meaningless: the best of a small lattice of depths
    (``FIELD_START_DEPTHS`` times the distance) and cluster fractions
    (``FIELD_START_FRACTIONS``), evaluated in one call (the fractions share
    each depth's cluster integrals). A mixture's posterior can have a mode
    where the "cluster" absorbs the field (a depth of kpc): the lattice
    starts the search in the higher one."""
    x = model.initial_point()
    if model.field and model.simple:
        mean = float(model._unpack(x)["mean_distance"][0])
        j = model.param_names.index("log_dispersion")
        jf = model.param_names.index("logit_cluster_fraction")
        depths = np.log(mean * np.asarray(FIELD_START_DEPTHS))
        fractions = logit(np.asarray(FIELD_START_FRACTIONS))
        cand = np.repeat(x[None, :], depths.size * fractions.size, axis=0)
        cand[:, j] = np.repeat(depths, fractions.size)
        cand[:, jf] = np.tile(fractions, depths.size)
        with np.errstate(all="ignore"):
            lp = model.log_prob(cand)
        return cand[np.argmax(lp)] if np.any(np.isfinite(lp)) else x
    if model.field or not model.simple:
        return x
    excess = float(np.var(model.parallax) - np.mean(model.parallax_error**2))
    if excess > 0:
        mean = float(model._unpack(x)["mean_distance"][0])
        depth = np.clip(np.sqrt(excess) * mean**2 / 1000.0, 1e-3 * mean, 0.5 * mean)
        x[model.param_names.index("log_dispersion")] = np.log(depth)
    return x


def _concave_start(log_prob, x, max_iter=20):
    """Climb from ``x`` into the log-density's concave region around its maximum.

    Newton's method needs a concave start; a mixture's log-posterior is not
    concave everywhere (with a field, a far cluster's depth start sits on
    the shoulder of a posterior that is flat towards zero depth), and where
    it is not, :func:`~skhier._sampling.newton_map` hands over to a slow
    scalar search. Here each step is the saddle-free Newton step
    ``V |Λ|^-1 V' g`` (Dauphin et al. 2014, "Identifying and attacking the
    saddle point problem", NeurIPS): curvature magnitudes in place of the
    negative Hessian (the Newton step where the log-density is concave),
    so that it climbs along directions of positive curvature too, halved
    until the log-density increases. It stops where the Hessian is negative
    definite and the predicted gain of a Newton step is below 1 (within
    about one Laplace width of the maximum), for Newton to polish.
    """
    for _ in range(max_iter):
        out = _fd_derivatives(log_prob, x)
        if out is None:
            break
        f0, grad, hess = out
        lam, vec = np.linalg.eigh(hess)
        mag = np.maximum(np.abs(lam), 1e-3 * np.abs(lam).max())
        step = vec @ ((vec.T @ grad) / mag)
        if lam.max() < 0 and 0.5 * float(grad @ step) < 1.0:
            break
        for t in 0.5 ** np.arange(10):
            with np.errstate(all="ignore"):
                f1 = log_prob((x + t * step)[None, :])[0]
            if np.isfinite(f1) and f1 > f0:
                x = x + t * step
                break
        else:
            break
    return x


def population_quadrature(model, rng, n_draws):
    """Deterministic quadrature of the exact collapsed posterior.

    MAP by Newton steps, Laplace covariance, then the adaptive Gauss–Hermite
    rules of :func:`skhier._quadrature.run_quadrature` on the model's
    ``log_prob`` (whose cluster integrals cost O(1) per star and draw, see
    :func:`cluster_log_marginal_leading`). When those do not converge (the
    posterior is far from Gaussian: typically a depth that the data barely
    resolve) and there are at most ``GRID_MAX_PARAMS`` parameters, the
    lattice quadrature of :func:`skhier._grid.run_grid`, with the depth
    integrated in ``sigma_r`` itself. The posterior moments have no Monte
    Carlo error; the result's ``error`` estimates the rule's error, in
    posterior sd. None when there is no Laplace approximation.
    """
    start = _concave_start(model.log_prob, _depth_start(model))
    x, cov = newton_map(model.log_prob, start, return_cov=True)
    if cov is None:
        cov = laplace_covariance(model.log_prob, x)
    if cov is None:
        return None
    result = run_quadrature(model.log_prob, x, cov, random_state=rng, n_draws=n_draws,
                            levels=QUADRATURE_LEVELS.get(x.size))
    if (result is None or not result.ok) and x.size <= GRID_MAX_PARAMS:
        grid = run_grid(model.log_prob, x, cov, random_state=rng, n_draws=n_draws,
                        scale_coords=[model.param_names.index("log_dispersion")])
        if grid is not None and (grid.ok or result is None):
            return grid
    return result
