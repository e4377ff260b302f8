r"""Gradients, the training step, and training as a fold.

The pieces, each a pure function:

1. :func:`value_and_grad` runs forward, the loss and backward:
   ``(params, X, y) -> (loss, grads)``, with ``grads`` a
   :class:`~funnet.params.Params` shaped like ``params``.
2. A step ``state -> batch -> state``: :func:`gradient_descent` gives one
   over bare params, :func:`make_step` one over a :class:`TrainState`
   with any optimizer.
3. :func:`fit` folds the step over batches with :func:`toolz.reduce`;
   :func:`trajectory` yields every intermediate state lazily with
   :func:`toolz.accumulate`.

>>> import numpy as np
>>> from funnet import mlp, init, losses
>>> X = np.random.default_rng(0).normal(size=(32, 4)); y = (X[:, 0] > 0) * 1
>>> net = mlp([8], n_outputs=2)
>>> step = gradient_descent(net, losses.softmax_cross_entropy, 0.5)
>>> params = fit(step, batches(X, y, batch_size=8, seed=0, epochs=5), init(net, 4))
>>> loss, _ = value_and_grad(net, losses.softmax_cross_entropy)(params, X, y)
>>> bool(loss < 0.3)
True
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
import toolz

from funnet import _checks
from funnet._random import Seed, generator, seed_entropy
from funnet.layers import Layer
from funnet.models import _forward
from funnet.losses import Loss, binary_cross_entropy, softmax_cross_entropy
from funnet.optimizers import Optimizer, apply_updates
from funnet.optimizers._core import _add_params
from funnet.params import Params, tree_map2

__all__ = [
    "Batch",
    "TrainState",
    "TrainingDiverged",
    "value_and_grad",
    "gradient_descent",
    "make_step",
    "init_train_state",
    "fit",
    "trajectory",
    "batches",
    "epoch_batches",
    "prepare",
    "accuracy",
    "evaluate",
]


class Batch(tuple):
    """A mini-batch ``(X, y)`` that remembers the epoch it belongs to.

    It is a plain 2-tuple, so ``X, y = batch`` works in any step; the
    extra attribute ``epoch`` (the 0-based epoch index, or ``None``) lets
    :func:`fit` say where training diverged.

    >>> import numpy as np
    >>> X, y = b = Batch(np.zeros((2, 3)), np.zeros(2), epoch=4)
    >>> X.shape, b.epoch
    ((2, 3), 4)
    """

    epoch: int | None

    def __new__(cls, X: np.ndarray, y: np.ndarray, epoch: int | None = None):
        batch = super().__new__(cls, (X, y))
        batch.epoch = epoch
        return batch


class TrainingDiverged(FloatingPointError):
    """Training produced NaN or infinity; ``state`` holds the last good state.

    Raised by :func:`fit`. It is a :class:`FloatingPointError`, so code that
    already catches NumPy's floating-point errors catches it too.

    Attributes:
      state: the last good state: its arrays (params, optimizer and network
        state) are all finite, and when a non-finite loss revealed the
        divergence, its own loss was finite (params can be finite yet so
        large that the loss overflows; such a state is passed over). Train
        from it again with a smaller learning rate, or save it.
      step: the number of the step that went wrong: ``TrainState.step``
        after it for a :class:`TrainState`, else the count of steps in this
        call of :func:`fit` (from 1).
      epoch: the 0-based index of that step's epoch (from
        :class:`Batch`), or ``None`` if the batches did not say. Messages
        count epochs from 1, as ``funnet train`` prints them.
      reason: what was found, e.g. ``"the loss is nan"``.
    """

    def __init__(
        self, message: str, state: Any, step: int, epoch: int | None, reason: str
    ):
        super().__init__(message)
        self.state = state
        self.step = step
        self.epoch = epoch
        self.reason = reason


class TrainState(NamedTuple):
    """The immutable state that a training step maps to its successor.

    Attributes:
      params: the trainable parameters.
      opt_state: the optimizer's state.
      step: the number of steps taken.
      loss: the loss of the latest batch (before its update); ``None``
        before the first step.
      net_state: non-trainable network state (running statistics);
        empty for most networks.
    """

    params: Params
    opt_state: Any
    step: int = 0
    loss: Any = None
    net_state: Params = Params()


def _raw_param_grads(net: Layer, params, cache, dY) -> dict[str, np.ndarray]:
    """The parameter gradients as the backward pass returns them."""
    if net.backward_params is not None:
        return net.backward_params(params, cache, dY)
    return net.backward(params, cache, dY)[0]


def _param_grads(net: Layer, params, cache, dY) -> Params:
    return Params._own(_raw_param_grads(net, params, cache, dY))


def value_and_grad(net: Layer, loss: Loss) -> Callable[..., tuple[Any, Params]]:
    r"""The loss of ``net`` on a batch and its gradient with respect to the params.

    Returns a function ``(params, X, y) -> (value, grads)``:

    - ``params``: the network's :class:`~funnet.params.Params`;
    - ``X``: inputs, shape ``(n, n_features)``, in the params' dtype;
    - ``y``: targets, as ``loss`` expects them;
    - ``value``: the mean loss, :math:`L`;
    - ``grads``: :math:`\partial L / \partial \theta` for every entry
      :math:`\theta` of ``params``, same keys, shapes and dtypes.

    The network runs in prediction mode (dropout off), which is what a
    gradient check needs; the training step uses training mode.

    ``X`` and ``y`` are checked on every call as in :func:`prepare` (shape,
    width, labels, finiteness) and converted to the params' dtype; the
    training steps skip this, since :func:`prepare` checks a data set once.
    """

    _checks.network(net, "value_and_grad")
    _checks.loss_function(loss, "value_and_grad")

    def value_and_grad_fn(params, X, y):
        X, y = prepare(net, params, X, y, loss)
        Y, cache, _ = _forward(net, params, X)
        value, dY = loss(Y, y)
        return value, _param_grads(net, params, cache, dY)

    return value_and_grad_fn


def _unpack(batch: Any, params: Mapping[str, np.ndarray], where: str):
    """``(X, y)`` from a batch, ``X`` in the params' dtype.

    A float64 batch meeting float32 params is cast once here, so the whole
    step stays in the params' dtype (one pass over the batch, and only when
    the dtypes differ).
    """
    try:
        if isinstance(batch, np.ndarray):
            raise TypeError  # an array would unpack into its first two rows
        X, y = batch
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: each batch must be a pair (X, y), got "
            f"{type(batch).__name__} {batch!r:.80}"
        ) from None
    X = np.asanyarray(X)
    for key, value in params.items():
        # The first entry is W1 for a serial network: one comparison turns a
        # NumPy core-dimension error into a message that names the sizes.
        if value.ndim == 2 and (X.ndim != 2 or X.shape[1] != value.shape[0]):
            raise ValueError(
                f"{where}: a batch has X of shape {X.shape} but params[{key!r}] "
                f"has shape {value.shape}; expected X of shape (n, "
                f"{value.shape[0]})"
            )
        if X.dtype != value.dtype:
            # values beyond the params' dtype would become infinite: refused
            # here by name, rather than reported later as a divergence
            X = _checks._cast(X, value.dtype, "a batch's X")
        break
    return X, y


def _sgd_step(
    net: Layer, loss: Loss, learning_rate: float, params: Params, batch: Batch
) -> Params:
    if not isinstance(params, Mapping):
        raise TypeError(
            f"the gradient_descent step takes bare params (funnet.Params), got "
            f"{type(params).__name__}; a TrainState goes with make_step"
        )
    X, y = _unpack(batch, params, "gradient_descent")
    Y, cache, _ = _forward(net, params, X)
    value, dY = loss(Y, y)
    _check_batch_if_not_finite(value, X, "gradient_descent")
    grads = _param_grads(net, params, cache, dY)
    return tree_map2(lambda p, g: p - learning_rate * g, params, grads)


def gradient_descent(
    net: Layer, loss: Loss, learning_rate: float
) -> Callable[[Params, Batch], Params]:
    r"""A step ``params -> batch -> params`` of plain gradient descent.

    .. math:: \theta \leftarrow \theta - \eta\,\partial L/\partial\theta

    for every entry :math:`\theta` of the params. The step is the pure
    function ``_sgd_step`` with the network, loss and rate bound by
    :func:`functools.partial`, so :func:`fit` folds it over batches.
    """
    _checks.network(net, "gradient_descent")
    _checks.loss_function(loss, "gradient_descent")
    if "state" in net.needs or "rng" in net.needs:
        raise ValueError(
            "gradient_descent works on bare params; this network has "
            f"{sorted(net.needs & {'state', 'rng'})}, so use make_step with "
            "an optimizer such as funnet.optimizers.sgd"
        )
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            f"gradient_descent: learning_rate must be a number, got "
            f"{learning_rate!r}; for a schedule use make_step(net, loss, "
            f"funnet.optimizers.sgd(schedule))"
        )
    if not 0 < learning_rate < math.inf:
        raise ValueError(
            f"gradient_descent: learning_rate must be a positive number, got "
            f"{learning_rate!r}"
        )
    return functools.partial(_sgd_step, net, loss, float(learning_rate))


class _Pending(NamedTuple):
    """The first half of a training step: what the update needs.

    ``grads`` are the gradients, or, when ``scaled`` (an optimizer with
    ``linear``), the updates themselves: fresh arrays that the second half
    adds the params into, with ``opt_state`` the optimizer's next state.
    """

    value: Any
    grads: Any
    net_state: Params
    scaled: bool = False
    opt_state: Any = None


def _front(
    net: Layer,
    loss: Loss,
    entropy: int,
    state: TrainState,
    batch: Batch,
) -> tuple:
    """Forward and loss at ``state``: ``(value, dY, cache, net_state)``."""
    if not isinstance(state, TrainState):
        raise TypeError(
            f"the make_step step takes a TrainState (from init_train_state), "
            f"got {type(state).__name__}; bare params go with gradient_descent"
        )
    params = state.params
    X, y = _unpack(batch, params, "make_step")
    rng = generator(entropy, state.step) if "rng" in net.needs else None
    Y, cache, net_state = _forward(
        net, params, X, training=True, rng=rng, state=state.net_state
    )
    value, dY = loss(Y, y)
    _check_batch_if_not_finite(value, X, "make_step")
    return value, dY, cache, net_state


def _check_batch_if_not_finite(value: Any, X: np.ndarray, fn: str) -> None:
    """Name a NaN or infinity in the batch's inputs when the loss is not finite.

    The steps do not check their batches (:func:`batches` and
    :func:`prepare` check a data set once; the losses check their
    targets), but a non-finite loss costs a look at the inputs: bad data is
    named as such, not left to pass for divergence.
    """
    if np.isfinite(value):
        return
    bad = _checks.first_non_finite(X)
    if bad is not None:
        raise ValueError(
            f"{fn}: the batch's X holds {X[bad]} at index {bad}; expected "
            f"finite data (funnet.batches and funnet.prepare check a whole "
            f"data set up front)"
        )


def _back(
    net: Layer, optimizer: Optimizer, state: TrainState, front: tuple
) -> _Pending:
    """Backward from the loss gradient of :func:`_front`: what the update needs."""
    value, dY, cache, net_state = front
    linear = getattr(optimizer, "linear", None)
    if linear is None:
        return _Pending(value, _param_grads(net, state.params, cache, dY), net_state)
    # u = c g for every param, and the backward pass is linear in dY: scaling
    # the (batch, outputs) loss gradient gives the updates for the price of
    # one small product, and they come out as fresh arrays to add into.
    factor, opt_state = linear(state.opt_state)
    updates = _raw_param_grads(net, state.params, cache, dY * factor)
    return _Pending(value, updates, net_state, True, opt_state)


def _update(optimizer: Optimizer, state: TrainState, pending: _Pending) -> TrainState:
    """The second half of a training step: the optimizer's update."""
    params, grads = state.params, pending.grads
    if pending.scaled:
        updates = dict(grads)
        _add_params(updates, params)
        new_params, opt_state = Params._own(updates), pending.opt_state
    elif getattr(optimizer, "step", None) is not None:
        new_params, opt_state = optimizer.step(grads, state.opt_state, params)
    else:
        out = optimizer.update(grads, state.opt_state, params)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"the optimizer's update must return a pair (updates, "
                f"new_state), got {type(out).__name__} {out!r:.80}"
            )
        updates, opt_state = out
        new_params = apply_updates(params, updates)
    return TrainState(
        new_params, opt_state, state.step + 1, pending.value, pending.net_state
    )


