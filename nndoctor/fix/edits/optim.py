"""The optimizer and its loop: learning rate, weight decay, a default setting restored,
zero_grad each step, gradient clipping, the scheduler stepped per epoch, momentum."""

from __future__ import annotations

import ast
from typing import Callable

import torch

from nndoctor.fix.edits.common import (
    Finding,
    ev,
    kwarg,
    loop_of,
    name_of,
    only_backward,
    optimizer_call,
    round3,
    set_kwarg,
    statements,
)
from nndoctor.fix.source import Patch, Source, dotted, indent_of

__all__ = ["TRANSFORMS"]


def _learning_rate(f: Finding, src: Source, p: Patch) -> bool:
    from nndoctor.fix.remedies import suggested_lr

    call, lr = optimizer_call(f, src), suggested_lr(f)
    return call is not None and lr is not None and set_kwarg(p, call, "lr", round3(lr), position=1)


def _weight_decay(f: Finding, src: Source, p: Patch) -> bool:
    call = optimizer_call(f, src)
    kw = kwarg(call, "weight_decay") if call is not None else None
    if kw is None or not isinstance(kw.value, ast.Constant) or not isinstance(kw.value.value, (int, float)):
        return False
    suggested = ev(f).get("suggested")
    try:
        value = float(suggested)
    except (TypeError, ValueError):
        value = float(kw.value.value) / 100
    return p.replace(kw.value, round3(value))


def _optimizer_default(f: Finding, src: Source, p: Patch) -> bool:
    from nndoctor.fix.more_remedies import _SANE, _setting

    setting, call = _setting(f), optimizer_call(f, src)
    kw = kwarg(call, setting) if call is not None else None
    return kw is not None and setting in _SANE and p.replace(kw.value, repr(_SANE[setting][1]))


def _zero_grad(f: Finding, src: Source, p: Patch) -> bool:
    opt = name_of(ev(f).get("optimizer") or f.get("location"))
    back = only_backward(src)
    if back is None or not opt:
        return False
    indent = indent_of(src.line(back.lineno))
    if f.get("code") == "zero-grad.cleared-before-step":
        clears = [s for s in statements(src, "zero_grad") if s.lineno > back.lineno
                  and dotted(s.value.func).split(".")[0] == opt.split(".")[0]]  # type: ignore[attr-defined]
        if len(clears) != 1 or clears[0].lineno != clears[0].end_lineno:
            return False
        p.delete(clears[0].lineno)
        p.insert_before(back.lineno, indent + src.line(clears[0].lineno).strip())
        return True
    p.insert_before(back.lineno, f"{indent}{opt}.zero_grad()")
    return True


def _clip(f: Finding, src: Source, p: Patch) -> bool:
    back, call = only_backward(src), optimizer_call(f, src)
    if back is None or call is None or not call.args or "import torch" not in "\n".join(src.lines):
        return False
    params = src.segment(call.args[0])
    if not params.endswith(".parameters()"):
        return False
    p.insert_after(back.end_lineno or back.lineno,
                   f"{indent_of(src.line(back.lineno))}torch.nn.utils.clip_grad_norm_({params}, 1.0)")
    return True


_SCHEDULERS = tuple(n for n in dir(torch.optim.lr_scheduler) if n.endswith(("LR", "Scheduler", "Plateau")))


def _schedule_per_epoch(f: Finding, src: Source, p: Patch) -> bool:
    """The scheduler's ``.step()`` inside the batch loop (the loop of ``loss.backward()``) moves
    after that loop: once per epoch."""
    back = only_backward(src)
    loop = loop_of(src, back) if back is not None else None
    names = {src.assigned_name(c) for c in src.calls(*_SCHEDULERS)} - {""}
    steps = [s for s in statements(src, "step") if s.lineno == s.end_lineno and loop is not None
             and loop_of(src, s) is loop and dotted(s.value.func).split(".")[-2:-1] in ([n] for n in names)]  # type: ignore[attr-defined]
    if loop is None or len(steps) != 1 or loop.end_lineno is None:
        return False
    p.delete(steps[0].lineno)
    p.insert_after(loop.end_lineno, indent_of(src.line(loop.lineno)) + src.line(steps[0].lineno).strip())
    return True


