"""Fit time of the 3-D cluster model against the 1-D model on the same stars.

For each number of stars this simulates a Pleiades-like cluster
(``make_cluster_3d``: 135 pc, dispersion 5 pc, parallax errors 0.1 mas, all
members), fits :class:`skhier.HierarchicalDistanceEstimator` (parallaxes only)
and :class:`skhier.HierarchicalDistanceEstimator3D` (positions and
parallaxes) with their default samplers, and prints both times, their ratio
(measured in the same run, so that the machine's load affects both), the
sampler each used, and the two posterior means of the distance.

Usage: python benchmarks/cluster_3d.py [--sizes 200 1000 3000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from skhier import HierarchicalDistanceEstimator, HierarchicalDistanceEstimator3D
from skhier.datasets import make_cluster_3d


def _time(make, fit, repeats):
    best, est = np.inf, None
    for _ in range(repeats):
        est = make()
        t0 = time.perf_counter()
        fit(est)
        best = min(best, time.perf_counter() - t0)
    return best, est


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 3000])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'stars':>6} {'1-D s':>8} {'3-D s':>8} {'ratio':>6}  samplers            "
          "distance 1-D / 3-D (pc)")
    for n in args.sizes:
        d = make_cluster_3d(n, center_icrs=(56.75, 24.12, 135.0), dispersion=5.0,
                            parallax_error=0.1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t1, one = _time(lambda: HierarchicalDistanceEstimator(random_state=0),
                            lambda e, d=d: e.fit(d.X, X_err=d.X_err), args.repeats)
            t3, three = _time(lambda: HierarchicalDistanceEstimator3D(random_state=0),
                              lambda e, d=d: e.fit(d.X, X_err=d.X_err, ra=d.ra, dec=d.dec),
                              args.repeats)
        m1, m3 = one.posterior_["mean_distance"], three.posterior_["mean_distance"]
        print(f"{n:6d} {t1:8.2f} {t3:8.2f} {t3 / t1:6.1f}  {one.sampler_:>10} "
              f"{three.sampler_:>10}  {m1.mean():.2f} ± {m1.std():.2f} / "
              f"{m3.mean():.2f} ± {m3.std():.2f}")


if __name__ == "__main__":
    main()
