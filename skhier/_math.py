"""Small numerical helpers shared by the model modules.

One home for the pieces every model needs: the Gaussian normalising
constant and log-density, log-sum-exp and log-mean-exp, categorical draws by
inverse CDF, and the row chunks that keep (draws x rows) tables bounded for
any number of objects. Imports nothing else of skhier.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HALF_LOG2PI", "LOG2PI", "categorical", "log_normal_pdf", "logmeanexp", "logsumexp",
           "row_chunks"]

#: log(2 pi), the normalising constant of a Gaussian in log form.
LOG2PI = float(np.log(2.0 * np.pi))
HALF_LOG2PI = 0.5 * LOG2PI


def log_normal_pdf(x, mean, var):
    """``log N(x | mean, var)`` (broadcast), parametrised by the variance.

    Examples
    --------
    >>> float(log_normal_pdf(0.0, 0.0, 1.0)) == -HALF_LOG2PI
    True
    """
    return -0.5 * ((x - mean) ** 2 / var + np.log(var) + LOG2PI)


def logsumexp(a, axis=-1):
    """``log(sum(exp(a), axis))`` without overflow; ``-inf`` where every term is.

    A lean version of :func:`scipy.special.logsumexp` for hot paths (no
    weights, no sign, no input checks).

    Examples
    --------
    >>> float(logsumexp(np.log([1.0, 2.0, 3.0])))
    1.791759469228055
    """
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)


def logmeanexp(t, axis=0):
    """``log(mean(exp(t), axis))`` without overflow; ``-inf`` where every term is.

    Parameters
    ----------
    t : array-like
        Log values, e.g. log-likelihoods of objects (columns) at posterior
        draws (rows).
    axis : int, default=0
        Axis to average over.

    Returns
    -------
    ndarray
        ``t`` with ``axis`` removed.

    Examples
    --------
    >>> logmeanexp(np.log([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    array([0.69314718, 1.09861229])
    >>> float(logmeanexp([-np.inf, -np.inf]))
    -inf
    """
    t = np.asarray(t, dtype=float)
    m = np.max(t, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.mean(np.exp(t - m), axis=axis)) + np.squeeze(m, axis=axis)
    return out[()] if out.ndim == 0 else out


def categorical(w, rng):
    """Indices along the last axis of ``w`` drawn with probabilities proportional to ``w``.

    Inverse-CDF sampling, one uniform per row: ``w`` (..., K) holds
    non-negative weights (not necessarily normalised) with a positive sum in
    every row; the result has shape ``w.shape[:-1]``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> idx = categorical(np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), rng)
    >>> idx.tolist()
    [1, 0]
    """
    cum = np.cumsum(w, axis=-1)
    u = rng.uniform(size=w.shape[:-1] + (1,)) * cum[..., -1:]
    return np.minimum((cum < u).sum(-1), w.shape[-1] - 1)


def row_chunks(n_rows: int, per_row: int, cells: int):
    """Slices of ``range(n_rows)`` such that rows x ``per_row`` stays below ``cells``.

    At least one row per slice, whatever ``per_row``.

    Examples
    --------
    >>> list(row_chunks(5, 2, 4))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    step = max(1, int(cells) // max(int(per_row), 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))
