import os

import matplotlib

matplotlib.use("Agg")

# Paths to the shared real data sets (../shared/data beside the clone).
SHARED_DATA = os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)
