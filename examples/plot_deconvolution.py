"""
Deconvolving measurement errors in a 2-D Gaussian mixture
=========================================================

When each point is measured with an error comparable to the intrinsic width
of the groups, a mixture fitted to the noisy positions describes the
*convolution* of the groups with the errors: every fitted covariance is
inflated by the typical error covariance. Passing the errors to
:class:`skhier.BayesianGMM` (``X_err`` or ``X_cov``) makes the sampler also
draw each point's true position (extreme deconvolution, Bovy, Hogg & Roweis
2011), so the fitted components describe the error-free distribution.

The data are simulated with :func:`skhier.datasets.make_mixture_with_errors`:
two correlated components, 1 500 points, error standard deviations between
0.7 and 1.3 per coordinate with random correlations. The figure shows the
noisy data with the true 2-sigma ellipses (black), the plain fit (red,
dashed) and the deconvolved fit (blue), and the posterior of one variance in
each fit.

Run: ``python examples/plot_deconvolution.py [output_folder]``
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from skhier import BayesianGMM  # noqa: E402
from skhier.datasets import make_mixture_with_errors  # noqa: E402

data = make_mixture_with_errors(
    1500, weights=(0.6, 0.4), means=((0.0, 0.0), (5.0, 3.0)),
    covariances=(((1.0, 0.5), (0.5, 1.0)), ((0.6, -0.2), (-0.2, 1.2))),
    error_scale=(0.7, 1.3), full_error_cov=True, random_state=5,
)
settings = dict(n_components=2, weight_concentration=1.0, random_state=0)
plain = BayesianGMM(**settings).fit(data.X)
deconv = BayesianGMM(**settings).fit(data.X, X_cov=data.X_cov)


def ellipse(ax, mean, cov, **kw):
    """2-sigma ellipse of a 2-D Gaussian."""
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    w, h = 2 * 2 * np.sqrt(vals[::-1])
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, **kw))


fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 5))
ax0.scatter(*data.X.T, s=3, color="0.6", label="noisy positions")
for k in range(2):
    ellipse(ax0, data.means[k], data.covariances[k], color="k", lw=2,
            label="truth" if k == 0 else None)
    ellipse(ax0, plain.means_[k], plain.covariances_[k], color="C3", ls="--", lw=2,
            label="fit ignoring errors" if k == 0 else None)
    ellipse(ax0, deconv.means_[k], deconv.covariances_[k], color="C0", lw=2,
            label="deconvolved fit" if k == 0 else None)
ax0.set_aspect("equal")
ax0.set_xlabel("x0")
ax0.set_ylabel("x1")
ax0.legend(frameon=False, loc="upper left")

# Posterior of the x0 variance of the component nearest the origin.
for est, color, label in ((plain, "C3", "ignoring errors"), (deconv, "C0", "deconvolved")):
    k = int(np.argmin(np.linalg.norm(est.means_, axis=1)))
    ax1.hist(est.posterior_["covariances"][:, k, 0, 0], bins=50, density=True, color=color,
             alpha=0.6, label=label)
ax1.axvline(data.covariances[0, 0, 0], color="k", lw=2, label="true variance")
ax1.set_xlabel("variance of x0, component at (0, 0)")
ax1.set_ylabel("posterior density")
ax1.legend(frameon=False)
fig.tight_layout()

for name, est in (("ignoring errors", plain), ("deconvolved", deconv)):
    print(name, "covariances (posterior means):\n", np.round(est.covariances_, 2))
print("truth:\n", data.covariances)

outdir = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(outdir, exist_ok=True)
path = os.path.join(outdir, "gmm_deconvolution.png")
fig.savefig(path, dpi=120)
print("wrote", path)
