"""Runtime remedies for schedules (per batch, uncapped), recurrent layouts and momentum. Same contract as
:mod:`nndoctor.fix.remedies` (``install(finding, stack)`` changes the run through hooks; the
stack undoes it)."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from nndoctor.fix.remedies import (
    Remedy,
    _on_new_optimizers,
    _on_root_calls,
    _patch,
    _step_post,
    _step_pre,
    _where,
)
from nndoctor.monitor.tensors import param_ids

__all__ = ["EXTRA_REMEDIES"]

Finding = dict[str, Any]


# -- a scheduler stepped per batch, meant per epoch ------------------------------------------
class _Epochs:
    """Counts training epochs as a script runs them: the iterations of a DataLoader that an
    optimizer step followed (evaluation loaders never count), or, without a DataLoader, the
    first training batch coming back (``X[0:40]`` again at the start of the next epoch)."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.iterations: dict[int, int] = {}
        self.training: set[int] = set()
        self.current: int | None = None
        self.first: tuple[tuple[int, ...], torch.Tensor] | None = None
        self.returns = 0
        original = DataLoader.__iter__

        @functools.wraps(original)
        def iterate(loader: DataLoader, *args: Any, **kwargs: Any) -> Any:
            self.current = id(loader)
            self.iterations[id(loader)] = self.iterations.get(id(loader), 0) + 1
            return original(loader, *args, **kwargs)

        DataLoader.__iter__ = iterate  # type: ignore[method-assign]
        stack.callback(setattr, DataLoader, "__iter__", original)
        _step_post(stack, lambda *_: self.training.add(self.current) if self.current is not None else None)
        _on_root_calls(stack, self._forward)

    def _forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not torch.is_grad_enabled():
            return None
        x = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if x is None or x.numel() == 0:
            return None
        with torch.no_grad():
            head = x.detach().flatten()[:16].clone()
        if self.first is None:
            self.first = (tuple(x.shape), head)
        elif self.first[0] == tuple(x.shape) and torch.equal(self.first[1], head):
            self.returns += 1
        return None

    def count(self) -> int:
        return max([self.iterations.get(i, 0) for i in self.training] + [self.returns + 1])


class _Gate:
    """One scheduler's step calls. Until a second call comes in the same epoch, every call steps
    (a scheduler stepped once per epoch is never touched); at that second call it is a per-batch
    scheduler: the step of this epoch's first call is undone and from then on it steps at the
    first call of each new epoch only, as many times as epochs have ended."""

    def __init__(self) -> None:
        self.epoch = 0
        self.calls = 0
        self.per_batch = False
        self.steps = 0                        # real steps after construction
        self.snapshot: tuple[dict[str, Any], list[Any], int] | None = None

    def allow(self, sched: Any, epoch: int) -> bool:
        if epoch != self.epoch:
            self.epoch, self.calls = epoch, 0
        self.calls += 1
        if not self.per_batch and self.calls == 1:
            self.snapshot = (sched.state_dict(), [g["lr"] for g in sched.optimizer.param_groups], self.steps)
            self.steps += 1
            return True
        if not self.per_batch:
            self.per_batch = True
            if self.snapshot is not None:  # undo this epoch's step: the epoch has not ended yet
                state, lrs, self.steps = self.snapshot
                sched.load_state_dict(state)
                for group, lr in zip(sched.optimizer.param_groups, lrs):
                    group["lr"] = lr
            return False
        if self.calls == 1 and self.steps < epoch - 1:
            self.steps += 1
            return True
        return False


