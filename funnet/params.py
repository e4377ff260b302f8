"""The immutable parameter mapping at the bottom of funnet.

A :class:`Params` is a flat mapping from a readable name (``"W1"``, ``"b1"``,
``"W2"``, ...) to a read-only :class:`numpy.ndarray`. It is the one container
that initializers return, gradients come back in, and optimizers update.
Because it is a plain :class:`~collections.abc.Mapping`, ``toolz``'s dict
tools (``valmap``, ``merge_with``, ``keyfilter``, ``assoc``) work on it
directly; wrap their result in :class:`Params` (or use the helpers here) to
get an immutable value back.

>>> import numpy as np
>>> p = Params({"W1": np.ones((2, 3)), "b1": np.zeros(3)})
>>> p
Params(W1=float64(2, 3), b1=float64(3,))
>>> p["W1"].flags.writeable
False
>>> p["W1"] = np.zeros((2, 3))
Traceback (most recent call last):
...
TypeError: Params is immutable: cannot set 'W1'; build a new one with ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import toolz

__all__ = ["Params", "assoc", "tree_map", "tree_map2", "as_dtype"]


def _lock(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``, which must own its data.

    The data's owner is made read-only and only a view of it is handed out:
    NumPy refuses to make such a view writeable again, so not even
    ``setflags(write=True)`` can reach the values.
    """
    array.flags.writeable = False
    return array.view()


def _is_locked(array: np.ndarray) -> bool:
    """True for a view that :func:`_lock` made (its owner is read-only)."""
    base = array.base
    return (
        type(base) is np.ndarray
        and base.base is None
        and not base.flags.writeable
        and not array.flags.writeable
    )


def _frozen(value: Any, copy: bool) -> np.ndarray:
    """Return a read-only array holding ``value``.

    With ``copy=True`` the caller's array is never touched (its writeable
    flag included); with ``copy=False`` a freshly computed array that nobody
    else holds is frozen in place, which is how the training step stays free
    of extra copies. A view is copied first: its owner may be writeable.
    """
    if not copy and isinstance(value, np.ndarray) and _is_locked(value):
        return value
    if copy or not isinstance(value, np.ndarray) or value.base is not None:
        value = np.array(value, copy=True, subok=not copy)
    if value.dtype.kind not in "biufc":
        raise TypeError(
            f"Params values must be numeric arrays, got an array of dtype "
            f"{value.dtype}"
        )
    return _lock(value)


