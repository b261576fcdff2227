"""A copy of the trained model (EMA, averaged, "slow" weights) evaluated although it never follows
the model it copies.

Two common mistakes leave such a copy behind:

* its weights are never updated: the update rebinds a loop variable
  (``for e, p in zip(ema.parameters(), model.parameters()): e = 0.99 * e + 0.01 * p``), the update
  call (``ema.update(model)``, ``swa_model.update_parameters(model)``) is never reached, or the decay
  is 1. The copy stays at the trained model's initial weights, and every evaluation of it scores an
  untrained network (``grad-flow.evaluated-copy-never-updated``);
* its weights are averaged but its batch-norm buffers are not: a hand-written EMA over
  ``parameters()`` only (``AveragedModel`` keeps the buffers in sync). Evaluated in eval mode, its batch norms
  normalise with the initial statistics (mean 0, variance 1) instead of the ones the weights were
  trained with (``train-mode.copy-batchnorm-stats-never-updated``).

Detection: every root model is fingerprinted at its first forward (the first 64 values of up to 16
parameter tensors). A model evaluated (forward without gradient) whose parameters are in no
optimizer is compared, once per step it is evaluated on, with a trained twin: a live model with the
same parameter shapes whose parameters an optimizer holds. The first finding needs the copy equal,
value for value, to the twin's first fingerprint after the twin has moved and taken at least
``MIN_STEPS`` optimizer steps, and the copy evaluated on at most a third of the steps (a frozen
reference or teacher model, run at every training step as in DPO or distillation, stays quiet).
The second needs the copy in eval mode with a batch norm whose buffers are untouched (no batch
tracked, mean exactly 0, variance exactly 1) while the twin's matching batch norm tracked batches,
and the copy's weights close to the twin's current ones (cosine >= ``MIN_COSINE``: it is averaged
from it) and not equal to its first fingerprint.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.events import EvalInput, ModelInput, RunEnd, StepEvent
from nndoctor.monitor.functions import _INTERNAL_DIRS
from nndoctor.monitor.tensors import local, materialised

__all__ = ["StaleCopy"]

#: values read per parameter tensor, and tensors per model, for a fingerprint
_VALUES, _TENSORS = 64, 16
#: optimizer steps the twin must have taken before the copy's evaluation counts
MIN_STEPS = 20
#: the copy may be evaluated on at most this share of the training steps
MAX_EVAL_SHARE = 1 / 3
#: cosine between the copy's and the twin's current fingerprints for "averaged from it"
MIN_COSINE = 0.9
#: optimizer steps (sampled, post-step) at which the script's variables are searched for copies
_SCANS = 3
#: a warning when the trained model's statistics are this far from mean 0 / variance 1 (median over
#: channels of |mean| / std, or of the std ratio either way); closer, the copy is only a little off: info
MIN_SHIFT, MIN_STD_RATIO = 0.5, 2.0
#: or this many stale batch norms (their errors compound through the network)
MIN_DEEP = 3
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _user_values(script_globals: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """(name, value) of the locals of the user's frames now on the stack and of the script's globals."""
    out: list[tuple[str, Any]] = []
    frame = sys._getframe(1)
    while frame is not None and len(out) < 2048:
        if not frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
            out.extend((k, v) for k, v in list(frame.f_locals.items()) if not k.startswith("_") and k != "self")
        frame = frame.f_back
    main = sys.modules.get("__main__")
    for scope in (script_globals, vars(main) if main is not None else None):
        if scope:
            out.extend((k, v) for k, v in list(scope.items())[:2048] if not k.startswith("_"))
    return out


def _shapes(model: nn.Module) -> tuple[tuple[int, ...], ...] | None:
    """The parameter shapes, or None while a lazy module's parameters are not materialised."""
    params = list(model.parameters())
    if not all(materialised(p) for p in params):
        return None
    return tuple(tuple(p.shape) for p in params)


def _fingerprint(model: nn.Module) -> list[torch.Tensor]:
    out = []
    for p in model.parameters():
        if len(out) >= _TENSORS:
            break
        v = local(p)
        if v.numel():
            out.append(v.detach().reshape(-1)[:_VALUES].float().cpu().clone())
    return out


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))


def _cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    if len(a) != len(b) or not a or any(x.shape != y.shape for x, y in zip(a, b)):
        return 0.0
    x, y = torch.cat(a), torch.cat(b)
    den = float(x.norm() * y.norm())
    return float(x @ y) / den if den > 0 else 0.0


