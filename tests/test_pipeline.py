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
    np.testing.assert_allclose(
        pipe.predict_membership_proba(d.X, d.y, y_err=d.y_err),
        final.predict_membership_proba(d.X + 10.0, d.y, y_err=d.y_err), rtol=1e-12, atol=1e-15,
    )
    np.testing.assert_allclose(
        pipe.log_predictive_density(d.X, d.y, y_err=d.y_err),
        final.log_predictive_density(d.X + 10.0, d.y, y_err=d.y_err), rtol=1e-12,
    )
    a = pipe.sample_posterior(4, random_state=1)
    b = final.sample_posterior(4, random_state=1)
    np.testing.assert_allclose(a["coef"], b["coef"], rtol=1e-12)


def test_methods_absent_when_final_step_lacks_them():
    from sklearn.linear_model import LinearRegression

    pipe = make_pipeline(FunctionTransformer(), LinearRegression())
    assert not hasattr(pipe, "predict_membership_proba")
    assert not hasattr(pipe, "sample_posterior")
    with pytest.raises(AttributeError):
        pipe.sample_posterior(1)


# -- pandas in and out: set_output and feature names (big-catalogue/parallel block) ----------
def _df_fits():
    """(name, unfitted estimator, fit DataFrame, fit kwargs, predict method) per estimator."""
    import pandas as pd

    from skhier import (
        BayesianGMM,
        HierarchicalDistanceEstimator,
        PopulationModel,
        PosteriorSamplesPopulation,
    )

    rng = np.random.default_rng(0)
    n = 60
    x = rng.uniform(-3, 3, n)
    line_df = pd.DataFrame({"x1": x, "x2": rng.normal(size=n)})
    y = 2 * x + 1 + rng.normal(0, 0.3, n)
    plx = pd.DataFrame({"parallax": 5 + 0.1 * rng.standard_normal(n)})
    vals = pd.DataFrame({"velocity": rng.normal(3, 1, n)})
    samples = pd.DataFrame(rng.normal(0, 1, (n, 1)) + 0.3 * rng.standard_normal((n, 20)),
                           columns=[f"s{j}" for j in range(20)])
    gmm_df = pd.DataFrame(rng.normal(size=(n, 2)), columns=["u", "v"])
    return [
        ("line", RobustLineMixture(**FAST, random_state=0), line_df, y, {"y_err": np.full(n, 0.3)}),
        ("distance", HierarchicalDistanceEstimator(parallax_error=0.1, random_state=0), plx,
         None, {}),
        ("population", PopulationModel(random_state=0), vals, None, {"X_err": np.full(n, 0.5)}),
        ("samples", PosteriorSamplesPopulation(**FAST, random_state=0), samples, None, {}),
        ("gmm", BayesianGMM(n_components=2, n_chains=1, n_iter=20, n_burn=5, random_state=0),
         gmm_df, None, {}),
    ]


@ignore_convergence
@pytest.mark.parametrize("case", range(5))
def test_dataframes_keep_feature_names_and_check_them(case):
    pytest.importorskip("pandas")
    name, est, df, y, kwargs = _df_fits()[case]
    est.fit(df, y, **kwargs)
    np.testing.assert_array_equal(est.feature_names_in_, np.asarray(df.columns, dtype=object))
    assert est.n_features_in_ == df.shape[1]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = est.predict(df.to_numpy())
    # A frame converts to a Fortran-ordered array: equal to rounding.
    np.testing.assert_allclose(est.predict(df), from_array, rtol=1e-12)
    # Columns renamed (same values): refused as scikit-learn refuses it.
    renamed = df.rename(columns={df.columns[0]: "something_else"})
    with pytest.raises(ValueError, match="feature names"):
        est.predict(renamed)
    # Fitted without names, predicting with names: scikit-learn's warning.
    plain = type(est)(**est.get_params()).fit(df.to_numpy(), y, **kwargs)
    assert not hasattr(plain, "feature_names_in_")
    with pytest.warns(UserWarning, match="feature names"):
        plain.predict(df)


@ignore_convergence
def test_set_output_pandas_pipeline_fits_and_predicts():
    pd = pytest.importorskip("pandas")
    from sklearn.preprocessing import StandardScaler

    from skhier import BayesianGMM

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(-2, 1, 80), "b": rng.normal(5, 2, 80)})
    y = 3 * df["a"] - df["b"] + rng.normal(0, 0.2, 80)
    pipe = make_pipeline(StandardScaler().set_output(transform="pandas"),
                         RobustLineMixture(**FAST, random_state=0))
    pipe.fit(df, y, robustlinemixture__y_err=np.full(80, 0.2))
    # The scaler handed the estimator a DataFrame: it kept the column names.
    np.testing.assert_array_equal(pipe[-1].feature_names_in_, ["a", "b"])
    np.testing.assert_array_equal(pipe.feature_names_in_, ["a", "b"])
    pred = pipe.predict(df)
    np.testing.assert_allclose(pred, pipe[-1].predict(pipe[0].transform(df)), rtol=1e-12)
    assert pipe.score(df, y) > 0.9
    proba = pipe.predict_membership_proba(df, y.to_numpy(), y_err=np.full(80, 0.2))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="feature names"):
        pipe.predict(df[["b", "a"]])
    gpipe = make_pipeline(StandardScaler().set_output(transform="pandas"),
                          BayesianGMM(n_components=2, n_chains=1, n_iter=20, n_burn=5,
                                      random_state=0)).fit(df)
    np.testing.assert_array_equal(gpipe[-1].feature_names_in_, ["a", "b"])
    assert gpipe.predict(df).shape == (80,)
