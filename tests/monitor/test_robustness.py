"""The observer on whatever a script does with its objects: pickling, deep copies, torch.save of a
whole model, state_dict round trips, TorchScript, torch.compile, LBFGS closures, and training
without an optimizer object (hand-written SGD: steps counted, --max-steps obeyed)."""

from __future__ import annotations

import copy
import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import ROOT, run_cli

from nndoctor.monitor import Observer, Schedule, StopTraining, compat


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 8, generator=g), torch.randint(0, 3, (64,), generator=g)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def _batches(steps: int):
    x, y = _data()
    for i in range(steps):
        j = (i * 16) % 64
        yield i, x[j:j + 16], y[j:j + 16]


def _ours(module: nn.Module) -> list[object]:
    """nndoctor's hooks on ``module`` and its submodules (forward and load_state_dict hooks; a
    load_state_dict pre-hook is kept wrapped, the function as ``.hook``)."""
    hooks = [getattr(h, "hook", h) for m in module.modules()
             for held in (m._forward_pre_hooks, m._load_state_dict_pre_hooks, m._load_state_dict_post_hooks)
             for h in held.values()]
    return [h for h in hooks if isinstance(getattr(h, "__self__", None), Observer) or h is compat._inert]


def _train_with(steps: int, between=None, watch: bool = True) -> tuple[list[torch.Tensor], Observer | None]:
    """SGD on a small MLP; ``between(i, model, opt)`` runs after each step (what the script does)."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    obs = Observer(schedule=Schedule(dense=3, every=4)) if watch else None
    if obs is not None:
        obs.__enter__()
    try:
        for i, xb, yb in _batches(steps):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            if between is not None:
                model, opt = between(i, model, opt) or (model, opt)
    finally:
        if obs is not None:
            obs.__exit__(None, None, None)
    return [p.detach().clone() for p in model.parameters()], obs


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))


# ---------------------------------------------------------------------------------- pickling
def test_torch_save_of_whole_model_during_run_loads_and_leaves_results_unchanged():
    saved: list[bytes] = []

    def save_and_reload(i, model, opt):
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (no "hooks will not be serialized" warning either)
            torch.save(model, buf)
        saved.append(buf.getvalue())
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        assert not _ours(loaded)
        loaded.load_state_dict(model.state_dict())  # word_language_model reloads the best model
        new_opt = torch.optim.SGD(loaded.parameters(), lr=0.1, momentum=0.9)
        new_opt.load_state_dict(opt.state_dict())
        return loaded, new_opt

    bare, _ = _train_with(12, save_and_reload, watch=False)
    saved.clear()
    watched, obs = _train_with(12, save_and_reload)
    assert _same(bare, watched)
    assert len(saved) == 12 and not obs.internal_errors
    assert all(b"nndoctor" not in data for data in saved)  # loads where nndoctor is not installed
    assert obs.report().facts["steps"] == 12


def test_pickle_and_deepcopy_on_sampled_and_unsampled_steps():
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = _data()
    with Observer(schedule=Schedule(dense=2, every=5)) as obs:
        for _ in range(8):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            assert _ours(model)  # watched: the root hook is there
            for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model),
                          torch.load(io.BytesIO(_saved(model)), weights_only=False)):
                assert not _ours(clone)
                assert torch.equal(clone(x), model(x))
            pickle.loads(pickle.dumps(opt))
            copy.deepcopy(opt)
            assert b"nndoctor" not in pickle.dumps(opt)
    assert not obs.internal_errors
    assert not _ours(model)


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_checkpoint_written_during_run_loads_in_a_process_without_nndoctor(tmp_path):
    model = _model()
    x, y = _data()
    path = tmp_path / "model.pt"
    with Observer() as obs:
        F.cross_entropy(model(x), y).backward()
        torch.save(model, path)
    assert not obs.internal_errors
    code = textwrap.dedent(f"""
        import sys
        sys.modules["nndoctor"] = None  # import nndoctor fails here
        import torch
        m = torch.load({str(path)!r}, weights_only=False)
        assert not m._forward_pre_hooks
        print(m(torch.zeros(2, 8)).shape)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    assert "torch.Size([2, 3])" in out.stdout