def _train_step(
    net: Layer,
    loss: Loss,
    optimizer: Optimizer,
    entropy: int,
    state: TrainState,
    batch: Batch,
) -> TrainState:
    # The activations go before the update runs.
    front = _front(net, loss, entropy, state, batch)
    pending = _back(net, optimizer, state, front)
    del front
    return _update(optimizer, state, pending)


def make_step(
    net: Layer, loss: Loss, optimizer: Optimizer, seed: Seed = 0
) -> Callable[[TrainState, Batch], TrainState]:
    """A training step ``TrainState -> batch -> TrainState`` with any optimizer.

    forward (training mode) -> loss -> backward -> ``optimizer.update`` ->
    :func:`~funnet.optimizers.apply_updates`. When the optimizer has a fused
    ``step`` (the same params, bit for bit, in fewer passes), the step uses
    it; when it is ``linear`` (plain SGD), the loss gradient is scaled by
    the update's factor, so the backward pass returns the updates
    themselves. Layers that draw random numbers (dropout) get a generator
    derived from ``seed`` and the step count, so the same run always draws
    the same masks.
    """
    _checks.network(net, "make_step")
    _checks.loss_function(loss, "make_step")
    _checks.optimizer(optimizer, "make_step")
    return functools.partial(_train_step, net, loss, optimizer, seed_entropy(seed))


