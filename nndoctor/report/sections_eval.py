"""Report sections of the later field-guide steps: evaluation, the LR range test, tuning.

See :mod:`nndoctor.report.sections` for the contract. Their producers already own a result
class whose ``to_dict()`` is the section's JSON form (``LRFindResult``, ``Evaluation`` of
``nndoctor.evaluate.workflow``); these classes read that form back for the renderers, keeping
every other key untouched in ``other`` so a round trip changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any, ClassVar, Mapping, Sequence

from nndoctor.findings import Finding, Step
from nndoctor.report.sections import Section, _num
from nndoctor.report.svg import hbars, line_chart, stacked_bar

__all__ = ["Evaluation", "LrRangeTest", "Tuning"]


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _rest(data: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {str(k): v for k, v in data.items() if k not in known}


@dataclass
class Evaluation(Section):
    """The error decomposition, the error analysis by slice and the improvement plan (``evaluation``)."""

    key: ClassVar[str] = "evaluation"
    step: ClassVar[Step] = Step.EVALUATE
    decomposition: dict[str, Any] = field(default_factory=dict)
    error_analysis: list[dict[str, Any]] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict)  # actionable_term, sizes, metric, findings...

    _KNOWN: ClassVar[tuple[str, ...]] = ("decomposition", "error_analysis", "plan")

    def to_dict(self) -> dict[str, Any]:
        """The producer's layout and key order (``Evaluation.to_dict`` of evaluate/workflow.py)."""
        known = {"decomposition": self.decomposition, "error_analysis": self.error_analysis, "plan": self.plan}
        order = ("decomposition", "actionable_term", "sizes", "metric", "error_analysis", "plan", "findings")
        merged = {**self.other, **{k: v for k, v in known.items() if v or k == "plan"}}
        return {**{k: merged[k] for k in order if k in merged}, **merged}

    @classmethod
    def from_dict(cls, data: Any) -> Evaluation:
        if not isinstance(data, Mapping):
            return cls()
        return cls(dict(data.get("decomposition") or {}), list(data.get("error_analysis") or []),
                   list(data.get("plan") or []), _rest(data, cls._KNOWN))

    def html(self, findings: Sequence[Finding] = ()) -> str:
        d = self.decomposition
        out = []
        terms = {t["name"]: t["value"] for t in d.get("terms", [])}
        if terms:
            parts = [("irreducible", d.get("irreducible", 0.0))] + [
                (name.replace("_", " "), terms[name]) for name in
                ("avoidable_bias", "variance", "distribution_shift", "val_overfitting") if name in terms]
            out.append(stacked_bar(parts, title="Error decomposition (field guide step 3)"))
            rows = "".join(
                f"<tr><td>{escape(t['name'].replace('_', ' '))}</td><td>{t['value']:+.4f}</td><td>"
                + (f"{t['low']:+.4f} .. {t['high']:+.4f}" if t.get("low") is not None else "")
                + f"</td><td>{'yes' if t.get('significant') else 'within noise'}</td></tr>" for t in d["terms"])
            errs = ", ".join(f"{k.replace('_', '-')} {v:.4f}" for k, v in d.get("errors", {}).items())
            out.append(f'<p class="small">Errors: {escape(errs)}. Dominant: <strong>'
                       f'{escape(str(d.get("dominant")))}</strong>.</p><div class="scroll"><table><tr><th>term</th>'
                       f"<th>value</th><th>95% interval</th><th>outside noise</th></tr>{rows}</table></div>")
            for note in d.get("notes", []):
                out.append(f'<p class="muted small">{escape(note)}</p>')
        if self.error_analysis:
            rows = "".join(
                f"<tr><td>{escape(str(r['slice']))}</td><td>{_f(r['train_val_error'])}</td>"
                f"<td>{_f(r['test_val_error'])}</td><td>{r['contribution']:.0%}</td>"
                f"<td>{'<strong>shift</strong>' if r['shifted'] else ''}</td></tr>" for r in self.error_analysis[:20])
            out.append('<h3>Error analysis</h3><div class="scroll"><table><tr><th>slice</th><th>train-val</th>'
                       f"<th>test-val</th><th>share of errors</th><th></th></tr>{rows}</table></div>")
        if self.plan:
            items = "".join(f"<li>{'<strong>[blocking]</strong> ' if p['blocking'] else ''}{escape(p['action'])}"
                            f'<div class="muted small">because: {escape(p["because"])}</div></li>'
                            for p in self.plan[:10])
            out.append(f"<h3>Improvement plan</h3><ol>{items}</ol>")
        return "".join(out)


@dataclass
class LrRangeTest(Section):
    """Loss against learning rate during the LR range test, with the suggestion (``lr_find``)."""

    key: ClassVar[str] = "lr_find"
    step: ClassVar[Step] = Step.TUNE
    lrs: list[float] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    suggested_lr: float | None = None
    other: dict[str, Any] = field(default_factory=dict)  # reason, lr_min, stopped, raw_losses, sweeps...

    def to_dict(self) -> dict[str, Any]:
        return {"suggested_lr": self.suggested_lr, **self.other, "lrs": self.lrs, "losses": self.losses}

    @classmethod
    def from_dict(cls, data: Any) -> LrRangeTest:
        if not isinstance(data, Mapping):
            return cls()
        return cls(list(data.get("lrs") or []), list(data.get("losses") or []), _num(data.get("suggested_lr")),
                   _rest(data, ("lrs", "losses", "suggested_lr")))

    def html(self, findings: Sequence[Finding] = ()) -> str:
        if not self.lrs:
            return ""
        lr = self.suggested_lr
        marks = [(lr, f"suggested {lr:.2g}")] if lr else []
        return line_chart({"loss": (self.lrs, self.losses)}, title="LR range test", x_label="learning rate",
                          log_x=True, markers=marks)


@dataclass
class Tuning(Section):
    """The value of each completed trial and the hyperparameters' importance (``tune``)."""

    key: ClassVar[str] = "tune"
    step: ClassVar[Step] = Step.TUNE
    history: list[float | None] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    best_params: dict[str, Any] = field(default_factory=dict)
    guide: Any = None  # the comparison with the field guide's importance order
    other: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history, "importance": self.importance, "best_params": self.best_params,
                "guide": self.guide, **self.other}

    @classmethod
    def from_dict(cls, data: Any) -> Tuning:
        if not isinstance(data, Mapping):
            return cls()
        return cls([_num(v) for v in data.get("history") or []], dict(data.get("importance") or {}),
                   dict(data.get("best_params") or {}), data.get("guide"),
                   _rest(data, ("history", "importance", "best_params", "guide")))

    def html(self, findings: Sequence[Finding] = ()) -> str:
        out = []
        if self.history:
            xs = list(range(1, len(self.history) + 1))
            best: list[float | None] = []
            b = float("inf")
            for v in self.history:
                b = min(b, v) if v is not None else b
                best.append(b)
            out.append(line_chart({"trial value": (xs, self.history), "best so far": (xs, best)},
                                  title="Tuning history", x_label="trial"))
        if self.importance:
            out.append(hbars(sorted(self.importance.items(), key=lambda kv: -kv[1]), title="Hyperparameter importance"))
        return "".join(out)
