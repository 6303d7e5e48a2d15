"""Demo: distance, depth and membership of a simulated, contaminated cluster.

Called by the command-line demo (``make demo``); kept out of the estimator
module so that model code carries no plotting or printing.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["demo_cluster", "plot_cluster_fit"]


def plot_cluster_fit(est, X, X_err, *, truth=None, n_draws=300, random_state=0):
    """Figure of a fitted :class:`~skhier.HierarchicalDistanceEstimator`.

    Left: posterior draws of (mean distance, depth). Right: each training
    star's posterior median distance with its 16–84 % interval against the
    naive ``1000 / parallax``, coloured by membership probability.

    Returns the matplotlib figure.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plx = np.asarray(X)[:, 0]
    draws = est.sample_posterior(n_draws, random_state=random_state)
    lo, hi = np.quantile(draws["r"], [0.16, 0.84], axis=0)
    member = est.membership_proba_[:, 0]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax0.plot(est.posterior_["mean_distance"], est.posterior_["distance_dispersion"],
             ".", ms=2, alpha=0.3, color="tab:blue")
    if truth is not None:
        ax0.plot(truth[0], truth[1], "x", color="k", ms=10, label="truth")
        ax0.legend(loc="upper right")
    ax0.set_xlabel(r"mean distance $\mu_r$ [pc]")
    ax0.set_ylabel(r"depth $\sigma_r$ [pc]")
    ax0.set_title("population posterior")
    naive = np.where(plx > 0, 1000.0 / np.where(plx > 0, plx, 1.0), np.nan)
    order = np.argsort(member)
    ax1.errorbar(naive[order], est.distance_[order],
                 yerr=[est.distance_[order] - lo[order], hi[order] - est.distance_[order]],
                 fmt="none", ecolor="0.7", lw=0.6, zorder=1)
    sc = ax1.scatter(naive[order], est.distance_[order], c=member[order], cmap="viridis",
                     vmin=0, vmax=1, s=12, zorder=2)
    fig.colorbar(sc, ax=ax1, label="membership probability")
    ax1.axhline(est.mean_distance_, color="k", lw=0.8, ls="--")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel(r"$1000 / \varpi$ [pc] (positive parallaxes)")
    ax1.set_ylabel("posterior median distance [pc]")
    ax1.set_title("per-star distances (shrinkage)")
    fig.tight_layout()
    return fig


def demo_cluster(outdir=".", print_fn=print) -> str:
    """Fit a simulated cluster with field contamination; print and plot the result.

    150 stars, 75 % members of a cluster at 500 pc with 8 pc depth, field
    stars from an exponentially decreasing space density (L = 1350 pc),
    0.1 mas parallax errors. Prints the cluster distance, depth and member
    fraction (posterior medians and 68 % intervals) against the truth, and
    writes ``cluster_distance.png`` into ``outdir``.

    Returns
    -------
    path : str
        Path of the written figure.
    """
    from . import HierarchicalDistanceEstimator
    from .datasets import make_cluster_parallaxes

    d = make_cluster_parallaxes(
        150, mean_distance=500.0, distance_dispersion=8.0, cluster_fraction=0.75,
        field_length_scale=1350.0, parallax_error=0.1, random_state=7,
    )
    est = HierarchicalDistanceEstimator(
        field="edsd", field_length_scale=1350.0, random_state=0
    ).fit(d.X, X_err=d.X_err)
    print_fn("HierarchicalDistanceEstimator: simulated cluster with field stars")
    print_fn(f"  {len(d.X)} stars, parallax errors 0.1 mas; sampler: {est.sampler_}")
    for label, name, truth, unit in [
        ("distance", "mean_distance", d.mean_distance, "pc"),
        ("depth", "distance_dispersion", d.distance_dispersion, "pc"),
        ("member fraction", "cluster_fraction", d.cluster_fraction, ""),
    ]:
        q16, q50, q84 = np.quantile(est.posterior_[name], [0.16, 0.5, 0.84])
        fmt = ".3f" if name == "cluster_fraction" else ".1f"
        print_fn(
            f"  {label:16s} {q50:{fmt}} -{q50 - q16:{fmt}} +{q84 - q50:{fmt}} {unit:2s}"
            f"  (truth {truth:{fmt}})"
        )
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "cluster_distance.png")
    fig = plot_cluster_fit(est, d.X, d.X_err, truth=(d.mean_distance, d.distance_dispersion))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print_fn(f"  figure: {path}")
    return path
