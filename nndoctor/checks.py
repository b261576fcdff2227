"""The check registry.

Every check is a small class with metadata (its finding code(s) and the observation kinds
it needs) and one method, :meth:`Check.check`, that turns one observation into findings. A
check whose inputs never arrive is simply never called. A code's severity, step and fixes
are declared once in the catalogue (:mod:`nndoctor.catalogue`), never parsed from messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from nndoctor import catalogue
from nndoctor.catalogue import fixes_for
from nndoctor.findings import Finding, Severity, Step, category_of

if TYPE_CHECKING:
    from nndoctor.monitor.state import RunState

__all__ = ["Check", "REGISTRY", "fixes_for", "register", "registered"]

logger = logging.getLogger("nndoctor")

#: check name -> class, in registration order
REGISTRY: dict[str, type[Check]] = {}


class Check:
    """Base class of every check.

    Subclasses set the metadata class attributes and implement :meth:`check`. One
    instance lives for one observed run, so a check may keep state across calls.
    """

    #: the main finding code (declared in the catalogue, which gives its severity, step and fixes)
    code: ClassVar[str]
    #: extra codes this check may emit (each declared in the catalogue too)
    extra_codes: ClassVar[tuple[str, ...]] = ()
    #: the catalogue's severity and step of :attr:`code`, set by :func:`register`
    severity: ClassVar[Severity] = Severity.WARNING
    step: ClassVar[Step] = Step.DEBUG
    #: observation kinds this check consumes (see ``nndoctor.monitor.events``)
    needs: ClassVar[tuple[str, ...]] = ()
    #: kinds of :attr:`needs` wanted on sampled steps only: the observer skips this check for
    #: those events on unsampled steps (declare a kind here only if the check ignores the
    #: unsampled ones anyway; it keeps the always-on cost of a step down)
    sampled_only: ClassVar[frozenset[str]] = frozenset()
    #: for ``needs=("step", ...)``: the phases wanted, ``"pre"`` (gradients ready) and/or
    #: ``"post"`` (parameters updated); ``sampled_only`` may name ``"step.pre"``/``"step.post"``
    step_phases: ClassVar[frozenset[str]] = frozenset({"pre", "post"})
    #: functions (``torch.*``, ``F.*``, ``Tensor.*`` names) this check wants to see as ``op`` events
    ops: ClassVar[frozenset[str]] = frozenset()
    #: functions of :attr:`ops` this check also wants as ``op`` events in evaluation loops between
    #: sampled steps (the light function mode; the event's ``module`` is then empty)
    eval_ops: ClassVar[frozenset[str]] = frozenset()
    #: for ``needs=("end", ...)``: 0 for a cheap end-of-run analysis; a costly one (probes fitted
    #: at the end) sets its rank, 1 the most valuable: run after the cheap ones, in that order,
    #: within the end-of-run budget (it compares its own estimate with ``RunEnd.time_left()``); -1 for
    #: a recorder other parts depend on (the per-rank fingerprints a merge compares): first, never left out
    end_cost: ClassVar[int] = 0
    #: for a costly check that reads a slowly changing state: it hears its :attr:`sampled_only`
    #: kinds and its :attr:`ops` on the first sampled step, then on one sampled step in
    #: ``look_every``, staggered with the other such checks so that their cost is spread over the
    #: sampled steps (nndoctor/monitor/observer/routes.py); 1: on every sampled step
    look_every: ClassVar[int] = 1
    #: for ``needs=("module_output", ...)``: the module types whose outputs this check judges; it
    #: hears the ``module_output`` events of those modules only (None: of every module)
    module_types: ClassVar[tuple[type, ...] | None] = None
    #: with :attr:`module_types`: it also hears the outputs of the watched (root) models
    root_outputs: ClassVar[bool] = False
    #: with :attr:`module_types`: the check can find nothing without such a module, so it hears
    #: nothing but the run's end (and a crash) until a watched model holds one or one runs
    needs_module: ClassVar[bool] = False

    def __init__(self, state: RunState) -> None:
        self.state = state

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def check(self, event: Any) -> Iterable[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inert(self) -> bool:
        """Whether this check can find nothing in this run, whatever happens in it (decided when it
        is made: a cross-rank check in a single process). An inert check is retired before the
        first step (:meth:`retire`): it hears only the run's end and a crash, and costs nothing on
        the sampled steps. Override only where the answer cannot change during the run."""
        return False

    def retire(self) -> None:
        """This check's verdict can no longer change (a fact looked at once, or every code it may
        emit found): it hears no more events but the run's end (and a crash), and costs nothing
        on the steps after. A no-op for a check run outside an observer."""
        observer = getattr(self.state, "observer", None)
        retire = getattr(observer, "_retire", None)
        if retire is not None:
            retire(self)

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
        fill: Mapping[str, Any] | None = None,
    ) -> Finding:
        """A finding of this check's ``code`` (or one of its ``extra_codes``); ``fill``: values for the
        catalogue's fix templates that are not evidence."""
        code = code or self.code
        if code != self.code and code not in self.extra_codes:
            raise ValueError(f"{self.name()} may not emit undeclared code {code!r}")
        if step is None and self.state is not None:
            step = self.state.step
        return catalogue.finding(code, message, evidence, severity=severity, location=location, first_step=step,
                                 fill=fill)


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: validate the metadata and add the check to the registry."""
    if not getattr(cls, "code", None):
        raise TypeError(f"check {cls.__name__} has no code")
    for code in (cls.code, *cls.extra_codes):
        category_of(code)
        catalogue.lookup(code)  # KeyError naming the catalogue module to declare it in
    info = catalogue.lookup(cls.code)
    cls.severity, cls.step = info.severity, info.step
    if not cls.needs:
        raise TypeError(f"check {cls.__name__} declares no needs")
    kinds = set(cls.needs) | ({f"step.{p}" for p in cls.step_phases} if "step" in cls.needs else set())
    if not cls.step_phases or not cls.step_phases <= {"pre", "post"}:
        raise TypeError(f"check {cls.__name__}: step_phases must be a non-empty subset of pre/post")
    if not set(cls.sampled_only) <= kinds or {"end", "crash"} & set(cls.sampled_only):
        raise TypeError(f"check {cls.__name__}: sampled_only {sorted(cls.sampled_only)} must be among its needs "
                        "and cannot hold 'end' or 'crash'")
    if not isinstance(cls.look_every, int) or cls.look_every < 1 or (
            cls.look_every > 1 and not cls.sampled_only and not cls.ops):
        raise TypeError(f"check {cls.__name__}: look_every must be an int >= 1, and > 1 only with "
                        "sampled_only kinds or ops (what it spreads)")
    if cls.module_types is not None and ("module_output" not in cls.needs or not isinstance(cls.module_types, tuple)):
        raise TypeError(f"check {cls.__name__}: module_types must be a tuple of types, with 'module_output' "
                        "among its needs")
    if (cls.root_outputs or cls.needs_module) and cls.module_types is None:
        raise TypeError(f"check {cls.__name__}: root_outputs and needs_module go with module_types")
    if cls.needs_module and not cls.module_types:
        raise TypeError(f"check {cls.__name__}: needs_module needs at least one module type")
    if cls.__name__ in REGISTRY and REGISTRY[cls.__name__] is not cls:
        raise TypeError(f"two checks are named {cls.__name__}")
    REGISTRY[cls.__name__] = cls
    return cls


def registered() -> list[type[Check]]:
    """Every registered check (importing the packages that define them first)."""
    import nndoctor.debug  # noqa: F401  (registers checks)
    import nndoctor.distributed.checks  # noqa: F401
    import nndoctor.distributed.fingerprints  # noqa: F401
    import nndoctor.monitor.checks  # noqa: F401

    return list(REGISTRY.values())
