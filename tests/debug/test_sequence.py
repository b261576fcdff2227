"""shape: batch_first=False recurrent layers fed batch-major tensors; view/reshape that permutes axes."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.sequence import RecurrentBatchTimeSwapped, ViewPermutesAxes
from nndoctor.monitor import Observer

CHECKS = [RecurrentBatchTimeSwapped, ViewPermutesAxes]
N, T, C = 16, 7, 3


def _run(model: nn.Module, step_fn, steps: int = 4) -> list:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=CHECKS) as obs:
        for _ in range(steps):
            x = torch.randn(N, T, C)
            y = torch.randint(0, 2, (N,))
            loss = step_fn(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return obs.findings


class SeqNet(nn.Module):
    def __init__(self, rnn: nn.Module, transpose: bool = False) -> None:
        super().__init__()
        self.rnn, self.head, self.transpose = rnn, nn.Linear(8, 2), transpose

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transpose:
            out, _ = self.rnn(x.transpose(0, 1))
            return self.head(out[-1])
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_lstm_and_gru_default_layout_fed_batch_major_are_caught():
    for rnn in (nn.LSTM(C, 8), nn.GRU(C, 8), nn.RNN(C, 8)):
        found = _run(SeqNet(rnn), lambda m, x, y: F.cross_entropy(m(x), y))
        hits = [f for f in found if f.code == "shape.rnn-batch-time-swapped"]
        assert hits, _codes(found)
        assert hits[0].evidence["input_shape"] == (N, T, C) and hits[0].first_step == 1


def test_batch_first_true_and_time_major_stay_quiet():
    assert "shape.rnn-batch-time-swapped" not in _codes(
        _run(SeqNet(nn.LSTM(C, 8, batch_first=True)), lambda m, x, y: F.cross_entropy(m(x), y)))
    assert "shape.rnn-batch-time-swapped" not in _codes(
        _run(SeqNet(nn.GRU(C, 8), transpose=True), lambda m, x, y: F.cross_entropy(m(x), y)))


def test_view_that_swaps_axes_is_caught_in_loss_and_input():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(C, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x)  # (N, T, 4)

    def loss_view(m, x, y):
        logits = m(x)
        return F.cross_entropy(logits.view(N, 4, T), torch.randint(0, 4, (N, T)))

    found = _run(Tagger(), loss_view)
    assert "shape.view-scrambles-axes" in _codes(found)
    conv = nn.Sequential(nn.Conv1d(C, 4, 3, padding=1), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    found = _run(conv, lambda m, x, y: F.cross_entropy(m(x.reshape(N, C, T)), y))
    assert "shape.view-scrambles-axes" in _codes(found)


def test_permute_flatten_and_unit_axis_moves_stay_quiet():
    conv = nn.Sequential(nn.Conv1d(C, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * T, 2))

    def step(m, x, y):
        h = x.permute(0, 2, 1)
        z = x[:, :1, :].reshape(N, C, 1)  # only a size-1 axis moves: (N, 1, C) -> (N, C, 1)
        return F.cross_entropy(m(h), y) + 0 * z.sum() + 0 * x.view(N, -1).sum()

    assert "shape.view-scrambles-axes" not in _codes(_run(conv, step))