def _install_schedule_per_epoch(f: Finding, stack: contextlib.ExitStack) -> None:
    """A learning-rate scheduler (not ReduceLROnPlateau, which reads a metric) called more than
    once in a training epoch advances once per epoch instead (:class:`_Gate`); schedulers
    stepped once per epoch are untouched."""
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

    epochs = _Epochs(stack)
    gates: dict[int, _Gate] = {}

    def gate(original: Any) -> Any:
        @functools.wraps(original)
        def step(self: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(self, ReduceLROnPlateau) or args or kwargs:
                return original(self, *args, **kwargs)
            if id(self) not in gates:  # the step LRScheduler.__init__ makes
                gates[id(self)] = _Gate()
                stack.callback(gates.pop, id(self), None)
                return original(self, *args, **kwargs)
            if gates[id(self)].allow(self, epochs.count()):
                return original(self, *args, **kwargs)
            return None

        return step

    _patch(stack, LRScheduler, "step", gate)


# -- recurrent layers fed (batch, time, features) with batch_first=False ---------------------
def _install_batch_first(f: Finding, stack: contextlib.ExitStack) -> None:
    """A recurrent layer with ``batch_first=False`` that gets inputs laid out like the finding's
    ``input_shape`` (the batch first) reads them batch-first: its outputs come back batch-first,
    as the script's indexing (``out[:, -1]``) already assumes."""
    shape = tuple(f.get("evidence", {}).get("input_shape") or ())
    if len(shape) != 3:
        raise ValueError("the finding names no 3-d input shape")

    def pre(module: nn.Module, args: Any) -> None:
        x = args[0] if args else None
        if (isinstance(module, nn.RNNBase) and not module.batch_first and isinstance(x, torch.Tensor)
                and x.dim() == 3 and tuple(x.shape[1:]) == shape[1:]):
            module.batch_first = True
        return None

    handle = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    stack.callback(handle.remove)


# -- momentum that never fades -----------------------------------------------------------------
def _install_moderate_momentum(f: Finding, stack: contextlib.ExitStack) -> None:
    """SGD momentum >= 0.99 becomes 0.9; an Adam beta1 >= 0.99 becomes 0.9 (beta2 kept)."""
    def change(opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            m = group.get("momentum")
            if isinstance(m, (int, float)) and 0.99 <= m < 1:
                group["momentum"] = 0.9
            betas = group.get("betas")
            if isinstance(betas, (tuple, list)) and len(betas) == 2 and 0.99 <= float(betas[0]) < 1:
                group["betas"] = (0.9, max(float(betas[1]), 0.99))

    _on_new_optimizers(stack, change)


# -- gradients that vanish on the way back -----------------------------------------------
def _install_vanishing(f: Finding, stack: contextlib.ExitStack) -> None:
    """By the activation the finding names: ReLU (units dead for every input pass no gradient)
    becomes LeakyReLU(0.01); tanh/sigmoid nets get Glorot (Xavier-uniform, with the
    activation's gain) init, before the first step, in the Linear/Conv layers whose weights are
    under 1/1.5 of that scale (vanishing gradients: PyTorch's default init of a square layer is
    0.58x plain Glorot, 0.35x Glorot with tanh's gain) or, for saturated activations, over 3x
    it (a Glorot init is kept)."""
    from nndoctor.fix.more_remedies import _install_leaky_relu

    act = str(f.get("evidence", {}).get("activation", "")).lower().replace("nn.", "").replace("torch.", "")
    saturated = f.get("code") == "activation.saturated"
    if "relu" in act and not saturated:
        _install_leaky_relu(f, stack)
        return
    if act not in ("tanh", "sigmoid", "sigmoid/tanh"):
        raise ValueError(f"no remedy known for vanishing gradients with activation {act or '?'!r}")
    # "sigmoid/tanh": the activations are functional calls (no module says which): plain Glorot
    gain = nn.init.calculate_gain(act) if act in ("tanh", "sigmoid") else 1.0
    layers: dict[int, nn.Module] = {}
    done: set[int] = set()

    def seen(module: nn.Module, args: Any) -> None:
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)) and torch.is_grad_enabled():
            layers.setdefault(id(module), module)
        return None

    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if id(optimizer) in done:
            return
        done.add(id(optimizer))
        owned = param_ids(optimizer)
        with torch.no_grad():
            for module in layers.values():
                w = module.weight
                if id(w) not in owned or w.dim() < 2:
                    continue
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
                glorot = gain * (2.0 / (fan_in + fan_out)) ** 0.5
                std = float(w.std())
                if std > 3 * glorot if saturated else std < glorot / 1.5:
                    nn.init.xavier_uniform_(w, gain=gain)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(seen)
    stack.callback(handle.remove)
    _step_pre(stack, pre)


