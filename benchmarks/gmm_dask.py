"""BayesianGMM on Dask: time per Gibbs sweep against the in-memory sampler
and against scikit-learn's BayesianGaussianMixture, up to 10^8 rows.

Data: 2-D points from a 10-component mixture; every fit uses
``n_components=10`` (the setting of the design notes' scikit-learn bar).
For each size N the script measures, in the same run:

- ``in-memory``: one Gibbs sweep of the in-memory sampler (``fit`` on a
  NumPy array), one chain, sampling only;
- ``dask-threads``: one sweep of the chunked sampler that ``fit`` runs on a
  Dask array, with Dask's threaded scheduler (2 threads), chunks of
  ``--chunk`` rows persisted in memory;
- ``dask-procs``: the same on a ``distributed.LocalCluster`` with two
  single-threaded worker processes (the layout of a real cluster: the data
  generated and held on the workers, only sufficient statistics sent back);
- ``sklearn/iter``: one EM iteration of scikit-learn's variational
  ``BayesianGaussianMixture`` (a warm-started refit, so its k-means
  initialisation is not counted), and ``sklearn fit``: its default fit (to
  its convergence tolerance or ``max_iter=100``; up to ``--converge-rows``),
  with the iterations it took; both with one BLAS/OpenMP thread, like the
  Gibbs sampler;

then prints each sampler's time per sweep as a ratio to the in-memory sweep
and to one scikit-learn EM iteration. Sizes above ``--max-memory-rows`` run
the Dask cluster only (the data are generated on the workers, never on the
client). Finally an end-to-end ``fit`` at 10^5 rows (2 chains x 300
sweeps) in memory and on Dask, with the largest split R-hat.

Usage::

    python benchmarks/gmm_dask.py                 # 1e5, 1e6, 1e7 (all), 1e8 (cluster);
                                                  # about 10 minutes on 2 cores
    python benchmarks/gmm_dask.py --max-rows 1e7  # skip the 10^8 run
    python benchmarks/gmm_dask.py --quick         # 1e5 and 1e6 only
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

K = 10
MEANS = np.random.default_rng(42).uniform(-12, 12, size=(K, 2))


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, K, size=n)
    return MEANS[z] + rng.standard_normal((n, 2)) * rng.uniform(0.5, 1.5, size=(n, 1))


def dask_data(n, chunk):
    """A lazy (n, 2) Dask array whose blocks are simulated where they are computed."""
    import dask.array as da

    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    seeds = np.cumsum(np.ones(len(sizes), dtype=int))

    def block(block_id=None):
        i = block_id[0]
        return simulate(sizes[i], int(seeds[i]))

    return da.map_blocks(block, chunks=(tuple(sizes), (2,)), dtype=float)


def in_memory_sweep(X, n_sweeps, warm_up=True):
    """Seconds per sweep of the in-memory sampler (one chain, sampling only)."""
    from skhier import BayesianGMM
    from skhier._gmm_gibbs import _GibbsChain, _quad_features
    from skhier._math import single_threaded_blas

    est = BayesianGMM(n_components=K)
    prior = est._prior(2)
    Xs = (X - X.mean(0)) / X.std(0)
    with single_threaded_blas():
        phi = _quad_features(Xs)
        chain = _GibbsChain(Xs, None, None, phi, K, prior, est.weight_concentration,
                            np.random.default_rng(0))
        chain.initialise()
        if warm_up:
            chain.sweep()
        t0 = time.perf_counter()
        for _ in range(n_sweeps):
            chain.sweep()
        return (time.perf_counter() - t0) / n_sweeps


def chunked_sweep(X, n_sweeps, warm_up=True):
    """Seconds per sweep of the chunked sampler on Dask array X (one chain),
    with whatever scheduler is active; the set-up pass is timed separately."""
    from skhier import BayesianGMM
    from skhier._gmm_dask import ChunkedChains, DaskChunks
    from skhier._gmm_gibbs import _GibbsChain
    from skhier._math import single_threaded_blas

    est = BayesianGMM(n_components=K)
    prior = est._prior(2)
    with single_threaded_blas():
        t0 = time.perf_counter()
        data = DaskChunks(X)
        loc, var = data.standardisation(True)
        data.prepare(loc, np.sqrt(var))
        sub, _ = data.take(np.sort(np.random.default_rng(0).choice(data.n, 20_000, replace=False)))
        setup = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        chain = _GibbsChain(sub, None, None, None, K, prior, est.weight_concentration, rng)
        chain.initialise()
        start = [(chain.log_w, chain.mu, chain.sigma, chain.chol)]
        chains = ChunkedChains(data, start, [1], [rng], prior, est.weight_concentration)
        if warm_up:
            chains.run(1, 0, 1)
        t0 = time.perf_counter()
        chains.run(n_sweeps, 0, 1)
        per = (time.perf_counter() - t0) / n_sweeps
    del data
    return per, setup


def sklearn_times(X, converge, n_iter=3):
    """Seconds per EM iteration (after its k-means initialisation: a
    warm-started refit runs only iterations) and, optionally, the default fit.

    BLAS and OpenMP are limited to one thread, as the Gibbs sampler limits
    BLAS: on a shared 2-core machine scikit-learn's threads otherwise
    oversubscribe the cores and its times become erratic (seconds to tens
    of seconds per iteration at 10^6 rows here).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _sklearn_times(X, converge, n_iter)


