"""Spatially correlated parallax systematics.

Gaia parallaxes of stars close on the sky share part of their errors: the
systematic offsets ``delta_i`` of two stars separated by an angle ``theta``
have covariance ``V(theta)``. Lindegren et al. (2021, A&A 649, A2, Eq. 24)
fit ``V(theta) = 142 µas² exp(-theta / 16°)`` to the EDR3 quasar
parallaxes; this is the default here (the form Kalkayotl, Olivares et al.
2020, uses for EDR3). A user's own covariance is any callable of the
separation in degrees returning mas².

Exact integration over ``delta ~ N(0, V)`` would couple every star. Instead
the covariance is represented by a few shared Gaussian modes plus an
independent part,

    delta_i = sum_j B_ij a_j + eps_i,  a_j ~ N(0, 1),  eps_i ~ N(0, d_i),

so that, given the mode amplitudes ``a``, the stars are independent again:
the amplitudes are a few extra parameters of the collapsed likelihood, and
``d_i`` is added to each star's parallax variance. The modes are the
leading eigenvectors of the Nyström approximation of ``V`` on up to
``N_INDUCING`` inducing positions (all stars when there are fewer), and as
many are kept as are needed to reproduce the variance of the
inverse-variance weighted mean parallax, ``w' V w``, within
``MODE_TOL`` (at most ``MAX_MODES``). Because ``V`` is smooth on the
scale of a cluster, one or two modes usually carry almost all of it (the
large-scale part is nearly one shared offset). The relative error actually
reached is reported (``systematics_error_`` of the estimator) and tested
against the exact covariance.

Without sky positions, ``parallax_systematic = s`` (mas) is one shared
offset ``delta ~ N(0, s²)`` for every star (a systematic floor).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LINDEGREN2021_AMPLITUDE",
    "LINDEGREN2021_SCALE",
    "SystematicModes",
    "angular_separation",
    "check_per_row",
    "check_positions",
    "lindegren2021_covariance",
]

#: V(0) of Lindegren et al. (2021, Eq. 24) in mas² (142 µas²).
LINDEGREN2021_AMPLITUDE = 142e-6
#: Its angular scale in degrees.
LINDEGREN2021_SCALE = 16.0
#: Largest number of inducing positions of the Nyström representation.
N_INDUCING = 200
#: Relative accuracy asked of the weighted-mean variance, and the most modes.
MODE_TOL = 0.01
MAX_MODES = 8
# Rows of the exact (n x n) covariance built at once for the accuracy check.
_CHECK_CELLS = 4_000_000


def lindegren2021_covariance(theta):
    """Angular covariance of Gaia EDR3 parallax systematics (mas²).

    ``V(theta) = 142 µas² exp(-theta / 16°)`` (Lindegren et al. 2021,
    A&A 649, A2, Eq. 24), ``theta`` in degrees.

    Examples
    --------
    >>> from skhier._systematics import lindegren2021_covariance
    >>> float(lindegren2021_covariance(0.0))
    0.000142
    """
    theta = np.asarray(theta, dtype=np.float64)
    return LINDEGREN2021_AMPLITUDE * np.exp(-theta / LINDEGREN2021_SCALE)


def angular_separation(ra1, dec1, ra2, dec2):
    """Great-circle separation in degrees (haversine; broadcasts)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64))
                            for a in (ra1, dec1, ra2, dec2))
    h = (np.sin(0.5 * (dec2 - dec1)) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin(0.5 * (ra2 - ra1)) ** 2)
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def check_positions(ra, dec, n_samples):
    """Validated (ra, dec) arrays in degrees, or (None, None).

    Raises ``ValueError`` naming the argument for a wrong shape, a
    non-finite value, ``ra`` outside [0, 360] or ``dec`` outside [-90, 90],
    or when only one of the two is given.
    """
    if ra is None and dec is None:
        return None, None
    if ra is None or dec is None:
        raise ValueError(
            "ra and dec (sky positions in degrees) must be given together; got only "
            f"{'ra' if dec is None else 'dec'}."
        )
    out = []
    for name, value, (lo, hi) in (("ra", ra, (0.0, 360.0)), ("dec", dec, (-90.0, 90.0))):
        arr = check_per_row(value, name, n_samples, "one position in degrees")
        bad = (arr < lo) | (arr > hi)
        if np.any(bad):
            raise ValueError(
                f"{name} must lie in [{lo:g}, {hi:g}] degrees; {int(bad.sum())} values are "
                f"outside (e.g. {arr[bad][0]:g}). Positions in radians? Convert with np.degrees."
            )
        out.append(arr)
    return out[0], out[1]


def check_per_row(value, name, n_samples, what):
    """A finite float array of shape (n_samples,) (a column vector is accepted),
    else a ``ValueError`` naming ``name`` and ``what`` each row holds."""
    arr = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n_samples,):
        raise ValueError(
            f"{name} must have shape ({n_samples},) ({what} per row of X), got shape "
            f"{arr.shape}."
        )
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric ({what}).") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {int(np.sum(~np.isfinite(arr)))} "
                         "non-finite values.")
    return arr


