"""skhier: hierarchical Bayesian models with a scikit-learn face."""

from ._gmm import BayesianGMM
from ._line import RobustLineMixture

__version__ = "0.1.0"

__all__ = ["BayesianGMM", "RobustLineMixture", "__version__"]
