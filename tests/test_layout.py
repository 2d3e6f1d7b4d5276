"""The package's shape: every subpackage imports only those below it, no module imports itself
through a loop, BUILD's deps are what each stage imports, no library function is longer than
about a screen, README's Layout names every module, and tests/ has a folder per stage."""

import ast
import os
import re

import pytest

from tests.helpers import ROOT

PACKAGE = os.path.join(ROOT, "reswise_tf")
# Bottom to top; a stage may import its own layer's helpers and anything lower, nothing higher.
# Stages on one line are independent siblings (neither imports the other).
LAYERS = (
    ("utils",),
    ("runtime",),
    ("data", "cost"),
    ("models",),
    ("evaluation", "training"),
    ("selection",),
    ("report", "deploy"),
    ("workflows",),
)
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_FUNCTION_LINES = 60


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, PACKAGE), ast.parse(open(path).read(), path)


def _stage(relpath):
    parts = relpath.split(os.sep)
    return parts[0] if len(parts) > 1 else None  # None: the package's own __init__.py


def _imported_stages(tree):
    """The reswise_tf subpackages a module imports (at any depth of the module)."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reswise_tf"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("reswise_tf")]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in LEVEL:
                found.add(parts[1])
    return found


def test_every_subpackage_has_a_layer():
    stages = {_stage(rel) for rel, _ in _modules()} - {None}
    assert stages == set(LEVEL), "add new subpackages to LAYERS"


def test_no_stage_imports_a_higher_or_sibling_stage():
    wrong = []
    for rel, tree in _modules():
        stage = _stage(rel)
        if stage is None:
            continue
        for other in _imported_stages(tree) - {stage}:
            if LEVEL[other] >= LEVEL[stage]:
                wrong.append(f"{rel} ({stage}, layer {LEVEL[stage]}) imports {other} (layer {LEVEL[other]})")
    assert not wrong, "\n".join(wrong)


def _module_name(relpath):
    parts = ["reswise_tf", *relpath[: -len(".py")].split(os.sep)]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(tree, known):
    """The reswise_tf modules (files) a module imports, inside functions too: `from a.b import c`
    is module `a.b.c` where that is a module, else `a.b`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reswise_tf"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("reswise_tf")}
    return found


def test_no_module_imports_itself_through_a_loop():
    """No file-level import loop (imports inside functions included), e.g. a module and the
    package `__init__` that imports it, or two modules that need each other."""
    trees = {_module_name(rel): tree for rel, tree in _modules()}
    edges = {name: _imported_modules(tree, trees) - {name} for name, tree in trees.items()}
    done, visiting = set(), []

    def visit(name):
        if name in visiting:
            pytest.fail(f"import loop: {' -> '.join(visiting[visiting.index(name):] + [name])}")
        if name in done:
            return
        visiting.append(name)
        for other in sorted(edges.get(name, ())):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(edges):
        visit(name)


def _build_deps():
    """{stage: the stages its py_library depends on} from BUILD."""
    text = open(os.path.join(ROOT, "BUILD")).read()
    deps = {}
    for block in re.findall(r"py_library\((.*?)\n\)", text, flags=re.S):
        name = re.search(r'name = "(\w+)"', block).group(1)
        if name in LEVEL:
            deps[name] = set(re.findall(r'":(\w+)"', block))
    return deps


def test_build_deps_are_the_stages_each_stage_imports():
    imported = {stage: set() for stage in LEVEL}
    for rel, tree in _modules():
        if _stage(rel):
            imported[_stage(rel)] |= _imported_stages(tree) - {_stage(rel)}
    assert _build_deps() == imported


def test_library_functions_are_short():
    long = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body  # docstrings do not count
                lines = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "\n".join(long)


def test_library_code_reads_no_flags():
    offenders = [rel for rel, tree in _modules() if "absl" in {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}]
    assert not offenders, offenders


def test_the_selection_stage_runs_without_tensorflow():
    """Selection is numpy over caches: importing it (and reading a cache) starts no TensorFlow."""
    import subprocess
    import sys

    code = ("import sys; import reswise_tf.selection, reswise_tf.evaluation.predictions; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _readme_layout():
    """{package path: [module names]} of README's Layout block: `  pkg/  name (what), name, ...`,
    continued on more-indented lines; parenthesised notes are not names."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"## Layout\n.*?```\nreswise_tf/\n(.*?)```", text, re.S).group(1)
    listed, package = {}, None
    for line in block.splitlines():
        head = re.match(r"  ([a-z_/]+/)\s+(.*)", line)
        if head:
            package, line = head.group(1).rstrip("/"), head.group(2)
        listed.setdefault(package, []).append(line)
    names = {}
    for package, lines in listed.items():
        joined = " ".join(lines)
        while "(" in joined:
            joined = re.sub(r"\([^()]*\)", "", joined)
        names[package] = sorted(n.strip() for n in joined.split(",") if n.strip())
    return names


def test_readme_layout_names_every_module():
    modules = {}
    for rel, _ in _modules():
        if not rel.endswith("__init__.py") and os.sep in rel:
            package, name = os.path.split(rel[: -len(".py")])
            modules.setdefault(package.replace(os.sep, "/"), []).append(name)
    assert _readme_layout() == {package: sorted(names) for package, names in modules.items()}


def test_tests_mirror_every_stage():
    folders = {name for name in os.listdir(os.path.join(ROOT, "tests"))
               if os.path.isfile(os.path.join(ROOT, "tests", name, "__init__.py"))}
    assert set(LEVEL) <= folders, sorted(set(LEVEL) - folders)
