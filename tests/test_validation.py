"""Bad input at the public boundary: one clear error, naming the argument."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funnet
from funnet import _checks, losses
from funnet.training import batches, epoch_batches, prepare, value_and_grad

NET = funnet.mlp([5], n_outputs=3)
PARAMS = funnet.init(NET, 4, seed=0)
PARAMS32 = funnet.init(NET, 4, seed=0, dtype=np.float32)
BINARY = funnet.mlp([5], n_outputs=1)
BINARY_PARAMS = funnet.init(BINARY, 4, seed=0)
X = np.ones((6, 4))
Y = np.array([0, 1, 2, 0, 1, 2])
CE = losses.softmax_cross_entropy
BCE = losses.binary_cross_entropy


def _with(a, index, value, dtype=np.float64):
    a = np.array(a, dtype=dtype)
    a[index] = value
    return a


def _grad(X, y, loss=CE, net=NET, params=PARAMS):
    return value_and_grad(net, loss)(params, X, y)


BAD_CALLS = {
    # features
    "X is 1-D": (
        lambda: funnet.predict(NET, PARAMS, np.ones(4)),
        ValueError,
        r"X must be 2-D .* float64 array of shape \(4,\).*reshape",
    ),
    "X is 3-D": (
        lambda: _grad(np.ones((2, 3, 4)), Y[:2]),
        ValueError,
        r"X must be 2-D \(samples, features\), got .*\(2, 3, 4\)",
    ),
    "X has the wrong width": (
        lambda: _grad(np.ones((6, 5)), Y),
        ValueError,
        r"X has 5 features but params\['W1'\] has "
        r"shape \(4, 5\); expected X.shape\[1\] == 4",
    ),
    "X has no rows": (
        lambda: funnet.predict(NET, PARAMS, np.ones((0, 4))),
        ValueError,
        "X has no rows; expected at least one sample",
    ),
    "X holds NaN": (
        lambda: _grad(_with(X, (2, 1), np.nan), Y),
        ValueError,
        r"X contains NaN or infinity \(first at row 2, column 1",
    ),
    "X holds inf": (
        lambda: prepare(NET, PARAMS, _with(X, (0, 3), -np.inf), Y, CE),
        ValueError,
        "X contains NaN or infinity .*-inf",
    ),
    "X overflows float32": (
        lambda: funnet.predict(NET, PARAMS32, _with(X, (1, 1), 1e300)),
        ValueError,
        "X holds values too large for float32 .*1e\\+300",
    ),
    "X is complex": (
        lambda: _grad(X + 1j, Y),
        TypeError,
        "X must hold real numbers .* got dtype complex128",
    ),
    "X holds strings": (
        lambda: funnet.predict(NET, PARAMS, [["a", "b", "c", "d"]]),
        TypeError,
        "X must hold real numbers .* dtype <U1",
    ),
    "X is ragged": (
        lambda: funnet.predict(NET, PARAMS, [[1, 2], [3]]),
        TypeError,
        "X must be an array of numbers .* could not convert",
    ),
    "X is None": (
        lambda: funnet.predict(NET, PARAMS, None),
        TypeError,
        "X must be an array of numbers, got NoneType",
    ),
    # labels
    "labels negative": (
        lambda: _grad(X, _with(Y, 3, -1, np.int64)),
        ValueError,
        "y contains the negative label -1",
    ),
    "labels too large": (
        lambda: _grad(X, _with(Y, 3, 3, np.int64)),
        ValueError,
        r"y contains the label 3 but the network has 3 "
        r"outputs; expected labels in \[0, 3\)",
    ),
    "labels not integers": (
        lambda: _grad(X, _with(Y, 0, 0.5)),
        ValueError,
        "y must hold integer class labels, got the value 0.5",
    ),
    "labels NaN": (
        lambda: _grad(X, _with(Y, 0, np.nan)),
        ValueError,
        "y contains NaN or infinity; expected integer labels",
    ),
    "labels huge uint64 do not wrap": (
        lambda: _grad(X, _with(Y, 0, 2**63 + 1, np.uint64)),
        ValueError,
        "y contains the label 9223372036854775809 but the network has 3",
    ),
    "labels huge float do not wrap": (
        lambda: _grad(X, _with(Y, 0, 1e30)),
        ValueError,
        "y contains the label 1e\\+30",
    ),
    "labels one per row": (
        lambda: _grad(X, Y[:4]),
        ValueError,
        "y has 4 labels but X has 6 rows",
    ),
    # targets
    "targets of the wrong shape": (
        lambda: _grad(X, np.zeros((6, 2)), losses.mean_squared_error),
        ValueError,
        r"y has shape \(6, 2\); expected \(6, 3\)",
    ),
    "targets with inf": (
        lambda: _grad(
            X, _with(np.zeros((6, 3)), (4, 2), np.inf), losses.mean_squared_error
        ),
        ValueError,
        r"y contains NaN or infinity \(first at index \(4, 2\)",
    ),
    "binary targets outside [0, 1]": (
        lambda: _grad(X, _with(np.zeros((6, 1)), 2, 1.5), BCE, BINARY, BINARY_PARAMS),
        ValueError,
        r"y holds the value 1.5, outside \[0, 1\]",
    ),
    "probability rows negative": (
        lambda: _grad(X, _with(np.zeros((6, 3)), (1, 1), -0.5)),
        ValueError,
        "y holds the negative value -0.5",
    ),
    "targets are text": (
        lambda: _grad(X, np.array(["a"] * 6), losses.mean_squared_error),
        TypeError,
        "y must hold real numbers",
    ),
    # batching
    "batches with unequal rows": (
        lambda: batches(X, Y[:5], 2),
        ValueError,
        "X has 6 rows but y has 5",
    ),
    "batches of an empty set": (
        lambda: batches(X[:0], Y[:0], 2),
        ValueError,
        "X has no rows",
    ),
    "batch_size zero": (
        lambda: batches(X, Y, 0),
        ValueError,
        "batch_size must be at least 1, got 0",
    ),
    "batch_size float": (
        lambda: epoch_batches(X, Y, 2.0, 0, 0),
        TypeError,
        "batch_size must be an int, got 2.0",
    ),
    "epochs negative": (
        lambda: batches(X, Y, 2, epochs=-1),
        ValueError,
        "epochs must be at least 0, got -1",
    ),
    "start_epoch not an int": (
        lambda: batches(X, Y, 2, start_epoch="1"),
        TypeError,
        "start_epoch must be an int, got '1'",
    ),
    "fit check_every zero": (
        lambda: funnet.fit(lambda s, b: s, [], PARAMS, check_every=0),
        ValueError,
        "check_every must be at least 1, got 0",
    ),
    "fit from a NaN state": (
        lambda: funnet.fit(lambda s, b: s, [], _nan_params()),
        ValueError,
        "state holds NaN or infinity before training",
    ),
}


def _nan_params():
    return funnet.params.assoc(PARAMS, "b1", np.full(5, np.nan))


@pytest.mark.parametrize(
    "call, error, message", BAD_CALLS.values(), ids=BAD_CALLS.keys()
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64, np.bool_])
def test_integer_inputs_become_floats_without_wrapping(dtype):
    raw = (
        np.array([[0, 1, 127, 1], [255, 0, 1, 0]])
        if dtype is np.uint8
        else (
            np.array([[0, 1, 1, 0], [1, 0, 1, 1]])
            if dtype is np.bool_
            else np.array([[0, -1, 127, 3], [-128, 0, 1, 2]])
        )
    )
    X_int = raw.astype(dtype)
    got = prepare(NET, PARAMS32, X_int, [0, 1], CE)[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, raw.astype(np.float64))
    # the converted copy is the caller's data, not shifted or wrapped
    assert X_int.dtype == dtype


def test_value_and_grad_converts_once_and_matches_on_float_input():
    ints = np.arange(24).reshape(6, 4) % 5
    value_int, grads_int = _grad(ints, Y)
    value_float, grads_float = _grad(ints.astype(np.float64), Y)
    assert value_int == value_float
    assert grads_int.equals(grads_float)


def test_batches_are_epoch_tagged_two_tuples():
    got = list(batches(X, Y, 4, seed=0, epochs=2, start_epoch=3))
    assert [b.epoch for b in got] == [3, 3, 4, 4]
    Xb, yb = got[0]
    assert Xb.shape == (4, 4) and yb.shape == (4,)


# -- the finiteness check on whole data sets ----------------------------------


@given(
    rows=st.integers(1, 30),
    cols=st.integers(1, 40),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    bad=st.sampled_from([None, np.nan, np.inf, -np.inf]),
    where=st.floats(0.0, 1.0, exclude_max=True),
    big=st.booleans(),
)
def test_the_data_finiteness_check_agrees_with_numpy(
    rows, cols, dtype, bad, where, big
):
    # Values near the dtype's largest make the fast sum overflow while every
    # entry is finite: the entry-by-entry check must then have the last word.
    fill = np.finfo(dtype).max / 2 if big else 1.0
    a = np.full((rows, cols), fill, dtype)
    if bad is not None:
        a.reshape(-1)[int(where * a.size)] = bad
    expected = bool(np.isfinite(a).all())
    # Blocks of a few entries, so that small arrays take the blocked path.
    saved, _checks._FINITE_BLOCK = _checks._FINITE_BLOCK, 7
    where = np.argwhere(~np.isfinite(a))
    first = tuple(int(i) for i in where[0]) if len(where) else None
    try:
        assert _checks.finite(a) == expected
        assert _checks.first_non_finite(a) == first
        assert _checks.finite(a.T) == expected
        assert _checks.finite(a[:, 0]) == bool(np.isfinite(a[:, 0]).all())
    finally:
        _checks._FINITE_BLOCK = saved
    assert _checks.finite(a) == expected


def test_checking_a_large_data_set_allocates_nothing_of_its_size():
    import tracemalloc

    X = np.ones((4000, 784), np.float32)  # 12.5 MB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert _checks.finite(X)
        X[-1, -1] = np.nan
        assert not _checks.finite(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 20


def test_a_batch_too_large_for_the_params_dtype_is_named_not_called_divergence():
    net = funnet.mlp([4], n_outputs=2)
    params = funnet.init(net, 3, seed=0, dtype=np.float32)
    opt = funnet.sgd(0.1)
    step = funnet.make_step(net, losses.softmax_cross_entropy, opt)
    X = np.ones((4, 3))
    X[2, 1] = 1e300  # finite in float64, infinite in float32
    data = [(X, np.array([0, 1, 0, 1]))]
    with pytest.raises(
        ValueError, match="a batch's X holds values too large for float32"
    ):
        funnet.fit(step, data, funnet.init_train_state(params, opt))


def test_an_overflow_in_predict_names_the_params_too():
    net = funnet.mlp([4], n_outputs=2)
    params = funnet.init(net, 3, seed=0)
    huge = funnet.params.tree_map(lambda v: v * 1e300 + 1e300, params)
    with pytest.raises(
        ValueError, match=r"the params up to \d\.\d+e\+300.*smaller learning"
    ):
        funnet.predict(net, huge, np.ones((2, 3)))
