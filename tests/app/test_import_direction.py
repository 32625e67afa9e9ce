"""The dependency direction of DESIGN.md §3, checked on the source: every import of every module (also the
ones inside functions) is read with ast, and each package may import only what its floor allows.

- callflows imports nothing outside itself (its ports are the contract), except the audio contract pcm; its
  command-line entry (callflows/__main__.py) composes the flow tools and may also use tts (timing measures
  real synthesised prompts);
- the edges (ivr, asr, recordings, tts, three_way), the domain (tickets) and the local journal never import
  each other; ivr's
  tools (the demo menu, the simulated caller) may use tts, ivr's protocol modules may not;
- the leaf modules pcm (audio format) and inifile (configuration reader) import no project code, so every
  package may import them;
- the operator console reads the domain and the edges but is mounted by app, never the other way;
- nothing imports app (the composition) but server.py.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"app", "asr", "callflows", "console", "inifile", "ivr", "journal", "pcm", "recordings", "server",
           "three_way", "tickets", "tts"}
LEAVES = {"pcm", "inifile"}
ALLOWED = {  # package -> the project modules its files may import (besides itself)
    "callflows": {"pcm"},
    "ivr": LEAVES,
    "asr": LEAVES,
    "recordings": LEAVES,
    "tts": LEAVES,
    "three_way": LEAVES,
    "tickets": LEAVES,
    "journal": LEAVES,  # the node-local journal of what callers say: storage below the composition
    "console": PROJECT - {"app", "server"},  # the operator's pages over the domain; app mounts it
    "app": PROJECT - {"server"},
}  # a new package states its floor here
EXCEPTIONS = {  # file (relative to ROOT) -> further modules it may import, and why (see the docstring)
    "callflows/__main__.py": {"tts"},
    "ivr/demo_flow.py": {"tts"},
    "ivr/softphone/*": {"tts"},
}


def project_imports(path: Path) -> set[str]:
    """Top-level project modules `path` imports (relative imports stay inside the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


def allowed_for(relative: Path) -> set[str]:
    package = relative.parts[0]
    extra: set[str] = set()
    for pattern, modules in EXCEPTIONS.items():
        if relative.match(pattern):
            extra |= modules
    return {package} | ALLOWED[package] | extra


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_its_floor_allows(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules in {package}/"
    wrong = {}
    for path in files:
        relative = path.relative_to(ROOT)
        if extra := project_imports(path) - allowed_for(relative):
            wrong[relative.as_posix()] = sorted(extra)
    assert not wrong, f"imports against the dependency direction: {wrong}"


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_the_leaf_modules_import_no_project_code(leaf):
    assert project_imports(ROOT / f"{leaf}.py") == set()


def test_only_server_py_imports_the_composition():
    importers = sorted(path.relative_to(ROOT).as_posix() for package in ALLOWED.keys() - {"app"}
                       for path in (ROOT / package).rglob("*.py") if "app" in project_imports(path))
    assert importers == []
    assert "app" in project_imports(ROOT / "server.py")


def test_the_checker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import os\n\ndef f():\n    from tickets.models import Ticket\n    import asr.pool\n"
                      "    from . import sibling\n")
    assert project_imports(module) == {"tickets", "asr"}
