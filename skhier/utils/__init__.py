"""Input validation shared by all estimators (imports nothing else of skhier)."""

from ._checks import as_float_array, check_errors, check_finite_array

__all__ = ["as_float_array", "check_errors", "check_finite_array"]
