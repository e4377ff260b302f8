"""Training that produces NaN or infinity stops with the last finite state."""

import weakref

import numpy as np
import pytest
import toolz

import funnet
import funnet.checkpoint
import funnet.cli
from funnet import losses
from funnet.params import assoc
from funnet.training import Batch, TrainingDiverged, _is_finite
from tests.test_optimizers import _assert_same_state

X, Y = funnet.datasets.load("breast_cancer")
X = (X - X.mean(axis=0)) / X.std(axis=0)
NET = funnet.mlp([8], n_outputs=2)
PARAMS = funnet.init(NET, X.shape[1], seed=0)


def _train_state(lr):
    opt = funnet.sgd(lr)
    step = funnet.make_step(NET, losses.softmax_cross_entropy, opt, seed=0)
    return step, funnet.init_train_state(PARAMS, opt)


def test_fit_is_still_the_fold_when_nothing_diverges():
    step, state = _train_state(0.1)
    data = list(funnet.batches(X, Y, 64, seed=0, epochs=2))
    assert funnet.fit(step, data, state).params.equals(
        toolz.reduce(step, data, state).params
    )


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: funnet.sgd(0.1),
        lambda: funnet.optimizers.adam(0.01),
        lambda: funnet.optimizers.Optimizer(*funnet.optimizers.adam(0.01)[:2]),
    ],
    ids=["sgd", "adam", "adam-without-fused-step"],
)
def test_fit_over_a_make_step_step_equals_the_fold_bit_for_bit(optimizer):
    # dropout draws from the step count, so any shift in the steps shows
    L = funnet.layers
    net = L.serial(L.dense(8), L.relu(), L.dropout(0.3), L.dense(2))
    opt = optimizer()
    step = funnet.make_step(net, losses.softmax_cross_entropy, opt, seed=3)
    state = funnet.init_train_state(funnet.init(net, X.shape[1], seed=0), opt)
    for n in (0, 1, 2, 19):
        data = list(toolz.take(n, funnet.batches(X, Y, 64, seed=0, epochs=3)))
        _assert_same_state(
            funnet.fit(step, data, state), toolz.reduce(step, data, state)
        )


def _watched_dense(n_out, on_forward, on_backward):
    """``dense(n_out)`` that calls ``on_forward(params)`` and ``on_backward()``."""
    base = funnet.layers.dense(n_out)

    def forward(params, X):
        on_forward(params)
        return base.forward(params, X)

    def backward(params, cache, dY):
        on_backward()
        return base.backward(params, cache, dY)

    def backward_params(params, cache, dY):
        on_backward()
        return base.backward_params(params, cache, dY)

    return base._replace(
        forward=forward, backward=backward, backward_params=backward_params
    )


def _recording(optimizer, applied):
    """``optimizer``, noting a weak reference to each set of grads it gets."""

    def note(fn):
        def call(grads, *rest):
            applied.append(weakref.ref(grads["W1"]))
            return fn(grads, *rest)

        return call

    step = None if optimizer.step is None else note(optimizer.step)
    return optimizer._replace(update=note(optimizer.update), step=step)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-step", "update"])
def test_fit_holds_two_states_and_frees_the_applied_gradients_before_the_forward_pass(
    fused,
):
    # While step k runs its forward pass, the state of step k - 2 and the
    # gradients applied to make state k are already gone.
    seen, applied, alive = [], [], []

    def on_forward(params):
        seen.append(weakref.ref(params["W"]))
        if len(seen) > 3:  # the caller keeps the starting state
            alive.append(seen[-3]() is not None)
        alive.extend(ref() is not None for ref in applied)

    L = funnet.layers
    net = L.serial(_watched_dense(8, on_forward, lambda: None), L.relu(), L.dense(2))
    adam = funnet.optimizers.adam(0.01)
    opt = _recording(adam if fused else adam._replace(step=None), applied)
    step = funnet.make_step(net, losses.softmax_cross_entropy, opt)
    state = funnet.init_train_state(funnet.init(net, X.shape[1], seed=0), opt)
    out = funnet.fit(step, funnet.batches(X, Y, 64, seed=0, epochs=1), state)
    assert out.step == 9 and len(applied) == 9 and len(alive) == 6 + 36
    assert not any(alive)


