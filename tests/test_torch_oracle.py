r"""funnet's optimizers against ``torch.optim``, step for step.

Each optimizer runs 50 steps on the same float64 gradients, drawn in advance
(they do not depend on the params, so both sides see identical inputs), with
the same hyperparameters; the params must agree to a relative 1e-6 after
every step. Skipped when PyTorch is not installed (``pip install
'funnet[oracle]'``).

Where the two conventions differ, the test maps one onto the other:

- RMSProp: PyTorch calls the decay ``alpha``; funnet calls it ``decay``.
- AdamW: PyTorch decays every param; funnet's default mask leaves 1-D
  params (biases) alone, so the test passes a mask that selects all.
- Adam: funnet folds the bias corrections into a scalar step size and an
  :math:`\epsilon` scaled by :math:`\sqrt{1 - \beta_2^t}`; this is an
  exact rewriting of Algorithm 1 (PyTorch computes the same quantity as
  ``m / (1 - b1**t) / (sqrt(v) / sqrt(1 - b2**t) + eps)``), so only the
  rounding differs.
- Momentum: both keep the velocity free of the learning rate
  (:math:`v = \mu v + g`, step :math:`-\eta v`), PyTorch's ``SGD``
  convention with no dampening.
"""

import numpy as np
import pytest

from funnet import optimizers, schedules
from funnet.params import Params

torch = pytest.importorskip("torch")

STEPS = 50
SHAPES = {"W1": (5, 4), "b1": (4,), "W2": (4, 3), "b2": (3,)}


def _all(name, param):
    return True


CASES = {
    "sgd": (lambda: optimizers.sgd(0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "momentum": (
        lambda: optimizers.momentum(0.05, 0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    "nesterov": (
        lambda: optimizers.nesterov(0.05, 0.8),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    ),
    "adagrad": (
        lambda: optimizers.adagrad(0.1, eps=1e-10, initial_accumulator_value=0.1),
        lambda p: torch.optim.Adagrad(
            p, lr=0.1, eps=1e-10, initial_accumulator_value=0.1
        ),
    ),
    "rmsprop": (
        lambda: optimizers.rmsprop(0.01, decay=0.9, eps=1e-8),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8),
    ),
    "rmsprop-momentum": (
        lambda: optimizers.rmsprop(0.01, decay=0.95, eps=1e-6, momentum=0.7),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-6, momentum=0.7),
    ),
    "rmsprop-centered": (
        lambda: optimizers.rmsprop(0.01, decay=0.99, momentum=0.5, centered=True),
        lambda p: torch.optim.RMSprop(
            p, lr=0.01, alpha=0.99, momentum=0.5, centered=True
        ),
    ),
    "adam": (
        lambda: optimizers.adam(0.01, b1=0.8, b2=0.99, eps=1e-7),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7),
    ),
    "adamw": (
        lambda: optimizers.adamw(
            0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1, mask=_all
        ),
        lambda p: torch.optim.AdamW(
            p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1
        ),
    ),
}


def _problem(seed):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [
        {k: rng.normal(size=s) * rng.uniform(0.1, 3) for k, s in SHAPES.items()}
        for _ in range(STEPS)
    ]
    return params, grads


def _assert_agree(mine, theirs, step):
    for k, tensor in theirs.items():
        np.testing.assert_allclose(
            mine[k],
            tensor.detach().numpy(),
            rtol=1e-6,
            atol=1e-12,
            err_msg=f"{k} after step {step}",
        )


@pytest.mark.parametrize("name", list(CASES))
def test_fifty_steps_agree_with_torch_optim(name):
    make_mine, make_theirs = CASES[name]
    start, grads = _problem(seed=sorted(CASES).index(name))
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in start.items()
    }
    theirs = make_theirs(list(tensors.values()))
    opt = make_mine()
    params = Params(start)
    state = opt.init(params)
    for t, g in enumerate(grads, 1):
        updates, state = opt.update(Params(g), state, params)
        params = optimizers.apply_updates(params, updates)
        for k, tensor in tensors.items():
            tensor.grad = torch.tensor(g[k], dtype=torch.float64)
        theirs.step()
        _assert_agree(params, tensors, t)
    assert optimizers.update_count(state) == STEPS


def test_a_step_schedule_agrees_with_torch_step_lr():
    start, grads = _problem(seed=11)
    tensors = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
        for k, v in start.items()
    }
    theirs = torch.optim.SGD(list(tensors.values()), lr=0.1, momentum=0.9)
    lr_steps = torch.optim.lr_scheduler.StepLR(theirs, step_size=7, gamma=0.5)
    opt = optimizers.momentum(schedules.step_decay(0.1, 7, 0.5), 0.9)
    params = Params(start)
    state = opt.init(params)
    for t, g in enumerate(grads, 1):
        updates, state = opt.update(Params(g), state, params)
        params = optimizers.apply_updates(params, updates)
        assert state.learning_rate == pytest.approx(theirs.param_groups[0]["lr"])
        for k, tensor in tensors.items():
            tensor.grad = torch.tensor(g[k], dtype=torch.float64)
        theirs.step()
        lr_steps.step()
        _assert_agree(params, tensors, t)
