"""The guide's first models, smaller problems, synthetic data, baselines and known results."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.findings import Severity
from nndoctor.start import baseline, input_kind, simplify, synthetic_like
from nndoctor.start.baseline import LeNet, MultiInput, OneLayerLSTM, OneLayerMLP
from nndoctor.start.compare import compare_baselines
from nndoctor.start.known_results import known_results, matching


@pytest.mark.parametrize("x, kind, cls", [
    (torch.randn(4, 3, 16, 16), "images", LeNet),
    (torch.randn(4, 28, 28), "images", LeNet),
    (torch.randn(4, 20, 3), "sequences", OneLayerLSTM),
    (torch.randint(0, 50, (4, 12)), "tokens", OneLayerLSTM),
    (torch.randn(4, 30), "tabular", OneLayerMLP),
])
def test_baseline_family_follows_the_input_type(x, kind, cls):
    assert input_kind(x) == kind
    model = baseline(x, 5)
    assert isinstance(model, cls)
    assert model(x).shape == (4, 5)


def test_several_inputs_get_one_encoder_each_and_the_output_shape_is_kept():
    xs = (torch.randn(4, 1, 8, 8), torch.randn(4, 6))
    assert input_kind(xs) == "several"
    model = baseline(xs, (2, 3))
    assert isinstance(model.model, MultiInput)
    assert model(*xs).shape == (4, 2, 3)
    assert baseline(torch.randn(4, 6), ())(torch.randn(4, 6)).shape == (4,)


def test_baseline_uses_he_init_is_deterministic_and_leaves_the_rng_alone():
    x = torch.zeros(2, 400)
    rng = torch.get_rng_state()
    a, b = baseline(x, 10, seed=3), baseline(x, 10, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    w = a.net[1].weight
    assert abs(float(w.detach().std()) / (2 / 400) ** 0.5 - 1) < 0.1


def test_simplify_keeps_fewer_examples_classes_and_pixels():
    x = torch.rand(3000, 1, 32, 32)
    y = torch.arange(3000) % 20
    small = simplify((x, y), max_examples=500, classes=5, image_size=16)
    xs, ys = small.tensors
    assert xs.shape[1:] == (1, 16, 16)
    assert len(xs) <= 500
    assert set(ys.tolist()) == set(range(5))
    counts = torch.bincount(ys)
    assert counts.max() - counts.min() <= 2  # stratified


def test_synthetic_data_has_the_users_shapes_and_is_learnable():
    ds = synthetic_like(torch.randn(8, 12), torch.randint(0, 4, (8,)), n=512)
    x, y = ds.tensors
    assert x.shape == (512, 12) and y.dtype == torch.long and int(y.max()) <= 3
    torch.manual_seed(0)
    model = nn.Linear(12, 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert float((model(x).argmax(1) == y).float().mean()) > 0.85
    reg = synthetic_like(torch.randn(8, 5), torch.randn(8, 1) * 10 + 50, n=64)
    assert reg.tensors[1].shape == (64, 1) and 30 < float(reg.tensors[1].mean()) < 70


def _exp(lr: float) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 10, generator=g)
    y = ((x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 3))
    return nndoctor.Experiment(
        model=model, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        train=DataLoader(TensorDataset(x[:500], y[:500]), batch_size=32, shuffle=True),
        train_val=DataLoader(TensorDataset(x[500:], y[500:]), batch_size=100))


def test_healthy_model_beats_the_baselines_quietly():
    comp = compare_baselines(_exp(3e-3), epochs=8)
    names = [r.name for r in comp.rows]
    assert names == ["constant", "linear", "start-simple", "yours"]
    yours, const = comp.row("yours"), comp.row("constant")
    assert yours.accuracy > const.accuracy + 0.2
    assert not comp.report.at_least("warning"), [f.message for f in comp.report.findings]


def test_model_that_does_not_learn_is_no_better_than_constant():
    exp = _exp(1e-7)
    weights = {k: v.clone() for k, v in exp.model.state_dict().items()}
    comp = compare_baselines(exp, epochs=3)
    codes = {f.code for f in comp.report.at_least("warning")}
    assert codes & {"fit.no-better-than-constant", "fit.worse-than-linear-baseline"}, codes
    assert all(torch.equal(v, weights[k]) for k, v in exp.model.state_dict().items())


def test_known_results_are_measured_rows_for_reference_tasks():
    rows = known_results("digits")
    assert len(rows) >= 4 and all("accuracy" in r for r in rows)
    linear = [r for r in matching((64,), 10) if r["model"].startswith("linear")]
    assert linear and 0.8 < linear[0]["accuracy"] <= 1.0
    assert matching((1, 8, 8), 10) and all("images" in r["task"] for r in matching((1, 8, 8), 10))
    assert matching((7,), 3) == []


class _Bottleneck(nn.Module):
    """A user's model squeezed through two tanh units: too little capacity for the task."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.squeeze, self.out = nn.Linear(d, 2), nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.squeeze(x)))


def _xor_exp(model: nn.Module, lr: float) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()  # XOR of two signs: no linear model separates it ...
    y = torch.where(x[:, 2] > 0.8, torch.ones_like(y), y)  # ... plus a part a linear model gets
    return nndoctor.Experiment(
        model=model, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        train=DataLoader(TensorDataset(x[:500], y[:500]), batch_size=16, shuffle=True),
        train_val=DataLoader(TensorDataset(x[500:], y[500:]), batch_size=100))


@pytest.mark.parametrize("kind", ["linear", "bottleneck", "healthy"])
def test_start_simple_mlp_beating_a_too_simple_model_is_reported(kind):
    torch.manual_seed(0)
    model = {"linear": lambda: nn.Linear(4, 2), "bottleneck": lambda: _Bottleneck(4),
             "healthy": lambda: nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))}[kind]()
    comp = compare_baselines(_xor_exp(model, 1e-2 if kind != "healthy" else 3e-3), epochs=10)
    found = comp.report.by_code("fit.start-simple-baseline-better")
    if kind == "healthy":  # a model with the capacity beats the start-simple MLP: nothing to say
        assert not comp.report.findings, [f.message for f in comp.report.findings]
        return
    assert [f.code for f in comp.report.findings] == ["fit.start-simple-baseline-better"]
    f = found[0]
    assert f.severity is Severity.INFO
    simple, yours = comp.row("start-simple"), comp.row("yours")
    assert f.evidence["start_simple_loss"] == simple.loss and f.evidence["your_loss"] == yours.loss
    assert simple.loss < 0.85 * yours.loss and simple.accuracy > yours.accuracy + 0.1
    assert yours.loss < f.evidence["constant_loss"]  # it does learn: just less than the baseline
