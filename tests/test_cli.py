"""The funnet command line."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import funnet
from funnet import cli


def run(*args):
    """Run ``funnet`` in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_train_prints_one_line_per_epoch_then_the_test_accuracy():
    code, out, _ = run("train", "--epochs", "3", "--hidden", "16")
    lines = out.strip().splitlines()
    assert code == 0
    epochs = [l for l in lines if l.startswith("epoch")]
    assert len(epochs) == 3
    for i, line in enumerate(epochs, 1):
        parts = line.split()
        assert (
            parts[1] == str(i)
            and "train loss" in line
            and "validation accuracy" in line
        )
        assert parts[-1].endswith("s")
    assert lines[-1].startswith("test accuracy")


def test_json_makes_the_last_line_a_result_object():
    code, out, _ = run(
        "train", "--epochs", "2", "--hidden", "8", "--json", "--seed", "3"
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert (
        result["dataset"] == "digits" and result["epochs"] == 2 and result["seed"] == 3
    )
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["seconds"] >= 0


def test_the_same_seed_prints_the_same_numbers():
    strip = lambda out: [
        l.rsplit(" ", 1)[0] for l in out.splitlines() if l.startswith("epoch")
    ]
    a = run("train", "--epochs", "2", "--seed", "7")[1]
    b = run("train", "--epochs", "2", "--seed", "7")[1]
    c = run("train", "--epochs", "2", "--seed", "8")[1]
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_save_writes_params_that_load_without_pickle(tmp_path):
    path = tmp_path / "params.npz"
    code, out, _ = run("train", "--epochs", "1", "--hidden", "8,4", "--save", str(path))
    assert code == 0
    with np.load(path, allow_pickle=False) as saved:
        assert {"W1", "b1", "W2", "b2", "W3", "b3"} <= set(saved.files)
        assert saved["W1"].shape == (64, 8) and saved["W1"].dtype == np.float32


def test_a_data_file_can_be_trained_on(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    code, out, _ = run(
        "train", "--data", str(tmp_path / "mine.npz"), "--epochs", "3", "--json"
    )
    assert code == 0
    assert json.loads(out.splitlines()[-1])["dataset"] == "mine.npz"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "nope"], "neither a bundled data set"),
        (["--hidden", "a,b"], "expected layer sizes"),
        (["--lr", "-1"], "expected a positive float"),
        (["--lr", "inf"], "expected a positive float, got 'inf'"),
        (["--hidden", ""], "expected at least one hidden layer size"),
        (["--save", "no/such/dir/run.npz"], "the directory .* does not exist"),
        (["--save", "README.md"], "exists and is not a funnet checkpoint"),
        (["--epochs", "0"], "expected a positive int"),
        (["--dtype", "float16"], "invalid choice"),
        (["--hidden", "128,,64"], "expected layer sizes like"),
        (["--save", ""], "expected a file path, got an empty one"),
        (["--resume", ""], "expected a file path, got an empty one"),
        (["--resume", "no-such-run.npz"], "--resume 'no-such-run.npz': No such file"),
        (["--test-size", "1"], "expected a share between 0 and 1"),
        (
            ["--test-size", "0.995"],
            "--test-size 0.995 leaves .* each needs at least one",
        ),
    ],
    ids=[
        "unknown-data",
        "bad-hidden",
        "negative-lr",
        "infinite-lr",
        "empty-hidden",
        "missing-save-directory",
        "save-over-a-data-file",
        "zero-epochs",
        "bad-dtype",
        "empty-hidden-size",
        "empty-save",
        "empty-resume",
        "missing-resume",
        "test-size-one",
        "test-size-leaving-nothing",
    ],
)
def test_bad_options_exit_with_a_message_not_a_trace(args, message):
    code, out, err = run("train", *args)
    assert code == 2
    assert re.search(message, err) and "Traceback" not in err
    assert "epoch" not in out  # refused before any training


def test_python_dash_m_funnet_runs_the_same_command():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "funnet",
            "train",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout.splitlines()[-1])["epochs"] == 1


def test_data_file_errors_point_at_the_file_rows(tmp_path):
    X = np.ones((50, 3))
    X[7, 2] = np.nan
    np.savez(tmp_path / "bad.npz", X=X, y=np.arange(50) % 2)
    code, _, err = run("train", "--data", str(tmp_path / "bad.npz"))
    assert code == 2 and "first at row 7, column 2" in err


def test_a_closed_pipe_ends_the_command_quietly():
    proc = subprocess.run(
        f"{sys.executable} -m funnet train --epochs 3 | head -1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert proc.stdout.startswith("funnet: digits")
    assert proc.stderr == ""


def test_version_is_printed():
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"funnet {funnet.__version__}"


@pytest.mark.parametrize(
    "labels, shown",
    [([1, 2], "1, 2"), ([0, 2**40], "0, 1099511627776"), ([0, 1, 5], "0, 1, 5")],
    ids=["no-zero", "huge", "gap"],
)
def test_labels_that_are_not_0_to_k_minus_1_are_refused(tmp_path, labels, shown):
    X = np.random.default_rng(0).normal(size=(60, 2))
    y = np.resize(np.array(labels, dtype=np.int64), 60)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, _, err = run("train", "--data", str(tmp_path / "d.npz"))
    assert code == 2
    assert (
        f"must be 0, 1, ..., K-1 with every class present; got {len(labels)} "
        f"distinct labels ({shown})" in err
    )