def _farthest_points(ra, dec, m, start):
    """Indices of ``m`` positions spread over the sample (farthest-point order)."""
    idx = [start]
    dmin = angular_separation(ra, dec, ra[start], dec[start])
    for _ in range(m - 1):
        j = int(np.argmax(dmin))
        if dmin[j] <= 0:
            break
        idx.append(j)
        dmin = np.minimum(dmin, angular_separation(ra, dec, ra[j], dec[j]))
    return np.asarray(idx)


def _call_covariance(covariance, theta):
    val = np.asarray(covariance(theta), dtype=np.float64)
    if val.shape != np.shape(theta) or not np.all(np.isfinite(val)):
        raise ValueError(
            "parallax_covariance must return finite values (mas²) of the shape of its "
            f"argument (separations in degrees); got shape {val.shape}."
        )
    return val


class SystematicModes:
    """Low-rank-plus-diagonal representation of an angular parallax covariance.

    Parameters
    ----------
    ra, dec : ndarray of shape (n,)
        Positions of the training stars (degrees).
    weights : ndarray of shape (n,)
        Weights of the stars in the mean parallax whose systematic variance
        sets the number of modes (inverse parallax variances).
    covariance : callable
        ``V(theta)``, separation in degrees -> covariance in mas².

    Attributes
    ----------
    basis : ndarray of shape (n, m)
        ``B``: the training stars' offsets per unit mode amplitude (mas).
    residual : ndarray of shape (n,)
        ``d_i = V(0) - sum_j B_ij²``: variance left to each star alone.
    error : float
        Relative error of ``w' (B B' + diag(d)) w`` against the exact
        ``w' V w`` (computed exactly up to 20 000 stars, else against the
        full Nyström approximation).
    """

    def __init__(self, ra, dec, weights, covariance):
        self.covariance = covariance
        n = len(ra)
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
        start = int(np.argmin(angular_separation(ra, dec, np.sum(w * ra), np.sum(w * dec))))
        z = _farthest_points(ra, dec, min(n, N_INDUCING), start)
        self.ra_z, self.dec_z = ra[z], dec[z]
        kzz = _call_covariance(covariance, angular_separation(
            self.ra_z[:, None], self.dec_z[:, None], self.ra_z[None, :], self.dec_z[None, :]))
        lam, q = np.linalg.eigh(0.5 * (kzz + kzz.T))
        keep = lam > 1e-10 * max(lam.max(), 1e-300)
        # K_zz^{-1/2} on its numerically positive part.
        self._whiten = q[:, keep] / np.sqrt(lam[keep])
        phi = self._features_full(ra, dec)
        u, sv, vt = np.linalg.svd(phi, full_matrices=False)
        self.v0 = float(_call_covariance(covariance, np.zeros(1))[0])
        exact = self._exact_weighted_variance(ra, dec, w, phi)
        proj = (w @ u) * sv  # w' B_j for every candidate mode
        chosen = 0
        self.error = np.inf
        for m in range(0, min(MAX_MODES, len(sv)) + 1):
            b2 = (u[:, :m] * sv[:m]) ** 2
            resid = np.maximum(self.v0 - b2.sum(axis=1), 0.0)
            approx = np.sum(proj[:m] ** 2) + np.sum(w**2 * resid)
            err = abs(approx - exact) / exact
            chosen, self.error = m, err
            if err <= MODE_TOL:
                break
        self._rot = vt[:chosen].T  # features -> modes
        self.basis = u[:, :chosen] * sv[:chosen]
        self.residual = np.maximum(self.v0 - np.sum(self.basis**2, axis=1), 0.0)
        self.exact_variance = exact

    @property
    def n_modes(self) -> int:
        return self.basis.shape[1]

    def _features_full(self, ra, dec):
        knz = _call_covariance(self.covariance, angular_separation(
            ra[:, None], dec[:, None], self.ra_z[None, :], self.dec_z[None, :]))
        return knz @ self._whiten

    def _exact_weighted_variance(self, ra, dec, w, phi):
        n = len(ra)
        if n > 20_000:
            nys = w @ phi
            return float(nys @ nys + np.sum(w**2 * np.maximum(
                self.v0 - np.sum(phi**2, axis=1), 0.0)))
        total = 0.0
        step = max(1, _CHECK_CELLS // n)
        for s in range(0, n, step):
            sl = slice(s, min(s + step, n))
            v = _call_covariance(self.covariance, angular_separation(
                ra[sl, None], dec[sl, None], ra[None, :], dec[None, :]))
            total += float(w[sl] @ v @ w)
        return total

    def at(self, ra, dec):
        """(basis, residual) at other positions, by the Nyström extension."""
        b = self._features_full(ra, dec) @ self._rot
        return b, np.maximum(self.v0 - np.sum(b**2, axis=1), 0.0)


class SharedOffset:
    """One offset ``N(0, s²)`` shared by every star (no positions needed)."""

    def __init__(self, n, scale):
        self.scale = float(scale)
        self.basis = np.full((n, 1), self.scale)
        self.residual = np.zeros(n)
        self.error = 0.0

    @property
    def n_modes(self) -> int:
        return 1

    def at(self, ra, dec, n=None):
        n = len(ra) if n is None else n
        return np.full((n, 1), self.scale), np.zeros(n)