def _momentum(f: Finding, src: Source, p: Patch) -> bool:
    call = optimizer_call(f, src)
    if call is None:
        return False
    kw = kwarg(call, "momentum")
    if kw is not None and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, float) \
            and kw.value.value >= 0.99:
        return p.replace(kw.value, "0.9")
    kw = kwarg(call, "betas")
    if kw is not None and isinstance(kw.value, ast.Tuple) and len(kw.value.elts) == 2:
        b1 = kw.value.elts[0]
        if isinstance(b1, ast.Constant) and isinstance(b1.value, float) and b1.value >= 0.99:
            return p.replace(b1, "0.9")
    return False


def _no_dampening(f: Finding, src: Source, p: Patch) -> bool:
    call = optimizer_call(f, src)
    kw = kwarg(call, "dampening") if call is not None else None
    return kw is not None and p.replace(kw.value, "0")


def _adam_for_minibatches(f: Finding, src: Source, p: Patch) -> bool:
    """``torch.optim.Rprop(params, ...)`` -> ``torch.optim.Adam(params, lr=...)`` (the rate the remedy
    used: Rprop's lr literal, at most 0.01)."""
    from nndoctor.fix.setup_remedies import minibatch_lr

    call, cls = optimizer_call(f, src), str(ev(f).get("optimizer_class") or "")
    if call is None or not call.args or not dotted(call.func).endswith(cls) or not cls:
        return False
    kw = kwarg(call, "lr")
    lr_node = kw.value if kw is not None else call.args[1] if len(call.args) > 1 else None
    lr = lr_node.value if isinstance(lr_node, ast.Constant) else None
    if lr_node is not None and lr is None:
        return False  # a rate computed elsewhere: no literal to carry over
    prefix = dotted(call.func)[: -len(cls)]
    func = prefix + "Adam" if prefix else "torch.optim.Adam"  # (a bare ``Rprop`` was imported by name)
    return p.replace(call, f"{func}({src.segment(call.args[0])}, lr={round3(minibatch_lr(cls, lr))})")


def _adam_for_plain_sgd(f: Finding, src: Source, p: Patch) -> bool:
    """``torch.optim.SGD(params, lr=0.01)`` -> ``torch.optim.Adam(params, lr=0.001)`` (the step-size probe's
    working rate; a ``weight_decay`` keyword is kept)."""
    from nndoctor.fix.step_remedies import probe_adam_lr

    call = optimizer_call(f, src)
    if call is None or not call.args or dotted(call.func).split(".")[-1] != "SGD":
        return False
    prefix = dotted(call.func)[: -len("SGD")]
    func = prefix + "Adam" if prefix else "torch.optim.Adam"
    wd = kwarg(call, "weight_decay")
    keep = f", weight_decay={src.segment(wd.value)}" if wd is not None else ""
    return p.replace(call, f"{func}({src.segment(call.args[0])}, lr={round3(probe_adam_lr(f))}{keep})")


def _add_momentum(f: Finding, src: Source, p: Patch) -> bool:
    call = optimizer_call(f, src)
    return call is not None and dotted(call.func).split(".")[-1] == "SGD" and set_kwarg(p, call, "momentum", "0.9")


TRANSFORMS: dict[str, Callable[[Finding, Source, Patch], bool]] = {
    "adam-for-minibatches": _adam_for_minibatches,
    "adam-instead-of-plain-sgd": _adam_for_plain_sgd, "momentum": _add_momentum,
    "no-dampening": _no_dampening,
    "learning-rate": _learning_rate, "less-weight-decay": _weight_decay,
    "optimizer-default-setting": _optimizer_default, "zero-grad-each-step": _zero_grad, "clip-gradients": _clip,
    "schedule-per-epoch": _schedule_per_epoch, "moderate-momentum": _momentum,
}
