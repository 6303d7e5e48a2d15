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
