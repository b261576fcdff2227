"""fit: overfitting and underfitting, judged from what the script itself evaluates.

* Overfitting (variance), judged at the end of the run: the losses the script computes without gradient (its
  validation loop, kept in ``state.eval_losses``) rise for several evaluations while the
  training loss keeps falling.
* Overfitting seen once (an evaluation only at the end, or too few to see a rise): at the end of
  the run, the training loss (median of the last 10% before the last evaluation) is below
  ``MEMORISED`` x the constant-prediction loss while the last evaluation's loss is at least
  ``HELD_OUT_NO_BETTER`` x it: the model memorised its training data and predicts held-out data
  (almost) no better than a constant.
* Underfitting (avoidable bias): the training loss has converged (no fall between the
  last two quarters of the run and no significant downward slope over the last quarter,
  judged against the noise; updates of a healthy size) but stays close to the loss of the
  best constant prediction (class priors or target mean), i.e. the model explains little.
  For token / per-position targets (language models, a vocabulary the model also reads)
  the loss that cannot be avoided is unknown and usually high: beating the unigram
  entropy is learning, so only a model stuck at the unigram level is a warning there, and
  a model that explains some of it is at most an ``info``. So is a baseline estimated
  from a sample that has not seen most of the class mass (low coverage), and a target that is
  random noise the script draws every step (noise prediction: diffusion, denoising; its floor is
  unknown and often close to the constant prediction's: :mod:`nndoctor.monitor.noise_targets`).

The constant-prediction loss is estimated here from the targets of a few training loss
calls (more while the sample covers a large vocabulary poorly) and shared as
``state.extra["nndoctor.loss_baseline"]``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding, Severity
from nndoctor.monitor.curves import (
    ConstantBaseline,
    analyze_losses,
    not_an_objective,
    per_step,
    rolling_median,
)
from nndoctor.monitor.events import LossCall, ModelInput, OpCall, RunEnd, Targets
from nndoctor.monitor.noise_targets import NOISE_OPS, NoiseTargets, noise_target
from nndoctor.monitor.target_scales import eval_loss_scale, target_scales

__all__ = ["Fit", "smoothing_window", "train_between"]

BASELINE_BATCHES = 8
MAX_BASELINE_BATCHES = 64  # more batches while a large vocabulary is poorly covered
MIN_COVERAGE = 0.95
SOFT_ENTROPY_BATCHES = 256
NATURE_CALLS = 16  # first training loss calls whose classes are checked for batch positions (InfoNCE)
EXPLAINS_LITTLE = 0.7  # the level above this share of the constant loss: little explained
AT_UNIGRAM = 0.95  # token targets: stuck at the unigram level
MEMORISED = 0.1  # training loss / constant-prediction loss: the training data is memorised
HELD_OUT_NO_BETTER = 0.5  # evaluation loss / constant-prediction loss: held-out data barely predicted


NOISE_WHY = ("the target is random noise the script draws every step (noise prediction: a diffusion or "
             "denoising objective), whose loss that cannot be avoided is unknown and often close to the "
             "constant prediction's")

#: the latest validation loss must stay within this share of its highest since the best
RECOVERED = 0.75
#: the noise a smoothed validation curve may keep, as a share of its level (a rise must be 10%)
SMOOTHED_NOISE = 0.02


def falling_tail(steps: np.ndarray, values: np.ndarray, level: float) -> tuple[bool, float]:
    """Whether the curve still falls over this stretch: the least-squares slope, judged
    against its standard error from the robust noise, and large enough to matter
    (over 0.5% of the level across the stretch). Returns (falling, drop across the stretch)."""
    if len(values) < 8:
        return False, 0.0
    x = steps.astype(np.float64)
    x = x - x.mean()
    sxx = float((x * x).sum())
    if sxx <= 0:
        return False, 0.0
    slope = float((x * (values - values.mean())).sum()) / sxx
    sigma = 1.4826 * float(np.median(np.abs(np.diff(values)))) / math.sqrt(2.0)
    se = sigma / math.sqrt(sxx)
    drop = -slope * float(x[-1] - x[0])
    return (slope < -3.0 * se and drop > 0.005 * abs(level)), drop


def _token_targets(models: Iterable[Any], n_classes: int) -> bool:
    """The classes are tokens the model also reads: an embedding table of about that size."""
    for model in models:
        for m in model.modules():
            if isinstance(m, nn.Embedding) and n_classes <= m.num_embeddings <= 2 * n_classes:
                return True
    return False


def _per_position(inp: Any, target: Any) -> bool:
    """One target per sequence position: (N, C, L...) logits, or targets flattened from a
    tensor with at least two non-trivial dimensions (``targets.view(-1)``)."""
    if inp.dim() >= 3:
        return True
    base = getattr(target, "_base", None)
    return base is not None and sum(int(d) > 1 for d in base.shape) >= 2


def train_between(steps: np.ndarray, values: np.ndarray, edges: list[int]) -> list[float]:
    """Mean training loss of each span ``(edges[i-1], edges[i]]`` (nan where empty)."""
    out = []
    lo = -math.inf
    for hi in edges:
        mask = (steps > lo) & (steps <= hi) & np.isfinite(values)
        out.append(float(values[mask].mean()) if mask.any() else float("nan"))
        lo = hi
    return out


def _soft_target_entropy(state: Any, target: Any) -> None:
    """Record the mean entropy of a batch of probability targets (mixup, soft labels): the floor of
    cross entropy moves with it from batch to batch (``curves.analyze_losses`` reads it)."""
    ents = state.extra.setdefault("nndoctor.soft_target_entropy", [])
    if len(ents) >= SOFT_ENTROPY_BATCHES or target.dim() < 2:
        return
    p = target.detach().float()
    p = p.movedim(1, -1).reshape(-1, p.shape[1])  # (rows, classes): the class dimension is 1
    ents.append(float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean()))


def smoothing_window(ev: np.ndarray) -> int:
    """How many evaluations the validation curve is smoothed over (a running median) before a rise
    is judged: none below 12 evaluations; else as many as make the median's noise (1.25 sigma /
    sqrt(w), sigma from the evaluations' successive differences) at most ``SMOOTHED_NOISE`` of the
    curve's level, at least 3 and at most a sixth of the evaluations. One small batch per evaluation
    (a noisy curve) is smoothed over a sixth of the run, as before; a whole validation set each epoch
    (a precise curve) over 3, so a minimum a few epochs wide is not flattened by 50 epochs around it."""
    n = len(ev)
    if n < 12:
        return 1
    widest = max(3, n // 6)
    level = float(np.median(np.abs(ev)))
    sigma = 1.4826 * float(np.median(np.abs(np.diff(ev)))) / math.sqrt(2.0)
    if level <= 0 or not math.isfinite(sigma):
        return widest
    need = math.ceil((1.25 * sigma / (SMOOTHED_NOISE * level)) ** 2)
    return min(widest, max(3, need | 1))


def _rise(history: Any, ts: np.ndarray, tv: np.ndarray,
          scale: float | None = 1.0, advancing: bool = False) -> tuple[int, dict[str, Any], str] | None:
    """The validation curve of ``history`` rising for several evaluations while the training loss
    (steps ``ts``, values ``tv``) falls: (step of the last evaluation, evidence, what happened).
    ``scale`` converts the validation losses into the training loss's units (None: they cannot be,
    the gap is not measured). ``advancing``: the run's optimizer steps advance, so evaluation losses that
    all share one step are the batches of one evaluation pass, not a curve."""
    raw_steps, raw_values = history.series()
    if advancing and len(raw_steps) >= 2 and raw_steps[0] == raw_steps[-1]:
        return None
    es, ev = per_step(raw_steps, raw_values)
    keep = np.isfinite(ev)
    es, ev = es[keep], ev[keep]
    if len(ev) < 3:
        return None
    train = np.asarray(train_between(ts, tv, [int(s) for s in es]))
    w = smoothing_window(ev)
    if w > 1:
        ev, train = rolling_median(ev, w), rolling_median(train, w)
    best = int(np.argmin(ev))
    last = len(ev) - 1
    if last - best < 2 or not math.isfinite(train[best]) or not math.isfinite(train[last]):
        return None
    val_best, val_last = float(ev[best]), float(ev[last])
    rose = val_last >= 1.1 * val_best and float(ev[last - 1]) >= 1.05 * val_best
    # overfitting climbs and stays up; a validation loss coming back down from a spike (an
    # unstable step, BatchNorm statistics catching up during warm-up) is not it
    rose = rose and val_last >= RECOVERED * float(np.max(ev[best + 1:]))
    train_fell = train[last] <= 0.95 * train[best]
    gap = None if scale is None else val_last * scale - float(train[last])
    if not (val_best > 0 and rose and train_fell and (gap is None or gap > 0.1 * abs(float(train[last])))):
        return None
    evidence = {"best_val_loss": round(val_best, 5), "best_step": int(es[best]),
                "last_val_loss": round(val_last, 5), "last_step": int(es[last]),
                "train_loss_at_best": round(float(train[best]), 5),
                "train_loss_last": round(float(train[last]), 5),
                "generalization_gap": None if gap is None else round(gap, 5),
                "evaluations": len(ev)}
    text = (f"the validation loss rose from {val_best:.4g} (step {es[best]}) to {val_last:.4g} (step {es[last]}) "
            f"while the training loss fell from {train[best]:.4g} to {train[last]:.4g}")
    if scale != 1.0:
        evidence["eval_loss_scale"] = None if scale is None else float(f"{scale:.4g}")
        text += ("; the validation loss is in other units (its targets are on another scale than the training "
                 "targets)" + ("" if gap is None else f": in the training loss's units, the gap (variance) is now "
                                                      f"{gap:.3g}"))
    else:
        text += f"; the gap (variance) is now {gap:.3g}"
    return int(es[last]), evidence, text


@register
class Fit(Check):
    """Validation loss rising while training loss falls; training loss stuck near a constant predictor."""

    code = "fit.overfitting"
    needs = ("op", "model_input", "loss", "targets", "end")
    sampled_only = frozenset({"model_input"})
    extra_codes = ("fit.underfitting",)
    ops = NOISE_OPS  # random tensors used as the loss's target (noise prediction)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._baseline = ConstantBaseline()
        self._loss_calls = 0
        self._done: set[str] = set()
        self._per_position = False
        #: classes that are the batch's own examples make the constant prediction a poor yardstick (a
        #: contrastive / InfoNCE loss: cross-entropy over the batch, target i = the positive of row i)
        self._class_calls = [0, 0]  # classification calls read, and those with one class per row
        self._noise = NoiseTargets(state)
        self._scales = target_scales(state)

    def check(self, event: OpCall | ModelInput | LossCall | Targets | RunEnd) -> Iterable[Finding]:
        if isinstance(event, Targets):
            self._scales.feed(event)  # (an evaluation loss in other units than the training loss)
            return ()
        if isinstance(event, OpCall):
            self._noise.on_op(event)
            return ()
        if isinstance(event, ModelInput):
            self._noise.on_input(event)
            return ()
        if isinstance(event, LossCall):
            self._noise.on_loss(event)
            self._on_loss(event)
            return ()
        return self._judge()

    def _on_loss(self, event: LossCall) -> None:
        if not event.grad_enabled or event.target is None:
            return
        self._loss_calls += 1
        if self._loss_calls <= NATURE_CALLS:
            self._note_target_nature(event)
        b = self._baseline
        if event.kwargs.get("weight") is not None or event.kwargs.get("pos_weight") is not None:
            b.mixed = True  # a class-weighted loss: the unweighted priors' loss is not its constant level
        if event.reduction == "sum":
            b.mixed = True  # summed over elements (a VAE's reconstruction term): not the per-element level
        if event.name == "cross_entropy" and event.target.is_floating_point() and event.target.shape == event.input.shape:
            _soft_target_entropy(self.state, event.target)
        enough = b.batches >= MAX_BASELINE_BATCHES or (b.batches >= BASELINE_BATCHES and b.coverage >= MIN_COVERAGE)
        if enough and not b.mixed:
            if self._loss_calls % 50 == 0:
                b.add(event.name, event.target[:0], None)  # notices a second loss
            return
        inp = event.input
        n_out = int(inp.shape[1]) if inp.dim() >= 2 else None
        if n_out and event.name in ("cross_entropy", "nll_loss") and _per_position(inp, event.target):
            self._per_position = True
        b.add(event.name, event.target, n_out)
        self.state.extra["nndoctor.loss_baseline"] = self._baseline.value()

    def _note_target_nature(self, event: LossCall) -> None:
        t, inp = event.target, event.input
        if event.name in ("cross_entropy", "nll_loss") and not t.is_floating_point():
            self._class_calls[0] += 1
            if t.dim() == 1 and t.numel() >= 8 and inp.dim() == 2 and int(inp.shape[1]) >= t.numel() - 1 \
                    and int(torch.unique(t).numel()) == t.numel():
                self._class_calls[1] += 1  # every row its own class, about as many classes as rows

    @property
    def _instance_targets(self) -> bool:
        """Every classification call read had one class per row (a batch of 64 from 1,000 classes has
        two rows of one class in 9 of 10 batches): the classes are the batch's own examples."""
        seen, distinct = self._class_calls
        return seen >= 3 and distinct == seen

    def _judge(self) -> list[Finding]:
        """At the end of the run only: a validation curve that rose for a few evaluations mid-run
        and came back below its best later (a high-learning-rate phase, BatchNorm statistics
        catching up, a one-cycle peak) was not overfitting, and a finding cannot be taken back."""
        out: list[Finding] = []
        if not_an_objective(self.state):
            return out  # (the training loss does not measure progress: nothing to compare it with)
        if "over" not in self._done:
            found = self._overfitting()
            if found is None:
                found = self._memorised()
            if found is not None:
                self._done.add("over")
                out.append(found)
        if "under" not in self._done:
            found = self._underfitting()
            if found is not None:
                self._done.add("under")
                out.append(found)
        return out

    # ------------------------------------------------------------------ overfitting
    def _overfitting(self) -> Finding | None:
        raw_ts, raw_tv = self.state.losses.series()
        advancing = len(raw_ts) >= 2 and raw_ts[0] != raw_ts[-1]
        ts, tv = per_step(raw_ts, raw_tv)
        curves = self._model_curves()
        if not curves:
            rise = _rise(self.state.eval_losses, ts, tv, eval_loss_scale(self.state), advancing)
            if rise is None:
                return None
            es_last, evidence, text = rise
            return self.finding(f"the model overfits: {text}", evidence, location="validation", step=es_last)
        # several models evaluated: the mixed curve compares different models' losses; each has its own
        # ... and the training losses of several are recorded together (every optimizer seen counts: judged at
        # the end of the run, when a script's optimizers may already be gone)
        mixed = len(self.state.optimizers) > 1
        scale = eval_loss_scale(self.state)
        risen = [(name, rise) for name, curve in curves
                 if (rise := _rise(curve, ts, tv, scale, advancing)) is not None]
        if not risen:
            return None
        name, (es_last, evidence, text) = risen[0]
        evidence = {"model": name, **evidence, "models_evaluated": [n for n, _ in curves]}
        if not mixed:
            return self.finding(f"{name} overfits: {text}", evidence, location="validation", step=es_last)
        others = ", ".join(n for n, _ in curves if n != name)
        evidence.pop("generalization_gap", None)  # (against the training losses of all of them: not its own)
        evidence["training_losses"] = "of all the models together"
        return self.finding(
            f"{name} may overfit: its own validation loss rose from {evidence['best_val_loss']:.4g} (step "
            f"{evidence['best_step']}) to {evidence['last_val_loss']:.4g} (step {es_last}); it is trained side "
            f"by side with {others} (each with its own optimizer) and the training losses "
            f"recorded are theirs together, so its own gap cannot be measured (the mixed training loss fell "
            f"from {evidence['train_loss_at_best']:.4g} to {evidence['train_loss_last']:.4g}): if that is not "
            f"what this run shows on purpose, regularise {name} or stop it earlier",
            evidence, location="validation", step=es_last, severity=Severity.INFO)

    def _model_curves(self) -> list[tuple[str, Any]]:
        """The evaluation curves of each model, where several models have one (at least 3 evaluations
        each); empty for a single evaluated model (or models unknown): the run's curve is its own."""
        curves = [(name, h) for name, h in self.state.eval_by_model.items() if name and len(h) >= 3]
        return sorted(curves, key=lambda c: c[0]) if len(curves) > 1 else []

    def _memorised(self) -> Finding | None:
        """Too few evaluations to see a rise: a training loss near 0 and a held-out loss near the
        constant prediction's say the same (a variance as large as the problem itself)."""
        base = self.state.extra.get("nndoctor.loss_baseline")
        if not base or base <= 0 or self._per_position or len(self.state.optimizers) > 1:
            return None
        raw_steps, raw_values = self.state.eval_losses.series()
        es, ev = np.asarray(raw_steps, dtype=np.int64), np.asarray(raw_values, dtype=np.float64)
        keep = np.isfinite(ev)
        es, ev = es[keep], ev[keep]
        if not len(ev):
            return None
        last_step = int(es[-1])
        at_last = es == last_step                 # one evaluation pass: its batches share a step
        val = float(np.mean(ev[at_last]))
        ts, tv = self.state.losses.series()
        t = np.asarray(tv, dtype=np.float64)[np.asarray(ts) <= last_step]
        t = t[np.isfinite(t)]
        if len(t) < 50:
            return None
        train = float(np.median(t[-max(5, len(t) // 10):]))
        scale = eval_loss_scale(self.state)
        if scale is None:
            return None  # (an evaluation loss in other units that do not convert: not comparable)
        shown, val = val, val * scale  # (the script's own figure; in the training loss's units)
        if not (train < MEMORISED * base and val >= HELD_OUT_NO_BETTER * base and val > 10 * max(train, 0.0)):
            return None
        evaluations = len(set(int(s) for s in es))
        evidence = {"last_val_loss": round(shown, 5), "last_step": last_step, "train_loss_last": round(train, 5),
                    "constant_loss": round(float(base), 5), "generalization_gap": round(val - train, 5),
                    "evaluations": evaluations, "eval_batches_last": int(at_last.sum()), "memorised": True,
                    "best_step": "unknown: evaluate every epoch to find it"}
        units = ""
        if scale != 1.0:
            evidence["eval_loss_scale"] = float(f"{scale:.4g}")
            units = f" ({val:.4g} in the training loss's units: its targets are on another scale)"
        return self.finding(
            f"the model overfits: it memorised the training data (training loss {train:.4g}, under "
            f"{MEMORISED:g}x the {float(base):.4g} of a constant prediction) while the held-out loss at step "
            f"{last_step} is {shown:.4g}{units}, {val / base:.2g}x that constant prediction's: the gap (variance) "
            f"is {val - train:.3g}", evidence, location="validation", step=last_step)

    # ------------------------------------------------------------------ underfitting
    def _underfitting(self) -> Finding | None:
        base = self.state.extra.get("nndoctor.loss_baseline")
        if not base or base <= 0 or len(self.state.optimizers) > 1:
            return None  # (several optimizers, e.g. a GAN: the recorded losses take turns)
        curve = analyze_losses(self.state)
        if curve.n < 100 or any(curve.has(s) for s in ("explodes", "goes-up", "oscillates", "plateaus")):
            return None
        ratios = self.state.extra.get("nndoctor.update_ratios") or ()
        meds = sorted(r["median"] for r in ratios)
        if meds and meds[len(meds) // 2] < 1e-4:
            return None  # tiny updates: the learning rate, not the model
        ts, tv = per_step(*self.state.losses.series())
        keep = np.isfinite(tv)
        if keep.sum() < 100:
            return None  # too few finite losses (the run went non-finite): nothing to judge
        ts, tv = ts[keep], tv[keep]
        q = len(tv) // 4
        last_q, prev_q = tv[-q:], tv[-2 * q:-q]
        level, before = float(np.median(last_q)), float(np.median(prev_q))
        sigma = 1.4826 * float(np.median(np.abs(np.diff(tv[-2 * q:])))) / math.sqrt(2.0)
        se = 1.25 * sigma / math.sqrt(q)
        # converged: no fall between the last two quarters beyond noise (and 0.5% of the
        # level), and no significant downward slope within the last quarter
        fell = before - level > max(4.0 * math.sqrt(2.0) * se, 0.005 * abs(level))
        still, drop = falling_tail(ts[-q:], last_q, level)
        first = max(curve.start, curve.initial)
        learned = first - level >= 0.1 * abs(first)
        floor = min(self._baseline.floor(), 0.99 * base)  # soft BCE targets: even a perfect model pays it
        if fell or still or not learned or level - floor < EXPLAINS_LITTLE * (base - floor):
            return None
        classes = self._baseline.n_classes
        tokens = self._per_position or (classes is not None and _token_targets((m for _, m in self.state.live_models()), classes))
        coverage = self._baseline.coverage
        noise = noise_target(self.state)
        weak = coverage < MIN_COVERAGE or (tokens and level < AT_UNIGRAM * base) or noise or self._instance_targets
        evals = self.state.eval_losses
        val = float(np.median(evals.last(16))) if len(evals) else None
        evidence = {"train_loss": round(level, 5), "constant_prediction_loss": round(base, 5),
                    "explained": round(1 - (level - floor) / (base - floor), 3), "start_loss": round(curve.start, 5),
                    "steps": int(ts[-1]), "last_quarter_drop": round(drop, 5),
                    "token_targets": bool(tokens), "noise_targets": noise, "baseline_coverage": round(coverage, 3),
                    "instance_targets": self._instance_targets}
        if val is not None:
            evidence["val_loss"] = round(val, 5)
        if floor:
            evidence["target_entropy_floor"] = round(floor, 5)
        if weak:
            if noise:
                why = NOISE_WHY
            elif self._instance_targets:
                why = ("the classes are the batch's own examples (a contrastive / InfoNCE loss): its lowest "
                       "reachable value depends on the temperature and the negatives, not on a constant prediction")
            elif tokens and level < AT_UNIGRAM * base:
                why = ("a language-model-like task (token targets) has an unknown, often high loss that cannot "
                       "be avoided, and the model does beat the unigram level")
            else:
                why = f"the constant-prediction loss comes from a sample covering {coverage:.0%} of the classes"
            return self.finding(
                f"the training loss flattened at {level:.4g}, {level / base:.0%} of the {base:.4g} a constant "
                f"prediction gets; a bigger model may do better, but the evidence is weak: {why}",
                evidence, location="training", code="fit.underfitting", severity=Severity.INFO)
        return self.finding(
            f"the model underfits: the training loss converged at {level:.4g}, {level / base:.0%} of the "
            f"{base:.4g} a constant prediction (class priors / target mean) gets; the model explains "
            f"little of the data (avoidable bias)", evidence, location="training", code="fit.underfitting")
