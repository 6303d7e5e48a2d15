"""skhier: hierarchical Bayesian models with a scikit-learn face."""

from ._base import MissingErrorsWarning, PriorBoundWarning
from ._cluster3d import HierarchicalDistanceEstimator3D
from ._distance import HierarchicalDistanceEstimator
from ._distributions import CustomPopulation
from ._gmm import BayesianGMM
from ._line import RobustLineMixture
from ._popmodel import PopulationModel
from ._samples_population import PosteriorSamplesPopulation, ReweightingWarning

__version__ = "0.1.0"

__all__ = ["BayesianGMM", "HierarchicalDistanceEstimator", "HierarchicalDistanceEstimator3D", "PopulationModel", "RobustLineMixture", "__version__"]
__all__ += ["CustomPopulation", "MissingErrorsWarning", "PosteriorSamplesPopulation", "PriorBoundWarning",
            "ReweightingWarning"]
