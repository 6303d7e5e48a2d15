"""skhier.gaia: the per-star parallax zero-point helper (optional package)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skhier.gaia import gaia_zero_point

zpt = pytest.importorskip("zero_point.zpt")

# A small table of five stars: two five-parameter and one six-parameter
# solution inside the validity range, one too bright (G = 5.5) and one
# six-parameter solution with an out-of-range pseudocolour.
G = np.array([15.0, 17.2, 19.0, 5.5, 18.0])
NU = np.array([1.5, 1.45, np.nan, 1.6, np.nan])
PC = np.array([np.nan, np.nan, 1.5, np.nan, 1.8])
BETA = np.array([20.0, -45.0, 70.0, 5.0, -10.0])
SOL = np.array([31, 31, 95, 31, 95])


def test_matches_the_package_and_warns_with_the_count():
    with pytest.warns(UserWarning, match="2 of 5 stars lie outside the validity range"):
        got = gaia_zero_point(G, NU, PC, BETA, SOL)
    zpt.load_tables()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = zpt.get_zpt(G[:3], NU[:3], PC[:3], BETA[:3], SOL[:3])
    np.testing.assert_allclose(got[:3], ref, rtol=1e-12)
    # EDR3 zero-points are a few tens of µas, negative (Lindegren et al. 2021).
    assert np.all((got[:3] < 0) & (got[:3] > -0.1))


def test_in_range_table_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gaia_zero_point(G[:3], NU[:3], PC[:3], BETA[:3], SOL[:3])


@pytest.mark.parametrize("kwargs, match", [
    ({"astrometric_params_solved": [31, 31, 3]}, "31 .* or 95"),
    ({"ecl_lat": [0.0, 95.0, 0.0]}, r"ecl_lat must be finite and in \[-90, 90\]"),
    ({"pseudocolour": [np.nan, np.nan]}, r"pseudocolour must be shape \(3,\)"),
])
def test_bad_input(kwargs, match):
    args = {"phot_g_mean_mag": G[:3], "nu_eff_used_in_astrometry": NU[:3],
            "pseudocolour": PC[:3], "ecl_lat": BETA[:3], "astrometric_params_solved": SOL[:3]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gaia_zero_point(**args)
