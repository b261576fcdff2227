"""The observer's contract: events reach checks, results unchanged, hooks removed, errors isolated."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks

from nndoctor.checks import Check
from nndoctor.findings import Severity
from nndoctor.monitor import Observer, Schedule, StopTraining


class Recorder(Check):
    code = "grad-flow.test-recorder"
    needs = ("loss", "model_input", "module_output", "backward", "grad", "step", "crash", "end")
    seen: list[str]

    def __init__(self, state):
        super().__init__(state)
        self.seen = []

    def check(self, event):
        self.seen.append(event.kind)
        return ()


class Exploding(Check):
    code = "grad-flow.test-exploding"
    needs = ("step",)
    calls = 0

    def check(self, event):
        type(self).calls += 1
        raise RuntimeError("bug inside nndoctor")


def _train(model, opt, steps=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    for i in range(steps):
        xb, yb = x[(i * 16) % 64:(i * 16) % 64 + 16], y[(i * 16) % 64:(i * 16) % 64 + 16]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return loss


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))


def _global_hook_counts():
    return (len(module_hooks._global_forward_hooks), len(module_hooks._global_forward_pre_hooks),
            len(optimizer_hooks._global_optimizer_pre_hooks), len(optimizer_hooks._global_optimizer_post_hooks))


def test_events_reach_checks_and_discovery():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=[Recorder], schedule=Schedule(dense=3, every=10)) as obs:
        _train(model, opt)
    rec = obs.checks[0]
    for kind in ("loss", "model_input", "module_output", "backward", "grad", "step", "end"):
        assert kind in rec.seen, kind
    assert [i.name for i in obs.state.models.values()] == ["model"]
    assert [i.name for i in obs.state.optimizers.values()] == ["opt"]
    assert obs.state.param_name(model[0].weight) == "model.0.weight"
    report = obs.report()
    assert report.facts["steps"] == 20
    assert len(obs.state.losses.series()[1]) == 20
    # sampled: module outputs only on dense + every-10 steps, not all 20
    assert rec.seen.count("module_output") < 20 * 4


def test_results_bit_identical_with_and_without_observer():
    m1, m2 = _model(), _model()
    o1, o2 = torch.optim.Adam(m1.parameters(), 1e-2), torch.optim.Adam(m2.parameters(), 1e-2)
    torch.manual_seed(1)
    _train(m1, o1, steps=30)
    torch.manual_seed(1)
    with Observer():
        _train(m2, o2, steps=30)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_hooks_removed_on_normal_exit_and_on_crash():
    before = _global_hook_counts()
    original_backward = torch.autograd.backward
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer():
        _train(model, opt, steps=3)
    assert _global_hook_counts() == before
    assert torch.autograd.backward is original_backward
    with pytest.raises(RuntimeError):
        with Observer():
            model(torch.randn(4, 5))  # wrong input width: crash
    assert _global_hook_counts() == before
    assert torch.autograd.backward is original_backward
    assert not torch._C._is_torch_function_mode_enabled()
    assert not model[0]._forward_pre_hooks


def test_sampled_grad_hooks_leave_no_hook_dict_behind_but_keep_the_users_hooks():
    """torch keeps a parameter's hook dict once made and calls into Python for it on every
    backward, even empty: the dicts made for a sampled step are given back between samples,
    the user's own hooks (registered before or while nndoctor looks) stay and keep firing."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = {"before": 0, "during": 0}
    before = model[0].weight.register_hook(lambda g: calls.__setitem__("before", calls["before"] + 1))
    params = list(model.parameters())
    with Observer(model, opt, schedule=Schedule(dense=2, every=1000), checks=[Recorder]) as obs:
        _train(model, opt, steps=1)
        assert obs._heavy and all(p._backward_hooks for p in params)  # hooked on sampled steps
        model[3].bias.register_hook(lambda g: calls.__setitem__("during", calls["during"] + 1))
        _train(model, opt, steps=4)
        assert not obs._heavy
        assert model[0].bias._backward_hooks is None and model[3].weight._backward_hooks is None
        assert len(model[0].weight._backward_hooks) == 1 and len(model[3].bias._backward_hooks) == 1
        assert "grad" in obs.checks[0].seen
    assert calls == {"before": 5, "during": 4}
    _train(model, opt, steps=2)  # after the run: the user's hooks still fire, nothing of ours does
    assert calls == {"before": 7, "during": 6}
    before.remove()


