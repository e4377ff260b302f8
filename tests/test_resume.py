"""Stopping and resuming gives bit-identical params, across processes."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import funnet
import funnet.cli
from funnet import checkpoint, losses

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED, BATCH, EPOCHS, SPLIT = 3, 50, 4, 2


def _net():
    # dropout draws from (seed, step): resuming must restore the step too
    return funnet.serial(
        funnet.dense(16), funnet.relu(), funnet.dropout(0.2), funnet.dense(2)
    )


def _data():
    X, y = funnet.datasets.load("breast_cancer")
    return funnet.datasets.standardize(X, dtype=np.float32)[0], y


def _run(state, start_epoch, epochs):
    X, y = _data()
    step = funnet.make_step(
        _net(), losses.softmax_cross_entropy, funnet.sgd(0.05), seed=SEED
    )
    data = funnet.batches(
        X, y, BATCH, seed=SEED, epochs=epochs, start_epoch=start_epoch
    )
    return funnet.fit(step, data, state)


RESUME_SCRIPT = """
import sys
from funnet import checkpoint
from tests.test_resume import _run
ckpt = checkpoint.load(sys.argv[1])
done = ckpt.epoch
state = _run(ckpt.state, done, ckpt.config["epochs"] - done)
checkpoint.save(sys.argv[2], state, ckpt.config, epoch=ckpt.config["epochs"])
"""


def _python(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_training_resumed_in_a_new_process_matches_one_unbroken_run(tmp_path):
    net = _net()
    start = funnet.init_train_state(
        funnet.init(net, 30, seed=SEED, dtype=np.float32), funnet.sgd(0.05)
    )
    unbroken = _run(start, 0, EPOCHS)

    halfway = _run(start, 0, SPLIT)
    checkpoint.save(tmp_path / "half.npz", halfway, {"epochs": EPOCHS}, epoch=SPLIT)
    _python("-c", RESUME_SCRIPT, str(tmp_path / "half.npz"), str(tmp_path / "end.npz"))
    resumed = checkpoint.load(tmp_path / "end.npz").state

    assert resumed.step == unbroken.step
    assert resumed.params.equals(unbroken.params)  # same bits, same dtype
    assert resumed.params.dtype == np.float32
    assert not resumed.params.equals(halfway.params)


# One small run on the bundled breast cancer data, shared by the CLI tests.
RUN = ("train", "--data", "breast_cancer", "--hidden", "8", "--batch-size", "40")
RUN += ("--seed", "5")


def _train(tmp_path, *args):
    return _python("-m", "funnet", *RUN, *args, cwd=tmp_path)


def _params(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in ("W1", "b1", "W2", "b2")}


INTERRUPT_SCRIPT = """
import sys
from funnet import checkpoint, cli

save, calls = checkpoint.save, []


def save_then_stop(*args, **kwargs):
    save(*args, **kwargs)
    calls.append(1)
    if len(calls) == int(sys.argv[1]):
        raise KeyboardInterrupt


checkpoint.save = save_then_stop
sys.exit(0 if cli.main(sys.argv[2:]) == 130 else 1)
"""


def _train_interrupted(tmp_path, after_epochs, *args):
    """``funnet train`` stopped like Ctrl-C right after epoch ``after_epochs``'s save."""
    done = _python("-c", INTERRUPT_SCRIPT, str(after_epochs), *RUN, *args, cwd=tmp_path)
    assert "funnet: interrupted" in done.stderr
    return done


def test_funnet_train_resume_matches_an_unbroken_run_bit_for_bit(tmp_path):
    _train(tmp_path, "--epochs", "4", "--save", "full.npz")
    _train_interrupted(tmp_path, 1, "--epochs", "4", "--save", "part.npz")
    out = _train(
        tmp_path, "--resume", "part.npz", "--epochs", "4", "--save", "rest.npz"
    ).stdout
    assert "resuming from part.npz: 1 epochs" in out
    assert out.count("\nepoch ") == 3  # epochs 2, 3 and 4 only
    full, rest = _params(tmp_path / "full.npz"), _params(tmp_path / "rest.npz")
    for key in full:
        assert full[key].dtype == rest[key].dtype == np.float32
        np.testing.assert_array_equal(full[key], rest[key])


