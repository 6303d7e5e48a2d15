"""BayesianGMM with its defaults (``n_iter="auto"``): how long the chains run,
whether they converge, on every sampler path.

Data: ``make_mixture_with_errors(400, random_state=seed)`` (three components
with weights 0.5, 0.3, 0.2 in 2-D, no errors) for each seed. Paths:

- ``in-memory``: ``fit(X)``, the in-memory Gibbs sampler;
- ``mask``: ``fit(X, sample_weight=w)`` with 0/1 weights (a quality cut that
  drops a random 10 % of the rows): the chunked sampler on an easy mixture;
- ``fractional``: weights drawn uniformly from [0.5, 1.5) (a generalised,
  tempered posterior): the chunked sampler;
- ``duplicates``: integer weights drawn uniformly from {1, 2}, i.e. the
  posterior of the data with about half of the rows repeated: exact ties,
  which small components can sit on (not an easy posterior);
- ``dask``: ``fit`` on ``dask.array.from_array(X, chunks=100)`` without
  weights, on Dask's threaded scheduler: the chunked sampler over 4 chunks.

Weights are drawn from ``default_rng([seed, 1])``.
For each fit the script prints the sweeps run per chain (``n_iter_``:
1500, 2500, 4500 or 8500), whether it converged, the largest R-hat and
which quantity it belongs to, the posterior mean weights of the three
largest components, and the wall time; then, per path, how many seeds
needed more than the first 1500 sweeps. Fits run one after another (one
BLAS thread), so the times are comparable within one run only.

Usage::

    python benchmarks/gmm_auto_length.py               # 20 seeds, in-memory and mask
    python benchmarks/gmm_auto_length.py --seeds 10 --paths duplicates dask
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skhier import BayesianGMM
from skhier.datasets import make_mixture_with_errors


def fit(path, seed):
    X = make_mixture_with_errors(400, random_state=seed).X
    rng = np.random.default_rng([seed, 1])
    data, kw = X, {}
    if path == "mask":
        kw["sample_weight"] = (rng.random(len(X)) >= 0.1).astype(float)
    elif path == "fractional":
        kw["sample_weight"] = rng.uniform(0.5, 1.5, len(X))
    elif path == "duplicates":
        kw["sample_weight"] = rng.integers(1, 3, len(X)).astype(float)
    elif path == "dask":
        import dask.array as da

        data = da.from_array(X, chunks=100)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        gmm = BayesianGMM(random_state=seed).fit(data, **kw)
    seconds = time.perf_counter() - t0
    worst = max(gmm.rhat_, key=lambda k: np.max(gmm.rhat_[k]))
    warned = any(issubclass(c.category, ConvergenceWarning) for c in caught)
    return gmm, seconds, worst, warned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--paths", nargs="+", default=["in-memory", "mask"],
                        choices=["in-memory", "mask", "fractional", "duplicates", "dask"])
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"{'path':>10} {'seed':>4} {'n_iter_':>7} {'conv':>5} {'warn':>5} "
          f"{'max R-hat':>9} {'of':>12} {'weights (3 largest)':>22} {'s':>6}", flush=True)
    sweeps = {p: [] for p in args.paths}
    for path in args.paths:
        for seed in seeds:
            gmm, seconds, worst, warned = fit(path, seed)
            sweeps[path].append(gmm.n_iter_)
            w = np.round(gmm.weights_[:3], 3).tolist()
            print(f"{path:>10} {seed:>4} {gmm.n_iter_:>7} {gmm.converged_!s:>5} {warned!s:>5} "
                  f"{np.max(gmm.rhat_[worst]):>9.3f} {worst:>12} {str(w):>22} "
                  f"{seconds:>6.1f}", flush=True)
    print()
    for path, n in sweeps.items():
        values, counts = np.unique(n, return_counts=True)
        table = ", ".join(f"{v}: {c}" for v, c in zip(values, counts, strict=True))
        extended = int(np.sum(np.asarray(n) > 1500))
        print(f"{path}: sweeps per chain over {len(n)} seeds -> {table}; "
              f"extended beyond 1500 on {extended} of {len(n)}")


if __name__ == "__main__":
    main()