def _offset(bn: nn.Module) -> tuple[float, float]:
    """How far the trained model's running statistics are from mean 0 / variance 1: the median over
    channels of |mean| / std, and the median std ratio (>= 1, either way)."""
    mean, var = bn.running_mean.detach().float(), bn.running_var.detach().float().clamp_min(1e-12)
    std = var.sqrt()
    ratio = torch.maximum(std, 1 / std)
    return float((mean.abs() / std).median()), float(ratio.median())


def _untouched_bn(m: nn.Module) -> bool:
    n = getattr(m, "num_batches_tracked", None)
    mean, var = getattr(m, "running_mean", None), getattr(m, "running_var", None)
    if n is None or mean is None or var is None or int(n) != 0 or not mean.numel():
        return False
    return not bool(mean.detach().any()) and bool((var.detach() == 1).all())


@register
class StaleCopy(Check):
    """An evaluated copy of the trained model whose weights or batch-norm statistics never move."""

    code = "grad-flow.evaluated-copy-never-updated"
    extra_codes = ("train-mode.copy-batchnorm-stats-never-updated",)
    needs = ("model_input", "eval_input", "step", "end")
    step_phases = frozenset({"post"})
    sampled_only = frozenset({"model_input", "step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        # id(model) -> (model ref, shapes, first fingerprint, run step of the first forward)
        self._models: dict[int, tuple[Any, tuple[tuple[int, ...], ...], list[torch.Tensor], int]] = {}
        self._evals: dict[int, dict[str, Any]] = {}  # id(copy) -> what its evaluations showed
        self._scans = 0

    def check(self, event: ModelInput | EvalInput | StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._judge(event.reason) if event.reason != "crash" else ()
        if isinstance(event, StepEvent):
            if self._scans < _SCANS:
                self._scans += 1
                self._discover()
            return ()
        entry = self._entry(event.model, event.step)
        if entry is None or event.kind != "eval_input":
            return ()
        rec = self._evals.get(id(event.model))
        if rec is not None and rec["ref"]() is not event.model:
            rec = None  # (a new model at a freed one's id)
        if rec is not None and rec["last_step"] == event.step:
            return ()  # (once per step: an evaluation loop runs many batches)
        if rec is None:
            if len(self._evals) >= 8 and id(event.model) not in self._evals:
                return ()
            rec = self._evals[id(event.model)] = {"ref": weakref.ref(event.model), "name": event.name,
                                                  "steps": 0, "last_step": -1}
        rec["steps"] += 1
        rec["last_step"] = event.step
        self._look(event.model, event.name, event.training, entry, rec)
        return ()

    def _discover(self) -> None:
        """Copies of a trained model held in the script's variables, registered with the observer
        so that their forwards are seen (a model only ever run on unsampled steps, as an evaluation
        once per epoch is, would stay unknown): only modules with a trained model's parameter
        shapes and none of their parameters in an optimizer."""
        held = self.state.optimizer_params()
        known = {id(m) for _, m in self.state.live_models()}
        trained = {_shapes(m) for _, m in self.state.live_models()
                   if any(id(p) in held for p in m.parameters())} - {None}
        if not trained:
            return
        seen: set[int] = set()
        for name, value in _user_values(self.state.script_globals):
            if (id(value) in seen or id(value) in known or not isinstance(value, nn.Module)
                    or isinstance(value, torch.jit.ScriptModule)):
                continue
            seen.add(id(value))
            params = list(value.parameters())
            if not params or any(id(p) in held for p in params) or _shapes(value) not in trained:
                continue
            register = getattr(self.state.observer, "_register_model", None)
            if register is None or len(seen) > 8:
                return
            register(value, name=name)
            known.add(id(value))
            self._entry(value, self.state.step)

    def _entry(self, model: nn.Module, step: int) -> tuple[Any, Any, list[torch.Tensor], int] | None:
        entry = self._models.get(id(model))
        if entry is not None and entry[0]() is model:
            return entry
        if len(self._models) >= 32:
            return None
        shapes = _shapes(model)
        if not shapes:
            return None
        entry = self._models[id(model)] = (weakref.ref(model), shapes, _fingerprint(model), step)
        return entry

    def _twin(self, copy: nn.Module, shapes: Any) -> tuple[nn.Module, Any] | None:
        held = self.state.optimizer_params()
        if any(id(p) in held for p in copy.parameters()):
            return None  # the copy is trained itself
        for entry in self._models.values():
            twin = entry[0]()
            if twin is None or twin is copy or entry[1] != shapes:
                continue
            if any(id(p) in held for p in twin.parameters()):
                return twin, entry
        return None

    def _look(self, copy: nn.Module, name: str, training: bool, entry: Any, rec: dict[str, Any]) -> None:
        found = self._twin(copy, entry[1])
        if found is None:
            return
        twin, tentry = found
        steps = self.state.step - tentry[3]
        now = _fingerprint(copy)
        twin_now = _fingerprint(twin)
        info = self.state.models.get(id(twin))
        rec.update(twin=info.name if info is not None else "the trained model", twin_steps=steps,
                   step=self.state.step)
        if steps >= MIN_STEPS and _same(now, tentry[2]) and not _same(twin_now, tentry[2]):
            rec["stale"] = True
        elif "stale" not in rec:
            rec["stale"] = False
        if training or rec.get("bn") or _same(now, tentry[2]) or _cosine(now, twin_now) < MIN_COSINE:
            return
        twin_bns = [m for m in twin.modules() if isinstance(m, _BN)]
        copy_bns = [(n, m) for n, m in copy.named_modules() if isinstance(m, _BN)]
        if len(twin_bns) != len(copy_bns):
            return
        pairs = [(n, t) for (n, m), t in zip(copy_bns, twin_bns)
                 if not m.training and _untouched_bn(m) and int(getattr(t, "num_batches_tracked", 0) or 0) > 0]
        if pairs:
            offs = [_offset(t) for _, t in pairs]
            rec["bn"] = {"modules": [f"{name}.{n}" for n, _ in pairs[:8]], "count": len(pairs),
                         "of": len(copy_bns), "step": self.state.step,
                         "twin_batches": int(pairs[0][1].num_batches_tracked),
                         "mean_shift": round(max(o[0] for o in offs), 3),
                         "std_ratio": round(max(o[1] for o in offs), 3)}

    def _judge(self, reason: str) -> list[Finding]:
        out: list[Finding] = []
        total = max(self.state.step - 1, 1)
        for rec in self._evals.values():
            twin = rec.get("twin")
            if twin is None:
                continue
            share = rec["steps"] / total
            if rec.get("stale") and share <= MAX_EVAL_SHARE:
                # a run cut short (--max-steps, an interrupt) may not have reached the update yet (SWA
                # starts averaging late): evaluated once, that is only worth a note
                weak = reason != "finished" and rec["steps"] < 2
                ev = {"copy": rec["name"], "model": twin, "evaluated_steps": rec["steps"],
                      "training_steps": total, "twin_steps": rec["twin_steps"], "step": rec["step"],
                      "run_end": reason}
                out.append(self.finding(
                    f"{rec['name']} is evaluated (on {rec['steps']} step(s)) but its weights are still exactly "
                    f"{twin}'s initial weights after {rec['twin_steps']} training steps: the copy (an EMA or "
                    f"averaged model?) is never updated, so its evaluations score an untrained network (an "
                    f"update that rebinds a loop variable, `e = d * e + (1 - d) * p`, changes nothing)",
                    ev, location=rec["name"], severity=Severity.INFO if weak else None))
            bn = rec.get("bn")
            if bn:
                ev = {"copy": rec["name"], "model": twin, **bn}
                off = (bn["mean_shift"] >= MIN_SHIFT or bn["std_ratio"] >= MIN_STD_RATIO
                       or bn["count"] >= MIN_DEEP)
                out.append(self.finding(
                    f"{rec['name']} follows {twin}'s weights but is evaluated in eval mode with "
                    f"{bn['count']} of its {bn['of']} batch norms ({', '.join(bn['modules'][:3])}) still at "
                    f"their initial statistics (mean 0, variance 1, no batch tracked) while {twin}'s tracked "
                    f"{bn['twin_batches']} batches: the copy's running_mean/running_var are never updated "
                    f"(an EMA over parameters() only: copy the buffers too); {twin}'s statistics are "
                    f"{'far from' if off else 'close to'} those{' (over ' + str(bn['count']) + ' layers)' if off and bn['count'] >= MIN_DEEP else ''} (|mean|/std {bn['mean_shift']:.2g}, std "
                    f"off by {bn['std_ratio']:.2g}x), so the copy's activations are "
                    f"{'mis-normalised' if off else 'only slightly off'}",
                    ev, location=rec["name"], code="train-mode.copy-batchnorm-stats-never-updated",
                    severity=None if off else Severity.INFO))
        return out
