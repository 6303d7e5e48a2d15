"""Convergence diagnostics: autocorrelation time, effective sample size, R-hat.

Pure numpy functions over chains shaped ``(n_steps, n_chains, n_params)``
(emcee's layout: steps first, walkers second). They import nothing else of
skhier, so every sampler and estimator can use them.

References
----------
Goodman & Weare (2010), Comm. App. Math. Comp. Sci. 5, 65 (integrated
autocorrelation time for ensembles); Sokal (1997) for the automatic window;
Gelman et al., Bayesian Data Analysis, 3rd ed., §11.4 (split R-hat).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "autocorr_function",
    "integrated_autocorr_time",
    "effective_sample_size",
    "split_rhat",
    "rank_normalized_rhat",
]


def _as_chain(chain) -> np.ndarray:
    chain = np.asarray(chain, dtype=np.float64)
    if chain.ndim == 1:
        chain = chain[:, None, None]
    elif chain.ndim == 2:
        chain = chain[:, :, None]
    if chain.ndim != 3:
        raise ValueError(
            "chain must have shape (n_steps,), (n_steps, n_chains) or "
            f"(n_steps, n_chains, n_params), got {chain.shape}."
        )
    return chain


def autocorr_function(x) -> np.ndarray:
    """Normalised autocorrelation function of 1-D series along axis 0 (FFT).

    ``x`` has shape ``(n_steps, ...)``; the result has the same shape with
    ``acf[0] == 1`` for every non-constant series (constant series give 0).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    m = 1 << int(np.ceil(np.log2(2 * n)))
    xc = x - x.mean(axis=0)
    f = np.fft.rfft(xc, n=m, axis=0)
    acf = np.fft.irfft(f * np.conj(f), n=m, axis=0)[:n]
    var = acf[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        acf = np.where(var > 0, acf / np.where(var > 0, var, 1.0), 0.0)
    return acf


def integrated_autocorr_time(chain, c: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time of every parameter.

    The autocorrelation function is averaged over chains (walkers) before
    summing, as recommended for ensemble samplers, and the sum is truncated at
    the smallest window ``M >= c * tau(M)`` (Sokal's automatic windowing).

    Parameters
    ----------
    chain : array, shape (n_steps, n_chains, n_params)
    c : float, default=5
        Window constant.

    Returns
    -------
    tau : ndarray, shape (n_params,)
        In steps; at least 1. Constant parameters give ``inf`` (no
        information about mixing).

    Examples
    --------
    >>> import numpy as np
    >>> from skhier.diagnostics import integrated_autocorr_time
    >>> rng = np.random.default_rng(0)
    >>> tau = integrated_autocorr_time(rng.normal(size=(4000, 8, 1)))
    >>> bool(0.8 < tau[0] < 1.2)
    True
    """
    chain = _as_chain(chain)
    n_steps, _, n_params = chain.shape
    acf = autocorr_function(chain).mean(axis=1)  # (n_steps, n_params)
    taus = 2.0 * np.cumsum(acf, axis=0) - 1.0
    out = np.empty(n_params)
    for j in range(n_params):
        if np.ptp(chain[:, :, j]) == 0:
            out[j] = np.inf
            continue
        window = np.arange(n_steps) < c * taus[:, j]
        m = int(np.argmin(window)) if not window.all() else n_steps - 1
        out[j] = max(taus[m, j], 1.0)
    return out


def effective_sample_size(chain, c: float = 5.0) -> np.ndarray:
    """Effective sample size ``n_steps * n_chains / tau`` of every parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from skhier.diagnostics import effective_sample_size
    >>> rng = np.random.default_rng(1)
    >>> ess = effective_sample_size(rng.normal(size=(2000, 4, 2)))
    >>> bool(np.all((ess > 6000) & (ess < 10000)))
    True
    """
    chain = _as_chain(chain)
    tau = integrated_autocorr_time(chain, c=c)
    return chain.shape[0] * chain.shape[1] / tau


def split_rhat(chain) -> np.ndarray:
    """Split-R-hat (Gelman et al. BDA3 §11.4) of every parameter.

    Each chain is split in two halves; values near 1 (say < 1.01–1.05)
    indicate that the chains agree. Needs at least 4 steps.

    Parameters
    ----------
    chain : array, shape (n_steps, n_chains, n_params)

    Returns
    -------
    rhat : ndarray, shape (n_params,)
    """
    chain = _as_chain(chain)
    n = chain.shape[0] // 2
    if n < 2:
        raise ValueError("split_rhat needs at least 4 steps per chain.")
    halves = np.concatenate([chain[:n], chain[-n:]], axis=1)  # (n, 2m, p)
    means = halves.mean(axis=0)
    w = halves.var(axis=0, ddof=1).mean(axis=0)
    b = n * means.var(axis=0, ddof=1)
    var_plus = (n - 1) / n * w + b / n
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = np.sqrt(var_plus / w)
    return np.where(w > 0, rhat, np.where(b > 0, np.inf, 1.0))


def rank_normalized_rhat(chain) -> np.ndarray:
    """Rank-normalised split R-hat of every parameter (Vehtari et al. 2021).

    The larger of the *bulk* R-hat (split R-hat of the normal scores of the
    pooled ranks, ``Phi^-1((r - 3/8) / (S + 1/4))``, ties averaged) and the
    *tail* R-hat (the same of the draws folded about their median,
    ``|x - median|``) -- the R-hat that ArviZ (``method="rank"``) and Stan
    report. Unlike the classic :func:`split_rhat` it does not depend on the
    scale of a heavy tail: a quantity that is near zero in most draws and
    occasionally large (the weight of a rarely occupied mixture component)
    gets a classic R-hat dominated by its few largest values.

    Parameters
    ----------
    chain : array, shape (n_steps, n_chains, n_params)

    Returns
    -------
    rhat : ndarray, shape (n_params,)

    References
    ----------
    Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. & Bürkner, P.-C.
    (2021), "Rank-normalization, folding, and localization: an improved
    R-hat for assessing convergence of MCMC", Bayesian Analysis 16, 667.
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    chain = _as_chain(chain)
    n_steps, n_chains, n_params = chain.shape
    size = n_steps * n_chains

    def z_scores(x):
        ranks = rankdata(x.reshape(size, n_params), axis=0)  # ties get their mean rank
        return ndtri((ranks - 0.375) / (size + 0.25)).reshape(chain.shape)

    bulk = split_rhat(z_scores(chain))
    tail = split_rhat(z_scores(np.abs(chain - np.median(chain.reshape(size, n_params), axis=0))))
    return np.maximum(bulk, tail)
