"""Remedies of fit.underfitting on a linear model (a hidden layer of the MLP probe's width, or a
ReLU between stacked Linear layers) and data.class-imbalance (class weights counted over every
training target of the re-run, not the diagnosis's sample): the injected bug, found in-process,
trains like its fixed twin under the remedy; non-linear models and balanced losses are untouched."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy
from sklearn.datasets import make_circles
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.linear import LinearModelUnderfits
from nndoctor.monitor.checks.data.sample import DataCollector


def _remedied(finding: dict[str, Any]) -> contextlib.ExitStack:
    """The finding's runtime remedy installed, as ``nndoctor fix`` does in a re-run (closing undoes it)."""
    return apply_remedy(finding["code"], finding.get("location", ""), **finding["evidence"])


# -- a linear model on data that need a non-linear one ------------------------------------------
def _circles() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_circles(n_samples=1000, noise=0.08, factor=0.4, random_state=0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class _Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


def _accuracy(make_model: Callable[[], nn.Module], sgd: bool = False) -> float:
    torch.manual_seed(0)
    x, y = _circles()
    model = make_model()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if sgd
           else torch.optim.Adam(model.parameters(), lr=1e-2))
    for _ in range(8):
        for xb, yb in DataLoader(TensorDataset(x[:800], y[:800]), batch_size=50, shuffle=True):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    with torch.no_grad():
        return float((model(x[800:]).argmax(1) == y[800:]).float().mean())


_LINEAR: list[tuple[Callable[[], nn.Module], bool]] = [
    (lambda: nn.Sequential(nn.Linear(2, 2)), False),
    (_Wrapped, True),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(2, 16), nn.Linear(16, 2)), False),  # activation forgotten
]


def _underfit_finding(make_model: Callable[[], nn.Module], sgd: bool) -> dict[str, Any]:
    with Observer(checks=[DataCollector, LinearModelUnderfits]) as obs:
        _accuracy(make_model, sgd)
    hits = [f.to_dict() for f in obs.findings if f.code == "fit.underfitting"]
    assert hits, [f.code for f in obs.findings]
    return hits[0]


def test_a_linear_model_gets_a_hidden_layer_and_fits_like_the_twin_in_three_styles():
    for make_model, sgd in _LINEAR:
        finding = _underfit_finding(make_model, sgd)
        twin = _accuracy(lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2)), sgd)
        bug = _accuracy(make_model, sgd)
        with _remedied(finding):
            fixed = _accuracy(make_model, sgd)
        assert bug < 0.7 and twin > 0.95, (bug, twin)
        assert fixed >= twin - 0.03, (make_model, fixed, twin)


def test_non_linear_models_are_untouched_by_the_hidden_layer_remedy():
    finding = {"code": "fit.underfitting", "location": "model",
               "evidence": {"model_is_linear": True, "linear_layers": 1, "mlp_probe_hidden_units": 64}}
    mlp = lambda: nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))  # noqa: E731
    tanh = lambda: nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2))  # noqa: E731
    plain = (_accuracy(mlp), _accuracy(tanh, sgd=True))
    with _remedied(finding):
        again = (_accuracy(mlp), _accuracy(tanh, sgd=True))
    assert again == plain


# -- class weights from the whole training set ----------------------------------------------------
def _imbalanced(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(n, generator=g) < 0.04).long()
    return torch.randn(n, 6, generator=g) + y[:, None] * 1.2, y


def test_class_weights_come_from_every_training_target_of_the_run():
    x, y = _imbalanced()
    exact = float((y == 0).sum() / (y == 1).sum())
    sample = {"0": 450, "1": 27}  # what a diagnosis counts on a third of the batches: ratio 16.7
    z = torch.randn(len(y))
    for style in ("bce", "ce", "module"):
        with _remedied({"code": "data.class-imbalance", "location": "", "evidence": {"counts": sample}}):
            for xb, yb in DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True):  # one epoch
                logits = torch.stack([-xb.sum(1), xb.sum(1)], 1).requires_grad_()
                if style == "bce":
                    F.binary_cross_entropy_with_logits(xb.sum(1), yb.float())
                elif style == "ce":
                    F.cross_entropy(logits, yb)
                else:
                    nn.CrossEntropyLoss()(logits, yb)
            got = F.binary_cross_entropy_with_logits(z, y.float()) if style == "bce" else F.cross_entropy(
                torch.stack([-z, z], 1), y)
        if style == "bce":
            want = F.binary_cross_entropy_with_logits(z, y.float(), pos_weight=torch.tensor(exact))
        else:
            counts = torch.bincount(y).double()
            want = F.cross_entropy(torch.stack([-z, z], 1), y, weight=(len(y) / (2 * counts)).float())
        assert torch.allclose(got, want, rtol=1e-5), (style, got, want)


def test_the_diagnosis_counts_are_used_until_the_run_has_counted_as_many():
    y = torch.tensor([0, 0, 0, 1])
    z = torch.randn(4)
    with _remedied({"code": "data.class-imbalance", "location": "", "evidence": {"counts": {"0": 90, "1": 10}}}):
        got = F.binary_cross_entropy_with_logits(z, y.float())
        with torch.no_grad():  # evaluation targets are never counted
            for _ in range(200):
                F.binary_cross_entropy_with_logits(z, torch.zeros(4))
        again = F.binary_cross_entropy_with_logits(z, y.float())
    want = F.binary_cross_entropy_with_logits(z, y.float(), pos_weight=torch.tensor(9.0))
    assert torch.allclose(got, want) and torch.allclose(again, want)
    soft = torch.full((4,), 0.3)
    with _remedied({"code": "data.class-imbalance", "location": "", "evidence": {"counts": {"0": 4, "1": 1}}}):
        for _ in range(10):  # soft targets are no class counts
            F.binary_cross_entropy_with_logits(z, soft)
        got = F.binary_cross_entropy_with_logits(z, y.float())
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(z, y.float(), pos_weight=torch.tensor(4.0)))
