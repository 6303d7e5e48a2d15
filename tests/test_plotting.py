"""Tests of skhier.plotting: every function rendered with the Agg backend.

Each figure is checked for the artists it must contain (lines, bands,
ellipses, colour bars, labels), for the values it draws where those can be
computed independently (the GMM predictive density with scipy, ellipse
contours as Mahalanobis radii, per-star distances), for respecting a passed
``ax``/``fig``, and for clear errors on unfitted estimators and bad input.
The fits are short (FAST settings) and shared at module scope.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse, Rectangle  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from skhier import (  # noqa: E402
    BayesianGMM,
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)
from skhier.datasets import (  # noqa: E402
    load_eight_schools,
    make_cluster_parallaxes,
    make_line_with_outliers,
)
from skhier.plotting import (  # noqa: E402
    plot_cluster_distance,
    plot_corner,
    plot_gmm_density,
    plot_line_fit,
    plot_population_density,
    plot_trace,
)

from .helpers import FAST  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::skhier.PriorBoundWarning" if hasattr(__import__("skhier"), "PriorBoundWarning")
    else "ignore::UserWarning",
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------
# Shared fits
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def line():
    d = make_line_with_outliers(25, random_state=3)
    est = RobustLineMixture(sampler="emcee", random_state=0, **FAST).fit(d.X, d.y, y_err=d.y_err)
    return est, d


@pytest.fixture(scope="module")
def cluster_data():
    return make_cluster_parallaxes(
        40, mean_distance=500.0, distance_dispersion=8.0, cluster_fraction=0.75,
        field_length_scale=1350.0, parallax_error=0.15, random_state=1,
    )


@pytest.fixture(scope="module")
def cluster_field(cluster_data):
    d = cluster_data
    return HierarchicalDistanceEstimator(
        field="edsd", field_length_scale=1350.0, random_state=0
    ).fit(d.X, X_err=d.X_err)


@pytest.fixture(scope="module")
def cluster_no_field(cluster_data):
    d = cluster_data
    return HierarchicalDistanceEstimator(random_state=0).fit(d.X, X_err=d.X_err)


@pytest.fixture(scope="module")
def gmm1d():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, (80, 1)), rng.normal(3, 0.7, (60, 1))])
    est = BayesianGMM(n_components=3, n_chains=2, n_iter=120, n_burn=60, random_state=0).fit(X)
    return est, X


@pytest.fixture(scope="module")
def gmm2d():
    rng = np.random.default_rng(1)
    X = np.concatenate([
        rng.multivariate_normal([-4.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], 100),
        rng.multivariate_normal([4.0, 2.0], [[0.5, -0.2], [-0.2, 1.5]], 70),
    ])
    est = BayesianGMM(n_components=4, n_chains=2, n_iter=120, n_burn=60, random_state=0).fit(X)
    return est, X


@pytest.fixture(scope="module")
def schools():
    data = load_eight_schools()
    return PopulationModel(random_state=0).fit(data.X, X_err=data.X_err), data


@pytest.fixture(scope="module")
def samples_pop():
    rng = np.random.default_rng(2)
    obs = rng.normal(5.0, 1.0, 60) + rng.normal(0.0, 0.5, 60)
    X = obs[:, None] + 0.5 * rng.standard_normal((60, 50))
    est = PosteriorSamplesPopulation(random_state=0, **FAST).fit(X)
    return est, X


def _fill_betweens(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _hist_bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# ---------------------------------------------------------------------------
# plot_line_fit, plot_corner, plot_trace
# ---------------------------------------------------------------------------
def test_line_fit_artists(line):
    est, d = line
    fig = plot_line_fit(est, d.X, d.y, y_err=d.y_err, labels=range(len(d.y)))
    assert isinstance(fig, Figure)
    ax, cbar = fig.axes  # the plot and the outlier-probability colour bar
    assert cbar.get_ylabel() == "posterior outlier probability"
    assert len(ax.lines) == 1 and len(_fill_betweens(ax)) == 1
    # The scatter carries one point per datum, coloured by outlier probability.
    sc = [c for c in ax.collections if c.get_offsets().shape == (len(d.y), 2)]
    np.testing.assert_allclose(
        sc[-1].get_array(), est.predict_membership_proba(d.X, d.y, y_err=d.y_err)[:, 1]
    )
    assert len(ax.texts) == len(d.y)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")


def test_line_fit_uses_given_axes_and_rejects_bad_input(line):
    est, d = line
    fig, ax = plt.subplots()
    assert plot_line_fit(est, d.X, d.y, y_err=d.y_err, ax=ax) is fig
    assert len(ax.lines) == 1
    with pytest.raises(ValueError, match="shape"):
        plot_line_fit(est, np.hstack([d.X, d.X]), d.y)
    with pytest.raises(NotFittedError):
        plot_line_fit(RobustLineMixture(), d.X, d.y)


def test_corner_from_estimator_and_dict(line):
    est, _ = line
    fig = plot_corner(est, ["intercept", "scatter"], truths={"intercept": 1.0, "scatter": 0.5})
    assert isinstance(fig, Figure)
    axes = np.array(fig.axes).reshape(2, 2)
    assert not axes[0, 1].get_visible()
    assert axes[1, 0].get_xlabel() == "intercept" and axes[1, 0].get_ylabel() == "scatter"
    # Diagonal: median and 16/84 % quantiles (dashed) and the truth line.
    assert len(axes[0, 0].lines) == 4
    given = plt.figure()
    assert plot_corner({"a": np.arange(10.0)}, fig=given) is given
    with pytest.raises(NotFittedError):
        plot_corner(RobustLineMixture())
    with pytest.raises(TypeError, match="dict of posterior draws"):
        plot_corner(np.zeros((10, 2)))


def test_trace(line, gmm1d):
    est, _ = line
    fig = plot_trace(est)
    n_steps, n_walkers, _ = est.chain_.shape
    # User-facing parameters in data units, as in summary(), not the sampler's
    # standardised coordinates (coef[0] ~ 1.25 there for a slope of 2.23).
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == list(est.summary().index)
    for ax in fig.axes:
        assert len(ax.lines) == n_walkers and len(ax.lines[0].get_xdata()) == n_steps
    coef_lines = fig.axes[labels.index("coef[0]")].lines
    med = np.median(np.concatenate([ln.get_ydata() for ln in coef_lines]))
    np.testing.assert_allclose(med, est.coef_[0], rtol=1e-12)
    assert fig.axes[-1].get_xlabel() == "kept step"
    # BayesianGMM (Gibbs chains) works too; a long parameter list is capped.
    gfig = plot_trace(gmm1d[0], max_rows=3)
    assert [ax.get_ylabel() for ax in gfig.axes] == ["weights[0]", "weights[1]", "weights[2]"]
    assert "first 3 of" in gfig._suptitle.get_text()
    with pytest.raises(ValueError, match="not posterior parameters"):
        plot_trace(est, ["slope"])
    with pytest.raises(NotFittedError):
        plot_trace(RobustLineMixture())


# ---------------------------------------------------------------------------
# plot_cluster_distance
# ---------------------------------------------------------------------------
def test_cluster_distance_with_field(cluster_field, cluster_data):
    est, d = cluster_field, cluster_data
    fig = plot_cluster_distance(est, d.X, d.X_err, truth=(500.0, 8.0), n_draws=100)
    assert isinstance(fig, Figure)
    ax0, ax1, cbar = fig.axes
    assert cbar.get_ylabel() == "membership probability"
    assert "mu_r" in ax0.get_xlabel() and "sigma_r" in ax0.get_ylabel()
    # Posterior cloud + truth cross.
    assert len(ax0.lines) == 2
    np.testing.assert_array_equal(ax0.lines[0].get_xdata(), est.posterior_["mean_distance"])
    # Right: one point per positive parallax at (1000/plx, posterior median
    # distance), coloured by membership.
    pos = d.X[:, 0] > 0
    sc = [c for c in ax1.collections if c.get_array() is not None][0]
    xy = sc.get_offsets()
    assert xy.shape == (pos.sum(), 2)
    order = np.argsort(xy[:, 0])
    ref = np.argsort(1000.0 / d.X[pos, 0])
    np.testing.assert_allclose(xy[order, 0], (1000.0 / d.X[pos, 0])[ref])
    np.testing.assert_allclose(xy[order, 1], est.distance_[pos][ref])
    np.testing.assert_allclose(np.sort(sc.get_array()), np.sort(est.membership_proba_[pos, 0]))
    assert ax1.get_xscale() == "log" and ax1.get_yscale() == "log"
    assert ax1.get_xlabel() == "1000 / parallax [pc]"
    # Vertical (posterior) and horizontal (parallax-only) error bars.
    assert len(ax1.collections) == 3
    # The dashed line is the posterior median of mu_r.
    (hline,) = ax1.lines
    assert hline.get_ydata()[0] == pytest.approx(np.median(est.posterior_["mean_distance"]))


def test_cluster_distance_without_field_has_no_colour_bar(cluster_no_field, cluster_data):
    d = cluster_data
    fig = plt.figure()
    assert plot_cluster_distance(cluster_no_field, d.X, n_draws=50, fig=fig) is fig
    assert len(fig.axes) == 2
    # Without X_err: only the posterior intervals (one error-bar collection).
    assert len(fig.axes[1].collections) == 2


def test_cluster_distance_bad_input(cluster_field, cluster_data, gmm1d):
    d = cluster_data
    with pytest.raises(ValueError, match="fitted on"):
        plot_cluster_distance(cluster_field, d.X[:-1], n_draws=20)
    with pytest.raises(ValueError, match="X_err"):
        plot_cluster_distance(cluster_field, d.X, d.X_err[:-1], n_draws=20)
    with pytest.raises(NotFittedError):
        plot_cluster_distance(HierarchicalDistanceEstimator(), d.X, d.X_err)
    with pytest.raises(TypeError, match="HierarchicalDistanceEstimator"):
        plot_cluster_distance(gmm1d[0], d.X)


# ---------------------------------------------------------------------------
# plot_gmm_density
# ---------------------------------------------------------------------------
def test_gmm_density_1d_matches_independent_predictive_density(gmm1d):
    est, X = gmm1d
    grid = np.linspace(-8.0, 8.0, 161)
    fig, ax = plt.subplots()
    # n_draws >= all draws: the drawn line is the mean over every draw.
    out = plot_gmm_density(est, X, grid=grid, n_draws=10**6, ax=ax)
    assert out is fig
    (line,) = ax.lines
    assert len(_fill_betweens(ax)) == 1 and len(_hist_bars(ax)) > 0
    post = est.posterior_
    ref = np.mean(np.sum(
        post["weights"][:, :, None]
        * stats.norm.pdf(grid, post["means"][:, :, 0, None],
                         np.sqrt(post["covariances"][:, :, 0, 0, None])),
        axis=1), axis=0)
    np.testing.assert_allclose(line.get_xdata(), grid)
    np.testing.assert_allclose(line.get_ydata(), ref, rtol=1e-10)
    # The band brackets the pointwise median of the density draws.
    band = _fill_betweens(ax)[0].get_paths()[0].vertices
    assert band[:, 1].max() >= ref.max() * 0.9
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("feature 0", "density")


def test_gmm_density_2d_ellipses_are_mahalanobis_contours(gmm2d):
    est, X = gmm2d
    fig = plot_gmm_density(est, X, n_sigma=(1.0, 2.0), min_weight=0.1)
    ax = fig.axes[0]
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    shown = np.flatnonzero(est.weights_ >= 0.1)
    assert len(shown) == 2  # the two blobs (a third, emptying component is below 0.1)
    assert len(ellipses) == 2 * len(shown)
    for e, (k, s) in zip(ellipses, [(k, s) for k in shown for s in (1.0, 2.0)], strict=True):
        np.testing.assert_allclose(e.center, est.means_[k])
        # The patch transform maps the unit circle onto the drawn ellipse.
        t = np.linspace(0.0, 2.0 * np.pi, 50)
        boundary = e.get_patch_transform().transform(np.c_[np.cos(t), np.sin(t)])
        r = boundary - est.means_[k]
        maha = np.sqrt(np.einsum("ni,ij,nj->n", r, np.linalg.inv(est.covariances_[k]), r))
        np.testing.assert_allclose(maha, s, rtol=1e-6)
    # Points coloured by their most probable component, means marked.
    (sc,) = ax.collections
    assert sc.get_offsets().shape == X.shape
    assert len(ax.lines) == len(shown)
    assert ax.get_legend() is not None


def test_gmm_density_posterior_draw_ellipses_and_marginal(gmm2d):
    est, X = gmm2d
    fig = plot_gmm_density(est, X, n_ellipse_draws=5, n_sigma=(1.0,))
    n_shown = int(np.sum(est.weights_ >= 0.01))
    assert sum(isinstance(p, Ellipse) for p in fig.axes[0].patches) == n_shown * 6
    fig = plot_gmm_density(est, X, dims=1)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "feature 1" and len(ax.lines) == 1


def test_gmm_density_bad_input(gmm2d, schools):
    est, X = gmm2d
    with pytest.raises(ValueError, match="dims"):
        plot_gmm_density(est, X, dims=(0, 2))
    with pytest.raises(ValueError, match="X must have shape"):
        plot_gmm_density(est, X[:, :1])
    with pytest.raises(ValueError, match="level"):
        plot_gmm_density(est, X, dims=0, level=1.5)
    with pytest.raises(NotFittedError):
        plot_gmm_density(BayesianGMM(), X)
    with pytest.raises(TypeError, match="BayesianGMM"):
        plot_gmm_density(schools[0], X)


# ---------------------------------------------------------------------------
# plot_population_density
# ---------------------------------------------------------------------------
def test_population_density_popmodel(schools):
    est, data = schools
    fig = plot_population_density(est, data.X, level=0.8)
    ax = fig.axes[0]
    (line,) = ax.lines
    band = est.population_density(level=0.8)
    np.testing.assert_allclose(line.get_xdata(), band.grid)
    np.testing.assert_allclose(line.get_ydata(), band.median)
    poly = _fill_betweens(ax)
    assert len(poly) == 1
    assert np.max(poly[0].get_paths()[0].vertices[:, 1]) == pytest.approx(band.upper.max())
    assert len(_hist_bars(ax)) > 0
    assert ax.get_ylabel() == "population density"
    assert "80% credible band" in [t.get_text() for t in ax.get_legend().get_texts()]
    # No data: no histogram; a given axes is used.
    fig2, ax2 = plt.subplots()
    assert plot_population_density(est, ax=ax2) is fig2
    assert len(_hist_bars(ax2)) == 0 and len(ax2.lines) == 1


def test_population_density_samples_population(samples_pop):
    est, X = samples_pop
    fig = plot_population_density(est, X)
    ax = fig.axes[0]
    (line,) = ax.lines
    grid = line.get_xdata()
    assert grid.min() < X.min() and grid.max() > X.max()
    band = est.population_density()
    np.testing.assert_allclose(grid, band.grid, rtol=1e-12)
    np.testing.assert_allclose(line.get_ydata(), band.median, rtol=1e-12)
    assert len(_hist_bars(ax)) > 0 and len(_fill_betweens(ax)) == 1
    # Without X: the same curve, no histogram.
    (line,) = plot_population_density(est).axes[0].lines
    np.testing.assert_allclose(line.get_ydata(), band.median, rtol=1e-12)
    with pytest.raises(ValueError, match="dim"):
        plot_population_density(est, X, dim=1)


def test_population_density_bad_input(schools, gmm1d):
    est, data = schools
    with pytest.raises(ValueError, match="level"):
        plot_population_density(est, level=0.0)
    with pytest.raises(ValueError, match="X must have shape"):
        plot_population_density(est, np.zeros((8, 2)))
    with pytest.raises(NotFittedError):
        plot_population_density(PopulationModel(), data.X)
    with pytest.raises(TypeError, match="population_density"):
        plot_population_density(gmm1d[0])
