r"""The update rules: SGD, momentum, Nesterov, Adagrad, RMSProp, Adam, AdamW.

In-place arithmetic appears below only on arrays that the same function has
just allocated, before they are frozen into Params; inputs and stored arrays
are never written.

Subnormal numbers: every ``FLUSH_EVERY`` (64) updates, the entries of the
decaying accumulators (the velocity of momentum and Nesterov, Adam's and
AdamW's ``mu`` and ``nu``, RMSProp's averages and velocity) smaller in
magnitude than the dtype's smallest normal number (1.2e-38 in float32) are
set to zero before the update is computed from them. Numbers that small
move no parameter of ordinary size, but an entry whose gradient stays zero
(a dead ReLU unit) would otherwise sit among them for good, and arithmetic
on them is many times slower on x86 CPUs. Between those updates each rule
runs exactly as its formula says.
"""

from __future__ import annotations

import math

import numpy as np

from funnet._floats import flush_below, limits
from funnet.optimizers._core import (
    AdagradState,
    AdamState,
    LearningRate,
    Mask,
    MomentumState,
    Optimizer,
    OptState,
    RMSPropState,
    Schedule,
    _check_inputs,
    _check_keys,
    _check_state,
    _in_range,
    _mask,
    _schedule,
    _zeros,
    from_fresh_updates,
)
from funnet.params import Params


def sgd(
    learning_rate: LearningRate, momentum: float = 0.0, nesterov: bool = False
) -> Optimizer:
    r"""Stochastic gradient descent, optionally with momentum.

    Plain (``momentum=0``): one pass per parameter,

    .. math:: u_t = -\eta_t\, g_t

    With momentum :math:`\mu` (heavy ball) the velocity sums past gradients
    and the learning rate scales it when it is applied:

    .. math::
        v_t = \mu\, v_{t-1} + g_t, \qquad u_t = -\eta_t\, v_t

    Nesterov momentum looks one step ahead along the new velocity:

    .. math:: u_t = -\eta_t\, (g_t + \mu\, v_t)

    with :math:`v_0 = 0`. This is the convention of PyTorch's ``SGD`` (no
    dampening); Sutskever et al. put :math:`\eta` inside the velocity,
    which gives the same steps for a constant learning rate.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule.
      momentum: :math:`\mu \in [0, 1)`.
      nesterov: use Nesterov momentum (needs ``momentum > 0``).

    Returns:
      An :class:`Optimizer`; its state is :class:`OptState` without
      momentum and :class:`MomentumState` with it.

    References:
      Polyak, "Some methods of speeding up the convergence of iteration
      methods", 1964. Sutskever, Martens, Dahl & Hinton, "On the
      importance of initialization and momentum in deep learning", ICML
      2013.

    >>> import numpy as np
    >>> from funnet.params import Params
    >>> opt = sgd(0.5, momentum=0.9)
    >>> p = Params(w=np.zeros(1)); g = Params(w=np.ones(1))
    >>> u, s = opt.update(g, opt.init(p), p)
    >>> u, s = opt.update(g, s, p)
    >>> u["w"], s.velocity["w"]
    (array([-0.95]), array([1.9]))
    """
    lr = _schedule("sgd", learning_rate)
    mu = _in_range("sgd", "momentum", momentum, 0.0, 1.0, open_high=True)
    if nesterov and mu == 0:
        raise ValueError("sgd: nesterov=True needs momentum > 0, got momentum=0")
    if mu == 0:
        return _plain_sgd(lr)
    return _momentum(lr, mu, bool(nesterov))


def _plain_sgd(lr: Schedule) -> Optimizer:
    def init(params):
        return OptState(0, float(lr(0)))

    def update(grads, state, params=None):
        _check_inputs("sgd", grads, state, OptState, None, params)
        eta = float(lr(state.count))
        c = -eta
        updates = Params._own({k: g * c for k, g in grads.items()})
        return updates, OptState(state.count + 1, eta)

    def step(grads, state, params):
        _check_state("sgd", state, OptState)
        _check_keys("sgd", grads, params, what="params")
        eta = float(lr(state.count))
        c = -eta
        new = {k: _scaled_sum(g, c, params[k]) for k, g in grads.items()}
        return Params._own(new), OptState(state.count + 1, eta)

    def linear(state):
        _check_state("sgd", state, OptState)
        eta = float(lr(state.count))
        return -eta, OptState(state.count + 1, eta)

    return Optimizer(init, update, step, linear)