# -- a schedule that keeps rising past its base -------------------------------------------------
def _install_cap_schedule(f: Finding, stack: contextlib.ExitStack) -> None:
    """After every LR-scheduler step, each param group's lr is at most its ``initial_lr`` (the base
    rate the schedule was meant to reach): an uncapped warm-up stops at the base. OneCycleLR and
    CyclicLR (``max_lr`` in the group) rise above it on purpose and are untouched."""
    from torch.optim.lr_scheduler import LRScheduler

    def cap(original: Any) -> Any:
        @functools.wraps(original)
        def step(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(self, *args, **kwargs)
            groups = getattr(getattr(self, "optimizer", None), "param_groups", None) or []
            for group in groups:
                base, lr = group.get("initial_lr"), group.get("lr")
                if isinstance(base, (int, float)) and isinstance(lr, (int, float)) and lr > base \
                        and "max_lr" not in group:
                    group["lr"] = base
            if groups and hasattr(self, "_last_lr"):
                self._last_lr = [group["lr"] for group in groups]
            return out

        return step

    _patch(stack, LRScheduler, "step", cap)


EXTRA_REMEDIES: tuple[Remedy, ...] = (
    Remedy("schedule-per-epoch", ("lr.schedule-collapses",),
           lambda f: f"{f.get('evidence', {}).get('scheduler', 'the scheduler')} advanced once per epoch "
                     "instead of once per batch",
           lambda f: "Call scheduler.step() once per epoch (after the batch loop), or give the scheduler its "
                     "horizon in batches (T_max / step_size / total_steps = epochs * batches per epoch).",
           _install_schedule_per_epoch,
           # (a rate that collapsed early; not a schedule read from the loss as decaying too fast, which may
           # already be stepped per epoch: its fix is a slower decay)
           applies=lambda f: "collapsed_step" in f.get("evidence", {}) or "effective_steps" not in f.get(
               "evidence", {})),
    Remedy("cap-schedule", ("lr.schedule-keeps-rising",),
           lambda f: f"the learning rate of {f.get('evidence', {}).get('optimizer', 'the optimizer')} capped at "
                     "its base rate (initial_lr) after every scheduler step",
           lambda f: "Cap the schedule's factor at 1: lambda s: min(1.0, (s + 1) / warmup).",
           _install_cap_schedule,
           applies=lambda f: f.get("evidence", {}).get("reference") == "initial_lr"),
    Remedy("batch-first-rnn", ("shape.rnn-batch-time-swapped",),
           lambda f: f"{_where(f)} reads its (batch, time, features) inputs with batch_first=True",
           lambda f: f"Pass batch_first=True where {_where(f)} is created (or feed it x.transpose(0, 1)).",
           _install_batch_first),
    Remedy("moderate-momentum", ("optimizer.extreme-momentum",),
           lambda f: "momentum (SGD) or beta1 (Adam) of 0.99 or more lowered to 0.9",
           lambda f: f"Use momentum=0.9 (SGD) or betas=(0.9, 0.999) (Adam) where "
                     f"{f.get('evidence', {}).get('optimizer', 'the optimizer')} is created.",
           _install_moderate_momentum),
    Remedy("vanishing-gradients", ("grad.vanishing-gradients",),
           lambda f: ("ReLU replaced by LeakyReLU(0.01)" if "relu" in str(f.get("evidence", {}).get("activation", ""))
                      else "too-small Linear/Conv weights re-initialised with Glorot (Xavier) init"),
           lambda f: ("Use nn.LeakyReLU(0.01) instead of nn.ReLU (units that are negative for every input pass "
                      "no gradient back), or fewer / wider layers."
                      if "relu" in str(f.get("evidence", {}).get("activation", ""))
                      else f"Initialise with {f.get('evidence', {}).get('init_hint', 'nn.init.xavier_uniform_')} "
                           "(or use ReLU with He init)."),
           _install_vanishing),
    Remedy("glorot-init", ("activation.saturated",),
           lambda f: "Linear/Conv weights more than 3x the Glorot scale re-initialised with Glorot (Xavier) init",
           lambda f: "Initialise with nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain('tanh')) (or "
                     "PyTorch's default), and standardise the inputs: pre-activations far from 0 saturate "
                     f"the {f.get('evidence', {}).get('activation', 'activation')}.",
           _install_vanishing),
)