def test_resuming_mid_epoch_continues_with_the_remaining_batches(tmp_path):
    X_fit_rows = 409  # breast_cancer: 569 - 114 test - 46 validation
    steps_per_epoch = -(-X_fit_rows // 40)
    _train(tmp_path, "--epochs", "2", "--save", "full.npz")
    _train_interrupted(tmp_path, 1, "--epochs", "2", "--save", "part.npz")
    part = checkpoint.load(tmp_path / "part.npz")
    assert part.step == steps_per_epoch
    # a state saved three steps into epoch 2, as a diverged run would leave it
    mid = _python("-c", MID_EPOCH_SCRIPT, str(tmp_path / "part.npz"), "3", cwd=tmp_path)
    assert mid.returncode == 0
    _train(tmp_path, "--resume", "mid.npz", "--epochs", "2", "--save", "rest.npz")
    full, rest = _params(tmp_path / "full.npz"), _params(tmp_path / "rest.npz")
    for key in full:
        np.testing.assert_array_equal(full[key], rest[key])


MID_EPOCH_SCRIPT = """
import sys
import numpy as np
import toolz
from funnet import checkpoint, cli, datasets
from funnet.training import batches, fit, make_step, prepare

ckpt = checkpoint.load(sys.argv[1])
opts = ckpt.config["training"]["options"]
seed = opts["seed"]
X, y = datasets.load(opts["data"])
X_train, _, y_train, _ = datasets.train_test_split(X, y, opts["test_size"], seed)
X_fit, _, y_fit, _ = datasets.train_test_split(X_train, y_train, 0.1, seed + 1)
stats = ckpt.config["data"]["standardizer"]
X_fit = datasets.Standardizer(stats["mean"], stats["std"])(X_fit, opts["dtype"])
net, loss = checkpoint.build_network(ckpt.config["network"])
y_fit = y_fit[:, None].astype(X_fit.dtype)
X_fit, t = prepare(net, ckpt.state.params, X_fit, y_fit, loss)
steps_per_epoch = -(-len(X_fit) // opts["batch_size"])
optimizer = cli._optimizer(cli.argparse.Namespace(**opts), steps_per_epoch)
step = make_step(net, loss, optimizer, seed=seed)
epoch_1 = batches(X_fit, t, opts["batch_size"], seed, start_epoch=1)
data = toolz.take(int(sys.argv[2]), epoch_1)
checkpoint.save("mid.npz", fit(step, data, ckpt.state), ckpt.config, epoch=1)
"""


def test_an_extended_run_stretches_its_schedule_and_says_so(tmp_path):
    _train(tmp_path, "--epochs", "2", "--save", "run.npz")
    saved = checkpoint.load(tmp_path / "run.npz").config["training"]["options"]
    assert saved["schedule_epochs"] == 2 and saved["lr_schedule"] == "cosine"
    done = _train(
        tmp_path, "--resume", "run.npz", "--epochs", "3", "--save", "more.npz"
    )
    assert "stretches the learning-rate schedule 'cosine' over 3 epochs" in done.stderr
    more = checkpoint.load(tmp_path / "more.npz")
    assert more.config["training"]["options"]["schedule_epochs"] == 3
    assert more.epoch == 3
    assert not more.state.params.equals(
        checkpoint.load(tmp_path / "run.npz").state.params
    )


def test_resuming_without_epochs_continues_to_the_planned_total(tmp_path):
    _train_interrupted(tmp_path, 1, "--epochs", "3", "--save", "run.npz")
    done = _train(tmp_path, "--resume", "run.npz")
    assert "training to 3 epochs" in done.stdout
    assert checkpoint.load(tmp_path / "run.npz").epoch == 3


def test_resuming_without_save_updates_the_resumed_checkpoint(tmp_path):
    _train_interrupted(tmp_path, 1, "--epochs", "2", "--save", "run.npz")
    assert checkpoint.load(tmp_path / "run.npz").epoch == 1
    _train(tmp_path, "--resume", "run.npz", "--epochs", "2")
    assert checkpoint.load(tmp_path / "run.npz").epoch == 2


def test_resuming_a_finished_run_to_fewer_epochs_says_there_is_nothing_to_do(tmp_path):
    _train(tmp_path, "--epochs", "2", "--save", "run.npz")
    before = checkpoint.load(tmp_path / "run.npz")
    done = _train(tmp_path, "--resume", "run.npz", "--epochs", "1", "--json")
    assert "already trained 2 epochs; pass a larger --epochs" in done.stderr
    assert "nothing left to train" in done.stdout
    assert "training to 1 epochs" not in done.stdout
    assert json.loads(done.stdout.splitlines()[-1])["epochs"] == 2
    after = checkpoint.load(tmp_path / "run.npz")
    assert after.epoch == 2 and after.config["training"]["epochs"] == 2
    assert after.config == before.config and after.state.params.equals(
        before.state.params
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "32"], r"--hidden \[32\] differs from the checkpoint's \[8\]"),
        (
            ["--activation", "tanh"],
            "--activation 'tanh' differs from the checkpoint's 'relu'",
        ),
        # the run was saved with the optimizer's default rate
        (["--lr", "0.5"], r"--lr 0.5 differs from the checkpoint's default, 0.03;"),
    ],
)
def test_resume_refuses_options_that_contradict_the_checkpoint(
    tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    assert (
        funnet.cli.main(
            [
                "train",
                "--data",
                "breast_cancer",
                "--hidden",
                "8",
                "--epochs",
                "1",
                "--save",
                "c.npz",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert funnet.cli.main(["train", "--resume", "c.npz", *args]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_resume_refuses_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    np.savez(tmp_path / "params.npz", W1=np.zeros((2, 2)))
    assert funnet.cli.main(["train", "--resume", str(tmp_path / "params.npz")]) == 2
    assert "not a funnet checkpoint" in capsys.readouterr().err


def test_resume_refuses_data_that_changed_since_the_checkpoint(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    X, y = funnet.datasets.load("breast_cancer")
    np.savez("data.npz", X=X, y=y)
    assert (
        funnet.cli.main(
            [
                "train",
                "--data",
                "data.npz",
                "--hidden",
                "4",
                "--epochs",
                "1",
                "--save",
                "c.npz",
            ]
        )
        == 0
    )
    np.savez("data.npz", X=X + 1.0, y=y)
    capsys.readouterr()
    assert funnet.cli.main(["train", "--resume", "c.npz"]) == 2
    assert "differ from those the checkpoint was trained on" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--lr", "0.03"], ["--weight-decay", "0.5"]])
def test_resume_accepts_an_option_equal_to_the_default_the_run_used(
    tmp_path, capsys, monkeypatch, option
):
    # adamw's defaults: lr 0.03, weight decay 0.5; the checkpoint saved None
    monkeypatch.chdir(tmp_path)
    base = ["train", "--data", "breast_cancer", "--hidden", "4"]
    assert funnet.cli.main([*base, "--epochs", "1", "--save", "c.npz"]) == 0
    resumed = ["train", "--resume", "c.npz", "--epochs", "2", *option]
    assert funnet.cli.main(resumed) == 0, capsys.readouterr().err
    assert checkpoint.load(tmp_path / "c.npz").epoch == 2
