"""Input checks at the public boundary.

Each check converts what it accepts once (lists, integer and boolean arrays
become floating point) and raises a ``TypeError`` or ``ValueError`` that
names the argument, what came in and what was expected. Inner functions
(layer kernels, the training step) trust their inputs and stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# Rows per block when a whole-array finiteness check must look entry by entry.
_FINITE_BLOCK = 1 << 16


def finite(a: np.ndarray) -> bool:
    """``np.isfinite(a).all()``, without a mask the size of ``a``.

    A sum is finite when every entry is, unless it overflows; only a
    non-finite sum (NaN or infinity somewhere, or that overflow) needs the
    entry-by-entry check, made a block of rows at a time. So checking a
    data set reads it once and allocates nothing of its size.
    """
    if a.dtype.kind not in "fc":
        return True
    if a.size <= _FINITE_BLOCK:
        return bool(np.isfinite(a).all())
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(a, axis=None)
    if np.isfinite(total):
        return True
    rows = max(1, _FINITE_BLOCK * len(a) // a.size)
    return all(bool(np.isfinite(a[i : i + rows]).all()) for i in range(0, len(a), rows))


def first_non_finite(a: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN or infinity in ``a`` (C order), or None.

    Searched a block of rows at a time, as :func:`finite` checks.
    """
    if finite(a):
        return None
    rows = max(1, _FINITE_BLOCK * len(a) // max(1, a.size))
    for i in range(0, len(a), rows):
        bad = np.argwhere(~np.isfinite(a[i : i + rows]))
        if len(bad):
            return (i + int(bad[0][0]), *(int(j) for j in bad[0][1:]))
    return None


def _cast(a: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``a`` as ``dtype``, refusing values that overflow to infinity.

    Integers (uint8 included) convert exactly or to the nearest float, with
    no wrap-around; a float64 value beyond float32's range would become
    ``inf``, which is refused with a message instead.
    """
    if a.dtype == dtype:
        return a
    with np.errstate(over="ignore"):  # an overflow is reported below
        out = a.astype(dtype)
    if a.dtype.kind == "f" and not finite(out):
        raise ValueError(
            f"{name} holds values too large for {dtype} (largest magnitude "
            f"{np.abs(a).max()}, the limit is {np.finfo(dtype).max}); scale "
            f"the data or use float64"
        )
    return out


def float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """``dtype`` as float32 or float64, or a TypeError naming it."""
    # np.dtype(None) is float64 (and np.dtype("float64") == None is True),
    # so None is refused before any conversion or comparison.
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


def _describe(a: np.ndarray) -> str:
    return f"{a.dtype} array of shape {a.shape}"


def as_array(value: Any, name: str) -> np.ndarray:
    """``value`` as an ndarray of numbers (bool, int, uint or float)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(
            f"{name} must be an array of numbers, got {type(value).__name__}"
        )
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(
            f"{name} must be an array of numbers (a rectangular nested list or "
            f"an ndarray), could not convert it: {exc}"
        ) from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, integer or float), got "
            f"dtype {a.dtype}"
        )
    return a


def first_weight(params: Mapping[str, np.ndarray]) -> tuple[str, np.ndarray] | None:
    """The first 2-D entry of ``params`` (``W1`` for an MLP), if any."""
    for key, value in params.items():
        if np.ndim(value) == 2:
            return key, value
    return None


def params_dtype(params: Mapping[str, np.ndarray]) -> np.dtype:
    dtypes = {np.asarray(v).dtype for v in params.values()}
    if len(dtypes) == 1:
        (dt,) = dtypes
        if dt in FLOATS:
            return dt
    if not dtypes:
        return np.dtype(np.float64)
    raise TypeError(
        f"params must all be float32 or all float64, got dtypes "
        f"{sorted(str(d) for d in dtypes)}"
    )


def features(
    X: Any,
    params: Mapping[str, np.ndarray] | None,
    name: str = "X",
    dtype: Any = None,
) -> np.ndarray:
    """Check a feature matrix and return it as a float array.

    Expected: 2-D ``(samples, features)``, at least one row, finite values,
    and ``X.shape[1]`` equal to the rows of the first weight matrix in
    ``params``. The result has the params' dtype (or ``dtype``); an array
    that already has it is returned without a copy.
    """
    a = as_array(X, name)
    if a.ndim != 2:
        hint = (
            "; for one sample use X.reshape(1, -1), for one feature " "X.reshape(-1, 1)"
            if a.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be 2-D (samples, features), got {_describe(a)}{hint}"
        )
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no rows; expected at least one sample")
    if params is not None:
        found = first_weight(params)
        if found is not None and found[1].shape[0] != a.shape[1]:
            key, W = found
            raise ValueError(
                f"{name} has {a.shape[1]} features but params[{key!r}] has "
                f"shape {W.shape}; expected {name}.shape[1] == {W.shape[0]}"
            )
        target = params_dtype(params) if dtype is None else np.dtype(dtype)
    else:
        target = np.dtype(dtype or (a.dtype if a.dtype in FLOATS else np.float64))
    bad = first_non_finite(a) if a.dtype.kind == "f" else None
    if bad is not None:
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column "
            f"{bad[1]}: {a[tuple(bad)]}); expected finite numbers"
        )
    return _cast(a, target, name)


