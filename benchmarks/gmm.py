"""BayesianGMM speed and memory against scikit-learn's variational mixture.

For n = 10^4, 10^5, 10^6 points in 2-D drawn from a 10-component mixture,
fits ``BayesianGMM(n_components=10)`` (one chain) and scikit-learn's
``BayesianGaussianMixture(n_components=10)`` (variational, default
``max_iter=100``) on the same data in the same run, and prints

- seconds per 100 Gibbs sweeps (sampling only) and the peak traced memory
  of sampling (``tracemalloc`` on a short run: numpy buffers included),
- the ratio of total fit time (Gibbs + relabelling + summaries) to
  scikit-learn's fit time;

then times ``predict_proba`` on 10^7 rows, which runs in chunks, and
reports its working memory beyond the (n, K) output array itself.

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
            # The sweeps alone: same run keeping a single draw (no relabelling).
            t0 = time.perf_counter()
            BayesianGMM(n_components=K, n_chains=1, n_iter=n_iter, n_burn=n_iter - 1,
                        random_state=0).fit(X)
            sweep_s = time.perf_counter() - t0
            # Peak memory of sampling, from a short traced run (tracemalloc
            # sees numpy buffers but slows allocation-heavy code, so nothing
            # traced is timed; memory does not grow with the number of sweeps).
            short = BayesianGMM(n_components=K, n_chains=1, n_iter=20, n_burn=10, random_state=0)
            _, _, peak = traced(short.fit, X)
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
    t0 = time.perf_counter()
    last.predict_proba(Xp)
    pp_s = time.perf_counter() - t0
    # Memory from a traced run on a tenth of the rows plus the full-size
    # run's output: the working memory is per chunk, independent of n.
    tenth = Xp[: predict_rows // 10]
    _, _, pp_peak_tenth = traced(last.predict_proba, tenth)
    work = pp_peak_tenth - len(tenth) * K * 8 / 2**20
    print(f"\npredict_proba on {predict_rows:.0e} rows x {K} components: {pp_s:.1f} s; "
          f"output {out_mb:.0f} MB; working memory beyond the output "
          f"{work:.1f} MB (traced on {len(tenth):.0e} rows; chunked, independent of n)")


if __name__ == "__main__":
    main()