def init_train_state(
    params: Mapping[str, np.ndarray],
    optimizer: Optimizer,
    net_state: Mapping[str, np.ndarray] | None = None,
) -> TrainState:
    """The starting :class:`TrainState`: params, fresh optimizer state, step 0."""
    _checks.optimizer(optimizer, "init_train_state")
    params = params if isinstance(params, Params) else Params(params)
    net_state = Params(net_state or {})
    return TrainState(params, optimizer.init(params), 0, None, net_state)


def _leaves(tree: Any) -> Iterator[Any]:
    """The numbers and arrays inside a state (Params, tuples, NamedTuples)."""
    if isinstance(tree, Mapping):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, tuple):
        for value in tree:
            yield from _leaves(value)
    elif isinstance(tree, (np.ndarray, np.generic, float)):
        yield tree


def _is_finite(state: Any) -> bool:
    """True when every array and number in ``state`` is finite."""
    return _checks.all_finite(_leaves(state))


def _not_finite(state: Any) -> str:
    """Which part of a state that is not finite went wrong, for messages."""
    parts = [("params", state)]
    if isinstance(state, TrainState):
        parts = [
            ("params", state.params),
            ("optimizer state", state.opt_state),
            ("network state", state.net_state),
        ]
    bad = next((name for name, part in parts if not _is_finite(part)), "state")
    return f"the {bad} became NaN or infinite"


