"""More runtime remedies: optimizer settings, target dtypes, shuffling, evaluation inputs,
parameters outside the module tree, dead ReLUs. Same contract as :mod:`nndoctor.fix.remedies`
(``install(finding, stack)`` changes the run through hooks; the stack undoes it)."""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from nndoctor.fix.remedies import Remedy, _on_new_optimizers, _on_root_calls, _patch, _step_pre, _where
from nndoctor.monitor.tensors import own_parameters, param_ids

__all__ = ["MORE_REMEDIES"]

Finding = dict[str, Any]


# -- optimizer settings ------------------------------------------------------------------
#: setting -> (is the value out of range?, the default it goes back to)
_SANE: dict[str, tuple[Callable[[Any], bool], Any]] = {
    "maximize": (lambda v: v is True, False),
    "eps": (lambda v: isinstance(v, (int, float)) and v > 1e-3, 1e-8),
    "betas": (lambda v: isinstance(v, (tuple, list)) and len(v) == 2
              and not (0 <= float(v[0]) < 1 and 0 <= float(v[1]) < 1 and float(v[1]) >= float(v[0])), (0.9, 0.999)),
    "momentum": (lambda v: isinstance(v, (int, float)) and v >= 1, 0.9),
    "dampening": (lambda v: isinstance(v, (int, float)) and v >= 1, 0.0),
    "weight_decay": (lambda v: isinstance(v, (int, float)) and v < 0, 0.0),
    "alpha": (lambda v: isinstance(v, (int, float)) and v >= 1, 0.99),
}


def _setting(f: Finding) -> str:
    code = f.get("code", "")
    named = {"optimizer.maximize": "maximize", "optimizer.adam-eps": "eps", "optimizer.adam-betas": "betas"}
    return named.get(code) or str(f.get("evidence", {}).get("setting", ""))


def _install_optimizer_default(f: Finding, stack: contextlib.ExitStack) -> None:
    """The finding's optimizer setting goes back to torch's default in every group where it is
    out of the sane range (groups with a sane value keep theirs)."""
    setting = _setting(f)
    if setting not in _SANE:
        raise ValueError(f"no default known for the optimizer setting {setting!r}")
    insane, default = _SANE[setting]

    def change(opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            if setting in group and insane(group[setting]):
                group[setting] = default

    _on_new_optimizers(stack, change)


# -- target dtype ------------------------------------------------------------------------
_FLOAT_TARGET_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
                        "smooth_l1_loss", "huber_loss", "soft_margin_loss")


def _install_target_dtype(f: Finding, stack: contextlib.ExitStack) -> None:
    """Losses get the target dtype they need: integer/bool targets of element-wise losses are
    cast to the prediction's float dtype; float class indices of cross-entropy/NLL become long."""
    def to_float(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if (isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor) and input.is_floating_point()
                    and not target.is_floating_point()):
                target = target.to(input.dtype)
            return original(input, target, *args, **kwargs)

        return loss

    def to_long(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if (isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor) and target.is_floating_point()
                    and target.dim() == input.dim() - 1 and bool((target == target.round()).all())):
                target = target.long()
            return original(input, target, *args, **kwargs)

        return loss

    for name in _FLOAT_TARGET_LOSSES:
        _patch(stack, F, name, to_float)
    for name in ("cross_entropy", "nll_loss"):
        _patch(stack, F, name, to_long)


# -- data order --------------------------------------------------------------------------
def _install_shuffle(f: Finding, stack: contextlib.ExitStack) -> None:
    """A DataLoader read in order while gradients are on (a training loop) reads its batches in
    a random order (a fixed seed: the re-run repeats itself); evaluation loops keep their order."""
    original = DataLoader.__iter__

    @functools.wraps(original)
    def iterate(self: DataLoader, *args: Any, **kwargs: Any) -> Any:
        bs = self.batch_sampler
        if (torch.is_grad_enabled() and isinstance(bs, BatchSampler) and isinstance(bs.sampler, SequentialSampler)
                and not getattr(self, "_nndoctor_shuffled", False)):
            bs.sampler = RandomSampler(self.dataset, generator=torch.Generator().manual_seed(0))
            object.__setattr__(self, "_nndoctor_shuffled", True)
        return original(self, *args, **kwargs)

    DataLoader.__iter__ = iterate  # type: ignore[method-assign]
    stack.callback(setattr, DataLoader, "__iter__", original)


