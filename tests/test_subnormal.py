"""Training keeps subnormal numbers out of its arithmetic.

Arithmetic on subnormal numbers is many times slower. Two places make them:
the accumulators of an entry whose gradient is exactly zero (a dead ReLU
unit's weights) shrink into the subnormal range and, without help, stay
there, so every ``FLUSH_EVERY`` updates the optimizers set them to zero;
and the loss gradient of samples fitted all but perfectly, whose entries
below ``tiny / eps`` the losses return as zero. Neither moves a parameter
of ordinary size.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funnet
from funnet import losses
from funnet.optimizers import (
    adam,
    adamw,
    apply_updates,
    momentum,
    nesterov,
    rmsprop,
)
from funnet.optimizers import rules
from funnet.params import Params

DECAYING = {
    "momentum": lambda: momentum(0.1, 0.9),
    "nesterov": lambda: nesterov(0.1, 0.9),
    "rmsprop": lambda: rmsprop(0.01),
    "rmsprop-centered-momentum": lambda: rmsprop(0.01, centered=True, momentum=0.9),
    "adam": lambda: adam(1e-3),
    "adamw": lambda: adamw(1e-3),
}


def _accumulators(state):
    """The names and Params of a state's per-param arrays."""
    return {f: v for f, v in state._asdict().items() if isinstance(v, Params)}


def _with(state, count, fill):
    """``state`` at ``count``, each accumulator array replaced by ``fill(array)``."""
    arrays = {
        f: Params({k: fill(np.asarray(a)) for k, a in p.items()})
        for f, p in _accumulators(state).items()
    }
    return state._replace(count=count, **arrays)


def _setup(dtype):
    """Params, grads zero on every other column, and a state whose
    accumulators are a few units of the last place above zero there."""
    rng = np.random.default_rng(0)
    W = rng.uniform(0.5, 1.0, (4, 16)).astype(dtype)
    b = rng.uniform(0.5, 1.0, 16).astype(dtype)
    dead = np.zeros(16, bool)
    dead[::2] = True
    grads = Params(W=np.where(dead, 0, W / 3).astype(dtype), b=np.where(dead, 0, b / 3))
    tiny = np.finfo(dtype).smallest_subnormal * 3

    def fill(a):
        return np.where(np.broadcast_to(dead, a.shape), tiny, 0.25).astype(dtype)

    return Params(W=W, b=b), grads, dead, fill


