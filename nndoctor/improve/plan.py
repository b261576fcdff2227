"""The ordered improvement plan (field guide, step 4).

Blocking bugs come first: nobody should tune a model that has a bug. Then the
dominant term of the decomposition decides the list, in the guide's priority order,
made concrete with the experiment's own hyperparameters where they exist
("hidden 128 -> 256"). Every item is looked up by finding code and carries the
evidence it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nndoctor.findings import Finding, Severity, Step

__all__ = ["PlanItem", "build_plan"]


@dataclass(frozen=True)
class PlanItem:
    rank: int
    action: str
    because: str
    code: str
    blocking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "action": self.action, "because": self.because, "code": self.code,
                "blocking": self.blocking}


def _scaled(hparams: Mapping[str, Any], names: Sequence[str], factor: float) -> str | None:
    """'hidden 128 -> 256' for the first hyperparameter in ``names`` that exists and is numeric."""
    for name in names:
        value = hparams.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value == 0:
            if factor <= 1:
                continue  # nothing to reduce
            start = {"weight_decay": 1e-4, "wd": 1e-4, "l2": 1e-4}.get(name, 0.1 if name in _DROPOUT else None)
            if start is None:
                continue
            return f"{name} {value} -> {start:g}"
        new: float | int = value * factor
        if isinstance(value, int):
            new = max(1, int(round(new)))
        else:
            new = float(f"{new:.3g}")
        return f"{name} {value} -> {new}"
    return None


_WIDTH = ("hidden", "hidden_size", "width", "units", "channels", "d_model", "embed_dim")
_DEPTH = ("layers", "depth", "num_layers", "n_layers")
_WD = ("weight_decay", "wd", "l2")
_DROPOUT = ("dropout", "p_drop", "drop")


def _bias_items(h: Mapping[str, Any]) -> list[tuple[str, str]]:
    bigger = _scaled(h, _WIDTH, 2) or _scaled(h, _DEPTH, 2)
    items = [(f"Make the model bigger: {bigger}" if bigger else
              "Make the model bigger (more layers or units)", "fit.avoidable-bias")]
    less_reg = _scaled(h, _WD, 0.01) or _scaled(h, _DROPOUT, 0.5)
    items.append((f"Reduce regularisation: {less_reg}" if less_reg else
                  "Reduce regularisation (weight decay, dropout) if any", "fit.avoidable-bias"))
    items.append(("Error analysis on the training set: which classes or slices are not fit", "fit.avoidable-bias"))
    items.append(("Move to an architecture closer to the state of the art for this input type", "fit.avoidable-bias"))
    items.append(("Tune hyperparameters, learning rate first (nndoctor tune)", "fit.avoidable-bias"))
    return items


def _variance_items(h: Mapping[str, Any], findings: Sequence[Finding]) -> list[tuple[str, str]]:
    items = []
    small = [f for f in findings if f.code == "data.too-little-data"]
    items.append(("Add more training data" + (" (the learning curve is still falling)" if small else ""),
                  "fit.variance"))
    items.append(("Add normalisation layers (BatchNorm / LayerNorm)", "fit.variance"))
    items.append(("Add data augmentation", "fit.variance"))
    more_reg = _scaled(h, _WD, 10) or _scaled(h, _DROPOUT, 1.5)
    items.append((f"More regularisation: {more_reg}" if more_reg else
                  "More regularisation: dropout, weight decay (e.g. 1e-4)", "fit.variance"))
    items.append(("Error analysis on train-val, then a better architecture; tune hyperparameters", "fit.variance"))
    return items


def _shift_items(findings: Sequence[Finding]) -> list[tuple[str, str]]:
    worse = [f for f in findings if f.code == "fit.slice-worse-on-test-val"]
    where = f" (start with {worse[0].location})" if worse else ""
    return [
        (f"Error analysis on test-val: find the error types much worse than on train-val{where}",
         "fit.distribution-shift"),
        (f"Collect more training data like the test-val examples{where}", "fit.distribution-shift"),
        ("Synthesise such data (augment towards the test-val distribution)", "fit.distribution-shift"),
        ("Domain adaptation", "fit.distribution-shift"),
    ]


def build_plan(
    findings: Sequence[Finding],
    *,
    dominant: str | None = None,
    hparams: Mapping[str, Any] | None = None,
) -> list[PlanItem]:
    """Ordered plan: blocking bugs, then data problems, then the dominant term's list."""
    h = hparams or {}
    items: list[tuple[str, str, str, bool]] = []
    blocking = [f for f in findings if f.severity is Severity.ERROR or
                (f.severity is Severity.WARNING and f.step in (Step.DEBUG, Step.START))]
    blocking.sort(key=lambda f: (-f.severity.rank, f.step is not Step.DEBUG))
    for f in blocking:
        fix = f.fixes[0] if f.fixes else "fix this first"
        items.append((f"Fix {f.code}{' at ' + f.location if f.location else ''}: {fix}", f.message, f.code, True))
    data = [f for f in findings if f.category in ("data", "labels") and f.severity is Severity.WARNING]
    for f in data:
        fix = f.fixes[0] if f.fixes else ""
        items.append((f"{fix}" if fix else f"Address {f.code}", f.message, f.code, False))
    term_finding = {f.code: f for f in findings if f.category == "fit"}
    if dominant == "avoidable_bias":
        because = term_finding.get("fit.avoidable-bias")
        for action, code in _bias_items(h):
            items.append((action, because.message if because else "avoidable bias dominates", code, False))
    elif dominant == "variance":
        because = term_finding.get("fit.variance")
        for action, code in _variance_items(h, findings):
            items.append((action, because.message if because else "variance dominates", code, False))
    elif dominant == "distribution_shift":
        because = term_finding.get("fit.distribution-shift")
        for action, code in _shift_items(findings):
            items.append((action, because.message if because else "distribution shift dominates", code, False))
    elif dominant == "val_overfitting":
        because = term_finding.get("fit.validation-overfitting")
        items.append(("Collect or re-draw the test-val set (it has been overfit by model selection)",
                      because.message if because else "validation overfitting dominates",
                      "fit.validation-overfitting", False))
    seen = set()
    plan = []
    for action, because_msg, code, block in items:
        if action in seen:
            continue
        seen.add(action)
        plan.append(PlanItem(rank=len(plan) + 1, action=action, because=because_msg, code=code, blocking=block))
    return plan
