"""Input validation shared by all estimators (imports nothing else of skhier)."""

from ._checks import as_float_array, check_errors, check_finite_array, check_positive_scalar

__all__ = ["as_float_array", "check_errors", "check_finite_array", "check_positive_scalar"]
