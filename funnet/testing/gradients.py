r"""Gradient checks: analytic gradients against central finite differences."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from funnet._random import generator
from funnet.layers import Layer
from funnet.testing._common import _float_dtype, tolerances

__all__ = [
    "INPUT",
    "Mismatch",
    "GradientCheckError",
    "GradCheckReport",
    "Objective",
    "check_grads",
    "layer_objective",
    "loss_objective",
    "net_objective",
]

Objective = Callable[
    [Mapping[str, np.ndarray], np.ndarray],
    tuple[Any, Mapping[str, np.ndarray], "np.ndarray | None"],
]
"""``objective(params, X) -> (value, grads, dX)``: what :func:`check_grads` checks."""


INPUT = "<input>"
"""The key under which :func:`check_grads` reports the input's gradient."""


class Mismatch(NamedTuple):
    """The worst disagreement found in one params entry (or the input).

    Attributes:
      key: the params key, or :data:`INPUT` for the input ``X``.
      index: the index of the entry inside the array.
      analytic: the gradient the code computed.
      numeric: the central finite difference.
      rel_error: :math:`|a - n| / \\max(|a|, |n|)`.
      count: how many entries of this array disagree.
      size: how many entries the array has.
    """

    key: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    rel_error: float
    count: int
    size: int

    def describe(self) -> str:
        """One line: where, both values and the relative error."""
        where = "the input X" if self.key == INPUT else f"params[{self.key!r}]"
        return (
            f"{where} at index {self.index}: analytic {self.analytic:.6g}, "
            f"numeric {self.numeric:.6g}, relative error {self.rel_error:.3g} "
            f"({self.count} of {self.size} entries disagree)"
        )


class GradientCheckError(AssertionError):
    """Raised by :func:`check_grads`; ``mismatches`` says where and by how much."""

    def __init__(self, mismatches: list[Mismatch], header: str):
        self.mismatches = mismatches
        lines = [header] + ["  " + m.describe() for m in mismatches]
        super().__init__("\n".join(lines))

    @property
    def keys(self) -> list[str]:
        """The keys that disagree, in the order checked."""
        return [m.key for m in self.mismatches]


class GradCheckReport(NamedTuple):
    """What :func:`check_grads` did when it passed.

    Attributes:
      n_checked: entries compared.
      n_kinks: entries skipped because a kink lies within the step.
      max_abs_error: the largest :math:`|a - n|` among compared entries.
    """

    n_checked: int
    n_kinks: int
    max_abs_error: float


def _step(dtype: np.dtype, x: float) -> float:
    # eps^(1/3) balances truncation (h^2) against rounding (eps / h).
    return float(np.finfo(dtype).eps) ** (1.0 / 3.0) * max(1.0, abs(x))


