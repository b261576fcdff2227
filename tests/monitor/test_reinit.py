"""init.reinitialised-during-training: weights reset to fresh or initial values between sampled
steps, with a loss that saw-tooths back to its start."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs, mlp

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.reinit import ReinitialisedDuringTraining, loss_returns

CODE = "init.reinitialised-during-training"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(16, 64)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def _epochs(model, opt, epochs, before_epoch=lambda e: None, module_loss=False, per_epoch=30):
    X, y = blobs(n=2048, spread=1.0)
    crit = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        before_epoch(epoch)
        for i in range(per_epoch):
            xb, yb = X[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
            out = model(xb)
            loss = crit(out, yb) if module_loss else F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()


def _found(obs):
    return [f for f in obs.findings if f.code == CODE]


def _init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def test_apply_init_every_epoch_sequential_sgd():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _epochs(model, opt, 6, lambda e: model.apply(_init_weights))
    found = _found(obs)
    assert len(found) == 1 and found[0].location == "model"
    ev = found[0].evidence
    assert ev["loss_returns"] >= 2 and ev["resets_seen"] >= 1
    assert "replaced by unrelated values" in ev["reset_kind"]


def test_initial_state_reloaded_every_epoch_subclass_adam_in_main():
    def main():
        torch.manual_seed(0)
        net = Net()
        initial = copy.deepcopy(net.state_dict())
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        _epochs(net, optimizer, 6, lambda e: net.load_state_dict(initial), module_loss=True)

    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        main()
    found = _found(obs)
    assert len(found) == 1 and found[0].location in ("net", "model")
    assert "brought back to its initial values" in found[0].evidence["reset_kind"]


def test_normal_training_warm_restarts_one_restart_and_folds_are_quiet():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=30)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _epochs(model, opt, 6, lambda e: sched.step(e * 30) if e else None)
    assert not _found(obs)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:  # one deliberate restart (then train longer)
        _epochs(model, opt, 4, lambda e: model.apply(_init_weights) if e == 2 else None)
    assert not _found(obs)

    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        for _fold in range(5):  # a new model and optimizer per fold: new tensors, nothing was reset
            model = mlp()
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            _epochs(model, opt, 1)
    assert not _found(obs)


def test_loss_returns_sees_a_saw_tooth_not_a_falling_or_noisy_curve():
    g = torch.Generator().manual_seed(0)
    epoch = [2.3 * 0.93 ** i for i in range(40)]
    saw = epoch * 4
    assert loss_returns(list(range(1, len(saw) + 1)), saw) == [41, 81, 121]
    falling = [2.3 * 0.99 ** i for i in range(160)]
    assert loss_returns(list(range(1, 161)), falling) == []
    noisy = (1.0 + 0.3 * torch.randn(300, generator=g)).abs().tolist()
    assert loss_returns(list(range(1, 301)), noisy) == []


def test_huge_optimizer_steps_are_a_learning_rate_not_a_reinitialisation():
    """Adam at lr=1 decorrelates the weights between two sampled steps by itself and the loss
    jumps back up again and again: that is lr.too-high's finding, not a re-initialisation
    (the optimizer's own update, measured around step(), was >= 10% of the weights)."""
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _epochs(model, opt, 6)
    assert not _found(obs)
    assert obs.checks[0]._max_update >= 0.1
    # the same run with apply(init) per epoch at a sane lr is still caught (see the tests above)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _epochs(model, opt, 6, lambda e: model.apply(_init_weights))
    assert len(_found(obs)) == 1 and obs.checks[0]._max_update < 0.1


def _shared_run(checks, resets_at=(), steps=24):
    from nndoctor.monitor import Schedule

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)  # (small updates: resets kept)
    X, y = blobs(n=512, spread=1.0)
    with Observer(checks=checks, schedule=Schedule(dense=steps, every=1)) as obs:
        for i in range(steps):
            if i in resets_at:
                for m in model:
                    if isinstance(m, nn.Linear):
                        m.reset_parameters()
            opt.zero_grad()
            F.cross_entropy(model(X[i * 16:(i + 1) * 16]), y[i * 16:(i + 1) * 16]).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs


