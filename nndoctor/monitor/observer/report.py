"""What the observer hands back: a crash of the user's code explained to the checks, the
:class:`~nndoctor.findings.Report` and the facts of the run (mixed into
:class:`~nndoctor.monitor.observer.Observer`)."""

from __future__ import annotations

import time
from typing import Any

import torch

from nndoctor.findings import Finding, Report
from nndoctor.monitor.events import Crash, OpCall
from nndoctor.monitor.tensors import materialised
from nndoctor.report.sections import Series, TrainingCurves

__all__ = ["Reporting"]


class Reporting:
    """Observer methods for the end of a run and its report."""

    def on_crash(self, exc: BaseException) -> None:
        """Explain a crash of the user's code (called by the runner or ``__exit__``)."""
        self.end_reason = "crash"
        self.crash = exc
        if self._failed:
            return
        try:
            op = None
            if self._failed_op is not None:
                name, func, args, kwargs = self._failed_op
                op = OpCall(name=name, func=func, args=args, kwargs=kwargs, result=None,
                            step=self.state.step, module=self._current_module_name())
            inputs = self._stack_inputs[-1] if self._stack_inputs else ()
            names = tuple(self.state.module_name(m) for m in self._stack)
            self._dispatch(Crash(exc=exc, step=self.state.step, module_stack=names,
                                 module_inputs=inputs, op=op))
        except Exception as err:
            self._fail("crash", err)

    def report(self) -> Report:
        """The findings so far, with the facts of the run (a fault of ours while reading them is
        reported like any other: the report then holds what could be read)."""
        try:
            facts = self._facts()
        except Exception as exc:
            self._fail("report", exc)
            facts = {"steps": max(self.state.step - 1, 0), "backward_calls": self.state.backward_calls,
                     "forward_calls": self.state.forward_calls, "models": [], "optimizers": [],
                     "duration_s": 0.0, "end": self.end_reason, "curves": {}}
        return Report(findings=self.sink.findings(), facts=facts,
                      internal_errors=list(self.internal_errors))

    def _facts(self) -> dict[str, Any]:
        self.state.losses.flush()
        model_names = {info.name for info in self.state.models.values()}

        def models_of(optimizer: torch.optim.Optimizer | None) -> list[str]:
            """The models whose parameters ``optimizer`` updates (evidence for linking findings)."""
            if optimizer is None:
                return []
            heads = {self.state.param_names.get(id(p), "").partition(".")[0]
                     for group in optimizer.param_groups for p in group["params"]}
            return sorted(heads & model_names)

        facts = {
            "steps": self.state.step - 1 if self.state.step > 0 else 0,
            "backward_calls": self.state.backward_calls,
            "forward_calls": self.state.forward_calls,
            "models": [
                {"name": info.name, "class": info.cls,
                 "parameters": sum(p.numel() for p in info.module.parameters() if materialised(p)) if info.module is not None
                 else info.parameters}
                for info in self.state.models.values()
            ],
            "optimizers": [
                {"name": info.name, "class": info.cls, "steps": info.steps,
                 "lr": (info.optimizer.param_groups[0].get("lr") if info.optimizer is not None
                        and info.optimizer.param_groups else info.lr),
                 "models": models_of(info.optimizer)}
                for info in self.state.optimizers.values()
            ],
            "duration_s": round(time.perf_counter() - self._started, 3) if self._started else 0.0,
            "end": self.end_reason,
            "curves": TrainingCurves({h.name: Series(**_downsample(*h.series())) for h in (
                self.state.losses, self.state.eval_losses, self.state.lrs) if len(h)}).to_dict(),
        }
        for key in ("nndoctor.grad_norms", "nndoctor.activation_health"):  # typed sections of the checks
            section = self.state.extra.get(key)
            data = section.to_dict() if section is not None else None
            if data:
                facts[section.key] = data
        if self.end_analysis:
            facts["end_analysis"] = dict(self.end_analysis)
        if "distributed" in self.state.extra:  # the rank's fingerprints (nndoctor/distributed)
            facts["distributed"] = self.state.extra["distributed"]
        return facts

    @property
    def findings(self) -> list[Finding]:
        return self.sink.findings()


def _downsample(steps: list[int], values: list[float], limit: int = 400) -> dict[str, list[Any]]:
    """At most ``limit`` points of a curve, for reports (non-finite values become None)."""
    stride = max(1, -(-len(values) // limit))
    return {"steps": steps[::stride],
            "values": [v if v == v and abs(v) != float("inf") else None for v in values[::stride]]}
