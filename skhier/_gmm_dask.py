"""BayesianGMM's Gibbs sampler over chunks of rows: weighted fits and Dask.

One Gibbs sweep of :mod:`skhier._gmm_gibbs` is a map over rows followed by a sum:
given the global parameters (weights, means, covariances), every row's
label -- and, with measurement errors, its true position -- is drawn
independently, and the conditional of the global parameters depends on the
rows only through per-component sufficient statistics (weighted counts,
sums and second moments). This module runs the sweep chunk by chunk:

- :func:`chunk_sweep` draws the latents of one chunk of rows for every chain
  and returns the chunk's sufficient statistics; on Dask it runs on the
  workers, next to the data, and only the statistics travel;
- the statistics are summed over chunks and the global draws (Dirichlet
  weights, Normal-inverse-Wishart components) happen on the client, with
  the same functions as the in-memory sampler.

Random streams are per chunk: chunk ``j`` of sweep ``t`` of a chain with
seed ``s`` draws from ``numpy.random.default_rng([s, t, j])``, so the draws
do not depend on where or in which order the chunks run. The in-memory
:class:`NumpyChunks` and the Dask :class:`DaskChunks` with the same row
chunks therefore give the same posterior up to the order of floating-point
sums. Sweeps are counted from the chain's start and the client's global
draws come from one generator per chain, so the chains are resumable
(:class:`ChunkedChains`): ``n_iter="auto"`` extends them exactly as one
longer run would have gone.

Sample weights (``sample_weight`` in :meth:`BayesianGMM.fit`) enter the
sweep as follows. A row with weight ``w = m + f`` (integer part ``m``,
fraction ``f``) stands for ``m`` copies of itself, each with its own label
(and true position), plus, when ``f > 0``, one copy whose complete-data
likelihood ``w_z N(v | mu_z, Sigma_z) N(x | v, S)`` is raised to the power
``f``. The ``m`` copies are drawn in aggregate: multinomial counts over the
components, and per component the sum and scatter of the copies' true
positions (a Gaussian and a Wishart draw). The tempered copy's label has
probabilities proportional to ``[w_k N(x | mu_k, Sigma_k + S)]^f
(|Sigma_k| / |Sigma_k + S|)^((1 - f) / 2)`` and its true position is
Gaussian with the usual mean and covariance divided by ``f``. Both steps
are exact conditionals, so the sampler targets the posterior in which
integer weights equal repeated rows; with fractional weights it is a
generalised (tempered) posterior.
"""

from __future__ import annotations

import sys

import numpy as np

from ._gmm_gibbs import (
    _component_loglik,
    _draw_niw,
    _draw_true_positions,
    _em_start_labels,
    _GibbsChain,
    _log_dirichlet,
    _moments,
    _quad_features,
    _sample_categorical,
)
from ._math import psd_sqrt, single_threaded_blas
from .utils._checks import check_errors, check_magnitude, check_sample_weight

__all__ = ["NumpyChunks", "DaskChunks", "chunk_sweep", "fit_dask", "fit_in_memory",
           "is_dask_collection", "ChunkedChains"]

#: Rows per chunk of the in-memory chunked sweep (weighted fits).
CHUNK_ROWS = 100_000


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a Dask array or DataFrame (without importing Dask)."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "dask")


# ---------------------------------------------------------------------------
# Per-chunk work (runs on the Dask workers)
# ---------------------------------------------------------------------------
def chunk_moments(X, w):
    """(total weight, weighted mean, weighted sum of squared deviations) of
    the rows of one chunk, for the standardisation (combined by
    :func:`_combine_moments`)."""
    if w is None:
        w = np.ones(X.shape[0])
    W = float(w.sum())
    if W == 0:
        return 0.0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    mean = (w @ X) / W
    return W, mean, w @ (X - mean) ** 2


def _combine_moments(parts):
    """Weighted mean and variance from per-chunk moments (Chan et al. 1979)."""
    W, mean, m2 = 0.0, None, None
    for Wc, mc, m2c in parts:
        if Wc == 0:
            continue
        if mean is None:
            W, mean, m2 = Wc, mc, m2c
            continue
        delta = mc - mean
        tot = W + Wc
        mean = mean + delta * (Wc / tot)
        m2 = m2 + m2c + delta**2 * (W * Wc / tot)
        W = tot
    return mean, m2 / W


