import numpy as np
import pytest

from skhier import RobustLineMixture
from skhier.datasets import load_hogg2010, make_line_with_outliers

from .helpers import FAST, assert_error_routing, encode_ids, ignore_convergence


@ignore_convergence
def test_error_routing_y_err():
    d = make_line_with_outliers(30, random_state=0)
    assert_error_routing(
        RobustLineMixture(**FAST, random_state=0), d.X, d.y, "y_err", encode_ids(30)
    )


@ignore_convergence
def test_error_routing_X_err():
    d = make_line_with_outliers(30, random_state=1)
    assert_error_routing(
        RobustLineMixture(**FAST, random_state=0), d.X, d.y, "X_err", encode_ids(30, (1,))
    )
