"""Figures for fitted skhier estimators (matplotlib only).

Every function takes a fitted estimator (or posterior draws) and returns the
matplotlib ``Figure`` it drew on, so scripts can save or further decorate it.
These functions use the estimators only through their public attributes
and methods.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "plot_line_fit",
    "plot_corner",
    "plot_trace",
    "plot_cluster_distance",
    "plot_gmm_density",
    "plot_population_density",
    "plot_posterior_predictive",
]


def _new_axes(ax, figsize=(6, 4.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def _check_fitted(estimator, params, func, expected):
    """NotFittedError (a ValueError) if unfitted, TypeError if of the wrong kind."""
    check_is_fitted(estimator, "posterior_")
    missing = [p for p in params if p not in estimator.posterior_]
    if missing:
        raise TypeError(
            f"{func} needs a fitted {expected}; {type(estimator).__name__} has no "
            f"posterior draws of {missing}."
        )


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
    _check_fitted(estimator, ("coef", "intercept"), "plot_line_fit", "RobustLineMixture")
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


#: Most columns of a default corner plot of an estimator.
MAX_CORNER_COLUMNS = 8


def _default_corner_columns(estimator):
    """Scalar and vector parameters of a fitted estimator, at most MAX_CORNER_COLUMNS.

    Matrix-valued draws (component means, covariances) are left out; mixture
    weights are shown for the components that hold at least 2 % of the
    weight (of a sparse ``BayesianGMM``, the occupied ones).
    """
    cols, names = [], []
    for name, draws in estimator.posterior_.items():
        v = np.asarray(draws, dtype=float)
        if v.ndim == 1:
            cols.append(v)
            names.append(name)
        elif v.ndim == 2:
            keep = range(v.shape[1])
            if name == "weights":
                keep = np.flatnonzero(v.mean(axis=0) >= 0.02)
            for j in keep:
                cols.append(v[:, j])
                label = _feature_label(estimator, j, str(j)) if name == "coef" else str(j)
                names.append(f"{name}[{label}]")
    cols, names = cols[:MAX_CORNER_COLUMNS], names[:MAX_CORNER_COLUMNS]
    return np.column_stack(cols), names


def plot_corner(samples, params=None, *, truths=None, bins=40, fig=None):
    """Corner plot: 1-D histograms on the diagonal, 2-D histograms below.

    Parameters
    ----------
    samples : dict of arrays or fitted estimator
        Posterior draws (``estimator.posterior_`` is used for an estimator).
    params : list of str, optional
        Which entries to show. Default: all entries of a dict; for an
        estimator, its scalar and vector parameters (for ``BayesianGMM``,
        the weights of components holding at least 2 % of the weight, and
        ``n_occupied``), at most 8 columns.
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

    estimator = None
    if hasattr(samples, "get_params"):  # an estimator
        check_is_fitted(samples, "posterior_")
        estimator, samples = samples, samples.posterior_
    if not isinstance(samples, dict):
        raise TypeError(
            "samples must be a dict of posterior draws or a fitted estimator, got "
            f"{type(samples).__name__}."
        )
    if params is None and estimator is not None and truths is None:
        data, names = _default_corner_columns(estimator)
        params = None
    else:
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


