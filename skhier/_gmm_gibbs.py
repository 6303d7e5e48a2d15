"""The Gibbs sampler of BayesianGMM: a Gaussian mixture's full posterior.

Model (in standardised units, see the class Notes)::

    w ~ Dirichlet(e0, ..., e0)                       (K = n_components)
    Sigma_k ~ InvWishart(nu0, Psi0)
    mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0)          (Normal-inverse-Wishart)
    z_i | w ~ Categorical(w)
    v_i | z_i = k ~ N(mu_k, Sigma_k)                 (true position)
    x_i | v_i ~ N(v_i, S_i)                          (measurement; S_i = 0 without errors)

One Gibbs sweep is blocked in two conditionals, both exact:

1. ``(z, v) | theta, x``: each label is drawn from
   ``p(z_i = k) ∝ w_k N(x_i | mu_k, Sigma_k + S_i)`` (the true position
   integrated out), then each true position from its Gaussian conditional
   ``N(mu_k + Sigma_k A^-1 (x_i - mu_k), Sigma_k - Sigma_k A^-1 Sigma_k)``
   with ``A = Sigma_k + S_i`` -- the "extreme deconvolution" model of Bovy,
   Hogg & Roweis (2011), here sampled instead of maximised. The position is
   drawn by conditioning a joint prior draw (Matheron's rule / Hoffman &
   Ribak 1991), which needs no factorisation of the conditional covariance
   and stays exact for zero errors.
2. ``theta | z, v``: ``w ~ Dirichlet(e0 + n_k)`` and each ``(mu_k, Sigma_k)``
   from its conjugate Normal-inverse-Wishart posterior (Gelman et al., BDA3
   section 3.6), all components at once; empty components are drawn from the
   prior.

Everything is vectorised over points (labels by the inverse-CDF trick on
cumulative probabilities; sufficient statistics by ``np.bincount``) and over
components; the only Python loops are over chains, sweeps and components.

Label switching is resolved after sampling with the Kullback-Leibler
relabelling algorithm of Stephens (2000, JRSS B 62, 795), run on the
classification probabilities of a stratified subsample of points and
started from the draw with the highest likelihood (the pivot of Marin,
Mengersen & Robert 2005). Components are then ordered by decreasing
posterior mean weight.
"""

from __future__ import annotations

import functools
import sys
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from sklearn.cluster import kmeans_plusplus

from ._math import LOG2PI, logpdf_stack, single_threaded_blas, solve_stack

#: rows x draws x components evaluated at once (~2 MB: stays in cache).
_CHUNK_CELLS = 250_000
#: Bound on the (draws x points x components) classification array used by
#: the relabelling (float32, ~32 MB).
_RELABEL_CELLS = 8_000_000
_RELABEL_MAX_POINTS = 4000


# ---------------------------------------------------------------------------
# The conditionals (linear algebra on stacks of small matrices: skhier._math)
# ---------------------------------------------------------------------------
def _log_dirichlet(alpha, rng):
    """log of a Dirichlet(alpha) draw, accurate for tiny alpha.

    Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang 2000), taken in
    logs so that components with tiny concentration do not underflow to 0.
    """
    logg = np.log(rng.standard_gamma(alpha + 1.0)) + np.log(rng.random(alpha.shape)) / alpha
    top = logg.max()
    return logg - (top + np.log(np.exp(logg - top).sum()))


@functools.cache
def _tril_below(d):
    """Indices below the diagonal of a d x d matrix (cached: asked every sweep)."""
    return np.tril_indices(d, -1)


def _draw_niw(counts, sums, m2, prior, rng):
    """Draw (mu_k, Sigma_k, chol Sigma_k) for all k from the NIW posterior.

    counts (K,), sums (K, d) and m2 (K, d, d) are the zeroth, first and second
    moments of the true positions in each component; the prior mean is 0.
    """
    kappa0, nu0, psi0 = prior
    K, d = sums.shape
    kappa = kappa0 + counts
    nu = nu0 + counts
    mean = sums / kappa[:, None]
    # Psi_n = Psi0 + sum v v^T - kappa_n m_n m_n^T (BDA3 eq. 3.? with m0 = 0).
    psi = psi0 + m2 - kappa[:, None, None] * mean[:, :, None] * mean[:, None, :]
    psi = 0.5 * (psi + np.swapaxes(psi, 1, 2))
    U = np.linalg.cholesky(psi)
    # Bartlett: A A^T ~ Wishart(nu, I) with A lower triangular, A_ii^2 ~
    # chi2(nu - i); then Sigma = (U A^-T)(U A^-T)^T ~ InvWishart(nu, Psi).
    A = np.zeros((K, d, d))
    idx = np.arange(d)
    A[:, idx, idx] = np.sqrt(rng.chisquare(nu[:, None] - idx[None, :]))
    low = _tril_below(d)
    A[:, low[0], low[1]] = rng.standard_normal((K, len(low[0])))
    G = U @ np.swapaxes(np.linalg.inv(A), 1, 2)
    sigma = G @ np.swapaxes(G, 1, 2)
    sigma = 0.5 * (sigma + np.swapaxes(sigma, 1, 2))
    chol = np.linalg.cholesky(sigma)
    mu = mean + np.einsum("kij,kj->ki", chol, rng.standard_normal((K, d))) / np.sqrt(kappa)[:, None]
    return mu, sigma, chol


