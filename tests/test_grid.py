"""The lattice quadrature of skewed low-dimensional posteriors (skhier._grid),
checked against posteriors with closed-form moments."""

import numpy as np
import pytest

from skhier._grid import run_grid
from skhier._sampling import laplace_covariance, newton_map


def _half_normal_dispersion(theta):
    """theta = (a, log s): s ~ HalfNormal(1), a | s ~ N(0.5 s, 0.3²).

    Like a barely resolved depth: the density in s is flat at s = 0, so the
    density in log s has a long exponential tail towards -inf.
    """
    theta = np.atleast_2d(theta)
    a, ls = theta[:, 0], theta[:, 1]
    s = np.exp(ls)
    return -0.5 * s**2 - 0.5 * ((a - 0.5 * s) / 0.3) ** 2 + ls


def _gamma_dispersion(theta):
    """theta = (a, log s): s ~ Gamma(51, rate 10) (well away from 0), a | s ~ N(s, 1)."""
    theta = np.atleast_2d(theta)
    a, ls = theta[:, 0], theta[:, 1]
    s = np.exp(ls)
    return 51.0 * ls - 10.0 * s - 0.5 * (a - s) ** 2


def _exact(case):
    if case == "half-normal":
        ms, vs = np.sqrt(2 / np.pi), 1 - 2 / np.pi
        return np.array([0.5 * ms, ms]), np.sqrt([0.09 + 0.25 * vs, vs])
    ms, vs = 5.1, 0.51
    return np.array([ms, ms]), np.sqrt([1.0 + vs, vs])


@pytest.mark.parametrize("case", ["half-normal", "gamma"])
def test_grid_moments_match_closed_form(case):
    log_prob = _half_normal_dispersion if case == "half-normal" else _gamma_dispersion
    x = newton_map(log_prob, np.array([0.3, 0.0]))
    cov = laplace_covariance(log_prob, x)
    res = run_grid(log_prob, x, cov, random_state=np.random.RandomState(0), scale_coords=[1])
    assert res.ok, res.messages
    assert np.all(res.error < 0.02)
    y = res.nodes.copy()
    y[:, 1] = np.exp(y[:, 1])
    W = res.node_weights
    mean = W @ y
    sd = np.sqrt(W @ (y - mean) ** 2)
    exact_mean, exact_sd = _exact(case)
    # Deterministic: within the tolerance the rule was accepted at (the
    # estimate is Richardson's for a second-order rule; the mean of s is
    # the only second-order quantity here).
    np.testing.assert_array_less(np.abs(mean - exact_mean) / exact_sd, 0.02)
    np.testing.assert_array_less(np.abs(sd - exact_sd) / exact_sd, 0.02)
    # Draws from the refined lattice: means within 4 Monte Carlo sd
    # (false-failure rate ~6e-5 per coordinate; the jitter's added variance,
    # (step/4)²/12, is below 0.1 % of the variance).
    draws = res.samples.copy()
    draws[:, 1] = np.exp(draws[:, 1])
    n = len(draws)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - exact_mean) / exact_sd,
                                 4.0 / np.sqrt(n))
    assert np.all(draws[:, 1] > 0)


def test_grid_refuses_too_large_lattices():
    x = newton_map(_half_normal_dispersion, np.array([0.3, 0.0]))
    cov = laplace_covariance(_half_normal_dispersion, x)
    assert run_grid(_half_normal_dispersion, x, cov, random_state=np.random.RandomState(0),
                    scale_coords=[1], max_points=20) is None


def test_grid_is_deterministic_in_its_moments():
    x = newton_map(_gamma_dispersion, np.array([5.0, 1.6]))
    cov = laplace_covariance(_gamma_dispersion, x)
    a = run_grid(_gamma_dispersion, x, cov, random_state=np.random.RandomState(0),
                 scale_coords=[1])
    b = run_grid(_gamma_dispersion, x, cov, random_state=np.random.RandomState(1),
                 scale_coords=[1])
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not np.array_equal(a.samples, b.samples)
