"""Experiment file with a realistic bug, for `make demo` / `nndoctor diagnose`.

An MLP on scikit-learn's 8x8 digits. The pixels are fed raw (0..16, never normalised),
the network is wide for the 300 training images it gets, and there is no regularisation.

    nndoctor diagnose examples/buggy_experiment.py --html report.html
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor


def experiment(lr: float = 1e-3, hidden: int = 256, weight_decay: float = 0.0, batch_size: int = 32,
               epochs: int = 30) -> nndoctor.Experiment:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)  # bug: raw pixel values 0..16, not normalised
    y = torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val, test = order[:300], order[300:1000], order[1000:]
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 10))
    return nndoctor.Experiment(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay),
        train=DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True),
        train_val=DataLoader(TensorDataset(x[val], y[val]), batch_size=256),
        test_val=DataLoader(TensorDataset(x[test], y[test]), batch_size=256),
    )
