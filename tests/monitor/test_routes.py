"""Routing: a check retired after its one look hears nothing more but the end; costly checks
(``look_every``) look at one sampled step in k, staggered, and never miss k in a row."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.checks import Check, register
from nndoctor.monitor import Observer, Schedule

CODE = "loss-curve.plateaus"  # any declared code (these test checks emit nothing)


class _Recorder(Check):
    code = CODE
    needs = ("step", "loss", "end")
    step_phases = frozenset({"post"})
    sampled_only = frozenset({"step"})
    ops: ClassVar[frozenset[str]] = frozenset({"relu"})

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.seen: list[tuple[str, int]] = []

    def check(self, event: Any) -> tuple[()]:
        self.seen.append((event.kind if event.kind != "op" else f"op.{event.name}", self.state.step))
        return ()

    def steps(self, kind: str) -> list[int]:
        return [s for k, s in self.seen if k == kind]


class _RetiresAfterOneLook(_Recorder):
    def check(self, event: Any) -> tuple[()]:
        super().check(event)
        if event.kind == "step":
            self.retire()  # the fact looked at cannot change
        return ()


class _Costly(_Recorder):
    look_every = 3


class _Costly2(_Recorder):
    look_every = 3


def _train(checks: list[type[Check]], steps: int = 40) -> Observer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with Observer(model, opt, checks=checks, schedule=Schedule(dense=3, every=4, max_stretch=1)) as obs:
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(F.relu(model(x)), y).backward()
            opt.step()
    return obs


def test_a_retired_check_is_not_called_again_but_still_hears_the_end():
    obs = _train([_RetiresAfterOneLook, _Recorder])
    retired, other = obs.checks
    assert obs.internal_errors == []
    assert obs.retired(_RetiresAfterOneLook) and not obs.retired(_Recorder)
    assert retired.steps("step") == [1]  # its one look, then nothing on the 11 sampled steps after
    assert retired.steps("loss") == [1]  # nor the losses after it retired
    assert set(retired.steps("op.relu")) == {1}  # (two relus a step)
    assert retired.steps("end") and other.steps("end")
    assert len(other.steps("step")) == 12 and other.steps("loss") == other.steps("step")  # the others as before


def test_costly_checks_look_at_one_sampled_step_in_k_staggered_and_never_miss_k_in_a_row():
    obs = _train([_Recorder, _Costly, _Costly2])
    every, first, second = obs.checks
    assert obs.internal_errors == []
    sampled = every.steps("step")
    assert len(sampled) == 12
    for check in (first, second):
        looked = check.steps("step")
        assert looked[0] == sampled[0]  # every check looks at the first sampled step
        assert set(looked) < set(sampled) and len(looked) <= 2 + len(sampled) // 3
        gaps = [sampled.index(b) - sampled.index(a) for a, b in zip(looked, looked[1:])]
        assert looked[-1] >= sampled[-3] and gaps and max(gaps) <= 3  # never 3 sampled steps missed
        assert sorted(set(check.steps("op.relu"))) == looked  # its ops follow its looks
        assert check.steps("loss") == every.steps("loss") and check.steps("end")  # not sampled-only: as before
    # staggered: after the first, the two costly checks look at different sampled steps
    assert set(first.steps("step")[1:]).isdisjoint(second.steps("step")[1:])


def test_spread_looks_are_the_same_in_every_run():
    a = _train([_Costly, _Costly2])
    b = _train([_Costly, _Costly2])
    assert [c.seen for c in a.checks] == [c.seen for c in b.checks]


def test_look_every_needs_something_to_spread():
    class NothingToSpread(Check):
        code = CODE
        needs = ("loss",)
        look_every = 2

    with pytest.raises(TypeError, match="look_every"):
        register(NothingToSpread)


def test_the_eval_input_scale_check_reads_the_training_side_on_one_sampled_step_in_two():
    from nndoctor.monitor.checks.data.eval_inputs import EvalInputScale

    obs = _train([EvalInputScale, _Recorder])
    scale, every = obs.checks
    sampled = len(every.steps("step"))
    batches = [stats.batches for stats in scale._train.values()]
    assert obs.internal_errors == [] and batches
    assert 2 <= batches[0] <= 1 + sampled // 2 < sampled  # the first look, then one in two (was: every one)


class _Inert(_Recorder):
    def inert(self) -> bool:
        return True  # (what a check says when it can find nothing in this run)


class _FailsToSay(_Recorder):
    def inert(self) -> bool:
        raise RuntimeError("a bug in the check")


def test_an_inert_check_is_retired_before_the_first_step_and_still_hears_the_end():
    obs = _train([_Inert, _FailsToSay, _Recorder])
    inert, fails, other = obs.checks
    assert obs.retired(_Inert) and not obs.retired(_FailsToSay) and not obs.retired(_Recorder)
    assert inert.steps("step") == inert.steps("loss") == inert.steps("op.relu") == []
    assert inert.steps("end") and other.steps("end")
    assert fails.seen == other.seen and len(other.steps("step")) > 3  # (a failing answer: not inert)
    assert obs.internal_errors == []


def test_checks_idle_in_a_plain_minibatch_run_retire_at_their_first_look():
    """An optimizer that steps (for good) idles the hand-written-update check; one that is not
    full-batch idles the full-batch check: both retire instead of being called on every sampled step."""
    from nndoctor.debug.manual_zero_grad import ManualUpdateGradsNotCleared
    from nndoctor.monitor.checks.fullbatch import FullBatchOptimizerOnMiniBatches

    obs = _train([ManualUpdateGradsNotCleared, FullBatchOptimizerOnMiniBatches, _Recorder])
    assert obs.internal_errors == []
    assert obs.retired(ManualUpdateGradsNotCleared) and obs.retired(FullBatchOptimizerOnMiniBatches)
    assert not obs.retired(_Recorder)
    assert [f for f in obs.findings if f.code.startswith(("zero-grad", "optimizer"))] == []


def _names(table: dict[Any, list[Check]]) -> dict[Any, list[str]]:
    return {key: [c.name() for c in checks] for key, checks in table.items()}


def test_a_retirement_takes_the_check_out_of_the_tables_without_rebuilding_them(monkeypatch):
    """A check retiring leaves every table as a rebuild without it would (same checks, same order)
    and rebuilds none: the tables of a kind of sampled step are built once (were: again after each
    retirement, ~0.4 ms each on a ~100-check run)."""
    builds: list[int] = []
    original = Observer._build_look_tables

    def counted(self: Observer) -> Any:
        builds.append(self._looks)
        return original(self)

    monkeypatch.setattr(Observer, "_build_look_tables", counted)
    obs = _train([_Recorder, _RetiresAfterOneLook, _Costly, _Costly2])
    assert obs.internal_errors == [] and obs.retired(_RetiresAfterOneLook)
    assert len(builds) == 1 + obs._period  # the first sampled step, then one per place in the spread's period
    kept = [_names(t) for t in (obs._by_kind, obs._by_kind_unsampled, obs._eval_op_checks, obs._op_checks)]
    assert all("_RetiresAfterOneLook" not in checks for kind, checks in kept[0].items() if kind not in ("end", "crash"))
    obs._reroute(flags=False)  # every table rebuilt from scratch
    assert kept == [_names(t) for t in (obs._by_kind, obs._by_kind_unsampled, obs._eval_op_checks, obs._op_checks)]
