"""Lightning callback: diagnose a ``lightning.Trainer`` run with nndoctor.

::

    from nndoctor.integrations.lightning import NNDoctorCallback

    doctor = NNDoctorCallback()
    trainer = lightning.Trainer(callbacks=[doctor], max_epochs=5)
    trainer.fit(model, datamodule)
    print(doctor.report())

The callback starts an :class:`~nndoctor.monitor.observer.Observer` in ``on_fit_start``
(watching the LightningModule and the trainer's optimizers) and stops it in
``on_fit_end`` or ``on_exception``; the findings stay available through :meth:`report`.
Needs the optional extra: ``pip install 'nndoctor[lightning]'``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        raise ImportError(
            "nndoctor's Lightning callback needs Lightning: pip install 'nndoctor[lightning]'"
        ) from None

from nndoctor.findings import Finding, Report
from nndoctor.monitor.observer import Observer
from nndoctor.monitor.sampling import Schedule

__all__ = ["NNDoctorCallback"]

logger = logging.getLogger("nndoctor")


class NNDoctorCallback(pl.Callback):
    """Watches ``trainer.fit`` like ``nndoctor.watch`` does; :meth:`report` gives the findings.

    ``sample_every`` / ``dense_steps`` (or ``schedule``): how often to look closely;
    ``on_finding``: called once per new finding; ``live``: also log each new finding
    (as a warning on the ``nndoctor`` logger).
    """

    def __init__(
        self,
        *,
        sample_every: int = 50,
        dense_steps: int = 8,
        schedule: Schedule | None = None,
        on_finding: Callable[[Finding], None] | None = None,
        live: bool = False,
    ) -> None:
        super().__init__()
        self.schedule = schedule or Schedule(dense=dense_steps, every=sample_every)
        self.on_finding = on_finding
        self.live = live
        self.observer: Observer | None = None
        self._last: Report | None = None

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._stop(None)
        optimizers = list(getattr(trainer, "optimizers", None) or [])
        self.observer = Observer(models=[pl_module], optimizers=optimizers, schedule=self.schedule,
                                 on_finding=self._notify, discover=False)
        self.observer.__enter__()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._stop(None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._stop(exception)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._stop(None)  # never leave global hooks behind

    # ------------------------------------------------------------------ results
    def report(self) -> Report:
        """The findings so far (during fit) or of the last fit."""
        if self.observer is not None:
            report = self.observer.report()
        elif self._last is not None:
            report = self._last
        else:
            return Report(facts={"api": "lightning", "steps": 0})
        report.facts["api"] = "lightning"
        return report

    @property
    def findings(self) -> list[Finding]:
        return self.report().findings

    # ------------------------------------------------------------------ internals
    def _notify(self, finding: Finding) -> None:
        if self.live:
            logger.warning("nndoctor %s %s: %s", finding.severity.value, finding.code, finding.message)
        if self.on_finding is not None:
            try:
                self.on_finding(finding)
            except Exception:
                logger.exception("nndoctor: on_finding callback failed")

    def _stop(self, exc: BaseException | None) -> None:
        observer, self.observer = self.observer, None
        if observer is None:
            return
        if exc is not None and not isinstance(exc, KeyboardInterrupt) and isinstance(exc, Exception):
            observer.on_crash(exc)
        elif isinstance(exc, KeyboardInterrupt):
            observer.end_reason = "interrupted"
        observer.__exit__(None, None, None)
        self._last = observer.report()