@pytest.mark.parametrize("where, good_step", [("forward", 2), ("backward", 3)])
def test_a_floating_point_error_in_a_step_hands_back_the_last_state_with_a_finite_loss(
    where, good_step
):
    # An error in the forward pass of state 3 leaves its loss unknown, so
    # state 2 is handed back; one in its backward pass comes after state 3's
    # loss was found finite, so state 3 is.
    calls = {"forward": 0, "backward": 0}

    def count(part):
        def on_call(*_):
            calls[part] += 1
            if part == where and calls[part] == 4:
                raise FloatingPointError("underflow encountered in multiply")

        return on_call

    L = funnet.layers
    net = L.serial(_watched_dense(8, count("forward"), count("backward")), L.dense(2))
    opt = funnet.optimizers.adam(0.01)
    step = funnet.make_step(net, losses.softmax_cross_entropy, opt)
    state = funnet.init_train_state(funnet.init(net, X.shape[1], seed=0), opt)
    data = list(funnet.batches(X, Y, 64, seed=0, epochs=1))
    with pytest.raises(TrainingDiverged, match="floating-point error") as info:
        funnet.fit(step, data, state)
    assert info.value.step == 4
    assert isinstance(info.value.__cause__, FloatingPointError)
    _assert_same_state(info.value.state, toolz.reduce(step, data[:good_step], state))


def test_a_diverging_make_step_run_hands_back_the_state_before_the_bad_update():
    step, state = _train_state(1e30)
    data = list(funnet.batches(X, Y, 64, seed=0, epochs=3))
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        funnet.fit(step, data, state)
    good = info.value.state
    assert _is_finite(good)
    _assert_same_state(good, toolz.reduce(step, data[: good.step], state))
    # its own loss is finite, and the next update is the bad one: its state,
    # or the loss it gives, is not finite
    with np.errstate(all="ignore"):
        after = step(good, data[good.step])
        assert np.isfinite(after.loss)
        assert not _is_finite(after) or not np.isfinite(
            step(after, data[good.step + 1]).loss
        )
    # and training on from it with a small rate goes on without trouble
    calm = funnet.make_step(NET, losses.softmax_cross_entropy, funnet.sgd(1e-3))
    assert _is_finite(funnet.fit(calm, data[good.step :], good))


@pytest.mark.parametrize("errors", ["raise", "ignore"])
def test_a_huge_learning_rate_stops_with_the_last_finite_state(errors):
    step, state = _train_state(1e30)
    with (
        np.errstate(all=errors),
        pytest.raises(
            TrainingDiverged, match=r"training diverged at step \d+ \(epoch \d+\)"
        ) as info,
    ):
        funnet.fit(step, funnet.batches(X, Y, 64, seed=0, epochs=3), state)
    exc = info.value
    assert _is_finite(exc.state)
    assert exc.state.step < exc.step
    assert exc.epoch == (exc.step - 1) // 9  # 569 samples, 9 batches an epoch
    # the state handed back trains on without error for the steps before
    replay = list(
        toolz.take(exc.state.step, funnet.batches(X, Y, 64, seed=0, epochs=3))
    )
    assert funnet.fit(step, replay, state).params.equals(exc.state.params)


def test_the_state_handed_back_is_the_last_one_whose_loss_was_finite():
    # A TrainState's loss is that of the params it was made from: the step
    # from state 4 reports the loss of state 4, so state 4 is passed over.
    nan = np.float64(np.nan)

    def step(state, batch):
        bad = state.step == 4
        return state._replace(step=state.step + 1, loss=nan if bad else 1.0)

    start = funnet.init_train_state(PARAMS, funnet.sgd(0.1))
    data = [Batch(X[:2], Y[:2], epoch=e) for e in (0, 0, 1, 1, 2, 2)]
    with pytest.raises(
        TrainingDiverged, match=r"step 5 \(epoch 3\): the loss is nan"
    ) as info:
        funnet.fit(step, data, start)
    assert info.value.step == 5 and info.value.epoch == 2
    assert info.value.state.step == 3


def test_bare_params_with_nan_are_caught_by_the_periodic_check():
    def step(params, batch):  # counts its steps in b2; b1 turns NaN at step 7
        count = int(params["b2"][0]) + 1
        params = assoc(params, "b2", np.full(2, float(count)))
        return assoc(params, "b1", np.full(8, np.nan if count >= 7 else 0.0))

    start = assoc(PARAMS, "b2", np.zeros(2))
    data = [(X[:2], Y[:2])] * 20
    with pytest.raises(TrainingDiverged, match="params became NaN") as info:
        funnet.fit(step, data, start, check_every=4)
    # detected at the check after step 8; the state after step 6 is finite
    assert info.value.step == 8 and info.value.epoch is None
    assert info.value.state["b2"][0] == 6


def test_non_finite_params_hidden_from_the_loss_are_caught_at_the_end():
    def step(state, batch):
        bad = assoc(state.params, "W1", np.full_like(state.params["W1"], -np.inf))
        return state._replace(params=bad, step=state.step + 1, loss=0.5)

    start = funnet.init_train_state(PARAMS, funnet.sgd(0.1))
    with pytest.raises(TrainingDiverged, match="step 1") as info:
        funnet.fit(step, [(X[:2], Y[:2])], start)
    assert info.value.state.params.equals(PARAMS)


