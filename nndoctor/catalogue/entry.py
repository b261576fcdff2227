"""One catalogue entry: everything nndoctor knows about one finding code.

An entry is immutable. The finding factory (:func:`nndoctor.catalogue.finding`) reads its
severity, step and fix templates; ``nndoctor explain CODE`` and ``docs/findings/`` render
the rest (what it means, why it matters, how it is detected, a wrong/right example).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from nndoctor.findings import DOCS_PAGE, Severity, Step, category_of

__all__ = ["CodeInfo"]


@dataclass(frozen=True)
class CodeInfo:
    """A finding code declared once.

    ``severity`` and ``step`` are the defaults of a finding of this code (a finding may be
    downgraded, e.g. to ``info`` where the evidence is weak). ``fixes`` are ordered
    ``str.format`` templates filled from the finding's evidence (and its ``location``).
    ``wrong``/``right`` are minimal code examples (``right`` may be empty where the fix is
    not a code change).
    """

    code: str
    severity: Severity
    step: Step
    title: str
    meaning: str
    why: str
    detection: str
    fixes: tuple[str, ...] = ()
    wrong: str = ""
    right: str = ""

    def __post_init__(self) -> None:
        category_of(self.code)
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "step", Step(self.step))
        object.__setattr__(self, "fixes", tuple(self.fixes))
        for name in ("wrong", "right"):
            object.__setattr__(self, name, textwrap.dedent(getattr(self, name)).strip("\n"))
        for name in ("title", "meaning", "why", "detection"):
            object.__setattr__(self, name, " ".join(getattr(self, name).split()))

    @property
    def category(self) -> str:
        return category_of(self.code)

    @property
    def page(self) -> str:
        """The page's path relative to the repository root."""
        return DOCS_PAGE.format(code=self.code)
