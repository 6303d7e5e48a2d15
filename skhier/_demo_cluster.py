"""Demo: distance, depth and membership of a simulated, contaminated cluster.

Called by the command-line demo (``make demo``); kept out of the estimator
module so that model code carries no plotting or printing.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["demo_cluster"]


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import HierarchicalDistanceEstimator
    from .datasets import make_cluster_parallaxes
    from .plotting import plot_cluster_distance

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
    fig = plot_cluster_distance(est, d.X, d.X_err, truth=(d.mean_distance, d.distance_dispersion))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print_fn(f"  figure: {path}")
    return path
