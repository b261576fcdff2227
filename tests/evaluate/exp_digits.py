"""A small digits experiment for the evaluate CLI tests (not a test module)."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor.experiment as ne


def experiment(hidden: int = 64, lr: float = 3e-3, epochs: int = 8, invert_test: bool = False,
               n_train: int = 1000) -> ne.Experiment:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    x = torch.tensor(x[perm] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[perm])
    te = x[1450:]
    if invert_test:
        te = 1.0 - te

    def dl(a, b, shuffle=False):
        return DataLoader(TensorDataset(a, b), batch_size=64, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(0))

    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return ne.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                         optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                         train=dl(x[:n_train], y[:n_train], True), train_val=dl(x[1100:1450], y[1100:1450]),
                         test_val=dl(te, y[1450:]))
