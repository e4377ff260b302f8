"""Schedules: values at their boundaries, shapes over time, the string syntax."""

import json
import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnet import schedules
from funnet.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    join,
    linear_warmup,
    parse,
    piecewise_constant,
    step_decay,
)

_value = st.floats(1e-6, 10.0)
_steps = st.integers(1, 10_000)


@given(_value, st.integers(0, 10**9))
def test_a_constant_is_the_same_at_every_step(v, t):
    assert constant(v)(t) == v


@given(_value, _steps, st.floats(0.0, 1.0))
def test_cosine_decay_starts_at_the_value_halves_midway_and_ends_at_alpha(v, T, alpha):
    s = cosine_decay(v, T, alpha)
    assert s(0) == pytest.approx(v)
    assert s(T) == pytest.approx(alpha * v)
    assert s(T + 1) == s(10 * T) == s(T)
    if T % 2 == 0:
        assert s(T // 2) == pytest.approx(v * (1 + alpha) / 2)
    values = [s(t) for t in range(0, T + 1, max(1, T // 50))]
    assert all(a >= b - 1e-15 for a, b in zip(values, values[1:]))


@given(_value, _steps, st.floats(0.0, 1.0))
def test_linear_warmup_rises_in_a_straight_line_then_stays_at_the_peak(peak, W, start):
    s = linear_warmup(peak, W, start)
    assert s(0) == start
    assert s(W) == pytest.approx(peak)
    assert s(W + 5) == s(W)
    t = W // 3
    assert s(t) == pytest.approx(start + (peak - start) * t / W)


@given(_value, st.integers(1, 100), st.floats(0.0, 1.0), st.integers(0, 10))
def test_step_decay_drops_by_the_factor_exactly_at_each_multiple(v, k, f, n):
    s = step_decay(v, k, f)
    assert s(n * k) == pytest.approx(v * f**n)
    if n:
        assert s(n * k - 1) == pytest.approx(v * f ** (n - 1))


@given(_value, st.floats(0.01, 1.0), st.integers(1, 100), st.integers(0, 1000))
def test_exponential_decay_follows_the_rate_smoothly_or_in_stairs(v, r, k, t):
    assert exponential_decay(v, r, k)(t) == pytest.approx(v * r ** (t / k))
    assert exponential_decay(v, r, k, staircase=True)(t) == pytest.approx(
        v * r ** (t // k)
    )
    assert exponential_decay(v, r, k)(k) == pytest.approx(v * r)


@given(st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True))
def test_piecewise_constant_switches_exactly_at_the_boundaries(raw):
    bounds = sorted(raw)
    values = [float(i + 1) for i in range(len(bounds) + 1)]
    s = piecewise_constant(values, bounds)
    assert s(0) == values[0]
    for i, b in enumerate(bounds):
        assert s(b - 1) == values[i]
        assert s(b) == values[i + 1]


def test_join_restarts_each_schedule_at_its_boundary():
    s = join([linear_warmup(1.0, 10), cosine_decay(1.0, 20), constant(0.01)], [10, 30])
    assert [s(t) for t in (0, 5, 10)] == [0.0, 0.5, 1.0]
    assert s(20) == pytest.approx(0.5)
    assert s(29) == pytest.approx(cosine_decay(1.0, 20)(19))
    assert s(30) == s(100) == 0.01


def test_schedules_are_plain_records_that_round_trip_through_json_and_pickle():
    s = join([linear_warmup(0.1, 5), step_decay(0.1, 10, 0.5)], [5])
    text = json.dumps(schedules.to_config(s))
    back = schedules.from_config(json.loads(text))
    assert back == s and [back(t) for t in range(40)] == [s(t) for t in range(40)]
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(AttributeError):
        s.boundaries = (1,)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("constant", constant(0.1)),
        ("cosine", cosine_decay(0.1, 300)),
        ("cosine:5:0.1", cosine_decay(0.1, 50, 0.1)),
        ("cosine:5+constant", join([cosine_decay(0.1, 50), constant(0.1)], [50])),
        ("exp:0.9", exponential_decay(0.1, 0.9, 10)),
        ("step:10:0.5", step_decay(0.1, 100, 0.5)),
        ("warmup:2", linear_warmup(0.1, 20)),
        (
            "warmup:5+cosine",
            join([linear_warmup(0.1, 50), cosine_decay(0.1, 250)], [50]),
        ),
        (
            "warmup:0.5+constant:2+step:5:0.1",
            join(
                [linear_warmup(0.1, 5), constant(0.1), step_decay(0.1, 50, 0.1)],
                [5, 25],
            ),
        ),
    ],
)
def test_parse_reads_the_short_syntax_in_epochs(spec, expected):
    assert parse(spec, 0.1, total_steps=300, steps_per_epoch=10) == expected


def test_warmup_then_cosine_from_the_command_line_ends_at_zero_on_the_last_step():
    s = parse("warmup:5+cosine", 0.1, total_steps=300, steps_per_epoch=10)
    assert s(0) == 0 and s(50) == pytest.approx(0.1) and s(300) == 0.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("linear", r"unknown part 'linear'; expected constant, cosine"),
        ("step:10", r"'step' takes 2 argument\(s\), got 1"),
        (
            "cosine+warmup:5",
            r"'cosine' is followed by another part, so it needs a length",
        ),
        ("warmup:-1", r"expected a positive number of epochs, got '-1'"),
        ("step:x:0.5", r"expected a positive number of epochs, got 'x'"),
        ("cosine:5:2", r"cosine_decay: alpha must be >= 0.0 and <= 1.0, got 2.0"),
        ("exp:fast", r"expected a decay rate per epoch, got 'fast'"),
    ],
    ids=[
        "unknown",
        "missing-argument",
        "no-length",
        "negative",
        "not-a-number",
        "alpha-too-big",
        "bad-rate",
    ],
)
def test_parse_errors_name_the_string_and_what_was_expected(spec, message):
    with pytest.raises(ValueError, match=message):
        parse(spec, 0.1, total_steps=100)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: constant("0.1"),
            TypeError,
            r"constant: value must be a number, got '0.1'",
        ),
        (
            lambda: constant(math.nan),
            ValueError,
            r"constant: value must be finite, got nan",
        ),
        (
            lambda: step_decay(0.1, 0, 0.5),
            ValueError,
            r"every must be at least 1, got 0",
        ),
        (
            lambda: step_decay(0.1, 2.5, 0.5),
            TypeError,
            r"every must be an int, got 2.5",
        ),
        (lambda: exponential_decay(0.1, 0.0), ValueError, r"decay_rate must be > 0.0"),
        (
            lambda: piecewise_constant([1.0, 2.0], []),
            ValueError,
            r"expected 1 boundaries",
        ),
        (
            lambda: piecewise_constant([1.0, 2.0, 3.0], [5, 5]),
            ValueError,
            r"increase strictly",
        ),
        (
            lambda: join([constant(1.0), 2.0], [3]),
            TypeError,
            r"function of the step, got 2.0",
        ),
        (
            lambda: schedules.from_config({"schedule": "Sine"}),
            ValueError,
            r"must be one of",
        ),
        (
            lambda: schedules.to_config(lambda t: 1.0),
            TypeError,
            r"expected one of the records",
        ),
    ],
    ids=[
        "string",
        "nan",
        "zero-every",
        "float-every",
        "zero-rate",
        "missing-boundary",
        "equal-boundaries",
        "number-in-join",
        "unknown-config",
        "lambda-config",
    ],
)
def test_bad_arguments_raise_a_message_naming_them(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_a_cosine_with_a_length_does_not_depend_on_the_length_of_the_run():
    short = parse("warmup:1+cosine:29", 0.1, total_steps=20, steps_per_epoch=10)
    long = parse("warmup:1+cosine:29", 0.1, total_steps=3000, steps_per_epoch=10)
    assert short == long == parse("warmup:1+cosine:29", 0.1, steps_per_epoch=10)
    with pytest.raises(ValueError, match=r"'cosine' without a length .* 'cosine:30'"):
        parse("cosine", 0.1, steps_per_epoch=10)


@pytest.mark.parametrize(
    "schedule",
    [
        constant(0.1),
        cosine_decay(0.1, 10),
        linear_warmup(0.1, 10),
        join([linear_warmup(1.0, 10), cosine_decay(1.0, 20)], [10]),
    ],
    ids=["constant", "cosine", "warmup", "join"],
)
def test_schedules_refuse_negative_steps(schedule):
    with pytest.raises(ValueError, match="step must be >= 0 .* got -5"):
        schedule(-5)
