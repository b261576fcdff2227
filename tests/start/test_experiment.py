"""The experiment-file contract: hyperparameters, --set conversion, batch forms, custom steps."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.debug.overfit import overfit_batch
from nndoctor.experiment import (
    ExperimentError,
    compute_loss,
    load_experiment,
    parse_sets,
    preserved,
    split_batch,
)


def test_hyperparameters_come_from_the_signature_and_set_converts_by_default_type(tmp_path):
    path = tmp_path / "e.py"
    path.write_text(textwrap.dedent("""
        import torch, nndoctor
        from torch import nn
        def experiment(lr: float = 3e-4, hidden: int = 8, bn: bool = False, name: str = "a"):
            model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
            x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
            return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                                       optimizer=torch.optim.SGD(model.parameters(), lr=lr), train=[(x, y)])
    """))
    exp = load_experiment(str(path), parse_sets(["lr=0.1", "hidden=16", "bn=yes", "name=b"]))
    assert exp.hyperparameters == {"lr": 0.1, "hidden": 16, "bn": True, "name": "b"}
    assert exp.optimizer.param_groups[0]["lr"] == 0.1
    assert exp.model[0].out_features == 16
    assert exp.name == "e"
    with pytest.raises(ExperimentError, match="expected a float"):
        load_experiment(str(path), {"lr": "fast"})


def test_optimizer_defaults_to_adam_3e4_and_required_fields_are_checked():
    model = nn.Linear(3, 2)
    exp = nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(), train=[(torch.randn(2, 3), torch.tensor([0, 1]))])
    assert isinstance(exp.optimizer, torch.optim.Adam) and exp.optimizer.param_groups[0]["lr"] == 3e-4
    with pytest.raises(ExperimentError, match="train"):
        nndoctor.Experiment(model=model, loss=nn.MSELoss())
    with pytest.raises(ExperimentError, match="loss"):
        nndoctor.Experiment(model=model, train=[])
    with pytest.raises(ExperimentError, match="nn.Module"):
        nndoctor.Experiment(model=lambda x: x, loss=nn.MSELoss(), train=[])


def test_batch_forms():
    x, y = torch.randn(4, 3), torch.arange(4)
    b = split_batch((x, y))
    assert b.inputs == (x,) and b.target is y
    b = split_batch([x, x, y])
    assert len(b.inputs) == 2
    b = split_batch({"pixels": x, "label": y})
    assert b.kwargs == {"pixels": x} and b.target is y
    with pytest.raises(ExperimentError, match="dict with keys"):
        split_batch({"pixels": x})
    with pytest.raises(ExperimentError, match="a batch is a Tensor"):
        split_batch(x)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 8), nn.Linear(2, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, image: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.a(image) + self.b(meta)))


def test_dict_batches_with_named_inputs_and_a_custom_step_overfit():
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.randn(16, 3, generator=g), "meta": torch.randn(16, 2, generator=g),
             "target": torch.randint(0, 2, (16,), generator=g)} for _ in range(3)]
    torch.manual_seed(0)
    model = TwoInputs()
    exp = nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                              optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), train=data)
    assert compute_loss(exp, data[0]).dim() == 0
    assert overfit_batch(exp, max_steps=400).passed

    calls = []

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        calls.append(1)
        return nn.functional.cross_entropy(model(batch["image"], batch["meta"]), batch["target"])

    exp2 = nndoctor.Experiment(model=model, step=step, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
                               train=data)
    assert overfit_batch(exp2, max_steps=400).passed and calls


def test_loss_must_be_a_scalar():
    exp = nndoctor.Experiment(model=nn.Linear(3, 1), loss=lambda out, y: (out - y) ** 2,
                              train=TensorDataset(torch.randn(4, 3), torch.randn(4, 1)))
    with pytest.raises(ExperimentError, match="one number"):
        compute_loss(exp, next(iter(DataLoader(exp.train, batch_size=4))))


def test_preserved_restores_weights_modes_optimizer_and_rng():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with preserved(model, opt):
        model.train()
        opt.param_groups[0]["lr"] = 5.0
        model(torch.randn(2, 3)).sum().backward()
        opt.step()
    assert not model.training and not model[1].training
    assert opt.param_groups[0]["lr"] == 0.1 and not opt.state
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
