"""loss-curve: the loss goes up, explodes, oscillates or plateaus.

The four symptoms of the field guide's overfit-a-batch table, found on a smoothed,
noise-aware view of the training loss (:mod:`nndoctor.monitor.curves`), each reported
with its likely causes ranked by the evidence nndoctor has: the update-to-weight ratio
measured by the lr check, parameters that got no gradient, the optimizer's settings and
the findings of other checks in this run (a plateau with dead units or missing gradients
points to grad-flow, an oscillation with huge updates to the learning rate...).

The loss history is read on the observer's ``curve`` events (every 25 recorded losses at first,
then every 1/4 of the run after 200, every 1/2 while nothing was found) and at the end of the run.
An explosion is reported as soon as it is seen; the other symptoms mid-run only after a
long stretch of steps, otherwise at the end (warm-up, schedulers and a slow start must not
raise a false alarm). A plateau of a loss whose target is random noise the script draws every step
(noise prediction: diffusion, denoising; :mod:`nndoctor.monitor.noise_targets`) is info: its floor
is unknown and often close to the constant prediction's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.curves import CurveAnalysis, analyze_losses
from nndoctor.monitor.events import CurveDue, RunEnd
from nndoctor.monitor.noise_targets import noise_target

__all__ = ["LossCurve", "rank_causes"]

#: points of the (per-step) curve needed before a symptom other than an explosion is judged
MIN_POINTS_FINAL = 30
MIN_POINTS_LIVE = 150
#: a plateau is reported mid-run only once it has lasted this many steps (a slow start can sit at
#: the constant prediction's loss for several hundred steps, e.g. Adam at 1e-3 through a 2-unit
#: embedding, and then learn); a shorter one is judged at the end of the run, on the whole curve
LIVE_PLATEAU_STEPS = 1000

_FIX = {
    "lr-high": "Lower the learning rate 10-100x{lr} or add warm-up and gradient clipping.",
    "lr-low": "Raise the learning rate 10-100x{lr}; the updates are tiny.",
    "sign": "Check the sign: minimise the loss (no `-loss`, no `maximize=True`, `p -= lr * p.grad`).",
    "numerics": "Guard exp/log/division: use log_softmax/logsumexp, F.*_with_logits losses, add eps.",
    "labels": "Check the data and labels: shuffle inputs and labels together, check preprocessing.",
    "grad-flow": "Make gradients reach every layer: no .detach()/.item()/numpy in the forward, "
                 "requires_grad on trainable layers, and the optimizer built over model.parameters().",
    "loss-input": "Feed the loss what it expects: raw logits to CrossEntropyLoss/BCEWithLogitsLoss, "
                  "softmax over the class dimension, no ReLU on the output.",
    "regularization": "Reduce regularisation (weight decay, dropout) and check the loss again.",
    "capacity": "If updates and gradients look healthy, the model may be too small for the data.",
}
_CAUSE = {
    "lr-high": "learning rate too high", "lr-low": "learning rate too low",
    "sign": "flipped sign of the loss or the gradient", "numerics": "numerical issue (exp, log, division)",
    "labels": "corrupted data or labels", "grad-flow": "gradients not flowing through the whole model",
    "loss-input": "wrong input to the loss", "regularization": "too much regularisation",
    "capacity": "model too small for the data",
}


def rank_causes(symptom: str, curve: CurveAnalysis, ev: dict[str, Any]) -> list[tuple[str, str]]:
    """Likely causes of ``symptom``, most likely first, each with the evidence behind it."""
    med, peak = ev.get("update_ratio_median"), ev.get("update_ratio_peak")
    seen: set[str] = set(ev.get("other_findings", ()))
    ranked: list[tuple[str, str]] = []

    def add(cause: str, why: str) -> None:
        if cause not in {c for c, _ in ranked}:
            ranked.append((cause, why))

    big = f"updates of {med:.2g}x the weights' size per step (healthy ~1e-3)" if med is not None else ""
    if ev.get("maximize"):
        add("sign", "the optimizer has maximize=True")
    if symptom == "goes-up":
        if med is not None and med >= 3e-2:
            add("lr-high", big)
        add("sign", "the loss rises steadily" + (" with normal-sized updates" if med is not None else ""))
        if "loss-input" in seen:
            add("loss-input", "a loss-input finding in this run")
        add("lr-high", big or "a common cause")
    elif symptom == "explodes":
        if ev.get("falls"):
            add("sign", "the loss runs off to large negative values: the objective is unbounded below, "
                        "which a too-high learning rate does not make")
        if "numerics" in seen:
            add("numerics", "a numerics finding in this run")
        if ev.get("steady_rise", 0) >= 0.7 and (peak is None or peak < 3e-2):
            add("sign", f"the loss {'fell' if ev.get('falls') else 'climbed'} steadily "
                        f"({ev['steady_rise']:.0%} of steps {'down' if ev.get('falls') else 'up'}) "
                        "rather than blowing up at once")
        if peak is not None and peak >= 1e-2:
            add("lr-high", f"updates of up to {peak:.2g}x the weights' size")
        if curve.end < 0 < curve.initial or ev.get("peak_loss", 0) < 0:
            add("sign", "the loss runs off to large negative values")
        add("numerics", "exp/log/division overflow")
        add("lr-high", "a common cause")
    elif symptom == "oscillates":
        if "labels" in seen or "preprocessing" in seen:
            add("labels", "a labels/preprocessing finding in this run")
        if med is not None and med >= 1e-2:
            add("lr-high", big)
        add("labels", "swings of this size without progress")
        add("lr-high", big or "a common cause")
    else:  # plateaus
        if peak is not None and curve.never_improved and (peak >= 0.5 or (curve.spike >= 5 and peak >= 0.3)):
            add("lr-high", f"early updates of up to {peak:.2g}x the weights' size"
                           + (f"; the loss jumped {curve.spike:.3g}x at step {curve.early_peak_step}"
                              if curve.spike >= 2 else ""))
        for cat in ("grad-flow", "grad", "activation", "zero-grad"):
            if cat in seen:
                add("grad-flow", f"a {cat} finding in this run")
        if ev.get("without_grad"):
            add("grad-flow", f"{ev['without_grad']} of {ev['params']} trained parameters got no gradient")
        if med is not None and 0 < med < 1e-4:
            add("lr-low", big)
        if med is not None and med == 0:
            add("grad-flow", "the weights did not change")
        for cat, cause in (("loss-input", "loss-input"), ("regularization", "regularization"),
                           ("labels", "labels"), ("preprocessing", "labels")):
            if cat in seen:
                add(cause, f"a {cat} finding in this run")
        if med is not None and med >= 1e-4 and not ranked:
            add("capacity", f"{big}: the weights move, yet the loss does not")
        for cause in ("lr-low", "grad-flow", "regularization", "loss-input", "labels"):
            add(cause, "a common cause")
    return ranked


def _staged(ev: dict[str, Any]) -> bool:
    """A loss that rose in a few jumps and fell in between (curves.staircase), with updates of a
    normal size: the data or the schedule changed, not the direction of the updates."""
    med = ev.get("update_ratio_median")
    return bool(ev.get("jumps_up")) and not ev.get("maximize") and (med is None or med < 3e-2)


#: a loss whose typical (median) level fell by at least this share while it spikes is learning
SPIKY_FALL = 0.3


def _spikes_while_learning(ev: dict[str, Any], curve: CurveAnalysis) -> bool:
    """An "oscillation" seen only as spikes above the start (its swings around the trend are not
    wide) while the median level came down clearly, with update/weight ratios under the 1e-2 at which
    a swinging loss is put on the learning rate: the loss is not "without coming down", it learns
    with brief excursions (a ReLU RNN's exploding-forward cliffs under gradient clipping, rare hard
    batches). Weak evidence of a fault: info, not a warning."""
    med = ev.get("update_ratio_median")
    if not ev.get("spikes_only") or (med is not None and med >= 1e-2):
        return False
    if not (curve.start > 0 and curve.end == curve.end):
        return False
    return curve.end <= (1.0 - SPIKY_FALL) * curve.start


@register
class LossCurve(Check):
    """One of the four overfit-a-batch symptoms in the training loss."""

    code = "loss-curve.plateaus"
    needs = ("curve", "end")
    extra_codes = ("loss-curve.goes-up", "loss-curve.explodes", "loss-curve.oscillates")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._reported: set[str] = set()

    def check(self, event: CurveDue | RunEnd) -> Iterable[Finding]:
        return self._judge(final=isinstance(event, RunEnd))

    def _judge(self, final: bool) -> list[Finding]:
        curve = analyze_losses(self.state)
        several = len(self.state.optimizers) > 1  # GANs, alternating updates: losses take turns
        out = []
        for symptom in ("explodes", "goes-up", "oscillates", "plateaus"):
            if symptom in self._reported or not curve.has(symptom):
                continue
            if symptom != "explodes":
                if several or curve.n < (MIN_POINTS_FINAL if final else MIN_POINTS_LIVE):
                    continue
                if symptom == "plateaus" and (curve.n < 50 or self._warming_up(final)
                                              or curve.symptoms[symptom].get("still_falling")):
                    continue  # (a loss that keeps falling steadily is slow, not stuck: lr's business)
                if symptom == "plateaus" and not final and self._short(curve.symptoms[symptom]):
                    continue  # the end of the run shows whether it was a slow start
                if "explodes" in self._reported:
                    continue  # one symptom of one failure is enough
                if not final and curve.symptoms[symptom].get("recent_jump"):
                    continue  # one jump up just now: a curriculum's next stage shows whether it comes down
                if symptom == "plateaus" and self._slow_progress(curve.symptoms[symptom], final):
                    continue
            out.append(self._finding(symptom, curve))
            self._reported.add(symptom)
        return out

    @staticmethod
    def _slow_progress(sym: dict[str, Any], final: bool) -> bool:
        """A "plateau" whose points keep falling, judged by Mann-Kendall's trend z (about N(0, 1) on
        a flat curve, whatever its noise): slow progress, not a stuck loss.

        A fall of >= 0.5% of the level with z <= -3 (a flat curve gets there by chance ~0.1% of
        the time) is progress: a VAE or a BCE on soft targets sits far above zero, so its reducible
        part is a few percent of the level (a vanishing learning rate falls steadily too, by
        nothing: the 0.5% floor is curves.still_falling's). A level that moved more than 3% but less than its noise lets the
        medians tell, and leans downwards (z <= -1), waits for the end, when every step is in.
        """
        z = sym.get("trend_z", 0.0)
        if z <= -3.0 and -sym.get("change", 0.0) >= 0.005:
            return True
        return bool(sym.get("within_noise")) and z <= (-3.0 if final else -1.0)

    @staticmethod
    def _short(sym: dict[str, Any]) -> bool:
        return int(sym.get("to_step", 0)) - int(sym.get("from_step", 0)) < LIVE_PLATEAU_STEPS

    def _warming_up(self, final: bool) -> bool:
        _, lrs = self.state.lrs.series()
        if len(lrs) < 2 or lrs[0] <= 0:
            return False
        if final:
            return lrs[-1] > 1.5 * lrs[len(lrs) // 2]  # still rising in the second half
        return lrs[-1] > 1.5 * lrs[0]

    def _evidence(self, curve: CurveAnalysis, symptom: str) -> dict[str, Any]:
        ev: dict[str, Any] = {k: (round(v, 6) if isinstance(v, float) else v)
                              for k, v in curve.symptoms[symptom].items()}
        ev["noise"] = round(curve.sigma, 6)
        rows = list(self.state.extra.get("nndoctor.update_ratios", ()))[1:]
        if rows:
            meds = sorted(r["median"] for r in rows)
            ev["update_ratio_median"] = float(f"{meds[len(meds) // 2]:.3g}")
            ev["update_ratio_peak"] = float(f"{max(r['max'] for r in rows):.3g}")
        reach = self.state.extra.get("nndoctor.grad_reach") or {}
        if reach.get("without_grad"):
            ev["without_grad"], ev["params"] = reach["without_grad"], reach["params"]
        opts = self.state.live_optimizers()
        if opts:
            opt = opts[0][1]
            group = opt.param_groups[0] if opt.param_groups else {}
            lr = group.get("lr")
            ev["lr"] = f"{float(lr):.3g}" if isinstance(lr, (int, float)) else "?"
            ev["maximize"] = bool(group.get("maximize", False))
        baseline = self.state.extra.get("nndoctor.loss_baseline")
        if baseline:
            ev["constant_prediction_loss"] = round(baseline, 6)
        observer = self.state.observer
        if observer is not None:
            ev["other_findings"] = sorted({f.category for f in observer.sink.findings()
                                           if f.category not in ("loss-curve", "fit")})
        return ev

    def _finding(self, symptom: str, curve: CurveAnalysis) -> Finding:
        ev = self._evidence(curve, symptom)
        causes = rank_causes(symptom, curve, ev)
        ev["likely_causes"] = [f"{_CAUSE[c]} ({why})" for c, why in causes[:4]]
        for i in range(3):
            now = f" (now {ev['lr']})" if ev.get("lr", "?") != "?" else ""
            ev[f"fix{i + 1}"] = _FIX[causes[i][0]].format(lr=now) if i < len(causes) else ""
        top = f"most likely {_CAUSE[causes[0][0]]} ({causes[0][1]})" if causes else ""
        if symptom == "explodes":
            if "nonfinite_step" in ev:
                what = (f"the loss explodes: it grew {ev['growth']:.3g}x from {ev['start_loss']:.4g} and "
                        f"became {ev['value']} at step {ev['nonfinite_step']}")
            else:
                what = (f"the loss explodes: {ev['start_loss']:.4g} -> {ev['peak_loss']:.4g} "
                        f"({ev['growth']:.3g}x) by step {ev['peak_step']}")
            at = ev.get("nonfinite_step", ev.get("peak_step"))
        elif symptom == "goes-up":
            frm = (f"its minimum {ev['min_loss']:.4g} (step {ev['min_step']})" if ev.get("after_learning")
                   else f"{ev['start_loss']:.4g}")
            what = f"the loss goes up: from {frm} to {ev['end_loss']:.4g} by step {ev['to_step']}"
            at = ev["to_step"]
            if _staged(ev):
                what += (f", in {ev['jumps_up']} jump{'s' if ev['jumps_up'] > 1 else ''} with the loss falling "
                         "around them: data that gets "
                         "harder (a curriculum), new data, or learning-rate restarts do this while the "
                         "model learns; a flipped sign or a too-high learning rate makes it climb instead")
                top = ""
        elif symptom == "oscillates":
            what = (f"the loss oscillates between {ev['low']:.4g} and {ev['high']:.4g} around "
                    f"{ev['level']:.4g} without coming down (steps {ev['from_step']}-{ev['to_step']})")
            at = ev["from_step"]
            if ev.get("isolated_spikes"):
                what = (f"the loss spikes on single batches (steps {ev['from_step']}-{ev['to_step']}: 90th "
                        f"percentile {ev['high']:.4g}, mean {ev['level']:.4g}), and the next batch's loss is back at "
                        "its level: outlier examples (heavy-tailed targets, rare hard examples) make single "
                        "batches costly; weights knocked off by too large an update stay off for several steps. "
                        "A robust loss (Huber, L1 on a log scale) or clipping the targets tames them")
                top = ""
            elif _spikes_while_learning(ev, curve):
                what = (f"the loss spikes above its start on {ev['above_start_fraction']:.0%} of steps "
                        f"{ev['from_step']}-{ev['to_step']} (90th percentile {ev['high']:.4g}) while its typical level "
                        f"came down from {curve.start:.4g} to {curve.end:.4g}, with updates of a normal size: "
                        "brief instabilities (a recurrent net's cliffs caught by clipping, a few hard batches) "
                        "the model recovers from; frequent spikes are worth a look")
                ev["spikes_while_learning"] = True
                top = ""
        else:
            where = (f", no better than a constant prediction ({ev['constant_prediction_loss']:.4g})"
                     if ev.get("at_constant_prediction") else "")
            what = (f"the loss plateaus at {ev['end_loss']:.4g}{where}: {ev['start_loss']:.4g} -> "
                    f"{ev['end_loss']:.4g} ({ev['change'] * 100:+.2g}%) from step {ev['from_step']} to "
                    f"{ev['to_step']} (per-step noise {ev['noise']:.2g})")
            at = ev["to_step"]
            if noise_target(self.state):
                ev["noise_targets"] = True
                what += (", but the target is random noise the script draws every step (noise prediction: a "
                         "diffusion or denoising objective): the loss it cannot avoid is unknown and often close "
                         "to the constant prediction's, so a flat loss is weak evidence")
        severity = Severity.ERROR if symptom == "explodes" else Severity.WARNING
        if ((symptom == "goes-up" and _staged(ev)) or ev.get("noise_targets") or ev.get("spikes_while_learning")
                or (symptom == "oscillates" and ev.get("isolated_spikes"))):
            severity = Severity.INFO
        found = self.finding(f"{what}; {top}" if top else what, ev, location="loss", code=f"loss-curve.{symptom}",
                             severity=severity, step=at)
        shown = {k: v for k, v in found.evidence.items() if not k.startswith("fix")}
        return dataclasses.replace(found, fixes=tuple(f for f in found.fixes if f), evidence=shown)
