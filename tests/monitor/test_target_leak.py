"""data.target-in-inputs: the label among the features, or token targets equal to the inputs (no shift)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.target_leak import TargetInInputs

CODE = "data.target-in-inputs"
_G = torch.Generator().manual_seed(0)
X = torch.randn(512, 6, generator=_G)
Y_CLS = (X[:, 0] + X[:, 1] * X[:, 2] > 0).long()
Y_REG = X[:, 0] - 2 * X[:, 3] + 0.3 * torch.randn(512, generator=_G)
V, T = 24, 12
SEQ = torch.randint(1, V, (256, T + 1), generator=_G)


def _findings(fn: Callable[[], None]) -> list:
    torch.manual_seed(0)
    with Observer(checks=[TargetInInputs]) as obs:
        fn()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE]


def _fit(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
         loss_fn: Callable[..., torch.Tensor], steps: int = 24, bs: int = 32) -> None:
    for s in range(steps):
        i = (s * bs) % len(x)
        loss = loss_fn(model(x[i:i + bs]), y[i:i + bs])
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_label_column_left_in_the_features_sequential_adam() -> None:
    xl = torch.cat([X, Y_CLS[:, None].float()], 1)  # the label as the last column

    def run() -> None:
        model = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 2))
        _fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), xl, Y_CLS, F.cross_entropy)

    found = _findings(run)
    assert len(found) == 1 and found[0].evidence["columns"] == [6], found
    assert found[0].severity is Severity.WARNING and found[0].location == "model"


def test_standardised_target_copy_in_a_module_regression_sgd() -> None:
    z = (Y_REG - Y_REG.mean()) / Y_REG.std()
    xl = torch.cat([X[:, :2], z[:, None], X[:, 2:]], 1)

    class Reg(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(7, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    def run() -> None:
        net = Reg()
        crit = nn.MSELoss()
        _fit(net, torch.optim.SGD(net.parameters(), lr=0.05), xl, Y_REG[:, None], crit)

    found = _findings(run)
    assert len(found) == 1 and found[0].evidence["columns"] == [2], found


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, 32)
        self.rnn = nn.GRU(32, 32, batch_first=True)
        self.head = nn.Linear(32, V)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(x))[0])


def _lm(targets: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], flat: bool, steps: int = 60) -> None:
    model = TinyLM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for s in range(steps):
        batch = SEQ[(s * 32) % 256:(s * 32) % 256 + 32]
        x, y = targets(batch)
        logits = model(x)
        if flat:
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        else:
            loss = nn.CrossEntropyLoss()(logits.transpose(1, 2), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_language_model_without_the_shift_both_loss_layouts() -> None:
    for flat in (True, False):
        found = _findings(lambda flat=flat: _lm(lambda b: (b[:, :-1], b[:, :-1]), flat))
        assert len(found) == 1 and found[0].severity is Severity.WARNING, found
        assert found[0].evidence["share_equal"] == 1.0


def test_healthy_sequence_models_stay_quiet() -> None:
    def masked(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(int(b[0, 0]))
        m = torch.rand(b.shape, generator=g) < 0.15
        return b.masked_fill(m, 0), b.masked_fill(~m, -100)

    def denoise(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(int(b[0, 0]))
        noisy = torch.where(torch.rand(b.shape, generator=g) < 0.3, torch.randint(1, V, b.shape, generator=g), b)
        return noisy, b

    for prep in (lambda b: (b[:, :-1], b[:, 1:]), masked, denoise):
        assert _findings(lambda prep=prep: _lm(prep, flat=True, steps=20)) == []


def test_healthy_tabular_and_autoencoders_stay_quiet() -> None:
    line_x = torch.linspace(-1, 1, 256)[:, None]

    def run() -> None:
        model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
        _fit(model, torch.optim.Adam(model.parameters(), lr=1e-2), X, Y_CLS, F.cross_entropy)
        line = nn.Linear(1, 1)  # a one-feature toy regression: y = 2x + 1 exactly
        _fit(line, torch.optim.SGD(line.parameters(), lr=0.1), line_x, 2 * line_x + 1, F.mse_loss)
        ae = nn.Sequential(nn.Linear(6, 3), nn.Tanh(), nn.Linear(3, 6))
        _fit(ae, torch.optim.Adam(ae.parameters(), lr=1e-2), X, X, F.mse_loss)
        bce_ae = nn.Sequential(nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 6))
        xs = torch.sigmoid(X)
        _fit(bce_ae, torch.optim.Adam(bce_ae.parameters(), lr=1e-2), xs, xs, F.binary_cross_entropy_with_logits)

    assert _findings(run) == []


def test_labels_handed_to_a_model_that_computes_its_own_loss_are_no_leak() -> None:
    class WithLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(V, 16), nn.Linear(16, V)

        def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, labels: torch.Tensor | None = None):
            logits = self.head(self.emb(x))
            y = y if y is not None else labels
            return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    def run() -> None:
        model = WithLoss()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for s in range(30):
            b = SEQ[(s * 32) % 256:(s * 32) % 256 + 32]
            loss = model(b[:, :-1], b[:, 1:]) if s % 2 else model(b[:, :-1], labels=b[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()

    assert _findings(run) == []
