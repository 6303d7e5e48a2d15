"""
The age distribution of a stellar population from per-star age posteriors
===========================================================================

Isochrone fits give each star an age posterior, here sampled under a prior
flat in age between 0 and 13.8 Gyr (the usual interim prior). The age
distribution of the population is then inferred from those samples with
:class:`skhier.PosteriorSamplesPopulation`: a log-normal population of ages
and, for comparison, a smooth histogram. The stars are simulated
(``make_stellar_age_samples``: median age 3 Gyr, 0.3 spread in ln age, age
errors of 0.1–0.3 dex), so the truth is known. The flat-in-age interim prior
drags the posteriors of young stars towards old ages; the histogram of
per-star posterior medians is therefore too broad and skewed, while the
reweighting divides the interim prior out.

Run: ``python examples/plot_stellar_ages.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from skhier import PosteriorSamplesPopulation  # noqa: E402
from skhier.datasets import make_stellar_age_samples  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = make_stellar_age_samples(300, 500, random_state=1)
mu_true, sigma_true = data.params

model = PosteriorSamplesPopulation("lognormal", random_state=0).fit(
    data.X, interim_log_prior=data.interim_log_prior
)
hist = PosteriorSamplesPopulation(
    "histogram", bounds=(0.0, 13.8), n_bins=14, smoothness=0.5, random_state=0
).fit(data.X, interim_log_prior=data.interim_log_prior)

for name, truth in (("mu", mu_true), ("sigma", sigma_true)):
    d = model.posterior_[name]
    print(f"{name:5s} = {np.median(d):.3f} [{np.quantile(d, 0.05):.3f}, "
          f"{np.quantile(d, 0.95):.3f}]  (truth {truth:.3f})")
print(f"median age = {np.exp(np.median(model.posterior_['mu'])):.2f} Gyr (truth 3.00)")

grid = np.linspace(0.02, 13.8, 400)
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
band = model.population_density(grid)
ax.fill_between(grid, band.lower, band.upper, color="C0", alpha=0.3, label="log-normal population, 90 % band")
ax.plot(grid, band.median, color="C0")
hband = hist.population_density(grid)
ax.fill_between(grid, hband.lower, hband.upper, color="C2", alpha=0.25, label="histogram population, 90 %")
ax.hist(np.median(data.X, axis=1), bins=28, range=(0, 13.8), density=True, histtype="step",
        color="C3", lw=1.5, label="histogram of per-star medians")
ax.plot(grid, stats.lognorm.pdf(grid, s=sigma_true, scale=np.exp(mu_true)), "k--", label="truth")
ax.set_xlabel("age [Gyr]")
ax.set_ylabel("population density [1/Gyr]")
ax.legend(fontsize=8)

ax2.plot(data.theta, np.median(data.X, axis=1), ".", color="C3", alpha=0.5,
         label="per-star posterior median")
ax2.plot(data.theta, model.predict(data.X), ".", color="C0", label="posterior mean under the population")
ax2.plot([0, 13.8], [0, 13.8], "k:", lw=0.8)
ax2.set_xscale("log")
ax2.set_yscale("log")
ax2.set_xlabel("true age [Gyr]")
ax2.set_ylabel("estimated age [Gyr]")
ax2.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(outdir, "stellar_ages.png"), dpi=110)
print(f"figure written to {os.path.abspath(outdir)}")
