"""funnet.testing itself: strategies draw what they promise, checks can fail."""

import contextlib
import io
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnet.layers import dense, relu, serial, tanh
from funnet.losses import binary_cross_entropy, softmax_cross_entropy
from funnet.params import Params
from funnet.testing import (
    INPUT,
    GradientCheckError,
    assert_bce_is_two_class_cross_entropy,
    assert_concat_is_weighted_mean,
    assert_cross_entropy_is_log_softmax,
    assert_descent_lowers_loss,
    assert_permutation_invariant,
    assert_probability_rows,
    assert_pure,
    assert_shift_invariant,
    assert_softmax_ce_grad_is_p_minus_y,
    check_grads,
    classification_batches,
    dtypes,
    forbid_global_random,
    layer_objective,
    layer_sizes,
    learning_rates,
    logits,
    loss_objective,
    networks,
    params_for,
    probabilities,
    schedules,
    tolerances,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- the optional dependency -------------------------------------------------


def run_python(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
    )


def test_import_funnet_does_not_import_funnet_testing():
    result = run_python("import sys, funnet; print('funnet.testing' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr


def test_without_hypothesis_funnet_works_and_funnet_testing_names_the_extra():
    result = run_python(
        "import sys; sys.modules['hypothesis'] = None\n"
        "import funnet\n"
        "try:\n"
        "    import funnet.testing\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert "pip install 'funnet[testing]'" in result.stdout, result.stderr


# --- strategies ----------------------------------------------------------------


@given(widths=layer_sizes(min_hidden=1, max_hidden=3, max_size=4))
def test_layer_sizes_draw_positive_widths_within_bounds(widths):
    assert 3 <= len(widths) <= 5 and all(1 <= w <= 4 for w in widths)


@given(net=networks(n_outputs=2), dtype=dtypes(), data=st.data())
def test_params_for_draws_finite_arrays_of_the_dtype_for_the_network(net, dtype, data):
    params = data.draw(params_for(net, 3, dtype))
    assert isinstance(params, Params) and list(params) == list(net.param_names)
    assert all(v.dtype == dtype and np.isfinite(v).all() for v in params.values())
    assert all(np.abs(v).max() < 10 for v in params.values())
    assert params[f"b{len(net.param_names) // 2}"].shape == (2,)


@given(T=probabilities(st.integers(1, 5), 4, np.float32))
def test_probability_rows_are_non_negative_and_sum_to_one(T):
    assert T.dtype == np.float32 and (T >= 0).all()
    np.testing.assert_allclose(T.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("targets", ["labels", "one_hot", "probabilities"])
@given(data=st.data())
def test_classification_batches_pair_rows_with_targets(targets, data):
    X, T = data.draw(classification_batches(3, 4, targets=targets))
    assert len(X) == len(T) and X.shape[1] == 3
    assert T.shape == ((len(X),) if targets == "labels" else (len(X), 4))


@given(lr=learning_rates(1e-5, 1e-2))
def test_learning_rates_lie_in_the_range(lr):
    assert 1e-5 <= lr <= 1e-2


@given(schedule=schedules(), step=st.integers(0, 1000))
def test_schedules_are_positive_and_non_increasing(schedule, step):
    assert 0 < schedule(step + 1) <= schedule(step) <= schedule(0)
    assert re.match(
        r"(Constant|ExponentialDecay|StepDecay|CosineDecay)\(", repr(schedule)
    )


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: learning_rates(0.0, 1.0), ValueError, r"need 0 < min_value"),
        (
            lambda: classification_batches(3, 2, targets="ranks"),
            ValueError,
            r"targets must be one of",
        ),
        (
            lambda: logits(2, 2, dtype=np.int64),
            TypeError,
            r"dtype must be float32 or float64, got <class 'numpy.int64'>",
        ),
        (lambda: tolerances(None), TypeError, r"dtype must be float32 or float64"),
        (lambda: tolerances(np.float64, "loose"), ValueError, r"kind must be"),
    ],
    ids=["rate_zero", "unknown_targets", "int_dtype", "none_dtype", "unknown_kind"],
)
def test_bad_strategy_arguments_raise_with_a_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- gradient checks catch broken backward passes ------------------------------


def broken_dense(n_out, bug):
    """``dense(n_out)`` with one deliberate mistake in its backward pass."""
    layer = dense(n_out)

    def backward(params, X, dZ):
        W = params["W"]
        grads = {"W": X.T @ dZ, "b": dZ.sum(axis=0)}
        dX = dZ @ W.T
        if bug == "sign":
            grads["W"] = -grads["W"]
        elif bug == "transpose_W":
            grads["W"] = (X.T @ dZ).T
        elif bug == "transpose_X":
            dX = dZ @ W
        elif bug == "bias_first_row":
            grads["b"] = dZ[0]
        elif bug == "bias_mean":
            grads["b"] = dZ.mean(axis=0)
        elif bug == "bias_unsummed":
            grads["b"] = dZ
        return grads, dX

    return layer._replace(backward=backward, backward_params=None)


BUGS = {
    "sign": "W",
    "transpose_W": "W",
    "transpose_X": INPUT,
    "bias_first_row": "b",
    "bias_mean": "b",
}


@pytest.mark.parametrize("bug", sorted(BUGS))
@given(data=st.data())
def test_a_broken_dense_backward_is_caught_at_the_right_key(bug, data):
    # Square weights, so a missing transpose still has the right shape, and
    # Gaussian inputs, so that no gradient vanishes by accident (X = 0).
    layer = broken_dense(3, bug)
    params = data.draw(params_for(layer, 3))
    n = data.draw(st.integers(2, 4))
    X = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).normal(size=(n, 3))
    with pytest.raises(GradientCheckError) as caught:
        check_grads(layer_objective(layer), params, X)
    assert caught.value.keys == [BUGS[bug]]
    where = "the input X" if BUGS[bug] == INPUT else f"params['{BUGS[bug]}']"
    assert re.search(
        where.replace("[", r"\[").replace("]", r"\]")
        + r" at index \(\d+(, \d+)?,?\): analytic \S+, numeric \S+, relative error",
        str(caught.value),
    )