def _step_number(state: Any, count: int) -> int:
    step = getattr(state, "step", None)
    return step if isinstance(step, int) else count


class _Guard(NamedTuple):
    """The accumulator of :func:`fit`: the state and what is needed to recover.

    ``previous`` holds the state before ``state`` with its step count, and
    ``verified`` the latest state checked finite in full (for bare params,
    which carry no loss; a :class:`TrainState` keeps its start here). They
    are references to immutable values, never copies, but each keeps a
    whole state alive, so the guard holds no more of them than recovery
    needs: a parameter update that overflows shows in the next step's loss,
    when the state before it is ``previous``. :func:`_fit_in_halves` makes
    one only to report a divergence.
    """

    state: Any
    count: int
    previous: tuple
    verified: tuple
    epoch: int | None


def _diverged(
    guard: _Guard, count: int, epoch, reason: str, cause=None, bad_loss=False
):
    """Raise :class:`TrainingDiverged` with the last good state at hand.

    With ``bad_loss`` the loss of ``guard.state`` itself was not finite:
    its values may all be finite, yet it cannot be trained on, so it is
    passed over for the state before it.
    """
    candidates = ((guard.state, guard.count), *guard.previous)
    if bad_loss:
        candidates = candidates[1:]
    good, good_count = next(
        ((s, c) for s, c in candidates if _is_finite(s)), guard.verified
    )
    step = _step_number(guard.state, guard.count) + count - guard.count
    where = f"step {step}" + ("" if epoch is None else f" (epoch {epoch + 1})")
    raise TrainingDiverged(
        f"training diverged at {where}: {reason}. The last good state, "
        f"after step {_step_number(good, good_count)}, is kept in the "
        f"exception's .state; try a smaller learning rate",
        good,
        step,
        epoch,
        reason,
    ) from cause


