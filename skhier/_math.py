"""Small numerical helpers shared by the model modules.

One home for the pieces every model needs: the Gaussian normalising
constant, log-mean-exp over draws, and the row chunks that keep
(draws x rows) tables bounded for any number of objects. Imports nothing
else of skhier.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOG2PI", "logmeanexp", "row_chunks"]

#: log(2 pi), the normalising constant of a Gaussian in log form.
LOG2PI = float(np.log(2.0 * np.pi))


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
    >>> logmeanexp([-np.inf, -np.inf])
    -inf
    """
    t = np.asarray(t, dtype=float)
    m = np.max(t, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.mean(np.exp(t - m), axis=axis)) + np.squeeze(m, axis=axis)
    return out[()] if out.ndim == 0 else out


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
