"""Command line: ``python -m skhier`` (or the ``skhier`` script).

``demo`` fits the flagship estimators to bundled data, prints the results
with their uncertainties and writes figures to an output folder.

For table users, one subcommand per estimator fits a CSV file (header row,
comma-separated) and prints posterior summaries; ``--output PREFIX`` also
writes ``PREFIX_summary.csv`` (one row per parameter: median, 5% and 95%
quantiles) and ``PREFIX_objects.csv`` (the input rows with per-object
results: fitted values, membership probabilities)::

    skhier line data.csv --x x --y y --y-err sigma_y
    skhier distance stars.csv --parallax parallax --parallax-error parallax_error --field edsd
    skhier population velocities.csv --x v --x-err v_err --distribution normal --outliers
    skhier gmm points.csv --columns x y --n-components 5
"""

from __future__ import annotations

import argparse
import csv
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


def _read_csv(path: str, columns):
    """Columns of a CSV file (with header) as float arrays, with clear errors.

    Returns ``(columns, table)``: the requested columns as float arrays, and
    the whole table ``(header, rows)`` as strings, so that the per-object
    output carries every input column (IDs included) through unchanged.
    Header names are used exactly as written (``y-err`` stays ``y-err``).
    """
    if not os.path.exists(path):
        raise SystemExit(f"skhier: no such file: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        rows = [r for r in reader if any(c.strip() for c in r)]
    if not header or not rows:
        raise SystemExit(f"skhier: {path} has no header row or no data rows")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise SystemExit(f"skhier: line {i + 2} of {path} has {len(row)} fields, "
                             f"the header {len(header)}")
    out = {}
    for col in columns:
        if col is None:
            continue
        if col not in header:
            raise SystemExit(f"skhier: column {col!r} not in {path} (columns: {', '.join(header)})")
        j = header.index(col)
        values = np.empty(len(rows))
        for i, row in enumerate(rows):
            try:
                values[i] = float(row[j])
            except ValueError:
                raise SystemExit(f"skhier: column {col!r} of {path}, line {i + 2}: "
                                 f"{row[j]!r} is not a number") from None
        out[col] = values
    return out, (header, rows)


def _summary_rows(posterior: dict):
    rows = []
    for name, draws in posterior.items():
        arr = np.asarray(draws, dtype=float)
        flat = arr.reshape(len(arr), -1)
        if flat.shape[1] > 50:  # per-object latents: summarised elsewhere
            continue
        for j in range(flat.shape[1]):
            index = ", ".join(str(int(i)) for i in np.unravel_index(j, arr.shape[1:]))
            label = name if arr.ndim == 1 else f"{name}[{index}]"
            q05, q50, q95 = np.quantile(flat[:, j], [0.05, 0.5, 0.95])
            rows.append((label, q50, q05, q95))
    return rows


def _check_output(prefix: str | None) -> None:
    """Refuse an ``--output`` prefix whose folder cannot be written, before the fit."""
    if not prefix:
        return
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder):
        raise SystemExit(f"skhier: --output {prefix}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"skhier: --output {prefix}: folder {folder!r} is not writable")


def _report(estimator, per_object: dict, table, output: str | None) -> int:
    rows = _summary_rows(estimator.posterior_)
    width = max(len(r[0]) for r in rows)
    print(f"{type(estimator).__name__}: posterior median [5%, 95%]")
    for label, med, lo, hi in rows:
        print(f"  {label:<{width}}  {med:.6g}  [{lo:.6g}, {hi:.6g}]")
    if output:
        with open(f"{output}_summary.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["parameter", "median", "q05", "q95"])
            for label, med, lo, hi in rows:
                writer.writerow([label, f"{med:.10g}", f"{lo:.10g}", f"{hi:.10g}"])
        header, in_rows = table
        names = list(per_object)
        values = [np.asarray(per_object[k], dtype=float) for k in names]
        with open(f"{output}_objects.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header + names)
            for i, row in enumerate(in_rows):
                writer.writerow(row + [f"{v[i]:.10g}" for v in values])
        print(f"wrote {output}_summary.csv and {output}_objects.csv")
    return 0


def _cmd_line(args) -> int:
    from . import RobustLineMixture

    cols, table = _read_csv(args.csv, [*args.x, args.y, args.y_err, *(args.x_err or [])])
    X = np.column_stack([cols[c] for c in args.x])
    y = cols[args.y]
    kwargs = {}
    if args.y_err:
        kwargs["y_err"] = cols[args.y_err]
    if args.x_err:
        kwargs["X_err"] = np.column_stack([cols[c] for c in args.x_err])
    est = RobustLineMixture(scatter=None if args.scatter == "none" else args.scatter,
                            outliers=not args.no_outliers, random_state=args.seed,
                            progress=args.progress).fit(X, y, **kwargs)
    per = {"fitted": est.predict(X), "p_outlier": est.membership_proba_[:, 1],
           "inlier": est.inlier_mask_.astype(int)}
    return _report(est, per, table, args.output)


def _cmd_distance(args) -> int:
    from . import HierarchicalDistanceEstimator

    cols, table = _read_csv(args.csv, [args.parallax, args.parallax_error])
    X = cols[args.parallax][:, None]
    X_err = cols[args.parallax_error][:, None]
    est = HierarchicalDistanceEstimator(field=None if args.field == "none" else args.field,
                                        random_state=args.seed).fit(X, X_err=X_err)
    per = {"distance_pc": est.distance_}
    if getattr(est, "membership_proba_", None) is not None:
        per["p_member"] = est.membership_proba_[:, 0]
    return _report(est, per, table, args.output)


def _cmd_population(args) -> int:
    from . import PopulationModel

    cols, table = _read_csv(args.csv, [args.x, args.x_err])
    X = cols[args.x][:, None]
    kwargs = {} if args.x_err is None else {"X_err": cols[args.x_err][:, None]}
    est = PopulationModel(distribution=args.distribution, outliers=args.outliers,
                          random_state=args.seed).fit(X, **kwargs)
    per = {"shrunk_value": est.predict(X, **kwargs)}
    if args.outliers:
        per["p_member"] = est.predict_membership_proba(X, **kwargs)[:, 0]
    return _report(est, per, table, args.output)


def _cmd_gmm(args) -> int:
    from . import BayesianGMM

    cols, table = _read_csv(args.csv, [*args.columns, *(args.errors or [])])
    X = np.column_stack([cols[c] for c in args.columns])
    kwargs = {}
    if args.errors:
        kwargs["X_err"] = np.column_stack([cols[c] for c in args.errors])
    est = BayesianGMM(n_components=args.n_components, random_state=args.seed).fit(X, **kwargs)
    proba = est.predict_proba(X, **kwargs)
    per = {"label": proba.argmax(axis=1)}
    per.update({f"p_component_{k}": proba[:, k] for k in range(proba.shape[1])})
    return _report(est, per, table, args.output)


def _add_common(p):
    p.add_argument("csv", help="CSV file with a header row")
    p.add_argument("--output", help="prefix for the summary and per-object CSV files")
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")


def main(argv=None) -> int:
    """Entry point of ``python -m skhier``."""
    parser = argparse.ArgumentParser(
        prog="skhier", description="Hierarchical Bayesian models with a scikit-learn face."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="fit the flagship estimators to bundled data")
    p_demo.add_argument("--outdir", default="skhier_output",
                        help="folder for the figures (default: ./skhier_output)")

    p = sub.add_parser("line", help="RobustLineMixture on a CSV table")
    _add_common(p)
    p.add_argument("--x", nargs="+", required=True, help="column(s) of X")
    p.add_argument("--y", required=True)
    p.add_argument("--y-err", dest="y_err")
    p.add_argument("--x-err", dest="x_err", nargs="+", help="error column per X column")
    p.add_argument("--scatter", choices=["vertical", "orthogonal", "none"], default="vertical")
    p.add_argument("--no-outliers", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=_cmd_line)

    p = sub.add_parser("distance", help="HierarchicalDistanceEstimator on a CSV table")
    _add_common(p)
    p.add_argument("--parallax", default="parallax", help="parallax column [mas]")
    p.add_argument("--parallax-error", dest="parallax_error", default="parallax_error")
    p.add_argument("--field", choices=["none", "edsd"], default="none")
    p.set_defaults(func=_cmd_distance)

    p = sub.add_parser("population", help="PopulationModel on a CSV table")
    _add_common(p)
    p.add_argument("--x", required=True, help="column of measured values")
    p.add_argument("--x-err", dest="x_err", help="column of their standard errors")
    p.add_argument("--distribution", default="normal")
    p.add_argument("--outliers", action="store_true")
    p.set_defaults(func=_cmd_population)

    p = sub.add_parser("gmm", help="BayesianGMM on a CSV table")
    _add_common(p)
    p.add_argument("--columns", nargs="+", required=True)
    p.add_argument("--errors", nargs="+", help="error column per data column")
    p.add_argument("--n-components", dest="n_components", type=int, default=5)
    p.set_defaults(func=_cmd_gmm)

    args = parser.parse_args(argv)
    if args.command == "demo":
        return _run_demo(args.outdir)
    _check_output(args.output)
    try:
        return args.func(args)
    except ValueError as exc:  # bad options or data: a message, not a traceback
        parser.exit(2, f"skhier {args.command}: error: {exc}\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
