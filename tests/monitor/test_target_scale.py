"""preprocessing.targets-not-scaled: regression targets on a raw scale that the model never learns."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor import rootcause
from nndoctor.catalogue import finding
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.target_scale import TargetsNotScaled

CODE = "preprocessing.targets-not-scaled"


def _xy(n=512, d=8, scale=5e4, offset=2e5, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g) / d ** 0.5
    return x, offset + scale * (x @ w + noise * torch.randn(n, 1, generator=g))


def _run(model, opt, x, y, loss_fn=F.mse_loss, epochs=6, bs=32):
    loader = DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0))
    with Observer(checks=[TargetsNotScaled]) as obs:
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(model(xb), yb).backward()
                opt.step()
    return [f for f in obs.findings if f.code == CODE]


def test_house_prices_on_raw_scale_with_adam_sequential():
    torch.manual_seed(0)
    x, y = _xy()
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    found = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3), x, y)
    assert len(found) == 1
    ev = found[0].evidence
    assert ev["target_mean"] > 1e5 and ev["target_std"] > 1e3
    assert ev["late_loss"] >= 0.8 * ev["constant_loss"]
    assert "target" in found[0].message and "standardis" in found[0].fixes[0].lower()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def test_targets_with_large_std_l1_loss_sgd_subclass():
    torch.manual_seed(0)
    x, y = _xy(scale=60.0, offset=300.0)
    model = Net()
    found = _run(model, torch.optim.SGD(model.parameters(), lr=1e-4), x, y, loss_fn=nn.L1Loss(), epochs=4)
    assert len(found) == 1 and found[0].evidence["loss"] == "l1_loss"


def test_large_targets_that_the_model_learns_and_standardised_targets_are_quiet():
    torch.manual_seed(0)
    x, y = _xy(scale=60.0, offset=0.0, noise=0.05)
    model = nn.Linear(8, 1)                                   # large targets, learned well: quiet
    assert _run(model, torch.optim.SGD(model.parameters(), lr=0.05), x, y) == []
    x, y = _xy()
    y = (y - y.mean()) / y.std()                              # standardised: quiet
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    assert _run(model, torch.optim.Adam(model.parameters(), lr=1e-3), x, y) == []


def test_the_target_scale_heads_the_curve_and_lr_findings():
    scale = finding(CODE, "m", {"target_std": 5e4}, location="targets", first_step=1)
    plateau = finding("loss-curve.plateaus", "m", {}, location="loss", first_step=100)
    low = finding("lr.too-low", "m", {"update_ratio_median": 1e-5}, location="opt", first_step=100)
    head = rootcause.headline(rootcause.link([plateau, low, scale]))
    assert head is not None and head.code == CODE


def _overshooting(loss_fn, seed: int = 0):
    """Large targets (mean 300, std 60) under an L1-type loss, with an SGD step so large that the
    predictions swing far past the targets (the loss ends above that of predicting 0): the step size,
    not the targets' scale."""
    torch.manual_seed(seed)
    x, y = _xy(scale=60.0, offset=300.0, seed=seed)
    model = nn.Linear(8, 1)
    return _run(model, torch.optim.SGD(model.parameters(), lr=3000.0), x, y, loss_fn=loss_fn, epochs=3)


def test_a_rising_loss_under_bounded_gradient_losses_is_not_blamed_on_the_targets():
    """pytorch/examples regression at a 100x step (smooth_l1, targets of std ~50): the loss went 24 -> 53 and
    the report headlined 'the steps cannot reach this scale'. L1-type gradients are bounded by 1 per output:
    the targets' scale cannot blow the steps up."""
    for loss_fn in (nn.L1Loss(), F.smooth_l1_loss, nn.HuberLoss(delta=1.0)):
        for seed in range(2):
            assert _overshooting(loss_fn, seed) == [], (loss_fn, seed)


def test_a_stalled_l1_run_on_large_targets_still_warns():
    """The lookalike: the same targets under an L1-type loss with small steps stall at the constant level."""
    for loss_fn in (nn.L1Loss(), F.smooth_l1_loss):
        torch.manual_seed(0)
        x, y = _xy(scale=60.0, offset=300.0)
        model = Net()
        assert len(_run(model, torch.optim.SGD(model.parameters(), lr=1e-4), x, y, loss_fn=loss_fn, epochs=4)) == 1
