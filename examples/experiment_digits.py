"""Experiment file: a small conv net on scikit-learn's 8x8 digits (images).

    nndoctor start examples/experiment_digits.py
    nndoctor overfit examples/experiment_digits.py
    nndoctor lr-find examples/experiment_digits.py --set batch_size=32
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor


def experiment(lr: float = 3e-4, channels: int = 16, batch_size: int = 64) -> nndoctor.Experiment:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0 - 0.5  # [-0.5, 0.5]
    y = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=g)
    train, val = order[:1400], order[1400:]
    model = nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 4, 10),
    )
    return nndoctor.Experiment(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        train=DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
        train_val=DataLoader(TensorDataset(x[val], y[val]), batch_size=256),
    )
