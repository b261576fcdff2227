"""A softmax used as a hidden activation: the named nn.Softmax passes relu of its input in the
re-run, and the net trains exactly like its twin written with ReLU; other softmaxes are kept."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.activation_remedies import matches


class _Net(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(16, 32), nn.Linear(32, 32), nn.Linear(32, 4)
        self.act = act                                           # one module used twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


def _model(style: str, act: type[nn.Module]) -> nn.Module:
    make = (lambda: nn.Softmax(dim=1)) if act is nn.Softmax else act
    if style == "subclass":
        return _Net(make())
    return nn.Sequential(nn.Linear(16, 32), make(), nn.Linear(32, 32), make(), nn.Linear(32, 4))


def _train(style: str, act: type[nn.Module]) -> list[float]:
    torch.manual_seed(0)
    x = torch.randn(128, 16)
    y = (x[:, :4]).argmax(1)
    model = _model(style, act)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("style,where", [("sequential", ("model.1", "model.3")), ("subclass", ("model.act",))])
def test_hidden_softmax_becomes_relu_and_trains_exactly_like_the_relu_twin(style: str, where: tuple[str, ...]) -> None:
    """One finding per layer fed by a softmax (each names its softmax); all are applied together."""
    twin, bug = _train(style, nn.ReLU), _train(style, nn.Softmax)
    with contextlib.ExitStack() as stack:
        for at in where:
            stack.enter_context(_apply("activation.softmax-as-hidden-activation", "model.2", softmax_at=at))
        fixed = _train(style, nn.Softmax)
        healthy = _train(style, nn.ReLU)
    assert bug[-1] > twin[-1] + 0.3
    assert fixed == twin and healthy == twin
    assert _train(style, nn.Softmax) == bug                     # gone with its stack


def test_an_output_softmax_and_attention_are_kept() -> None:
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, batch_first=True)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    x = torch.randn(4, 5, 8)
    plain = (attn(x, x, x)[1], model(x[:, 0]))
    with _apply("activation.softmax-as-hidden-activation", "model.2", softmax_at="model.1"):
        assert torch.equal(attn(x, x, x)[1], plain[0]) and torch.equal(model(x[:, 0]), plain[1])
    assert matches("model.1", "1") and matches("net.body.act", "body.act")
    assert not matches("model.1", "11") and not matches("model.1", "")


def _bn_stack(zero: bool, style: str) -> list[float]:
    torch.manual_seed(0)
    x = torch.randn(128, 16)
    y = x[:, :4].argmax(1)
    if style == "sequential":
        model: nn.Module = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                         nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    else:
        model = _Net(nn.ReLU())
        model.norm = nn.LayerNorm(32)
        model.forward = lambda t: model.out(model.act(model.norm(model.fc2(model.act(model.fc1(t))))))  # type: ignore[method-assign]
    if zero:
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)):
                nn.init.zeros_(m.weight)                         # the bug: gamma 0 in a plain stack
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("style,layers", [("sequential", ["model.1", "model.4"]), ("subclass", ["model.norm"])])
def test_zero_norm_weights_start_at_one_and_train_exactly_like_the_twin(style: str, layers: list[str]) -> None:
    twin, bug = _bn_stack(False, style), _bn_stack(True, style)
    with _apply("init.zero-norm-weight", layers[0], zero_weight_layers=layers):
        fixed, healthy = _bn_stack(True, style), _bn_stack(False, style)
    assert bug[-1] > twin[-1] + 0.3
    assert fixed == twin and healthy == twin
