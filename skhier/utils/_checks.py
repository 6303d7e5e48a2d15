"""Input validation shared by every skhier estimator.

Measurement errors have the same names and meanings everywhere:

``y_err`` : (n,) standard deviations of the target.
``X_err`` : (n, d) standard deviations of the features.
``X_cov`` : (n, d, d) full covariance matrices of the features.
``Xy_cov`` : (n, d) covariances between each point's feature errors and its
target error (regressions only).

A scalar error applies to every measurement. ``None`` always means "no
measurement error". Every check returns a fresh
float64 array, so the caller's arrays are never modified.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = [
    "check_beta_prior",
    "check_errors",
    "check_magnitude",
    "check_finite_array",
    "check_limit",
    "check_limit_length",
    "check_sample_weight",
    "as_float_array",
]


def _to_numpy(value):
    """Convert pandas/array-likes to numpy without copying user data in place."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return value


def as_float_array(value, name: str, *, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Return ``value`` as a new float64 array with the given number of dims.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for the
    wrong number of dimensions or non-finite entries. ``name`` is used in the
    messages so the user knows which argument is wrong.
    """
    value = _to_numpy(value)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} must be real-valued, got complex dtype.")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be numeric, got an array of dtype {arr.dtype}."
            ) from None
    arr = np.array(arr, dtype=np.float64, copy=True)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise ValueError(
            f"{name} must be a {' or '.join(f'{k}-D' for k in ndims)} array, "
            f"got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def check_finite_array(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 copy of ``value`` checked to have exactly ``shape``."""
    arr = as_float_array(value, name, ndim=len(shape))
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} to match the data, "
            f"got {arr.shape}."
        )
    return arr


#: Largest magnitude accepted for data and errors: the models square them
#: (variances, squared residuals), and float64 overflows beyond ~1.8e308.
MAX_MAGNITUDE = 1e152


def check_magnitude(value, name: str) -> None:
    """Refuse data or errors whose squares would overflow float64.

    Examples
    --------
    >>> check_magnitude([1.0, -2e149], "X")
    >>> check_magnitude([1.0, 3e300], "X")
    Traceback (most recent call last):
    ...
    ValueError: X has values up to 3e+300 in magnitude; skhier squares data and errors ...
    """
    arr = np.asarray(value, dtype=float)
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    if top > MAX_MAGNITUDE:
        raise ValueError(
            f"{name} has values up to {top:.3g} in magnitude; skhier squares data and errors "
            f"(variances), which overflows beyond {MAX_MAGNITUDE:.0e}: express {name} (and "
            "its errors) in units where the values are smaller."
        )


def _check_stds(value, name: str, shape, *, allow_zero: bool) -> np.ndarray:
    value = _to_numpy(value)
    if np.ndim(value) == 0 and value is not None:
        # One error for every measurement (``y_err=0.5``).
        value = np.broadcast_to(np.asarray(value), shape)
    arr = check_finite_array(value, name, shape)
    check_magnitude(arr, name)
    if allow_zero:
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative (standard deviations).")
    elif np.any(arr <= 0):
        raise ValueError(
            f"{name} must be strictly positive (standard deviations); "
            f"found {int(np.sum(arr <= 0))} value(s) <= 0."
        )
    return arr


