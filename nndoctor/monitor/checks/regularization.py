"""regularization: weight decay that dominates the update, dropout too strong to learn.

* Weight decay, at sampled ``step`` pre events, per parameter group: for L2-style decay
  (SGD, Adam, RMSprop ``weight_decay``) the decay term wd*|w| is compared with the
  gradient |g| over the entries this batch gives a gradient (an embedding's unused rows are
  decayed, not held back); for decoupled decay (AdamW) wd*|w| is compared with Adam's
  normalised step m/sqrt(v) (at the first step: sign(g), which is what Adam applies then).
  A group warns when the decay wins (ratio >= 1, AdamW >= 0.5) at >= 3 sampled steps while
  the weights shrink; a decay about the size of the gradient (winning at some sampled steps
  only, with a median ratio under 1.5x the limit) also needs the training loss held back: not while it still falls (a drop of
  >= 5% from its first tenth to its last and a Mann-Kendall trend z <= -3 over the second
  half of at least 10 losses; fewer losses: judged at the end of the run). Healthy
  settings sit at ratios of 0.001-0.05.
* Dropout, from ``op`` events of ``F.dropout`` (``nn.Dropout`` calls it too) in training
  forwards: p >= 0.8 is reported after a few sampled batches (almost always a keep
  probability passed as a drop probability); 0.65 <= p < 0.8 only at the end of the run,
  when the training loss has barely fallen.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch.nn.modules.dropout import _DropoutNd

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import fmt, host_floats
from nndoctor.monitor.curves import per_step, trend_z
from nndoctor.monitor.events import OpCall, RunEnd, StepEvent

__all__ = ["DropoutTooStrong", "WeightDecayDominates"]

logger = logging.getLogger("nndoctor")

COUPLED_RATIO = 1.0
DECOUPLED_RATIO = 0.5
MIN_HITS = 3
SHRINK = 0.97  # weight norm at the latest sampled step / at the first one
LEARNING_DROP = 0.05  # the training loss fell by this share of its first level ...
LEARNING_Z = -3.0  # ... and its second half still trends down (Mann-Kendall z): not held back
MIN_LOSSES = 10  # fewer training losses: the loss trend is judged at the end of the run
MARGINAL = 1.5  # a median ratio under this x the limit is "about the gradient": needs the loss held back

DROPOUT_STRONG = 0.8
DROPOUT_SUSPECT = 0.65
STUCK = 0.8  # late training loss / early training loss that counts as "barely fell"


@dataclass
class _Group:
    decoupled: bool
    wd: float
    lr: float
    samples: list[tuple[int, float, float]] = field(default_factory=list)  # step, ratio, |w|
    reported: bool = False
    where: str = ""
    optimizer: str = ""


@register
class WeightDecayDominates(Check):
    """The weight-decay term outweighs the gradient, so weights shrink instead of learning."""

    code = "regularization.weight-decay-too-strong"
    needs = ("step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.groups: dict[tuple[int, int], _Group] = {}

    def check(self, event: StepEvent | RunEnd) -> Iterable[Finding]:
        if isinstance(event, RunEnd):
            return self._at_end()
        if event.phase != "pre" or not event.sampled:
            return ()
        opt = event.optimizer
        probes: list[torch.Tensor] = []
        plan: list[tuple[int, dict[str, Any], bool]] = []
        for gi, group in enumerate(opt.param_groups):
            wd = group.get("weight_decay")
            if not isinstance(wd, (int, float)) or isinstance(wd, bool) or wd <= 0:
                continue
            known = self.groups.get((id(opt), gi))
            if known is not None and known.reported:
                continue
            params = [p for p in group["params"] if isinstance(p, torch.Tensor) and p.grad is not None
                      and not p.grad.is_sparse]
            if not params:
                continue
            decoupled = type(opt).__name__ == "AdamW" or bool(group.get("decoupled_weight_decay"))
            w_sq = torch.stack([p.detach().float().square().sum().to(params[0].device) for p in params]).sum()
            if decoupled:  # (the decay and Adam's step, which momentum keeps going, touch every entry)
                d_sq = torch.stack([self._adam_step(opt, p, group).to(params[0].device) for p in params]).sum()
                active_sq = w_sq
            else:
                d_sq = torch.stack([p.grad.detach().float().square().sum().to(params[0].device)
                                    for p in params]).sum()
                # L2 against the gradient where this batch gives one: an embedding's unused rows (no
                # gradient this step) are decayed, not held back from learning
                active_sq = torch.stack([p.detach().float().square().mul(p.grad.detach() != 0).sum()
                                         .to(params[0].device) for p in params]).sum()
            probes += [w_sq, d_sq, active_sq]
            plan.append((gi, group, decoupled))
        if not probes:
            return ()
        values = host_floats(probes)
        out: list[Finding] = []
        for i, (gi, group, decoupled) in enumerate(plan):
            w_norm, d_norm, active = (math.sqrt(max(v, 0.0)) for v in values[3 * i:3 * i + 3])
            if not (math.isfinite(w_norm) and math.isfinite(d_norm) and math.isfinite(active)) or d_norm == 0:
                continue
            wd = float(group["weight_decay"])
            lr = group.get("lr") if isinstance(group.get("lr"), (int, float)) else float("nan")
            info = self.groups.setdefault((id(opt), gi), _Group(decoupled, wd, float(lr)))
            info.samples.append((event.step, wd * active / d_norm, w_norm))
            del info.samples[8:-16]
            info.where = event.optimizer_name if len(opt.param_groups) == 1 else \
                f"{event.optimizer_name}.param_groups[{gi}]"
            info.optimizer = f"{event.optimizer_name} ({type(opt).__name__})"
            found = self._judge(info, final=False)
            if found is not None:
                out.append(found)
        return out

    @staticmethod
    def _adam_step(opt: torch.optim.Optimizer, p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
        """Squared norm of Adam's normalised step m_hat / (sqrt(v_hat) + eps) for ``p``."""
        st = opt.state.get(p, {})
        if "exp_avg" not in st or "exp_avg_sq" not in st or "step" not in st:
            return (p.grad.detach() != 0).sum().float()  # first step: |sign(g)|^2
        t = float(st["step"])
        b1, b2 = group.get("betas", (0.9, 0.999))
        eps = group.get("eps", 1e-8)
        m_hat = st["exp_avg"].float() / (1 - b1 ** t)
        v_hat = st["exp_avg_sq"].float() / (1 - b2 ** t)
        return (m_hat / (v_hat.sqrt() + eps)).square().sum()

    def _at_end(self) -> list[Finding]:
        out = []
        for info in self.groups.values():
            found = self._judge(info, final=True)
            if found is not None:
                out.append(found)
        return out

    def _loss_learning(self, final: bool) -> tuple[bool | None, dict[str, Any]]:
        """Whether the training loss still falls (so the decay does not hold it back): None when
        too few losses to tell mid-run; at the end of a run that short, quiet too (True)."""
        _, v = per_step(*self.state.losses.series())
        v = v[np.isfinite(v)]
        if len(v) < MIN_LOSSES:
            return (True if final else None), {}
        k = max(3, len(v) // 10)
        early, late = float(np.median(v[:k])), float(np.median(v[-k:]))
        drop = (early - late) / max(abs(early), 1e-12)
        z = trend_z(v[len(v) // 2:][-400:])
        return (drop >= LEARNING_DROP and z <= LEARNING_Z), {"loss_drop": round(drop, 4), "loss_trend_z": round(z, 2)}

    def _judge(self, info: _Group, final: bool) -> Finding | None:
        limit = DECOUPLED_RATIO if info.decoupled else COUPLED_RATIO
        hits = [s for s in info.samples if s[1] >= limit]
        if info.reported or len(hits) < MIN_HITS or len(hits) < 0.6 * len(info.samples):
            return None
        first_w, last_w = info.samples[0][2], info.samples[-1][2]
        if last_w >= SHRINK * first_w:
            return None
        ratio = sorted(r for _, r, _ in hits)[len(hits) // 2]
        learning, trend = self._loss_learning(final)
        clear = ratio >= MARGINAL * limit or all(r >= limit for _, r, _ in info.samples)
        if not clear and (learning is None or learning):
            return None  # a decay about the size of the gradient while the loss still falls (or too
            # few losses yet): it does not hold the loss back
        info.reported = True
        where = info.where
        against = "Adam's normalised step" if info.decoupled else "the gradient"
        suggested = fmt(info.wd * 0.1 / ratio) if ratio > 0 else "a tenth"
        evidence = {
            "optimizer": info.optimizer,
            "weight_decay": info.wd,
            "lr": info.lr,
            "decoupled": info.decoupled,
            "ratio": ratio,
            "ratios": [round(r, 3) for _, r, _ in info.samples[-8:]],
            "weight_norm": [fmt(w) for _, _, w in info.samples[-8:]],
            "steps": [s for s, _, _ in hits][-8:],
            "suggested": suggested,
            **trend,
        }
        held = "" if learning or not trend else (
            f" while the training loss is held back (it fell {trend['loss_drop']:.0%} and no longer trends down)")
        msg = (f"weight_decay={fmt(info.wd)} in {where} dominates the update: the decay term "
               f"wd*|w| is {fmt(ratio)}x {against} at {len(hits)} of {len(info.samples)} sampled steps, "
               f"and the weight norm fell from {fmt(first_w)} to {fmt(last_w)}{held}: the model is pulled "
               f"to zero faster than it learns")
        return self.finding(msg, evidence, location=where, step=hits[0][0])


@dataclass
class _Site:
    p: float
    calls: int = 0
    first_step: int = 0
    how: str = ""
    reported: bool = False


@register
class DropoutTooStrong(Check):
    """Dropout with a drop probability so high the network cannot fit the training data."""

    code = "regularization.dropout-too-strong"
    needs = ("op", "step", "end")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})
    ops = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                     "feature_alpha_dropout"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.sites: dict[tuple[str, float], _Site] = {}

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "op":
            self._on_op(event)
            return ()
        if event.kind == "step":
            if event.phase == "pre":
                return self._report(strong_only=True)
            return ()
        if event.kind == "end":
            return self._report(strong_only=False, end=event)
        return ()

    def _on_op(self, event: OpCall) -> None:
        result = event.result
        if not isinstance(result, torch.Tensor) or not result.requires_grad:
            return
        args, kwargs = event.args, event.kwargs
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        training = kwargs.get("training", kwargs.get("train", args[2] if len(args) > 2 else True))
        if not training or not isinstance(p, (int, float)) or isinstance(p, bool) or p < DROPOUT_SUSPECT:
            return
        key = (event.module or "<top level>", float(p))
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = _Site(p=float(p), first_step=event.step,
                                           how=self._how(event.module, event.name))
        site.calls += 1

    def _how(self, module_name: str, op: str) -> str:
        """``nn.Dropout(p) model.2`` or ``F.dropout in net.forward`` (looked up once per site)."""
        for _, model in self.state.live_models():
            for sub in model.modules():
                if self.state.module_name(sub) == module_name:
                    if isinstance(sub, _DropoutNd):
                        return f"nn.{type(sub).__name__} {module_name}"
                    return f"F.{op} in {module_name}.forward"
        return f"F.{op} at the top level" if not module_name else f"{op} in {module_name}"

    def _report(self, strong_only: bool, end: RunEnd | None = None) -> list[Finding]:
        out: list[Finding] = []
        for (where, p), site in self.sites.items():
            if site.reported or site.calls < MIN_HITS:
                continue
            evidence: dict[str, Any] = {"p": p, "keep": round(1 - p, 4), "training_calls_seen": site.calls,
                                        "location": where, "site": site.how}
            if p >= DROPOUT_STRONG:
                if not strong_only:
                    evidence.update(self._loss_evidence())
                msg = (f"dropout p={fmt(p)} ({site.how}) drops {p:.0%} of the units in every training "
                       f"forward: the network keeps only {1 - p:.0%} of its signal and can hardly fit "
                       f"the training data")
            elif strong_only:
                continue
            else:
                loss = self._loss_evidence()
                if not loss or loss["loss_ratio"] < STUCK:
                    continue
                evidence.update(loss)
                msg = (f"dropout p={fmt(p)} ({site.how}) drops {p:.0%} of the units and the training loss "
                       f"barely fell ({fmt(loss['early_loss'])} -> {fmt(loss['late_loss'])})")
            site.reported = True
            out.append(self.finding(msg, evidence, location=where, step=site.first_step))
        return out

    def _loss_evidence(self) -> dict[str, Any]:
        _, values = self.state.losses.series()
        values = [v for v in values if math.isfinite(v)]
        if len(values) < 10:
            return {}
        k = max(2, len(values) // 10)
        early, late = sum(values[:k]) / k, sum(values[-k:]) / k
        ev: dict[str, Any] = {"early_loss": early, "late_loss": late,
                              "loss_ratio": late / early if early > 0 else 1.0}
        _, evals = self.state.eval_losses.series()
        evals = [v for v in evals if math.isfinite(v)]
        if evals:
            ev["eval_loss"] = evals[-1]
        return ev
