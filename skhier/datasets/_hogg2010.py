"""Hogg, Bovy & Lang (2010) Table 1: 20 points for fitting a straight line."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

# Columns: ID, x, y, sigma_y, sigma_x, rho_xy, typed from Table 1 of
# Hogg, D. W., Bovy, J. & Lang, D. (2010), "Data analysis recipes: Fitting a
# model to data", arXiv:1008.4686 (v1, August 2010), page 6.
_TABLE1 = np.array(
    [
        [1, 201, 592, 61, 9, -0.84],
        [2, 244, 401, 25, 4, 0.31],
        [3, 47, 583, 38, 11, 0.64],
        [4, 287, 402, 15, 7, -0.27],
        [5, 203, 495, 21, 5, -0.33],
        [6, 58, 173, 15, 9, 0.67],
        [7, 210, 479, 27, 4, -0.02],
        [8, 202, 504, 14, 4, -0.05],
        [9, 198, 510, 30, 11, -0.84],
        [10, 158, 416, 16, 7, -0.69],
        [11, 165, 393, 14, 5, 0.30],
        [12, 201, 442, 25, 5, -0.46],
        [13, 157, 317, 52, 5, -0.03],
        [14, 131, 311, 16, 6, 0.50],
        [15, 166, 400, 34, 6, 0.73],
        [16, 160, 337, 31, 5, -0.52],
        [17, 186, 423, 42, 9, 0.90],
        [18, 125, 334, 26, 8, 0.40],
        [19, 218, 533, 16, 6, -0.78],
        [20, 146, 344, 22, 5, -0.56],
    ]
)

_DESCR = """\
Hogg, Bovy & Lang (2010), Table 1
=================================

Twenty (x, y) points with Gaussian uncertainties sigma_x, sigma_y and the
correlation rho_xy between each point's x and y errors, constructed by the
authors as a test set for straight-line fitting. Points 1-4 are the outliers
of their exercises; the exercises fit points 5-20 (no outlier model) or all
20 (with the mixture model of their eq. 17).

Source: D. W. Hogg, J. Bovy & D. Lang, "Data analysis recipes: Fitting a
model to data", arXiv:1008.4686 (2010), Table 1. Values typed from the
published table.
"""


def load_hogg2010(*, as_frame: bool = False) -> Bunch:
    """Load the 20-point straight-line test set of Hogg et al. (2010).

    Parameters
    ----------
    as_frame : bool, default=False
        Also return the table as a pandas DataFrame in ``frame`` (needs
        pandas).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (20, 1) x values; ``y`` (20,); ``y_err`` (20,) = sigma_y;
        ``X_err`` (20, 1) = sigma_x; ``rho_xy`` (20,); ``Xy_cov`` (20, 1) =
        rho_xy * sigma_x * sigma_y (the ``Xy_cov`` argument of
        :class:`~skhier.RobustLineMixture`); ``ids`` (20,) the table's ID
        column (1-based); ``frame`` (DataFrame or None); ``DESCR``.

    Examples
    --------
    >>> from skhier.datasets import load_hogg2010
    >>> data = load_hogg2010()
    >>> data.X.shape, float(data.y[0])
    ((20, 1), 592.0)
    """
    t = _TABLE1
    sigma_x, sigma_y, rho = t[:, 4], t[:, 3], t[:, 5]
    frame = None
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(
            t, columns=["id", "x", "y", "sigma_y", "sigma_x", "rho_xy"]
        ).astype({"id": int})
    return Bunch(
        X=t[:, 1:2].copy(),
        y=t[:, 2].copy(),
        y_err=sigma_y.copy(),
        X_err=sigma_x[:, None].copy(),
        rho_xy=rho.copy(),
        Xy_cov=(rho * sigma_x * sigma_y)[:, None],
        ids=t[:, 0].astype(int),
        frame=frame,
        DESCR=_DESCR,
    )
