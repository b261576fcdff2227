"""`start simple` review: advice is info, only what likely hurts is a warning or error."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor
from nndoctor.findings import Step
from nndoctor.start.review import review


def _exp(model: nn.Module | None = None, *, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
         opt: str = "adam", lr: float = 3e-4, val: bool = True) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 10, generator=g) if x is None else x
    y = (x.reshape(len(x), -1)[:, 0] > 0).long() if y is None else y
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(x[0].numel(), 32), nn.ReLU(), nn.Linear(32, 2))
    optim = (torch.optim.Adam(model.parameters(), lr=lr) if opt == "adam"
             else torch.optim.SGD(model.parameters(), lr=lr))
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(), optimizer=optim, train=loader,
                               train_val=loader if val else None)


def _he_mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def test_guide_defaults_give_no_warning_and_no_advice():
    report = review(_exp(_he_mlp()))
    assert not report.at_least("info"), [(f.code, f.message) for f in report.findings]
    assert report.facts["input_kind"] == "tabular"
    assert "MLP" in report.facts["first_model"]


def test_departures_from_the_defaults_are_only_advice():
    model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
    report = review(_exp(model, opt="sgd", lr=0.05, val=False))
    assert not report.at_least("warning"), [(f.code, f.message) for f in report.at_least("warning")]
    codes = {f.code for f in report.findings}
    assert {"optimizer.start-with-adam", "regularization.start-without", "fit.start-no-validation",
            "regularization.start-without-normalisation", "init.start-scheme"} <= codes
    assert all(f.step is Step.START for f in report.findings)


def test_unnormalised_image_inputs_are_a_preprocessing_warning():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 1, 12, 12), generator=g).float()
    y = torch.randint(0, 3, (200,), generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 3))
    report = review(_exp(model, x=x, y=y))
    found = report.by_code("preprocessing.start-inputs-not-normalised")
    assert found and found[0].severity.value == "warning"
    assert found[0].evidence["max"] >= 200
    assert "255" in found[0].fixes[0]
    # images into a model without convolutions: advice to start with a LeNet-like net
    arch = report.by_code("fit.start-architecture-for-input")
    assert arch and "LeNet" in arch[0].evidence["suggested_first_model"]


def test_learning_rate_far_outside_the_working_range_is_a_warning():
    report = review(_exp(_he_mlp(), lr=1.0))
    assert report.categories("warning") == {"lr"}
    assert report.by_code("lr.start-far-from-working-range")[0].evidence["lr"] == 1.0


def test_constant_weights_are_an_error_on_the_layer():
    model = _he_mlp()
    nn.init.constant_(model[0].weight, 0.1)
    report = review(_exp(model))
    errors = report.at_least("error")
    assert [f.code for f in errors] == ["init.start-constant-weights"]
    assert errors[0].location == "0"


def test_class_imbalance_is_a_data_warning():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 10, generator=g)
    y = torch.zeros(600, dtype=torch.long)
    y[:20] = 1
    report = review(_exp(_he_mlp(), x=x, y=y))
    found = report.by_code("data.start-class-imbalance")
    assert found and found[0].evidence["imbalance_ratio"] > 10


def test_review_changes_nothing():
    exp = _exp(nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2)))
    weights = {k: v.clone() for k, v in exp.model.state_dict().items()}
    rng = torch.get_rng_state()
    review(exp)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, weights[k]) for k, v in exp.model.state_dict().items())


def test_custom_step_with_batches_only_it_understands():
    class Pack:  # a batch object no generic loader format covers
        def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
            self.x, self.y = x, y

    g = torch.Generator().manual_seed(0)
    batches = [Pack(torch.randn(16, 10, generator=g), torch.randint(0, 2, (16,), generator=g)) for _ in range(4)]
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 2))
    exp = nndoctor.Experiment(model=model, step=lambda m, b: nn.functional.cross_entropy(m(b.x), b.y),
                              train=batches, train_val=batches)
    report = review(exp)
    assert not report.at_least("warning")
    scheme = report.by_code("init.start-scheme")
    assert scheme and scheme[0].evidence["activation"] == "tanh/sigmoid"
