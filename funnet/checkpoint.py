"""Checkpoints: a whole training state in one self-describing ``.npz`` file.

:func:`save` writes a state (bare params, or a
:class:`~funnet.training.TrainState` with its optimizer state, step count and
network state) and a JSON ``config``; :func:`load` gives both back as a
:class:`Checkpoint`, without building a network first.

The file
--------
An ordinary ``.npz`` archive that ``np.load(path, allow_pickle=False)``
reads:

- the params under their own names (``W1``, ``b1``, ``W2``, ...), so the
  file also serves as a plain params file;
- every other array under ``state/`` and a path of field names, e.g.
  ``state/opt_state/slots/momentum/W1`` or ``state/loss``; Python scalars
  stay in the header;
- ``__funnet_checkpoint__``: a 0-d string array holding the JSON header,
  ``{"format": "funnet.checkpoint", "version": 1, "step": ...,
  "epoch": ..., "state": ..., "config": ...}``. ``state`` describes the
  structure (which NamedTuple, which field, which array key), ``config``
  is the caller's JSON.

The structure may hold exactly: ``None``, ``bool``, ``int``, ``float``,
``str``, NumPy arrays and scalars of numeric dtypes, :class:`Params`,
tuples, and NamedTuples defined in the ``funnet`` package. Loading rebuilds a
NamedTuple only when its class lives in a ``funnet`` module and is a
NamedTuple with the recorded fields; nothing is ever unpickled, so a file
cannot run code. dtypes are kept: float32 stays float32.

Safety
------
:func:`save` writes to a temporary file in the destination's directory,
flushes and fsyncs it, then renames it over the destination with
:func:`os.replace`: a crash mid-save leaves the previous checkpoint intact.
:func:`load` turns every way a file can be wrong (not an archive,
truncated, corrupt, object arrays, another format, a newer version) into a
:class:`CheckpointError` (a ``ValueError``) that says what was found.

Resuming
--------
funnet draws the shuffle of epoch ``e`` from ``(seed, e)`` and the dropout
masks of step ``t`` from ``(seed, t)``, so the seed (in the config), the
epoch and the step count (in the state) are all the random state a run
needs to continue exactly.

>>> import os, tempfile
>>> import numpy as np
>>> from funnet import init, init_train_state, mlp, sgd
>>> config = {"network": mlp_config(4, [8], 3), "seed": 0}
>>> net, loss = build_network(config["network"])
>>> state = init_train_state(init(net, 4, dtype=np.float32), sgd(0.1))
>>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
>>> save(path, state, config, epoch=0)
>>> ckpt = load(path)
>>> ckpt.state.params.equals(state.params), ckpt.state.params.dtype
(True, dtype('float32'))
>>> ckpt.config["network"]["hidden"], ckpt.step, ckpt.epoch
([8], 0, 0)
>>> sorted(np.load(path, allow_pickle=False).files)[:4]
['W1', 'W2', '__funnet_checkpoint__', 'b1']
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from funnet import losses
from funnet.layers import Layer
from funnet.models import DTYPES, mlp
from funnet.params import Params

__all__ = [
    "FORMAT",
    "VERSION",
    "HEADER_KEY",
    "Checkpoint",
    "CheckpointError",
    "save",
    "load",
    "mlp_config",
    "build_network",
    "check_destination",
]

FORMAT = "funnet.checkpoint"
VERSION = 1
HEADER_KEY = "__funnet_checkpoint__"

_MODULE = re.compile(r"funnet(\.[A-Za-z_][A-Za-z0-9_]*)*")


class CheckpointError(ValueError):
    """A file that is not a readable funnet checkpoint."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns.

    Attributes:
      state: the saved state, rebuilt: :class:`~funnet.params.Params`, a
        :class:`~funnet.training.TrainState`, ...
      config: the JSON ``config`` given to :func:`save` (a ``dict``).
      step: the state's step count, or ``None`` for bare params.
      epoch: the ``epoch`` given to :func:`save`, or ``None``.
    """

    state: Any
    config: dict
    step: int | None = None
    epoch: int | None = None


# ----------------------------------------------------------------- encoding


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _class_spec(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class _Arrays:
    """Array keys handed out while encoding, unique within one file."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def plain(self, name: str, array: np.ndarray, where: str) -> str:
        """Store a network parameter under its own name where possible."""
        if "/" in name or name.startswith("__") or name in self.arrays or not name:
            return self.add(f"params/{name}", array, where)
        self._check(array, where)
        self.arrays[name] = array
        return name

    def _check(self, array: np.ndarray, where: str) -> None:
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"state{where} is an array of dtype {array.dtype}; a "
                f"checkpoint holds numeric arrays only"
            )

    def add(self, key: str, array: np.ndarray, where: str) -> str:
        self._check(array, where)
        key = f"state/{key}" if key else "state"
        unique, n = key, 1
        while unique in self.arrays or unique == HEADER_KEY:
            n += 1
            unique = f"{key}#{n}"
        self.arrays[unique] = array
        return unique


