"""lr: the learning rate is too high or too low.

Two kinds of evidence, combined over many steps:

* the update-to-weight ratio ``|w_after - w_before| / |w_before|`` of a few large weight
  tensors, measured on sampled optimizer steps (a copy before the step, one host sync
  after it). Healthy training sits around 1e-3 (1e-2 for Adam on small layers);
* the shape of the loss curve (see :mod:`nndoctor.monitor.curves`): a loss that explodes,
  goes up or oscillates while the updates are large points to a learning rate that is too
  high; a loss that has not moved after many steps while the updates are tiny, to one that
  is too low. Either alone is not enough: a noisy healthy loss and a large-but-working
  update stay quiet.

Weights that start constant (a zero-initialised logits table, ``fill_``) are left out of
the ratio while they are still near that start: relative to a zero weight any update looks
huge, which says nothing about the learning rate. Once their norm is 10x what it was after
their first updates, or after 6 sampled steps away from zero for a zero-initialised one, they
count again (a too-high rate on a zero-initialised table is seen).
Short runs are judged at the curve reads of steps 25-100 on stricter evidence: too high when
updates as large as the weights came with a loss that jumped (>= 2x) or ended clearly above its
start (beyond its batch noise: a level loss says nothing about the rate, at any run length); too low when every sampled update stays under 1e-5 of the weights (from ~50 losses on:
a median under 1e-4, none above 3e-4) while the loss has not moved.

The probe's measurements are shared in ``state.extra`` (``nndoctor.update_ratios``,
``nndoctor.grad_reach``) for the loss-curve check's ranking of causes.
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
from nndoctor.monitor.checks._layers import host_floats
from nndoctor.monitor.checks._lr_sweep import abandoned_for_better
from nndoctor.monitor.checks._manual_updates import HAND_WRITTEN, MANUAL_LR_KEY, ManualUpdates
from nndoctor.monitor.checks._step_share import step_share
from nndoctor.monitor.curves import CurveAnalysis, analyze_losses
from nndoctor.monitor.events import BackwardCall, CurveDue, RunEnd, StepEvent
from nndoctor.monitor.tensors import local

__all__ = ["ADAPTIVE", "LearningRate", "current_lr", "update_ratio_summary"]

ADAPTIVE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta",
                      "SparseAdam", "Adafactor", "LAMB", "Lion"})
#: largest total size of the weights copied on a sampled step
MAX_SNAPSHOT_NUMEL = 8_000_000
EARLY_LOSSES = 25  # curve reads from here on may judge a short run...
LATE_LOSSES = 100  # ...on stricter evidence than from here on
EARLY_LOW_MEDIAN = 1e-5  # update/weight ratios of a too-low rate in a short run...
EARLY_LOW_PEAK = 1e-4  # ...with none of the sampled ones above this
SHORT_LOSSES = 45  # from the curve read at ~50 losses on, a flat loss with updates...
SHORT_LOW_MEDIAN = 1e-4  # ...of at most this median...
SHORT_LOW_PEAK = 3e-4  # ...and this peak update/weight ratio names a too-low rate
FLAT = 0.05  # a fall of the loss level smaller than this counts as "has not moved"
MOVED = 10.0  # a constant-start weight is judged again once its norm is this many times its first one,
MOVED_SAMPLES = 6  # or (zero at the start) once it has been away from zero for this many sampled steps
#: a loss whose swings are single batches (curves.isolated_spikes: heavy-tailed targets) says nothing of the
#: rate: only updates this large on the median sampled step (10x the healthy band's top) name it then
SPIKY_MEDIAN = 0.1
WRECKING = 0.3  # an update this large against the weights, followed by units that die/saturate
#: ...first seen dead/saturated by this step: activations are read at every step of the dense start (1-8)
#: and then every ~50 steps, so units that die at step 10-50 are first seen at the look after step 50
UNITS_LOST_BY = 60
_ACTIVATION_CODES = ("activation.dead-relu", "activation.saturated")


def current_lr(opt: torch.optim.Optimizer) -> float | None:
    lr = opt.param_groups[0].get("lr") if opt.param_groups else None
    if isinstance(lr, torch.Tensor):
        lr = float(lr)
    return float(lr) if isinstance(lr, (int, float)) else None


def update_ratio_summary(state: Any, skip_first: bool = True) -> dict[str, float] | None:
    """Median and peak update/weight ratio over the sampled steps measured so far."""
    rows = list(state.extra.get("nndoctor.update_ratios", ()))
    if skip_first and len(rows) > 2:
        rows = rows[1:]  # Adam's first step is sign(g) * lr whatever the gradient scale
    if not rows:
        return None
    meds = sorted(r["median"] for r in rows)
    return {"median": meds[len(meds) // 2], "peak": max(r["max"] for r in rows),
            "early": rows[0]["max"], "samples": float(len(rows)),
            "zero_fraction": sum(1 for r in rows if r["median"] == 0.0) / len(rows)}


class _UpdateProbe:
    """Copies a few large weights before a sampled step and measures the update after it."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._snap: list[tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor, str]] = []
        self._opt_id = 0
        self._constant: dict[int, bool] = {}  # param id -> all values equal when first measured
        self._first_moved: dict[int, float] = {}  # such a param's norm when first seen non-zero
        self._moved_seen: dict[int, int] = {}  # ... and the sampled steps it has been non-zero at
        self._zero: set[int] = set()  # params that started at exactly zero (a logits table)

    def before(self, opt: torch.optim.Optimizer, step: int) -> None:
        self._snap = []
        share = step_share(self.state)
        self._opt_id = id(opt)
        cands: list[torch.Tensor] = []
        for group in opt.param_groups:
            for p in group["params"]:
                if not isinstance(p, torch.Tensor) or not p.requires_grad:
                    continue
                if p.grad is not None and p.grad.is_sparse or not local(p).numel():
                    continue  # (a sharded parameter: this rank's shard is measured, when it has one)
                cands.append(p)  # (with a closure passed to step(), grads come later)
        self._note_constant(cands)
        self._note_moved(cands)
        # weights (not biases / norm scales), those with a gradient first, largest first
        cands.sort(key=lambda t: (t.dim() < 2, t.grad is None, -local(t).numel()))
        budget = MAX_SNAPSHOT_NUMEL
        for p in cands:
            if len(self._snap) >= 4:
                break
            if self._constant.get(id(p)):
                continue  # started constant (zeros, fill_): a ratio against it means nothing
            lp = local(p)
            if lp.numel() <= budget:
                budget -= lp.numel()
                self._snap.append((weakref.ref(p), share.copy_before(p, step, opt), self.state.param_name(p)))

    def _note_moved(self, params: list[torch.Tensor]) -> None:
        """Weights that started constant are judged again once they moved well away from it: their
        norm is 10x what it was after their first updates, or (zero-initialised) they have been away
        from zero for 6 sampled steps (a healthy rate's update is then ~1/6 of the weights or less,
        and a zero-initialised table trained at a too-high rate counts again)."""
        still = [p for p in params if self._constant.get(id(p)) and p.dim() >= 2]  # (a zero bias stays out)
        if not still:
            return
        norms = host_floats([torch.linalg.vector_norm(local(p).detach().float()) for p in still])
        for p, norm in zip(still, norms):
            first = self._first_moved.get(id(p))
            if not norm > 0 or norm != norm:
                continue
            if first is None:
                self._first_moved[id(p)] = norm
                self._moved_seen[id(p)] = 1
                continue
            self._moved_seen[id(p)] += 1
            if norm >= MOVED * first or (self._moved_seen[id(p)] >= MOVED_SAMPLES and id(p) in self._zero):
                self._constant[id(p)] = False

    def _note_constant(self, params: list[torch.Tensor]) -> None:
        """Which parameters hold a single value when the probe first meets them (at the optimizer's
        first sampled step: before any update), in one host transfer."""
        unseen = [p for p in params if id(p) not in self._constant]
        if not unseen:
            return
        shards = [local(p).detach() for p in unseen]
        spreads = host_floats([(t.amax() - t.amin()) if t.numel() else t.new_zeros(()) for t in shards])
        for p, t, spread in zip(unseen, shards, spreads):
            self._constant[id(p)] = spread == 0
            if spread == 0 and t.numel() and not bool(t.reshape(-1)[0]):
                self._zero.add(id(p))

    def after(self, opt: torch.optim.Optimizer, step: int) -> None:
        trained = [p for g in opt.param_groups for p in g["params"]
                   if isinstance(p, torch.Tensor) and p.requires_grad]
        self.state.extra["nndoctor.grad_reach"] = {
            "params": len(trained), "without_grad": sum(1 for p in trained if p.grad is None)}
        snap, self._snap = self._snap, []
        if id(opt) != self._opt_id or not snap:
            return
        diffs, norms, names = [], [], []
        share = step_share(self.state)
        for ref, before, name in snap:
            p = ref()
            diff = share.update_norm(p, step, opt) if p is not None else None  # (= Tensor.norm() of the update)
            if diff is None:
                continue
            diffs.append(diff)
            norms.append(torch.linalg.vector_norm(before.float()))
            names.append(name)
        if not diffs:
            return
        values = torch.stack(diffs + norms).cpu().tolist()  # the one host sync of this step
        d, w2 = values[: len(diffs)], values[len(diffs):]
        ratios = [di / wi if wi > 0 else (0.0 if di == 0 else float("inf")) for di, wi in zip(d, w2)]
        order = sorted(range(len(ratios)), key=lambda i: ratios[i])
        rows = self.state.extra.setdefault("nndoctor.update_ratios", collections.deque(maxlen=256))
        info = self.state.optimizers.get(id(opt))
        rows.append({"step": step, "median": ratios[order[len(order) // 2]], "max": ratios[order[-1]],
                     "param": names[order[-1]], "optimizer": info.name if info is not None else ""})




def _subject(ev: dict[str, Any]) -> str:
    """'learning rate 0.1 of opt (SGD)'; for a hand-written update, its estimated rate (or none)."""
    if ev["optimizer"] == HAND_WRITTEN:
        if ev["lr"] == "?":
            return f"the learning rate of {HAND_WRITTEN}"
        return f"the learning rate of {HAND_WRITTEN} (each update is about {ev['lr']}x the gradient)"
    return f"learning rate {ev['lr']} of {ev['optimizer']} ({ev['optimizer_class']})"


#: a summed training loss of this many terms is named in a too-high rate's message
MIN_SUMMED = 16


def summed_terms(loss: Any) -> int:
    """How many terms the training loss sums (``reduction='sum'``, or ``.sum()`` at its root); 0 for
    a mean or anything else."""
    fn = getattr(loss, "grad_fn", None)
    if fn is None:
        return 0
    try:
        if type(fn).__name__ == "SumBackward0":
            return math.prod(int(n) for n in fn._saved_self_sym_sizes)
        if getattr(fn, "_saved_reduction", None) == 2:  # (at::Reduction::Sum)
            target = getattr(fn, "_saved_target", None)
            if isinstance(target, torch.Tensor):
                return int(target.numel())
    except (AttributeError, RuntimeError, TypeError, ValueError):  # (saved values freed, or symbolic)
        return 0
    return 0


def _tidy(found: Finding) -> Finding:
    """Drop the evidence entries that only serve to fill in the fixes."""
    ev = {k: v for k, v in found.evidence.items() if k not in ("default_hint", "noise", "step_call")}
    return dataclasses.replace(found, evidence=ev)


#: update/weight ratios a raised learning rate aims at (the healthy band's middle and top)
LOW_TARGET_RATIOS = (1e-3, 1e-2)


def _damage_seen(curve: CurveAnalysis) -> bool:
    """The loss shows what large updates did to the weights: it jumped to at least twice its first
    value early on, or it ends clearly above where it began (beyond its batch-to-batch noise). A loss
    that stays level within its noise says nothing about the rate: a hard task in a short run (or a
    loss summed over the batch, whose small output layer moves far on every step) starts and ends at
    about the constant-prediction level whatever the rate, and a lower one only learns more slowly."""
    if curve.spike >= 2.0:
        return True
    ref = max(curve.initial, curve.start)
    if not (math.isfinite(ref) and math.isfinite(curve.end)):
        return False
    return curve.end - ref > max(2.0 * curve.sigma, 0.05 * abs(ref))


def _fmt_lr(x: float) -> str:
    return f"{x:.0e}" if x < 1e-2 else f"{x:.3g}"


@register
class LearningRate(Check):
    """The learning rate is too high (explosion / rise / oscillation with huge updates) or too low."""

    code = "lr.too-high"
    needs = ("step", "curve", "end", "backward")
    # the update-ratio probe; the curve is judged on "curve" events. (Without an optimizer every
    # backward is a step and reaches the checks: the hand-written update is measured between two.)
    sampled_only = frozenset({"step", "backward"})
    extra_codes = ("lr.too-low",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._probe = _UpdateProbe(state)
        self._reported: set[str] = set()
        #: a too-low rate, said at the end of the run: (finding, its optimizer's info, lr, loss level)
        self._held: tuple[Finding, Any, float, float] | None = None
        self._manual = ManualUpdates(state)  # a script with no optimizer: its hand-written update
        self._summed = 0  # the training loss is a sum of this many terms (0: a mean, or not known)

    def check(self, event: StepEvent | CurveDue | RunEnd | BackwardCall) -> Iterable[Finding]:
        if isinstance(event, BackwardCall):
            if event.sampled and not self._summed:
                self._summed = summed_terms(event.tensor)
            if not self.state.optimizers:
                self._manual.on_backward(event.tensor, event.step, event.sampled, event.index)
            else:
                self._manual.close()  # (an optimizer stepped after a first backward: its probe measures)
            return ()
        if isinstance(event, RunEnd):
            self._manual.close()
            return [*self._judge(final=True), *self._release()]
        if isinstance(event, CurveDue):
            return self._judge(final=False)
        if event.sampled:
            if event.phase == "pre":
                self._probe.before(event.optimizer, event.step)
            else:
                self._probe.after(event.optimizer, event.step)
        return ()

    # ------------------------------------------------------------------ judgement
    def _optimizer(self) -> tuple[str, str, float | None, list[float]]:
        opts = self.state.live_optimizers()
        if not opts:
            if self._by_hand():
                est = self.state.extra.get(MANUAL_LR_KEY) or {}
                return HAND_WRITTEN, "SGD written by hand", est.get("lr"), []
            return "optimizer", "", None, []
        info, opt = opts[0]
        _, lrs = self.state.lrs.series()
        return info.name, type(opt).__name__, current_lr(opt), lrs

    def _by_hand(self) -> bool:
        """No optimizer object ever stepped, and hand-written updates were measured."""
        return not self.state.optimizers and bool(self.state.extra.get("nndoctor.update_ratios"))

    def _judge(self, final: bool) -> list[Finding]:
        if len(self.state.live_optimizers()) != 1 and not self._by_hand() or len(self._reported) == 2:
            return []  # several optimizers (GANs...) take turns: their loss curves mix
        curve = analyze_losses(self.state)
        ratios = update_ratio_summary(self.state)
        out: list[Finding] = []
        if "lr.too-high" not in self._reported:
            found = self._too_high(curve, ratios, final)
            if found is not None:
                out.append(found)
        if "lr.too-low" not in self._reported:
            found = self._too_low(curve, ratios, final)
            if found is not None:  # said at the end: the script may abandon this rate for a better one
                opts = self.state.live_optimizers()
                lr = current_lr(opts[0][1]) if opts else None
                self._held = (found, opts[0][0] if opts else None, lr or 0.0, curve.end)
        return out

    def _release(self) -> list[Finding]:
        """The held too-low finding: info when a later, faster optimizer then trained the model well
        (a learning-rate sweep inside the script, :mod:`._lr_sweep`), else as found."""
        if self._held is None:
            return []
        found, info, lr, level = self._held
        self._held = None
        sweep = abandoned_for_better(self.state, info, lr, level) if info is not None else None
        if sweep is None:
            return [found]
        msg = (f"{found.message}; but the script then left this rate for a {sweep['later_lr']:.3g} one "
               f"({sweep['later_optimizer']}, {sweep['later_steps']} steps), which brought the loss down to "
               f"{sweep['later_loss']:.4g}: a rate tried and abandoned (a sweep), not the run's problem")
        return [dataclasses.replace(found, message=msg, severity=Severity.INFO,
                                    evidence={**found.evidence, "abandoned_for": sweep})]

    def _evidence(self, ratios: dict[str, float] | None, direction: str) -> dict[str, Any]:
        name, cls, lr, _ = self._optimizer()
        adaptive = cls in ADAPTIVE
        ev: dict[str, Any] = {"optimizer": name, "optimizer_class": cls or "the optimizer",
                              "lr": _fmt_lr(lr) if lr else "?",
                              "step_call": "the update" if name == HAND_WRITTEN else f"{name}.step()"}
        if ratios is not None:
            ev["update_ratio_median"] = float(f"{ratios['median']:.3g}")
            ev["update_ratio_peak"] = float(f"{ratios['peak']:.3g}")
            ev["sampled_steps"] = int(ratios["samples"])
        ev["healthy_update_ratio"] = "1e-4 to 1e-2 (about 1e-3)"
        if lr:
            if direction == "high":
                ev["suggest_low"], ev["suggest_high"] = _fmt_lr(lr / 100), _fmt_lr(lr / 10)
            elif ratios is not None and ratios["median"] > 0:
                # the rates whose updates are 1e-3 to 1e-2 of the weights (the update is proportional to
                # the rate), 10x to 10,000x the current one: a loss that barely moved needs the upper end
                low, high = (min(max(lr * r / ratios["median"], lr * 10), lr * 1e4) for r in LOW_TARGET_RATIOS)
                ev["suggest_low"], ev["suggest_high"] = _fmt_lr(low), _fmt_lr(max(high, low))
            else:
                ev["suggest_low"], ev["suggest_high"] = _fmt_lr(lr * 10), _fmt_lr(lr * 100)
        ev["default_hint"] = ("a common starting point is 3e-4 (1e-3 at most)" if adaptive
                              else "typical rates are 1e-3 to 1e-1 (0.01-0.1 with momentum 0.9)")
        return ev

    def _too_high(self, curve: CurveAnalysis, ratios: dict[str, float] | None, final: bool) -> Finding | None:
        early = not final and curve.n < LATE_LOSSES
        if early and (curve.n < EARLY_LOSSES and not curve.has("explodes")):
            return None  # mid-run, only a clear explosion is judged before 25 losses
        med = ratios["median"] if ratios else None
        peak = ratios["peak"] if ratios else None
        wrecked = self._units_lost_after_big_update()
        if wrecked is not None and not curve.has("explodes"):
            return self._report_high(ratios, wrecked[0], wrecked[1], Severity.WARNING, step=wrecked[1]["units_lost_step"])
        if early and not curve.has("explodes") and not (
                peak is not None and curve.never_improved and (peak >= 1.0 or curve.spike >= 2.0)
                and _damage_seen(curve)):
            return None  # before 100 losses: updates the size of the weights, and a loss that jumped
        why = ""
        severity = Severity.WARNING
        sym: dict[str, Any] = {}
        falls = curve.has("explodes") and bool(curve.symptoms["explodes"].get("falls"))
        if falls:
            return None  # a loss running off to -inf is unbounded below: its sign, not the rate (loss-curve)
        if curve.has("explodes") and (peak is None or peak >= 1e-2):
            sym = curve.symptoms["explodes"]
            if "nonfinite_step" in sym:
                why = (f"the loss grew {sym['growth']:.3g}x from {sym['start_loss']:.4g} and became "
                       f"{sym['value']} at step {sym['nonfinite_step']}")
            else:
                why = (f"the loss exploded from {sym['start_loss']:.4g} to {sym['peak_loss']:.4g} "
                       f"({sym['growth']:.3g}x) by step {sym['peak_step']}")
            severity = Severity.ERROR
        elif curve.has("goes-up") and med is not None and med >= 3e-2:
            sym = curve.symptoms["goes-up"]
            why = f"the loss went up from {sym['start_loss']:.4g} to {sym['end_loss']:.4g}"
        elif curve.has("oscillates") and med is not None and med >= (
                SPIKY_MEDIAN if curve.symptoms["oscillates"].get("isolated_spikes") else 1e-2):
            sym = curve.symptoms["oscillates"]
            why = (f"the loss oscillates between {sym['low']:.4g} and {sym['high']:.4g} without coming "
                   f"down (steps {sym['from_step']}-{sym['to_step']})")
            if sym.get("isolated_spikes"):
                why = (f"the loss spikes on single batches (up to {sym['high']:.4g}, steps {sym['from_step']}-"
                       f"{sym['to_step']}), which says nothing of the rate, while the updates are 10x the top of the "
                       "healthy band")
        elif (peak is not None and curve.never_improved and _damage_seen(curve)
              and (peak >= 0.5 or (curve.spike >= 5.0 and peak >= 0.3))):
            sym = {"initial_loss": curve.initial, "spike_loss": curve.early_peak,
                   "spike_step": curve.early_peak_step, "end_loss": curve.end}
            jump = (f"made the loss jump from {curve.initial:.4g} to {curve.early_peak:.4g} at step "
                    f"{curve.early_peak_step}, and it" if curve.spike >= 2.0 else "came first; the loss")
            why = (f"updates of up to {peak:.2g}x the weights' size {jump} never got clearly below its start "
                   f"({curve.initial:.4g}) again (now {curve.end:.4g}): the first updates wrecked the weights")
        if not why:
            return None
        if curve.has("goes-up") and sym is curve.symptoms["goes-up"] and sym.get("after_learning"):
            why = (f"the loss came down to {sym['min_loss']:.4g} and went back up to {sym['end_loss']:.4g}")
        return self._report_high(ratios, why, sym, severity)

    def _units_lost_after_big_update(self) -> tuple[str, dict[str, Any]] | None:
        """Units that died or saturated a few steps after an update as large as the weights."""
        observer = getattr(self.state, "observer", None)
        rows = list(self.state.extra.get("nndoctor.update_ratios", ()))
        if observer is None or not rows:
            return None
        held = self.state.extra.get("nndoctor.held_saturation", ())  # (said at the end: activations.HELD_KEY)
        for f in [*observer.findings, *held]:
            first = f.first_step or 0
            if f.code not in _ACTIVATION_CODES or not 2 <= first <= UNITS_LOST_BY:
                continue  # (units dead/saturated from the first step on are the init's doing)
            if f.severity is Severity.INFO:
                continue  # units lost, but the model learns well anyway: nothing was wrecked
            big = [r for r in rows if r["step"] < first and r["max"] >= WRECKING]
            if not big:
                continue
            top = max(big, key=lambda r: r["max"])
            what = "died" if f.code == "activation.dead-relu" else "saturated"
            why = (f"an update of {top['max']:.2g}x the size of {top['param']} at step {top['step']} was "
                   f"followed by units of {f.location} that {what} from step {first} ({f.code})")
            return why, {"big_update_step": top["step"], "big_update_ratio": float(f"{top['max']:.3g}"),
                         "big_update_param": top["param"], "units_lost": f.code, "units_lost_at": f.location,
                         "units_lost_step": first}
        return None

    def _last_loss_step(self) -> int:
        steps, _ = self.state.losses.series()
        return int(steps[-1]) if len(steps) else self.state.step

    @staticmethod
    def _flat(curve: CurveAnalysis) -> bool:
        """The loss level has not fallen by 5% and shows no other symptom."""
        if any(curve.has(k) for k in ("explodes", "goes-up", "oscillates")):
            return False
        if not (math.isfinite(curve.start) and math.isfinite(curve.end)):
            return False
        return curve.start - curve.end < FLAT * abs(curve.start)

    def _report_high(self, ratios: dict[str, float] | None, why: str, sym: dict[str, Any],
                     severity: Severity, step: int | None = None) -> Finding:
        med = ratios["median"] if ratios else None
        self._reported.add("lr.too-high")
        ev = {**self._evidence(ratios, "high"), **{k: v for k, v in sym.items() if k != "noise"}}
        if self._summed >= MIN_SUMMED and ev["optimizer_class"] not in ADAPTIVE:
            # (Adam-like rates are scale-free: a summed loss does not make their steps larger)
            ev["loss_summed_over"] = self._summed
            why += (f"; the loss is a sum of {self._summed} terms (reduction='sum' or .sum()): its gradient is "
                    f"{self._summed}x a mean's, so this rate acts like {self._summed}x itself on a mean loss "
                    f"(reduction='mean' is the default)")
        upd = (f"; each update changes the weights by {med:.2g} of their size (median over "
               f"{ev.get('sampled_steps', 0)} sampled steps, healthy ~1e-3)" if med is not None else "")
        return _tidy(self.finding(
            f"{_subject(ev)} is too high: {why}{upd}; try {ev.get('suggest_low', '?')}-{ev.get('suggest_high', '?')}"
            if ev["lr"] != "?" or ev["optimizer"] != HAND_WRITTEN else
            f"{_subject(ev)} is too high: {why}{upd}; try a rate 10-100x lower",
            ev, location=ev["optimizer"], severity=severity, step=step))

    def _too_low(self, curve: CurveAnalysis, ratios: dict[str, float] | None, final: bool) -> Finding | None:
        if ratios is None or curve.n < (50 if final else 30):
            return None
        med = ratios["median"]
        if med <= 0 or med >= 1e-4 or ratios["zero_fraction"] > 0.5:
            return None  # no update at all is grad-flow's business, not the learning rate's
        tiny = med < EARLY_LOW_MEDIAN and ratios["peak"] < EARLY_LOW_PEAK and ratios["samples"] >= 4
        if not tiny and curve.n >= SHORT_LOSSES and ratios["samples"] >= 6:
            # a short run (< ~100 steps) read again at ~50 losses: updates 10x below the healthy ~1e-3
            # on every sampled step, with a loss that has not moved, already name the rate
            tiny = med < SHORT_LOW_MEDIAN and ratios["peak"] < SHORT_LOW_PEAK
        if curve.has("plateaus"):
            sym = curve.symptoms["plateaus"]
        elif tiny and self._flat(curve):
            # updates this small cannot move the loss: a flat curve need not pass the plateau test
            sym = {"start_loss": curve.start, "end_loss": curve.end, "to_step": self._last_loss_step(),
                   "change": (curve.end - curve.start) / max(abs(curve.start), 1e-12)}
        else:
            return None
        if not final and curve.n < LATE_LOSSES and (
                not tiny or sym.get("at_constant_prediction") and sym.get("from_step", 1) > 1):
            return None  # a short run: only updates far below any working rate, on a flat loss
        base = self.state.extra.get("nndoctor.loss_baseline")
        if isinstance(base, (int, float)) and base > 0 and curve.end < 0.5 * base:
            return None  # already far better than a constant prediction: a fine-tuned or converged model
        name, cls, lr, lrs = self._optimizer()
        if lr is None or (cls not in ADAPTIVE and lr >= 1e-3):
            return None  # plain SGD with a normal rate: tiny updates mean tiny gradients
        if lrs and (lr < 0.5 * max(lrs) or (not final and lr > 1.5 * lrs[0])):
            return None  # decayed by a scheduler, or still warming up
        reach = self.state.extra.get("nndoctor.grad_reach") or {}
        if reach.get("params") and reach.get("without_grad", 0) > reach["params"] // 2:
            return None
        self._reported.add("lr.too-low")
        ev = {**self._evidence(ratios, "low"), **{k: v for k, v in sym.items() if k != "noise"}}
        ev.update(start_loss=round(curve.start, 6), end_loss=round(curve.end, 6), steps=curve.n)
        moved = abs(curve.end - curve.start) / max(abs(curve.start), 1e-12)
        return _tidy(self.finding(
            f"{_subject(ev)} is too low: the loss moved "
            f"{moved * 100:.2g}% in {curve.n} steps "
            f"({curve.start:.4g} -> {curve.end:.4g}) while each update changes the weights "
            f"by only {med:.2g} of their size (healthy ~1e-3); try {ev['suggest_low']}-{ev['suggest_high']}",
            ev, location=name, code="lr.too-low", step=sym.get("to_step") or None))
