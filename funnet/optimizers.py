r"""Optimizers and gradient transformations as pairs of pure functions.

An :class:`Optimizer` is ``(init, update)``:

``init(params) -> opt_state``
    the optimizer's starting state for these params;
``update(grads, opt_state, params) -> (updates, opt_state)``
    turns gradients into the updates to add, and the next state.

:func:`apply_updates` adds the updates: ``params + updates``. Neither
function mutates anything; the state is an immutable record
(:class:`~typing.NamedTuple`) of ints, floats, ``None`` and
:class:`~funnet.params.Params`, and every update returns a new one. Each
optimizer's record starts with ``count`` (the updates made so far) and
``learning_rate`` (the rate applied by the latest update; ``schedule(0)``
before any), followed by its accumulators as Params keyed like the params.

Gradient transformations (clipping, weight decay, scaling by a schedule)
have the same ``(init, update)`` shape, so :func:`chain` joins any of them
into one optimizer whose state is the tuple of its members' states.

>>> import numpy as np
>>> from funnet.params import Params
>>> opt = sgd(0.1)
>>> p = Params(W=np.ones(2)); g = Params(W=np.full(2, 2.0))
>>> updates, state = opt.update(g, opt.init(p), p)
>>> apply_updates(p, updates)["W"]
array([0.8, 0.8])
>>> state
OptState(count=1, learning_rate=0.1, slots=Params())

A learning rate is a number or a schedule (:mod:`funnet.schedules`):

>>> from funnet import schedules
>>> opt = chain(clip_by_global_norm(1.0),
...             adam(schedules.cosine_decay(1e-3, 100)),
...             weight_decay(1e-4))
>>> state = opt.init(p)
>>> updates, state = opt.update(g, state, p)
>>> [type(s).__name__ for s in state]
['ClipState', 'AdamState', 'ScheduleState']
>>> applied_learning_rate(state), update_count(state)
(0.001, 1)

In-place arithmetic appears below only on arrays that the same function has
just allocated, before they are frozen into Params; inputs and stored arrays
are never written.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Union

import numpy as np

from funnet import schedules
from funnet.params import Params, tree_map2

__all__ = [
    "Optimizer",
    "OptState",
    "MomentumState",
    "AdagradState",
    "RMSPropState",
    "AdamState",
    "ClipState",
    "ScheduleState",
    "EmptyState",
    "apply_updates",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "weight_decay",
    "scale_by_schedule",
    "decay_matrices",
    "applied_learning_rate",
    "update_count",
    "get",
    "NAMES",
]

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]
Mask = Union[Callable[[str, np.ndarray], bool], Mapping[str, bool], None]


class Optimizer(NamedTuple):
    """A pair of pure functions ``(init, update)``; see the module doc."""

    init: Callable[[Mapping[str, np.ndarray]], Any]
    update: Callable[..., tuple[Params, Any]]


class OptState(NamedTuple):
    """The state of plain SGD, and a generic record for custom optimizers.

    Attributes:
      count: the number of updates made so far.
      learning_rate: the learning rate applied by the latest update
        (``schedule(0)`` before any update).
      slots: per-parameter accumulators of a custom optimizer, a
        :class:`~funnet.params.Params` keyed ``"<slot>/<param>"``; empty
        for SGD (the optimizers here with accumulators have records that
        name them, such as :class:`AdamState`).
    """

    count: int
    learning_rate: float
    slots: Params = Params()


class MomentumState(NamedTuple):
    """The state of SGD with momentum: ``velocity`` is :math:`v`."""

    count: int
    learning_rate: float
    velocity: Params


class AdagradState(NamedTuple):
    """The state of Adagrad: ``sum_of_squares`` is :math:`s`."""

    count: int
    learning_rate: float
    sum_of_squares: Params


class RMSPropState(NamedTuple):
    r"""The state of RMSProp.

    Attributes:
      count, learning_rate: as in :class:`OptState`.
      square_avg: :math:`v`, the moving average of squared gradients.
      grad_avg: :math:`\bar g`, the moving average of gradients when
        centered, else ``None``.
      velocity: :math:`b`, the momentum buffer when momentum > 0, else
        ``None``.
    """

    count: int
    learning_rate: float
    square_avg: Params
    grad_avg: Params | None
    velocity: Params | None


class AdamState(NamedTuple):
    """The state of Adam and AdamW: the raw moments ``mu`` (:math:`m`) and
    ``nu`` (:math:`v`), before bias correction."""

    count: int
    learning_rate: float
    mu: Params
    nu: Params


class ClipState(NamedTuple):
    """The state of :func:`clip_by_global_norm`: the global norm of the
    latest gradients before clipping (``None`` before any update)."""

    norm: float | None


class ScheduleState(NamedTuple):
    """The state of a transformation driven by a schedule: the updates
    made so far and the latest value applied."""

    count: int
    value: float


class EmptyState(NamedTuple):
    """The state of a transformation that needs none."""


def apply_updates(params: Mapping[str, Any], updates: Mapping[str, Any]) -> Params:
    """``params + updates``, key by key, as new :class:`Params`.

    One pass per parameter; each sum keeps the parameter's dtype.
    """
    return tree_map2(np.add, params, updates)


# -- checks at construction time ------------------------------------------


def _real(fn: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a number, got {value!r}")
    return float(value)


def _in_range(
    fn: str,
    name: str,
    value: Any,
    low: float,
    high: float | None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """``value`` as a float in the interval, or a ValueError naming it."""
    x = _real(fn, name, value)
    ok = math.isfinite(x) and (x > low if open_low else x >= low)
    if high is not None:
        ok = ok and (x < high if open_high else x <= high)
    if not ok:
        left = "(" if open_low else "["
        right = ")" if open_high or high is None else "]"
        upper = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{fn}: {name} must be in {left}{low:g}, {upper}{right}, got {value!r}"
        )
    return x


def _schedule(fn: str, learning_rate: Any, name: str = "learning_rate") -> Schedule:
    """A schedule from a positive number or a function of the step."""
    if callable(learning_rate):
        return _checked_schedule(fn, name, learning_rate)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            f"{fn}: {name} must be a positive number or a schedule (a function "
            f"of the step), got {learning_rate!r}"
        )
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(
            f"{fn}: {name} must be a positive number, got {learning_rate!r}"
        )
    return schedules.constant(float(learning_rate))


def _checked_schedule(fn: str, name: str, schedule: Schedule) -> Schedule:
    """``schedule``, refusing any value that is not a finite number >= 0.

    A negative rate would climb the loss and a NaN would poison the params,
    both silently; the check is one comparison per step.
    """

    def checked(step: int) -> float:
        value = schedule(step)
        if not 0.0 <= value < math.inf:
            raise ValueError(
                f"{fn}: the {name} schedule {schedule!r} gave {value!r} at "
                f"step {step}; expected a finite number >= 0"
            )
        return value

    return checked


def _zeros(params: Mapping[str, Any]) -> Params:
    return Params._own({k: np.zeros_like(v) for k, v in params.items()})


def _frozen(grads: Mapping[str, Any]) -> Params:
    """``grads`` as Params; Params pass through without a copy."""
    return grads if isinstance(grads, Params) else Params(grads)


def _check_keys(fn: str, grads: Mapping[str, Any], slots: Mapping[str, Any]) -> None:
    if grads.keys() != slots.keys():
        raise KeyError(
            f"{fn}: grads have keys {sorted(grads)} but the optimizer state "
            f"was made for {sorted(slots)}; call init with the same params"
        )


# -- optimizers -----------------------------------------------------------


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
        eta = float(lr(state.count))
        c = -eta
        updates = Params._own({k: g * c for k, g in grads.items()})
        return updates, OptState(state.count + 1, eta)

    return Optimizer(init, update)


def _momentum(lr: Schedule, mu: float, nesterov: bool) -> Optimizer:
    def init(params):
        return MomentumState(0, float(lr(0)), _zeros(params))

    def update(grads, state, params=None):
        _check_keys("sgd", grads, state.velocity)
        eta = float(lr(state.count))
        c = -eta
        velocity, updates = {}, {}
        for k, g in grads.items():
            v = state.velocity[k] * mu
            v += g
            if nesterov:
                u = v * mu
                u += g
                u *= c
            else:
                u = v * c
            velocity[k] = v
            updates[k] = u
        new = MomentumState(state.count + 1, eta, Params._own(velocity))
        return Params._own(updates), new

    return Optimizer(init, update)


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
      eps: :math:`\epsilon \ge 0`.
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

    def update(grads, state, params=None):
        _check_keys("adagrad", grads, state.sum_of_squares)
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
        new = AdagradState(state.count + 1, eta, Params._own(sums))
        return Params._own(updates), new

    return Optimizer(init, update)


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
      eps: :math:`\epsilon \ge 0`.
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

    def update(grads, state, params=None):
        _check_keys("rmsprop", grads, state.square_avg)
        eta = float(lr(state.count))
        c = -eta
        squares, means, velocity, updates = {}, {}, {}, {}
        for k, g in grads.items():
            d = g * g
            d *= w
            v = state.square_avg[k] * rho
            v += d
            squares[k] = v
            if centered:
                np.multiply(g, w, out=d)
                m = state.grad_avg[k] * rho
                m += d
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
        return Params._own(updates), new

    return Optimizer(init, update)


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
      eps: :math:`\epsilon \ge 0`.

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

    def update(grads, state, params=None):
        _check_keys(fn, grads, state.mu)
        if wd and params is None:
            raise TypeError(
                f"{fn}: weight decay needs params; call update(grads, state, params)"
            )
        t = state.count + 1
        eta = float(lr(state.count))
        root = math.sqrt(1.0 - b2**t)
        step = -eta * root / (1.0 - b1**t)
        eps_t = eps * root
        decay = -eta * wd
        mus, nus, updates = {}, {}, {}
        for k, g in grads.items():
            m, v, u = _adam_moments_and_step(
                g, state.mu[k], state.nu[k], b1, b2, eps_t, step
            )
            if decay and mask(k, params[k]):
                u += params[k] * decay
            mus[k], nus[k], updates[k] = m, v, u
        new = AdamState(t, eta, Params._own(mus), Params._own(nus))
        return Params._own(updates), new

    return Optimizer(init, update)


# Elements per block in the Adam kernel: the dozen passes over a block of
# 64K floats (a few hundred KiB per array) stay in cache, so memory is read
# and written about once per array instead of once per pass.
_BLOCK = 1 << 16


def _adam_moments_and_step(g, m_old, v_old, b1, b2, eps, step):
    """New ``m``, ``v`` and the update ``step * m / (sqrt(v) + eps)``.

    Three fresh arrays; the arithmetic runs block by block in place on them
    (never on the inputs).
    """
    # C-ordered outputs, so that their flat views below are views, whatever
    # the memory layout of the inputs (whose flat copies are only read).
    m = np.empty(g.shape, g.dtype)
    v = np.empty(g.shape, g.dtype)
    u = np.empty(g.shape, g.dtype)
    w1, w2 = 1.0 - b1, 1.0 - b2
    G, M0, V0 = g.reshape(-1), m_old.reshape(-1), v_old.reshape(-1)
    M, V, U = m.reshape(-1), v.reshape(-1), u.reshape(-1)
    for start in range(0, G.size, _BLOCK):
        b = slice(start, start + _BLOCK)
        gb, mb, vb, ub = G[b], M[b], V[b], U[b]
        np.multiply(gb, w1, out=ub)
        np.multiply(M0[b], b1, out=mb)
        mb += ub
        np.multiply(gb, gb, out=ub)
        ub *= w2
        np.multiply(V0[b], b2, out=vb)
        vb += ub
        np.sqrt(vb, out=ub)
        ub += eps
        np.divide(mb, ub, out=ub)
        ub *= step
    return m, v, u


# -- transformations ------------------------------------------------------


def chain(*transforms: Optimizer) -> Optimizer:
    r"""Run transformations one after another as one optimizer.

    Each member's updates are the next member's gradients:

    .. math:: u = f_n(\dots f_2(f_1(g)))

    The state is the tuple of the members' states, in order.

    >>> import numpy as np
    >>> from funnet.params import Params
    >>> opt = chain(clip_by_value(1.0), sgd(0.1))
    >>> p = Params(w=np.zeros(2)); g = Params(w=np.array([5.0, -0.5]))
    >>> u, state = opt.update(g, opt.init(p), p)
    >>> u["w"]
    array([-0.1 ,  0.05])
    >>> state
    (EmptyState(), OptState(count=1, learning_rate=0.1, slots=Params()))
    """
    for i, t in enumerate(transforms):
        if not (
            callable(getattr(t, "init", None)) and callable(getattr(t, "update", None))
        ):
            raise TypeError(
                f"chain: transform {i} must be an Optimizer (init, update), got {t!r}"
            )

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain: expected a state tuple of {len(transforms)} members, "
                f"got {state!r:.80}; build it with this chain's init"
            )
        new = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new.append(s)
        return grads, tuple(new)

    return Optimizer(init, update)


def clip_by_global_norm(max_norm: float) -> Optimizer:
    r"""Scale all gradients down together when their joint norm is too big.

    .. math::
        \|g\| = \sqrt{\textstyle\sum_k \sum_i g_{k,i}^2}, \qquad
        u = g \cdot \min\big(1, c / \|g\|\big)

    The direction is kept. When :math:`\|g\| \le c` the gradients pass
    through unchanged (no copy). The state records :math:`\|g\|`.

    Args:
      max_norm: :math:`c > 0`.

    References:
      Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent
      neural networks", ICML 2013.
    """
    c = _in_range("clip_by_global_norm", "max_norm", max_norm, 0.0, None, open_low=True)

    def init(params):
        return ClipState(None)

    def update(grads, state, params=None):
        grads = _frozen(grads)
        total = 0.0
        for g in grads.values():
            flat = g.ravel()
            total += float(np.dot(flat, flat))
        norm = math.sqrt(total)
        if norm <= c:
            return grads, ClipState(norm)
        scale = c / norm
        return Params._own({k: g * scale for k, g in grads.items()}), ClipState(norm)

    return Optimizer(init, update)


def clip_by_value(max_abs: float) -> Optimizer:
    r"""Clip every gradient entry into :math:`[-c, c]`.

    .. math:: u_i = \max(-c, \min(c, g_i))

    Args:
      max_abs: :math:`c > 0`.
    """
    c = _in_range("clip_by_value", "max_abs", max_abs, 0.0, None, open_low=True)

    def init(params):
        return EmptyState()

    def update(grads, state, params=None):
        return Params._own({k: np.clip(g, -c, c) for k, g in grads.items()}), state

    return Optimizer(init, update)


def decay_matrices(name: str, param: np.ndarray) -> bool:
    """The default weight-decay mask: params with at least two dimensions.

    Biases, scales and other 1-D (or scalar) params are left alone.

    >>> W, b = np.zeros((3, 2)), np.zeros(2)
    >>> decay_matrices("W1", W), decay_matrices("b1", b)
    (True, False)
    """
    return np.ndim(param) >= 2


def _mask(fn: str, mask: Mask) -> Callable[[str, np.ndarray], bool]:
    if mask is None:
        return decay_matrices
    if isinstance(mask, Mapping):
        return lambda name, param: bool(mask.get(name, False))
    if callable(mask):
        return mask
    raise TypeError(
        f"{fn}: mask must be a function (name, array) -> bool or a mapping "
        f"name -> bool, got {mask!r}"
    )


def weight_decay(
    weight_decay: float, learning_rate: LearningRate = 1.0, mask: Mask = None
) -> Optimizer:
    r"""Decoupled weight decay, applied to the updates after an optimizer.

    For every param :math:`\theta` that ``mask`` selects:

    .. math:: u \leftarrow u - \eta_t\, \lambda\, \theta

    Placed after an optimizer in a :func:`chain` this shrinks the weights
    independently of the gradient statistics; with the optimizer's own
    learning rate as ``learning_rate`` it is the decay of AdamW for any
    optimizer (``chain(adam(lr), weight_decay(wd, lr))`` takes AdamW's
    steps).

    Args:
      weight_decay: :math:`\lambda \ge 0`.
      learning_rate: :math:`\eta_t`, a number or a schedule that scales
        the decay (1 by default, so the decay is :math:`\lambda` per step).
      mask: which params decay: a function ``(name, array) -> bool`` or a
        mapping ``name -> bool``; by default :func:`decay_matrices`.

    Returns:
      An :class:`Optimizer` whose state is :class:`ScheduleState` holding
      :math:`\eta_t \lambda`.

    References:
      Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
      ICLR 2019.
    """
    wd = _in_range("weight_decay", "weight_decay", weight_decay, 0.0, None)
    lr = _schedule("weight_decay", learning_rate)
    select = _mask("weight_decay", mask)

    def init(params):
        return ScheduleState(0, float(lr(0)) * wd)

    def update(grads, state, params=None):
        if params is None:
            raise TypeError(
                "weight_decay needs params; call update(grads, state, params)"
            )
        grads = _frozen(grads)
        rate = float(lr(state.count)) * wd
        if not rate:
            return grads, ScheduleState(state.count + 1, rate)
        out = {}
        for k, u in grads.items():
            if select(k, params[k]):
                d = params[k] * -rate
                d += u
                out[k] = d
            else:
                out[k] = u
        return Params._own(out), ScheduleState(state.count + 1, rate)

    return Optimizer(init, update)


def scale_by_schedule(schedule: Schedule) -> Optimizer:
    r"""Multiply the updates by a schedule's value.

    .. math:: u \leftarrow s(t)\, u

    where :math:`t` counts this transformation's updates from 0.

    Args:
      schedule: a function of the step (see :mod:`funnet.schedules`).

    Returns:
      An :class:`Optimizer` whose state is :class:`ScheduleState`.
    """
    if not callable(schedule):
        raise TypeError(
            f"scale_by_schedule: schedule must be a function of the step, "
            f"got {schedule!r}"
        )

    def init(params):
        return ScheduleState(0, float(schedule(0)))

    def update(grads, state, params=None):
        s = float(schedule(state.count))
        return (
            Params._own({k: g * s for k, g in grads.items()}),
            ScheduleState(state.count + 1, s),
        )

    return Optimizer(init, update)


# -- reading states and building by name ----------------------------------


def _records(state: Any):
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        for member in state:
            yield from _records(member)
    else:
        yield state


def applied_learning_rate(opt_state: Any) -> float | None:
    """The learning rate of the latest update, from any optimizer's state.

    For a chain, the first member with a ``learning_rate``; ``None`` if no
    member has one.
    """
    for record in _records(opt_state):
        if "learning_rate" in getattr(record, "_fields", ()):
            return record.learning_rate
    return None


def update_count(opt_state: Any) -> int | None:
    """The number of updates made, from any optimizer's state (or chain)."""
    for record in _records(opt_state):
        if "count" in getattr(record, "_fields", ()):
            return record.count
    return None


_REGISTRY: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
}

NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(
    name: str, learning_rate: LearningRate | None = None, **hyper: Any
) -> Optimizer:
    """An optimizer by name, e.g. ``get("adam", 1e-3, b2=0.99)``.

    Args:
      name: one of :data:`NAMES`.
      learning_rate: a number or a schedule; ``None`` takes the optimizer's
        default (``sgd`` has none and needs one).
      **hyper: the optimizer's other keyword arguments.

    >>> get("nesterov", 0.1).init({})
    MomentumState(count=0, learning_rate=0.1, velocity=Params())
    """
    if name not in _REGISTRY:
        raise ValueError(f"optimizer name must be one of {list(NAMES)}, got {name!r}")
    factory = _REGISTRY[name]
    allowed = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
    unknown = sorted(set(hyper) - set(allowed))
    if unknown:
        raise TypeError(
            f"optimizer {name!r} got unknown hyperparameters {unknown}; it takes "
            f"{allowed}"
        )
    if learning_rate is None:
        if name == "sgd":
            raise TypeError("optimizer 'sgd' needs a learning_rate, got None")
        return factory(**hyper)
    return factory(learning_rate, **hyper)
