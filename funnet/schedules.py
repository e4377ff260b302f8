r"""Learning-rate schedules: plain records that are pure functions of the step.

A schedule maps the number of updates made so far, ``step = 0, 1, 2, ...``,
to a Python ``float``. Each schedule here is a small immutable record (a
:class:`~typing.NamedTuple`) whose fields are its whole configuration and
whose ``__call__(step)`` computes the value, so a schedule compares by value,
pickles, and converts to and from JSON-friendly data with :func:`to_config`
and :func:`from_config`. Any function ``int -> float`` works as a schedule
too; only the records here can be described as data.

Every optimizer in :mod:`funnet.optimizers` accepts a number or a schedule
as its learning rate; the first update uses ``schedule(0)``.

>>> s = join([linear_warmup(0.1, 4), cosine_decay(0.1, 10)], [4])
>>> [round(s(t), 4) for t in (0, 2, 4, 9, 14, 20)]
[0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
>>> from_config(to_config(s)) == s
True

The command line describes a schedule by a short string, read by
:func:`parse`; see its docstring for the syntax.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "Schedule",
    "Constant",
    "PiecewiseConstant",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "LinearWarmup",
    "Join",
    "constant",
    "piecewise_constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "linear_warmup",
    "join",
    "parse",
    "to_config",
    "from_config",
    "SYNTAX",
]

Schedule = Callable[[int], float]


def _check_step(record: Any, step: int) -> None:
    if step < 0:
        raise ValueError(
            f"{type(record).__name__}: step must be >= 0 (steps count updates "
            f"from 0), got {step}"
        )


class Constant(NamedTuple):
    """The same value at every step."""

    value: float

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        return self.value


class PiecewiseConstant(NamedTuple):
    """``values[i]`` for ``boundaries[i-1] <= step < boundaries[i]``."""

    values: tuple[float, ...]
    boundaries: tuple[int, ...]

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        return self.values[bisect.bisect_right(self.boundaries, step)]


class StepDecay(NamedTuple):
    """``init_value * factor ** (step // every)``."""

    init_value: float
    every: int
    factor: float

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        return self.init_value * self.factor ** (step // self.every)


class ExponentialDecay(NamedTuple):
    """``init_value * decay_rate ** (step / decay_steps)``, floored if
    ``staircase``."""

    init_value: float
    decay_rate: float
    decay_steps: int
    staircase: bool = False

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        p = step // self.decay_steps if self.staircase else step / self.decay_steps
        return self.init_value * self.decay_rate**p


class CosineDecay(NamedTuple):
    """Half a cosine from ``init_value`` down to ``alpha * init_value``."""

    init_value: float
    decay_steps: int
    alpha: float = 0.0

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        t = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * t))
        return self.init_value * ((1.0 - self.alpha) * cosine + self.alpha)


class LinearWarmup(NamedTuple):
    """A straight line from ``init_value`` to ``peak_value``, then flat."""

    peak_value: float
    warmup_steps: int
    init_value: float = 0.0

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        t = min(step, self.warmup_steps) / self.warmup_steps
        return self.init_value + (self.peak_value - self.init_value) * t


class Join(NamedTuple):
    """``schedules[i]`` from ``boundaries[i-1]`` on, restarted at step 0."""

    schedules: tuple[Any, ...]
    boundaries: tuple[int, ...]

    def __call__(self, step: int) -> float:
        _check_step(self, step)
        i = bisect.bisect_right(self.boundaries, step)
        start = self.boundaries[i - 1] if i else 0
        return self.schedules[i](step - start)


_RECORDS = {
    cls.__name__: cls
    for cls in (
        Constant,
        PiecewiseConstant,
        StepDecay,
        ExponentialDecay,
        CosineDecay,
        LinearWarmup,
        Join,
    )
}


