"""Bundled real data sets (with their published provenance) and simulators."""

from ._cluster import make_cluster_3d, make_cluster_parallaxes
from ._eight_schools import load_eight_schools
from ._galaxies import load_galaxy_velocities
from ._hogg2010 import load_hogg2010
from ._mixture_sim import make_mixture_with_errors
from ._population_sim import (
    make_eccentricities,
    make_periods,
    make_population,
    make_velocity_dispersion,
)
from ._samples_sim import make_eccentricity_samples, make_stellar_age_samples
from ._selection_sim import (
    make_selected_velocities,
    make_transit_periods,
    transit_detection_probability,
)
from ._simulate import make_line_with_outliers

__all__ = [
    "make_cluster_parallaxes", "make_cluster_3d",
    "load_eight_schools", "make_population", "make_velocity_dispersion",
    "make_eccentricities", "make_periods",
    "load_galaxy_velocities", "load_hogg2010", "make_mixture_with_errors", "make_line_with_outliers"]
__all__ += ["make_eccentricity_samples", "make_stellar_age_samples"]
__all__ += ["make_transit_periods", "make_selected_velocities", "transit_detection_probability"]
