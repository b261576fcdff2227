"""Remedies of optimizer.dampening-cancels-momentum (dampening dropped, momentum kept) and
init.lstm-forget-gate-closed (closed forget gates opened before the first training forward): the
injected bug then trains like its fixed twin; healthy settings are left bit-identical."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.remedies import remedy_for
from nndoctor.fix.setting_remedies import open_forget_gates


def _sgd_run(dampening: float, groups: bool = False, adam: bool = False) -> list[float]:
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = x @ torch.randn(5, 1)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    if adam:
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    elif groups:  # the first layer with the slip, the head without
        opt = torch.optim.SGD([{"params": model[0].parameters(), "dampening": dampening},
                               {"params": model[2].parameters()}], lr=0.003, momentum=0.9)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9, dampening=dampening)
    out = []
    for _ in range(40):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(float(loss.detach()))
    return out


def test_dampening_dropped_trains_like_the_twin_in_both_styles():
    for groups in (False, True):
        twin, bug = _sgd_run(0.0, groups), _sgd_run(0.9, groups)
        with _apply("optimizer.dampening-cancels-momentum", "optimizer", optimizer="optimizer (SGD)",
                    momentum=0.9, dampening=0.9):
            fixed = _sgd_run(0.9, groups)
        assert bug[-1] > twin[-1] * 1.5
        assert fixed == twin


def test_healthy_optimizers_are_untouched_by_the_dampening_remedy():
    plain = (_sgd_run(0.0), _sgd_run(0.3), _sgd_run(0.0, adam=True))
    with _apply("optimizer.dampening-cancels-momentum", "optimizer", momentum=0.9, dampening=0.9):
        again = (_sgd_run(0.0), _sgd_run(0.3), _sgd_run(0.0, adam=True))
    assert again == plain  # no dampening, a small one below the check's threshold, Adam


class _Seq(nn.Module):
    """Reads a sequence and predicts the sign of its first element (a memory task)."""

    def __init__(self, cell: bool) -> None:
        super().__init__()
        self.cell = cell
        self.rnn = nn.LSTMCell(1, 12) if cell else nn.LSTM(1, 12, batch_first=True)
        self.head = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cell:
            return self.head(self.rnn(x)[0][:, -1])
        h = c = x.new_zeros(x.shape[0], 12)
        for t in range(x.shape[1]):
            h, c = self.rnn(x[:, t], (h, c))
        return self.head(h)


def _lstm_run(cell: bool, fill: float | None) -> tuple[list[float], torch.Tensor]:
    torch.manual_seed(0)
    model = _Seq(cell)
    if fill is not None:
        for name, b in model.rnn.named_parameters():
            if "bias" in name:
                b.data[12:24].fill_(fill)
    x = torch.randn(32, 8, 1)
    y = (x[:, 0, 0] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    out = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(float(loss.detach()))
    return out, model.rnn.bias_ih_l0.detach().clone() if not cell else model.rnn.bias_ih.detach().clone()


def test_closed_forget_gates_are_opened_before_training_in_lstm_and_lstmcell():
    for cell in (False, True):
        bug, _ = _lstm_run(cell, -3.0)
        with _apply("init.lstm-forget-gate-closed", "model.rnn", layer="model.rnn"):
            fixed, _ = _lstm_run(cell, -3.0)
        assert min(fixed[-10:]) < min(bug[-10:]), (cell, fixed[-1], bug[-1])


def test_open_or_default_forget_gates_are_untouched():
    for fill in (None, 0.5, -0.25):  # PyTorch's default, the +1 recipe, a mild negative (sums -0.5 > -1)
        plain = _lstm_run(False, fill)[0]
        with _apply("init.lstm-forget-gate-closed", "model.rnn", layer="model.rnn"):
            assert _lstm_run(False, fill)[0] == plain


def test_open_forget_gates_flips_a_sign_slip_and_opens_at_least_to_one():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    with torch.no_grad():
        for name, b in lstm.named_parameters():
            if "bias" in name:
                b[4:8].fill_(-2.0 if "l0" in name else 0.1)
                if "l0_reverse" in name:
                    b[4:8].fill_(-0.6)  # sums to -1.2: closed, and only +1.2 with the signs flipped
    assert open_forget_gates(lstm) == 2  # layer 0, both directions; layer 1 stays
    assert torch.equal(lstm.bias_ih_l0[4:8] + lstm.bias_hh_l0[4:8], torch.full((4,), 4.0))  # -2 meant as +2
    assert torch.allclose(lstm.bias_ih_l0_reverse[4:8] + lstm.bias_hh_l0_reverse[4:8], torch.full((4,), 1.2))
    assert torch.allclose(lstm.bias_ih_l1[4:8], torch.full((4,), 0.1))
    cell = nn.LSTMCell(3, 4)
    with torch.no_grad():
        cell.bias_ih[4:8].fill_(-1.5)
        cell.bias_hh[4:8].fill_(1.0)  # sums to -0.5: not closed
    assert open_forget_gates(cell) == 0
    with torch.no_grad():
        cell.bias_hh[4:8].fill_(0.2)  # -1.3: closed; flipped 1.7
    assert open_forget_gates(cell) == 1 and torch.allclose(cell.bias_ih[4:8] + cell.bias_hh[4:8], torch.full((4,), 1.7))
    with torch.no_grad():
        cell.bias_ih[4:8].fill_(-0.5)
        cell.bias_hh[4:8].fill_(-0.5)  # -1.0: closed; flipped +1.0, the usual recipe's value
    assert open_forget_gates(cell) == 1 and torch.equal(cell.bias_ih[4:8] + cell.bias_hh[4:8], torch.ones(4))
    assert remedy_for({"code": "init.lstm-forget-gate-closed", "location": "m", "evidence": {}}) is not None


def _circles_run(make_act) -> float:
    """Radial classes: a linear model cannot fit them, one nonlinearity can."""
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    y = (x.norm(dim=1) > 1.2).long()
    model = nn.Sequential(nn.Linear(2, 32), make_act(), nn.Linear(32, 32), make_act(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_identity_leaky_relu_is_bent_like_its_twin_and_healthy_slopes_are_untouched():
    twin = _circles_run(lambda: nn.LeakyReLU(inplace=True))
    for bug_act in (lambda: nn.LeakyReLU(True), lambda: nn.RReLU(1.0, 1.0)):
        bug = _circles_run(bug_act)
        with _apply("activation.identity-activation", "model.1", model="model", negative_slope=1.0):
            fixed = _circles_run(bug_act)
        assert bug > 0.5 and fixed < 0.5 * bug, (bug, fixed, twin)
    for act in (lambda: nn.LeakyReLU(0.2, True), nn.ReLU, lambda: nn.LeakyReLU(-1.0)):
        plain = _circles_run(act)
        with _apply("activation.identity-activation", "model.1", model="model", negative_slope=1.0):
            assert _circles_run(act) == plain
