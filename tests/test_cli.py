import os

import numpy as np
import pytest

from skhier.cli import main
from skhier.datasets import load_hogg2010

from .conftest import SHARED_DATA


def _write_hogg(path):
    d = load_hogg2010()
    np.savetxt(path, np.column_stack([d.X[:, 0], d.y, d.y_err]), delimiter=",",
               header="x,y,sigma_y", comments="")


def test_line_command_writes_summary_and_per_object_tables(tmp_path, capsys):
    csv = tmp_path / "hogg.csv"
    _write_hogg(csv)
    out = tmp_path / "fit"
    assert main(["line", str(csv), "--x", "x", "--y", "y", "--y-err", "sigma_y",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "coef[0]" in printed and "outlier_fraction" in printed
    summary = np.genfromtxt(f"{out}_summary.csv", delimiter=",", names=True, dtype=None,
                            encoding="utf-8")
    slope = summary[summary["parameter"] == "coef[0]"]
    assert 1.9 < float(slope["median"][0]) < 2.5
    objects = np.genfromtxt(f"{out}_objects.csv", delimiter=",", names=True)
    assert objects.shape == (20,)
    # Points 2-4 of Hogg et al. (2010) are the clear outliers.
    assert np.all(objects["p_outlier"][1:4] > 0.9)
    np.testing.assert_array_equal(objects["inlier"], objects["p_outlier"] <= 0.5)


def test_missing_column_is_a_clear_error(tmp_path):
    csv = tmp_path / "hogg.csv"
    _write_hogg(csv)
    with pytest.raises(SystemExit, match="column 'nope' not in"):
        main(["line", str(csv), "--x", "nope", "--y", "y"])
    with pytest.raises(SystemExit, match="no such file"):
        main(["line", str(tmp_path / "missing.csv"), "--x", "x", "--y", "y"])


@pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="../shared/data not present")
def test_distance_command_on_pleiades(tmp_path, capsys):
    csv = os.path.join(SHARED_DATA, "pleiades_tgas_gdr1set03.csv")
    assert main(["distance", csv, "--output", str(tmp_path / "pl")]) == 0
    objects = np.genfromtxt(tmp_path / "pl_objects.csv", delimiter=",", names=True)
    assert objects.shape == (164,)
    assert "distance_pc" in objects.dtype.names