def _float_node(value: float) -> dict:
    if math.isfinite(value):
        return {"type": "float", "value": value}
    return {"type": "float", "value": repr(value)}  # 'nan', 'inf', '-inf'


def _encode(
    value: Any, path: tuple[str, ...], out: _Arrays, plain: bool, where: str = ""
) -> dict:
    """The JSON node for ``value``; arrays go to ``out`` under a path key.

    ``plain``: store a :class:`Params` under its own key names (the
    network's params, so that the file reads as a params file). ``where``
    spells the position for messages, e.g. ``.opt_state[0]``.
    """
    if value is None:
        return {"type": "none"}
    # NumPy first: np.float64 is also a Python float, and must stay NumPy.
    if isinstance(value, np.ndarray):
        return {"type": "array", "key": out.add("/".join(path), value, where)}
    if isinstance(value, np.generic):
        key = out.add("/".join(path), np.asarray(value), where)
        return {"type": "scalar", "key": key}

    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": int(value)}
    if isinstance(value, float):
        return _float_node(float(value))
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, Params):
        items = []
        for name, array in value.items():
            where_item = f"{where}[{name!r}]"
            if plain:
                key = out.plain(name, np.asarray(array), where_item)
            else:
                key = out.add("/".join((*path, name)), np.asarray(array), where_item)
            items.append([name, key])
        return {"type": "params", "items": items}
    if _is_namedtuple(value):
        cls = type(value)
        if cls.__module__.split(".")[0] != "funnet":
            raise TypeError(
                f"state{where} is a {_class_spec(cls)}; a checkpoint holds "
                f"NamedTuples defined in funnet modules only"
            )
        fields = [
            [
                name,
                _encode(
                    field,
                    (*path, name),
                    out,
                    plain and name == "params",
                    f"{where}.{name}",
                ),
            ]
            for name, field in zip(cls._fields, value)
        ]
        return {"type": "namedtuple", "class": _class_spec(cls), "fields": fields}
    if type(value) is tuple:
        return {
            "type": "tuple",
            "items": [
                _encode(v, (*path, str(i)), out, False, f"{where}[{i}]")
                for i, v in enumerate(value)
            ],
        }
    raise TypeError(
        f"state{where} is a {type(value).__name__}; a checkpoint holds None, "
        f"bool, int, float, str, numeric arrays, Params, tuples and funnet "
        f"NamedTuples only"
    )


def _config_json(config: Any) -> str:
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    try:
        return json.dumps(dict(config), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"config must hold JSON values only (dicts with str keys, lists, "
            f"str, finite int/float, bool, None): {exc}"
        ) from None


# ----------------------------------------------------------------- writing


def _write(file, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to the open binary ``file`` in the ``.npz`` layout."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (where the platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_checkpoint_file(path: str) -> bool:
    """True when ``path`` is a zip archive holding a funnet header."""
    try:
        with zipfile.ZipFile(path) as archive:
            return f"{HEADER_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_destination(path: str | os.PathLike) -> str:
    """The real file a save may replace, or a clear error.

    A symbolic link is followed, so the file it points to is updated and the
    link stays. Only a new path or an existing funnet checkpoint may be
    written: anything else there (a data set, a device, a directory) is the
    user's, and is refused rather than replaced.
    """
    text = os.fspath(path)
    if not text:
        raise ValueError("checkpoint path is empty; expected a file name")
    real = os.path.realpath(text)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise ValueError(
            f"cannot save to {text!r}: the directory {directory!r} does not exist"
        )
    if os.path.lexists(real):
        if not os.path.isfile(real):
            raise ValueError(
                f"cannot save to {text!r}: it exists and is not a regular file"
            )
        if not _is_checkpoint_file(real):
            raise ValueError(
                f"cannot save to {text!r}: the file exists and is not a funnet "
                f"checkpoint, so it is left alone; remove it or choose another "
                f"path"
            )
    return real


def save(
    path: str | os.PathLike,
    state: Any,
    config: Mapping[str, Any] | None = None,
    *,
    epoch: int | None = None,
) -> None:
    """Write ``state`` and ``config`` to ``path`` as one checkpoint, atomically.

    Args:
      path: the destination, conventionally ending in ``.npz``. Its
        directory must exist. An existing checkpoint there is replaced only
        once the new one is complete and on disk; any other existing file
        is refused (``ValueError``), never overwritten. A symbolic link is
        followed.
      state: bare :class:`~funnet.params.Params`, a
        :class:`~funnet.training.TrainState`, or any structure of the
        types listed in the module docstring.
      config: JSON data needed to continue: the network (see
        :func:`mlp_config`), the training settings, the preprocessing.
      epoch: the number of epochs completed, recorded for resuming.

    Raises:
      TypeError: ``state`` or ``config`` holds something a checkpoint
        cannot (the message names where).
    """
    out = _Arrays()
    tree = _encode(state, (), out, True)
    step = getattr(state, "step", None)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "step": step if isinstance(step, int) else None,
        "epoch": None if epoch is None else int(epoch),
        "state": tree,
    }
    _config_json(config or {})
    text = json.dumps({**header, "config": dict(config or {})}, allow_nan=False)
    arrays = {HEADER_KEY: np.array(text), **out.arrays}

    path = check_destination(path)
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


