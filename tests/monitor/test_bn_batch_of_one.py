"""train-mode.batchnorm-batch-of-one: batch norms trained on one-sample batches (3 styles), and
healthy lookalikes (real batches, single-sample inference in eval mode, an odd last batch of one)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.bn_batch_of_one import BatchNormBatchOfOne

CODE = "train-mode.batchnorm-batch-of-one"


def _codes(run) -> set[str]:
    with Observer(checks=[BatchNormBatchOfOne], schedule=Schedule(dense=4, every=2)) as obs:
        run()
    return {f.code for f in obs.findings}


def _images(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g)
    return x, (x.mean((1, 2, 3)) > 0).long()


def _conv() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def _per_sample_loop(batch: int, infer_one: bool = False):
    def run():
        x, y = _images()
        model = _conv()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for i in range(0, 16 * batch, batch):
            xb, yb = x[i % 64:i % 64 + batch], y[i % 64:i % 64 + batch]
            if batch == 1:
                xb, yb = x[i % 64].unsqueeze(0), y[i % 64].unsqueeze(0)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if infer_one:
            model.eval()
            with torch.no_grad():
                for i in range(8):
                    model(x[i:i + 1])
    return run


def _sequence_loader(batch: int, n: int = 48):
    def run():
        g = torch.Generator().manual_seed(1)
        seqs = torch.randn(n, 3, 20, generator=g)
        labels = (seqs[:, 0].mean(1) > 0).long()

        def collate(items):
            return {"x": torch.stack([a for a, _ in items]), "y": torch.stack([b for _, b in items])}
        loader = DataLoader(TensorDataset(seqs, labels), batch_size=batch, collate_fn=collate)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(),
                              nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2))
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(2):
            for b in loader:
                loss = F.cross_entropy(model(b["x"]), b["y"])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return run


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.norm(self.conv(x)))


class _ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.ModuleList([_Block(4), _Block(4)])
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return {"logits": self.head(h.mean((2, 3)))}


class _Trainer:
    def __init__(self, batch: int) -> None:
        torch.manual_seed(0)
        self.batch = batch
        self.model = _ResNet()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.x, self.y = _images()

    def fit(self) -> None:
        for step in range(14):
            i = (step * self.batch) % 64
            out = self.model(self.x[i:i + self.batch])
            loss = F.cross_entropy(out["logits"], self.y[i:i + self.batch])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


def test_per_sample_loop_with_batchnorm2d_is_named():
    assert CODE in _codes(_per_sample_loop(1))
    assert CODE not in _codes(_per_sample_loop(16))


def test_one_sample_loader_with_batchnorm1d_over_sequences_is_named():
    assert CODE in _codes(_sequence_loader(1, n=12))
    assert CODE not in _codes(_sequence_loader(16))


def test_trainer_slicing_one_sample_into_a_residual_net_is_named():
    assert CODE in _codes(lambda: _Trainer(1).fit())
    assert CODE not in _codes(lambda: _Trainer(8).fit())


def test_single_sample_inference_in_eval_mode_and_an_odd_last_batch_are_quiet():
    assert CODE not in _codes(_per_sample_loop(16, infer_one=True))
    assert CODE not in _codes(_sequence_loader(16, n=49))  # every epoch ends with a batch of one
