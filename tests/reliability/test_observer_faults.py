"""A fault in the observer's own code never reaches the user's training.

The sweep breaks, one at a time, every internal that PyTorch's calls into nndoctor reach (hooks,
the backward wrapper, the function mode, the loader wrappers, the end of the run and the report),
runs a small training loop under the observer, and checks that the loop finished with weights
bit-identical to an unwatched run, that exactly one internal error was reported and that every
hook and patch is gone. The broken function raises from the file of the function it replaces, as
a bug inside it would (a check that calls a broken helper of the observer's must not be blamed).
"""

from __future__ import annotations

import inspect
import io
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks
from helpers import ROOT, run_cli
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.dataloader import _BaseDataLoaderIter

from nndoctor.monitor import (
    Observer,
    Schedule,
    StopTraining,
    compat,
    ending,
    functions,
    history,
    loaders,
    sampling,
    state,
)
from nndoctor.monitor.observer import forward as observer_forward
from nndoctor.monitor.observer import probes as observer_probes
from nndoctor.monitor.observer import steps as observer_steps

#: (owner, attribute) of every internal the entry points reach; the first eight and the hook
#: entry points were named in the issue (8 of 15 sites killed the training then)
TARGETS: list[tuple[Any, str]] = [
    (Observer, "_name_for"),
    (Observer, "_register_grad_hooks"),
    (Observer, "_push_mode"),
    (state.RunState, "module_name"),
    (sampling.Schedule, "sampled"),
    (history.History, "record_float"),
    (Observer, "_tick"),
    (history.History, "flush"),
    # entry points: their own first steps
    (observer_probes, "GradContribution"),  # the grad hook
    (observer_forward, "ModuleOutput"),  # the global forward hook
    (observer_steps, "StepEvent"),  # the optimizer step pre/post hooks
    (ending, "RunEnd"),  # __exit__ (the end-of-run analysis)
    (functions, "op_name"),  # the function mode's __torch_function__
    (loaders.LoaderTracker, "_on_iter"),  # DataLoader.__iter__
    (loaders.LoaderTracker, "fetches"),  # _BaseDataLoaderIter.__next__ (and the root pre-hook)
    (compat, "_without_our_hooks"),  # torch.save(model) during the run
    # what they call
    (Observer, "_emit_model_input"),
    (Observer, "_on_backward"),
    (Observer, "_set_heavy"),
    (Observer, "_pop_mode"),
    (Observer, "_hook_param"),
    (Observer, "_make_grad_hook"),
    (Observer, "_drop_empty_hook_dicts"),
    (Observer, "_register_model"),
    (Observer, "_register_optimizer"),
    (Observer, "_dispatch"),
    (Observer, "_set_light"),
    (Observer, "_on_eval_loss"),
    (Observer, "_emit_targets"),
    (Observer, "_on_prediction_op"),
    (Observer, "_on_op"),
    (Observer, "_on_loss"),
    (Observer, "_label"),
    (Observer, "provenance"),
    (Observer, "_current_module_name"),
    (Observer, "_refresh_fast_backward"),
    (Observer, "_reads_loss_here"),
    (Observer, "clock"),
    (Observer, "_facts"),
    (history.History, "record"),
    (history.History, "series"),
    (functions, "user_site"),
]


def _target_id(target: tuple[Any, str]) -> str:
    owner, name = target
    return f"{getattr(owner, '__name__', owner)}.{name}".rsplit(".", 2)[-2] + f".{name}"


def inject(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Make ``owner.name`` raise (from the file it is defined in); returns a list holding the
    number of times it was reached."""
    fired = [0]
    original = inspect.getattr_static(owner, name, None)
    func = original.fget if isinstance(original, property) else original
    func = func.__func__ if isinstance(func, (staticmethod, classmethod)) else func
    code = getattr(func, "__code__", None)
    if code is not None:
        filename = code.co_filename
    else:  # a class used by the observer (an event), or an instance attribute
        filename = owner.__file__ if inspect.ismodule(owner) else sys.modules[owner.__module__].__file__

    def broken(*args: Any, **kwargs: Any) -> Any:
        fired[0] += 1
        raise RuntimeError(f"fault injected into {name}")

    broken.__code__ = broken.__code__.replace(co_filename=filename, co_name=name)
    if isinstance(original, property):
        replacement: Any = property(broken, broken)
    elif isinstance(original, staticmethod):
        replacement = staticmethod(broken)
    elif isinstance(owner, type) and original is None:  # an instance attribute (LoaderTracker.fetches):
        replacement = property(broken, lambda self, value: None)  # reading it fails
    else:
        replacement = broken
    monkeypatch.setattr(owner, name, replacement, raising=False)
    return fired


def _data() -> tuple[TensorDataset, TensorDataset]:
    g = torch.Generator().manual_seed(0)
    x, xv = torch.randn(64, 8, generator=g), torch.randn(32, 8, generator=g)
    return (TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()),
            TensorDataset(xv, (xv[:, 0] > 0).long() + (xv[:, 1] > 0).long()))


def train(epochs: int = 8, after_step: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """A small classifier: DataLoaders, an evaluation loop with loss and accuracy, a checkpoint
    of the whole model each epoch (what scripts do)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_set, val_set = _data()
    loader = DataLoader(train_set, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1))
    val_loader = DataLoader(val_set, batch_size=16)
    step = 0
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            step += 1
            if after_step is not None:
                after_step(step)
        model.eval()
        with torch.no_grad():
            for xb, yb in val_loader:
                out = model(xb)
                F.cross_entropy(out, yb)
                (out.argmax(1) == yb).float().mean()
        buf = io.BytesIO()
        torch.save(model, buf)
    return [p.detach().clone() for p in model.parameters()]


