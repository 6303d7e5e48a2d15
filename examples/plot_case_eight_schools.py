"""
Case study: the eight schools and their shrinkage
===================================================

The coaching effects of eight schools (Rubin 1981), each with its standard
error, analysed with a normal population as in Gelman et al., *Bayesian
Data Analysis* (3rd ed.), section 5.5: school effects ``theta_j ~ N(mu,
tau²)`` and the noninformative prior ``p(mu, tau) ∝ 1`` (here uniform on
-100 < mu < 100 and 0 < tau < 200). :class:`skhier.PopulationModel`
integrates the school effects out, samples ``(mu, tau)`` and draws the
effects afterwards.

Left: the shrinkage plot — each school's measured effect (top row) joined
to its posterior mean (bottom row): the noisy effects are pulled towards
the common mean, most strongly the least precise ones. Right: the marginal
posterior of ``tau`` (compare BDA3 figure 5.5) and the conditional
posterior means ``E[theta_j | tau, y]`` as functions of ``tau`` (figure 5.6).

Run: ``python examples/plot_case_eight_schools.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import PopulationModel  # noqa: E402
from skhier.datasets import load_eight_schools  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)
data = load_eight_schools()
y, s = data.y, data.sigma

model = PopulationModel(
    priors={"mu": ("uniform", -100.0, 100.0), "tau": ("uniform", 0.0, 200.0)}, random_state=0
).fit(data.X, X_err=data.X_err)
post = model.posterior_
theta = model.sample_posterior(4000, random_state=0)["theta"]
print(f"mu : mean {post['mu'].mean():.1f}, sd {post['mu'].std():.1f}")
print(f"tau: median {np.median(post['tau']):.1f}, 95 % upper {np.quantile(post['tau'], 0.95):.1f}")
print("school   y   sigma   posterior mean   90 % interval")
for j, name in enumerate(data.schools):
    lo, hi = np.quantile(theta[:, j], [0.05, 0.95])
    print(f"  {name}    {y[j]:4.0f}  {s[j]:4.0f}   {model.theta_mean_[j]:10.1f}   "
          f"[{lo:5.1f}, {hi:5.1f}]")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5))
for j, name in enumerate(data.schools):
    ax0.plot([y[j], model.theta_mean_[j]], [1, 0], "-o", color=f"C{j}")
    ax0.annotate(f"{name} (σ={s[j]:.0f})", (y[j], 1), xytext=(0, 6 + 11 * (j % 3)),
                 textcoords="offset points",
                 ha="center", fontsize=8)
ax0.axvline(post["mu"].mean(), color="k", ls=":", lw=1, label="posterior mean of μ")
ax0.set_yticks([0, 1], ["posterior mean", "measured"])
ax0.set_xlabel("coaching effect")
ax0.set_ylim(-0.2, 1.4)
ax0.legend(fontsize=8)
ax0.set_title("Shrinkage of the eight schools")

ax1.hist(post["tau"], bins=np.linspace(0, 40, 41), density=True, color="0.8",
         label="p(τ | y)")
ax1.set_xlabel("τ")
ax1.set_ylabel("posterior density")
ax2 = ax1.twinx()
tau = np.linspace(0, 40, 81)
# E[mu | tau, y] is the precision-weighted mean (BDA3 eq. 5.20, flat prior on mu).
prec = 1.0 / (s[None, :] ** 2 + tau[:, None] ** 2)
mu_hat = (prec * y).sum(axis=1) / prec.sum(axis=1)
for j in range(len(y)):
    w = tau**2 / (tau**2 + s[j] ** 2)
    ax2.plot(tau, mu_hat + w * (y[j] - mu_hat), color=f"C{j}", lw=1)
ax2.set_ylabel("E[θ_j | τ, y]")
ax1.set_title("Population sd τ and conditional effects")
fig.tight_layout()
path = os.path.join(outdir, "case_eight_schools.png")
fig.savefig(path, dpi=120)
print(f"figure written to {os.path.abspath(path)}")
