"""The remedies of nndoctor.fix.data_remedies: inputs normalised twice, and a debug slice of the
training set left in. Each injected bug trains like its fixed twin with the remedy applied;
healthy code is untouched."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply
from torch.utils.data import DataLoader, Subset, TensorDataset

from nndoctor.fix.remedies import remedy_for


def _pixels() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    y = torch.arange(96) % 3
    img = torch.rand(96, 16, generator=g) * 80
    img[torch.arange(96), y * 5] = 250.0      # a bright pixel whose position is the class
    return img, y


def _fit_pixels(scale: float) -> list[float]:
    torch.manual_seed(0)
    img, y = _pixels()
    x = img / scale
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_inputs_divided_by_255_twice_are_brought_back_like_the_twin():
    twin, bug = _fit_pixels(255.0), _fit_pixels(255.0 * 255.0)
    with _apply("preprocessing.normalised-twice", "model", std="0.0005", max_abs="0.0039"):
        fixed = _fit_pixels(255.0 * 255.0)
    assert torch.allclose(torch.tensor(fixed), torch.tensor(twin), atol=1e-4)
    assert bug[-1] > twin[-1] + 0.1


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(600, 8, generator=g)
    w = torch.randn(8, generator=g)
    return x, (x @ w + 0.5 * torch.randn(600, generator=g) > 0).long()


def _fit_slice(style: str, n: int | None) -> tuple[int, float]:
    """Train on the first 500 rows (``n``: a debug slice of them); the rows trained on and the
    accuracy on the last 100."""
    torch.manual_seed(0)
    x, y = _data()
    x_train, y_train, x_test, y_test = x[:500], y[:500], x[500:], y[500:]
    if style == "tensor" and n:
        x_train, y_train = x_train[:n], y_train[:n]
    dataset = TensorDataset(x_train, y_train)
    if style == "subset" and n:
        dataset = Subset(dataset, range(n))
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(4):
        for xb, yb in DataLoader(dataset, batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(1)):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return len(dataset), float((model(x_test).argmax(1) == y_test).float().mean())


def test_debug_slice_of_the_training_set_is_widened_like_the_twin():
    twin = _fit_slice("tensor", None)
    bug = _fit_slice("tensor", 25)
    tensor_ev = {"train_rows": 25, "source_rows": 600, "source": "the tensor the training batches are sliced from"}
    subset_ev = {"train_rows": 25, "source_rows": 500,
                 "source": "the data set the training DataLoader's dataset was cut from"}
    with _apply("data.training-on-small-slice", "training data", **tensor_ev):
        fixed = _fit_slice("tensor", 25)
        healthy = _fit_slice("tensor", None)
        other = _fit_slice("tensor", 40)             # a slice of another size: untouched
    with _apply("data.training-on-small-slice", "training data", **subset_ev):
        fixed_subset = _fit_slice("subset", 25)
    assert fixed == twin and healthy == twin and fixed_subset == twin
    assert bug[0] == 25 and other[0] == 40 and bug[1] < twin[1]


def _fit_batches(n: int | None, batch: int) -> tuple[int, torch.Tensor]:
    """Train on the first 500 rows (``n``: a debug slice of them) in batches cut with ``x[i:i + batch]``."""
    torch.manual_seed(0)
    x, y = _data()
    x_train, y_train = x[torch.arange(500)], y[torch.arange(500)]     # copies: their own storage
    if n:
        x_train, y_train = x_train[:n], y_train[:n]
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for i in range(0, len(x_train), batch):
            loss = F.cross_entropy(model(x_train[i:i + batch]), y_train[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return len(x_train), torch.cat([p.detach().flatten() for p in model.parameters()])


def test_a_slice_seen_against_an_evaluation_set_is_widened_once_before_training():
    # the larger set nndoctor saw is the evaluation set: the slice's source size is unknown
    ev = {"train_rows": 50, "source_rows": 100, "source": "an evaluation pass (distinct rows not trained on)"}
    twin, bug = _fit_batches(None, 25), _fit_batches(50, 25)
    with _apply("data.training-on-small-slice", "training data", **ev):
        fixed = _fit_batches(50, 25)
    with _apply("data.training-on-small-slice", "training data", **ev):
        healthy = _fit_batches(None, 25)              # its own re-run: no slice of 50 rows to widen
    with _apply("data.training-on-small-slice", "training data", **ev):
        again = _fit_batches(50, 50)[0]               # x[0:50] of the widened set (a batch) stays a batch
    assert fixed[0] == healthy[0] == twin[0] == 500 and bug[0] == 50 and again == 500
    assert torch.equal(fixed[1], twin[1]) and torch.equal(healthy[1], twin[1]) and not torch.equal(bug[1], twin[1])
    assert remedy_for({"code": "data.training-on-small-slice", "evidence": ev}) is not None


def _fit_dtype(dtype: torch.dtype) -> list[float]:
    torch.manual_seed(0)
    x = torch.randn(64, 6)
    y = x[:, :1] * 0.3 + 0.01 * x[:, 1:2]               # a small effect: float16 rounds its updates away
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = F.mse_loss(model(x.to(dtype)), y.to(dtype))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def test_half_precision_weights_train_in_float32_like_the_twin():
    twin, bug = _fit_dtype(torch.float32), _fit_dtype(torch.bfloat16)
    with _apply("dtype.half-precision-weights", "opt", dtype="bfloat16", optimizer="opt"):
        fixed = _fit_dtype(torch.bfloat16)
        healthy = _fit_dtype(torch.float32)
    assert healthy == twin and bug != twin
    assert torch.allclose(torch.tensor(fixed), torch.tensor(twin), rtol=1e-2)


def _fit_regression(standardise: bool) -> tuple[torch.Tensor, float]:
    """Targets around 3000 +- 500; ``standardise``: the twin trains on (y - mean) / std."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(200, 4, generator=g)
    y = 3000.0 + 500.0 * (x @ torch.tensor([[1.0], [-0.5], [0.3], [0.0]]))
    mean, std = (3000.0, 500.0) if standardise else (0.0, 1.0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(40):
        loss = F.mse_loss(model(x[:150]), (y[:150] - mean) / std)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(x[150:]) * std + mean
    return torch.cat([p.detach().flatten() for p in model.parameters()]), float(((pred - y[150:]) ** 2).mean())


def test_unscaled_regression_targets_are_learned_standardised_like_the_twin():
    twin, bug = _fit_regression(True), _fit_regression(False)
    with _apply("preprocessing.targets-not-scaled", "targets", target_mean=3000.0, target_std=500.0, loss="mse_loss"):
        fixed = _fit_regression(False)
    with _apply("preprocessing.targets-not-scaled", "targets", target_mean=3000.0, target_std=500.0, loss="mse_loss"):
        healthy = _fit_regression(True)               # targets already standardised: untouched
    assert torch.equal(healthy[0], twin[0])
    assert torch.allclose(fixed[0], twin[0], atol=1e-4) and abs(fixed[1] - twin[1]) < 1e-2 * twin[1] + 1e-3
    assert bug[1] > 5 * twin[1]
    assert remedy_for({"code": "preprocessing.targets-not-scaled", "evidence": {"loss": "mse_loss"}}) is None
