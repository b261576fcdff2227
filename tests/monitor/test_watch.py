"""nndoctor.watch: the library API around the user's own loop."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks
from _dyn_helpers import blobs, mlp, train

import nndoctor
from nndoctor.findings import Report


def _hooks():
    return (len(module_hooks._global_forward_hooks), len(module_hooks._global_forward_pre_hooks),
            len(optimizer_hooks._global_optimizer_pre_hooks), len(optimizer_hooks._global_optimizer_post_hooks))


def test_watch_reports_inside_and_after_the_block(capsys):
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-5)
    seen = []
    before = _hooks()
    with nndoctor.watch(model, opt, on_finding=seen.append) as doctor:
        train(model, opt, X, y, 150)
        inside = doctor.report()
        assert isinstance(inside, Report) and inside.facts["steps"] == 150
        assert doctor.running
    assert not doctor.running and _hooks() == before
    report = doctor.report()
    assert "lr.too-low" in {f.code for f in report.findings}
    assert {f.code for f in doctor.findings} == {f.code for f in seen}
    text = str(report)
    assert "lr.too-low" in text and "fix 1" in text
    out = capsys.readouterr()
    assert "nndoctor" not in out.out + out.err  # quiet by default in library use


def test_watch_live_prints_to_stderr(capsys):
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-5)
    with nndoctor.watch(model, opt, live=True):
        train(model, opt, X, y, 120)
    assert "lr.too-low" in capsys.readouterr().err


def test_watch_discovers_models_and_optimizers():
    X, y = blobs()
    net = mlp()
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    with nndoctor.watch() as doctor:
        train(net, sgd, X, y, 30)
    facts = doctor.report().facts
    assert [m["class"] for m in facts["models"]] == ["Sequential"]
    assert [o["class"] for o in facts["optimizers"]] == ["SGD"] and facts["optimizers"][0]["steps"] == 30
    assert not doctor.report().at_least("warning")


def test_watch_results_bit_identical():
    X, y = blobs()
    m1, m2 = mlp(seed=3), mlp(seed=3)
    o1, o2 = torch.optim.Adam(m1.parameters(), 1e-2), torch.optim.Adam(m2.parameters(), 1e-2)
    torch.manual_seed(5)
    train(m1, o1, X, y, 120)
    r1 = torch.rand(3)
    torch.manual_seed(5)
    with nndoctor.watch(m2, o2, sample_every=7, dense_steps=3):
        train(m2, o2, X, y, 120)
    r2 = torch.rand(3)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(r1, r2)  # no RNG consumed


def test_watch_max_steps_ends_the_loop_cleanly():
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with nndoctor.watch(model, opt, max_steps=10) as doctor:
        train(model, opt, X, y, 1000)
    assert doctor.report().facts["steps"] == 10
    assert doctor.report().facts["end"] == "max-steps"


def test_user_exception_propagates_and_is_recorded():
    model = mlp()
    before = _hooks()
    try:
        with nndoctor.watch(model) as doctor:
            model(torch.randn(4, 5))  # wrong width
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the user's error must propagate")
    assert doctor.report().facts["end"] == "crash"
    assert _hooks() == before
    assert not torch._C._is_torch_function_mode_enabled()


def test_start_stop_without_with_and_broken_callback():
    X, y = blobs()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1e-5)

    def broken(_finding):
        raise ValueError("user callback bug")

    doctor = nndoctor.watch(model, opt, on_finding=broken).start()
    train(model, opt, X, y, 120)
    report = doctor.stop()
    assert report.by_code("lr.too-low")
    assert "ended" in repr(doctor)
    assert isinstance(nn.Module, type)


def test_overhead_benchmark_runs_every_mode(capsys):
    from benchmarks import overhead

    assert overhead.main(["--steps", "12", "--reps", "1", "--models", "mlp,lstm",
                          "--modes", "bare,watch,run,anomaly,naive"]) == 0
    out = capsys.readouterr().out
    for mode in ("watch", "run", "anomaly", "naive"):
        assert f" {mode} " in out
    assert "worst median ratio of watch()" in out
