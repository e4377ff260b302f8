"""value_and_grad, the steps, the fold, and mini-batches."""

import itertools

import numpy as np
import pytest
import toolz
from hypothesis import given
from hypothesis import strategies as st

import funnet
from funnet import losses
from funnet.layers import Layer, dense, dropout, relu, serial
from funnet.testing import assert_pure, forbid_global_random
from funnet.training import (
    TrainState,
    batches,
    epoch_batches,
    fit,
    gradient_descent,
    init_train_state,
    make_step,
    prepare,
    trajectory,
    value_and_grad,
)


def _problem(n=40, d=5, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    net = funnet.mlp([7], n_outputs=k)
    return net, funnet.init(net, d, seed=seed, dtype=dtype), X, y


def test_value_and_grad_returns_params_shaped_gradients():
    net, params, X, y = _problem()
    value, grads = value_and_grad(net, losses.softmax_cross_entropy)(params, X, y)
    assert np.ndim(value) == 0 and np.isfinite(value)
    assert isinstance(grads, funnet.Params)
    assert list(grads) == list(params)
    for key in params:
        assert grads[key].shape == params[key].shape
        assert grads[key].dtype == params[key].dtype


def test_gradient_descent_step_is_p_minus_lr_times_g():
    net, params, X, y = _problem()
    lr = 0.3
    _, grads = value_and_grad(net, losses.softmax_cross_entropy)(params, X, y)
    new = gradient_descent(net, losses.softmax_cross_entropy, lr)(params, (X, y))
    assert isinstance(new, funnet.Params)
    for key in params:
        np.testing.assert_allclose(new[key], params[key] - lr * grads[key], rtol=1e-12)


@given(st.integers(0, 2**16), st.sampled_from([np.float32, np.float64]))
def test_a_small_step_lowers_the_loss(seed, dtype):
    net, params, X, y = _problem(seed=seed, dtype=dtype)
    loss = value_and_grad(net, losses.softmax_cross_entropy)
    before, _ = loss(params, X, y)
    after, _ = loss(
        gradient_descent(net, losses.softmax_cross_entropy, 1e-3)(params, (X, y)), X, y
    )
    assert after < before


def test_fit_equals_a_hand_written_loop_and_is_a_reduce():
    net, params, X, y = _problem()
    step = gradient_descent(net, losses.softmax_cross_entropy, 0.1)
    data = list(batches(X, y, 8, seed=3, epochs=2))
    by_hand = params
    for batch in data:
        by_hand = step(by_hand, batch)
    assert fit(step, data, params) == by_hand
    assert toolz.reduce(step, data, params) == by_hand


def test_trajectory_is_lazy_and_ends_where_fit_ends():
    net, params, X, y = _problem()
    step = gradient_descent(net, losses.softmax_cross_entropy, 0.1)
    calls = []

    def counting_step(state, batch):
        calls.append(1)
        return step(state, batch)

    data = list(batches(X, y, 8, seed=0, epochs=1))
    states = trajectory(counting_step, data, params)
    assert calls == []
    first_two = list(itertools.islice(states, 2))
    assert first_two[0] is params and len(calls) == 1
    rest = list(states)
    assert rest[-1] == fit(step, data, params)
    assert len(first_two) + len(rest) == len(data) + 1


def test_make_step_with_sgd_matches_gradient_descent():
    net, params, X, y = _problem()
    data = list(batches(X, y, 16, seed=1, epochs=2))
    plain = fit(gradient_descent(net, losses.softmax_cross_entropy, 0.2), data, params)
    opt = funnet.sgd(0.2)
    state = fit(
        make_step(net, losses.softmax_cross_entropy, opt),
        data,
        init_train_state(params, opt),
    )
    assert isinstance(state, TrainState)
    assert state.step == len(data)
    np.testing.assert_allclose(
        state.loss,
        value_and_grad(net, losses.softmax_cross_entropy)(
            fit(
                gradient_descent(net, losses.softmax_cross_entropy, 0.2),
                data[:-1],
                params,
            ),
            *data[-1],
        )[0],
    )
    for key in params:
        np.testing.assert_allclose(
            state.params[key], plain[key], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("n, batch_size", [(10, 3), (9, 3), (5, 8), (1, 1)])
def test_every_sample_appears_once_per_epoch_and_the_last_batch_keeps_the_rest(
    n, batch_size
):
    X = np.arange(n, dtype=np.float64)[:, None]
    y = np.arange(n)
    sizes, seen = [], []
    for Xb, yb in epoch_batches(X, y, batch_size, seed=0, epoch=0):
        np.testing.assert_array_equal(Xb[:, 0], yb)
        sizes.append(len(yb))
        seen.extend(yb)
    assert sorted(seen) == list(range(n))
    assert sizes == [batch_size] * (n // batch_size) + (
        [n % batch_size] if n % batch_size else []
    )


def test_the_shuffle_depends_on_seed_and_epoch_only():
    X = np.arange(50, dtype=np.float64)[:, None]
    y = np.arange(50)
    order = lambda seed, epoch: np.concatenate(
        [b[1] for b in epoch_batches(X, y, 7, seed=seed, epoch=epoch)]
    )
    np.testing.assert_array_equal(order(1, 2), order(1, 2))
    assert not np.array_equal(order(1, 2), order(1, 3))
    assert not np.array_equal(order(1, 2), order(2, 2))
    resumed = list(batches(X, y, 7, seed=1, epochs=2, start_epoch=1))
    whole = list(batches(X, y, 7, seed=1, epochs=3))
    for (a, b), (c, d) in zip(resumed, whole[len(whole) - len(resumed) :]):
        np.testing.assert_array_equal(b, d)


def test_batches_do_not_touch_the_global_random_state():
    with forbid_global_random():
        list(batches(np.zeros((10, 2)), np.zeros(10, int), 3, seed=0, epochs=2))


def test_a_partial_batch_is_averaged_over_its_real_size():
    net, params, X, y = _problem(n=5)
    loss = losses.softmax_cross_entropy
    value, _ = value_and_grad(net, loss)(params, X, y)
    per_sample = [
        value_and_grad(net, loss)(params, X[i : i + 1], y[i : i + 1])[0]
        for i in range(5)
    ]
    np.testing.assert_allclose(value, np.mean(per_sample), rtol=1e-12)


def test_training_is_deterministic_for_a_seed():
    def run(seed):
        net, params, X, y = _problem(seed=0)
        step = gradient_descent(net, losses.softmax_cross_entropy, 0.1)
        return fit(step, batches(X, y, 8, seed=seed, epochs=3), params)

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_public_training_function_is_pure(dtype):
    net, params, X, y = _problem(dtype=dtype)
    loss = losses.softmax_cross_entropy
    opt = funnet.sgd(0.1)
    state = init_train_state(params, opt)
    data = list(batches(X, y, 16, seed=0))
    with forbid_global_random():
        new_state = assert_pure(make_step(net, loss, opt), state, (X, y))
        assert_pure(gradient_descent(net, loss, 0.1), params, (X, y))
        assert_pure(value_and_grad(net, loss), params, X, y)
        assert_pure(fit, gradient_descent(net, loss, 0.1), data, params)
        assert_pure(prepare, net, params, X, y, loss)
        assert_pure(funnet.predict, net, params, X)
    assert new_state.params.dtype == np.dtype(dtype)


def test_dropout_masks_come_from_the_seed_and_step():
    net = serial(dense(16), relu(), dropout(0.5), dense(2))
    params = funnet.init(net, 3, seed=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0) * 1
    opt = funnet.sgd(0.1)
    data = list(batches(X, y, 5, seed=0, epochs=2))
    run = lambda seed: fit(
        make_step(net, losses.softmax_cross_entropy, opt, seed=seed),
        data,
        init_train_state(params, opt),
    ).params
    assert run(1) == run(1)
    assert run(1) != run(2)
    with pytest.raises(ValueError, match="make_step"):
        gradient_descent(net, losses.softmax_cross_entropy, 0.1)


def _running_mean(momentum=0.5):
    """A test layer with non-trainable state: it tracks the mean of its input."""

    def init(rng, n_in, dtype):
        return n_in, {}, {"mean": np.zeros(n_in, dtype)}

    def forward(params, X, *, state, training=False):
        if training:
            mean = momentum * state["mean"] + (1 - momentum) * X.mean(axis=0)
            return X, None, {"mean": mean}
        return X, None, state

    def backward(params, cache, dY):
        return {}, dY

    return Layer(
        init,
        forward,
        backward,
        "running_mean",
        needs=frozenset({"state", "training"}),
        state_names=("mean",),
    )


def test_non_trainable_state_is_carried_beside_the_params():
    net = serial(dense(3), _running_mean(), relu(), dense(2))
    params, state0 = funnet.init_with_state(net, 4, seed=0)
    assert list(state0) == ["mean1"] and list(params) == ["W1", "b1", "W2", "b2"]
    X = np.random.default_rng(1).normal(size=(12, 4))
    y = (X[:, 0] > 0) * 1
    opt = funnet.sgd(0.1)
    step = make_step(net, losses.softmax_cross_entropy, opt)
    state = step(init_train_state(params, opt, state0), (X, y))
    Z = X @ params["W1"] + params["b1"]
    np.testing.assert_allclose(state.net_state["mean1"], 0.5 * Z.mean(axis=0))
    assert state0["mean1"].sum() == 0
    out = funnet.predict(net, state.params, X, state=state.net_state)
    assert out.shape == (12, 2)
    with pytest.raises(ValueError, match="non-trainable state"):
        funnet.predict(net, state.params, X)


def test_prepare_converts_and_checks_the_data_once():
    net, params, X, y = _problem(dtype=np.float32)
    params = funnet.init(net, 5, dtype=np.float32)
    Xp, yp = prepare(net, params, X.astype(np.float64), y, losses.softmax_cross_entropy)
    assert Xp.dtype == np.float32 and yp.dtype == np.int64
    with pytest.raises(ValueError, match="label 3 but the network has 3 outputs"):
        prepare(net, params, X, np.full(len(X), 3), losses.softmax_cross_entropy)
    with pytest.raises(
        ValueError, match="X has 4 features but params\\['W1'\\] has shape \\(5, 7\\)"
    ):
        prepare(net, params, X[:, :4], y, losses.softmax_cross_entropy)


@pytest.mark.parametrize(
    "outputs, y, message",
    [
        (
            np.zeros((5, 3)),
            np.zeros(10, int),
            r"y has shape \(10,\); expected 5 labels",
        ),
        (
            np.zeros(4),
            np.zeros(4, int),
            r"outputs must be a 2-D array .* got shape \(4,\)",
        ),
        (np.zeros((0, 3)), np.zeros(0, int), "at least one row"),
        (np.zeros((2, 3)), np.zeros((2, 4)), r"y has shape \(2, 4\)"),
    ],
    ids=["length-mismatch", "1-d-outputs", "empty", "wrong-rows"],
)
def test_accuracy_rejects_mismatched_inputs_clearly(outputs, y, message):
    with pytest.raises(ValueError, match=message):
        funnet.accuracy(outputs, y)


def test_accuracy_reads_labels_one_hot_rows_and_binary_logits():
    logits = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    assert funnet.accuracy(logits, np.array([0, 2])) == 0.5
    assert funnet.accuracy(logits, np.eye(3)[[0, 1]]) == 1.0
    assert funnet.accuracy(np.array([[1.5], [-0.2]]), np.array([[1], [0]])) == 1.0


def test_batches_need_a_2d_feature_matrix():
    with pytest.raises(
        ValueError, match=r"X must be 2-D .* got shape \(10,\); for a single feature"
    ):
        batches(np.ones(10), np.zeros(10, int), 3)


@pytest.mark.parametrize("make", ["sgd", "adam", "gradient_descent"])
def test_float64_batches_train_float32_params_in_float32(make):
    net, _, X, y = _problem(dtype=np.float64)
    params = funnet.init(net, 5, dtype=np.float32)
    loss = losses.softmax_cross_entropy
    data = list(batches(X, y, 8, seed=0))
    if make == "gradient_descent":
        trained = fit(gradient_descent(net, loss, 0.1), data, params)
    else:
        opt = getattr(funnet.optimizers, make)(0.01)
        trained = fit(
            make_step(net, loss, opt), data, init_train_state(params, opt)
        ).params
    assert {v.dtype for v in trained.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda net, p, data: fit(
                make_step(net, losses.softmax_cross_entropy, funnet.sgd(0.1)), data, p
            ),
            "the make_step step takes a TrainState",
        ),
        (
            lambda net, p, data: fit(
                gradient_descent(net, losses.softmax_cross_entropy, 0.1),
                data,
                init_train_state(p, funnet.sgd(0.1)),
            ),
            "the gradient_descent step takes bare params",
        ),
        (lambda net, p, data: fit(None, data, p), "fit: step must be a function"),
        (
            lambda net, p, data: fit(
                gradient_descent(net, losses.softmax_cross_entropy, 0.1),
                [b[0] for b in data],
                p,
            ),
            "each batch must be a pair \\(X, y\\)",
        ),
    ],
    ids=[
        "params-to-make-step",
        "state-to-gradient-descent",
        "no-step",
        "batch-without-y",
    ],
)
def test_fit_with_mismatched_pieces_explains_what_goes_with_what(call, message):
    net, params, X, y = _problem()
    with pytest.raises(TypeError, match=message):
        call(net, params, list(batches(X, y, 8, seed=0)))


