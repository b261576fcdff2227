"""Typed report sections: the pictures of a report, each with its JSON layout and its renderer.

A section is a dataclass that its producer builds and stores in ``Report.facts`` under the
section's ``key`` as ``section.to_dict()`` (plain JSON); a renderer reads it back with
:func:`read` (``Section.from_dict``, tolerant of older or partial reports) and draws it with
``section.html(findings)``. The layouts are documented in ``docs/report-schema.md``.

=================  ======================  =============================================
class              ``facts`` key           producer
=================  ======================  =============================================
TrainingCurves     ``curves``              the Observer (loss, evaluation loss, lr)
GradientNorms      ``grad_norms``          the gradient check (monitor/checks/gradients.py)
ActivationHealth   ``activation_health``   the activation check (monitor/checks/activations.py)
LrRangeTest        ``lr_find``             tune/lr_find.py (LRFindResult.to_dict)
Evaluation         ``evaluation``          evaluate/workflow.py (Evaluation.to_dict), diagnose's plan
Tuning             ``tune``                diagnose's tuning stage
=================  ======================  =============================================

The per-layer series are recorded only on the sampled steps the checks already look at and are
bounded (:data:`MAX_POINTS` points per layer, :data:`MAX_LAYERS` layers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from html import escape
from typing import Any, ClassVar, Mapping, Sequence

from nndoctor.findings import Finding, Step
from nndoctor.report.svg import hbars, line_chart

__all__ = [
    "MAX_LAYERS",
    "MAX_POINTS",
    "ActivationHealth",
    "ActivationLayer",
    "GradientNorms",
    "Section",
    "Series",
    "TrainingCurves",
    "read",
    "sections_of",
]

logger = logging.getLogger("nndoctor")

MAX_POINTS = 64  # points kept per layer: when full, every other point is dropped (first ones kept)
MAX_LAYERS = 64  # layers recorded; later ones are left out
CHART_LAYERS = 8  # layers drawn in the gradient chart (spread over the depth)


class Section:
    """Base of every report section: ``key`` in ``facts``, the field-guide step it belongs to."""

    key: ClassVar[str] = ""
    step: ClassVar[Step] = Step.DEBUG

    def to_dict(self) -> Any:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Any) -> Section:
        raise NotImplementedError

    def html(self, findings: Sequence[Finding] = ()) -> str:
        raise NotImplementedError


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass
class Series:
    """``{"steps": [...], "values": [...]}``: a value (or None) per optimizer step."""

    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)

    def add(self, step: int, value: float | None, limit: int = MAX_POINTS) -> None:
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > limit:  # thin out evenly, keeping the first point
            self.steps, self.values = self.steps[::2], self.values[::2]

    def to_dict(self) -> dict[str, list[Any]]:
        return {"steps": list(self.steps), "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Any) -> Series:
        if not isinstance(data, Mapping):
            return cls()
        steps, values = list(data.get("steps") or []), list(data.get("values") or [])
        n = min(len(steps), len(values))
        return cls(steps[:n], [_num(v) for v in values[:n]])


@dataclass
class TrainingCurves(Section):
    """The training loss, the evaluation loss and the learning rate per step (``curves``)."""

    key: ClassVar[str] = "curves"
    series: dict[str, Series] = field(default_factory=dict)  # "loss", "eval_loss", "lr"

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self.series.items()}

    @classmethod
    def from_dict(cls, data: Any) -> TrainingCurves:
        if not isinstance(data, Mapping):
            return cls()
        return cls({str(k): Series.from_dict(v) for k, v in data.items()})

    def html(self, findings: Sequence[Finding] = ()) -> str:
        out = []
        series = {}
        for name in ("loss", "eval_loss"):
            c = self.series.get(name)
            if c and c.steps:
                series["training loss" if name == "loss" else "evaluation loss"] = (c.steps, c.values)
        if series:
            marks = [(float(f.first_step), f.code.split(".", 1)[1]) for f in findings
                     if f.category in ("loss-curve", "lr", "numerics", "fit") and f.first_step is not None][:4]
            vals = [v for _, ys in series.values() for v in ys if isinstance(v, (int, float)) and v > 0]
            log_y = bool(vals) and max(vals) / max(min(vals), 1e-12) > 50
            out.append(line_chart(series, title="Loss" + (" (log scale)" if log_y else ""), log_y=log_y,
                                  markers=marks, y_label="loss"))
        lr = self.series.get("lr")
        if lr and lr.steps and len(set(lr.values)) > 1:
            out.append(line_chart({"learning rate": (lr.steps, lr.values)}, title="Learning rate", log_y=True))
        return "".join(out)


@dataclass
class GradientNorms(Section):
    """The gradient norm of each weight layer, in forward order, on sampled steps (``grad_norms``)."""

    key: ClassVar[str] = "grad_norms"
    layers: dict[str, Series] = field(default_factory=dict)

    def record(self, step: int, names: Sequence[str], norms: Sequence[float]) -> None:
        for name, value in zip(names, norms):
            s = self.layers.get(name)
            if s is None:
                if len(self.layers) >= MAX_LAYERS:
                    continue
                s = self.layers[name] = Series()
            s.add(step, float(value))

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self.layers.items()}

    @classmethod
    def from_dict(cls, data: Any) -> GradientNorms:
        if not isinstance(data, Mapping):
            return cls()
        return cls({str(k): Series.from_dict(v) for k, v in data.items()})

    def shown(self) -> list[str]:
        """At most CHART_LAYERS layers, spread from the first to the last."""
        names = [n for n, s in self.layers.items() if s.steps]
        if len(names) <= CHART_LAYERS:
            return names
        idx = sorted({round(i * (len(names) - 1) / (CHART_LAYERS - 1)) for i in range(CHART_LAYERS)})
        return [names[i] for i in idx]

    def html(self, findings: Sequence[Finding] = ()) -> str:
        s = {k: (self.layers[k].steps, self.layers[k].values) for k in self.shown()}
        if not s:
            return ""
        more = len(self.layers) - len(s)
        title = "Gradient norm per layer (log scale)" + (f", {len(s)} of {len(self.layers)} layers" if more else "")
        return line_chart(s, title=title, log_y=True, y_label="|grad|")


@dataclass
class ActivationLayer:
    """The dead (ReLU) or saturated (sigmoid/tanh) share of one layer's units per sampled step."""

    activation: str = ""
    steps: list[int] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.shares[-1] if self.shares else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"activation": self.activation, "share": self.share, "peak": max(self.shares, default=0.0),
                "steps": list(self.steps), "shares": list(self.shares)}


