"""labels.noisy on the `nndoctor run` side: randomly wrong labels that the model memorises."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from _dyn_helpers import blobs
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.noise import NoisyLabels, estimate_noise, noise_floor
from nndoctor.monitor.checks.data.sample import DataCollector

CHECKS = [DataCollector, NoisyLabels]


def _flip(y: torch.Tensor, rate: float, classes: int, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(y), generator=g) < rate
    return torch.where(flip, (y + torch.randint(1, classes, (len(y),), generator=g)) % classes, y)


def _noisy(obs, severities=("warning",)):
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == "labels.noisy" and f.severity.value in severities]


def _memorise_full_batch(x, y, classes, steps=120, hidden=64, held_out=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if held_out is not None and _ % 10 == 0:
                with torch.no_grad():
                    F.cross_entropy(model(held_out[0]), held_out[1])
    return obs


def test_thirty_percent_wrong_labels_memorised_full_batch_sequential_adam():
    x, y = blobs(n=500, classes=4, seed=1, spread=1.5)
    y = _flip(y, 0.3, 4)
    obs = _memorise_full_batch(x[:400], y[:400], 4, held_out=(x[400:], y[400:]))
    (f,) = _noisy(obs)
    assert 0.2 <= f.evidence["confident_disagreement"] <= 0.45 and f.evidence["noise_rate"] >= 0.15
    assert f.evidence["train_loss"] < 0.5 * f.evidence["noise_floor_loss"] and f.evidence["eval_loss_rise"]
    # no held-out data: memorisation alone is said as info (a model may learn what the probes cannot)
    obs = _memorise_full_batch(x[:400], y[:400], 4)
    assert not _noisy(obs) and _noisy(obs, ("info",))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
        self.head = nn.Linear(128, 1)

    def forward(self, x):
        return self.head(self.body(x)).squeeze(1)


def test_binary_noisy_labels_loader_bce_main_sgd_with_rising_eval_loss():
    x, y = blobs(n=900, classes=2, seed=3, spread=1.5)
    y_noisy = _flip(y, 0.3, 2)

    def main():
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loader = DataLoader(TensorDataset(x[:600], y_noisy[:600].float()), batch_size=100, shuffle=True)
        for _ in range(40):
            for xb, yb in loader:
                loss = F.binary_cross_entropy_with_logits(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                F.binary_cross_entropy_with_logits(model(x[600:]), y_noisy[600:].float())

    with Observer(checks=CHECKS) as obs:
        main()
    (f,) = _noisy(obs)
    assert f.evidence["classes"] == 2 and (f.evidence["eval_loss_rise"] or f.evidence["train_loss"] < 0.3)


def test_clean_labels_easy_or_overlapping_are_not_noisy_even_when_memorised():
    from sklearn.datasets import make_classification

    x, y = blobs(n=400, classes=4, seed=1, spread=1.5)
    assert not _noisy(_memorise_full_batch(x, y, 4), ("info", "warning"))
    xh, yh = make_classification(n_samples=400, n_features=12, n_informative=6, n_classes=2, class_sep=0.5,
                                 flip_y=0, random_state=0)  # hard, overlapping, clean
    obs = _memorise_full_batch(torch.tensor(xh, dtype=torch.float32), torch.tensor(yh), 2)
    assert not _noisy(obs, ("info", "warning"))


def test_estimate_and_floor():
    x, y = blobs(n=800, classes=3, seed=4, spread=2.0)
    clean = estimate_noise(x.numpy(), y.numpy())
    noisy = estimate_noise(x.numpy(), _flip(y, 0.25, 3).numpy())
    assert clean is not None and noisy is not None
    assert not clean.noisy and clean.consensus < 0.05
    assert noisy.noisy and 0.15 <= noisy.consensus <= 0.35
    assert abs(noise_floor(0.0001, 4)) < 0.01 and noise_floor(0.3, 4) > noise_floor(0.1, 4)
    assert np.isclose(noise_floor(0.5, 2), np.log(2))


def test_early_stop_of_the_probes_is_exact_and_skips_the_costly_ones_when_the_labels_are_random_or_clean(
        monkeypatch):
    from nndoctor.monitor.checks.data import probe
    from nndoctor.monitor.checks.data.noise import ruled_out

    fitted: list[str] = []
    real_mlp, real_logistic = probe._mlp, probe._logistic
    monkeypatch.setattr(probe, "_mlp", lambda *a: fitted.append("mlp") or real_mlp(*a))
    monkeypatch.setattr(probe, "_logistic", lambda *a, **k: fitted.append("linear") or real_logistic(*a, **k))
    rng = np.random.default_rng(0)
    x, y = blobs(n=500, classes=4, seed=1, spread=1.5)
    cases = [(x.numpy(), y.numpy(), False), (x.numpy(), _flip(y, 0.3, 4).numpy(), True),
             (rng.standard_normal((320, 20)), rng.integers(0, 10, 320), False)]
    stopped = []
    for xs, ys, noisy in cases:
        full = estimate_noise(xs, ys)
        assert full is not None and full.noisy == noisy
        fitted.clear()
        early = estimate_noise(xs, ys, early=True)
        assert (early is not None and early.noisy) == noisy  # the same verdict, always
        if early is None:
            stopped.append(fitted.count("linear") == 0)
        else:  # not ruled out: every probe fitted, the same estimate as without the early stop
            assert early.consensus == full.consensus and early.cl_rate == full.cl_rate
    # clean blobs (the 5-NN alone rules it out) and 10 random classes (5-NN + MLP): no LBFGS fit
    assert stopped == [True, True]
    oof = probe.out_of_fold(*cases[1][:2], min_examples=300)
    assert oof is not None and not ruled_out(oof)
