r"""Optimizers and gradient transformations as pairs of pure functions.

An :class:`Optimizer` is ``(init, update)``:

``init(params) -> opt_state``
    the optimizer's starting state for these params;
``update(grads, opt_state, params) -> (updates, opt_state)``
    turns gradients into the updates to add, and the next state.

:func:`apply_updates` adds the updates: ``params + updates``. The rules
here also carry a third function, ``step(grads, opt_state, params) ->
(new_params, opt_state)``, which gives exactly ``apply_updates(params,
updates)`` with one pass over the params fewer; training steps use it when
an optimizer has one, and an optimizer made of ``(init, update)`` alone
works the same, a little slower. No function here mutates anything; the
state is an immutable record (:class:`~typing.NamedTuple`) of ints,
floats, ``None`` and :class:`~funnet.params.Params`, and every update
returns a new one. Each optimizer's record starts with ``count`` (the
updates made so far) and ``learning_rate`` (the rate applied by the latest
update; ``schedule(0)`` before any), followed by its accumulators as
Params keyed like the params.

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
from collections.abc import Callable
from typing import Any

from funnet.optimizers._core import (
    AdagradState,
    AdamState,
    ClipState,
    EmptyState,
    LearningRate,
    MomentumState,
    Optimizer,
    OptState,
    RMSPropState,
    ScheduleState,
    apply_updates,
    decay_matrices,
)
from funnet.optimizers.rules import (
    adagrad,
    adam,
    adamw,
    momentum,
    nesterov,
    rmsprop,
    sgd,
)
from funnet.optimizers.transforms import (
    chain,
    clip_by_global_norm,
    clip_by_value,
    scale_by_schedule,
    weight_decay,
)

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
