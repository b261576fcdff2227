"""activation: layers written without a module (``act(x @ w + b)``, ``F.linear``, weights on the root
module or in a plain list) are judged like nn.Linear layers; their output activation is not."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks._loose_layers import weight_of
from nndoctor.monitor.checks.activations import ActivationHealth


def _data(n=512, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, x[:, :4].argmax(dim=1)


def _weights(sizes, bias, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out.append(nn.Parameter(torch.randn(a, b, generator=g) * scale * (2 / a) ** 0.5))
        out.append(nn.Parameter(torch.full((b,), bias)))
    return out


def _tensor_forward(params, x, act, out_act=None):
    for k in range(0, len(params) - 2, 2):
        x = act(x @ params[k] + params[k + 1])
    y = x @ params[-2] + params[-1]
    return out_act(y) if out_act else y


class _RootParams(nn.Module):
    """Weights as nn.Parameter attributes of the model itself, used with F.linear in forward."""

    def __init__(self, sizes, bias, scale=1.0):
        super().__init__()
        for i, p in enumerate(_weights(sizes, bias, scale)):
            setattr(self, f"p{i}", nn.Parameter(p.detach().t().contiguous() if p.dim() == 2 else p.detach()))
        self.n = len(sizes) - 1
        self.act = torch.tanh

    def forward(self, x):
        for i in range(self.n - 1):
            x = self.act(F.linear(x, getattr(self, f"p{2 * i}"), getattr(self, f"p{2 * i + 1}")))
        return F.linear(x, getattr(self, f"p{2 * self.n - 2}"), getattr(self, f"p{2 * self.n - 1}"))


def _train(forward, params, x, y, steps=30, batch=64, loss_fn=F.cross_entropy, opt=None):
    opt = opt or torch.optim.Adam(params, lr=1e-3)
    with Observer(checks=[ActivationHealth]) as obs:
        for i in range(steps):
            j = (i * batch) % len(x)
            opt.zero_grad()
            loss_fn(forward(x[j:j + batch]), y[j:j + batch]).backward()
            opt.step()
    return obs


def _codes(obs):
    return [f.code for f in obs.findings if f.severity.value != "info"]


def test_weight_of_finds_the_matrix_behind_bias_scale_and_transpose():
    w = nn.Parameter(torch.randn(8, 4))
    b = nn.Parameter(torch.zeros(4))
    x = torch.randn(5, 8)
    assert weight_of(x @ w + b) is w
    assert weight_of((x @ w) * 0.5 - b) is w
    assert weight_of(F.linear(x, w.t(), b)) is w
    assert weight_of(x.unsqueeze(0) @ w) is w
    assert weight_of(torch.tanh(x @ w) + b) is None          # through another activation: not this layer
    assert weight_of(x * 2) is None


def test_dead_relu_layer_of_plain_weight_tensors_is_reported():
    x, y = _data()
    params = _weights([16, 32, 32, 4], bias=-8.0)                # every hidden unit silent from the start
    obs = _train(lambda t: _tensor_forward(params, t, F.relu), params, x, y)
    dead = [f for f in obs.findings if f.code == "activation.dead-relu"]
    assert dead and dead[0].severity.value == "warning"
    assert dead[0].location.endswith("param_groups[0][0]") and dead[0].evidence["units"] == 32


def test_saturated_tanh_of_weights_on_the_root_module_is_reported():
    x, y = _data()
    model = _RootParams([16, 64, 64, 4], bias=0.0, scale=6.0)  # unit-variance-times-6 weights: |pre| >> 3
    obs = _train(model, model.parameters(), x, y)
    assert "activation.saturated" in _codes(obs)


@pytest.mark.parametrize("style", ["tensors", "root_module"])
def test_healthy_module_less_layers_are_quiet(style):
    x, y = _data()
    if style == "tensors":
        params = _weights([16, 64, 64, 4], bias=0.0)
        obs = _train(lambda t: _tensor_forward(params, t, torch.tanh), params, x, y)
    else:
        model = _RootParams([16, 64, 64, 4], bias=0.0)
        obs = _train(model, model.parameters(), x, y)
    assert _codes(obs) == []


def test_an_output_sigmoid_of_plain_weights_may_be_confident():
    # the last layer's sigmoid feeds the loss, not another weighted op: an output, never judged
    x, _ = _data()
    target = (x[:, :1] > 0).float()
    params = _weights([16, 32, 1], bias=0.0)
    with torch.no_grad():
        params[-2].mul_(40.0)                                   # a very confident output layer
    obs = _train(lambda t: _tensor_forward(params, t, F.relu, torch.sigmoid), params, x, target,
                 loss_fn=F.binary_cross_entropy)
    assert "activation.saturated" not in _codes(obs)


def test_an_activation_outside_any_layer_is_ignored():
    # a sigmoid on the inputs (a squashing transform, no weight behind it) is not a layer
    x, y = _data()
    params = _weights([16, 32, 4], bias=0.0)
    obs = _train(lambda t: _tensor_forward(params, torch.sigmoid(t * 50), F.relu), params, x, y)
    assert _codes(obs) == []
