"""Big catalogues: prediction in chunks of rows.

* Default suite: for every estimator, the per-row outputs (``predict``,
  ``predict_membership_proba``, ``score_samples`` / ``log_predictive_density``)
  are the same whether the rows are processed in many small chunks or in one
  pass, so chunking changes nothing but memory.
* Slow: prediction paths run (after a fit on small data) in a fresh
  subprocess, and the peak memory each call allocates (``tracemalloc``, which
  numpy reports its buffers to) is measured. Paths fast enough run on 10^7
  rows and must stay under 2 GiB. The others (minutes at 10^7 rows on this
  2-core machine) run at two sizes above every chunk size, and the test
  checks that the peak grows only by O(N) arrays (a few bytes a row, not a
  draws x rows table) and that the straight-line extrapolation to 10^7 rows
  stays under 2 GiB; ``benchmarks/scale.py`` reports the 10^7-row runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import skhier._base as base_module
import skhier._cluster_integral as cluster_integral
import skhier._distance as distance_module
import skhier._line as line_module
import skhier._population as population_module
import skhier._samples_population as samples_module
from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET_MIB = 2048.0
K_SAMPLES = 4  # posterior samples per object for PosteriorSamplesPopulation


# -- fitted estimators and data of any size ------------------------------------------
def _line_data(n, rng):
    X = rng.uniform(-5, 5, (n, 1))
    y = 2 * X[:, 0] + 1 + rng.normal(0, 0.7, n)
    out = rng.uniform(size=n) < 0.1
    y[out] += rng.normal(0, 10, out.sum())
    return X, y, np.full(n, 0.5)


def _distance_data(n, rng, field=True):
    err = np.full(n, 0.1)
    member = rng.uniform(size=n) < (0.8 if field else 1.0)
    r = np.where(member, rng.normal(200, 5, n), rng.uniform(50, 2000, n))
    return (1000 / r + err * rng.standard_normal(n))[:, None], err[:, None]


def _population_data(n, rng):
    err = np.full(n, 0.5)
    x = np.where(rng.uniform(size=n) < 0.9, rng.normal(3, 1, n), rng.normal(3, 20, n))
    return (x + err * rng.standard_normal(n))[:, None], err[:, None]


def _samples_data(n, rng):
    theta = rng.normal(0.0, 1.0, n)
    obs = theta + 0.5 * rng.standard_normal(n)
    return obs[:, None] + 0.5 * rng.standard_normal((n, K_SAMPLES))


def _gmm_data(n, rng):
    half = n // 2
    return np.vstack([rng.normal(-3, 1, (half, 2)), rng.normal(3, 1, (n - half, 2))])


def fit_small(name):
    """An estimator fitted on a few hundred rows, with realistic draw counts."""
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "line":
            X, y, e = _line_data(300, rng)
            return RobustLineMixture(n_walkers=16, n_steps=150, n_burn=50,
                                     random_state=0).fit(X, y, y_err=e)
        if name == "distance":
            X, e = _distance_data(300, rng)
            return HierarchicalDistanceEstimator(field="edsd", field_length_scale=1000.0,
                                                 random_state=0).fit(X, X_err=e)
        if name == "distance_nofield":
            X, e = _distance_data(300, rng, field=False)
            return HierarchicalDistanceEstimator(random_state=0).fit(X, X_err=e)
        if name == "population":
            X, e = _population_data(300, rng)
            return PopulationModel(outliers=True, random_state=0).fit(X, X_err=e)
        if name == "samples":
            return PosteriorSamplesPopulation(outliers=True, n_walkers=16, n_steps=150,
                                              n_burn=50, random_state=0).fit(
                _samples_data(300, rng))
        return BayesianGMM(n_components=3, n_iter=150, n_burn=50, n_chains=2,
                           random_state=0).fit(_gmm_data(300, rng))


def method_calls(name, n, rng):
    """{method label: (bound-method name, args, kwargs)} on n new rows."""
    if name == "line":
        X, y, e = _line_data(n, rng)
        return {
            "predict": ("predict", (X,), {}),
            "predict(return_std)": ("predict", (X,), {"return_std": True}),
            "predict_membership_proba": ("predict_membership_proba", (X, y), {"y_err": e}),
            "log_predictive_density": ("log_predictive_density", (X, y), {"y_err": e}),
        }
    if name == "distance_nofield":  # the per-star median path without a field
        X, e = _distance_data(n, rng, field=False)
        return {"predict": ("predict", (X,), {"X_err": e})}
    if name in ("distance", "population"):
        X, e = (_distance_data if name == "distance" else _population_data)(n, rng)
        return {m: (m, (X,), {"X_err": e})
                for m in ("predict", "predict_membership_proba", "score_samples")}
    if name == "samples":
        X = _samples_data(n, rng)
        return {m: (m, (X,), {}) for m in ("predict", "predict_membership_proba", "score_samples")}
    X = _gmm_data(n, rng)
    return {m: (m, (X,), {}) for m in ("predict", "predict_proba", "score_samples")}


# -- chunked == one pass (default suite) ------------------------------------------
#: Module constants that set the chunk size of each estimator's prediction paths.
#: The base's per-object layer (membership, predictive densities) chunks rows
#: by base_module.OBJECT_CHUNK_CELLS for every estimator.
CHUNK_KNOBS = {
    "line": [(base_module, "OBJECT_CHUNK_CELLS"), (line_module, "_ROW_CHUNK_CELLS")],
    "distance": [(base_module, "OBJECT_CHUNK_CELLS"), (distance_module, "_CELLS_MEDIAN"),
                 (distance_module, "_CELLS_LOGLIK"), (distance_module, "_CELLS_SAMPLE")],
    "distance_nofield": [(distance_module, "_CELLS_MEDIAN")],
    "population": [(base_module, "OBJECT_CHUNK_CELLS"), (population_module, "_CHUNK_CELLS")],
    "samples": [(base_module, "OBJECT_CHUNK_CELLS"), (samples_module, "_CHUNK_CELLS")],
    "gmm": [(base_module, "OBJECT_CHUNK_CELLS")],
}
ESTIMATORS = list(CHUNK_KNOBS)


@pytest.fixture(scope="module")
def fitted():
    return {}


def _get(fitted, name):
    if name not in fitted:
        fitted[name] = fit_small(name)
    return fitted[name]


def _run_all(est, calls):
    out = {}
    for label, (method, args, kwargs) in calls.items():
        res = getattr(est, method)(*args, **kwargs)
        out[label] = res if isinstance(res, tuple) else (res,)
    return out


@pytest.mark.parametrize("name", [n for n in ESTIMATORS if n != "distance_nofield"])
def test_chunked_prediction_equals_one_pass(name, fitted, monkeypatch):
    est = _get(fitted, name)
    n = 60 if name == "distance" else 500
    calls = method_calls(name, n, np.random.default_rng(1))
    for module, knob in CHUNK_KNOBS[name]:
        monkeypatch.setattr(module, knob, 10**12)
    one_pass = _run_all(est, calls)
    # Chunks of a single row (every knob at its minimum: one row per chunk).
    for module, knob in CHUNK_KNOBS[name]:
        monkeypatch.setattr(module, knob, 1)
    chunked = _run_all(est, calls)
    for label, want in one_pass.items():
        for a, b in zip(chunked[label], want, strict=True):
            assert a.shape == b.shape
            assert np.all(np.isfinite(a)), label
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=label)


def test_distance_medians_do_not_depend_on_the_batch(fitted, monkeypatch):
    """Without a field, per-star medians use nested subsets of posterior draws
    (32, then x4 until the star's Monte Carlo error is below _MEDIAN_MC_TOL of
    its posterior sd), chosen star by star: a star's value is the same
    whichever other rows are predicted with it (one-star chunks == one pass)."""
    est = _get(fitted, "distance_nofield")
    X, e = _distance_data(500, np.random.default_rng(1), field=False)
    monkeypatch.setattr(distance_module, "_CELLS_MEDIAN", 10**12)
    one_pass = est.predict(X, X_err=e)
    monkeypatch.setattr(distance_module, "_CELLS_MEDIAN", 1)  # one star per chunk
    chunked = est.predict(X, X_err=e)
    assert np.all(np.isfinite(chunked))
    np.testing.assert_allclose(chunked, one_pass, rtol=1e-10, atol=0)
    # And the reported Monte Carlo error of every median is within tolerance
    # (or all draws were used).
    p = est.model_.full_params(est._summary_draws())
    _, mc, sd = est.model_.median_distances(p, X[:, 0], e[:, 0], return_error=True)
    assert np.mean(mc <= cluster_integral._MEDIAN_MC_TOL * sd) > 0.95


def test_line_predict_matches_average_over_draws(fitted):
    """The closed-form mean/sd of the trend over draws equals the average of
    the per-draw trends (computed here directly from the summary draws)."""
    est = _get(fitted, "line")
    X = np.random.default_rng(2).uniform(-50, 50, (200, 1))
    draws = est._summary_draws()
    trend = draws["coef"].reshape(len(draws["intercept"]), -1) @ X.T + draws["intercept"][:, None]
    s2 = est.model_._scatter_var(
        draws["coef"].reshape(len(draws["intercept"]), -1), np.log(draws["scatter"])
    ).mean()
    mean, std = est.predict(X, return_std=True)
    np.testing.assert_allclose(mean, trend.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(trend.var(axis=0) + s2), rtol=1e-10)
    np.testing.assert_allclose(est.predict(X), mean, rtol=1e-12)


# -- bounded memory (slow, in subprocesses) --------------------------------------------
#: (estimator, method label) pairs that run on 10^7 rows in the test; the
#: others are checked at two smaller sizes (see the module docstring).
BIG = {("line", "predict"), ("line", "predict(return_std)"), ("gmm", "score_samples")}


def measure(name, labels, n, seed=3):
    """Peak traced MiB and seconds of each method on n rows (run in-process)."""
    est = fit_small(name)
    calls = method_calls(name, n, np.random.default_rng(seed))
    out = {}
    for label in labels:
        method, args, kwargs = calls[label]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracemalloc.start()
            t0 = time.perf_counter()
            res = getattr(est, method)(*args, **kwargs)
            elapsed = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        res = res if isinstance(res, tuple) else (res,)
        out[label] = {"peak_mib": peak, "seconds": elapsed,
                      "output_mib": sum(np.asarray(r).nbytes for r in res) / 2**20,
                      "finite": bool(all(np.all(np.isfinite(r)) for r in res))}
    return out


def _measure_in_subprocess(name, labels, n):
    code = ("import json, sys; from tests.test_scale import measure; "
            "print(json.dumps(measure(sys.argv[1], sys.argv[3:], int(sys.argv[2]))))")
    proc = subprocess.run([sys.executable, "-c", code, name, str(n), *labels], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _labels(name):
    return list(method_calls(name, 2, np.random.default_rng(0)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ESTIMATORS)
def test_prediction_memory_is_bounded(name):
    labels = _labels(name)
    big = [lb for lb in labels if (name, lb) in BIG]
    small = [lb for lb in labels if (name, lb) not in BIG]
    report = {}
    if big:
        res = _measure_in_subprocess(name, big, 10**7)
        for label, r in res.items():
            report[label] = r
            assert r["finite"], label
            assert r["peak_mib"] < BUDGET_MIB, (label, r)
    if small:
        # Both sizes above every chunk size, so only O(N) arrays can grow.
        n1, n2 = 2 * 10**4, 10**5
        if name == "distance":  # per-star quadrature and sampling: 1-3 ms a star here
            n1, n2 = 2000, 5000  # (whole chunks of 1000 stars at both sizes)
        if name == "distance_nofield":
            n1, n2 = 2 * 10**4, 6 * 10**4
        r1 = _measure_in_subprocess(name, small, n1)
        r2 = _measure_in_subprocess(name, small, n2)
        for label in small:
            a, b = r1[label], r2[label]
            assert a["finite"] and b["finite"], label
            # Peak growth beyond the output's own, per added row: a few copies
            # of a row's inputs at most (< 100 bytes), against 8 bytes x draws
            # (200-1000) a row for a (draws x rows) table held at once.
            extra = (b["peak_mib"] - a["peak_mib"]) - (b["output_mib"] - a["output_mib"])
            per_row = extra * 2**20 / (n2 - n1)
            at_1e7 = a["peak_mib"] + (b["peak_mib"] - a["peak_mib"]) * (10**7 - n1) / (n2 - n1)
            report[label] = {"n": (n1, n2), "peak_mib": (a["peak_mib"], b["peak_mib"]),
                             "seconds": (a["seconds"], b["seconds"]),
                             "extra_bytes_per_row": per_row, "extrapolated_1e7_mib": at_1e7}
            assert per_row < 100, (label, report[label])
            assert at_1e7 < BUDGET_MIB, (label, report[label])
    print(name, json.dumps(report, indent=1))
