"""
Velocity dispersion of a galaxy cluster with interlopers
=========================================================

The line-of-sight velocities of a cluster's galaxies (from their redshifts,
each with a measurement error) scatter about the systemic velocity with the
cluster's velocity dispersion. Foreground and background galaxies in the
same redshift slice ("interlopers") inflate a naive estimate.
:class:`skhier.PopulationModel` with ``outliers=True`` fits a normal
population (mean ``mu``, dispersion ``tau``) plus a broad background, and
gives each galaxy's posterior membership probability.

The data are simulated (``make_velocity_dispersion``): 60 members with a
dispersion of 600 km/s and 15 interlopers spread over ±8000 km/s. The figure
shows the velocities coloured by membership probability with the fitted
population density, and the posterior of the dispersion with and without the
background component.

Run: ``python examples/plot_velocity_dispersion.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import PopulationModel  # noqa: E402
from skhier.datasets import make_velocity_dispersion  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = make_velocity_dispersion(
    60, 15, dispersion=600.0, interloper_range=8000.0, err=(50.0, 150.0), random_state=1
)
model = PopulationModel(outliers=True, random_state=0).fit(data.X, X_err=data.X_err)
naive = PopulationModel(random_state=0).fit(data.X, X_err=data.X_err)


def summary(draws):
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    return f"{med:.0f} km/s (90% interval {lo:.0f} - {hi:.0f})"


print(f"true dispersion                : {data.dispersion:.0f} km/s")
print(f"dispersion, with background    : {summary(model.posterior_['tau'])}")
print(f"dispersion, no background      : {summary(naive.posterior_['tau'])}")
print(f"interloper fraction            : {model.outlier_fraction_:.2f}")
p_out = model.membership_proba_[:, 1]
print(f"galaxies with P(interloper) > 0.5: {int(np.sum(p_out > 0.5))} "
      f"(true interlopers: {int(data.is_interloper.sum())})")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
v = data.X[:, 0]
ax0.hist(v, bins=40, color="0.85", density=True, label="all velocities")
band = model.population_density(np.linspace(-3000, 3000, 300), level=0.9)
frac = 1 - model.outlier_fraction_
ax0.fill_between(band.grid, frac * band.lower, frac * band.upper, color="C0", alpha=0.3)
ax0.plot(band.grid, frac * band.median, color="C0", label="members: fitted N(μ, τ) (90 %)")
sc = ax0.scatter(v, np.full(v.size, -2e-5), c=p_out, cmap="coolwarm", vmin=0, vmax=1,
                 marker="|", s=200)
ax0.scatter(v[data.is_interloper], np.full(data.is_interloper.sum(), -5e-5), marker="x",
            color="k", s=15, label="true interlopers")
fig.colorbar(sc, ax=ax0, label="P(interloper)")
ax0.set_xlabel("line-of-sight velocity (km/s)")
ax0.set_ylabel("density")
ax0.legend(fontsize=8, loc="upper left")
ax0.set_title("Cluster members and interlopers")

bins = np.linspace(0, max(np.quantile(naive.posterior_["tau"], 0.999), 1000), 80)
ax1.hist(model.posterior_["tau"], bins=bins, density=True, alpha=0.7, label="with background")
ax1.hist(naive.posterior_["tau"], bins=bins, density=True, alpha=0.7, label="no background")
ax1.axvline(data.dispersion, color="k", ls="--", label="truth")
ax1.set_xlabel("velocity dispersion τ (km/s)")
ax1.set_ylabel("posterior density")
ax1.legend(fontsize=8)
ax1.set_title("Dispersion posterior")
fig.tight_layout()
path = os.path.join(outdir, "velocity_dispersion.png")
fig.savefig(path, dpi=120)
print(f"figure written to {os.path.abspath(path)}")
