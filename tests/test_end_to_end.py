"""The main job on the real data sets, with the default settings."""

import json

from tests.test_cli import run


def _result(*args):
    code, out, _ = run("train", "--json", *args)
    assert code == 0
    return json.loads(out.strip().splitlines()[-1])


def test_default_run_on_digits_reaches_98_percent_in_under_a_minute():
    result = _result()
    assert result["dataset"] == "digits" and result["optimizer"] == "adamw"
    assert result["test_accuracy"] >= 0.98
    assert result["seconds"] < 60


def test_default_run_on_breast_cancer_reaches_95_percent_in_under_a_minute():
    result = _result("--data", "breast_cancer")
    assert result["test_accuracy"] >= 0.95
    assert result["seconds"] < 60
