"""grad-flow: a parameter created anew inside forward(), so no optimizer ever trains it.

``self.gate = nn.Parameter(torch.ones(d))`` (or ``self.fc = nn.Linear(...)``) written in ``forward()``
instead of ``__init__()`` registers a fresh, untrained tensor on every call: the optimizer, built
before, holds none of them, the gradient they get is dropped with them, and the layer stays at its
initial value for the whole run.

Evidence: at the start of sampled training forwards (gradients on) of a root model, each named
parameter is remembered by weak reference (never by ``id()``: a freed parameter's id may be reused by
its replacement). A name whose Parameter object is a different one at ``MIN_FORWARDS`` consecutive
sampled forwards, while the model itself is the same object and the current parameter is in no
optimizer, was created inside forward (warning). A model rebuilt as a whole (``model = Net()`` in the
loop) is a new model and is not judged here; a lazy module materialises its parameters once; a plain
tensor swapped in for one forward (``torch.func.functional_call``: MAML's fast weights) is no
Parameter and is not judged.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch

from nndoctor.checks import Check, register
from nndoctor.findings import Finding
from nndoctor.monitor.events import ModelInput

__all__ = ["ParameterCreatedInForward", "MIN_FORWARDS"]

MIN_FORWARDS = 3  # consecutive sampled forwards that found the parameter replaced
MAX_PARAMS = 4096  # parameter tensors per model; a larger model is not followed


@register
class ParameterCreatedInForward(Check):
    """The same parameter name holds a new Parameter object at every training forward."""

    code = "grad-flow.parameter-created-in-forward"
    needs = ("model_input",)
    sampled_only = frozenset({"model_input"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._model: weakref.ReferenceType[Any] | None = None
        self._refs: dict[str, weakref.ReferenceType[torch.Tensor]] = {}
        self._runs: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._reported: set[str] = set()
        self._off = False

    def check(self, event: ModelInput) -> Iterable[Finding]:
        if self._off or not event.training or not event.grad_enabled:
            return ()
        model = event.model
        if self._model is None or self._model() is not model:
            if self._model is not None and self._model() is not None:
                return ()  # a second root model: only the first one is followed
            self._model, self._refs, self._runs = weakref.ref(model), {}, {}
        params = list(model.named_parameters())
        if len(params) > MAX_PARAMS:
            self._off = True
            self.retire()  # (it looks no more: nothing more to hear but the end)
            return ()
        found: list[Finding] = []
        in_opt: set[int] | None = None
        refs: dict[str, weakref.ReferenceType[torch.Tensor]] = {}
        for name, p in params:
            old = self._refs.get(name)
            if not isinstance(p, torch.nn.Parameter) or not p.is_leaf:
                # a plain tensor swapped in for the forward (torch.func.functional_call with fast
                # weights in MAML, hypernetworks, stateless calls): not a parameter created here
                if old is not None:
                    refs[name] = old
                continue
            refs[name] = weakref.ref(p)
            if old is None:
                continue
            if old() is p:
                self._runs[name] = 0
                continue
            if in_opt is None:
                in_opt = self.state.optimizer_params()
            if id(p) in in_opt or not p.requires_grad:
                self._runs[name] = 0
                continue
            run = self._runs[name] = self._runs.get(name, 0) + 1
            self._first.setdefault(name, event.step)
            if run >= MIN_FORWARDS and name not in self._reported:
                self._reported.add(name)
                found.append(self._report(event, name, p, run))
        self._refs = refs
        return found

    def _report(self, event: ModelInput, name: str, p: torch.Tensor, run: int) -> Finding:
        model = event.name or type(event.model).__name__
        owner = name.rsplit(".", 1)[0] if "." in name else model
        msg = (f"{model}.{name} ({p.numel()} values) is a new nn.Parameter at every training forward ({run} "
               f"sampled forwards in a row since step {self._first[name]}), and no optimizer holds it: it is "
               f"created inside forward(), so it is never trained and restarts from its initial value at "
               f"each call (create it once in __init__)")
        evidence = {"model": model, "param": name, "module": owner, "numel": int(p.numel()),
                    "forwards": run, "since_step": self._first[name]}
        return self.finding(msg, evidence, location=f"{model}.{name}", step=self._first[name])
