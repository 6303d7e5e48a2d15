"""
The eccentricity distribution from per-planet posterior samples
=================================================================

Each planet's orbit has been fitted on its own, and what is left is a set of
posterior samples of its eccentricity, drawn under a flat *interim prior*.
Hogg, Myers & Bovy (2010) show how to infer the population from those
samples by reweighting them; :class:`skhier.PosteriorSamplesPopulation`
does that with a Beta population (parameters: mean and concentration) and
with a non-parametric histogram.

The planets are simulated (``make_eccentricity_samples``) from Kipping's
(2013) Beta(0.867, 3.03), so the truth is known. The histogram of the
per-planet posterior means, the naive answer, has far too few nearly
circular orbits: a noisy measurement of e = 0 always has a posterior mean
above 0. The hierarchical answer recovers the population, and shrinks every
planet's posterior towards it.

Run: ``python examples/plot_samples_population.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from skhier import PosteriorSamplesPopulation  # noqa: E402
from skhier.datasets import make_eccentricity_samples  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = make_eccentricity_samples(300, 500, a=0.867, b=3.03, random_state=0)

beta = PosteriorSamplesPopulation("beta", random_state=0).fit(data.X)
hist = PosteriorSamplesPopulation(
    "histogram", bounds=(0.0, 1.0), n_bins=10, smoothness=1.0, random_state=0
).fit(data.X)

a = beta.posterior_["mean"] * beta.posterior_["concentration"]
b = (1 - beta.posterior_["mean"]) * beta.posterior_["concentration"]
print(f"a = {np.median(a):.2f} [{np.quantile(a, 0.05):.2f}, {np.quantile(a, 0.95):.2f}]  (truth 0.867)")
print(f"b = {np.median(b):.2f} [{np.quantile(b, 0.05):.2f}, {np.quantile(b, 0.95):.2f}]  (truth 3.03)")
print(f"fewest effective samples of any planet after reweighting: "
      f"{beta.n_effective_samples_.min():.0f} of {data.X.shape[1]}")

grid = np.linspace(0.005, 0.995, 199)
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
band = beta.population_density(grid)
ax.fill_between(grid, band.lower, band.upper, color="C0", alpha=0.3, label="Beta population, 90 % band")
ax.plot(grid, band.median, color="C0")
hband = hist.population_density(grid)
ax.fill_between(grid, hband.lower, hband.upper, color="C2", alpha=0.25, label="histogram population, 90 %")
ax.hist(data.X.mean(axis=1), bins=20, range=(0, 1), density=True, histtype="step", color="C3",
        lw=1.5, label="histogram of per-planet means")
ax.plot(grid, stats.beta.pdf(grid, 0.867, 3.03), "k--", label="truth: Beta(0.867, 3.03)")
ax.set_xlabel("eccentricity")
ax.set_ylabel("population density")
ax.set_ylim(0, 5)
ax.legend(fontsize=8)

# Four planets: their own posterior samples, and the same samples resampled
# under the inferred population (the "shrunk" posterior); lines: true values.
shrunk = beta.sample_posterior(2000, random_state=0)["theta"]
order = np.argsort(data.e_obs)
for j, i in enumerate(order[[30, 150, 240, 290]]):
    ax2.hist(data.X[i], bins=25, range=(0, 1), density=True, histtype="step", color=f"C{j}", ls=":")
    ax2.hist(shrunk[:, i], bins=25, range=(0, 1), density=True, histtype="step", color=f"C{j}")
    ax2.axvline(data.theta[i], color=f"C{j}", lw=0.8)
ax2.set_xlabel("eccentricity")
ax2.set_title("dotted: planet's own samples; solid: under the population", fontsize=9)
fig.tight_layout()
fig.savefig(os.path.join(outdir, "samples_population_eccentricity.png"), dpi=110)
print(f"figure written to {os.path.abspath(outdir)}")
