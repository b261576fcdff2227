"""grad-flow.evaluated-copy-never-updated and train-mode.copy-batchnorm-stats-never-updated: an EMA /
averaged copy that is evaluated but never follows the model (or whose batch-norm statistics never
do); real EMAs, SWA with update_bn, a frozen reference model run at every step and a copy evaluated
once before training stay quiet."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, update_bn

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.stale_copy import StaleCopy

NEVER = "grad-flow.evaluated-copy-never-updated"
BN = "train-mode.copy-batchnorm-stats-never-updated"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 10, generator=_G) * 2 + 1
Y = (X[:, :3].sum(1) > 3).long()
PIXELS = torch.rand(512, 10, generator=_G)  # unscaled [0, 1] features: activations far from mean 0 / var 1


class Net(nn.Module):
    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(10, 32), nn.Linear(32, 2)
        self.norm = nn.BatchNorm1d(32) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


def _model(style: str, bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    if style == "subclass":
        return Net(bn)
    layers = [nn.Linear(10, 32)] + ([nn.BatchNorm1d(32)] if bn else []) + [nn.ReLU(), nn.Linear(32, 2)]
    return nn.Sequential(*layers)


def _train(model: nn.Module, opt: torch.optim.Optimizer, after_step, evaluate, epochs: int = 4,
           loss_fn=F.cross_entropy, every_step=None) -> None:
    for _ in range(epochs):
        model.train()
        for i in range(16):
            xb, yb = X[i * 32:(i + 1) * 32], Y[i * 32:(i + 1) * 32]
            loss = loss_fn(model(xb), yb)
            if every_step is not None:
                loss = loss + every_step(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            after_step()
        evaluate()


def _observe(run, inputs: torch.Tensor | None = None) -> list:
    global X
    saved = X
    if inputs is not None:
        X = inputs
    try:
        with Observer(checks=[StaleCopy]) as obs:
            run()
    finally:
        X = saved
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code in (NEVER, BN)]


def _eval(copy_model: nn.Module):
    def evaluate():
        copy_model.eval()
        with torch.no_grad():
            for i in range(4):
                copy_model(X[i * 128:(i + 1) * 128])
    return evaluate


# ---------------------------------------------------------------------------- faults
@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_ema_update_rebinds_the_loop_variable(style):
    model = _model(style)
    ema = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def after_step():
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e = 0.99 * e + 0.01 * p  # noqa: F841 (the bug: rebinds e)

    found = _observe(lambda: _train(model, opt, after_step, _eval(ema)))
    assert [f.code for f in found] == [NEVER], found
    assert found[0].evidence["copy"] == "ema" and found[0].evidence["training_steps"] >= 60


def test_averaged_model_never_updated_in_main_with_adam():
    def main():
        model = _model("subclass")
        swa = AveragedModel(model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _train(model, opt, lambda: None, _eval(swa), loss_fn=nn.CrossEntropyLoss())

    found = _observe(main)
    assert [f.code for f in found] == [NEVER], found


@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_ema_over_parameters_only_leaves_batchnorm_statistics(style):
    model = _model(style, bn=True)
    ema = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def after_step():
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.mul_(0.9).add_(p, alpha=0.1)

    found = _observe(lambda: _train(model, opt, after_step, _eval(ema)), PIXELS)
    assert [f.code for f in found] == [BN] and found[0].severity is Severity.WARNING, found
    assert found[0].evidence["count"] == 1 and found[0].evidence["twin_batches"] > 0


def test_stale_batchnorm_whose_trained_statistics_are_near_unit_is_info():
    # inputs scaled so that the first layer's outputs have mean ~0 and variance ~1: mean 0 / variance 1
    # is then nearly right, and the copy is only slightly off
    model = _model("sequential", bn=True)
    ema = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def after_step():
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 0.1)

    unit = torch.randn(512, 10, generator=torch.Generator().manual_seed(1)) * 3 ** 0.5
    found = _observe(lambda: _train(model, opt, after_step, _eval(ema)), unit)
    assert [(f.code, f.severity) for f in found] == [(BN, Severity.INFO)], found


def test_weights_copied_without_buffers_in_main_with_adam():
    def main():
        model = _model("subclass", bn=True)
        slow = copy.deepcopy(model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def after_step():  # a hard copy of the weights ("sync") that forgets the buffers
            with torch.no_grad():
                for e, p in zip(slow.parameters(), model.parameters()):
                    e.copy_(p)

        _train(model, opt, after_step, _eval(slow), loss_fn=nn.CrossEntropyLoss())

    found = _observe(main, PIXELS)
    assert [(f.code, f.severity) for f in found] == [(BN, Severity.WARNING)], found


# ---------------------------------------------------------------------------- healthy lookalikes
@pytest.mark.parametrize("style", ["subclass", "sequential"])
def test_real_ema_with_buffers_quiet(style):
    model = _model(style, bn=True)
    ema = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def after_step():
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.mul_(0.999).add_(p, alpha=0.001)
            for eb, b in zip(ema.buffers(), model.buffers()):
                eb.copy_(b)

    assert _observe(lambda: _train(model, opt, after_step, _eval(ema))) == []


def test_swa_without_update_bn_keeps_buffers_in_sync_quiet():
    # AveragedModel(use_buffers=False) copies the model's buffers at each update_parameters
    model = _model("sequential", bn=True)
    swa = AveragedModel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    assert _observe(lambda: _train(model, opt, lambda: swa.update_parameters(model), _eval(swa))) == []


def test_swa_with_update_bn_quiet():
    model = _model("subclass", bn=True)
    swa = AveragedModel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = [X[i * 64:(i + 1) * 64] for i in range(8)]

    def evaluate():
        update_bn(loader, swa)
        _eval(swa)()

    assert _observe(lambda: _train(model, opt, lambda: swa.update_parameters(model), evaluate)) == []


def test_frozen_reference_model_run_every_step_quiet():
    # DPO / KL-to-reference style: a frozen copy of the initial model, run without gradient at every step
    model = _model("sequential")
    ref = copy.deepcopy(model).eval()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def penalty(xb):
        with torch.no_grad():
            ref_logp = F.log_softmax(ref(xb), dim=1)
        return 0.1 * F.kl_div(ref_logp, F.log_softmax(model(xb), dim=1), log_target=True,
                              reduction="batchmean")

    assert _observe(lambda: _train(model, opt, lambda: None, _eval(ref), every_step=penalty)) == []


def test_copy_evaluated_once_before_training_quiet():
    model = _model("subclass")
    baseline = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def run():
        _eval(baseline)()  # the untrained baseline's score, for comparison
        _train(model, opt, lambda: None, lambda: None)

    assert _observe(run) == []


def test_run_cut_short_after_one_evaluation_is_info():
    from nndoctor.monitor.observer import StopTraining

    model = _model("sequential")
    ema = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def run():
        _train(model, opt, lambda: None, lambda: None, epochs=2)
        _eval(ema)()  # evaluated once, after 32 steps
        for _ in range(3):  # (the rest of the run, cut by --max-steps before the next evaluation)
            _train(model, opt, lambda: None, lambda: None, epochs=1)

    with Observer(checks=[StaleCopy], max_steps=60) as obs:
        try:
            run()
        except StopTraining:
            pass
    found = [f for f in obs.findings if f.code == NEVER]
    assert [f.severity for f in found] == [Severity.INFO], found