def _is_subnormal(a):
    a = np.abs(np.asarray(a))
    return (a > 0) & (a < np.finfo(a.dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(DECAYING))
def test_subnormal_accumulators_are_set_to_zero_every_flush_every_updates(
    name, dtype, monkeypatch
):
    opt = DECAYING[name]()
    params, grads, dead, fill = _setup(dtype)
    state = _with(opt.init(params), rules.FLUSH_EVERY - 2, fill)

    # Between flushes the rule runs as written: 0.9 x rounds back to x for
    # the smallest subnormals, so these entries stay where they are.
    _, before = opt.update(grads, state, params)
    for p in _accumulators(before).values():
        for a in p.values():
            assert _is_subnormal(a[..., dead]).all()

    # The next update is number FLUSH_EVERY: they become zero.
    updates, flushed = opt.update(grads, before, params)
    monkeypatch.setattr(rules, "FLUSH_EVERY", 10**9)
    ref_updates, unflushed = opt.update(grads, before, params)
    for f, p in _accumulators(flushed).items():
        for k, a in p.items():
            ref = np.asarray(_accumulators(unflushed)[f][k])
            assert (a[..., dead] == 0).all(), (f, k)
            np.testing.assert_array_equal(a[..., ~dead], ref[..., ~dead])
    for k in params:
        np.testing.assert_array_equal(
            updates[k][..., ~dead], ref_updates[k][..., ~dead]
        )
    # A number that small changes no parameter.
    assert apply_updates(params, updates).equals(apply_updates(params, ref_updates))


@pytest.mark.parametrize("name", ["momentum", "rmsprop-centered-momentum", "adam"])
def test_the_fused_step_flushes_alike(name):
    opt = DECAYING[name]()
    params, grads, _, fill = _setup(np.float32)
    state = _with(opt.init(params), rules.FLUSH_EVERY - 1, fill)
    updates, s1 = opt.update(grads, state, params)
    new, s2 = opt.step(grads, state, params)
    assert new.equals(apply_updates(params, updates))
    for f, p in _accumulators(s1).items():
        assert p.equals(_accumulators(s2)[f])


@pytest.mark.parametrize("name", list(DECAYING))
def test_a_flush_keeps_nan_and_infinity_visible(name):
    opt = DECAYING[name]()
    params, grads, _, fill = _setup(np.float64)

    def bad(a):
        a = fill(a)
        a.flat[0], a.flat[1] = np.nan, np.inf
        return a

    state = _with(opt.init(params), rules.FLUSH_EVERY - 1, bad)
    with np.errstate(invalid="ignore"):
        _, new = opt.update(grads, state, params)
    for p in _accumulators(new).values():
        assert not np.isfinite(np.asarray(p["W"]).flat[:2]).any()


_dtypes = st.sampled_from([np.float32, np.float64])


@settings(max_examples=40)
@given(
    st.sampled_from(list(DECAYING)),
    _dtypes.flatmap(
        lambda dt: st.tuples(
            hnp.arrays(dt, 12, elements=st.floats(-1e3, 1e3, width=dt(0).nbytes * 8)),
            hnp.arrays(dt, 12, elements=st.floats(0, 1e3, width=dt(0).nbytes * 8)),
        )
    ),
)
def test_no_accumulator_entry_is_subnormal_after_a_flush(name, arrays):
    grads_flat, acc = arrays
    opt = DECAYING[name]()
    params = Params(w=np.ones_like(grads_flat))
    state = _with(opt.init(params), rules.FLUSH_EVERY - 1, lambda a: acc.copy())
    with np.errstate(all="ignore"):
        _, new = opt.update(Params(w=grads_flat), state, params)
    for p in _accumulators(new).values():
        assert not _is_subnormal(p["w"]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_smallest_normal_number_is_kept_and_the_largest_subnormal_is_not(dtype):
    info = np.finfo(dtype)
    below = np.nextafter(info.tiny, dtype(0))
    values = np.array([info.tiny, -info.tiny, below, -below], dtype)
    opt = momentum(0.1, 0.5)  # 0.5 v is exact: the velocity halves
    params = Params(w=np.ones(4, dtype))
    state = _with(opt.init(params), rules.FLUSH_EVERY - 1, lambda a: 2 * values)
    _, new = opt.update(Params(w=np.zeros(4, dtype)), state, params)
    np.testing.assert_array_equal(new.velocity["w"], [info.tiny, -info.tiny, 0, 0])


_LOSSES = {
    "softmax_cross_entropy": (losses.softmax_cross_entropy, "labels"),
    "softmax_cross_entropy-rows": (losses.softmax_cross_entropy, "rows"),
    "binary_cross_entropy": (losses.binary_cross_entropy, "rows"),
    "mean_squared_error": (losses.mean_squared_error, "rows"),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_gradients_of_well_fitted_samples_have_no_subnormal_entries(dtype):
    limit = np.finfo(dtype).tiny / np.finfo(dtype).eps
    # margins that put the wrong classes' gradient P / n far below, below
    # and above tiny / eps, and at 1e-3
    n = 4
    margins = -np.log(n * np.array([limit * 1e-12, limit / 3, limit * 3, 1e-3]))
    logits = np.zeros((n, 3), dtype)
    logits[:, 0] = margins
    labels = np.zeros(n, int)
    _, grad = losses.softmax_cross_entropy(logits, labels)
    wrong = grad[:, 1:]
    assert not _is_subnormal(grad).any()
    assert (wrong[:2] == 0).all() and (wrong[2:] > limit / 4).all()
    # the entries kept are the formula's (P - T) / n, computed apart
    z = logits.astype(np.float64)
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(wrong[2:], P[2:, 1:] / n, rtol=1e-5)


@settings(max_examples=60)
@given(
    st.sampled_from(list(_LOSSES)),
    _dtypes.flatmap(
        lambda dt: hnp.arrays(
            dt, (3, 2), elements=st.floats(-200, 200, width=dt(0).nbytes * 8)
        )
    ),
)
def test_no_loss_returns_a_gradient_entry_below_tiny_over_eps(name, outputs):
    loss, kind = _LOSSES[name]
    dtype = outputs.dtype.type
    if kind == "labels":
        targets = np.array([0, 1, 1])
    elif name.startswith("softmax"):
        targets = np.array([[1, 0], [0, 1], [0.5, 0.5]], dtype)
    else:
        targets = (outputs > 0).astype(dtype)
    with np.errstate(under="ignore"):
        _, grad = loss(outputs, targets)
    limit = np.finfo(dtype).tiny / np.finfo(dtype).eps
    small = np.abs(grad) < limit
    assert (grad[small] == 0).all()


def test_a_network_fitted_with_huge_margins_gets_no_subnormal_gradients():
    net = funnet.mlp([16], n_outputs=3)
    params = funnet.init(net, 4, seed=0, dtype=np.float32)
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 1.0, (8, 4)).astype(np.float32)
    y = np.zeros(8, int)
    # the first output far above the others for every sample: e^{-100}
    W2 = np.zeros((16, 3), np.float32)
    b2 = np.array([100.0, 0.0, 0.0], np.float32)
    params = funnet.params.assoc(funnet.params.assoc(params, "W2", W2), "b2", b2)
    _, grads = funnet.value_and_grad(net, losses.softmax_cross_entropy)(params, X, y)
    for k, g in grads.items():
        assert not _is_subnormal(g).any(), k
