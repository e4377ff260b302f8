r"""Optimizers as pairs of pure functions.

An :class:`Optimizer` is ``(init, update)``:

``init(params) -> opt_state``
    the optimizer's starting state for these params;
``update(grads, opt_state, params) -> (updates, opt_state)``
    turns gradients into the updates to add, and the next state.

:func:`apply_updates` adds the updates: ``params + updates``. Neither
function mutates anything; the state is an immutable :class:`OptState`.

>>> import numpy as np
>>> from funnet.params import Params
>>> opt = sgd(0.1)
>>> p = Params(W=np.ones(2)); g = Params(W=np.full(2, 2.0))
>>> updates, state = opt.update(g, opt.init(p), p)
>>> apply_updates(p, updates)["W"]
array([0.8, 0.8])
>>> state.count, state.learning_rate
(1, 0.1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from funnet.params import Params, tree_map, tree_map2

__all__ = ["Optimizer", "OptState", "apply_updates", "sgd"]


class OptState(NamedTuple):
    """Immutable optimizer state.

    Attributes:
      count: the number of updates made so far.
      learning_rate: the learning rate applied by the latest update (the
        initial one before any update).
      slots: per-parameter accumulators (momentum, second moments, ...),
        a :class:`~funnet.params.Params` keyed ``"<slot>/<param>"``.
    """

    count: int
    learning_rate: float
    slots: Params = Params()


class Optimizer(NamedTuple):
    """A pair of pure functions ``(init, update)``; see the module docstring."""

    init: Callable[[Mapping[str, np.ndarray]], Any]
    update: Callable[..., tuple[Params, Any]]


def apply_updates(params: Mapping[str, Any], updates: Mapping[str, Any]) -> Params:
    """``params + updates``, key by key, as new :class:`Params`.

    Each sum keeps the parameter's dtype.
    """
    return tree_map2(np.add, params, updates)


def sgd(learning_rate: float) -> Optimizer:
    r"""Plain gradient descent, :math:`\theta \leftarrow \theta - \eta\, g`.

    Args:
      learning_rate: the step size :math:`\eta > 0`.
    """
    if not float(learning_rate) > 0:
        raise ValueError(
            f"sgd: learning_rate must be a positive number, got {learning_rate!r}"
        )
    lr = float(learning_rate)

    def init(params):
        return OptState(0, lr)

    def update(grads, state, params=None):
        return tree_map(lambda g: g * -lr, grads), OptState(state.count + 1, lr)

    return Optimizer(init, update)
