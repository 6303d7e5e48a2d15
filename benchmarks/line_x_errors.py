"""Cost of RobustLineMixture's population model for the true X.

For n points of the setting of the x-errors docs (true x ~ N(0, 1), x errors
0.8, y = 2x + 1, intrinsic scatter 0.5, y errors 0.3, 10 % outliers from
N(0, 10^2)), this fits the default model (``x_model="population"``, chosen
because X errors are given) and the projected likelihood
(``x_model="projected"``, the model of skhier's earlier releases) in the same
process, one after the other, and prints the wall time of each fit, the
slope's posterior median and sd, the effective sample size of the slope and
the ratios population / projected. Only the ratios are meaningful on a
shared, noisy machine.

Usage: python benchmarks/line_x_errors.py [--sizes 1000 100000] [--seed 0] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skhier import RobustLineMixture


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    xi = rng.normal(size=n)
    X = (xi + 0.8 * rng.normal(size=n))[:, None]
    y = 2.0 * xi + 1.0 + 0.5 * rng.normal(size=n) + 0.3 * rng.normal(size=n)
    bad = rng.uniform(size=n) < 0.1
    y[bad] = rng.normal(0.0, 10.0, size=bad.sum())
    return X, y, {"y_err": np.full(n, 0.3), "X_err": np.full((n, 1), 0.8)}


def fit(x_model, X, y, errors, seed):
    t0 = time.perf_counter()
    model = RobustLineMixture(x_model=x_model, random_state=seed).fit(X, y, **errors)
    elapsed = time.perf_counter() - t0
    slope = model.posterior_["coef"][:, 0]
    return elapsed, float(np.median(slope)), float(slope.std()), model.n_effective_["coef[0]"], \
        model.sampler_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2,
                        help="alternating repeats of each fit; the minimum time is kept")
    args = parser.parse_args()
    print(f"{'n':>7} {'x_model':>10} {'sampler':>10} {'wall [s]':>9} {'slope':>8} {'sd':>7} "
          f"{'ESS':>7}")
    for n in args.sizes:
        X, y, errors = simulate(n, args.seed)
        best = {}
        for _ in range(args.repeat):
            for x_model in ("projected", "population"):
                res = fit(x_model, X, y, errors, args.seed)
                if x_model not in best or res[0] < best[x_model][0]:
                    best[x_model] = res
        for x_model, (t, m, s, ess, smp) in best.items():
            print(f"{n:>7} {x_model:>10} {smp:>10} {t:>9.2f} {m:>8.3f} {s:>7.3f} {ess:>7.0f}")
        tp, tq = best["population"][0], best["projected"][0]
        ep, eq = best["population"][3], best["projected"][3]
        print(f"{n:>7} ratio population/projected: time {tp / tq:.2f}x, "
              f"ESS/s {(ep / tp) / (eq / tq):.2f}x (truth: slope 2)")


if __name__ == "__main__":
    main()
