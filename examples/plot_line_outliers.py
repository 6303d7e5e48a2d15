"""
Fitting a line to data with outliers (Hogg, Bovy & Lang 2010)
==============================================================

The 20 points of Hogg et al. (2010), Table 1, contain a few obvious
outliers. :class:`skhier.RobustLineMixture` fits the line together with a
broad "outlier" background (their eq. 17) and returns each point's posterior
probability of being an outlier. This script draws the fit with its
credible band and the points coloured by that probability, and a corner plot
of the posterior.

Run: ``python examples/plot_line_outliers.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")

from skhier import RobustLineMixture  # noqa: E402
from skhier.datasets import load_hogg2010  # noqa: E402
from skhier.plotting import plot_corner, plot_line_fit  # noqa: E402

outdir = sys.argv[1] if len(sys.argv) > 1 else "skhier_output"
os.makedirs(outdir, exist_ok=True)

data = load_hogg2010()
model = RobustLineMixture(random_state=0).fit(data.X, data.y, y_err=data.y_err)

print(f"slope     = {model.coef_[0]:.3f}")
print(f"intercept = {model.intercept_:.1f}")
print(f"P_b       = {model.outlier_fraction_:.3f}")

fig = plot_line_fit(model, data.X, data.y, y_err=data.y_err, labels=data.ids)
fig.axes[0].set_title("Line + outlier mixture on Hogg et al. (2010) Table 1")
fig.savefig(os.path.join(outdir, "line_outliers.png"), dpi=120)

fig = plot_corner(model, ["coef", "intercept", "scatter", "outlier_fraction"])
fig.savefig(os.path.join(outdir, "line_outliers_corner.png"), dpi=100)
print(f"figures written to {os.path.abspath(outdir)}")
