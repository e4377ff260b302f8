"""Time funnet against a hand-written NumPy step, PyTorch and scikit-learn.

``python -m benchmarks.run`` (full, about 15 minutes on 2 cores) or
``python -m benchmarks.run --quick`` (under 2 minutes). ``--json PATH``
writes every measurement and summary to a file.

Each measurement runs in its own process; each round runs every
measurement once, in a shuffled order, so slow spells of a shared machine
spread over all sides. Ratios are taken within a round and their median
over rounds is reported. Absent peers (``pip install -e '.[bench]'``) are
skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL_SIDES = ("funnet", "numpy", "torch", "sklearn")
OPTS = ("sgd", "adam")
BATCHES = (128, 512)
# glibc keeps freed blocks below these sizes in the heap instead of returning
# them to the system; 32 MiB is the largest mmap threshold glibc accepts.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "MALLOC_TRIM_THRESHOLD_": str(256 * 2**20),
}
TARGETS = {
    # (peer, batch, opt) -> funnet/peer at least this; None: any opt.
    ("numpy", 128, None): 1.0,
    ("numpy", 512, None): 1.0,
    ("torch", 128, "sgd"): 1.2,
    ("torch", 128, "adam"): 1.4,
    ("torch", 512, None): 1.0,
    ("sklearn", 128, None): 1.5,
    ("sklearn", 512, None): 1.2,
}
GEMM_TARGETS = {"sgd": 0.80, "adam": 0.60}
PEAK_TARGET_MIB = 30.0


def _available(side: str) -> bool:
    module = {"torch": "torch", "sklearn": "sklearn"}.get(side)
    return module is None or importlib.util.find_spec(module) is not None


def _funnet_has(opt: str) -> bool:
    from funnet import optimizers

    return hasattr(optimizers, opt)


def _measure(task, args, env) -> dict:
    side, opt, batch = task
    cmd = [
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "benchmarks._measure",
        side,
        opt,
        str(batch),
        args.dtype,
        str(args.n),
        str(args.epochs),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _environment(env_vars: dict[str, str]) -> dict:
    code = (
        "import json, numpy\n"
        "info = {'numpy': numpy.__version__}\n"
        "for m in ('torch', 'sklearn'):\n"
        "    try:\n"
        "        info[m] = __import__(m).__version__\n"
        "    except ImportError:\n"
        "        info[m] = None\n"
        "try:\n"
        "    import torch; info['torch_threads'] = torch.get_num_threads()\n"
        "except ImportError:\n"
        "    pass\n"
        "try:\n"
        "    import threadpoolctl\n"
        "except ImportError:\n"
        "    info['threadpools'] = 'not shown: threadpoolctl is not installed'\n"
        "else:\n"
        "    info['threadpools'] = [\n"
        "        {k: p.get(k) for k in ('internal_api', 'prefix', 'version',\n"
        "         'architecture', 'num_threads')}\n"
        "        for p in threadpoolctl.threadpool_info()]\n"
        "print(json.dumps(info))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env_vars,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        info = json.loads(out)
    except (subprocess.CalledProcessError, json.JSONDecodeError) as err:
        info = {"error": str(err)}
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info.update(
        python=platform.python_version(),
        cpu=cpu,
        cores=os.cpu_count(),
        blas_env={
            k: v
            for k, v in env_vars.items()
            if k.startswith(("OPENBLAS", "OMP_", "MKL_", "MALLOC_"))
        },
    )
    return info


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _summarize(results, sides, opts, rounds):
    """Medians of rates, of per-round ratios, GEMM shares and memory."""
    summary = {}
    for (env_name, side, opt, batch), runs in results.items():
        if side == "gemm":
            continue
        rates = [r.get("samples_per_s") for r in runs]
        cell = {
            "samples_per_s": _median(rates),
            "peak_added_mib": _median([r.get("peak_added_mib") for r in runs]),
            "epoch_growth_mib": max(
                (
                    r["rss_added_mib"][-1] - r["rss_added_mib"][0]
                    for r in runs
                    if "rss_added_mib" in r
                ),
                default=None,
            ),
        }
        gemm = results.get((env_name, "gemm", "-", batch), [])
        cell["gemm_share"] = _median(
            [
                (
                    r.get("samples_per_s") / g["samples_per_s"]
                    if r.get("samples_per_s") and g.get("samples_per_s")
                    else None
                )
                for r, g in zip(runs, gemm)
            ]
        )
        if side != "funnet":
            ours = results.get((env_name, "funnet", opt, batch), [])
            cell["funnet_ratio"] = _median(
                [
                    (
                        f["samples_per_s"] / r["samples_per_s"]
                        if f.get("samples_per_s") and r.get("samples_per_s")
                        else None
                    )
                    for f, r in zip(ours, runs)
                ]
            )
        summary[(env_name, side, opt, batch)] = cell
    return summary


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def _table(summary, env_name, sides, opts, gemm_rates, batch_sizes) -> str:
    head = (
        f"{'batch':>5} {'opt':<4} {'side':<8} {'samples/s':>10} "
        f"{'funnet/x':>9} {'GEMM share':>10} {'peak +MiB':>9} {'epoch +MiB':>10}"
    )
    lines = [head, "-" * len(head)]
    for batch in batch_sizes:
        for opt in opts:
            for side in sides:
                cell = summary.get((env_name, side, opt, batch))
                if cell is None:
                    continue
                ratio = cell.get("funnet_ratio")
                share = cell["gemm_share"]
                lines.append(
                    f"{batch:>5} {opt:<4} {side:<8} "
                    f"{_fmt(cell['samples_per_s'], ',.0f'):>10} "
                    f"{'' if side == 'funnet' else _fmt(ratio, '.2f') + 'x':>9} "
                    f"{_fmt(share and 100 * share, '.0f') + '%':>10} "
                    f"{_fmt(cell['peak_added_mib'], '.1f'):>9} "
                    f"{_fmt(cell['epoch_growth_mib'], '+.1f'):>10}"
                )
        rate = gemm_rates.get(batch)
        lines.append(
            f"{batch:>5} {'':<4} {'GEMM':<8} {_fmt(rate, ',.0f'):>10}   "
            "(the eight matrix products alone: the limit)"
        )
    return "\n".join(lines)


def _check_targets(summary, env_name, opts, batch_sizes) -> list[str]:
    lines = []
    for (peer, batch, opt), target in TARGETS.items():
        if batch not in batch_sizes:
            continue
        for o in ([opt] if opt else opts):
            if o not in opts:
                continue
            cell = summary.get((env_name, peer, o, batch))
            if cell is None or cell.get("funnet_ratio") is None:
                continue
            ratio = cell["funnet_ratio"]
            ok = "ok  " if ratio >= target else "MISS"
            lines.append(
                f"{ok} funnet/{peer} {o} batch {batch}: {ratio:.2f}x "
                f"(target >= {target:.1f}x)"
            )
    for o in opts:
        cell = summary.get((env_name, "funnet", o, 128))
        if cell and cell.get("gemm_share") is not None:
            share, target = cell["gemm_share"], GEMM_TARGETS[o]
            ok = "ok  " if share >= target else "MISS"
            lines.append(
                f"{ok} funnet GEMM share {o} batch 128: {100 * share:.0f}% "
                f"(target >= {100 * target:.0f}%)"
            )
        for batch in batch_sizes:
            cell = summary.get((env_name, "funnet", o, batch))
            if cell and cell.get("peak_added_mib") is not None:
                peak = cell["peak_added_mib"]
                ok = "ok  " if peak <= PEAK_TARGET_MIB else "MISS"
                lines.append(
                    f"{ok} funnet peak memory added {o} batch {batch}: "
                    f"{peak:.1f} MiB (target <= {PEAK_TARGET_MIB:.0f} MiB)"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples, 1 epoch, 2 rounds, default "
        "allocator only (under 2 minutes)",
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3; quick 2)")
    parser.add_argument("--n", type=int, help="samples (default 60000; quick 15000)")
    parser.add_argument("--epochs", type=int, help="epochs (default 2; quick 1)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--sides",
        default=",".join(ALL_SIDES),
        help="comma-separated sides (default: all)",
    )
    parser.add_argument("--opts", default=",".join(OPTS))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument(
        "--no-malloc-table",
        action="store_true",
        help="skip the repeat with raised glibc malloc thresholds",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.n = args.n or (15000 if args.quick else 60000)
    args.epochs = args.epochs or (1 if args.quick else 2)
    batch_sizes = tuple(int(b) for b in args.batches.split(","))
    opts = tuple(args.opts.split(","))

    sides, notes = [], []
    for side in args.sides.split(","):
        if side not in ALL_SIDES:
            parser.error(f"--sides: unknown side {side!r}; expected {ALL_SIDES}")
        if _available(side):
            sides.append(side)
        else:
            notes.append(
                f"note: {side} is not installed; skipped "
                f"(pip install -e '.[bench]')"
            )
    tasks = [
        (s, o, b)
        for s in sides
        for o in opts
        for b in batch_sizes
        if not (s == "funnet" and not _funnet_has(o))
    ]
    for o in opts:
        if "funnet" in sides and not _funnet_has(o):
            notes.append(
                f"note: funnet.optimizers has no {o}; funnet's {o} " "cells are pending"
            )
    tasks += [("gemm", "-", b) for b in batch_sizes]

    base_env = dict(os.environ)
    base_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([base_env["PYTHONPATH"]] if base_env.get("PYTHONPATH") else [])
    )
    envs = {"default": base_env}
    if not (args.quick or args.no_malloc_table):
        envs["malloc"] = {**base_env, **MALLOC_ENV}

    for note in notes:
        print(note, flush=True)
    environment = _environment(base_env)
    print("environment:", json.dumps(environment), flush=True)
    rng = random.Random(args.seed)
    results: dict[tuple, list] = {}
    started = time.perf_counter()
    for r in range(args.rounds):
        order = [(e, t) for e in envs for t in tasks]
        rng.shuffle(order)
        for env_name, task in order:
            out = _measure(task, args, envs[env_name])
            results.setdefault((env_name, *task), []).append(out)
            if "error" in out:
                print(f"  {env_name} {task}: error {out['error']}", flush=True)
        print(
            f"round {r + 1}/{args.rounds} done at "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )

    summary = _summarize(results, sides, opts, args.rounds)
    report = {
        "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])]),
        "settings": {
            "n": args.n,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "dtype": args.dtype,
            "architecture": "784-512-512-10",
        },
        "environment": environment,
        "notes": notes,
        "tables": {},
    }
    for env_name in envs:
        gemm_rates = {
            b: _median(
                [
                    r.get("samples_per_s")
                    for r in results.get((env_name, "gemm", "-", b), [])
                ]
            )
            for b in batch_sizes
        }
        title = (
            "default allocator"
            if env_name == "default"
            else "glibc malloc thresholds raised: "
            + " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
        )
        print(
            f"\n== {title}; {args.dtype}, {args.n} samples x {args.epochs} "
            f"epochs, medians of {args.rounds} rounds =="
        )
        print(_table(summary, env_name, sides, opts, gemm_rates, batch_sizes))
        checks = _check_targets(summary, env_name, opts, batch_sizes)
        print("\n".join(checks))
        report["tables"][env_name] = {
            "title": title,
            "gemm_samples_per_s": gemm_rates,
            "cells": [
                {
                    "side": s,
                    "opt": o,
                    "batch": b,
                    **cell,
                    "rounds": results[(e, s, o, b)],
                }
                for (e, s, o, b), cell in summary.items()
                if e == env_name
            ],
            "checks": checks,
        }
    print("\n== small model: 20 epochs of digits at batch 64 ==")
    small_cmd = [
        sys.executable,
        "-m",
        "benchmarks.small",
        "--runs",
        "3" if args.quick else "7",
    ]
    small = subprocess.run(
        small_cmd, cwd=ROOT, env=base_env, capture_output=True, text=True
    )
    print(small.stdout.strip() or small.stderr.strip())
    report["small_model"] = small.stdout.strip().splitlines()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
