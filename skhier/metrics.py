"""Model-aware scorers.

:data:`log_predictive_density_scorer` scores held-out data by their log
posterior predictive density — the full posterior, not a point estimate —
and, with ``sklearn.set_config(enable_metadata_routing=True)``, receives the
held-out rows' measurement errors routed by ``cross_validate`` and
``GridSearchCV``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.metadata_routing import MetadataRequest

__all__ = ["LogPredictiveDensityScorer", "log_predictive_density_scorer"]

_ERROR_NAMES = ("y_err", "X_err", "X_cov", "Xy_cov")


class LogPredictiveDensityScorer:
    """Mean log posterior predictive density of held-out data (higher is better).

    Calls ``estimator.log_predictive_density(X, y, **metadata)`` when the
    estimator has it (regressions, where the density is of ``y`` given
    ``X``), else ``estimator.score_samples(X, **metadata)`` (density
    models), and averages with ``sample_weight`` when given.

    Parameters
    ----------
    metadata : tuple of str, default=("y_err", "X_err", "X_cov", "Xy_cov")
        Metadata this scorer requests; routed values are passed on to the
        estimator's method. Add e.g. ``"interim_log_prior"`` for estimators
        that take it.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import cross_validate
    >>> from skhier import RobustLineMixture
    >>> from skhier.datasets import make_line_with_outliers
    >>> from skhier.metrics import log_predictive_density_scorer
    >>> d = make_line_with_outliers(30, random_state=0)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     cv = cross_validate(RobustLineMixture(random_state=0), d.X, d.y,
    ...                         scoring=log_predictive_density_scorer, cv=3,
    ...                         params={"y_err": d.y_err})
    >>> cv["test_score"].shape
    (3,)
    """

    def __init__(self, metadata=_ERROR_NAMES):
        self.metadata = tuple(metadata)

    def __call__(self, estimator, X, y=None, sample_weight=None, **metadata):
        unknown = set(metadata) - set(self.metadata)
        if unknown:
            raise TypeError(f"Unexpected metadata for the scorer: {sorted(unknown)}.")
        if hasattr(estimator, "log_predictive_density"):
            values = estimator.log_predictive_density(X, y, **metadata)
        elif hasattr(estimator, "score_samples"):
            values = estimator.score_samples(X, **metadata)
        else:
            raise TypeError(
                f"{type(estimator).__name__} has neither log_predictive_density nor "
                "score_samples; it cannot be scored by its predictive density."
            )
        return float(np.average(values, weights=sample_weight))

    def get_metadata_routing(self):
        request = MetadataRequest(owner=type(self).__name__)
        for name in (*self.metadata, "sample_weight"):
            request.score.add_request(param=name, alias=True)
        return request

    def __repr__(self):
        return f"LogPredictiveDensityScorer(metadata={self.metadata!r})"


#: Ready-made instance for ``scoring=`` (measurement errors requested).
log_predictive_density_scorer = LogPredictiveDensityScorer()