def _scaled_sum(g: np.ndarray, c: float, p: np.ndarray) -> np.ndarray:
    """``p + g * c`` as a new array, block by block.

    The same arithmetic as ``p + (g * c)``, but each block of the product
    is still in cache when ``p`` is added to it. ``g`` and ``p`` have the
    same shape and dtype.
    """
    u = np.empty(g.shape, g.dtype)
    G, P, U = g.reshape(-1), p.reshape(-1), u.reshape(-1)
    for start in range(0, G.size, _BLOCK):
        b = slice(start, start + _BLOCK)
        ub = U[b]
        np.multiply(G[b], c, out=ub)
        ub += P[b]
    return u


def _momentum(lr: Schedule, mu: float, nesterov: bool) -> Optimizer:
    fn = "nesterov" if nesterov else "momentum"

    def init(params):
        return MomentumState(0, float(lr(0)), _zeros(params))

    def fresh(grads, state, params=None):
        _check_inputs(fn, grads, state, MomentumState, "velocity", params)
        eta = float(lr(state.count))
        c = -eta
        velocity, updates = {}, {}
        flush = _flush_due(state.count + 1)
        for k, g in grads.items():
            v = state.velocity[k] * mu
            v += g
            if flush:
                _flush_array(v)
            if nesterov:
                u = v * mu
                u += g
                u *= c
            else:
                u = v * c
            velocity[k] = v
            updates[k] = u
        return updates, MomentumState(state.count + 1, eta, Params._own(velocity))

    return from_fresh_updates(fn, init, fresh)


def momentum(learning_rate: LearningRate = 0.01, momentum: float = 0.9) -> Optimizer:
    """Heavy-ball momentum: :func:`sgd` with ``momentum`` (default 0.9)."""
    return sgd(learning_rate, momentum=momentum)


def nesterov(learning_rate: LearningRate = 0.01, momentum: float = 0.9) -> Optimizer:
    """Nesterov momentum: :func:`sgd` with ``momentum``, ``nesterov=True``."""
    return sgd(learning_rate, momentum=momentum, nesterov=True)


def adagrad(
    learning_rate: LearningRate = 0.01,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
) -> Optimizer:
    r"""Adagrad: per-coordinate steps shrinking with the summed squares.

    .. math::
        s_t = s_{t-1} + g_t^2, \qquad
        u_t = -\eta_t\, \frac{g_t}{\sqrt{s_t} + \epsilon}

    with :math:`s_0` = ``initial_accumulator_value``. Operations are
    element-wise; :math:`\epsilon` is added after the square root, as in
    PyTorch's ``Adagrad``.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule.
      eps: :math:`\epsilon > 0`, which keeps the denominator away from zero.
      initial_accumulator_value: :math:`s_0 \ge 0`.

    Returns:
      An :class:`Optimizer` whose state is :class:`AdagradState`.

    References:
      Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
      Learning and Stochastic Optimization", JMLR 12, 2011.
    """
    lr = _schedule("adagrad", learning_rate)
    eps = _in_range("adagrad", "eps", eps, 0.0, None, open_low=True)
    s0 = _in_range(
        "adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0, None
    )

    def init(params):
        sums = {k: np.full_like(v, s0) for k, v in params.items()}
        return AdagradState(0, float(lr(0)), Params._own(sums))

    def fresh(grads, state, params=None):
        _check_inputs("adagrad", grads, state, AdagradState, "sum_of_squares", params)
        eta = float(lr(state.count))
        c = -eta
        sums, updates = {}, {}
        for k, g in grads.items():
            s = g * g
            s += state.sum_of_squares[k]
            u = np.sqrt(s)
            u += eps
            np.divide(g, u, out=u)
            u *= c
            sums[k] = s
            updates[k] = u
        return updates, AdagradState(state.count + 1, eta, Params._own(sums))

    return from_fresh_updates("adagrad", init, fresh)


