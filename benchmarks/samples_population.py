"""Speed of PosteriorSamplesPopulation on 10^4 objects x 1 000 samples.

Hogg, Myers & Bovy (2010) reweighting: every posterior evaluation needs
n_walkers x n_objects x n_samples population log-densities. This prints,
for a normal and a Beta population:

* the time of one vectorised log-posterior evaluation (16 walkers) in
  skhier's hot path (single-precision exponential-family features, one
  matrix product per chunk) and in a baseline written the direct way
  (double precision, ``scipy.stats`` log-density and ``logsumexp`` over
  each object's samples, same vectorisation over walkers and objects),
  and their ratio, measured one after the other in the same process;
* the wall time of a complete ``fit`` (MAP search, then importance
  sampling or emcee as chosen by ``--sampler``, diagnostics: setup
  included), the effective sample size of each population parameter and
  the minimum effective samples per second.

Usage: python benchmarks/samples_population.py [--objects 10000] [--samples 1000]
       [--sampler auto|emcee|importance] [--walkers 16] [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import special, stats
from threadpoolctl import threadpool_limits

from skhier import PosteriorSamplesPopulation


def make_data(kind, n, k, rng):
    """Exact per-object posteriors under a flat interim prior."""
    if kind == "normal":
        theta = 2.0 + rng.standard_normal(n)
        e = rng.uniform(0.5, 1.5, n)
        x = theta + e * rng.standard_normal(n)
        return x[:, None] + e[:, None] * rng.standard_normal((n, k)), (2.0, 1.0)
    theta = rng.beta(0.867, 3.03, n)
    e = rng.uniform(0.05, 0.2, n)
    x = theta + e * rng.standard_normal(n)
    lo, hi = (0 - x) / e, (1 - x) / e
    X = stats.truncnorm.rvs(lo[:, None], hi[:, None], loc=x[:, None], scale=e[:, None],
                            size=(n, k), random_state=rng)
    return X, (0.867 / 3.897, 3.897)


def baseline_loglik(kind, X, params, chunk=200):
    """Direct double-precision reweighted log-likelihood for each walker."""
    out = np.zeros(len(params))
    for w, p in enumerate(params):
        for s in range(0, len(X), chunk):
            xs = X[s : s + chunk]
            if kind == "normal":
                lp = stats.norm.logpdf(xs, p[0], p[1])
            else:
                lp = stats.beta.logpdf(xs, p[0] * p[1], (1 - p[0]) * p[1])
            out[w] += np.sum(special.logsumexp(lp, axis=1) - np.log(xs.shape[1]))
    return out


def timeit(f, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=1_000)
    ap.add_argument("--walkers", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--sampler", default="auto", choices=["auto", "emcee", "importance"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.objects} objects x {args.samples} samples, sampler={args.sampler} "
          f"(emcee: {args.walkers} walkers, {args.steps} steps)\n")
    for kind in ("normal", "beta"):
        X, truth = make_data(kind, args.objects, args.samples, rng)
        est = PosteriorSamplesPopulation(kind, sampler=args.sampler, n_walkers=args.walkers,
                                         n_steps=args.steps,
                                         n_burn=args.steps // 4, random_state=args.seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X)
        t_fit = time.perf_counter() - t0
        model = est.model_
        x = np.zeros((args.walkers, len(model.param_names)))
        x += 0.1 * rng.standard_normal(x.shape)
        P = model._unpack(x)[0]
        params = P[:, 0]
        with threadpool_limits(limits=1, user_api="blas"):  # as in fit
            t_ours = timeit(lambda m=model, p=P: m._pop_loglik_train(p))
        t_base = timeit(lambda k=kind, x=X, p=params: baseline_loglik(k, x, p), repeat=1)
        diff = np.max(np.abs(model._pop_loglik_train(P).sum(1) - baseline_loglik(kind, X, params)))
        model.release()
        ess = est.n_effective_
        names = list(est.posterior_)
        print(f"[{kind}] truth {truth}, posterior medians "
              + ", ".join(f"{k}={v:.4g}" for k, v in est.population_params_.items()))
        print(f"  one log-likelihood evaluation ({args.walkers} walkers): skhier {t_ours:.3f} s, "
              f"baseline {t_base:.3f} s, speed-up x{t_base / t_ours:.1f} "
              f"(max |difference| of the summed log-likelihood {diff:.2g})")
        print(f"  fit ({est.sampler_}): {t_fit:.1f} s, ESS " + ", ".join(f"{k}={v:.0f}" for k, v in ess.items())
              + f", min ESS/s = {min(ess.values()) / t_fit:.1f}; parameters {names}")
        print(f"  warnings: {sorted({type(w.message).__name__ for w in caught}) or 'none'}\n")


if __name__ == "__main__":
    main()
