r"""The invariants of softmax, cross-entropy and gradients, as reusable checks.

Each ``assert_*`` function takes the function under test (a loss, a
softmax) and concrete arrays, and raises :class:`AssertionError` with the
index and both values when the property fails. References are computed in
float64, independently of funnet; tolerances come from
:func:`~funnet.testing.tolerances` for the dtype of the arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from funnet.testing._common import _float_dtype, _one_hot, tolerances

__all__ = [
    "assert_probability_rows",
    "assert_shift_invariant",
    "assert_cross_entropy_is_log_softmax",
    "assert_bce_is_two_class_cross_entropy",
    "assert_softmax_ce_grad_is_p_minus_y",
    "assert_descent_lowers_loss",
    "assert_permutation_invariant",
    "assert_concat_is_weighted_mean",
]


def _close(
    actual: Any, expected: Any, what: str, dtype: Any, scale: float = 1.0
) -> None:
    rtol, atol = tolerances(dtype, "value")
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    bound = atol * max(1.0, scale) + rtol * np.abs(expected)
    bad = ~(np.abs(actual - expected) <= bound)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
        raise AssertionError(
            f"{what}: at index {index} got {actual[index].item()!r}, expected "
            f"{expected[index].item()!r} (rtol={rtol:g}, "
            f"atol={atol:g} x {max(1.0, scale):g})"
        )


def _ref_log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, the reference for the checks."""
    Z = np.asarray(Z, np.float64)
    m = Z.max(axis=1, keepdims=True)
    return Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))


def _targets_as_rows(targets: Any, k: int) -> np.ndarray:
    t = np.asarray(targets)
    return _one_hot(t, k, np.float64) if t.ndim == 1 else t.astype(np.float64)


def assert_probability_rows(P: np.ndarray) -> None:
    """Every entry of ``P`` is positive and every row sums to one.

    Softmax of logits whose row spread is below about 87 (float32) or 708
    (float64) has no entry that rounds to zero.

    >>> assert_probability_rows(np.array([[0.25, 0.75]]))
    >>> assert_probability_rows(np.array([[0.5, 0.6]]))
    Traceback (most recent call last):
    ...
    AssertionError: row sums: at index (0,) got 1.1, expected 1.0 (rtol=1e-09,
    atol=1e-12 x 2)
    """
    P = np.asarray(P)
    if not (P > 0).all():
        index = tuple(int(i) for i in np.argwhere(~(P > 0))[0])
        raise AssertionError(f"entry {index} is {P[index]!r}; expected positive")
    sums = P.sum(axis=1, dtype=np.float64)
    _close(sums, np.ones_like(sums), "row sums", P.dtype, P.shape[1])


def assert_shift_invariant(
    fn: Callable[[np.ndarray], np.ndarray], Z: np.ndarray, shift: np.ndarray
) -> None:
    """``fn(Z + shift[:, None])`` equals ``fn(Z)``: adding a constant per row
    changes nothing (softmax, log-probability differences).

    Args:
      fn: maps ``(n, k)`` to ``(n, k)``.
      Z: shape ``(n, k)``.
      shift: shape ``(n,)``, one constant per row.
    """
    Z = np.asarray(Z)
    shift = np.asarray(shift, Z.dtype)
    shifted = Z + shift[:, None]
    scale = float(np.abs(shifted).max(initial=0))
    _close(fn(shifted), fn(Z), "fn(Z + c) vs fn(Z)", Z.dtype, scale)


def assert_cross_entropy_is_log_softmax(
    loss: Callable, logits: np.ndarray, targets: np.ndarray
) -> None:
    r"""A cross-entropy is :math:`\ge 0` and equals :math:`-\log` softmax
    of the true class.

    For integer labels :math:`y_i`, each row alone gives
    :math:`-\log\operatorname{softmax}(Z_i)_{y_i} \ge 0` and the batch gives
    their mean. For probability rows :math:`T` the per-row value is
    :math:`-\sum_j T_{ij} \log\operatorname{softmax}(Z_i)_j`. The reference
    is computed in float64, independently of ``loss``.

    Args:
      loss: ``loss(logits, targets) -> (value, grad)``.
      logits: shape ``(n, k)``.
      targets: labels ``(n,)`` or rows ``(n, k)``.
    """
    logits = np.asarray(logits)
    n, k = logits.shape
    T = _targets_as_rows(targets, k)
    per_row = -(T * _ref_log_softmax(logits)).sum(axis=1)
    scale = float(np.abs(logits).max(initial=0))
    targets = np.asarray(targets)
    for i in range(n):
        value = loss(logits[i : i + 1], targets[i : i + 1])[0]
        if not float(value) >= 0:
            raise AssertionError(f"the loss of row {i} is {value!r}; expected >= 0")
        _close(value, per_row[i], f"the loss of row {i}", logits.dtype, scale)
    value = loss(logits, targets)[0]
    _close(value, per_row.mean(), "the batch loss", logits.dtype, scale)