def _entries(params, grads, X, dX) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Pair every array with its gradient, checking keys, shapes and dtypes."""
    if set(grads) != set(params):
        raise AssertionError(
            f"grads have keys {sorted(grads)} but params have {sorted(params)}; "
            f"expected the same keys"
        )
    pairs = [(k, np.asarray(params[k]), np.asarray(grads[k])) for k in params]
    if dX is not None:
        pairs.append((INPUT, X, np.asarray(dX)))
    for key, a, g in pairs:
        name = "dX" if key == INPUT else f"grads[{key!r}]"
        of = "X" if key == INPUT else f"params[{key!r}]"
        if g.shape != a.shape or g.dtype != a.dtype:
            raise AssertionError(
                f"{name} is a {g.dtype} array of shape {g.shape}, but {of} is "
                f"a {a.dtype} array of shape {a.shape}; expected the same shape "
                f"and dtype"
            )
    return pairs


def check_grads(
    objective: Objective,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    kinks: bool = True,
) -> GradCheckReport:
    r"""Compare an analytic gradient with central finite differences.

    ``objective(params, X) -> (value, grads, dX)`` returns a scalar and its
    gradient with respect to every params entry and to ``X`` (``dX`` may be
    ``None`` to skip the input). For every scalar entry :math:`x` the check
    computes

    .. math:: n = \frac{f(x + h) - f(x - h)}{2h}, \qquad
              h = \varepsilon^{1/3} \max(1, |x|)

    with :math:`\varepsilon` the dtype's machine epsilon, and requires
    :math:`|a - n| \le \mathrm{atol}\cdot\max(1, |f|) + \mathrm{rtol}
    \cdot \max(|a|, |n|)` for the analytic value :math:`a`. Tolerances
    default to :func:`tolerances` of the dtype of ``X``.

    A kink (ReLU at 0) within :math:`h` of :math:`x` makes :math:`n`
    meaningless. With ``kinks=True`` an entry is skipped, and counted, when
    the one-sided differences :math:`(f(x+h) - f(x))/h` and
    :math:`(f(x) - f(x-h))/h` disagree and :math:`a` lies between them.

    Grads must have the params' keys, shapes and dtypes; ``dX`` the shape
    and dtype of ``X``. Nothing is mutated: perturbed copies are passed.

    Args:
      objective: the function under test; see :func:`layer_objective`,
        :func:`loss_objective` and :func:`net_objective`.
      params: a mapping of float arrays (may be empty).
      X: the input, a float array.
      rtol: relative tolerance.
      atol: absolute tolerance, scaled by :math:`\max(1, |f|)`.
      kinks: skip entries at a kink instead of failing.

    Returns:
      A :class:`GradCheckReport`.

    Raises:
      GradientCheckError: an entry disagrees. The message names, for every
        key that fails, the worst index, both values and the relative error.
      AssertionError: grads and params do not match in keys, shapes or
        dtypes.

    >>> from funnet.layers import dense
    >>> layer = dense(2)
    >>> _, params = layer.init(np.random.default_rng(0), 3, np.float64)
    >>> X = np.random.default_rng(1).normal(size=(4, 3))
    >>> check_grads(layer_objective(layer), params, X).n_checked
    20
    """
    X = np.asarray(X)
    dtype = _float_dtype(X.dtype, "X.dtype")
    default_rtol, default_atol = tolerances(dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    params = dict(params)
    value, grads, dX = objective(params, X)
    f0 = float(value)
    if not np.isfinite(f0):
        raise AssertionError(
            f"the objective is {f0} at the given point; expected a finite value"
        )
    tol_abs = atol * max(1.0, abs(f0))

    def at(key: str, array: np.ndarray) -> float:
        if key == INPUT:
            return float(objective(params, array)[0])
        return float(objective({**params, key: array}, X)[0])

    mismatches, n_checked, n_kinks, max_err = [], 0, 0, 0.0
    for key, array, grad in _entries(params, grads, X, dX):
        worst, worst_ratio, count = None, 1.0, 0
        for index in np.ndindex(array.shape):
            x = array[index]
            plus, minus = array.copy(), array.copy()
            plus[index] = x + array.dtype.type(_step(dtype, float(x)))
            minus[index] = x - array.dtype.type(_step(dtype, float(x)))
            h_plus = float(plus[index]) - float(x)
            h_minus = float(x) - float(minus[index])
            f_plus, f_minus = at(key, plus), at(key, minus)
            numeric = (f_plus - f_minus) / (h_plus + h_minus)
            analytic = float(grad[index])
            err = abs(analytic - numeric)
            allowed = tol_abs + rtol * max(abs(analytic), abs(numeric))
            if err <= allowed:
                n_checked += 1
                max_err = max(max_err, err)
                continue
            if kinks:
                right, left = (f_plus - f0) / h_plus, (f0 - f_minus) / h_minus
                lo, hi = min(left, right) - allowed, max(left, right) + allowed
                if abs(right - left) > 2 * allowed and lo <= analytic <= hi:
                    n_kinks += 1
                    continue
            count += 1
            ratio = err / allowed
            if ratio > worst_ratio:
                rel = err / max(abs(analytic), abs(numeric), np.finfo(dtype).tiny)
                worst, worst_ratio = (index, analytic, numeric, rel), ratio
        if count:
            mismatches.append(Mismatch(key, *worst, count, array.size))
    if mismatches:
        header = (
            f"gradient check failed ({dtype}, rtol={rtol:g}, atol={atol:g} x "
            f"max(1, |f|={abs(f0):.3g})); the worst entry of each key that "
            f"disagrees:"
        )
        raise GradientCheckError(mismatches, header)
    return GradCheckReport(n_checked, n_kinks, max_err)


def _projection(seed: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A fixed standard-normal array for ``shape``: the same on every call."""
    return generator(seed, *shape).standard_normal(shape).astype(dtype)


def layer_objective(layer: Layer, *, seed: int = 0, **forward_kwargs: Any) -> Objective:
    r"""The scalar :math:`f = \sum_{ij} Y_{ij} R_{ij}` of a layer's output.

    ``R`` is a fixed standard-normal array (drawn from ``seed`` and the
    output's shape), so :math:`\partial f/\partial Y = R` exercises every
    output with a different weight, and the layer's own ``backward(params,
    cache, R)`` gives the analytic gradient.

    Args:
      layer: the layer under test.
      seed: fixes ``R``.
      **forward_kwargs: passed to ``forward``, e.g. ``training=False``.

    Returns:
      ``objective(params, X) -> (f, grads, dX)`` for :func:`check_grads`.
    """

    def objective(params, X):
        out = layer.forward(params, X, **forward_kwargs)
        Y, cache = out[0], out[1]
        R = _projection(seed, Y.shape, Y.dtype)
        grads, dX = layer.backward(params, cache, R)
        return (Y * R).sum(), grads, dX

    return objective


def loss_objective(loss: Callable, targets: Any) -> Objective:
    """A loss as an objective of its outputs: no params, ``X`` is the logits.

    Returns:
      ``objective({}, Z) -> (value, {}, dZ)`` for :func:`check_grads`.

    >>> from funnet.losses import mean_squared_error
    >>> Z = np.array([[0.5, -1.0]])
    >>> check_grads(loss_objective(mean_squared_error, np.zeros((1, 2))), {}, Z)
    GradCheckReport(n_checked=2, n_kinks=0, max_abs_error=...)
    """

    def objective(params, Z):
        value, dZ = loss(Z, targets)
        return value, {}, dZ

    return objective


def net_objective(
    net: Layer, loss: Callable, targets: Any, **forward_kwargs: Any
) -> Objective:
    """A network followed by a loss: the objective that training minimizes.

    Returns:
      ``objective(params, X) -> (loss value, grads, dX)``, the analytic
      gradient from the loss's ``d_outputs`` and ``net.backward``.
    """

    def objective(params, X):
        out = net.forward(params, X, **forward_kwargs)
        value, dY = loss(out[0], targets)
        grads, dX = net.backward(params, out[1], dY)
        return value, grads, dX

    return objective
