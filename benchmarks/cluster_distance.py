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

Baselines measured in the same run, on the same data:

- skhier's emcee path on the same collapsed likelihood (``sampler="emcee"``;
  only up to ``--emcee-max`` stars, since it needs ~20x more evaluations);
- PyMC NUTS when PyMC is installed (``pip install skhier[bench]``), for N up
  to ``--pymc-max``: the same model with one latent distance per star, in
  the parameterisation that works in the regime (centred near, started at
  r = 1000 / parallax; non-centred far), the same priors,
  ``--chains`` chains run one after the other (``cores=1``) with
  ``--tune`` + ``--draws`` iterations each. It runs in a subprocess capped
  at ``--pymc-timeout`` seconds; its wall time counts model building and
  compilation (not the Python import of PyMC). ESS of PyMC: ArviZ bulk
  ESS; of skhier: its own per-parameter ESS (``n_effective_``). Printed:
  the ratio of effective samples per second (skhier / PyMC) — or, when PyMC
  hits the time cap, the lower bound that follows from its ESS being at
  most chains x draws — and both posteriors (mean ± sd of mu_r and sigma_r)
  with a check that they agree within 3 Monte Carlo standard errors.

Usage: python benchmarks/cluster_distance.py [--n 100 1000 10000 100000]
       [--regimes near far] [--emcee-max 1000] [--no-pymc] [--pymc-max 10000]
       [--tune 300] [--draws 300] [--chains 2] [--pymc-timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

MU, SIGMA = 1000.0, 15.0
REL_ERR = {"near": 0.05, "far": 0.40}
NAMES = ("mean_distance", "distance_dispersion")


def fit_skhier(d, **params):
    from skhier import HierarchicalDistanceEstimator
    from skhier._cluster_integral import FROZEN_TOL

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
    ess = dict(zip(NAMES, est.n_effective_.values(), strict=False))
    return est, wall, peak, ess, per_eval, frozen


# -- PyMC, in a subprocess with a time cap ------------------------------------


def pymc_worker(path):
    """Run NUTS on the data in ``path`` (npz) and print a JSON summary."""
    import warnings

    import arviz as az
    import pymc as pm

    cfg = np.load(path)
    plx, err = cfg["plx"], cfg["err"]
    centred = bool(cfg["centred"])
    t0 = time.perf_counter()
    with pm.Model():
        mu = pm.Uniform("mean_distance", 1.0, 10000.0)
        sig = pm.HalfCauchy("distance_dispersion", 20.0)
        if centred:
            start = np.where(plx > 0, 1000.0 / np.maximum(plx, 1e-3), MU)
            r = pm.Normal("r", mu, sig, shape=len(plx), initval=np.clip(start, 1.0, 1e4))
        else:
            z = pm.Normal("z", 0.0, 1.0, shape=len(plx))
            r = mu + sig * z
        pm.Normal("plx", mu=1000.0 / r, sigma=err, observed=plx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(int(cfg["draws"]), tune=int(cfg["tune"]), chains=int(cfg["chains"]),
                              cores=1, random_seed=0, progressbar=False,
                              compute_convergence_checks=False)
    wall = time.perf_counter() - t0
    post = idata.posterior
    out = {"wall": wall, "divergences": int(idata.sample_stats["diverging"].values.sum())}
    for k in NAMES:
        out[k] = {"mean": float(post[k].mean()), "sd": float(post[k].std()),
                  "ess": float(az.ess(idata, var_names=[k])[k])}
    print(json.dumps(out))


def run_pymc(d, regime, args):
    """(result dict or None on timeout, wall seconds) of the PyMC subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, plx=d.X[:, 0], err=d.X_err[:, 0], centred=regime == "near",
                 tune=args.tune, draws=args.draws, chains=args.chains)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--worker", path],
                                  capture_output=True, text=True, timeout=args.pymc_timeout)
        except subprocess.TimeoutExpired:
            return None, time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def agree(m1, s1, e1, m2, s2, e2):
    """Means within 3 MCSE (sd / sqrt(ESS)) and sds within 3 (sd / sqrt(2 ESS))."""
    ok_mean = abs(m1 - m2) < 3 * np.hypot(s1 / np.sqrt(e1), s2 / np.sqrt(e2))
    ok_sd = abs(s1 - s2) < 3 * np.hypot(s1 / np.sqrt(2 * e1), s2 / np.sqrt(2 * e2))
    return ok_mean and ok_sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", "--sizes", dest="sizes", type=int, nargs="+",
                    default=[100, 1000, 10000, 100000])
    ap.add_argument("--regimes", nargs="+", default=["near", "far"])
    ap.add_argument("--emcee-max", type=int, default=1000)
    ap.add_argument("--no-pymc", action="store_true")
    ap.add_argument("--pymc-max", type=int, default=10000)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--pymc-timeout", type=float, default=600.0)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        pymc_worker(args.worker)
        return
    from skhier.datasets import make_cluster_parallaxes

    have_pymc = False
    if not args.no_pymc:
        try:
            import arviz  # noqa: F401
            import pymc  # noqa: F401

            have_pymc = True
        except ImportError:
            print("PyMC not installed (pip install 'skhier[bench]'): NUTS comparison skipped.")
    header = (f"{'regime':6s} {'N':>7s} | {'sampler':10s} {'wall s':>7s} {'ESS':>6s} "
              f"{'ESS/s':>8s} {'peak MB':>8s} {'evals':>6s} {'lik s':>7s} {'other s':>7s}")
    print(header)
    print("-" * len(header), flush=True)
    for regime in args.regimes:
        for n in args.sizes:
            d = make_cluster_parallaxes(
                n, mean_distance=MU, distance_dispersion=SIGMA,
                parallax_error=REL_ERR[regime] * 1000.0 / MU, random_state=1,
            )
            est, wall, peak, ess_d, per_eval, frozen = fit_skhier(d)
            ess = min(ess_d.values())
            lik = per_eval * est.n_steps_ * (1 if est.sampler_ == "importance"
                                             else est.chain_.shape[1])
            label = est.sampler_ + ("*" if frozen else "")
            print(f"{regime:6s} {n:7d} | {label:10s} {wall:7.2f} {ess:6.0f} "
                  f"{ess / wall:8.1f} {peak / 2**20:8.1f} {est.n_steps_:6d} {lik:7.2f} "
                  f"{wall - lik:7.2f}", flush=True)
            if n <= args.emcee_max:
                mc, wall_mc, peak_mc, ess_mc, per_mc, _ = fit_skhier(d, sampler="emcee")
                ess_mc = min(ess_mc.values())
                n_ev = mc.n_steps_ * mc.chain_.shape[1]
                print(f"{'':6s} {'':7s} | {'emcee':10s} {wall_mc:7.2f} {ess_mc:6.0f} "
                      f"{ess_mc / wall_mc:8.1f} {peak_mc / 2**20:8.1f} {n_ev:6d} "
                      f"{per_mc * n_ev:7.2f} {wall_mc - per_mc * n_ev:7.2f}"
                      f"   ratio skhier/emcee ESS/s = {(ess / wall) / (ess_mc / wall_mc):.1f}",
                      flush=True)
            if have_pymc and n <= args.pymc_max:
                res, wall_proc = run_pymc(d, regime, args)
                param = "centred" if regime == "near" else "non-centred"
                if res is None:
                    bound = args.chains * args.draws / args.pymc_timeout
                    print(f"{'':6s} {'':7s} | PyMC NUTS ({param}, {args.chains}x"
                          f"{args.tune}+{args.draws}) did not finish in {args.pymc_timeout:.0f} s:"
                          f" PyMC ESS/s < {bound:.2f}, ratio skhier/PyMC ESS/s > "
                          f"{(ess / wall) / bound:.0f}", flush=True)
                    continue
                ess_pm = min(res[k]["ess"] for k in NAMES)
                print(f"{'':6s} {'':7s} | {'PyMC NUTS':10s} {res['wall']:7.2f} {ess_pm:6.0f} "
                      f"{ess_pm / res['wall']:8.2f}   ({param}, {args.chains}x{args.tune}+"
                      f"{args.draws}, {res['divergences']} divergences)   ratio skhier/PyMC "
                      f"ESS/s = {(ess / wall) / (ess_pm / res['wall']):.1f}", flush=True)
                for k, key in zip(NAMES, ess_d, strict=True):
                    m1, s1 = float(est.posterior_[k].mean()), float(est.posterior_[k].std())
                    r = res[k]
                    ok = agree(m1, s1, ess_d[key], r["mean"], r["sd"], r["ess"])
                    print(f"{'':16s}{k:20s} skhier {m1:9.3f} ± {s1:7.3f} (ESS {ess_d[key]:5.0f})"
                          f"   PyMC {r['mean']:9.3f} ± {r['sd']:7.3f} (ESS {r['ess']:5.0f})"
                          f"   {'agree' if ok else 'DIFFER'} within 3 MCSE", flush=True)


if __name__ == "__main__":
    main()
