"""Checkpoints: round trips, refusals, and saves that survive a crash."""

import io
import json
import os
import sys
import typing

import numpy as np
import pytest

import funnet
from funnet import checkpoint, optimizers
from funnet.checkpoint import CheckpointError, load, save
from funnet.optimizers import OptState
from funnet.params import Params
from funnet.training import TrainState

NET = funnet.mlp([5], n_outputs=3)


def _state(dtype=np.float64, step=7):
    params = funnet.init(NET, 4, seed=1, dtype=dtype)
    slots = Params({f"momentum/{k}": v * 0.5 for k, v in params.items()})
    return TrainState(params, OptState(step, 0.05, slots), step, dtype(0.25), Params())


def _same(a, b):
    """Structural equality down to array dtypes and bits."""
    if isinstance(a, Params) or isinstance(a, np.ndarray) or isinstance(a, np.generic):
        a_arr = dict(a) if isinstance(a, Params) else {"": a}
        b_arr = dict(b) if isinstance(b, Params) else {"": b}
        return (
            type(a) is type(b)
            and a_arr.keys() == b_arr.keys()
            and all(
                np.asarray(a_arr[k]).dtype == np.asarray(b_arr[k]).dtype
                and np.array_equal(a_arr[k], b_arr[k], equal_nan=True)
                for k in a_arr
            )
        )
    if isinstance(a, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_train_state_round_trips_bit_for_bit_with_its_dtype(tmp_path, dtype):
    state = _state(dtype)
    save(tmp_path / "c.npz", state, {"seed": 3}, epoch=2)
    ckpt = load(tmp_path / "c.npz")
    assert _same(ckpt.state, state)
    assert ckpt.state.params.dtype == dtype
    assert ckpt.config == {"seed": 3} and ckpt.step == 7 and ckpt.epoch == 2


def test_the_file_is_a_plain_params_npz_too(tmp_path):
    state = _state(np.float32)
    save(tmp_path / "c.npz", state)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        for key in ("W1", "b1", "W2", "b2"):
            assert f[key].dtype == np.float32
            np.testing.assert_array_equal(f[key], state.params[key])
        header = json.loads(str(f[checkpoint.HEADER_KEY]))
    assert header["format"] == "funnet.checkpoint" and header["version"] == 1


def test_bare_params_round_trip(tmp_path):
    params = funnet.init(NET, 4, seed=0)
    save(tmp_path / "p.npz", params)
    ckpt = load(tmp_path / "p.npz")
    assert isinstance(ckpt.state, Params) and ckpt.state.equals(params)
    assert ckpt.step is None


class ChainTestState(typing.NamedTuple):
    inner: typing.Any
    scale: float
    tag: str


@pytest.fixture
def chain_state_class(monkeypatch):
    """A NamedTuple that lives in a funnet module, as chained optimizers' do."""
    monkeypatch.setattr(ChainTestState, "__module__", "funnet.optimizers")
    monkeypatch.setattr(optimizers, "ChainTestState", ChainTestState, raising=False)
    return ChainTestState


def test_nested_tuples_of_funnet_namedtuples_round_trip(tmp_path, chain_state_class):
    params = funnet.init(NET, 4, seed=0, dtype=np.float32)
    opt = (
        OptState(3, 0.1, Params({"mu/W1": params["W1"]})),
        (chain_state_class(OptState(1, float("nan"), Params()), -0.0, "x/y"), None),
        (),
        chain_state_class((True, 2**70, np.int64(5)), float("inf"), ""),
    )
    state = TrainState(params, opt, 3, None, Params())
    save(tmp_path / "c.npz", state)
    assert _same(load(tmp_path / "c.npz").state, state)


class Foreign(typing.NamedTuple):
    x: int


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"a": 1}, r"state\[0\] is a dict"),
        (
            Foreign(1),
            r"state\[0\] is a .*Foreign; a checkpoint holds NamedTuples defined "
            r"in funnet",
        ),
        (np.array(["a"]), r"state\[0\] is an array of dtype <U1"),
        (np.array([object()]), "dtype object"),
        (lambda: 0, "is a function"),
    ],
)
def test_saving_refuses_what_it_could_not_load_safely(tmp_path, bad, where):
    with pytest.raises(TypeError, match=where):
        save(tmp_path / "c.npz", (bad,))
    assert not os.listdir(tmp_path)


