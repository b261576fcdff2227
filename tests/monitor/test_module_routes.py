"""Routing by module type: a check that judges some module types (``module_types``) hears only
their outputs; one that can find nothing without such a module (``needs_module``) sleeps until a
watched model holds one or one runs, and still hears the end."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.checks import Check, register
from nndoctor.monitor import Observer, Schedule

CODE = "loss-curve.plateaus"  # any declared code (these test checks emit nothing)


class _Seen(Check):
    code = CODE
    needs = ("module_output", "loss", "model_input", "end")

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.outputs: list[type] = []
        self.kinds: list[str] = []

    def check(self, event: Any) -> tuple[()]:
        self.kinds.append(event.kind)
        if event.kind == "module_output":
            self.outputs.append(type(event.module))
        return ()


class _Every(_Seen):
    pass


class _LinearOnly(_Seen):
    module_types = (nn.Linear,)


class _RootOnly(_Seen):
    module_types = ()
    root_outputs = True


class _NeedsLSTM(_Seen):
    module_types = (nn.LSTM,)
    needs_module = True


class _Net(nn.Module):
    def __init__(self, lstm: bool) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 6)
        self.lstm = nn.LSTM(6, 6, batch_first=True) if lstm else None
        self.out = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        if self.lstm is not None:
            h = self.lstm(h)[0]
        return self.out(h[:, -1])


def _run(checks: list[type[Check]], *, lstm: bool, steps: int = 12, side_lstm_at: int = -1,
         watch_model: bool = True) -> Observer:
    torch.manual_seed(0)
    model = _Net(lstm)
    side = nn.LSTM(3, 4, batch_first=True)  # an LSTM outside the watched model
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 5, 3), torch.randint(0, 2, (8,))
    schedule = Schedule(dense=2, every=4, max_stretch=1)
    with Observer(model if watch_model else None, opt, checks=checks, schedule=schedule) as obs:
        for step in range(steps):
            opt.zero_grad()
            if step == side_lstm_at:
                side(x)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return obs


def test_a_check_hears_the_outputs_of_its_module_types_only():
    obs = _run([_Every, _LinearOnly, _RootOnly], lstm=True)
    every, linear, root = obs.checks
    assert obs.internal_errors == []
    assert {nn.Linear, nn.LSTM, _Net} <= set(every.outputs)
    assert linear.outputs and set(linear.outputs) == {nn.Linear}
    assert linear.outputs.count(nn.Linear) == every.outputs.count(nn.Linear)
    assert root.outputs and set(root.outputs) == {_Net}  # the watched model's own output
    assert linear.kinds.count("loss") == every.kinds.count("loss")  # its other events as before


def test_a_check_that_needs_a_module_sleeps_in_a_run_without_one_and_hears_the_end():
    obs = _run([_Every, _NeedsLSTM], lstm=False)
    every, rnn = obs.checks
    assert obs.internal_errors == [] and every.kinds.count("loss") >= 4
    assert rnn.kinds == ["end"]  # no loss, model input or output of an MLP: only the end


@pytest.mark.parametrize("watch_model", [True, False])
def test_it_wakes_when_a_watched_model_holds_one(watch_model: bool):
    """Registered at the start (watched) or at its first forward (discovered): from its first step on."""
    obs = _run([_Every, _NeedsLSTM], lstm=True, watch_model=watch_model)
    every, rnn = obs.checks
    assert obs.internal_errors == []
    assert rnn.kinds.count("model_input") == every.kinds.count("model_input") > 0  # the first step's too
    assert rnn.outputs and set(rnn.outputs) == {nn.LSTM}


def test_it_wakes_when_a_module_of_its_type_runs_outside_the_watched_models():
    obs = _run([_Every, _NeedsLSTM], lstm=False, side_lstm_at=4)  # step 4: a sampled step
    every, rnn = obs.checks
    assert obs.internal_errors == []
    assert rnn.outputs and set(rnn.outputs) == {nn.LSTM}
    assert 0 < rnn.kinds.count("loss") < every.kinds.count("loss")  # from then on


def test_module_types_go_with_module_outputs():
    class NoOutputs(Check):
        code = CODE
        needs = ("loss",)
        module_types = (nn.Linear,)

    class SleepsForever(Check):
        code = CODE
        needs = ("module_output",)
        module_types = ()
        needs_module = True

    for cls in (NoOutputs, SleepsForever):
        with pytest.raises(TypeError, match="module_types|needs_module"):
            register(cls)


def test_the_library_rnn_checks_cost_nothing_in_an_mlp_run():
    from nndoctor.debug.one_sequence import BatchFedAsOneSequence
    from nndoctor.debug.sequence import RecurrentBatchTimeSwapped

    calls: list[str] = []

    class Spy(RecurrentBatchTimeSwapped):
        def check(self, event: Any) -> Any:
            calls.append(event.kind)
            return super().check(event)

    class Spy2(BatchFedAsOneSequence):
        def check(self, event: Any) -> Any:
            calls.append(event.kind)
            return super().check(event)

    obs = _run([Spy, Spy2, _Every], lstm=False)
    assert obs.internal_errors == [] and calls == []  # (neither hears the end)


def test_a_module_of_no_sleeping_checks_type_wakes_nothing_without_a_search(monkeypatch):
    """A module type first seen on a sampled step is tested against the sleeping checks' types in
    one isinstance: no wake-up search (was: one per new module type, over every sleeping check)."""
    searches: list[int] = []
    original = Observer._wake

    def counted(self: Observer, modules: Any) -> bool:
        searches.append(1)
        return original(self, modules)

    monkeypatch.setattr(Observer, "_wake", counted)
    obs = _run([_Every, _NeedsLSTM], lstm=False)
    every, rnn = obs.checks
    assert obs.internal_errors == [] and set(every.outputs) == {nn.Linear, _Net}
    assert rnn.kinds == ["end"] and searches == [1]  # the watched model's modules, once (_wake_for_model)
    searches.clear()
    obs = _run([_Every, _NeedsLSTM], lstm=False, side_lstm_at=4)
    assert set(obs.checks[1].outputs) == {nn.LSTM} and searches == [1, 1]  # ... and the LSTM outside it
