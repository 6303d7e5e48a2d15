"""Model checking and comparison through ArviZ.

- ``to_inference_data()`` carries a ``log_likelihood`` group (one value per
  training object and draw) for every estimator, and ``az.loo`` runs on it;
- the table agrees with each estimator's own posterior predictive density
  (``score_samples`` / ``log_predictive_density``, another code path): the
  log of its mean over draws is that density;
- ``az.compare`` prefers the model that simulated the data: a line with an
  outlier component over one without on data with 20 % outliers, and two
  Gaussian components over one on data drawn from two.

The comparisons assert that the preferred model wins by more than
``z_threshold()`` standard errors of the difference (``dse``), so a wrong
preference fails, and a right one fails by chance at most at the suite's
false-failure rate (the true differences here are many standard errors).
"""

import numpy as np
import pytest
from scipy.special import logsumexp

from skhier import BayesianGMM, PopulationModel, RobustLineMixture
from skhier.datasets import make_line_with_outliers

from .helpers import plot_ppc, z_threshold
from .test_ecosystem import CASES, IDS

az = pytest.importorskip("arviz")

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skhier.PriorBoundWarning"),
    pytest.mark.filterwarnings("ignore::skhier.ReweightingWarning"),
    # ArviZ warns about high Pareto k on deliberately short chains.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def _elpd(loo) -> float:
    """elpd_loo of an ArviZ 0.x or 1.x (arviz_stats) ELPDData."""
    value = getattr(loo, "elpd_loo", None)
    return float(loo.elpd if value is None else value)


@pytest.fixture(scope="module")
def fitted():
    return {k: c.make().fit(c.X, c.y, **c.fit_kw) for k, c in CASES.items()}


def _density_on_training_data(case, est):
    """The estimator's own log posterior predictive density of its training data."""
    if case.id == "line":
        return est.log_predictive_density(case.X, case.y, **case.fit_kw)
    return est.score_samples(case.X, **case.fit_kw)


def _group_names(idata):
    """Groups of an ArviZ 0.x InferenceData (a method) or 1.x DataTree (paths)."""
    groups = idata.groups
    return groups() if callable(groups) else [g.strip("/") for g in groups]


@pytest.mark.parametrize("case_id", IDS)
def test_log_likelihood_group_and_loo(case_id, fitted):
    case, est = CASES[case_id], fitted[case_id]
    idata = est.to_inference_data()
    ll = idata.log_likelihood["obs"]
    n = len(case.X)
    n_draws = est.n_draws_
    assert ll.dims[:2] == ("chain", "draw")
    assert ll.shape[0] * ll.shape[1] == n_draws and ll.shape[2:] == (n,)
    table = np.moveaxis(ll.values, 2, 0).reshape(n, -1)
    assert np.all(np.isfinite(table))
    # log mean over the estimator's summary draws (a fixed subset of the
    # stored ones, see _draw_subset) = its predictive density.
    reference = _density_on_training_data(case, est)
    lpd = logsumexp(table, axis=1) - np.log(n_draws)
    # Stored draws are step-major (all walkers of a step, then the next).
    stored = np.swapaxes(ll.values, 0, 1).reshape(n_draws, n)
    # (BayesianGMM's score_samples uses every draw.)
    idx = est._draw_subset(est._max_object_draws) if hasattr(est, "_draw_subset") else None
    subset = stored if idx is None else stored[idx]
    subset = logsumexp(subset, axis=0) - np.log(len(subset))
    if case_id == "samples":
        # Its single-precision path is documented to ~1e-6 relative per object.
        np.testing.assert_allclose(subset, reference, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(subset, reference, rtol=1e-9, atol=1e-9)
    loo = az.loo(idata)
    assert np.isfinite(_elpd(loo))
    # Leave-one-out can only lose predictive density against the in-sample
    # fit (up to the Pareto smoothing of the importance weights).
    assert _elpd(loo) <= lpd.sum() + 1e-6 * abs(lpd.sum())
    # Without the group, ArviZ has nothing to compute loo from.
    assert "log_likelihood" not in _group_names(est.to_inference_data(log_likelihood=False))


def test_compare_prefers_the_outlier_model_on_data_with_outliers():
    d = make_line_with_outliers(80, outlier_fraction=0.2, random_state=3)
    models = {
        f"outliers={flag}": RobustLineMixture(outliers=flag, sampler="emcee", n_walkers=16,
                                              n_steps=400, n_burn=200, random_state=0)
        .fit(d.X, d.y, y_err=d.y_err).to_inference_data()
        for flag in (True, False)
    }
    table = az.compare(models)
    assert table.index[0] == "outliers=True"
    row = table.loc["outliers=False"]
    # (ArviZ 0.x reports elpd_diff >= 0 below the best model, 1.x <= 0.)
    assert abs(row["elpd_diff"]) > z_threshold() * row["dse"]


def test_compare_prefers_two_components_on_two_gaussian_data():
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(-2.0, 0.5, size=(100, 1)), rng.normal(2.0, 0.5, size=(100, 1))])
    models = {
        f"K={k}": BayesianGMM(n_components=k, n_chains=2, n_iter=300, n_burn=100, random_state=0)
        .fit(X).to_inference_data()
        for k in (1, 2)
    }
    table = az.compare(models)
    assert table.index[0] == "K=2"
    row = table.loc["K=1"]
    # (ArviZ 0.x reports elpd_diff >= 0 below the best model, 1.x <= 0.)
    assert abs(row["elpd_diff"]) > z_threshold() * row["dse"]