def test_saving_refuses_a_config_that_is_not_json(tmp_path):
    with pytest.raises(TypeError, match="config must hold JSON values only"):
        save(tmp_path / "c.npz", _state(), {"mean": np.zeros(2)})
    with pytest.raises(TypeError, match="config must hold JSON values only"):
        save(tmp_path / "c.npz", _state(), {"lr": float("nan")})


def _raw_checkpoint(path, header, **arrays):
    np.savez(path, **{checkpoint.HEADER_KEY: np.array(json.dumps(header))}, **arrays)


def _header(state_node):
    return {
        "format": checkpoint.FORMAT,
        "version": 1,
        "state": state_node,
        "config": {},
    }


@pytest.mark.parametrize(
    "spec",
    [
        "os:system",
        "subprocess:Popen",
        "builtins:dict",
        "funnet.params:Params",
        "funnet.__main__:main",
        "funnet.training:__class__",
        "funnet.nothing:X",
        "funnet.optimizers:Optimizer.__init__",
        "collections:namedtuple",
    ],
)
def test_loading_rebuilds_only_namedtuples_defined_in_funnet(tmp_path, spec):
    node = {
        "type": "namedtuple",
        "class": spec,
        "fields": [["command", {"type": "none"}]],
    }
    _raw_checkpoint(tmp_path / "evil.npz", _header(node))
    modules = set(sys.modules)
    with pytest.raises(
        CheckpointError, match="only name NamedTuples|not a NamedTuple|no module"
    ):
        load(tmp_path / "evil.npz")
    assert "subprocess" in modules or "subprocess" not in sys.modules
    assert "funnet.__main__" not in set(sys.modules) - modules


def test_loading_checks_the_fields_of_a_namedtuple(tmp_path):
    node = {
        "type": "namedtuple",
        "class": "funnet.optimizers._core:OptState",
        "fields": [["count", {"type": "int", "value": 1}]],
    }
    _raw_checkpoint(tmp_path / "c.npz", _header(node))
    with pytest.raises(CheckpointError, match=r"has fields \['count'\] but .*OptState"):
        load(tmp_path / "c.npz")


def _corrupt(data: bytes) -> bytes:
    raw = bytearray(data)
    start = raw.index(b"\x93NUMPY", raw.index(b"W1.npy"))
    for i in range(start + 200, start + 260):  # inside W1's numbers
        raw[i] ^= 0xFF
    return bytes(raw)


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


BAD_FILES = {
    "object arrays": (
        lambda p: np.savez(
            p,
            **{
                checkpoint.HEADER_KEY: np.array(
                    json.dumps(_header({"type": "array", "key": "x"}))
                ),
                "x": np.array([{"a": 1}], dtype=object),
            },
        ),
        "holds Python objects; funnet never unpickles",
    ),
    "a truncated file": (
        lambda p: (save(p, _state()), p.write_bytes(p.read_bytes()[:3000])),
        "not a readable .npz archive|truncated or corrupt",
    ),
    "a corrupt array": (
        lambda p: (save(p, _state()), p.write_bytes(_corrupt(p.read_bytes()))),
        "is damaged .*truncated or corrupt",
    ),
    "an empty file": (lambda p: p.write_bytes(b""), "not an .npz archive"),
    "a CSV file": (
        lambda p: p.write_text("1,2,3\n4,5,6\n"),
        r"not an .npz archive \(its first bytes are b'1,2,3\\n', not a zip",
    ),
    "a pickle": (
        lambda p: p.write_bytes(b"\x80\x04K\x01."),
        "not an .npz archive",
    ),
    "a .npy array": (lambda p: p.write_bytes(_npy_bytes()), "single .npy array"),
    "a params-only .npz": (
        lambda p: np.savez(p, W1=np.zeros((2, 2))),
        "not a funnet checkpoint: it has no '__funnet_checkpoint__' "
        r"entry \(it holds W1\)",
    ),
    "another format's header": (
        lambda p: _raw_checkpoint(p, {"format": "other", "version": 1}),
        "the header's format is 'other'",
    ),
    "a newer version": (
        lambda p: _raw_checkpoint(p, {**_header({"type": "none"}), "version": 99}),
        "format version 99; this funnet reads versions 1 to 1",
    ),
    "a header that is not JSON": (
        lambda p: np.savez(p, **{checkpoint.HEADER_KEY: np.array("{nope")}),
        "the header is not valid JSON",
    ),
    "a missing array": (
        lambda p: _raw_checkpoint(p, _header({"type": "array", "key": "gone"})),
        "refers to the array 'gone', which the file does not hold",
    ),
    "an unknown node": (
        lambda p: _raw_checkpoint(p, _header({"type": "pickle"})),
        "unknown type 'pickle'",
    ),
}