# -- evaluation inputs -------------------------------------------------------------------
def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.detach().reshape(x.shape[0], -1).double()
    return flat.mean(0), flat.std(0) if flat.shape[0] > 1 else torch.ones_like(flat[0])


def _install_align_eval_inputs(f: Finding, stack: contextlib.ExitStack) -> None:
    """Evaluation inputs (forwards without gradient) that sit on another scale than the training
    inputs (std 5x apart, or the mean 3 stds away: the check's own thresholds), batch by batch,
    are mapped per feature onto the training statistics with the statistics of the first such
    batches; evaluation batches on the training scale are untouched."""
    train: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
    evals: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}

    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        i = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()
                  and a.dim() >= 2), None)
        if i is None:
            return None
        x, key = args[i], id(module)
        if torch.is_grad_enabled():
            if key not in train or train[key][2] < 8:
                m, s = _moments(x)
                old = train.get(key)
                n = old[2] + 1 if old and old[0].shape == m.shape else 1
                train[key] = (m, s, n) if n == 1 else ((old[0] * (n - 1) + m) / n, (old[1] * (n - 1) + s) / n, n)
            return None
        if key not in train or x.shape[0] < 2:
            return None
        tm, ts, _ = train[key]
        em, es = _moments(x)
        if em.shape != tm.shape:
            return None
        g_t, g_e = float(ts.mean()), float(es.mean())
        shift = float((em - tm).abs().mean()) / max(g_t, 1e-12)
        if not (g_t > 0 and g_e > 0 and math.isfinite(shift) and (g_e / g_t >= 5 or g_t / g_e >= 5 or shift >= 3)):
            return None  # this batch is on the training scale
        old = evals.get(key)
        if old is None or old[2] < 8:  # the statistics of the first few off-scale batches, then kept
            n = old[2] + 1 if old else 1
            evals[key] = (em, es, 1) if old is None else ((old[0] * (n - 1) + em) / n, (old[1] * (n - 1) + es) / n, n)
        em, es, _ = evals[key]
        flat = x.reshape(x.shape[0], -1)
        scale = torch.where(es > 1e-6 * g_e, ts / es.clamp_min(1e-30), torch.zeros_like(ts)).to(flat.dtype)
        out = ((flat - em.to(flat.dtype)) * scale + tm.to(flat.dtype)).reshape(x.shape)
        return (*args[:i], out, *args[i + 1:])

    _on_root_calls(stack, pre)


# -- parameters that never learn ---------------------------------------------------------
def _install_unfreeze_all(f: Finding, stack: contextlib.ExitStack) -> None:
    """Every module with parameters that runs in a training forward (at any depth, also one kept
    in a plain Python list and so missing from ``model.parameters()``) learns: its parameters
    require gradients and join the optimizer before its next step."""
    called: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def seen(module: nn.Module, args: Any) -> None:
        if torch.is_grad_enabled() and next(iter(own_parameters(module)), None) is not None:
            if module not in called:
                called.add(module)
                for p in own_parameters(module):
                    if p.is_floating_point():
                        p.requires_grad_(True)
        return None

    def step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        have = param_ids(optimizer)
        missing, ids = [], set()
        for m in list(called):
            for p in own_parameters(m):
                if id(p) not in have and id(p) not in ids and p.requires_grad:
                    missing.append(p)
                    ids.add(id(p))
        if missing:
            optimizer.add_param_group({"params": missing})

    handle = module_hooks.register_module_forward_pre_hook(seen)
    stack.callback(handle.remove)
    _step_pre(stack, step)


# -- dead ReLUs --------------------------------------------------------------------------
def _all_dead_site(f: Finding) -> str:
    """The module path (``encoder.3``, without the model's name) of a ReLU module whose every unit
    the finding measured dead (share >= 0.99 at each sampled step); else ''."""
    ev = f.get("evidence", {}) or {}
    site, shares = str(ev.get("activation_site") or ""), ev.get("shares") or [ev.get("share")]
    try:
        dead = bool(shares) and all(float(s) >= 0.99 for s in shares)
    except (TypeError, ValueError):
        return ""
    return site.split(".", 1)[1] if dead and "." in site else ""


