"""zero-grad: gradients cleared before any step used them (zero_grad() in the wrong loop).

Two everyday slips give the same picture: gradient accumulation written with ``zero_grad()`` at
the top of every micro-batch (``step()`` every k micro-batches), and ``step()`` indented out of the
batch loop (once per epoch) while ``zero_grad()``/``backward()`` run every batch. Between two
steps of an optimizer several ``backward()`` passes reach its parameters, and each later pass
finds the gradient of the earlier one cleared: all but the last pass are computed and thrown away.

Evidence, per window between two steps of one optimizer (every backward of the window observed):
a backward *discards* when every parameter that held a non-zero gradient from an earlier backward
of the window finds its ``.grad`` None or zero, while the parameter was not changed in place since
(a hand-written update such as SAM's perturbation uses the gradient: ``Tensor._version``). Windows
in which another optimizer stepped between two backwards are skipped (a GAN: the generator's loss
reaches the discriminator, whose ``zero_grad()`` then clears it on purpose), and so are windows
with a forward on inputs that require a gradient (adversarial training / PGD, saliency: those
backwards are for the input's gradient). Reported when at least
``MIN_WINDOWS`` windows discard and ``SHARE`` of the backwards of the multi-backward windows were
discarded (gradient accumulation done right never clears inside a window; LBFGS closures run
inside ``step()`` and are never judged).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
import torch.nn as nn

from nndoctor.checks import Check, register
from nndoctor.debug.zero_grad import _is_zero, _resolve, step_window
from nndoctor.findings import Finding
from nndoctor.monitor.events import BackwardCall, GradContribution, ModelInput, StepEvent

__all__ = ["GradientsDiscarded", "MIN_WINDOWS", "SHARE"]

_no_torch_function = getattr(torch._C, "DisableTorchFunction", contextlib.nullcontext)
_function_mode_on = getattr(torch._C, "_is_torch_function_mode_enabled", lambda: True)
MIN_WINDOWS = 3  # observed windows with a discarded backward
SHARE = 2 / 3  # discarded backwards / backwards of the multi-backward windows
_MAX_BACKWARDS = 512  # per window; a longer window is not judged


@dataclass
class _Window:
    mark: int  # the run's backward count at the optimizer's last step
    backwards: int = 0
    held: dict[int, Any] = field(default_factory=dict)  # pid -> flag: holds a non-zero grad of this window
    last: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid -> (backward index, _version)
    all_clear: dict[int, Any] = field(default_factory=dict)  # backward index -> every eligible grad cleared
    any_eligible: dict[int, Any] = field(default_factory=dict)  # backward index -> some grad was held
    input_grads: bool = False  # a forward of the window took inputs that require a gradient


@dataclass
class _Tally:
    windows: int = 0
    backwards: int = 0
    discarded: int = 0
    wasteful: int = 0
    steps: list[int] = field(default_factory=list)
    per_window: list[tuple[int, int]] = field(default_factory=list)  # (backwards, discarded)


@register
class GradientsDiscarded(Check):
    """Several backward() passes per optimizer step, all but the last cleared before the step."""

    code = "zero-grad.gradients-discarded"
    needs = ("backward", "grad", "step", "model_input")
    sampled_only = frozenset({"backward", "step", "model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._windows: dict[int, _Window] = {}
        self._owner: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._tally: dict[int, _Tally] = {}
        self._reported: set[int] = set()

    def check(self, event: Any) -> Iterable[Finding]:
        if event.kind == "model_input":
            return self._on_input(event)
        if event.kind == "backward":
            return self._on_backward(event)
        if not _function_mode_on():
            return self._on_grad(event) if event.kind == "grad" else self._on_step(event)
        with _no_torch_function():
            return self._on_grad(event) if event.kind == "grad" else self._on_step(event)

    def _window(self, oid: int | None) -> _Window | None:
        return step_window(self._windows, self.state, oid, lambda mark: _Window(mark=mark))

    def _on_input(self, ev: ModelInput) -> Iterable[Finding]:
        """A forward on inputs that require a gradient (adversarial training, saliency): the backward
        is for the input's gradient, and the parameters' gradients are cleared on purpose."""
        if ev.sampled and ev.grad_enabled and any(
                isinstance(a, torch.Tensor) and a.requires_grad and not isinstance(a, nn.Parameter)
                for a in (*ev.args, *ev.kwargs.values())):
            for oid in list(self.state.optimizers):
                win = self._window(oid)
                if win is not None:
                    win.input_grads = True
        return ()

    def _on_backward(self, ev: BackwardCall) -> Iterable[Finding]:
        for oid, info in list(self.state.optimizers.items()):
            opt = info.ref()
            if opt is not None:
                self._learn(oid, opt)
            win = self._window(oid)
            if win is not None:
                win.backwards += 1
        return ()

    def _learn(self, oid: int, opt: Any) -> None:
        """The owner of each parameter (first seen, or after add_param_group())."""
        size = sum(len(g["params"]) for g in opt.param_groups)
        if self._sizes.get(oid) != size:
            self._sizes[oid] = size
            for g in opt.param_groups:
                for p in g["params"]:
                    self._owner.setdefault(id(p), oid)

    def _on_grad(self, ev: GradContribution) -> Iterable[Finding]:
        param = ev.param
        pid = id(param)
        win = self._window(self._owner.get(pid))
        if win is None or not 0 < win.backwards <= _MAX_BACKWARDS:
            return ()
        k = win.backwards
        version = int(getattr(param, "_version", 0))
        last = win.last.get(pid)
        grad = param.grad
        clear = True if grad is None else _is_zero(grad)
        nonzero = ev.grad_zero()
        nonzero = (not nonzero) if isinstance(nonzero, bool) else ~nonzero
        if last is not None and last[0] < k:
            # held from an earlier backward, and the parameter untouched since: was it cleared?
            eligible = win.held.get(pid, False) if last[1] == version else False
            if eligible is not False:
                ok = (~eligible | clear) if isinstance(eligible, torch.Tensor) else clear
                prev_ok = win.all_clear.get(k, True)
                win.all_clear[k] = ok if prev_ok is True else (prev_ok & ok)
                prev_any = win.any_eligible.get(k, False)
                win.any_eligible[k] = eligible if prev_any is False else (prev_any | eligible)
            kept = win.held.get(pid, False)
            kept = (kept & ~clear) if isinstance(clear, torch.Tensor) else (False if clear else kept)
            win.held[pid] = nonzero if kept is False else (kept | nonzero)
        elif last is None:
            win.held[pid] = nonzero
        else:  # a second contribution in the same backward (shared weights)
            prev = win.held.get(pid, False)
            win.held[pid] = nonzero if prev is False else (prev | nonzero)
        win.last[pid] = (k, version)
        return ()

    def _on_step(self, ev: StepEvent) -> Iterable[Finding]:
        oid = id(ev.optimizer)
        if ev.phase == "post":
            return ()
        win = self._windows.pop(oid, None)
        info = self.state.optimizers.get(oid)
        now = self.state.backward_calls
        if (win is None or info is None or win.mark != info.backwards_at_post or win.backwards < 2
                or win.input_grads):
            return ()
        if win.backwards != now - win.mark or win.backwards > _MAX_BACKWARDS:
            return ()  # a partial view
        for other, oinfo in self.state.optimizers.items():
            at = oinfo.backwards_at_post
            if other != oid and at is not None and win.mark < at < now:
                return ()  # another optimizer stepped inside this window (GANs, alternating updates)
        keys = sorted(win.any_eligible)
        flags = _resolve([win.any_eligible[k] for k in keys] + [win.all_clear.get(k, True) for k in keys])
        discarded = sum(1 for a, c in zip(flags[:len(keys)], flags[len(keys):]) if a and c)
        return self._judge(ev, win.backwards, discarded)

    def _judge(self, ev: StepEvent, backwards: int, discarded: int) -> list[Finding]:
        oid = id(ev.optimizer)
        tally = self._tally.setdefault(oid, _Tally())
        tally.windows += 1
        tally.backwards += backwards
        tally.discarded += discarded
        tally.per_window.append((backwards, discarded))
        del tally.per_window[:-8]
        if discarded:
            tally.wasteful += 1
            tally.steps.append(ev.step)
            del tally.steps[8:]
        if (oid in self._reported or tally.wasteful < MIN_WINDOWS or 2 * tally.wasteful < tally.windows
                or tally.discarded < SHARE * tally.backwards):
            return []
        self._reported.add(oid)
        name = ev.optimizer_name
        per = tally.backwards / tally.windows
        msg = (f"gradients are cleared before {name}.step() uses them: in {tally.wasteful} of {tally.windows} "
               f"observed steps with several backward() passes ({per:.3g} per step on average), "
               f"{tally.discarded} of {tally.backwards} passes had their gradients cleared by a later "
               f"zero_grad() before any step; only the last pass before each step reaches the update "
               f"(zero_grad() inside the accumulation loop, or step() outside the batch loop)")
        evidence = {"optimizer": name, "steps_observed": tally.windows, "backwards": tally.backwards,
                    "discarded": tally.discarded, "backwards_per_step": round(per, 3),
                    "windows": tally.per_window[-6:], "steps": tally.steps[:6]}
        return [self.finding(msg, evidence, location=name, step=tally.steps[0])]
