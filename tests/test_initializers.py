r"""Initializers: their statistics match their formulas, and they are pure.

Sample sizes and tolerances. Each statistical check draws at least
``N = 200_000`` values. A sample variance of ``N`` values with kurtosis
:math:`\kappa` has relative standard error :math:`\sqrt{(\kappa - 1)/N}`
(0.0020 for a uniform, :math:`\kappa = 1.8`; 0.0032 for a normal,
:math:`\kappa = 3`). Checks allow 6 standard errors, so a correct
implementation fails one with probability about :math:`2\cdot10^{-9}`,
while a wrong constant (a factor 1.05 in the standard deviation changes
the variance by 10%) fails every time. The uniform bound is pinned from
both sides: no value exceeds :math:`a`, and the largest of ``N`` values
falls below :math:`a(1 - 10^{-4})` with probability :math:`e^{-20}`.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnet import initializers, models
from funnet.layers import dense, serial, tanh
from funnet.testing import assert_pure, forbid_global_random

N = 200_000

UNIFORM = {
    "glorot_uniform": lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out)),
    "he_uniform": lambda fan_in, fan_out: math.sqrt(6 / fan_in),
}
NORMAL = {
    "glorot_normal": lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)),
    "he_normal": lambda fan_in, fan_out: math.sqrt(2 / fan_in),
    "lecun_normal": lambda fan_in, fan_out: math.sqrt(1 / fan_in),
}
ALL = sorted([*UNIFORM, *NORMAL, "zeros"])

# Weight shapes with at least 1000 entries, so a sample needs few draws.
shapes = st.integers(1, 1000).flatmap(
    lambda fan_in: st.tuples(st.just(fan_in), st.integers(-(-1000 // fan_in), 1000))
)


def sample(name, shape, seed):
    """At least ``N`` values from one initializer, float64, drawn in ``shape``."""
    rng = np.random.default_rng(seed)
    init = initializers.get(name)
    draws = -(-N // (shape[0] * shape[1]))
    return np.concatenate([init(rng, shape, np.float64).ravel() for _ in range(draws)])


def assert_within_standard_errors(estimate, expected, standard_error, what):
    assert abs(estimate - expected) <= 6 * standard_error, (
        f"{what}: {estimate} differs from {expected} by more than 6 standard "
        f"errors ({standard_error:.3g})"
    )


@settings(max_examples=8)
@pytest.mark.parametrize("name", sorted(UNIFORM))
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_uniform_initializers_match_their_bound_and_variance(name, shape, seed):
    a = UNIFORM[name](*shape)
    W = sample(name, shape, seed)
    assert np.abs(W).max() <= a
    assert np.abs(W).max() >= a * (1 - 1e-4)
    # U(-a, a): mean 0, variance a^2 / 3, kurtosis 1.8.
    var = a * a / 3
    assert_within_standard_errors(W.mean(), 0.0, math.sqrt(var / len(W)), "mean")
    assert_within_standard_errors(
        W.var() / var, 1.0, math.sqrt(0.8 / len(W)), "variance / (a^2 / 3)"
    )


@settings(max_examples=8)
@pytest.mark.parametrize("name", sorted(NORMAL))
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_normal_initializers_match_their_standard_deviation(name, shape, seed):
    std = NORMAL[name](*shape)
    W = sample(name, shape, seed)
    n = len(W)
    assert_within_standard_errors(W.mean(), 0.0, std / math.sqrt(n), "mean")
    assert_within_standard_errors(
        W.var() / std**2, 1.0, math.sqrt(2 / n), "variance / std^2"
    )
    # Untruncated: 4.55% of a normal lies beyond two standard deviations.
    tail = float(np.mean(np.abs(W) > 2 * std))
    p = math.erfc(2 / math.sqrt(2))
    assert_within_standard_errors(tail, p, math.sqrt(p * (1 - p) / n), "tail share")


def test_he_uniform_and_he_normal_share_the_standard_deviation_sqrt_2_over_fan_in():
    rng = np.random.default_rng(0)
    fan_in = 50
    for init in (initializers.he_uniform, initializers.he_normal):
        W = init(rng, (fan_in, 4000), np.float64)
        std = math.sqrt(2 / fan_in)
        assert_within_standard_errors(
            W.std() / std, 1.0, math.sqrt(2 / W.size), init.__name__
        )


@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 5)))
def test_zeros_is_all_zeros_of_the_requested_dtype(shape):
    for dtype in (np.float32, np.float64):
        W = initializers.zeros(np.random.default_rng(0), shape, dtype)
        assert W.dtype == dtype and W.shape == shape and not W.any()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_initializers_return_the_requested_dtype_and_shape(name, dtype):
    W = initializers.get(name)(np.random.default_rng(0), (7, 3), dtype)
    assert W.dtype == dtype and W.shape == (7, 3)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_gives_bit_identical_values_and_different_seeds_differ(name):
    init = initializers.get(name)
    first = init(np.random.default_rng(3), (20, 10), np.float64)
    again = init(np.random.default_rng(3), (20, 10), np.float64)
    other = init(np.random.default_rng(4), (20, 10), np.float64)
    assert first.tobytes() == again.tobytes()
    if name != "zeros":
        assert first.tobytes() != other.tobytes()


@pytest.mark.parametrize("name", ALL)
def test_initializers_neither_read_nor_change_the_global_random_state(name):
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    with forbid_global_random():
        initializers.get(name)(np.random.default_rng(0), (6, 4), np.float64)
    assert (np.random.get_state()[1] == before).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_init_is_reproducible_pure_and_keeps_the_dtype(dtype):
    net = serial(dense(5), tanh(), dense(3))
    with forbid_global_random():
        params = assert_pure(models.init, net, 4, 7, dtype)
        again = models.init(net, 4, seed=7, dtype=dtype)
        other = models.init(net, 4, seed=8, dtype=dtype)
    assert all(params[k].tobytes() == again[k].tobytes() for k in params)
    assert any(params[k].tobytes() != other[k].tobytes() for k in params)
    assert params.dtype == dtype


def test_model_init_does_not_advance_a_generator_passed_as_seed():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    first = models.init(serial(dense(3)), 2, seed=rng)
    assert rng.bit_generator.state == state
    assert first.equals(models.init(serial(dense(3)), 2, seed=rng))


def test_a_weight_initializer_given_a_bias_shape_says_it_needs_two_dimensions():
    with pytest.raises(ValueError, match=r"needs a 2-D shape \(fan_in, fan_out\)"):
        initializers.glorot_uniform(np.random.default_rng(0), (3,))


def test_an_unknown_initializer_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot'.*he_normal"):
        initializers.get("glorot")
