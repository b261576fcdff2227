"""Runtime remedies for a learning-rate schedule or an update rule set up the wrong way:
ReduceLROnPlateau in the mode opposite to its metric, a cosine schedule stepped past ``T_max``,
a parameter group left at lr 0, gradient clipping called where it clips nothing, and weights
updated by hand whose gradients are never cleared. Same contract as
:mod:`nndoctor.fix.remedies`: ``install(finding, stack)`` changes the re-run through patched torch
names and hooks, the stack undoes it.

Each acts only on what the finding measured (the mode it named, the ``T_max`` it read, the group
index, the clip threshold); a scheduler, group or clip call that differs is untouched.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import weakref
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.optim import lr_scheduler

from nndoctor.fix.remedies import Remedy, _patch, _step_pre

__all__ = ["SCHEDULE_REMEDIES", "leaves_of"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


# -- ReduceLROnPlateau in the wrong mode -> the other mode -------------------------------------
_MODES = ("min", "max")


def _install_plateau_mode(f: Finding, stack: contextlib.ExitStack) -> None:
    """A ReduceLROnPlateau created in the finding's (wrong) mode runs in the other one, with the
    same threshold; one created in the right mode is untouched."""
    wrong, right = _ev(f).get("mode"), _ev(f).get("right_mode")
    if wrong not in _MODES or right not in _MODES or wrong == right:
        raise ValueError("the finding names no wrong and right mode")

    def init(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if getattr(self, "mode", None) == wrong:
                self._init_is_better(mode=right, threshold=self.threshold, threshold_mode=self.threshold_mode)
                self._reset()

        return call

    _patch(stack, lr_scheduler.ReduceLROnPlateau, "__init__", init)


# -- a cosine schedule stepped past T_max -> T_max stretched over the run's scheduler steps ---------
def _install_cosine_span(f: Finding, stack: contextlib.ExitStack) -> None:
    """A CosineAnnealingLR created with the finding's ``T_max`` anneals over the scheduler steps
    the diagnosis run gave it (the re-run repeats them) and, should it be stepped further (a count
    read before the run's end), stays at ``eta_min``: once down, never back up."""
    ev = _ev(f)
    try:
        t_max, steps = int(ev["T_max"]), int(ev["scheduler_steps"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no T_max and scheduler step count") from None
    if not 0 < t_max < steps:
        raise ValueError("the schedule was not stepped past T_max")
    stretched: set[int] = set()

    def init(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> None:
            if "T_max" in kwargs and kwargs["T_max"] == t_max:
                kwargs["T_max"] = steps
                stretched.add(id(self))
            elif args and args[0] == t_max:
                args = (steps, *args[1:])
                stretched.add(id(self))
            original(self, optimizer, *args, **kwargs)

        return call

    def get_lr(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(self: Any) -> Any:
            if id(self) in stretched and self.last_epoch >= self.T_max:
                return [self.eta_min for _ in self.optimizer.param_groups]
            return original(self)

        return call

    _patch(stack, lr_scheduler.CosineAnnealingLR, "__init__", init)
    _patch(stack, lr_scheduler.CosineAnnealingLR, "get_lr", get_lr)
    stack.callback(stretched.clear)


# -- a parameter group at lr 0 -> the other groups' rate ------------------------------------------
def _lr(group: dict[str, Any]) -> float | None:
    lr = group.get("lr")
    if isinstance(lr, torch.Tensor):
        lr = float(lr) if lr.numel() == 1 else None
    return float(lr) if isinstance(lr, (int, float)) and math.isfinite(float(lr)) else None


def _install_group_lr(f: Finding, stack: contextlib.ExitStack) -> None:
    """Before each step of an optimizer with the finding's number of parameter groups, the
    finding's group, while its lr is 0 and the others' are not, trains at the median of the other
    groups' current rates (so it follows their schedule); a group given a rate is untouched."""
    ev = _ev(f)
    try:
        index, groups = int(ev["group"]), int(ev["groups"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no parameter group") from None

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        pgs = optimizer.param_groups
        if len(pgs) != groups or _lr(pgs[index]) != 0.0:
            return
        others = [lr for i, g in enumerate(pgs) if i != index and (lr := _lr(g)) is not None and lr > 0]
        if others:
            pgs[index]["lr"] = statistics.median(others)

    _step_pre(stack, pre)


# -- clipping where it cannot act -> the same clip just before each step -------------------------
def _install_clip_before_step(f: Finding, stack: contextlib.ExitStack) -> None:
    """Before each optimizer step, the gradients it applies are clipped with the finding's method
    and threshold (the script's own clip call, which ran before ``backward()`` or after
    ``step()``, still runs and changes nothing)."""
    ev = _ev(f)
    method = ev.get("method")
    try:
        threshold = float(ev["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the finding names no clip threshold") from None
    if method not in ("clip_grad_norm_", "clip_grad_value_") or not (math.isfinite(threshold) and threshold > 0):
        raise ValueError("the finding names no clip method")
    clip = getattr(nn.utils, method)

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if params:
            clip(params, threshold)

    _step_pre(stack, pre)


# -- a hand-written update whose gradients are never cleared -> cleared once applied ----------------
#: entries of a leaf compared between backwards to see a hand-written update
HEAD = 64


def leaves_of(t: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors whose ``.grad`` a ``backward()`` from ``t`` accumulates into."""
    out: list[torch.Tensor] = []
    seen: set[int] = set()
    todo = [t.grad_fn] if t.grad_fn is not None else []
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            out.append(variable)
        todo.extend(n for n, _ in node.next_functions)
    return out


def _install_clear_applied(f: Finding, stack: contextlib.ExitStack) -> None:
    """At each ``backward()``, a leaf's gradient is zeroed when the leaf was changed (a
    hand-written ``w -= lr * w.grad``: its version counter, or its first :data:`HEAD` values) since
    the previous backward that reached it: a gradient
    is cleared once it has been applied, never before. Gradients accumulated over several
    backwards without an update in between (accumulation) are kept; code that clears its own
    gradients is unchanged."""
    seen: dict[int, tuple[Any, int, torch.Tensor]] = {}  # id -> (ref, version, first values)

    def changed(leaf: torch.Tensor) -> bool:
        old = seen.get(id(leaf))
        if old is None or old[0]() is not leaf:
            return False
        if leaf._version != old[1]:
            return True
        head = leaf.detach().flatten()[:HEAD]  # (``p.data -= ...`` leaves the version as it was)
        return head.shape == old[2].shape and not torch.equal(head, old[2])

    def before(t: Any) -> list[torch.Tensor]:
        leaves = leaves_of(t) if isinstance(t, torch.Tensor) else []
        for leaf in leaves:
            if leaf.grad is not None and changed(leaf):
                with torch.no_grad():
                    leaf.grad.zero_()
        return leaves

    def after(leaves: list[torch.Tensor]) -> None:
        for leaf in leaves:
            seen[id(leaf)] = (weakref.ref(leaf), leaf._version, leaf.detach().flatten()[:HEAD].clone())

    def wrap_method(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
            leaves = before(self)
            out = original(self, *args, **kwargs)
            after(leaves)
            return out

        return backward

    def wrap_function(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            roots = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors or ())
            leaves = [leaf for r in roots for leaf in before(r)]
            out = original(tensors, *args, **kwargs)
            after(leaves)
            return out

        return backward

    _patch(stack, torch.Tensor, "backward", wrap_method)
    _patch(stack, torch.autograd, "backward", wrap_function)
    stack.callback(seen.clear)


SCHEDULE_REMEDIES: tuple[Remedy, ...] = (
    Remedy("plateau-scheduler-mode", ("lr.plateau-scheduler-wrong-mode",),
           lambda f: f"ReduceLROnPlateau runs in mode='{_ev(f).get('right_mode')}' (was '{_ev(f).get('mode')}')",
           lambda f: f"Create ReduceLROnPlateau with mode='{_ev(f).get('right_mode')}': it is stepped with the "
                     f"{_ev(f).get('metric', 'metric')}.",
           _install_plateau_mode, applies=lambda f: _ev(f).get("right_mode") in _MODES),
    Remedy("cosine-over-the-run", ("lr.cosine-schedule-wraps-around",),
           lambda f: f"CosineAnnealingLR T_max {_ev(f).get('T_max')} -> {_ev(f).get('scheduler_steps')} "
                     "(the scheduler steps the run makes: one descent, then eta_min, no climb back)",
           lambda f: "Set T_max to the number of scheduler.step() calls (epochs * len(loader) when stepped per "
                     "batch), or step the scheduler once per epoch.",
           _install_cosine_span,
           applies=lambda f: 0 < int(_ev(f)["T_max"]) < int(_ev(f)["scheduler_steps"])),
    Remedy("group-learning-rate", ("grad-flow.param-group-lr-zero",),
           lambda f: f"{_ev(f).get('where', 'the parameter group')} trains at the other groups' rate "
                     f"({', '.join(f'{x:g}' for x in _ev(f).get('other_lrs') or []) or '?'})",
           lambda f: f"Give {_ev(f).get('where', 'the parameter group')} a non-zero lr where the optimizer's "
                     "groups are built (a per-group lr computed as 0: an integer division, a factor of 0).",
           _install_group_lr, applies=lambda f: isinstance(_ev(f).get("group"), int)),
    Remedy("clip-before-step", ("optimizer.clip-has-no-effect",),
           lambda f: f"{_ev(f).get('method')}({_ev(f).get('threshold')}) applied just before each optimizer step",
           lambda f: f"Move {_ev(f).get('method', 'the clip call')} at {_ev(f).get('site', 'its line')} between "
                     "loss.backward() and optimizer.step().",
           _install_clip_before_step, applies=lambda f: _ev(f).get("largest_applied") is not None),
    Remedy("clear-applied-gradients", ("zero-grad.manual-update-not-cleared",),
           lambda f: "each weight's gradient cleared at the next backward() once the hand-written update applied it",
           lambda f: f"Clear the gradients after the hand-written update: {_ev(f).get('first_param', 'w')}"
                     ".grad.zero_() (or model.zero_grad()) after each update.",
           _install_clear_applied),
)
