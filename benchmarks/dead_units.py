"""Adam's update when some units are dead: the cost of subnormal moments.

``python -m benchmarks.dead_units`` times one Adam update of the
``784-512-512-10`` network's params (float32), with one hidden unit in 16
dead: the gradients of its weights and bias are exactly zero. Over a long
run the first moments of those weights decay into the subnormal numbers and,
without a flush, stay a few units in the last place above zero. Three cases,
interleaved in rounds, medians:

- ``clean``: the dead units' moments are zero, as funnet keeps them after
  its periodic flush (see :mod:`funnet.optimizers.rules`);
- ``stuck``: their first moments are subnormal, as a run leaves them
  without the flush;
- ``flush``: the update that flushes them (its count a multiple of
  ``FLUSH_EVERY``), from the stuck state; ``flush clean``, the same update
  when nothing is subnormal: what the flush costs once every
  ``FLUSH_EVERY`` updates.

With PyTorch installed, its ``Adam`` (foreach, the default on a CPU) runs
the ``clean`` and ``stuck`` cases too; its times include putting the state
back after each update (a copy of the first moment and of the params), so
compare its two cases with each other, not with funnet's.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from funnet.optimizers import AdamState, adam
from funnet.optimizers.rules import FLUSH_EVERY
from funnet.params import Params

SIZES = (784, 512, 512, 10)
DEAD_EVERY = 16


def _problem():
    """Params, grads, and the moments of a clean and a stuck state."""
    rng = np.random.default_rng(0)
    params, grads, zero_mu, stuck_mu, nu = {}, {}, {}, {}, {}
    tiny = np.float32(np.finfo(np.float32).smallest_subnormal * 3)
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        dead_in = np.arange(a) % DEAD_EVERY == 0 if i > 1 else np.zeros(a, bool)
        dead_out = np.arange(b) % DEAD_EVERY == 0 if i < len(SIZES) - 1 else None
        if dead_out is None:
            dead_out = np.zeros(b, bool)
        for name, shape, dead in (
            (f"W{i}", (a, b), dead_in[:, None] | dead_out[None, :]),
            (f"b{i}", (b,), dead_out),
        ):
            p = rng.standard_normal(shape, dtype=np.float32) * 0.05
            g = rng.standard_normal(shape, dtype=np.float32) * 1e-3
            g[np.broadcast_to(dead, shape)] = 0
            m = rng.standard_normal(shape, dtype=np.float32) * 1e-4
            m[np.broadcast_to(dead, shape)] = 0
            params[name], grads[name], zero_mu[name] = p, g, m
            stuck_mu[name] = np.where(dead, tiny, m).astype(np.float32)
            nu[name] = np.full(shape, 1e-6, np.float32)
    return params, grads, zero_mu, stuck_mu, nu


def _funnet_cases():
    params, grads, zero_mu, stuck_mu, nu = _problem()
    opt = adam(1e-3)
    P, G, V = Params(params), Params(grads), Params(nu)
    count = 100 * FLUSH_EVERY + 1  # neither this update nor the next flushes
    clean = AdamState(count, 1e-3, Params(zero_mu), V)
    stuck = AdamState(count, 1e-3, Params(stuck_mu), V)
    due = 101 * FLUSH_EVERY - 1  # the next update flushes
    states = {
        "clean": clean,
        "stuck": stuck,
        "flush": stuck._replace(count=due),
        "flush clean": clean._replace(count=due),
    }
    return {f"funnet {k}": (lambda s=s: opt.step(G, s, P)) for k, s in states.items()}


def _torch_cases():
    try:
        import torch
    except ImportError:
        return {}
    params, grads, zero_mu, stuck_mu, nu = _problem()
    cases = {}
    for name, mu in (("clean", zero_mu), ("stuck", stuck_mu)):
        ps = [torch.nn.Parameter(torch.from_numpy(params[k].copy())) for k in params]
        for p, k in zip(ps, params):
            p.grad = torch.from_numpy(grads[k].copy())
        opt = torch.optim.Adam(ps, lr=1e-3)
        opt.step()  # creates the state, then set it as the case needs
        for p, k in zip(ps, params):
            state = opt.state[p]
            state["step"].fill_(100 * FLUSH_EVERY + 1)
            state["exp_avg"].copy_(torch.from_numpy(mu[k]))
            state["exp_avg_sq"].copy_(torch.from_numpy(nu[k]))
        snapshot = [(opt.state[p]["exp_avg"].clone(), p.detach().clone()) for p in ps]

        def step(opt=opt, ps=ps, snapshot=snapshot):
            opt.step()
            with torch.no_grad():  # back to the case's state for the next call
                for p, (m, w) in zip(ps, snapshot):
                    opt.state[p]["exp_avg"].copy_(m)
                    p.copy_(w)

        cases[f"torch {name}"] = step
    return cases


def _time(fn, reps):
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dead_units", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    cases = {**_funnet_cases(), **_torch_cases()}
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(args.rounds):
        for name in rng.permutation(list(cases)):
            times[name].append(_time(cases[name], args.reps))
    median = {name: float(np.median(t)) for name, t in times.items()}
    for name, t in median.items():
        side = name.split()[0]
        ratio = t / median[f"{side} clean"]
        print(f"{name:18s} {1e3 * t:7.2f} ms per update  {ratio:5.2f}x clean")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ms": {k: 1e3 * v for k, v in median.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
