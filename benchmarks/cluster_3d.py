"""Fit time of the 3-D cluster model against the 1-D model on the same stars.

For each number of stars (default 1 000, 3 000 and 10 000) and regime this
simulates a cluster with ``make_cluster_3d`` (all members):

- ``near``: Pleiades-like, 135 pc, dispersion 5 pc, parallax errors 0.1 mas
  (1.4 %);
- ``far``: 2 kpc, dispersion 30 pc, parallax errors 0.2 mas (40 %, with
  negative parallaxes);

fits :class:`skhier.HierarchicalDistanceEstimator` (parallaxes only) and
:class:`skhier.HierarchicalDistanceEstimator3D` (positions and parallaxes)
with their default settings, alternately (``--repeats`` times each, the
best time kept, so that the machine's load affects both alike), and prints
both times, their ratio (3-D / 1-D), the sampler each used, the 3-D fit's
quadrature error (in posterior sd), and the two posterior means of the
distance. The 3-D time is then split into log-density evaluations (their
number and time) and the rest. The machine's load average is printed
before and after.

Usage: python benchmarks/cluster_3d.py [--sizes 1000 3000 10000]
       [--regimes near far] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from skhier import HierarchicalDistanceEstimator, HierarchicalDistanceEstimator3D
from skhier._cluster3d import _Cluster3DModel
from skhier.datasets import make_cluster_3d

REGIMES = {"near": (135.0, 5.0, 0.1), "far": (2000.0, 30.0, 0.2)}


class _CountingModel:
    """Counts the points at which the 3-D model's log-density is evaluated,
    and the time spent there (patched onto the class for one fit)."""

    def __init__(self):
        self.points, self.seconds = 0, 0.0
        self._orig = _Cluster3DModel.log_prob

    def __enter__(self):
        orig, counter = self._orig, self

        def log_prob(model, theta):
            t0 = time.perf_counter()
            out = orig(model, theta)
            counter.seconds += time.perf_counter() - t0
            counter.points += len(np.atleast_2d(theta))
            return out

        _Cluster3DModel.log_prob = log_prob
        return self

    def __exit__(self, *exc):
        _Cluster3DModel.log_prob = self._orig
        return False


def _fit_1d(d):
    return HierarchicalDistanceEstimator(random_state=0).fit(d.X, X_err=d.X_err)


def _fit_3d(d):
    return HierarchicalDistanceEstimator3D(random_state=0).fit(d.X, X_err=d.X_err, ra=d.ra,
                                                              dec=d.dec)


def _timed(fit, d):
    t0 = time.perf_counter()
    est = fit(d)
    return time.perf_counter() - t0, est


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--regimes", nargs="+", default=["near", "far"], choices=list(REGIMES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'regime':>6} {'stars':>6} {'1-D s':>7} {'3-D s':>7} {'ratio':>6}  samplers"
          f"{'':14}quad. err  points  in log-density  distance 1-D / 3-D (pc)")
    for regime in args.regimes:
        dist, disp, err = REGIMES[regime]
        for n in args.sizes:
            d = make_cluster_3d(n, center_icrs=(56.75, 24.12, dist), dispersion=disp,
                                parallax_error=err, random_state=0)
            t1 = t3 = np.inf
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(args.repeats):
                    t, one = _timed(_fit_1d, d)
                    t1 = min(t1, t)
                    t, three = _timed(_fit_3d, d)
                    t3 = min(t3, t)
                with _CountingModel() as counter:
                    _fit_3d(d)
            m1, m3 = one.posterior_["mean_distance"], three.posterior_["mean_distance"]
            q_err = (f"{max(three.quadrature_error_.values()):9.4f}"
                     if three.quadrature_error_ else f"{'-':>9}")
            print(f"{regime:>6} {n:6d} {t1:7.3f} {t3:7.3f} {t3 / t1:6.2f}  {one.sampler_:>10} "
                  f"{three.sampler_:>10}  {q_err} {counter.points:7d} {counter.seconds:8.3f} s"
                  f"      {m1.mean():.2f} ± {m1.std():.2f} / {m3.mean():.2f} ± {m3.std():.2f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
