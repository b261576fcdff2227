"""The finding catalogue: every code declared once, every emitted code declared, nothing mutates it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import nndoctor
from nndoctor import catalogue
from nndoctor.catalogue import CATALOGUE, CodeInfo, finding, fixes_for, lookup
from nndoctor.checks import registered
from nndoctor.findings import CATEGORIES, Finding, Severity, Step

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nndoctor"
_CATS = "|".join(map(re.escape, CATEGORIES))
_CODE = re.compile(rf"^({_CATS})\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


class _Any:
    """A template value that accepts any format spec."""

    def __format__(self, spec: str) -> str:
        return "x"


class _Values(dict):
    def __missing__(self, key: str) -> _Any:
        return _Any()


#: declared codes no test under tests/ names yet (each should get one; the list may only shrink)
UNTESTED = frozenset({
    "data.observed-sample",  # the data collector's code: it never emits a finding
})


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _import_everything() -> None:
    for mod in pkgutil.walk_packages(nndoctor.__path__, "nndoctor."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)


def test_entries_complete_and_well_formed():
    assert len(CATALOGUE) >= 140
    for code, info in CATALOGUE.items():
        assert isinstance(info, CodeInfo) and info.code == code and _CODE.match(code), code
        assert isinstance(info.severity, Severity) and isinstance(info.step, Step)
        assert info.title and info.meaning and info.why and info.detection, f"{code}: page text missing"
        assert not info.title.endswith("."), code
        assert info.right == "" or info.wrong, f"{code}: a right example without a wrong one"
        for template in info.fixes:  # every template formats (stray braces would leave it raw)
            assert template.strip(), code
            template.format_map(_Values())


def test_read_only_and_not_mutated_by_any_module():
    assert isinstance(CATALOGUE, types.MappingProxyType)
    with pytest.raises(TypeError):
        CATALOGUE["shape.new"] = CATALOGUE["shape.broadcast-in-loss"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        CATALOGUE["shape.broadcast-in-loss"].fixes = ()  # type: ignore[misc]
    before = dict(CATALOGUE)
    _import_everything()
    assert catalogue.CATALOGUE is CATALOGUE and dict(CATALOGUE) == before == dict(catalogue._load())
    for path in _sources():  # no module rebinds or patches it, and the old global registry is gone
        text = path.read_text()
        assert not re.search(r"CATALOGUE\s*(\[[^\]]*\]\s*=|\.(setdefault|update|pop)\()", text), path
        assert "FIXES" not in text, path


def test_every_registered_check_code_is_declared():
    for cls in registered():
        for code in (cls.code, *cls.extra_codes):
            info = lookup(code)
            assert info.code == code
        assert cls.severity is lookup(cls.code).severity and cls.step is lookup(cls.code).step


def test_findings_are_made_only_by_the_catalogue():
    """No ``Finding(...)`` outside nndoctor/catalogue: every finding's code is looked up, so it is declared."""
    offenders = []
    for path in _sources():
        if path.parent.name == "catalogue" or path.name == "findings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Finding":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_every_code_literal_in_the_package_is_declared():
    """Codes written as string literals anywhere in nndoctor/ (checks, rootcause, remedies...) are declared."""
    unknown = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.match(node.value):
                if node.value not in CATALOGUE and node.value != "optimizer.step":  # a location, not a code
                    unknown.add(f"{path.relative_to(ROOT)}: {node.value}")
    assert not unknown, sorted(unknown)
    # the codes built from a symptom name
    for symptom in ("goes-up", "explodes", "oscillates", "plateaus"):
        lookup(f"loss-curve.overfit-batch-{symptom}")
        lookup(f"loss-curve.{symptom}")


def test_every_declared_code_is_named_by_a_test():
    tests = Path(__file__).resolve().parents[1]
    text = "\n".join(p.read_text(errors="replace") for p in tests.rglob("*.py") if p.parent.name != "catalogue")
    untested = {code for code in CATALOGUE if code not in text}
    assert untested <= UNTESTED, f"declared but named by no test: {sorted(untested - UNTESTED)}"
    assert not UNTESTED - untested, f"now tested, remove from UNTESTED: {sorted(UNTESTED - untested)}"
    assert UNTESTED <= set(CATALOGUE)


def test_finding_factory_uses_the_catalogue():
    f = finding("lr.above-divergence", "lr too high", {"suggested_lr": 0.0123, "current_lr": 1.0})
    assert isinstance(f, Finding) and f.severity is Severity.WARNING and f.step is Step.TUNE
    assert f.fixes == ("Use lr 0.0123 (the range test's suggestion).",)
    assert f.docs == "docs/findings/lr.above-divergence.md" and f.to_dict()["docs"] == f.docs
    low = finding("lr.above-divergence", "m", {}, severity="info", location="opt")
    assert low.severity is Severity.INFO and low.fixes == ("Use lr {suggested_lr:.3g} (the range test's suggestion).",)
    filled = finding("init.start-scale", "m", {"layer": "fc1"}, fill={"scheme": "xavier_normal_(weight)"})
    assert filled.fixes == ("Use nn.init.xavier_normal_(weight) for fc1.",)
    assert fixes_for("zero-grad.not-cleared", {"optimizer": "opt"})[0].startswith("Call opt.zero_grad()")
    with pytest.raises(KeyError, match="nndoctor/catalogue/codes/shape.py"):
        finding("shape.not-declared", "m")


def test_register_refuses_an_undeclared_code():
    from nndoctor.checks import Check, register

    class Undeclared(Check):
        code = "shape.never-declared-anywhere"
        needs = ("loss",)

    with pytest.raises(KeyError, match="not declared"):
        register(Undeclared)


def test_findings_module_does_not_import_the_renderers():
    """No import cycle: findings.py imports no renderer when it is loaded. Only the notebook display
    (Report._repr_html_, Report.section) reaches the renderers, lazily, inside the method that needs them."""
    tree = ast.parse((PACKAGE / "findings.py").read_text())
    lazy = {"_repr_html_", "section"}
    nodes = [n for n in ast.walk(tree)
             if not (isinstance(n, ast.FunctionDef) and n.name in lazy)]
    skipped = {id(x) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in lazy
               for x in ast.walk(n)}
    nodes = [n for n in nodes if id(n) not in skipped]
    imported = {n.module for n in nodes if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and (m.startswith("nndoctor.report") or m == "rich" or
                                               m.startswith("nndoctor.catalogue"))}
