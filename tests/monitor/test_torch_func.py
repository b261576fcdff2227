"""torch.func transforms (grad, vmap, jacrev) run the watched model on wrapper tensors that have no
storage: no check may read them (each one that did was switched off with an internal error)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.func import functional_call, grad, jacrev, vmap

from nndoctor.monitor import Observer, Schedule


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    return x, x[:, 0] - 0.5 * x[:, 1]


def _grad_sgd() -> None:
    net, (x, y) = _net(), _data()
    params = {k: v.detach().clone() for k, v in net.named_parameters()}

    def loss_fn(p, xb, yb):
        return ((functional_call(net, p, (xb,)).squeeze(1) - yb) ** 2).mean()
    g = grad(loss_fn)
    for i in range(12):
        gr = g(params, x[i * 4:i * 4 + 16], y[i * 4:i * 4 + 16])
        params = {k: params[k] - 0.05 * gr[k] for k in params}
        loss_fn(params, x, y)


def _vmap_per_sample_grads() -> None:
    net, (x, y) = _net(), _data()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)

    def sample_loss(p, xs, ys):
        return ((functional_call(net, p, (xs.unsqueeze(0),)).squeeze() - ys) ** 2)
    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    for i in range(12):
        params = {k: v.detach() for k, v in net.named_parameters()}
        grads = per_sample(params, x[i * 4:i * 4 + 16], y[i * 4:i * 4 + 16])
        for name, p in net.named_parameters():
            p.grad = grads[name].clamp(-1, 1).mean(0)  # clipped per-sample gradients (DP-SGD style)
        opt.step()
        opt.zero_grad()


def _jacobian_penalty() -> None:
    net, (x, y) = _net(), _data()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for i in range(12):
        xb, yb = x[i * 4:i * 4 + 16], y[i * 4:i * 4 + 16]
        jac = vmap(jacrev(lambda xs: net(xs.unsqueeze(0)).squeeze()))(xb)
        loss = ((net(xb).squeeze(1) - yb) ** 2).mean() + 1e-3 * jac.pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _errors(run) -> list:
    with Observer(schedule=Schedule(dense=4, every=2)) as obs:
        run()
    return [(e.probe, e.error) for e in obs.internal_errors]


def test_grad_transform_training_raises_no_internal_error():
    assert _errors(_grad_sgd) == []


def test_vmap_per_sample_gradients_raise_no_internal_error():
    assert _errors(_vmap_per_sample_grads) == []


def test_jacobian_penalty_raises_no_internal_error():
    assert _errors(_jacobian_penalty) == []
