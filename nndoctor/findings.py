"""The finding contract: what every check reports and every renderer reads.

A :class:`Finding` is immutable; a :class:`Report` collects findings with the facts of
the run that produced them. Category names come from the public contract in
``finding-categories.md`` and are validated here, so a typo can never ship.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

__all__ = [
    "CATEGORIES",
    "DOCS_PAGE",
    "SCHEMA_VERSION",
    "Finding",
    "InternalError",
    "Report",
    "Severity",
    "Step",
    "category_of",
]

#: The version of the JSON layout of :meth:`Report.to_dict` (docs/report-schema.md). 2: the typed
#: report sections in ``facts`` (``grad_norms``, ``activation_health`` recorded) and ``schema_version``.
SCHEMA_VERSION = 2

#: each code's page (``nndoctor explain CODE`` prints it), relative to the repository root
DOCS_PAGE = "docs/findings/{code}.md"

logger = logging.getLogger(__name__)

#: The public contract: never rename, merge or remove one of these.
CATEGORIES: dict[str, str] = {
    "shape": "silent broadcasting or shape mismatch",
    "preprocessing": "inputs not normalised, normalised twice, constant or NaN features, labels out of range",
    "loss-input": "model output and loss disagree",
    "train-mode": "training in eval mode, or evaluating in train mode",
    "dtype": "float64 or integer inputs, wrong target dtype, mixed precision misuse",
    "numerics": "NaN/Inf in loss, activations, gradients or weights",
    "zero-grad": "gradients accumulate across steps",
    "grad-flow": "parameters never get a gradient or are never updated",
    "labels": "labels corrupted, shuffled apart from inputs, noisy, or not learnable",
    "init": "poor initialisation",
    "lr": "learning rate too high or too low",
    "optimizer": "optimizer settings other than lr that break training",
    "grad": "vanishing or exploding gradients",
    "activation": "dead ReLUs, saturated tanh/sigmoid",
    "loss-curve": "loss goes up, explodes, oscillates or plateaus",
    "regularization": "too much weight decay, dropout or other regularisation",
    "data": "class imbalance, leakage, too little data, input distribution shift",
    "fit": "underfitting, overfitting, distribution shift, validation overfitting",
    "distributed": "data-parallel training gone wrong: diverged replicas, the same data on every rank, "
                   "sampler epoch never set, per-rank batch-norm on tiny batches, gradients not averaged",
}


class Severity(str, enum.Enum):
    """How sure and how bad: ``error`` is a definite bug, ``info`` is advice."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(
                f"unknown severity {value!r}: use one of error, warning, info"
            ) from None


class Step(str, enum.Enum):
    """The field-guide step a finding belongs to."""

    START = "start simple"
    DEBUG = "implement & debug"
    EVALUATE = "evaluate"
    IMPROVE = "improve"
    TUNE = "tune"


def category_of(code: str) -> str:
    """Return the category part of ``<category>.<name>``, validating it."""
    category, sep, name = code.partition(".")
    if not sep or not name:
        raise ValueError(f"finding code {code!r} is not of the form <category>.<name>")
    if category not in CATEGORIES:
        raise ValueError(
            f"finding code {code!r} uses unknown category {category!r}; "
            f"known: {', '.join(CATEGORIES)}"
        )
    return category


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what is wrong, the numbers that show it, and what to do."""

    code: str
    severity: Severity
    step: Step
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fixes: tuple[str, ...] = ()
    location: str = ""
    first_step: int | None = None
    count: int = 1
    #: keys ``(code, location)`` of the findings this one is a symptom of; set by the Report
    #: from evidence (nndoctor/rootcause.py), empty for a root cause
    caused_by: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        category_of(self.code)
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))
        if not isinstance(self.step, Step):
            object.__setattr__(self, "step", Step(self.step))
        object.__setattr__(self, "fixes", tuple(self.fixes))
        object.__setattr__(self, "evidence", dict(self.evidence))
        object.__setattr__(self, "caused_by", tuple((str(c), str(loc)) for c, loc in self.caused_by))

    @property
    def category(self) -> str:
        return category_of(self.code)

    @property
    def docs(self) -> str:
        """The page of this finding's code (generated from the catalogue)."""
        return DOCS_PAGE.format(code=self.code)

    @property
    def key(self) -> tuple[str, str]:
        """Identity for de-duplication: one finding per code and location."""
        return (self.code, self.location)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "category": self.category,
            "severity": self.severity.value,
            "step": self.step.value,
            "message": self.message,
            "location": self.location,
            "first_step": self.first_step,
            "count": self.count,
            "evidence": _jsonable(self.evidence),
            "fixes": list(self.fixes),
            "docs": self.docs,
            "caused_by": [{"code": c, "location": loc} for c, loc in self.caused_by],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        """The finding of a :meth:`to_dict` (e.g. read back from another process's JSON). Its fixes
        are the ones written there, already filled in; symptom links are recomputed by the Report."""
        return cls(code=d["code"], severity=Severity(d["severity"]), step=Step(d["step"]), message=d["message"],
                   evidence=dict(d.get("evidence") or {}), fixes=tuple(d.get("fixes") or ()),
                   location=d.get("location") or "", first_step=d.get("first_step"),
                   count=int(d.get("count") or 1))


