"""
Checking and comparing models: posterior predictive checks and LOO
==================================================================

The 20 points of Hogg, Bovy & Lang (2010), Table 1, include a few
outliers. Two models of them: a line with intrinsic scatter only, and the
same line mixed with a broad outlier background. A posterior predictive
check replicates the data from each fitted model (with the points' own
y errors) and compares a statistic of the replicates with that of the real
data. The statistic here measures the far tail of the residuals about a
robust line: the scatter-only line cannot produce the outliers' tail
(p-value below 1/500), the mixture can. Leave-one-out
cross-validation (``az.compare``, when ArviZ is installed) ranks the two
models the same way.

Run: ``python examples/plot_model_checking.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import siegelslopes  # noqa: E402

from skhier import RobustLineMixture  # noqa: E402
from skhier.datasets import load_hogg2010  # noqa: E402
from skhier.plotting import plot_posterior_predictive  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = load_hogg2010()
models = {
    "scatter only": RobustLineMixture(outliers=False, random_state=0),
    "scatter + outliers": RobustLineMixture(random_state=0),
}
for model in models.values():
    model.fit(data.X, data.y, y_err=data.y_err)


def tail_statistic(y):
    """Largest |residual| over the median |residual| about a robust line
    (Siegel's repeated medians) fitted to each data set: large for data
    with a few far outliers, about 3-4 for Gaussian scatter."""
    out = []
    for yy in np.atleast_2d(y):
        slope, intercept = siegelslopes(yy, data.X[:, 0])
        r = np.abs(yy - slope * data.X[:, 0] - intercept)
        out.append(r.max() / np.median(r))
    return np.array(out)


fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    plot_posterior_predictive(model, n_replicates=100, bins=20, ax=ax, random_state=0)
    reps = model.sample_posterior_predictive(500, random_state=1)["y"]
    p = np.mean(tail_statistic(reps) >= tail_statistic(data.y)[0])
    print(f"{name:>20}: predictive p-value of the tail statistic = {p:.3f}")
    ax.set_title(f"{name}\np-value of the tail statistic = {p:.3f}")
axes[0].set_xlabel("y")
axes[1].set_xlabel("y")
fig.tight_layout()
fig.savefig(os.path.join(outdir, "model_checking.png"), dpi=120)

try:
    import arviz as az
except ImportError:
    print("ArviZ is not installed: skipping az.compare")
else:
    table = az.compare({name: m.to_inference_data() for name, m in models.items()})
    print(table)
