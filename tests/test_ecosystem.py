"""Ecosystem features on every estimator (issue 7).

Each test runs over all five public estimators with short fits (``FAST``
chains, a few Gibbs sweeps): these tests check the API contract of the
ecosystem features, not the statistics, which the per-estimator modules test.

- ``summary()``: a DataFrame with one row per flattened parameter whose
  mean, sd and quantiles are those of the stored draws, and whose ``ess``
  and ``r_hat`` equal an independent computation (written here) over the
  chains the draws came from;
- ``to_inference_data()``: ArviZ ``posterior`` with ``chain``/``draw``
  dimensions holding the stored draws chain by chain, ``sample_stats`` (the
  log posterior of each emcee draw, recomputed here from the chain; the
  GMM's log-likelihood), ``observed_data`` (the training data) and
  ``constant_data`` (their errors), and a clear ImportError without ArviZ;
- pandas in: DataFrames keep ``feature_names_in_``, error arguments may be
  named Series/DataFrame columns, and the fit equals the numpy fit with the
  same ``random_state``; pandas out: per-object outputs stay numpy arrays of
  the right shape;
- ``progress=True`` shows progress on stderr, the default is silent;
- the extra methods and ``score``/``score_samples`` through
  :func:`skhier.pipeline.make_pipeline` (the line's
  ``predict_membership_proba``, ``log_predictive_density`` and
  ``sample_posterior`` are in ``test_pipeline.py``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.preprocessing import FunctionTransformer

from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)
from skhier.datasets import make_cluster_parallaxes, make_line_with_outliers, make_population
from skhier.pipeline import Pipeline, make_pipeline

from .helpers import FAST, rank_rhat_by_hand

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skhier.PriorBoundWarning"),
    pytest.mark.filterwarnings("ignore::skhier.ReweightingWarning"),
]

#: Short Gibbs runs for BayesianGMM (as in test_gmm.py): 2 chains of 30 kept sweeps.
FAST_GMM = {"n_chains": 2, "n_iter": 40, "n_burn": 10}


# ---------------------------------------------------------------------------
# One small problem per estimator, as numpy arrays and as a DataFrame
# ---------------------------------------------------------------------------
@dataclass
class Case:
    """An estimator with a small data set.

    ``fit_kw``/``frame_fit_kw``: the error arguments as numpy arrays and as
    pandas columns (Series for one column). ``methods``: per-object methods
    as ``(name, needs_y, expected shape, dtype kind)``.
    """

    id: str
    cls: type
    params: dict
    X: np.ndarray
    y: np.ndarray | None
    fit_kw: dict
    frame: pd.DataFrame
    x_cols: list
    frame_fit_kw: dict
    methods: list
    emcee: bool = True
    predict_takes_errors: bool = True
    data_groups: dict = field(default_factory=dict)

    def make(self, **overrides):
        return self.cls(**{**self.params, **overrides})

    def X_frame(self):
        return self.frame[self.x_cols]

    def y_frame(self):
        return None if self.y is None else self.frame["y"]


def _line_case():
    d = make_line_with_outliers(30, random_state=0)
    rng = np.random.default_rng(1)
    x_err = rng.uniform(0.05, 0.2, size=30)
    xy_cov = 0.3 * x_err * d.y_err
    frame = pd.DataFrame({"x": d.X[:, 0], "y": d.y, "ey": d.y_err, "ex": x_err, "cxy": xy_cov})
    return Case(
        "line", RobustLineMixture, {"sampler": "emcee", **FAST, "random_state": 0},
        d.X, d.y, {"y_err": d.y_err, "X_err": x_err[:, None], "Xy_cov": xy_cov[:, None]},
        frame, ["x"], {"y_err": frame.ey, "X_err": frame.ex, "Xy_cov": frame.cxy},
        [("predict", False, (30,), "f"), ("predict_membership_proba", True, (30, 2), "f"),
         ("log_predictive_density", True, (30,), "f")],
        predict_takes_errors=False,
        data_groups={"observed_data": {"X": d.X, "y": d.y},
                     "constant_data": {"y_err": d.y_err, "X_err": x_err[:, None],
                                       "Xy_cov": xy_cov[:, None]}},
    )


def _distance_case():
    c = make_cluster_parallaxes(40, cluster_fraction=0.8, random_state=0)
    frame = pd.DataFrame({"parallax": c.X[:, 0], "parallax_error": c.X_err[:, 0]})
    return Case(
        "distance", HierarchicalDistanceEstimator,
        {"field": "edsd", "sampler": "emcee", **FAST, "random_state": 0},
        c.X, None, {"X_err": c.X_err}, frame, ["parallax"],
        {"X_err": frame["parallax_error"]},
        [("predict", False, (40,), "f"), ("predict_membership_proba", False, (40, 2), "f"),
         ("score_samples", False, (40,), "f")],
        data_groups={"observed_data": {"parallax": c.X[:, 0]},
                     "constant_data": {"parallax_error": c.X_err[:, 0]}},
    )


def _population_case():
    p = make_population(40, random_state=0)
    frame = pd.DataFrame({"v": p.X[:, 0], "ev": p.X_err[:, 0]})
    return Case(
        "population", PopulationModel, {"outliers": True, "sampler": "emcee", **FAST,
                                        "random_state": 0},
        p.X, None, {"X_err": p.X_err}, frame, ["v"], {"X_err": frame.ev},
        [("predict", False, (40,), "f"), ("predict_membership_proba", False, (40, 2), "f"),
         ("score_samples", False, (40,), "f")],
        data_groups={"observed_data": {"X": p.X}, "constant_data": {"X_err": p.X_err}},
    )


def _samples_case():
    rng = np.random.default_rng(2)
    true = rng.normal(5.0, 1.0, 40)
    # Posterior samples drawn under an interim prior N(5, 3^2): the values
    # log p0(theta_ik) are passed as a DataFrame.
    X = (true + rng.normal(0.0, 0.5, 40))[:, None] + 0.5 * rng.standard_normal((40, 50))
    log_p0 = -0.5 * ((X - 5.0) / 3.0) ** 2
    cols = [f"s{k}" for k in range(50)]
    frame = pd.DataFrame(X, columns=cols)
    return Case(
        "samples", PosteriorSamplesPopulation, {"outliers": True, "sampler": "emcee", **FAST,
                                                "random_state": 0},
        X, None, {"interim_log_prior": log_p0}, frame, cols,
        {"interim_log_prior": pd.DataFrame(log_p0, columns=[f"lp{k}" for k in range(50)])},
        [("predict", False, (40,), "f"), ("predict_membership_proba", False, (40, 2), "f"),
         ("score_samples", False, (40,), "f")],
        # theta_hat: each object's likelihood-weighted mean (weights 1 / p0).
        data_groups={"observed_data": {"theta_hat": (
            np.sum(X * np.exp(-log_p0), axis=1) / np.sum(np.exp(-log_p0), axis=1))[:, None]},
                     "constant_data": {"X": X, "interim_log_prior": log_p0}},
    )


def _gmm_case():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal([-2.0, 0.0], 0.5, (30, 2)), rng.normal([2.0, 1.0], 0.7, (30, 2))])
    X_err = rng.uniform(0.1, 0.3, size=(60, 2))
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "ea": X_err[:, 0], "eb": X_err[:, 1]})
    return Case(
        "gmm", BayesianGMM, {"n_components": 3, **FAST_GMM, "random_state": 0},
        X, None, {"X_err": X_err}, frame, ["a", "b"], {"X_err": frame[["ea", "eb"]]},
        [("predict", False, (60,), "i"), ("predict_proba", False, (60, 3), "f"),
         ("predict_membership_proba", False, (60, 3), "f"), ("score_samples", False, (60,), "f")],
        emcee=False,
        data_groups={"observed_data": {"X": X},
                     "constant_data": {"X_cov": np.einsum("ni,ij->nij", X_err**2, np.eye(2))}},
    )


CASES = {c.id: c for c in (_line_case(), _distance_case(), _population_case(), _samples_case(),
                           _gmm_case())}
IDS = list(CASES)


@pytest.fixture(scope="module")
def fitted():
    """Each estimator fitted once on its numpy data (shared, read-only)."""
    return {k: c.make().fit(c.X, c.y, **c.fit_kw) for k, c in CASES.items()}


def _row_labels(posterior):
    """(label, draws) of every scalar element, labelled like ``summary()``."""
    for name, draws in posterior.items():
        draws = np.asarray(draws, dtype=float)
        shape = draws.shape[1:]
        flat = draws.reshape(len(draws), -1)
        for j, index in enumerate(np.ndindex(shape)):
            label = f"{name}[{', '.join(str(i) for i in index)}]" if shape else name
            yield label, flat[:, j]


def _by_chain(est, x):
    """Draws of one scalar as (n_chains, n_per_chain), from the documented layouts.

    emcee: stored step by step (all walkers of a step together), each walker
    a chain; Gibbs: chain after chain.
    """
    if isinstance(est, BayesianGMM):
        return x.reshape(est.n_chains_, -1)
    return x.reshape(-1, est.chain_.shape[1]).T


# Independent references for the summary's diagnostics (BDA3 section 11.4;
# Sokal's automatic window on the chain-averaged autocorrelation, as the
# summary documents), with a direct O(n^2) autocovariance instead of FFTs.


def _ess_by_hand(chains, c=5.0):
    n_chains, n = chains.shape
    if np.ptp(chains) == 0:
        return 0.0  # documented: a constant has an infinite autocorrelation time
    rho = np.zeros(n)
    for x in chains - chains.mean(axis=1, keepdims=True):
        acov = np.array([np.dot(x[: n - t], x[t:]) for t in range(n)])
        if acov[0] > 0:
            rho += acov / acov[0]
    rho /= n_chains
    tau = 2.0 * np.cumsum(rho) - 1.0
    m = next((m for m in range(n) if m >= c * tau[m]), n - 1)
    return n_chains * n / max(tau[m], 1.0)


# ---------------------------------------------------------------------------
# summary()
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", IDS)
def test_summary_table_matches_the_stored_draws(case_id, fitted):
    est = fitted[case_id]
    table = est.summary(quantiles=(0.1, 0.5, 0.9))
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["mean", "sd", "q10", "q50", "q90", "ess", "r_hat"]
    rows = list(_row_labels(est.posterior_))
    assert list(table.index) == [label for label, _ in rows]
    assert table.index.name == "parameter"
    for label, x in rows:
        row = table.loc[label]
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-300)
        assert row["sd"] == pytest.approx(x.std(ddof=1), rel=1e-12, abs=1e-300)
        np.testing.assert_allclose(row[["q10", "q50", "q90"]].to_numpy(float),
                                   np.quantile(x, [0.1, 0.5, 0.9]), rtol=1e-12)
        chains = _by_chain(est, x)
        assert chains.shape[0] > 1
        assert row["ess"] == pytest.approx(_ess_by_hand(chains), rel=1e-8), label
        if np.ptp(x) > 0:
            assert row["r_hat"] == pytest.approx(rank_rhat_by_hand(chains), rel=1e-8), label


@pytest.mark.parametrize("case_id", [k for k in IDS if CASES[k].emcee])
def test_summary_after_importance_sampling_has_one_chain(case_id):
    case = CASES[case_id]
    est = case.make(sampler="importance", n_importance=300).fit(case.X, case.y, **case.fit_kw)
    assert est.sampler_ == "importance"
    table = est.summary()
    assert list(table.index) == [label for label, _ in _row_labels(est.posterior_)]
    assert table["r_hat"].isna().all()  # R-hat needs several chains
    assert np.all(np.isfinite(table["ess"])) and np.all(table["ess"] > 0)
    for label, x in _row_labels(est.posterior_):
        assert table.loc[label, "q50"] == pytest.approx(np.median(x), rel=1e-12, abs=1e-300)


#: Summarised parameters that are affine functions of the sampled coordinate
#: of the same name (so both have the same importance-sampling ESS).
AFFINE_IN_SAMPLED = {"line": ["coef[0]", "outlier_mean"], "distance": [],
                     "population": ["mu", "outlier_mean"], "samples": ["mu"]}


@pytest.mark.parametrize("case_id", [k for k in IDS if CASES[k].emcee])
def test_summary_ess_after_importance_sampling_is_the_importance_ess(case_id):
    # The stored draws are a sorted systematic resample: their
    # autocorrelation is an artefact, so the summary must report the ESS of
    # the weighted draws (with the resampling noise), as n_effective_ does.
    case = CASES[case_id]
    est = case.make(sampler="importance", n_importance=2000).fit(case.X, case.y, **case.fit_kw)
    assert est.sampler_ == "importance"
    table = est.summary()
    for name in AFFINE_IN_SAMPLED[case_id]:
        assert table.loc[name, "ess"] == pytest.approx(est.n_effective_[name], rel=1e-9), name
    # 1 / (1/ESS_IS + 1/N) is below the number of stored draws.
    assert np.all((table["ess"] > 0) & (table["ess"] < est.n_draws_))
    # A refit with emcee measures the ESS on the chains again.
    est.set_params(sampler="emcee").fit(case.X, case.y, **case.fit_kw)
    table = est.summary()
    label, x = next(iter(_row_labels(est.posterior_)))
    assert table.loc[label, "ess"] == pytest.approx(_ess_by_hand(_by_chain(est, x)), rel=1e-8)


# ---------------------------------------------------------------------------
# to_inference_data()
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", IDS)
def test_to_inference_data_holds_the_draws_chain_by_chain(case_id, fitted):
    pytest.importorskip("arviz")
    est = fitted[case_id]
    idata = est.to_inference_data()
    post = idata.posterior
    n_chains = est.n_chains_ if isinstance(est, BayesianGMM) else est.chain_.shape[1]
    n_per_chain = est.n_draws_ // n_chains
    assert post.sizes["chain"] == n_chains and post.sizes["draw"] == n_per_chain
    assert set(post.data_vars) == set(est.posterior_)
    for name, draws in est.posterior_.items():
        var = post[name]
        assert var.dims[:2] == ("chain", "draw")
        assert var.shape == (n_chains, n_per_chain) + np.shape(draws)[1:]
        flat = np.asarray(draws, dtype=float).reshape(len(draws), -1)
        values = var.values.reshape(n_chains, n_per_chain, -1)
        for j in range(flat.shape[1]):
            np.testing.assert_array_equal(values[:, :, j], _by_chain(est, flat[:, j]))


@pytest.mark.parametrize("case_id", [k for k in IDS if CASES[k].emcee])
def test_to_inference_data_log_posterior_of_each_emcee_draw(case_id, fitted):
    pytest.importorskip("arviz")
    est = fitted[case_id]
    idata = est.to_inference_data()
    lp = idata.sample_stats["lp"]
    assert lp.dims == ("chain", "draw")
    # Recompute the log posterior of a few draws (walker w, kept step s) from
    # the stored chain, and check the posterior group holds the same draw.
    n_steps, n_walkers, _ = est.chain_.shape
    # One walker's log-posterior recomputed alone takes another BLAS path
    # (matrix-vector instead of matrix-matrix), which rounds differently: the
    # double-precision models agree to ~1e-12 relative per term; PosteriorSamplesPopulation's
    # single-precision path is documented to ~1e-6 relative per object.
    rel = 1e-6 if case_id == "samples" else 1e-10
    for w, s in ((0, 0), (n_walkers - 1, n_steps // 2), (n_walkers // 2, n_steps - 1)):
        theta = est.chain_[s, w][None, :]
        assert lp.values[w, s] == pytest.approx(float(est.model_.log_prob(theta)[0]), rel=rel)
        for name, value in est.model_.constrain(theta).items():
            if name in idata.posterior:
                np.testing.assert_allclose(idata.posterior[name].values[w, s], value[0],
                                           rtol=1e-12)


def test_to_inference_data_gmm_log_likelihood_per_draw(fitted):
    pytest.importorskip("arviz")
    est = fitted["gmm"]
    idata = est.to_inference_data()
    assert idata.sample_stats["loglik"].dims == ("chain", "draw")
    assert idata.sample_stats["loglik"].shape == (est.n_chains_, est.n_draws_ // est.n_chains_)


@pytest.mark.parametrize("case_id", IDS)
def test_to_inference_data_observed_data_and_errors(case_id, fitted):
    pytest.importorskip("arviz")
    case = CASES[case_id]
    idata = fitted[case_id].to_inference_data()
    for group, expected in case.data_groups.items():
        data = getattr(idata, group)
        assert set(data.data_vars) == set(expected), group
        for name, values in expected.items():
            np.testing.assert_allclose(data[name].values, values, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{group}.{name}")


@pytest.mark.parametrize("case_id", IDS)
def test_to_inference_data_without_arviz_says_how_to_install(case_id, fitted, monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz -> ImportError
    with pytest.raises(ImportError, match=r"ArviZ.*pip install"):
        fitted[case_id].to_inference_data()


# ---------------------------------------------------------------------------
# pandas in and out
# ---------------------------------------------------------------------------
def _call(est, case, name, X, y, kw):
    args = (X, y) if dict((m[0], m[1]) for m in case.methods)[name] else (X,)
    if name == "predict" and not case.predict_takes_errors:
        kw = {}
    return getattr(est, name)(*args, **kw)


@pytest.mark.parametrize("case_id", IDS)
def test_dataframe_and_named_error_columns_give_the_numpy_fit(case_id, fitted):
    case = CASES[case_id]
    ref = fitted[case_id]
    est = case.make().fit(case.X_frame(), case.y_frame(), **case.frame_fit_kw)
    np.testing.assert_array_equal(est.feature_names_in_, np.array(case.x_cols, dtype=object))
    assert est.n_features_in_ == len(case.x_cols)
    assert not hasattr(ref, "feature_names_in_")  # the numpy fit has no names
    assert est.posterior_.keys() == ref.posterior_.keys()
    # Frames reach the sampler in another memory layout: equal to rounding.
    for name in ref.posterior_:
        np.testing.assert_allclose(est.posterior_[name], ref.posterior_[name], rtol=1e-12,
                                   err_msg=name)

    # Per-object outputs with pandas inputs: numpy arrays of the right shape,
    # equal to the numpy call; renamed columns are refused.
    for name, _, shape, kind in case.methods:
        out = _call(est, case, name, case.X_frame(), case.y_frame(), case.frame_fit_kw)
        expected = _call(ref, case, name, case.X, case.y, case.fit_kw)
        assert type(out) is np.ndarray, name
        assert out.shape == shape and out.dtype.kind == kind, (name, out.shape, out.dtype)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300, err_msg=name)
        if name.endswith("proba"):
            np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    renamed = case.X_frame().rename(columns=lambda c: f"other_{c}")
    with pytest.raises(ValueError, match="feature names"):
        est.predict(renamed)


@pytest.mark.parametrize("case_id", ["line", "distance", "population", "gmm"])
def test_error_arguments_as_one_column_frames(case_id, fitted):
    # The same X errors as (n, 1)/(n, d) DataFrames instead of Series
    # (y_err stays a Series: like y, it has shape (n,)).
    case = CASES[case_id]
    kw = {k: (v.to_frame() if isinstance(v, pd.Series) and k != "y_err" else v)
          for k, v in case.frame_fit_kw.items()}
    est = case.make().fit(case.X_frame(), case.y_frame(), **kw)
    for name in fitted[case_id].posterior_:
        np.testing.assert_allclose(est.posterior_[name], fitted[case_id].posterior_[name],
                                   rtol=1e-12)


def test_gmm_one_feature_takes_a_series_of_errors():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"v": rng.normal(size=40), "ev": rng.uniform(0.1, 0.3, 40)})
    a = BayesianGMM(n_components=2, **FAST_GMM, random_state=0).fit(frame[["v"]], X_err=frame.ev)
    b = BayesianGMM(n_components=2, **FAST_GMM, random_state=0).fit(
        frame[["v"]].to_numpy(), X_err=frame[["ev"]].to_numpy())
    # A frame's columns reach the sampler in another memory layout than a
    # C-ordered array: equal to rounding, not bit for bit.
    np.testing.assert_allclose(a.posterior_["means"], b.posterior_["means"], rtol=1e-12)
    out = a.score_samples(frame[["v"]], X_err=frame.ev)
    assert type(out) is np.ndarray and out.shape == (40,)
    np.testing.assert_allclose(out, b.score_samples(frame[["v"]].to_numpy(),
                                                    X_err=frame[["ev"]].to_numpy()), rtol=1e-12)


def test_line_plane_with_error_frame_and_return_std():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 10, size=(30, 2))
    y = 1.0 + X @ [2.0, -1.0] + rng.normal(0, 0.5, 30)
    ex = rng.uniform(0.05, 0.2, size=(30, 2))
    frame = pd.DataFrame({"u": X[:, 0], "w": X[:, 1], "y": y, "eu": ex[:, 0], "ew": ex[:, 1]})
    est = RobustLineMixture(sampler="emcee", **FAST, random_state=0)
    a = est.fit(frame[["u", "w"]], frame.y, y_err=pd.Series(np.full(30, 0.5)),
                X_err=frame[["eu", "ew"]])
    b = RobustLineMixture(sampler="emcee", **FAST, random_state=0).fit(
        X, y, y_err=np.full(30, 0.5), X_err=ex)
    # Frame columns come in Fortran order: equal to rounding, not bit for bit.
    np.testing.assert_allclose(a.posterior_["coef"], b.posterior_["coef"], rtol=1e-12)
    assert list(a.feature_names_in_) == ["u", "w"]
    mean, std = a.predict(frame[["u", "w"]], return_std=True)
    assert type(mean) is np.ndarray and type(std) is np.ndarray
    assert mean.shape == std.shape == (30,)
    np.testing.assert_allclose(mean, b.predict(X), rtol=1e-12)


# ---------------------------------------------------------------------------
# progress=True
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", IDS)
def test_progress_is_shown_on_request_and_silent_by_default(case_id, capfd):
    case = CASES[case_id]
    est = case.make()
    assert est.get_params()["progress"] is False
    est.fit(case.X, case.y, **case.fit_kw)
    out, err = capfd.readouterr()
    assert out == "" and err == ""

    case.make(progress=True).fit(case.X, case.y, **case.fit_kw)
    out, err = capfd.readouterr()
    assert out == ""
    if case.emcee:
        pytest.importorskip("tqdm")
        # emcee's tqdm bar reaches n_steps (60) steps.
        assert f"{FAST['n_steps']}/{FAST['n_steps']}" in err, err
    else:
        for c in range(1, FAST_GMM["n_chains"] + 1):
            assert f"chain {c}/{FAST_GMM['n_chains']}, sweep {FAST_GMM['n_iter']}/" in err, err


# ---------------------------------------------------------------------------
# Through skhier.pipeline.make_pipeline
# ---------------------------------------------------------------------------
def _shift(X):
    return np.asarray(X, dtype=float) + 0.25


@pytest.mark.parametrize("case_id", ["distance", "population", "samples", "gmm"])
def test_pipeline_exposes_the_extra_methods(case_id):
    case = CASES[case_id]
    pipe = make_pipeline(FunctionTransformer(_shift), case.make())
    assert isinstance(pipe, Pipeline)
    step = pipe.steps[-1][0]
    pipe.fit(case.X, **{f"{step}__{k}": v for k, v in case.fit_kw.items()})
    final, Xt = pipe[-1], _shift(case.X)
    # Through the pipeline vs on the final step: equal to rounding.
    np.testing.assert_allclose(pipe.predict_membership_proba(case.X, **case.fit_kw),
                               final.predict_membership_proba(Xt, **case.fit_kw), rtol=1e-12)
    np.testing.assert_allclose(pipe.predict(case.X, **case.fit_kw),
                               final.predict(Xt, **case.fit_kw), rtol=1e-12)
    a, b = pipe.sample_posterior(3, random_state=1), final.sample_posterior(3, random_state=1)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12)
    # The fit itself saw the transformed data.
    ref = case.make().fit(Xt, **case.fit_kw)
    for name in ref.posterior_:
        np.testing.assert_allclose(final.posterior_[name], ref.posterior_[name], rtol=1e-12)


@pytest.mark.parametrize("case_id", IDS)
def test_pipeline_score_and_score_samples_with_errors(case_id):
    case = CASES[case_id]
    pipe = make_pipeline(FunctionTransformer(_shift), case.make())
    step = pipe.steps[-1][0]
    pipe.fit(case.X, case.y, **{f"{step}__{k}": v for k, v in case.fit_kw.items()})
    final, Xt = pipe[-1], _shift(case.X)
    # score with routed errors (requested by default).
    with sklearn.config_context(enable_metadata_routing=True):
        score = pipe.score(case.X, case.y, **case.fit_kw)
    expected = final.score(Xt, case.y, **case.fit_kw)
    assert np.isfinite(score) and score == pytest.approx(expected, rel=1e-12)
    if not isinstance(final, RobustLineMixture):  # the line's score is R^2 of predict
        # ... and they are the errors given: other errors give another score.
        doubled = {k: 2.0 * np.asarray(v) for k, v in case.fit_kw.items()}
        assert final.score(Xt, case.y, **doubled) != pytest.approx(expected, rel=1e-6)
    # Per-object scores with the errors.
    if hasattr(final, "score_samples"):
        np.testing.assert_allclose(pipe.score_samples(case.X, **case.fit_kw),
                                   final.score_samples(Xt, **case.fit_kw), rtol=1e-12)
    else:
        np.testing.assert_allclose(pipe.log_predictive_density(case.X, case.y, **case.fit_kw),
                                   final.log_predictive_density(Xt, case.y, **case.fit_kw),
                                   rtol=1e-12)


# -- progress of the importance-sampling path -------------------------------------
@pytest.mark.parametrize("make", ["distance", "population"])
def test_progress_reports_importance_sampling_stages(make, capfd):
    """With the default sampler="auto" the fit usually takes the importance
    path, which has no emcee bar: progress=True reports its stages instead."""
    from skhier import HierarchicalDistanceEstimator, PopulationModel

    if make == "distance":
        d = make_cluster_parallaxes(1500, random_state=0)
        fit = lambda est: est.fit(d.X, X_err=d.X_err)  # noqa: E731
        cls = HierarchicalDistanceEstimator
    else:
        d = make_population(300, random_state=0)
        fit = lambda est: est.fit(d.X, X_err=d.X_err)  # noqa: E731
        cls = PopulationModel
    # 1 500 stars: the distance fit integrates its population posterior by
    # quadrature (no chain either), reported the same way.
    stage = "quadrature" if make == "distance" else "importance sampling"
    est = fit(cls(random_state=0))
    assert est.sampler_ == stage.split()[0]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    fit(cls(random_state=0, progress=True))
    out, err = capfd.readouterr()
    assert out == ""
    assert f"{cls.__name__} [" in err and stage in err
    assert "Pareto-k" in err