def test_a_broken_layer_inside_serial_is_reported_by_its_flat_key():
    net = serial(dense(4), tanh(), broken_dense(4, "bias_first_row"), dense(2))
    _, params = net.init(np.random.default_rng(0), 4, np.float64)
    X = np.random.default_rng(1).normal(size=(5, 4))
    with pytest.raises(GradientCheckError) as caught:
        check_grads(layer_objective(net), params, X)
    assert caught.value.keys == ["b2"]
    mismatch = caught.value.mismatches[0]
    assert mismatch.rel_error > 0.1 and mismatch.size == 4
    assert mismatch.analytic != pytest.approx(mismatch.numeric)


def test_a_bias_gradient_not_summed_over_the_batch_fails_on_its_shape():
    layer = broken_dense(2, "bias_unsummed")
    _, params = layer.init(np.random.default_rng(0), 3, np.float64)
    with pytest.raises(
        AssertionError,
        match=r"grads\['b'\] is a float64 array of "
        r"shape \(4, 2\), but params\['b'\] is a float64 array of "
        r"shape \(2,\)",
    ):
        check_grads(layer_objective(layer), params, np.ones((4, 3)))


def test_a_gradient_of_the_wrong_dtype_is_reported():
    layer = dense(2)
    _, params = layer.init(np.random.default_rng(0), 3, np.float32)

    def upcasting(params, X):
        value, grads, dX = layer_objective(layer)(params, X)
        return value, {**grads, "W": grads["W"].astype(np.float64)}, dX

    with pytest.raises(AssertionError, match=r"grads\['W'\] is a float64 array"):
        check_grads(upcasting, params, np.ones((2, 3), np.float32))


def test_a_loss_gradient_without_the_one_over_n_is_caught_at_the_input():
    def loss_sum_grad(Z, y):
        value, dZ = softmax_cross_entropy(Z, y)
        return value, dZ * len(Z)

    Z = np.random.default_rng(0).normal(size=(3, 4))
    with pytest.raises(GradientCheckError, match=r"the input X at index"):
        check_grads(loss_objective(loss_sum_grad, np.array([0, 1, 3])), {}, Z)


def test_relu_kinks_are_skipped_and_counted_but_a_wrong_sign_is_not():
    X = np.array([[0.0, 1.0, -1.0, 0.0]])
    report = check_grads(layer_objective(relu()), {}, X)
    assert report.n_kinks == 2 and report.n_checked == 2
    flipped = relu()._replace(
        backward=lambda params, Z, dY: ({}, -relu().backward(params, Z, dY)[1])
    )
    with pytest.raises(GradientCheckError):
        check_grads(layer_objective(flipped), {}, np.array([[0.0, 1.0]]))


def test_check_grads_does_not_mutate_params_or_inputs():
    layer = dense(2)
    _, params = layer.init(np.random.default_rng(0), 3, np.float64)
    X = np.ones((2, 3))
    assert_pure(check_grads, layer_objective(layer), params, X)


# --- purity checks catch impure functions --------------------------------------


def test_assert_pure_catches_a_mutated_dict_argument():
    def add_key(d):
        d["extra"] = 1
        return len(d)

    message = r"add_key changed argument 0 had keys \['a'\], now"
    with pytest.raises(AssertionError, match=message):
        assert_pure(add_key, {"a": np.zeros(1)})


