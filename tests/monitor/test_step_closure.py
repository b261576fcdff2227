"""``optimizer.step(closure)``: the forward and loss run inside ``step``, where the optimizer's own
arithmetic is not watched; the function mode must still see the closure's loss inputs."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.loss_input import ProbabilitiesIntoLogitLoss, SoftmaxDim
from nndoctor.monitor import Observer, Schedule

CHECKS = [ProbabilitiesIntoLogitLoss, SoftmaxDim]


def _data(n: int = 96, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return x, (x[:, :classes].argmax(1) if classes > 1 else (x[:, 0] > 0).float())


def _codes(run) -> set[str]:
    with Observer(checks=CHECKS, schedule=Schedule(dense=4, every=10)) as obs:
        run()
    return {f.code for f in obs.findings}


def _adam_positional(softmax: bool):
    def run():
        torch.manual_seed(0)
        x, y = _data()
        layers = [nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)] + ([nn.Softmax(dim=1)] if softmax else [])
        model = nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        crit = nn.CrossEntropyLoss()
        for i in range(12):
            xb, yb = x[(i * 16) % 96:][:16], y[(i * 16) % 96:][:16]

            def closure(xb=xb, yb=yb):
                opt.zero_grad()
                loss = crit(model(xb), yb)
                loss.backward()
                return loss
            opt.step(closure)
    return run


def _lbfgs_keyword(dim: int):
    def run():
        torch.manual_seed(0)
        x, y = _data()
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=3)
        for _ in range(6):
            def closure():
                opt.zero_grad()
                loss = F.nll_loss(F.log_softmax(model(x), dim=dim), y)
                loss.backward()
                return loss
            opt.step(closure=closure)
    return run


class _Trainer:
    """A closure bound as a method; a binary head and BCE-with-logits."""

    def __init__(self, squash: bool) -> None:
        torch.manual_seed(0)
        self.squash = squash
        self.model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.x, self.y = _data(classes=1)

    def _closure(self) -> torch.Tensor:
        self.opt.zero_grad()
        out = self.model(self.x).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(torch.sigmoid(out) if self.squash else out, self.y)
        loss.backward()
        return loss

    def fit(self) -> None:
        for _ in range(12):
            self.opt.step(self._closure)


def test_softmax_into_cross_entropy_inside_a_positional_closure_is_named():
    assert "loss-input.probabilities-into-logit-loss" in _codes(_adam_positional(True))
    assert not _codes(_adam_positional(False))


def test_log_softmax_over_the_batch_inside_an_lbfgs_keyword_closure_is_named():
    assert "loss-input.softmax-over-batch-dim" in _codes(_lbfgs_keyword(0))
    assert not _codes(_lbfgs_keyword(1))


def test_sigmoid_into_bce_with_logits_inside_a_method_closure_is_named():
    assert "loss-input.probabilities-into-logit-loss" in _codes(lambda: _Trainer(True).fit())
    assert not _codes(lambda: _Trainer(False).fit())


def test_closure_results_and_training_unchanged_under_the_observer():
    def train():
        torch.manual_seed(0)
        x, y = _data()
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
        returned = []
        for _ in range(5):
            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss
            returned.append(opt.step(closure).item())
        return model, returned

    plain, plain_losses = train()
    with Observer(schedule=Schedule(dense=4, every=10)):
        watched, watched_losses = train()
    assert plain_losses == watched_losses
    for a, b in zip(plain.state_dict().values(), watched.state_dict().values()):
        assert torch.equal(a, b)