def plot_trace(estimator, params=None, *, max_rows=12, fig=None):
    """Traces of the posterior draws, chain by chain, in the data's units.

    One row per scalar parameter, named as in ``summary()`` (vector
    parameters get one row per element, ``coef[0]``; with a DataFrame fit,
    ``coef[<column name>]``); every emcee walker or Gibbs chain is one line
    against the kept step, and each row's title gives its effective sample
    size. After importance sampling there is one sequence of independent
    draws.

    Parameters
    ----------
    estimator : fitted skhier estimator (any, ``BayesianGMM`` included)
    params : list of str, optional
        Keys of ``posterior_`` to show. Default: every scalar or vector
        parameter (for ``BayesianGMM``: ``weights`` and ``n_occupied``;
        pass ``["means"]`` for the component means).
    max_rows : int, default=12
        At most this many rows are drawn (the title says when rows are left
        out).
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from skhier import RobustLineMixture
    >>> from skhier.datasets import load_hogg2010
    >>> from skhier.plotting import plot_trace
    >>> d = load_hogg2010()
    >>> est = RobustLineMixture(random_state=0, n_steps=400).fit(d.X, d.y, y_err=d.y_err)
    >>> fig = plot_trace(est, ["coef", "intercept"])
    >>> fig.axes[0].get_ylabel()
    'coef[0]'
    """
    import matplotlib.pyplot as plt

    from .diagnostics import effective_sample_size

    check_is_fitted(estimator, "posterior_")
    post = estimator.posterior_
    if not hasattr(estimator, "_draws_by_chain"):
        raise TypeError(f"plot_trace needs a skhier estimator, got {type(estimator).__name__}.")
    if params is None:
        params = [name for name, v in post.items() if np.ndim(v) <= 2]
    elif isinstance(params, str):
        params = [params]
    unknown = [p for p in params if p not in post]
    if unknown:
        raise ValueError(f"params {unknown} are not posterior parameters; choose from {list(post)}.")
    rows = []
    for name in params:
        draws = np.asarray(post[name], dtype=float)
        shape = draws.shape[1:]
        chains = estimator._draws_by_chain(draws)
        flat = chains.reshape(chains.shape[0], chains.shape[1], -1)  # (chain, step, element)
        ess = effective_sample_size(flat.swapaxes(0, 1))
        for j in range(flat.shape[2]):
            if not shape:
                label = name
            elif name == "coef" and len(shape) == 1:
                label = f"coef[{_feature_label(estimator, j, str(j))}]"
            else:
                label = f"{name}[{', '.join(str(int(i)) for i in np.unravel_index(j, shape))}]"
            rows.append((label, flat[:, :, j], float(np.ravel(ess)[j])))
    n_rows = len(rows)
    rows = rows[:max_rows]
    k = len(rows)
    if fig is None:
        fig = plt.figure(figsize=(7, 1.4 * k + 0.5), layout="constrained")
    axes = fig.subplots(k, 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, trace, ess_j) in zip(axes, rows, strict=True):
        ax.plot(trace.T, color="k", alpha=0.15, lw=0.5)
        ax.set_ylabel(label, fontsize=8)
        ax.set_title(f"ESS = {ess_j:.0f}", fontsize=7, loc="right")
    axes[-1].set_xlabel("kept step")
    if n_rows > k:
        fig.suptitle(f"first {k} of {n_rows} rows (choose with params=)", fontsize=8)
    return fig


def _feature_label(estimator, j, default):
    names = getattr(estimator, "feature_names_in_", None)
    return str(names[j]) if names is not None else default


