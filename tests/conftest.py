"""Test settings shared by the whole suite.

- hypothesis: the ``ci`` profile is derandomized (the same examples every
  run) and is chosen automatically when the ``CI`` environment variable is
  set; ``dev`` explores new examples each run. ``HYPOTHESIS_PROFILE``
  overrides both.
- NumPy: overflow, invalid operations and division by zero raise, so an
  overflow hidden inside a kernel fails its test. Underflow to zero (as in
  ``exp(-1000)``) is the correct result of a stable kernel and is allowed.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=40)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(autouse=True)
def _numpy_errors_raise():
    old = np.seterr(all="raise", under="ignore")
    yield
    np.seterr(**old)