def _moments(z, V, K):
    """Counts, sums and second moments of V's rows per label (bincount)."""
    n, d = V.shape
    counts = np.bincount(z, minlength=K).astype(np.float64)
    sums = np.empty((K, d))
    m2 = np.empty((K, d, d))
    for a in range(d):
        sums[:, a] = np.bincount(z, weights=V[:, a], minlength=K)
        for b in range(a + 1):
            m2[:, a, b] = m2[:, b, a] = np.bincount(z, weights=V[:, a] * V[:, b], minlength=K)
    return counts, sums, m2


def _sample_categorical(logp, rng):
    """One draw per column from unnormalised log-probabilities (K, n), in place.

    Inverse-CDF trick: exponentiate, cumulate over components, compare with
    one uniform per point. The (K, n) layout keeps every step a contiguous
    vector operation.
    """
    logp -= logp.max(axis=0)
    np.exp(logp, out=logp)
    np.cumsum(logp, axis=0, out=logp)
    u = rng.random(logp.shape[1]) * logp[-1]
    z = (logp < u).sum(axis=0)
    return np.minimum(z, logp.shape[0] - 1)


def _quad_features(X):
    """phi(x) = (1, x, x_a x_b for a <= b), shape (p, n)."""
    a, b = np.triu_indices(X.shape[1])
    return np.concatenate([np.ones((1, X.shape[0])), X.T, (X[:, a] * X[:, b]).T], axis=0)


def _quad_coefs(log_w, mu, sigma):
    """Coefficients W (..., K, p) with log w_k N(x | mu_k, Sigma_k) = W_k . phi(x).

    Expanding the quadratic form turns the evaluation for all points and
    components into one matrix product (inputs are standardised, so the
    cancellation in x^T P x - 2 x^T P mu + mu^T P mu is harmless).
    """
    d = mu.shape[-1]
    P = np.linalg.inv(sigma)
    P = 0.5 * (P + np.swapaxes(P, -1, -2))
    _, logdet = np.linalg.slogdet(sigma)
    Pmu = np.einsum("...ij,...j->...i", P, mu)
    const = log_w - 0.5 * np.einsum("...i,...i->...", Pmu, mu) - 0.5 * logdet - 0.5 * d * LOG2PI
    a, b = np.triu_indices(d)
    quad = -0.5 * P[..., a, b] * np.where(a == b, 1.0, 2.0)
    return np.concatenate([const[..., None], Pmu, quad], axis=-1)


def _component_loglik(X, log_w, mu, sigma, S=None, phi=None):
    """log w_k + log N(x_i | mu_k, Sigma_k + S_i), shape (K, n)."""
    if S is None:
        if phi is None:
            phi = _quad_features(X)
        return _quad_coefs(log_w, mu, sigma) @ phi
    K = mu.shape[0]
    out = np.empty((K, X.shape[0]))
    for k in range(K):
        out[k] = log_w[k] + logpdf_stack(X - mu[k], sigma[k] + S)
    return out


