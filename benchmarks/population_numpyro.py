"""PopulationModel against numpyro's NUTS on the same population models, in one run.

Data and priors: the population benchmarks of ``benchmarks/population.py``
(``SETTINGS``): noisy measurements ``x_i ~ N(theta_i, e_i^2)`` of true
values from a log-normal (mu = 1, sigma = 0.5; e_i in [0.1, 0.5], some
measurements negative), a Beta (mean 0.3, concentration 5; e_i in
[0.03, 0.1], measurements outside [0, 1]) or a normal population, with the
same explicit priors on both sides.

For each population this prints, measured one after the other in the same
run (one JSON line per result):

- **skhier**: ``--seeds`` independent fits of :class:`skhier.PopulationModel`
  (``random_state`` = seed); the time per fit (``fit`` to its return; the
  per-object summaries, computed on first access of ``theta_mean_``, are
  timed separately); the sampler used; ESS from the spread of the posterior
  means across seeds, ``ESS = sd² / var_seeds(mean)``, the smaller over the
  two population parameters (a noisy estimate: with S seeds its relative sd
  is about ``sqrt(2 / (S - 1))``); and, after quadrature, the estimator's
  quadrature error (in posterior sd; the moments carry no Monte Carlo
  error, the stored draws do).
- **numpyro** NUTS (2 chains in parallel, 1000 warm-up + 1000 draws), every
  object's true value an explicit latent started at its measurement:
  centred and non-centred (``theta_i = exp(mu + sigma z_i)``) for the
  log-normal and normal populations, centred for the Beta (a Beta has no
  location-scale form to non-centre). The model is run twice with the same
  shapes: ``wall_s`` is the first run (JIT compilation included), used for
  the ratio; ``sample_s`` the second (compiled) run. ESS: ArviZ bulk ESS,
  the smaller over the two population parameters.
- the ratio skhier ESS/s / best numpyro ESS/s (compilation included, and
  against the compiled rerun), and the distance of skhier's posterior means
  from the best numpyro run's in numpyro posterior sd (``*_diff_in_sd``).

Usage: python benchmarks/population_numpyro.py [--populations lognormal beta normal]
       [--n 10000] [--seeds 8] [--peers c nc] [--peer-timeout 900]
       [--skip-skhier] [--skip-peers] [--json out.jsonl]
Needs ``pip install skhier[bench]`` (numpyro, jax, ArviZ) for the peers.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from population import SETTINGS  # noqa: E402  (the same data and priors)


def _start(population, x):
    """Hyperparameter start (moments of the measurements) and latent starts
    (each object's measurement, moved into the support)."""
    if population == "beta":
        t = np.clip(x, 0.01, 0.99)
        m = float(np.mean(t))
        k = float(np.clip(m * (1 - m) / np.var(t) - 1.0, 0.5, 1000.0))
        return {"mean": m, "concentration": k}, t
    if population == "lognormal":
        pos = x[x > 0]
        floor = 0.05 * float(np.median(pos))
        lt = np.log(np.maximum(x, floor))
        return {"mu": float(np.mean(lt)), "sigma": float(np.std(lt))}, lt
    return {"mu": float(np.mean(x)), "tau": float(np.std(x))}, x.copy()


def numpyro_worker(path):
    """NUTS on the data in ``path`` (npz); prints one JSON line."""
    cfg = np.load(path)
    chains = int(cfg["chains"])
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={chains}"
    import arviz as az
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, init_to_value

    jax.config.update("jax_enable_x64", True)
    population, param = str(cfg["population"]), str(cfg["param"])
    x, e = cfg["x"], cfg["e"]
    names = SETTINGS[population]["names"]
    pri = SETTINGS[population]["priors"]
    hyper0, latent0 = _start(population, x)

    def model(x, e):
        if population == "beta":
            m = numpyro.sample("mean", dist.Uniform(pri["mean"][1], pri["mean"][2]))
            k = numpyro.sample("concentration",
                               dist.LogNormal(pri["concentration"][1], pri["concentration"][2]))
            with numpyro.plate("objects", x.shape[0]):
                theta = numpyro.sample("theta", dist.Beta(m * k, (1.0 - m) * k))
                numpyro.sample("x", dist.Normal(theta, e), obs=x)
            return
        loc_name, scale_name = names
        loc = numpyro.sample(loc_name, dist.Normal(pri[loc_name][1], pri[loc_name][2]))
        scale = numpyro.sample(scale_name, dist.HalfCauchy(pri[scale_name][1]))
        with numpyro.plate("objects", x.shape[0]):
            if param == "c":
                t = numpyro.sample("t", dist.Normal(loc, scale))
            else:
                t = loc + scale * numpyro.sample("z", dist.Normal(0.0, 1.0))
            theta = jnp.exp(t) if population == "lognormal" else t
            numpyro.sample("x", dist.Normal(theta, e), obs=x)

    init = dict(hyper0)
    if population == "beta":
        init["theta"] = jnp.asarray(latent0)
    elif param == "c":
        init["t"] = jnp.asarray(latent0)
    else:
        loc0, scale0 = (hyper0[k] for k in names)
        init["z"] = jnp.asarray((latent0 - loc0) / scale0)
    mcmc = MCMC(NUTS(model, init_strategy=init_to_value(values=init)),
                num_warmup=int(cfg["warmup"]), num_samples=int(cfg["draws"]),
                num_chains=chains, chain_method="parallel", progress_bar=False,
                jit_model_args=True)
    xj, ej = jnp.asarray(x), jnp.asarray(e)
    times = []
    for seed in (0, 1):
        t0 = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), xj, ej, extra_fields=("diverging",))
        jax.block_until_ready(mcmc.get_samples())
        times.append(time.perf_counter() - t0)
    samp = mcmc.get_samples(group_by_chain=True)
    post = {k: np.asarray(samp[k]) for k in names}
    idata = az.from_dict(posterior=post)
    ess = az.ess(idata, method="bulk")
    rhat = az.rhat(idata)
    min_ess = float(min(float(ess[k].values) for k in names))
    out = dict(
        param=param, chains=chains, wall_s=round(times[0], 2),
        compile_s=round(times[0] - times[1], 2), sample_s=round(times[1], 2),
        min_ess=round(min_ess, 1),
        ess_per_s_incl_compile=round(min_ess / times[0], 2),
        ess_per_s=round(min_ess / times[1], 2),
        divergences=int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum()),
        max_rhat=round(max(float(rhat[k].values) for k in names), 4),
    )
    for k in names:
        out[f"{k}_mean"] = float(post[k].mean())
        out[f"{k}_std"] = float(post[k].std())
    print(json.dumps(out))


