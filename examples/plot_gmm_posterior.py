"""
How many clumps in the galaxy velocities? A fully Bayesian mixture
==================================================================

The recession velocities of 82 galaxies in the Corona Borealis region
(Roeder 1990) are the classic test of mixture modelling: how many groups
(superclusters) are there, and what is the velocity density?

:class:`skhier.BayesianGMM` samples the whole posterior of a Gaussian
mixture with at most ``n_components=10`` components. Its sparse Dirichlet
prior on the weights (``weight_concentration=0.01``) lets components that the
data do not need empty out, so the number of *occupied* components has a
posterior of its own (``n_components_posterior_``).

The figure shows the posterior median density with a 90 % credible band,
each draw being a full mixture, and the posterior of the number of occupied
components.

Run: ``python examples/plot_gmm_posterior.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import BayesianGMM  # noqa: E402
from skhier.datasets import load_galaxy_velocities  # noqa: E402

X = load_galaxy_velocities().X  # thousands of km/s
gmm = BayesianGMM(random_state=0)  # defaults: 10 components at most, 4 chains, run until R-hat < 1.05
gmm.fit(X)

print("P(K+ = k):", {k: round(float(p), 3) for k, p in enumerate(gmm.n_components_posterior_) if p > 0.005})
for k in np.flatnonzero(gmm.weights_ > 0.02):
    print(f"component {k}: weight {gmm.weights_[k]:.3f}, mean {gmm.means_[k, 0]:.2f}, "
          f"sd {np.sqrt(gmm.covariances_[k, 0, 0]):.2f} (posterior means), "
          f"R-hat of mean {gmm.rhat_['means'][k, 0]:.3f}")

# The density of each posterior draw on a grid; quantiles give the band.
grid = np.linspace(5, 40, 500)
draws = gmm.sample_posterior(1000, random_state=0)
w, mu = draws["weights"], draws["means"][..., 0]
sd = np.sqrt(draws["covariances"][..., 0, 0])
z = (grid[None, None, :] - mu[..., None]) / sd[..., None]
density = np.sum(w[..., None] * np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * sd[..., None]), axis=1)
lo, med, hi = np.quantile(density, [0.05, 0.5, 0.95], axis=0)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
ax0.hist(X[:, 0], bins=45, density=True, color="0.82", label="82 galaxies")
ax0.plot(X[:, 0], np.full(len(X), -0.004), "|", color="k", ms=8)
ax0.fill_between(grid, lo, hi, color="C0", alpha=0.3, label="90 % credible band")
ax0.plot(grid, med, color="C0", lw=2, label="posterior median density")
ax0.set_xlabel("velocity (1000 km/s)")
ax0.set_ylabel("density")
ax0.legend(frameon=False)
ks = np.arange(len(gmm.n_components_posterior_))
ax1.bar(ks, gmm.n_components_posterior_, color="C0")
ax1.set_xlim(0.5, ks[-1] + 0.5)
ax1.set_xlabel("number of occupied components K+")
ax1.set_ylabel("posterior probability")
fig.suptitle("Galaxy velocities (Roeder 1990): BayesianGMM posterior")
fig.tight_layout()

outdir = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(outdir, exist_ok=True)
path = os.path.join(outdir, "gmm_posterior.png")
fig.savefig(path, dpi=120)
print("wrote", path)
