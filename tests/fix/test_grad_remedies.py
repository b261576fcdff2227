"""The remedy of nndoctor.fix.grad_remedies: a gradient path cut by ``.detach()`` or by
``torch.no_grad()`` around part of the training forward is kept; each injected bug trains like
its fixed twin, healthy code (and an evaluation under no_grad) is untouched."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.remedies import remedy_for

_FILE = os.path.basename(__file__)


class _Net(nn.Module):
    def __init__(self, bug: str = "") -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 16), nn.Tanh())
        self.head = nn.Linear(16, 2)
        self.bug = bug

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bug == "no_grad":
            with torch.no_grad():
                h = self.encoder(x)              # the bug: the encoder never learns
        else:
            h = self.encoder(x)
        return self.head(h)


def _cut(z: torch.Tensor) -> torch.Tensor:
    return z.detach()  # the bug: the loss is cut from the model


def _fit(bug: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The trained parameters, and an evaluation made under no_grad in eval mode."""
    torch.manual_seed(0)
    x = torch.randn(64, 6)
    y = (x[:, 0] * x[:, 1] > 0).long()
    model = _Net(bug if bug == "no_grad" else "")
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(20):
        out = model(x)
        loss = F.cross_entropy(_cut(out) if bug == "detach" else out, y)
        opt.zero_grad()
        if loss.requires_grad:
            loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        evaluation = model(x)
    return torch.cat([p.detach().flatten() for p in model.parameters()]), evaluation


def test_detach_at_the_named_line_is_removed_like_the_twin():
    site = f"{_FILE}:{_cut.__code__.co_firstlineno + 1}"
    twin, bug = _fit(), _fit("detach")
    finding = {"cuts": [{"op": ".detach()", "site": site}], "no_grad_forward": ""}
    with _apply("grad-flow.loss-detached", "opt", **finding):
        fixed = _fit("detach")
        healthy = _fit()
        elsewhere = torch.ones(3, requires_grad=True) * 2
        assert elsewhere.detach().grad_fn is None            # .detach() on another line still detaches
    assert torch.equal(fixed[0], twin[0]) and torch.equal(healthy[0], twin[0]) and not torch.equal(bug[0], twin[0])


def test_encoder_under_no_grad_in_training_learns_like_the_twin():
    twin, bug = _fit(), _fit("no_grad")
    finding = {"module_list": ["model.encoder"], "no_grad_modules": ["model.encoder", "model.encoder.0"],
               "cuts": []}
    with _apply("grad-flow.no-gradient", "model.encoder", **finding):
        fixed = _fit("no_grad")
        healthy = _fit()
    assert torch.equal(fixed[0], twin[0]) and torch.equal(healthy[0], twin[0]) and not torch.equal(bug[0], twin[0])
    assert not fixed[1].requires_grad                         # the eval pass stays without a graph


def test_no_remedy_without_a_measured_cut():
    f = {"code": "grad-flow.no-gradient", "evidence": {"module_list": ["model.encoder"], "cuts": [],
                                                       "no_grad_modules": []}}
    assert remedy_for(f) is None


class _BagNet(nn.Module):
    """An encoder whose output is post-processed inside the no_grad block (tanh, mean)."""

    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 16)
        self.out = nn.Linear(16, 2)
        self.bug = bug

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bug:
            with torch.no_grad():
                h = torch.tanh(self.enc(x)).mean(1)
        else:
            h = torch.tanh(self.enc(x)).mean(1)
        return self.out(h)


def _fit_bag(bug: bool) -> tuple[torch.Tensor, bool]:
    torch.manual_seed(0)
    x = torch.randn(48, 5, 6)
    y = (x[:, :, 0].sum(1) > 0).long()
    model = _BagNet(bug)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = torch.is_grad_enabled()
    model.eval()
    with torch.no_grad():                                  # an evaluation: the mode is restored
        model(x)
        inside = torch.is_grad_enabled()
    return torch.cat([p.detach().flatten() for p in model.parameters()]), after and not inside


def test_ops_after_the_module_inside_the_no_grad_block_keep_the_graph_like_the_twin():
    twin, bug = _fit_bag(False), _fit_bag(True)
    with _apply("grad-flow.no-gradient", "model.enc", module_list=["model.enc"], no_grad_modules=["model.enc"],
                cuts=[]):
        fixed = _fit_bag(True)
        healthy = _fit_bag(False)
    assert torch.equal(fixed[0], twin[0]) and torch.equal(healthy[0], twin[0]) and not torch.equal(bug[0], twin[0])
    assert fixed[1] and healthy[1]
