"""lr.too-high from units that die after an update as large as the weights, when the dying happens
after the dense start (steps 1-8) and is first seen at the next look (~step 51): Adam at 0.1 on ReLU
nets (a module with a DataLoader: fails on the old 20-step window; a multi-label Sequential whose units
die within the dense start: named before and after). Units that die later (a Keras-like Sequential at
0.1 loses them by step ~100) are not claimed here. The same nets at a working rate, and units that die without a huge update (a
narrow net at a usual rate), are not blamed on the lr."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import make_classification, make_multilabel_classification

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.activations import ActivationHealth
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate

CHECKS = [Fit, LossCurve, LearningRate, ActivationHealth]


def _data(seed=0):
    x, y = make_classification(n_samples=3000, n_features=20, n_informative=12, n_classes=4,
                               n_clusters_per_class=2, class_sep=1.2, random_state=seed)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class _Net(nn.Module):
    """Style 1: a module reusing one nn.ReLU, a DataLoader, a loss module."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(20, 64), nn.Linear(64, 64), nn.Linear(64, 4)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.fc3(self.drop(self.act(self.fc2(self.act(self.fc1(x))))))


def _loader_run(model, lr, epochs=10):
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    crit = nn.CrossEntropyLoss()
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                crit(model(xb), yb).backward()
                opt.step()
    return obs


def _multilabel_run(lr, steps=380):
    """Style 2: a Sequential multi-label tagger, BCE with logits, index batches."""
    x, y = make_multilabel_classification(n_samples=3000, n_features=24, n_classes=6, n_labels=2, random_state=0)
    x = np.log1p(x)
    x = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    model = nn.Sequential(nn.Linear(24, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 6))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with Observer(checks=CHECKS) as obs:
        for s in range(steps):
            j = (s * 64) % (3000 - 64)
            loss = F.binary_cross_entropy_with_logits(model(x[j:j + 64]), y[j:j + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return obs


def _keras_run(lr, epochs=8, seed=2):  # (a healthy lookalike at 1e-3)
    """Style 3: a Keras-like Sequential (Dense, Dropout), fit() over shuffled index batches, F.cross_entropy."""
    x, y = _data(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(64, 4))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with Observer(checks=CHECKS) as obs:
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                b = perm[i:i + 64]
                loss = F.cross_entropy(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return obs


def _lr_high(obs):
    return [f for f in obs.findings if f.code == "lr.too-high"]


def test_adam_at_0_1_killing_relus_of_a_module_is_named():
    torch.manual_seed(0)
    found = _lr_high(_loader_run(_Net(), 0.1))
    assert found and found[0].evidence.get("big_update_ratio", 0) >= 0.3
    assert found[0].first_step <= 60


def test_adam_at_0_1_on_a_multilabel_sequential_is_named():
    torch.manual_seed(0)
    assert _lr_high(_multilabel_run(0.1))


def test_the_same_nets_at_a_working_rate_are_quiet():
    torch.manual_seed(0)
    assert not _lr_high(_loader_run(_Net(), 1e-3))
    torch.manual_seed(0)
    assert not _lr_high(_multilabel_run(1e-3))
    torch.manual_seed(0)
    assert not _lr_high(_keras_run(1e-3))


def test_units_dying_in_a_narrow_net_at_a_usual_rate_are_not_the_lr():
    torch.manual_seed(0)
    x, y = _data(seed=3)
    model = nn.Sequential(nn.Linear(20, 3), nn.ReLU(), nn.Linear(3, 4))  # narrow: units die, no huge update
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with Observer(checks=CHECKS) as obs:
        for s in range(300):
            j = (s * 64) % (3000 - 64)
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + 64]), y[j:j + 64]).backward()
            opt.step()
    assert not _lr_high(obs)
