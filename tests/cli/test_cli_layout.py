"""The CLI package: one module per command, registered through COMMAND_MODULES, no cycles."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import nndoctor
from nndoctor.cli import COMMAND_MODULES, build_parser

ROOT = pathlib.Path(nndoctor.__file__).parent


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return list(action.choices)


def test_one_module_per_command() -> None:
    commands = _subcommands()
    assert commands == ["run", "evaluate", "data", "start", "overfit", "baseline", "lr-find", "tune", "diagnose",
                        "fix", "merge", "explain"]
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        assert callable(module.register) and "register" in module.__all__
    assert len(COMMAND_MODULES) == len(commands)
    assert [m.rsplit(".", 1)[1] for m in COMMAND_MODULES] == [c.replace("-", "_") for c in commands]


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_only_the_cli_imports_the_cli() -> None:
    """Library code never imports a command module (the output-path checks raise its UsageError)."""
    offenders = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue
        bad = {m for m in _imports(path) if m == "nndoctor.cli" or m.startswith("nndoctor.cli.")}
        if rel == "report/output.py":
            bad -= {"nndoctor.cli"}
        if bad:
            offenders[rel] = bad
    assert offenders == {}


def test_no_old_cli_modules() -> None:
    for old in ("guided_cli.py", "cli.py", "monitor/cli.py", "evaluate/cli.py", "tune/cli.py", "fix/cli.py"):
        assert not (ROOT / old).exists(), old


def test_python_m_nndoctor_and_the_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "nndoctor", "--version"], capture_output=True, text=True,
                         cwd=ROOT.parent, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"nndoctor {nndoctor.__version__}"
    text = (ROOT.parent / "pyproject.toml").read_text()
    assert 'nndoctor = "nndoctor.cli:main"' in text
    assert callable(importlib.import_module("nndoctor.cli").main)
