"""grad-flow.parameter-created-in-forward: a Parameter / layer built inside forward() is caught in two
styles; ordinary models, parametrizations (weight/spectral norm) and rebuilt models stay quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.param_recreated import ParameterCreatedInForward

CODE = "grad-flow.parameter-created-in-forward"


def _batches(n: int):
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        x = torch.randn(16, 6, generator=g)
        yield x, (x[:, 0] > 0).long()


class GateInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.gate = nn.Parameter(torch.ones(16))
        return self.fc2(torch.relu(self.fc1(x)) * self.gate)


class ProjInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(6, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.head = nn.Linear(16, 2)  # meant for __init__
        return self.head(torch.tanh(self.fc1(x)))


def _run(make, opt_cls=torch.optim.Adam, steps: int = 12, rebuild: bool = False) -> list:
    def main():
        model = make()
        opt = opt_cls(model.parameters(), lr=1e-2)
        for i, (xb, yb) in enumerate(_batches(steps)):
            if rebuild and i % 4 == 0:
                model = make()
                opt = opt_cls(model.parameters(), lr=1e-2)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    with Observer(checks=[ParameterCreatedInForward]) as obs:
        main()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def test_parameter_created_in_forward_is_caught():
    found = _run(GateInForward)
    assert [f.code for f in found] == [CODE]
    assert found[0].evidence["param"] == "gate" and "__init__" in found[0].fixes[0]


def test_layer_created_in_forward_with_sgd_is_caught():
    found = _run(ProjInForward, torch.optim.SGD)
    assert {f.evidence["param"] for f in found} == {"head.weight", "head.bias"}


def test_ordinary_parametrized_and_rebuilt_models_are_quiet():
    def weight_normed() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(6, 16)), nn.ReLU(),
                             nn.utils.spectral_norm(nn.Linear(16, 2)))

    def plain() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))

    assert _run(weight_normed) == []
    assert _run(plain, torch.optim.SGD, rebuild=True) == []


def test_functional_call_with_fast_weights_is_quiet():
    # MAML: an inner gradient step gives plain (non-leaf) tensors that functional_call swaps in for
    # one forward; the module's own Parameters come back afterwards and are in the optimizer
    from torch.func import functional_call

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[ParameterCreatedInForward]) as obs:
        for _ in range(12):
            opt.zero_grad()
            for _ in range(4):  # tasks: each adapts from the shared weights, then is scored
                amp, phase = torch.rand(1) * 4 + 0.1, torch.rand(1) * 3
                x = torch.rand(20, 1) * 10 - 5
                y = amp * torch.sin(x + phase)
                params = dict(model.named_parameters())
                inner = F.mse_loss(functional_call(model, params, (x[:10],)), y[:10])
                grads = torch.autograd.grad(inner, list(params.values()), create_graph=True)
                fast = {k: v - 0.01 * g for (k, v), g in zip(params.items(), grads)}
                F.mse_loss(functional_call(model, fast, (x[10:],)), y[10:]).backward()
            copies = {k: v.detach().requires_grad_() for k, v in model.named_parameters()}
            functional_call(model, copies, (x,)).sum()  # a stateless call with leaf copies
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    assert [f.code for f in obs.findings if f.code == CODE] == []