# ----------------------------------------------------------------- loading


def _namedtuple_class(spec: Any, where: str) -> type:
    """The funnet NamedTuple class named ``module:qualname``, or an error."""
    module_name, _, qualname = str(spec).partition(":")
    parts = qualname.split(".")
    if (
        not _MODULE.fullmatch(module_name)
        or module_name.endswith("__main__")
        or not all(p.isidentifier() and not p.startswith("__") for p in parts)
    ):
        raise CheckpointError(
            f"{where} names the class {spec!r}; a checkpoint may only name "
            f"NamedTuples defined in funnet modules"
        )
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except ImportError:
        raise CheckpointError(
            f"{where} names the class {spec!r}, but there is no module "
            f"{module_name!r} in this funnet"
        ) from None
    cls: Any = module
    for part in parts:
        cls = getattr(cls, part, None)
    if not (
        isinstance(cls, type)
        and issubclass(cls, tuple)
        and hasattr(cls, "_fields")
        and cls.__module__ == module_name
    ):
        raise CheckpointError(
            f"{where} names {spec!r}, which is not a NamedTuple defined in "
            f"{module_name}"
        )
    return cls


class _Reader:
    def __init__(self, archive, what: str):
        self.archive, self.what = archive, what

    def array(self, key: Any, kinds: str = "biufc") -> np.ndarray:
        if not isinstance(key, str) or key not in self.archive.files:
            raise CheckpointError(
                f"{self.what}: the header refers to the array {key!r}, which "
                f"the file does not hold; the file is incomplete or corrupt"
            )
        try:
            array = self.archive[key]
        except ValueError as exc:
            if "pickle" in str(exc) or "Object arrays" in str(exc):
                raise CheckpointError(
                    f"{self.what}: the array {key!r} holds Python objects; "
                    f"funnet never unpickles, so it refuses the file"
                ) from None
            raise CheckpointError(f"{self.what}: cannot read {key!r}: {exc}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise CheckpointError(
                f"{self.what}: the array {key!r} is damaged ({exc}); the file "
                f"is truncated or corrupt"
            ) from None
        if array.dtype.kind not in kinds:
            raise CheckpointError(
                f"{self.what}: the array {key!r} has dtype {array.dtype}; "
                f"expected {'text' if kinds == 'U' else 'numbers'}"
            )
        array.flags.writeable = False
        return array

    def decode(self, node: Any, where: str) -> Any:
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            value = node.get("value")
            expected = {"bool": bool, "int": int, "str": str}[kind]
            if type(value) is not expected:
                raise CheckpointError(f"{self.what}: {where} is not a valid {kind}")
            return value
        if kind == "float":
            value = node.get("value")
            if isinstance(value, str) and value in ("nan", "inf", "-inf"):
                return float(value)
            if type(value) not in (int, float):
                raise CheckpointError(f"{self.what}: {where} is not a valid float")
            return float(value)
        if kind == "array":
            return self.array(node.get("key"))
        if kind == "scalar":
            return self.array(node.get("key"))[()]
        if kind == "params":
            items = node.get("items")
            if not isinstance(items, list):
                raise CheckpointError(f"{self.what}: {where} has no items")
            return Params._own({str(name): self.array(key) for name, key in items})
        if kind == "tuple":
            items = node.get("items")
            if not isinstance(items, list):
                raise CheckpointError(f"{self.what}: {where} has no items")
            return tuple(self.decode(v, f"{where}[{i}]") for i, v in enumerate(items))
        if kind == "namedtuple":
            cls = _namedtuple_class(node.get("class"), f"{self.what}: {where}")
            fields = node.get("fields")
            names = [f[0] for f in fields] if isinstance(fields, list) else None
            if names != list(cls._fields):
                raise CheckpointError(
                    f"{self.what}: {where} has fields {names} but "
                    f"{_class_spec(cls)} has {list(cls._fields)}; the file "
                    f"comes from an incompatible funnet"
                )
            return cls(*(self.decode(v, f"{where}.{n}") for n, v in fields))
        raise CheckpointError(f"{self.what}: {where} has the unknown type {kind!r}")


