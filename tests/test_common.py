"""The contract every public estimator keeps: one front door.

- scikit-learn's ``parametrize_with_checks`` over every public estimator
  (all five families; the posterior-samples population with a parametric and
  a histogram population), with one table of expected failures, each with its
  reason;
- the one-column versions of the checks that the one-column estimators
  (``PopulationModel``, ``HierarchicalDistanceEstimator``) cannot run, over
  both of them;
- feature names and ``n_features_in_`` after a DataFrame fit, over every
  estimator.

Sampler settings come from ``helpers.FAST`` (short chains): these checks test
the API contract, not the statistics. Bad input, input mutation, determinism,
refits and pickling are crossed with every estimator and data method in
``test_reliability.py`` (its ``SPECS`` table is reused here); the maths of
each model is tested in its own module.
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhier import (
    BayesianGMM,
    HierarchicalDistanceEstimator,
    HierarchicalDistanceEstimator3D,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)
from skhier.pipeline import make_pipeline

from .helpers import FAST, MULTI_COLUMN_CHECKS
from .test_reliability import SPEC_IDS, SPECS

#: Short Gibbs runs for BayesianGMM's contract checks.
FAST_GMM = {"n_chains": 2, "n_iter": 40, "n_burn": 10}

class _HierarchicalDistanceEstimator3D(HierarchicalDistanceEstimator3D):
    """HierarchicalDistanceEstimator3D for scikit-learn's checks, which pass no
    metadata: a row without ``ra``/``dec`` gets a sky position that is a fixed
    function of its parallax (so every row's prediction still depends on that
    row only). The public class refuses such rows (tests/test_cluster3d.py)
    and is crossed with positions in test_reliability.py."""

    checks_public_class = HierarchicalDistanceEstimator3D

    def _stars(self, X, X_err, ra, dec, zero_point, *, reset):
        if ra is None and dec is None:
            plx, _ = self._parallaxes(X, X_err, reset=reset)
            ra, dec = 56.0 + 0.5 * np.tanh(plx), 24.0 + 0.5 * np.tanh(3.0 * plx)
        return super()._stars(X, X_err, ra, dec, zero_point, reset=reset)


ESTIMATORS = [
    RobustLineMixture(**FAST, random_state=0),
    # A short importance-sampling run (its ESS warning is expected).
    HierarchicalDistanceEstimator(parallax_error=1.0, sampler="importance", n_importance=300,
                                  **FAST, random_state=0),
    _HierarchicalDistanceEstimator3D(parallax_error=1.0, sampler="importance",
                                     n_importance=300, **FAST, random_state=0),
    PopulationModel(**FAST, random_state=0),
    PosteriorSamplesPopulation(**FAST, random_state=0),
    PosteriorSamplesPopulation("histogram", n_bins=4, **FAST, random_state=0),
    BayesianGMM(n_components=3, **FAST_GMM, random_state=0),
]


def _one_column(name, quantity):
    return (
        f"{name} models one measured quantity per object ({quantity}), so X must have a "
        "single column and several columns raise a ValueError rather than being ignored; "
        "this check fits X with several columns. What it tests is checked on one-column "
        "data in test_one_column_versions_of_the_multi_column_checks."
    )


# Checks that cannot pass, with the reason. Keep empty unless justified.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "HierarchicalDistanceEstimator": dict.fromkeys(
        MULTI_COLUMN_CHECKS, _one_column("HierarchicalDistanceEstimator", "the parallax")),
    "_HierarchicalDistanceEstimator3D": dict.fromkeys(
        MULTI_COLUMN_CHECKS, _one_column("HierarchicalDistanceEstimator3D", "the parallax")),
    "PopulationModel": dict.fromkeys(
        MULTI_COLUMN_CHECKS, _one_column("PopulationModel", "the measured value")),
    "BayesianGMM": {
        "check_sample_weight_equivalence_on_dense_data": (
            "a Gibbs sampler: integer weights give the posterior of repeated rows, but "
            "the weighted and repeated fits draw different random streams, so the "
            "fitted means agree within Monte Carlo error, not to 1e-7; tested in "
            "tests/test_gmm_dask.py::test_integer_weights_equal_repeated_rows"
        ),
    },
}


_MCMC_WEIGHTS = (
    "an MCMC fit: the weighted and the repeated-rows fits run different chains and "
    "their predictions agree within Monte Carlo error, not to 1e-7 (and the "
    "data-derived default priors see each object once); integer weights are tested "
    "against repeated rows in tests/test_sample_weight.py"
)
EXPECTED_FAILED_CHECKS["PosteriorSamplesPopulation"] = {
    "check_sample_weight_equivalence_on_dense_data": _MCMC_WEIGHTS,
}

#: Checks not run, with the reason (per estimator).
SKIPPED_CHECKS = {
    "RobustLineMixture": {
        "check_sample_weight_equivalence_on_dense_data": (
            "fits 30 coefficients to 15 rows (weighted and repeated) and compares the "
            "predictions to 1e-7: an MCMC fit of such a line agrees within Monte Carlo "
            "error only, and its 31-dimensional MAP search takes minutes; integer "
            "weights are tested against repeated rows in tests/test_sample_weight.py"
        ),
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::skhier.ReweightingWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    skipped = SKIPPED_CHECKS.get(type(estimator).__name__, {})
    name = getattr(check, "func", check).__name__
    if name in skipped:
        pytest.skip(skipped[name])
    check(estimator)


def test_every_public_estimator_is_checked():
    import skhier

    public = {name for name in skhier.__all__
              if isinstance(getattr(skhier, name), type) and hasattr(getattr(skhier, name), "fit")}
    assert public == {getattr(type(est), "checks_public_class", type(est)).__name__
                      for est in ESTIMATORS}
    assert public == {type(spec.make()).__name__ for spec in SPECS}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: convergence warnings expected
        return fn(*args, **kwargs)


ONE_COLUMN = [spec for spec in SPECS if spec.name in ("distance", "distance3d", "population")]


@pytest.mark.parametrize("spec", ONE_COLUMN, ids=[s.name for s in ONE_COLUMN])
def test_one_column_versions_of_the_multi_column_checks(spec):
    """What the expected-failed checks test, on one-column data."""
    data = spec.data(np.random.default_rng(0))
    X, errors = data["X"], data["errors"]
    n = len(X)
    est = spec.make()
    with pytest.raises(NotFittedError):
        est.predict(X, **errors)
    params_before = est.get_params()
    fitted = _quiet(est.fit, X, **errors)
    # check_estimators_fit_returns_self, check_dont_overwrite_parameters,
    # check_n_features_in_after_fitting
    assert fitted is est and est.get_params() == params_before
    assert est.n_features_in_ == 1
    public = {k for k in vars(est) if not k.startswith("_") and not k.endswith("_")}
    assert public == set(params_before)
    # check_fit_idempotent, check_fit_score_takes_y, check_pipeline_consistency
    pred = _quiet(est.predict, X, **errors)
    again = _quiet(clone(est).fit, X, **errors)
    np.testing.assert_allclose(_quiet(again.predict, X, **errors), pred, rtol=1e-12)
    with_y = _quiet(clone(est).fit, X, np.zeros(n), **errors)
    np.testing.assert_allclose(_quiet(with_y.predict, X, **errors), pred, rtol=1e-12)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _quiet(make_pipeline(FunctionTransformer(), clone(est)).fit, X, **errors)
        np.testing.assert_allclose(_quiet(pipe.score_samples, X, **errors),
                                   _quiet(est.score_samples, X, **errors), rtol=1e-12)
    # check_methods_sample_order_invariance, check_methods_subset_invariance
    perm = np.random.default_rng(1).permutation(n)
    for method in ("predict", "score_samples", "predict_membership_proba"):
        full = _quiet(getattr(est, method), X, **errors)
        permuted = {k: v[perm] for k, v in errors.items()}
        np.testing.assert_allclose(_quiet(getattr(est, method), X[perm], **permuted), full[perm],
                                   rtol=1e-12)
        head = {k: v[:7] for k, v in errors.items()}
        np.testing.assert_allclose(_quiet(getattr(est, method), X[:7], **head), full[:7],
                                   rtol=1e-12)
    # check_readonly_memmap_input, check_f_contiguous_array_estimator,
    # check_dtype_object, check_estimators_dtypes
    Xr = np.asfortranarray(X.copy())
    Xr.setflags(write=False)
    np.testing.assert_allclose(_quiet(est.predict, Xr, **errors), pred, rtol=1e-12)
    np.testing.assert_allclose(_quiet(est.predict, X.astype(object), **errors), pred, rtol=1e-12)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(_quiet(est.predict, X32, **errors),
                               _quiet(est.predict, X32.astype(np.float64), **errors), rtol=1e-12)
    # check_estimators_nan_inf
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 0] = bad
        with pytest.raises(ValueError, match="X"):
            clone(est).fit(Xb, **errors)
    # check_fit2d_predict1d, check_n_features_in (one column expected)
    with pytest.raises(ValueError):
        est.predict(X[:, 0], **errors)
    with pytest.raises(ValueError):
        est.predict(np.hstack([X, X]), **errors)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_feature_names_after_a_dataframe_fit(spec):
    pd = pytest.importorskip("pandas")
    data = spec.data(np.random.default_rng(0))
    X = data["X"]
    columns = [f"col_{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    args = (frame,) if data["y"] is None else (frame, data["y"])
    est = _quiet(spec.make().fit, *args, **data["errors"])
    assert est.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    # The same data as an array: the same fit, and no feature names.
    plain = _quiet(spec.make().fit, X, *args[1:], **data["errors"])
    assert not hasattr(plain, "feature_names_in_")
    for name, draws in est.posterior_.items():
        np.testing.assert_allclose(draws, plain.posterior_[name], rtol=1e-12)
    # Predicting from a frame with other column names is refused (scikit-learn's rule).
    renamed = frame.rename(columns={columns[0]: "other"})
    with pytest.raises(ValueError, match="feature names"):
        _quiet(est.predict, renamed)
