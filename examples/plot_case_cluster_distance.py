"""
Case study: the distance and depth of the Pleiades from Gaia parallaxes
========================================================================

:class:`skhier.HierarchicalDistanceEstimator` on a real cluster catalogue:
by default the 164 Pleiades members of Gaia DR1/TGAS used in the tutorials
accompanying Luri et al. (2018). All stars are treated as members (the
catalogue is a membership list). Two fits: the parallax zero-point fixed at
0, the zero-point fitted with a Gaussian prior (``--zp-prior MEAN STD``,
default 0 ± 0.1 mas), and the zero-point fixed at 0 with a field component
that absorbs stars whose parallaxes put them far from the cluster. The figure shows the joint posterior of the mean
distance and depth for both, and every star's posterior median distance
against the naive ``1000 / parallax``.

Any CSV with ``parallax`` and ``parallax_error`` columns (mas) works, e.g.
your own Gaia archive query of a cluster's members::

    python examples/plot_case_cluster_distance.py my_cluster.csv --zp-prior -0.029 0.01

(the second is the Gaia DR2 quasar zero-point; use ``--zp-prior 0 0.1`` for
DR1). See ``docs/case_studies.rst``.

Run: ``python examples/plot_case_cluster_distance.py [CSV] [--zp-prior MEAN STD] [--out FOLDER]``
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import HierarchicalDistanceEstimator  # noqa: E402

# sphinx-gallery runs the examples from their own folder, without __file__
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
ROOT = os.path.dirname(HERE)
DEFAULT = os.path.join(ROOT, "..", "shared", "data", "pleiades_tgas_gdr1set03.csv")

parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n")[0])
parser.add_argument("csv", nargs="?", default=DEFAULT,
                    help="CSV with parallax and parallax_error columns (mas)")
parser.add_argument("--zp-prior", nargs=2, type=float, default=(0.0, 0.1),
                    metavar=("MEAN", "STD"), help="Gaussian prior on the zero-point (mas)")
parser.add_argument("--out", default="skhier_output", help="output folder")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

table = np.genfromtxt(args.csv, delimiter=",", names=True)
plx = np.asarray(table["parallax"], float)[:, None]
err = np.asarray(table["parallax_error"], float)[:, None]
print(f"{len(plx)} stars from {os.path.basename(args.csv)}; "
      f"median parallax {np.median(plx):.3f} mas, median error {np.median(err):.3f} mas")

fits = {
    "zero-point 0": HierarchicalDistanceEstimator(random_state=0),
    "zero-point fitted": HierarchicalDistanceEstimator(
        parallax_zero_point=tuple(args.zp_prior), random_state=0),
    # Stars far from the cluster in parallax inflate a normal depth; a field
    # component (exponentially decreasing space density) absorbs them.
    "zero-point 0, field": HierarchicalDistanceEstimator(field="edsd", random_state=0),
}
for name, est in fits.items():
    est.fit(plx, X_err=err)
    line = [name.ljust(20)]
    for p in ("mean_distance", "distance_dispersion", "zero_point", "cluster_fraction"):
        if p in est.posterior_:
            q16, q50, q84 = np.quantile(est.posterior_[p], [0.16, 0.5, 0.84])
            line.append(f"{p} {q50:.3f} (-{q50 - q16:.3f} +{q84 - q50:.3f})")
    print("  ".join(line))

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5))
for (name, est), c in zip(fits.items(), ["C0", "C1", "C2"], strict=True):
    ax0.scatter(est.posterior_["mean_distance"], est.posterior_["distance_dispersion"], s=2,
                alpha=0.3, color=c, label=name, rasterized=True)
ax0.set_xlabel("mean distance μ_r (pc)")
ax0.set_ylabel("depth σ_r (pc)")
ax0.legend(markerscale=5)
ax0.set_title("Cluster posterior")

est = fits["zero-point 0, field"]
r = est.sample_posterior(400, random_state=0)["r"]
lo, hi = np.quantile(r, [0.16, 0.84], axis=0)
inv = 1000.0 / plx[:, 0]
ax1.errorbar(inv, est.distance_, yerr=[est.distance_ - lo, hi - est.distance_], fmt="none",
             lw=0.8, alpha=0.5, ecolor="0.5")
sc = ax1.scatter(inv, est.distance_, c=est.membership_proba_[:, 0], cmap="viridis", vmin=0,
                 vmax=1, s=12, zorder=3)
fig.colorbar(sc, ax=ax1, label="P(member)")
span = [min(inv.min(), lo.min()), max(inv.max(), hi.max())]
ax1.plot(span, span, "k:", lw=1, label="distance = 1000 / parallax")
ax1.axhline(est.mean_distance_, color="C3", lw=1, label="cluster mean distance")
ax1.set_xlabel("1000 / parallax (pc)")
ax1.set_ylabel("posterior distance, median and 68 % (pc)")
ax1.legend(fontsize=8)
ax1.set_title("Per-star distances (fit with field): shrinkage")
fig.tight_layout()
path = os.path.join(args.out, "case_cluster_distance.png")
fig.savefig(path, dpi=120)
print(f"figure written to {os.path.abspath(path)}")