@dataclass
class ActivationHealth(Section):
    """Per activation layer: the share of dead or saturated units (``activation_health``)."""

    key: ClassVar[str] = "activation_health"
    layers: dict[str, ActivationLayer] = field(default_factory=dict)

    def record(self, layer: str, activation: str, step: int, share: float) -> None:
        entry = self.layers.get(layer)
        if entry is not None and entry.activation != activation:  # two activations on one layer's output
            layer = f"{layer} ({activation})"
            entry = self.layers.get(layer)
        if entry is None:
            if len(self.layers) >= MAX_LAYERS:
                return
            entry = self.layers[layer] = ActivationLayer(activation)
        entry.steps.append(step)
        entry.shares.append(round(float(share), 4))
        if len(entry.steps) > MAX_POINTS:
            entry.steps, entry.shares = entry.steps[::2], entry.shares[::2]

    def to_dict(self) -> dict[str, Any]:
        return {name: layer.to_dict() for name, layer in self.layers.items()}

    @classmethod
    def from_dict(cls, data: Any) -> ActivationHealth:
        out = cls()
        if not isinstance(data, Mapping):
            return out
        for name, v in data.items():
            if _num(v) is not None:  # the short form {layer: share}
                out.layers[str(name)] = ActivationLayer("", [], [float(v)])
            elif isinstance(v, Mapping):
                steps = [int(s) for s in v.get("steps") or [] if _num(s) is not None]
                shares = [float(x) for x in v.get("shares") or [] if _num(x) is not None]
                if not shares and _num(v.get("share")) is not None:
                    shares = [float(v["share"])]
                out.layers[str(name)] = ActivationLayer(str(v.get("activation") or ""), steps, shares)
        return out

    def html(self, findings: Sequence[Finding] = ()) -> str:
        if not self.layers:
            return ""
        items = [(f"{name} ({layer.activation})" if layer.activation else name, layer.share)
                 for name, layer in self.layers.items()]
        items.sort(key=lambda kv: -kv[1])
        out = [hbars(items[:12], title="Dead or saturated units per layer (latest sampled step)", unit="",
                     max_value=1.0)]
        lines = {name: (layer.steps, layer.shares) for name, layer in list(self.layers.items())[:8]
                 if len(layer.steps) >= 2 and len(layer.steps) == len(layer.shares)}
        if lines and any(v > 0 for _, ys in lines.values() for v in ys):
            out.append(line_chart(lines, title="Dead or saturated share over training", y_label="share"))
        kinds = sorted({layer.activation for layer in self.layers.values() if layer.activation})
        if kinds:
            out.append(f'<p class="muted small">ReLU: share of units silent on every recent sample; '
                       f'sigmoid/tanh: share of pre-activations in the flat region ({escape(", ".join(kinds))}).</p>')
        return "".join(out)


def _registry() -> tuple[type[Section], ...]:
    from nndoctor.report.sections_eval import Evaluation, LrRangeTest, Tuning

    return (TrainingCurves, GradientNorms, ActivationHealth, Evaluation, LrRangeTest, Tuning)


def read(facts: Mapping[str, Any], cls: type[Section]) -> Section | None:
    """The section ``cls`` of ``facts`` (a section object or its JSON form), or None if absent."""
    data = facts.get(cls.key) if isinstance(facts, Mapping) else None
    if isinstance(data, cls):
        return data
    if not data:
        return None
    try:
        return cls.from_dict(data)
    except Exception:  # a malformed section must not cost the user the rest of the report
        logger.warning("nndoctor could not read the report section %r", cls.key, exc_info=True)
        return None


def sections_of(facts: Mapping[str, Any], step: Step | None = None) -> list[Section]:
    """Every section present in ``facts`` (of field-guide ``step`` if given), in report order."""
    out = []
    for cls in _registry():
        if step is not None and cls.step is not step:
            continue
        sec = read(facts, cls)
        if sec is not None:
            out.append(sec)
    return out
