"""Losses, activations and their gradients at numerical extremes.

Logits of magnitude up to 1e4, in float32 and float64, saturated sigmoids,
and probability targets with zeros. Every NumPy floating-point warning is
an error in this suite, so an overflow anywhere fails the test. Results are
compared with references computed by other formulas (``np.logaddexp``) in
float64.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funnet
from funnet import layers, losses

BIG = 1e4
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-13}
# exp(log p) amplifies the rounding of log p, which is up to |log p| eps with
# |log p| as large as ~700 (float64) where p still matters: probabilities and
# gradients built from them are compared with this relative tolerance.
PROB_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 2e-13}


def _logits(dtype, min_rows=1):
    width = 32 if dtype == np.float32 else 64
    elements = st.one_of(
        st.floats(-BIG, BIG, width=width),
        st.sampled_from([-BIG, BIG, 0.0, 88.0, -88.0, 745.0, -745.0]),
    )
    shape = st.tuples(st.integers(min_rows, 5), st.integers(1, 4))
    return hnp.arrays(dtype, shape, elements=elements)


def _close(got, want, dtype, scale=1.0, rtol=RTOL):
    """``got`` equals ``want`` up to the rounding of ``dtype`` at ``scale``."""
    with np.errstate(under="ignore"):  # the comparison itself may underflow
        np.testing.assert_allclose(
            np.asarray(got, np.float64),
            np.asarray(want, np.float64),
            rtol=rtol[np.dtype(dtype)],
            atol=RTOL[np.dtype(dtype)] * scale,
        )


def _ref_log_softmax(Z):
    # long double where the platform has it: Z - logsumexp(Z) cancels digits
    Z = Z.astype(np.longdouble)
    return Z - np.logaddexp.reduce(Z, axis=1, keepdims=True)


def _ref_log_sigmoid(z):
    return -np.logaddexp(0.0, -z.astype(np.longdouble))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_cross_entropy_with_labels_is_finite_and_exact(dtype, data):
    Z = data.draw(_logits(dtype))
    y = data.draw(
        hnp.arrays(np.int64, Z.shape[0], elements=st.integers(0, Z.shape[1] - 1))
    )
    value, dZ = losses.softmax_cross_entropy(Z, y)
    assert value.dtype == dtype and dZ.dtype == dtype
    assert np.isfinite(value) and np.isfinite(dZ).all()
    with np.errstate(under="ignore"):
        logp = _ref_log_softmax(Z)
        want_grad = (np.exp(logp) - np.eye(Z.shape[1])[y]) / len(Z)
    want = -logp[np.arange(len(Z)), y].mean()
    _close(value, want, dtype, scale=2 * BIG)
    _close(dZ, want_grad, dtype, rtol=PROB_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_softmax_cross_entropy_with_zero_probability_targets_is_finite(dtype, data):
    Z = data.draw(_logits(dtype))
    raw = data.draw(
        hnp.arrays(np.float64, Z.shape, elements=st.sampled_from([0.0, 0.5, 1.0]))
    )
    raw[:, 0] += 1.0  # every row has mass; many entries stay exactly 0
    T = (raw / raw.sum(axis=1, keepdims=True)).astype(dtype)
    value, dZ = losses.softmax_cross_entropy(Z, T)
    assert np.isfinite(value) and np.isfinite(dZ).all()
    T64 = T.astype(np.float64)
    with np.errstate(under="ignore"):
        logp = _ref_log_softmax(Z)
        want = -(T64 * logp).sum(axis=1).mean()
        want_grad = (np.exp(logp) * T64.sum(axis=1, keepdims=True) - T64) / len(Z)
    _close(value, want, dtype, scale=2 * BIG)
    _close(dZ, want_grad, dtype, rtol=PROB_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_binary_cross_entropy_is_finite_and_exact_for_saturated_logits(dtype, data):
    z = data.draw(_logits(dtype))
    t = data.draw(
        hnp.arrays(dtype, z.shape, elements=st.sampled_from([0.0, 0.25, 1.0]))
    )
    value, dz = losses.binary_cross_entropy(z, t)
    assert value.dtype == dtype and dz.dtype == dtype
    assert np.isfinite(value) and np.isfinite(dz).all()
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    with np.errstate(under="ignore"):
        want = (np.logaddexp(0.0, z64) - z64 * t64).mean()
        want_grad = (np.exp(_ref_log_sigmoid(z)) - t64) / z.size
    _close(value, want, dtype, scale=BIG)
    _close(dz, want_grad, dtype, rtol=PROB_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_layer_saturates_without_overflow_and_keeps_its_slope(dtype, data):
    Z = data.draw(_logits(dtype))
    dY = np.ones_like(Z)
    layer = layers.sigmoid()
    Y, cache = layer.forward({}, Z)
    _, dZ = layer.backward({}, cache, dY)
    assert Y.dtype == dtype and dZ.dtype == dtype
    assert ((Y >= 0) & (Y <= 1)).all() and np.isfinite(dZ).all()
    with np.errstate(under="ignore"):
        want_Y = np.exp(_ref_log_sigmoid(Z))
        # sigma'(z) = sigma(z) sigma(-z), accurate even where sigma(z) is 1.0
        want_dZ = np.exp(_ref_log_sigmoid(Z) + _ref_log_sigmoid(-Z))
    _close(Y, want_Y, dtype, rtol=PROB_RTOL)
    # below the normal range a float has no relative precision left
    tiny = np.finfo(dtype).tiny / RTOL[np.dtype(dtype)]
    _close(dZ, want_dZ, dtype, scale=tiny, rtol=PROB_RTOL)


def test_sigmoid_slope_is_positive_where_the_output_rounds_to_one():
    Z = np.array([[40.0, -40.0]])
    Y, cache = layers.sigmoid().forward({}, Z)
    _, dZ = layers.sigmoid().backward({}, cache, np.ones_like(Z))
    assert Y[0, 0] == 1.0
    np.testing.assert_allclose(dZ, np.exp(-40.0), rtol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "softmax", "relu", "identity"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_activations_stay_finite_for_huge_inputs(name, dtype, data):
    Z = data.draw(_logits(dtype))
    layer = layers.activation(name)
    Y, cache = layer.forward({}, Z)
    _, dZ = layer.backward({}, cache, np.full_like(Z, 0.5))
    assert Y.dtype == dtype and dZ.dtype == dtype
    assert np.isfinite(Y).all() and np.isfinite(dZ).all()
    if name == "softmax":
        _close(Y.sum(axis=1), np.ones(len(Z)), dtype, scale=len(Z))


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_mean_squared_error_is_finite_for_large_outputs(dtype, data):
    Y = data.draw(_logits(dtype))
    width = 32 if dtype == np.float32 else 64
    T = data.draw(
        hnp.arrays(dtype, Y.shape, elements=st.floats(-BIG, BIG, width=width))
    )
    value, dY = losses.mean_squared_error(Y, T)
    assert np.isfinite(value) and np.isfinite(dY).all()
    diff = Y.astype(np.float64) - T.astype(np.float64)
    with np.errstate(under="ignore"):
        want, want_grad = (diff**2).mean(), 2 * diff / Y.size
    _close(value, want, dtype, scale=(2 * BIG) ** 2)
    _close(dY, want_grad, dtype, scale=4 * BIG)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_network_gradients_stay_finite_when_logits_reach_1e4(loss, dtype):
    k = 3 if loss == "softmax_cross_entropy" else 1
    net = funnet.mlp([4], n_outputs=k, activation_name="sigmoid")
    params = funnet.init(net, 2, seed=0, dtype=dtype)
    # Scale the last layer so that the logits reach about 1e4 in magnitude.
    params = funnet.params.assoc(params, "W2", params["W2"] * 2e4)
    X = np.array([[1.0, -1.0], [-3.0, 2.0], [50.0, 50.0]], dtype)
    y = np.array([0, 2, 1]) if k == 3 else np.array([[1.0], [0.0], [1.0]], dtype)
    logits = funnet.predict(net, params, X)
    assert np.abs(logits).max() > 1e3
    value, grads = funnet.value_and_grad(net, losses.get(loss))(params, X, y)
    assert np.isfinite(value)
    assert all(np.isfinite(g).all() and g.dtype == dtype for g in grads.values())
