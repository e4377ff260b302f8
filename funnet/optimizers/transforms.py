r"""Gradient transformations: chain, clipping, weight decay, schedules.

Each has the ``(init, update)`` shape of an optimizer, so :func:`chain`
joins them with the update rules into one optimizer.
"""

from __future__ import annotations

import math

import numpy as np

from funnet.optimizers._core import (
    ClipState,
    EmptyState,
    LearningRate,
    Mask,
    Optimizer,
    Schedule,
    ScheduleState,
    _check_inputs,
    _frozen,
    _in_range,
    _mask,
    _schedule,
    apply_updates,
)
from funnet.params import Params


def chain(*transforms: Optimizer) -> Optimizer:
    r"""Run transformations one after another as one optimizer.

    Each member's updates are the next member's gradients:

    .. math:: u = f_n(\dots f_2(f_1(g)))

    The state is the tuple of the members' states, in order.

    >>> import numpy as np
    >>> from funnet.optimizers import sgd
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

    def run(grads, state, params, functions):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"chain: expected a state tuple of {len(transforms)} members, "
                f"got {state!r:.80}; build it with this chain's init"
            )
        new = []
        for fn, s in zip(functions, state):
            grads, s = fn(grads, s, params)
            new.append(s)
        return grads, tuple(new)

    updates = tuple(t.update for t in transforms)

    def update(grads, state, params=None):
        return run(grads, state, params, updates)

    # The last member's fused step, if it has one, applies the chain's
    # updates: the same sum apply_updates would make.
    last_step = getattr(transforms[-1], "step", None) if transforms else None
    fused = updates if last_step is None else (*updates[:-1], last_step)

    def step(grads, state, params):
        out, new = run(grads, state, params, fused)
        return (out if last_step else apply_updates(params, out)), new

    return Optimizer(init, update, step)


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
        _check_inputs("clip_by_global_norm", grads, state, ClipState, None, params)
        grads = _frozen(grads)
        norm = _global_norm([g.ravel() for g in grads.values()])
        if norm <= c:
            return grads, ClipState(norm)
        scale = c / norm
        return Params._own({k: g * scale for k, g in grads.items()}), ClipState(norm)

    return Optimizer(init, update)


def _global_norm(flats: list[np.ndarray]) -> float:
    r""":math:`\sqrt{\sum_k \|g_k\|^2}`, also where the squares overflow.

    The sum of squares overflows for entries near the square root of the
    dtype's largest number (about 1.8e19 in float32), which would make the
    norm infinite and the clipped updates zero. Then the entries are divided
    by the largest magnitude first. NaN stays NaN.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # handled below
        total = sum(float(np.dot(f, f)) for f in flats)
    if math.isfinite(total):
        return math.sqrt(total)
    big = max(float(np.max(np.abs(f))) for f in flats if f.size)
    if not math.isfinite(big):  # an infinite or NaN entry
        return big
    return big * math.sqrt(sum(float(np.dot(f / big, f / big)) for f in flats))


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
        _check_inputs("clip_by_value", grads, state, EmptyState, None, params)
        return Params._own({k: np.clip(g, -c, c) for k, g in grads.items()}), state

    return Optimizer(init, update)


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
        _check_inputs("weight_decay", grads, state, ScheduleState, None, params)
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
        _check_inputs("scale_by_schedule", grads, state, ScheduleState, None, params)
        s = float(schedule(state.count))
        return (
            Params._own({k: g * s for k, g in grads.items()}),
            ScheduleState(state.count + 1, s),
        )

    return Optimizer(init, update)
