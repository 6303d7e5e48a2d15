"""Demo of BayesianGMM for the command line (``python -m skhier demo``)."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

__all__ = ["demo_gmm"]


def demo_gmm(outdir: str, print_fn=print) -> str:
    """Fit the galaxy velocities (Roeder 1990); print and plot; return the figure path.

    Prints the posterior of the number of occupied components and, for the
    components that carry weight, their weight, mean and width with 68 %
    intervals; draws the data, the posterior density with its 90 % band and
    the posterior of the number of components
    (:func:`skhier.plotting.plot_gmm_density`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.exceptions import ConvergenceWarning

    from . import BayesianGMM
    from .datasets import load_galaxy_velocities

    os.makedirs(outdir, exist_ok=True)
    X = load_galaxy_velocities().X
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        gmm = BayesianGMM(random_state=0).fit(X)  # defaults: sweeps until R-hat < 1.05
    elapsed = time.perf_counter() - t0
    post = gmm.posterior_
    print_fn("BayesianGMM on the galaxy velocities (Roeder 1990; 82 galaxies, 1000 km/s)")
    print_fn(f"  fit in {elapsed:.2f} s: {gmm.n_chains_} chains x {gmm.n_iter_} Gibbs sweeps, "
             f"{gmm.n_draws_} draws, converged={gmm.converged_}")
    for w in caught:
        print_fn(f"  note: {w.message}")
    print_fn("  posterior of the number of occupied components K+:")
    for k, p in enumerate(gmm.n_components_posterior_):
        if p >= 0.005:
            print_fn(f"    K+ = {k:2d}: {p:5.3f}")
    print_fn("  components (posterior median and 68% interval):")
    print_fn("     weight               mean [1000 km/s]      sd [1000 km/s]")

    def fmt(draws, digits):
        lo, med, hi = np.quantile(draws, [0.16, 0.5, 0.84])
        return f"{med:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    for k in np.flatnonzero(gmm.weights_ >= 0.02):
        sd = np.sqrt(post["covariances"][:, k, 0, 0])
        print_fn(f"    {fmt(post['weights'][:, k], 3):<20} {fmt(post['means'][:, k, 0], 2):<21} "
                 f"{fmt(sd, 2)}")

    from .plotting import plot_gmm_density

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    plot_gmm_density(gmm, X, grid=np.linspace(5, 40, 400), n_draws=500, bins=40, ax=ax0)
    ax0.set_xlabel("velocity (1000 km/s)")
    ks = np.arange(len(gmm.n_components_posterior_))
    ax1.bar(ks, gmm.n_components_posterior_, color="C0")
    ax1.set_xlabel("occupied components K+")
    ax1.set_ylabel("posterior probability")
    ax1.set_xlim(0.5, ks[-1] + 0.5)
    fig.suptitle("BayesianGMM: galaxy velocities (Roeder 1990)")
    fig.tight_layout()
    path = os.path.join(outdir, "gmm_galaxies.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