class OwnState(nn.Module):
    """A module whose own __getstate__ keeps every attribute (the observer's hook included)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(x)

    def __getstate__(self):
        return dict(self.__dict__)


def test_hook_kept_by_a_custom_getstate_pickles_as_an_inert_stand_in():
    torch.manual_seed(0)
    model = OwnState()
    x, y = _data()
    with Observer() as obs:
        F.cross_entropy(model(x), y).backward()
        data = pickle.dumps(model)
        clone = pickle.loads(data)
        deep = copy.deepcopy(model)
    assert not obs.internal_errors
    for other in (clone, deep):
        hooks = list(other._forward_pre_hooks.values())
        assert hooks and not any(isinstance(getattr(h, "__self__", None), Observer) for h in hooks)
        assert all(h(other, (x,), {}) is None for h in hooks)
        assert torch.equal(other(x), model(x))  # the stand-in hook does nothing
    assert b"weakref" not in data


def test_state_dict_round_trips_during_run_leave_results_unchanged():
    def round_trip(i, model, opt):
        model.load_state_dict(copy.deepcopy(model.state_dict()))
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))

    bare, _ = _train_with(10, round_trip, watch=False)
    watched, obs = _train_with(10, round_trip)
    assert _same(bare, watched) and not obs.internal_errors


# ---------------------------------------------------------------------------------- TorchScript
def test_jit_script_and_trace_under_the_observer():
    def compile_copies(i, model, opt):
        if i in (0, 5):  # a sampled step (heavy probes on) and an unsampled one
            x, _ = _data()
            scripted = torch.jit.script(model)
            traced = torch.jit.trace(model, x[:4])
            assert torch.equal(scripted(x), model(x)) and torch.equal(traced(x), model(x))
            assert bool(_ours(model)) == bool(compat._ACTIVE)  # the observed model keeps its hook
            ops = [n.kind() for n in traced.inlined_graph.nodes() if n.kind().startswith("aten::")]
            assert ops == ["aten::linear", "aten::tanh", "aten::linear"]  # the checks' arithmetic is not in it
            buf = io.BytesIO()
            torch.jit.save(scripted, buf)
            buf.seek(0)
            assert torch.equal(torch.jit.load(buf)(x), model(x))

    bare, _ = _train_with(8, compile_copies, watch=False)
    watched, obs = _train_with(8, compile_copies)
    assert _same(bare, watched) and not obs.internal_errors


def test_jit_wrappers_pass_through_after_the_run():
    from nndoctor.monitor import compat

    with Observer():
        script, trace = torch.jit.script, torch.jit.trace
        assert script is not compat._TRUE["script"]
    assert torch.jit.script is compat._TRUE["script"] and torch.jit.trace is compat._TRUE["trace"]
    model = _model()
    assert torch.equal(script(model)(torch.ones(2, 8)), model(torch.ones(2, 8)))  # a kept wrapper
    assert torch.equal(trace(model, torch.ones(2, 8))(torch.ones(2, 8)), model(torch.ones(2, 8)))


@pytest.mark.slow
def test_torch_compile_under_the_observer_runs_and_leaves_results_unchanged():
    import torch._dynamo

    def run(watch: bool) -> tuple[list[torch.Tensor], Observer | None]:
        torch._dynamo.reset()
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        obs = Observer(schedule=Schedule(dense=2, every=3)) if watch else None
        if obs is not None:
            obs.__enter__()
        compiled = torch.compile(model, backend="eager")
        for _, xb, yb in _batches(8):
            opt.zero_grad()
            F.cross_entropy(compiled(xb), yb).backward()
            opt.step()
        if obs is not None:
            obs.__exit__(None, None, None)
        return [p.detach().clone() for p in model.parameters()], obs

    bare, _ = run(False)
    watched, obs = run(True)
    assert _same(bare, watched)
    assert not obs.internal_errors and obs.report().facts["steps"] == 8


# ---------------------------------------------------------------------------------- optimizers
def test_lbfgs_closure_is_observed_and_unchanged():
    def run(watch: bool):
        model = _model()
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
        x, y = _data()

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        obs = Observer() if watch else None
        if obs is not None:
            obs.__enter__()
        for _ in range(5):
            opt.step(closure)
        if obs is not None:
            obs.__exit__(None, None, None)
        return [p.detach().clone() for p in model.parameters()], obs

    bare, _ = run(False)
    watched, obs = run(True)
    assert _same(bare, watched) and not obs.internal_errors
    facts = obs.report().facts
    assert facts["steps"] == 5 and facts["optimizers"][0]["steps"] == 5
    assert facts["backward_calls"] > 5  # several closure calls per step


def test_optimizer_found_after_gradient_accumulation_counts_optimizer_steps():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Observer() as obs:
        for i, xb, yb in _batches(30):
            F.cross_entropy(model(xb), yb).backward()
            if i % 3 == 2:  # three backward calls per step, the optimizer first seen at its step
                opt.step()
                opt.zero_grad()
    steps, _ = obs.state.losses.series()
    assert obs.report().facts["steps"] == 10
    assert steps == sorted(steps) and steps[:3] == [1, 1, 1] and steps[-1] == 10


# ---------------------------------------------------------------------------------- manual SGD
def _manual(steps: int, lr: float = 0.1, max_steps: int | None = None, watch: bool = True):
    model = _model()
    obs = Observer(max_steps=max_steps, schedule=Schedule(dense=3, every=5)) if watch else None
    done = 0
    try:
        if obs is not None:
            obs.__enter__()
        for _, xb, yb in _batches(steps):
            model.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
            done += 1
    except StopTraining:
        pass
    finally:
        if obs is not None:
            obs.__exit__(None, None, None)
    return [p.detach().clone() for p in model.parameters()], obs, done


def test_manual_sgd_steps_are_counted_and_sampled():
    bare, _, _ = _manual(30, watch=False)
    watched, obs, _ = _manual(30)
    assert _same(bare, watched) and not obs.internal_errors
    report = obs.report()
    assert report.facts["steps"] == 30 and report.facts["end"] == "finished"
    steps, _ = obs.state.losses.series()
    assert steps == list(range(1, 31))  # one loss per step, at its own step
    assert not obs._heavy  # step 30 is not sampled (dense 3, then 1 in 5): the probes are off


def test_manual_sgd_max_steps_stops_after_that_many_updates():
    bare, _, _ = _manual(7, watch=False)
    watched, obs, done = _manual(50, max_steps=7)
    assert done == 7 and _same(bare, watched)
    assert obs.end_reason == "max-steps" and obs.report().facts["steps"] == 7


DIVERGING = """
import torch
torch.manual_seed(0)
X = torch.randn(256, 10)
y = X @ torch.randn(10, 1)
W = torch.zeros(10, 1, requires_grad=True)
for step in range(100000):  # never ends on its own: the update diverges, lr far too high
    loss = ((X @ W - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        W -= 5.0 * W.grad
        W.grad.zero_()
"""


def test_cli_max_steps_stops_a_manual_sgd_script(tmp_path):
    script = tmp_path / "diverging_manual.py"
    script.write_text(DIVERGING)
    result = run_cli("run", "--max-steps", "40", str(script), cwd=ROOT)
    assert result.code in (0, 1), result.stderr
    facts = result.report["facts"]
    assert facts["end"] == "max-steps" and facts["steps"] == 40 and facts["backward_calls"] == 40
    assert not result.report["internal_errors"]
    steps = {f["step"] for f in result.report["findings"]}
    assert steps and steps != {1}  # findings at the step they happened, not all at "step 1"


# ------------------------------------------------------------------------------- lazy modules
class _LazyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.LazyConv1d(6, 3, padding=1)
        self.bn = nn.LazyBatchNorm1d()
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def _lazy_run(style: str, lr: float, watch: bool) -> tuple[list[torch.Tensor], Observer | None]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 2, 8, generator=g)
    y = (x[:, 0, :4].sum(1) > 0).long() + (x[:, 1, 4:].sum(1) > 0).long()
    if style == "sequential":
        model: nn.Module = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.Tanh(), nn.LazyLinear(3))
        model(x[:2])  # materialised by a dummy batch, then the optimizer (the documented order)
    else:
        model = _LazyNet()  # optimizer built on the uninitialised parameters (also allowed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    obs = Observer(schedule=Schedule(dense=3, every=4)) if watch else None
    if obs is not None:
        obs.__enter__()
    try:
        for i in range(40):
            j = (i * 16) % 64
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + 16]), y[j:j + 16]).backward()
            opt.step()
    finally:
        if obs is not None:
            obs.__exit__(None, None, None)
    return [p.detach().clone() for p in model.parameters()], obs


@pytest.mark.parametrize("style", ["sequential", "subclass"])
def test_lazy_modules_are_observed_without_internal_errors_and_training_unchanged(style):
    plain, _ = _lazy_run(style, 0.05, watch=False)
    watched, obs = _lazy_run(style, 0.05, watch=True)
    assert obs is not None and not obs.internal_errors, obs.internal_errors
    assert _same(plain, watched)
    assert len(obs.state.models) == 1 and len(obs.state.param_names) == len(plain)  # named before materialised
    _, obs = _lazy_run(style, 50.0, watch=True)  # a rate far too high is still diagnosed
    assert obs is not None and not obs.internal_errors, obs.internal_errors
    assert {f.code for f in obs.findings} & {"lr.too-high", "numerics.nonfinite-loss", "lr.above-divergence"}, \
        [f.code for f in obs.findings]


# ---------------------------------------------------------------------- activation checkpointing
class _Checkpointed(nn.Module):
    """Residual blocks run through torch.utils.checkpoint: each block's forward runs again inside
    backward (the recomputation), outside any forward of the model."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(8, 16)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU()) for _ in range(3))
        self.out = nn.Linear(16, 3)
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        h = self.inp(x)
        for block in self.blocks:
            h = h + checkpoint(block, h, use_reentrant=self.reentrant)
        return self.out(h)


def _checkpointed_run(reentrant: bool, lr: float, watch: bool) -> tuple[list[torch.Tensor], Observer | None]:
    model = _Checkpointed(reentrant)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    obs = Observer(schedule=Schedule(dense=3, every=4)) if watch else None
    if obs is not None:
        obs.__enter__()
    try:
        for _ in range(3):
            for _, xb, yb in _batches(12):
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
    finally:
        if obs is not None:
            obs.__exit__(None, None, None)
    return [p.detach().clone() for p in model.parameters()], obs


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_layers_recomputed_by_activation_checkpointing_are_not_taken_for_models(reentrant):
    # (a recomputed block was registered as a second model: its 16-wide inputs then broke the
    # label-noise probe of the 8-wide model's data, an internal error)
    plain, _ = _checkpointed_run(reentrant, 1e-2, watch=False)
    watched, obs = _checkpointed_run(reentrant, 1e-2, watch=True)
    assert obs is not None and not obs.internal_errors, obs.internal_errors
    assert _same(plain, watched)
    assert [info.cls.split()[0] for info in obs.state.models.values()] == ["_Checkpointed"], obs.state.models
