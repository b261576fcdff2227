"""zero-grad: gradients that are never cleared, or cleared between backward() and step().

The test works with every clearing style (``optimizer.zero_grad()``, ``model.zero_grad()``,
``set_to_none`` or not, ``p.grad = None``, ``p.grad.zero_()``): a parameter's grad hook runs
*before* the new contribution is added, so ``param.grad`` there is the gradient already
held. Between two steps of the optimizer that owns a parameter, a cleared gradient shows
up as at least one contribution that finds ``param.grad`` None or all zero. When no
contribution ever does, the gradient of the previous step was carried into this one.
Gradient accumulation (k backwards, then step and zero_grad) and GANs (D's parameters get
gradients from G's loss before D's own zero_grad) both clear inside the window and stay quiet.

With ``optimizer.step(closure)`` the backwards run inside the step, between its pre and post hooks:
that window is judged at the post hook, so a closure that never clears (L-BFGS calls it several times
per step) is caught the same way. Only complete windows count: every backward between the two steps must have been observed
(grad hooks run on sampled steps only), so the verdict never rests on a partial view.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import BackwardCall, GradContribution, StepEvent
from nndoctor.monitor.tensors import zero_flag

__all__ = ["GradientsNotCleared", "step_window"]

logger = logging.getLogger("nndoctor")

_no_torch_function = getattr(torch._C, "DisableTorchFunction", contextlib.nullcontext)
_function_mode_on = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)
_MIN_WINDOWS = 3  # observed steps with the problem needed before reporting


@dataclass
class _Window:
    """What one optimizer's parameters saw since its last step."""

    mark: int = 0  # the run's backward count when the window opened (the optimizer's last step)
    backwards: int = 0
    held_clear: dict[int, torch.Tensor | bool] = field(default_factory=dict)  # pid -> grad found None/zero
    got_nonzero: dict[int, torch.Tensor | bool] = field(default_factory=dict)  # pid -> a nonzero contribution


@dataclass
class _Tally:
    judged: int = 0
    carried: int = 0
    carried_steps: list[int] = field(default_factory=list)
    carried_params: dict[int, int] = field(default_factory=dict)
    norms: list[tuple[int, float]] = field(default_factory=list)
    empty_steps: list[int] = field(default_factory=list)
    #: empty steps taken while a training forward ran after the latest backward (its loss not yet
    #: backpropagated): step() placed before backward()
    step_first: int = 0
    closure: bool = False  # the windows judged are the backwards of optimizer.step(closure)


_is_zero = zero_flag


def step_window(windows: dict[int, Any], state: Any, oid: int | None, make: Callable[[int], Any]) -> Any:
    """The open window of optimizer ``oid`` in ``windows``: the one made since its last step, else
    ``make(mark)`` (``mark``: the run's backward count at that step); None before its first step."""
    info = state.optimizers.get(oid) if oid is not None else None
    if info is None or info.backwards_at_post is None:
        return None
    win = windows.get(oid)  # type: ignore[arg-type]
    if win is None or win.mark != info.backwards_at_post:
        win = windows[oid] = make(info.backwards_at_post)  # type: ignore[index]
    return win