@pytest.mark.parametrize("make, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_loading_a_bad_file_raises_a_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(CheckpointError, match=message):
        load(path)


def test_loading_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "none.npz")


def test_a_save_interrupted_mid_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    old = _state(step=1)
    save(path, old, {"epoch": 1})
    real_write = checkpoint._write

    def crash_mid_write(file, arrays):
        real_write(file, arrays)
        file.truncate(file.tell() // 2)  # half the new file is on disk
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_write", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        save(path, _state(step=2), {"epoch": 2})
    ckpt = load(path)
    assert _same(ckpt.state, old) and ckpt.config == {"epoch": 1}
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left behind


def test_a_new_save_replaces_the_old_one_whole(tmp_path):
    path = tmp_path / "run.npz"
    save(path, _state(step=1))
    save(path, _state(np.float32, step=2))
    assert load(path).state.step == 2 and load(path).state.params.dtype == np.float32


def test_the_network_is_rebuilt_from_its_config():
    config = checkpoint.mlp_config(
        4, [5], 3, "tanh", "softmax_cross_entropy", np.float32
    )
    net, loss = checkpoint.build_network(json.loads(json.dumps(config)))
    assert loss is funnet.softmax_cross_entropy
    params = funnet.init(net, 4, seed=1, dtype=config["dtype"])
    assert params.equals(
        funnet.init(funnet.mlp([5], 3, "tanh"), 4, seed=1, dtype=np.float32)
    )


@pytest.mark.parametrize(
    "config, message",
    [
        ({"kind": "cnn"}, "network config must be a dict with kind 'mlp'"),
        ({"kind": "mlp", "hidden": [3]}, r"network config lacks \['activation'"),
        ({**checkpoint.mlp_config(2, [3], 2), "dtype": "float16"}, "dtype 'float16'"),
        (
            {**checkpoint.mlp_config(2, [3], 2), "activation": "cube"},
            "activation_name must be one of .* got 'cube'",
        ),
    ],
)
def test_a_bad_network_config_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        checkpoint.build_network(config)


def test_save_never_replaces_a_file_that_is_not_a_checkpoint(tmp_path):
    data = tmp_path / "data.npz"
    np.savez(data, X=np.ones((2, 2)), y=np.zeros(2))
    csv = tmp_path / "data.csv"
    csv.write_text("1,2,0\n")
    before = data.read_bytes(), csv.read_bytes()
    for target in (data, csv):
        with pytest.raises(ValueError, match="exists and is not a funnet checkpoint"):
            save(target, _state())
    assert (data.read_bytes(), csv.read_bytes()) == before
    with pytest.raises(ValueError, match="not a regular file"):
        save(tmp_path, _state())
    with pytest.raises(ValueError, match="does not exist"):
        save(tmp_path / "no" / "run.npz", _state())


def test_save_through_a_symlink_updates_the_file_it_points_to(tmp_path):
    real = tmp_path / "real.npz"
    save(real, _state())
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    save(link, _state(), {"note": "second"})
    assert link.is_symlink()
    assert load(real).config == {"note": "second"}