def plot_cluster_distance(
    estimator, X, X_err=None, *, truth=None, interval=(0.16, 0.84), n_draws=300,
    random_state=0, fig=None,
):
    """Cluster distance posterior and every star's posterior distance.

    Left panel: posterior draws of the cluster's mean distance ``mu_r`` and
    depth ``sigma_r``. Right panel: each training star's posterior median
    distance (``distance_``) with its posterior interval, against the naive
    ``1000 / parallax``, with the posterior median ``mu_r`` as a dashed
    line. Members are pulled towards the cluster (shrinkage). When the
    estimator models field stars, the points are coloured by their
    membership probability (with a colour bar).

    Parameters
    ----------
    estimator : fitted HierarchicalDistanceEstimator
    X : array-like of shape (n_samples, n_features)
        The parallaxes (mas, column 0) the estimator was fitted on; stars
        with a non-positive parallax have no ``1000 / parallax`` and are
        left out of the right panel (their number is given in its title).
    X_err : array-like of shape (n_samples,) or (n_samples, n_features), optional
        Parallax errors (mas, column 0). When given, horizontal bars show
        the image ``1000 / (parallax ± error)`` of each star's 1-sigma
        parallax interval (only where ``parallax - error > 0``): the
        distance a star's own parallax allows, against the vertical
        posterior interval that the population narrows.
    truth : (float, float), optional
        True ``(mu_r, sigma_r)`` of a simulation, marked with a cross.
    interval : (float, float), default=(0.16, 0.84)
        Quantiles of each star's posterior distance drawn as error bars.
    n_draws : int, default=300
        Joint posterior draws (``sample_posterior``) used for the per-star
        intervals.
    random_state : int, default=0
        Seeds the choice of those draws (the figure is deterministic).
    fig : matplotlib Figure, optional
        Figure to draw the two panels on.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from skhier import HierarchicalDistanceEstimator
    >>> from skhier.datasets import make_cluster_parallaxes
    >>> from skhier.plotting import plot_cluster_distance
    >>> d = make_cluster_parallaxes(25, mean_distance=500, distance_dispersion=8,
    ...                             cluster_fraction=0.8, field_length_scale=1350,
    ...                             parallax_error=0.1, random_state=0)
    >>> est = HierarchicalDistanceEstimator(field="edsd", field_length_scale=1350,
    ...                                     random_state=0).fit(d.X, X_err=d.X_err)
    >>> fig = plot_cluster_distance(est, d.X, d.X_err, n_draws=50)
    >>> len(fig.axes)  # two panels and the membership colour bar
    3
    """
    import matplotlib.pyplot as plt

    _check_fitted(estimator, ("mean_distance", "distance_dispersion"),
                  "plot_cluster_distance", "HierarchicalDistanceEstimator")
    n_train = len(estimator.distance_)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] != n_train:
        raise ValueError(
            "X must be the parallaxes the estimator was fitted on, shape "
            f"({n_train}, n_features); got {X.shape}."
        )
    plx = X[:, 0]
    err = None
    if X_err is not None:
        err = np.asarray(X_err, dtype=float)
        err = err[:, 0] if err.ndim == 2 else err
        if err.shape != (n_train,):
            raise ValueError(
                f"X_err must have shape ({n_train},) or ({n_train}, n_features), "
                f"got {np.shape(X_err)}."
            )
    post = estimator.posterior_
    with_field = "cluster_fraction" in post

    if fig is None:
        fig = plt.figure(figsize=(10, 4.2), layout="constrained")
    ax0, ax1 = fig.subplots(1, 2)

    # Left: the population posterior (at most 2000 points).
    mu, sd = np.asarray(post["mean_distance"]), np.asarray(post["distance_dispersion"])
    step = max(1, len(mu) // 2000)
    ax0.plot(mu[::step], sd[::step], ".", ms=2, alpha=0.3, color="C0")
    if truth is not None:
        ax0.plot(truth[0], truth[1], "x", color="k", ms=10, mew=2, label="truth")
        ax0.legend(loc="upper right", fontsize=8)
    ax0.set_xlabel(r"mean distance $\mu_r$ [pc]")
    ax0.set_ylabel(r"depth $\sigma_r$ [pc]")
    ax0.set_title("cluster posterior", fontsize=10)

    # Right: per-star posterior distances against 1000 / parallax.
    r = estimator.sample_posterior(n_draws, random_state=random_state)["r"]
    lo, hi = np.quantile(r, interval, axis=0)
    med = np.asarray(estimator.distance_)
    shown = plx > 0
    naive = 1000.0 / plx[shown]
    if with_field:
        member = estimator.membership_proba_[shown, 0]
        order = np.argsort(member)  # members drawn on top
    else:
        member = None
        order = np.arange(shown.sum())
    m, low, high, x = med[shown][order], lo[shown][order], hi[shown][order], naive[order]
    xerr = None
    if err is not None:
        p, e = plx[shown][order], err[shown][order]
        ok = p - e > 0
        xerr = np.zeros((2, len(p)))
        xerr[0, ok] = x[ok] - 1000.0 / (p[ok] + e[ok])
        xerr[1, ok] = 1000.0 / (p[ok] - e[ok]) - x[ok]
    ax1.errorbar(x, m, yerr=[np.clip(m - low, 0, None), np.clip(high - m, 0, None)], xerr=xerr,
                 fmt="none", ecolor="0.7", lw=0.6, zorder=1)
    if with_field:
        sc = ax1.scatter(x, m, c=member[order], cmap="viridis", vmin=0, vmax=1, s=14,
                         zorder=2)
        fig.colorbar(sc, ax=ax1, label="membership probability")
    else:
        ax1.scatter(x, m, color="C0", s=14, zorder=2)
    ax1.axhline(np.median(mu), color="k", lw=0.8, ls="--",
                label=r"posterior median $\mu_r$")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel(r"1000 / parallax [pc]")
    ax1.set_ylabel("posterior distance [pc]")
    n_hidden = int(np.sum(~shown))
    title = f"per-star distances, {round(100 * (interval[1] - interval[0]))}% intervals"
    if n_hidden:
        title += f"\n({n_hidden} stars with parallax <= 0 not shown)"
    ax1.set_title(title, fontsize=9)
    ax1.legend(loc="upper left", fontsize=8)
    return fig


def _gmm_dims(estimator, dims):
    d = estimator.n_features_in_
    if dims is None:
        dims = (0,) if d == 1 else (0, 1)
    dims = tuple(int(j) for j in np.atleast_1d(dims))
    if len(dims) not in (1, 2) or len(set(dims)) != len(dims) or not all(0 <= j < d for j in dims):
        raise ValueError(
            f"dims must be one or two distinct feature indices in [0, {d}), got {dims}."
        )
    return dims


def _ellipse(mean, cov, n_sigma, **kw):
    """Patch of the contour (x - mean)^T cov^-1 (x - mean) = n_sigma^2."""
    from matplotlib.patches import Ellipse

    evals, evecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(evecs[1, 1], evecs[0, 1]))
    width, height = 2.0 * n_sigma * np.sqrt(np.clip(evals[::-1], 0.0, None))
    return Ellipse(tuple(mean), width, height, angle=angle, **kw)