def test_assert_pure_catches_a_flipped_writeable_flag():
    def thaw(a):
        a.flags.writeable = True
        return 0

    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(AssertionError, match=r"had writeable=False, now True"):
        assert_pure(thaw, frozen)


def test_assert_pure_catches_the_global_random_state_and_an_advanced_generator():
    with pytest.raises(AssertionError, match=r"different results|global random state"):
        assert_pure(lambda: np.random.normal())
    message = r"argument 0 \(a Generator\) was advanced"
    with pytest.raises(AssertionError, match=message):
        assert_pure(lambda rng: rng.normal(), np.random.default_rng(0))


def test_assert_pure_catches_writeable_arrays_in_returned_params():
    def leaky_params():
        # Params never hand out writeable arrays, so build a broken one by hand.
        p = object.__new__(Params)
        object.__setattr__(p, "_data", {"W": np.zeros(2)})
        return p

    with pytest.raises(AssertionError, match=r"the result\['W'\] is a writeable array"):
        assert_pure(leaky_params)


def test_forbid_global_random_restores_numpy_afterwards():
    with pytest.raises(AssertionError, match=r"np\.random\.seed was called"):
        with forbid_global_random():
            np.random.seed(0)
    np.random.seed(0)
    assert 0 <= np.random.random() < 1


# --- invariants can fail ----------------------------------------------------------


def unnormalized_softmax(Z):
    return np.exp(Z - Z.max(axis=1, keepdims=True))


def test_the_invariants_pass_for_funnet_and_fail_for_broken_versions():
    Z = np.array([[1.0, 2.0, -0.5], [0.0, 0.0, 3.0]])
    y = np.array([2, 0])
    with pytest.raises(AssertionError, match=r"row sums"):
        assert_probability_rows(unnormalized_softmax(Z))
    with pytest.raises(AssertionError, match=r"fn\(Z \+ c\) vs fn\(Z\)"):
        assert_shift_invariant(lambda A: A * 2, Z, np.array([1.0, -3.0]))

    def negated(Z, y):
        value, dZ = softmax_cross_entropy(Z, y)
        return -value, -dZ

    with pytest.raises(AssertionError, match=r"expected >= 0"):
        assert_cross_entropy_is_log_softmax(negated, Z, y)

    def bce_without_mean(z, t):
        value, dz = binary_cross_entropy(z, t)
        return value * z.size, dz

    with pytest.raises(AssertionError, match=r"BCE vs two-class"):
        assert_bce_is_two_class_cross_entropy(
            bce_without_mean, softmax_cross_entropy, Z, np.ones_like(Z)
        )

    def ce_sum_grad(Z, y):
        value, dZ = softmax_cross_entropy(Z, y)
        return value, dZ * len(Z)

    with pytest.raises(AssertionError, match=r"\(P - Y\) / n"):
        assert_softmax_ce_grad_is_p_minus_y(ce_sum_grad, Z, y)

    def first_row_counts_double(Z, y):
        value, dZ = softmax_cross_entropy(np.concatenate([Z[:1], Z]), np.r_[y[:1], y])
        return value, dZ[1:]

    with pytest.raises(AssertionError, match=r"permuted rows"):
        assert_permutation_invariant(first_row_counts_double, Z, y, np.array([1, 0]))

    def summed(Z, y):
        value, dZ = softmax_cross_entropy(Z, y)
        return value * len(Z), dZ * len(Z)

    with pytest.raises(AssertionError, match=r"joined batches"):
        assert_concat_is_weighted_mean(summed, (Z[:1], y[:1]), (Z[1:], y[1:]))


def test_descent_check_fails_for_an_ascent_direction():
    net = serial(dense(3), tanh(), dense(2))
    _, params = net.init(np.random.default_rng(0), 2, np.float64)
    X, y = np.random.default_rng(1).normal(size=(6, 2)), np.array([0, 1] * 3)

    def loss(p):
        return softmax_cross_entropy(net.forward(p, X)[0], y)[0]

    Y, cache = net.forward(params, X)
    grads, _ = net.backward(params, cache, softmax_cross_entropy(Y, y)[1])
    assert_descent_lowers_loss(loss, params, grads)
    with pytest.raises(AssertionError, match=r"no step along -grads lowered the loss"):
        assert_descent_lowers_loss(loss, params, {k: -g for k, g in grads.items()})


# --- the custom-layer guide runs ------------------------------------------------


def test_the_custom_layer_guide_runs_and_prints_what_it_says():
    text = (ROOT / "docs" / "custom_layers.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/custom_layers.md", "exec"), {"__name__": "guide"})
    printed = out.getvalue()
    for claimed in re.findall(r"prints `([^`]+)`", text) + re.findall(
        r"and `(\(16, 3\))`", text
    ):
        assert claimed in printed
    shown = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    assert shown.strip() == printed.strip().split("\n", 2)[-1].strip()
