"""Building, initializing and running networks.

>>> import numpy as np
>>> net = mlp([16], n_outputs=3)
>>> params = init(net, n_features=4, seed=0)
>>> params
Params(W1=float64(4, 16), b1=float64(16,), W2=float64(16, 3), b2=float64(3,))
>>> predict(net, params, np.ones((5, 4))).shape
(5, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from funnet import _checks
from funnet._random import Seed, generator
from funnet.layers import Layer, activation, dense, serial
from funnet.params import Params

__all__ = ["mlp", "init", "init_with_state", "predict", "DTYPES"]

DTYPES = _checks.FLOATS
HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")


def mlp(
    hidden_sizes: Sequence[int],
    n_outputs: int,
    activation_name: str = "relu",
) -> Layer:
    """A multilayer perceptron that outputs logits.

    ``dense(h1), act, dense(h2), act, ..., dense(n_outputs)``: the output
    layer has no activation, since the losses in :mod:`funnet.losses` take
    logits. Hidden layers use He-uniform initialization with ReLU and
    Glorot-uniform otherwise; biases start at zero.

    Args:
      hidden_sizes: units in each hidden layer, e.g. ``[128, 64]``; may be
        empty (a linear model).
      n_outputs: units in the output layer (classes, or 1 for a binary
        target).
      activation_name: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or
        ``"identity"``.
    """
    if isinstance(hidden_sizes, (int, np.integer)):
        hidden_sizes = [hidden_sizes]
    if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
        raise TypeError(
            f"mlp: hidden_sizes must be a list of ints such as [128, 64], got "
            f"{hidden_sizes!r}"
        )
    if activation_name not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"mlp: activation_name must be one of {list(HIDDEN_ACTIVATIONS)} "
            f"for hidden layers, got {activation_name!r}"
        )
    w_init = "he_uniform" if activation_name == "relu" else "glorot_uniform"
    layers = []
    for size in hidden_sizes:
        layers += [dense(size, W_init=w_init), activation(activation_name)]
    layers.append(dense(n_outputs, W_init="glorot_uniform"))
    return serial(*layers)


def init_with_state(
    net: Layer, n_features: int, seed: Seed = 0, dtype: Any = np.float64
) -> tuple[Params, Params]:
    """Parameters and non-trainable state for ``net`` (state is empty for most nets).

    Args:
      net: a layer, usually built with :func:`serial` or :func:`mlp`.
      n_features: the number of input features.
      seed: an ``int`` or a :class:`numpy.random.Generator` (not advanced).
      dtype: ``float32`` or ``float64``.
    """
    if not isinstance(net, Layer):
        raise TypeError(f"net must be a funnet Layer, got {type(net).__name__}")
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise TypeError(f"n_features must be an int, got {n_features!r}")
    if n_features < 1:
        raise ValueError(f"n_features must be at least 1, got {n_features}")
    out = net.init(generator(seed), int(n_features), _checks.float_dtype(dtype))
    state = out[2] if "state" in net.needs else {}
    return Params._own(out[1]), Params._own(state)


def init(
    net: Layer, n_features: int, seed: Seed = 0, dtype: Any = np.float64
) -> Params:
    """Initial parameters for ``net`` on inputs with ``n_features`` columns.

    The same ``seed`` gives bit-identical params; NumPy's global random state
    is neither read nor changed.
    """
    return init_with_state(net, n_features, seed, dtype)[0]


def predict(
    net: Layer,
    params: Mapping[str, np.ndarray],
    X: Any,
    state: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The network's outputs for ``X`` of shape ``(n, n_features)``, in prediction mode.

    ``X`` is checked (2-D, finite, matching ``W1``) and converted to the
    params' dtype.
    """
    _checks.network(net, "predict")
    _checks.params_for(net, params, "predict")
    X = _checks.features(X, params, "X")
    _checks.finite_params(params, "predict")
    if "state" in net.needs and state is None:
        raise ValueError(
            "this network has non-trainable state; pass state=... (from "
            "init_with_state or the training state)"
        )
    try:
        with np.errstate(over="raise", invalid="raise"):
            Y = _forward(net, params, X, state=state)[0]
    except FloatingPointError as exc:
        big = max(float(np.abs(v).max()) for v in params.values() if np.size(v))
        raise ValueError(
            f"predict: the outputs overflowed ({exc}); X holds values up to "
            f"{np.abs(X).max():.3g} and the params up to {big:.3g}, too large "
            f"together: scale the inputs (e.g. funnet.datasets.standardize), "
            f"or, if the params are that large, train them again with a "
            f"smaller learning rate"
        ) from None
    except ValueError as exc:
        shapes = ", ".join(f"{k}{tuple(np.shape(v))}" for k, v in params.items())
        raise ValueError(
            f"predict: params with shapes {shapes} do not fit together in "
            f"the network {net.name}: {exc}"
        ) from None
    return Y


def _forward(net: Layer, params, X, *, training=False, rng=None, state=None):
    """Call ``net.forward`` with just the keyword arguments it declared."""
    needs = net.needs
    if not needs:
        Y, cache = net.forward(params, X)
        return Y, cache, state
    kwargs: dict[str, Any] = {}
    if "training" in needs:
        kwargs["training"] = training
    if "rng" in needs:
        kwargs["rng"] = rng
    if "state" in needs:
        Y, cache, new_state = net.forward(params, X, state=state, **kwargs)
        return Y, cache, Params._own(new_state)
    Y, cache = net.forward(params, X, **kwargs)
    return Y, cache, state
