"""The base's one sampler dispatch, shared by every emcee/importance estimator."""

import inspect

import pytest
from sklearn.base import clone

import skhier._base
import skhier._importance
from skhier import (
    HierarchicalDistanceEstimator,
    PopulationModel,
    PosteriorSamplesPopulation,
    RobustLineMixture,
)
from skhier.datasets import make_cluster_parallaxes, make_line_with_outliers, make_population

QUICK = dict(n_walkers=8, n_steps=40, n_burn=10)


def _fit(name, **params):
    if name == "line":
        d = make_line_with_outliers(20, random_state=0)
        return RobustLineMixture(random_state=0, **QUICK, **params).fit(d.X, d.y, y_err=d.y_err)
    if name == "population":
        d = make_population(30, random_state=0)
        return PopulationModel(random_state=0, **QUICK, **params).fit(d.X, X_err=d.X_err)
    d = make_cluster_parallaxes(30, random_state=0)
    return HierarchicalDistanceEstimator(random_state=0, **QUICK, **params).fit(d.X, X_err=d.X_err)


@pytest.fixture
def no_laplace(monkeypatch):
    """A posterior whose Hessian at the maximum is not negative definite."""
    for module in (skhier._base, skhier._importance):
        monkeypatch.setattr(module, "laplace_covariance", lambda *a, **k: None)


@pytest.mark.parametrize("name", ["line", "population", "distance"])
def test_importance_without_laplace_raises(no_laplace, name):
    with pytest.raises(ValueError, match="sampler='importance' needs a Laplace"):
        _fit(name, sampler="importance")


@pytest.mark.parametrize("name", ["line", "population", "distance"])
def test_auto_without_laplace_runs_emcee(no_laplace, name):
    est = _fit(name, sampler="auto")
    assert est.sampler_ == "emcee"
    assert est.pareto_k_ is None
    assert est.n_steps_ == QUICK["n_steps"]
    assert est.chain_.shape[1] >= QUICK["n_walkers"]  # an ensemble, not one resampled chain


@pytest.mark.parametrize(
    "cls", [RobustLineMixture, PopulationModel, HierarchicalDistanceEstimator]
)
def test_sampler_declared_once(cls):
    base = skhier._base.BaseHierarchicalEstimator._parameter_constraints
    est = cls(sampler="emcee", n_importance=300)
    assert est.get_params()["sampler"] == "emcee"
    assert est.get_params()["n_importance"] == 300
    for name in ("sampler", "n_importance"):
        assert cls._parameter_constraints[name] is base[name]


@pytest.mark.parametrize(
    "cls", [RobustLineMixture, PopulationModel, HierarchicalDistanceEstimator,
            PosteriorSamplesPopulation]
)
def test_sampler_settings_complete_each_signature(cls):
    """Each estimator's __init__ takes the sampler settings as **sampler_settings;
    its signature lists them, keyword-only, with the base's defaults after the
    estimator's own parameters (what get_params, clone and help read)."""
    shared = list(inspect.signature(skhier._base.BaseHierarchicalEstimator.__init__)
                  .parameters.values())[1:]
    params = list(inspect.signature(cls).parameters.values())
    assert params[-len(shared):] == shared
    assert all(p.kind is not p.VAR_KEYWORD for p in params)
    est = clone(cls(n_walkers=12, thin=3))
    assert est.n_walkers == 12 and est.thin == 3 and est.sampler == "auto"
    assert {p.name for p in shared} <= set(est.get_params())
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_walker'"):
        cls(n_walker=12)
