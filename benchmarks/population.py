"""Speed of PopulationModel, and the ratio against PyMC NUTS on the same model.

For each population ("normal", "lognormal", "beta") and each number of
objects N (default 100, 10^4, 10^6) this simulates noisy measurements,
fits :class:`skhier.PopulationModel` (default sampler: quadrature over the
population posterior from 1 000 objects, else importance sampling with a
Pareto-k check, emcee as fallback; ``--sampler emcee`` forces emcee)
and prints the wall time (setup and per-object summaries included) and the
smallest effective sample size per second over the population parameters.

When PyMC is installed (``pip install skhier[bench]``) and N is at most
``--pymc-max`` (default 10^4), the same model — per-object true values as
explicit latent variables (non-centred for the normal and log-normal
populations, centred Beta draws for the beta population), the same priors —
is sampled with NUTS (``--chains`` chains one after the other, ``--tune`` +
``--draws`` iterations each) in a subprocess capped at ``--pymc-timeout``
seconds; its wall time counts model building and compilation (not the
Python import of PyMC). Printed: the ratio of effective samples per second
(skhier / PyMC) — or, when PyMC hits the cap, the lower bound that follows
from its ESS being at most chains x draws — and both posteriors (mean ± sd
of every population parameter) with a check that they agree within 3 Monte
Carlo standard errors. ESS of PyMC: ArviZ bulk ESS; of skhier: its own
per-parameter ESS (``n_effective_``). The numbers depend on the machine's
load; the ratio is measured in one run, one fit after the other.
``benchmarks/population_numpyro.py`` compares the same fits with numpyro's
NUTS, with the ESS from the spread of independent fits.

Usage: python benchmarks/population.py [--n 100 10000 1000000]
       [--populations normal lognormal beta] [--sampler auto] [--no-pymc]
       [--pymc-max 10000] [--tune 300] [--draws 300] [--chains 2]
       [--pymc-timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

# Truth, measurement errors and explicit priors (used by both samplers).
SETTINGS = {
    "normal": dict(
        params=(0.0, 1.0), err=(0.5, 1.5), names=("mu", "tau"),
        priors={"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 1.0)},
    ),
    "lognormal": dict(
        params=(1.0, 0.5), err=(0.1, 0.5), names=("mu", "sigma"),
        priors={"mu": ("normal", 0.0, 5.0), "sigma": ("halfcauchy", 1.0)},
    ),
    "beta": dict(
        params=(0.3, 5.0), err=(0.03, 0.1), names=("mean", "concentration"),
        priors={"mean": ("uniform", 0.0, 1.0), "concentration": ("lognormal", np.log(10.0), 1.5)},
    ),
}


def run_skhier(population, d, sampler, seed):
    from skhier import PopulationModel

    cfg = SETTINGS[population]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PopulationModel(
            population, priors=cfg["priors"], sampler=sampler, random_state=seed
        ).fit(d.X, X_err=d.X_err)
    wall = time.perf_counter() - t0
    names = list(model.family_.param_names)
    ess = dict(zip(names, model.n_effective_.values(), strict=False))
    post = {k: (float(np.mean(model.posterior_[k])), float(np.std(model.posterior_[k])))
            for k in names}
    return wall, ess, post, model.sampler_


def pymc_worker(path):
    """Run NUTS on the data in ``path`` (npz) and print a JSON summary."""
    import arviz as az
    import pymc as pm

    cfg = np.load(path)
    population = str(cfg["population"])
    x, e = cfg["x"], cfg["e"]
    n = x.size
    t0 = time.perf_counter()
    with pm.Model():
        if population == "normal":
            mu = pm.Normal("mu", 0.0, 10.0)
            tau = pm.HalfCauchy("tau", 1.0)
            z = pm.Normal("z", 0.0, 1.0, shape=n)
            theta = mu + tau * z
        elif population == "lognormal":
            mu = pm.Normal("mu", 0.0, 5.0)
            sigma = pm.HalfCauchy("sigma", 1.0)
            z = pm.Normal("z", 0.0, 1.0, shape=n)
            theta = pm.math.exp(mu + sigma * z)
        else:
            mean = pm.Uniform("mean", 0.0, 1.0)
            conc = pm.LogNormal("concentration", np.log(10.0), 1.5)
            theta = pm.Beta("theta", alpha=mean * conc, beta=(1 - mean) * conc, shape=n)
        pm.Normal("x", theta, e, observed=x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(
                draws=int(cfg["draws"]), tune=int(cfg["tune"]), chains=int(cfg["chains"]),
                cores=1, random_seed=int(cfg["seed"]), progressbar=False,
                compute_convergence_checks=False,
            )
    wall = time.perf_counter() - t0
    out = {"wall": wall, "divergences": int(idata.sample_stats["diverging"].values.sum())}
    for k in SETTINGS[population]["names"]:
        v = idata.posterior[k].values
        out[k] = {"mean": float(v.mean()), "sd": float(v.std()),
                  "ess": float(az.ess(idata, var_names=[k])[k])}
    print(json.dumps(out))


def run_pymc(population, d, args):
    """(result dict or None on timeout) of the PyMC subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, population=population, x=d.X[:, 0], e=d.X_err[:, 0], tune=args.tune,
                 draws=args.draws, chains=args.chains, seed=args.seed)
        try:
            proc = subprocess.run([sys.executable, __file__, "--worker", path],
                                  capture_output=True, text=True, timeout=args.pymc_timeout)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def agree(m1, s1, e1, m2, s2, e2):
    """Means within 3 MCSE (sd / sqrt(ESS)) and sds within 3 (sd / sqrt(2 ESS))."""
    ok_mean = abs(m1 - m2) < 3 * np.hypot(s1 / np.sqrt(e1), s2 / np.sqrt(e2))
    ok_sd = abs(s1 - s2) < 3 * np.hypot(s1 / np.sqrt(2 * e1), s2 / np.sqrt(2 * e2))
    return ok_mean and ok_sd


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", "--sizes", dest="sizes", type=int, nargs="+",
                        default=[100, 10_000, 1_000_000])
    parser.add_argument("--populations", nargs="+", default=["normal", "lognormal", "beta"])
    parser.add_argument("--sampler", default="auto", choices=["auto", "quadrature", "importance", "emcee"])
    parser.add_argument("--no-pymc", action="store_true")
    parser.add_argument("--pymc-max", type=int, default=10_000)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--pymc-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        pymc_worker(args.worker)
        return
    from skhier.datasets import make_population

    have_pymc = False
    if not args.no_pymc:
        try:
            import arviz  # noqa: F401
            import pymc  # noqa: F401

            have_pymc = True
        except ImportError:
            print("PyMC not installed (pip install skhier[bench]): skhier timings only.")

    header = (
        f"{'population':>10} {'N':>8} | {'skhier s':>9} {'ESS':>6} {'ESS/s':>8} {'sampler':>10} |"
        f" {'PyMC s':>8} {'ESS':>6} {'ESS/s':>8} {'div':>4} | {'ratio':>6}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for population in args.populations:
        cfg = SETTINGS[population]
        for n in args.sizes:
            d = make_population(
                n, distribution=population, params=cfg["params"], err=cfg["err"],
                random_state=args.seed,
            )
            wall, ess_d, post, used = run_skhier(population, d, args.sampler, args.seed)
            ess = min(ess_d.values())
            row = f"{population:>10} {n:>8} | {wall:9.2f} {ess:6.0f} {ess / wall:8.1f} {used:>10} |"
            res = None
            if have_pymc and n <= args.pymc_max:
                res = run_pymc(population, d, args)
                if res is None:
                    bound = args.chains * args.draws / args.pymc_timeout
                    row += (f" {'>' + format(args.pymc_timeout, '.0f'):>8} {'-':>6} "
                            f"{'<' + format(bound, '.2f'):>8} {'-':>4} | "
                            f"{'>' + format((ess / wall) / bound, '.0f'):>6}")
                else:
                    pess = min(res[k]["ess"] for k in cfg["names"])
                    pw = res["wall"]
                    row += (f" {pw:8.1f} {pess:6.0f} {pess / pw:8.2f} {res['divergences']:4d} | "
                            f"{(ess / wall) / (pess / pw):6.1f}")
            else:
                row += f" {'-':>8} {'-':>6} {'-':>8} {'-':>4} | {'-':>6}"
            print(row, flush=True)
            for k in cfg["names"]:
                m1, s1 = post[k]
                line = f"{'':21s}{k:14s} skhier {m1:9.4f} ± {s1:8.4f} (ESS {ess_d[k]:5.0f})"
                if res is not None:
                    r = res[k]
                    ok = agree(m1, s1, ess_d[k], r["mean"], r["sd"], r["ess"])
                    line += (f"   PyMC {r['mean']:9.4f} ± {r['sd']:8.4f} (ESS {r['ess']:5.0f})"
                             f"   {'agree' if ok else 'DIFFER'} within 3 MCSE")
                print(line, flush=True)


if __name__ == "__main__":
    main()
