r"""funnet: a functional, pure-array neural-network library on NumPy.

The contract every part follows
-------------------------------
- **Params** are a :class:`Params`: an immutable flat mapping from names
  (``W1, b1, W2, b2, ...``) to read-only arrays.
- **A layer** is ``(init, forward, backward)``:
  ``init(rng, n_in, dtype) -> (n_out, params)``,
  ``forward(params, X) -> (Y, cache)``,
  ``backward(params, cache, dY) -> (grads, dX)``. :func:`serial` chains
  layers into a network with the same three functions.
- **A loss** is ``loss(outputs, targets) -> (value, d_outputs)``, computed
  from logits.
- **An optimizer** is ``(init, update)``: ``init(params) -> opt_state``,
  ``update(grads, opt_state, params) -> (updates, opt_state)``; gradient
  transformations have the same shape and :func:`chain` composes them.
  A learning rate is a number or a schedule (:mod:`funnet.schedules`).
- **A step** is ``state -> batch -> state``, and **training is a fold**:
  :func:`fit` is ``toolz.reduce(step, batches, state)``.

Arrays are batch-first: ``X`` has shape ``(samples, features)`` and a dense
layer computes ``Z = X @ W + b``, the transpose of the column-per-sample
``Z[l] = W[l] A[l-1] + b[l]``.

>>> import numpy as np
>>> import funnet
>>> X, y = funnet.datasets.load("digits")
>>> net = funnet.mlp([32], n_outputs=10)
>>> params = funnet.init(net, n_features=64, seed=0)
>>> step = funnet.gradient_descent(net, funnet.softmax_cross_entropy, 0.01)
>>> params = funnet.fit(step, funnet.batches(X / 16, y, 64, seed=0), params)
>>> sorted(params)
['W1', 'W2', 'b1', 'b2']
"""

from funnet import (
    checkpoint,
    datasets,
    initializers,
    layers,
    losses,
    optimizers,
    schedules,
)
from funnet.layers import (
    Layer,
    dense,
    dropout,
    identity,
    relu,
    serial,
    sigmoid,
    softmax,
    tanh,
)
from funnet.losses import (
    binary_cross_entropy,
    mean_squared_error,
    softmax_cross_entropy,
)
from funnet.models import init, init_with_state, mlp, predict
from funnet.optimizers import (
    Optimizer,
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
from funnet.training import (
    Batch,
    TrainingDiverged,
    TrainState,
    accuracy,
    batches,
    epoch_batches,
    evaluate,
    fit,
    gradient_descent,
    init_train_state,
    make_step,
    prepare,
    trajectory,
    value_and_grad,
)

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "Layer",
    "OptState",
    "Optimizer",
    "Params",
    "TrainState",
    "TrainingDiverged",
    "accuracy",
    "adagrad",
    "adam",
    "adamw",
    "apply_updates",
    "batches",
    "binary_cross_entropy",
    "chain",
    "checkpoint",
    "clip_by_global_norm",
    "clip_by_value",
    "datasets",
    "dense",
    "dropout",
    "epoch_batches",
    "evaluate",
    "fit",
    "gradient_descent",
    "identity",
    "init",
    "init_train_state",
    "init_with_state",
    "initializers",
    "layers",
    "losses",
    "make_step",
    "mean_squared_error",
    "mlp",
    "momentum",
    "nesterov",
    "optimizers",
    "predict",
    "prepare",
    "relu",
    "rmsprop",
    "scale_by_schedule",
    "schedules",
    "serial",
    "sgd",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "tanh",
    "trajectory",
    "value_and_grad",
    "weight_decay",
]
