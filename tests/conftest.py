import os

import matplotlib

matplotlib.use("Agg")

# Paths to the shared real data sets (../shared/data beside the clone).
SHARED_DATA = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)

# Hypothesis runs are derandomised (the same examples on every run and
# machine), so that `make test` passes or fails reproducibly. Set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hyp_settings.register_profile("explore", derandomize=False, print_blob=True)
    _hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is in the test extra
    pass


# -- Rerunning the statistical tests over many seeds ---------------------------
# A statistical test takes the ``stat_seed`` fixture and adds it to its
# seeds. By default it runs once (stat_seed = 0); `make test-seeds` runs every
# such test with ``--seeds 50`` and prints each test's failure rate next to
# its stated false-failure budget (tests/helpers.FALSE_FAILURE_RATE, or the
# ``rate`` of a ``@pytest.mark.statistical(rate=...)`` marker).


def pytest_addoption(parser):
    parser.addoption("--seeds", type=int, default=0,
                     help="run every test that takes the stat_seed fixture with seeds 0..N-1 "
                          "and report failure rates against their budgets")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "statistical(rate=...): a test with a stated false-failure rate; "
        "its seeds move with the stat_seed fixture")


def pytest_generate_tests(metafunc):
    if "stat_seed" in metafunc.fixturenames:
        n = metafunc.config.getoption("seeds")
        metafunc.parametrize("stat_seed", list(range(n)) if n else [0],
                             ids=lambda s: f"seed{s}")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if "stat_seed" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
                "statistical"):
            item.add_marker(pytest.mark.statistical)


_SEED_RESULTS: dict = {}


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.failed):
        return
    if "[" not in report.nodeid or "seed" not in report.nodeid:
        return
    base, params = report.nodeid.split("[", 1)
    parts = [p for p in params.rstrip("]").split("-") if not p.startswith("seed")]
    key = base + (f"[{'-'.join(parts)}]" if parts else "")
    runs, fails, xfail = _SEED_RESULTS.get(key, (0, 0, False))
    xfail = xfail or hasattr(report, "wasxfail")
    _SEED_RESULTS[key] = (runs + 1, fails + int(report.failed), xfail)


def pytest_terminal_summary(terminalreporter, config):
    n = config.getoption("seeds")
    if not n or not _SEED_RESULTS:
        return
    from scipy.stats import binom

    from tests.helpers import FALSE_FAILURE_RATE

    tr = terminalreporter
    tr.section(f"failure rates over {n} seeds (budget: stated false-failure rate per test)")
    tr.line(f"{'test':88s} {'runs':>5s} {'fails':>5s} {'rate':>7s} {'budget':>7s}  verdict")
    for key, (runs, fails, xfail) in sorted(_SEED_RESULTS.items()):
        budget = FALSE_FAILURE_RATE
        # Verdict: failures this many or more would happen with probability
        # < 1e-3 if the test's true false-failure rate were its budget.
        p = binom.sf(fails - 1, runs, budget) if fails else 1.0
        verdict = "expected to fail (power check)" if xfail else (
            "OK" if p >= 1e-3 else "OVER BUDGET")
        tr.line(f"{key[-88:]:88s} {runs:5d} {fails:5d} {fails / runs:7.3f} {budget:7.0e}  {verdict}")
