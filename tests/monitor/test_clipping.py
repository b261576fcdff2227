"""optimizer.clip-too-tight: clip_grad_norm_/clip_grad_value_ cutting every step by 100x+ (and
the observer's wrapping of the two clipping functions)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.clipping import ClipTooTight
from nndoctor.monitor.clipping import CLIPS_KEY

CODE = "optimizer.clip-too-tight"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 4)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def _loop(model, opt, clip, steps=80, module_loss=False):
    X, y = blobs(n=2048)
    crit = nn.CrossEntropyLoss()
    for i in range(steps):
        j = (i * 32) % (len(X) - 32)
        out = model(X[j:j + 32])
        loss = crit(out, y[j:j + 32]) if module_loss else F.cross_entropy(out, y[j:j + 32])
        opt.zero_grad()
        loss.backward()
        clip(model)
        opt.step()


def _found(obs):
    return [f for f in obs.findings if f.code == CODE]


def test_tiny_norm_clip_sequential_sgd_functional_loss():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with Observer(checks=[ClipTooTight]) as obs:
        _loop(model, opt, lambda m: torch.nn.utils.clip_grad_norm_(m.parameters(), max_norm=1e-3))
    found = _found(obs)
    assert len(found) == 1
    ev = found[0].evidence
    assert ev["method"] == "clip_grad_norm_" and ev["arg"] == "max_norm" and ev["threshold"] == "0.001"
    assert ev["clip_factor_min"] >= 100 and ev["sampled_calls"] >= 5 and ev["optimizer"] == "opt"
    assert "test_clipping.py" in ev["site"] and "max_norm=0.001" in found[0].fixes[0]


def test_tiny_value_clip_subclass_module_loss_in_a_function():
    def main():
        torch.manual_seed(0)
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        _loop(model, optimizer, lambda m: clip_grad_value_(m.parameters(), clip_value=1e-5), module_loss=True)

    with Observer(checks=[ClipTooTight]) as obs:
        from torch.nn.utils import clip_grad_value_  # bound after the observer started: the watched one

        main()
    found = _found(obs)
    assert len(found) == 1 and found[0].evidence["method"] == "clip_grad_value_"
    assert found[0].evidence["clip_factor_median"] >= 100 and found[0].location in ("opt", "optimizer")


def test_normal_clips_and_adam_stay_quiet():
    # max_norm=1.0 that fires on some steps; a clip that fires every step but only by a few x;
    # Adam with a tiny clip (Adam undoes the uniform rescaling: it learns at its usual pace)
    cases = [
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), 1.0),
        (lambda p: torch.optim.SGD(p, lr=0.1), 0.3),
        (lambda p: torch.optim.Adam(p, lr=3e-3), 1e-3),
    ]
    for make, max_norm in cases:
        model = mlp()
        opt = make(model.parameters())
        with Observer(checks=[ClipTooTight]) as obs:
            _loop(model, opt, lambda m, c=max_norm: nn.utils.clip_grad_norm_(m.parameters(), c))
        assert not _found(obs), (max_norm, obs.findings)
        assert len(obs.state.extra[CLIPS_KEY]) >= 5  # (the calls were seen)


def test_the_wrapper_returns_the_norm_takes_generators_and_is_removed():
    original = torch.nn.utils.clip_grad_norm_
    model = mlp()
    X, y = blobs(n=64)
    with Observer(checks=[ClipTooTight]) as obs:
        assert torch.nn.utils.clip_grad_norm_ is not original
        assert torch.nn.utils.clip_grad.clip_grad_norm_ is not original
        F.cross_entropy(model(X), y).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        total = torch.nn.utils.clip_grad_norm_((p for p in model.parameters()), 0.1)
    expected = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert torch.allclose(total, expected)
    clipped = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    assert float(expected) > 0.1 and abs(float(clipped) - 0.1) < 1e-4  # the user's clipping happened, unchanged
    call = obs.state.extra[CLIPS_KEY][-1]
    assert call.threshold == 0.1 and abs(call.measured - float(expected)) < 1e-5
    assert call.numel == sum(p.numel() for p in model.parameters())
    assert torch.nn.utils.clip_grad_norm_ is original and torch.nn.utils.clip_grad.clip_grad_norm_ is original
