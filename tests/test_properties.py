"""Property-based tests (hypothesis) over the estimators.

Examples are bounded (``max_examples``) and fits use short chains, so these
run in the default suite; the properties hold for any chain length.
"""

from __future__ import annotations

import io
import warnings

import joblib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_reliability import SPEC_IDS, SPECS, _call, _fit, _fitted

PROPS = settings(max_examples=8, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MEMBERSHIP_SPECS = [s for s in SPECS if "predict_membership_proba" in s.methods]


def _new_points(spec, data, seed, n):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data["X"]), n)
    X = data["X"][idx] * rng.uniform(0.5, 1.5, size=(n, 1)) if spec.name != "gmm" else (
        data["X"][idx] + rng.normal(0, 5, size=(n, data["X"].shape[1])))
    y = None if data["y"] is None else data["y"][idx] + rng.normal(0, 5, n)
    errors = {k: v[idx] * rng.uniform(0.5, 2.0) for k, v in data["errors"].items()}
    return {"X": X, "y": y, "errors": errors}


@PROPS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 30),
       which=st.sampled_from(range(len(MEMBERSHIP_SPECS))))
def test_membership_probabilities_are_probabilities(seed, n, which):
    spec = MEMBERSHIP_SPECS[which]
    est, data = _fitted(spec)
    pts = _new_points(spec, data, seed, n)
    proba = _call(est, "predict_membership_proba", pts, pts["X"], y=pts["y"],
                  errors=pts["errors"])
    assert proba.shape[0] == n
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


@PROPS
@given(seed=st.integers(0, 2**31 - 1), which=st.sampled_from(range(len(SPECS))))
def test_per_object_outputs_follow_a_permutation_of_the_rows(seed, which):
    spec = SPECS[which]
    est, data = _fitted(spec)
    perm = np.random.default_rng(seed).permutation(len(data["X"]))
    permuted = {"X": data["X"][perm], "y": None if data["y"] is None else data["y"][perm],
                "errors": {k: v[perm] for k, v in data["errors"].items()}}
    for method in spec.methods:
        if method == "score":
            continue
        a = _call(est, method, data, data["X"])
        b = _call(est, method, permuted, permuted["X"])
        np.testing.assert_allclose(b, a[perm], rtol=1e-12, atol=1e-12)


EMCEE_SPECS = [s for s in SPECS if s.name != "gmm"]


@PROPS
@given(seed=st.integers(0, 2**31 - 1), which=st.sampled_from(range(len(EMCEE_SPECS))))
def test_log_posterior_is_invariant_to_permuting_the_data(seed, which):
    spec = EMCEE_SPECS[which]
    data = spec.data(np.random.default_rng(seed % 1000))
    perm = np.random.default_rng(seed).permutation(len(data["X"]))
    permuted = {"X": data["X"][perm], "y": None if data["y"] is None else data["y"][perm],
                "errors": {k: v[perm] for k, v in data["errors"].items()}}
    a, b = _fit(spec, data), _fit(spec, permuted)
    rng = np.random.default_rng(seed)
    theta = a.chain_[-1] if getattr(a, "chain_", None) is not None else None
    if theta is None:
        return
    theta = theta[rng.integers(0, len(theta), 4)]
    np.testing.assert_allclose(a.model_.log_prob(theta), b.model_.log_prob(theta), rtol=1e-10)


@PROPS
@given(shift_x=st.floats(-1e3, 1e3), shift_y=st.floats(-1e3, 1e3),
       log_scale_x=st.floats(-6, 6), log_scale_y=st.floats(-6, 6))
def test_line_fit_is_equivariant_under_shift_and_scale(shift_x, shift_y, log_scale_x,
                                                       log_scale_y):
    spec = SPECS[SPEC_IDS.index("line")]
    data = spec.data(np.random.default_rng(7))
    ax, ay = 10.0**log_scale_x, 10.0**log_scale_y
    moved = {"X": data["X"] * ax + shift_x, "y": data["y"] * ay + shift_y,
             "errors": {"y_err": data["errors"]["y_err"] * ay,
                        "X_err": data["errors"]["X_err"] * ax}}
    a, b = _fit(spec, data), _fit(spec, moved)
    # The posterior maximum (a deterministic optimisation, converged to a
    # small fraction of the posterior width) moves with the data.
    sd_c = a.posterior_["coef"][:, 0].std()
    sd_b = a.posterior_["intercept"].std()
    assert abs(b.map_["coef"][0] * ax / ay - a.map_["coef"][0]) < 1e-3 * sd_c
    intercept_back = (b.map_["intercept"] - shift_y + b.map_["coef"][0] * shift_x) / ay
    assert abs(intercept_back - a.map_["intercept"]) < 1e-3 * sd_b + 1e-3 * sd_c * abs(
        shift_x / ax)


def test_fitted_estimators_round_trip_through_joblib():
    for spec in SPECS:
        est, data = _fitted(spec)
        buf = io.BytesIO()
        joblib.dump(est, buf)
        buf.seek(0)
        back = joblib.load(buf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for method in spec.methods:
                np.testing.assert_array_equal(_call(back, method, data, data["X"]),
                                              _call(est, method, data, data["X"]))