def test_accuracy_refuses_nan_outputs_and_labels_out_of_range():
    with pytest.raises(ValueError, match="outputs contain NaN"):
        funnet.accuracy(np.full((2, 3), np.nan), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"the label 3; expected labels in \[0, 3\)"):
        funnet.accuracy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="integer labels, got 0.5"):
        funnet.accuracy(np.zeros((2, 1)), np.array([0.5, 1.0]))


def test_batches_refuse_nan_and_text_data():
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        batches(np.full((4, 2), np.nan), np.zeros(4, int), 2)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        batches(np.zeros((2, 2)), np.array(["a", "b"]), 2)


def test_params_with_nan_are_refused_where_they_would_only_give_nan():
    net, params, X, y = _problem()
    bad = funnet.params.assoc(params, "W2", params["W2"] * np.nan)
    with pytest.raises(ValueError, match=r"predict: params \['W2'\] contain NaN"):
        funnet.predict(net, bad, X)
    with pytest.raises(ValueError, match=r"prepare: params \['W2'\] contain NaN"):
        value_and_grad(net, losses.softmax_cross_entropy)(bad, X, y)


def test_gradient_descent_takes_a_number_and_points_schedules_to_make_step():
    net, _, _, _ = _problem()
    with pytest.raises(TypeError, match="for a schedule use make_step"):
        gradient_descent(
            net, losses.softmax_cross_entropy, funnet.schedules.constant(0.1)
        )
    with pytest.raises(ValueError, match="positive number, got inf"):
        gradient_descent(net, losses.softmax_cross_entropy, float("inf"))
    with pytest.raises(TypeError, match="drop_prob must be a number, got 'a'"):
        dropout("a")


def test_a_batch_of_the_wrong_width_or_shape_is_named_inside_fit():
    net, params, X, y = _problem()
    step = gradient_descent(net, losses.softmax_cross_entropy, 0.1)
    with pytest.raises(
        ValueError, match=r"a batch has X of shape \(2, 4\) but params\['W1'\]"
    ):
        fit(step, [(np.ones((2, 4)), np.zeros(2, int))], params)
    with pytest.raises(
        TypeError, match=r"each batch must be a pair \(X, y\), got ndarray"
    ):
        fit(step, [np.ones((2, 5))], params)


def test_prepare_accepts_integer_labels_as_a_column():
    net, params, X, y = _problem()
    _, as_column = prepare(net, params, X, y[:, None], losses.softmax_cross_entropy)
    np.testing.assert_array_equal(as_column, y)
