r"""Layers: records of pure functions, and ``serial`` to chain them.

The layer protocol
------------------
A :class:`Layer` is a named tuple of three pure functions and a little data:

``init(rng, n_in, dtype) -> (n_out, params)``
    Draws the layer's parameters from the Generator ``rng`` for inputs with
    ``n_in`` features. ``params`` is a dict keyed by the layer's local names
    (``{"W": ..., "b": ...}`` for :func:`dense`, ``{}`` for activations).
``forward(params, X) -> (Y, cache)``
    Maps a batch ``X`` of shape ``(n, n_in)`` to ``Y`` of shape
    ``(n, n_out)``. ``cache`` is plain data that ``backward`` needs.
``backward(params, cache, dY) -> (grads, dX)``
    The chain rule for this layer: from :math:`\partial L/\partial Y` to the
    gradient of every parameter (a dict with the same keys as ``params``)
    and :math:`\partial L/\partial X`.

Layers that need more say so in ``needs``, and only they receive it as
keyword arguments of ``forward``:

``"rng"``
    a fresh :class:`numpy.random.Generator` for this step (dropout).
``"training"``
    ``True`` while training, ``False`` for prediction.
``"state"``
    non-trainable state such as running statistics. ``init`` then returns
    ``(n_out, params, state)`` and ``forward`` takes ``state=`` and returns
    ``(Y, cache, new_state)``; the state is carried beside the params, never
    differentiated, never touched by an optimizer.

Batch-first convention
----------------------
Textbooks write one sample per column: :math:`Z^{[l]} = W^{[l]} A^{[l-1]} +
b^{[l]}` with :math:`W^{[l]}` of shape ``(n_l, n_{l-1})`` and
:math:`A^{[l-1]}` of shape ``(n_{l-1}, m)``. funnet keeps one sample per row,
as NumPy and scikit-learn do, so every array is the transpose of the
textbook's:

.. math:: Z = A W + b, \qquad Z = (W^{[l]} A^{[l-1]})^T = A^T W^{[l]T}

Here ``A`` is :math:`A^{[l-1]T}` with shape ``(m, n_{l-1})``, ``W`` is
:math:`W^{[l]T}` with shape ``(n_{l-1}, n_l)``, and ``b`` has shape
``(n_l,)``, broadcast over the rows. The backward pass transposes the same
way: :math:`dW = A^T dZ`, :math:`db = \sum_{rows} dZ`, :math:`dA = dZ W^T`.

>>> import numpy as np
>>> net = serial(dense(3), relu(), dense(2))
>>> net.param_names
('W1', 'b1', 'W2', 'b2')
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funnet import initializers

__all__ = [
    "Layer",
    "dense",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "identity",
    "dropout",
    "serial",
    "activation",
    "ACTIVATIONS",
]


class Layer(NamedTuple):
    r"""A layer: three pure functions plus the names of its parameters.

    Attributes:
      init: ``(rng, n_in, dtype) -> (n_out, params)``.
      forward: ``(params, X) -> (Y, cache)``.
      backward: ``(params, cache, dY) -> (grads, dX)``.
      name: a readable name, used in messages and reprs.
      param_names: the local keys ``init`` returns, e.g. ``("W", "b")``.
      needs: extra keyword arguments ``forward`` takes: any of ``"rng"``,
        ``"training"``, ``"state"`` (see the module docstring).
      state_names: the local keys of non-trainable state, if ``"state"``
        is in ``needs``.
      backward_params: optional ``(params, cache, dY) -> grads``, the
        parameter gradients alone. A network's first layer never needs
        :math:`\partial L/\partial X`, and skipping it saves a matrix
        product per step.
    """

    init: Callable[..., tuple]
    forward: Callable[..., tuple]
    backward: Callable[..., tuple[dict, np.ndarray]]
    name: str = "layer"
    param_names: tuple[str, ...] = ()
    needs: frozenset[str] = frozenset()
    state_names: tuple[str, ...] = ()
    backward_params: Callable[..., dict] | None = None


def _no_params(rng, n_in, dtype):
    return n_in, {}


def _elementwise(name: str, fn, grad_from) -> Layer:
    """An activation layer from ``fn`` and ``grad_from(Z, Y, dY) -> dZ``."""

    def forward(params, Z):
        Y = fn(Z)
        return Y, (Z, Y)

    def backward(params, cache, dY):
        Z, Y = cache
        return {}, grad_from(Z, Y, dY)

    return Layer(_no_params, forward, backward, name)


def dense(
    n_out: int,
    W_init: str | initializers.Initializer = "glorot_uniform",
    b_init: str | initializers.Initializer = "zeros",
) -> Layer:
    r"""A fully connected layer, :math:`Z = X W + b`.

    Args:
      n_out: the number of output units.
      W_init: initializer for ``W`` (a name or a function), shape
        ``(n_in, n_out)``.
      b_init: initializer for ``b``, shape ``(n_out,)``.

    Forward: ``X`` of shape ``(n, n_in)`` to ``Z = X @ W + b``, shape
    ``(n, n_out)``. Backward, for :math:`dZ = \partial L/\partial Z`:

    .. math:: dW = X^T dZ, \quad db = \textstyle\sum_i dZ_{i,:},
              \quad dX = dZ\, W^T

    >>> import numpy as np
    >>> layer = dense(2)
    >>> n_out, p = layer.init(np.random.default_rng(0), 3, np.float64)
    >>> p["W"].shape, p["b"].shape
    ((3, 2), (2,))
    >>> Z, cache = layer.forward(p, np.ones((4, 3)))
    >>> Z.shape
    (4, 2)
    """
    if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)):
        raise TypeError(f"dense: n_out must be an int, got {n_out!r}")
    if n_out < 1:
        raise ValueError(f"dense: n_out must be at least 1, got {n_out}")
    W_fn, b_fn = initializers.get(W_init), initializers.get(b_init)

    def init(rng, n_in, dtype):
        W = W_fn(rng, (n_in, n_out), dtype)
        b = b_fn(rng, (n_out,), dtype)
        return n_out, {"W": W, "b": b}

    def forward(params, X):
        # The product is a fresh array: adding the bias into it saves a
        # second array of the output's size on every call.
        Z = X @ params["W"]
        Z += params["b"]
        return Z, X

    def backward_params(params, X, dZ):
        # The bias gradient as a matrix-vector product: BLAS sums the
        # columns about twice as fast as a reduction over axis 0.
        return {"W": X.T @ dZ, "b": np.ones(len(dZ), dZ.dtype) @ dZ}

    def backward(params, X, dZ):
        return backward_params(params, X, dZ), dZ @ params["W"].T

    return Layer(
        init,
        forward,
        backward,
        f"dense({n_out})",
        ("W", "b"),
        backward_params=backward_params,
    )


def _relu_forward(params, Z):
    # Y > 0 exactly where Z > 0 (NaN included: both comparisons are false),
    # so the output alone serves the backward pass, and Z can be freed as
    # soon as the next layer is done with it.
    Y = np.maximum(Z, 0)
    return Y, Y


def _relu_backward(params, Y, dY):
    # The derivative is 1 where Z > 0 and 0 elsewhere, 0 at Z == 0 included.
    # The mask is cast to dY's dtype once and multiplied in place: a product
    # with a boolean array casts inside the loop and runs slower, np.where
    # slower still.
    mask = (Y > 0).astype(dY.dtype)
    mask *= dY
    return {}, mask


def _sigmoid(Z):
    # exp of a non-positive number never overflows: use e^{-|z|} on both sides.
    # It may underflow to 0 for large |z|, which is the right value.
    with np.errstate(under="ignore"):
        E = np.exp(-np.abs(Z))
        return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def _sigmoid_grad(Z, Y, dY):
    # sigma'(z) = e^{-|z|} / (1 + e^{-|z|})^2, symmetric in z. Unlike
    # Y * (1 - Y) it keeps full relative precision where Y rounds to 1.
    with np.errstate(under="ignore"):
        E = np.exp(-np.abs(Z))
        return dY * (E / ((1 + E) * (1 + E)))


def _softmax(Z):
    with np.errstate(under="ignore"):
        E = np.exp(Z - Z.max(axis=-1, keepdims=True))
        return E / E.sum(axis=-1, keepdims=True)


def _softmax_grad(Z, Y, dY):
    # Jacobian-vector product of row-wise softmax: Y * (dY - <dY, Y>).
    with np.errstate(under="ignore"):
        return Y * (dY - (dY * Y).sum(axis=-1, keepdims=True))


def _tanh_grad(Z, Y, dY):
    with np.errstate(under="ignore"):  # Y * Y of a tiny Y rounds to 0
        return dY * (1 - Y * Y)


def relu() -> Layer:
    r"""Rectified linear unit, :math:`\max(Z, 0)`; derivative 1 where Z > 0, else 0."""
    return Layer(_no_params, _relu_forward, _relu_backward, "relu")


def sigmoid() -> Layer:
    r"""Logistic sigmoid :math:`1/(1+e^{-Z})`, computed without overflow.

    Derivative: :math:`\sigma(Z)(1-\sigma(Z)) = e^{-|Z|}/(1+e^{-|Z|})^2`,
    computed in the second form, which stays accurate where
    :math:`\sigma(Z)` rounds to 1.
    """
    return _elementwise("sigmoid", _sigmoid, _sigmoid_grad)


def tanh() -> Layer:
    r"""Hyperbolic tangent; derivative :math:`1 - \tanh^2 Z`."""
    return _elementwise("tanh", np.tanh, _tanh_grad)


def softmax() -> Layer:
    r"""Row-wise softmax :math:`e^{Z_j - \max Z} / \sum_k e^{Z_k - \max Z}`.

    Subtracting the row maximum keeps every exponent at most 0, so large
    logits never overflow. For training, prefer feeding logits to
    :func:`funnet.losses.softmax_cross_entropy`, which fuses the two stably.
    """
    return _elementwise("softmax", _softmax, _softmax_grad)


def identity() -> Layer:
    """The identity; useful as a placeholder output activation."""
    return _elementwise("identity", lambda Z: Z, lambda Z, Y, dY: dY)


def dropout(drop_prob: float) -> Layer:
    """Inverted dropout: while training, zero each unit with ``drop_prob``.

    Kept units are scaled by ``1 / (1 - drop_prob)`` so that prediction
    (``training=False``) is the identity. The mask comes from the ``rng``
    the training step passes in, derived from the run's seed and the step
    count, so runs are reproducible and resumable.
    """
    if isinstance(drop_prob, bool) or not isinstance(drop_prob, numbers.Real):
        raise TypeError(f"dropout: drop_prob must be a number, got {drop_prob!r}")
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"dropout: drop_prob must be in [0, 1), got {drop_prob!r}")
    keep = 1.0 - drop_prob

    def forward(params, X, *, rng=None, training=False):
        if not training or drop_prob == 0.0:
            return X, None
        if rng is None:
            raise ValueError(
                "dropout: training=True needs an rng; pass rng=... to forward"
            )
        mask = (rng.random(X.shape) < keep) / np.asarray(keep, X.dtype)
        mask = mask.astype(X.dtype, copy=False)
        return X * mask, mask

    def backward(params, mask, dY):
        return {}, dY if mask is None else dY * mask

    return Layer(
        _no_params,
        forward,
        backward,
        f"dropout({drop_prob})",
        needs=frozenset({"rng", "training"}),
    )


ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "identity": identity,
}


def activation(name: str) -> Layer:
    """The activation layer called ``name`` (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None


def _flat_names(layers: tuple[Layer, ...], attr: str) -> list[dict[str, str]]:
    """For each layer, a map from its local names to unique flat names.

    Layers with parameters are numbered from 1 in order; a local name gets
    its layer's number appended (``W`` of the second such layer is ``W2``),
    or ``_<number>`` if it already ends in a digit (a nested ``serial``).
    """
    maps, seen, count = [], {}, 0
    for layer in layers:
        local = getattr(layer, attr)
        if local:
            count += 1
        names = {}
        for key in local:
            flat = f"{key}_{count}" if key[-1:].isdigit() else f"{key}{count}"
            if flat in seen:
                raise ValueError(
                    f"serial: layers {seen[flat]} and {layer.name} both "
                    f"produce the parameter name {flat!r}; rename one"
                )
            seen[flat] = layer.name
            names[key] = flat
        maps.append(names)
    return maps


def serial(*layers: Layer) -> Layer:
    """Chain layers into one layer whose params are a flat, readable mapping.

    The result is itself a :class:`Layer`, so networks nest. Its params are
    keyed ``W1, b1, W2, b2, ...``: each layer that has parameters gets the
    next number, activations get none. ``needs`` is the union of the
    layers' needs; each layer receives only what it asked for.

    >>> import numpy as np
    >>> net = serial(dense(4), tanh(), dense(3))
    >>> n_out, p = net.init(np.random.default_rng(0), 5, np.float64)
    >>> n_out, sorted(p)
    (3, ['W1', 'W2', 'b1', 'b2'])
    >>> Y, cache = net.forward(p, np.zeros((2, 5)))
    >>> Y.shape
    (2, 3)
    """
    if not layers:
        raise ValueError("serial needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"serial: argument {i} must be a Layer (call the constructor, "
                f"e.g. relu() rather than relu), got {layer!r}"
            )
    layers = tuple(layers)
    names = _flat_names(layers, "param_names")
    state_names = _flat_names(layers, "state_names")
    needs = frozenset().union(*(layer.needs for layer in layers))
    stateful = "state" in needs
    flat_names = tuple(f for m in names for f in m.values())
    plan = tuple(
        (layer, tuple(m.items()), tuple(s.items()), layer.needs)
        for layer, m, s in zip(layers, names, state_names)
    )

    def init(rng, n_in, dtype):
        params, state = {}, {}
        n = n_in
        for layer, pmap, smap, lneeds in plan:
            out = layer.init(rng, n, dtype)
            n, p = out[0], out[1]
            params.update((flat, p[local]) for local, flat in pmap)
            if "state" in lneeds:
                state.update((flat, out[2][local]) for local, flat in smap)
        return (n, params, state) if stateful else (n, params)

    def forward(params, X, *, rng=None, training=False, state=None):
        caches = []
        new_state = {}
        for layer, pmap, smap, lneeds in plan:
            p = {local: params[flat] for local, flat in pmap}
            if not lneeds:
                X, cache = layer.forward(p, X)
            else:
                kwargs: dict[str, Any] = {}
                if "rng" in lneeds:
                    kwargs["rng"] = rng
                if "training" in lneeds:
                    kwargs["training"] = training
                if "state" in lneeds:
                    kwargs["state"] = {local: state[flat] for local, flat in smap}
                    X, cache, s = layer.forward(p, X, **kwargs)
                    new_state.update((flat, s[local]) for local, flat in smap)
                else:
                    X, cache = layer.forward(p, X, **kwargs)
            caches.append(cache)
        if stateful:
            return X, caches, new_state
        return X, caches

    def run_backward(params, caches, dY, input_grad):
        grads = {}
        last = len(plan) - 1
        for i, ((layer, pmap, _, _), cache) in enumerate(
            zip(reversed(plan), reversed(caches))
        ):
            p = {local: params[flat] for local, flat in pmap}
            if i == last and not input_grad and layer.backward_params:
                g, dY = layer.backward_params(p, cache, dY), None
            else:
                g, dY = layer.backward(p, cache, dY)
            grads.update((flat, g[local]) for local, flat in pmap)
        # Report gradients in the params' order, W1 first.
        return {key: grads[key] for key in flat_names}, dY

    def backward(params, caches, dY):
        return run_backward(params, caches, dY, True)

    def backward_params(params, caches, dY):
        # The first layer skips the gradient of the network's input.
        return run_backward(params, caches, dY, False)[0]

    label = "serial(" + ", ".join(layer.name for layer in layers) + ")"
    flat_state = tuple(f for m in state_names for f in m.values())
    return Layer(
        init,
        forward,
        backward,
        label,
        flat_names,
        needs,
        flat_state,
        backward_params,
    )
