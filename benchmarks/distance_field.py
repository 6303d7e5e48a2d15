"""HierarchicalDistanceEstimator with field stars: the default fit against importance sampling.

A far cluster (2 kpc, 30 pc depth, parallax errors 0.2 mas, i.e. 40 %)
mixed with field stars (``make_cluster_parallaxes``, 80 % members, field
length scale 1350 pc), fitted with ``field="edsd"`` and that length scale
fixed. The default fit (``sampler="auto"``) integrates the population
posterior by Gauss–Hermite quadrature; the baseline, measured in the same
run on the same data, is ``sampler="importance"`` (frozen per-star rules,
2 000 draws), the path such fits took when the quadrature did not
converge. Printed per fit: wall time of ``fit`` (membership probabilities
included), of the first access to ``distance_``, the sampler, and the
posterior mean ± sd of the mean distance, the depth and the cluster
fraction; then the fit-time ratio.

Usage: python benchmarks/distance_field.py [--n 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from skhier import HierarchicalDistanceEstimator
from skhier.datasets import make_cluster_parallaxes


def run(X, X_err, **settings):
    est = HierarchicalDistanceEstimator(field="edsd", field_length_scale=1350.0,
                                        random_state=0, **settings)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, X_err=X_err)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = est.distance_  # computed on first access
    t_dist = time.perf_counter() - t0
    post = "  ".join(
        f"{name} {np.mean(est.posterior_[name]):.4g} ± {np.std(est.posterior_[name]):.3g}"
        for name in ("mean_distance", "distance_dispersion", "cluster_fraction"))
    print(f"{str(settings or 'default'):28s} fit {t_fit:6.1f} s  distance_ {t_dist:5.1f} s  "
          f"{est.sampler_:10s}  {post}", flush=True)
    return t_fit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    d = make_cluster_parallaxes(args.n, mean_distance=2000.0, distance_dispersion=30.0,
                                cluster_fraction=0.8, field_length_scale=1350.0,
                                parallax_error=0.2, random_state=args.seed)
    t_auto = run(d.X, d.X_err)
    t_imp = run(d.X, d.X_err, sampler="importance")
    print(f"fit time, importance / default: {t_imp / t_auto:.1f}x")


if __name__ == "__main__":
    main()
