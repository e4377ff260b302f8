"""The README's library example runs and does what it says."""

import contextlib
import io
import pathlib
import re

import funnet

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_example_trains_digits_to_a_high_accuracy():
    (example,) = _python_blocks()[:1]
    out = io.StringIO()
    namespace = {}
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(README), "exec"), namespace)
    assert namespace["accuracy"] >= 0.95
    assert "Params(W1=float32(64, 128)" in out.getvalue()


def test_the_composed_optimizer_example_continues_the_first():
    first, second = _python_blocks()[:2]
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(first, str(README), "exec"), namespace)
        exec(compile(second, str(README), "exec"), namespace)
    state = namespace["state"]
    accuracy = funnet.accuracy(
        funnet.predict(namespace["net"], state.params, namespace["X_test"]),
        namespace["y_test"],
    )
    assert state.step == namespace["steps"] and accuracy >= 0.95


def test_every_other_readme_example_runs():
    for block in _python_blocks()[2:]:
        exec(compile(block, str(README), "exec"), {})


def test_the_readme_starts_with_the_install_and_test_commands():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert "pip install ." in block[0] and block[0].endswith("funnet train")
    assert block[1].endswith("python -m pytest")