def plot_gmm_density(
    estimator, X, *, X_err=None, X_cov=None, dims=None, grid=None, level=0.9, n_draws=300,
    bins="auto", n_sigma=(1.0, 2.0), n_ellipse_draws=0, min_weight=0.01, random_state=0,
    ax=None,
):
    """Posterior density of a fitted BayesianGMM, over the data.

    One feature (``dims`` of length 1): a histogram of the data, the
    posterior predictive density (the posterior mean of the mixture
    density) and a pointwise credible band of the density over a grid.
    Two features: the data points coloured by their most probable component
    and, for every component with posterior mean weight at least
    ``min_weight``, the ``n_sigma`` contours of its posterior-mean Gaussian
    (optionally also the 1-sigma contours of ``n_ellipse_draws`` posterior
    draws, which show the uncertainty of each component). For more
    features, ``dims`` selects the marginal that is drawn.

    Parameters
    ----------
    estimator : fitted BayesianGMM
    X : array-like of shape (n_samples, n_features)
        Data to draw (usually the training data).
    X_err, X_cov : array-like, optional
        Measurement errors of X, used to assign each point to a component
        (2-D plot). When the model was fitted with errors, its components
        (and the 1-D density) describe the error-free distribution, which
        is narrower than the histogram of the noisy data.
    dims : int or (int, int), optional
        Features to draw: default ``(0,)`` for one feature, ``(0, 1)``
        otherwise. Marginals of a Gaussian mixture are mixtures of the
        marginal Gaussians, so any one or two features can be drawn.
    grid : array-like, optional
        Grid of the 1-D density (default: 300 points over the data range,
        widened by 10 %).
    level : float, default=0.9
        Probability content of the pointwise credible band (1-D).
    n_draws : int, default=300
        Posterior draws used for the 1-D density and band.
    bins : int or str, default="auto"
        Histogram bins (1-D).
    n_sigma : sequence of float, default=(1, 2)
        Mahalanobis radii of the contours of each component (2-D).
    n_ellipse_draws : int, default=0
        Posterior draws whose 1-sigma contours are also drawn, thin (2-D).
    min_weight : float, default=0.01
        Components with a smaller posterior mean weight are not drawn (2-D):
        with a sparse prior they are empty, and their draws are prior draws.
    random_state : int, default=0
        Seeds the choice of posterior draws.
    ax : matplotlib Axes, optional

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import BayesianGMM
    >>> from skhier.plotting import plot_gmm_density
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (80, 2))])
    >>> gmm = BayesianGMM(n_components=4, n_chains=2, n_iter=200, n_burn=100,
    ...                   random_state=0).fit(X)
    >>> fig = plot_gmm_density(gmm, X)
    >>> len(fig.axes[0].patches)  # two occupied components x (1, 2) sigma
    4
    >>> fig = plot_gmm_density(gmm, X, dims=0)  # marginal density of feature 0
    >>> fig.axes[0].get_ylabel()
    'density'
    """
    _check_fitted(estimator, ("weights", "means", "covariances"), "plot_gmm_density",
                  "BayesianGMM")
    dims = _gmm_dims(estimator, dims)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X must have shape (n_samples, {estimator.n_features_in_}), got {X.shape}."
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    fig, ax = _new_axes(ax)
    post = estimator.posterior_
    rng = np.random.default_rng(random_state)
    T = len(post["weights"])

    if len(dims) == 1:
        j = dims[0]
        x = X[:, j]
        if grid is None:
            pad = 0.1 * (np.ptp(x) or 1.0)
            grid = np.linspace(x.min() - pad, x.max() + pad, 300)
        grid = np.asarray(grid, dtype=float).ravel()
        idx = rng.choice(T, min(n_draws, T), replace=False)
        w = post["weights"][idx]
        mu = post["means"][idx, :, j]
        var = post["covariances"][idx, :, j, j]
        # Mixture density of every draw on the grid, (draws, grid), summed
        # over components one at a time to bound the memory.
        dens = np.zeros((len(idx), len(grid)))
        for k in range(w.shape[1]):
            z = (grid[None, :] - mu[:, k, None]) ** 2 / var[:, k, None]
            dens += w[:, k, None] * np.exp(-0.5 * z) / np.sqrt(2.0 * np.pi * var[:, k, None])
        q = 0.5 * (1.0 - level)
        lower, upper = np.quantile(dens, [q, 1.0 - q], axis=0)
        ax.hist(x, bins=bins, density=True, color="0.82", label=f"data ({len(x)} points)")
        ax.fill_between(grid, lower, upper, color="C0", alpha=0.3,
                        label=f"{round(100 * level)}% credible band")
        ax.plot(grid, dens.mean(axis=0), color="C0", lw=2,
                label="posterior predictive density")
        ax.set_xlabel(_feature_label(estimator, j, f"feature {j}"))
        ax.set_ylabel("density")
        ax.legend(loc="best", fontsize=8)
        return fig

    a, b = dims
    labels = estimator.predict(X, X_err=X_err, X_cov=X_cov)
    colors = np.array([f"C{k % 10}" for k in range(estimator.n_components)])
    ax.scatter(X[:, a], X[:, b], c=colors[labels], s=8, alpha=0.6, lw=0)
    sub = np.ix_(dims, dims)
    shown = np.flatnonzero(estimator.weights_ >= min_weight)
    draw_idx = rng.choice(T, min(n_ellipse_draws, T), replace=False) if n_ellipse_draws else []
    for k in shown:
        col = colors[k]
        for t in draw_idx:
            ax.add_patch(_ellipse(post["means"][t, k, list(dims)], post["covariances"][t, k][sub],
                                  1.0, fill=False, ec=col, lw=0.4, alpha=0.3))
        for s in n_sigma:
            ax.add_patch(_ellipse(estimator.means_[k, list(dims)], estimator.covariances_[k][sub],
                                  s, fill=False, ec=col, lw=1.5))
        ax.plot(*estimator.means_[k, list(dims)], "x", color="k", ms=7,
                label=f"component {k}: weight {estimator.weights_[k]:.2f}")
    ax.set_xlabel(_feature_label(estimator, a, f"feature {a}"))
    ax.set_ylabel(_feature_label(estimator, b, f"feature {b}"))
    ax.set_title(
        "posterior-mean components, " + "/".join(f"{s:g}" for s in n_sigma) + " sigma",
        fontsize=9,
    )
    ax.legend(loc="best", fontsize=7)
    ax.autoscale_view()
    return fig