def _guarded_step(
    step: Callable[[Any, Batch], Any], check_every: int, guard: _Guard, batch: Batch
) -> _Guard:
    count = guard.count + 1
    epoch = getattr(batch, "epoch", None)
    try:
        new = step(guard.state, batch)
    except FloatingPointError as exc:
        _diverged(guard, count, epoch, f"a floating-point error ({exc})", exc)
    loss = getattr(new, "loss", None)
    if loss is not None and not np.isfinite(loss):
        _diverged(guard, count, epoch, f"the loss is {loss}", bad_loss=True)
    verified = guard.verified
    if count % check_every == 0:
        if not _is_finite(new):
            _diverged(guard, count, epoch, _not_finite(new))
        if loss is None:
            verified = (new, count)
    return _Guard(new, count, ((guard.state, guard.count),), verified, epoch)


def _split_step(step: Any) -> tuple | None:
    """``(net, loss, optimizer, entropy)`` of a step from :func:`make_step`."""
    if (
        isinstance(step, functools.partial)
        and step.func is _train_step
        and len(step.args) == 4
        and not step.keywords
    ):
        return step.args
    return None


def _fit_in_halves(
    parts: tuple, batches: Iterable[Batch], state: TrainState, check_every: int
) -> TrainState:
    """:func:`fit` for a :func:`make_step` step: the same fold, as a loop.

    Each step runs as the update pending from the batch before, then the
    forward pass and loss on the new state, then its backward pass. The loss
    is checked between the forward and backward passes: when it is not
    finite the state before the update, still at hand, is the last good one;
    when it is, the new state vouches for itself. The gradients go as soon
    as they are applied, the state before the update once the backward pass
    is done: a run holds at most two states, one set of gradients and one
    batch's activations at once. The calls are those of ``_train_step`` in
    the same order, so the result is the same, bit for bit.
    """
    net, loss, optimizer, entropy = parts
    count, epoch, pending = 0, None, None
    verified = (state, 0)
    for batch in batches:
        # ``epoch`` is still that of the batch whose update is pending.
        guard = _Guard(state, count, (), verified, epoch)
        if pending is not None:
            full = (count + 1) % check_every == 0
            state, pending = _apply(optimizer, guard, pending, full), None
            count += 1
            guard = _Guard(state, count, ((guard.state, guard.count),), verified, epoch)
        epoch = getattr(batch, "epoch", None)
        try:
            front = _front(net, loss, entropy, state, batch)
        except FloatingPointError as exc:
            reason = f"a floating-point error ({exc})"
            _diverged(guard, count + 1, epoch, reason, exc, bad_loss=True)
        if not np.isfinite(front[0]):
            reason = f"the loss is {front[0]}"
            _diverged(guard, count + 1, epoch, reason, bad_loss=True)
        # The loss just checked vouches for ``state``; the one before it
        # goes after the backward pass. Let go earlier, its memory would be
        # at the top of the heap with the activations when they are freed,
        # and glibc would hand it back to the system only to fault it in
        # again on the next step.
        try:
            pending = _back(net, optimizer, state, front)
        except FloatingPointError as exc:
            reason = f"a floating-point error ({exc})"
            _diverged(guard, count + 1, epoch, reason, exc)
        del front, guard
    if pending is None:
        return state
    return _apply(optimizer, _Guard(state, count, (), verified, epoch), pending, True)


