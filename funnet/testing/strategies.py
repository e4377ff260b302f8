"""Hypothesis strategies for layers, networks, params, batches and rates.

Every strategy takes plain values or strategies for its sizes, so they
compose: ``features(sizes(1, 4), 3)`` draws a batch of one to four rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funnet._random import generator
from funnet.layers import Layer, activation, dense, serial
from funnet.params import Params
from funnet.testing._common import _FLOATS, _float_dtype, _one_hot

__all__ = [
    "dtypes",
    "sizes",
    "layer_sizes",
    "networks",
    "params_for",
    "features",
    "logits",
    "labels",
    "one_hot",
    "probabilities",
    "binary_targets",
    "classification_batches",
    "LayerCase",
    "layer_cases",
    "learning_rates",
    "schedules",
]


def _strategy(value: Any) -> st.SearchStrategy:
    """``value`` itself if it is a strategy, else a strategy that gives it."""
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def dtypes() -> st.SearchStrategy[np.dtype]:
    """The floating dtypes funnet supports: float32 and float64.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(dtypes())
    ... def test(dtype):
    ...     assert dtype in (np.float32, np.float64)
    >>> test()
    """
    return st.sampled_from(_FLOATS)


def sizes(min_value: int = 1, max_value: int = 6) -> st.SearchStrategy[int]:
    """A number of samples, features or units in ``[min_value, max_value]``.

    Small by default: gradient checks cost two forward passes per entry.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(sizes(2, 4))
    ... def test(n):
    ...     assert 2 <= n <= 4
    >>> test()
    """
    return st.integers(min_value, max_value)


def layer_sizes(
    min_hidden: int = 0, max_hidden: int = 2, min_size: int = 1, max_size: int = 6
) -> st.SearchStrategy[tuple[int, ...]]:
    """Widths of a multilayer perceptron, ``(n_in, h_1, ..., h_m, n_out)``.

    Args:
      min_hidden: the fewest hidden layers ``m``.
      max_hidden: the most hidden layers.
      min_size: the smallest width of any layer.
      max_size: the largest width of any layer.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(layer_sizes(max_hidden=1))
    ... def test(widths):
    ...     assert 2 <= len(widths) <= 3
    >>> test()
    """
    return st.lists(
        sizes(min_size, max_size), min_size=min_hidden + 2, max_size=max_hidden + 2
    ).map(tuple)


def networks(
    min_hidden: int = 0,
    max_hidden: int = 2,
    max_width: int = 6,
    n_outputs: int | st.SearchStrategy[int] | None = None,
    activations: tuple[str, ...] = ("relu", "tanh", "sigmoid", "identity"),
) -> st.SearchStrategy[Layer]:
    """Networks ``dense, act, ..., dense`` built with :func:`~funnet.serial`.

    Each hidden layer gets its own activation drawn from ``activations``;
    the last layer is a bare :func:`~funnet.dense` that outputs logits.

    Args:
      min_hidden: the fewest hidden layers.
      max_hidden: the most hidden layers.
      max_width: the largest number of units in a layer.
      n_outputs: the output width (an int or a strategy); drawn in
        ``[1, max_width]`` if ``None``.
      activations: names of :data:`funnet.layers.ACTIVATIONS` to draw from.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(networks(n_outputs=3))
    ... def test(net):
    ...     n_out, _ = net.init(np.random.default_rng(0), 4, np.float64)
    ...     assert n_out == 3
    >>> test()
    """
    outputs = sizes(1, max_width) if n_outputs is None else _strategy(n_outputs)

    @st.composite
    def draw_network(draw):
        hidden = draw(
            st.lists(
                st.tuples(sizes(1, max_width), st.sampled_from(activations)),
                min_size=min_hidden,
                max_size=max_hidden,
            )
        )
        layers = []
        for width, name in hidden:
            layers += [dense(width), activation(name)]
        return serial(*layers, dense(draw(outputs)))

    return draw_network()


def params_for(
    net: Layer, n_in: int, dtype: Any = np.float64, noise: float = 0.1
) -> st.SearchStrategy[Params]:
    """Parameters for ``net`` on ``n_in`` features: finite and well scaled.

    A seed is drawn and ``net.init`` runs with it, so weights have the scale
    their initializer gives them. Then every entry gets independent
    Gaussian noise of standard deviation ``noise``, so that biases
    initialized to zero are not zero: no unit sits exactly at a kink such
    as ReLU's at 0, where finite differences are meaningless.

    Args:
      net: any layer, e.g. a network from :func:`networks`.
      n_in: the number of input features.
      dtype: float32 or float64; every array has it.
      noise: standard deviation of the noise added to every entry.

    >>> from hypothesis import given, settings
    >>> from funnet.layers import dense
    >>> @settings(max_examples=5)
    ... @given(params_for(dense(2), 3, np.float32))
    ... def test(params):
    ...     assert params["W"].shape == (3, 2)
    ...     assert params["b"].dtype == np.float32
    >>> test()
    """
    dt = _float_dtype(dtype)

    def build(seed: int) -> Params:
        rng = generator(seed)
        out = net.init(rng, n_in, dt)
        return Params._own(
            {
                k: (v + noise * rng.standard_normal(np.shape(v))).astype(dt)
                for k, v in out[1].items()
            }
        )

    return st.integers(0, 2**32 - 1).map(build)


def _elements(dtype: np.dtype, max_abs: float) -> st.SearchStrategy[float]:
    return st.floats(
        -max_abs,
        max_abs,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=8 * dtype.itemsize,
    )


def features(
    n_samples: int | st.SearchStrategy[int],
    n_features: int | st.SearchStrategy[int],
    dtype: Any = np.float64,
    max_abs: float = 4.0,
) -> st.SearchStrategy[np.ndarray]:
    """A batch ``X`` of shape ``(n_samples, n_features)`` with finite values.

    Values lie in ``[-max_abs, max_abs]``; hypothesis favours simple ones
    (0, 1, -1, 0.5) and shrinks failures towards them. ``dtype`` may be a
    strategy such as :func:`dtypes`.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(features(sizes(1, 3), 4, np.float32))
    ... def test(X):
    ...     assert X.shape[1] == 4 and X.dtype == np.float32
    ...     assert np.abs(X).max() <= 4
    >>> test()
    """
    if isinstance(dtype, st.SearchStrategy):
        return dtype.flatmap(lambda dt: features(n_samples, n_features, dt, max_abs))
    dt = _float_dtype(dtype)
    shape = st.tuples(_strategy(n_samples), _strategy(n_features))
    return hnp.arrays(dt, shape, elements=_elements(dt, max_abs))


def logits(
    n_samples: int | st.SearchStrategy[int],
    n_classes: int | st.SearchStrategy[int],
    dtype: Any = np.float64,
    max_abs: float = 30.0,
) -> st.SearchStrategy[np.ndarray]:
    """Raw network outputs ``Z`` of shape ``(n_samples, n_classes)``.

    Like :func:`features` with a wider range, so that softmax rows range
    from nearly uniform to nearly one-hot. With the default ``max_abs`` every
    softmax entry stays above the smallest normal float32.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(logits(2, 3))
    ... def test(Z):
    ...     assert Z.shape == (2, 3)
    >>> test()
    """
    return features(n_samples, n_classes, dtype, max_abs)


def labels(
    n_samples: int | st.SearchStrategy[int], n_classes: int
) -> st.SearchStrategy[np.ndarray]:
    """Integer class labels, shape ``(n_samples,)``, values in ``[0, n_classes)``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(labels(4, 3))
    ... def test(y):
    ...     assert y.shape == (4,) and y.dtype == np.int64
    ...     assert ((0 <= y) & (y < 3)).all()
    >>> test()
    """
    return hnp.arrays(
        np.int64, _strategy(n_samples), elements=st.integers(0, n_classes - 1)
    )


def one_hot(
    n_samples: int | st.SearchStrategy[int], n_classes: int, dtype: Any = np.float64
) -> st.SearchStrategy[np.ndarray]:
    """One-hot target rows, shape ``(n_samples, n_classes)``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(one_hot(3, 4))
    ... def test(T):
    ...     assert (T.sum(axis=1) == 1).all() and set(T.ravel()) <= {0, 1}
    >>> test()
    """
    dt = _float_dtype(dtype)
    return labels(n_samples, n_classes).map(lambda y: _one_hot(y, n_classes, dt))


def probabilities(
    n_samples: int | st.SearchStrategy[int], n_classes: int, dtype: Any = np.float64
) -> st.SearchStrategy[np.ndarray]:
    """Probability rows: non-negative, each summing to one.

    Rows may hold exact zeros, and one-hot rows are among them.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(probabilities(3, 4))
    ... def test(T):
    ...     assert (T >= 0).all() and np.allclose(T.sum(axis=1), 1)
    >>> test()
    """
    dt = _float_dtype(dtype)

    @st.composite
    def draw_rows(draw):
        y = draw(labels(n_samples, n_classes))
        weights = draw(
            hnp.arrays(
                np.float64, (len(y), n_classes), elements=st.floats(0, 1, width=32)
            )
        )
        # The one-hot term makes every row sum to at least 1.
        weights = weights + _one_hot(y, n_classes, np.float64)
        return (weights / weights.sum(axis=1, keepdims=True)).astype(dt)

    return draw_rows()


def binary_targets(
    n_samples: int | st.SearchStrategy[int],
    n_outputs: int = 1,
    dtype: Any = np.float64,
    kind: str = "labels",
) -> st.SearchStrategy[np.ndarray]:
    """Targets for binary cross-entropy, shape ``(n_samples, n_outputs)``.

    Args:
      n_samples: rows.
      n_outputs: independent binary outputs per row.
      dtype: the float dtype of the result.
      kind: ``"labels"`` for 0/1 values, ``"probabilities"`` for values in
        ``[0, 1]``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(binary_targets(3, kind="probabilities"))
    ... def test(t):
    ...     assert t.shape == (3, 1) and ((0 <= t) & (t <= 1)).all()
    >>> test()
    """
    dt = _float_dtype(dtype)
    if kind == "labels":
        elements = st.sampled_from([0.0, 1.0])
    elif kind == "probabilities":
        elements = st.floats(0, 1, width=32)
    else:
        raise ValueError(
            f"binary_targets: kind must be 'labels' or 'probabilities', got {kind!r}"
        )
    shape = st.tuples(_strategy(n_samples), st.just(n_outputs))
    return hnp.arrays(dt, shape, elements=elements)


def classification_batches(
    n_features: int | st.SearchStrategy[int],
    n_classes: int,
    dtype: Any = np.float64,
    targets: str = "labels",
    min_samples: int = 1,
    max_samples: int = 6,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """A batch ``(X, T)`` for softmax cross-entropy.

    Args:
      n_features: columns of ``X``.
      n_classes: the number of classes ``k``.
      dtype: dtype of ``X`` (and of ``T`` unless it holds labels).
      targets: ``"labels"`` (int64, shape ``(n,)``), ``"one_hot"`` or
        ``"probabilities"`` (shape ``(n, k)``).
      min_samples: the fewest rows.
      max_samples: the most rows.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(classification_batches(4, 3, targets="one_hot"))
    ... def test(batch):
    ...     X, T = batch
    ...     assert X.shape[1] == 4 and T.shape == (len(X), 3)
    >>> test()
    """
    makers = {"labels": None, "one_hot": one_hot, "probabilities": probabilities}
    if targets not in makers:
        raise ValueError(
            f"classification_batches: targets must be one of {sorted(makers)}, "
            f"got {targets!r}"
        )

    @st.composite
    def draw_batch(draw):
        n = draw(sizes(min_samples, max_samples))
        X = draw(features(n, n_features, dtype))
        if targets == "labels":
            return X, draw(labels(n, n_classes))
        return X, draw(makers[targets](n, n_classes, dtype))

    return draw_batch()


class LayerCase(NamedTuple):
    """A layer with parameters and a batch of inputs for it.

    Attributes:
      layer: the :class:`~funnet.layers.Layer`.
      n_in: the number of input features.
      params: its :class:`~funnet.params.Params` for ``n_in`` features.
      X: inputs, shape ``(n, n_in)``, of the params' dtype.
    """

    layer: Layer
    n_in: int
    params: Params
    X: np.ndarray


def layer_cases(
    layer: Layer | st.SearchStrategy[Layer],
    n_in: int | st.SearchStrategy[int] = sizes(),
    n_samples: int | st.SearchStrategy[int] = sizes(1, 5),
    dtype: Any = np.float64,
    max_abs: float = 4.0,
) -> st.SearchStrategy[LayerCase]:
    """Everything a gradient or shape check of one layer needs.

    Args:
      layer: a layer, or a strategy such as :func:`networks`.
      n_in: input features (an int or a strategy).
      n_samples: rows of ``X`` (an int or a strategy).
      dtype: float32 or float64, or a strategy such as :func:`dtypes`.
      max_abs: the largest magnitude of an input value.

    >>> from hypothesis import given, settings
    >>> from funnet.layers import tanh
    >>> @settings(max_examples=5, deadline=None)
    ... @given(layer_cases(tanh(), n_in=3))
    ... def test(case):
    ...     Y, _ = case.layer.forward(case.params, case.X)
    ...     assert Y.shape == case.X.shape
    >>> test()
    """

    @st.composite
    def draw_case(draw):
        lay = draw(_strategy(layer))
        n = draw(_strategy(n_in))
        dt = _float_dtype(draw(_strategy(dtype)))
        params = draw(params_for(lay, n, dt))
        X = draw(features(n_samples, n, dt, max_abs))
        return LayerCase(lay, n, params, X)

    return draw_case()


def learning_rates(
    min_value: float = 1e-4, max_value: float = 1.0
) -> st.SearchStrategy[float]:
    """Positive learning rates, spread evenly on a log scale.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(learning_rates(1e-3, 1e-1))
    ... def test(lr):
    ...     assert 1e-3 <= lr <= 1e-1
    >>> test()
    """
    if not 0 < min_value <= max_value:
        raise ValueError(
            f"learning_rates: need 0 < min_value <= max_value, got "
            f"min_value={min_value!r}, max_value={max_value!r}"
        )
    lo, hi = math.log10(min_value), math.log10(max_value)
    return st.floats(lo, hi).map(lambda e: min(max(10.0**e, min_value), max_value))


def schedules(
    init_values: st.SearchStrategy[float] = learning_rates(),
) -> st.SearchStrategy[Callable[[int], float]]:
    r"""Learning-rate schedules from :mod:`funnet.schedules`.

    Four families, each positive and non-increasing in the step ``t``:
    constant :math:`\eta_0`; exponential :math:`\eta_0 \gamma^{t/s}` with
    :math:`\gamma \in [0.5, 1]`; step decay :math:`\eta_0 f^{\lfloor t/s
    \rfloor}` with :math:`f \in [0.5, 1]`; cosine decay to
    :math:`\alpha \eta_0` with :math:`\alpha \in [0.01, 1]`. They are
    funnet's own schedule records, so a failing example prints its
    parameters.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=10)
    ... @given(schedules())
    ... def test(schedule):
    ...     assert schedule(0) >= schedule(10) > 0
    >>> test()
    """
    from funnet import schedules as s

    steps = st.integers(1, 1000)
    return st.one_of(
        st.builds(s.constant, init_values),
        st.builds(s.exponential_decay, init_values, st.floats(0.5, 1.0), steps),
        st.builds(s.step_decay, init_values, steps, st.floats(0.5, 1.0)),
        st.builds(s.cosine_decay, init_values, steps, st.floats(0.01, 1.0)),
    )
