"""grad-flow: parameters held by two optimizers that push them in opposite directions.

A GAN's discriminator optimizer built over the generator's parameters too
(``Adam(list(D.parameters()) + list(G.parameters()))``, ``itertools.chain(D, G)``), an adversarial
encoder put in the adversary's optimizer: after the discriminator's ``backward()`` (fakes not
detached) its optimizer moves the generator to make the fakes easier to spot, and the generator's own
optimizer moves it back. The two updates cancel, the generator does not learn (or learns to lose),
and nothing crashes.

Detection, on sampled optimizer steps (pre-step hook): the parameters an optimizer shares with
another optimizer (the same tensors in both) and the gradient it is about to apply to them
(concatenated, at most ``MAX_NUMEL`` values, parameters in a group with lr > 0). That vector is
compared with the one the other optimizer applied to the same parameters at its latest sampled step;
reported when >= ``MIN_PAIRS`` such comparisons have a median cosine <= ``OPPOSED`` and
>= ``SHARE_NEGATIVE`` of them are negative. Optimizers over disjoint parameters (a correct GAN), a
shared trunk trained by two cooperating losses (cosines near 0 or positive) and two optimizers
stepping the same gradient (cosine 1: ``optimizer.gradient-applied-twice``) stay quiet.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import StepEvent

__all__ = ["OptimizersPullApart"]

MAX_NUMEL = 1_000_000
MIN_PAIRS = 3
OPPOSED = -0.5
SHARE_NEGATIVE = 0.8


@register
class OptimizersPullApart(Check):
    """Parameters in two optimizers whose gradients on them point in opposite directions."""

    code = "grad-flow.optimizers-pull-apart"
    needs = ("step",)
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._sets: dict[int, tuple[int, frozenset[int]]] = {}  # optimizer id -> (n params, param ids)
        # (shared param ids) -> (optimizer id, optimizer name, gradient vector) at its latest sampled step
        self._last: dict[frozenset[int], tuple[int, str, torch.Tensor]] = {}
        self._cos: dict[tuple[str, str], list[float]] = {}
        self._done = False

    def _ids(self, opt: torch.optim.Optimizer) -> frozenset[int]:
        n = sum(len(g["params"]) for g in opt.param_groups)
        cached = self._sets.get(id(opt))
        if cached is None or cached[0] != n:
            ids = frozenset(id(p) for g in opt.param_groups if g.get("lr", 1.0) != 0 for p in g["params"])
            cached = self._sets[id(opt)] = (n, ids)
        return cached[1]

    def check(self, event: StepEvent) -> Iterable[Finding]:
        if self._done:
            return ()
        opts = self.state.live_optimizers()
        if len(opts) < 2:
            return ()
        mine = self._ids(event.optimizer)
        others = frozenset().union(*(self._ids(o) for _, o in opts if o is not event.optimizer))
        shared = mine & others
        if not shared:
            return ()
        params = [p for g in event.optimizer.param_groups for p in g["params"] if id(p) in shared]
        grads = [p.grad for p in params if isinstance(p.grad, torch.Tensor) and not p.grad.is_sparse]
        if len(grads) != len(params) or sum(g.numel() for g in grads) > MAX_NUMEL:
            return ()
        with torch.no_grad():
            vec = torch.cat([g.detach().reshape(-1).float() for g in grads])
        key = frozenset(shared)
        prev = self._last.get(key)
        self._last[key] = (id(event.optimizer), event.optimizer_name, vec.clone())
        if prev is None or prev[0] == id(event.optimizer) or prev[2].shape != vec.shape:
            return ()
        with torch.no_grad():
            denom = float(prev[2].norm() * vec.norm())
            if not denom > 0:
                return ()
            cos = float(torch.dot(prev[2], vec)) / denom
        pair = tuple(sorted((prev[1], event.optimizer_name)))
        vals = self._cos.setdefault(pair, [])  # type: ignore[arg-type]
        vals.append(cos)
        if len(vals) < MIN_PAIRS:
            return ()
        med = statistics.median(vals)
        neg = sum(v < 0 for v in vals) / len(vals)
        if med > OPPOSED or neg < SHARE_NEGATIVE:
            return ()
        self._done = True
        names = [self.state.param_name(p) for p in params]
        listing = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        ev = {"optimizers": f"{pair[0]} and {pair[1]}", "shared_params": len(params), "params": listing,
              "cosine_median": round(med, 3), "pairs": len(vals), "share_negative": round(neg, 3)}
        return [self.finding(
            f"{len(params)} parameter tensors ({listing}) are in both {pair[0]} and {pair[1]}, and the "
            f"gradients the two apply to them point in opposite directions (median cosine {med:.2f} over "
            f"{len(vals)} sampled step pairs): each optimizer undoes the other's update, so those weights do not "
            f"learn (a discriminator's optimizer built over the generator's parameters too?)", ev,
            location=pair[0])]