def check_errors(
    n_samples: int,
    n_features: int | None = None,
    *,
    y_err=None,
    X_err=None,
    X_cov=None,
    Xy_cov=None,
    allow_zero: bool = True,
) -> dict[str, np.ndarray | None]:
    """Validate measurement-error arguments against the data's shape.

    Parameters
    ----------
    n_samples : int
        Number of rows in the data.
    n_features : int or None
        Number of feature columns ``d`` (required when any X error is given).
    y_err, X_err, X_cov, Xy_cov : array-like or None
        See the module docstring.
    allow_zero : bool, default=True
        Whether a zero standard deviation (an exact measurement) is allowed.

    Returns
    -------
    errors : dict
        ``{"y_err", "X_cov", "Xy_cov"}``: float64 copies, ``X_err`` folded
        into a diagonal ``X_cov``; entries are ``None`` when not given.

    Raises
    ------
    ValueError
        On wrong shapes, non-finite or negative values, a covariance that is
        not symmetric positive semi-definite, or an ``Xy_cov`` that makes the
        joint (x, y) error covariance indefinite.

    Examples
    --------
    >>> from skhier.utils._checks import check_errors
    >>> err = check_errors(3, 1, y_err=[1.0, 2.0, 1.0], X_err=[[0.1], [0.1], [0.2]])
    >>> err["X_cov"].shape
    (3, 1, 1)
    """
    out: dict[str, np.ndarray | None] = {"y_err": None, "X_cov": None, "Xy_cov": None}
    if y_err is not None:
        out["y_err"] = _check_stds(y_err, "y_err", (n_samples,), allow_zero=allow_zero)
    if X_err is not None and X_cov is not None:
        raise ValueError("Give at most one of X_err and X_cov, not both.")
    d = n_features
    if X_err is not None:
        x_err = _to_numpy(X_err)
        if np.ndim(x_err) == 1 and d == 1:
            x_err = np.reshape(x_err, (-1, 1))
        x_err = _check_stds(x_err, "X_err", (n_samples, d), allow_zero=allow_zero)
        cov = np.zeros((n_samples, d, d))
        idx = np.arange(d)
        cov[:, idx, idx] = x_err**2
        out["X_cov"] = cov
    if X_cov is not None:
        cov = check_finite_array(X_cov, "X_cov", (n_samples, d, d))
        check_magnitude(np.sqrt(np.abs(np.diagonal(cov, axis1=1, axis2=2))), "X_cov's standard deviations")
        if not np.allclose(cov, np.swapaxes(cov, 1, 2), rtol=1e-10, atol=0):
            raise ValueError("X_cov must contain symmetric (d, d) matrices.")
        eig_min = np.linalg.eigvalsh(cov).min(axis=1)
        scale = np.maximum(np.abs(np.diagonal(cov, axis1=1, axis2=2)).max(axis=1), 1e-300)
        bad = eig_min < -1e-10 * scale
        if allow_zero is False:
            bad |= eig_min <= 0
        if np.any(bad):
            raise ValueError(
                "X_cov must contain positive semi-definite covariance matrices; "
                f"row(s) {np.flatnonzero(bad)[:5].tolist()} are not."
            )
        out["X_cov"] = cov
    if Xy_cov is not None:
        xy = _to_numpy(Xy_cov)
        if np.ndim(xy) == 1 and d == 1:
            xy = np.reshape(xy, (-1, 1))
        xy = check_finite_array(xy, "Xy_cov", (n_samples, d))
        if out["X_cov"] is None or out["y_err"] is None:
            raise ValueError("Xy_cov needs both y_err and X_err (or X_cov).")
        joint = np.zeros((n_samples, d + 1, d + 1))
        joint[:, :d, :d] = out["X_cov"]
        joint[:, :d, d] = xy
        joint[:, d, :d] = xy
        joint[:, d, d] = out["y_err"] ** 2
        eig_min = np.linalg.eigvalsh(joint).min(axis=1)
        scale = np.maximum(np.abs(np.diagonal(joint, axis1=1, axis2=2)).max(axis=1), 1e-300)
        bad = eig_min < -1e-10 * scale
        if np.any(bad):
            raise ValueError(
                "Xy_cov makes the joint (x, y) error covariance indefinite "
                f"(|correlation| > 1) in row(s) {np.flatnonzero(bad)[:5].tolist()}."
            )
        out["Xy_cov"] = xy
    return out


