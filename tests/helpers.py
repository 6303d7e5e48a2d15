"""Test utilities shared by the estimator test modules.

``FAST`` holds the sampler settings for scikit-learn's common checks and
other smoke tests (one place, as imbalanced-learn does), so the default
suite stays quick without weakening the statistical tests, which set their
own, longer runs.
"""

from __future__ import annotations

import functools

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

#: Short emcee runs for API/contract tests (not for statistical checks).
FAST = {"n_walkers": 16, "n_steps": 60, "n_burn": 20}

#: Error values encode the row id: value = BASE + STEP * row_id.
ID_BASE, ID_STEP = 0.5, 1e-3


def encode_ids(n: int, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    """Error array whose first column/element per row equals BASE + STEP*id."""
    vals = ID_BASE + ID_STEP * np.arange(n)
    out = np.broadcast_to(vals.reshape((n,) + (1,) * len(shape_tail)), (n,) + shape_tail)
    return np.array(out)


def decode_ids(err) -> np.ndarray:
    arr = np.asarray(err, dtype=float).reshape(len(err), -1)[:, 0]
    return np.rint((arr - ID_BASE) / ID_STEP).astype(int)


def recording_subclass(estimator_cls, error_name: str):
    """Subclass of ``estimator_cls`` that records the row ids of the errors
    it receives in ``fit`` and ``score`` (kept on the class, since
    meta-estimators clone their steps)."""

    calls: list[tuple[str, np.ndarray | None]] = []

    def wrap(method_name):
        method = getattr(estimator_cls, method_name)

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            err = kwargs.get(error_name)
            calls.append((method_name, None if err is None else decode_ids(err)))
            return method(self, *args, **kwargs)

        return wrapper

    cls = type(
        "Recording" + estimator_cls.__name__,
        (estimator_cls,),
        {"fit": wrap("fit"), "score": wrap("score"), "__module__": __name__},
    )
    cls.calls = calls
    return cls


def assert_error_routing(estimator, X, y, error_name: str, errors, *, param_grid=None):
    """Check that ``errors`` reach fit and score row-for-row in every fold.

    Runs, with ``enable_metadata_routing=True`` and no ``set_*_request``
    call: ``Pipeline.fit``, ``cross_validate`` (fit and score) and
    ``GridSearchCV`` (fit and score). ``errors`` must come from
    :func:`encode_ids`. Also checks that a wrong-length error array raises
    ``ValueError``.
    """
    n = len(X)
    cls = recording_subclass(type(estimator), error_name)
    est = cls(**estimator.get_params())
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    folds = list(cv.split(X))
    with sklearn.config_context(enable_metadata_routing=True):
        # Pipeline: the whole data set.
        pipe = make_pipeline(FunctionTransformer(), clone(est))
        cls.calls.clear()
        pipe.fit(X, y, **{error_name: errors})
        assert [c[0] for c in cls.calls] == ["fit"]
        np.testing.assert_array_equal(cls.calls[0][1], np.arange(n))

        # cross_validate: each fold's fit gets the train rows, score the test rows.
        cls.calls.clear()
        cross_validate(clone(est), X, y, cv=cv, params={error_name: errors})
        fits = [c[1] for c in cls.calls if c[0] == "fit"]
        scores = [c[1] for c in cls.calls if c[0] == "score"]
        assert len(fits) == len(scores) == 3
        for (train, test), f, s in zip(folds, fits, scores, strict=True):
            np.testing.assert_array_equal(f, train)
            np.testing.assert_array_equal(s, test)

        # GridSearchCV: same per fold and candidate, then a refit on all rows.
        grid = param_grid or {"random_state": [0, 1]}
        cls.calls.clear()
        GridSearchCV(clone(est), grid, cv=cv).fit(X, y, **{error_name: errors})
        fits = [c[1] for c in cls.calls if c[0] == "fit"]
        scores = [c[1] for c in cls.calls if c[0] == "score"]
        n_cand = int(np.prod([len(v) for v in grid.values()]))
        assert len(fits) == 3 * n_cand + 1 and len(scores) == 3 * n_cand
        expected_train = [train for _ in range(n_cand) for train, _ in folds]
        expected_test = [test for _ in range(n_cand) for _, test in folds]
        for f, t in zip(sorted(map(tuple, fits[:-1])), sorted(map(tuple, expected_train)), strict=True):
            assert f == t
        for s, t in zip(sorted(map(tuple, scores)), sorted(map(tuple, expected_test)), strict=True):
            assert s == t
        np.testing.assert_array_equal(fits[-1], np.arange(n))

    # A wrong-length error array is refused with a message naming it.
    import pytest

    with pytest.raises(ValueError, match=error_name):
        clone(estimator).fit(X, y, **{error_name: errors[:-1]})


#: Mark for tests that run FAST (deliberately short) chains: their
#: ConvergenceWarnings are expected and not what the test is about.
import pytest  # noqa: E402

ignore_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

#: scikit-learn checks that fit X with several columns. Estimators of one
#: measured quantity per object (PopulationModel, HierarchicalDistanceEstimator)
#: refuse such X with a ValueError, so these are their justified expected
#: failures; the behaviour each check tests is covered on one-column data.
MULTI_COLUMN_CHECKS = (
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
)


def split_rhat_by_hand(chains):
    """Split R-hat (BDA3 section 11.4) of one scalar, chains of shape (C, n):
    an independent reference for the estimators' diagnostics."""
    h = chains.shape[1] // 2
    halves = np.concatenate([chains[:, :h], chains[:, -h:]])
    w = halves.var(axis=1, ddof=1).mean()
    b = h * halves.mean(axis=1).var(ddof=1)
    return np.sqrt(((h - 1) / h * w + b / h) / w)
