"""
Exoplanet periods from a transit survey: correcting for what it could detect
============================================================================

A transit survey sees a planet only if its orbit is close to edge-on
(probability ~ P^(-2/3)) and if enough transits fall in the observing run
to beat the noise; long-period planets are under-represented among the
detections. Fitting the period distribution to the detected planets alone
returns the distribution of *detections*.

:class:`skhier.PopulationModel` with ``selection=`` divides each planet's
likelihood by the detected fraction of the population (Mandel, Farr & Gair
2019). The data are simulated (``make_transit_periods``): 3000 planets with
log-normal periods (median 10 d, sigma 1 in ln P), of which the survey
detects about a quarter. The left panel shows the detected periods, the
detection probability and three fitted populations: without the selection,
with the known detection probability, and with an injection-recovery set of
the same survey; the right panel the posterior of the median period.

Run: ``python examples/plot_selection_effects.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import PopulationModel  # noqa: E402
from skhier.datasets import make_transit_periods, transit_detection_probability  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

d = make_transit_periods(3000, n_injections=60_000, random_state=0)
fits = {
    "no selection": PopulationModel("lognormal", random_state=0),
    "detection probability": PopulationModel("lognormal", selection=d.selection, random_state=0),
    "injections": PopulationModel("lognormal", selection=d.injections, random_state=0),
}
for name, est in fits.items():
    est.fit(d.X, X_err=d.X_err)
    mu = est.posterior_["mu"]
    print(f"{name:22s} median period {np.exp(mu.mean()):6.2f} d "
          f"(+- {np.exp(mu.mean()) * mu.std():.2f}); sigma {est.population_params_['sigma']:.2f}"
          f"   [truth {np.exp(d.params[0]):.2f} d, {d.params[1]:.2f}]")

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
grid = np.geomspace(0.5, 500, 300)
ax.hist(d.X[:, 0], bins=np.geomspace(0.5, 500, 40), density=True, color="0.8",
        label=f"detected ({d.X.shape[0]} of 3000)")
truth = np.exp(-0.5 * ((np.log(grid) - d.params[0]) / d.params[1]) ** 2) / (
    grid * d.params[1] * np.sqrt(2 * np.pi))
ax.plot(grid, truth, "k--", label="true population")
colors = {"no selection": "C3", "detection probability": "C0", "injections": "C2"}
for name, est in fits.items():
    band = est.population_density(grid)
    ax.plot(grid, band.median, color=colors[name], label=name)
ax.set_xscale("log")
ax.set_xlabel("orbital period [days]")
ax.set_ylabel("density")
ax3 = ax.twinx()
ax3.plot(grid, transit_detection_probability(grid), color="0.4", lw=1, ls=":")
ax3.set_ylabel("detection probability (dotted)")
ax.legend(fontsize=8, loc="upper right")
for name, est in fits.items():
    ax2.hist(np.exp(est.posterior_["mu"]), bins=40, density=True, histtype="step",
             color=colors[name], label=name)
ax2.axvline(np.exp(d.params[0]), color="k", ls="--", label="truth")
ax2.set_xlabel("median period exp(mu) [days]")
ax2.set_ylabel("posterior density")
ax2.legend(fontsize=8)
fig.tight_layout()
path = os.path.join(outdir, "selection_effects.png")
fig.savefig(path, dpi=110)
print("figure written to", path)
