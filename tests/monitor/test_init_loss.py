"""init.initial-loss-too-high: a first training cross-entropy several times ln(C) names the initial
scale, in three styles (an MLP whose normalised hidden layers hide an output layer initialised at
std 2.0, as minGPT's _init_weights with 2.0 for 0.02; a character model with an N(0, 1) embedding
tied to its output; a segmentation conv net with per-pixel logits and an ignored index). The same
models initialised sensibly, a summed loss, a confident pretrained-like model and soft targets
stay quiet. Before, none of the three was reported (real minGPT chargpt with std 2.0: no finding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.init import InitCheck
from nndoctor.monitor.checks.init_loss import InitialLossTooHigh

CODE = "init.initial-loss-too-high"


def _train(model: nn.Module, batches, loss_fn, steps: int = 30) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[InitCheck, InitialLossTooHigh]) as obs:
        for i in range(steps):
            x, y = batches(i)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.severity is not Severity.INFO]


def _mlp(std: float | None) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 64), nn.LayerNorm(64),
                          nn.GELU(), nn.Linear(64, 10))
    if std is not None:
        nn.init.normal_(model[-1].weight, std=std)
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(640, 20, generator=g), torch.randint(0, 10, (640,), generator=g)
    return model, lambda i: (X[(i * 32) % 640:][:32], Y[(i * 32) % 640:][:32])


class _TiedCharModel(nn.Module):
    def __init__(self, vocab: int, emb_std: float | None) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 64)  # default init: N(0, 1)
        if emb_std is not None:
            nn.init.normal_(self.emb.weight, std=emb_std)
        self.mix = nn.Linear(64, 64)
        self.ln = nn.LayerNorm(64)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.emb(idx) + F.gelu(self.mix(self.emb(idx))))
        return h @ self.emb.weight.T  # weights tied to the embedding


def _char(emb_std: float | None) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = _TiedCharModel(65, emb_std)
    g = torch.Generator().manual_seed(2)
    data = torch.randint(0, 65, (4000,), generator=g)

    def batches(i: int):
        start = (i * 97) % 3000
        x = data[start:start + 512].view(16, 32)
        y = data[start + 1:start + 513].view(16, 32).clone()
        y[:, -3:] = -1  # padding, ignored
        return x, y
    return model, batches


def _seg(std: float | None) -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 5, 1))
    if std is not None:
        nn.init.normal_(model[-1].weight, std=std)
    g = torch.Generator().manual_seed(3)
    X = torch.randn(64, 3, 12, 12, generator=g)
    Y = torch.randint(0, 5, (64, 12, 12), generator=g)
    Y[:, :2] = 255  # an ignored border

    def batches(i: int):
        j = (i * 8) % 64
        return X[j:j + 8], Y[j:j + 8]
    return model, batches


def _ce(ignore: int):
    return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=ignore)


STYLES = {
    "mlp-layernorm-output-std2": (lambda bad: _mlp(2.0 if bad else None), nn.CrossEntropyLoss()),
    "char-model-tied-embedding": (lambda bad: _char(None if bad else 0.02), _ce(-1)),
    "segmentation-per-pixel": (lambda bad: _seg(1.5 if bad else None),
                               lambda out, y: F.cross_entropy(out, y, ignore_index=255)),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_a_first_loss_far_above_ln_c_names_the_init(style):
    make, loss_fn = STYLES[style]
    model, batches = make(True)
    found = [f for f in _train(model, batches, loss_fn) if f.code == CODE]
    assert found, style
    ev = found[0].evidence
    assert ev["initial_loss"] >= 3 * ev["uniform_loss"]
    assert found[0].first_step == 1


@pytest.mark.parametrize("style", list(STYLES))
def test_sensible_initialisations_stay_quiet(style):
    make, loss_fn = STYLES[style]
    model, batches = make(False)
    assert not [f for f in _train(model, batches, loss_fn) if f.code == CODE]


def test_a_summed_loss_is_read_per_target():
    """reduction='sum' makes the loss N x ln(C) at init: the check computes its own mean."""
    model, batches = _mlp(None)
    assert not _train(model, batches, nn.CrossEntropyLoss(reduction="sum"))


def test_a_confident_model_that_is_right_and_soft_targets_stay_quiet():
    model, batches = _mlp(None)
    with torch.no_grad():  # a "pretrained" head that already predicts the batches' labels confidently
        model[-1].weight.mul_(0)

    def right(i: int):
        x, y = batches(i)
        return x, y

    class Confident(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) + 20.0 * F.one_hot(self._y, 10).float()

    conf = Confident()

    def with_labels(i: int):
        x, y = right(i)
        conf._y = y
        return x, y
    assert not _train(conf, with_labels, nn.CrossEntropyLoss())
    soft_model, batches2 = _mlp(2.0)
    soft = lambda out, y: F.cross_entropy(out, F.one_hot(y, 10).float() * 0.9 + 0.01)  # noqa: E731
    assert not [f for f in _train(soft_model, batches2, soft) if f.code == CODE]


def test_scaled_cosine_logits_of_a_normally_initialised_model_stay_quiet():
    """ArcFace / CosFace / normalised softmax: logits s * cos(theta) start with a first loss far
    above ln C by design, on weights at their default scale: the init is not to blame."""

    class CosineHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32))
            self.w = nn.Parameter(torch.randn(10, 32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 64.0 * F.normalize(self.body(x), dim=1) @ F.normalize(self.w, dim=1).T

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(640, 20, generator=g), torch.randint(0, 10, (640,), generator=g)
    model = CosineHead()
    with torch.no_grad():
        first = F.cross_entropy(model(X[:32]), Y[:32]).item()
    assert first > 3 * torch.log(torch.tensor(10.0)).item() + 3  # (the first loss is far above ln C)
    assert not _train(model, lambda i: (X[(i * 32) % 640:][:32], Y[(i * 32) % 640:][:32]), nn.CrossEntropyLoss())
