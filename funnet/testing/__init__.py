r"""Property-based testing of neural-network math: strategies and checks.

This module is for anyone who writes a layer, a loss or an optimizer and
wants to know that its math is right. It has four parts:

Strategies (hypothesis)
    :func:`dtypes`, :func:`sizes`, :func:`layer_sizes`, :func:`networks`,
    :func:`params_for`, :func:`features`, :func:`logits`, :func:`labels`,
    :func:`one_hot`, :func:`probabilities`, :func:`binary_targets`,
    :func:`classification_batches`, :func:`layer_cases`,
    :func:`learning_rates`, :func:`schedules`.
Gradient checks
    :func:`check_grads` compares an analytic gradient with central finite
    differences; :func:`layer_objective`, :func:`loss_objective` and
    :func:`net_objective` turn a layer, a loss or a network into the
    scalar function it checks.
Purity checks
    :func:`assert_pure` and :func:`forbid_global_random`.
Invariants
    ``assert_*`` functions for the properties every softmax, cross-entropy
    and gradient must have, written to take the function under test.

It needs `hypothesis <https://hypothesis.readthedocs.io>`_, which funnet
itself does not: install it with ``pip install 'funnet[testing]'``.
``import funnet`` never imports this module.

>>> import numpy as np
>>> from hypothesis import given, settings
>>> from funnet.layers import dense, relu, serial
>>> @settings(max_examples=5, deadline=None)
... @given(layer_cases(serial(dense(3), relu(), dense(2))))
... def test_backward(case):
...     check_grads(layer_objective(case.layer), case.params, case.X)
>>> test_backward()
"""

try:
    import hypothesis  # noqa: F401 - only to fail early with advice
except ImportError as exc:
    raise ImportError(
        "funnet.testing needs the hypothesis package, which funnet does not "
        "install by default; install it with: pip install 'funnet[testing]'"
    ) from exc

from funnet.testing._common import tolerances
from funnet.testing.gradients import (
    INPUT,
    GradCheckReport,
    GradientCheckError,
    Mismatch,
    Objective,
    check_grads,
    layer_objective,
    loss_objective,
    net_objective,
)
from funnet.testing.invariants import (
    assert_bce_is_two_class_cross_entropy,
    assert_concat_is_weighted_mean,
    assert_cross_entropy_is_log_softmax,
    assert_descent_lowers_loss,
    assert_permutation_invariant,
    assert_probability_rows,
    assert_shift_invariant,
    assert_softmax_ce_grad_is_p_minus_y,
)
from funnet.testing.purity import assert_pure, forbid_global_random
from funnet.testing.strategies import (
    LayerCase,
    binary_targets,
    classification_batches,
    dtypes,
    features,
    labels,
    layer_cases,
    layer_sizes,
    learning_rates,
    logits,
    networks,
    one_hot,
    params_for,
    probabilities,
    schedules,
    sizes,
)

__all__ = [
    # strategies
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
    # gradient checks
    "INPUT",
    "Objective",
    "Mismatch",
    "GradientCheckError",
    "GradCheckReport",
    "tolerances",
    "check_grads",
    "layer_objective",
    "loss_objective",
    "net_objective",
    # purity
    "assert_pure",
    "forbid_global_random",
    # invariants
    "assert_probability_rows",
    "assert_shift_invariant",
    "assert_cross_entropy_is_log_softmax",
    "assert_bce_is_two_class_cross_entropy",
    "assert_softmax_ce_grad_is_p_minus_y",
    "assert_descent_lowers_loss",
    "assert_permutation_invariant",
    "assert_concat_is_weighted_mean",
]