class Params(Mapping[str, np.ndarray]):
    """An immutable flat mapping from names to read-only arrays.

    Construct it from any mapping (a ``dict``, another ``Params``) or from
    keyword arguments. Arrays given to the constructor are copied, so the
    caller's arrays stay writeable and later changes to them do not leak in.
    Setting or deleting a key raises :class:`TypeError`; writing into an
    array raises :class:`ValueError` (NumPy's read-only error).

    ``dict(params)`` converts back losslessly (the arrays stay read-only;
    ``params.to_dict()`` gives writeable copies). Params pickle, compare
    by value with :meth:`equals`, and print their names, dtypes and shapes.
    """

    __slots__ = ("_data",)

    def __init__(self, mapping: Mapping[str, Any] | None = None, /, **kwargs: Any):
        items = dict(mapping or {}, **kwargs)
        for key in items:
            if not isinstance(key, str):
                raise TypeError(
                    f"Params keys must be strings, got {key!r} of type "
                    f"{type(key).__name__}"
                )
        data = {key: _frozen(value, copy=True) for key, value in items.items()}
        object.__setattr__(self, "_data", data)

    @classmethod
    def _own(cls, data: dict[str, np.ndarray]) -> "Params":
        """Wrap freshly computed arrays without copying them.

        Only for arrays that no caller holds a writeable reference to, such
        as the results of arithmetic inside an update.
        """
        frozen = {}
        for k, v in data.items():
            if type(v) is np.ndarray and v.base is None and v.dtype.kind in "biufc":
                frozen[k] = _lock(v)
            else:
                frozen[k] = _frozen(v, copy=False)
        new = object.__new__(cls)
        object.__setattr__(new, "_data", frozen)
        return new

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # The dict's own read-only views: the generic Mapping views call
    # __getitem__ once per key in Python, which a training step would pay
    # several times per step.
    def keys(self):
        return self._data.keys()

    def values(self):
        return self._data.values()

    def items(self):
        return self._data.items()

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError(
            f"Params is immutable: cannot set {key!r}; build a new one with "
            f"funnet.params.assoc(params, key, value)"
        )

    def __delitem__(self, key: str) -> None:
        raise TypeError(
            f"Params is immutable: cannot delete {key!r}; build a new one "
            f"with toolz.dissoc and wrap it in Params"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"Params is immutable: cannot set attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"Params is immutable: cannot delete attribute {name!r}")

    def __reduce__(self):
        return (Params, ({k: np.asarray(v) for k, v in self._data.items()},))

    def __repr__(self) -> str:
        parts = (f"{k}={v.dtype}{tuple(v.shape)}" for k, v in self._data.items())
        return f"Params({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.equals(other)

    __hash__ = None  # type: ignore[assignment]

    def equals(self, other: Mapping[str, Any]) -> bool:
        """True when ``other`` has the same keys, shapes, dtypes and values.

        NaN entries compare equal to NaN, so a comparison never hides a NaN
        that appeared on one side only.
        """
        if set(self) != set(other):
            return False
        for key, a in self._data.items():
            b = np.asarray(other[key])
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return False
        return True

    def to_dict(self) -> dict[str, np.ndarray]:
        """A plain ``dict`` of writeable copies of the arrays."""
        return {k: v.copy() for k, v in self._data.items()}

    @property
    def dtype(self) -> np.dtype | None:
        """The common dtype of all arrays, or ``None`` if they differ."""
        dtypes = {v.dtype for v in self._data.values()}
        return dtypes.pop() if len(dtypes) == 1 else None

    @property
    def size(self) -> int:
        """The total number of scalars held."""
        return sum(v.size for v in self._data.values())


def assoc(params: Mapping[str, Any], key: str, value: Any) -> Params:
    """A new :class:`Params` with ``key`` set to ``value``; the input is unchanged.

    >>> import numpy as np
    >>> p = Params(b1=np.zeros(2))
    >>> assoc(p, "b1", np.ones(2))["b1"]
    array([1., 1.])
    >>> p["b1"]
    array([0., 0.])
    """
    return Params(toolz.assoc(dict(params), key, value))


def tree_map(fn: Callable[[np.ndarray], Any], params: Mapping[str, Any]) -> Params:
    """Apply ``fn`` to every array: ``toolz.valmap`` returning :class:`Params`.

    Fresh results (as arithmetic makes) are frozen without a copy; a result
    that shares memory with a writeable input is copied first, so the
    caller's arrays are never frozen or aliased.

    >>> import numpy as np
    >>> d = {"w": np.ones(2)}
    >>> tree_map(np.asarray, d)["w"], d["w"].flags.writeable
    (array([1., 1.]), True)
    """
    return Params._own({k: _result(fn(v), v) for k, v in params.items()})


def _result(value: Any, *inputs: Any) -> np.ndarray:
    """``value`` as an array that no caller holds writeable."""
    r = np.asarray(value)
    if r.flags.writeable and any(
        isinstance(x, np.ndarray) and np.may_share_memory(r, x) for x in inputs
    ):
        r = r.copy()
    return r


def tree_map2(
    fn: Callable[[np.ndarray, np.ndarray], Any],
    a: Mapping[str, Any],
    b: Mapping[str, Any],
) -> Params:
    """Apply ``fn`` key by key to two mappings with the same keys.

    >>> import numpy as np
    >>> p = Params(W=np.ones(2)); g = Params(W=np.full(2, 0.5))
    >>> tree_map2(lambda w, dw: w - 0.1 * dw, p, g)["W"]
    array([0.95, 0.95])
    """
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))
        raise KeyError(
            f"the two mappings must have the same keys; these appear in only "
            f"one of them: {missing}"
        )
    return Params._own({k: _result(fn(v, b[k]), v, b[k]) for k, v in a.items()})


def as_dtype(params: Mapping[str, Any], dtype: Any) -> Params:
    """The same params cast to ``dtype`` (a copy; the input is unchanged)."""
    return Params._own({k: np.array(v, dtype=dtype) for k, v in params.items()})
