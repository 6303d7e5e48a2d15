"""Bundled real data sets (with their published provenance) and simulators."""

from ._galaxies import load_galaxy_velocities
from ._hogg2010 import load_hogg2010
from ._mixture_sim import make_mixture_with_errors
from ._simulate import make_line_with_outliers

__all__ = ["load_galaxy_velocities", "load_hogg2010", "make_mixture_with_errors", "make_line_with_outliers"]
