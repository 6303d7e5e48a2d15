"""Speed of HierarchicalDistanceEstimator: effective samples per second.

For N stars (default 100, 1 000, 10 000, 100 000) in two regimes — "near"
(parallax errors 5 % of the cluster's parallax) and "far" (40 %) — with a
cluster at 1 kpc of 15 pc depth, this prints for skhier's default fit
(importance sampling with Pareto-k check, emcee fallback):

- wall time of ``fit`` (MAP, proposal, draws and per-star summaries);
- effective sample size and effective samples per second of mu_r and
  sigma_r (the smaller of the two);
- peak memory traced by ``tracemalloc`` during the fit;
- where the time goes: collapsed-likelihood evaluations (number x measured
  cost of one batch) vs. the rest (MAP search, per-star summaries, and a
  failed frozen-rule attempt where there is one). ``importance*`` marks fits
  whose importance draws used the frozen per-star quadrature rules.

Baselines measured in the same process, on the same data:

- skhier's emcee path on the same collapsed likelihood (``sampler="emcee"``;
  only up to ``--emcee-max`` stars, since it needs ~20x more evaluations);
- PyMC NUTS (non-centred, 2 chains x (1000 tune + 1000 draws), compile time
  included) when PyMC is installed (``pip install skhier[bench]``): the
  ratio of effective samples per second and the two posteriors side by side.

Usage: python benchmarks/cluster_distance.py [--sizes 100 1000 10000 100000]
       [--regimes near far] [--emcee-max 1000] [--no-pymc]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from skhier import HierarchicalDistanceEstimator
from skhier._distance import FROZEN_TOL
from skhier.datasets import make_cluster_parallaxes

MU, SIGMA = 1000.0, 15.0
REL_ERR = {"near": 0.05, "far": 0.40}


def fit_skhier(d, **params):
    t0 = time.perf_counter()
    est = HierarchicalDistanceEstimator(random_state=0, **params).fit(d.X, X_err=d.X_err)
    wall = time.perf_counter() - t0
    # Memory in a second, traced fit (tracing slows numpy down, so it is not
    # timed).
    tracemalloc.start()
    HierarchicalDistanceEstimator(random_state=0, **params).fit(d.X, X_err=d.X_err)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Cost of one likelihood evaluation, in the sampler's batch size (256
    # importance draws per call, or one call per emcee step over the walkers).
    size = 256 if est.sampler_ == "importance" else est.chain_.shape[1]
    batch = est.chain_.reshape(-1, est.chain_.shape[-1])[:size]
    # The frozen-rule likelihood when the fit used it (see frozen_check_).
    frozen = est.frozen_check_ is not None and est.frozen_check_ <= FROZEN_TOL
    log_prob = est.model_.log_prob_frozen if frozen else est.model_.log_prob
    t1 = time.perf_counter()
    log_prob(batch)
    per_eval = (time.perf_counter() - t1) / len(batch)
    ess = min(est.n_effective_.values())
    return est, wall, peak, ess, per_eval


def run_pymc(d):
    import pymc as pm

    plx, err = d.X[:, 0], d.X_err[:, 0]
    t0 = time.perf_counter()
    with pm.Model():
        mu = pm.Uniform("mean_distance", 1.0, 10000.0)
        sig = pm.HalfCauchy("distance_dispersion", 20.0)
        z = pm.Normal("z", 0.0, 1.0, shape=len(plx))
        r = mu + sig * z
        pm.Normal("plx", mu=1000.0 / r, sigma=err, observed=plx)
        idata = pm.sample(1000, tune=1000, chains=2, cores=1, random_seed=0,
                          progressbar=False, compute_convergence_checks=False)
    wall = time.perf_counter() - t0
    import arviz as az

    ess = az.ess(idata, var_names=["mean_distance", "distance_dispersion"])
    post = idata.posterior
    return wall, float(min(ess["mean_distance"], ess["distance_dispersion"])), {
        k: (float(post[k].mean()), float(post[k].std()))
        for k in ("mean_distance", "distance_dispersion")
    }


def summary(est):
    return {
        k: (float(est.posterior_[k].mean()), float(est.posterior_[k].std()))
        for k in ("mean_distance", "distance_dispersion")
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    ap.add_argument("--regimes", nargs="+", default=["near", "far"])
    ap.add_argument("--emcee-max", type=int, default=1000)
    ap.add_argument("--no-pymc", action="store_true")
    args = ap.parse_args()
    try:
        if args.no_pymc:
            raise ImportError
        import pymc  # noqa: F401

        have_pymc = True
    except ImportError:
        have_pymc = False
        if not args.no_pymc:
            print("PyMC not installed (pip install 'skhier[bench]'): NUTS comparison skipped.")
    header = (f"{'regime':6s} {'N':>7s} | {'sampler':10s} {'wall s':>7s} {'ESS':>6s} "
              f"{'ESS/s':>8s} {'peak MB':>8s} {'evals':>6s} {'lik s':>7s} {'other s':>7s}")
    print(header)
    print("-" * len(header))
    for regime in args.regimes:
        for n in args.sizes:
            d = make_cluster_parallaxes(
                n, mean_distance=MU, distance_dispersion=SIGMA,
                parallax_error=REL_ERR[regime] * 1000.0 / MU, random_state=1,
            )
            est, wall, peak, ess, per_eval = fit_skhier(d)
            lik = per_eval * est.n_steps_ * (1 if est.sampler_ == "importance"
                                             else est.chain_.shape[1])
            label = est.sampler_ + ("*" if est.frozen_check_ is not None
                                    and est.frozen_check_ <= FROZEN_TOL else "")
            print(f"{regime:6s} {n:7d} | {label:10s} {wall:7.2f} {ess:6.0f} "
                  f"{ess / wall:8.1f} {peak / 2**20:8.1f} {est.n_steps_:6d} {lik:7.2f} "
                  f"{wall - lik:7.2f}")
            s_is = summary(est)
            if n <= args.emcee_max:
                mc, wall_mc, peak_mc, ess_mc, per_mc = fit_skhier(d, sampler="emcee")
                n_ev = mc.n_steps_ * mc.chain_.shape[1]
                print(f"{'':6s} {'':7s} | {'emcee':10s} {wall_mc:7.2f} {ess_mc:6.0f} "
                      f"{ess_mc / wall_mc:8.1f} {peak_mc / 2**20:8.1f} {n_ev:6d} "
                      f"{per_mc * n_ev:7.2f} {wall_mc - per_mc * n_ev:7.2f}"
                      f"   ratio skhier/emcee ESS/s = {(ess / wall) / (ess_mc / wall_mc):.1f}")
            if have_pymc:
                wall_pm, ess_pm, s_pm = run_pymc(d)
                print(f"{'':6s} {'':7s} | {'PyMC NUTS':10s} {wall_pm:7.2f} {ess_pm:6.0f} "
                      f"{ess_pm / wall_pm:8.1f}   ratio skhier/PyMC ESS/s = "
                      f"{(ess / wall) / (ess_pm / wall_pm):.1f}")
                for k in s_is:
                    print(f"{'':16s}{k:20s} skhier {s_is[k][0]:9.3f} ± {s_is[k][1]:7.3f}"
                          f"   PyMC {s_pm[k][0]:9.3f} ± {s_pm[k][1]:7.3f}")


if __name__ == "__main__":
    main()
