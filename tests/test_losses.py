"""The math of every loss: gradients, invariants, dtypes, purity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnet import losses
from funnet.layers import dense, serial, tanh
from funnet.losses import (
    binary_cross_entropy,
    log_softmax,
    mean_squared_error,
    softmax_cross_entropy,
)
from funnet.testing import (
    assert_bce_is_two_class_cross_entropy,
    assert_concat_is_weighted_mean,
    assert_cross_entropy_is_log_softmax,
    assert_descent_lowers_loss,
    assert_permutation_invariant,
    assert_probability_rows,
    assert_pure,
    assert_shift_invariant,
    assert_softmax_ce_grad_is_p_minus_y,
    binary_targets,
    check_grads,
    classification_batches,
    dtypes,
    features,
    labels,
    logits,
    loss_objective,
    net_objective,
    params_for,
    probabilities,
    sizes,
)


@st.composite
def loss_cases(draw, kind, dtype=np.float64, n_samples=sizes(1, 6)):
    """``(loss, outputs, targets)`` for one of the supported target kinds."""
    n = draw(n_samples)
    if kind.startswith("bce"):
        m = draw(sizes(1, 3))
        Z = draw(logits(n, m, dtype))
        what = "labels" if kind == "bce_labels" else "probabilities"
        return binary_cross_entropy, Z, draw(binary_targets(n, m, dtype, what))
    k = draw(sizes(1, 5))
    if kind == "mse":
        return (
            mean_squared_error,
            draw(logits(n, k, dtype)),
            draw(features(n, k, dtype)),
        )
    Z = draw(logits(n, k, dtype))
    if kind == "ce_labels":
        return softmax_cross_entropy, Z, draw(labels(n, k))
    return softmax_cross_entropy, Z, draw(probabilities(n, k, dtype))


KINDS = ["ce_labels", "ce_probabilities", "bce_labels", "bce_probabilities", "mse"]
CE_KINDS = ["ce_labels", "ce_probabilities"]


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_loss_gradient_matches_central_differences_in_float64(kind, data):
    loss, Z, T = data.draw(loss_cases(kind))
    check_grads(loss_objective(loss, T), {}, Z)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_loss_gradient_matches_the_loose_float32_check(kind, data):
    loss, Z, T = data.draw(loss_cases(kind, np.float32))
    check_grads(loss_objective(loss, T), {}, Z)


@pytest.mark.parametrize("targets", ["labels", "one_hot", "probabilities"])
@given(data=st.data())
def test_network_and_loss_gradient_matches_central_differences(targets, data):
    net = serial(dense(4), tanh(), dense(3))
    X, T = data.draw(classification_batches(3, 3, targets=targets))
    params = data.draw(params_for(net, 3))
    check_grads(net_objective(net, softmax_cross_entropy, T), params, X)


@given(Z=logits(sizes(1, 5), sizes(1, 6), dtypes()))
def test_exp_log_softmax_rows_are_positive_and_sum_to_one(Z):
    P = np.exp(log_softmax(Z))
    assert P.dtype == Z.dtype
    assert_probability_rows(P)


@given(
    Z=logits(3, sizes(1, 6)),
    shift=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3).map(np.array),
)
def test_log_softmax_is_invariant_to_adding_a_constant_to_a_row(Z, shift):
    assert_shift_invariant(lambda A: np.exp(log_softmax(A)), Z, shift)


@pytest.mark.parametrize("kind", CE_KINDS)
@given(data=st.data())
def test_cross_entropy_is_non_negative_and_minus_log_softmax_of_the_truth(kind, data):
    _, Z, T = data.draw(loss_cases(kind, data.draw(dtypes())))
    assert_cross_entropy_is_log_softmax(softmax_cross_entropy, Z, T)


@pytest.mark.parametrize("kind", ["bce_labels", "bce_probabilities"])
@given(data=st.data())
def test_bce_from_logits_equals_two_class_softmax_cross_entropy(kind, data):
    _, Z, T = data.draw(loss_cases(kind, data.draw(dtypes())))
    assert_bce_is_two_class_cross_entropy(
        binary_cross_entropy, softmax_cross_entropy, Z, T
    )


@given(z=logits(sizes(1, 6), 1), y=labels(6, 2))
def test_bce_with_labels_equals_cross_entropy_of_logits_zero_and_z(z, y):
    y = y[: len(z)]
    value, _ = binary_cross_entropy(z, y.astype(np.float64))
    pair = np.concatenate([np.zeros_like(z), z], axis=1)
    expected, _ = softmax_cross_entropy(pair, y)
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("kind", CE_KINDS)
@given(data=st.data())
def test_softmax_cross_entropy_gradient_is_p_minus_y_over_the_batch_size(kind, data):
    _, Z, T = data.draw(loss_cases(kind, data.draw(dtypes())))
    assert_softmax_ce_grad_is_p_minus_y(softmax_cross_entropy, Z, T)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_mean_loss_is_invariant_to_permuting_rows(kind, data):
    loss, Z, T = data.draw(loss_cases(kind, data.draw(dtypes())))
    order = data.draw(st.permutations(range(len(Z)))).copy()
    assert_permutation_invariant(loss, Z, T, np.array(order))


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_loss_of_joined_batches_is_the_size_weighted_mean(kind, data):
    loss, Z, T = data.draw(loss_cases(kind))
    cut = data.draw(st.integers(1, len(Z)))
    if cut == len(Z):
        # Join the batch with itself: the weighted mean is the loss itself.
        assert_concat_is_weighted_mean(loss, (Z, T), (Z, T))
    else:
        assert_concat_is_weighted_mean(loss, (Z[:cut], T[:cut]), (Z[cut:], T[cut:]))


@pytest.mark.parametrize("targets", ["labels", "probabilities"])
@given(data=st.data())
def test_a_small_step_along_the_negative_gradient_lowers_the_loss(targets, data):
    net = serial(dense(4), tanh(), dense(3))
    X, T = data.draw(classification_batches(3, 3, targets=targets))
    params = data.draw(params_for(net, 3))
    objective = net_objective(net, softmax_cross_entropy, T)
    _, grads, _ = objective(params, X)
    assert_descent_lowers_loss(lambda p: objective(p, X)[0], params, grads)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_value_and_gradient_keep_the_outputs_dtype(kind, data):
    dtype = data.draw(dtypes())
    loss, Z, T = data.draw(loss_cases(kind, dtype))
    value, grad = loss(Z, T)
    assert value.dtype == dtype and grad.dtype == dtype and grad.shape == Z.shape


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_losses_are_pure(kind, data):
    loss, Z, T = data.draw(loss_cases(kind))
    assert_pure(loss, Z, T)
    assert_pure(log_softmax, Z)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_stay_finite_for_huge_logits(dtype):
    Z = np.array([[1e4, -1e4], [-1e4, 1e4]], dtype)
    for value, grad in [
        softmax_cross_entropy(Z, np.array([0, 0])),
        binary_cross_entropy(Z, np.array([[1, 0], [1, 0]], dtype)),
    ]:
        assert np.isfinite(value) and np.isfinite(grad).all()
    value, _ = softmax_cross_entropy(Z, np.array([0, 0]))
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)


def test_perfect_one_hot_prediction_has_zero_cross_entropy_and_gradient():
    value, grad = softmax_cross_entropy(np.array([[50.0, -50.0]]), np.array([0]))
    assert value == 0.0 or value < 1e-40
    np.testing.assert_allclose(grad, 0, atol=1e-40)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: softmax_cross_entropy(np.ones(3), np.array([0])), r"2-D array"),
        (
            lambda: softmax_cross_entropy(np.ones((2, 3)), np.array([0, 3])),
            r"label 3 is out of range; expected integers in \[0, 3\)",
        ),
        (
            lambda: softmax_cross_entropy(np.ones((2, 3)), np.array([0])),
            r"1 labels for 2 samples",
        ),
        (
            lambda: binary_cross_entropy(np.ones((2, 2)), np.ones((2, 3))),
            r"targets have shape \(2, 3\), expected \(2, 2\)",
        ),
        (
            lambda: mean_squared_error(np.ones((2, 2)), np.ones(2)),
            r"targets have shape \(2,\), expected \(2, 2\)",
        ),
        (lambda: losses.get("hinge"), r"unknown loss 'hinge'"),
    ],
    ids=[
        "ce_1d",
        "ce_label_range",
        "ce_label_count",
        "bce_shape",
        "mse_shape",
        "unknown_name",
    ],
)
def test_bad_loss_arguments_raise_with_a_message_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    "loss, logits, targets, message",
    [
        (
            losses.binary_cross_entropy,
            np.zeros((3, 1)),
            np.full(3, 2.0),
            r"binary_cross_entropy: targets must be probabilities in \[0, 1\].*got the value 2.0",
        ),
        (
            losses.binary_cross_entropy,
            np.zeros((3, 1)),
            np.array([0, 1, -1]),
            "got the value -1",
        ),
        (
            losses.softmax_cross_entropy,
            np.zeros((2, 3)),
            np.array([[np.nan, 1.0, 0.0], [1.0, 0.0, 0.0]]),
            "got the value nan",
        ),
        (
            losses.softmax_cross_entropy,
            np.zeros((2, 3)),
            np.array([[-0.5, 1.5, 0.0], [1.0, 0.0, 0.0]]),
            "got the value -0.5",
        ),
        (
            losses.mean_squared_error,
            np.zeros((2, 1)),
            np.array([1.0, np.inf]),
            "targets contain NaN or infinity",
        ),
    ],
    ids=[
        "bce-above-one",
        "bce-negative-label",
        "ce-nan-row",
        "ce-negative-row",
        "mse-infinite",
    ],
)
def test_targets_outside_their_domain_are_refused(loss, logits, targets, message):
    with pytest.raises(ValueError, match=message):
        loss(logits, targets)


def test_boolean_labels_are_class_indices_not_masks():
    logits = np.array([[2.0, -1.0], [0.5, 3.0], [0.0, 0.0]])
    as_bool = losses.softmax_cross_entropy(logits, np.array([False, True, True]))
    as_int = losses.softmax_cross_entropy(logits, np.array([0, 1, 1]))
    assert as_bool[0] == as_int[0]
    np.testing.assert_array_equal(as_bool[1], as_int[1])
