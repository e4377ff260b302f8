r"""Losses computed from raw network outputs (logits), value and gradient together.

Every loss has the signature ``loss(outputs, targets) -> (value, d_outputs)``:

- ``outputs``: the network's last layer before any output activation,
  shape ``(n, k)``;
- ``value``: the mean loss over the batch, a NumPy scalar of the outputs'
  dtype;
- ``d_outputs``: :math:`\partial\,\text{value} / \partial\,\text{outputs}`,
  the same shape and dtype as ``outputs``.

Computing both from one definition keeps them consistent, and working on
logits instead of probabilities keeps them finite: no ``log(0)``, no
``exp`` of a large positive number, for any finite input (logits of
:math:`\pm 10^4` included).

Gradient entries smaller in magnitude than ``tiny / eps`` of their dtype
(1e-31 in float32, 1e-292 in float64) are returned as zero. They come from
samples fitted all but perfectly and move no parameter of ordinary size,
but through the backward pass's products they would fill the gradients
with subnormal numbers, which the CPU computes with many times slower (a
float32 run whose loss had reached 1e-6 slowed down 2.7 times).

>>> import numpy as np
>>> value, grad = softmax_cross_entropy(np.array([[2.0, 0.0]]), np.array([0]))
>>> round(float(value), 4)
0.1269
>>> grad.round(4)
array([[-0.1192,  0.1192]])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from funnet._floats import limits

__all__ = [
    "Loss",
    "softmax_cross_entropy",
    "binary_cross_entropy",
    "mean_squared_error",
    "log_softmax",
    "get",
    "LOSSES",
]

Loss = Callable[[np.ndarray, np.ndarray], tuple[np.generic, np.ndarray]]


def _flushed(G: np.ndarray) -> np.ndarray:
    """``G`` with its entries below ``tiny / eps`` set to zero, in place."""
    if G.dtype.kind == "f":
        # A boolean index: for arrays of a batch's outputs, fewer calls
        # than flush_below's in-place passes, which pay off on large ones.
        G[np.abs(G) < limits(G.dtype)[1]] = 0
    return G


def _check_outputs(name: str, outputs: np.ndarray) -> None:
    if not isinstance(outputs, np.ndarray) or outputs.ndim != 2:
        shape = getattr(outputs, "shape", type(outputs).__name__)
        raise ValueError(
            f"{name}: outputs must be a 2-D array (samples, outputs), got {shape}"
        )
    if outputs.shape[0] == 0:
        raise ValueError(f"{name}: outputs has no rows; a batch needs samples")


def _as_labels(name: str, targets, n: int, k: int) -> np.ndarray | None:
    """Integer labels as an int array, or None if ``targets`` are rows."""
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape == (n, k) and t.dtype.kind in "fciub":
        return None
    if t.ndim == 1 and t.dtype.kind in "iub":
        if t.shape[0] != n:
            raise ValueError(
                f"{name}: {t.shape[0]} labels for {n} samples; expected one "
                f"label per row of outputs"
            )
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name}: label {bad} is out of range; expected integers in "
                f"[0, {k}) for {k} outputs"
            )
        # Boolean labels would index as a mask; integers index as classes.
        return t.astype(np.intp, copy=False) if t.dtype.kind == "b" else t
    raise ValueError(
        f"{name}: targets must be integer labels of shape ({n},) or float "
        f"rows of shape ({n}, {k}), got {t.dtype} array of shape {t.shape}"
    )


def _check_probabilities(name: str, t: np.ndarray) -> None:
    """Targets that are probabilities: finite and within [0, 1].

    One comparison pass over the targets, which are as small as the outputs;
    NaN fails both comparisons, so it is caught too.
    """
    if not ((t >= 0) & (t <= 1)).all():
        bad = t[~((t >= 0) & (t <= 1))][0]
        raise ValueError(
            f"{name}: targets must be probabilities in [0, 1] (0/1 labels, "
            f"one-hot or probability rows), got the value {bad}"
        )


def log_softmax(Z: np.ndarray) -> np.ndarray:
    r"""Row-wise :math:`\log\operatorname{softmax}(Z) = Z - \operatorname{logsumexp}(Z)`.

    Stable for any finite ``Z``: the row maximum is subtracted first, so the
    largest exponent is :math:`e^0 = 1`.
    """
    with np.errstate(under="ignore"):  # e^{-10^4} is 0, correctly
        return _log_softmax(Z)


def _log_softmax(Z: np.ndarray) -> np.ndarray:
    shifted = Z - Z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray):
    r"""Mean softmax cross-entropy from logits.

    .. math::
        L = -\frac{1}{n} \sum_i \sum_j T_{ij} \log \operatorname{softmax}(Z_i)_j,
        \qquad
        \frac{\partial L}{\partial Z_{ij}} =
        \frac{1}{n}\Big(P_{ij} \sum_c T_{ic} - T_{ij}\Big)

    where :math:`P = \operatorname{softmax}(Z)` row-wise. For one-hot or
    probability rows :math:`\sum_c T_{ic} = 1` and the gradient is the familiar
    :math:`(P - T)/n`.

    Args:
      logits: ``Z``, shape ``(n, k)``.
      targets: integer class labels, shape ``(n,)`` with values in
        ``[0, k)``; or one-hot / probability rows ``T``, shape ``(n, k)``.

    Returns:
      ``(value, dZ)``: the mean loss and its gradient, shape ``(n, k)``.
    """
    _check_outputs("softmax_cross_entropy", logits)
    n, k = logits.shape
    labels = _as_labels("softmax_cross_entropy", targets, n, k)
    inv_n = 1.0 / n
    # Probabilities below the smallest float round to 0: underflow is the
    # right answer there, not an error.
    with np.errstate(under="ignore"):
        if labels is not None:
            # One exp per entry: P = E / sum(E) with E = exp(Z - max Z), and
            # only the labels' log-probabilities, log P[i, y_i] = S[i, y_i] -
            # log sum(E)_i, are ever formed.
            S = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
            P = np.exp(S)
            sums = np.add.reduce(P, axis=1, keepdims=True)
            rows = np.arange(n)
            value = (np.log(sums[:, 0]) - S[rows, labels]).sum() * inv_n
            P /= sums
            P[rows, labels] -= 1.0
            P *= inv_n
            return value, _flushed(P)
        logp = _log_softmax(logits)
        P = np.exp(logp)
        T = np.asarray(targets, dtype=logits.dtype)
        _check_probabilities("softmax_cross_entropy", T)
        # A zero target times a finite log-probability is 0: no 0 * log(0).
        value = -(T * logp).sum(axis=1).mean()
        dZ = (P * T.sum(axis=1, keepdims=True) - T) * inv_n
    return value, _flushed(dZ)


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray):
    r"""Mean binary cross-entropy from logits (sigmoid outputs).

    .. math::
        L = \frac{1}{N}\sum \big(\max(z, 0) - z\,t + \log(1 + e^{-|z|})\big),
        \qquad
        \frac{\partial L}{\partial z} = \frac{\sigma(z) - t}{N}

    with :math:`N` the number of entries of ``logits``. This equals
    :math:`-t\log\sigma(z) - (1-t)\log(1-\sigma(z))` and, for one output
    column, the two-class softmax cross-entropy of logits ``[0, z]``.

    Args:
      logits: ``z``, shape ``(n, k)`` (``k = 1`` for one binary target).
      targets: 0/1 labels or probabilities, shape ``(n, k)``; for ``k = 1``
        a flat ``(n,)`` vector is accepted too.

    Returns:
      ``(value, dz)``, ``dz`` of shape ``(n, k)``.
    """
    _check_outputs("binary_cross_entropy", logits)
    t = np.asarray(targets)
    if t.ndim == 1 and logits.shape[1] == 1:
        t = t[:, None]
    if t.shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy: targets have shape {t.shape}, expected "
            f"{logits.shape} (or ({logits.shape[0]},) for one output column)"
        )
    if t.dtype.kind not in "iubf":
        raise ValueError(
            f"binary_cross_entropy: targets must be numbers in [0, 1], got "
            f"dtype {t.dtype}"
        )
    t = t.astype(logits.dtype, copy=False)
    _check_probabilities("binary_cross_entropy", t)
    with np.errstate(under="ignore"):  # e^{-|z|} rounds to 0 for large |z|
        E = np.exp(-np.abs(logits))
        value = (np.maximum(logits, 0) - logits * t + np.log1p(E)).mean()
        sig = np.where(logits >= 0, 1 / (1 + E), E / (1 + E))
        return value, _flushed((sig - t) * (1.0 / logits.size))


def mean_squared_error(outputs: np.ndarray, targets: np.ndarray):
    r"""Mean squared error over all entries.

    .. math::
        L = \frac{1}{N}\sum (y - t)^2, \qquad
        \frac{\partial L}{\partial y} = \frac{2 (y - t)}{N}

    Args:
      outputs: ``y``, shape ``(n, k)``.
      targets: ``t``, shape ``(n, k)``; for ``k = 1`` also ``(n,)``.

    Returns:
      ``(value, dy)``, ``dy`` of shape ``(n, k)``.
    """
    _check_outputs("mean_squared_error", outputs)
    t = np.asarray(targets)
    if t.ndim == 1 and outputs.shape[1] == 1:
        t = t[:, None]
    if t.shape != outputs.shape:
        raise ValueError(
            f"mean_squared_error: targets have shape {t.shape}, expected "
            f"{outputs.shape}"
        )
    if t.dtype.kind not in "biuf":
        raise ValueError(
            f"mean_squared_error: targets must be real numbers, got dtype {t.dtype}"
        )
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise ValueError(
            "mean_squared_error: targets contain NaN or infinity; expected "
            "finite numbers"
        )
    diff = outputs - t.astype(outputs.dtype, copy=False)
    with np.errstate(under="ignore"):  # tiny differences square to 0
        return (diff * diff).mean(), _flushed(diff * (2.0 / outputs.size))


LOSSES: dict[str, Loss] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mean_squared_error": mean_squared_error,
}


def get(name_or_fn: str | Loss) -> Loss:
    """Look a loss up by name; a callable is returned unchanged."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return LOSSES[name_or_fn]
    except KeyError:
        raise ValueError(
            f"unknown loss {name_or_fn!r}; expected one of {sorted(LOSSES)}"
        ) from None
