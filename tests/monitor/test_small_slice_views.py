"""data.training-on-small-slice counts the examples a batch's storage holds along its rows only: one
time step of a sequence tensor (``out[:, -1]`` of a batch_first GRU, ``H[-1]`` of a time-major stack,
a batch-first view of time-major data) shares a storage T times larger without being a debug slice."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.data.subset import TinyTrainingSlice

N, T, D = 150, 30, 8
CODE = "data.training-on-small-slice"


def _sequences(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, T, 4, generator=g)
    return x, (x[:, :, 0].mean(1) > 0).long()


def _gru_last(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of a frozen batch_first GRU: its last time step (a view of a time-major output)."""
    x, y = _sequences(n)
    torch.manual_seed(0)
    gru = nn.GRU(4, D, batch_first=True)
    with torch.no_grad():
        out, _ = gru(x)
    return out[:, -1], y


def _stack_last(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step states of a hand-written recurrence stacked time-major, (T, n, D); the last one."""
    x, y = _sequences(n)
    torch.manual_seed(0)
    w_in, w_h = torch.randn(4, D) * 0.5, torch.randn(D, D) * 0.3
    h, states = torch.zeros(n, D), []
    for t in range(T):
        h = torch.tanh(x[:, t] @ w_in + h @ w_h)
        states.append(h)
    return torch.stack(states)[-1], y


def _time_major(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major data (T, n, 4) handed to the model as a batch-first view (n, T, 4)."""
    x, y = _sequences(n)
    return x.transpose(0, 1).contiguous().transpose(0, 1), y


_STYLES = {"gru_last": _gru_last, "stack_last": _stack_last, "time_major": _time_major}


def _probe(feats: torch.Tensor, y: torch.Tensor, rows: int) -> set[str]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(2)) if feats.dim() > 2 else nn.Linear(D, 2)
    model(feats[:1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with Observer(checks=[DataCollector, TinyTrainingSlice]) as obs:
        for _ in range(20):
            for i in range(0, rows, 32):
                loss = F.cross_entropy(model(feats[i:i + 32]), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return {f.code for f in obs.findings}


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_one_time_step_of_a_sequence_tensor_is_not_a_slice(style):
    feats, y = _STYLES[style](N)
    assert CODE not in _probe(feats, y, N)


@pytest.mark.parametrize("style", sorted(_STYLES))
def test_a_debug_slice_of_the_same_features_is_still_caught(style):
    feats, y = _STYLES[style](6 * N)
    assert CODE in _probe(feats, y, N // 3)  # 50 of 900 examples