# ---------------------------------------------------------------------------
# The sampler (one chain)
# ---------------------------------------------------------------------------
class _GibbsChain:
    """Blocked Gibbs sampler for one chain, in standardised units."""

    def __init__(self, X, S, S_sqrt, phi, K, prior, e0, rng):
        self.X, self.S, self.S_sqrt, self.phi = X, S, S_sqrt, phi
        self.K, self.prior, self.e0, self.rng = K, prior, e0, rng

    def initialise(self, labels=None):
        """Start from ``labels`` (an EM fit, see :func:`_em_start_labels`) or
        k-means++ centres with labels to the nearest one; then a theta draw."""
        X, K, rng = self.X, self.K, self.rng
        n = X.shape[0]
        if labels is not None:
            self.V = X
            return self.draw_theta(np.asarray(labels, dtype=np.intp))
        if n >= K:
            # k-means++ on at most 20 000 points: a start, not a fit.
            sub = X if n <= 20_000 else X[rng.choice(n, 20_000, replace=False)]
            centres, _ = kmeans_plusplus(sub, K, random_state=rng.integers(2**31 - 1))
        else:
            centres = X[rng.choice(n, K, replace=True)]
        z = np.empty(n, dtype=np.intp)
        step = max(1, 250_000 // K)
        for s in range(0, n, step):
            blk = X[s : s + step]
            z[s : s + step] = ((blk[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        self.V = X
        return self.draw_theta(z)

    def draw_theta(self, z):
        counts, sums, m2 = _moments(z, self.V, self.K)
        self.log_w = _log_dirichlet(self.e0 + counts, self.rng)
        self.mu, self.sigma, self.chol = _draw_niw(counts, sums, m2, self.prior, self.rng)
        return counts

    def draw_latents(self):
        z = self.draw_labels()
        if self.S is not None:
            self.V = _draw_true_positions(
                self.X, self.S, self.S_sqrt, z, self.mu, self.sigma, self.chol, self.rng
            )
        return z

    def draw_labels(self, rng=None):
        """One draw of the labels given the current parameters, from ``rng``
        (default: the chain's generator, which then moves on)."""
        ll = _component_loglik(self.X, self.log_w, self.mu, self.sigma, self.S, self.phi)
        return _sample_categorical(ll, self.rng if rng is None else rng)

    def sweep(self):
        return self.draw_theta(self.draw_latents())


def _em_start_labels(Xs, K, seeds, max_rows=20_000):
    """Starting labels for each chain from EM point estimates.

    The number of components is chosen by BIC among scikit-learn
    ``GaussianMixture`` fits with k = 1..K (on at most ``max_rows`` rows;
    the search stops once BIC has risen twice in a row); each chain then
    starts from an EM fit of that size from its own seed. Starting every
    component occupied (k-means++ with K centres) leaves the Gibbs sampler
    with spurious split components that it cannot merge in any practical
    run (chains then disagree: split R-hat of several).
    """
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(int(seeds[-1]))
    n = Xs.shape[0]
    sub = Xs if n <= max_rows else Xs[rng.choice(n, max_rows, replace=False)]
    best_k, best_bic, rises, prev = 1, np.inf, 0, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EM convergence warnings: a start, not a fit
        for k in range(1, min(K, sub.shape[0]) + 1):
            gm = GaussianMixture(k, reg_covar=1e-6, max_iter=200,
                                 random_state=int(seeds[-1]) % (2**31 - 1)).fit(sub)
            bic = gm.bic(sub)
            if bic < best_bic:
                best_k, best_bic = k, bic
            rises = rises + 1 if bic > prev else 0
            prev = bic
            if rises >= 2:
                break
        out = []
        for seed in seeds[:-1]:
            gm = GaussianMixture(best_k, reg_covar=1e-6, max_iter=200,
                                 random_state=int(seed) % (2**31 - 1)).fit(sub)
            out.append(gm.predict(Xs))
    return out


def _start_chain(Xs, S, S_sqrt, phi, K, prior, e0, seed, init_labels):
    """A Gibbs chain initialised from ``init_labels`` (or k-means++ centres)."""
    with single_threaded_blas():
        chain = _GibbsChain(Xs, S, S_sqrt, phi, K, prior, e0, np.random.default_rng(seed))
        chain.initialise(init_labels)
    return chain


def _run_chain(chain, n_sweeps, n_skip, thin, *, progress=None, done=0):
    """Run ``chain`` for ``n_sweeps`` more sweeps; keep every ``thin``-th after ``n_skip``.

    Returns the kept (log_w, mu, sigma, n_occupied) and the chain, whose
    state (positions, parameters, generator) lets a later call go on where
    this one stopped.
    """
    K, d = chain.K, chain.X.shape[1]
    n_keep = len(range(n_skip, n_sweeps, thin))
    log_w = np.empty((n_keep, K))
    mu = np.empty((n_keep, K, d))
    sigma = np.empty((n_keep, K, d, d))
    occupied = np.empty(n_keep, dtype=np.intp)
    with single_threaded_blas():
        j = 0
        for it in range(n_sweeps):
            counts = chain.sweep()
            if it >= n_skip and (it - n_skip) % thin == 0:
                log_w[j], mu[j], sigma[j] = chain.log_w, chain.mu, chain.sigma
                occupied[j] = np.count_nonzero(counts)
                j += 1
            if progress is not None and (it + 1) % max(1, n_sweeps // 10) == 0:
                print(f"BayesianGMM: {progress}, sweep {done + it + 1}/{done + n_sweeps}",
                      file=sys.stderr)
    return log_w, mu, sigma, occupied, chain


def _draw_true_positions(X, S, S_sqrt, z, mu, sigma, chol, rng):
    """Draw v_i | z_i, x_i from its Gaussian conditional (Matheron's rule).

    With v* ~ N(mu_k, Sigma_k) and e* ~ N(0, S_i) drawn jointly,
    v = v* + Sigma_k (Sigma_k + S_i)^-1 (x_i - v* - e*) is an exact draw from
    p(v_i | x_i, z_i = k); no factorisation of the conditional covariance.
    """
    n, d = X.shape
    eps = rng.standard_normal((n, d))
    v_star = mu[z] + np.einsum("nij,nj->ni", chol[z], eps)
    e_star = np.einsum("nij,nj->ni", S_sqrt, rng.standard_normal((n, d)))
    sig = sigma[z]
    gain_rhs = solve_stack(sig + S, X - v_star - e_star)
    return v_star + np.einsum("nij,nj->ni", sig, gain_rhs)


# ---------------------------------------------------------------------------
# Relabelling (Stephens 2000)
# ---------------------------------------------------------------------------
def _classification_probs(X, S, log_w, mu, sigma):
    """Responsibilities (T, m, K) and per-draw log-likelihood (T,) on X (m, d)."""
    T, K, d = mu.shape
    r = X[None, :, None, :] - mu[:, None, :, :]  # (T, m, K, d)
    A = sigma[:, None, :, :, :]
    if S is not None:
        A = A + S[None, :, None, :, :]
    lp = logpdf_stack(r, A) + log_w[:, None, :]
    lse = logsumexp(lp, axis=2, keepdims=True)
    return np.exp(lp - lse).astype(np.float32), lse[..., 0].sum(1)


def _stephens_relabel(X, S, log_w, mu, sigma, ref_labels, rng, max_iter=100):
    """Permutations (T, K) that undo label switching (Stephens 2000, alg. 2).

    Minimises sum_t KL(P_t perm_t || Q) over per-draw permutations, where
    P_t are the classification probabilities of draw t on a stratified
    subsample of points and Q their relabelled average; each step solves a
    K x K assignment per draw exactly (Hungarian algorithm).
    """
    T, K, _ = mu.shape
    n = X.shape[0]
    # A few thousand points pin the classification down; more only cost memory.
    m_max = max(K, min(_RELABEL_MAX_POINTS, _RELABEL_CELLS // max(T * K, 1)))
    if n <= m_max:
        idx = np.arange(n)
    else:
        # Stratify by a reference labelling so that small clusters are seen.
        groups = [np.flatnonzero(ref_labels == k) for k in range(K)]
        groups = [g for g in groups if len(g)]
        per = max(1, m_max // len(groups))
        idx = np.sort(
            np.concatenate([g if len(g) <= per else rng.choice(g, per, replace=False) for g in groups])
        )
    Xs = X[idx]
    Ss = None if S is None else S[idx]
    m = len(idx)
    # Pt[t * K + j] = classification probabilities of component j in draw t.
    Pt = np.empty((T, K, m), dtype=np.float32)
    loglik = np.empty(T)
    step = max(1, _CHUNK_CELLS // max(m * K, 1))
    for s in range(0, T, step):
        sl = slice(s, s + step)
        p, loglik[sl] = _classification_probs(Xs, Ss, log_w[sl], mu[sl], sigma[sl])
        Pt[sl] = p.transpose(0, 2, 1)
    Pt = Pt.reshape(T * K, m)
    perms = np.tile(np.arange(K), (T, 1))
    if K == 1:
        return perms
    Q = Pt[int(np.argmax(loglik)) * K : (int(np.argmax(loglik)) + 1) * K].T.astype(np.float64)
    base = (np.arange(T) * K)[:, None]
    for _ in range(max_iter):
        logq = np.log(np.clip(Q, 1e-12, None)).astype(np.float32)
        # cost[t, j, k] = -sum_i P_t[i, j] log Q[i, k]  (KL up to a constant)
        cost = -(Pt @ logq).reshape(T, K, K)
        new = np.empty_like(perms)
        for t in range(T):
            rows, cols = linear_sum_assignment(cost[t])
            new[t, cols] = rows
        if np.array_equal(new, perms):
            break
        perms = new
        Q = Pt[(base + perms).ravel()].reshape(T, K, m).mean(axis=0, dtype=np.float64).T
    return perms
