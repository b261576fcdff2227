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

Weights used without a layer module (``x @ w`` with ``self.ws = [nn.Parameter(...), ...]``, a plain
list instead of ``nn.ParameterList``) are found from the loss's autograd graph: an ``nn.Parameter``
leaf the loss depends on, in no watched model and in no optimizer, whose values are still the same
``MIN_UNCHANGED`` sampled steps later (a parameter updated by hand moves: quiet).
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.debug.grad_cut import walk_graph
from nndoctor.findings import Finding
from nndoctor.monitor.events import BackwardCall, ModuleOutput, StepEvent
from nndoctor.monitor.tensors import local, own_parameters

__all__ = ["UnregisteredLayers", "graph_parameters"]

MIN_UNCHANGED = 2  # sampled optimizer steps a loose parameter kept its values before it is reported
_MAX_VISITS = 20_000  # autograd nodes one walk from the loss may visit
_MAX_LOOSE = 32
_MAX_WALKS = 4  # sampled backward passes whose graph is walked for loose parameters


def graph_parameters(loss: torch.Tensor) -> list[torch.nn.Parameter]:
    """The ``nn.Parameter`` leaves that ``loss`` depends on (a bounded walk of its graph)."""
    if loss.grad_fn is None:
        return []
    return [var for node in walk_graph(loss.grad_fn, _MAX_VISITS)
            if isinstance(var := getattr(node, "variable", None), torch.nn.Parameter)]


@register
class UnregisteredLayers(Check):
    """Layers called by a model but not registered in it: never in the optimizer, never trained."""

    code = "grad-flow.unregistered-layers"
    needs = ("module_output", "step", "backward")
    step_phases = frozenset({"pre"})
    sampled_only = frozenset({"step", "backward"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        # id(module) -> (weakref to it, class name, parent name, number of trainable parameters)
        self._cands: dict[int, tuple[weakref.ReferenceType[torch.nn.Module], str, str, int]] = {}
        self._known: set[int] = set()
        self._known_key: tuple[int, ...] | None = None
        self._known_step = -1
        self._done = False
        # id(param) -> (weakref to it, its first values when first seen at a step, unchanged steps)
        self._loose: dict[int, tuple[weakref.ReferenceType[torch.Tensor], torch.Tensor | None, int]] = {}
        self._walks = 0

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

    def check(self, event: ModuleOutput | StepEvent | BackwardCall) -> Iterable[Finding]:
        if self._done:
            return ()
        if isinstance(event, BackwardCall):
            self._on_backward(event)
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
        if not self.state.optimizers:
            return ()
        if self._loose:
            found = self._loose_params()
            if found:
                return found
        if not self._cands:
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
        self.retire()  # (its verdict is given: nothing more to hear but the end)
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

    # ------------------------------------------------------------------ weights without a module
    def _on_backward(self, event: BackwardCall) -> None:
        if (self._walks >= _MAX_WALKS or len(self._loose) >= _MAX_LOOSE or event.tensor.grad_fn is None
                or not self.state.models):
            return
        self._walks += 1  # (the weights a forward uses are there from its first steps: a few walks suffice)
        known = self.state.param_refs
        for p in graph_parameters(event.tensor):
            if (p.requires_grad and id(p) not in known and id(p) not in self._loose
                    and len(self._loose) < _MAX_LOOSE):
                self._loose[id(p)] = (weakref.ref(p), None, 0)

    def _loose_params(self) -> list[Finding]:
        """Parameters of the loss's graph held by no model and no optimizer that never move."""
        in_opt = self.state.optimizer_params()
        lost: list[torch.Tensor] = []
        for pid, (ref, first, unchanged) in list(self._loose.items()):
            p = ref()
            if p is None or pid in in_opt or pid in self.state.param_refs:
                del self._loose[pid]  # handed to an optimizer (or a model) after all
                continue
            now = local(p).detach().reshape(-1)[:64]
            if first is None:
                self._loose[pid] = (ref, now.clone(), 0)
                continue
            if not torch.equal(now, first):
                del self._loose[pid]  # updated some other way (by hand): it trains
                continue
            self._loose[pid] = (ref, first, unchanged + 1)
            if unchanged + 1 >= MIN_UNCHANGED and p.grad is not None:
                lost.append(p)
        if not lost:
            return []
        self._done = True
        self.retire()  # (its verdict is given: nothing more to hear but the end)
        lost.reverse()  # (found walking back from the loss: the first layer last)
        models = self.state.live_models()
        parent = models[0][0].name if len(models) == 1 else "the model"
        total = sum(p.numel() for p in lost)
        shapes = [list(p.shape) for p in lost[:6]]
        ev = {"parent": parent, "model": parent, "layers": len(lost), "layer_types": ["Parameter"],
              "unregistered_params": total, "shapes": shapes}
        return [self.finding(
            f"{len(lost)} nn.Parameter tensor(s) (shapes {shapes}, {total} values) are used in the loss but belong "
            f"to no model's parameters() and to no optimizer (a Python list/dict instead of nn.ParameterList, "
            f"or created outside the model): they get gradients but keep their initial values",
            ev, location=parent)]
