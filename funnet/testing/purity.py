"""Purity checks: arguments unchanged, results repeatable, no global random."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from funnet.params import Params

__all__ = ["assert_pure", "forbid_global_random"]

# Kept here so that assert_pure works inside forbid_global_random.
_get_global_state = np.random.get_state


def _difference(a: Any, b: Any, path: str) -> str | None:
    """A sentence saying where ``a`` and ``b`` differ, or ``None``."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return (
                f"{path} was a {a.dtype} array of shape {a.shape}, now "
                f"{b.dtype} {b.shape}"
            )
        nan = a.dtype.kind in "fc"
        if not np.array_equal(a, b, equal_nan=nan):
            same = (a == b) | (nan & (a != a) & (b != b))
            index = tuple(int(i) for i in np.argwhere(~same)[0])
            return (
                f"{path} at index {index}: was {a[index].item()!r}, now "
                f"{b[index].item()!r}"
            )
        if a.flags.writeable != b.flags.writeable:
            return f"{path} had writeable={a.flags.writeable}, now {b.flags.writeable}"
        return None
    if isinstance(a, np.random.Generator):
        if not isinstance(b, np.random.Generator) or (
            a.bit_generator.state != b.bit_generator.state
        ):
            return f"{path} (a Generator) was advanced"
        return None
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or set(a) != set(b):
            now = sorted(b) if isinstance(b, Mapping) else repr(b)
            return f"{path} had keys {sorted(a)}, now {now}"
        for key in a:
            found = _difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, (tuple, list)):
        if not isinstance(b, (tuple, list)) or len(a) != len(b):
            return f"{path} was {a!r}, now {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if callable(a) and callable(b):
        return None
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return None
    try:
        same = bool(a == b)
    except Exception:  # noqa: BLE001 - objects without a usable ==
        same = a is b
    return None if same else f"{path} was {a!r}, now {b!r}"


def _snapshot(value: Any) -> Any:
    """A deep copy that keeps arrays' writeable flags, for later comparison."""
    if isinstance(value, np.ndarray):
        copied = value.copy()
        copied.flags.writeable = value.flags.writeable
        return copied
    if isinstance(value, Mapping):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    return copy.deepcopy(value)


def _check_params_frozen(value: Any, path: str) -> None:
    if isinstance(value, Params):
        for key, array in value.items():
            if array.flags.writeable:
                raise AssertionError(
                    f"assert_pure: {path}[{key!r}] is a writeable array; "
                    f"params must hold read-only arrays"
                )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_params_frozen(item, f"{path}[{key!r}]")
    elif isinstance(value, (tuple, list)):
        if isinstance(value, list) and any(isinstance(v, Params) for v in value):
            raise AssertionError(f"assert_pure: {path} is a mutable list of params")
        for i, item in enumerate(value):
            _check_params_frozen(item, f"{path}[{i}]")


def assert_pure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` and check that it behaves as a pure function.

    Checked:

    - every argument (arrays, mappings, tuples, lists, Generators, nested)
      equals its value before the call, writeable flags included;
    - a second call returns an equal result (functions inside results are
      not compared);
    - NumPy's global random state is unchanged;
    - every :class:`~funnet.params.Params` in the result holds read-only
      arrays, and no params sit in a mutable list.

    Returns:
      The result of the first call, so the check wraps a call in place.

    Raises:
      AssertionError: naming the argument, the entry and both values.

    >>> from funnet.optimizers import sgd
    >>> p = Params(W=np.ones(2)); g = Params(W=np.ones(2))
    >>> opt = sgd(0.5)
    >>> updates, state = assert_pure(opt.update, g, opt.init(p), p)
    >>> def scale_in_place(x):
    ...     x *= 2
    ...     return x
    >>> assert_pure(scale_in_place, np.ones(3))
    Traceback (most recent call last):
    ...
    AssertionError: assert_pure: scale_in_place changed argument 0 at index (0,): was
    1.0, now 2.0
    """
    name = getattr(fn, "__name__", repr(fn))
    before = _snapshot((args, kwargs))
    global_state = _get_global_state()
    result = fn(*args, **kwargs)
    labels_ = [f"argument {i}" for i in range(len(args))]
    labels_ += [f"argument {k!r}" for k in kwargs]
    for label, old, new in zip(
        labels_, [*before[0], *before[1].values()], [*args, *kwargs.values()]
    ):
        found = _difference(old, new, label)
        if found:
            raise AssertionError(f"assert_pure: {name} changed {found}")
    again = fn(*args, **kwargs)
    found = _difference(result, again, "the result")
    if found:
        raise AssertionError(
            f"assert_pure: {name} gave different results for equal arguments: "
            f"{found} on the second call"
        )
    after = _get_global_state()
    if any(_difference(a, b, "") for a, b in zip(global_state, after)):
        raise AssertionError(
            f"assert_pure: {name} changed NumPy's global random state; draw "
            f"from an explicit numpy.random.Generator instead"
        )
    _check_params_frozen(result, "the result")
    return result


_GLOBAL_RANDOM = (
    "rand",
    "randn",
    "random",
    "random_sample",
    "ranf",
    "sample",
    "randint",
    "random_integers",
    "uniform",
    "normal",
    "standard_normal",
    "choice",
    "permutation",
    "shuffle",
    "seed",
    "get_state",
    "set_state",
    "binomial",
)


@contextlib.contextmanager
def forbid_global_random() -> Iterator[None]:
    """Make NumPy's global random functions raise inside the block.

    Code under test that reads or reseeds the global state (``np.random.rand``,
    ``np.random.seed``, ...) fails loudly instead of passing by luck.
    Generators (:func:`numpy.random.default_rng`) keep working. The
    functions are restored on exit; not safe with threads.

    >>> with forbid_global_random():
    ...     _ = np.random.default_rng(0).normal()
    ...     np.random.normal()
    Traceback (most recent call last):
    ...
    AssertionError: np.random.normal was called; funnet code must draw from
    an explicit Generator
    """
    saved = {name: getattr(np.random, name) for name in _GLOBAL_RANDOM}

    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(
                f"np.random.{name} was called; funnet code must draw from an "
                f"explicit Generator"
            )

        return call

    try:
        for name in saved:
            setattr(np.random, name, forbidden(name))
        yield
    finally:
        for name, fn in saved.items():
            setattr(np.random, name, fn)
