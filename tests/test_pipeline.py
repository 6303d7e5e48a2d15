import numpy as np
import pytest
from sklearn.preprocessing import FunctionTransformer

from skhier import RobustLineMixture
from skhier.datasets import make_line_with_outliers
from skhier.pipeline import Pipeline, make_pipeline

from .helpers import FAST, ignore_convergence


@ignore_convergence
def test_pipeline_exposes_extra_methods_through_transforms():
    d = make_line_with_outliers(40, random_state=0)
    # The transform shifts X; the pipeline must apply it before the final step.
    shift = FunctionTransformer(lambda X: X + 10.0)
    pipe = make_pipeline(shift, RobustLineMixture(**FAST, random_state=0))
    assert isinstance(pipe, Pipeline)
    pipe.fit(d.X, d.y, robustlinemixture__y_err=d.y_err)
    final = pipe[-1]
    np.testing.assert_array_equal(
        pipe.predict_membership_proba(d.X, d.y, y_err=d.y_err),
        final.predict_membership_proba(d.X + 10.0, d.y, y_err=d.y_err),
    )
    np.testing.assert_array_equal(
        pipe.log_predictive_density(d.X, d.y, y_err=d.y_err),
        final.log_predictive_density(d.X + 10.0, d.y, y_err=d.y_err),
    )
    a = pipe.sample_posterior(4, random_state=1)
    b = final.sample_posterior(4, random_state=1)
    np.testing.assert_array_equal(a["coef"], b["coef"])


def test_methods_absent_when_final_step_lacks_them():
    from sklearn.linear_model import LinearRegression

    pipe = make_pipeline(FunctionTransformer(), LinearRegression())
    assert not hasattr(pipe, "predict_membership_proba")
    assert not hasattr(pipe, "sample_posterior")
    with pytest.raises(AttributeError):
        pipe.sample_posterior(1)