def plot_population_density(
    estimator, X=None, *, grid=None, level=0.9, dim=0, bins="auto", ax=None
):
    """Posterior population density with its credible band.

    Draws the pointwise posterior median of the population density
    ``p(theta | alpha)`` and its credible band, computed by the estimator's
    ``population_density`` method, optionally over a histogram of the
    measurements (``PopulationModel``) or of each object's posterior median
    (``PosteriorSamplesPopulation``). The histogram is of noisy values, so
    it is wider than the population when the errors are not small: that
    difference is what the model deconvolves.

    Parameters
    ----------
    estimator : fitted PopulationModel or PosteriorSamplesPopulation
    X : array-like, optional
        The data (as passed to ``fit``) to histogram.
    grid : array-like of shape (n_grid,), optional
        Values of theta. Default: the estimator's default grid (the range
        of its training data widened by 10 %, cut to the support; see
        ``population_density``).
    level : float, default=0.9
        Probability content of the pointwise band.
    dim : int, default=0
        Coordinate of theta (``PosteriorSamplesPopulation`` with
        ``n_dims > 1``).
    bins : int or str, default="auto"
        Histogram bins.
    ax : matplotlib Axes, optional

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from skhier import PopulationModel
    >>> from skhier.datasets import load_eight_schools
    >>> from skhier.plotting import plot_population_density
    >>> data = load_eight_schools()
    >>> model = PopulationModel(random_state=0).fit(data.X, X_err=data.X_err)
    >>> fig = plot_population_density(model, data.X)
    >>> len(fig.axes[0].lines), len(fig.axes[0].collections)
    (1, 1)
    """
    from ._samples_population import PosteriorSamplesPopulation

    check_is_fitted(estimator, "posterior_")
    if not hasattr(estimator, "population_density"):
        raise TypeError(
            "plot_population_density needs a fitted PopulationModel or "
            f"PosteriorSamplesPopulation; {type(estimator).__name__} has no "
            "population_density method."
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    values = None
    if X is not None:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
            raise ValueError(
                f"X must have shape (n_samples, {estimator.n_features_in_}), got {X.shape}."
            )
    # The data to histogram: measurements, or each object's posterior median
    # (PosteriorSamplesPopulation: X holds every object's samples).
    kwargs = {}
    if isinstance(estimator, PosteriorSamplesPopulation):
        kwargs["dim"] = dim
        if X is not None:
            values = np.median(X[:, dim::estimator.n_dims], axis=1)
        hist_label = f"per-object posterior medians ({len(values) if values is not None else 0})"
    else:
        if X is not None:
            values = X[:, 0]
        hist_label = f"measurements ({len(values) if values is not None else 0})"
    band = estimator.population_density(grid, level=level, **kwargs)
    grid, median, lower, upper = band.grid, band.median, band.lower, band.upper
    fig, ax = _new_axes(ax)
    if values is not None:
        ax.hist(values, bins=bins, density=True, color="0.82", label=hist_label)
    ax.fill_between(grid, lower, upper, color="C0", alpha=0.3,
                    label=f"{round(100 * level)}% credible band")
    ax.plot(grid, median, color="C0", lw=2, label="posterior median density")
    # A bounded population (Beta with a parameter < 1) has an integrable
    # density that diverges at an edge, and the band's upper edge can reach
    # hundreds there: scale the axis to the bulk of the curve instead, so the
    # shape stays visible (the spike is clipped, not hidden: it runs off the top).
    top = 1.3 * float(np.nanpercentile(np.where(np.isfinite(upper), upper, np.nan), 90))
    if values is not None:
        top = max(top, 1.05 * max(p.get_height() for p in ax.patches))
    if np.nanmax(np.where(np.isfinite(upper), upper, np.nan)) > top:
        ax.set_ylim(0, top)
    if isinstance(estimator, PosteriorSamplesPopulation):
        ax.set_xlabel("true value" if estimator.n_dims == 1 else f"true value [{dim}]")
    else:
        ax.set_xlabel(f"true {_feature_label(estimator, 0, 'value')}")
    ax.set_ylabel("population density")
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_posterior_predictive(estimator, *, var_name=None, feature=0, n_replicates=50, bins=30,
                              ax=None, random_state=None):
    """Histogram of the data over histograms of replicated data sets.

    A posterior predictive check: each thin line is the histogram of one
    data set replicated from the posterior (see
    ``estimator.sample_posterior_predictive``, measurement errors included),
    the thick line that of the training data (``estimator.observed_data()``).
    Data the model could have produced sit inside the band of replicates.

    Parameters
    ----------
    estimator : fitted estimator with ``sample_posterior_predictive``
    var_name : str, default=None
        Replicated variable to plot (``"y"``, ``"X"``, ``"parallax"``,
        ``"theta_hat"``); default the first one the estimator replicates
        (``"y"`` for a line fit).
    feature : int, default=0
        Column of a multi-column variable (``X`` with several features).
    n_replicates : int, default=50
    bins : int, default=30
        Number of bins over the range of the data and the replicates.
    ax : matplotlib Axes, default=None
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from skhier import PopulationModel
    >>> from skhier.plotting import plot_posterior_predictive
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(1.0, 0.5, size=(60, 1))
    >>> est = PopulationModel(random_state=0).fit(x, X_err=np.full(60, 0.2))
    >>> ax = plot_posterior_predictive(est, random_state=0)
    """
    check_is_fitted(estimator, "posterior_")
    reps = estimator.sample_posterior_predictive(n_replicates, random_state=random_state)
    name = next(iter(reps)) if var_name is None else var_name
    if name not in reps:
        raise ValueError(f"var_name must be one of {sorted(reps)}, got {name!r}.")
    observed = np.asarray(estimator.observed_data()[name])
    rep = reps[name]
    label = name
    if observed.ndim > 1:
        if not 0 <= feature < observed.shape[1]:
            raise ValueError(f"feature must be in [0, {observed.shape[1]}), got {feature}.")
        observed, rep = observed[:, feature], rep[:, :, feature]
        label = f"{name}[:, {feature}]" if reps[name].shape[-1] > 1 else name
    rep = rep.reshape(n_replicates, -1)
    lo, hi = np.quantile(np.concatenate([observed, rep.ravel()]), [0.001, 0.999])
    edges = np.linspace(min(lo, observed.min()), max(hi, observed.max()), bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = _new_axes(ax)
    for r in rep:
        ax.plot(centres, np.histogram(r, edges, density=True)[0], color="C0", alpha=0.15, lw=1)
    ax.plot(centres, np.histogram(observed, edges, density=True)[0], color="k", lw=2, label="data")
    ax.plot([], [], color="C0", alpha=0.5, label=f"{n_replicates} replicated data sets")
    ax.set_xlabel(label)
    ax.set_ylabel("density")
    ax.legend()
    return ax
