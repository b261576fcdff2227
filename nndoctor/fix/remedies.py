"""Runtime remedies: each undoes one diagnosed bug through PyTorch's hooks, source untouched.

A remedy answers one or more finding codes. ``install`` runs in the re-run's own process,
before the user's script starts, and applies the change through global module/optimizer
hooks or by wrapping a ``torch.nn.functional`` call; it is given the finding as JSON
(code, location, evidence) and an :class:`contextlib.ExitStack` that undoes it. ``edit`` says
what to change in the source so the user can make the fix permanent.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks

from nndoctor.fix.hand_lr import by_hand, install_gradient_scale
from nndoctor.fix.new_optimizers import on_new_optimizers as _on_new_optimizers  # (the remedy modules' name)
from nndoctor.monitor.tensors import own_parameters

__all__ = ["REMEDIES", "Remedy", "all_remedies", "remedy_for", "suggested_lr"]

Finding = dict[str, Any]
Installer = Callable[[Finding, contextlib.ExitStack], None]


@dataclass(frozen=True)
class Remedy:
    name: str
    codes: tuple[str, ...]                  # finding codes this remedy answers
    describe: Callable[[Finding], str]      # one line: what the re-run changes
    edit: Callable[[Finding], str]          # what to change in the source
    install: Installer
    #: whether the finding carries what ``install`` needs (a call site, a size); None: always
    applies: Callable[[Finding], bool] | None = None
    #: the remedy changes the training objective (a penalty's weight, label smoothing): a loss the
    #: script prints is then no yardstick (:func:`nndoctor.fix.metrics.judge`)
    changes_loss: bool = False
    #: tried only where the diagnosis shows the finding hurting this run: another warning or error
    #: names it as its cause (inputs on a large scale that a model trains on well anyway: no evidence
    #: that rescaling them helps, see :func:`nndoctor.fix.session.candidates`)
    needs_symptom: bool = False
    #: a regulariser (weight decay): it trades the training loss for held-out error, so a training
    #: loss that rises again late is what it does, not a sign of an unstable fix
    regularises: bool = False

    def answers(self, finding: Finding) -> bool:
        if finding.get("code") not in self.codes:
            return False
        try:
            return self.applies is None or bool(self.applies(finding))
        except Exception:  # noqa: BLE001 - a finding the remedy cannot read has no remedy
            return False


def _site(f: Finding) -> str:
    site = f.get("evidence", {}).get("site")
    return f" (at {site})" if site else ""


def _where(f: Finding) -> str:
    return f.get("location") or f.get("evidence", {}).get("model") or "the model"


# -- helpers -----------------------------------------------------------------------------
def _patch(stack: contextlib.ExitStack, owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
    original = getattr(owner, name)
    setattr(owner, name, wrapper(original))
    stack.callback(setattr, owner, name, original)


def _forward_pre(stack: contextlib.ExitStack, hook: Callable[..., Any]) -> None:
    handle = module_hooks.register_module_forward_pre_hook(hook)
    stack.callback(handle.remove)


def _step_pre(stack: contextlib.ExitStack, hook: Callable[..., Any]) -> None:
    handle = optimizer_hooks.register_optimizer_step_pre_hook(hook)
    stack.callback(handle.remove)


def _step_post(stack: contextlib.ExitStack, hook: Callable[..., Any]) -> None:
    handle = optimizer_hooks.register_optimizer_step_post_hook(hook)
    stack.callback(handle.remove)


def _on_root_calls(stack: contextlib.ExitStack, pre: Callable[[nn.Module, tuple[Any, ...]], Any],
                   post: Callable[[nn.Module], None] | None = None) -> None:
    """Call ``pre`` before every outermost call of a model (a module with parameters: not a loss
    module; what ``pre`` returns replaces the arguments, as a forward pre-hook's does) and
    ``post`` after it."""
    depth = [0]

    def _model(module: nn.Module) -> bool:
        return next(iter(module.parameters()), None) is not None

    def _pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        depth[0] += 1
        return pre(module, args) if depth[0] == 1 and _model(module) else None

    def _post(module: nn.Module, args: Any, output: Any) -> None:
        depth[0] = max(0, depth[0] - 1)
        if depth[0] == 0 and post is not None and _model(module):
            post(module)

    h1 = module_hooks.register_module_forward_pre_hook(_pre)
    h2 = module_hooks.register_module_forward_hook(_post, always_call=True)
    stack.callback(h1.remove)
    stack.callback(h2.remove)


def _transform_root_inputs(stack: contextlib.ExitStack, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Apply ``fn`` to the first floating-point argument of every outermost model call."""
    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        i = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        return None if i is None else (*args[:i], fn(args[i]), *args[i + 1:])

    _on_root_calls(stack, pre)


# -- loss input --------------------------------------------------------------------------
_PROB_OPS = {"softmax": ("softmax",), "sigmoid": ("sigmoid",), "log_softmax": ("log_softmax",), "relu": ("relu",)}


def _install_drop_activation(f: Finding, stack: contextlib.ExitStack) -> None:
    """The activation that feeds a logit loss returns its input (the logits) instead."""
    default = {"loss-input.relu-into-logit-loss": "relu", "loss-input.log-softmax-into-cross-entropy": "log_softmax",
               "loss-input.log-probabilities-into-logit-loss": "log_softmax"}.get(str(f.get("code")), "softmax")
    act = str(f.get("evidence", {}).get("activation", default)).split()[0].lower()
    act = {"nn.softmax": "softmax", "logsoftmax": "log_softmax"}.get(act, act)
    names = _PROB_OPS.get(act, ("softmax",))
    module_types = {"softmax": (nn.Softmax,), "sigmoid": (nn.Sigmoid,), "log_softmax": (nn.LogSoftmax,),
                    "relu": (nn.ReLU,)}
    types = tuple(t for n in names for t in module_types.get(n, ()))
    loc = f.get("location", "")
    path = loc.split(".", 1)[1] if "." in loc else ""

    def identity(module: nn.Module, args: Any, output: Any) -> Any:
        return args[0] if args else output

    # a module at the finding's location (``model.5``) is an activation module: make it the identity
    def pre(module: nn.Module, args: Any) -> None:
        if not path:
            return None
        try:
            target = module.get_submodule(path)
        except AttributeError:
            return None
        if isinstance(target, types) and not getattr(target, "_nndoctor_fixed", False):
            target._nndoctor_fixed = True  # type: ignore[attr-defined]
            stack.callback(target.register_forward_hook(identity).remove)
        return None

    _forward_pre(stack, pre)
    if not path or loc.count(".") == 0:
        # a functional call inside the model's forward: the model's last op of that kind returns its input
        shape = f.get("evidence", {}).get("input_shape") or ()

        def matches(x: Any) -> bool:  # the loss input's shape: never an attention softmax
            return (isinstance(x, torch.Tensor) and bool(shape) and x.dim() == len(shape)
                    and x.shape[-1] == shape[-1])

        def passthrough(original: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original)
            def call(x: Any, *args: Any, **kwargs: Any) -> Any:
                return x if matches(x) else original(x, *args, **kwargs)

            return call

        for name in names:
            for owner in (F, torch):
                if hasattr(owner, name):
                    _patch(stack, owner, name, passthrough)


def _install_log_for_nll(f: Finding, stack: contextlib.ExitStack) -> None:
    """NLLLoss gets log-probabilities: log_softmax of raw scores, or the log of probabilities."""
    probabilities = f.get("code") == "loss-input.probabilities-into-nll-loss"

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def nll(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            dim = 1 if input.dim() > 1 else 0
            with torch.no_grad():  # already log-probabilities (rows of exp summing to 1): left alone
                is_logp = bool((input <= 1e-6).all()) and bool(
                    torch.allclose(input.detach().exp().sum(dim), torch.ones(()), atol=1e-3))
            if is_logp:
                return original(input, target, *args, **kwargs)
            logp = input.clamp_min(1e-12).log() if probabilities else F.log_softmax(input, dim=dim)
            return original(logp, target, *args, **kwargs)

        return nll

    _patch(stack, F, "nll_loss", wrap)


# -- preprocessing -----------------------------------------------------------------------
def _install_normalise(f: Finding, stack: contextlib.ExitStack) -> None:
    """Standardise the model's inputs: with the finding's measured pixel statistics, else per
    feature with the statistics of the first training batch (kept for every later call)."""
    ev = f.get("evidence", {})
    divisor, mean, std = ev.get("divisor"), ev.get("norm_mean"), ev.get("norm_std")
    if isinstance(divisor, (int, float)) and isinstance(mean, (int, float)) and isinstance(std, (int, float)) and std:
        _transform_root_inputs(stack, lambda x: (x / divisor - mean) / std)
        return
    stats: dict[str, torch.Tensor] = {}

    def standardise(x: torch.Tensor) -> torch.Tensor:
        if "mean" not in stats:
            flat = x.detach().reshape(x.shape[0], -1).double() if x.dim() > 1 else x.detach().double()[:, None]
            stats["mean"] = flat.mean(0)
            stats["std"] = flat.std(0).clamp_min(1e-6) if len(flat) > 1 else torch.ones_like(flat[0])
        shape = x.shape
        flat = x.reshape(shape[0], -1) if x.dim() > 1 else x[:, None]
        out = (flat - stats["mean"].to(flat.dtype)) / stats["std"].to(flat.dtype)
        return out.reshape(shape)

    _transform_root_inputs(stack, standardise)


def _install_nan_to_num(f: Finding, stack: contextlib.ExitStack) -> None:
    """NaN inputs of the model replaced by 0 (what an imputer's constant fill would do); so are
    NaN inputs of each layer with parameters, for a NaN made inside the model before its first
    layer (a parameter-free normalisation dividing an all-zero row by its std of 0)."""
    def clean(x: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)

    _transform_root_inputs(stack, clean)

    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        if next(iter(own_parameters(module)), None) is None:
            return None
        if not any(isinstance(a, torch.Tensor) and a.is_floating_point() and not bool(torch.isfinite(a).all())
                   for a in args):
            return None
        return tuple(clean(a) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    _forward_pre(stack, pre)


# -- gradients, mode, dtype ---------------------------------------------------------------
def _install_zero_grad(f: Finding, stack: contextlib.ExitStack) -> None:
    """Clear every stepped optimizer's gradients right after its step. When the script clears
    them between backward() and step() (so every step sees zeros), its own clearing calls are
    made no-ops: the post-step clearing is the only one."""
    original = torch.optim.Optimizer.zero_grad

    def post(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        original(optimizer, set_to_none=True)

    _step_post(stack, post)
    if f.get("code") == "zero-grad.cleared-before-step":
        def noop(original_: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original_)
            def zero_grad(self: Any, *args: Any, **kwargs: Any) -> None:
                return None

            return zero_grad

        _patch(stack, torch.optim.Optimizer, "zero_grad", noop)
        _patch(stack, nn.Module, "zero_grad", noop)


def _install_train_mode(f: Finding, stack: contextlib.ExitStack) -> None:
    """Training forwards run in train mode; forwards without gradient in eval mode."""
    training_bug = f.get("code") == "train-mode.training-in-eval-mode"
    switched: list[nn.Module] = []

    def pre(module: nn.Module, args: Any) -> None:
        grad = torch.is_grad_enabled()
        if training_bug and grad and not module.training:
            module.train()
        elif not training_bug and not grad and module.training:
            switched.append(module)
            module.eval()

    def post(module: nn.Module) -> None:
        if switched and switched[-1] is module:
            switched.pop().train()

    _on_root_calls(stack, pre, post)


def _install_float32(f: Finding, stack: contextlib.ExitStack) -> None:
    """Models and inputs in float32: double inputs are cast, double parameters converted."""
    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        for p in module.parameters():
            if p.dtype == torch.float64:
                p.data = p.data.float()
                if p.grad is not None:
                    p.grad = p.grad.float()
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.dtype == torch.float64 else a for a in args)

    _on_root_calls(stack, pre)


def _install_reshape_target(f: Finding, stack: contextlib.ExitStack) -> None:
    """Element-wise losses get the target reshaped to the prediction's shape when only a
    dimension of size 1 differs (the silent (N, 1) vs (N,) broadcast)."""
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if (isinstance(input, torch.Tensor) and isinstance(target, torch.Tensor)
                    and input.shape != target.shape and input.numel() == target.numel()):
                target = target.reshape(input.shape)
            return original(input, target, *args, **kwargs)

        return loss

    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits"):
        _patch(stack, F, name, wrap)


# -- optimizer settings ------------------------------------------------------------------
#: the update/weight ratio a healthy step has (the lr check's "about 1e-3")
_HEALTHY_RATIO = 1e-3
#: the ratio a too-low rate is raised to: the top of the healthy band (lr.too-low's suggest_high)
_RAISED_RATIO = 1e-2


def suggested_lr(f: Finding) -> float | None:
    """The rate that gives the measured updates a healthy size: lr * 1e-3 / median update ratio
    (the update is proportional to lr) for a rate too high, kept within 10x-1000x below it; lr * 1e-2 /
    ratio for a rate too low, within 10x-10,000x above it (a rate that barely moves the loss is raised
    to the top of the healthy band); one noisy measurement cannot overshoot further; without a measured
    ratio, the geometric middle of the finding's suggested range. A rate the step-size probe measured
    working (``probe_best`` "lr 0.1": copies of the weights trained at 10x or 100x the rate) is that rate."""
    ev = f.get("evidence", {})
    if str(ev.get("probe_best", "")).startswith("lr ") and f.get("code") == "lr.too-low":
        try:
            probed = float(ev["suggest_high"])
        except (KeyError, TypeError, ValueError):
            probed = 0.0
        if probed > 0 and math.isfinite(probed):
            return probed
    try:
        lr, ratio = float(ev["lr"]), float(ev["update_ratio_median"])
    except (KeyError, TypeError, ValueError):
        lr = ratio = 0.0
    if lr > 0 and ratio > 0 and math.isfinite(lr * ratio) and f.get("code") in ("lr.too-high", "lr.too-low"):
        if f.get("code") == "lr.too-high":
            return min(max(lr * _HEALTHY_RATIO / ratio, lr / 1000), lr / 10)
        # a loss that barely moved: the top of the healthy band (the middle undershoots: an update
        # ratio of 1e-3 reached 0.65 of the way to the working rate's loss on the corpus's tune scripts)
        return max(min(lr * _RAISED_RATIO / ratio, lr * 10_000), lr * 10)
    try:
        lo, hi = float(ev["suggest_low"]), float(ev["suggest_high"])
    except (KeyError, TypeError, ValueError):
        return None
    return math.sqrt(lo * hi) if lo > 0 and hi > 0 else None


def _install_lr(f: Finding, stack: contextlib.ExitStack) -> None:
    lr = suggested_lr(f)
    if lr is None:
        raise ValueError("the finding names no suggested learning-rate range")
    if by_hand(f):  # no optimizer object: the script's own update, scaled through its gradients
        install_gradient_scale(lr / float(f["evidence"]["lr"]), stack)
        return

    lower = f.get("code") != "lr.too-low"

    def change(opt: torch.optim.Optimizer) -> None:
        """Only a rate on the finding's wrong side moves (a healthy rate is never made worse)."""
        for group in opt.param_groups:
            now = group.get("lr")
            if isinstance(now, (int, float)) and not isinstance(now, bool) and (now > lr if lower else now < lr):
                group["lr"] = lr

    _on_new_optimizers(stack, change)


def _lr_edit(f: Finding) -> str:
    lr = suggested_lr(f)
    if by_hand(f):
        now = f.get("evidence", {}).get("lr", "?")
        return (f"Scale the rate of the hand-written update (w -= lr * w.grad) by {lr / float(now):.3g}: each "
                f"update {lr:.3g}x the gradient instead of {now}x." if lr and now != "?" else
                "Change the rate of the hand-written update (w -= lr * w.grad).")
    return (f"Set lr={lr:.3g} where the optimizer is created." if lr
            else "Change the learning rate where the optimizer is created.")


def _install_weight_decay(f: Finding, stack: contextlib.ExitStack) -> None:
    suggested = f.get("evidence", {}).get("suggested")

    def change(opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            wd = group.get("weight_decay") or 0.0
            if wd:
                group["weight_decay"] = float(suggested) if isinstance(suggested, (int, float)) else wd / 100

    _on_new_optimizers(stack, change)


def _install_dropout(f: Finding, stack: contextlib.ExitStack) -> None:
    def pre(module: nn.Module, args: Any) -> None:
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0.5:
            module.p = 0.2
        return None

    _forward_pre(stack, pre)


def _install_clip(f: Finding, stack: contextlib.ExitStack) -> None:
    def pre(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if params:
            nn.utils.clip_grad_norm_(params, 1.0)

    _step_pre(stack, pre)


def _install_class_weights(f: Finding, stack: contextlib.ExitStack) -> None:
    """Cross-entropy weighted by inverse class frequency; a binary logit loss gets ``pos_weight``
    = negatives / positives. The frequencies are counted over every training target the re-run's
    losses see (each class count of a whole epoch, not of the diagnosis's sampled batches: a
    rare class counted in a sample is off by 1/sqrt(its count)); until the re-run has counted as
    many targets as the finding did, the finding's counts are used."""
    prior = {int(k): int(v) for k, v in (f.get("evidence", {}).get("counts") or {}).items()}
    if len(prior) < 2 or min(prior.values()) <= 0:
        raise ValueError("the finding names no class counts")
    k = max(prior) + 1
    seen = torch.zeros(k, dtype=torch.float64)

    def counts() -> torch.Tensor:
        """The class counts to weight by: the re-run's own once it has counted enough."""
        if float(seen.sum()) >= sum(prior.values()):
            return seen
        return torch.tensor([float(prior.get(c, 0)) for c in range(k)], dtype=torch.float64)

    def count(target: torch.Tensor, classes: bool) -> None:
        if not torch.is_grad_enabled():
            return  # evaluation targets are not the training distribution
        t = target.detach().reshape(-1)
        if classes:
            t = t[(t >= 0) & (t < k)].long()  # ignore_index (-100) and stray ids left out
        else:
            if not bool(((t == 0) | (t == 1)).all()):
                return  # soft targets: no classes to count
            t = t.long()
        seen.add_(torch.bincount(t.cpu(), minlength=k)[:k].double())

    def ce(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: torch.Tensor, target: torch.Tensor, weight_: Any = None, *args: Any, **kwargs: Any) -> Any:
            if weight_ is None and kwargs.get("weight") is None and input.dim() >= 1 and input.shape[1 if input.dim() > 1 else 0] == k:
                if isinstance(target, torch.Tensor) and not target.is_floating_point():
                    count(target, classes=True)
                c = counts()
                present = c > 0
                weight = torch.where(present, c.sum() / (int(present.sum()) * c.clamp_min(1.0)), torch.zeros_like(c))
                kwargs["weight"] = weight.to(input.device, input.dtype)
                return original(input, target, *args, **kwargs)
            return original(input, target, weight_, *args, **kwargs)

        return call

    def bce(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def call(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if k == 2 and kwargs.get("pos_weight") is None and len(args) < 3:
                if isinstance(target, torch.Tensor):
                    count(target, classes=False)
                c = counts()
                kwargs["pos_weight"] = torch.tensor(float(c[0] / c[1].clamp_min(1.0)), device=input.device,
                                                    dtype=input.dtype)
            return original(input, target, *args, **kwargs)

        return call

    _patch(stack, F, "cross_entropy", ce)
    _patch(stack, F, "binary_cross_entropy_with_logits", bce)


# -- init and frozen parameters -----------------------------------------------------------
def _scheme_std(w: torch.Tensor, activation: str) -> float:
    """The weight std of the init made for ``activation``: He for ReLU, Glorot with the
    activation's gain for tanh/sigmoid (0: none known)."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
    if activation == "relu":
        return math.sqrt(2.0 / fan_in)
    if activation in ("tanh", "sigmoid"):
        return nn.init.calculate_gain(activation) * math.sqrt(2.0 / (fan_in + fan_out))
    if activation == "selu":
        return math.sqrt(1.0 / fan_in)  # LeCun
    return 0.0


def _badly_initialised(module: nn.Module, scale_too: bool, activation: str = "") -> bool:
    """A layer whose weight is constant or has identical rows (no unit can differ from another),
    or, with ``scale_too``, a Linear/Conv weight centred away from 0 (|mean| > std: all one
    sign) or off both PyTorch's default scale (std 1/sqrt(3 fan_in), within 3x) and the scale
    of the scheme made for ``activation`` (:func:`_scheme_std`, within 2x); a healthy
    default/He/Glorot init is kept."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() < 2 or w.numel() < 2 or not w.is_floating_point():
        return False
    rows = w.detach().reshape(w.shape[0], -1).double()
    if float(rows.std()) == 0.0 or (rows.shape[0] > 1 and bool((rows == rows[0]).all())):
        return True
    if not scale_too or not isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        return False
    std, default, scheme = float(rows.std()), 1.0 / math.sqrt(3.0 * rows.shape[1]), _scheme_std(w, activation)
    fits = default / 3 <= std <= 3 * default or (scheme > 0 and scheme / 2 <= std <= 2 * scheme)
    return not fits or abs(float(rows.mean())) > std  # all one sign


def _activation_of(f: Finding) -> str:
    """The activation the finding measured the network with ('' when it names none)."""
    act = str((f.get("evidence") or {}).get("activation") or "").lower().replace("nn.", "").replace("torch.", "")
    return act if act in ("tanh", "sigmoid", "relu", "selu") else ""


def _init_for(module: nn.Module, activation: str) -> None:
    """PyTorch's default init for ``module``, then, for a Linear/Conv weight, the scheme made for
    the activation: Glorot (Xavier-normal with the activation's gain) for tanh/sigmoid, He
    (Kaiming-normal) for ReLU, LeCun (normal, std 1/sqrt(fan_in)) for SELU; biases keep the default. No activation known: the default only."""
    module.reset_parameters()  # type: ignore[operator]
    w = getattr(module, "weight", None)
    if not activation or not isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)) \
            or not isinstance(w, torch.Tensor) or w.dim() < 2:
        return
    if activation == "relu":
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    elif activation == "selu":
        nn.init.kaiming_normal_(w, nonlinearity="linear")  # LeCun normal: std 1/sqrt(fan_in)
    else:
        nn.init.xavier_normal_(w, gain=nn.init.calculate_gain(activation))


def _install_reinit(f: Finding, stack: contextlib.ExitStack) -> None:
    """At a model's first training forward (before any gradient is computed from the bad
    weights), each of its layers that has ``reset_parameters`` and is badly initialised
    (:func:`_badly_initialised`) is re-initialised once (:func:`_init_for`: the scheme for the
    activation the finding measured, He for ReLU, Glorot for tanh/sigmoid; else PyTorch's
    default); well-initialised layers keep their weights."""
    done: set[int] = set()
    scale_too = f.get("code") == "init.activation-scale"
    activation = _activation_of(f) if scale_too else ""

    def pre(model: nn.Module, args: tuple[Any, ...]) -> None:
        if id(model) in done or not torch.is_grad_enabled():
            return None
        done.add(id(model))
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "reset_parameters") and next(module.children(), None) is None \
                        and _badly_initialised(module, scale_too, activation):
                    _init_for(module, activation)
        return None

    _on_root_calls(stack, pre)


def _install_unfreeze(f: Finding, stack: contextlib.ExitStack) -> None:
    """Frozen parameters of the trained models learn again, and join the optimizer if missing
    (also layers kept in a plain Python list, outside ``model.parameters()``)."""
    from nndoctor.fix.more_remedies import _install_unfreeze_all

    _install_unfreeze_all(f, stack)


# -- the table ---------------------------------------------------------------------------
REMEDIES: tuple[Remedy, ...] = (
    Remedy("drop-output-activation",
           ("loss-input.probabilities-into-logit-loss", "loss-input.relu-into-logit-loss",
            "loss-input.double-softmax", "loss-input.log-softmax-into-cross-entropy",
            "loss-input.log-probabilities-into-logit-loss"),
           lambda f: f"the {f.get('evidence', {}).get('activation', 'softmax')} before the loss passes the logits "
                     f"through ({_where(f)})",
           lambda f: f"Remove the final {f.get('evidence', {}).get('activation', 'softmax')} at {_where(f)}: the loss "
                     f"applies it itself{_site(f)}.",
           _install_drop_activation),
    Remedy("log-before-nll", ("loss-input.logits-into-nll-loss", "loss-input.probabilities-into-nll-loss"),
           lambda f: ("the log of the probabilities" if f.get("code") == "loss-input.probabilities-into-nll-loss"
                      else "log_softmax of the scores") + " passed to NLLLoss",
           lambda f: (f"Use log_softmax instead of softmax before NLLLoss (or CrossEntropyLoss on the logits)"
                      f"{_site(f)}." if f.get("code") == "loss-input.probabilities-into-nll-loss"
                      else f"Use F.cross_entropy on the logits (or add F.log_softmax before NLLLoss){_site(f)}."),
           _install_log_for_nll),
    Remedy("normalise-inputs",
           ("preprocessing.unnormalised-pixels", "preprocessing.unnormalised-features"),
           lambda f: f"{_where(f)}'s inputs standardised ("
                     + (f"{f['evidence']['normalize']})" if f.get("evidence", {}).get("normalize")
                        else "per feature, statistics of the first batch)"),
           lambda f: f.get("evidence", {}).get("normalize")
           or "Standardise the inputs where the data is loaded: x = (x - mean) / std with training-set statistics.",
           _install_normalise, needs_symptom=True),
    Remedy("impute-nan-inputs", ("preprocessing.nan-in-inputs", "numerics.nonfinite-input"),
           lambda f: f"NaN/Inf in {_where(f)}'s inputs replaced by 0",
           lambda f: "Find where the NaN comes from (a std of 0 in a standardisation, a missing value) and "
                     "fix it there: x = (x - mean) / std.clamp_min(1e-8), or impute missing values.",
           _install_nan_to_num),
    Remedy("zero-grad-each-step", ("zero-grad.not-cleared", "zero-grad.cleared-before-step"),
           lambda f: f"gradients of {_where(f)} cleared after every step",
           lambda f: (f"Move {f.get('evidence', {}).get('optimizer', 'optimizer')}.zero_grad() before "
                      "loss.backward() (it runs between backward() and step(), so every step sees zeros)."
                      if f.get("code") == "zero-grad.cleared-before-step" else
                      f"Call {f.get('evidence', {}).get('optimizer', 'optimizer')}.zero_grad() once per step, "
                      "before loss.backward()."),
           _install_zero_grad),
    Remedy("train-mode-while-training", ("train-mode.training-in-eval-mode", "train-mode.eval-in-train-mode"),
           lambda f: "training forwards in train mode, forwards without gradient in eval mode",
           lambda f: (f"Call {_where(f)}.train() before the training loop (and after each evaluation)."
                      if f.get("code") == "train-mode.training-in-eval-mode"
                      else f"Call {_where(f)}.eval() before evaluating, and .train() after."),
           _install_train_mode),
    Remedy("float32", ("dtype.float64-model",),
           lambda f: "model and inputs in float32", lambda f: "Use float32: model.float() and x.float() where "
                                                               "the data is loaded (numpy gives float64).",
           _install_float32),
    Remedy("reshape-target", ("shape.broadcast-in-loss",),
           lambda f: "the target reshaped to the prediction's shape in the loss",
           lambda f: f"Make the target the prediction's shape (y.view_as(pred) or pred.squeeze(1)){_site(f)}.",
           _install_reshape_target),
    Remedy("learning-rate", ("lr.too-high", "lr.too-low"),
           lambda f: f"learning rate {f.get('evidence', {}).get('lr', '?')} -> {suggested_lr(f):.3g}"
           if suggested_lr(f) else "learning rate changed",
           lambda f: _lr_edit(f),
           _install_lr),
    Remedy("less-weight-decay", ("regularization.weight-decay-too-strong",),
           lambda f: "weight decay lowered", lambda f: "Lower weight_decay where the optimizer is created.",
           _install_weight_decay),
    Remedy("less-dropout", ("regularization.dropout-too-strong",),
           lambda f: "dropout probability above 0.5 lowered to 0.2",
           lambda f: f"Lower the dropout probability at {_where(f)} (p is the share DROPPED in PyTorch).",
           _install_dropout),
    Remedy("clip-gradients", ("grad.exploding-gradients", "loss-curve.explodes", "grad.exploding-through-time"),
           lambda f: "gradient norm clipped to 1.0 before each step",
           lambda f: "Add torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) between backward() and step().",
           _install_clip),
    Remedy("class-weighted-loss", ("data.class-imbalance",),
           lambda f: "the loss weighted by inverse class frequency",
           lambda f: "Weight the loss: nn.CrossEntropyLoss(weight=1 / class_counts) (binary: "
                     "BCEWithLogitsLoss(pos_weight=negatives / positives)), or over-sample the minority classes.",
           _install_class_weights, changes_loss=True),
    Remedy("reinitialise", ("init.constant-weights", "init.symmetric-weights", "init.activation-scale"),
           lambda f: ("badly scaled layers re-initialised before the first step: "
                      + {"relu": "He (Kaiming-normal)", "tanh": "Glorot (Xavier-normal, tanh gain)",
                         "sigmoid": "Glorot (Xavier-normal, sigmoid gain)",
                         "selu": "LeCun (normal, std 1/sqrt(fan_in))"}.get(
                          _activation_of(f) if f.get("code") == "init.activation-scale" else "",
                          "PyTorch's defaults (Kaiming-uniform)")),
           lambda f: "Remove the custom initialisation, or use nn.init.kaiming_normal_ (ReLU) / "
                     "nn.init.xavier_normal_ (tanh, sigmoid) / kaiming_normal_(nonlinearity='linear') (SELU).",
           _install_reinit),
    Remedy("unfreeze", ("grad-flow.frozen-output-layer", "grad-flow.params-not-in-optimizer",
                        "grad-flow.optimizer-wrong-params", "grad-flow.params-not-updated",
                        "grad-flow.frozen-middle-layers", "grad-flow.optimizer-frozen-params",
                        "grad-flow.unregistered-layers"),
           lambda f: "frozen parameters of the trained model unfrozen and given to the optimizer",
           lambda f: ("Keep the layers in nn.ModuleList / nn.ModuleDict (not a Python list or dict) so that "
                      "model.parameters() and the optimizer see them."
                      if f.get("code") == "grad-flow.unregistered-layers" else
                      "Build the optimizer over model.parameters() after the model is final, and do not set "
                      "requires_grad=False on layers that must learn."),
           _install_unfreeze),
)


def all_remedies() -> tuple[Remedy, ...]:
    """This module's remedies and those of :mod:`nndoctor.fix.more_remedies`."""
    from nndoctor.fix.activation_remedies import ACTIVATION_REMEDIES
    from nndoctor.fix.data_remedies import DATA_REMEDIES
    from nndoctor.fix.extra_remedies import EXTRA_REMEDIES
    from nndoctor.fix.fit_remedies import FIT_REMEDIES
    from nndoctor.fix.grad_remedies import GRAD_REMEDIES
    from nndoctor.fix.keep_optimizer import KEEP_OPTIMIZER_REMEDIES
    from nndoctor.fix.label_remedies import LABEL_REMEDIES
    from nndoctor.fix.loss_arg_remedies import LOSS_ARG_REMEDIES
    from nndoctor.fix.mode_remedies import MODE_REMEDIES
    from nndoctor.fix.more_remedies import MORE_REMEDIES
    from nndoctor.fix.numeric_remedies import NUMERIC_REMEDIES
    from nndoctor.fix.schedule_remedies import SCHEDULE_REMEDIES
    from nndoctor.fix.setting_remedies import SETTING_REMEDIES
    from nndoctor.fix.setup_remedies import SETUP_REMEDIES
    from nndoctor.fix.site_remedies import SITE_REMEDIES
    from nndoctor.fix.stats_remedies import STATS_REMEDIES
    from nndoctor.fix.step_remedies import STEP_REMEDIES
    from nndoctor.fix.target_remedies import TARGET_REMEDIES

    # (the step-size probe's own settings first: momentum where it found momentum the working setting)
    return (STEP_REMEDIES + REMEDIES + MORE_REMEDIES + EXTRA_REMEDIES + TARGET_REMEDIES + SITE_REMEDIES + DATA_REMEDIES + GRAD_REMEDIES
            + NUMERIC_REMEDIES + FIT_REMEDIES + SETTING_REMEDIES + LABEL_REMEDIES
            + ACTIVATION_REMEDIES + SETUP_REMEDIES + SCHEDULE_REMEDIES + LOSS_ARG_REMEDIES + MODE_REMEDIES
            + STATS_REMEDIES + KEEP_OPTIMIZER_REMEDIES)


def remedy_for(finding: Finding) -> Remedy | None:
    """The remedy that answers ``finding``'s code, or None."""
    return next((r for r in all_remedies() if r.answers(finding)), None)
