"""``nndoctor.watch``: diagnose training from inside the user's own script.

::

    import nndoctor
    with nndoctor.watch(model, optimizer) as doctor:   # or nndoctor.watch() to discover them
        for x, y in loader:
            ...                                         # the loop, unchanged
    print(doctor.report())                              # a Report; str() renders it
    doctor                                              # in Jupyter: the report as HTML (_repr_html_)
    doctor.findings                                     # list of Finding

The session wraps an :class:`~nndoctor.monitor.observer.Observer`: the same checks and
sampling as ``nndoctor run``, no change to the user's results, and no live printing unless
``live=True`` (library use should be quiet); ``on_finding`` is called once per new finding.

Under ``torchrun`` (data-parallel, 2 or more ranks) every rank that watches writes its result
file when its session ends, and on rank 0 :meth:`Doctor.report` is then the merged report of all
ranks, as ``nndoctor run`` makes it (see :mod:`nndoctor.distributed.session`); only rank 0
prints with ``live=True``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable, Iterable

import torch

from nndoctor.checks import Check
from nndoctor.distributed.session import RankSession, rank_session
from nndoctor.findings import Finding, Report
from nndoctor.monitor.observer import Observer, StopTraining
from nndoctor.monitor.sampling import Schedule

__all__ = ["Doctor", "watch"]

logger = logging.getLogger("nndoctor")


class Doctor:
    """A diagnosis session around the user's training loop (see :func:`watch`).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. :meth:`report`
    works while training runs and after it ended.
    """

    def __init__(self, observer: Observer, rank: RankSession | None = None) -> None:
        self.observer = observer
        self._running = False
        self._stopped = False
        self._rank = rank  # a rank of a data-parallel job: its result is written when the session ends
        self._merged: Report | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Doctor:
        if self._running:
            return self
        if self._stopped:
            raise RuntimeError("this nndoctor session has ended; call nndoctor.watch(...) again")
        self.observer.__enter__()
        self._running = True
        if self._rank is not None:
            try:
                self._rank.start()
            except Exception:  # the merge is lost, never the training
                logger.warning("nndoctor: this rank's session could not start", exc_info=True)
                self._rank = None
        return self

    def stop(self) -> Report:
        """Remove every hook, run the end-of-training checks and return the report."""
        if self._running:
            self._running = False
            self._stopped = True
            self.observer.__exit__(None, None, None)
            self._finish_rank(crashed=False)
        return self.report()

    def __enter__(self) -> Doctor:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if not self._running:
            return False
        self._running = False
        self._stopped = True
        self.observer.__exit__(exc_type, exc, tb)
        self._finish_rank(crashed=exc is not None and not isinstance(exc, StopTraining))
        # ``max_steps`` ends the loop from inside optimizer.step(): a clean stop, not an error
        return isinstance(exc, StopTraining)

    def _finish_rank(self, crashed: bool) -> None:
        """On a rank of a data-parallel job: write its result; rank 0 keeps the merged report."""
        session, self._rank = self._rank, None
        if session is None:
            return
        try:
            self._merged = session.finish(self.report(), crashed=crashed)
        except Exception:  # a bug of ours costs the merge, never the training
            logger.warning("nndoctor could not merge the ranks' results", exc_info=True)

    @property
    def running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------ results
    def report(self) -> Report:
        """The findings so far, with the facts of the run (steps, models, optimizers...); on rank 0
        of a data-parallel job, once the session ended, the merged report of every rank."""
        if self._merged is not None:
            return self._merged
        report = self.observer.report()
        report.facts["api"] = "watch"
        return report

    @property
    def findings(self) -> list[Finding]:
        return self.observer.findings

    def __repr__(self) -> str:
        state = "running" if self._running else ("ended" if self._stopped else "not started")
        return f"<nndoctor.Doctor {state}: {len(self.observer.sink)} findings, step {self.observer.state.step}>"

    def _repr_html_(self) -> str:
        """In a Jupyter notebook: the session's state and its report so far, as HTML."""
        from html import escape

        try:
            state = "running" if self._running else ("ended" if self._stopped else "not started")
            line = (f'<p style="margin:0 0 4px"><code>nndoctor.watch</code> session {escape(state)}, '
                    f"step {self.observer.state.step}</p>")
            return f"<div>{line}{self.report()._repr_html_()}</div>"
        except Exception:  # showing the session must never raise in the user's notebook
            logger.warning("nndoctor could not render the session as HTML", exc_info=True)
            return f"<pre>{escape(repr(self))}</pre>"


def _live_printer(stream: Any = None) -> Callable[[Finding], None]:
    def show(finding: Finding) -> None:
        try:
            from rich.console import Console

            from nndoctor.report.terminal import finding_line

            Console(file=stream or sys.stderr).print(finding_line(finding))
        except Exception:  # printing must never break training
            logger.warning("nndoctor: %s: %s", finding.code, finding.message)

    return show


def watch(
    model: torch.nn.Module | Iterable[torch.nn.Module] | None = None,
    optimizer: torch.optim.Optimizer | Iterable[torch.optim.Optimizer] | None = None,
    *,
    sample_every: int = 50,
    dense_steps: int = 8,
    schedule: Schedule | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    live: bool = False,
    max_steps: int | None = None,
    checks: Iterable[type[Check]] | None = None,
    discover: bool | None = None,
) -> Doctor:
    """Watch training and diagnose it; returns a :class:`Doctor` (use it in a ``with`` block).

    ``model`` / ``optimizer``: what to watch; left out, they are discovered from the modules
    called and the optimizers stepped, as ``nndoctor run`` does (``discover`` forces either).
    ``sample_every`` / ``dense_steps`` (or a whole ``schedule``): how often to look closely.
    ``on_finding``: called once with each new finding; ``live=True`` also prints it to stderr.
    ``max_steps``: end the loop cleanly after that many optimizer steps.
    """
    rank = rank_session()  # under torchrun: this rank's share of one merged report
    main = rank is None or rank.info.is_main  # only rank 0 prints
    callbacks = [cb for cb in (on_finding, _live_printer() if live and main else None) if cb is not None]

    def notify(finding: Finding) -> None:
        for cb in callbacks:
            try:
                cb(finding)
            except Exception:  # a broken callback must not break training
                logger.exception("nndoctor: on_finding callback failed")

    observer = Observer(
        models=model,
        optimizers=optimizer,
        schedule=schedule or Schedule(dense=dense_steps, every=sample_every),
        checks=checks,
        on_finding=notify if callbacks else None,
        max_steps=max_steps,
        discover=(model is None) if discover is None else discover,
    )
    return Doctor(observer, rank)
