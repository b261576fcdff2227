"""Which checks hear which events: the routing tables, the checks retired after their one look,
and the costly checks' sampled looks spread over the sampled steps (mixed into
:class:`~nndoctor.monitor.observer.Observer`).

* A check whose verdict can no longer change calls :meth:`~nndoctor.checks.Check.retire`: from
  then on it hears only the run's end (and a crash), so a fact looked at once costs nothing on
  the steps after. A check that can find nothing in this run at all
  (:meth:`~nndoctor.checks.Check.inert`: a cross-rank check in a single process) is retired
  from the start.
* A check with ``look_every = k > 1`` hears its sampled-only events (``sampled_only`` and its
  ``ops``) on the first sampled step and then on one sampled step in ``k``; the checks with the
  same ``k`` are staggered by their order, so their cost is spread over the sampled steps
  instead of all falling on the same ones. Whatever else the check wants (unsampled losses,
  curve reads, the end) it hears as before. Deterministic: the same run looks at the same steps.
* A check with ``module_types`` hears the ``module_output`` events of those modules only (and of
  the watched models with ``root_outputs``): the table of a module type is built at its first
  output. With ``needs_module`` it sleeps (hears only the end and a crash) until a watched model
  holds such a module or one produces an output: an RNN check costs nothing in an MLP's run.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

from nndoctor.checks import Check

__all__ = ["Routes"]

_KEEP = ("end", "crash")  # what a retired check still hears


class Routes:
    """Observer methods that build and change the routing tables."""

    checks: list[Check]
    _by_kind: dict[str, list[Check]]
    _by_kind_unsampled: dict[str, list[Check]]
    _op_checks: dict[str, list[Check]]
    _eval_op_checks: dict[str, list[Check]]
    _disabled: set[str]
    _module_tables: dict[tuple[type, bool], list[Check]]

    def _build_routes(self) -> None:
        """The tables of every check (called once, at install)."""
        self._all_kinds: dict[str, list[Check]] = {}
        self._all_ops: dict[str, list[Check]] = {}
        self._spread: dict[int, tuple[int, int, frozenset[str]]] = {}  # id -> (every, offset, kinds)
        # (those that can find nothing here; only a check that overrides inert() is asked)
        self._retired: set[int] = {id(c) for c in self.checks if type(c).inert is not Check.inert and _inert(c)}
        self._asleep: set[int] = {id(c) for c in self.checks if c.needs_module}
        self._asleep_types = self._sleepers_types()
        self._all_unsampled = self._by_kind_unsampled
        self._all_eval_ops = self._eval_op_checks
        self._looks = 0  # sampled steps begun (the first is 0)
        self._look_tables: dict[int, tuple[dict[str, list[Check]], dict[str, list[Check]],
                                           dict[tuple[type, bool], list[Check]]]] = {}
        staggered: dict[int, int] = {}
        for check in self.checks:
            for need in check.needs:
                # optimizer steps are dispatched per phase: a check only hears the phases it wants
                for kind in ([f"step.{p}" for p in sorted(check.step_phases)] if need == "step" else [need]):
                    self._all_kinds.setdefault(kind, []).append(check)
                    if kind not in check.sampled_only and need not in check.sampled_only:
                        self._by_kind_unsampled.setdefault(kind, []).append(check)
            for name in check.ops:
                self._all_ops.setdefault(name, []).append(check)
            for name in check.eval_ops:
                self._eval_op_checks.setdefault(name, []).append(check)
            every = int(getattr(check, "look_every", 1) or 1)
            if every > 1:
                kinds = frozenset(k for k in self._all_kinds if check in self._all_kinds[k]
                                  and (k in check.sampled_only or k.split(".")[0] in check.sampled_only))
                offset = staggered.get(every, 0)
                staggered[every] = offset + 1
                self._spread[id(check)] = (every, offset % every, kinds)
        self._period = math.lcm(*(e for e, _, _ in self._spread.values())) if self._spread else 1
        self._reroute(flags=False)  # (the observer sets its flags from these tables once installed)

    def _select_looks(self) -> None:
        """Point ``_by_kind`` and ``_op_checks`` at the tables of the current sampled step (built
        once per kind of sampled step, again after a check retired or woke)."""
        key = 0 if self._looks == 0 else 1 + self._looks % self._period
        tables = self._look_tables.get(key)
        if tables is None:
            tables = self._look_tables[key] = self._build_look_tables()
        self._by_kind, self._op_checks, self._module_tables = tables

    def _build_look_tables(self) -> tuple[dict[str, list[Check]], dict[str, list[Check]],
                                          dict[tuple[type, bool], list[Check]]]:
        off = self._retired | self._asleep
        # the spread checks whose turn it is not: the kinds they skip now (and their ops)
        waiting = {cid: kinds for cid, (every, offset, kinds) in self._spread.items()
                   if self._looks and (self._looks + offset) % every}
        kinds: dict[str, list[Check]] = {}
        for kind, checks in self._all_kinds.items():
            if kind in _KEEP:
                kinds[kind] = list(checks)
                continue
            skip = off
            if waiting:
                skip = skip | {cid for cid, spread in waiting.items() if kind in spread}
            kinds[kind] = [c for c in checks if id(c) not in skip]
        ops = {name: rest for name, checks in self._all_ops.items()
               if (rest := [c for c in checks if id(c) not in off and id(c) not in waiting])}
        return kinds, ops, {}

    def _next_look(self) -> None:
        """A sampled step begins: the costly checks whose turn it is look at it."""
        self._looks += 1
        if self._spread:
            self._select_looks()

    def _retire(self, check: Check) -> None:
        """``check`` hears nothing more but the end of the run (and a crash): taken out of the
        tables that hold it (new lists, in place of the old: a dispatch under way keeps its own),
        which leaves each table as a rebuild without it would be, in the same order."""
        if id(check) in getattr(self, "_retired", {id(check)}):
            return
        self._retired.add(id(check))
        kinds_tables: list[dict[Any, list[Check]]] = [self._by_kind_unsampled]
        ops_tables: list[dict[str, list[Check]]] = [self._eval_op_checks]
        for kinds, ops, modules in self._look_tables.values():
            kinds_tables += (kinds, modules)
            ops_tables.append(ops)
        # (``in`` and ``remove`` compare by identity: a check defines no equality; it is once in a list)
        for table in kinds_tables:  # (kinds and module types keep their empty lists, as in a rebuild)
            for key, checks in list(table.items()):
                if check in checks and key not in _KEEP:
                    table[key] = rest = list(checks)
                    rest.remove(check)
        for table in ops_tables:  # (an op no check wants any more goes, as in a rebuild)
            for key, checks in list(table.items()):
                if check in checks:
                    if len(checks) == 1:
                        del table[key]
                    else:
                        table[key] = rest = list(checks)
                        rest.remove(check)
        self._refresh_route_flags()

    def _reroute(self, flags: bool = True) -> None:
        """Every table again (without the sleeping and retired checks), after a check retired or woke."""
        off = self._retired | self._asleep
        self._look_tables.clear()
        self._by_kind_unsampled = {kind: [c for c in checks if id(c) not in off or kind in _KEEP]
                                   for kind, checks in self._all_unsampled.items()}
        self._eval_op_checks = {name: rest for name, checks in self._all_eval_ops.items()
                                if (rest := [c for c in checks if id(c) not in off])}
        self._select_looks()
        if flags:
            self._refresh_route_flags()

    def _module_checks(self, module: torch.nn.Module) -> list[Check]:
        """The checks that hear ``module``'s output on this sampled step (by its type, and whether it
        is a watched model); wakes the sleeping checks that judge its type."""
        root = id(module) in self.state.models  # type: ignore[attr-defined]  (Observer.state)
        key = (type(module), root)
        checks = self._module_tables.get(key)
        if checks is None:
            if self._asleep and isinstance(module, self._asleep_types) and self._wake([module]):
                return self._module_checks(module)
            checks = self._module_tables[key] = [
                c for c in self._by_kind.get("module_output", ())
                if c.module_types is None or isinstance(module, c.module_types) or (root and c.root_outputs)]
        return checks

    def _wake(self, modules: Iterable[torch.nn.Module]) -> bool:
        """Wake the sleeping checks that judge one of ``modules``' types; whether any woke."""
        asleep = [c for c in self.checks if id(c) in self._asleep]
        woke = False
        for module in modules:
            for check in asleep:
                if id(check) in self._asleep and isinstance(module, check.module_types or ()):
                    self._asleep.discard(id(check))
                    woke = True
        if woke:
            self._asleep_types = self._sleepers_types()
            self._reroute()
        return woke

    def _sleepers_types(self) -> tuple[type, ...]:
        """The module types that would wake a sleeping check (one isinstance test for them all)."""
        return tuple({t: None for c in self.checks if id(c) in self._asleep for t in c.module_types or ()})

    def _wake_for_model(self, model: torch.nn.Module) -> None:
        """A model is watched: wake the checks that judge a module type it holds."""
        if getattr(self, "_asleep", None):  # (none before the routes are built)
            self._wake(model.modules())

    def _refresh_route_flags(self) -> None:
        """The flags that say which unsampled events are wanted at all."""
        self._root_slow = bool(self._by_kind_unsampled.get("model_input"))
        self._unsampled_step_post = bool(self._by_kind_unsampled.get("step.post"))
        self._refresh_fast_backward()  # type: ignore[attr-defined]  (BackwardHooks)

    def retired(self, check: Check | type[Check] | str) -> bool:
        """Whether a check (an instance, its class or its name) was retired in this run."""
        name = check if isinstance(check, str) else (check.__name__ if isinstance(check, type) else check.name())
        return any(c.name() == name and id(c) in self._retired for c in self.checks)


def _inert(check: Check) -> bool:
    """``check.inert()``; a check whose answer fails is not inert (it keeps hearing its events, and
    a fault of its own is reported where it checks them)."""
    try:
        return bool(check.inert())
    except Exception:
        return False
