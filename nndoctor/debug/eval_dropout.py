"""train-mode: functional dropout that stays on while the model is in eval mode.

``F.dropout(x, p)`` takes ``training=True`` by default: ``model.eval()`` sets the modules'
``training`` flags, which a functional call never reads unless it is passed
``training=self.training``. Every evaluation or inference pass then drops units at random:
validation metrics are noisy and pessimistic.

The function mode shows the dropout calls on sampled training steps and, through
``Check.eval_ops``, in the evaluation loops between them. A call with ``p > 0`` and
``training=True`` is judged by the mode of the module whose ``forward`` made it (the
``self`` of the calling frame; the root model's mode when the call is not inside a module):
eval mode -> warning, naming the module and the call's ``file:line``. ``nn.Dropout`` modules
(and any torch code that calls dropout itself) follow their own flag: a torch frame between the
call and the user's code marks them, and they stay quiet, as does
``F.dropout(x, p, training=self.training)``. The frame walk only happens for calls with
``training=True`` while the running root model is in eval mode, so a training step costs a
tuple read per dropout call.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any, Iterable

import torch
from torch import nn

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import OpCall
from nndoctor.monitor.notebook import code_site, is_cell

__all__ = ["DropoutIgnoresEvalMode"]

DROPOUT_OPS = frozenset({"dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d",
                         "dropout3d"})
_TORCH_DIR = os.path.dirname(torch.__file__)
_NNDOCTOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: torch files between the dropout call and its caller (the function-mode dispatch, F.dropout itself,
#: a device context); any other torch frame there means torch's own code called dropout
_PASS_FILES = ("overrides.py", os.path.join("nn", "functional.py"), os.path.join("utils", "_device.py"))
_MAX_USER_FRAMES = 6  # how far out a helper function called from a forward is followed


def _arguments(event: OpCall) -> tuple[Any, Any]:
    args, kw = event.args, event.kwargs
    p = kw.get("p", args[1] if len(args) > 1 else 0.5)
    training = kw.get("training", kw.get("train", args[2] if len(args) > 2 else True))
    return p, training


def _caller(frame: FrameType | None) -> tuple[str, nn.Module | None] | None:
    """``(file:line, module)`` of the user's code that called dropout; None for ``nn.Dropout``."""
    site, user_frames = "", 0
    while frame is not None and user_frames < _MAX_USER_FRAMES:
        filename = frame.f_code.co_filename
        if filename.startswith(_TORCH_DIR):
            if not site and not filename.endswith(_PASS_FILES):
                return None  # nn.Dropout or another torch module: it follows its own training flag
        elif not filename.startswith(_NNDOCTOR_DIR) and not (filename.startswith("<") and not is_cell(filename)):
            if not site:
                site = code_site(filename, frame.f_lineno)
            user_frames += 1
            owner = frame.f_locals.get("self")
            if isinstance(owner, nn.Module):
                return site, owner
        frame = frame.f_back
    return site, None


@register
class DropoutIgnoresEvalMode(Check):
    """``F.dropout(..., training=True)`` called by a module in eval mode."""

    code = "train-mode.functional-dropout-in-eval"
    needs = ("op",)
    ops = DROPOUT_OPS
    eval_ops = DROPOUT_OPS

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._sites: dict[str, int] = {}  # reported site -> calls seen in eval mode

    def check(self, event: OpCall) -> Iterable[Finding]:
        p, training = _arguments(event)
        if training is not True or not isinstance(p, (int, float)) or isinstance(p, bool) or p <= 0:
            return ()
        last = self.state.last_forward  # (model, training, grad enabled) of the running root forward
        if last is None or last[1]:
            return ()  # the model runs in train mode: dropout is meant to be on
        caller = _caller(sys._getframe(1))
        if caller is None:
            return ()
        site, module = caller
        if module is not None and module.training:
            return ()  # a part put back in train mode on purpose (Monte-Carlo dropout)
        where = self.state.module_name(module) if module is not None else last[0]
        key = site or where
        if key in self._sites:
            self._sites[key] += 1
            return ()
        self._sites[key] = 1
        grad = bool(last[2])
        what = "an evaluation pass under torch.no_grad()" if not grad else "a forward in eval mode"
        ev = {"module": where, "site": site or "<unknown>", "p": float(p), "op": f"F.{event.name}",
              "model": last[0], "grad_enabled": grad}
        return [self.finding(
            f"F.{event.name}(p={float(p):g}) at {site or where} runs with training=True in {what} while {where} "
            f"is in eval mode: model.eval() does not switch functional dropout off, so evaluation drops "
            f"{float(p):.0%} of the units at random and its metrics are noisy and pessimistic",
            ev, location=where)]
