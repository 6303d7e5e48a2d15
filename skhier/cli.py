"""Command line: ``python -m skhier demo`` (or the ``skhier`` script).

``demo`` fits the flagship estimators to bundled data, prints the results
with their uncertainties and writes figures to an output folder.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time

import numpy as np

__all__ = ["main", "demo_line"]


def _fmt(draws, digits=3):
    lo, med, hi = np.quantile(draws, [0.16, 0.5, 0.84])
    return f"{med:.{digits}g} +{hi - med:.2g} -{med - lo:.2g}"


def demo_line(outdir: str, print_fn=print) -> str:
    """Fit RobustLineMixture to Hogg, Bovy & Lang (2010) Table 1; return the figure path."""
    import matplotlib

    matplotlib.use("Agg")
    from . import RobustLineMixture
    from .datasets import load_hogg2010
    from .plotting import plot_line_fit

    data = load_hogg2010()
    t0 = time.perf_counter()
    model = RobustLineMixture(random_state=0).fit(data.X, data.y, y_err=data.y_err)
    elapsed = time.perf_counter() - t0
    post = model.posterior_
    print_fn("RobustLineMixture on Hogg, Bovy & Lang (2010) Table 1 (20 points, y errors)")
    print_fn(f"  fit in {elapsed:.2f} s: {model.n_draws_} draws, "
             f"min ESS {min(model.n_effective_.values()):.0f}, "
             f"acceptance {model.acceptance_fraction_:.2f}")
    print_fn("  (median and 68% interval)")
    print_fn(f"  slope             m = {_fmt(post['coef'][:, 0])}")
    print_fn(f"  intercept         b = {_fmt(post['intercept'])}")
    print_fn(f"  intrinsic scatter   = {_fmt(post['scatter'])}")
    print_fn(f"  outlier fraction    = {_fmt(post['outlier_fraction'])}")
    print_fn("  point   x     y    sigma_y  P(outlier)")
    for i, p in enumerate(model.membership_proba_[:, 1]):
        flag = "  <- outlier" if p > 0.5 else ""
        print_fn(f"  {data.ids[i]:5d} {data.X[i, 0]:5.0f} {data.y[i]:5.0f} {data.y_err[i]:6.0f}"
                 f"    {p:6.3f}{flag}")
    fig = plot_line_fit(model, data.X, data.y, y_err=data.y_err, labels=data.ids)
    fig.axes[0].set_title("Hogg et al. (2010) Table 1: line + outlier mixture")
    path = os.path.join(outdir, "line_outliers.png")
    fig.savefig(path, dpi=120)
    return path


# Further demos, each a function (outdir) -> figure path, run after the line
# fit when their module is part of the installed package.
_EXTRA_DEMOS = [
    ("skhier._demo_cluster", "demo_cluster"),
    ("skhier._demo_population", "demo_population"),
    ("skhier._demo_gmm", "demo_gmm"),
]


def _run_demo(outdir: str) -> int:
    os.makedirs(outdir, exist_ok=True)
    paths = [demo_line(outdir)]
    for module_name, func_name in _EXTRA_DEMOS:
        if importlib.util.find_spec(module_name) is None:
            continue
        print()
        func = getattr(importlib.import_module(module_name), func_name)
        paths.append(func(outdir))
    print("\nFigures written:")
    for p in paths:
        print(f"  {os.path.abspath(p)}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m skhier``."""
    parser = argparse.ArgumentParser(
        prog="skhier", description="Hierarchical Bayesian models with a scikit-learn face."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="fit the flagship estimators to bundled data")
    p_demo.add_argument("--outdir", default="skhier_output",
                        help="folder for the figures (default: ./skhier_output)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _run_demo(args.outdir)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
