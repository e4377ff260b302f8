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
from funnet.params import Params, tree_map2

__all__ = [
    "TrainState",
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

Batch = tuple[np.ndarray, np.ndarray]


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


def _param_grads(net: Layer, params, cache, dY) -> Params:
    if net.backward_params is not None:
        return Params._own(net.backward_params(params, cache, dY))
    return Params._own(net.backward(params, cache, dY)[0])


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
    """

    def value_and_grad_fn(params, X, y):
        Y, cache, _ = _forward(net, params, X)
        value, dY = loss(Y, y)
        return value, _param_grads(net, params, cache, dY)

    return value_and_grad_fn


def _sgd_step(net: Layer, loss: Loss, learning_rate: float, params: Params, batch: Batch) -> Params:
    X, y = batch
    Y, cache, _ = _forward(net, params, X)
    _, dY = loss(Y, y)
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
    if "state" in net.needs or "rng" in net.needs:
        raise ValueError(
            "gradient_descent works on bare params; this network has "
            f"{sorted(net.needs & {'state', 'rng'})}, so use make_step with "
            "an optimizer such as funnet.optimizers.sgd"
        )
    if not float(learning_rate) > 0:
        raise ValueError(
            f"learning_rate must be a positive number, got {learning_rate!r}"
        )
    return functools.partial(_sgd_step, net, loss, float(learning_rate))


def _train_step(
    net: Layer, loss: Loss, optimizer: Optimizer, entropy: int,
    state: TrainState, batch: Batch,
) -> TrainState:
    X, y = batch
    params = state.params
    rng = generator(entropy, state.step) if "rng" in net.needs else None
    Y, cache, net_state = _forward(
        net, params, X, training=True, rng=rng, state=state.net_state
    )
    value, dY = loss(Y, y)
    grads = _param_grads(net, params, cache, dY)
    # Dropping each temporary as soon as it is used lets the allocator hand
    # its still-cached memory to the next arrays of the same size.
    del Y, cache, dY
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    del grads
    return TrainState(
        apply_updates(params, updates), opt_state, state.step + 1, value, net_state
    )


def make_step(
    net: Layer, loss: Loss, optimizer: Optimizer, seed: Seed = 0
) -> Callable[[TrainState, Batch], TrainState]:
    """A training step ``TrainState -> batch -> TrainState`` with any optimizer.

    forward (training mode) -> loss -> backward -> ``optimizer.update`` ->
    :func:`~funnet.optimizers.apply_updates`. Layers that draw random
    numbers (dropout) get a generator derived from ``seed`` and the step
    count, so the same run always draws the same masks.
    """
    return functools.partial(_train_step, net, loss, optimizer, seed_entropy(seed))


def init_train_state(
    params: Mapping[str, np.ndarray],
    optimizer: Optimizer,
    net_state: Mapping[str, np.ndarray] | None = None,
) -> TrainState:
    """The starting :class:`TrainState`: params, fresh optimizer state, step 0."""
    params = params if isinstance(params, Params) else Params(params)
    net_state = Params(net_state or {})
    return TrainState(params, optimizer.init(params), 0, None, net_state)


def fit(step: Callable[[Any, Batch], Any], batches: Iterable[Batch], state: Any) -> Any:
    """Train: fold ``step`` over ``batches``, starting from ``state``.

    This is ``toolz.reduce(step, batches, state)``: the state after the last
    batch. ``state`` is bare params for :func:`gradient_descent` and a
    :class:`TrainState` for :func:`make_step`.
    """
    return toolz.reduce(step, batches, state)


def trajectory(step: Callable[[Any, Batch], Any], batches: Iterable[Batch], state: Any) -> Iterator[Any]:
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


def epoch_batches(X: np.ndarray, y: np.ndarray, batch_size: int, seed: Seed, epoch: int) -> Iterator[Batch]:
    """The mini-batches of one epoch, in a shuffled order.

    The order is a permutation drawn from ``seed`` and ``epoch`` alone, so
    epoch ``e`` of a resumed run matches epoch ``e`` of an unbroken one.
    Every sample appears once; the last batch keeps the remainder (it may
    be smaller, and losses average over its real size). Each batch is a new
    array gathered by index: the data set itself is never copied whole.
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(
            f"X has {n} rows but y has {len(y)}; expected one target per sample"
        )
    order = generator(seed, epoch).permutation(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


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
    """
    batch_size = _check_batch_size(batch_size)
    entropy = seed_entropy(seed)
    return toolz.concat(
        epoch_batches(X, y, batch_size, entropy, e)
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
    X = _checks.features(X, params, "X")
    k = _n_outputs(net, params)
    if loss is softmax_cross_entropy and np.ndim(y) == 1:
        return X, _checks.labels(y, len(X), k, "y")
    y = _checks.targets(y, len(X), k, "y", dtype=X.dtype)
    if loss is binary_cross_entropy and ((y < 0) | (y > 1)).any():
        raise ValueError(
            "y holds values outside [0, 1]; binary cross-entropy expects 0/1 "
            "labels or probabilities"
        )
    return X, y


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose prediction matches the label.

    Several outputs: the class is the argmax. One output (binary logits):
    the class is 1 where the logit is positive.
    """
    y = np.asarray(y).reshape(len(outputs), -1)[:, 0] if np.ndim(y) == 2 and np.shape(y)[1] == 1 else np.asarray(y)
    if outputs.shape[1] == 1:
        predicted = (outputs[:, 0] > 0).astype(np.int64)
    else:
        predicted = outputs.argmax(axis=1)
    if y.ndim == 2:
        y = y.argmax(axis=1)
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