def _header(archive, what: str) -> dict:
    if HEADER_KEY not in archive.files:
        names = sorted(archive.files)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise CheckpointError(
            f"{what} is an .npz archive but not a funnet checkpoint: it has "
            f"no {HEADER_KEY!r} entry (it holds {shown}); plain arrays can "
            f"be read with np.load"
        )
    raw = _Reader(archive, what).array(HEADER_KEY, kinds="U")
    try:
        header = json.loads(str(raw[()]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{what}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise CheckpointError(
            f"{what}: the header's format is {found!r}; expected {FORMAT!r}"
        )
    version = header.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{what} has format version {version!r}; this funnet reads "
            f"versions 1 to {VERSION}, so the file needs a newer funnet"
        )
    if not isinstance(header.get("config"), dict):
        raise CheckpointError(f"{what}: the header's config is not a JSON object")
    return header


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Nothing is unpickled (``allow_pickle=False``) and only funnet
    NamedTuples are rebuilt, so a file from anyone is safe to load.

    Returns:
      ``Checkpoint(state, config, step, epoch)``.

    Raises:
      FileNotFoundError: there is no file at ``path``.
      CheckpointError: the file is not a funnet checkpoint, is truncated
        or corrupt, holds object arrays, or needs a newer funnet.
    """
    path = os.fspath(path)
    what = repr(path)
    with open(path, "rb") as file:
        magic = file.read(6)
        file.seek(0)
        if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            raise CheckpointError(
                f"{what} is not a funnet checkpoint: it is not an .npz archive "
                f"(its first bytes are {magic!r}, not a zip file's)"
            )
        try:
            archive = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise CheckpointError(
                f"{what} is not a funnet checkpoint: it is not a readable .npz "
                f"archive ({exc})"
            ) from None
        if not isinstance(archive, Mapping) or not hasattr(archive, "files"):
            raise CheckpointError(
                f"{what} is not a funnet checkpoint: it holds a single .npy "
                f"array, not an .npz archive"
            )
        with archive:
            header = _header(archive, what)
            state = _Reader(archive, what).decode(header.get("state"), "state")
    step, epoch = header.get("step"), header.get("epoch")
    return Checkpoint(
        state,
        header["config"],
        step if isinstance(step, int) else None,
        epoch if isinstance(epoch, int) else None,
    )


# ----------------------------------------------------------------- networks


def mlp_config(
    n_features: int,
    hidden_sizes: Sequence[int],
    n_outputs: int,
    activation: str = "relu",
    loss: str = "softmax_cross_entropy",
    dtype: Any = "float64",
) -> dict[str, Any]:
    """The JSON description of an MLP, for a checkpoint's config.

    >>> mlp_config(64, [128], 10, dtype="float32")["hidden"]
    [128]
    """
    config = {
        "kind": "mlp",
        "n_features": int(n_features),
        "hidden": [int(h) for h in hidden_sizes],
        "activation": str(activation),
        "n_outputs": int(n_outputs),
        "loss": str(loss),
        "dtype": str(np.dtype(dtype)),
    }
    build_network(config)  # refuse a description that cannot be rebuilt
    return config


def build_network(config: Mapping[str, Any]) -> tuple[Layer, losses.Loss]:
    """``(net, loss)`` rebuilt from :func:`mlp_config`'s description.

    Raises:
      ValueError: the description is incomplete or names an unknown
        activation, loss or dtype.
    """
    if not isinstance(config, Mapping) or config.get("kind") != "mlp":
        raise ValueError(
            f"network config must be a dict with kind 'mlp' (from "
            f"mlp_config), got {config!r}"
        )
    missing = {"n_features", "hidden", "activation", "n_outputs", "loss", "dtype"}
    missing -= set(config)
    if missing:
        raise ValueError(f"network config lacks {sorted(missing)}")
    try:
        dtype = np.dtype(config["dtype"])
    except TypeError:
        dtype = None
    if dtype is None or dtype not in DTYPES:
        raise ValueError(
            f"network config has dtype {config['dtype']!r}; expected float32 "
            f"or float64"
        )
    net = mlp(list(config["hidden"]), int(config["n_outputs"]), config["activation"])
    return net, losses.get(config["loss"])