def _number(
    fn: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
) -> float:
    """``value`` as a finite float in range, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a number, got {value!r}")
    x = float(value)
    bad = not math.isfinite(x)
    bad = bad or (low is not None and (x <= low if open_low else x < low))
    bad = bad or (high is not None and x > high)
    if bad:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low}"
        hi = "" if high is None else f"<= {high}"
        expected = " and ".join(part for part in (lo, hi) if part) or "finite"
        raise ValueError(f"{fn}: {name} must be {expected}, got {value!r}")
    return x


def _steps(fn: str, name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    n = int(value)
    if n < low:
        raise ValueError(f"{fn}: {name} must be at least {low}, got {value!r}")
    return n


def _boundaries(fn: str, boundaries: Sequence[Any], n: int) -> tuple[int, ...]:
    b = tuple(_steps(fn, "boundaries", s) for s in boundaries)
    if len(b) != n:
        raise ValueError(
            f"{fn}: expected {n} boundaries, one between each pair of "
            f"neighbours, got {len(b)}: {list(b)}"
        )
    if any(x >= y for x, y in zip(b, b[1:])):
        raise ValueError(f"{fn}: boundaries must increase strictly, got {list(b)}")
    return b


def constant(value: float) -> Constant:
    """A schedule that is ``value`` at every step.

    >>> constant(0.1)(1000)
    0.1
    """
    return Constant(_number("constant", "value", value))


def piecewise_constant(
    values: Sequence[float], boundaries: Sequence[int]
) -> PiecewiseConstant:
    r"""A value per interval of steps.

    .. math::
        \eta_t = v_i \quad \text{for } b_{i-1} \le t < b_i,
        \qquad b_{-1} = 0,\ b_{n} = \infty

    Args:
      values: ``n + 1`` values, the first from step 0.
      boundaries: ``n`` strictly increasing positive steps; at step
        ``boundaries[i]`` the value becomes ``values[i + 1]``.

    >>> s = piecewise_constant([0.1, 0.01, 0.001], [10, 20])
    >>> [s(t) for t in (0, 9, 10, 19, 20)]
    [0.1, 0.1, 0.01, 0.01, 0.001]
    """
    v = tuple(_number("piecewise_constant", "values", x) for x in values)
    if not v:
        raise ValueError("piecewise_constant: values must not be empty, got []")
    return PiecewiseConstant(
        v, _boundaries("piecewise_constant", boundaries, len(v) - 1)
    )


def step_decay(init_value: float, every: int, factor: float) -> StepDecay:
    r"""Multiply by ``factor`` every ``every`` steps.

    .. math:: \eta_t = \eta_0\, \gamma^{\lfloor t / k \rfloor}

    Args:
      init_value: :math:`\eta_0`, the value for steps ``0 .. every - 1``.
      every: :math:`k \ge 1`, the steps between two decays.
      factor: :math:`\gamma \ge 0`, e.g. ``0.5``.

    >>> s = step_decay(1.0, 10, 0.5)
    >>> [s(t) for t in (0, 9, 10, 25)]
    [1.0, 1.0, 0.5, 0.25]
    """
    return StepDecay(
        _number("step_decay", "init_value", init_value),
        _steps("step_decay", "every", every),
        _number("step_decay", "factor", factor, low=0.0),
    )


def exponential_decay(
    init_value: float,
    decay_rate: float,
    decay_steps: int = 1,
    staircase: bool = False,
) -> ExponentialDecay:
    r"""Exponential decay by ``decay_rate`` per ``decay_steps`` steps.

    .. math:: \eta_t = \eta_0\, r^{t / k}

    With ``staircase=True`` the exponent is :math:`\lfloor t / k \rfloor`.

    Args:
      init_value: :math:`\eta_0`, the value at step 0.
      decay_rate: :math:`r > 0`.
      decay_steps: :math:`k \ge 1`.
      staircase: whether to decay in whole periods only.

    >>> s = exponential_decay(1.0, 0.5, decay_steps=2)
    >>> [s(t) for t in (0, 1, 2, 4)]
    [1.0, 0.7071067811865476, 0.5, 0.25]
    """
    return ExponentialDecay(
        _number("exponential_decay", "init_value", init_value),
        _number("exponential_decay", "decay_rate", decay_rate, low=0.0, open_low=True),
        _steps("exponential_decay", "decay_steps", decay_steps),
        bool(staircase),
    )


def cosine_decay(
    init_value: float, decay_steps: int, alpha: float = 0.0
) -> CosineDecay:
    r"""Cosine decay to ``alpha * init_value`` over ``decay_steps`` steps.

    .. math::
        \eta_t = \eta_0 \Big((1 - \alpha)\, \tfrac12
        \big(1 + \cos(\pi \min(t, T) / T)\big) + \alpha\Big)

    Args:
      init_value: :math:`\eta_0`, the value at step 0.
      decay_steps: :math:`T \ge 1`; from step ``T`` on the value stays at
        :math:`\alpha \eta_0`.
      alpha: :math:`\alpha \in [0, 1]`, the final value as a share of the
        first.

    References:
      Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
      Restarts", ICLR 2017.

    >>> s = cosine_decay(1.0, 100)
    >>> s(0), round(s(50), 12), s(100), s(150)
    (1.0, 0.5, 0.0, 0.0)
    """
    return CosineDecay(
        _number("cosine_decay", "init_value", init_value),
        _steps("cosine_decay", "decay_steps", decay_steps),
        _number("cosine_decay", "alpha", alpha, low=0.0, high=1.0),
    )


def linear_warmup(
    peak_value: float, warmup_steps: int, init_value: float = 0.0
) -> LinearWarmup:
    r"""Rise linearly from ``init_value`` to ``peak_value``, then stay there.

    .. math::
        \eta_t = \eta_{\text{init}} + (\eta_{\text{peak}} -
        \eta_{\text{init}}) \min(t, W) / W

    Args:
      peak_value: the value from step ``warmup_steps`` on.
      warmup_steps: :math:`W \ge 1`.
      init_value: the value at step 0.

    References:
      Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
      1 Hour", 2017.

    >>> s = linear_warmup(0.4, 4)
    >>> [s(t) for t in (0, 1, 4, 9)]
    [0.0, 0.1, 0.4, 0.4]
    """
    return LinearWarmup(
        _number("linear_warmup", "peak_value", peak_value),
        _steps("linear_warmup", "warmup_steps", warmup_steps),
        _number("linear_warmup", "init_value", init_value),
    )


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Join:
    r"""Run schedules one after another.

    From step ``boundaries[i-1]`` (0 for the first) the value is
    ``schedules[i](step - boundaries[i-1])``: each schedule starts at its own
    step 0.

    Args:
      schedules: ``n + 1`` schedules.
      boundaries: ``n`` strictly increasing positive steps.

    >>> s = join([constant(1.0), step_decay(0.5, 2, 0.1)], [3])
    >>> [round(s(t), 6) for t in (0, 2, 3, 4, 5)]
    [1.0, 1.0, 0.5, 0.5, 0.05]
    """
    parts = tuple(schedules)
    if not parts:
        raise ValueError("join: schedules must not be empty, got []")
    for s in parts:
        if not callable(s):
            raise TypeError(
                f"join: every schedule must be a function of the step, got {s!r}"
            )
    return Join(parts, _boundaries("join", boundaries, len(parts) - 1))


def to_config(schedule: Any) -> dict[str, Any]:
    """A JSON-friendly ``dict`` describing one of the schedule records.

    >>> to_config(step_decay(0.1, 10, 0.5))
    {'schedule': 'StepDecay', 'init_value': 0.1, 'every': 10, 'factor': 0.5}
    """
    name = type(schedule).__name__
    if _RECORDS.get(name) is not type(schedule):
        raise TypeError(
            f"to_config: expected one of the records of funnet.schedules "
            f"{sorted(_RECORDS)}, got {schedule!r}"
        )
    fields = schedule._asdict()
    if name == "Join":
        fields["schedules"] = [to_config(s) for s in schedule.schedules]
    return {
        "schedule": name,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
    }


def from_config(config: Mapping[str, Any]) -> Any:
    """The schedule record that :func:`to_config` described."""
    fields = dict(config)
    name = fields.pop("schedule", None)
    if name not in _RECORDS:
        raise ValueError(
            f"from_config: config['schedule'] must be one of {sorted(_RECORDS)}, "
            f"got {name!r}"
        )
    if name == "Join":
        fields["schedules"] = [from_config(c) for c in fields["schedules"]]
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return _RECORDS[name](**fields)


SYNTAX = """\
A schedule is one part or several joined with '+'; epochs count in
whole or fractional epochs, LR is the base learning rate:
  constant        LR throughout (constant:E lasts E epochs when joined)
  cosine[:E[:A]]  cosine decay from LR to A*LR (default 0) over E epochs
                  (default: to the end of the run), then A*LR
  exp:R           LR * R**epoch, a smooth exponential decay
  step:E:F        multiply by F every E epochs, e.g. step:10:0.5
  warmup:E        linear rise from 0 to LR over E epochs, then LR
  warmup:5+cosine warm up for 5 epochs, then decay over the rest
