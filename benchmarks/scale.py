"""How fit and predict time and peak memory grow with N, for every estimator.

For each estimator and N this prints the fit time (fixed, short sampler
settings, so that the per-step cost is what is measured) and the time of
``predict``, the peak traced memory of each, and their growth factors against
the smallest N of the same run (linear scaling gives a factor equal to the
ratio of the Ns).

A final block runs every prediction method (``predict``,
``predict_membership_proba``, ``score_samples`` / ``log_predictive_density``)
of the model fitted at the smallest N on 10^7 new rows and reports peak
memory against the 2 GiB budget. A method whose rate at the largest N says
it would take longer than ``--max-seconds`` at 10^7 rows is run on the
largest round number of rows that fits that time instead, and its time at
10^7 rows is extrapolated linearly (marked ``~``).

Peak memory is measured with ``tracemalloc`` (numpy registers its buffers
with it), so it counts the arrays the estimator allocates, not the
interpreter or the input arrays made before the call.

Usage: python benchmarks/scale.py [--sizes 1000 10000 100000] [--big 10000000]
       [--distance-sizes 1000 3000 10000] [--max-seconds 30] [--estimators line distance population samples gmm]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)

FAST = {"n_walkers": 16, "n_steps": 200, "n_burn": 50}
K_SAMPLES = 16  # posterior samples per object for PosteriorSamplesPopulation
#: The distance fit costs ~3 ms a star a step here: smaller sizes for it.
DISTANCE_SIZES = (1000, 3000, 10000)


def _data(name, n, rng):
    """(positional args, error kwargs) of n rows for fit and the prediction methods."""
    if name == "line":
        X = rng.uniform(-5, 5, (n, 1))
        y = 2 * X[:, 0] + 1 + rng.normal(0, 0.7, n)
        return (X, y), {"y_err": np.full(n, 0.5)}
    if name == "distance":
        err = np.full(n, 0.1)
        plx = 1000 / rng.normal(200, 5, n) + err * rng.standard_normal(n)
        return (plx[:, None],), {"X_err": err[:, None]}
    if name == "population":
        err = np.full(n, 0.5)
        x = rng.normal(3, 1, n) + err * rng.standard_normal(n)
        return (x[:, None],), {"X_err": err[:, None]}
    if name == "samples":
        obs = rng.normal(0, 1, n) + 0.5 * rng.standard_normal(n)
        return (obs[:, None] + 0.5 * rng.standard_normal((n, K_SAMPLES)),), {}
    half = n // 2
    return (np.vstack([rng.normal(-3, 1, (half, 2)), rng.normal(3, 1, (n - half, 2))]),), {}


def _make(name):
    if name == "line":
        return RobustLineMixture(**FAST, random_state=0)
    if name == "distance":
        return HierarchicalDistanceEstimator(sampler="emcee", **FAST, random_state=0)
    if name == "population":
        return PopulationModel(sampler="emcee", **FAST, random_state=0)
    if name == "samples":
        return PosteriorSamplesPopulation(**FAST, random_state=0)
    return BayesianGMM(n_components=5, n_iter=100, n_burn=20, n_chains=2, random_state=0)


def _methods(name):
    """{label: (method, uses y, uses errors)} of the prediction paths."""
    if name == "line":
        return {"predict": ("predict", False, False),
                "predict_membership_proba": ("predict_membership_proba", True, True),
                "log_predictive_density": ("log_predictive_density", True, True)}
    if name == "gmm":
        return {m: (m, False, False) for m in ("predict", "predict_proba", "score_samples")}
    errors = name != "samples"
    return {m: (m, False, errors)
            for m in ("predict", "predict_membership_proba", "score_samples")}


def _call(est, name, label, data, errors):
    method, uses_y, uses_err = _methods(name)[label]
    args = data[:2] if uses_y else data[:1]
    return getattr(est, method)(*args, **(errors if uses_err else {}))


def _measure(func, *args, **kwargs):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, peak / 2**20


def _round_down(n):
    """Largest of 1, 2, 5 x 10^k not above n."""
    k = 10 ** int(np.floor(np.log10(max(n, 1))))
    return max(m * k for m in (1, 2, 5) if m * k <= n) if n >= 1 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--distance-sizes", type=int, nargs="+", default=list(DISTANCE_SIZES))
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--estimators", nargs="+",
                        default=["line", "distance", "population", "samples", "gmm"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    print("Growth factors (x) are against the smallest N of each estimator.")
    print(f"{'estimator':>10} {'N':>9} {'fit [s]':>8} {'x':>6} {'fit MiB':>8} {'x':>6} "
          f"{'predict [s]':>11} {'x':>6} {'pred MiB':>8} {'x':>6}")
    fitted, rates = {}, {}
    for name in args.estimators:
        sizes = args.distance_sizes if name == "distance" else args.sizes
        base = None
        for n in sizes:
            data, errors = _data(name, n, rng)
            fit_errors = {} if name == "gmm" else errors
            est, t_fit, m_fit = _measure(_make(name).fit, *data, **fit_errors)
            _, t_pred, m_pred = _measure(_call, est, name, "predict", data, errors)
            if base is None:
                base = (t_fit, m_fit, t_pred, m_pred)
                fitted[name] = est
            g = [f"{v / b:6.1f}" for v, b in zip((t_fit, m_fit, t_pred, m_pred), base,
                                                  strict=True)]
            print(f"{name:>10} {n:>9} {t_fit:>8.2f} {g[0]} {m_fit:>8.1f} {g[1]} "
                  f"{t_pred:>11.3f} {g[2]} {m_pred:>8.1f} {g[3]}", flush=True)
            # Per-row rate of every prediction method at the largest size.
            for label in _methods(name):
                t = t_pred if label == "predict" else _measure(
                    _call, est, name, label, data, errors)[1]
                rates[name, label] = t / n

    print(f"\nPrediction on {args.big:,} rows by the models fitted at the smallest N "
          f"(budget: 2048 MiB peak; rows capped at what runs in {args.max_seconds:g} s; "
          "~ = time extrapolated linearly to the full row count):")
    for name, est in fitted.items():
        for label in _methods(name):
            n = args.big
            if rates[name, label] * n > args.max_seconds:
                n = _round_down(args.max_seconds / rates[name, label])
            data, errors = _data(name, n, rng)
            input_mib = (sum(a.nbytes for a in data)
                         + sum(a.nbytes for a in errors.values())) / 2**20
            _, t, m = _measure(_call, est, name, label, data, errors)
            t_big = t * args.big / n
            mark = " " if n == args.big else "~"
            print(f"{name:>10} {label:>26}: rows {n:>10,}  {t:7.1f} s  "
                  f"(at {args.big:,}: {mark}{t_big:8.0f} s)  peak {m:7.1f} MiB  "
                  f"(inputs {input_mib:5.0f} MiB) {'OK' if m < 2048 else 'OVER BUDGET'}",
                  flush=True)


if __name__ == "__main__":
    main()
