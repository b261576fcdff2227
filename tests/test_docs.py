"""The documented Python calls of README.md and docs/*.md work: every ``>>>`` block runs as a
doctest, and every ``nndoctor.…`` name and ``from nndoctor… import …`` of a python block exists."""

from __future__ import annotations

import doctest
import importlib
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(path: pathlib.Path) -> list[str]:
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def _resolve(dotted: str) -> object:
    """``nndoctor.evaluate.decompose`` -> the object, through attributes as a user's code reaches it."""
    parts = dotted.split(".")
    obj: object = importlib.import_module(parts[0])
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path", [p for p in DOCS if any(">>>" in b for b in _blocks(p))], ids=lambda p: p.name)
def test_doctest_blocks_run(path: pathlib.Path) -> None:
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs: dict[str, object] = {}
    for i, block in enumerate(b for b in _blocks(path) if ">>>" in b):
        test = parser.get_doctest(block, globs, f"{path.name}[{i}]", str(path), 0)
        runner.run(test, clear_globs=False)
        globs = test.globs  # the blocks of one file are one session
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0


def _documented_names() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for block in _blocks(path):
            code = re.sub(r"#.*", "", block)
            for name in re.findall(r"\bnndoctor(?:\.[A-Za-z_][A-Za-z0-9_]*)+", code):
                found.append((path.name, name))
            for module, names in re.findall(r"^\s*(?:>>> )?from (nndoctor[\w.]*) import ([\w, ]+)", code, re.M):
                found.extend((path.name, f"{module}.{n.strip()}") for n in names.split(",") if n.strip())
    return sorted(set(found))


def test_the_docs_use_the_public_api() -> None:
    names = _documented_names()
    assert ("api.md", "nndoctor.evaluate.decompose") in names and ("README.md", "nndoctor.watch") in names


@pytest.mark.parametrize("doc, name", _documented_names())
def test_documented_names_exist(doc: str, name: str) -> None:
    module, _, attr = name.rpartition(".")
    try:
        obj = _resolve(name)
    except AttributeError:  # ``from nndoctor.x.y import z`` where y is a module shadowed by a function
        obj = getattr(importlib.import_module(module), attr)
    assert obj is not None
