"""skhier's distance fit against numpyro's NUTS (and PyMC) in one run.

Data and peers: the star-cluster benchmark of ``cluster_common.py`` (regime
A: 135 pc, depth 5 pc, parallax errors 0.1 mas ≈ 1.4 %; regime B: 2 kpc,
depth 30 pc, errors 0.2 mas ≈ 40 %, negative parallaxes), with the peers'
priors mu_r ~ U(1, 10000) pc, sigma_r ~ HalfNormal(50) pc, run by the peer
scripts ``cluster_numpyro.py`` / ``cluster_pymc.py`` (found with
``--bench-dir``, default ``../shared/bench``) in subprocesses.

For each regime this prints, measured one after the other in the same run:

- **skhier**: ``--seeds`` independent fits (``random_state`` = seed) of
  ``HierarchicalDistanceEstimator`` with the same priors; the time per fit
  (from ``fit`` to its return; per-star medians are computed on first
  access of ``distance_``, timed separately); the sampler used; ESS from
  the spread of the posterior means across seeds,
  ``ESS = sd² / var_seeds(mean)``, the smaller over (mu_r, sigma_r) (a
  noisy estimate: with S seeds its relative sd is about sqrt(2 / (S - 1)));
  after quadrature, also the quadrature's error estimate in posterior sd
  (the moments have no Monte Carlo error; the stored draws do).
- **numpyro** NUTS, centred and non-centred (``--peers``: ``c`` and ``nc``
  with ``r_i`` started at ``1000 / parallax``, clipped to [mu0/2, 2 mu0];
  ``nc-mu`` non-centred with ``r_i`` started at mu0, the peer script's
  default; 2 chains, 1000 + 1000 iterations): ESS/s with the first run's
  wall time, JIT compilation included (the peer script also reports a
  second, compiled run). The ratio is taken against the best of them.
- **PyMC** NUTS (centred, started at 1000 / parallax) when asked, capped at
  ``--pymc-timeout`` seconds.
- the ratio skhier ESS/s / best numpyro ESS/s, and whether skhier's
  posterior means of mu_r and sigma_r are within 0.5 posterior sd of the
  best numpyro run's.

Finally one skhier fit of ``--big`` stars (regime A) is timed.

Usage: python benchmarks/speed_numpyro.py [--regimes A B] [--n 10000]
       [--seeds 16] [--peers c nc nc-mu] [--pymc] [--pymc-timeout 300]
       [--big 100000] [--bench-dir ../shared/bench] [--json out.jsonl]
Needs ``pip install skhier[bench]`` (numpyro, jax, PyMC, ArviZ) for the peers.
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


def _peer(bench_dir, script, args, timeout):
    """Run a peer script; return its JSON record or a dict with ``note``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.jsonl")
        env = dict(os.environ, CLUSTER_RESULTS=out)
        t0 = time.perf_counter()
        try:
            subprocess.run([sys.executable, script, *args], cwd=bench_dir, env=env,
                           timeout=timeout, capture_output=True, check=True)
        except subprocess.TimeoutExpired:
            return {"note": f"no result in {timeout:.0f} s"}
        except subprocess.CalledProcessError as exc:
            return {"note": "failed: " + exc.stderr.decode()[-300:]}
        row = json.loads(open(out).read().splitlines()[-1])
        row["process_s"] = round(time.perf_counter() - t0, 2)
        return row


