"""Overhead on a small model: 20 epochs of digits at batch 64.

``python -m benchmarks.small`` trains ``64-128-10`` (the command line's
default net) on the bundled digits, float32, with SGD and with Adam, and
prints the median training time of several runs beside the same schedule
written out by hand in NumPy. Small matrices make Python overhead, not
arithmetic, the cost: the target is under 0.3 s of training time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

import funnet
from funnet import optimizers
from funnet.training import batches, fit, init_train_state, make_step

TARGET_S = 0.3


def _funnet_seconds(X, y, opt, epochs, batch):
    net = funnet.mlp([128], n_outputs=10)
    params = funnet.init(net, X.shape[1], seed=0, dtype=X.dtype)
    optimizer = optimizers.sgd(0.1) if opt == "sgd" else optimizers.adam(1e-3)
    step = make_step(net, funnet.losses.softmax_cross_entropy, optimizer)
    state = init_train_state(params, optimizer)
    start = time.perf_counter()
    state = fit(step, batches(X, y, batch, seed=0, epochs=epochs), state)
    return time.perf_counter() - start, float(state.loss)


def _numpy_seconds(X, y, epochs, batch):
    rng = np.random.default_rng(0)
    W1 = rng.uniform(-0.3, 0.3, (X.shape[1], 128)).astype(X.dtype)
    W2 = rng.uniform(-0.2, 0.2, (128, 10)).astype(X.dtype)
    b1, b2 = np.zeros(128, X.dtype), np.zeros(10, X.dtype)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = np.random.default_rng([0, epoch]).permutation(len(X))
        for s in range(0, len(X), batch):
            idx = order[s : s + batch]
            Xb, yb = X[idx], y[idx]
            Z1 = Xb @ W1 + b1
            A1 = np.maximum(Z1, 0)
            Z2 = A1 @ W2 + b2
            E = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
            P = E / E.sum(axis=1, keepdims=True)
            P[np.arange(len(yb)), yb] -= 1.0
            dZ2 = P * (1.0 / len(yb))
            dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
            W2, b2 = W2 - 0.1 * (A1.T @ dZ2), b2 - 0.1 * dZ2.sum(axis=0)
            W1, b1 = W1 - 0.1 * (Xb.T @ dZ1), b1 - 0.1 * dZ1.sum(axis=0)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.small", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    X, y = funnet.datasets.load("digits")
    X = (X / 16.0).astype(np.float32)
    steps = args.epochs * -(-len(X) // args.batch)
    result = {
        "samples": len(X),
        "epochs": args.epochs,
        "batch": args.batch,
        "steps": steps,
    }
    for opt in ("sgd", "adam"):
        times = [
            _funnet_seconds(X, y, opt, args.epochs, args.batch)[0]
            for _ in range(args.runs)
        ]
        result[f"funnet_{opt}_s"] = statistics.median(times)
    result["numpy_sgd_s"] = statistics.median(
        _numpy_seconds(X, y, args.epochs, args.batch) for _ in range(args.runs)
    )
    for key in ("funnet_sgd_s", "funnet_adam_s", "numpy_sgd_s"):
        t = result[key]
        print(f"{key[:-2]:<12} {t:.3f} s  ({1e6 * t / steps:.0f} us/step)")
    for opt in ("sgd", "adam"):
        t = result[f"funnet_{opt}_s"]
        ok = "ok  " if t < TARGET_S else "MISS"
        print(
            f"{ok} funnet {opt}: {t:.3f} s for {args.epochs} epochs of digits "
            f"at batch {args.batch} (target < {TARGET_S} s)"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
