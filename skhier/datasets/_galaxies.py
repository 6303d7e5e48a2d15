"""Velocities of 82 galaxies in the Corona Borealis region (Roeder 1990)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_galaxy_velocities"]

# Recession velocities in km/s, in increasing order, as tabulated by Roeder
# (1990, Table 1) from the redshift survey of Postman, Huchra & Geller (1986).
# The 78th value is 26960 km/s: a widely copied typo (e.g. R's MASS::galaxies,
# whose help page documents it) gives 26690.
_VELOCITIES_KMS = np.array(
    [
        9172, 9350, 9483, 9558, 9775, 10227, 10406, 16084, 16170, 18419,
        18552, 18600, 18927, 19052, 19070, 19330, 19343, 19349, 19440, 19473,
        19529, 19541, 19547, 19663, 19846, 19856, 19863, 19914, 19918, 19973,
        19989, 20166, 20175, 20179, 20196, 20215, 20221, 20415, 20629, 20795,
        20821, 20846, 20875, 20986, 21137, 21492, 21701, 21814, 21921, 21960,
        22185, 22209, 22242, 22249, 22314, 22374, 22495, 22746, 22747, 22888,
        22914, 23206, 23241, 23263, 23484, 23538, 23542, 23666, 23706, 23711,
        24129, 24285, 24289, 24366, 24717, 24990, 25633, 26960, 26995, 32065,
        32789, 34279,
    ],
    dtype=np.float64,
)

_DESCR = """\
Galaxy velocities (Roeder 1990)
===============================

Recession velocities of 82 galaxies from six well-separated conic sections
of an unfilled redshift survey of the Corona Borealis region. Clumps in the
velocity distribution are evidence for voids and superclusters; the data are
the standard test case for inferring the number of components of a Gaussian
mixture (Escobar & West 1995; Richardson & Green 1997; Grün,
Malsiner-Walli & Frühwirth-Schnatter 2022).

Units: thousands of km/s (the usual scaling of this data set).

Values: Roeder (1990), Table 1, from the survey of Postman, Huchra & Geller
(1986). The 78th value (in increasing order) is 26.960; some copies (e.g.
R's MASS::galaxies, which notes the error) carry the typo 26.690. An 83rd
measurement of Postman et al. (5.607) is omitted, as in Roeder (1990).

References
----------
K. Roeder (1990), "Density estimation with confidence sets exemplified by
superclusters and voids in the galaxies", J. Am. Stat. Assoc. 85, 617-624.
M. Postman, J. P. Huchra & M. J. Geller (1986), "Probes of large-scale
structure in the Corona Borealis region", Astron. J. 92, 1238-1247.
S. Richardson & P. J. Green (1997), "On Bayesian analysis of mixtures with an
unknown number of components", J. R. Stat. Soc. B 59, 731-792.
"""


def load_galaxy_velocities() -> Bunch:
    """Load the 82 galaxy velocities of Roeder (1990).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` (82, 1) velocities in thousands of km/s (increasing order),
        ``velocity_kms`` (82,) the same in km/s, ``DESCR`` (provenance).

    Examples
    --------
    >>> from skhier.datasets import load_galaxy_velocities
    >>> data = load_galaxy_velocities()
    >>> data.X.shape, float(data.X[77, 0])
    ((82, 1), 26.96)
    """
    v = _VELOCITIES_KMS.copy()
    return Bunch(X=(v / 1000.0).reshape(-1, 1), velocity_kms=v, DESCR=_DESCR)
