"""Demo of PopulationModel for the command line (``python -m skhier demo``)."""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["demo_population"]


def _fmt(draws, digits=3):
    lo, med, hi = np.quantile(draws, [0.16, 0.5, 0.84])
    return f"{med:.{digits}g} +{hi - med:.2g} -{med - lo:.2g}"


def demo_population(outdir: str, print_fn=print) -> str:
    """Fit the eight schools (Rubin 1981) with a normal population; return the figure path.

    Prints the population mean and scale with 68 % intervals and each
    school's measured and shrunk effect, and draws the measurements, the
    shrunk estimates, the posterior of the population scale and the posterior
    population density (:func:`skhier.plotting.plot_population_density`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import PopulationModel
    from .datasets import load_eight_schools

    os.makedirs(outdir, exist_ok=True)
    data = load_eight_schools()
    t0 = time.perf_counter()
    model = PopulationModel(random_state=0).fit(data.X, X_err=data.X_err)
    elapsed = time.perf_counter() - t0
    post = model.posterior_
    theta = model.sample_posterior(2000, random_state=0)["theta"]
    print_fn("PopulationModel on the eight schools (Rubin 1981; BDA3 Table 5.2)")
    print_fn(f"  fit in {elapsed:.2f} s: {model.n_draws_} draws, "
             f"min ESS {min(model.n_effective_.values()):.0f}, "
             f"converged={model.converged_}")
    print_fn("  priors: " + ", ".join(f"{k} ~ {v!r}" for k, v in model.priors_.items()))
    print_fn("  (median and 68% interval)")
    print_fn(f"  population mean  mu  = {_fmt(post['mu'])}")
    print_fn(f"  population scale tau = {_fmt(post['tau'])}")
    print_fn("  school  y_j  sigma_j   posterior effect theta_j")
    for j, name in enumerate(data.schools):
        print_fn(f"  {name:>6} {data.y[j]:4.0f} {data.sigma[j]:6.0f}     {_fmt(theta[:, j])}")

    from .plotting import plot_population_density

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4))
    order = np.arange(len(data.y))
    ax0.errorbar(data.y, order + 0.15, xerr=data.sigma, fmt="o", color="0.5", label="measured y_j ± σ_j")
    lo, med, hi = np.quantile(theta, [0.16, 0.5, 0.84], axis=0)
    ax0.errorbar(med, order - 0.15, xerr=[med - lo, hi - med], fmt="s", color="C0",
                 label="posterior θ_j (68 %)")
    ax0.axvline(np.median(post["mu"]), color="C1", lw=1, label="median μ")
    ax0.set_yticks(order, data.schools)
    ax0.set_xlabel("coaching effect (SAT points)")
    ax0.legend(fontsize=7, loc="lower left")
    ax0.set_title("Shrinkage of the eight schools")
    ax1.hist(post["tau"], bins=60, density=True, color="C0", alpha=0.7)
    ax1.set_xlabel("population scale τ")
    ax1.set_ylabel("posterior density")
    ax1.set_title("Between-school scale")
    plot_population_density(model, data.X, ax=ax2)
    ax2.set_xlabel("true coaching effect θ (SAT points)")
    ax2.set_title("Population of effects")
    fig.tight_layout()
    path = os.path.join(outdir, "population_eight_schools.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