def rmsprop(
    learning_rate: LearningRate = 0.01,
    decay: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
) -> Optimizer:
    r"""RMSProp: steps divided by a moving root mean square of the gradients.

    With :math:`\rho` = ``decay`` and :math:`v_0 = 0`:

    .. math::
        v_t = \rho\, v_{t-1} + (1 - \rho)\, g_t^2, \qquad
        d_t = \sqrt{v_t} + \epsilon

    Centered, the variance replaces the second moment:

    .. math::
        \bar g_t = \rho\, \bar g_{t-1} + (1 - \rho)\, g_t, \qquad
        d_t = \sqrt{v_t - \bar g_t^2} + \epsilon

    Without momentum :math:`u_t = -\eta_t\, g_t / d_t`; with momentum
    :math:`\mu`:

    .. math::
        b_t = \mu\, b_{t-1} + g_t / d_t, \qquad u_t = -\eta_t\, b_t

    This is PyTorch's ``RMSprop`` (``alpha`` there is ``decay`` here;
    :math:`\epsilon` outside the root). Rounding can make
    :math:`v_t - \bar g_t^2` a hair below zero; it is clipped at 0.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule.
      decay: :math:`\rho \in [0, 1)`.
      eps: :math:`\epsilon > 0`, which keeps the denominator away from zero.
      momentum: :math:`\mu \in [0, 1)`.
      centered: divide by the estimated standard deviation.

    Returns:
      An :class:`Optimizer` whose state is :class:`RMSPropState`.

    References:
      Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural
      Networks for Machine Learning, 2012. Graves, "Generating Sequences
      With Recurrent Neural Networks", arXiv:1308.0850, 2013 (centered).
    """
    lr = _schedule("rmsprop", learning_rate)
    rho = _in_range("rmsprop", "decay", decay, 0.0, 1.0, open_high=True)
    eps = _in_range("rmsprop", "eps", eps, 0.0, None, open_low=True)
    mu = _in_range("rmsprop", "momentum", momentum, 0.0, 1.0, open_high=True)
    centered = bool(centered)
    w = 1.0 - rho

    def init(params):
        return RMSPropState(
            0,
            float(lr(0)),
            _zeros(params),
            _zeros(params) if centered else None,
            _zeros(params) if mu else None,
        )

    def fresh(grads, state, params=None):
        _check_inputs("rmsprop", grads, state, RMSPropState, "square_avg", params)
        if (state.grad_avg is None) == centered or (state.velocity is None) == bool(mu):
            raise TypeError(
                "rmsprop: the state was made by an rmsprop with other "
                "options (centered or momentum); build it with this "
                "optimizer's init"
            )
        eta = float(lr(state.count))
        c = -eta
        squares, means, velocity, updates = {}, {}, {}, {}
        flush = _flush_due(state.count + 1)
        for k, g in grads.items():
            d = g * g
            d *= w
            v = state.square_avg[k] * rho
            v += d
            if flush:
                _flush_array(v)
            squares[k] = v
            if centered:
                np.multiply(g, w, out=d)
                m = state.grad_avg[k] * rho
                m += d
                if flush:
                    _flush_array(m)
                means[k] = m
                np.multiply(m, m, out=d)
                np.subtract(v, d, out=d)
                np.maximum(d, 0.0, out=d)
                np.sqrt(d, out=d)
            else:
                np.sqrt(v, out=d)
            d += eps
            np.divide(g, d, out=d)
            if mu:
                b = state.velocity[k] * mu
                b += d
                if flush:
                    _flush_array(b)
                velocity[k] = b
                d = b * c
            else:
                d *= c
            updates[k] = d
        new = RMSPropState(
            state.count + 1,
            eta,
            Params._own(squares),
            Params._own(means) if centered else None,
            Params._own(velocity) if mu else None,
        )
        return updates, new

    return from_fresh_updates("rmsprop", init, fresh)


