"""Defaults and rough edges a new user hits: each case reproduced and checked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skhier import HierarchicalDistanceEstimator, RobustLineMixture
from skhier.datasets import make_cluster_parallaxes, make_line_with_outliers

from .helpers import FAST, ignore_convergence

pytestmark = ignore_convergence


# -- distance: a contaminated sample fitted without a field ------------------------
def test_distance_without_field_warns_on_a_contaminated_sample():
    # 20 % field stars (36 of 200): fitted as members they drag the mean
    # distance to ~60 pc and the depth to ~1000 pc.
    d = make_cluster_parallaxes(200, cluster_fraction=0.8, random_state=0)
    with pytest.warns(UserWarning, match="field='edsd'") as record:
        HierarchicalDistanceEstimator(sampler="importance", n_importance=200,
                                      random_state=0).fit(d.X, X_err=d.X_err)
    msg = [str(w.message) for w in record if "contaminated" in str(w.message)]
    assert msg and msg[0].startswith("36 of 200")
    assert record[0].filename == __file__


def test_distance_contamination_check_is_quiet_on_clean_samples_and_with_a_field():
    clean = make_cluster_parallaxes(200, random_state=0)
    dirty = make_cluster_parallaxes(200, cluster_fraction=0.8, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        HierarchicalDistanceEstimator(random_state=0).fit(clean.X, X_err=clean.X_err)
        # With a field the check does not run (the field models those stars).
        HierarchicalDistanceEstimator(field="edsd", field_length_scale=1350.0,
                                      sampler="importance", n_importance=200,
                                      random_state=0).fit(dirty.X, X_err=dirty.X_err)
    assert not [w for w in record if "contaminated" in str(w.message)]


def test_distance_contamination_check_is_quiet_with_a_heavy_tailed_profile():
    # The check assumes a normal cluster's tails; a Student-t or King profile
    # is chosen for stars far from the bulk, so it does not run there.
    dirty = make_cluster_parallaxes(60, cluster_fraction=0.8, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        HierarchicalDistanceEstimator(profile="student-t", sampler="importance",
                                      n_importance=100, random_state=0).fit(
            dirty.X, X_err=dirty.X_err)
    assert not [w for w in record if "contaminated" in str(w.message)]


def test_contamination_count_matches_normal_tails_on_large_clean_samples():
    # 20 000 members with errors 0.02-0.1 mas: beyond 5 sd a normal sample
    # has 20000 * 5.7e-7 = 0.01 stars expected; the robust centre and scale
    # add a little. The threshold (1 %, 200 stars) is far above either.
    from skhier._distance import _count_far_from_cluster

    rng = np.random.default_rng(0)
    err = rng.uniform(0.02, 0.1, 20000)
    d = make_cluster_parallaxes(20000, parallax_error=err, distance_dispersion=30,
                                random_state=0)
    assert _count_far_from_cluster(d.X[:, 0], d.X_err[:, 0]) <= 5
    e = make_cluster_parallaxes(20000, cluster_fraction=0.95, parallax_error=err,
                                distance_dispersion=30, random_state=0)
    n_field = int(np.sum(~e.is_member.astype(bool)))
    assert _count_far_from_cluster(e.X[:, 0], e.X_err[:, 0]) > 0.8 * n_field


# -- line without intrinsic scatter: zero or tiny errors -----------------------------
def test_line_without_scatter_refuses_zero_errors_and_warns_on_tiny_ones():
    d = make_line_with_outliers(60, outlier_fraction=0.2, random_state=0)
    with pytest.raises(ValueError, match="zero y_err"):
        RobustLineMixture(scatter=None, **FAST).fit(d.X, d.y, y_err=np.zeros(60))
    # One exact point is fine when it has an X error.
    y_err = d.y_err.copy()
    y_err[0] = 0.0
    X_err = np.full((60, 1), 0.1)
    RobustLineMixture(scatter=None, **FAST, random_state=0).fit(d.X, d.y, y_err=y_err,
                                                                  X_err=X_err)
    # Errors 1000 times too small: a meaningless line (slope ~0 for a true 2,
    # ~95 % outliers) that used to come back without a word.
    with pytest.warns(UserWarning, match="errors are too small") as record:
        RobustLineMixture(scatter=None, **FAST, random_state=0).fit(
            d.X, d.y, y_err=np.full(60, 1e-3))
    assert any(w.filename == __file__ for w in record if "too small" in str(w.message))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        RobustLineMixture(scatter=None, **FAST, random_state=0).fit(d.X, d.y, y_err=d.y_err)


# -- command line ------------------------------------------------------------------
def _write_points(path, n=30):
    d = make_line_with_outliers(n, random_state=0)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("source_id,name,x,y,y-err\n")
        for i in range(n):
            # an 19-digit ID that a float would round, and a text column
            fh.write(f"{4295806720000000000 + i},star {i},{float(d.X[i, 0])!r},{float(d.y[i])!r},"
                     f"{float(d.y_err[i])!r}\n")
    return d


def test_cli_checks_output_folder_before_fitting(tmp_path, capsys, monkeypatch):
    _write_points(tmp_path / "p.csv")
    import skhier.cli as cli

    def must_not_fit(args):
        raise AssertionError("fitted although the output folder does not exist")

    monkeypatch.setattr(cli, "_cmd_line", must_not_fit)
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["line", str(tmp_path / "p.csv"), "--x", "x", "--y", "y",
                  "--output", str(tmp_path / "nodir" / "fit")])


def test_cli_keeps_id_columns_and_hyphenated_headers(tmp_path, capsys):
    import csv

    from skhier.cli import main

    d = _write_points(tmp_path / "p.csv")
    out = tmp_path / "fit"
    assert main(["line", str(tmp_path / "p.csv"), "--x", "x", "--y", "y", "--y-err", "y-err",
                 "--output", str(out)]) == 0
    with open(f"{out}_objects.csv", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:5] == ["source_id", "name", "x", "y", "y-err"]
    assert rows[0][5:] == ["fitted", "p_outlier", "inlier"]
    assert [r[0] for r in rows[1:]] == [str(4295806720000000000 + i) for i in range(30)]
    assert rows[3][1] == "star 2"
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]], d.y, rtol=1e-15)


def test_cli_gmm_labels_keep_the_array_index(tmp_path, capsys):
    from skhier.cli import _summary_rows

    post = {"means": np.zeros((4, 3, 2)), "weights": np.zeros((4, 3)), "k": np.zeros(4)}
    labels = [r[0] for r in _summary_rows(post)]
    assert labels[:3] == ["means[0, 0]", "means[0, 1]", "means[1, 0]"]
    assert "weights[2]" in labels and "k" in labels


def test_cli_bad_options_give_a_message_not_a_traceback(tmp_path, capsys):
    from skhier.cli import main

    _write_points(tmp_path / "p.csv")
    with pytest.raises(SystemExit) as exc:
        main(["population", str(tmp_path / "p.csv"), "--x", "x", "--distribution", "cauchy"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "skhier population: error:" in err and "cauchy" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit, match="not a number"):
        main(["line", str(tmp_path / "p.csv"), "--x", "name", "--y", "y"])


# -- pathological inputs: a clear error, fast ----------------------------------------
def test_values_whose_squares_overflow_are_refused_naming_the_argument():
    from skhier import BayesianGMM, PopulationModel
    from skhier.datasets import make_mixture_with_errors, make_population

    d = make_population(30, random_state=0)
    with pytest.raises(ValueError, match="X has values up to 4.11e\\+300"):
        PopulationModel().fit(d.X * 1e300, X_err=d.X_err)  # was a raw OverflowError
    with pytest.raises(ValueError, match="X_err has values"):
        PopulationModel().fit(d.X, X_err=d.X_err * 1e300)
    m = make_mixture_with_errors(50, random_state=0)
    with pytest.raises(ValueError, match="X has values"):
        BayesianGMM(n_components=2).fit(m.X * 1e300)  # was "invalid numeric entries"
    line = make_line_with_outliers(20, random_state=0)
    with pytest.raises(ValueError, match="y has values"):
        RobustLineMixture().fit(line.X, line.y * 1e300, y_err=line.y_err)
    with pytest.raises(ValueError, match="X has values"):
        HierarchicalDistanceEstimator().fit(np.full((5, 1), 1e300), X_err=np.ones((5, 1)))


def test_distance_refuses_parallaxes_without_a_positive_mean():
    # 40 negative parallaxes ran for minutes and returned the prior's edge.
    rng = np.random.default_rng(0)
    X = -np.abs(rng.normal(0.2, 0.1, 40))[:, None]
    with pytest.raises(ValueError, match="weighted mean parallax .* not positive"):
        HierarchicalDistanceEstimator().fit(X, X_err=np.full((40, 1), 0.1))


# -- stored draws: as many as the effective sample size needs -------------------------
def test_auto_length_runs_store_draws_thinned_to_a_quarter_autocorrelation_time():
    # PopulationModel(outliers=True) on 75 velocities stored 254 976 draws
    # (8 538 steps x 32 walkers, tau ~ 120); every tau/4-th step is enough.
    d = make_line_with_outliers(30, random_state=0)
    est = RobustLineMixture(outliers=False, sampler="emcee", random_state=0).fit(
        d.X, d.y, y_err=d.y_err)
    tau = max(est.autocorr_time_.values())
    k = max(1, int(tau // 4))
    kept = est.n_steps_ - est.n_burn_
    assert est.n_draws_ == -(-kept // k) * est.n_walkers
    assert est.chain_.shape[0] == -(-kept // k)
    # The thinned draws keep (nearly) all the effective samples: their ESS,
    # measured on the stored chains, against the unthinned chain's.
    ess_stored = est.summary()["ess"].to_numpy()
    assert ess_stored.min() > 0.7 * min(est.n_effective_.values())


# -- progress: one bar with a total ----------------------------------------------------
def test_auto_length_emcee_run_shows_one_progress_bar_with_a_total(monkeypatch):
    # The run grows in blocks until converged; each block used to open its
    # own bar, restarting at 0 (5-7 bars per fit).
    import skhier._sampling as sampling

    bars = []

    class Bar:
        def __init__(self, display, total, **kwargs):
            self.total, self.desc, self.n = total, kwargs.get("desc", ""), 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, count):
            self.n += count

    monkeypatch.setattr(sampling, "get_progress_bar", Bar)
    d = make_line_with_outliers(30, random_state=0)
    est = RobustLineMixture(outliers=False, sampler="emcee", progress=True, max_steps=5000,
                            random_state=0).fit(d.X, d.y, y_err=d.y_err)
    assert len(bars) == 1
    assert bars[0].total == 5000 and "at most 5000 steps" in bars[0].desc
    assert bars[0].n == est.n_steps_ > 100  # several blocks, one bar


# -- plots and summaries ---------------------------------------------------------------
def test_beta_population_density_axis_shows_the_bulk_not_the_edge_spike():
    from skhier import PopulationModel
    from skhier.datasets import make_eccentricities
    from skhier.plotting import plot_population_density

    d = make_eccentricities(60, random_state=0)
    model = PopulationModel("beta", random_state=0).fit(d.X, X_err=d.X_err)
    fig = plot_population_density(model, d.X)
    ax = fig.axes[0]
    median = ax.lines[0].get_ydata()
    top = ax.get_ylim()[1]
    # The median density over the middle of the range is visible, filling a
    # good part of the axis (the y-axis used to reach ~320).
    assert np.max(median[(ax.lines[0].get_xdata() > 0.1)]) < top < 20


def test_summary_and_trace_name_coefficients_by_dataframe_columns():
    pd = pytest.importorskip("pandas")
    from skhier.plotting import plot_trace

    d = make_line_with_outliers(30, random_state=0)
    X = pd.DataFrame({"log_mass": d.X[:, 0]})
    est = RobustLineMixture(**FAST, random_state=0).fit(X, d.y, y_err=d.y_err)
    assert "coef[log_mass]" in est.summary().index
    assert plot_trace(est, ["coef"]).axes[0].get_ylabel() == "coef[log_mass]"


def test_corner_of_a_gmm_shows_a_small_sensible_subset():
    from skhier import BayesianGMM
    from skhier.datasets import make_mixture_with_errors
    from skhier.plotting import plot_corner

    d = make_mixture_with_errors(150, random_state=0)
    gmm = BayesianGMM(n_components=10, n_iter=60, n_burn=20, random_state=0).fit(d.X)
    fig = plot_corner(gmm)  # was a 43 x 43 grid
    n = int(round(np.sqrt(len(fig.axes))))
    assert n * n == len(fig.axes) and 2 <= n <= 8
    labels = [fig.axes[n * (n - 1) + j].get_xlabel() for j in range(n)]
    occupied = np.flatnonzero(gmm.posterior_["weights"].mean(axis=0) >= 0.02)
    assert labels[: len(occupied)] == [f"weights[{k}]" for k in occupied][:n]


def test_samples_population_refuses_constant_samples():
    # Used to run for ~30 s and report a concentration of 4e38.
    from skhier import PosteriorSamplesPopulation

    with pytest.raises(ValueError, match="same value"):
        PosteriorSamplesPopulation("beta").fit(np.full((20, 50), 0.3))


def test_reweighting_warning_points_at_the_callers_line():
    from skhier import PosteriorSamplesPopulation, ReweightingWarning

    rng = np.random.default_rng(11)
    X = rng.standard_normal((40, 200)) + rng.normal(0, 1e-3, (40, 1))
    with pytest.warns(ReweightingWarning) as record:
        PosteriorSamplesPopulation(priors={"tau": ("halfnormal", 0.01)}, n_steps=200,
                                   n_burn=100, random_state=0).fit(X)
    assert {w.filename for w in record if issubclass(w.category, ReweightingWarning)} == {
        __file__}
