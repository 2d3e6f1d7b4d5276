"""README's Python example runs as written (on the shipped ResNet-18 checkpoint and Debian's
Fashion-MNIST test images)."""

import os
import re

import pytest

from reswise_tf import data
from tests.helpers import ROOT


def readme_example():
    text = open(os.path.join(ROOT, "README.md")).read()
    match = re.search(r"<!-- example: evaluate -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its evaluate example"
    return match.group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    if not os.path.isdir(data.DEBIAN_FASHION_MNIST):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
    monkeypatch.chdir(tmp_path)
    code = readme_example().replace('"pretrained/', f'"{ROOT}/pretrained/')
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "| 40x40 |" in out and "'selector': 'random'" in out
    assert os.path.exists(tmp_path / "reduction.png")
