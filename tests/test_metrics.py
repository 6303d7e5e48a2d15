import functools

import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skhier import RobustLineMixture
from skhier.datasets import make_line_with_outliers
from skhier.metrics import LogPredictiveDensityScorer, log_predictive_density_scorer

from .helpers import FAST, decode_ids, encode_ids, ignore_convergence

SEEN = []


class RecordingLine(RobustLineMixture):
    @functools.wraps(RobustLineMixture.log_predictive_density)
    def log_predictive_density(self, X, y, **kwargs):
        SEEN.append(decode_ids(kwargs["y_err"]))
        return super().log_predictive_density(X, y, **kwargs)


@ignore_convergence
def test_scorer_receives_each_folds_errors_and_uses_full_posterior():
    d = make_line_with_outliers(30, random_state=0)
    err = encode_ids(30)
    cv = KFold(3, shuffle=True, random_state=0)
    SEEN.clear()
    with sklearn.config_context(enable_metadata_routing=True):
        res = cross_validate(RecordingLine(**FAST, random_state=0), d.X, d.y, cv=cv,
                             scoring=log_predictive_density_scorer, params={"y_err": err},
                             return_estimator=True)
    seen_in_cv = list(SEEN)  # the loop below calls the method again
    for (_, test), seen, est, score in zip(cv.split(d.X), seen_in_cv, res["estimator"],
                                           res["test_score"], strict=True):
        np.testing.assert_array_equal(seen, test)
        expected = est.log_predictive_density(d.X[test], d.y[test], y_err=err[test]).mean()
        assert score == pytest.approx(expected)


@ignore_convergence
def test_scorer_in_grid_search_prefers_the_right_model():
    # Data with 20% gross outliers: the outlier mixture predicts held-out
    # points far better than a model without it.
    d = make_line_with_outliers(60, outlier_fraction=0.2, outlier_std=30, random_state=2)
    with sklearn.config_context(enable_metadata_routing=True):
        grid = GridSearchCV(
            RobustLineMixture(n_steps=300, random_state=0), {"outliers": [False, True]},
            scoring=log_predictive_density_scorer, cv=3,
        ).fit(d.X, d.y, y_err=d.y_err)
    assert grid.best_params_ == {"outliers": True}


def test_scorer_rejects_unknown_metadata_and_unscorable_estimators():
    scorer = LogPredictiveDensityScorer(metadata=("y_err",))
    with pytest.raises(TypeError, match="Unexpected metadata"):
        scorer(None, np.zeros((3, 1)), np.zeros(3), X_err=np.ones((3, 1)))
    with pytest.raises(TypeError, match="predictive density"):
        scorer(object(), np.zeros((3, 1)))
