"""Figures for fitted skhier estimators (matplotlib only).

Every function takes a fitted estimator (or posterior draws) and returns the
matplotlib ``Figure`` it drew on, so scripts can save or further decorate it.
These functions use the estimators only through their public attributes
and methods.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_line_fit", "plot_corner", "plot_trace"]


def _new_axes(ax, figsize=(6, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def plot_line_fit(
    estimator, X, y, *, y_err=None, X_err=None, ax=None, band=(0.05, 0.95), labels=None
):
    """Data, posterior median line, credible band and outlier probabilities.

    Parameters
    ----------
    estimator : fitted RobustLineMixture with one feature
    X : array-like of shape (n_samples, 1)
    y : array-like of shape (n_samples,)
    y_err, X_err : array-like, optional
        Error bars to draw (and used for the outlier probabilities of the
        points).
    ax : matplotlib Axes, optional
    band : (float, float), default=(0.05, 0.95)
        Quantiles of the posterior trend drawn as a shaded band.
    labels : sequence of str, optional
        Text drawn next to each point (e.g. the table's ID column).

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from skhier import RobustLineMixture
    >>> from skhier.datasets import load_hogg2010
    >>> from skhier.plotting import plot_line_fit
    >>> d = load_hogg2010()
    >>> model = RobustLineMixture(random_state=0, n_steps=400).fit(d.X, d.y, y_err=d.y_err)
    >>> fig = plot_line_fit(model, d.X, d.y, y_err=d.y_err)
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"plot_line_fit draws lines: X must have shape (n, 1), got {X.shape}.")
    fig, ax = _new_axes(ax)
    x = X[:, 0]
    span = np.ptp(x) if np.ptp(x) > 0 else 1.0
    grid = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 200)
    draws = estimator.sample_posterior(min(1000, estimator.n_draws_), random_state=0)
    trend = draws["coef"][:, 0][:, None] * grid + draws["intercept"][:, None]
    lo, med, hi = np.quantile(trend, [band[0], 0.5, band[1]], axis=0)
    ax.fill_between(grid, lo, hi, color="C0", alpha=0.25,
                    label=f"{round(100 * (band[1] - band[0]))}% credible band")
    ax.plot(grid, med, color="C0", lw=2, label="posterior median line")
    proba = estimator.predict_membership_proba(
        X, y, y_err=y_err, X_err=None if X_err is None else np.reshape(X_err, (-1, 1))
    )[:, 1]
    xerr = None if X_err is None else np.ravel(X_err)
    ax.errorbar(x, y, yerr=y_err, xerr=xerr, fmt="none", ecolor="0.6", zorder=1)
    sc = ax.scatter(x, y, c=proba, cmap="coolwarm", vmin=0, vmax=1, s=36,
                    edgecolor="k", zorder=2)
    fig.colorbar(sc, ax=ax, label="posterior outlier probability")
    if labels is not None:
        for xi, yi, lab in zip(x, y, labels, strict=True):
            ax.annotate(str(lab), (xi, yi), xytext=(4, 4), textcoords="offset points",
                        fontsize=7)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize=8)
    return fig


def _as_columns(samples, params):
    cols, names = [], []
    for name in params:
        v = np.asarray(samples[name])
        if v.ndim == 1:
            cols.append(v)
            names.append(name)
        else:
            v = v.reshape(len(v), -1)
            for j in range(v.shape[1]):
                cols.append(v[:, j])
                names.append(f"{name}[{j}]")
    return np.column_stack(cols), names


def plot_corner(samples, params=None, *, truths=None, bins=40, fig=None):
    """Corner plot: 1-D histograms on the diagonal, 2-D histograms below.

    Parameters
    ----------
    samples : dict of arrays or fitted estimator
        Posterior draws (``estimator.posterior_`` is used for an estimator).
    params : list of str, optional
        Which entries to show (default: all entries of ``samples``).
    truths : dict, optional
        Values to mark (e.g. the truth of a simulation).
    bins : int, default=40
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skhier.plotting import plot_corner
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_corner({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    >>> len(fig.axes)
    4
    """
    import matplotlib.pyplot as plt

    if hasattr(samples, "posterior_"):
        samples = samples.posterior_
    params = list(samples) if params is None else list(params)
    data, names = _as_columns(samples, params)
    truth_vals = None
    if truths is not None:
        truth_vals, _ = _as_columns({k: np.atleast_1d(truths[k])[None] for k in params}, params)
        truth_vals = truth_vals[0]
    k = data.shape[1]
    if fig is None:
        fig = plt.figure(figsize=(2.2 * k, 2.2 * k), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(data[:, i], bins=bins, color="C0", histtype="stepfilled", alpha=0.6)
                q = np.quantile(data[:, i], [0.16, 0.5, 0.84])
                for v in q:
                    ax.axvline(v, color="k", lw=0.8, ls="--")
                ax.set_title(f"{names[i]} = {q[1]:.3g} +{q[2] - q[1]:.2g} -{q[1] - q[0]:.2g}",
                             fontsize=8)
                ax.set_yticks([])
            else:
                ax.hist2d(data[:, j], data[:, i], bins=bins, cmap="Blues")
            if truth_vals is not None:
                ax.axvline(truth_vals[j], color="C3", lw=1)
                if i != j:
                    ax.axhline(truth_vals[i], color="C3", lw=1)
            if i == k - 1:
                ax.set_xlabel(names[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    return fig


def plot_trace(estimator, *, fig=None):
    """Walker traces of every sampled coordinate (emcee estimators).

    Parameters
    ----------
    estimator : fitted estimator with ``chain_`` and ``sampled_param_names_``
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib.pyplot as plt

    chain = np.asarray(estimator.chain_)
    names = list(estimator.sampled_param_names_)
    k = chain.shape[2]
    if fig is None:
        fig = plt.figure(figsize=(7, 1.4 * k + 0.5), layout="constrained")
    axes = fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0]
    for j, ax in enumerate(axes):
        ax.plot(chain[:, :, j], color="k", alpha=0.15, lw=0.5)
        tau = estimator.autocorr_time_.get(names[j], np.nan)
        ax.set_ylabel(names[j], fontsize=8)
        ax.set_title(f"tau = {tau:.1f} steps", fontsize=7, loc="right")
    axes[-1].set_xlabel("kept step")
    return fig
