"""preprocessing.eval-inputs-differ: evaluation inputs on another scale than the training inputs."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.findings import Severity
from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.eval_inputs import EvalInputScale

CODE = "preprocessing.eval-inputs-differ"


def _images(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (n, 1, 8, 8), generator=g).float()
    y = (raw[:, 0, :4].mean((1, 2)) > raw[:, 0, 4:].mean((1, 2))).long()
    return raw, y


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


def _warnings(obs: Observer) -> list:
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code == CODE and f.severity is not Severity.INFO]


def _train_eval(model, train_x, train_y, eval_x, eval_y, *, epochs=2, bs=32, augment=None, sgd=False):
    opt = (torch.optim.SGD(model.parameters(), lr=0.05) if sgd else torch.optim.Adam(model.parameters(), lr=1e-3))
    with Observer(checks=[EvalInputScale]) as obs:
        for _ in range(epochs):
            model.train()
            for i in range(0, len(train_x), bs):
                xb = train_x[i:i + bs]
                if augment is not None:
                    xb = augment(xb)
                loss = F.cross_entropy(model(xb), train_y[i:i + bs])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for i in range(0, len(eval_x), 64):
                    (model(eval_x[i:i + 64]).argmax(1) == eval_y[i:i + 64]).float().mean()
    return _warnings(obs)


def test_normalised_training_images_raw_test_images_subclass_top_level():
    raw, y = _images()
    mean, std = raw[:384].mean(), raw[:384].std()
    train = (raw[:384] - mean) / std
    found = _train_eval(ConvNet(), train, y[:384], raw[384:], y[384:])  # test set never normalised
    assert len(found) == 1, found
    f = found[0]
    assert f.location == "model" and f.evidence["std_ratio"] > 20
    assert abs(f.evidence["train_mean"]) < 0.1 and f.evidence["eval_mean"] > 50
    assert "x / 255" in f.fixes[0]


def test_standardised_train_table_raw_test_table_with_loaders_in_main():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 5, generator=g) * torch.tensor([3.0, 40.0, 900.0, 0.5, 12.0]) + 100.0
    y = (x[:, 0] > 100).long()
    mu, sd = x[:400].mean(0), x[:400].std(0)

    def main():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        train = DataLoader(TensorDataset((x[:400] - mu) / sd, y[:400]), batch_size=40, shuffle=True)
        test = DataLoader(TensorDataset(x[400:], y[400:]), batch_size=50)  # forgot the scaler
        for _ in range(3):
            for xb, yb in train:
                opt.zero_grad()
                nn.CrossEntropyLoss()(model(xb), yb).backward()
                opt.step()
            with torch.no_grad():
                for xb, yb in test:
                    F.cross_entropy(model(xb), yb)

    with Observer(checks=[EvalInputScale]) as obs:
        main()
    found = _warnings(obs)
    assert len(found) == 1 and found[0].location == "model", found


def test_same_preprocessing_and_training_only_augmentation_stay_quiet():
    raw, y = _images()
    scaled = raw / 255.0
    mean, std = scaled[:384].mean(), scaled[:384].std()
    norm = (scaled - mean) / std  # one pipeline for both splits

    def noisy_flips(xb: torch.Tensor) -> torch.Tensor:
        xb = torch.where(torch.rand(len(xb), 1, 1, 1) < 0.5, xb.flip(-1), xb)
        return xb + 0.3 * torch.randn_like(xb)

    assert not _train_eval(ConvNet(), norm[:384], y[:384], norm[384:], y[384:])
    assert not _train_eval(ConvNet(), norm[:384], y[:384], norm[384:], y[384:], augment=noisy_flips, sgd=True)
    # a different split of the same scale, drawn with another seed
    other, y2 = _images(seed=5)
    assert not _train_eval(ConvNet(), scaled[:384], y[:384], other / 255.0, y2)


def test_a_teacher_or_ema_model_only_run_without_gradient_is_not_compared():
    raw, y = _images()
    x = (raw - raw.mean()) / raw.std()
    student, teacher = ConvNet(), ConvNet()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    with Observer(checks=[EvalInputScale]) as obs:
        for i in range(0, 384, 32):
            with torch.no_grad():
                soft = teacher(raw[i:i + 32]).softmax(1)  # the teacher takes its own (raw) inputs
            loss = F.kl_div(student(x[i:i + 32]).log_softmax(1), soft, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert not _warnings(obs)
