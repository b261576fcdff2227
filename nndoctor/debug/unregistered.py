"""grad-flow: layers that run inside a model but are not registered in it.

Layers kept in a plain Python list or dict (``self.layers = [nn.Linear(...), ...]`` instead of
``nn.ModuleList``), or built inside ``forward``, are called by the model but are not its
submodules: their parameters are missing from ``model.parameters()``, so the optimizer never
holds them and they keep their random initial values (nor are they saved, or moved by ``.to()``).
The training symptoms (a plateau, a weak fit) are the result; this is the cause.

Evidence: a module with trainable parameters of its own runs, with gradients enabled, inside the
forward of a registered model, is not one of that model's (or any watched model's) submodules, and
none of its parameters is in any optimizer. A frozen helper (no trainable parameters, or run under
``torch.no_grad()``) and layers whose parameters were handed to the optimizer by hand stay quiet.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModuleOutput, StepEvent
from nndoctor.monitor.tensors import own_parameters

__all__ = ["UnregisteredLayers"]


@register
class UnregisteredLayers(Check):
    """Layers called by a model but not registered in it: never in the optimizer, never trained."""

    code = "grad-flow.unregistered-layers"
    needs = ("module_output", "step")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        # id(module) -> (weakref to it, class name, parent name, number of trainable parameters)
        self._cands: dict[int, tuple[weakref.ReferenceType[torch.nn.Module], str, str, int]] = {}
        self._known: set[int] = set()
        self._known_key: tuple[int, ...] | None = None
        self._known_step = -1
        self._done = False

    def _registered(self, module_id: int) -> bool:
        """Whether the module is a submodule of a live watched model.

        The set of submodules is cached; it is rebuilt when the live models change (a model
        rebuilt with the same count of models, a freed model whose id a new one reuses) and, at
        most once a step, on a miss, so a layer is never judged from a stale set.
        """
        models = self.state.live_models()
        key = tuple(id(root) for _, root in models)
        if key != self._known_key:
            self._rebuild(models, key)
        if module_id in self._known:
            return True
        if self._known_step != self.state.step:
            self._rebuild(models, key)
        return module_id in self._known

    def _rebuild(self, models: list, key: tuple[int, ...]) -> None:
        self._known = {id(m) for _, root in models for m in root.modules()}
        self._known_key = key
        self._known_step = self.state.step

    def check(self, event: ModuleOutput | StepEvent) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, ModuleOutput):
            module = event.module
            if not event.grad_enabled or id(module) in self._cands or len(self._cands) >= 64:
                return ()
            own = [p for p in own_parameters(module) if p.requires_grad]
            if not own or id(module) in self.state.models or self._registered(id(module)):
                return ()
            stack = getattr(self.state.observer, "_stack", None) or []
            if not stack:
                return ()  # called at top level: a model of its own
            parent = self.state.module_name(stack[0])
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            self._cands[id(module)] = (weakref.ref(module), type(module).__name__, parent, trainable)
            return ()
        if not self._cands or not self.state.optimizers:
            return ()
        in_opt = self.state.optimizer_params()
        lost: list[tuple[str, str, int]] = []
        for ref, cls, parent, n in self._cands.values():
            module = ref()
            if module is None or self._registered(id(module)):
                continue
            if any(id(p) in in_opt for p in module.parameters()):
                continue  # handed to the optimizer by hand: they train
            lost.append((cls, parent, n))
        self._cands.clear()
        if not lost:
            return ()
        self._done = True
        parent = lost[0][1]
        total = sum(n for _, _, n in lost)
        kinds = sorted({c for c, _, _ in lost})
        ev = {"parent": parent, "model": parent, "layers": len(lost), "layer_types": kinds,
              "unregistered_params": total}
        return [self.finding(
            f"{len(lost)} layer(s) ({', '.join(kinds)}, {total} parameters) run inside {parent}'s forward "
            f"but are not registered in it (a Python list/dict instead of nn.ModuleList, or built in "
            f"forward): they are not in {parent}.parameters() nor in any optimizer, so they never learn",
            ev, location=parent)]
