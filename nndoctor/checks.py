"""The check registry.

Every check is a small class with metadata (its finding code, severity, field-guide
step, and the observation kinds it needs) and one method, :meth:`Check.check`, that
turns one observation into findings. A check whose inputs never arrive is simply never
called. Fixes are looked up by code in :data:`FIXES`, never parsed from messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from nndoctor.findings import Finding, Severity, Step, category_of

if TYPE_CHECKING:
    from nndoctor.monitor.state import RunState

__all__ = ["Check", "FIXES", "REGISTRY", "fixes_for", "register", "registered"]

logger = logging.getLogger("nndoctor")

#: code -> ordered fix templates (``str.format`` placeholders filled from evidence)
FIXES: dict[str, tuple[str, ...]] = {}

#: check name -> class, in registration order
REGISTRY: dict[str, type[Check]] = {}


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fixes_for(code: str, evidence: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The ordered fixes registered for ``code``, filled in from ``evidence``."""
    values = _Defaults(evidence or {})
    out = []
    for template in FIXES.get(code, ()):
        try:
            out.append(template.format_map(values))
        except (ValueError, IndexError, KeyError):
            out.append(template)
    return tuple(out)


class Check:
    """Base class of every check.

    Subclasses set the metadata class attributes and implement :meth:`check`. One
    instance lives for one observed run, so a check may keep state across calls.
    """

    code: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    step: ClassVar[Step] = Step.DEBUG
    #: observation kinds this check consumes (see ``nndoctor.monitor.events``)
    needs: ClassVar[tuple[str, ...]] = ()
    #: ordered fix templates for :attr:`code`
    fixes: ClassVar[tuple[str, ...]] = ()
    #: extra codes this check may emit, with their fixes
    extra_codes: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: kinds of :attr:`needs` wanted on sampled steps only: the observer skips this check for
    #: those events on unsampled steps (declare a kind here only if the check ignores the
    #: unsampled ones anyway; it keeps the always-on cost of a step down)
    sampled_only: ClassVar[frozenset[str]] = frozenset()
    #: for ``needs=("step", ...)``: the phases wanted, ``"pre"`` (gradients ready) and/or
    #: ``"post"`` (parameters updated); ``sampled_only`` may name ``"step.pre"``/``"step.post"``
    step_phases: ClassVar[frozenset[str]] = frozenset({"pre", "post"})
    #: functions (``torch.*``, ``F.*``, ``Tensor.*`` names) this check wants to see as ``op`` events
    ops: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, state: RunState) -> None:
        self.state = state

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def check(self, event: Any) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------
    def finding(
        self,
        message: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        location: str = "",
        code: str | None = None,
        severity: Severity | None = None,
        step: int | None = None,
    ) -> Finding:
        code = code or self.code
        if code != self.code and code not in self.extra_codes:
            raise ValueError(f"{self.name()} may not emit undeclared code {code!r}")
        ev = dict(evidence or {})
        if step is None and self.state is not None:
            step = self.state.step
        return Finding(
            code=code,
            severity=severity or self.severity,
            step=self.step,
            message=message,
            evidence=ev,
            fixes=fixes_for(code, {**ev, "location": location}),
            location=location,
            first_step=step,
        )


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: validate the metadata and add the check to the registry."""
    if not getattr(cls, "code", None):
        raise TypeError(f"check {cls.__name__} has no code")
    category_of(cls.code)
    for extra in cls.extra_codes:
        category_of(extra)
    if not cls.needs:
        raise TypeError(f"check {cls.__name__} declares no needs")
    kinds = set(cls.needs) | ({f"step.{p}" for p in cls.step_phases} if "step" in cls.needs else set())
    if not cls.step_phases or not cls.step_phases <= {"pre", "post"}:
        raise TypeError(f"check {cls.__name__}: step_phases must be a non-empty subset of pre/post")
    if not set(cls.sampled_only) <= kinds or {"end", "crash"} & set(cls.sampled_only):
        raise TypeError(f"check {cls.__name__}: sampled_only {sorted(cls.sampled_only)} must be among its needs "
                        "and cannot hold 'end' or 'crash'")
    if cls.__name__ in REGISTRY and REGISTRY[cls.__name__] is not cls:
        raise TypeError(f"two checks are named {cls.__name__}")
    REGISTRY[cls.__name__] = cls
    FIXES.setdefault(cls.code, tuple(cls.fixes))
    for extra, extra_fixes in cls.extra_codes.items():
        FIXES.setdefault(extra, tuple(extra_fixes))
    return cls


def registered() -> list[type[Check]]:
    """Every registered check (importing the packages that define them first)."""
    import nndoctor.debug  # noqa: F401  (registers checks)
    import nndoctor.distributed.checks  # noqa: F401
    import nndoctor.distributed.fingerprints  # noqa: F401
    import nndoctor.monitor.checks  # noqa: F401

    return list(REGISTRY.values())
