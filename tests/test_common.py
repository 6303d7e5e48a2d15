"""scikit-learn's estimator checks.

Sampler settings come from ``helpers.FAST`` (short chains): these checks test
the API contract, not the statistics. The other estimators run the same
``parametrize_with_checks`` in their own modules, next to the one-column or
configuration-specific variants they need: ``test_distance.py``,
``test_popmodel.py`` (with justified expected failures: it models one column),
``test_samples_population.py`` and ``test_gmm.py``. The bad-input table
across all estimators is ``test_reliability.py``.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhier import RobustLineMixture

from .helpers import FAST

ESTIMATORS = [RobustLineMixture(**FAST, random_state=0)]

# Checks that cannot pass, with the reason. Keep empty unless justified.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