@pytest.fixture(scope="module")
def reference() -> list[torch.Tensor]:
    return train()


def _observer_hooks_left(obs: Observer) -> list[str]:
    left = []
    for name, hooks in (("module forward pre", module_hooks._global_forward_pre_hooks),
                        ("module forward", module_hooks._global_forward_hooks),
                        ("optimizer pre", optimizer_hooks._global_optimizer_pre_hooks),
                        ("optimizer post", optimizer_hooks._global_optimizer_post_hooks)):
        left += [name for h in hooks.values() if getattr(h, "__self__", None) is obs]
    if getattr(torch.autograd.backward, "__wrapped__", None) is not None:
        left.append("backward wrapper")
    if getattr(DataLoader.__iter__, "__wrapped__", None) is not None \
            or getattr(_BaseDataLoaderIter.__next__, "__wrapped__", None) is not None:
        left.append("loader wrappers")
    if torch._C._len_torch_function_stack() != 0:
        left.append("function mode")
    if compat._ACTIVE or torch.nn.Module.__getstate__ is not compat._TRUE["getstate"]:
        left.append("torch patches")
    for info in obs.state.models.values():
        module = info.module
        if module is not None and any(getattr(h, "__self__", None) is obs
                                      for m in module.modules() for h in m._forward_pre_hooks.values()):
            left.append(f"root hook on {info.name}")
    for ref in obs.state.param_refs.values():
        p = ref()
        if p is not None and p._backward_hooks:
            left.append("grad hook")
    return left


@pytest.mark.parametrize("target", TARGETS, ids=_target_id)
def test_fault_in_observer_is_reported_once_and_training_is_unchanged(target, monkeypatch, reference):
    fired = inject(monkeypatch, *target)
    with Observer(schedule=Schedule(dense=4, every=10)) as obs:
        weights = train()
    report = obs.report()
    monkeypatch.undo()
    assert fired[0] >= 1, "the fault was never reached: the training loop does not cover it"
    assert all(torch.equal(a, b) for a, b in zip(weights, reference)), "training results changed"
    assert len(report.internal_errors) == 1, report.internal_errors
    assert report.internal_errors[0].probe.startswith("observer"), report.internal_errors
    assert "fault injected" in report.internal_errors[0].error
    assert not _observer_hooks_left(obs)


def test_max_steps_still_ends_the_run_after_a_fault(monkeypatch):
    inject(monkeypatch, Observer, "_tick")
    steps: list[int] = []
    with pytest.raises(StopTraining):
        with Observer(max_steps=10) as obs:
            train(after_step=steps.append)
    # the 10th optimizer.step() raised StopTraining (its update done), as without the fault
    assert steps[-1] == 9 and obs.end_reason == "max-steps" and obs.report().facts["steps"] == 10
    assert len(obs.internal_errors) == 1 and not _observer_hooks_left(obs)


def test_users_own_errors_and_interrupts_pass_through_unchanged():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 3:
                raise ValueError("the user's bug")
            if self.calls == 5:
                raise KeyboardInterrupt
            return self.fc(x)

    model = Broken()
    x = torch.randn(4, 8)
    with Observer() as obs:
        model(x).sum().backward()
        model(x).sum().backward()
        with pytest.raises(ValueError, match="the user's bug"):
            model(x)
        with pytest.raises(RuntimeError, match="does not require grad"):
            torch.zeros(()).backward()
        model(x).sum().backward()
        with pytest.raises(KeyboardInterrupt):
            model(x)
        model(x).sum().backward()
    assert not obs.internal_errors
    assert obs.state.backward_calls == 5  # (the failed one included)


SCRIPT = textwrap.dedent('''
    import sys
    import torch

    sys.path.insert(0, {tests!r})
    from reliability.test_observer_faults import TARGETS, inject, train

    class Patch:  # a stand-in for pytest's monkeypatch
        def setattr(self, owner, name, value, raising=True):
            setattr(owner, name, value)

    fault, out = sys.argv[1], sys.argv[2]
    if fault != "none":
        owner, name = next(t for t in TARGETS if f"{{getattr(t[0], '__name__', t[0])}}.{{t[1]}}" == fault)
        inject(Patch(), owner, name)
    torch.save(train(), out)
''')


def _cli_targets() -> list[str]:
    return [f"{getattr(o, '__name__', o)}.{n}" for o, n in TARGETS[:8]]


_SAMPLING = ("--dense-steps", "2", "--sample-every", "3")


@pytest.fixture(scope="module")
def cli_script(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[torch.Tensor]]:
    """The training script, and its weights after an unbroken ``nndoctor run``."""
    folder = tmp_path_factory.mktemp("faults")
    script = folder / "train_with_fault.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).resolve().parent.parent)))
    ref = run_cli("run", *_SAMPLING, str(script), "none", str(folder / "ref.pt"), cwd=ROOT)
    assert ref.code == 0 and not ref.report["internal_errors"], ref.stderr
    return script, torch.load(folder / "ref.pt")


@pytest.mark.slow
@pytest.mark.parametrize("fault", _cli_targets())
def test_fault_under_nndoctor_run_is_reported_once(fault, cli_script, tmp_path):
    script, reference = cli_script
    result = run_cli("run", *_SAMPLING, str(script), fault, str(tmp_path / "out.pt"), cwd=ROOT)
    assert result.code == 0, result.stderr
    assert len(result.report["internal_errors"]) == 1, result.report["internal_errors"]
    assert result.report["facts"]["end"] == "finished"
    weights = torch.load(tmp_path / "out.pt")
    assert all(torch.equal(p, q) for p, q in zip(weights, reference))
