"""Every repository path that README, docs, setup.cfg, scripts or a comment or docstring of the
code names exists: a path that begins with a top-level folder of the repository (example
outputs such as `results/...`, `checkpoints/...` or `my_model.keras` are not the repository's)."""

import glob
import os
import re
import subprocess

from tests.helpers import ROOT

FILES = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
TOP = sorted({path.split("/")[0] for path in FILES if "/" in path})  # the repository's top-level folders
PATH = re.compile(r"(?<![\w./-])(?:\.\./)*((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*[\w/])")


def _texts():
    files = ["README.md", "setup.cfg", "BUILD", *glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True),
             *glob.glob("scripts/*.sh", root_dir=ROOT)]
    for folder in ("reswise_tf", "experiments", "benchmarks", "tests"):
        files += glob.glob(f"{folder}/**/*.py", root_dir=ROOT, recursive=True)
    for rel in files:
        with open(os.path.join(ROOT, rel)) as f:
            yield rel, f.read()


def test_every_named_repository_path_exists():
    missing, seen = [], 0
    for rel, text in _texts():
        for match in PATH.finditer(text):
            path = match.group(1).rstrip(".")
            if any(c in path for c in "<>*{}$") or "/**" in path:
                continue
            seen += 1
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(f"{rel}: {path}")
    assert seen > 50  # the check sees the paths (README alone names dozens)
    assert not missing, "\n".join(sorted(set(missing)))
