"""float32 in, float32 out: every array of training keeps the data's dtype.

Params, activations, gradients, losses, optimizer state and saved files all
stay in the dtype the data came in, float32 or float64. A float32 array that
meets a NumPy float64 *scalar* is silently promoted to float64 (NEP 50) and
runs several times slower, so the step is also run on arrays that record
the dtype of every ufunc's inputs and outputs.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funnet
from funnet import losses, optimizers
from funnet.layers import dense, dropout, relu, serial, tanh
from funnet.params import Params
from funnet.training import (
    TrainState,
    batches,
    fit,
    init_train_state,
    make_step,
    value_and_grad,
)

DTYPES = [np.float32, np.float64]
OPTIMIZERS = {
    "sgd": lambda: optimizers.sgd(0.05),
    "momentum": lambda: optimizers.momentum(0.05),
    "nesterov": lambda: optimizers.nesterov(0.05),
    "adagrad": lambda: optimizers.adagrad(0.05),
    "rmsprop": lambda: optimizers.rmsprop(0.01),
    "adam": lambda: optimizers.adam(0.01),
    "adamw": lambda: optimizers.adamw(0.01),
    "clipped sgd": lambda: optimizers.chain(
        optimizers.clip_by_global_norm(1.0), optimizers.sgd(0.05)
    ),
}


# -- a recorder of ufunc dtypes ---------------------------------------------


class _Watched(np.ndarray):
    """An array whose ufuncs log ``(name, input dtypes, output dtypes)``.

    Results are watched arrays too, so everything computed from the data and
    the params is followed through forward, loss, backward and update.
    """

    log: list = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [i.view(np.ndarray) if isinstance(i, _Watched) else i for i in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, _Watched) else o
                for o in kwargs["out"]
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        outs = result if isinstance(result, tuple) else (result,)
        _Watched.log.append(
            (
                f"{ufunc.__name__}.{method}",
                [_dtype_of(i) for i in plain],
                [_dtype_of(o) for o in outs],
            )
        )
        wrapped = tuple(
            o.view(_Watched) if isinstance(o, np.ndarray) else o for o in outs
        )
        return wrapped if isinstance(result, tuple) else wrapped[0]


def _dtype_of(x):
    if isinstance(x, (np.ndarray, np.generic)):
        return np.dtype(x.dtype)
    return type(x).__name__


def _watch(tree):
    return Params._own({k: np.asarray(v).view(_Watched) for k, v in tree.items()})


def _watch_state(state):
    """The same state with every array (params and optimizer slots) watched."""
    if isinstance(state, Params):
        return _watch(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_watch_state(s) for s in state))
    if isinstance(state, tuple):
        return tuple(_watch_state(s) for s in state)
    return state


def _foreign_floats(log, dtype):
    """Ufunc calls that took or made a floating array or scalar of another dtype."""
    dtype = np.dtype(dtype)
    bad = []
    for name, ins, outs in log:
        for d in ins + outs:
            if isinstance(d, np.dtype) and d.kind == "f" and d != dtype:
                bad.append((name, ins, outs))
                break
    return bad


def _arrays(tree):
    """Every ndarray inside a state made of NamedTuples, tuples and Params."""
    if isinstance(tree, np.ndarray):
        yield tree
    elif isinstance(tree, (Params, dict)):
        for v in tree.values():
            yield from _arrays(v)
    elif isinstance(tree, tuple):
        for v in tree:
            yield from _arrays(v)


def _data(dtype, n=24, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    y = rng.integers(0, n_classes, size=n)
    return X, y


# -- the recorder can fail ----------------------------------------------------


def test_the_recorder_catches_a_float64_scalar_in_float32_arithmetic():
    _Watched.log = []
    a = np.ones(3, np.float32).view(_Watched)
    a * 0.5
    assert _foreign_floats(_Watched.log, np.float32) == []
    a * np.float64(0.5)
    assert [name for name, _, _ in _foreign_floats(_Watched.log, np.float32)] == [
        "multiply.__call__"
    ]


# -- the whole step ---------------------------------------------------------


@given(
    dtype=st.sampled_from(DTYPES),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=2),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    batch_size=st.integers(1, 24),
)
def test_training_keeps_the_data_dtype_in_params_state_and_loss(
    dtype, hidden, optimizer, batch_size
):
    X, y = _data(dtype)
    net = funnet.mlp(hidden, n_outputs=3)
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    opt = OPTIMIZERS[optimizer]()
    step = make_step(net, losses.softmax_cross_entropy, opt)
    data = batches(X, y, batch_size, seed=0, epochs=2)
    state = fit(step, data, init_train_state(params, opt))
    for array in _arrays((state.params, state.opt_state)):
        assert array.dtype == dtype
    assert np.asarray(state.loss).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_no_ufunc_of_a_training_step_sees_another_float_dtype(dtype, optimizer):
    X, y = _data(dtype)
    net = serial(dense(6), relu(), dense(5), tanh(), dropout(0.2), dense(3))
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    opt = OPTIMIZERS[optimizer]()
    step = make_step(net, losses.softmax_cross_entropy, opt)
    state = init_train_state(params, opt)
    state = step(state, (X[:8], y[:8]))
    _Watched.log = []
    watched = TrainState(
        _watch(state.params), _watch_state(state.opt_state), state.step
    )
    new = step(watched, (X[8:16].view(_Watched), y[8:16]))
    assert len(_Watched.log) > 20
    assert _foreign_floats(_Watched.log, dtype) == []
    for array in _arrays((new.params, new.opt_state)):
        assert array.dtype == dtype


@pytest.mark.parametrize(
    "loss, targets",
    [
        (losses.softmax_cross_entropy, lambda y: y),
        (losses.binary_cross_entropy, lambda y: (y[:, None] > 0).astype(float)),
        (losses.mean_squared_error, lambda y: y[:, None].astype(float)),
    ],
    ids=["softmax cross-entropy", "binary cross-entropy", "mean squared error"],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_losses_and_gradients_keep_the_dtype_of_the_outputs(loss, targets, dtype):
    X, y = _data(dtype)
    k = 3 if loss is losses.softmax_cross_entropy else 1
    net = funnet.mlp([4], n_outputs=k)
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    t = targets(y)
    if t.dtype.kind == "f":
        t = t.astype(dtype)
    _Watched.log = []
    value, grads = value_and_grad(net, loss)(_watch(params), X.view(_Watched), t)
    assert _foreign_floats(_Watched.log, dtype) == []
    assert np.asarray(value).dtype == dtype
    assert {g.dtype for g in grads.values()} == {np.dtype(dtype)}


@given(dtype=st.sampled_from(DTYPES), hidden=st.lists(st.integers(1, 8), max_size=3))
def test_every_activation_has_the_data_dtype(dtype, hidden):
    X, _ = _data(dtype)
    net = funnet.mlp(hidden, n_outputs=2)
    params = funnet.init(net, X.shape[1], seed=1, dtype=dtype)
    Y, caches = net.forward(params, X)
    assert Y.dtype == dtype
    for cache in caches:
        for array in _arrays(cache if isinstance(cache, tuple) else (cache,)):
            assert array.dtype == dtype


@given(dtype=st.sampled_from(DTYPES), optimizer=st.sampled_from(["sgd", "adam"]))
def test_saved_params_and_optimizer_state_load_back_in_their_dtype(
    tmp_path_factory, dtype, optimizer
):
    X, y = _data(dtype)
    net = funnet.mlp([4], n_outputs=3)
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    opt = OPTIMIZERS[optimizer]()
    step = make_step(net, losses.softmax_cross_entropy, opt)
    state = fit(step, batches(X, y, 8, seed=0), init_train_state(params, opt))
    arrays = {**state.params}
    if optimizer == "adam":
        arrays.update({f"mu/{k}": v for k, v in state.opt_state.mu.items()})
        arrays.update({f"nu/{k}": v for k, v in state.opt_state.nu.items()})
    path = tmp_path_factory.mktemp("saved") / "state.npz"
    np.savez(path, **arrays)
    with np.load(path) as loaded:
        for key, value in arrays.items():
            assert loaded[key].dtype == dtype
            np.testing.assert_array_equal(loaded[key], value)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_predictions_keep_the_params_dtype(dtype):
    X, _ = _data(np.float64)
    net = funnet.mlp([4], n_outputs=3)
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    assert funnet.predict(net, params, X).dtype == dtype
