"""Overfit-one-batch workflow: passes on healthy models, names the symptom and cause on bugs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.debug.overfit import classify_curve, label_conflicts, overfit_batch, still_falling


def _data(n: int = 128, conflict: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 0).long()
    if conflict:  # every odd example repeats the even one with another label
        x[1::2] = x[0::2]
        y[1::2] = (y[0::2] + 1) % 3
    return x, y


def _exp(*, lr: float = 3e-3, opt: str = "adam", softmax: bool = False, conflict: bool = False,
         weight_decay: float = 0.0, sequential: bool = True) -> nndoctor.Experiment:
    torch.manual_seed(0)
    if sequential:
        layers = [nn.Linear(12, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 3)]
        model: nn.Module = nn.Sequential(*layers, *( [nn.Softmax(dim=1)] if softmax else []))
    else:
        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(12, 64), nn.Linear(64, 3)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = self.fc2(torch.relu(self.fc1(x)))
                return torch.softmax(out, dim=1) if softmax else out

        model = Net()
    optim = (torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay) if opt == "adam"
             else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay))
    x, y = _data(conflict=conflict)
    loss = nn.CrossEntropyLoss() if sequential else nn.functional.cross_entropy
    return nndoctor.Experiment(model=model, loss=loss, optimizer=optim,
                               train=DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True))


def _snapshot(exp: nndoctor.Experiment) -> tuple[dict, list, torch.Tensor, list]:
    weights = {k: v.clone() for k, v in exp.model.state_dict().items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in exp.optimizer.param_groups]
    return weights, groups, torch.get_rng_state(), [m.training for m in exp.model.modules()]


def _assert_restored(exp: nndoctor.Experiment, snap: tuple[dict, list, torch.Tensor, list]) -> None:
    weights, groups, rng, modes = snap
    for k, v in exp.model.state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert [{k: v for k, v in g.items() if k != "params"} for g in exp.optimizer.param_groups] == groups
    assert not exp.optimizer.state or all(not s for s in exp.optimizer.state.values())
    assert torch.equal(torch.get_rng_state(), rng)
    assert [m.training for m in exp.model.modules()] == modes


@pytest.mark.parametrize("sequential", [True, False])
def test_healthy_model_overfits_and_state_is_restored(sequential):
    exp = _exp(sequential=sequential, weight_decay=0.1)
    snap = _snapshot(exp)
    res = overfit_batch(exp, max_steps=600)
    assert res.passed, (res.losses[:3], res.losses[-3:])
    assert res.symptom is None
    assert res.losses[-1] <= 0.05 * res.losses[0]
    assert not res.report.at_least("warning"), [f.code for f in res.report.findings]
    assert res.facts["switched_off"]["weight_decay"] == 0.1
    _assert_restored(exp, snap)


def test_sgd_lr_10_explodes_and_blames_the_learning_rate():
    exp = _exp(lr=10.0, opt="sgd")
    snap = _snapshot(exp)
    res = overfit_batch(exp, max_steps=200)
    assert not res.passed
    assert res.symptom in ("explodes", "oscillates", "goes-up")
    top = [c.code for c in res.causes[:2]]
    assert any(code.startswith(("lr.", "numerics.")) for code in top), top
    codes = {f.code for f in res.report.at_least("warning")}
    assert f"loss-curve.overfit-batch-{res.symptom}" in codes
    _assert_restored(exp, snap)


@pytest.mark.parametrize("sequential", [True, False])
def test_softmax_into_cross_entropy_plateaus_with_loss_input_cause(sequential):
    exp = _exp(softmax=True, sequential=sequential)
    res = overfit_batch(exp, max_steps=300)
    assert not res.passed
    assert res.symptom == "plateaus"
    assert res.causes[0].code.startswith("loss-input."), [c.code for c in res.causes]
    assert "loss-input" in res.report.categories("warning")


def test_conflicting_labels_in_the_batch_are_the_top_cause():
    exp = _exp(conflict=True)
    res = overfit_batch(exp, max_steps=300)
    assert not res.passed
    assert res.symptom == "plateaus"
    assert res.causes[0].code == "labels.overfit-batch-conflicting-labels"
    assert res.causes[0].evidence["rows"] >= 2
    assert "labels" in res.report.categories("warning")
    symptom = res.report.by_code("loss-curve.overfit-batch-plateaus")[0]
    assert symptom.fixes == tuple(c.fixes[0] for c in res.causes[:3] if c.fixes)  # the causes' first fixes


def test_tiny_learning_rate_plateaus_with_lr_too_low():
    exp = _exp(lr=1e-7)
    res = overfit_batch(exp, max_steps=150)
    assert res.symptom == "plateaus"
    # the registered lr check or the workflow's own update-ratio evidence: either way the lr
    assert res.causes[0].code.startswith("lr."), [c.code for c in res.causes]
    assert res.facts["update_ratio"] < 1e-4
    assert "lr" in res.report.categories("warning")


def test_state_restored_when_the_step_raises():
    exp = _exp()
    calls = {"n": 0}
    base = exp.loss

    def step(model, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        x, y = batch
        return base(model(x), y)

    exp.step = step
    snap = _snapshot(exp)
    with pytest.raises(RuntimeError, match="boom"):
        overfit_batch(exp, max_steps=50, observe=False)
    _assert_restored(exp, snap)


def test_classify_curve_symptoms():
    n = 200
    assert classify_curve([1.0] * 10 + [math.nan]) == "explodes"
    assert classify_curve([1.0 + 0.2 * i for i in range(100)]) == "explodes"
    assert classify_curve([1.0 + 0.005 * i for i in range(n)]) == "goes-up"
    assert classify_curve([1.0 + (0.5 if i % 2 else -0.3) for i in range(n)]) == "oscillates"
    assert classify_curve([1.0 - 0.2 * (1 - math.exp(-i / 10)) for i in range(n)]) == "plateaus"


def test_still_falling_tells_slow_from_stuck():
    assert still_falling([2.0 * math.exp(-i / 150) for i in range(400)])
    assert not still_falling([1.0 + 0.5 * math.exp(-i / 10) for i in range(400)])


def test_label_conflicts_counts_identical_inputs_with_other_labels():
    x = torch.tensor([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0], [2.0, 3.0], [5.0, 5.0]])
    assert label_conflicts((x,), torch.tensor([0, 1, 2, 2, 0])) == (2, 1)
    assert label_conflicts((x,), torch.tensor([0, 0, 2, 2, 1])) == (0, 0)


class _ShuffledApart(torch.utils.data.Dataset):
    """A classic bug: labels re-shuffled every epoch, apart from the inputs."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        if i == 0:
            self.perm = torch.randperm(len(self.y))
        return self.x[i], self.y[self.perm[i]]


def test_labels_shuffled_apart_from_inputs_between_epochs_are_reported():
    exp = _exp()
    x, y = _data()
    exp.train = DataLoader(_ShuffledApart(x, y), batch_size=32, shuffle=False)
    rng = torch.get_rng_state()
    res = overfit_batch(exp, max_steps=400)
    assert torch.equal(torch.get_rng_state(), rng)
    found = res.report.by_code("labels.changed-between-epochs")
    assert found and found[0].evidence["matched"] == 128 and found[0].evidence["changed"] > 40
    healthy = overfit_batch(_exp(), max_steps=400)
    assert not healthy.report.by_code("labels.changed-between-epochs")