@register
class GradientsNotCleared(Check):
    """Gradients carried across optimizer steps (zero_grad missing), or cleared before the step."""

    code = "zero-grad.not-cleared"
    needs = ("backward", "grad", "step")
    # unsampled steps cost nothing: a window counts the backwards it saw against the run's
    # backward counter since the optimizer's last step (OptimizerInfo.backwards_at_post)
    sampled_only = frozenset({"backward", "step"})
    extra_codes = ("zero-grad.cleared-before-step",)

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._windows: dict[int, _Window] = {}
        self._tally: dict[int, _Tally] = {}
        self._owner: dict[int, int] = {}  # param id -> optimizer id
        self._sizes: dict[int, int] = {}  # optimizer id -> number of parameters seen
        self._reported: set[tuple[str, int]] = set()
        self._at_pre: dict[int, tuple[int, int]] = {}  # optimizer id -> (backward count, step) at its pre hook
        self._fwd_at_backward = -1  # the run's training-forward count at the latest observed backward

    def check(self, event: Any) -> Iterable[Finding]:
        kind = event.kind
        if kind == "backward":
            return self._on_backward(event)
        if not _function_mode_on():
            return self._on_grad(event) if kind == "grad" else self._on_step(event)
        with _no_torch_function():  # our own tensor reads skip the observer's function mode
            return self._on_grad(event) if kind == "grad" else self._on_step(event)

    def _window(self, oid: int | None) -> _Window | None:
        """The open window of optimizer ``oid`` (since its last step), made on the first sampled event."""
        return step_window(self._windows, self.state, oid, lambda mark: _Window(mark=mark))

    def _on_backward(self, ev: BackwardCall) -> Iterable[Finding]:
        self._fwd_at_backward = getattr(self.state, "forward_calls", 0)
        for oid in list(self.state.optimizers):
            win = self._window(oid)
            if win is not None:
                win.backwards += 1
        return ()

    def _on_grad(self, ev: GradContribution) -> Iterable[Finding]:
        pid = id(ev.param)
        win = self._window(self._owner.get(pid))
        if win is None:
            return ()
        # flags stay 0-d tensors (no host sync per contribution); read together at the step
        if win.held_clear.get(pid) is not True:
            held = ev.param.grad
            clear = True if held is None else _is_zero(held)
            prev = win.held_clear.get(pid)
            win.held_clear[pid] = clear if prev is None or clear is True else (prev | clear)
        if win.got_nonzero.get(pid) is not True:
            zero = ev.grad_zero()
            nonzero = (not zero) if isinstance(zero, bool) else ~zero
            prev = win.got_nonzero.get(pid)
            win.got_nonzero[pid] = nonzero if prev is None else (prev | nonzero)
        return ()

    def _on_step(self, ev: StepEvent) -> Iterable[Finding]:
        oid = id(ev.optimizer)
        if ev.phase == "post":
            size = sum(len(g["params"]) for g in ev.optimizer.param_groups)
            if self._sizes.get(oid) != size:  # first step, or add_param_group(): (re)learn the owners
                self._sizes[oid] = size
                for g in ev.optimizer.param_groups:
                    for p in g["params"]:
                        self._owner.setdefault(id(p), oid)
            return self._closure_window(ev)
        self._at_pre[oid] = (self.state.backward_calls, ev.step)
        win = self._windows.pop(oid, None)
        info = self.state.optimizers.get(oid)
        if win is None or info is None or win.mark != info.backwards_at_post or win.backwards == 0:
            return ()
        if win.backwards != self.state.backward_calls - win.mark or not win.got_nonzero:
            return ()  # some backward of this window ran on an unsampled step: a partial view
        return self._judge(ev, win)

    def _closure_window(self, ev: StepEvent) -> list[Finding]:
        """``optimizer.step(closure)``: the backwards ran inside the step (between its pre and post
        hooks), so the window to judge is the one the closure filled: each closure call must clear the
        gradients it finds, or the step (L-BFGS evaluates the closure several times) reads their sum."""
        oid = id(ev.optimizer)
        pre = self._at_pre.pop(oid, None)
        if pre is None or pre[1] != ev.step:
            return []
        inside = self.state.backward_calls - pre[0]
        win = self._windows.pop(oid, None)
        if inside <= 0 or win is None or win.backwards != inside or not win.got_nonzero:
            return []  # no closure, or some of its backwards went unobserved
        tally = self._tally.get(oid)
        if tally is not None and tally.judged and not tally.closure:
            return []  # a window of plain steps was judged too: mixed styles, judged the plain way only
        self._tally.setdefault(oid, _Tally()).closure = True
        return self._judge(ev, win, closure=True)

    def _judge(self, ev: StepEvent, win: _Window, closure: bool = False) -> list[Finding]:
        oid = id(ev.optimizer)
        tally = self._tally.setdefault(oid, _Tally())
        params = {id(p): p for g in ev.optimizer.param_groups for p in g["params"]}
        pids = [pid for pid in win.got_nonzero if pid in params]
        flags = _resolve([win.got_nonzero[pid] for pid in pids] + [win.held_clear.get(pid, False) for pid in pids])
        nonzero = {pid for pid, f in zip(pids, flags[:len(pids)]) if f}
        cleared = {pid for pid, f in zip(pids, flags[len(pids):]) if f}
        if not nonzero:
            return []
        out: list[Finding] = []
        now = [params[pid].grad for pid in nonzero]
        held = [g for g in now if g is not None]
        if not held or _all_zero(held):
            if closure:
                return out  # (read after the step: a closure that clears after its backward says nothing)
            tally.empty_steps.append(ev.step)
            if getattr(self.state, "forward_calls", 0) > self._fwd_at_backward >= 0:
                tally.step_first += 1
            if len(tally.empty_steps) >= _MIN_WINDOWS:
                out += self._report_empty(ev, tally, len(nonzero))
            return out
        tally.judged += 1
        carried = [pid for pid in nonzero if pid not in cleared]
        if carried:
            tally.carried += 1
            tally.carried_steps.append(ev.step)
            for pid in carried:
                tally.carried_params[pid] = tally.carried_params.get(pid, 0) + 1
            sq = [params[pid].grad.detach().float().pow(2).sum() for pid in carried if params[pid].grad is not None]
            if sq:
                tally.norms.append((ev.step, float(torch.stack(sq).sum().sqrt())))
            if tally.carried >= _MIN_WINDOWS and 2 * tally.carried >= tally.judged:
                out += self._report_carried(ev, tally, params)
        return out

    def _report_carried(self, ev: StepEvent, tally: _Tally, params: dict[int, torch.Tensor]) -> list[Finding]:
        key = ("carried", id(ev.optimizer))
        if key in self._reported:
            return []
        self._reported.add(key)
        bad = [pid for pid, n in tally.carried_params.items() if n >= _MIN_WINDOWS and pid in params]
        names = [self.state.param_name(params[pid]) for pid in bad]
        total = len(params)
        scope = "all" if len(bad) >= total else f"{len(bad)} of {total}"
        growth = ""
        if len(tally.norms) >= 2:
            (s0, n0), (s1, n1) = tally.norms[0], tally.norms[-1]
            growth = f"; the carried gradient norm went {n0:.3g} (step {s0}) -> {n1:.3g} (step {s1})"
        listing = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        where = (f"inside the closure passed to {ev.optimizer_name}.step()" if tally.closure
                 else f"between {ev.optimizer_name}.step() calls")
        msg = (f"gradients are not cleared {where}: in {tally.carried} of "
               f"{tally.judged} observed steps (steps {', '.join(map(str, tally.carried_steps[:6]))}), "
               f"{scope} parameters started backward() still holding the previous step's gradient, so each "
               f"step adds up all past gradients{growth}")
        evidence = {"optimizer": ev.optimizer_name, "steps_observed": tally.judged, "steps_carried": tally.carried,
                    "params": listing, "param_names": names[:8], "grad_norms": tally.norms[-6:],
                    "closure": tally.closure}
        return [self.finding(msg, evidence, location=ev.optimizer_name, step=tally.carried_steps[0])]

    def _report_empty(self, ev: StepEvent, tally: _Tally, n_params: int) -> list[Finding]:
        key = ("empty", id(ev.optimizer))
        if key in self._reported:
            return []
        self._reported.add(key)
        steps = ", ".join(map(str, tally.empty_steps[:6]))
        step_first = 2 * tally.step_first > len(tally.empty_steps)
        msg = (f"zero_grad() between backward() and step(): at {len(tally.empty_steps)} observed steps "
               f"(steps {steps}) {ev.optimizer_name}.step() found every "
               f"gradient None or zero although backward() had produced non-zero gradients for {n_params} "
               f"parameter tensors: the step uses no gradient and the model does not learn")
        if step_first:
            msg = (f"{ev.optimizer_name}.step() runs before loss.backward(): at {len(tally.empty_steps)} observed "
                   f"steps (steps {steps}) the step came after the forward pass but before its backward, found "
                   f"every gradient None or zero (cleared by zero_grad()), and the gradients backward() then "
                   f"produced for {n_params} parameter tensors were cleared before the next step: the model "
                   f"does not learn")
        evidence = {"optimizer": ev.optimizer_name, "steps": tally.empty_steps[:8], "params_with_grad": n_params,
                    "step_before_backward": step_first}
        found = self.finding(msg, evidence, location=ev.optimizer_name, code="zero-grad.cleared-before-step",
                             step=tally.empty_steps[0])
        if step_first:
            opt = ev.optimizer_name
            found = dataclasses.replace(found, fixes=(
                f"Call {opt}.step() after loss.backward(): the order is {opt}.zero_grad(), loss.backward(), "
                f"{opt}.step().",))
        return [found]


def _all_zero(grads: list[torch.Tensor]) -> bool:
    """Whether every gradient is all zero. On the CPU one by one up to the first non-zero one (a read
    there syncs nothing, and a healthy step stops at its first gradient); on an accelerator every
    flag in one host read."""
    if all(g.is_cpu for g in grads):
        return all(bool(_is_zero(g)) for g in grads)
    return all(_resolve([_is_zero(g) for g in grads]))


def _resolve(flags: list[torch.Tensor | bool]) -> list[bool]:
    """Read many 0-d bool tensors with one host sync."""
    tensors = [f for f in flags if isinstance(f, torch.Tensor)]
    if not tensors:
        return [bool(f) for f in flags]
    try:
        values = iter(torch.stack([t.reshape(()) for t in tensors]).tolist())
    except RuntimeError:  # flags on several devices
        values = iter([bool(t) for t in tensors])
    return [next(values) if isinstance(f, torch.Tensor) else bool(f) for f in flags]
