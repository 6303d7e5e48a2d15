"""How fit and predict time and peak memory grow with N, for every estimator.

For each estimator and N this prints the fit time (fixed, short sampler
settings, so that the per-step cost is what is measured), the predict time
and peak traced memory of fit and of predict, and the growth factor against
the previous N (linear scaling gives a factor equal to the ratio of the Ns).
A final block runs the prediction methods on 10^7 rows and reports their
peak memory against the 2 GiB budget.

Peak memory is measured with ``tracemalloc`` (numpy registers its buffers
with it), so it counts the arrays the estimator allocates, not the
interpreter.

Usage: python benchmarks/scale.py [--sizes 1000 10000 100000] [--big 10000000]
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
    RobustLineMixture,
)

FAST = {"n_walkers": 16, "n_steps": 200, "n_burn": 50}


def _data(name, n, rng):
    if name == "line":
        X = rng.uniform(-5, 5, (n, 1))
        return (X, 2 * X[:, 0] + 1 + rng.normal(0, 0.7, n)), {"y_err": np.full(n, 0.5)}
    if name == "distance":
        err = np.full(n, 0.1)
        plx = 1000 / rng.normal(200, 5, n) + err * rng.standard_normal(n)
        return (plx[:, None],), {"X_err": err[:, None]}
    if name == "population":
        err = np.full(n, 0.5)
        return (rng.normal(3, 1, n)[:, None] + err[:, None] * rng.standard_normal((n, 1)),), {
            "X_err": err[:, None]}
    X = np.vstack([rng.normal(-3, 1, (n // 2, 2)), rng.normal(3, 1, (n - n // 2, 2))])
    return (X,), {}


def _make(name):
    if name == "line":
        return RobustLineMixture(**FAST, random_state=0)
    if name == "distance":
        return HierarchicalDistanceEstimator(sampler="emcee", **FAST, random_state=0)
    if name == "population":
        return PopulationModel(**FAST, random_state=0)
    return BayesianGMM(n_components=5, n_iter=100, n_burn=20, n_chains=2, random_state=0)


def _measure(func, *args, **kwargs):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--estimators", nargs="+",
                        default=["line", "distance", "population", "gmm"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    print(f"{'estimator':>10} {'N':>9} {'fit [s]':>8} {'x':>5} {'fit MiB':>8} "
          f"{'predict [s]':>11} {'x':>5} {'pred MiB':>8}")
    fitted = {}
    for name in args.estimators:
        prev = None
        for n in args.sizes:
            data, errors = _data(name, n, rng)
            est, t_fit, m_fit = _measure(_make(name).fit, *data, **errors)
            _, t_pred, m_pred = _measure(est.predict, data[0],
                                         **({} if name == "line" else errors))
            gf = "" if prev is None else f"{t_fit / prev[0]:5.1f}"
            gp = "" if prev is None else f"{t_pred / prev[1]:5.1f}"
            print(f"{name:>10} {n:>9} {t_fit:>8.2f} {gf:>5} {m_fit:>8.1f} {t_pred:>11.3f} "
                  f"{gp:>5} {m_pred:>8.1f}")
            prev = (t_fit, t_pred)
            fitted[name] = est
    print(f"\nPrediction on {args.big:,} rows (budget: 2048 MiB peak):")
    for name, est in fitted.items():
        data, errors = _data(name, args.big, rng)
        kwargs = {} if name == "line" else errors
        methods = ["predict"] + (["predict_membership_proba"] if name != "line" else [])
        for method in methods:
            _, t, m = _measure(getattr(est, method), data[0], **kwargs)
            input_mib = sum(a.nbytes for a in data) / 2**20 + sum(
                a.nbytes for a in errors.values()) / 2**20
            print(f"{name:>10} {method:>26}: {t:7.1f} s, peak {m:7.1f} MiB "
                  f"(inputs {input_mib:.0f} MiB) {'OK' if m < 2048 else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
