"""mlp, init and predict."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funnet
from funnet.testing import assert_pure, forbid_global_random
from funnet.layers import dense, relu, serial, tanh


@given(
    st.lists(st.integers(1, 6), max_size=3),
    st.integers(1, 5),
    st.integers(1, 6),
    st.sampled_from([np.float32, np.float64]),
)
def test_mlp_params_have_the_promised_names_shapes_and_dtype(hidden, k, d, dtype):
    net = funnet.mlp(hidden, n_outputs=k)
    params = funnet.init(net, d, seed=0, dtype=dtype)
    sizes = [d, *hidden, k]
    assert list(params) == [f"{p}{i}" for i in range(1, len(sizes)) for p in "Wb"]
    for i in range(1, len(sizes)):
        assert params[f"W{i}"].shape == (sizes[i - 1], sizes[i])
        assert params[f"b{i}"].shape == (sizes[i],)
    assert params.dtype == np.dtype(dtype)
    assert isinstance(params, funnet.Params)
    assert not any(v.flags.writeable for v in params.values())
    out = funnet.predict(net, params, np.zeros((2, d), dtype))
    assert out.shape == (2, k) and out.dtype == np.dtype(dtype)


def test_the_same_seed_gives_bit_identical_params():
    net = funnet.mlp([8, 8], n_outputs=3)
    a = funnet.init(net, 4, seed=11)
    b = funnet.init(net, 4, seed=11)
    c = funnet.init(net, 4, seed=12)
    assert a == b
    assert a != c


def test_a_generator_seed_is_not_advanced():
    net = funnet.mlp([8], n_outputs=3)
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    a = funnet.init(net, 4, seed=rng)
    assert rng.bit_generator.state == before
    assert a == funnet.init(net, 4, seed=rng)


def test_init_is_pure_and_never_uses_the_global_random_state():
    net = funnet.mlp([8], n_outputs=3)
    with forbid_global_random():
        for seed in (0, np.random.default_rng(5)):
            assert_pure(funnet.init, net, 4, seed, np.float32)


def test_weights_are_small_random_and_break_symmetry():
    params = funnet.init(funnet.mlp([16], n_outputs=4), 10, seed=0)
    W = params["W1"]
    assert len(np.unique(W)) == W.size
    assert np.abs(W).max() <= np.sqrt(6 / 10)
    assert not params["b1"].any()


def test_relu_mlps_use_he_and_others_glorot():
    relu_W = funnet.init(funnet.mlp([200], 1), 300, seed=0)["W1"]
    tanh_W = funnet.init(funnet.mlp([200], 1, "tanh"), 300, seed=0)["W1"]
    assert np.abs(relu_W).max() <= np.sqrt(6 / 300) < np.abs(relu_W).max() * 1.01
    assert np.abs(tanh_W).max() <= np.sqrt(6 / 500) < np.abs(tanh_W).max() * 1.01


def test_serial_numbers_only_layers_with_params():
    net = serial(dense(4), relu(), dense(3), tanh(), dense(2))
    assert net.param_names == ("W1", "b1", "W2", "b2", "W3", "b3")


def test_nested_serials_keep_keys_unique():
    block = serial(dense(4), relu(), dense(4))
    net = serial(block, relu(), dense(2))
    params = funnet.init(net, 3)
    assert list(params) == ["W1_1", "b1_1", "W2_1", "b2_1", "W2", "b2"]
    assert funnet.predict(net, params, np.ones((1, 3))).shape == (1, 2)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: funnet.init(funnet.mlp([4], 2), 3, dtype=np.int32),
            TypeError,
            "dtype must be float32 or float64",
        ),
        (
            lambda: funnet.init(funnet.mlp([4], 2), 3, dtype="foo"),
            TypeError,
            "dtype must be float32 or float64, got 'foo'",
        ),
        (
            lambda: funnet.init(funnet.mlp([4], 2), 3, dtype=None),
            TypeError,
            "dtype must be float32 or float64, got None",
        ),
        (
            lambda: funnet.init(funnet.mlp([4], 2), 0),
            ValueError,
            "n_features must be at least 1, got 0",
        ),
        (
            lambda: funnet.init(funnet.mlp([4], 2), 3, seed=-1),
            ValueError,
            "non-negative",
        ),
        (
            lambda: funnet.init(funnet.mlp([4], 2), 3, seed=1.5),
            TypeError,
            "seed must be an int or a numpy.random.Generator",
        ),
        (lambda: funnet.init("mlp", 3), TypeError, "net must be a funnet Layer"),
        (lambda: serial(dense(2), relu), TypeError, "argument 1 must be a Layer"),
        (lambda: dense(0), ValueError, "n_out must be at least 1"),
        (
            lambda: funnet.mlp([4], 2, "swish"),
            ValueError,
            "activation_name must be one of",
        ),
        (
            lambda: funnet.mlp([4], 2, "softmax"),
            ValueError,
            "for hidden layers, got 'softmax'",
        ),
        (
            lambda: funnet.mlp("128", 10),
            TypeError,
            "hidden_sizes must be a list of ints",
        ),
    ],
    ids=[
        "int-dtype",
        "unknown-dtype",
        "none-dtype",
        "no-features",
        "negative-seed",
        "float-seed",
        "not-a-layer",
        "uncalled-layer",
        "zero-units",
        "unknown-activation",
        "softmax-hidden",
        "string-sizes",
    ],
)
def test_bad_construction_arguments_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    "X, message",
    [
        (
            np.ones(3),
            r"X must be 2-D \(samples, features\), got float64 array of shape "
            r"\(3,\); for one sample",
        ),
        (np.ones((2, 4)), "X has 4 features but params\\['W1'\\] has shape \\(3, 4\\)"),
        (np.ones((0, 3)), "X has no rows"),
        (
            np.array([[1.0, np.nan, 0.0]]),
            "X contains NaN or infinity \\(first at row 0, column 1",
        ),
        (np.array([["a", "b", "c"]]), "X must hold real numbers"),
    ],
    ids=["1-d", "wrong-width", "empty", "nan", "strings"],
)
def test_predict_rejects_bad_inputs_clearly(X, message):
    net = funnet.mlp([4], 2)
    params = funnet.init(net, 3)
    with pytest.raises((ValueError, TypeError), match=message):
        funnet.predict(net, params, X)


def test_predict_converts_integer_inputs_without_wrap_around():
    net = funnet.mlp([4], 2)
    params = funnet.init(net, 3, dtype=np.float32)
    X8 = np.array([[200, 250, 255]], dtype=np.uint8)
    out = funnet.predict(net, params, X8)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, funnet.predict(net, params, X8.astype(np.float32)))


def test_predict_names_params_that_do_not_fit_the_network():
    net = funnet.mlp([8], 3)
    params = funnet.init(net, 4)
    with pytest.raises(KeyError, match=r"params lack \['b1'\]"):
        funnet.predict(
            net, {k: v for k, v in params.items() if k != "b1"}, np.ones((2, 4))
        )
    bent = funnet.params.assoc(params, "W2", np.zeros((8, 5)))
    with pytest.raises(
        ValueError, match=r"params with shapes .*W2\(8, 5\), b2\(3,\) do not fit"
    ):
        funnet.predict(net, bent, np.ones((2, 4)))


def test_predict_refuses_inputs_that_overflow_instead_of_warning():
    net = funnet.mlp([8], 3)
    params = funnet.init(net, 4)
    with pytest.raises(ValueError, match="outputs overflowed .* values up to 1e\\+308"):
        funnet.predict(net, params, np.full((1, 4), 1e308))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda net, loss: funnet.gradient_descent(loss, net, 0.1),
            "gradient_descent: net must be a funnet Layer",
        ),
        (
            lambda net, loss: funnet.make_step(net, loss, 0.1),
            "make_step: optimizer must be an Optimizer, an object with .init and .update",
        ),
        (
            lambda net, loss: funnet.value_and_grad(net, net),
            "value_and_grad: loss must be a function",
        ),
        (
            lambda net, loss: funnet.init_train_state(funnet.init(net, 2), 0.1),
            "init_train_state: optimizer must be an Optimizer",
        ),
    ],
    ids=[
        "swapped-net-and-loss",
        "number-for-optimizer",
        "layer-for-loss",
        "number-for-optimizer-state",
    ],
)
def test_arguments_in_the_wrong_place_get_type_errors(call, message):
    with pytest.raises(TypeError, match=message):
        call(funnet.mlp([3], 2), funnet.softmax_cross_entropy)
