"""BayesianGMM speed and memory against scikit-learn's variational mixture.

For n = 10^4, 10^5, 10^6 points in 2-D drawn from a 10-component mixture,
fits ``BayesianGMM(n_components=10)`` (one chain) and scikit-learn's
``BayesianGaussianMixture(n_components=10)`` (variational, default
``max_iter=100``) on the same data in the same run, and prints

- seconds per 100 Gibbs sweeps (sampling only) and its peak traced memory
  (``tracemalloc``: numpy buffers included),
- the ratio of total fit time (Gibbs + relabelling + summaries) to
  scikit-learn's fit time;

then times ``predict_proba`` on 10^7 rows, which runs in chunks, and
reports its peak memory beyond the (n, K) output array itself.

Usage::

    python benchmarks/gmm.py            # 1000 sweeps for 1e4 and 1e5, 100 for 1e6
    python benchmarks/gmm.py --quick    # 200 / 200 / 50 sweeps, predict on 1e6 rows

Target (issue 6): 1000 sweeps on 10^5 points in under 60 s on this machine,
and predict_proba on 10^7 rows in bounded memory.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from skhier import BayesianGMM

K = 10


def simulate(n, rng):
    means = np.random.default_rng(42).uniform(-12, 12, size=(K, 2))
    z = rng.integers(0, K, size=n)
    return means[z] + rng.standard_normal((n, 2)) * rng.uniform(0.5, 1.5, size=(n, 1))


def traced(fn, *args):
    """Run fn(*args), return (result, seconds, peak MB) with tracemalloc."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sweeps, smaller predict")
    parser.add_argument("--predict-rows", type=float, default=None)
    args = parser.parse_args()
    sweeps = {10_000: 1000, 100_000: 1000, 1_000_000: 100}
    if args.quick:
        sweeps = {10_000: 200, 100_000: 200, 1_000_000: 50}
    predict_rows = int(args.predict_rows or (1e6 if args.quick else 1e7))
    rng = np.random.default_rng(0)

    print(f"{'n':>9} {'sweeps':>6} {'s/100 sweeps':>13} {'peak MB':>8} {'fit s':>8} "
          f"{'sklearn VB s':>12} {'ratio fit/VB':>12}", flush=True)
    last = None
    for n, n_iter in sweeps.items():
        X = simulate(n, rng)
        est = BayesianGMM(n_components=K, n_chains=1, n_iter=n_iter, n_burn=n_iter // 5,
                          random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X)
            fit_s = time.perf_counter() - t0
            # Sampling alone (the sweeps, nearly no relabelling: one kept
            # draw), traced for peak memory (tracemalloc sees numpy buffers).
            sweeps_only = BayesianGMM(n_components=K, n_chains=1, n_iter=n_iter,
                                      n_burn=n_iter - 1, random_state=0)
            _, sweep_s, peak = traced(sweeps_only.fit, X)
            # scikit-learn untraced: tracemalloc slows its many small
            # allocations by an order of magnitude.
            vb = BayesianGaussianMixture(n_components=K, random_state=0)
            t0 = time.perf_counter()
            vb.fit(X)
            vb_s = time.perf_counter() - t0
        print(f"{n:>9} {n_iter:>6} {100 * sweep_s / n_iter:>13.2f} {peak:>8.0f} {fit_s:>8.1f} "
              f"{vb_s:>12.1f} {fit_s / vb_s:>12.2f}", flush=True)
        last = est

    # predict_proba on many rows: chunked, so memory beyond the output is bounded.
    Xp = simulate(predict_rows, rng)
    out_mb = predict_rows * K * 8 / 2**20
    _, pp_s, pp_peak = traced(last.predict_proba, Xp)
    print(f"\npredict_proba on {predict_rows:.0e} rows x {K} components: {pp_s:.1f} s, "
          f"peak {pp_peak:.0f} MB of which output {out_mb:.0f} MB "
          f"(working memory {pp_peak - out_mb:.0f} MB; input {Xp.nbytes / 2**20:.0f} MB "
          "not counted)")


if __name__ == "__main__":
    main()
