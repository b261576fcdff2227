"""A few training steps on copies of the user's weights: what a larger step would have done.

Not a check module (the leading underscore keeps the autoloader away). :func:`try_settings` trains
copies of a model's trained parameters (and of its buffers) for a few steps on batches the run
itself used, once per optimizer setting tried, through ``torch.func.functional_call``: the user's
parameters, buffers, optimizer, gradients and RNG are never touched (the RNG state is forked, the
module attributes a forward changes are put back, and the global optimizer-step hooks, the
observer's among them, are set aside while the probe's own optimizers step). Each setting starts
from the same weights and from a copy of the optimizer's state (Adagrad's accumulated squares,
Adam's moments), so the current setting and a changed one are compared fairly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call

from nndoctor.monitor.model_state import kept_state

__all__ = ["Batch", "RngState", "Setting", "loss_of", "rng_now", "try_settings"]

#: a random state to replay: the CPU generator's and those of some CUDA devices (index -> state)
RngState = tuple[torch.Tensor, dict[int, torch.Tensor]]
MAX_PARAMS = 20_000_000  # models larger than this are not probed (the probe's cost grows with them)
#: parameters x rows x steps x settings of a probe at most (~ multiply-adds of its forwards): the
#: size limit that decides, independent of the machine's load (a 25k-parameter MLP on 32 rows: 3e8)
WORK_BUDGET = 2e10
TIME_BUDGET = 60.0  # seconds: a backstop only (convolutions reuse weights: more work than the estimate)


@dataclass
class Batch:
    """One training batch the run used: the model's positional inputs and the loss's target."""

    args: tuple[torch.Tensor, ...]
    target: torch.Tensor | None


@dataclass
class Setting:
    """An optimizer setting to try: each group's lr times ``lr_factor``, other hyperparameters as
    ``overrides`` (``{"momentum": 0.9}``); ``keep_state``: start from a copy of the optimizer's state."""

    label: str
    lr_factor: float = 1.0
    overrides: dict[str, Any] | None = None
    keep_state: bool = True
    #: another optimizer class instead (its defaults, at rate ``lr``, over every trained parameter)
    other: type[torch.optim.Optimizer] | None = None
    lr: float = 1e-3


def loss_of(name: str, kwargs: dict[str, Any]) -> Callable[..., torch.Tensor] | None:
    """The functional loss ``F.<name>`` called with the recorded keyword arguments, or None."""
    fn = getattr(F, name, None)
    if not callable(fn):
        return None
    kw = {k: v for k, v in kwargs.items() if k not in ("size_average", "reduce")}

    def call(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return fn(out, target, **kw) if target is not None else fn(out, **kw)

    return call


@contextlib.contextmanager
def _no_global_step_hooks() -> Iterator[None]:
    """The probe's optimizers step unseen: every global optimizer-step hook is set aside meanwhile."""
    from torch.optim import optimizer as module

    pre = getattr(module, "_global_optimizer_pre_hooks", None)
    post = getattr(module, "_global_optimizer_post_hooks", None)
    if not isinstance(pre, dict) or not isinstance(post, dict):
        raise RuntimeError("torch's optimizer hooks are not where the probe expects them")
    saved_pre, saved_post = dict(pre), dict(post)
    pre.clear()
    post.clear()
    try:
        yield
    finally:
        pre.clear()
        post.clear()
        pre.update(saved_pre)
        post.update(saved_post)


def _optimizer_for(opt: torch.optim.Optimizer, clones: dict[int, torch.Tensor], setting: Setting) -> torch.optim.Optimizer:
    if setting.other is not None:
        return setting.other(list(clones.values()), lr=setting.lr)
    groups = []
    for group in opt.param_groups:
        g = {k: v for k, v in group.items() if k != "params"}
        g["lr"] = float(group["lr"]) * setting.lr_factor
        g.update(setting.overrides or {})
        g["params"] = [clones[id(p)] for p in group["params"] if id(p) in clones]
        groups.append(g)
    new = type(opt)(groups)
    if setting.keep_state:
        for p in (p for group in opt.param_groups for p in group["params"]):
            st = opt.state.get(p)
            if id(p) in clones and st:
                new.state[clones[id(p)]] = {k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                                            for k, v in st.items()}
    return new


def rng_now(args: Sequence[Any]) -> RngState:
    """The random state a forward on ``args`` is about to draw from (CPU, and the CUDA devices of its
    tensors): replayed, dropout draws the same masks as the run's own forward did."""
    devices = sorted({a.device.index or 0 for a in args if isinstance(a, torch.Tensor) and a.is_cuda})
    return torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices}


