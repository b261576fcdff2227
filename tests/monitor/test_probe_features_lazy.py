"""The probes' features of a training batch are computed only once targets of as many rows pair with
it: a full graph's forward scored on a few of its nodes (a GCN: 2,708 rows, 140 targets) never pairs,
and flattening it cost 0.1-0.4 s on every sampled step for nothing."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import spy

import nndoctor.monitor.checks.data.sample as sample
from nndoctor.monitor import Observer


def _count_features(loop) -> tuple[int, int]:
    with spy(sample, "probe_features") as calls, Observer() as obs:
        loop()
    data = obs.state.extra.get(sample.KEY)
    return len(calls), (data.pair_rows if data is not None else 0)


def test_a_forward_scored_on_a_subset_of_its_rows_computes_no_features():
    torch.manual_seed(0)
    x, y = torch.randn(600, 40), torch.randint(0, 3, (600,))
    idx = torch.arange(60)
    model = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def loop() -> None:
        for _ in range(30):
            opt.zero_grad()
            F.cross_entropy(model(x)[idx], y[idx]).backward()
            opt.step()

    calls, pairs = _count_features(loop)
    assert calls == 0 and pairs == 0


def test_minibatches_with_their_targets_still_pair():
    torch.manual_seed(0)
    x, y = torch.randn(640, 40), torch.randint(0, 3, (640,))
    model = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def loop() -> None:
        for i in range(30):
            j = (i * 64) % 576
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + 64]), y[j:j + 64]).backward()
            opt.step()

    calls, pairs = _count_features(loop)
    assert calls >= 1 and pairs == 64 * calls
