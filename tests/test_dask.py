"""Scoring catalogues held in Dask arrays and DataFrames.

dask-ml's ``ParallelPostFit`` fits the wrapped skhier estimator in memory
and maps ``predict`` over the blocks of a Dask collection; the methods that
take per-row measurement errors (``predict_membership_proba``,
``score_samples`` with ``X_err``) are mapped with ``dask.array.map_blocks``
(the recipe in docs/scale.rst). Both must give exactly the in-memory
answers, block by block, with the local schedulers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skhier import BayesianGMM, PopulationModel, RobustLineMixture

from .helpers import FAST

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
wrappers = pytest.importorskip("dask_ml.wrappers")


@pytest.fixture(scope="module")
def line_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-5, 5, (200, 1))
    y = 2 * X[:, 0] + 1 + rng.normal(0, 0.5, 200)
    X_new = rng.uniform(-5, 5, (5000, 1))
    y_new = 2 * X_new[:, 0] + 1 + rng.normal(0, 0.5, 5000)
    return X, y, X_new, y_new


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_parallel_post_fit_predict_matches_in_memory(line_data, scheduler):
    X, y, X_new, _ = line_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = wrappers.ParallelPostFit(RobustLineMixture(**FAST, random_state=0))
        wrapped.fit(X, y, y_err=np.full(len(y), 0.5))
    dX = da.from_array(X_new, chunks=(1300, 1))  # uneven last block
    lazy = wrapped.predict(dX)
    assert isinstance(lazy, da.Array)
    with dask.config.set(scheduler=scheduler):
        got = lazy.compute()
    # Blocks of rows vs one pass: equal to rounding, not bit for bit.
    np.testing.assert_allclose(got, wrapped.estimator.predict(X_new), rtol=1e-12)


def test_parallel_post_fit_on_a_dask_dataframe(line_data):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y, X_new, _ = line_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = wrappers.ParallelPostFit(RobustLineMixture(**FAST, random_state=0))
        wrapped.fit(pd.DataFrame({"x": X[:, 0]}), y, y_err=np.full(len(y), 0.5))
    df = pd.DataFrame({"x": X_new[:, 0]})
    with dask.config.set(scheduler="synchronous"):
        got = np.asarray(wrapped.predict(dd.from_pandas(df, npartitions=4)).compute())
    np.testing.assert_allclose(got, wrapped.estimator.predict(df), rtol=1e-12)


def test_parallel_post_fit_gmm_predict():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = wrappers.ParallelPostFit(
            BayesianGMM(n_components=2, n_chains=2, n_iter=60, n_burn=20, random_state=0)
        ).fit(X)
    X_new = rng.normal(0, 3, (3000, 2))
    with dask.config.set(scheduler="synchronous"):
        got = wrapped.predict(da.from_array(X_new, chunks=(700, 2))).compute()
    # Integer labels: argmax of the same probabilities to rounding.
    np.testing.assert_array_equal(got, wrapped.estimator.predict(X_new))


def test_map_blocks_recipe_with_per_row_errors(line_data):
    """The documented recipe for methods that need the rows' errors."""
    X, y, X_new, y_new = line_data
    rng = np.random.default_rng(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        line = RobustLineMixture(**FAST, random_state=0).fit(X, y, y_err=np.full(len(y), 0.5))
        pop = PopulationModel(outliers=True, random_state=0).fit(
            y[:, None], X_err=np.full((len(y), 1), 0.5))
    e_new = rng.uniform(0.2, 1.0, len(y_new))
    dX = da.from_array(X_new, chunks=(1300, 1))
    dy = da.from_array(y_new, chunks=1300)
    de = da.from_array(e_new, chunks=1300)

    proba = da.map_blocks(
        lambda x, yy, e: line.predict_membership_proba(x, yy[:, 0], y_err=e[:, 0]),
        dX, dy[:, None], de[:, None], chunks=(dX.chunks[0], (2,)), dtype=float,
    )
    dens = da.map_blocks(
        lambda yy, e: pop.score_samples(yy, X_err=e),
        dy[:, None], de[:, None], drop_axis=1, chunks=(dy.chunks[0],), dtype=float,
    )
    with dask.config.set(scheduler="threads"):
        got_proba, got_dens = dask.compute(proba, dens)
    np.testing.assert_allclose(got_proba, line.predict_membership_proba(X_new, y_new, y_err=e_new),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got_dens, pop.score_samples(y_new[:, None], X_err=e_new[:, None]),
                               rtol=1e-12)
    np.testing.assert_allclose(got_proba.sum(axis=1), 1.0)
