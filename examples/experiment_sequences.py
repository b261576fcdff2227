"""Experiment file: an LSTM classifies noisy sine waves by frequency (sequences).

Batches are dicts ({"series": ..., "target": ...}); the model reads the keyword argument.

    nndoctor overfit examples/experiment_sequences.py
    nndoctor lr-find examples/experiment_sequences.py
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import nndoctor


class Waves(Dataset):
    def __init__(self, n: int, seed: int, length: int = 24, classes: int = 4) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, classes, (n,), generator=g)
        t = torch.arange(length).float()
        phase = torch.rand(n, 1, generator=g) * 2 * math.pi
        freq = 0.3 * (1 + self.y.float()).unsqueeze(1)
        self.x = (torch.sin(freq * t + phase) + 0.3 * torch.randn(n, length, generator=g)).unsqueeze(-1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"series": self.x[i], "target": self.y[i]}


class Classifier(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 4)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(series)
        return self.head(out[:, -1])


def experiment(lr: float = 3e-3, hidden: int = 32, batch_size: int = 32) -> nndoctor.Experiment:
    model = Classifier(hidden)
    return nndoctor.Experiment(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        train=DataLoader(Waves(800, seed=0), batch_size=batch_size, shuffle=True),
        train_val=DataLoader(Waves(200, seed=1), batch_size=200),
    )
