"""Claimed ESS against the spread of independent fits, on the cluster benchmark.

The estimator's ``n_effective_`` is the number of independent draws its
posterior means are worth. Fitting the same data with ``--seeds`` seeds, the
variance of the posterior mean across seeds gives an ESS that does not rely
on the claim: ESS_spread = mean posterior variance / variance across seeds.
Their ratio is printed per sampled parameter with its chi-square interval
(99.8 %), so an optimistic claim shows as a ratio above the interval.

    python benchmarks/ess_claims.py A 10000 --seeds 16
    python benchmarks/ess_claims.py B 10000 --seeds 8

Data: ../shared/bench/cluster_common.py (regime A: 135 pc, depth 5 pc,
parallax errors 0.1 mas; B: 2 kpc, 30 pc, 0.2 mas).
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from scipy.stats import chi2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
from cluster_common import make_data  # noqa: E402

from skhier import HierarchicalDistanceEstimator  # noqa: E402

#: Summaries in the user's units, compared with the smallest claimed ESS.
USER = ["mean_distance", "distance_dispersion"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("regime", choices=["A", "B"])
    ap.add_argument("n", type=int)
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args()
    w, s, _ = make_data(args.regime, args.n)
    rows, times, user = [], [], []
    for seed in range(args.seeds):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = HierarchicalDistanceEstimator(random_state=seed).fit(w[:, None], X_err=s[:, None])
        times.append(time.perf_counter() - t)
        draws = est.chain_.reshape(-1, est.chain_.shape[-1])
        names = list(est.sampled_param_names_)
        rows.append((draws.mean(0), draws.var(0), [est.n_effective_[k] for k in names]))
        user.append([(np.mean(est.posterior_[k]), np.var(est.posterior_[k])) for k in USER])
        print(f"seed {seed}: {times[-1]:.1f} s, sampler {est.sampler_}, "
              f"claimed ESS {[round(c) for c in rows[-1][2]]}", flush=True)
    m, v, c = (np.array(a) for a in zip(*rows, strict=True))
    df = len(m) - 1
    lo, hi = chi2.ppf(1e-3, df) / df, chi2.isf(1e-3, df) / df
    print(f"\nregime {args.regime}, {args.n} stars, {len(m)} seeds, "
          f"median fit time {np.median(times):.1f} s")
    for j, name in enumerate(names):
        across = m[:, j].var(ddof=1)
        claimed = np.mean(v[:, j] / c[:, j])
        print(f"{name:16s} claimed ESS {c[:, j].mean():7.0f}   ESS from spread "
              f"{v[:, j].mean() / across:7.0f}   ratio {across / claimed:5.2f} "
              f"(1 if honest; 99.8 % interval [{lo:.2f}, {hi:.2f}])")
    u = np.array(user)  # (seeds, params, [mean, var])
    cmin = c.min(axis=1)
    for j, name in enumerate(USER):
        across = u[:, j, 0].var(ddof=1)
        claimed = np.mean(u[:, j, 1] / cmin)
        print(f"{name:20s} min claimed ESS {cmin.mean():7.0f}   ESS from spread "
              f"{u[:, j, 1].mean() / across:7.0f}   ratio {across / claimed:5.2f}")


if __name__ == "__main__":
    main()
