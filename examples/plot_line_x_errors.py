"""
Errors in x, attenuation and upper limits
=========================================

With errors in x comparable to the spread of the true x, a line fitted to
the measured x is flatter than the truth: ordinary least squares and the
projected likelihood of Hogg, Bovy & Lang (2010) (``x_model="projected"``)
both return this attenuated slope, with a small, confident posterior sd.
:class:`skhier.RobustLineMixture` by default models the true x as a
Gaussian population fitted with the line (``x_model="population"``, chosen
when ``X_err`` is given), which removes the bias and returns each point's
deconvolved x (``x_true_``).

The second panel replaces the faintest 30 % of the y values by upper limits
at the detection threshold (``y_limit``): the censored fit stays on the
truth, while dropping the limits or reading them as detections flattens
the line.

Run: ``python examples/plot_line_x_errors.py [output_folder]``
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skhier import RobustLineMixture  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

rng = np.random.default_rng(1)
n = 300
x_true = rng.normal(size=n)
X = (x_true + 0.8 * rng.normal(size=n))[:, None]
y = 2.0 * x_true + 1.0 + 0.5 * rng.normal(size=n) + 0.3 * rng.normal(size=n)
errors = {"y_err": np.full(n, 0.3), "X_err": np.full((n, 1), 0.8)}

kw = dict(outliers=False, random_state=0)
pop = RobustLineMixture(**kw).fit(X, y, **errors)
proj = RobustLineMixture(x_model="projected", **kw).fit(X, y, **errors)
for name, m in [("population (default)", pop), ("projected", proj)]:
    s = m.posterior_["coef"][:, 0]
    print(f"{name:22s} slope = {np.median(s):.2f} ± {s.std():.2f}   (truth 2)")

# Upper limits: the faintest 30 % of y are reported as "below the threshold".
thr = np.quantile(y, 0.3)
limit = (y < thr).astype(int)
y_obs = np.where(limit == 1, thr, y)
kw["sampler"] = "importance"  # quick: reweighted draws, checked by their Pareto k
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # effective-size warnings for the scatter
    cens = RobustLineMixture(**kw).fit(X, y_obs, y_limit=limit, **errors)
    det = RobustLineMixture(**kw).fit(X, y_obs, **errors)
    keep = limit == 0
    drop = RobustLineMixture(**kw).fit(X[keep], y_obs[keep], y_err=errors["y_err"][keep],
                                       X_err=errors["X_err"][keep])
for name, m in [("limits (y_limit)", cens), ("limits as detections", det),
                ("limits dropped", drop)]:
    s = m.posterior_["coef"][:, 0]
    print(f"{name:22s} slope = {np.median(s):.2f} ± {s.std():.2f}   (truth 2)")

grid = np.linspace(-3.5, 3.5, 50)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
ax = axes[0]
ax.scatter(X[:, 0], y, s=8, c="0.6", label="measured x")
ax.scatter(pop.x_true_[:, 0], y, s=8, c="C0", label="deconvolved x (x_true_)")
ax.plot(grid, 2 * grid + 1, "k--", label="truth")
ax.plot(grid, pop.predict(grid[:, None]), "C0", lw=2, label="population model")
ax.plot(grid, proj.predict(grid[:, None]), "C3", lw=2, label="projected likelihood")
ax.set(xlabel="x", ylabel="y", title="Errors in x: attenuation and its correction")
ax.legend(fontsize=8)

ax = axes[1]
ax.scatter(X[keep, 0], y_obs[keep], s=8, c="0.5", label="detections")
ax.scatter(X[~keep, 0], y_obs[~keep], s=14, marker="v", c="C1", label="upper limits")
ax.plot(grid, 2 * grid + 1, "k--", label="truth")
for m, c, name in [(cens, "C0", "with y_limit"), (det, "C3", "limits as detections"),
                   (drop, "C2", "limits dropped")]:
    ax.plot(grid, m.predict(grid[:, None]), c, lw=2, label=name)
ax.set(xlabel="x", title="30 % upper limits")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(outdir, "line_x_errors.png"), dpi=110)