def _sklearn_times(X, converge, n_iter):
    from sklearn.mixture import BayesianGaussianMixture

    # The iterations do not depend on the start: start from random rows
    # instead of k-means (minutes at 10^7 rows on one thread).
    bgm = BayesianGaussianMixture(n_components=K, max_iter=1, warm_start=True,
                                  init_params="random_from_data", random_state=0).fit(X)
    bgm.set_params(max_iter=n_iter)
    t0 = time.perf_counter()
    bgm.fit(X)
    per_iter = (time.perf_counter() - t0) / bgm.n_iter_
    full = (np.nan, 0, False)
    if converge:
        t0 = time.perf_counter()
        bgm = BayesianGaussianMixture(n_components=K, random_state=0).fit(X)
        full = (time.perf_counter() - t0, bgm.n_iter_, bgm.converged_)
    return per_iter, full


def end_to_end(n, chunk):
    import dask.array as da

    from skhier import BayesianGMM

    X = simulate(n, 7)
    kw = dict(n_components=K, n_chains=2, n_iter=300, n_burn=100, random_state=0)
    out = {}
    for name, data in (("in-memory", X), ("dask-threads", da.from_array(X, chunks=(chunk, 2)))):
        t0 = time.perf_counter()
        gmm = BayesianGMM(**kw).fit(data)
        out[name] = (time.perf_counter() - t0, max(float(np.max(v)) for v in gmm.rhat_.values()),
                     int(np.argmax(gmm.n_components_posterior_)))
    return out


T0 = time.perf_counter()


def stage(msg):
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=float, default=1e8)
    parser.add_argument("--max-memory-rows", type=float, default=1e7,
                        help="largest N also run in memory and with scikit-learn")
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--converge-rows", type=float, default=1e5,
                        help="largest N of scikit-learn's default (to convergence) fit")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import dask
    import distributed

    sizes = [10**5, 10**6] if args.quick else [10**5, 10**6, 10**7, 10**8]
    sizes = [n for n in sizes if n <= args.max_rows]
    # One BLAS thread per worker process, as recommended for real clusters.
    blas1 = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit="9GiB", env=blas1)
    rows = []
    for n in sizes:
        chunk = min(args.chunk, max(n // 4, 1))
        n_sweeps, warm = (5, True) if n <= 10**6 else (2, n <= 10**7)
        row = {"n": n, "chunk": chunk}
        if n <= args.max_memory_rows:
            X = simulate(n, 0)
            stage(f"N={n:.0e}: in-memory sweeps")
            row["in-memory"] = in_memory_sweep(X, n_sweeps, warm)
            import dask.array as da

            stage(f"N={n:.0e}: Dask threaded sweeps")
            with dask.config.set(scheduler="threads", num_workers=2):
                row["dask-threads"], row["setup-threads"] = chunked_sweep(
                    da.from_array(X, chunks=(chunk, 2)), n_sweeps, warm)
            stage(f"N={n:.0e}: scikit-learn")
            row["sk-iter"], row["sk-fit"] = sklearn_times(X, converge=n <= args.converge_rows)
            del X
        stage(f"N={n:.0e}: Dask LocalCluster sweeps")
        with distributed.Client(cluster):
            row["dask-procs"], row["setup-procs"] = chunked_sweep(dask_data(n, chunk), n_sweeps,
                                                                  warm)
        rows.append(row)
        print(f"done N={n:.0e}: {row}", flush=True)
    cluster.close()

    def f(x, fmt="{:8.3f}"):
        return "       -" if x is None or (isinstance(x, float) and np.isnan(x)) else fmt.format(x)

    print("\nSeconds per Gibbs sweep (one chain, K = 10, d = 2), scikit-learn's "
          "BayesianGaussianMixture per EM iteration and per default fit:")
    print(f"{'N':>6} {'chunk':>8} {'in-mem':>8} {'dask-thr':>8} {'dask-proc':>9} "
          f"{'sk/iter':>8} {'sk fit':>8} {'sk iters':>8} {'setup-proc':>10}")
    for r in rows:
        sk = r.get("sk-fit", (np.nan, 0, False))
        iters = f"{sk[1]:>5d}{'' if sk[2] else '(nc)'}" if sk[1] else "-"
        print(f"{r['n']:>6.0e} {r['chunk']:>8d} {f(r.get('in-memory'))} {f(r.get('dask-threads'))} "
              f"{f(r.get('dask-procs'), '{:9.3f}')} {f(r.get('sk-iter'))} {f(sk[0], '{:8.2f}')} "
              f"{iters:>8} {f(r.get('setup-procs'), '{:10.2f}')}")
    print("\nRatios (time per sweep / reference):")
    print(f"{'N':>6} {'thr/in-mem':>10} {'proc/in-mem':>11} {'in-mem/sk-iter':>14} "
          f"{'proc/sk-iter':>12}")
    for r in rows:
        base, sk = r.get("in-memory"), r.get("sk-iter")

        def ratio(a, b):
            return "         -" if a is None or b is None or b == 0 else f"{a / b:10.2f}"

        print(f"{r['n']:>6.0e} {ratio(r.get('dask-threads'), base)} "
              f"{ratio(r.get('dask-procs'), base):>11} {ratio(base, sk):>14} "
              f"{ratio(r.get('dask-procs'), sk):>12}")
    if not args.quick:
        print("\nEnd-to-end fit, 10^5 rows, 2 chains x 300 sweeps (s, max split R-hat, "
              "modal number of occupied components):")
        for name, (t, rhat, k) in end_to_end(10**5, 25_000).items():
            print(f"  {name:>12}: {t:7.1f} s   R-hat {rhat:.3f}   K+ {k}")


if __name__ == "__main__":
    main()