def test_short_paths_between_samples_keep_the_same_books():
    """Unsampled forwards and backwards take short paths: counts, the loss history, the model's
    training mode flips and the user's own backward errors come out as on the full paths."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    losses = []
    with Observer(model, opt, schedule=Schedule(dense=2, every=1000), checks=[Recorder]) as obs:
        for i in range(30):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            losses.append(loss.item())
            loss.backward()
            opt.step()
            if i == 19:
                with torch.no_grad():  # an evaluation forward between samples
                    model.eval()
                    model(x)
                    model.train()
        assert not obs._heavy
        model.eval()  # trained in eval mode from step 31 on (dropout off): looked at closely
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        assert obs._heavy or obs.schedule.boosted_until >= obs.clock
        opt.step()
        model.train()
        with pytest.raises(RuntimeError, match="does not require grad"):
            torch.zeros((), requires_grad=False).backward()  # the user's error, not nndoctor's
    info = next(iter(obs.state.models.values()))
    assert (info.train_forward_calls, info.eval_forward_calls, info.forward_calls) == (30, 2, 32)
    assert obs.state.forward_calls == 32 and obs.state.backward_calls == 32
    steps, values = obs.state.losses.series()
    assert values[:30] == losses and steps[:30] == list(range(1, 31))
    assert obs.state.last_forward == ("model", False, True)
    assert not obs.internal_errors


def test_internal_error_disables_check_and_training_continues():
    Exploding.calls = 0
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=[Exploding]) as obs:
        _train(model, opt, steps=10)
    assert Exploding.calls == 1
    assert len(obs.internal_errors) == 1
    assert obs.internal_errors[0].probe == "Exploding"
    assert obs.report().internal_errors


def test_max_steps_stops_cleanly():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(StopTraining):
        with Observer(max_steps=5) as obs:
            _train(model, opt, steps=50)
    assert obs.state.step - 1 == 5
    assert obs.end_reason == "max-steps"


def test_finding_dedup_counts():
    from nndoctor.findings import Finding, Step
    from nndoctor.monitor.sink import FindingSink

    seen = []
    sink = FindingSink(on_new=seen.append)
    f = Finding("numerics.nan-loss", Severity.ERROR, Step.DEBUG, "m", location="a")
    sink.add(f)
    sink.add(copy.deepcopy(f))
    assert len(seen) == 1
    assert sink.findings()[0].count == 2


def test_unsampled_steps_call_no_check_with_every_check_registered():
    """The always-on budget: between sampled steps nndoctor only records the loss and the lr.

    Counted, not timed: every registered check is wrapped and its calls are attributed to the
    step in progress. On unsampled steps no check runs, except the loss-curve reads (one every
    25 losses at first) - the per-step cost stays a few attribute updates.
    """
    from nndoctor.checks import registered

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    calls: dict[int, int] = {}
    with Observer(model, opt, schedule=Schedule(dense=2, every=1000)) as obs:
        for check in obs.checks:
            original = check.check

            def counted(event, original=original):
                calls[obs.state.step] = calls.get(obs.state.step, 0) + 1
                return original(event)

            check.check = counted
        for _ in range(120):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert {type(c).__name__ for c in obs.checks} == {c.__name__ for c in registered()}
    unsampled = range(4, 121)
    busy = [s for s in unsampled if calls.get(s)]
    assert len(busy) <= len(unsampled) // 20, busy  # only the periodic curve reads
    assert not obs.report().findings


def test_optimizer_first_stepping_on_an_unsampled_step_is_registered_and_looked_at():
    """The pre-step hook is off between samples: a new optimizer is found post-step, its steps all
    count, and the next steps are sampled so that its pre-step checks see it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    rec: list[tuple[int, str, bool]] = []

    class PreStep(Check):
        code = "grad-flow.test-pre-step"
        needs = ("step",)
        step_phases = frozenset({"pre"})
        sampled_only = frozenset({"step"})

        def check(self, event):
            rec.append((event.step, event.optimizer_name, event.sampled))
            return ()

    with Observer(model, opt, schedule=Schedule(dense=2, every=1000), checks=[PreStep]) as obs:
        for _ in range(20):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        assert not obs._heavy  # step 21 is unsampled: no pre-step hook now
        finetune = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(10):
            finetune.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            finetune.step()
    facts = {o["name"]: o for o in obs.report().facts["optimizers"]}
    assert facts["finetune"]["steps"] == 10 and facts["opt"]["steps"] == 20
    assert [r[0] for r in rec if r[1] == "opt"] == [1, 2]  # the dense steps only
    seen_finetune = [r for r in rec if r[1] == "finetune"]
    assert seen_finetune and all(sampled for _, _, sampled in seen_finetune)
    assert seen_finetune[0][0] == 22  # the step right after it first stepped
