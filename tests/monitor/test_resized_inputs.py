"""Progressive resizing: a fully convolutional classifier trained on 4x4, then 6x6, then 8x8 inputs. The label
probes (labels.noisy, labels.unrelated-to-inputs, the evaluation's) fit (features, label) pairs of the
training batches: pairs of several input sizes cannot be stacked, and nndoctor raised an internal error
(NoisyLabels: 'all the input array dimensions ... must match'). Pairs of the first size are kept."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_unrelated import EvalLabelsUnrelated
from nndoctor.monitor.checks.data.noise import NoisyLabels
from nndoctor.monitor.checks.data.probe import LabelsUnrelated
from nndoctor.monitor.checks.data.sample import DataCollector, ObservedData


def _images(n=1200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    for c in range(4):  # a bright quadrant per class
        r, k = divmod(c, 2)
        x[y == c, :, 4 * r:4 * r + 4, 4 * k:4 * k + 4] += 1.0
    return x, y


def test_training_on_inputs_of_several_sizes_raises_no_internal_error():
    x, y = _images()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(64, 4))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    with Observer(checks=[DataCollector, NoisyLabels, LabelsUnrelated, EvalLabelsUnrelated]) as obs:
        for size, steps in ((4, 80), (6, 80), (8, 80)):
            for _ in range(steps):
                i = torch.randint(0, 1000, (64,))
                xb = F.interpolate(x[i], size=(size, size), mode="bilinear", align_corners=False)
                loss = F.cross_entropy(net(xb), y[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            net(x[1000:]).argmax(1)
        data = ObservedData.of(obs.state)
    assert not obs.internal_errors, obs.internal_errors
    assert data is not None and data.pairs_x and len({p.shape[1:] for p in data.pairs_x}) == 1
