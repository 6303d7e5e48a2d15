"""A scikit-learn ``Pipeline`` that also exposes skhier's extra methods.

scikit-learn's :class:`~sklearn.pipeline.Pipeline` forwards only the methods
it knows (``predict``, ``predict_proba``, ``score_samples``, ...). skhier's
estimators add ``predict_membership_proba``, ``sample_posterior`` and, for
the line fit, ``log_predictive_density``; this subclass forwards them too,
transforming ``X`` through the earlier steps first — the same approach that
imbalanced-learn takes for ``fit_resample``.
"""

from __future__ import annotations

from sklearn import pipeline as _skpipeline
from sklearn.utils.metaestimators import available_if

__all__ = ["Pipeline", "make_pipeline"]


def _final_estimator_has(attr):
    def check(self):
        return hasattr(self._final_estimator, attr)

    return check


class Pipeline(_skpipeline.Pipeline):
    """Pipeline of transforms with a final skhier estimator.

    Identical to :class:`sklearn.pipeline.Pipeline`, plus:

    - ``predict_membership_proba(X, *args, **kwargs)``,
      ``log_predictive_density(X, y, **kwargs)``, ``score_samples(X, **kwargs)``:
      ``X`` is transformed by
      every step but the last, then passed on with the other arguments
      (e.g. ``y`` and the measurement errors) unchanged;
    - ``sample_posterior(n_samples=1, random_state=None)``: the final
      estimator's posterior draws.

    Transforms earlier in the pipeline change ``X`` but not its measurement
    errors: do not rescale error-carrying columns outside the estimator.

    pandas: transforms configured with ``set_output(transform="pandas")``
    hand the final step a DataFrame, whose column names it keeps in
    ``feature_names_in_`` and checks at prediction time, as scikit-learn's
    estimators do. No skhier estimator has ``transform``, so none defines
    ``get_feature_names_out``: a skhier estimator is always the final step.

    Examples
    --------
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from skhier import RobustLineMixture
    >>> from skhier.datasets import load_hogg2010
    >>> from skhier.pipeline import make_pipeline
    >>> d = load_hogg2010()
    >>> pipe = make_pipeline(FunctionTransformer(), RobustLineMixture(random_state=0))
    >>> pipe = pipe.fit(d.X, d.y, robustlinemixture__y_err=d.y_err)
    >>> pipe.predict_membership_proba(d.X, d.y, y_err=d.y_err).shape
    (20, 2)
    >>> sorted(pipe.sample_posterior(3))[:2]
    ['coef', 'intercept']
    """

    def _transform_through(self, X):
        Xt = X
        for _, _, transform in self._iter(with_final=False):
            Xt = transform.transform(Xt)
        return Xt

    @available_if(_final_estimator_has("predict_membership_proba"))
    def predict_membership_proba(self, X, *args, **kwargs):
        """Membership probabilities of the final estimator on transformed X."""
        return self._final_estimator.predict_membership_proba(
            self._transform_through(X), *args, **kwargs
        )

    @available_if(_final_estimator_has("log_predictive_density"))
    def log_predictive_density(self, X, *args, **kwargs):
        """Log predictive density of the final estimator on transformed X."""
        return self._final_estimator.log_predictive_density(
            self._transform_through(X), *args, **kwargs
        )

    @available_if(_final_estimator_has("score_samples"))
    def score_samples(self, X, **params):
        """Per-object scores of the final estimator on transformed X.

        Unlike scikit-learn's ``Pipeline.score_samples``, the keyword
        arguments (e.g. the measurement errors) are passed on to the final
        step, unchanged.
        """
        return self._final_estimator.score_samples(self._transform_through(X), **params)

    @available_if(_final_estimator_has("sample_posterior"))
    def sample_posterior(self, n_samples=1, random_state=None):
        """Posterior draws of the final estimator (see its docstring)."""
        return self._final_estimator.sample_posterior(n_samples, random_state=random_state)


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """Build a :class:`Pipeline` from estimators, naming steps automatically.

    Same as :func:`sklearn.pipeline.make_pipeline`, returning skhier's
    :class:`Pipeline`.
    """
    names = [name for name, _ in _skpipeline._name_estimators(steps)]
    kwargs = {"memory": memory, "verbose": verbose}
    if transform_input is not None:
        kwargs["transform_input"] = transform_input
    return Pipeline(list(zip(names, steps, strict=True)), **kwargs)
