"""
The eccentricity distribution of exoplanets from noisy estimates
================================================================

Orbital eccentricities estimated from radial velocities are noisy. The
histogram of the estimates is the population convolved with the errors: it
is wider than the population and smears out the pile-up of nearly circular
orbits; some estimates even fall below 0 or above 1, which is noise, not an
error. (Catalogues that force estimates into [0, 1) turn this into a bias
towards high eccentricities; the model needs the unclipped estimates with
their Gaussian errors.)
:class:`skhier.PopulationModel` with ``distribution="beta"`` deconvolves the
errors and infers the population Beta(a, b) — here 200 planets simulated
from Kipping's (2013) Beta(0.867, 3.03) with errors of 0.02-0.15.

The figure compares the histogram of the noisy estimates, the true
population, and the inferred population with its 90 % band; the second
panel shows the posterior of (a, b).

Run: ``python examples/plot_eccentricity_distribution.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from skhier import PopulationModel  # noqa: E402
from skhier.datasets import make_eccentricities  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = make_eccentricities(200, a=0.867, b=3.03, err=(0.02, 0.15), random_state=0)
model = PopulationModel("beta", random_state=0).fit(data.X, X_err=data.X_err)

post = model.posterior_
for name, truth in [("a", data.a), ("b", data.b), ("mean", data.a / (data.a + data.b))]:
    lo, med, hi = np.quantile(post[name], [0.05, 0.5, 0.95])
    print(f"{name:5s} = {med:.3f}  (90% interval {lo:.3f} - {hi:.3f}; truth {truth:.3f})")
theta_post = model.sample_posterior(1000, random_state=0)["theta"]
print(f"estimates outside [0, 1]: {int(np.sum((data.X < 0) | (data.X > 1)))} of {data.X.size}")
print(f"spread (sd): noisy estimates {data.X.std():.3f}, true values {data.theta.std():.3f}, "
      f"posterior draws of the true values {theta_post.std(axis=1).mean():.3f}")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
ax0.hist(data.X[:, 0], bins=np.linspace(-0.2, 1.1, 40), density=True, color="0.8",
         label="noisy estimates")
grid = np.linspace(0.002, 0.998, 300)
band = model.population_density(grid, level=0.9)
ax0.fill_between(grid, band.lower, band.upper, color="C0", alpha=0.3)
ax0.plot(grid, band.median, color="C0", label="inferred Beta (90 % band)")
ax0.plot(grid, stats.beta.pdf(grid, data.a, data.b), "k--", label="true Beta(0.867, 3.03)")
ax0.set_xlim(-0.2, 1.1)
ax0.set_ylim(0, 4)
ax0.set_xlabel("eccentricity")
ax0.set_ylabel("density")
ax0.legend(fontsize=8)
ax0.set_title("Eccentricity distribution")

ax1.plot(post["a"], post["b"], ",", alpha=0.3, color="C0")
ax1.plot(data.a, data.b, "k*", ms=12, label="truth")
ax1.set_xlabel("a")
ax1.set_ylabel("b")
ax1.legend()
ax1.set_title("Posterior of the Beta parameters")
fig.tight_layout()
path = os.path.join(outdir, "eccentricity_distribution.png")
fig.savefig(path, dpi=120)
print(f"figure written to {os.path.abspath(path)}")