def _skhier(w, s, seeds):
    from skhier import HierarchicalDistanceEstimator

    rows = []
    for seed in range(seeds):
        est = HierarchicalDistanceEstimator(distance_dispersion_prior=("half-normal", 50.0),
                                            random_state=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(w[:, None], X_err=s)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        _ = est.distance_
        t_med = time.perf_counter() - t0
        p = est.posterior_
        rows.append(dict(
            fit_s=t_fit, median_s=t_med, sampler=est.sampler_,
            mu=(p["mean_distance"].mean(), p["mean_distance"].std()),
            sig=(p["distance_dispersion"].mean(), p["distance_dispersion"].std()),
            quad_err=(max(est.quadrature_error_.values())
                      if getattr(est, "quadrature_error_", None) else None),
            claimed_ess=min(est.n_effective_.values()),
        ))
    mu = np.array([r["mu"] for r in rows])
    sig = np.array([r["sig"] for r in rows])
    ess = min(mu[:, 1].mean() ** 2 / mu[:, 0].var(ddof=1),
              sig[:, 1].mean() ** 2 / sig[:, 0].var(ddof=1))
    t = float(np.mean([r["fit_s"] for r in rows]))
    return dict(
        fit_s=round(t, 2), fit_s_max=round(max(r["fit_s"] for r in rows), 2),
        median_s=round(float(np.mean([r["median_s"] for r in rows])), 2),
        samplers=sorted({r["sampler"] for r in rows}),
        mu_mean=round(float(mu[:, 0].mean()), 3), mu_std=round(float(mu[:, 1].mean()), 3),
        sig_mean=round(float(sig[:, 0].mean()), 3), sig_std=round(float(sig[:, 1].mean()), 3),
        ess_spread=round(float(ess), 1), ess_per_s=round(float(ess) / t, 1),
        claimed_ess=round(float(np.mean([r["claimed_ess"] for r in rows])), 1),
        quad_err=max((r["quad_err"] for r in rows if r["quad_err"] is not None), default=None),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", nargs="+", default=["A", "B"])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--peers", nargs="*", default=["c", "nc", "nc-mu"])
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--pymc", action="store_true")
    ap.add_argument("--pymc-timeout", type=float, default=300.0)
    ap.add_argument("--big", type=int, default=100000)
    ap.add_argument("--bench-dir", default=os.path.join("..", "shared", "bench"))
    ap.add_argument("--json", default=None, help="append one JSON line per result")
    args = ap.parse_args(argv)
    bench_dir = os.path.abspath(args.bench_dir)
    sys.path.insert(0, bench_dir)
    from cluster_common import make_data

    def emit(row):
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")

    emit({"what": "machine", "uptime": subprocess.run(["uptime"], capture_output=True,
                                                      text=True).stdout.strip(),
          "cpus": os.cpu_count()})
    for regime in args.regimes:
        w, s, _ = make_data(regime, args.n)
        sk = _skhier(w, s, args.seeds)
        emit({"what": "skhier", "regime": regime, "N": args.n, **sk})
        best = None
        for peer in args.peers:
            param = peer.split("-")[0]
            extra = [] if peer.endswith("-mu") else ["data"]
            row = _peer(bench_dir, "cluster_numpyro.py", [regime, str(args.n), param, "2", *extra],
                        args.peer_timeout)
            if "min_ess" in row:
                row["ess_per_s_incl_compile"] = round(row["min_ess"] / row["wall_s"], 2)
                if best is None or row["ess_per_s_incl_compile"] > best["ess_per_s_incl_compile"]:
                    best = row
            emit({"what": "numpyro", "regime": regime, "peer": peer, **row})
        if args.pymc:
            row = _peer(bench_dir, "cluster_pymc.py", [regime, str(args.n), "c"],
                        args.pymc_timeout)
            emit({"what": "pymc", "regime": regime, **row})
        if best is not None:
            emit({
                "what": "ratio", "regime": regime, "uptime": subprocess.run(
                    ["uptime"], capture_output=True, text=True).stdout.strip(),
                "skhier_ess_per_s": sk["ess_per_s"],
                "numpyro_best_ess_per_s_incl_compile": best["ess_per_s_incl_compile"],
                "numpyro_best_param": best["param"],
                "ratio": round(sk["ess_per_s"] / best["ess_per_s_incl_compile"], 2),
                "ratio_vs_compiled_rerun": round(sk["ess_per_s"] / best["ess_per_s"], 2),
                "mu_diff_in_sd": round(abs(sk["mu_mean"] - best["mu_mean"]) / best["mu_std"], 3),
                "sig_diff_in_sd": round(abs(sk["sig_mean"] - best["sig_mean"]) / best["sig_std"],
                                        3),
            })
    if args.big:
        from skhier import HierarchicalDistanceEstimator

        w, s, _ = make_data("A", args.big)
        est = HierarchicalDistanceEstimator(distance_dispersion_prior=("half-normal", 50.0),
                                            random_state=0)
        t0 = time.perf_counter()
        est.fit(w[:, None], X_err=s)
        emit({"what": "skhier_big", "regime": "A", "N": args.big,
              "fit_s": round(time.perf_counter() - t0, 2), "sampler": est.sampler_,
              "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
              "mu": round(est.mean_distance_, 3), "sig": round(est.distance_dispersion_, 3)})


if __name__ == "__main__":
    main()
