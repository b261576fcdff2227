"""Every optimizer the run creates, in order, with the parameter set it holds (for the check of
optimizers re-created during training, nndoctor/monitor/checks/recreated.py).

Registered by :meth:`Discovery._register_optimizer` at an optimizer's first step. Optimizers over
the *same* parameter tensors share a ``group``: same ``id()`` set, and the tensors of the group's
first optimizer still alive (so a model rebuilt per cross-validation fold, whose new tensors may
reuse freed addresses, starts a new group). A new group born when every earlier group's tensors
are gone (the model and its optimizer were both rebuilt: a cross-validation fold, a trial) is a
``restart``: the loss curve before it belongs to a model that no longer exists. So is a new group
over parameters disjoint from every earlier group's, once every earlier optimizer has stopped
stepping before it started (a teacher trained, then a student; a pretraining model, then another):
the loss is another model's from there on (two models trained in turn, a GAN's, are not). So is a new
group over some of the same tensors plus tensors no earlier optimizer held, once every earlier one has
stopped (pretraining, then fine-tuning with a new head): a new stage, whose loss starts afresh.
Bounded: at most ``MAX_GROUPS`` groups and ``MAX_STEPS`` creation steps kept per group (the count goes on).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["BIRTHS_KEY", "OptimizerBirths", "OptimizerGroup", "births", "last_restart"]

BIRTHS_KEY = "nndoctor.optimizer_births"
MAX_GROUPS = 64
MAX_STEPS = 64


@dataclass
class OptimizerGroup:
    """Optimizers built over one parameter set."""

    ids: frozenset[int]
    refs: tuple[weakref.ReferenceType[torch.Tensor], ...]
    names: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)  # the run step each was first seen stepping
    lrs: list[float | None] = field(default_factory=list)
    stateful: list[bool] = field(default_factory=list)  # keeps per-parameter state (moments, momentum)
    scheduled: list[bool] = field(default_factory=list)  # an lr scheduler was attached (initial_lr set)
    count: int = 0
    born: int = 0  # the step its first optimizer first stepped
    infos: list[Any] = field(default_factory=list)  # the OptimizerInfo of its optimizers (last_step)

    def alive(self) -> bool:
        return all(r() is not None for r in self.refs)


def _stateful(opt: torch.optim.Optimizer) -> bool:
    if type(opt).__name__ == "SGD":
        return any(float(g.get("momentum", 0) or 0) > 0 for g in opt.param_groups)
    return True


class OptimizerBirths:
    """The optimizers created so far, grouped by the parameter tensors they hold."""

    def __init__(self) -> None:
        self.groups: list[OptimizerGroup] = []
        self.total = 0
        self.restarts: list[int] = []  # steps at which a new model started training from scratch

    def add(self, opt: torch.optim.Optimizer, name: str, step: int, info: Any = None) -> None:
        params = [p for g in opt.param_groups for p in g["params"] if isinstance(p, torch.Tensor)]
        if not params:
            return
        self.total += 1
        ids = frozenset(id(p) for p in params)
        group = next((g for g in self.groups if g.ids == ids and g.alive()), None)
        if group is None:
            if self.groups and not any(g.alive() for g in self.groups):
                self.restarts.append(int(step))
            if len(self.groups) >= MAX_GROUPS:
                return
            group = OptimizerGroup(ids=ids, refs=tuple(weakref.ref(p) for p in params[:4]), born=int(step))
            self.groups.append(group)
        group.count += 1
        if info is not None and len(group.infos) < MAX_STEPS:
            group.infos.append(info)
        if len(group.steps) < MAX_STEPS:
            lr = opt.param_groups[0].get("lr")
            group.names.append(name)
            group.classes.append(type(opt).__name__)
            group.steps.append(int(step))
            group.lrs.append(float(lr) if isinstance(lr, (int, float)) else None)
            group.stateful.append(_stateful(opt))
            group.scheduled.append(any("initial_lr" in g for g in opt.param_groups))


def births(state: Any) -> OptimizerBirths:
    """The run's record (made on first use)."""
    rec = state.extra.get(BIRTHS_KEY)
    if rec is None:
        rec = state.extra[BIRTHS_KEY] = OptimizerBirths()
    return rec


def last_restart(state: Any) -> int | None:
    """The step from which the current model trains, if an earlier model and its optimizer were
    replaced (cross-validation folds, trials), or trained before it and stopped (a teacher, then a
    student); None otherwise."""
    rec = state.extra.get(BIRTHS_KEY)
    if rec is None:
        return None
    found = rec.restarts[-1] if rec.restarts else None
    for i, group in enumerate(rec.groups[1:], start=1):
        earlier = rec.groups[:i]
        if found is not None and group.born <= found:
            continue
        last = [getattr(info, "last_step", None) for g in earlier for info in g.infos]
        if not (last and all(isinstance(s, int) and s < group.born for s in last)):
            continue  # (an earlier optimizer still steps: models trained in turn, a GAN's)
        shared = [g.ids & group.ids for g in earlier]
        if any(shared):
            # some of the same tensors: the same model. A new stage when the new optimizer also trains
            # tensors no earlier one did (a new head for fine-tuning, built after pretraining stopped):
            # its fresh layers start the loss afresh; over the same or fewer tensors it goes on
            if group.ids - set().union(*(g.ids for g in earlier)):
                found = group.born
            continue
        mine, before = _models(state, group), set().union(*(_models(state, g) for g in earlier))
        if mine and before and not mine & before:  # (another model, not a stage of the same one)
            found = group.born
    return found


def _models(state: Any, group: OptimizerGroup) -> set[str]:
    """The models (first part of the parameters' names) whose parameters the group trains."""
    names = getattr(state, "param_names", {})
    return {names[i].split(".", 1)[0] for i in list(group.ids)[:64] if i in names}