def try_settings(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: Callable[..., torch.Tensor],
                 batches: Sequence[Batch], settings: Sequence[Setting], steps: int,
                 held: Batch | None = None, rng: RngState | None = None) -> dict[str, tuple[float, float, float, float]] | None:
    """For each setting: the mean loss over ``batches`` before and after ``steps`` steps (cycling
    through the batches) from the model's current weights, then the loss on ``held`` (a batch not
    trained on) before and after (nan without one). None when the model cannot be probed (an
    optimizer parameter outside the model, too large, too slow). ``rng`` (from :func:`rng_now`): the
    random state each setting starts from (default: the current one), inside a forked RNG."""
    named = dict(model.named_parameters(remove_duplicate=False))
    trained = {id(p) for group in opt.param_groups for p in group["params"]}
    in_model = {id(p) for p in named.values()}
    if not trained or not trained <= in_model or sum(p.numel() for p in named.values()) > MAX_PARAMS:
        return None
    rows = max((int(b.args[0].shape[0]) if b.args[0].dim() else 1) for b in batches)
    if sum(p.numel() for p in named.values()) * rows * max(steps, 1) * len(settings) > WORK_BUDGET:
        return None
    buffers = {n: b for n, b in model.named_buffers(remove_duplicate=False)}
    out: dict[str, tuple[float, float, float, float]] = {}
    start = time.perf_counter()
    devices = sorted({p.device.index or 0 for p in named.values() if p.is_cuda})
    with kept_state(model), torch.random.fork_rng(devices=devices), _no_global_step_hooks(), torch.enable_grad():
        cpu, cuda = rng if rng is not None else (torch.get_rng_state(), {})
        for setting in settings:
            if time.perf_counter() - start > TIME_BUDGET:
                return None
            torch.set_rng_state(cpu)
            for device, state in cuda.items():
                torch.cuda.set_rng_state(state, device)
            clones = {id(p): p.detach().clone().requires_grad_(True) for p in named.values() if id(p) in trained}
            values = {n: clones.get(id(p), p.detach()) for n, p in named.items()}
            values.update({n: b.detach().clone() for n, b in buffers.items()})
            probe_opt = _optimizer_for(opt, clones, setting)
            params = list(clones.values())

            def mean_loss(over: Sequence[Batch], values: dict[str, torch.Tensor] = values) -> float:
                if not over:
                    return math.nan
                with torch.no_grad():
                    total = sum(float(loss(functional_call(model, values, b.args), b.target)) for b in over)
                return total / len(over)

            before, held_before = mean_loss(batches), mean_loss([held] if held is not None else [])
            for i in range(steps):
                if i % 10 == 9 and time.perf_counter() - start > TIME_BUDGET:
                    return None  # (too slow a model to probe within the budget: nothing said)
                b = batches[i % len(batches)]
                value = loss(functional_call(model, values, b.args), b.target)
                grads = torch.autograd.grad(value, params, allow_unused=True)
                for p, g in zip(params, grads):
                    p.grad = g
                probe_opt.step()
            after, held_after = mean_loss(batches), mean_loss([held] if held is not None else [])
            if not math.isfinite(before):
                return None
            out[setting.label] = (before, after, held_before, held_after)
    return out
