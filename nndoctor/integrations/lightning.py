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
Models are discovered as under ``nndoctor run``: a ``training_step`` that calls its parts
(``self.encoder(x)``) instead of ``self(x)``, or a strategy's wrapper (DDP), is observed through
the module it calls first.
Under a data-parallel strategy (DDP, 2 or more processes) every rank watches its own process and
writes its result file when fit ends; rank 0's :meth:`report` is then the merged report of every
rank, as ``nndoctor run`` makes it (:mod:`nndoctor.distributed.session`).
Needs the optional extra: ``pip install 'nndoctor[lightning]'``.
"""

from __future__ import annotations

import logging
import os
import socket
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

from nndoctor.distributed.rankinfo import RankInfo, current_rank
from nndoctor.distributed.session import RankSession, rank_session
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
        self._rank: RankSession | None = None

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._stop(None)
        optimizers = list(getattr(trainer, "optimizers", None) or [])
        self.observer = Observer(models=[pl_module], optimizers=optimizers, schedule=self.schedule,
                                 on_finding=self._notify, discover=True)
        self.observer.__enter__()
        try:
            self._rank = rank_session(_trainer_rank(trainer))
            if self._rank is not None:
                self._rank.start()
        except Exception:  # the merge is lost, never the training
            logger.warning("nndoctor: this rank's session could not start", exc_info=True)
            self._rank = None

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
        session, self._rank = self._rank, None
        if session is not None:
            try:
                self._last = session.finish(self._last, crashed=exc is not None) or self._last
            except Exception:  # a bug of ours costs the merge, never the training
                logger.warning("nndoctor could not merge the ranks' results", exc_info=True)


def _trainer_rank(trainer: Any) -> RankInfo | None:
    """This process's rank as the trainer's strategy knows it (Lightning's own launcher does not
    set ``RANK``): None for one process."""
    try:
        world = int(getattr(trainer, "world_size", 1) or 1)
        if world < 2:
            return None
        nodes = max(int(getattr(trainer, "num_nodes", 1) or 1), 1)
        return RankInfo(rank=int(trainer.global_rank), world_size=world, local_rank=int(trainer.local_rank),
                        local_world_size=max(world // nodes, 1),
                        run_id=os.environ.get("TORCHELASTIC_RUN_ID", "lightning"), host=socket.gethostname())
    except (AttributeError, TypeError, ValueError):
        return current_rank()
