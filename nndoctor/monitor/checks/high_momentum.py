"""optimizer: momentum of 0.98-0.995 (below the setting check's bar) that the run shows is too high.

``optimizer.extreme-momentum`` is reported from the setting alone at momentum >= 0.995. Between 0.98
and 0.995 the setting is sometimes right (a small lr chosen for it, e.g. U-Net's 0.99), so it says
nothing by itself; it is the usual culprit when the run then goes unstable: a gradient keeps
pushing for ~1/(1 - momentum) = 50-200 steps, so an lr tuned for momentum 0.9 acts 5-20x larger and
the weights overshoot, the loss rises, swings or explodes.

Detection: SGD (or RMSprop) param groups with momentum in [:data:`LOW`, ``MOMENTUM_EXTREME``) are
noted at the first step; the shared curve analysis (the loss-curve check's) is read whenever the
curve is due; at the end of the run, a warning when one of those reads showed the training loss
going up, exploding or oscillating (over at least :data:`MIN_LOSSES` losses). A curve that falls steadily stays quiet. Adam's beta1 is left out: Adam divides the
momentum by its own running scale, so a high beta1 does not multiply the step the same way.
"""

from __future__ import annotations

from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt
from nndoctor.monitor.checks.optimizer import MOMENTUM_EXTREME
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.events import CurveDue, RunEnd, StepEvent

__all__ = ["HighMomentumUnstable"]

#: momentum at or above this (and below MOMENTUM_EXTREME) is judged from the run
LOW = 0.98
MIN_LOSSES = 30
#: curve symptoms that a too-long momentum produces
UNSTABLE = ("explodes", "goes-up", "oscillates")


@register
class HighMomentumUnstable(Check):
    """SGD momentum 0.98-0.995 with a loss curve that rises, swings or explodes."""

    code = "optimizer.extreme-momentum"
    needs = ("step", "curve", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._seen: set[int] = set()
        self._found: list[dict[str, Any]] = []
        self._unstable: dict[str, Any] | None = None  # the first unstable read of the curve

    def check(self, event: StepEvent | CurveDue | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            if event.reason != "crash":
                self._read()
                return self._judge()
            return ()
        if isinstance(event, CurveDue):
            self._read()
            return ()
        if id(event.optimizer) in self._seen:
            return ()
        self._seen.add(id(event.optimizer))
        groups = event.optimizer.param_groups
        cls = type(event.optimizer).__name__
        for gi, group in enumerate(groups):
            try:
                m, lr = float(group.get("momentum") or 0.0), float(group["lr"])
            except (TypeError, ValueError, KeyError):
                continue
            if LOW <= m < MOMENTUM_EXTREME and "betas" not in group:
                where = event.optimizer_name if len(groups) == 1 else f"{event.optimizer_name}.param_groups[{gi}]"
                self._found.append({"optimizer": f"{event.optimizer_name} ({cls})", "where": where, "group": gi,
                                    "setting": "momentum", "value": m, "momentum": m, "lr": lr,
                                    "effective_lr": float(f"{lr / (1 - m):.3g}"),
                                    "sane": "momentum 0.9 (or lower the lr in proportion)", "step": event.step})
        return ()

    def _read(self) -> None:
        """Note the first read of the shared curve analysis (the loss-curve check's) that shows the loss
        rising, swinging or exploding (a curve that later settles on a high plateau no longer shows it)."""
        if not self._found or self._unstable is not None:
            return
        curve = analyze_losses(self.state)
        shown = [s for s in UNSTABLE if curve.has(s)]
        if curve.n >= MIN_LOSSES and shown:
            self._unstable = {"symptom": shown[0], "losses": curve.n, "start_loss": curve.start,
                              "end_loss": curve.end, "read_at_step": self.state.step}

    def _judge(self) -> list[Finding]:
        seen = self._unstable
        if not self._found or seen is None:
            return []
        out = []
        for f in self._found:
            ev = {**f, **seen}
            out.append(self.finding(
                f"{f['where']} runs with momentum={fmt(f['momentum'])}: a gradient keeps pushing for "
                f"~{round(1 / (1 - f['momentum']))} steps, so lr {fmt(f['lr'])} acts like {fmt(f['effective_lr'])}"
                f", and the training loss {_says(seen['symptom'])} ({fmt(seen['start_loss'])} -> "
                f"{fmt(seen['end_loss'])} over {seen['losses']} steps): the weights overshoot",
                ev, location=f["where"], step=f["step"]))
        return out


def _says(symptom: str) -> str:
    return {"explodes": "explodes", "goes-up": "goes up", "oscillates": "oscillates"}[symptom]
