"""train-mode.functional-dropout-in-eval: F.dropout left at training=True while the model evaluates."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.eval_dropout import DropoutIgnoresEvalMode
from nndoctor.monitor import Observer
from nndoctor.monitor.sampling import Schedule

CODE = "train-mode.functional-dropout-in-eval"
_G = torch.Generator().manual_seed(0)
X, Y = torch.randn(256, 8, generator=_G), torch.randint(0, 3, (256,), generator=_G)
XV, YV = torch.randn(64, 8, generator=_G), torch.randint(0, 3, (64,), generator=_G)


def _codes(fn: Callable[[], None], every: int = 50) -> list:
    torch.manual_seed(0)
    with Observer(checks=[DropoutIgnoresEvalMode], schedule=Schedule(every=every)) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


class Net(nn.Module):
    """``style``: "default" F.dropout(h, 0.5); "hard" training=True; "mode" training=self.training;
    "module" nn.Dropout."""

    def __init__(self, style: str) -> None:
        super().__init__()
        self.fc1, self.fc2, self.drop, self.style = nn.Linear(8, 32), nn.Linear(32, 3), nn.Dropout(0.5), style

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        if self.style == "default":
            h = F.dropout(h, 0.5)
        elif self.style == "hard":
            h = F.dropout(h, p=0.3, training=True)
        elif self.style == "mode":
            h = F.dropout(h, 0.5, training=self.training)
        else:
            h = self.drop(h)
        return self.fc2(h)


def _train_eval(model: nn.Module, opt: torch.optim.Optimizer, epochs: int = 3, no_grad: bool = True) -> None:
    for _ in range(epochs):
        model.train()
        for i in range(0, 256, 32):
            loss = F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        if no_grad:
            with torch.no_grad():
                for j in range(0, 64, 16):
                    F.cross_entropy(model(XV[j:j + 16]), YV[j:j + 16])
        else:
            F.cross_entropy(model(XV), YV)


def test_default_training_argument_caught_in_light_evaluation_loops() -> None:
    def run() -> None:
        net = Net("default")
        _train_eval(net, torch.optim.Adam(net.parameters(), lr=1e-3), epochs=6)

    found = _codes(run)
    assert len(found) == 1, found
    f = found[0]
    assert f.location == "model" and "test_eval_dropout.py:" in f.evidence["site"]  # (named in _train_eval)
    assert f.evidence["p"] == 0.5 and f.evidence["grad_enabled"] is False
    assert f.severity.value == "warning"


def test_hard_coded_training_true_caught_on_sampled_steps_and_without_no_grad() -> None:
    def run() -> None:
        net = Net("hard")
        _train_eval(net, torch.optim.SGD(net.parameters(), lr=0.1), epochs=2, no_grad=False)

    found = _codes(run, every=1)  # every step sampled: the evaluation forward is seen by the heavy mode
    assert len(found) == 1 and found[0].evidence["p"] == 0.3 and found[0].evidence["grad_enabled"] is True


def test_helper_function_in_a_sequential_block_names_the_calling_module() -> None:
    def block(h: torch.Tensor) -> torch.Tensor:
        return F.dropout(F.relu(h), 0.4)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return block(self.lin(x))

    def run() -> None:
        model = nn.Sequential(Block(), nn.Linear(32, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _train_eval(model, opt, epochs=2)

    found = _codes(run)
    assert len(found) == 1 and found[0].location == "model.0", found


def test_healthy_lookalikes_stay_quiet() -> None:
    def run() -> None:
        for style in ("mode", "module"):
            net = Net(style)
            _train_eval(net, torch.optim.Adam(net.parameters(), lr=1e-3), epochs=2)
        # Monte-Carlo dropout on purpose: eval mode, then the dropout modules back in train mode
        mc = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
        opt = torch.optim.SGD(mc.parameters(), lr=0.1)
        _train_eval(mc, opt, epochs=1)
        mc.eval()
        mc[2].train()
        with torch.no_grad():
            torch.stack([mc(XV) for _ in range(4)]).mean(0)

    assert _codes(run) == []
    assert _codes(run, every=1) == []


def test_functional_dropout_while_training_in_train_mode_is_quiet() -> None:
    def run() -> None:
        net = Net("default")
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for i in range(0, 256, 32):  # never evaluated: dropout in training is what it is for
            loss = F.cross_entropy(net(X[i:i + 32]), Y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()

    assert _codes(run, every=1) == []


def test_torch_modules_that_call_dropout_themselves_stay_quiet() -> None:
    def run() -> None:
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3, batch_first=True)
        model = nn.Sequential(layer, nn.Flatten(), nn.Linear(8 * 4, 3))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        xs = X.reshape(64, 4, 8)
        for i in range(0, 64, 16):
            loss = F.cross_entropy(model(xs[i:i + 16]), Y[i:i + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            model(xs)

    assert _codes(run) == [] and _codes(run, every=1) == []
