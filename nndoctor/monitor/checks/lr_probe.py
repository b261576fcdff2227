"""lr: a stalled run whose steps are too small, shown by training copies of the weights with a larger one.

``lr.too-low`` (:mod:`nndoctor.monitor.checks.lr`) names a rate from its updates alone only where no
working setting makes updates that small: Adam-like optimizers, or plain SGD under 1e-3. Two stalls
fall between: plain SGD at a usual rate (Keras' ``optimizer='sgd'``: 0.01, no momentum) on a deep
net whose gradients are small, which moves its weights by ~1e-5 of their size per step; and an
adaptive optimizer at a tiny rate (Adagrad or RMSprop at 1e-4, Adadelta at 1e-3) whose updates sit
just above 1e-4 of the weights (Adagrad's step shrinks as its squared gradients accumulate). The
loss barely moves, and the symptoms (a plateau, units that never activate) headline instead.

Evidence, in three parts:

* updates under ``PROBE_RATIO`` (5e-4) of the weights (median over the sampled steps), far below the
  healthy ~1e-3;
* a loss that has not fallen by 5% of its level after >= ``MIN_LOSSES`` losses (no other symptom),
  still at >= 80% of a constant prediction's loss (the fit check's baseline; a fine-tuned model far
  below it, or a loss without one, is not judged), at a rate that no scheduler is raising or has decayed;
* a probe: from the current weights, copies are trained for ``STEPS`` steps on up to ``BATCHES``
  training batches the run itself used (recorded on sampled steps; a batch counts only when
  ``F.<loss>(model(*inputs), target)`` recomputed from the model's weights before that step's
  update gives the loss the run computed: a deterministic forward, the loss fed straight from the
  model, the loss that was backpropagated), once at the current setting and once at 10x the rate (and,
  for SGD without momentum, with momentum 0.9). Reported when a changed setting lowers the loss on
  those batches at least ``FASTER`` (5x) as much as the current one, by at least 0.2% of its level,
  without a non-finite loss. The user's weights, optimizer state and RNG are never touched
  (:mod:`._step_probe`).

Said at the end of the run (a script may try a rate and leave it for a better one: :mod:`._lr_sweep`).
One optimizer only (with several, the loss curve mixes theirs).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.checks._lr_sweep import abandoned_for_better
from nndoctor.monitor.checks._step_probe import Batch, Setting, loss_of, rng_now, try_settings
from nndoctor.monitor.checks.lr import ADAPTIVE, _fmt_lr, _tidy, current_lr, update_ratio_summary
from nndoctor.monitor.checks.lr import SHORT_LOW_MEDIAN as LOW_RATIO
from nndoctor.monitor.curves import analyze_losses
from nndoctor.monitor.functions import LOSS_FUNCTIONS

__all__ = ["BATCHES", "FASTER", "PROBE_RATIO", "StepSizeProbe"]


#: optimizers whose step shrinks or is normalised by the gradients' history: updates this small are probed
SHRINKING = frozenset({"Adagrad", "Adadelta", "RMSprop"})
SHRINKING_RATIO = 1e-3


def _same_loss(kept: tuple[str, dict[str, Any]] | None, new: tuple[str, dict[str, Any]]) -> bool:
    """The same loss function with the same arguments (tensor arguments: the same tensors)."""
    if kept is None:
        return True
    (name, kw), (name2, kw2) = kept, new
    return name == name2 and kw.keys() == kw2.keys() and all(
        kw[k] is kw2[k] if isinstance(kw[k], torch.Tensor) or isinstance(kw2[k], torch.Tensor) else kw[k] == kw2[k]
        for k in kw)


PROBE_RATIO = 5e-4  # median update/weight ratio under which a stalled run's step size is probed
MIN_LOSSES = 50
FLAT = 0.05  # the loss level fell by less than this share of its start
BATCHES = 4
STEPS = 100
WORKS = 0.75  # a setting learns when the trained batches' loss ends at most at this share of its start,
FASTER = 5.0  # falls at least this many times as much as the current setting's,
HELD_WORKS = 0.9  # and the held-out batch's loss ends at most at this share of its start (not memorised)
NEAR_CONSTANT = 0.8  # the loss level is at least this share of a constant prediction's (nothing learnt yet)
MAX_BATCH_NUMEL = 1 << 20
MATCH = 1e-4  # relative difference of the recomputed loss from the run's own


@register
class StepSizeProbe(Check):
    """A loss stalled under tiny updates that a larger step, tried on copies of the weights, moves."""

    code = "lr.too-low"
    extra_codes = ("optimizer.plain-sgd-stalls",)
    needs = ("model_input", "loss", "backward", "step", "curve", "end")
    sampled_only = frozenset({"model_input", "loss", "backward", "step.pre"})
    step_phases = frozenset({"pre"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._pending: dict[str, Any] | None = None
        self._batches: collections.deque[Batch] = collections.deque(maxlen=BATCHES)
        self._model: weakref.ReferenceType[torch.nn.Module] | None = None
        self._loss: tuple[str, dict[str, Any]] | None = None
        self._done = False
        self._held: tuple[Finding, Any, float, float] | None = None

    # ------------------------------------------------------------------ recording
    def _armed(self) -> bool:
        if self._done or len(self.state.live_optimizers()) != 1:
            return False
        ratios = update_ratio_summary(self.state)
        return ratios is not None and 0 < ratios["median"] < self._bound()

    def _bound(self) -> float:
        opts = self.state.live_optimizers()
        return SHRINKING_RATIO if opts and type(opts[0][1]).__name__ in SHRINKING else PROBE_RATIO

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "end":
            return self._release()
        if kind == "curve":
            if not self._done and len(self._batches) >= 3:
                self._judge()
            return ()
        if len(self._batches) >= BATCHES or not self._armed():
            self._pending = None  # (enough batches kept: no more extra forwards)
            return ()
        if kind == "model_input":
            if event.training and event.grad_enabled and not event.kwargs and event.args and all(
                    isinstance(a, torch.Tensor) and a.numel() <= MAX_BATCH_NUMEL for a in event.args):
                # (the random state too: a forward with dropout is replayed with the same masks)
                self._pending = {"step": event.step, "model": weakref.ref(event.model), "args": event.args,
                                 "rng": rng_now(event.args)}
            else:
                self._pending = None
        elif kind == "loss":
            p = self._pending
            if p is None or p["step"] != event.step or "loss" in p:
                self._pending = None  # (a second loss in one step: a sum of losses is not replayed)
            elif (event.grad_enabled and event.name in LOSS_FUNCTIONS and not event.rest
                  and isinstance(event.result, torch.Tensor) and event.result.numel() == 1
                  and (event.target is None or isinstance(event.target, torch.Tensor))):
                p.update(loss=(event.name, dict(event.kwargs)), target=event.target,
                         value=float(event.result), result=weakref.ref(event.result))
            else:
                self._pending = None
        elif kind == "backward":
            p = self._pending
            if p is not None and p.get("result") is not None and p["result"]() is not event.tensor:
                self._pending = None  # the loss backpropagated is not the one recorded (a penalty added)
        elif kind == "step" and self._pending is not None:
            p, self._pending = self._pending, None
            self._keep(p)
        return ()

    def _keep(self, p: dict[str, Any]) -> None:
        """Keep the step's batch when the loss recomputed from the model's weights is the run's own."""
        model = p["model"]()
        if model is None or "loss" not in p or p.get("result") is None:
            return
        if self._model is not None and self._model() is not model or not _same_loss(self._loss, p["loss"]):
            return  # (one model and one loss: the batches are replayed together)
        fn = loss_of(*p["loss"])
        target = p["target"]
        if fn is None:
            return
        args = tuple(a.detach().clone() for a in p["args"])
        target = target.detach().clone() if target is not None else None
        batch = Batch(args, target)
        opt = self.state.live_optimizers()[0][1]
        try:
            # zero steps: the loss at the current weights (before this step's update), nothing trained
            got = try_settings(model, opt, fn, [batch], [Setting("now")], steps=0, rng=p["rng"])
        except Exception:  # (a model or loss the probe cannot replay: never judged)
            return
        if got is None:
            return
        value = got["now"][0]
        if not (math.isfinite(value) and abs(value - p["value"]) <= MATCH * max(abs(p["value"]), 1e-6)):
            return  # not deterministic, or not loss(model(x), y): the probe would replay something else
        self._model, self._loss = p["model"], p["loss"]
        self._batches.append(batch)

    # ------------------------------------------------------------------ judgement
    def _judge(self) -> None:
        curve = analyze_losses(self.state)
        ratios = update_ratio_summary(self.state)
        opts = self.state.live_optimizers()
        if curve.n < MIN_LOSSES or ratios is None or len(opts) != 1 or not ratios["median"] < self._bound():
            return
        if ratios["median"] <= 0 or ratios["zero_fraction"] > 0.5 or ratios["samples"] < 4:
            return
        if any(curve.has(k) for k in ("explodes", "goes-up", "oscillates")):
            return
        if not (math.isfinite(curve.start) and math.isfinite(curve.end)) or curve.start - curve.end >= FLAT * abs(curve.start):
            return  # the loss is falling: slow perhaps, but learning
        base = self.state.extra.get("nndoctor.loss_baseline")
        if not (isinstance(base, (int, float)) and math.isfinite(base) and base > 0) or curve.end < NEAR_CONSTANT * base:
            return  # better than a constant prediction already (fine-tuning with a small rate), or not known
        info, opt = opts[0]
        lr = current_lr(opt)
        if lr and ratios["median"] < LOW_RATIO and (type(opt).__name__ in ADAPTIVE or lr < 1e-3):
            return  # updates no working setting makes: lr.too-low's own evidence (monitor/checks/lr.py)
        _, lrs = self.state.lrs.series()
        if not lr or lrs and (lr < 0.5 * max(lrs) or lr > 1.5 * lrs[0]):
            return  # decayed by a scheduler, or still warming up
        if any(f.code == "lr.too-low" for f in getattr(getattr(self.state, "observer", None), "findings", ())):
            return
        model = self._model() if self._model is not None else None
        fn = loss_of(*self._loss) if self._loss is not None else None
        if model is None or fn is None:
            return
        self._done = True
        self._held = self._probe(model, opt, fn, info.name, lr, ratios, curve)

    def _probe(self, model: torch.nn.Module, opt: torch.optim.Optimizer, fn: Any, name: str, lr: float,
               ratios: dict[str, float], curve: Any) -> tuple[Finding, Any, float, float] | None:
        cls = type(opt).__name__
        factors = (10.0, 100.0) if cls in ADAPTIVE else (10.0,)  # (an adaptive step is bounded by the rate)
        settings = [Setting("now"), *(Setting(f"lr {_fmt_lr(lr * f)}", lr_factor=f) for f in factors)]
        if isinstance(opt, torch.optim.SGD) and not opt.param_groups[0].get("momentum"):
            settings.append(Setting(f"lr {_fmt_lr(lr)} with momentum 0.9", overrides={"momentum": 0.9},
                                    keep_state=False))
        if cls not in ADAPTIVE:
            settings.append(Setting("Adam at lr 1e-3", other=torch.optim.Adam, lr=1e-3))
        *train, held = list(self._batches)
        try:
            got = try_settings(model, opt, fn, train, settings, steps=STEPS, held=held)
        except Exception:  # (nndoctor must never break the run: an unprobeable model says nothing)
            return None
        if not got or "now" not in got:
            return None
        start, now, held_start, held_now = got["now"]
        fall_now = start - now
        works = [k for k, (b, a, hb, ha) in got.items() if k != "now" and math.isfinite(a) and math.isfinite(ha)
                 and a <= WORKS * b and b - a >= FASTER * max(fall_now, 0.0) and ha <= HELD_WORKS * hb]
        if not works or now <= WORKS * start:
            return None  # no changed setting learns where the current one does not
        same = [k for k in works if not k.startswith("Adam")]  # the rate (or momentum) alone is the fix
        best = min(same or works, key=lambda k: got[k][1])
        code = "lr.too-low" if same else "optimizer.plain-sgd-stalls"
        info = self.state.live_optimizers()[0][0]
        return self._finding(code, name, cls, lr, ratios, curve, got, best, works), info, lr, curve.end

    def _finding(self, code: str, name: str, cls: str, lr: float, ratios: dict[str, float], curve: Any,
                 got: dict[str, tuple[float, float, float, float]], best: str, works: list[str]) -> Finding:
        start, now, held_start, held_now = got["now"]
        b, a, hb, ha = got[best]
        others = "; ".join(f"{k}: {v[1]:.4g} ({v[3]:.4g} held out)" for k, v in got.items() if k not in ("now", best))
        moved = abs(curve.end - curve.start) / max(abs(curve.start), 1e-12)
        n = len(self._batches) - 1
        probe = (f"trained from the current weights for {STEPS} steps on {n} of the run's own batches (on copies: "
                 f"the run is untouched), {best} brought their loss from {b:.4g} to {a:.4g} and a batch held out "
                 f"from {hb:.4g} to {ha:.4g}, where the current setting reached {now:.4g} ({held_now:.4g} held out)"
                 + (f"; {others}" if others else ""))
        stall = (f"the loss moved {moved * 100:.2g}% in {curve.n} steps ({curve.start:.4g} -> {curve.end:.4g}) while "
                 f"each update changes the weights by only {ratios['median']:.2g} of their size (healthy ~1e-3)")
        if code == "lr.too-low":
            msg = f"learning rate {_fmt_lr(lr)} of {name} ({cls}) is too low for this model: {stall}; {probe}"
        else:
            msg = (f"{name} ({cls} without momentum, lr {_fmt_lr(lr)}) barely moves this model: {stall}; {probe}: "
                   f"neither a 10x rate nor momentum learns in those steps, Adam does (its step does not shrink "
                   f"with the small gradients)")
        momentum = best.endswith("momentum 0.9")
        factor = 1.0 if momentum or best.startswith("Adam") else 10.0 if best == f"lr {_fmt_lr(lr * 10)}" else 100.0
        ev: dict[str, Any] = {
            "optimizer": name, "optimizer_class": cls, "lr": _fmt_lr(lr),
            "update_ratio_median": float(f"{ratios['median']:.3g}"),
            "update_ratio_peak": float(f"{ratios['peak']:.3g}"), "sampled_steps": int(ratios["samples"]),
            "healthy_update_ratio": "1e-4 to 1e-2 (about 1e-3)",
            "start_loss": round(curve.start, 6), "end_loss": round(curve.end, 6), "steps": curve.n,
            "probe_steps": STEPS, "probe_batches": n,
            "probe_losses": {k: [round(x, 6) for x in v] for k, v in got.items()},
            "probe_best": best, "probe_works": works,
            "suggest_low": _fmt_lr(factor * lr / 3), "suggest_high": _fmt_lr(factor * lr),
            "default_hint": ("a common starting point is 3e-4 (1e-3 at most)" if cls in ADAPTIVE else
                             "add momentum=0.9 (the probe's best setting)" if momentum else
                             "typical rates are 1e-3 to 1e-1 (0.01-0.1 with momentum 0.9)"),
        }
        return _tidy(self.finding(msg, ev, location=name, code=code, step=self.state.step))  # (hints fill the fixes)

    def _release(self) -> list[Finding]:
        if self._held is None:
            return []
        found, info, lr, level = self._held
        self._held = None
        sweep = abandoned_for_better(self.state, info, lr, level)
        if sweep is None:
            return [found]
        return [dataclasses.replace(found, severity=Severity.INFO, evidence={**found.evidence, "abandoned_for": sweep},
                                    message=f"{found.message}; but the script then left this rate for a better one "
                                            f"({sweep['later_lr']:.3g}): a rate tried and abandoned")]
