"""Scripts that train with torch.func (functional_call + grad, no optimizer) count their steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call, grad, grad_and_value, vmap

from nndoctor.monitor import Observer


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 10, generator=g)
    y = X @ torch.randn(10, generator=g) + 0.1 * torch.randn(512, generator=g)
    return X, y


def _train(style: str, lr: float, steps: int = 60):
    X, y = _data()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    params = {k: v.detach().clone() for k, v in net.named_parameters()}

    def loss_fn(p, xb, yb):
        return ((functional_call(net, p, (xb,)).squeeze(1) - yb) ** 2).mean()

    with Observer() as obs:
        for i in range(steps):
            j = (i * 32) % 480
            xb, yb = X[j:j + 32], y[j:j + 32]
            if style == "grad-dict":  # f28's style
                g = grad(loss_fn)(params, xb, yb)
            elif style == "grad-and-value":
                g, _ = grad_and_value(loss_fn)(params, xb, yb)
            else:  # the weights as a tuple, argnums over them
                names = list(params)

                def tuple_loss(*ws, xb=xb, yb=yb, names=names):
                    return loss_fn(dict(zip(names, ws)), xb, yb)

                gs = grad(tuple_loss, argnums=tuple(range(len(names))))(*params.values())
                g = dict(zip(names, gs))
            params = {k: params[k] - lr * g[k] for k in params}
    return obs


@pytest.mark.parametrize("style", ["grad-dict", "grad-and-value", "grad-argnums"])
def test_torch_func_grad_steps_are_counted_and_a_healthy_run_is_quiet(style):
    obs = _train(style, lr=0.05)
    assert obs.state.backward_calls == 60  # one step per torch.func.grad call (was 0: every finding at step 1)
    warned = [(f.code, f.message) for f in obs.report().at_least("warning")]
    assert not warned, warned  # no "step never called": the weights are the script's dict, not net's


def test_a_diverging_torch_func_run_is_found_at_its_step():
    obs = _train("grad-dict", lr=5.0)
    found = [f for f in obs.report().at_least("warning") if f.category in ("numerics", "loss-curve", "lr")]
    assert found and min(f.first_step or 0 for f in found) > 1, [(f.code, f.first_step) for f in obs.findings]


def test_per_example_gradients_under_vmap_are_not_steps():
    X, y = _data()
    net = nn.Linear(10, 1)
    params = {k: v.detach().clone() for k, v in net.named_parameters()}

    def one(p, x, t):
        return ((functional_call(net, p, (x.unsqueeze(0),)).squeeze() - t) ** 2)

    with Observer() as obs:
        for _ in range(5):
            per = vmap(grad(one), in_dims=(None, 0, 0))(params, X[:32], y[:32])
            params = {k: params[k] - 0.01 * per[k].mean(0) for k in params}
    assert obs.state.backward_calls == 0