def adam(
    learning_rate: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    r"""Adam: steps from bias-corrected moving moments of the gradient.

    Kingma & Ba's Algorithm 1, with :math:`m_0 = v_0 = 0` and the update
    count :math:`t = 1, 2, \dots`:

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2

    .. math::
        \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
        \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
        u_t = -\eta_t\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    :math:`\epsilon` is added after the square root. The bias corrections
    are folded into two Python scalars, using the identity
    :math:`\hat m / (\sqrt{\hat v} + \epsilon) = \alpha_t m / (\sqrt{v} +
    \hat\epsilon_t)` with :math:`c_t = \sqrt{1 - \beta_2^t}`,
    :math:`\alpha_t = c_t / (1 - \beta_1^t)` and
    :math:`\hat\epsilon_t = \epsilon c_t` (exact, not the paper's
    approximate "efficient version"). An update makes three fresh arrays
    per param (:math:`m_t`, :math:`v_t` and the update) and no others, and
    works through them in cache-sized blocks.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule.
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon > 0`, which keeps the denominator away from zero.

    Returns:
      An :class:`Optimizer` whose state is :class:`AdamState`.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.

    >>> import numpy as np
    >>> from funnet.params import Params
    >>> opt = adam(0.1)
    >>> p = Params(w=np.zeros(2)); g = Params(w=np.array([3.0, -0.5]))
    >>> u, s = opt.update(g, opt.init(p), p)
    >>> u["w"].round(6)
    array([-0.1,  0.1])
    """
    return _adam("adam", learning_rate, b1, b2, eps, 0.0, None)


def adamw(
    learning_rate: LearningRate = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    mask: Mask = None,
) -> Optimizer:
    r"""AdamW: Adam with weight decay decoupled from the gradient.

    The Adam step of :func:`adam` plus a decay of the parameter itself,
    scaled by the learning rate, on the params that ``mask`` selects:

    .. math::
        u_t = -\eta_t \Big(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda\, \theta_{t-1}\Big)

    This is PyTorch's ``AdamW`` (which multiplies :math:`\theta` by
    :math:`1 - \eta_t \lambda` before the Adam step). Loshchilov & Hutter
    write the decay with a schedule multiplier instead of :math:`\eta_t`;
    with :math:`\eta_t = \alpha \cdot \text{multiplier}_t` the two agree.

    Args:
      learning_rate: :math:`\eta > 0`, a number or a schedule.
      b1, b2, eps: as in :func:`adam`.
      weight_decay: :math:`\lambda \ge 0`.
      mask: which params decay: a function ``(name, array) -> bool`` or a
        mapping ``name -> bool``; by default :func:`decay_matrices` (the
        weights, not biases or other 1-D params). PyTorch decays every
        param; pass ``mask=lambda name, p: True`` for that.

    Returns:
      An :class:`Optimizer` whose state is :class:`AdamState`.

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
      ICLR 2019.
    """
    wd = _in_range("adamw", "weight_decay", weight_decay, 0.0, None)
    return _adam("adamw", learning_rate, b1, b2, eps, wd, _mask("adamw", mask))


def _adam(fn, learning_rate, b1, b2, eps, wd, mask) -> Optimizer:
    lr = _schedule(fn, learning_rate)
    b1 = _in_range(fn, "b1", b1, 0.0, 1.0, open_high=True)
    b2 = _in_range(fn, "b2", b2, 0.0, 1.0, open_high=True)
    eps = _in_range(fn, "eps", eps, 0.0, None, open_low=True)

    def init(params):
        return AdamState(0, float(lr(0)), _zeros(params), _zeros(params))

    def moments(grads, state, params, apply):
        if (wd or apply) and params is None:
            what, call = ("step", "step") if apply else ("weight decay", "update")
            raise TypeError(
                f"{fn}: {what} needs params; call {call}(grads, state, params)"
            )
        _check_inputs(fn, grads, state, AdamState, "mu", params)
        t = state.count + 1
        eta = float(lr(state.count))
        root = math.sqrt(1.0 - b2**t)
        step = -eta * root / (1.0 - b1**t)
        eps_t = eps * root
        decay = -eta * wd
        mus, nus, out = {}, {}, {}
        for k, g in grads.items():
            p = params[k] if apply or decay else None
            mus[k], nus[k], out[k] = _adam_kernel(
                g,
                state.mu[k],
                state.nu[k],
                p if decay and mask(k, p) else None,
                p if apply else None,
                (b1, b2, eps_t, step, decay),
                _flush_due(t),
            )
        new = AdamState(t, eta, Params._own(mus), Params._own(nus))
        return Params._own(out), new

    def update(grads, state, params=None):
        return moments(grads, state, params, False)

    def step(grads, state, params):
        return moments(grads, state, params, True)

    return Optimizer(init, update, step)


# Elements per block in the element-wise kernels: the passes over a block of
# 64K floats (a few hundred KiB per array) find it in cache, so memory is
# read and written about once per array instead of once per pass.
_BLOCK = 1 << 16

# The decaying accumulators (momentum's velocity, the moving averages of Adam
# and RMSProp) of an entry whose gradient stays exactly zero, as a dead ReLU
# unit's does, shrink by a constant factor at every update into the
# subnormal numbers, below the dtype's smallest normal one, and stay there:
# for the smallest of them rounding gives back 0.9 x == x. x86 CPUs compute
# with subnormal operands many times slower, and a vector holding one is
# slow throughout: with one unit in 16 dead, Adam's update ran 3.4-4.1
# times slower. Every FLUSH_EVERY updates those entries are set to zero,
# before the update is computed from them; a number that small moves no
# parameter of ordinary size.
FLUSH_EVERY = 64


def _flush_due(count: int) -> bool:
    """Whether update number ``count`` (1, 2, ...) flushes subnormal entries."""
    return count % FLUSH_EVERY == 0


def _flush_subnormal(x: np.ndarray, scratch: np.ndarray) -> None:
    """Set the subnormal entries of ``x`` to zero, in place (see
    :mod:`funnet._floats`); ``scratch``, of ``x``'s shape, is overwritten."""
    if x.dtype.kind == "f":
        flush_below(x, limits(x.dtype)[0], scratch)


def _flush_array(a: np.ndarray) -> None:
    """:func:`_flush_subnormal` on a fresh array, a block at a time."""
    flat = a.ravel(order="K")
    if not np.may_share_memory(flat, a):  # not contiguous: no flat view
        _flush_subnormal(a, np.empty_like(a))
        return
    scratch = np.empty(min(flat.size, _BLOCK), a.dtype)
    for start in range(0, flat.size, _BLOCK):
        xb = flat[start : start + _BLOCK]
        _flush_subnormal(xb, scratch[: xb.size])


def _adam_kernel(g, m_old, v_old, decayed, added, constants, flush=False):
    """New ``m``, ``v`` and the update ``step * m / (sqrt(v) + eps)``.

    With ``decayed`` (a param), ``decay * decayed`` joins the update; with
    ``added`` (the same param), the third array is ``added + update``
    instead of the update, the same sum :func:`apply_updates` makes. With
    ``flush``, subnormal entries of ``m`` and ``v`` become zero first.
    Three fresh arrays; the arithmetic runs block by block in place on them
    (never on the inputs). Ops whose output is one of their inputs run
    about twice as fast as those writing a third array, hence the order.
    """
    b1, b2, eps, step, decay = constants
    # C-ordered outputs, so that their flat views below are views, whatever
    # the memory layout of the inputs (whose flat copies are only read).
    m = np.empty(g.shape, g.dtype)
    v = np.empty(g.shape, g.dtype)
    u = np.empty(g.shape, g.dtype)
    w1, w2 = 1.0 - b1, 1.0 - b2
    G, M0, V0 = g.reshape(-1), m_old.reshape(-1), v_old.reshape(-1)
    M, V, U = m.reshape(-1), v.reshape(-1), u.reshape(-1)
    D = None if decayed is None else decayed.reshape(-1)
    P = None if added is None else added.reshape(-1)
    scratch = None if D is None else np.empty(min(G.size, _BLOCK), g.dtype)
    for start in range(0, G.size, _BLOCK):
        b = slice(start, start + _BLOCK)
        gb, mb, vb, ub = G[b], M[b], V[b], U[b]
        np.multiply(gb, w1, out=ub)
        np.multiply(M0[b], b1, out=mb)
        mb += ub
        np.square(gb, out=ub)
        ub *= w2
        np.multiply(V0[b], b2, out=vb)
        vb += ub
        if flush:
            _flush_subnormal(mb, ub)
            _flush_subnormal(vb, ub)
        np.sqrt(vb, out=ub)
        ub += eps
        np.divide(mb, ub, out=ub)
        ub *= step
        if D is not None:
            sb = scratch[: ub.size]
            np.multiply(D[b], decay, out=sb)
            ub += sb
        if P is not None:
            ub += P[b]
    return m, v, u
