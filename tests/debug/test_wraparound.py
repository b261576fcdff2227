"""dtype.uint8-wraparound: uint8 arithmetic that overflows before the float conversion."""

from __future__ import annotations

import torch
import torch.nn as nn

from nndoctor.debug.wraparound import Uint8Wraparound
from nndoctor.monitor import Observer


def _run(prepare) -> list:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 16), dtype=torch.uint8)
    model = nn.Linear(16, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with Observer(checks=[Uint8Wraparound]) as obs:
        for i in range(3):
            x = prepare(images[i * 16:(i + 1) * 16])
            loss = nn.functional.cross_entropy(model(x), torch.randint(0, 2, (16,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == "dtype.uint8-wraparound"]


def test_centering_scaling_and_jitter_in_uint8_are_caught():
    assert _run(lambda x: (x - 128).float() / 128)
    assert _run(lambda x: torch.sub(x, 100).float())
    assert _run(lambda x: (x * 2).float() / 255)
    noise = torch.randint(0, 80, (16, 16), dtype=torch.uint8)
    assert _run(lambda x: (x + noise).float() / 255)


def test_in_range_uint8_arithmetic_and_float_first_stay_quiet():
    assert not _run(lambda x: (255 - x).float() / 255)
    assert not _run(lambda x: (x.float() - 128) / 128)
    assert not _run(lambda x: (x // 2 + 1).float())
