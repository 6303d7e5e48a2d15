"""Small numerical helpers shared by the model modules.

One home for the pieces every model needs: the Gaussian normalising
constant and log-density, log-sum-exp and log-mean-exp, categorical draws by
inverse CDF, the row chunks that keep (draws x rows) tables bounded for
any number of objects, linear algebra on stacks of small matrices, and a
single-threaded BLAS context for skinny products. Imports nothing else of
skhier.
"""

from __future__ import annotations

import contextlib

import numpy as np

try:  # a dependency of scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = ["HALF_LOG2PI", "LOG2PI", "categorical", "diag_stack", "log_normal_pdf",
           "logmeanexp", "logpdf_stack", "logsumexp", "psd_sqrt", "row_chunks",
           "single_threaded_blas", "solve_spd", "solve_stack", "standardisation"]

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


def standardisation(X, weights=None):
    """Column means and standard deviations of X (1 for a constant column),
    weighted by ``weights``: integer weights standardise as repeated rows do.

    Examples
    --------
    >>> loc, scale = standardisation(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> loc.tolist(), scale.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    """
    loc = np.average(X, axis=0, weights=weights)
    scale = np.sqrt(np.average((X - loc) ** 2, axis=0, weights=weights))
    return loc, np.where(scale > 0, scale, 1.0)


def single_threaded_blas():
    """A context limiting BLAS to one thread (as scikit-learn's KMeans does).

    For skinny products (an inner dimension of a few features) threads gain
    nothing and, on a busy machine, oversubscription slows them several times.
    """
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------------------
# Stacks of small matrices (..., d, d): closed forms for d = 1 and d = 2 (the
# common cases, where a batched LAPACK call per 2x2 matrix would dominate),
# LAPACK for larger d.
# ---------------------------------------------------------------------------
def logpdf_stack(r, A):
    """``log N(r | 0, A)`` for residuals r (..., d) and covariances A (..., d, d), broadcast.

    Examples
    --------
    >>> float(logpdf_stack(np.zeros((1, 1)), np.ones((1, 1, 1)))[0]) == -HALF_LOG2PI
    True
    """
    d = r.shape[-1]
    if d == 1:
        a = A[..., 0, 0]
        return -0.5 * (r[..., 0] ** 2 / a + np.log(a) + LOG2PI)
    if d == 2:
        a, b, c = A[..., 0, 0], A[..., 0, 1], A[..., 1, 1]
        det = a * c - b * b
        r0, r1 = r[..., 0], r[..., 1]
        quad = (c * r0 * r0 - 2.0 * b * r0 * r1 + a * r1 * r1) / det
        return -0.5 * (quad + np.log(det) + 2.0 * LOG2PI)
    A, r = np.broadcast_arrays(A, r[..., None])
    L = np.linalg.cholesky(A)
    y = np.linalg.solve(L, r)[..., 0]
    logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * (np.sum(y * y, axis=-1) + logdet + d * LOG2PI)


def solve_stack(A, b):
    """``A^-1 b`` for A (n, d, d) and vectors b (n, d)."""
    d = b.shape[-1]
    if d == 1:
        return b / A[:, 0, :]
    if d == 2:
        a, c, e = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * e - c * c
        return np.stack([(e * b[:, 0] - c * b[:, 1]) / det, (a * b[:, 1] - c * b[:, 0]) / det], 1)
    return np.linalg.solve(A, b[..., None])[..., 0]


def solve_spd(S, B):
    """``S^-1 B`` for SPD S (..., d, d) and B (..., d, m); also ``log det S``."""
    d = S.shape[-1]
    if d == 1:
        s = S[..., 0, :]
        return B / s[..., None], np.log(s[..., 0])
    if d == 2:
        a, b, c = S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]
        det = a * c - b * b
        inv = np.stack([np.stack([c, -b], -1), np.stack([-b, a], -1)], -2) / det[..., None, None]
        return inv @ B, np.log(det)
    L = np.linalg.cholesky(S)
    return np.linalg.solve(S, B), 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), -1)


def psd_sqrt(S):
    """A square root R with ``R R^T = S`` of PSD matrices S (..., d, d) (singular allowed).

    Examples
    --------
    >>> R = psd_sqrt(np.array([[[4.0, 0.0], [0.0, 0.0]]]))
    >>> np.allclose(R @ np.swapaxes(R, -1, -2), [[[4.0, 0.0], [0.0, 0.0]]])
    True
    """
    evals, evecs = np.linalg.eigh(S)
    return evecs * np.sqrt(np.clip(evals, 0.0, None))[..., None, :]


def diag_stack(v):
    """Variances (n, d) -> diagonal covariance matrices (n, d, d)."""
    out = np.zeros(v.shape + (v.shape[-1],))
    idx = np.arange(v.shape[-1])
    out[:, idx, idx] = v
    return out
