"""Measurement errors reach every method that uses them, and their absence is flagged.

- With metadata routing on, ``Pipeline.predict(X, X_err=...)`` routes the
  errors (they are requested by default for every method that takes them),
  also for the best pipeline of ``GridSearchCV``.
- A model fitted with errors warns (``MissingErrorsWarning``) when a method
  that needs them gets none, pointing at the caller's line.
- A scalar error applies to every measurement.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    MissingErrorsWarning,
    PopulationModel,
    RobustLineMixture,
)
from skhier.datasets import (
    make_cluster_parallaxes,
    make_line_with_outliers,
    make_mixture_with_errors,
    make_population,
)
from skhier.metrics import log_predictive_density_scorer

from .helpers import FAST, ignore_convergence

pytestmark = ignore_convergence


def _cluster():
    d = make_cluster_parallaxes(30, parallax_error=0.2, random_state=0)
    err = np.linspace(0.15, 0.3, 30)[:, None]
    return d.X, err


def _population():
    d = make_population(30, random_state=0)
    return d.X, d.X_err


def _mixture():
    d = make_mixture_with_errors(60, error_scale=0.5, random_state=0)
    return d.X, d.X_err


CASES = {
    "distance": (lambda: HierarchicalDistanceEstimator(random_state=0), _cluster),
    "population": (lambda: PopulationModel(random_state=0), _population),
    "gmm": (lambda: BayesianGMM(n_components=3, n_iter=60, n_burn=20, random_state=0), _mixture),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pipeline_predict_routes_errors(case):
    make_est, data = CASES[case]
    X, err = data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(FunctionTransformer(), make_est())
        pipe.fit(X, X_err=err)
        got = pipe.predict(X, X_err=err)  # UnsetMetadataPassedError before
    direct = pipe[-1].predict(X, X_err=err)
    np.testing.assert_allclose(got, direct, rtol=1e-12)
    # The errors matter: a different error gives a different prediction.
    if case != "gmm":
        assert not np.allclose(pipe[-1].predict(X, X_err=3 * err), direct)


def test_grid_search_best_pipeline_routes_errors_to_predict():
    # (scikit-learn's cross_val_predict routes params to fit only, so a
    # predict that needs errors cannot get them there.)
    X, err = _cluster()
    est = HierarchicalDistanceEstimator(random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        grid = GridSearchCV(make_pipeline(FunctionTransformer(), est),
                            {"hierarchicaldistanceestimator__random_state": [0, 1]}, cv=3)
        grid.fit(X, X_err=err)
        best = grid.best_estimator_.predict(X, X_err=err)
    np.testing.assert_allclose(best, grid.best_estimator_[-1].predict(X, X_err=err), rtol=1e-12)


def test_predict_is_requested_only_where_the_method_takes_the_errors():
    with sklearn.config_context(enable_metadata_routing=True):
        line = RobustLineMixture().get_metadata_routing()
        dist = HierarchicalDistanceEstimator().get_metadata_routing()
    assert line.predict.requests == {"return_std": None}  # predict takes no errors
    # The distance estimator's per-row inputs: errors, sky positions and
    # per-star zero-points.
    per_row = {"X_err": True, "ra": True, "dec": True, "zero_point": True}
    assert dist.predict.requests == per_row
    assert dist.fit.requests == per_row


# -- forgotten errors ----------------------------------------------------------
def _line_fitted():
    d = make_line_with_outliers(40, outlier_fraction=0.2, random_state=1)
    est = RobustLineMixture(**FAST, random_state=0).fit(d.X, d.y, y_err=d.y_err)
    return d, est


def test_forgotten_errors_warn_at_the_callers_line():
    d, est = _line_fitted()
    with pytest.warns(MissingErrorsWarning, match=r"y_err") as record:
        est.predict_membership_proba(d.X, d.y)
    assert record[0].filename == __file__
    assert "enable_metadata_routing" in str(record[0].message)
    with pytest.warns(MissingErrorsWarning, match="log_predictive_density"):
        est.log_predictive_density(d.X, d.y)
    # Given errors, or a model fitted without errors: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingErrorsWarning)
        est.predict_membership_proba(d.X, d.y, y_err=d.y_err)
        est.predict(d.X)  # the trend needs no errors
        RobustLineMixture(scatter="vertical", **FAST, random_state=0).fit(
            d.X, d.y).predict_membership_proba(d.X, d.y)


def test_scorer_without_routing_warns_that_folds_lack_errors():
    d = make_line_with_outliers(30, outlier_fraction=0.2, random_state=1)
    # Without routing the scorer's log_predictive_density gets no y_err.
    with pytest.warns(MissingErrorsWarning, match="y_err"):
        cross_validate(RobustLineMixture(**FAST, random_state=0), d.X, d.y, cv=2,
                       scoring=log_predictive_density_scorer, params={"y_err": d.y_err})


@pytest.mark.parametrize("case", ["population", "gmm"])
def test_forgotten_errors_warn_for_density_models(case):
    make_est, data = CASES[case]
    X, err = data()
    est = make_est().fit(X, X_err=err)
    with pytest.warns(MissingErrorsWarning, match="X_err"):
        est.score_samples(X)
    with pytest.warns(MissingErrorsWarning, match="predict"):
        est.predict(X)


# -- warnings point at the user's line -------------------------------------------
def test_convergence_warning_points_at_the_callers_line():
    d = make_line_with_outliers(30, random_state=0)
    with pytest.warns(ConvergenceWarning) as record:
        RobustLineMixture(n_walkers=8, n_steps=20, n_burn=5, random_state=0).fit(
            d.X, d.y, y_err=d.y_err)
    assert {w.filename for w in record if issubclass(w.category, ConvergenceWarning)} == {__file__}
    # Parameters are named for the user, not by the sampler's coordinates.
    messages = " ".join(str(w.message) for w in record)
    assert "worst: " in messages
    assert not re.search(r"worst: (log|logit|z)_", messages)


def test_sampled_coordinates_are_named_for_the_user():
    from skhier._base import _user_label

    assert _user_label("log_outlier_std") == "outlier_std (sampled as its log)"
    assert _user_label("logit_outlier_fraction") == "outlier_fraction (sampled as its logit)"
    assert _user_label("z_mean").startswith("mean (sampled")
    assert _user_label("coef[0]") == "coef[0]"


# -- scalar errors ------------------------------------------------------------
def test_scalar_error_is_broadcast():
    d = make_line_with_outliers(30, random_state=0)
    a = RobustLineMixture(**FAST, random_state=0).fit(d.X, d.y, y_err=0.5)
    b = RobustLineMixture(**FAST, random_state=0).fit(d.X, d.y, y_err=np.full(30, 0.5))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12)
    np.testing.assert_allclose(
        a.predict_membership_proba(d.X, d.y, y_err=0.5),
        b.predict_membership_proba(d.X, d.y, y_err=np.full(30, 0.5)), rtol=1e-12)
    X, _ = _population()
    p = PopulationModel(random_state=0).fit(X, X_err=1.0)
    q = PopulationModel(random_state=0).fit(X, X_err=np.ones(len(X)))
    for name in q.posterior_:
        np.testing.assert_allclose(p.posterior_[name], q.posterior_[name], rtol=1e-12)
    with pytest.raises(ValueError, match="y_err"):
        RobustLineMixture(**FAST).fit(d.X, d.y, y_err=-1.0)
    with pytest.raises(TypeError, match="y_err"):
        RobustLineMixture(**FAST).fit(d.X, d.y, y_err="big")