def test_the_lr_probe_and_this_check_share_one_copy_and_one_update_norm_per_weight(monkeypatch):
    """Both copy the largest weight matrices before a sampled step and measure the update after it:
    one copy per weight and step serves both, with the very numbers each computes alone."""
    from nndoctor.monitor.checks.lr import LearningRate

    alone_lr = _shared_run([LearningRate], resets_at=(10, 17))
    alone_reinit = _shared_run([ReinitialisedDuringTraining], resets_at=(10, 17))
    clones: list[int] = []
    real = torch.Tensor.clone
    monkeypatch.setattr(torch.Tensor, "clone", lambda self, *a, **k: clones.append(1) or real(self, *a, **k))
    both = _shared_run([LearningRate, ReinitialisedDuringTraining], resets_at=(10, 17))
    ratios = lambda obs: list(obs.state.extra["nndoctor.update_ratios"])  # noqa: E731
    assert ratios(both) == ratios(alone_lr) and len(ratios(both)) >= 20
    mine = lambda obs: next(c for c in obs.checks if isinstance(c, ReinitialisedDuringTraining))  # noqa: E731
    assert mine(both)._resets == mine(alone_reinit)._resets and mine(both)._resets
    assert mine(both)._max_update == mine(alone_reinit)._max_update > 0
    # per sampled step: the lr probe's 3 weight matrices + 1 bias; the re-initialisation check's 2
    # largest matrices are among them (6 copies a step before)
    assert len(clones) <= 4 * 24 + 2 + 6  # (+ its 2 initial copies, + SGD's 6 momentum buffers)


# ---------------------------------------------------------------- reset at (nearly) every step
def _steps(model, opt, steps=120, before_step=lambda i: None, closure=False):
    X, y = blobs(n=2048, spread=1.0)
    for i in range(steps):
        before_step(i)
        xb, yb = X[(i * 16) % 2000:(i * 16) % 2000 + 16], y[(i * 16) % 2000:(i * 16) % 2000 + 16]
        if closure:
            def fn(xb=xb, yb=yb):
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                return loss
            opt.step(fn)
        else:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()


class _ResetInForward(nn.Module):
    """The classifier layer re-initialised inside forward(): no loss saw-tooth, nothing is learned."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(16, 64)
        self.out = nn.Linear(64, 4)

    def forward(self, x):
        if self.training:
            nn.init.xavier_uniform_(self.out.weight)
        return self.out(torch.relu(self.hidden(x)))


def test_reset_inside_forward_every_step_subclass_adam():
    torch.manual_seed(0)
    model = _ResetInForward()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _steps(model, opt)
    found = _found(obs)
    assert len(found) == 1 and found[0].evidence["param"].endswith("out.weight")
    assert found[0].evidence["loss_returns"] == 0 and found[0].evidence["resets_seen"] >= 3


def test_apply_init_in_the_batch_loop_sequential_sgd():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _steps(model, opt, before_step=lambda i: model.apply(_init_weights))
    assert len(_found(obs)) == 1


def test_reset_parameters_inside_a_closure_rmsprop():
    model = mlp()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def reset(i):
        for m in model:
            if isinstance(m, nn.Linear) and m.out_features == 64:
                m.reset_parameters()

    with Observer(checks=[ReinitialisedDuringTraining]) as obs:
        _steps(model, opt, before_step=reset, closure=True)
    assert len(_found(obs)) == 1


def test_healthy_lookalikes_of_a_reset_every_step_are_quiet():
    """Brisk but sane SGD, small weight noise added every step, WGAN-style weight clipping every step
    and one reset early in a long run move the weights each step without replacing them: quiet."""
    runs = []
    model = mlp()
    runs.append((model, torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9), lambda i: None))
    noisy = mlp()

    def jitter(i):
        with torch.no_grad():
            for p in noisy.parameters():
                p.add_(0.01 * p.std() * torch.randn_like(p))

    runs.append((noisy, torch.optim.Adam(noisy.parameters(), lr=1e-3), jitter))
    clipped = mlp()

    def clip(i):
        for p in clipped.parameters():
            p.data.clamp_(-0.05, 0.05)

    runs.append((clipped, torch.optim.RMSprop(clipped.parameters(), lr=5e-4), clip))
    once = mlp()
    runs.append((once, torch.optim.Adam(once.parameters(), lr=1e-3),
                 lambda i: once.apply(_init_weights) if i == 30 else None))
    for model, opt, hook in runs:
        with Observer(checks=[ReinitialisedDuringTraining]) as obs:
            _steps(model, opt, steps=200, before_step=hook)
        assert not _found(obs), (type(opt).__name__, _found(obs)[0].message if _found(obs) else "")
