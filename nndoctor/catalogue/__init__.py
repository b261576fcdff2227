"""The finding catalogue: every finding code declared once.

Each code (``<category>.<name>``) has one immutable :class:`CodeInfo` in
``nndoctor/catalogue/codes/<category>.py``: its default severity and field-guide step, a
title, what it means, why it matters, how nndoctor detects it, the ordered fix templates
and a minimal wrong/right example. :data:`CATALOGUE` is a read-only mapping built once at
import; nothing adds to it at run time.

Every finding is made by :func:`finding` (checks call it through
:meth:`nndoctor.checks.Check.finding`), so its fixes always come from here, filled in from
the finding's evidence. ``nndoctor explain CODE`` and ``docs/findings/`` render the pages.
"""

from __future__ import annotations

import importlib
import types
from typing import Any, Mapping

from nndoctor.catalogue.entry import CodeInfo
from nndoctor.findings import CATEGORIES, DOCS_PAGE, Finding, Severity, Step

__all__ = ["CATALOGUE", "DOCS_URL", "CodeInfo", "by_category", "docs_link", "finding", "fixes_for", "lookup"]

#: where the pages live, relative to the repository root (the JSON ``"docs"`` field)
DOCS_URL = DOCS_PAGE


def _load() -> types.MappingProxyType[str, CodeInfo]:
    entries: dict[str, CodeInfo] = {}
    for category in CATEGORIES:
        try:
            module = importlib.import_module(f"nndoctor.catalogue.codes.{category.replace('-', '_')}")
        except ModuleNotFoundError:
            continue
        for info in module.CODES:
            if info.category != category:
                raise ValueError(f"{info.code} is declared in the module of category {category}")
            if info.code in entries:
                raise ValueError(f"finding code {info.code} is declared twice")
            entries[info.code] = info
    return types.MappingProxyType(dict(sorted(entries.items())))


#: code -> entry, read-only, sorted by code
CATALOGUE: Mapping[str, CodeInfo] = _load()


def lookup(code: str) -> CodeInfo:
    """The entry of ``code``; ``KeyError`` naming the file to declare it in if it is unknown."""
    try:
        return CATALOGUE[code]
    except KeyError:
        module = code.partition(".")[0].replace("-", "_")
        raise KeyError(f"finding code {code!r} is not declared: add a CodeInfo to "
                       f"nndoctor/catalogue/codes/{module}.py") from None


def by_category() -> dict[str, list[CodeInfo]]:
    """Category -> its entries, in the contract's category order."""
    out: dict[str, list[CodeInfo]] = {c: [] for c in CATEGORIES}
    for info in CATALOGUE.values():
        out[info.category].append(info)
    return {c: infos for c, infos in out.items() if infos}


def docs_link(code: str) -> str:
    """The page of ``code`` (relative to the repository root)."""
    return DOCS_URL.format(code=code)


class _Defaults(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fixes_for(code: str, evidence: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The ordered fixes of ``code``, filled in from ``evidence`` (unknown placeholders stay)."""
    values = _Defaults(evidence or {})
    out = []
    for template in lookup(code).fixes:
        try:
            out.append(template.format_map(values))
        except (ValueError, IndexError, KeyError, TypeError):
            out.append(template)
    return tuple(out)


def finding(
    code: str,
    message: str,
    evidence: Mapping[str, Any] | None = None,
    *,
    severity: Severity | str | None = None,
    step: Step | str | None = None,
    location: str = "",
    first_step: int | None = None,
    count: int = 1,
    fill: Mapping[str, Any] | None = None,
    fixes: tuple[str, ...] | None = None,
) -> Finding:
    """Make a finding of a declared ``code``.

    Severity and step default to the catalogue's. The fixes are the catalogue's templates
    filled from ``evidence``, ``location`` and ``fill`` (values for the templates that are not
    evidence). ``fixes`` replaces them only for a finding that summarises other findings (it
    carries their fixes, e.g. the overfit-one-batch symptom and its likely causes).
    """
    info = lookup(code)
    ev = dict(evidence or {})
    if fixes is None:
        fixes = fixes_for(code, {**ev, "location": location, **(fill or {})})
    return Finding(code=code, severity=Severity(severity) if severity is not None else info.severity,
                   step=Step(step) if step is not None else info.step, message=message, evidence=ev,
                   fixes=fixes, location=location, first_step=first_step, count=count)