def prepare_chunk(X, X_err, X_cov, w, loc, scale):
    """Validate one chunk and standardise it: (Xs, S, S_sqrt, w)."""
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity.")
    check_magnitude(X, "X")
    n, d = X.shape
    S = S_sqrt = None
    if X_err is not None or X_cov is not None:
        cov = check_errors(n, d, X_err=X_err, X_cov=X_cov)["X_cov"]
        S = cov / (scale[:, None] * scale[None, :])
        S_sqrt = psd_sqrt(S)
    if w is not None:
        w = check_sample_weight(w, n)
    return (X - loc) / scale, S, S_sqrt, w


def _wishart_identity(df, d, rng):
    """Draws of Wishart(df_p, I_d) for integer df_p >= 0, shape (P, d, d).

    Bartlett's factor where df >= d; the sum of df outer products of
    standard normal vectors where df < d (a singular Wishart).
    """
    P = len(df)
    A = np.zeros((P, d, d))
    idx = np.arange(d)
    big = df >= d
    if np.any(big):
        B = np.zeros((int(big.sum()), d, d))
        B[:, idx, idx] = np.sqrt(rng.chisquare(df[big][:, None] - idx[None, :]))
        low = np.tril_indices(d, -1)
        B[:, low[0], low[1]] = rng.standard_normal((len(B), len(low[0])))
        A[big] = B
    small = ~big
    if np.any(small):
        G = rng.standard_normal((int(small.sum()), d, d))
        A[small] = G * (idx[None, None, :] < df[small][:, None, None])
    return A @ np.swapaxes(A, 1, 2)


def _logdet(A):
    d = A.shape[-1]
    if d == 1:
        return np.log(A[..., 0, 0])
    if d == 2:
        return np.log(A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0])
    return np.linalg.slogdet(A)[1]


def _weighted_stats(X, S, S_sqrt, phi, w, log_w, mu, sigma, chol, K, rng):
    """Sufficient statistics of one chunk's latents with row weights ``w``."""
    n, d = X.shape
    ll = _component_loglik(X, log_w, mu, sigma, S, phi)  # (K, n)
    counts, sums, m2 = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
    m = np.floor(w).astype(np.int64)
    f = w - m
    # -- integer part: m_i copies of row i, each with its own label.
    rows = np.flatnonzero(m)
    if len(rows):
        p = np.exp(ll[:, rows] - ll[:, rows].max(axis=0))
        p /= p.sum(axis=0)
        N = rng.multinomial(m[rows], p.T).astype(np.float64)  # (r, K)
        if S is None:
            x = X[rows]
            counts += N.sum(axis=0)
            sums += N.T @ x
            m2 += (N.T @ (x[:, :, None] * x[:, None, :]).reshape(len(x), d * d)).reshape(K, d, d)
        else:
            # Copies of row i in component k: true positions iid
            # N(mean_ik, C_ik); draw their sum and scatter in aggregate.
            ri, k = np.nonzero(N)
            c = N[ri, k]
            i = rows[ri]
            sig = sigma[k]
            A = sig + S[i]
            gain = np.linalg.solve(A, sig)  # A^-1 Sigma_k (symmetric product below)
            mean = mu[k] + np.einsum("pij,pj->pi", sig, np.linalg.solve(A, (X[i] - mu[k])[..., None])[..., 0])
            C = sig - sig @ gain
            R = psd_sqrt(0.5 * (C + np.swapaxes(C, 1, 2)))
            s1 = c[:, None] * mean + np.sqrt(c)[:, None] * np.einsum(
                "pij,pj->pi", R, rng.standard_normal((len(c), d)))
            W0 = _wishart_identity(c.astype(np.int64) - 1, d, rng)
            s2 = R @ W0 @ np.swapaxes(R, 1, 2) + s1[:, :, None] * s1[:, None, :] / c[:, None, None]
            counts += np.bincount(k, weights=c, minlength=K)
            for a in range(d):
                sums[:, a] += np.bincount(k, weights=s1[:, a], minlength=K)
                for b in range(d):
                    m2[:, a, b] += np.bincount(k, weights=s2[:, a, b], minlength=K)
    # -- fractional part: one tempered copy of row i with power f_i.
    rows = np.flatnonzero(f > 0)
    if len(rows):
        fr = f[rows]
        lt = ll[:, rows] * fr
        x = X[rows]
        if S is None:
            z = _sample_categorical(lt, rng)
            v = x
        else:
            Sr = S[rows]
            logdet_sig = _logdet(sigma)  # (K,)
            lt += 0.5 * (1.0 - fr) * (logdet_sig[:, None] - _logdet(sigma[:, None] + Sr[None]))
            z = _sample_categorical(lt, rng)
            # N(mean, C / f): Matheron's rule with prior and noise scaled by 1/f.
            scale = 1.0 / np.sqrt(fr)
            eps = rng.standard_normal((len(rows), d))
            v_star = mu[z] + scale[:, None] * np.einsum("nij,nj->ni", chol[z], eps)
            e_star = scale[:, None] * np.einsum("nij,nj->ni", S_sqrt[rows],
                                                rng.standard_normal((len(rows), d)))
            sg = sigma[z]
            rhs = np.linalg.solve(sg + Sr, (x - v_star - e_star)[..., None])[..., 0]
            v = v_star + np.einsum("nij,nj->ni", sg, rhs)
        counts += np.bincount(z, weights=fr, minlength=K)
        for a in range(d):
            sums[:, a] += np.bincount(z, weights=fr * v[:, a], minlength=K)
            for b in range(a + 1):
                m2[:, a, b] += np.bincount(z, weights=fr * v[:, a] * v[:, b], minlength=K)
                m2[:, b, a] = m2[:, a, b]
    return counts, sums, m2


