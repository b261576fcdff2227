"""init: the weights are re-initialised during training (``model.apply(init_weights)``,
``reset_parameters()`` or ``load_state_dict(initial)`` inside the epoch loop).

Two pieces of evidence, both needed:

* the weights: on sampled ``step`` pre events the two largest weight matrices of the first
  optimizer are compared with their copy from the previous sampled step. Replaced by unrelated
  values (``||w - prev|| >= REPLACED * ||prev||`` with cosine < ``COSINE``) or brought back to their
  initial values (distance to them < ``BACK`` of the previous distance, which was >= ``MOVED`` of
  their norm) counts as a reset in that interval of steps;
* the loss: its running median returns to within ``RETURN`` of its start after having fallen by
  >= ``LEARNED`` of it and ``NOISE`` times its step-to-step noise, at least ``MIN_RETURNS`` times (a saw-tooth), one of them inside an interval
  with a weight reset.

A reset at (nearly) every step (``nn.init`` inside ``forward()``, ``model.apply(init)`` in the batch
loop) leaves no saw-tooth: nothing is ever learned to be lost. It is reported without one when a
matrix is replaced by unrelated values in >= ``PERSISTENT_MIN`` sampled intervals and
>= ``PERSISTENT_SHARE`` of those compared, each time by >= ``BEYOND_OPTIMIZER`` times what the
optimizer's own measured steps (their median, times the steps in the interval) could have moved it.

Training never decorrelates a weight matrix between two samples, and a warm restart of the lr
(SGDR) or a new fold with a new model (new tensors: nothing to compare) does not reset the weights.
An optimizer whose own steps are huge can: so on sampled steps the optimizer's update is measured too
(``||w_after - w_before|| / ||w_before||`` around one ``step()``), and once one reached ``HUGE_UPDATE``
"replaced by unrelated values" is not counted (that is a too-high learning rate, ``lr.too-high``'s
finding); "brought back to the initial values" still is.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Iterable

import numpy as np
import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.checks._layers import host_floats
from nndoctor.monitor.checks._step_share import step_share
from nndoctor.monitor.curves import noise_sigma, rolling_median
from nndoctor.monitor.events import CurveDue, RunEnd, StepEvent
from nndoctor.monitor.tensors import local

__all__ = ["ReinitialisedDuringTraining", "loss_returns"]

REPLACED = 0.5
COSINE = 0.5
BACK = 0.25
MOVED = 0.05
LEARNED = 0.15
RETURN = 0.3
NOISE = 3.0  # ...and by this many times the loss's step-to-step noise
MIN_RETURNS = 2
MAX_TRACKED_NUMEL = 2_000_000
HUGE_UPDATE = 0.1  # one optimizer step moving a tracked matrix by >= this share of its norm
#: resets at (nearly) every step leave no saw-tooth (nothing is ever learned to lose again): a matrix
#: replaced by unrelated values in >= PERSISTENT_MIN sampled intervals, >= PERSISTENT_SHARE of those
#: compared, each time by >= BEYOND_OPTIMIZER times what the optimizer's own steps could move it in
#: that interval (its median measured update times the steps), is reset by something else
PERSISTENT_MIN = 3
PERSISTENT_SHARE = 0.6
BEYOND_OPTIMIZER = 3.0
_norm = torch.linalg.vector_norm  # (what Tensor.norm() computes, without its Python dispatch)


def loss_returns(steps: list[int], values: list[float]) -> list[int]:
    """Steps where the loss's running median went back near its start after it had learned."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 40:
        return []
    s = np.asarray(steps)[ok]
    v = v[ok]
    window = max(5, len(v) // 100) | 1
    m = rolling_median(v, window)
    initial = float(np.median(v[:window]))
    if not initial > 0:
        return []
    need = max(LEARNED * initial, NOISE * noise_sigma(v))  # a fall that step-to-step noise does not make
    low = math.inf
    out: list[int] = []
    for i, x in enumerate(m):
        low = min(low, float(x))
        drop = initial - low
        if drop >= need and x >= initial - RETURN * drop:
            out.append(int(s[i]))
            low = float(x)  # the next return needs another stretch of learning first
    return out


class _Tracked:
    def __init__(self, p: torch.Tensor, name: str) -> None:
        self.ref = weakref.ref(p)
        self.name = name
        self.init = local(p).detach().float().clone()  # this rank's shard of a sharded parameter
        self.prev = self.init
        self.prev_step = 0
        # norms of ``prev`` and ``init`` kept from the reads that measured them (the same values: a
        # sampled step reads 4 reductions per matrix, not 7); None until read
        self.prev_norm: float | None = None
        self.prev_from_init = 0.0  # ||prev - init|| (prev is init at first)
        self.init_norm: float | None = None


@register
class ReinitialisedDuringTraining(Check):
    """Weights reset to fresh or initial values between sampled steps, with a loss saw-tooth."""

    code = "init.reinitialised-during-training"
    needs = ("step", "curve", "end")
    step_phases = frozenset({"pre", "post"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._opt: weakref.ReferenceType[torch.optim.Optimizer] | None = None
        self._tracked: list[_Tracked] = []
        self._resets: list[tuple[int, int, str, str]] = []  # (from step, to step, param, how)
        self._done = False
        self._max_update = 0.0  # the largest single-step update ratio seen on sampled steps
        self._updates: list[float] = []  # single-step update ratios seen on sampled steps (first 256)
        self._compared: dict[str, int] = {}  # param name -> sampled intervals compared
        self._replaced: list[tuple[int, int, str, float]] = []  # (from, to, param, ||w - prev|| / ||prev||)

    def check(self, event: StepEvent | CurveDue | RunEnd) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, StepEvent):
            if event.sampled and event.phase == "post":
                self._measure_update(event)
            elif event.sampled:
                self._observe(event)
            return ()
        return self._judge()

    # ------------------------------------------------------------------ weights
    def _pick(self, opt: torch.optim.Optimizer, step: int) -> None:
        cands = [p for g in opt.param_groups for p in g["params"]
                 if isinstance(p, torch.Tensor) and p.requires_grad and p.dim() >= 2 and p.numel() > 1]
        cands.sort(key=lambda p: -p.numel())
        budget = MAX_TRACKED_NUMEL
        for p in cands:
            if len(self._tracked) >= 2:
                break
            if p.numel() <= budget:
                budget -= p.numel()
                t = _Tracked(p, self.state.param_name(p))
                t.prev_step = step
                self._tracked.append(t)
        self._opt = weakref.ref(opt)

    def _observe(self, event: StepEvent) -> None:
        if self._opt is None:
            self._pick(event.optimizer, event.step)
            return
        if self._opt() is not event.optimizer:
            return
        live = [(t, t.ref()) for t in self._tracked]
        live = [(t, local(p)) for t, p in live if p is not None]
        live = [(t, p) for t, p in live if p.numel() and p.shape == t.prev.shape]
        if not live:
            return
        stats = []
        for t, p in live:
            w = p.detach().float()
            stats += [_norm(w - t.prev), (w * t.prev).sum(), _norm(w), _norm(w - t.init)]
            if t.init_norm is None:  # (first comparison: prev is init)
                stats.append(_norm(t.init))
        vals = host_floats(stats)
        k = 0
        for t, p in live:
            d, dot, wn, di = vals[k:k + 4]
            k += 4
            if t.init_norm is None:
                t.init_norm = t.prev_norm = vals[k]
                k += 1
            pn, pdi, n0 = t.prev_norm, t.prev_from_init, t.init_norm
            how = ""
            self._compared[t.name] = self._compared.get(t.name, 0) + 1
            if pn > 0 and wn > 0 and d >= REPLACED * pn and dot / (pn * wn) < COSINE:
                how = "replaced by unrelated values"
                if len(self._replaced) < 256:
                    self._replaced.append((t.prev_step, event.step, t.name, d / pn))
            elif n0 > 0 and pdi >= MOVED * n0 and di < BACK * pdi:
                how = "brought back to its initial values"
            if how:
                self._resets.append((t.prev_step, event.step, t.name, how))
            # (a float32 weight's copy is the one the lr probe takes too: one copy for both)
            t.prev = (step_share(self.state).copy_before(t.ref(), event.step, event.optimizer)
                      if p.dtype == torch.float32 and t.ref() is not None and local(t.ref()) is p
                      else p.detach().float().clone())
            t.prev_step = event.step
            t.prev_norm, t.prev_from_init = wn, di

    def _measure_update(self, event: StepEvent) -> None:
        """The optimizer's own update of the tracked matrices at this step (pre copy -> now)."""
        if self._opt is None or self._opt() is not event.optimizer:
            return
        live = [(t, local(t.ref()) if t.ref() is not None else None) for t in self._tracked]
        pairs = [(t, p.detach().float()) for t, p in live
                 if p is not None and t.prev_step == event.step and p.numel() and p.shape == t.prev.shape]
        if not pairs:
            return
        # (prev was copied at this step's "pre" event and its norm read then; before the first
        # comparison prev is init, whose norm is read here)
        fresh = [t for t, _ in pairs if t.prev_norm is None]
        vals = host_floats([self._update_norm(t, after, event) for t, after in pairs] + [_norm(t.init) for t in fresh])
        for t, n0 in zip(fresh, vals[len(pairs):]):
            t.init_norm = t.prev_norm = n0
        for d, n in zip(vals[:len(pairs)], [t.prev_norm for t, _ in pairs]):
            if n > 0 and math.isfinite(d / n):
                self._max_update = max(self._max_update, d / n)
                if len(self._updates) < 256:
                    self._updates.append(d / n)

    def _update_norm(self, t: _Tracked, after: torch.Tensor, event: StepEvent) -> torch.Tensor:
        """``||after - prev||``; for a float32 weight the lr probe's update norm of the same copy (the
        same arithmetic, read once for both)."""
        p = t.ref()
        if p is not None and after.dtype == torch.float32 and local(p).dtype == torch.float32:
            shared = step_share(self.state).update_norm(p, event.step, event.optimizer)
            if shared is not None:
                return shared
        return _norm(after - t.prev)

    # ------------------------------------------------------------------ judgement
    def _judge(self) -> list[Finding]:
        if self._max_update >= HUGE_UPDATE:  # the optimizer itself decorrelates the weights
            self._resets = [r for r in self._resets if r[3] != "replaced by unrelated values"]
        if not self._resets:
            return self._judge_persistent()
        steps, values = self.state.losses.series()
        returns = loss_returns(steps, values)
        if len(returns) < MIN_RETURNS:
            return self._judge_persistent()
        tied = [r for r in self._resets if any(r[0] < s <= r[1] for s in returns)]
        if not tied:
            return []
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        first = tied[0]
        model = first[2].split(".", 1)[0]
        hows = sorted({r[3] for r in self._resets})
        how = ("model.apply(init) / reset_parameters()" if "replaced by unrelated values" in hows
               else "load_state_dict of the initial weights or a constant init")
        gaps = [b - a for a, b in zip(returns, returns[1:])]
        every = int(np.median(gaps)) if gaps else 0
        ev: dict[str, Any] = {
            "model": model, "param": first[2], "how": how, "reset_between_steps": [first[0], first[1]],
            "resets_seen": len(self._resets), "loss_returns_at_steps": returns[:10],
            "loss_returns": len(returns), "every": every, "reset_kind": hows}
        return [self.finding(
            f"the weights of {model} are re-initialised during training: {first[2]} was {first[3]} between "
            f"steps {first[0]} and {first[1]} ({len(self._resets)} such resets seen on sampled steps), and the "
            f"loss went back to its starting level {len(returns)} times (at steps "
            f"{', '.join(str(s) for s in returns[:5])}{', ...' if len(returns) > 5 else ''}"
            f"{f', every ~{every} steps' if every else ''}): each reset throws away what was learned",
            ev, location=model, step=first[1])]

    def _judge_persistent(self) -> list[Finding]:
        """A matrix replaced by unrelated values at (nearly) every sampled step, far beyond what the
        optimizer's own small steps move it: re-initialised inside ``forward()`` or the batch loop."""
        if not self._updates:
            return []
        med = float(np.median(self._updates))
        if med >= HUGE_UPDATE:  # the optimizer's own steps decorrelate the weights (lr.too-high)
            return []
        for name, compared in self._compared.items():
            hits = [r for r in self._replaced if r[2] == name
                    and r[3] >= BEYOND_OPTIMIZER * max(r[1] - r[0], 1) * med]
            if len(hits) < PERSISTENT_MIN or len(hits) < PERSISTENT_SHARE * compared:
                continue
            self._done = True
            self.retire()
            model = name.split(".", 1)[0]
            moved = float(np.median([r[3] for r in hits]))
            ev: dict[str, Any] = {
                "model": model, "param": name, "how": "nn.init / reset_parameters() at every step",
                "reset_between_steps": [hits[0][0], hits[0][1]], "resets_seen": len(hits),
                "intervals_compared": compared, "reset_kind": ["replaced by unrelated values"],
                "moved_ratio_median": round(moved, 3), "optimizer_update_ratio_median": float(f"{med:.3g}"),
                "loss_returns": 0}
            return [self.finding(
                f"the weights of {model} are re-initialised at (nearly) every step: {name} was replaced by "
                f"unrelated values in {len(hits)} of the {compared} sampled intervals (first between steps "
                f"{hits[0][0]} and {hits[0][1]}), moving by {moved:.2g}x its size while one optimizer step moves "
                f"it by {med:.2g}x: an nn.init / reset_parameters() call inside forward() or the batch loop "
                f"throws away every update, so this layer never learns",
                ev, location=model, step=hits[0][1])]
        return []