@dataclass(frozen=True)
class InternalError:
    """A bug inside nndoctor: the probe named here was switched off."""

    probe: str
    error: str
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """Findings plus the facts of the run that produced them.

    The findings are linked cause -> symptom from their evidence (nndoctor/rootcause.py): each
    symptom's ``caused_by`` names its causes, and :meth:`sorted` lists root causes first.
    """

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    internal_errors: list[InternalError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.findings = self.linked()

    def linked(self) -> list[Finding]:
        """The findings in the order seen, each symptom with its ``caused_by`` (recomputed, so
        findings added after construction are linked too)."""
        from nndoctor.rootcause import link

        try:
            return link(self.findings, self.facts)
        except Exception:  # a bug in the linking must not cost the user the report
            logger.warning("nndoctor could not link causes and symptoms", exc_info=True)
            return list(self.findings)

    def sorted(self) -> list[Finding]:
        """Root causes first (the most severe cause and its symptoms, then the earliest), each
        followed by its symptoms; findings without a link are their own root."""
        from nndoctor.rootcause import ordered

        return ordered(self.linked())

    def groups(self) -> list[tuple[Finding, list[Finding]]]:
        """``[(root cause, [its symptoms])]`` in :meth:`sorted` order."""
        from nndoctor.rootcause import groups

        return groups(self.linked())

    def headline(self) -> Finding | None:
        """The root cause to read first (warning or error), or None."""
        from nndoctor.rootcause import headline

        return headline(self.linked())

    def at_least(self, severity: Severity | str) -> list[Finding]:
        sev = severity if isinstance(severity, Severity) else Severity.parse(severity)
        return [f for f in self.findings if f.severity.rank >= sev.rank]

    def categories(self, severity: Severity | str = Severity.WARNING) -> set[str]:
        return {f.category for f in self.at_least(severity)}

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def __str__(self) -> str:
        """The report as plain text: root causes first, each with its evidence, fixes and page
        (the renderers in ``nndoctor.report`` make the richer views)."""
        lines = []
        for root, symptoms in self.groups():
            for f in (root, *symptoms):
                pad = "  " if f is root else "    "
                where = ", ".join(([f.location] if f.location else [])
                                  + ([f"step {f.first_step}"] if f.first_step is not None else []))
                lines.append(f"{pad[2:]}{f.severity.value} {f.code}" + (f" [{where}]" if where else "")
                             + f": {f.message}")
                if f.caused_by:
                    lines.append(f"{pad}symptom of: " + ", ".join(code for code, _ in f.caused_by))
                lines.extend(f"{pad}fix {k + 1}: {fix}" for k, fix in enumerate(f.fixes))
                lines.append(f"{pad}explain: nndoctor explain {f.code}")
        for err in self.internal_errors:
            lines.append(f"info nndoctor internal error in probe {err.probe} (switched off): {err.error}")
        return "\n".join(lines) if lines else "No problems found."

    def section(self, cls: type[Any]) -> Any:
        """The typed section ``cls`` of the facts (nndoctor/report/sections.py), or None."""
        from nndoctor.report.sections import read

        return read(self.facts, cls)

    def _repr_html_(self) -> str:
        """The report in a Jupyter notebook: a self-contained HTML fragment."""
        from html import escape

        try:
            from nndoctor.report.html import render_fragment

            return render_fragment(self)
        except Exception as exc:  # a rendering bug shows the text report, never a traceback
            logger.warning("nndoctor could not render the report as HTML", exc_info=True)
            try:
                return f"<pre>{escape(str(self))}</pre>"
            except Exception:
                return f"<pre>nndoctor report: {escape(repr(exc))}</pre>"

    def to_dict(self) -> dict[str, Any]:
        from nndoctor import rootcause

        findings = self.linked()
        return {
            "schema_version": SCHEMA_VERSION,
            "schema": SCHEMA_VERSION,  # the same number under its version-1 name, for existing readers
            "tool": "nndoctor",
            "facts": _jsonable(self.facts),
            "summary": {
                sev.value: sum(1 for f in self.findings if f.severity is sev) for sev in Severity
            },
            "headline": _headline_dict(rootcause.headline(findings)),
            "findings": [f.to_dict() for f in rootcause.ordered(findings)],
            "internal_errors": [e.to_dict() for e in self.internal_errors],
        }


def _headline_dict(f: Finding | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"code": f.code, "category": f.category, "severity": f.severity.value, "location": f.location,
            "first_step": f.first_step, "message": f.message}


def _jsonable(value: Any) -> Any:
    """Make evidence JSON-safe: tuples to lists, numpy/torch scalars to floats."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    to_dict = getattr(value, "to_dict", None)  # a typed report section stored as an object
    if callable(to_dict) and not isinstance(value, type):
        return _jsonable(to_dict())
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)
