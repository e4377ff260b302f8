"""Explicit randomness: seeds and generators in, no hidden state.

funnet never draws from NumPy's global random state. A public function that
needs randomness takes ``seed``: an ``int`` or a :class:`numpy.random.Generator`.
A generator is copied before use, so the caller's generator is not advanced
(the call stays pure: the same generator in gives the same result out).

Streams for repeated events (the shuffle of epoch ``e``, the dropout mask of
step ``t``) are derived from the seed and the counter, never carried along,
so a run can stop and resume anywhere and still draw the same numbers.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

Seed = int | np.random.Generator


def seed_entropy(seed: Seed) -> int:
    """A non-negative integer that stands for ``seed``.

    Raises:
      TypeError: ``seed`` is neither an integer nor a Generator.
      ValueError: ``seed`` is a negative integer.
    """
    if isinstance(seed, np.random.Generator):
        return int(copy.deepcopy(seed).integers(0, 2**63))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be an int or a numpy.random.Generator, got "
            f"{type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return int(seed)


def generator(seed: Seed, *counters: int) -> np.random.Generator:
    """A fresh Generator for ``seed`` and an optional tuple of counters.

    >>> a = generator(7, 3).integers(100, size=3)
    >>> b = generator(7, 3).integers(100, size=3)
    >>> bool((a == b).all())
    True
    """
    return np.random.default_rng([seed_entropy(seed), *map(int, counters)])
