"""fit.overfitting from an accuracy-only evaluation (nndoctor/monitor/checks/fit_accuracy.py)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.fit_accuracy import AccuracyOverfit


def _blobs(n, flip, g):
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) + (2 * y[:, None] - 1) * 1.0
    if flip:
        y = torch.where(torch.rand(n, generator=g) < flip, 1 - y, y)
    return x, y


class Net(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(2, width), nn.Linear(width, width), nn.Linear(width, 2)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _run(n, flip, style, steps=128, every=16, train_batch_accuracy=False):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = _blobs(n, flip, g)
    xv, yv = _blobs(600, 0.0, g)
    model = Net() if style == "module" else nn.Sequential(
        nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[Fit, AccuracyOverfit]) as obs:
        for i in range(steps):
            model.train()
            opt.zero_grad()
            out = model(x)
            F.cross_entropy(out, y).backward()
            opt.step()
            if train_batch_accuracy:
                with torch.no_grad():
                    (out.argmax(1) == y).float().mean()  # the training batch's accuracy, every step
            if i % every == every - 1:
                model.eval()
                with torch.no_grad():
                    if style == "module":  # batched, max(1)[1].eq(y).sum() per batch
                        correct = sum(int(model(xv[j:j + 200]).max(1)[1].eq(yv[j:j + 200]).sum())
                                      for j in range(0, 600, 200))
                        correct / 600
                    else:
                        (model(xv).argmax(1) == yv).float().mean()
    return obs


def test_falling_validation_accuracy_while_memorising_noisy_labels():
    for style in ("sequential", "module"):
        obs = _run(40, 0.3, style)
        assert len(obs.state.eval_losses) == 0  # accuracy only
        found = [f for f in obs.findings if f.code == "fit.overfitting"]
        assert found and found[0].evidence["from"] == "accuracy", style
        assert found[0].evidence["best_val_accuracy"] - found[0].evidence["last_val_accuracy"] >= 0.02


def test_healthy_accuracy_only_runs_stay_quiet():
    for style in ("sequential", "module"):
        assert not _run(1000, 0.0, style).findings, style


def test_training_batch_accuracy_is_not_a_validation_accuracy():
    """A training batch's accuracy read under no_grad every step (after the training forward)
    stays out of the evaluations: mixed with them, its high values would look like a fall."""
    obs = _run(1000, 0.0, "sequential", train_batch_accuracy=True)
    assert not obs.findings
    check = next(c for c in obs.checks if isinstance(c, AccuracyOverfit))
    assert len(check._per_step) == 8  # the evaluations only


def _accuracy_run(accuracies, every=8):
    """A healthy training loop whose evaluation reports the given validation accuracies."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = _blobs(48, 0.3, g)  # noisy labels: the training loss keeps falling (memorising)
    xv, yv = _blobs(600, 0.0, g)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    accs = iter(accuracies)
    with Observer(checks=[Fit, AccuracyOverfit]) as obs:
        for i in range(every * len(accuracies)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if i % every == every - 1:
                model.eval()
                with torch.no_grad():
                    right = torch.arange(600) < int(round(next(accs) * 600))
                    want = torch.where(right, yv, 1 - yv)  # predictions right on the given share
                    logits = model(xv) * 0 + F.one_hot(want, 2).float()
                    (logits.argmax(1) == yv).float().mean()
                model.train()
    return obs


def test_a_mid_run_dip_that_recovers_is_not_overfitting_and_a_lasting_one_is():
    """Judged at the end of the run: validation accuracy that fell for three evaluations (a
    one-cycle peak with mixup, BatchNorm statistics catching up) and recovered beyond its old best
    is quiet; one that stays down is overfitting."""
    dip = [0.2, 0.3, 0.68, 0.56, 0.51, 0.5, 0.69, 0.78, 0.9, 0.95, 0.96]
    obs = _accuracy_run(dip, every=4)  # a curve read (every 25 losses) lands in the dip
    assert len(next(c for c in obs.checks if isinstance(c, AccuracyOverfit))._per_step) == len(dip)
    assert obs.report().by_code("fit.overfitting") == []
    lasting = [0.5, 0.7, 0.9, 0.85, 0.8, 0.75, 0.72, 0.7]
    assert _accuracy_run(lasting).report().by_code("fit.overfitting")