def check_beta_prior(prior, name: str) -> tuple[float, float]:
    """Validate a Beta(a, b) prior: ``(a, b)``, ``("beta", a, b)`` or a ``BetaPrior``.

    The pair ``(a, b)`` of positive numbers is the short form; the tuple
    with the kind first and a prior object are skhier's one prior syntax
    (``skhier._distributions.parse_prior``).

    Parameters
    ----------
    prior : tuple, list or BetaPrior
        The shape parameters ``(a, b)``.
    name : str
        The argument's name, for the message.

    Returns
    -------
    (a, b) : tuple of float

    Raises
    ------
    ValueError
        Unless ``prior`` is a Beta prior with two finite positive parameters.

    Examples
    --------
    >>> check_beta_prior((1, 4), "outlier_fraction_prior")
    (1.0, 4.0)
    >>> check_beta_prior(("beta", 2, 8), "outlier_fraction_prior")
    (2.0, 8.0)
    """
    spec = prior
    if hasattr(spec, "_spec"):  # a prior object (duck-typed: utils imports nothing of skhier)
        spec = spec._spec()
    if isinstance(spec, (tuple, list)) and len(spec) == 3 and isinstance(spec[0], str):
        spec = tuple(spec[1:]) if spec[0].lower() == "beta" else None
    ok = (
        isinstance(spec, (tuple, list))
        and len(spec) == 2
        and all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0
                for v in spec)
    )
    if not ok:
        raise ValueError(
            f"{name} must be a Beta prior: a tuple (a, b) of two positive numbers, "
            f"('beta', a, b) or a BetaPrior, got {prior!r}."
        )
    return float(spec[0]), float(spec[1])


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate ``fit``'s ``sample_weight`` against the number of rows.

    A row's weight multiplies its log-likelihood, so a weight of 2 counts the
    row twice and a weight of 0 drops it.

    Parameters
    ----------
    sample_weight : None, float or array-like of shape (n_samples,)
        None means every weight is 1; a scalar applies to every row.
    n_samples : int
        Number of rows in the data.

    Returns
    -------
    weights : ndarray of shape (n_samples,) or None
        A float64 copy (None when ``sample_weight`` is None).

    Raises
    ------
    TypeError
        For non-numeric weights.
    ValueError
        For the wrong shape, NaN, infinite or negative weights, or weights
        that are all zero.

    Examples
    --------
    >>> from skhier.utils._checks import check_sample_weight
    >>> check_sample_weight([1, 2, 0], 3)
    array([1., 2., 0.])
    >>> check_sample_weight([1.0, -1.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: sample_weight must be non-negative; found 1 negative weight(s).
    """
    if sample_weight is None:
        return None
    value = np.asarray(_to_numpy(sample_weight))
    if value.ndim == 0:
        value = np.broadcast_to(np.asarray(value), (n_samples,))
    w = check_finite_array(value, "sample_weight", (n_samples,))
    if np.any(w < 0):
        raise ValueError(
            f"sample_weight must be non-negative; found {int(np.sum(w < 0))} negative weight(s)."
        )
    if not np.any(w > 0):
        raise ValueError("sample_weight must have at least one positive weight; all are zero.")
    return w


def check_limit(y_limit, y):
    """Validate censoring marks ``y_limit`` -> int8 array or None.

    Called before y itself is validated, so that a NaN in y gets a message
    about limits. 1 marks an upper limit (the measured value lies below y),
    -1 a lower limit, 0 a detection; booleans mean upper limits.

    Examples
    --------
    >>> check_limit([True, False], [1.0, 2.0]).tolist()
    [1, 0]
    """
    y_arr = np.asarray(y) if y is not None else None
    if y_limit is None:
        if y_arr is not None and y_arr.dtype.kind in "fc" and not np.all(np.isfinite(y_arr)):
            raise ValueError(
                "y contains NaN or infinity. A limit is given by its value in y "
                "and marked in y_limit (1 upper, -1 lower); drop missing values."
            )
        return None
    lim = np.asarray(y_limit)
    if lim.dtype.kind == "b":
        lim = lim.astype(np.int8)
    elif lim.dtype.kind in "iuf":
        if not np.all(np.isin(lim, (-1, 0, 1))):
            raise ValueError(
                "y_limit must contain only 1 (upper limit), -1 (lower limit) or "
                "0 (detection)."
            )
        lim = lim.astype(np.int8)
    else:
        raise TypeError(
            f"y_limit must be an array of -1/0/1 or of booleans, got dtype {lim.dtype}."
        )
    if lim.ndim != 1:
        raise ValueError(f"y_limit must be one-dimensional (n_samples,), got shape {lim.shape}.")
    if y_arr is not None and y_arr.ndim == 1 and len(y_arr) == len(lim):
        bad = np.flatnonzero((lim != 0) & ~np.isfinite(np.asarray(y_arr, dtype=float)))
        if bad.size:
            raise ValueError(
                f"y_limit marks y[{bad[0]}] as a limit but its value is {y_arr[bad[0]]}: "
                "a limit needs its finite value in y."
            )
    return lim


def check_limit_length(limit, n: int):
    """Censoring marks checked against n rows; None when nothing is censored."""
    if limit is None:
        return None
    if len(limit) != n:
        raise ValueError(f"y_limit must have length n_samples={n}, got {len(limit)}.")
    return limit if np.any(limit) else None
