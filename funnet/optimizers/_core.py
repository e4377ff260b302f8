"""The optimizer contract: state records, ``apply_updates`` and shared checks.

Every update rule (:mod:`funnet.optimizers.rules`) and transformation
(:mod:`funnet.optimizers.transforms`) builds on these. The state records
live in this one module so that checkpoints name a stable place for them.
"""

from __future__ import annotations

import collections
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Union

import numpy as np

from funnet import schedules
from funnet.params import Params, tree_map2

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]
Mask = Union[Callable[[str, np.ndarray], bool], Mapping[str, bool], None]


class Optimizer(NamedTuple):
    r"""A pair of pure functions ``(init, update)``; see the package doc.

    ``step``, when given, is a third pure function, ``(grads, opt_state,
    params) -> (new_params, opt_state)``: the update and its application in
    one go. It must give exactly ``apply_updates(params, updates)`` and the
    same state as ``update``; it exists because it can add each update to
    its parameter while both are still in cache, one pass over the params
    fewer. Training steps use it when it is there.

    ``linear``, when given, says that the updates are a multiple of the
    gradients, :math:`u = c\,g`: ``linear(opt_state) -> (c, opt_state)``
    gives the factor of the next update and the state after it. Since the
    backward pass is linear in the loss gradient, a training step can
    multiply the loss gradient (one small array) by :math:`c` and get the
    updates straight out of the backward pass. Plain SGD has it.
    """

    init: Callable[[Mapping[str, np.ndarray]], Any]
    update: Callable[..., tuple[Params, Any]]
    step: Callable[..., tuple[Params, Any]] | None = None
    linear: Callable[[Any], tuple[float, Any]] | None = None


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

    One pass per parameter; each sum keeps the parameter's dtype and shape
    (updates of another shape or dtype are refused).
    """
    _check_keys("apply_updates", updates, params, what="params", name="updates")
    return tree_map2(np.add, params, updates)


def from_fresh_updates(
    fn: str,
    init: Callable[[Mapping[str, np.ndarray]], Any],
    fresh: Callable[..., tuple[dict[str, np.ndarray], Any]],
) -> Optimizer:
    """An optimizer, fused step included, from a rule that makes new arrays.

    ``fn`` names the optimizer in messages. ``fresh(grads, state, params)
    -> (updates, state)`` must return updates that it has just allocated
    and nobody else holds. ``update`` freezes them; ``step`` first adds
    each parameter into its update in place (``u + p`` equals ``p + u``
    exactly), which saves allocating the new params.
    """

    def update(grads, state, params=None):
        updates, new = fresh(grads, state, params)
        return Params._own(updates), new

    def step(grads, state, params):
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{fn}: params must be a mapping of arrays (funnet.Params or a "
                f"dict), got {type(params).__name__}"
            )
        updates, new = fresh(grads, state, params)
        _add_params(updates, params)
        return Params._own(updates), new

    return Optimizer(init, update, step)


def _add_params(updates: dict[str, np.ndarray], params: Mapping[str, Any]) -> None:
    """Turn fresh ``updates`` into ``params + updates``, in place.

    Only arrays that own their data, are writeable and appear once are
    written; any other entry gets a new array for its sum.
    """
    _check_keys("apply_updates", updates, params, what="params", name="updates")
    uses = collections.Counter(map(id, updates.values()))
    for k, u in list(updates.items()):
        if (
            type(u) is not np.ndarray
            or u.base is not None
            or not u.flags.writeable
            or uses[id(u)] > 1
        ):
            # A shared array must not be written: it gets a new one.
            updates[k] = np.add(params[k], u)
        else:
            np.add(u, params[k], out=u)


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
        if not isinstance(value, numbers.Real) or not 0.0 <= value < math.inf:
            raise ValueError(
                f"{fn}: the {name} schedule {schedule!r} gave {value!r} at "
                f"step {step}; expected a finite number >= 0"
            )
        return value

    return checked


def _zeros(params: Mapping[str, Any]) -> Params:
    """Zeros shaped like ``params``.

    ``np.zeros`` takes memory already zeroed by the system, which costs
    nothing until written (``np.zeros_like`` fills each page): a fresh
    optimizer state that is kept, as the start of a run is, stays small.
    """
    return Params._own({k: np.zeros(np.shape(v), v.dtype) for k, v in params.items()})


def _frozen(grads: Mapping[str, Any]) -> Params:
    """``grads`` as Params; Params pass through without a copy."""
    return grads if isinstance(grads, Params) else Params(grads)


def _check_keys(
    fn: str,
    grads: Mapping[str, Any],
    like: Mapping[str, Any],
    what: str = "state",
    name: str = "grads",
) -> None:
    """``grads`` must match ``like``: the params, or the slots of a state.

    The same keys, and under each an array of the same shape and dtype: a
    mismatch would otherwise broadcast silently, change the params' dtype,
    or fail deep inside NumPy. ``what`` says what ``like`` is ("state" or
    "params") and ``name`` what ``grads`` are, for the messages.
    """
    for label, mapping in ((name, grads), (what, like)):
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"{fn}: {label} must be a mapping of arrays (funnet.Params or "
                f"a dict), got {type(mapping).__name__}"
            )
    if grads.keys() != like.keys():
        made = "the optimizer state was made for" if what == "state" else "params have"
        raise KeyError(
            f"{fn}: {name} have keys {sorted(grads)} but {made} "
            f"{sorted(like)}; expected the same keys"
            + ("; call init with the same params" if what == "state" else "")
        )
    for k, g in grads.items():
        ref = like[k]
        for label, a in ((f"{name}[{k!r}]", g), (f"{what}[{k!r}]", ref)):
            if not isinstance(a, np.ndarray):
                raise TypeError(
                    f"{fn}: {label} must be an array, got {type(a).__name__}"
                )
        if what == "state":
            if g.shape != ref.shape or g.dtype != ref.dtype:
                raise ValueError(
                    f"{fn}: {name}[{k!r}] is {g.dtype} of shape {g.shape} but the "
                    f"optimizer state was made for {ref.dtype} of shape "
                    f"{ref.shape}; call init with the params being trained"
                )
            continue
        if g.shape != ref.shape:
            raise ValueError(
                f"{fn}: {name}[{k!r}] has shape {g.shape} but the param has "
                f"shape {ref.shape}; expected the same shape"
            )
        if g.dtype != ref.dtype:
            raise TypeError(
                f"{fn}: {name}[{k!r}] has dtype {g.dtype} but the param has "
                f"dtype {ref.dtype}; expected the params' dtype"
            )


def _check_inputs(
    fn: str, grads: Any, state: Any, kind: type, slots: str | None, params: Any
) -> None:
    """The state's type, then grads against the params (when given) and
    against the state's accumulators ``getattr(state, slots)`` (if any)."""
    _check_state(fn, state, kind)
    if params is not None:
        _check_keys(fn, grads, params, what="params")
    if slots is not None:
        _check_keys(fn, grads, getattr(state, slots))


def _check_state(fn: str, state: Any, kind: type) -> None:
    if not isinstance(state, kind):
        raise TypeError(
            f"{fn}: expected the state that {fn}'s init makes ({kind.__name__}), "
            f"got {type(state).__name__}; build it with the same optimizer's init"
        )


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
