"""Bundled real data sets (with their published provenance) and simulators."""

from ._hogg2010 import load_hogg2010
from ._simulate import make_line_with_outliers

__all__ = ["load_hogg2010", "make_line_with_outliers"]