# ---------------------------------------------------------------------------
# Replicated data (posterior predictive checks)
# ---------------------------------------------------------------------------
def _population_data(rng, n=60):
    e = rng.uniform(0.2, 0.6, n)
    x = rng.normal(1.0, 0.5, n) + e * rng.standard_normal(n)
    return x, e


def test_replicates_are_population_draws_measured_with_the_errors():
    x, e = _population_data(np.random.default_rng(0))
    est = PopulationModel(random_state=0).fit(x[:, None], X_err=e)
    idata = est.to_inference_data(posterior_predictive=True, random_state=1)
    rep = idata.posterior_predictive["X"]
    assert rep.shape[:2] == idata.posterior["mu"].shape and rep.shape[2:] == (60, 1)
    # One replicate per stored draw, in the posterior's (chain, draw) order:
    # x_rep ~ N(mu, tau^2 + e^2) given that draw, so z is standard normal.
    mu = idata.posterior["mu"].values[..., None]
    tau = idata.posterior["tau"].values[..., None]
    z = ((rep.values[..., 0] - mu) / np.sqrt(tau**2 + e**2)).ravel()
    n = z.size  # independent given the draws
    thr = z_threshold(n_assertions=2)
    assert abs(z.mean()) < thr / np.sqrt(n)
    assert abs(z.var() - 1.0) < thr * np.sqrt(2.0 / n)
    plot_ppc(idata)  # ArviZ finds matching observed and replicated data
    out = est.sample_posterior_predictive(7, random_state=0)
    assert set(out) == {"X"} and out["X"].shape == (7, 60, 1)
    with pytest.raises(ValueError, match="n_samples"):
        est.sample_posterior_predictive(0)
    with pytest.raises(TypeError, match="n_samples"):
        est.sample_posterior_predictive(2.5)


def test_replicates_include_the_background():
    rng = np.random.default_rng(2)
    x, e = _population_data(rng, 80)
    x[:16] = rng.normal(1.0, 8.0, 16)  # 20 % from a broad background
    est = PopulationModel(outliers=True, random_state=0).fit(x[:, None], X_err=e)
    rep = est.sample_posterior_predictive(400, random_state=0)["X"][..., 0]
    # The fraction of replicated values far from the population (|x-1| > 3,
    # where the N(1, 0.5^2 + e^2) population puts < 1e-6) follows the
    # outlier fraction: about 0.2 x P(|N(0, 8^2)| > 3) ~ 0.14.
    far = np.mean(np.abs(rep - 1.0) > 3.0)
    assert 0.05 < far < 0.3


def test_posterior_predictive_check_flags_data_the_model_cannot_produce():
    """Power of the check (its calibration is in tests/test_ppc_calibration.py):
    a sample of two tight groups has a larger mean absolute deviation for
    its variance than a normal population can replicate, so the posterior
    predictive p-value of that shape statistic is extreme (the statistic is
    0.80 for a normal sample, 1 for two equal point masses)."""
    def shape(a, axis=None):
        mad = np.mean(np.abs(a - np.mean(a, axis=axis, keepdims=True)), axis=axis)
        return mad / np.std(a, axis=axis)

    rng = np.random.default_rng(11)
    e = np.full(60, 0.1)
    x = np.concatenate([rng.normal(-2.0, 0.1, 30), rng.normal(2.0, 0.1, 30)])
    est = PopulationModel(random_state=0).fit(x[:, None], X_err=e)
    rep = est.sample_posterior_predictive(400, random_state=0)["X"][..., 0]
    # Nearly every replicate's shape is below the data's.
    assert np.mean(shape(rep, axis=1) >= shape(x)) < 0.01


def test_plot_posterior_predictive_draws_data_and_replicates():
    import matplotlib

    matplotlib.use("Agg")
    from skhier.plotting import plot_posterior_predictive

    x, e = _population_data(np.random.default_rng(0))
    est = PopulationModel(random_state=0).fit(x[:, None], X_err=e)
    ax = plot_posterior_predictive(est, n_replicates=12, bins=20, random_state=0)
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(lines) == 13  # 12 replicates and the data
    data = lines[-1].get_ydata()
    width = np.diff(lines[-1].get_xdata())[0]
    assert np.isclose(data.sum() * width, 1.0)  # the data's density histogram
