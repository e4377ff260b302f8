"""The contenders: one training function per side, same net, data and schedule.

Every side trains a ``784-512-512-10`` ReLU MLP with softmax cross-entropy
on the same random data, for the same epochs, batch size and optimizer, and
returns the resident memory after each epoch. Each runs in its own process
(see :mod:`benchmarks._measure`), so no side warms a cache or an allocator
for another.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

__all__ = ["SIDES", "make_data", "rss_bytes", "gemm_rate", "HIDDEN", "N_CLASSES"]

HIDDEN = (512, 512)
N_CLASSES = 10
SGD_LR = 0.01
ADAM_LR = 1e-3
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def make_data(n: int, n_features: int, dtype: str, seed: int = 0):
    """Random inputs ``(n, n_features)`` of ``dtype`` and int64 labels ``(n,)``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    X = X.astype(dtype, copy=False)
    y = rng.integers(0, N_CLASSES, size=n).astype(np.int64)
    return X, y


def rss_bytes() -> int:
    """The process's current resident set size."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _order(n: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([1234, epoch]).permutation(n)


# --------------------------------------------------------------------------
# funnet


def train_funnet(X, y, batch, opt, epochs):
    import funnet
    from funnet import optimizers
    from funnet.training import batches, fit, init_train_state, make_step

    net = funnet.mlp(list(HIDDEN), n_outputs=N_CLASSES)
    params = funnet.init(net, X.shape[1], seed=0, dtype=X.dtype)
    if opt == "sgd":
        optimizer = optimizers.sgd(SGD_LR)
    else:
        optimizer = optimizers.adam(ADAM_LR)
    step = make_step(net, funnet.losses.softmax_cross_entropy, optimizer)
    state = init_train_state(params, optimizer)
    rss = []

    def recorded(data):
        # The resident size at each epoch's end, read as the next epoch's
        # first batch (or the end of the data) comes up: one fit over all
        # epochs, as a user would train, with no state held between calls.
        epoch = 0
        for b in data:
            if b.epoch != epoch:
                rss.append(rss_bytes())
                epoch = b.epoch
            yield b
        rss.append(rss_bytes())

    state = fit(step, recorded(batches(X, y, batch, seed=0, epochs=epochs)), state)
    assert state.params["W1"].dtype == X.dtype and len(rss) == epochs
    return rss, float(state.loss)


# --------------------------------------------------------------------------
# A plain NumPy step written out by hand: new arrays every step, none mutated.


def _init_numpy(n_in, dtype):
    rng = np.random.default_rng(0)
    sizes = (n_in, *HIDDEN, N_CLASSES)
    params = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        gain = 6.0 if i < len(HIDDEN) else 3.0
        limit = np.sqrt(gain / (a if i < len(HIDDEN) else (a + b) / 2))
        W = rng.uniform(-limit, limit, size=(a, b)).astype(dtype)
        params += [W, np.zeros(b, dtype)]
    return tuple(params)


def _numpy_grads(params, X, y):
    W1, b1, W2, b2, W3, b3 = params
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Z2 = A1 @ W2 + b2
    A2 = np.maximum(Z2, 0)
    Z3 = A2 @ W3 + b3
    n = len(X)
    S = Z3 - Z3.max(axis=1, keepdims=True)
    E = np.exp(S)
    sumE = E.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = (np.log(sumE[:, 0]) - S[rows, y]).mean()
    dZ3 = E / sumE
    dZ3[rows, y] -= 1.0
    dZ3 = dZ3 * (1.0 / n)
    dW3 = A2.T @ dZ3
    db3 = dZ3.sum(axis=0)
    dZ2 = (dZ3 @ W3.T) * (Z2 > 0)
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return loss, (dW1, db1, dW2, db2, dW3, db3)


def _numpy_sgd_step(params, X, y):
    loss, grads = _numpy_grads(params, X, y)
    return tuple(p - SGD_LR * g for p, g in zip(params, grads)), loss


def _numpy_adam_step(state, X, y):
    params, m, v, t = state
    loss, grads = _numpy_grads(params, X, y)
    t = t + 1
    # A Python float: a NumPy float64 scalar would upcast float32 arrays.
    lr_t = ADAM_LR * math.sqrt(1 - BETA2**t) / (1 - BETA1**t)
    m = tuple(BETA1 * mi + (1 - BETA1) * g for mi, g in zip(m, grads))
    v = tuple(BETA2 * vi + (1 - BETA2) * (g * g) for vi, g in zip(v, grads))
    params = tuple(
        p - lr_t * mi / (np.sqrt(vi) + EPS) for p, mi, vi in zip(params, m, v)
    )
    return (params, m, v, t), loss


def train_numpy(X, y, batch, opt, epochs):
    params = _init_numpy(X.shape[1], X.dtype)
    if opt == "sgd":
        state, step = params, _numpy_sgd_step
    else:
        zeros = tuple(np.zeros_like(p) for p in params)
        state, step = (params, zeros, zeros, 0), _numpy_adam_step
    rss = []
    loss = None
    n = len(X)
    for epoch in range(epochs):
        order = _order(n, epoch)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            state, loss = step(state, X[idx], y[idx])
        rss.append(rss_bytes())
    final = state if opt == "sgd" else state[0]
    assert final[0].dtype == X.dtype
    return rss, float(loss)


# --------------------------------------------------------------------------
# PyTorch eager


def train_torch(X, y, batch, opt, epochs):
    import torch

    dtype = {"float32": torch.float32, "float64": torch.float64}[str(X.dtype)]
    torch.manual_seed(0)
    sizes = (X.shape[1], *HIDDEN)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b).to(dtype), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-1], N_CLASSES, dtype=dtype))
    model = torch.nn.Sequential(*layers)
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=SGD_LR)
    else:
        optimizer = torch.optim.Adam(
            model.parameters(), lr=ADAM_LR, betas=(BETA1, BETA2), eps=EPS
        )
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    rss = []
    n = len(X)
    for epoch in range(epochs):
        order = torch.from_numpy(_order(n, epoch))
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
        rss.append(rss_bytes())
    assert model[0].weight.dtype == dtype
    return rss, float(loss)


# --------------------------------------------------------------------------
# scikit-learn MLPClassifier


def train_sklearn(X, y, batch, opt, epochs):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    common = dict(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        alpha=0.0,
        batch_size=batch,
        max_iter=epochs,
        shuffle=True,
        random_state=0,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        early_stopping=False,
    )
    if opt == "sgd":
        clf = MLPClassifier(
            solver="sgd",
            learning_rate_init=SGD_LR,
            momentum=0.0,
            nesterovs_momentum=False,
            learning_rate="constant",
            **common,
        )
    else:
        clf = MLPClassifier(
            solver="adam",
            learning_rate_init=ADAM_LR,
            beta_1=BETA1,
            beta_2=BETA2,
            epsilon=EPS,
            **common,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.coefs_[0].dtype == X.dtype
    # MLPClassifier trains all epochs in one call: one reading at the end.
    return [rss_bytes()] * epochs, float(clf.loss_)


SIDES: dict[str, Callable] = {
    "funnet": train_funnet,
    "numpy": train_numpy,
    "torch": train_torch,
    "sklearn": train_sklearn,
}


def gemm_rate(batch: int, n_features: int, dtype: str, seconds: float = 1.0) -> float:
    """Samples/s allowed by the step's eight matrix products alone.

    Forward ``X W1, A1 W2, A2 W3``; backward ``A2^T dZ3, dZ3 W3^T, A1^T dZ2,
    dZ2 W2^T, X^T dZ1`` (the input's own gradient is never needed).
    """
    import time

    rng = np.random.default_rng(0)
    r = lambda *s: rng.standard_normal(s, dtype=np.float32).astype(dtype)  # noqa: E731
    h1, h2 = HIDDEN
    X, W1, W2, W3 = r(batch, n_features), r(n_features, h1), r(h1, h2), r(h2, N_CLASSES)
    A1, A2 = r(batch, h1), r(batch, h2)
    dZ1, dZ2, dZ3 = r(batch, h1), r(batch, h2), r(batch, N_CLASSES)

    def products():
        X @ W1
        A1 @ W2
        A2 @ W3  # noqa: E702
        A2.T @ dZ3
        dZ3 @ W3.T
        A1.T @ dZ2
        dZ2 @ W2.T
        X.T @ dZ1  # noqa: E702

    for _ in range(10):
        products()
    reps, best = 0, []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        for _ in range(10):
            products()
        best.append((time.perf_counter() - t) / 10)
        reps += 10
    return batch / float(np.median(best))
