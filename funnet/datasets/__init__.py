"""Real data sets shipped with funnet, a stratified split, and file loaders.

Two classic UCI data sets come inside the package as compressed ``.npz``
files (see ``funnet/datasets/README.md`` for their sources and licences):

``"digits"``
    1,797 handwritten digits as 8x8 images flattened to 64 features with
    values 0..16, labels 0..9.
``"breast_cancer"``
    569 tumours described by 30 real-valued features, labels
    0 = malignant, 1 = benign.

>>> X, y = load("digits")
>>> X.shape, y.shape, X.dtype, y.dtype
((1797, 64), (1797,), dtype('float64'), dtype('int64'))
>>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
>>> len(X_train), len(X_test)
(1438, 359)
"""

from __future__ import annotations

import csv
import os
from importlib import resources
from typing import Any

import numpy as np

from funnet._random import Seed, generator

__all__ = [
    "NAMES",
    "load",
    "load_npz",
    "load_csv",
    "load_file",
    "train_test_split",
    "Standardizer",
    "standardize",
]

NAMES = ("digits", "breast_cancer")


def _read_npz(source, what: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, str):
        with open(source, "rb") as f:
            magic = f.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ValueError(
                f"{what} is not a readable .npz file: it does not start like a "
                f"zip archive (first bytes {magic!r})"
            )
    try:
        archive = np.load(source, allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{what} is not a readable .npz file: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{what} is a single .npy array, not a .npz archive")
    with archive:
        keys = set(archive.files)
        if not {"X", "y"} <= keys:
            raise ValueError(
                f"{what} must hold arrays named 'X' and 'y', found {sorted(keys)}"
            )
        try:
            X, y = archive["X"], archive["y"]
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise ValueError(
                    f"{what} holds object arrays, which funnet never "
                    f"unpickles; save plain numeric arrays instead"
                ) from None
            raise ValueError(f"{what} is damaged: {exc}") from None
        except (OSError, EOFError, KeyError) as exc:
            raise ValueError(f"{what} is damaged: {exc}") from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{what}: X must hold real numbers, got dtype {X.dtype}")
    # float32 data stay float32 (half the memory, and float32 training);
    # integers and other floats become float64.
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X, y


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a bundled data set: ``(X, y)`` with ``X`` float64 and ``y`` int64.

    Args:
      name: one of :data:`NAMES`.
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; expected one of {list(NAMES)}")
    path = resources.files(__name__).joinpath("data", f"{name}.npz")
    with path.open("rb") as f:
        X, y = _read_npz(f, f"the bundled data set {name!r}")
    return X, y.astype(np.int64)


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(X, y)`` from an ``.npz`` file with arrays named ``X`` and ``y``.

    The file is read with ``allow_pickle=False``; object arrays are refused.
    ``X`` comes back as float32 if it was saved so, else as float64.
    """
    return _read_npz(os.fspath(path), f"{os.fspath(path)!r}")


def load_csv(
    path: str | os.PathLike, target: str | int = -1, delimiter: str = ","
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(X, y)`` from a CSV file of numbers with an optional header row.

    Args:
      path: the file.
      target: the column holding the target, by header name or index
        (default: the last column).
      delimiter: the field separator.
    """
    # utf-8-sig drops the byte-order mark that spreadsheet programs write.
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [row for row in csv.reader(f, delimiter=delimiter) if row]
    if not rows:
        raise ValueError(f"{os.fspath(path)!r} is empty; expected rows of numbers")
    header = None
    if not all(_is_number(v) for v in rows[0] if v.strip()):
        # A header row: some cell is text. Empty cells alone do not make one.
        header, rows = rows[0], rows[1:]
    if isinstance(target, str):
        if header is None or target not in header:
            raise ValueError(
                f"no column named {target!r} in {os.fspath(path)!r}; header "
                f"is {header}"
            )
        target = header.index(target)
    try:
        data = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(
            f"{os.fspath(path)!r} must hold numbers in equally long rows: {exc}"
        ) from None
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError(
            f"{os.fspath(path)!r} needs at least two columns (features and a "
            f"target), got shape {data.shape}"
        )
    y = data[:, target]
    X = np.delete(data, target, axis=1)
    if np.all(y == np.round(y)):
        y = y.astype(np.int64)
    return X, y


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(X, y)`` from a ``.npz`` or ``.csv`` file, chosen by its suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path)
    raise ValueError(f"cannot load {os.fspath(path)!r}: expected a .npz or .csv file")


def train_test_split(
    X: Any, y: Any, test_size: float = 0.2, seed: Seed = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded split that keeps each class's share in both parts.

    Each class contributes ``round(test_size * count)`` samples to the test
    part (at least one when it has two or more). Rows are returned in a
    shuffled order. Targets that are not integer labels are split without
    stratification.

    Returns:
      ``(X_train, X_test, y_train, y_test)``.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    rng = generator(seed)
    if y.ndim == 1 and y.dtype.kind in "iub":
        test = []
        for label in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == label))
            k = int(round(test_size * len(members)))
            if len(members) > 1:
                k = min(max(k, 1), len(members) - 1)
            test.append(members[:k])
        test_idx = np.concatenate(test)
    else:
        test_idx = rng.permutation(len(y))[: int(round(test_size * len(y)))]
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~is_test))
    test_idx = rng.permutation(test_idx)
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


class Standardizer:
    """Per-feature ``(X - mean) / std``, fitted on training data only.

    A constant feature keeps ``std = 1`` so it maps to zero rather than NaN.
    Instances are immutable values.
    """

    __slots__ = ("mean", "std")

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        object.__setattr__(self, "mean", np.array(mean, dtype=np.float64))
        object.__setattr__(self, "std", np.array(std, dtype=np.float64))
        self.mean.flags.writeable = False
        self.std.flags.writeable = False

    def __setattr__(self, name, value):
        raise TypeError("Standardizer is immutable")

    @classmethod
    def fit(cls, X: Any) -> "Standardizer":
        # float64 statistics without a float64 copy of float32 data: the
        # reductions convert as they go, to the same values.
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(
                f"Standardizer.fit: X must be 2-D (samples, features) with at "
                f"least one row, got shape {X.shape}"
            )
        std = X.std(axis=0, dtype=np.float64)
        return cls(X.mean(axis=0, dtype=np.float64), np.where(std > 0, std, 1.0))

    def __call__(self, X: Any, dtype: Any = np.float64) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"Standardizer: X has shape {X.shape}; expected (samples, "
                f"{self.mean.shape[0]}) like the data it was fitted on"
            )
        # A block of rows at a time, in float64 (the mean and std are): the
        # arithmetic makes its temporaries for one block, not for all rows.
        out = np.empty(X.shape, dtype)
        rows = max(1, (1 << 16) // max(1, X.shape[1]))
        for i in range(0, len(X), rows):
            out[i : i + rows] = (X[i : i + rows] - self.mean) / self.std
        return out


def standardize(X_train: Any, *others: Any, dtype: Any = np.float64):
    """Standardize ``X_train`` and any other arrays with the training statistics."""
    scaler = Standardizer.fit(X_train)
    return tuple(scaler(X, dtype) for X in (X_train, *others))
