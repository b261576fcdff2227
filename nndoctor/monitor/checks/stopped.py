"""fit.stopped-while-improving: the run ended while the training loss was still falling steeply.

A ``return`` (or ``break``) indented inside the epoch loop, an epoch count of 1, a step budget cut
short: training stops while every step still lowers the loss, and the model is left underfit.
Short runs that stop early are the norm in tests and notebooks, so this is advice (info), never a
warning: it says how much the loss fell over the last half of the run, and that more steps would
likely help.

Evidence: the per-step training losses of a run that finished on its own (not ``--max-steps``, a
crash or an interrupt), one optimizer, >= ``MIN_LOSSES`` finite positive losses. The last half of
the curve (the whole curve below 16 losses) must still fall significantly (least-squares slope
beyond 3 standard errors of the step-to-step noise) by >= ``STEEP`` of its final level, after an
overall fall of >= 10% from the first losses, to a level still >= 25% of the first losses (a loss
already far down, like the ever-shrinking logistic loss of separable data, is trained), and the
curve must not have bent: the least-squares slope of its second half is still >= 50% of its first
half's (a run cut in its descent, not the usual slow end of a run). A run whose evaluation loss
ended >= 5% above its best is not told to train longer (it overfits).

A sharper message, still info, when the evidence is strong (:class:`._budget.Descent.cut`): read
against effective steps (cumulative lr / peak lr), the last half of the curve still falls significantly
by >= 5% of its final level at >= 30% of the first half's slope, and a saturation fit
``c + a exp(-x / tau)`` says the run covered less than one time constant (``tau`` >= 0.9 run lengths)
with >= 20% of the final level still to lose, in a run of fewer than 100 optimizer steps: it says how
many times as many updates the fit asks for. It was a warning for a day: on the untouched holdout half
of tests/corpus_ported it fired on 2 of 24 healthy twins (84 and 88 steps; the tune half's had 176-180),
so the length of a run cut in its descent is still a choice the evidence cannot judge. A rate that
ended below 10% of its peak is left to :mod:`.schedule` (the schedule stopped the run, not its length).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._budget import Descent, effective_steps, read_descent
from nndoctor.monitor.checks.fit import falling_tail
from nndoctor.monitor.curves import per_step
from nndoctor.monitor.events import RunEnd

__all__ = ["StoppedWhileImproving", "more_steps"]

MIN_LOSSES = 8
STEEP = 0.15  # drop across the judged stretch / final level
BENT = 0.5  # the second half's slope must stay at least this share of the first half's
TURNED = 0.05  # an evaluation loss this far above its best: training longer would not help it
LOW = 0.25  # a final level below this share of the first losses is well trained (separable data's
#             logistic loss keeps halving for ever)
DECAYED = 0.1  # a rate that ended below this share of its peak: the schedule's doing (schedule.py)
FEW_STEPS = 100  # the sharper advice only for a run of fewer optimizer steps: longer ones cut in their descent
#                  were healthy short demos (3 of ~70 healthy scripts, 176-600 steps), the budget faults had 10-60
TAU_LN = 2.3  # time constants to go to come within 10% of the fit's asymptote (ln 10)


def more_steps(cut: Descent) -> str:
    """How many times the run's length the fit asks for (to within 10% of its asymptote)."""
    factor = 1 + TAU_LN * (cut.tau_ratio or 0.0)
    return "at least 10x" if factor >= 10 else f"about {factor:.1f}x"


def _slope(steps: np.ndarray, values: np.ndarray) -> float:
    x = steps.astype(np.float64) - float(steps.mean())
    sxx = float((x * x).sum())
    return float((x * (values - values.mean())).sum()) / sxx if sxx > 0 else 0.0


