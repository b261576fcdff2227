"""grad-flow.unregistered-layers: layers in a Python list/dict are never trained; ModuleList stays quiet."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.unregistered import UnregisteredLayers
from nndoctor.monitor import Observer


class ListMLP(nn.Module):
    def __init__(self, module_list: bool) -> None:
        super().__init__()
        layers = [nn.Linear(6, 8), nn.Linear(8, 8)]
        self.hidden = nn.ModuleList(layers) if module_list else layers
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


class DictNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.parts = {"a": nn.Linear(6, 8)}
        self.frozen = [nn.Linear(6, 8).requires_grad_(False)]  # kept out on purpose, frozen
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.parts["a"](x), self.frozen[0](x)], 1))


def _run(model: nn.Module, adam: bool = True) -> list:
    torch.manual_seed(0)
    opt = (torch.optim.Adam if adam else torch.optim.SGD)(model.parameters(), lr=1e-2)
    with Observer(checks=[UnregisteredLayers]) as obs:
        for _ in range(4):
            loss = F.cross_entropy(model(torch.randn(12, 6)), torch.randint(0, 2, (12,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == "grad-flow.unregistered-layers"]


def test_layers_in_python_list_or_dict_are_caught():
    hits = _run(ListMLP(module_list=False))
    assert hits and hits[0].evidence["layers"] == 2 and hits[0].first_step == 1
    hits = _run(DictNet(), adam=False)
    assert hits and hits[0].evidence["layers"] == 1  # the frozen helper is not counted


def test_module_list_and_params_handed_to_the_optimizer_stay_quiet():
    assert not _run(ListMLP(module_list=True))
    model = ListMLP(module_list=False)
    extra = [p for layer in model.hidden for p in layer.parameters()]
    opt = torch.optim.SGD(list(model.parameters()) + extra, lr=1e-2)
    with Observer(checks=[UnregisteredLayers]) as obs:
        for _ in range(3):
            loss = F.cross_entropy(model(torch.randn(12, 6)), torch.randint(0, 2, (12,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not [f for f in obs.findings if f.code == "grad-flow.unregistered-layers"]


def _rebuilt_each_epoch(collect: bool) -> list:
    """A model rebuilt at each epoch while the old one is freed (by refcount, or later by gc)."""
    import gc

    torch.manual_seed(0)
    model = ListMLP(module_list=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    keep = [] if collect else [model]  # a lingering reference: the old model stays alive a while
    with Observer(checks=[UnregisteredLayers]) as obs:
        for _ in range(3):
            model = ListMLP(module_list=True)
            if collect:
                gc.collect()
            else:
                keep.append(model)
            for _ in range(3):
                loss = F.cross_entropy(model(torch.randn(12, 6)), torch.randint(0, 2, (12,)))
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == "grad-flow.unregistered-layers"]


def test_a_model_rebuilt_each_epoch_is_not_mistaken_for_unregistered_layers():
    # its layers are registered in the new model (the fault is the optimizer holding the old one's
    # parameters, another check's finding); the verdict must not depend on when the old model is freed
    assert not _rebuilt_each_epoch(collect=True)
    assert not _rebuilt_each_epoch(collect=False)


# ------------------------------------------------------------------ weights without a layer module
class ParamListNet(nn.Module):
    """Hidden weights as nn.Parameter tensors used with ``x @ w``: kept in a plain list, in an
    nn.ParameterList, or in a plain list that is then handed to the optimizer by hand."""

    def __init__(self, registered: bool) -> None:
        super().__init__()
        ws = [nn.Parameter(torch.randn(6, 8) * 0.4), nn.Parameter(torch.randn(8, 8) * 0.35)]
        self.ws = nn.ParameterList(ws) if registered else ws
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.ws:
            x = torch.tanh(x @ w)
        return self.out(x)


def _run_params(model: nn.Module, extra: list | None = None, by_hand: bool = False, steps: int = 12) -> list:
    torch.manual_seed(0)
    opt = torch.optim.Adam(list(model.parameters()) + (extra or []), lr=1e-2)
    with Observer(checks=[UnregisteredLayers]) as obs:
        for _ in range(steps):
            loss = F.cross_entropy(model(torch.randn(12, 6)), torch.randint(0, 2, (12,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if by_hand:
                with torch.no_grad():
                    for w in model.ws:
                        w -= 0.01 * w.grad
                        w.grad = None
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == "grad-flow.unregistered-layers"]


def test_parameters_in_a_plain_list_are_caught():
    hits = _run_params(ParamListNet(registered=False))
    assert hits and hits[0].evidence["layers"] == 2 and hits[0].evidence["unregistered_params"] == 6 * 8 + 8 * 8
    assert "nn.ParameterList" in hits[0].message


def test_parameter_list_handed_over_or_updated_by_hand_stays_quiet():
    assert not _run_params(ParamListNet(registered=True))
    model = ParamListNet(registered=False)
    assert not _run_params(model, extra=list(model.ws))
    assert not _run_params(ParamListNet(registered=False), by_hand=True)


def test_a_learnable_scale_outside_the_model_in_the_optimizer_stays_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    log_temp = nn.Parameter(torch.zeros(()))
    opt = torch.optim.SGD(list(model.parameters()) + [log_temp], lr=0.05)
    with Observer(checks=[UnregisteredLayers]) as obs:
        for _ in range(12):
            loss = F.cross_entropy(model(torch.randn(12, 6)) / log_temp.exp(), torch.randint(0, 2, (12,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not [f for f in obs.findings if f.code == "grad-flow.unregistered-layers"]