def test_gradient_descent_divergence_keeps_finite_params():
    step = funnet.gradient_descent(NET, losses.softmax_cross_entropy, 1e30)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        funnet.fit(
            step, funnet.batches(X, Y, 64, seed=0, epochs=5), PARAMS, check_every=1
        )
    assert _is_finite(info.value.state)


def test_training_diverged_is_a_floating_point_error():
    assert issubclass(TrainingDiverged, FloatingPointError)


def test_funnet_train_reports_divergence_and_saves_the_last_finite_state(
    tmp_path, capsys
):
    path = tmp_path / "run.npz"
    code = funnet.cli.main(
        [
            "train",
            "--data",
            "breast_cancer",
            "--hidden",
            "4",
            "--epochs",
            "3",
            "--lr",
            "1e30",
            "--save",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "training diverged in epoch 1 at step" in err
    assert err.rstrip().endswith("try a smaller --lr")
    ckpt = funnet.checkpoint.load(path)
    assert _is_finite(ckpt.state) and ckpt.step is not None


def test_a_divergence_with_weight_decay_given_names_it_in_the_advice(capsys):
    args = ["train", "--data", "breast_cancer", "--hidden", "4", "--epochs", "3"]
    code = funnet.cli.main([*args, "--weight-decay", "1e30"])
    assert code == 1
    assert (
        capsys.readouterr()
        .err.rstrip()
        .endswith("try a smaller --lr or --weight-decay")
    )


def test_divergence_is_reported_once_without_numpy_warnings():
    # The suite turns warnings into errors: an overflow warning escaping fit
    # would fail this test before TrainingDiverged is raised.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 4))
    y = (X[:, 0] > 0) * 1
    net = funnet.mlp([8], n_outputs=2)
    opt = funnet.sgd(1e6)
    step = funnet.make_step(net, funnet.softmax_cross_entropy, opt)
    state = funnet.init_train_state(funnet.init(net, 4), opt)
    with np.errstate(all="warn"), pytest.raises(TrainingDiverged) as caught:
        funnet.fit(step, funnet.batches(X, y, 8, epochs=20), state)
    assert caught.value.state.params.dtype == np.float64


def test_a_non_finite_optimizer_state_is_named_as_such():
    def step(state, batch):
        opt_state = state.opt_state._replace(
            mu=assoc(state.opt_state.mu, "b1", np.full(8, np.inf))
        )
        return state._replace(opt_state=opt_state, step=state.step + 1, loss=0.5)

    start = funnet.init_train_state(PARAMS, funnet.optimizers.adam(0.1))
    with pytest.raises(TrainingDiverged, match="the optimizer state became NaN"):
        funnet.fit(step, [(X[:2], Y[:2])] * 3, start)


def test_underflow_is_no_divergence_even_when_numpy_raises_on_every_error():
    # Products of tiny weights round to subnormals or zero: the right result.
    net = funnet.mlp([8], n_outputs=2)
    params = funnet.init(net, X.shape[1], seed=0, dtype=np.float32)
    params = funnet.params.assoc(params, "W2", np.asarray(params["W2"]) * 1e-37)
    opt = funnet.optimizers.adam(1e-3)
    step = funnet.make_step(net, losses.softmax_cross_entropy, opt)
    state = funnet.init_train_state(params, opt)
    data = list(funnet.batches(X.astype(np.float32), Y, 64, seed=0, epochs=2))
    with np.errstate(all="raise"):
        with pytest.raises(FloatingPointError, match="underflow"):
            step(state, data[0])  # the step itself underflows
        out = funnet.fit(step, data, state)
    assert out.step == len(data) and _is_finite(out)


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("how", ["step", "fit", "gradient_descent"])
def test_a_nan_in_a_hand_made_batch_is_named_not_taken_for_divergence(how, where):
    net = funnet.mlp([8], n_outputs=1)
    Xb, yb = X[:16].copy(), X[:16, :1].copy()  # a regression target
    (Xb if where == "X" else yb)[5, 0] = np.nan
    loss = losses.mean_squared_error
    params = funnet.init(net, X.shape[1], seed=0)
    if how == "gradient_descent":
        call = lambda: funnet.gradient_descent(net, loss, 0.1)(
            params, (Xb, yb)
        )  # noqa: E731
    else:
        opt = funnet.sgd(0.1)
        step = funnet.make_step(net, loss, opt)
        state = funnet.init_train_state(params, opt)
        call = (  # noqa: E731
            (lambda: step(state, (Xb, yb)))
            if how == "step"
            else (lambda: funnet.fit(step, [(Xb, yb)], state))
        )
    # the loss checks its targets itself
    message = {
        "X": r"batch's X holds nan at index \(5, 0\)",
        "y": "targets contain NaN",
    }
    with pytest.raises(ValueError, match=message[where]):
        call()
