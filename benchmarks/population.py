"""Speed of PopulationModel, and the ratio against PyMC NUTS on the same model.

For each population ("normal", "lognormal", "beta") and each number of
objects N (default 100, 10^4, 10^6) this simulates noisy measurements,
fits :class:`skhier.PopulationModel` (default sampler: importance sampling
with a Pareto-k check, emcee as fallback; ``--sampler emcee`` forces emcee)
and prints the wall time (setup included) and the smallest effective sample
size per second over the population parameters.

When PyMC is installed (``pip install skhier[bench]``) and N is at most
``--pymc-max`` (default 10^4), the same model — per-object true values as
explicit latent variables (non-centred for the normal and log-normal
populations), the same priors — is sampled with NUTS (2 chains run one
after the other, ``--tune`` + ``--draws`` each, compilation included in the
wall time) in the same run, and the ratio of effective samples per second
(skhier / PyMC) is printed. ESS of PyMC from ArviZ (bulk ESS); ESS of skhier
from its own diagnostics (importance-sampling ESS per parameter, or
autocorrelation-based ESS after emcee). Posterior medians of both are shown
as a sanity check. The numbers depend on the machine's load; the ratio is
measured in one process, one fit after the other.

Usage: python benchmarks/population.py [--sizes 100 10000 1000000]
       [--populations normal lognormal beta] [--sampler auto] [--no-pymc]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from skhier import PopulationModel
from skhier.datasets import make_population

# Truth, measurement errors and explicit priors (used by both samplers).
SETTINGS = {
    "normal": dict(
        params=(0.0, 1.0), err=(0.5, 1.5),
        priors={"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 1.0)},
    ),
    "lognormal": dict(
        params=(1.0, 0.5), err=(0.1, 0.5),
        priors={"mu": ("normal", 0.0, 5.0), "sigma": ("halfcauchy", 1.0)},
    ),
    "beta": dict(
        params=(0.3, 5.0), err=(0.03, 0.1),
        priors={"mean": ("uniform", 0.0, 1.0), "concentration": ("lognormal", np.log(10.0), 1.5)},
    ),
}


def run_skhier(population, d, sampler, seed):
    cfg = SETTINGS[population]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PopulationModel(
            population, priors=cfg["priors"], sampler=sampler, random_state=seed
        ).fit(d.X, X_err=d.X_err)
    wall = time.perf_counter() - t0
    ess = min(model.n_effective_.values())
    names = list(model.family_.param_names)
    med = {k: float(np.median(model.posterior_[k])) for k in names}
    return wall, ess, med, model.sampler_


def run_pymc(population, d, tune, draws, seed):
    import arviz as az
    import pymc as pm

    x, e = d.X[:, 0], d.X_err[:, 0]
    n = x.size
    with pm.Model():
        if population == "normal":
            mu = pm.Normal("mu", 0.0, 10.0)
            tau = pm.HalfCauchy("tau", 1.0)
            z = pm.Normal("z", 0.0, 1.0, shape=n)
            theta = mu + tau * z
            names = ["mu", "tau"]
        elif population == "lognormal":
            mu = pm.Normal("mu", 0.0, 5.0)
            sigma = pm.HalfCauchy("sigma", 1.0)
            z = pm.Normal("z", 0.0, 1.0, shape=n)
            theta = pm.math.exp(mu + sigma * z)
            names = ["mu", "sigma"]
        else:
            mean = pm.Uniform("mean", 0.0, 1.0)
            conc = pm.LogNormal("concentration", np.log(10.0), 1.5)
            theta = pm.Beta("theta", alpha=mean * conc, beta=(1 - mean) * conc, shape=n)
            names = ["mean", "concentration"]
        pm.Normal("x", theta, e, observed=x)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(
                draws=draws, tune=tune, chains=2, cores=1, random_seed=seed,
                progressbar=False, compute_convergence_checks=False,
            )
        wall = time.perf_counter() - t0
    ess = min(float(az.ess(idata, var_names=[k])[k]) for k in names)
    med = {k: float(np.median(idata.posterior[k].values)) for k in names}
    n_div = int(idata.sample_stats["diverging"].values.sum())
    return wall, ess, med, n_div


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 1_000_000])
    parser.add_argument("--populations", nargs="+", default=["normal", "lognormal", "beta"])
    parser.add_argument("--sampler", default="auto", choices=["auto", "importance", "emcee"])
    parser.add_argument("--no-pymc", action="store_true")
    parser.add_argument("--pymc-max", type=int, default=10_000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    have_pymc = False
    if not args.no_pymc:
        try:
            import pymc  # noqa: F401

            have_pymc = True
        except ImportError:
            print("PyMC not installed (pip install skhier[bench]): skhier timings only.")

    header = (
        f"{'population':>10} {'N':>8} | {'skhier s':>9} {'ESS':>6} {'ESS/s':>8} {'sampler':>10} |"
        f" {'PyMC s':>8} {'ESS':>6} {'ESS/s':>8} {'div':>4} | {'ratio':>6} | medians skhier / PyMC"
    )
    print(header)
    print("-" * len(header))
    for population in args.populations:
        cfg = SETTINGS[population]
        for n in args.sizes:
            d = make_population(
                n, distribution=population, params=cfg["params"], err=cfg["err"],
                random_state=args.seed,
            )
            wall, ess, med, used = run_skhier(population, d, args.sampler, args.seed)
            row = (
                f"{population:>10} {n:>8} | {wall:9.2f} {ess:6.0f} {ess / wall:8.1f} {used:>10} |"
            )
            if have_pymc and n <= args.pymc_max:
                pw, pess, pmed, ndiv = run_pymc(population, d, args.tune, args.draws, args.seed)
                ratio = (ess / wall) / (pess / pw)
                meds = " ".join(f"{k}={med[k]:.3g}/{pmed[k]:.3g}" for k in med)
                row += f" {pw:8.1f} {pess:6.0f} {pess / pw:8.1f} {ndiv:4d} | {ratio:6.1f} | {meds}"
            else:
                meds = " ".join(f"{k}={v:.3g}" for k, v in med.items())
                row += f" {'-':>8} {'-':>6} {'-':>8} {'-':>4} | {'-':>6} | {meds}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
