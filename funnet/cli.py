"""The ``funnet`` command line: ``funnet train`` and ``python -m funnet train``.

``funnet train`` with no options trains an MLP on the bundled digits data and
prints one line per epoch, then the test accuracy. ``--help`` lists the
options.

Checkpoints and resuming: ``--save PATH`` writes a checkpoint (see
:mod:`funnet.checkpoint`) after every epoch and at the end; its params are
stored as ``W1``, ``b1``, ... so ``np.load(PATH, allow_pickle=False)``
reads them directly. ``--resume PATH`` continues such a run exactly: the
network, the data preprocessing and every training option come from the
checkpoint, and ``--epochs`` counts the total, so ``--epochs 30`` trains
until 30 epochs are done. A run resumed from epoch k gives bit-identical
params to one that never stopped. If training diverges (NaN or infinity),
``funnet train`` says at which epoch and step, writes the last good state
(finite, with a finite loss) to ``--save`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import toolz

from funnet import (
    __version__,
    _checks,
    checkpoint,
    datasets,
    losses,
    optimizers,
    schedules,
)
from funnet.models import init
from funnet.training import (
    TrainingDiverged,
    TrainState,
    batches,
    evaluate,
    fit,
    init_train_state,
    make_step,
    prepare,
)

__all__ = ["main", "build_parser"]


def _hidden_sizes(text: str) -> list[int]:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected at least one hidden layer size, like '128', got nothing"
        )
    try:
        # one size per comma: '128,,64' is a typo, not two layers
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes like '128' or '128,64', got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty one")
    return text


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a share between 0 and 1 (exclusive), like 0.2, got {text!r}"
        )
    return value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}"
            ) from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(
                f"expected a positive {kind.__name__}, got {text!r}"
            )
        return value

    return parse


# The defaults below were chosen on the digits data (several seeds): AdamW
# with a cosine-decayed learning rate and decoupled weight decay generalizes
# best there. A short run (about a thousand steps) suits beta2 = 0.99.
DEFAULT_OPTIMIZER = "adamw"
DEFAULT_EPOCHS = 30
# A schedule without an explicit length spans the whole run. The run's
# length is saved with the checkpoint (``schedule_epochs``), so a run
# continued with --resume follows the same curve.
DEFAULT_SCHEDULE = "cosine"
DEFAULT_LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.05,
    "rmsprop": 0.003,
    "adam": 0.003,
    "adamw": 0.03,
}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.5}
_HYPER = {"adam": {"b2": 0.99}, "adamw": {"b2": 0.99}}


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _learning_rate(args: argparse.Namespace) -> float:
    return args.lr if args.lr is not None else DEFAULT_LEARNING_RATES[args.optimizer]


def _weight_decay(args: argparse.Namespace) -> float:
    if args.weight_decay is not None:
        return args.weight_decay
    return DEFAULT_WEIGHT_DECAY.get(args.optimizer, 0.0)


def _optimizer(args: argparse.Namespace, steps_per_epoch: int) -> optimizers.Optimizer:
    """The optimizer that ``--optimizer``, ``--lr``, ``--lr-schedule``,
    ``--weight-decay`` and ``--clip-norm`` describe, for a run of
    ``args.epochs`` epochs of ``steps_per_epoch`` updates.

    ``clip -> optimizer -> decay`` as one :func:`~funnet.optimizers.chain`;
    the parts not asked for are left out. The weight decay is decoupled and
    follows the learning rate (AdamW's rule for every optimizer).
    """
    epochs = (
        getattr(args, "schedule_epochs", None)
        or getattr(args, "epochs", None)
        or DEFAULT_EPOCHS
    )
    lr = schedules.parse(
        args.lr_schedule,
        _learning_rate(args),
        total_steps=None if epochs is None else epochs * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
    )
    wd = _weight_decay(args)
    hyper = _HYPER.get(args.optimizer, {})
    parts = []
    if args.clip_norm is not None:
        parts.append(optimizers.clip_by_global_norm(args.clip_norm))
    if args.optimizer == "adamw":
        parts.append(optimizers.adamw(lr, weight_decay=wd, **hyper))
    else:
        parts.append(optimizers.get(args.optimizer, lr, **hyper))
        if wd:
            parts.append(optimizers.weight_decay(wd, lr))
    return parts[0] if len(parts) == 1 else optimizers.chain(*parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funnet",
        description="A functional, pure-array neural-network library on NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"funnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train an MLP and report its accuracy",
        description=(
            "Train a multilayer perceptron with mini-batch gradient descent. "
            "Without options it trains on the bundled handwritten digits."
        ),
        epilog="SCHEDULES (--lr-schedule):\n" + schedules.SYNTAX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--data",
        default="digits",
        help="a bundled data set (digits, breast_cancer) or a .npz/.csv file "
        "with features and an integer label column (default: digits)",
    )
    train.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=[128],
        help="hidden layer sizes, e.g. 128 or 128,64 (default: 128)",
    )
    train.add_argument(
        "--activation",
        default="relu",
        choices=["relu", "tanh", "sigmoid"],
        help="hidden activation (default: relu)",
    )
    train.add_argument(
        "--optimizer",
        default=DEFAULT_OPTIMIZER,
        choices=optimizers.NAMES,
        help=f"the update rule (default: {DEFAULT_OPTIMIZER})",
    )
    train.add_argument(
        "--lr",
        type=_positive(float),
        default=None,
        help="base learning rate (default: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
        + ")",
    )
    train.add_argument(
        "--lr-schedule",
        default=DEFAULT_SCHEDULE,
        metavar="SCHEDULE",
        help="how the learning rate changes over the run, e.g. cosine, "
        "step:10:0.5 or warmup:5+cosine; see SCHEDULES below "
        f"(default: {DEFAULT_SCHEDULE})",
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative,
        default=None,
        metavar="WD",
        help="decoupled weight decay: each step also subtracts lr*WD*W from the "
        "weight matrices, biases excluded (default: 0.5 with adamw, else 0)",
    )
    train.add_argument(
        "--clip-norm",
        type=_positive(float),
        default=None,
        metavar="C",
        help="scale the gradients down when their global norm exceeds C "
        "(default: no clipping)",
    )
    train.add_argument(
        "--epochs",
        type=_positive(int),
        default=None,
        help="passes over the training data in all (default: 30; with "
        "--resume, the total the run was started with)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive(int),
        default=32,
        help="samples per mini-batch (default: 32)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="floating-point precision (default: float32)",
    )
    train.add_argument(
        "--test-size",
        type=_share,
        default=0.2,
        help="share of the data held out for the final test (default: 0.2)",
    )
    train.add_argument(
        "--save",
        metavar="PATH",
        type=_path,
        help="write a checkpoint to PATH (.npz) after every epoch and at the "
        "end; its params are the arrays W1, b1, ...; --resume continues it",
    )
    train.add_argument(
        "--resume",
        metavar="PATH",
        type=_path,
        help="continue the run saved in the checkpoint PATH; the network, "
        "data and training options come from it, --epochs is the total, and "
        "the checkpoint is updated as training goes on unless --save names "
        "another file",
    )
    train.add_argument(
        "--json",
        action="store_true",
        help="end with one JSON line of results instead of the plain summary",
    )
    return parser


def _load(data: str) -> tuple[str, np.ndarray, np.ndarray]:
    if data in datasets.NAMES:
        X, y = datasets.load(data)
        return data, X, y
    if os.path.exists(data):
        X, y = datasets.load_file(data)
        return os.path.basename(data), X, y
    raise ValueError(
        f"--data {data!r} is neither a bundled data set {list(datasets.NAMES)} "
        f"nor an existing .npz/.csv file"
    )


# Options that belong to one invocation; all others define the run and are
# saved in checkpoints, so a resumed run continues with the same settings.
_PER_INVOCATION = frozenset({"command", "save", "resume", "json", "epochs"})


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in sorted(vars(args).items()) if k not in _PER_INVOCATION}


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _resumed_args(
    args: argparse.Namespace, ckpt: checkpoint.Checkpoint
) -> argparse.Namespace:
    """``args`` with the run's options replaced by the checkpoint's.

    An option given with a value that differs both from its default and
    from the checkpoint is an error rather than silently ignored.
    """
    saved = ckpt.config.get("training", {}).get("options")
    if not isinstance(saved, dict) or not isinstance(ckpt.state, TrainState):
        raise ValueError(
            f"--resume {args.resume!r} is a funnet checkpoint but not one "
            f"written by funnet train --save"
        )
    defaults = vars(build_parser().parse_args(["train"]))
    merged = vars(args).copy()
    # Options saved as None ran with a default that depends on others.
    ran = argparse.Namespace(**{**defaults, **saved})
    resolved = {"lr": _learning_rate(ran), "weight_decay": _weight_decay(ran)}
    for key, value in saved.items():
        given = _as_json(merged.get(key, value))
        used = resolved.get(key) if value is None else value
        if given not in (value, used, _as_json(defaults.get(key))):
            kept = repr(value) if value is not None else f"default, {used!r}"
            raise ValueError(
                f"--resume: --{key.replace('_', '-')} {given!r} differs from "
                f"the checkpoint's {kept}; a resumed run keeps the "
                f"checkpoint's settings, so leave the option out"
            )
        merged[key] = value
    return argparse.Namespace(**merged)


def _fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of X as float64 and y as int64, row-major.

    Fed a block of rows at a time, so no copy of the whole data is made.
    """
    digest = hashlib.sha256()
    rows = max(1, (1 << 16) * len(X) // max(1, X.size))
    for i in range(0, len(X), rows):
        digest.update(np.ascontiguousarray(X[i : i + rows], dtype=np.float64))
    digest.update(np.ascontiguousarray(y, dtype=np.int64))
    return digest.hexdigest()


def train(args: argparse.Namespace, out=None) -> dict[str, Any]:
    """Run ``funnet train`` with parsed ``args``; returns the summary dict."""
    out = sys.stdout if out is None else out
    ckpt = None
    if args.resume:
        try:
            ckpt = checkpoint.load(args.resume)
        except OSError as exc:
            raise ValueError(
                f"--resume {args.resume!r}: {exc.strerror or exc}"
            ) from None
        args = _resumed_args(args, ckpt)
    if args.epochs is None:
        planned = ckpt and ckpt.config.get("training", {}).get("options", {})
        epochs = (planned or {}).get("schedule_epochs") or DEFAULT_EPOCHS
        args = argparse.Namespace(**{**vars(args), "epochs": epochs})
    if args.resume and not args.save:
        args = argparse.Namespace(**{**vars(args), "save": args.resume})
    if args.save:
        _check_writable(args.save)
    schedule_epochs = getattr(args, "schedule_epochs", None)
    if schedule_epochs is None or args.epochs > schedule_epochs:
        # A learning-rate schedule spans the run's planned --epochs. This run
        # option is saved, so a run continued after an interruption follows
        # the same curve; a run extended beyond its plan stretches it.
        if schedule_epochs is not None:
            print(
                f"funnet: note: extending the run from {schedule_epochs} to "
                f"{args.epochs} epochs stretches the learning-rate schedule "
                f"{args.lr_schedule!r} over {args.epochs} epochs",
                file=sys.stderr,
            )
        args = argparse.Namespace(**{**vars(args), "schedule_epochs": args.epochs})
    name, X, y = _load(args.data)
    dtype = np.dtype(args.dtype)
    # Check the file's contents before the split, so that messages point at
    # the rows and columns of the file itself.
    # Floating-point data keep their dtype (no float64 copy of float32
    # data); integers become float64. Statistics are taken in float64.
    X = _checks.features(X, None, f"--data {args.data!r}: X")
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(
            f"--data {args.data!r}: the target column must hold integer class "
            f"labels, got {y.dtype} values of shape {y.shape}"
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"--data {args.data!r}: needs at least two classes")
    if classes[0] != 0 or classes[-1] != len(classes) - 1:
        shown = ", ".join(map(str, classes[:6])) + (", ..." if len(classes) > 6 else "")
        raise ValueError(
            f"--data {args.data!r}: the labels must be 0, 1, ..., K-1 with "
            f"every class present; got {len(classes)} distinct labels "
            f"({shown}). Renumber them, e.g. with numpy.unique(y, "
            f"return_inverse=True)"
        )
    n_classes = len(classes)

    fingerprint = _fingerprint(X, y)
    trained_on = ckpt and ckpt.config.get("data", {}).get("sha256")
    if ckpt is not None and trained_on != fingerprint:
        raise ValueError(
            f"--resume {args.resume!r}: the data in --data {args.data!r} differ "
            f"from those the checkpoint was trained on"
        )

    n_samples, n_features = X.shape
    # Each split is a copy: the arrays split are let go as soon as possible.
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=args.test_size, seed=args.seed
    )
    del X
    X_fit, X_val, y_fit, y_val = datasets.train_test_split(
        X_train, y_train, test_size=0.1, seed=args.seed + 1
    )
    del X_train
    if min(len(X_fit), len(X_val), len(X_test)) == 0:
        raise ValueError(
            f"--test-size {args.test_size} leaves {len(X_fit)} training, "
            f"{len(X_val)} validation and {len(X_test)} test samples of "
            f"{n_samples}; each needs at least one: choose a share nearer 0.2"
        )
    if ckpt is None:
        scale = datasets.Standardizer.fit(X_fit)
    else:
        stats = ckpt.config["data"]["standardizer"]
        scale = datasets.Standardizer(stats["mean"], stats["std"])
    X_fit, X_val, X_test = (scale(a, dtype) for a in (X_fit, X_val, X_test))

    binary = n_classes == 2
    loss = losses.binary_cross_entropy if binary else losses.softmax_cross_entropy
    network = checkpoint.mlp_config(
        n_features,
        args.hidden,
        1 if binary else n_classes,
        args.activation,
        "binary_cross_entropy" if binary else "softmax_cross_entropy",
        dtype,
    )
    if ckpt is not None and ckpt.config.get("network") != network:
        raise ValueError(
            f"--resume {args.resume!r}: the checkpoint's network "
            f"{ckpt.config.get('network')} does not match the data ({network})"
        )
    net, loss = checkpoint.build_network(network)
    params = init(net, n_features, seed=args.seed, dtype=dtype)

    def targets(labels):
        return labels[:, None].astype(dtype) if binary else labels

    X_fit, t_fit = prepare(net, params, X_fit, targets(y_fit), loss)
    X_val, t_val = prepare(net, params, X_val, targets(y_val), loss)
    X_test, t_test = prepare(net, params, X_test, targets(y_test), loss)

    steps_per_epoch = math.ceil(len(X_fit) / args.batch_size)
    optimizer = _optimizer(args, steps_per_epoch)
    step = make_step(net, loss, optimizer, seed=args.seed)
    state = init_train_state(params, optimizer)
    if ckpt is not None:
        saved = ckpt.state.params
        if set(saved) != set(params) or any(
            saved[k].shape != v.shape or saved[k].dtype != v.dtype
            for k, v in params.items()
        ):
            raise ValueError(
                f"--resume {args.resume!r}: the checkpoint's params {saved!r} "
                f"do not fit the network, which has {params!r}"
            )
        state = ckpt.state

    config = {
        "network": network,
        "training": {"options": _as_json(_run_options(args)), "epochs": args.epochs},
        "data": {
            "sha256": fingerprint,
            "standardizer": {"mean": scale.mean.tolist(), "std": scale.std.tolist()},
        },
    }
    done_epochs, offset = divmod(state.step, steps_per_epoch)

    def save(state, epoch):
        if args.save:
            checkpoint.save(args.save, state, config, epoch=epoch)

    print(
        f"funnet: {name}, {len(X_fit)} train / {len(X_val)} validation / "
        f"{len(X_test)} test samples, {n_features} features, {n_classes} "
        f"classes; MLP {n_features}-{'-'.join(map(str, args.hidden))}-"
        f"{1 if binary else n_classes} ({args.activation}), {args.dtype}",
        file=out,
    )
    if ckpt is not None:
        plan = (
            f"training to {args.epochs} epochs"
            if done_epochs < args.epochs
            else "nothing left to train"
        )
        print(
            f"resuming from {args.resume}: {done_epochs} epochs and "
            f"{state.step} steps done, {plan}",
            file=out,
        )
        if done_epochs >= args.epochs:
            print(
                f"funnet: note: the checkpoint has already trained "
                f"{done_epochs} epochs; pass a larger --epochs (the total) "
                f"to train further",
                file=sys.stderr,
            )
    started = time.perf_counter()
    for epoch in range(done_epochs, args.epochs):
        t0 = time.perf_counter()
        epoch_batches = batches(
            X_fit, t_fit, args.batch_size, seed=args.seed, start_epoch=epoch
        )
        if epoch == done_epochs and offset:
            epoch_batches = toolz.drop(offset, epoch_batches)
        try:
            # fit reports NaN and infinity itself, with the epoch and step,
            # so NumPy's own warnings about them would only be noise.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                state = fit(step, epoch_batches, state)
        except TrainingDiverged as exc:
            kept = exc.state
            save(kept, kept.step // steps_per_epoch)
            where = f"saved to {args.save}" if args.save else "not saved (no --save)"
            print(
                f"training stopped: the last good state (step {kept.step}) "
                f"is {where}",
                file=out,
            )
            raise
        seconds = time.perf_counter() - t0
        save(state, epoch + 1)
        train_loss, _ = evaluate(net, state.params, X_fit, t_fit, loss)
        _, val_acc = evaluate(net, state.params, X_val, t_val, loss)
        print(
            f"epoch {epoch + 1:3d}  train loss {train_loss:.4f}  "
            f"validation accuracy {val_acc:.4f}  {seconds:.2f}s",
            file=out,
        )
    total = time.perf_counter() - started
    _, test_acc = evaluate(net, state.params, X_test, t_test, loss)

    if done_epochs >= args.epochs:  # nothing trained: write what was loaded
        # with the epochs it has done, not the smaller total asked for
        config["training"]["epochs"] = max(args.epochs, done_epochs)
        save(state, state.step // steps_per_epoch)
    summary = {
        "dataset": name,
        "test_accuracy": test_acc,
        "epochs": max(args.epochs, done_epochs),
        "seed": args.seed,
        "seconds": round(total, 3),
        "hidden": args.hidden,
        "activation": args.activation,
        "optimizer": args.optimizer,
        "learning_rate": _learning_rate(args),
        "lr_schedule": args.lr_schedule,
        "weight_decay": _weight_decay(args),
        "clip_norm": args.clip_norm,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "steps": state.step,
    }
    if args.resume:
        summary["resumed_from"] = args.resume
    if args.save:
        summary["saved"] = args.save
    if args.json:
        print(json.dumps(summary), file=out)
    else:
        saved = f"; checkpoint saved to {args.save}" if args.save else ""
        print(f"test accuracy {test_acc:.4f} ({total:.1f}s){saved}", file=out)
    return summary


def _check_writable(path: str) -> None:
    """Fail before training, not after, when ``--save`` cannot be written."""
    try:
        checkpoint.check_destination(path)
    except ValueError as exc:
        raise ValueError(f"--save: {exc}") from None
    if not os.access(os.path.dirname(os.path.realpath(path)), os.W_OK):
        raise ValueError(f"--save {path!r}: the directory is not writable")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        train(args)
    except TrainingDiverged as exc:
        epoch = "" if exc.epoch is None else f" in epoch {exc.epoch + 1}"
        also = " or --weight-decay" if getattr(args, "weight_decay", None) else ""
        print(
            f"funnet: error: training diverged{epoch} at step {exc.step}: "
            f"{exc.reason}; try a smaller --lr{also}",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # The reader went away (``funnet train | head``): stop quietly, and
        # point stdout at nothing so the exit's flush raises no second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, OSError) as exc:
        print(f"funnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = (
            f"; the checkpoint {args.save} holds the last finished epoch, "
            f"continue with --resume {args.save}"
            if args.save and os.path.exists(args.save)
            else "; no epoch had finished, so nothing was saved" if args.save else ""
        )
        print(f"funnet: interrupted{where}", file=sys.stderr)
        return 130
    return 0