def chunk_sweep(chunk, thetas, seeds, K):
    """Latent draws of one chunk for every chain; their sufficient statistics.

    Parameters
    ----------
    chunk : tuple
        ``(Xs, S, S_sqrt, w)`` from :func:`prepare_chunk`.
    thetas : list of tuple
        Per chain ``(log_w, mu, sigma, chol)`` in standardised units.
    seeds : list of sequence of int
        Per chain the seed ``[chain_seed, sweep, chunk_index]``.
    K : int

    Returns
    -------
    list of (counts, sums, m2), one per chain.
    """
    X, S, S_sqrt, w = chunk
    out = []
    phi = _quad_features(X) if S is None else None
    for (log_w, mu, sigma, chol), seed in zip(thetas, seeds, strict=True):
        rng = np.random.default_rng(seed)
        if w is not None:
            out.append(_weighted_stats(X, S, S_sqrt, phi, w, log_w, mu, sigma, chol, K, rng))
            continue
        z = _sample_categorical(_component_loglik(X, log_w, mu, sigma, S, phi), rng)
        V = X if S is None else _draw_true_positions(X, S, S_sqrt, z, mu, sigma, chol, rng)
        out.append(_moments(z, V, K))
    return out


# ---------------------------------------------------------------------------
# The data, in chunks: in memory or on Dask
# ---------------------------------------------------------------------------
class NumpyChunks:
    """In-memory data split into row chunks of ``chunk_rows``."""

    def __init__(self, X, X_cov=None, sample_weight=None, chunk_rows=CHUNK_ROWS):
        self.n, self.d = X.shape
        bounds = list(range(0, self.n, chunk_rows)) + [self.n]
        self._raw = [
            (X[a:b], None if X_cov is None else X_cov[a:b],
             None if sample_weight is None else sample_weight[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        self.offsets = np.array(bounds)

    def standardisation(self, standardize):
        if not standardize:
            return np.zeros(self.d), np.ones(self.d)
        return _combine_moments([chunk_moments(x, w) for x, _, w in self._raw])

    def prepare(self, loc, scale):
        self.chunks = [prepare_chunk(x, None, c, w, loc, scale) for x, c, w in self._raw]
        self._raw = None

    def map_sweep(self, thetas, seeds_of):
        return [chunk_sweep(ch, thetas, seeds_of(j), thetas[0][1].shape[0])
                for j, ch in enumerate(self.chunks)]

    def take(self, idx):
        """Standardised rows ``idx`` (sorted): (Xs, S) in memory."""
        Xs = np.concatenate([c[0] for c in self.chunks])[idx]
        S = None if self.chunks[0][1] is None else np.concatenate([c[1] for c in self.chunks])[idx]
        return Xs, S

    def training_data(self):
        """All standardised rows, kept for per-point outputs."""
        return self.take(slice(None))


class DaskChunks:
    """Data held as Dask arrays; chunks are standardised and persisted on
    the workers once, then every sweep maps :func:`chunk_sweep` over them."""

    def __init__(self, X, X_err=None, X_cov=None, sample_weight=None):
        import dask.array as da

        self.n, self.d = X.shape
        X = X.rechunk({1: -1})
        rows = X.chunks[0]

        def aligned(arr, name, ndim):
            if arr is None:
                return None
            if hasattr(arr, "to_dask_array"):  # a Dask DataFrame or Series
                arr = arr.to_dask_array(lengths=True)
            if not is_dask_collection(arr):
                arr = np.asarray(arr.to_numpy() if hasattr(arr, "to_numpy") else arr)
                if arr.ndim == 0:
                    arr = np.broadcast_to(arr, (self.n,) + (self.d,) * (ndim - 1))
            if arr.ndim == ndim - 1 and ndim == 2 and self.d == 1:
                arr = arr[:, None]
            if arr.ndim != ndim or arr.shape[0] != self.n:
                raise ValueError(
                    f"{name} must have {self.n} rows and {ndim} dimensions to match X, "
                    f"got shape {arr.shape}."
                )
            if not is_dask_collection(arr):
                return da.from_array(arr, chunks=(rows,) + arr.shape[1:])
            return arr.rechunk((rows,) + arr.shape[1:])

        self._X = X
        self._err = aligned(X_err, "X_err", 2)
        self._cov = aligned(X_cov, "X_cov", 3)
        self._w = aligned(sample_weight, "sample_weight", 1)
        self.offsets = np.concatenate([[0], np.cumsum(rows)])

    @staticmethod
    def _blocks(arr):
        if arr is None:
            return None
        return list(arr.to_delayed().ravel())

    def _zip_blocks(self):
        xs = self._blocks(self._X)
        es = self._blocks(self._err) or [None] * len(xs)
        cs = self._blocks(self._cov) or [None] * len(xs)
        ws = self._blocks(self._w) or [None] * len(xs)
        return xs, es, cs, ws

    def standardisation(self, standardize):
        import dask

        # The moments pass also validates every chunk (NaN, magnitudes,
        # covariances, weights), before anything is persisted.
        checked = [dask.delayed(_checked_moments)(*blocks, standardize)
                   for blocks in zip(*self._zip_blocks(), strict=True)]
        parts = dask.compute(*checked)
        if not standardize:
            return np.zeros(self.d), np.ones(self.d)
        return _combine_moments(parts)

    def prepare(self, loc, scale):
        import dask

        chunks = [dask.delayed(prepare_chunk)(*blocks, loc, scale)
                  for blocks in zip(*self._zip_blocks(), strict=True)]
        self.chunks = list(dask.persist(*chunks))

    def map_sweep(self, thetas, seeds_of):
        import dask

        K = thetas[0][1].shape[0]
        tasks = [dask.delayed(chunk_sweep)(ch, thetas, seeds_of(j), K)
                 for j, ch in enumerate(self.chunks)]
        return list(dask.compute(*tasks))

    def take(self, idx):
        import dask

        idx = np.asarray(idx)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        parts = []
        for j in np.unique(which):
            local = idx[which == j] - self.offsets[j]
            parts.append(dask.delayed(_take_rows)(self.chunks[j], local))
        got = dask.compute(*parts)
        Xs = np.concatenate([g[0] for g in got])
        S = None if got[0][1] is None else np.concatenate([g[1] for g in got])
        return Xs, S

    def training_data(self):
        """Training rows stay on the cluster: no per-point training outputs."""
        return None, None


def _checked_moments(X, X_err, X_cov, w, standardize):
    prepare_chunk(X, X_err, X_cov, w, np.zeros(X.shape[1]), np.ones(X.shape[1]))
    return chunk_moments(np.asarray(X, dtype=np.float64), w) if standardize else None


def _take_rows(chunk, local):
    X, S, _, _ = chunk
    return X[local], None if S is None else S[local]


# ---------------------------------------------------------------------------
# The chains (client side)
# ---------------------------------------------------------------------------
def _theta_from_stats(stats, prior, e0, rng):
    counts, sums, m2 = stats
    log_w = _log_dirichlet(e0 + counts, rng)
    mu, sigma, chol = _draw_niw(counts, sums, m2, prior, rng)
    return log_w, mu, sigma, chol


class ChunkedChains:
    """Gibbs chains over ``data`` (:class:`NumpyChunks` or :class:`DaskChunks`),
    resumable: :meth:`run` goes on where the previous call stopped.

    ``starts`` holds each chain's starting ``(log_w, mu, sigma, chol)``,
    ``rngs`` the generator of its global draws (on the client) and
    ``chain_seeds`` its integer seed.

    **Random streams.** Sweeps are numbered from the start of the chain,
    across calls of :meth:`run`: chunk ``j`` of sweep ``t`` of the chain
    with seed ``s`` draws its latents from ``default_rng([s, t, j])``, and
    the chain's global draws (weights, means, covariances) come from its
    one client generator, in sweep order. The state between calls is the
    last parameter draw, that generator and the sweep count, so a run of
    ``n1`` sweeps resumed for ``n2`` more gives the draws of one run of
    ``n1 + n2`` sweeps, and a Dask run equals the in-memory run with the
    same row chunks (up to the order of floating-point sums).
    """

    def __init__(self, data, starts, chain_seeds, rngs, prior, e0):
        self.data, self.prior, self.e0 = data, prior, e0
        self.thetas = list(starts)
        self.seeds = [int(s) for s in chain_seeds]
        self.rngs = list(rngs)
        self.done = 0  # sweeps run so far

    def run(self, n_sweeps, n_skip, thin, *, progress=None):
        """``n_sweeps`` more sweeps of every chain; keep every ``thin``-th
        after the first ``n_skip`` of them.

        Returns kept ``log_w`` (C, T, K), ``mu`` (C, T, K, d), ``sigma``
        (C, T, K, d, d) and ``occupied`` (C, T).
        """
        C = len(self.thetas)
        K, d = self.thetas[0][1].shape
        n_keep = len(range(n_skip, n_sweeps, thin))
        log_w = np.empty((C, n_keep, K))
        mu = np.empty((C, n_keep, K, d))
        sigma = np.empty((C, n_keep, K, d, d))
        occupied = np.empty((C, n_keep), dtype=np.intp)
        j = 0
        for it in range(n_sweeps):
            t = self.done + it
            per_chunk = self.data.map_sweep(
                self.thetas, lambda chunk, t=t: [[s, t, chunk] for s in self.seeds])
            keep = it >= n_skip and (it - n_skip) % thin == 0
            for c in range(C):
                # Sum in chunk order (the in-memory and Dask paths agree to
                # the rounding of these sums).
                stats = [np.sum([p[c][q] for p in per_chunk], axis=0) for q in range(3)]
                self.thetas[c] = _theta_from_stats(stats, self.prior, self.e0, self.rngs[c])
                if keep:
                    log_w[c, j], mu[c, j], sigma[c, j] = self.thetas[c][:3]
                    occupied[c, j] = np.count_nonzero(stats[0])
            j += keep
            if progress is not None and (it + 1) % max(1, n_sweeps // 10) == 0:
                progress(f"sweep {t + 1}/{self.done + n_sweeps}")
        self.done += n_sweeps
        return log_w, mu, sigma, occupied


def sample_labels(X, S, theta, rng):
    """One label draw per row of (X, S) given ``theta``."""
    log_w, mu, sigma, _ = theta
    return _sample_categorical(_component_loglik(X, log_w, mu, sigma, S), rng)


# ---------------------------------------------------------------------------
# Fits (called by BayesianGMM.fit)
# ---------------------------------------------------------------------------
#: Rows gathered to the client for the chains' starts and the relabelling.
SUBSAMPLE_ROWS = 20_000


def fit_chunks(est, data, *, keep_training):
    """Run ``est``'s Gibbs chains over ``data`` chunk by chunk and store them.

    BLAS is limited to one thread for the whole run (the products are
    skinny; see :func:`skhier._math.single_threaded_blas`); this covers the
    in-memory chunks and Dask's threaded scheduler. Worker processes of a
    distributed cluster should set ``OMP_NUM_THREADS=1`` themselves.
    """
    with single_threaded_blas():
        return _fit_chunks(est, data, keep_training)


def _fit_chunks(est, data, keep_training):

    K, d, C = est.n_components, data.d, est.n_chains
    prior = est._prior(d)
    seeds = est._chain_seeds()
    loc, var = data.standardisation(est.standardize)
    spread = np.sqrt(var)
    est._loc, est._scale = loc, np.where(spread > 0, spread, 1.0)
    data.prepare(est._loc, est._scale)

    # Starts and relabelling work on a uniform subsample of the rows.
    rng = np.random.default_rng(int(seeds[-1]))
    idx = np.sort(rng.choice(data.n, min(data.n, SUBSAMPLE_ROWS), replace=False))
    sub, S_sub = data.take(idx)
    labels = [None] * C
    if est.weight_concentration < 1:
        labels = _em_start_labels(sub, K, seeds)
    rngs = [np.random.default_rng(int(s)) for s in seeds[:C]]
    starts = []
    for c in range(C):
        chain = _GibbsChain(sub, None, None, None, K, prior, est.weight_concentration, rngs[c])
        chain.initialise(labels[c])
        starts.append((chain.log_w, chain.mu, chain.sigma, chain.chol))
    chains = ChunkedChains(data, starts, seeds[:C], rngs, prior, est.weight_concentration)
    training = (None, None, None)
    if keep_training:
        Xs, S = data.training_data()
        training = (Xs, S, None if S is None else psd_sqrt(S))
    report = ((lambda msg: print(f"BayesianGMM: {msg}", file=sys.stderr)) if est.progress
              else None)

    def run(n_sweeps, n_skip, thin, done):
        return chains.run(n_sweeps, n_skip, thin, progress=report)

    def store(parts, done, last):
        ref = sample_labels(sub, S_sub, chains.thetas[0], est._reference_rng(seeds, done))
        est._store_chains(*parts, relabel_data=(sub, S_sub), ref_labels=ref,
                          relabel_seed=seeds[-1], training=training, n_iter=done,
                          warn_if_not=last)

    return est._sample_until_converged(run, store)


def fit_in_memory(est, X, X_cov=None, sample_weight=None, chunk_rows=CHUNK_ROWS):
    """Chunked fit of in-memory data (X and X_cov as validated by ``fit``).

    ``BayesianGMM.fit`` takes this path for weighted fits; with the row
    chunks of a Dask array it gives that fit's draws (up to the rounding of
    sums), which is how the Dask path is tested.
    """
    w = check_sample_weight(sample_weight, X.shape[0])
    data = NumpyChunks(X, X_cov, w, chunk_rows=chunk_rows)
    return fit_chunks(est, data, keep_training=True)


def fit_dask(est, X, X_err=None, X_cov=None, sample_weight=None):
    """Fit on a Dask array or DataFrame; the rows stay on the workers."""
    if hasattr(X, "columns"):  # Dask DataFrame
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        has_names = all(isinstance(c, str) for c in X.columns)
        X = X.to_dask_array(lengths=True)
    else:
        has_names = False
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D Dask array, got {X.ndim} dimensions.")
    if np.isnan(X.shape[0]):
        X = X.compute_chunk_sizes()
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got a Dask array of dtype {X.dtype}.")
    n, d = X.shape
    if n < 2:
        raise ValueError(f"Found array with {n} sample(s) while a minimum of 2 is required.")
    est.n_features_in_ = d
    if has_names:
        est.feature_names_in_ = names
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    from ._base import error_names

    est._fit_error_names = error_names(X_err=X_err, X_cov=X_cov)
    if X_err is not None and X_cov is not None:
        raise ValueError("Give at most one of X_err and X_cov, not both.")
    data = DaskChunks(X, X_err=X_err, X_cov=X_cov, sample_weight=sample_weight)
    return fit_chunks(est, data, keep_training=False)
