"""activation.softmax-as-hidden-activation: module and functional styles, and lookalikes that stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.softmax_hidden import SoftmaxHidden

CODE = "activation.softmax-as-hidden-activation"


def _data(n=256, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x[:, :4].argmax(dim=1)


def _run(model, opt, steps=12, batch=64):
    x, y = _data()
    with Observer(checks=[SoftmaxHidden]) as obs:
        for i in range(steps):
            j = (i * batch) % len(x)
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + batch]), y[j:j + batch]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == CODE]


class _Functional(nn.Module):
    """Subclass with torch.softmax in forward (the functional style)."""

    def __init__(self, sharp: float = 1.0):
        super().__init__()
        self.fc1, self.fc2, self.sharp = nn.Linear(16, 48), nn.Linear(48, 4), sharp

    def forward(self, x):
        return self.fc2(torch.softmax(self.sharp * self.fc1(x), dim=-1))


class _Attention(nn.Module):
    """Softmax weights multiply values (attention), then a Linear reads the pooled values."""

    def __init__(self):
        super().__init__()
        self.score, self.value, self.out = nn.Linear(2, 1), nn.Linear(2, 32), nn.Linear(32, 4)

    def forward(self, x):
        tokens = x.view(x.shape[0], 8, 2)
        w = F.softmax(self.score(tokens).squeeze(-1), dim=-1)          # (N, 8)
        pooled = (w.unsqueeze(-1) * self.value(tokens)).sum(1)
        return self.out(pooled)


def test_sequential_softmax_modules_between_layers_warn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Softmax(dim=1), nn.Linear(64, 64), nn.Softmax(dim=1),
                          nn.Linear(64, 4))
    found = _run(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    assert found and found[0].severity.value == "warning"
    assert found[0].evidence["width"] == 64 and found[0].first_step <= 5


def test_functional_softmax_in_subclass_warns_with_adam():
    torch.manual_seed(0)
    model = _Functional()
    found = _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert found and found[0].location.endswith("fc2")


def test_relu_network_stays_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    assert not _run(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_attention_softmax_into_matmul_stays_quiet():
    torch.manual_seed(0)
    model = _Attention()
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_sharp_softmax_gate_into_linear_stays_quiet():
    """Near one-hot rows (a routing / Gumbel-like gate) are not a squashed signal."""
    torch.manual_seed(0)
    model = _Functional(sharp=50.0)
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_softmax_output_into_a_loss_stays_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(dim=1))
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[SoftmaxHidden]) as obs:
        for _ in range(10):
            opt.zero_grad()
            F.nll_loss(torch.log(model(x[:64]) + 1e-8), y[:64]).backward()
            opt.step()
    assert not [f for f in obs.findings if f.code == CODE]


# ------------------------------------------------------------------ layers written without modules
def _tensor_run(hidden_act, steps=12, batch=64, attention=False):
    """A 16-48-48-4 network on weight tensors: act(x @ W1 + b1) -> act(h @ W2 + b2) -> h @ W3."""
    g = torch.Generator().manual_seed(0)
    ws = [(torch.randn(a, b, generator=g) / a ** 0.5).requires_grad_() for a, b in ((16, 48), (48, 48), (48, 4))]
    bs = [torch.zeros(b, requires_grad=True) for b in (48, 48, 4)]
    opt = torch.optim.SGD(ws + bs, lr=0.1)
    x, y = _data()

    def forward(t):
        h = hidden_act(t @ ws[0] + bs[0])
        if attention:  # self-attention over the 48 features seen as 6 tokens of 8: softmax(q k^T) @ v
            tok = h.view(-1, 6, 8)
            h = (torch.softmax(tok @ tok.transpose(1, 2), dim=-1) @ tok).reshape(-1, 48)
        h = hidden_act(F.linear(h, ws[1].t(), bs[1]))
        return h @ ws[2] + bs[2]

    with Observer(checks=[SoftmaxHidden]) as obs:
        for i in range(steps):
            j = (i * batch) % len(x)
            opt.zero_grad()
            F.cross_entropy(forward(x[j:j + batch]), y[j:j + batch]).backward()
            opt.step()
    return [f for f in obs.findings if f.code == CODE]


def test_softmax_between_weight_tensors_warns():
    found = _tensor_run(lambda t: torch.softmax(t, dim=1))
    assert found and found[0].evidence["width"] == 48
    assert "param_groups" in found[0].location              # named by the weight that reads the softmax


def test_weight_tensor_network_with_relu_or_attention_stays_quiet():
    assert _tensor_run(torch.relu) == []
    assert _tensor_run(torch.relu, attention=True) == []


def test_a_linear_module_is_reported_once_not_again_as_its_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Softmax(dim=1), nn.Linear(64, 4))
    found = _run(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert [f.location for f in found] == ["model.2"]


def test_softmax_over_unit_variance_pre_activations_warns_whatever_the_init_scale():
    # weights scaled up so the pre-activations have std ~1 (not nn.Linear's default ~0.6): the rows'
    # maximum is ~6.5x uniform over 64 units, still a squashed hidden signal
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 64), nn.Softmax(dim=1), nn.Linear(64, 4))
    with torch.no_grad():
        model[0].weight.normal_(0, 16 ** -0.5)
    assert _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_a_selective_softmax_into_a_linear_stays_quiet():
    # rows whose maximum averages well above 0.3 select a few of the inputs: a gate, not an activation
    torch.manual_seed(0)
    model = _Functional(sharp=8.0)
    assert not _run(model, torch.optim.Adam(model.parameters(), lr=1e-3))
