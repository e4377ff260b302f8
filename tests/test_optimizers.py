"""Optimizers and gradient transformations: the textbook rules, purity, dtypes."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funnet
from funnet import losses, optimizers, schedules
from funnet.optimizers import (
    AdamState,
    EmptyState,
    MomentumState,
    OptState,
    adagrad,
    adam,
    adamw,
    apply_updates,
    chain,
    clip_by_global_norm,
    clip_by_value,
    momentum,
    nesterov,
    rmsprop,
    scale_by_schedule,
    sgd,
    weight_decay,
)
from funnet.params import Params
from funnet.testing import assert_pure

# -- helpers ----------------------------------------------------------------


def _split(flat):
    """A params-shaped pair (a matrix and a bias) from a vector of 6 numbers."""
    return Params(W=flat[:4].reshape(2, 2), b=flat[4:])


def _join(p):
    return np.concatenate([np.asarray(p["W"]).ravel(), np.asarray(p["b"])])


def _updates(opt, params, grads_seq):
    """Run ``opt`` over the gradients; the flat update of every step."""
    state = opt.init(params)
    out = []
    for g in grads_seq:
        updates, state = opt.update(_split(g), state, params)
        out.append(_join(updates))
        params = apply_updates(params, updates)
    return out, state


def _close(got, expected, rtol=1e-9, atol=1e-12):
    for t, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t + 1}")


_grads = st.integers(1, 4).flatmap(
    lambda n: hnp.arrays(
        np.float64,
        (n, 6),
        elements=st.floats(-10, 10, allow_subnormal=False),
    )
)
_lr = st.floats(1e-4, 1.0)
_beta = st.floats(0.0, 0.999)
_eps = st.floats(1e-8, 0.1)
_P0 = np.linspace(-1.0, 1.0, 6)

# -- each rule is its textbook formula ----------------------------------------


@given(_grads, _lr)
def test_sgd_update_is_minus_lr_times_the_gradient(gs, lr):
    got, state = _updates(sgd(lr), _split(_P0), gs)
    _close(got, [-lr * g for g in gs], rtol=1e-15, atol=0)
    assert state == OptState(len(gs), lr)


@given(_grads, _lr, st.floats(0.01, 0.99), st.booleans())
def test_momentum_and_nesterov_follow_the_velocity_formula(gs, lr, mu, look_ahead):
    opt = nesterov(lr, mu) if look_ahead else momentum(lr, mu)
    got, state = _updates(opt, _split(_P0), gs)
    v, expected = np.zeros(6), []
    for g in gs:
        v = mu * v + g
        expected.append(-lr * (g + mu * v) if look_ahead else -lr * v)
    _close(got, expected)
    np.testing.assert_allclose(_join(state.velocity), v, rtol=1e-12, atol=1e-15)


@given(_grads, _lr, _eps, st.floats(0.0, 1.0))
def test_adagrad_divides_by_the_root_of_the_summed_squares(gs, lr, eps, s0):
    got, _ = _updates(adagrad(lr, eps, s0), _split(_P0), gs)
    s, expected = np.full(6, s0), []
    for g in gs:
        s = s + g**2
        expected.append(-lr * g / (np.sqrt(s) + eps))
    _close(got, expected)


# decay >= 0.5 keeps the centered variance v - m**2 away from 0 over a few
# steps (it is at least decay**t * (1 - decay**t) * m**2); near 0 its square
# root turns rounding into an error no formula can avoid.
@given(
    _grads,
    _lr,
    st.floats(0.5, 0.999),
    _eps,
    st.sampled_from([0.0, 0.5, 0.9]),
    st.booleans(),
)
def test_rmsprop_follows_its_formula_plain_centered_and_with_momentum(
    gs, lr, rho, eps, mu, centered
):
    got, state = _updates(rmsprop(lr, rho, eps, mu, centered), _split(_P0), gs)
    v, m, b, expected = np.zeros(6), np.zeros(6), np.zeros(6), []
    for g in gs:
        v = rho * v + (1 - rho) * g**2
        m = rho * m + (1 - rho) * g
        d = np.sqrt(np.maximum(v - m**2, 0) if centered else v) + eps
        b = mu * b + g / d
        expected.append(-lr * b if mu else -lr * g / d)
    _close(got, expected, rtol=1e-8)
    assert (state.grad_avg is None) == (not centered)
    assert (state.velocity is None) == (not mu)


@given(_grads, _lr, _beta, _beta, _eps)
def test_adam_is_kingma_and_ba_algorithm_1(gs, lr, b1, b2, eps):
    got, state = _updates(adam(lr, b1, b2, eps), _split(_P0), gs)
    m, v, expected = np.zeros(6), np.zeros(6), []
    for t, g in enumerate(gs, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        expected.append(-lr * m_hat / (np.sqrt(v_hat) + eps))
    _close(got, expected)
    assert state.count == len(gs)
    np.testing.assert_allclose(_join(state.mu), m, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_join(state.nu), v, rtol=1e-12, atol=1e-15)


@given(_grads, _lr, _beta, st.floats(0.0, 1.0))
def test_adamw_adds_lr_times_decay_times_the_weights_only(gs, lr, b1, wd):
    params = _split(_P0)
    state = adamw(lr, b1, weight_decay=wd).init(params)
    plain = adam(lr, b1)
    plain_state = plain.init(params)
    for g in gs:
        u, state = adamw(lr, b1, weight_decay=wd).update(_split(g), state, params)
        a, plain_state = plain.update(_split(g), plain_state, params)
        np.testing.assert_allclose(
            u["W"], a["W"] - lr * wd * params["W"], rtol=1e-9, atol=1e-12
        )
        np.testing.assert_array_equal(u["b"], a["b"])
        params = apply_updates(params, u)


def test_adamw_equals_adam_chained_with_decoupled_weight_decay():
    gs = np.random.default_rng(0).normal(size=(5, 6))
    lr = schedules.cosine_decay(0.1, 5)
    a, _ = _updates(adamw(lr, weight_decay=0.3), _split(_P0), gs)
    b, _ = _updates(chain(adam(lr), weight_decay(0.3, lr)), _split(_P0), gs)
    _close(a, b, rtol=1e-12, atol=1e-15)


# -- transformations ------------------------------------------------------


@given(hnp.arrays(np.float64, 6, elements=st.floats(-100, 100)), st.floats(0.01, 50))
def test_clip_by_global_norm_keeps_the_direction_and_caps_the_norm(g, c):
    opt = clip_by_global_norm(c)
    grads = _split(g)
    u, state = opt.update(grads, opt.init(grads))
    norm = np.linalg.norm(g)
    assert state.norm == pytest.approx(norm)
    if norm <= c:
        assert u is grads
    else:
        np.testing.assert_allclose(_join(u), g * (c / norm), rtol=1e-12)
        assert np.linalg.norm(_join(u)) == pytest.approx(c)


@given(hnp.arrays(np.float64, 6, elements=st.floats(-100, 100)), st.floats(0.01, 50))
def test_clip_by_value_clips_each_entry(g, c):
    opt = clip_by_value(c)
    u, _ = opt.update(_split(g), opt.init(_split(g)))
    np.testing.assert_array_equal(_join(u), np.minimum(np.maximum(g, -c), c))


def test_weight_decay_leaves_biases_alone_by_default_and_follows_a_mask():
    p = _split(_P0)
    g = _split(np.ones(6))
    u, state = weight_decay(0.5).update(g, weight_decay(0.5).init(p), p)
    np.testing.assert_allclose(u["W"], 1 - 0.5 * p["W"])
    assert np.shares_memory(u["b"], g["b"]) and state == optimizers.ScheduleState(
        1, 0.5
    )
    only_b = weight_decay(0.5, mask={"b": True})
    u, _ = only_b.update(g, only_b.init(p), p)
    assert np.shares_memory(u["W"], g["W"])
    np.testing.assert_allclose(u["b"], 1 - 0.5 * p["b"])
    every = weight_decay(0.5, learning_rate=0.1, mask=lambda name, x: True)
    u, state = every.update(g, every.init(p), p)
    np.testing.assert_allclose(_join(u), 1 - 0.05 * _P0)
    assert state.value == pytest.approx(0.05)


def test_scaling_by_a_schedule_equals_a_scheduled_learning_rate():
    gs = np.random.default_rng(1).normal(size=(6, 6))
    s = schedules.step_decay(0.3, 2, 0.5)
    a, sa = _updates(sgd(s), _split(_P0), gs)
    b, sb = _updates(chain(sgd(1.0), scale_by_schedule(s)), _split(_P0), gs)
    _close(a, b, rtol=1e-15, atol=0)
    assert sa.learning_rate == sb[1].value == s(5)


def test_a_chain_is_clip_then_adam_then_decay_and_keeps_each_members_state():
    rng = np.random.default_rng(2)
    gs = rng.normal(size=(4, 6)) * 10
    p = _split(_P0)
    parts = (clip_by_global_norm(1.0), adam(0.01), weight_decay(0.1))
    opt = chain(*parts)
    state = opt.init(p)
    by_hand = tuple(t.init(p) for t in parts)
    assert state == by_hand
    for g in gs:
        u, state = opt.update(_split(g), state, p)
        h = _split(g)
        new = []
        for t, s in zip(parts, by_hand):
            h, s = t.update(h, s, p)
            new.append(s)
        by_hand = tuple(new)
        np.testing.assert_array_equal(_join(u), _join(h))
        p = apply_updates(p, u)
    assert [type(s).__name__ for s in state] == [
        "ClipState",
        "AdamState",
        "ScheduleState",
    ]
    assert optimizers.update_count(state) == 4
    assert optimizers.applied_learning_rate(state) == 0.01


def test_the_state_records_the_learning_rate_each_update_applied():
    s = schedules.join([schedules.linear_warmup(0.2, 2), schedules.constant(0.05)], [3])
    opt = adam(s)
    p = _split(_P0)
    state = opt.init(p)
    assert state.learning_rate == s(0) and state.count == 0
    for t in range(6):
        u, state = opt.update(_split(np.ones(6)), state, p)
        assert state.learning_rate == s(t) and state.count == t + 1
    zero_first, _ = _updates(sgd(s), p, np.ones((1, 6)))
    assert not np.any(zero_first[0])


# -- the contract: keys, shapes, dtypes, purity -----------------------------

_ALL = {
    "sgd": lambda: sgd(0.1),
    "momentum": lambda: momentum(0.1),
    "nesterov": lambda: nesterov(0.1),
    "adagrad": lambda: adagrad(0.1),
    "rmsprop": lambda: rmsprop(0.1),
    "rmsprop-centered-momentum": lambda: rmsprop(0.1, momentum=0.9, centered=True),
    "adam": lambda: adam(0.1),
    "adamw": lambda: adamw(0.1, weight_decay=0.1),
    "chain": lambda: chain(
        clip_by_global_norm(0.5),
        clip_by_value(0.1),
        adam(schedules.cosine_decay(0.1, 3)),
        weight_decay(0.1),
        scale_by_schedule(schedules.constant(0.5)),
    ),
}


def _arrays_in(state):
    """Every Params of accumulators inside an optimizer state.

    SGD's ``OptState.slots`` is empty: it is there for custom optimizers.
    """
    if isinstance(state, OptState):
        assert len(state.slots) == 0
    elif isinstance(state, Params):
        yield state
    elif isinstance(state, tuple):
        for member in state:
            yield from _arrays_in(member)


def _allowed(value):
    if isinstance(value, tuple):
        return all(_allowed(v) for v in value)
    return value is None or isinstance(value, (int, float, Params))


@pytest.mark.parametrize("name", list(_ALL))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_and_state_keep_the_params_keys_shapes_and_dtype(name, dtype):
    rng = np.random.default_rng(3)
    params = Params(
        W1=rng.normal(size=(3, 4)).astype(dtype),
        b1=np.zeros(4, dtype),
        W2=rng.normal(size=(4, 2)).astype(dtype),
        b2=np.zeros(2, dtype),
    )
    opt = _ALL[name]()
    state = opt.init(params)
    for _ in range(3):
        grads = Params(
            {k: rng.normal(size=v.shape).astype(dtype) for k, v in params.items()}
        )
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)
        assert isinstance(updates, Params) and list(updates) == list(params)
        for key, value in params.items():
            assert updates[key].shape == value.shape and updates[key].dtype == dtype
            assert value.dtype == dtype
        for slots in _arrays_in(state):
            assert list(slots) == list(params)
            assert all(slots[k].shape == params[k].shape for k in params)
            assert all(slots[k].dtype == dtype for k in params)
            assert not any(a.flags.writeable for a in slots.values())
        assert _allowed(state)
        assert type(state).__module__ in ("builtins", "funnet.optimizers._core")
    assert optimizers.update_count(state) == 3


@pytest.mark.parametrize("name", list(_ALL))
def test_update_mutates_neither_grads_nor_state_nor_params(name):
    rng = np.random.default_rng(4)
    raw = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    params = Params(raw)
    opt = _ALL[name]()
    state = opt.init(params)
    _, state = opt.update(Params(raw), state, params)
    grads_dict = {k: v * 7 for k, v in raw.items()}
    updates, new = assert_pure(opt.update, grads_dict, state, params)
    assert all(v.flags.writeable for v in grads_dict.values())
    assert not any(v.flags.writeable for v in updates.values())


def _leaves(state):
    if isinstance(state, Params):
        for k, v in state.items():
            yield k, v
    elif isinstance(state, tuple):
        for member in state:
            yield from _leaves(member)
    else:
        yield None, state


def _assert_same_state(a, b):
    left, right = list(_leaves(a)), list(_leaves(b))
    assert [k for k, _ in left] == [k for k, _ in right]
    for (key, x), (_, y) in zip(left, right):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, key
            np.testing.assert_array_equal(x, y, err_msg=str(key))
        else:
            assert x == y, key


_FUSED = {
    **{name: make for name, make in _ALL.items()},
    "chain-ending-in-sgd": lambda: chain(clip_by_value(0.5), sgd(0.1)),
    "sgd-schedule": lambda: sgd(schedules.step_decay(0.1, 2, 0.5)),
}


@pytest.mark.parametrize("name", list(_FUSED))
@given(
    dtype=st.sampled_from([np.float32, np.float64]),
    rows=st.integers(1, 5),
    cols=st.integers(1, 4),
    order=st.sampled_from("CF"),
    seed=st.integers(0, 2**16),
)
def test_the_fused_step_equals_update_then_apply_updates_bit_for_bit(
    name, dtype, rows, cols, order, seed
):
    rng = np.random.default_rng(seed)
    opt = _FUSED[name]()
    params = Params(
        W=rng.normal(size=(rows, cols)).astype(dtype), b=np.zeros(cols, dtype)
    )
    state = opt.init(params)
    fused_params, fused_state = params, state
    for _ in range(3):
        grads = {
            "W": np.asarray(rng.normal(size=(rows, cols)), dtype, order=order),
            "b": rng.normal(size=cols).astype(dtype),
        }
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)
        fused_params, fused_state = assert_pure(
            opt.step, grads, fused_state, fused_params
        )
        _assert_same_state(fused_params, params)
        _assert_same_state(fused_state, state)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "chain"])
def test_the_fused_step_equals_the_two_functions_on_params_of_several_blocks(name):
    n = optimizers.rules._BLOCK * 2 + 123
    rng = np.random.default_rng(5)
    opt = _ALL[name]()
    params = Params(W=rng.normal(size=(n, 1)).astype(np.float32))
    state = fused_state = opt.init(params)
    fused = params
    for _ in range(2):
        grads = Params(W=rng.normal(size=(n, 1)).astype(np.float32))
        updates, state = opt.update(grads, state, params)
        params = apply_updates(params, updates)
        fused, fused_state = opt.step(grads, fused_state, fused)
        _assert_same_state(fused, params)
        _assert_same_state(fused_state, state)


def test_a_fused_step_refuses_params_that_do_not_match_the_grads():
    p = Params(W=np.zeros((2, 2)))
    for opt in (sgd(0.1), adam(0.1), momentum(0.1)):
        state = opt.init(p)
        with pytest.raises(KeyError, match="keys"):
            opt.step(Params(W=np.ones((2, 2))), state, Params(V=np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*\(4,\)"):
        adam(0.1).step(
            Params(W=np.ones((2, 2))), adam(0.1).init(p), Params(W=np.ones(4))
        )


def test_an_optimizer_without_a_fused_step_trains_through_make_step_alike():
    opt = adam(0.05)
    chained = chain(clip_by_value(0.01), opt)
    net = funnet.mlp([4], n_outputs=3)
    X = np.random.default_rng(0).normal(size=(12, 5))
    y = np.arange(12) % 3
    data = list(funnet.training.batches(X, y, 4, seed=0, epochs=2))
    results = []
    pairs = [(o, optimizers.Optimizer(o.init, o.update)) for o in (opt, chained)]
    for o in [o for pair in pairs for o in pair]:
        params = funnet.init(net, 5, seed=1)
        step = funnet.training.make_step(net, losses.softmax_cross_entropy, o)
        state = funnet.training.fit(
            step, data, funnet.training.init_train_state(params, o)
        )
        results.append(state.params)
    _assert_same_state(results[0], results[1])
    _assert_same_state(results[2], results[3])
    assert not np.array_equal(results[0]["W1"], results[2]["W1"])
    assert not np.array_equal(results[0]["W1"], funnet.init(net, 5, seed=1)["W1"])


def test_a_float32_run_never_upcasts_even_with_numpy_float64_hyperparameters():
    p = Params(W=np.ones((2, 2), np.float32))
    g = Params(W=np.full((2, 2), 0.5, np.float32))
    for opt in (
        sgd(np.float64(0.1)),
        adam(np.float64(0.1), b1=np.float64(0.9)),
        sgd(lambda t: np.float64(0.1) / (t + 1)),
    ):
        updates, state = opt.update(g, opt.init(p), p)
        assert updates["W"].dtype == np.float32
        assert type(state.learning_rate) is float


@pytest.mark.parametrize("name", list(optimizers.NAMES))
def test_every_optimizer_trains_a_small_network_through_make_step_and_fit(name):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    net = funnet.mlp([16], n_outputs=2)
    params = funnet.init(net, 4, seed=0, dtype=np.float32)
    lr = {"sgd": 0.3, "momentum": 0.1, "nesterov": 0.1}.get(name, 0.02)
    opt = optimizers.get(name, lr)
    loss = losses.softmax_cross_entropy
    start = funnet.init_train_state(params, opt)
    data = list(funnet.batches(X, y, 16, seed=0, epochs=10))
    end = funnet.fit(funnet.make_step(net, loss, opt), data, start)
    before, _ = funnet.evaluate(net, params, X, y, loss)
    after, acc = funnet.evaluate(net, end.params, X, y, loss)
    assert end.step == len(data) and optimizers.update_count(end.opt_state) == len(data)
    assert after < 0.5 * before and acc > 0.9
    assert end.params.dtype == np.float32
    assert start.params is params


def test_get_builds_each_optimizer_by_name_with_its_hyperparameters():
    p = _split(_P0)
    gs = np.random.default_rng(6).normal(size=(3, 6))
    a, _ = _updates(optimizers.get("rmsprop", 0.05, momentum=0.5, centered=True), p, gs)
    b, _ = _updates(rmsprop(0.05, momentum=0.5, centered=True), p, gs)
    _close(a, b, rtol=0, atol=0)
    assert optimizers.get("adam").init(p).learning_rate == 1e-3
    assert isinstance(optimizers.get("nesterov", 0.1).init(p), MomentumState)
    assert isinstance(optimizers.get("adamw", 0.1).init(p), AdamState)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: sgd(-0.1),
            ValueError,
            r"sgd: learning_rate must be a positive number, got -0\.1",
        ),
        (
            lambda: sgd("fast"),
            TypeError,
            r"learning_rate must be a positive number or a schedule",
        ),
        (
            lambda: sgd(0.1, momentum=1.0),
            ValueError,
            r"sgd: momentum must be in \[0, 1\), got 1\.0",
        ),
        (
            lambda: sgd(0.1, nesterov=True),
            ValueError,
            r"nesterov=True needs momentum > 0",
        ),
        (
            lambda: adam(0.1, b2=1.5),
            ValueError,
            r"adam: b2 must be in \[0, 1\), got 1\.5",
        ),
        (
            lambda: adam(0.1, eps=-1),
            ValueError,
            r"adam: eps must be in \(0, inf\), got -1",
        ),
        (
            lambda: adam(0.1, eps=0),
            ValueError,
            r"adam: eps must be in \(0, inf\), got 0",
        ),
        (
            lambda: adamw(weight_decay=-0.1),
            ValueError,
            r"adamw: weight_decay must be in \[0, inf\)",
        ),
        (lambda: adamw(mask=3), TypeError, r"adamw: mask must be a function"),
        (
            lambda: rmsprop(decay=True),
            TypeError,
            r"rmsprop: decay must be a number, got True",
        ),
        (
            lambda: adagrad(initial_accumulator_value=-1),
            ValueError,
            r"initial_accumulator_value",
        ),
        (
            lambda: clip_by_global_norm(0),
            ValueError,
            r"max_norm must be in \(0, inf\), got 0",
        ),
        (
            lambda: clip_by_value(-1),
            ValueError,
            r"max_abs must be in \(0, inf\), got -1",
        ),
        (
            lambda: scale_by_schedule(0.5),
            TypeError,
            r"schedule must be a function of the step",
        ),
        (
            lambda: chain(sgd(0.1), "adam"),
            TypeError,
            r"chain: transform 1 must be an Optimizer",
        ),
        (
            lambda: optimizers.get("lbfgs", 0.1),
            ValueError,
            r"must be one of \['sgd'.*got 'lbfgs'",
        ),
        (
            lambda: optimizers.get("adam", 0.1, beta1=0.9),
            TypeError,
            r"unknown hyperparameters \['beta1'\]",
        ),
        (lambda: optimizers.get("sgd"), TypeError, r"'sgd' needs a learning_rate"),
    ],
    ids=[
        "negative-lr",
        "string-lr",
        "momentum-one",
        "nesterov-without-momentum",
        "b2-above-one",
        "negative-eps",
        "zero-eps",
        "negative-decay",
        "bad-mask",
        "bool-decay",
        "negative-accumulator",
        "zero-clip-norm",
        "negative-clip-value",
        "number-as-schedule",
        "string-in-chain",
        "unknown-name",
        "unknown-hyper",
        "sgd-without-lr",
    ],
)
def test_bad_hyperparameters_raise_a_message_naming_them(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_a_state_from_other_params_or_another_optimizer_is_refused():
    p = _split(_P0)
    opt = adam(0.1)
    state = opt.init(Params(W=np.zeros((2, 2))))
    with pytest.raises(
        KeyError, match=r"grads have keys \['W', 'b'\] but .* made for \['W'\]"
    ):
        opt.update(p, state, p)
    with pytest.raises(ValueError, match="expected a state tuple of 2 members"):
        chain(sgd(0.1), adam(0.1)).update(p, (OptState(0, 0.1),), p)
    with pytest.raises(TypeError, match="weight_decay needs params"):
        weight_decay(0.1).update(p, weight_decay(0.1).init(p))


def test_apply_updates_adds_key_by_key_and_leaves_inputs_alone():
    p = _split(_P0)
    u = _split(np.ones(6))
    new = apply_updates(p, u)
    np.testing.assert_array_equal(_join(new), _P0 + 1)
    np.testing.assert_array_equal(_join(p), _P0)
    assert math.isclose(float(new["b"][-1]), 2.0)


def test_adam_on_a_param_larger_than_one_block_still_follows_the_formula():
    n = optimizers.rules._BLOCK * 2 + 123
    rng = np.random.default_rng(7)
    p = Params(w=np.zeros(n, np.float32))
    gs = rng.normal(size=(2, n)).astype(np.float32)
    opt = adam(0.01, 0.9, 0.99, 1e-6)
    state = opt.init(p)
    m = v = np.zeros(n)
    for t, g in enumerate(gs, 1):
        u, state = opt.update(Params(w=g), state, p)
        m = 0.9 * m + 0.1 * g.astype(np.float64)
        v = 0.99 * v + 0.01 * g.astype(np.float64) ** 2
        expected = -0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-6)
        assert u["w"].dtype == np.float32
        np.testing.assert_allclose(u["w"], expected, rtol=1e-4, atol=1e-7)


# -- the command line builds its optimizer from four options ------------------


def _cli(*args):
    from tests.test_cli import run

    return run(*args)


def _built(*options, steps_per_epoch=10):
    from funnet import cli

    args = cli.build_parser().parse_args(["train", *options])
    opt = cli._optimizer(args, steps_per_epoch)
    return opt.init(_split(_P0))


def test_the_cli_optimizer_follows_the_options_as_one_chain():
    default = _built()
    assert isinstance(default, AdamState) and default.learning_rate == 0.03
    state = _built(
        "--optimizer",
        "momentum",
        "--lr",
        "0.5",
        "--lr-schedule",
        "step:1:0.5",
        "--weight-decay",
        "0.1",
        "--clip-norm",
        "2",
    )
    clip, mom, decay = state
    assert clip == optimizers.ClipState(None)
    assert isinstance(mom, MomentumState) and mom.learning_rate == 0.5
    assert decay == optimizers.ScheduleState(0, 0.05)
    plain = _built("--optimizer", "sgd", "--lr-schedule", "constant")
    assert plain == OptState(0, 0.1)


def test_the_cli_trains_with_a_chosen_optimizer_and_schedule():
    import json

    code, out, _ = _cli(
        "train",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--json",
        "--optimizer",
        "rmsprop",
        "--lr-schedule",
        "warmup:1+cosine",
        "--clip-norm",
        "5",
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert (
        result["optimizer"] == "rmsprop" and result["lr_schedule"] == "warmup:1+cosine"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr-schedule", "linear"], "unknown part 'linear'"),
        (["--weight-decay", "-1"], "expected a number >= 0, got '-1'"),
        (["--clip-norm", "0"], "expected a positive float"),
        (["--optimizer", "lbfgs"], "invalid choice"),
    ],
    ids=["bad-schedule", "negative-decay", "zero-clip", "unknown-optimizer"],
)
def test_bad_optimizer_options_exit_with_a_message(args, message):
    code, _, err = _cli("train", "--epochs", "1", "--hidden", "4", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_the_help_documents_the_schedule_syntax():
    code, out, _ = _cli("train", "--help")
    assert code == 0
    assert "SCHEDULES" in out and "warmup:5+cosine" in out and "step:E:F" in out


def test_adam_gives_the_same_steps_for_arrays_in_fortran_order():
    rng = np.random.default_rng(8)
    W = rng.normal(size=(4, 3))
    G = [rng.normal(size=(4, 3)) for _ in range(3)]
    runs = []
    for order in ("C", "F"):
        opt = adamw(0.1, weight_decay=0.1)
        p = Params(W=np.asarray(W, order=order))
        state = opt.init(p)
        for g in G:
            u, state = opt.update(Params(W=np.asarray(g, order=order)), state, p)
            p = apply_updates(p, u)
        runs.append(p["W"])
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize(
    "learning_rate, shown",
    [
        (schedules.constant(-1.0), "-1.0"),
        (lambda t: float("nan"), "nan"),
        (lambda t: 0.1 if t < 2 else float("inf"), "inf"),
    ],
    ids=["negative", "nan", "inf-later"],
)
def test_a_schedule_that_gives_a_bad_learning_rate_is_refused(learning_rate, shown):
    params = Params(W=np.ones((2, 2)))
    opt = optimizers.adam(learning_rate)
    with pytest.raises(
        ValueError, match=f"adam: the learning_rate schedule .* gave {shown} at step"
    ):
        state = opt.init(params)
        for _ in range(4):
            _, state = opt.update(params, state, params)


def test_a_schedule_that_returns_no_number_is_named():
    opt = optimizers.sgd(lambda step: None)
    with pytest.raises(
        ValueError, match="the learning_rate schedule .* gave None at step 0"
    ):
        opt.init(Params(W=np.ones(2)))


# -- linear optimizers: the updates come out of the backward pass --------------


def test_sgd_says_its_updates_are_minus_the_learning_rate_times_the_gradient():
    opt = sgd(schedules.step_decay(0.1, 2, 0.5))
    p = Params(w=np.zeros(3))
    g = Params(w=np.array([1.0, -2.0, 3.0]))
    state = opt.init(p)
    for _ in range(4):
        factor, after = opt.linear(state)
        updates, expected = opt.update(g, state, p)
        np.testing.assert_array_equal(updates["w"], factor * g["w"])
        assert after == expected
        state = after
    assert momentum(0.1).linear is None and adam(0.1).linear is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_with_a_linear_optimizer_matches_one_that_scales_the_gradients(dtype):
    X, y = funnet.datasets.load("digits")
    X = X[:200].astype(dtype) / 16
    net = funnet.mlp([16, 8], n_outputs=10)
    opt = sgd(schedules.cosine_decay(0.5, 20))
    plain = optimizers.Optimizer(opt.init, opt.update)
    params = funnet.init(net, X.shape[1], seed=0, dtype=dtype)
    data = list(funnet.training.batches(X, y[:200], 32, seed=0, epochs=3))
    runs = []
    for o in (opt, plain):
        step = funnet.training.make_step(net, losses.softmax_cross_entropy, o)
        state = funnet.training.init_train_state(params, o)
        runs.append(funnet.training.fit(step, data, state))
    fast, slow = runs
    assert fast.opt_state == slow.opt_state and fast.step == slow.step
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for k in params:
        assert fast.params[k].dtype == dtype
        np.testing.assert_allclose(fast.params[k], slow.params[k], rtol=tol, atol=tol)
    assert not np.allclose(fast.params["W1"], params["W1"])


def test_updates_are_added_in_place_only_into_arrays_nobody_else_holds():
    from funnet.optimizers._core import _add_params

    p = Params(a=np.ones(3), b=np.ones(3), c=np.ones(3), d=np.ones(3))
    shared = np.full(3, 2.0)
    base = np.full(6, 5.0)
    frozen = np.full(3, 7.0)
    frozen.flags.writeable = False
    updates = {"a": shared, "b": shared, "c": base[:3], "d": frozen}
    _add_params(updates, p)
    for k, expected in (("a", 3.0), ("b", 3.0), ("c", 6.0), ("d", 8.0)):
        np.testing.assert_array_equal(updates[k], np.full(3, expected))
    np.testing.assert_array_equal(shared, np.full(3, 2.0))
    np.testing.assert_array_equal(base, np.full(6, 5.0))
    np.testing.assert_array_equal(frozen, np.full(3, 7.0))


@pytest.mark.parametrize(
    "dtype, value", [(np.float32, 1e19), (np.float32, 3e30), (np.float64, 1e200)]
)
def test_clipping_by_global_norm_survives_squares_that_overflow(dtype, value):
    g = Params(W=np.full((2, 3), value, dtype), b=np.full(2, -value, dtype))
    clip = clip_by_global_norm(1.0)
    u, state = clip.update(g, clip.init(g))
    assert math.isclose(state.norm, value * math.sqrt(8), rel_tol=1e-6)
    norm = math.sqrt(sum(float((v.astype(np.float64) ** 2).sum()) for v in u.values()))
    assert math.isclose(norm, 1.0, rel_tol=1e-5)
    assert u["W"].dtype == dtype and float(u["b"][0]) < 0


# -- what comes in is checked: keys, shapes, dtypes, states --------------------


def _bad_calls():
    p = Params(W=np.zeros((3, 2), np.float32), b=np.zeros(2, np.float32))
    good = {k: np.ones_like(v) for k, v in p.items()}
    cases = {
        "transposed": (
            {**good, "W": np.ones((2, 3), np.float32)},
            ValueError,
            r"grads\['W'\] has shape \(2, 3\) but the param has shape \(3, 2\)",
        ),
        "broadcastable": (
            {**good, "b": np.ones((1, 2), np.float32)},
            ValueError,
            r"grads\['b'\] has shape \(1, 2\)",
        ),
        "float64 for float32": (
            {k: v.astype(np.float64) for k, v in good.items()},
            TypeError,
            r"dtype float64 but the param has dtype float32",
        ),
        "a list": (
            {**good, "b": [1.0, 1.0]},
            TypeError,
            # a chain's first member turns the list into a float64 array
            r"grads\['b'\] (must be an array|has dtype float64)",
        ),
    }
    return p, cases


@pytest.mark.parametrize("name", list(_FUSED))
@pytest.mark.parametrize(
    "case", ["transposed", "broadcastable", "float64 for float32", "a list"]
)
def test_grads_that_do_not_match_the_params_are_refused_by_name(name, case):
    p, cases = _bad_calls()
    grads, error, message = cases[case]
    opt = _FUSED[name]()
    state = opt.init(p)
    with pytest.raises(error, match=message):
        opt.step(grads, state, p)
    if name not in ("sgd", "sgd-schedule", "chain-ending-in-sgd") or case != "a list":
        with pytest.raises(error, match=message):
            apply_updates(p, opt.update(grads, state, p)[0])


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_a_state_from_another_optimizer_is_refused_by_name(name):
    p = Params(W=np.zeros((3, 2)))
    other = adam(0.1) if name != "adam" else sgd(0.1)
    opt = _ALL[name]()
    with pytest.raises(TypeError, match="expected the state that .* init makes"):
        opt.update(Params(W=np.ones((3, 2))), other.init(p), p)


def _p32():
    return Params(W=np.zeros((3, 2), np.float32), b=np.zeros(2, np.float32))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda p, g: sgd(0.1).step(
                g, sgd(0.1).init(p), {"W": [[0.0]] * 3, "b": [0, 0]}
            ),
            TypeError,
            r"sgd: params\['W'\] must be an array, got list",
        ),
        (
            lambda p, g: momentum(0.1).step(g, momentum(0.1).init(p), None),
            TypeError,
            "momentum: params must be a mapping of arrays",
        ),
        (
            lambda p, g: nesterov(0.1).update(
                g, nesterov(0.1).init(Params(W=np.zeros((4, 4)), b=np.zeros(2))), p
            ),
            ValueError,
            r"nesterov: grads\['W'\] is float32 of shape \(3, 2\) but the optimizer "
            r"state was made for float64 of shape \(4, 4\)",
        ),
        (
            lambda p, g: rmsprop(0.1, centered=True).update(g, rmsprop(0.1).init(p), p),
            TypeError,
            "rmsprop: the state was made by an rmsprop with other options",
        ),
        (
            lambda p, g: weight_decay(1e-4).update(g, None, p),
            TypeError,
            "weight_decay: expected the state that weight_decay's init makes",
        ),
        (
            lambda p, g: clip_by_value(1.0).update(
                {**g, "W": np.ones((2, 3), np.float32)}, EmptyState(), p
            ),
            ValueError,
            r"clip_by_value: grads\['W'\] has shape \(2, 3\)",
        ),
        (
            lambda p, g: apply_updates(p, {**g, "b": np.ones(2)}),
            TypeError,
            r"apply_updates: updates\['b'\] has dtype float64",
        ),
    ],
    ids=[
        "list-params",
        "none-params",
        "state-for-other-params",
        "rmsprop-options",
        "none-state",
        "clip-shape",
        "update-dtype",
    ],
)
def test_misplaced_inputs_are_named_in_the_error(call, error, message):
    p = _p32()
    g = {k: np.ones_like(v) for k, v in p.items()}
    with pytest.raises(error, match=message):
        call(p, g)


def test_a_custom_update_that_forgets_its_state_is_named():
    net = funnet.mlp([4], n_outputs=2)
    params = funnet.init(net, 3, seed=0)
    opt = optimizers.Optimizer(lambda p: None, lambda g, s, p=None: g)
    step = funnet.training.make_step(net, losses.softmax_cross_entropy, opt)
    state = funnet.training.init_train_state(params, opt)
    with pytest.raises(
        TypeError, match=r"update must return a pair \(updates, new_state\)"
    ):
        step(state, (np.ones((2, 3)), np.array([0, 1])))
