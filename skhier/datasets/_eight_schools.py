"""The "eight schools" SAT coaching experiments (Rubin 1981; BDA3 Table 5.2)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

# Estimated treatment effects y_j and their standard errors sigma_j of
# coaching programmes for the SAT-V in eight high schools, typed from
# Gelman, Carlin, Stern, Dunson, Vehtari & Rubin, Bayesian Data Analysis,
# 3rd ed. (2013), Table 5.2 (rounded to integers there) and from Rubin, D. B.
# (1981), "Estimation in parallel randomized experiments", Journal of
# Educational Statistics 6, 377-401, Table 2 (two decimals).
_SCHOOLS = ("A", "B", "C", "D", "E", "F", "G", "H")
_Y_BOOK = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
_SIGMA_BOOK = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
_Y_RUBIN = (28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16)
_SIGMA_RUBIN = (14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6)

_DESCR = """\
Eight schools (Rubin 1981)
==========================

Estimated effects of special coaching programmes on SAT-V scores in eight
high schools, each from a separate randomised experiment, with the standard
error of each estimate. The classic example of a normal hierarchical model:
theta_j ~ N(mu, tau^2), y_j ~ N(theta_j, sigma_j^2) with sigma_j known.

Columns: school (A-H), y (estimated effect, SAT points), sigma (its standard
error).

Sources: D. B. Rubin (1981), "Estimation in parallel randomized
experiments", Journal of Educational Statistics 6, 377-401, Table 2
(``version="rubin1981"``, two decimals); A. Gelman et al. (2013), Bayesian
Data Analysis, 3rd ed., Table 5.2 (``version="bda3"``, the rounded values
used throughout the book and its software examples). Values typed from the
published tables.
"""


def load_eight_schools(*, version: str = "bda3", as_frame: bool = False) -> Bunch:
    """Load the eight schools data (Rubin 1981; Gelman et al. BDA3 Table 5.2).

    Parameters
    ----------
    version : {"bda3", "rubin1981"}, default="bda3"
        The rounded values of BDA3 Table 5.2, or Rubin's (1981) two-decimal
        values.
    as_frame : bool, default=False
        Also return the table as a pandas DataFrame in ``frame``.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (8, 1) estimated effects; ``X_err`` (8, 1) standard errors
        (the ``X_err`` argument of :class:`~skhier.PopulationModel`); ``y``
        and ``sigma`` (8,) the same as flat arrays; ``schools`` (8,) names
        A-H; ``frame``; ``DESCR``.

    Examples
    --------
    >>> from skhier.datasets import load_eight_schools
    >>> data = load_eight_schools()
    >>> data.X.shape, float(data.y[0]), float(data.sigma[0])
    ((8, 1), 28.0, 15.0)
    """
    if version == "bda3":
        y, sigma = _Y_BOOK, _SIGMA_BOOK
    elif version == "rubin1981":
        y, sigma = _Y_RUBIN, _SIGMA_RUBIN
    else:
        raise ValueError(f"version must be 'bda3' or 'rubin1981', got {version!r}.")
    y = np.array(y, dtype=float)
    sigma = np.array(sigma, dtype=float)
    frame = None
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame({"school": list(_SCHOOLS), "y": y, "sigma": sigma})
    return Bunch(
        X=y[:, None].copy(),
        X_err=sigma[:, None].copy(),
        y=y,
        sigma=sigma,
        schools=np.array(_SCHOOLS),
        frame=frame,
        DESCR=_DESCR,
    )
