"""Keeping subnormal numbers out of the arithmetic.

Numbers below a dtype's smallest normal one (``np.finfo(dtype).tiny``,
1.2e-38 in float32) are subnormal. x86 CPUs compute with them many times
slower than with normal numbers, and one such entry slows the whole vector
it is in. Training makes them in two places, where a value that small can
change no result: the loss gradient of samples already fitted, and the
decaying optimizer state of weights whose gradient stays zero. The helpers
here set such entries to zero, in place, on arrays their caller has just
made.
"""

from __future__ import annotations

import numpy as np

_LIMITS: dict[np.dtype, tuple] = {}


def limits(dtype: np.dtype) -> tuple:
    """``(tiny, tiny / eps)`` for a float dtype, as scalars of that dtype."""
    found = _LIMITS.get(dtype)
    if found is None:
        info = np.finfo(dtype)
        found = _LIMITS[dtype] = (info.tiny, info.tiny / info.eps)
    return found


def flush_below(x: np.ndarray, limit: np.generic, scratch: np.ndarray) -> None:
    """Set the entries of ``x`` smaller in magnitude than ``limit`` to zero.

    In place; ``scratch``, a float array of ``x``'s shape, is overwritten.
    NaN and infinity stay as they are (the comparison is false for NaN, and
    ``NaN * 0`` is NaN).
    """
    np.abs(x, out=scratch)
    np.greater_equal(scratch, limit, out=scratch)
    x *= scratch