@register
class StoppedWhileImproving(Check):
    """Training ended while its loss was still falling steeply (info; sharper advice on strong evidence)."""

    code = "fit.stopped-while-improving"
    needs = ("end",)

    def _validation_turned(self) -> bool:
        """The evaluation loss ended above its best by more than ``TURNED`` of it (the run overfits)."""
        series = getattr(self.state, "eval_losses", None)
        if series is None:
            return False
        _, vals = series.series()
        vals = [v for v in vals if np.isfinite(v)]
        return len(vals) >= 2 and vals[-1] > (1 + TURNED) * min(vals) and min(vals) > 0

    def _cut(self, steps: np.ndarray, values: np.ndarray) -> Finding | None:
        """The sharper advice: the curve, read against effective steps, was cut early in its descent."""
        if int(steps[-1]) >= FEW_STEPS:
            return None
        lr_steps, lrs = self.state.lrs.series()
        if lrs and max(lrs) > 0 and lrs[-1] < DECAYED * max(lrs):
            return None  # the rate was decayed to ~0: schedule.py reads it
        x = effective_steps(steps, lr_steps, lrs)
        varied = x is not None and abs(float(x[-1]) - float(steps[-1])) > 0.05 * float(steps[-1])
        cut = read_descent(x if x is not None else steps.astype(np.float64), values)
        if cut is None or not cut.cut or self._validation_turned():
            return None
        share = cut.tail_drop / cut.level
        ev: dict[str, Any] = {"steps": int(steps[-1]), "losses": len(values), "start_loss": round(cut.first, 5),
                              "final_loss": round(cut.level, 5), "recent_drop": round(cut.tail_drop, 5),
                              "recent_drop_share": round(share, 3), "bend": round(cut.bend, 3),
                              "tau_over_run": round(cut.tau_ratio or 0.0, 3),
                              "projected_loss": round(max(cut.asymptote or 0.0, 0.0), 5),
                              "projected_gain": round(cut.gain, 3)}
        if varied:
            ev["effective_steps"] = round(cut.length, 1)
        eff = f" ({cut.length:.0f} at its peak learning rate)" if varied else ""
        return self.finding(
            f"training ended after {int(steps[-1])} optimizer steps{eff} while the loss was still falling "
            f"steeply, far from where it was heading: {cut.first:.4g} -> {cut.level:.4g}, {cut.tail_drop:.3g} ({share:.0%} of the "
            f"final level) of it in the last half, and {cut.describe()}. Give it {more_steps(cut)} as many "
            f"updates: more epochs, or a smaller batch size (more updates per epoch)",
            ev, location="training", severity=Severity.INFO)

    def check(self, event: RunEnd) -> Iterable[Finding]:
        if event.reason != "finished" or len(self.state.optimizers) != 1:
            return ()
        steps, values = per_step(*self.state.losses.series())
        keep = np.isfinite(values)
        steps, values = steps[keep], values[keep]
        n = len(values)
        if n < MIN_LOSSES or float(values.min()) <= 0:
            return ()
        strong = self._cut(steps, values)
        if strong is not None:
            return [strong]
        half = n // 2 if n >= 16 else 0
        ts, tv = steps[half:], values[half:]
        level = float(np.median(values[-max(2, n // 10):]))
        first = float(np.median(values[:max(2, n // 10)]))
        still, drop = falling_tail(ts, tv, level)
        if not still or drop < STEEP * level or first - level < 0.1 * first or level < LOW * first:
            return ()
        mid = n // 2
        early, late = _slope(steps[:mid], values[:mid]), _slope(steps[mid:], values[mid:])
        if not late < BENT * early < 0:
            return ()  # the curve has bent: the usual slow end of a run, not one cut in its descent
        if self._validation_turned():
            return ()  # more steps would lower the training loss, not the evaluation's: advice to stop
        tracker = getattr(self.state, "loaders", None)
        ev: dict[str, Any] = {"steps": int(steps[-1]), "losses": n, "start_loss": round(first, 5),
                              "final_loss": round(level, 5), "recent_drop": round(drop, 5),
                              "recent_drop_share": round(drop / level, 3),
                              "loader_iterations": getattr(tracker, "iterations", None)}
        where = "last half of the run" if half else "run"
        return [self.finding(
            f"training ended after {int(steps[-1])} steps while the loss was still falling steeply: it fell by "
            f"{drop:.3g} ({drop / level:.0%} of its final {level:.4g}) over the {where}, so more steps would "
            f"likely lower it further (a `return`/`break` inside the epoch loop, or too few epochs?)",
            ev, location="training")]