Every part but the last needs a length (warmup:E, constant:E, cosine:E).
In funnet train, "the end of the run" is the --epochs of the run's first
invocation; a run continued with --resume keeps that schedule, unless a
larger --epochs extends it, which stretches the schedule over the new total
(and says so)."""


def _epochs(spec: str, text: str, steps_per_epoch: int) -> int:
    try:
        epochs = float(text)
    except ValueError:
        epochs = float("nan")
    if not epochs > 0 or not math.isfinite(epochs):
        raise ValueError(
            f"schedule {spec!r}: expected a positive number of epochs, got {text!r}"
        )
    return max(1, round(epochs * steps_per_epoch))


def _float(spec: str, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"schedule {spec!r}: expected {what}, got {text!r}") from None


def _part(
    spec: str, text: str, lr: float, steps: int | None, spe: int
) -> tuple[Any, int | None]:
    """One part of a schedule string: the schedule and its length in steps."""
    name, *args = text.strip().split(":")
    arity = {
        "constant": (0, 1),
        "cosine": (0, 2),
        "exp": (1, 1),
        "step": (2, 2),
        "warmup": (1, 1),
    }
    if name not in arity:
        raise ValueError(
            f"schedule {spec!r}: unknown part {name!r}; expected constant, cosine, "
            f"exp, step or warmup, e.g. 'warmup:5+cosine'"
        )
    low, high = arity[name]
    if not low <= len(args) <= high:
        raise ValueError(
            f"schedule {spec!r}: {name!r} takes {low}"
            f"{'' if low == high else f' or {high}'} argument(s), got {len(args)}"
        )
    if name == "constant":
        return constant(lr), _epochs(spec, args[0], spe) if args else None
    if name == "cosine":
        length = _epochs(spec, args[0], spe) if args else None
        alpha = _float(spec, args[1], "a final share A in [0, 1]") if args[1:] else 0.0
        if length is None and steps is None:
            raise ValueError(
                f"schedule {spec!r}: 'cosine' without a length decays to the end "
                f"of the run, so it needs total_steps; or give it one, e.g. "
                f"'cosine:30'"
            )
        return cosine_decay(lr, length or max(1, steps), alpha), length
    if name == "exp":
        rate = _float(spec, args[0], "a decay rate per epoch")
        return exponential_decay(lr, rate, spe), None
    if name == "step":
        factor = _float(spec, args[1], "a decay factor")
        return step_decay(lr, _epochs(spec, args[0], spe), factor), None
    length = _epochs(spec, args[0], spe)
    return linear_warmup(lr, length), length


def parse(
    spec: str,
    learning_rate: float,
    total_steps: int | None = None,
    steps_per_epoch: int = 1,
) -> Any:
    """A schedule from a short string such as ``"warmup:5+cosine"``.

    Args:
      spec: the description; see :data:`SYNTAX` (also shown by
        ``funnet train --help``). Lengths are in epochs.
      learning_rate: the base value ``LR``.
      total_steps: the updates in the whole run, where a ``cosine``
        without a length ends; only needed for one.
      steps_per_epoch: updates per epoch, to turn epochs into steps.

    Returns:
      A schedule record; joined parts give a :class:`Join`.

    >>> parse("step:10:0.5", 0.1, total_steps=300, steps_per_epoch=10)
    StepDecay(init_value=0.1, every=100, factor=0.5)
    >>> s = parse("warmup:1+cosine", 1.0, total_steps=30, steps_per_epoch=10)
    >>> s.boundaries, s(10), s(30)
    ((10,), 1.0, 0.0)
    >>> parse("cosine:3:0.1", 1.0, steps_per_epoch=10)
    CosineDecay(init_value=1.0, decay_steps=30, alpha=0.1)
    """
    if not isinstance(spec, str):
        raise TypeError(f"schedule must be a string like 'cosine', got {spec!r}")
    lr = _number("parse", "learning_rate", learning_rate)
    total = None if total_steps is None else _steps("parse", "total_steps", total_steps)
    spe = _steps("parse", "steps_per_epoch", steps_per_epoch)
    texts = spec.split("+")
    parts, boundaries, start = [], [], 0
    for i, text in enumerate(texts):
        rest = None if total is None else total - start
        schedule, length = _part(spec, text, lr, rest, spe)
        parts.append(schedule)
        if i < len(texts) - 1:
            if length is None:
                raise ValueError(
                    f"schedule {spec!r}: {text!r} is followed by another part, so "
                    f"it needs a length in epochs, e.g. 'warmup:5' or 'cosine:5'"
                )
            start += length
            boundaries.append(start)
    return parts[0] if len(parts) == 1 else join(parts, boundaries)
