"""What a run achieved, read from nndoctor's report and the script's own last lines, and the
verdict on a remedy: better than run-to-run noise, no effect, or worse."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nndoctor.fix.printed import direction, script_metrics

__all__ = ["Figures", "Verdict", "direction", "figures_of", "gives_back", "judge", "script_metrics",
           "script_yardstick"]


@dataclass
class Figures:
    """One run's results: nndoctor's loss curves and the script's own metrics."""

    train_loss: float | None = None      # mean of the last tenth of the training-loss curve
    eval_loss: float | None = None       # the last evaluation loss nndoctor saw
    script: dict[str, float] = field(default_factory=dict)
    last_lines: list[str] = field(default_factory=list)
    exit_code: int | None = None
    steps: int = 0
    curve: list[float] = field(default_factory=list)          # the training-loss curve (downsampled)
    curve_steps: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": self.train_loss, "eval_loss": self.eval_loss, "script_metrics": self.script,
                "last_lines": self.last_lines, "exit_code": self.exit_code, "steps": self.steps}


def _tail_mean(values: list[float]) -> float | None:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return None
    if len(finite) < len(values):
        return math.inf  # the loss went non-finite
    k = max(3, len(finite) // 10)
    return sum(finite[-k:]) / len(finite[-k:])


def _to_float(value: Any) -> float:
    """A JSON curve value: a number, or a non-finite one written as a string ("nan", "inf")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def figures_of(result: dict[str, Any], stdout: str) -> Figures:
    report = result.get("report") or {}
    curves = (report.get("facts") or {}).get("curves") or {}
    loss_curve = curves.get("loss") or {}
    loss = [_to_float(v) for v in loss_curve.get("values", [])]
    evals = (curves.get("eval_loss") or {}).get("values", [])
    last_eval = evals[-1] if evals else None
    return Figures(
        train_loss=_tail_mean(loss),
        eval_loss=float(last_eval) if isinstance(last_eval, (int, float)) else None,
        script=script_metrics(stdout),
        last_lines=[ln for ln in stdout.splitlines() if ln.strip()][-3:],
        exit_code=result.get("exit_code"),
        steps=int((report.get("facts") or {}).get("steps") or 0),
        curve=loss,
        curve_steps=[int(v) for v in loss_curve.get("steps", [])],
    )


@dataclass
class Verdict:
    verdict: str                 # verified | no-effect | worse | failed
    metric: str                  # what was compared
    before: float | None
    after: float | None
    threshold: float             # the change that counts as real (noise-aware)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "metric": self.metric, "before": self.before, "after": self.after,
                "threshold": self.threshold, "reason": self.reason}


def script_yardstick(metrics: dict[str, float]) -> str | None:
    """The script metric to judge by: accuracy-like figures say more than a running loss; of
    those, the last printed."""
    known = [n for n in metrics if direction(n)]
    return min(known, key=lambda n: (direction(n) != 1, -known.index(n))) if known else None


def _primary(before: Figures, loss_changed: bool = False) -> tuple[str, int]:
    """The yardstick: the script's own metric of known direction, else eval loss, else train loss.
    When the remedy changes the training objective (a penalty scaled, label smoothing), a loss
    the script prints measures that objective, not the model: it is skipped."""
    known = {n: v for n, v in before.script.items() if not (loss_changed and "loss" in n.lower())}
    name = script_yardstick(known)
    if name is not None:
        return f"script:{name}", direction(name)
    if before.eval_loss is not None:
        return "eval_loss", -1
    return "train_loss", -1


def _value(fig: Figures, metric: str) -> float | None:
    if metric.startswith("script:"):
        return fig.script.get(metric[7:])
    return getattr(fig, metric)


def gives_back(curve: list[float]) -> bool:
    """The training loss falls, then rises again late: the median of its last tenth gives back
    more than half of what it had gained by its best tenth (medians: a noisy curve is not a
    rise). A run that diverges late is no verified fix, whatever its last figure."""
    finite = [v for v in curve if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(finite) < 20:
        return False
    k = len(finite) // 10
    chunks = [sorted(finite[i * k:(i + 1) * k])[k // 2] for i in range(10)]
    start, best, end = chunks[0], min(chunks[:-1]), chunks[-1]
    return start - best > 0 and end - best > 0.5 * (start - best)


def judge(before: Figures, after: Figures, repeat: Figures | None, error: str = "",
          loss_changed: bool = False, regularises: bool = False) -> Verdict:
    """Verified when the yardstick moves the right way by more than 3x the run-to-run noise
    (the baseline run twice) and 2% of its value; worse when it moves as far the other way.
    ``loss_changed``: the remedy changes the objective (see :func:`_primary`); ``regularises``: a
    training loss rising again late is the regulariser at work (:func:`gives_back` is not asked)."""
    metric, sign = _primary(before, loss_changed)
    b, a = _value(before, metric), _value(after, metric)
    r = _value(repeat, metric) if repeat is not None else None
    noise = abs(b - r) if (b is not None and r is not None and math.isfinite(b) and math.isfinite(r)) else 0.0
    threshold = max(3 * noise, 0.02 * abs(b) if b is not None and math.isfinite(b) else 0.0, 1e-6)
    if error or after.exit_code is None:
        return Verdict("failed", metric, b, a, threshold, error or "the re-run did not finish")
    if before.exit_code not in (0, None) and after.exit_code == 0:
        return Verdict("verified", metric, b, a, threshold, f"the run now completes (it exited with {before.exit_code})")
    if after.exit_code != before.exit_code and after.exit_code != 0:
        return Verdict("failed", metric, b, a, threshold, f"the script exited with {after.exit_code}")
    if a is None or b is None:
        return Verdict("no-effect", metric, b, a, threshold, "no comparable figure in both runs")
    if not math.isfinite(a):
        return Verdict("worse" if math.isfinite(b) else "no-effect", metric, b, a, threshold, "non-finite after")
    if not math.isfinite(b):
        return Verdict("verified", metric, b, a, threshold, "finite after, non-finite before")
    gain = (a - b) * sign
    if gain > threshold and not regularises and gives_back(after.curve) and not gives_back(before.curve):
        return Verdict("no-effect", metric, b, a, threshold, "better at the end, but the training loss rises "
                       "again late (it gives back over half of its progress): not a stable fix")
    if gain > threshold:
        return Verdict("verified", metric, b, a, threshold)
    if gain < -threshold:
        return Verdict("worse", metric, b, a, threshold, "worse than without it: not an edit to make")
    return Verdict("no-effect", metric, b, a, threshold,
                   f"the change ({a - b:+.4g}) is within {threshold:.4g}, the run-to-run noise: not an edit to make")
