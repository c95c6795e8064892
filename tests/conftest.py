import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def pytest_configure(config):
    # Import tapegrad before collection: pytest collects inside a warnings.catch_warnings
    # block, which would drop the warning filter tapegrad installs at import (README,
    # "Floating-point edge cases").
    import tapegrad  # noqa: F401