def _install_leaky_relu(f: Finding, stack: contextlib.ExitStack) -> None:
    """ReLU (module and functional) becomes LeakyReLU(0.01): a unit negative for every input
    still passes a gradient back. A ReLU module whose units were all dead (the layer outputs 0
    for every input, a bottleneck of 2 units after a code layer) passes its input through
    instead: it is a linear layer now, which a slope of 0.01 would shrink 100-fold."""
    def leaky(module: nn.Module, args: Any, output: Any) -> Any:
        return F.leaky_relu(args[0], 0.01) if args and isinstance(args[0], torch.Tensor) else output

    def identity(module: nn.Module, args: Any, output: Any) -> Any:
        return args[0] if args and isinstance(args[0], torch.Tensor) else output

    def hook(module: nn.Module, args: Any) -> None:
        if type(module) is nn.ReLU and not getattr(module, "_nndoctor_leaky", False):
            module._nndoctor_leaky = True  # type: ignore[attr-defined]
            stack.callback(module.register_forward_hook(leaky).remove)
        return None

    path, resolved = _all_dead_site(f), set()

    def resolve(root: nn.Module, args: Any) -> None:
        if not path or id(root) in resolved:
            return None
        resolved.add(id(root))
        try:
            target = root.get_submodule(path)
        except AttributeError:
            return None
        if type(target) is nn.ReLU and not getattr(target, "_nndoctor_leaky", False):
            target._nndoctor_leaky = True  # type: ignore[attr-defined]
            stack.callback(target.register_forward_hook(identity).remove)
        return None

    _on_root_calls(stack, resolve)
    handle = module_hooks.register_module_forward_pre_hook(hook)
    stack.callback(handle.remove)

    def functional(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def relu(x: Any, *args: Any, **kwargs: Any) -> Any:
            return F.leaky_relu(x, 0.01) if isinstance(x, torch.Tensor) and not kwargs.get("inplace") else original(
                x, *args, **kwargs)

        return relu

    _patch(stack, F, "relu", functional)
    _patch(stack, torch, "relu", functional)


MORE_REMEDIES: tuple[Remedy, ...] = (
    Remedy("optimizer-default-setting",
           ("optimizer.maximize", "optimizer.adam-eps", "optimizer.adam-betas", "optimizer.bad-setting"),
           lambda f: f"{_setting(f)} of the optimizer back to torch's default "
                     f"({_SANE.get(_setting(f), (None, '?'))[1]})",
           lambda f: (f"Remove {_setting(f)}={f.get('evidence', {}).get('value', '?')} where "
                      f"{f.get('evidence', {}).get('optimizer', 'the optimizer')} is created (torch's default is "
                      f"{_SANE.get(_setting(f), (None, '?'))[1]})."),
           _install_optimizer_default),
    Remedy("target-dtype", ("dtype.crash-target-dtype",),
           lambda f: "the loss target cast to the dtype the loss needs (float for BCE/MSE, long for class indices)",
           lambda f: "Build the target tensor with the loss's dtype where the data is made: y.float() for "
                     "BCEWithLogitsLoss/MSELoss, y.long() for CrossEntropyLoss.",
           _install_target_dtype),
    Remedy("shuffle-training-batches", ("data.unshuffled-batches",),
           lambda f: "the training DataLoader reads its batches in a random order",
           lambda f: "Pass shuffle=True to the training DataLoader (keep the evaluation loaders in order).",
           _install_shuffle),
    Remedy("align-eval-inputs", ("preprocessing.eval-inputs-differ",),
           lambda f: f"{_where(f)}'s evaluation inputs mapped onto the training inputs' statistics",
           lambda f: "Preprocess the evaluation inputs exactly like the training inputs (the same scaler, fitted "
                     "on the training set: X_test = scaler.transform(X_test)).",
           _install_align_eval_inputs),
    Remedy("leaky-relu", ("activation.dead-relu",),
           lambda f: "ReLU replaced by LeakyReLU(0.01)" + (
               f"; the ReLU at {f['evidence']['activation_site']} (every unit dead) passes its input through"
               if _all_dead_site(f) else ""),
           lambda f: (f"Remove the ReLU at {f['evidence']['activation_site']} (every unit of {_where(f)} is dead: "
                      "a code / bottleneck layer is usually linear), and use nn.LeakyReLU(0.01) elsewhere."
                      if _all_dead_site(f) else
                      f"Use nn.LeakyReLU(0.01) instead of nn.ReLU at {_where(f)} (or a smaller learning rate / "
                      "He init if the units died after a large step)."),
           _install_leaky_relu),
)
