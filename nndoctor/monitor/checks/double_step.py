"""optimizer: the same gradient applied twice (a parameter stepped twice per backward).

Each ``loss.backward()`` should feed one update of each parameter. Three common mistakes apply it
twice or more, so some weights move at a multiple of the lr the user chose and, with Adam or
momentum, through a second set of moment estimates:

* two optimizers built over the same parameters and both stepped after one backward (a second
  optimizer left in from an experiment, ``opt_a = SGD(model.parameters())`` beside
  ``opt_b = Adam(model.parameters())``);
* a parameter listed twice in one optimizer
  (``list(model.parameters()) + list(model.head.parameters())``; PyTorch only warns about it);
* ``optimizer.step()`` called twice between two backward passes.

Detection, on sampled optimizer steps (pre-step hook): a parameter whose ``.grad`` is the very
tensor, unchanged (same object, same in-place version counter), that an earlier step of this or
another optimizer already saw, with no ``backward()`` in between, and not exactly zero. A step
nested inside another optimizer's step (wrappers such as Lookahead) is not counted; closure
optimizers (LBFGS) run their backward inside the step and never match; a gradient written by hand
or changed in place between the steps (``scaler.unscale_``, manual averaging) is a new gradient.
A parameter listed twice in one optimizer is read from its param groups at the first sampled steps.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import StepEvent
from nndoctor.monitor.tensors import local_grad, materialised

__all__ = ["GradientAppliedTwice"]

#: parameters examined per optimizer step (the first ones of the optimizer, in order)
MAX_PARAMS = 256
#: repeated steps to see before a warning (one repeat may be a one-off, e.g. a last partial batch)
MIN_REPEATS = 2


@register
class GradientAppliedTwice(Check):
    """A parameter updated twice from one gradient: two optimizers over it, or a double step."""

    code = "optimizer.gradient-applied-twice"
    needs = ("step",)
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        # param id -> (param ref, grad ref, grad version, backward count, optimizer name) at its last step
        self._last: dict[int, tuple[Any, Any, int, int, str]] = {}
        self._open: list[tuple[int, int]] = []  # (optimizer id, run step) between pre and post hooks
        self._dup_checked: set[int] = set()
        self._repeats: dict[tuple[str, str], list[int]] = {}
        self._reported: set[tuple[str, str]] = set()

    def check(self, event: StepEvent) -> Iterable[Finding]:
        oid = id(event.optimizer)
        if event.phase == "post":
            self._open = [o for o in self._open if o[0] != oid]
            return ()
        # (an entry of an earlier run step lost its post hook: the step raised, or went unobserved)
        self._open = [o for o in self._open if o[1] == event.step]
        if self._open:  # a step inside another optimizer's step (a wrapper): not a second update
            return ()
        self._open.append((oid, event.step))
        found: list[Finding] = []
        if oid not in self._dup_checked:
            self._dup_checked.add(oid)
            found += self._duplicates(event)
        found += self._repeated(event)
        return found

    # ------------------------------------------------------------------ one parameter listed twice
    def _duplicates(self, event: StepEvent) -> list[Finding]:
        seen: set[int] = set()
        dups: list[torch.Tensor] = []
        for group in event.optimizer.param_groups:
            for p in group.get("params", ()):
                if not isinstance(p, torch.Tensor) or not materialised(p):
                    continue
                if id(p) in seen and p.requires_grad and all(q is not p for q in dups):
                    dups.append(p)
                seen.add(id(p))
        if not dups:
            return []
        names = [self.state.param_name(p) for p in dups]
        n = sum(p.numel() for p in dups)
        ev = {"optimizer": event.optimizer_name, "how": "listed twice", "params": names[:8],
              "tensors": len(dups), "values": n, "step": event.step}
        return [self.finding(
            f"{_names(names)} ({len(dups)} tensors, {n} values) appear twice in {event.optimizer_name}'s "
            f"parameters: each {event.optimizer_name}.step() updates them twice from the same gradient, "
            f"so they train at twice the lr (the parameter list was probably built by concatenating "
            f"model.parameters() with a sub-module's parameters)", ev, location=event.optimizer_name)]

    # ------------------------------------------------------------------ a second step, no backward
    def _repeated(self, event: StepEvent) -> list[Finding]:
        backwards = self.state.backward_calls
        name = event.optimizer_name
        hits: dict[str, list[str]] = {}
        checked = 0
        visited: set[int] = set()  # (a parameter listed twice is reported by _duplicates)
        for group in event.optimizer.param_groups:
            for p in group.get("params", ()):
                if checked >= MAX_PARAMS:
                    break
                if not isinstance(p, torch.Tensor) or p.grad is None or id(p) in visited:
                    continue
                visited.add(id(p))
                checked += 1
                g = p.grad
                pid = id(p)
                last = self._last.get(pid)
                if (last is not None and last[0]() is p and last[1]() is g and last[2] == g._version
                        and last[3] == backwards and (last[4], name) not in self._reported):
                    hits.setdefault(last[4], []).append(self.state.param_name(p))
                try:
                    self._last[pid] = (weakref.ref(p), weakref.ref(g), g._version, backwards, name)
                except TypeError:
                    continue
        found: list[Finding] = []
        for first, params in hits.items():
            key = (first, name)
            if not self._nonzero(event.optimizer, params):
                continue
            steps = self._repeats.setdefault(key, [])
            steps.append(event.step)
            if len(steps) < MIN_REPEATS:
                continue
            self._reported.add(key)
            found.append(self._report(first, name, params, steps))
        return found

    def _nonzero(self, opt: torch.optim.Optimizer, names: list[str]) -> bool:
        """Whether one repeated gradient is non-zero (a cleared gradient adds nothing)."""
        wanted = set(names[:4])
        for group in opt.param_groups:
            for p in group.get("params", ()):
                if isinstance(p, torch.Tensor) and p.grad is not None and self.state.param_name(p) in wanted:
                    g = local_grad(p)
                    if g is not None and g.numel() and not g.is_sparse and bool(g.detach().any()):
                        return True
        return False

    def _report(self, first: str, name: str, params: list[str], steps: list[int]) -> Finding:
        same = first == name
        ev = {"optimizer": name, "first_optimizer": first, "how": "stepped twice" if same else "two optimizers",
              "params": params[:8], "tensors": len(params), "steps": steps[:8]}
        if same:
            msg = (f"{name}.step() ran twice with no backward() in between (steps {_steps(steps)}): "
                   f"the second call applies the same gradient to {_names(params)} again, doubling the "
                   f"update (and the momentum/Adam statistics count it twice)")
        else:
            msg = (f"{first} and {name} both step {_names(params)} ({len(params)} tensors) after the same "
                   f"backward() (steps {_steps(steps)}): every gradient is applied twice, by two optimizers "
                   f"with their own lr and state, so these weights move faster than either lr says")
        return self.finding(msg, ev, location=name)


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _steps(steps: list[int]) -> str:
    return ", ".join(str(s) for s in steps[:4])
