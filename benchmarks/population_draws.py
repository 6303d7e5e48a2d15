"""Time of PopulationModel's per-object outputs after the fit.

For each population ("normal", "lognormal", "beta"), with and without the
outlier (background) component, and each number of objects, this simulates
noisy measurements (the settings of ``benchmarks/population.py``; with
outliers, 5 % of the objects from a broad background), fits
:class:`skhier.PopulationModel` with its default sampler and prints the wall
time of

- ``fit``;
- ``sample_posterior(n_draws)`` (per-object true values drawn given each
  population draw): the first call and a repeated call;
- the per-object summaries: ``theta_mean_`` (posterior mean true values),
  ``membership_proba_`` (with outliers), ``predict`` on the training data
  (a fresh set-up of the per-object integrals) and ``score_samples``.

Only timings of one run on a possibly busy machine: compare rows measured
in the same run.

``--baseline N`` then times, for the log-normal and Beta populations at N
objects, the latent draws given the same 100 population draws with the
previous algorithm (``baseline_draws``: 1 024 cells per object placed on
every call, piecewise-constant density, as in skhier up to 2026-12-04)
against the current one, one after the other in this run, and prints the
ratio.

Usage: python benchmarks/population_draws.py [--n 1000 10000 100000]
       [--populations normal lognormal beta] [--n-draws 100] [--no-outliers]
       [--baseline 10000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

SETTINGS = {
    "normal": dict(params=(0.0, 1.0), err=(0.5, 1.5),
                   priors={"mu": ("normal", 0.0, 10.0), "tau": ("halfcauchy", 1.0)}),
    "lognormal": dict(params=(1.0, 0.5), err=(0.1, 0.5),
                      priors={"mu": ("normal", 0.0, 5.0), "sigma": ("halfcauchy", 1.0)}),
    "beta": dict(params=(0.3, 5.0), err=(0.03, 0.1),
                 priors={"mean": ("uniform", 0.0, 1.0),
                         "concentration": ("lognormal", np.log(10.0), 1.5)}),
}
BACKGROUND = {"normal": (0.0, 10.0), "lognormal": (3.0, 5.0), "beta": (0.5, 1.0)}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_one(est, d, n_draws, outliers):
    """Wall times (s) of the fit and of each per-object output, in order."""
    t = {"fit": timed(lambda: est.fit(d.X, X_err=d.X_err))}
    t["draws 1st"] = timed(lambda: est.sample_posterior(n_draws, random_state=1))
    t["draws 2nd"] = timed(lambda: est.sample_posterior(n_draws, random_state=2))
    t["theta_mean_"] = timed(lambda: est.theta_mean_)
    t["membership"] = timed(lambda: est.membership_proba_) if outliers else np.nan
    t["predict"] = timed(lambda: est.predict(d.X, X_err=d.X_err))
    t["score_samp"] = timed(lambda: est.score_samples(d.X, X_err=d.X_err))
    return t


def baseline_draws(marginal, params, rng, n_cells=1024):
    """The previous latent sampler of ``_BoundedMarginal`` (all objects noisy):
    cell edges solved on every call, the cell chosen from a piecewise-constant
    density, a uniform point within it; boundary layers from the exact
    log-likelihood."""
    from skhier._math import categorical, log_normal_pdf

    m, fam = marginal, marginal.family
    xs, es = m.xs, m.es
    k, n = params.shape[0], xs.size
    frac = np.linspace(0.0, 1.0, n_cells + 1)
    edges = m._solve_v(m.sa[:, None] + (m.sb - m.sa)[:, None] * frac, m.va, m.vb, es)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    with np.errstate(divide="ignore"):
        log_cell = (log_normal_pdf(xs[:, None], fam.from_latent(mids)[0], es[:, None] ** 2)
                    + np.log(np.diff(edges, axis=1)))
    feats = fam.latent_features(mids)
    obj = np.arange(n)[None, :]
    v = np.empty((k, n))
    step = max(1, 2_000_000 // (n * n_cells))
    for start in range(0, k, step):
        rows = slice(start, min(start + step, k))
        with np.errstate(all="ignore"):
            lf = fam.latent_logpdf_features(tuple(f[None] for f in feats), params[rows])
            lf = lf + log_cell[None]
        lf = np.where(np.isfinite(lf), lf, -np.inf)
        j = categorical(np.exp(lf - lf.max(axis=-1, keepdims=True)), rng)
        left, right = edges[obj, j], edges[obj, j + 1]
        v[rows] = left + (right - left) * rng.uniform(size=left.shape)
    m.loglik(params)  # the layers' probabilities needed the exact log-likelihood
    return fam.from_latent(v)[0]


def time_draws(est):
    """Times of the previous sampler, the current one's first call (cells
    placed) and its second call, for 100 stored population draws."""
    params = est.family_.constrain(est._draws_u()[:100, :2])
    marginal = est.model_.marginal
    return (timed(lambda: baseline_draws(marginal, params, np.random.default_rng(0))),
            timed(lambda: marginal.sample(params, np.random.default_rng(0))),
            timed(lambda: marginal.sample(params, np.random.default_rng(1))))


def compare_with_baseline(n, seed):
    from skhier import PopulationModel
    from skhier.datasets import make_population

    print(f"\nlatent draws for 100 population draws at {n} objects: previous vs current")
    for population in ("lognormal", "beta"):
        cfg = SETTINGS[population]
        d = make_population(n, distribution=population, params=cfg["params"], err=cfg["err"],
                            random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = PopulationModel(population, priors=cfg["priors"], random_state=seed)
            est.fit(d.X, X_err=d.X_err)
        t_old, t_first, t_again = time_draws(est)
        print(f"{population:>10}: previous {t_old:6.2f} s, current {t_first:5.2f} s "
              f"(cells placed) then {t_again:5.2f} s; ratio {t_old / t_first:5.1f} / "
              f"{t_old / t_again:5.1f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", dest="sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--populations", nargs="+", default=["normal", "lognormal", "beta"])
    parser.add_argument("--n-draws", type=int, default=100)
    parser.add_argument("--no-outliers", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", type=int, default=0, metavar="N")
    args = parser.parse_args()
    from skhier import PopulationModel
    from skhier.datasets import make_population

    cols = ["fit", "draws 1st", "draws 2nd", "theta_mean_", "membership", "predict",
            "score_samp"]
    header = f"{'population':>10} {'outl':>5} {'N':>7} {'sampler':>10} | " + " ".join(
        f"{c:>11}" for c in cols)
    print(f"seconds; sample_posterior({args.n_draws}) with per-object true values")
    print(header)
    print("-" * len(header), flush=True)
    for population in args.populations:
        cfg = SETTINGS[population]
        for outliers in [False] if args.no_outliers else [False, True]:
            for n in args.sizes:
                mb, sb = BACKGROUND[population]
                d = make_population(n, distribution=population, params=cfg["params"],
                                    err=cfg["err"], outlier_fraction=0.05 if outliers else 0.0,
                                    outlier_mean=mb, outlier_std=sb, random_state=args.seed)
                est = PopulationModel(population, priors=cfg["priors"], outliers=outliers,
                                      random_state=args.seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time_one(est, d, args.n_draws, outliers)
                print(f"{population:>10} {str(outliers):>5} {n:>7} {est.sampler_:>10} | "
                      + " ".join(f"{t[c]:11.2f}" for c in cols), flush=True)
    if args.baseline:
        compare_with_baseline(args.baseline, args.seed)


if __name__ == "__main__":
    main()
