"""The math of every layer: gradients, shapes, dtypes, purity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnet import layers
from funnet.layers import (
    dense,
    dropout,
    identity,
    relu,
    serial,
    sigmoid,
    softmax,
    tanh,
)
from funnet.testing import (
    assert_probability_rows,
    assert_pure,
    assert_shift_invariant,
    check_grads,
    dtypes,
    features,
    layer_cases,
    layer_objective,
    logits,
    networks,
    sizes,
)

# Every layer constructor with the forward arguments of prediction mode.
LAYERS = {
    "dense": (lambda: dense(3), {}),
    "dense_one_unit": (lambda: dense(1), {}),
    "relu": (relu, {}),
    "sigmoid": (sigmoid, {}),
    "tanh": (tanh, {}),
    "softmax": (softmax, {}),
    "identity": (identity, {}),
    "dropout_predicting": (lambda: dropout(0.5), {"training": False}),
    "serial": (
        lambda: serial(dense(4), tanh(), dense(3), relu(), dense(2), sigmoid()),
        {},
    ),
    "serial_nested": (
        lambda: serial(serial(dense(3), sigmoid()), dropout(0.2), dense(2)),
        {"training": False},
    ),
}
NAMES = sorted(LAYERS)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_backward_matches_central_differences_in_float64(name, data):
    make, kwargs = LAYERS[name]
    case = data.draw(layer_cases(make()))
    report = check_grads(layer_objective(case.layer, **kwargs), case.params, case.X)
    assert report.n_checked + report.n_kinks == case.X.size + case.params.size


@given(net=networks(max_hidden=3), data=st.data())
def test_drawn_networks_backward_matches_central_differences(net, data):
    case = data.draw(layer_cases(net))
    check_grads(layer_objective(case.layer), case.params, case.X)


# Smooth layers only: float32's step h is large enough that the kinks of a
# ReLU inside a network, crossed by several samples on both sides of a
# point, can escape the kink test; the float64 checks above cover ReLU.
@pytest.mark.parametrize(
    "name", ["dense", "sigmoid", "tanh", "softmax", "serial_nested"]
)
@given(data=st.data())
def test_smooth_layers_pass_the_loose_float32_gradient_check(name, data):
    make, kwargs = LAYERS[name]
    case = data.draw(layer_cases(make(), dtype=np.float32, max_abs=2.0))
    check_grads(layer_objective(case.layer, **kwargs), case.params, case.X)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_init_promises_the_width_that_forward_produces(name, data):
    make, kwargs = LAYERS[name]
    layer = make()
    n_in = data.draw(sizes(1, 6))
    n_out, params = layer.init(np.random.default_rng(0), n_in, np.float64)
    X = data.draw(features(sizes(1, 4), n_in))
    Y, _ = layer.forward(params, X, **kwargs)
    assert Y.shape == (len(X), n_out)


@given(net=networks(), n_in=sizes(), data=st.data())
def test_networks_init_promises_the_width_that_forward_produces(net, n_in, data):
    n_out, params = net.init(np.random.default_rng(0), n_in, np.float64)
    Y, _ = net.forward(params, data.draw(features(sizes(1, 4), n_in)))
    assert Y.shape[1] == n_out


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_dtype_is_kept_through_init_forward_and_backward(name, data):
    make, kwargs = LAYERS[name]
    dtype = data.draw(dtypes())
    case = data.draw(layer_cases(make(), dtype=dtype))
    Y, cache = case.layer.forward(case.params, case.X, **kwargs)
    grads, dX = case.layer.backward(case.params, cache, np.ones_like(Y))
    assert Y.dtype == dtype and dX.dtype == dtype
    assert all(v.dtype == dtype for v in case.params.values())
    assert all(grads[k].dtype == dtype for k in case.params)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_init_forward_and_backward_are_pure(name, data):
    make, kwargs = LAYERS[name]
    case = data.draw(layer_cases(make()))
    layer = case.layer

    def init_from_seed(seed, n_in, dtype):
        return layer.init(np.random.default_rng(seed), n_in, dtype)

    assert_pure(init_from_seed, 0, case.n_in, np.float64)
    Y, cache = assert_pure(layer.forward, case.params, case.X, **kwargs)
    assert_pure(layer.backward, case.params, cache, np.ones_like(Y))


def test_relu_derivative_is_one_above_zero_and_zero_at_and_below_zero():
    Z = np.array([[-2.0, -1e-300, 0.0, -0.0, 1e-300, 3.0]])
    _, cache = relu().forward({}, Z)
    _, dZ = relu().backward({}, cache, np.ones_like(Z))
    np.testing.assert_array_equal(dZ, [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]])


@given(Z=logits(sizes(1, 5), sizes(1, 5)))
def test_relu_derivative_is_the_indicator_of_positive_inputs(Z):
    _, cache = relu().forward({}, Z)
    dY = np.full_like(Z, 2.5)
    _, dZ = relu().backward({}, cache, dY)
    np.testing.assert_array_equal(dZ, np.where(Z > 0, 2.5, 0.0))


@given(Z=logits(sizes(1, 5), sizes(1, 6), dtypes()))
def test_softmax_layer_rows_are_positive_and_sum_to_one(Z):
    P, _ = softmax().forward({}, Z)
    assert P.dtype == Z.dtype
    assert_probability_rows(P)


@given(
    Z=logits(4, sizes(1, 6)),
    shift=st.lists(st.floats(-50, 50), min_size=4, max_size=4).map(np.array),
)
def test_softmax_layer_is_invariant_to_adding_a_constant_to_a_row(Z, shift):
    assert_shift_invariant(lambda A: softmax().forward({}, A)[0], Z, shift)


def test_softmax_layer_stays_finite_for_huge_logits():
    P, _ = softmax().forward({}, np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]))
    np.testing.assert_allclose(P, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])


@given(X=features(sizes(1, 4), sizes(1, 4)), drop=st.floats(0, 0.9))
def test_dropout_in_prediction_mode_is_the_identity(X, drop):
    Y, _ = dropout(drop).forward({}, X, training=False)
    np.testing.assert_array_equal(Y, X)


@given(X=features(sizes(1, 8), sizes(1, 8)), seed=st.integers(0, 100))
def test_dropout_in_training_scales_kept_units_and_backward_uses_the_same_mask(X, seed):
    layer = dropout(0.25)
    Y, mask = layer.forward({}, X, rng=np.random.default_rng(seed), training=True)
    kept = mask != 0
    np.testing.assert_allclose(Y[kept], X[kept] / 0.75)
    assert (Y[~kept] == 0).all()
    _, dX = layer.backward({}, mask, np.ones_like(X))
    np.testing.assert_array_equal(dX, mask)


def test_serial_names_params_flat_and_in_order():
    net = serial(dense(3), relu(), dense(2), serial(dense(2), dense(1)))
    _, params = net.init(np.random.default_rng(0), 4, np.float64)
    assert list(params) == list(net.param_names)
    assert net.param_names == ("W1", "b1", "W2", "b2", "W1_3", "b1_3", "W2_3", "b2_3")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: dense(0), ValueError, r"dense: n_out must be at least 1, got 0"),
        (lambda: dense(2.5), TypeError, r"dense: n_out must be an int, got 2\.5"),
        (lambda: dropout(1.0), ValueError, r"drop_prob must be in \[0, 1\), got 1\.0"),
        (lambda: serial(), ValueError, r"serial needs at least one layer"),
        (lambda: serial(relu), TypeError, r"argument 0 must be a Layer"),
        (lambda: layers.activation("gelu"), ValueError, r"unknown activation 'gelu'"),
    ],
    ids=[
        "dense_zero",
        "dense_float",
        "dropout_one",
        "serial_empty",
        "serial_uncalled",
        "unknown_activation",
    ],
)
def test_bad_layer_arguments_raise_with_a_message_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_dropout_in_training_without_an_rng_says_how_to_pass_one():
    with pytest.raises(ValueError, match=r"training=True needs an rng"):
        dropout(0.5).forward({}, np.ones((2, 2)), training=True)