def labels(
    y: Any, n_samples: int, n_classes: int | None, name: str = "y"
) -> np.ndarray:
    """Check integer class labels: shape ``(n_samples,)``, values in ``[0, n_classes)``.

    Floats that are whole numbers (``1.0``) are accepted and converted.
    """
    a = as_array(y, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of {n_samples} integer labels, got "
            f"{_describe(a)}"
        )
    if a.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {a.shape[0]} labels but X has {n_samples} rows; "
            f"expected one label per sample"
        )
    if a.dtype.kind == "f":
        if not finite(a):
            raise ValueError(
                f"{name} contains NaN or infinity; expected integer labels"
            )
        if not (a == np.round(a)).all():
            bad = a[a != np.round(a)][0]
            raise ValueError(
                f"{name} must hold integer class labels, got the value {bad}"
            )
    # The range is checked before the cast to int64, so no huge float or
    # uint64 label can wrap around into a valid-looking one.
    lo, hi = (a.min(), a.max()) if a.size else (0, 0)
    if lo < 0:
        raise ValueError(
            f"{name} contains the negative label {lo}; expected labels "
            f"0, 1, ..., n_classes - 1"
        )
    if n_classes is not None and hi >= n_classes:
        raise ValueError(
            f"{name} contains the label {hi} but the network has "
            f"{n_classes} outputs; expected labels in [0, {n_classes})"
        )
    if hi > 2**63 - 1:
        raise ValueError(f"{name} contains the label {hi}, too large for int64")
    return a.astype(np.int64, copy=False)


def targets(
    y: Any, n_samples: int, n_outputs: int | None, name: str = "y", dtype=None
) -> np.ndarray:
    """Check float targets of shape ``(n_samples, n_outputs)``.

    For one output a flat ``(n_samples,)`` vector is accepted too.

    With ``n_outputs=None`` (a network without weights) only the number of
    rows is checked.
    """
    a = as_array(y, name)
    if a.ndim == 1 and n_outputs == 1:
        a = a[:, None]
    if n_outputs is None:
        if a.ndim == 0 or a.shape[0] != n_samples:
            raise ValueError(
                f"{name} has shape {a.shape}; expected {n_samples} rows, one "
                f"per sample"
            )
    elif a.shape != (n_samples, n_outputs):
        raise ValueError(
            f"{name} has shape {a.shape}; expected ({n_samples}, {n_outputs}) "
            f"to match {n_samples} samples and {n_outputs} network outputs"
        )
    bad = first_non_finite(a) if a.dtype.kind == "f" else None
    if bad is not None:
        raise ValueError(
            f"{name} contains NaN or infinity (first at index "
            f"{tuple(int(i) for i in bad)}: "
            f"{a[tuple(bad)]}); expected finite targets"
        )
    target = np.dtype(dtype or (a.dtype if a.dtype in FLOATS else np.float64))
    return _cast(a, target, name)


def integer(value: Any, name: str, minimum: int) -> int:
    """``value`` as a Python ``int`` of at least ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def all_finite(arrays) -> bool:
    """True when every array in the iterable holds only finite numbers."""
    for a in arrays:
        a = np.asarray(a)
        if not finite(a):
            return False
    return True


def network(net: Any, fn: str) -> None:
    """``net`` must be a :class:`~funnet.layers.Layer` (arguments in order)."""
    from funnet.layers import Layer

    if not isinstance(net, Layer):
        raise TypeError(
            f"{fn}: net must be a funnet Layer (from mlp or serial), got "
            f"{type(net).__name__}; the arguments are {fn}(net, ...)"
        )


def loss_function(loss: Any, fn: str) -> None:
    if not callable(loss) or hasattr(loss, "forward"):
        raise TypeError(
            f"{fn}: loss must be a function (outputs, targets) -> (value, "
            f"grad) such as funnet.softmax_cross_entropy, got {loss!r}"
        )


def optimizer(opt: Any, fn: str) -> None:
    if not (
        callable(getattr(opt, "init", None)) and callable(getattr(opt, "update", None))
    ):
        raise TypeError(
            f"{fn}: optimizer must be an Optimizer, an object with .init and "
            f".update such as funnet.optimizers.adam(1e-3) or, for your own "
            f"pair of functions, funnet.optimizers.Optimizer(init, update); "
            f"got {opt!r:.100}"
        )


def params_for(net: Any, params: Any, fn: str) -> None:
    """``params`` must be a mapping holding every parameter ``net`` names."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{fn}: params must be a mapping of arrays (funnet.Params), got "
            f"{type(params).__name__}"
        )
    missing = [k for k in net.param_names if k not in params]
    if missing:
        raise KeyError(
            f"{fn}: params lack {missing} that the network {net.name} needs; "
            f"they hold {sorted(params)}. Build them with funnet.init(net, ...)"
        )


def finite_params(params: Mapping[str, Any], fn: str) -> None:
    """Params with NaN or infinity would only produce NaN: refuse them."""
    if not all_finite(params.values()):
        bad = [k for k, v in params.items() if not all_finite([v])]
        raise ValueError(
            f"{fn}: params {bad} contain NaN or infinity; expected finite "
            f"params (after a diverged run, TrainingDiverged.state holds the "
            f"last finite ones)"
        )
