"""Overfit a single batch (field guide, step 2b): a workflow, not an Observer check.

One fixed batch (fetched once, so no shuffling and augmentation frozen), dropout off,
weight decay 0, the user's optimizer and lr; train until the loss is near zero (95% below
where it started). On failure the curve is classified into the guide's four symptoms
(goes up / explodes / oscillates / plateaus) and the likely causes are ranked with
evidence: findings of the registered checks (the run is observed by an
:class:`~nndoctor.monitor.observer.Observer`), gradient flow, update ratios and label
sanity (identical inputs with different labels). Everything is restored afterwards.

This module registers no check (every module of ``nndoctor.debug`` is auto-imported).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from nndoctor import catalogue
from nndoctor.experiment import Experiment, compute_loss, first_batch, preserved, split_batch, to_device
from nndoctor.findings import Finding, Report, Severity

__all__ = ["Cause", "OverfitResult", "classify_curve", "label_conflicts", "label_consistency", "overfit_batch",
           "still_falling"]

#: categories of observer findings that can explain a batch that does not overfit
_RELEVANT = {"loss-input", "numerics", "grad-flow", "grad", "activation", "init", "shape", "dtype",
             "preprocessing", "zero-grad", "optimizer", "lr", "labels"}
_SYMPTOM_TEXT = {
    "goes-up": "the loss goes up", "explodes": "the loss explodes",
    "oscillates": "the loss oscillates", "plateaus": "the loss plateaus",
}


@dataclass
class Cause:
    """One likely cause, with the evidence that supports it (higher score = more likely)."""

    code: str
    score: float
    message: str
    evidence: dict[str, Any]
    fixes: tuple[str, ...]
    from_check: bool = False  # already reported by a registered check


@dataclass
class OverfitResult:
    passed: bool
    losses: list[float]
    target_loss: float
    symptom: str | None
    causes: list[Cause] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    facts: dict[str, Any] = field(default_factory=dict)


def classify_curve(losses: list[float]) -> str:
    """The guide's symptom for a curve that did not reach zero."""
    if not losses:
        return "plateaus"
    first = losses[0]
    if any(not math.isfinite(v) for v in losses) or max(losses) > 10 * max(abs(first), 1e-8):
        return "explodes"
    n = len(losses)
    tail = losses[n // 2:]
    head = losses[: max(1, n // 10)]
    if statistics.median(tail) > 1.1 * statistics.median(head) + 1e-12:
        return "goes-up"
    if len(tail) >= 6:
        diffs = [b - a for a, b in zip(tail, tail[1:])]
        turns = sum(1 for a, b in zip(diffs, diffs[1:]) if a * b < 0) / max(1, len(diffs) - 1)
        level = statistics.median(tail)
        swing = statistics.median(abs(d) for d in diffs) / max(abs(level), 1e-12)
        if turns > 0.3 and swing > 0.1:
            return "oscillates"
    return "plateaus"


def still_falling(losses: list[float]) -> bool:
    """The last quarter of the curve still fell by more than 30% (in a steady way): only slow."""
    n = len(losses)
    if n < 40 or any(not math.isfinite(v) for v in losses):
        return False
    q = n // 4
    before = statistics.median(losses[n - q - q // 4: n - q + q // 4])
    last = statistics.median(losses[-max(3, q // 4):])
    return last < 0.7 * before and classify_curve(losses[-q:]) == "plateaus"


def label_conflicts(inputs: Any, target: Any) -> tuple[int, int]:
    """``(rows in a group of identical inputs with differing labels, group count)``."""
    x = inputs[0] if isinstance(inputs, (tuple, list)) and inputs else inputs
    if not isinstance(x, torch.Tensor) or not isinstance(target, torch.Tensor) or x.dim() == 0:
        return 0, 0
    if target.dim() == 0 or target.shape[0] != x.shape[0] or x.shape[0] < 2:
        return 0, 0
    rows = x.detach().reshape(x.shape[0], -1).cpu()
    tgt = target.detach().reshape(target.shape[0], -1).cpu()
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    bad_rows, groups = 0, 0
    for g in inverse.unique():
        members = (inverse == g).nonzero().flatten()
        if len(members) > 1 and not bool((tgt[members] == tgt[members[0]]).all()):
            bad_rows += len(members)
            groups += 1
    return bad_rows, groups


def label_consistency(exp: Experiment, max_examples: int = 2048) -> tuple[int, int]:
    """``(inputs seen twice with a different label, inputs seen twice)`` over two passes of ``train``.

    The same input must keep its label from one epoch to the next; when inputs and labels
    are shuffled or indexed apart, it does not. Inputs changed by augmentation simply do
    not match, so they cannot raise a false alarm.
    """
    passes: list[dict[bytes, bytes]] = []
    with torch.random.fork_rng(devices=[]):
        for _ in range(2):
            seen: dict[bytes, bytes] = {}
            for raw in exp.train:
                try:
                    b = split_batch(raw)
                except Exception:
                    return 0, 0
                xs = b.inputs or tuple(b.kwargs.values())
                x, y = (xs[0] if xs else None), b.target
                if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or y.dim() == 0:
                    return 0, 0
                rows = x.detach().reshape(x.shape[0], -1).cpu().numpy()
                labels = y.detach().reshape(y.shape[0], -1).cpu().numpy()
                for r, lab in zip(rows, labels):
                    seen.setdefault(r.tobytes(), lab.tobytes())
                if len(seen) >= max_examples:
                    break
            passes.append(seen)
    first, second = passes
    both = [k for k in second if k in first]
    return sum(1 for k in both if first[k] != second[k]), len(both)


def _shrink(batch: Any, n: int, full: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[:n] if batch.dim() and batch.shape[0] == full else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_shrink(b, n, full) for b in batch)
    if isinstance(batch, dict):
        return {k: _shrink(v, n, full) for k, v in batch.items()}
    return batch


def _update_ratio(before: dict[str, torch.Tensor], model: nn.Module) -> float | None:
    ratios = []
    for name, p in model.named_parameters():
        old = before.get(name)
        if old is None or p.dim() < 2:
            continue
        norm = float(old.norm())
        if norm > 0:
            ratios.append(float((p.detach() - old).norm()) / norm)
    return statistics.median(ratios) if ratios else None


def overfit_batch(exp: Experiment, *, max_steps: int = 1000, batch_size: int | None = 32,
                  hold: int = 5, observe: bool = True, on_step: Callable[[int, float], None] | None = None) -> OverfitResult:
    """Train on one fixed batch; pass when the loss stays 95% below its start for ``hold`` steps."""
    from nndoctor.monitor.observer import Observer

    if max_steps < 1 or (batch_size is not None and batch_size < 1):
        raise ValueError(f"overfit_batch needs max_steps >= 1 and batch_size >= 1 (or None for the loader's "
                         f"batch), got max_steps={max_steps}, batch_size={batch_size}")
    model, opt = exp.model, exp.optimizer
    assert opt is not None
    with torch.random.fork_rng(devices=[]):  # reading a shuffled loader draws from the RNG
        raw = first_batch(exp.train)
    full = next((t.shape[0] for t in _leaves(raw) if t.dim()), 0)
    batch = _shrink(raw, batch_size, full) if batch_size and full > batch_size else raw
    batch = to_device(batch, exp.device)
    losses: list[float] = []
    facts: dict[str, Any] = {"batch_size": min(full, batch_size or full), "max_steps": max_steps,
                             "lr": opt.param_groups[0].get("lr"), "optimizer": type(opt).__name__}
    ratios: list[float] = []
    no_grad: list[str] = []
    grad_norms: list[tuple[str, float]] = []
    with preserved(model, opt):
        model.train()
        dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        for m in dropouts:
            m.eval()
        wd = [g.get("weight_decay", 0.0) for g in opt.param_groups]
        for g in opt.param_groups:
            if "weight_decay" in g:
                g["weight_decay"] = 0.0
        facts["switched_off"] = {"dropout_layers": len(dropouts), "weight_decay": max(wd or [0.0])}
        observer = Observer(models=[model], optimizers=[opt], discover=False) if observe else None
        target, below = math.inf, 0
        try:
            if observer is not None:
                observer.__enter__()
            for step in range(1, max_steps + 1):
                opt.zero_grad(set_to_none=True)
                loss = compute_loss(exp, batch)
                value = float(loss.detach())
                losses.append(value)
                if step == 1:
                    target = 0.05 * value if value > 0 else value - 1.0
                if on_step is not None:
                    on_step(step, value)
                below = below + 1 if value <= target else 0
                if not math.isfinite(value) or below >= hold:
                    break
                loss.backward()
                if step == 1:
                    for name, p in model.named_parameters():
                        if p.requires_grad:
                            if p.grad is None or not bool(p.grad.any()):
                                no_grad.append(name)
                            else:
                                grad_norms.append((name, float(p.grad.norm())))
                sample = step <= 10 or step % 25 == 0
                before = {n: p.detach().clone() for n, p in model.named_parameters()} if sample else {}
                opt.step()
                if sample:
                    r = _update_ratio(before, model)
                    if r is not None:
                        ratios.append(r)
        finally:
            if observer is not None:
                observer.__exit__(None, None, None)
    observed = observer.report() if observer is not None else Report()
    passed = len(losses) >= hold and all(math.isfinite(v) and v <= target for v in losses[-hold:])
    conflicts = label_conflicts(*_inputs_target(exp, batch))
    changed, matched = label_consistency(exp) if exp.step is None else (0, 0)
    facts["labels_changed_between_passes"] = changed
    facts.update(steps=len(losses), initial_loss=losses[0] if losses else None,
                 final_loss=losses[-1] if losses else None, target_loss=target,
                 update_ratio=statistics.median(ratios) if ratios else None,
                 label_conflicts=conflicts[0])
    relevant = [f for f in observed.findings if f.category in _RELEVANT and f.severity.rank >= 1]
    symptom = None if passed else classify_curve(losses)
    causes = _rank_causes(symptom, facts, relevant, no_grad, grad_norms, conflicts) if symptom else []
    findings: list[Finding] = list(relevant)
    slow = symptom == "plateaus" and still_falling(losses)
    facts["still_falling"] = slow
    if symptom:
        findings.append(catalogue.finding(
            f"loss-curve.overfit-batch-{symptom}", severity=Severity.INFO if slow else Severity.WARNING,
            message=(f"a single batch of {facts['batch_size']} did not overfit in {len(losses)} steps: "
                     + ("the loss is still falling steadily, only slowly" if slow else _SYMPTOM_TEXT[symptom])
                     + f" (loss {losses[0]:.4g} -> {losses[-1]:.4g}, target {target:.3g})"),
            evidence={"initial_loss": losses[0], "final_loss": losses[-1], "steps": len(losses),
                      "lr": facts["lr"], "likely_causes": [c.code for c in causes[:3]]},
            fixes=tuple(c.fixes[0] for c in causes[:3] if c.fixes), location="overfit one batch",
            first_step=len(losses)))
        findings += [catalogue.finding(c.code, severity=Severity.WARNING if c.score >= 2 and not slow else Severity.INFO,
                                       message=c.message, evidence=c.evidence, fixes=c.fixes,
                                       location="overfit one batch") for c in causes if not c.from_check]
    elif conflicts[0]:
        findings += [catalogue.finding(c.code, severity=Severity.WARNING, message=c.message,
                                       evidence=c.evidence, fixes=c.fixes, location="overfit one batch")
                     for c in _rank_causes("plateaus", facts, [], [], [], conflicts) if c.code.startswith("labels.")]
    if matched >= 10 and changed > 0.01 * matched:
        findings.append(catalogue.finding(
            "labels.changed-between-epochs",
            message=(f"{changed} of {matched} training inputs came back with a different label on a second "
                     "pass over the loader: inputs and labels are shuffled or indexed apart"),
            evidence={"changed": changed, "matched": matched}, location="train loader"))
    report = Report(findings=_dedupe(findings), facts={"command": "overfit", "passed": passed, **facts},
                    internal_errors=list(observed.internal_errors))
    return OverfitResult(passed=passed, losses=losses, target_loss=target, symptom=symptom,
                         causes=causes, report=report, facts=facts)


def _leaves(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _leaves(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _leaves(o)]
    return []


def _inputs_target(exp: Experiment, batch: Any) -> tuple[Any, Any]:
    try:
        b = split_batch(batch)
    except Exception:
        return None, None
    return (b.inputs or tuple(b.kwargs.values())), b.target


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out


def _cause(code: str, score: float, message: str, evidence: dict[str, Any], **fill: Any) -> Cause:
    """A candidate cause with the catalogue's fixes of ``code`` (``fill``: template values beyond evidence)."""
    return Cause(code, score, message, evidence, catalogue.fixes_for(code, {**evidence, **fill}))


def _rank_causes(symptom: str, facts: dict[str, Any], relevant: list[Finding], no_grad: list[str],
                 grad_norms: list[tuple[str, float]], conflicts: tuple[int, int]) -> list[Cause]:
    """Score the guide's candidate causes for ``symptom`` with the evidence gathered."""
    lr, ratio, opt = facts.get("lr"), facts.get("update_ratio"), facts.get("optimizer")
    causes: list[Cause] = []
    cats = {f.category for f in relevant}
    for f in relevant:  # a registered check saw it while overfitting: strongest evidence
        causes.append(Cause(f.code, 5.0 if f.severity is Severity.ERROR else 4.0,
                            f"seen while overfitting: {f.message}", dict(f.evidence), f.fixes, True))
    high = 0.0
    if symptom in ("goes-up", "explodes", "oscillates"):
        high = 1.0 + (2.0 if ratio is not None and ratio > 0.1 else 0.0)
        if symptom == "explodes" and "numerics" not in cats and not math.isfinite(facts.get("final_loss") or 0):
            causes.append(_cause("numerics.overfit-batch-non-finite-loss", 3.0 if (ratio or 0) <= 0.1 else 2.0,
                                 f"the loss became {facts.get('final_loss')} at step {facts['steps']}",
                                 {"step": facts["steps"], "update_ratio": ratio}))
    if high and "lr" not in cats:
        causes.append(_cause("lr.overfit-batch-lr-too-high", high,
                             f"the learning rate {lr:.3g} looks too high: parameters move by "
                             f"{_pct(ratio)} of their size per step (healthy: 0.01%-10%)",
                             {"lr": lr, "update_ratio": ratio, "optimizer": opt}, lower_lr=lr / 10))
    if symptom == "goes-up":
        causes.append(_cause("loss-curve.overfit-batch-flipped-sign", 1.5 if (ratio or 0) <= 0.1 else 0.5,
                             "the loss rises while the updates are small: the loss or the gradient may have "
                             "the wrong sign (maximising instead of minimising)",
                             {"update_ratio": ratio, "initial_loss": facts.get("initial_loss"),
                             "final_loss": facts.get("final_loss")}))
    if conflicts[0]:
        causes.append(_cause("labels.overfit-batch-conflicting-labels", 3.5,
                             f"{conflicts[0]} examples of the batch share identical inputs but have different "
                             f"labels ({conflicts[1]} groups): no model can fit them",
                             {"rows": conflicts[0], "groups": conflicts[1]}))
    if symptom == "plateaus":
        if no_grad and "grad-flow" not in cats:
            causes.append(_cause("grad-flow.overfit-batch-no-gradient", 3.0,
                                 f"{len(no_grad)} parameter tensors get no (or an all-zero) gradient, e.g. "
                                 f"{', '.join(no_grad[:3])}",
                                 {"parameters": no_grad[:10], "count": len(no_grad)}))
        if len(grad_norms) >= 2 and grad_norms[-1][1] > 0 and grad_norms[0][1] / grad_norms[-1][1] < 1e-3:
            causes.append(_cause("grad.overfit-batch-vanishing", 2.5,
                                 f"the first layer's gradient is {grad_norms[0][1] / grad_norms[-1][1]:.1e} "
                                 "of the last layer's",
                                 {"first": grad_norms[0][0], "last": grad_norms[-1][0]}))
        low = 1.0 + (2.0 if ratio is not None and ratio < 1e-4 else 0.0)
        losses_fell = (facts.get("final_loss") or 0) < 0.7 * (facts.get("initial_loss") or 0)
        if "lr" not in cats:
            causes.append(_cause("lr.overfit-batch-lr-too-low", low + (0.5 if losses_fell else 0.0),
                                 f"the learning rate {lr:.3g} may be too low: parameters move by {_pct(ratio)} "
                                 "of their size per step", {"lr": lr, "update_ratio": ratio, "optimizer": opt},
                                 higher_lr=lr * 10))
        if "loss-input" not in cats:
            causes.append(_cause("loss-input.overfit-batch-check-output", 0.5,
                                 "check the model's last layer matches the loss (logits into CrossEntropyLoss, "
                                 "no ReLU/sigmoid on a regression output)", {}))
    return sorted(causes, key=lambda c: -c.score)


def _pct(ratio: float | None) -> str:
    return "an unknown share" if ratio is None else f"{100 * ratio:.2g}%"