def assert_bce_is_two_class_cross_entropy(
    bce: Callable, cross_entropy: Callable, logits: np.ndarray, targets: np.ndarray
) -> None:
    r"""Binary cross-entropy of logit :math:`z` equals softmax cross-entropy
    of the two logits :math:`(0, z)` with target row :math:`(1 - t, t)`.

    Both the value and the gradient with respect to :math:`z` must agree
    (the gradient of the second logit, rescaled to the same mean).

    Args:
      bce: ``bce(logits, targets) -> (value, grad)``, mean over all entries.
      cross_entropy: softmax cross-entropy with probability rows.
      logits: shape ``(n, m)``.
      targets: 0/1 or probabilities, shape ``(n, m)``.
    """
    logits = np.asarray(logits)
    t = np.asarray(targets, logits.dtype).reshape(logits.shape)
    z = logits.reshape(-1, 1)
    pair = np.concatenate([np.zeros_like(z), z], axis=1)
    rows = np.concatenate([1 - t.reshape(-1, 1), t.reshape(-1, 1)], axis=1)
    value, grad = bce(logits, t)
    ce_value, ce_grad = cross_entropy(pair, rows)
    scale = float(np.abs(logits).max(initial=0))
    _close(value, ce_value, "BCE vs two-class cross-entropy", logits.dtype, scale)
    _close(
        grad.reshape(-1),
        ce_grad[:, 1],
        "d BCE/dz vs d cross-entropy/dz",
        logits.dtype,
    )


def assert_softmax_ce_grad_is_p_minus_y(
    loss: Callable, logits: np.ndarray, targets: np.ndarray
) -> None:
    r"""The gradient of mean softmax cross-entropy is :math:`(P - Y)/n`.

    :math:`P` is the row-wise softmax of the logits, :math:`Y` the one-hot
    (or probability) rows, :math:`n` the batch size. Also checks that the
    gradient has the logits' shape and dtype.
    """
    logits = np.asarray(logits)
    n, k = logits.shape
    _, grad = loss(logits, targets)
    if grad.shape != logits.shape or grad.dtype != logits.dtype:
        raise AssertionError(
            f"the gradient is a {grad.dtype} array of shape {grad.shape}; "
            f"expected {logits.dtype} {logits.shape}"
        )
    expected = (np.exp(_ref_log_softmax(logits)) - _targets_as_rows(targets, k)) / n
    _close(grad, expected, "dL/dZ vs (P - Y) / n", logits.dtype)


def assert_descent_lowers_loss(
    loss_fn: Callable[[Mapping[str, np.ndarray]], Any],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    lengths: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
) -> None:
    r"""A small step along :math:`-g` lowers the loss.

    For the step lengths :math:`s` in ``lengths`` (largest first), with
    :math:`\eta = s / \|g\|`, at least one must satisfy the Armijo condition

    .. math:: L(\theta - \eta g) \le L(\theta) - \tfrac12 \eta \|g\|^2,

    which every smooth function meets for small enough :math:`s` when
    :math:`g` is its true gradient, and which a wrong sign never meets for
    small :math:`s`. A gradient too small to move the loss measurably is
    not checked.

    Args:
      loss_fn: ``params -> scalar loss``.
      params: the point.
      grads: the gradient claimed at that point, same keys as ``params``.
      lengths: step lengths to try.
    """
    f0 = float(loss_fn(params))
    norm2 = sum(float(np.sum(np.asarray(g, np.float64) ** 2)) for g in grads.values())
    dtype = _float_dtype(next(iter(params.values())).dtype) if params else np.float64
    eps = float(np.finfo(dtype).eps)
    if math.sqrt(norm2) * max(lengths) <= 1e3 * eps * max(1.0, abs(f0)):
        return
    tried = []
    for s in lengths:
        eta = s / math.sqrt(norm2)
        moved = {
            k: (np.asarray(v) - np.asarray(eta, v.dtype) * grads[k]).astype(v.dtype)
            for k, v in params.items()
        }
        f = float(loss_fn(moved))
        tried.append(f"{s:g}: {f:.10g}")
        if f <= f0 - 0.5 * eta * norm2:
            return
    raise AssertionError(
        f"no step along -grads lowered the loss {f0:.10g} enough "
        f"(|g| = {math.sqrt(norm2):.3g}); step length: loss = {', '.join(tried)}"
    )


def assert_permutation_invariant(
    loss: Callable, outputs: np.ndarray, targets: np.ndarray, permutation: np.ndarray
) -> None:
    """The mean loss does not depend on the order of rows, and its gradient
    moves with the rows.

    Args:
      loss: ``loss(outputs, targets) -> (value, grad)``.
      outputs: shape ``(n, k)``.
      targets: ``n`` rows of targets.
      permutation: a permutation of ``range(n)``.
    """
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    value, grad = loss(outputs, targets)
    p_value, p_grad = loss(outputs[permutation], targets[permutation])
    scale = float(np.abs(outputs).max(initial=0))
    _close(p_value, value, "the loss of permuted rows", outputs.dtype, scale)
    _close(p_grad, grad[permutation], "the gradient of permuted rows", outputs.dtype)


def assert_concat_is_weighted_mean(
    loss: Callable,
    batch_a: tuple[np.ndarray, np.ndarray],
    batch_b: tuple[np.ndarray, np.ndarray],
) -> None:
    r"""The loss of two batches put together is the size-weighted mean.

    .. math:: L(A \cup B) = \frac{n_A L(A) + n_B L(B)}{n_A + n_B}

    Args:
      loss: ``loss(outputs, targets) -> (value, grad)``.
      batch_a: ``(outputs, targets)`` with ``n_A`` rows.
      batch_b: ``(outputs, targets)`` with ``n_B`` rows, same widths.
    """
    (Za, Ta), (Zb, Tb) = batch_a, batch_b
    na, nb = len(Za), len(Zb)
    whole = loss(np.concatenate([Za, Zb]), np.concatenate([Ta, Tb]))[0]
    expected = (na * float(loss(Za, Ta)[0]) + nb * float(loss(Zb, Tb)[0])) / (na + nb)
    scale = float(max(np.abs(Za).max(initial=0), np.abs(Zb).max(initial=0)))
    dtype = np.asarray(Za).dtype
    _close(whole, expected, "the loss of the joined batches", dtype, scale)
