r"""Weight initializers: Glorot/Xavier, He, LeCun and zeros.

Every initializer has the signature ``init(rng, shape, dtype) -> ndarray``
where ``shape`` is ``(fan_in, fan_out)`` for a weight matrix (a bias has
``(fan_out,)``). Randomness comes only from the ``rng`` argument, a
:class:`numpy.random.Generator`; the global NumPy random state is never read.

======================  ==============================================
initializer             distribution
======================  ==============================================
``glorot_uniform``      :math:`U(-a, a)`, :math:`a = \sqrt{6 / (n_{in} + n_{out})}`
``glorot_normal``       :math:`N(0, \sigma^2)`, :math:`\sigma = \sqrt{2 / (n_{in} + n_{out})}`
``he_uniform``          :math:`U(-a, a)`, :math:`a = \sqrt{6 / n_{in}}`
``he_normal``           :math:`N(0, \sigma^2)`, :math:`\sigma = \sqrt{2 / n_{in}}`
``lecun_normal``        :math:`N(0, \sigma^2)`, :math:`\sigma = \sqrt{1 / n_{in}}`
``zeros``               all zeros
======================  ==============================================

The normal variants are plain (untruncated) normals, so their standard
deviation is exactly the formula above.

References:
  Glorot & Bengio (2010), *Understanding the difficulty of training deep
  feedforward neural networks*, AISTATS.
  He, Zhang, Ren & Sun (2015), *Delving Deep into Rectifiers*, ICCV.
  LeCun, Bottou, Orr & Muller (1998), *Efficient BackProp*.

>>> import numpy as np
>>> W = glorot_uniform(np.random.default_rng(0), (64, 32), np.float32)
>>> W.shape, W.dtype
((64, 32), dtype('float32'))
>>> bool(np.abs(W).max() <= np.sqrt(6 / (64 + 32)))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "Initializer",
    "glorot_uniform",
    "glorot_normal",
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "zeros",
    "get",
]

Initializer = Callable[[np.random.Generator, tuple[int, ...], Any], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(
            f"a weight initializer needs a 2-D shape (fan_in, fan_out), got {shape}"
        )
    return int(shape[0]), int(shape[1])


def _uniform(rng: np.random.Generator, shape, bound: float, dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def _normal(rng: np.random.Generator, shape, std: float, dtype) -> np.ndarray:
    return (std * rng.standard_normal(size=shape)).astype(dtype, copy=False)


def glorot_uniform(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    r"""Glorot/Xavier uniform: :math:`U(-a, a)`, :math:`a = \sqrt{6/(n_{in}+n_{out})}`."""
    fan_in, fan_out = _fans(shape)
    return _uniform(rng, shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def glorot_normal(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    r"""Glorot/Xavier normal: std :math:`\sqrt{2/(n_{in}+n_{out})}`."""
    fan_in, fan_out = _fans(shape)
    return _normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def he_uniform(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    r"""He/Kaiming uniform: :math:`U(-a, a)`, :math:`a = \sqrt{6/n_{in}}`."""
    fan_in, _ = _fans(shape)
    return _uniform(rng, shape, math.sqrt(6.0 / fan_in), dtype)


def he_normal(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    r"""He/Kaiming normal: std :math:`\sqrt{2/n_{in}}`."""
    fan_in, _ = _fans(shape)
    return _normal(rng, shape, math.sqrt(2.0 / fan_in), dtype)


def lecun_normal(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    r"""LeCun normal: std :math:`\sqrt{1/n_{in}}`."""
    fan_in, _ = _fans(shape)
    return _normal(rng, shape, math.sqrt(1.0 / fan_in), dtype)


def zeros(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """All zeros (the usual bias initializer); ``rng`` is not used."""
    return np.zeros(shape, dtype=dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal

_BY_NAME: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_normal": lecun_normal,
    "zeros": zeros,
}


def get(name_or_fn: str | Initializer) -> Initializer:
    """Look an initializer up by name; a callable is returned unchanged."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return _BY_NAME[name_or_fn]
    except KeyError:
        raise ValueError(
            f"unknown initializer {name_or_fn!r}; expected one of "
            f"{sorted(_BY_NAME)} or a function (rng, shape, dtype) -> array"
        ) from None