def _apply(
    optimizer: Optimizer, guard: _Guard, pending: _Pending, full: bool
) -> TrainState:
    """The update pending at ``guard.state``; with ``full``, every array checked."""
    count = guard.count + 1
    try:
        state = _update(optimizer, guard.state, pending)
    except FloatingPointError as exc:
        _diverged(guard, count, guard.epoch, f"a floating-point error ({exc})", exc)
    if full and not _is_finite(state):
        _diverged(guard, count, guard.epoch, _not_finite(state))
    return state


def fit(
    step: Callable[[Any, Batch], Any],
    batches: Iterable[Batch],
    state: Any,
    *,
    check_every: int = 100,
) -> Any:
    """Train: fold ``step`` over ``batches``, starting from ``state``.

    This is ``toolz.reduce(step, batches, state)``, the state after the last
    batch, with a watch for divergence folded in. ``state`` is bare params
    for :func:`gradient_descent` and a :class:`TrainState` for
    :func:`make_step`.

    Divergence: when training produces NaN or infinity, ``fit`` raises
    :class:`TrainingDiverged` naming the step and epoch, with the last
    finite state in its ``.state``. What is checked, and when:

    - every step, the loss of a :class:`TrainState` (a scalar, so free);
      a non-finite param makes the next batch's loss non-finite, so this
      catches divergence one step after it happens;
    - every ``check_every`` steps and after the last one, every array of
      the state (O(params), too slow for every step);
    - a :class:`FloatingPointError` raised inside the step counts as
      divergence too. NumPy's floating-point warnings and errors
      (``np.seterr``) are off while ``fit`` runs: a divergence is reported
      once, by :class:`TrainingDiverged`, and underflow, which is no
      error in training, is not reported at all.

    Memory: to hand back the state before a bad update, ``fit`` keeps one
    earlier state beside the current one. For a step from
    :func:`make_step` it runs the same fold as a loop, each step as the
    update, then the next forward pass and loss, then the backward pass. It
    checks the loss before the backward pass, while the state before the
    update is still at hand, and lets the applied gradients go as soon as
    the update is made: a run holds at most two states, one set of
    gradients and one batch's activations at once. The result is the same,
    bit for bit.

    Guaranteed: the state returned, and ``.state`` of the exception, are
    finite throughout. ``.state`` is the last state with a finite loss
    whenever the loss reveals the divergence (the usual case): params that
    are finite but make the loss overflow are passed over. For bare params, which
    carry no loss, it may be up to ``check_every - 1`` steps older. Should
    a state whose loss was finite still hide a non-finite entry (an infinite
    bias behind a ReLU, say), ``.state`` falls back to the starting state. The
    starting state must be finite (``ValueError`` otherwise).

    Args:
      step: ``(state, batch) -> state``.
      batches: an iterable of ``(X, y)``; :class:`Batch` items also tell
        the epoch for messages.
      state: the starting state.
      check_every: steps between full checks of the state's arrays.
    """
    if not callable(step):
        raise TypeError(
            f"fit: step must be a function (state, batch) -> state, such as "
            f"make_step(...) or gradient_descent(...), got {step!r}"
        )
    check_every = _checks.integer(check_every, "check_every", 1)
    if not _is_finite(state):
        raise ValueError(
            "state holds NaN or infinity before training; expected finite "
            "params and optimizer state"
        )
    start = _Guard(state, 0, (), (state, 0), None)
    parts = _split_step(step)
    # Overflow and NaN are reported once, as TrainingDiverged with the last
    # finite state, rather than as a stream of NumPy warnings first.
    # Underflow is no error in training: small numbers rounding to zero
    # (or to subnormals) is the right result, even under np.seterr(all=...).
    with np.errstate(all="ignore"):
        if parts is not None:
            return _fit_in_halves(parts, batches, state, check_every)
        guard = toolz.reduce(
            functools.partial(_guarded_step, step, check_every), batches, start
        )
    if guard.count % check_every and not _is_finite(guard.state):
        _diverged(
            guard._replace(
                state=guard.previous[0][0],
                count=guard.count - 1,
                previous=guard.previous[1:],
            ),
            guard.count,
            guard.epoch,
            _not_finite(guard.state),
        )
    return guard.state


