"""fit.restored-checkpoint-not-best: the "best" weights a script restores are not its best ones.

Scripts keep the state of their best evaluation and load it back at the end (or at early
stopping). Several common mistakes restore another state: a flipped comparison
(``if val_loss > best``, ``if acc < best_acc``), the training loss or another variable compared,
the snapshot taken before the epoch that earned the score, or ``best = model.state_dict()``
without ``copy.deepcopy`` (a reference that follows training: the "best" is the last state).

Evidence, read only on evaluation passes and loads:

* each evaluation pass of a watched model (its first forward without gradient after a training
  step, or after a load) fingerprints the model: ``_VALUES`` values spread over each of up to
  ``_TENSORS`` trainable parameter tensors. The pass's metrics are the evaluation losses nndoctor
  records in it (their mean and standard error) and, where the script compares ``argmax`` with the
  labels, its accuracy;
* ``load_state_dict`` of the model (a :class:`~nndoctor.monitor.events.StateLoad`) fingerprints it
  again and finds the passes whose weights were exactly these. Weights no pass saw (pretrained
  weights, another run's checkpoint, an EMA swapped in) and the initial weights (a reset between
  folds, a lottery-ticket rewind) start a new series and are not judged; passes from before the
  latest optimizer built over the model belong to an earlier series too;
* the restored pass is judged against the best pass of its series (>= ``MIN_PASSES`` with a
  metric). Worse means by more than ``REL`` of the best loss, or ``ACC_GAP`` of accuracy, and by
  more than ``NOISE`` times the evaluation noise (:func:`_noise`). With the accuracy seen, both
  must be worse (the script may select on either); with a regression loss only, the loss; with a
  classification loss only (the script may select on an accuracy nndoctor does not see), a
  warning only when the restored pass is the worst of all and earlier than the best (what a
  flipped comparison restores), otherwise info, as with a hand-written loss.

Loads that changed nothing (the state dict was the model's own tensors, or the same weights) and
were followed by more training are a round trip (a script that writes and reads back its current
state); then its last such load is no restore either: judged at the end of the run.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.births import births
from nndoctor.monitor.events import EvalInput, ModelInput, RunEnd, StateLoad, Targets
from nndoctor.monitor.tensors import local, materialised

__all__ = ["ACCURACY_KEY", "RestoredNotBest", "fingerprint"]

#: ``state.extra`` key of the accuracy of each evaluation pass: ``[(step, accuracy)]`` (read by
#: nndoctor/monitor/checks/plateau_mode.py)
ACCURACY_KEY = "nndoctor.eval_accuracy"
#: values per parameter tensor, and tensors per model, in a fingerprint
_VALUES, _TENSORS = 32, 16
#: evaluation passes kept per model, and models followed
MAX_PASSES, MAX_MODELS = 512, 8
#: this many passes within this many steps: from then on a pass opens at most once in the third number
#: of steps
FREQUENT = (32, 64, 16)
#: passes with a metric needed in the series before a restore is judged
MIN_PASSES = 3
#: worse by this share of the best loss, or by this much accuracy (absolute) ...
REL, ACC_GAP = 0.05, 0.01
#: ... and by this many times the evaluation noise (:func:`_noise`)
NOISE = 3.0
#: losses of classifiers (the script may select the best state by an accuracy nndoctor does not see)
_CLASSIFY = frozenset({"cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
                       "multi_margin_loss", "multilabel_soft_margin_loss", "soft_margin_loss",
                       "multilabel_margin_loss", "ctc_loss"})


def fingerprint(model: torch.nn.Module) -> torch.Tensor | None:
    """A few values spread over each of the model's first trainable parameter tensors (all of its
    tensors when none is trainable), a copy on the parameters' device (no host sync); None without
    parameters."""
    params = [p for p in model.parameters() if materialised(p)]
    params = [p for p in params if p.requires_grad] or params
    parts = []
    for p in params[:_TENSORS]:
        flat = local(p).detach().reshape(-1)
        n = flat.numel()
        if n:
            parts.append(flat[:: max(1, n // _VALUES)][:_VALUES].float())
    if not parts:
        return None
    device = parts[0].device
    return torch.cat([t.to(device) for t in parts])  # (cat copies: the values of now)


@dataclass
class _Pass:
    index: int  # 1-based, per model
    step: int
    fp: torch.Tensor
    start: int  # state.eval_losses.total when it opened
    untrained: bool  # no optimizer held the model's parameters yet
    loss: float | None = None
    loss_se: float = 0.0
    correct: Any = 0  # a tensor while the pass is open
    count: int = 0
    acc: float | None = None


@dataclass
class _Model:
    ref: weakref.ReferenceType[torch.nn.Module]
    name: str
    params: frozenset[int]
    init: torch.Tensor | None = None
    trained: bool = False  # an optimizer has held its parameters
    frequent: bool = False  # evaluated at almost every step: its passes are thinned
    passes: list[_Pass] = field(default_factory=list)
    open: _Pass | None = None
    series_from: int = 0  # passes before this index belong to an earlier series
    losses: set[str] = field(default_factory=set)  # loss functions of its evaluations
    pending: list[tuple[Finding, bool]] = field(default_factory=list)  # (finding, the load changed nothing)
    #: loads that changed nothing: (the model's ModelInfo, its training forwards then)
    no_ops: list[tuple[Any, int]] = field(default_factory=list)


@register
class RestoredNotBest(Check):
    """A model's weights restored by load_state_dict are those of a clearly worse evaluation."""

    code = "fit.restored-checkpoint-not-best"
    needs = ("model_input", "eval_input", "targets", "state_load", "end")
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._models: dict[int, _Model] = {}

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "eval_input":
            self._on_eval(event)
        elif kind == "targets":
            self._on_targets(event)
        elif kind == "model_input":
            self._on_train_forward(event)
        elif kind == "state_load":
            self._on_load(event)
        elif kind == "end":
            return self._judge_end(event)
        return ()

    # -- following the passes ---------------------------------------------------------
    def _rec(self, model: torch.nn.Module, name: str) -> _Model | None:
        rec = self._models.get(id(model))
        if rec is not None and rec.ref() is model:
            return rec
        if len(self._models) >= MAX_MODELS:
            self._models = {k: r for k, r in self._models.items() if r.ref() is not None}
            if len(self._models) >= MAX_MODELS:
                return None
        rec = _Model(ref=weakref.ref(model), name=name, params=frozenset(id(p) for p in model.parameters()))
        if self._untrained(rec):
            rec.init = fingerprint(model)
        self._models[id(model)] = rec
        return rec

    def _untrained(self, rec: _Model) -> bool:
        if rec.trained:
            return False
        rec.trained = any(g.ids & rec.params for g in births(self.state).groups)  # (for good, once true)
        return not rec.trained

    def _on_train_forward(self, event: ModelInput) -> None:
        if event.grad_enabled and id(event.model) not in self._models:
            self._rec(event.model, event.name)

    def _on_eval(self, event: EvalInput) -> None:
        rec = self._rec(event.model, event.name)
        if rec is None or (rec.open is not None and rec.open.step == event.step):
            return
        self._close(rec)
        passes = rec.passes
        if not rec.frequent and len(passes) >= FREQUENT[0]:
            rec.frequent = event.step - passes[-FREQUENT[0]].step < FREQUENT[1]  # (for good, once true)
        if rec.frequent and event.step - passes[-1].step < FREQUENT[2]:
            return  # forwards without gradient at almost every step (a metric of the training batch): thinned
        fp = fingerprint(event.model)
        if fp is None:
            return
        if len(rec.passes) >= MAX_PASSES:
            del rec.passes[: MAX_PASSES // 4]
            rec.series_from = max(0, rec.series_from - MAX_PASSES // 4)
        index = rec.passes[-1].index + 1 if rec.passes else 1
        rec.open = _Pass(index=index, step=event.step, fp=fp, start=self.state.eval_losses.total,
                         untrained=self._untrained(rec))
        rec.passes.append(rec.open)

    def _on_targets(self, event: Targets) -> None:
        if event.training:
            return
        last = self.state.last_forward
        rec = next((r for r in self._models.values() if last is not None and r.name == last[0]), None)
        if rec is None or rec.open is None:
            return
        if event.name != "compare":
            rec.losses.add(event.name)
            return
        pred, target = event.input, event.target
        if pred.numel() != target.numel() or not pred.numel():
            return
        rec.open.correct = rec.open.correct + (pred.reshape(-1) == target.reshape(-1).to(pred.device)).sum()
        rec.open.count += pred.numel()

    def _close(self, rec: _Model) -> None:
        """The open pass's metrics: its evaluation losses and accuracy."""
        p, rec.open = rec.open, None
        if p is None:
            return
        history = self.state.eval_losses
        n = history.total - p.start
        if n > 0:
            steps, values = history.series()
            vals = [v for s, v in zip(steps[-n:], values[-n:]) if s == p.step and math.isfinite(v)]
            if vals:
                p.loss = sum(vals) / len(vals)
                if len(vals) > 1:
                    var = sum((v - p.loss) ** 2 for v in vals) / (len(vals) - 1)
                    p.loss_se = math.sqrt(var / len(vals))
        if p.count:
            p.acc = float(p.correct) / p.count
            accuracies = self.state.extra.setdefault(ACCURACY_KEY, [])
            if len(accuracies) < MAX_PASSES:
                accuracies.append((p.step, p.acc))
        p.correct = 0

    # -- a load -------------------------------------------------------------------------
    def _on_load(self, event: StateLoad) -> None:
        rec = self._rec(event.model, event.name)
        if rec is None:
            return
        self._close(rec)
        info = self.state.models.get(id(event.model))
        trained = info.train_forward_calls if info is not None else 0
        if not event.changed and len(rec.no_ops) < 64:
            rec.no_ops.append((info, trained))
        fp = fingerprint(event.model)
        if fp is None:
            return
        if rec.init is not None and _same(fp, rec.init):
            rec.series_from = len(rec.passes)  # the initial weights: a new start on purpose
            return
        candidates = rec.passes[rec.series_from:]
        matched = [p for p in candidates if _same(p.fp, fp)]
        born = self._latest_birth(rec)  # (passes before the latest optimizer over the model: another series)
        series = [p for p in candidates if p.step > born and not p.untrained]
        if not matched or any(p.untrained or p.step <= born for p in matched):
            rec.series_from = len(rec.passes)  # weights no pass of this series saw, or the initial ones
            return
        finding = self._judge(rec, series, matched, event)
        if finding is not None:
            rec.pending.append((finding, not event.changed))

    def _latest_birth(self, rec: _Model) -> int:
        steps = [max(g.steps) if g.steps else g.born for g in births(self.state).groups if g.ids & rec.params]
        return max(steps) if steps else 0

    def _judge(self, rec: _Model, series: list[_Pass], matched: list[_Pass], event: StateLoad) -> Finding | None:
        with_loss = [p for p in series if p.loss is not None]
        with_acc = [p for p in series if p.acc is not None]
        use_acc = len(with_acc) >= MIN_PASSES and all(p.acc is not None for p in matched)
        use_loss = len(with_loss) >= MIN_PASSES and all(p.loss is not None for p in matched)
        if not (use_acc or use_loss):
            return None
        severity = Severity.WARNING
        restored = best_loss = best_acc = None
        if use_loss:
            losses = [p.loss for p in with_loss]
            best_loss = min(with_loss, key=lambda p: p.loss)  # type: ignore[arg-type,return-value]
            restored = min(matched, key=lambda p: p.loss)  # type: ignore[arg-type,return-value]
            gap = restored.loss - best_loss.loss  # type: ignore[operator]
            se = math.hypot(restored.loss_se, best_loss.loss_se)
            if not (gap > REL * abs(best_loss.loss) and gap > NOISE * _noise(losses, se)):  # type: ignore[arg-type]
                return None
        if use_acc:
            accs = [p.acc for p in with_acc]
            best_acc = max(with_acc, key=lambda p: p.acc)  # type: ignore[arg-type,return-value]
            restored_acc = max(matched, key=lambda p: p.acc)  # type: ignore[arg-type,return-value]
            gap = best_acc.acc - restored_acc.acc  # type: ignore[operator]
            if not (gap > ACC_GAP and gap > NOISE * _noise(accs, math.hypot(_binomial(best_acc),
                                                                             _binomial(restored_acc)))):  # type: ignore[arg-type]
                return None
            restored = restored if restored is not None else restored_acc
        elif not rec.losses:
            severity = Severity.INFO  # a hand-written loss: what it measures is unknown
        elif rec.losses <= _CLASSIFY:  # a classifier's loss only: the best may be picked by an unseen accuracy
            worst = max(with_loss, key=lambda p: p.loss)  # type: ignore[arg-type,return-value]
            if not (restored is worst and best_loss is not None and restored.index < best_loss.index):
                severity = Severity.INFO
        if restored is None:
            return None
        return self._finding(rec, restored, best_loss, best_acc, len(series), event, severity)

    def _finding(self, rec: _Model, restored: _Pass, best_loss: _Pass | None, best_acc: _Pass | None,
                 evaluations: int, event: StateLoad, severity: Severity) -> Finding:
        def metrics(p: _Pass) -> str:
            parts = []
            if best_loss is not None and p.loss is not None:
                parts.append(f"loss {p.loss:.4g}")
            if best_acc is not None and p.acc is not None:
                parts.append(f"accuracy {p.acc:.2%}")
            return ", ".join(parts)

        best = [p for p in (best_loss, best_acc) if p is not None]
        best_text = " / ".join(f"evaluation {p.index} (step {p.step}: {metrics(p)})" for p in _unique(best))
        alias = (" The state dict was the model's own tensors (model.state_dict() kept without copy.deepcopy): "
                 "it followed training, so the 'best' state was the latest one." if event.aliased else "")
        message = (f"{rec.name}.load_state_dict restored the weights of evaluation {restored.index} of "
                   f"{evaluations} (step {restored.step}: {metrics(restored)}), but {best_text} was "
                   f"clearly better: the restored 'best' checkpoint is not the best.{alias}")
        evidence: dict[str, Any] = {
            "model": rec.name, "restored_evaluation": restored.index, "restored_step": restored.step,
            "evaluations": evaluations, "load_step": event.step, "aliased": event.aliased}
        if best_loss is not None:
            evidence.update(restored_loss=_r(restored.loss), best_loss=_r(best_loss.loss),
                            best_loss_evaluation=best_loss.index, best_loss_step=best_loss.step)
        if best_acc is not None:
            evidence.update(restored_accuracy=_r(restored.acc), best_accuracy=_r(best_acc.acc),
                            best_accuracy_evaluation=best_acc.index, best_accuracy_step=best_acc.step)
        return self.finding(message, evidence, location=rec.name, step=event.step, severity=severity)

    def _judge_end(self, event: RunEnd) -> list[Finding]:
        out: list[Finding] = []
        for rec in self._models.values():
            # a load that changed nothing and was followed by more training: the script writes and
            # reads back its current state (a resume), and its last such load restores nothing either
            round_trips = any(info is None or info.train_forward_calls > trained for info, trained in rec.no_ops)
            out.extend(finding for finding, no_op in rec.pending if not (no_op and round_trips))
        return out


def _unique(passes: list[_Pass]) -> list[_Pass]:
    out: list[_Pass] = []
    for p in passes:
        if all(q is not p for q in out):
            out.append(p)
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.device == b.device and torch.equal(a, b)


def _noise(values: list[float], se: float) -> float:
    """The evaluation noise of a pass metric: the smaller of two estimates that each overstate it
    in their own way. The (lower) median absolute second difference of the series over sqrt(6) is
    the standard deviation of independent noise on a straight curve (a learning curve's bend adds to
    it); ``se``, the standard error of the gap from the spread within the two passes, is the noise of
    passes over different batches (passes over the same data are less noisy). An ``se`` of 0 (one
    batch per pass) is unknown."""
    second = sorted(abs(c - 2 * b + a) for a, b, c in zip(values, values[1:], values[2:]))
    curve = second[(len(second) - 1) // 2] / math.sqrt(6) if second else 0.0
    return min(curve, se) if se > 0 else curve


def _binomial(p: _Pass) -> float:
    """The standard error of a pass's accuracy (0 unknown)."""
    if p.acc is None or p.count < 2:
        return 0.0
    return math.sqrt(max(p.acc * (1 - p.acc), 0.0) / p.count)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 5)
