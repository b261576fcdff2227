"""fit.stopped-while-improving: info when training ends mid-descent, sharper advice (the fit's time constant,
how many times as many updates) when the curve was cut early in its descent (too few epochs or steps, a
batch as large as the data); never a warning (healthy short demos are cut in their descent too); converged
runs, a noisy flat one, early stopping, L-BFGS and a short fine-tuning stay quiet."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.stopped import StoppedWhileImproving

CODE = "fit.stopped-while-improving"
G = torch.Generator().manual_seed(0)
X = torch.randn(400, 10, generator=G)
Y = (X[:, :3].sum(1) > 0).float()


def _observe(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[StoppedWhileImproving]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _train(epochs: int, return_inside: bool) -> nn.Module:
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(X, Y), batch_size=25, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(model(xb).squeeze(1), yb).backward()
            opt.step()
        if return_inside:
            return model
    return model


def test_return_inside_the_epoch_loop_is_named_with_the_sharper_advice():
    hits = _observe(lambda: _train(30, return_inside=True))
    assert len(hits) == 1 and hits[0].severity is Severity.INFO
    assert hits[0].evidence["recent_drop_share"] >= 0.15 and hits[0].evidence["tau_over_run"] >= 0.9
    assert "more epochs" in hits[0].message and "16 optimizer steps" in hits[0].message


def test_full_batch_top_level_loop_cut_short_is_named_and_a_converged_run_is_quiet():
    def run(steps: int) -> Callable[[], None]:
        def loop():
            model = nn.Linear(10, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(steps):
                opt.zero_grad()
                nn.BCEWithLogitsLoss()(model(X).squeeze(1), Y).backward()
                opt.step()
        return loop

    assert [(f.severity, "tau_over_run" in f.evidence) for f in _observe(run(20))] == [(Severity.INFO, True)]
    assert _observe(run(600)) == []


def test_noisy_flat_losses_are_quiet():
    def run():
        model = nn.Linear(10, 1)
        opt = torch.optim.SGD(model.parameters(), lr=1e-6)
        for i in range(40):
            xb, yb = X[i * 10 % 400:][:10], torch.rand(10, generator=G)
            opt.zero_grad()
            F.mse_loss(model(xb).squeeze(1), yb).backward()
            opt.step()

    assert _observe(run) == []


def test_a_run_whose_evaluation_loss_turned_up_is_not_told_to_train_longer():
    def loop():
        model = nn.Linear(10, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(20):
            opt.zero_grad()
            nn.BCEWithLogitsLoss()(model(X).squeeze(1), Y).backward()
            opt.step()
            if step % 5 == 4:
                with torch.no_grad():  # a validation set the training makes worse (labels flipped)
                    F.binary_cross_entropy_with_logits(model(X[:100]).squeeze(1), 1 - Y[:100])

    assert _observe(loop) == []


XC = torch.randn(512, 10, generator=G)
YC = (XC[:, :3].sum(1) > 0).long()


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 2))


def _fit(model: nn.Module, epochs: int, batch_size: int, lr: float) -> None:
    """A Keras-like fit(): epochs and batch_size decide the number of updates."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(XC, YC), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()


def _sharp(hits: list) -> dict:
    """One info finding with the cut-curve evidence (the sharper advice: how many more updates)."""
    assert [f.severity for f in hits] == [Severity.INFO] and "tau_over_run" in hits[0].evidence, hits
    return hits[0].evidence


def test_too_few_epochs_in_a_fit_helper_is_named_and_enough_epochs_are_quiet():
    ev = _sharp(_observe(lambda: _fit(_mlp(), epochs=2, batch_size=32, lr=0.01)))
    assert ev["steps"] == 32 and ev["projected_gain"] >= 0.2
    assert _observe(lambda: _fit(_mlp(), epochs=30, batch_size=32, lr=0.01)) == []


def test_a_batch_as_large_as_the_data_gives_too_few_updates():
    ev = _sharp(_observe(lambda: _fit(_mlp(), epochs=20, batch_size=512, lr=0.05)))
    assert ev["steps"] == 20
    assert _observe(lambda: _fit(_mlp(), epochs=20, batch_size=16, lr=0.05)) == []  # same epochs, 32x the updates


def test_full_batch_tensors_with_a_handful_of_steps_is_named():
    def loop(steps: int) -> Callable[[], None]:
        def run():
            model = _mlp()
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(model(XC), YC).backward()
                opt.step()
        return run

    hits = _observe(loop(15))
    _sharp(hits)
    assert "as many updates" in hits[0].message
    bent = _observe(loop(40))  # bent: weaker evidence, the plain advice
    assert [f.severity for f in bent] == [Severity.INFO] and "tau_over_run" not in bent[0].evidence
    assert _observe(loop(400)) == []


def test_early_stopping_lbfgs_and_a_short_fine_tuning_are_quiet():
    def early_stop():
        model = _mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loader = DataLoader(TensorDataset(XC[:400], YC[:400]), batch_size=32, shuffle=True)
        best, bad = float("inf"), 0
        for _ in range(100):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                val = F.cross_entropy(model(XC[400:]), YC[400:]).item()
            best, bad = (val, 0) if val < best - 1e-3 else (best, bad + 1)
            if bad >= 3:
                break

    def lbfgs():
        model = _mlp()
        opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=20)
        for _ in range(8):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = F.cross_entropy(model(XC), YC)
                loss.backward()
                return loss
            opt.step(closure)

    torch.manual_seed(1)
    pretrained = _mlp()
    pre = torch.optim.Adam(pretrained.parameters(), lr=1e-2)
    for _ in range(200):
        pre.zero_grad()
        F.cross_entropy(pretrained(XC), YC).backward()
        pre.step()

    def finetune():
        opt = torch.optim.SGD(pretrained.parameters(), lr=1e-3)
        for i in range(20):
            opt.zero_grad()
            F.cross_entropy(pretrained(XC[i * 25:(i + 1) * 25]), YC[i * 25:(i + 1) * 25]).backward()
            opt.step()

    for fn in (early_stop, lbfgs, finetune):
        assert _observe(fn) == [], fn.__name__