def trajectory(
    step: Callable[[Any, Batch], Any], batches: Iterable[Batch], state: Any
) -> Iterator[Any]:
    """Every state of training, lazily: ``state``, then one per batch.

    This is ``toolz.accumulate(step, batches, state)``; nothing is computed
    until it is consumed, e.g. with ``toolz.take`` or a ``for`` loop.
    """
    return toolz.accumulate(step, batches, state)


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return int(batch_size)


def _check_data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (samples, features), got shape {X.shape}; for a "
            f"single feature use X.reshape(-1, 1)"
        )
    if y.ndim == 0:
        raise ValueError(
            f"y must be an array with one entry or row per sample, got a "
            f"scalar {y!r}"
        )
    if len(y) != len(X):
        raise ValueError(
            f"X has {len(X)} rows but y has {len(y)}; expected one target "
            f"per sample"
        )
    if len(X) == 0:
        raise ValueError("X has no rows; expected at least one sample")
    for name, a in (("X", X), ("y", y)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        bad = _checks.first_non_finite(a) if a.dtype.kind == "f" else None
        if bad is not None:
            raise ValueError(
                f"{name} contains NaN or infinity (first at index {bad}: "
                f"{a[bad]}); expected finite values"
            )
    return X, y


def _epoch(X, y, batch_size: int, entropy: int, epoch: int) -> Iterator[Batch]:
    order = generator(entropy, epoch).permutation(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start : start + batch_size]
        yield Batch(X[idx], y[idx], epoch)


def epoch_batches(
    X: np.ndarray, y: np.ndarray, batch_size: int, seed: Seed, epoch: int
) -> Iterator[Batch]:
    """The mini-batches of one epoch, in a shuffled order.

    The order is a permutation drawn from ``seed`` and ``epoch`` alone, so
    epoch ``e`` of a resumed run matches epoch ``e`` of an unbroken one.
    Every sample appears once; the last batch keeps the remainder (it may
    be smaller, and losses average over its real size). Each batch is a new
    array gathered by index: the data set itself is never copied whole.
    The arguments are checked at once; the batches come lazily, as
    :class:`Batch` tuples tagged with ``epoch``.
    """
    X, y = _check_data(X, y)
    batch_size = _check_batch_size(batch_size)
    epoch = _checks.integer(epoch, "epoch", 0)
    return _epoch(X, y, batch_size, seed_entropy(seed), epoch)


def batches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: Seed = 0,
    epochs: int = 1,
    start_epoch: int = 0,
) -> Iterator[Batch]:
    """Mini-batches for ``epochs`` epochs, reshuffled each epoch.

    Args:
      X: inputs, shape ``(n, n_features)``.
      y: targets with ``n`` rows.
      batch_size: samples per batch; the last batch of an epoch holds the
        remainder.
      seed: an ``int`` or Generator (not advanced) fixing every epoch's order.
      epochs: how many passes over the data.
      start_epoch: the number of the first epoch (to resume a run).

    The arguments are checked at once; the batches come lazily, as
    :class:`Batch` tuples that know their epoch.
    """
    X, y = _check_data(X, y)
    batch_size = _check_batch_size(batch_size)
    epochs = _checks.integer(epochs, "epochs", 0)
    start_epoch = _checks.integer(start_epoch, "start_epoch", 0)
    entropy = seed_entropy(seed)
    return toolz.concat(
        _epoch(X, y, batch_size, entropy, e)
        for e in range(start_epoch, start_epoch + epochs)
    )


