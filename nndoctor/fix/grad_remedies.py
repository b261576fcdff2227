"""Runtime remedy for a gradient path the script cuts: a ``.detach()`` on the way to the loss, or
a part of the model (or the whole model) run under ``torch.no_grad()`` in the training forward.
Same contract as :mod:`nndoctor.fix.remedies` (``install(finding, stack)``; the stack undoes it).

Re-enabling gradients never changes a computed value, only whether the graph is recorded; it is
done only where the finding measured the cut: ``.detach()`` at the named line, and forwards of
the named modules made in training mode (an evaluation pass after ``model.eval()`` is left
under ``no_grad``).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.modules.module as module_hooks

from nndoctor.fix.remedies import Remedy, _on_root_calls, _patch

__all__ = ["GRAD_REMEDIES"]

Finding = dict[str, Any]


def _ev(f: Finding) -> dict[str, Any]:
    return f.get("evidence") or {}


def _detach_sites(f: Finding) -> set[str]:
    return {str(c.get("site")) for c in _ev(f).get("cuts") or []
            if isinstance(c, dict) and c.get("op") == ".detach()" and c.get("site")}


def _no_grad_paths(f: Finding) -> list[str]:
    names = list(_ev(f).get("no_grad_modules") or [])
    if _ev(f).get("no_grad_forward"):
        names.append(str(_ev(f)["no_grad_forward"]))
    return [str(n) for n in names if n]


def _install_keep_graph(f: Finding, stack: contextlib.ExitStack) -> None:
    sites, names = _detach_sites(f), _no_grad_paths(f)
    if not sites and not names:
        raise ValueError("the finding names no .detach() site and no module run under no_grad")
    if sites:
        from nndoctor.monitor.functions import user_site

        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original)
            def detach(self: torch.Tensor) -> torch.Tensor:
                return self if self.requires_grad and user_site() in sites else original(self)

            return detach

        _patch(stack, torch.Tensor, "detach", wrap)
    if names:
        _grad_in_training_forwards(names, stack)


def _grad_in_training_forwards(names: list[str], stack: contextlib.ExitStack) -> None:
    """The modules named ``root.path`` (``model.encoder``; ``model``: the root itself) record
    their graph when called in training mode, even inside ``torch.no_grad()``; gradients then
    stay on until that ``no_grad`` block ends (its exit restores the mode it found), so the ops
    the block runs after the module (``torch.tanh(self.enc(x)).mean(1)``) keep the graph too,
    as if the block were not there."""
    marked: set[int] = set()
    resolved: set[int] = set()

    def resolve(root: nn.Module, args: tuple[Any, ...]) -> None:
        if id(root) in resolved:
            return None
        resolved.add(id(root))
        for name in names:
            path = name.split(".", 1)[1] if "." in name else ""
            try:
                marked.add(id(root.get_submodule(path)))
            except AttributeError:
                continue
        return None

    def pre(module: nn.Module, args: Any) -> None:
        if id(module) in marked and module.training and not torch.is_grad_enabled() \
                and not torch.is_inference_mode_enabled():
            torch.set_grad_enabled(True)
        return None

    _on_root_calls(stack, resolve)
    h1 = module_hooks.register_module_forward_pre_hook(pre)
    stack.callback(h1.remove)


GRAD_REMEDIES: tuple[Remedy, ...] = (
    Remedy("keep-gradient-path", ("grad-flow.loss-detached", "grad-flow.no-gradient"),
           lambda f: "gradients kept through " + " and ".join(
               ([".detach() at " + ", ".join(sorted(_detach_sites(f)))] if _detach_sites(f) else [])
               + ([", ".join(_no_grad_paths(f)) + " in training forwards (no torch.no_grad)"]
                  if _no_grad_paths(f) else [])),
           lambda f: "Remove the cut between the model and the loss: "
                     + ("drop .detach() at " + ", ".join(sorted(_detach_sites(f))) if _detach_sites(f)
                        else "run " + ", ".join(_no_grad_paths(f) or ["the model"])
                        + " outside torch.no_grad() while training (freeze it with requires_grad_(False) "
                          "only if it must not learn)") + ".",
           _install_keep_graph, applies=lambda f: bool(_detach_sites(f) or _no_grad_paths(f))),
)