def _peer(population, d, param, args):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, population=population, param=param, x=d.X[:, 0], e=d.X_err[:, 0],
                 chains=2, warmup=args.warmup, draws=args.draws)
        try:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", path],
                                  capture_output=True, text=True, timeout=args.peer_timeout)
        except subprocess.TimeoutExpired:
            return {"param": param, "note": f"no result in {args.peer_timeout:.0f} s"}
        if proc.returncode != 0:
            return {"param": param, "note": "failed: " + proc.stderr[-400:]}
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _skhier(population, d, seeds):
    from skhier import PopulationModel

    cfg = SETTINGS[population]
    names = cfg["names"]
    rows = []
    for seed in range(seeds):
        model = PopulationModel(population, priors=cfg["priors"], random_state=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(d.X, X_err=d.X_err)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        _ = model.theta_mean_
        t_obj = time.perf_counter() - t0
        q_err = getattr(model, "quadrature_error_", None)
        rows.append(dict(
            fit_s=t_fit, objects_s=t_obj, sampler=model.sampler_,
            post={k: (float(model.posterior_[k].mean()), float(model.posterior_[k].std()))
                  for k in names},
            quad_err=max(q_err.values()) if q_err else None,
        ))
    out = dict(
        fit_s=round(float(np.mean([r["fit_s"] for r in rows])), 3),
        fit_s_max=round(max(r["fit_s"] for r in rows), 3),
        per_object_summaries_s=round(float(np.mean([r["objects_s"] for r in rows])), 3),
        samplers=sorted({r["sampler"] for r in rows}),
        quad_err=max((r["quad_err"] for r in rows if r["quad_err"] is not None), default=None),
    )
    ess = []
    for k in names:
        m = np.array([r["post"][k][0] for r in rows])
        s = np.array([r["post"][k][1] for r in rows])
        out[f"{k}_mean"] = float(m.mean())
        out[f"{k}_std"] = float(s.mean())
        var = m.var(ddof=1) if seeds > 1 else np.nan
        ess.append(s.mean() ** 2 / var if var > 0 else np.inf)
    out["ess_spread"] = round(float(min(ess)), 1)
    out["ess_per_s"] = round(out["ess_spread"] / out["fit_s"], 1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--populations", nargs="+", default=["lognormal", "beta", "normal"])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--peers", nargs="*", default=["c", "nc"])
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--skip-skhier", action="store_true")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--json", default=None, help="append one JSON line per result")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        numpyro_worker(args.worker)
        return
    from skhier.datasets import make_population

    def emit(row):
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")

    def uptime():
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    emit({"what": "machine", "uptime": uptime(), "cpus": os.cpu_count()})
    for population in args.populations:
        cfg = SETTINGS[population]
        names = cfg["names"]
        d = make_population(args.n, distribution=population, params=cfg["params"],
                            err=cfg["err"], random_state=args.data_seed)
        sk = None
        if not args.skip_skhier:
            sk = _skhier(population, d, args.seeds)
            emit({"what": "skhier", "population": population, "N": args.n, **sk})
        best = None
        if not args.skip_peers:
            params = [p for p in args.peers if population != "beta" or p == "c"]
            for param in params:
                row = _peer(population, d, param, args)
                emit({"what": "numpyro", "population": population, "N": args.n, **row})
                if "min_ess" in row and (
                        best is None
                        or row["ess_per_s_incl_compile"] > best["ess_per_s_incl_compile"]):
                    best = row
        if sk is not None and best is not None:
            ratio = {"what": "ratio", "population": population, "N": args.n,
                     "uptime": uptime(), "skhier_ess_per_s": sk["ess_per_s"],
                     "numpyro_best_param": best["param"],
                     "numpyro_best_ess_per_s_incl_compile": best["ess_per_s_incl_compile"],
                     "ratio": round(sk["ess_per_s"] / best["ess_per_s_incl_compile"], 2),
                     "ratio_vs_compiled_rerun": round(sk["ess_per_s"] / best["ess_per_s"], 2)}
            for k in names:
                ratio[f"{k}_diff_in_sd"] = round(
                    abs(sk[f"{k}_mean"] - best[f"{k}_mean"]) / best[f"{k}_std"], 3)
            emit(ratio)


if __name__ == "__main__":
    main()
