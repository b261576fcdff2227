"""A second task under the same optimizer (continual learning: EWC, a second stage of new data) makes the loss
jump once and then fall. A live read of a coarse curve (block means of a loss averaged over few values) cannot
tell that from a climb: it waits for the end of the run. A loss that climbs (a flipped sign) is still reported."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.fit import Fit
from nndoctor.monitor.checks.loss_curve import LossCurve
from nndoctor.monitor.checks.lr import LearningRate
from nndoctor.monitor.curves import analyze

CHECKS = [Fit, LossCurve, LearningRate]


def test_a_coarse_curve_coming_down_from_one_jump_waits_for_the_end():
    v = [1.37, 0.44, 0.11, 0.07, 0.04, 0.035, 0.023, 0.026, 0.021, 0.018, 0.015, 0.015, 0.609, 0.811, 0.452,
         0.271, 0.233, 0.204, 0.192, 0.145]
    up = analyze(list(range(16, 16 * 21, 16)), v).symptoms["goes-up"]
    assert up.get("recent_jump"), up
    climb = list(np.linspace(0.5, 0.1, 8)) + list(np.linspace(0.1, 0.9, 12))
    up = analyze(list(range(16, 16 * 21, 16)), climb).symptoms["goes-up"]
    assert not up.get("recent_jump"), up


def _two_tasks(sign: float = 1.0, fisher: bool = True):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2000, 16, generator=g)
    yA = (X[:, 0] > 0).long()
    yB = (X[:, 1] + X[:, 2] > 0).long()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    with Observer(checks=CHECKS) as obs:
        for _ in range(200):
            i = torch.randint(0, 2000, (32,), generator=g)
            loss = F.cross_entropy(net(X[i])[:, :2], yA[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if fisher:  # per-example gradients of task A (EWC's diagonal Fisher): 1-row losses, no step
            for i in range(200):
                net.zero_grad()
                F.cross_entropy(net(X[i:i + 1])[:, :2], yA[i:i + 1]).backward()
        for _ in range(150):
            i = torch.randint(0, 2000, (32,), generator=g)
            loss = sign * F.cross_entropy(net(X[i])[:, 2:], yB[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {f.code for f in obs.report().at_least("warning")}


def test_a_second_task_under_the_same_optimizer_is_quiet():
    assert _two_tasks() == set()


def test_a_second_task_with_a_flipped_sign_is_still_reported():
    assert _two_tasks(sign=-1.0) & {"loss-curve.goes-up", "loss-curve.explodes", "lr.too-high"}
