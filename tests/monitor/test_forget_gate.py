"""init.lstm-forget-gate-closed: forget biases filled negative (nn.LSTM, bidirectional / stacked,
nn.LSTMCell), named once per layer; PyTorch's default, the +1 recipe, other gates' biases and a
frozen LSTM stay quiet."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.forget_gate import ClosedForgetGate

CODE = "init.lstm-forget-gate-closed"
_G = torch.Generator().manual_seed(0)
SEQ = torch.randn(64, 12, 4, generator=_G)
LAB = (SEQ[:, 0, 0] > 0).long()


class Seq(nn.Module):
    def __init__(self, layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 16, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(16 * (2 if bidirectional else 1), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


class Cell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.LSTMCell(4, 16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = torch.zeros(x.shape[0], 16)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.head(h)


def _fill(module: nn.Module, lo: int, hi: int, value: float) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name and p.dim() == 1 and p.numel() % 4 == 0 and "head" not in name:
                h = p.numel() // 4
                p[lo * h:hi * h].fill_(value)


def _run(model: nn.Module, frozen: bool = False) -> list:
    params = [p for n, p in model.named_parameters() if not (frozen and "head" not in n)]
    opt = torch.optim.Adam(params, lr=1e-2)
    with Observer(checks=[ClosedForgetGate]) as obs:
        for i in range(4):
            xb, yb = SEQ[i * 16:(i + 1) * 16], LAB[i * 16:(i + 1) * 16]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


@pytest.mark.parametrize("make", [lambda: Seq(), lambda: Seq(2, True), Cell], ids=["lstm", "stacked-bidirectional", "cell"])
def test_forget_bias_filled_negative_is_named_per_layer(make):
    torch.manual_seed(0)
    model = make()
    _fill(model, 1, 2, -2.0)
    found = _run(model)
    layers = {n.split(".")[1] for n, _ in model.named_parameters() if ".bias_ih" in n}
    assert len(found) == 1, [f.message for f in found]
    assert {c["bias"] for c in found[0].evidence["closed"]} == layers
    assert found[0].evidence["forget_bias_mean"] == pytest.approx(-4.0)
    assert found[0].location in ("model.lstm", "model.cell"), found[0].location


@pytest.mark.parametrize("case", ["default", "plus-one", "input-gate-negative", "frozen"])
def test_default_recipe_other_gates_and_frozen_lstm_are_quiet(case):
    torch.manual_seed(0)
    model = Seq(2)
    if case == "plus-one":
        _fill(model, 1, 2, 1.0)
    elif case in ("input-gate-negative", "frozen"):
        _fill(model, 0, 1, -2.0) if case == "input-gate-negative" else _fill(model, 1, 2, -2.0)
    assert _run(model, frozen=case == "frozen") == []