def _n_outputs(net: Layer, params: Mapping[str, np.ndarray]) -> int | None:
    """The width of the network's output, from its last 2-D weight."""
    weights = [v for v in params.values() if np.ndim(v) == 2]
    return weights[-1].shape[1] if weights else None


def prepare(
    net: Layer,
    params: Mapping[str, np.ndarray],
    X: Any,
    y: Any,
    loss: Loss,
) -> tuple[np.ndarray, np.ndarray]:
    """Check a data set once, at the boundary, and convert it for training.

    ``X`` becomes a finite 2-D array in the params' dtype whose width
    matches ``W1``; ``y`` becomes int64 labels in range for
    softmax cross-entropy, or float targets of the output's shape
    otherwise. Raises ``ValueError``/``TypeError`` naming what is wrong.
    """
    _checks.network(net, "prepare")
    _checks.params_for(net, params, "prepare")
    _checks.finite_params(params, "prepare")
    X = _checks.features(X, params, "X")
    k = _n_outputs(net, params)
    shape, kind = np.shape(y), np.asarray(y).dtype.kind
    if loss is softmax_cross_entropy and (
        len(shape) == 1 or (len(shape) == 2 and shape[1] == 1 and kind in "iub")
    ):
        return X, _checks.labels(y, len(X), k, "y")
    y = _checks.targets(y, len(X), k, "y", dtype=X.dtype)
    if loss is binary_cross_entropy and ((y < 0) | (y > 1)).any():
        bad = y[(y < 0) | (y > 1)][0]
        raise ValueError(
            f"y holds the value {bad}, outside [0, 1]; binary cross-entropy "
            f"expects 0/1 labels or probabilities"
        )
    if loss is softmax_cross_entropy and (y < 0).any():
        raise ValueError(
            f"y holds the negative value {y[y < 0][0]}; softmax cross-entropy "
            f"expects one-hot or probability rows"
        )
    return X, y


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose predicted class matches the target.

    Args:
      outputs: the network's outputs (logits), shape ``(n, k)``. With
        several outputs the class is the argmax; with one output (a binary
        logit) the class is 1 where the logit is positive.
      y: integer labels, shape ``(n,)`` or ``(n, 1)``; or one-hot /
        probability rows, shape ``(n, k)``, whose argmax is the class.

    >>> accuracy(np.array([[2.0, 0.1], [0.3, 0.9]]), np.array([0, 0]))
    0.5
    """
    outputs = _checks.as_array(outputs, "outputs")
    if outputs.ndim != 2 or len(outputs) == 0:
        raise ValueError(
            f"accuracy: outputs must be a 2-D array (samples, outputs) with at "
            f"least one row, got shape {outputs.shape}"
        )
    y = _checks.as_array(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.shape == outputs.shape:
        y = y.argmax(axis=1)
    if y.ndim != 1 or len(y) != len(outputs):
        raise ValueError(
            f"accuracy: y has shape {y.shape}; expected {len(outputs)} labels "
            f"(shape ({len(outputs)},)) or rows of shape {outputs.shape}"
        )
    if not _checks.finite(outputs):
        raise ValueError("accuracy: outputs contain NaN or infinity")
    k = max(outputs.shape[1], 2)
    if y.dtype.kind == "f" and not (y == np.round(y)).all():
        raise ValueError(
            f"accuracy: y must hold integer labels, got {y[y != np.round(y)][0]}"
        )
    if y.min() < 0 or y.max() >= k:
        raise ValueError(
            f"accuracy: y contains the label {y.min() if y.min() < 0 else y.max()}; "
            f"expected labels in [0, {k}) for outputs of width {outputs.shape[1]}"
        )
    if outputs.shape[1] == 1:
        predicted = outputs[:, 0] > 0
    else:
        predicted = outputs.argmax(axis=1)
    return float((predicted == y).mean())


def evaluate(
    net: Layer,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    net_state: Mapping[str, np.ndarray] | None = None,
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of the network on a prepared data set."""
    Y, _, _ = _forward(net, params, X, state=net_state)
    value, _ = loss(Y, y)
    return float(value), accuracy(Y, y)
