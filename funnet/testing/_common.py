"""Helpers shared by the modules of :mod:`funnet.testing`."""

from __future__ import annotations

from typing import Any

import numpy as np

from funnet._checks import FLOATS as _FLOATS  # noqa: F401 - shared with strategies
from funnet._checks import float_dtype as _float_dtype

__all__ = ["tolerances"]


def _one_hot(y: np.ndarray, n_classes: int, dtype: Any) -> np.ndarray:
    return (y[:, None] == np.arange(n_classes)).astype(dtype)


_TOLERANCES = {
    # (rtol, atol) for identities between two computations of one value.
    ("value", np.dtype(np.float64)): (1e-9, 1e-12),
    ("value", np.dtype(np.float32)): (1e-4, 1e-5),
    # (rtol, atol) for a gradient against central differences.
    ("grad", np.dtype(np.float64)): (1e-5, 1e-8),
    ("grad", np.dtype(np.float32)): (3e-2, 3e-3),
}


def tolerances(dtype: Any, kind: str = "grad") -> tuple[float, float]:
    """``(rtol, atol)`` for comparisons in ``dtype``.

    ``kind="grad"``: an analytic gradient against central differences;
    ``kind="value"``: two computations of the same value. float64 is
    tight; float32, with its 24-bit mantissa, is loose. Checks scale
    ``atol`` by the magnitude of the values involved.

    >>> tolerances(np.float64)
    (1e-05, 1e-08)
    >>> tolerances(np.float32, "value")
    (0.0001, 1e-05)
    """
    if kind not in ("grad", "value"):
        raise ValueError(f"tolerances: kind must be 'grad' or 'value', got {kind!r}")
    return _TOLERANCES[kind, _float_dtype(dtype)]
